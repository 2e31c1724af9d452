/*
 * The store's threads: one writer committing in groups, a pool of workers for reads and
 * for the slow half of writes (hashing, MIME parsing), and the handing back of results
 * through the poster. Operations live in the other files; they only build jobs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/xmalloc.h"
#include "storage/sqlite/store_private.h"
#include "storage/sqlite/store_vfs.h"

static _Thread_local char store_error_buf[512];

void store_set_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(store_error_buf, sizeof(store_error_buf), fmt, ap);
	va_end(ap);
}

int store_err(sqlite3 *db, int sqlite_rc)
{
	int rc;
	switch (sqlite_rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_FULL:
		rc = -ENOSPC;
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		rc = -EBUSY;
		break;
	case SQLITE_CONSTRAINT:
		rc = -EEXIST;
		break;
	case SQLITE_TOOBIG:
		rc = -EFBIG;
		break;
	case SQLITE_READONLY:
		rc = -EROFS;
		break;
	case SQLITE_NOMEM:
		rc = -ENOMEM;
		break;
	default: /* CORRUPT, NOTADB, IOERR, CANTOPEN, ... */
		rc = -EIO;
		break;
	}
	if (rc != -EEXIST)
		log_event(LOGL_ERROR, "event=store_error sqlite_rc=%d msg=\"%s\"", sqlite_rc,
		          db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(sqlite_rc));
	return rc;
}

/* ---- Jobs ---- */

void *store_job_new(size_t size, struct sqlite_store *s, enum store_job_kind kind,
                    store_job_run_fn *run, store_backend_cb *cb, void *ctx)
{
	struct store_job *job = xcalloc(1, size);
	job->store = s;
	job->kind = kind;
	job->run = run;
	job->cb = cb;
	job->ctx = ctx;
	return job;
}

static void job_destroy(struct store_job *job)
{
	store_backend_result_free(&job->res);
	if (job->free_args != NULL)
		job->free_args(job);
	free(job->changes);
	free(job);
}

void store_job_note_change(struct store_job *job, int64_t user_id, int64_t mailbox_id,
                           uint64_t modseq, uint32_t uidnext, uint32_t exists)
{
	for (size_t i = 0; i < job->n_changes; i++) {
		if (job->changes[i].mailbox_id == mailbox_id) {
			job->changes[i].highest_modseq = modseq;
			job->changes[i].uidnext = uidnext;
			job->changes[i].exists = exists;
			return;
		}
	}
	job->changes = xreallocarray(job->changes, job->n_changes + 1, sizeof(*job->changes));
	job->changes[job->n_changes++] = (struct store_change){
	    .user_id = user_id,
	    .mailbox_id = mailbox_id,
	    .highest_modseq = modseq,
	    .uidnext = uidnext,
	    .exists = exists,
	};
}

/* Runs on the loop thread (poster) or a store thread (no poster). The job carries copies of
 * what it needs: the store may be closed by now. */
static void job_complete(void *arg)
{
	struct store_job *job = arg;
	if (job->rc == 0 && job->on_change != NULL)
		for (size_t i = 0; i < job->n_changes; i++)
			job->on_change(job->change_ctx, &job->changes[i]);
	job->cb(job->ctx, job->rc, &job->res);
	job_destroy(job);
}

static void job_finish(struct store_job *job)
{
	struct sqlite_store *s = job->store;
	if (job->rc < 0) {
		store_backend_result_free(&job->res);
		job->n_changes = 0;
	}
	/* With a poster the completion may run after store_close: copy the hook. */
	job->on_change = s->opt.on_change;
	job->change_ctx = s->opt.change_ctx;
	if (s->has_poster)
		s->poster.post(s->poster.ctx, job_complete, job);
	else
		job_complete(job);
}

static void queue_push(struct store_queue *q, struct store_job *job)
{
	job->next = NULL;
	if (q->tail != NULL)
		q->tail->next = job;
	else
		q->head = job;
	q->tail = job;
	q->len++;
}

static struct store_job *queue_pop(struct store_queue *q)
{
	struct store_job *job = q->head;
	if (job == NULL)
		return NULL;
	q->head = job->next;
	if (q->head == NULL)
		q->tail = NULL;
	q->len--;
	job->next = NULL;
	return job;
}

int store_job_submit(struct store_job *job)
{
	struct sqlite_store *s = job->store;
	pthread_mutex_lock(&s->lock);
	if (s->stopping) {
		pthread_mutex_unlock(&s->lock);
		job_destroy(job);
		return -ESHUTDOWN;
	}
	if (s->poisoned && job->kind == STORE_JOB_WRITE) {
		pthread_mutex_unlock(&s->lock);
		job_destroy(job);
		return -EIO;
	}
	if (job->kind == STORE_JOB_WRITE && job->prepare == NULL) {
		queue_push(&s->writes, job);
		pthread_cond_signal(&s->writer_cv);
	} else {
		if (job->kind == STORE_JOB_WRITE)
			s->preparing++;
		queue_push(&s->reads, job);
		pthread_cond_signal(&s->worker_cv);
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* ---- A disk that failed ---- */

struct poison_note {
	void (*fn)(void *ctx, const char *reason);
	void *ctx;
	char reason[256];
};

static void poison_run(void *arg)
{
	struct poison_note *p = arg;
	p->fn(p->ctx, p->reason);
	free(p);
}

/*
 * After SQLite met an I/O error or corruption while writing (extended code ec): a failed
 * fsync may have dropped the data it was to make durable from the page cache, and trying
 * again would report success for bytes that are gone (the kernel marks them clean). So the
 * store stops writing: every write job queued or submitted from now fails with -EIO,
 * nothing more is acknowledged, and the owner hears it once (on_failure) to stop taking
 * mail. Reads go on. Only a restart, whose recovery reads what is really on disk, ends it.
 * Returns true when ec is such an error.
 */
static bool store_poison(struct sqlite_store *s, int ec, const char *what)
{
	int prim = ec & 0xff;
	if (prim != SQLITE_IOERR && prim != SQLITE_CORRUPT && prim != SQLITE_NOTADB)
		return false;
	pthread_mutex_lock(&s->lock);
	bool first = !s->poisoned;
	s->poisoned = true;
	pthread_mutex_unlock(&s->lock);
	if (!first)
		return true;
	log_event(LOGL_ERROR,
	          "event=store_failed during=%s sqlite_rc=%d msg=\"%s\" action=\"no more writes; "
	          "restart sealmaild once the disk is checked\"",
	          what, ec, sqlite3_errstr(ec));
	if (s->opt.on_failure == NULL)
		return true;
	struct poison_note *p = xcalloc(1, sizeof(*p));
	p->fn = s->opt.on_failure;
	p->ctx = s->opt.failure_ctx;
	snprintf(p->reason, sizeof(p->reason), "%s failed: %s (sqlite %d)", what,
	         sqlite3_errstr(ec), ec);
	if (s->has_poster)
		s->poster.post(s->poster.ctx, poison_run, p);
	else
		poison_run(p);
	return true;
}

/* ---- Writer ---- */

static int64_t ns_between(const struct timespec *a, const struct timespec *b)
{
	return (int64_t)(b->tv_sec - a->tv_sec) * 1000000000 + (b->tv_nsec - a->tv_nsec);
}

static void store_job_unlink(struct store_job **list, struct store_job *job)
{
	for (struct store_job **p = list; *p != NULL; p = &(*p)->next) {
		if (*p == job) {
			*p = job->next;
			job->next = NULL;
			return;
		}
	}
}

/* Puts jobs back at the head of the write queue, as if they had never run. */
static void writer_requeue(struct sqlite_store *s, struct store_job *first)
{
	struct store_job *head = NULL, **tail = &head;
	for (struct store_job *job = first, *next; job != NULL; job = next) {
		next = job->next;
		store_backend_result_free(&job->res);
		job->n_changes = 0;
		job->rc = 0;
		*tail = job;
		tail = &job->next;
	}
	*tail = NULL;
	if (head == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	struct store_job *last = head;
	size_t n = 1;
	while (last->next != NULL) {
		last = last->next;
		n++;
	}
	last->next = s->writes.head;
	s->writes.head = head;
	if (s->writes.tail == NULL)
		s->writes.tail = last;
	s->writes.len += n;
	pthread_mutex_unlock(&s->lock);
}

/* The whole transaction is gone (SQLite rolled it back, or we do now): job fails, the rest
 * of the batch goes back to the queue to run again in a new transaction. */
static void writer_fail_one(struct sqlite_store *s, struct store_job *batch, struct store_job *job,
                            struct store_audit_batch *audit)
{
	struct store_conn *c = &s->wconn;
	if ((sqlite3_extended_errcode(c->db) & 0xff) == SQLITE_FULL)
		store_disk_full(s);
	if (store_poison(s, sqlite3_extended_errcode(c->db), "write")) {
		/* Nothing of this batch is trusted to be on disk: none of it is acknowledged,
		 * and nothing runs again. */
		if (!sqlite3_get_autocommit(c->db))
			store_exec_stmt(c, SQL_ROLLBACK);
		while (batch != NULL) {
			struct store_job *j = batch;
			batch = batch->next;
			j->rc = -EIO;
			job_finish(j);
		}
		store_audit_giveback(s, audit);
		return;
	}
	if (!sqlite3_get_autocommit(c->db))
		store_exec_stmt(c, SQL_ROLLBACK);
	store_job_unlink(&batch, job);
	writer_requeue(s, batch);
	store_audit_giveback(s, audit);
	job_finish(job);
}

/* The audit records first in the transaction, under a savepoint: when they cannot be
 * written the jobs still run, and the records wait for the next transaction. 0, or the
 * error of a transaction SQLite rolled back (the caller begins again). */
static int writer_audit(struct sqlite_store *s, struct store_audit_batch *audit)
{
	struct store_conn *c = &s->wconn;
	if (audit->n == 0)
		return 0;
	int rc = store_exec_stmt(c, SQL_SAVEPOINT);
	if (rc == 0)
		rc = store_audit_write(c, s, audit);
	if (rc == 0)
		return store_exec_stmt(c, SQL_RELEASE);
	int ec = sqlite3_extended_errcode(c->db);
	log_event(LOGL_ERROR, "event=audit_write_failed records=%zu error=\"%s\"", audit->n,
	          sqlite3_errmsg(c->db));
	if ((ec & 0xff) == SQLITE_FULL)
		store_disk_full(s);
	bool poisoned = store_poison(s, ec, "audit");
	if (sqlite3_get_autocommit(c->db)) {
		store_audit_giveback(s, audit);
		return poisoned ? -EIO : store_exec_stmt(c, SQL_BEGIN);
	}
	store_exec_stmt(c, SQL_ROLLBACK_TO);
	store_exec_stmt(c, SQL_RELEASE);
	store_audit_giveback(s, audit);
	return poisoned ? -EIO : 0;
}

/* Runs the deferred steps of the jobs from first up to (not including) stop. 0, or the
 * error of the job whose step failed (*failed_r): the caller rolls everything back. */
static int writer_run_deferred(struct store_conn *c, struct store_job *first,
                               struct store_job *stop, struct store_job **failed_r)
{
	for (struct store_job *job = first; job != stop; job = job->next) {
		if (job->rc < 0 || job->run_deferred == NULL)
			continue;
		int rc = job->run_deferred(c, job);
		if (rc < 0) {
			job->rc = rc;
			*failed_r = job;
			return rc;
		}
	}
	return 0;
}

static void writer_run_batch(struct sqlite_store *s, struct store_job *batch,
                             struct store_audit_batch *audit)
{
	struct store_conn *c = &s->wconn;
	pthread_mutex_lock(&s->lock);
	bool poisoned = s->poisoned;
	pthread_mutex_unlock(&s->lock);
	if (poisoned) { /* queued before the failure: never run */
		while (batch != NULL) {
			struct store_job *j = batch;
			batch = batch->next;
			j->rc = -EIO;
			job_finish(j);
		}
		store_audit_giveback(s, audit);
		return;
	}
	int rc = store_exec_stmt(c, SQL_BEGIN);
	if (rc == 0)
		rc = writer_audit(s, audit);
	struct store_job *job, *failed = NULL;
	struct store_job *deferred = NULL; /* first job whose deferred step has not run */

	bool full = store_disk_refuses(s);
	if (rc == 0) {
		for (job = batch; job != NULL; job = job->next) {
			if (full && job->adds_mail) {
				job->rc = -ENOSPC; /* nothing written: no savepoint needed */
				continue;
			}
			/* A job without a deferred step may delete what the pending steps
			 * refer to (content rows): they run first. */
			if (deferred != NULL && job->run_deferred == NULL) {
				if (writer_run_deferred(c, deferred, job, &failed) < 0) {
					writer_fail_one(s, batch, failed, audit);
					return;
				}
				deferred = NULL;
			}
			sqlite3_int64 changes = sqlite3_total_changes64(c->db);
			if (!job->no_savepoint) {
				rc = store_exec_stmt(c, SQL_SAVEPOINT);
				if (rc < 0)
					break;
			}
			job->rc = job->run(c, job);
			/* Some errors (SQLITE_FULL, IOERR) roll the whole transaction back; a
			 * job without a savepoint that failed after writing needs the same:
			 * fail this job, run the others again. */
			if (job->rc < 0 &&
			    (sqlite3_get_autocommit(c->db) ||
			     (job->no_savepoint && sqlite3_total_changes64(c->db) != changes))) {
				writer_fail_one(s, batch, job, audit);
				return;
			}
			if (!job->no_savepoint) {
				if (job->rc < 0) {
					rc = store_exec_stmt(c, SQL_ROLLBACK_TO);
					if (rc < 0)
						break;
				}
				rc = store_exec_stmt(c, SQL_RELEASE);
				if (rc < 0)
					break;
			}
			if (job->rc == 0 && job->run_deferred != NULL && deferred == NULL)
				deferred = job;
		}
		if (rc == 0 && deferred != NULL &&
		    writer_run_deferred(c, deferred, NULL, &failed) < 0) {
			writer_fail_one(s, batch, failed, audit);
			return;
		}
		struct timespec wall0, wall1, cpu0, cpu1;
		clock_gettime(CLOCK_MONOTONIC, &wall0);
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
		if (rc == 0)
			rc = store_exec_stmt(c, SQL_COMMIT);
		clock_gettime(CLOCK_MONOTONIC, &wall1);
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
		int64_t cpu = ns_between(&cpu0, &cpu1);
		s->gather_ns = ns_between(&wall0, &wall1) - cpu - cpu;
		if (rc == 0) {
			size_t n = 0;
			for (job = batch; job != NULL; job = job->next)
				n++;
			pthread_mutex_lock(&s->lock);
			s->stat_commits++;
			s->stat_writes += n;
			pthread_mutex_unlock(&s->lock);
			metrics_add(METRIC_STORE_COMMITS, 1, NULL);
			metrics_add(METRIC_STORE_COMMITTED_JOBS, n, NULL);
			metrics_observe(METRIC_STORE_COMMIT_SECONDS,
			                (double)ns_between(&wall0, &wall1) / 1e9);
		}
		if (rc < 0) {
			if ((sqlite3_extended_errcode(c->db) & 0xff) == SQLITE_FULL)
				store_disk_full(s);
			if (store_poison(s, sqlite3_extended_errcode(c->db), "commit"))
				rc = -EIO;
			if (!sqlite3_get_autocommit(c->db))
				store_exec_stmt(c, SQL_ROLLBACK);
		}
	}
	if (rc == 0)
		store_audit_batch_free(audit); /* committed */
	else
		store_audit_giveback(s, audit);
	/* Completions only after COMMIT returned: a 250 means durable. */
	while (batch != NULL) {
		job = batch;
		batch = batch->next;
		if (rc < 0)
			job->rc = rc;
		job_finish(job);
	}
}

/*
 * Before a group starts, the writes a worker is still preparing (hash, MIME: tens of
 * microseconds each) are worth waiting for when commits are bound by the disk: each that
 * misses this transaction waits for the whole next one, flush included. The wait lasts
 * until none is left in preparation, or at most gather_ns: by how much the last COMMIT's
 * wait on the disk (its wall time less the writer's CPU time) exceeded that CPU time. Where
 * the writer's own work dominates (a disk with a write-back cache), waiting would idle the
 * bottleneck, and it does not wait. A lone write never waits: nothing else is being
 * prepared. Called and returns with the lock held.
 */
static void writer_gather(struct sqlite_store *s)
{
	int64_t wait = s->gather_ns < STORE_GATHER_MAX_NS ? s->gather_ns : STORE_GATHER_MAX_NS;
	if (s->preparing == 0 || wait <= 0)
		return;
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += wait;
	until.tv_sec += until.tv_nsec / 1000000000;
	until.tv_nsec %= 1000000000;
	while (s->preparing > 0 && !s->stopping)
		if (pthread_cond_timedwait(&s->writer_cv, &s->lock, &until) != 0)
			break;
}

static int64_t writer_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Waits on writer_cv (lock held) until woken or the monotonic time deadline_ns. */
static void writer_wait_until(struct sqlite_store *s, int64_t deadline_ns)
{
	struct timespec until = {.tv_sec = deadline_ns / 1000000000,
	                         .tv_nsec = deadline_ns % 1000000000};
	pthread_cond_timedwait(&s->writer_cv, &s->lock, &until);
}

static void *writer_main(void *arg)
{
	struct sqlite_store *s = arg;
	for (;;) {
		pthread_mutex_lock(&s->lock);
		/* Audit records alone wait for their deadline (or a crowd of them): they ride
		 * on the next group commit when one comes before. */
		int64_t due_ns = 0;
		bool due = false, waiting = false;
		while (s->writes.head == NULL) {
			waiting = store_audit_waiting(s, writer_now_ns(), &due_ns, &due);
			if (due || (s->stopping && s->writer_exit_ok && !waiting))
				break;
			if (waiting)
				writer_wait_until(s, due_ns);
			else
				pthread_cond_wait(&s->writer_cv, &s->lock);
		}
		if (s->writes.head == NULL && !waiting) {
			pthread_mutex_unlock(&s->lock);
			break;
		}
		struct store_audit_batch audit = {0};
		if (s->writes.head == NULL) {
			store_audit_take(s, &audit);
			pthread_mutex_unlock(&s->lock);
			writer_run_batch(s, NULL, &audit);
			continue;
		}
		if (!s->opt.no_group_commit)
			writer_gather(s);
		struct store_job *batch;
		if (s->opt.no_group_commit) {
			batch = queue_pop(&s->writes);
		} else {
			/* Everything pending goes into this transaction (bounded). */
			batch = s->writes.head;
			struct store_job *last = batch;
			size_t n = 1;
			while (last->next != NULL && n < STORE_MAX_BATCH) {
				last = last->next;
				n++;
			}
			s->writes.head = last->next;
			if (s->writes.head == NULL)
				s->writes.tail = NULL;
			s->writes.len -= n;
			last->next = NULL;
		}
		store_audit_take(s, &audit);
		pthread_mutex_unlock(&s->lock);
		writer_run_batch(s, batch, &audit);
	}
	return NULL;
}

/* ---- Workers ---- */

static void *worker_main(void *arg)
{
	struct store_worker_slot *slot = arg;
	struct store_conn *c = &slot->conn;
	struct sqlite_store *s = slot->store;
	for (;;) {
		pthread_mutex_lock(&s->lock);
		while (s->reads.head == NULL && !s->stopping)
			pthread_cond_wait(&s->worker_cv, &s->lock);
		struct store_job *job = queue_pop(&s->reads);
		pthread_mutex_unlock(&s->lock);
		if (job == NULL)
			break;
		if (job->kind == STORE_JOB_READ) {
			job->rc = job->run(c, job);
			job_finish(job);
			continue;
		}
		int rc = job->prepare(job);
		job->rc = rc;
		pthread_mutex_lock(&s->lock);
		s->preparing--; /* the writer may be waiting for it (writer_gather) */
		if (rc == 0)
			queue_push(&s->writes, job); /* the writer's from here on */
		pthread_cond_signal(&s->writer_cv);
		pthread_mutex_unlock(&s->lock);
		if (rc < 0)
			job_finish(job);
	}
	return NULL;
}

/* ---- Checkpoints ---- */

/*
 * Copying the WAL into the database file (pread, pwrite and two fsyncs per checkpoint) was
 * a sixth of the writer's time, and every delivery waits on the writer. It runs on its own
 * thread and connection instead, once STORE_CKPT_PAGES new frames are in the WAL. The WAL
 * starts over only when a write transaction begins with every frame copied, which a
 * checkpoint running beside a busy writer seldom leaves; past STORE_CKPT_MAX_PAGES frames
 * the writer copies what is left itself, so the next transaction restarts the WAL and the
 * file stays bounded. Runs on the writer after each commit.
 */
static int writer_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct sqlite_store *s = arg;
	pthread_mutex_lock(&s->lock);
	if (s->poisoned) {
		pthread_mutex_unlock(&s->lock);
		return SQLITE_OK;
	}
	if (frames >= STORE_CKPT_MAX_PAGES) {
		/* SQLite runs one checkpoint at a time and a second one just returns BUSY: wait
		 * for the checkpointer's, then copy the rest while no frame can be added. */
		while (s->ckpt_running)
			pthread_cond_wait(&s->ckpt_cv, &s->lock);
		s->ckpt_running = true;
		pthread_mutex_unlock(&s->lock);
		int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY &&
		    !store_poison(s, sqlite3_extended_errcode(db), "checkpoint"))
			store_err(db, rc);
		pthread_mutex_lock(&s->lock);
		s->ckpt_running = false;
		s->ckpt_done = 0;
		pthread_cond_broadcast(&s->ckpt_cv);
		pthread_mutex_unlock(&s->lock);
		return SQLITE_OK;
	}
	if (frames < s->ckpt_done)
		s->ckpt_done = 0; /* the WAL started over */
	if (frames - s->ckpt_done >= STORE_CKPT_PAGES && !s->ckpt_wanted) {
		s->ckpt_wanted = true;
		pthread_cond_broadcast(&s->ckpt_cv);
	}
	pthread_mutex_unlock(&s->lock);
	return SQLITE_OK;
}

static void *checkpointer_main(void *arg)
{
	struct sqlite_store *s = arg;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		while ((!s->ckpt_wanted || s->ckpt_running) && !s->ckpt_stop)
			pthread_cond_wait(&s->ckpt_cv, &s->lock);
		if (s->ckpt_stop)
			break;
		s->ckpt_wanted = false;
		if (s->poisoned)
			continue; /* nothing is written after a failure */
		s->ckpt_running = true;
		pthread_mutex_unlock(&s->lock);
		int frames = 0, copied = 0;
		/* PASSIVE: copies what no reader still needs, never waits for the writer. */
		int rc = sqlite3_wal_checkpoint_v2(s->cconn.db, NULL, SQLITE_CHECKPOINT_PASSIVE,
		                                   &frames, &copied);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY &&
		    !store_poison(s, sqlite3_extended_errcode(s->cconn.db), "checkpoint"))
			store_err(s->cconn.db, rc);
		pthread_mutex_lock(&s->lock);
		s->ckpt_running = false;
		if (rc == SQLITE_OK)
			s->ckpt_done = copied;
		pthread_cond_broadcast(&s->ckpt_cv); /* a writer may wait to checkpoint */
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- Open and close ---- */

/* The database holds mail, password hashes and certificate records: owner only. */
#define STORE_FILE_MODE 0600

/*
 * Makes path private: created 0600 when missing (before SQLite sees it, whatever the
 * umask), tightened to 0600 when it exists with group or other bits (a store from before
 * this rule, or a file copied in), with a log line saying so. A missing file is fine
 * unless create. 0, or -errno after setting *error_r.
 */
static int store_file_private(const char *path, bool create, const char **error_r)
{
	static _Thread_local char buf[512];
	int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (create ? O_CREAT : 0);
	int fd = open(path, flags, STORE_FILE_MODE);
	if (fd < 0) {
		if (errno == ENOENT && !create)
			return 0;
		snprintf(buf, sizeof(buf), "cannot open %s: %s: check the path and its permissions",
		         path, strerror(errno));
		*error_r = buf;
		return -errno;
	}
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
	} else if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		errno = EINVAL;
	} else if ((st.st_mode & 077) != 0) {
		/* fchmod on the open file: no window where a swapped path gets the chmod. */
		if (fchmod(fd, STORE_FILE_MODE) < 0) {
			rc = -errno;
		} else {
			log_event(
			    LOGL_WARN,
			    "event=store_file_mode_fixed path=\"%s\" old_mode=%04o new_mode=%04o",
			    path, (unsigned)(st.st_mode & 07777), (unsigned)STORE_FILE_MODE);
		}
	}
	if (rc < 0) {
		snprintf(buf, sizeof(buf),
		         "cannot make %s private (mode 0600): %s: check its owner and type", path,
		         strerror(-rc));
		*error_r = buf;
	}
	close(fd);
	return rc;
}

/*
 * SQLite creates -wal and -shm with the mode of the main file, so a main file that is
 * 0600 from its first byte keeps all three private; existing ones are tightened.
 */
static int store_files_private(const char *path, const char **error_r)
{
	static const char *const suffixes[] = {"-wal", "-shm"};
	int rc = store_file_private(path, true, error_r);
	for (size_t i = 0; rc == 0 && i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char *p = xasprintf("%s%s", path, suffixes[i]);
		rc = store_file_private(p, false, error_r);
		free(p);
	}
	return rc;
}

int sqlite_store_open(const struct store_options *opt, void **impl_r, const char **error_r)
{
	struct sqlite_store *s;
	const char *err = NULL;
	int rc;

	*impl_r = NULL;
	store_error_buf[0] = '\0';
	if (opt->path == NULL) {
		*error_r = "no database path given";
		return -EINVAL;
	}
	s = xcalloc(1, sizeof(*s));
	s->opt = *opt;
	s->path = xstrdup(opt->path);
	s->opt.path = s->path;
	if (s->opt.workers == 0)
		s->opt.workers = 4;
	if (s->opt.busy_ms == 0)
		s->opt.busy_ms = 5000;
	if (s->opt.max_message_size == 0)
		s->opt.max_message_size = 50 * 1024 * 1024;
	if (opt->poster != NULL) {
		s->poster = *opt->poster;
		s->has_poster = true;
	}
	s->opt.poster = NULL;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->audit_lock, NULL);
	pthread_condattr_t monotonic;
	pthread_condattr_init(&monotonic);
	pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
	pthread_cond_init(&s->writer_cv, &monotonic);
	pthread_condattr_destroy(&monotonic);
	pthread_cond_init(&s->worker_cv, NULL);
	pthread_cond_init(&s->ckpt_cv, NULL);

	s->opt.kek = NULL; /* borrowed for this call only */
	rc = store_crypt_open(s->path, opt->kek, &s->vfs, &err);
	if (rc < 0) {
		/* Nothing was touched: no reserve file, no mode fixes. */
		*error_r = err;
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->writer_cv);
		pthread_cond_destroy(&s->worker_cv);
		pthread_cond_destroy(&s->ckpt_cv);
		free(s->path);
		free(s);
		return rc;
	}
	s->vfs_name = s->vfs != NULL ? store_vfs_name(s->vfs) : NULL;
	rc = store_files_private(s->path, &err);
	if (rc == 0) {
		store_disk_open(s);
		rc = store_conn_open(&s->wconn, s->path, s->vfs_name, s->opt.busy_ms, true, &err);
	}
	if (rc == 0) {
		sqlite3_wal_hook(s->wconn.db, writer_wal_hook, s);
		rc = store_schema_migrate(s->wconn.db, &err);
	}
	if (rc < 0)
		goto fail;

	struct store_worker_slot *slots = xcalloc(s->opt.workers, sizeof(*slots));
	s->slots = slots;
	s->workers = xcalloc(s->opt.workers, sizeof(*s->workers));
	for (unsigned i = 0; i < s->opt.workers; i++) {
		slots[i].store = s;
		rc = store_conn_open(&slots[i].conn, s->path, s->vfs_name, s->opt.busy_ms, false,
		                     &err);
		if (rc < 0)
			goto fail_workers;
		s->n_workers++;
	}
	rc = store_conn_open(&s->cconn, s->path, s->vfs_name, s->opt.busy_ms, false, &err);
	if (rc < 0)
		goto fail_workers;
	for (unsigned i = 0; i < s->n_workers; i++)
		pthread_create(&s->workers[i], NULL, worker_main, &slots[i]);
	pthread_create(&s->writer, NULL, writer_main, s);
	pthread_create(&s->checkpointer, NULL, checkpointer_main, s);
	*impl_r = s;
	return 0;

fail_workers:
	for (unsigned i = 0; i < s->n_workers; i++)
		store_conn_close(&slots[i].conn);
fail:
	store_conn_close(&s->wconn);
	*error_r = err != NULL ? err : "cannot open the database";
	free(s->slots);
	free(s->workers);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->audit_lock);
	pthread_cond_destroy(&s->writer_cv);
	pthread_cond_destroy(&s->worker_cv);
	pthread_cond_destroy(&s->ckpt_cv);
	store_disk_close(s);
	store_vfs_unregister(s->vfs);
	free(s->path);
	free(s);
	return rc;
}

void sqlite_store_close(void *impl)
{
	struct sqlite_store *s = impl;
	if (s == NULL)
		return;
	struct store_worker_slot *slots = s->slots;
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->worker_cv);
	pthread_mutex_unlock(&s->lock);
	/* Workers drain the read queue (and hand prepared writes on) before the writer may
	 * stop, so no queued job is dropped. */
	for (unsigned i = 0; i < s->n_workers; i++)
		pthread_join(s->workers[i], NULL);
	pthread_mutex_lock(&s->lock);
	s->writer_exit_ok = true;
	pthread_cond_signal(&s->writer_cv);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->writer, NULL);
	pthread_mutex_lock(&s->lock);
	s->ckpt_stop = true;
	pthread_cond_broadcast(&s->ckpt_cv);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->checkpointer, NULL);

	/* A clean close checkpoints the WAL into the main file: the writer's is the last.
	 * After a failed write it must not: the WAL may hold the frames of a transaction whose
	 * COMMIT failed, which nobody was told is stored; the next open decides from what is
	 * really on disk. */
	if (s->poisoned) {
		struct store_conn *all[] = {&s->cconn, &s->wconn};
		for (size_t i = 0; i < 2; i++)
			if (all[i]->db != NULL)
				sqlite3_db_config(all[i]->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1,
				                  NULL);
		for (unsigned i = 0; i < s->n_workers; i++)
			if (slots[i].conn.db != NULL)
				sqlite3_db_config(slots[i].conn.db,
				                  SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	}
	for (unsigned i = 0; i < s->n_workers; i++)
		store_conn_close(&slots[i].conn);
	store_conn_close(&s->cconn);
	store_conn_close(&s->wconn);
	if (s->audit_n > 0)
		log_event(LOGL_ERROR, "event=audit_lost records=%zu reason=store_closed",
		          s->audit_n);
	struct store_audit_batch left = {.v = s->audit_v, .n = s->audit_n};
	store_audit_batch_free(&left);
	free(s->slots);
	free(s->workers);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->audit_lock);
	pthread_cond_destroy(&s->writer_cv);
	pthread_cond_destroy(&s->worker_cv);
	pthread_cond_destroy(&s->ckpt_cv);
	store_disk_close(s);
	store_vfs_unregister(s->vfs);
	free(s->path);
	free(s);
}

void sqlite_store_stats(void *impl, uint64_t *commits_r, uint64_t *writes_r)
{
	struct sqlite_store *s = impl;
	pthread_mutex_lock(&s->lock);
	*commits_r = s->stat_commits;
	*writes_r = s->stat_writes;
	pthread_mutex_unlock(&s->lock);
}

/* A read like any other, on a worker's own connection: it answers only when a worker is
 * free and the database file can be read. A poisoned store still reads, but it no longer
 * takes mail, so it is not healthy. */
static int ping_run(struct store_conn *c, struct store_job *job)
{
	struct sqlite_store *s = job->store;
	bool poisoned;
	pthread_mutex_lock(&s->lock);
	poisoned = s->poisoned;
	pthread_mutex_unlock(&s->lock);
	if (poisoned)
		return -EIO;
	return sqlite3_exec(c->db, "SELECT 1", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

int sqlite_store_ping(void *impl, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	struct store_job *job = store_job_new(sizeof(*job), s, STORE_JOB_READ, ping_run, cb, ctx);
	return store_job_submit(job);
}
