/*
 * server/pop3/pop3_mail.c and pop3_auth.c against a real store in a mkdtemp folder, with
 * a minimal connection of this file's own (only what these two files call) and a poster
 * that the test pumps, so completions run on "the loop" (this thread) in order.
 */
#include <pthread.h>
#include <time.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "server/conn.h"
#include "server/notify.h"
#include "server/auth/scram.h"
#include "server/pop3/pop3_auth.h"
#include "server/pop3/pop3_mail.h"
#include "server/services.h"
#include "tests/unit/support/store_test_util.h"

/* ---- the fake connection ------------------------------------------------------- */

struct conn {
	struct buf out;
	int holds;
	bool paused;
	bool closed;
	const char *identity;
	const struct config *cfg; /* NULL: defaults */
	struct services sv;
};

void conn_write(struct conn *c, const void *data, size_t len)
{
	cr_assert(!c->closed, "write after close");
	cr_assert_eq(buf_append(&c->out, data, len), 0);
}
void conn_write_str(struct conn *c, const char *s)
{
	conn_write(c, s, strlen(s));
}
void conn_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cr_assert_eq(buf_vprintf(&c->out, fmt, ap), 0);
	va_end(ap);
}
void conn_close(struct conn *c, const char *reason)
{
	c->closed = true;
}
void conn_pause(struct conn *c)
{
	c->paused = true;
}
void conn_resume(struct conn *c)
{
	c->paused = false;
}
void conn_hold(struct conn *c)
{
	c->holds++;
}
bool conn_release(struct conn *c)
{
	cr_assert(c->holds > 0);
	c->holds--;
	return !c->closed;
}
struct services *conn_services(struct conn *c)
{
	return &c->sv;
}
const char *conn_id(const struct conn *c)
{
	return "test";
}
const char *conn_peer_ip(const struct conn *c)
{
	return "127.0.0.1";
}
const char *conn_cert_identity(struct conn *c)
{
	return c->identity;
}
const char *conn_cert_serial(const struct conn *c)
{
	return c->identity != NULL ? "1f" : "-";
}
const char *conn_user(const struct conn *c)
{
	return NULL;
}
const struct config *conn_config(const struct conn *c)
{
	return c->cfg;
}
void conn_when_drained(struct conn *c, size_t low, void (*fn)(void *arg), void *arg)
{
	(void)c;
	(void)low;
	fn(arg);
}
void conn_set_line_limit(struct conn *c, size_t limit)
{
	(void)c;
	(void)limit;
}

static void *g_login_sess;
static void test_post(void *ctx, void (*fn)(void *), void *arg);

/* The certificate road (server/auth/cert_login.c, linked for real) speaks through these. */
void conn_step_begin(struct conn *c)
{
	conn_pause(c);
	conn_hold(c);
}
bool conn_step_end(struct conn *c, void (*fn)(void *sess, void *arg), void *arg)
{
	bool open = conn_release(c);
	if (open) {
		c->paused = false;
		fn(g_login_sess, arg);
	}
	return open;
}
/* Delays are not waited for: the next pump runs fn. */
void conn_after(struct conn *c, unsigned ms, void (*fn)(void *arg), void *arg)
{
	(void)c;
	(void)ms;
	test_post(NULL, fn, arg);
}
bool conn_is_open(const struct conn *c)
{
	return !c->closed;
}
uint64_t conn_now_ms(const struct conn *c)
{
	(void)c;
	return 1000;
}
const char *conn_proto_name(const struct conn *c)
{
	(void)c;
	return "pop3";
}

/* auth_login through the store's password check, answered on the loop. */
struct fake_login {
	struct conn *c;
	void *sess;
	auth_login_cb *cb;
	char *user;
};

static void fake_login_done(void *ctx, int rc, struct store_login *res)
{
	struct fake_login *l = ctx;
	struct auth_login_result r = {.status = AUTH_LOGIN_FAILED, .user = l->user};
	if (conn_release(l->c)) {
		if (rc == 0) {
			r.status = AUTH_LOGIN_OK;
			r.user_id = res->user_id;
		}
		l->cb(l->sess, &r);
	}
	free(l->user);
	free(l);
}

void auth_login(struct conn *c, const char *mech, const char *user, const char *password,
                auth_login_cb *cb)
{
	struct fake_login *l = xcalloc(1, sizeof(*l));
	l->c = c;
	l->sess = g_login_sess;
	l->cb = cb;
	l->user = xstrdup(user);
	conn_pause(c);
	conn_hold(c);
	cr_assert_eq(store_auth(c->sv.store, user, password, fake_login_done, l), 0);
}

/* SCRAM is the shared exchange's (server/auth/scram_login.c: its own tests, and the
 * session tests' scripted fake); here it is only offered, and refused if tried. */
bool scram_plus_offered(struct conn *c)
{
	(void)c;
	return false;
}
struct scram_auth *scram_auth_start(struct conn *c, bool plus, const char *b64, size_t len,
                                    scram_auth_cb *cb)
{
	(void)c, (void)plus, (void)b64, (void)len, (void)cb;
	return NULL;
}
void scram_auth_step(struct scram_auth *x, const char *b64, size_t len)
{
	(void)x, (void)b64, (void)len;
}
void scram_auth_free(struct scram_auth *x)
{
	(void)x;
}
struct pop3_auth *pop3_session_auth(void *sess)
{
	(void)sess;
	return NULL;
}

/* ---- the poster ---------------------------------------------------------------- */

struct posted {
	void (*fn)(void *);
	void *arg;
	struct posted *next;
};
static pthread_mutex_t post_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t post_cv = PTHREAD_COND_INITIALIZER;
static struct posted *post_head, *post_tail;

static void test_post(void *ctx, void (*fn)(void *), void *arg)
{
	struct posted *p = xcalloc(1, sizeof(*p));
	p->fn = fn;
	p->arg = arg;
	pthread_mutex_lock(&post_lock);
	if (post_tail != NULL)
		post_tail->next = p;
	else
		post_head = p;
	post_tail = p;
	pthread_cond_signal(&post_cv);
	pthread_mutex_unlock(&post_lock);
}

/* Runs posted completions until *flag is true (10 s at most). */
static void pump_until(const bool *flag)
{
	while (!*flag) {
		pthread_mutex_lock(&post_lock);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 10;
		while (post_head == NULL)
			cr_assert_eq(pthread_cond_timedwait(&post_cv, &post_lock, &ts), 0,
			             "no completion within 10 s");
		struct posted *p = post_head;
		post_head = p->next;
		if (post_head == NULL)
			post_tail = NULL;
		pthread_mutex_unlock(&post_lock);
		p->fn(p->arg);
		free(p);
	}
}

/* ---- fixture ------------------------------------------------------------------- */

static struct store_fixture fx; /* blocking face: setup and checks */
static struct store *ps;        /* poster face: what the session uses */
static struct store_poster poster = {.post = test_post};
static struct notify *nt;
static int64_t alice;
static int64_t alice_inbox;

static void setup(void)
{
	memset(&fx, 0, sizeof(fx));
	fx_dir(&fx);
	fx_open(&fx);
	store_sync_init(&fx.w);
	struct store_options opt = {.path = fx.path, .poster = &poster};
	const char *err;
	cr_assert_eq(store_open(&opt, &ps, &err), 0);
	nt = notify_new();
	cr_assert_eq(FX_CALL(&fx, store_user_add(fx.s, "alice@corp.example", "pw-alice",
	                                         store_sync_users, &fx.w)),
	             0);
	alice = fx.w.users.v[0].id;
	cr_assert_eq(
	    FX_CALL(&fx, store_mailbox_get(fx.s, alice, "INBOX", store_sync_mailboxes, &fx.w)), 0);
	alice_inbox = fx.w.mailboxes.v[0].id;
}

static void teardown(void)
{
	bool idle = post_head == NULL;
	store_close(ps);
	/* store_close ran the rest of the completions' work; drop their posts. */
	while (post_head != NULL) {
		struct posted *p = post_head;
		post_head = p->next;
		free(p);
	}
	post_tail = NULL;
	notify_free(nt);
	store_sync_done(&fx.w);
	store_close(fx.s);
	fx_rmdir(&fx);
	(void)idle;
}

TestSuite(pop3_mail, .init = setup, .fini = teardown, .timeout = 60);

static uint32_t deliver(const char *msg, size_t len)
{
	struct store_target t = {.user_id = alice};
	struct store_deliver_req req = {.data = msg, .size = len, .targets = &t, .n_targets = 1};
	cr_assert_eq(FX_CALL(&fx, store_deliver(fx.s, &req, store_sync_delivery, &fx.w)), 0);
	return fx.w.delivery.v[0].uid;
}

static size_t inbox_count(void)
{
	cr_assert_eq(FX_CALL(&fx, store_message_list(fx.s, alice_inbox, 0, store_sync_msgs, &fx.w)),
	             0);
	return fx.w.msgs.n;
}

struct sess {
	struct conn c;
	struct pop3_mail m;
	bool done;
	int rc;
};

static void sess_done(void *s, int rc)
{
	struct sess *x = s;
	x->done = true;
	x->rc = rc;
}

static void sess_init(struct sess *s)
{
	memset(s, 0, sizeof(*s));
	buf_init(&s->c.out, 16 << 20);
	s->c.sv.store = ps;
	s->c.sv.notify = nt;
	pop3_mail_init(&s->m, &s->c, s, sess_done);
}

static void sess_free(struct sess *s)
{
	pop3_mail_free(&s->m);
	buf_free(&s->c.out);
}

/* Runs an asynchronous step to its end and checks the connection is as it was. */
static int finish(struct sess *s)
{
	pump_until(&s->done);
	s->done = false;
	cr_assert_eq(s->c.holds, 0);
	return s->rc;
}

static int open_maildrop(struct sess *s)
{
	pop3_mail_open(&s->m, alice);
	return finish(s);
}

/* The output so far, then cleared. */
static char *take(struct sess *s)
{
	static char last[1 << 20];
	cr_assert(s->c.out.len < sizeof(last));
	memcpy(last, s->c.out.data ? s->c.out.data : "", s->c.out.len);
	last[s->c.out.len] = '\0';
	buf_reset(&s->c.out);
	return last;
}

#define CMD(s, fn, arg) fn(&(s)->m, (arg), strlen(arg))

Test(pop3_mail, empty_maildrop)
{
	struct sess s;
	sess_init(&s);
	cr_assert_eq(open_maildrop(&s), 0);
	CMD(&s, pop3_mail_stat, "");
	cr_assert_str_eq(take(&s), "+OK 0 0\r\n");
	CMD(&s, pop3_mail_list, "");
	cr_assert_str_eq(take(&s), "+OK 0 messages (0 octets)\r\n.\r\n");
	CMD(&s, pop3_mail_uidl, "");
	cr_assert_str_eq(take(&s), "+OK unique-id listing follows\r\n.\r\n");
	CMD(&s, pop3_mail_retr, "1");
	cr_assert_str_eq(take(&s), "-ERR no such message\r\n");
	sess_free(&s);
}

Test(pop3_mail, listing_marks_and_reset)
{
	deliver("Subject: 1\r\n\r\na\r\n", 17);
	uint32_t u2 = deliver("Subject: 2\r\n\r\nbb\r\n", 18);
	deliver("Subject: 3\r\n\r\nccc\r\n", 19);
	struct sess s;
	sess_init(&s);
	cr_assert_eq(open_maildrop(&s), 0);
	CMD(&s, pop3_mail_stat, "");
	cr_assert_str_eq(take(&s), "+OK 3 54\r\n");
	CMD(&s, pop3_mail_list, "");
	cr_assert_str_eq(take(&s), "+OK 3 messages (54 octets)\r\n1 17\r\n2 18\r\n3 19\r\n.\r\n");
	CMD(&s, pop3_mail_list, "2");
	cr_assert_str_eq(take(&s), "+OK 2 18\r\n");
	char want[64];
	snprintf(want, sizeof(want), "+OK 2 %u.%u\r\n", s.m.md.uidvalidity, u2);
	CMD(&s, pop3_mail_uidl, "2");
	cr_assert_str_eq(take(&s), want);
	CMD(&s, pop3_mail_dele, "2");
	cr_assert_str_eq(take(&s), "+OK message 2 deleted\r\n");
	CMD(&s, pop3_mail_dele, "2");
	cr_assert_str_eq(take(&s), "-ERR message already deleted\r\n");
	CMD(&s, pop3_mail_list, "2");
	cr_assert_str_eq(take(&s), "-ERR message already deleted\r\n");
	CMD(&s, pop3_mail_list, "");
	cr_assert_str_eq(take(&s), "+OK 2 messages (36 octets)\r\n1 17\r\n3 19\r\n.\r\n");
	CMD(&s, pop3_mail_rset, "");
	cr_assert_str_eq(take(&s), "+OK maildrop has 3 messages (54 octets)\r\n");
	CMD(&s, pop3_mail_list, "4");
	cr_assert_str_eq(take(&s), "-ERR no such message\r\n");
	CMD(&s, pop3_mail_list, "x");
	cr_assert_str_eq(take(&s), "-ERR invalid message number\r\n");
	CMD(&s, pop3_mail_stat, "1");
	cr_assert(strncmp(take(&s), "-ERR", 4) == 0);
	sess_free(&s);
}

Test(pop3_mail, retr_and_top_are_dot_stuffed)
{
	const char *msg = "Subject: d\r\n\r\n.one\r\ntwo\r\n.\r\nlast";
	deliver(msg, strlen(msg));
	struct sess s;
	sess_init(&s);
	cr_assert_eq(open_maildrop(&s), 0);
	cr_assert_eq(CMD(&s, pop3_mail_retr, "1"), 1);
	cr_assert(s.c.paused);
	cr_assert_eq(finish(&s), 0);
	char want[128];
	snprintf(want, sizeof(want),
	         "+OK %zu octets\r\nSubject: d\r\n\r\n..one\r\ntwo\r\n..\r\nlast\r\n.\r\n",
	         strlen(msg));
	cr_assert_str_eq(take(&s), want);
	cr_assert_eq(CMD(&s, pop3_mail_top, "1 1"), 1);
	cr_assert_eq(finish(&s), 0);
	snprintf(want, sizeof(want),
	         "+OK top of message follows\r\nSubject: d\r\n\r\n..one\r\n.\r\n");
	cr_assert_str_eq(take(&s), want);
	cr_assert_eq(CMD(&s, pop3_mail_top, "1"), -1);
	cr_assert(strncmp(take(&s), "-ERR", 4) == 0);
	cr_assert_eq(CMD(&s, pop3_mail_top, "1 x"), -1);
	cr_assert(strncmp(take(&s), "-ERR", 4) == 0);
	sess_free(&s);
}

Test(pop3_mail, large_message_streams_in_chunks_byte_exact)
{
	size_t n = 300 * 1024;
	char *msg = xmalloc(n);
	for (size_t i = 0; i < n; i++)
		msg[i] = (i % 61 == 59) ? '\r' : (i % 61 == 60) ? '\n' : (i % 61 == 0) ? '.' : 'x';
	deliver(msg, n);
	struct sess s;
	sess_init(&s);
	cr_assert_eq(open_maildrop(&s), 0);
	CMD(&s, pop3_mail_retr, "1");
	cr_assert_eq(finish(&s), 0);
	/* Undo the stuffing and compare. */
	const char *o = s.c.out.data;
	const char *body = strstr(o, "\r\n") + 2;
	size_t blen = s.c.out.len - (size_t)(body - o);
	char *back = xmalloc(blen);
	size_t k = 0;
	bool bol = true;
	for (size_t i = 0; i < blen; i++) {
		if (bol && body[i] == '.')
			i++;
		back[k++] = body[i];
		bol = body[i] == '\n';
	}
	/* back ends with the terminator line "\r\n" of the last '.' removed: length n
	 * (+CRLF when msg did not end with one). */
	size_t expect = n + (msg[n - 1] == '\n' ? 0 : 2);
	cr_assert_eq(k - 2, expect, "got %zu want %zu", k - 2, expect);
	cr_assert(memcmp(back, msg, n) == 0);
	free(back);
	free(msg);
	sess_free(&s);
}

Test(pop3_mail, second_session_is_in_use_until_the_first_ends)
{
	struct sess a, b;
	sess_init(&a);
	sess_init(&b);
	cr_assert_eq(open_maildrop(&a), 0);
	cr_assert_eq(open_maildrop(&b), -EBUSY);
	pop3_mail_free(&b.m);
	sess_free(&a);
	cr_assert_eq(open_maildrop(&b), 0);
	sess_free(&b);
}

Test(pop3_mail, update_removes_exactly_the_deleted)
{
	uint32_t u[5];
	for (int i = 0; i < 5; i++)
		u[i] = deliver("Subject: x\r\n\r\ny\r\n", 17);
	/* Another client flags message 2 \Deleted without expunging: POP3 must leave it. */
	struct store_uid_range r2 = {u[1], u[1]};
	cr_assert_eq(
	    FX_CALL(&fx, store_flags_store(fx.s, alice_inbox, &r2, 1, STORE_FLAGS_ADD,
	                                   STORE_DELETED, NULL, 0, store_sync_flags, &fx.w)),
	    0);
	struct sess s;
	sess_init(&s);
	cr_assert_eq(open_maildrop(&s), 0);
	CMD(&s, pop3_mail_dele, "1");
	CMD(&s, pop3_mail_dele, "3");
	CMD(&s, pop3_mail_dele, "4");
	take(&s);
	pop3_mail_update(&s.m);
	cr_assert_eq(finish(&s), 0);
	sess_free(&s);
	cr_assert_eq(FX_CALL(&fx, store_message_list(fx.s, alice_inbox, 0, store_sync_msgs, &fx.w)),
	             0);
	cr_assert_eq(fx.w.msgs.n, 2);
	cr_assert_eq(fx.w.msgs.v[0].uid, u[1]);
	cr_assert_eq(fx.w.msgs.v[1].uid, u[4]);
}

Test(pop3_mail, no_quit_removes_nothing)
{
	for (int i = 0; i < 3; i++)
		deliver("Subject: x\r\n\r\ny\r\n", 17);
	struct sess s;
	sess_init(&s);
	cr_assert_eq(open_maildrop(&s), 0);
	CMD(&s, pop3_mail_dele, "1");
	CMD(&s, pop3_mail_dele, "2");
	sess_free(&s); /* the connection dropped */
	cr_assert_eq(inbox_count(), 3);
}

Test(pop3_mail, update_with_nothing_deleted_writes_nothing)
{
	deliver("Subject: x\r\n\r\ny\r\n", 17);
	struct sess s;
	sess_init(&s);
	cr_assert_eq(open_maildrop(&s), 0);
	pop3_mail_update(&s.m);
	cr_assert(s.done); /* synchronous */
	s.done = false;
	cr_assert_eq(s.rc, 0);
	sess_free(&s);
	cr_assert_eq(inbox_count(), 1);
}

Test(pop3_mail, snapshot_ignores_later_deliveries_and_survives_expunges)
{
	uint32_t u1 = deliver("Subject: 1\r\n\r\na\r\n", 17);
	deliver("Subject: 2\r\n\r\nb\r\n", 17);
	struct sess s;
	sess_init(&s);
	cr_assert_eq(open_maildrop(&s), 0);
	deliver("Subject: 3\r\n\r\nc\r\n", 17);
	struct store_uid_range r = {u1, u1};
	cr_assert_eq(
	    FX_CALL(&fx, store_flags_store(fx.s, alice_inbox, &r, 1, STORE_FLAGS_ADD, STORE_DELETED,
	                                   NULL, 0, store_sync_flags, &fx.w)),
	    0);
	cr_assert_eq(FX_CALL(&fx, store_expunge(fx.s, alice_inbox, &r, 1, store_sync_uids, &fx.w)),
	             0);
	CMD(&s, pop3_mail_stat, "");
	cr_assert_str_eq(take(&s), "+OK 2 34\r\n");
	cr_assert_eq(CMD(&s, pop3_mail_retr, "1"), 1);
	cr_assert_eq(finish(&s), 0);
	cr_assert(strncmp(take(&s), "-ERR no such message", 20) == 0);
	CMD(&s, pop3_mail_retr, "2");
	cr_assert_eq(finish(&s), 0);
	cr_assert(strstr(take(&s), "Subject: 2") != NULL);
	/* DELE of the vanished one and QUIT: fine, the other is removed. */
	CMD(&s, pop3_mail_dele, "1");
	CMD(&s, pop3_mail_dele, "2");
	pop3_mail_update(&s.m);
	cr_assert_eq(finish(&s), 0);
	sess_free(&s);
	cr_assert_eq(inbox_count(), 1); /* message 3, delivered after login */
}

Test(pop3_mail, connection_closed_during_retr)
{
	deliver("Subject: 1\r\n\r\na\r\n", 17);
	struct sess *s = xcalloc(1, sizeof(*s));
	sess_init(s);
	cr_assert_eq(open_maildrop(s), 0);
	CMD(s, pop3_mail_retr, "1");
	s->c.closed = true; /* the client went away while the read runs */
	/* The completion must touch nothing but conn_release, then return. */
	pthread_mutex_lock(&post_lock);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	while (post_head == NULL)
		cr_assert_eq(pthread_cond_timedwait(&post_cv, &post_lock, &ts), 0);
	struct posted *p = post_head;
	post_head = NULL;
	post_tail = NULL;
	pthread_mutex_unlock(&post_lock);
	p->fn(p->arg);
	free(p);
	cr_assert_eq(s->c.holds, 0);
	cr_assert_not(s->done);
	cr_assert_eq(s->c.out.len, 0);
	sess_free(s);
	free(s);
}

/* ---- pop3_auth ------------------------------------------------------------------ */

struct asess {
	struct conn c;
	struct pop3_auth a;
	bool done;
	struct auth_login_result r;
};

static void asess_done(void *sess, const struct auth_login_result *r)
{
	struct asess *x = sess;
	x->done = true;
	x->r = *r;
	x->r.user = NULL;
}

static void asess_init(struct asess *s)
{
	memset(s, 0, sizeof(*s));
	buf_init(&s->c.out, 16 << 20);
	s->c.sv.store = ps;
	s->c.sv.notify = nt;
	s->c.sv.authfail = authfail_new();
	pop3_auth_init(&s->a, &s->c, s, asess_done, NULL);
	g_login_sess = s;
}

static void asess_free(struct asess *s)
{
	pop3_auth_free(&s->a);
	authfail_free(s->c.sv.authfail);
	buf_free(&s->c.out);
}

static char *atake(struct asess *s)
{
	static char last[4096];
	memcpy(last, s->c.out.data ? s->c.out.data : "", s->c.out.len);
	last[s->c.out.len] = '\0';
	buf_reset(&s->c.out);
	return last;
}

Test(pop3_mail, user_pass)
{
	struct asess s;
	asess_init(&s);
	cr_assert_eq(pop3_auth_pass(&s.a, "pw-alice", 8), -1);
	cr_assert_str_eq(atake(&s), "-ERR USER first\r\n");
	pop3_auth_user(&s.a, "alice@corp.example", 18);
	cr_assert_str_eq(atake(&s), "+OK send PASS\r\n");
	cr_assert_eq(pop3_auth_pass(&s.a, "pw-alice", 8), 1);
	pump_until(&s.done);
	cr_assert_eq(s.r.status, AUTH_LOGIN_OK);
	cr_assert_eq(s.r.user_id, alice);
	/* A failed PASS needs a new USER. */
	s.done = false;
	pop3_auth_user(&s.a, "alice@corp.example", 18);
	atake(&s);
	cr_assert_eq(pop3_auth_pass(&s.a, "wrong", 5), 1);
	pump_until(&s.done);
	cr_assert_eq(s.r.status, AUTH_LOGIN_FAILED);
	cr_assert_eq(pop3_auth_pass(&s.a, "pw-alice", 8), -1);
	cr_assert_str_eq(atake(&s), "-ERR USER first\r\n");
	pop3_auth_user(&s.a, "", 0);
	cr_assert(strncmp(atake(&s), "-ERR", 4) == 0);
	pop3_auth_user(&s.a, "a\tb", 3);
	cr_assert(strncmp(atake(&s), "-ERR", 4) == 0);
	asess_free(&s);
}

Test(pop3_mail, auth_plain_forms)
{
	/* "\0alice@corp.example\0pw-alice" */
	const char *tok = "AGFsaWNlQGNvcnAuZXhhbXBsZQBwdy1hbGljZQ==";
	char line[128];
	struct asess s;
	asess_init(&s);
	snprintf(line, sizeof(line), "PLAIN %s", tok);
	cr_assert_eq(pop3_auth_auth(&s.a, line, strlen(line)), 1);
	pump_until(&s.done);
	cr_assert_eq(s.r.status, AUTH_LOGIN_OK);
	/* continuation */
	s.done = false;
	cr_assert_eq(pop3_auth_auth(&s.a, "plain", 5), 0);
	cr_assert_str_eq(atake(&s), "+ \r\n");
	cr_assert(pop3_auth_waiting(&s.a));
	cr_assert_eq(pop3_auth_continue(&s.a, tok, strlen(tok)), 1);
	cr_assert_not(pop3_auth_waiting(&s.a));
	pump_until(&s.done);
	cr_assert_eq(s.r.status, AUTH_LOGIN_OK);
	/* cancel */
	s.done = false;
	pop3_auth_auth(&s.a, "PLAIN", 5);
	atake(&s);
	cr_assert_eq(pop3_auth_continue(&s.a, "*", 1), -1);
	cr_assert(strncmp(atake(&s), "-ERR", 4) == 0);
	cr_assert_not(pop3_auth_waiting(&s.a));
	/* garbage, unknown mechanisms, EXTERNAL without a certificate */
	cr_assert_eq(pop3_auth_auth(&s.a, "PLAIN @@@", 9), -1);
	cr_assert(strncmp(atake(&s), "-ERR", 4) == 0);
	cr_assert_eq(pop3_auth_auth(&s.a, "PLAIN =", 7), -1);
	cr_assert(strncmp(atake(&s), "-ERR", 4) == 0);
	cr_assert_eq(pop3_auth_auth(&s.a, "CRAM-MD5", 8), -1);
	cr_assert(strncmp(atake(&s), "-ERR", 4) == 0);
	cr_assert_eq(pop3_auth_auth(&s.a, "EXTERNAL =", 10), -1);
	cr_assert(strncmp(atake(&s), "-ERR", 4) == 0);
	cr_assert_str_eq(pop3_auth_mechanisms(&s.a), "PLAIN SCRAM-SHA-256");
	/* authzid other than authcid: refused without asking the store */
	/* "bob@corp.example\0alice@corp.example\0pw-alice" */
	const char *proxy = "Ym9iQGNvcnAuZXhhbXBsZQBhbGljZUBjb3JwLmV4YW1wbGUAcHctYWxpY2U=";
	snprintf(line, sizeof(line), "PLAIN %s", proxy);
	cr_assert_eq(pop3_auth_auth(&s.a, line, strlen(line)), 1);
	cr_assert(s.done);
	cr_assert_eq(s.r.status, AUTH_LOGIN_FAILED);
	asess_free(&s);
}

Test(pop3_mail, auth_external_with_a_certificate_identity)
{
	struct asess s;
	asess_init(&s);
	s.c.identity = "alice@corp.example";
	cr_assert_str_eq(pop3_auth_mechanisms(&s.a), "PLAIN SCRAM-SHA-256 EXTERNAL");
	cr_assert_eq(pop3_auth_auth(&s.a, "EXTERNAL =", 10), 1);
	pump_until(&s.done);
	cr_assert_eq(s.r.status, AUTH_LOGIN_OK);
	cr_assert_eq(s.r.user_id, alice);
	/* authzid must be the certificate's own identity */
	s.done = false;
	/* base64("bob@corp.example") */
	cr_assert_eq(pop3_auth_auth(&s.a, "EXTERNAL Ym9iQGNvcnAuZXhhbXBsZQ==", 33), 1);
	pump_until(&s.done);
	cr_assert_eq(s.r.status, AUTH_LOGIN_FAILED);
	/* a certificate for an address that is no user */
	s.done = false;
	s.c.identity = "nobody@corp.example";
	cr_assert_eq(pop3_auth_auth(&s.a, "EXTERNAL", 8), 0);
	cr_assert_str_eq(atake(&s), "+ \r\n");
	cr_assert_eq(pop3_auth_continue(&s.a, "", 0), 1);
	pump_until(&s.done);
	cr_assert_eq(s.r.status, AUTH_LOGIN_FAILED);
	asess_free(&s);
}

Test(pop3_mail, bare_lf_message_and_top_beyond_the_body)
{
	deliver("Subject: lf\n\n.dot\nend", 21);
	struct sess s;
	sess_init(&s);
	cr_assert_eq(open_maildrop(&s), 0);
	cr_assert_eq(CMD(&s, pop3_mail_retr, "1"), 1);
	cr_assert_eq(finish(&s), 0);
	cr_assert_str_eq(take(&s), "+OK 21 octets\r\nSubject: lf\r\n\r\n..dot\r\nend\r\n.\r\n");
	cr_assert_eq(CMD(&s, pop3_mail_top, "1 0"), 1);
	cr_assert_eq(finish(&s), 0);
	cr_assert_str_eq(take(&s), "+OK top of message follows\r\nSubject: lf\r\n\r\n.\r\n");
	cr_assert_eq(CMD(&s, pop3_mail_top, "1 99"), 1);
	cr_assert_eq(finish(&s), 0);
	cr_assert_str_eq(take(&s),
	                 "+OK top of message follows\r\nSubject: lf\r\n\r\n..dot\r\nend\r\n.\r\n");
	sess_free(&s);
}

Test(pop3_mail, external_is_refused_where_a_password_is_demanded_too)
{
	struct asess s;
	asess_init(&s);
	s.c.identity = "alice@corp.example";
	/* The global policy: certificate AND password for everyone: not even offered. */
	struct config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.auth.require_client_certificate = true;
	s.c.cfg = &cfg;
	cr_assert_str_eq(pop3_auth_mechanisms(&s.a), "PLAIN SCRAM-SHA-256");
	cr_assert_eq(pop3_auth_auth(&s.a, "EXTERNAL =", 10), -1);
	cr_assert(strncmp(atake(&s), "-ERR", 4) == 0);
	/* The user's own flag: offered, but refused for that user. */
	s.c.cfg = NULL;
	cr_assert_eq(FX_CALL(&fx, store_user_set_require_cert(fx.s, "alice@corp.example", true,
	                                                      store_sync_done_cb, &fx.w)),
	             0);
	cr_assert_str_eq(pop3_auth_mechanisms(&s.a), "PLAIN SCRAM-SHA-256 EXTERNAL");
	cr_assert_eq(pop3_auth_auth(&s.a, "EXTERNAL =", 10), 1);
	pump_until(&s.done);
	cr_assert_eq(s.r.status, AUTH_LOGIN_FAILED);
	asess_free(&s);
}
