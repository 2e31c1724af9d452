#ifndef SEALMAIL_IMAP_PARSER_H
#define SEALMAIL_IMAP_PARSER_H
/*
 * The IMAP command reader and argument parser. Pure: no I/O, no libuv, no store.
 *
 * Two stages:
 * 1. struct imap_reader assembles one command from the conn's lines and literal bytes.
 *    Each line is appended with its CRLF; when a line ends in a literal announcement
 *    ({N}, or {N+} / {N-less-than-4097+} for LITERAL+/LITERAL-) the reader checks N against
 *    the limit *before* the caller sends the "+" continuation, and the next N bytes are
 *    appended as they arrive. The whole command, literals included, ends up contiguous in
 *    one bounded buffer (the wire form, so the parser sees exactly what the client sent).
 *    Limits: an APPEND literal may be as large as the message size limit, any other
 *    literal at most IMAP_LITERAL_MAX_SMALL. A command other than APPEND holds at most
 *    command_max bytes in all, literals included (IMAP_COMMAND_MAX after login,
 *    IMAP_COMMAND_MAX_PREAUTH before: imap_reader_set_max), so a client cannot make one
 *    command hold megabytes out of many small literals. An APPEND's lines count towards
 *    command_max too; its literals, which the session streams to a spool file when they
 *    are large or would not fit (imap_reader_divert), count towards the message size
 *    limit plus IMAP_COMMAND_MAX_EXTRA.
 *    Decision on LITERAL+: we advertise LITERAL+ (any size, RFC 7888). A non-synchronising
 *    literal over its limit cannot be refused before the client sends it; the reader
 *    reports -E2BIG with nonsync set, the session answers BAD and closes the connection
 *    (RFC 7888 section 4 allows this) rather than swallowing megabytes.
 * 2. imap_parse() turns the assembled command into a tree of arguments whose strings are
 *    views into the reader's buffer (valid until the next imap_reader_reset). Quoted
 *    strings are unescaped in place. Bounds: IMAP_PARSE_MAX_DEPTH nested lists,
 *    IMAP_PARSE_MAX_ARGS arguments in all.
 *
 * Atoms are read as ASTRING-CHARs (RFC 9051 formal syntax: "[" and "]" included), so
 * "SELECT a[b" is a mailbox name. Only after BODY, BODY.PEEK, BINARY, BINARY.PEEK and
 * BINARY.SIZE does "[" open a section that may itself hold spaces and parentheses
 * (BODY[HEADER.FIELDS (From To)]<0.100>), as fetch-att needs; it must be closed.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define IMAP_LITERAL_MAX_SMALL   (64 * 1024)
#define IMAP_COMMAND_MAX_EXTRA   (1024 * 1024)
#define IMAP_COMMAND_MAX         (1024 * 1024) /* a non-APPEND command after login */
#define IMAP_COMMAND_MAX_PREAUTH (64 * 1024)   /* any command before login */
#define IMAP_PARSE_MAX_DEPTH     32
#define IMAP_PARSE_MAX_ARGS      10000

struct imap_reader {
	struct buf cmd;
	uint64_t message_max;  /* limit for an APPEND literal */
	size_t command_max;    /* limit for the bytes held for one command (see above) */
	uint64_t literal_left; /* bytes still expected for the current literal */
	uint64_t diverted;     /* literal bytes taken elsewhere (imap_reader_divert) */
	bool in_literal;
};

/* command_max starts at IMAP_COMMAND_MAX. */
void imap_reader_init(struct imap_reader *r, uint64_t message_max);
/* True when the command being assembled is an APPEND. */
bool imap_reader_is_append(const struct imap_reader *r);
/* Sets command_max for the next command (login state changes). */
void imap_reader_set_max(struct imap_reader *r, size_t command_max);
/* True when a literal of size bytes announced for the command being assembled would
 * take it past command_max if held in memory (an APPEND then spools it). */
bool imap_reader_over_max(const struct imap_reader *r, uint64_t size);
void imap_reader_free(struct imap_reader *r);
/* Forgets the assembled command (after it has been handled). */
void imap_reader_reset(struct imap_reader *r);

struct imap_literal {
	uint64_t size;
	bool nonsync; /* {N+}: the client sends without waiting for "+" */
};

/*
 * Appends one line (without its line ending). Returns 1 when the command is complete,
 * 0 when a literal follows (*lit_r says its size and kind; send "+ " unless nonsync, then
 * expect lit_r->size bytes), or a negative error: -E2BIG literal over its limit or over
 * what the command may still hold (nothing was appended; lit_r is filled), -ENOBUFS the
 * line takes the command past its limit, -EINVAL a line inside a literal (a caller bug).
 * After an error the reader is reset.
 */
int imap_reader_line(struct imap_reader *r, const char *line, size_t len,
                     struct imap_literal *lit_r);
/* True when line ends in a literal announcement ({N}, {N+}); fills *lit. */
bool imap_literal_at_end(const char *line, size_t len, struct imap_literal *lit);
/* Appends literal bytes. Returns 0, or -ENOBUFS (cannot happen when the announcement was
 * accepted). */
int imap_reader_bytes(struct imap_reader *r, const char *data, size_t len);
/*
 * Right after imap_reader_line returned 0 for a literal of size > 0: the caller takes
 * that literal's bytes elsewhere (a spool file) instead of imap_reader_bytes. The
 * announcement in the buffer becomes "{0}", so the parsed argument is an empty literal
 * whose view starts at the returned offset into r->cmd.data (unique per literal: the
 * caller finds its bytes by it). The size still counts towards the command's limit.
 */
size_t imap_reader_divert(struct imap_reader *r);

enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_STRING, /* quoted or literal */
	IMAP_ARG_NIL,
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	bool literal;
	bool literal8; /* "~{n}" (RFC 3516): may hold NUL; only APPEND's message may be one */
	const char *s; /* atom / string bytes (not NUL-terminated; strings may hold NUL) */
	size_t len;
	struct imap_arg *list; /* IMAP_ARG_LIST: the children */
	size_t n;
};

struct imap_args {
	struct imap_arg *v; /* top-level arguments */
	size_t n;
	struct imap_arg *pool; /* owned */
	size_t used, cap;
};

/*
 * Parses data[0..len) (a complete command as assembled by the reader, or any buffer of
 * the same wire form; it is modified: quoted strings are unescaped in place) into args.
 * Returns 0, or -EINVAL with *error_r naming the problem (unbalanced parenthesis,
 * unterminated quote, bad literal, NUL or CR/LF outside a literal, too deep, too many).
 * args must be freed with imap_args_free (also after an error).
 */
int imap_parse(char *data, size_t len, struct imap_args *args, const char **error_r);
void imap_args_free(struct imap_args *args);

/* Convenience: true when arg is an atom equal to word (ASCII case-insensitive). */
bool imap_arg_is(const struct imap_arg *arg, const char *word);
/* An astring (atom or string) as a new NUL-terminated string, or NULL when arg is not one
 * or holds a NUL byte. */
char *imap_arg_dup(const struct imap_arg *arg);
/* True when arg is an atom or string (astring). */
bool imap_arg_is_astring(const struct imap_arg *arg);

/* ---- Sequence sets ---- */

/* "*" in a set: 0 is never a number there (nz-number), and 4294967295 is one. */
#define IMAP_SEQ_STAR 0

struct imap_range {
	/* Inclusive; IMAP_SEQ_STAR stands for "*". first <= last for two numbers; a "*"
	 * is always in last (unless both are "*"), as its value is known only at use. */
	uint32_t first, last;
};

struct imap_seqset {
	struct imap_range *r;
	size_t n;
	bool dollar; /* "$" (SEARCHRES) */
};

/* Parses "1,3:5,7:*" (a "*" becomes IMAP_SEQ_STAR, never a number). 0 or -EINVAL. At
 * most 10000 ranges. */
int imap_seqset_parse(const char *s, size_t len, struct imap_seqset *set);
void imap_seqset_free(struct imap_seqset *set);
/* v, or star when v is IMAP_SEQ_STAR. */
uint32_t imap_seq_resolve(uint32_t v, uint32_t star);
/* True when v is in the set; star is the value "*" stands for (RFC 9051 seq-range: n:*
 * is every value between n and star, in either order). */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t v, uint32_t star);

#endif
