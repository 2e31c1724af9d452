#ifndef SEALMAIL_AUTH_LOGIN_H
#define SEALMAIL_AUTH_LOGIN_H
/*
 * A password login for any protocol session, with everything around it done once for
 * SMTP, IMAP and POP3 alike:
 *   1. a check slot when the client address has recent failures (auth.h, authfail_begin;
 *      an account that logged in from there since its last failure skips it);
 *   2. the cache of recent successful logins (a warm login skips the yescrypt hash);
 *   3. the store's check (a worker thread; unknown users cost and answer the same);
 *   4. the certificate policy: auth.require_client_certificate or the user's own
 *      require-cert flag demands a verified client certificate that maps to this user,
 *      and a connection that carries a verified certificate may only log in as its user;
 *   5. one log line: event=auth_ok or event=auth_failed with proto, mech, user, ip
 *      (fail2ban matches `event=auth_failed .* ip=<HOST>`), and the failure accounting;
 *   6. a failure's answer waits the failed-login delay; a success answers at once.
 * Protocol code calls auth_login and answers from the callback.
 */
#include <stdbool.h>
#include <stdint.h>

struct conn;

enum auth_login_status {
	AUTH_LOGIN_OK = 0,
	AUTH_LOGIN_FAILED,          /* wrong password, unknown or disabled user: one answer */
	AUTH_LOGIN_CERT,            /* a client certificate for this user is required */
	AUTH_LOGIN_CERT_OTHER_USER, /* the connection's certificate belongs to another user */
	AUTH_LOGIN_TEMPFAIL,        /* the store failed: answer with a temporary error */
};

struct auth_login_result {
	enum auth_login_status status;
	int64_t user_id;
	const char *user; /* normalised address, valid during the callback */
};

typedef void auth_login_cb(void *sess, const struct auth_login_result *r);

/*
 * Starts a login as user with password (both copied; the copy of the password is wiped).
 * mech names the SASL mechanism for the log ("PLAIN", "LOGIN"; the
 * IMAP LOGIN and POP3 USER/PASS commands say "PLAIN", which carries the same). The connection is
 * paused and held until cb has run; cb runs exactly once, on the loop thread, unless the
 * connection closed meanwhile (then never). On AUTH_LOGIN_OK the caller calls
 * conn_set_authenticated itself (so it can word its reply first).
 */
void auth_login(struct conn *c, const char *mech, const char *user, const char *password,
                auth_login_cb *cb);

/* Step 4 alone, for other mechanisms (SCRAM) once the user has proved who they are:
 * 0, or -EACCES with *why_r ("certificate_user_mismatch", "client_certificate_required")
 * when a verified certificate names someone else, or none is there and the configuration
 * or the user's own flag (user_requires_cert) demands one. user: normalised address. */
int auth_cert_policy(struct conn *c, const char *user, bool user_requires_cert, const char **why_r);
/* The status for auth_cert_policy's *why_r, so that the reply can say which it was. */
enum auth_login_status auth_cert_policy_status(const char *why);

#endif
