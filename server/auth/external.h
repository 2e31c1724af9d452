#ifndef SEALMAIL_AUTH_EXTERNAL_H
#define SEALMAIL_AUTH_EXTERNAL_H
/*
 * SASL EXTERNAL (RFC 4422 appendix A) for SMTP AUTH and IMAP AUTHENTICATE: the login is
 * the identity of the connection's verified client certificate (conn_cert_identity: SAN
 * rfc822Name, else subject emailAddress), never a name the client typed. It succeeds only
 * when that identity is a user of this server, not disabled, and no policy demands a
 * password as well (auth.require_client_certificate, or the user's require-cert flag:
 * those mean certificate AND password, so EXTERNAL would drop the password).
 * One log line either way: event=auth_ok mech=EXTERNAL user= ip= serial=, or
 * event=auth_failed mech=EXTERNAL ... reason= (no_certificate, no_identity,
 * authzid_mismatch, not_a_user, disabled, password_required, store_error).
 * Not here: the protocol's exchange (continuations, base64) and its replies.
 */
#include <stdbool.h>
#include <stddef.h>

#include "server/auth/login.h"

struct conn;

/* Whether EXTERNAL is worth offering on c: a verified certificate with an e-mail identity
 * and no global certificate-AND-password policy. Whether the identity is a user is only
 * known after a store lookup, so a certificate for a non-user still sees it offered. */
bool auth_external_offered(struct conn *c);

/*
 * Logs in by the client certificate. authzid is the decoded authorization identity (NULL
 * or "" for none); when given it must equal the certificate's identity (case-insensitive).
 * Like auth_login: the connection is paused and held until cb has run; cb runs exactly
 * once on the loop thread (possibly before this returns), unless the connection closed
 * meanwhile (then never). On AUTH_LOGIN_OK the caller calls conn_set_authenticated itself.
 * A refusal is AUTH_LOGIN_FAILED (AUTH_LOGIN_TEMPFAIL when the store failed).
 */
void auth_external(struct conn *c, const char *authzid, auth_login_cb *cb);

#endif
