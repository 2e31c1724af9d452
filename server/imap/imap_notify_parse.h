#ifndef SEALMAIL_IMAP_NOTIFY_PARSE_H
#define SEALMAIL_IMAP_NOTIFY_PARSE_H
/*
 * The arguments of IMAP NOTIFY (RFC 5465 section 8) as a spec, and which of its event
 * groups a mailbox falls under. Pure: parsed arguments in (imap_parser.h), owned strings
 * out; no store, no I/O. The fetch attributes of MessageNew are only checked to be a list
 * of atoms here; the FETCH code checks them as items.
 */
#include <stdbool.h>
#include <stddef.h>

#include "server/imap/imap_parser.h"

/* Events (RFC 5465 section 5). AnnotationChange is known and refused (BADEVENT). */
enum imap_notify_event {
	IMAP_NOTIFY_MESSAGE_NEW = 1 << 0,
	IMAP_NOTIFY_MESSAGE_EXPUNGE = 1 << 1,
	IMAP_NOTIFY_FLAG_CHANGE = 1 << 2,
	IMAP_NOTIFY_MAILBOX_NAME = 1 << 3,
	IMAP_NOTIFY_SUBSCRIPTION_CHANGE = 1 << 4,
	IMAP_NOTIFY_ANNOTATION_CHANGE = 1 << 5,
	IMAP_NOTIFY_MAILBOX_METADATA_CHANGE = 1 << 6,
	IMAP_NOTIFY_SERVER_METADATA_CHANGE = 1 << 7,
};

#define IMAP_NOTIFY_MESSAGE_EVENTS                                                                 \
	(IMAP_NOTIFY_MESSAGE_NEW | IMAP_NOTIFY_MESSAGE_EXPUNGE | IMAP_NOTIFY_FLAG_CHANGE |         \
	 IMAP_NOTIFY_ANNOTATION_CHANGE)
#define IMAP_NOTIFY_SUPPORTED                                                                      \
	(IMAP_NOTIFY_MESSAGE_NEW | IMAP_NOTIFY_MESSAGE_EXPUNGE | IMAP_NOTIFY_FLAG_CHANGE |         \
	 IMAP_NOTIFY_MAILBOX_NAME | IMAP_NOTIFY_SUBSCRIPTION_CHANGE |                              \
	 IMAP_NOTIFY_MAILBOX_METADATA_CHANGE | IMAP_NOTIFY_SERVER_METADATA_CHANGE)
/* What a BADEVENT response code lists: the events this server supports. */
#define IMAP_NOTIFY_BADEVENT_LIST                                                                  \
	"(MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange "                    \
	"MailboxMetadataChange ServerMetadataChange)"

enum imap_notify_filter {
	IMAP_NOTIFY_SELECTED,
	IMAP_NOTIFY_SELECTED_DELAYED,
	IMAP_NOTIFY_INBOXES,
	IMAP_NOTIFY_PERSONAL,
	IMAP_NOTIFY_SUBSCRIBED,
	IMAP_NOTIFY_SUBTREE,
	IMAP_NOTIFY_MAILBOXES,
};

/* Bounds on one NOTIFY SET: a client cannot make a session hold more than this. */
#define IMAP_NOTIFY_MAX_GROUPS 64
#define IMAP_NOTIFY_MAX_NAMES  1000 /* mailbox names over all groups */
#define IMAP_NOTIFY_MAX_FETCH  64   /* fetch attributes of MessageNew */

struct imap_notify_group {
	enum imap_notify_filter filter;
	char **names; /* SUBTREE / MAILBOXES: store names (UTF-8), owned; invalid ones left out */
	size_t n_names;
	unsigned events; /* enum imap_notify_event bits; 0 for NONE */
	char *fetch_att; /* SELECTED*: "(UID BODY.PEEK[...])" for MessageNew, or NULL; owned */
};

struct imap_notify_spec {
	bool none;   /* NOTIFY NONE */
	bool status; /* NOTIFY SET STATUS */
	struct imap_notify_group *groups;
	size_t n_groups;
};

/*
 * Parses the arguments after "NOTIFY" (a[0..n)), mailbox names in mUTF-7 unless utf8.
 * Returns 0 and fills *spec (free with imap_notify_spec_free, also after an error);
 * -EINVAL with *error_r for a tagged BAD (syntax, MessageNew without MessageExpunge or the
 * other way round, FlagChange or AnnotationChange without both, a mailbox event or a
 * second selected filter with SELECTED*, fetch attributes outside SELECTED*); -E2BIG over
 * the bounds above (NO [LIMIT]); -ENOTSUP when the syntax is right but an event is not
 * supported (NO [BADEVENT ...]).
 */
int imap_notify_parse(const struct imap_arg *a, size_t n, bool utf8, struct imap_notify_spec *spec,
                      const char **error_r);
void imap_notify_spec_free(struct imap_notify_spec *spec);

/* The group of a SELECTED or SELECTED-DELAYED filter, or NULL. */
const struct imap_notify_group *imap_notify_selected(const struct imap_notify_spec *spec);
/* The events of the first non-selected group the mailbox name (store form) falls under,
 * 0 when none. subscribed says whether the name is subscribed (SUBSCRIBED filter). */
unsigned imap_notify_events_for(const struct imap_notify_spec *spec, const char *name,
                                bool subscribed);

#endif
