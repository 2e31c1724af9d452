/*
 * IMAP command assembly and argument parsing (see imap_parser.h for the contract).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"
#include "server/imap/imap_parser.h"

void imap_reader_init(struct imap_reader *r, uint64_t message_max)
{
	memset(r, 0, sizeof(*r));
	r->message_max = message_max;
	r->command_max = IMAP_COMMAND_MAX;
	buf_init(&r->cmd, (size_t)message_max + IMAP_COMMAND_MAX_EXTRA);
}

void imap_reader_set_max(struct imap_reader *r, size_t command_max)
{
	r->command_max = command_max;
}

bool imap_reader_over_max(const struct imap_reader *r, uint64_t size)
{
	return r->cmd.len > r->command_max || size > r->command_max - r->cmd.len;
}

void imap_reader_free(struct imap_reader *r)
{
	buf_free(&r->cmd);
}

void imap_reader_reset(struct imap_reader *r)
{
	/* Drop a big APPEND buffer instead of keeping it for an idle session. */
	if (r->cmd.cap > 16 * 1024)
		buf_free(&r->cmd);
	else
		buf_reset(&r->cmd);
	r->literal_left = 0;
	r->diverted = 0;
	r->in_literal = false;
}

/* Is the command being assembled an APPEND? (tag SP "APPEND" SP ...) */
static bool reader_is_append(const char *s, size_t len)
{
	const char *sp = memchr(s, ' ', len);
	if (sp == NULL)
		return false;
	size_t off = (size_t)(sp - s) + 1;
	return len - off >= 7 && strncasecmp(s + off, "APPEND ", 7) == 0;
}

bool imap_reader_is_append(const struct imap_reader *r)
{
	return r->cmd.len > 0 && reader_is_append(r->cmd.data, r->cmd.len);
}

/* Finds a literal announcement at the end of line: "{123}" or "{123+}". */
bool imap_literal_at_end(const char *line, size_t len, struct imap_literal *lit)
{
	if (len < 3 || line[len - 1] != '}')
		return false;
	size_t i = len - 1;
	bool nonsync = false;
	if (line[i - 1] == '+') {
		nonsync = true;
		i--;
	}
	size_t end = i;
	while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
		i--;
	if (i == 0 || i == end || line[i - 1] != '{' || end - i > 19)
		return false;
	uint64_t v = 0;
	for (size_t k = i; k < end; k++)
		v = v * 10 + (uint64_t)(line[k] - '0');
	lit->size = v;
	lit->nonsync = nonsync;
	return true;
}

int imap_reader_line(struct imap_reader *r, const char *line, size_t len,
                     struct imap_literal *lit_r)
{
	struct imap_literal lit = {0, false};
	if (r->in_literal) {
		imap_reader_reset(r);
		return -EINVAL;
	}
	/* The lines of any command count towards command_max (an APPEND's literals are
	 * what may be large, and they are spooled). */
	if (imap_reader_over_max(r, (uint64_t)len + 2) || buf_append(&r->cmd, line, len) < 0 ||
	    buf_append(&r->cmd, "\r\n", 2) < 0) {
		imap_reader_reset(r);
		return -ENOBUFS;
	}
	if (!imap_literal_at_end(line, len, &lit))
		return 1;
	*lit_r = lit;
	bool append = reader_is_append(r->cmd.data, r->cmd.len);
	uint64_t max = append ? r->message_max : IMAP_LITERAL_MAX_SMALL;
	if (lit.size > max || (!append && imap_reader_over_max(r, lit.size))) {
		imap_reader_reset(r);
		return -E2BIG;
	}
	if (r->cmd.len + r->diverted + lit.size > r->cmd.max) {
		imap_reader_reset(r);
		return -ENOBUFS;
	}
	if (lit.size == 0)
		return 0; /* the next line continues at once */
	r->in_literal = true;
	r->literal_left = lit.size;
	return 0;
}

int imap_reader_bytes(struct imap_reader *r, const char *data, size_t len)
{
	if (!r->in_literal || len > r->literal_left)
		return -EINVAL;
	if (buf_append(&r->cmd, data, len) < 0)
		return -ENOBUFS;
	r->literal_left -= len;
	if (r->literal_left == 0)
		r->in_literal = false;
	return 0;
}

size_t imap_reader_divert(struct imap_reader *r)
{
	/* The buffer ends in "{digits[+]}\r\n" (imap_reader_line just found it there). */
	size_t brace = r->cmd.len - 3;
	while (brace > 0 && r->cmd.data[brace] != '{')
		brace--;
	r->diverted += r->literal_left;
	r->literal_left = 0;
	r->in_literal = false;
	memcpy(r->cmd.data + brace, "{0}\r\n", 5);
	r->cmd.len = brace + 5;
	r->cmd.data[r->cmd.len] = '\0';
	return r->cmd.len;
}

/* ---- Parsing ---- */

struct pstate {
	char *p, *end;
	struct imap_args *args;
	size_t n_args; /* arguments parsed (the pool holds each twice, see parse_items) */
	const char *error;
};

/* A pool slot; the pool holds at most two per argument, so it is bounded too. */
static struct imap_arg *arg_slot(struct imap_args *a)
{
	if (a->used == a->cap) {
		/* Children are stored as index ranges while parsing, so growing is safe. */
		a->cap = a->cap == 0 ? 32 : a->cap * 2;
		a->pool = xreallocarray(a->pool, a->cap, sizeof(*a->pool));
	}
	struct imap_arg *arg = &a->pool[a->used++];
	memset(arg, 0, sizeof(*arg));
	return arg;
}

static struct imap_arg *arg_new(struct pstate *st)
{
	if (st->n_args >= IMAP_PARSE_MAX_ARGS) {
		st->error = "too many arguments";
		return NULL;
	}
	st->n_args++;
	return arg_slot(st->args);
}

static bool is_atom_char(unsigned char c)
{
	/* ASTRING-CHAR: atom-specials are excluded but for \ (flags are atoms here), % and *
	 * (LIST patterns); "]" (resp-specials) is allowed, as in an astring. Commands that
	 * take a narrower atom check it themselves (flag keywords refuse "]"). */
	if (c <= 0x20 || c == 0x7f)
		return false;
	return c != '(' && c != ')' && c != '{' && c != '"';
}

/* Is start..p a fetch-att that takes a section, so that a "[" right after it opens one?
 * Elsewhere "[" is an ordinary atom character (RFC 3501 / 9051 formal syntax). */
static bool takes_section(const char *start, const char *p)
{
	static const char *const names[] = {"BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK",
	                                    "BINARY.SIZE"};
	size_t len = (size_t)(p - start);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len && strncasecmp(start, names[i], len) == 0)
			return true;
	return false;
}

/* Parses items until ')' (depth > 0) or end. Items are appended to the pool in order;
 * lists record their child range as [first index, n] then get fixed up. */
static int parse_items(struct pstate *st, unsigned depth, size_t *first_r, size_t *n_r);

static int parse_one(struct pstate *st, unsigned depth)
{
	char c = *st->p;
	if (c == '(') {
		if (depth + 1 > IMAP_PARSE_MAX_DEPTH) {
			st->error = "lists nested too deep";
			return -EINVAL;
		}
		st->p++;
		struct imap_arg *a = arg_new(st);
		if (a == NULL)
			return -EINVAL;
		size_t self = (size_t)(a - st->args->pool);
		size_t first, n;
		if (parse_items(st, depth + 1, &first, &n) < 0)
			return -EINVAL;
		if (st->p >= st->end || *st->p != ')') {
			st->error = "missing )";
			return -EINVAL;
		}
		st->p++;
		a = &st->args->pool[self];
		a->type = IMAP_ARG_LIST;
		a->s = (const char *)(uintptr_t)first; /* fixed up in imap_parse */
		a->n = n;
		return 0;
	}
	if (c == '"') {
		char *w = ++st->p, *start = w;
		for (;;) {
			if (st->p >= st->end || *st->p == '\r' || *st->p == '\n' ||
			    *st->p == '\0') {
				st->error = "unterminated quoted string";
				return -EINVAL;
			}
			if (*st->p == '"')
				break;
			if (*st->p == '\\') {
				st->p++;
				if (st->p >= st->end || (*st->p != '\\' && *st->p != '"')) {
					st->error = "bad escape in quoted string";
					return -EINVAL;
				}
			}
			*w++ = *st->p++;
		}
		st->p++;
		struct imap_arg *a = arg_new(st);
		if (a == NULL)
			return -EINVAL;
		a->type = IMAP_ARG_STRING;
		a->s = start;
		a->len = (size_t)(w - start);
		return 0;
	}
	/* literal8 (RFC 3516 4.4): "~{n}", the same framing; only APPEND takes one. */
	bool literal8 = c == '~' && st->end - st->p > 1 && st->p[1] == '{';
	if (literal8) {
		st->p++;
		c = '{';
	}
	if (c == '{') {
		char *q = st->p + 1;
		uint64_t v = 0;
		unsigned digits = 0;
		while (q < st->end && *q >= '0' && *q <= '9' && digits < 20) {
			v = v * 10 + (uint64_t)(*q - '0');
			q++;
			digits++;
		}
		if (q < st->end && *q == '+')
			q++;
		if (digits == 0 || digits > 19 || st->end - q < 3 || q[0] != '}' || q[1] != '\r' ||
		    q[2] != '\n' || v > (uint64_t)(st->end - (q + 3))) {
			st->error = "bad literal";
			return -EINVAL;
		}
		struct imap_arg *a = arg_new(st);
		if (a == NULL)
			return -EINVAL;
		a->type = IMAP_ARG_STRING;
		a->literal = true;
		a->literal8 = literal8;
		a->s = q + 3;
		a->len = (size_t)v;
		st->p = q + 3 + v;
		return 0;
	}
	/* Atom; after BODY, BODY.PEEK, BINARY... a bracketed section that may hold spaces
	 * and parentheses (BODY[HEADER.FIELDS (From To)]<0.100>), anything but CR/LF/NUL. */
	char *start = st->p;
	while (st->p < st->end) {
		unsigned char ch = (unsigned char)*st->p;
		if (ch == '[' && takes_section(start, st->p)) {
			int nest = 0;
			while (st->p < st->end && *st->p != '\r' && *st->p != '\n' &&
			       *st->p != '\0') {
				if (*st->p == '[')
					nest++;
				else if (*st->p == ']' && --nest == 0)
					break;
				st->p++;
			}
			if (st->p >= st->end || *st->p != ']') {
				st->error = "missing ]";
				return -EINVAL;
			}
			st->p++;
			continue;
		}
		if (!is_atom_char(ch))
			break;
		st->p++;
	}
	if (st->p == start) {
		st->error = (unsigned char)*st->p < 0x20 ? "control character in command"
		                                         : "unexpected character";
		return -EINVAL;
	}
	struct imap_arg *a = arg_new(st);
	if (a == NULL)
		return -EINVAL;
	a->s = start;
	a->len = (size_t)(st->p - start);
	a->type = (a->len == 3 && strncasecmp(start, "NIL", 3) == 0) ? IMAP_ARG_NIL : IMAP_ARG_ATOM;
	return 0;
}

static int parse_items(struct pstate *st, unsigned depth, size_t *first_r, size_t *n_r)
{
	/* Children of one list must be contiguous in the pool, but a child list's own
	 * children are appended after it. So collect this level's item indexes first and
	 * then copy them into a contiguous run at the end. */
	size_t cap = 8, n = 0;
	size_t *idx = xmalloc(cap * sizeof(*idx));
	int rc = 0;
	for (;;) {
		while (st->p < st->end && *st->p == ' ')
			st->p++;
		if (st->p >= st->end || *st->p == ')')
			break;
		if (*st->p == '\r' && st->end - st->p == 2 && st->p[1] == '\n') {
			if (depth == 0)
				st->p = st->end;
			break; /* inside a list the caller reports the missing ')' */
		}
		if (*st->p == '\r' || *st->p == '\n') {
			st->error = "line ending in the middle of a command";
			rc = -EINVAL;
			goto out;
		}
		size_t at = st->args->used;
		if (parse_one(st, depth) < 0) {
			rc = -EINVAL;
			goto out;
		}
		if (n == cap) {
			cap *= 2;
			idx = xreallocarray(idx, cap, sizeof(*idx));
		}
		idx[n++] = at;
		if (st->p < st->end && *st->p != ' ' && *st->p != ')' && *st->p != '\r') {
			st->error = "missing space between arguments";
			rc = -EINVAL;
			goto out;
		}
	}
	*first_r = st->args->used;
	*n_r = n;
	for (size_t i = 0; i < n; i++) {
		struct imap_arg *copy = arg_slot(st->args);
		*copy = st->args->pool[idx[i]];
	}
out:
	free(idx);
	return rc;
}

static void fixup(struct imap_arg *pool, struct imap_arg *a)
{
	if (a->type != IMAP_ARG_LIST)
		return;
	size_t first = (size_t)(uintptr_t)a->s;
	a->s = NULL;
	a->list = a->n > 0 ? &pool[first] : NULL;
}

int imap_parse(char *data, size_t len, struct imap_args *args, const char **error_r)
{
	memset(args, 0, sizeof(*args));
	struct pstate st = {data, data + len, args, 0, NULL};
	size_t first, n;
	if (parse_items(&st, 0, &first, &n) < 0) {
		*error_r = st.error != NULL ? st.error : "syntax error";
		return -EINVAL;
	}
	if (st.p < st.end) {
		*error_r = "unbalanced )";
		return -EINVAL;
	}
	/* Pool growth is over: turn every list's child index into a pointer. */
	for (size_t i = 0; i < args->used; i++)
		fixup(args->pool, &args->pool[i]);
	args->v = n > 0 ? &args->pool[first] : NULL;
	args->n = n;
	return 0;
}

void imap_args_free(struct imap_args *args)
{
	free(args->pool);
	memset(args, 0, sizeof(*args));
}

bool imap_arg_is(const struct imap_arg *arg, const char *word)
{
	size_t wl = strlen(word);
	return arg != NULL && arg->type == IMAP_ARG_ATOM && arg->len == wl &&
	       strncasecmp(arg->s, word, wl) == 0;
}

bool imap_arg_is_astring(const struct imap_arg *arg)
{
	return arg != NULL && (arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_STRING);
}

char *imap_arg_dup(const struct imap_arg *arg)
{
	if (!imap_arg_is_astring(arg) || memchr(arg->s, '\0', arg->len) != NULL)
		return NULL;
	return xstrndup(arg->s, arg->len);
}

/* ---- Sequence sets ---- */

static int seq_number(const char *s, size_t len, size_t *i, uint32_t *v)
{
	if (*i < len && s[*i] == '*') {
		(*i)++;
		*v = IMAP_SEQ_STAR;
		return 0;
	}
	uint64_t x = 0;
	size_t start = *i;
	while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
		x = x * 10 + (uint64_t)(s[*i] - '0');
		if (x > UINT32_MAX)
			return -EINVAL;
		(*i)++;
	}
	if (*i == start || x == 0 || s[start] == '0')
		return -EINVAL;
	*v = (uint32_t)x;
	return 0;
}

int imap_seqset_parse(const char *s, size_t len, struct imap_seqset *set)
{
	memset(set, 0, sizeof(*set));
	if (len == 1 && s[0] == '$') {
		set->dollar = true;
		return 0;
	}
	size_t i = 0, cap = 0;
	while (i < len) {
		uint32_t a, b;
		if (seq_number(s, len, &i, &a) < 0)
			goto bad;
		b = a;
		if (i < len && s[i] == ':') {
			i++;
			if (seq_number(s, len, &i, &b) < 0)
				goto bad;
		}
		if (set->n >= 10000)
			goto bad;
		if (set->n == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			set->r = xreallocarray(set->r, cap, sizeof(*set->r));
		}
		/* "*" sorts last: what it stands for is known only when the set is used. */
		bool swap = a == IMAP_SEQ_STAR || (b != IMAP_SEQ_STAR && a > b);
		set->r[set->n].first = swap ? b : a;
		set->r[set->n].last = swap ? a : b;
		set->n++;
		if (i < len) {
			if (s[i] != ',' || i + 1 == len)
				goto bad;
			i++;
		}
	}
	if (set->n == 0)
		goto bad;
	return 0;
bad:
	imap_seqset_free(set);
	return -EINVAL;
}

void imap_seqset_free(struct imap_seqset *set)
{
	free(set->r);
	memset(set, 0, sizeof(*set));
}

uint32_t imap_seq_resolve(uint32_t v, uint32_t star)
{
	return v == IMAP_SEQ_STAR ? star : v;
}

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t v, uint32_t star)
{
	for (size_t i = 0; i < set->n; i++) {
		uint32_t a = imap_seq_resolve(set->r[i].first, star);
		uint32_t b = imap_seq_resolve(set->r[i].last, star);
		if (a > b) {
			uint32_t t = a;
			a = b;
			b = t;
		}
		if (v >= a && v <= b)
			return true;
	}
	return false;
}
