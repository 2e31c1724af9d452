#ifndef SEALMAIL_STORE_PRIVATE_H
#define SEALMAIL_STORE_PRIVATE_H
/*
 * Inside the SQLite store: connections with their prepared statements, the job queues of
 * the writer and the workers, and the pieces each operation file shares. Only
 * storage/sqlite/ includes this (and sqlite3.h).
 */
#include <pthread.h>
#include <sqlite3.h>

#include "storage/store_backend.h"

#define STORE_SCHEMA_VERSION 12
#define STORE_BLOB_CHUNK     (64 * 1024)
#define STORE_READ_MAX       (1024 * 1024)
#define STORE_MAX_BATCH      4096
#define STORE_GATHER_MAX_NS  (10 * 1000 * 1000) /* longest wait for writes being prepared */
#define STORE_CKPT_PAGES     4096  /* WAL frames not yet copied that start a checkpoint */
#define STORE_CKPT_MAX_PAGES 16384 /* WAL frames past which the writer checkpoints itself */
#define STORE_MIME_DEPTH     32
#define STORE_MIME_PARTS     1000
#define STORE_MIME_HEADERS   1000
#define STORE_MIME_ADDRS     1000 /* addresses kept per ENVELOPE field */
#define STORE_MIME_VERSION   2    /* "v" of the stored structure, docs/storage.md */
#define STORE_FTS_MAX        (1024 * 1024)

/* Every SQL statement, prepared at most once per connection (store_sql.c). */
enum store_sql {
	SQL_BEGIN,
	SQL_BEGIN_READ,
	SQL_COMMIT,
	SQL_ROLLBACK,
	SQL_SAVEPOINT,
	SQL_RELEASE,
	SQL_ROLLBACK_TO,
	SQL_USER_INSERT,
	SQL_USER_BY_ADDRESS,
	SQL_USER_LIST,
	SQL_USER_DELETE,
	SQL_USER_SET_PASSWORD,
	SQL_USER_SET_REQUIRE_CERT,
	SQL_USER_SET_DISABLED,
	SQL_USER_SET_QUOTA,
	SQL_USER_SET_MESSAGE_QUOTA,
	SQL_USER_AUTH,
	SQL_USER_SCRAM,
	SQL_MAILBOX_INSERT,
	SQL_MAILBOX_LIST,
	SQL_MAILBOX_BY_NAME,
	SQL_MAILBOX_BY_ID,
	SQL_MAILBOX_DELETE,
	SQL_MAILBOX_RENAME,
	SQL_SUBSCRIBE_ADD,
	SQL_SUBSCRIBE_DEL,
	SQL_SUBSCRIBED_MISSING,
	SQL_RECENT_GET,
	SQL_RECENT_SET,
	SQL_ENTRY_UIDS_BETWEEN,
	SQL_MAILBOX_BUMP,
	SQL_MAILBOX_STATE,
	SQL_CONTENT_BY_HASH,
	SQL_CONTENT_INSERT,
	SQL_FTS_INSERT,
	SQL_SORTKEY_INSERT,
	SQL_PREVIEW_INSERT,
	SQL_THREAD_KEYS,
	SQL_THREAD_FIND,
	SQL_THREAD_ADD,
	SQL_ENTRY_INSERT,
	SQL_ENTRY_LIST,
	SQL_ENTRY_LIST_SINCE,
	SQL_ENTRY_GET,
	SQL_ENTRY_CONTENT,
	SQL_ENTRY_RANGE,
	SQL_ENTRY_SET_FLAGS,
	SQL_ENTRY_DELETED_RANGE,
	SQL_ENTRY_DELETE,
	SQL_EXPUNGED_INSERT,
	SQL_EXPUNGED_SINCE,
	SQL_QUOTA_CHECK,
	SQL_DELIVER_INBOX,
	SQL_DELIVER_MAILBOX,
	SQL_DELIVER_BUMP,
	SQL_QUEUE_INSERT,
	SQL_QUEUE_RCPT_INSERT,
	SQL_QUEUE_LIST,
	SQL_QUEUE_RCPTS,
	SQL_QUEUE_DELETE,
	SQL_QUEUE_DUE,
	SQL_QUEUE_GET,
	SQL_QUEUE_RCPTS_DUE,
	SQL_QUEUE_RCPT_LEASE,
	SQL_QUEUE_RCPT_SET,
	SQL_QUEUE_PENDING,
	SQL_QUEUE_FLUSH,
	SQL_QUEUE_RECOVER,
	SQL_CONTENT_SIZE,
	SQL_SEARCH_TEXT,
	SQL_SEARCH_SCAN,
	SQL_CERT_INSERT,
	SQL_CERT_BY_SERIAL,
	SQL_CERT_LIST,
	SQL_CERT_VALID_BY_ADDRESS,
	SQL_CERT_REVOKE,
	SQL_CERT_REVOKED,
	SQL_CRL_NEXT,
	SQL_META_OWNED,
	SQL_META_GET,
	SQL_META_UPDATE,
	SQL_META_INSERT,
	SQL_META_DELETE,
	SQL_META_COUNT,
	SQL_META_COPY,
	SQL_STRUCTS,
	SQL_STRUCTS_MIME,
	SQL_AUDIT_STATE,
	SQL_AUDIT_INSERT,
	SQL_AUDIT_SET_HEAD,
	SQL__COUNT
};

struct store_conn {
	sqlite3 *db;
	sqlite3_stmt *stmts[SQL__COUNT];
};

enum store_job_kind { STORE_JOB_READ, STORE_JOB_WRITE };

struct store_job;
struct store_vfs;
/* Runs on a worker or the writer with that thread's connection. Returns 0 or -errno. */
typedef int store_job_run_fn(struct store_conn *c, struct store_job *job);
/* Runs on a worker before a write job goes to the writer (hashing, MIME parsing). */
typedef int store_job_prep_fn(struct store_job *job);
typedef void store_job_free_fn(struct store_job *job);

struct store_job {
	struct store_job *next;
	struct sqlite_store *store;
	enum store_job_kind kind;
	store_job_prep_fn *prepare;
	store_job_run_fn *run;
	store_job_free_fn *free_args; /* frees the op's own arguments, may be NULL */
	/* Optional, on the writer: the part of a successful run that is cheaper done for many
	 * jobs at once (the FTS index: FTS5 writes its pending terms out as a new segment at
	 * every savepoint, a statement's own included). Runs after the job's run, before
	 * COMMIT or before the next job of the transaction that has no such step, whichever
	 * comes first; an error rolls the whole transaction back (this job fails, the others
	 * run again). A job with this step promises its run deletes nothing. */
	store_job_run_fn *run_deferred;
	/* The run fails only before its first write, or with an error after which the writer
	 * rolls the whole transaction back (the others run again): it needs no savepoint of
	 * its own, and saves one SAVEPOINT/RELEASE and the sub-journal pages it fills. */
	bool no_savepoint;
	/* It adds mail (delivery, APPEND, COPY): refused at once while the disk is full. */
	bool adds_mail;
	store_backend_cb *cb;
	void *ctx;
	int rc;
	struct store_backend_result res;
	/* Changes noted by a write, announced after commit. */
	struct store_change *changes;
	size_t n_changes;
	store_change_fn *on_change;
	void *change_ctx;
};

struct sqlite_store;
struct store_worker_slot {
	struct store_conn conn;
	struct sqlite_store *store;
};

struct store_queue {
	struct store_job *head, *tail;
	size_t len;
};

struct sqlite_store {
	struct store_options opt;
	char *path;
	struct store_vfs *vfs; /* the sealing VFS of an encrypted store, else NULL */
	const char *vfs_name;  /* its name, NULL for the default VFS */
	struct store_poster poster;
	bool has_poster;

	pthread_mutex_t lock;
	pthread_cond_t writer_cv;
	pthread_cond_t worker_cv;
	struct store_queue writes;
	struct store_queue reads;
	bool stopping;
	bool writer_exit_ok; /* workers joined: the writer may stop once its queue is empty */
	/* A write or fsync failed (I/O error, corruption): what is on disk can no longer be
	 * trusted to be what was committed, so no write is attempted again until a restart
	 * (store_core.c, store_poison). Under lock. */
	bool poisoned;
	/* A full disk (store_disk.c; writer thread only, after open). */
	char *data_dir, *reserve_path;
	uint64_t reserve_size;
	bool disk_full;
	int64_t disk_checked_ms, disk_logged_ms;

	pthread_t writer;
	struct store_conn wconn;
	size_t preparing;      /* write jobs submitted, not yet prepared (under lock) */
	int64_t gather_ns;     /* longest wait for them before a group (writer_gather) */
	uint64_t stat_commits; /* transactions committed by the writer (under lock) */
	uint64_t stat_writes;  /* write jobs they carried */
	/* The checkpointer: its own thread and connection copy the WAL into the database file
	 * beside the writer (store_core.c). Under lock. */
	pthread_t checkpointer;
	struct store_conn cconn;
	pthread_cond_t ckpt_cv;
	bool ckpt_wanted;
	bool ckpt_stop;
	bool ckpt_running; /* a checkpoint runs (checkpointer or writer): one at a time */
	int ckpt_done;     /* WAL frames copied by the last checkpoint */
	unsigned n_workers;
	pthread_t *workers;
	struct store_worker_slot *slots;
	/* Audit records waiting for the writer's next transaction (store_audit.c), under
	 * audit_lock, a lock of their own so that a session adding one never waits for the
	 * job queues' lock (taken in that order when both are needed: lock, then audit_lock).
	 * The writer takes them all at once. audit_due_ns (CLOCK_MONOTONIC): when the first of
	 * them must be written at the latest. */
	pthread_mutex_t audit_lock;
	struct store_audit_record *audit_v;
	size_t audit_n, audit_cap;
	int64_t audit_due_ns;
	int64_t audit_prune_ms; /* writer only: next retention pass (wall clock) */
	int64_t audit_head_ms;  /* writer only: next event=audit_head log line */
};

/* The backend's operations (store_table.c puts them in store_backend_sqlite), one per
 * operation of store.h with its contract; impl is the struct sqlite_store open made. */
int sqlite_store_open(const struct store_options *opt, void **impl_r, const char **error_r);
/* store_disk.c: the reserve file and the full-disk state. */
void store_disk_open(struct sqlite_store *s);
void store_disk_close(struct sqlite_store *s);
void store_disk_full(struct sqlite_store *s);
bool store_disk_refuses(struct sqlite_store *s);
void sqlite_store_close(void *impl);
void sqlite_store_stats(void *impl, uint64_t *commits_r, uint64_t *writes_r);
int sqlite_store_user_add(void *impl, const char *address, const char *password,
                          store_backend_cb *cb, void *ctx);
int sqlite_store_user_del(void *impl, const char *address, store_backend_cb *cb, void *ctx);
int sqlite_store_user_passwd(void *impl, const char *address, const char *password,
                             store_backend_cb *cb, void *ctx);
int sqlite_store_user_set_require_cert(void *impl, const char *address, bool on,
                                       store_backend_cb *cb, void *ctx);
int sqlite_store_user_set_disabled(void *impl, const char *address, bool on, store_backend_cb *cb,
                                   void *ctx);
int sqlite_store_user_set_quota(void *impl, const char *address, uint64_t bytes,
                                store_backend_cb *cb, void *ctx);
int sqlite_store_user_set_message_quota(void *impl, const char *address, uint64_t messages,
                                        store_backend_cb *cb, void *ctx);
int sqlite_store_user_get(void *impl, const char *address, store_backend_cb *cb, void *ctx);
int sqlite_store_user_list(void *impl, store_backend_cb *cb, void *ctx);
int sqlite_store_auth(void *impl, const char *address, const char *password, store_backend_cb *cb,
                      void *ctx);
int sqlite_store_user_scram(void *impl, const char *address, store_backend_cb *cb, void *ctx);
int sqlite_store_mailbox_list(void *impl, int64_t user_id, store_backend_cb *cb, void *ctx);
int sqlite_store_recent_take(void *impl, int64_t mailbox_id, uint32_t upto, store_backend_cb *cb,
                             void *ctx);
int sqlite_store_mailbox_get(void *impl, int64_t user_id, const char *name, store_backend_cb *cb,
                             void *ctx);
int sqlite_store_mailbox_create(void *impl, int64_t user_id, const char *name, unsigned special_use,
                                store_backend_cb *cb, void *ctx);
int sqlite_store_mailbox_delete(void *impl, int64_t user_id, const char *name, store_backend_cb *cb,
                                void *ctx);
int sqlite_store_mailbox_rename(void *impl, int64_t user_id, const char *name, const char *new_name,
                                store_backend_cb *cb, void *ctx);
int sqlite_store_mailbox_subscribe(void *impl, int64_t user_id, const char *name, bool on,
                                   store_backend_cb *cb, void *ctx);
int sqlite_store_metadata_get(void *impl, int64_t user_id, int64_t mailbox_id,
                              const char *const *names, size_t n, int depth, store_backend_cb *cb,
                              void *ctx);
int sqlite_store_metadata_set(void *impl, int64_t user_id, int64_t mailbox_id,
                              const struct store_meta_change *changes, size_t n,
                              uint64_t max_entries, store_backend_cb *cb, void *ctx);
/* store_metadata.c: copies the annotations of mailbox src to dst (renaming INBOX). */
int store_metadata_copy(struct store_conn *c, int64_t src, int64_t dst);
int sqlite_store_deliver(void *impl, const struct store_deliver_req *req, store_backend_cb *cb,
                         void *ctx);
int sqlite_store_deliver_batch(void *impl, const struct store_deliver_req *reqs, size_t n,
                               store_backend_cb *cb, void *ctx);
int sqlite_store_message_list(void *impl, int64_t mailbox_id, uint64_t changed_since,
                              store_backend_cb *cb, void *ctx);
int sqlite_store_message_get(void *impl, int64_t mailbox_id, uint32_t uid, store_backend_cb *cb,
                             void *ctx);
int sqlite_store_message_headers(void *impl, int64_t mailbox_id, store_backend_cb *cb, void *ctx);
int sqlite_store_message_sortkeys(void *impl, int64_t mailbox_id, uint32_t after_uid,
                                  store_backend_cb *cb, void *ctx);
int sqlite_store_message_structures(void *impl, int64_t mailbox_id, const uint32_t *uids, size_t n,
                                    size_t max_total, bool with_content, store_backend_cb *cb,
                                    void *ctx);
int sqlite_store_content_read_batch(void *impl, int64_t mailbox_id, const uint32_t *uids, size_t n,
                                    size_t max_total, store_backend_cb *cb, void *ctx);
int sqlite_store_content_read(void *impl, int64_t mailbox_id, uint32_t uid, uint64_t offset,
                              size_t max_len, store_backend_cb *cb, void *ctx);
int sqlite_store_flags_store(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
                             size_t n_ranges, enum store_flag_mode mode, unsigned flags,
                             const char *keywords, uint64_t unchanged_since, store_backend_cb *cb,
                             void *ctx);
int sqlite_store_expunge(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
                         size_t n_ranges, store_backend_cb *cb, void *ctx);
int sqlite_store_remove(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
                        size_t n_ranges, store_backend_cb *cb, void *ctx);
int sqlite_store_copy(void *impl, int64_t src_mailbox_id, const struct store_uid_range *ranges,
                      size_t n_ranges, int64_t dst_mailbox_id, bool move, store_backend_cb *cb,
                      void *ctx);
int sqlite_store_vanished(void *impl, int64_t mailbox_id, uint64_t since_modseq,
                          store_backend_cb *cb, void *ctx);
int sqlite_store_search_text(void *impl, int64_t mailbox_id, const char *text, store_backend_cb *cb,
                             void *ctx);
int sqlite_store_search_body(void *impl, int64_t mailbox_id, const char *text, store_backend_cb *cb,
                             void *ctx);
int sqlite_store_queue_list(void *impl, store_backend_cb *cb, void *ctx);
int sqlite_store_queue_summary(void *impl, store_backend_cb *cb, void *ctx);
int sqlite_store_backup(void *impl, const char *path, store_backend_cb *cb, void *ctx);
int sqlite_store_queue_delete(void *impl, int64_t queue_id, store_backend_cb *cb, void *ctx);
int sqlite_store_queue_due(void *impl, int64_t now, unsigned lease_seconds, size_t limit,
                           store_backend_cb *cb, void *ctx);
int sqlite_store_queue_recover(void *impl, store_backend_cb *cb, void *ctx);
int sqlite_store_queue_flush(void *impl, int64_t queue_id, int64_t now, store_backend_cb *cb,
                             void *ctx);
int sqlite_store_queue_content_read(void *impl, int64_t content_id, uint64_t offset, size_t max_len,
                                    store_backend_cb *cb, void *ctx);
int sqlite_store_queue_report(void *impl, const struct store_queue_report *rep,
                              store_backend_cb *cb, void *ctx);
int sqlite_store_cert_add(void *impl, const struct store_cert_new *cert, store_backend_cb *cb,
                          void *ctx);
int sqlite_store_cert_list(void *impl, int64_t expiring_before, store_backend_cb *cb, void *ctx);
int sqlite_store_cert_get(void *impl, const char *serial, store_backend_cb *cb, void *ctx);
int sqlite_store_cert_find_valid(void *impl, const char *address, int64_t now, store_backend_cb *cb,
                                 void *ctx);
int sqlite_store_cert_revoke(void *impl, const char *serial, const char *address, int64_t now,
                             store_backend_cb *cb, void *ctx);
int sqlite_store_cert_crl_next(void *impl, store_backend_cb *cb, void *ctx);
int sqlite_store_ping(void *impl, store_backend_cb *cb, void *ctx);
int sqlite_store_cert_list_revoked(void *impl, store_backend_cb *cb, void *ctx);

/* store_core.c */
void *store_job_new(size_t size, struct sqlite_store *s, enum store_job_kind kind,
                    store_job_run_fn *run, store_backend_cb *cb, void *ctx);
/* Queues the job: 0, or -ESHUTDOWN (job freed, callback never runs). */
int store_job_submit(struct store_job *job);
void store_job_note_change(struct store_job *job, int64_t user_id, int64_t mailbox_id,
                           uint64_t modseq, uint32_t uidnext, uint32_t exists);
int store_err(sqlite3 *db, int sqlite_rc);
void store_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* store_sql.c */
/* The statement, reset and with bindings cleared; NULL when it cannot be prepared. */
sqlite3_stmt *store_stmt(struct store_conn *c, enum store_sql id);
/* The text of statement id (for a migration, which runs before the table is used). */
const char *store_sql_string(enum store_sql id);
/* store_deliver.c: binds the SQL_SORTKEY_INSERT parameters for content_id from info. */
void store_sortkeys_bind(sqlite3_stmt *st, int64_t content_id, const struct store_mime_info *info);
int store_exec_stmt(struct store_conn *c, enum store_sql id);
void store_conn_close(struct store_conn *c);
/* A GMime stream (GMimeStream *) over a spool file's plain bytes, or NULL. */
struct _GMimeStream *store_spool_stream_open(const char *path, bool sealed);
/* data_dir/store.key beside the database at db_path (malloc'd). */
char *store_key_path(const char *db_path);
/* Before anything is opened: *vfs_r the sealing VFS of an encrypted store (kek, 32 bytes,
 * unwraps its data key; a new store gets a new one), NULL for a plaintext store (kek NULL).
 * A mismatch of the two, or a wrong key, is refused (-EPERM, -EKEYREJECTED, -EBADMSG) and
 * no file is touched. */
int store_crypt_open(const char *db_path, const uint8_t *kek, struct store_vfs **vfs_r,
                     const char **error_r);
/* Completes a conversion (store_encrypt) a crash interrupted after its decisive rename, or
 * drops the key header of one interrupted before it. 0 or -errno. */
int store_crypt_recover(const char *db_path, const uint8_t *kek);
/* vfs: the sealing VFS's name for an encrypted store, NULL for the default. */
int store_conn_open(struct store_conn *c, const char *path, const char *vfs, unsigned busy_ms,
                    bool writer, const char **error_r);
char *store_col_text(sqlite3_stmt *st, int col);
int store_bind_text(sqlite3_stmt *st, int col, const char *text);

/* store_audit.c: the writer's part of the audit. Takes every waiting record (under lock),
 * writes them with their chain into the running transaction, and gives them back when
 * the transaction does not commit. */
struct store_audit_batch {
	struct store_audit_record *v;
	size_t n;
};
void store_audit_take(struct sqlite_store *s, struct store_audit_batch *b);
/* Called with lock held: whether records wait (*due_ns_r: by when they must be written),
 * and whether that time has come (or enough wait to write them at once). */
bool store_audit_waiting(struct sqlite_store *s, int64_t now_ns, int64_t *due_ns_r, bool *due_r);
int store_audit_write(struct store_conn *c, struct sqlite_store *s, struct store_audit_batch *b);
void store_audit_giveback(struct sqlite_store *s, struct store_audit_batch *b);
void store_audit_batch_free(struct store_audit_batch *b);
int sqlite_store_audit_append(void *impl, const struct store_audit_record *r);
int sqlite_store_audit_query(void *impl, const struct store_audit_filter *f, store_backend_cb *cb,
                             void *ctx);
int sqlite_store_audit_verify(void *impl, uint64_t anchor_seq, const unsigned char *anchor,
                              store_backend_cb *cb, void *ctx);

/* store_schema.c */
int store_schema_migrate(sqlite3 *db, const char **error_r);
int store_schema_migrate_to(sqlite3 *db, int target, const char **error_r);

/* store_user.c */
int store_user_load(struct store_conn *c, const char *address, struct store_user *u);

/* store_mailbox.c */
int store_mailbox_load(struct store_conn *c, sqlite3_stmt *st, struct store_mailbox *mb);
/* Bumps the mailbox's modseq (and uidnext by n_uids); returns the new values. */
int store_mailbox_bump(struct store_conn *c, int64_t mailbox_id, uint32_t n_uids,
                       uint64_t *modseq_r, uint32_t *first_uid_r);
/* Notes the mailbox's current state as a change of the job. */
int store_mailbox_note(struct store_conn *c, struct store_job *job, int64_t mailbox_id);
/* Moves every entry of src to dst (same user) inside a running write job: new UIDs in dst,
 * expunged from src. job->res gets the UIDs (as COPYUID). */
int store_entries_move_all(struct store_conn *c, struct store_job *job, int64_t src_mailbox_id,
                           int64_t dst_mailbox_id);

/* store_thread.c: THREADID (RFC 8474) of a user's new message, from the Message-IDs its
 * content names (sortkeys) and the ones the user's mail named before (threadids). The
 * statements are the writer's own (store_stmt) or, in a migration, prepared for it. */
struct store_thread_stmts {
	sqlite3_stmt *keys, *find, *add;
};
int store_thread_stmts_prepare(sqlite3 *db, struct store_thread_stmts *t);
void store_thread_stmts_finalize(struct store_thread_stmts *t);
/* 0 with *thread_r set, or a negative errno (the SQLite error is the connection's). */
int store_thread_assign(sqlite3 *db, const struct store_thread_stmts *t, int64_t user_id,
                        int64_t content_id, int64_t *thread_r);

/* store_message.c */
void store_msg_load(sqlite3_stmt *st, struct store_msg *m);
/* Adds a copy of message m (content, size, flags, keywords, dates, EMAILID and THREADID)
 * as a new entry (new UID and modseq, saved now) and notes the change. */
int store_entry_add(struct store_conn *c, struct store_job *job, int64_t mailbox_id,
                    const struct store_msg *m, uint32_t *uid_r);
/* UID ranges, copied for a job. */
struct store_uid_range *store_ranges_dup(const struct store_uid_range *r, size_t n);

/* store_deliver.c: one message delivered as part of a write job (store_deliver's own job,
 * and the relay's bounces in store_relay.c). req and keywords are set by the caller
 * (keywords: n_targets normalized strings or NULLs, owned); prepare runs on a worker
 * (hash, MIME), run on the writer inside the job's transaction. */
struct store_delivery {
	const struct store_deliver_req *req;
	uint64_t size;
	unsigned char sha256[32];
	struct store_mime_info mime;
	char **keywords;
	size_t n_keywords;
	bool spool_sealed; /* req->spool_path is a sealed spool file (store_spool.h) */
	bool defer_index;  /* run leaves the FTS row to store_delivery_index */
	int64_t index_id;  /* content stored by run whose FTS row is still owed, or 0 */
};
int store_delivery_prepare(struct sqlite_store *s, struct store_delivery *d);
int store_delivery_run(struct store_conn *c, struct store_job *job, struct store_delivery *d);
/* Writes the FTS row run left owed (defer_index), if any. 0 or a negative errno. */
int store_delivery_index(struct store_conn *c, struct store_delivery *d);
void store_delivery_clear(struct store_delivery *d);

/* Reads at most max_len bytes of content_id's body from offset into res->data (res->
 * total_size must already hold the body's size). 0 or a negative errno. */
int store_content_range(struct store_conn *c, int64_t content_id, uint64_t offset, size_t max_len,
                        struct store_backend_result *res);

/* Appends the queue recipient rows of st (bound, not yet stepped) to q; resets st. */
int store_queue_rcpts_collect(struct store_conn *c, sqlite3_stmt *st, struct store_queue_entry *q);

#endif
