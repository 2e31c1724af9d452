#include "fuzz/fuzz_session.h"

#include <stdbool.h>
#include <string.h>

#include "common/log.h"

/* tests/unit/support/conn_fake.c */
struct conn *fake_conn_open(const struct proto_handler *h, const struct config *cfg,
                            const struct cfg_listener *l, bool tls);
void fake_conn_line_cr(struct conn *c, const char *line, size_t len, bool has_cr);
void fake_conn_too_long(struct conn *c);
void fake_conn_tls_ready(struct conn *c);
void fake_conn_timeout(struct conn *c);
void fake_conn_shutdown(struct conn *c);
unsigned fake_conn_start_tls_calls(const struct conn *c);
bool fake_conn_closed(const struct conn *c);
void fake_conn_free(struct conn *c);
void fake_conn_set_cert_identity(struct conn *c, const char *identity);
size_t fake_conn_bytes(struct conn *c, const char *data, size_t len);

void fuzz_session_config(struct config *cfg, struct cfg_listener *l, enum cfg_protocol p,
                         unsigned mode)
{
	static char *domains[] = {"mail.test", "example.org"};
	memset(cfg, 0, sizeof(*cfg));
	memset(l, 0, sizeof(*l));
	cfg->hostname = "mail.test";
	cfg->domains = domains;
	cfg->n_domains = 2;
	cfg->limits.message_size = 1000;
	cfg->limits.recipients = 5;
	cfg->limits.commands = 100;
	cfg->limits.errors = 10;
	cfg->limits.line_length = 2048;
	cfg->limits.line_length_preauth = 512;
	l->protocol = p;
	l->tls = (mode & 2) != 0 ? CFG_TLS_IMPLICIT : CFG_TLS_STARTTLS;
	l->certificate_login = (mode & 8) != 0 ? CFG_CERT_LOGIN_PREAUTH : CFG_CERT_LOGIN_NONE;
	log_set_level(LOGL_ERROR);
}

void fuzz_session_run(const struct proto_handler *h, const struct config *cfg,
                      const struct cfg_listener *l, unsigned mode, const uint8_t *data, size_t size)
{
	struct conn *c = fake_conn_open(h, cfg, l, l->tls == CFG_TLS_IMPLICIT);
	if ((mode & 4) != 0)
		fake_conn_set_cert_identity(c, "alice@example.org");
	unsigned tls_calls = 0;
	size_t off = 0;
	while (off < size && !fake_conn_closed(c)) {
		size_t took = fake_conn_bytes(c, (const char *)data + off, size - off);
		if (took > 0) {
			off += took;
			continue;
		}
		const uint8_t *lf = memchr(data + off, '\n', size - off);
		size_t len = lf != NULL ? (size_t)(lf - (data + off)) : size - off;
		bool has_cr = len > 0 && data[off + len - 1] == '\r';
		size_t text = has_cr ? len - 1 : len;
		if (text > 0 && data[off] == 0xff)
			fake_conn_too_long(c);
		else
			fake_conn_line_cr(c, (const char *)data + off, text, has_cr);
		off += len + (lf != NULL ? 1 : 0);
		if (fake_conn_start_tls_calls(c) != tls_calls) {
			tls_calls = fake_conn_start_tls_calls(c);
			fake_conn_tls_ready(c);
		}
	}
	if ((mode & 16) != 0)
		fake_conn_timeout(c);
	else if ((mode & 32) != 0)
		fake_conn_shutdown(c);
	fake_conn_free(c);
}
