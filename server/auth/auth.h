#ifndef SEALMAIL_AUTH_H
#define SEALMAIL_AUTH_H
/*
 * The pieces of authentication that SMTP, IMAP and POP3 share and that need no store:
 * - SASL PLAIN decoding (RFC 4616),
 * - failed-login throttling per client address and per account (growing delays of
 *   failure replies only, see authfail_begin),
 * - the cache of recent successful logins (keyed hash of user and password, short
 *   lifetime, invalidated when the stored hash changes, e.g. after `sealctl user passwd`).
 * The password check itself runs in the store, off the loop thread.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_FIELD_MAX 512 /* longest authzid / authcid / password accepted */

struct auth_plain {
	char authzid[AUTH_FIELD_MAX + 1];
	char authcid[AUTH_FIELD_MAX + 1];
	char password[AUTH_FIELD_MAX + 1]; /* wipe with auth_plain_wipe after use */
};

/* Decodes a base64 SASL PLAIN response. 0, or -EINVAL (bad base64, wrong number of NUL
 * separators, empty authcid or password, a field over AUTH_FIELD_MAX, a NUL or control
 * byte in a field). */
int auth_plain_decode(const char *b64, size_t len, struct auth_plain *out);
void auth_plain_wipe(struct auth_plain *p);

/* Decodes one base64 line of AUTH LOGIN into out (NUL-terminated, at most AUTH_FIELD_MAX
 * bytes). 0 or -EINVAL. */
int auth_login_decode(const char *b64, size_t len, char *out, size_t outlen);

/* ---- throttling ----------------------------------------------------------------- */

struct authfail;

#define AUTHFAIL_BASE_MS  250   /* the second failure's delay; it doubles per failure */
#define AUTHFAIL_IP_CAP   15000 /* longest delay from an address's failures */
#define AUTHFAIL_USER_CAP 5000  /* longest delay from an account's failures */
#define AUTHFAIL_SLOTS    4     /* checks an address with failures may have pending */

/*
 * How a password (or SCRAM proof) check goes through the table, on the loop thread:
 *   authfail_begin before the check: 0 means check now, else wait that many ms and ask
 *     again. *held_r tells whether the check took one of the address's slots; pass it on.
 *   then exactly one of: authfail_succeeded (no delay: answer at once), authfail_failed
 *     (returns how long the failure's reply must wait), authfail_abandoned (the check did
 *     not happen or could not decide: store error, connection gone).
 * Only failures wait. A failure counts for the address, for the (address, account) pair
 * and for the account; its reply waits 0 ms for the first failure, then doubles from
 * AUTHFAIL_BASE_MS up to the caps (the larger of the address's and the account's). A
 * success clears the account's count and takes its pair's failures off the address's.
 * Counts are forgotten 15 minutes after their last failure. user may be NULL (a
 * certificate without an identity): then only the address counts.
 */
struct authfail *authfail_new(void);
void authfail_free(struct authfail *af);
unsigned authfail_begin(struct authfail *af, const char *ip, const char *user, uint64_t now_ms,
                        bool *held_r);
unsigned authfail_failed(struct authfail *af, const char *ip, const char *user, bool held,
                         uint64_t now_ms);
void authfail_succeeded(struct authfail *af, const char *ip, const char *user, bool held,
                        uint64_t now_ms);
void authfail_abandoned(struct authfail *af, const char *ip, bool held, uint64_t now_ms);

/* ---- cache of successful logins -------------------------------------------------- */

struct authcache;

/* ttl_ms: how long a successful login is remembered. */
struct authcache *authcache_new(uint64_t ttl_ms);
void authcache_free(struct authcache *ac);
/* True when user logged in with this password within the ttl and the stored hash is still
 * the one it was checked against. */
bool authcache_hit(struct authcache *ac, const char *user, const char *password,
                   const char *stored_hash, uint64_t now_ms);
void authcache_add(struct authcache *ac, const char *user, const char *password,
                   const char *stored_hash, uint64_t now_ms);
/* Forgets every entry of user (password changed, user deleted). */
void authcache_forget(struct authcache *ac, const char *user);

#endif
