/*
 * The front of the store: every public function of store.h, passed on to the backend the
 * store was opened with (storage/store_backend.h), and the registry of backends by name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "storage/store_backend.h"

struct store {
	const struct store_backend *backend;
	void *impl;
};

static const struct store_backend *const store_backends[] = {
    &store_backend_sqlite,
    &store_backend_mem,
    &store_backend_fault,
    &store_backend_postgresql,
};
#define STORE_N_BACKENDS (sizeof(store_backends) / sizeof(store_backends[0]))

const struct store_backend *store_backend_find(const char *name)
{
	if (name == NULL || name[0] == '\0')
		name = "sqlite";
	size_t len = strcspn(name, ":");
	for (size_t i = 0; i < STORE_N_BACKENDS; i++) {
		const char *n = store_backends[i]->name;
		if (strlen(n) == len && memcmp(n, name, len) == 0)
			return store_backends[i];
	}
	return NULL;
}

const char *store_backend_names(bool persistent_only)
{
	static char all[128], persistent[128];
	char *buf = persistent_only ? persistent : all;
	if (buf[0] != '\0')
		return buf;
	/* Built once; concurrent first calls write the same bytes. */
	char tmp[128] = "";
	size_t used = 0;
	for (size_t i = 0; i < STORE_N_BACKENDS; i++) {
		if (persistent_only && !store_backends[i]->persistent)
			continue;
		int n = snprintf(tmp + used, sizeof(tmp) - used, "%s%s", used > 0 ? ", " : "",
		                 store_backends[i]->name);
		if (n < 0 || (size_t)n >= sizeof(tmp) - used)
			break;
		used += (size_t)n;
	}
	memcpy(buf, tmp, sizeof(tmp));
	return buf;
}

int store_open(const struct store_options *opt, struct store **store_r, const char **error_r)
{
	static _Thread_local char err_buf[256];
	const struct store_backend *b = store_backend_find(opt->backend);
	*store_r = NULL;
	if (b == NULL) {
		snprintf(err_buf, sizeof(err_buf), "unknown store backend \"%s\" (known: %s)",
		         opt->backend, store_backend_names(false));
		*error_r = err_buf;
		return -EINVAL;
	}
	void *impl = NULL;
	int rc = b->open(opt, &impl, error_r);
	if (rc < 0)
		return rc;
	struct store *s = xcalloc(1, sizeof(*s));
	s->backend = b;
	s->impl = impl;
	*store_r = s;
	return 0;
}

const struct store_backend *store_backend_of(struct store *s)
{
	return s->backend;
}

void *store_backend_impl(struct store *s)
{
	return s->impl;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	s->backend->close(s->impl);
	free(s);
}

void store_stats(struct store *s, uint64_t *commits_r, uint64_t *writes_r)
{
	*commits_r = 0;
	*writes_r = 0;
	if (s->backend->stats != NULL)
		s->backend->stats(s->impl, commits_r, writes_r);
}

/* ---- Typed results ----
 * A backend completes with its generic result; the front builds the operation's own kind
 * from it, moving the fields (no copies), and calls the caller's typed callback. The thunk
 * carries that callback from the call to the completion. */

struct store_thunk {
	union {
		store_done_cb *done;
		store_users_cb *users;
		store_login_cb *login;
		store_scram_cb *scram;
		store_mailboxes_cb *mailboxes;
		store_certs_cb *certs;
		store_delivery_cb *delivery;
		store_flags_cb *flags;
		store_uids_cb *uids;
		store_copied_cb *copied;
		store_msgs_cb *msgs;
		store_batch_cb *batch;
		store_content_cb *content;
		store_queue_cb *queue;
		store_queue_reported_cb *reported;
		store_queue_summary_cb *summary;
		store_metadata_cb *metadata;
		store_audit_cb *audit;
		store_audit_check_cb *audit_check;
	} cb;
	void *ctx;
};

static struct store_thunk *thunk_new(void *ctx)
{
	struct store_thunk *t = xcalloc(1, sizeof(*t));
	t->ctx = ctx;
	return t;
}

/* The backend's answer to the submission: on an error it never completes, so the thunk
 * is freed here; else the completion frees it. */
static int thunk_submitted(struct store_thunk *t, int rc)
{
	if (rc < 0)
		free(t);
	return rc;
}

static void complete_done(void *arg, int rc, struct store_backend_result *res)
{
	struct store_thunk *t = arg;
	(void)res;
	t->cb.done(t->ctx, rc);
	free(t);
}

static void complete_users(void *arg, int rc, struct store_backend_result *res)
{
	struct store_thunk *t = arg;
	struct store_users r = {.v = res->users, .n = res->n_users};
	res->users = NULL;
	res->n_users = 0;
	t->cb.users(t->ctx, rc, &r);
	store_users_free(&r);
	free(t);
}

static void complete_login(void *arg, int rc, struct store_backend_result *res)
{
	struct store_thunk *t = arg;
	struct store_login r = {.user_id = res->user_id,
	                        .require_client_certificate = res->require_client_certificate};
	t->cb.login(t->ctx, rc, &r);
	free(t);
}

static void complete_scram(void *arg, int rc, struct store_backend_result *res)
{
	struct store_thunk *t = arg;
	struct store_scram_material r = {.user_id = res->user_id, .scram = res->scram};
	memset(&res->scram, 0, sizeof(res->scram));
	t->cb.scram(t->ctx, rc, &r);
	store_scram_material_free(&r);
	free(t);
}

static void complete_mailboxes(void *arg, int rc, struct store_backend_result *res)
{
	struct store_thunk *t = arg;
	struct store_mailboxes r = {.v = res->mailboxes,
	                            .n = res->n_mailboxes,
	                            .missing = res->names,
	                            .n_missing = res->n_names};
	res->mailboxes = NULL;
	res->n_mailboxes = 0;
	res->names = NULL;
	res->n_names = 0;
	t->cb.mailboxes(t->ctx, rc, &r);
	store_mailboxes_free(&r);
	free(t);
}

static void complete_metadata(void *arg, int rc, struct store_backend_result *res)
{
	struct store_thunk *t = arg;
	struct store_metadata r = {.v = res->meta, .n = res->n_meta};
	res->meta = NULL;
	res->n_meta = 0;
	t->cb.metadata(t->ctx, rc, &r);
	store_metadata_free(&r);
	free(t);
}

static void complete_certs(void *arg, int rc, struct store_backend_result *res)
{
	struct store_thunk *t = arg;
	struct store_certs r = {.v = res->certs, .n = res->n_certs, .crl_number = res->crl_number};
	res->certs = NULL;
	res->n_certs = 0;
	t->cb.certs(t->ctx, rc, &r);
	store_certs_free(&r);
	free(t);
}

static void complete_delivery(void *arg, int rc, struct store_backend_result *res)
{
	struct store_thunk *t = arg;
	struct store_delivery_result r = {.content_id = res->id,
	                                  .v = res->delivered,
	                                  .n = res->n_delivered,
	                                  .queue_id = res->n_queue > 0 ? res->queue[0].id : 0,
	                                  .size = res->total_size,
	                                  .report_rc = res->report_rc};
	res->delivered = NULL;
	res->n_delivered = 0;
	t->cb.delivery(t->ctx, rc, &r);
	store_delivery_result_free(&r);
	free(t);
}

static void complete_flags(void *arg, int rc, struct store_backend_result *res)
{
	struct store_thunk *t = arg;
	struct store_flags_changed r = {.v = res->msgs,
	                                .n = res->n_msgs,
	                                .skipped = res->uids,
	                                .n_skipped = res->n_uids,
	                                .modseq = res->modseq};
	res->msgs = NULL;
	res->n_msgs = 0;
	res->uids = NULL;
	res->n_uids = 0;
	t->cb.flags(t->ctx, rc, &r);
	store_flags_changed_free(&r);
	free(t);
}

static void complete_uids(void *arg, int rc, struct store_backend_result *res)
{
	struct store_thunk *t = arg;
	struct store_uids r = {.v = res->uids, .n = res->n_uids, .modseq = res->modseq};
	res->uids = NULL;
	res->n_uids = 0;
	t->cb.uids(t->ctx, rc, &r);
	store_uids_free(&r);
	free(t);
}

static void complete_copied(void *arg, int rc, struct store_backend_result *res)
{
	struct store_thunk *t = arg;
	struct store_copied r = {.src = res->uids,
	                         .dst = res->uids2,
	                         .n = res->n_uids,
	                         .uidvalidity = res->uidvalidity,
	                         .modseq = res->modseq};
	res->uids = NULL;
	res->uids2 = NULL;
	res->n_uids = 0;
	t->cb.copied(t->ctx, rc, &r);
	store_copied_free(&r);
	free(t);
}

static void complete_msgs(void *arg, int rc, struct store_backend_result *res)
{
	struct store_thunk *t = arg;
	struct store_msgs r = {.v = res->msgs,
	                       .n = res->n_msgs,
	                       .modseq = res->modseq,
	                       .uidvalidity = res->uidvalidity};
	res->msgs = NULL;
	res->n_msgs = 0;
	t->cb.msgs(t->ctx, rc, &r);
	store_msgs_free(&r);
	free(t);
}

static void complete_batch(void *arg, int rc, struct store_backend_result *res)
{
	struct store_thunk *t = arg;
	struct store_batch r = {
	    .v = res->msgs, .n = res->n_msgs, .data = res->data, .len = res->data_len};
	res->msgs = NULL;
	res->n_msgs = 0;
	res->data = NULL;
	res->data_len = 0;
	t->cb.batch(t->ctx, rc, &r);
	store_batch_free(&r);
	free(t);
}

static void complete_content(void *arg, int rc, struct store_backend_result *res)
{
	struct store_thunk *t = arg;
	struct store_content r = {
	    .data = res->data, .len = res->data_len, .total_size = res->total_size};
	res->data = NULL;
	res->data_len = 0;
	t->cb.content(t->ctx, rc, &r);
	store_content_free(&r);
	free(t);
}

static void complete_queue(void *arg, int rc, struct store_backend_result *res)
{
	struct store_thunk *t = arg;
	struct store_queue_entries r = {.v = res->queue, .n = res->n_queue};
	res->queue = NULL;
	res->n_queue = 0;
	t->cb.queue(t->ctx, rc, &r);
	store_queue_entries_free(&r);
	free(t);
}

static void complete_summary(void *arg, int rc, struct store_backend_result *res)
{
	struct store_thunk *t = arg;
	t->cb.summary(t->ctx, rc, &res->queue_summary);
	free(t);
}

static void complete_reported(void *arg, int rc, struct store_backend_result *res)
{
	struct store_thunk *t = arg;
	struct store_queue_reported r = {.dsn_queue_id = res->id};
	t->cb.reported(t->ctx, rc, &r);
	free(t);
}

/* ---- Operations: each is its backend's ---- */

int store_user_add(struct store *s, const char *address, const char *password, store_users_cb *cb,
                   void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.users = cb;
	return thunk_submitted(t,
	                       s->backend->user_add(s->impl, address, password, complete_users, t));
}

int store_user_del(struct store *s, const char *address, store_done_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.done = cb;
	return thunk_submitted(t, s->backend->user_del(s->impl, address, complete_done, t));
}

int store_user_passwd(struct store *s, const char *address, const char *password, store_done_cb *cb,
                      void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.done = cb;
	return thunk_submitted(
	    t, s->backend->user_passwd(s->impl, address, password, complete_done, t));
}

int store_user_set_require_cert(struct store *s, const char *address, bool on, store_done_cb *cb,
                                void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.done = cb;
	return thunk_submitted(
	    t, s->backend->user_set_require_cert(s->impl, address, on, complete_done, t));
}

int store_user_set_disabled(struct store *s, const char *address, bool on, store_done_cb *cb,
                            void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.done = cb;
	return thunk_submitted(
	    t, s->backend->user_set_disabled(s->impl, address, on, complete_done, t));
}

int store_user_set_quota(struct store *s, const char *address, uint64_t bytes, store_done_cb *cb,
                         void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.done = cb;
	return thunk_submitted(
	    t, s->backend->user_set_quota(s->impl, address, bytes, complete_done, t));
}

int store_user_set_message_quota(struct store *s, const char *address, uint64_t messages,
                                 store_done_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.done = cb;
	return thunk_submitted(
	    t, s->backend->user_set_message_quota(s->impl, address, messages, complete_done, t));
}

int store_user_get(struct store *s, const char *address, store_users_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.users = cb;
	return thunk_submitted(t, s->backend->user_get(s->impl, address, complete_users, t));
}

int store_user_list(struct store *s, store_users_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.users = cb;
	return thunk_submitted(t, s->backend->user_list(s->impl, complete_users, t));
}

int store_auth(struct store *s, const char *address, const char *password, store_login_cb *cb,
               void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.login = cb;
	return thunk_submitted(t, s->backend->auth(s->impl, address, password, complete_login, t));
}

int store_user_scram(struct store *s, const char *address, store_scram_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.scram = cb;
	return thunk_submitted(t, s->backend->user_scram(s->impl, address, complete_scram, t));
}

int store_mailbox_list(struct store *s, int64_t user_id, store_mailboxes_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.mailboxes = cb;
	return thunk_submitted(t,
	                       s->backend->mailbox_list(s->impl, user_id, complete_mailboxes, t));
}

int store_mailbox_get(struct store *s, int64_t user_id, const char *name, store_mailboxes_cb *cb,
                      void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.mailboxes = cb;
	return thunk_submitted(
	    t, s->backend->mailbox_get(s->impl, user_id, name, complete_mailboxes, t));
}

int store_mailbox_create(struct store *s, int64_t user_id, const char *name, unsigned special_use,
                         store_mailboxes_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.mailboxes = cb;
	return thunk_submitted(t, s->backend->mailbox_create(s->impl, user_id, name, special_use,
	                                                     complete_mailboxes, t));
}

int store_mailbox_delete(struct store *s, int64_t user_id, const char *name, store_done_cb *cb,
                         void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.done = cb;
	return thunk_submitted(
	    t, s->backend->mailbox_delete(s->impl, user_id, name, complete_done, t));
}

int store_mailbox_rename(struct store *s, int64_t user_id, const char *name, const char *new_name,
                         store_mailboxes_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.mailboxes = cb;
	return thunk_submitted(
	    t, s->backend->mailbox_rename(s->impl, user_id, name, new_name, complete_mailboxes, t));
}

int store_mailbox_subscribe(struct store *s, int64_t user_id, const char *name, bool on,
                            store_done_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.done = cb;
	return thunk_submitted(
	    t, s->backend->mailbox_subscribe(s->impl, user_id, name, on, complete_done, t));
}

int store_metadata_get(struct store *s, int64_t user_id, int64_t mailbox_id,
                       const char *const *names, size_t n, int depth, store_metadata_cb *cb,
                       void *ctx)
{
	if (cb == NULL || n == 0 || depth < STORE_META_DEPTH_INFINITY || depth > 1)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.metadata = cb;
	return thunk_submitted(t, s->backend->metadata_get(s->impl, user_id, mailbox_id, names, n,
	                                                   depth, complete_metadata, t));
}

int store_metadata_set(struct store *s, int64_t user_id, int64_t mailbox_id,
                       const struct store_meta_change *changes, size_t n, uint64_t max_entries,
                       store_done_cb *cb, void *ctx)
{
	if (cb == NULL || n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (changes[i].name == NULL || !store_meta_name_valid(changes[i].name))
			return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.done = cb;
	return thunk_submitted(t, s->backend->metadata_set(s->impl, user_id, mailbox_id, changes, n,
	                                                   max_entries, complete_done, t));
}

int store_recent_take(struct store *s, int64_t mailbox_id, uint32_t upto, store_uids_cb *cb,
                      void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.uids = cb;
	return thunk_submitted(
	    t, s->backend->recent_take(s->impl, mailbox_id, upto, complete_uids, t));
}

int store_deliver(struct store *s, const struct store_deliver_req *req, store_delivery_cb *cb,
                  void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.delivery = cb;
	return thunk_submitted(t, s->backend->deliver(s->impl, req, complete_delivery, t));
}

int store_deliver_batch(struct store *s, const struct store_deliver_req *reqs, size_t n,
                        store_delivery_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.delivery = cb;
	return thunk_submitted(t,
	                       s->backend->deliver_batch(s->impl, reqs, n, complete_delivery, t));
}

int store_message_list(struct store *s, int64_t mailbox_id, uint64_t changed_since,
                       store_msgs_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.msgs = cb;
	return thunk_submitted(
	    t, s->backend->message_list(s->impl, mailbox_id, changed_since, complete_msgs, t));
}

int store_message_get(struct store *s, int64_t mailbox_id, uint32_t uid, store_msgs_cb *cb,
                      void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.msgs = cb;
	return thunk_submitted(t,
	                       s->backend->message_get(s->impl, mailbox_id, uid, complete_msgs, t));
}

int store_message_headers(struct store *s, int64_t mailbox_id, store_msgs_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.msgs = cb;
	return thunk_submitted(t,
	                       s->backend->message_headers(s->impl, mailbox_id, complete_msgs, t));
}

int store_message_sortkeys(struct store *s, int64_t mailbox_id, uint32_t after_uid,
                           store_msgs_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.msgs = cb;
	return thunk_submitted(
	    t, s->backend->message_sortkeys(s->impl, mailbox_id, after_uid, complete_msgs, t));
}

int store_message_structures(struct store *s, int64_t mailbox_id, const uint32_t *uids, size_t n,
                             size_t max_total, bool with_content, store_batch_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.batch = cb;
	return thunk_submitted(t, s->backend->message_structures(s->impl, mailbox_id, uids, n,
	                                                         max_total, with_content,
	                                                         complete_batch, t));
}

int store_content_read_batch(struct store *s, int64_t mailbox_id, const uint32_t *uids, size_t n,
                             size_t max_total, store_batch_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.batch = cb;
	return thunk_submitted(t, s->backend->content_read_batch(s->impl, mailbox_id, uids, n,
	                                                         max_total, complete_batch, t));
}

int store_content_read(struct store *s, int64_t mailbox_id, uint32_t uid, uint64_t offset,
                       size_t max_len, store_content_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.content = cb;
	return thunk_submitted(t, s->backend->content_read(s->impl, mailbox_id, uid, offset,
	                                                   max_len, complete_content, t));
}

int store_flags_store(struct store *s, int64_t mailbox_id, const struct store_uid_range *ranges,
                      size_t n_ranges, enum store_flag_mode mode, unsigned flags,
                      const char *keywords, uint64_t unchanged_since, store_flags_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.flags = cb;
	return thunk_submitted(t, s->backend->flags_store(s->impl, mailbox_id, ranges, n_ranges,
	                                                  mode, flags, keywords, unchanged_since,
	                                                  complete_flags, t));
}

int store_expunge(struct store *s, int64_t mailbox_id, const struct store_uid_range *ranges,
                  size_t n_ranges, store_uids_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.uids = cb;
	return thunk_submitted(
	    t, s->backend->expunge(s->impl, mailbox_id, ranges, n_ranges, complete_uids, t));
}

int store_remove(struct store *s, int64_t mailbox_id, const struct store_uid_range *ranges,
                 size_t n_ranges, store_uids_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.uids = cb;
	return thunk_submitted(
	    t, s->backend->remove(s->impl, mailbox_id, ranges, n_ranges, complete_uids, t));
}

int store_copy(struct store *s, int64_t src_mailbox_id, const struct store_uid_range *ranges,
               size_t n_ranges, int64_t dst_mailbox_id, bool move, store_copied_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.copied = cb;
	return thunk_submitted(t, s->backend->copy(s->impl, src_mailbox_id, ranges, n_ranges,
	                                           dst_mailbox_id, move, complete_copied, t));
}

int store_vanished(struct store *s, int64_t mailbox_id, uint64_t since_modseq, store_uids_cb *cb,
                   void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.uids = cb;
	return thunk_submitted(
	    t, s->backend->vanished(s->impl, mailbox_id, since_modseq, complete_uids, t));
}

int store_search_text(struct store *s, int64_t mailbox_id, const char *text, store_uids_cb *cb,
                      void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.uids = cb;
	return thunk_submitted(
	    t, s->backend->search_text(s->impl, mailbox_id, text, complete_uids, t));
}

int store_search_body(struct store *s, int64_t mailbox_id, const char *text, store_uids_cb *cb,
                      void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.uids = cb;
	return thunk_submitted(
	    t, s->backend->search_body(s->impl, mailbox_id, text, complete_uids, t));
}

int store_queue_list(struct store *s, store_queue_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.queue = cb;
	return thunk_submitted(t, s->backend->queue_list(s->impl, complete_queue, t));
}

int store_backup(struct store *s, const char *path, store_done_cb *cb, void *ctx)
{
	if (cb == NULL || path == NULL)
		return -EINVAL;
	if (s->backend->backup == NULL)
		return -ENOTSUP;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.done = cb;
	return thunk_submitted(t, s->backend->backup(s->impl, path, complete_done, t));
}

static void complete_audit(void *arg, int rc, struct store_backend_result *res)
{
	struct store_thunk *t = arg;
	struct store_audit_records r = {.v = res->audit, .n = res->n_audit};
	res->audit = NULL;
	res->n_audit = 0;
	t->cb.audit(t->ctx, rc, &r);
	store_audit_records_free(&r);
	free(t);
}

static void complete_audit_check(void *arg, int rc, struct store_backend_result *res)
{
	struct store_thunk *t = arg;
	t->cb.audit_check(t->ctx, rc, &res->audit_check);
	free(t);
}

int store_audit_append(struct store *s, const struct store_audit_record *r)
{
	if (r == NULL || r->action == NULL)
		return -EINVAL;
	if (s->backend->audit_append == NULL)
		return -ENOTSUP;
	return s->backend->audit_append(s->impl, r);
}

int store_audit_query(struct store *s, const struct store_audit_filter *f, store_audit_cb *cb,
                      void *ctx)
{
	if (cb == NULL || f == NULL)
		return -EINVAL;
	if (s->backend->audit_query == NULL)
		return -ENOTSUP;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.audit = cb;
	return thunk_submitted(t, s->backend->audit_query(s->impl, f, complete_audit, t));
}

int store_audit_verify(struct store *s, uint64_t anchor_seq, const unsigned char *anchor,
                       store_audit_check_cb *cb, void *ctx)
{
	if (cb == NULL || (anchor_seq > 0 && anchor == NULL))
		return -EINVAL;
	if (s->backend->audit_verify == NULL)
		return -ENOTSUP;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.audit_check = cb;
	return thunk_submitted(
	    t, s->backend->audit_verify(s->impl, anchor_seq, anchor, complete_audit_check, t));
}

int store_queue_summary(struct store *s, store_queue_summary_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.summary = cb;
	return thunk_submitted(t, s->backend->queue_summary(s->impl, complete_summary, t));
}

int store_queue_delete(struct store *s, int64_t queue_id, store_done_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.done = cb;
	return thunk_submitted(t, s->backend->queue_delete(s->impl, queue_id, complete_done, t));
}

int store_queue_due(struct store *s, int64_t now, unsigned lease_seconds, size_t limit,
                    store_queue_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.queue = cb;
	return thunk_submitted(
	    t, s->backend->queue_due(s->impl, now, lease_seconds, limit, complete_queue, t));
}

int store_queue_recover(struct store *s, store_done_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.done = cb;
	return thunk_submitted(t, s->backend->queue_recover(s->impl, complete_done, t));
}

int store_queue_flush(struct store *s, int64_t queue_id, int64_t now, store_done_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.done = cb;
	return thunk_submitted(t,
	                       s->backend->queue_flush(s->impl, queue_id, now, complete_done, t));
}

int store_queue_content_read(struct store *s, int64_t content_id, uint64_t offset, size_t max_len,
                             store_content_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.content = cb;
	return thunk_submitted(t, s->backend->queue_content_read(s->impl, content_id, offset,
	                                                         max_len, complete_content, t));
}

int store_queue_report(struct store *s, const struct store_queue_report *rep,
                       store_queue_reported_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.reported = cb;
	return thunk_submitted(t, s->backend->queue_report(s->impl, rep, complete_reported, t));
}

int store_cert_add(struct store *s, const struct store_cert_new *cert, store_certs_cb *cb,
                   void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.certs = cb;
	return thunk_submitted(t, s->backend->cert_add(s->impl, cert, complete_certs, t));
}

int store_cert_list(struct store *s, int64_t expiring_before, store_certs_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.certs = cb;
	return thunk_submitted(t,
	                       s->backend->cert_list(s->impl, expiring_before, complete_certs, t));
}

int store_cert_get(struct store *s, const char *serial, store_certs_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.certs = cb;
	return thunk_submitted(t, s->backend->cert_get(s->impl, serial, complete_certs, t));
}

int store_cert_find_valid(struct store *s, const char *address, int64_t now, store_certs_cb *cb,
                          void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.certs = cb;
	return thunk_submitted(
	    t, s->backend->cert_find_valid(s->impl, address, now, complete_certs, t));
}

int store_cert_revoke(struct store *s, const char *serial, const char *address, int64_t now,
                      store_certs_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.certs = cb;
	return thunk_submitted(
	    t, s->backend->cert_revoke(s->impl, serial, address, now, complete_certs, t));
}

int store_ping(struct store *s, store_done_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.done = cb;
	return thunk_submitted(t, s->backend->ping(s->impl, complete_done, t));
}

int store_cert_crl_next(struct store *s, store_certs_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.certs = cb;
	return thunk_submitted(t, s->backend->cert_crl_next(s->impl, complete_certs, t));
}

int store_cert_list_revoked(struct store *s, store_certs_cb *cb, void *ctx)
{
	if (cb == NULL)
		return -EINVAL;
	struct store_thunk *t = thunk_new(ctx);
	t->cb.certs = cb;
	return thunk_submitted(t, s->backend->cert_list_revoked(s->impl, complete_certs, t));
}
