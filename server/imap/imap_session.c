/*
 * The IMAP session, greeting to LOGOUT (see imap.h): command assembly, what is refused
 * before TLS, dispatch by table, state changes, tagged replies and untagged updates at
 * command boundaries, and the listener's protocol handler.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/xmalloc.h"
#include "server/auth/cert_login.h"
#include "server/auth/scram.h"
#include "server/imap/imap.h"
#include "server/imap/imap_mutf7.h"
#include "server/imap/imap_private.h"
#include "server/services.h"
#include "server/spool.h"

#define ALL_AUTH (IMAP_STATE_AUTH | IMAP_STATE_SELECTED)
#define ANY      (IMAP_STATE_NOAUTH | IMAP_STATE_AUTH | IMAP_STATE_SELECTED)
/* Before TLS (STARTTLS listeners) and before login. */
#define PRE (CMD_PRE_TLS | CMD_PRE_AUTH)

static void cmd_starttls(struct imap_client *cl, const struct imap_arg *a, size_t n);

/* States are enum imap_state bits; CMD_PRE_AUTH marks what runs before login, CMD_PRE_TLS
 * what runs before STARTTLS, CMD_UID what may follow UID. */
static const struct imap_command commands[] = {
    {{"CAPABILITY", NULL, PRE, ANY}, imap_cmd_capability},
    {{"NOOP", NULL, PRE, ANY}, imap_cmd_noop},
    {{"LOGOUT", NULL, PRE, ANY}, imap_cmd_logout},
    {{"STARTTLS", NULL, PRE | CMD_NOT_TLS, IMAP_STATE_NOAUTH}, cmd_starttls},
    {{"LOGIN", NULL, CMD_PRE_AUTH | CMD_SECRET, IMAP_STATE_NOAUTH}, imap_cmd_login},
    {{"AUTHENTICATE", NULL, CMD_PRE_AUTH | CMD_SECRET, IMAP_STATE_NOAUTH}, imap_cmd_authenticate},
    {{"ENABLE", NULL, 0, ALL_AUTH}, imap_cmd_enable},
    {{"COMPRESS", NULL, 0, ALL_AUTH}, imap_cmd_compress},
    {{"ID", NULL, CMD_PRE_AUTH, ANY}, imap_cmd_id},
    {{"NAMESPACE", NULL, 0, ALL_AUTH}, imap_cmd_namespace},
    {{"IDLE", NULL, 0, ALL_AUTH}, imap_cmd_idle},
    {{"LIST", NULL, 0, ALL_AUTH}, imap_cmd_list},
    {{"LSUB", NULL, 0, ALL_AUTH}, imap_cmd_lsub},
    {{"CREATE", NULL, 0, ALL_AUTH}, imap_cmd_create},
    {{"DELETE", NULL, 0, ALL_AUTH}, imap_cmd_delete},
    {{"RENAME", NULL, 0, ALL_AUTH}, imap_cmd_rename},
    {{"SUBSCRIBE", NULL, 0, ALL_AUTH}, imap_cmd_subscribe},
    {{"UNSUBSCRIBE", NULL, 0, ALL_AUTH}, imap_cmd_unsubscribe},
    {{"STATUS", NULL, 0, ALL_AUTH}, imap_cmd_status},
    {{"SELECT", NULL, 0, ALL_AUTH}, imap_cmd_select},
    {{"EXAMINE", NULL, 0, ALL_AUTH}, imap_cmd_examine},
    {{"APPEND", NULL, CMD_BIG_LITERAL, ALL_AUTH}, imap_cmd_append},
    {{"CLOSE", NULL, 0, IMAP_STATE_SELECTED}, imap_cmd_close},
    {{"UNSELECT", NULL, 0, IMAP_STATE_SELECTED}, imap_cmd_unselect},
    {{"CHECK", NULL, 0, IMAP_STATE_SELECTED}, imap_cmd_check},
    {{"EXPUNGE", NULL, CMD_UID, IMAP_STATE_SELECTED}, imap_cmd_expunge},
    {{"FETCH", NULL, CMD_UID | IMAP_CMD_NO_EXPUNGE, IMAP_STATE_SELECTED}, imap_cmd_fetch},
    {{"STORE", NULL, CMD_UID | IMAP_CMD_NO_EXPUNGE, IMAP_STATE_SELECTED}, imap_cmd_store},
    {{"SEARCH", NULL, CMD_UID | IMAP_CMD_NO_EXPUNGE, IMAP_STATE_SELECTED}, imap_cmd_search},
    {{"SORT", NULL, CMD_UID | IMAP_CMD_NO_EXPUNGE, IMAP_STATE_SELECTED}, imap_cmd_sort},
    {{"THREAD", NULL, CMD_UID | IMAP_CMD_NO_EXPUNGE, IMAP_STATE_SELECTED}, imap_cmd_thread},
    {{"COPY", NULL, CMD_UID | IMAP_CMD_NO_EXPUNGE, IMAP_STATE_SELECTED}, imap_cmd_copy},
    {{"MOVE", NULL, CMD_UID, IMAP_STATE_SELECTED}, imap_cmd_move},
    {{"GETQUOTA", NULL, 0, ALL_AUTH}, imap_cmd_getquota},
    {{"GETQUOTAROOT", NULL, 0, ALL_AUTH}, imap_cmd_getquotaroot},
    {{"SETQUOTA", NULL, 0, ALL_AUTH}, imap_cmd_setquota},
    {{"NOTIFY", NULL, 0, ALL_AUTH}, imap_cmd_notify},
    {{"CANCELUPDATE", NULL, 0, IMAP_STATE_SELECTED}, imap_cmd_cancelupdate},
    {{"GETMETADATA", NULL, 0, ALL_AUTH}, imap_cmd_getmetadata},
    {{"SETMETADATA", NULL, IMAP_CMD_METADATA, ALL_AUTH}, imap_cmd_setmetadata},
};

struct store *imap_store(struct imap_client *cl)
{
	struct services *sv = conn_services(cl->c);
	return sv != NULL ? sv->store : NULL;
}

void imap_async_begin(struct imap_client *cl)
{
	conn_pause(cl->c);
	conn_hold(cl->c);
}

bool imap_async_end(struct imap_client *cl)
{
	return conn_release(cl->c);
}

bool imap_wait_drain(struct imap_client *cl, void (*fn)(void *arg), void *arg)
{
	if (conn_pending_output(cl->c) <= IMAP_OUT_LOW)
		return false;
	conn_pause(cl->c);
	conn_when_drained(cl->c, IMAP_OUT_LOW, fn, arg);
	return true;
}

void imap_set_state(struct imap_client *cl, enum imap_state st)
{
	if (st != IMAP_STATE_SELECTED) {
		imap_watch(cl, false);
		imap_snapshot_clear(cl);
		free(cl->mailbox_name);
		cl->mailbox_name = NULL;
		cl->mailbox_id = 0;
		free(cl->saved);
		cl->saved = NULL;
		cl->n_saved = 0;
		imap_context_clear(cl); /* RFC 5267 4.3: updates end with the mailbox */
		imap_sortcache_free(cl);
		imap_keywords_forget(cl);
		imap_recent_clear(cl);
	}
	/* After login a command may be one long line (an ID with many parameters, a SEARCH
	 * with a long OR chain): the line limit becomes the command's own bound, which the
	 * reader enforces with a tagged BAD. A longer line is still refused by the conn
	 * before it is buffered. Before login the configured small limit stays. */
	if (cl->state == IMAP_STATE_NOAUTH && (st == IMAP_STATE_AUTH || st == IMAP_STATE_SELECTED))
		conn_set_line_limit(cl->c, IMAP_COMMAND_MAX);
	cl->state = st;
	imap_reader_set_max(&cl->reader,
	                    st == IMAP_STATE_NOAUTH ? IMAP_COMMAND_MAX_PREAUTH : IMAP_COMMAND_MAX);
}

void imap_condstore_enable(struct imap_client *cl)
{
	if (cl->condstore)
		return;
	cl->condstore = true;
	/* RFC 7162 3.1: the client learns where it stands before any MODSEQ it is shown. */
	if (cl->state == IMAP_STATE_SELECTED)
		conn_printf(cl->c, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
		            (unsigned long long)imap_highest_modseq(cl));
}

/* ---- spooled literals ---- */

const struct imap_spooled *imap_spooled_at(const struct imap_client *cl, const char *s)
{
	if (cl->reader.cmd.data == NULL || s < cl->reader.cmd.data)
		return NULL;
	size_t off = (size_t)(s - cl->reader.cmd.data);
	for (size_t i = 0; i < cl->n_spooled; i++)
		if (cl->spooled[i].offset == off)
			return &cl->spooled[i];
	return NULL;
}

/* The rest of a refused command still arrives when it has a non-synchronising literal:
 * its bytes are skipped, and the lines after them are not taken for new commands. */
static void skip_literal(struct imap_client *cl, uint64_t size)
{
	cl->discard = size;
	cl->skip_command = true;
	conn_expect_bytes(cl->c, size);
}

static void skip_line(struct imap_client *cl, const char *line, size_t len)
{
	struct imap_literal lit;
	cl->skip_command = false;
	if (!imap_literal_at_end(line, len, &lit) || !lit.nonsync || lit.size == 0)
		return; /* the command ends here (or waits for a "+" it will not get) */
	if (lit.size > cl->reader.message_max + IMAP_COMMAND_MAX_EXTRA) {
		conn_write_str(cl->c, "* BYE [TOOBIG] Literal too large\r\n");
		conn_close(cl->c, "literal too large");
		return;
	}
	skip_literal(cl, lit.size);
}

/* Forgets the command being assembled: its buffer and its spool files. */
static void command_reset(struct imap_client *cl)
{
	imap_reader_reset(&cl->reader);
	for (size_t i = 0; i < cl->n_spooled; i++)
		spool_free(cl->spooled[i].f);
	free(cl->spooled);
	cl->spooled = NULL;
	cl->n_spooled = 0;
	cl->spool_left = 0;
	if (cl->spool_paused) {
		cl->spool_paused = false;
		conn_resume(cl->c);
	}
}

static void spool_drained(void *ctx)
{
	struct imap_client *cl = ctx;
	if (cl->spool_paused) {
		cl->spool_paused = false;
		conn_resume(cl->c);
	}
}

/* A large APPEND literal was announced and accepted: its bytes go to a spool file. 0,
 * -ENOTSUP (no spool here: keep it in memory) or another -errno. */
static int spool_literal(struct imap_client *cl, const struct imap_literal *lit)
{
	struct spool_file *f;
	int rc = spool_create(&f);
	if (rc < 0)
		return rc;
	cl->spooled = xreallocarray(cl->spooled, cl->n_spooled + 1, sizeof(*cl->spooled));
	struct imap_spooled *sp = &cl->spooled[cl->n_spooled++];
	sp->size = lit->size;
	sp->f = f;
	sp->offset = imap_reader_divert(&cl->reader);
	cl->spool_left = lit->size;
	log_event(LOGL_INFO, "session=%s proto=imap event=literal_spooled size=%llu",
	          conn_id(cl->c), (unsigned long long)lit->size);
	return 0;
}

/* ---- flags ---- */

static const struct {
	const char *name;
	unsigned bit;
} flag_names[] = {{"\\Seen", STORE_SEEN},
                  {"\\Answered", STORE_ANSWERED},
                  {"\\Flagged", STORE_FLAGGED},
                  {"\\Deleted", STORE_DELETED},
                  {"\\Draft", STORE_DRAFT}};

char *imap_keywords_dup(const char *kw)
{
	return kw != NULL && kw[0] != '\0' ? xstrdup(kw) : NULL;
}

void imap_fmt_flags(struct buf *o, unsigned flags, const char *keywords, bool recent)
{
	bool first = true;
	buf_append(o, "(", 1);
	for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
		if (flags & flag_names[i].bit) {
			if (!first)
				buf_append(o, " ", 1);
			buf_append_str(o, flag_names[i].name);
			first = false;
		}
	if (recent) {
		buf_append_str(o, first ? "\\Recent" : " \\Recent");
		first = false;
	}
	if (keywords != NULL && keywords[0] != '\0') {
		if (!first)
			buf_append(o, " ", 1);
		buf_append_str(o, keywords);
	}
	buf_append(o, ")", 1);
}

int imap_parse_flags(const struct imap_arg *a, unsigned *flags_r, char **keywords_r)
{
	const struct imap_arg *v = a;
	size_t n = 1;
	if (a->type == IMAP_ARG_LIST) {
		v = a->list;
		n = a->n;
	}
	struct buf kw;
	buf_init(&kw, 64 * 1024);
	*flags_r = 0;
	*keywords_r = NULL;
	for (size_t i = 0; i < n; i++) {
		if (v[i].type != IMAP_ARG_ATOM)
			goto bad;
		bool found = false;
		for (size_t k = 0; k < sizeof(flag_names) / sizeof(flag_names[0]); k++)
			if (imap_arg_is(&v[i], flag_names[k].name)) {
				*flags_r |= flag_names[k].bit;
				found = true;
			}
		if (found || imap_arg_is(&v[i], "\\Recent"))
			continue;
		if (v[i].s[0] == '\\')
			goto bad;
		for (size_t k = 0; k < v[i].len; k++)
			if (strchr("()]{%*\"\\", v[i].s[k]) != NULL)
				goto bad;
		if (kw.len > 0)
			buf_append(&kw, " ", 1);
		if (buf_append(&kw, v[i].s, v[i].len) < 0)
			goto bad;
	}
	if (kw.len > 0)
		*keywords_r = xstrndup(kw.data, kw.len);
	buf_free(&kw);
	return 0;
bad:
	buf_free(&kw);
	return -EINVAL;
}

char *imap_mailbox_arg(struct imap_client *cl, const struct imap_arg *a)
{
	char *name = NULL;
	if (!imap_arg_is_astring(a) ||
	    imap_mailbox_from_client(a->s, a->len, cl->utf8, &name) < 0) {
		imap_done(cl, "NO", "[CANNOT] invalid mailbox name");
		return NULL;
	}
	return name;
}

void imap_write_capability(struct imap_client *cl, struct buf *o)
{
	buf_append_str(o, "CAPABILITY IMAP4rev1 IMAP4rev2");
	if (!conn_is_tls(cl->c)) {
		buf_append_str(o, " STARTTLS LOGINDISABLED");
		return;
	}
	if (cl->state == IMAP_STATE_NOAUTH) {
		/* The same mechanisms as SMTP AUTH and POP3 SASL (smtp_auth.c, pop3_auth.c). */
		buf_append_str(o, " AUTH=PLAIN");
		if (scram_plus_offered(cl->c))
			buf_append_str(o, " AUTH=SCRAM-SHA-256-PLUS");
		buf_append_str(o, " AUTH=SCRAM-SHA-256");
		if (auth_cert_offered(cl->c))
			buf_append_str(o, " AUTH=EXTERNAL");
		buf_append_str(o, " SASL-IR LITERAL+ ID ENABLE");
		return;
	}
	buf_append_str(o, " LITERAL+ ID ENABLE IDLE UIDPLUS MOVE UNSELECT NAMESPACE CHILDREN "
	                  "SPECIAL-USE LIST-EXTENDED LIST-STATUS ESEARCH SEARCHRES CONDSTORE "
	                  "QRESYNC MULTIAPPEND UTF8=ACCEPT QUOTA QUOTA=RES-STORAGE BINARY CATENATE "
	                  "QUOTA=RES-MESSAGE QUOTASET STATUS=SIZE "
	                  "SORT SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES "
	                  "CONTEXT=SEARCH CONTEXT=SORT");
	buf_append_str(o, " NOTIFY OBJECTID SAVEDATE PREVIEW METADATA METADATA-SERVER");
	/* RFC 4978: a command-auth command, so offered after login, and only while it can
	 * still be turned on. */
	if (!conn_is_compressed(cl->c))
		buf_append_str(o, " COMPRESS=DEFLATE");
}

/* ---- replies ---- */

static void send_tagged(struct imap_client *cl)
{
	imap_context_flush(cl); /* what the command changed in live results */
	conn_printf(cl->c, "%s %s\r\n", cl->tag != NULL ? cl->tag : "*", cl->reply);
	free(cl->reply);
	cl->reply = NULL;
	free(cl->tag);
	cl->tag = NULL;
	cl->busy = false;
	cl->cmd_flags = 0;
	cl->uid = false;
	if (cl->op_free != NULL)
		cl->op_free(cl->op);
	cl->op = NULL;
	cl->op_free = NULL;
	imap_args_free(&cl->args);
	command_reset(cl);
	if (cl->state == IMAP_STATE_LOGOUT) {
		conn_close(cl->c, "logout");
		return;
	}
	imap_notify_resume(cl); /* between commands: what NOTIFY holds may go out */
}

void imap_done(struct imap_client *cl, const char *status, const char *text)
{
	free(cl->reply);
	cl->reply = xasprintf("%s %s", status, text);
	/* Pending changes go out before the tagged OK (never EXPUNGE during FETCH, STORE,
	 * SEARCH or COPY by sequence number: the sync checks cmd_flags). */
	if (strcmp(status, "OK") == 0 && cl->changed && cl->state == IMAP_STATE_SELECTED &&
	    !((cl->cmd_flags & IMAP_CMD_NO_EXPUNGE) && !cl->uid)) {
		imap_sync_then(cl, send_tagged);
		return;
	}
	send_tagged(cl);
}

void imap_done_now(struct imap_client *cl, const char *status, const char *text)
{
	free(cl->reply);
	cl->reply = xasprintf("%s %s", status, text);
	send_tagged(cl);
}

void imap_donef(struct imap_client *cl, const char *status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *t = NULL;
	if (vasprintf(&t, fmt, ap) < 0)
		abort();
	va_end(ap);
	imap_done(cl, status, t);
	free(t);
}

/* ---- dispatch ---- */

static void cmd_starttls(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	conn_printf(cl->c, "%s OK Begin TLS negotiation now\r\n", cl->tag);
	free(cl->tag);
	cl->tag = NULL;
	cl->busy = false;
	imap_args_free(&cl->args);
	command_reset(cl);
	cl->tls_pending = true;
	conn_start_tls(cl->c);
}

static bool valid_tag(const struct imap_arg *a)
{
	if (a->type != IMAP_ARG_ATOM || a->len == 0 || a->len > 64)
		return false;
	for (size_t i = 0; i < a->len; i++)
		if (a->s[i] == '+' || a->s[i] == '*' || a->s[i] == '%' || a->s[i] == '[' ||
		    a->s[i] == '\\')
			return false;
	return true;
}

static void count_error(struct imap_client *cl)
{
	if (++cl->errors >= conn_config(cl->c)->limits.errors) {
		conn_write_str(cl->c, "* BYE Too many errors\r\n");
		conn_close(cl->c, "too many errors");
	}
}

static void bad_line(struct imap_client *cl, const char *tag, const char *text)
{
	conn_printf(cl->c, "%s BAD %s\r\n", tag, text);
	imap_args_free(&cl->args);
	command_reset(cl);
	count_error(cl);
}

/*
 * The one lookup behind both the literal check and dispatch: the command named by word
 * (after the tag), or after "UID" by next (NULL: no next word), which counts only in the
 * selected state (UID elsewhere is an unknown command). *uid_r says whether the UID prefix
 * was taken; NULL with *uid_r set is an unknown UID command.
 */
static const struct imap_command *lookup(const struct imap_client *cl, const char *word, size_t len,
                                         const char *next, size_t next_len, bool *uid_r)
{
	if (cl->state != IMAP_STATE_SELECTED)
		next = NULL;
	const struct cmdtab_entry *e =
	    cmdtab_find_uid(commands, sizeof(commands) / sizeof(commands[0]), sizeof(commands[0]),
	                    word, len, next, next_len, uid_r);
	return (const struct imap_command *)(const void *)e;
}

/*
 * Why cmd (NULL: unknown) may not run now, as the text of a tagged BAD, or NULL when it
 * may. IMAP answers a wrong state ("Log in first" before login) before a missing TLS;
 * *secret_r says that the refusal is the missing TLS of LOGIN or AUTHENTICATE, which
 * LOGINDISABLED makes a NO rather than a BAD.
 */
static const char *refusal(const struct imap_client *cl, const struct imap_command *cmd, bool uid,
                           bool *secret_r)
{
	*secret_r = false;
	if (cmd == NULL)
		return uid ? "Unknown UID command" : "Unknown command";
	unsigned r = cmdtab_refusals(&cmd->cmd, cl->state, conn_is_tls(cl->c),
	                             cl->state != IMAP_STATE_NOAUTH);
	if (r & ((1u << CMDTAB_NEED_AUTH) | (1u << CMDTAB_BAD_STATE)))
		return cl->state == IMAP_STATE_NOAUTH ? "Log in first" : "Wrong state for command";
	if (r & (1u << CMDTAB_NEED_TLS)) {
		*secret_r = (cmd->cmd.flags & CMD_SECRET) != 0;
		return "[PRIVACYREQUIRED] Start TLS first";
	}
	if (r & (1u << CMDTAB_TLS_ACTIVE))
		return "TLS is already active";
	return NULL;
}

/* The length of the word of a raw command that starts at s: up to a space, a CR or end. */
static size_t raw_word(const char *s, const char *end)
{
	size_t n = 0;
	while (s + n < end && s[n] != ' ' && s[n] != '\r')
		n++;
	return n;
}

/* The APPEND being assembled has reached a CATENATE part list. */
static bool in_catenate(const struct imap_reader *r)
{
	static const char key[] = " CATENATE (";
	size_t k = sizeof(key) - 1;
	for (size_t i = 0; i + k <= r->cmd.len; i++)
		if (strncasecmp(r->cmd.data + i, key, k) == 0)
			return true;
	return false;
}

/* The command buffer s[0..len) ends in a literal8 announcement ("~{n}\r\n", RFC 3516). */
static bool announces_literal8(const char *s, size_t len)
{
	size_t i = len;
	while (i > 0 && s[i - 1] != '{')
		i--;
	return i >= 2 && s[i - 2] == '~';
}

/*
 * A literal is announced on the first line of a command: refuse a command that cannot run
 * here (unknown, wrong state, before TLS) before the "+" continuation, so no client sends
 * megabytes for a command that fails anyway. Before login every literal is small and the
 * whole command is bounded by PREAUTH_MAX. Returns NULL when the literal may come, else
 * the reason for a tagged BAD; *cmd_r is the command, for what its literal may be.
 */
#define PREAUTH_MAX (64 * 1024)
static const char *literal_refusal(struct imap_client *cl, const struct imap_literal *lit,
                                   const struct imap_command **cmd_r)
{
	const char *s = cl->reader.cmd.data;
	size_t len = cl->reader.cmd.len;
	*cmd_r = NULL;
	if (cl->state == IMAP_STATE_NOAUTH && len + lit->size > PREAUTH_MAX)
		return "[TOOBIG] Literal too large before login";
	const char *sp = memchr(s, ' ', len);
	if (sp == NULL)
		return NULL; /* the tag itself is a literal? the parser will say BAD */
	const char *end = s + len;
	const char *name = sp + 1;
	size_t nl = raw_word(name, end);
	const char *next = name + nl < end ? name + nl + 1 : NULL;
	bool uid, secret;
	*cmd_r = lookup(cl, name, nl, next, next != NULL ? raw_word(next, end) : 0, &uid);
	const char *why = refusal(cl, *cmd_r, uid, &secret);
	if (why == NULL && !((*cmd_r)->cmd.flags & (CMD_BIG_LITERAL | IMAP_CMD_METADATA)) &&
	    announces_literal8(s, len))
		why = "A literal8 (~{n}) is only for APPEND and SETMETADATA";
	return why;
}

/* The tag at the start of a raw command (for a reply when the rest cannot be parsed), or
 * "*" when there is no valid one. */
static char *raw_tag(const char *s, size_t len)
{
	size_t n = 0;
	while (n < len && n <= 64 && s[n] != ' ') {
		unsigned char ch = (unsigned char)s[n];
		if (ch <= 0x20 || ch >= 0x7f || strchr("(){%*\"\\+", ch) != NULL)
			return xstrdup("*");
		n++;
	}
	return n > 0 && n <= 64 && n < len ? xstrndup(s, n) : xstrdup("*");
}

static char *pending_tag(const struct imap_client *cl)
{
	return raw_tag(cl->reader.cmd.data, cl->reader.cmd.len);
}

static void dispatch(struct imap_client *cl)
{
	const char *err = NULL;
	if (imap_parse(cl->reader.cmd.data, cl->reader.cmd.len, &cl->args, &err) < 0) {
		char *tag = raw_tag(cl->reader.cmd.data, cl->reader.cmd.len);
		bad_line(cl, tag, err);
		free(tag);
		return;
	}
	const struct imap_arg *v = cl->args.v;
	size_t n = cl->args.n;
	if (n == 0) {
		bad_line(cl, "*", "Empty command");
		return;
	}
	if (!valid_tag(&v[0])) {
		bad_line(cl, "*", "Invalid tag");
		return;
	}
	char *tag = xstrndup(v[0].s, v[0].len);
	if (n < 2 || v[1].type != IMAP_ARG_ATOM) {
		bad_line(cl, tag, "Missing command");
		free(tag);
		return;
	}
	/* What follows UID is a command only when it is an atom: anything else is an unknown
	 * UID command, hence the empty word. */
	bool next_atom = n >= 3 && v[2].type == IMAP_ARG_ATOM;
	const char *next = n < 3 ? NULL : next_atom ? v[2].s : "";
	bool uid;
	const struct imap_command *cmd =
	    lookup(cl, v[1].s, v[1].len, next, next_atom ? v[2].len : 0, &uid);
	size_t first = uid ? 3 : 2;
	if (cmd == NULL && uid) {
		bad_line(cl, tag, "Unknown UID command");
		free(tag);
		return;
	}
	if (cl->state == IMAP_STATE_NOAUTH &&
	    ++cl->preauth_commands > conn_config(cl->c)->limits.commands) {
		conn_write_str(cl->c, "* BYE Too many commands before login\r\n");
		conn_close(cl->c, "too many commands");
		free(tag);
		return;
	}
	bool secret;
	const char *why = refusal(cl, cmd, uid, &secret);
	if (why != NULL && secret) {
		/* LOGIN and AUTHENTICATE are valid here but for LOGINDISABLED: NO. */
		conn_printf(cl->c, "%s NO [PRIVACYREQUIRED] Use STARTTLS first\r\n", tag);
		imap_args_free(&cl->args);
		command_reset(cl);
		count_error(cl);
		free(tag);
		return;
	}
	if (why != NULL) {
		bad_line(cl, tag, why);
		free(tag);
		return;
	}
	cl->tag = tag;
	cl->uid = uid;
	cl->busy = true;
	cl->cmd_flags = cmd->cmd.flags;
	if (!(cmd->cmd.flags & CMD_SECRET))
		log_event(LOGL_DEBUG, "session=%s proto=imap event=command name=%s", conn_id(cl->c),
		          cmd->cmd.name);
	char label[32];
	snprintf(label, sizeof(label), "%s%s", uid ? "UID " : "", cmd->cmd.name);
	metrics_inc(METRIC_IMAP_COMMANDS, label, NULL, NULL);
	cmd->fn(cl, v + first, n - first);
}

/*
 * A SETMETADATA value announced as a literal over limits.metadata_size is refused with NO
 * [METADATA MAXSIZE n] before its "+" (RFC 5464 4.3), whatever the reader's own bound, so
 * its bytes are never read into memory. true: answered and the command forgotten.
 */
static bool metadata_literal(struct imap_client *cl, const char *line, size_t len)
{
	struct imap_literal lit;
	if (cl->state == IMAP_STATE_NOAUTH || !imap_literal_at_end(line, len, &lit))
		return false;
	bool first = cl->reader.cmd.len == 0;
	const char *s = first ? line : cl->reader.cmd.data;
	size_t n = first ? len : cl->reader.cmd.len;
	const char *sp = memchr(s, ' ', n);
	if (sp == NULL)
		return false;
	bool uid;
	const struct imap_command *cmd = lookup(cl, sp + 1, raw_word(sp + 1, s + n), NULL, 0, &uid);
	if (cmd == NULL || !(cmd->cmd.flags & IMAP_CMD_METADATA))
		return false;
	char *tag = first ? raw_tag(line, len) : pending_tag(cl);
	bool refused = imap_metadata_literal_refused(cl, tag, lit.size);
	free(tag);
	if (!refused)
		return false;
	command_reset(cl);
	if (lit.nonsync && lit.size > 0) {
		/* RFC 7888 4: it comes anyway; skipped unless more than any command could be. */
		if (lit.size > cl->reader.message_max + IMAP_COMMAND_MAX_EXTRA) {
			conn_write_str(cl->c, "* BYE [TOOBIG] Literal too large\r\n");
			conn_close(cl->c, "literal too large");
		} else {
			skip_literal(cl, lit.size);
		}
	}
	return true;
}

static void imap_client_line(struct imap_client *cl, char *line, size_t len, bool has_cr)
{
	if (cl->tls_pending)
		return; /* never act on bytes between STARTTLS and the handshake (CVE-2011-0411) */
	if (cl->idling) {
		imap_idle_line(cl, line, len);
		return;
	}
	if (cl->auth_continue) {
		imap_authenticate_response(cl, line, len);
		return;
	}
	if (cl->busy)
		return; /* cannot happen: input is paused while a command runs */
	struct imap_literal lit;
	if (cl->skip_command) {
		skip_line(cl, line, len);
		return;
	}
	if (metadata_literal(cl, line, len))
		return;
	bool first = cl->reader.cmd.len == 0;
	/* A reply to a command refused mid-way still carries its tag (the reader forgets
	 * the command on an error). */
	char *err_tag = first ? NULL : pending_tag(cl);
	lit.size = 0;
	lit.nonsync = false;
	int rc = imap_reader_line(&cl->reader, line, len, &lit);
	if (rc >= 0) {
		free(err_tag);
		err_tag = NULL;
	} else if (first) {
		err_tag = raw_tag(line, len);
	}
	if (rc == 1) {
		dispatch(cl);
		return;
	}
	if (rc == 0) {
		const struct imap_command *cmd;
		const char *why = literal_refusal(cl, &lit, &cmd);
		if (why != NULL) {
			char *tag = pending_tag(cl);
			bool too_big = strncmp(why, "[TOOBIG]", 8) == 0;
			bad_line(cl, tag, why);
			free(tag);
			if (lit.nonsync && lit.size > 0) {
				/* The bytes are on their way: skip them (small) or hang up. */
				if (too_big || lit.size > IMAP_LITERAL_MAX_SMALL) {
					conn_close(cl->c, "literal refused");
					return;
				}
				skip_literal(cl, lit.size);
			}
			return;
		}
		if (lit.size == 0) {
			/* A synchronising {0} waits for its "+" like any other (RFC 9051 4.3). */
			if (!lit.nonsync)
				conn_write_str(cl->c, "+ Ready for literal data\r\n");
			return;
		}
		/* Large APPEND literals, and any that would take the command past what it may
		 * hold in memory, go to the disk as they arrive. */
		bool big = cmd != NULL && (cmd->cmd.flags & CMD_BIG_LITERAL) != 0;
		bool over =
		    big && imap_reader_over_max(&cl->reader, lit.size + IMAP_LITERAL_MAX_SMALL);
		/* A CATENATE TEXT part is assembled in memory: it stays in the command as long
		 * as the command fits its bound (larger ones spool, and APPEND refuses them). */
		if ((lit.size > IMAP_SPOOL_MIN && !(big && !over && in_catenate(&cl->reader))) ||
		    over) {
			int src = spool_literal(cl, &lit);
			if (src < 0 && src != -ENOTSUP) {
				log_event(LOGL_WARN,
				          "session=%s proto=imap event=spool_failed error=%s",
				          conn_id(cl->c), strerror(-src));
				char *tag = pending_tag(cl);
				conn_printf(cl->c,
				            "%s NO [UNAVAILABLE] Cannot take the message now\r\n",
				            tag);
				free(tag);
				command_reset(cl);
				if (lit.nonsync)
					conn_close(cl->c, "spool failed");
				return;
			}
		}
		if (!lit.nonsync)
			conn_write_str(cl->c, "+ Ready for literal data\r\n");
		conn_expect_bytes(cl->c, lit.size);
		return;
	}
	/* On -ENOBUFS the reader did not look at the line: what follows is known from its
	 * end. RFC 7888 4: a non-synchronising literal comes anyway; it and the rest of its
	 * command are skipped and the connection is kept, unless it is more than any command
	 * could be. A synchronising one is never sent: the client gets no "+". */
	if (rc == -ENOBUFS && !imap_literal_at_end(line, len, &lit))
		lit.size = 0;
	bool skip = lit.nonsync && lit.size > 0;
	if (skip && lit.size > cl->reader.message_max + IMAP_COMMAND_MAX_EXTRA) {
		conn_printf(cl->c, "%s BAD [TOOBIG] Literal too large\r\n", err_tag);
		conn_write_str(cl->c, "* BYE [TOOBIG] Literal too large\r\n");
		conn_close(cl->c, "literal too large");
		free(err_tag);
		return;
	}
	bad_line(cl, err_tag,
	         rc == -E2BIG ? "[TOOBIG] Literal too large" : "[TOOBIG] Command too long");
	free(err_tag);
	if (skip)
		skip_literal(cl, lit.size);
}

static void imap_client_bytes(struct imap_client *cl, const char *data, size_t len, bool last)
{
	if (cl->discard > 0) {
		cl->discard -= len < cl->discard ? len : cl->discard;
		return;
	}
	if (cl->spool_left > 0) {
		struct spool_file *f = cl->spooled[cl->n_spooled - 1].f;
		cl->spool_left -= len < cl->spool_left ? len : cl->spool_left;
		/* A write error comes back again from spool_finish, which APPEND waits for. */
		(void)spool_write(f, data, len);
		if (!cl->spool_paused && spool_pending(f) > IMAP_SPOOL_PAUSE) {
			/* The disk lags the client: stop reading until the spool catches up. */
			cl->spool_paused = true;
			conn_pause(cl->c);
			spool_on_drain(f, spool_drained, cl);
		}
		return;
	}
	if (imap_reader_bytes(&cl->reader, data, len) < 0) {
		conn_write_str(cl->c, "* BYE Internal error\r\n");
		conn_close(cl->c, "literal overflow");
	}
}

static void imap_client_line_too_long(struct imap_client *cl)
{
	if (cl->auth_continue) {
		/* The rest of the line is skipped by the conn; the exchange ends here. */
		imap_authenticate_too_long(cl);
		count_error(cl);
		return;
	}
	command_reset(cl);
	conn_write_str(cl->c, "* BAD [TOOBIG] Line too long\r\n");
	if (++cl->errors >= conn_config(cl->c)->limits.errors)
		conn_close(cl->c, "too many errors");
}

static void imap_client_timeout(struct imap_client *cl)
{
	conn_write_str(cl->c, "* BYE Idle timeout\r\n");
}

static void imap_client_shutdown(struct imap_client *cl, enum conn_goodbye why)
{
	/* [UNAVAILABLE] (RFC 5530) only where retrying later helps; a revoked certificate
	 * will not come back. */
	switch (why) {
	case CONN_BYE_SHUTDOWN:
		conn_write_str(cl->c, "* BYE Server shutting down\r\n");
		break;
	case CONN_BYE_CERT_REVOKED:
		conn_write_str(cl->c, "* BYE Your client certificate was revoked\r\n");
		break;
	case CONN_BYE_CERT_INVALID:
		conn_write_str(cl->c, "* BYE Your client certificate is no longer valid\r\n");
		break;
	case CONN_BYE_CRL_STALE:
		conn_write_str(cl->c, "* BYE [UNAVAILABLE] Client certificates cannot be checked: "
		                      "the revocation list is out of date\r\n");
		break;
	case CONN_BYE_USER_DISABLED:
		conn_write_str(cl->c, "* BYE Your account was disabled\r\n");
		break;
	}
}

/* ---- greeting and PREAUTH ---- */

static void greet(struct imap_client *cl, bool preauth)
{
	struct buf o;
	buf_init(&o, SIZE_MAX);
	buf_append_str(&o, preauth ? "* PREAUTH [" : "* OK [");
	imap_write_capability(cl, &o);
	buf_append_str(&o, preauth ? "] Logged in by certificate\r\n" : "] sealmail ready\r\n");
	conn_write(cl->c, o.data, o.len);
	buf_free(&o);
}

/* The login at connect (certificate_login: preauth), by the one certificate road: a
 * refusal, or a user who must give a password as well, gets the normal greeting. */
static void preauth_done(void *sess, const struct auth_login_result *r)
{
	struct imap_client *cl = sess;
	if (r->status == AUTH_LOGIN_OK) {
		cl->user_id = r->user_id;
		cl->user = xstrdup(r->user);
		imap_set_state(cl, IMAP_STATE_AUTH);
		conn_set_authenticated(cl->c, cl->user);
		greet(cl, true);
	} else {
		greet(cl, false);
	}
}

static struct imap_client *imap_client_new(struct conn *c)
{
	struct imap_client *cl = xcalloc(1, sizeof(*cl));
	cl->c = c;
	cl->state = IMAP_STATE_NOAUTH;
	const struct config *cfg = conn_config(c);
	imap_reader_init(&cl->reader, cfg != NULL ? cfg->limits.message_size : 52428800);
	imap_reader_set_max(&cl->reader, IMAP_COMMAND_MAX_PREAUTH);
	const struct cfg_listener *l = conn_listener(c);
	if (l != NULL && l->certificate_login == CFG_CERT_LOGIN_PREAUTH &&
	    conn_cert_identity(c) != NULL && conn_is_tls(c)) {
		auth_cert_login(c, AUTH_CERT_PREAUTH, NULL, preauth_done);
		return cl;
	}
	greet(cl, false);
	return cl;
}

static void imap_client_free(struct imap_client *cl)
{
	imap_set_state(cl, IMAP_STATE_LOGOUT);
	if (cl->op_free != NULL)
		cl->op_free(cl->op);
	imap_notify_free(cl);
	imap_args_free(&cl->args);
	cl->spool_paused = false; /* closing: nothing to resume */
	command_reset(cl);
	imap_reader_free(&cl->reader);
	free(cl->tag);
	free(cl->reply);
	free(cl->user);
	free(cl->idle_tag);
	free(cl);
}

/* ---- proto_handler ---- */

static void *p_open(struct conn *c)
{
	return imap_client_new(c);
}
static void p_line(void *s, char *line, size_t len, bool has_cr)
{
	imap_client_line(s, line, len, has_cr);
}
static void p_too_long(void *s)
{
	imap_client_line_too_long(s);
}
static void p_bytes(void *s, const char *d, size_t len, bool last)
{
	imap_client_bytes(s, d, len, last);
}
static void p_tls_ready(void *s)
{
	struct imap_client *cl = s;
	cl->tls_pending = false;
}
static void p_timeout(void *s)
{
	imap_client_timeout(s);
}
static void p_shutdown(void *s, enum conn_goodbye why)
{
	imap_client_shutdown(s, why);
}
static void p_close(void *s)
{
	struct imap_client *cl = s;
	if (cl->idling)
		metrics_gauge_add(METRIC_IMAP_IDLE, -1);
	imap_client_free(s);
}

const struct proto_handler imap_proto_handler = {
    .name = "imap",
    .open = p_open,
    .line = p_line,
    .line_too_long = p_too_long,
    .bytes = p_bytes,
    .tls_ready = p_tls_ready,
    .timeout = p_timeout,
    .shutdown = p_shutdown,
    .close = p_close,
};
