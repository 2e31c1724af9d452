#ifndef SEALMAIL_HTTPS_H
#define SEALMAIL_HTTPS_H
/*
 * The HTTPS side (docs/https.md): HTTP/1.1 over implicit TLS on `protocol: https`
 * listeners, for client autoconfiguration (Thunderbird autoconfig, Outlook autodiscover)
 * and /healthz. It is a struct proto_handler on the same connection layer as the mail
 * protocols (conn.h: TLS, client-certificate policy, per-address and idle limits); input
 * is taken as a byte stream (proto_handler.raw), parsed with libhttp-parser.
 *
 * Nothing here logs anyone in: a client certificate, when the listener asks for one, only
 * decides whether the handshake succeeds and is named in the access log.
 */
#include "server/conn.h"

extern const struct proto_handler https_proto_handler;

#endif
