/*
 * GET /mobileconfig: the signed Apple configuration profile of the user who asks
 * (certs/mobileconfig.h): the mail account on this server's IMAP and submission listeners
 * and, when sealctl published the user's PKCS#12 (cert issue --mobileconfig), that
 * identity too. The user proves who they are with their verified client certificate, or
 * with their password over HTTP Basic authentication (RFC 7617), checked by the same
 * login code as the mail protocols (throttling, log line, certificate policy). Anyone
 * else gets 401 with a Basic challenge.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "certs/mobileconfig.h"
#include "common/base64.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "server/auth/login.h"
#include "server/https/https_private.h"
#include "server/services.h"
#include "storage/store.h"

#define PROFILE_TYPE "application/x-apple-aspen-config"
#define PROFILE_HEADERS                                                                            \
	"Cache-Control: no-store\r\nContent-Disposition: attachment; "                             \
	"filename=\"mail.mobileconfig\"\r\n"
#define CHALLENGE "WWW-Authenticate: Basic realm=\"sealmail\", charset=\"UTF-8\"\r\n"
#define FILE_MAX  (1 << 20)

static void unauthorized(struct https_session *s, const char *why)
{
	char text[160];
	int n = snprintf(text, sizeof(text), "401 Unauthorized: %s\n", why);
	https_reply(s, 401, "text/plain; charset=utf-8", text, (size_t)n, CHALLENGE, false);
}

/* Reads a whole small file: 0, or a negative errno (-ENOENT when missing). */
static int slurp(const char *path, char **data_r, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	char *data = xmalloc(FILE_MAX + 1);
	size_t len = 0;
	ssize_t n;
	while (len < FILE_MAX && (n = read(fd, data + len, FILE_MAX - len)) > 0)
		len += (size_t)n;
	close(fd);
	data[len] = '\0';
	*data_r = data;
	*len_r = len;
	return 0;
}

/* Builds, signs and sends the profile of address (a user the caller has authenticated). */
static void profile_send(struct https_session *s, const char *address)
{
	struct conn *c = https_conn(s);
	const struct config *cfg = conn_config(c);
	struct https_server imap[4], smtp[4];
	size_t n_imap = https_client_servers(c, CFG_PROTO_IMAP, imap, 4);
	size_t n_smtp = https_client_servers(c, CFG_PROTO_SUBMISSION, smtp, 4);
	char *p12 = NULL, *cert = NULL, *key = NULL;
	size_t p12_len = 0, cert_len = 0, key_len = 0;
	char *p12_path = xasprintf("%s/profiles/%s.p12", cfg->data_dir, address);
	(void)slurp(p12_path, &p12, &p12_len); /* none published: the account alone */
	free(p12_path);
	struct buf plist;
	buf_init(&plist, FILE_MAX * 2);
	unsigned char *der = NULL;
	size_t der_len = 0;
	const char *err = NULL;
	struct mobileconfig mc = {.address = address,
	                          .host = cfg->hostname,
	                          .imap_port = n_imap > 0 ? imap[0].port : 0,
	                          .smtp_port = n_smtp > 0 ? smtp[0].port : 0,
	                          .p12 = (const unsigned char *)p12,
	                          .p12_len = p12_len};
	int rc = slurp(cfg->tls.certificate, &cert, &cert_len);
	if (rc == 0)
		rc = slurp(cfg->tls.key, &key, &key_len);
	if (rc == 0)
		rc = mobileconfig_build(&mc, &plist, &err);
	if (rc == 0)
		rc = mobileconfig_sign(cert, cert_len, key, key_len, plist.data, plist.len, &der,
		                       &der_len, &err);
	if (rc < 0) {
		log_event(LOGL_ERROR, "session=%s proto=https event=profile_failed reason=\"%s\"",
		          conn_id(c), err != NULL ? err : strerror(-rc));
		https_reply_error(s, 500, false);
	} else {
		https_reply(s, 200, PROFILE_TYPE, (const char *)der, der_len, PROFILE_HEADERS,
		            false);
	}
	mobileconfig_free(der);
	buf_free(&plist);
	if (key != NULL)
		explicit_bzero(key, key_len);
	free(key);
	free(cert);
	free(p12);
}

/* ---- by client certificate ---- */

struct cert_check {
	char *address;
	int rc;
};

static void cert_checked_reply(struct https_session *s, void *arg)
{
	struct cert_check *k = arg;
	if (k->rc == 0)
		profile_send(s, k->address);
	else
		unauthorized(s, "the certificate's user is unknown or disabled");
	free(k->address);
	free(k);
}

struct cert_lookup {
	struct conn *c;
	struct cert_check *k;
};

static void cert_lookup_done(void *ctx, int rc, struct store_users *res)
{
	struct cert_lookup *l = ctx;
	l->k->rc = rc == 0 && res->n == 1 && !res->v[0].disabled ? 0 : -EACCES;
	if (!https_async_end(l->c, cert_checked_reply, l->k)) {
		free(l->k->address);
		free(l->k);
	}
	free(l);
}

/* ---- by password ---- */

static void password_checked(void *sess, const struct auth_login_result *r)
{
	struct https_session *s = sess;
	if (r->status == AUTH_LOGIN_OK)
		profile_send(s, r->user);
	else if (r->status == AUTH_LOGIN_TEMPFAIL)
		https_reply_error(s, 503, false);
	else
		unauthorized(s, "wrong user name or password");
}

void https_profile(struct https_session *s, const struct https_request *req)
{
	struct conn *c = https_conn(s);
	struct services *sv = conn_services(c);
	if (sv == NULL || sv->store == NULL || sv->login == NULL) {
		https_reply_error(s, 503, false);
		return;
	}
	const char *identity = conn_cert_identity(c);
	if (identity != NULL) {
		struct cert_lookup *l = xcalloc(1, sizeof(*l));
		l->c = c;
		l->k = xcalloc(1, sizeof(*l->k));
		l->k->address = xstrdup(identity);
		https_async_begin(s);
		if (store_user_get(sv->store, identity, cert_lookup_done, l) < 0) {
			l->k->rc = -EIO;
			https_async_end(c, cert_checked_reply, l->k);
			free(l);
		}
		return;
	}
	const char *auth = https_request_header(req, "Authorization");
	if (auth == NULL || strncasecmp(auth, "Basic ", 6) != 0) {
		unauthorized(s, "log in with your mail address and password, or a client "
		                "certificate");
		return;
	}
	const char *b64 = auth + 6;
	while (*b64 == ' ')
		b64++;
	size_t len = strlen(b64);
	unsigned char *dec = xmalloc(base64_decoded_max(len) + 1);
	long n = base64_decode(b64, len, dec);
	char *colon = n > 0 ? memchr(dec, ':', (size_t)n) : NULL;
	if (n <= 0 || colon == NULL || memchr(dec, '\0', (size_t)n) != NULL) {
		explicit_bzero(dec, base64_decoded_max(len) + 1);
		free(dec);
		https_reply(s, 400, "text/plain; charset=utf-8",
		            "400 Bad Request: malformed "
		            "Authorization\n",
		            41, NULL, false);
		return;
	}
	dec[n] = '\0';
	*colon = '\0';
	sv->login(c, "PLAIN", (const char *)dec, colon + 1, password_checked);
	explicit_bzero(dec, (size_t)n);
	free(dec);
}
