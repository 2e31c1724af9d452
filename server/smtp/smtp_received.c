/*
 * Received:, Return-Path:, Date: formatting.
 */
#include "server/smtp/smtp_received.h"

#include <string.h>
#include <time.h>

#define CLIENT_TEXT_MAX 128

void smtp_format_date(int64_t t, char *out, size_t outlen)
{
	static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL) {
		tt = 0;
		gmtime_r(&tt, &tm);
	}
	/* By hand, not strftime: day and month names must not follow the locale. */
	struct buf b;
	buf_init(&b, 64);
	buf_printf(&b, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
	           months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	size_t n = b.len < outlen - 1 ? b.len : outlen - 1;
	memcpy(out, b.data, n);
	out[n] = '\0';
	buf_free(&b);
}

/* Client text for a domain position: letters, digits, '.', '-', '_', ':', '[', ']'; any
 * other byte becomes '?'. Empty becomes "unknown". */
static void safe_domain(char *out, const char *in)
{
	size_t o = 0;
	for (const char *p = in ? in : ""; *p && o < CLIENT_TEXT_MAX; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' || c == ':' ||
		          c == '[' || c == ']';
		out[o++] = ok ? c : '?';
	}
	if (o == 0) {
		memcpy(out, "unknown", 8);
		return;
	}
	out[o] = '\0';
}

/* Text inside a comment inside quotes: printable ASCII without '(', ')', '"', '\\'. */
static void safe_comment(char *out, const char *in)
{
	size_t o = 0;
	for (const char *p = in; *p && o < CLIENT_TEXT_MAX; p++) {
		unsigned char c = (unsigned char)*p;
		bool ok = c >= 32 && c < 127 && c != '(' && c != ')' && c != '"' && c != '\\';
		out[o++] = ok ? (char)c : '?';
	}
	out[o] = '\0';
}

int smtp_received_format(const struct smtp_received_info *ri, struct buf *out)
{
	char helo[CLIENT_TEXT_MAX + 1], subj[CLIENT_TEXT_MAX + 1], date[40];
	safe_domain(helo, ri->helo);
	smtp_format_date(ri->time, date, sizeof(date));
	int r = buf_printf(out, "Received: from %s ([%s])\r\n", helo, ri->peer_ip);
	if (r == 0 && ri->tls_version)
		r = buf_printf(out, "\t(using %s with cipher %s)\r\n", ri->tls_version,
		               ri->tls_cipher ? ri->tls_cipher : "unknown");
	if (r == 0 && ri->auth_user) {
		char mech[CLIENT_TEXT_MAX + 1];
		safe_comment(subj, ri->auth_user);
		safe_comment(mech, ri->auth_mech ? ri->auth_mech : "");
		r = buf_printf(out, "\t(authenticated user %s%s%s)\r\n", subj,
		               mech[0] ? " by " : "", mech);
	}
	if (r == 0 && ri->peer_name) {
		char name[CLIENT_TEXT_MAX + 1];
		safe_domain(name, ri->peer_name);
		r = buf_printf(out, "\t(organisation server %s)\r\n", name);
	}
	if (r == 0 && ri->peer_subject) {
		char serial[CLIENT_TEXT_MAX + 1];
		safe_domain(serial, ri->peer_serial ? ri->peer_serial : "");
		safe_comment(subj, ri->peer_subject);
		r = buf_printf(out, "\t(client certificate \"%s\"%s%s)\r\n", subj,
		               ri->peer_serial ? " serial " : "", ri->peer_serial ? serial : "");
	}
	const char *proto =
	    ri->tls_version ? (ri->auth_user ? "SA" : "S") : (ri->auth_user ? "A" : "");
	if (r == 0)
		r = buf_printf(out, "\tby %s (sealmail) with %s%s id %s\r\n", ri->hostname,
		               ri->smtputf8 ? "UTF8SMTP" : "ESMTP", proto, ri->id);
	if (r == 0 && ri->rcpt) {
		/* The address was parsed by smtp_parse; still keep the field one clean line. */
		char rc[CLIENT_TEXT_MAX * 2 + 1];
		size_t o = 0;
		for (const char *p = ri->rcpt; *p && o < sizeof(rc) - 1; p++)
			rc[o++] = ((unsigned char)*p < 32 || *p == '>' || *p == 127) ? '?' : *p;
		rc[o] = '\0';
		r = buf_printf(out, "\tfor <%s>; %s\r\n", rc, date);
	} else if (r == 0) {
		r = buf_printf(out, "\t; %s\r\n", date);
	}
	return r;
}

int smtp_return_path_format(const char *sender, struct buf *out)
{
	char rp[CLIENT_TEXT_MAX * 4 + 1];
	size_t o = 0;
	for (const char *p = sender ? sender : ""; *p && o < sizeof(rp) - 1; p++)
		rp[o++] = ((unsigned char)*p < 32 || *p == '>' || *p == 127) ? '?' : *p;
	rp[o] = '\0';
	return buf_printf(out, "Return-Path: <%s>\r\n", rp);
}
