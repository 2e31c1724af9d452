/*
 * ID (RFC 2971): the server names itself; what the client says of itself is not kept.
 */
#include "server/imap/imap_private.h"

void imap_cmd_id(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	conn_write_str(cl->c, "* ID (\"name\" \"sealmail\" \"version\" \"0.1.0\")\r\n");
	imap_done(cl, "OK", "ID completed");
}
