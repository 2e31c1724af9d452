/*
 * Store benchmark: durable deliveries per second of 4 KiB messages with 1, 8 and 64
 * concurrent producers, group commit on and off, beside the raw fdatasync rate of the same
 * disk measured in the same run (the physical limit of one-commit-per-message).
 *
 *   ./build/bench/store_bench [options] [DIR] [SECONDS]   (DIR on the disk to measure)
 *
 *   --flush-us N        add N microseconds to every fsync, SQLite's (through a bench-only VFS
 *                       shim, bench_flush_vfs.c) and the raw probe's alike: a disk whose
 *                       flush costs N µs more than this one's
 *   --producers LIST    comma-separated producer counts (default 1,8,64)
 *   --group-commit X    on, off or both (default both)
 *   --count N           end each cell after N deliveries instead of after SECONDS (for
 *                       callgrind: instructions per delivery = difference of two counts)
 *   --no-probe          skip the raw fdatasync probe (profiling runs)
 *   --encrypt X         off (default), on (the store encrypted at rest, docs/encryption.md)
 *                       or both (every cell plain, then encrypted, in the same run)
 *
 * The "x fdatasync rate" column divides by the higher of the two probes (before and after).
 * "deliveries per fsync" counts every xSync SQLite issued (WAL commits and checkpoints).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_flush_vfs.h"
#include "storage/store.h"

#define MSG_SIZE 4096

static unsigned flush_us;
/* A fixed key-encryption key: the bench measures the sealing, not the key handling. */
static const uint8_t bench_kek[32] = {
    0x62, 0x65, 0x6e, 0x63, 0x68, 0x2d, 0x6b, 0x65, 0x6b, 0x2d, 0x6f, 0x6e, 0x6c, 0x79, 0x2d, 0x21,
    0x62, 0x65, 0x6e, 0x63, 0x68, 0x2d, 0x6b, 0x65, 0x6b, 0x2d, 0x6f, 0x6e, 0x6c, 0x79, 0x2d, 0x21};
static bool counting;      /* --count given: a cell ends after that many deliveries */
static atomic_long budget; /* deliveries left to start in this cell (--count) */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* One 4 KiB pwrite + fdatasync (+ the --flush-us sleep) at a time, for seconds. */
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
		bench_flush_sleep(flush_us);
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

static bool producer_more(struct producer *p)
{
	if (counting)
		return atomic_fetch_sub(&budget, 1) > 0;
	return now_s() < p->end;
}

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	char *msg = malloc(MSG_SIZE);
	int hdr = snprintf(msg, MSG_SIZE,
	                   "From: bench@corp.example\r\nTo: u@corp.example\r\n"
	                   "Subject: bench\r\n\r\n");
	for (int i = hdr; i < MSG_SIZE; i++)
		msg[i] = (i % 72 == 70) ? '\r' : (i % 72 == 71) ? '\n' : (char)('a' + i % 26);
	while (producer_more(p)) {
		/* Unique bytes: every delivery stores new content, as real mail does. */
		snprintf(msg + hdr, 40, "%d-%zu ", p->id, p->done + p->failed);
		struct store_target t = {.user_id = p->user};
		struct store_deliver_req req = {
		    .data = msg, .size = MSG_SIZE, .targets = &t, .n_targets = 1};
		struct store_sync w;
		store_sync_init(&w);
		if (store_sync_wait(&w, store_deliver(p->s, &req, store_sync_delivery, &w)) == 0)
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

struct cell {
	double rate;       /* durable deliveries per second */
	double per_commit; /* deliveries per committed transaction (store_stats) */
	double per_sync;   /* deliveries per xSync of any SQLite file (WAL and checkpoints) */
	double cpu_us;     /* process CPU time (all threads) per delivery, µs */
	size_t done;
};

static void cell_run(const char *dir, int producers, bool group_commit, bool encrypt,
                     double seconds, long count, struct cell *out)
{
	char path[4096], key_hdr[4200];
	snprintf(path, sizeof(path), "%s/bench-%d-%d.db", dir, producers, group_commit);
	snprintf(key_hdr, sizeof(key_hdr), "%s/store.key", dir);
	unlink(path);
	unlink(key_hdr);
	struct store_options opt = {
	    .path = path, .no_group_commit = !group_commit, .kek = encrypt ? bench_kek : NULL};
	struct store *s;
	const char *err;
	if (store_open(&opt, &s, &err) < 0) {
		fprintf(stderr, "store_bench: %s\n", err);
		exit(1);
	}
	struct store_sync w;
	store_sync_init(&w);
	if (store_sync_wait(&w, store_user_add(s, "u@corp.example", "pw", store_sync_users, &w)) <
	    0) {
		fprintf(stderr, "store_bench: user add failed\n");
		exit(1);
	}
	int64_t user = w.users.v[0].id;
	store_sync_done(&w);
	uint64_t commits0, writes0, commits1, writes1;
	store_stats(s, &commits0, &writes0);
	uint64_t syncs0 = bench_flush_vfs_syncs();
	counting = count >= 0;
	atomic_store(&budget, count);

	struct producer *p = calloc((size_t)producers, sizeof(*p));
	pthread_t *t = calloc((size_t)producers, sizeof(*t));
	double start = now_s(), cpu0 = cpu_s();
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
	double elapsed = now_s() - start, cpu = cpu_s() - cpu0;
	store_stats(s, &commits1, &writes1);
	uint64_t syncs = bench_flush_vfs_syncs() - syncs0;
	out->done = done;
	out->rate = (double)done / elapsed;
	out->per_commit =
	    commits1 > commits0 ? (double)(writes1 - writes0) / (double)(commits1 - commits0) : 0;
	out->per_sync = syncs > 0 ? (double)done / (double)syncs : 0;
	out->cpu_us = done > 0 ? cpu * 1e6 / (double)done : 0;
	store_close(s);
	free(p);
	free(t);
	char tmp[4200];
	unlink(path);
	snprintf(tmp, sizeof(tmp), "%s-wal", path);
	unlink(tmp);
	snprintf(tmp, sizeof(tmp), "%s-shm", path);
	unlink(tmp);
	unlink(key_hdr);
	if (failed > 0)
		fprintf(stderr, "store_bench: %zu deliveries failed\n", failed);
}

static void usage(void)
{
	fprintf(stderr, "usage: store_bench [--flush-us N] [--producers 1,8,64] "
	                "[--group-commit on|off|both] [--count N] [--no-probe] "
	                "[--encrypt off|on|both] [DIR] [SECONDS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *dir = ".";
	double seconds = 3.0;
	int producers[16] = {1, 8, 64};
	size_t n_producers = 3;
	int gc_from = 1, gc_to = 0; /* group commit on, then off */
	long count = -1;
	bool probe = true;
	int enc_from = 0, enc_to = 0; /* plain only */
	int positional = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--flush-us") == 0 && v != NULL) {
			flush_us = (unsigned)strtoul(v, NULL, 10);
			i++;
		} else if (strcmp(a, "--producers") == 0 && v != NULL) {
			n_producers = 0;
			for (char *end, *q = (char *)v; *q != '\0' && n_producers < 16; q = end) {
				producers[n_producers] = (int)strtol(q, &end, 10);
				if (end == q || producers[n_producers] <= 0)
					usage();
				n_producers++;
				if (*end == ',')
					end++;
			}
			i++;
		} else if (strcmp(a, "--group-commit") == 0 && v != NULL) {
			gc_from = strcmp(v, "off") == 0 ? 0 : 1;
			gc_to = strcmp(v, "on") == 0 ? 1 : 0;
			i++;
		} else if (strcmp(a, "--count") == 0 && v != NULL) {
			count = strtol(v, NULL, 10);
			i++;
		} else if (strcmp(a, "--encrypt") == 0 && v != NULL) {
			enc_from = strcmp(v, "on") == 0 ? 1 : 0;
			enc_to = strcmp(v, "off") == 0 ? 0 : 1;
			i++;
		} else if (strcmp(a, "--no-probe") == 0) {
			probe = false;
		} else if (a[0] == '-') {
			usage();
		} else if (positional == 0) {
			dir = a;
			positional++;
		} else if (positional == 1) {
			seconds = strtod(a, NULL);
			positional++;
		} else {
			usage();
		}
	}
	/* Sleeps of a few hundred µs should not be stretched by the default 50 µs timer slack;
	 * every thread (the store's too) inherits this. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	if (bench_flush_vfs_register(flush_us) < 0) {
		fprintf(stderr, "store_bench: cannot register the flush VFS\n");
		return 1;
	}

	/* The disk's limit is measured before and after the cells; the ratio column uses the
	 * higher of the two (on a shared machine a probe only ever reads low), so it errs on
	 * the side of a smaller ratio. Cells go to stderr as they finish, the table at the end. */
	double fsync_before = probe ? fdatasync_rate(dir, seconds) : 0;
	struct cell cells[2][2][16];
	for (int gc = gc_from; gc >= gc_to; gc--) {
		for (size_t i = 0; i < n_producers; i++) {
			/* Plain and encrypted cells back to back, so the machine's load hits both.
			 */
			for (int enc = enc_from; enc <= enc_to; enc++) {
				struct cell *c = &cells[enc][gc][i];
				cell_run(dir, producers[i], gc != 0, enc != 0, seconds, count, c);
				fprintf(stderr,
				        "store_bench: %d producers, group commit %s%s: %.0f/s\n",
				        producers[i], gc ? "on" : "off", enc ? ", encrypted" : "",
				        c->rate);
			}
		}
	}
	double fsync_after = probe ? fdatasync_rate(dir, seconds) : 0;
	double fsync_rate = fsync_before > fsync_after ? fsync_before : fsync_after;
	if (probe)
		printf("raw fdatasync of a 4 KiB write in %s (+%u us per flush): %.0f/s before, "
		       "%.0f/s after the cells\n\n",
		       dir, flush_us, fsync_before, fsync_after);
	printf("| flush +us | producers | group commit | encrypted | deliveries/s | x fdatasync "
	       "rate | "
	       "deliveries per commit | deliveries per fsync | CPU us per delivery |\n");
	printf("|---:|---:|:---:|:---:|---:|---:|---:|---:|---:|\n");
	for (int gc = gc_from; gc >= gc_to; gc--) {
		for (size_t i = 0; i < n_producers; i++) {
			for (int enc = enc_from; enc <= enc_to; enc++) {
				const struct cell *c = &cells[enc][gc][i];
				printf("| %u | %d | %s | %s | %.0f | %.1f | %.1f | %.1f | %.0f |\n",
				       flush_us, producers[i], gc ? "on" : "off",
				       enc ? "yes" : "no", c->rate,
				       fsync_rate > 0 ? c->rate / fsync_rate : 0, c->per_commit,
				       c->per_sync, c->cpu_us);
			}
		}
	}
	return 0;
}
