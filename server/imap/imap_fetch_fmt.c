/*
 * FETCH formatting (see imap_fetch_fmt.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <strings.h>

#include "common/xmalloc.h"
#include "server/imap/imap_fetch_fmt.h"

void imap_fmt_string(struct buf *o, const char *s, size_t len, bool utf8)
{
	if (s == NULL) {
		buf_append_str(o, "NIL");
		return;
	}
	bool quoted = len <= 1024;
	for (size_t i = 0; i < len && quoted; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\0' || c == '\r' || c == '\n' || (c >= 0x80 && !utf8))
			quoted = false;
	}
	if (!quoted) {
		buf_printf(o, "{%zu}\r\n", len);
		buf_append(o, s, len);
		return;
	}
	buf_append(o, "\"", 1);
	size_t run = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\') {
			buf_append(o, s + run, i - run);
			buf_append(o, "\\", 1);
			run = i;
		}
	}
	buf_append(o, s + run, len - run);
	buf_append(o, "\"", 1);
}

void imap_fmt_cstring(struct buf *o, const char *s, bool utf8)
{
	imap_fmt_string(o, s, s != NULL ? strlen(s) : 0, utf8);
}

/* ---- ENVELOPE ---- */

/* A stored string member as an nstring (NIL when missing). */
static void fmt_member(struct buf *o, JsonObject *obj, const char *name, bool utf8)
{
	imap_fmt_cstring(o, imap_bs_str(obj, name), utf8);
}

/* One element of an address array ([name, adl, mailbox, host]) as an nstring. */
static void fmt_addr_field(struct buf *o, JsonArray *a, unsigned i, bool utf8)
{
	JsonNode *n = i < json_array_get_length(a) ? json_array_get_element(a, i) : NULL;
	if (n != NULL && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING)
		imap_fmt_cstring(o, json_node_get_string(n), utf8);
	else
		buf_append_str(o, "NIL");
}

/* A stored address list as "((name adl mailbox host)...)", or NIL when it has none. */
static void fmt_addresses(struct buf *o, JsonArray *list, bool utf8)
{
	unsigned n = list != NULL ? json_array_get_length(list) : 0, done = 0;
	for (unsigned i = 0; i < n; i++) {
		JsonNode *e = json_array_get_element(list, i);
		if (!JSON_NODE_HOLDS_ARRAY(e))
			continue;
		JsonArray *a = json_node_get_array(e);
		buf_append(o, done == 0 ? "((" : "(", done == 0 ? 2 : 1);
		for (unsigned k = 0; k < 4; k++) {
			if (k > 0)
				buf_append(o, " ", 1);
			fmt_addr_field(o, a, k, utf8);
		}
		buf_append(o, ")", 1);
		done++;
	}
	buf_append_str(o, done > 0 ? ")" : "NIL");
}

void imap_fmt_envelope(struct buf *o, JsonObject *node, bool utf8)
{
	JsonObject *env = imap_bs_object(node, "envelope");
	buf_append(o, "(", 1);
	fmt_member(o, env, "date", utf8);
	buf_append(o, " ", 1);
	fmt_member(o, env, "subject", utf8);
	JsonArray *from = imap_bs_array(env, "from");
	buf_append(o, " ", 1);
	fmt_addresses(o, from, utf8);
	/* Sender and Reply-To default to From (RFC 3501 7.4.2): delivery leaves them out
	 * when their field is missing or empty. */
	static const char *const dflt[] = {"sender", "reply_to"};
	for (size_t i = 0; i < 2; i++) {
		buf_append(o, " ", 1);
		bool has = env != NULL && json_object_has_member(env, dflt[i]);
		fmt_addresses(o, has ? imap_bs_array(env, dflt[i]) : from, utf8);
	}
	static const char *const rest[] = {"to", "cc", "bcc"};
	for (size_t i = 0; i < 3; i++) {
		buf_append(o, " ", 1);
		fmt_addresses(o, imap_bs_array(env, rest[i]), utf8);
	}
	buf_append(o, " ", 1);
	fmt_member(o, env, "in_reply_to", utf8);
	buf_append(o, " ", 1);
	fmt_member(o, env, "message_id", utf8);
	buf_append(o, ")", 1);
}

/* ---- BODYSTRUCTURE ---- */

/* "(\"name\" \"value\" ...)" from a stored parameter list ([[name, value]...]), or NIL;
 * dflt_charset stands in for an empty list. */
static void fmt_params(struct buf *o, JsonArray *params, const char *dflt_charset, bool utf8)
{
	unsigned n = params != NULL ? json_array_get_length(params) : 0, done = 0;
	for (unsigned i = 0; i < n; i++) {
		JsonNode *e = json_array_get_element(params, i);
		if (!JSON_NODE_HOLDS_ARRAY(e) || json_array_get_length(json_node_get_array(e)) != 2)
			continue;
		JsonArray *a = json_node_get_array(e);
		buf_append(o, done == 0 ? "(" : " ", 1);
		fmt_addr_field(o, a, 0, utf8);
		buf_append(o, " ", 1);
		fmt_addr_field(o, a, 1, utf8);
		done++;
	}
	if (done == 0 && dflt_charset != NULL) {
		buf_append_str(o, "(\"charset\" ");
		imap_fmt_cstring(o, dflt_charset, utf8);
		done++;
	}
	buf_append_str(o, done > 0 ? ")" : "NIL");
}

/* Extension data shared by multipart and leaf: disposition, language, location. */
static void fmt_ext_tail(struct buf *o, JsonObject *p, bool utf8)
{
	JsonObject *d = imap_bs_object(p, "disposition");
	buf_append(o, " ", 1);
	if (d != NULL) {
		buf_append(o, "(", 1);
		fmt_member(o, d, "type", utf8);
		buf_append(o, " ", 1);
		fmt_params(o, imap_bs_array(d, "params"), NULL, utf8);
		buf_append(o, ")", 1);
	} else {
		buf_append_str(o, "NIL");
	}
	buf_append(o, " ", 1);
	fmt_member(o, p, "language", utf8);
	buf_append(o, " ", 1);
	fmt_member(o, p, "location", utf8);
}

static bool is_type(JsonObject *p, const char *type)
{
	const char *t = imap_bs_str(p, "type");
	return t != NULL && strcasecmp(t, type) == 0;
}

static void fmt_bodystructure(struct buf *o, JsonObject *p, bool extended, bool utf8,
                              unsigned depth)
{
	JsonArray *parts = imap_bs_array(p, "parts");
	unsigned n = parts != NULL ? json_array_get_length(parts) : 0;
	const char *type = imap_bs_str(p, "type"), *subtype = imap_bs_str(p, "subtype");
	buf_append(o, "(", 1);
	if (n > 0 && depth < IMAP_BS_MAX_DEPTH) {
		unsigned done = 0;
		for (unsigned i = 0; i < n; i++) {
			JsonNode *e = json_array_get_element(parts, i);
			if (!JSON_NODE_HOLDS_OBJECT(e))
				continue;
			fmt_bodystructure(o, json_node_get_object(e), extended, utf8, depth + 1);
			done++;
		}
		if (done == 0)
			buf_append_str(o, "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)");
		buf_append(o, " ", 1);
		imap_fmt_cstring(o, subtype != NULL ? subtype : "mixed", utf8);
		if (extended) {
			buf_append(o, " ", 1);
			fmt_params(o, imap_bs_array(p, "params"), NULL, utf8);
			fmt_ext_tail(o, p, utf8);
		}
		buf_append(o, ")", 1);
		return;
	}
	bool multipart = parts != NULL || is_type(p, "multipart");
	bool text = !multipart && is_type(p, "text");
	JsonObject *msg = depth < IMAP_BS_MAX_DEPTH ? imap_bs_object(p, "message") : NULL;
	if (multipart) {
		/* A multipart without parts: described as an empty text part. */
		buf_append_str(o, "\"text\" \"plain\" NIL");
	} else {
		imap_fmt_cstring(o, type != NULL ? type : "text", utf8);
		buf_append(o, " ", 1);
		imap_fmt_cstring(o, subtype != NULL ? subtype : "plain", utf8);
		buf_append(o, " ", 1);
		fmt_params(o, imap_bs_array(p, "params"), text ? "us-ascii" : NULL, utf8);
	}
	buf_append(o, " ", 1);
	fmt_member(o, p, "id", utf8);
	buf_append(o, " ", 1);
	fmt_member(o, p, "description", utf8);
	buf_append(o, " ", 1);
	const char *enc = imap_bs_str(p, "encoding");
	imap_fmt_cstring(o, enc != NULL ? enc : "7bit", utf8);
	int64_t size = imap_bs_int(p, "body_length");
	int64_t lines = imap_bs_int(p, "lines");
	buf_printf(o, " %lld", (long long)(size > 0 ? size : 0));
	if (msg != NULL) {
		buf_append(o, " ", 1);
		imap_fmt_envelope(o, msg, utf8);
		buf_append(o, " ", 1);
		fmt_bodystructure(o, msg, extended, utf8, depth + 1);
		buf_printf(o, " %lld", (long long)(lines > 0 ? lines : 0));
	} else if (text) {
		buf_printf(o, " %lld", (long long)(lines > 0 ? lines : 0));
	}
	if (extended) {
		buf_append(o, " ", 1);
		fmt_member(o, p, "md5", utf8);
		fmt_ext_tail(o, p, utf8);
	}
	buf_append(o, ")", 1);
}

void imap_fmt_bodystructure(struct buf *o, JsonObject *node, bool extended, bool utf8)
{
	fmt_bodystructure(o, node, extended, utf8, 0);
}

/* ---- Sections ---- */

void imap_section_free(struct imap_section *sec)
{
	for (size_t i = 0; i < sec->n_fields; i++)
		free(sec->fields[i]);
	free(sec->spec);
	memset(sec, 0, sizeof(*sec));
}

static int parse_u64(const char *s, size_t len, size_t *i, uint64_t *v)
{
	size_t st = *i;
	uint64_t x = 0;
	while (*i < len && s[*i] >= '0' && s[*i] <= '9' && *i - st < 19) {
		x = x * 10 + (uint64_t)(s[*i] - '0');
		(*i)++;
	}
	if (*i == st)
		return -EINVAL;
	*v = x;
	return 0;
}

int imap_section_parse(const char *s, size_t len, struct imap_section *sec)
{
	memset(sec, 0, sizeof(*sec));
	if (len < 2 || s[0] != '[')
		return -EINVAL;
	const char *close = memchr(s, ']', len);
	if (close == NULL)
		goto bad;
	size_t i = 1, end = (size_t)(close - s);
	sec->spec = xstrndup(s + 1, end - 1);
	/* Part numbers. */
	while (i < end && s[i] >= '1' && s[i] <= '9') {
		uint64_t v;
		if (parse_u64(s, end, &i, &v) < 0 || v > 100000 ||
		    sec->n_path == IMAP_SECTION_MAX_PATH)
			goto bad;
		sec->path[sec->n_path++] = (unsigned)v;
		if (i < end && s[i] == '.')
			i++;
		else
			break;
	}
	const char *rest = s + i;
	size_t rl = end - i;
	if (rl == 0) {
		if (i > 1 && s[i - 1] == '.')
			goto bad;
		sec->kind = IMAP_SEC_ALL;
	} else if (rl == 6 && strncasecmp(rest, "HEADER", 6) == 0) {
		sec->kind = IMAP_SEC_HEADER;
	} else if (rl == 4 && strncasecmp(rest, "TEXT", 4) == 0) {
		sec->kind = IMAP_SEC_TEXT;
	} else if (rl == 4 && strncasecmp(rest, "MIME", 4) == 0 && sec->n_path > 0) {
		sec->kind = IMAP_SEC_MIME;
	} else if (rl > 13 && strncasecmp(rest, "HEADER.FIELDS", 13) == 0) {
		size_t j = 13;
		sec->kind = IMAP_SEC_FIELDS;
		if (rl > 17 && strncasecmp(rest + 13, ".NOT", 4) == 0) {
			sec->kind = IMAP_SEC_FIELDS_NOT;
			j = 17;
		}
		if (j + 2 > rl || rest[j] != ' ' || rest[j + 1] != '(' || rest[rl - 1] != ')')
			goto bad;
		j += 2;
		while (j < rl - 1) {
			while (j < rl - 1 && rest[j] == ' ')
				j++;
			size_t fs = j;
			bool quoted = j < rl - 1 && rest[j] == '"';
			if (quoted)
				fs = ++j;
			while (j < rl - 1 && (quoted ? rest[j] != '"' : rest[j] != ' '))
				j++;
			if (j > fs) {
				if (sec->n_fields == IMAP_SECTION_MAX_FIELDS)
					goto bad;
				for (size_t k = fs; k < j; k++)
					if ((unsigned char)rest[k] <= 0x20 || rest[k] == ':' ||
					    rest[k] == 0x7f)
						goto bad;
				sec->fields[sec->n_fields++] = xstrndup(rest + fs, j - fs);
			}
			if (quoted)
				j++;
		}
		if (sec->n_fields == 0)
			goto bad;
	} else {
		goto bad;
	}
	/* Partial. */
	i = end + 1;
	if (i < len) {
		if (s[i] != '<')
			goto bad;
		i++;
		if (parse_u64(s, len, &i, &sec->p_off) < 0 || i >= len || s[i] != '.')
			goto bad;
		i++;
		if (parse_u64(s, len, &i, &sec->p_len) < 0 || i + 1 != len || s[i] != '>' ||
		    sec->p_len == 0)
			goto bad;
		sec->partial = true;
	}
	return 0;
bad:
	imap_section_free(sec);
	return -EINVAL;
}

static bool field_listed(const struct imap_section *sec, const char *name, size_t nl)
{
	for (size_t i = 0; i < sec->n_fields; i++)
		if (strlen(sec->fields[i]) == nl && strncasecmp(sec->fields[i], name, nl) == 0)
			return true;
	return false;
}

static void filter_header(const char *h, size_t hl, const struct imap_section *sec, struct buf *o)
{
	size_t i = 0;
	bool want = false;
	while (i < hl) {
		const char *e = memchr(h + i, '\n', hl - i);
		size_t le = e != NULL ? (size_t)(e - h) + 1 : hl;
		if (le - i <= 2 && (h[i] == '\r' || h[i] == '\n'))
			break; /* the blank line */
		if (h[i] != ' ' && h[i] != '\t') {
			const char *colon = memchr(h + i, ':', le - i);
			size_t nl = colon != NULL ? (size_t)(colon - (h + i)) : 0;
			while (nl > 0 && (h[i + nl - 1] == ' ' || h[i + nl - 1] == '\t'))
				nl--;
			bool listed = colon != NULL && field_listed(sec, h + i, nl);
			want = sec->kind == IMAP_SEC_FIELDS ? listed : !listed;
		}
		if (want)
			buf_append(o, h + i, le - i);
		i = le;
	}
	buf_append(o, "\r\n", 2);
}

int imap_section_range(const struct imap_bs *bs, const struct imap_section *sec, uint64_t size,
                       uint64_t *off_r, uint64_t *len_r)
{
	uint64_t off = 0, len = size;
	if (sec->n_path > 0 || sec->kind != IMAP_SEC_ALL) {
		JsonObject *p = bs != NULL && bs->root != NULL
		                    ? imap_bs_find(bs, sec->path, sec->n_path)
		                    : NULL;
		if (p == NULL)
			return -ENOENT;
		/* HEADER / TEXT / FIELDS of a part address the embedded message's header. */
		JsonObject *msg = p;
		if (sec->n_path > 0 && sec->kind != IMAP_SEC_ALL && sec->kind != IMAP_SEC_MIME) {
			msg = imap_bs_object(p, "message");
			if (msg == NULL)
				return -ENOENT;
		}
		bool ok;
		switch (sec->kind) {
		case IMAP_SEC_ALL:
			ok = imap_bs_range(p, false, &off, &len);
			break;
		case IMAP_SEC_MIME:
			ok = imap_bs_range(p, true, &off, &len);
			break;
		case IMAP_SEC_TEXT:
			ok = imap_bs_range(msg, false, &off, &len);
			break;
		default:
			ok = imap_bs_range(msg, true, &off, &len);
			break;
		}
		if (!ok || off > size)
			return -ENOENT;
		if (len > size - off)
			len = size - off;
	}
	/* Field lists are cut after filtering; every other range is cut here, so only the
	 * bytes the client asked for are read. */
	if (sec->partial && sec->kind != IMAP_SEC_FIELDS && sec->kind != IMAP_SEC_FIELDS_NOT) {
		if (sec->p_off >= len) {
			off += len;
			len = 0;
		} else {
			off += sec->p_off;
			len -= sec->p_off;
			if (len > sec->p_len)
				len = sec->p_len;
		}
	}
	*off_r = off;
	*len_r = len;
	return 0;
}

void imap_section_finish(const struct imap_section *sec, const char *data, size_t len,
                         struct buf *o)
{
	if (sec->kind != IMAP_SEC_FIELDS && sec->kind != IMAP_SEC_FIELDS_NOT) {
		buf_append(o, data, len);
		return;
	}
	struct buf tmp;
	buf_init(&tmp, o->max);
	filter_header(data, len, sec, &tmp);
	const char *src = tmp.data != NULL ? tmp.data : "";
	size_t slen = tmp.len;
	if (sec->partial) {
		if (sec->p_off >= slen) {
			slen = 0;
		} else {
			src += sec->p_off;
			slen -= (size_t)sec->p_off;
			if (slen > sec->p_len)
				slen = (size_t)sec->p_len;
		}
	}
	buf_append(o, src, slen);
	buf_free(&tmp);
}

void imap_fmt_date(struct buf *o, int64_t t)
{
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	buf_printf(o, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday, mon[tm.tm_mon],
	           tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}
