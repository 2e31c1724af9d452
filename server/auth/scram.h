#ifndef SEALMAIL_AUTH_SCRAM_H
#define SEALMAIL_AUTH_SCRAM_H
/*
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) and SCRAM-SHA-256-PLUS with tls-exporter channel
 * binding (RFC 9266), for any protocol session. GNU SASL does the mechanism; this module
 * is the only one that includes gsasl.h. Two layers:
 *
 * - scram_server_*: one exchange, given the user's stored material (salt, iterations,
 *   StoredKey, ServerKey, all base64 as the store keeps them). Pure apart from GNU SASL:
 *   no I/O, no store, no libuv; unit-tested against a GNU SASL client.
 * - scram_auth_*: the login around it for a connection, the one SMTP AUTH, IMAP
 *   AUTHENTICATE and POP3 AUTH share (they only carry its messages in their continuations).
 *   Like auth_login (login.h): the check slot and the failed-login delay of failure
 *   answers, the store lookup off the loop thread, dummy material for an unknown or
 *   disabled user or one without SCRAM material (the same answers in the same time as a
 *   wrong password), the certificate policy, one log line (event=auth_ok /
 *   event=auth_failed with mech, user, ip) and the failure accounting.
 *
 * Only the mechanisms named here are ever started (gsasl_server_start would start any of
 * its built-in ones).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "server/auth/login.h"

#define SCRAM_MECH      "SCRAM-SHA-256"
#define SCRAM_MECH_PLUS "SCRAM-SHA-256-PLUS"
#define SCRAM_CB_LEN    32 /* tls-exporter channel binding bytes (RFC 9266) */

/* True when name (len bytes, any case) is one of our SCRAM mechanisms; *plus_r says
 * which. Inline so protocol code can ask without linking GNU SASL. */
static inline bool scram_mech_allowed(const char *name, size_t len, bool *plus_r)
{
	if (len == strlen(SCRAM_MECH) && strncasecmp(name, SCRAM_MECH, len) == 0) {
		*plus_r = false;
		return true;
	}
	if (len == strlen(SCRAM_MECH_PLUS) && strncasecmp(name, SCRAM_MECH_PLUS, len) == 0) {
		*plus_r = true;
		return true;
	}
	return false;
}

/* ---- one exchange ---------------------------------------------------------------- */

struct scram_server;

/* Starts a server exchange. cb (SCRAM_CB_LEN bytes, copied) is the connection's
 * tls-exporter binding, or NULL when there is none; PLUS needs it. Without PLUS it is
 * still given when PLUS was advertised, so a client that says "y" (it could bind but
 * thinks we cannot: a downgrade) is refused. 0, or -ENOTSUP (PLUS without cb) / -EIO. */
int scram_server_new(bool plus, const unsigned char *cb, size_t cb_len, struct scram_server **x_r);
/* Frees x and wipes what it held. NULL is fine. */
void scram_server_free(struct scram_server *x);

/* The user name of a base64 client-first-message (the n= attribute, =2C and =3D
 * decoded) into user (NUL-terminated). 0 or -EINVAL (bad base64 or syntax, no name,
 * a control byte, longer than userlen - 1). */
int scram_client_first_user(const char *b64, size_t len, char *user, size_t userlen);

/* The stored material of the user (strings borrowed, copied into the session). 0/-EIO. */
int scram_server_set_material(struct scram_server *x, const char *salt, unsigned iterations,
                              const char *stored_key, const char *server_key);
/* Material for a user who does not exist: derived from user and a per-process secret,
 * so the same name always gets the same salt, and no proof can match it. 0/-EIO. */
int scram_server_set_dummy(struct scram_server *x, const char *user);

/* Feeds one base64 client message (the client-first, then the client-final) and sets
 * *out_r to the base64 answer (malloc'd; the caller frees it), or NULL.
 * Returns 0 with the server-first-message (more to come), 1 with the server-final-message
 * (the proof matched: logged in), or <0: -EACCES (wrong proof, authzid other than the
 * user, channel-binding mismatch, downgrade), -EINVAL (malformed message). */
int scram_server_step(struct scram_server *x, const char *b64, size_t len, char **out_r);

/* The user name GNU SASL parsed from the client-first (after a step), or NULL. */
const char *scram_server_user(struct scram_server *x);

/* ---- the login around it ------------------------------------------------------------ */

struct conn;
struct scram_auth;

/* Whether SCRAM-SHA-256-PLUS is offered on c: auth.channel_binding is on and the TLS
 * session has a tls-exporter binding. Where it is not, protocols refuse the mechanism as
 * unknown, and scram_auth_start gives GNU SASL no binding (so "y" is accepted). */
bool scram_plus_offered(struct conn *c);

struct scram_auth_result {
	/* false: send challenge (base64) in a continuation and pass the client's answer to
	 * scram_auth_step. That happens twice: with the server-first-message, and with the
	 * server-final-message once the proof matched (SMTP, IMAP and POP3 have no "additional
	 * data with success", RFC 4422 5: the client answers it with an empty response).
	 * true: the exchange is over, see status; AUTH_LOGIN_OK only after that empty answer. */
	bool done;
	enum auth_login_status status;
	/* With AUTH_LOGIN_FAILED: the answer to the server-final-message was not empty. The
	 * proof had matched (logged as event=auth_ok) but the client broke the exchange: the
	 * protocol answers as to a malformed response, and the session stays logged out. */
	bool malformed;
	const char *challenge; /* borrowed during the callback */
	int64_t user_id;
	const char *user; /* normalised address, valid during the callback */
};

typedef void scram_auth_cb(void *sess, const struct scram_auth_result *r);

/*
 * Starts a SCRAM login on c with the base64 client-first-message. Returns NULL (and never
 * calls cb) when that message cannot be decoded: the caller answers a syntax error.
 * Otherwise the connection is paused and held until cb has run; cb runs once per step
 * (this one and each scram_auth_step), on the loop thread, unless the connection closed
 * meanwhile. The caller owns the result and frees it with scram_auth_free once done (or
 * when its session closes between steps).
 */
struct scram_auth *scram_auth_start(struct conn *c, bool plus, const char *b64, size_t len,
                                    scram_auth_cb *cb);
/* The client's answer to a challenge (base64; "" for an empty line). cb runs once. A
 * client's "*" (cancel) is the protocol's to answer: it calls scram_auth_free instead. */
void scram_auth_step(struct scram_auth *x, const char *b64, size_t len);
/* Forgets the exchange (not while a step is running: the connection is held then, and
 * its session is not closed before the step's callback). NULL is fine. */
void scram_auth_free(struct scram_auth *x);

#endif
