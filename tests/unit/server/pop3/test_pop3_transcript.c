/*
 * Whole POP3 sessions (server/pop3/pop3_session.c with pop3_auth.c and pop3_mail.c) as
 * transcripts through the fake conn, against a real store in a mkdtemp folder. Logins go
 * through pop3_fakes.c's auth_login (the store's password check); completions run when
 * the test pumps the poster, as they would on the loop.
 */
#include "server/notify.h"
#include "server/pop3/pop3.h"
#include "server/auth/auth.h"
#include "server/services.h"
#include "tests/unit/support/pop3_fakes.h"
#include "tests/unit/support/store_test_util.h"

struct conn *fake_conn_open(const struct proto_handler *h, const struct config *cfg,
                            const struct cfg_listener *l, bool tls);
void fake_conn_line(struct conn *c, const char *line);
void fake_conn_tls_ready(struct conn *c);
const char *fake_conn_output(struct conn *c);
void fake_conn_clear_output(struct conn *c);
bool fake_conn_closed(const struct conn *c);
void fake_conn_free(struct conn *c);
void fake_conn_set_services(struct conn *c, struct services *sv);
void fake_conn_set_cert_identity(struct conn *c, const char *identity);
unsigned fake_conn_holds(const struct conn *c);
size_t fake_conn_line_limit(const struct conn *c);

static struct config cfg;
static struct cfg_listener listener;
static struct store_fixture fx; /* blocking face: setup and checks */
static struct services sv;
static int64_t alice, alice_inbox;

static void setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.hostname = "mail.test";
	cfg.limits.commands = 100;
	cfg.limits.errors = 10;
	memset(&fx, 0, sizeof(fx));
	fx_dir(&fx);
	fx_open(&fx);
	store_sync_init(&fx.w);
	memset(&sv, 0, sizeof(sv));
	sv.cfg = &cfg;
	struct store_options opt = {.path = fx.path, .poster = &pop3_fake_poster};
	const char *err;
	cr_assert_eq(store_open(&opt, &sv.store, &err), 0);
	sv.notify = notify_new();
	sv.authfail = authfail_new();
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
	store_close(sv.store);
	pop3_fake_drop_posted();
	authfail_free(sv.authfail);
	notify_free(sv.notify);
	store_sync_done(&fx.w);
	store_close(fx.s);
	fx_rmdir(&fx);
}

TestSuite(pop3_transcript, .init = setup, .fini = teardown, .timeout = 60);

static void deliver(const char *msg)
{
	struct store_target t = {.user_id = alice};
	struct store_deliver_req req = {
	    .data = msg, .size = strlen(msg), .targets = &t, .n_targets = 1};
	cr_assert_eq(FX_CALL(&fx, store_deliver(fx.s, &req, store_sync_delivery, &fx.w)), 0);
}

static size_t inbox_count(void)
{
	cr_assert_eq(FX_CALL(&fx, store_message_list(fx.s, alice_inbox, 0, store_sync_msgs, &fx.w)),
	             0);
	return fx.w.msgs.n;
}

static struct conn *open_tls(void)
{
	struct conn *c = fake_conn_open(&pop3_proto_handler, &cfg, &listener, true);
	fake_conn_set_services(c, &sv);
	cr_assert(strncmp(fake_conn_output(c), "+OK", 3) == 0);
	fake_conn_clear_output(c);
	return c;
}

static bool no_holds(void *arg)
{
	return fake_conn_holds(arg) == 0;
}

/* Sends one line, runs every completion it causes, returns the output (then cleared). */
static const char *say(struct conn *c, const char *line)
{
	static char out[1 << 16];
	fake_conn_line(c, line);
	cr_assert(pop3_fake_run_until(no_holds, c), "no completion for %s", line);
	snprintf(out, sizeof(out), "%s", fake_conn_output(c));
	fake_conn_clear_output(c);
	return out;
}

#define EXPECT(c, line, want) cr_assert_str_eq(say((c), (line)), (want), "after %s", (line))
#define EXPECT_PREFIX(c, line, want)                                                               \
	do {                                                                                       \
		const char *got_ = say((c), (line));                                               \
		cr_assert(strncmp(got_, (want), strlen(want)) == 0, "after %s: %s", (line), got_); \
	} while (0)

static void login(struct conn *c)
{
	EXPECT_PREFIX(c, "USER alice@corp.example", "+OK");
	EXPECT_PREFIX(c, "PASS pw-alice", "+OK");
}

Test(pop3_transcript, user_pass_stat_retr_dele_quit)
{
	deliver("Subject: one\r\n\r\n.dot\r\n");
	deliver("Subject: two\r\n\r\nb\r\n");
	struct conn *c = open_tls();
	EXPECT_PREFIX(c, "STAT", "-ERR");
	login(c);
	EXPECT(c, "STAT", "+OK 2 41\r\n");
	EXPECT(c, "LIST", "+OK 2 messages (41 octets)\r\n1 22\r\n2 19\r\n.\r\n");
	EXPECT(c, "RETR 1", "+OK 22 octets\r\nSubject: one\r\n\r\n..dot\r\n.\r\n");
	EXPECT(c, "TOP 2 0", "+OK top of message follows\r\nSubject: two\r\n\r\n.\r\n");
	EXPECT(c, "DELE 1", "+OK message 1 deleted\r\n");
	EXPECT_PREFIX(c, "USER bob", "-ERR");
	EXPECT_PREFIX(c, "QUIT", "+OK");
	cr_assert(fake_conn_closed(c));
	fake_conn_free(c);
	cr_assert_eq(inbox_count(), 1);
}

Test(pop3_transcript, wrong_password_and_unknown_user_answer_alike)
{
	struct conn *c = open_tls();
	EXPECT_PREFIX(c, "USER alice@corp.example", "+OK");
	char a[256], b[256];
	snprintf(a, sizeof(a), "%s", say(c, "PASS nope"));
	EXPECT_PREFIX(c, "USER nobody@corp.example", "+OK");
	snprintf(b, sizeof(b), "%s", say(c, "PASS nope"));
	cr_assert_str_eq(a, b);
	cr_assert(strncmp(a, "-ERR [AUTH]", 11) == 0, "%s", a);
	EXPECT_PREFIX(c, "PASS pw-alice", "-ERR"); /* needs USER again */
	login(c);
	fake_conn_free(c);
}

Test(pop3_transcript, pipelined_login_and_commands_keep_their_order)
{
	deliver("Subject: p\r\n\r\nx\r\n");
	struct conn *c = open_tls();
	/* Everything in one go, as a PIPELINING client sends it; the fake conn delivers the
	 * next line even while the session is busy, which the session must queue. */
	fake_conn_line(c, "USER alice@corp.example");
	fake_conn_line(c, "PASS pw-alice");
	fake_conn_line(c, "STAT");
	cr_assert(pop3_fake_run_until(no_holds, c));
	cr_assert_str_eq(fake_conn_output(c),
	                 "+OK send PASS\r\n+OK maildrop locked and ready\r\n+OK 1 17\r\n");
	fake_conn_free(c);
}

Test(pop3_transcript, in_use_while_another_session_holds_the_maildrop)
{
	struct conn *a = open_tls();
	login(a);
	struct conn *b = open_tls();
	EXPECT_PREFIX(b, "USER alice@corp.example", "+OK");
	EXPECT_PREFIX(b, "PASS pw-alice", "-ERR [IN-USE]");
	EXPECT_PREFIX(b, "STAT", "-ERR");
	fake_conn_free(a); /* dropped: the lock goes with it */
	login(b);
	fake_conn_free(b);
}

Test(pop3_transcript, dropped_connection_deletes_nothing)
{
	deliver("Subject: 1\r\n\r\nx\r\n");
	deliver("Subject: 2\r\n\r\nx\r\n");
	struct conn *c = open_tls();
	login(c);
	EXPECT_PREFIX(c, "DELE 1", "+OK");
	EXPECT_PREFIX(c, "DELE 2", "+OK");
	fake_conn_free(c);
	cr_assert_eq(inbox_count(), 2);
}

Test(pop3_transcript, rset_then_quit_keeps_everything)
{
	deliver("Subject: 1\r\n\r\nx\r\n");
	struct conn *c = open_tls();
	login(c);
	EXPECT_PREFIX(c, "DELE 1", "+OK");
	EXPECT(c, "RSET", "+OK maildrop has 1 messages (17 octets)\r\n");
	EXPECT_PREFIX(c, "QUIT", "+OK");
	fake_conn_free(c);
	cr_assert_eq(inbox_count(), 1);
}

Test(pop3_transcript, auth_plain_initial_response_continuation_and_cancel)
{
	struct conn *c = open_tls();
	EXPECT(c, "AUTH PLAIN", "+ \r\n");
	EXPECT_PREFIX(c, "*", "-ERR");
	EXPECT(c, "AUTH PLAIN", "+ \r\n");
	/* base64("\0alice@corp.example\0pw-alice") */
	EXPECT_PREFIX(c, "AGFsaWNlQGNvcnAuZXhhbXBsZQBwdy1hbGljZQ==", "+OK");
	EXPECT_PREFIX(c, "STAT", "+OK 0 0");
	fake_conn_free(c);
	c = open_tls();
	EXPECT_PREFIX(c, "AUTH PLAIN AGFsaWNlQGNvcnAuZXhhbXBsZQBwdy1hbGljZQ==", "+OK");
	fake_conn_free(c);
}

Test(pop3_transcript, capa_before_and_after_login)
{
	struct conn *c = open_tls();
	const char *caps = say(c, "CAPA");
	cr_assert(strstr(caps, "\r\nUSER\r\n") != NULL, "%s", caps);
	cr_assert(strstr(caps, "\r\nSASL PLAIN SCRAM-SHA-256\r\n") != NULL, "%s", caps);
	cr_assert(strstr(caps, "\r\nUIDL\r\n") != NULL, "%s", caps);
	cr_assert(strstr(caps, "STLS") == NULL, "%s", caps);
	fake_conn_free(c);
	c = open_tls();
	fake_conn_set_cert_identity(c, "alice@corp.example");
	caps = say(c, "CAPA");
	cr_assert(strstr(caps, "\r\nSASL PLAIN SCRAM-SHA-256 EXTERNAL\r\n") != NULL, "%s", caps);
	EXPECT_PREFIX(c, "AUTH EXTERNAL =", "+OK");
	caps = say(c, "CAPA");
	cr_assert(strstr(caps, "USER") == NULL && strstr(caps, "SASL") == NULL, "%s", caps);
	fake_conn_free(c);
}

Test(pop3_transcript, login_commands_refused_before_tls)
{
	struct conn *c = fake_conn_open(&pop3_proto_handler, &cfg, &listener, false);
	fake_conn_set_services(c, &sv);
	fake_conn_clear_output(c);
	EXPECT_PREFIX(c, "USER alice@corp.example", "-ERR [AUTH]");
	EXPECT_PREFIX(c, "PASS pw-alice", "-ERR [AUTH]");
	EXPECT_PREFIX(c, "AUTH PLAIN", "-ERR [AUTH]");
	cr_assert_eq(pop3_fake_logins, 0);
	fake_conn_free(c);
}

Test(pop3_transcript, errors_after_login_count_towards_the_limit)
{
	struct conn *c = open_tls();
	login(c);
	for (int i = 0; i < 9; i++)
		EXPECT(c, "RETR 99", "-ERR no such message\r\n");
	EXPECT(c, "RETR 99", "-ERR no such message\r\n-ERR Too many errors\r\n");
	cr_assert(fake_conn_closed(c));
	fake_conn_free(c);
}

Test(pop3_transcript, failed_logins_count_towards_the_limit)
{
	struct conn *c = open_tls();
	for (int i = 0; i < 9; i++) {
		EXPECT_PREFIX(c, "USER alice@corp.example", "+OK");
		EXPECT_PREFIX(c, "PASS wrong", "-ERR [AUTH]");
	}
	EXPECT_PREFIX(c, "USER alice@corp.example", "+OK");
	const char *last = say(c, "PASS wrong");
	cr_assert(strstr(last, "-ERR Too many errors") != NULL, "%s", last);
	cr_assert(fake_conn_closed(c));
	fake_conn_free(c);
}

Test(pop3_transcript, quit_during_a_pipelined_login_is_kept_in_order)
{
	deliver("Subject: q\r\n\r\nx\r\n");
	struct conn *c = open_tls();
	fake_conn_line(c, "USER alice@corp.example");
	fake_conn_line(c, "PASS pw-alice");
	fake_conn_line(c, "DELE 1");
	cr_assert(pop3_fake_run_until(no_holds, c));
	fake_conn_line(c, "QUIT");
	cr_assert(pop3_fake_run_until(no_holds, c));
	cr_assert_str_eq(fake_conn_output(c), "+OK send PASS\r\n+OK maildrop locked and ready\r\n"
	                                      "+OK message 1 deleted\r\n+OK Bye\r\n");
	cr_assert(fake_conn_closed(c));
	fake_conn_free(c);
	cr_assert_eq(inbox_count(), 0);
}

/* A small random walk over the command set (valid and broken lines, logins that succeed
 * and fail, pipelined lines behind running steps): nothing may crash, leak (ASan build)
 * or leave a hold behind, and a session that quits deletes only what it marked. */
static const char *const walk_lines[] = {
    "USER alice@corp.example",
    "PASS pw-alice",
    "PASS wrong",
    "AUTH PLAIN AGFsaWNlQGNvcnAuZXhhbXBsZQBwdy1hbGljZQ==",
    "AUTH PLAIN",
    "AUTH PLAIN !!",
    "AUTH EXTERNAL =",
    "*",
    "AGFsaWNlQGNvcnAuZXhhbXBsZQBwdy1hbGljZQ==",
    "STAT",
    "STAT x",
    "LIST",
    "LIST 1",
    "LIST 3",
    "LIST 0",
    "UIDL",
    "UIDL 2",
    "RETR 1",
    "RETR 2",
    "RETR 9",
    "TOP 1 0",
    "TOP 2 1",
    "TOP 1",
    "DELE 1",
    "DELE 2",
    "DELE 7",
    "RSET",
    "NOOP",
    "CAPA",
    "STLS",
    "APOP a b",
    "",
    "XYZZY",
    "retr 1",
    "QUIT",
};

Test(pop3_transcript, random_walks_never_crash)
{
	deliver("Subject: 1\r\n\r\n.a\r\nb\r\n");
	deliver("Subject: 2\r\n\r\nc");
	unsigned seed = 6;
	size_t n_lines = sizeof(walk_lines) / sizeof(walk_lines[0]);
	for (int session = 0; session < 60; session++) {
		struct conn *c = open_tls();
		for (int i = 0; i < 40 && !fake_conn_closed(c); i++) {
			seed = seed * 1103515245u + 12345u;
			const char *line = walk_lines[(seed >> 16) % n_lines];
			fake_conn_line(c, line);
			/* Sometimes pipeline the next line before the step completes. */
			if (((seed >> 8) & 3) != 0)
				cr_assert(pop3_fake_run_until(no_holds, c), "stuck after %s", line);
			fake_conn_clear_output(c);
		}
		cr_assert(pop3_fake_run_until(no_holds, c));
		fake_conn_free(c);
	}
}

void fake_conn_shutdown(struct conn *c);

Test(pop3_transcript, shutdown_mid_retr_writes_nothing_into_the_message)
{
	deliver("Subject: s\r\n\r\nbody\r\n");
	struct conn *c = open_tls();
	login(c);
	fake_conn_line(c, "RETR 1"); /* the read is queued, not yet answered */
	fake_conn_shutdown(c);
	cr_assert_str_eq(fake_conn_output(c), "");
	cr_assert(fake_conn_closed(c));
	cr_assert(pop3_fake_run_until(no_holds, c));
	cr_assert_str_eq(fake_conn_output(c), "");
	fake_conn_free(c);
}

Test(pop3_transcript, shutdown_outside_a_step_says_goodbye)
{
	struct conn *c = open_tls();
	login(c);
	fake_conn_shutdown(c);
	cr_assert_str_eq(fake_conn_output(c), "-ERR [SYS/TEMP] Server shutting down\r\n");
	fake_conn_free(c);
}

Test(pop3_transcript, bare_auth_lists_the_mechanisms)
{
	struct conn *c = open_tls();
	EXPECT(c, "AUTH", "+OK\r\nPLAIN\r\nSCRAM-SHA-256\r\n.\r\n");
	fake_conn_set_cert_identity(c, "alice@corp.example");
	EXPECT(c, "AUTH", "+OK\r\nPLAIN\r\nSCRAM-SHA-256\r\nEXTERNAL\r\n.\r\n");
	login(c);
	fake_conn_free(c);
}

Test(pop3_transcript, a_sasl_continuation_may_be_longer_than_a_command)
{
	/* Three AUTH_FIELD_MAX fields in base64 exceed the 2048-byte line before login:
	 * the continuation line gets room, and the limit is restored after it. */
	struct conn *c = open_tls();
	EXPECT(c, "AUTH PLAIN", "+ \r\n");
	cr_assert_eq(fake_conn_line_limit(c), 4096);
	EXPECT_PREFIX(c, "*", "-ERR");
	cr_assert_eq(fake_conn_line_limit(c), 0);
	EXPECT(c, "AUTH PLAIN", "+ \r\n");
	EXPECT_PREFIX(c, "AGFsaWNlQGNvcnAuZXhhbXBsZQBwdy1hbGljZQ==", "+OK");
	cr_assert_eq(fake_conn_line_limit(c), 1024); /* the authenticated POP3 limit */
	fake_conn_free(c);
}
