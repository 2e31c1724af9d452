/*
 * server/relay: the SMTP client machine over canned transcripts, dot-stuffing, DSN
 * formatting and the policy decisions (back-off, plaintext, NOTIFY, TLS-Required).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "server/relay/relay_private.h"

struct tr {
	struct relay_session s;
	struct relay_rcpt rcpts[3];
	struct relay_params p;
};

static void tr_init(struct tr *t, enum cfg_route_tls tls, size_t n_rcpts, bool requiretls)
{
	memset(t, 0, sizeof(*t));
	static const char *addrs[] = {"a@b.example", "c@b.example", "d@b.example"};
	for (size_t i = 0; i < n_rcpts; i++)
		t->rcpts[i].address = addrs[i];
	t->rcpts[0].notify = "FAILURE,DELAY";
	t->rcpts[0].orcpt = "rfc822;A@b.example";
	t->p = (struct relay_params){.helo = "mx.a.example",
	                             .tls = tls,
	                             .tls_verified = tls == CFG_ROUTE_TLS_VERIFY,
	                             .sender = "s@a.example",
	                             .size = 1234,
	                             .requiretls = requiretls,
	                             .ret = "HDRS",
	                             .envid = "env1",
	                             .rcpts = t->rcpts,
	                             .n_rcpts = n_rcpts};
	relay_session_init(&t->s, &t->p);
}

/* Feeds one reply line and returns the action; *sent gets what the session wrote. */
static enum relay_action feed(struct tr *t, const char *line, char *sent, size_t len)
{
	enum relay_action a = relay_session_line(&t->s, line, strlen(line));
	snprintf(sent, len, "%.*s", (int)t->s.out.len, t->s.out.data ? t->s.out.data : "");
	buf_reset(&t->s.out);
	return a;
}

static const char *EHLO_TLS = "250-mx.b.example\0";

static void to_mail_sent(struct tr *t, const char *caps_after_tls, char *out, size_t out_len)
{
	char sent[512];
	cr_assert_eq(feed(t, "220 mx.b.example ESMTP", sent, sizeof(sent)), RELAY_ACT_CONTINUE);
	cr_assert_str_eq(sent, "EHLO mx.a.example\r\n");
	cr_assert_eq(feed(t, "250-mx.b.example", sent, sizeof(sent)), RELAY_ACT_CONTINUE);
	cr_assert_str_eq(sent, "");
	cr_assert_eq(feed(t, "250 STARTTLS", sent, sizeof(sent)), RELAY_ACT_CONTINUE);
	cr_assert_str_eq(sent, "STARTTLS\r\n");
	cr_assert_eq(feed(t, "220 go ahead", sent, sizeof(sent)), RELAY_ACT_START_TLS);
	relay_session_tls_done(&t->s);
	cr_assert_eq(feed(t, EHLO_TLS, sent, sizeof(sent)), RELAY_ACT_CONTINUE);
	cr_assert_str_eq(sent, "EHLO mx.a.example\r\n");
	feed(t, caps_after_tls, out, out_len);
}

#define to_mail(t, caps) to_mail_sent(t, caps, sent, sizeof(sent))

Test(relay_session, full_delivery_with_dsn_and_requiretls)
{
	struct tr t;
	char sent[512];
	tr_init(&t, CFG_ROUTE_TLS_VERIFY, 2, true);
	to_mail(&t, "250-SIZE 100000");
	cr_assert_eq(feed(&t, "250-DSN", sent, sizeof(sent)), RELAY_ACT_CONTINUE);
	cr_assert_eq(feed(&t, "250 REQUIRETLS", sent, sizeof(sent)), RELAY_ACT_CONTINUE);
	cr_assert_str_eq(sent,
	                 "MAIL FROM:<s@a.example> SIZE=1234 REQUIRETLS RET=HDRS ENVID=env1\r\n");
	feed(&t, "250 ok", sent, sizeof(sent));
	cr_assert_str_eq(sent,
	                 "RCPT TO:<a@b.example> NOTIFY=FAILURE,DELAY ORCPT=rfc822;A@b.example\r\n");
	feed(&t, "250 ok", sent, sizeof(sent));
	cr_assert_str_eq(sent, "RCPT TO:<c@b.example>\r\n");
	feed(&t, "550 5.1.1 no such user", sent, sizeof(sent));
	cr_assert_str_eq(sent, "DATA\r\n");
	cr_assert_eq(feed(&t, "354 go", sent, sizeof(sent)), RELAY_ACT_SEND_BODY);
	relay_session_body_done(&t.s);
	feed(&t, "250 2.0.0 queued", sent, sizeof(sent));
	cr_assert_str_eq(sent, "QUIT\r\n");
	cr_assert_eq(feed(&t, "221 bye", sent, sizeof(sent)), RELAY_ACT_DONE);
	const char *why;
	cr_assert_eq(relay_session_outcome(&t.s, 0, &why), 1);
	cr_assert_eq(relay_session_outcome(&t.s, 1, &why), 2);
	cr_assert_str_eq(why, "550 5.1.1 no such user");
	relay_session_free(&t.s);
}

Test(relay_session, no_starttls_sends_nothing_more)
{
	struct tr t;
	char sent[512];
	tr_init(&t, CFG_ROUTE_TLS_VERIFY, 1, false);
	feed(&t, "220 hi", sent, sizeof(sent));
	feed(&t, "250-mx.b.example", sent, sizeof(sent));
	cr_assert_eq(feed(&t, "250 SIZE 1000", sent, sizeof(sent)), RELAY_ACT_FAIL);
	cr_assert_str_eq(sent, "");
	cr_assert_str_eq(t.s.error, "peer offers no STARTTLS");
	const char *why;
	cr_assert_eq(relay_session_outcome(&t.s, 0, &why), 0);
	cr_assert_str_eq(why, "peer offers no STARTTLS");
	relay_session_free(&t.s);
}

Test(relay_session, starttls_refused_is_temporary)
{
	struct tr t;
	char sent[512];
	tr_init(&t, CFG_ROUTE_TLS_ENCRYPT, 1, false);
	feed(&t, "220 hi", sent, sizeof(sent));
	feed(&t, "250-hi", sent, sizeof(sent));
	feed(&t, "250 STARTTLS", sent, sizeof(sent));
	cr_assert_eq(feed(&t, "454 TLS not available", sent, sizeof(sent)), RELAY_ACT_FAIL);
	const char *why;
	cr_assert_eq(relay_session_outcome(&t.s, 0, &why), 0);
	cr_assert_not_null(strstr(why, "454"));
	relay_session_free(&t.s);
}

Test(relay_session, tls_failure_abort_is_temporary)
{
	struct tr t;
	char sent[512];
	tr_init(&t, CFG_ROUTE_TLS_VERIFY, 2, false);
	feed(&t, "220 hi", sent, sizeof(sent));
	feed(&t, "250-hi", sent, sizeof(sent));
	feed(&t, "250 STARTTLS", sent, sizeof(sent));
	cr_assert_str_eq(relay_session_state_name(&t.s), "STARTTLS");
	cr_assert_eq(feed(&t, "220 go", sent, sizeof(sent)), RELAY_ACT_START_TLS);
	cr_assert_str_eq(relay_session_state_name(&t.s), "TLS handshake");
	relay_session_abort(&t.s, "certificate verification failed: name mismatch");
	const char *why;
	cr_assert_eq(relay_session_outcome(&t.s, 1, &why), 0);
	cr_assert_str_eq(why, "certificate verification failed: name mismatch");
	relay_session_free(&t.s);
}

Test(relay_session, requiretls_needs_the_peer_extension)
{
	struct tr t;
	char sent[512];
	tr_init(&t, CFG_ROUTE_TLS_VERIFY, 1, true);
	to_mail(&t, "250 SIZE");
	cr_assert_str_eq(sent, "QUIT\r\n"); /* over TLS; no MAIL */
	cr_assert_eq(t.s.state, RELAY_S_QUIT);
	const char *why;
	cr_assert_eq(relay_session_outcome(&t.s, 0, &why), 2);
	cr_assert_not_null(strstr(why, "REQUIRETLS"));
	relay_session_free(&t.s);
}

Test(relay_session, requiretls_never_over_unverified_tls)
{
	struct tr t;
	char sent[512];
	tr_init(&t, CFG_ROUTE_TLS_ENCRYPT, 1, true);
	to_mail(&t, "250 REQUIRETLS");
	cr_assert(t.s.failed);
	const char *why;
	cr_assert_eq(relay_session_outcome(&t.s, 0, &why), 2);
	relay_session_free(&t.s);
}

Test(relay_session, plaintext_route_skips_starttls)
{
	struct tr t;
	char sent[512];
	tr_init(&t, CFG_ROUTE_TLS_NONE, 1, false);
	feed(&t, "220 hi", sent, sizeof(sent));
	feed(&t, "250-hi", sent, sizeof(sent));
	feed(&t, "250 STARTTLS", sent, sizeof(sent));
	cr_assert_str_eq(sent, "MAIL FROM:<s@a.example>\r\n");
	relay_session_free(&t.s);
}

Test(relay_session, mail_refused_and_data_temp_failure)
{
	struct tr t;
	char sent[512];
	const char *why;
	tr_init(&t, CFG_ROUTE_TLS_VERIFY, 2, false);
	to_mail(&t, "250 OK");
	feed(&t, "451 4.3.0 try later", sent, sizeof(sent));
	cr_assert_str_eq(sent, "QUIT\r\n");
	cr_assert_eq(relay_session_outcome(&t.s, 0, &why), 0);
	cr_assert_str_eq(why, "451 4.3.0 try later");
	relay_session_free(&t.s);

	tr_init(&t, CFG_ROUTE_TLS_VERIFY, 1, false);
	to_mail(&t, "250 OK");
	feed(&t, "250 ok", sent, sizeof(sent));
	feed(&t, "250 ok", sent, sizeof(sent));
	feed(&t, "354 go", sent, sizeof(sent));
	relay_session_body_done(&t.s);
	feed(&t, "452 4.3.1 full", sent, sizeof(sent));
	cr_assert_eq(relay_session_outcome(&t.s, 0, &why), 0);
	relay_session_free(&t.s);
}

Test(relay_session, connection_lost_after_rcpt_is_not_delivered)
{
	struct tr t;
	char sent[512];
	const char *why;
	tr_init(&t, CFG_ROUTE_TLS_VERIFY, 1, false);
	to_mail(&t, "250 OK");
	feed(&t, "250 ok", sent, sizeof(sent));
	feed(&t, "250 ok", sent, sizeof(sent));
	feed(&t, "354 go", sent, sizeof(sent));
	relay_session_body_done(&t.s);
	relay_session_abort(&t.s, "connection lost");
	cr_assert_eq(relay_session_outcome(&t.s, 0, &why), 0);
	cr_assert_str_eq(why, "connection lost");
	relay_session_free(&t.s);
}

Test(relay_session, malformed_replies_fail)
{
	static const char *bad[] = {"", "22", "abc hello", "220x", "620 what", "099 no"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tr t;
		char sent[64];
		tr_init(&t, CFG_ROUTE_TLS_VERIFY, 1, false);
		cr_assert_eq(feed(&t, bad[i], sent, sizeof(sent)), RELAY_ACT_FAIL, "%s", bad[i]);
		relay_session_free(&t.s);
	}
}

Test(relay_session, size_over_peer_limit_is_permanent)
{
	struct tr t;
	char sent[512];
	const char *why;
	tr_init(&t, CFG_ROUTE_TLS_VERIFY, 1, false);
	to_mail(&t, "250 SIZE 1000");
	cr_assert_str_eq(sent, "QUIT\r\n");
	cr_assert_eq(relay_session_outcome(&t.s, 0, &why), 2);
	relay_session_free(&t.s);
}

/* RFC 5321 5.1 fallback: another host only after a temporary failure before MAIL FROM. A
 * row: the route's tls, REQUIRETLS, the replies fed (the last one ends the session unless
 * abort is given), an abort reason, and whether the next host may be tried. */
Test(relay_session, may_try_next_only_before_the_envelope)
{
	static const struct {
		const char *name;
		enum cfg_route_tls tls;
		bool requiretls;
		const char *replies[8];
		const char *abort;
		bool next;
	} cases[] = {
	    {"connection refused", CFG_ROUTE_TLS_VERIFY, false, {NULL}, "cannot connect", true},
	    {"421 greeting", CFG_ROUTE_TLS_VERIFY, false, {"421 busy"}, NULL, true},
	    {"554 greeting", CFG_ROUTE_TLS_VERIFY, false, {"554 no service"}, NULL, true},
	    {"EHLO refused",
	     CFG_ROUTE_TLS_VERIFY,
	     false,
	     {"220 hi", "550 who", "221 bye"},
	     NULL,
	     true},
	    {"no STARTTLS",
	     CFG_ROUTE_TLS_VERIFY,
	     false,
	     {"220 hi", "250-hi", "250 SIZE"},
	     NULL,
	     true},
	    {"STARTTLS refused",
	     CFG_ROUTE_TLS_ENCRYPT,
	     false,
	     {"220 hi", "250-hi", "250 STARTTLS", "454 no"},
	     NULL,
	     true},
	    {"handshake failed",
	     CFG_ROUTE_TLS_VERIFY,
	     false,
	     {"220 hi", "250-hi", "250 STARTTLS", "220 go"},
	     "certificate verification failed",
	     true},
	    {"lost after TLS",
	     CFG_ROUTE_TLS_VERIFY,
	     false,
	     {"220 hi", "250-hi", "250 STARTTLS", "220 go", "TLS", "250-hi"},
	     "connection lost",
	     true},
	    {"MAIL FROM 451",
	     CFG_ROUTE_TLS_VERIFY,
	     false,
	     {"220 hi", "250-hi", "250 STARTTLS", "220 go", "TLS", "250 hi", "451 later"},
	     NULL,
	     false},
	    {"lost after MAIL FROM",
	     CFG_ROUTE_TLS_VERIFY,
	     false,
	     {"220 hi", "250-hi", "250 STARTTLS", "220 go", "TLS", "250 hi"},
	     "connection lost",
	     false},
	    {"REQUIRETLS unsupported",
	     CFG_ROUTE_TLS_VERIFY,
	     true,
	     {"220 hi", "250-hi", "250 STARTTLS", "220 go", "TLS", "250 hi"},
	     NULL,
	     false},
	    {"plaintext route MAIL lost",
	     CFG_ROUTE_TLS_NONE,
	     false,
	     {"220 hi", "250 hi"},
	     "connection lost",
	     false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tr t;
		char sent[512];
		tr_init(&t, cases[i].tls, 1, cases[i].requiretls);
		for (size_t k = 0; k < 8 && cases[i].replies[k] != NULL; k++) {
			if (strcmp(cases[i].replies[k], "TLS") == 0)
				relay_session_tls_done(&t.s);
			else
				feed(&t, cases[i].replies[k], sent, sizeof(sent));
		}
		if (cases[i].abort != NULL)
			relay_session_abort(&t.s, cases[i].abort);
		cr_expect_eq(relay_session_may_try_next(&t.s), cases[i].next, "%s", cases[i].name);
		relay_session_free(&t.s);
	}
}

Test(relay_session, fail_permanent_before_any_connection)
{
	struct tr t;
	const char *why;
	tr_init(&t, CFG_ROUTE_TLS_VERIFY, 2, false);
	relay_session_fail_permanent(&t.s, "recipient domain x.example accepts no mail");
	cr_assert_not(relay_session_may_try_next(&t.s));
	for (size_t i = 0; i < 2; i++) {
		cr_assert_eq(relay_session_outcome(&t.s, i, &why), 2);
		cr_assert_str_eq(why, "recipient domain x.example accepts no mail");
	}
	/* What the connection code may still say afterwards changes nothing. */
	relay_session_abort(&t.s, "server stopping");
	cr_assert_eq(relay_session_outcome(&t.s, 0, &why), 2);
	relay_session_free(&t.s);
}

static void stuff(const char *const *chunks, size_t n, const char *want)
{
	struct relay_dotstuff d = {0};
	struct buf out;
	buf_init(&out, 4096);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(relay_dotstuff(&d, chunks[i], strlen(chunks[i]), &out), 0);
	cr_assert_eq(relay_dotstuff_finish(&d, &out), 0);
	cr_assert_str_eq(out.data, want);
	buf_free(&out);
}

Test(relay_dotstuff, lines_and_chunks)
{
	const char *a[] = {".hello\r\n..x\r\nend\r\n"};
	stuff(a, 1, "..hello\r\n...x\r\nend\r\n.\r\n");
	const char *b[] = {"a\r", "\n", ".", "b\r\n", "."};
	stuff(b, 5, "a\r\n..b\r\n..\r\n.\r\n");
	const char *c[] = {"bare\nlf\n.x"};
	stuff(c, 1, "bare\r\nlf\r\n..x\r\n.\r\n");
	const char *e[] = {""};
	stuff(e, 1, ".\r\n");
}

Test(relay_policy, backoff_doubles_to_max)
{
	cr_assert_eq(relay_backoff(1, 300, 14400), 300);
	cr_assert_eq(relay_backoff(2, 300, 14400), 600);
	cr_assert_eq(relay_backoff(3, 300, 14400), 1200);
	cr_assert_eq(relay_backoff(6, 300, 14400), 9600);
	cr_assert_eq(relay_backoff(7, 300, 14400), 14400);
	cr_assert_eq(relay_backoff(1000, 300, 14400), 14400);
	cr_assert_eq(relay_backoff(1, 2, 5), 2);
	cr_assert_eq(relay_backoff(3, 2, 5), 5);
	cr_assert(relay_give_up(100, 100 + 432000, 432000));
	cr_assert_not(relay_give_up(100, 100 + 431999, 432000));
}

Test(relay_policy, plaintext_only_to_loopback_or_legacy)
{
	char *gw[] = {"10.1.2.3", "legacy.corp.example"};
	struct cfg_relay r = {.legacy_gateways = gw, .n_legacy_gateways = 2};
	cr_assert(relay_plaintext_allowed(&r, "127.0.0.1"));
	cr_assert(relay_plaintext_allowed(&r, "127.5.0.1"));
	cr_assert(relay_plaintext_allowed(&r, "::1"));
	cr_assert(relay_plaintext_allowed(&r, "localhost"));
	cr_assert(relay_plaintext_allowed(&r, "10.1.2.3"));
	cr_assert(relay_plaintext_allowed(&r, "LEGACY.corp.example"));
	cr_assert_not(relay_plaintext_allowed(&r, "10.1.2.4"));
	cr_assert_not(relay_plaintext_allowed(&r, "mx.partner.example"));
	cr_assert_not(relay_plaintext_allowed(&r, "128.0.0.1"));
}

Test(relay_policy, notify_and_tls_required)
{
	static const struct {
		const char *notify;
		bool failed, delayed, delivered, relayed;
	} cases[] = {
	    {NULL, true, false, false, false}, /* no NOTIFY: failures only, never delays */
	    {"FAILURE", true, false, false, false},
	    {"SUCCESS,FAILURE", true, false, true, true},
	    {"NEVER", false, false, false, false},
	    {"SUCCESS,DELAY", false, true, true, true},
	    {"delay,failure", true, true, false, false},
	    {"SUCCESSX,DELAYED", false, false, false, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *n = cases[i].notify;
		cr_assert_eq(relay_dsn_wanted(n, RELAY_DSN_FAILED), cases[i].failed, "%zu", i);
		cr_assert_eq(relay_dsn_wanted(n, RELAY_DSN_DELAYED), cases[i].delayed, "%zu", i);
		cr_assert_eq(relay_dsn_wanted(n, RELAY_DSN_DELIVERED), cases[i].delivered, "%zu",
		             i);
		cr_assert_eq(relay_dsn_wanted(n, RELAY_DSN_RELAYED), cases[i].relayed, "%zu", i);
	}
	const char *m1 = "From: a\r\nTLS-Required: No\r\n\r\nbody";
	cr_assert(relay_tls_optional_header(m1, strlen(m1)));
	const char *m2 = "From: a\r\ntls-required:   no  \r\n\r\n";
	cr_assert(relay_tls_optional_header(m2, strlen(m2)));
	const char *m3 = "From: a\r\n\r\nTLS-Required: No\r\n";
	cr_assert_not(relay_tls_optional_header(m3, strlen(m3)));
	const char *m4 = "TLS-Required: Yes\r\n\r\n";
	cr_assert_not(relay_tls_optional_header(m4, strlen(m4)));
}

Test(relay_policy, return_path_left_out)
{
	const char *m1 = "Return-Path: <a@b.example>\r\nFrom: a\r\n\r\nbody";
	cr_assert_eq(relay_return_path_len(m1, strlen(m1)),
	             strlen("Return-Path: <a@b.example>\r\n"));
	const char *m2 = "return-path:\r\n <a@b.example>\r\nFrom: a\r\n\r\n";
	cr_assert_eq(relay_return_path_len(m2, strlen(m2)),
	             strlen("return-path:\r\n <a@b.example>\r\n"));
	const char *m3 = "From: a\r\nReturn-Path: <a@b.example>\r\n\r\n";
	cr_assert_eq(relay_return_path_len(m3, strlen(m3)), 0);
	const char *m4 = "Return-Path: <a@b.example>"; /* no line end within the head */
	cr_assert_eq(relay_return_path_len(m4, strlen(m4)), 0);
}
