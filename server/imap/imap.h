#ifndef SEALMAIL_IMAP_H
#define SEALMAIL_IMAP_H
/*
 * The IMAP listener's protocol handler: one client session from the greeting to LOGOUT
 * (imap_session.c). It speaks only through conn.h, reaches the store through
 * conn_services(), and watches the selected mailbox through notify.h. open writes the
 * greeting: PREAUTH when the listener allows certificate login and the certificate names a
 * user, then asynchronously.
 */
#include "server/conn.h"

extern const struct proto_handler imap_proto_handler;

#endif
