/*
 * The schema and its migrations. PRAGMA user_version is the schema version; each step runs
 * in its own transaction together with the version bump, so a crash leaves the database at
 * one version or the next. A version newer than this binary knows is refused, never reset.
 * docs/storage.md describes the tables.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "storage/sqlite/store_private.h"

static const char *const migrations[STORE_SCHEMA_VERSION] = {
    /* 1: users, mailboxes, content stored once, mailbox entries, relay queue. */
    "CREATE TABLE users ("
    " id INTEGER PRIMARY KEY,"
    " address TEXT NOT NULL UNIQUE,"
    " password_hash TEXT NOT NULL,"
    " scram_salt TEXT, scram_iterations INTEGER, scram_stored_key TEXT, scram_server_key TEXT,"
    " require_client_cert INTEGER NOT NULL DEFAULT 0,"
    " disabled INTEGER NOT NULL DEFAULT 0,"
    " quota_bytes INTEGER NOT NULL DEFAULT 0,"
    " used_bytes INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE mailboxes ("
    " id INTEGER PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " special_use INTEGER NOT NULL DEFAULT 0,"
    " subscribed INTEGER NOT NULL DEFAULT 1,"
    " uidvalidity INTEGER NOT NULL,"
    " uidnext INTEGER NOT NULL DEFAULT 1,"
    " highest_modseq INTEGER NOT NULL DEFAULT 1,"
    " messages INTEGER NOT NULL DEFAULT 0,"
    " unseen INTEGER NOT NULL DEFAULT 0,"
    " bytes INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE (user_id, name));"
    "CREATE TABLE contents ("
    " id INTEGER PRIMARY KEY,"
    " sha256 BLOB NOT NULL UNIQUE,"
    " size INTEGER NOT NULL,"
    " refs INTEGER NOT NULL DEFAULT 0,"
    " body BLOB NOT NULL,"
    " mime TEXT, hdr_from TEXT, hdr_to TEXT, hdr_cc TEXT, hdr_subject TEXT,"
    " hdr_message_id TEXT, hdr_date INTEGER);"
    "CREATE TABLE entries ("
    " mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,"
    " uid INTEGER NOT NULL,"
    " content_id INTEGER NOT NULL REFERENCES contents (id),"
    " modseq INTEGER NOT NULL,"
    " flags INTEGER NOT NULL DEFAULT 0,"
    " keywords TEXT NOT NULL DEFAULT '',"
    " internal_date INTEGER NOT NULL,"
    " size INTEGER NOT NULL,"
    " PRIMARY KEY (mailbox_id, uid)) WITHOUT ROWID;"
    "CREATE INDEX entries_modseq ON entries (mailbox_id, modseq);"
    "CREATE INDEX entries_content ON entries (content_id);"
    "CREATE TABLE expunged ("
    " mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,"
    " uid INTEGER NOT NULL,"
    " modseq INTEGER NOT NULL,"
    " PRIMARY KEY (mailbox_id, uid)) WITHOUT ROWID;"
    "CREATE TABLE queue ("
    " id INTEGER PRIMARY KEY,"
    " content_id INTEGER NOT NULL REFERENCES contents (id),"
    " sender TEXT NOT NULL,"
    " requiretls INTEGER NOT NULL DEFAULT 0,"
    " ret TEXT, envid TEXT,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE queue_rcpts ("
    " id INTEGER PRIMARY KEY,"
    " queue_id INTEGER NOT NULL REFERENCES queue (id) ON DELETE CASCADE,"
    " address TEXT NOT NULL,"
    " notify TEXT, orcpt TEXT,"
    " status INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt INTEGER NOT NULL,"
    " last_error TEXT);"
    "CREATE INDEX queue_rcpts_queue ON queue_rcpts (queue_id);"
    "CREATE INDEX queue_rcpts_due ON queue_rcpts (status, next_attempt);"
    /* Content lives while an entry or a queue message refers to it; usage and mailbox
     * counts follow entries, so SELECT and STATUS never count rows. */
    "CREATE TRIGGER entries_ref AFTER INSERT ON entries BEGIN"
    " UPDATE mailboxes SET messages = messages + 1, bytes = bytes + NEW.size,"
    "  unseen = unseen + ((NEW.flags & 1) = 0) WHERE id = NEW.mailbox_id;"
    " UPDATE contents SET refs = refs + 1 WHERE id = NEW.content_id;"
    " UPDATE users SET used_bytes = used_bytes + NEW.size"
    "  WHERE id = (SELECT user_id FROM mailboxes WHERE id = NEW.mailbox_id);"
    " END;"
    "CREATE TRIGGER entries_unref AFTER DELETE ON entries BEGIN"
    " UPDATE mailboxes SET messages = messages - 1, bytes = bytes - OLD.size,"
    "  unseen = unseen - ((OLD.flags & 1) = 0) WHERE id = OLD.mailbox_id;"
    " UPDATE users SET used_bytes = used_bytes - OLD.size"
    "  WHERE id = (SELECT user_id FROM mailboxes WHERE id = OLD.mailbox_id);"
    " UPDATE contents SET refs = refs - 1 WHERE id = OLD.content_id;"
    " DELETE FROM contents WHERE id = OLD.content_id AND refs <= 0;"
    " END;"
    "CREATE TRIGGER entries_seen AFTER UPDATE OF flags ON entries BEGIN"
    " UPDATE mailboxes SET unseen = unseen + ((NEW.flags & 1) = 0) - ((OLD.flags & 1) = 0)"
    "  WHERE id = NEW.mailbox_id;"
    " END;"
    "CREATE TRIGGER queue_ref AFTER INSERT ON queue BEGIN"
    " UPDATE contents SET refs = refs + 1 WHERE id = NEW.content_id;"
    " END;"
    "CREATE TRIGGER queue_unref AFTER DELETE ON queue BEGIN"
    " UPDATE contents SET refs = refs - 1 WHERE id = OLD.content_id;"
    " DELETE FROM contents WHERE id = OLD.content_id AND refs <= 0;"
    " END;",

    /* 2: full-text index of the decoded text, rowid = contents.id. */
    "CREATE VIRTUAL TABLE fts USING fts5 (subject, addresses, body,"
    " tokenize = 'unicode61 remove_diacritics 2');"
    "CREATE TRIGGER contents_fts_unref AFTER DELETE ON contents BEGIN"
    " DELETE FROM fts WHERE rowid = OLD.id;"
    " END;",

    /* 3: certificates issued by the built-in CA (sealctl cert) and the CRL number. A
     * record outlives its user (user_id becomes NULL): a deleted user's certificate must
     * stay revocable by serial and by address. */
    "CREATE TABLE certs ("
    " id INTEGER PRIMARY KEY,"
    " serial TEXT NOT NULL UNIQUE,"
    " address TEXT NOT NULL,"
    " user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,"
    " kind TEXT NOT NULL CHECK (kind IN ('client', 'server')),"
    " not_before INTEGER NOT NULL,"
    " not_after INTEGER NOT NULL,"
    " revoked_at INTEGER,"
    " created INTEGER NOT NULL);"
    "CREATE INDEX certs_address ON certs (address);"
    "CREATE INDEX certs_user ON certs (user_id);"
    "CREATE TABLE crl_state ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " number INTEGER NOT NULL);"
    "INSERT INTO crl_state (id, number) VALUES (1, 0);",

    /* 4: the highest UIDVALIDITY ever given, so that a mailbox deleted and created again
     * within the same second (or after the clock went back) never gets its old value
     * again, which would let clients keep stale UIDs (RFC 9051 2.3.1.1). */
    "CREATE TABLE uidvalidity_state ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " last INTEGER NOT NULL);"
    "INSERT INTO uidvalidity_state (id, last)"
    " SELECT 1, coalesce(max(uidvalidity), 0) FROM mailboxes;"
    "CREATE TRIGGER mailboxes_uidvalidity AFTER INSERT ON mailboxes BEGIN"
    " UPDATE uidvalidity_state SET last = max(last, NEW.uidvalidity) WHERE id = 1;"
    " END;",

    /* 5: the stored MIME structure gains what FETCH formats from (header and body ranges,
     * line counts, Content-* fields, ENVELOPE): migrate_mime recomputes it for every
     * content row written before. */
    "",

    /* 6: SEARCH BODY and TEXT are substring matches (RFC 3501 6.4.4), which a word index
     * cannot answer: the index becomes trigrams of the header block and the decoded text,
     * refilled by migrate_index from every content row. */
    "DROP TRIGGER contents_fts_unref;"
    "DROP TABLE fts;"
    "CREATE VIRTUAL TABLE fts USING fts5 (header, body,"
    " tokenize = 'trigram case_sensitive 0', columnsize = 0);"
    "CREATE TRIGGER contents_fts_unref AFTER DELETE ON contents BEGIN"
    " DELETE FROM fts WHERE rowid = OLD.id;"
    " END;",

    /* 7: subscriptions are names of their own (RFC 3501 6.3.6: deleting a mailbox must not
     * drop its subscription, LIST shows it \NonExistent); a new mailbox is subscribed and a
     * renamed one keeps its subscription, as before. recent_uid is the first UID no session
     * has taken as \Recent yet (store_recent_take): every message stored before is old. */
    "CREATE TABLE subscriptions ("
    " user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " PRIMARY KEY (user_id, name)) WITHOUT ROWID;"
    "INSERT INTO subscriptions (user_id, name)"
    " SELECT user_id, name FROM mailboxes WHERE subscribed <> 0;"
    "ALTER TABLE mailboxes DROP COLUMN subscribed;"
    "ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 1;"
    "UPDATE mailboxes SET recent_uid = uidnext;"
    "CREATE TRIGGER mailboxes_subscribe AFTER INSERT ON mailboxes BEGIN"
    " INSERT OR IGNORE INTO subscriptions (user_id, name) VALUES (NEW.user_id, NEW.name);"
    " END;"
    "CREATE TRIGGER mailboxes_rename_subscription AFTER UPDATE OF name ON mailboxes BEGIN"
    " UPDATE OR IGNORE subscriptions SET name = NEW.name"
    "  WHERE user_id = NEW.user_id AND name = OLD.name;"
    " END;",

    /* 8: what IMAP SORT and THREAD compare, computed at delivery (store_mime.c), one row
     * per content row. A table of its own rather than columns of contents: a contents
     * row holds the message body, and columns after it are reached only by walking the
     * body's overflow pages, which made a SORT over 10,000 messages read the mailbox
     * instead of a few hundred kilobytes. migrate_sortkeys fills it for every content
     * row stored before. */
    "CREATE TABLE sortkeys ("
    " content_id INTEGER PRIMARY KEY,"
    " date INTEGER NOT NULL DEFAULT 0,"
    " message_id TEXT,"
    " subject TEXT,"
    " reply INTEGER NOT NULL DEFAULT 0,"
    " from_mbox TEXT, from_name TEXT, to_mbox TEXT, to_name TEXT, cc_mbox TEXT,"
    " refs TEXT);"
    "CREATE TRIGGER contents_sortkeys_unref AFTER DELETE ON contents BEGIN"
    " DELETE FROM sortkeys WHERE content_id = OLD.id;"
    " END;",

    /* 9: a limit on the number of messages per user (0 = none), and per mailbox the count
     * and bytes of \Deleted messages (IMAP STATUS DELETED and DELETED-STORAGE, RFC 9208),
     * kept by the same triggers as unseen so that STATUS never scans. */
    "ALTER TABLE users ADD COLUMN quota_messages INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE mailboxes ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE mailboxes ADD COLUMN deleted_bytes INTEGER NOT NULL DEFAULT 0;"
    "UPDATE mailboxes SET"
    " deleted = (SELECT count(*) FROM entries e"
    "  WHERE e.mailbox_id = mailboxes.id AND (e.flags & 8) <> 0),"
    " deleted_bytes = (SELECT coalesce(sum(e.size), 0) FROM entries e"
    "  WHERE e.mailbox_id = mailboxes.id AND (e.flags & 8) <> 0);"
    "DROP TRIGGER entries_ref;"
    "DROP TRIGGER entries_unref;"
    "DROP TRIGGER entries_seen;"
    "CREATE TRIGGER entries_ref AFTER INSERT ON entries BEGIN"
    " UPDATE mailboxes SET messages = messages + 1, bytes = bytes + NEW.size,"
    "  unseen = unseen + ((NEW.flags & 1) = 0),"
    "  deleted = deleted + ((NEW.flags & 8) <> 0),"
    "  deleted_bytes = deleted_bytes + ((NEW.flags & 8) <> 0) * NEW.size"
    "  WHERE id = NEW.mailbox_id;"
    " UPDATE contents SET refs = refs + 1 WHERE id = NEW.content_id;"
    " UPDATE users SET used_bytes = used_bytes + NEW.size"
    "  WHERE id = (SELECT user_id FROM mailboxes WHERE id = NEW.mailbox_id);"
    " END;"
    "CREATE TRIGGER entries_unref AFTER DELETE ON entries BEGIN"
    " UPDATE mailboxes SET messages = messages - 1, bytes = bytes - OLD.size,"
    "  unseen = unseen - ((OLD.flags & 1) = 0),"
    "  deleted = deleted - ((OLD.flags & 8) <> 0),"
    "  deleted_bytes = deleted_bytes - ((OLD.flags & 8) <> 0) * OLD.size"
    "  WHERE id = OLD.mailbox_id;"
    " UPDATE users SET used_bytes = used_bytes - OLD.size"
    "  WHERE id = (SELECT user_id FROM mailboxes WHERE id = OLD.mailbox_id);"
    " UPDATE contents SET refs = refs - 1 WHERE id = OLD.content_id;"
    " DELETE FROM contents WHERE id = OLD.content_id AND refs <= 0;"
    " END;"
    "CREATE TRIGGER entries_seen AFTER UPDATE OF flags ON entries BEGIN"
    " UPDATE mailboxes SET unseen = unseen + ((NEW.flags & 1) = 0) - ((OLD.flags & 1) = 0),"
    "  deleted = deleted + ((NEW.flags & 8) <> 0) - ((OLD.flags & 8) <> 0),"
    "  deleted_bytes = deleted_bytes + ((NEW.flags & 8) <> 0) * NEW.size"
    "   - ((OLD.flags & 8) <> 0) * OLD.size"
    "  WHERE id = NEW.mailbox_id;"
    " END;",

    /* 10: object ids (RFC 8474), save dates (RFC 8514) and previews (RFC 8970). Ids are
     * random 64-bit values: they say nothing about the server's volume or a mailbox's
     * name, and a deleted mailbox's id never comes back for a new one of the same name.
     * A message's EMAILID and THREADID live on its entry and go with it on COPY and
     * MOVE; every copy of a message already in two mailboxes shares one. Threads are
     * per user: threadids maps each Message-ID a user's mail has named (its own or in
     * References / In-Reply-To) to the thread it joined (store_thread.c). A message
     * stored before has its internal date as its save date; migrate_objects gives it a
     * thread and migrate_previews a preview. */
    "ALTER TABLE mailboxes ADD COLUMN objectid INTEGER NOT NULL DEFAULT 0;"
    "UPDATE mailboxes SET objectid = random();"
    "CREATE TRIGGER mailboxes_objectid AFTER INSERT ON mailboxes WHEN NEW.objectid = 0 BEGIN"
    " UPDATE mailboxes SET objectid = random() WHERE id = NEW.id;"
    " END;"
    "ALTER TABLE entries ADD COLUMN emailid INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE entries ADD COLUMN threadid INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE entries ADD COLUMN savedate INTEGER NOT NULL DEFAULT 0;"
    "CREATE TEMP TABLE objectid_map AS SELECT m.user_id AS user_id, e.content_id AS content_id,"
    " random() AS emailid FROM entries e JOIN mailboxes m ON m.id = e.mailbox_id"
    " GROUP BY m.user_id, e.content_id;"
    "UPDATE entries SET savedate = internal_date, emailid = (SELECT o.emailid"
    " FROM objectid_map o JOIN mailboxes m ON m.user_id = o.user_id"
    " WHERE m.id = entries.mailbox_id AND o.content_id = entries.content_id);"
    "DROP TABLE objectid_map;"
    "CREATE TABLE threadids ("
    " user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    " message_id TEXT NOT NULL,"
    " threadid INTEGER NOT NULL,"
    " PRIMARY KEY (user_id, message_id)) WITHOUT ROWID;"
    "CREATE TABLE previews ("
    " content_id INTEGER PRIMARY KEY,"
    " text TEXT NOT NULL);"
    "CREATE TRIGGER contents_previews_unref AFTER DELETE ON contents BEGIN"
    " DELETE FROM previews WHERE content_id = OLD.id;"
    " END;",

    /* 11: IMAP METADATA annotations (RFC 5464), per user: mailbox_id NULL for the user's
     * server annotations. A mailbox's go with it (ON DELETE CASCADE) and stay across a
     * rename, as the id does; a user's go with the user. The key treats NULL as 0. */
    "CREATE TABLE annotations ("
    " user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    " mailbox_id INTEGER REFERENCES mailboxes (id) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " value BLOB NOT NULL);"
    "CREATE UNIQUE INDEX annotations_key"
    " ON annotations (user_id, coalesce(mailbox_id, 0), name);"
    "CREATE INDEX annotations_mailbox ON annotations (mailbox_id);",
    /* 12: the access audit (store_audit.c, docs/audit.md): one row per recorded access or
     * change, chained by SHA-256 (prev is the hash of the record before, hash covers prev
     * and the row). audit_state keeps where the chain starts after retention removed the
     * oldest records (anchor) and its last record (head), so that removing records at
     * either end shows too. The triggers make the table append-only for everything but
     * retention, which first moves the anchor past what it removes. */
    "CREATE TABLE audit ("
    " seq INTEGER PRIMARY KEY,"
    " ts INTEGER NOT NULL,"
    " actor TEXT NOT NULL,"
    " ip TEXT NOT NULL,"
    " session TEXT NOT NULL,"
    " proto TEXT NOT NULL,"
    " action TEXT NOT NULL,"
    " mailbox TEXT NOT NULL,"
    " uids TEXT NOT NULL,"
    " detail TEXT NOT NULL,"
    " prev BLOB NOT NULL,"
    " hash BLOB NOT NULL);"
    "CREATE INDEX audit_ts ON audit (ts);"
    "CREATE INDEX audit_actor ON audit (actor, ts);"
    "CREATE TABLE audit_state ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " anchor_seq INTEGER NOT NULL,"
    " anchor_hash BLOB NOT NULL,"
    " head_seq INTEGER NOT NULL,"
    " head_hash BLOB NOT NULL);"
    "INSERT INTO audit_state VALUES (1, 0, zeroblob(32), 0, zeroblob(32));"
    "CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit BEGIN"
    " SELECT RAISE(ABORT, 'audit records cannot be changed');"
    " END;"
    "CREATE TRIGGER audit_retention_only BEFORE DELETE ON audit"
    " WHEN OLD.seq > (SELECT anchor_seq FROM audit_state) BEGIN"
    " SELECT RAISE(ABORT, 'audit records are removed only by retention');"
    " END;"
    "CREATE TRIGGER audit_state_forward BEFORE UPDATE ON audit_state"
    " WHEN NEW.anchor_seq < OLD.anchor_seq OR NEW.head_seq < OLD.head_seq"
    " OR NEW.anchor_seq > NEW.head_seq BEGIN"
    " SELECT RAISE(ABORT, 'the audit chain only moves forward');"
    " END;"
    "CREATE TRIGGER audit_state_keep BEFORE DELETE ON audit_state BEGIN"
    " SELECT RAISE(ABORT, 'the audit state cannot be removed');"
    " END;",
};

static _Thread_local char schema_error[512];

/* Steps that SQL alone cannot do, run after that version's SQL in the same transaction. */
static int migrate_mime(sqlite3 *db, char **msg_r);
static int migrate_index(sqlite3 *db, char **msg_r);
static int migrate_sortkeys(sqlite3 *db, char **msg_r);
static int migrate_objects(sqlite3 *db, char **msg_r);
static int (*const migration_fns[STORE_SCHEMA_VERSION])(sqlite3 *db, char **msg_r) = {
    [4] = migrate_mime,
    [5] = migrate_index,
    [7] = migrate_sortkeys,
    [9] = migrate_objects,
};

/* Binds what one content row gives its statement: false to leave the row out. */
typedef bool content_bind_fn(sqlite3_stmt *st, int64_t id, const struct store_mime_info *info);

/*
 * Runs the statement ins, bound by bind, for every content row sel (id, body) yields,
 * parsed again from its body with the code delivery uses. A body that cannot be parsed is
 * bound with empty fields, or left out with skip_unparsed.
 */
static int each_content(sqlite3 *db, sqlite3_stmt *sel, sqlite3_stmt *ins, bool skip_unparsed,
                        content_bind_fn *bind, const char *what, char **msg_r)
{
	int rc = SQLITE_OK;
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		rc = SQLITE_OK;
		struct store_mime_info info;
		const void *body = sqlite3_column_blob(sel, 1);
		size_t size = (size_t)sqlite3_column_bytes(sel, 1);
		if (store_mime_parse_mem(body != NULL ? body : "", size, &info) < 0) {
			if (skip_unparsed)
				continue;
			memset(&info, 0, sizeof(info));
		}
		if (bind(ins, sqlite3_column_int64(sel, 0), &info)) {
			rc = sqlite3_step(ins);
			rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
		}
		sqlite3_reset(ins);
		sqlite3_clear_bindings(ins);
		store_mime_info_clear(&info);
		if (rc != SQLITE_OK)
			break;
	}
	if (rc == SQLITE_DONE)
		rc = SQLITE_OK;
	if (rc != SQLITE_OK)
		*msg_r = sqlite3_mprintf("%s: %s", what, sqlite3_errmsg(db));
	return rc;
}

/* each_content with statements made from sel_sql and ins_sql. */
static int each_content_sql(sqlite3 *db, const char *sel_sql, const char *ins_sql,
                            bool skip_unparsed, content_bind_fn *bind, const char *what,
                            char **msg_r)
{
	sqlite3_stmt *sel = NULL, *ins = NULL;
	int rc = sqlite3_prepare_v2(db, sel_sql, -1, &sel, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, ins_sql, -1, &ins, NULL);
	if (rc == SQLITE_OK)
		rc = each_content(db, sel, ins, skip_unparsed, bind, what, msg_r);
	else
		*msg_r = sqlite3_mprintf("%s: %s", what, sqlite3_errmsg(db));
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	return rc;
}

static bool bind_mime(sqlite3_stmt *st, int64_t id, const struct store_mime_info *info)
{
	sqlite3_bind_text(st, 1, info->json, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, id);
	return true;
}

/* Every content row whose structure is not of this version's form ("v"); one that cannot
 * be parsed is left as it was (FETCH shows it without structure). */
static int migrate_mime(sqlite3 *db, char **msg_r)
{
	char sel[256];
	snprintf(sel, sizeof(sel),
	         "SELECT id, body FROM contents WHERE mime IS NULL OR NOT json_valid(mime)"
	         " OR json_extract(mime, '$.v') IS NOT %d",
	         STORE_MIME_VERSION);
	return each_content_sql(db, sel, "UPDATE contents SET mime = ? WHERE id = ?", true,
	                        bind_mime, "recomputing the MIME structure", msg_r);
}

static bool bind_index(sqlite3_stmt *st, int64_t id, const struct store_mime_info *info)
{
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, info->header, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, info->text, -1, SQLITE_STATIC);
	return true; /* an empty row for a body that cannot be parsed: found by nothing */
}

/* The text index row of every content row. */
static int migrate_index(sqlite3 *db, char **msg_r)
{
	return each_content_sql(db, "SELECT id, body FROM contents",
	                        store_sql_string(SQL_FTS_INSERT), false, bind_index,
	                        "building the text index", msg_r);
}

static bool bind_sortkeys(sqlite3_stmt *st, int64_t id, const struct store_mime_info *info)
{
	store_sortkeys_bind(st, id, info); /* empty keys: sorts first, threads alone */
	return true;
}

/* The SORT and THREAD keys of every content row (store_sortkeys_bind is the statement
 * delivery uses too). */
static int migrate_sortkeys(sqlite3 *db, char **msg_r)
{
	return each_content_sql(db, "SELECT id, body FROM contents",
	                        store_sql_string(SQL_SORTKEY_INSERT), false, bind_sortkeys,
	                        "computing the sort keys", msg_r);
}

static bool bind_preview(sqlite3_stmt *st, int64_t id, const struct store_mime_info *info)
{
	if (info->preview == NULL)
		return false; /* no row: an empty preview */
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, info->preview, -1, SQLITE_STATIC);
	return true;
}

/* Every message stored before version 10: a preview per content row, and a thread per
 * entry, given in the order the user's messages arrived, as delivery would have. */
static int migrate_objects(sqlite3 *db, char **msg_r)
{
	int rc = each_content_sql(db, "SELECT id, body FROM contents",
	                          store_sql_string(SQL_PREVIEW_INSERT), false, bind_preview,
	                          "computing the previews", msg_r);
	if (rc != SQLITE_OK)
		return rc;
	struct store_thread_stmts t = {0};
	sqlite3_stmt *sel = NULL, *upd = NULL;
	rc = sqlite3_prepare_v2(db,
	                        "SELECT m.user_id, e.content_id, e.mailbox_id, e.uid FROM entries e"
	                        " JOIN mailboxes m ON m.id = e.mailbox_id"
	                        " ORDER BY m.user_id, e.internal_date, e.mailbox_id, e.uid",
	                        -1, &sel, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(
		    db, "UPDATE entries SET threadid = ?3 WHERE mailbox_id = ?1 AND uid = ?2", -1,
		    &upd, NULL);
	if (rc == SQLITE_OK)
		rc = store_thread_stmts_prepare(db, &t);
	while (rc == SQLITE_OK && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
		int64_t thread = 0;
		if (store_thread_assign(db, &t, sqlite3_column_int64(sel, 0),
		                        sqlite3_column_int64(sel, 1), &thread) < 0) {
			rc = sqlite3_errcode(db);
			break;
		}
		sqlite3_bind_int64(upd, 1, sqlite3_column_int64(sel, 2));
		sqlite3_bind_int64(upd, 2, sqlite3_column_int64(sel, 3));
		sqlite3_bind_int64(upd, 3, thread);
		rc = sqlite3_step(upd);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
		sqlite3_reset(upd);
	}
	if (rc == SQLITE_DONE)
		rc = SQLITE_OK;
	if (rc != SQLITE_OK)
		*msg_r = sqlite3_mprintf("giving messages their threads: %s", sqlite3_errmsg(db));
	store_thread_stmts_finalize(&t);
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	return rc;
}

static int schema_version(sqlite3 *db, int *version_r)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_err(db, rc);
	rc = sqlite3_step(st);
	*version_r = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	rc = rc == SQLITE_ROW ? 0 : store_err(db, rc);
	sqlite3_finalize(st);
	return rc;
}

int store_schema_migrate_to(sqlite3 *db, int target, const char **error_r)
{
	int version = 0;
	int rc = schema_version(db, &version);
	char *msg = NULL;

	if (rc < 0) {
		*error_r = "cannot read the database schema version: the file is corrupt or locked";
		return rc;
	}
	if (version > STORE_SCHEMA_VERSION) {
		snprintf(
		    schema_error, sizeof(schema_error),
		    "the database has schema version %d but this sealmail knows only up to %d: "
		    "run a newer sealmail (the database was not changed)",
		    version, STORE_SCHEMA_VERSION);
		*error_r = schema_error;
		return -EPROTO;
	}
	while (version < target) {
		char bump[64];
		snprintf(bump, sizeof(bump), "PRAGMA user_version = %d;", version + 1);
		rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg);
		if (rc == SQLITE_OK) {
			/* Another process may have migrated while we waited for the lock. */
			int now = 0;
			if (schema_version(db, &now) == 0 && now > version) {
				sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
				version = now;
				continue;
			}
			rc = sqlite3_exec(db, migrations[version], NULL, NULL, &msg);
			if (rc == SQLITE_OK && migration_fns[version] != NULL)
				rc = migration_fns[version](db, &msg);
		}
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db, bump, NULL, NULL, &msg);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &msg);
		if (rc != SQLITE_OK) {
			snprintf(schema_error, sizeof(schema_error),
			         "migrating the database to schema version %d failed: %s: nothing "
			         "was changed, fix the cause and retry",
			         version + 1, msg != NULL ? msg : sqlite3_errstr(rc));
			sqlite3_free(msg);
			if (!sqlite3_get_autocommit(db))
				sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			*error_r = schema_error;
			rc = store_err(db, rc);
			return rc < 0 ? rc : -EIO; /* never "done" without the new version */
		}
		version++;
	}
	return 0;
}

int store_schema_migrate(sqlite3 *db, const char **error_r)
{
	return store_schema_migrate_to(db, STORE_SCHEMA_VERSION, error_r);
}
