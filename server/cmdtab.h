#ifndef SEALMAIL_CMDTAB_H
#define SEALMAIL_CMDTAB_H
/*
 * The command dispatcher shared by the SMTP, IMAP and POP3 sessions (house rules, docs/hacking.md).
 *
 * A protocol describes its commands in a const table of struct cmdtab_entry. Before any
 * handler runs, the session asks cmdtab_check() whether the command may run now; the
 * verdict names the one refusal that applies and the protocol words it. No handler
 * re-checks TLS, login or state. This module is protocol-neutral: it never writes to the
 * peer, knows no reply texts and includes neither conn.h nor libuv.
 *
 * States are protocol-defined bit masks (one bit per state); a session is in exactly
 * one state and passes that bit to cmdtab_check().
 *
 * A protocol whose handlers take something other than the raw argument bytes (IMAP: the
 * parsed arguments) embeds struct cmdtab_entry as the first member of its own entry type,
 * leaves handler NULL and looks up with cmdtab_find_in(), giving the element size. A
 * protocol with a prefix word (IMAP's UID) marks the commands that may follow it with
 * CMD_UID and looks up with cmdtab_find_uid(). One lookup then serves every decision about
 * a command: a literal's acceptance before the continuation as well as its dispatch.
 */
#include <stdbool.h>
#include <stddef.h>

enum cmdtab_flag {
	CMD_PRE_TLS = 1 << 0,     /* allowed before TLS is active (STARTTLS listeners) */
	CMD_PRE_AUTH = 1 << 1,    /* allowed before login */
	CMD_SECRET = 1 << 2,      /* arguments are never logged (passwords, SASL responses) */
	CMD_NOT_TLS = 1 << 3,     /* refused once TLS is active (STARTTLS, STLS) */
	CMD_UID = 1 << 4,         /* may follow the UID prefix (IMAP: UID FETCH and the like) */
	CMD_BIG_LITERAL = 1 << 5, /* may take a message-sized literal (IMAP APPEND) */
};

/* Bits from CMD_PROTO_FIRST up are the protocol's own; cmdtab never reads them. */
#define CMD_PROTO_FIRST (1u << 16)

/* The handler gets the session, then the arguments: the bytes after the command name and
 * its separator (not NUL-terminated in general; args[len] is readable). */
typedef void cmdtab_fn(void *sess, const char *args, size_t len);

struct cmdtab_entry {
	const char *name;   /* upper case */
	cmdtab_fn *handler; /* NULL when the protocol keeps its own beside the entry */
	unsigned flags;     /* enum cmdtab_flag */
	unsigned states;    /* protocol state bits where the command is allowed */
};

/* In the order cmdtab_check() tests them: the first refusal that applies wins. */
enum cmdtab_verdict {
	CMDTAB_OK = 0,
	CMDTAB_UNKNOWN,    /* no such command (e == NULL) */
	CMDTAB_NEED_TLS,   /* not CMD_PRE_TLS and TLS is not active */
	CMDTAB_TLS_ACTIVE, /* CMD_NOT_TLS and TLS is already active */
	CMDTAB_NEED_AUTH,  /* not CMD_PRE_AUTH and not logged in */
	CMDTAB_BAD_STATE,  /* the current state is not in e->states */
};

/* The entry whose name equals name[0..len) ignoring ASCII case, or NULL. name need not be
 * NUL-terminated; a name containing NUL never matches. */
const struct cmdtab_entry *cmdtab_find(const struct cmdtab_entry *tab, size_t n, const char *name,
                                       size_t len);

/* cmdtab_find() over n elements of size bytes each, each beginning with a struct
 * cmdtab_entry (size >= sizeof(struct cmdtab_entry)). The result points at the element's
 * first member: the caller converts it back to its own element type. */
const struct cmdtab_entry *cmdtab_find_in(const void *tab, size_t n, size_t size, const char *name,
                                          size_t len);

/*
 * The lookup for a protocol with a UID prefix, over a table as for cmdtab_find_in(). When
 * name[0..len) is "UID" (any case) and a next word follows (next != NULL, even when empty),
 * *uid_r is true and the result is the CMD_UID entry named next[0..next_len), or NULL when
 * there is none (a UID command that does not exist). Otherwise *uid_r is false and the
 * result is that of cmdtab_find_in() for name.
 */
const struct cmdtab_entry *cmdtab_find_uid(const void *tab, size_t n, size_t size, const char *name,
                                           size_t len, const char *next, size_t next_len,
                                           bool *uid_r);

/* Whether e may run in state (one bit) with the given TLS and login status. */
enum cmdtab_verdict cmdtab_check(const struct cmdtab_entry *e, unsigned state, bool tls,
                                 bool authed);

/* Every refusal that applies, as a mask of 1 << verdict (0: the command may run), for a
 * protocol that words them in another precedence than cmdtab_check()'s (IMAP answers a
 * wrong state before a missing TLS). For e == NULL only 1 << CMDTAB_UNKNOWN. */
unsigned cmdtab_refusals(const struct cmdtab_entry *e, unsigned state, bool tls, bool authed);

/* Splits line[0..len) at the first space: *word_len is the length of the first word,
 * *args and *args_len the rest after one space (empty when there is none). */
void cmdtab_split(const char *line, size_t len, size_t *word_len, const char **args,
                  size_t *args_len);

/*
 * Logs one "event=command" line at debug level:
 *   session=ID proto=P event=command cmd=NAME args=ESCAPED
 * For a known command the name is the table's; args are escaped with log_escape. When e is
 * NULL (unknown) or CMD_SECRET, the arguments are not logged, only args_len=N: an unknown
 * command may be a mistyped secret.
 */
void cmdtab_log(const char *session, const char *proto, const struct cmdtab_entry *e,
                const char *name, size_t name_len, const char *args, size_t args_len);

#endif
