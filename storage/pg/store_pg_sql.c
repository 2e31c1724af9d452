/*
 * Every SQL statement of the PostgreSQL backend, in one table, prepared at first use and
 * at most once per connection; every value is a parameter. Parameters go as text (bytea
 * as binary) and results come back as text.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "storage/pg/store_pg_private.h"

#define USER_COLS                                                                                  \
	"u.id, u.address, u.require_client_cert, u.disabled, u.quota_bytes, u.used_bytes, "        \
	"u.password_hash, u.quota_messages, "                                                      \
	"(SELECT coalesce(sum(um.messages), 0) FROM mailboxes um WHERE um.user_id = u.id)"
#define MB_COLS                                                                                    \
	"m.id, m.user_id, m.name, m.special_use, "                                                 \
	"EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = m.user_id AND s.name = m.name), " \
	"m.uidvalidity, m.uidnext, m.highest_modseq, m.messages, m.unseen, m.bytes, "              \
	"(SELECT count(*) FROM entries e WHERE e.mailbox_id = m.id AND e.uid >= m.recent_uid), "   \
	"m.deleted, m.deleted_bytes, m.objectid"

static const char *const pg_sql_texts[PGSQL__COUNT] = {
    [PGSQL_USER_INSERT] = "INSERT INTO users (address, password_hash, scram_salt, "
                          "scram_iterations, scram_stored_key, scram_server_key, created) "
                          "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    [PGSQL_USER_BY_ADDRESS] = "SELECT " USER_COLS " FROM users u WHERE u.address = $1",
    [PGSQL_USER_LIST] = "SELECT " USER_COLS " FROM users u ORDER BY u.address COLLATE \"C\"",
    [PGSQL_USER_DELETE] = "DELETE FROM users WHERE address = $1",
    [PGSQL_USER_SET_PASSWORD] = "UPDATE users SET password_hash = $2, scram_salt = $3, "
                                "scram_iterations = $4, scram_stored_key = $5, "
                                "scram_server_key = $6 WHERE address = $1",
    [PGSQL_USER_SET_REQUIRE_CERT] =
        "UPDATE users SET require_client_cert = $2::bigint <> 0 WHERE address = $1",
    [PGSQL_USER_SET_DISABLED] = "UPDATE users SET disabled = $2::bigint <> 0 WHERE address = $1",
    [PGSQL_USER_SET_QUOTA] = "UPDATE users SET quota_bytes = $2 WHERE address = $1",
    [PGSQL_USER_SET_MESSAGE_QUOTA] = "UPDATE users SET quota_messages = $2 WHERE address = $1",
    [PGSQL_USER_AUTH] = "SELECT id, password_hash, require_client_cert, disabled FROM users "
                        "WHERE address = $1",
    [PGSQL_USER_SCRAM] = "SELECT id, scram_salt, scram_iterations, scram_stored_key, "
                         "scram_server_key, disabled FROM users WHERE address = $1",
    /* $4 is the clock; the row of uidvalidity_state is locked by the UPDATE until COMMIT,
     * so two front ends creating mailboxes at once get distinct values, never one given
     * before (schema 1). */
    [PGSQL_MAILBOX_INSERT] =
        "WITH v AS (UPDATE uidvalidity_state SET last = greatest($4::bigint, last + 1) "
        "WHERE id = 1 RETURNING last) "
        "INSERT INTO mailboxes (user_id, name, special_use, uidvalidity) "
        "SELECT $1, $2, $3, v.last FROM v",
    [PGSQL_MAILBOX_LIST] = "SELECT " MB_COLS " FROM mailboxes m WHERE m.user_id = $1 "
                           "ORDER BY m.name <> 'INBOX', m.name COLLATE \"C\"",
    [PGSQL_MAILBOX_BY_NAME] = "SELECT " MB_COLS " FROM mailboxes m "
                              "WHERE m.user_id = $1 AND m.name = $2",
    [PGSQL_MAILBOX_DELETE] = "DELETE FROM mailboxes WHERE id = $1",
    [PGSQL_ENTRIES_DELETE_ALL] = "DELETE FROM entries WHERE mailbox_id = $1",
    /* The mailbox and every one below it; byte lengths as SQLite's substr counts them
     * would differ from characters: compare prefixes with starts_with. */
    [PGSQL_MAILBOX_RENAME] = "UPDATE mailboxes SET name = $3 || substr(name, length($2) + 1) "
                             "WHERE user_id = $1 AND (name = $2 OR "
                             "starts_with(name, $2 || '/'))",
    [PGSQL_SUBSCRIBE_ADD] = "INSERT INTO subscriptions (user_id, name) VALUES ($1, $2) "
                            "ON CONFLICT DO NOTHING",
    [PGSQL_SUBSCRIBE_DEL] = "DELETE FROM subscriptions WHERE user_id = $1 AND name = $2",
    [PGSQL_SUBSCRIBED_MISSING] = "SELECT s.name FROM subscriptions s WHERE s.user_id = $1 AND "
                                 "NOT EXISTS (SELECT 1 FROM mailboxes m WHERE "
                                 "m.user_id = s.user_id AND m.name = s.name) "
                                 "ORDER BY s.name COLLATE \"C\"",
    /* Delivery: the target's mailbox, then its user's row and the mailbox's row locked
     * in that order (user first, always), so deliveries of several front ends to one
     * user queue up there and the quota check and the UID taken stay true until COMMIT. */
    [PGSQL_TARGET_INBOX] = "SELECT id, user_id FROM mailboxes WHERE user_id = $1 "
                           "AND name = 'INBOX'",
    [PGSQL_TARGET_MAILBOX] = "SELECT id, user_id FROM mailboxes WHERE id = $1",
    [PGSQL_TARGET_LOCK_USER] =
        "SELECT quota_bytes, used_bytes, quota_messages, "
        "(SELECT coalesce(sum(um.messages), 0) FROM mailboxes um WHERE um.user_id = u.id) "
        "FROM users u WHERE id = $1 FOR NO KEY UPDATE",
    [PGSQL_TARGET_LOCK_MAILBOX] = "SELECT uidvalidity, uidnext, highest_modseq, messages "
                                  "FROM mailboxes WHERE id = $1 FOR NO KEY UPDATE",
    /* The UID and modseq a change takes: the row stays locked until COMMIT, so no other
     * front end can take the same ones. */
    [PGSQL_MAILBOX_BUMP] = "UPDATE mailboxes SET highest_modseq = highest_modseq + 1, "
                           "uidnext = uidnext + $2 WHERE id = $1 "
                           "RETURNING highest_modseq, uidnext",
    [PGSQL_MAILBOX_STATE] = "SELECT user_id, highest_modseq, uidnext, messages, uidvalidity "
                            "FROM mailboxes WHERE id = $1",
    /* Content once per SHA-256: another front end inserting the same bytes at once makes
     * this wait for its COMMIT and insert nothing. */
    [PGSQL_CONTENT_INSERT] =
        "INSERT INTO contents (sha256, size, body, mime, hdr_from, hdr_to, hdr_cc, "
        "hdr_subject, hdr_message_id, hdr_date) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
        "$10) ON CONFLICT (sha256) DO NOTHING RETURNING id",
    /* FOR SHARE: a delete of its last entry elsewhere (whose trigger updates refs) waits
     * until this delivery's reference is committed, and then keeps the row. */
    [PGSQL_CONTENT_FIND] = "SELECT id FROM contents WHERE sha256 = $1 FOR SHARE",
    [PGSQL_PREVIEW_INSERT] = "INSERT INTO previews (content_id, text) VALUES ($1, $2) "
                             "ON CONFLICT DO NOTHING",
    [PGSQL_ENTRY_INSERT] = "INSERT INTO entries (mailbox_id, uid, content_id, modseq, flags, "
                           "keywords, internal_date, size, emailid, threadid, savedate) "
                           "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    [PGSQL_ENTRY_LIST] = "SELECT uid, modseq, flags, keywords, internal_date, size, "
                         "content_id, emailid, threadid, savedate FROM entries "
                         "WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
    [PGSQL_ENTRY_GET] = "SELECT e.uid, e.modseq, e.flags, e.keywords, e.internal_date, "
                        "e.size, e.content_id, e.emailid, e.threadid, e.savedate, c.mime, "
                        "c.hdr_from, c.hdr_to, c.hdr_cc, c.hdr_subject, c.hdr_message_id, "
                        "c.hdr_date, (SELECT p.text FROM previews p "
                        "WHERE p.content_id = e.content_id) "
                        "FROM entries e JOIN contents c ON c.id = e.content_id "
                        "WHERE e.mailbox_id = $1 AND e.uid = $2",
    /* substring counts from 1. */
    [PGSQL_CONTENT_READ] = "SELECT c.size, substring(c.body FROM $3::int + 1 FOR $4::int) "
                           "FROM entries e JOIN contents c ON c.id = e.content_id "
                           "WHERE e.mailbox_id = $1 AND e.uid = $2",
    [PGSQL_ENTRY_RANGE] = "SELECT uid, modseq, flags, keywords, internal_date, size, "
                          "content_id, emailid, threadid, savedate FROM entries "
                          "WHERE mailbox_id = $1 AND uid BETWEEN $2 AND $3 ORDER BY uid "
                          "FOR NO KEY UPDATE",
    [PGSQL_ENTRY_SET_FLAGS] = "UPDATE entries SET flags = $3, keywords = $4, modseq = $5 "
                              "WHERE mailbox_id = $1 AND uid = $2",
    [PGSQL_ENTRY_DELETE] = "DELETE FROM entries WHERE mailbox_id = $1 AND uid = $2",
    [PGSQL_EXPUNGED_INSERT] = "INSERT INTO expunged (mailbox_id, uid, modseq) "
                              "VALUES ($1, $2, $3) ON CONFLICT (mailbox_id, uid) "
                              "DO UPDATE SET modseq = excluded.modseq",
    [PGSQL_VANISHED] = "SELECT uid FROM expunged WHERE mailbox_id = $1 AND modseq > $2 "
                       "ORDER BY uid",
    [PGSQL_RECENT_GET] = "SELECT recent_uid FROM mailboxes WHERE id = $1 FOR NO KEY UPDATE",
    [PGSQL_RECENT_SET] = "UPDATE mailboxes SET recent_uid = $2 WHERE id = $1",
    [PGSQL_ENTRY_UIDS_BETWEEN] = "SELECT uid FROM entries WHERE mailbox_id = $1 "
                                 "AND uid >= $2 AND uid < $3 ORDER BY uid",
    [PGSQL_PING] = "SELECT 1",
};

const char *pg_sql_text(enum pg_sql id)
{
	return pg_sql_texts[id];
}

void pg_p_text(struct pg_params *p, const char *s)
{
	p->v[p->n] = s;
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	p->n++;
}

void pg_p_i64(struct pg_params *p, int64_t v)
{
	snprintf(p->buf[p->n], sizeof(p->buf[p->n]), "%" PRId64, v);
	pg_p_text(p, p->buf[p->n]);
}

void pg_p_bytes(struct pg_params *p, const void *data, size_t len)
{
	p->v[p->n] = data;
	p->len[p->n] = (int)len;
	p->fmt[p->n] = 1;
	p->n++;
}

static int pg_error(struct pg_conn *c, const PGresult *r, const char *what)
{
	const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	if (state != NULL && strcmp(state, "23505") == 0)
		return -EEXIST;
	if (state != NULL && strcmp(state, "23503") == 0)
		return -ENOENT;
	/* Deadlock victim, serialization failure: the writer runs the job again. */
	if (state != NULL && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0))
		return -EAGAIN;
	log_event(LOGL_ERROR, "event=store_pg_error what=%s sqlstate=%s error=\"%s\"", what,
	          state != NULL ? state : "-", PQerrorMessage(c->db));
	return -EIO;
}

PGresult *pg_run(struct pg_conn *c, enum pg_sql id, const struct pg_params *p, int *rc_r)
{
	char name[16];
	snprintf(name, sizeof(name), "s%d", (int)id);
	if (!c->prepared[id]) {
		PGresult *r = PQprepare(c->db, name, pg_sql_texts[id], 0, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			*rc_r = pg_error(c, r, name);
			PQclear(r);
			return NULL;
		}
		PQclear(r);
		c->prepared[id] = true;
	}
	PGresult *r = PQexecPrepared(c->db, name, p != NULL ? p->n : 0, p != NULL ? p->v : NULL,
	                             p != NULL ? p->len : NULL, p != NULL ? p->fmt : NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		*rc_r = pg_error(c, r, name);
		PQclear(r);
		return NULL;
	}
	*rc_r = 0;
	return r;
}

int pg_run_cmd(struct pg_conn *c, enum pg_sql id, const struct pg_params *p, uint64_t *affected_r)
{
	int rc;
	PGresult *r = pg_run(c, id, p, &rc);
	if (r == NULL)
		return rc;
	if (affected_r != NULL)
		*affected_r = strtoull(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}

int pg_exec(struct pg_conn *c, const char *sql)
{
	PGresult *r = PQexec(c->db, sql);
	ExecStatusType st = PQresultStatus(r);
	int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : pg_error(c, r, "exec");
	PQclear(r);
	return rc < 0 ? -EIO : 0;
}

int64_t pg_i64(const PGresult *r, int row, int col)
{
	const char *v = PQgetvalue(r, row, col);
	if (v[0] == 't')
		return 1; /* boolean true */
	if (v[0] == 'f')
		return 0;
	return strtoll(v, NULL, 10);
}

char *pg_str(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return NULL;
	return xstrdup(PQgetvalue(r, row, col));
}
