/*
 * COMPRESS (RFC 4978): DEFLATE for the rest of the session. A command-auth command (RFC
 * 4978 5): before login the dispatcher refuses it like any other such command.
 *
 * The tagged OK is the last thing sent uncompressed, so it is sent at once, without the
 * pending untagged updates imap_done may send before it (they follow, compressed, with the
 * next command). Compression can be on only once: a second COMPRESS gets NO
 * [COMPRESSIONACTIVE] (section 3: the same mechanism is already active), and the client
 * must not turn anything on.
 */
#include "server/imap/imap_private.h"

void imap_cmd_compress(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	if (n != 1 || a[0].type != IMAP_ARG_ATOM) {
		imap_done(cl, "BAD", "Expected COMPRESS DEFLATE");
		return;
	}
	if (!imap_arg_is(&a[0], "DEFLATE")) {
		imap_done(cl, "BAD", "Unknown compression mechanism");
		return;
	}
	if (conn_is_compressed(cl->c)) {
		imap_done(cl, "NO", "[COMPRESSIONACTIVE] DEFLATE is already active");
		return;
	}
	if (!conn_is_tls(cl->c)) {
		/* Cannot happen: nobody logs in before TLS. */
		imap_done(cl, "NO", "Compression is offered only with TLS");
		return;
	}
	imap_done_now(cl, "OK", "DEFLATE active");
	/* The checks above leave no reason to fail; should it anyway, the client would
	 * compress and we would not: end the session rather than misread it. */
	if (conn_compress_start(cl->c) < 0) {
		conn_write_str(cl->c, "* BYE Internal error\r\n");
		conn_close(cl->c, "compress failed");
	}
}
