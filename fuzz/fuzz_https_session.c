/*
 * libFuzzer target: one whole HTTPS connection (https_proto_handler, server/https/https.h)
 * against the fake conn of the unit tests (tests/unit/support/conn_fake.c): the request
 * parser (libhttp-parser and the limits around it), routing, autoconfig and autodiscover
 * documents built from what the client sent (query and POX body), keep-alive and
 * pipelining. The session gets no store, so /healthz answers 503 at once. The first byte
 * picks how the rest is cut into reads (0: whole; else pieces of that many bytes), as TLS
 * records would cut it.
 */
#include <stdbool.h>
#include <string.h>

#include "common/log.h"
#include "config/config.h"
#include "server/https/https.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* tests/unit/support/conn_fake.c */
struct conn *fake_conn_open(const struct proto_handler *h, const struct config *cfg,
                            const struct cfg_listener *l, bool tls);
void fake_conn_raw(struct conn *c, const void *data, size_t len);
void fake_conn_free(struct conn *c);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *domains[] = {"corp.example", "example.org"};
	static struct cfg_listener listeners[4];
	struct config cfg;
	if (size < 1)
		return 0;
	log_set_level(LOGL_ERROR);
	memset(&cfg, 0, sizeof(cfg));
	cfg.hostname = "mail.corp.example";
	cfg.domains = domains;
	cfg.n_domains = 2;
	listeners[0] = (struct cfg_listener){.protocol = CFG_PROTO_IMAP, .port = 993};
	listeners[1] =
	    (struct cfg_listener){.protocol = CFG_PROTO_POP3, .port = 110, .tls = CFG_TLS_STARTTLS};
	listeners[2] = (struct cfg_listener){.protocol = CFG_PROTO_SUBMISSION, .port = 465};
	listeners[3] = (struct cfg_listener){.protocol = CFG_PROTO_HTTPS, .port = 443};
	cfg.listeners = listeners;
	cfg.n_listeners = 4;
	size_t piece = data[0];
	data++;
	size--;
	struct conn *c = fake_conn_open(&https_proto_handler, &cfg, &listeners[3], true);
	for (size_t off = 0; off < size;) {
		size_t n = piece == 0 || piece > size - off ? size - off : piece;
		fake_conn_raw(c, data + off, n);
		off += n;
	}
	fake_conn_free(c);
	return 0;
}
