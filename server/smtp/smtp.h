#ifndef SEALMAIL_SMTP_H
#define SEALMAIL_SMTP_H
/*
 * The SMTP session (RFC 5321, RFC 3207 STARTTLS, RFC 2034 enhanced status codes) as a
 * struct proto_handler. One handler serves both listener protocols: "submission" (RFC
 * 6409: people's mail clients, AUTH offered and required for MAIL) and "smtp" (the
 * organisation's own servers: no AUTH, local domains only). The session reads which one it
 * is from conn_listener(c)->protocol.
 *
 * It talks to the peer only through conn.h, and changes state only in smtp_set_state()
 * (smtp_session.c). Commands live in one table; see smtp_session.c.
 */
#include "server/conn.h"

extern const struct proto_handler smtp_proto_handler;

#endif
