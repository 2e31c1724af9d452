#ifndef SEALMAIL_IMAP_PRIVATE_H
#define SEALMAIL_IMAP_PRIVATE_H
/*
 * The IMAP session's shared state (module-internal). struct imap_client is one session: it
 * assembles commands (imap_parser), dispatches them through the shared command table
 * (cmdtab.h; state, login and TLS checks happen once, in imap_session.c), and keeps the
 * selected mailbox's message snapshot in sequence order.
 *
 * Asynchronous store calls follow conn.h: imap_async_begin() pauses and holds the conn;
 * every completion starts with imap_async_end() and returns when it says the conn is gone.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "server/cmdtab.h"
#include "server/conn.h"
#include "server/imap/imap_parser.h"
#include "server/notify.h"
#include "storage/store.h"

enum imap_state {
	IMAP_STATE_NOAUTH = 1 << 0,
	IMAP_STATE_AUTH = 1 << 1,
	IMAP_STATE_SELECTED = 1 << 2,
	IMAP_STATE_LOGOUT = 1 << 3,
};

/* IMAP's own command flags, beside cmdtab's (CMD_SECRET, CMD_UID, CMD_BIG_LITERAL...). */
enum imap_cmd_flag {
	IMAP_CMD_NO_EXPUNGE = CMD_PROTO_FIRST, /* no EXPUNGE responses before its tagged reply */
	/* SETMETADATA: takes a literal8 value, and a literal over limits.metadata_size is
	 * refused before it is sent (imap_metadata_literal_refused). */
	IMAP_CMD_METADATA = CMD_PROTO_FIRST << 1,
};

/* The SASL mechanisms of AUTHENTICATE. */
enum imap_sasl { IMAP_SASL_PLAIN, IMAP_SASL_EXTERNAL, IMAP_SASL_SCRAM };

/* The longest AUTHENTICATE response line (a PLAIN response of three AUTH_FIELD_MAX fields
 * in base64, with room to spare). */
#define IMAP_SASL_LINE_MAX 4096

struct imap_client;

/* One entry of the command table (imap_session.c): the shared dispatcher's entry, whose
 * states are enum imap_state bits, and the handler, which takes the parsed arguments after
 * the command name. */
struct imap_command {
	struct cmdtab_entry cmd; /* first: cmdtab_find_in() looks entries up through it */
	void (*fn)(struct imap_client *cl, const struct imap_arg *args, size_t n);
};

struct imap_msg {
	uint32_t uid;
	unsigned flags;
	char *keywords; /* NULL when none */
	uint64_t modseq, size;
	int64_t internal_date;
};

/* An APPEND literal over IMAP_SPOOL_MIN goes to a spool file while it arrives; its
 * argument is an empty literal at offset in the command buffer (imap_reader_divert). */
#define IMAP_SPOOL_MIN   (256u * 1024)
#define IMAP_SPOOL_PAUSE (1024u * 1024) /* stop reading while this much waits for the disk */

struct spool_file;

struct imap_spooled {
	size_t offset;
	uint64_t size;
	struct spool_file *f;
};

struct imap_snap;

struct imap_client {
	struct conn *c;
	enum imap_state state;
	struct imap_reader reader;
	struct imap_args args;
	char *tag;        /* of the running command */
	char *reply;      /* its tagged reply, while pending updates go out first */
	bool uid;         /* the running command is a UID command */
	bool busy;        /* a command is running (async) */
	bool tls_pending; /* STARTTLS answered: ignore input until the handshake ends */
	unsigned cmd_flags;
	unsigned preauth_commands, errors;
	/* AUTHENTICATE waiting for the client's response line, and for which mechanism (a
	 * SCRAM exchange in progress is the command's op). */
	bool auth_continue;
	enum imap_sasl auth_mech;
	bool scram_plus; /* SCRAM-SHA-256-PLUS */
	/* APPEND literal target etc. are in the parsed args (the whole command is buffered). */
	int64_t user_id;
	char *user;
	bool utf8, condstore, qresync, rev2;
	/* Selected mailbox. */
	int64_t mailbox_id;
	char *mailbox_name;
	bool readonly;
	uint32_t uidvalidity, uidnext;
	uint64_t highest_modseq;
	/* The snapshot, shared with other sessions that see the same messages (see
	 * imap_snapshot.c). msgs and n_msgs are read-only views of it: change a message only
	 * through imap_snapshot_mut / imap_snapshot_remove. */
	struct imap_snap *snap;
	const struct imap_msg *msgs;
	size_t n_msgs;
	struct notify_watcher watcher;
	bool changed; /* the store reported a change not yet shown */
	bool syncing;
	/* IDLE */
	bool idling;
	char *idle_tag;
	/* The running command's own state (one at a time). */
	void *op;
	void (*op_free)(void *op);
	uint64_t discard;  /* literal bytes of a refused command still to skip */
	bool skip_command; /* the lines after them belong to that command too */
	/* Spooled APPEND literals of the command being assembled or run. */
	struct imap_spooled *spooled;
	size_t n_spooled;
	uint64_t spool_left; /* bytes of the last one still to come */
	bool spool_paused;   /* input paused until the spool catches up */
	/* SORT and THREAD keys of the selected mailbox (imap_cmd_sort.c), or NULL. */
	struct imap_sortcache *sortcache;
	/* SEARCHRES ($) */
	uint32_t *saved;
	size_t n_saved;
	/* The keywords the session's last "* FLAGS" named, sorted (owned): a keyword that is
	 * not among them is announced before any FETCH shows it (RFC 3501 7.2.6). */
	char **flag_kw;
	size_t n_flag_kw;
	/* The UIDs of the selected mailbox that are \Recent in this session, sorted
	 * (imap_recent.c). */
	uint32_t *recent;
	size_t n_recent;
	/* NOTIFY (imap_cmd_notify.c), NULL when not set. */
	struct imap_notify *notify;
	/* Results kept up to date (imap_context.c), NULL when none. */
	struct imap_contexts *contexts;
};

/* A command that writes more than a reply (FETCH) produces its next piece only once the
 * client has taken its output down to this much. */
#define IMAP_OUT_LOW (256u * 1024)

/* imap_session.c */
struct store *imap_store(struct imap_client *cl);
/* Back-pressure for a long command: when more than IMAP_OUT_LOW of output waits for the
 * client, pauses input and calls fn(arg) once the client has read it down (never, when the
 * connection closes first: arg is then freed with the command), and returns true: the
 * caller returns and fn goes on. false: go on now, fn is not called. */
bool imap_wait_drain(struct imap_client *cl, void (*fn)(void *arg), void *arg);
void imap_async_begin(struct imap_client *cl);
bool imap_async_end(struct imap_client *cl); /* false: the connection is gone, return */
/* Ends the running command with "tag OK|NO|BAD text" (after pending updates when
 * allowed), resumes input and frees the command's op. */
void imap_done(struct imap_client *cl, const char *status, const char *text);
/* As imap_done, but the tagged reply goes out now, never after pending updates (COMPRESS:
 * its OK is the last uncompressed byte). */
void imap_done_now(struct imap_client *cl, const char *status, const char *text);
void imap_donef(struct imap_client *cl, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void imap_set_state(struct imap_client *cl, enum imap_state st);
/* The spooled literal whose (empty) argument view starts at s, or NULL. */
const struct imap_spooled *imap_spooled_at(const struct imap_client *cl, const char *s);
/* What the store said of cl->mailbox_id when a snapshot was read whole: its messages are
 * the mailbox exactly as it was in this state. */
struct imap_snap_key {
	uint32_t uidvalidity, uidnext;
	uint64_t modseq; /* HIGHESTMODSEQ */
	size_t messages;
};
/* Replaces the snapshot of cl->mailbox_id; msgs[].keywords are moved in. key (borrowed)
 * is NULL when msgs are not known to be the mailbox in one state (then it is not reused
 * by imap_snapshot_reuse). */
void imap_snapshot_set(struct imap_client *cl, struct store_msg *msgs, size_t n,
                       const struct imap_snap_key *key);
/* Replaces the snapshot of cl->mailbox_id with a held or recently released one read in
 * exactly the state key (borrowed) describes: true. false: none, cl has no snapshot. */
bool imap_snapshot_reuse(struct imap_client *cl, const struct imap_snap_key *key);
void imap_snapshot_clear(struct imap_client *cl);
/* Sequence number of the first message without \Seen, 0 when none (remembered with the
 * snapshot until it changes). */
uint32_t imap_snapshot_first_unseen(struct imap_client *cl);
/* The cache of released snapshots: how many it holds, emptying it (tests, shutdown), and
 * the clock of its time to live (NULL: CLOCK_MONOTONIC, milliseconds; tests). */
size_t imap_snapshot_cached(void);
void imap_snapshot_cache_flush(void);
void imap_snapshot_cache_clock(uint64_t (*now_ms)(void));
/* Message seq (1-based, must exist) for changing: the snapshot becomes this session's own
 * copy first if others share it. The pointer is valid until the next snapshot call. */
struct imap_msg *imap_snapshot_mut(struct imap_client *cl, uint32_t seq);
/* Whether uid is in v[0..n), sorted ascending (binary search). */
bool imap_uid_in(const uint32_t *v, size_t n, uint32_t uid);
/* Removes message seq (1-based, must exist) from this session's snapshot. */
void imap_snapshot_remove(struct imap_client *cl, uint32_t seq);
/* Sequence number (1-based) of uid, or 0. */
uint32_t imap_seq_of(const struct imap_client *cl, uint32_t uid);
/* Turns a sequence or UID set argument into store UID ranges (sequence numbers are
 * mapped through the snapshot). 0, -EINVAL (not a set) or -ERANGE (a sequence number
 * above the message count, or "*" in an empty mailbox); the caller answers. */
int imap_set_to_ranges(struct imap_client *cl, const struct imap_arg *a, bool uid,
                       struct store_uid_range **ranges_r, size_t *n_r);
/* A snapshot keyword string: NULL for none, else a copy. */
char *imap_keywords_dup(const char *kw);
/* "(\\Seen \\Answered ... [\\Recent] keywords)" */
void imap_fmt_flags(struct buf *o, unsigned flags, const char *keywords, bool recent);
/* Parses a flag list: 0 or -EINVAL; keywords_r is a new space-separated string or NULL. */
int imap_parse_flags(const struct imap_arg *a, unsigned *flags_r, char **keywords_r);
/* A mailbox argument as a store name, or NULL after answering NO/BAD. */
char *imap_mailbox_arg(struct imap_client *cl, const struct imap_arg *a);
void imap_write_capability(struct imap_client *cl, struct buf *o);
void imap_sync_then(struct imap_client *cl, void (*then)(struct imap_client *cl));
/* Adds the keywords of kw (space separated, NULL for none) that the session's last FLAGS
 * did not name; true when any was new: then imap_fmt_flags_announce must go out before
 * any FETCH that shows them. */
bool imap_keywords_learn(struct imap_client *cl, const char *kw);
/* Appends "* FLAGS (...)" and "* OK [PERMANENTFLAGS (...)]" naming the system flags and
 * every keyword the session has learned. */
void imap_fmt_flags_announce(const struct imap_client *cl, struct buf *o);
/* Forgets the learned keywords (the mailbox is left, or selected again). */
void imap_keywords_forget(struct imap_client *cl);
/* The highest modseq the session can vouch for: its snapshot's HIGHESTMODSEQ, or higher
 * where its own changes went past it. */
uint64_t imap_highest_modseq(const struct imap_client *cl);
/* A CONDSTORE enabling command (RFC 7162 3.1) is running: CONDSTORE is on from now, and
 * the first one with a mailbox selected gets "* OK [HIGHESTMODSEQ n]" first. */
void imap_condstore_enable(struct imap_client *cl);
void imap_watch(struct imap_client *cl, bool on);

/* imap_recent.c: \Recent in this session. */
bool imap_recent_is(const struct imap_client *cl, uint32_t uid);
/* How many messages of the snapshot are \Recent here. */
uint32_t imap_recent_count(const struct imap_client *cl);
/* Adds uids (ascending, each above every UID held) to the session's recent ones. */
void imap_recent_add(struct imap_client *cl, const uint32_t *uids, size_t n);
void imap_recent_clear(struct imap_client *cl);
/* false for an IMAP4rev2 session, which has no \Recent. */
bool imap_recent_shown(const struct imap_client *cl);
/* Takes the untaken messages below UID upto of mailbox_id (store_recent_take), adds them,
 * then calls then(arg) once, also when nothing is taken or the store fails; when the
 * connection is gone by then, gone(arg) instead (if not NULL). */
void imap_recent_take(struct imap_client *cl, int64_t mailbox_id, uint32_t upto,
                      void (*then)(void *arg), void (*gone)(void *arg), void *arg);
/* "* n RECENT" (nothing for IMAP4rev2). */
void imap_recent_fmt(const struct imap_client *cl, struct buf *o);

/* Command handlers, one file per command or family, named after it. */
/* imap_cmd_auth.c */
void imap_cmd_capability(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_noop(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_check(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_logout(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_login(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_authenticate(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_authenticate_response(struct imap_client *cl, const char *line, size_t len);
/* The response line was longer than IMAP_SASL_LINE_MAX: ends AUTHENTICATE with BAD. */
void imap_authenticate_too_long(struct imap_client *cl);
/* imap_cmd_compress.c */
void imap_cmd_compress(struct imap_client *cl, const struct imap_arg *a, size_t n);
/* imap_cmd_enable.c, imap_cmd_id.c, imap_cmd_idle.c */
void imap_cmd_enable(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_id(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_idle(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_idle_line(struct imap_client *cl, const char *line, size_t len);

/* imap_cmd_mailbox.c */
void imap_cmd_namespace(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_list(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_lsub(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_create(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_delete(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_rename(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_subscribe(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_unsubscribe(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_status(struct imap_client *cl, const struct imap_arg *a, size_t n);
/* The response code and text of a tagged NO for a store error on a mailbox. */
const char *imap_mailbox_error(int rc);
/* STATUS items (imap_fmt_status), as STATUS and LIST-STATUS take them. */
enum imap_status_item {
	IMAP_STATUS_MESSAGES = 1,
	IMAP_STATUS_UIDNEXT = 2,
	IMAP_STATUS_UIDVALIDITY = 4,
	IMAP_STATUS_UNSEEN = 8,
	IMAP_STATUS_RECENT = 16,
	IMAP_STATUS_HIGHESTMODSEQ = 32,
	IMAP_STATUS_SIZE = 64,
	IMAP_STATUS_DELETED = 128,
	IMAP_STATUS_DELETED_STORAGE = 256,
	IMAP_STATUS_MAILBOXID = 512,
};
/* Appends "* STATUS name (items)" for mb. */
void imap_fmt_status(struct imap_client *cl, struct buf *o, const struct store_mailbox *mb,
                     unsigned items);
/* imap_cmd_notify.c: NOTIFY (RFC 5465). */
struct imap_notify;
void imap_cmd_notify(struct imap_client *cl, const struct imap_arg *a, size_t n);
/* Sends what NOTIFY has pending (and the selected mailbox's changes it asks for) when the
 * session may speak: no command running (or IDLE), no command being assembled. Safe to
 * call at any time; does nothing otherwise. */
void imap_notify_pump(struct imap_client *cl);
/* conn_resume, then imap_notify_pump unless the connection closed meanwhile. */
void imap_notify_resume(struct imap_client *cl);
/* The selected mailbox watcher saw a change: true when NOTIFY takes care of it (a
 * SELECTED filter), false when the session behaves as without NOTIFY. */
bool imap_notify_selected_change(struct imap_client *cl, const struct store_change *ch);
/* SELECTED-DELAYED, between commands: expunges wait for a command that may show them. */
bool imap_notify_holds_expunges(const struct imap_client *cl);
/* Publishes a mailbox event of this session's successful command to the user's other
 * sessions. kind is an enum notify_mailbox_kind; old_name for renames, else NULL. */
void imap_notify_mailbox_event(struct imap_client *cl, int kind, const char *name,
                               const char *old_name);
/* Publishes a SETMETADATA of this session to the user's other sessions: the mailbox's
 * store name ("" for the server) and the entries set or removed, formatted as RFC 5464's
 * entry-list. */
void imap_notify_metadata_event(struct imap_client *cl, const char *mailbox, const char *entries);
void imap_notify_free(struct imap_client *cl);
/* imap_context.c: CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 section 4). */
struct imap_contexts;
struct imap_search;
struct imap_sort_crit;
void imap_cmd_cancelupdate(struct imap_client *cl, const struct imap_arg *a, size_t n);
/* The running command's tag names a live result already (RFC 5267 4.3: BAD). */
bool imap_context_tag_used(const struct imap_client *cl);
/* The running UID SEARCH or UID SORT asked for UPDATE (ret, its IMAP_ES_* options): keeps
 * its result uids[0..n) (UIDs in the result's order) up to date from now on, taking the
 * program's tree out of *search (left zeroed), with the sort criteria crit[0..n_crit) (none
 * for SEARCH); or, when it cannot, leaves *search alone and appends "* NO [NOUPDATE
 * "tag"] why" to o (the command's other options are still answered). */
void imap_context_start(struct imap_client *cl, struct buf *o, struct imap_search *search,
                        unsigned ret, const struct imap_sort_crit *crit, size_t n_crit,
                        const uint32_t *uids, size_t n);
/* Evaluates the header keys (HEADER, FROM ... SUBJECT, SENT*) of the program root on m
 * (which has what they need) and adds m->uid to each one that matches (k->uids: call in
 * ascending UID order). A message's header never changes, so a kept result needs to read
 * it again only for messages that arrive later. */
struct imap_search_key;
struct imap_search_msg;
void imap_context_content(struct imap_search_key *root, const struct imap_search_msg *m);
/* Message uid of the snapshot changed, arrived or went: looked at again by the next
 * imap_context_flush. Cheap; nothing when no result is kept. */
void imap_context_note(struct imap_client *cl, uint32_t uid);
/* Sends the ADDTO and REMOVEFROM that the noted messages make (their ESEARCH responses),
 * evaluating the programs against those messages alone. Where the session sends
 * unsolicited responses: after a sync, before a tagged reply. */
void imap_context_flush(struct imap_client *cl);
/* Forgets every live result (the mailbox is left). */
void imap_context_clear(struct imap_client *cl);

/* imap_cmd_select.c */
void imap_cmd_select(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_examine(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_close(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_unselect(struct imap_client *cl, const struct imap_arg *a, size_t n);

/* imap_cmd_fetch.c, imap_cmd_store.c, imap_cmd_search.c */
void imap_cmd_fetch(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_store(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_copy(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_move(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_expunge(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_search(struct imap_client *cl, const struct imap_arg *a, size_t n);
/* SORT and THREAD's search: a[0..n) are search keys (no CHARSET, no RETURN). On a parse
 * error it answers BAD or NO itself; else done(cl, ext, rc, seqs, n, search) gets the
 * sequence numbers of the matching messages in ascending order (borrowed for the call),
 * or rc < 0 after a store failure (then it must answer), and the parsed program, which
 * done may move out (leaving it zeroed). ext is freed with the command (ext_free). done
 * may answer (imap_done) or go on asynchronously. update: the result is to be kept up to
 * date (the program's header keys keep what they matched: imap_context_content). */
typedef void imap_search_done_fn(struct imap_client *cl, void *ext, int rc, const uint32_t *seqs,
                                 size_t n, struct imap_search *search);
void imap_search_run(struct imap_client *cl, const struct imap_arg *a, size_t n,
                     imap_search_done_fn *done, void *ext, void (*ext_free)(void *ext),
                     bool update);
/* imap_cmd_sort.c */
void imap_sortcache_free(struct imap_client *cl);
/* The sort keys the session holds for uid of the selected mailbox, or NULL (borrowed:
 * valid until the next SORT, THREAD or imap_sortcache_load). */
struct imap_sort_msg;
const struct imap_sort_msg *imap_sortcache_find(const struct imap_client *cl, uint32_t uid);
/* Whether the keys held reach uid: a message up to it that has none is not in the store. */
bool imap_sortcache_covers(const struct imap_client *cl, uint32_t uid);
/* Reads the keys of every message above those held, up to the snapshot's last, then calls
 * then(cl, rc) once (never when the connection closes first). Holds the connection but
 * does not pause it. 0, or -EIO: then is not called. */
int imap_sortcache_load(struct imap_client *cl, void (*then)(struct imap_client *cl, int rc));
void imap_cmd_sort(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_thread(struct imap_client *cl, const struct imap_arg *a, size_t n);
/* A fetch-att list as text ("(UID BODY.PEEK[HEADER])"): 0 when FETCH takes it, -EINVAL. */
int imap_fetch_items_check(const char *items);
/* FETCH items (a fetch-att list as text) of the messages seqs[0..n) with no tagged reply
 * and never setting \Seen, then then(cl) once (never when the connection closes first).
 * Only while no command runs, or in IDLE: it uses cl->op. */
void imap_fetch_unsolicited(struct imap_client *cl, const char *items, const uint32_t *seqs,
                            size_t n, void (*then)(struct imap_client *cl));
/* imap_cmd_append.c */
void imap_cmd_append(struct imap_client *cl, const struct imap_arg *a, size_t n);
/* "dd-Mon-yyyy hh:mm:ss +zzzz" (RFC 3501 date-time) as epoch seconds. 0 or -EINVAL. */
int imap_parse_datetime(const char *s, size_t len, int64_t *t_r);
/* imap_cmd_metadata.c: GETMETADATA, SETMETADATA (RFC 5464). */
void imap_cmd_getmetadata(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_setmetadata(struct imap_client *cl, const struct imap_arg *a, size_t n);
/* A SETMETADATA literal of size bytes is announced: when it is over limits.metadata_size,
 * writes "tag NO [METADATA MAXSIZE n]" and returns true (the caller forgets the command
 * and skips the literal if it comes anyway); false: it may come. */
bool imap_metadata_literal_refused(struct imap_client *cl, const char *tag, uint64_t size);
/* imap_cmd_quota.c */
void imap_cmd_getquota(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_getquotaroot(struct imap_client *cl, const struct imap_arg *a, size_t n);
void imap_cmd_setquota(struct imap_client *cl, const struct imap_arg *a, size_t n);

/* imap_audit.c: the session's records in the access audit (server/audit.h). Each returns
 * false when the session is being closed because the record could not be kept: the
 * caller stops. */
struct buf;
/* The words a[0..n) as the client wrote them (atoms, strings' bytes, lists in parens). */
void imap_audit_args(struct buf *b, const struct imap_arg *a, size_t n);
/* The selected mailbox's messages seqs[0..n) (sequence numbers). */
bool imap_audit_seqs(struct imap_client *cl, const char *action, const uint32_t *seqs, size_t n,
                     const char *detail);
/* The selected mailbox's messages in the UID ranges r[0..nr). */
bool imap_audit_ranges(struct imap_client *cl, const char *action, const struct store_uid_range *r,
                       size_t nr, const char *detail);
/* The selected mailbox's messages marked \Deleted (EXPUNGE, CLOSE). */
bool imap_audit_deleted(struct imap_client *cl, const char *action, const char *detail);

#endif
