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
	/* The program's header and text keys: each answers by the UIDs it matched (k->uids,
	 * as a TEXT key does), known for every message up to watermark. */
	struct content_key *content;
	size_t n_content;
	uint32_t watermark;
};

struct content_key {
	struct imap_search_key *k; /* in search.root, now of type IMAP_SK_TEXT */
	enum imap_skey type;       /* what it was */
};

struct imap_contexts {
	struct imap_context *v[IMAP_CONTEXT_MAX];
	size_t n;
	uint32_t *pending; /* noted UIDs, unsorted, repeats allowed */
	size_t n_pending, cap_pending;
	bool loading;     /* sort keys or new messages' headers are being read */
	bool keys_failed; /* the last read failed: use what the snapshot has */
	unsigned gen;     /* tells a read that outlived this set of contexts */
	bool in_flush;    /* a read that ends at once leaves the flush to go on */
};

static unsigned contexts_gen;

static void context_free(struct imap_context *x)
{
	free(x->tag);
	imap_search_free(&x->search);
	free(x->set);
	free(x->order);
	free(x->content);
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

/* Keys on what a message's entry keeps for ever: its header, its RFC 8474 ids (set at
 * delivery, kept through COPY and MOVE) and its RFC 8514 save date. */
static bool is_header_key(enum imap_skey t)
{
	switch (t) {
	case IMAP_SK_HEADER:
	case IMAP_SK_SENTBEFORE:
	case IMAP_SK_SENTON:
	case IMAP_SK_SENTSINCE:
	case IMAP_SK_SAVEDBEFORE:
	case IMAP_SK_SAVEDON:
	case IMAP_SK_SAVEDSINCE:
	case IMAP_SK_EMAILID:
	case IMAP_SK_THREADID:
		return true;
	default:
		return false;
	}
}

void imap_context_content(struct imap_search_key *k, const struct imap_search_msg *m)
{
	if (is_header_key(k->type) && imap_search_match(k, m, 0, 0)) {
		k->uids = xreallocarray(k->uids, k->n_uids + 1, sizeof(*k->uids));
		k->uids[k->n_uids++] = m->uid;
	}
	for (size_t i = 0; i < k->n_kids; i++)
		imap_context_content(&k->kids[i], m);
}

/* Turns every header key of k into a UID-set key and lists the content keys in x. */
static void content_collect(struct imap_context *x, struct imap_search_key *k)
{
	if (is_header_key(k->type) || k->type == IMAP_SK_TEXT) {
		x->content = xreallocarray(x->content, x->n_content + 1, sizeof(*x->content));
		x->content[x->n_content++] = (struct content_key){k, k->type};
		k->type = IMAP_SK_TEXT;
	}
	for (size_t i = 0; i < k->n_kids; i++)
		content_collect(x, &k->kids[i]);
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
	if (cl->contexts == NULL) {
		cl->contexts = xcalloc(1, sizeof(*cl->contexts));
		cl->contexts->gen = ++contexts_gen;
	}
	struct imap_context *x = xcalloc(1, sizeof(*x));
	x->tag = xstrdup(cl->tag);
	x->search = *search;
	memset(search, 0, sizeof(*search));
	content_collect(x, &x->search.root);
	x->watermark = cl->n_msgs > 0 ? cl->msgs[cl->n_msgs - 1].uid : 0;
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
	buf_append_uidset(&p->b, p->uids, p->n);
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
	if (cx->in_flush)
		return;
	/* Sent now in IDLE or between commands, unless a command is being assembled or run:
	 * its tagged reply sends them. */
	if ((cl->idling || (!cl->busy && cl->reader.cmd.len == 0)) && !cl->syncing &&
	    conn_is_open(cl->c))
		imap_context_flush(cl);
}

/* ---- headers and text of new messages ----
 *
 * A message that arrived after a result was computed has no verdict in its content keys
 * yet: its decoded header fields (store_message_get), its raw header (store_content_read)
 * and the full-text matches of each text key (one index query per key, whose hits among
 * the new messages are taken) are read, one store call after the other, and the keys
 * evaluated on them.
 */

#define HDR_MAX (64 * 1024)

struct content_load {
	struct imap_client *cl;
	unsigned gen;
	uint32_t *uids; /* the new messages, ascending */
	size_t n, next;
	bool decoded, raw;     /* what is read per message */
	struct store_msg *dec; /* per message: hdr_* (owned) */
	char **hdr;
	size_t *hdr_len;
	/* Text keys: the query, and the new messages it matched (sorted). */
	struct text_query {
		char *str;
		bool body_only;
		uint32_t *uids;
		size_t n;
	} * texts;
	size_t n_texts, next_text;
	int rc;
};

static void load_free(struct content_load *ld)
{
	for (size_t i = 0; i < ld->n; i++) {
		free(ld->dec[i].hdr_from);
		free(ld->dec[i].hdr_to);
		free(ld->dec[i].hdr_cc);
		free(ld->dec[i].hdr_subject);
		free(ld->dec[i].hdr_message_id);
		if (ld->hdr != NULL)
			free(ld->hdr[i]);
	}
	for (size_t i = 0; i < ld->n_texts; i++) {
		free(ld->texts[i].str);
		free(ld->texts[i].uids);
	}
	free(ld->texts);
	free(ld->uids);
	free(ld->dec);
	free(ld->hdr);
	free(ld->hdr_len);
	free(ld);
}

/* Gives each context's content keys their verdicts on the new messages. */
static void content_apply(struct imap_client *cl, struct content_load *ld)
{
	struct imap_contexts *cx = cl->contexts;
	for (size_t c = 0; c < cx->n; c++) {
		struct imap_context *x = cx->v[c];
		if (x->n_content == 0)
			continue;
		for (size_t i = 0; i < ld->n; i++) {
			uint32_t uid = ld->uids[i];
			uint32_t seq = imap_seq_of(cl, uid);
			if (uid <= x->watermark || seq == 0)
				continue;
			const struct imap_msg *im = &cl->msgs[seq - 1];
			struct imap_search_msg m = {
			    .seq = seq,
			    .uid = uid,
			    .flags = im->flags,
			    .keywords = im->keywords,
			    .size = im->size,
			    .modseq = im->modseq,
			    .internal_date = im->internal_date,
			    .hdr = ld->hdr != NULL ? ld->hdr[i] : NULL,
			    .hdr_len = ld->hdr != NULL ? ld->hdr_len[i] : 0,
			    .decoded = ld->decoded,
			};
			imap_search_msg_stored(&m, &ld->dec[i]);
			for (size_t j = 0; j < x->n_content; j++) {
				struct imap_search_key *k = x->content[j].k;
				bool hit = false;
				if (x->content[j].type == IMAP_SK_TEXT) {
					for (size_t t = 0; t < ld->n_texts; t++)
						if (ld->texts[t].body_only == k->body_only &&
						    strcmp(ld->texts[t].str, k->str) == 0)
							hit = imap_uid_in(ld->texts[t].uids,
							                  ld->texts[t].n, uid);
				} else {
					/* The key as it was, on this message alone. */
					k->type = x->content[j].type;
					hit = imap_search_match(k, &m, 0, 0);
					k->type = IMAP_SK_TEXT;
				}
				if (hit) {
					k->uids =
					    xreallocarray(k->uids, k->n_uids + 1, sizeof(*k->uids));
					k->uids[k->n_uids++] = uid;
				}
			}
		}
		if (ld->n > 0 && ld->uids[ld->n - 1] > x->watermark)
			x->watermark = ld->uids[ld->n - 1];
	}
}

static void load_step(struct content_load *ld);

/* The end of a store call: false when the load is over (its memory freed). */
static bool load_back(struct content_load *ld, int rc)
{
	struct imap_client *cl = ld->cl;
	if (!conn_release(cl->c)) {
		load_free(ld);
		return false;
	}
	if (rc < 0 && rc != -ENOENT && ld->rc == 0)
		ld->rc = rc;
	return true;
}

static void dec_got(void *ctx, int rc, struct store_msgs *res)
{
	struct content_load *ld = ctx;
	if (!load_back(ld, rc))
		return;
	if (rc == 0 && res->n > 0) {
		struct store_msg *d = &ld->dec[ld->next], *v = &res->v[0];
		d->hdr_from = v->hdr_from;
		d->hdr_to = v->hdr_to;
		d->hdr_cc = v->hdr_cc;
		d->hdr_subject = v->hdr_subject;
		d->hdr_message_id = v->hdr_message_id;
		d->hdr_date = v->hdr_date;
		d->email_id = v->email_id;
		d->thread_id = v->thread_id;
		d->save_date = v->save_date;
		v->hdr_from = v->hdr_to = v->hdr_cc = v->hdr_subject = v->hdr_message_id = NULL;
	}
	ld->next++;
	load_step(ld);
}

static void hdr_got(void *ctx, int rc, struct store_content *res)
{
	struct content_load *ld = ctx;
	if (!load_back(ld, rc))
		return;
	if (rc == 0 && res->len > 0) {
		const char *d = (const char *)res->data;
		size_t len = res->len;
		const char *end = memmem(d, len, "\r\n\r\n", 4);
		if (end != NULL)
			len = (size_t)(end - d) + 4;
		size_t i = ld->next - ld->n; /* the second pass over the messages */
		ld->hdr[i] = xstrndup(d, len);
		ld->hdr_len[i] = len;
	}
	ld->next++;
	load_step(ld);
}

static void text_got(void *ctx, int rc, struct store_uids *res)
{
	struct content_load *ld = ctx;
	if (!load_back(ld, rc))
		return;
	struct text_query *t = &ld->texts[ld->next_text];
	for (size_t i = 0; rc == 0 && i < res->n; i++)
		if (imap_uid_in(ld->uids, ld->n, res->v[i])) {
			t->uids = xreallocarray(t->uids, t->n + 1, sizeof(*t->uids));
			t->uids[t->n++] = res->v[i];
		}
	if (t->n > 0)
		qsort(t->uids, t->n, sizeof(*t->uids), cmp_u32);
	ld->next_text++;
	load_step(ld);
}

static void keys_loaded(struct imap_client *cl, int rc);

/* The next store call of the load, or its end: the verdicts, then flush again. */
static void load_step(struct content_load *ld)
{
	struct imap_client *cl = ld->cl;
	struct store *st = imap_store(cl);
	bool same = cl->contexts != NULL && cl->contexts->gen == ld->gen &&
	            cl->state == IMAP_STATE_SELECTED;
	while (same && ld->rc == 0) {
		int rc;
		if (ld->decoded && ld->next < ld->n) {
			conn_hold(cl->c);
			rc = store_message_get(st, cl->mailbox_id, ld->uids[ld->next], dec_got, ld);
		} else if (ld->raw && ld->next < 2 * ld->n) {
			if (ld->next < ld->n)
				ld->next = ld->n; /* no decoded pass */
			conn_hold(cl->c);
			rc = store_content_read(st, cl->mailbox_id, ld->uids[ld->next - ld->n], 0,
			                        HDR_MAX, hdr_got, ld);
		} else if (ld->next_text < ld->n_texts) {
			struct text_query *t = &ld->texts[ld->next_text];
			conn_hold(cl->c);
			rc = (t->body_only ? store_search_body : store_search_text)(
			    st, cl->mailbox_id, t->str, text_got, ld);
		} else {
			break;
		}
		if (rc == 0)
			return;
		conn_release(cl->c);
		ld->rc = rc;
	}
	if (same && ld->rc == 0)
		content_apply(cl, ld);
	int rc = ld->rc;
	load_free(ld);
	keys_loaded(cl, rc);
}

/* The new messages some context has no content verdicts for, or 0 of them. */
static size_t content_missing(const struct imap_client *cl, const uint32_t *p, size_t np,
                              uint32_t **uids_r)
{
	const struct imap_contexts *cx = cl->contexts;
	uint32_t low = UINT32_MAX;
	for (size_t i = 0; i < cx->n; i++)
		if (cx->v[i]->n_content > 0 && cx->v[i]->watermark < low)
			low = cx->v[i]->watermark;
	size_t n = 0;
	*uids_r = NULL;
	for (size_t i = 0; low != UINT32_MAX && i < np; i++)
		if (p[i] > low && imap_seq_of(cl, p[i]) > 0) {
			if (*uids_r == NULL)
				*uids_r = xmalloc(np * sizeof(**uids_r));
			(*uids_r)[n++] = p[i];
		}
	return n;
}

static void add_texts(struct content_load *ld, const struct imap_context *x)
{
	for (size_t j = 0; j < x->n_content; j++) {
		const struct imap_search_key *k = x->content[j].k;
		if (x->content[j].type != IMAP_SK_TEXT)
			continue;
		bool have = false;
		for (size_t t = 0; t < ld->n_texts && !have; t++)
			have = ld->texts[t].body_only == k->body_only &&
			       strcmp(ld->texts[t].str, k->str) == 0;
		if (have)
			continue;
		ld->texts = xreallocarray(ld->texts, ld->n_texts + 1, sizeof(*ld->texts));
		ld->texts[ld->n_texts++] =
		    (struct text_query){xstrdup(k->str), k->body_only, NULL, 0};
	}
}

static void content_load(struct imap_client *cl, uint32_t *uids, size_t n)
{
	struct imap_contexts *cx = cl->contexts;
	struct content_load *ld = xcalloc(1, sizeof(*ld));
	ld->cl = cl;
	ld->gen = cx->gen;
	ld->uids = uids;
	ld->n = n;
	ld->dec = xcalloc(n, sizeof(*ld->dec));
	for (size_t i = 0; i < cx->n; i++) {
		const struct imap_context *x = cx->v[i];
		if (x->n_content == 0)
			continue;
		ld->decoded |= x->search.needs_header;
		ld->raw |= x->search.needs_raw_header;
		add_texts(ld, x);
	}
	if (ld->raw) {
		ld->hdr = xcalloc(n, sizeof(*ld->hdr));
		ld->hdr_len = xcalloc(n, sizeof(*ld->hdr_len));
	}
	cx->loading = true;
	load_step(ld);
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
	uint32_t *fresh;
	size_t n_fresh = content_missing(cl, cx->pending, np, &fresh);
	if (n_fresh > 0 && !cx->keys_failed) {
		cx->in_flush = true;
		content_load(cl, fresh, n_fresh);
		cx->in_flush = false;
		if (cx->loading)
			return;
	} else {
		free(fresh);
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
