#ifndef SEALMAIL_GATEWAY_DANCE_H
#define SEALMAIL_GATEWAY_DANCE_H
/*
 * What a STARTTLS gateway says by itself, before TLS and before the backend is reached:
 * the greeting, the few commands a client may send before TLS (SMTP EHLO/NOOP/QUIT, IMAP
 * CAPABILITY/NOOP/LOGOUT, POP3 CAPA/QUIT) and the STARTTLS/STLS reply, offering nothing
 * but STARTTLS (IMAP says LOGINDISABLED; no AUTH, no USER); and, after TLS, how the
 * backend's own greeting is recognised so it can be dropped (the client already had one,
 * and SMTP, IMAP and POP3 clients expect none after STARTTLS).
 *
 * Pure: lines in, reply text out. No I/O, no libuv, no GnuTLS.
 */
#include <stddef.h>
#include <sys/types.h>

#include "common/buf.h"
#include "config/config.h"

enum gateway_dance_step {
	GW_DANCE_REPLY,    /* a reply was written; go on */
	GW_DANCE_ERROR,    /* an error reply was written (counts against limits.errors) */
	GW_DANCE_STARTTLS, /* the go-ahead was written: start TLS now */
	GW_DANCE_QUIT,     /* the goodbye was written: close */
};

/* Why the gateway ends a session in the protocol's words. */
enum gateway_bye {
	GW_BYE_BACKEND,  /* the backend cannot be reached or refused the session */
	GW_BYE_TIMEOUT,  /* idle before TLS */
	GW_BYE_ERRORS,   /* too many errors or commands before TLS */
	GW_BYE_TOO_LONG, /* a line over limits.line_length_preauth */
};

void gateway_dance_greeting(enum cfg_speaks sp, const char *hostname, struct buf *out);
/* One command line before TLS, without its line end (may contain NUL: len is the truth). */
enum gateway_dance_step gateway_dance_line(enum cfg_speaks sp, const char *hostname,
                                           const char *line, size_t len, struct buf *out);
/* The protocol's goodbye for why (nothing for CFG_SPEAKS_NONE). */
void gateway_dance_goodbye(enum cfg_speaks sp, enum gateway_bye why, const char *hostname,
                           struct buf *out);

/* Longest backend greeting the gateway waits for (SMTP may send several lines). */
#define GW_GREETING_MAX 4096
/*
 * The backend's greeting at the front of data: >0 its length (line ends included) when it
 * is complete and positive (SMTP 220, IMAP * OK or * PREAUTH, POP3 +OK); 0 when more is
 * needed; -EPROTO when the backend refuses (any other reply); -E2BIG past GW_GREETING_MAX.
 */
ssize_t gateway_backend_greeting(enum cfg_speaks sp, const char *data, size_t len);

#endif
