#ifndef SEALMAIL_RELAY_PRIVATE_H
#define SEALMAIL_RELAY_PRIVATE_H
/*
 * Inside the relay: the SMTP client state machine (relay_session.c), DSN formatting
 * (relay_dsn.c), the policy decisions (relay_policy.c) and what MX records mean
 * (relay_mx.c). All four are pure: no libuv, no GnuTLS, no c-ares, no store, so they are
 * tested over canned transcripts and tables.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/buf.h"
#include "config/config.h"

/* ----- SMTP client session (relay_session.c) ----- */

#define RELAY_REPLY_MAX 512 /* bytes of reply text kept for last_error and DSNs */

enum relay_state {
	RELAY_S_GREETING,
	RELAY_S_EHLO,
	RELAY_S_STARTTLS,
	RELAY_S_HANDSHAKE, /* the caller runs TLS, then relay_session_tls_done */
	RELAY_S_EHLO_TLS,
	RELAY_S_MAIL,
	RELAY_S_RCPT,
	RELAY_S_DATA,
	RELAY_S_BODY, /* the caller streams the content, then relay_session_body_done */
	RELAY_S_DOT,
	RELAY_S_QUIT,
	RELAY_S_DONE,
};

/* What the caller must do after feeding a line. */
enum relay_action {
	RELAY_ACT_CONTINUE,  /* send the output (if any), read the next line */
	RELAY_ACT_START_TLS, /* send the output, drop any buffered plaintext, start TLS */
	RELAY_ACT_SEND_BODY, /* send the content dot-stuffed, then relay_session_body_done */
	RELAY_ACT_DONE,      /* finished: send the output (QUIT), close */
	RELAY_ACT_FAIL,      /* finished with s->error; close after sending the output */
};

enum relay_cap {
	RELAY_CAP_STARTTLS = 1 << 0,
	RELAY_CAP_SIZE = 1 << 1,
	RELAY_CAP_DSN = 1 << 2,
	RELAY_CAP_REQUIRETLS = 1 << 3,
	RELAY_CAP_8BITMIME = 1 << 4,
	RELAY_CAP_PIPELINING = 1 << 5,
};

struct relay_rcpt {
	const char *address;
	const char *notify; /* NULL when not given */
	const char *orcpt;
	/* Filled by the session: */
	int code;                    /* reply to RCPT, then to the end of data; 0 no answer */
	char reply[RELAY_REPLY_MAX]; /* that reply's text, "" when none */
};

struct relay_params {
	const char *helo;       /* our host name */
	enum cfg_route_tls tls; /* none: never STARTTLS; verify/encrypt: STARTTLS required */
	bool tls_verified;      /* the TLS the caller will run checks the peer (verify) */
	const char *sender;     /* "" for the null sender */
	uint64_t size;
	bool requiretls;
	const char *ret, *envid; /* DSN, or NULL */
	struct relay_rcpt *rcpts;
	size_t n_rcpts;
};

struct relay_session {
	enum relay_state state;
	struct relay_params p;
	struct buf out; /* commands to send */
	unsigned caps;
	uint64_t peer_size; /* SIZE limit advertised, 0 none */
	bool in_tls;
	size_t rcpt_next; /* next RCPT to send */
	size_t accepted;
	bool data_done; /* the end of data was answered */
	bool failed;
	bool permanent; /* the failure is permanent (5xx, REQUIRETLS, SIZE) */
	bool envelope;  /* MAIL FROM went out: this host's answers are final for the attempt */
	char error[RELAY_REPLY_MAX + 64];
	/* The reply being read (multi-line). */
	char text[RELAY_REPLY_MAX];
	size_t text_len;
	unsigned n_lines;
};

void relay_session_init(struct relay_session *s, const struct relay_params *p);
void relay_session_free(struct relay_session *s);
/* One reply line from the peer, without its line end. */
enum relay_action relay_session_line(struct relay_session *s, const char *line, size_t len);
/* TLS is up: sends EHLO again (discarding what the peer said before TLS). */
void relay_session_tls_done(struct relay_session *s);
/* The step the session is in, for messages: "greeting", "TLS handshake", "end of data". */
const char *relay_session_state_name(const struct relay_session *s);
/* The content has been sent: sends the end of data. */
void relay_session_body_done(struct relay_session *s);
/* The session cannot go on (connection lost, TLS failed, timeout): every recipient without
 * a final answer takes reason as a temporary failure. */
void relay_session_abort(struct relay_session *s, const char *reason);

/* The delivery fails for good before any connection (null MX, unknown domain): every
 * recipient takes reason. */
void relay_session_fail_permanent(struct relay_session *s, const char *reason);
/* RFC 5321 5.1: whether another host may be tried after this session: it failed, not for
 * good, before any of the envelope was sent (connection refused or lost, timeout, a 4xx or
 * 5xx greeting, EHLO refused, no STARTTLS, a failed TLS handshake or verification). */
bool relay_session_may_try_next(const struct relay_session *s);

/* Per recipient after the session: 1 delivered, 0 retry later, 2 failed for good; *why_r
 * is the reply or reason ("" for delivered). */
int relay_session_outcome(const struct relay_session *s, size_t i, const char **why_r);

/* Dot-stuffing for DATA: copies in to out with a '.' before each line that starts with
 * one; bare LF becomes CRLF. Keep the state across chunks; finish appends CRLF if the
 * content did not end with one, then ".\r\n". */
struct relay_dotstuff {
	bool mid_line;
	bool cr;
};
int relay_dotstuff(struct relay_dotstuff *d, const void *in, size_t len, struct buf *out);
int relay_dotstuff_finish(struct relay_dotstuff *d, struct buf *out);

/* ----- Policy (relay_policy.c) ----- */

/* RFC 3464 2.3.3: what happened to a recipient; a report is of one kind (the subject and
 * the text part say which), its recipients each carry their own action. */
enum relay_dsn_action {
	RELAY_DSN_FAILED,
	RELAY_DSN_DELAYED,
	RELAY_DSN_DELIVERED,
	RELAY_DSN_RELAYED,
};

/* Seconds until the next attempt after `attempts` failed ones (1 = the first failure):
 * initial, doubling, at most max. */
unsigned relay_backoff(unsigned attempts, unsigned initial, unsigned max);
/* Whether a temporary failure now means giving up: the message has waited give_up
 * seconds since created. */
bool relay_give_up(int64_t created, int64_t now, unsigned give_up);
/* tls: none is allowed only to a loopback address or a listed legacy gateway. */
bool relay_plaintext_allowed(const struct cfg_relay *relay, const char *host);
/* Whether the recipient's NOTIFY (RFC 3461 4.1; NULL when not given) asks for a report of
 * this action: failed wants FAILURE, delayed DELAY, delivered and relayed SUCCESS. Without
 * NOTIFY only failures are reported (4.1 lets the default include DELAY; we do not). */
bool relay_dsn_wanted(const char *notify, enum relay_dsn_action action);
/* RFC 8689 4.1: a message with "TLS-Required: No" in its header block; head is (a prefix
 * of) the message. */
bool relay_tls_optional_header(const char *head, size_t len);
/* The length of a Return-Path: field that opens head (with its folded lines and CRLF), or
 * 0. Final delivery adds that field (RFC 5321 4.4); a copy stored for local recipients
 * and queued for others shares its bytes, and the relay leaves the field out. */
size_t relay_return_path_len(const char *head, size_t len);

/* ----- MX records (relay_mx.c) ----- */

struct relay_mx {
	char *host;    /* owned; "" (or ".") is the root */
	unsigned pref; /* lower is preferred */
};

/* RFC 7505: the domain accepts no mail: its only MX record names the root. */
bool relay_mx_is_null(const struct relay_mx *mx, size_t n);
/*
 * RFC 5321 5.1: orders mx by preference (equal preferences keep their order), drops the
 * root, names that fail relay_mx_host_ok and hosts listed twice, and when self (our host name, may
 * be NULL) is an MX host, drops it and every host whose preference is not lower than its own: those
 * would hand the mail back to us, or to a peer that sends it back. Dropped hosts are freed and
 * their slots at the end set to NULL. Returns how many are kept; *self_r says whether self was
 * listed.
 */
size_t relay_mx_prepare(struct relay_mx *mx, size_t n, const char *self, bool *self_r);
/* A host name an MX record may name: letters, digits, '-' and '_' in dot-separated labels
 * of 1-63, at most 253 in all, a trailing dot allowed. Anything else (escapes c-ares made
 * of odd bytes, quotes) is unusable, and never reaches a log line or a DSN. */
bool relay_mx_host_ok(const char *host);
/* Frees the hosts and the array (n entries). */
void relay_mx_free(struct relay_mx *mx, size_t n);
/* The same DNS name: any case, a trailing dot ignored. */
bool relay_name_equal(const char *a, const char *b);

/* ----- DSN (relay_dsn.c) ----- */

struct relay_dsn_rcpt {
	const char *address;
	const char *orcpt; /* "rfc822;addr" as received, or NULL */
	enum relay_dsn_action action;
	const char *status;     /* "5.0.0", "4.4.7", "2.0.0" */
	const char *diagnostic; /* the remote reply or our reason, or NULL for none */
	const char *remote_mta; /* NULL when none answered */
};

struct relay_dsn {
	enum relay_dsn_action kind; /* the subject and the text part */
	const char *reporting_mta;  /* our host name */
	const char *sender;         /* the To: of the report */
	const char *envid;          /* or NULL */
	bool full;                  /* RET=FULL: return the whole message if we have it */
	int64_t arrival;
	int64_t now;
	int64_t will_retry_until; /* delayed recipients: Will-Retry-Until, 0 none */
	const struct relay_dsn_rcpt *rcpts;
	size_t n_rcpts;
	const char *original; /* the message, or its first bytes */
	size_t original_len;
	bool original_complete; /* original holds the whole message */
	const char *boundary;   /* unique per report */
	/* The report goes into a local mailbox (the sender's domain is ours): that is its
	 * final delivery, so it starts with "Return-Path: <>" (RFC 5321 4.4). */
	bool return_path;
};

/* A complete multipart/report message (CRLF line ends) in out. 0 or -ENOBUFS. */
int relay_dsn_format(const struct relay_dsn *d, struct buf *out);
/* The enhanced status code for a reply text ("550 5.1.1 no such user" → "5.1.1"), else
 * a default from the code: "5.0.0" / "4.0.0". Writes into out (at least 16 bytes). */
void relay_dsn_status(int code, const char *reply, char *out, size_t outlen);

#endif
