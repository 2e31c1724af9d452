/*
 * The AUTH command and the logins a client certificate makes: certificate_login: preauth
 * on submission listeners (smtp_cert_preauth) and the refusal of a user's certificate on
 * smtp listeners (smtp_refuse_user_cert). The SASL exchanges AUTH runs are smtp_auth.c.
 *
 * Rules:
 * - AUTH only on submission listeners (503 elsewhere); only a successful AUTH ends AUTH.
 * - smtp (peer servers): a user's certificate is refused outright, logged; every command
 *   but QUIT is then refused by the session.
 * - The certificate login goes the one certificate road (server/auth/cert_login.h).
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "server/auth/cert_login.h"
#include "server/services.h"
#include "server/smtp/smtp_private.h"
#include "server/tls.h"
#include "storage/store.h"

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
	 * 4, cert_login.c) lets it succeed only for the certificate's own user; anyone else
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
