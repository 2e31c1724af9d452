#ifndef SEALMAIL_TLS_H
#define SEALMAIL_TLS_H
/*
 * TLS for sealmaild: one shared, refcounted server context and a memory-driven session.
 *
 * The session never touches a socket. conn.c feeds it the ciphertext it read
 * (tls_session_feed), asks it for plaintext (tls_session_read), hands it plaintext to
 * encrypt (tls_session_write), and takes the ciphertext to send (tls_session_take_output).
 * That keeps protocol code on plaintext, makes implicit TLS and STARTTLS one path, and lets
 * tests run two sessions against each other in memory. No libuv here.
 *
 * Context: certificate chain + key, priorities (TLS 1.2 minimum, or 1.3 only), a session
 * ticket key, the client CA and CRL. tls_ctx_new builds a complete new context; the
 * server swaps it in on SIGHUP; live sessions keep a reference to the context they were
 * made with, and it is freed when the last one ends. Every new context has a fresh ticket
 * key, so a ticket issued before a reload (e.g. before a revocation) never resumes.
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config/config.h"
#include "server/crlguard.h"

struct tls_ctx;
struct tls_session;

/* Builds a context from cfg (tls.* keys). 0 on success; on failure a negative code and
 * *error_r set to a static-or-thread-local one-line reason naming the file. */
int tls_ctx_new(const struct config *cfg, struct tls_ctx **ctx_r, const char **error_r);
struct tls_ctx *tls_ctx_ref(struct tls_ctx *ctx);
void tls_ctx_unref(struct tls_ctx *ctx);
/* A CRL whose nextUpdate has passed makes certificate verification fail closed; this says
 * whether that is the case now (checked again on every handshake). */
bool tls_ctx_crl_expired(const struct tls_ctx *ctx);
/* Why certificates cannot be checked against the CRL now: "CRL expired" (nextUpdate
 * passed), the reason given to tls_ctx_crl_distrust ("CRL rolled back"), or NULL when the
 * CRL is usable or there is none. Certificate verification fails closed with this reason. */
const char *tls_ctx_crl_problem(const struct tls_ctx *ctx);
/* The loaded CRL's mark (of the file's first CRL) and earliest nextUpdate ((time_t)-1 when
 * none has one); false when the context has no CRL. */
bool tls_ctx_crl_mark(const struct tls_ctx *ctx, struct crl_mark *mark_r, time_t *next_update_r);
/* When the server certificate (the first of the chain) expires; (time_t)-1 if unknown. */
time_t tls_ctx_cert_not_after(const struct tls_ctx *ctx);
/* Marks the CRL untrustworthy (older than one accepted before): from now on certificates
 * are refused with reason, a static string. Call before the context serves sessions. */
void tls_ctx_crl_distrust(struct tls_ctx *ctx, const char *reason);

/* Why a verified client certificate (DER) is not a client's, or NULL when it is: its
 * extended key usage must list clientAuth (1.3.6.1.5.5.7.3.2); without any extended key
 * usage, no_eku decides. The reasons are TLS_EKU_NONE, TLS_EKU_NOT_CLIENT (e.g. serverAuth
 * only, or anyExtendedKeyUsage) and "invalid". Pure; the handshake and the recheck after
 * a reload both apply it. */
#define TLS_EKU_NONE       "no extended key usage"
#define TLS_EKU_NOT_CLIENT "extended key usage without clientAuth"
const char *tls_client_eku_refusal(const void *der, size_t len, enum cfg_no_eku no_eku);

/* A new server session on ctx (takes a reference). mode: whether to request or require a
 * client certificate. Never fails (allocation failure aborts). */
struct tls_session *tls_session_new(struct tls_ctx *ctx, enum cfg_client_cert mode);
void tls_session_free(struct tls_session *s);

/* Ciphertext received from the peer. Copied; never fails except -ENOBUFS past an internal
 * bound (a peer that floods before the handshake finishes). */
int tls_session_feed(struct tls_session *s, const void *data, size_t len);

/* Drives the handshake with what was fed. 1 done, 0 need more input (check output first),
 * <0 failure with *error_r set (reason for the log). On failure any alert to send is in
 * the output. With mode REQUIRED a missing or invalid client certificate fails here. */
int tls_session_handshake(struct tls_session *s, const char **error_r);

/* Plaintext after the handshake. >0 bytes read, 0 need more input, TLS_EOF peer closed
 * (close_notify), <0 error. Call again while it returns >0: GnuTLS may hold more than one
 * record (gnutls_record_check_pending). */
#define TLS_EOF (-1000)
ssize_t tls_session_read(struct tls_session *s, void *buf, size_t len, const char **error_r);
/* Encrypts plaintext (all of it) into the output. 0 or <0. */
int tls_session_write(struct tls_session *s, const void *data, size_t len);
/* Queues close_notify into the output. */
void tls_session_bye(struct tls_session *s);

/* Ciphertext waiting to be sent: returns a malloc'd buffer the caller now owns (and frees
 * after the write completes) and its length in *len_r, or NULL when there is none. */
void *tls_session_take_output(struct tls_session *s, size_t *len_r);

/* After the handshake. */
const char *tls_session_version(const struct tls_session *s); /* "TLSv1.3" */
const char *tls_session_cipher(const struct tls_session *s);  /* "TLS_AES_256_GCM_SHA384" */
bool tls_session_resumed(const struct tls_session *s);

/* Client certificate: true when the peer presented one and it verified against the
 * client CA and a current CRL. */
bool tls_session_peer_verified(const struct tls_session *s);
/* Subject DN and hex serial of the verified peer certificate, or NULL. Owned by s. */
const char *tls_session_peer_subject(const struct tls_session *s);
const char *tls_session_peer_serial(const struct tls_session *s);
/* The subject's common name of the verified peer certificate ("" when it has none), or
 * NULL. Owned by s. Not an identity (conn_cert_identity is): for logs and PROXY headers. */
const char *tls_session_peer_cn(const struct tls_session *s);
/* DER of the verified peer certificate (for mapping it to a user), or NULL. Owned by s. */
const void *tls_session_peer_der(const struct tls_session *s, size_t *len_r);
/* True when the verified peer certificate chains to tls.peer_ca (the organisation's
 * servers' CA) rather than only to tls.client_ca. */
bool tls_session_peer_from_peer_ca(const struct tls_session *s);
/* Why the peer certificate did not verify ("no certificate", "unknown CA", "expired",
 * "revoked", "CRL expired", "CRL rolled back"), or NULL. */
const char *tls_session_peer_error(const struct tls_session *s);

/* Checks the verified peer certificate of s again, against ctx (a context built after s
 * started, e.g. with a new CRL). 0 still valid (or s has no verified certificate),
 * -EACCES with *reason_r ("revoked", "CRL expired", ...) when it no longer is. */
int tls_ctx_recheck_peer(struct tls_ctx *ctx, const struct tls_session *s, const char **reason_r);

/* tls-exporter channel binding (RFC 9266) for SCRAM-PLUS; 0 or <0. */
int tls_session_channel_binding(struct tls_session *s, unsigned char *out, size_t len);

#endif
