#ifndef SEALMAIL_SMTP_H
#define SEALMAIL_SMTP_H
/* The SMTP listeners' protocol handler (submission and smtp listeners alike; the session
 * reads conn_listener(c)->protocol for the differences). */
#include "server/conn.h"

extern const struct proto_handler smtp_proto_handler;

#endif
