#ifndef SEALMAIL_STORE_H
#define SEALMAIL_STORE_H
/*
 * The mail store: users, mailboxes, messages, flags, UIDs, modseqs and the relay queue,
 * spoken in mail terms. Behind it is a backend chosen by name at store_open (the table in
 * storage/store_backend.h): SQLite (storage/sqlite/, the server's), or in memory and fault
 * injecting ones for tests. Nothing here mentions SQL, and no caller ever sees a database
 * handle. The store is not a protocol engine: it does not format IMAP responses or parse
 * SMTP, it keeps what they need.
 *
 * Threads (the SQLite backend's; every backend keeps the callback rules). A store owns one
 * writer thread (every change, committed in groups: all writes pending when a transaction
 * starts share it and its one fsync) and a small pool of worker threads with read
 * connections (reads, password hashing, MIME parsing of new messages). Every operation is
 * asynchronous: it returns 0 after queueing the work, or a negative errno code (and then
 * never calls its callback). A queued operation calls its callback exactly once:
 *   - on the loop thread, through the poster given to store_open (the server's face), or
 *   - on a store thread when no poster was given (the blocking face: pair the call with
 *     struct store_sync, see below; sealctl, tests and benchmarks use it).
 * A write's callback runs only after its transaction has been committed durably.
 *
 * Results. Each kind of result has its own type and callback type (below "Results"): an
 * operation takes the callback of its kind, and its comment says what the result holds.
 * Every callback receives rc (0 or negative errno) and, unless the operation has no result
 * (store_done_cb), a pointer to its result, never NULL: a zeroed one when rc < 0. The
 * result is borrowed until the callback returns; store_X_move() takes ownership of its
 * contents instead (free them with store_X_free()).
 *
 * Errors (rc): -ENOENT no such user/mailbox/message, -EEXIST already exists, -EINVAL bad
 * argument (address syntax, mailbox name), -EACCES wrong password (or unknown user, or
 * disabled: the same answer), -EDQUOT over quota, -ENOSPC disk full, -EBUSY database
 * locked by another process for too long, -EIO corrupt or unreadable database, -EFBIG
 * message over the store's limits, -ESHUTDOWN store closing. store_strerror() names them.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* The server's way to run a function on its loop thread (server/poster.c). post() is
 * called from store threads and must run fn(arg) exactly once on the loop thread. */
struct store_poster {
	void (*post)(void *ctx, void (*fn)(void *arg), void *arg);
	void *ctx;
};

/* "mailbox_id reached highest_modseq; next UID is uidnext": after every committed change
 * (delivery, append, flags, expunge, copy/move, mailbox delete with highest_modseq 0).
 * Runs like a callback: on the loop thread through the poster, else on the writer. */
struct store_change {
	int64_t user_id;
	int64_t mailbox_id;
	uint64_t highest_modseq;
	uint32_t uidnext;
	uint32_t exists;
};
typedef void store_change_fn(void *ctx, const struct store_change *change);

struct store_options {
	/* The backend by name: "sqlite" (NULL or ""), "mem" (in memory, lost at close: tests),
	 * "fault" or "fault:BACKEND" (BACKEND, mem by default, with chosen calls failing:
	 * storage/fault/store_fault.h), "postgresql" (not complete: docs/postgresql.md). An unknown
	 * name fails store_open with -EINVAL. */
	const char *backend;
	const char *path; /* the database file (data_dir/mail.db); created when missing */
	/* "postgresql" only: the libpq connection string ("host=/run/postgresql dbname=mail";
	 * docs/postgresql.md). Each thread of the store opens its own connection with it. */
	const char *conninfo;
	unsigned workers;          /* read/hash threads, 0 = 4 */
	unsigned busy_ms;          /* wait this long for another process's lock, 0 = 5000 */
	bool no_group_commit;      /* one transaction per write (benchmarks only) */
	uint64_t max_message_size; /* 0 = 50 MiB */
	/* Encryption at rest (sqlite; docs/encryption.md): the 32-byte key-encryption key, read
	 * during the call only. NULL: the store must be a plaintext one. With a key, a new store
	 * is created encrypted and an existing one must be encrypted under it; every mismatch
	 * fails store_open before any file is touched. */
	const uint8_t *kek;
	/* Spool files handed to deliveries are sealed (storage/store_spool.h), not plain. */
	bool spool_sealed;
	const struct store_poster *poster; /* NULL: callbacks on store threads */
	store_change_fn *on_change;        /* optional */
	void *change_ctx;
	/* Optional: called once (through the poster) when a write or fsync failed so that the
	 * store no longer trusts its files: from then on every write fails with -EIO (reads go
	 * on) until the store is opened again. reason is borrowed for the call. */
	void (*on_failure)(void *ctx, const char *reason);
	void *failure_ctx;
	/* Audit records older than this many days are removed (an hourly pass of the
	 * writer, itself recorded); 0 keeps them for ever. */
	unsigned audit_retention_days;
};

/*
 * Opens (creating or migrating the schema as needed) and starts the threads. Returns 0 and
 * *store_r, or a negative errno with *error_r set to one line saying what to do (valid until
 * the next store_open on this thread). A schema newer than this binary, a corrupt file and
 * a file that is not a database are refused (-EPROTO, -EIO), never reset.
 */
int store_open(const struct store_options *opt, struct store **store_r, const char **error_r);
/* Finishes every queued operation (their callbacks run), stops the threads and closes the
 * database. No operation may be started during or after the call. With a poster, the
 * caller keeps it alive until the posted completions have run. */
void store_close(struct store *s);
const char *store_strerror(int rc);
/* Transactions the writer has committed and the write operations they carried (each
 * commit costs one WAL fsync with synchronous=FULL: writes/commits is what group commit
 * saves). Thread-safe. */
void store_stats(struct store *s, uint64_t *commits_r, uint64_t *writes_r);

/* ---- Results ---- */

enum store_flag {
	STORE_SEEN = 1 << 0,
	STORE_ANSWERED = 1 << 1,
	STORE_FLAGGED = 1 << 2,
	STORE_DELETED = 1 << 3,
	STORE_DRAFT = 1 << 4,
};

enum store_special_use {
	STORE_SU_SENT = 1 << 0,
	STORE_SU_DRAFTS = 1 << 1,
	STORE_SU_TRASH = 1 << 2,
	STORE_SU_JUNK = 1 << 3,
	STORE_SU_ARCHIVE = 1 << 4,
};

struct store_user {
	int64_t id;
	char *address; /* lower case */
	bool require_client_certificate;
	bool disabled;
	uint64_t quota_bytes; /* 0 = unlimited */
	uint64_t used_bytes;
	uint64_t quota_messages; /* 0 = unlimited */
	uint64_t used_messages;  /* messages in all the user's mailboxes */
	/* SHA-256 (hex) of the stored password hash: changes whenever the password does, so
	 * the server's login cache can tell a stale entry; reveals nothing usable. */
	char *password_tag;
};

struct store_mailbox {
	int64_t id;
	int64_t user_id;
	char *name;           /* UTF-8, "/" separated, "INBOX" for the inbox */
	unsigned special_use; /* enum store_special_use bits */
	bool subscribed;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highest_modseq;
	uint32_t messages;
	uint32_t unseen;
	uint64_t size;         /* bytes of all messages */
	uint32_t deleted;      /* messages flagged \Deleted */
	uint64_t deleted_size; /* their bytes */
	uint32_t recent; /* messages no session has taken as \Recent yet (store_recent_take) */
	/* MAILBOXID (RFC 8474): random, kept across RENAME, never that of a deleted mailbox. */
	uint64_t objectid;
};

/* One message in one mailbox. */
struct store_msg {
	uint32_t uid;
	uint64_t modseq;
	unsigned flags;        /* enum store_flag bits */
	char *keywords;        /* space separated, sorted, "" when none */
	int64_t internal_date; /* seconds since the epoch */
	uint64_t size;
	int64_t content_id; /* same value for every copy of the same bytes */
	/* RFC 8474 EMAILID and THREADID (random; an entry keeps them through COPY and MOVE;
	 * THREADID is shared by the user's messages whose Message-IDs and References link
	 * them) and RFC 8514's save date (seconds since the epoch: when the entry was added
	 * to its mailbox). */
	uint64_t email_id, thread_id;
	int64_t save_date;
	/* Filled by store_message_get and store_message_structures only (else NULL): the
	 * RFC 8970 preview, UTF-8, at most 256 characters, NULL when the message has no text. */
	char *preview;
	/* Filled by store_message_get only (else NULL / 0): */
	char *mime_json; /* body structure with byte offsets, docs/storage.md */
	char *hdr_from, *hdr_to, *hdr_cc, *hdr_subject, *hdr_message_id; /* decoded, UTF-8 */
	int64_t hdr_date; /* Date: header, seconds since the epoch, 0 when missing/bad */
	/* Filled by store_message_sortkeys only (else NULL / false), with hdr_message_id and
	 * hdr_date: the SORT and THREAD keys computed at delivery (docs/storage.md). The
	 * strings are in i;unicode-casemap form (RFC 5051): compare them with strcmp. */
	char *sort_subject;                  /* RFC 5256 base subject */
	bool sort_reply;                     /* a reply or forward marker was removed from it */
	char *sort_from, *sort_to, *sort_cc; /* addr-mailbox (local part) of the first address */
	char *sort_from_name, *sort_to_name; /* RFC 5957: its display name, else its addr-spec */
	char *thread_refs; /* References' msg-ids (else In-Reply-To's), space separated */
};

/* Per target of store_deliver, in request order. */
struct store_delivered {
	int rc; /* 0, -ENOENT (no such user/mailbox), -EDQUOT */
	int64_t mailbox_id;
	uint32_t uid;
	uint32_t uidvalidity;
	uint64_t quota_bytes;    /* the target user's quota when it was found, 0 = unlimited */
	uint64_t quota_messages; /* the same for its message-count limit */
};

struct store_queue_rcpt {
	int64_t id;
	char *address;
	char *notify; /* DSN NOTIFY, NULL when not given */
	char *orcpt;  /* DSN ORCPT, NULL when not given */
	int status;   /* 0 pending, 1 delivered, 2 failed, 3 in flight (leased by the relay) */
	unsigned attempts;
	int64_t next_attempt;
	char *last_error;
};

struct store_queue_entry {
	int64_t id;
	int64_t content_id;
	uint64_t size;
	char *sender; /* "" for the null sender */
	bool requiretls;
	char *ret;   /* DSN RET (FULL/HDRS) or NULL */
	char *envid; /* DSN ENVID or NULL */
	int64_t created;
	struct store_queue_rcpt *rcpts;
	size_t n_rcpts;
};

/* SCRAM-SHA-256 material, base64 (what GNU SASL wants). */
struct store_scram {
	char *salt;
	unsigned iterations;
	char *stored_key;
	char *server_key;
};

/* An operation that hands back nothing but its rc. */
typedef void store_done_cb(void *ctx, int rc);

/* Users: store_user_add, store_user_get (one), store_user_list. */
struct store_users {
	struct store_user *v;
	size_t n;
};
typedef void store_users_cb(void *ctx, int rc, struct store_users *res);
void store_users_free(struct store_users *res);
void store_users_move(struct store_users *dst, struct store_users *src);

/* A password check that passed: store_auth. Holds nothing to free. */
struct store_login {
	int64_t user_id;
	bool require_client_certificate;
};
typedef void store_login_cb(void *ctx, int rc, struct store_login *res);

/* A user's SCRAM material: store_user_scram. */
struct store_scram_material {
	int64_t user_id;
	struct store_scram scram;
};
typedef void store_scram_cb(void *ctx, int rc, struct store_scram_material *res);
void store_scram_material_free(struct store_scram_material *res);
void store_scram_material_move(struct store_scram_material *dst, struct store_scram_material *src);

/* Mailboxes with their counts: store_mailbox_list, _get, _create, _rename. */
struct store_mailboxes {
	struct store_mailbox *v;
	size_t n;
	/* store_mailbox_list: the names subscribed to that are no mailbox (a subscription
	 * outlives its mailbox, RFC 3501 6.3.6), sorted. */
	char **missing;
	size_t n_missing;
};
typedef void store_mailboxes_cb(void *ctx, int rc, struct store_mailboxes *res);
void store_mailboxes_free(struct store_mailboxes *res);
void store_mailboxes_move(struct store_mailboxes *dst, struct store_mailboxes *src);

/* Issued certificates and the CRL number taken: store_cert_* (struct store_cert is below,
 * with the operations). */
struct store_cert;
struct store_certs {
	struct store_cert *v;
	size_t n;
	uint64_t crl_number; /* store_cert_revoke, store_cert_crl_next; else 0 */
};
typedef void store_certs_cb(void *ctx, int rc, struct store_certs *res);
void store_certs_free(struct store_certs *res);
void store_certs_move(struct store_certs *dst, struct store_certs *src);

/* What a delivery did: store_deliver (struct store_delivered is below, with it). */
struct store_delivered;
struct store_delivery_result {
	int64_t content_id;
	struct store_delivered *v; /* one per target, in request order */
	size_t n;
	int64_t queue_id; /* the relay queue entry, 0 when nothing was relayed */
	uint64_t size;    /* bytes of the message */
	/* With a report, when a target failed: 0 the report is stored, -ENODATA none was
	 * wanted, -ENOENT its local recipient is unknown, -EDQUOT that mailbox is full (the
	 * report is dropped, the delivery stands). */
	int report_rc;
};
typedef void store_delivery_cb(void *ctx, int rc, struct store_delivery_result *res);
void store_delivery_result_free(struct store_delivery_result *res);
void store_delivery_result_move(struct store_delivery_result *dst,
                                struct store_delivery_result *src);

/* What STORE changed: store_flags_store (struct store_msg is below). */
struct store_msg;
struct store_flags_changed {
	struct store_msg *v; /* the messages changed, with their new flags and modseq */
	size_t n;
	uint32_t *skipped; /* UIDs left alone by unchanged_since */
	size_t n_skipped;
	uint64_t modseq;
};
typedef void store_flags_cb(void *ctx, int rc, struct store_flags_changed *res);
void store_flags_changed_free(struct store_flags_changed *res);
void store_flags_changed_move(struct store_flags_changed *dst, struct store_flags_changed *src);

/* UIDs: store_expunge, store_remove (the ones removed), store_vanished, store_search_text. */
struct store_uids {
	uint32_t *v;
	size_t n;
	uint64_t modseq; /* after the change (store_expunge, store_remove); else 0 */
};
typedef void store_uids_cb(void *ctx, int rc, struct store_uids *res);
void store_uids_free(struct store_uids *res);
void store_uids_move(struct store_uids *dst, struct store_uids *src);

/* What a COPY or MOVE made: store_copy. */
struct store_copied {
	uint32_t *src; /* source UIDs... */
	uint32_t *dst; /* ...and the destination UID of each, parallel */
	size_t n;
	uint32_t uidvalidity; /* of the destination */
	uint64_t modseq;
};
typedef void store_copied_cb(void *ctx, int rc, struct store_copied *res);
void store_copied_free(struct store_copied *res);
void store_copied_move(struct store_copied *dst, struct store_copied *src);

/* Messages of a mailbox: store_message_list, _get, _headers (struct store_msg is below). */
struct store_msgs {
	struct store_msg *v;
	size_t n;
	uint64_t modseq;      /* the mailbox's highest (store_message_list) */
	uint32_t uidvalidity; /* the mailbox's (store_message_list) */
};
typedef void store_msgs_cb(void *ctx, int rc, struct store_msgs *res);
void store_msgs_free(struct store_msgs *res);
void store_msgs_move(struct store_msgs *dst, struct store_msgs *src);

/* Several messages read in one go: store_content_read_batch, store_message_structures. */
struct store_batch {
	struct store_msg *v; /* the messages read, in request order */
	size_t n;
	unsigned char *data; /* their contents, one after the other (NULL when none read) */
	size_t len;
};
typedef void store_batch_cb(void *ctx, int rc, struct store_batch *res);
void store_batch_free(struct store_batch *res);
void store_batch_move(struct store_batch *dst, struct store_batch *src);

/* Bytes of one message: store_content_read, store_queue_content_read. */
struct store_content {
	unsigned char *data;
	size_t len;
	uint64_t total_size; /* of the whole message */
};
typedef void store_content_cb(void *ctx, int rc, struct store_content *res);
void store_content_free(struct store_content *res);
void store_content_move(struct store_content *dst, struct store_content *src);

/* Relay queue entries with their recipients: store_queue_list, store_queue_due (struct
 * store_queue_entry is below). */
struct store_queue_entry;
struct store_queue_entries {
	struct store_queue_entry *v;
	size_t n;
};
typedef void store_queue_cb(void *ctx, int rc, struct store_queue_entries *res);
/* The relay queue's length: messages, recipients not done yet (pending or in flight), and
 * when the oldest message was queued (seconds since the epoch, 0 when the queue is empty). */
struct store_queue_summary {
	uint64_t messages, recipients;
	int64_t oldest;
};
typedef void store_queue_summary_cb(void *ctx, int rc, const struct store_queue_summary *res);
void store_queue_entries_free(struct store_queue_entries *res);
void store_queue_entries_move(struct store_queue_entries *dst, struct store_queue_entries *src);

/* What store_queue_report stored besides the outcomes. Holds nothing to free. */
struct store_queue_reported {
	int64_t dsn_queue_id; /* the queue entry of a remote DSN, else 0 */
};
typedef void store_queue_reported_cb(void *ctx, int rc, struct store_queue_reported *res);

/* Annotations (IMAP METADATA, RFC 5464): store_metadata_get. */
struct store_meta_entry {
	char *name;           /* "/private/..." or "/shared/...", lower case */
	unsigned char *value; /* len bytes, may hold NUL; a NUL follows them (not counted) */
	size_t len;
};
struct store_metadata {
	struct store_meta_entry *v; /* ordered by name */
	size_t n;
};
typedef void store_metadata_cb(void *ctx, int rc, struct store_metadata *res);
void store_metadata_free(struct store_metadata *res);
void store_metadata_move(struct store_metadata *dst, struct store_metadata *src);

/* ---- Access audit ----
 * Who did what to which mail, as an append-only chain (docs/audit.md). Each record's hash
 * is SHA-256 over the previous record's hash and its own fields (store_audit_hash), so
 * editing or removing a record breaks the chain where it happened. Records are kept in
 * memory and written by the writer in the transaction of the next group commit, or at the
 * latest STORE_AUDIT_FLUSH_MS after the first one waiting: they cost no fsync of their
 * own. A record is written before or with the change it describes when the caller appends
 * it before asking for that change. */
struct store_audit_record {
	uint64_t seq;    /* given by the store: 1, 2, 3... (retention removes the oldest) */
	int64_t time_ms; /* Unix time in milliseconds */
	char *actor;     /* the user, "sealctl:NAME" for an administrator, or the name tried */
	char *ip;        /* client address, "" for sealctl */
	char *session;   /* session id of the log lines, or sealctl's process id */
	char *proto;     /* imap, pop3, submission, smtp, https, sealctl, store */
	char *action;    /* docs/audit.md lists them: login, fetch, flags, expunge, ... */
	char *mailbox;   /* "" when none */
	char *uids;      /* UID set ("1:4,9"), "" when none */
	char *detail;    /* action's own words: items fetched, flags, mechanism, command */
	unsigned char prev[32], hash[32]; /* the chain (read results only) */
};
void store_audit_record_free(struct store_audit_record *r);
/* The record's hash after prev (32 bytes): SHA-256 of "sealmail-audit-1", prev, seq and
 * time as 8-byte big-endian numbers and each text field with a 4-byte big-endian length,
 * in the order of the struct. Shared by every backend and by the verifier. */
void store_audit_hash(const unsigned char *prev, const struct store_audit_record *r,
                      unsigned char *out);
/* Queues a copy of r (seq, prev and hash are ignored) for the next commit. Never blocks and
 * has no callback. 0, or -EAGAIN when STORE_AUDIT_MAX records are already waiting (the
 * disk cannot keep up: the caller must not go on as if it had been recorded), -EIO (the
 * store no longer writes), -ESHUTDOWN, -ENOTSUP (a backend without an audit). */
#define STORE_AUDIT_FLUSH_MS 1000
#define STORE_AUDIT_MAX      65536
int store_audit_append(struct store *s, const struct store_audit_record *r);

struct store_audit_filter {
	const char *actor;          /* exact, or NULL */
	const char *mailbox;        /* exact, or NULL */
	int64_t since_ms, until_ms; /* 0: open */
	uint64_t after_seq;         /* records with seq > after_seq (paging) */
	size_t limit;               /* 0: 1000 */
};
struct store_audit_records {
	struct store_audit_record *v;
	size_t n;
};
typedef void store_audit_cb(void *ctx, int rc, struct store_audit_records *res);
void store_audit_records_free(struct store_audit_records *res);
void store_audit_records_move(struct store_audit_records *dst, struct store_audit_records *src);
/* Records matching f in seq order, at most f->limit of them. res: v[]. */
int store_audit_query(struct store *s, const struct store_audit_filter *f, store_audit_cb *cb,
                      void *ctx);

/* What store_audit_verify found. */
struct store_audit_check {
	uint64_t records;             /* records checked */
	uint64_t first_seq, last_seq; /* 0 when there are none */
	unsigned char head[32];       /* hash of last_seq (the anchor's when there are none) */
	uint64_t bad_seq;             /* 0: the chain is whole; else the first record at fault */
	char problem[256];            /* what is wrong at bad_seq, one line */
};
typedef void store_audit_check_cb(void *ctx, int rc, const struct store_audit_check *res);
/* Walks the whole chain from the record after the retention anchor to the recorded head,
 * recomputing every hash. With anchor_seq > 0, the record of that seq must also have the
 * hash anchor (32 bytes), written down elsewhere earlier (sealctl audit verify --anchor). */
int store_audit_verify(struct store *s, uint64_t anchor_seq, const unsigned char *anchor,
                       store_audit_check_cb *cb, void *ctx);

/* The verifier's steps, shared by the backends: start at the retention anchor, feed each
 * record in seq order, then end at the recorded head. A step returns false once the chain
 * is broken (check->bad_seq and problem say where and how). */
struct store_audit_walk {
	struct store_audit_check check;
	uint64_t expect_seq;
	unsigned char prev[32];
	uint64_t want_seq; /* --anchor */
	unsigned char want[32];
	bool want_seen;
};
void store_audit_walk_start(struct store_audit_walk *w, uint64_t anchor_seq,
                            const unsigned char *anchor_hash);
bool store_audit_walk_step(struct store_audit_walk *w, const struct store_audit_record *r);
void store_audit_walk_end(struct store_audit_walk *w, uint64_t head_seq,
                          const unsigned char *head_hash);

/* ---- Blocking face ----
 *   struct store_sync w;
 *   store_sync_init(&w);
 *   int rc = store_sync_wait(&w, store_user_list(s, store_sync_users, &w));
 *   ... use w.users ...
 *   store_sync_done(&w);
 * Only for a store opened without a poster, from a thread that is not a store thread. Each
 * kind of result has its store_sync_X callback, which moves the result into the member of
 * that name (w.users, w.mailboxes, ...); store_sync_done frees whatever was filled. */
struct store_sync {
	int rc;
	bool done;
	struct store_users users;
	struct store_login login;
	struct store_scram_material scram;
	struct store_mailboxes mailboxes;
	struct store_certs certs;
	struct store_delivery_result delivery;
	struct store_flags_changed flags;
	struct store_uids uids;
	struct store_copied copied;
	struct store_msgs msgs;
	struct store_batch batch;
	struct store_content content;
	struct store_queue_entries queue;
	struct store_queue_reported reported;
	struct store_metadata metadata;
	struct store_audit_records audit;
	struct store_audit_check audit_check;
	void *impl; /* mutex and condition variable */
};
void store_sync_init(struct store_sync *w);
/* The callback of an operation without a result: only rc. */
void store_sync_done_cb(void *ctx, int rc);
void store_sync_users(void *ctx, int rc, struct store_users *res);
void store_sync_login(void *ctx, int rc, struct store_login *res);
void store_sync_scram(void *ctx, int rc, struct store_scram_material *res);
void store_sync_mailboxes(void *ctx, int rc, struct store_mailboxes *res);
void store_sync_certs(void *ctx, int rc, struct store_certs *res);
void store_sync_delivery(void *ctx, int rc, struct store_delivery_result *res);
void store_sync_flags(void *ctx, int rc, struct store_flags_changed *res);
void store_sync_uids(void *ctx, int rc, struct store_uids *res);
void store_sync_copied(void *ctx, int rc, struct store_copied *res);
void store_sync_msgs(void *ctx, int rc, struct store_msgs *res);
void store_sync_batch(void *ctx, int rc, struct store_batch *res);
void store_sync_content(void *ctx, int rc, struct store_content *res);
void store_sync_queue(void *ctx, int rc, struct store_queue_entries *res);
void store_sync_reported(void *ctx, int rc, struct store_queue_reported *res);
void store_sync_metadata(void *ctx, int rc, struct store_metadata *res);
void store_sync_audit(void *ctx, int rc, struct store_audit_records *res);
void store_sync_audit_check(void *ctx, int rc, const struct store_audit_check *res);
/* Waits for the callback (unless submit_rc < 0) and returns its rc, or submit_rc. */
int store_sync_wait(struct store_sync *w, int submit_rc);
/* Frees every result held and the waiting machinery. */
void store_sync_done(struct store_sync *w);

/* ---- Health ---- */

/* A health check (HTTPS /healthz): the backend answers a trivial query the way it answers
 * real ones (SQLite: a read on a worker's connection). rc 0, or -EIO when the store cannot
 * read or no longer takes writes (a write or fsync failed), -ESHUTDOWN when closing. */
int store_ping(struct store *s, store_done_cb *cb, void *ctx);

/* ---- Users ---- */

/* Address syntax check and lower-casing: 0 and a new string in *out_r, or -EINVAL. */
int store_address_normalize(const char *address, char **out_r);

/* Creates the user with a yescrypt hash and SCRAM material of password (borrowed, wiped
 * from the store's own copies after use) and the mailboxes INBOX, Sent, Drafts, Trash,
 * Junk, Archive. res: v[0], the new user. -EEXIST, -EINVAL. */
int store_user_add(struct store *s, const char *address, const char *password, store_users_cb *cb,
                   void *ctx);
/* Deletes the user, its mailboxes and messages (content is freed with its last reference).
 * -ENOENT. */
int store_user_del(struct store *s, const char *address, store_done_cb *cb, void *ctx);
/* New password (hash and SCRAM material). -ENOENT. */
int store_user_passwd(struct store *s, const char *address, const char *password, store_done_cb *cb,
                      void *ctx);
int store_user_set_require_cert(struct store *s, const char *address, bool on, store_done_cb *cb,
                                void *ctx);
int store_user_set_disabled(struct store *s, const char *address, bool on, store_done_cb *cb,
                            void *ctx);
/* The user's limits, 0 = unlimited: bytes of storage, and the number of messages in all
 * its mailboxes (a delivery, APPEND or COPY that would pass either fails with -EDQUOT;
 * what is already stored stays). -ENOENT. */
int store_user_set_quota(struct store *s, const char *address, uint64_t bytes, store_done_cb *cb,
                         void *ctx);
int store_user_set_message_quota(struct store *s, const char *address, uint64_t messages,
                                 store_done_cb *cb, void *ctx);
/* res: v[0]. -ENOENT. */
int store_user_get(struct store *s, const char *address, store_users_cb *cb, void *ctx);
/* res: v[], ordered by address. */
int store_user_list(struct store *s, store_users_cb *cb, void *ctx);
/*
 * Password check on a worker thread: rc 0 with res->user_id and
 * res->require_client_certificate, or -EACCES for a wrong password, an unknown user and a
 * disabled user alike (an unknown user is checked against a dummy hash: same time).
 * Verifies yescrypt and imported $6$ / $2b$ hashes.
 */
int store_auth(struct store *s, const char *address, const char *password, store_login_cb *cb,
               void *ctx);
/* res: scram (salt, iterations, stored_key, server_key), user_id. -ENOENT when unknown or
 * disabled, or when the user has no SCRAM material (imported hash). */
int store_user_scram(struct store *s, const char *address, store_scram_cb *cb, void *ctx);

/* ---- Mailboxes ---- */

/* res: v[], the user's mailboxes with counts, ordered by name (INBOX first). -ENOENT. */
int store_mailbox_list(struct store *s, int64_t user_id, store_mailboxes_cb *cb, void *ctx);
/* One mailbox by name (INBOX any case) with counts: SELECT, STATUS. res: v[0].
 * -ENOENT. */
int store_mailbox_get(struct store *s, int64_t user_id, const char *name, store_mailboxes_cb *cb,
                      void *ctx);
/* res: v[0], the new mailbox. -EEXIST, -EINVAL (bad name). */
int store_mailbox_create(struct store *s, int64_t user_id, const char *name, unsigned special_use,
                         store_mailboxes_cb *cb, void *ctx);
/* Deletes the mailbox and its messages (not INBOX: -EINVAL). */
int store_mailbox_delete(struct store *s, int64_t user_id, const char *name, store_done_cb *cb,
                         void *ctx);
/* Renames (new UIDVALIDITY is not needed: ids are stable). res: v[0], the mailbox under its
 * new name with its counts. -ENOENT, -EEXIST, -EINVAL. */
int store_mailbox_rename(struct store *s, int64_t user_id, const char *name, const char *new_name,
                         store_mailboxes_cb *cb, void *ctx);
/* Adds name to the user's subscriptions or removes it; name need not be a mailbox (and
 * removing a name that is not subscribed succeeds). -EINVAL for an invalid name. A new
 * mailbox is subscribed; a renamed one keeps its subscription; a deleted one leaves it. */
int store_mailbox_subscribe(struct store *s, int64_t user_id, const char *name, bool on,
                            store_done_cb *cb, void *ctx);
/*
 * \Recent (RFC 3501 2.3.2): hands the messages of the mailbox that no caller has taken yet,
 * up to (not including) UID upto, to this caller, and to no later one. The session that
 * selects a mailbox read-write, or has it selected when a message arrives, takes them.
 * res: v[], the UIDs taken (existing messages only; empty when another took them first).
 */
int store_recent_take(struct store *s, int64_t mailbox_id, uint32_t upto, store_uids_cb *cb,
                      void *ctx);

/* ---- Annotations (IMAP METADATA, RFC 5464) ----
 * Entries of one user, either on the server as a whole (mailbox_id 0: the user's server
 * annotations; this store has no annotations shared between users) or on one of the
 * user's mailboxes. A name is "/private/..." or "/shared/..." in lower case, checked by
 * the caller (store_meta_name_valid); the two scopes are distinct entries. A mailbox's
 * entries go with it: kept across RENAME (the id stays), removed when it is deleted, and
 * copied to the new mailbox when INBOX is renamed (RFC 5464 4.1). */

#define STORE_META_DEPTH_INFINITY (-1)

/* The entries of mailbox_id (0: server) named names[0..n) (lower case, no trailing "/"),
 * and with depth 1 those one level below each, with STORE_META_DEPTH_INFINITY every one
 * below (RFC 5464 4.2.2). res: v[], ordered by name, each once. -ENOENT when mailbox_id
 * is not a mailbox of user_id; -EINVAL for n 0. */
int store_metadata_get(struct store *s, int64_t user_id, int64_t mailbox_id,
                       const char *const *names, size_t n, int depth, store_metadata_cb *cb,
                       void *ctx);

/* One change of store_metadata_set: value NULL removes the entry (no error when absent). */
struct store_meta_change {
	const char *name;
	const void *value;
	size_t len;
};

/*
 * Sets or removes the entries of changes[0..n) on mailbox_id (0: server) in one
 * transaction: all or none. With max_entries > 0, -EDQUOT when the change would leave the
 * user (server and every mailbox together) with more than max_entries entries and more
 * than before. -ENOENT when mailbox_id is not a mailbox of user_id; -EINVAL for n 0 or a
 * name store_meta_name_valid refuses. changes and what they point to are borrowed until
 * the call returns.
 */
int store_metadata_set(struct store *s, int64_t user_id, int64_t mailbox_id,
                       const struct store_meta_change *changes, size_t n, uint64_t max_entries,
                       store_done_cb *cb, void *ctx);
/* A name the store keeps: "/private/x..." or "/shared/x..." in lower case, printable
 * ASCII (space included) without "*", "%", "//" or a trailing "/". */
bool store_meta_name_valid(const char *name);
/* Whether name is one of names[0..n) or below one of them within depth (0, 1 or
 * STORE_META_DEPTH_INFINITY): what store_metadata_get returns, for entries a caller
 * computes itself. */
bool store_meta_matches(const char *name, const char *const *names, size_t n, int depth);

/* ---- Messages ---- */

/* Where a new message goes. mailbox_id 0 means the user's INBOX. */
struct store_target {
	int64_t user_id;
	int64_t mailbox_id;
	unsigned flags;       /* enum store_flag bits */
	const char *keywords; /* space separated, NULL for none */
};

/* A DSN-aware remote recipient for the relay queue. */
struct store_relay_rcpt {
	const char *address;
	const char *notify; /* NULL when not given */
	const char *orcpt;  /* NULL when not given */
};

/* What a delivery's report hook sees (struct store_deliver_report). */
struct store_report_input {
	const struct store_delivered *delivered; /* per target, request order; rc < 0: failed */
	size_t n_targets;
	uint64_t size;    /* bytes of the message */
	const void *head; /* the message, or its first STORE_REPORT_HEAD_MAX bytes */
	size_t head_len;
	bool head_complete; /* head is the whole message */
};

#define STORE_REPORT_HEAD_MAX (256u * 1024)

/*
 * The failure report of a delivery (store_deliver_req.report). When a target cannot take
 * the message (-EDQUOT, -ENOENT) while another target or the relay queue does, the store
 * calls format on the writer thread inside the delivery's transaction and stores what it
 * returns in that same transaction: after a crash there are both the copies and the
 * report, or neither, and a success reply never stands for a copy nobody is told about.
 *
 * Contract of format:
 *   - pure: it reads ctx and in and writes only *msg_r and *len_r; it runs on a store
 *     thread, maybe more than once for one delivery (a transaction rolled back and run
 *     again), so ctx stays valid and unchanged until the delivery's callback;
 *   - returns 0 with a complete message (CRLF line ends, at most the store's maximum
 *     message size) in *msg_r, malloc'd and then owned (freed) by the store; or 0 with
 *     *msg_r NULL when no report is wanted (RFC 3461 NOTIFY=NEVER); or a negative errno,
 *     which fails the whole delivery (nothing is stored).
 * The report goes to `to`: into the INBOX of that user when local, else onto the relay
 * queue with the null sender (and REQUIRETLS when the delivery has it, RFC 8689 5). A
 * report with nowhere to go (local user unknown, that mailbox over quota) is dropped and
 * the delivery stands: res->report_rc says which. No report is made for an empty `to`:
 * the null sender is never reported to (RFC 3461 6.2).
 */
struct store_deliver_report {
	int (*format)(void *ctx, const struct store_report_input *in, char **msg_r, size_t *len_r);
	void *ctx;
	const char *to; /* the envelope sender */
	bool local;     /* to's domain is one of ours */
};

/*
 * One message to deliver. The bytes come from memory (data/size, borrowed until the
 * callback) or from a spool file (spool_path, read in chunks and never held whole; the
 * store neither deletes nor keeps it: delete it after the callback).
 */
struct store_deliver_req {
	const void *data;
	size_t size;
	const char *spool_path;
	int64_t internal_date; /* 0 = now */
	const struct store_target *targets;
	size_t n_targets;
	/* Relay queue, in the same transaction; n_relay 0 for none. */
	const char *sender; /* reverse path, "" for the null sender */
	const struct store_relay_rcpt *relay;
	size_t n_relay;
	bool requiretls;
	const char *ret;   /* DSN RET or NULL */
	const char *envid; /* DSN ENVID or NULL */
	/* The report of targets that fail while others succeed, or NULL for none. */
	const struct store_deliver_report *report;
};

/*
 * Stores the content once (reused when the same bytes are already stored), adds it to each
 * target mailbox with a new UID and modseq, queues the relay recipients, all in one
 * transaction; the callback runs after COMMIT. The MIME structure and SEARCH fields are
 * computed on a worker thread first. The request is borrowed until the callback.
 * res: content_id, v[] (one per target: rc per target: a target over quota or unknown does
 * not fail the others; req->report tells the sender about it), queue_id when relayed, size,
 * report_rc. rc: -ENOSPC (disk full: nothing stored), -EFBIG, -EIO; when
 * every target failed and nothing is relayed (nothing stored, no report): -EDQUOT when a
 * target was over quota, else -ENOENT.
 */
int store_deliver(struct store *s, const struct store_deliver_req *req, store_delivery_cb *cb,
                  void *ctx);
/*
 * Delivers reqs[0..n) as one: IMAP APPEND and MULTIAPPEND (RFC 3502). Each request is one
 * message for store_deliver with exactly one target and neither relay recipients nor a
 * report. All are stored in one transaction (one commit, one fsync), in request order
 * (ascending UIDs when they share a mailbox), or none is: a message refused (its target
 * unknown or over quota, too large, a bad spool file) fails the whole call and nothing
 * of it is stored. The MIME structure and SEARCH fields are computed on a worker first.
 * reqs and what they point to are borrowed until the callback. res: v[] (n, one per
 * request, in order). rc: as store_deliver (-ENOENT, -EDQUOT, -EFBIG, -ENOSPC, -EIO);
 * -EINVAL at submit for n 0 or a request that is not one target only.
 */
int store_deliver_batch(struct store *s, const struct store_deliver_req *reqs, size_t n,
                        store_delivery_cb *cb, void *ctx);

/* Every message of a mailbox in UID order (SELECT, FETCH FLAGS, POP3 maildrop).
 * changed_since > 0 lists only messages with a higher modseq. res: v[], modseq,
 * uidvalidity. */
int store_message_list(struct store *s, int64_t mailbox_id, uint64_t changed_since,
                       store_msgs_cb *cb, void *ctx);
/* One message with its MIME JSON and header fields. res: v[0]. -ENOENT. */
int store_message_get(struct store *s, int64_t mailbox_id, uint32_t uid, store_msgs_cb *cb,
                      void *ctx);
/*
 * The stored MIME structure of several messages in one read, in the order of uids[0..n),
 * and with with_content their whole content too: IMAP FETCH BODYSTRUCTURE / ENVELOPE /
 * BODY[part] of many messages. res: v[] (uid, size, mime_json; expunged ones are left out),
 * and with with_content data (the contents, one after the other) and len.
 * Reading stops before the first message whose content (with_content) or structure would
 * take the total past max_total (≤ 1 MiB), after at least one structure: res->n may be
 * < n, ask again from there. A message that does not fit alone is not read with content.
 */
int store_message_structures(struct store *s, int64_t mailbox_id, const uint32_t *uids, size_t n,
                             size_t max_total, bool with_content, store_batch_cb *cb, void *ctx);
/* Every message of a mailbox in UID order with its decoded header fields (hdr_from, hdr_to,
 * hdr_cc, hdr_subject, hdr_message_id, hdr_date; no mime_json): IMAP SEARCH header keys in
 * one round trip (storage/sqlite/store_imap.c). res: v[]. */
int store_message_headers(struct store *s, int64_t mailbox_id, store_msgs_cb *cb, void *ctx);
/* The messages of a mailbox with a UID above after_uid (0: all), in UID order, with what
 * IMAP SORT and THREAD compare, as computed at delivery: uid, size, internal_date,
 * hdr_date, hdr_message_id and the sort_* and thread_refs fields (no other header fields,
 * no mime_json). One read; no message is parsed. Keys never change once stored, so a
 * caller may keep them and later ask only for newer UIDs. res: v[]. */
int store_message_sortkeys(struct store *s, int64_t mailbox_id, uint32_t after_uid,
                           store_msgs_cb *cb, void *ctx);
/* The whole content of several messages in one read, in the order of uids[0..n), as long
 * as their sizes add up to at most max_total (≤ 1 MiB): IMAP FETCH BODY[] of many small
 * messages. res: v[] (uid and size = bytes of each message read; expunged ones are left
 * out; reading stops before the first that does not fit, so res->n may be < n: ask again
 * from there), data (the contents, one after the other), len. */
int store_content_read_batch(struct store *s, int64_t mailbox_id, const uint32_t *uids, size_t n,
                             size_t max_total, store_batch_cb *cb, void *ctx);
/*
 * Reads at most max_len (≤ 1 MiB) bytes of the message from offset: stream a message by
 * calling again with offset += res->len until offset == total_size. res: data, len,
 * total_size. -ENOENT.
 */
int store_content_read(struct store *s, int64_t mailbox_id, uint32_t uid, uint64_t offset,
                       size_t max_len, store_content_cb *cb, void *ctx);

struct store_uid_range {
	uint32_t first, last; /* inclusive; last UINT32_MAX for "*" */
};

enum store_flag_mode { STORE_FLAGS_SET, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE };

/*
 * STORE: changes flags (and keywords, space separated, NULL to leave them alone in ADD and
 * REMOVE; SET with NULL clears them) of the messages in the ranges. unchanged_since > 0
 * skips messages whose modseq is higher (CONDSTORE). Messages whose flags change get a new
 * modseq. res: v[] changed (new flags, modseq), skipped[] by unchanged_since, modseq.
 */
int store_flags_store(struct store *s, int64_t mailbox_id, const struct store_uid_range *ranges,
                      size_t n_ranges, enum store_flag_mode mode, unsigned flags,
                      const char *keywords, uint64_t unchanged_since, store_flags_cb *cb,
                      void *ctx);
/* Removes \Deleted messages (within ranges when n_ranges > 0: UID EXPUNGE). UIDs are never
 * reused. res: v[] expunged, modseq. */
int store_expunge(struct store *s, int64_t mailbox_id, const struct store_uid_range *ranges,
                  size_t n_ranges, store_uids_cb *cb, void *ctx);
/* Removes exactly the messages in ranges (n_ranges > 0), whatever their flags, in one
 * transaction: POP3's UPDATE state, where flagging \Deleted first and expunging after
 * would be two commits a crash could fall between.
 * res: v[] removed, modseq. */
int store_remove(struct store *s, int64_t mailbox_id, const struct store_uid_range *ranges,
                 size_t n_ranges, store_uids_cb *cb, void *ctx);
/* COPY / MOVE the messages in ranges to dst (same user). res: src[] and dst[] (COPYUID),
 * uidvalidity of dst, modseq. -ENOENT, -EDQUOT (copy only). */
int store_copy(struct store *s, int64_t src_mailbox_id, const struct store_uid_range *ranges,
               size_t n_ranges, int64_t dst_mailbox_id, bool move, store_copied_cb *cb, void *ctx);
/* UIDs expunged since modseq (QRESYNC VANISHED). res: v[]. */
int store_vanished(struct store *s, int64_t mailbox_id, uint64_t since_modseq, store_uids_cb *cb,
                   void *ctx);
/* SEARCH TEXT: text is one string (spaces and quotes are part of it), matched as a
 * case-insensitive substring of the message's header or its decoded text (every text part,
 * transfer encoding undone, converted to UTF-8). res: v[], the UIDs in the mailbox whose
 * message matches. -EINVAL for a string over 4,096 bytes. */
int store_search_text(struct store *s, int64_t mailbox_id, const char *text, store_uids_cb *cb,
                      void *ctx);
/* SEARCH BODY: as store_search_text, but the decoded text only, not the header. */
int store_search_body(struct store *s, int64_t mailbox_id, const char *text, store_uids_cb *cb,
                      void *ctx);

/* ---- Relay queue ---- */

/* res: v[], the entries with their recipients, oldest first. */
int store_queue_list(struct store *s, store_queue_cb *cb, void *ctx);
/*
 * A consistent copy of the whole store at path, while the store keeps serving (one read
 * snapshot: writers are not held up). The copy is complete and fsynced, in rollback-journal
 * mode (one self-contained file, mode 0600), written to path.tmp and renamed over path.
 * -ENOTSUP for a backend that keeps nothing on disk.
 */
int store_backup(struct store *s, const char *path, store_done_cb *cb, void *ctx);
/* Adds a named file (the configuration, the CA's files) to a backup store_backup made. */
int store_backup_put_extra(const char *backup, const uint8_t *kek, const char *name,
                           const void *data, size_t len, const char **error_r);
/* Gets each file store_backup_put_extra added: return < 0 to stop the restore. */
typedef int store_restore_extra_fn(void *ctx, const char *name, const void *data, size_t len);
/*
 * Puts the backup in place of the store at db_path, which nobody may have open (the
 * caller holds data_dir's DIRLOCK_DAEMON): the backup's integrity is checked, it is copied
 * beside db_path, its extra files are handed to extra, the copy is checked and fsynced,
 * the old store's WAL is checkpointed into it and removed with its shared memory, and the
 * copy is renamed over db_path; the result is checked once more. A crash at any point
 * leaves the old store or the restored one. 0, or a negative code with *error_r.
 * An encrypted backup (its wrapped data key in backup.key) needs kek, the configured
 * key-encryption key, and leaves an encrypted store with its header rewrapped under kek; a
 * plaintext one is refused while kek is given or data_dir holds store.key.
 */
int store_restore(const char *backup, const char *db_path, const uint8_t *kek,
                  store_restore_extra_fn *extra, void *ctx, const char **error_r);
/* Encryption at rest (docs/encryption.md; sealmaild stopped, the caller holds data_dir's
 * lock). store_encrypt converts the plaintext store at db_path in place: an encrypted copy is
 * written beside it (VACUUM INTO through the sealing VFS), checked, fsynced and renamed over
 * it; a crash at any point leaves the old or the new store whole (the next open completes
 * the new one's key header). store_rekey rewraps the data key under new_kek (the header is
 * replaced atomically; the old KEK stops working). Both: 0 or a negative errno with
 * *error_r. */
int store_encrypt(const char *db_path, const uint8_t *kek, const char **error_r);
int store_rekey(const char *db_path, const uint8_t *kek, const uint8_t *new_kek,
                const char **error_r);
/* Counts only, in one read (metrics): cheap however long the queue is. */
int store_queue_summary(struct store *s, store_queue_summary_cb *cb, void *ctx);
/* Deletes a queue entry (its content is freed with the last reference). -ENOENT. */
int store_queue_delete(struct store *s, int64_t queue_id, store_done_cb *cb, void *ctx);

/* ---- Relay runner (store_relay.c) ----
 *
 * The relay takes due work with store_queue_due, which leases it (status 3, next_attempt =
 * now + lease): a server that dies mid-delivery leaves its lease, which expires and makes
 * the recipients due again, and store_queue_recover (run at start) ends every lease at once.
 * So a queued recipient is never lost; at worst it is delivered twice (RFC 5321 6.1
 * allows duplicates, never losses). store_queue_report records the outcome of an attempt,
 * and delivers the DSN for it in the same transaction.
 */

/* Up to limit entries with recipients due at now (status 0 or an expired lease), each with
 * only those recipients, which are leased until now + lease_seconds. res: v[] (oldest
 * first; rcpts[].status is what it was before the lease). */
int store_queue_due(struct store *s, int64_t now, unsigned lease_seconds, size_t limit,
                    store_queue_cb *cb, void *ctx);
/* Ends every lease (status 3 back to 0, next_attempt kept): at start, when no delivery of
 * this database can be in flight. */
int store_queue_recover(struct store *s, store_done_cb *cb, void *ctx);
/* Makes the pending recipients of one entry (queue_id > 0) or of all (0) due at now.
 * -ENOENT when queue_id names no entry with pending recipients. */
int store_queue_flush(struct store *s, int64_t queue_id, int64_t now, store_done_cb *cb, void *ctx);
/* Reads the message of a queue entry by its content id (store_queue_entry.content_id),
 * like store_content_read. res: data, len, total_size. -ENOENT. */
int store_queue_content_read(struct store *s, int64_t content_id, uint64_t offset, size_t max_len,
                             store_content_cb *cb, void *ctx);

struct store_queue_outcome {
	int64_t rcpt_id;
	int status;           /* 0 retry at next_attempt, 1 delivered, 2 failed for good */
	int64_t next_attempt; /* for status 0 */
	const char *error;    /* the last error (reply or reason), NULL to keep the old one */
};

struct store_queue_report {
	int64_t queue_id;
	const struct store_queue_outcome *outcomes;
	size_t n_outcomes;
	/* A complete DSN message (RFC 3464) for this report, or NULL. It goes to the entry's
	 * sender: into the INBOX of that local user when dsn_local (an unknown user gets
	 * none), else into the relay queue with the null sender. An entry whose sender is
	 * the null sender never gets one, whatever the caller passes (no bounce of a bounce). */
	const void *dsn;
	size_t dsn_len;
	bool dsn_local;
};

/* Records every outcome (attempts + 1) and the DSN in one transaction; the entry is
 * removed when no recipient is left pending. The report is borrowed until the callback.
 * res: dsn_queue_id, the queue id of a queued remote DSN (else 0). -ENOENT when the entry
 * is gone (deleted by sealctl meanwhile: nothing recorded). */
int store_queue_report(struct store *s, const struct store_queue_report *rep,
                       store_queue_reported_cb *cb, void *ctx);

/* ---- Certificates issued by the built-in client CA ----
 * The record of what sealctl issued and revoked (the certificates themselves and the CRL
 * file live under data_dir/ca/, made by certs/). Serials are lowercase hex as
 * cert_serial_normalize gives them; times are seconds since the epoch. A record outlives
 * its user (user_id becomes 0) so a deleted user's certificate stays revocable. */

enum store_cert_kind { STORE_CERT_CLIENT, STORE_CERT_SERVER };

struct store_cert {
	int64_t id;
	char *serial;
	char *address;   /* client: the e-mail address; server: the host name */
	int64_t user_id; /* 0: none (server certificate, or the user was deleted) */
	enum store_cert_kind kind;
	int64_t not_before, not_after;
	int64_t revoked_at; /* 0: not revoked */
	int64_t created;
};

/* What store_cert_add records; borrowed until the call returns. */
struct store_cert_new {
	const char *serial;
	const char *address; /* lower-cased by the caller (certs/ already does) */
	enum store_cert_kind kind;
	int64_t not_before, not_after;
};

/* Records an issued certificate; a client certificate is linked to the user of that address
 * when there is one. res: v[0]. -EEXIST (serial already recorded), -EINVAL. */
int store_cert_add(struct store *s, const struct store_cert_new *cert, store_certs_cb *cb,
                   void *ctx);
/* Every certificate ordered by not_after; with expiring_before > 0 only those not revoked
 * whose not_after <= expiring_before (expired ones included). res: v[]. */
int store_cert_list(struct store *s, int64_t expiring_before, store_certs_cb *cb, void *ctx);
/* res: v[0]. -ENOENT, -EINVAL (serial not lowercase hex). */
int store_cert_get(struct store *s, const char *serial, store_certs_cb *cb, void *ctx);
/* The client certificates of address that are neither revoked nor expired at now.
 * res: v[] (possibly none). */
int store_cert_find_valid(struct store *s, const char *address, int64_t now, store_certs_cb *cb,
                          void *ctx);
/*
 * Revokes, at now, the certificate with that serial (address NULL) or every valid (as
 * store_cert_find_valid) certificate of address (serial NULL), and takes the next CRL
 * number in the same transaction. res: v[] now revoked, crl_number. -ENOENT (no such
 * serial, or address has no valid certificate), -EALREADY (that serial is already revoked:
 * nothing changed, no number taken), -EINVAL.
 */
int store_cert_revoke(struct store *s, const char *serial, const char *address, int64_t now,
                      store_certs_cb *cb, void *ctx);
/* Takes the next CRL number (1 the first time; strictly increasing). res: crl_number. */
int store_cert_crl_next(struct store *s, store_certs_cb *cb, void *ctx);
/* Every revoked certificate, oldest revocation first (what a CRL lists). res: v[]. */
int store_cert_list_revoked(struct store *s, store_certs_cb *cb, void *ctx);

#endif
