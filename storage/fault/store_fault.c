/*
 * The fault-injecting backend (storage/fault/store_fault.h): every operation passes to an
 * inner store unless a rule fails it, at submit or through its callback.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "storage/fault/store_fault.h"
#include "storage/store_backend.h"

struct fault_rule {
	char *op; /* NULL: every operation */
	unsigned nth;
	int rc;
	bool at_submit;
	unsigned seen;
};

struct fault_count {
	const char *op; /* static: the operation's name */
	unsigned calls;
};

#define FAULT_MAX_OPS 64

struct fault_store {
	struct store *inner;
	/* The inner store's backend and state: calls go to it directly, so every completion
	 * reaches the front's own with the backend's result, as from any backend. */
	const struct store_backend *inner_b;
	void *inner_impl;
	struct store_async *async;
	pthread_mutex_t lock;
	struct fault_rule *rules;
	size_t n_rules;
	struct fault_count counts[FAULT_MAX_OPS];
	size_t n_counts;
	unsigned calls, failed;
};

static int fault_open(const struct store_options *opt, void **impl_r, const char **error_r)
{
	const char *colon = opt->backend != NULL ? strchr(opt->backend, ':') : NULL;
	struct store_options inner = *opt;
	inner.backend = colon != NULL ? colon + 1 : "mem";
	if (store_backend_find(inner.backend) == &store_backend_fault) {
		*error_r = "the fault backend cannot wrap itself";
		return -EINVAL;
	}
	struct fault_store *f = xcalloc(1, sizeof(*f));
	int rc = store_open(&inner, &f->inner, error_r);
	if (rc < 0) {
		free(f);
		return rc;
	}
	f->inner_b = store_backend_of(f->inner);
	f->inner_impl = store_backend_impl(f->inner);
	f->async = store_async_new(opt->poster);
	pthread_mutex_init(&f->lock, NULL);
	*impl_r = f;
	return 0;
}

static void rules_free(struct fault_store *f)
{
	for (size_t i = 0; i < f->n_rules; i++)
		free(f->rules[i].op);
	free(f->rules);
	f->rules = NULL;
	f->n_rules = 0;
}

static void fault_close(void *impl)
{
	struct fault_store *f = impl;
	store_close(f->inner);
	store_async_free(f->async);
	rules_free(f);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static void fault_stats(void *impl, uint64_t *commits_r, uint64_t *writes_r)
{
	struct fault_store *f = impl;
	store_stats(f->inner_impl, commits_r, writes_r);
}

static struct fault_store *fault_of(struct store *s)
{
	return store_backend_of(s) == &store_backend_fault ? store_backend_impl(s) : NULL;
}

int store_fault_add(struct store *s, const struct store_fault_rule *rule)
{
	struct fault_store *f = fault_of(s);
	if (f == NULL || rule->rc >= 0)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	f->rules = xreallocarray(f->rules, f->n_rules + 1, sizeof(*f->rules));
	f->rules[f->n_rules++] = (struct fault_rule){
	    .op = rule->op != NULL ? xstrdup(rule->op) : NULL,
	    .nth = rule->nth,
	    .rc = rule->rc,
	    .at_submit = rule->at_submit,
	};
	pthread_mutex_unlock(&f->lock);
	return 0;
}

void store_fault_clear(struct store *s)
{
	struct fault_store *f = fault_of(s);
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->lock);
	rules_free(f);
	pthread_mutex_unlock(&f->lock);
}

unsigned store_fault_calls(struct store *s, const char *op)
{
	struct fault_store *f = fault_of(s);
	unsigned n = 0;
	if (f == NULL)
		return 0;
	pthread_mutex_lock(&f->lock);
	if (op == NULL)
		n = f->calls;
	for (size_t i = 0; op != NULL && i < f->n_counts; i++)
		if (strcmp(f->counts[i].op, op) == 0)
			n = f->counts[i].calls;
	pthread_mutex_unlock(&f->lock);
	return n;
}

unsigned store_fault_failed(struct store *s)
{
	struct fault_store *f = fault_of(s);
	if (f == NULL)
		return 0;
	pthread_mutex_lock(&f->lock);
	unsigned n = f->failed;
	pthread_mutex_unlock(&f->lock);
	return n;
}

/* Counts the call and applies the first rule that fires: 1 to pass the call on, 0 when it
 * was failed through its callback, or the negative errno to return at submit. */
static int fault_check(struct fault_store *f, const char *op, store_backend_cb *cb, void *ctx)
{
	int rc = 1;
	pthread_mutex_lock(&f->lock);
	f->calls++;
	size_t i;
	for (i = 0; i < f->n_counts && strcmp(f->counts[i].op, op) != 0; i++)
		;
	if (i == f->n_counts && i < FAULT_MAX_OPS)
		f->counts[f->n_counts++].op = op;
	if (i < f->n_counts)
		f->counts[i].calls++;
	for (size_t r = 0; r < f->n_rules && rc == 1; r++) {
		struct fault_rule *fr = &f->rules[r];
		if (fr->op != NULL && strcmp(fr->op, op) != 0)
			continue;
		fr->seen++;
		if (fr->nth != 0 && fr->seen != fr->nth)
			continue;
		f->failed++;
		if (fr->at_submit || cb == NULL) { /* an operation without a callback */
			rc = fr->rc;
		} else {
			store_async_complete(f->async, cb, ctx, fr->rc, NULL);
			rc = 0;
		}
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

#define FAULT_OP(name, params, args)                                                               \
	static int fault_##name params                                                             \
	{                                                                                          \
		struct fault_store *f = impl;                                                      \
		int rc_ = fault_check(f, #name, cb, ctx);                                          \
		return rc_ != 1 ? rc_ : f->inner_b->name args;                                     \
	}

FAULT_OP(user_add,
         (void *impl, const char *address, const char *password, store_backend_cb *cb, void *ctx),
         (f->inner_impl, address, password, cb, ctx))
FAULT_OP(user_del, (void *impl, const char *address, store_backend_cb *cb, void *ctx),
         (f->inner_impl, address, cb, ctx))
FAULT_OP(user_passwd,
         (void *impl, const char *address, const char *password, store_backend_cb *cb, void *ctx),
         (f->inner_impl, address, password, cb, ctx))
FAULT_OP(user_set_require_cert,
         (void *impl, const char *address, bool on, store_backend_cb *cb, void *ctx),
         (f->inner_impl, address, on, cb, ctx))
FAULT_OP(user_set_disabled,
         (void *impl, const char *address, bool on, store_backend_cb *cb, void *ctx),
         (f->inner_impl, address, on, cb, ctx))
FAULT_OP(user_set_quota,
         (void *impl, const char *address, uint64_t bytes, store_backend_cb *cb, void *ctx),
         (f->inner_impl, address, bytes, cb, ctx))
FAULT_OP(user_set_message_quota,
         (void *impl, const char *address, uint64_t messages, store_backend_cb *cb, void *ctx),
         (f->inner_impl, address, messages, cb, ctx))
FAULT_OP(user_get, (void *impl, const char *address, store_backend_cb *cb, void *ctx),
         (f->inner_impl, address, cb, ctx))
FAULT_OP(user_list, (void *impl, store_backend_cb *cb, void *ctx), (f->inner_impl, cb, ctx))
FAULT_OP(auth,
         (void *impl, const char *address, const char *password, store_backend_cb *cb, void *ctx),
         (f->inner_impl, address, password, cb, ctx))
FAULT_OP(user_scram, (void *impl, const char *address, store_backend_cb *cb, void *ctx),
         (f->inner_impl, address, cb, ctx))
FAULT_OP(mailbox_list, (void *impl, int64_t user_id, store_backend_cb *cb, void *ctx),
         (f->inner_impl, user_id, cb, ctx))
FAULT_OP(mailbox_get,
         (void *impl, int64_t user_id, const char *name, store_backend_cb *cb, void *ctx),
         (f->inner_impl, user_id, name, cb, ctx))
FAULT_OP(mailbox_create,
         (void *impl, int64_t user_id, const char *name, unsigned special_use, store_backend_cb *cb,
          void *ctx),
         (f->inner_impl, user_id, name, special_use, cb, ctx))
FAULT_OP(mailbox_delete,
         (void *impl, int64_t user_id, const char *name, store_backend_cb *cb, void *ctx),
         (f->inner_impl, user_id, name, cb, ctx))
FAULT_OP(mailbox_rename,
         (void *impl, int64_t user_id, const char *name, const char *new_name, store_backend_cb *cb,
          void *ctx),
         (f->inner_impl, user_id, name, new_name, cb, ctx))
FAULT_OP(mailbox_subscribe,
         (void *impl, int64_t user_id, const char *name, bool on, store_backend_cb *cb, void *ctx),
         (f->inner_impl, user_id, name, on, cb, ctx))
FAULT_OP(recent_take,
         (void *impl, int64_t mailbox_id, uint32_t upto, store_backend_cb *cb, void *ctx),
         (f->inner_impl, mailbox_id, upto, cb, ctx))
FAULT_OP(metadata_get,
         (void *impl, int64_t user_id, int64_t mailbox_id, const char *const *names, size_t n,
          int depth, store_backend_cb *cb, void *ctx),
         (f->inner_impl, user_id, mailbox_id, names, n, depth, cb, ctx))
FAULT_OP(metadata_set,
         (void *impl, int64_t user_id, int64_t mailbox_id, const struct store_meta_change *changes,
          size_t n, uint64_t max_entries, store_backend_cb *cb, void *ctx),
         (f->inner_impl, user_id, mailbox_id, changes, n, max_entries, cb, ctx))
FAULT_OP(deliver,
         (void *impl, const struct store_deliver_req *req, store_backend_cb *cb, void *ctx),
         (f->inner_impl, req, cb, ctx))
FAULT_OP(deliver_batch,
         (void *impl, const struct store_deliver_req *reqs, size_t n, store_backend_cb *cb,
          void *ctx),
         (f->inner_impl, reqs, n, cb, ctx))
FAULT_OP(message_list,
         (void *impl, int64_t mailbox_id, uint64_t changed_since, store_backend_cb *cb, void *ctx),
         (f->inner_impl, mailbox_id, changed_since, cb, ctx))
FAULT_OP(message_get,
         (void *impl, int64_t mailbox_id, uint32_t uid, store_backend_cb *cb, void *ctx),
         (f->inner_impl, mailbox_id, uid, cb, ctx))
FAULT_OP(message_headers, (void *impl, int64_t mailbox_id, store_backend_cb *cb, void *ctx),
         (f->inner_impl, mailbox_id, cb, ctx))
FAULT_OP(message_sortkeys,
         (void *impl, int64_t mailbox_id, uint32_t after_uid, store_backend_cb *cb, void *ctx),
         (f->inner_impl, mailbox_id, after_uid, cb, ctx))
FAULT_OP(message_structures,
         (void *impl, int64_t mailbox_id, const uint32_t *uids, size_t n, size_t max_total,
          bool with_content, store_backend_cb *cb, void *ctx),
         (f->inner_impl, mailbox_id, uids, n, max_total, with_content, cb, ctx))
FAULT_OP(content_read_batch,
         (void *impl, int64_t mailbox_id, const uint32_t *uids, size_t n, size_t max_total,
          store_backend_cb *cb, void *ctx),
         (f->inner_impl, mailbox_id, uids, n, max_total, cb, ctx))
FAULT_OP(content_read,
         (void *impl, int64_t mailbox_id, uint32_t uid, uint64_t offset, size_t max_len,
          store_backend_cb *cb, void *ctx),
         (f->inner_impl, mailbox_id, uid, offset, max_len, cb, ctx))
FAULT_OP(flags_store,
         (void *impl, int64_t mailbox_id, const struct store_uid_range *ranges, size_t n_ranges,
          enum store_flag_mode mode, unsigned flags, const char *keywords, uint64_t unchanged_since,
          store_backend_cb *cb, void *ctx),
         (f->inner_impl, mailbox_id, ranges, n_ranges, mode, flags, keywords, unchanged_since, cb,
          ctx))
FAULT_OP(expunge,
         (void *impl, int64_t mailbox_id, const struct store_uid_range *ranges, size_t n_ranges,
          store_backend_cb *cb, void *ctx),
         (f->inner_impl, mailbox_id, ranges, n_ranges, cb, ctx))
FAULT_OP(remove,
         (void *impl, int64_t mailbox_id, const struct store_uid_range *ranges, size_t n_ranges,
          store_backend_cb *cb, void *ctx),
         (f->inner_impl, mailbox_id, ranges, n_ranges, cb, ctx))
FAULT_OP(copy,
         (void *impl, int64_t src_mailbox_id, const struct store_uid_range *ranges, size_t n_ranges,
          int64_t dst_mailbox_id, bool move, store_backend_cb *cb, void *ctx),
         (f->inner_impl, src_mailbox_id, ranges, n_ranges, dst_mailbox_id, move, cb, ctx))
FAULT_OP(vanished,
         (void *impl, int64_t mailbox_id, uint64_t since_modseq, store_backend_cb *cb, void *ctx),
         (f->inner_impl, mailbox_id, since_modseq, cb, ctx))
FAULT_OP(search_text,
         (void *impl, int64_t mailbox_id, const char *text, store_backend_cb *cb, void *ctx),
         (f->inner_impl, mailbox_id, text, cb, ctx))
FAULT_OP(search_body,
         (void *impl, int64_t mailbox_id, const char *text, store_backend_cb *cb, void *ctx),
         (f->inner_impl, mailbox_id, text, cb, ctx))
FAULT_OP(queue_list, (void *impl, store_backend_cb *cb, void *ctx), (f->inner_impl, cb, ctx))
FAULT_OP(queue_summary, (void *impl, store_backend_cb *cb, void *ctx), (f->inner_impl, cb, ctx))
static int fault_backup(void *impl, const char *path, store_backend_cb *cb, void *ctx)
{
	struct fault_store *f = impl;
	if (f->inner_b->backup == NULL)
		return -ENOTSUP;
	int rc = fault_check(f, "backup", cb, ctx);
	return rc != 1 ? rc : f->inner_b->backup(f->inner_impl, path, cb, ctx);
}
static int fault_audit_append(void *impl, const struct store_audit_record *r)
{
	struct fault_store *f = impl;
	if (f->inner_b->audit_append == NULL)
		return -ENOTSUP;
	int rc = fault_check(f, "audit_append", NULL, NULL);
	return rc != 1 ? rc : f->inner_b->audit_append(f->inner_impl, r);
}
static int fault_audit_query(void *impl, const struct store_audit_filter *flt, store_backend_cb *cb,
                             void *ctx)
{
	struct fault_store *f = impl;
	if (f->inner_b->audit_query == NULL)
		return -ENOTSUP;
	int rc = fault_check(f, "audit_query", cb, ctx);
	return rc != 1 ? rc : f->inner_b->audit_query(f->inner_impl, flt, cb, ctx);
}
static int fault_audit_verify(void *impl, uint64_t anchor_seq, const unsigned char *anchor,
                              store_backend_cb *cb, void *ctx)
{
	struct fault_store *f = impl;
	if (f->inner_b->audit_verify == NULL)
		return -ENOTSUP;
	int rc = fault_check(f, "audit_verify", cb, ctx);
	return rc != 1 ? rc : f->inner_b->audit_verify(f->inner_impl, anchor_seq, anchor, cb, ctx);
}
FAULT_OP(queue_delete, (void *impl, int64_t queue_id, store_backend_cb *cb, void *ctx),
         (f->inner_impl, queue_id, cb, ctx))
FAULT_OP(queue_due,
         (void *impl, int64_t now, unsigned lease_seconds, size_t limit, store_backend_cb *cb,
          void *ctx),
         (f->inner_impl, now, lease_seconds, limit, cb, ctx))
FAULT_OP(queue_recover, (void *impl, store_backend_cb *cb, void *ctx), (f->inner_impl, cb, ctx))
FAULT_OP(queue_flush, (void *impl, int64_t queue_id, int64_t now, store_backend_cb *cb, void *ctx),
         (f->inner_impl, queue_id, now, cb, ctx))
FAULT_OP(queue_content_read,
         (void *impl, int64_t content_id, uint64_t offset, size_t max_len, store_backend_cb *cb,
          void *ctx),
         (f->inner_impl, content_id, offset, max_len, cb, ctx))
FAULT_OP(queue_report,
         (void *impl, const struct store_queue_report *rep, store_backend_cb *cb, void *ctx),
         (f->inner_impl, rep, cb, ctx))
FAULT_OP(cert_add, (void *impl, const struct store_cert_new *cert, store_backend_cb *cb, void *ctx),
         (f->inner_impl, cert, cb, ctx))
FAULT_OP(cert_list, (void *impl, int64_t expiring_before, store_backend_cb *cb, void *ctx),
         (f->inner_impl, expiring_before, cb, ctx))
FAULT_OP(cert_get, (void *impl, const char *serial, store_backend_cb *cb, void *ctx),
         (f->inner_impl, serial, cb, ctx))
FAULT_OP(cert_find_valid,
         (void *impl, const char *address, int64_t now, store_backend_cb *cb, void *ctx),
         (f->inner_impl, address, now, cb, ctx))
FAULT_OP(cert_revoke,
         (void *impl, const char *serial, const char *address, int64_t now, store_backend_cb *cb,
          void *ctx),
         (f->inner_impl, serial, address, now, cb, ctx))
FAULT_OP(cert_crl_next, (void *impl, store_backend_cb *cb, void *ctx), (f->inner_impl, cb, ctx))
FAULT_OP(ping, (void *impl, store_backend_cb *cb, void *ctx), (f->inner_impl, cb, ctx))
FAULT_OP(cert_list_revoked, (void *impl, store_backend_cb *cb, void *ctx), (f->inner_impl, cb, ctx))

const struct store_backend store_backend_fault = {
    .name = "fault",
    .persistent = false,
    .open = fault_open,
    .close = fault_close,
    .stats = fault_stats,
    .user_add = fault_user_add,
    .user_del = fault_user_del,
    .user_passwd = fault_user_passwd,
    .user_set_require_cert = fault_user_set_require_cert,
    .user_set_disabled = fault_user_set_disabled,
    .user_set_quota = fault_user_set_quota,
    .user_set_message_quota = fault_user_set_message_quota,
    .user_get = fault_user_get,
    .user_list = fault_user_list,
    .auth = fault_auth,
    .user_scram = fault_user_scram,
    .mailbox_list = fault_mailbox_list,
    .mailbox_get = fault_mailbox_get,
    .mailbox_create = fault_mailbox_create,
    .mailbox_delete = fault_mailbox_delete,
    .mailbox_rename = fault_mailbox_rename,
    .mailbox_subscribe = fault_mailbox_subscribe,
    .metadata_get = fault_metadata_get,
    .metadata_set = fault_metadata_set,
    .recent_take = fault_recent_take,
    .deliver = fault_deliver,
    .deliver_batch = fault_deliver_batch,
    .message_list = fault_message_list,
    .message_get = fault_message_get,
    .message_headers = fault_message_headers,
    .message_sortkeys = fault_message_sortkeys,
    .message_structures = fault_message_structures,
    .content_read_batch = fault_content_read_batch,
    .content_read = fault_content_read,
    .flags_store = fault_flags_store,
    .expunge = fault_expunge,
    .remove = fault_remove,
    .copy = fault_copy,
    .vanished = fault_vanished,
    .search_text = fault_search_text,
    .search_body = fault_search_body,
    .queue_list = fault_queue_list,
    .queue_summary = fault_queue_summary,
    .backup = fault_backup,
    .audit_append = fault_audit_append,
    .audit_query = fault_audit_query,
    .audit_verify = fault_audit_verify,
    .queue_delete = fault_queue_delete,
    .queue_due = fault_queue_due,
    .queue_recover = fault_queue_recover,
    .queue_flush = fault_queue_flush,
    .queue_content_read = fault_queue_content_read,
    .queue_report = fault_queue_report,
    .cert_add = fault_cert_add,
    .cert_list = fault_cert_list,
    .cert_get = fault_cert_get,
    .cert_find_valid = fault_cert_find_valid,
    .cert_revoke = fault_cert_revoke,
    .cert_crl_next = fault_cert_crl_next,
    .ping = fault_ping,
    .cert_list_revoked = fault_cert_list_revoked,
};
