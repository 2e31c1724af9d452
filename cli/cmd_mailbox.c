/*
 * sealctl mailbox list ADDRESS: the user's mailboxes with their counts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_private.h"

static int mailbox_run(struct cli *cli, int argc, char **argv);

const struct cli_noun cli_noun_mailbox = {
    .name = "mailbox",
    .usage = "  sealctl -c FILE mailbox list ADDRESS\n",
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

static int mailbox_run(struct cli *cli, int argc, char **argv)
{
	if (strcmp(argv[0], "list") == 0)
		return cmd_list(cli, argc, argv);
	return cli_usage(&cli_noun_mailbox, "unknown verb for mailbox");
}
