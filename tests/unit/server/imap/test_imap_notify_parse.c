/* NOTIFY arguments (RFC 5465): every rule of sections 5, 6 and 8, table-driven, and
 * hostile input (deep nesting, huge mailbox lists, NUL). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "server/imap/imap_notify_parse.h"

/* Parses "NOTIFY <args>" as the session would: the wire form through imap_parse, then
 * the arguments after the command name. */
static int parse(const char *args, struct imap_notify_spec *spec, const char **err)
{
	char *line = NULL;
	if (asprintf(&line, "t NOTIFY %s\r\n", args) < 0)
		abort();
	struct imap_args a = {0};
	const char *perr = NULL;
	int rc = imap_parse(line, strlen(line), &a, &perr);
	cr_assert_eq(rc, 0, "parse %s: %s", args, perr);
	rc = imap_notify_parse(a.v + 2, a.n - 2, false, spec, err);
	imap_args_free(&a);
	free(line);
	return rc;
}

static const struct {
	const char *args;
	int rc;
} cases[] = {
    {"NONE", 0},
    {"none", 0},
    {"SET (SELECTED (MessageNew MessageExpunge))", 0},
    {"set status (selected-delayed (messagenew messageexpunge flagchange))", 0},
    {"SET (SELECTED (MessageNew (UID BODY.PEEK[HEADER.FIELDS (Subject)]) MessageExpunge))", 0},
    {"SET (PERSONAL NONE)", 0},
    {"SET (INBOXES (MessageNew MessageExpunge))", 0},
    {"SET (SUBSCRIBED (MailboxName SubscriptionChange))", 0},
    {"SET (SUBTREE INBOX (MailboxName))", 0},
    {"SET (SUBTREE (Lists \"Other Lists\") (MessageNew MessageExpunge FlagChange))", 0},
    {"SET (MAILBOXES (INBOX \"Foo Bar\") (MessageNew MessageExpunge))", 0},
    {"SET (MAILBOXES {3}\r\nabc (MessageNew MessageExpunge))", 0},
    {"SET (SELECTED (MessageNew MessageExpunge)) (PERSONAL (MailboxName)) (MAILBOXES x NONE)", 0},
    /* Mailboxes that cannot exist are ignored, not refused. */
    {"SET (MAILBOXES (\"a*\" \"/\") (MessageNew MessageExpunge))", 0},
    /* The pairing rules of section 5. */
    {"SET (SELECTED (MessageNew))", -EINVAL},
    {"SET (SELECTED (MessageExpunge))", -EINVAL},
    {"SET (PERSONAL (MessageNew))", -EINVAL},
    {"SET (SELECTED (FlagChange))", -EINVAL},
    {"SET (SELECTED (MessageNew FlagChange))", -EINVAL},
    {"SET (PERSONAL (AnnotationChange))", -EINVAL},
    /* SELECTED takes message events only, one selected filter, fetch only there. */
    {"SET (SELECTED (MailboxName))", -EINVAL},
    {"SET (SELECTED-DELAYED (SubscriptionChange))", -EINVAL},
    {"SET (SELECTED (MessageNew MessageExpunge)) (SELECTED-DELAYED (MessageNew MessageExpunge))",
     -EINVAL},
    {"SET (PERSONAL (MessageNew (UID) MessageExpunge))", -EINVAL},
    {"SET (SELECTED (MessageNew () MessageExpunge))", -EINVAL},
    {"SET (SELECTED (MessageNew (UID (x)) MessageExpunge))", -EINVAL},
    {"SET (SELECTED (MessageNew MessageNew MessageExpunge))", -EINVAL},
    /* Syntax. */
    {"", -EINVAL},
    {"SET", -EINVAL},
    {"SET STATUS", -EINVAL},
    {"NONE extra", -EINVAL},
    {"GET (PERSONAL NONE)", -EINVAL},
    {"SET PERSONAL NONE", -EINVAL},
    {"SET ()", -EINVAL},
    {"SET (PERSONAL)", -EINVAL},
    {"SET (PERSONAL ())", -EINVAL},
    {"SET (PERSONAL NONE extra)", -EINVAL},
    {"SET (NOWHERE NONE)", -EINVAL},
    {"SET (SUBTREE (MailboxName))", -EINVAL},
    {"SET (SUBTREE () (MailboxName))", -EINVAL},
    {"SET (MAILBOXES NIL (MailboxName))", -EINVAL},
    {"SET (PERSONAL (\"MailboxName\"))", -EINVAL},
    {"SET (PERSONAL (MailboxName)) junk", -EINVAL},
    {"SET (\"PERSONAL\" (MailboxName))", -EINVAL},
    /* Events we do not support, well-formed: BADEVENT. */
    {"SET (PERSONAL (MessageNew MessageExpunge AnnotationChange))", -ENOTSUP},
    {"SET (PERSONAL (SomethingNew))", -ENOTSUP},
    /* ...but a syntax error anywhere is BAD first. */
    {"SET (PERSONAL (SomethingNew)) (SELECTED (MessageNew))", -EINVAL},
    /* The METADATA events (RFC 5464), but never with a selected filter. */
    {"SET (PERSONAL (MailboxMetadataChange))", 0},
    {"SET (PERSONAL (ServerMetadataChange))", 0},
    {"SET (SELECTED (MessageNew MessageExpunge MailboxMetadataChange))", -EINVAL},
};

Test(imap_notify_parse, table)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct imap_notify_spec spec;
		const char *err = NULL;
		int rc = parse(cases[i].args, &spec, &err);
		cr_expect_eq(rc, cases[i].rc, "%s: %d (%s), expected %d", cases[i].args, rc,
		             err != NULL ? err : "", cases[i].rc);
		if (rc < 0)
			cr_expect_not_null(err);
		imap_notify_spec_free(&spec);
	}
}

Test(imap_notify_parse, spec_contents)
{
	struct imap_notify_spec spec;
	const char *err;
	cr_assert_eq(parse("SET STATUS (SELECTED-DELAYED (MessageNew (UID BODY[HEADER]) "
	                   "MessageExpunge FlagChange)) (SUBTREE (Lists &AOQ-b) "
	                   "(MessageNew MessageExpunge)) (MAILBOXES Lists/x NONE) "
	                   "(SUBSCRIBED (MailboxName)) (INBOXES (SubscriptionChange))",
	                   &spec, &err),
	             0);
	cr_assert(spec.status);
	cr_assert(!spec.none);
	cr_assert_eq(spec.n_groups, 5);
	const struct imap_notify_group *sel = imap_notify_selected(&spec);
	cr_assert_not_null(sel);
	cr_assert_eq(sel->filter, IMAP_NOTIFY_SELECTED_DELAYED);
	cr_assert_eq(sel->events, IMAP_NOTIFY_MESSAGE_NEW | IMAP_NOTIFY_MESSAGE_EXPUNGE |
	                              IMAP_NOTIFY_FLAG_CHANGE);
	cr_assert_str_eq(sel->fetch_att, "(UID BODY[HEADER])");
	cr_assert_eq(spec.groups[1].n_names, 2);
	cr_assert_str_eq(spec.groups[1].names[1], "\xc3\xa4"
	                                          "b"); /* mUTF-7 decoded */
	/* The first group that has the mailbox decides. */
	unsigned msg = IMAP_NOTIFY_MESSAGE_NEW | IMAP_NOTIFY_MESSAGE_EXPUNGE;
	cr_assert_eq(imap_notify_events_for(&spec, "Lists", false), msg);
	cr_assert_eq(imap_notify_events_for(&spec, "Lists/x", false), msg);
	cr_assert_eq(imap_notify_events_for(&spec, "Listsx", false), 0);
	cr_assert_eq(imap_notify_events_for(&spec, "Other", true), IMAP_NOTIFY_MAILBOX_NAME);
	cr_assert_eq(imap_notify_events_for(&spec, "INBOX", false),
	             IMAP_NOTIFY_SUBSCRIPTION_CHANGE);
	cr_assert_eq(imap_notify_events_for(&spec, "Other", false), 0);
	imap_notify_spec_free(&spec);

	cr_assert_eq(
	    parse("SET (MAILBOXES Lists/x NONE) (SUBTREE Lists (MailboxName))", &spec, &err), 0);
	cr_assert_eq(imap_notify_events_for(&spec, "Lists/x", false), 0);
	cr_assert_eq(imap_notify_events_for(&spec, "Lists/y", false), IMAP_NOTIFY_MAILBOX_NAME);
	cr_assert_null(imap_notify_selected(&spec));
	imap_notify_spec_free(&spec);

	cr_assert_eq(parse("none", &spec, &err), 0);
	cr_assert(spec.none);
	imap_notify_spec_free(&spec);
}

Test(imap_notify_parse, utf8_names_are_taken_as_they_are)
{
	char line[] = "t NOTIFY SET (MAILBOXES \"\xc3\xa4\" (MailboxName))\r\n";
	struct imap_args a = {0};
	const char *perr;
	cr_assert_eq(imap_parse(line, strlen(line), &a, &perr), 0);
	struct imap_notify_spec spec;
	const char *err;
	cr_assert_eq(imap_notify_parse(a.v + 2, a.n - 2, true, &spec, &err), 0);
	cr_assert_str_eq(spec.groups[0].names[0], "\xc3\xa4");
	imap_notify_spec_free(&spec);
	imap_args_free(&a);
}

Test(imap_notify_parse, huge_mailbox_list_is_refused_with_a_limit)
{
	struct buf b;
	buf_init(&b, SIZE_MAX);
	buf_append_str(&b, "SET (MAILBOXES (");
	for (int i = 0; i < IMAP_NOTIFY_MAX_NAMES + 1; i++)
		buf_printf(&b, "%sm%d", i > 0 ? " " : "", i);
	buf_append_str(&b, ") (MessageNew MessageExpunge))");
	buf_append(&b, "", 1);
	struct imap_notify_spec spec;
	const char *err;
	cr_assert_eq(parse(b.data, &spec, &err), -E2BIG);
	imap_notify_spec_free(&spec);
	/* Exactly the bound is fine. */
	buf_reset(&b);
	buf_append_str(&b, "SET (MAILBOXES (");
	for (int i = 0; i < IMAP_NOTIFY_MAX_NAMES; i++)
		buf_printf(&b, "%sm%d", i > 0 ? " " : "", i);
	buf_append_str(&b, ") (MessageNew MessageExpunge))");
	buf_append(&b, "", 1);
	cr_assert_eq(parse(b.data, &spec, &err), 0);
	cr_assert_eq(spec.groups[0].n_names, IMAP_NOTIFY_MAX_NAMES);
	imap_notify_spec_free(&spec);
	/* Too many groups. */
	buf_reset(&b);
	buf_append_str(&b, "SET");
	for (int i = 0; i < IMAP_NOTIFY_MAX_GROUPS + 1; i++)
		buf_append_str(&b, " (PERSONAL NONE)");
	buf_append(&b, "", 1);
	cr_assert_eq(parse(b.data, &spec, &err), -E2BIG);
	imap_notify_spec_free(&spec);
	buf_free(&b);
}

Test(imap_notify_parse, deep_nesting_is_bad_not_a_crash)
{
	/* Within the parser's depth bound, in every place a list may be. */
	const char *deep[] = {
	    "SET ((((((((PERSONAL NONE))))))))",
	    "SET (PERSONAL ((((((MailboxName)))))))",
	    "SET (SUBTREE ((((a)))) (MailboxName))",
	    "SET (SELECTED (MessageNew ((((UID)))) MessageExpunge))",
	};
	for (size_t i = 0; i < sizeof(deep) / sizeof(deep[0]); i++) {
		struct imap_notify_spec spec;
		const char *err;
		cr_expect_eq(parse(deep[i], &spec, &err), -EINVAL, "%s", deep[i]);
		imap_notify_spec_free(&spec);
	}
}
