/*
 * Failed-login throttling (see auth.h). Three kinds of entries, each with a failure count
 * that is forgotten after AUTHFAIL_FORGET_MS without a failure:
 *   "i:" address          all failures from a client address, and its check slots;
 *   "p:" address " " user the failures for one account from one address (an address has
 *                         no space, so the first space splits the key unambiguously);
 *   "u:" user             the failures for an account from anywhere.
 * Only failure replies wait: the delay doubles per failure up to a cap, the larger of the
 * address's and the account's applies. A success answers at once, so the address count
 * must not punish it; it also forgives its own pair: the owner's typos stop counting
 * against the address, while guesses at other accounts keep counting.
 *
 * A delay after the check alone is not enough: a client that sees no immediate success
 * knows the guess failed and could drop the connection and try again on a new one. Hence
 * the slots: while an address has recent failures, at most AUTHFAIL_SLOTS of its checks
 * may be in flight or inside their failure's delay, wherever the connections went. An
 * account that logged in from the address since its last failure there skips the queue,
 * so a guesser behind the same NAT does not hold up the colleagues who type correctly.
 */
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "server/auth/auth.h"

#define AUTHFAIL_BUCKETS   1024
#define AUTHFAIL_MAX       65536 /* entries kept; beyond this the oldest are swept */
#define AUTHFAIL_FORGET_MS (15 * 60 * 1000)
#define AUTHFAIL_IN_FLIGHT UINT64_MAX /* a slot whose check has not ended */

struct authfail_entry {
	struct authfail_entry *next;
	uint64_t last_ms; /* of the last failure (or, for a pair, the last success) */
	unsigned failures;
	bool good;                      /* pair: logged in since its last failure */
	uint64_t slots[AUTHFAIL_SLOTS]; /* address: free before, busy until this time */
	char key[];
};

struct authfail {
	struct authfail_entry *buckets[AUTHFAIL_BUCKETS];
	size_t n;
};

static unsigned af_hash(const char *key)
{
	unsigned h = 2166136261u;
	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h % AUTHFAIL_BUCKETS;
}

/* "prefix" + a, or "prefix" + a + " " + b; free with free(). */
static char *af_key(const char *prefix, const char *a, const char *b)
{
	size_t pl = strlen(prefix), al = strlen(a), bl = b != NULL ? strlen(b) + 1 : 0;
	char *k = xmalloc(pl + al + bl + 1);
	memcpy(k, prefix, pl);
	memcpy(k + pl, a, al);
	if (b != NULL) {
		k[pl + al] = ' ';
		memcpy(k + pl + al + 1, b, bl - 1);
	}
	k[pl + al + bl] = '\0';
	return k;
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

/* Drops every entry last touched age_ms or longer ago. */
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

/* Makes room under a flood of new names: the oldest go first (halving the age until a
 * quarter of the table is free), so the flood's own fresh address entry survives and the
 * work is paid once per quarter table, not per insert. */
static void af_make_room(struct authfail *af, uint64_t now_ms)
{
	for (uint64_t age = AUTHFAIL_FORGET_MS / 2; age > 0 && af->n > AUTHFAIL_MAX / 4 * 3;
	     age /= 2)
		af_sweep(af, now_ms, age);
	if (af->n > AUTHFAIL_MAX / 4 * 3)
		af_sweep(af, now_ms, 0);
}

/* The entry for key, or NULL. With create, a new (zeroed) entry when there is none: any
 * entry pointer held from before may then have been swept, so callers finish with one
 * entry before they look up the next. */
static struct authfail_entry *af_find(struct authfail *af, const char *key, uint64_t now_ms,
                                      bool create)
{
	unsigned h = af_hash(key);
	struct authfail_entry **pp = &af->buckets[h];
	while (*pp != NULL) {
		struct authfail_entry *e = *pp;
		if (now_ms - e->last_ms >= AUTHFAIL_FORGET_MS) {
			*pp = e->next;
			free(e);
			af->n--;
			continue;
		}
		if (strcmp(e->key, key) == 0)
			return e;
		pp = &e->next;
	}
	if (!create)
		return NULL;
	if (af->n >= AUTHFAIL_MAX) {
		af_make_room(af, now_ms);
		h = af_hash(key);
	}
	size_t kl = strlen(key);
	struct authfail_entry *e = xcalloc(1, sizeof(*e) + kl + 1);
	memcpy(e->key, key, kl + 1);
	e->last_ms = now_ms;
	e->next = af->buckets[h];
	af->buckets[h] = e;
	af->n++;
	return e;
}

static struct authfail_entry *af_get(struct authfail *af, const char *prefix, const char *a,
                                     const char *b, uint64_t now_ms, bool create)
{
	char *k = af_key(prefix, a, b);
	struct authfail_entry *e = af_find(af, k, now_ms, create);
	free(k);
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

/* Ends one in-flight check of the address: its slot is busy until `until` (0: free). The
 * entry may have been swept meanwhile; then there is nothing to end. */
static void af_slot_end(struct authfail_entry *e, uint64_t until)
{
	if (e == NULL)
		return;
	for (size_t i = 0; i < AUTHFAIL_SLOTS; i++) {
		if (e->slots[i] == AUTHFAIL_IN_FLIGHT) {
			e->slots[i] = until;
			return;
		}
	}
}

unsigned authfail_begin(struct authfail *af, const char *ip, const char *user, uint64_t now_ms,
                        bool *held_r)
{
	*held_r = false;
	if (user != NULL) {
		const struct authfail_entry *p = af_get(af, "p:", ip, user, now_ms, false);
		if (p != NULL && p->good)
			return 0;
	}
	struct authfail_entry *e = af_get(af, "i:", ip, NULL, now_ms, false);
	if (e == NULL || e->failures == 0)
		return 0;
	uint64_t soonest = AUTHFAIL_IN_FLIGHT;
	for (size_t i = 0; i < AUTHFAIL_SLOTS; i++) {
		if (e->slots[i] <= now_ms) {
			e->slots[i] = AUTHFAIL_IN_FLIGHT;
			*held_r = true;
			return 0;
		}
		if (e->slots[i] < soonest)
			soonest = e->slots[i];
	}
	/* Every slot in flight: their ends are not known yet, so look again shortly. */
	if (soonest == AUTHFAIL_IN_FLIGHT)
		return AUTHFAIL_BASE_MS;
	return (unsigned)(soonest - now_ms);
}

unsigned authfail_failed(struct authfail *af, const char *ip, const char *user, bool held,
                         uint64_t now_ms)
{
	/* The delay grows with the failures before this one, so a single typo answers at
	 * once; it is the same for every name, known or not. */
	unsigned d = af_delay(af_get(af, "i:", ip, NULL, now_ms, false), AUTHFAIL_IP_CAP);
	if (user != NULL) {
		unsigned u =
		    af_delay(af_get(af, "u:", user, NULL, now_ms, false), AUTHFAIL_USER_CAP);
		if (u > d)
			d = u;
	}
	struct authfail_entry *e = af_get(af, "i:", ip, NULL, now_ms, true);
	e->failures++;
	e->last_ms = now_ms;
	if (held) {
		af_slot_end(e, now_ms + d);
	} else {
		/* Checked without a slot (the address had no failures yet, or the account had
		 * logged in from it): the failure's delay still occupies the slot that frees
		 * first, so a burst of such guesses fills the queue for the ones after it. */
		size_t best = AUTHFAIL_SLOTS;
		for (size_t i = 0; i < AUTHFAIL_SLOTS; i++)
			if (e->slots[i] != AUTHFAIL_IN_FLIGHT &&
			    (best == AUTHFAIL_SLOTS || e->slots[i] < e->slots[best]))
				best = i;
		if (best < AUTHFAIL_SLOTS && e->slots[best] < now_ms + d)
			e->slots[best] = now_ms + d;
	}
	if (user != NULL) {
		e = af_get(af, "p:", ip, user, now_ms, true);
		e->failures++;
		e->good = false;
		e->last_ms = now_ms;
		e = af_get(af, "u:", user, NULL, now_ms, true);
		e->failures++;
		e->last_ms = now_ms;
	}
	return d;
}

void authfail_succeeded(struct authfail *af, const char *ip, const char *user, bool held,
                        uint64_t now_ms)
{
	struct authfail_entry *e = af_get(af, "i:", ip, NULL, now_ms, false);
	if (e == NULL)
		return; /* nothing from this address to forgive or to skip later */
	if (held)
		af_slot_end(e, 0);
	if (user == NULL)
		return;
	/* The pair's failures were the owner's own typos: they leave the address's count.
	 * Failures at other accounts stay, so one valid account cannot reset a guesser. */
	struct authfail_entry *p = af_get(af, "p:", ip, user, now_ms, false);
	unsigned mine = p != NULL ? p->failures : 0;
	e->failures -= mine < e->failures ? mine : e->failures;
	/* Remember the pair as good so its next login skips the address's queue; only
	 * where the address has failures, so ordinary logins add nothing to the table. */
	p = af_get(af, "p:", ip, user, now_ms, true);
	p->failures = 0;
	p->good = true;
	p->last_ms = now_ms;
	struct authfail_entry *u = af_get(af, "u:", user, NULL, now_ms, false);
	if (u != NULL)
		u->failures = 0;
}

void authfail_abandoned(struct authfail *af, const char *ip, bool held, uint64_t now_ms)
{
	if (held)
		af_slot_end(af_get(af, "i:", ip, NULL, now_ms, false), 0);
}
