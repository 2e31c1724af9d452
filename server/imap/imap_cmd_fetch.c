/*
 * FETCH and UID FETCH: items from the snapshot when they can be; ENVELOPE, BODY and
 * BODYSTRUCTURE from the MIME structure delivery stored; sections from the byte ranges
 * that structure gives, read from the store in chunks (never the whole message for a
 * part). A whole-message section alone is streamed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "server/imap/imap_binary.h"
#include "server/imap/imap_fetch_fmt.h"
#include "server/imap/imap_objectid.h"
#include "server/imap/imap_bodystruct.h"
#include "server/imap/imap_private.h"
#include "server/imap/imap_search.h"

#define CHUNK (1024 * 1024)

enum fitem {
	FI_FLAGS,
	FI_UID,
	FI_INTERNALDATE,
	FI_SIZE,
	FI_ENVELOPE,
	FI_BODYSTRUCTURE,
	FI_BODY,
	FI_SECTION, /* BODY[...] / BODY.PEEK[...] / RFC822* */
	FI_MODSEQ,
	FI_META, /* EMAILID, THREADID, SAVEDATE, PREVIEW: read with the structure */
};

/* BINARY (RFC 3516): a section of part numbers only, decoded before it is sent; its
 * <partial> counts decoded bytes, so the range read is the whole part. */
enum fbinary { FB_NONE, FB_BINARY, FB_SIZE };

struct fetch_item {
	enum fitem kind;
	enum imap_meta_item meta;
	struct imap_section sec;
	bool peek;
	const char *rfc822; /* "RFC822", "RFC822.HEADER", "RFC822.TEXT" or NULL */
	enum fbinary binary;
	bool b_partial;
	uint64_t b_off, b_len;
};

struct fetch_op {
	struct imap_client *cl;
	struct fetch_item items[64];
	size_t n_items;
	bool need_content, set_seen;
	/* A store failure other than a message expunged meanwhile (-ENOENT): the messages it
	 * concerned are left out and the FETCH ends in NO instead of OK. */
	int store_rc;
	uint64_t changedsince;
	uint32_t *seqs;
	size_t n_seqs, next;
	/* The message being formatted: its stored structure and, per section item, the bytes
	 * of its range (sec_off/sec_len; sec_rc < 0 when the part does not exist). */
	struct imap_bs bs;
	struct buf sec_data[64];
	uint64_t sec_off[64], sec_len[64];
	int sec_rc[64];
	size_t sec_next; /* the item being read */
	uint32_t *seen_uids;
	size_t n_seen;
	/* Streaming a whole-message section (BODY[], RFC822): the item, the next offset and
	 * the end of the range. Such a FETCH never parses nor holds a message whole. */
	const struct fetch_item *stream_it;
	uint64_t stream_off, stream_end;
	size_t batch_n;     /* messages in the running store_content_read_batch */
	bool batch_content; /* store_message_structures brings whole contents too */
	bool single;        /* the next message does not fit a batch: on its own */
	struct buf *out;    /* emit() appends here instead of writing, when set */
	bool vanished;      /* UID FETCH ... (CHANGEDSINCE n VANISHED), RFC 7162 3.2.6 */
	bool condstore;     /* a CONDSTORE enabling FETCH: MODSEQ or CHANGEDSINCE */
	struct store_uid_range *ranges;
	size_t n_ranges;
	bool unknown_cte; /* a BINARY part's encoding could not be undone: NO [UNKNOWN-CTE] */
	const struct store_msg *meta; /* the message being formatted, for FI_META items */
	struct store_msg meta_own;    /* ...when it is read on its own (store_message_get) */
	/* An unsolicited FETCH (NOTIFY MessageNew): no tagged reply, then(cl) at the end. */
	void (*then)(struct imap_client *cl);
};

static void fetch_op_free(void *p)
{
	struct fetch_op *op = p;
	for (size_t i = 0; i < op->n_items; i++)
		imap_section_free(&op->items[i].sec);
	free(op->seqs);
	free(op->seen_uids);
	free(op->ranges);
	imap_bs_free(&op->bs);
	free(op->meta_own.preview);
	for (size_t i = 0; i < 64; i++)
		buf_free(&op->sec_data[i]);
	free(op);
}

static int add_item(struct fetch_op *op, const struct imap_arg *a)
{
	if (a->type != IMAP_ARG_ATOM || op->n_items == 64)
		return -EINVAL;
	struct fetch_item *it = &op->items[op->n_items];
	memset(it, 0, sizeof(*it));
	static const struct {
		const char *n;
		enum fitem k;
	} simple[] = {{"FLAGS", FI_FLAGS},
	              {"UID", FI_UID},
	              {"INTERNALDATE", FI_INTERNALDATE},
	              {"RFC822.SIZE", FI_SIZE},
	              {"ENVELOPE", FI_ENVELOPE},
	              {"BODYSTRUCTURE", FI_BODYSTRUCTURE},
	              {"BODY", FI_BODY},
	              {"MODSEQ", FI_MODSEQ}};
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
		if (imap_arg_is(a, simple[i].n)) {
			it->kind = simple[i].k;
			if (it->kind == FI_ENVELOPE || it->kind == FI_BODYSTRUCTURE ||
			    it->kind == FI_BODY)
				op->need_content = true;
			op->n_items++;
			return 0;
		}
	static const char *const meta[] = {"EMAILID", "THREADID", "SAVEDATE", "PREVIEW"};
	for (size_t i = 0; i < sizeof(meta) / sizeof(meta[0]); i++)
		if (imap_arg_is(a, meta[i])) {
			it->kind = FI_META;
			it->meta = (enum imap_meta_item)i;
			op->need_content = true;
			op->n_items++;
			return 0;
		}
	static const char *const r822[] = {"RFC822", "RFC822.HEADER", "RFC822.TEXT"};
	static const char *const r822sec[] = {"[]", "[HEADER]", "[TEXT]"};
	for (size_t i = 0; i < 3; i++)
		if (imap_arg_is(a, r822[i])) {
			it->kind = FI_SECTION;
			it->rfc822 = r822[i];
			it->peek = i == 1;
			if (imap_section_parse(r822sec[i], strlen(r822sec[i]), &it->sec) < 0)
				return -EINVAL;
			op->need_content = true;
			op->n_items++;
			return 0;
		}
	size_t skip = 0;
	if (a->len > 10 && strncasecmp(a->s, "BODY.PEEK[", 10) == 0) {
		skip = 9;
		it->peek = true;
	} else if (a->len > 5 && strncasecmp(a->s, "BODY[", 5) == 0) {
		skip = 4;
	} else if (a->len > 12 && strncasecmp(a->s, "BINARY.PEEK[", 12) == 0) {
		skip = 11;
		it->peek = true;
		it->binary = FB_BINARY;
	} else if (a->len > 12 && strncasecmp(a->s, "BINARY.SIZE[", 12) == 0) {
		skip = 11;
		it->peek = true;
		it->binary = FB_SIZE;
	} else if (a->len > 7 && strncasecmp(a->s, "BINARY[", 7) == 0) {
		skip = 6;
		it->binary = FB_BINARY;
	} else {
		return -EINVAL;
	}
	if (imap_section_parse(a->s + skip, a->len - skip, &it->sec) < 0)
		return -EINVAL;
	if (it->binary != FB_NONE) {
		/* section-binary is part numbers only; BINARY.SIZE takes no <partial>. */
		if (it->sec.kind != IMAP_SEC_ALL || (it->binary == FB_SIZE && it->sec.partial)) {
			imap_section_free(&it->sec);
			return -EINVAL;
		}
		it->b_partial = it->sec.partial;
		it->b_off = it->sec.p_off;
		it->b_len = it->sec.p_len;
		it->sec.partial = false;
	}
	it->kind = FI_SECTION;
	op->need_content = true;
	op->n_items++;
	return 0;
}

static int parse_items(struct fetch_op *op, const struct imap_arg *a)
{
	if (imap_arg_is(a, "ALL") || imap_arg_is(a, "FAST") || imap_arg_is(a, "FULL")) {
		const char *names[] = {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"};
		size_t n = imap_arg_is(a, "FAST") ? 3 : imap_arg_is(a, "ALL") ? 4 : 5;
		for (size_t i = 0; i < n; i++) {
			struct imap_arg t = {
			    .type = IMAP_ARG_ATOM, .s = names[i], .len = strlen(names[i])};
			add_item(op, &t);
		}
		return 0;
	}
	if (a->type == IMAP_ARG_LIST) {
		if (a->n == 0)
			return -EINVAL;
		for (size_t i = 0; i < a->n; i++) {
			if (add_item(op, &a->list[i]) < 0)
				return -EINVAL;
			/* RFC 8970 3.1: PREVIEW (LAZY). The preview is always at hand, so LAZY
			 * changes nothing; any other modifier is an error. */
			if (imap_arg_is(&a->list[i], "PREVIEW") && i + 1 < a->n &&
			    a->list[i + 1].type == IMAP_ARG_LIST) {
				const struct imap_arg *mods = &a->list[++i];
				if (mods->n == 0)
					return -EINVAL;
				for (size_t k = 0; k < mods->n; k++)
					if (!imap_arg_is(&mods->list[k], "LAZY"))
						return -EINVAL;
			}
		}
		return 0;
	}
	return add_item(op, a);
}

static void fetch_next(struct fetch_op *op);

/* Replaces the raw bytes of a BINARY item's part with their decoded form. 0 or
 * -EPROTONOSUPPORT. */
static int binary_decode(struct fetch_op *op, const struct fetch_item *it, struct buf *data)
{
	/* BINARY[] is the message as it is: only parts carry a transfer encoding that
	 * applies to what the section returns. */
	if (it->sec.n_path == 0)
		return 0;
	JsonObject *node =
	    op->bs.root != NULL ? imap_bs_find(&op->bs, it->sec.path, it->sec.n_path) : NULL;
	const char *cte = node != NULL ? imap_bs_str(node, "encoding") : NULL;
	struct buf dec;
	buf_init(&dec, SIZE_MAX);
	int rc = imap_binary_decode(cte, data->data != NULL ? data->data : "", data->len, &dec);
	if (rc < 0) {
		buf_free(&dec);
		return rc;
	}
	buf_free(data);
	*data = dec;
	return 0;
}

/* Writes the FETCH response of seq. With stream_it, that item is left out and the
 * response ends in its literal announcement (stream_len bytes follow, then ")"). */
static void emit(struct fetch_op *op, uint32_t seq, const struct fetch_item *stream_it,
                 uint64_t stream_len, const void *data)
{
	struct imap_client *cl = op->cl;
	const struct imap_msg *msg = &cl->msgs[seq - 1];
	/* BINARY items are decoded before anything is written: a part that cannot be leaves
	 * this message out, and the FETCH ends in NO [UNKNOWN-CTE] (RFC 3516 4.3). */
	for (size_t i = 0; i < op->n_items; i++) {
		if (op->items[i].binary == FB_NONE || op->sec_rc[i] < 0)
			continue;
		if (binary_decode(op, &op->items[i], &op->sec_data[i]) < 0) {
			op->unknown_cte = true;
			return;
		}
	}
	struct buf o;
	buf_init(&o, SIZE_MAX);
	buf_printf(&o, "* %u FETCH (", seq);
	bool sp = false, had_uid = false, had_flags = false, had_modseq = false;
	bool mark_seen = false;
	for (size_t i = 0; i < op->n_items; i++)
		if (op->items[i].kind == FI_SECTION && !op->items[i].peek && !cl->readonly &&
		    !(msg->flags & STORE_SEEN))
			mark_seen = true;
	if (mark_seen) {
		imap_snapshot_mut(cl, seq)->flags |= STORE_SEEN;
		msg = &cl->msgs[seq - 1];
		op->seen_uids = xreallocarray(op->seen_uids, op->n_seen + 1, sizeof(uint32_t));
		op->seen_uids[op->n_seen++] = msg->uid;
	}
	for (size_t i = 0; i < op->n_items; i++) {
		const struct fetch_item *it = &op->items[i];
		if (it == stream_it)
			continue;
		if (sp)
			buf_append(&o, " ", 1);
		sp = true;
		switch (it->kind) {
		case FI_FLAGS:
			buf_append_str(&o, "FLAGS ");
			imap_fmt_flags(&o, msg->flags, msg->keywords, imap_recent_is(cl, msg->uid));
			had_flags = true;
			break;
		case FI_UID:
			buf_printf(&o, "UID %u", msg->uid);
			had_uid = true;
			break;
		case FI_INTERNALDATE:
			buf_append_str(&o, "INTERNALDATE ");
			imap_fmt_date(&o, msg->internal_date);
			break;
		case FI_SIZE:
			buf_printf(&o, "RFC822.SIZE %llu", (unsigned long long)msg->size);
			break;
		case FI_MODSEQ:
			buf_printf(&o, "MODSEQ (%llu)", (unsigned long long)msg->modseq);
			had_modseq = true;
			break;
		case FI_META:
			imap_fmt_meta(&o, it->meta, op->meta, cl->utf8);
			break;
		case FI_ENVELOPE:
			buf_append_str(&o, "ENVELOPE ");
			imap_fmt_envelope(&o, op->bs.root, cl->utf8);
			break;
		case FI_BODYSTRUCTURE:
		case FI_BODY:
			buf_append_str(&o, it->kind == FI_BODY ? "BODY " : "BODYSTRUCTURE ");
			imap_fmt_bodystructure(&o, op->bs.root, it->kind == FI_BODYSTRUCTURE,
			                       cl->utf8);
			break;
		case FI_SECTION: {
			if (it->binary != FB_NONE) {
				imap_fmt_binary(&o, it->sec.spec, it->binary == FB_SIZE,
				                it->b_partial, it->b_off, it->b_len,
				                op->sec_rc[i] == 0 ? &op->sec_data[i] : NULL);
				break;
			}
			if (it->rfc822 != NULL)
				buf_printf(&o, "%s ", it->rfc822);
			else if (it->sec.partial)
				buf_printf(&o, "BODY[%s]<%llu> ", it->sec.spec,
				           (unsigned long long)it->sec.p_off);
			else
				buf_printf(&o, "BODY[%s] ", it->sec.spec);
			struct buf part;
			buf_init(&part, SIZE_MAX);
			if (op->sec_rc[i] == 0)
				imap_section_finish(&it->sec, op->sec_data[i].data,
				                    op->sec_data[i].len, &part);
			if (part.len == 0) {
				buf_append_str(&o, "\"\"");
			} else {
				buf_printf(&o, "{%zu}\r\n", part.len);
				buf_append(&o, part.data, part.len);
			}
			buf_free(&part);
			break;
		}
		}
	}
	/* RFC 7162 3.1: a FETCH that sets \Seen shows UID and MODSEQ once CONDSTORE is on. */
	if ((cl->uid || (cl->condstore && mark_seen)) && !had_uid)
		buf_printf(&o, "%sUID %u", sp ? " " : "", msg->uid), sp = true;
	if (mark_seen && !had_flags) {
		buf_append_str(&o, sp ? " FLAGS " : "FLAGS ");
		imap_fmt_flags(&o, msg->flags, msg->keywords, imap_recent_is(cl, msg->uid));
	}
	if ((op->changedsince > 0 || (cl->condstore && mark_seen)) && !had_modseq)
		buf_printf(&o, " MODSEQ (%llu)", (unsigned long long)msg->modseq);
	if (stream_it != NULL) {
		if (sp)
			buf_append(&o, " ", 1);
		if (stream_it->rfc822 != NULL)
			buf_printf(&o, "%s ", stream_it->rfc822);
		else if (stream_it->sec.partial)
			buf_printf(&o, "BODY[]<%llu> ", (unsigned long long)stream_it->sec.p_off);
		else
			buf_append_str(&o, "BODY[] ");
		buf_printf(&o, "{%llu}\r\n", (unsigned long long)stream_len);
		if (data != NULL) { /* all of it at hand: one write */
			buf_append(&o, data, (size_t)stream_len);
			buf_append_str(&o, ")\r\n");
		}
	} else {
		buf_append_str(&o, ")\r\n");
	}
	if (op->out != NULL)
		buf_append(op->out, o.data, o.len);
	else
		conn_write(cl->c, o.data, o.len);
	buf_free(&o);
}

/* Notes a store failure (an expunged message, -ENOENT, is no failure: it is skipped). */
static void fetch_failed(struct fetch_op *op, int rc)
{
	if (rc < 0 && rc != -ENOENT && op->store_rc == 0) {
		op->store_rc = rc;
		log_event(LOGL_ERROR, "session=%s event=store_error op=fetch errno=%d",
		          conn_id(op->cl->c), -rc);
	}
}

/* Forgets the message just formatted and goes on with the next. */
static void message_done(struct fetch_op *op)
{
	for (size_t i = 0; i < op->n_items; i++)
		buf_free(&op->sec_data[i]);
	op->next++;
	fetch_next(op);
}

static void section_read(struct fetch_op *op);

static void section_got(void *ctx, int rc, struct store_content *res)
{
	struct fetch_op *op = ctx;
	if (!imap_async_end(op->cl))
		return;
	if (rc < 0) {
		fetch_failed(op, rc);
		message_done(op); /* expunged meanwhile: skipped */
		return;
	}
	size_t i = op->sec_next;
	buf_append(&op->sec_data[i], res->data, res->len);
	if (res->len == 0) /* shorter than its structure says: what there is */
		op->sec_len[i] = op->sec_data[i].len;
	section_read(op);
}

/* Reads the byte ranges of the section items one after the other, then formats. */
static void section_read(struct fetch_op *op)
{
	struct imap_client *cl = op->cl;
	uint32_t seq = op->seqs[op->next];
	for (; op->sec_next < op->n_items; op->sec_next++) {
		size_t i = op->sec_next;
		if (op->items[i].kind != FI_SECTION || op->sec_rc[i] < 0 ||
		    op->sec_data[i].len >= op->sec_len[i])
			continue;
		uint64_t left = op->sec_len[i] - op->sec_data[i].len;
		imap_async_begin(cl);
		if (store_content_read(imap_store(cl), cl->mailbox_id, cl->msgs[seq - 1].uid,
		                       op->sec_off[i] + op->sec_data[i].len,
		                       left < CHUNK ? (size_t)left : CHUNK, section_got, op) == 0)
			return;
		conn_release(cl->c);
		op->sec_rc[i] = -EIO;
		fetch_failed(op, -EIO);
	}
	emit(op, seq, NULL, 0, NULL);
	message_done(op);
}

/* The stored structure of the message is here: find the ranges its sections need. */
static void structure_got(void *ctx, int rc, struct store_msgs *res)
{
	struct fetch_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0 || res->n == 0) {
		fetch_failed(op, rc);
		message_done(op); /* expunged meanwhile: skipped */
		return;
	}
	const char *json = res->v[0].mime_json;
	/* A structure this version cannot read leaves ENVELOPE and BODYSTRUCTURE empty and
	 * parts missing; the schema migration rewrites older ones. */
	imap_bs_parse(&op->bs, json, json != NULL ? strlen(json) : 0);
	uint64_t size = cl->msgs[op->seqs[op->next] - 1].size;
	for (size_t i = 0; i < op->n_items; i++) {
		buf_init(&op->sec_data[i], SIZE_MAX);
		if (op->items[i].kind == FI_SECTION)
			op->sec_rc[i] = imap_section_range(&op->bs, &op->items[i].sec, size,
			                                   &op->sec_off[i], &op->sec_len[i]);
	}
	op->sec_next = 0;
	/* Kept: section reads come before the message is formatted, and res goes now. */
	free(op->meta_own.preview);
	op->meta_own.email_id = res->v[0].email_id;
	op->meta_own.thread_id = res->v[0].thread_id;
	op->meta_own.save_date = res->v[0].save_date;
	op->meta_own.preview = res->v[0].preview;
	res->v[0].preview = NULL;
	op->meta = &op->meta_own;
	section_read(op);
}

/* Formats one message of a structures batch: data is its whole content, or NULL when no
 * section needs bytes. Writes to op->out. */
static void batch_format(struct fetch_op *op, uint32_t seq, const struct store_msg *m,
                         const char *data)
{
	const char *json = m->mime_json;
	imap_bs_parse(&op->bs, json, json != NULL ? strlen(json) : 0);
	for (size_t i = 0; i < op->n_items; i++) {
		buf_init(&op->sec_data[i], SIZE_MAX);
		if (op->items[i].kind != FI_SECTION)
			continue;
		op->sec_rc[i] = imap_section_range(&op->bs, &op->items[i].sec, m->size,
		                                   &op->sec_off[i], &op->sec_len[i]);
		if (op->sec_rc[i] == 0 && data != NULL)
			buf_append(&op->sec_data[i], data + op->sec_off[i], (size_t)op->sec_len[i]);
	}
	op->meta = m;
	emit(op, seq, NULL, 0, NULL);
	op->meta = NULL;
	for (size_t i = 0; i < op->n_items; i++)
		buf_free(&op->sec_data[i]);
}

/* The part of a whole message a (partial) section asks for: [*off_r, *end_r). */
static void section_range(const struct fetch_item *it, uint64_t size, uint64_t *off_r,
                          uint64_t *end_r)
{
	uint64_t off = 0, end = size;
	if (it->sec.partial) {
		off = it->sec.p_off < size ? it->sec.p_off : size;
		end = it->sec.p_len < size - off ? off + it->sec.p_len : size;
	}
	*off_r = off;
	*end_r = end;
}

/* One message of a batch read: data is its whole content, or NULL when none was read. */
static void batch_one(struct fetch_op *op, uint32_t seq, const struct store_msg *m,
                      const char *data)
{
	if (op->stream_it == NULL) {
		batch_format(op, seq, m, data);
		return;
	}
	uint64_t off, end;
	section_range(op->stream_it, m->size, &off, &end);
	emit(op, seq, op->stream_it, end - off, end > off ? data + off : "");
}

/* A batch read (structures, or whole contents of small messages) is here: formats what
 * came, in order; what did not fit goes in the next batch. */
static void batch_got(void *ctx, int rc, struct store_batch *res)
{
	struct fetch_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	size_t n = op->batch_n, done = 0;
	if (rc == 0) {
		struct buf o;
		buf_init(&o, SIZE_MAX);
		op->out = &o;
		size_t j = 0, data_off = 0;
		for (size_t k = 0; k < n && j < res->n; k++) {
			uint32_t seq = op->seqs[op->next + k];
			done = k + 1;
			if (res->v[j].uid != cl->msgs[seq - 1].uid)
				continue; /* expunged meanwhile: skipped */
			batch_one(op, seq, &res->v[j],
			          op->batch_content ? (const char *)res->data + data_off : NULL);
			if (op->batch_content)
				data_off += (size_t)res->v[j].size;
			j++;
		}
		op->out = NULL;
		conn_write(cl->c, o.data, o.len);
		buf_free(&o);
		if (done == 0 && op->stream_it == NULL)
			op->single = true; /* its structure and content together are too big */
	}
	fetch_failed(op, rc);
	/* A failed read skips the batch; so does a content batch that brought nothing (its
	 * messages were chosen to fit, so they are gone). */
	op->next += rc < 0 || (done == 0 && op->stream_it != NULL) ? n : done;
	fetch_next(op);
}

/* The structures of messages from op->next in one store read, with their contents when a
 * section needs bytes and they are small; 0 when started, -E2BIG when the next message
 * is too big for that (it goes on its own, reading only its ranges). */
static int structs_start(struct fetch_op *op)
{
	struct imap_client *cl = op->cl;
	bool bytes = false;
	for (size_t i = 0; i < op->n_items; i++)
		bytes = bytes || op->items[i].kind == FI_SECTION;
	uint32_t uids[512];
	size_t n = 0;
	uint64_t total = 0;
	while (op->next + n < op->n_seqs && n < 512) {
		const struct imap_msg *m = &cl->msgs[op->seqs[op->next + n] - 1];
		/* Half the read for contents: the structures take the rest. */
		if (bytes && m->size > CHUNK / 2 - total)
			break;
		uids[n++] = m->uid;
		total += bytes ? m->size : 0;
	}
	if (n == 0)
		return -E2BIG;
	op->batch_n = n;
	op->batch_content = bytes;
	imap_async_begin(cl);
	if (store_message_structures(imap_store(cl), cl->mailbox_id, uids, n, CHUNK, bytes,
	                             batch_got, op) == 0)
		return 0;
	conn_release(cl->c);
	fetch_failed(op, -EIO);
	op->next += n;
	return -EIO;
}

/* The tagged answer: NO when the store failed for some message (RFC 3501 6.4.5: the data
 * could not be fetched; the client may try again), else OK. */
static void fetch_finish(struct fetch_op *op)
{
	if (op->then != NULL) {
		struct imap_client *cl = op->cl;
		void (*then)(struct imap_client *) = op->then;
		cl->op = NULL;
		cl->op_free = NULL;
		fetch_op_free(op);
		then(cl);
		return;
	}
	if (op->unknown_cte)
		imap_done(op->cl, "NO",
		          "[UNKNOWN-CTE] A part's Content-Transfer-Encoding cannot be decoded");
	else if (op->store_rc < 0)
		imap_done(op->cl, "NO", "[SERVERBUG] Some messages could not be read, try again");
	else
		imap_done(op->cl, "OK", "FETCH completed");
}

static void seen_stored(void *ctx, int rc, struct store_flags_changed *res)
{
	struct fetch_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	/* Keep our snapshot's modseqs in step so the change is not shown again. */
	for (size_t i = 0; rc == 0 && i < res->n; i++) {
		uint32_t s = imap_seq_of(cl, res->v[i].uid);
		if (s > 0)
			imap_snapshot_mut(cl, s)->modseq = res->v[i].modseq;
	}
	fetch_failed(op, rc);
	fetch_finish(op);
}

/*
 * The one item that needs content is the whole message (BODY[], BODY.PEEK[], RFC822,
 * with or without <partial>): it can go out in store_content_read ranges as they come,
 * never parsed nor held whole. Returns that item, or NULL.
 */
static const struct fetch_item *stream_item(const struct fetch_op *op)
{
	const struct fetch_item *found = NULL;
	for (size_t i = 0; i < op->n_items; i++) {
		const struct fetch_item *it = &op->items[i];
		if (it->kind == FI_ENVELOPE || it->kind == FI_BODYSTRUCTURE ||
		    it->kind == FI_BODY || it->kind == FI_META)
			return NULL;
		if (it->kind != FI_SECTION)
			continue;
		if (found != NULL || it->binary != FB_NONE || it->sec.kind != IMAP_SEC_ALL ||
		    it->sec.n_path != 0)
			return NULL;
		found = it;
	}
	return found;
}

static void stream_read(void *ctx, int rc, struct store_content *res);

/* The next range of a streamed message, once the client has taken the one before. */
static void stream_more(void *ctx)
{
	struct fetch_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (imap_wait_drain(cl, stream_more, op))
		return;
	uint32_t seq = op->seqs[op->next];
	size_t want = op->stream_end - op->stream_off < CHUNK
	                  ? (size_t)(op->stream_end - op->stream_off)
	                  : CHUNK;
	imap_async_begin(cl);
	if (store_content_read(imap_store(cl), cl->mailbox_id, cl->msgs[seq - 1].uid,
	                       op->stream_off, want, stream_read, op) == 0)
		return;
	conn_release(cl->c);
	conn_close(cl->c, "fetch stream failed");
}

static void stream_read(void *ctx, int rc, struct store_content *res)
{
	struct fetch_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0 || res->len == 0) {
		/* Expunged or shrunk under us: the literal was announced, so its length is
		 * owed; nothing sane can follow. */
		conn_write_str(cl->c, "\r\n* BYE [SERVERBUG] Message vanished while sent\r\n");
		conn_close(cl->c, "fetch stream failed");
		return;
	}
	size_t n = res->len;
	if (n > op->stream_end - op->stream_off)
		n = (size_t)(op->stream_end - op->stream_off);
	conn_write(cl->c, res->data, n);
	op->stream_off += n;
	if (op->stream_off < op->stream_end) {
		stream_more(op);
		return;
	}
	conn_write_str(cl->c, ")\r\n");
	op->next++;
	fetch_next(op);
}

static void stream_small(void *ctx, int rc, struct store_content *res)
{
	struct fetch_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	uint32_t seq = op->seqs[op->next];
	fetch_failed(op, rc);
	if (rc == 0) {
		/* A message that shrank (cannot happen: content is immutable) is sent as it is. */
		uint64_t n = res->len < op->stream_end - op->stream_off
		                 ? res->len
		                 : op->stream_end - op->stream_off;
		emit(op, seq, op->stream_it, n, res->data);
	}
	op->next++; /* rc < 0: expunged meanwhile, skipped */
	fetch_next(op);
}

/* Up to a megabyte of small messages from op->next in one store read. 0 when started. */
static int batch_start(struct fetch_op *op)
{
	struct imap_client *cl = op->cl;
	uint32_t uids[512];
	size_t n = 0;
	uint64_t total = 0;
	while (op->next + n < op->n_seqs && n < 512) {
		const struct imap_msg *m = &cl->msgs[op->seqs[op->next + n] - 1];
		if (m->size > CHUNK - total)
			break;
		uids[n] = m->uid;
		n++;
		total += m->size;
	}
	if (n == 0)
		return -E2BIG;
	op->batch_n = n;
	op->batch_content = true;
	imap_async_begin(cl);
	if (store_content_read_batch(imap_store(cl), cl->mailbox_id, uids, n, CHUNK, batch_got,
	                             op) == 0)
		return 0;
	conn_release(cl->c);
	fetch_failed(op, -EIO);
	op->next += n;
	return -EIO;
}

static void stream_start(struct fetch_op *op, uint32_t seq)
{
	struct imap_client *cl = op->cl;
	const struct fetch_item *it = op->stream_it;
	uint64_t size = cl->msgs[seq - 1].size;
	uint64_t off = 0, end = size;
	if (it->sec.partial) {
		off = it->sec.p_off < size ? it->sec.p_off : size;
		end = it->sec.p_len < size - off ? off + it->sec.p_len : size;
	}
	op->stream_off = off;
	op->stream_end = end;
	if (off < end && end - off <= CHUNK) {
		/* Small: one read, one write, as the parsed path would but without parsing. */
		imap_async_begin(cl);
		if (store_content_read(imap_store(cl), cl->mailbox_id, cl->msgs[seq - 1].uid, off,
		                       (size_t)(end - off), stream_small, op) == 0)
			return;
		conn_release(cl->c);
		op->next++;
		fetch_next(op);
		return;
	}
	emit(op, seq, it, end - off, NULL);
	if (off == end) {
		conn_write_str(cl->c, ")\r\n");
		op->next++;
		fetch_next(op);
		return;
	}
	stream_more(op);
}

static void fetch_drained(void *ctx)
{
	fetch_next(ctx);
}

static void fetch_next(struct fetch_op *op)
{
	struct imap_client *cl = op->cl;
	while (op->next < op->n_seqs) {
		/* Nothing more is read or formatted while the client has not taken what was
		 * written: a client that does not read holds at most about one chunk. */
		if (imap_wait_drain(cl, fetch_drained, op))
			return;
		uint32_t seq = op->seqs[op->next];
		if (op->stream_it != NULL) {
			int rc = batch_start(op);
			if (rc == 0)
				return;
			if (rc == -EIO)
				continue;
			stream_start(op, seq); /* over a megabyte: in ranges */
			return;
		}
		if (!op->need_content) {
			emit(op, seq, NULL, 0, NULL);
			op->next++;
			continue;
		}
		if (!op->single) {
			int rc = structs_start(op);
			if (rc == 0)
				return;
			if (rc == -EIO)
				continue;
		}
		op->single = false;
		imap_async_begin(cl);
		if (store_message_get(imap_store(cl), cl->mailbox_id, cl->msgs[seq - 1].uid,
		                      structure_got, op) == 0)
			return;
		conn_release(cl->c);
		fetch_failed(op, -EIO);
		op->next++;
	}
	if (op->n_seen > 0) {
		struct store_uid_range *r = xcalloc(op->n_seen, sizeof(*r));
		for (size_t i = 0; i < op->n_seen; i++)
			r[i] = (struct store_uid_range){op->seen_uids[i], op->seen_uids[i]};
		imap_async_begin(cl);
		int rc = store_flags_store(imap_store(cl), cl->mailbox_id, r, op->n_seen,
		                           STORE_FLAGS_ADD, STORE_SEEN, NULL, 0, seen_stored, op);
		free(r);
		if (rc == 0)
			return;
		conn_release(cl->c);
		fetch_failed(op, rc);
	}
	fetch_finish(op);
}

static void vanished_got(void *ctx, int rc, struct store_uids *res)
{
	struct fetch_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	uint32_t *v = xcalloc(res->n + 1, sizeof(*v));
	size_t nv = 0;
	for (size_t i = 0; rc == 0 && i < res->n; i++)
		for (size_t k = 0; k < op->n_ranges; k++)
			if (res->v[i] >= op->ranges[k].first && res->v[i] <= op->ranges[k].last) {
				v[nv++] = res->v[i];
				break;
			}
	if (nv > 0) {
		struct buf o;
		buf_init(&o, SIZE_MAX);
		buf_append_str(&o, "* VANISHED (EARLIER) ");
		buf_append_uidset(&o, v, nv);
		buf_append_str(&o, "\r\n");
		conn_write(cl->c, o.data, o.len);
		buf_free(&o);
	}
	free(v);
	fetch_next(op);
}

/* The access audit of a FETCH that sends content (a body section, RFC822*, BINARY,
 * ENVELOPE, BODY[STRUCTURE] or PREVIEW): the messages it will send and the items asked,
 * before anything is sent. Flags, sizes and dates alone are not content. */
static bool fetch_audit(struct fetch_op *op, const char *items)
{
	if (!op->need_content || op->n_seqs == 0)
		return true;
	return imap_audit_seqs(op->cl, "fetch", op->seqs, op->n_seqs, items);
}

/* Parses items, the text of a fetch-att list ("(UID BODY.PEEK[HEADER])"), into op. */
static int parse_items_text(struct fetch_op *op, const char *items)
{
	char *copy = xstrdup(items);
	struct imap_args a = {0};
	const char *err;
	int rc = imap_parse(copy, strlen(copy), &a, &err);
	if (rc == 0)
		rc = a.n == 1 && a.v[0].type == IMAP_ARG_LIST ? parse_items(op, &a.v[0]) : -EINVAL;
	imap_args_free(&a);
	free(copy);
	return rc;
}

int imap_fetch_items_check(const char *items)
{
	struct fetch_op *op = xcalloc(1, sizeof(*op));
	int rc = parse_items_text(op, items);
	fetch_op_free(op);
	return rc;
}

void imap_fetch_unsolicited(struct imap_client *cl, const char *items, const uint32_t *seqs,
                            size_t n, void (*then)(struct imap_client *cl))
{
	struct fetch_op *op = xcalloc(1, sizeof(*op));
	op->cl = cl;
	op->then = then;
	if (n == 0 || parse_items_text(op, items) < 0) {
		fetch_op_free(op);
		then(cl);
		return;
	}
	/* RFC 5465 5.1: a notification never sets \Seen, whatever the client asked for. */
	for (size_t i = 0; i < op->n_items; i++)
		op->items[i].peek = true;
	op->seqs = xcalloc(n, sizeof(*op->seqs));
	memcpy(op->seqs, seqs, n * sizeof(*seqs));
	op->n_seqs = n;
	op->stream_it = stream_item(op);
	cl->op = op;
	cl->op_free = fetch_op_free;
	if (!fetch_audit(op, items))
		return;
	fetch_next(op);
}

void imap_cmd_fetch(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	if (n < 2) {
		imap_done(cl, "BAD", "FETCH needs a set and items");
		return;
	}
	struct fetch_op *op = xcalloc(1, sizeof(*op));
	op->cl = cl;
	cl->op = op;
	cl->op_free = fetch_op_free;
	if (parse_items(op, &a[1]) < 0) {
		imap_done(cl, "BAD", "Invalid FETCH items");
		return;
	}
	if (n >= 3 && a[2].type == IMAP_ARG_LIST) {
		for (size_t i = 0; i + 1 < a[2].n; i++)
			if (imap_arg_is(&a[2].list[i], "CHANGEDSINCE")) {
				const struct imap_arg *v = &a[2].list[i + 1];
				char *s = imap_arg_dup(v);
				char *end = NULL;
				op->changedsince = s != NULL ? strtoull(s, &end, 10) : 0;
				free(s);
				op->condstore = true;
			}
		for (size_t i = 0; i < a[2].n; i++)
			if (imap_arg_is(&a[2].list[i], "VANISHED"))
				op->vanished = true;
	}
	if (op->vanished && (!cl->uid || !cl->qresync || op->changedsince == 0)) {
		imap_done(cl, "BAD", "VANISHED needs UID FETCH, QRESYNC and CHANGEDSINCE");
		return;
	}
	for (size_t i = 0; i < op->n_items; i++)
		if (op->items[i].kind == FI_MODSEQ)
			op->condstore = true;
	/* MODSEQ and CHANGEDSINCE enable CONDSTORE (RFC 7162 3.1), before any FETCH. */
	if (op->condstore)
		imap_condstore_enable(cl);
	struct store_uid_range *r;
	size_t nr;
	int rc = imap_set_to_ranges(cl, &a[0], cl->uid, &r, &nr);
	if (rc < 0) {
		imap_done(cl, rc == -ERANGE ? "BAD" : "BAD",
		          rc == -ERANGE ? "Invalid message sequence number"
		                        : "Invalid sequence set");
		return;
	}
	op->seqs = xcalloc(cl->n_msgs + 1, sizeof(*op->seqs));
	for (size_t s = 0; s < cl->n_msgs; s++) {
		uint32_t u = cl->msgs[s].uid;
		bool in = false;
		for (size_t k = 0; k < nr && !in; k++)
			in = u >= r[k].first && u <= r[k].last;
		if (in && (op->changedsince == 0 || cl->msgs[s].modseq > op->changedsince))
			op->seqs[op->n_seqs++] = (uint32_t)s + 1;
	}
	op->ranges = r;
	op->n_ranges = nr;
	op->stream_it = stream_item(op);
	struct buf items;
	buf_init(&items, 4096);
	imap_audit_args(&items, &a[1], 1);
	bool audited = fetch_audit(op, items.data != NULL ? items.data : "");
	buf_free(&items);
	if (!audited)
		return;
	if (op->vanished) {
		imap_async_begin(cl);
		if (store_vanished(imap_store(cl), cl->mailbox_id, op->changedsince, vanished_got,
		                   op) == 0)
			return;
		conn_release(cl->c);
	}
	fetch_next(op);
}
