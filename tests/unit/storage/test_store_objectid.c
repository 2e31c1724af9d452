/*
 * storage/: what IMAP OBJECTID, SAVEDATE and PREVIEW show, on every backend: a mailbox id
 * kept across RENAME and never given again, EMAILID and THREADID carried by COPY and MOVE,
 * threads from Message-IDs in either order of arrival, save dates, previews.
 */
#include <sqlite3.h>
#include <time.h>

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

TestSuite(store_objectid, .init = setup, .fini = teardown, .timeout = 60);

static uint64_t mailbox_objectid(int64_t user, const char *name)
{
	cr_assert_eq(FX_CALL(&fx, store_mailbox_get(fx.s, user, name, store_sync_mailboxes, &fx.w)),
	             0);
	return fx.w.mailboxes.v[0].objectid;
}

/* The messages of mailbox with what store_message_structures gives (ids, preview). */
static void structures(int64_t mailbox, uint32_t first, uint32_t last)
{
	uint32_t uids[16];
	size_t n = 0;
	for (uint32_t u = first; u <= last && n < 16; u++)
		uids[n++] = u;
	cr_assert_eq(FX_CALL(&fx, store_message_structures(fx.s, mailbox, uids, n, 1024 * 1024,
	                                                   false, store_sync_batch, &fx.w)),
	             0);
}

Test(store_objectid, mailbox_ids)
{
	int64_t a = fx_add_user(&fx, "oid@corp.example", "pw-oid-1");
	uint64_t inbox = mailbox_objectid(a, "INBOX");
	cr_assert_eq(
	    FX_CALL(&fx, store_mailbox_create(fx.s, a, "Work", 0, store_sync_mailboxes, &fx.w)), 0);
	uint64_t work = fx.w.mailboxes.v[0].objectid;
	cr_assert_neq(work, 0);
	cr_assert_neq(work, inbox);
	cr_assert_eq(mailbox_objectid(a, "Work"), work);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_rename(fx.s, a, "Work", "Play",
	                                               store_sync_mailboxes, &fx.w)),
	             0);
	cr_assert_eq(mailbox_objectid(a, "Play"), work);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_delete(fx.s, a, "Play", store_sync_done_cb, &fx.w)),
	             0);
	cr_assert_eq(
	    FX_CALL(&fx, store_mailbox_create(fx.s, a, "Play", 0, store_sync_mailboxes, &fx.w)), 0);
	cr_assert_neq(fx.w.mailboxes.v[0].objectid, work);
}

static const char root[] = "Subject: plan\r\nMessage-ID: <root@x>\r\n\r\nHello  Bob,\r\n"
                           "> old\r\nsee you\r\n-- \r\nsig\r\n";
static const char child[] = "Subject: Re: plan\r\nMessage-ID: <child@x>\r\n"
                            "References: <root@x>\r\n\r\nok\r\n";
static const char other[] = "Subject: else\r\nMessage-ID: <else@x>\r\n\r\n";

Test(store_objectid, emailid_threadid_savedate_preview)
{
	int64_t a = fx_add_user(&fx, "thr@corp.example", "pw-thr-1");
	int64_t inbox = fx_mailbox_id(&fx, a, "INBOX");
	struct store_target t = {.user_id = a};
	int64_t before = (int64_t)time(NULL);
	/* The reply first: its parent joins its thread when it comes. */
	cr_assert_eq(fx_deliver(&fx, child, &t, 1), 0);
	cr_assert_eq(fx_deliver(&fx, root, &t, 1), 0);
	cr_assert_eq(fx_deliver(&fx, other, &t, 1), 0);
	structures(inbox, 1, 3);
	cr_assert_eq(fx.w.batch.n, 3);
	const struct store_msg *v = fx.w.batch.v;
	cr_assert_neq(v[0].email_id, 0);
	cr_assert_neq(v[0].email_id, v[1].email_id);
	cr_assert_neq(v[1].email_id, v[2].email_id);
	cr_assert_neq(v[0].thread_id, 0);
	cr_assert_eq(v[0].thread_id, v[1].thread_id);
	cr_assert_neq(v[2].thread_id, v[0].thread_id);
	cr_assert_geq(v[0].save_date, before);
	cr_assert_str_eq(v[1].preview, "Hello Bob, see you");
	cr_assert_str_eq(v[0].preview, "ok");
	cr_assert_null(v[2].preview);
	uint64_t e_root = v[1].email_id, t_root = v[1].thread_id;

	/* COPY and MOVE keep the ids; the save date is the copy's own. */
	cr_assert_eq(
	    FX_CALL(&fx, store_mailbox_create(fx.s, a, "Keep", 0, store_sync_mailboxes, &fx.w)), 0);
	int64_t keep = fx.w.mailboxes.v[0].id;
	struct store_uid_range two = {2, 2};
	cr_assert_eq(
	    FX_CALL(&fx, store_copy(fx.s, inbox, &two, 1, keep, true, store_sync_copied, &fx.w)),
	    0);
	structures(keep, 1, 1);
	cr_assert_eq(fx.w.batch.n, 1);
	cr_assert_eq(fx.w.batch.v[0].email_id, e_root);
	cr_assert_eq(fx.w.batch.v[0].thread_id, t_root);

	/* Another user's copy of the conversation is in another thread. */
	int64_t b = fx_add_user(&fx, "thr2@corp.example", "pw-thr-2");
	struct store_target tb = {.user_id = b};
	cr_assert_eq(fx_deliver(&fx, root, &tb, 1), 0);
	structures(fx_mailbox_id(&fx, b, "INBOX"), 1, 1);
	cr_assert_neq(fx.w.batch.v[0].thread_id, t_root);

	/* The list and header reads carry the ids too (SEARCH EMAILID / THREADID). */
	cr_assert_eq(FX_CALL(&fx, store_message_headers(fx.s, inbox, store_sync_msgs, &fx.w)), 0);
	cr_assert_eq(fx.w.msgs.n, 2);
	cr_assert_eq(fx.w.msgs.v[0].thread_id, t_root);
}
