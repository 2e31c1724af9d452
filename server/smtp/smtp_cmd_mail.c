/*
 * AUTH, MAIL, RCPT, DATA and BDAT: who may send what, recipients checked against the
 * store, and the message handed to the transaction (smtp_txn.c).
 *
 * Rules:
 * - submission: AUTH is required for MAIL (the command table enforces it); MAIL FROM must
 *   be the authenticated user's own address (553 5.7.1, also for the null sender); local
 *   recipients must exist (550 5.1.1); other domains go to the relay queue.
 * - a local recipient's quota is checked against its usage and MAIL's SIZE= (RFC 1870):
 *   452 4.2.2 when it is full or the message would fill it, 552 5.2.2 when the declared
 *   size can never fit (smtp_quota.h).
 * - smtp (peer servers): no AUTH; only local recipients (550 5.7.1 otherwise): never an
 *   open relay. A sender in a local domain only from an organisation server (conn.h,
 *   CONN_PEER_SERVER: its certificate, listeners[].peers, tls.peer_ca), 550 5.7.1
 *   otherwise: anyone else could pose as a local user here, where no login binds the
 *   sender. Foreign senders and the null sender (bounces) from anyone. A user's
 *   certificate is refused outright (smtp_refuse_user_cert).
 * - Store look-ups pause input (so pipelined commands wait and replies stay in order) and
 *   hold the conn (so a close meanwhile never frees what the completion touches).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/auth/cert_login.h"
#include "server/services.h"
#include "server/smtp/smtp_private.h"
#include "server/smtp/smtp_quota.h"
#include "server/tls.h"
#include "storage/store.h"

#define SMTP_BDAT_SLACK (1024u * 1024)

/* ---- AUTH ----------------------------------------------------------------------------- */

static void smtp_auth_done(void *sess, bool ok, const char *user)
{
	struct smtp_session *s = sess;
	unsigned max = conn_config(s->c)->limits.errors;

	if (ok) {
		s->authenticated = true;
		memcpy(s->auth_mech, s->auth_trying, sizeof(s->auth_mech));
		conn_set_authenticated(s->c, user);
		return;
	}
	s->errors++;
	if (max > 0 && s->errors >= max)
		smtp_goodbye(s, "421 4.7.0 Too many errors", "too many errors");
}

void smtp_cmd_auth(void *sess, const char *args, size_t len)
{
	struct smtp_session *s = sess;

	if (!s->submission) {
		smtp_error(s, "503 5.5.1 AUTH is not offered on this port");
		return;
	}
	/* Only a successful AUTH ends AUTH (RFC 4954 4). A session logged in by its client
	 * certificate alone (certificate_login: preauth) still takes one: clients set up with
	 * a password, or with EXTERNAL, insist on sending it. The login policy (login.h step
	 * 4, external.c) lets it succeed only for the certificate's own user; anyone else
	 * fails, logged and throttled like a wrong password, and the session stays logged in
	 * by the certificate. */
	if (smtp_auth_succeeded(&s->auth)) {
		smtp_error(s, "503 5.5.1 Already authenticated");
		return;
	}
	/* The mechanism's name, for Received: (RFC 4422 3.1 names: upper case, digits, '-',
	 * '_'); only used once the exchange succeeded, so an unknown one is never shown. */
	size_t n = 0;
	for (; n < len && n + 1 < sizeof(s->auth_trying) && args[n] != ' '; n++) {
		char ch = args[n] >= 'a' && args[n] <= 'z' ? (char)(args[n] - 32) : args[n];
		bool ok =
		    (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
		s->auth_trying[n] = ok ? ch : '?';
	}
	s->auth_trying[n] = '\0';
	smtp_auth_start(&s->auth, args, len, smtp_auth_done);
}

bool smtp_refuse_user_cert(struct smtp_session *s)
{
	struct tls_session *tls = conn_tls(s->c);
	char subj[256];

	if (s->submission || conn_peer_kind(s->c) != CONN_PEER_USER)
		return false;
	const char *subject = tls ? tls_session_peer_subject(tls) : NULL;
	const char *serial = tls ? tls_session_peer_serial(tls) : NULL;
	log_event(LOGL_INFO,
	          "session=%s proto=smtp event=user_certificate_refused ip=%s serial=%s "
	          "subject=\"%s\"",
	          conn_id(s->c), conn_peer_ip(s->c), serial ? serial : "-",
	          subject ? log_escape(subj, sizeof(subj), subject, strlen(subject)) : "");
	s->cert_refused = true;
	return true;
}

/* ---- certificate login ------------------------------------------------------------------ */

/* The login at connect (certificate_login: preauth), by the one certificate road: a
 * refusal, or a user who must give a password as well, leaves the client to AUTH. */
static void smtp_cert_done(void *sess, const struct auth_login_result *r)
{
	struct smtp_session *s = sess;
	s->waiting = false;
	if (r->status == AUTH_LOGIN_OK) {
		s->authenticated = true;
		snprintf(s->auth_mech, sizeof(s->auth_mech), "client certificate");
		conn_set_authenticated(s->c, r->user);
	}
}

void smtp_cert_preauth(struct smtp_session *s)
{
	if (!s->submission || s->authenticated || conn_cert_identity(s->c) == NULL ||
	    conn_listener(s->c)->certificate_login != CFG_CERT_LOGIN_PREAUTH)
		return;
	s->waiting = true;
	auth_cert_login(s->c, AUTH_CERT_PREAUTH, NULL, smtp_cert_done);
}

/* ---- MAIL ------------------------------------------------------------------------------- */

static bool addr_ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
		char y = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
		if (x != y)
			return false;
	}
	return *a == *b;
}

void smtp_cmd_mail(void *sess, const char *args, size_t len)
{
	struct smtp_session *s = sess;
	const struct config *cfg = conn_config(s->c);
	struct smtp_mail_args m;
	const char *reply;

	if (smtp_parse_mail(args, len, &m, &reply) < 0) {
		smtp_error(s, reply);
		return;
	}
	if (m.has_size && cfg->limits.message_size > 0 && m.size > cfg->limits.message_size) {
		smtp_error(s, "552 5.3.4 Message size exceeds fixed maximum message size");
		return;
	}
	if (m.body == SMTP_BODY_BINARYMIME) {
		smtp_error(s, "555 5.5.4 BODY=BINARYMIME is not supported");
		return;
	}
	if (s->submission) {
		const char *user = conn_user(s->c);
		if (user == NULL || !addr_ieq(m.address, user)) {
			smtp_error(
			    s, "553 5.7.1 Sender address does not belong to the logged in user");
			return;
		}
	} else if (m.address[0] != '\0' && conn_peer_kind(s->c) != CONN_PEER_SERVER) {
		const char *at = strrchr(m.address, '@');
		const char *d = at != NULL ? at + 1 : "";
		if (d[0] != '[' && cfg_is_local_domain(cfg, d, strlen(d))) {
			log_event(LOGL_INFO,
			          "session=%s proto=smtp event=local_sender_refused ip=%s "
			          "reason=not_an_organisation_server",
			          conn_id(s->c), conn_peer_ip(s->c));
			smtp_error(s,
			           "550 5.7.1 Mail from a local domain is accepted here only from "
			           "the organisation's servers");
			return;
		}
	}
	smtp_txn_mail(&s->txn, &m);
	smtp_set_state(s, SMTP_S_MAIL);
	smtp_reply(s, "250 2.1.0 Ok");
}

/* ---- RCPT ------------------------------------------------------------------------------- */

struct smtp_rcpt_wait {
	struct smtp_session *s;
	unsigned notify;
	char orcpt[SMTP_ORCPT_MAX + 1];
	char *address; /* normalised */
};

static void smtp_rcpt_looked_up(void *ctx, int rc, struct store_result *res)
{
	struct smtp_rcpt_wait *w = ctx;
	struct smtp_session *s = w->s;
	const char *quota_reply;

	if (!conn_release(s->c)) {
		free(w->address);
		free(w);
		return;
	}
	s->waiting = false;
	if (rc == 0 && (res->n_users != 1 || res->users[0].disabled))
		rc = -ENOENT;
	if (rc == -ENOENT) {
		smtp_error(s, "550 5.1.1 Recipient address rejected: user unknown");
	} else if (rc < 0) {
		smtp_reply(s, "451 4.3.0 Temporary failure looking up the recipient");
	} else if ((quota_reply =
	                smtp_quota_rcpt_reply(res->users[0].quota_bytes, res->users[0].used_bytes,
	                                      s->txn.mail.has_size, s->txn.mail.size)) != NULL) {
		/* Not counted as an error: a full mailbox is no fault of the client's. */
		smtp_reply(s, quota_reply);
	} else {
		if (!smtp_txn_has_rcpt(&s->txn, w->address))
			smtp_txn_add_rcpt(&s->txn, w->address, res->users[0].id,
			                  res->users[0].quota_bytes, w->notify, w->orcpt);
		smtp_set_state(s, SMTP_S_RCPT);
		smtp_reply(s, "250 2.1.5 Ok");
	}
	free(w->address);
	free(w);
	conn_resume(s->c);
}

void smtp_cmd_rcpt(void *sess, const char *args, size_t len)
{
	struct smtp_session *s = sess;
	const struct config *cfg = conn_config(s->c);
	struct smtp_rcpt_args r;
	const char *reply;

	if (cfg->limits.recipients > 0 && s->txn.n_rcpts >= cfg->limits.recipients) {
		smtp_reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	if (smtp_parse_rcpt(args, len, s->txn.mail.smtputf8, &r, &reply) < 0) {
		smtp_error(s, reply);
		return;
	}
	char pm[SMTP_PATH_MAX + 1];
	const char *address = r.address;
	const char *domain = r.address + r.at + 1;
	if (r.postmaster) {
		/* RFC 5321 4.5.1: <Postmaster> is the postmaster of our first domain. */
		const char *d = cfg->n_domains > 0 ? cfg->domains[0] : smtp_hostname(s);
		snprintf(pm, sizeof(pm), "postmaster@%s", d);
		address = pm;
		domain = pm + strlen("postmaster@");
	}
	bool local = domain[0] != '[' && cfg_is_local_domain(cfg, domain, strlen(domain));
	if (!local) {
		if (!s->submission || !s->authenticated) {
			smtp_error(s, "550 5.7.1 Relay access denied");
			return;
		}
		if (!smtp_txn_has_rcpt(&s->txn, address))
			smtp_txn_add_rcpt(&s->txn, address, 0, 0, r.notify, r.orcpt);
		smtp_set_state(s, SMTP_S_RCPT);
		smtp_reply(s, "250 2.1.5 Ok");
		return;
	}
	struct store *st = conn_services(s->c) ? conn_services(s->c)->store : NULL;
	char *norm = NULL;
	if (store_address_normalize(address, &norm) < 0) {
		smtp_error(s, "550 5.1.1 Recipient address rejected: user unknown");
		return;
	}
	if (st == NULL) {
		free(norm);
		smtp_reply(s, "451 4.3.0 Temporary failure looking up the recipient");
		return;
	}
	struct smtp_rcpt_wait *w = calloc(1, sizeof(*w));
	if (w == NULL)
		abort();
	w->s = s;
	w->notify = r.notify;
	memcpy(w->orcpt, r.orcpt, sizeof(w->orcpt));
	w->address = norm;
	conn_pause(s->c);
	conn_hold(s->c);
	s->waiting = true;
	if (store_user_get(st, norm, smtp_rcpt_looked_up, w) < 0) {
		s->waiting = false;
		conn_release(s->c);
		conn_resume(s->c);
		free(w->address);
		free(w);
		smtp_reply(s, "451 4.3.0 Temporary failure looking up the recipient");
	}
}

/* ---- DATA / BDAT -------------------------------------------------------------------------- */

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
