/*
 * A test-only tool that writes through the store's blocking face, beside a running
 * sealmaild (SQLite WAL lets two processes share the file), so integration tests can put
 * messages in a mailbox and take them out without depending on another protocol:
 *
 *   store_tool DB deliver ADDRESS FILE     prints "uidvalidity uid"
 *   store_tool DB expunge ADDRESS UID      removes one INBOX message
 *   store_tool DB list ADDRESS             prints "uid size flags" per INBOX message
 *
 * Exit 0 on success, 1 with one line on standard error otherwise.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store.h"

static struct store *st;

static int fail(const char *what, int rc)
{
	fprintf(stderr, "store_tool: %s: %s\n", what, store_strerror(rc));
	return 1;
}

static int inbox(const char *address, int64_t *user_id_r, int64_t *mailbox_id_r)
{
	struct store_sync w;
	store_sync_init(&w);
	int rc = store_sync_wait(&w, store_user_get(st, address, store_sync_users, &w));
	if (rc == 0)
		*user_id_r = w.users.v[0].id;
	store_sync_done(&w);
	if (rc < 0)
		return fail("user", rc);
	store_sync_init(&w);
	rc = store_sync_wait(&w,
	                     store_mailbox_get(st, *user_id_r, "INBOX", store_sync_mailboxes, &w));
	if (rc == 0)
		*mailbox_id_r = w.mailboxes.v[0].id;
	store_sync_done(&w);
	return rc < 0 ? fail("INBOX", rc) : 0;
}

static int deliver(const char *address, const char *path)
{
	int64_t user_id, mailbox_id;
	if (inbox(address, &user_id, &mailbox_id) != 0)
		return 1;
	struct store_target t = {.user_id = user_id, .mailbox_id = mailbox_id};
	struct store_deliver_req req = {
	    .spool_path = path, .targets = &t, .n_targets = 1, .sender = ""};
	struct store_sync w;
	store_sync_init(&w);
	int rc = store_sync_wait(&w, store_deliver(st, &req, store_sync_delivery, &w));
	if (rc == 0 && w.delivery.n == 1 && w.delivery.v[0].rc == 0)
		printf("%" PRIu32 " %" PRIu32 "\n", w.delivery.v[0].uidvalidity,
		       w.delivery.v[0].uid);
	else if (rc == 0)
		rc = w.delivery.n == 1 ? w.delivery.v[0].rc : -EIO;
	store_sync_done(&w);
	return rc < 0 ? fail("deliver", rc) : 0;
}

static int expunge(const char *address, const char *uid_s)
{
	int64_t user_id, mailbox_id;
	char *end;
	unsigned long uid = strtoul(uid_s, &end, 10);
	if (*uid_s == '\0' || *end != '\0' || uid == 0 || uid > UINT32_MAX)
		return fail("UID", -EINVAL);
	if (inbox(address, &user_id, &mailbox_id) != 0)
		return 1;
	struct store_uid_range r = {(uint32_t)uid, (uint32_t)uid};
	struct store_sync w;
	store_sync_init(&w);
	int rc =
	    store_sync_wait(&w, store_flags_store(st, mailbox_id, &r, 1, STORE_FLAGS_ADD,
	                                          STORE_DELETED, NULL, 0, store_sync_flags, &w));
	store_sync_done(&w);
	if (rc < 0)
		return fail("flag", rc);
	store_sync_init(&w);
	rc = store_sync_wait(&w, store_expunge(st, mailbox_id, &r, 1, store_sync_uids, &w));
	store_sync_done(&w);
	return rc < 0 ? fail("expunge", rc) : 0;
}

static int list(const char *address)
{
	int64_t user_id, mailbox_id;
	if (inbox(address, &user_id, &mailbox_id) != 0)
		return 1;
	struct store_sync w;
	store_sync_init(&w);
	int rc = store_sync_wait(&w, store_message_list(st, mailbox_id, 0, store_sync_msgs, &w));
	for (size_t i = 0; rc == 0 && i < w.msgs.n; i++)
		printf("%" PRIu32 " %" PRIu64 " %u\n", w.msgs.v[i].uid, w.msgs.v[i].size,
		       w.msgs.v[i].flags);
	store_sync_done(&w);
	return rc < 0 ? fail("list", rc) : 0;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: store_tool DB deliver|expunge|list ADDRESS [ARG]\n");
		return 2;
	}
	struct store_options opt = {.path = argv[1]};
	const char *err = NULL;
	int rc = store_open(&opt, &st, &err);
	if (rc < 0) {
		fprintf(stderr, "store_tool: %s\n", err != NULL ? err : store_strerror(rc));
		return 1;
	}
	int ret = 2;
	if (strcmp(argv[2], "deliver") == 0 && argc == 5)
		ret = deliver(argv[3], argv[4]);
	else if (strcmp(argv[2], "expunge") == 0 && argc == 5)
		ret = expunge(argv[3], argv[4]);
	else if (strcmp(argv[2], "list") == 0 && argc == 4)
		ret = list(argv[3]);
	else
		fprintf(stderr, "usage: store_tool DB deliver|expunge|list ADDRESS [ARG]\n");
	store_close(st);
	return ret;
}
