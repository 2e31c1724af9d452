#ifndef SEALMAIL_POP3_MAIL_H
#define SEALMAIL_POP3_MAIL_H
/*
 * The authenticated half of a POP3 session (RFC 1939 TRANSACTION and UPDATE states): the
 * maildrop lock, the snapshot of the INBOX taken at login, the maildrop commands and the
 * deletions applied at QUIT. The session (pop3_session.c) owns the state machine and the
 * command table; it embeds a struct pop3_mail and calls the functions below only in the
 * states where the command is allowed, so nothing here re-checks "are we logged in?".
 *
 * Every asynchronous step pauses input and holds the connection (conn_hold); completions
 * run on the loop thread and return at once when the connection has gone. Nothing is
 * written to the store before QUIT, so a dropped connection deletes nothing.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/pop3/pop3_dotstuff.h"
#include "server/pop3/pop3_maildrop.h"

struct conn;

/* Called once when an asynchronous step (open, RETR/TOP, update) ends, unless the
 * connection closed meanwhile. Input is still paused: the session resumes it. */
typedef void pop3_mail_done_fn(void *sess, int rc);

struct pop3_mail {
	struct conn *c;
	void *sess;
	int64_t user_id;
	int64_t mailbox_id;
	bool locked; /* holds the maildrop lock of mailbox_id */
	bool open;   /* the snapshot is taken */
	struct pop3_maildrop md;
	pop3_mail_done_fn *done;
	/* RETR / TOP in progress */
	struct pop3_dotstuff ds;
	uint32_t uid;
	uint64_t offset;
	uint64_t size;
	char *out; /* encoder output, one chunk's worth */
	/* UPDATE */
	size_t update_n;
};

/* Zeroes m and remembers its connection, session and completion. */
void pop3_mail_init(struct pop3_mail *m, struct conn *c, void *sess, pop3_mail_done_fn *done);
/* Releases the maildrop lock and frees the snapshot. Nothing is deleted. */
void pop3_mail_free(struct pop3_mail *m);

/*
 * After a successful login: pauses input, finds the user's INBOX, takes the maildrop lock
 * and the snapshot. done(sess, rc) (maybe before this returns): 0 (maildrop ready), -EBUSY
 * (another POP3 session holds the lock: [IN-USE]), or another negative errno (store
 * trouble: [SYS/TEMP]). Writes nothing.
 */
void pop3_mail_open(struct pop3_mail *m, int64_t user_id);

/* The TRANSACTION commands: arg is the text after the command name and one space (len 0
 * when none). Each writes its whole reply and returns 0, or -1 when the reply was an
 * -ERR (the session counts those against limits.errors). RETR and TOP return 1 when they
 * started streaming (input paused; done(sess, 0) follows, maybe before they return, or
 * the connection is closed if the message cannot be read after its first bytes went
 * out), -1 when they answered -ERR at once. */
int pop3_mail_stat(struct pop3_mail *m, const char *arg, size_t len);
int pop3_mail_list(struct pop3_mail *m, const char *arg, size_t len);
int pop3_mail_uidl(struct pop3_mail *m, const char *arg, size_t len);
int pop3_mail_dele(struct pop3_mail *m, const char *arg, size_t len);
int pop3_mail_rset(struct pop3_mail *m, const char *arg, size_t len);
int pop3_mail_retr(struct pop3_mail *m, const char *arg, size_t len);
int pop3_mail_top(struct pop3_mail *m, const char *arg, size_t len);

/*
 * QUIT in the TRANSACTION state (the UPDATE state): removes exactly the messages marked by
 * DELE from the store (\Deleted on those UIDs, then an expunge limited to those UIDs: a
 * crash between the two leaves them flagged, never removes another message). IMAP sessions
 * see the expunges through the store's change notification. Pauses input; done(sess, rc)
 * (maybe before this returns): 0, or a negative errno (some messages were not removed).
 * Writes nothing.
 */
void pop3_mail_update(struct pop3_mail *m);

#endif
