/*
 * SEARCH and UID SEARCH (with ESEARCH RETURN options and SEARCHRES). Keys are evaluated
 * per message of the snapshot (imap_search.c); what the snapshot lacks is loaded first:
 * - BODY / TEXT: UID sets from the store's full-text index, one query per key;
 * - FROM, TO, CC, SUBJECT, Message-ID: the decoded header fields of the whole mailbox in
 *   one store_message_headers call;
 * - any other HEADER field (and BCC), an empty string (is the field there?) and SENT*
 *   (the day of Date: as written, in its own zone): each message's raw header, read with
 *   store_content_read (at most HDR_MAX bytes each, one message at a time).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "server/imap/imap_private.h"
#include "server/imap/imap_search.h"

#define HDR_MAX (64 * 1024)

struct search_op {
	struct imap_client *cl;
	struct imap_search search;
	size_t text_pending;
	/* Decoded header fields of the mailbox, in UID order (the store's result, kept). */
	struct store_msgs hdrs;
	/* Raw headers, parallel to the snapshot (NULL when unread). */
	char **raw;
	size_t *raw_len;
	size_t raw_next, raw_n;
	/* A store failure: the answer is NO, never an incomplete list of hits. */
	int store_rc;
	/* SORT and THREAD (imap_search_run): who takes the hits instead of a SEARCH answer. */
	imap_search_done_fn *done;
	void *ext;
	void (*ext_free)(void *ext);
	/* UPDATE: the header keys' verdicts are kept per message (imap_context_content). */
	bool update;
};

static void search_failed(struct search_op *op, int rc)
{
	if (rc < 0 && op->store_rc == 0)
		op->store_rc = rc;
}

static void search_free(void *p)
{
	struct search_op *op = p;
	imap_search_free(&op->search);
	if (op->ext_free != NULL)
		op->ext_free(op->ext);
	store_msgs_free(&op->hdrs);
	for (size_t i = 0; i < op->raw_n; i++)
		free(op->raw[i]);
	free(op->raw);
	free(op->raw_len);
	free(op);
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return a < b ? -1 : a > b;
}

static const struct store_msg *hdr_of(const struct search_op *op, uint32_t uid)
{
	size_t lo = 0, hi = op->hdrs.n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (op->hdrs.v[mid].uid == uid)
			return &op->hdrs.v[mid];
		if (op->hdrs.v[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The modseq of a hit: a UID (UID SEARCH) or a sequence number. */
static uint64_t hit_modseq(const struct imap_client *cl, uint32_t hit)
{
	uint32_t seq = cl->uid ? imap_seq_of(cl, hit) : hit;
	return seq > 0 ? cl->msgs[seq - 1].modseq : 0;
}

static void search_finish(struct search_op *op)
{
	struct imap_client *cl = op->cl;
	if (op->store_rc < 0) {
		if (op->done != NULL)
			op->done(cl, op->ext, op->store_rc, NULL, 0, &op->search);
		else
			imap_done(cl, "NO", "[SERVERBUG] SEARCH failed, try again");
		return;
	}
	uint32_t max_uid = cl->n_msgs > 0 ? cl->msgs[cl->n_msgs - 1].uid : 0;
	uint32_t *hits = xmalloc((cl->n_msgs + 1) * sizeof(uint32_t));
	size_t nh = 0;
	uint64_t maxmod = 0;
	for (size_t i = 0; i < cl->n_msgs; i++) {
		struct imap_search_msg m = {
		    .seq = (uint32_t)i + 1,
		    .uid = cl->msgs[i].uid,
		    .flags = cl->msgs[i].flags |
		             (imap_recent_is(cl, cl->msgs[i].uid) ? IMAP_SEARCH_RECENT : 0),
		    .keywords = cl->msgs[i].keywords,
		    .size = cl->msgs[i].size,
		    .modseq = cl->msgs[i].modseq,
		    .internal_date = cl->msgs[i].internal_date,
		};
		if (op->search.needs_header) {
			const struct store_msg *h = hdr_of(op, m.uid);
			m.decoded = true;
			if (h != NULL)
				imap_search_msg_stored(&m, h);
		}
		if (op->raw != NULL && i < op->raw_n && op->raw[i] != NULL) {
			m.hdr = op->raw[i];
			m.hdr_len = op->raw_len[i];
		}
		if (op->update)
			imap_context_content(&op->search.root, &m);
		if (imap_search_match(&op->search.root, &m, (uint32_t)cl->n_msgs, max_uid)) {
			hits[nh++] =
			    cl->uid && op->done == NULL ? cl->msgs[i].uid : (uint32_t)i + 1;
			if (cl->msgs[i].modseq > maxmod)
				maxmod = cl->msgs[i].modseq;
		}
	}
	if (op->done != NULL) {
		op->done(cl, op->ext, 0, hits, nh, &op->search);
		free(hits);
		return;
	}
	struct buf o;
	buf_init(&o, SIZE_MAX);
	if (op->search.esearch & IMAP_ES_SAVE) {
		free(cl->saved);
		cl->saved = xmalloc((nh + 1) * sizeof(uint32_t));
		for (size_t i = 0; i < nh; i++)
			cl->saved[i] = cl->uid ? hits[i] : cl->msgs[hits[i] - 1].uid;
		cl->n_saved = nh;
	}
	/* RFC 5267 4.3: the context starts from this result (UIDs, ascending), or an untagged
	 * NO [NOUPDATE] follows the answer. */
	struct buf refused;
	buf_init(&refused, SIZE_MAX);
	if (op->search.esearch & IMAP_ES_UPDATE) {
		uint32_t *uids = hits;
		if (!cl->uid) {
			uids = xmalloc((nh + 1) * sizeof(uint32_t));
			for (size_t i = 0; i < nh; i++)
				uids[i] = cl->msgs[hits[i] - 1].uid;
		}
		struct imap_search keep = op->search;
		imap_context_start(cl, &refused, &op->search, keep.esearch, NULL, 0, uids, nh);
		if (uids != hits)
			free(uids);
		/* What the answer below reads of the program stays: only the tree moved. */
		op->search.esearch = keep.esearch;
		op->search.has_return = keep.has_return;
		op->search.needs_modseq = keep.needs_modseq;
		op->search.partial_lo = keep.partial_lo;
		op->search.partial_hi = keep.partial_hi;
	}
	if (op->search.has_return && (op->search.esearch & IMAP_ES_RESULT) == IMAP_ES_SAVE) {
		/* nothing to answer */
	} else if (op->search.has_return) {
		unsigned e = op->search.esearch;
		buf_printf(&o, "* ESEARCH (TAG \"%s\")%s", cl->tag, cl->uid ? " UID" : "");
		imap_esearch_fmt(&o, e, hits, nh, op->search.partial_lo, op->search.partial_hi);
		/* RFC 4731 3.2: the highest modseq of the messages returned, which are those
		 * of MIN and MAX alone when neither ALL nor COUNT is asked for. */
		if (op->search.needs_modseq && nh > 0 && !(e & (IMAP_ES_ALL | IMAP_ES_COUNT))) {
			maxmod = 0;
			if (e & IMAP_ES_MIN)
				maxmod = hit_modseq(cl, hits[0]);
			if ((e & IMAP_ES_MAX) && hit_modseq(cl, hits[nh - 1]) > maxmod)
				maxmod = hit_modseq(cl, hits[nh - 1]);
			/* PARTIAL returns the messages at its positions */
			for (size_t i = op->search.partial_lo;
			     (e & IMAP_ES_PARTIAL) && i > 0 && i <= nh &&
			     i <= op->search.partial_hi;
			     i++)
				if (hit_modseq(cl, hits[i - 1]) > maxmod)
					maxmod = hit_modseq(cl, hits[i - 1]);
		}
		if (op->search.needs_modseq && nh > 0 && maxmod > 0)
			buf_printf(&o, " MODSEQ %llu", (unsigned long long)maxmod);
	} else {
		buf_append_str(&o, "* SEARCH");
		for (size_t i = 0; i < nh; i++)
			buf_printf(&o, " %u", hits[i]);
		if (op->search.needs_modseq && nh > 0)
			buf_printf(&o, " (MODSEQ %llu)", (unsigned long long)maxmod);
	}
	if (o.len > 0)
		buf_append_str(&o, "\r\n");
	buf_append(&o, refused.data, refused.len);
	buf_free(&refused);
	if (o.len > 0)
		conn_write(cl->c, o.data, o.len);
	buf_free(&o);
	free(hits);
	imap_done(cl, "OK", "SEARCH completed");
}

/* ---- raw headers, one message at a time ---- */

static void raw_next(struct search_op *op);

static void raw_read(void *ctx, int rc, struct store_content *res)
{
	struct search_op *op = ctx;
	if (!imap_async_end(op->cl))
		return;
	if (rc != -ENOENT) /* expunged meanwhile: it matches nothing */
		search_failed(op, rc);
	if (rc == 0 && res->len > 0) {
		const char *d = (const char *)res->data;
		size_t len = res->len;
		const char *end = memmem(d, len, "\r\n\r\n", 4);
		if (end != NULL)
			len = (size_t)(end - d) + 4;
		op->raw[op->raw_next] = xmalloc(len + 1);
		memcpy(op->raw[op->raw_next], d, len);
		op->raw[op->raw_next][len] = '\0';
		op->raw_len[op->raw_next] = len;
	}
	op->raw_next++;
	raw_next(op);
}

static void raw_next(struct search_op *op)
{
	struct imap_client *cl = op->cl;
	while (op->raw_next < op->raw_n) {
		imap_async_begin(cl);
		if (store_content_read(imap_store(cl), cl->mailbox_id, cl->msgs[op->raw_next].uid,
		                       0, HDR_MAX, raw_read, op) == 0)
			return;
		conn_release(cl->c);
		search_failed(op, -EIO);
		op->raw_next++;
	}
	search_finish(op);
}

/* ---- decoded headers, then raw ones, then evaluation ---- */

static void after_text(struct search_op *op)
{
	if (op->search.needs_raw_header && op->cl->n_msgs > 0) {
		op->raw_n = op->cl->n_msgs;
		op->raw = xcalloc(op->raw_n, sizeof(*op->raw));
		op->raw_len = xcalloc(op->raw_n, sizeof(*op->raw_len));
		raw_next(op);
		return;
	}
	search_finish(op);
}

static void text_found(void *ctx, int rc, struct store_uids *res);

struct text_ctx {
	struct search_op *op;
	struct imap_search_key *k;
};

static void text_found(void *ctx, int rc, struct store_uids *res)
{
	struct text_ctx *t = ctx;
	struct search_op *op = t->op;
	struct imap_search_key *k = t->k;
	free(t);
	if (!imap_async_end(op->cl))
		return;
	search_failed(op, rc);
	if (rc == 0 && res->n > 0) {
		k->uids = xmalloc(res->n * sizeof(uint32_t));
		memcpy(k->uids, res->v, res->n * sizeof(uint32_t));
		k->n_uids = res->n;
		qsort(k->uids, k->n_uids, sizeof(uint32_t), cmp_u32);
	}
	if (--op->text_pending == 0)
		after_text(op);
}

static void start_text(struct imap_search_key *k, void *ctx)
{
	struct search_op *op = ctx;
	struct text_ctx *t = xcalloc(1, sizeof(*t));
	t->op = op;
	t->k = k;
	op->text_pending++;
	imap_async_begin(op->cl);
	int (*search)(struct store *, int64_t, const char *, store_uids_cb *, void *) =
	    k->body_only ? store_search_body : store_search_text;
	if (search(imap_store(op->cl), op->cl->mailbox_id, k->str, text_found, t) < 0) {
		conn_release(op->cl->c);
		free(t);
		op->text_pending--;
		search_failed(op, -EIO);
	}
}

static void start_texts(struct search_op *op)
{
	op->text_pending = 1;
	imap_search_each_text(&op->search.root, start_text, op);
	if (--op->text_pending == 0)
		after_text(op);
}

static void headers_got(void *ctx, int rc, struct store_msgs *res)
{
	struct search_op *op = ctx;
	if (!imap_async_end(op->cl))
		return;
	search_failed(op, rc);
	if (rc == 0)
		store_msgs_move(&op->hdrs, res); /* kept, not copied: the fields are read-only */
	start_texts(op);
}

static void search_start(struct imap_client *cl, const struct imap_arg *a, size_t n,
                         imap_search_done_fn *done, void *ext, void (*ext_free)(void *ext),
                         bool update)
{
	struct search_op *op = xcalloc(1, sizeof(*op));
	op->cl = cl;
	op->update = update;
	op->done = done;
	op->ext = ext;
	op->ext_free = ext_free;
	cl->op = op;
	cl->op_free = search_free;
	const char *err = NULL;
	int rc = imap_search_parse(a, n, &op->search, &err);
	if (rc < 0) {
		imap_done(cl, rc == -ENOTSUP ? "NO" : "BAD", err);
		return;
	}
	if (done != NULL && op->search.has_return) {
		imap_done(cl, "BAD", "RETURN options belong to SEARCH");
		return;
	}
	/* RFC 5267 4.3: a tag names one live result. */
	if ((op->search.esearch & IMAP_ES_UPDATE) && imap_context_tag_used(cl)) {
		imap_done(cl, "BAD", "Tag reuse: a result with this tag is kept up to date");
		return;
	}
	op->update |= (op->search.esearch & IMAP_ES_UPDATE) != 0;
	imap_search_set_saved(&op->search.root, cl->saved, cl->n_saved);
	if (!imap_search_seqs_valid(&op->search.root, (uint32_t)cl->n_msgs)) {
		imap_done(cl, "BAD", "Invalid message sequence number");
		return;
	}
	if (op->search.needs_modseq)
		imap_condstore_enable(cl);
	if (op->search.needs_header && cl->n_msgs > 0) {
		imap_async_begin(cl);
		if (store_message_headers(imap_store(cl), cl->mailbox_id, headers_got, op) == 0)
			return;
		conn_release(cl->c);
		search_failed(op, -EIO);
	}
	start_texts(op);
}

void imap_cmd_search(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	search_start(cl, a, n, NULL, NULL, NULL, false);
}

void imap_search_run(struct imap_client *cl, const struct imap_arg *a, size_t n,
                     imap_search_done_fn *done, void *ext, void (*ext_free)(void *ext), bool update)
{
	search_start(cl, a, n, done, ext, ext_free, update);
}
