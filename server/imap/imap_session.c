/*
 * The IMAP front door. The whole session, greeting to LOGOUT (including what is refused
 * before TLS), is the command engine in imap_client.c; the listener table names this
 * handler so that the engine can be swapped or wrapped without touching listener.c.
 */
#include "server/imap/imap.h"
#include "server/imap/imap_client.h"

static void *imap_open(struct conn *c)
{
	return imap_client_proto.open(c);
}

static void imap_line(void *sess, char *line, size_t len, bool has_cr)
{
	imap_client_proto.line(sess, line, len, has_cr);
}

static void imap_too_long(void *sess)
{
	imap_client_proto.line_too_long(sess);
}

static void imap_bytes(void *sess, const char *data, size_t len, bool last)
{
	imap_client_proto.bytes(sess, data, len, last);
}

static void imap_tls_ready(void *sess)
{
	imap_client_proto.tls_ready(sess);
}

static void imap_timeout(void *sess)
{
	imap_client_proto.timeout(sess);
}

static void imap_shutdown(void *sess, enum conn_goodbye why)
{
	imap_client_proto.shutdown(sess, why);
}

static void imap_close(void *sess)
{
	imap_client_proto.close(sess);
}

const struct proto_handler imap_proto_handler = {
    .name = "imap",
    .open = imap_open,
    .line = imap_line,
    .line_too_long = imap_too_long,
    .bytes = imap_bytes,
    .tls_ready = imap_tls_ready,
    .timeout = imap_timeout,
    .shutdown = imap_shutdown,
    .close = imap_close,
};
