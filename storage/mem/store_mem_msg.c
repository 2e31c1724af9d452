/*
 * The in-memory backend's messages: delivery (with quota, the relay queue and the failure
 * report), listing and reading, flags, expunge, copy and move, VANISHED, SEARCH TEXT as a
 * case-insensitive substring. The relay queue is in store_mem_queue.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "storage/mem/store_mem_private.h"
#include "storage/store_spool.h"

/* ---- Contents and entries ---- */

struct mem_content *mem_content_get(struct mem_store *m, const void *data, size_t size)
{
	for (size_t i = 0; i < m->n_contents; i++) {
		struct mem_content *c = m->contents[i];
		if (c->size == size && memcmp(c->data, data, size) == 0) {
			c->refs++;
			return c;
		}
	}
	struct mem_content *c = xcalloc(1, sizeof(*c));
	c->id = ++m->next_id;
	c->refs = 1;
	c->data = xmalloc(size + 1);
	memcpy(c->data, data, size);
	c->size = size;
	m->contents = xreallocarray(m->contents, m->n_contents + 1, sizeof(*m->contents));
	m->contents[m->n_contents++] = c;
	return c;
}

struct mem_content *mem_content_by_id(struct mem_store *m, int64_t id)
{
	for (size_t i = 0; i < m->n_contents; i++)
		if (m->contents[i]->id == id)
			return m->contents[i];
	return NULL;
}

void mem_content_unref(struct mem_store *m, struct mem_content *c)
{
	if (c == NULL || --c->refs > 0)
		return;
	for (size_t i = 0; i < m->n_contents; i++) {
		if (m->contents[i] == c) {
			m->contents[i] = m->contents[--m->n_contents];
			break;
		}
	}
	free(c->data);
	free(c);
}

void mem_entry_clear(struct mem_store *m, struct mem_entry *e)
{
	mem_content_unref(m, e->content);
	free(e->keywords);
	memset(e, 0, sizeof(*e));
}

int mem_entry_add(struct mem_store *m, struct mem_mailbox *mb, struct mem_content *c,
                  unsigned flags, const char *keywords, int64_t internal_date,
                  const struct mem_entry *from, uint32_t *uid_r)
{
	if (mb->uidnext >= UINT32_MAX)
		return -EFBIG;
	/* Read before entries grow: from may be one of them. */
	uint64_t email_id = from != NULL ? from->email_id : mem_random64();
	uint64_t thread_id = from != NULL ? from->thread_id : mem_thread_assign(m, mb->user_id, c);
	mb->entries = xreallocarray(mb->entries, mb->n_entries + 1, sizeof(*mb->entries));
	struct mem_entry *e = &mb->entries[mb->n_entries++];
	e->uid = mb->uidnext++;
	e->modseq = ++mb->highest_modseq;
	e->flags = flags;
	e->keywords = xstrdup(keywords != NULL ? keywords : "");
	e->internal_date = internal_date;
	e->content = c;
	e->email_id = email_id;
	e->thread_id = thread_id;
	e->save_date = (int64_t)time(NULL);
	c->refs++;
	if (uid_r != NULL)
		*uid_r = e->uid;
	return 0;
}

static struct mem_entry *entry_by_uid(struct mem_mailbox *mb, uint32_t uid)
{
	for (size_t i = 0; i < mb->n_entries; i++)
		if (mb->entries[i].uid == uid)
			return &mb->entries[i];
	return NULL;
}

static void entry_remove(struct mem_store *m, struct mem_mailbox *mb, size_t i, uint64_t modseq)
{
	mb->expunged = xreallocarray(mb->expunged, mb->n_expunged + 1, sizeof(*mb->expunged));
	mb->expunged[mb->n_expunged++] = (struct mem_expunged){mb->entries[i].uid, modseq};
	mem_entry_clear(m, &mb->entries[i]);
	memmove(&mb->entries[i], &mb->entries[i + 1],
	        (mb->n_entries - i - 1) * sizeof(*mb->entries));
	mb->n_entries--;
}

static void uids_push(uint32_t **uids, size_t *n, uint32_t uid)
{
	*uids = xreallocarray(*uids, *n + 1, sizeof(**uids));
	(*uids)[(*n)++] = uid;
}

void mem_entries_move_all(struct mem_store *m, struct mem_mailbox *src, struct mem_mailbox *dst)
{
	if (src->n_entries == 0)
		return;
	uint64_t modseq = ++src->highest_modseq;
	while (src->n_entries > 0) {
		struct mem_entry *e = &src->entries[0];
		mem_entry_add(m, dst, e->content, e->flags, e->keywords, e->internal_date, e, NULL);
		entry_remove(m, src, 0, modseq);
	}
	mem_note(m, src);
	mem_note(m, dst);
}

static bool in_ranges(uint32_t uid, const struct store_uid_range *r, size_t n)
{
	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++)
		if (uid >= r[i].first && uid <= r[i].last)
			return true;
	return false;
}

static void msg_fill(const struct mem_entry *e, struct store_msg *out)
{
	memset(out, 0, sizeof(*out));
	out->uid = e->uid;
	out->modseq = e->modseq;
	out->flags = e->flags;
	out->keywords = xstrdup(e->keywords);
	out->internal_date = e->internal_date;
	out->size = e->content->size;
	out->content_id = e->content->id;
	out->email_id = e->email_id;
	out->thread_id = e->thread_id;
	out->save_date = e->save_date;
}

static struct store_msg *msg_push(struct store_backend_result *res)
{
	res->msgs = xreallocarray(res->msgs, res->n_msgs + 1, sizeof(*res->msgs));
	return &res->msgs[res->n_msgs++];
}

/* ---- Delivery ---- */

static int spool_load(const char *path, bool sealed, uint64_t max, unsigned char **data_r,
                      size_t *size_r)
{
	struct store_spool_reader *r;
	uint64_t size;
	int rc = store_spool_open(path, sealed, &r, &size);
	if (rc < 0)
		return rc;
	if (size > max) {
		rc = -EFBIG;
	} else {
		unsigned char *buf = xmalloc((size_t)size + 1);
		size_t got = 0;
		while (got < (size_t)size) {
			ssize_t n = store_spool_pread(r, buf + got, (size_t)size - got, got);
			if (n <= 0) {
				rc = n < 0 ? (int)n : -EIO;
				break;
			}
			got += (size_t)n;
		}
		if (rc < 0) {
			free(buf);
		} else {
			*data_r = buf;
			*size_r = got;
		}
	}
	store_spool_close(r);
	return rc;
}

static struct mem_mailbox *target_mailbox(struct mem_store *m, const struct store_target *t)
{
	struct mem_mailbox *mb = t->mailbox_id == 0 ? mem_mailbox_by_name(m, t->user_id, "INBOX")
	                                            : mem_mailbox_by_id(m, t->mailbox_id);
	if (mb == NULL || (t->user_id != 0 && mb->user_id != t->user_id))
		return NULL;
	return mb;
}

static int64_t queue_add(struct mem_store *m, struct mem_content *c, const char *sender,
                         const struct store_relay_rcpt *relay, size_t n_relay, bool requiretls,
                         const char *ret, const char *envid)
{
	m->queue = xreallocarray(m->queue, m->n_queue + 1, sizeof(*m->queue));
	struct mem_queued *q = &m->queue[m->n_queue++];
	memset(q, 0, sizeof(*q));
	q->id = ++m->next_id;
	q->content = c;
	c->refs++;
	q->sender = xstrdup(sender != NULL ? sender : "");
	q->ret = ret != NULL ? xstrdup(ret) : NULL;
	q->envid = envid != NULL ? xstrdup(envid) : NULL;
	q->requiretls = requiretls;
	q->created = (int64_t)time(NULL);
	q->rcpts = xcalloc(n_relay, sizeof(*q->rcpts));
	q->n_rcpts = n_relay;
	for (size_t i = 0; i < n_relay; i++) {
		q->rcpts[i].id = ++m->next_id;
		q->rcpts[i].address = xstrdup(relay[i].address);
		q->rcpts[i].notify = relay[i].notify != NULL ? xstrdup(relay[i].notify) : NULL;
		q->rcpts[i].orcpt = relay[i].orcpt != NULL ? xstrdup(relay[i].orcpt) : NULL;
		q->rcpts[i].next_attempt = q->created;
	}
	return q->id;
}

/* A report or DSN: into the INBOX of a local user, else onto the queue with the null
 * sender. 0, or -ENOENT / -EDQUOT when it has nowhere to go. */
int mem_report_place(struct mem_store *m, const void *msg, size_t len, const char *to, bool local,
                     bool requiretls, int64_t *queue_id_r)
{
	struct mem_content *c = mem_content_get(m, msg, len);
	int rc = 0;
	if (local) {
		struct mem_user *u = mem_user_by_address(m, to);
		struct mem_mailbox *mb = u != NULL ? mem_mailbox_by_name(m, u->id, "INBOX") : NULL;
		if (mb == NULL)
			rc = -ENOENT;
		else if (mem_user_over(m, u, 1, len))
			rc = -EDQUOT;
		else
			rc = mem_entry_add(m, mb, c, 0, NULL, (int64_t)time(NULL), NULL, NULL);
		if (rc == 0)
			mem_note(m, mb);
	} else {
		struct store_relay_rcpt r = {.address = to};
		int64_t id = queue_add(m, c, "", &r, 1, requiretls, NULL, NULL);
		if (queue_id_r != NULL)
			*queue_id_r = id;
	}
	mem_content_unref(m, c);
	return rc;
}

int mem_store_deliver(void *impl, const struct store_deliver_req *req, store_backend_cb *cb,
                      void *ctx)
{
	struct mem_store *m = impl;
	if ((req->data == NULL && req->spool_path == NULL) ||
	    (req->n_targets == 0 && req->n_relay == 0))
		return -EINVAL;
	if (req->spool_path == NULL && req->size > m->max_message_size)
		return -EFBIG;
	for (size_t i = 0; i < req->n_relay; i++)
		if (req->relay[i].address == NULL)
			return -EINVAL;
	char **kw = xcalloc(req->n_targets + 1, sizeof(*kw));
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < req->n_targets; i++)
		rc = store_keywords_normalize(req->targets[i].keywords, &kw[i]);
	unsigned char *spooled = NULL;
	const void *data = req->data;
	size_t size = req->size;
	if (rc == 0 && req->spool_path != NULL) {
		rc = spool_load(req->spool_path, m->spool_sealed, m->max_message_size, &spooled,
		                &size);
		data = spooled;
	}
	if (rc < 0) {
		for (size_t i = 0; i < req->n_targets; i++)
			free(kw[i]);
		free(kw);
		free(spooled);
		/* A bad spool file is the delivery's error, reported through its callback. */
		if (rc == -EINVAL)
			return rc;
		pthread_mutex_lock(&m->lock);
		mem_done(m, cb, ctx, rc, NULL, true);
		pthread_mutex_unlock(&m->lock);
		return 0;
	}

	struct store_backend_result res = {0};
	int64_t now = req->internal_date != 0 ? req->internal_date : (int64_t)time(NULL);
	struct mem_mailbox **mbs = xcalloc(req->n_targets + 1, sizeof(*mbs));
	char *report = NULL;
	size_t report_len = 0;
	pthread_mutex_lock(&m->lock);
	res.delivered = xcalloc(req->n_targets + 1, sizeof(*res.delivered));
	res.n_delivered = req->n_targets;
	/* Every target is checked before the first write, as SQLite does, so a delivery that
	 * fails (or whose report hook fails) stores nothing. */
	size_t ok = 0;
	bool over_quota = false;
	for (size_t i = 0; i < req->n_targets; i++) {
		struct store_delivered *d = &res.delivered[i];
		struct mem_mailbox *mb = target_mailbox(m, &req->targets[i]);
		struct mem_user *u = mb != NULL ? mem_user_by_id(m, mb->user_id) : NULL;
		if (mb == NULL || u == NULL) {
			d->rc = -ENOENT;
			continue;
		}
		d->quota_bytes = u->quota;
		d->quota_messages = u->quota_messages;
		uint64_t used = 0, count = 1;
		for (size_t k = 0; k < i; k++) /* this delivery's earlier copies count too */
			if (mbs[k] != NULL && mbs[k]->user_id == u->id) {
				used += size;
				count++;
			}
		if (mem_user_over(m, u, count, used + size)) {
			d->rc = -EDQUOT;
			over_quota = true;
			continue;
		}
		if (mb->uidnext >= UINT32_MAX) {
			d->rc = -EFBIG;
			continue;
		}
		mbs[i] = mb;
		ok++;
	}
	if (ok == 0 && req->n_relay == 0) {
		rc = over_quota ? -EDQUOT : -ENOENT;
	} else if (ok < req->n_targets && req->report != NULL) {
		const struct store_deliver_report *rp = req->report;
		res.report_rc = -ENODATA;
		if (rp->format != NULL && rp->to != NULL && rp->to[0] != '\0') {
			struct store_report_input in = {
			    .delivered = res.delivered,
			    .n_targets = req->n_targets,
			    .size = size,
			    .head = data,
			    .head_len = size < STORE_REPORT_HEAD_MAX ? size : STORE_REPORT_HEAD_MAX,
			};
			in.head_complete = in.head_len == size;
			rc = rp->format(rp->ctx, &in, &report, &report_len);
		}
	}
	struct mem_content *c = NULL;
	if (rc == 0) {
		c = mem_content_get(m, data, size);
		res.id = c->id;
		for (size_t i = 0; i < req->n_targets; i++) {
			struct store_delivered *d = &res.delivered[i];
			if (mbs[i] == NULL)
				continue;
			mem_entry_add(m, mbs[i], c, req->targets[i].flags, kw[i], now, NULL,
			              &d->uid);
			d->mailbox_id = mbs[i]->id;
			d->uidvalidity = mbs[i]->uidvalidity;
			mem_note(m, mbs[i]);
		}
		if (req->n_relay > 0) {
			res.queue = xcalloc(1, sizeof(*res.queue));
			res.n_queue = 1;
			res.queue[0].id = queue_add(m, c, req->sender, req->relay, req->n_relay,
			                            req->requiretls, req->ret, req->envid);
		}
		if (report != NULL)
			res.report_rc = mem_report_place(m, report, report_len, req->report->to,
			                                 req->report->local, req->requiretls, NULL);
	}
	free(report);
	free(mbs);
	mem_content_unref(m, c);
	if (rc < 0)
		store_backend_result_free(&res);
	mem_done(m, cb, ctx, rc, &res, true);
	pthread_mutex_unlock(&m->lock);
	for (size_t i = 0; i < req->n_targets; i++)
		free(kw[i]);
	free(kw);
	free(spooled);
	return 0;
}

/* Every message is checked (with the ones before it in the batch counted against its
 * user's quota) before the first is added: all or none, as SQLite's one transaction. */
int mem_store_deliver_batch(void *impl, const struct store_deliver_req *reqs, size_t n,
                            store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		const struct store_deliver_req *r = &reqs[i];
		if ((r->data == NULL && r->spool_path == NULL) || r->n_targets != 1 ||
		    r->n_relay != 0 || r->report != NULL)
			return -EINVAL;
		if (r->spool_path == NULL && r->size > m->max_message_size)
			return -EFBIG;
	}
	char **kw = xcalloc(n + 1, sizeof(*kw));
	unsigned char **spooled = xcalloc(n + 1, sizeof(*spooled));
	const void **data = xcalloc(n + 1, sizeof(*data));
	size_t *size = xcalloc(n + 1, sizeof(*size));
	struct mem_mailbox **mbs = xcalloc(n + 1, sizeof(*mbs));
	struct store_backend_result res = {0};
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = store_keywords_normalize(reqs[i].targets[0].keywords, &kw[i]);
	if (rc < 0)
		goto out;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		data[i] = reqs[i].data;
		size[i] = reqs[i].size;
		if (reqs[i].spool_path != NULL) {
			rc = spool_load(reqs[i].spool_path, m->spool_sealed, m->max_message_size,
			                &spooled[i], &size[i]);
			data[i] = spooled[i];
		}
	}
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct mem_mailbox *mb = target_mailbox(m, &reqs[i].targets[0]);
		struct mem_user *u = mb != NULL ? mem_user_by_id(m, mb->user_id) : NULL;
		if (mb == NULL || u == NULL) {
			rc = -ENOENT;
			break;
		}
		uint64_t used = size[i], count = 1;
		uint32_t uids = 1;
		for (size_t k = 0; k < i; k++) {
			used += mbs[k]->user_id == u->id ? size[k] : 0;
			count += mbs[k]->user_id == u->id ? 1 : 0;
			uids += mbs[k] == mb ? 1 : 0;
		}
		if (mem_user_over(m, u, count, used))
			rc = -EDQUOT;
		else if ((uint64_t)mb->uidnext + uids > UINT32_MAX)
			rc = -EFBIG;
		mbs[i] = mb;
	}
	if (rc == 0) {
		int64_t now = (int64_t)time(NULL);
		res.delivered = xcalloc(n + 1, sizeof(*res.delivered));
		res.n_delivered = n;
		for (size_t i = 0; i < n; i++) {
			struct store_delivered *d = &res.delivered[i];
			struct mem_content *c = mem_content_get(m, data[i], size[i]);
			mem_entry_add(m, mbs[i], c, reqs[i].targets[0].flags, kw[i],
			              reqs[i].internal_date != 0 ? reqs[i].internal_date : now,
			              NULL, &d->uid);
			mem_content_unref(m, c);
			d->mailbox_id = mbs[i]->id;
			d->uidvalidity = mbs[i]->uidvalidity;
			d->quota_bytes = mem_user_by_id(m, mbs[i]->user_id)->quota;
			d->quota_messages = mem_user_by_id(m, mbs[i]->user_id)->quota_messages;
			mem_note(m, mbs[i]);
		}
	}
	mem_done(m, cb, ctx, rc, &res, true);
	pthread_mutex_unlock(&m->lock);
	rc = 0;
out:
	for (size_t i = 0; i < n; i++) {
		free(kw[i]);
		free(spooled[i]);
	}
	free(kw);
	free(spooled);
	free(data);
	free(size);
	free(mbs);
	return rc;
}

/* ---- Reading ---- */

int mem_store_message_list(void *impl, int64_t mailbox_id, uint64_t changed_since,
                           store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	pthread_mutex_lock(&m->lock);
	struct mem_mailbox *mb = mem_mailbox_by_id(m, mailbox_id);
	if (mb != NULL) {
		for (size_t i = 0; i < mb->n_entries; i++)
			if (changed_since == 0 || mb->entries[i].modseq > changed_since)
				msg_fill(&mb->entries[i], msg_push(&res));
		res.modseq = mb->highest_modseq;
		res.uidvalidity = mb->uidvalidity;
	}
	mem_done(m, cb, ctx, mb != NULL ? 0 : -ENOENT, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* The value of header name in the header block of msg, unfolded, or NULL. */
static char *header_value(const unsigned char *msg, size_t size, const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < size;) {
		size_t e = i;
		while (e < size && msg[e] != '\n')
			e++;
		size_t len = e - i;
		if (len > 0 && msg[e - 1] == '\r')
			len--;
		if (len == 0)
			break; /* end of the header */
		if (len > nl && msg[i + nl] == ':' &&
		    strncasecmp((const char *)msg + i, name, nl) == 0) {
			size_t v = i + nl + 1;
			size_t end = e;
			/* Folded lines continue with white space. */
			while (end + 1 < size && (msg[end + 1] == ' ' || msg[end + 1] == '\t')) {
				end++;
				while (end < size && msg[end] != '\n')
					end++;
			}
			char *out = xmalloc(end - v + 1);
			size_t o = 0;
			for (size_t k = v; k < end; k++)
				if (msg[k] != '\r' && msg[k] != '\n')
					out[o++] = (char)msg[k];
			out[o] = '\0';
			char *p = out;
			while (*p == ' ' || *p == '\t')
				p++;
			memmove(out, p, strlen(p) + 1);
			return out;
		}
		i = e + 1;
	}
	return NULL;
}

static void headers_fill(const struct mem_content *c, struct store_msg *out)
{
	out->hdr_from = header_value(c->data, c->size, "From");
	out->hdr_to = header_value(c->data, c->size, "To");
	out->hdr_cc = header_value(c->data, c->size, "Cc");
	out->hdr_subject = header_value(c->data, c->size, "Subject");
	out->hdr_message_id = header_value(c->data, c->size, "Message-ID");
	out->hdr_date = 0;
}

/* The stored MIME structure and the preview, computed as delivery does for SQLite
 * (store_mime.c). */
static char *mem_structure(const struct mem_content *c, char **preview_r)
{
	struct store_mime_info info = {0};
	char *json = NULL;
	if (store_mime_parse_mem(c->data, c->size, &info) == 0) {
		json = info.json;
		info.json = NULL;
		*preview_r = info.preview;
		info.preview = NULL;
	}
	store_mime_info_clear(&info);
	return json;
}

int mem_store_message_get(void *impl, int64_t mailbox_id, uint32_t uid, store_backend_cb *cb,
                          void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	pthread_mutex_lock(&m->lock);
	struct mem_mailbox *mb = mem_mailbox_by_id(m, mailbox_id);
	struct mem_entry *e = mb != NULL ? entry_by_uid(mb, uid) : NULL;
	if (e != NULL) {
		struct store_msg *o = msg_push(&res);
		msg_fill(e, o);
		headers_fill(e->content, o);
		o->mime_json = mem_structure(e->content, &o->preview);
	}
	mem_done(m, cb, ctx, e != NULL ? 0 : -ENOENT, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int mem_store_message_headers(void *impl, int64_t mailbox_id, store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	pthread_mutex_lock(&m->lock);
	struct mem_mailbox *mb = mem_mailbox_by_id(m, mailbox_id);
	for (size_t i = 0; mb != NULL && i < mb->n_entries; i++) {
		struct store_msg *o = msg_push(&res);
		msg_fill(&mb->entries[i], o);
		headers_fill(mb->entries[i].content, o);
	}
	mem_done(m, cb, ctx, 0, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* The sort keys, computed from the content as delivery computes them for SQLite (here at
 * each read: this backend is for tests, where mailboxes are small). */
static void sortkeys_fill(const struct mem_content *c, struct store_msg *out)
{
	struct store_mime_info info = {0};
	if (store_mime_parse_mem(c->data, c->size, &info) < 0)
		return;
	out->hdr_date = info.date;
	out->hdr_message_id = info.message_id;
	out->sort_subject = info.sort_subject;
	out->sort_reply = info.sort_reply;
	out->sort_from = info.sort_from;
	out->sort_from_name = info.sort_from_name;
	out->sort_to = info.sort_to;
	out->sort_to_name = info.sort_to_name;
	out->sort_cc = info.sort_cc;
	out->thread_refs = info.thread_refs;
	info.message_id = info.sort_subject = info.sort_from = info.sort_from_name = NULL;
	info.sort_to = info.sort_to_name = info.sort_cc = info.thread_refs = NULL;
	store_mime_info_clear(&info);
}

int mem_store_message_sortkeys(void *impl, int64_t mailbox_id, uint32_t after_uid,
                               store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	pthread_mutex_lock(&m->lock);
	struct mem_mailbox *mb = mem_mailbox_by_id(m, mailbox_id);
	for (size_t i = 0; mb != NULL && i < mb->n_entries; i++) {
		if (mb->entries[i].uid <= after_uid)
			continue;
		struct store_msg *o = msg_push(&res);
		memset(o, 0, sizeof(*o));
		o->uid = mb->entries[i].uid;
		o->internal_date = mb->entries[i].internal_date;
		o->size = mb->entries[i].content->size;
		sortkeys_fill(mb->entries[i].content, o);
	}
	mem_done(m, cb, ctx, 0, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* One batch read serves both the structures and the contents of many small messages, as
 * in the SQLite backend. */
static int mem_batch(void *impl, int64_t mailbox_id, const uint32_t *uids, size_t n,
                     size_t max_total, bool with_mime, bool with_content, store_backend_cb *cb,
                     void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	if (n == 0 || max_total == 0 || max_total > MEM_READ_MAX)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	struct mem_mailbox *mb = mem_mailbox_by_id(m, mailbox_id);
	size_t total = 0, data_len = 0;
	res.msgs = xcalloc(n, sizeof(*res.msgs));
	if (with_content)
		res.data = xmalloc(max_total + 1);
	for (size_t i = 0; mb != NULL && i < n; i++) {
		struct mem_entry *e = entry_by_uid(mb, uids[i]);
		if (e == NULL)
			continue;
		char *preview = NULL;
		char *json = with_mime ? mem_structure(e->content, &preview) : NULL;
		size_t jlen = json != NULL ? strlen(json) : 0;
		size_t need = jlen + (with_content ? e->content->size : 0);
		/* As SQLite does: stop where the next one does not fit; the caller asks again. */
		if (need > max_total - total && (res.n_msgs > 0 || with_content)) {
			free(json);
			free(preview);
			break;
		}
		struct store_msg *o = &res.msgs[res.n_msgs++];
		o->uid = e->uid;
		o->size = e->content->size;
		o->content_id = e->content->id;
		o->mime_json = json;
		o->preview = preview;
		o->email_id = e->email_id;
		o->thread_id = e->thread_id;
		o->save_date = e->save_date;
		if (with_content) {
			memcpy(res.data + data_len, e->content->data, e->content->size);
			data_len += e->content->size;
		}
		total += need < max_total - total ? need : max_total - total;
	}
	res.data_len = data_len;
	mem_done(m, cb, ctx, 0, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int mem_store_message_structures(void *impl, int64_t mailbox_id, const uint32_t *uids, size_t n,
                                 size_t max_total, bool with_content, store_backend_cb *cb,
                                 void *ctx)
{
	return mem_batch(impl, mailbox_id, uids, n, max_total, true, with_content, cb, ctx);
}

int mem_store_content_read_batch(void *impl, int64_t mailbox_id, const uint32_t *uids, size_t n,
                                 size_t max_total, store_backend_cb *cb, void *ctx)
{
	return mem_batch(impl, mailbox_id, uids, n, max_total, false, true, cb, ctx);
}

void mem_content_range(const struct mem_content *c, uint64_t offset, size_t max_len,
                       struct store_backend_result *res)
{
	res->total_size = c->size;
	size_t len = offset >= c->size ? 0 : c->size - (size_t)offset;
	if (len > max_len)
		len = max_len;
	res->data = xmalloc(len + 1);
	if (len > 0)
		memcpy(res->data, c->data + offset, len);
	res->data_len = len;
}

int mem_store_content_read(void *impl, int64_t mailbox_id, uint32_t uid, uint64_t offset,
                           size_t max_len, store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	if (max_len == 0 || max_len > MEM_READ_MAX)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	struct mem_mailbox *mb = mem_mailbox_by_id(m, mailbox_id);
	struct mem_entry *e = mb != NULL ? entry_by_uid(mb, uid) : NULL;
	if (e != NULL)
		mem_content_range(e->content, offset, max_len, &res);
	mem_done(m, cb, ctx, e != NULL ? 0 : -ENOENT, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int mem_store_vanished(void *impl, int64_t mailbox_id, uint64_t since_modseq, store_backend_cb *cb,
                       void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	pthread_mutex_lock(&m->lock);
	struct mem_mailbox *mb = mem_mailbox_by_id(m, mailbox_id);
	for (size_t i = 0; mb != NULL && i < mb->n_expunged; i++)
		if (mb->expunged[i].modseq > since_modseq)
			uids_push(&res.uids, &res.n_uids, mb->expunged[i].uid);
	mem_done(m, cb, ctx, 0, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static bool contains_nocase(const unsigned char *hay, size_t n, const char *needle)
{
	size_t nl = strlen(needle);
	if (nl == 0)
		return true;
	for (size_t i = 0; i + nl <= n; i++)
		if (strncasecmp((const char *)hay + i, needle, nl) == 0)
			return true;
	return false;
}

/* Where the body starts: after the blank line that ends the header (the whole message is
 * header when there is none). */
static size_t body_start(const unsigned char *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (d[i] != '\n')
			continue;
		if (i + 1 < n && d[i + 1] == '\n')
			return i + 2;
		if (i + 2 < n && d[i + 1] == '\r' && d[i + 2] == '\n')
			return i + 3;
	}
	return n;
}

/* BODY and TEXT as SQLite answers them, without MIME decoding: the string as one
 * case-insensitive substring of the raw body (BODY) or of the whole message (TEXT). */
static int mem_search(struct mem_store *m, int64_t mailbox_id, const char *text, bool body_only,
                      store_backend_cb *cb, void *ctx)
{
	struct store_backend_result res = {0};
	if (text == NULL || strlen(text) > 4096)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	struct mem_mailbox *mb = mem_mailbox_by_id(m, mailbox_id);
	for (size_t i = 0; mb != NULL && i < mb->n_entries; i++) {
		const struct mem_content *c = mb->entries[i].content;
		size_t from = body_only ? body_start(c->data, c->size) : 0;
		if (contains_nocase(c->data + from, c->size - from, text))
			uids_push(&res.uids, &res.n_uids, mb->entries[i].uid);
	}
	mem_done(m, cb, ctx, 0, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int mem_store_search_text(void *impl, int64_t mailbox_id, const char *text, store_backend_cb *cb,
                          void *ctx)
{
	return mem_search(impl, mailbox_id, text, false, cb, ctx);
}

int mem_store_search_body(void *impl, int64_t mailbox_id, const char *text, store_backend_cb *cb,
                          void *ctx)
{
	return mem_search(impl, mailbox_id, text, true, cb, ctx);
}

/* ---- Flags, expunge, copy ---- */

static bool kw_has(const char *list, const char *word, size_t wl)
{
	for (const char *p = list; *p != '\0';) {
		const char *e = strchr(p, ' ');
		size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
		if (n == wl && memcmp(p, word, wl) == 0)
			return true;
		p += n + (e != NULL);
	}
	return false;
}

static char *kw_apply(const char *cur, const char *delta, enum store_flag_mode mode)
{
	char *joined = xmalloc(strlen(cur) + strlen(delta) + 2);
	size_t len = 0;
	for (const char *p = cur; *p != '\0';) {
		const char *e = strchr(p, ' ');
		size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
		if (mode != STORE_FLAGS_REMOVE || !kw_has(delta, p, n)) {
			if (len > 0)
				joined[len++] = ' ';
			memcpy(joined + len, p, n);
			len += n;
		}
		p += n + (e != NULL);
	}
	if (mode == STORE_FLAGS_ADD && delta[0] != '\0') {
		if (len > 0)
			joined[len++] = ' ';
		memcpy(joined + len, delta, strlen(delta));
		len += strlen(delta);
	}
	joined[len] = '\0';
	char *out = NULL;
	store_keywords_normalize(joined, &out);
	free(joined);
	return out != NULL ? out : xstrdup("");
}

int mem_store_flags_store(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
                          size_t n_ranges, enum store_flag_mode mode, unsigned flags,
                          const char *keywords, uint64_t unchanged_since, store_backend_cb *cb,
                          void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	char *kw = NULL;
	if (keywords != NULL && store_keywords_normalize(keywords, &kw) < 0)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	struct mem_mailbox *mb = mem_mailbox_by_id(m, mailbox_id);
	uint64_t modseq = 0;
	for (size_t i = 0; mb != NULL && i < mb->n_entries; i++) {
		struct mem_entry *e = &mb->entries[i];
		if (!in_ranges(e->uid, ranges, n_ranges))
			continue;
		if (unchanged_since > 0 && e->modseq > unchanged_since) {
			uids_push(&res.uids, &res.n_uids, e->uid);
			continue;
		}
		unsigned nf = mode == STORE_FLAGS_SET   ? flags
		              : mode == STORE_FLAGS_ADD ? (e->flags | flags)
		                                        : (e->flags & ~flags);
		char *nk = mode == STORE_FLAGS_SET ? xstrdup(kw != NULL ? kw : "")
		           : kw != NULL            ? kw_apply(e->keywords, kw, mode)
		                                   : xstrdup(e->keywords);
		if (nf == e->flags && strcmp(nk, e->keywords) == 0) {
			free(nk);
			continue;
		}
		if (modseq == 0)
			modseq = ++mb->highest_modseq;
		e->flags = nf;
		free(e->keywords);
		e->keywords = nk;
		e->modseq = modseq;
		msg_fill(e, msg_push(&res));
	}
	if (modseq != 0)
		mem_note(m, mb);
	res.modseq = modseq;
	mem_done(m, cb, ctx, 0, &res, true);
	pthread_mutex_unlock(&m->lock);
	free(kw);
	return 0;
}

static int expunge(struct mem_store *m, int64_t mailbox_id, const struct store_uid_range *ranges,
                   size_t n_ranges, bool any_flags, store_backend_cb *cb, void *ctx)
{
	struct store_backend_result res = {0};
	pthread_mutex_lock(&m->lock);
	struct mem_mailbox *mb = mem_mailbox_by_id(m, mailbox_id);
	uint64_t modseq = 0;
	for (size_t i = 0; mb != NULL && i < mb->n_entries;) {
		struct mem_entry *e = &mb->entries[i];
		if (!in_ranges(e->uid, ranges, n_ranges) ||
		    (!any_flags && !(e->flags & STORE_DELETED))) {
			i++;
			continue;
		}
		if (modseq == 0)
			modseq = ++mb->highest_modseq;
		uids_push(&res.uids, &res.n_uids, e->uid);
		entry_remove(m, mb, i, modseq);
	}
	if (modseq != 0)
		mem_note(m, mb);
	res.modseq = modseq;
	mem_done(m, cb, ctx, 0, &res, true);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int mem_store_expunge(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
                      size_t n_ranges, store_backend_cb *cb, void *ctx)
{
	return expunge(impl, mailbox_id, ranges, n_ranges, false, cb, ctx);
}

int mem_store_remove(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
                     size_t n_ranges, store_backend_cb *cb, void *ctx)
{
	if (n_ranges == 0)
		return -EINVAL;
	return expunge(impl, mailbox_id, ranges, n_ranges, true, cb, ctx);
}

int mem_store_copy(void *impl, int64_t src_mailbox_id, const struct store_uid_range *ranges,
                   size_t n_ranges, int64_t dst_mailbox_id, bool move, store_backend_cb *cb,
                   void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	int rc = 0;
	pthread_mutex_lock(&m->lock);
	struct mem_mailbox *src = mem_mailbox_by_id(m, src_mailbox_id);
	struct mem_mailbox *dst = mem_mailbox_by_id(m, dst_mailbox_id);
	if (src == NULL || dst == NULL || src->user_id != dst->user_id) {
		rc = -ENOENT;
		goto out;
	}
	uint64_t need = 0, count = 0;
	for (size_t i = 0; i < src->n_entries; i++)
		if (in_ranges(src->entries[i].uid, ranges, n_ranges)) {
			need += src->entries[i].content->size;
			count++;
		}
	struct mem_user *u = mem_user_by_id(m, src->user_id);
	if (!move && u != NULL && count > 0 && mem_user_over(m, u, count, need)) {
		rc = -EDQUOT;
		goto out;
	}
	/* The UIDs first: adding to dst may grow (and move) src's entries when they are the
	 * same mailbox, and what was added must not be copied again. */
	uint32_t *todo = NULL;
	size_t n_todo = 0;
	for (size_t i = 0; i < src->n_entries; i++)
		if (in_ranges(src->entries[i].uid, ranges, n_ranges))
			uids_push(&todo, &n_todo, src->entries[i].uid);
	uint64_t modseq = 0;
	for (size_t k = 0; k < n_todo; k++) {
		struct mem_entry *e = entry_by_uid(src, todo[k]);
		uint32_t uid;
		rc = mem_entry_add(m, dst, e->content, e->flags, e->keywords, e->internal_date, e,
		                   &uid);
		if (rc < 0)
			break;
		uids_push(&res.uids, &res.n_uids, todo[k]);
		res.uids2 = xreallocarray(res.uids2, res.n_uids, sizeof(*res.uids2));
		res.uids2[res.n_uids - 1] = uid;
		if (move) {
			if (modseq == 0)
				modseq = ++src->highest_modseq;
			for (size_t i = 0; i < src->n_entries; i++)
				if (src->entries[i].uid == todo[k]) {
					entry_remove(m, src, i, modseq);
					break;
				}
		}
	}
	free(todo);
	res.uidvalidity = dst->uidvalidity;
	if (res.n_uids > 0) {
		mem_note(m, dst);
		if (move)
			mem_note(m, src);
	}
out:
	mem_done(m, cb, ctx, rc, &res, true);
	pthread_mutex_unlock(&m->lock);
	return 0;
}
