#ifndef SEALMAIL_TLS_CLIENT_H
#define SEALMAIL_TLS_CLIENT_H
/*
 * TLS for the relay's SMTP client: memory-driven like the server side (tls.h). The caller
 * feeds ciphertext it read (tls_client_feed), drives the handshake, reads and writes
 * plaintext, and takes the ciphertext to send (tls_client_take_output). No socket, no
 * libuv: tests run a client against a server session (tls.h) in memory.
 *
 * Context: what the client trusts (a route's CA file, or the system store) and the client
 * certificate it presents when the server asks (relay.certificate/relay.key: mutual TLS).
 * A session either verifies the peer (chain against the trust and the host name, the
 * handshake fails otherwise: route tls: verify) or does not (tls: encrypt).
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tls_client_ctx;
struct tls_client;

/* ca_file NULL: the system trust store. cert_file/key_file NULL: no client certificate.
 * 0, or <0 with *error_r (thread-local, one line naming the file). */
int tls_client_ctx_new(const char *ca_file, const char *cert_file, const char *key_file,
                       struct tls_client_ctx **ctx_r, const char **error_r);
void tls_client_ctx_free(struct tls_client_ctx *ctx);

/* A client session on ctx (borrowed: it must outlive the session). host is what the
 * certificate must name (DNS name or IP address) and, unless an IP address, the SNI.
 * verify false: encrypt only (the peer's certificate is not checked). Never fails. */
struct tls_client *tls_client_new(struct tls_client_ctx *ctx, const char *host, bool verify);
void tls_client_free(struct tls_client *c);

/* Ciphertext from the peer; copied. 0 or -ENOBUFS past an internal bound. */
int tls_client_feed(struct tls_client *c, const void *data, size_t len);
/* 1 done, 0 need more input (send the output first), <0 failed with *error_r ("certificate
 * verification failed: ...", the alert received, ...). */
int tls_client_handshake(struct tls_client *c, const char **error_r);
/* >0 bytes, 0 need more input, TLS_CLIENT_EOF, <0 error with *error_r. */
#define TLS_CLIENT_EOF (-1000)
ssize_t tls_client_read(struct tls_client *c, void *buf, size_t len, const char **error_r);
/* Encrypts all of data into the output. 0 or <0. */
int tls_client_write(struct tls_client *c, const void *data, size_t len);
void tls_client_bye(struct tls_client *c);
/* Ciphertext to send: malloc'd, now the caller's, or NULL (len 0). */
void *tls_client_take_output(struct tls_client *c, size_t *len_r);

/* After the handshake: "TLSv1.3", the cipher suite, and whether the peer certificate was
 * verified (false under encrypt-only). */
const char *tls_client_version(const struct tls_client *c);
const char *tls_client_cipher(const struct tls_client *c);
bool tls_client_verified(const struct tls_client *c);

#endif
