/*
 * The access audit's chain, the same for every backend: the hash of a record, and the
 * walk that checks a chain record by record and says where it breaks (store.h, "Access
 * audit"; docs/audit.md gives the format so that anyone can check it with other tools).
 */
#include <gnutls/crypto.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store.h"

#define AUDIT_DOMAIN "sealmail-audit-1"

static void put_u64(gnutls_hash_hd_t h, uint64_t v)
{
	unsigned char b[8];
	for (int i = 7; i >= 0; i--) {
		b[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
	gnutls_hash(h, b, sizeof(b));
}

static void put_text(gnutls_hash_hd_t h, const char *s)
{
	size_t len = s != NULL ? strlen(s) : 0;
	unsigned char b[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
	                      (unsigned char)(len >> 8), (unsigned char)len};
	gnutls_hash(h, b, sizeof(b));
	if (len > 0)
		gnutls_hash(h, s, len);
}

void store_audit_hash(const unsigned char *prev, const struct store_audit_record *r,
                      unsigned char *out)
{
	gnutls_hash_hd_t h;
	if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
		abort(); /* SHA-256 is always there; without it nothing can be trusted */
	gnutls_hash(h, AUDIT_DOMAIN, sizeof(AUDIT_DOMAIN) - 1);
	gnutls_hash(h, prev, 32);
	put_u64(h, r->seq);
	put_u64(h, (uint64_t)r->time_ms);
	const char *fields[] = {r->actor,  r->ip,      r->session, r->proto,
	                        r->action, r->mailbox, r->uids,    r->detail};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		put_text(h, fields[i]);
	gnutls_hash_deinit(h, out);
}

void store_audit_record_free(struct store_audit_record *r)
{
	free(r->actor);
	free(r->ip);
	free(r->session);
	free(r->proto);
	free(r->action);
	free(r->mailbox);
	free(r->uids);
	free(r->detail);
	memset(r, 0, sizeof(*r));
}

void store_audit_records_free(struct store_audit_records *res)
{
	for (size_t i = 0; i < res->n; i++)
		store_audit_record_free(&res->v[i]);
	free(res->v);
	memset(res, 0, sizeof(*res));
}

void store_audit_records_move(struct store_audit_records *dst, struct store_audit_records *src)
{
	store_audit_records_free(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

void store_audit_walk_start(struct store_audit_walk *w, uint64_t anchor_seq,
                            const unsigned char *anchor_hash)
{
	uint64_t want_seq = w->want_seq;
	unsigned char want[32];
	memcpy(want, w->want, sizeof(want));
	memset(w, 0, sizeof(*w));
	w->want_seq = want_seq;
	memcpy(w->want, want, sizeof(want));
	w->expect_seq = anchor_seq + 1;
	memcpy(w->prev, anchor_hash, 32);
	memcpy(w->check.head, anchor_hash, 32);
	/* The anchor itself is the record the operator wrote down: it was pruned since, and
	 * the retention anchor keeps its hash. */
	if (want_seq != 0 && want_seq == anchor_seq)
		w->want_seen = memcmp(want, anchor_hash, 32) == 0;
	if (want_seq != 0 && want_seq < anchor_seq)
		w->want_seen = true; /* pruned long ago: nothing left to compare */
}

static bool walk_fail(struct store_audit_walk *w, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool walk_fail(struct store_audit_walk *w, uint64_t seq, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	w->check.bad_seq = seq;
	vsnprintf(w->check.problem, sizeof(w->check.problem), fmt, ap);
	va_end(ap);
	return false;
}

bool store_audit_walk_step(struct store_audit_walk *w, const struct store_audit_record *r)
{
	if (w->check.bad_seq != 0)
		return false;
	if (r->seq != w->expect_seq) {
		if (r->seq > w->expect_seq)
			return walk_fail(w, w->expect_seq,
			                 "records %" PRIu64 " to %" PRIu64 " are missing (removed)",
			                 w->expect_seq, r->seq - 1);
		return walk_fail(w, r->seq,
		                 "record %" PRIu64 " is out of order (expected %" PRIu64 ")",
		                 r->seq, w->expect_seq);
	}
	unsigned char h[32];
	store_audit_hash(w->prev, r, h);
	if (memcmp(r->prev, w->prev, 32) != 0) {
		/* Its link names something else than the record before it: that one was
		 * replaced, or the link was rewritten. */
		return walk_fail(w, r->seq,
		                 "record %" PRIu64 " does not follow record %" PRIu64
		                 " (the record before it was replaced or its link was changed)",
		                 r->seq, r->seq - 1);
	}
	if (memcmp(h, r->hash, 32) != 0)
		return walk_fail(w, r->seq,
		                 "record %" PRIu64 " was changed after it was written (its "
		                 "contents do not give its hash)",
		                 r->seq);
	if (w->want_seq == r->seq) {
		if (memcmp(w->want, h, 32) != 0)
			return walk_fail(w, r->seq,
			                 "record %" PRIu64 " is not the one written down (its hash "
			                 "differs from the anchor given)",
			                 r->seq);
		w->want_seen = true;
	}
	memcpy(w->prev, h, 32);
	memcpy(w->check.head, h, 32);
	if (w->check.first_seq == 0)
		w->check.first_seq = r->seq;
	w->check.last_seq = r->seq;
	w->check.records++;
	w->expect_seq = r->seq + 1;
	return true;
}

void store_audit_walk_end(struct store_audit_walk *w, uint64_t head_seq,
                          const unsigned char *head_hash)
{
	if (w->check.bad_seq != 0)
		return;
	if (head_seq >= w->expect_seq) {
		walk_fail(w, w->expect_seq,
		          "records %" PRIu64 " to %" PRIu64 " are missing from the end (removed)",
		          w->expect_seq, head_seq);
		return;
	}
	if (head_seq + 1 < w->expect_seq) {
		walk_fail(w, head_seq + 1,
		          "records from %" PRIu64 " on were added behind the store's back (the "
		          "recorded head is %" PRIu64 ")",
		          head_seq + 1, head_seq);
		return;
	}
	if (memcmp(head_hash, w->prev, 32) != 0) {
		walk_fail(w, head_seq == 0 ? 1 : head_seq,
		          "record %" PRIu64 " differs from the head recorded with it", head_seq);
		return;
	}
	if (w->want_seq != 0 && !w->want_seen)
		walk_fail(w, w->want_seq,
		          "record %" PRIu64 " (the anchor given) is not in the chain", w->want_seq);
}
