/*
 * The DSN on local copies refused after DATA (server/smtp/smtp_bounce.c): the hook the
 * store calls inside the delivery, fed here with a store's input by hand.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/relay/relay_notice.h"
#include "server/smtp/smtp_bounce.h"
#include "storage/store.h"

static const char message[] = "From: <alice@a.test>\r\nSubject: too big\r\n\r\nbody line\r\n";

static const struct store_target targets[] = {{.user_id = 7}, {.user_id = 8}};

static struct smtp_bounce bounce(const struct smtp_bounce_rcpt *rcpts, size_t n)
{
	return (struct smtp_bounce){
	    .reporting_mta = "mx.a.test",
	    .sender = "alice@a.test",
	    .envid = "env+2B1",
	    .arrival = 1700000000,
	    .boundary = "b-1",
	    .max_size = 1 << 20,
	    .rcpts = rcpts,
	    .n_rcpts = n,
	    .targets = targets,
	    .n_targets = 2,
	};
}

/* Target 0 (user 7) full: its quota is 20 bytes, the message 50. */
static struct store_delivered delivered[] = {
    {.rc = -EDQUOT, .quota_bytes = 20},
    {.rc = 0, .quota_bytes = 0},
};

static struct store_report_input input(void)
{
	return (struct store_report_input){
	    .delivered = delivered,
	    .n_targets = 2,
	    .size = strlen(message),
	    .head = message,
	    .head_len = strlen(message),
	    .head_complete = true,
	};
}

static char *run(const struct smtp_bounce *b, int *rc_r)
{
	struct store_report_input in = input();
	char *msg = (char *)"untouched";
	size_t len = 99;
	*rc_r = smtp_bounce_format((void *)b, &in, &msg, &len);
	if (msg == NULL)
		cr_assert_eq(len, 0);
	else
		cr_assert_eq(strlen(msg), len);
	return msg;
}

Test(smtp_bounce, names_the_refused_recipient_as_failed_for_good)
{
	struct smtp_bounce_rcpt rcpts[] = {
	    {"full@a.test", 7, NULL, "rfc822;Full@a.test"},
	    {"bob@a.test", 8, NULL, NULL},
	};
	struct smtp_bounce b = bounce(rcpts, 2);
	int rc;
	char *msg = run(&b, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_not_null(msg);
	cr_assert(strstr(msg, "To: <alice@a.test>\r\n") != NULL, "%s", msg);
	cr_assert(strstr(msg, "Content-Type: multipart/report; report-type=delivery-status") !=
	          NULL);
	cr_assert(strstr(msg, "Original-Envelope-Id: env+1\r\n") != NULL, "%s", msg);
	cr_assert(strstr(msg, "Original-Recipient: rfc822;Full@a.test\r\n"
	                      "Final-Recipient: rfc822; full@a.test\r\n"
	                      "Action: failed\r\nStatus: 5.2.2\r\n") != NULL,
	          "%s", msg);
	cr_assert(strstr(msg, "larger than the mailbox quota") != NULL, "%s", msg);
	/* Only the refused one; bob's copy is stored. */
	cr_assert_null(strstr(msg, "bob@a.test"), "%s", msg);
	/* No RET: the original's header only. */
	cr_assert(strstr(msg, "Content-Type: text/rfc822-headers") != NULL);
	cr_assert(strstr(msg, "Subject: too big") != NULL);
	cr_assert_null(strstr(msg, "body line"));
	free(msg);
}

Test(smtp_bounce, ret_full_returns_the_message_unless_requiretls)
{
	struct smtp_bounce_rcpt rcpts[] = {{"full@a.test", 7, "FAILURE", NULL}};
	struct smtp_bounce b = bounce(rcpts, 1);
	b.ret = "FULL";
	int rc;
	char *msg = run(&b, &rc);
	cr_assert(strstr(msg, "Content-Type: message/rfc822") != NULL, "%s", msg);
	cr_assert(strstr(msg, "body line") != NULL);
	free(msg);
	b.requiretls = true;
	msg = run(&b, &rc);
	cr_assert_null(strstr(msg, "body line"));
	free(msg);
}

Test(smtp_bounce, temporary_quota_and_deleted_user)
{
	delivered[0].quota_bytes = 1000; /* would fit an empty mailbox */
	struct smtp_bounce_rcpt rcpts[] = {{"full@a.test", 7, NULL, NULL}};
	struct smtp_bounce b = bounce(rcpts, 1);
	int rc;
	char *msg = run(&b, &rc);
	cr_assert(strstr(msg, "Status: 5.2.2\r\n") != NULL, "%s", msg);
	cr_assert_null(strstr(msg, "larger than"), "%s", msg);
	free(msg);
	delivered[0].rc = -ENOENT;
	msg = run(&b, &rc);
	cr_assert(strstr(msg, "Status: 5.1.1\r\n") != NULL, "%s", msg);
	free(msg);
	delivered[0].rc = -EDQUOT;
	delivered[0].quota_bytes = 20;
}

Test(smtp_bounce, none_for_notify_never_or_the_null_sender)
{
	struct smtp_bounce_rcpt rcpts[] = {{"full@a.test", 7, "NEVER", NULL},
	                                   {"bob@a.test", 8, NULL, NULL}};
	struct smtp_bounce b = bounce(rcpts, 2);
	int rc;
	cr_assert_null(run(&b, &rc));
	cr_assert_eq(rc, 0);
	rcpts[0].notify = "SUCCESS,DELAY";
	cr_assert_null(run(&b, &rc));
	rcpts[0].notify = NULL;
	b.sender = "";
	cr_assert_null(run(&b, &rc));
	cr_assert_eq(rc, 0);
}

Test(smtp_bounce, wanted)
{
	cr_assert(relay_notice_failure_wanted(NULL));
	cr_assert(relay_notice_failure_wanted("FAILURE"));
	cr_assert(relay_notice_failure_wanted("SUCCESS,FAILURE"));
	cr_assert(relay_notice_failure_wanted("delay,failure"));
	cr_assert_not(relay_notice_failure_wanted("NEVER"));
	cr_assert_not(relay_notice_failure_wanted("SUCCESS,DELAY"));
	cr_assert_not(relay_notice_failure_wanted("FAILURES"));
}
