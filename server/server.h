#ifndef SEALMAIL_SERVER_H
#define SEALMAIL_SERVER_H
/*
 * sealmaild's top level: builds the TLS context, opens the listeners, handles SIGHUP
 * (rebuild the TLS context, swap it in) and SIGTERM/SIGINT (stop accepting, close idle
 * connections, finish), and runs the loop until everything is closed.
 */
#include <stdint.h>

#include "config/config.h"

/* Runs the server on cfg (borrowed; must outlive the call). Returns 0 after a clean
 * stop, or 1 when it could not start (the reason is logged). */
int server_run(struct config *cfg);

/* Open files the server may hold at once with every connection of limits.connections in
 * use: one per connection plus what it needs for itself (listeners, the database and its
 * WAL for each SQLite connection, spool files, relay connections, DNS, the event loop's
 * own, a margin). server_run raises its soft RLIMIT_NOFILE to the hard limit and warns
 * when this does not fit; `sealmaild --check` warns against the hard limit. */
uint64_t server_open_files_needed(const struct config *cfg);

#endif
