#ifndef SEALMAIL_SERVER_PRIVATE_H
#define SEALMAIL_SERVER_PRIVATE_H
/*
 * Inside sealmaild: the server (loop, config, the current TLS context, listeners and the
 * live connections), listeners and connections. Protocol code never includes this; it
 * sees only conn.h.
 */
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "server/conn.h"
#include "server/crlguard.h"
#include "server/linebuf.h"

struct compress_pipe;
struct tls_ctx;
struct tls_session;

struct listener {
	struct server *server;
	const struct cfg_listener *cfg;
	const struct proto_handler *proto;
	uv_tcp_t tcp;
	unsigned n_conns;
	uint16_t port; /* bound port (cfg port may be 0) */
	bool open;
};

struct ipcount; /* per-address connection counts (server.c) */
struct poster;
struct relay;

struct server {
	uv_loop_t *loop;
	struct config *cfg;
	struct tls_ctx *tls; /* current context; sessions hold their own reference */
	struct listener *listeners;
	size_t n_listeners;
	uv_signal_t sig_hup, sig_usr1, sig_usr2, sig_term, sig_int;
	time_t started;
	uv_timer_t stop_timer;
	uv_fs_poll_t crl_poll;    /* reload when tls.crl changes */
	uv_timer_t crl_timer;     /* expiry warnings; stale-CRL logs and session closing */
	struct crl_mark crl_seen; /* the newest CRL accepted, also in crl_state_path */
	bool crl_seen_valid;
	char *crl_state_path; /* data_dir/crl-state */
	bool crl_warned;      /* crl_expiring was logged at crl_warned_ms */
	uint64_t crl_warned_ms;
	struct conn *conns; /* intrusive list of live connections */
	unsigned n_conns;
	struct ipcount *ipcounts;
	struct services *services;
	struct poster *poster;
	struct relay *relay; /* the relay runner (relay.h) once started, NULL after relay_stop */
	bool stopping;
	int exit_code; /* non-zero: why the server stopped on its own (store failure: 75) */
	uint64_t next_id;
};

enum conn_state {
	CONN_PLAIN,     /* STARTTLS listener before TLS */
	CONN_HANDSHAKE, /* TLS handshake running */
	CONN_TLS,       /* encrypted */
	CONN_CLOSING,   /* flushing, then closing */
	CONN_CLOSED,    /* uv_close called */
};

struct conn {
	uv_tcp_t tcp; /* first member: handle->data is the conn too */
	uv_timer_t timer;
	struct server *server;
	struct listener *listener;
	struct conn *prev, *next;
	const struct proto_handler *proto;
	void *sess; /* protocol state, NULL until open */
	struct tls_session *tls;
	struct compress_pipe *zpipe; /* DEFLATE inside TLS once conn_compress_start ran */
	struct linebuf in;
	struct buf out;        /* written since the last flush */
	uint64_t expect_bytes; /* raw bytes still owed to proto->bytes */
	size_t line_limit_override;
	size_t write_queued; /* bytes handed to uv_write, not yet completed */
	uint64_t bytes_in, bytes_out;
	uint64_t started_ms;
	enum conn_state state;
	unsigned handles_open;        /* tcp + timer close callbacks still owed */
	unsigned dispatching;         /* >0 while protocol callbacks run: writes are batched */
	unsigned holds;               /* asynchronous operations in flight (conn_hold) */
	void (*delay_fn)(void *sess); /* conn_delay: runs when the timer fires */
	void (*drain_fn)(void *arg);  /* conn_when_drained */
	void *drain_arg;
	size_t drain_low;
	bool reading;
	bool paused;
	bool starttls_requested;
	bool authenticated;
	bool proto_closed;
	bool proto_close_pending;
	bool was_tls;
	bool peer_eof;            /* the peer closed its side: no lingering needed */
	bool lingering;           /* FIN sent, discarding input until EOF or a grace timer */
	bool output_stalled;      /* dispatch stopped at WRITE_HIGH; resumes as writes complete */
	bool in_eof;              /* half-close: the peer ended its side, proto->eof is owed */
	bool in_drained;          /* ... and TLS holds no more of its input */
	bool eof_told;            /* proto->eof ran */
	bool out_shut;            /* conn_shutdown_output ran: close_notify queued, FIN to follow */
	bool fin_sent;            /* uv_shutdown was called on the socket */
	unsigned idle_override_s; /* conn_set_idle_timeout, 0 = the limits */
	char *identity;           /* conn_cert_identity, computed once */
	enum conn_peer_kind peer_kind; /* decided when the handshake completes */
	char *peer_name;               /* conn_peer_name */
	char id[17];
	char ip[48];
	char user[128];
	/* COMPRESS was accepted in the line being dispatched: what follows that line in the
	 * linebuf is compressed and moves to the inflater. */
	bool compress_take_input;
	bool in_line;         /* proto->line is running (its line is still in the linebuf) */
	bool inflate_yielded; /* INFLATE_TURN reached: the next loop turn pumps on, reading waits */
};

/* conn.c */
void conn_accepted(struct listener *l);
/* The listener's protocol for the log ("submission", "smtp", "imap", "pop3"), as the
 * protocol sessions name themselves, so every line of a session says the same. */
/* Closes every connection that is not in the middle of work (SIGTERM). */
void conn_shutdown_all(struct server *srv);

/* server.c */
bool server_ip_acquire(struct server *srv, const char *ip);
void server_ip_release(struct server *srv, const char *ip);
/* A connection went away; when stopping and none is left, the server finishes. */
void server_conn_gone(struct server *srv);
struct tls_ctx *server_tls(struct server *srv);

/* listener.c */
int listener_start(struct server *srv, struct listener *l, const struct cfg_listener *cfg,
                   const char **error_r);
void listener_stop(struct listener *l);
const struct proto_handler *listener_proto_for(enum cfg_protocol p);

#endif
