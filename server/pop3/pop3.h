#ifndef SEALMAIL_POP3_H
#define SEALMAIL_POP3_H
/*
 * The POP3 session (RFC 1939, CAPA RFC 2449, STLS RFC 2595, response codes RFC 3206) as a
 * struct proto_handler: greeting, CAPA, STLS, NOOP, QUIT and the refusals before TLS and
 * before login. The login (pop3_auth.h) and the maildrop (pop3_mail.h) plug
 * their handlers into the same command table.
 *
 * Talks to the peer only through conn.h; changes state only in pop3_set_state()
 * (pop3_session.c).
 */
#include "server/conn.h"

extern const struct proto_handler pop3_proto_handler;

#endif
