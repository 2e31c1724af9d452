/*
 * CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 section 4): search results kept up to date.
 *
 * A UID SEARCH or UID SORT with RETURN (UPDATE) leaves its result here, with its search
 * program and sort criteria. Every change to the session's snapshot (imap_snapshot.c: a
 * sync's new, changed and expunged messages, and the session's own STORE, EXPUNGE and
 * \Seen) notes the message's UID; where the session sends unsolicited responses (after a
 * sync, so in IDLE, with NOTIFY and after commands, and before a tagged reply) the noted
 * messages alone are evaluated again against each program, and what left or joined a
 * result goes out as REMOVEFROM and ADDTO in an ESEARCH response tagged with the command
 * that asked. A change costs a few binary searches per live result, never a new search of
 * the mailbox.
 *
 * Only what a message's snapshot entry answers is kept up to date: flags, keywords, size,
 * dates of arrival, modseqs and UID sets. A program that needs the message text or header,
 * message sequence numbers (they change meaning with every expunge), "$" (it changes with
 * every SAVE) or a UID set with "*" (it changes with every delivery), a SEARCH or SORT
 * without UID (every expunge would renumber the result), SAVE beside UPDATE, and more than
 * IMAP_CONTEXT_MAX results at once are refused with NO [NOUPDATE] (RFC 5267 4.3.1): the
 * command is answered all the same.
 *
 * A SORT result keeps its order by the sort keys of the session's sort cache
 * (imap_cmd_sort.c): the keys of messages that arrived after the SORT are read (once, for
 * all of them) before their positions are computed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "server/imap/imap_private.h"
#include "server/imap/imap_search.h"
#include "server/imap/imap_sort.h"

#define IMAP_CONTEXT_MAX 16

struct imap_context {
	char *tag;
	struct imap_search search; /* the program (owned) */
	bool sorted;
	struct imap_sort_crit crit[IMAP_SORT_CRIT_MAX];
	size_t n_crit;
	uint32_t *set;   /* the result's UIDs, ascending */
	uint32_t *order; /* SORT: the same in sort order; NULL for SEARCH */
	size_t n, cap;
};

struct imap_contexts {
	struct imap_context *v[IMAP_CONTEXT_MAX];
	size_t n;
	uint32_t *pending; /* noted UIDs, unsorted, repeats allowed */
	size_t n_pending, cap_pending;
	bool loading;     /* sort keys are being read */
	bool keys_failed; /* the last read failed: use what the snapshot has */
};

static void context_free(struct imap_context *x)
{
	free(x->tag);
	imap_search_free(&x->search);
	free(x->set);
	free(x->order);
	free(x);
}

void imap_context_clear(struct imap_client *cl)
{
	struct imap_contexts *cx = cl->contexts;
	if (cx == NULL)
		return;
	for (size_t i = 0; i < cx->n; i++)
		context_free(cx->v[i]);
	free(cx->pending);
	free(cx);
	cl->contexts = NULL;
}

static struct imap_context *find(const struct imap_client *cl, const char *tag, size_t len)
{
	const struct imap_contexts *cx = cl->contexts;
	for (size_t i = 0; cx != NULL && i < cx->n; i++)
		if (strlen(cx->v[i]->tag) == len && memcmp(cx->v[i]->tag, tag, len) == 0)
			return cx->v[i];
	return NULL;
}

bool imap_context_tag_used(const struct imap_client *cl)
{
	return cl->tag != NULL && find(cl, cl->tag, strlen(cl->tag)) != NULL;
}

/* Why the program k cannot be kept up to date from snapshot entries, or NULL. */
static const char *key_refusal(const struct imap_search_key *k)
{
	switch (k->type) {
	case IMAP_SK_SEQ:
		return "Message numbers change: use UIDs to have results updated";
	case IMAP_SK_SAVED:
		return "$ changes with SAVE: its results are not updated";
	case IMAP_SK_HEADER:
	case IMAP_SK_TEXT:
	case IMAP_SK_SENTBEFORE:
	case IMAP_SK_SENTON:
	case IMAP_SK_SENTSINCE:
		return "Results of header and text keys are not updated";
	case IMAP_SK_UID:
		for (size_t i = 0; i < k->set.n; i++)
			if (k->set.r[i].first == IMAP_SEQ_STAR || k->set.r[i].last == IMAP_SEQ_STAR)
				return "A UID set with * changes with new mail: its results are "
				       "not "
				       "updated";
		break;
	default:
		break;
	}
	for (size_t i = 0; i < k->n_kids; i++) {
		const char *why = key_refusal(&k->kids[i]);
		if (why != NULL)
			return why;
	}
	return NULL;
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return a < b ? -1 : a > b;
}

void imap_context_start(struct imap_client *cl, struct buf *o, struct imap_search *search,
                        unsigned ret, const struct imap_sort_crit *crit, size_t n_crit,
                        const uint32_t *uids, size_t n)
{
	const char *why = NULL;
	if (!cl->uid)
		why = "Only UID SEARCH and UID SORT results are updated";
	else if (ret & IMAP_ES_SAVE)
		why = "Results saved with SAVE are not updated";
	else if (cl->contexts != NULL && cl->contexts->n >= IMAP_CONTEXT_MAX)
		why = "Too many contexts";
	else
		why = key_refusal(&search->root);
	if (why != NULL) {
		buf_printf(o, "* NO [NOUPDATE \"%s\"] %s\r\n", cl->tag, why);
		return;
	}
	if (cl->contexts == NULL)
		cl->contexts = xcalloc(1, sizeof(*cl->contexts));
	struct imap_context *x = xcalloc(1, sizeof(*x));
	x->tag = xstrdup(cl->tag);
	x->search = *search;
	memset(search, 0, sizeof(*search));
	x->sorted = crit != NULL;
	if (x->sorted) {
		memcpy(x->crit, crit, n_crit * sizeof(*crit));
		x->n_crit = n_crit;
	}
	x->cap = n + 16;
	x->n = n;
	x->set = xmalloc(x->cap * sizeof(*x->set));
	memcpy(x->set, uids, n * sizeof(*uids));
	if (x->sorted) {
		x->order = xmalloc(x->cap * sizeof(*x->order));
		memcpy(x->order, uids, n * sizeof(*uids));
		qsort(x->set, n, sizeof(*x->set), cmp_u32);
	}
	cl->contexts->v[cl->contexts->n++] = x;
}

void imap_cmd_cancelupdate(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	/* RFC 5267 section 5: "CANCELUPDATE" 1*(SP quoted). */
	if (n == 0) {
		imap_done(cl, "BAD", "CANCELUPDATE needs the tags of searches");
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (a[i].type != IMAP_ARG_STRING || a[i].literal) {
			imap_done(cl, "BAD", "CANCELUPDATE takes quoted tags");
			return;
		}
	for (size_t i = 0; i < n; i++)
		if (find(cl, a[i].s, a[i].len) == NULL) {
			imap_done(cl, "NO", "No result with that tag is being updated");
			return;
		}
	struct imap_contexts *cx = cl->contexts;
	for (size_t i = 0; i < n; i++) {
		struct imap_context *x = find(cl, a[i].s, a[i].len);
		if (x == NULL)
			continue; /* named twice */
		size_t k = 0;
		while (cx->v[k] != x)
			k++;
		context_free(x);
		memmove(&cx->v[k], &cx->v[k + 1], (cx->n - k - 1) * sizeof(cx->v[0]));
		cx->n--;
	}
	if (cx->n == 0)
		imap_context_clear(cl);
	imap_done(cl, "OK", "CANCELUPDATE completed");
}

void imap_context_note(struct imap_client *cl, uint32_t uid)
{
	struct imap_contexts *cx = cl->contexts;
	if (cx == NULL)
		return;
	if (cx->n_pending == cx->cap_pending) {
		cx->cap_pending = cx->cap_pending * 2 + 64;
		cx->pending = xreallocarray(cx->pending, cx->cap_pending, sizeof(*cx->pending));
	}
	cx->pending[cx->n_pending++] = uid;
}

/* ---- evaluation ---- */

static bool set_has(const struct imap_context *x, uint32_t uid, size_t *at_r)
{
	size_t lo = 0, hi = x->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (x->set[mid] == uid) {
			*at_r = mid;
			return true;
		}
		if (x->set[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*at_r = lo;
	return false;
}

static void grow(struct imap_context *x)
{
	if (x->n < x->cap)
		return;
	x->cap = x->cap * 2 + 16;
	x->set = xreallocarray(x->set, x->cap, sizeof(*x->set));
	if (x->sorted)
		x->order = xreallocarray(x->order, x->cap, sizeof(*x->order));
}

/* Whether message uid of the snapshot matches x's program now (false when it is gone). */
static bool matches(const struct imap_client *cl, const struct imap_context *x, uint32_t uid)
{
	uint32_t seq = imap_seq_of(cl, uid);
	if (seq == 0)
		return false;
	const struct imap_msg *im = &cl->msgs[seq - 1];
	struct imap_search_msg m = {
	    .seq = seq,
	    .uid = uid,
	    .flags = im->flags | (imap_recent_is(cl, uid) ? IMAP_SEARCH_RECENT : 0),
	    .keywords = im->keywords,
	    .size = im->size,
	    .modseq = im->modseq,
	    .internal_date = im->internal_date,
	};
	return imap_search_match(&x->search.root, &m, (uint32_t)cl->n_msgs,
	                         cl->msgs[cl->n_msgs - 1].uid);
}

/* The sort keys of uid into *tmp (seq set to the UID, which orders ties as sequence
 * numbers do): the cache's, else what the snapshot has (a message the store no longer
 * holds). false when neither knows it. */
static bool key_of(const struct imap_client *cl, uint32_t uid, struct imap_sort_msg *tmp)
{
	const struct imap_sort_msg *k = imap_sortcache_find(cl, uid);
	if (k != NULL) {
		*tmp = *k;
	} else {
		uint32_t seq = imap_seq_of(cl, uid);
		if (seq == 0)
			return false;
		const struct imap_msg *im = &cl->msgs[seq - 1];
		memset(tmp, 0, sizeof(*tmp));
		tmp->size = im->size;
		tmp->arrival = tmp->date = im->internal_date;
	}
	tmp->uid = uid;
	tmp->seq = uid;
	return true;
}

/* Where uid goes in x->order: the number of members that sort before it. Binary search
 * by the keys; a member without keys (cannot happen unless the cache was read again
 * without it) falls back to a walk. */
static size_t order_rank(const struct imap_client *cl, const struct imap_context *x,
                         const struct imap_sort_msg *k)
{
	size_t lo = 0, hi = x->n;
	struct imap_sort_msg t;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (!key_of(cl, x->order[mid], &t))
			goto walk;
		if (imap_sort_cmp(&t, k, x->crit, x->n_crit) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
walk:
	for (size_t i = 0; i < x->n; i++)
		if (x->order[i] == k->uid ||
		    (key_of(cl, x->order[i], &t) && imap_sort_cmp(&t, k, x->crit, x->n_crit) > 0))
			return i;
	return x->n;
}

/* The index of member uid in x->order. */
static size_t order_pos(const struct imap_client *cl, const struct imap_context *x, uint32_t uid)
{
	struct imap_sort_msg k;
	if (key_of(cl, uid, &k)) {
		size_t i = order_rank(cl, x, &k);
		if (i < x->n && x->order[i] == uid)
			return i;
	}
	for (size_t i = 0; i < x->n; i++)
		if (x->order[i] == uid)
			return i;
	return x->n; /* not a member: cannot happen */
}

/* Pairs of a context position and UIDs, as ADDTO and REMOVEFROM carry them. */
struct pairs {
	struct buf b;
	uint32_t pos;   /* of the open pair, 0: none */
	uint32_t *uids; /* its UIDs */
	size_t n, cap;
	bool any;
};

static void pairs_close(struct pairs *p)
{
	if (p->n == 0)
		return;
	buf_printf(&p->b, "%s%u ", p->any ? " " : "", p->pos);
	imap_fmt_seqset(&p->b, p->uids, p->n);
	p->any = true;
	p->n = 0;
}

/* Adds uid at position pos; it joins the open pair when it comes right after it (ADDTO:
 * pos is the open pair's next position; REMOVEFROM: the same position; position 0, a
 * SEARCH result's, is one pair). */
static void pairs_add(struct pairs *p, uint32_t pos, uint32_t uid, bool removal)
{
	uint32_t next = removal || pos == 0 ? p->pos : p->pos + (uint32_t)p->n;
	if (p->n == 0 || pos != next) {
		pairs_close(p);
		p->pos = pos;
	}
	if (p->n == p->cap) {
		p->cap = p->cap * 2 + 16;
		p->uids = xreallocarray(p->uids, p->cap, sizeof(*p->uids));
	}
	p->uids[p->n++] = uid;
}

static void pairs_init(struct pairs *p)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->b, SIZE_MAX);
}

static void pairs_free(struct pairs *p)
{
	buf_free(&p->b);
	free(p->uids);
}

struct by_pos {
	uint32_t uid;
	size_t pos;
};

static int cmp_pos(const void *x, const void *y)
{
	const struct by_pos *a = x, *b = y;
	return a->pos < b->pos ? -1 : a->pos > b->pos;
}

struct sort_arg {
	const struct imap_client *cl;
	const struct imap_context *x;
};

static struct sort_arg sorting; /* qsort has no context argument; the loop is one thread */

static int cmp_keys(const void *p, const void *q)
{
	struct imap_sort_msg a, b;
	uint32_t ua = *(const uint32_t *)p, ub = *(const uint32_t *)q;
	if (!key_of(sorting.cl, ua, &a) || !key_of(sorting.cl, ub, &b))
		return ua < ub ? -1 : ua > ub;
	return imap_sort_cmp(&a, &b, sorting.x->crit, sorting.x->n_crit);
}

/* Applies the changes of the pending UIDs p[0..np) (ascending, unique) to x and appends
 * its ESEARCH response to o when its result changed. */
static void update(struct imap_client *cl, struct imap_context *x, const uint32_t *p, size_t np,
                   struct buf *o)
{
	uint32_t *gone = xmalloc((np + 1) * sizeof(*gone));
	uint32_t *come = xmalloc((np + 1) * sizeof(*come));
	size_t n_gone = 0, n_come = 0, at;
	for (size_t i = 0; i < np; i++) {
		bool was = set_has(x, p[i], &at);
		bool now = matches(cl, x, p[i]);
		if (was && !now)
			gone[n_gone++] = p[i];
		else if (!was && now)
			come[n_come++] = p[i];
	}
	if (n_gone == 0 && n_come == 0) {
		free(gone);
		free(come);
		return;
	}
	struct pairs rm, add;
	pairs_init(&rm);
	pairs_init(&add);
	if (x->sorted && n_gone > 0) {
		/* Removed in order of position: each one's position counts the removals
		 * before it. */
		struct by_pos *bp = xmalloc(n_gone * sizeof(*bp));
		for (size_t i = 0; i < n_gone; i++)
			bp[i] = (struct by_pos){gone[i], order_pos(cl, x, gone[i])};
		qsort(bp, n_gone, sizeof(*bp), cmp_pos);
		for (size_t i = 0; i < n_gone; i++)
			pairs_add(&rm, (uint32_t)(bp[i].pos - i + 1), bp[i].uid, true);
		size_t w = 0, k = 0;
		for (size_t i = 0; i < x->n; i++) {
			if (k < n_gone && bp[k].pos == i) {
				k++;
				continue;
			}
			x->order[w++] = x->order[i];
		}
		free(bp);
	} else {
		for (size_t i = 0; i < n_gone; i++)
			pairs_add(&rm, 0, gone[i], true);
	}
	/* The ascending set loses the same UIDs (both lists are ascending). */
	if (n_gone > 0) {
		size_t w = 0, k = 0;
		for (size_t i = 0; i < x->n; i++) {
			while (k < n_gone && gone[k] < x->set[i])
				k++;
			if (k < n_gone && gone[k] == x->set[i])
				continue;
			x->set[w++] = x->set[i];
		}
		x->n = w;
	}
	if (x->sorted && n_come > 0) {
		/* Inserted in sort order: each one's position is final when it is made, and
		 * neighbours join one pair. */
		sorting = (struct sort_arg){cl, x};
		qsort(come, n_come, sizeof(*come), cmp_keys);
		for (size_t i = 0; i < n_come; i++) {
			struct imap_sort_msg k;
			if (!key_of(cl, come[i], &k))
				continue; /* matches() saw it in the snapshot: cannot happen */
			size_t r = order_rank(cl, x, &k);
			grow(x);
			memmove(&x->order[r + 1], &x->order[r], (x->n - r) * sizeof(*x->order));
			x->order[r] = come[i];
			size_t s;
			set_has(x, come[i], &s);
			memmove(&x->set[s + 1], &x->set[s], (x->n - s) * sizeof(*x->set));
			x->set[s] = come[i];
			x->n++;
			pairs_add(&add, (uint32_t)r + 1, come[i], false);
		}
	} else {
		for (size_t i = 0; i < n_come; i++) {
			size_t s;
			set_has(x, come[i], &s);
			grow(x);
			memmove(&x->set[s + 1], &x->set[s], (x->n - s) * sizeof(*x->set));
			x->set[s] = come[i];
			x->n++;
			pairs_add(&add, 0, come[i], false);
		}
	}
	pairs_close(&rm);
	pairs_close(&add);
	buf_printf(o, "* ESEARCH (TAG \"%s\") UID", x->tag);
	if (rm.any) {
		buf_append_str(o, " REMOVEFROM (");
		buf_append(o, rm.b.data, rm.b.len);
		buf_append_str(o, ")");
	}
	if (add.any) {
		buf_append_str(o, " ADDTO (");
		buf_append(o, add.b.data, add.b.len);
		buf_append_str(o, ")");
	}
	buf_append_str(o, "\r\n");
	pairs_free(&rm);
	pairs_free(&add);
	free(gone);
	free(come);
}

/* Whether a SORT result must wait for the keys of a pending message still unread. */
static bool keys_missing(const struct imap_client *cl, const uint32_t *p, size_t np)
{
	const struct imap_contexts *cx = cl->contexts;
	bool sorted = false;
	for (size_t i = 0; i < cx->n; i++)
		sorted |= cx->v[i]->sorted;
	if (!sorted || cx->keys_failed)
		return false;
	for (size_t i = 0; i < np; i++)
		if (imap_seq_of(cl, p[i]) > 0 && !imap_sortcache_covers(cl, p[i]))
			return true;
	return false;
}

static void keys_loaded(struct imap_client *cl, int rc)
{
	struct imap_contexts *cx = cl->contexts;
	if (cx == NULL)
		return;
	cx->loading = false;
	cx->keys_failed = rc < 0;
	/* Sent now in IDLE or between commands, unless a command is being assembled or run:
	 * its tagged reply sends them. */
	if ((cl->idling || (!cl->busy && cl->reader.cmd.len == 0)) && !cl->syncing &&
	    conn_is_open(cl->c))
		imap_context_flush(cl);
}

void imap_context_flush(struct imap_client *cl)
{
	struct imap_contexts *cx = cl->contexts;
	if (cx == NULL || cx->n_pending == 0 || cx->loading)
		return;
	if (cl->state != IMAP_STATE_SELECTED) {
		imap_context_clear(cl);
		return;
	}
	qsort(cx->pending, cx->n_pending, sizeof(*cx->pending), cmp_u32);
	size_t np = 0;
	for (size_t i = 0; i < cx->n_pending; i++)
		if (np == 0 || cx->pending[np - 1] != cx->pending[i])
			cx->pending[np++] = cx->pending[i];
	cx->n_pending = np;
	if (keys_missing(cl, cx->pending, np)) {
		cx->loading = true;
		if (imap_sortcache_load(cl, keys_loaded) == 0)
			return;
		cx->loading = false;
		cx->keys_failed = true;
	}
	struct buf o;
	buf_init(&o, SIZE_MAX);
	for (size_t i = 0; i < cx->n; i++)
		update(cl, cx->v[i], cx->pending, np, &o);
	cx->n_pending = 0;
	cx->keys_failed = false;
	if (o.len > 0)
		conn_write(cl->c, o.data, o.len);
	buf_free(&o);
}
