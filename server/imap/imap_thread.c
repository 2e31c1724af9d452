/*
 * THREAD (RFC 5256 section 3). REFERENCES builds the tree of section 3 step by step over
 * an array of nodes linked by index (parent, first and last child, siblings both ways):
 * messages first, in sequence order, then the dummies that references and subject merging
 * create. Every walk over the tree uses an explicit stack, and the loop check of steps 1.A
 * and 1.B walks parent links, so neither a deep chain nor a cycle in References reaches
 * the C stack. Message-IDs and subjects are found through small open-addressing tables.
 */
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "server/imap/imap_sort.h"

#define NONE SIZE_MAX

struct node {
	const struct imap_sort_msg *m; /* NULL: a dummy */
	size_t parent, first, last, next, prev;
	/* What the node sorts by: its message's, or a dummy's first child's. */
	int64_t kdate;
	uint32_t kseq;
};

struct tree {
	struct node *v;
	size_t n, cap;
};

static size_t node_new(struct tree *t, const struct imap_sort_msg *m)
{
	if (t->n == t->cap) {
		t->cap = t->cap != 0 ? t->cap * 2 : 64;
		t->v = xreallocarray(t->v, t->cap, sizeof(*t->v));
	}
	struct node *x = &t->v[t->n];
	x->m = m;
	x->parent = x->first = x->last = x->next = x->prev = NONE;
	x->kdate = m != NULL ? m->date : 0;
	x->kseq = m != NULL ? m->seq : 0;
	return t->n++;
}

static void unlink_node(struct tree *t, size_t c)
{
	struct node *x = &t->v[c];
	if (x->parent == NONE)
		return;
	struct node *p = &t->v[x->parent];
	if (x->prev != NONE)
		t->v[x->prev].next = x->next;
	else
		p->first = x->next;
	if (x->next != NONE)
		t->v[x->next].prev = x->prev;
	else
		p->last = x->prev;
	x->parent = x->next = x->prev = NONE;
}

static void append_child(struct tree *t, size_t p, size_t c)
{
	struct node *x = &t->v[c];
	x->parent = p;
	x->next = NONE;
	x->prev = t->v[p].last;
	if (t->v[p].last != NONE)
		t->v[t->v[p].last].next = c;
	else
		t->v[p].first = c;
	t->v[p].last = c;
}

/* Whether a is b or lies below it. A b without children (a message not yet referred to,
 * the usual case in sequence order) answers at once. */
static bool is_below(const struct tree *t, size_t a, size_t b)
{
	if (t->v[b].first == NONE)
		return a == b;
	for (size_t x = a; x != NONE; x = t->v[x].parent)
		if (x == b)
			return true;
	return false;
}

static size_t n_children(const struct tree *t, size_t p, size_t stop_at)
{
	size_t k = 0;
	for (size_t c = t->v[p].first; c != NONE && k < stop_at; c = t->v[c].next)
		k++;
	return k;
}

/* ---- a table of strings to node indexes ---- */

struct slot {
	const char *key; /* NULL: empty */
	uint32_t len, hash, val;
};

struct table {
	struct slot *v; /* one array: a probe touches one cache line */
	size_t cap, used;
};

static uint32_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return (uint32_t)(h ^ (h >> 32));
}

static void table_init(struct table *tb, size_t expect)
{
	tb->cap = 64;
	while (tb->cap < expect * 2)
		tb->cap *= 2;
	tb->v = xcalloc(tb->cap, sizeof(*tb->v));
	tb->used = 0;
}

static void table_free(struct table *tb)
{
	free(tb->v);
}

/* The slot of s: where it is, or the empty slot where it would go. */
static size_t table_slot(const struct table *tb, const char *s, size_t len, uint32_t h)
{
	size_t i = (size_t)h & (tb->cap - 1);
	while (tb->v[i].key != NULL &&
	       !(tb->v[i].hash == h && tb->v[i].len == len && memcmp(tb->v[i].key, s, len) == 0))
		i = (i + 1) & (tb->cap - 1);
	return i;
}

static size_t table_get(const struct table *tb, const char *s, size_t len)
{
	size_t i = table_slot(tb, s, len, hash_bytes(s, len));
	return tb->v[i].key != NULL ? tb->v[i].val : NONE;
}

static void table_put(struct table *tb, const char *s, size_t len, size_t val)
{
	if ((tb->used + 1) * 2 > tb->cap) {
		struct table big;
		table_init(&big, tb->cap);
		for (size_t i = 0; i < tb->cap; i++)
			if (tb->v[i].key != NULL)
				big.v[table_slot(&big, tb->v[i].key, tb->v[i].len, tb->v[i].hash)] =
				    tb->v[i];
		big.used = tb->used;
		table_free(tb);
		*tb = big;
	}
	uint32_t h = hash_bytes(s, len);
	size_t i = table_slot(tb, s, len, h);
	if (tb->v[i].key == NULL)
		tb->used++;
	/* Lengths and node indexes fit: a key is at most a header line, nodes are counted
	 * in messages (IMAP numbers them in 32 bits). */
	tb->v[i] = (struct slot){s, (uint32_t)len, h, (uint32_t)val};
}

/* ---- sorting siblings by sent date ---- */

static int cmp_nodes(const void *x, const void *y, const struct tree *t)
{
	const struct node *a = &t->v[*(const size_t *)x], *b = &t->v[*(const size_t *)y];
	if (a->kdate != b->kdate)
		return a->kdate < b->kdate ? -1 : 1;
	return a->kseq < b->kseq ? -1 : a->kseq > b->kseq;
}

/* Sorts the children of p by (sent date, sequence number) with a bottom-up merge sort;
 * a dummy p then sorts by its first child. */
static void sort_children(struct tree *t, size_t p, size_t **buf, size_t *cap)
{
	size_t k = 0;
	for (size_t c = t->v[p].first; c != NONE; c = t->v[c].next) {
		if (k + 1 > *cap / 2) {
			*cap = *cap != 0 ? *cap * 2 : 64;
			*buf = xreallocarray(*buf, *cap, sizeof(**buf));
		}
		(*buf)[k++] = c;
	}
	if (k >= 2) {
		size_t *src = *buf, *dst = *buf + *cap / 2;
		for (size_t w = 1; w < k; w *= 2) {
			for (size_t lo = 0; lo < k; lo += 2 * w) {
				size_t mid = lo + w < k ? lo + w : k;
				size_t hi = lo + 2 * w < k ? lo + 2 * w : k;
				size_t i = lo, j = mid, o = lo;
				while (i < mid && j < hi)
					dst[o++] = cmp_nodes(&src[j], &src[i], t) < 0 ? src[j++]
					                                              : src[i++];
				while (i < mid)
					dst[o++] = src[i++];
				while (j < hi)
					dst[o++] = src[j++];
			}
			size_t *tmp = src;
			src = dst;
			dst = tmp;
		}
		t->v[p].first = t->v[p].last = NONE;
		for (size_t i = 0; i < k; i++)
			append_child(t, p, src[i]);
	}
	if (t->v[p].m == NULL && t->v[p].first != NONE) {
		t->v[p].kdate = t->v[t->v[p].first].kdate;
		t->v[p].kseq = t->v[t->v[p].first].kseq;
	}
}

/* Every node below root, parents before children (an explicit-stack walk). */
static size_t preorder(const struct tree *t, size_t root, size_t **out)
{
	size_t n = 0, sp = 0;
	size_t *stack = xmalloc(t->n * sizeof(*stack) + sizeof(*stack));
	*out = xmalloc(t->n * sizeof(**out) + sizeof(**out));
	stack[sp++] = root;
	while (sp > 0) {
		size_t x = stack[--sp];
		(*out)[n++] = x;
		for (size_t c = t->v[x].first; c != NONE; c = t->v[c].next)
			stack[sp++] = c;
	}
	free(stack);
	return n;
}

/* ---- output ---- */

static void put_num(struct buf *o, const struct node *x, bool uid)
{
	uint32_t v = uid ? x->m->uid : x->m->seq;
	char tmp[11];
	size_t i = sizeof(tmp);
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	buf_append(o, tmp + i, sizeof(tmp) - i);
}

/* Appends "(...)" for each child of root: a chain of only children is "a b c", a node
 * with several children is followed by " (child...)(child...)". */
static void format(const struct tree *t, size_t root, bool uid, struct buf *o)
{
	/* The stack holds node indexes to open ("(" and its members), or CLOSE. */
	const size_t close = NONE - 1;
	size_t sp = 0, cap = 64;
	size_t *stack = xmalloc(cap * sizeof(*stack));
	size_t kids = n_children(t, root, SIZE_MAX);
	size_t *order = xmalloc((kids + 1) * sizeof(*order));
	size_t k = 0;
	for (size_t c = t->v[root].first; c != NONE; c = t->v[c].next)
		order[k++] = c;
	while (k > 0) {
		if (sp + 2 > cap) {
			cap *= 2;
			stack = xreallocarray(stack, cap, sizeof(*stack));
		}
		stack[sp++] = close;
		stack[sp++] = order[--k];
	}
	free(order);
	while (sp > 0) {
		size_t x = stack[--sp];
		if (x == close) {
			buf_append_str(o, ")");
			continue;
		}
		buf_append_str(o, "(");
		bool wrote = false;
		for (;;) {
			if (t->v[x].m != NULL) {
				if (wrote)
					buf_append_str(o, " ");
				put_num(o, &t->v[x], uid);
				wrote = true;
			}
			size_t nk = n_children(t, x, 2);
			if (nk == 1) {
				x = t->v[x].first;
				continue;
			}
			if (nk == 0)
				break;
			if (wrote)
				buf_append_str(o, " ");
			/* Several children: each its own list, in order, each with its CLOSE
			 * beneath it (this list's own is already beneath). */
			size_t all = n_children(t, x, SIZE_MAX);
			while (sp + 2 * all > cap) {
				cap *= 2;
				stack = xreallocarray(stack, cap, sizeof(*stack));
			}
			sp += 2 * all;
			size_t i = sp;
			for (size_t c = t->v[x].first; c != NONE; c = t->v[c].next) {
				stack[--i] = c;
				stack[--i] = close;
			}
			break;
		}
	}
	free(stack);
}

/* ---- REFERENCES ---- */

/* The node of msg-id s: its message, or the dummy made for it the first time it is named. */
static size_t node_of_id(struct tree *t, struct table *ids, const char *s, size_t len)
{
	size_t x = table_get(ids, s, len);
	if (x == NONE) {
		x = node_new(t, NULL);
		table_put(ids, s, len, x);
	}
	return x;
}

/* Step 1: links by References (A), then the message under its last reference (B). */
static void link_references(struct tree *t, struct table *ids, size_t i)
{
	const char *r = t->v[i].m->refs;
	size_t prev = NONE;
	while (r != NULL && *r != '\0') {
		while (*r == ' ')
			r++;
		size_t len = strcspn(r, " ");
		if (len == 0)
			break;
		size_t cur = node_of_id(t, ids, r, len);
		r += len;
		/* (A) prev is cur's parent unless cur has one already or it would loop. */
		if (prev != NONE && t->v[cur].parent == NONE && !is_below(t, prev, cur))
			append_child(t, prev, cur);
		prev = cur;
	}
	/* (B) The last reference is the parent, whatever (A) did; a loop leaves none. */
	unlink_node(t, i);
	if (prev != NONE && !is_below(t, prev, i))
		append_child(t, prev, i);
}

/* Puts the children of c (which has some) where c is among its siblings and takes c out.
 * Returns the first of them. */
static size_t splice_up(struct tree *t, size_t c)
{
	struct node *x = &t->v[c];
	size_t p = x->parent, first = x->first, last = x->last, prev = x->prev, next = x->next;
	for (size_t k = first; k != NONE; k = t->v[k].next)
		t->v[k].parent = p;
	t->v[first].prev = prev;
	if (prev != NONE)
		t->v[prev].next = first;
	else
		t->v[p].first = first;
	t->v[last].next = next;
	if (next != NONE)
		t->v[next].prev = last;
	else
		t->v[p].last = last;
	x->parent = x->first = x->last = x->next = x->prev = NONE;
	return first;
}

/* Step 3: dummies without children go; those with children give them to their parent,
 * except at the top where only a single child moves up. */
static void prune(struct tree *t, size_t root)
{
	size_t sp = 0;
	size_t *stack = xmalloc((t->n + 1) * sizeof(*stack));
	stack[sp++] = root;
	while (sp > 0) {
		size_t p = stack[--sp];
		size_t c = t->v[p].first;
		while (c != NONE) {
			struct node *x = &t->v[c];
			size_t next = x->next;
			if (x->m == NULL && x->first == NONE) {
				unlink_node(t, c);
			} else if (x->m == NULL && (p != root || n_children(t, c, 2) == 1)) {
				/* The promoted children are looked at next: one may be a dummy. */
				next = splice_up(t, c);
			} else if (x->first != NONE) {
				stack[sp++] = c;
			}
			c = next;
		}
	}
	free(stack);
}

static bool same_subject(const struct imap_sort_msg *a, const struct imap_sort_msg *b)
{
	return strcmp(a->subject != NULL ? a->subject : "", b->subject != NULL ? b->subject : "") ==
	       0;
}

static const char *thread_subject(const struct tree *t, size_t c)
{
	const struct node *x = &t->v[c];
	if (x->m == NULL && x->first != NONE)
		x = &t->v[x->first];
	return x->m != NULL && x->m->subject != NULL ? x->m->subject : "";
}

static bool is_reply(const struct tree *t, size_t c)
{
	return t->v[c].m != NULL && t->v[c].m->reply;
}

/* Step 5: threads at the top with the same base subject are merged. */
static void merge_subjects(struct tree *t, size_t root)
{
	size_t k = n_children(t, root, SIZE_MAX);
	size_t *top = xmalloc((k + 1) * sizeof(*top));
	k = 0;
	for (size_t c = t->v[root].first; c != NONE; c = t->v[c].next)
		top[k++] = c;
	struct table subj;
	table_init(&subj, k); /* the keys are casemapped already: exact match */
	/* (B) One thread per subject: a dummy wins, else a message that is not a reply. */
	for (size_t i = 0; i < k; i++) {
		size_t c = top[i];
		const char *s = thread_subject(t, c);
		if (*s == '\0')
			continue;
		size_t x = table_get(&subj, s, strlen(s));
		if (x == NONE)
			table_put(&subj, s, strlen(s), c);
		else if (t->v[x].m != NULL &&
		         (t->v[c].m == NULL || (is_reply(t, x) && !is_reply(t, c))))
			table_put(&subj, s, strlen(s), c);
	}
	/* (C) Merge the others into it. */
	for (size_t i = 0; i < k; i++) {
		size_t c = top[i];
		if (t->v[c].parent != root)
			continue; /* already merged into a new dummy */
		const char *s = thread_subject(t, c);
		if (*s == '\0')
			continue;
		size_t x = table_get(&subj, s, strlen(s));
		if (x == c)
			continue;
		if (t->v[x].m == NULL && t->v[c].m == NULL) {
			size_t kid;
			while ((kid = t->v[c].first) != NONE) {
				unlink_node(t, kid);
				append_child(t, x, kid);
			}
			unlink_node(t, c);
		} else if (t->v[x].m == NULL || (is_reply(t, c) && !is_reply(t, x))) {
			unlink_node(t, c);
			append_child(t, x, c);
		} else {
			size_t d = node_new(t, NULL);
			unlink_node(t, x);
			unlink_node(t, c);
			append_child(t, root, d);
			append_child(t, d, x);
			append_child(t, d, c);
			table_put(&subj, s, strlen(s), d);
		}
	}
	table_free(&subj);
	free(top);
}

static void thread_references(struct tree *t, size_t n)
{
	struct table ids;
	table_init(&ids, n); /* grows when References name many absent messages */
	/* A duplicate Message-ID names the first message that has it (lowest sequence
	 * number); the others are as if they had a unique one of their own, and so has a
	 * message without one. */
	for (size_t i = 0; i < n; i++) {
		const char *id = t->v[i].m->message_id;
		if (id != NULL && *id != '\0' && table_get(&ids, id, strlen(id)) == NONE)
			table_put(&ids, id, strlen(id), i);
	}
	for (size_t i = 0; i < n; i++)
		link_references(t, &ids, i);
	table_free(&ids);
}

void imap_thread(const struct imap_sort_msg *const *msgs, size_t n, enum imap_thread_alg alg,
                 bool uid, struct buf *o)
{
	if (n == 0)
		return;
	struct tree t = {0};
	t.cap = n + n / 2 + 16; /* messages, the dummies of missing references, the root */
	t.v = xmalloc(t.cap * sizeof(*t.v));
	size_t *buf = NULL, cap = 0;
	if (alg == IMAP_THREAD_ORDEREDSUBJECT) {
		/* By base subject, then sent date; each run of one subject is a thread whose
		 * first message is the parent of all the others, and threads go by the sent
		 * date of their first message. */
		const struct imap_sort_msg **v = xmalloc(n * sizeof(*v));
		for (size_t i = 0; i < n; i++)
			v[i] = msgs[i];
		static const struct imap_sort_crit by[] = {{IMAP_SORT_SUBJECT, false},
		                                           {IMAP_SORT_DATE, false}};
		imap_sort(v, n, by, 2);
		size_t root = node_new(&t, NULL);
		size_t head = NONE;
		for (size_t i = 0; i < n; i++) {
			size_t x = node_new(&t, v[i]);
			if (head != NONE && same_subject(v[i], t.v[head].m)) {
				append_child(&t, head, x);
			} else {
				append_child(&t, root, x);
				head = x;
			}
		}
		free(v);
		sort_children(&t, root, &buf, &cap);
		format(&t, root, uid, o);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		node_new(&t, msgs[i]);
	thread_references(&t, n);
	/* (2) Everything without a parent under one root. */
	size_t root = node_new(&t, NULL);
	for (size_t x = 0; x < root; x++)
		if (t.v[x].parent == NONE && (t.v[x].m != NULL || t.v[x].first != NONE))
			append_child(&t, root, x);
	/* (3) Dummies out. */
	prune(&t, root);
	/* (4) The top by sent date, a dummy by its earliest child. */
	for (size_t c = t.v[root].first; c != NONE; c = t.v[c].next)
		if (t.v[c].m == NULL)
			sort_children(&t, c, &buf, &cap);
	sort_children(&t, root, &buf, &cap);
	/* (5) Threads of one subject together. */
	merge_subjects(&t, root);
	/* (6) Every set of siblings by sent date, deepest first. */
	size_t *order;
	size_t k = preorder(&t, root, &order);
	while (k > 0) {
		size_t x = order[--k];
		if (t.v[x].first != NONE)
			sort_children(&t, x, &buf, &cap);
	}
	free(order);
	format(&t, root, uid, o);
out:
	free(buf);
	free(t.v);
}
