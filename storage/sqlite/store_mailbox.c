/*
 * Mailboxes of a user: list, get with counts (SELECT, STATUS), create, delete, rename,
 * subscribe; and the modseq/UID counter every change goes through.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/xmalloc.h"
#include "storage/sqlite/store_private.h"

#define MAILBOX_NAME_MAX 512

int store_mailbox_load(struct store_conn *c, sqlite3_stmt *st, struct store_mailbox *mb)
{
	mb->id = sqlite3_column_int64(st, 0);
	mb->user_id = sqlite3_column_int64(st, 1);
	mb->name = store_col_text(st, 2);
	mb->special_use = (unsigned)sqlite3_column_int(st, 3);
	mb->subscribed = sqlite3_column_int(st, 4) != 0;
	mb->uidvalidity = (uint32_t)sqlite3_column_int64(st, 5);
	mb->uidnext = (uint32_t)sqlite3_column_int64(st, 6);
	mb->highest_modseq = (uint64_t)sqlite3_column_int64(st, 7);
	mb->messages = (uint32_t)sqlite3_column_int64(st, 8);
	mb->unseen = (uint32_t)sqlite3_column_int64(st, 9);
	mb->size = (uint64_t)sqlite3_column_int64(st, 10);
	mb->recent = (uint32_t)sqlite3_column_int64(st, 11);
	mb->deleted = (uint32_t)sqlite3_column_int64(st, 12);
	mb->deleted_size = (uint64_t)sqlite3_column_int64(st, 13);
	mb->objectid = (uint64_t)sqlite3_column_int64(st, 14);
	(void)c;
	return 0;
}

/*
 * UTF-8 names with "/" as the separator: no control characters, no empty or "."/".."
 * components, no leading or trailing "/", bounded length. Anything else is refused, never
 * mapped onto another name.
 */
bool store_mailbox_name_valid(const char *name)
{
	size_t len = name != NULL ? strlen(name) : 0;
	if (len == 0 || len > MAILBOX_NAME_MAX || name[0] == '/' || name[len - 1] == '/')
		return false;
	const char *comp = name;
	for (const char *p = name;; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch == '/' || ch == '\0') {
			size_t n = (size_t)(p - comp);
			if (n == 0 || (n == 1 && comp[0] == '.') ||
			    (n == 2 && comp[0] == '.' && comp[1] == '.'))
				return false;
			if (ch == '\0')
				return true;
			comp = p + 1;
		} else if (ch < 0x20 || ch == 0x7f || ch == '*' || ch == '%') {
			return false;
		}
	}
}

/* INBOX is case-insensitive (RFC 3501 5.1). */
static const char *canonical_name(const char *name)
{
	return strcasecmp(name, "INBOX") == 0 ? "INBOX" : name;
}

int store_mailbox_bump(struct store_conn *c, int64_t mailbox_id, uint32_t n_uids,
                       uint64_t *modseq_r, uint32_t *first_uid_r)
{
	sqlite3_stmt *st = store_stmt(c, SQL_MAILBOX_BUMP);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, n_uids);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*modseq_r = (uint64_t)sqlite3_column_int64(st, 0);
		uint64_t uidnext = (uint64_t)sqlite3_column_int64(st, 1);
		if (first_uid_r != NULL)
			*first_uid_r = (uint32_t)(uidnext - n_uids);
		rc = uidnext > UINT32_MAX ? -EFBIG : 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : store_err(c->db, rc);
	}
	sqlite3_reset(st);
	return rc;
}

int store_mailbox_note(struct store_conn *c, struct store_job *job, int64_t mailbox_id)
{
	sqlite3_stmt *st = store_stmt(c, SQL_MAILBOX_STATE);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		store_job_note_change(job, sqlite3_column_int64(st, 0), mailbox_id,
		                      (uint64_t)sqlite3_column_int64(st, 1),
		                      (uint32_t)sqlite3_column_int64(st, 2),
		                      (uint32_t)sqlite3_column_int64(st, 3));
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : store_err(c->db, rc);
	}
	sqlite3_reset(st);
	return rc;
}

struct mailbox_job {
	struct store_job job;
	int64_t user_id;
	char *name;
	char *new_name;
	unsigned special_use;
	bool on;
};

static void mailbox_job_free(struct store_job *job)
{
	struct mailbox_job *j = (struct mailbox_job *)job;
	free(j->name);
	free(j->new_name);
}

static struct mailbox_job *mailbox_job_new(struct sqlite_store *s, enum store_job_kind kind,
                                           store_job_run_fn *run, int64_t user_id, const char *name,
                                           store_backend_cb *cb, void *ctx)
{
	struct mailbox_job *j = store_job_new(sizeof(*j), s, kind, run, cb, ctx);
	j->job.free_args = mailbox_job_free;
	j->user_id = user_id;
	j->name = name != NULL ? xstrdup(canonical_name(name)) : NULL;
	return j;
}

static int load_by_name(struct store_conn *c, struct store_job *job, int64_t user_id,
                        const char *name)
{
	sqlite3_stmt *st = store_stmt(c, SQL_MAILBOX_BY_NAME);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, user_id);
	store_bind_text(st, 2, name);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		job->res.mailboxes = xcalloc(1, sizeof(*job->res.mailboxes));
		store_mailbox_load(c, st, &job->res.mailboxes[0]);
		job->res.n_mailboxes = 1;
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : store_err(c->db, rc);
	}
	sqlite3_reset(st);
	return rc;
}

static int list_run(struct store_conn *c, struct store_job *job)
{
	struct mailbox_job *j = (struct mailbox_job *)job;
	sqlite3_stmt *st = store_stmt(c, SQL_MAILBOX_LIST);
	size_t cap = 0;
	int rc;
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, j->user_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (job->res.n_mailboxes == cap) {
			cap = cap != 0 ? cap * 2 : 8;
			job->res.mailboxes =
			    xreallocarray(job->res.mailboxes, cap, sizeof(*job->res.mailboxes));
		}
		store_mailbox_load(c, st, &job->res.mailboxes[job->res.n_mailboxes++]);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_err(c->db, rc);
	/* Every user has an INBOX: none means no such user. */
	if (job->res.n_mailboxes == 0)
		return -ENOENT;
	st = store_stmt(c, SQL_SUBSCRIBED_MISSING);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, j->user_id);
	cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (job->res.n_names == cap) {
			cap = cap != 0 ? cap * 2 : 8;
			job->res.names =
			    xreallocarray(job->res.names, cap, sizeof(*job->res.names));
		}
		job->res.names[job->res.n_names++] = store_col_text(st, 0);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
}

int sqlite_store_mailbox_list(void *impl, int64_t user_id, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	struct mailbox_job *j =
	    mailbox_job_new(s, STORE_JOB_READ, list_run, user_id, NULL, cb, ctx);
	return store_job_submit(&j->job);
}

static int get_run(struct store_conn *c, struct store_job *job)
{
	struct mailbox_job *j = (struct mailbox_job *)job;
	return load_by_name(c, job, j->user_id, j->name);
}

int sqlite_store_mailbox_get(void *impl, int64_t user_id, const char *name, store_backend_cb *cb,
                             void *ctx)
{
	struct sqlite_store *s = impl;
	if (!store_mailbox_name_valid(name))
		return -EINVAL;
	struct mailbox_job *j = mailbox_job_new(s, STORE_JOB_READ, get_run, user_id, name, cb, ctx);
	return store_job_submit(&j->job);
}

static int mailbox_insert(struct store_conn *c, int64_t user_id, const char *name,
                          unsigned special_use)
{
	sqlite3_stmt *st = store_stmt(c, SQL_MAILBOX_INSERT);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, user_id);
	store_bind_text(st, 2, name);
	sqlite3_bind_int(st, 3, (int)special_use);
	sqlite3_bind_int64(st, 4, (uint32_t)time(NULL));
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return 0;
	/* A missing user fails the foreign key, a taken name the unique index. */
	rc = store_err(c->db, rc);
	if (rc == -EEXIST && (sqlite3_extended_errcode(c->db) == SQLITE_CONSTRAINT_FOREIGNKEY))
		rc = -ENOENT;
	return rc;
}

static int create_run(struct store_conn *c, struct store_job *job)
{
	struct mailbox_job *j = (struct mailbox_job *)job;
	int rc = mailbox_insert(c, j->user_id, j->name, j->special_use);
	if (rc < 0)
		return rc;
	return load_by_name(c, job, j->user_id, j->name);
}

int sqlite_store_mailbox_create(void *impl, int64_t user_id, const char *name, unsigned special_use,
                                store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	if (!store_mailbox_name_valid(name))
		return -EINVAL;
	struct mailbox_job *j =
	    mailbox_job_new(s, STORE_JOB_WRITE, create_run, user_id, name, cb, ctx);
	j->special_use = special_use;
	return store_job_submit(&j->job);
}

static int delete_run(struct store_conn *c, struct store_job *job)
{
	struct mailbox_job *j = (struct mailbox_job *)job;
	int rc = load_by_name(c, job, j->user_id, j->name);
	if (rc < 0)
		return rc;
	int64_t id = job->res.mailboxes[0].id;
	store_backend_result_free(&job->res);
	/* Entries first, so the usage trigger still finds the mailbox's user. */
	sqlite3_stmt *st = store_stmt(c, SQL_ENTRY_LIST);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	uint32_t *uids = NULL;
	size_t n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uids = xreallocarray(uids, n + 1, sizeof(*uids));
		uids[n++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	rc = rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		st = store_stmt(c, SQL_ENTRY_DELETE);
		if (st == NULL) {
			rc = -EIO;
			break;
		}
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, uids[i]);
		int step = sqlite3_step(st);
		rc = step == SQLITE_DONE ? 0 : store_err(c->db, step);
	}
	free(uids);
	if (rc < 0)
		return rc;
	st = store_stmt(c, SQL_MAILBOX_DELETE);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		return store_err(c->db, rc);
	store_job_note_change(job, j->user_id, id, 0, 0, 0);
	return 0;
}

int sqlite_store_mailbox_delete(void *impl, int64_t user_id, const char *name, store_backend_cb *cb,
                                void *ctx)
{
	struct sqlite_store *s = impl;
	if (!store_mailbox_name_valid(name) || strcasecmp(name, "INBOX") == 0)
		return -EINVAL;
	struct mailbox_job *j =
	    mailbox_job_new(s, STORE_JOB_WRITE, delete_run, user_id, name, cb, ctx);
	return store_job_submit(&j->job);
}

/* RFC 9051 6.3.6: renaming INBOX creates the new mailbox, moves every message of INBOX
 * into it and leaves INBOX, empty, where it was; mailboxes under INBOX stay. */
static int rename_inbox(struct store_conn *c, struct store_job *job, struct mailbox_job *j)
{
	int64_t inbox = job->res.mailboxes[0].id;
	store_backend_result_free(&job->res);
	int rc = mailbox_insert(c, j->user_id, j->new_name, 0);
	if (rc == 0)
		rc = load_by_name(c, job, j->user_id, j->new_name);
	if (rc < 0)
		return rc;
	int64_t dst = job->res.mailboxes[0].id;
	store_backend_result_free(&job->res);
	/* RFC 5464 4.1: INBOX keeps its annotations, the new mailbox gets a copy. */
	rc = store_metadata_copy(c, inbox, dst);
	if (rc == 0)
		rc = store_entries_move_all(c, job, inbox, dst);
	store_backend_result_free(&job->res);
	if (rc < 0)
		return rc;
	return load_by_name(c, job, j->user_id, j->new_name);
}

static int rename_run(struct store_conn *c, struct store_job *job)
{
	struct mailbox_job *j = (struct mailbox_job *)job;
	int rc = load_by_name(c, job, j->user_id, j->name);
	if (rc < 0)
		return rc;
	if (strcmp(j->name, "INBOX") == 0)
		return rename_inbox(c, job, j);
	store_backend_result_free(&job->res);
	sqlite3_stmt *st = store_stmt(c, SQL_MAILBOX_RENAME);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, j->user_id);
	store_bind_text(st, 2, j->name);
	store_bind_text(st, 3, j->new_name);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		return store_err(c->db, rc);
	return load_by_name(c, job, j->user_id, j->new_name);
}

int sqlite_store_mailbox_rename(void *impl, int64_t user_id, const char *name, const char *new_name,
                                store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	/* Renaming INBOX moves its messages (rename_inbox); nothing becomes INBOX. */
	if (!store_mailbox_name_valid(name) || !store_mailbox_name_valid(new_name) ||
	    strcasecmp(new_name, "INBOX") == 0)
		return -EINVAL;
	if (strcasecmp(name, "INBOX") == 0)
		name = "INBOX";
	struct mailbox_job *j =
	    mailbox_job_new(s, STORE_JOB_WRITE, rename_run, user_id, name, cb, ctx);
	j->new_name = xstrdup(new_name);
	return store_job_submit(&j->job);
}

static int subscribe_run(struct store_conn *c, struct store_job *job)
{
	struct mailbox_job *j = (struct mailbox_job *)job;
	sqlite3_stmt *st = store_stmt(c, j->on ? SQL_SUBSCRIBE_ADD : SQL_SUBSCRIBE_DEL);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, j->user_id);
	store_bind_text(st, 2, j->name);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
}

int sqlite_store_mailbox_subscribe(void *impl, int64_t user_id, const char *name, bool on,
                                   store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	if (!store_mailbox_name_valid(name))
		return -EINVAL;
	struct mailbox_job *j =
	    mailbox_job_new(s, STORE_JOB_WRITE, subscribe_run, user_id, name, cb, ctx);
	j->on = on;
	return store_job_submit(&j->job);
}

/* \Recent (RFC 3501 2.3.2): the UIDs from the mailbox's first untaken one up to upto go to
 * this caller, and no later caller gets them. */
struct recent_job {
	struct store_job job;
	int64_t mailbox_id;
	uint32_t upto;
};

static int recent_run(struct store_conn *c, struct store_job *job)
{
	struct recent_job *j = (struct recent_job *)job;
	sqlite3_stmt *st = store_stmt(c, SQL_RECENT_GET);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, j->mailbox_id);
	int rc = sqlite3_step(st);
	int64_t first = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? -ENOENT : store_err(c->db, rc);
	if (first >= (int64_t)j->upto)
		return 0;
	st = store_stmt(c, SQL_RECENT_SET);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, j->mailbox_id);
	sqlite3_bind_int64(st, 2, j->upto);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_err(c->db, rc);
	st = store_stmt(c, SQL_ENTRY_UIDS_BETWEEN);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, j->mailbox_id);
	sqlite3_bind_int64(st, 2, first);
	sqlite3_bind_int64(st, 3, j->upto);
	size_t cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (job->res.n_uids == cap) {
			cap = cap != 0 ? cap * 2 : 16;
			job->res.uids = xreallocarray(job->res.uids, cap, sizeof(*job->res.uids));
		}
		job->res.uids[job->res.n_uids++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
}

int sqlite_store_recent_take(void *impl, int64_t mailbox_id, uint32_t upto, store_backend_cb *cb,
                             void *ctx)
{
	struct sqlite_store *s = impl;
	struct recent_job *j = store_job_new(sizeof(*j), s, STORE_JOB_WRITE, recent_run, cb, ctx);
	j->mailbox_id = mailbox_id;
	j->upto = upto;
	return store_job_submit(&j->job);
}
