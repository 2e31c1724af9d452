/*
 * sealctl store genkey|encrypt|rekey: keys of the store's encryption at rest
 * (docs/encryption.md). genkey writes a new key-encryption key; encrypt converts a plaintext
 * store in place (sealmaild stopped: the daemon's lock is held meanwhile); rekey rewraps the
 * data key under a new key-encryption key, so the old one stops opening the store.
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_private.h"
#include "common/dirlock.h"
#include "common/xmalloc.h"
#include "storage/store_key.h"

static int store_run(struct cli *cli, int argc, char **argv);

const struct cli_noun cli_noun_store = {
    .name = "store",
    .usage = "  sealctl store genkey PATH\n"
             "  sealctl -c FILE store encrypt   (sealmaild stopped)\n"
             "  sealctl -c FILE store rekey --new-key-file PATH\n",
    .run = store_run,
};

static int take_lock(const char *data_dir)
{
	int lock = dirlock_take(data_dir, DIRLOCK_DAEMON);
	if (lock < 0)
		cli_error(
		    "%s is in use (%s): stop sealmaild first (systemctl stop sealmaild)", data_dir,
		    lock == -EWOULDBLOCK ? "sealmaild holds " DIRLOCK_DAEMON : strerror(-lock));
	return lock;
}

static int encrypt_run(struct cli *cli)
{
	uint8_t kek[STORE_KEK_LEN];
	const uint8_t *k;
	if (cli_kek(cli, kek, &k) != CLI_OK)
		return CLI_FAIL;
	if (k == NULL) {
		cli_error(
		    "no key is configured: set encryption.key_file (or encryption.credential) "
		    "in %s first",
		    cli->config_path);
		return CLI_FAIL;
	}
	int lock = take_lock(cli->cfg->data_dir);
	if (lock < 0) {
		gnutls_memset(kek, 0, sizeof(kek));
		return CLI_FAIL;
	}
	char *db = xasprintf("%s/mail.db", cli->cfg->data_dir);
	const char *err = NULL;
	int rc = store_encrypt(db, kek, &err);
	gnutls_memset(kek, 0, sizeof(kek));
	if (rc < 0)
		cli_error("encrypting %s failed: %s", db, err);
	else
		printf("encrypted %s (key header %s/%s); keep the key file: without it the store "
		       "cannot be read\n",
		       db, cli->cfg->data_dir, STORE_KEY_FILE);
	free(db);
	close(lock);
	return rc < 0 ? CLI_FAIL : CLI_OK;
}

static int rekey_run(struct cli *cli, int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], "--new-key-file") != 0)
		return cli_usage(&cli_noun_store, "rekey takes --new-key-file PATH");
	uint8_t kek[STORE_KEK_LEN], new_kek[STORE_KEK_LEN];
	const uint8_t *k;
	const char *err = NULL;
	if (cli_kek(cli, kek, &k) != CLI_OK)
		return CLI_FAIL;
	if (k == NULL) {
		cli_error("no key is configured: the store is not encrypted");
		return CLI_FAIL;
	}
	if (store_kek_load(argv[2], new_kek, &err) < 0) {
		gnutls_memset(kek, 0, sizeof(kek));
		cli_error("%s", err);
		return CLI_FAIL;
	}
	char *db = xasprintf("%s/mail.db", cli->cfg->data_dir);
	int rc = store_rekey(db, kek, new_kek, &err);
	gnutls_memset(kek, 0, sizeof(kek));
	gnutls_memset(new_kek, 0, sizeof(new_kek));
	if (rc < 0)
		cli_error("rekeying failed, the old key still works: %s", err);
	else
		cli->key_file_override = argv[2];
	if (rc == 0)
		printf("the data key is now wrapped by %s: set encryption.key_file to it in %s "
		       "before the next start; the old key no longer opens the store\n",
		       argv[2], cli->config_path);
	free(db);
	return rc < 0 ? CLI_FAIL : CLI_OK;
}

static int store_run(struct cli *cli, int argc, char **argv)
{
	if (argc < 1)
		return cli_usage(&cli_noun_store, "missing verb");
	if (strcmp(argv[0], "encrypt") == 0 && argc == 1)
		return encrypt_run(cli);
	if (strcmp(argv[0], "rekey") == 0)
		return rekey_run(cli, argc, argv);
	return cli_usage(&cli_noun_store, "unknown verb or arguments");
}

/* genkey needs no configuration: it runs before one names the key. */
int cli_store_genkey(int argc, char **argv)
{
	if (argc != 2)
		return cli_usage(&cli_noun_store, "genkey takes PATH");
	const char *err = NULL;
	if (store_kek_generate(argv[1], &err) < 0) {
		cli_error("%s", err);
		return CLI_FAIL;
	}
	printf("wrote a new key to %s (mode 0400): keep a copy apart from the store's backups\n",
	       argv[1]);
	return CLI_OK;
}
