/*
 * SEARCH key parsing and evaluation (see imap_search.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/xmalloc.h"
#include "server/imap/imap_header.h"
#include "server/imap/imap_objectid.h"
#include "server/imap/imap_search.h"
#include "storage/store.h"

#define SEARCH_MAX_DEPTH 32

static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"};

int imap_parse_date(const char *s, size_t len, int64_t *t_r)
{
	size_t i = 0;
	int day = 0;
	while (i < len && i < 2 && s[i] >= '0' && s[i] <= '9')
		day = day * 10 + (s[i++] - '0');
	if (i == 0 || i >= len || s[i] != '-' || len - i != 9 || day < 1 || day > 31)
		return -EINVAL;
	i++;
	int mon = -1;
	for (int k = 0; k < 12; k++)
		if (strncasecmp(s + i, months[k], 3) == 0)
			mon = k;
	if (mon < 0 || s[i + 3] != '-')
		return -EINVAL;
	i += 4;
	int year = 0;
	for (int k = 0; k < 4; k++) {
		if (s[i + (size_t)k] < '0' || s[i + (size_t)k] > '9')
			return -EINVAL;
		year = year * 10 + (s[i + (size_t)k] - '0');
	}
	if (i + 4 != len)
		return -EINVAL;
	struct tm tm = {0};
	tm.tm_mday = day;
	tm.tm_mon = mon;
	tm.tm_year = year - 1900;
	*t_r = (int64_t)timegm(&tm);
	return 0;
}

struct sp {
	const struct imap_arg *a;
	size_t n, i;
	const char *error;
	bool needs_header, needs_modseq;
};

static const struct imap_arg *next(struct sp *p)
{
	return p->i < p->n ? &p->a[p->i++] : NULL;
}

/* An astring argument. NIL is an atom like any other there (RFC 3501 9: astring), so
 * SUBJECT NIL looks for the three letters. */
static char *next_str(struct sp *p)
{
	const struct imap_arg *a = next(p);
	if (a != NULL && a->type == IMAP_ARG_NIL)
		return xstrdup("NIL");
	char *s = imap_arg_dup(a);
	if (s == NULL)
		p->error = "missing or bad string argument";
	return s;
}

static int next_num(struct sp *p, uint64_t *v)
{
	const struct imap_arg *a = next(p);
	if (a == NULL || a->type != IMAP_ARG_ATOM || a->len == 0 || a->len > 19) {
		p->error = "number expected";
		return -EINVAL;
	}
	uint64_t x = 0;
	for (size_t i = 0; i < a->len; i++) {
		if (a->s[i] < '0' || a->s[i] > '9') {
			p->error = "number expected";
			return -EINVAL;
		}
		x = x * 10 + (uint64_t)(a->s[i] - '0');
	}
	*v = x;
	return 0;
}

static int next_date(struct sp *p, uint64_t *v)
{
	const struct imap_arg *a = next(p);
	int64_t t;
	if (!imap_arg_is_astring(a) || imap_parse_date(a->s, a->len, &t) < 0) {
		p->error = "bad date";
		return -EINVAL;
	}
	*v = (uint64_t)t;
	return 0;
}

static void key_free(struct imap_search_key *k)
{
	for (size_t i = 0; i < k->n_kids; i++)
		key_free(&k->kids[i]);
	free(k->kids);
	free(k->str);
	free(k->field);
	free(k->uids);
	imap_seqset_free(&k->set);
}

static int parse_key(struct sp *p, struct imap_search_key *k, unsigned depth);

static struct imap_search_key *add_kid(struct imap_search_key *k)
{
	k->kids = xreallocarray(k->kids, k->n_kids + 1, sizeof(*k->kids));
	struct imap_search_key *c = &k->kids[k->n_kids++];
	memset(c, 0, sizeof(*c));
	return c;
}

struct flagword {
	const char *word;
	enum imap_skey type;
	unsigned flag;
};

static const struct flagword flagwords[] = {
    {"ANSWERED", IMAP_SK_FLAG, STORE_ANSWERED},   {"DELETED", IMAP_SK_FLAG, STORE_DELETED},
    {"DRAFT", IMAP_SK_FLAG, STORE_DRAFT},         {"FLAGGED", IMAP_SK_FLAG, STORE_FLAGGED},
    {"SEEN", IMAP_SK_FLAG, STORE_SEEN},           {"UNANSWERED", IMAP_SK_NOFLAG, STORE_ANSWERED},
    {"UNDELETED", IMAP_SK_NOFLAG, STORE_DELETED}, {"UNDRAFT", IMAP_SK_NOFLAG, STORE_DRAFT},
    {"UNFLAGGED", IMAP_SK_NOFLAG, STORE_FLAGGED}, {"UNSEEN", IMAP_SK_NOFLAG, STORE_SEEN},
    {"OLD", IMAP_SK_NOFLAG, IMAP_SEARCH_RECENT},  {"NEW", IMAP_SK_NEW, 0},
    {"RECENT", IMAP_SK_FLAG, IMAP_SEARCH_RECENT}, {"ALL", IMAP_SK_ALL, 0},
};

static int parse_key(struct sp *p, struct imap_search_key *k, unsigned depth)
{
	const struct imap_arg *a = next(p);
	if (a == NULL) {
		p->error = "missing search key";
		return -EINVAL;
	}
	if (depth > SEARCH_MAX_DEPTH) {
		p->error = "search keys nested too deep";
		return -EINVAL;
	}
	if (a->type == IMAP_ARG_LIST) {
		struct sp sub = {a->list, a->n, 0, NULL, false, false};
		k->type = IMAP_SK_AND;
		if (a->n == 0) {
			p->error = "empty list";
			return -EINVAL;
		}
		while (sub.i < sub.n)
			if (parse_key(&sub, add_kid(k), depth + 1) < 0) {
				p->error = sub.error;
				return -EINVAL;
			}
		p->needs_header |= sub.needs_header;
		p->needs_modseq |= sub.needs_modseq;
		return 0;
	}
	if (a->type != IMAP_ARG_ATOM) {
		p->error = "search key expected";
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(flagwords) / sizeof(flagwords[0]); i++) {
		if (imap_arg_is(a, flagwords[i].word)) {
			k->type = flagwords[i].type;
			k->flag = flagwords[i].flag;
			return 0;
		}
	}
	if (imap_arg_is(a, "NOT")) {
		k->type = IMAP_SK_NOT;
		return parse_key(p, add_kid(k), depth + 1);
	}
	if (imap_arg_is(a, "OR")) {
		/* OR is a union, so an operand that is itself an OR joins this one: clients
		 * write long chains (OR a OR b OR c d, or OR OR OR a b c d), which become one
		 * n-ary OR instead of a nesting as deep as the chain is long. */
		k->type = IMAP_SK_OR;
		for (size_t need = 2; need > 0;) {
			const struct imap_arg *b = p->i < p->n ? &p->a[p->i] : NULL;
			if (b != NULL && b->type == IMAP_ARG_ATOM && imap_arg_is(b, "OR")) {
				p->i++;
				need++; /* one operand becomes two */
				continue;
			}
			if (parse_key(p, add_kid(k), depth + 1) < 0)
				return -EINVAL;
			need--;
		}
		return 0;
	}
	if (imap_arg_is(a, "KEYWORD") || imap_arg_is(a, "UNKEYWORD")) {
		k->type = imap_arg_is(a, "KEYWORD") ? IMAP_SK_KEYWORD : IMAP_SK_UNKEYWORD;
		return (k->str = next_str(p)) != NULL ? 0 : -EINVAL;
	}
	if (imap_arg_is(a, "LARGER") || imap_arg_is(a, "SMALLER")) {
		k->type = imap_arg_is(a, "LARGER") ? IMAP_SK_LARGER : IMAP_SK_SMALLER;
		return next_num(p, &k->num);
	}
	if (imap_arg_is(a, "MODSEQ")) {
		k->type = IMAP_SK_MODSEQ;
		p->needs_modseq = true;
		/* Optional entry name and type: MODSEQ "/flags/\\seen" all 5 */
		if (p->i < p->n && p->a[p->i].type == IMAP_ARG_STRING)
			p->i += 2;
		return next_num(p, &k->num);
	}
	static const struct {
		const char *w;
		enum imap_skey t;
	} dates[] = {{"BEFORE", IMAP_SK_BEFORE}, {"ON", IMAP_SK_ON},
	             {"SINCE", IMAP_SK_SINCE},   {"SENTBEFORE", IMAP_SK_SENTBEFORE},
	             {"SENTON", IMAP_SK_SENTON}, {"SENTSINCE", IMAP_SK_SENTSINCE}};
	for (size_t i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
		if (imap_arg_is(a, dates[i].w)) {
			k->type = dates[i].t;
			if (k->type >= IMAP_SK_SENTBEFORE)
				p->needs_header = true;
			return next_date(p, &k->num);
		}
	}
	/* SAVEDATESUPPORTED: every mailbox here keeps save dates (RFC 8514 4.2). */
	if (imap_arg_is(a, "SAVEDATESUPPORTED")) {
		k->type = IMAP_SK_ALL;
		return 0;
	}
	static const struct {
		const char *w;
		enum imap_skey t;
	} saved[] = {{"SAVEDBEFORE", IMAP_SK_SAVEDBEFORE},
	             {"SAVEDON", IMAP_SK_SAVEDON},
	             {"SAVEDSINCE", IMAP_SK_SAVEDSINCE}};
	for (size_t i = 0; i < sizeof(saved) / sizeof(saved[0]); i++) {
		if (imap_arg_is(a, saved[i].w)) {
			k->type = saved[i].t;
			p->needs_header = true;
			return next_date(p, &k->num);
		}
	}
	if (imap_arg_is(a, "EMAILID") || imap_arg_is(a, "THREADID")) {
		bool email = imap_arg_is(a, "EMAILID");
		k->type = email ? IMAP_SK_EMAILID : IMAP_SK_THREADID;
		p->needs_header = true;
		const struct imap_arg *v = next(p);
		/* RFC 8474 6: objectid is an atom of ALPHA / DIGIT / "_" / "-". */
		if (v == NULL || v->type != IMAP_ARG_ATOM || v->len == 0 || v->len > 255 ||
		    strspn(v->s,
		           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") <
		        v->len) {
			p->error = "bad object id";
			return -EINVAL;
		}
		uint64_t id = 0;
		if (!imap_objectid_parse(v->s, v->len, email ? 'M' : 'T', &id))
			k->str = xstrdup("?"); /* no id this server gave: matches nothing */
		k->num = id;
		return 0;
	}
	static const char *const hdrs[] = {"FROM", "TO", "CC", "BCC", "SUBJECT"};
	for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		if (imap_arg_is(a, hdrs[i])) {
			k->type = IMAP_SK_HEADER;
			k->field = xstrdup(hdrs[i]);
			p->needs_header = true;
			return (k->str = next_str(p)) != NULL ? 0 : -EINVAL;
		}
	}
	if (imap_arg_is(a, "HEADER")) {
		k->type = IMAP_SK_HEADER;
		p->needs_header = true;
		if ((k->field = next_str(p)) == NULL)
			return -EINVAL;
		return (k->str = next_str(p)) != NULL ? 0 : -EINVAL;
	}
	if (imap_arg_is(a, "BODY") || imap_arg_is(a, "TEXT")) {
		k->type = IMAP_SK_TEXT;
		k->body_only = imap_arg_is(a, "BODY");
		if ((k->str = next_str(p)) == NULL)
			return -EINVAL;
		if (k->str[0] == '\0')
			k->type = IMAP_SK_ALL; /* every message has the empty string in it */
		return 0;
	}
	bool uid = imap_arg_is(a, "UID");
	if (uid)
		a = next(p);
	if (a != NULL && a->type == IMAP_ARG_ATOM &&
	    imap_seqset_parse(a->s, a->len, &k->set) == 0) {
		k->type = k->set.dollar ? IMAP_SK_SAVED : uid ? IMAP_SK_UID : IMAP_SK_SEQ;
		return 0;
	}
	p->error = uid ? "bad UID set" : "unknown search key";
	return -EINVAL;
}

/* Header fields the store keeps decoded (imap_search_msg). */
static const char *decoded_field(const struct imap_search_msg *m, const char *field)
{
	static const char *const names[] = {"From", "To", "Cc", "Subject", "Message-ID"};
	const char *vals[] = {m->from, m->to, m->cc, m->subject, m->message_id};
	for (size_t i = 0; i < 5; i++)
		if (strcasecmp(field, names[i]) == 0)
			return vals[i] != NULL ? vals[i] : "";
	return NULL;
}

/* Keys the decoded fields cannot answer: other fields (and BCC); an empty string, which
 * asks whether the field is there at all; the SENT* keys, since the decoded date lost the
 * zone the day is counted in. */
static bool needs_raw(const struct imap_search_key *k)
{
	if (k->type == IMAP_SK_HEADER) {
		struct imap_search_msg probe = {0};
		if (decoded_field(&probe, k->field) == NULL || k->str[0] == '\0')
			return true;
	}
	if (k->type == IMAP_SK_SENTBEFORE || k->type == IMAP_SK_SENTON ||
	    k->type == IMAP_SK_SENTSINCE)
		return true;
	for (size_t i = 0; i < k->n_kids; i++)
		if (needs_raw(&k->kids[i]))
			return true;
	return false;
}

/* nz-number ":" nz-number, each at most 2^32-1. */
static bool parse_partial(const struct imap_arg *a, uint32_t *lo_r, uint32_t *hi_r)
{
	if (a->type != IMAP_ARG_ATOM)
		return false;
	uint64_t v[2] = {0, 0};
	size_t k = 0, digits = 0;
	for (size_t i = 0; i < a->len; i++) {
		char c = a->s[i];
		if (c == ':' && k == 0 && digits > 0) {
			k = 1;
			digits = 0;
			continue;
		}
		/* nz-number: no leading zero */
		if (c < '0' || c > '9' || (digits == 0 && c == '0'))
			return false;
		v[k] = v[k] * 10 + (uint64_t)(c - '0');
		if (v[k] > UINT32_MAX)
			return false;
		digits++;
	}
	if (k != 1 || digits == 0)
		return false;
	/* As in a sequence range, 10:1 is 1:10. */
	*lo_r = (uint32_t)(v[0] < v[1] ? v[0] : v[1]);
	*hi_r = (uint32_t)(v[0] < v[1] ? v[1] : v[0]);
	return true;
}

int imap_search_parse_return(const struct imap_arg *l, unsigned *opts_r, uint32_t *lo_r,
                             uint32_t *hi_r, const char **error_r)
{
	unsigned e = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (imap_arg_is(&l->list[i], "MIN")) {
			e |= IMAP_ES_MIN;
		} else if (imap_arg_is(&l->list[i], "MAX")) {
			e |= IMAP_ES_MAX;
		} else if (imap_arg_is(&l->list[i], "COUNT")) {
			e |= IMAP_ES_COUNT;
		} else if (imap_arg_is(&l->list[i], "ALL")) {
			e |= IMAP_ES_ALL;
		} else if (imap_arg_is(&l->list[i], "SAVE")) {
			e |= IMAP_ES_SAVE;
		} else if (imap_arg_is(&l->list[i], "UPDATE")) {
			e |= IMAP_ES_UPDATE;
		} else if (imap_arg_is(&l->list[i], "CONTEXT")) {
			e |= IMAP_ES_CONTEXT;
		} else if (imap_arg_is(&l->list[i], "PARTIAL")) {
			if (e & IMAP_ES_PARTIAL) {
				*error_r = "PARTIAL given twice";
				return -EINVAL;
			}
			if (i + 1 >= l->n || !parse_partial(&l->list[i + 1], lo_r, hi_r)) {
				*error_r = "PARTIAL needs a range such as 1:100";
				return -EINVAL;
			}
			i++;
			e |= IMAP_ES_PARTIAL;
		} else {
			*error_r = "unknown RETURN option";
			return -EINVAL;
		}
	}
	if ((e & IMAP_ES_ALL) && (e & IMAP_ES_PARTIAL)) {
		*error_r = "RETURN takes ALL or PARTIAL, not both";
		return -EINVAL;
	}
	/* RETURN () means ALL; RETURN (SAVE) alone saves and answers nothing
	 * (RFC 5182 2.1). UPDATE and CONTEXT alone ask for no data, but a client that keeps a
	 * live result needs it whole to start from. */
	if ((e & IMAP_ES_RESULT) == 0)
		e |= IMAP_ES_ALL;
	*opts_r = e;
	return 0;
}

void imap_esearch_fmt(struct buf *o, unsigned opts, const uint32_t *v, size_t n,
                      uint32_t partial_lo, uint32_t partial_hi)
{
	if ((opts & IMAP_ES_MIN) && n > 0)
		buf_printf(o, " MIN %u", v[0]);
	if ((opts & IMAP_ES_MAX) && n > 0)
		buf_printf(o, " MAX %u", v[n - 1]);
	if (opts & IMAP_ES_COUNT)
		buf_printf(o, " COUNT %zu", n);
	if ((opts & IMAP_ES_ALL) && n > 0) {
		buf_append_str(o, " ALL ");
		buf_append_uidset(o, v, n);
	}
	if (opts & IMAP_ES_PARTIAL) {
		buf_printf(o, " PARTIAL (%u:%u ", partial_lo, partial_hi);
		if (partial_lo > n) {
			buf_append_str(o, "NIL");
		} else {
			size_t end = partial_hi < n ? partial_hi : n;
			buf_append_uidset(o, v + partial_lo - 1, end - (partial_lo - 1));
		}
		buf_append_str(o, ")");
	}
}

int imap_search_parse(const struct imap_arg *args, size_t n, struct imap_search *s,
                      const char **error_r)
{
	memset(s, 0, sizeof(*s));
	s->root.type = IMAP_SK_AND;
	struct sp p = {args, n, 0, NULL, false, false};
	if (p.i < n && imap_arg_is(&args[p.i], "RETURN")) {
		p.i++;
		const struct imap_arg *l = next(&p);
		if (l == NULL || l->type != IMAP_ARG_LIST) {
			*error_r = "RETURN needs a list";
			return -EINVAL;
		}
		s->has_return = true;
		if (imap_search_parse_return(l, &s->esearch, &s->partial_lo, &s->partial_hi,
		                             error_r) < 0)
			return -EINVAL;
	}
	if (p.i < n && imap_arg_is(&args[p.i], "CHARSET")) {
		p.i++;
		const struct imap_arg *cs = next(&p);
		if (!imap_arg_is_astring(cs) ||
		    !((cs->len == 5 && strncasecmp(cs->s, "UTF-8", 5) == 0) ||
		      (cs->len == 8 && strncasecmp(cs->s, "US-ASCII", 8) == 0))) {
			*error_r = "[BADCHARSET (UTF-8 US-ASCII)] unsupported charset";
			return -ENOTSUP;
		}
	}
	if (p.i >= n) {
		*error_r = "missing search key";
		return -EINVAL;
	}
	while (p.i < p.n) {
		if (parse_key(&p, add_kid(&s->root), 0) < 0) {
			*error_r = p.error != NULL ? p.error : "bad search key";
			imap_search_free(s);
			return -EINVAL;
		}
	}
	s->needs_header = p.needs_header;
	s->needs_raw_header = needs_raw(&s->root);
	s->needs_modseq = p.needs_modseq;
	return 0;
}

void imap_search_free(struct imap_search *s)
{
	key_free(&s->root);
	memset(&s->root, 0, sizeof(s->root));
}

void imap_search_each_text(struct imap_search_key *k,
                           void (*fn)(struct imap_search_key *k, void *ctx), void *ctx)
{
	if (k->type == IMAP_SK_TEXT)
		fn(k, ctx);
	for (size_t i = 0; i < k->n_kids; i++)
		imap_search_each_text(&k->kids[i], fn, ctx);
}

static int cmp_uid(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return a < b ? -1 : a > b;
}

void imap_search_set_saved(struct imap_search_key *k, const uint32_t *uids, size_t n)
{
	if (k->type == IMAP_SK_SAVED) {
		free(k->uids);
		k->uids = xmalloc((n + 1) * sizeof(*k->uids));
		if (n > 0)
			memcpy(k->uids, uids, n * sizeof(*uids));
		k->n_uids = n;
		qsort(k->uids, n, sizeof(*k->uids), cmp_uid);
	}
	for (size_t i = 0; i < k->n_kids; i++)
		imap_search_set_saved(&k->kids[i], uids, n);
}

/* ASCII case-insensitive substring. */
static bool contains_ci(const char *h, size_t hl, const char *n)
{
	size_t nl = strlen(n);
	if (nl == 0)
		return true;
	for (size_t i = 0; i + nl <= hl; i++)
		if (strncasecmp(h + i, n, nl) == 0)
			return true;
	return false;
}

static bool has_keyword(const char *kws, const char *kw)
{
	size_t l = strlen(kw);
	const char *p = kws;
	while (p != NULL && *p != '\0') {
		const char *e = strchr(p, ' ');
		size_t wl = e != NULL ? (size_t)(e - p) : strlen(p);
		if (wl == l && strncasecmp(p, kw, l) == 0)
			return true;
		p = e != NULL ? e + 1 : NULL;
	}
	return false;
}

static int64_t day_of(int64_t t)
{
	return t - (((t % 86400) + 86400) % 86400);
}

/* Skips white space, line breaks and (nested) comments: CFWS of RFC 5322. */
static size_t skip_cfws(const char *s, size_t len, size_t i)
{
	unsigned depth = 0;
	while (i < len) {
		char c = s[i];
		if (depth > 0) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
		} else if (c == '(') {
			depth++;
		} else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
			break;
		}
		i++;
	}
	return i;
}

int imap_parse_sent_date(const char *s, size_t len, int64_t *day_r)
{
	size_t i = skip_cfws(s, len, 0);
	/* [day-of-week ","] */
	size_t w = i;
	while (w < len && ((s[w] >= 'A' && s[w] <= 'Z') || (s[w] >= 'a' && s[w] <= 'z')))
		w++;
	if (w > i) {
		i = skip_cfws(s, len, w);
		if (i >= len || s[i] != ',')
			return -EINVAL;
		i = skip_cfws(s, len, i + 1);
	}
	int day = 0;
	size_t d0 = i;
	while (i < len && i - d0 < 2 && s[i] >= '0' && s[i] <= '9')
		day = day * 10 + (s[i++] - '0');
	if (i == d0 || day < 1 || day > 31)
		return -EINVAL;
	i = skip_cfws(s, len, i);
	int mon = -1;
	if (len - i >= 3)
		for (int k = 0; k < 12; k++)
			if (strncasecmp(s + i, months[k], 3) == 0)
				mon = k;
	if (mon < 0)
		return -EINVAL;
	i = skip_cfws(s, len, i + 3);
	int year = 0;
	size_t y0 = i;
	while (i < len && i - y0 < 4 && s[i] >= '0' && s[i] <= '9')
		year = year * 10 + (s[i++] - '0');
	if (i - y0 < 2 || (i < len && s[i] >= '0' && s[i] <= '9'))
		return -EINVAL;
	/* Two- and three-digit years are obsolete forms (RFC 5322 4.3). */
	if (i - y0 == 2)
		year += year < 50 ? 2000 : 1900;
	else if (i - y0 == 3)
		year += 1900;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (day > mdays[mon] || (mon == 1 && day == 29 && !leap))
		return -EINVAL;
	/* The time and the zone that follow are ignored: RFC 3501 compares the date as
	 * written, in the sender's own zone. */
	struct tm tm = {0};
	tm.tm_mday = day;
	tm.tm_mon = mon;
	tm.tm_year = year - 1900;
	*day_r = (int64_t)timegm(&tm);
	return 0;
}

/* The day of the first Date: field, or false when there is none or it cannot be read. */
static bool sent_day(const struct imap_search_msg *m, int64_t *day_r)
{
	const char *v;
	size_t vl;
	if (m->hdr == NULL || !imap_header_find(m->hdr, m->hdr_len, "Date", &v, &vl))
		return false;
	return imap_parse_sent_date(v, vl, day_r) == 0;
}

/* Whether a field called name is there with s in its unfolded value; an empty s asks only
 * whether the field is there (RFC 3501 6.4.4 HEADER). Every field of that name counts. */
static bool raw_header_has(const struct imap_search_msg *m, const char *name, const char *s)
{
	const char *h = m->hdr, *v;
	size_t len = m->hdr_len, vl;
	while (h != NULL && imap_header_find(h, len, name, &v, &vl)) {
		if (s[0] == '\0')
			return true;
		char *u = imap_header_unfold(v, vl);
		bool hit = contains_ci(u, strlen(u), s);
		free(u);
		if (hit)
			return true;
		len -= (size_t)(v + vl - h);
		h = v + vl;
	}
	return false;
}

static bool in_uids(const struct imap_search_key *k, uint32_t uid)
{
	size_t lo = 0, hi = k->n_uids;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (k->uids[mid] == uid)
			return true;
		if (k->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

bool imap_search_seqs_valid(const struct imap_search_key *k, uint32_t n_msgs)
{
	if (k->type == IMAP_SK_SEQ && !k->set.dollar) {
		for (size_t i = 0; i < k->set.n; i++) {
			uint32_t f = imap_seq_resolve(k->set.r[i].first, n_msgs);
			uint32_t l = imap_seq_resolve(k->set.r[i].last, n_msgs);
			if (f == 0 || l == 0 || f > n_msgs || l > n_msgs)
				return false;
		}
	}
	for (size_t i = 0; i < k->n_kids; i++)
		if (!imap_search_seqs_valid(&k->kids[i], n_msgs))
			return false;
	return true;
}

bool imap_search_match(const struct imap_search_key *k, const struct imap_search_msg *m,
                       uint32_t max_seq, uint32_t max_uid)
{
	switch (k->type) {
	case IMAP_SK_ALL:
		return true;
	case IMAP_SK_AND:
		for (size_t i = 0; i < k->n_kids; i++)
			if (!imap_search_match(&k->kids[i], m, max_seq, max_uid))
				return false;
		return true;
	case IMAP_SK_OR:
		for (size_t i = 0; i < k->n_kids; i++)
			if (imap_search_match(&k->kids[i], m, max_seq, max_uid))
				return true;
		return false;
	case IMAP_SK_NOT:
		return !imap_search_match(&k->kids[0], m, max_seq, max_uid);
	case IMAP_SK_FLAG:
		return (m->flags & k->flag) != 0;
	case IMAP_SK_NOFLAG:
		return (m->flags & k->flag) == 0;
	case IMAP_SK_NEW:
		return (m->flags & (IMAP_SEARCH_RECENT | STORE_SEEN)) == IMAP_SEARCH_RECENT;
	case IMAP_SK_KEYWORD:
		return has_keyword(m->keywords, k->str);
	case IMAP_SK_UNKEYWORD:
		return !has_keyword(m->keywords, k->str);
	case IMAP_SK_LARGER:
		return m->size > k->num;
	case IMAP_SK_SMALLER:
		return m->size < k->num;
	case IMAP_SK_SAVEDBEFORE:
		return day_of(m->save_date) < (int64_t)k->num;
	case IMAP_SK_SAVEDON:
		return day_of(m->save_date) == (int64_t)k->num;
	case IMAP_SK_SAVEDSINCE:
		return day_of(m->save_date) >= (int64_t)k->num;
	case IMAP_SK_EMAILID:
		return k->str == NULL && m->email_id == k->num;
	case IMAP_SK_THREADID:
		return k->str == NULL && m->thread_id != 0 && m->thread_id == k->num;
	case IMAP_SK_BEFORE:
		return day_of(m->internal_date) < (int64_t)k->num;
	case IMAP_SK_ON:
		return day_of(m->internal_date) == (int64_t)k->num;
	case IMAP_SK_SINCE:
		return day_of(m->internal_date) >= (int64_t)k->num;
	case IMAP_SK_SENTBEFORE:
	case IMAP_SK_SENTON:
	case IMAP_SK_SENTSINCE: {
		int64_t d;
		if (!sent_day(m, &d))
			return false;
		if (k->type == IMAP_SK_SENTBEFORE)
			return d < (int64_t)k->num;
		if (k->type == IMAP_SK_SENTON)
			return d == (int64_t)k->num;
		return d >= (int64_t)k->num;
	}
	case IMAP_SK_SEQ:
		return imap_seqset_contains(&k->set, m->seq, max_seq);
	case IMAP_SK_UID:
		return imap_seqset_contains(&k->set, m->uid, max_uid);
	case IMAP_SK_SAVED:
		return in_uids(k, m->uid);
	case IMAP_SK_HEADER: {
		const char *dv = m->decoded ? decoded_field(m, k->field) : NULL;
		if (dv != NULL && k->str[0] != '\0')
			return contains_ci(dv, strlen(dv), k->str);
		return raw_header_has(m, k->field, k->str);
	}
	case IMAP_SK_TEXT:
		return in_uids(k, m->uid);
	case IMAP_SK_MODSEQ:
		return m->modseq >= k->num;
	}
	return false;
}

void imap_search_msg_stored(struct imap_search_msg *m, const struct store_msg *h)
{
	m->from = h->hdr_from;
	m->to = h->hdr_to;
	m->cc = h->hdr_cc;
	m->subject = h->hdr_subject;
	m->message_id = h->hdr_message_id;
	m->date = h->hdr_date;
	m->email_id = h->email_id;
	m->thread_id = h->thread_id;
	m->save_date = h->save_date;
}
