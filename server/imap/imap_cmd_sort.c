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
#include "server/imap/imap_sort.h"

struct sort_op {
	struct imap_client *cl;
	bool thread;
	enum imap_thread_alg alg;
	struct imap_sort_crit crit[IMAP_SORT_CRIT_MAX];
	size_t n_crit;
	uint32_t *seqs; /* the hits, ascending */
	size_t n_seqs;
};

static void sort_op_free(void *p)
{
	struct sort_op *op = p;
	free(op->seqs);
	free(op);
}

static const char *cmd_name(const struct sort_op *op)
{
	return op->thread ? "THREAD" : "SORT";
}

/* The keys of uid in res (UID order), or NULL: expunged since the snapshot was taken. */
static const struct store_msg *keys_of(const struct store_msgs *res, uint32_t uid)
{
	size_t lo = 0, hi = res->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (res->v[mid].uid == uid)
			return &res->v[mid];
		if (res->v[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void answer(struct sort_op *op, const struct imap_sort_msg *msgs, size_t n)
{
	struct imap_client *cl = op->cl;
	struct buf o;
	buf_init(&o, SIZE_MAX);
	if (op->thread) {
		buf_append_str(&o, "* THREAD");
		if (n > 0) {
			buf_append_str(&o, " ");
			imap_thread(msgs, n, op->alg, cl->uid, &o);
		}
	} else {
		const struct imap_sort_msg **v = xmalloc((n + 1) * sizeof(*v));
		for (size_t i = 0; i < n; i++)
			v[i] = &msgs[i];
		imap_sort(v, n, op->crit, op->n_crit);
		buf_append_str(&o, "* SORT");
		for (size_t i = 0; i < n; i++)
			buf_printf(&o, " %u", cl->uid ? v[i]->uid : v[i]->seq);
		free(v);
	}
	buf_append_str(&o, "\r\n");
	conn_write(cl->c, o.data, o.len);
	buf_free(&o);
	imap_donef(cl, "OK", "%s completed", cmd_name(op));
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
	struct imap_sort_msg *msgs = xcalloc(op->n_seqs + 1, sizeof(*msgs));
	size_t n = 0;
	for (size_t i = 0; i < op->n_seqs; i++) {
		uint32_t seq = op->seqs[i];
		if (seq == 0 || seq > cl->n_msgs)
			continue;
		const struct imap_msg *im = &cl->msgs[seq - 1];
		struct imap_sort_msg *m = &msgs[n++];
		m->seq = seq;
		m->uid = im->uid;
		m->size = im->size;
		m->arrival = im->internal_date;
		m->date = im->internal_date;
		const struct store_msg *k = keys_of(res, im->uid);
		if (k == NULL)
			continue; /* gone from the store: sorts by what the snapshot has */
		/* RFC 5256 2.2: the sent date, else INTERNALDATE. */
		if (k->hdr_date != 0)
			m->date = k->hdr_date;
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
	answer(op, msgs, n);
	free(msgs);
}

static void matched(struct imap_client *cl, void *ext, int rc, const uint32_t *seqs, size_t n)
{
	struct sort_op *op = ext;
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
	imap_async_begin(cl);
	if (store_message_sortkeys(imap_store(cl), cl->mailbox_id, keys_got, op) == 0)
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
	if (n < 1 || imap_sort_parse(&a[0], op->crit, &op->n_crit, &err) < 0) {
		free(op);
		imap_done(cl, "BAD", err != NULL ? err : "SORT needs sort criteria");
		return;
	}
	if (!check_rest(cl, a + 1, n - 1, "SORT")) {
		free(op);
		return;
	}
	imap_search_run(cl, a + 2, n - 2, matched, op, sort_op_free);
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
	imap_search_run(cl, a + 2, n - 2, matched, op, sort_op_free);
}
