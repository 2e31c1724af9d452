/*
 * sealctl cert init-ca|issue|list|revoke|crl|server: the built-in client CA. certs/ does the
 * X.509 work and writes the files; this file keeps the store's records of what was issued
 * and revoked in step with them, and owns the CRL number (taken from the store in the same
 * transaction as a revocation). Commands that write the CRL hold an exclusive lock on
 * ca_dir/ca.lock so two of them never write CRLs out of number order. PKCS#12 passwords
 * come only from standard input, or are made here and printed once, and are wiped.
 *
 * The CA's key lives in ca_dir, which only sealctl reads: sealmaild gets the CA
 * certificate (tls.client_ca) and the CRL (tls.crl), which are written where the
 * configuration says, so code running in the network-facing server never holds the key
 * that could mint a certificate for any address.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "certs/cert.h"
#include "cli/cli_private.h"
#include "common/xmalloc.h"

/* Defaults, documented in docs/certificates.md and the usage text. */
#define CERT_CLI_CA_DAYS     3650 /* the CA certificate: ten years */
#define CERT_CLI_CLIENT_DAYS 365
#define CERT_CLI_SERVER_DAYS 825
/* A CRL's next update: a CRL past it makes sealmaild refuse certificate logins, so it is
 * rewritten well before (cert crl from a daily timer). */
#define CERT_CLI_CRL_DAYS 30
#define CERT_CLI_DAYS_MAX 36500
#define CERT_CLI_NAME     "sealmail Client CA"
#define CERT_CLI_IPS_MAX  16
#define P12_PASSWORD_MAX  1024

static int cert_run(struct cli *cli, int argc, char **argv);

const struct cli_noun cli_noun_cert = {
    .name = "cert",
    .usage = "  sealctl -c FILE cert init-ca [--name NAME] [--days D] [--crl-days D]\n"
             "  sealctl -c FILE cert issue ADDRESS --out DIR [--days D] [--p12-password-stdin]"
             " [--legacy-p12] [--rsa] [--mobileconfig FILE]\n"
             "  sealctl -c FILE cert list [--expiring DAYS]\n"
             "  sealctl -c FILE cert revoke SERIAL|ADDRESS [--crl-days D]\n"
             "  sealctl -c FILE cert crl [--days D]\n"
             "  sealctl -c FILE cert server HOSTNAME --out DIR [--ip ADDR]... [--days D]"
             " [--peer]\n"
             "    defaults: CA 3650 days, client 365, server 825, CRL next update 30 days\n",
    .run = cert_run,
};

/* ---- Small helpers ---- */

/* The CA's folder (borrowed from cli), with the warning when it lies inside data_dir
 * printed once per run. */
static const char *ca_dir(struct cli *cli)
{
	if (cli->ca_dir == NULL) {
		char *warning = NULL;
		cli->ca_dir = cfg_ca_dir(cli->cfg, &warning);
		if (warning != NULL)
			cli_error("%s", warning);
		free(warning);
	}
	return cli->ca_dir;
}

/* One folder, made 0755 when missing (chmod: sealctl runs under umask 077). */
static int public_mkdir(const char *dir)
{
	if (mkdir(dir, 0755) < 0)
		return errno == EEXIST ? 0 : -errno;
	return chmod(dir, 0755) < 0 ? -errno : 0;
}

/* The folders of a file sealmaild reads (tls.client_ca, tls.crl), made when missing:
 * 0755, since sealmaild runs as another user and the files in them are public. */
static void public_parent(const char *path)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		for (char *p = dir + 1; *p != '\0'; p++) {
			if (*p != '/')
				continue;
			*p = '\0';
			(void)public_mkdir(dir);
			*p = '/';
		}
		int rc = public_mkdir(dir);
		if (rc < 0)
			cli_error("warning: cannot create %s: %s", dir, strerror(-rc));
	}
	free(dir);
}

/* Where the CRL goes: tls.crl when configured (what sealmaild reads), else the CA's. */
static char *crl_path(struct cli *cli)
{
	if (cli->cfg->tls.crl != NULL)
		return xstrdup(cli->cfg->tls.crl);
	return xasprintf("%s/" CERT_CRL_FILE, ca_dir(cli));
}

static const char *fmt_time(time_t t, char buf[32])
{
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, 32, "%lld", (long long)t);
	return buf;
}

/* "--days 30": 0 and *days_r, or CLI_USAGE after saying why. */
static int parse_days(const char *opt, const char *text, unsigned *days_r)
{
	char *end = NULL;
	errno = 0;
	unsigned long v = text != NULL ? strtoul(text, &end, 10) : 0;
	if (text == NULL || text[0] < '0' || text[0] > '9' || errno != 0 || *end != '\0' ||
	    v == 0 || v > CERT_CLI_DAYS_MAX) {
		cli_usage(&cli_noun_cert, opt);
		return CLI_USAGE;
	}
	*days_r = (unsigned)v;
	return CLI_OK;
}

static bool is_opt(const char *arg, const char *name)
{
	return strcmp(arg, name) == 0;
}

/* One line from standard input, without its line end: 0, or an exit code. */
static int read_password(char *buf, size_t size)
{
	if (fgets(buf, (int)size, stdin) == NULL) {
		cli_error("no PKCS#12 password on standard input: pipe it in, e.g. "
		          "printf '%%s\\n' \"$PW\" | sealctl ... --p12-password-stdin");
		return CLI_USAGE;
	}
	size_t len = strlen(buf);
	if (len == size - 1 && buf[len - 1] != '\n') {
		explicit_bzero(buf, size);
		cli_error("password longer than %d bytes: use a shorter one", P12_PASSWORD_MAX - 2);
		return CLI_USAGE;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	if (len == 0) {
		cli_error("empty PKCS#12 password on standard input: a bundle without a password "
		          "is a key in the clear, give a non-empty one");
		return CLI_USAGE;
	}
	return CLI_OK;
}

/*
 * Exclusive lock on ca_dir/ca.lock, held until close(fd): the fd, or -1 after saying why.
 * Creates ca_dir (0700) when missing; its parent must exist.
 */
static int ca_lock(struct cli *cli)
{
	const char *dir = ca_dir(cli);
	struct stat st;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		cli_error("cannot create the CA folder %s: %s: create its parent, or set ca_dir in "
		          "%s",
		          dir, strerror(errno), cli->config_path);
		return -1;
	}
	/* Said, not changed: the folder may be one the administrator chose on purpose. */
	if (stat(dir, &st) == 0 && (st.st_mode & 077) != 0)
		cli_error("warning: the CA folder %s is mode %04o: others may reach the CA's key, "
		          "run 'chmod 700 %s'",
		          dir, (unsigned)(st.st_mode & 07777), dir);
	char *path = xasprintf("%s/ca.lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		cli_error("cannot lock %s: %s: check the permissions of ca_dir", path,
		          strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	free(path);
	return fd;
}

/* Loads the CA: 0, or CLI_FAIL after saying what to do. */
static int ca_load(struct cli *cli, struct cert_ca **ca_r)
{
	const char *dir = ca_dir(cli);
	const char *err = NULL;
	int rc = cert_ca_load(dir, ca_r, &err);
	if (rc == -ENOENT)
		cli_error("no CA yet in %s: run 'sealctl -c %s cert init-ca' first", dir,
		          cli->config_path);
	else if (rc < 0)
		cli_error("cannot load the CA: %s", err);
	return rc < 0 ? CLI_FAIL : CLI_OK;
}

/*
 * Writes the CRL with every revoked certificate of the store under number, valid for days:
 * 0, or CLI_FAIL after saying what to do. The caller holds the CA lock.
 */
static int crl_write(struct cli *cli, struct cert_ca *ca, uint64_t number, unsigned days,
                     size_t *n_r, char **path_r)
{
	struct store *s = cli_store(cli);
	struct store_sync w;
	const char *err = NULL;
	if (s == NULL)
		return CLI_FAIL;
	store_sync_init(&w);
	int rc = cli_wait(&w, store_cert_list_revoked(s, store_sync_certs, &w));
	if (rc < 0) {
		store_sync_done(&w);
		cli_error("reading the revoked certificates failed: %s: retry 'sealctl cert crl'",
		          store_strerror(rc));
		return CLI_FAIL;
	}
	struct cert_revoked *rev = xcalloc(w.certs.n + 1, sizeof(*rev));
	for (size_t i = 0; i < w.certs.n; i++) {
		rev[i].serial = w.certs.v[i].serial;
		rev[i].revoked_at = (time_t)w.certs.v[i].revoked_at;
	}
	char *path = crl_path(cli);
	public_parent(path);
	rc = cert_crl_write(ca, rev, w.certs.n, number, days, path, &err);
	*n_r = w.certs.n;
	free(rev);
	store_sync_done(&w);
	if (rc < 0) {
		cli_error("writing the CRL failed: %s: fix it and run 'sealctl cert crl'", err);
		free(path);
		return CLI_FAIL;
	}
	*path_r = path;
	return CLI_OK;
}

static void crl_report(const char *path, uint64_t number, unsigned days, size_t n)
{
	char t[32];
	printf("wrote CRL %s: number %llu, %zu revoked, next update %s\n", path,
	       (unsigned long long)number, n, fmt_time(time(NULL) + (time_t)days * 86400, t));
}

/*
 * Writes the CA certificate to tls.client_ca, which is what sealmaild reads (it never
 * reads ca_dir), when that file is missing or empty. A file holding other certificates is
 * left alone, said only when loud (init-ca; not from the daily CRL timer). 0, or CLI_FAIL
 * after saying why.
 */
static int ca_publish(struct cli *cli, const struct cert_ca *ca, bool loud)
{
	const char *path = cli->cfg->tls.client_ca;
	const char *err = NULL;
	if (path == NULL)
		return CLI_OK;
	public_parent(path);
	int rc = cert_ca_publish(ca, path, &err);
	if (rc == -EEXIST) {
		if (loud)
			cli_error("warning: %s", err);
		return CLI_OK;
	}
	if (rc < 0) {
		cli_error("writing the CA certificate to tls.client_ca failed: %s: fix it and run "
		          "'sealctl cert crl'",
		          err);
		return CLI_FAIL;
	}
	if (loud)
		printf("wrote the CA certificate to %s (tls.client_ca)\n", path);
	return CLI_OK;
}

/* Takes the next CRL number and writes the CRL; the caller holds the CA lock. */
static int crl_renew(struct cli *cli, struct cert_ca *ca, unsigned days)
{
	struct store *s = cli_store(cli);
	struct store_sync w;
	if (s == NULL)
		return CLI_FAIL;
	store_sync_init(&w);
	int rc = cli_wait(&w, store_cert_crl_next(s, store_sync_certs, &w));
	uint64_t number = w.certs.crl_number;
	store_sync_done(&w);
	if (rc < 0) {
		cli_error("taking the next CRL number failed: %s: retry 'sealctl cert crl'",
		          store_strerror(rc));
		return CLI_FAIL;
	}
	size_t n = 0;
	char *path = NULL;
	rc = crl_write(cli, ca, number, days, &n, &path);
	if (rc == CLI_OK)
		crl_report(path, number, days, n);
	free(path);
	return rc;
}

/* Records an issued certificate: 0, or CLI_FAIL after saying why. */
static int record(struct cli *cli, const struct cert_issued *is, enum store_cert_kind kind)
{
	struct store *s = cli_store(cli);
	struct store_sync w;
	if (s == NULL)
		return CLI_FAIL;
	struct store_cert_new c = {
	    .serial = is->serial,
	    .address = is->name,
	    .kind = kind,
	    .not_before = is->not_before,
	    .not_after = is->not_after,
	};
	store_sync_init(&w);
	int rc = cli_wait(&w, store_cert_add(s, &c, store_sync_certs, &w));
	store_sync_done(&w);
	if (rc < 0) {
		cli_error("recording certificate %s failed: %s: its files were removed, retry",
		          is->serial, store_strerror(rc));
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* An unrecorded certificate could never be revoked: remove what was written. */
static void unlink_issued(const char *dir, const char *name, bool server)
{
	static const char *const client_ext[] = {"key", "p12", "crt"};
	static const char *const server_ext[] = {"key", "crt"};
	const char *const *ext = server ? server_ext : client_ext;
	size_t n = server ? 2 : 3;
	for (size_t i = 0; i < n; i++) {
		char *p = xasprintf("%s/%s.%s", dir, server ? "server" : name, ext[i]);
		unlink(p);
		free(p);
	}
}

/* Makes the output folder (0700) when missing: 0, or CLI_FAIL after saying why. */
static int out_dir(const char *dir)
{
	struct stat st;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		cli_error("cannot create %s: %s: give --out an existing folder or one whose "
		          "parent exists",
		          dir, strerror(errno));
		return CLI_FAIL;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		cli_error("%s is not a folder: give --out a folder", dir);
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* ---- Verbs ---- */

static int cmd_init_ca(struct cli *cli, int argc, char **argv)
{
	const char *name = CERT_CLI_NAME;
	unsigned days = CERT_CLI_CA_DAYS, crl_days = CERT_CLI_CRL_DAYS;
	int rc;

	for (int i = 1; i < argc; i++) {
		rc = CLI_OK;
		if (is_opt(argv[i], "--name") && i + 1 < argc && argv[i + 1][0] != '\0')
			name = argv[++i];
		else if (is_opt(argv[i], "--days") && i + 1 < argc)
			rc = parse_days("--days takes 1 to 36500 days", argv[++i], &days);
		else if (is_opt(argv[i], "--crl-days") && i + 1 < argc)
			rc = parse_days("--crl-days takes 1 to 36500 days", argv[++i], &crl_days);
		else
			return cli_usage(
			    &cli_noun_cert,
			    "cert init-ca takes [--name NAME] [--days D] [--crl-days D]");
		if (rc != CLI_OK)
			return rc;
	}
	int lock = ca_lock(cli);
	if (lock < 0)
		return CLI_FAIL;
	const char *dir = ca_dir(cli);
	const char *err = NULL;
	struct cert_ca *ca = NULL;
	rc = cert_ca_init(dir, name, days, &err);
	if (rc == -EEXIST) {
		cli_error("a CA already exists in %s and was left unchanged: it signed your users' "
		          "certificates, so it is never replaced",
		          dir);
		rc = CLI_FAIL;
		goto out;
	}
	if (rc < 0) {
		cli_error("creating the CA failed: %s", err);
		rc = CLI_FAIL;
		goto out;
	}
	char t[32];
	printf("created CA \"%s\" in %s, valid until %s\n", name, dir,
	       fmt_time(time(NULL) + (time_t)days * 86400, t));
	printf("  key         %s/" CERT_CA_KEY_FILE " (mode 0600: back it up offline)\n", dir);
	printf("  certificate %s/" CERT_CA_CRT_FILE "\n", dir);
	rc = ca_load(cli, &ca);
	if (rc == CLI_OK)
		rc = crl_renew(cli, ca, crl_days);
	if (rc == CLI_OK)
		rc = ca_publish(cli, ca, true);
	if (rc == CLI_OK && (cli->cfg->tls.client_ca == NULL || cli->cfg->tls.crl == NULL))
		printf("point sealmaild at copies outside %s, which it must not reach: set "
		       "tls.client_ca and tls.crl in %s, then run 'sealctl cert crl' to write "
		       "both there\n",
		       dir, cli->config_path);
out:
	cert_ca_free(&ca);
	close(lock);
	return rc;
}

static int cmd_issue(struct cli *cli, int argc, char **argv)
{
	const struct cli_noun *noun = &cli_noun_cert;
	struct cert_client_options opt = {.days = CERT_CLI_CLIENT_DAYS};
	bool pw_stdin = false;
	const char *mobileconfig = NULL;
	char *address = NULL;
	char pw[P12_PASSWORD_MAX];
	struct cert_issued is = {0};
	struct cert_ca *ca = NULL;
	struct store_sync w;
	const char *err = NULL;
	int rc;

	if (argc < 2 || argv[1][0] == '-')
		return cli_usage(noun, "cert issue takes ADDRESS --out DIR");
	for (int i = 2; i < argc; i++) {
		if (is_opt(argv[i], "--days") && i + 1 < argc) {
			rc = parse_days("--days takes 1 to 36500 days", argv[++i], &opt.days);
			if (rc != CLI_OK)
				return rc;
		} else if (is_opt(argv[i], "--out") && i + 1 < argc && argv[i + 1][0] != '\0') {
			opt.out_dir = argv[++i];
		} else if (is_opt(argv[i], "--p12-password-stdin")) {
			pw_stdin = true;
		} else if (is_opt(argv[i], "--legacy-p12")) {
			opt.legacy_p12 = true;
		} else if (is_opt(argv[i], "--mobileconfig") && i + 1 < argc &&
		           argv[i + 1][0] != '\0') {
			mobileconfig = argv[++i];
			opt.legacy_p12 = true; /* the only PKCS#12 format Apple devices import */
		} else if (is_opt(argv[i], "--rsa")) {
			opt.key_type = CERT_KEY_RSA_2048;
		} else {
			return cli_usage(noun, "cert issue takes ADDRESS --out DIR [--days D] "
			                       "[--p12-password-stdin] [--legacy-p12] [--rsa] "
			                       "[--mobileconfig FILE] "
			                       "(passwords are never taken from arguments)");
		}
	}
	if (opt.out_dir == NULL)
		return cli_usage(noun, "cert issue needs --out DIR (where the files go)");
	if (store_address_normalize(argv[1], &address) < 0) {
		cli_error("'%s' is not a valid address: give local@domain", argv[1]);
		return CLI_USAGE;
	}
	if (pw_stdin) {
		rc = read_password(pw, sizeof(pw));
		if (rc != CLI_OK)
			goto out;
		opt.p12_password = pw;
	}
	struct store *s = cli_store(cli);
	if (s == NULL) {
		rc = CLI_FAIL;
		goto out;
	}
	store_sync_init(&w);
	rc = cli_wait(&w, store_user_get(s, address, store_sync_users, &w));
	store_sync_done(&w);
	if (rc == -ENOENT) {
		cli_error("no such user %s: add it first with 'sealctl user add %s "
		          "--password-stdin'",
		          address, address);
		rc = CLI_FAIL;
		goto out;
	}
	if (rc < 0) {
		cli_error("looking up %s failed: %s", address, store_strerror(rc));
		rc = CLI_FAIL;
		goto out;
	}
	rc = ca_load(cli, &ca);
	if (rc == CLI_OK)
		rc = out_dir(opt.out_dir);
	if (rc != CLI_OK)
		goto out;
	if (cert_issue_client(ca, address, &opt, &is, &err) < 0) {
		cli_error("issuing a certificate for %s failed: %s", address, err);
		rc = CLI_FAIL;
		goto out;
	}
	rc = record(cli, &is, STORE_CERT_CLIENT);
	if (rc != CLI_OK) {
		unlink_issued(opt.out_dir, is.name, false);
		goto out;
	}
	char t[32];
	printf("issued a certificate for %s\n", is.name);
	printf("  serial      %s\n", is.serial);
	printf("  valid until %s\n", fmt_time(is.not_after, t));
	printf("  certificate %s/%s.crt\n", opt.out_dir, is.name);
	printf("  key         %s/%s.key (mode 0600)\n", opt.out_dir, is.name);
	printf("  PKCS#12     %s/%s.p12 (%s format%s)\n", opt.out_dir, is.name,
	       opt.legacy_p12 ? "legacy 3DES/SHA-1" : "modern AES-256",
	       opt.legacy_p12 ? ", for macOS, iOS and Android 12 or older" : "");
	if (mobileconfig != NULL) {
		char p12_path[4096];
		snprintf(p12_path, sizeof(p12_path), "%s/%s.p12", opt.out_dir, is.name);
		if (cli_mobileconfig_write(cli, is.name, p12_path, mobileconfig) != 0) {
			rc = CLI_FAIL;
			goto out;
		}
		printf("  profile     %s (Apple .mobileconfig, signed with %s; the device asks "
		       "for the PKCS#12 password)\n",
		       mobileconfig, cli->cfg->tls.certificate);
	}
	if (!pw_stdin)
		printf("PKCS#12 password: %s\n"
		       "  (shown only this once and stored nowhere: give it to the person by "
		       "another route than the file)\n",
		       is.p12_password);
	fflush(stdout);
	rc = CLI_OK;
out:
	explicit_bzero(pw, sizeof(pw));
	cert_issued_clear(&is);
	cert_ca_free(&ca);
	free(address);
	return rc;
}

static const char *status_of(const struct store_cert *c, time_t now)
{
	if (c->revoked_at != 0)
		return "revoked";
	if (c->not_after < now)
		return "expired";
	if (c->not_before > now)
		return "not-yet-valid";
	return "valid";
}

static int cmd_list(struct cli *cli, int argc, char **argv)
{
	unsigned days = 0;
	struct store_sync w;
	if (argc == 3 && is_opt(argv[1], "--expiring")) {
		int rc = parse_days("--expiring takes 1 to 36500 days", argv[2], &days);
		if (rc != CLI_OK)
			return rc;
	} else if (argc != 1) {
		return cli_usage(&cli_noun_cert, "cert list takes [--expiring DAYS]");
	}
	struct store *s = cli_store(cli);
	if (s == NULL)
		return CLI_FAIL;
	time_t now = time(NULL);
	store_sync_init(&w);
	int rc =
	    cli_wait(&w, store_cert_list(s, days > 0 ? (int64_t)now + (int64_t)days * 86400 : 0,
	                                 store_sync_certs, &w));
	if (rc < 0) {
		store_sync_done(&w);
		cli_error("listing certificates failed: %s", store_strerror(rc));
		return CLI_FAIL;
	}
	int wserial = 6, waddr = 7;
	for (size_t i = 0; i < w.certs.n; i++) {
		int ls = (int)strlen(w.certs.v[i].serial), la = (int)strlen(w.certs.v[i].address);
		wserial = ls > wserial ? ls : wserial;
		waddr = la > waddr ? la : waddr;
	}
	printf("%-*s  %-*s  %-20s  %-13s  %s\n", wserial, "SERIAL", waddr, "ADDRESS", "NOT-AFTER",
	       "STATUS", "KIND");
	for (size_t i = 0; i < w.certs.n; i++) {
		const struct store_cert *c = &w.certs.v[i];
		char t[32];
		/* --expiring lists what still works and soon will not. */
		if (days > 0 && c->not_after < now)
			continue;
		printf("%-*s  %-*s  %-20s  %-13s  %s\n", wserial, c->serial, waddr, c->address,
		       fmt_time((time_t)c->not_after, t), status_of(c, now),
		       c->kind == STORE_CERT_SERVER ? "server" : "client");
	}
	store_sync_done(&w);
	return CLI_OK;
}

static int cmd_revoke(struct cli *cli, int argc, char **argv)
{
	const struct cli_noun *noun = &cli_noun_cert;
	unsigned crl_days = CERT_CLI_CRL_DAYS;
	char serial[CERT_SERIAL_HEX_MAX + 1];
	char *address = NULL;
	struct cert_ca *ca = NULL;
	struct store_sync w;
	int rc;

	if (argc == 4 && is_opt(argv[2], "--crl-days")) {
		rc = parse_days("--crl-days takes 1 to 36500 days", argv[3], &crl_days);
		if (rc != CLI_OK)
			return rc;
	} else if (argc != 2) {
		return cli_usage(noun, "cert revoke takes SERIAL|ADDRESS [--crl-days D]");
	}
	const char *what = argv[1];
	if (strchr(what, '@') != NULL) {
		if (store_address_normalize(what, &address) < 0) {
			cli_error("'%s' is not a valid address: give local@domain", what);
			return CLI_USAGE;
		}
	} else if (cert_serial_normalize(what, serial) < 0) {
		return cli_usage(noun, "cert revoke takes a serial (hex, from 'cert list') or an "
		                       "address");
	}
	int lock = ca_lock(cli);
	if (lock < 0) {
		free(address);
		return CLI_FAIL;
	}
	/* Load the CA first: never mark a certificate revoked without being able to sign the
	 * CRL that says so. */
	rc = ca_load(cli, &ca);
	struct store *s = rc == CLI_OK ? cli_store(cli) : NULL;
	if (s == NULL) {
		rc = CLI_FAIL;
		goto out;
	}
	store_sync_init(&w);
	rc = cli_wait(&w, store_cert_revoke(s, address != NULL ? NULL : serial, address,
	                                    (int64_t)time(NULL), store_sync_certs, &w));
	if (rc == -EALREADY) {
		printf("certificate %s was already revoked: nothing changed\n", serial);
		rc = CLI_OK;
	} else if (rc == -ENOENT && address != NULL) {
		cli_error("%s has no valid certificate to revoke: see 'sealctl cert list'",
		          address);
		rc = CLI_FAIL;
	} else if (rc == -ENOENT) {
		cli_error("no certificate has serial %s: see 'sealctl cert list'", serial);
		rc = CLI_FAIL;
	} else if (rc < 0) {
		cli_error("revoking failed: %s: nothing was revoked, retry", store_strerror(rc));
		rc = CLI_FAIL;
	} else {
		uint64_t number = w.certs.crl_number;
		for (size_t i = 0; i < w.certs.n; i++) {
			printf("revoked %s (%s)\n", w.certs.v[i].serial, w.certs.v[i].address);
			/* Its published identity (GET /mobileconfig) is withdrawn with it. */
			char *pub = xasprintf("%s/profiles/%s.p12", cli->cfg->data_dir,
			                      w.certs.v[i].address);
			if (unlink(pub) == 0)
				printf("  withdrew %s\n", pub);
			free(pub);
		}
		fflush(stdout);
		size_t n = 0;
		char *path = NULL;
		rc = crl_write(cli, ca, number, crl_days, &n, &path);
		if (rc == CLI_OK) {
			crl_report(path, number, crl_days, n);
			printf("a running sealmaild picks the new CRL up by itself when the file "
			       "changes, or at once on SIGHUP (systemctl reload sealmail)\n");
		}
		free(path);
	}
	store_sync_done(&w);
out:
	cert_ca_free(&ca);
	free(address);
	close(lock);
	return rc;
}

static int cmd_crl(struct cli *cli, int argc, char **argv)
{
	unsigned days = CERT_CLI_CRL_DAYS;
	struct cert_ca *ca = NULL;
	if (argc == 3 && is_opt(argv[1], "--days")) {
		int rc = parse_days("--days takes 1 to 36500 days", argv[2], &days);
		if (rc != CLI_OK)
			return rc;
	} else if (argc != 1) {
		return cli_usage(&cli_noun_cert, "cert crl takes [--days D]");
	}
	int lock = ca_lock(cli);
	if (lock < 0)
		return CLI_FAIL;
	int rc = ca_load(cli, &ca);
	if (rc == CLI_OK)
		rc = crl_renew(cli, ca, days);
	if (rc == CLI_OK)
		rc = ca_publish(cli, ca, false);
	cert_ca_free(&ca);
	close(lock);
	return rc;
}

static int cmd_server(struct cli *cli, int argc, char **argv)
{
	const struct cli_noun *noun = &cli_noun_cert;
	const char *ips[CERT_CLI_IPS_MAX];
	size_t n_ips = 0;
	unsigned days = CERT_CLI_SERVER_DAYS;
	bool client_auth = false;
	const char *dir = NULL;
	struct cert_ca *ca = NULL;
	struct cert_issued is = {0};
	const char *err = NULL;
	int rc;

	if (argc < 2 || argv[1][0] == '-')
		return cli_usage(noun, "cert server takes HOSTNAME --out DIR");
	for (int i = 2; i < argc; i++) {
		if (is_opt(argv[i], "--days") && i + 1 < argc) {
			rc = parse_days("--days takes 1 to 36500 days", argv[++i], &days);
			if (rc != CLI_OK)
				return rc;
		} else if (is_opt(argv[i], "--out") && i + 1 < argc && argv[i + 1][0] != '\0') {
			dir = argv[++i];
		} else if (is_opt(argv[i], "--ip") && i + 1 < argc) {
			if (n_ips == CERT_CLI_IPS_MAX)
				return cli_usage(noun, "cert server takes at most 16 --ip");
			ips[n_ips++] = argv[++i];
		} else if (is_opt(argv[i], "--peer") || is_opt(argv[i], "--client-auth")) {
			/* One CA, distinct purposes: a server certificate that also says
			 * clientAuth identifies an organisation server to its peers (by its DNS
			 * name; it carries no e-mail identity, so it never logs a user in).
			 * --client-auth is the older name. */
			client_auth = true;
		} else {
			return cli_usage(noun,
			                 "cert server takes HOSTNAME --out DIR [--ip ADDR]... "
			                 "[--days D] [--peer]");
		}
	}
	if (dir == NULL)
		return cli_usage(noun, "cert server needs --out DIR (where the files go)");
	rc = ca_load(cli, &ca);
	if (rc == CLI_OK)
		rc = out_dir(dir);
	if (rc != CLI_OK)
		goto out;
	if (cert_issue_server(ca, argv[1], ips, n_ips, days, client_auth, dir, &is, &err) < 0) {
		cli_error("issuing a server certificate for %s failed: %s", argv[1], err);
		rc = CLI_FAIL;
		goto out;
	}
	rc = record(cli, &is, STORE_CERT_SERVER);
	if (rc != CLI_OK) {
		unlink_issued(dir, is.name, true);
		goto out;
	}
	char t[32];
	printf("issued a server certificate for %s", is.name);
	for (size_t i = 0; i < n_ips; i++)
		printf(" %s", ips[i]);
	printf("\n  serial      %s\n", is.serial);
	printf("  valid until %s\n", fmt_time(is.not_after, t));
	printf("  certificate %s/server.crt (followed by the CA certificate)\n", dir);
	printf("  key         %s/server.key (mode 0600)\n", dir);
	printf("  usage       serverAuth%s\n",
	       client_auth ? " and clientAuth (a peer certificate: relay.certificate, and the "
	                     "name for listeners[].peers)"
	                   : "");
	if (cli->cfg->tls.client_ca != NULL)
		printf("clients must trust the CA certificate (%s)\n", cli->cfg->tls.client_ca);
	else
		printf("clients must trust %s/" CERT_CA_CRT_FILE "\n", ca_dir(cli));
out:
	cert_issued_clear(&is);
	cert_ca_free(&ca);
	return rc;
}

static int cert_run(struct cli *cli, int argc, char **argv)
{
	if (strcmp(argv[0], "init-ca") == 0)
		return cmd_init_ca(cli, argc, argv);
	if (strcmp(argv[0], "issue") == 0)
		return cmd_issue(cli, argc, argv);
	if (strcmp(argv[0], "list") == 0)
		return cmd_list(cli, argc, argv);
	if (strcmp(argv[0], "revoke") == 0)
		return cmd_revoke(cli, argc, argv);
	if (strcmp(argv[0], "crl") == 0)
		return cmd_crl(cli, argc, argv);
	if (strcmp(argv[0], "server") == 0)
		return cmd_server(cli, argc, argv);
	return cli_usage(&cli_noun_cert, "unknown verb for cert");
}
