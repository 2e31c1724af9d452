/*
 * NOTIFY (RFC 5465): which changes a session hears of without asking, for the selected
 * mailbox and for the user's other mailboxes.
 *
 * Built on the in-process notifier (notify.h), no polling and no timers. The selected
 * mailbox keeps its own watcher (imap_snapshot.c); with a SELECTED filter its changes are
 * shown between commands too, through the same incremental sync IDLE uses, and with
 * SELECTED-DELAYED its expunges wait for a command that may show them (the merge asks
 * imap_notify_holds_expunges). Every other mailbox is heard through one watcher of the
 * user: a change marks the mailbox, a mailbox event (published by the session that made
 * it) is queued, and both go out as STATUS and LIST responses when the session may speak,
 * after one read of the user's mailboxes (names, subscriptions and counts in one go).
 *
 * When may it speak: never inside another response. So only while no command runs and
 * none is being assembled, or in IDLE (imap_notify_pump; the session calls it after every
 * tagged reply, the watchers when they hear something). Until then changes add up per
 * mailbox (one STATUS each, however many changes), so what waits is bounded by the
 * number of mailboxes and events; past IMAP_NOTIFY_PENDING_MAX the session gets
 * NOTIFICATIONOVERFLOW and NOTIFY is off (RFC 5465 5.8), rather than holding without end
 * what a client that does not read would never take.
 *
 * Events of the session's own CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE and
 * SETMETADATA are not sent back to it: its tagged OK already said so (RFC 5464 4.4: the
 * unsolicited METADATA is for changes by a third party). Message changes in other mailboxes are
 * reported whoever made them (the store does not say who).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "server/imap/imap_fetch_fmt.h"
#include "server/imap/imap_mutf7.h"
#include "server/imap/imap_notify_parse.h"
#include "server/imap/imap_private.h"
#include "server/services.h"

#define IMAP_NOTIFY_PENDING_MAX 1000

struct pending_event {
	enum notify_mailbox_kind kind;
	char *name, *old_name;
	char *entries; /* METADATA_CHANGED: an entry-list */
};

struct imap_notify {
	struct imap_client *cl;
	struct imap_notify_spec spec;
	struct notify_user_watcher uw;
	int64_t *changed; /* mailboxes with message changes not yet shown, each once */
	size_t n_changed;
	struct pending_event *events;
	size_t n_events;
	/* What the running flush shows: taken from the above when its read started, so a
	 * change that comes during the read waits for the next one (which sees it). */
	int64_t *fl_changed;
	size_t n_fl_changed;
	struct pending_event *fl_events;
	size_t n_fl_events;
	bool flushing;   /* a read of the mailboxes for pending notifications is running */
	bool sync_due;   /* the selected mailbox changed since the last sync NOTIFY started */
	bool overflowed; /* NOTIFICATIONOVERFLOW is due */
	/* MessageNew fetch attributes: what has been fetched of which mailbox. */
	int64_t fetch_mailbox;
	uint32_t fetched_uid;
	uint32_t last_uidnext; /* of the selected mailbox, as last heard */
};

static struct notify *notifier(struct imap_client *cl)
{
	struct services *sv = conn_services(cl->c);
	return sv != NULL ? sv->notify : NULL;
}

static void events_free(struct pending_event *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].old_name);
		free(v[i].entries);
	}
	free(v);
}

/* Forgets what the running flush took. */
static void flight_clear(struct imap_notify *nt)
{
	events_free(nt->fl_events, nt->n_fl_events);
	nt->fl_events = NULL;
	nt->n_fl_events = 0;
	free(nt->fl_changed);
	nt->fl_changed = NULL;
	nt->n_fl_changed = 0;
}

static void pending_clear(struct imap_notify *nt)
{
	events_free(nt->events, nt->n_events);
	nt->events = NULL;
	nt->n_events = 0;
	free(nt->changed);
	nt->changed = NULL;
	nt->n_changed = 0;
	flight_clear(nt);
}

static void nt_free(struct imap_notify *nt)
{
	struct notify *n = notifier(nt->cl);
	if (n != NULL)
		notify_unsubscribe_user(n, &nt->uw);
	pending_clear(nt);
	imap_notify_spec_free(&nt->spec);
	free(nt);
}

void imap_notify_free(struct imap_client *cl)
{
	if (cl->notify == NULL)
		return;
	nt_free(cl->notify);
	cl->notify = NULL;
}

/* Too much waits for a client that does not read: stop collecting, drop it, and say so
 * when the session may speak. */
static void overflow(struct imap_notify *nt)
{
	struct notify *n = notifier(nt->cl);
	if (n != NULL)
		notify_unsubscribe_user(n, &nt->uw);
	pending_clear(nt);
	nt->overflowed = true;
	log_event(LOGL_INFO, "session=%s proto=imap event=notify_overflow", conn_id(nt->cl->c));
}

static bool full(const struct imap_notify *nt)
{
	return nt->n_changed + nt->n_events + nt->n_fl_changed + nt->n_fl_events >=
	       IMAP_NOTIFY_PENDING_MAX;
}

static void on_user_change(struct notify_user_watcher *w, const struct store_change *ch)
{
	struct imap_notify *nt = w->ctx;
	struct imap_client *cl = nt->cl;
	/* The selected mailbox is the snapshot's business (SELECTED filter or none). */
	if (cl->state == IMAP_STATE_SELECTED && ch->mailbox_id == cl->mailbox_id)
		return;
	for (size_t i = 0; i < nt->n_changed; i++)
		if (nt->changed[i] == ch->mailbox_id)
			return; /* coalesced: one STATUS shows them all */
	if (full(nt)) {
		overflow(nt);
		return;
	}
	nt->changed = xreallocarray(nt->changed, nt->n_changed + 1, sizeof(*nt->changed));
	nt->changed[nt->n_changed++] = ch->mailbox_id;
	imap_notify_pump(cl);
}

static void on_mailbox_event(struct notify_user_watcher *w, const struct notify_mailbox_event *ev)
{
	struct imap_notify *nt = w->ctx;
	if (ev->origin == nt->cl)
		return;
	for (size_t i = 0; i < nt->n_events; i++) {
		struct pending_event *p = &nt->events[i];
		if (p->kind == ev->kind && strcmp(p->name, ev->name) == 0 &&
		    (p->old_name == NULL) == (ev->old_name == NULL) &&
		    (p->old_name == NULL || strcmp(p->old_name, ev->old_name) == 0) &&
		    (p->entries == NULL) == (ev->entries == NULL) &&
		    (p->entries == NULL || strcmp(p->entries, ev->entries) == 0))
			return;
	}
	if (full(nt)) {
		overflow(nt);
		return;
	}
	nt->events = xreallocarray(nt->events, nt->n_events + 1, sizeof(*nt->events));
	struct pending_event *p = &nt->events[nt->n_events++];
	p->kind = ev->kind;
	p->name = xstrdup(ev->name);
	p->old_name = ev->old_name != NULL ? xstrdup(ev->old_name) : NULL;
	p->entries = ev->entries != NULL ? xstrdup(ev->entries) : NULL;
	imap_notify_pump(nt->cl);
}

void imap_notify_mailbox_event(struct imap_client *cl, int kind, const char *name,
                               const char *old_name)
{
	struct notify *n = notifier(cl);
	if (n == NULL)
		return;
	struct notify_mailbox_event ev = {
	    .user_id = cl->user_id,
	    .kind = (enum notify_mailbox_kind)kind,
	    .name = name,
	    .old_name = old_name,
	    .origin = cl,
	};
	notify_publish_mailbox(n, &ev);
}

void imap_notify_metadata_event(struct imap_client *cl, const char *mailbox, const char *entries)
{
	struct notify *n = notifier(cl);
	if (n == NULL)
		return;
	struct notify_mailbox_event ev = {
	    .user_id = cl->user_id,
	    .kind = NOTIFY_METADATA_CHANGED,
	    .name = mailbox,
	    .entries = entries,
	    .origin = cl,
	};
	notify_publish_mailbox(n, &ev);
}

/* ---- the selected mailbox ---- */

static const struct imap_notify_group *selected_group(const struct imap_client *cl)
{
	const struct imap_notify *nt = cl->notify;
	if (nt == NULL || nt->overflowed)
		return NULL;
	const struct imap_notify_group *g = imap_notify_selected(&nt->spec);
	return g != NULL && (g->events & IMAP_NOTIFY_MESSAGE_NEW) ? g : NULL;
}

bool imap_notify_holds_expunges(const struct imap_client *cl)
{
	const struct imap_notify_group *g = selected_group(cl);
	return g != NULL && g->filter == IMAP_NOTIFY_SELECTED_DELAYED && !cl->busy;
}

bool imap_notify_selected_change(struct imap_client *cl, const struct store_change *ch)
{
	struct imap_notify *nt = cl->notify;
	if (nt == NULL)
		return false;
	/* With NOTIFY every sync goes through imap_notify_pump, so none starts while it
	 * reads or writes something else. */
	const struct imap_notify_group *g = selected_group(cl);
	bool counts = ch->exists != cl->n_msgs || ch->uidnext != nt->last_uidnext;
	nt->last_uidnext = ch->uidnext;
	if (!cl->changed)
		return true;
	nt->sync_due = true;
	/* Without FlagChange a change of flags alone waits for the next command (or IDLE),
	 * as it would without NOTIFY; without a SELECTED filter everything does. */
	if (cl->idling || (g != NULL && ((g->events & IMAP_NOTIFY_FLAG_CHANGE) || counts)))
		imap_notify_pump(cl);
	return true;
}

/* ---- sending ---- */

static bool may_speak(const struct imap_client *cl)
{
	/* A running command keeps its own text in the reader; an idle session's reader
	 * holds a command being assembled (its literal may be on its way). */
	bool between = cl->busy ? cl->idling : cl->reader.cmd.len == 0;
	return between && conn_is_open(cl->c) && cl->state != IMAP_STATE_LOGOUT &&
	       !cl->tls_pending && !cl->auth_continue && cl->discard == 0 && !cl->skip_command &&
	       cl->spool_left == 0 && !cl->syncing && cl->op == NULL;
}

static void pump_drained(void *arg)
{
	imap_notify_pump(arg);
}

void imap_notify_resume(struct imap_client *cl)
{
	/* Resuming may run buffered commands at once, LOGOUT among them: held, the session
	 * outlives that, and conn_release says whether it is still there. */
	conn_hold(cl->c);
	conn_resume(cl->c);
	if (conn_release(cl->c))
		imap_notify_pump(cl);
}

static void after_async(struct imap_client *cl)
{
	imap_notify_resume(cl);
}

/* Items of a STATUS notification: what the events change (RFC 5465 5.1-5.3). A flag
 * change that leaves UNSEEN as it was shows only in HIGHESTMODSEQ, which RFC 5465 asks
 * for from a server that has CONDSTORE. */
static unsigned status_items(unsigned events)
{
	unsigned items = IMAP_STATUS_MESSAGES | IMAP_STATUS_UIDNEXT | IMAP_STATUS_UIDVALIDITY;
	if (events & IMAP_NOTIFY_FLAG_CHANGE)
		items |= IMAP_STATUS_UNSEEN | IMAP_STATUS_HIGHESTMODSEQ;
	return items;
}

static const struct store_mailbox *find_id(const struct store_mailboxes *res, int64_t id)
{
	for (size_t i = 0; i < res->n; i++)
		if (res->v[i].id == id)
			return &res->v[i];
	return NULL;
}

static const struct store_mailbox *find_name(const struct store_mailboxes *res, const char *name)
{
	for (size_t i = 0; i < res->n; i++)
		if (strcmp(res->v[i].name, name) == 0)
			return &res->v[i];
	return NULL;
}

static bool subscribed(const struct store_mailboxes *res, const char *name)
{
	const struct store_mailbox *mb = find_name(res, name);
	if (mb != NULL)
		return mb->subscribed;
	for (size_t i = 0; i < res->n_missing; i++)
		if (strcmp(res->missing[i], name) == 0)
			return true;
	return false;
}

static bool has_children(const struct store_mailboxes *res, const char *name)
{
	size_t l = strlen(name);
	for (size_t i = 0; i < res->n; i++)
		if (strncmp(res->v[i].name, name, l) == 0 && res->v[i].name[l] == '/')
			return true;
	return false;
}

static bool is_selected(const struct imap_client *cl, const struct store_mailbox *mb)
{
	return cl->state == IMAP_STATE_SELECTED && mb->id == cl->mailbox_id;
}

/* STATUS for the mailboxes whose messages the spec watches (all of them, or those in
 * ids[0..n) when ids is not NULL), never the selected one. */
static void fmt_statuses(struct imap_client *cl, const struct imap_notify_spec *spec,
                         const struct store_mailboxes *res, const int64_t *ids, size_t n,
                         struct buf *o)
{
	for (size_t i = 0; i < (ids != NULL ? n : res->n); i++) {
		const struct store_mailbox *mb = ids != NULL ? find_id(res, ids[i]) : &res->v[i];
		if (mb == NULL || is_selected(cl, mb))
			continue; /* deleted since: its MailboxName event tells */
		unsigned ev = imap_notify_events_for(spec, mb->name, mb->subscribed);
		if (ev & IMAP_NOTIFY_MESSAGE_EVENTS)
			imap_fmt_status(cl, o, mb, status_items(ev));
	}
}

static void fmt_list(struct imap_client *cl, struct buf *o, const char *attrs, const char *name,
                     const char *old_name)
{
	buf_printf(o, "* LIST (%s) \"/\" ", attrs);
	char *c = imap_mailbox_to_client(name, cl->utf8);
	imap_fmt_cstring(o, c, true);
	free(c);
	if (old_name != NULL) {
		/* RFC 5465 5.4: the old name as LIST-EXTENDED data. */
		buf_append_str(o, " (\"OLDNAME\" (");
		c = imap_mailbox_to_client(old_name, cl->utf8);
		imap_fmt_cstring(o, c, true);
		free(c);
		buf_append_str(o, "))");
	}
	buf_append_str(o, "\r\n");
}

/* RFC 5464 4.4.2 through RFC 5465 5.9 and 5.10: "* METADATA mailbox entry-list", names
 * only. Server entries for a ServerMetadataChange in any group; a mailbox's for a
 * MailboxMetadataChange of the group that names it (never one a SELECTED filter covers:
 * that filter takes message events only). */
static void fmt_metadata(struct imap_client *cl, const struct imap_notify_spec *spec,
                         const struct store_mailboxes *res, const struct pending_event *p,
                         struct buf *o)
{
	if (p->name[0] == '\0') {
		bool on = false;
		for (size_t i = 0; i < spec->n_groups; i++)
			on = on || (spec->groups[i].events & IMAP_NOTIFY_SERVER_METADATA_CHANGE);
		if (on)
			buf_printf(o, "* METADATA \"\" %s\r\n", p->entries);
		return;
	}
	const struct store_mailbox *mb = find_name(res, p->name);
	if (mb == NULL || (is_selected(cl, mb) && imap_notify_selected(spec) != NULL))
		return; /* deleted since, or the SELECTED filter's */
	if (!(imap_notify_events_for(spec, p->name, mb->subscribed) &
	      IMAP_NOTIFY_MAILBOX_METADATA_CHANGE))
		return;
	buf_append_str(o, "* METADATA ");
	char *c = imap_mailbox_to_client(p->name, cl->utf8);
	imap_fmt_cstring(o, c, true);
	free(c);
	buf_printf(o, " %s\r\n", p->entries);
}

static void fmt_event(struct imap_client *cl, const struct imap_notify_spec *spec,
                      const struct store_mailboxes *res, const struct pending_event *p,
                      struct buf *o)
{
	if (p->kind == NOTIFY_METADATA_CHANGED) {
		fmt_metadata(cl, spec, res, p, o);
		return;
	}
	bool sub = subscribed(res, p->name);
	unsigned ev = imap_notify_events_for(spec, p->name, sub);
	if (p->kind == NOTIFY_MAILBOX_SUBSCRIBED || p->kind == NOTIFY_MAILBOX_UNSUBSCRIBED) {
		/* Matched as subscribed: it was, before or after. */
		ev = imap_notify_events_for(spec, p->name, true);
		if (ev & IMAP_NOTIFY_SUBSCRIPTION_CHANGE)
			fmt_list(cl, o, p->kind == NOTIFY_MAILBOX_SUBSCRIBED ? "\\Subscribed" : "",
			         p->name, NULL);
		return;
	}
	if (p->old_name != NULL)
		ev |= imap_notify_events_for(spec, p->old_name, sub);
	if (!(ev & IMAP_NOTIFY_MAILBOX_NAME))
		return;
	if (p->kind == NOTIFY_MAILBOX_DELETED || find_name(res, p->name) == NULL) {
		fmt_list(cl, o, "\\NonExistent", p->name, NULL);
		return;
	}
	char attrs[64];
	snprintf(attrs, sizeof(attrs), "%s%s",
	         has_children(res, p->name) ? "\\HasChildren" : "\\HasNoChildren",
	         sub ? " \\Subscribed" : "");
	fmt_list(cl, o, attrs, p->name, p->old_name);
}

static void flush_got(void *ctx, int rc, struct store_mailboxes *res)
{
	struct imap_client *cl = ctx;
	if (!imap_async_end(cl))
		return;
	struct imap_notify *nt = cl->notify;
	nt->flushing = false;
	if (rc == 0 && !nt->overflowed) {
		struct buf o;
		buf_init(&o, SIZE_MAX);
		fmt_statuses(cl, &nt->spec, res, nt->fl_changed, nt->n_fl_changed, &o);
		for (size_t i = 0; i < nt->n_fl_events; i++)
			fmt_event(cl, &nt->spec, res, &nt->fl_events[i], &o);
		conn_write(cl->c, o.data, o.len);
		buf_free(&o);
	}
	flight_clear(nt);
	after_async(cl);
}

/* The new messages of the selected mailbox get the MessageNew fetch attributes once. */
static bool fetch_new(struct imap_client *cl, struct imap_notify *nt)
{
	const struct imap_notify_group *g = selected_group(cl);
	if (cl->state != IMAP_STATE_SELECTED)
		return false;
	uint32_t last = cl->n_msgs > 0 ? cl->msgs[cl->n_msgs - 1].uid : 0;
	if (nt->fetch_mailbox != cl->mailbox_id) {
		nt->fetch_mailbox = cl->mailbox_id; /* newly selected: nothing is new yet */
		nt->fetched_uid = last;
		return false;
	}
	if (g == NULL || g->fetch_att == NULL || last <= nt->fetched_uid) {
		if (last > nt->fetched_uid)
			nt->fetched_uid = last;
		return false;
	}
	uint32_t *seqs = xcalloc(cl->n_msgs, sizeof(*seqs));
	size_t n = 0;
	for (size_t i = 0; i < cl->n_msgs; i++)
		if (cl->msgs[i].uid > nt->fetched_uid)
			seqs[n++] = (uint32_t)i + 1;
	nt->fetched_uid = last;
	imap_fetch_unsolicited(cl, g->fetch_att, seqs, n, after_async);
	free(seqs);
	return true;
}

void imap_notify_pump(struct imap_client *cl)
{
	struct imap_notify *nt = cl->notify;
	if (nt == NULL || nt->flushing || !may_speak(cl))
		return;
	if (nt->overflowed) {
		conn_write_str(cl->c, "* OK [NOTIFICATIONOVERFLOW] Too many notifications waited; "
		                      "NOTIFY is off\r\n");
		imap_notify_free(cl);
		return;
	}
	if (conn_pending_output(cl->c) > IMAP_OUT_LOW) {
		/* The client has not read what it has: the changes wait, coalesced. */
		conn_when_drained(cl->c, IMAP_OUT_LOW, pump_drained, cl);
		return;
	}
	if (cl->state == IMAP_STATE_SELECTED && cl->changed && nt->sync_due &&
	    (cl->idling || selected_group(cl) != NULL)) {
		nt->sync_due = false;
		imap_sync_then(cl, after_async);
		return;
	}
	if (fetch_new(cl, nt))
		return;
	if (nt->n_changed == 0 && nt->n_events == 0)
		return;
	struct store *s = imap_store(cl);
	nt->flushing = true;
	nt->fl_changed = nt->changed;
	nt->n_fl_changed = nt->n_changed;
	nt->fl_events = nt->events;
	nt->n_fl_events = nt->n_events;
	nt->changed = NULL;
	nt->n_changed = 0;
	nt->events = NULL;
	nt->n_events = 0;
	imap_async_begin(cl);
	if (s != NULL && store_mailbox_list(s, cl->user_id, flush_got, cl) == 0)
		return;
	conn_release(cl->c);
	nt->flushing = false;
	pending_clear(nt);
	conn_resume(cl->c);
}

/* ---- the command ---- */

struct notify_cmd {
	struct imap_notify *nt; /* the new setting, until it takes over */
};

static void notify_cmd_free(void *p)
{
	struct notify_cmd *op = p;
	if (op->nt != NULL)
		nt_free(op->nt);
	free(op);
}

/* The new setting replaces the old: pending notifications of the old one go with it. */
static void take_over(struct imap_client *cl, struct imap_notify *nt)
{
	imap_notify_free(cl);
	cl->notify = nt;
	nt->fetch_mailbox = cl->state == IMAP_STATE_SELECTED ? cl->mailbox_id : 0;
	nt->fetched_uid = cl->n_msgs > 0 ? cl->msgs[cl->n_msgs - 1].uid : 0;
	nt->sync_due = cl->changed; /* what came before NOTIFY goes out with the first pump */
	struct notify *n = notifier(cl);
	if (n != NULL)
		notify_subscribe_user(n, &nt->uw);
}

static void status_listed(void *ctx, int rc, struct store_mailboxes *res)
{
	struct imap_client *cl = ctx;
	if (!imap_async_end(cl))
		return;
	struct notify_cmd *op = cl->op;
	struct imap_notify *nt = op->nt;
	op->nt = NULL;
	if (rc < 0) {
		nt_free(nt);
		imap_done(cl, "NO", "[SERVERBUG] Cannot read the mailboxes");
		return;
	}
	struct buf o;
	buf_init(&o, SIZE_MAX);
	fmt_statuses(cl, &nt->spec, res, NULL, 0, &o);
	conn_write(cl->c, o.data, o.len);
	buf_free(&o);
	take_over(cl, nt);
	imap_done(cl, "OK", "NOTIFY completed");
}

void imap_cmd_notify(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	struct imap_notify_spec spec;
	const char *err;
	int rc = imap_notify_parse(a, n, cl->utf8, &spec, &err);
	if (rc == -ENOTSUP) {
		imap_notify_spec_free(&spec);
		imap_done(cl, "NO", "[BADEVENT " IMAP_NOTIFY_BADEVENT_LIST "] Unsupported event");
		return;
	}
	if (rc == -E2BIG) {
		imap_notify_spec_free(&spec);
		imap_donef(cl, "NO", "[LIMIT] %s", err);
		return;
	}
	if (rc < 0) {
		imap_notify_spec_free(&spec);
		imap_done(cl, "BAD", err);
		return;
	}
	const struct imap_notify_group *sel = imap_notify_selected(&spec);
	if (sel != NULL && sel->fetch_att != NULL && imap_fetch_items_check(sel->fetch_att) < 0) {
		imap_notify_spec_free(&spec);
		imap_done(cl, "BAD", "Invalid fetch attributes for MessageNew");
		return;
	}
	if (spec.none) {
		imap_notify_spec_free(&spec);
		imap_notify_free(cl);
		imap_done(cl, "OK", "NOTIFY NONE completed");
		return;
	}
	struct imap_notify *nt = xcalloc(1, sizeof(*nt));
	nt->cl = cl;
	nt->spec = spec;
	nt->uw.user_id = cl->user_id;
	nt->uw.change_fn = on_user_change;
	nt->uw.mailbox_fn = on_mailbox_event;
	nt->uw.ctx = nt;
	nt->last_uidnext = cl->uidnext;
	if (!spec.status) {
		take_over(cl, nt);
		imap_done(cl, "OK", "NOTIFY completed");
		return;
	}
	/* RFC 5465 3: STATUS for every watched mailbox but the selected one, before the OK. */
	struct notify_cmd *op = xcalloc(1, sizeof(*op));
	op->nt = nt;
	cl->op = op;
	cl->op_free = notify_cmd_free;
	imap_async_begin(cl);
	if (store_mailbox_list(imap_store(cl), cl->user_id, status_listed, cl) == 0)
		return;
	conn_release(cl->c);
	op->nt = NULL;
	nt_free(nt);
	imap_done(cl, "NO", "[SERVERBUG] Cannot read the mailboxes");
}
