/*
 * sealctl cert issue ... --mobileconfig FILE: the signed Apple profile of the account and
 * the certificate just issued (certs/mobileconfig.h), from the configured host name, the
 * IMAP and submission listeners and the server certificate.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certs/mobileconfig.h"
#include "cli/cli_private.h"
#include "common/xmalloc.h"

/* The port clients should use for p: an implicit-TLS listener first, else STARTTLS; 0. */
unsigned cli_client_port(const struct config *cfg, enum cfg_protocol p)
{
	unsigned starttls = 0;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];
		if (l->protocol != p || l->port == 0)
			continue;
		if (l->tls == CFG_TLS_IMPLICIT)
			return l->port;
		if (starttls == 0)
			starttls = l->port;
	}
	return starttls;
}

static int slurp(const char *path, size_t max, char **data_r, size_t *len_r)
{
	FILE *f = fopen(path, "rbe");
	if (f == NULL)
		return -errno;
	char *data = xmalloc(max + 1);
	size_t n = fread(data, 1, max + 1, f);
	int err = ferror(f) ? -EIO : 0;
	fclose(f);
	if (err == 0 && n > max)
		err = -EFBIG;
	if (err < 0) {
		free(data);
		return err;
	}
	data[n] = '\0';
	*data_r = data;
	*len_r = n;
	return 0;
}

/* The PKCS#12 goes to data_dir/profiles/ADDRESS.p12 too, for GET /mobileconfig on an https
 * listener: encrypted with its password, which the server never has; owned like data_dir
 * (sealctl may run as root, sealmaild as its own user). */
static int publish_p12(struct cli *cli, const char *address, const char *p12, size_t len)
{
	struct stat dst;
	char *dir = xasprintf("%s/profiles", cli->cfg->data_dir);
	char *path = xasprintf("%s/%s.p12", dir, address);
	char *tmp = xasprintf("%s.tmp", path);
	int rc = 1;
	if (stat(cli->cfg->data_dir, &dst) < 0 || (mkdir(dir, 0700) < 0 && errno != EEXIST)) {
		cli_error("cannot publish the identity in %s: %s", dir, strerror(errno));
		goto out;
	}
	if (chown(dir, dst.st_uid, dst.st_gid) < 0 && geteuid() == 0)
		goto fail;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	bool ok = write(fd, p12, len) == (ssize_t)len && fsync(fd) == 0 &&
	          (fchown(fd, dst.st_uid, dst.st_gid) == 0 || geteuid() != 0);
	close(fd);
	if (!ok || rename(tmp, path) < 0)
		goto fail;
	printf("  published   %s (for GET /mobileconfig on an https listener)\n", path);
	rc = 0;
	goto out;
fail:
	cli_error("cannot publish the identity at %s: %s", path, strerror(errno));
	unlink(tmp);
out:
	free(tmp);
	free(path);
	free(dir);
	return rc;
}

int cli_mobileconfig_write(struct cli *cli, const char *address, const char *p12_path,
                           const char *out_path)
{
	const struct config *cfg = cli->cfg;
	char *p12 = NULL, *cert = NULL, *key = NULL;
	size_t p12_len = 0, cert_len = 0, key_len = 0;
	struct buf plist;
	buf_init(&plist, 16 * 1024 * 1024);
	unsigned char *der = NULL;
	size_t der_len = 0;
	const char *err = NULL;
	int rc = 1;
	if (slurp(p12_path, 1 << 20, &p12, &p12_len) < 0) {
		cli_error("cannot read %s: %s", p12_path, strerror(errno));
		goto out;
	}
	if (slurp(cfg->tls.certificate, 1 << 20, &cert, &cert_len) < 0 ||
	    slurp(cfg->tls.key, 1 << 20, &key, &key_len) < 0) {
		cli_error("cannot read the server certificate %s or key %s (tls.certificate, "
		          "tls.key in %s), which sign the profile",
		          cfg->tls.certificate, cfg->tls.key, cli->config_path);
		goto out;
	}
	struct mobileconfig mc = {.address = address,
	                          .host = cfg->hostname,
	                          .imap_port = cli_client_port(cfg, CFG_PROTO_IMAP),
	                          .smtp_port = cli_client_port(cfg, CFG_PROTO_SUBMISSION),
	                          .p12 = (const unsigned char *)p12,
	                          .p12_len = p12_len};
	if (mobileconfig_build(&mc, &plist, &err) < 0) {
		cli_error("cannot make the profile: %s (is there an imap listener in %s?)", err,
		          cli->config_path);
		goto out;
	}
	if (mobileconfig_sign(cert, cert_len, key, key_len, plist.data, plist.len, &der, &der_len,
	                      &err) < 0) {
		cli_error("cannot sign the profile with %s: %s", cfg->tls.certificate, err);
		goto out;
	}
	/* It holds the key (encrypted with the PKCS#12 password): 0600, as the .p12. */
	int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, der, der_len) != (ssize_t)der_len || fsync(fd) < 0) {
		cli_error("cannot write %s: %s", out_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	rc = publish_p12(cli, address, p12, p12_len);
out:
	mobileconfig_free(der);
	buf_free(&plist);
	if (key != NULL)
		explicit_bzero(key, key_len);
	free(key);
	free(cert);
	free(p12);
	return rc;
}
