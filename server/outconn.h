#ifndef SEALMAIL_OUTCONN_H
#define SEALMAIL_OUTCONN_H
/*
 * An outbound connection, the client-side sibling of conn.h: connect with a timeout,
 * plaintext lines in, plaintext out, STARTTLS through tls_client.h, back-pressure, and a
 * close callback once every handle is closed. The relay runs one per next hop.
 *
 * outconn.c owns the TCP handle, the timer, the TLS client session, the bounded line
 * reader and the write requests. It knows no protocol: the owner reads lines, writes
 * commands and decides when to start TLS and when to close.
 *
 * Rules:
 * - Every callback runs on the loop thread. Callbacks may call any function below on the
 *   same outconn, outconn_close included.
 * - Lines arrive without their line end ("\n" or "\r\n"); the buffer is borrowed until the
 *   callback returns. A line longer than the limit fails the connection.
 * - After outconn_start_tls nothing already received in plaintext is delivered
 *   (CVE-2011-0411): the rest of the read that carried the "go ahead" is dropped too.
 * - failed runs at most once per outconn, possibly before the call that caused it
 *   returns (outconn_connect, outconn_write, outconn_start_tls). After it the connection
 *   is dead: nothing is read, writes are dropped, and no callback but closed runs. The
 *   owner then calls outconn_close (it may do so inside failed).
 * - After outconn_close no callback but closed runs; closed runs exactly once, after
 *   every handle closed, and the outconn is freed before it runs.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct outconn;
struct tls_client;
struct tls_client_ctx;

enum outconn_failure {
	OUTCONN_CONNECT, /* no connection: refused, unreachable or timed out ("timed out") */
	OUTCONN_LOST,    /* the connection ended or broke: "connection closed by the peer",
	                  * "connection lost", "connection lost while sending", "timeout
	                  * waiting for the peer"; the owner may say in which step */
	OUTCONN_ERROR,   /* anything else, a complete reason: "reply line too long", "TLS
	                  * input overflow", "TLS write failed", a handshake error */
};

/* line (or data), failed and closed are required; tls_ready and drained only by an owner
 * that calls outconn_start_tls or outconn_when_drained. */
struct outconn_ops {
	/* One line from the peer (plaintext, or decrypted once TLS is up). */
	void (*line)(void *ctx, const char *line, size_t len);
	/* A byte stream instead of lines (the gateway's backend): when set, every byte read
	 * comes here as it arrives, line is never called and lim.line_max does not apply.
	 * The buffer is borrowed until the callback returns. */
	void (*data)(void *ctx, const char *data, size_t len);
	/* Optional: the TCP connection is up (before anything is read). */
	void (*connected)(void *ctx);
	/* Optional: the peer ended its side of the stream (EOF). When set, EOF is not a
	 * failure: reading stops and writing goes on (half-close); when NULL, EOF fails
	 * the connection with OUTCONN_LOST. */
	void (*eof)(void *ctx);
	/* The TLS handshake finished (outconn_tls says with what). */
	void (*tls_ready)(void *ctx);
	/* Armed with outconn_when_drained: the bytes queued fell to its mark. */
	void (*drained)(void *ctx);
	/* The connection cannot go on; reason is static or lives until the callback
	 * returns. */
	void (*failed)(void *ctx, enum outconn_failure what, const char *reason);
	/* Every handle is closed and the outconn is freed. */
	void (*closed)(void *ctx);
};

struct outconn_limits {
	size_t line_max;     /* bytes of a line, its line end included */
	uint64_t connect_ms; /* connecting: then OUTCONN_CONNECT "timed out" */
	uint64_t idle_ms;    /* connected, from the connect and each read: then
	                      * OUTCONN_LOST "timeout waiting for the peer"; 0: no such
	                      * timeout (the owner keeps time) */
};

/* A new connection on loop (its handles are initialised; close it with outconn_close
 * whatever happens). ops and lim are copied; ctx is passed to every callback. Never
 * fails. */
struct outconn *outconn_new(uv_loop_t *loop, const struct outconn_ops *ops, void *ctx,
                            const struct outconn_limits *lim);
/* Connects to addr (copied; IPv4 or IPv6) and starts the connect timer. Once per outconn.
 * Success shows as lines from the peer; failure as failed (OUTCONN_CONNECT). */
void outconn_connect(struct outconn *oc, const struct sockaddr *addr);
/* Queues data (copied) for the peer, encrypted once TLS is started. Dropped when the
 * connection is dead or closing. */
void outconn_write(struct outconn *oc, const void *data, size_t len);
/* Bytes handed to the socket and not yet written (ciphertext under TLS). */
size_t outconn_queued(const struct outconn *oc);
/* drained runs once, from a write completion, when outconn_queued falls to low or below.
 * Call with more than low queued; a second call moves the mark. */
void outconn_when_drained(struct outconn *oc, size_t low);
/* Drops the plaintext received so far and starts a TLS client session on ctx (borrowed:
 * it must outlive the outconn) for host (what the certificate must name; see
 * tls_client_new); verify false only encrypts. tls_ready runs when the handshake is done;
 * a failed handshake shows as failed (OUTCONN_ERROR). Once per outconn. */
void outconn_start_tls(struct outconn *oc, struct tls_client_ctx *ctx, const char *host,
                       bool verify);
/* The TLS session once outconn_start_tls ran, else NULL. Borrowed. */
const struct tls_client *outconn_tls(const struct outconn *oc);
/* Stops and restarts reading from the peer (back-pressure: the owner's other side is not
 * taking what this one sends). Reading starts by itself at the connect; stopping before
 * that delays it. No effect on a dead or closing connection. */
void outconn_read_stop(struct outconn *oc);
void outconn_read_start(struct outconn *oc);
/* Ends our side of the stream (TCP FIN, shutdown(SHUT_WR)) once every queued write is
 * taken, so the peer sees EOF after the last byte. Writes after it are dropped. Once. */
void outconn_shutdown(struct outconn *oc);
/* Closes the connection at once (writes not yet taken by the socket are cancelled).
 * closed runs once, later, from the loop. Once per outconn. */
void outconn_close(struct outconn *oc);

#endif
