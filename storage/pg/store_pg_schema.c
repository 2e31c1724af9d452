/*
 * The schema and its migrations: the table schema_migrations holds one row per version
 * applied; the missing steps run in one transaction together with their rows, so a crash
 * leaves the database at the version it had or at this binary's. Front ends opening the same
 * database at once take a transaction-scoped advisory lock first, so only one of them migrates. A
 * version newer than this binary knows is refused, never reset. The tables mean what SQLite's mean
 * (docs/storage.md "Schema"); docs/postgresql.md says where they differ.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "storage/pg/store_pg_private.h"

/* Each version's step in parts (ISO C's bound on a string literal), run in order. */
#define PG_STEP_PARTS 8
static const char *const migrations[PG_SCHEMA_VERSION][PG_STEP_PARTS] = {
    {/* 1: users, mailboxes, subscriptions, content stored once with its preview, entries,
      * expunged UIDs. */
     "CREATE TABLE users ("
     " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
     " address text NOT NULL UNIQUE,"
     " password_hash text NOT NULL,"
     " scram_salt text, scram_iterations integer, scram_stored_key text,"
     " scram_server_key text,"
     " require_client_cert boolean NOT NULL DEFAULT false,"
     " disabled boolean NOT NULL DEFAULT false,"
     " quota_bytes bigint NOT NULL DEFAULT 0,"
     " used_bytes bigint NOT NULL DEFAULT 0,"
     " quota_messages bigint NOT NULL DEFAULT 0,"
     " created bigint NOT NULL);"
     /* The highest UIDVALIDITY ever given (RFC 9051 2.3.1.1), shared by every front end. */
     "CREATE TABLE uidvalidity_state ("
     " id integer PRIMARY KEY CHECK (id = 1),"
     " last bigint NOT NULL);"
     "INSERT INTO uidvalidity_state (id, last) VALUES (1, 0);"
     "CREATE TABLE mailboxes ("
     " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
     " user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
     " name text NOT NULL,"
     " special_use integer NOT NULL DEFAULT 0,"
     " uidvalidity bigint NOT NULL,"
     " uidnext bigint NOT NULL DEFAULT 1,"
     " highest_modseq bigint NOT NULL DEFAULT 1,"
     " recent_uid bigint NOT NULL DEFAULT 1,"
     " messages bigint NOT NULL DEFAULT 0,"
     " unseen bigint NOT NULL DEFAULT 0,"
     " bytes bigint NOT NULL DEFAULT 0,"
     " deleted bigint NOT NULL DEFAULT 0,"
     " deleted_bytes bigint NOT NULL DEFAULT 0,"
     " objectid bigint NOT NULL"
     "  DEFAULT (floor((random() - 0.5) * 9.2e18))::bigint,"
     " UNIQUE (user_id, name));"
     "CREATE TABLE subscriptions ("
     " user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
     " name text NOT NULL,"
     " PRIMARY KEY (user_id, name));",
     "CREATE TABLE contents ("
     " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
     " sha256 bytea NOT NULL UNIQUE,"
     " size bigint NOT NULL,"
     " refs bigint NOT NULL DEFAULT 0,"
     " body bytea NOT NULL,"
     " mime text, hdr_from text, hdr_to text, hdr_cc text, hdr_subject text,"
     " hdr_message_id text, hdr_date bigint);"
     "CREATE TABLE entries ("
     " mailbox_id bigint NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,"
     " uid bigint NOT NULL,"
     " content_id bigint NOT NULL REFERENCES contents (id),"
     " modseq bigint NOT NULL,"
     " flags integer NOT NULL DEFAULT 0,"
     " keywords text NOT NULL DEFAULT '',"
     " internal_date bigint NOT NULL,"
     " size bigint NOT NULL,"
     " emailid bigint NOT NULL, threadid bigint NOT NULL, savedate bigint NOT NULL,"
     " PRIMARY KEY (mailbox_id, uid));"
     "CREATE INDEX entries_modseq ON entries (mailbox_id, modseq);"
     "CREATE INDEX entries_content ON entries (content_id);"
     "CREATE TABLE expunged ("
     " mailbox_id bigint NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,"
     " uid bigint NOT NULL,"
     " modseq bigint NOT NULL,"
     " PRIMARY KEY (mailbox_id, uid));"
     /* A new mailbox is subscribed; a renamed one keeps its subscription (docs/storage.md). */
     "CREATE FUNCTION mailboxes_subscribe() RETURNS trigger LANGUAGE plpgsql AS $$"
     " BEGIN"
     "  IF TG_OP = 'INSERT' THEN"
     "   INSERT INTO subscriptions (user_id, name) VALUES (NEW.user_id, NEW.name)"
     "    ON CONFLICT DO NOTHING;"
     "  ELSIF NEW.name <> OLD.name THEN"
     "   UPDATE subscriptions SET name = NEW.name"
     "    WHERE user_id = OLD.user_id AND name = OLD.name"
     "    AND NOT EXISTS (SELECT 1 FROM subscriptions s"
     "     WHERE s.user_id = NEW.user_id AND s.name = NEW.name);"
     "  END IF;"
     "  RETURN NULL;"
     " END $$;"
     "CREATE TRIGGER mailboxes_subscribe AFTER INSERT OR UPDATE OF name ON mailboxes"
     " FOR EACH ROW EXECUTE FUNCTION mailboxes_subscribe();",
     "CREATE TABLE previews ("
     " content_id bigint PRIMARY KEY REFERENCES contents (id) ON DELETE CASCADE,"
     " text text NOT NULL);"
     /* Content lives while an entry refers to it; usage and mailbox counts follow entries,
      * so SELECT and STATUS never count rows (SQLite's entries_ref/entries_unref/
      * entries_seen). The UPDATE of users takes the user's row lock until COMMIT: two
      * front ends delivering to one user are serialized there, so quotas hold. */
     "CREATE FUNCTION entries_count() RETURNS trigger LANGUAGE plpgsql AS $$"
     " BEGIN"
     "  IF TG_OP = 'INSERT' THEN"
     "   UPDATE mailboxes SET messages = messages + 1, bytes = bytes + NEW.size,"
     "    unseen = unseen + (NEW.flags & 1 = 0)::int,"
     "    deleted = deleted + (NEW.flags & 8 <> 0)::int,"
     "    deleted_bytes = deleted_bytes + CASE WHEN NEW.flags & 8 <> 0"
     "     THEN NEW.size ELSE 0 END"
     "    WHERE id = NEW.mailbox_id;"
     "   UPDATE contents SET refs = refs + 1 WHERE id = NEW.content_id;"
     "   UPDATE users SET used_bytes = used_bytes + NEW.size"
     "    WHERE id = (SELECT user_id FROM mailboxes WHERE id = NEW.mailbox_id);"
     "  ELSIF TG_OP = 'DELETE' THEN"
     "   UPDATE mailboxes SET messages = messages - 1, bytes = bytes - OLD.size,"
     "    unseen = unseen - (OLD.flags & 1 = 0)::int,"
     "    deleted = deleted - (OLD.flags & 8 <> 0)::int,"
     "    deleted_bytes = deleted_bytes - CASE WHEN OLD.flags & 8 <> 0"
     "     THEN OLD.size ELSE 0 END"
     "    WHERE id = OLD.mailbox_id;"
     "   UPDATE users SET used_bytes = used_bytes - OLD.size"
     "    WHERE id = (SELECT user_id FROM mailboxes WHERE id = OLD.mailbox_id);"
     "   UPDATE contents SET refs = refs - 1 WHERE id = OLD.content_id;"
     "   DELETE FROM contents WHERE id = OLD.content_id AND refs <= 0;"
     "  ELSIF NEW.flags <> OLD.flags THEN"
     "   UPDATE mailboxes SET"
     "    unseen = unseen + (NEW.flags & 1 = 0)::int - (OLD.flags & 1 = 0)::int,"
     "    deleted = deleted + (NEW.flags & 8 <> 0)::int - (OLD.flags & 8 <> 0)::int,"
     "    deleted_bytes = deleted_bytes"
     "     + CASE WHEN NEW.flags & 8 <> 0 THEN NEW.size ELSE 0 END"
     "     - CASE WHEN OLD.flags & 8 <> 0 THEN OLD.size ELSE 0 END"
     "    WHERE id = NEW.mailbox_id;"
     "  END IF;"
     "  RETURN NULL;"
     " END $$;"
     "CREATE TRIGGER entries_count AFTER INSERT OR DELETE OR UPDATE OF flags ON entries"
     " FOR EACH ROW EXECUTE FUNCTION entries_count();"},
};

int pg_schema_migrate(struct pg_conn *c, const char **error_r)
{
	static char err[256];
	int rc = 0;
	/* The table itself, once, under the lock every front end takes. */
	if (pg_exec(c, "BEGIN") < 0 || pg_exec(c, "SELECT pg_advisory_xact_lock(4242001)") < 0 ||
	    pg_exec(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
	               " version integer PRIMARY KEY,"
	               " applied timestamptz NOT NULL DEFAULT now())") < 0) {
		*error_r = "cannot create the schema_migrations table (see the log)";
		pg_exec(c, "ROLLBACK");
		return -EIO;
	}
	PGresult *r = PQexec(c->db, "SELECT coalesce(max(version), 0) FROM schema_migrations");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		PQclear(r);
		pg_exec(c, "ROLLBACK");
		*error_r = "cannot read schema_migrations";
		return -EIO;
	}
	long long have = pg_i64(r, 0, 0);
	PQclear(r);
	if (have > PG_SCHEMA_VERSION) {
		snprintf(err, sizeof(err),
		         "the database is at schema %lld, newer than this sealmail (%d): "
		         "run a newer version",
		         have, PG_SCHEMA_VERSION);
		*error_r = err;
		pg_exec(c, "ROLLBACK");
		return -EPROTO;
	}
	for (long long v = have + 1; v <= PG_SCHEMA_VERSION; v++) {
		char sql[96];
		snprintf(sql, sizeof(sql), "INSERT INTO schema_migrations (version) VALUES (%lld)",
		         v);
		for (size_t k = 0; rc == 0 && k < PG_STEP_PARTS; k++)
			if (migrations[v - 1][k] != NULL && pg_exec(c, migrations[v - 1][k]) < 0)
				rc = -EIO;
		if (rc < 0 || pg_exec(c, sql) < 0) {
			snprintf(err, sizeof(err), "schema migration %lld failed (see the log)", v);
			*error_r = err;
			rc = -EIO;
			break;
		}
	}
	if (rc < 0) {
		pg_exec(c, "ROLLBACK");
		return rc;
	}
	if (pg_exec(c, "COMMIT") < 0) {
		*error_r = "schema migration: COMMIT failed";
		return -EIO;
	}
	return 0;
}
