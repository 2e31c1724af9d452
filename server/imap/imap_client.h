#ifndef SEALMAIL_IMAP_CLIENT_H
#define SEALMAIL_IMAP_CLIENT_H
/*
 * The IMAP command engine: one client session from the greeting to LOGOUT. It speaks
 * only through conn.h, reaches the store through conn_services(), and watches the
 * selected mailbox through notify.h. imap_client_proto is a complete proto_handler; the
 * front door (imap_session.c) may use it directly or delegate to the functions below.
 */
#include <stdbool.h>
#include <stddef.h>

#include "server/conn.h"

struct imap_client;

extern const struct proto_handler imap_client_proto;

/* Creates the session and writes the greeting (PREAUTH when the listener allows
 * certificate login and the certificate names a user: then asynchronously). */
struct imap_client *imap_client_new(struct conn *c);
void imap_client_line(struct imap_client *cl, char *line, size_t len, bool has_cr);
void imap_client_bytes(struct imap_client *cl, const char *data, size_t len, bool last);
void imap_client_line_too_long(struct imap_client *cl);
void imap_client_timeout(struct imap_client *cl);
void imap_client_shutdown(struct imap_client *cl, enum conn_goodbye why);
void imap_client_free(struct imap_client *cl);

#endif
