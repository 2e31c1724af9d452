/*
 * The selected mailbox as the session sees it: the snapshot of its messages in sequence
 * order, sequence/UID set mapping, and the untagged updates (EXISTS, FETCH FLAGS, EXPUNGE
 * or VANISHED) that bring it up to date with the store at command boundaries and in IDLE,
 * woken by the notifier (no polling).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xmalloc.h"
#include "server/imap/imap_private.h"
#include "server/services.h"

/* ---- snapshot ----
 *
 * Sessions on the same mailbox that have seen the same changes hold equal snapshots, and
 * a large mailbox makes the snapshot most of what an idle session costs (40 bytes a
 * message). So equal snapshots are one: refcounted, found again after SELECT and after
 * every sync by comparing with the others of the mailbox, and copied before a session
 * changes its own (copy on write). All of it runs on the loop thread.
 *
 * A snapshot read whole from the store (SELECT) is keyed: it is the mailbox exactly as it
 * was at that UIDVALIDITY and HIGHESTMODSEQ. Every change to a mailbox's messages raises
 * its HIGHESTMODSEQ in the same transaction (delivery, APPEND, COPY/MOVE, STORE, EXPUNGE;
 * storage/sqlite), whoever makes it, so a later SELECT that reads the same key from the
 * store may take the keyed snapshot instead of listing every message again. The key goes
 * as soon as the snapshot changes in place (own()): merged updates and a session's own
 * changes are not a state the store was in at any one modseq. A keyed snapshot nobody
 * holds any more stays for a while in a small cache (IMAP_SNAP_CACHE_*), so a client that
 * logs in, selects and logs out again finds it too.
 */

#define IMAP_SNAP_CACHE_MAX    16
#define IMAP_SNAP_CACHE_BYTES  (64u << 20)
#define IMAP_SNAP_CACHE_TTL_MS 30000u

struct imap_snap {
	unsigned refs;
	int64_t mailbox_id;
	struct imap_msg *msgs; /* keywords owned */
	size_t n;
	struct imap_snap *prev, *next;
	bool keyed;
	struct imap_snap_key key;
	/* While refs == 0: in the cache since released_ms. */
	struct imap_snap *cprev, *cnext;
	uint64_t released_ms;
	size_t bytes; /* 0 until counted */
	/* First message without \Seen (1-based, 0: none), once asked for. */
	bool unseen_known;
	uint32_t first_unseen;
};

static struct imap_snap *snaps; /* every snapshot, held or cached */
/* Released keyed snapshots, oldest first. */
static struct imap_snap *cache_head, *cache_tail;
static size_t cache_count, cache_bytes;

static uint64_t clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t (*now_ms)(void) = clock_ms;

static void view(struct imap_client *cl)
{
	cl->msgs = cl->snap != NULL ? cl->snap->msgs : NULL;
	cl->n_msgs = cl->snap != NULL ? cl->snap->n : 0;
}

static struct imap_snap *snap_new(int64_t mailbox_id, struct imap_msg *msgs, size_t n)
{
	struct imap_snap *sn = xcalloc(1, sizeof(*sn));
	sn->refs = 1;
	sn->mailbox_id = mailbox_id;
	sn->msgs = msgs;
	sn->n = n;
	sn->next = snaps;
	if (snaps != NULL)
		snaps->prev = sn;
	snaps = sn;
	return sn;
}

static void snap_free(struct imap_snap *sn)
{
	for (size_t i = 0; i < sn->n; i++)
		free(sn->msgs[i].keywords);
	free(sn->msgs);
	if (sn->prev != NULL)
		sn->prev->next = sn->next;
	else
		snaps = sn->next;
	if (sn->next != NULL)
		sn->next->prev = sn->prev;
	free(sn);
}

static void cache_unlink(struct imap_snap *sn)
{
	if (sn->cprev != NULL)
		sn->cprev->cnext = sn->cnext;
	else
		cache_head = sn->cnext;
	if (sn->cnext != NULL)
		sn->cnext->cprev = sn->cprev;
	else
		cache_tail = sn->cprev;
	sn->cprev = sn->cnext = NULL;
	cache_count--;
	cache_bytes -= sn->bytes;
}

/* Drops what has been cached too long, then the oldest while over the bounds. */
static void cache_prune(uint64_t now)
{
	while (cache_head != NULL &&
	       (now - cache_head->released_ms >= IMAP_SNAP_CACHE_TTL_MS ||
	        cache_count > IMAP_SNAP_CACHE_MAX || cache_bytes > IMAP_SNAP_CACHE_BYTES)) {
		struct imap_snap *sn = cache_head;
		cache_unlink(sn);
		snap_free(sn);
	}
}

static size_t snap_bytes(const struct imap_snap *sn)
{
	size_t b = sizeof(*sn) + sn->n * sizeof(sn->msgs[0]);
	for (size_t i = 0; i < sn->n; i++)
		if (sn->msgs[i].keywords != NULL)
			b += strlen(sn->msgs[i].keywords) + 1;
	return b;
}

static void snap_ref(struct imap_snap *sn)
{
	if (sn->refs++ == 0)
		cache_unlink(sn);
}

static void snap_unref(struct imap_snap *sn)
{
	if (sn == NULL || --sn->refs > 0)
		return;
	if (!sn->keyed) {
		snap_free(sn);
		return;
	}
	sn->released_ms = now_ms();
	if (sn->bytes == 0) /* counted once: a keyed snapshot does not change */
		sn->bytes = snap_bytes(sn);
	sn->cprev = cache_tail;
	sn->cnext = NULL;
	if (cache_tail != NULL)
		cache_tail->cnext = sn;
	else
		cache_head = sn;
	cache_tail = sn;
	cache_count++;
	cache_bytes += sn->bytes;
	cache_prune(sn->released_ms);
}

static bool msg_equal(const struct imap_msg *a, const struct imap_msg *b)
{
	return a->uid == b->uid && a->flags == b->flags && a->modseq == b->modseq &&
	       a->size == b->size && a->internal_date == b->internal_date &&
	       strcmp(a->keywords != NULL ? a->keywords : "",
	              b->keywords != NULL ? b->keywords : "") == 0;
}

static bool snap_equal(const struct imap_snap *a, const struct imap_snap *b)
{
	if (a->mailbox_id != b->mailbox_id || a->n != b->n)
		return false;
	/* The ends first: snapshots that differ mostly differ there (new mail). */
	if (a->n > 0 && !msg_equal(&a->msgs[a->n - 1], &b->msgs[b->n - 1]))
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!msg_equal(&a->msgs[i], &b->msgs[i]))
			return false;
	return true;
}

/* Trades the session's snapshot for an equal one another session holds (or the cache
 * has), if any. */
static void share(struct imap_client *cl)
{
	struct imap_snap *mine = cl->snap;
	if (mine == NULL || mine->refs > 1)
		return;
	for (struct imap_snap *sn = snaps; sn != NULL; sn = sn->next)
		if (sn != mine && snap_equal(sn, mine)) {
			/* Equal messages: either key describes both; the newer is the likelier
			 * to be asked for. */
			if (mine->keyed && (!sn->keyed || mine->key.modseq > sn->key.modseq)) {
				sn->keyed = true;
				sn->key = mine->key;
			}
			snap_ref(sn);
			snap_unref(mine);
			cl->snap = sn;
			break;
		}
	view(cl);
}

/* Makes the session's snapshot its own (a copy when it is shared) before it changes. */
static void own(struct imap_client *cl)
{
	struct imap_snap *sn = cl->snap;
	if (sn == NULL) {
		cl->snap = snap_new(cl->mailbox_id, NULL, 0);
	} else if (sn->refs > 1) {
		struct imap_msg *m = xcalloc(sn->n + 1, sizeof(*m));
		for (size_t i = 0; i < sn->n; i++) {
			m[i] = sn->msgs[i];
			m[i].keywords = imap_keywords_dup(sn->msgs[i].keywords);
		}
		sn->refs--;
		cl->snap = snap_new(sn->mailbox_id, m, sn->n);
	}
	cl->snap->keyed = false;
	cl->snap->unseen_known = false;
	cl->snap->bytes = 0;
	view(cl);
}

void imap_snapshot_clear(struct imap_client *cl)
{
	snap_unref(cl->snap);
	cl->snap = NULL;
	view(cl);
}

static bool key_equal(const struct imap_snap_key *a, const struct imap_snap_key *b)
{
	return a->uidvalidity == b->uidvalidity && a->uidnext == b->uidnext &&
	       a->modseq == b->modseq && a->messages == b->messages;
}

bool imap_snapshot_reuse(struct imap_client *cl, const struct imap_snap_key *key)
{
	imap_snapshot_clear(cl);
	cache_prune(now_ms());
	struct imap_snap *found = NULL, *sn = snaps;
	while (sn != NULL) {
		struct imap_snap *next = sn->next;
		if (sn->mailbox_id == cl->mailbox_id && sn->keyed) {
			if (key_equal(&sn->key, key)) {
				found = sn;
				break;
			}
			/* A modseq only grows: an older cached state is never asked for again. */
			if (sn->refs == 0 && sn->key.modseq < key->modseq) {
				cache_unlink(sn);
				snap_free(sn);
			}
		}
		sn = next;
	}
	if (found == NULL)
		return false;
	snap_ref(found);
	cl->snap = found;
	view(cl);
	return true;
}

uint32_t imap_snapshot_first_unseen(struct imap_client *cl)
{
	struct imap_snap *sn = cl->snap;
	if (sn == NULL)
		return 0;
	if (!sn->unseen_known) {
		sn->first_unseen = 0;
		for (size_t i = 0; i < sn->n; i++)
			if (!(sn->msgs[i].flags & STORE_SEEN)) {
				sn->first_unseen = (uint32_t)i + 1;
				break;
			}
		sn->unseen_known = true;
	}
	return sn->first_unseen;
}

void imap_snapshot_cache_flush(void)
{
	while (cache_head != NULL) {
		struct imap_snap *sn = cache_head;
		cache_unlink(sn);
		snap_free(sn);
	}
}

size_t imap_snapshot_cached(void)
{
	return cache_count;
}

void imap_snapshot_cache_clock(uint64_t (*fn)(void))
{
	now_ms = fn != NULL ? fn : clock_ms;
}

struct imap_msg *imap_snapshot_mut(struct imap_client *cl, uint32_t seq)
{
	own(cl);
	imap_context_note(cl, cl->snap->msgs[seq - 1].uid);
	return &cl->snap->msgs[seq - 1];
}

void imap_snapshot_remove(struct imap_client *cl, uint32_t seq)
{
	own(cl);
	struct imap_snap *sn = cl->snap;
	imap_context_note(cl, sn->msgs[seq - 1].uid);
	free(sn->msgs[seq - 1].keywords);
	memmove(&sn->msgs[seq - 1], &sn->msgs[seq], (sn->n - seq) * sizeof(sn->msgs[0]));
	sn->n--;
	view(cl);
}

static void msg_from_store(struct imap_msg *d, struct store_msg *s)
{
	d->uid = s->uid;
	d->flags = s->flags;
	/* Most messages have no keywords: NULL, not a malloc'd "" per message. */
	if (s->keywords != NULL && s->keywords[0] != '\0') {
		d->keywords = s->keywords;
		s->keywords = NULL;
	} else {
		d->keywords = NULL;
	}
	d->modseq = s->modseq;
	d->size = s->size;
	d->internal_date = s->internal_date;
}

void imap_snapshot_set(struct imap_client *cl, struct store_msg *msgs, size_t n,
                       const struct imap_snap_key *key)
{
	imap_snapshot_clear(cl);
	struct imap_msg *m = xcalloc(n > 0 ? n : 1, sizeof(*m));
	for (size_t i = 0; i < n; i++)
		msg_from_store(&m[i], &msgs[i]);
	cl->snap = snap_new(cl->mailbox_id, m, n);
	if (key != NULL && key->messages == n) {
		cl->snap->keyed = true;
		cl->snap->key = *key;
	}
	view(cl);
	share(cl);
}

uint32_t imap_seq_of(const struct imap_client *cl, uint32_t uid)
{
	size_t lo = 0, hi = cl->n_msgs;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cl->msgs[mid].uid == uid)
			return (uint32_t)mid + 1;
		if (cl->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

int imap_set_to_ranges(struct imap_client *cl, const struct imap_arg *a, bool uid,
                       struct store_uid_range **ranges_r, size_t *n_r)
{
	struct imap_seqset set;
	*ranges_r = NULL;
	*n_r = 0;
	if (a == NULL || a->type != IMAP_ARG_ATOM || imap_seqset_parse(a->s, a->len, &set) < 0)
		return -EINVAL;
	struct store_uid_range *r = NULL;
	size_t n = 0;
	if (set.dollar) {
		r = xcalloc(cl->n_saved + 1, sizeof(*r));
		for (size_t i = 0; i < cl->n_saved; i++)
			r[n++] = (struct store_uid_range){cl->saved[i], cl->saved[i]};
	} else if (uid) {
		r = xcalloc(set.n, sizeof(*r));
		uint32_t maxuid = cl->n_msgs > 0 ? cl->msgs[cl->n_msgs - 1].uid : 0;
		for (size_t i = 0; i < set.n; i++) {
			/* "*" is the highest UID in use, so "N:*" with N above it is still that
			 * one (RFC 9051 seq-range); a number, even 4294967295, is only itself. */
			uint32_t f = imap_seq_resolve(set.r[i].first, maxuid);
			uint32_t l = imap_seq_resolve(set.r[i].last, maxuid);
			if (f > l) {
				uint32_t t = f;
				f = l;
				l = t;
			}
			if (f == 0)
				f = 1; /* "*" in an empty mailbox: nothing to find */
			if (l == 0)
				continue;
			r[n++] = (struct store_uid_range){f, l};
		}
	} else {
		/* Sequence numbers: each one must exist. */
		r = xcalloc(cl->n_msgs + 1, sizeof(*r));
		for (size_t i = 0; i < set.n; i++) {
			/* RFC 9051 seq-number: a number above the message count, or "*" in an
			 * empty mailbox, is an error (BAD), also as one end of a range. */
			uint32_t f = imap_seq_resolve(set.r[i].first, (uint32_t)cl->n_msgs);
			uint32_t l = imap_seq_resolve(set.r[i].last, (uint32_t)cl->n_msgs);
			if (f > l) {
				uint32_t t = f;
				f = l;
				l = t;
			}
			if (f == 0 || l > cl->n_msgs) {
				free(r);
				imap_seqset_free(&set);
				return -ERANGE;
			}
		}
		for (size_t s = 1; s <= cl->n_msgs; s++)
			if (imap_seqset_contains(&set, (uint32_t)s, (uint32_t)cl->n_msgs)) {
				uint32_t u = cl->msgs[s - 1].uid;
				if (n > 0 && r[n - 1].last + 1 == u)
					r[n - 1].last = u;
				else
					r[n++] = (struct store_uid_range){u, u};
			}
	}
	imap_seqset_free(&set);
	*ranges_r = r;
	*n_r = n;
	return 0;
}

/* ---- keywords announced ----
 *
 * A client learns which keywords exist from FLAGS (RFC 3501 7.2.6) and may keep nothing
 * else: every keyword a FETCH shows must have been named by the last FLAGS. SELECT names
 * those of the whole mailbox; a change that brings one the session has not named (its own
 * STORE, APPEND or COPY, or anyone's, seen in a sync) sends FLAGS and PERMANENTFLAGS again
 * before the FETCH. The set only grows while the mailbox stays selected: a keyword
 * nobody uses any more costs a word in the list, not a wrong one.
 */

static int kw_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool kw_known(const struct imap_client *cl, const char *w)
{
	return cl->n_flag_kw > 0 &&
	       bsearch(&w, cl->flag_kw, cl->n_flag_kw, sizeof(*cl->flag_kw), kw_cmp) != NULL;
}

bool imap_keywords_learn(struct imap_client *cl, const char *kw)
{
	bool added = false;
	while (kw != NULL && *kw != '\0') {
		const char *end = strchr(kw, ' ');
		size_t len = end != NULL ? (size_t)(end - kw) : strlen(kw);
		if (len > 0) {
			char *w = xstrndup(kw, len);
			if (kw_known(cl, w)) {
				free(w);
			} else {
				size_t i = 0;
				while (i < cl->n_flag_kw && strcmp(cl->flag_kw[i], w) < 0)
					i++;
				cl->flag_kw = xreallocarray(cl->flag_kw, cl->n_flag_kw + 1,
				                            sizeof(*cl->flag_kw));
				memmove(&cl->flag_kw[i + 1], &cl->flag_kw[i],
				        (cl->n_flag_kw - i) * sizeof(*cl->flag_kw));
				cl->flag_kw[i] = w;
				cl->n_flag_kw++;
				added = true;
			}
		}
		kw = end != NULL ? end + 1 : NULL;
	}
	return added;
}

void imap_keywords_forget(struct imap_client *cl)
{
	for (size_t i = 0; i < cl->n_flag_kw; i++)
		free(cl->flag_kw[i]);
	free(cl->flag_kw);
	cl->flag_kw = NULL;
	cl->n_flag_kw = 0;
}

void imap_fmt_flags_announce(const struct imap_client *cl, struct buf *o)
{
	static const char sys[] = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";
	buf_printf(o, "* FLAGS (%s", sys);
	for (size_t i = 0; i < cl->n_flag_kw; i++)
		buf_printf(o, " %s", cl->flag_kw[i]);
	/* EXAMINE: nothing can be changed, so no flag is permanent (RFC 3501 6.3.2). */
	if (cl->readonly) {
		buf_append_str(o, ")\r\n* OK [PERMANENTFLAGS ()] No permanent flags permitted\r\n");
		return;
	}
	buf_printf(o, ")\r\n* OK [PERMANENTFLAGS (%s", sys);
	for (size_t i = 0; i < cl->n_flag_kw; i++)
		buf_printf(o, " %s", cl->flag_kw[i]);
	buf_append_str(o, " \\*)] Flags permitted\r\n");
}

uint64_t imap_highest_modseq(const struct imap_client *cl)
{
	uint64_t hms = cl->highest_modseq;
	for (size_t i = 0; i < cl->n_msgs; i++)
		if (cl->msgs[i].modseq > hms)
			hms = cl->msgs[i].modseq;
	return hms;
}

/* ---- updates at command boundaries ---- */

static void idle_sync(void *ctx)
{
	struct imap_client *cl = ctx;
	if (cl->notify != NULL) {
		imap_notify_pump(cl); /* it decides when a sync may start */
		return;
	}
	if (cl->idling && !cl->syncing && cl->changed)
		imap_sync_then(cl, NULL);
}

static void on_change(struct notify_watcher *w, const struct store_change *ch)
{
	struct imap_client *cl = w->ctx;
	if (ch->highest_modseq > cl->highest_modseq || ch->exists != cl->n_msgs)
		cl->changed = true;
	if (imap_notify_selected_change(cl, ch))
		return;
	/* IDLE keeps its tag (busy) but takes updates at once, unless the client has not
	 * read the last ones: then the changes add up in the store, not in our output, and
	 * one sync shows them all once it has read. */
	if (!cl->idling || cl->syncing || !cl->changed)
		return;
	if (conn_pending_output(cl->c) > IMAP_OUT_LOW)
		conn_when_drained(cl->c, IMAP_OUT_LOW, idle_sync, cl);
	else
		imap_sync_then(cl, NULL);
}

void imap_watch(struct imap_client *cl, bool on)
{
	struct services *sv = conn_services(cl->c);
	if (sv == NULL || sv->notify == NULL)
		return;
	if (cl->watcher.linked)
		notify_unsubscribe(sv->notify, &cl->watcher);
	if (on) {
		cl->watcher.mailbox_id = cl->mailbox_id;
		cl->watcher.fn = on_change;
		cl->watcher.ctx = cl;
		notify_subscribe(sv->notify, &cl->watcher);
	}
}

/*
 * A sync is incremental: the messages changed since the snapshot's HIGHESTMODSEQ (new ones
 * included) and the UIDs expunged since then, two indexed store reads, so a delivery that
 * wakes a thousand idle sessions costs each a few rows, not a scan of the mailbox.
 */
struct sync_op {
	struct imap_client *cl;
	void (*then)(struct imap_client *cl);
	struct imap_msg *changed; /* UID order, keywords owned */
	size_t n_changed;
	uint64_t modseq; /* the mailbox's HIGHESTMODSEQ when the list was read */
	uint32_t *gone;  /* UIDs expunged since, sorted */
	size_t n_gone;
};

static void sync_op_free(struct sync_op *op)
{
	free(op->gone);
	for (size_t i = 0; i < op->n_changed; i++)
		free(op->changed[i].keywords);
	free(op->changed);
	free(op);
}

bool imap_uid_in(const uint32_t *v, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v[mid] == uid)
			return true;
		if (v[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static void merge(struct imap_client *cl, struct sync_op *op, const uint32_t *gone_uids,
                  size_t n_gone)
{
	struct buf o;
	buf_init(&o, SIZE_MAX);
	bool allow_expunge = (!(cl->cmd_flags & IMAP_CMD_NO_EXPUNGE) || !cl->busy) &&
	                     !imap_notify_holds_expunges(cl);
	bool announce = false; /* a keyword the client has not been told of */
	if (op->n_changed > 0 || n_gone > 0) {
		own(cl);
		struct imap_snap *sn = cl->snap;
		struct imap_msg *old = sn->msgs;
		size_t n_old = sn->n, j = 0, nn = 0;
		struct imap_msg *nw = xcalloc(op->n_changed + n_old + 1, sizeof(*nw));
		uint32_t seq_shift = 0;
		for (size_t i = 0; i < n_old; i++) {
			if (imap_uid_in(gone_uids, n_gone, old[i].uid) && allow_expunge) {
				if (cl->qresync)
					buf_printf(&o, "* VANISHED %u\r\n", old[i].uid);
				else
					buf_printf(&o, "* %zu EXPUNGE\r\n", i + 1 - seq_shift);
				seq_shift++;
				imap_context_note(cl, old[i].uid);
				free(old[i].keywords);
				continue;
			}
			nw[nn] = old[i];
			while (j < op->n_changed && op->changed[j].uid < old[i].uid)
				j++;
			if (j < op->n_changed && op->changed[j].uid == old[i].uid) {
				struct imap_msg *s = &op->changed[j];
				imap_context_note(cl, s->uid);
				bool kwchg = strcmp(old[i].keywords != NULL ? old[i].keywords : "",
				                    s->keywords != NULL ? s->keywords : "") != 0;
				if (s->flags != old[i].flags || kwchg) {
					nw[nn].flags = s->flags;
					if (kwchg) {
						free(nw[nn].keywords);
						nw[nn].keywords = s->keywords;
						s->keywords = NULL;
						announce |=
						    imap_keywords_learn(cl, nw[nn].keywords);
					}
					buf_printf(&o, "* %zu FETCH (", nn + 1);
					if (cl->uid || cl->condstore)
						buf_printf(&o, "UID %u ", s->uid);
					buf_append_str(&o, "FLAGS ");
					imap_fmt_flags(&o, nw[nn].flags, nw[nn].keywords,
					               imap_recent_is(cl, nw[nn].uid));
					if (cl->condstore)
						buf_printf(&o, " MODSEQ (%llu)",
						           (unsigned long long)s->modseq);
					buf_append_str(&o, ")\r\n");
				}
				nw[nn].modseq = s->modseq;
			}
			nn++;
		}
		/* New messages: UIDs above the last one we had. */
		uint32_t last = n_old > 0 ? old[n_old - 1].uid : 0;
		size_t added = 0;
		for (size_t k = 0; k < op->n_changed; k++)
			if (op->changed[k].uid > last) {
				announce |= imap_keywords_learn(cl, op->changed[k].keywords);
				imap_context_note(cl, op->changed[k].uid);
				nw[nn] = op->changed[k];
				op->changed[k].keywords = NULL;
				nn++;
				added++;
			}
		free(old);
		sn->msgs = nw;
		sn->n = nn;
		view(cl);
		if (added > 0 || seq_shift > 0) {
			buf_printf(&o, "* %zu EXISTS\r\n", nn);
			imap_recent_fmt(cl, &o);
		}
	}
	/* Expunges held back (FETCH, STORE, SEARCH by sequence number) are read again next
	 * time: the snapshot's modseq stays until they have been shown. */
	if (allow_expunge) {
		if (op->modseq > cl->highest_modseq)
			cl->highest_modseq = op->modseq;
		cl->changed = false;
	}
	share(cl);
	if (announce) {
		struct buf f;
		buf_init(&f, SIZE_MAX);
		imap_fmt_flags_announce(cl, &f);
		conn_write(cl->c, f.data, f.len);
		buf_free(&f);
	}
	if (o.len > 0)
		conn_write(cl->c, o.data, o.len);
	buf_free(&o);
	/* RFC 5267 4.3: live results change with the FETCH, EXISTS and EXPUNGE that show
	 * why. */
	imap_context_flush(cl);
}

static void sync_end(struct imap_client *cl, void (*then)(struct imap_client *cl))
{
	cl->syncing = false;
	if (then != NULL) {
		then(cl);
	} else {
		imap_notify_resume(cl);
	}
}

static void sync_merged(void *arg)
{
	struct sync_op *op = arg;
	struct imap_client *cl = op->cl;
	void (*then)(struct imap_client *) = op->then;
	if (cl->state == IMAP_STATE_SELECTED)
		merge(cl, op, op->gone, op->n_gone);
	sync_op_free(op);
	sync_end(cl, then);
}

static void sync_dropped(void *arg)
{
	sync_op_free(arg);
}

static void sync_vanished(void *ctx, int rc, struct store_uids *res)
{
	struct sync_op *op = ctx;
	struct imap_client *cl = op->cl;
	void (*then)(struct imap_client *) = op->then;
	if (!imap_async_end(cl)) {
		sync_op_free(op);
		return;
	}
	if (rc < 0 || cl->state != IMAP_STATE_SELECTED) {
		sync_op_free(op);
		sync_end(cl, then);
		return;
	}
	op->gone = res->v;
	op->n_gone = res->n;
	res->v = NULL;
	res->n = 0;
	/* New messages go to the session that has the mailbox selected read-write when it
	 * learns of them, unless another took them first (RFC 3501 2.3.2). */
	uint32_t last = cl->n_msgs > 0 ? cl->msgs[cl->n_msgs - 1].uid : 0, top = 0;
	for (size_t i = 0; i < op->n_changed; i++)
		if (op->changed[i].uid > last && op->changed[i].uid > top)
			top = op->changed[i].uid;
	if (top > 0 && !cl->readonly) {
		imap_recent_take(cl, cl->mailbox_id, top + 1, sync_merged, sync_dropped, op);
		return;
	}
	sync_merged(op);
}

static void sync_listed(void *ctx, int rc, struct store_msgs *res)
{
	struct sync_op *op = ctx;
	struct imap_client *cl = op->cl;
	void (*then)(struct imap_client *) = op->then;
	if (!imap_async_end(cl)) {
		sync_op_free(op);
		return;
	}
	if (rc < 0 || cl->state != IMAP_STATE_SELECTED) {
		sync_op_free(op);
		sync_end(cl, then);
		return;
	}
	op->changed = xcalloc(res->n + 1, sizeof(*op->changed));
	for (size_t i = 0; i < res->n; i++)
		msg_from_store(&op->changed[i], &res->v[i]);
	op->n_changed = res->n;
	op->modseq = res->modseq;
	imap_async_begin(cl);
	if (store_vanished(imap_store(cl), cl->mailbox_id, cl->highest_modseq, sync_vanished, op) ==
	    0)
		return;
	conn_release(cl->c);
	merge(cl, op, NULL, 0);
	sync_op_free(op);
	sync_end(cl, then);
}

void imap_sync_then(struct imap_client *cl, void (*then)(struct imap_client *cl))
{
	struct store *s = imap_store(cl);
	if (cl->state != IMAP_STATE_SELECTED || s == NULL || cl->syncing) {
		if (then != NULL)
			then(cl);
		return;
	}
	struct sync_op *op = xcalloc(1, sizeof(*op));
	op->cl = cl;
	op->then = then;
	cl->syncing = true;
	imap_async_begin(cl);
	if (store_message_list(s, cl->mailbox_id, cl->highest_modseq, sync_listed, op) < 0) {
		conn_release(cl->c);
		cl->syncing = false;
		sync_op_free(op);
		if (then != NULL)
			then(cl);
	}
}
