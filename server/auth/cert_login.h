#ifndef SEALMAIL_AUTH_CERT_LOGIN_H
#define SEALMAIL_AUTH_CERT_LOGIN_H
/*
 * The one road from a client certificate to a logged-in user, for every protocol and both
 * ways of asking: SASL EXTERNAL (RFC 4422 appendix A; SMTP AUTH, IMAP AUTHENTICATE, POP3
 * AUTH) and the login at connect that listeners[].certificate_login: preauth gives (IMAP
 * PREAUTH greeting, submission without AUTH).
 *
 * The login is the identity of the connection's verified client certificate
 * (conn_cert_identity, decided once when the handshake completed: SAN rfc822Name, else
 * subject emailAddress), never a name the client typed. It succeeds only when that
 * identity is a user of this server, not disabled, and no policy demands a password as
 * well (auth.require_client_certificate, or the user's require-cert flag: those mean
 * certificate AND password, so the certificate alone must not log in).
 *
 * Everything around the decision is done here once:
 *   - one log line: event=auth_ok mech=EXTERNAL user= ip= serial=, or event=auth_failed
 *     mech=EXTERNAL ... serial= reason= (no_certificate, no_identity, authzid_mismatch,
 *     not_a_user, disabled, password_required, store_error); at connect a user who must
 *     also give a password is event=preauth_skipped reason=password_required instead,
 *     which is no failure (the client has not tried anything);
 *   - the failure accounting of auth.h: a refusal counts for the address and the account
 *     and its answer waits the failed-login delay; a success clears the account's count;
 *     no check slot is taken (a certificate cannot be guessed);
 * Not here: the protocol's exchange (continuations, base64) and its replies.
 */
#include <stdbool.h>
#include <stddef.h>

#include "server/auth/login.h"

struct conn;

enum auth_cert_use {
	AUTH_CERT_EXTERNAL, /* the client asked with SASL EXTERNAL */
	AUTH_CERT_PREAUTH,  /* the listener logs certificate holders in at connect */
};

/* Whether EXTERNAL is worth offering on c: a verified certificate with an e-mail identity
 * and no global certificate-AND-password policy. Whether the identity is a user is only
 * known after a store lookup, so a certificate for a non-user still sees it offered. */
bool auth_cert_offered(struct conn *c);

/*
 * Logs in by the client certificate. authzid is the decoded authorization identity of
 * EXTERNAL (NULL or "" for none); when given it must equal the certificate's identity
 * (case-insensitive). Like auth_login: the connection is paused and held until cb has run;
 * cb runs exactly once on the loop thread, never before this returns, unless the
 * connection closed meanwhile (then never). On AUTH_LOGIN_OK (r->user, r->user_id) the
 * caller calls conn_set_authenticated itself. Anything else is AUTH_LOGIN_FAILED, or
 * AUTH_LOGIN_TEMPFAIL when the store failed; for AUTH_CERT_PREAUTH both mean "greet as
 * usual and let the client log in".
 */
void auth_cert_login(struct conn *c, enum auth_cert_use use, const char *authzid,
                     auth_login_cb *cb);

#endif
