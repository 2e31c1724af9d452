/*
 * Crash test: a child delivers messages from several threads and prints each UID after its
 * completion callback; the parent SIGKILLs it at a random moment, 20 times. After every
 * kill, every printed UID must be in the mailbox and PRAGMA integrity_check must say ok.
 * A plain program (not criterion: it forks and kills on its own), run by meson test.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "storage/store.h"

#define ROUNDS    20
#define PRODUCERS 8

static char db_path[128];
static int64_t inbox_id;

static void die(const char *what)
{
	fprintf(stderr, "test_store_crash: %s\n", what);
	exit(1);
}

static void *producer(void *arg)
{
	struct store *s = arg;
	char msg[160];
	for (unsigned i = 0;; i++) {
		snprintf(msg, sizeof(msg), "Subject: %lu.%u\r\n\r\nbody %u\r\n",
		         (unsigned long)pthread_self(), i, i);
		struct store_target t = {.mailbox_id = inbox_id};
		struct store_deliver_req req = {
		    .data = msg, .size = strlen(msg), .targets = &t, .n_targets = 1};
		struct store_sync w;
		store_sync_init(&w);
		int rc = store_sync_wait(&w, store_deliver(s, &req, store_sync_delivery, &w));
		if (rc == 0) {
			char line[32];
			int n = snprintf(line, sizeof(line), "%u\n", w.delivery.v[0].uid);
			/* Short writes to a pipe are atomic: no torn lines. */
			if (write(1, line, (size_t)n) != n)
				_exit(3);
		}
		store_sync_done(&w);
	}
	return NULL;
}

static void child_main(void)
{
	struct store *s;
	const char *err;
	struct store_options opt = {.path = db_path};
	if (store_open(&opt, &s, &err) < 0) {
		fprintf(stderr, "child: %s\n", err);
		_exit(2);
	}
	pthread_t t[PRODUCERS];
	for (int i = 0; i < PRODUCERS; i++)
		pthread_create(&t[i], NULL, producer, s);
	for (;;)
		pause();
}

static int check(sqlite3 *db, const uint32_t *uids, size_t n)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK)
		die("prepare integrity_check");
	int ok = sqlite3_step(st) == SQLITE_ROW &&
	         strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
	sqlite3_finalize(st);
	if (!ok) {
		fprintf(stderr, "integrity_check failed\n");
		return -1;
	}
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM entries WHERE mailbox_id = ? AND uid = ?", -1,
	                       &st, NULL) != SQLITE_OK)
		die("prepare select");
	int missing = 0;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, inbox_id);
		sqlite3_bind_int64(st, 2, uids[i]);
		if (sqlite3_step(st) != SQLITE_ROW) {
			fprintf(stderr, "acknowledged uid %u is missing\n", uids[i]);
			missing++;
		}
	}
	sqlite3_finalize(st);
	return missing == 0 ? 0 : -1;
}

int main(void)
{
	char dir[] = "/tmp/sealmail-crash-XXXXXX";
	if (mkdtemp(dir) == NULL)
		die("mkdtemp");
	snprintf(db_path, sizeof(db_path), "%s/mail.db", dir);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());

	struct store *s;
	const char *err;
	struct store_options opt = {.path = db_path};
	struct store_sync w;
	if (store_open(&opt, &s, &err) < 0)
		die(err);
	store_sync_init(&w);
	if (store_sync_wait(
	        &w, store_user_add(s, "crash@corp.example", "pw", store_sync_users, &w)) < 0)
		die("user add");
	int64_t user = w.users.v[0].id;
	store_sync_done(&w);
	store_sync_init(&w);
	if (store_sync_wait(&w, store_mailbox_get(s, user, "INBOX", store_sync_mailboxes, &w)) < 0)
		die("mailbox get");
	inbox_id = w.mailboxes.v[0].id;
	store_sync_done(&w);
	store_close(s);

	uint32_t *acked = NULL;
	size_t n_acked = 0, cap = 0;
	int failures = 0;
	for (int round = 0; round < ROUNDS; round++) {
		int fds[2];
		if (pipe(fds) < 0)
			die("pipe");
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			close(fds[0]);
			dup2(fds[1], 1);
			close(fds[1]);
			child_main();
		}
		close(fds[1]);
		/* Kill at a random moment: sometimes before any commit, mostly mid-stream. */
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(rand() % 400 + 20) * 1000000L};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int status;
		waitpid(pid, &status, 0);
		char buf[4096], line[32];
		size_t ll = 0;
		ssize_t n;
		size_t before = n_acked;
		while ((n = read(fds[0], buf, sizeof(buf))) > 0) {
			for (ssize_t i = 0; i < n; i++) {
				if (buf[i] != '\n') {
					if (ll < sizeof(line) - 1)
						line[ll++] = buf[i];
					continue;
				}
				line[ll] = '\0';
				ll = 0;
				if (n_acked == cap) {
					cap = cap != 0 ? cap * 2 : 1024;
					acked = realloc(acked, cap * sizeof(*acked));
				}
				acked[n_acked++] = (uint32_t)strtoul(line, NULL, 10);
			}
		}
		close(fds[0]);

		/* Reopen through the store (recovery) and check with plain SQLite. */
		if (store_open(&opt, &s, &err) < 0) {
			fprintf(stderr, "round %d: reopen: %s\n", round, err);
			failures++;
			continue;
		}
		store_close(s);
		sqlite3 *db;
		if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
			die("open");
		if (check(db, acked, n_acked) < 0)
			failures++;
		sqlite3_close(db);
		printf("round %d: killed after %ld ms, %zu acknowledged (%zu total), ok=%d\n",
		       round, ts.tv_nsec / 1000000L, n_acked - before, n_acked, failures == 0);
	}
	free(acked);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	printf("%s: %d rounds, %d failures\n", failures == 0 ? "PASS" : "FAIL", ROUNDS, failures);
	return failures == 0 ? 0 : 1;
}
