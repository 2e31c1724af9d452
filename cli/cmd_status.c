/*
 * sealctl status: whether sealmaild runs on this configuration's store and what it serves
 * (asked for with SIGUSR2, answered in data_dir/status: listeners with their bound ports,
 * sessions per protocol, the loaded CRL's next update and the server certificate's
 * expiry), then the store's side: users and the relay queue.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_private.h"
#include "common/dirlock.h"
#include "common/xmalloc.h"

static int status_run(struct cli *cli, int argc, char **argv);

const struct cli_noun cli_noun_status = {
    .name = "status",
    .usage = "  sealctl -c FILE status\n",
    .run = status_run,
};

static void when(const char *what, time_t t, time_t now)
{
	char buf[32];
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M UTC", &tm);
	long long days = ((long long)t - now) / 86400;
	printf("  %-22s %s (%s%lld days%s)\n", what, buf, t < now ? "" : "in ",
	       days < 0 ? -days : days, t < now ? " ago: PASSED" : "");
}

/* Asks the daemon for data_dir/status and prints it; false when it did not answer. */
static bool daemon_status(struct cli *cli, long pid)
{
	char *path = xasprintf("%s/status", cli->cfg->data_dir);
	struct timespec asked;
	clock_gettime(CLOCK_REALTIME, &asked);
	bool fresh = false;
	if (kill((pid_t)pid, SIGUSR2) == 0) {
		for (int i = 0; i < 100 && !fresh; i++) {
			struct stat st;
			fresh = stat(path, &st) == 0 && (st.st_mtim.tv_sec > asked.tv_sec ||
			                                 (st.st_mtim.tv_sec == asked.tv_sec &&
			                                  st.st_mtim.tv_nsec >= asked.tv_nsec));
			if (!fresh)
				usleep(50 * 1000);
		}
	}
	FILE *f = fresh ? fopen(path, "re") : NULL;
	free(path);
	if (f == NULL)
		return false;
	time_t now = time(NULL);
	char line[1024];
	unsigned total = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		/* "key value..." lines: split at spaces. */
		char *w[8] = {0};
		size_t n = 0;
		line[strcspn(line, "\n")] = '\0';
		for (char *save = NULL, *t = strtok_r(line, " ", &save); t != NULL && n < 8;
		     t = strtok_r(NULL, " ", &save))
			w[n++] = t;
		if (n == 2 && strcmp(w[0], "started") == 0) {
			when("started", (time_t)strtoll(w[1], NULL, 10), now);
		} else if (n == 7 && strcmp(w[0], "listener") == 0) {
			printf("  listener %-10s %-8s %s:%s client_certificate=%s%s\n", w[1], w[2],
			       w[3], w[4], w[5],
			       strcmp(w[6], "open") == 0 ? "" : " (NOT LISTENING)");
		} else if (n == 3 && strcmp(w[0], "sessions") == 0) {
			printf("  sessions %-10s %s\n", w[1], w[2]);
			total += (unsigned)strtoul(w[2], NULL, 10);
		} else if (n == 2 && strcmp(w[0], "crl_next_update") == 0) {
			when("CRL next update", (time_t)strtoll(w[1], NULL, 10), now);
		} else if (n == 2 && strcmp(w[0], "certificate_not_after") == 0) {
			when("server certificate", (time_t)strtoll(w[1], NULL, 10), now);
		}
	}
	fclose(f);
	printf("  sessions total       %u\n", total);
	return true;
}

static struct store_queue_summary queue;

static void queue_got(void *ctx, int rc, const struct store_queue_summary *res)
{
	if (rc == 0)
		queue = *res;
	store_sync_done_cb(ctx, rc);
}

static int status_run(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	long pid = dirlock_holder(cli->cfg->data_dir, DIRLOCK_DAEMON);
	int rc = CLI_OK;
	if (pid <= 0) {
		printf("sealmaild: not running on %s\n", cli->cfg->data_dir);
	} else {
		printf("sealmaild: running, pid %ld, data_dir %s\n", pid, cli->cfg->data_dir);
		if (!daemon_status(cli, pid)) {
			cli_error(
			    "sealmaild (pid %ld) did not answer SIGUSR2 within 5 s: run as root "
			    "or as its user",
			    pid);
			rc = CLI_FAIL;
		}
	}
	struct store *s = cli_store(cli);
	if (s == NULL)
		return CLI_FAIL;
	struct store_sync w;
	store_sync_init(&w);
	int src = cli_wait(&w, store_user_list(s, store_sync_users, &w));
	if (src == 0)
		printf("store: %zu users\n", w.users.n);
	store_sync_done(&w);
	store_sync_init(&w);
	src = src == 0 ? cli_wait(&w, store_queue_summary(s, queue_got, &w)) : src;
	if (src == 0) {
		printf("relay queue: %llu messages, %llu recipients to go",
		       (unsigned long long)queue.messages, (unsigned long long)queue.recipients);
		if (queue.oldest != 0)
			printf(", oldest %lld s old", (long long)(time(NULL) - queue.oldest));
		printf("\n");
	}
	store_sync_done(&w);
	if (src < 0) {
		cli_error("reading the store failed: %s", store_strerror(src));
		return CLI_FAIL;
	}
	return rc;
}
