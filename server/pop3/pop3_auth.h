#ifndef SEALMAIL_POP3_AUTH_H
#define SEALMAIL_POP3_AUTH_H
/*
 * POP3 logins in the AUTHORIZATION state: USER/PASS (RFC 1939) and AUTH (RFC 5034) with
 * PLAIN (initial response or a "+ " continuation; "*" cancels), SCRAM-SHA-256(-PLUS) and
 * EXTERNAL (the verified client certificate's identity; not offered where
 * auth.require_client_certificate demands certificate AND password, refused for users whose
 * require-cert flag does). The password check, the failed-login delays, the login cache,
 * the certificate policy and the auth log line are server/auth/'s (auth_login in login.h,
 * the SCRAM exchange SMTP and IMAP use in scram.h); this file only speaks the protocol
 * around them and never logs a secret. POP3 has no additional data with success, so
 * SCRAM's server-final-message is a last "+ " continuation, answered with an empty line
 * before the +OK.
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
/* A SCRAM step ended without an outcome for done, with input paused: rc 0, a "+ " challenge
 * was written and the next line goes to pop3_auth_continue; rc -1, the exchange ended with
 * an -ERR written here (as a -1 return of the functions below). The session takes input
 * again after it. */
typedef void pop3_auth_more_fn(void *sess, int rc);

enum pop3_auth_step {
	POP3_AUTH_IDLE,
	POP3_AUTH_PLAIN_WAIT,    /* "+ " sent: the next line is the PLAIN response */
	POP3_AUTH_EXTERNAL_WAIT, /* "+ " sent: the next line is the EXTERNAL response */
	POP3_AUTH_SCRAM_WAIT,    /* "+ [challenge]" sent: the next line is SCRAM's */
};

struct scram_auth;

struct pop3_auth {
	struct conn *c;
	void *sess;
	pop3_auth_done_fn *done;
	pop3_auth_more_fn *more;
	enum pop3_auth_step step;
	struct scram_auth *scram; /* the SCRAM exchange in progress, if any */
	bool scram_plus;
	bool have_user;
	char user[AUTH_FIELD_MAX + 1]; /* from USER */
};

void pop3_auth_init(struct pop3_auth *a, struct conn *c, void *sess, pop3_auth_done_fn *done,
                    pop3_auth_more_fn *more);
/* The session's struct pop3_auth, for the SCRAM callback (which receives the session
 * pointer). Implemented by the session. */
struct pop3_auth *pop3_session_auth(void *sess);
void pop3_auth_free(struct pop3_auth *a);

/* arg/len: the command's argument (after one space), len 0 when none. USER answers at
 * once: 0, or -1 when it answered -ERR. PASS, AUTH and pop3_auth_continue return 1 when
 * done runs (or already ran) with the outcome, or, for a SCRAM step, when done or more
 * runs later; 0 when they answered "+ " (a continuation follows) or, for a bare AUTH, the
 * list of mechanisms; -1 when they answered -ERR themselves (usage, malformed response,
 * "*"). */
int pop3_auth_user(struct pop3_auth *a, const char *arg, size_t len);
/* The password is secret: the caller must not log the line. */
int pop3_auth_pass(struct pop3_auth *a, const char *arg, size_t len);
int pop3_auth_auth(struct pop3_auth *a, const char *arg, size_t len);
/* True while a SASL exchange waits for the client's next line; that line goes to
 * pop3_auth_continue, not to the command table, and is secret. */
bool pop3_auth_waiting(const struct pop3_auth *a);
int pop3_auth_continue(struct pop3_auth *a, const char *line, size_t len);
/* The SASL mechanisms to advertise in CAPA now: "PLAIN SCRAM-SHA-256", with
 * SCRAM-SHA-256-PLUS where scram_plus_offered, with EXTERNAL where auth_cert_offered; the
 * same set as SMTP AUTH but LOGIN. */
const char *pop3_auth_mechanisms(struct pop3_auth *a);

#endif
