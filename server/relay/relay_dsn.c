/*
 * Delivery status notifications (RFC 3464 multipart/report, RFC 3461 parameters): one
 * formatter for every kind of report (failed, delayed, delivered, relayed) to the envelope
 * sender (relay_private.h). The kind picks the subject and the human-readable text; each
 * recipient's block carries its own action.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/relay/relay_private.h"

static void rfc5322_date(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

void relay_dsn_status(int code, const char *reply, char *out, size_t outlen)
{
	/* "550 5.1.1 text" or "550-5.1.1 text": the class must agree with the code. */
	const char *p = reply;
	if (p != NULL && strlen(p) > 4 && isdigit((unsigned char)p[0]))
		p += 4;
	if (p != NULL && (p[0] == '2' || p[0] == '4' || p[0] == '5') && p[1] == '.' &&
	    code / 100 == p[0] - '0') {
		size_t n = 0;
		while (p[n] != '\0' && (isdigit((unsigned char)p[n]) || p[n] == '.') && n < 11)
			n++;
		int dots = 0;
		for (size_t i = 0; i < n; i++)
			dots += p[i] == '.';
		if (dots == 2 && p[n - 1] != '.') {
			snprintf(out, outlen, "%.*s", (int)n, p);
			return;
		}
	}
	snprintf(out, outlen, "%d.0.0", code / 100 == 4 ? 4 : 5);
}

/* Header block of original: up to and including the empty line (or all of it). */
static size_t header_len(const char *m, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (m[i] == '\n' && m[i + 1] == '\n')
			return i + 2;
		if (m[i] == '\n' && m[i + 1] == '\r' && i + 2 < len && m[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

/* Appends bytes with every line ending in CRLF. */
static int append_crlf(struct buf *out, const char *p, size_t len)
{
	int rc = 0;
	for (size_t i = 0; i < len && rc == 0; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			rc = buf_append(out, "\r", 1);
		if (rc == 0)
			rc = buf_append(out, &p[i], 1);
	}
	if (rc == 0 && len > 0 && p[len - 1] != '\n')
		rc = buf_append(out, "\r\n", 2);
	return rc;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A value from an envelope or a peer, for a header field: printable ASCII only. With
 * xtext, "+HH" is decoded first (RFC 3464 2.2.1 and 2.3.2: ENVID and ORCPT are reported
 * decoded, not in the xtext form they had on the MAIL and RCPT lines). */
static void clean_value(char *out, size_t outlen, const char *in, bool xtext)
{
	size_t o = 0;
	for (; in != NULL && *in != '\0' && o + 1 < outlen; in++) {
		unsigned char c = (unsigned char)*in;
		if (xtext && c == '+' && hexval(in[1]) >= 0 && hexval(in[2]) >= 0) {
			c = (unsigned char)(hexval(in[1]) << 4 | hexval(in[2]));
			in += 2;
		}
		out[o++] = c >= ' ' && c < 127 ? (char)c : '?';
	}
	out[o] = '\0';
}

static void clean(char *out, size_t outlen, const char *in)
{
	clean_value(out, outlen, in, false);
}

/* What a report of each kind says to a person: the subject, the sentence before the
 * recipients ("... this recipient:"), and for some a word after them. */
static const struct {
	const char *action; /* RFC 3464 2.3.3 */
	const char *subject;
	const char *intro;
} dsn_kinds[] = {
    [RELAY_DSN_FAILED] = {"failed", "Undelivered Mail Returned to Sender",
                          "could not be delivered to"},
    [RELAY_DSN_DELAYED] = {"delayed", "Delayed Mail (still being retried)",
                           "could not yet be delivered to"},
    [RELAY_DSN_DELIVERED] = {"delivered", "Successful Mail Delivery Report", "was delivered to"},
    [RELAY_DSN_RELAYED] = {"relayed", "Successful Mail Relay Report", "was handed on towards"},
};
static const char *const dsn_outro[] = {
    [RELAY_DSN_DELAYED] = "The mail system is still trying to deliver it; you will be told if "
                          "it gives up. Nothing needs to be done now.",
    [RELAY_DSN_RELAYED] = "The next mail system does not report delivery status, so no further "
                          "notice will follow.",
};

int relay_dsn_format(const struct relay_dsn *d, struct buf *out)
{
	char date[64], arrival[64], until[64], v[RELAY_REPLY_MAX + 8];
	rfc5322_date(d->now, date, sizeof(date));
	rfc5322_date(d->arrival, arrival, sizeof(arrival));
	rfc5322_date(d->will_retry_until, until, sizeof(until));
	int rc = 0;
#define P(...)                                                                                     \
	do {                                                                                       \
		if (rc == 0)                                                                       \
			rc = buf_printf(out, __VA_ARGS__);                                         \
	} while (0)
	clean(v, sizeof(v), d->sender);
	if (d->return_path)
		P("Return-Path: <>\r\n");
	P("From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", d->reporting_mta);
	P("To: <%s>\r\n", v);
	P("Subject: %s\r\n", dsn_kinds[d->kind].subject);
	P("Date: %s\r\n", date);
	P("Message-ID: <%s@%s>\r\n", d->boundary, d->reporting_mta);
	P("Auto-Submitted: auto-replied\r\n");
	P("MIME-Version: 1.0\r\n");
	P("Content-Type: multipart/report; report-type=delivery-status;\r\n"
	  "\tboundary=\"%s\"\r\n\r\n",
	  d->boundary);
	P("This is a MIME-encapsulated message.\r\n\r\n--%s\r\n", d->boundary);
	P("Content-Type: text/plain; charset=us-ascii\r\n\r\n");
	P("This is the mail system at host %s.\r\n\r\n", d->reporting_mta);
	P("Your message %s %s:\r\n\r\n", dsn_kinds[d->kind].intro,
	  d->n_rcpts == 1 ? "this recipient" : "these recipients");
	for (size_t i = 0; i < d->n_rcpts; i++) {
		char a[320];
		clean(a, sizeof(a), d->rcpts[i].address);
		clean(v, sizeof(v), d->rcpts[i].diagnostic);
		P("<%s>%s%s\r\n", a, v[0] != '\0' ? ": " : "", v);
	}
	if (d->kind < sizeof(dsn_outro) / sizeof(dsn_outro[0]) && dsn_outro[d->kind] != NULL)
		P("\r\n%s\r\n", dsn_outro[d->kind]);
	if (d->kind == RELAY_DSN_DELAYED && d->will_retry_until > 0)
		P("It will be retried until %s.\r\n", until);
	P("\r\n--%s\r\nContent-Type: message/delivery-status\r\n\r\n", d->boundary);
	P("Reporting-MTA: dns; %s\r\n", d->reporting_mta);
	if (d->envid != NULL) {
		clean_value(v, sizeof(v), d->envid, true);
		P("Original-Envelope-Id: %s\r\n", v);
	}
	P("Arrival-Date: %s\r\n", arrival);
	for (size_t i = 0; i < d->n_rcpts; i++) {
		const struct relay_dsn_rcpt *r = &d->rcpts[i];
		char a[320];
		P("\r\n");
		if (r->orcpt != NULL) {
			clean_value(a, sizeof(a), r->orcpt, true);
			P("Original-Recipient: %s\r\n", a);
		}
		clean(a, sizeof(a), r->address);
		P("Final-Recipient: rfc822; %s\r\n", a);
		P("Action: %s\r\n", dsn_kinds[r->action].action);
		P("Status: %s\r\n", r->status);
		if (r->remote_mta != NULL) {
			clean(a, sizeof(a), r->remote_mta);
			P("Remote-MTA: dns; %s\r\n", a);
		}
		if (r->diagnostic != NULL) {
			clean(v, sizeof(v), r->diagnostic);
			P("Diagnostic-Code: %s; %s\r\n",
			  r->remote_mta != NULL ? "smtp" : "x-sealmail", v);
		}
		P("Last-Attempt-Date: %s\r\n", date);
		if (r->action == RELAY_DSN_DELAYED && d->will_retry_until > 0)
			P("Will-Retry-Until: %s\r\n", until);
	}
	if (d->original != NULL && d->original_len > 0) {
		bool full = d->full && d->original_complete;
		P("\r\n--%s\r\nContent-Type: %s\r\n\r\n", d->boundary,
		  full ? "message/rfc822" : "text/rfc822-headers");
		if (rc == 0)
			rc = append_crlf(out, d->original,
			                 full ? d->original_len
			                      : header_len(d->original, d->original_len));
	}
	P("\r\n--%s--\r\n", d->boundary);
#undef P
	return rc;
}
