#ifndef SEALMAIL_STORE_BACKEND_H
#define SEALMAIL_STORE_BACKEND_H
/*
 * For backend authors: the table of functions behind storage/store.h. The front
 * (storage/store.c) implements every public store_* function by calling the backend the
 * store was opened with; callers never include this header.
 *
 * A backend is one const struct store_backend with a name and one function per operation
 * of store.h. Each operation receives the backend's own state (what open returned in
 * *impl_r) and keeps exactly the contract store.h gives the public function of the same
 * name: returns 0 after queueing the work or a negative errno (and then never calls cb);
 * calls cb exactly once, never from inside the submitting call, through the poster of
 * store_options when one was given, else from a thread of its own (so struct store_sync
 * works). The front has already checked what every backend would check the same way
 * (non-NULL callback); everything else is the backend's.
 *
 * Backends in the tree: "sqlite" (storage/sqlite/, the server's), "mem" (storage/mem/, in
 * memory, for tests), "fault" (storage/fault/, wraps another backend and fails chosen
 * calls, for tests) and "postgresql" (storage/pg/, in progress: docs/postgresql.md).
 * docs/storage.md says how to add one.
 */
#include "storage/store.h"

/*
 * What a backend's operation produces: one generic result with every field an operation
 * may fill, and its callback (res borrowed until it returns). Each operation fills the
 * fields its typed result in store.h is built from (the front's complete_X functions in
 * storage/store.c say which); the front moves them out and frees nothing else: a backend
 * frees its result after the callback, as before.
 */
struct store_backend_result {
	struct store_user *users;
	size_t n_users;
	struct store_mailbox *mailboxes;
	size_t n_mailboxes;
	char **names; /* store_mailbox_list: subscribed names without a mailbox */
	size_t n_names;
	struct store_msg *msgs;
	size_t n_msgs;
	uint32_t *uids; /* expunged / found / copy source UIDs */
	size_t n_uids;
	uint32_t *uids2; /* copy destination UIDs, parallel to uids */
	struct store_delivered *delivered;
	size_t n_delivered;
	struct store_queue_entry *queue;
	size_t n_queue;
	struct store_scram scram;
	unsigned char *data; /* store_content_read */
	size_t data_len;
	uint64_t total_size;
	int64_t id;                      /* content id (deliver), queue id */
	int64_t user_id;                 /* store_auth */
	bool require_client_certificate; /* store_auth */
	uint64_t modseq;                 /* highest modseq after a change */
	uint32_t uidvalidity;
	struct store_cert *certs; /* issued certificates (store_cert_*) */
	size_t n_certs;
	uint64_t crl_number; /* store_cert_revoke, store_cert_crl_next */
	/* store_deliver with a report, when a target failed: 0 the report is stored, -ENODATA
	 * none was wanted, -ENOENT its local recipient is unknown, -EDQUOT that mailbox is
	 * full (the report is dropped, the delivery stands). */
	int report_rc;
	struct store_queue_summary queue_summary; /* store_queue_summary */
	struct store_meta_entry *meta;            /* store_metadata_get */
	size_t n_meta;
	struct store_audit_record *audit; /* store_audit_query */
	size_t n_audit;
	struct store_audit_check audit_check; /* store_audit_verify */
};

typedef void store_backend_cb(void *ctx, int rc, struct store_backend_result *res);

/* Frees every field of res and leaves it empty. */
void store_backend_result_free(struct store_backend_result *res);
/* Moves every field of src into dst (dst's previous contents are freed); src is left empty. */
void store_backend_result_move(struct store_backend_result *dst, struct store_backend_result *src);

struct store_backend {
	const char *name;
	/* Persists across restarts: the configuration offers only these to an administrator. */
	bool persistent;

	int (*open)(const struct store_options *opt, void **impl_r, const char **error_r);
	void (*close)(void *impl);
	void (*stats)(void *impl, uint64_t *commits_r, uint64_t *writes_r);

	int (*user_add)(void *impl, const char *address, const char *password, store_backend_cb *cb,
	                void *ctx);
	int (*user_del)(void *impl, const char *address, store_backend_cb *cb, void *ctx);
	int (*user_passwd)(void *impl, const char *address, const char *password,
	                   store_backend_cb *cb, void *ctx);
	int (*user_set_require_cert)(void *impl, const char *address, bool on, store_backend_cb *cb,
	                             void *ctx);
	int (*user_set_disabled)(void *impl, const char *address, bool on, store_backend_cb *cb,
	                         void *ctx);
	int (*user_set_quota)(void *impl, const char *address, uint64_t bytes, store_backend_cb *cb,
	                      void *ctx);
	int (*user_set_message_quota)(void *impl, const char *address, uint64_t messages,
	                              store_backend_cb *cb, void *ctx);
	int (*user_get)(void *impl, const char *address, store_backend_cb *cb, void *ctx);
	int (*user_list)(void *impl, store_backend_cb *cb, void *ctx);
	int (*auth)(void *impl, const char *address, const char *password, store_backend_cb *cb,
	            void *ctx);
	int (*user_scram)(void *impl, const char *address, store_backend_cb *cb, void *ctx);

	int (*mailbox_list)(void *impl, int64_t user_id, store_backend_cb *cb, void *ctx);
	int (*mailbox_get)(void *impl, int64_t user_id, const char *name, store_backend_cb *cb,
	                   void *ctx);
	int (*mailbox_create)(void *impl, int64_t user_id, const char *name, unsigned special_use,
	                      store_backend_cb *cb, void *ctx);
	int (*mailbox_delete)(void *impl, int64_t user_id, const char *name, store_backend_cb *cb,
	                      void *ctx);
	int (*mailbox_rename)(void *impl, int64_t user_id, const char *name, const char *new_name,
	                      store_backend_cb *cb, void *ctx);
	int (*mailbox_subscribe)(void *impl, int64_t user_id, const char *name, bool on,
	                         store_backend_cb *cb, void *ctx);
	int (*recent_take)(void *impl, int64_t mailbox_id, uint32_t upto, store_backend_cb *cb,
	                   void *ctx);
	int (*metadata_get)(void *impl, int64_t user_id, int64_t mailbox_id,
	                    const char *const *names, size_t n, int depth, store_backend_cb *cb,
	                    void *ctx);
	int (*metadata_set)(void *impl, int64_t user_id, int64_t mailbox_id,
	                    const struct store_meta_change *changes, size_t n, uint64_t max_entries,
	                    store_backend_cb *cb, void *ctx);

	int (*deliver)(void *impl, const struct store_deliver_req *req, store_backend_cb *cb,
	               void *ctx);
	int (*deliver_batch)(void *impl, const struct store_deliver_req *reqs, size_t n,
	                     store_backend_cb *cb, void *ctx);
	int (*message_list)(void *impl, int64_t mailbox_id, uint64_t changed_since,
	                    store_backend_cb *cb, void *ctx);
	int (*message_get)(void *impl, int64_t mailbox_id, uint32_t uid, store_backend_cb *cb,
	                   void *ctx);
	int (*message_headers)(void *impl, int64_t mailbox_id, store_backend_cb *cb, void *ctx);
	int (*message_sortkeys)(void *impl, int64_t mailbox_id, uint32_t after_uid,
	                        store_backend_cb *cb, void *ctx);
	int (*message_structures)(void *impl, int64_t mailbox_id, const uint32_t *uids, size_t n,
	                          size_t max_total, bool with_content, store_backend_cb *cb,
	                          void *ctx);
	int (*content_read_batch)(void *impl, int64_t mailbox_id, const uint32_t *uids, size_t n,
	                          size_t max_total, store_backend_cb *cb, void *ctx);
	int (*content_read)(void *impl, int64_t mailbox_id, uint32_t uid, uint64_t offset,
	                    size_t max_len, store_backend_cb *cb, void *ctx);
	int (*flags_store)(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
	                   size_t n_ranges, enum store_flag_mode mode, unsigned flags,
	                   const char *keywords, uint64_t unchanged_since, store_backend_cb *cb,
	                   void *ctx);
	int (*expunge)(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
	               size_t n_ranges, store_backend_cb *cb, void *ctx);
	int (*remove)(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
	              size_t n_ranges, store_backend_cb *cb, void *ctx);
	int (*copy)(void *impl, int64_t src_mailbox_id, const struct store_uid_range *ranges,
	            size_t n_ranges, int64_t dst_mailbox_id, bool move, store_backend_cb *cb,
	            void *ctx);
	int (*vanished)(void *impl, int64_t mailbox_id, uint64_t since_modseq, store_backend_cb *cb,
	                void *ctx);
	int (*search_text)(void *impl, int64_t mailbox_id, const char *text, store_backend_cb *cb,
	                   void *ctx);
	int (*search_body)(void *impl, int64_t mailbox_id, const char *text, store_backend_cb *cb,
	                   void *ctx);

	int (*queue_list)(void *impl, store_backend_cb *cb, void *ctx);
	int (*queue_summary)(void *impl, store_backend_cb *cb, void *ctx);
	int (*backup)(void *impl, const char *path, store_backend_cb *cb, void *ctx);

	/* The access audit; NULL in a backend without one (store_audit_append then fails
	 * with -ENOTSUP). audit_append has no callback: see store.h. */
	int (*audit_append)(void *impl, const struct store_audit_record *r);
	int (*audit_query)(void *impl, const struct store_audit_filter *f, store_backend_cb *cb,
	                   void *ctx);
	int (*audit_verify)(void *impl, uint64_t anchor_seq, const unsigned char *anchor,
	                    store_backend_cb *cb, void *ctx);
	int (*queue_delete)(void *impl, int64_t queue_id, store_backend_cb *cb, void *ctx);
	int (*queue_due)(void *impl, int64_t now, unsigned lease_seconds, size_t limit,
	                 store_backend_cb *cb, void *ctx);
	int (*queue_recover)(void *impl, store_backend_cb *cb, void *ctx);
	int (*queue_flush)(void *impl, int64_t queue_id, int64_t now, store_backend_cb *cb,
	                   void *ctx);
	int (*queue_content_read)(void *impl, int64_t content_id, uint64_t offset, size_t max_len,
	                          store_backend_cb *cb, void *ctx);
	int (*queue_report)(void *impl, const struct store_queue_report *rep, store_backend_cb *cb,
	                    void *ctx);

	int (*cert_add)(void *impl, const struct store_cert_new *cert, store_backend_cb *cb,
	                void *ctx);
	int (*cert_list)(void *impl, int64_t expiring_before, store_backend_cb *cb, void *ctx);
	int (*cert_get)(void *impl, const char *serial, store_backend_cb *cb, void *ctx);
	int (*cert_find_valid)(void *impl, const char *address, int64_t now, store_backend_cb *cb,
	                       void *ctx);
	int (*cert_revoke)(void *impl, const char *serial, const char *address, int64_t now,
	                   store_backend_cb *cb, void *ctx);
	int (*cert_crl_next)(void *impl, store_backend_cb *cb, void *ctx);
	int (*cert_list_revoked)(void *impl, store_backend_cb *cb, void *ctx);

	int (*ping)(void *impl, store_backend_cb *cb, void *ctx);
};

extern const struct store_backend store_backend_sqlite;
extern const struct store_backend store_backend_mem;
extern const struct store_backend store_backend_fault;
/* storage/pg/: not complete yet (docs/postgresql.md), so not persistent in the table's
 * sense: the configuration does not offer it. */
extern const struct store_backend store_backend_postgresql;

/* The backend called name (the part before a ':' when there is one: "fault:sqlite"), or
 * NULL. NULL and "" name the default, "sqlite". */
const struct store_backend *store_backend_find(const char *name);
/* The names of every backend ("sqlite, mem, fault"), or only of the persistent ones: for
 * error messages. Static storage. */
const char *store_backend_names(bool persistent_only);

/* The backend s was opened with. */
const struct store_backend *store_backend_of(struct store *s);
/* The backend's own state of s (what its open returned): for a backend's white-box tests. */
void *store_backend_impl(struct store *s);

/* ---- Helpers every backend may use (keyword and name rules in storage/sqlite/, they
 * hold no SQL; passwords, SCRAM and addresses in storage/store_password.c; the freeing
 * ones in storage/store_result.c) ---- */

/* Keywords as stored: atoms, sorted, unique, space separated ("" for none; NULL in). 0 or
 * -EINVAL. */
int store_keywords_normalize(const char *in, char **out_r);
/* Keywords cur with delta (both normalized) added (STORE_FLAGS_ADD) or removed
 * (STORE_FLAGS_REMOVE), normalized: malloc'd. */
char *store_keywords_apply(const char *cur, const char *delta, enum store_flag_mode mode);
bool store_mailbox_name_valid(const char *name);
/* SCRAM-SHA-256 material of password with a new salt (all fields malloc'd). 0 or -EIO. */
int store_scram_derive(const char *password, struct store_scram *out);
/* storage/store_password.c: a yescrypt hash of password with a new salt in *hash_r
 * (malloc'd). 0 or -EIO. Slow (about 40 ms): call it on a worker thread. */
int store_password_hash(const char *password, char **hash_r);
/* Whether password matches hash (yescrypt, imported $6$ and $2b$), compared in constant
 * time. */
bool store_password_verify(const char *password, const char *hash);
/* A hash of a random password, made once: check a password against it for an unknown or
 * disabled user, so that the answer takes as long as for a known one. */
const char *store_password_dummy_hash(void);
/* struct store_user's password_tag of the stored hash (hash[0..len)): malloc'd, or NULL. */
char *store_password_tag(const char *hash, size_t len);
void store_user_clear(struct store_user *u);
void store_mailbox_clear(struct store_mailbox *mb);
void store_msg_clear(struct store_msg *m);
void store_cert_free_all(struct store_cert *certs, size_t n);
/* storage/store_meta.c: freeing entries. */
void store_meta_free_all(struct store_meta_entry *v, size_t n);
/* Sorts v[0..n) by name. */
void store_meta_sort(struct store_meta_entry *v, size_t n);

/* ---- Completions from a thread of the backend's own (storage/store_async.c) ----
 * For backends that do their work at submit: results are queued here and handed to the
 * callback in order, through the poster when there is one, else on the completion thread. */
struct store_async;
struct store_async *store_async_new(const struct store_poster *poster);
/* Queues cb(ctx, rc, res): res is moved (left empty). Never calls cb itself. */
void store_async_complete(struct store_async *a, store_backend_cb *cb, void *ctx, int rc,
                          struct store_backend_result *res);
/* Queues change_fn(change_ctx, change) the same way, in order with the completions. */
void store_async_change(struct store_async *a, store_change_fn *fn, void *fn_ctx,
                        const struct store_change *change);
/* Runs everything queued and stops the thread. With a poster, the posted functions may
 * still be pending on the loop: the caller keeps the poster alive until they ran. */
void store_async_free(struct store_async *a);

/* What IMAP needs from a message, computed once at delivery with GMime (store_mime.c;
 * every backend stores the same form, docs/storage.md): the MIME structure as JSON, the
 * decoded header fields SEARCH uses and the decoded text for the text index. */
struct store_mime_info {
	char *json;
	char *from, *to, *cc, *subject, *message_id;
	int64_t date;
	/* SORT and THREAD keys (the sort_* and thread_refs fields of struct store_msg). */
	char *sort_subject;
	bool sort_reply;
	char *sort_from, *sort_to, *sort_cc, *sort_from_name, *sort_to_name;
	char *thread_refs;
	char *text;    /* decoded text for the text index, bounded */
	char *header;  /* the header block for the text index (UTF-8), bounded */
	char *preview; /* RFC 8970 preview (store_preview_make), NULL when none */
};
/* The RFC 8970 preview of a text part's decoded UTF-8 text (html: markup removed): quoted
 * lines and a signature left out, white space folded, at most STORE_PREVIEW_CHARS
 * characters; NULL when nothing is left. */
#define STORE_PREVIEW_CHARS 256
char *store_preview_make(const char *text, size_t len, bool html);
int store_mime_parse_mem(const void *data, size_t size, struct store_mime_info *info);
/* sealed: path is a sealed spool file (store_spool.h). */
int store_mime_parse_file(const char *path, bool sealed, struct store_mime_info *info);
void store_mime_info_clear(struct store_mime_info *info);

#endif
