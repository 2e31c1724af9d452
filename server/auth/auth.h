#ifndef SEALMAIL_AUTH_H
#define SEALMAIL_AUTH_H
/*
 * The pieces of authentication that SMTP, IMAP and POP3 share and that need no store:
 * - SASL PLAIN decoding (RFC 4616),
 * - failed-login throttling per client address and per account (growing delays),
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

struct authfail *authfail_new(void);
void authfail_free(struct authfail *af);
/* Milliseconds to wait before answering an attempt from ip for user (user may be NULL):
 * 0 with no recent failures, then doubling per failure up to a cap (15 s per address,
 * 5 s per account). */
unsigned authfail_delay_ms(struct authfail *af, const char *ip, const char *user, uint64_t now_ms);
void authfail_record(struct authfail *af, const char *ip, const char *user, bool success,
                     uint64_t now_ms);

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
