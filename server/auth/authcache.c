/*
 * The login cache: HMAC-SHA-256 under a random per-process key of (user, password) maps
 * to a fingerprint of the stored hash the password was checked against and an expiry.
 * No password is kept, and a key stolen from memory does not reveal one (the HMAC key
 * would also be needed and the entry expires quickly). A password change changes the
 * stored hash, so an entry made before it never matches again, even when the change
 * was made by sealctl in another process.
 */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "server/auth/auth.h"

#define AUTHCACHE_BUCKETS 1024
#define AUTHCACHE_MAX     65536

struct authcache_entry {
	struct authcache_entry *next;
	uint64_t expires_ms;
	unsigned char digest[32];
	unsigned char hash_tag[32];
	char user[];
};

struct authcache {
	struct authcache_entry *buckets[AUTHCACHE_BUCKETS];
	unsigned char key[32];
	uint64_t ttl_ms;
	size_t n;
};

struct authcache *authcache_new(uint64_t ttl_ms)
{
	struct authcache *ac = xcalloc(1, sizeof(*ac));
	if (gnutls_rnd(GNUTLS_RND_KEY, ac->key, sizeof(ac->key)) < 0)
		abort();
	ac->ttl_ms = ttl_ms;
	return ac;
}

static void ac_unlink_all(struct authcache *ac,
                          bool (*drop)(struct authcache_entry *, const void *), const void *arg)
{
	for (size_t i = 0; i < AUTHCACHE_BUCKETS; i++) {
		struct authcache_entry **pp = &ac->buckets[i];
		while (*pp != NULL) {
			struct authcache_entry *e = *pp;
			if (drop(e, arg)) {
				*pp = e->next;
				explicit_bzero(e->digest, sizeof(e->digest));
				free(e);
				ac->n--;
			} else {
				pp = &e->next;
			}
		}
	}
}

static bool ac_drop_every(struct authcache_entry *e, const void *arg)
{
	(void)e;
	(void)arg;
	return true;
}

void authcache_free(struct authcache *ac)
{
	if (ac == NULL)
		return;
	ac_unlink_all(ac, ac_drop_every, NULL);
	explicit_bzero(ac->key, sizeof(ac->key));
	free(ac);
}

static void ac_digest(const struct authcache *ac, const char *user, const char *password,
                      unsigned char out[32])
{
	size_t ul = strlen(user), pl = strlen(password);
	unsigned char *msg = xmalloc(ul + pl + 1);
	memcpy(msg, user, ul);
	msg[ul] = '\0';
	memcpy(msg + ul + 1, password, pl);
	gnutls_hmac_fast(GNUTLS_MAC_SHA256, ac->key, sizeof(ac->key), msg, ul + pl + 1, out);
	explicit_bzero(msg, ul + pl + 1);
	free(msg);
}

static void ac_hash_tag(const char *stored_hash, unsigned char out[32])
{
	gnutls_hash_fast(GNUTLS_DIG_SHA256, stored_hash, strlen(stored_hash), out);
}

bool authcache_hit(struct authcache *ac, const char *user, const char *password,
                   const char *stored_hash, uint64_t now_ms)
{
	unsigned char d[32], tag[32];
	ac_digest(ac, user, password, d);
	unsigned h = ((unsigned)d[0] << 8 | d[1]) % AUTHCACHE_BUCKETS;
	bool hit = false;
	for (struct authcache_entry *e = ac->buckets[h]; e != NULL; e = e->next) {
		if (gnutls_memcmp(e->digest, d, sizeof(d)) != 0)
			continue;
		ac_hash_tag(stored_hash, tag);
		hit = e->expires_ms > now_ms && memcmp(e->hash_tag, tag, sizeof(tag)) == 0 &&
		      strcmp(e->user, user) == 0;
		break;
	}
	explicit_bzero(d, sizeof(d));
	return hit;
}

static bool ac_drop_expired(struct authcache_entry *e, const void *arg)
{
	return e->expires_ms <= *(const uint64_t *)arg;
}

void authcache_add(struct authcache *ac, const char *user, const char *password,
                   const char *stored_hash, uint64_t now_ms)
{
	if (ac->n >= AUTHCACHE_MAX) {
		ac_unlink_all(ac, ac_drop_expired, &now_ms);
		if (ac->n >= AUTHCACHE_MAX)
			ac_unlink_all(ac, ac_drop_every, NULL);
	}
	size_t ul = strlen(user);
	struct authcache_entry *e = xcalloc(1, sizeof(*e) + ul + 1);
	ac_digest(ac, user, password, e->digest);
	ac_hash_tag(stored_hash, e->hash_tag);
	memcpy(e->user, user, ul + 1);
	e->expires_ms = now_ms + ac->ttl_ms;
	unsigned h = ((unsigned)e->digest[0] << 8 | e->digest[1]) % AUTHCACHE_BUCKETS;
	/* Replace an older entry for the same credentials. */
	for (struct authcache_entry **pp = &ac->buckets[h]; *pp != NULL; pp = &(*pp)->next) {
		if (memcmp((*pp)->digest, e->digest, sizeof(e->digest)) == 0) {
			struct authcache_entry *old = *pp;
			*pp = old->next;
			free(old);
			ac->n--;
			break;
		}
	}
	e->next = ac->buckets[h];
	ac->buckets[h] = e;
	ac->n++;
}

static bool ac_drop_user(struct authcache_entry *e, const void *arg)
{
	return strcmp(e->user, (const char *)arg) == 0;
}

void authcache_forget(struct authcache *ac, const char *user)
{
	ac_unlink_all(ac, ac_drop_user, user);
}
