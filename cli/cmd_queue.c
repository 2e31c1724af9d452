/*
 * sealctl queue list | show ID | flush [ID] | delete ID: the relay queue, what is waiting,
 * for whom, since when, the last error and the next attempt. flush makes pending
 * recipients due now; the running server takes them on its next tick (a few seconds).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli_private.h"

static int queue_run(struct cli *cli, int argc, char **argv);

const struct cli_noun cli_noun_queue = {
    .name = "queue",
    .usage = "  sealctl -c FILE queue list\n"
             "  sealctl -c FILE queue show ID\n"
             "  sealctl -c FILE queue flush [ID]\n"
             "  sealctl -c FILE queue delete ID\n",
    .run = queue_run,
};

static const char *status_name(int status)
{
	switch (status) {
	case 0:
		return "pending";
	case 1:
		return "delivered";
	case 2:
		return "failed";
	case 3:
		return "in-flight";
	default:
		return "unknown";
	}
}

static void iso_time(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int parse_id(const char *s, int64_t *id_r)
{
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v <= 0)
		return -EINVAL;
	*id_r = v;
	return 0;
}

static void print_entry(const struct store_queue_entry *q, bool detail)
{
	char created[32];
	iso_time(q->created, created, sizeof(created));
	printf("%" PRId64 " from=<%s> size=%" PRIu64 " since=%s%s\n", q->id, q->sender, q->size,
	       created, q->requiretls ? " requiretls" : "");
	if (detail)
		printf("  ret=%s envid=%s content=%" PRId64 "\n", q->ret ? q->ret : "-",
		       q->envid ? q->envid : "-", q->content_id);
	for (size_t i = 0; i < q->n_rcpts; i++) {
		const struct store_queue_rcpt *r = &q->rcpts[i];
		char next[32];
		iso_time(r->next_attempt, next, sizeof(next));
		printf("  to=<%s> status=%s attempts=%u next=%s", r->address,
		       status_name(r->status), r->attempts, next);
		if (detail && r->notify != NULL)
			printf(" notify=%s", r->notify);
		if (detail && r->orcpt != NULL)
			printf(" orcpt=%s", r->orcpt);
		printf(" error=\"%s\"\n", r->last_error ? r->last_error : "");
	}
}

static int cmd_list(struct cli *cli, int64_t only, bool detail)
{
	struct store *s = cli_store(cli);
	if (s == NULL)
		return CLI_FAIL;
	struct store_sync w;
	store_sync_init(&w);
	int rc = cli_wait(&w, store_queue_list(s, store_sync_queue, &w));
	bool found = false;
	if (rc == 0) {
		for (size_t i = 0; i < w.queue.n; i++) {
			if (only != 0 && w.queue.v[i].id != only)
				continue;
			found = true;
			print_entry(&w.queue.v[i], detail);
		}
	}
	store_sync_done(&w);
	if (rc < 0) {
		cli_error("cannot read the queue: %s", store_strerror(rc));
		return CLI_FAIL;
	}
	if (only != 0 && !found) {
		cli_error("no queue entry %" PRId64 ": see 'sealctl queue list'", only);
		return CLI_FAIL;
	}
	return CLI_OK;
}

static int cmd_write(struct cli *cli, const char *verb, int64_t id)
{
	struct store *s = cli_store(cli);
	if (s == NULL)
		return CLI_FAIL;
	struct store_sync w;
	store_sync_init(&w);
	int submit = strcmp(verb, "flush") == 0
	                 ? store_queue_flush(s, id, (int64_t)time(NULL), store_sync_done_cb, &w)
	                 : store_queue_delete(s, id, store_sync_done_cb, &w);
	int rc = cli_wait(&w, submit);
	store_sync_done(&w);
	if (rc == -ENOENT) {
		cli_error("no queue entry %" PRId64 " with pending recipients: see 'sealctl queue "
		          "list'",
		          id);
		return CLI_FAIL;
	}
	if (rc < 0) {
		cli_error("queue %s failed: %s", verb, store_strerror(rc));
		return CLI_FAIL;
	}
	return CLI_OK;
}

static int queue_run(struct cli *cli, int argc, char **argv)
{
	const char *verb = argv[0];
	int64_t id = 0;
	if (strcmp(verb, "list") == 0) {
		if (argc != 1)
			return cli_usage(&cli_noun_queue, "queue list takes no argument");
		return cmd_list(cli, 0, false);
	}
	if (strcmp(verb, "flush") == 0 && argc == 1)
		return cmd_write(cli, verb, 0);
	if (strcmp(verb, "show") != 0 && strcmp(verb, "flush") != 0 && strcmp(verb, "delete") != 0)
		return cli_usage(&cli_noun_queue, "unknown verb");
	if (argc != 2 || parse_id(argv[1], &id) < 0)
		return cli_usage(&cli_noun_queue, "give one queue ID (a number from 'queue list')");
	if (strcmp(verb, "show") == 0)
		return cmd_list(cli, id, true);
	return cmd_write(cli, verb, id);
}
