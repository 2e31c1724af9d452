/*
 * relay_dsn_format for every kind of report (server/relay/relay_dsn.c), table-driven: the
 * action per recipient, the subject and text per kind, RET, ENVID, ORCPT and
 * Will-Retry-Until.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "server/relay/relay_private.h"

static const char *orig = "From: s@a.example\r\nSubject: hi\r\n\r\nsecret body\r\n";

#define HDRS_ONLY "Content-Type: text/rfc822-headers\r\n\r\nFrom: s@a.example\r\nSubject: hi\r\n"
#define UNTIL     "Tue, 06 Jan 1970 00:00:00 +0000" /* 5 days after the epoch */

/* One recipient, rcpt@b.example, whose action is the report's kind. */
static const struct dsn_case {
	enum relay_dsn_action kind;
	const char *status, *diag, *remote, *envid, *orcpt;
	bool full;
	int64_t until;
	const char *want[5];  /* each must be in the report */
	const char *never[4]; /* none may be */
} cases[] = {
    {RELAY_DSN_FAILED,
     "5.1.1",
     "550 5.1.1 no such user",
     "mx.b.example",
     NULL,
     NULL,
     false,
     5 * 86400,
     {"Subject: Undelivered Mail Returned to Sender\r\n",
      "could not be delivered to this recipient:\r\n\r\n<rcpt@b.example>: 550 5.1.1 no such",
      "Final-Recipient: rfc822; rcpt@b.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
      "Remote-MTA: dns; mx.b.example\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n",
      HDRS_ONLY},
     {"Will-Retry-Until:", "retried until", "secret body", "Original-Envelope-Id:"}},
    {RELAY_DSN_DELAYED,
     "4.2.0",
     "451 4.2.0 try later",
     "mx.b.example",
     NULL,
     NULL,
     false,
     5 * 86400,
     {"Subject: Delayed Mail (still being retried)\r\n", "still trying to deliver it",
      "It will be retried until " UNTIL ".\r\n",
      "Action: delayed\r\nStatus: 4.2.0\r\nRemote-MTA: dns; mx.b.example\r\n"
      "Diagnostic-Code: smtp; 451 4.2.0 try later\r\n"
      "Last-Attempt-Date: Thu, 01 Jan 1970 01:00:00 +0000\r\nWill-Retry-Until: " UNTIL "\r\n",
      HDRS_ONLY},
     {"secret body", "Original-Recipient:"}},
    {RELAY_DSN_DELIVERED,
     "2.0.0",
     NULL,
     NULL,
     "env+2B7",
     "rfc822;Rcpt+2Bx@b.example",
     true,
     0,
     {"Subject: Successful Mail Delivery Report\r\n",
      "was delivered to this recipient:", "Original-Envelope-Id: env+7\r\n",
      "Original-Recipient: rfc822;Rcpt+x@b.example\r\nFinal-Recipient: rfc822; rcpt@b.example\r\n"
      "Action: delivered\r\nStatus: 2.0.0\r\nLast-Attempt-Date:",
      "Content-Type: message/rfc822\r\n\r\nFrom: s@a.example\r\nSubject: hi\r\n\r\nsecret body"},
     {"Diagnostic-Code:", "Remote-MTA:", "Will-Retry-Until:", "rfc822-headers"}},
    {RELAY_DSN_RELAYED,
     "2.0.0",
     "250 2.0.0 queued",
     "mx.b.example",
     "env-8",
     NULL,
     false,
     0,
     {"Subject: Successful Mail Relay Report\r\n", "does not report delivery status",
      "Original-Envelope-Id: env-8\r\n",
      "Action: relayed\r\nStatus: 2.0.0\r\nRemote-MTA: dns; mx.b.example\r\n"
      "Diagnostic-Code: smtp; 250 2.0.0 queued\r\n",
      HDRS_ONLY},
     {"Will-Retry-Until:", "secret body", "Original-Recipient:"}},
};

Test(relay_dsn, every_kind)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct dsn_case *c = &cases[i];
		struct relay_dsn_rcpt r = {"rcpt@b.example", c->orcpt, c->kind,
		                           c->status,        c->diag,  c->remote};
		struct relay_dsn d = {.kind = c->kind,
		                      .reporting_mta = "mx.a.example",
		                      .sender = "s@a.example",
		                      .envid = c->envid,
		                      .full = c->full,
		                      .now = 3600,
		                      .will_retry_until = c->until,
		                      .rcpts = &r,
		                      .n_rcpts = 1,
		                      .original = orig,
		                      .original_len = strlen(orig),
		                      .original_complete = true,
		                      .boundary = "b-9"};
		struct buf out;
		buf_init(&out, 1 << 20);
		cr_assert_eq(relay_dsn_format(&d, &out), 0);
		const char *m = out.data;
		cr_assert_not_null(
		    strstr(m, "Content-Type: multipart/report; report-type=delivery-status;"));
		cr_assert_not_null(strstr(m, "To: <s@a.example>\r\nSubject: "));
		cr_assert_not_null(strstr(m, "Auto-Submitted: auto-replied\r\n"));
		cr_assert_not_null(strstr(m, "\r\n--b-9--\r\n"));
		for (size_t k = 0; k < 5 && c->want[k] != NULL; k++)
			cr_assert_not_null(strstr(m, c->want[k]), "case %zu: %s\n---\n%s", i,
			                   c->want[k], m);
		for (size_t k = 0; k < 4 && c->never[k] != NULL; k++)
			cr_assert_null(strstr(m, c->never[k]), "case %zu: %s\n---\n%s", i,
			               c->never[k], m);
		buf_free(&out);
	}
}

Test(relay_dsn, mixed_actions_keep_their_own)
{
	struct relay_dsn_rcpt r[2] = {
	    {.address = "a@b.example", .action = RELAY_DSN_RELAYED, .status = "2.0.0"},
	    {.address = "c@b.example", .action = RELAY_DSN_FAILED, .status = "5.0.0"},
	};
	struct relay_dsn d = {.kind = RELAY_DSN_RELAYED,
	                      .reporting_mta = "mx.a.example",
	                      .sender = "s@a.example",
	                      .rcpts = r,
	                      .n_rcpts = 2,
	                      .boundary = "b-1"};
	struct buf out;
	buf_init(&out, 1 << 20);
	cr_assert_eq(relay_dsn_format(&d, &out), 0);
	cr_assert_not_null(strstr(out.data, "rfc822; a@b.example\r\nAction: relayed\r\n"));
	cr_assert_not_null(strstr(out.data, "rfc822; c@b.example\r\nAction: failed\r\n"));
	cr_assert_not_null(strstr(out.data, "these recipients:\r\n\r\n<a@b.example>\r\n"));
	/* No original given: no third part. */
	cr_assert_null(strstr(out.data, "rfc822-headers"));
	/* Not for a local mailbox: no Return-Path. */
	cr_assert_null(strstr(out.data, "Return-Path"));
	buf_free(&out);
}

Test(relay_dsn, local_report_starts_with_the_null_return_path)
{
	struct relay_dsn_rcpt r = {
	    .address = "a@b.example", .action = RELAY_DSN_FAILED, .status = "5.0.0"};
	struct relay_dsn d = {.kind = RELAY_DSN_FAILED,
	                      .reporting_mta = "mx.a.example",
	                      .sender = "s@a.example",
	                      .rcpts = &r,
	                      .n_rcpts = 1,
	                      .boundary = "b-2",
	                      .return_path = true};
	struct buf out;
	buf_init(&out, 1 << 20);
	cr_assert_eq(relay_dsn_format(&d, &out), 0);
	const char *want = "Return-Path: <>\r\nFrom: Mail Delivery System";
	cr_assert_eq(strncmp(out.data, want, strlen(want)), 0, "%s", out.data);
	buf_free(&out);
}

Test(relay_dsn, status_codes)
{
	char s[16];
	relay_dsn_status(550, "550 5.1.1 no such user", s, sizeof(s));
	cr_assert_str_eq(s, "5.1.1");
	relay_dsn_status(550, "550 no such user", s, sizeof(s));
	cr_assert_str_eq(s, "5.0.0");
	relay_dsn_status(451, "451 5.1.1 mismatched class", s, sizeof(s));
	cr_assert_str_eq(s, "4.0.0");
	relay_dsn_status(554, "554 5.7.30 REQUIRETLS needed", s, sizeof(s));
	cr_assert_str_eq(s, "5.7.30");
}
