/*
 * sealctl: the administrator's tool. `sealctl -c FILE <noun> <verb> ...`; the nouns live in
 * cmd_<noun>.c. Exit 0 success, 1 operational failure, 2 usage error. Safe while sealmaild
 * runs: the store is SQLite in WAL mode and waits for the server's write lock.
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>

#include "common/dirlock.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "cli/cli_private.h"
#include "storage/store_key.h"

#define DEFAULT_CONFIG "/etc/sealmail/sealmail.yaml"

static const struct cli_noun *const nouns[] = {
    &cli_noun_user,  &cli_noun_mailbox, &cli_noun_cert,    &cli_noun_queue,
    &cli_noun_quota, &cli_noun_backup,  &cli_noun_restore, &cli_noun_status,
    &cli_noun_dns,   &cli_noun_audit,   &cli_noun_store,
};

void cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("sealctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void print_usage(FILE *fp)
{
	fprintf(fp, "usage: sealctl [-c FILE] <noun> <verb> ...   (default FILE: %s)\n",
	        DEFAULT_CONFIG);
	for (size_t i = 0; i < sizeof(nouns) / sizeof(nouns[0]); i++)
		fprintf(fp, "%s", nouns[i]->usage);
}

void cli_tell_daemon(struct cli *cli)
{
	long pid = dirlock_holder(cli->cfg->data_dir, DIRLOCK_DAEMON);
	if (pid <= 0)
		return; /* none runs: nothing is open */
	if (kill((pid_t)pid, SIGUSR1) < 0)
		cli_error(
		    "could not ask sealmaild (pid %ld) to close the user's open sessions: %s; "
		    "run 'systemctl kill -s USR1 sealmaild' as root",
		    pid, strerror(errno));
	else
		printf("  asked sealmaild (pid %ld) to close the user's open sessions\n", pid);
}

int cli_usage(const struct cli_noun *noun, const char *problem)
{
	cli_error("%s: see 'sealctl%s%s --help'", problem, noun != NULL ? " " : "",
	          noun != NULL ? noun->name : "");
	return CLI_USAGE;
}

int cli_kek(struct cli *cli, uint8_t kek[STORE_KEK_LEN], const uint8_t **kek_r)
{
	bool have = false;
	const char *err = NULL;
	*kek_r = NULL;
	const char *file =
	    cli->key_file_override != NULL ? cli->key_file_override : cli->cfg->encryption.key_file;
	const char *cred = cli->key_file_override != NULL ? NULL : cli->cfg->encryption.credential;
	if (store_kek_resolve(file, cred, kek, &have, &err) < 0) {
		cli_error("%s", err);
		return CLI_FAIL;
	}
	if (have)
		*kek_r = kek;
	return CLI_OK;
}

struct store *cli_store(struct cli *cli)
{
	if (cli->store != NULL)
		return cli->store;
	const char *dir = cli->cfg->data_dir;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		cli_error("cannot create data_dir %s: %s: fix data_dir in %s", dir, strerror(errno),
		          cli->config_path);
		return NULL;
	}
	char *path = xasprintf("%s/mail.db", dir);
	struct store_options opt = {.backend = cfg_store_name(cli->cfg->store),
	                            .path = path,
	                            .workers = 1,
	                            .audit_retention_days = cli->cfg->audit.retention_days};
	const char *err = NULL;
	uint8_t kek[STORE_KEK_LEN];
	int rc = cli_kek(cli, kek, &opt.kek);
	if (rc != CLI_OK) {
		free(path);
		return NULL;
	}
	rc = store_open(&opt, &cli->store, &err);
	gnutls_memset(kek, 0, sizeof(kek));
	free(path);
	if (rc < 0) {
		cli_error("%s", err);
		return NULL;
	}
	return cli->store;
}

int cli_local_address(struct cli *cli, const char *address, char **norm_r)
{
	if (store_address_normalize(address, norm_r) < 0) {
		cli_error("'%s' is not a valid address: give local@domain", address);
		return CLI_USAGE;
	}
	const char *domain = strrchr(*norm_r, '@') + 1;
	if (!cfg_is_local_domain(cli->cfg, domain, strlen(domain))) {
		cli_error("%s is not one of the configured domains: add it to domains: in %s",
		          domain, cli->config_path);
		free(*norm_r);
		*norm_r = NULL;
		return CLI_FAIL;
	}
	return CLI_OK;
}

int cli_wait(struct store_sync *w, int submit_rc)
{
	return store_sync_wait(w, submit_rc);
}

int main(int argc, char **argv)
{
	struct cli cli = {.config_path = DEFAULT_CONFIG};
	int i = 1;
	int rc;

	/* sealctl creates the store, the CA's key and serial state and users' keys: owner
	 * only unless a file is given a wider mode on purpose (certificates and the CRL are
	 * written 0644 explicitly, since sealmaild must read them). */
	umask(077);

	/* The store's own log lines would make a second line on stderr: sealctl reports
	 * every failure itself, in one line (SEALMAIL_DEBUG=1 still shows them). */
	if (getenv("SEALMAIL_DEBUG") == NULL)
		log_set_level((enum log_level)(LOGL_ERROR + 1));

	while (i < argc && argv[i][0] == '-') {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc) {
			cli.config_path = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			print_usage(stdout);
			return CLI_OK;
		} else {
			return cli_usage(NULL, "unknown option or missing value");
		}
	}
	if (i >= argc)
		return cli_usage(NULL, "missing noun");
	const struct cli_noun *noun = NULL;
	for (size_t n = 0; n < sizeof(nouns) / sizeof(nouns[0]); n++)
		if (strcmp(argv[i], nouns[n]->name) == 0)
			noun = nouns[n];
	if (noun == NULL)
		return cli_usage(NULL, "unknown noun");
	if (i + 1 >= argc && noun != &cli_noun_status)
		return cli_usage(noun, "missing verb");
	if (i + 1 < argc &&
	    (strcmp(argv[i + 1], "--help") == 0 || strcmp(argv[i + 1], "-h") == 0)) {
		printf("usage:\n%s", noun->usage);
		return CLI_OK;
	}
	if (noun == &cli_noun_store && strcmp(argv[i + 1], "genkey") == 0)
		return cli_store_genkey(argc - i - 1, argv + i + 1);

	struct cfg_errors errs = {0};
	if (cfg_load_flags(cli.config_path, CFG_LOAD_NO_FILE_CHECKS, &cli.cfg, &errs) < 0) {
		cfg_errors_print(&errs, stderr);
		cfg_errors_free(&errs);
		cli_error("fix the configuration file %s first", cli.config_path);
		return CLI_FAIL;
	}
	cfg_errors_free(&errs);
	rc = noun->run(&cli, argc - i - 1, argv + i + 1);
	cli_audit_admin(&cli, argc - i, argv + i, rc);
	store_close(cli.store);
	free(cli.ca_dir);
	cfg_free(cli.cfg);
	return rc;
}
