/*
 * sealctl user add|list|del|passwd|require-cert. Passwords come only from standard input
 * (--password-stdin), never from arguments, and are wiped after use.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_private.h"

#define PASSWORD_MAX 1024

static int user_run(struct cli *cli, int argc, char **argv);

const struct cli_noun cli_noun_user = {
    .name = "user",
    .usage = "  sealctl -c FILE user add ADDRESS --password-stdin\n"
             "  sealctl -c FILE user list\n"
             "  sealctl -c FILE user del ADDRESS\n"
             "  sealctl -c FILE user passwd ADDRESS --password-stdin\n"
             "  sealctl -c FILE user require-cert ADDRESS on|off\n"
             "  sealctl -c FILE user disable ADDRESS\n"
             "  sealctl -c FILE user enable ADDRESS\n",
    .run = user_run,
};

/* One line from standard input, without its line end: 0, or an exit code. */
static int read_password(char *buf, size_t size)
{
	if (fgets(buf, (int)size, stdin) == NULL) {
		cli_error("no password on standard input: pipe it in, e.g. "
		          "printf '%%s\\n' \"$PW\" | sealctl ... --password-stdin");
		return CLI_USAGE;
	}
	size_t len = strlen(buf);
	if (len == size - 1 && buf[len - 1] != '\n') {
		explicit_bzero(buf, size);
		cli_error("password longer than %d bytes: use a shorter one", PASSWORD_MAX - 2);
		return CLI_USAGE;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	if (len == 0) {
		cli_error("empty password on standard input: give a non-empty password");
		return CLI_USAGE;
	}
	return CLI_OK;
}

static int fail(const char *what, const char *address, int rc)
{
	if (rc == -ENOENT)
		cli_error("no such user %s: see 'sealctl user list'", address);
	else if (rc == -EEXIST)
		cli_error("user %s already exists: use 'user passwd' to change the password",
		          address);
	else
		cli_error("%s %s failed: %s", what, address, store_strerror(rc));
	return CLI_FAIL;
}

static int cmd_set_password(struct cli *cli, int argc, char **argv, bool add)
{
	const struct cli_noun *noun = &cli_noun_user;
	char *address = NULL;
	char pw[PASSWORD_MAX];
	struct store_sync w;
	int rc;

	if (argc != 3 || strcmp(argv[2], "--password-stdin") != 0)
		return cli_usage(noun, add ? "user add takes ADDRESS --password-stdin (passwords "
		                             "are never taken from arguments)"
		                           : "user passwd takes ADDRESS --password-stdin");
	rc = cli_local_address(cli, argv[1], &address);
	if (rc != CLI_OK)
		return rc;
	rc = read_password(pw, sizeof(pw));
	if (rc != CLI_OK) {
		free(address);
		return rc;
	}
	struct store *s = cli_store(cli);
	if (s == NULL) {
		explicit_bzero(pw, sizeof(pw));
		free(address);
		return CLI_FAIL;
	}
	store_sync_init(&w);
	rc = cli_wait(&w, add ? store_user_add(s, address, pw, store_sync_users, &w)
	                      : store_user_passwd(s, address, pw, store_sync_done_cb, &w));
	explicit_bzero(pw, sizeof(pw));
	store_sync_done(&w);
	if (rc < 0) {
		rc = fail(add ? "adding" : "changing the password of", address, rc);
		free(address);
		return rc;
	}
	printf("%s %s\n", add ? "added" : "password changed for", address);
	free(address);
	return CLI_OK;
}

static int cmd_list(struct cli *cli, int argc, char **argv)
{
	struct store_sync w;
	(void)argv;
	if (argc != 1)
		return cli_usage(&cli_noun_user, "user list takes no arguments");
	struct store *s = cli_store(cli);
	if (s == NULL)
		return CLI_FAIL;
	store_sync_init(&w);
	int rc = cli_wait(&w, store_user_list(s, store_sync_users, &w));
	if (rc < 0) {
		store_sync_done(&w);
		cli_error("listing users failed: %s", store_strerror(rc));
		return CLI_FAIL;
	}
	for (size_t i = 0; i < w.users.n; i++) {
		const struct store_user *u = &w.users.v[i];
		printf("%s\trequire-cert=%s\tdisabled=%s\tused=%llu\tquota=%llu\n", u->address,
		       u->require_client_certificate ? "on" : "off", u->disabled ? "yes" : "no",
		       (unsigned long long)u->used_bytes, (unsigned long long)u->quota_bytes);
	}
	store_sync_done(&w);
	return CLI_OK;
}

static int cmd_simple(struct cli *cli, int argc, char **argv)
{
	const struct cli_noun *noun = &cli_noun_user;
	bool del = strcmp(argv[0], "del") == 0;
	bool on = false;
	char *address = NULL;
	struct store_sync w;

	if (del && argc != 2)
		return cli_usage(noun, "user del takes ADDRESS");
	if (!del) {
		if (argc != 3 || (strcmp(argv[2], "on") != 0 && strcmp(argv[2], "off") != 0))
			return cli_usage(noun, "user require-cert takes ADDRESS on|off");
		on = strcmp(argv[2], "on") == 0;
	}
	/* del works for any syntactically valid address, even of a removed domain. */
	int rc = del ? (store_address_normalize(argv[1], &address) < 0 ? CLI_USAGE : CLI_OK)
	             : cli_local_address(cli, argv[1], &address);
	if (rc != CLI_OK) {
		if (del)
			cli_error("'%s' is not a valid address: give local@domain", argv[1]);
		return rc;
	}
	struct store *s = cli_store(cli);
	if (s == NULL) {
		free(address);
		return CLI_FAIL;
	}
	store_sync_init(&w);
	rc =
	    cli_wait(&w, del ? store_user_del(s, address, store_sync_done_cb, &w)
	                     : store_user_set_require_cert(s, address, on, store_sync_done_cb, &w));
	store_sync_done(&w);
	if (rc < 0) {
		rc = fail(del ? "deleting" : "changing", address, rc);
		free(address);
		return rc;
	}
	if (del) {
		printf("deleted %s and all its mail\n", address);
		cli_tell_daemon(cli);
	} else
		printf("require-cert %s for %s\n", on ? "on" : "off", address);
	free(address);
	return CLI_OK;
}

/* user disable|enable ADDRESS: no login by any means while disabled; the running
 * sealmaild is asked to close the user's open sessions. */
static int cmd_disable(struct cli *cli, int argc, char **argv)
{
	bool on = strcmp(argv[0], "disable") == 0;
	char *address = NULL;
	struct store_sync w;
	if (argc != 2)
		return cli_usage(&cli_noun_user,
		                 on ? "user disable takes ADDRESS" : "user enable takes ADDRESS");
	if (store_address_normalize(argv[1], &address) < 0) {
		cli_error("'%s' is not a valid address: give local@domain", argv[1]);
		return CLI_USAGE;
	}
	struct store *s = cli_store(cli);
	if (s == NULL) {
		free(address);
		return CLI_FAIL;
	}
	store_sync_init(&w);
	int rc = cli_wait(&w, store_user_set_disabled(s, address, on, store_sync_done_cb, &w));
	store_sync_done(&w);
	if (rc < 0) {
		rc = fail(on ? "disabling" : "enabling", address, rc);
		free(address);
		return rc;
	}
	if (on) {
		printf("disabled %s: no login by any means; mail to it is %s\n", address,
		       cli->cfg->auth.disabled_user_mail == CFG_DISABLED_MAIL_KEEP
		           ? "kept (auth.disabled_user_mail: keep)"
		           : "refused with 550 5.2.1");
		cli_tell_daemon(cli);
	} else {
		printf("enabled %s\n", address);
	}
	free(address);
	return CLI_OK;
}

static int user_run(struct cli *cli, int argc, char **argv)
{
	if (strcmp(argv[0], "add") == 0)
		return cmd_set_password(cli, argc, argv, true);
	if (strcmp(argv[0], "passwd") == 0)
		return cmd_set_password(cli, argc, argv, false);
	if (strcmp(argv[0], "list") == 0)
		return cmd_list(cli, argc, argv);
	if (strcmp(argv[0], "del") == 0 || strcmp(argv[0], "require-cert") == 0)
		return cmd_simple(cli, argc, argv);
	if (strcmp(argv[0], "disable") == 0 || strcmp(argv[0], "enable") == 0)
		return cmd_disable(cli, argc, argv);
	return cli_usage(&cli_noun_user, "unknown verb for user");
}
