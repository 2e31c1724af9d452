#ifndef SEALMAIL_SMTP_RECEIVED_H
#define SEALMAIL_SMTP_RECEIVED_H
/*
 * The trace field added at delivery (RFC 5321 4.4) and the header lines a submission
 * server adds when missing (RFC 6409 8.3: Message-ID, Date). Pure formatting.
 *
 *   Received: from client.example ([192.0.2.7])
 *   	(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)
 *   	(authenticated user alice@corp.example by SCRAM-SHA-256)
 *   	(client certificate "CN=alice@corp.example" serial 5d0c1e)
 *   	by mail.corp.example (sealmail) with ESMTPSA id 3fa2c1d0.1
 *   	for <bob@corp.example>; Tue, 03 Dec 2024 10:00:00 +0000
 *
 * How the user logged in is named after "by": the SASL mechanism (PLAIN, LOGIN,
 * SCRAM-SHA-256, SCRAM-SHA-256-PLUS, EXTERNAL) or "client certificate" for the certificate
 * login (certificate_login: preauth). An organisation server on an smtp listener is named
 * by the certificate name it was admitted for:
 *
 *   	(organisation server mx2.corp.example)
 *   	(client certificate "CN=mx2.corp.example" serial 01ab)
 *
 * All of it sits in comments (RFC 5321 4.4 allows CFWS between the clauses).
 *
 * The protocol keyword follows RFC 3848 / RFC 6531: ESMTP, ESMTPS (TLS), ESMTPA (AUTH),
 * ESMTPSA, and UTF8SMTP.. when SMTPUTF8 was used. Client-supplied text (the EHLO name, the
 * certificate subject) is reduced to safe characters and bounded, so the field is always
 * well formed and every line stays far under 998 bytes.
 */
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"

struct smtp_received_info {
	const char *helo;        /* EHLO/HELO argument, or NULL */
	const char *peer_ip;     /* "192.0.2.7" */
	const char *hostname;    /* our name */
	const char *tls_version; /* NULL without TLS */
	const char *tls_cipher;
	const char *auth_user;    /* NULL when not authenticated */
	const char *auth_mech;    /* how auth_user logged in ("PLAIN", "client certificate") */
	const char *peer_subject; /* verified client certificate subject, or NULL */
	const char *peer_serial;  /* its serial in hex, or NULL */
	const char *peer_name;    /* the organisation server's certificate name, or NULL */
	const char *id;           /* transaction id */
	const char *rcpt;         /* the one recipient, or NULL (several: not disclosed) */
	bool smtputf8;
	int64_t time; /* seconds since the epoch */
};

/* Appends the field (with its final CRLF) to out. 0 or -ENOBUFS. */
int smtp_received_format(const struct smtp_received_info *ri, struct buf *out);
/* Appends "Return-Path: <sender>" with its CRLF (RFC 5321 4.4; "<>" for the null
 * sender). sender is a reverse-path already parsed by smtp_parse (no CR, LF or '>');
 * anything unexpected is replaced so the field stays one line. 0 or -ENOBUFS. */
int smtp_return_path_format(const char *sender, struct buf *out);
/* RFC 5322 date-time in UTC: "Tue, 03 Dec 2024 10:00:00 +0000". out: at least 32 bytes. */
void smtp_format_date(int64_t t, char *out, size_t outlen);

#endif
