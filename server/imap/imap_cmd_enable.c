/*
 * ENABLE (RFC 5161): CONDSTORE, QRESYNC, UTF8=ACCEPT and IMAP4rev2, each reported once.
 */
#include "server/imap/imap_private.h"

void imap_cmd_enable(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	struct buf o;
	buf_init(&o, SIZE_MAX);
	buf_append_str(&o, "* ENABLED");
	for (size_t i = 0; i < n; i++) {
		if (imap_arg_is(&a[i], "CONDSTORE") && !cl->condstore) {
			cl->condstore = true;
			buf_append_str(&o, " CONDSTORE");
		} else if (imap_arg_is(&a[i], "QRESYNC") && !cl->qresync) {
			cl->qresync = cl->condstore = true;
			buf_append_str(&o, " QRESYNC");
		} else if (imap_arg_is(&a[i], "UTF8=ACCEPT") && !cl->utf8) {
			cl->utf8 = true;
			buf_append_str(&o, " UTF8=ACCEPT");
		} else if (imap_arg_is(&a[i], "IMAP4rev2") && !cl->rev2) {
			cl->rev2 = true;
			buf_append_str(&o, " IMAP4rev2");
		}
	}
	buf_append_str(&o, "\r\n");
	conn_write(cl->c, o.data, o.len);
	buf_free(&o);
	imap_done(cl, "OK", "ENABLE completed");
}
