/*
 * libFuzzer target: one whole IMAP session (imap_proto_handler, which hands the session to
 * the engine of server/imap/imap_client.c) against the fake conn of the unit tests
 * (tests/unit/server/conn_fake.c, imap_fakes.c). The fakes have no store and answer every
 * login "failed", so this covers the not-authenticated state: the command reader, tags,
 * literals, STARTTLS, LOGIN/AUTHENTICATE exchanges and the limits. The first byte picks
 * STARTTLS or implicit TLS, a client certificate identity and how the session ends; the
 * rest is split at LF into lines (a line that starts with byte 0xff stands for an
 * over-long one). STARTTLS completes at once; bytes the session asks for (literals) are
 * taken from the input, as the real conn does.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "config/config.h"
#include "server/conn.h"
#include "server/imap/imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* tests/unit/server/conn_fake.c */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0];
	data++;
	size--;
	log_set_level(LOGL_ERROR);

	static char *domains[] = {"mail.test", "example.org"};
	struct config cfg;
	struct cfg_listener listener;
	memset(&cfg, 0, sizeof(cfg));
	memset(&listener, 0, sizeof(listener));
	cfg.hostname = "mail.test";
	cfg.domains = domains;
	cfg.n_domains = 2;
	cfg.limits.message_size = 1000;
	cfg.limits.commands = 100;
	cfg.limits.errors = 10;
	cfg.limits.line_length = 2048;
	cfg.limits.line_length_preauth = 512;
	listener.protocol = CFG_PROTO_IMAP;
	listener.tls = (mode & 2) != 0 ? CFG_TLS_IMPLICIT : CFG_TLS_STARTTLS;
	/* The identity is set after open, so a PREAUTH greeting (which needs the store) is
	 * never given; AUTHENTICATE EXTERNAL is refused by imap_fakes.c. */
	listener.certificate_login = (mode & 8) != 0 ? CFG_CERT_LOGIN_PREAUTH : CFG_CERT_LOGIN_NONE;

	struct conn *c =
	    fake_conn_open(&imap_proto_handler, &cfg, &listener, listener.tls == CFG_TLS_IMPLICIT);
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
	return 0;
}
