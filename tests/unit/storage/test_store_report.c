/*
 * storage/: the failure report of a delivery (store.h, struct store_deliver_report). A
 * target that cannot take the message while another does gets a report, formatted by the
 * caller's hook on the writer and stored in the same transaction as the copies; when the
 * hook fails nothing at all is stored; when every target fails nothing is stored and the
 * rc says why.
 */
#include <fcntl.h>
#include <sqlite3.h>

#include "tests/unit/support/store_test_util.h"

static struct store_fixture fx;

static void setup(void)
{
	fx_setup(&fx);
}

static void teardown(void)
{
	fx_teardown(&fx);
}

TestSuite(store_report, .init = setup, .fini = teardown, .timeout = 60);

static int64_t add_user(const char *address, uint64_t quota)
{
	int rc = FX_CALL(&fx, store_user_add(fx.s, address, "pw", store_sync_users, &fx.w));
	cr_assert_eq(rc, 0, "user_add %s: %s", address, store_strerror(rc));
	int64_t id = fx.w.users.v[0].id;
	if (quota > 0)
		cr_assert_eq(FX_CALL(&fx, store_user_set_quota(fx.s, address, quota,
		                                               store_sync_done_cb, &fx.w)),
		             0);
	return id;
}

static long long count_rows(const char *sql)
{
	return fx_count_rows(&fx, sql);
}

static long long inbox_count(const char *address)
{
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM entries e JOIN mailboxes m ON m.id = e.mailbox_id "
	         "JOIN users u ON u.id = m.user_id WHERE u.address = '%s' AND m.name = 'INBOX'",
	         address);
	return count_rows(sql);
}

/* What the hook saw, and what it answers. Written on the writer thread; read after the
 * blocking call returned. */
struct hook {
	int calls;
	int rc;         /* returned */
	bool none;      /* answer "no report wanted" */
	size_t failed;  /* targets with rc < 0 */
	int first_rc;   /* of the first failed target */
	uint64_t quota; /* of the first failed target */
	uint64_t size;
	size_t head_len;
	bool head_complete;
	char head_start[16];
};

static int hook_format(void *ctx, const struct store_report_input *in, char **msg_r, size_t *len_r)
{
	struct hook *h = ctx;
	h->calls++;
	h->failed = 0;
	for (size_t i = 0; i < in->n_targets; i++) {
		if (in->delivered[i].rc >= 0)
			continue;
		if (h->failed++ == 0) {
			h->first_rc = in->delivered[i].rc;
			h->quota = in->delivered[i].quota_bytes;
		}
	}
	h->size = in->size;
	h->head_len = in->head_len;
	h->head_complete = in->head_complete;
	snprintf(h->head_start, sizeof(h->head_start), "%.*s",
	         (int)(in->head_len < 15 ? in->head_len : 15), (const char *)in->head);
	*msg_r = NULL;
	*len_r = 0;
	if (h->rc < 0 || h->none)
		return h->rc;
	static const char report[] = "Subject: Undelivered Mail\r\n\r\nreport body\r\n";
	*msg_r = strdup(report);
	*len_r = strlen(report);
	return 0;
}

static const char big_msg[] = "Subject: big\r\n\r\n"
                              "0123456789012345678901234567890123456789012345678901234567890123"
                              "0123456789012345678901234567890123456789012345678901234567890123"
                              "\r\n";

static int deliver_with(const struct store_target *t, size_t n, const struct store_relay_rcpt *rr,
                        size_t n_relay, struct store_deliver_report *rp)
{
	struct store_deliver_req req = {.data = big_msg,
	                                .size = strlen(big_msg),
	                                .targets = t,
	                                .n_targets = n,
	                                .sender = rp != NULL ? rp->to : "",
	                                .relay = rr,
	                                .n_relay = n_relay,
	                                .requiretls = true,
	                                .report = rp};
	return FX_CALL(&fx, store_deliver(fx.s, &req, store_sync_delivery, &fx.w));
}

Test(store_report, local_sender_gets_report_with_the_copies)
{
	int64_t full = add_user("full@corp.example", 100); /* the message is 150 bytes */
	int64_t bob = add_user("bob@corp.example", 0);
	add_user("carol@corp.example", 0);
	struct store_target t[] = {{.user_id = full}, {.user_id = bob}};
	struct hook h = {0};
	struct store_deliver_report rp = {hook_format, &h, "Carol@Corp.Example", true};
	cr_assert_eq(deliver_with(t, 2, NULL, 0, &rp), 0);
	cr_assert_eq(fx.w.delivery.v[0].rc, -EDQUOT);
	cr_assert_eq(fx.w.delivery.v[0].quota_bytes, 100);
	cr_assert_eq(fx.w.delivery.v[1].rc, 0);
	cr_assert_eq(fx.w.delivery.report_rc, 0);
	cr_assert_eq(h.calls, 1);
	cr_assert_eq(h.failed, 1);
	cr_assert_eq(h.first_rc, -EDQUOT);
	cr_assert_eq(h.quota, 100);
	cr_assert_eq(h.size, strlen(big_msg));
	cr_assert(h.head_complete);
	cr_assert_str_eq(h.head_start, "Subject: big\r\n\r");
	cr_assert_eq(inbox_count("full@corp.example"), 0);
	cr_assert_eq(inbox_count("bob@corp.example"), 1);
	cr_assert_eq(inbox_count("carol@corp.example"), 1);
	cr_assert_eq(
	    count_rows(
	        "SELECT count(*) FROM contents WHERE CAST(body AS TEXT) LIKE '%report body%'"),
	    1);
	cr_assert_eq(count_rows("SELECT count(*) FROM queue"), 0);
}

Test(store_report, remote_sender_report_is_queued_with_the_null_sender)
{
	int64_t full = add_user("full@corp.example", 100);
	int64_t bob = add_user("bob@corp.example", 0);
	struct store_target t[] = {{.user_id = bob}, {.user_id = full}};
	struct hook h = {0};
	struct store_deliver_report rp = {hook_format, &h, "x@partner.example", false};
	cr_assert_eq(deliver_with(t, 2, NULL, 0, &rp), 0);
	cr_assert_eq(fx.w.delivery.report_rc, 0);
	cr_assert_eq(fx.w.delivery.queue_id, 0); /* the outer delivery relays nothing */
	cr_assert_eq(count_rows("SELECT count(*) FROM queue WHERE sender = '' AND requiretls = 1"),
	             1);
	cr_assert_eq(count_rows("SELECT count(*) FROM queue_rcpts WHERE address = "
	                        "'x@partner.example'"),
	             1);
}

Test(store_report, nothing_failed_no_hook_call)
{
	int64_t bob = add_user("bob@corp.example", 0);
	struct store_target t = {.user_id = bob};
	struct hook h = {0};
	struct store_deliver_report rp = {hook_format, &h, "carol@corp.example", true};
	cr_assert_eq(deliver_with(&t, 1, NULL, 0, &rp), 0);
	cr_assert_eq(h.calls, 0);
	cr_assert_eq(fx.w.delivery.report_rc, 0);
}

Test(store_report, none_wanted_or_nowhere_to_go_keeps_the_delivery)
{
	int64_t full = add_user("full@corp.example", 40); /* less than the report too */
	int64_t bob = add_user("bob@corp.example", 0);
	struct store_target t[] = {{.user_id = full}, {.user_id = bob}};
	struct hook h = {.none = true};
	struct store_deliver_report rp = {hook_format, &h, "bob@corp.example", true};
	cr_assert_eq(deliver_with(t, 2, NULL, 0, &rp), 0);
	cr_assert_eq(fx.w.delivery.report_rc, -ENODATA);
	cr_assert_eq(inbox_count("bob@corp.example"), 1);

	/* An unknown local sender: no report, the copy stays. */
	h = (struct hook){0};
	rp.to = "ghost@corp.example";
	cr_assert_eq(deliver_with(t, 2, NULL, 0, &rp), 0);
	cr_assert_eq(fx.w.delivery.report_rc, -ENOENT);
	cr_assert_eq(h.calls, 1);
	cr_assert_eq(inbox_count("bob@corp.example"), 2);

	/* The sender is the full one: its report cannot be stored either. */
	rp.to = "full@corp.example";
	cr_assert_eq(deliver_with(t, 2, NULL, 0, &rp), 0);
	cr_assert_eq(fx.w.delivery.report_rc, -EDQUOT);
	cr_assert_eq(inbox_count("bob@corp.example"), 3);
	cr_assert_eq(inbox_count("full@corp.example"), 0);

	/* The null sender is never reported to. */
	h = (struct hook){0};
	rp.to = "";
	cr_assert_eq(deliver_with(t, 2, NULL, 0, &rp), 0);
	cr_assert_eq(fx.w.delivery.report_rc, -ENODATA);
	cr_assert_eq(h.calls, 0);
}

Test(store_report, hook_error_stores_nothing)
{
	int64_t full = add_user("full@corp.example", 100);
	int64_t bob = add_user("bob@corp.example", 0);
	struct store_target t[] = {{.user_id = bob}, {.user_id = full}};
	struct hook h = {.rc = -ENOMEM};
	struct store_deliver_report rp = {hook_format, &h, "bob@corp.example", true};
	struct store_relay_rcpt rr = {.address = "y@partner.example"};
	cr_assert_eq(deliver_with(t, 2, &rr, 1, &rp), -ENOMEM);
	cr_assert_eq(inbox_count("bob@corp.example"), 0);
	cr_assert_eq(count_rows("SELECT count(*) FROM contents"), 0);
	cr_assert_eq(count_rows("SELECT count(*) FROM queue"), 0);
}

Test(store_report, every_target_failed_says_why)
{
	int64_t full = add_user("full@corp.example", 100);
	struct store_target t[] = {{.user_id = full}, {.user_id = 9999}};
	struct hook h = {0};
	struct store_deliver_report rp = {hook_format, &h, "bob@corp.example", true};
	cr_assert_eq(deliver_with(t, 2, NULL, 0, &rp), -EDQUOT);
	cr_assert_eq(deliver_with(&t[1], 1, NULL, 0, &rp), -ENOENT);
	cr_assert_eq(h.calls, 0);
	cr_assert_eq(count_rows("SELECT count(*) FROM contents"), 0);
}

Test(store_report, spooled_message_head)
{
	int64_t full = add_user("full@corp.example", 1000);
	int64_t bob = add_user("bob@corp.example", 0);
	char path[160];
	snprintf(path, sizeof(path), "%s/spool.eml", fx.dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("Subject: spooled\r\n\r\n", f);
	size_t total = strlen("Subject: spooled\r\n\r\n");
	while (total < STORE_REPORT_HEAD_MAX + 4096) {
		fputs("line of the body that goes on and on\r\n", f);
		total += strlen("line of the body that goes on and on\r\n");
	}
	fclose(f);
	struct store_target t[] = {{.user_id = full}, {.user_id = bob}};
	struct hook h = {0};
	struct store_deliver_report rp = {hook_format, &h, "bob@corp.example", true};
	struct store_deliver_req req = {.spool_path = path,
	                                .targets = t,
	                                .n_targets = 2,
	                                .sender = "bob@corp.example",
	                                .report = &rp};
	cr_assert_eq(FX_CALL(&fx, store_deliver(fx.s, &req, store_sync_delivery, &fx.w)), 0);
	cr_assert_eq(fx.w.delivery.report_rc, 0);
	cr_assert_eq(h.size, total);
	cr_assert_eq(h.head_len, STORE_REPORT_HEAD_MAX);
	cr_assert_not(h.head_complete);
	cr_assert_str_eq(h.head_start, "Subject: spoole");
	cr_assert_eq(inbox_count("bob@corp.example"), 2);
}

/* The message-count limit refuses a copy and a report as the storage quota does. */
Test(store_report, message_limit_refuses_copy_and_report)
{
	int64_t capped = add_user("capped@corp.example", 0);
	int64_t bob = add_user("bob@corp.example", 0);
	cr_assert_eq(FX_CALL(&fx, store_user_set_message_quota(fx.s, "capped@corp.example", 1,
	                                                       store_sync_done_cb, &fx.w)),
	             0);
	struct store_target t[] = {{.user_id = capped}, {.user_id = bob}};
	struct hook h = {0};
	struct store_deliver_report rp = {hook_format, &h, "bob@corp.example", true};
	cr_assert_eq(deliver_with(t, 2, NULL, 0, &rp), 0); /* capped's first fits */
	cr_assert_eq(h.calls, 0);
	cr_assert_eq(deliver_with(t, 2, NULL, 0, &rp), 0);
	cr_assert_eq(fx.w.delivery.v[0].rc, -EDQUOT);
	cr_assert_eq(fx.w.delivery.v[0].quota_messages, 1);
	cr_assert_eq(h.first_rc, -EDQUOT);
	cr_assert_eq(fx.w.delivery.report_rc, 0); /* bob got the report */
	cr_assert_eq(inbox_count("bob@corp.example"), 3);
	/* The capped user as the sender: the report has nowhere to go, the copy stays. */
	struct store_target tb = {.user_id = bob};
	struct store_target tt[] = {{.user_id = capped}, tb};
	rp.to = "capped@corp.example";
	cr_assert_eq(deliver_with(tt, 2, NULL, 0, &rp), 0);
	cr_assert_eq(fx.w.delivery.report_rc, -EDQUOT);
	cr_assert_eq(inbox_count("capped@corp.example"), 1);
	cr_assert_eq(inbox_count("bob@corp.example"), 4);
}
