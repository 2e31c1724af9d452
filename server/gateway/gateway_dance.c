/*
 * The gateway's own side of STARTTLS (gateway_dance.h). Before TLS a client can learn
 * nothing but that TLS is offered: RFC 3207 4 (SMTP: every command but NOOP, EHLO,
 * STARTTLS and QUIT gets 530), RFC 9051 6.2.1 and RFC 3501 7.2.1 (IMAP: LOGINDISABLED
 * says LOGIN is not allowed, so clients do not send passwords in the clear), RFC 2595 4
 * (POP3: STLS in CAPA, nothing that logs in).
 */
#include "server/gateway/gateway_dance.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

static bool word_is(const char *line, size_t len, const char *w)
{
	size_t n = strlen(w);
	return len == n && strncasecmp(line, w, n) == 0;
}

/* The first word of line (up to a space) is w; *rest_r points after it. */
static bool verb_is(const char *line, size_t len, const char *w, const char **rest_r,
                    size_t *rest_len_r)
{
	size_t n = strlen(w);
	if (len < n || strncasecmp(line, w, n) != 0 || (len > n && line[n] != ' '))
		return false;
	*rest_r = line + n;
	*rest_len_r = len - n;
	return true;
}

void gateway_dance_greeting(enum cfg_speaks sp, const char *hostname, struct buf *out)
{
	switch (sp) {
	case CFG_SPEAKS_SMTP:
		buf_printf(out, "220 %s ESMTP ready\r\n", hostname);
		break;
	case CFG_SPEAKS_IMAP:
		buf_printf(out, "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] %s ready\r\n",
		           hostname);
		break;
	case CFG_SPEAKS_POP3:
		buf_printf(out, "+OK %s ready\r\n", hostname);
		break;
	case CFG_SPEAKS_NONE:
		break;
	}
}

static enum gateway_dance_step smtp_line(const char *hostname, const char *line, size_t len,
                                         struct buf *out)
{
	const char *rest;
	size_t rest_len;
	if (memchr(line, '\0', len) != NULL) {
		buf_append_str(out, "500 5.5.2 Syntax error\r\n");
		return GW_DANCE_ERROR;
	}
	if (verb_is(line, len, "EHLO", &rest, &rest_len)) {
		if (rest_len < 2) {
			buf_append_str(out, "501 5.5.4 Syntax: EHLO hostname\r\n");
			return GW_DANCE_ERROR;
		}
		buf_printf(out, "250-%s\r\n250 STARTTLS\r\n", hostname);
		return GW_DANCE_REPLY;
	}
	if (verb_is(line, len, "STARTTLS", &rest, &rest_len)) {
		if (rest_len > 0) {
			buf_append_str(out, "501 5.5.4 Syntax error (no parameters allowed)\r\n");
			return GW_DANCE_ERROR;
		}
		buf_append_str(out, "220 2.0.0 Ready to start TLS\r\n");
		return GW_DANCE_STARTTLS;
	}
	if (verb_is(line, len, "NOOP", &rest, &rest_len)) {
		buf_append_str(out, "250 2.0.0 OK\r\n");
		return GW_DANCE_REPLY;
	}
	if (word_is(line, len, "QUIT")) {
		buf_printf(out, "221 2.0.0 %s closing connection\r\n", hostname);
		return GW_DANCE_QUIT;
	}
	buf_append_str(out, "530 5.7.0 Must issue a STARTTLS command first\r\n");
	return GW_DANCE_ERROR;
}

/* An IMAP tag: 1 to 64 ASTRING-CHAR but '+' (RFC 9051 9). */
static size_t imap_tag_len(const char *line, size_t len)
{
	size_t i = 0;
	while (i < len && i <= 64) {
		unsigned char ch = (unsigned char)line[i];
		if (ch <= ' ' || ch >= 0x7f || strchr("(){%*\"\\+]", ch) != NULL)
			break;
		i++;
	}
	return i > 64 ? 0 : i;
}

static enum gateway_dance_step imap_line(const char *line, size_t len, struct buf *out)
{
	size_t tl = imap_tag_len(line, len);
	if (tl == 0 || tl >= len || line[tl] != ' ' || memchr(line, '\0', len) != NULL) {
		buf_append_str(out, "* BAD Invalid tag or command\r\n");
		return GW_DANCE_ERROR;
	}
	const char *cmd = line + tl + 1;
	size_t cl = len - tl - 1;
	int t = (int)tl;
	if (word_is(cmd, cl, "CAPABILITY")) {
		buf_printf(out,
		           "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n"
		           "%.*s OK CAPABILITY completed\r\n",
		           t, line);
		return GW_DANCE_REPLY;
	}
	if (word_is(cmd, cl, "NOOP")) {
		buf_printf(out, "%.*s OK NOOP completed\r\n", t, line);
		return GW_DANCE_REPLY;
	}
	if (word_is(cmd, cl, "LOGOUT")) {
		buf_printf(out, "* BYE Logging out\r\n%.*s OK LOGOUT completed\r\n", t, line);
		return GW_DANCE_QUIT;
	}
	if (word_is(cmd, cl, "STARTTLS")) {
		buf_printf(out, "%.*s OK Begin TLS negotiation now\r\n", t, line);
		return GW_DANCE_STARTTLS;
	}
	const char *rest;
	size_t rest_len;
	if (verb_is(cmd, cl, "LOGIN", &rest, &rest_len) ||
	    verb_is(cmd, cl, "AUTHENTICATE", &rest, &rest_len)) {
		buf_printf(out, "%.*s NO [PRIVACYREQUIRED] Use STARTTLS first\r\n", t, line);
		return GW_DANCE_ERROR;
	}
	buf_printf(out, "%.*s BAD Use STARTTLS first\r\n", t, line);
	return GW_DANCE_ERROR;
}

static enum gateway_dance_step pop3_line(const char *line, size_t len, struct buf *out)
{
	if (word_is(line, len, "CAPA")) {
		buf_append_str(out, "+OK Capability list follows\r\nSTLS\r\n.\r\n");
		return GW_DANCE_REPLY;
	}
	if (word_is(line, len, "STLS")) {
		buf_append_str(out, "+OK Begin TLS negotiation\r\n");
		return GW_DANCE_STARTTLS;
	}
	if (word_is(line, len, "QUIT")) {
		buf_append_str(out, "+OK Bye\r\n");
		return GW_DANCE_QUIT;
	}
	buf_append_str(out, "-ERR Use STLS first\r\n");
	return GW_DANCE_ERROR;
}

enum gateway_dance_step gateway_dance_line(enum cfg_speaks sp, const char *hostname,
                                           const char *line, size_t len, struct buf *out)
{
	switch (sp) {
	case CFG_SPEAKS_SMTP:
		return smtp_line(hostname, line, len, out);
	case CFG_SPEAKS_IMAP:
		return imap_line(line, len, out);
	case CFG_SPEAKS_POP3:
		return pop3_line(line, len, out);
	case CFG_SPEAKS_NONE:
		break;
	}
	return GW_DANCE_QUIT;
}

void gateway_dance_goodbye(enum cfg_speaks sp, enum gateway_bye why, const char *hostname,
                           struct buf *out)
{
	static const char *const text[] = {
	    [GW_BYE_BACKEND] = "Service not available, try again later",
	    [GW_BYE_TIMEOUT] = "Idle for too long, closing",
	    [GW_BYE_ERRORS] = "Too many errors, closing",
	    [GW_BYE_TOO_LONG] = "Line too long, closing",
	};
	static const char *const smtp_code[] = {
	    [GW_BYE_BACKEND] = "421 4.4.1",
	    [GW_BYE_TIMEOUT] = "421 4.4.2",
	    [GW_BYE_ERRORS] = "421 4.7.0",
	    [GW_BYE_TOO_LONG] = "500 5.5.2",
	};
	switch (sp) {
	case CFG_SPEAKS_SMTP:
		buf_printf(out, "%s %s %s\r\n", smtp_code[why], hostname, text[why]);
		break;
	case CFG_SPEAKS_IMAP:
		buf_printf(out, "* BYE %s%s\r\n", why == GW_BYE_BACKEND ? "[UNAVAILABLE] " : "",
		           text[why]);
		break;
	case CFG_SPEAKS_POP3:
		buf_printf(out, "-ERR %s%s\r\n", why == GW_BYE_BACKEND ? "[SYS/TEMP] " : "",
		           text[why]);
		break;
	case CFG_SPEAKS_NONE:
		break;
	}
}

/* The end of the line starting at data (its LF included), or 0 when incomplete. */
static size_t line_end(const char *data, size_t len)
{
	const char *nl = memchr(data, '\n', len);
	return nl != NULL ? (size_t)(nl - data) + 1 : 0;
}

ssize_t gateway_backend_greeting(enum cfg_speaks sp, const char *data, size_t len)
{
	size_t off = 0;
	for (;;) {
		size_t n = line_end(data + off, len - off);
		if (n == 0)
			return len >= GW_GREETING_MAX ? -E2BIG : 0;
		if (off + n > GW_GREETING_MAX)
			return -E2BIG;
		const char *l = data + off;
		switch (sp) {
		case CFG_SPEAKS_SMTP:
			/* 220-text continues, "220 text" or "220" ends (RFC 5321 4.2). */
			if (n < 4 || strncmp(l, "220", 3) != 0 ||
			    (l[3] != '-' && l[3] != ' ' && l[3] != '\r' && l[3] != '\n'))
				return -EPROTO;
			if (l[3] == '-') {
				off += n;
				continue;
			}
			return (ssize_t)(off + n);
		case CFG_SPEAKS_IMAP:
			if (n >= 4 && (strncasecmp(l, "* OK", 4) == 0 ||
			               (n >= 9 && strncasecmp(l, "* PREAUTH", 9) == 0)))
				return (ssize_t)n;
			return -EPROTO;
		case CFG_SPEAKS_POP3:
			return n >= 3 && strncmp(l, "+OK", 3) == 0 ? (ssize_t)n : -EPROTO;
		case CFG_SPEAKS_NONE:
			return 0;
		}
		return -EPROTO;
	}
}
