/*
 * NOTIFY arguments (RFC 5465 section 8):
 *   notify-set   = "SET" [SP "STATUS"] SP event-group *(SP event-group)
 *   event-group  = "(" filter-mailboxes SP events ")"
 *   events       = "(" event *(SP event) ")" / "NONE"
 * The RFC's rules beyond the grammar (section 5 and 6) are checked here too, so the
 * command only has to answer.
 */
#include "server/imap/imap_notify_parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "server/imap/imap_mutf7.h"

static const struct {
	const char *name;
	unsigned bit;
} event_names[] = {
    {"MessageNew", IMAP_NOTIFY_MESSAGE_NEW},
    {"MessageExpunge", IMAP_NOTIFY_MESSAGE_EXPUNGE},
    {"FlagChange", IMAP_NOTIFY_FLAG_CHANGE},
    {"MailboxName", IMAP_NOTIFY_MAILBOX_NAME},
    {"SubscriptionChange", IMAP_NOTIFY_SUBSCRIPTION_CHANGE},
    {"AnnotationChange", IMAP_NOTIFY_ANNOTATION_CHANGE},
    {"MailboxMetadataChange", IMAP_NOTIFY_MAILBOX_METADATA_CHANGE},
    {"ServerMetadataChange", IMAP_NOTIFY_SERVER_METADATA_CHANGE},
};

struct parse_state {
	bool utf8;
	bool unsupported; /* an event we do not support: BADEVENT once the syntax is known good */
	size_t names;     /* over all groups */
	const char *error;
};

static int bad(struct parse_state *ps, const char *why)
{
	ps->error = why;
	return -EINVAL;
}

static bool is_atom(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_ATOM && a->len > 0;
}

/* The fetch attributes after MessageNew, kept as the text of a list for the FETCH code
 * to parse when a message arrives (the command's arguments do not outlive it). */
static int parse_fetch_att(struct parse_state *ps, const struct imap_arg *l, char **out)
{
	if (l->n == 0)
		return bad(ps, "MessageNew needs fetch attributes in its list");
	if (l->n > IMAP_NOTIFY_MAX_FETCH) {
		ps->error = "Too many fetch attributes";
		return -E2BIG;
	}
	struct buf b;
	buf_init(&b, SIZE_MAX);
	buf_append(&b, "(", 1);
	for (size_t i = 0; i < l->n; i++) {
		if (!is_atom(&l->list[i])) {
			buf_free(&b);
			return bad(ps, "Fetch attributes must be atoms");
		}
		if (i > 0)
			buf_append(&b, " ", 1);
		buf_append(&b, l->list[i].s, l->list[i].len);
	}
	buf_append(&b, ")", 1);
	*out = xstrndup(b.data, b.len);
	buf_free(&b);
	return 0;
}

static int parse_events(struct parse_state *ps, const struct imap_arg *ev, bool selected,
                        struct imap_notify_group *g)
{
	if (ev->type == IMAP_ARG_ATOM && imap_arg_is(ev, "NONE")) {
		g->events = 0;
		return 0;
	}
	if (ev->type != IMAP_ARG_LIST || ev->n == 0)
		return bad(ps, "Events must be a list or NONE");
	for (size_t i = 0; i < ev->n; i++) {
		const struct imap_arg *e = &ev->list[i];
		if (!is_atom(e))
			return bad(ps, "An event must be an atom");
		unsigned bit = 0;
		for (size_t k = 0; k < sizeof(event_names) / sizeof(event_names[0]); k++)
			if (imap_arg_is(e, event_names[k].name))
				bit = event_names[k].bit;
		if (bit == 0) {
			/* event-ext: well-formed, but not ours (RFC 5465 section 5: BADEVENT). */
			ps->unsupported = true;
			continue;
		}
		if (g->events & bit)
			return bad(ps, "An event is named twice");
		g->events |= bit;
		if (bit == IMAP_NOTIFY_MESSAGE_NEW && i + 1 < ev->n &&
		    ev->list[i + 1].type == IMAP_ARG_LIST) {
			if (!selected)
				return bad(ps,
				           "Fetch attributes only apply to the selected mailbox");
			int rc = parse_fetch_att(ps, &ev->list[i + 1], &g->fetch_att);
			if (rc < 0)
				return rc;
			i++;
		}
		if (!(IMAP_NOTIFY_SUPPORTED & bit))
			ps->unsupported = true;
	}
	unsigned e = g->events;
	bool new = e &IMAP_NOTIFY_MESSAGE_NEW, expunge = e &IMAP_NOTIFY_MESSAGE_EXPUNGE;
	if (new != expunge)
		return bad(ps, "MessageNew and MessageExpunge go together");
	if ((e & (IMAP_NOTIFY_FLAG_CHANGE | IMAP_NOTIFY_ANNOTATION_CHANGE)) && !new)
		return bad(ps, "FlagChange needs MessageNew and MessageExpunge");
	if (selected && (e & ~IMAP_NOTIFY_MESSAGE_EVENTS))
		return bad(ps, "SELECTED takes message events only");
	return 0;
}

static int add_name(struct parse_state *ps, struct imap_notify_group *g, const struct imap_arg *m)
{
	if (!imap_arg_is_astring(m))
		return bad(ps, "Expected a mailbox name");
	if (++ps->names > IMAP_NOTIFY_MAX_NAMES) {
		ps->error = "Too many mailboxes";
		return -E2BIG;
	}
	char *name = NULL;
	/* A name that cannot be a mailbox names none that exists: ignored, as a missing one
	 * is (RFC 5465 section 6). */
	if (imap_mailbox_from_client(m->s, m->len, ps->utf8, &name) < 0)
		return 0;
	g->names = xreallocarray(g->names, g->n_names + 1, sizeof(*g->names));
	g->names[g->n_names++] = name;
	return 0;
}

static int parse_group(struct parse_state *ps, const struct imap_arg *l,
                       struct imap_notify_group *g)
{
	static const struct {
		const char *name;
		enum imap_notify_filter f;
	} filters[] = {
	    {"SELECTED", IMAP_NOTIFY_SELECTED},
	    {"SELECTED-DELAYED", IMAP_NOTIFY_SELECTED_DELAYED},
	    {"INBOXES", IMAP_NOTIFY_INBOXES},
	    {"PERSONAL", IMAP_NOTIFY_PERSONAL},
	    {"SUBSCRIBED", IMAP_NOTIFY_SUBSCRIBED},
	    {"SUBTREE", IMAP_NOTIFY_SUBTREE},
	    {"MAILBOXES", IMAP_NOTIFY_MAILBOXES},
	};
	if (l->type != IMAP_ARG_LIST || l->n < 2 || !is_atom(&l->list[0]))
		return bad(ps, "An event group is (filter events)");
	size_t k = 0;
	while (k < sizeof(filters) / sizeof(filters[0]) &&
	       !imap_arg_is(&l->list[0], filters[k].name))
		k++;
	if (k == sizeof(filters) / sizeof(filters[0]))
		return bad(ps, "Unknown mailbox filter");
	g->filter = filters[k].f;
	size_t next = 1;
	if (g->filter == IMAP_NOTIFY_SUBTREE || g->filter == IMAP_NOTIFY_MAILBOXES) {
		const struct imap_arg *m = &l->list[1];
		if (m->type == IMAP_ARG_LIST) {
			if (m->n == 0)
				return bad(ps, "An empty mailbox list");
			for (size_t i = 0; i < m->n; i++) {
				int rc = add_name(ps, g, &m->list[i]);
				if (rc < 0)
					return rc;
			}
		} else {
			int rc = add_name(ps, g, m);
			if (rc < 0)
				return rc;
		}
		next = 2;
	}
	if (l->n != next + 1)
		return bad(ps, "An event group is (filter events)");
	bool selected =
	    g->filter == IMAP_NOTIFY_SELECTED || g->filter == IMAP_NOTIFY_SELECTED_DELAYED;
	return parse_events(ps, &l->list[next], selected, g);
}

int imap_notify_parse(const struct imap_arg *a, size_t n, bool utf8, struct imap_notify_spec *spec,
                      const char **error_r)
{
	struct parse_state ps = {.utf8 = utf8, .error = "Invalid NOTIFY arguments"};
	memset(spec, 0, sizeof(*spec));
	*error_r = ps.error;
	if (n == 1 && imap_arg_is(&a[0], "NONE") && a[0].type == IMAP_ARG_ATOM) {
		spec->none = true;
		return 0;
	}
	if (n < 2 || a[0].type != IMAP_ARG_ATOM || !imap_arg_is(&a[0], "SET")) {
		*error_r = "Expected NOTIFY NONE or NOTIFY SET";
		return -EINVAL;
	}
	size_t i = 1;
	if (a[1].type == IMAP_ARG_ATOM && imap_arg_is(&a[1], "STATUS")) {
		spec->status = true;
		i = 2;
	}
	if (i >= n) {
		*error_r = "NOTIFY SET needs at least one event group";
		return -EINVAL;
	}
	if (n - i > IMAP_NOTIFY_MAX_GROUPS) {
		*error_r = "Too many event groups";
		return -E2BIG;
	}
	spec->groups = xcalloc(n - i, sizeof(*spec->groups));
	bool have_selected = false;
	for (; i < n; i++) {
		struct imap_notify_group *g = &spec->groups[spec->n_groups++];
		int rc = parse_group(&ps, &a[i], g);
		if (rc < 0) {
			*error_r = ps.error;
			return rc;
		}
		if (g->filter == IMAP_NOTIFY_SELECTED ||
		    g->filter == IMAP_NOTIFY_SELECTED_DELAYED) {
			if (have_selected) {
				*error_r = "Only one SELECTED or SELECTED-DELAYED filter";
				return -EINVAL;
			}
			have_selected = true;
		}
	}
	if (ps.unsupported) {
		*error_r = "Unsupported event";
		return -ENOTSUP;
	}
	return 0;
}

void imap_notify_spec_free(struct imap_notify_spec *spec)
{
	for (size_t i = 0; i < spec->n_groups; i++) {
		for (size_t k = 0; k < spec->groups[i].n_names; k++)
			free(spec->groups[i].names[k]);
		free(spec->groups[i].names);
		free(spec->groups[i].fetch_att);
	}
	free(spec->groups);
	memset(spec, 0, sizeof(*spec));
}

const struct imap_notify_group *imap_notify_selected(const struct imap_notify_spec *spec)
{
	for (size_t i = 0; i < spec->n_groups; i++)
		if (spec->groups[i].filter == IMAP_NOTIFY_SELECTED ||
		    spec->groups[i].filter == IMAP_NOTIFY_SELECTED_DELAYED)
			return &spec->groups[i];
	return NULL;
}

static bool group_has(const struct imap_notify_group *g, const char *name, bool subscribed)
{
	switch (g->filter) {
	case IMAP_NOTIFY_SELECTED:
	case IMAP_NOTIFY_SELECTED_DELAYED:
		return false;
	case IMAP_NOTIFY_PERSONAL:
		return true; /* one namespace, the user's own */
	case IMAP_NOTIFY_INBOXES:
		return strcmp(name, "INBOX") == 0; /* delivery only ever goes to INBOX */
	case IMAP_NOTIFY_SUBSCRIBED:
		return subscribed;
	case IMAP_NOTIFY_SUBTREE:
		for (size_t i = 0; i < g->n_names; i++) {
			size_t l = strlen(g->names[i]);
			if (strncmp(name, g->names[i], l) == 0 &&
			    (name[l] == '\0' || name[l] == '/'))
				return true;
		}
		return false;
	case IMAP_NOTIFY_MAILBOXES:
		for (size_t i = 0; i < g->n_names; i++)
			if (strcmp(name, g->names[i]) == 0)
				return true;
		return false;
	}
	return false;
}

unsigned imap_notify_events_for(const struct imap_notify_spec *spec, const char *name,
                                bool subscribed)
{
	/* The first group that names the mailbox decides, so "(mailboxes X NONE)" before
	 * "(personal ...)" leaves X out. */
	for (size_t i = 0; i < spec->n_groups; i++)
		if (group_has(&spec->groups[i], name, subscribed))
			return spec->groups[i].events;
	return 0;
}
