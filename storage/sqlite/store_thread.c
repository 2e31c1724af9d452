/*
 * THREADID (RFC 8474 5.2): which conversation a user's new message belongs to, decided
 * once when it is stored and never recomputed, so that a client may cache it.
 *
 * A message joins the thread of the first of its Message-IDs that the user's mail has
 * named before: its own Message-ID first (a reply that arrived before it named it), then
 * its References from the nearest parent back (else In-Reply-To: sortkeys.refs). None
 * known: a new random thread. Every Message-ID it names is then remembered for the user
 * with that thread, so later replies find it even when this message is deleted. Threads
 * never merge: a message that links two known threads joins the first one found.
 * Subjects play no part (a changed subject stays in its conversation).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "storage/sqlite/store_private.h"

/* A Message-ID longer than this is not a real one (RFC 5322 lines are at most 998). */
#define THREAD_ID_MAX 998

int store_thread_stmts_prepare(sqlite3 *db, struct store_thread_stmts *t)
{
	int rc = sqlite3_prepare_v2(db, store_sql_string(SQL_THREAD_KEYS), -1, &t->keys, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, store_sql_string(SQL_THREAD_FIND), -1, &t->find, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, store_sql_string(SQL_THREAD_ADD), -1, &t->add, NULL);
	return rc;
}

void store_thread_stmts_finalize(struct store_thread_stmts *t)
{
	sqlite3_finalize(t->keys);
	sqlite3_finalize(t->find);
	sqlite3_finalize(t->add);
	memset(t, 0, sizeof(*t));
}

/* The message's Message-IDs in the order they are looked up: its own, then its
 * references nearest first. ids[] point into the two strings. */
static size_t thread_keys(char *own, char *refs, char **ids, size_t max)
{
	size_t n = 0;
	if (own != NULL && own[0] != '\0' && strlen(own) <= THREAD_ID_MAX)
		ids[n++] = own;
	if (refs == NULL)
		return n;
	char *found[128];
	size_t nf = 0;
	for (char *save = NULL, *tok = strtok_r(refs, " ", &save); tok != NULL && nf < 128;
	     tok = strtok_r(NULL, " ", &save))
		if (strlen(tok) <= THREAD_ID_MAX)
			found[nf++] = tok;
	while (nf > 0 && n < max)
		ids[n++] = found[--nf];
	return n;
}

static int thread_find(sqlite3 *db, sqlite3_stmt *st, int64_t user_id, const char *id,
                       int64_t *thread_r)
{
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*thread_r = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return rc == SQLITE_ROW;
	return store_err(db, rc);
}

int store_thread_assign(sqlite3 *db, const struct store_thread_stmts *t, int64_t user_id,
                        int64_t content_id, int64_t *thread_r)
{
	sqlite3_bind_int64(t->keys, 1, content_id);
	int rc = sqlite3_step(t->keys);
	char *own = NULL, *refs = NULL;
	if (rc == SQLITE_ROW) {
		own = store_col_text(t->keys, 0);
		refs = store_col_text(t->keys, 1);
	}
	sqlite3_reset(t->keys);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_err(db, rc);

	char *ids[129];
	size_t n = thread_keys(own, refs, ids, 129);
	int64_t thread = 0;
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = thread_find(db, t->find, user_id, ids[i], &thread);
	if (rc < 0)
		goto out;
	if (thread == 0) {
		do
			sqlite3_randomness(sizeof(thread), &thread);
		while (thread == 0);
	}
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(t->add, 1, user_id);
		sqlite3_bind_text(t->add, 2, ids[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(t->add, 3, thread);
		int src = sqlite3_step(t->add);
		sqlite3_reset(t->add);
		sqlite3_clear_bindings(t->add);
		if (src != SQLITE_DONE) {
			rc = store_err(db, src);
			goto out;
		}
	}
	*thread_r = thread;
	rc = 0;
out:
	free(own);
	free(refs);
	return rc;
}
