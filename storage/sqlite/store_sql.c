/*
 * Every SQL statement of the store, in one table, prepared lazily and at most once per
 * connection; and the opening of a connection with the pragmas durability depends on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/xmalloc.h"
#include "storage/sqlite/store_private.h"
#include "storage/sqlite/store_vfs.h"

#define MB_COLS                                                                                    \
	"m.id, m.user_id, m.name, m.special_use, "                                                 \
	"EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = m.user_id AND s.name = m.name), " \
	"m.uidvalidity, m.uidnext, m.highest_modseq, m.messages, m.unseen, m.bytes, "              \
	"(SELECT count(*) FROM entries e WHERE e.mailbox_id = m.id AND e.uid >= m.recent_uid), "   \
	"m.deleted, m.deleted_bytes, m.objectid"
#define USER_COLS                                                                                  \
	"id, address, require_client_cert, disabled, quota_bytes, used_bytes, password_hash, "     \
	"quota_messages, " USER_MESSAGES("users.id")
/* Messages of a user: the sum of its few mailboxes' counts, which triggers keep. */
#define USER_MESSAGES(id)                                                                          \
	"(SELECT coalesce(sum(um.messages), 0) FROM mailboxes um WHERE um.user_id = " id ")"
#define ENTRY_COLS                                                                                 \
	"uid, modseq, flags, keywords, internal_date, size, content_id, emailid, threadid, "       \
	"savedate"
#define DELIVER_COLS                                                                               \
	"m.id, m.user_id, m.uidvalidity, m.uidnext, m.highest_modseq, m.messages, "                \
	"u.quota_bytes, u.used_bytes, u.quota_messages, " USER_MESSAGES(                           \
	    "u.id") " "                                                                            \
	            "FROM mailboxes m JOIN users u ON u.id = m.user_id"
#define STRUCT_META                                                                                \
	"e.emailid, e.threadid, e.savedate, "                                                      \
	"(SELECT p.text FROM previews p WHERE p.content_id = e.content_id)"
#define CERT_COLS "id, serial, address, user_id, kind, not_before, not_after, revoked_at, created"

static const char *const store_sql_text[SQL__COUNT] = {
    [SQL_BEGIN] = "BEGIN IMMEDIATE",
    [SQL_BEGIN_READ] = "BEGIN",
    [SQL_COMMIT] = "COMMIT",
    [SQL_ROLLBACK] = "ROLLBACK",
    [SQL_SAVEPOINT] = "SAVEPOINT job",
    [SQL_RELEASE] = "RELEASE job",
    [SQL_ROLLBACK_TO] = "ROLLBACK TO job",
    [SQL_USER_INSERT] = "INSERT INTO users (address, password_hash, scram_salt, "
                        "scram_iterations, scram_stored_key, scram_server_key, created) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
    [SQL_USER_BY_ADDRESS] = "SELECT " USER_COLS " FROM users WHERE address = ?",
    [SQL_USER_LIST] = "SELECT " USER_COLS " FROM users ORDER BY address",
    [SQL_USER_DELETE] = "DELETE FROM users WHERE address = ?",
    [SQL_USER_SET_PASSWORD] = "UPDATE users SET password_hash = ?2, scram_salt = ?3, "
                              "scram_iterations = ?4, scram_stored_key = ?5, "
                              "scram_server_key = ?6 WHERE address = ?1",
    [SQL_USER_SET_REQUIRE_CERT] = "UPDATE users SET require_client_cert = ?2 WHERE address = ?1",
    [SQL_USER_SET_DISABLED] = "UPDATE users SET disabled = ?2 WHERE address = ?1",
    [SQL_USER_SET_QUOTA] = "UPDATE users SET quota_bytes = ?2 WHERE address = ?1",
    [SQL_USER_SET_MESSAGE_QUOTA] = "UPDATE users SET quota_messages = ?2 WHERE address = ?1",
    [SQL_USER_AUTH] = "SELECT id, password_hash, require_client_cert, disabled FROM users "
                      "WHERE address = ?",
    [SQL_USER_SCRAM] = "SELECT id, scram_salt, scram_iterations, scram_stored_key, "
                       "scram_server_key, disabled FROM users WHERE address = ?",
    /* ?4 is the clock; a value already given is never given again (schema 4). */
    [SQL_MAILBOX_INSERT] = "INSERT INTO mailboxes (user_id, name, special_use, uidvalidity) "
                           "SELECT ?1, ?2, ?3, max(?4, last + 1) FROM uidvalidity_state",
    [SQL_MAILBOX_LIST] = "SELECT " MB_COLS " FROM mailboxes m WHERE m.user_id = ? "
                         "ORDER BY m.name <> 'INBOX', m.name",
    [SQL_MAILBOX_BY_NAME] = "SELECT " MB_COLS " FROM mailboxes m "
                            "WHERE m.user_id = ? AND m.name = ?",
    [SQL_MAILBOX_BY_ID] = "SELECT " MB_COLS " FROM mailboxes m WHERE m.id = ?",
    [SQL_MAILBOX_DELETE] = "DELETE FROM mailboxes WHERE id = ?",
    [SQL_MAILBOX_RENAME] = "UPDATE mailboxes SET name = ?3 || substr(name, length(?2) + 1) "
                           "WHERE user_id = ?1 AND (name = ?2 OR "
                           "substr(name, 1, length(?2) + 1) = ?2 || '/')",
    /* Subscriptions are names, kept when their mailbox goes (RFC 3501 6.3.6). */
    [SQL_SUBSCRIBE_ADD] = "INSERT OR IGNORE INTO subscriptions (user_id, name) VALUES (?1, ?2)",
    [SQL_SUBSCRIBE_DEL] = "DELETE FROM subscriptions WHERE user_id = ?1 AND name = ?2",
    [SQL_SUBSCRIBED_MISSING] = "SELECT s.name FROM subscriptions s WHERE s.user_id = ? AND "
                               "NOT EXISTS (SELECT 1 FROM mailboxes m WHERE "
                               "m.user_id = s.user_id AND m.name = s.name) ORDER BY s.name",
    /* \Recent: the first UID no session has taken yet (store_recent_take). */
    [SQL_RECENT_GET] = "SELECT recent_uid FROM mailboxes WHERE id = ?",
    [SQL_RECENT_SET] = "UPDATE mailboxes SET recent_uid = ?2 WHERE id = ?1",
    [SQL_ENTRY_UIDS_BETWEEN] = "SELECT uid FROM entries WHERE mailbox_id = ?1 "
                               "AND uid >= ?2 AND uid < ?3 ORDER BY uid",
    [SQL_MAILBOX_BUMP] = "UPDATE mailboxes SET highest_modseq = highest_modseq + 1, "
                         "uidnext = uidnext + ?2 WHERE id = ?1 "
                         "RETURNING highest_modseq, uidnext",
    [SQL_MAILBOX_STATE] = "SELECT user_id, highest_modseq, uidnext, messages "
                          "FROM mailboxes WHERE id = ?",
    [SQL_CONTENT_BY_HASH] = "SELECT id FROM contents WHERE sha256 = ?",
    [SQL_CONTENT_INSERT] = "INSERT INTO contents (sha256, size, body, mime, hdr_from, hdr_to, "
                           "hdr_cc, hdr_subject, hdr_message_id, hdr_date) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [SQL_FTS_INSERT] = "INSERT INTO fts (rowid, header, body) VALUES (?, ?, ?)",
    [SQL_SORTKEY_INSERT] = "INSERT INTO sortkeys (content_id, date, message_id, subject, reply, "
                           "from_mbox, from_name, to_mbox, to_name, cc_mbox, refs) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [SQL_PREVIEW_INSERT] = "INSERT INTO previews (content_id, text) VALUES (?, ?)",
    [SQL_THREAD_KEYS] = "SELECT message_id, refs FROM sortkeys WHERE content_id = ?",
    [SQL_THREAD_FIND] = "SELECT threadid FROM threadids WHERE user_id = ? AND message_id = ?",
    [SQL_THREAD_ADD] = "INSERT OR IGNORE INTO threadids (user_id, message_id, threadid) "
                       "VALUES (?, ?, ?)",
    [SQL_ENTRY_INSERT] = "INSERT INTO entries (mailbox_id, uid, content_id, modseq, flags, "
                         "keywords, internal_date, size, emailid, threadid, savedate) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [SQL_ENTRY_LIST] = "SELECT " ENTRY_COLS " FROM entries WHERE mailbox_id = ? ORDER BY uid",
    [SQL_ENTRY_LIST_SINCE] = "SELECT " ENTRY_COLS " FROM entries "
                             "WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
    [SQL_ENTRY_GET] = "SELECT e.uid, e.modseq, e.flags, e.keywords, e.internal_date, e.size, "
                      "e.content_id, e.emailid, e.threadid, e.savedate, c.mime, c.hdr_from, "
                      "c.hdr_to, c.hdr_cc, c.hdr_subject, c.hdr_message_id, c.hdr_date, "
                      "(SELECT p.text FROM previews p WHERE p.content_id = e.content_id) "
                      "FROM entries e JOIN contents c ON c.id = e.content_id "
                      "WHERE e.mailbox_id = ? AND e.uid = ?",
    [SQL_ENTRY_CONTENT] = "SELECT content_id, size FROM entries WHERE mailbox_id = ? AND uid = ?",
    [SQL_ENTRY_RANGE] = "SELECT " ENTRY_COLS " FROM entries "
                        "WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid",
    [SQL_ENTRY_SET_FLAGS] = "UPDATE entries SET flags = ?3, keywords = ?4, modseq = ?5 "
                            "WHERE mailbox_id = ?1 AND uid = ?2",
    [SQL_ENTRY_DELETED_RANGE] = "SELECT uid FROM entries WHERE mailbox_id = ?1 "
                                "AND uid BETWEEN ?2 AND ?3 AND (flags & 8) <> 0 ORDER BY uid",
    [SQL_ENTRY_DELETE] = "DELETE FROM entries WHERE mailbox_id = ? AND uid = ?",
    [SQL_EXPUNGED_INSERT] = "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) "
                            "VALUES (?, ?, ?)",
    [SQL_EXPUNGED_SINCE] = "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? "
                           "ORDER BY uid",
    [SQL_QUOTA_CHECK] = "SELECT quota_bytes, used_bytes, quota_messages, " USER_MESSAGES(
        "users.id") " FROM users WHERE id = ?",
    /* Delivery (store_deliver.c): a target with what its checks and its new entry need. */
    [SQL_DELIVER_INBOX] = "SELECT " DELIVER_COLS " WHERE m.user_id = ? AND m.name = 'INBOX'",
    [SQL_DELIVER_MAILBOX] = "SELECT " DELIVER_COLS " WHERE m.id = ?",
    [SQL_DELIVER_BUMP] = "UPDATE mailboxes SET highest_modseq = ?2, uidnext = ?3 WHERE id = ?1",
    [SQL_QUEUE_INSERT] = "INSERT INTO queue (content_id, sender, requiretls, ret, envid, "
                         "created) VALUES (?, ?, ?, ?, ?, ?)",
    [SQL_QUEUE_RCPT_INSERT] = "INSERT INTO queue_rcpts (queue_id, address, notify, orcpt, "
                              "next_attempt) VALUES (?, ?, ?, ?, ?)",
    [SQL_QUEUE_LIST] = "SELECT q.id, q.content_id, c.size, q.sender, q.requiretls, q.ret, "
                       "q.envid, q.created FROM queue q JOIN contents c ON c.id = q.content_id "
                       "ORDER BY q.id",
    [SQL_QUEUE_RCPTS] = "SELECT id, address, notify, orcpt, status, attempts, next_attempt, "
                        "last_error FROM queue_rcpts WHERE queue_id = ? ORDER BY id",
    [SQL_QUEUE_DELETE] = "DELETE FROM queue WHERE id = ?",
    /* Relay runner (store_relay.c). Status 3 is "in flight": leased until next_attempt. */
    [SQL_QUEUE_DUE] = "SELECT DISTINCT queue_id FROM queue_rcpts WHERE status IN (0, 3) AND "
                      "next_attempt <= ? ORDER BY queue_id LIMIT ?",
    [SQL_QUEUE_GET] = "SELECT q.id, q.content_id, c.size, q.sender, q.requiretls, q.ret, "
                      "q.envid, q.created FROM queue q JOIN contents c ON c.id = q.content_id "
                      "WHERE q.id = ?",
    [SQL_QUEUE_RCPTS_DUE] = "SELECT id, address, notify, orcpt, status, attempts, "
                            "next_attempt, last_error FROM queue_rcpts WHERE queue_id = ? AND "
                            "status IN (0, 3) AND next_attempt <= ? ORDER BY id",
    [SQL_QUEUE_RCPT_LEASE] = "UPDATE queue_rcpts SET status = 3, next_attempt = ? WHERE id = ?",
    [SQL_QUEUE_RCPT_SET] = "UPDATE queue_rcpts SET status = ?, attempts = attempts + 1, "
                           "next_attempt = ?, last_error = coalesce(?, last_error) "
                           "WHERE id = ? AND queue_id = ?",
    [SQL_QUEUE_PENDING] = "SELECT count(*) FROM queue_rcpts WHERE queue_id = ? AND "
                          "status IN (0, 3)",
    [SQL_QUEUE_FLUSH] = "UPDATE queue_rcpts SET next_attempt = ?2 WHERE status = 0 AND "
                        "(?1 = 0 OR queue_id = ?1)",
    [SQL_QUEUE_RECOVER] = "UPDATE queue_rcpts SET status = 0 WHERE status = 3",
    [SQL_CONTENT_SIZE] = "SELECT size FROM contents WHERE id = ?",
    [SQL_SEARCH_TEXT] = "SELECT e.uid FROM entries e WHERE e.mailbox_id = ?1 AND "
                        "e.content_id IN (SELECT rowid FROM fts WHERE fts MATCH ?2) "
                        "ORDER BY e.uid",
    /* The columns are read by rowid and compared outside FTS5 (the "+"): a LIKE that
     * FTS5 took as its own constraint would scan every row of the table. */
    [SQL_SEARCH_SCAN] = "SELECT e.uid FROM entries e WHERE e.mailbox_id = ?1 AND EXISTS ("
                        "SELECT 1 FROM fts f WHERE f.rowid = e.content_id AND ("
                        "+coalesce(f.body, '') LIKE ?2 ESCAPE '\\' OR "
                        "(?3 AND +coalesce(f.header, '') LIKE ?2 ESCAPE '\\'))) "
                        "ORDER BY e.uid",
    [SQL_CERT_INSERT] = "INSERT INTO certs (serial, address, user_id, kind, not_before, "
                        "not_after, created) VALUES (?1, ?2, (SELECT id FROM users WHERE "
                        "address = ?2 AND ?3 = 'client'), ?3, ?4, ?5, ?6)",
    [SQL_CERT_BY_SERIAL] = "SELECT " CERT_COLS " FROM certs WHERE serial = ?",
    [SQL_CERT_LIST] = "SELECT " CERT_COLS " FROM certs WHERE ?1 = 0 OR "
                      "(revoked_at IS NULL AND not_after <= ?1) ORDER BY not_after, id",
    [SQL_CERT_VALID_BY_ADDRESS] = "SELECT " CERT_COLS " FROM certs WHERE address = ?1 AND "
                                  "kind = 'client' AND revoked_at IS NULL AND not_after > ?2 "
                                  "ORDER BY id",
    [SQL_CERT_REVOKE] = "UPDATE certs SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
    [SQL_CERT_REVOKED] = "SELECT " CERT_COLS " FROM certs WHERE revoked_at IS NOT NULL "
                         "ORDER BY revoked_at, id",
    [SQL_CRL_NEXT] = "UPDATE crl_state SET number = number + 1 WHERE id = 1 RETURNING number",
    /* Annotations (store_metadata.c): mailbox 0 is the user's server annotations. */
    [SQL_META_OWNED] = "SELECT 1 FROM mailboxes WHERE id = ?1 AND user_id = ?2",
    [SQL_META_GET] = "SELECT name, value FROM annotations WHERE user_id = ?1 AND "
                     "coalesce(mailbox_id, 0) = ?2 AND (name = ?3 OR "
                     "(name > ?3 || '/' AND name < ?3 || '0')) ORDER BY name",
    [SQL_META_UPDATE] = "UPDATE annotations SET value = ?4 WHERE user_id = ?1 AND "
                        "coalesce(mailbox_id, 0) = ?2 AND name = ?3",
    [SQL_META_INSERT] = "INSERT INTO annotations (user_id, mailbox_id, name, value) "
                        "VALUES (?1, nullif(?2, 0), ?3, ?4)",
    [SQL_META_DELETE] = "DELETE FROM annotations WHERE user_id = ?1 AND "
                        "coalesce(mailbox_id, 0) = ?2 AND name = ?3",
    [SQL_META_COUNT] = "SELECT count(*) FROM annotations WHERE user_id = ?1",
    [SQL_META_COPY] = "INSERT OR IGNORE INTO annotations (user_id, mailbox_id, name, value) "
                      "SELECT user_id, ?2, name, value FROM annotations WHERE mailbox_id = ?1",
    /* A batch of messages for FETCH (store_message.c, structs_run): size, content id, MIME
     * structure (or NULL) and what EMAILID, THREADID, SAVEDATE and PREVIEW show. */
    [SQL_STRUCTS] = "SELECT e.size, e.content_id, NULL, " STRUCT_META " FROM entries e "
                    "WHERE e.mailbox_id = ? AND e.uid = ?",
    [SQL_STRUCTS_MIME] = "SELECT e.size, c.id, c.mime, " STRUCT_META " FROM entries e "
                         "JOIN contents c ON c.id = e.content_id "
                         "WHERE e.mailbox_id = ? AND e.uid = ?",
    [SQL_AUDIT_STATE] = "SELECT anchor_seq, anchor_hash, head_seq, head_hash FROM audit_state",
    [SQL_AUDIT_INSERT] = "INSERT INTO audit (seq, ts, actor, ip, session, proto, action, "
                         "mailbox, uids, detail, prev, hash) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [SQL_AUDIT_SET_HEAD] = "UPDATE audit_state SET head_seq = ?1, head_hash = ?2",
};

const char *store_sql_string(enum store_sql id)
{
	return store_sql_text[id];
}

sqlite3_stmt *store_stmt(struct store_conn *c, enum store_sql id)
{
	sqlite3_stmt *st = c->stmts[id];
	if (st == NULL) {
		int rc = sqlite3_prepare_v3(c->db, store_sql_text[id], -1,
		                            SQLITE_PREPARE_PERSISTENT, &st, NULL);
		if (rc != SQLITE_OK) {
			store_err(c->db, rc);
			return NULL;
		}
		c->stmts[id] = st;
	} else {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	return st;
}

int store_exec_stmt(struct store_conn *c, enum store_sql id)
{
	sqlite3_stmt *st = store_stmt(c, id);
	if (st == NULL)
		return -EIO;
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store_err(c->db, rc);
}

char *store_col_text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t != NULL ? xstrdup((const char *)t) : NULL;
}

int store_bind_text(sqlite3_stmt *st, int col, const char *text)
{
	if (text == NULL)
		return sqlite3_bind_null(st, col);
	return sqlite3_bind_text(st, col, text, -1, SQLITE_STATIC);
}

void store_conn_close(struct store_conn *c)
{
	for (size_t i = 0; i < SQL__COUNT; i++) {
		sqlite3_finalize(c->stmts[i]);
		c->stmts[i] = NULL;
	}
	if (c->db != NULL)
		sqlite3_close_v2(c->db);
	c->db = NULL;
}

static _Thread_local char conn_error[512];

static int conn_pragma(struct store_conn *c, const char *sql, const char *path,
                       const char **error_r)
{
	char *msg = NULL;
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
	if (rc == SQLITE_OK)
		return 0;
	int err = store_err(c->db, rc);
	switch (rc & 0xff) {
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		snprintf(conn_error, sizeof(conn_error),
		         "%s is not a sealmail database or is corrupt: restore it from a backup",
		         path);
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		snprintf(conn_error, sizeof(conn_error),
		         "%s is locked by another process: retry, or stop the process holding it",
		         path);
		break;
	default:
		snprintf(conn_error, sizeof(conn_error), "%s: %s: check the file and its folder",
		         path, msg != NULL ? msg : sqlite3_errstr(rc));
		break;
	}
	sqlite3_free(msg);
	*error_r = conn_error;
	return err;
}

int store_conn_open(struct store_conn *c, const char *path, const char *vfs, unsigned busy_ms,
                    bool writer, const char **error_r)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
	int rc;

	memset(c, 0, sizeof(*c));
	rc = sqlite3_open_v2(path, &c->db, flags, vfs);
	if (rc != SQLITE_OK) {
		snprintf(conn_error, sizeof(conn_error),
		         "cannot open %s: %s: check the path and its "
		         "permissions",
		         path, c->db != NULL ? sqlite3_errmsg(c->db) : "out of memory");
		*error_r = conn_error;
		store_conn_close(c);
		return -EIO;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, (int)busy_ms);
	if (vfs != NULL) {
		/* Room for each page's nonce and tag, asked for before the first page of a new
		 * file is written (an existing file keeps what its header says). Sorts and
		 * statement journals stay in memory: the sealing VFS refuses temporary files. */
		int reserve = STORE_VFS_RESERVE;
		sqlite3_file_control(c->db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve);
		rc = conn_pragma(c, "PRAGMA temp_store = MEMORY;", path, error_r);
		/* A new file turns to WAL in a transaction of the default rollback mode, whose
		 * journal file the VFS refuses: that one write keeps its journal in memory (a
		 * crash during it leaves a store with nothing in it yet). */
		struct stat st;
		if (rc == 0 && writer && (stat(path, &st) < 0 || st.st_size == 0))
			rc = conn_pragma(c, "PRAGMA journal_mode = MEMORY;", path, error_r);
		if (rc < 0) {
			store_conn_close(c);
			return rc;
		}
	}
	rc = conn_pragma(c, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;", path, error_r);
	if (rc == 0 && writer) {
		/* Reading the header here is what detects a file that is not a database. */
		rc = conn_pragma(c, "PRAGMA journal_mode = WAL;", path, error_r);
		if (rc == 0 && writer) {
			/* A page cache that holds the hot b-tree pages of a group. Checkpoints
			 * are not the writer's: store_open installs a WAL hook instead. */
			rc = conn_pragma(c, "PRAGMA cache_size = -32768;", path, error_r);
		}
	}
	if (rc == 0 && !writer)
		rc = conn_pragma(c, "PRAGMA query_only = ON;", path, error_r);
	if (rc < 0)
		store_conn_close(c);
	return rc;
}
