/*
 * MAIL / RCPT argument parsing. A cursor over a bounded buffer; every output is a fixed-size
 * array whose bound is checked before each write.
 */
#include "server/smtp/smtp_parse.h"

#include <errno.h>
#include <string.h>

#define R_MAIL_SYNTAX   "501 5.5.4 Syntax: MAIL FROM:<address>"
#define R_RCPT_SYNTAX   "501 5.5.4 Syntax: RCPT TO:<address>"
#define R_BAD_SENDER    "501 5.1.7 Bad sender address syntax"
#define R_BAD_RCPT      "501 5.1.3 Bad recipient address syntax"
#define R_NEED_UTF8     "553 5.6.7 Non-ASCII address requires SMTPUTF8"
#define R_UNKNOWN_PARAM "555 5.5.4 Unsupported parameter"
#define R_BAD_PARAM     "501 5.5.4 Bad parameter value"
#define R_DUP_PARAM     "501 5.5.4 Duplicate parameter"

struct cur {
	const char *p;
	const char *end;
};

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_atext(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static bool ieq(const char *a, size_t alen, const char *lit)
{
	size_t n = strlen(lit);
	if (alen != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower(a[i]) != lower(lit[i]))
			return false;
	return true;
}

/* Length of the well-formed UTF-8 sequence at p (bytes before end), or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	size_t avail = (size_t)(end - p);
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	size_t n;
	unsigned cp;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool smtp_utf8_valid(const char *in, size_t len)
{
	const unsigned char *p = (const unsigned char *)in, *end = p + len;
	while (p < end) {
		size_t n = utf8_seq(p, end);
		if (n == 0)
			return false;
		p += n;
	}
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool is_xchar(unsigned char c)
{
	return c >= 33 && c <= 126 && c != '+' && c != '=';
}

long smtp_xtext_decode(const char *in, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '+') {
			if (len - i < 3)
				return -EINVAL;
			int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return -EINVAL;
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else if (is_xchar(c)) {
			out[o++] = (char)c;
		} else {
			return -EINVAL;
		}
	}
	out[o] = '\0';
	return (long)o;
}

const char *smtp_notify_str(unsigned notify, char *out, size_t outlen)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {{SMTP_NOTIFY_NEVER, "NEVER"},
	             {SMTP_NOTIFY_SUCCESS, "SUCCESS"},
	             {SMTP_NOTIFY_FAILURE, "FAILURE"},
	             {SMTP_NOTIFY_DELAY, "DELAY"}};
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(notify & names[i].bit))
			continue;
		size_t n = strlen(names[i].name);
		if (o + n + 2 > outlen)
			break;
		if (o > 0)
			out[o++] = ',';
		memcpy(out + o, names[i].name, n);
		o += n;
		out[o] = '\0';
	}
	return out;
}

/* ---- paths ---- */

struct addr_out {
	char *buf;
	size_t len;
	size_t at;
	bool utf8;
	bool postmaster;
};

static bool put(struct addr_out *a, const char *s, size_t n)
{
	if (a->len + n > SMTP_PATH_MAX)
		return false;
	memcpy(a->buf + a->len, s, n);
	a->len += n;
	a->buf[a->len] = '\0';
	return true;
}

/* A domain or address literal at the cursor; stops before the first byte that cannot
 * belong to it. Appends it to a when a != NULL. */
static bool parse_domain(struct cur *c, struct addr_out *a)
{
	const char *start = c->p;
	if (c->p < c->end && *c->p == '[') {
		c->p++;
		const char *lit = c->p;
		while (c->p < c->end && *c->p != ']') {
			unsigned char ch = (unsigned char)*c->p;
			/* dcontent: %d33-90 / %d94-126 */
			if (ch < 33 || ch > 126 || ch == '[' || ch == '\\')
				return false;
			c->p++;
		}
		if (c->p >= c->end || c->p == lit)
			return false;
		c->p++;
		return a == NULL || put(a, start, (size_t)(c->p - start));
	}
	size_t label = 0;
	bool last_hyphen = false, any = false;
	while (c->p < c->end) {
		unsigned char ch = (unsigned char)*c->p;
		if (ch == '.') {
			if (label == 0 || last_hyphen)
				return false;
			label = 0;
			c->p++;
			continue;
		}
		size_t n = 1;
		if (ch >= 0x80) {
			n = utf8_seq((const unsigned char *)c->p, (const unsigned char *)c->end);
			if (n == 0)
				return false;
			if (a)
				a->utf8 = true;
		} else if (ch == '-') {
			if (label == 0)
				return false;
		} else if (!is_alpha(ch) && !is_digit(ch)) {
			break;
		}
		last_hyphen = ch == '-';
		label += n;
		any = true;
		if (label > 63)
			return false;
		c->p += n;
	}
	if (!any || label == 0 || last_hyphen || (size_t)(c->p - start) > 255)
		return false;
	return a == NULL || put(a, start, (size_t)(c->p - start));
}

static bool dot_string_ok(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '.') {
			if (s[i - 1] == '.')
				return false;
		} else if (!is_atext(ch) && ch < 0x80) {
			return false;
		}
	}
	return true;
}

static bool parse_local(struct cur *c, struct addr_out *a)
{
	const char *start = c->p;
	if (c->p < c->end && *c->p == '"') {
		char plain[SMTP_PATH_MAX + 1];
		size_t np = 0;
		bool needs_quotes = false;
		c->p++;
		for (;;) {
			if (c->p >= c->end)
				return false;
			unsigned char ch = (unsigned char)*c->p;
			if (ch == '"')
				break;
			if (ch == '\\') {
				if (c->end - c->p < 2)
					return false;
				unsigned char q = (unsigned char)c->p[1];
				if (q < 32 || q > 126)
					return false;
				needs_quotes = true;
				c->p += 2;
				continue;
			}
			size_t n = 1;
			if (ch >= 0x80) {
				n = utf8_seq((const unsigned char *)c->p,
				             (const unsigned char *)c->end);
				if (n == 0)
					return false;
				a->utf8 = true;
			} else if (ch < 32 || ch > 126) {
				return false;
			}
			if (np + n > SMTP_PATH_MAX)
				return false;
			memcpy(plain + np, c->p, n);
			np += n;
			c->p += n;
		}
		c->p++; /* closing quote */
		if (!needs_quotes && dot_string_ok(plain, np))
			return put(a, plain, np);
		return put(a, start, (size_t)(c->p - start));
	}
	bool prev_dot = true;
	while (c->p < c->end) {
		unsigned char ch = (unsigned char)*c->p;
		size_t n = 1;
		if (ch == '.') {
			if (prev_dot)
				return false;
			prev_dot = true;
			c->p++;
			continue;
		}
		if (ch >= 0x80) {
			n = utf8_seq((const unsigned char *)c->p, (const unsigned char *)c->end);
			if (n == 0)
				return false;
			a->utf8 = true;
		} else if (!is_atext(ch)) {
			break;
		}
		prev_dot = false;
		c->p += n;
	}
	if (c->p == start || prev_dot)
		return false;
	return put(a, start, (size_t)(c->p - start));
}

/* "<...>" at the cursor. null_ok: "<>" allowed; postmaster_ok: "<Postmaster>" allowed. */
static bool parse_path(struct cur *c, bool null_ok, bool postmaster_ok, struct addr_out *a)
{
	a->len = 0;
	a->at = 0;
	a->buf[0] = '\0';
	if (c->p >= c->end || *c->p != '<')
		return false;
	c->p++;
	if (c->p < c->end && *c->p == '>') {
		c->p++;
		return null_ok;
	}
	/* Source route: @a,@b: (dropped). */
	if (c->p < c->end && *c->p == '@') {
		for (;;) {
			c->p++; /* '@' */
			if (!parse_domain(c, NULL))
				return false;
			if (c->p < c->end && *c->p == ',') {
				c->p++;
				if (c->p >= c->end || *c->p != '@')
					return false;
				continue;
			}
			if (c->p < c->end && *c->p == ':') {
				c->p++;
				break;
			}
			return false;
		}
	}
	const char *local = c->p;
	if (!parse_local(c, a))
		return false;
	if (postmaster_ok && c->p < c->end && *c->p == '>' &&
	    ieq(local, (size_t)(c->p - local), "postmaster")) {
		c->p++;
		a->postmaster = true;
		return true;
	}
	if (c->p >= c->end || *c->p != '@')
		return false;
	a->at = a->len;
	if (!put(a, "@", 1))
		return false;
	c->p++;
	if (!parse_domain(c, a))
		return false;
	if (c->p >= c->end || *c->p != '>')
		return false;
	c->p++;
	return true;
}

/* "FROM:" / "TO:" and an optional space. */
static bool parse_keyword(struct cur *c, const char *kw)
{
	size_t n = strlen(kw);
	if ((size_t)(c->end - c->p) < n || !ieq(c->p, n, kw))
		return false;
	c->p += n;
	if (c->p < c->end && *c->p == ' ')
		c->p++;
	return true;
}

/* ---- parameters ---- */

struct param {
	const char *key;
	size_t klen;
	const char *val; /* NULL when there is no '=' */
	size_t vlen;
};

/* Next "keyword[=value]" after spaces: 1 found, 0 end, -1 syntax error. */
static int next_param(struct cur *c, struct param *p)
{
	while (c->p < c->end && *c->p == ' ')
		c->p++;
	if (c->p >= c->end)
		return 0;
	p->key = c->p;
	while (c->p < c->end && (is_alpha((unsigned char)*c->p) || is_digit((unsigned char)*c->p) ||
	                         (*c->p == '-' && c->p != p->key)))
		c->p++;
	p->klen = (size_t)(c->p - p->key);
	if (p->klen == 0)
		return -1;
	p->val = NULL;
	p->vlen = 0;
	if (c->p < c->end && *c->p == '=') {
		c->p++;
		p->val = c->p;
		while (c->p < c->end && *c->p != ' ') {
			unsigned char ch = (unsigned char)*c->p;
			if (ch < 33 || ch == 127 || ch == '=')
				return -1;
			c->p++;
		}
		p->vlen = (size_t)(c->p - p->val);
		if (p->vlen == 0)
			return -1;
	}
	if (c->p < c->end && *c->p != ' ')
		return -1;
	return 1;
}

static bool xtext_ok(const char *v, size_t n, size_t max_decoded)
{
	char tmp[SMTP_ORCPT_MAX + 1];
	if (n > SMTP_ORCPT_MAX)
		return false;
	long d = smtp_xtext_decode(v, n, tmp);
	return d >= 0 && (size_t)d <= max_decoded;
}

static int parse_size(const char *v, size_t n, uint64_t *out)
{
	if (n == 0 || n > 20)
		return -1;
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit((unsigned char)v[i]))
			return -1;
		unsigned d = (unsigned)(v[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			x = UINT64_MAX;
		else
			x = x * 10 + d;
	}
	*out = x;
	return 0;
}

int smtp_parse_mail(const char *arg, size_t len, struct smtp_mail_args *out, const char **reply_r)
{
	memset(out, 0, sizeof(*out));
	struct cur c = {arg, arg + len};
	if (!parse_keyword(&c, "FROM:")) {
		*reply_r = R_MAIL_SYNTAX;
		return -EINVAL;
	}
	struct addr_out a = {.buf = out->address};
	if (!parse_path(&c, true, false, &a) || (c.p < c.end && *c.p != ' ')) {
		*reply_r = R_BAD_SENDER;
		return -EINVAL;
	}
	out->at = a.at;
	out->utf8 = a.utf8;
	bool seen_auth = false;
	struct param p;
	int r;
	while ((r = next_param(&c, &p)) == 1) {
		bool dup = false;
		if (ieq(p.key, p.klen, "SIZE")) {
			dup = out->has_size;
			if (!p.val || parse_size(p.val, p.vlen, &out->size) < 0)
				goto bad_value;
			out->has_size = true;
		} else if (ieq(p.key, p.klen, "BODY")) {
			dup = out->body != SMTP_BODY_NONE;
			if (!p.val)
				goto bad_value;
			if (ieq(p.val, p.vlen, "7BIT"))
				out->body = SMTP_BODY_7BIT;
			else if (ieq(p.val, p.vlen, "8BITMIME"))
				out->body = SMTP_BODY_8BITMIME;
			else if (ieq(p.val, p.vlen, "BINARYMIME"))
				out->body = SMTP_BODY_BINARYMIME;
			else
				goto bad_value;
		} else if (ieq(p.key, p.klen, "SMTPUTF8")) {
			dup = out->smtputf8;
			if (p.val)
				goto bad_value;
			out->smtputf8 = true;
		} else if (ieq(p.key, p.klen, "REQUIRETLS")) {
			dup = out->requiretls;
			if (p.val)
				goto bad_value;
			out->requiretls = true;
		} else if (ieq(p.key, p.klen, "RET")) {
			dup = out->ret != SMTP_RET_NONE;
			if (!p.val)
				goto bad_value;
			if (ieq(p.val, p.vlen, "FULL"))
				out->ret = SMTP_RET_FULL;
			else if (ieq(p.val, p.vlen, "HDRS"))
				out->ret = SMTP_RET_HDRS;
			else
				goto bad_value;
		} else if (ieq(p.key, p.klen, "ENVID")) {
			dup = out->envid[0] != '\0';
			if (!p.val || p.vlen > SMTP_ENVID_MAX ||
			    !xtext_ok(p.val, p.vlen, SMTP_ENVID_MAX))
				goto bad_value;
			memcpy(out->envid, p.val, p.vlen);
			out->envid[p.vlen] = '\0';
		} else if (ieq(p.key, p.klen, "AUTH")) {
			/* RFC 4954 5: "<>" or an xtext mailbox; accepted and not trusted. */
			dup = seen_auth;
			if (!p.val || !xtext_ok(p.val, p.vlen, SMTP_ORCPT_MAX))
				goto bad_value;
			seen_auth = true;
		} else {
			*reply_r = R_UNKNOWN_PARAM;
			return -EINVAL;
		}
		if (dup) {
			*reply_r = R_DUP_PARAM;
			return -EINVAL;
		}
	}
	if (r < 0)
		goto bad_value;
	if (out->utf8 && !out->smtputf8) {
		*reply_r = R_NEED_UTF8;
		return -EINVAL;
	}
	return 0;
bad_value:
	*reply_r = R_BAD_PARAM;
	return -EINVAL;
}

/* ORCPT=addr-type;xtext (RFC 3461 4.2): addr-type is an atom, "rfc822" or "utf-8". */
static bool orcpt_ok(const char *v, size_t n)
{
	const char *semi = memchr(v, ';', n);
	if (!semi || semi == v)
		return false;
	for (const char *q = v; q < semi; q++)
		if (!is_atext((unsigned char)*q))
			return false;
	size_t rest = n - (size_t)(semi + 1 - v);
	return rest > 0 && xtext_ok(semi + 1, rest, SMTP_ORCPT_MAX);
}

static int parse_notify(const char *v, size_t n, unsigned *out)
{
	unsigned bits = 0;
	size_t i = 0;
	while (i <= n) {
		size_t j = i;
		while (j < n && v[j] != ',')
			j++;
		unsigned bit;
		if (ieq(v + i, j - i, "NEVER"))
			bit = SMTP_NOTIFY_NEVER;
		else if (ieq(v + i, j - i, "SUCCESS"))
			bit = SMTP_NOTIFY_SUCCESS;
		else if (ieq(v + i, j - i, "FAILURE"))
			bit = SMTP_NOTIFY_FAILURE;
		else if (ieq(v + i, j - i, "DELAY"))
			bit = SMTP_NOTIFY_DELAY;
		else
			return -1;
		if (bits & bit)
			return -1;
		bits |= bit;
		i = j + 1;
	}
	if ((bits & SMTP_NOTIFY_NEVER) && bits != SMTP_NOTIFY_NEVER)
		return -1;
	*out = bits;
	return 0;
}

int smtp_parse_rcpt(const char *arg, size_t len, bool utf8_ok, struct smtp_rcpt_args *out,
                    const char **reply_r)
{
	memset(out, 0, sizeof(*out));
	struct cur c = {arg, arg + len};
	if (!parse_keyword(&c, "TO:")) {
		*reply_r = R_RCPT_SYNTAX;
		return -EINVAL;
	}
	struct addr_out a = {.buf = out->address};
	if (!parse_path(&c, false, true, &a) || (c.p < c.end && *c.p != ' ')) {
		*reply_r = R_BAD_RCPT;
		return -EINVAL;
	}
	out->at = a.at;
	out->utf8 = a.utf8;
	out->postmaster = a.postmaster;
	struct param p;
	int r;
	while ((r = next_param(&c, &p)) == 1) {
		bool dup;
		if (ieq(p.key, p.klen, "NOTIFY")) {
			dup = out->notify != 0;
			if (!p.val || parse_notify(p.val, p.vlen, &out->notify) < 0)
				goto bad_value;
		} else if (ieq(p.key, p.klen, "ORCPT")) {
			dup = out->orcpt[0] != '\0';
			if (!p.val || p.vlen > SMTP_ORCPT_MAX || !orcpt_ok(p.val, p.vlen))
				goto bad_value;
			memcpy(out->orcpt, p.val, p.vlen);
			out->orcpt[p.vlen] = '\0';
		} else {
			*reply_r = R_UNKNOWN_PARAM;
			return -EINVAL;
		}
		if (dup) {
			*reply_r = R_DUP_PARAM;
			return -EINVAL;
		}
	}
	if (r < 0)
		goto bad_value;
	if (out->utf8 && !utf8_ok) {
		*reply_r = R_NEED_UTF8;
		return -EINVAL;
	}
	return 0;
bad_value:
	*reply_r = R_BAD_PARAM;
	return -EINVAL;
}
