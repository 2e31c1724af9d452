/*
 * The DATA and BDAT (RFC 3030) commands: they start the message of the transaction, feed
 * its bytes to the message reader (smtp_data.c, through smtp_txn.c) and answer once
 * smtp_txn_end has stored it. A refused BDAT chunk is still read, then dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server/smtp/smtp_private.h"
#include "server/tls.h"

#define SMTP_BDAT_SLACK (1024u * 1024)

static void smtp_msg_done(void *sess, bool ok, bool close, const char *reply)
{
	struct smtp_session *s = sess;

	s->in_data = false;
	conn_set_line_limit(s->c, 0);
	if (ok)
		smtp_reply(s, reply);
	else
		smtp_error(s, reply);
	if (s->state != SMTP_S_QUIT)
		smtp_set_state(s, SMTP_S_HELO);
	if (close && s->state != SMTP_S_QUIT)
		smtp_goodbye(s, "421 4.7.0 Closing connection", "message line too long");
	conn_resume(s->c);
}

static void smtp_begin_message(struct smtp_session *s)
{
	const struct config *cfg = conn_config(s->c);
	struct tls_session *tls = conn_tls(s->c);
	struct smtp_txn_msg_opts o = {
	    .submission = s->submission,
	    .max_size = cfg->limits.message_size,
	    .helo = s->helo,
	    .hostname = smtp_hostname(s),
	    .auth_mech = s->auth_mech[0] ? s->auth_mech : NULL,
	    .peer_subject = tls ? tls_session_peer_subject(tls) : NULL,
	    .peer_serial = tls ? tls_session_peer_serial(tls) : NULL,
	    .peer_name = s->submission ? NULL : conn_peer_name(s->c),
	};
	smtp_txn_begin(&s->txn, &o);
}

void smtp_cmd_data(void *sess, const char *args, size_t len)
{
	struct smtp_session *s = sess;
	const struct config *cfg = conn_config(s->c);

	(void)args;
	if (len != 0) {
		smtp_error(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (s->bdat) {
		smtp_error(s, "503 5.5.1 DATA cannot follow BDAT");
		return;
	}
	smtp_begin_message(s);
	s->in_data = true;
	/* Message lines may be longer than commands (up to limits.line_length). */
	conn_set_line_limit(s->c, cfg->limits.line_length > 1000 ? cfg->limits.line_length : 1000);
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

void smtp_data_input(struct smtp_session *s, const char *line, size_t len, bool has_cr)
{
	if (smtp_data_line(smtp_txn_data(&s->txn), line, len, has_cr) == 1)
		smtp_txn_end(&s->txn, smtp_msg_done);
}

/* "n" or "n LAST": 0, or -EINVAL. */
static int smtp_parse_bdat(const char *args, size_t len, uint64_t *n_r, bool *last_r)
{
	size_t i = 0;
	uint64_t n = 0;
	while (i < len && args[i] >= '0' && args[i] <= '9') {
		if (i >= 19)
			return -EINVAL;
		n = n * 10 + (uint64_t)(args[i] - '0');
		i++;
	}
	if (i == 0)
		return -EINVAL;
	*last_r = false;
	if (i < len) {
		const char *w = args + i;
		size_t wl = len - i;
		if (wl != 5 || w[0] != ' ' || strncasecmp(w + 1, "LAST", 4) != 0)
			return -EINVAL;
		*last_r = true;
	}
	*n_r = n;
	return 0;
}

void smtp_cmd_bdat(void *sess, const char *args, size_t len)
{
	struct smtp_session *s = sess;
	const struct config *cfg = conn_config(s->c);
	uint64_t n;
	bool last;

	if (smtp_parse_bdat(args, len, &n, &last) < 0) {
		/* The chunk's length is unknown: its bytes cannot be skipped. */
		smtp_reply(s, "501 5.5.4 Syntax: BDAT size [LAST]");
		smtp_goodbye(s, "421 4.7.0 Closing connection", "bad BDAT");
		return;
	}
	uint64_t max = cfg->limits.message_size ? cfg->limits.message_size + SMTP_BDAT_SLACK : 0;
	if (max > 0 && n > max) {
		smtp_reply(s, "552 5.3.4 Chunk too big");
		smtp_goodbye(s, "421 4.7.0 Closing connection", "BDAT chunk too big");
		return;
	}
	if (s->state != SMTP_S_RCPT) {
		/* RFC 3030 2: a refused chunk is still read, then dropped. */
		s->bdat_discard = true;
		s->bdat_last = last;
		if (n > 0) {
			conn_expect_bytes(s->c, n);
			return;
		}
		smtp_bdat_bytes(s, "", 0, true);
		return;
	}
	if (!s->bdat) {
		s->bdat = true;
		smtp_begin_message(s);
	}
	s->bdat_last = last;
	if (n > 0) {
		conn_expect_bytes(s->c, n);
		return;
	}
	smtp_bdat_bytes(s, "", 0, true);
}

void smtp_bdat_bytes(void *sess, const char *data, size_t len, bool last)
{
	struct smtp_session *s = sess;

	if (s->bdat_discard) {
		if (!last)
			return;
		s->bdat_discard = false;
		smtp_error(s, s->state == SMTP_S_MAIL ? "503 5.5.1 Need RCPT command first"
		                                      : "503 5.5.1 Need MAIL command first");
		return;
	}
	smtp_data_bytes(smtp_txn_data(&s->txn), data, len);
	if (!last)
		return;
	if (s->bdat_last) {
		smtp_txn_end(&s->txn, smtp_msg_done);
		return;
	}
	char reply[64];
	snprintf(reply, sizeof(reply), "250 2.0.0 %llu octets received",
	         (unsigned long long)smtp_txn_data(&s->txn)->size);
	smtp_reply(s, reply);
}
