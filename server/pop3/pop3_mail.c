/*
 * TRANSACTION and UPDATE (see pop3_mail.h). Replies follow RFC 1939 with the response
 * codes of RFC 2449/3206 where one applies.
 */
#include "server/pop3/pop3_mail.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "server/audit.h"
#include "server/conn.h"
#include "server/notify.h"
#include "server/services.h"
#include "storage/store.h"

/* Bytes read from the store per step of RETR/TOP: big enough to keep TLS records full,
 * small enough that a session never holds much of a message. */
#define POP3_CHUNK (64 * 1024)
/* Read the next chunk when at most this much output waits for the peer. */
#define POP3_DRAIN_LOW (2 * POP3_CHUNK)

/* NULL when the server runs without a store (protocol tests of the front door). */
static struct store *pop3_store(struct pop3_mail *m)
{
	struct services *sv = conn_services(m->c);
	return sv != NULL ? sv->store : NULL;
}

void pop3_mail_init(struct pop3_mail *m, struct conn *c, void *sess, pop3_mail_done_fn *done)
{
	memset(m, 0, sizeof(*m));
	m->c = c;
	m->sess = sess;
	m->done = done;
}

void pop3_mail_free(struct pop3_mail *m)
{
	if (m->locked) {
		notify_unlock_mailbox(conn_services(m->c)->notify, m->mailbox_id);
		m->locked = false;
	}
	pop3_maildrop_free(&m->md);
	free(m->out);
	m->out = NULL;
	m->open = false;
}

/* Ends an asynchronous step. Input stays paused: the session resumes it, because only
 * the session knows whether another step (or a replayed pipelined line) follows. */
static void pop3_mail_finish(struct pop3_mail *m, int rc)
{
	/* Held during the callback: the session may close (a goodbye) and must still be
	 * there when done returns, even in a store completion outside any conn callback. */
	struct conn *c = m->c;
	conn_hold(c);
	m->done(m->sess, rc);
	conn_release(c);
}

/* ---- login: lock and snapshot ---------------------------------------------------- */

static void pop3_mail_listed(void *ctx, int rc, struct store_msgs *res)
{
	struct pop3_mail *m = ctx;
	if (!conn_release(m->c))
		return;
	if (rc == 0) {
		pop3_maildrop_init(&m->md, res->uidvalidity, res->v, res->n);
		m->open = true;
	}
	pop3_mail_finish(m, rc);
}

static void pop3_mail_got_inbox(void *ctx, int rc, struct store_mailboxes *res)
{
	struct pop3_mail *m = ctx;
	if (!conn_release(m->c))
		return;
	if (rc == 0 && res->n != 1)
		rc = -EIO;
	if (rc < 0) {
		pop3_mail_finish(m, rc);
		return;
	}
	m->mailbox_id = res->v[0].id;
	/* The lock comes before the snapshot, so no other POP3 session changes what we
	 * list. */
	if (!notify_lock_mailbox(conn_services(m->c)->notify, m->mailbox_id)) {
		pop3_mail_finish(m, -EBUSY);
		return;
	}
	m->locked = true;
	conn_hold(m->c);
	rc = store_message_list(pop3_store(m), m->mailbox_id, 0, pop3_mail_listed, m);
	if (rc < 0) {
		conn_release(m->c);
		pop3_mail_finish(m, rc);
	}
}

void pop3_mail_open(struct pop3_mail *m, int64_t user_id)
{
	m->user_id = user_id;
	conn_pause(m->c);
	struct store *s = pop3_store(m);
	int rc = s != NULL ? 0 : -EIO;
	if (rc == 0) {
		conn_hold(m->c);
		rc = store_mailbox_get(s, user_id, "INBOX", pop3_mail_got_inbox, m);
		if (rc < 0)
			conn_release(m->c);
	}
	if (rc < 0)
		pop3_mail_finish(m, rc);
}

/* ---- argument parsing ------------------------------------------------------------ */

/* One message number, or "-ERR" written and NULL. */
static struct pop3_msg *pop3_mail_arg_msg(struct pop3_mail *m, const char *arg, size_t len,
                                          uint64_t *msgno_r)
{
	uint64_t n;
	if (pop3_parse_number(arg, len, &n) < 0) {
		conn_write_str(m->c, "-ERR invalid message number\r\n");
		return NULL;
	}
	struct pop3_msg *msg = pop3_maildrop_get(&m->md, n);
	if (msg == NULL) {
		if (n >= 1 && n <= m->md.n)
			conn_write_str(m->c, "-ERR message already deleted\r\n");
		else
			conn_write_str(m->c, "-ERR no such message\r\n");
		return NULL;
	}
	*msgno_r = n;
	return msg;
}

/* ---- STAT, LIST, UIDL, DELE, RSET ------------------------------------------------ */

int pop3_mail_stat(struct pop3_mail *m, const char *arg, size_t len)
{
	size_t count;
	uint64_t octets;
	if (len > 0) {
		conn_write_str(m->c, "-ERR STAT takes no argument\r\n");
		return -1;
	}
	pop3_maildrop_stat(&m->md, &count, &octets);
	conn_printf(m->c, "+OK %zu %" PRIu64 "\r\n", count, octets);
	return 0;
}

static int pop3_mail_listing(struct pop3_mail *m, const char *arg, size_t len, bool uidl)
{
	char uid[POP3_UIDL_MAX];
	if (len > 0) {
		uint64_t n;
		struct pop3_msg *msg = pop3_mail_arg_msg(m, arg, len, &n);
		if (msg == NULL)
			return -1;
		if (uidl) {
			pop3_maildrop_uidl(&m->md, msg, uid);
			conn_printf(m->c, "+OK %" PRIu64 " %s\r\n", n, uid);
		} else {
			conn_printf(m->c, "+OK %" PRIu64 " %" PRIu64 "\r\n", n, msg->size);
		}
		return 0;
	}
	size_t count;
	uint64_t octets;
	pop3_maildrop_stat(&m->md, &count, &octets);
	if (uidl)
		conn_write_str(m->c, "+OK unique-id listing follows\r\n");
	else
		conn_printf(m->c, "+OK %zu messages (%" PRIu64 " octets)\r\n", count, octets);
	for (size_t i = 0; i < m->md.n; i++) {
		const struct pop3_msg *msg = &m->md.msgs[i];
		if (msg->deleted)
			continue;
		if (uidl) {
			pop3_maildrop_uidl(&m->md, msg, uid);
			conn_printf(m->c, "%zu %s\r\n", i + 1, uid);
		} else {
			conn_printf(m->c, "%zu %" PRIu64 "\r\n", i + 1, msg->size);
		}
	}
	conn_write_str(m->c, ".\r\n");
	return 0;
}

int pop3_mail_list(struct pop3_mail *m, const char *arg, size_t len)
{
	return pop3_mail_listing(m, arg, len, false);
}

int pop3_mail_uidl(struct pop3_mail *m, const char *arg, size_t len)
{
	return pop3_mail_listing(m, arg, len, true);
}

int pop3_mail_dele(struct pop3_mail *m, const char *arg, size_t len)
{
	uint64_t n;
	struct pop3_msg *msg = pop3_mail_arg_msg(m, arg, len, &n);
	if (msg == NULL)
		return -1;
	msg->deleted = true;
	conn_printf(m->c, "+OK message %" PRIu64 " deleted\r\n", n);
	return 0;
}

int pop3_mail_rset(struct pop3_mail *m, const char *arg, size_t len)
{
	if (len > 0) {
		conn_write_str(m->c, "-ERR RSET takes no argument\r\n");
		return -1;
	}
	pop3_maildrop_reset(&m->md);
	size_t count;
	uint64_t octets;
	pop3_maildrop_stat(&m->md, &count, &octets);
	conn_printf(m->c, "+OK maildrop has %zu messages (%" PRIu64 " octets)\r\n", count, octets);
	return 0;
}

/* ---- RETR, TOP ------------------------------------------------------------------- */

static void pop3_mail_read_next(struct pop3_mail *m);

static void pop3_mail_stream_end(struct pop3_mail *m)
{
	free(m->out);
	m->out = NULL;
	pop3_mail_finish(m, 0);
}

static void pop3_mail_drained(void *arg)
{
	pop3_mail_read_next(arg);
}

static void pop3_mail_chunk(void *ctx, int rc, struct store_content *res)
{
	struct pop3_mail *m = ctx;
	if (!conn_release(m->c))
		return;
	if (rc == 0 && res->len == 0 && m->offset < res->total_size)
		rc = -EIO; /* no progress: never loop */
	if (rc < 0) {
		if (m->offset == 0) {
			/* Nothing written yet: an ordinary error answer. The message was
			 * expunged by another session since the snapshot, or the store
			 * failed. */
			if (rc == -ENOENT)
				conn_write_str(
				    m->c, "-ERR no such message (removed by another session)\r\n");
			else
				conn_write_str(m->c, "-ERR [SYS/TEMP] cannot read the message\r\n");
			pop3_mail_stream_end(m);
			return;
		}
		/* A multi-line answer cannot be taken back: the client must see that the
		 * message is incomplete, and only a closed connection says so. */
		log_event(LOGL_WARN,
		          "session=%s proto=pop3 event=retr_failed uid=%" PRIu32 " rc=%d",
		          conn_id(m->c), m->uid, rc);
		free(m->out);
		m->out = NULL;
		conn_close(m->c, "message read failed");
		return;
	}
	if (m->offset == 0 && m->ds.limited)
		conn_write_str(m->c, "+OK top of message follows\r\n");
	else if (m->offset == 0)
		conn_printf(m->c, "+OK %" PRIu64 " octets\r\n", res->total_size);
	size_t n = pop3_dotstuff_feed(&m->ds, (const char *)res->data, res->len, m->out);
	if (n > 0)
		conn_write(m->c, m->out, n);
	m->offset += res->len;
	if (m->offset < res->total_size && !pop3_dotstuff_done(&m->ds)) {
		/* The next chunk only once the peer has taken most of this one. */
		conn_when_drained(m->c, POP3_DRAIN_LOW, pop3_mail_drained, m);
		return;
	}
	char end[POP3_DOTSTUFF_FINISH_MAX];
	n = pop3_dotstuff_finish(&m->ds, end);
	conn_write(m->c, end, n);
	pop3_mail_stream_end(m);
}

static void pop3_mail_read_next(struct pop3_mail *m)
{
	conn_hold(m->c);
	int rc = store_content_read(pop3_store(m), m->mailbox_id, m->uid, m->offset, POP3_CHUNK,
	                            pop3_mail_chunk, m);
	if (rc < 0) {
		conn_release(m->c);
		if (m->offset == 0) {
			conn_write_str(m->c, "-ERR [SYS/TEMP] cannot read the message\r\n");
			pop3_mail_stream_end(m);
		} else {
			free(m->out);
			m->out = NULL;
			conn_close(m->c, "message read failed");
		}
	}
}

static int pop3_mail_stream(struct pop3_mail *m, const struct pop3_msg *msg)
{
	m->uid = msg->uid;
	m->size = msg->size;
	m->offset = 0;
	m->out = xmalloc(POP3_DOTSTUFF_MAX_OUT(POP3_CHUNK));
	conn_pause(m->c);
	pop3_mail_read_next(m);
	return 1;
}

int pop3_mail_retr(struct pop3_mail *m, const char *arg, size_t len)
{
	uint64_t n;
	const struct pop3_msg *msg = pop3_mail_arg_msg(m, arg, len, &n);
	if (msg == NULL)
		return -1;
	if (!audit_session(m->c, "retr", "INBOX", &msg->uid, 1, NULL))
		return -1;
	pop3_dotstuff_init(&m->ds);
	return pop3_mail_stream(m, msg);
}

int pop3_mail_top(struct pop3_mail *m, const char *arg, size_t len)
{
	const char *sp = memchr(arg, ' ', len);
	uint64_t n, lines;
	if (sp == NULL || pop3_parse_number(sp + 1, len - (size_t)(sp + 1 - arg), &lines) < 0) {
		conn_write_str(m->c, "-ERR usage: TOP msg lines\r\n");
		return -1;
	}
	const struct pop3_msg *msg = pop3_mail_arg_msg(m, arg, (size_t)(sp - arg), &n);
	if (msg == NULL)
		return -1;
	char detail[48];
	snprintf(detail, sizeof(detail), "lines=%llu", (unsigned long long)lines);
	if (!audit_session(m->c, "top", "INBOX", &msg->uid, 1, detail))
		return -1;
	pop3_dotstuff_init_top(&m->ds, lines);
	return pop3_mail_stream(m, msg);
}

/* ---- UPDATE ---------------------------------------------------------------------- */

static void pop3_mail_removed(void *ctx, int rc, struct store_uids *res)
{
	struct pop3_mail *m = ctx;
	if (rc == 0)
		log_event(LOGL_INFO, "session=%s proto=pop3 event=update deleted=%zu expunged=%zu",
		          conn_id(m->c), m->update_n, res->n);
	if (conn_release(m->c))
		pop3_mail_finish(m, rc);
}

void pop3_mail_update(struct pop3_mail *m)
{
	struct store_uid_range *ranges;
	size_t n = pop3_maildrop_deleted_ranges(&m->md, &ranges);
	m->update_n = pop3_maildrop_n_deleted(&m->md);
	conn_pause(m->c);
	if (n == 0) {
		pop3_mail_finish(m, 0);
		return;
	}
	/* One transaction removes exactly the DELE'd UIDs (RFC 1939 UPDATE is all or nothing):
	 * a message another client flagged \Deleted stays, and a crash leaves either every
	 * DELE'd message or none of them removed. */
	uint32_t *uids = xcalloc(m->md.n + 1, sizeof(*uids));
	size_t k = 0;
	for (size_t i = 0; i < m->md.n; i++)
		if (m->md.msgs[i].deleted)
			uids[k++] = m->md.msgs[i].uid;
	bool audited = audit_session(m->c, "expunge", "INBOX", uids, k, "DELE");
	free(uids);
	if (!audited) {
		free(ranges);
		pop3_mail_finish(m, -EIO);
		return;
	}
	conn_hold(m->c);
	int rc = store_remove(pop3_store(m), m->mailbox_id, ranges, n, pop3_mail_removed, m);
	free(ranges);
	if (rc < 0) {
		conn_release(m->c);
		pop3_mail_finish(m, rc);
	}
}
