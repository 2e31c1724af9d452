/*
 * Mailboxes of a user on PostgreSQL: list, get with counts (SELECT, STATUS), create,
 * delete, rename, subscribe. Names follow the rules every backend shares
 * (store_mailbox_name_valid); INBOX is case-insensitive.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/xmalloc.h"
#include "storage/pg/store_pg_private.h"

static void mailbox_from_row(const PGresult *r, int row, struct store_mailbox *mb)
{
	mb->id = pg_i64(r, row, 0);
	mb->user_id = pg_i64(r, row, 1);
	mb->name = pg_str(r, row, 2);
	mb->special_use = (unsigned)pg_i64(r, row, 3);
	mb->subscribed = pg_i64(r, row, 4) != 0;
	mb->uidvalidity = (uint32_t)pg_i64(r, row, 5);
	mb->uidnext = (uint32_t)pg_i64(r, row, 6);
	mb->highest_modseq = (uint64_t)pg_i64(r, row, 7);
	mb->messages = (uint32_t)pg_i64(r, row, 8);
	mb->unseen = (uint32_t)pg_i64(r, row, 9);
	mb->size = (uint64_t)pg_i64(r, row, 10);
	mb->recent = (uint32_t)pg_i64(r, row, 11);
	mb->deleted = (uint32_t)pg_i64(r, row, 12);
	mb->deleted_size = (uint64_t)pg_i64(r, row, 13);
	mb->objectid = (uint64_t)pg_i64(r, row, 14);
}

/* INBOX is case-insensitive (RFC 3501 5.1). */
static const char *canonical_name(const char *name)
{
	return strcasecmp(name, "INBOX") == 0 ? "INBOX" : name;
}

int pg_mailbox_insert(struct pg_conn *c, int64_t user_id, const char *name, unsigned special_use)
{
	struct pg_params p = {0};
	pg_p_i64(&p, user_id);
	pg_p_text(&p, name);
	pg_p_i64(&p, special_use);
	pg_p_i64(&p, (uint32_t)time(NULL));
	/* A missing user fails the foreign key (-ENOENT), a taken name the unique index. */
	return pg_run_cmd(c, PGSQL_MAILBOX_INSERT, &p, NULL);
}

struct mailbox_job {
	struct pg_job job;
	int64_t user_id;
	char *name;
	char *new_name;
	unsigned special_use;
	bool on;
};

static void mailbox_job_free(struct pg_job *job)
{
	struct mailbox_job *j = (struct mailbox_job *)job;
	free(j->name);
	free(j->new_name);
}

static struct mailbox_job *mailbox_job_new(struct pg_store *s, enum pg_job_kind kind,
                                           pg_job_run_fn *run, int64_t user_id, const char *name,
                                           store_backend_cb *cb, void *ctx)
{
	struct mailbox_job *j = pg_job_new(sizeof(*j), s, kind, run, cb, ctx);
	j->job.free_args = mailbox_job_free;
	j->user_id = user_id;
	j->name = name != NULL ? xstrdup(canonical_name(name)) : NULL;
	return j;
}

static int load_by_name(struct pg_conn *c, struct pg_job *job, int64_t user_id, const char *name)
{
	struct pg_params p = {0};
	int rc;
	pg_p_i64(&p, user_id);
	pg_p_text(&p, name);
	PGresult *r = pg_run(c, PGSQL_MAILBOX_BY_NAME, &p, &rc);
	if (r == NULL)
		return rc;
	if (PQntuples(r) == 1) {
		job->res.mailboxes = xcalloc(1, sizeof(*job->res.mailboxes));
		mailbox_from_row(r, 0, &job->res.mailboxes[0]);
		job->res.n_mailboxes = 1;
	} else {
		rc = -ENOENT;
	}
	PQclear(r);
	return rc;
}

static int list_run(struct pg_conn *c, struct pg_job *job)
{
	struct mailbox_job *j = (struct mailbox_job *)job;
	struct pg_params p = {0};
	int rc;
	pg_p_i64(&p, j->user_id);
	PGresult *r = pg_run(c, PGSQL_MAILBOX_LIST, &p, &rc);
	if (r == NULL)
		return rc;
	size_t n = (size_t)PQntuples(r);
	if (n > 0)
		job->res.mailboxes = xcalloc(n, sizeof(*job->res.mailboxes));
	for (size_t i = 0; i < n; i++)
		mailbox_from_row(r, (int)i, &job->res.mailboxes[i]);
	job->res.n_mailboxes = n;
	PQclear(r);
	/* Every user has an INBOX: none means no such user. */
	if (n == 0)
		return -ENOENT;
	r = pg_run(c, PGSQL_SUBSCRIBED_MISSING, &p, &rc);
	if (r == NULL)
		return rc;
	n = (size_t)PQntuples(r);
	if (n > 0)
		job->res.names = xcalloc(n, sizeof(*job->res.names));
	for (size_t i = 0; i < n; i++)
		job->res.names[i] = pg_str(r, (int)i, 0);
	job->res.n_names = n;
	PQclear(r);
	return 0;
}

int pg_store_mailbox_list(void *impl, int64_t user_id, store_backend_cb *cb, void *ctx)
{
	struct mailbox_job *j =
	    mailbox_job_new(impl, PG_JOB_READ, list_run, user_id, NULL, cb, ctx);
	return pg_job_submit(&j->job);
}

static int get_run(struct pg_conn *c, struct pg_job *job)
{
	struct mailbox_job *j = (struct mailbox_job *)job;
	return load_by_name(c, job, j->user_id, j->name);
}

int pg_store_mailbox_get(void *impl, int64_t user_id, const char *name, store_backend_cb *cb,
                         void *ctx)
{
	if (!store_mailbox_name_valid(name))
		return -EINVAL;
	struct mailbox_job *j = mailbox_job_new(impl, PG_JOB_READ, get_run, user_id, name, cb, ctx);
	return pg_job_submit(&j->job);
}

static int create_run(struct pg_conn *c, struct pg_job *job)
{
	struct mailbox_job *j = (struct mailbox_job *)job;
	int rc = pg_mailbox_insert(c, j->user_id, j->name, j->special_use);
	if (rc < 0)
		return rc;
	return load_by_name(c, job, j->user_id, j->name);
}

int pg_store_mailbox_create(void *impl, int64_t user_id, const char *name, unsigned special_use,
                            store_backend_cb *cb, void *ctx)
{
	if (!store_mailbox_name_valid(name))
		return -EINVAL;
	struct mailbox_job *j =
	    mailbox_job_new(impl, PG_JOB_WRITE, create_run, user_id, name, cb, ctx);
	j->special_use = special_use;
	return pg_job_submit(&j->job);
}

static int delete_run(struct pg_conn *c, struct pg_job *job)
{
	struct mailbox_job *j = (struct mailbox_job *)job;
	int rc = load_by_name(c, job, j->user_id, j->name);
	if (rc < 0)
		return rc;
	int64_t id = job->res.mailboxes[0].id;
	store_backend_result_free(&job->res);
	struct pg_params p = {0};
	pg_p_i64(&p, id);
	/* Entries first, so that their triggers still find the mailbox's user. */
	rc = pg_run_cmd(c, PGSQL_ENTRIES_DELETE_ALL, &p, NULL);
	if (rc == 0)
		rc = pg_run_cmd(c, PGSQL_MAILBOX_DELETE, &p, NULL);
	if (rc < 0)
		return rc;
	pg_job_note_change(job, j->user_id, id, 0, 0, 0);
	return 0;
}

int pg_store_mailbox_delete(void *impl, int64_t user_id, const char *name, store_backend_cb *cb,
                            void *ctx)
{
	if (!store_mailbox_name_valid(name) || strcasecmp(name, "INBOX") == 0)
		return -EINVAL;
	struct mailbox_job *j =
	    mailbox_job_new(impl, PG_JOB_WRITE, delete_run, user_id, name, cb, ctx);
	return pg_job_submit(&j->job);
}

/* RFC 9051 6.3.6: renaming INBOX creates the new mailbox, moves every message of INBOX
 * into it and leaves INBOX, empty, where it was; mailboxes under INBOX stay. */
static int rename_inbox(struct pg_conn *c, struct pg_job *job, struct mailbox_job *j)
{
	int64_t inbox = job->res.mailboxes[0].id;
	store_backend_result_free(&job->res);
	int rc = pg_mailbox_insert(c, j->user_id, j->new_name, 0);
	if (rc == 0)
		rc = load_by_name(c, job, j->user_id, j->new_name);
	if (rc < 0)
		return rc;
	int64_t dst = job->res.mailboxes[0].id;
	store_backend_result_free(&job->res);
	rc = pg_entries_move_all(c, job, inbox, dst);
	store_backend_result_free(&job->res);
	if (rc < 0)
		return rc;
	return load_by_name(c, job, j->user_id, j->new_name);
}

static int rename_run(struct pg_conn *c, struct pg_job *job)
{
	struct mailbox_job *j = (struct mailbox_job *)job;
	int rc = load_by_name(c, job, j->user_id, j->name);
	if (rc < 0)
		return rc;
	if (strcmp(j->name, "INBOX") == 0)
		return rename_inbox(c, job, j);
	store_backend_result_free(&job->res);
	struct pg_params p = {0};
	pg_p_i64(&p, j->user_id);
	pg_p_text(&p, j->name);
	pg_p_text(&p, j->new_name);
	rc = pg_run_cmd(c, PGSQL_MAILBOX_RENAME, &p, NULL);
	if (rc < 0)
		return rc;
	return load_by_name(c, job, j->user_id, j->new_name);
}

int pg_store_mailbox_rename(void *impl, int64_t user_id, const char *name, const char *new_name,
                            store_backend_cb *cb, void *ctx)
{
	if (!store_mailbox_name_valid(name) || !store_mailbox_name_valid(new_name) ||
	    strcasecmp(new_name, "INBOX") == 0)
		return -EINVAL;
	if (strcasecmp(name, "INBOX") == 0)
		name = "INBOX";
	struct mailbox_job *j =
	    mailbox_job_new(impl, PG_JOB_WRITE, rename_run, user_id, name, cb, ctx);
	j->new_name = xstrdup(new_name);
	return pg_job_submit(&j->job);
}

static int subscribe_run(struct pg_conn *c, struct pg_job *job)
{
	struct mailbox_job *j = (struct mailbox_job *)job;
	struct pg_params p = {0};
	pg_p_i64(&p, j->user_id);
	pg_p_text(&p, j->name);
	return pg_run_cmd(c, j->on ? PGSQL_SUBSCRIBE_ADD : PGSQL_SUBSCRIBE_DEL, &p, NULL);
}

int pg_store_mailbox_subscribe(void *impl, int64_t user_id, const char *name, bool on,
                               store_backend_cb *cb, void *ctx)
{
	if (!store_mailbox_name_valid(name))
		return -EINVAL;
	struct mailbox_job *j =
	    mailbox_job_new(impl, PG_JOB_WRITE, subscribe_run, user_id, name, cb, ctx);
	j->on = on;
	return pg_job_submit(&j->job);
}

/* \Recent (RFC 3501 2.3.2): the UIDs from the mailbox's first untaken one up to upto go to
 * this caller, and no later caller gets them, on this front end or another: the mailbox
 * row stays locked from the read of recent_uid to COMMIT. */
struct recent_job {
	struct pg_job job;
	int64_t mailbox_id;
	uint32_t upto;
};

static int recent_run(struct pg_conn *c, struct pg_job *job)
{
	struct recent_job *j = (struct recent_job *)job;
	struct pg_params p = {0};
	int rc;
	pg_p_i64(&p, j->mailbox_id);
	PGresult *r = pg_run(c, PGSQL_RECENT_GET, &p, &rc);
	if (r == NULL)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return -ENOENT;
	}
	int64_t first = pg_i64(r, 0, 0);
	PQclear(r);
	if (first >= (int64_t)j->upto)
		return 0;
	pg_p_i64(&p, j->upto);
	rc = pg_run_cmd(c, PGSQL_RECENT_SET, &p, NULL);
	if (rc < 0)
		return rc;
	struct pg_params q = {0};
	pg_p_i64(&q, j->mailbox_id);
	pg_p_i64(&q, first);
	pg_p_i64(&q, j->upto);
	r = pg_run(c, PGSQL_ENTRY_UIDS_BETWEEN, &q, &rc);
	if (r == NULL)
		return rc;
	size_t n = (size_t)PQntuples(r);
	if (n > 0)
		job->res.uids = xcalloc(n, sizeof(*job->res.uids));
	for (size_t i = 0; i < n; i++)
		job->res.uids[i] = (uint32_t)pg_i64(r, (int)i, 0);
	job->res.n_uids = n;
	PQclear(r);
	return 0;
}

int pg_store_recent_take(void *impl, int64_t mailbox_id, uint32_t upto, store_backend_cb *cb,
                         void *ctx)
{
	struct recent_job *j = pg_job_new(sizeof(*j), impl, PG_JOB_WRITE, recent_run, cb, ctx);
	j->mailbox_id = mailbox_id;
	j->upto = upto;
	return pg_job_submit(&j->job);
}
