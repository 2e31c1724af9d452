#ifndef SEALMAIL_PROXY_V2_H
#define SEALMAIL_PROXY_V2_H
/*
 * The PROXY protocol version 2 header (HAProxy's proxy-protocol.txt, section 2.2) that a
 * gateway listener with proxy_protocol: v2 sends its backend before the client's bytes:
 * the binary signature, the PROXY command, TCP over IPv4 or IPv6 with the client's and
 * the listener's address and port, and TLVs about the TLS session.
 *
 * Written, never parsed: pure, no I/O, no libuv, no GnuTLS.
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "common/buf.h"

/* Type numbers from the specification (2.2.x). */
#define PP2_TYPE_UNIQUE_ID      0x05
#define PP2_TYPE_SSL            0x20
#define PP2_SUBTYPE_SSL_VERSION 0x21
#define PP2_SUBTYPE_SSL_CN      0x22
#define PP2_SUBTYPE_SSL_CIPHER  0x23
#define PP2_CLIENT_SSL          0x01
#define PP2_CLIENT_CERT_CONN    0x02
#define PP2_CLIENT_CERT_SESS    0x04
/* The range the specification leaves to applications (PP2_TYPE_MIN_CUSTOM..MAX): the
 * client certificate's whole subject and its serial, which the standard TLVs lack. */
#define PP2_TYPE_SEALMAIL_SUBJECT 0xE0
#define PP2_TYPE_SEALMAIL_SERIAL  0xE1

/* Longest string value written; longer ones are cut (a TLV length is 16 bits). */
#define PROXY_V2_VALUE_MAX 2048

struct proxy_v2_info {
	const struct sockaddr *src; /* the client; AF_INET or AF_INET6, else "unspecified" */
	const struct sockaddr *dst; /* the address the client connected to */
	const char *unique_id;      /* the session id of the log lines, or NULL */
	const char *tls_version;    /* "TLSv1.3", or NULL when not TLS */
	const char *tls_cipher;
	bool cert_presented; /* on this connection (a resumed session presents none) */
	bool cert_in_session;
	bool cert_verified;
	const char *cert_cn; /* NULL or "" when none */
	const char *cert_subject;
	const char *cert_serial;
};

/* Appends the whole header to out. 0, or -ENOBUFS when out has no room (out unchanged
 * but for what was appended; the caller drops it). */
int proxy_v2_build(const struct proxy_v2_info *in, struct buf *out);

#endif
