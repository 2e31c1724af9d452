/*
 * IDLE (RFC 2177): the command stays running, with its tag, while updates go out as they
 * come (imap_sync_then); the session hands every line to imap_idle_line until DONE.
 */
#include <strings.h>

#include "common/metrics.h"
#include "server/imap/imap_private.h"

void imap_cmd_idle(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	cl->idling = true;
	metrics_gauge_add(METRIC_IMAP_IDLE, 1);
	conn_write_str(cl->c, "+ idling\r\n");
	/* Stay "busy" (the tag is kept) but take lines: DONE ends it. */
	if (cl->changed)
		imap_sync_then(cl, NULL);
	else
		imap_notify_pump(cl); /* NOTIFY's waiting notifications */
}

void imap_idle_line(struct imap_client *cl, const char *line, size_t len)
{
	cl->idling = false;
	metrics_gauge_add(METRIC_IMAP_IDLE, -1);
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0)
		imap_done(cl, "OK", "IDLE terminated");
	else
		imap_done(cl, "BAD", "Expected DONE");
}
