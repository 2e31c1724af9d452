#ifndef SEALMAIL_STORE_MEM_PRIVATE_H
#define SEALMAIL_STORE_MEM_PRIVATE_H
/*
 * Inside the in-memory store: plain arrays under one lock. Every operation does its work
 * at submit, under the lock, and hands its result to store_async, so callbacks keep the
 * contract of store.h. Sizes are those of tests: every lookup is a linear scan.
 */
#include <pthread.h>

#include "storage/store_backend.h"

struct mem_content {
	int64_t id;
	size_t refs; /* entries and queue entries that use it */
	unsigned char *data;
	size_t size;
};

struct mem_entry {
	uint32_t uid;
	uint64_t modseq;
	unsigned flags;
	char *keywords;
	int64_t internal_date;
	struct mem_content *content;
	uint64_t email_id, thread_id; /* RFC 8474, as the SQLite backend gives them */
	int64_t save_date;
};

struct mem_expunged {
	uint32_t uid;
	uint64_t modseq;
};

struct mem_mailbox {
	int64_t id;
	int64_t user_id;
	char *name;
	unsigned special_use;
	uint32_t uidvalidity;
	uint32_t recent_uid; /* first UID not taken as \Recent (store_recent_take) */
	uint32_t uidnext;
	uint64_t highest_modseq;
	uint64_t objectid;         /* MAILBOXID */
	struct mem_entry *entries; /* UID order */
	size_t n_entries;
	struct mem_expunged *expunged;
	size_t n_expunged;
};

struct mem_user {
	int64_t id;
	char *address;
	unsigned char salt[16];
	unsigned char hash[32]; /* SHA-256 of salt and password */
	struct store_scram scram;
	bool require_cert;
	bool disabled;
	uint64_t quota;
	uint64_t quota_messages; /* 0 = unlimited */
	char **subs;             /* subscribed names, in no order */
	size_t n_subs;
	struct mem_thread_ref *threads; /* Message-IDs named and their THREADID */
	size_t n_threads;
};

struct mem_thread_ref {
	char *message_id;
	uint64_t thread_id;
};

struct mem_rcpt {
	int64_t id;
	char *address, *notify, *orcpt, *last_error;
	int status;
	unsigned attempts;
	int64_t next_attempt;
};

struct mem_queued {
	int64_t id;
	struct mem_content *content;
	char *sender, *ret, *envid;
	bool requiretls;
	int64_t created;
	struct mem_rcpt *rcpts;
	size_t n_rcpts;
};

/* An annotation (IMAP METADATA): mailbox_id 0 for the user's server annotations. */
struct mem_annot {
	int64_t user_id;
	int64_t mailbox_id;
	char *name;
	unsigned char *value;
	size_t len;
};

struct mem_store {
	pthread_mutex_t lock;
	struct store_async *async;
	store_change_fn *on_change;
	void *change_ctx;
	uint64_t max_message_size;
	bool spool_sealed;
	int64_t next_id; /* one sequence for every id: ids are never reused */
	uint32_t last_uidvalidity;
	uint64_t writes;

	struct mem_user *users;
	size_t n_users;
	struct mem_mailbox **mailboxes;
	size_t n_mailboxes;
	struct mem_content **contents;
	size_t n_contents;
	struct mem_queued *queue;
	size_t n_queue;
	struct store_cert *certs;
	size_t n_certs;
	uint64_t crl_number;
	struct mem_annot *annots;
	size_t n_annots;
	struct store_audit_record *audit; /* store_mem_audit.c: seq i + 1 at [i] */
	size_t n_audit;
};

/* store_mem.c */
struct mem_user *mem_user_by_id(struct mem_store *m, int64_t id);
struct mem_user *mem_user_by_address(struct mem_store *m, const char *address);
struct mem_mailbox *mem_mailbox_by_id(struct mem_store *m, int64_t id);
struct mem_mailbox *mem_mailbox_by_name(struct mem_store *m, int64_t user_id, const char *name);
struct mem_mailbox *mem_mailbox_add(struct mem_store *m, int64_t user_id, const char *name,
                                    unsigned special_use);
uint64_t mem_user_used(struct mem_store *m, int64_t user_id);
/* Messages in all the user's mailboxes. */
uint64_t mem_user_messages(struct mem_store *m, int64_t user_id);
/* Whether adding n messages of size bytes (in all) would pass u's limits. */
bool mem_user_over(struct mem_store *m, const struct mem_user *u, uint64_t n, uint64_t size);
/* Hands the result on (under the lock: keeps the order of completions) and counts writes. */
void mem_done(struct mem_store *m, store_backend_cb *cb, void *ctx, int rc,
              struct store_backend_result *res, bool write);
/* Announces the mailbox's state to on_change. */
void mem_note(struct mem_store *m, const struct mem_mailbox *mb);

/* Largest read a content call returns. */
#define MEM_READ_MAX (1024 * 1024)

/* store_mem_msg.c */
struct mem_content *mem_content_get(struct mem_store *m, const void *data, size_t size);
void mem_content_unref(struct mem_store *m, struct mem_content *c);
void mem_entry_clear(struct mem_store *m, struct mem_entry *e);
/* Appends a message to mb with a new UID and modseq, saved now: a copy of from (its
 * EMAILID and THREADID), or with from NULL a new message (new ids, its thread). */
int mem_entry_add(struct mem_store *m, struct mem_mailbox *mb, struct mem_content *c,
                  unsigned flags, const char *keywords, int64_t internal_date,
                  const struct mem_entry *from, uint32_t *uid_r);

/* store_mem_thread.c */
uint64_t mem_random64(void);
/* The THREADID of user_id's new message c (as store_thread.c decides it for SQLite). */
uint64_t mem_thread_assign(struct mem_store *m, int64_t user_id, const struct mem_content *c);
void mem_threads_free(struct mem_user *u);
/* Moves every message of src to dst with new UIDs (renaming INBOX). */
void mem_entries_move_all(struct mem_store *m, struct mem_mailbox *src, struct mem_mailbox *dst);
struct mem_content *mem_content_by_id(struct mem_store *m, int64_t id);
/* Bytes [offset, offset + max_len) of c into res (data, data_len, total_size). */
void mem_content_range(const struct mem_content *c, uint64_t offset, size_t max_len,
                       struct store_backend_result *res);
/* A report or DSN: into the INBOX of a local user, else onto the queue with the null
 * sender. 0, -ENOENT or -EDQUOT. */
int mem_report_place(struct mem_store *m, const void *msg, size_t len, const char *to, bool local,
                     bool requiretls, int64_t *queue_id_r);
/* store_mem_meta.c: annotations. Drops those of a mailbox (mailbox_id > 0) or of a user
 * (mailbox_id 0: all of them); copies a mailbox's to another (renaming INBOX); frees all. */
void mem_meta_drop(struct mem_store *m, int64_t user_id, int64_t mailbox_id);
void mem_meta_copy(struct mem_store *m, int64_t src, int64_t dst);
void mem_meta_free(struct mem_store *m);
int mem_store_metadata_get(void *impl, int64_t user_id, int64_t mailbox_id,
                           const char *const *names, size_t n, int depth, store_backend_cb *cb,
                           void *ctx);
int mem_store_metadata_set(void *impl, int64_t user_id, int64_t mailbox_id,
                           const struct store_meta_change *changes, size_t n, uint64_t max_entries,
                           store_backend_cb *cb, void *ctx);
/* store_mem_queue.c */
void mem_queued_clear(struct mem_store *m, struct mem_queued *q);

/* The operations (store_backend_mem in store_mem.c). */
int mem_store_deliver(void *impl, const struct store_deliver_req *req, store_backend_cb *cb,
                      void *ctx);
int mem_store_deliver_batch(void *impl, const struct store_deliver_req *reqs, size_t n,
                            store_backend_cb *cb, void *ctx);
int mem_store_message_list(void *impl, int64_t mailbox_id, uint64_t changed_since,
                           store_backend_cb *cb, void *ctx);
int mem_store_message_get(void *impl, int64_t mailbox_id, uint32_t uid, store_backend_cb *cb,
                          void *ctx);
int mem_store_message_headers(void *impl, int64_t mailbox_id, store_backend_cb *cb, void *ctx);
int mem_store_message_sortkeys(void *impl, int64_t mailbox_id, uint32_t after_uid,
                               store_backend_cb *cb, void *ctx);
int mem_store_message_structures(void *impl, int64_t mailbox_id, const uint32_t *uids, size_t n,
                                 size_t max_total, bool with_content, store_backend_cb *cb,
                                 void *ctx);
int mem_store_content_read_batch(void *impl, int64_t mailbox_id, const uint32_t *uids, size_t n,
                                 size_t max_total, store_backend_cb *cb, void *ctx);
int mem_store_content_read(void *impl, int64_t mailbox_id, uint32_t uid, uint64_t offset,
                           size_t max_len, store_backend_cb *cb, void *ctx);
int mem_store_flags_store(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
                          size_t n_ranges, enum store_flag_mode mode, unsigned flags,
                          const char *keywords, uint64_t unchanged_since, store_backend_cb *cb,
                          void *ctx);
int mem_store_expunge(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
                      size_t n_ranges, store_backend_cb *cb, void *ctx);
int mem_store_remove(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
                     size_t n_ranges, store_backend_cb *cb, void *ctx);
int mem_store_copy(void *impl, int64_t src_mailbox_id, const struct store_uid_range *ranges,
                   size_t n_ranges, int64_t dst_mailbox_id, bool move, store_backend_cb *cb,
                   void *ctx);
int mem_store_vanished(void *impl, int64_t mailbox_id, uint64_t since_modseq, store_backend_cb *cb,
                       void *ctx);
int mem_store_search_text(void *impl, int64_t mailbox_id, const char *text, store_backend_cb *cb,
                          void *ctx);
int mem_store_search_body(void *impl, int64_t mailbox_id, const char *text, store_backend_cb *cb,
                          void *ctx);
int mem_store_queue_list(void *impl, store_backend_cb *cb, void *ctx);
int mem_store_queue_summary(void *impl, store_backend_cb *cb, void *ctx);
int mem_store_queue_delete(void *impl, int64_t queue_id, store_backend_cb *cb, void *ctx);
int mem_store_queue_due(void *impl, int64_t now, unsigned lease_seconds, size_t limit,
                        store_backend_cb *cb, void *ctx);
int mem_store_queue_recover(void *impl, store_backend_cb *cb, void *ctx);
int mem_store_queue_flush(void *impl, int64_t queue_id, int64_t now, store_backend_cb *cb,
                          void *ctx);
int mem_store_queue_content_read(void *impl, int64_t content_id, uint64_t offset, size_t max_len,
                                 store_backend_cb *cb, void *ctx);
int mem_store_queue_report(void *impl, const struct store_queue_report *rep, store_backend_cb *cb,
                           void *ctx);

/* store_mem_audit.c */
int mem_store_audit_append(void *impl, const struct store_audit_record *r);
int mem_store_audit_query(void *impl, const struct store_audit_filter *f, store_backend_cb *cb,
                          void *ctx);
int mem_store_audit_verify(void *impl, uint64_t anchor_seq, const unsigned char *anchor,
                           store_backend_cb *cb, void *ctx);
void mem_audit_free(struct mem_store *m);

#endif
