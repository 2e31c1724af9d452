/*
 * Store errors seen by whole protocol sessions: each session runs once against the
 * in-memory store to count its store calls, then once more per call with the fault
 * backend failing exactly that call (in its callback, then at submit). Each run must end
 * (no completion left waiting), must not crash, and the command whose store call failed
 * must get the protocol's temporary error. The real store front is linked; logins go
 * through pop3_fakes.c's auth_login, which asks the store.
 */
#include "server/auth/scram.h"
#include "server/imap/imap.h"
#include "server/notify.h"
#include "server/pop3/pop3.h"
#include "server/services.h"
#include "server/smtp/smtp.h"
#include "storage/fault/store_fault.h"
#include "tests/unit/support/pop3_fakes.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct conn *fake_conn_open(const struct proto_handler *h, const struct config *cfg,
                            const struct cfg_listener *l, bool tls);
void fake_conn_line(struct conn *c, const char *line);
const char *fake_conn_output(struct conn *c);
void fake_conn_clear_output(struct conn *c);
bool fake_conn_closed(const struct conn *c);
void fake_conn_free(struct conn *c);
void fake_conn_set_services(struct conn *c, struct services *sv);
unsigned fake_conn_holds(const struct conn *c);

static struct config cfg;
static struct cfg_listener listener;
static struct services sv;

/* ---- The store, through the test's poster ---- */

struct pumped {
	bool done;
	int rc;
	struct store_users users;
};

static void pumped_delivery(void *ctx, int rc, struct store_delivery_result *res)
{
	struct pumped *p = ctx;
	p->rc = rc;
	(void)res;
	p->done = true;
}

static void pumped_users(void *ctx, int rc, struct store_users *res)
{
	struct pumped *p = ctx;
	p->rc = rc;
	store_users_move(&p->users, res);
	p->done = true;
}

static bool pumped_done(void *arg)
{
	return ((struct pumped *)arg)->done;
}

/* Runs a store call to its end on this thread: the callback comes through the poster. */
#define PUMP(p, call)                                                                              \
	do {                                                                                       \
		store_users_free(&(p)->users);                                                     \
		memset((p), 0, sizeof(*(p)));                                                      \
		int rc_ = (call);                                                                  \
		cr_assert_eq(rc_, 0, "%s: %d", #call, rc_);                                        \
		cr_assert(pop3_fake_run_until(pumped_done, (p)));                                  \
	} while (0)

static void store_setup(void)
{
	static const char msg[] = "From: bob@corp.example\r\nTo: alice@corp.example\r\n"
	                          "Subject: hello\r\n\r\nHello Alice, the report is ready.\r\n";
	struct pumped p = {0};
	PUMP(&p, store_user_add(sv.store, "alice@corp.example", "pw-alice", pumped_users, &p));
	cr_assert_eq(p.rc, 0);
	struct store_target t = {.user_id = p.users.v[0].id};
	struct store_deliver_req req = {
	    .data = msg, .size = sizeof(msg) - 1, .targets = &t, .n_targets = 1};
	for (int i = 0; i < 2; i++) {
		PUMP(&p, store_deliver(sv.store, &req, pumped_delivery, &p));
		cr_assert_eq(p.rc, 0);
	}
	store_users_free(&p.users);
}

static void open_store(void)
{
	struct store_options opt = {.backend = "fault:mem", .poster = &pop3_fake_poster};
	const char *err = NULL;
	cr_assert_eq(store_open(&opt, &sv.store, &err), 0, "%s", err);
	store_setup();
}

static void close_store(void)
{
	store_close(sv.store);
	/* Completions posted after the last pump belong to sessions already freed. */
	pop3_fake_drop_posted();
	sv.store = NULL;
}

static void setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	memset(&listener, 0, sizeof(listener));
	cfg.hostname = "mail.test";
	cfg.limits.commands = 100;
	cfg.limits.errors = 10;
	cfg.limits.message_size = 1 << 20;
	cfg.limits.line_length = 65536;
	cfg.limits.line_length_preauth = 2048;
	cfg.limits.metadata_size = 16384;
	cfg.limits.metadata_entries = 256;
	memset(&sv, 0, sizeof(sv));
	sv.cfg = &cfg;
	sv.notify = notify_new();
}

static void teardown(void)
{
	if (sv.store != NULL)
		close_store();
	notify_free(sv.notify);
}

TestSuite(store_errors, .init = setup, .fini = teardown, .timeout = 120);

/* ---- Sessions as scripts ---- */

struct script {
	const char *name;
	const struct proto_handler *h;
	enum cfg_protocol protocol;
	const char *const *lines;
	/* What a temporary failure looks like in this protocol's replies. */
	const char *const *temp;
};

static bool no_holds(void *arg)
{
	return fake_conn_holds(arg) == 0;
}

/* Runs every line, each to its end; replies[i] gets the output of lines[i] (malloc'd). */
static void run_script(const struct script *sc, char **replies, size_t n_lines)
{
	listener.protocol = sc->protocol;
	listener.tls = CFG_TLS_IMPLICIT;
	struct conn *c = fake_conn_open(sc->h, &cfg, &listener, true);
	fake_conn_set_services(c, &sv);
	fake_conn_clear_output(c);
	for (size_t i = 0; i < n_lines; i++) {
		if (fake_conn_closed(c)) {
			replies[i] = strdup("");
			continue;
		}
		fake_conn_line(c, sc->lines[i]);
		cr_assert(pop3_fake_run_until(no_holds, c), "%s: no completion after %s", sc->name,
		          sc->lines[i]);
		/* Completions that hold nothing (a notification) run too. */
		while (pop3_fake_run_one(5))
			;
		replies[i] = strdup(fake_conn_output(c));
		fake_conn_clear_output(c);
	}
	fake_conn_free(c);
	while (pop3_fake_run_one(5))
		;
}

static size_t count_lines(const struct script *sc)
{
	size_t n = 0;
	while (sc->lines[n] != NULL)
		n++;
	return n;
}

static bool is_temp(const struct script *sc, const char *reply)
{
	/* Markers may ask for the start of a line ("\n451 "). */
	size_t len = strlen(reply);
	char *lines = malloc(len + 2);
	lines[0] = '\n';
	memcpy(lines + 1, reply, len + 1);
	bool found = false;
	for (size_t i = 0; sc->temp[i] != NULL && !found; i++)
		found = strstr(lines, sc->temp[i]) != NULL;
	free(lines);
	return found;
}

/* The store operations a session can call (store_fault_calls counts them by name). */
static const char *const ops[] = {"auth",
                                  "user_get",
                                  "user_scram",
                                  "mailbox_list",
                                  "mailbox_get",
                                  "mailbox_create",
                                  "mailbox_delete",
                                  "mailbox_rename",
                                  "mailbox_subscribe",
                                  "metadata_get",
                                  "metadata_set",
                                  "deliver",
                                  "deliver_batch",
                                  "message_list",
                                  "message_get",
                                  "message_headers",
                                  "content_read_batch",
                                  "content_read",
                                  "flags_store",
                                  "expunge",
                                  "remove",
                                  "copy",
                                  "vanished",
                                  "search_text",
                                  "search_body",
                                  NULL};

struct call_site {
	const char *op;
	unsigned nth;
	size_t line; /* the script line during which that call was made */
};

/* Runs the script without faults and notes, per store call, the line that made it. */
static size_t find_calls(const struct script *sc, struct call_site *sites, size_t max)
{
	size_t n_lines = count_lines(sc), n = 0;
	unsigned before[64] = {0}, initial[64] = {0};
	listener.protocol = sc->protocol;
	listener.tls = CFG_TLS_IMPLICIT;
	open_store();
	/* Numbered from here, as a rule added now counts (the setup's calls are behind). */
	for (size_t k = 0; ops[k] != NULL; k++)
		initial[k] = before[k] = store_fault_calls(sv.store, ops[k]);
	struct conn *c = fake_conn_open(sc->h, &cfg, &listener, true);
	fake_conn_set_services(c, &sv);
	fake_conn_clear_output(c);
	for (size_t i = 0; i < n_lines; i++) {
		fake_conn_line(c, sc->lines[i]);
		cr_assert(pop3_fake_run_until(no_holds, c));
		while (pop3_fake_run_one(5))
			;
		for (size_t k = 0; ops[k] != NULL; k++) {
			unsigned now = store_fault_calls(sv.store, ops[k]);
			for (unsigned j = before[k] + 1; j <= now && n < max; j++) {
				sites[n++] = (struct call_site){ops[k], j - initial[k], i};
				cr_log_info("%s: store call %s#%u during \"%s\"", sc->name, ops[k],
				            j - initial[k], sc->lines[i]);
			}
			before[k] = now;
		}
		fake_conn_clear_output(c);
	}
	fake_conn_free(c);
	while (pop3_fake_run_one(5))
		;
	close_store();
	return n;
}

/* Fails each store call of the script once, both ways; returns how many failures the
 * session did not answer with a temporary error (each is logged). */
static unsigned fail_each_call(const struct script *sc, const char *const *allowed_unhandled)
{
	struct call_site sites[128];
	size_t n_sites = find_calls(sc, sites, 128);
	size_t n_lines = count_lines(sc);
	unsigned unhandled = 0;
	cr_assert_gt(n_sites, 0, "%s makes no store call", sc->name);
	for (size_t s = 0; s < n_sites; s++) {
		for (int at_submit = 0; at_submit <= 1; at_submit++) {
			/* pop3_fakes.c's auth_login answers a refused submit before it returns,
			 * which the real one (server/auth/login.c, started from a timer) never
			 * does and the sessions need not survive: only the callback case here. */
			if (at_submit && strcmp(sites[s].op, "auth") == 0)
				continue;
			open_store();
			struct store_fault_rule r = {.op = sites[s].op,
			                             .nth = sites[s].nth,
			                             .rc = -EIO,
			                             .at_submit = at_submit != 0};
			cr_assert_eq(store_fault_add(sv.store, &r), 0);
			char **replies = calloc(n_lines, sizeof(*replies));
			run_script(sc, replies, n_lines);
			cr_assert_eq(store_fault_failed(sv.store), 1, "%s: %s #%u was not reached",
			             sc->name, sites[s].op, sites[s].nth);
			const char *reply = replies[sites[s].line];
			if (!is_temp(sc, reply)) {
				char key[64];
				snprintf(key, sizeof(key), "%s#%u", sites[s].op, sites[s].nth);
				bool allowed = false;
				for (size_t a = 0; allowed_unhandled[a] != NULL; a++)
					allowed = allowed || strcmp(allowed_unhandled[a], key) == 0;
				if (!allowed)
					unhandled++;
				cr_log_info(
				    "%s: %s failed (%s) during \"%s\": answered \"%.100s\"%s",
				    sc->name, key, at_submit ? "at submit" : "in callback",
				    sc->lines[sites[s].line], reply, allowed ? " (known)" : "");
			}
			for (size_t i = 0; i < n_lines; i++)
				free(replies[i]);
			free(replies);
			close_store();
		}
	}
	return unhandled;
}

/* ---- POP3 ---- */

static const char *const pop3_lines[] = {"USER alice@corp.example",
                                         "PASS pw-alice",
                                         "STAT",
                                         "LIST",
                                         "UIDL",
                                         "TOP 1 0",
                                         "RETR 1",
                                         "DELE 1",
                                         "QUIT",
                                         NULL};
static const char *const pop3_temp[] = {"-ERR [SYS/TEMP]", "-ERR [IN-USE]", NULL};
static const struct script pop3_script = {"pop3", &pop3_proto_handler, CFG_PROTO_POP3, pop3_lines,
                                          pop3_temp};

Test(store_errors, pop3_answers_every_store_failure_with_a_temporary_error)
{
	static const char *const known[] = {NULL};
	cr_assert_eq(fail_each_call(&pop3_script, known), 0);
}

/* ---- IMAP ---- */

static const char *const imap_lines[] = {"a LOGIN alice@corp.example pw-alice",
                                         "b LIST \"\" \"*\"",
                                         "c STATUS INBOX (MESSAGES UNSEEN)",
                                         "d SELECT INBOX",
                                         "e FETCH 1:* (FLAGS)",
                                         "f FETCH 1 (BODY[] BODYSTRUCTURE)",
                                         "g SEARCH SUBJECT hello",
                                         "h SEARCH TEXT report",
                                         "hb SEARCH BODY report",
                                         "i STORE 1 +FLAGS (\\Deleted)",
                                         "j COPY 2 Archive",
                                         "k EXPUNGE",
                                         "l CREATE Projects",
                                         "m RENAME Projects Old",
                                         "n DELETE Old",
                                         "o SUBSCRIBE Archive",
                                         "ma SETMETADATA INBOX (/private/comment \"x\")",
                                         "mb GETMETADATA INBOX /private/comment",
                                         "mc SETMETADATA \"\" (/shared/comment \"y\")",
                                         "md GETMETADATA \"\" (/shared/comment /shared/admin)",
                                         "p LOGOUT",
                                         NULL};
static const char *const imap_temp[] = {"NO [SERVERBUG]", "NO [UNAVAILABLE]", NULL};
static const struct script imap_script = {"imap", &imap_proto_handler, CFG_PROTO_IMAP, imap_lines,
                                          imap_temp};

Test(store_errors, imap_answers_every_store_failure_with_a_temporary_error)
{
	/* Every failure is answered; an expunged message (-ENOENT) is not a failure, but
	 * the fault backend fails with -EIO. */
	static const char *const known[] = {NULL};
	cr_assert_eq(fail_each_call(&imap_script, known), 0);
}

/* ---- SMTP submission ---- */

/* SCRAM needs GNU SASL: not offered here (pop3_fakes.c's auth_login serves AUTH PLAIN). */
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

static const char *const smtp_lines[] = {"EHLO client.test",
                                         "AUTH PLAIN AGFsaWNlQGNvcnAuZXhhbXBsZQBwdy1hbGljZQ==",
                                         "MAIL FROM:<alice@corp.example>",
                                         "RCPT TO:<alice@corp.example>",
                                         "DATA",
                                         "Subject: to myself",
                                         "",
                                         "A note.",
                                         ".",
                                         "QUIT",
                                         NULL};
static const char *const smtp_temp[] = {"\n451 ", "\n452 ", "\n454 ", NULL};
static const struct script smtp_script = {"smtp", &smtp_proto_handler, CFG_PROTO_SUBMISSION,
                                          smtp_lines, smtp_temp};

Test(store_errors, smtp_answers_every_store_failure_with_a_temporary_error)
{
	static char *domains[] = {"corp.example"};
	cfg.domains = domains;
	cfg.n_domains = 1;
	cfg.limits.recipients = 100;
	static const char *const known[] = {NULL};
	cr_assert_eq(fail_each_call(&smtp_script, known), 0);
}

/* ---- The access audit: fail closed ---- */

static const char *const audit_lines[] = {
    "a LOGIN alice@corp.example pw-alice", "b SELECT INBOX", "c FETCH 1 (BODY[])",
    "d UID FETCH 2 (BODY.PEEK[TEXT])",     "e NOOP",         NULL};
static const struct script audit_script = {"imap", &imap_proto_handler, CFG_PROTO_IMAP, audit_lines,
                                           imap_temp};

struct pumped_audit {
	bool done;
	int rc;
	struct store_audit_records recs;
};

static void audit_got(void *ctx, int rc, struct store_audit_records *res)
{
	struct pumped_audit *p = ctx;
	p->rc = rc;
	store_audit_records_move(&p->recs, res);
	p->done = true;
}

static bool audit_done(void *arg)
{
	return ((struct pumped_audit *)arg)->done;
}

Test(store_errors, imap_session_is_closed_when_its_audit_record_is_refused)
{
	cfg.audit.enabled = true;
	open_store();
	/* The second record (the second FETCH) finds the store's backlog full. */
	struct store_fault_rule r = {
	    .op = "audit_append", .nth = 2, .rc = -EAGAIN, .at_submit = true};
	cr_assert_eq(store_fault_add(sv.store, &r), 0);
	size_t n = count_lines(&audit_script);
	char **replies = calloc(n, sizeof(*replies));
	run_script(&audit_script, replies, n);
	cr_expect(strstr(replies[2], "Hello Alice") != NULL, "%s", replies[2]);
	cr_expect(strstr(replies[3], "Hello Alice") == NULL, "served unrecorded: %s", replies[3]);
	cr_expect(strstr(replies[3], "d OK") == NULL, "%s", replies[3]);
	cr_expect_str_empty(replies[4], "the session went on: %s", replies[4]);
	for (size_t i = 0; i < n; i++)
		free(replies[i]);
	free(replies);

	/* What was recorded: the first FETCH, with its mailbox, UID and items. */
	struct pumped_audit p = {0};
	struct store_audit_filter f = {0};
	cr_assert_eq(store_audit_query(sv.store, &f, audit_got, &p), 0);
	cr_assert(pop3_fake_run_until(audit_done, &p));
	cr_assert_eq(p.rc, 0);
	cr_assert_eq(p.recs.n, 1);
	cr_expect_str_eq(p.recs.v[0].action, "fetch");
	cr_expect_str_eq(p.recs.v[0].mailbox, "INBOX");
	cr_expect_str_eq(p.recs.v[0].uids, "1");
	cr_expect_str_eq(p.recs.v[0].detail, "(BODY[])");
	cr_expect_str_eq(p.recs.v[0].actor, "alice@corp.example");
	store_audit_records_free(&p.recs);
}
