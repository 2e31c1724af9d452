/*
 * What the store hands back, independent of any backend: error names, freeing and moving
 * results, and the blocking face (struct store_sync). Nothing here includes sqlite3.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "storage/store_backend.h"

const char *store_strerror(int rc)
{
	switch (rc) {
	case 0:
		return "success";
	case -ENOENT:
		return "no such user, mailbox or message";
	case -EEXIST:
		return "already exists";
	case -EINVAL:
		return "invalid argument";
	case -EACCES:
		return "authentication failed";
	case -EDQUOT:
		return "over quota";
	case -ENOSPC:
		return "disk full";
	case -EBUSY:
		return "database is locked by another process";
	case -EIO:
		return "database is corrupt or unreadable";
	case -EFBIG:
		return "message too large";
	case -ESHUTDOWN:
		return "store is closing";
	case -EPROTO:
		return "database schema is newer than this program";
	case -EROFS:
		return "database is read-only";
	default:
		return strerror(-rc);
	}
}

/* ---- Results ---- */

void store_user_clear(struct store_user *u)
{
	free(u->address);
	free(u->password_tag);
	memset(u, 0, sizeof(*u));
}

void store_mailbox_clear(struct store_mailbox *mb)
{
	free(mb->name);
	memset(mb, 0, sizeof(*mb));
}

void store_msg_clear(struct store_msg *m)
{
	free(m->keywords);
	free(m->mime_json);
	free(m->hdr_from);
	free(m->hdr_to);
	free(m->hdr_cc);
	free(m->hdr_subject);
	free(m->hdr_message_id);
	free(m->sort_subject);
	free(m->sort_from);
	free(m->sort_to);
	free(m->sort_cc);
	free(m->sort_from_name);
	free(m->sort_to_name);
	free(m->thread_refs);
	free(m->preview);
	memset(m, 0, sizeof(*m));
}

void store_cert_free_all(struct store_cert *certs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(certs[i].serial);
		free(certs[i].address);
	}
	free(certs);
}

static void user_free_all(struct store_user *u, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_user_clear(&u[i]);
	free(u);
}

static void queue_free_all(struct store_queue_entry *q, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < q[i].n_rcpts; j++) {
			free(q[i].rcpts[j].address);
			free(q[i].rcpts[j].notify);
			free(q[i].rcpts[j].orcpt);
			free(q[i].rcpts[j].last_error);
		}
		free(q[i].rcpts);
		free(q[i].sender);
		free(q[i].ret);
		free(q[i].envid);
	}
	free(q);
}

static void scram_free(struct store_scram *sc)
{
	free(sc->salt);
	free(sc->stored_key);
	free(sc->server_key);
	memset(sc, 0, sizeof(*sc));
}

void store_users_free(struct store_users *res)
{
	user_free_all(res->v, res->n);
	memset(res, 0, sizeof(*res));
}

void store_users_move(struct store_users *dst, struct store_users *src)
{
	store_users_free(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

void store_scram_material_free(struct store_scram_material *res)
{
	scram_free(&res->scram);
	memset(res, 0, sizeof(*res));
}

void store_scram_material_move(struct store_scram_material *dst, struct store_scram_material *src)
{
	store_scram_material_free(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

static void mailbox_free_all(struct store_mailbox *mb, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_mailbox_clear(&mb[i]);
	free(mb);
}

static void names_free_all(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void store_mailboxes_free(struct store_mailboxes *res)
{
	mailbox_free_all(res->v, res->n);
	names_free_all(res->missing, res->n_missing);
	memset(res, 0, sizeof(*res));
}

void store_mailboxes_move(struct store_mailboxes *dst, struct store_mailboxes *src)
{
	store_mailboxes_free(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

void store_certs_free(struct store_certs *res)
{
	store_cert_free_all(res->v, res->n);
	memset(res, 0, sizeof(*res));
}

void store_certs_move(struct store_certs *dst, struct store_certs *src)
{
	store_certs_free(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

void store_delivery_result_free(struct store_delivery_result *res)
{
	free(res->v);
	memset(res, 0, sizeof(*res));
}

void store_delivery_result_move(struct store_delivery_result *dst,
                                struct store_delivery_result *src)
{
	store_delivery_result_free(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

static void msg_free_all(struct store_msg *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_msg_clear(&m[i]);
	free(m);
}

void store_flags_changed_free(struct store_flags_changed *res)
{
	msg_free_all(res->v, res->n);
	free(res->skipped);
	memset(res, 0, sizeof(*res));
}

void store_flags_changed_move(struct store_flags_changed *dst, struct store_flags_changed *src)
{
	store_flags_changed_free(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

void store_uids_free(struct store_uids *res)
{
	free(res->v);
	memset(res, 0, sizeof(*res));
}

void store_uids_move(struct store_uids *dst, struct store_uids *src)
{
	store_uids_free(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

void store_copied_free(struct store_copied *res)
{
	free(res->src);
	free(res->dst);
	memset(res, 0, sizeof(*res));
}

void store_copied_move(struct store_copied *dst, struct store_copied *src)
{
	store_copied_free(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

void store_msgs_free(struct store_msgs *res)
{
	msg_free_all(res->v, res->n);
	memset(res, 0, sizeof(*res));
}

void store_msgs_move(struct store_msgs *dst, struct store_msgs *src)
{
	store_msgs_free(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

void store_batch_free(struct store_batch *res)
{
	msg_free_all(res->v, res->n);
	free(res->data);
	memset(res, 0, sizeof(*res));
}

void store_batch_move(struct store_batch *dst, struct store_batch *src)
{
	store_batch_free(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

void store_content_free(struct store_content *res)
{
	free(res->data);
	memset(res, 0, sizeof(*res));
}

void store_content_move(struct store_content *dst, struct store_content *src)
{
	store_content_free(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

void store_queue_entries_free(struct store_queue_entries *res)
{
	queue_free_all(res->v, res->n);
	memset(res, 0, sizeof(*res));
}

void store_queue_entries_move(struct store_queue_entries *dst, struct store_queue_entries *src)
{
	store_queue_entries_free(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

void store_backend_result_free(struct store_backend_result *res)
{
	user_free_all(res->users, res->n_users);
	mailbox_free_all(res->mailboxes, res->n_mailboxes);
	names_free_all(res->names, res->n_names);
	msg_free_all(res->msgs, res->n_msgs);
	free(res->uids);
	free(res->uids2);
	free(res->delivered);
	queue_free_all(res->queue, res->n_queue);
	store_cert_free_all(res->certs, res->n_certs);
	scram_free(&res->scram);
	free(res->data);
	store_meta_free_all(res->meta, res->n_meta);
	struct store_audit_records audit = {.v = res->audit, .n = res->n_audit};
	store_audit_records_free(&audit);
	memset(res, 0, sizeof(*res));
}

void store_backend_result_move(struct store_backend_result *dst, struct store_backend_result *src)
{
	store_backend_result_free(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

/* ---- Blocking face ---- */

struct store_sync_impl {
	pthread_mutex_t lock;
	pthread_cond_t cv;
};

void store_sync_init(struct store_sync *w)
{
	struct store_sync_impl *impl = xcalloc(1, sizeof(*impl));
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&impl->lock, NULL);
	pthread_cond_init(&impl->cv, NULL);
	w->impl = impl;
}

/* Takes the lock a sync callback fills w under; sync_finish() records rc and wakes the
 * waiter. */
static struct store_sync *sync_begin(void *ctx)
{
	struct store_sync *w = ctx;
	struct store_sync_impl *impl = w->impl;
	pthread_mutex_lock(&impl->lock);
	return w;
}

static void sync_finish(struct store_sync *w, int rc)
{
	struct store_sync_impl *impl = w->impl;
	w->rc = rc;
	w->done = true;
	pthread_cond_signal(&impl->cv);
	pthread_mutex_unlock(&impl->lock);
}

void store_sync_done_cb(void *ctx, int rc)
{
	sync_finish(sync_begin(ctx), rc);
}

void store_sync_users(void *ctx, int rc, struct store_users *res)
{
	struct store_sync *w = sync_begin(ctx);
	store_users_move(&w->users, res);
	sync_finish(w, rc);
}

void store_sync_login(void *ctx, int rc, struct store_login *res)
{
	struct store_sync *w = sync_begin(ctx);
	w->login = *res;
	sync_finish(w, rc);
}

void store_sync_scram(void *ctx, int rc, struct store_scram_material *res)
{
	struct store_sync *w = sync_begin(ctx);
	store_scram_material_move(&w->scram, res);
	sync_finish(w, rc);
}

void store_sync_mailboxes(void *ctx, int rc, struct store_mailboxes *res)
{
	struct store_sync *w = sync_begin(ctx);
	store_mailboxes_move(&w->mailboxes, res);
	sync_finish(w, rc);
}

void store_sync_metadata(void *ctx, int rc, struct store_metadata *res)
{
	struct store_sync *w = sync_begin(ctx);
	store_metadata_move(&w->metadata, res);
	sync_finish(w, rc);
}

void store_sync_audit(void *ctx, int rc, struct store_audit_records *res)
{
	struct store_sync *w = sync_begin(ctx);
	store_audit_records_move(&w->audit, res);
	sync_finish(w, rc);
}

void store_sync_audit_check(void *ctx, int rc, const struct store_audit_check *res)
{
	struct store_sync *w = sync_begin(ctx);
	w->audit_check = *res;
	sync_finish(w, rc);
}

void store_sync_certs(void *ctx, int rc, struct store_certs *res)
{
	struct store_sync *w = sync_begin(ctx);
	store_certs_move(&w->certs, res);
	sync_finish(w, rc);
}

void store_sync_delivery(void *ctx, int rc, struct store_delivery_result *res)
{
	struct store_sync *w = sync_begin(ctx);
	store_delivery_result_move(&w->delivery, res);
	sync_finish(w, rc);
}

void store_sync_flags(void *ctx, int rc, struct store_flags_changed *res)
{
	struct store_sync *w = sync_begin(ctx);
	store_flags_changed_move(&w->flags, res);
	sync_finish(w, rc);
}

void store_sync_uids(void *ctx, int rc, struct store_uids *res)
{
	struct store_sync *w = sync_begin(ctx);
	store_uids_move(&w->uids, res);
	sync_finish(w, rc);
}

void store_sync_copied(void *ctx, int rc, struct store_copied *res)
{
	struct store_sync *w = sync_begin(ctx);
	store_copied_move(&w->copied, res);
	sync_finish(w, rc);
}

void store_sync_msgs(void *ctx, int rc, struct store_msgs *res)
{
	struct store_sync *w = sync_begin(ctx);
	store_msgs_move(&w->msgs, res);
	sync_finish(w, rc);
}

void store_sync_batch(void *ctx, int rc, struct store_batch *res)
{
	struct store_sync *w = sync_begin(ctx);
	store_batch_move(&w->batch, res);
	sync_finish(w, rc);
}

void store_sync_content(void *ctx, int rc, struct store_content *res)
{
	struct store_sync *w = sync_begin(ctx);
	store_content_move(&w->content, res);
	sync_finish(w, rc);
}

void store_sync_queue(void *ctx, int rc, struct store_queue_entries *res)
{
	struct store_sync *w = sync_begin(ctx);
	store_queue_entries_move(&w->queue, res);
	sync_finish(w, rc);
}

void store_sync_reported(void *ctx, int rc, struct store_queue_reported *res)
{
	struct store_sync *w = sync_begin(ctx);
	w->reported = *res;
	sync_finish(w, rc);
}

int store_sync_wait(struct store_sync *w, int submit_rc)
{
	struct store_sync_impl *impl = w->impl;
	if (submit_rc < 0)
		return submit_rc;
	pthread_mutex_lock(&impl->lock);
	while (!w->done)
		pthread_cond_wait(&impl->cv, &impl->lock);
	pthread_mutex_unlock(&impl->lock);
	return w->rc;
}

void store_sync_done(struct store_sync *w)
{
	struct store_sync_impl *impl = w->impl;
	store_users_free(&w->users);
	store_scram_material_free(&w->scram);
	store_mailboxes_free(&w->mailboxes);
	store_certs_free(&w->certs);
	store_delivery_result_free(&w->delivery);
	store_flags_changed_free(&w->flags);
	store_uids_free(&w->uids);
	store_copied_free(&w->copied);
	store_msgs_free(&w->msgs);
	store_batch_free(&w->batch);
	store_content_free(&w->content);
	store_queue_entries_free(&w->queue);
	store_metadata_free(&w->metadata);
	store_audit_records_free(&w->audit);
	if (impl != NULL) {
		pthread_mutex_destroy(&impl->lock);
		pthread_cond_destroy(&impl->cv);
		free(impl);
	}
	w->impl = NULL;
}
