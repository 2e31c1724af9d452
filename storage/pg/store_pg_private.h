#ifndef SEALMAIL_STORE_PG_PRIVATE_H
#define SEALMAIL_STORE_PG_PRIVATE_H
/*
 * The PostgreSQL backend's own declarations (docs/postgresql.md). One writer thread with
 * its own connection commits every pending write in one transaction (group commit), a
 * few worker threads with a connection each run reads and the slow half of writes
 * (password hashing); completions go through storage/store_async.c. Nothing outside
 * storage/pg/ includes libpq-fe.h.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "storage/store_backend.h"

#define PG_SCHEMA_VERSION 1

/* Every statement of the backend (store_pg_sql.c), prepared once per connection. */
enum pg_sql {
	PGSQL_USER_INSERT,
	PGSQL_USER_BY_ADDRESS,
	PGSQL_USER_LIST,
	PGSQL_USER_DELETE,
	PGSQL_USER_SET_PASSWORD,
	PGSQL_USER_SET_REQUIRE_CERT,
	PGSQL_USER_SET_DISABLED,
	PGSQL_USER_SET_QUOTA,
	PGSQL_USER_SET_MESSAGE_QUOTA,
	PGSQL_USER_AUTH,
	PGSQL_USER_SCRAM,
	PGSQL_MAILBOX_INSERT,
	PGSQL_MAILBOX_LIST,
	PGSQL_MAILBOX_BY_NAME,
	PGSQL_MAILBOX_DELETE,
	PGSQL_ENTRIES_DELETE_ALL,
	PGSQL_MAILBOX_RENAME,
	PGSQL_SUBSCRIBE_ADD,
	PGSQL_SUBSCRIBE_DEL,
	PGSQL_SUBSCRIBED_MISSING,
	PGSQL_TARGET_INBOX,
	PGSQL_TARGET_MAILBOX,
	PGSQL_TARGET_LOCK_USER,
	PGSQL_TARGET_LOCK_MAILBOX,
	PGSQL_MAILBOX_BUMP,
	PGSQL_CONTENT_INSERT,
	PGSQL_CONTENT_FIND,
	PGSQL_PREVIEW_INSERT,
	PGSQL_ENTRY_INSERT,
	PGSQL_MAILBOX_STATE,
	PGSQL_ENTRY_LIST,
	PGSQL_ENTRY_GET,
	PGSQL_CONTENT_READ,
	PGSQL_ENTRY_RANGE,
	PGSQL_ENTRY_SET_FLAGS,
	PGSQL_ENTRY_DELETE,
	PGSQL_EXPUNGED_INSERT,
	PGSQL_VANISHED,
	PGSQL_RECENT_GET,
	PGSQL_RECENT_SET,
	PGSQL_ENTRY_UIDS_BETWEEN,
	PGSQL_PING,
	PGSQL__COUNT
};

/* One connection and the statements prepared on it. */
struct pg_conn {
	PGconn *db;
	bool prepared[PGSQL__COUNT];
};

/* Parameters of one statement, all sent as text except bytea (binary). */
#define PG_PARAMS_MAX 16
struct pg_params {
	int n;
	const char *v[PG_PARAMS_MAX];
	int len[PG_PARAMS_MAX];
	int fmt[PG_PARAMS_MAX];
	char buf[PG_PARAMS_MAX][24];
};
void pg_p_text(struct pg_params *p, const char *s); /* NULL: SQL NULL */
void pg_p_i64(struct pg_params *p, int64_t v);
void pg_p_bytes(struct pg_params *p, const void *data, size_t len);

/* Runs statement id (prepared on first use) with p (NULL for none). Returns the result
 * (PQclear it) with *rc_r 0, or NULL with *rc_r a negative errno: -EEXIST for a unique
 * violation, -ENOENT for a foreign key violation, -EIO otherwise (logged). */
PGresult *pg_run(struct pg_conn *c, enum pg_sql id, const struct pg_params *p, int *rc_r);
/* Runs id and only checks it: 0 or as pg_run. *affected_r (may be NULL): rows changed. */
int pg_run_cmd(struct pg_conn *c, enum pg_sql id, const struct pg_params *p, uint64_t *affected_r);
/* A plain command without parameters (BEGIN, COMMIT, DDL): 0 or -EIO. */
int pg_exec(struct pg_conn *c, const char *sql);
/* Column values of text results. */
int64_t pg_i64(const PGresult *r, int row, int col);
char *pg_str(const PGresult *r, int row, int col); /* malloc'd, NULL for SQL NULL */
const char *pg_sql_text(enum pg_sql id);

/* store_pg_schema.c: creates or migrates the schema on c. 0, -EPROTO (newer than this
 * binary), -EIO. */
int pg_schema_migrate(struct pg_conn *c, const char **error_r);

/* ---- Jobs ---- */
enum pg_job_kind { PG_JOB_READ, PG_JOB_WRITE };
struct pg_store;
struct pg_job;
typedef int pg_job_run_fn(struct pg_conn *c, struct pg_job *job);

struct pg_job {
	struct pg_job *next;
	struct pg_store *s;
	enum pg_job_kind kind;
	/* A write's slow half, on a worker before it reaches the writer (hashing); NULL for
	 * none. A failure completes the job without it reaching the writer. */
	int (*prepare)(struct pg_job *job);
	pg_job_run_fn *run;
	void (*free_args)(struct pg_job *job);
	store_backend_cb *cb;
	void *ctx;
	int rc;
	struct store_backend_result res;
	struct store_change *changes; /* delivered after COMMIT, before the callback */
	size_t n_changes;
};

struct pg_store {
	struct store_options opt;
	char *conninfo;
	struct store_async *async;
	pthread_mutex_t lock;
	pthread_cond_t work_cv, write_cv;
	struct pg_job *reads, *reads_tail;   /* reads and writes to prepare: workers */
	struct pg_job *writes, *writes_tail; /* for the writer */
	bool stopping;
	pthread_t writer;
	pthread_t *workers;
	unsigned n_workers;
	struct pg_conn wconn;
	struct pg_conn *rconns;
	uint64_t commits, writes_done;
};

/* A zeroed job of size bytes (a struct starting with struct pg_job). */
void *pg_job_new(size_t size, struct pg_store *s, enum pg_job_kind kind, pg_job_run_fn *run,
                 store_backend_cb *cb, void *ctx);
/* Queues job: 0 (the callback will run once). Never fails once the store is open. */
int pg_job_submit(struct pg_job *job);
void pg_job_note_change(struct pg_job *job, int64_t user_id, int64_t mailbox_id, uint64_t modseq,
                        uint32_t uidnext, uint32_t exists);

/* ---- Operations (store_pg_user.c, store_pg_mailbox.c) ---- */
int pg_store_user_add(void *impl, const char *address, const char *password, store_backend_cb *cb,
                      void *ctx);
int pg_store_user_del(void *impl, const char *address, store_backend_cb *cb, void *ctx);
int pg_store_user_passwd(void *impl, const char *address, const char *password,
                         store_backend_cb *cb, void *ctx);
int pg_store_user_set_require_cert(void *impl, const char *address, bool on, store_backend_cb *cb,
                                   void *ctx);
int pg_store_user_set_disabled(void *impl, const char *address, bool on, store_backend_cb *cb,
                               void *ctx);
int pg_store_user_set_quota(void *impl, const char *address, uint64_t bytes, store_backend_cb *cb,
                            void *ctx);
int pg_store_user_set_message_quota(void *impl, const char *address, uint64_t messages,
                                    store_backend_cb *cb, void *ctx);
int pg_store_user_get(void *impl, const char *address, store_backend_cb *cb, void *ctx);
int pg_store_user_list(void *impl, store_backend_cb *cb, void *ctx);
int pg_store_auth(void *impl, const char *address, const char *password, store_backend_cb *cb,
                  void *ctx);
int pg_store_user_scram(void *impl, const char *address, store_backend_cb *cb, void *ctx);
/* Loads the user row of address into *u: 0, -ENOENT, -EIO. */
int pg_user_load(struct pg_conn *c, const char *address, struct store_user *u);

int pg_store_mailbox_list(void *impl, int64_t user_id, store_backend_cb *cb, void *ctx);
int pg_store_mailbox_get(void *impl, int64_t user_id, const char *name, store_backend_cb *cb,
                         void *ctx);
int pg_store_mailbox_create(void *impl, int64_t user_id, const char *name, unsigned special_use,
                            store_backend_cb *cb, void *ctx);
int pg_store_mailbox_delete(void *impl, int64_t user_id, const char *name, store_backend_cb *cb,
                            void *ctx);
int pg_store_mailbox_rename(void *impl, int64_t user_id, const char *name, const char *new_name,
                            store_backend_cb *cb, void *ctx);
int pg_store_mailbox_subscribe(void *impl, int64_t user_id, const char *name, bool on,
                               store_backend_cb *cb, void *ctx);
int pg_store_deliver(void *impl, const struct store_deliver_req *req, store_backend_cb *cb,
                     void *ctx);
int pg_store_deliver_batch(void *impl, const struct store_deliver_req *reqs, size_t n,
                           store_backend_cb *cb, void *ctx);
int pg_store_message_list(void *impl, int64_t mailbox_id, uint64_t changed_since,
                          store_backend_cb *cb, void *ctx);
int pg_store_message_get(void *impl, int64_t mailbox_id, uint32_t uid, store_backend_cb *cb,
                         void *ctx);
int pg_store_content_read(void *impl, int64_t mailbox_id, uint32_t uid, uint64_t offset,
                          size_t max_len, store_backend_cb *cb, void *ctx);
int pg_store_flags_store(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
                         size_t n_ranges, enum store_flag_mode mode, unsigned flags,
                         const char *keywords, uint64_t unchanged_since, store_backend_cb *cb,
                         void *ctx);
int pg_store_expunge(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
                     size_t n_ranges, store_backend_cb *cb, void *ctx);
int pg_store_remove(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
                    size_t n_ranges, store_backend_cb *cb, void *ctx);
int pg_store_copy(void *impl, int64_t src_mailbox_id, const struct store_uid_range *ranges,
                  size_t n_ranges, int64_t dst_mailbox_id, bool move, store_backend_cb *cb,
                  void *ctx);
/* Moves every entry of src to dst inside the running job (renaming INBOX); the copy's
 * result lands in job->res. */
int pg_entries_move_all(struct pg_conn *c, struct pg_job *job, int64_t src_mailbox_id,
                        int64_t dst_mailbox_id);
int pg_store_vanished(void *impl, int64_t mailbox_id, uint64_t since_modseq, store_backend_cb *cb,
                      void *ctx);
/* An entry row of PGSQL_ENTRY_LIST's columns into *m. */
void pg_entry_from_row(const PGresult *r, int row, struct store_msg *m);
/* The mailbox's user, highest modseq, uidnext and message count as a change of job. */
int pg_mailbox_note(struct pg_conn *c, struct pg_job *job, int64_t mailbox_id);

int pg_store_recent_take(void *impl, int64_t mailbox_id, uint32_t upto, store_backend_cb *cb,
                         void *ctx);
/* Inserts a mailbox with a UIDVALIDITY never given before: 0, -EEXIST, -ENOENT. */
int pg_mailbox_insert(struct pg_conn *c, int64_t user_id, const char *name, unsigned special_use);

#endif
