/*
 * Store benchmark: durable deliveries per second of 4 KiB messages with 1, 8 and 64
 * concurrent producers, group commit on and off, beside the raw fdatasync rate of the same
 * disk measured in the same run (the physical limit of one-commit-per-message).
 *
 *   ./build/bench/store_bench [DIR] [SECONDS]    (DIR on the disk to measure; default .)
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/store.h"

#define MSG_SIZE 4096

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double fdatasync_rate(const char *dir, double seconds)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/fsync-probe", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return 0;
	char block[MSG_SIZE];
	memset(block, 'x', sizeof(block));
	size_t n = 0;
	double start = now_s(), end = start + seconds;
	while (now_s() < end) {
		if (pwrite(fd, block, sizeof(block), (off_t)(n % 256) * MSG_SIZE) < 0 ||
		    fdatasync(fd) < 0)
			break;
		n++;
	}
	double rate = (double)n / (now_s() - start);
	close(fd);
	unlink(path);
	return rate;
}

struct producer {
	struct store *s;
	int64_t user;
	int id;
	double end;
	size_t done;
	size_t failed;
};

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	char *msg = malloc(MSG_SIZE);
	int hdr = snprintf(msg, MSG_SIZE,
	                   "From: bench@corp.example\r\nTo: u@corp.example\r\n"
	                   "Subject: bench\r\n\r\n");
	for (int i = hdr; i < MSG_SIZE; i++)
		msg[i] = (i % 72 == 70) ? '\r' : (i % 72 == 71) ? '\n' : (char)('a' + i % 26);
	while (now_s() < p->end) {
		/* Unique bytes: every delivery stores new content, as real mail does. */
		snprintf(msg + hdr, 40, "%d-%zu ", p->id, p->done + p->failed);
		struct store_target t = {.user_id = p->user};
		struct store_deliver_req req = {
		    .data = msg, .size = MSG_SIZE, .targets = &t, .n_targets = 1};
		struct store_sync w;
		store_sync_init(&w);
		if (store_sync_wait(&w, store_deliver(p->s, &req, store_sync_cb, &w)) == 0)
			p->done++;
		else
			p->failed++;
		store_sync_done(&w);
		if (p->failed > 10)
			break;
	}
	free(msg);
	return NULL;
}

/* Deliveries per second; *per_commit_r: deliveries per committed transaction, i.e. per
 * WAL fsync (what group commit buys). */
static double run(const char *dir, int producers, bool group_commit, double seconds,
                  double *per_commit_r)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/bench-%d-%d.db", dir, producers, group_commit);
	unlink(path);
	struct store_options opt = {.path = path, .no_group_commit = !group_commit};
	struct store *s;
	const char *err;
	if (store_open(&opt, &s, &err) < 0) {
		fprintf(stderr, "store_bench: %s\n", err);
		exit(1);
	}
	struct store_sync w;
	store_sync_init(&w);
	if (store_sync_wait(&w, store_user_add(s, "u@corp.example", "pw", store_sync_cb, &w)) < 0) {
		fprintf(stderr, "store_bench: user add failed\n");
		exit(1);
	}
	int64_t user = w.res.users[0].id;
	store_sync_done(&w);
	uint64_t commits0, writes0, commits1, writes1;
	store_stats(s, &commits0, &writes0);

	struct producer *p = calloc((size_t)producers, sizeof(*p));
	pthread_t *t = calloc((size_t)producers, sizeof(*t));
	double start = now_s();
	for (int i = 0; i < producers; i++) {
		p[i] = (struct producer){.s = s, .user = user, .id = i, .end = start + seconds};
		pthread_create(&t[i], NULL, producer_main, &p[i]);
	}
	size_t done = 0, failed = 0;
	for (int i = 0; i < producers; i++) {
		pthread_join(t[i], NULL);
		done += p[i].done;
		failed += p[i].failed;
	}
	double rate = (double)done / (now_s() - start);
	store_stats(s, &commits1, &writes1);
	*per_commit_r =
	    commits1 > commits0 ? (double)(writes1 - writes0) / (double)(commits1 - commits0) : 0;
	store_close(s);
	free(p);
	free(t);
	char tmp[4200];
	unlink(path);
	snprintf(tmp, sizeof(tmp), "%s-wal", path);
	unlink(tmp);
	snprintf(tmp, sizeof(tmp), "%s-shm", path);
	unlink(tmp);
	if (failed > 0)
		fprintf(stderr, "store_bench: %zu deliveries failed\n", failed);
	return rate;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : ".";
	double seconds = argc > 2 ? strtod(argv[2], NULL) : 3.0;
	static const int producers[] = {1, 8, 64};

	double fsync_rate = fdatasync_rate(dir, seconds);
	printf("raw fdatasync of a 4 KiB write in %s: %.0f/s\n\n", dir, fsync_rate);
	printf("| producers | group commit | deliveries/s | x fdatasync rate | deliveries per "
	       "commit (per WAL fsync) |\n");
	printf("|---:|:---:|---:|---:|---:|\n");
	for (int gc = 1; gc >= 0; gc--) {
		for (size_t i = 0; i < sizeof(producers) / sizeof(producers[0]); i++) {
			double per_commit = 0;
			double rate = run(dir, producers[i], gc != 0, seconds, &per_commit);
			printf("| %d | %s | %.0f | %.1f | %.1f |\n", producers[i],
			       gc ? "on" : "off", rate, fsync_rate > 0 ? rate / fsync_rate : 0,
			       per_commit);
			fflush(stdout);
		}
	}
	double fsync_after = fdatasync_rate(dir, seconds);
	printf("\nraw fdatasync again after the runs: %.0f/s\n", fsync_after);
	return 0;
}
