#ifndef SEALMAIL_SMTP_AUTH_H
#define SEALMAIL_SMTP_AUTH_H
/*
 * SMTP AUTH (RFC 4954) for PLAIN (RFC 4616, with SASL-IR), LOGIN, EXTERNAL (the client
 * certificate) and SCRAM-SHA-256(-PLUS) (server/auth/scram.h; its server-final-message goes
 * out in a last 334 and the client answers an empty line before 235): the exchange of 334
 * continuations, "*" to cancel (501 5.7.0), then auth_login() (server/auth/login.h) or
 * auth_cert_login() (server/auth/cert_login.h) does the real work: throttling delay, cache, store
 * check, certificate policy, the fail2ban log line. Every reply of the exchange is written here;
 * the session learns the outcome through done. The command and its continuation lines are secrets:
 * never logged.
 *
 * The session embeds struct smtp_auth, sends it the AUTH arguments and, while
 * smtp_auth_active(), every input line. Loop thread only.
 */
#include <stdbool.h>
#include <stddef.h>

#include "server/auth/auth.h"

struct conn;
struct scram_auth;

enum smtp_auth_state {
	SMTP_AUTH_IDLE,
	SMTP_AUTH_PLAIN_WAIT,    /* 334 sent, waiting for the PLAIN response */
	SMTP_AUTH_LOGIN_USER,    /* 334 VXNlcm5hbWU6 sent */
	SMTP_AUTH_LOGIN_PASS,    /* 334 UGFzc3dvcmQ6 sent */
	SMTP_AUTH_EXTERNAL_WAIT, /* 334 sent, waiting for the EXTERNAL authzid (or "=") */
	SMTP_AUTH_SCRAM_FIRST,   /* 334 sent, waiting for the SCRAM client-first-message */
	SMTP_AUTH_SCRAM_WAIT,    /* a SCRAM challenge sent, waiting for the client's answer */
	SMTP_AUTH_CHECKING,      /* auth_login running */
};

/* ok: logged in as user (normalised address; borrowed during the call). The reply is
 * already written; on success the session calls conn_set_authenticated itself. */
typedef void smtp_auth_done_cb(void *sess, bool ok, const char *user);

struct smtp_auth {
	struct conn *c;
	void *sess;
	enum smtp_auth_state state;
	smtp_auth_done_cb *done;
	char user[AUTH_FIELD_MAX + 1];
	struct scram_auth *scram; /* SCRAM exchange in progress (server/auth/scram.h) */
	bool scram_plus;
	/* An AUTH of this session succeeded: RFC 4954 4 forbids another. A login by the
	 * client certificate alone (certificate_login: preauth) does not set it. */
	bool succeeded;
};

/* The session's struct smtp_auth, for the auth_login callback (which receives the session
 * pointer). Implemented by the session. */
struct smtp_auth *smtp_session_auth(void *sess);

void smtp_auth_init(struct smtp_auth *a, struct conn *c, void *sess);
static inline bool smtp_auth_active(const struct smtp_auth *a)
{
	return a->state != SMTP_AUTH_IDLE;
}
static inline bool smtp_auth_succeeded(const struct smtp_auth *a)
{
	return a->succeeded;
}
/* "AUTH <args>": args is "MECH [initial-response]". Writes a reply or a 334. */
void smtp_auth_start(struct smtp_auth *a, const char *args, size_t len, smtp_auth_done_cb *done);
/* Forgets an exchange in progress (the session closes). */
void smtp_auth_cleanup(struct smtp_auth *a);
/* A continuation line while active. */
void smtp_auth_line(struct smtp_auth *a, const char *line, size_t len);
/* The mechanisms for EHLO: "PLAIN LOGIN SCRAM-SHA-256", plus SCRAM-SHA-256-PLUS when
 * auth.channel_binding is on and TLS gives a binding (scram_plus_offered; otherwise AUTH
 * with it is 504 5.5.4), plus EXTERNAL when the connection carries a verified client
 * certificate with an e-mail identity and no global certificate-AND-password policy
 * (auth_cert_offered). */
const char *smtp_auth_mechanisms(const struct smtp_auth *a);

#endif
