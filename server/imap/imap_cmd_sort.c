/*
 * SORT, UID SORT, THREAD and UID THREAD (RFC 5256, SORT=DISPLAY of RFC 5957). The search
 * part runs as SEARCH does (imap_cmd_search.c); then the sort keys of the whole mailbox,
 * computed at delivery, come from the store in one read (store_message_sortkeys), and the
 * hits are ordered or threaded by imap_sort.c and imap_thread.c. No message is parsed here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"
#include "server/imap/imap_private.h"
#include "server/imap/imap_search.h"
#include "server/imap/imap_sort.h"

struct sort_op {
	struct imap_client *cl;
	bool thread;
	enum imap_thread_alg alg;
	struct imap_sort_crit crit[IMAP_SORT_CRIT_MAX];
	size_t n_crit;
	uint32_t *seqs; /* the hits, ascending */
	size_t n_seqs;
	uint32_t max_uid; /* the snapshot's highest UID */
	/* ESORT (RFC 5267 section 3): SORT RETURN (...) answers with ESEARCH. */
	bool esort;
	unsigned ret; /* IMAP_ES_* */
	uint32_t partial_lo, partial_hi;
	/* RFC 7162 3.1.5: a MODSEQ search key puts the hits' highest modseq in the answer. */
	bool needs_modseq;
	/* UPDATE (RFC 5267 4.3): the search program, for the context (imap_context.c). */
	struct imap_search search;
};

static void sort_op_free(void *p)
{
	struct sort_op *op = p;
	imap_search_free(&op->search);
	free(op->seqs);
	free(op);
}

static const char *cmd_name(const struct sort_op *op)
{
	return op->thread ? "THREAD" : "SORT";
}

/*
 * The sort keys of the selected mailbox, kept by the session between commands: a
 * message's keys never change once stored, so a later SORT or THREAD asks the store only
 * for UIDs above max_uid, and a repeated one none at all. Expunged messages stay until
 * the cache is more than twice the mailbox, then it is read again whole.
 *
 * Like a sort index, it also keeps the order of every cached message for the last few
 * sort criteria (ties by UID, which is sequence order), so a repeated SORT walks that
 * order and keeps the hits: no comparison at all. And it keeps the last THREAD answer
 * of each algorithm with exactly what it was computed from (algorithm, UID or sequence
 * numbers, the hits and their UIDs, the keys' generation): THREAD is a function of those
 * alone, and a client that shows a threaded view asks again for each page.
 */
#define SORT_ORDERS 8

struct sort_order {
	struct imap_sort_crit crit[IMAP_SORT_CRIT_MAX];
	size_t n_crit;
	uint32_t *perm; /* indexes into v, NULL: unused slot */
	uint64_t used;  /* for replacing the least recently used */
};

struct thread_memo {
	enum imap_thread_alg alg;
	bool uid;
	uint64_t gen;
	uint32_t *seqs, *uids; /* the hits it was computed for */
	size_t n;
	char *answer; /* the thread lists */
	size_t len;
};

struct imap_sortcache {
	int64_t mailbox_id;
	uint32_t uidvalidity;
	uint32_t max_uid;        /* keys are held for every UID up to it the store had */
	struct imap_sort_msg *v; /* in UID order; the strings point into parts */
	size_t n, cap;
	struct store_msgs *parts; /* the store's results, kept whole */
	size_t n_parts;
	uint64_t gen; /* bumped when v changes */
	uint64_t clock;
	struct sort_order orders[SORT_ORDERS];
	struct thread_memo memo[2]; /* by enum imap_thread_alg */
	uint8_t *hit;               /* per entry of v: a hit of the running command */
};

static void memo_clear(struct thread_memo *m)
{
	free(m->seqs);
	free(m->uids);
	free(m->answer);
	memset(m, 0, sizeof(*m));
}

static void orders_clear(struct imap_sortcache *sc)
{
	for (size_t i = 0; i < SORT_ORDERS; i++) {
		free(sc->orders[i].perm);
		memset(&sc->orders[i], 0, sizeof(sc->orders[i]));
	}
}

void imap_sortcache_free(struct imap_client *cl)
{
	struct imap_sortcache *sc = cl->sortcache;
	if (sc == NULL)
		return;
	for (size_t i = 0; i < sc->n_parts; i++)
		store_msgs_free(&sc->parts[i]);
	free(sc->parts);
	free(sc->v);
	orders_clear(sc);
	memo_clear(&sc->memo[0]);
	memo_clear(&sc->memo[1]);
	free(sc->hit);
	free(sc);
	cl->sortcache = NULL;
}

/* Adds what the store read (UIDs above sc->max_uid, ascending) to the cache. */
static void cache_add(struct imap_sortcache *sc, struct store_msgs *res)
{
	if (res->n == 0)
		return;
	sc->gen++;
	orders_clear(sc);
	memo_clear(&sc->memo[0]);
	memo_clear(&sc->memo[1]);
	free(sc->hit);
	sc->hit = NULL;
	sc->parts = xreallocarray(sc->parts, sc->n_parts + 1, sizeof(*sc->parts));
	struct store_msgs *p = &sc->parts[sc->n_parts++];
	memset(p, 0, sizeof(*p));
	store_msgs_move(p, res);
	if (sc->n + p->n > sc->cap) {
		sc->cap = (sc->n + p->n) * 3 / 2 + 64;
		sc->v = xreallocarray(sc->v, sc->cap, sizeof(*sc->v));
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct store_msg *k = &p->v[i];
		struct imap_sort_msg *m = &sc->v[sc->n++];
		memset(m, 0, sizeof(*m));
		m->uid = k->uid;
		m->size = k->size;
		m->arrival = k->internal_date;
		/* RFC 5256 2.2: the sent date, else INTERNALDATE. */
		m->date = k->hdr_date != 0 ? k->hdr_date : k->internal_date;
		m->subject = k->sort_subject;
		m->reply = k->sort_reply;
		m->from = k->sort_from;
		m->to = k->sort_to;
		m->cc = k->sort_cc;
		m->display_from = k->sort_from_name;
		m->display_to = k->sort_to_name;
		m->message_id = k->hdr_message_id;
		m->refs = k->thread_refs;
	}
	if (sc->v[sc->n - 1].uid > sc->max_uid)
		sc->max_uid = sc->v[sc->n - 1].uid;
}

const struct imap_sort_msg *imap_sortcache_find(const struct imap_client *cl, uint32_t uid)
{
	const struct imap_sortcache *sc = cl->sortcache;
	if (sc == NULL || sc->mailbox_id != cl->mailbox_id || sc->uidvalidity != cl->uidvalidity)
		return NULL;
	size_t lo = 0, hi = sc->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (sc->v[mid].uid == uid)
			return &sc->v[mid];
		if (sc->v[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

bool imap_sortcache_covers(const struct imap_client *cl, uint32_t uid)
{
	const struct imap_sortcache *sc = cl->sortcache;
	return sc != NULL && sc->mailbox_id == cl->mailbox_id &&
	       sc->uidvalidity == cl->uidvalidity && uid <= sc->max_uid;
}

struct cache_load {
	struct imap_client *cl;
	int64_t mailbox_id;
	uint32_t uidvalidity;
	uint32_t after, upto;
	void (*then)(struct imap_client *cl, int rc);
};

static void load_got(void *ctx, int rc, struct store_msgs *res)
{
	struct cache_load *ld = ctx;
	struct imap_client *cl = ld->cl;
	if (!conn_release(cl->c)) {
		free(ld);
		return;
	}
	if (rc == 0 && cl->state == IMAP_STATE_SELECTED && cl->mailbox_id == ld->mailbox_id &&
	    cl->uidvalidity == ld->uidvalidity) {
		struct imap_sortcache *sc = cl->sortcache;
		if (sc == NULL && ld->after == 0) {
			sc = cl->sortcache = xcalloc(1, sizeof(*sc));
			sc->mailbox_id = cl->mailbox_id;
			sc->uidvalidity = cl->uidvalidity;
		}
		/* Another read may have filled the cache meanwhile: then this one is stale. */
		if (sc != NULL && sc->max_uid == ld->after) {
			cache_add(sc, res);
			if (ld->upto > sc->max_uid)
				sc->max_uid = ld->upto;
		}
	}
	void (*then)(struct imap_client *, int) = ld->then;
	free(ld);
	then(cl, rc);
}

int imap_sortcache_load(struct imap_client *cl, void (*then)(struct imap_client *cl, int rc))
{
	struct imap_sortcache *sc = cl->sortcache;
	if (sc != NULL &&
	    (sc->mailbox_id != cl->mailbox_id || sc->uidvalidity != cl->uidvalidity)) {
		imap_sortcache_free(cl);
		sc = NULL;
	}
	struct cache_load *ld = xcalloc(1, sizeof(*ld));
	ld->cl = cl;
	ld->mailbox_id = cl->mailbox_id;
	ld->uidvalidity = cl->uidvalidity;
	ld->after = sc != NULL ? sc->max_uid : 0;
	ld->upto = cl->n_msgs > 0 ? cl->msgs[cl->n_msgs - 1].uid : 0;
	ld->then = then;
	conn_hold(cl->c);
	if (store_message_sortkeys(imap_store(cl), cl->mailbox_id, ld->after, load_got, ld) == 0)
		return 0;
	conn_release(cl->c);
	free(ld);
	return -EIO;
}

/* " 123": buf_printf's cost is most of a 10,000-number answer. */
static void put_u32(struct buf *o, uint32_t v)
{
	char tmp[12];
	size_t i = sizeof(tmp);
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	tmp[--i] = ' ';
	buf_append(o, tmp + i, sizeof(tmp) - i);
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return a < b ? -1 : a > b;
}

/* "* ESEARCH (TAG ...) [UID] ..." of ESORT. */
static void esort_line(const struct sort_op *op, struct buf *o, const uint32_t *nums, size_t n,
                       uint64_t modseq)
{
	const struct imap_client *cl = op->cl;
	if ((op->ret & IMAP_ES_RESULT) == IMAP_ES_SAVE)
		return;
	buf_printf(o, "* ESEARCH (TAG \"%s\")%s", cl->tag, cl->uid ? " UID" : "");
	imap_esearch_fmt(o, op->ret, nums, n, op->partial_lo, op->partial_hi);
	if (modseq > 0)
		buf_printf(o, " MODSEQ %llu", (unsigned long long)modseq);
	buf_append_str(o, "\r\n");
}

static uint64_t uid_modseq(const struct imap_client *cl, uint32_t uid)
{
	uint32_t seq = imap_seq_of(cl, uid);
	return seq > 0 ? cl->msgs[seq - 1].modseq : 0;
}

/* The highest modseq of the messages an answer shows (RFC 7162 3.1.5, RFC 4731 3.2): all
 * hits, or with ESORT and neither ALL nor COUNT, those MIN, MAX and PARTIAL name. */
static uint64_t answer_modseq(const struct sort_op *op, const uint32_t *uids_in_order, size_t n)
{
	const struct imap_client *cl = op->cl;
	unsigned e = op->ret;
	bool all = !op->esort || (e & (IMAP_ES_ALL | IMAP_ES_COUNT));
	uint64_t m = 0;
	for (size_t i = 0; i < n; i++) {
		bool shown =
		    all || ((e & IMAP_ES_MIN) && i == 0) || ((e & IMAP_ES_MAX) && i == n - 1) ||
		    ((e & IMAP_ES_PARTIAL) && i + 1 >= op->partial_lo && i + 1 <= op->partial_hi);
		uint64_t v = shown ? uid_modseq(cl, uids_in_order[i]) : 0;
		if (v > m)
			m = v;
	}
	return m;
}

/* The SORT answer: nums[0..n) in sort order (UIDs or sequence numbers, as asked), uids
 * the same messages' UIDs (for SAVE; sorted in place). */
static void write_sorted(struct sort_op *op, const uint32_t *nums, uint32_t *uids, size_t n)
{
	struct imap_client *cl = op->cl;
	struct buf o;
	buf_init(&o, SIZE_MAX);
	uint64_t modseq = op->needs_modseq && n > 0 ? answer_modseq(op, uids, n) : 0;
	if (!op->esort) {
		buf_append_str(&o, "* SORT");
		for (size_t i = 0; i < n; i++)
			put_u32(&o, nums[i]);
		if (modseq > 0)
			buf_printf(&o, " (MODSEQ %llu)", (unsigned long long)modseq);
		buf_append_str(&o, "\r\n");
	} else {
		/* The context takes the result in sort order, before SAVE sorts it. */
		if (op->ret & IMAP_ES_UPDATE) {
			struct buf refused;
			buf_init(&refused, SIZE_MAX);
			imap_context_start(cl, &refused, &op->search, op->ret, op->crit, op->n_crit,
			                   uids, n);
			esort_line(op, &o, nums, n, modseq);
			if (refused.len > 0)
				buf_append(&o, refused.data, refused.len);
			buf_free(&refused);
		} else {
			esort_line(op, &o, nums, n, modseq);
		}
		if (op->ret & IMAP_ES_SAVE) {
			/* RFC 5182: $ is a set of messages; the sort order is not kept. */
			qsort(uids, n, sizeof(*uids), cmp_u32);
			free(cl->saved);
			cl->saved = xmalloc((n + 1) * sizeof(uint32_t));
			memcpy(cl->saved, uids, n * sizeof(uint32_t));
			cl->n_saved = n;
		}
	}
	if (o.len > 0)
		conn_write(cl->c, o.data, o.len);
	buf_free(&o);
	imap_donef(cl, "OK", "%s completed", cmd_name(op));
}

/* v[0..n) are the hits (borrowed; sorted in place for SORT). */
static void answer(struct sort_op *op, const struct imap_sort_msg **v, size_t n)
{
	struct imap_client *cl = op->cl;
	struct buf o;
	buf_init(&o, SIZE_MAX);
	if (op->thread) {
		buf_append_str(&o, "* THREAD");
		if (n > 0) {
			buf_append_str(&o, " ");
			imap_thread(v, n, op->alg, cl->uid, &o);
		}
	} else {
		imap_sort(v, n, op->crit, op->n_crit);
		uint32_t *nums = xmalloc((n + 1) * sizeof(*nums));
		uint32_t *uids = xmalloc((n + 1) * sizeof(*uids));
		for (size_t i = 0; i < n; i++) {
			nums[i] = cl->uid ? v[i]->uid : v[i]->seq;
			uids[i] = v[i]->uid;
		}
		buf_free(&o);
		write_sorted(op, nums, uids, n);
		free(nums);
		free(uids);
		return;
	}
	buf_append_str(&o, "\r\n");
	conn_write(cl->c, o.data, o.len);
	buf_free(&o);
	imap_donef(cl, "OK", "%s completed", cmd_name(op));
}

static bool same_crit(const struct sort_order *o, const struct sort_op *op)
{
	if (o->perm == NULL || o->n_crit != op->n_crit)
		return false;
	for (size_t i = 0; i < o->n_crit; i++)
		if (o->crit[i].key != op->crit[i].key || o->crit[i].reverse != op->crit[i].reverse)
			return false;
	return true;
}

/* The order of every cached message by op's criteria, computed now if not kept. */
static const uint32_t *cached_order(struct imap_sortcache *sc, const struct sort_op *op)
{
	struct sort_order *o = NULL, *lru = &sc->orders[0];
	for (size_t i = 0; i < SORT_ORDERS && o == NULL; i++) {
		if (same_crit(&sc->orders[i], op))
			o = &sc->orders[i];
		else if (sc->orders[i].used < lru->used)
			lru = &sc->orders[i];
	}
	if (o == NULL) {
		o = lru;
		free(o->perm);
		memcpy(o->crit, op->crit, op->n_crit * sizeof(op->crit[0]));
		o->n_crit = op->n_crit;
		/* Sequence numbers of this order: the cache's own (UID order). The hits get
		 * theirs back before the answer is written. */
		const struct imap_sort_msg **p = xmalloc((sc->n + 1) * sizeof(*p));
		uint32_t *seq = xmalloc((sc->n + 1) * sizeof(*seq));
		for (size_t k = 0; k < sc->n; k++) {
			seq[k] = sc->v[k].seq;
			sc->v[k].seq = (uint32_t)k + 1;
			p[k] = &sc->v[k];
		}
		imap_sort(p, sc->n, op->crit, op->n_crit);
		o->perm = xmalloc((sc->n + 1) * sizeof(*o->perm));
		for (size_t k = 0; k < sc->n; k++)
			o->perm[k] = (uint32_t)(p[k] - sc->v);
		for (size_t k = 0; k < sc->n; k++)
			sc->v[k].seq = seq[k];
		free(seq);
		free(p);
	}
	o->used = ++sc->clock;
	return o->perm;
}

/* SORT of hits that are all in the cache (sc->hit marks them, their seq is set). */
static void answer_sorted(struct sort_op *op, struct imap_sortcache *sc)
{
	struct imap_client *cl = op->cl;
	const uint32_t *perm = cached_order(sc, op);
	uint32_t *nums = xmalloc((sc->n + 1) * sizeof(*nums));
	uint32_t *uids = xmalloc((sc->n + 1) * sizeof(*uids));
	size_t n = 0;
	for (size_t i = 0; i < sc->n; i++) {
		const struct imap_sort_msg *m = &sc->v[perm[i]];
		if (sc->hit[perm[i]]) {
			nums[n] = cl->uid ? m->uid : m->seq;
			uids[n++] = m->uid;
		}
	}
	write_sorted(op, nums, uids, n);
	free(nums);
	free(uids);
}

/* THREAD of hits that are all in the cache: the kept answer when it was computed from the
 * same hits, algorithm and keys, else computed and kept. */
static void answer_threaded(struct sort_op *op, struct imap_sortcache *sc,
                            const struct imap_sort_msg **v, size_t n)
{
	struct imap_client *cl = op->cl;
	struct thread_memo *m = &sc->memo[op->alg == IMAP_THREAD_REFERENCES];
	bool same = m->answer != NULL && m->alg == op->alg && m->uid == cl->uid &&
	            m->gen == sc->gen && m->n == n;
	for (size_t i = 0; same && i < n; i++)
		same = m->seqs[i] == v[i]->seq && m->uids[i] == v[i]->uid;
	if (!same) {
		memo_clear(m);
		struct buf t;
		buf_init(&t, SIZE_MAX);
		imap_thread(v, n, op->alg, cl->uid, &t);
		m->alg = op->alg;
		m->uid = cl->uid;
		m->gen = sc->gen;
		m->n = n;
		m->seqs = xmalloc((n + 1) * sizeof(*m->seqs));
		m->uids = xmalloc((n + 1) * sizeof(*m->uids));
		for (size_t i = 0; i < n; i++) {
			m->seqs[i] = v[i]->seq;
			m->uids[i] = v[i]->uid;
		}
		m->answer = xstrndup(t.data != NULL ? t.data : "", t.len);
		m->len = t.len;
		buf_free(&t);
	}
	struct buf o;
	buf_init(&o, SIZE_MAX);
	buf_append_str(&o, "* THREAD ");
	buf_append(&o, m->answer, m->len);
	buf_append_str(&o, "\r\n");
	conn_write(cl->c, o.data, o.len);
	buf_free(&o);
	imap_donef(cl, "OK", "%s completed", cmd_name(op));
}

/* The hits with their keys from the cache (both in UID order: one walk; the entries get
 * this command's sequence numbers in place), or with only what the snapshot has for a
 * message the store no longer holds. */
static void answer_from_cache(struct sort_op *op)
{
	struct imap_client *cl = op->cl;
	struct imap_sortcache *sc = cl->sortcache;
	const struct imap_sort_msg **v = xmalloc((op->n_seqs + 1) * sizeof(*v));
	struct imap_sort_msg *gone = NULL;
	size_t n = 0, k = 0, n_gone = 0;
	if (sc != NULL) {
		if (sc->hit == NULL)
			sc->hit = xmalloc(sc->n + 1);
		memset(sc->hit, 0, sc->n);
	}
	for (size_t i = 0; i < op->n_seqs; i++) {
		uint32_t seq = op->seqs[i];
		if (seq == 0 || seq > cl->n_msgs)
			continue;
		const struct imap_msg *im = &cl->msgs[seq - 1];
		while (sc != NULL && k < sc->n && sc->v[k].uid < im->uid)
			k++;
		if (sc != NULL && k < sc->n && sc->v[k].uid == im->uid) {
			sc->v[k].seq = seq;
			sc->hit[k] = 1;
			v[n++] = &sc->v[k];
			continue;
		}
		if (gone == NULL)
			gone = xcalloc(op->n_seqs, sizeof(*gone));
		struct imap_sort_msg *m = &gone[n_gone++];
		m->seq = seq;
		m->uid = im->uid;
		m->size = im->size;
		m->arrival = m->date = im->internal_date;
		v[n++] = m;
	}
	/* A message the store no longer has (expunged after this session's snapshot) has no
	 * kept order or answer: computed for this command only. */
	if (sc != NULL && n_gone == 0 && !op->thread)
		answer_sorted(op, sc);
	else if (sc != NULL && n_gone == 0)
		answer_threaded(op, sc, v, n);
	else
		answer(op, v, n);
	free(gone);
	free(v);
}

static void keys_got(void *ctx, int rc, struct store_msgs *res)
{
	struct sort_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0) {
		imap_donef(cl, "NO", "[SERVERBUG] %s failed, try again", cmd_name(op));
		return;
	}
	struct imap_sortcache *sc = cl->sortcache;
	if (sc == NULL || sc->mailbox_id != cl->mailbox_id || sc->uidvalidity != cl->uidvalidity) {
		imap_sortcache_free(cl);
		sc = cl->sortcache = xcalloc(1, sizeof(*sc));
		sc->mailbox_id = cl->mailbox_id;
		sc->uidvalidity = cl->uidvalidity;
	}
	cache_add(sc, res);
	/* Every UID the snapshot has was in the store when it was read. */
	if (op->max_uid > sc->max_uid)
		sc->max_uid = op->max_uid;
	answer_from_cache(op);
}

static void matched(struct imap_client *cl, void *ext, int rc, const uint32_t *seqs, size_t n,
                    struct imap_search *search)
{
	struct sort_op *op = ext;
	if (search != NULL) {
		op->needs_modseq = search->needs_modseq;
		if (op->ret & IMAP_ES_UPDATE) {
			op->search = *search; /* moved: the context keeps the program */
			memset(search, 0, sizeof(*search));
		}
	}
	if (rc < 0) {
		imap_donef(cl, "NO", "[SERVERBUG] %s failed, try again", cmd_name(op));
		return;
	}
	if (n == 0) {
		answer(op, NULL, 0);
		return;
	}
	op->seqs = xmalloc(n * sizeof(*op->seqs));
	memcpy(op->seqs, seqs, n * sizeof(*seqs));
	op->n_seqs = n;
	op->max_uid = cl->msgs[cl->n_msgs - 1].uid;
	struct imap_sortcache *sc = cl->sortcache;
	if (sc != NULL && (sc->mailbox_id != cl->mailbox_id || sc->uidvalidity != cl->uidvalidity ||
	                   sc->n > 2 * cl->n_msgs + 1024))
		imap_sortcache_free(cl);
	sc = cl->sortcache;
	if (sc != NULL && sc->max_uid >= op->max_uid) {
		answer_from_cache(op);
		return;
	}
	imap_async_begin(cl);
	if (store_message_sortkeys(imap_store(cl), cl->mailbox_id, sc != NULL ? sc->max_uid : 0,
	                           keys_got, op) == 0)
		return;
	conn_release(cl->c);
	imap_donef(cl, "NO", "[SERVERBUG] %s failed, try again", cmd_name(op));
}

/* The charset argument and what follows it; answers and returns false when they are
 * wrong. */
static bool check_rest(struct imap_client *cl, const struct imap_arg *a, size_t n, const char *name)
{
	if (n < 2) {
		imap_donef(cl, "BAD", "%s needs a charset and search keys", name);
		return false;
	}
	if (!imap_arg_is_astring(&a[0])) {
		imap_donef(cl, "BAD", "%s needs a charset", name);
		return false;
	}
	if (!((a[0].len == 5 && strncasecmp(a[0].s, "UTF-8", 5) == 0) ||
	      (a[0].len == 8 && strncasecmp(a[0].s, "US-ASCII", 8) == 0))) {
		imap_done(cl, "NO", "[BADCHARSET (UTF-8 US-ASCII)] unsupported charset");
		return false;
	}
	/* The search keys proper: SEARCH's own CHARSET and RETURN prefixes are not keys. */
	if (imap_arg_is(&a[1], "CHARSET") || imap_arg_is(&a[1], "RETURN")) {
		imap_done(cl, "BAD", "bad search key");
		return false;
	}
	return true;
}

void imap_cmd_sort(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	struct sort_op *op = xcalloc(1, sizeof(*op));
	op->cl = cl;
	const char *err = NULL;
	if (n >= 1 && imap_arg_is(&a[0], "RETURN")) {
		if (n < 2 || a[1].type != IMAP_ARG_LIST) {
			free(op);
			imap_done(cl, "BAD", "RETURN needs a list");
			return;
		}
		if (imap_search_parse_return(&a[1], &op->ret, &op->partial_lo, &op->partial_hi,
		                             &err) < 0) {
			free(op);
			imap_done(cl, "BAD", err);
			return;
		}
		op->esort = true;
		/* RFC 5267 4.3: a tag names one live result. */
		if ((op->ret & IMAP_ES_UPDATE) && imap_context_tag_used(cl)) {
			free(op);
			imap_done(cl, "BAD",
			          "Tag reuse: a result with this tag is kept up to date");
			return;
		}
		a += 2;
		n -= 2;
	}
	if (n < 1 || imap_sort_parse(&a[0], op->crit, &op->n_crit, &err) < 0) {
		free(op);
		imap_done(cl, "BAD", err != NULL ? err : "SORT needs sort criteria");
		return;
	}
	if (!check_rest(cl, a + 1, n - 1, "SORT")) {
		free(op);
		return;
	}
	imap_search_run(cl, a + 2, n - 2, matched, op, sort_op_free,
	                (op->ret & IMAP_ES_UPDATE) != 0);
}

void imap_cmd_thread(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	struct sort_op *op = xcalloc(1, sizeof(*op));
	op->cl = cl;
	op->thread = true;
	if (n >= 1 && imap_arg_is(&a[0], "REFERENCES")) {
		op->alg = IMAP_THREAD_REFERENCES;
	} else if (n >= 1 && imap_arg_is(&a[0], "ORDEREDSUBJECT")) {
		op->alg = IMAP_THREAD_ORDEREDSUBJECT;
	} else {
		free(op);
		imap_done(cl, "BAD", "unknown threading algorithm");
		return;
	}
	if (!check_rest(cl, a + 1, n - 1, "THREAD")) {
		free(op);
		return;
	}
	imap_search_run(cl, a + 2, n - 2, matched, op, sort_op_free, false);
}
