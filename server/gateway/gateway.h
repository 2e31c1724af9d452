#ifndef SEALMAIL_GATEWAY_H
#define SEALMAIL_GATEWAY_H
/*
 * Gateway listeners (protocol: gateway, docs/gateway.md): TLS, with the listener's client
 * certificate policy, in front of an older plaintext mail server (listeners[].backend).
 * The session is a byte relay on conn.h's raw input and half-close, with an outconn
 * (outconn.h) to the backend:
 * - tls: starttls: the gateway answers the greeting and the STARTTLS/STLS exchange
 *   itself (gateway_dance.h); what the client pipelined after STARTTLS is discarded by
 *   the conn; after the handshake the backend is connected and its greeting dropped;
 * - tls: implicit: the backend is connected after the handshake and everything is
 *   relayed, its greeting included;
 * - proxy_protocol: v2 sends a PROXY v2 header first (proxy_v2.h);
 * - back-pressure both ways: neither side is read while the other has more than
 *   GATEWAY_HIGH bytes queued; half-close passes through (EOF from the client becomes a
 *   FIN to the backend after its queue, the backend's EOF close_notify and FIN);
 * - limits.gateway_idle_timeout (no byte either way) and limits.gateway_session_duration;
 * - a revoked client certificate closes the session like any other (server.c).
 * One log line per session (event=gateway_session) with the bytes each way, the
 * duration and the certificate.
 */
#include "server/conn.h"

/* Bytes queued toward one side above which the other side is no longer read, and the
 * level at which reading starts again. Below conn.c's own 256 KiB mark. */
#define GATEWAY_HIGH (192 * 1024)
#define GATEWAY_LOW  (64 * 1024)

extern const struct proto_handler gateway_proto_handler;

#endif
