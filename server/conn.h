#ifndef SEALMAIL_CONN_H
#define SEALMAIL_CONN_H
/*
 * A client connection as protocol code sees it: complete lines in, plaintext out.
 *
 * conn.c owns the socket (libuv), the TLS session, the bounded line reader, the write
 * queue with back-pressure and the timers. Protocol sessions (smtp/, imap/, pop3/) are
 * driven only through struct proto_handler callbacks and talk back only through the
 * functions below, so they can be unit-tested against a fake conn (tests/unit/server/
 * conn_fake.c) with no socket, no libuv and no GnuTLS.
 *
 * Rules:
 * - Lines arrive without their line ending; a line is NUL-terminated for convenience but
 *   may contain NUL bytes (len is the truth). A bare LF also ends a line; has_cr says
 *   whether the line ended with CRLF, so SMTP DATA can refuse bare LF.
 * - A line longer than the current limit is never buffered whole: the protocol's
 *   line_too_long callback runs once, then the rest of that line is skipped.
 * - After conn_start_tls() nothing that was already received in plaintext is ever
 *   delivered (CVE-2011-0411): the buffer is discarded, then the handshake runs.
 * - While paused (conn_pause), no callbacks run; input stays buffered (bounded).
 * - Every callback is invoked from the loop thread. After close() nothing else is called.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

struct conn;
struct tls_session;

/* Why the server ends a session on its own, so that the goodbye says what happened. */
enum conn_goodbye {
	CONN_BYE_SHUTDOWN,      /* the server is stopping (SIGTERM): come back later */
	CONN_BYE_CERT_REVOKED,  /* the session's client certificate was revoked */
	CONN_BYE_CERT_INVALID,  /* it no longer verifies (expired, client CA replaced) */
	CONN_BYE_CRL_STALE,     /* the CRL is past nextUpdate or was refused: certificates
	                         * cannot be checked until the administrator renews it */
	CONN_BYE_USER_DISABLED, /* the logged-in user was disabled or deleted (sealctl) */
};

struct proto_handler {
	const char *name; /* "smtp", "imap", "pop3" */
	/* Once, when the protocol may speak: at accept on STARTTLS listeners, after the
	 * handshake on implicit-TLS ones. Returns the session state passed to the rest. The
	 * greeting is usually written here. */
	void *(*open)(struct conn *c);
	/* One complete line. The buffer is borrowed until return. */
	void (*line)(void *sess, char *line, size_t len, bool has_cr);
	/* The current line is over the limit. Reply with the protocol's error; the conn
	 * skips to the next line ending (or the protocol calls conn_close). */
	void (*line_too_long)(void *sess);
	/* Raw bytes requested with conn_expect_bytes (IMAP literals, BDAT chunks). Called
	 * one or more times; last is true on the final piece. */
	void (*bytes)(void *sess, const char *data, size_t len, bool last);
	/* The STARTTLS handshake finished; the session is now encrypted. */
	void (*tls_ready)(void *sess);
	/* The idle timer fired. Write a goodbye if the protocol has one; the conn closes
	 * right after. May be NULL. */
	void (*timeout)(void *sess);
	/* The server ends the session (why): write the protocol's goodbye (SMTP 421,
	 * IMAP * BYE, POP3 -ERR) saying why. The conn closes right after. May be NULL. */
	void (*shutdown)(void *sess, enum conn_goodbye why);
	/* The connection is gone (or going): free the state. Nothing may be written. */
	void (*close)(void *sess);
	/* Byte-stream protocols (HTTP): when set, input is never split into lines and line,
	 * line_too_long and bytes are never called; every byte received is offered here, in
	 * order, while the session is not paused. Returns how many bytes it took from the
	 * front; what it did not take is offered again right away (a pipelined request after
	 * an answered one), or after conn_resume when it paused. Taking none means it waits
	 * for more input. Input waiting to be offered is bounded like lines
	 * (limits.line_length_preauth plus one read): beyond that the conn stops reading.
	 * May be NULL. */
	size_t (*raw)(void *sess, const char *data, size_t len);
	/* Half-close (the gateway): when set, the peer ending its side (TCP EOF, or TLS
	 * close_notify) is not the end of the session. Reading stops; once every byte
	 * received before it was offered, eof runs once; the session may go on writing and
	 * ends with conn_shutdown_output and conn_close. When NULL the conn closes at EOF.
	 * A session with eof is a byte relay: at SIGTERM it is closed even while paused
	 * (back-pressure), unless it holds the conn. May be NULL. */
	void (*eof)(void *sess);
};

/* Ends our side of the stream while the peer may still send: close_notify (under TLS)
 * after what was written, then TCP FIN once the queue is taken. Writes after it are
 * dropped. Once; for sessions with an eof callback. */
void conn_shutdown_output(struct conn *c);
/* The idle timeout in seconds for this connection from now on, instead of
 * limits.idle_timeout(_preauth). */
void conn_set_idle_timeout(struct conn *c, unsigned secs);
/* Restarts the idle timer: the session saw activity the conn cannot see (bytes from a
 * backend). */
void conn_touch(struct conn *c);
/* The event loop of the connection, for sessions that run timers or sockets of their own
 * (the gateway's backend). conn.h does not include libuv: the type is libuv's. */
struct uv_loop_s;
struct uv_loop_s *conn_loop(const struct conn *c);
/* The peer's address and the local address it connected to (for a PROXY header). 0, or
 * a negative libuv code when the socket cannot say. */
struct sockaddr_storage;
int conn_sockaddrs(struct conn *c, struct sockaddr_storage *peer_r,
                   struct sockaddr_storage *local_r);

/* Queue plaintext for the peer (encrypted when TLS is on). Never fails; a peer that does
 * not read is bounded by back-pressure: above a high-water mark of output not yet taken
 * by the peer (256 KiB) no further input is read and no buffered line is dispatched
 * until the queue drains. A command's own output is bounded by the command: producers of
 * more than a reply wait with conn_when_drained between chunks. */
void conn_write(struct conn *c, const void *data, size_t len);
void conn_write_str(struct conn *c, const char *s);
void conn_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Starts TLS after everything already written has been flushed in plaintext. Any input
 * already buffered is discarded. tls_ready runs on success; on failure the connection is
 * closed (close runs). */
void conn_start_tls(struct conn *c);
bool conn_is_tls(const struct conn *c);
/* The TLS session (for version, cipher, peer certificate), or NULL before TLS. */
struct tls_session *conn_tls(struct conn *c);

/*
 * Turns on DEFLATE compression (RFC 1951 raw, as IMAP COMPRESS=DEFLATE, RFC 4978, defines
 * it) in both directions, inside TLS. Call it after writing the reply that accepts it,
 * from the line callback of the command that asks for it (or later, with input paused):
 * - output: everything written so far (that reply included) is sent uncompressed now;
 *   everything written afterwards is compressed and flushed at the end of each batch;
 * - input: the bytes after the current line, already received or not, are compressed.
 * Decompressed input goes through the same line reader, limits and back-pressure as any
 * input; corrupt compressed input, or a peer ending its stream, closes the connection.
 * Returns 0; -EALREADY when compression is already on; -ENOTSUP when TLS is not active
 * (compression is only offered inside TLS). Compression stays on until the end.
 */
int conn_compress_start(struct conn *c);
bool conn_is_compressed(const struct conn *c);

/* Flushes what was written, then closes. Idempotent. reason is logged. */
void conn_close(struct conn *c, const char *reason);

/* Login done: the line limit and idle timeout switch to their authenticated values. */
void conn_set_authenticated(struct conn *c, const char *user);

/* Stop / resume delivering input callbacks (while an asynchronous operation runs). */
void conn_pause(struct conn *c);
void conn_resume(struct conn *c);

/* The next n bytes go to the bytes callback instead of the line reader. */
void conn_expect_bytes(struct conn *c, uint64_t n);
/* Overrides the current line limit (0 restores the default for the login state). */
void conn_set_line_limit(struct conn *c, size_t limit);

/*
 * Asynchronous work (store operations) and the connection's lifetime. Before starting an
 * operation whose completion will touch the session, call conn_hold(c); the completion
 * starts with `if (!conn_release(c)) return;`. conn_release returns false when the
 * connection closed meanwhile: then the session state is already freed (or will be when
 * the last hold is released) and the completion must return without touching it. While
 * holds are outstanding, close() is deferred, so a completion never sees freed state.
 */
void conn_hold(struct conn *c);
bool conn_release(struct conn *c);

/*
 * A step of asynchronous work that shared code (server/auth/) takes for the session, so it
 * needs nothing of the connection's insides. conn_step_begin pauses input and holds the
 * connection (conn_hold). conn_step_end ends the step exactly once: when the connection is
 * still open and has a session it calls fn(sess, arg) as a protocol callback (fn may begin
 * another step or pause), then resumes input unless fn did; in every case it releases the
 * hold. Returns whether fn ran.
 */
void conn_step_begin(struct conn *c);
bool conn_step_end(struct conn *c, void (*fn)(void *sess, void *arg), void *arg);

/* Calls fn(arg) once on the loop thread after ms milliseconds (0: on the next turn of the
 * loop, never before returning), whether or not the connection is still open by then: the
 * caller holds the connection (conn_hold or conn_step_begin) and checks conn_is_open. */
void conn_after(struct conn *c, unsigned ms, void (*fn)(void *arg), void *arg);

/* The session may still speak: neither closing nor closed (nor in a TLS handshake). */
bool conn_is_open(const struct conn *c);

/* Pauses input and calls fn(sess) after ms milliseconds (failed-login delays); input
 * resumes after fn returns unless fn paused again. One delay at a time. */
void conn_delay(struct conn *c, unsigned ms, void (*fn)(void *sess));

/* Calls fn(arg) once when at most low bytes of output are still queued for the peer:
 * before returning if that is already so, else when enough writes complete. For
 * producers that write more than a reply (POP3 RETR, IMAP FETCH): write a chunk, then
 * wait here before the next, so a peer that does not read holds little memory. One at a
 * time (a new call replaces the pending one); never called once the connection is
 * closing (arg may then be freed with the session). */
void conn_when_drained(struct conn *c, size_t low, void (*fn)(void *arg), void *arg);

/* Bytes written and not yet taken by the peer (queued on the socket, or written during
 * the current callback and not yet flushed). */
size_t conn_pending_output(const struct conn *c);

/* The services shared by every session: the store, login throttling and cache. */
struct services;
struct services *conn_services(struct conn *c);
/* Milliseconds of a monotonic clock (the loop's time). */
uint64_t conn_now_ms(const struct conn *c);
/* The e-mail identity of the connection's verified client certificate (SAN rfc822Name,
 * else subject emailAddress; lower case), or NULL when there is none. Never a name the
 * client typed. Whether it is a user of this server is for the caller to check. */
const char *conn_cert_identity(struct conn *c);
/* The hex serial of the connection's verified client certificate, or "-" (for logs). */
const char *conn_cert_serial(const struct conn *c);
/* What the connection's verified client certificate makes the peer, decided once when
 * the TLS handshake completes (server/conn_peer.h has the rule):
 * - NONE: no verified certificate (or no TLS yet);
 * - USER: it carries an e-mail identity (a person's certificate);
 * - SERVER: an organisation server on an smtp listener (listeners[].peers, tls.peer_ca);
 * - OTHER: a verified certificate that is neither. */
enum conn_peer_kind { CONN_PEER_NONE, CONN_PEER_USER, CONN_PEER_SERVER, CONN_PEER_OTHER };
enum conn_peer_kind conn_peer_kind(const struct conn *c);
/* The DNS name an organisation server (CONN_PEER_SERVER) is known by, else NULL. */
const char *conn_peer_name(const struct conn *c);
/* The authenticated user given to conn_set_authenticated, or NULL. */
const char *conn_user(const struct conn *c);

/* Every listener of the server's configuration is bound and accepting (false while the
 * server stops). For health checks. */
bool conn_listeners_bound(const struct conn *c);
/* The port listener l (an element of conn_config(c)->listeners) is bound to: its
 * configured port, or the one the kernel chose for port 0. 0 when it is not bound. */
uint16_t conn_listener_port(const struct conn *c, const struct cfg_listener *l);

const struct cfg_listener *conn_listener(const struct conn *c);
/* The listener's protocol as log lines name it: "submission", "smtp", "imap", "pop3",
 * "https". */
const char *conn_proto_name(const struct conn *c);
const struct config *conn_config(const struct conn *c);
const char *conn_id(const struct conn *c);      /* short session id for logs, "3fa2c1d0" */
const char *conn_peer_ip(const struct conn *c); /* "127.0.0.1" */

#endif
