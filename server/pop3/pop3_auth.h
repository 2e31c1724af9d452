#ifndef SEALMAIL_POP3_AUTH_H
#define SEALMAIL_POP3_AUTH_H
/*
 * POP3 logins in the AUTHORIZATION state: USER/PASS (RFC 1939) and AUTH (RFC 5034) with
 * PLAIN (initial response or a "+ " continuation; "*" cancels) and EXTERNAL (the verified
 * client certificate's identity; not offered where auth.require_client_certificate
 * demands certificate AND password, refused for users whose require-cert flag does). The
 * password check, the failed-login delays, the login cache, the certificate policy and the
 * auth log line are auth_login's (server/auth/login.h); this file only speaks the protocol
 * around it and never logs a secret.
 *
 * The session's command table lets USER, PASS and AUTH run only after TLS and before
 * login. The outcome goes to the session's done callback, which opens the maildrop and
 * writes the reply: nothing here writes the final +OK / -ERR of a login. done may run
 * before the command function returns (an answer that needs no store), or later on the
 * loop thread with input paused (auth_login resumes input after done returns; EXTERNAL
 * leaves resuming to the session).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/auth/auth.h"
#include "server/auth/login.h"

struct conn;

/* The outcome of a login attempt: r->status as auth_login reports it. r is borrowed. */
typedef void pop3_auth_done_fn(void *sess, const struct auth_login_result *r);

enum pop3_auth_step {
	POP3_AUTH_IDLE,
	POP3_AUTH_PLAIN_WAIT,    /* "+ " sent: the next line is the PLAIN response */
	POP3_AUTH_EXTERNAL_WAIT, /* "+ " sent: the next line is the EXTERNAL response */
};

struct pop3_auth {
	struct conn *c;
	void *sess;
	pop3_auth_done_fn *done;
	enum pop3_auth_step step;
	bool have_user;
	char user[AUTH_FIELD_MAX + 1]; /* from USER */
};

void pop3_auth_init(struct pop3_auth *a, struct conn *c, void *sess, pop3_auth_done_fn *done);
void pop3_auth_free(struct pop3_auth *a);

/* arg/len: the command's argument (after one space), len 0 when none. USER answers at
 * once: 0, or -1 when it answered -ERR. PASS, AUTH and pop3_auth_continue return 1 when
 * done runs (or already ran) with the outcome, 0 when they answered "+ " (a continuation
 * follows) or, for a bare AUTH, the list of mechanisms, -1 when they answered -ERR
 * themselves (usage, malformed response, "*"). */
int pop3_auth_user(struct pop3_auth *a, const char *arg, size_t len);
/* The password is secret: the caller must not log the line. */
int pop3_auth_pass(struct pop3_auth *a, const char *arg, size_t len);
int pop3_auth_auth(struct pop3_auth *a, const char *arg, size_t len);
/* True while a SASL exchange waits for the client's next line; that line goes to
 * pop3_auth_continue, not to the command table, and is secret. */
bool pop3_auth_waiting(const struct pop3_auth *a);
int pop3_auth_continue(struct pop3_auth *a, const char *line, size_t len);
/* The SASL mechanisms to advertise in CAPA now ("PLAIN" or "PLAIN EXTERNAL"). */
const char *pop3_auth_mechanisms(struct pop3_auth *a);

#endif
