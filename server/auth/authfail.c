/*
 * Failed-login throttling. Each client address and each account has a failure count that
 * decays: after AUTHFAIL_FORGET_MS without a failure it is forgotten. The delay before the
 * next answer doubles per failure up to a cap; the larger of the address's and the
 * account's delay applies. Delays, not lockouts: a flood against one account slows the
 * attacker but never locks its owner out for long.
 */
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "server/auth/auth.h"

#define AUTHFAIL_BUCKETS   1024
#define AUTHFAIL_MAX       65536 /* entries kept; beyond this the oldest are swept */
#define AUTHFAIL_FORGET_MS (15 * 60 * 1000)
#define AUTHFAIL_BASE_MS   250
#define AUTHFAIL_IP_CAP    15000
#define AUTHFAIL_USER_CAP  5000

struct authfail_entry {
	struct authfail_entry *next;
	uint64_t last_ms;
	unsigned failures;
	char key[]; /* "i:" + address or "u:" + account */
};

struct authfail {
	struct authfail_entry *buckets[AUTHFAIL_BUCKETS];
	size_t n;
};

static unsigned af_hash(const char *prefix, const char *s)
{
	unsigned h = 2166136261u;
	for (; *prefix; prefix++)
		h = (h ^ (unsigned char)*prefix) * 16777619u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % AUTHFAIL_BUCKETS;
}

static bool af_match(const struct authfail_entry *e, const char *prefix, const char *s)
{
	size_t pl = strlen(prefix);
	return strncmp(e->key, prefix, pl) == 0 && strcmp(e->key + pl, s) == 0;
}

struct authfail *authfail_new(void)
{
	return xcalloc(1, sizeof(struct authfail));
}

void authfail_free(struct authfail *af)
{
	if (af == NULL)
		return;
	for (size_t i = 0; i < AUTHFAIL_BUCKETS; i++) {
		while (af->buckets[i] != NULL) {
			struct authfail_entry *e = af->buckets[i];
			af->buckets[i] = e->next;
			free(e);
		}
	}
	free(af);
}

/* Drops forgotten entries (or, when nothing is old enough, everything older than
 * half the forget time) so the table stays bounded under a flood of new addresses. */
static void af_sweep(struct authfail *af, uint64_t now_ms, uint64_t age_ms)
{
	for (size_t i = 0; i < AUTHFAIL_BUCKETS; i++) {
		struct authfail_entry **pp = &af->buckets[i];
		while (*pp != NULL) {
			struct authfail_entry *e = *pp;
			if (now_ms - e->last_ms >= age_ms) {
				*pp = e->next;
				free(e);
				af->n--;
			} else {
				pp = &e->next;
			}
		}
	}
}

static struct authfail_entry *af_find(struct authfail *af, const char *prefix, const char *s,
                                      uint64_t now_ms, bool create)
{
	unsigned h = af_hash(prefix, s);
	struct authfail_entry **pp = &af->buckets[h];
	while (*pp != NULL) {
		struct authfail_entry *e = *pp;
		if (now_ms - e->last_ms >= AUTHFAIL_FORGET_MS) {
			*pp = e->next;
			free(e);
			af->n--;
			continue;
		}
		if (af_match(e, prefix, s))
			return e;
		pp = &e->next;
	}
	if (!create)
		return NULL;
	if (af->n >= AUTHFAIL_MAX) {
		af_sweep(af, now_ms, AUTHFAIL_FORGET_MS / 2);
		if (af->n >= AUTHFAIL_MAX)
			af_sweep(af, now_ms, 0);
	}
	size_t pl = strlen(prefix), sl = strlen(s);
	struct authfail_entry *e = xcalloc(1, sizeof(*e) + pl + sl + 1);
	memcpy(e->key, prefix, pl);
	memcpy(e->key + pl, s, sl + 1);
	e->last_ms = now_ms;
	e->next = af->buckets[h];
	af->buckets[h] = e;
	af->n++;
	return e;
}

static unsigned af_delay(const struct authfail_entry *e, unsigned cap)
{
	if (e == NULL || e->failures == 0)
		return 0;
	unsigned shift = e->failures - 1 > 16 ? 16 : e->failures - 1;
	uint64_t d = (uint64_t)AUTHFAIL_BASE_MS << shift;
	return d > cap ? cap : (unsigned)d;
}

unsigned authfail_delay_ms(struct authfail *af, const char *ip, const char *user, uint64_t now_ms)
{
	unsigned d = af_delay(af_find(af, "i:", ip, now_ms, false), AUTHFAIL_IP_CAP);
	if (user != NULL) {
		unsigned u = af_delay(af_find(af, "u:", user, now_ms, false), AUTHFAIL_USER_CAP);
		if (u > d)
			d = u;
	}
	return d;
}

void authfail_record(struct authfail *af, const char *ip, const char *user, bool success,
                     uint64_t now_ms)
{
	if (success) {
		/* A right password clears the account's count, not the address's: one
		 * valid account must not reset an address that is guessing at others. */
		if (user != NULL) {
			struct authfail_entry *e = af_find(af, "u:", user, now_ms, false);
			if (e != NULL)
				e->failures = 0;
		}
		return;
	}
	struct authfail_entry *e = af_find(af, "i:", ip, now_ms, true);
	e->failures++;
	e->last_ms = now_ms;
	if (user != NULL) {
		e = af_find(af, "u:", user, now_ms, true);
		e->failures++;
		e->last_ms = now_ms;
	}
}
