/*
 * sealctl quota set|show: a user's limits (bytes of storage, number of messages; none =
 * unlimited) and usage. The same limits IMAP SETQUOTA sets for administrators.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_private.h"

static int quota_run(struct cli *cli, int argc, char **argv);

const struct cli_noun cli_noun_quota = {
    .name = "quota",
    .usage = "  sealctl -c FILE quota set ADDRESS [--storage BYTES|none] [--messages N|none]\n"
             "  sealctl -c FILE quota show ADDRESS\n",
    .run = quota_run,
};

/* A limit as given: "none" (0: unlimited) or a whole number from 1 to 2^63-1. */
static bool parse_limit(const char *s, uint64_t *v_r)
{
	if (strcmp(s, "none") == 0) {
		*v_r = 0;
		return true;
	}
	uint64_t v = 0;
	size_t len = strlen(s);
	if (len == 0 || len > 19)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v == 0 || v > (uint64_t)INT64_MAX)
		return false;
	*v_r = v;
	return true;
}

static void print_limit(uint64_t v, const char *unit)
{
	if (v == 0)
		printf("none");
	else
		printf("%llu%s", (unsigned long long)v, unit);
}

static int fail(const char *what, const char *address, int rc)
{
	if (rc == -ENOENT)
		cli_error("no such user %s: see 'sealctl user list'", address);
	else
		cli_error("%s %s failed: %s", what, address, store_strerror(rc));
	return CLI_FAIL;
}

/* Prints the user's limits and usage: 0 or an exit code. */
static int show(struct store *s, const char *address)
{
	struct store_sync w;
	store_sync_init(&w);
	int rc = cli_wait(&w, store_user_get(s, address, store_sync_users, &w));
	if (rc < 0 || w.users.n != 1) {
		store_sync_done(&w);
		return fail("reading the quota of", address, rc < 0 ? rc : -ENOENT);
	}
	const struct store_user *u = &w.users.v[0];
	printf("%s\n", u->address);
	printf("  storage: %llu bytes used, limit ", (unsigned long long)u->used_bytes);
	print_limit(u->quota_bytes, " bytes");
	printf("\n  messages: %llu, limit ", (unsigned long long)u->used_messages);
	print_limit(u->quota_messages, "");
	printf("\n");
	store_sync_done(&w);
	return CLI_OK;
}

static int cmd_set(struct cli *cli, int argc, char **argv)
{
	const struct cli_noun *noun = &cli_noun_quota;
	bool has_storage = false, has_messages = false;
	uint64_t storage = 0, messages = 0;

	if (argc < 2)
		return cli_usage(noun, "quota set takes ADDRESS and --storage and/or --messages");
	for (int i = 2; i < argc; i += 2) {
		bool is_storage = strcmp(argv[i], "--storage") == 0;
		bool is_messages = strcmp(argv[i], "--messages") == 0;
		if (!is_storage && !is_messages)
			return cli_usage(noun, "quota set knows only --storage and --messages");
		if ((is_storage && has_storage) || (is_messages && has_messages))
			return cli_usage(noun, "quota set: each option may be given once");
		if (i + 1 >= argc)
			return cli_usage(noun, is_storage ? "--storage needs BYTES or none"
			                                  : "--messages needs a number or none");
		uint64_t v;
		if (!parse_limit(argv[i + 1], &v))
			return cli_usage(
			    noun, is_storage
			              ? "--storage takes a whole number of bytes from 1, or none"
			              : "--messages takes a whole number from 1, or none");
		if (is_storage) {
			has_storage = true;
			storage = v;
		} else {
			has_messages = true;
			messages = v;
		}
	}
	if (!has_storage && !has_messages)
		return cli_usage(noun, "quota set needs --storage and/or --messages");

	char *address = NULL;
	int rc = cli_local_address(cli, argv[1], &address);
	if (rc != CLI_OK)
		return rc;
	struct store *s = cli_store(cli);
	if (s == NULL) {
		free(address);
		return CLI_FAIL;
	}
	/* One wait per store_sync: it is not reused. */
	rc = 0;
	if (has_storage) {
		struct store_sync w;
		store_sync_init(&w);
		rc =
		    cli_wait(&w, store_user_set_quota(s, address, storage, store_sync_done_cb, &w));
		store_sync_done(&w);
	}
	if (rc == 0 && has_messages) {
		struct store_sync w;
		store_sync_init(&w);
		rc = cli_wait(
		    &w, store_user_set_message_quota(s, address, messages, store_sync_done_cb, &w));
		store_sync_done(&w);
	}
	if (rc < 0)
		rc = fail("setting the quota of", address, rc);
	else
		rc = show(s, address);
	free(address);
	return rc;
}

static int cmd_show(struct cli *cli, int argc, char **argv)
{
	if (argc != 2)
		return cli_usage(&cli_noun_quota, "quota show takes ADDRESS");
	char *address = NULL;
	/* Any valid address: a user of a domain removed from the configuration still has
	 * mail to look at. */
	if (store_address_normalize(argv[1], &address) < 0) {
		cli_error("'%s' is not a valid address: give local@domain", argv[1]);
		return CLI_USAGE;
	}
	struct store *s = cli_store(cli);
	int rc = s != NULL ? show(s, address) : CLI_FAIL;
	free(address);
	return rc;
}

static int quota_run(struct cli *cli, int argc, char **argv)
{
	if (strcmp(argv[0], "set") == 0)
		return cmd_set(cli, argc, argv);
	if (strcmp(argv[0], "show") == 0)
		return cmd_show(cli, argc, argv);
	return cli_usage(&cli_noun_quota, "unknown verb for quota");
}
