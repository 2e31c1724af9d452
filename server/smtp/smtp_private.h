#ifndef SEALMAIL_SMTP_PRIVATE_H
#define SEALMAIL_SMTP_PRIVATE_H
/*
 * Shared between the SMTP session files: smtp_session.c (front door, command table, state)
 * and the command files named after their commands: smtp_cmd_auth.c (AUTH, certificate
 * logins), smtp_cmd_mail.c (MAIL), smtp_cmd_rcpt.c (RCPT), smtp_cmd_data.c (DATA, BDAT).
 * Not for other modules.
 */
#include <stdbool.h>
#include <stdint.h>

#include "server/conn.h"
#include "server/smtp/smtp_auth.h"
#include "server/smtp/smtp_txn.h"

enum smtp_state {
	SMTP_S_CONNECT = 1 << 0,
	SMTP_S_HELO = 1 << 1,
	SMTP_S_MAIL = 1 << 2,
	SMTP_S_RCPT = 1 << 3,
	SMTP_S_STARTTLS = 1 << 4,
	SMTP_S_QUIT = 1 << 5,
};

#define SMTP_HELO_MAX 255

struct smtp_session {
	struct conn *c;
	enum smtp_state state;
	bool submission;    /* listener protocol "submission" (else "smtp") */
	bool authenticated; /* AUTH, or a client certificate with certificate_login: preauth */
	unsigned commands, errors;
	uint64_t started_ms;
	char helo[SMTP_HELO_MAX + 1];
	struct smtp_auth auth;
	struct smtp_txn txn;
	bool in_data;      /* between 354 and the final dot */
	bool bdat;         /* BDAT chunks started in this transaction */
	bool bdat_last;    /* the chunk being read is the LAST one */
	bool bdat_discard; /* reading a refused chunk: drop its bytes */
	bool waiting;      /* a store operation runs for this session (input paused) */
	/* smtp listener, a user's certificate: every command but QUIT is refused. */
	bool cert_refused;
	char auth_mech[24];   /* how the login was made, for Received: ("" before it) */
	char auth_trying[24]; /* the mechanism of the AUTH exchange in progress */
};

/* smtp_session.c */
void smtp_set_state(struct smtp_session *s, enum smtp_state st);
void smtp_reply(struct smtp_session *s, const char *line);
void smtp_error(struct smtp_session *s, const char *line);
void smtp_goodbye(struct smtp_session *s, const char *reply, const char *reason);
const char *smtp_hostname(const struct smtp_session *s);

/* smtp_cmd_auth.c */
void smtp_cmd_auth(void *sess, const char *args, size_t len);
/* smtp listeners, after the handshake: refuses a user's certificate (true), logged. */
bool smtp_refuse_user_cert(struct smtp_session *s);
/* After TLS (implicit: at open): log in with the client certificate where the listener
 * says certificate_login: preauth. */
void smtp_cert_preauth(struct smtp_session *s);

/* smtp_cmd_mail.c */
void smtp_cmd_mail(void *sess, const char *args, size_t len);

/* smtp_cmd_rcpt.c */
void smtp_cmd_rcpt(void *sess, const char *args, size_t len);

/* smtp_cmd_data.c */
void smtp_cmd_data(void *sess, const char *args, size_t len);
void smtp_cmd_bdat(void *sess, const char *args, size_t len);
/* A DATA line (while in_data). */
void smtp_data_input(struct smtp_session *s, const char *line, size_t len, bool has_cr);
/* BDAT chunk bytes. */
void smtp_bdat_bytes(void *sess, const char *data, size_t len, bool last);

#endif
