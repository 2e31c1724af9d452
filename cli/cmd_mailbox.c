/*
 * sealctl mailbox list|create|rename|delete ADDRESS ...: the user's mailboxes with their
 * counts, and the changes an administrator makes for a user (names as the store keeps
 * them: UTF-8, "/" between levels, INBOX in any case is the inbox).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_private.h"

static int mailbox_run(struct cli *cli, int argc, char **argv);

const struct cli_noun cli_noun_mailbox = {
    .name = "mailbox",
    .usage = "  sealctl -c FILE mailbox list ADDRESS\n"
             "  sealctl -c FILE mailbox create ADDRESS NAME\n"
             "  sealctl -c FILE mailbox rename ADDRESS NAME NEW-NAME\n"
             "  sealctl -c FILE mailbox delete ADDRESS NAME\n",
    .run = mailbox_run,
};

static const char *special_use_name(unsigned su)
{
	switch (su) {
	case STORE_SU_SENT:
		return "\\Sent";
	case STORE_SU_DRAFTS:
		return "\\Drafts";
	case STORE_SU_TRASH:
		return "\\Trash";
	case STORE_SU_JUNK:
		return "\\Junk";
	case STORE_SU_ARCHIVE:
		return "\\Archive";
	default:
		return "-";
	}
}

static int cmd_list(struct cli *cli, int argc, char **argv)
{
	char *address = NULL;
	struct store_sync w;
	if (argc != 2)
		return cli_usage(&cli_noun_mailbox, "mailbox list takes ADDRESS");
	if (store_address_normalize(argv[1], &address) < 0) {
		cli_error("'%s' is not a valid address: give local@domain", argv[1]);
		return CLI_USAGE;
	}
	struct store *s = cli_store(cli);
	if (s == NULL) {
		free(address);
		return CLI_FAIL;
	}
	store_sync_init(&w);
	int rc = cli_wait(&w, store_user_get(s, address, store_sync_users, &w));
	int64_t user_id = rc == 0 ? w.users.v[0].id : 0;
	store_sync_done(&w);
	if (rc == 0) {
		store_sync_init(&w);
		rc = cli_wait(&w, store_mailbox_list(s, user_id, store_sync_mailboxes, &w));
	}
	if (rc < 0) {
		if (rc == -ENOENT)
			cli_error("no such user %s: see 'sealctl user list'", address);
		else
			cli_error("listing mailboxes of %s failed: %s", address,
			          store_strerror(rc));
		if (user_id != 0)
			store_sync_done(&w);
		free(address);
		return CLI_FAIL;
	}
	printf("NAME\tSPECIAL-USE\tMESSAGES\tUNSEEN\tBYTES\tUIDVALIDITY\tUIDNEXT\n");
	for (size_t i = 0; i < w.mailboxes.n; i++) {
		const struct store_mailbox *mb = &w.mailboxes.v[i];
		printf("%s\t%s\t%u\t%u\t%llu\t%u\t%u\n", mb->name,
		       special_use_name(mb->special_use), mb->messages, mb->unseen,
		       (unsigned long long)mb->size, mb->uidvalidity, mb->uidnext);
	}
	store_sync_done(&w);
	free(address);
	return CLI_OK;
}

/* The user's id: 0, or an exit code after saying why. */
static int user_id_of(struct store *s, const char *arg, int64_t *id_r)
{
	char *address = NULL;
	if (store_address_normalize(arg, &address) < 0) {
		cli_error("'%s' is not a valid address: give local@domain", arg);
		return CLI_USAGE;
	}
	struct store_sync w;
	store_sync_init(&w);
	int rc = cli_wait(&w, store_user_get(s, address, store_sync_users, &w));
	if (rc == 0)
		*id_r = w.users.v[0].id;
	store_sync_done(&w);
	if (rc < 0)
		cli_error(rc == -ENOENT ? "no such user %s: see 'sealctl user list'"
		                        : "looking up %s failed",
		          address);
	free(address);
	return rc < 0 ? CLI_FAIL : CLI_OK;
}

static int change_failed(const char *what, const char *name, int rc)
{
	switch (rc) {
	case -EEXIST:
		cli_error("%s %s: a mailbox of that name exists already", what, name);
		break;
	case -ENOENT:
		cli_error("%s %s: no such mailbox (see 'sealctl mailbox list')", what, name);
		break;
	case -EINVAL:
		cli_error("%s %s: not a valid name here (empty levels, control characters, a "
		          "leading or trailing '/', or INBOX where it cannot be)",
		          what, name);
		break;
	default:
		cli_error("%s %s failed: %s", what, name, store_strerror(rc));
	}
	return CLI_FAIL;
}

/* create|rename|delete: IMAP sessions see the change at their next LIST or SELECT. */
static int cmd_change(struct cli *cli, int argc, char **argv)
{
	bool rename = strcmp(argv[0], "rename") == 0;
	bool del = strcmp(argv[0], "delete") == 0;
	if (argc != (rename ? 4 : 3))
		return cli_usage(&cli_noun_mailbox, rename ? "mailbox rename takes ADDRESS NAME "
		                                             "NEW-NAME"
		                                           : "mailbox create|delete takes ADDRESS "
		                                             "NAME");
	struct store *s = cli_store(cli);
	if (s == NULL)
		return CLI_FAIL;
	int64_t user = 0;
	int rc = user_id_of(s, argv[1], &user);
	if (rc != CLI_OK)
		return rc;
	struct store_sync w;
	store_sync_init(&w);
	if (rename)
		rc = cli_wait(
		    &w, store_mailbox_rename(s, user, argv[2], argv[3], store_sync_mailboxes, &w));
	else if (del)
		rc = cli_wait(&w, store_mailbox_delete(s, user, argv[2], store_sync_done_cb, &w));
	else
		rc = cli_wait(&w,
		              store_mailbox_create(s, user, argv[2], 0, store_sync_mailboxes, &w));
	store_sync_done(&w);
	if (rc < 0)
		return change_failed(argv[0], argv[2], rc);
	if (rename)
		printf("renamed %s to %s (with the mailboxes under it)\n", argv[2], argv[3]);
	else
		printf("%s %s%s\n", del ? "deleted" : "created", argv[2],
		       del ? " and its messages" : "");
	return CLI_OK;
}

static int mailbox_run(struct cli *cli, int argc, char **argv)
{
	if (strcmp(argv[0], "list") == 0)
		return cmd_list(cli, argc, argv);
	if (strcmp(argv[0], "create") == 0 || strcmp(argv[0], "rename") == 0 ||
	    strcmp(argv[0], "delete") == 0)
		return cmd_change(cli, argc, argv);
	return cli_usage(&cli_noun_mailbox, "unknown verb for mailbox");
}
