/*
 * sealctl backup FILE [--with-config] [--with-ca] and sealctl restore FILE [--with-config]
 * [--with-ca]: a consistent copy of the store taken while sealmaild runs and keeps taking
 * mail (store_backup), and putting one back while it does not (store_restore, under
 * data_dir's daemon lock). The configuration and the client CA's files can travel in the
 * same file; it then holds the CA's private key, so it is written 0600 like the store.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_private.h"
#include "common/dirlock.h"
#include "common/xmalloc.h"

static int backup_run(struct cli *cli, int argc, char **argv);
static int restore_run(struct cli *cli, int argc, char **argv);

const struct cli_noun cli_noun_backup = {
    .name = "backup",
    .usage = "  sealctl -c FILE backup BACKUP [--with-config] [--with-ca]\n",
    .run = backup_run,
};

const struct cli_noun cli_noun_restore = {
    .name = "restore",
    .usage = "  sealctl -c FILE restore BACKUP [--with-config] [--with-ca]   (sealmaild "
             "stopped)\n",
    .run = restore_run,
};

#define EXTRA_MAX   (16u << 20)
#define CONFIG_NAME "config/sealmail.yaml"
#define CA_PREFIX   "ca/"

static int read_whole(const char *path, char **data_r, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > EXTRA_MAX) {
		close(fd);
		return -EINVAL;
	}
	char *data = xmalloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
		if (n <= 0) {
			free(data);
			close(fd);
			return n < 0 ? -errno : -EIO;
		}
		got += (size_t)n;
	}
	close(fd);
	*data_r = data;
	*len_r = got;
	return 0;
}

static int put_file(struct cli *cli, const char *backup, const char *name, const char *path)
{
	char *data = NULL;
	size_t len = 0;
	const char *err = NULL;
	int rc = read_whole(path, &data, &len);
	if (rc < 0) {
		cli_error("cannot read %s for the backup: %s", path, strerror(-rc));
		return CLI_FAIL;
	}
	uint8_t kek[32];
	const uint8_t *k;
	if (cli_kek(cli, kek, &k) != CLI_OK) {
		explicit_bzero(data, len);
		free(data);
		return CLI_FAIL;
	}
	rc = store_backup_put_extra(backup, k, name, data, len, &err);
	explicit_bzero(kek, sizeof(kek));
	explicit_bzero(data, len);
	free(data);
	if (rc < 0) {
		cli_error("cannot add %s to %s: %s", path, backup, err);
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* Every regular file directly in the CA's folder (key, certificate, serial state). */
static int put_ca(struct cli *cli, const char *backup, size_t *n_r)
{
	char *warn = NULL;
	char *dir = cfg_ca_dir(cli->cfg, &warn);
	free(warn);
	DIR *d = opendir(dir);
	if (d == NULL) {
		cli_error("cannot read the CA folder %s: %s", dir, strerror(errno));
		free(dir);
		return CLI_FAIL;
	}
	int rc = CLI_OK;
	struct dirent *e;
	while (rc == CLI_OK && (e = readdir(d)) != NULL) {
		char *path = xasprintf("%s/%s", dir, e->d_name);
		struct stat st;
		if (e->d_name[0] != '.' && lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			char *name = xasprintf(CA_PREFIX "%s", e->d_name);
			rc = put_file(cli, backup, name, path);
			free(name);
			(*n_r)++;
		}
		free(path);
	}
	closedir(d);
	free(dir);
	return rc;
}

static int parse_flags(const struct cli_noun *noun, int argc, char **argv, bool *config, bool *ca)
{
	if (argc < 1 || argv[0][0] == '-' || argv[0][0] == '\0')
		return cli_usage(noun, "give the backup file");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--with-config") == 0)
			*config = true;
		else if (strcmp(argv[i], "--with-ca") == 0)
			*ca = true;
		else
			return cli_usage(noun, "unknown option");
	}
	return CLI_OK;
}

static int backup_run(struct cli *cli, int argc, char **argv)
{
	bool config = false, ca = false;
	int rc = parse_flags(&cli_noun_backup, argc, argv, &config, &ca);
	if (rc != CLI_OK)
		return rc;
	const char *path = argv[0];
	struct store *s = cli_store(cli);
	if (s == NULL)
		return CLI_FAIL;
	struct store_sync w;
	store_sync_init(&w);
	rc = cli_wait(&w, store_backup(s, path, store_sync_done_cb, &w));
	store_sync_done(&w);
	if (rc < 0) {
		cli_error("backup to %s failed: %s", path, strerror(-rc));
		return CLI_FAIL;
	}
	size_t n_ca = 0;
	if (config && put_file(cli, path, CONFIG_NAME, cli->config_path) != CLI_OK)
		return CLI_FAIL;
	if (ca && put_ca(cli, path, &n_ca) != CLI_OK)
		return CLI_FAIL;
	struct stat st;
	printf("backed up the store to %s (%lld bytes)%s%s\n", path,
	       stat(path, &st) == 0 ? (long long)st.st_size : 0LL,
	       config ? ", with the configuration" : "", ca ? ", with the client CA" : "");
	if (ca)
		printf("  the file holds the CA's private key (%zu files): keep it like ca.key\n",
		       n_ca);
	return CLI_OK;
}

struct restore_ctx {
	struct cli *cli;
	bool config, ca;
	char *ca_dir;
	int failed;
	size_t n_config, n_ca;
};

static int write_new(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int rc = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0 ? 0 : -EIO;
	close(fd);
	return rc;
}

/* A file the backup carried: written only where nothing is (never over a configuration or
 * a CA in use); the configuration goes beside the current one as .restored when that
 * exists. */
static int restore_extra(void *ctx, const char *name, const void *data, size_t len)
{
	struct restore_ctx *r = ctx;
	if (r->config && strcmp(name, CONFIG_NAME) == 0) {
		char *path = access(r->cli->config_path, F_OK) == 0
		                 ? xasprintf("%s.restored", r->cli->config_path)
		                 : xstrdup(r->cli->config_path);
		int rc = write_new(path, data, len);
		if (rc < 0)
			cli_error("cannot write the configuration to %s: %s", path, strerror(-rc));
		else
			printf("  configuration written to %s\n", path);
		free(path);
		r->n_config++;
		return rc;
	}
	if (r->ca && strncmp(name, CA_PREFIX, strlen(CA_PREFIX)) == 0) {
		const char *base = name + strlen(CA_PREFIX);
		if (base[0] == '\0' || base[0] == '.' || strchr(base, '/') != NULL)
			return 0;
		mkdir(r->ca_dir, 0700);
		char *path = xasprintf("%s/%s", r->ca_dir, base);
		int rc = write_new(path, data, len);
		if (rc < 0)
			cli_error("cannot write %s: %s (a CA is there already: move it away first)",
			          path, strerror(-rc));
		free(path);
		r->n_ca++;
		return rc;
	}
	return 0;
}

static int restore_run(struct cli *cli, int argc, char **argv)
{
	struct restore_ctx r = {.cli = cli};
	int rc = parse_flags(&cli_noun_restore, argc, argv, &r.config, &r.ca);
	if (rc != CLI_OK)
		return rc;
	const char *backup = argv[0];
	if (access(backup, R_OK) < 0) {
		cli_error("cannot read %s: %s", backup, strerror(errno));
		return CLI_FAIL;
	}
	const char *data_dir = cli->cfg->data_dir;
	if (mkdir(data_dir, 0700) < 0 && errno != EEXIST) {
		cli_error("cannot create data_dir %s: %s", data_dir, strerror(errno));
		return CLI_FAIL;
	}
	/* Held until exit: no sealmaild can start on the store while it is replaced. */
	int lock = dirlock_take(data_dir, DIRLOCK_DAEMON);
	if (lock < 0) {
		cli_error(
		    "%s is in use (%s): stop sealmaild first (systemctl stop sealmaild)", data_dir,
		    lock == -EWOULDBLOCK ? "sealmaild holds " DIRLOCK_DAEMON : strerror(-lock));
		return CLI_FAIL;
	}
	char *warn = NULL;
	r.ca_dir = cfg_ca_dir(cli->cfg, &warn);
	free(warn);
	char *db_path = xasprintf("%s/mail.db", data_dir);
	const char *err = NULL;
	uint8_t kek[32];
	const uint8_t *k;
	if (cli_kek(cli, kek, &k) != CLI_OK) {
		free(db_path);
		close(lock);
		return CLI_FAIL;
	}
	rc = store_restore(backup, db_path, k, restore_extra, &r, &err);
	explicit_bzero(kek, sizeof(kek));
	if (rc < 0) {
		cli_error("restoring %s failed, the store at %s is unchanged: %s", backup, db_path,
		          err != NULL ? err : strerror(-rc));
		rc = CLI_FAIL;
	} else {
		printf("restored %s to %s (integrity checked before and after)%s\n", backup,
		       db_path, r.n_ca > 0 ? "; the client CA too" : "");
		if (r.config && r.n_config == 0)
			printf("  the backup holds no configuration\n");
		if (r.ca && r.n_ca == 0)
			printf("  the backup holds no client CA\n");
		rc = CLI_OK;
	}
	free(db_path);
	free(r.ca_dir);
	close(lock);
	return rc;
}
