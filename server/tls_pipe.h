#ifndef SEALMAIL_TLS_PIPE_H
#define SEALMAIL_TLS_PIPE_H
/*
 * The memory transport under a GnuTLS session, shared by the server side (tls.c) and the
 * relay's client side (tls_client.c): GnuTLS pulls ciphertext from what the owner fed in
 * and pushes ciphertext into an output buffer the owner takes and sends. No sockets.
 */
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/buf.h"

struct tls_pipe {
	gnutls_session_t gs;
	struct buf in; /* ciphertext fed; GnuTLS has consumed the first in_off bytes */
	size_t in_off;
	size_t pulled;  /* bytes GnuTLS took in all, to see that it made progress */
	struct buf out; /* ciphertext for the peer */
};

/* Binds the pipe to gs as its transport. in_max bounds the unread ciphertext. */
void tls_pipe_init(struct tls_pipe *p, gnutls_session_t gs, size_t in_max);
void tls_pipe_free(struct tls_pipe *p);
/* Copies ciphertext in. 0, or -ENOBUFS past the bound (on unread bytes). */
int tls_pipe_feed(struct tls_pipe *p, const void *data, size_t len);
/* Unread ciphertext still waiting for GnuTLS. */
static inline size_t tls_pipe_unread(const struct tls_pipe *p)
{
	return p->in.len - p->in_off;
}
/* The ciphertext to send, as a malloc'd buffer the caller owns, or NULL. */
void *tls_pipe_take_output(struct tls_pipe *p, size_t *len_r);
/* Encrypts all of data into the output. 0, or the GnuTLS error (negative). */
int tls_pipe_send(struct tls_pipe *p, const void *data, size_t len);
/* Queues close_notify. */
void tls_pipe_bye(struct tls_pipe *p);
/* "TLSv1.3", "TLSv1.2" (the names mail servers log), else GnuTLS's name. */
const char *tls_pipe_version(const struct tls_pipe *p);

#endif
