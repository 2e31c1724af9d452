#ifndef SEALMAIL_SERVER_H
#define SEALMAIL_SERVER_H
/*
 * sealmaild's top level: builds the TLS context, opens the listeners, handles SIGHUP
 * (rebuild the TLS context, swap it in) and SIGTERM/SIGINT (stop accepting, close idle
 * connections, finish), and runs the loop until everything is closed.
 */
#include "config/config.h"

/* Runs the server on cfg (borrowed; must outlive the call). Returns 0 after a clean
 * stop, or 1 when it could not start (the reason is logged). */
int server_run(struct config *cfg);

#endif
