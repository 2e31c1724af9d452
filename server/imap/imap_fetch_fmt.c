/*
 * FETCH formatting (see imap_fetch_fmt.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
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

/* A header's unfolded value as an nstring (NIL when missing or empty). */
static void fmt_header(struct buf *o, const struct imap_mime *m, const struct imap_mime_part *p,
                       const char *name, bool utf8)
{
	const char *v;
	size_t vl;
	if (!imap_mime_header(m->data + p->hdr_off, p->hdr_len, name, &v, &vl)) {
		buf_append_str(o, "NIL");
		return;
	}
	char *u = imap_mime_unfold(v, vl);
	if (u[0] == '\0')
		buf_append_str(o, "NIL");
	else
		imap_fmt_cstring(o, u, utf8);
	free(u);
}

/* ---- Addresses ---- */

/* Copies s[0..len) without comments, collapsing white space; quotes are removed and their
 * content kept. */
static char *strip_phrase(const char *s, size_t len)
{
	char *o = xmalloc(len + 1);
	size_t n = 0;
	int depth = 0;
	bool q = false, space = false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (q) {
			if (c == '\\' && i + 1 < len)
				c = s[++i];
			else if (c == '"') {
				q = false;
				continue;
			}
			o[n++] = c;
			continue;
		}
		if (depth > 0) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (c == '(') {
			depth++;
			continue;
		}
		if (c == '"') {
			if (space && n > 0)
				o[n++] = ' ';
			space = false;
			q = true;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			space = true;
			continue;
		}
		if (space && n > 0)
			o[n++] = ' ';
		space = false;
		o[n++] = c;
	}
	o[n] = '\0';
	return o;
}

/* Finds the next top-level occurrence of any char in stops from i (outside quotes,
 * comments and angle brackets unless '>' is a stop). */
static size_t scan(const char *s, size_t len, size_t i, const char *stops)
{
	int depth = 0;
	bool q = false, angle = false;
	bool angle_nests = strchr(stops, '<') == NULL && strchr(stops, '>') == NULL;
	for (; i < len; i++) {
		char c = s[i];
		if (angle) {
			if (c == '>')
				angle = false;
			continue;
		}
		if (q) {
			if (c == '\\')
				i++;
			else if (c == '"')
				q = false;
			continue;
		}
		if (depth > 0) {
			if (c == '\\')
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (c == '"')
			q = true;
		else if (c == '(')
			depth++;
		else if (c == '<' && angle_nests)
			angle = true;
		else if (strchr(stops, c) != NULL && c != '\0')
			return i;
	}
	return len;
}

static void fmt_mailbox(struct buf *o, const char *s, size_t len, bool utf8)
{
	size_t lt = scan(s, len, 0, "<");
	char *name = NULL, *adl = NULL, *spec;
	if (lt < len) {
		size_t gt = scan(s, len, lt + 1, ">");
		name = strip_phrase(s, lt);
		const char *a = s + lt + 1;
		size_t al = gt - lt - 1;
		/* "<" may be the value's last byte: then a is just past it and al is 0. */
		size_t colon = al > 0 && a[0] == '@' ? scan(a, al, 0, ":") : al;
		if (colon < al) {
			adl = strip_phrase(a, colon);
			a += colon + 1;
			al -= colon + 1;
		}
		spec = strip_phrase(a, al);
	} else {
		spec = strip_phrase(s, len);
	}
	if (spec[0] == '\0' && (name == NULL || name[0] == '\0')) {
		free(name);
		free(adl);
		free(spec);
		return;
	}
	char *at = strrchr(spec, '@');
	buf_append(o, "(", 1);
	imap_fmt_cstring(o, name != NULL && name[0] != '\0' ? name : NULL, utf8);
	buf_append(o, " ", 1);
	imap_fmt_cstring(o, adl, utf8);
	buf_append(o, " ", 1);
	if (at != NULL) {
		imap_fmt_string(o, spec, (size_t)(at - spec), utf8);
		buf_append(o, " ", 1);
		imap_fmt_cstring(o, at + 1, utf8);
	} else {
		imap_fmt_cstring(o, spec, utf8);
		buf_append_str(o, " NIL");
	}
	buf_append(o, ")", 1);
	free(name);
	free(adl);
	free(spec);
}

void imap_fmt_addresses(struct buf *o, const char *val, size_t len, bool utf8)
{
	size_t start = o->len;
	buf_append(o, "(", 1);
	size_t mark = o->len;
	size_t i = 0;
	unsigned count = 0;
	while (i < len && count < 1000) {
		size_t e = scan(val, len, i, ",:;");
		if (e < len && val[e] == ':') {
			/* group: "name: a, b;" */
			char *g = strip_phrase(val + i, e - i);
			buf_append_str(o, "(NIL NIL ");
			imap_fmt_cstring(o, g, utf8);
			buf_append_str(o, " NIL)");
			free(g);
			i = e + 1;
			for (;;) {
				size_t e2 = scan(val, len, i, ",;");
				fmt_mailbox(o, val + i, e2 - i, utf8);
				count++;
				i = e2 + 1;
				if (e2 >= len || val[e2] == ';')
					break;
			}
			buf_append_str(o, "(NIL NIL NIL NIL)");
			continue;
		}
		fmt_mailbox(o, val + i, e - i, utf8);
		count++;
		i = e + 1;
	}
	if (o->len == mark) {
		o->len = start;
		o->data[start] = '\0';
		buf_append_str(o, "NIL");
		return;
	}
	buf_append(o, ")", 1);
}

static void fmt_addr_header(struct buf *o, const struct imap_mime *m,
                            const struct imap_mime_part *p, const char *name, bool utf8)
{
	const char *v;
	size_t vl;
	if (!imap_mime_header(m->data + p->hdr_off, p->hdr_len, name, &v, &vl)) {
		buf_append_str(o, "NIL");
		return;
	}
	imap_fmt_addresses(o, v, vl, utf8);
}

void imap_fmt_envelope(struct buf *o, const struct imap_mime *m, const struct imap_mime_part *p,
                       bool utf8)
{
	const char *h = m->data + p->hdr_off, *v;
	size_t hl = p->hdr_len, vl;
	buf_append(o, "(", 1);
	fmt_header(o, m, p, "Date", utf8);
	buf_append(o, " ", 1);
	fmt_header(o, m, p, "Subject", utf8);
	buf_append(o, " ", 1);
	fmt_addr_header(o, m, p, "From", utf8);
	/* Sender and Reply-To default to From (RFC 3501 7.4.2). */
	const char *dflt[] = {"Sender", "Reply-To"};
	for (size_t i = 0; i < 2; i++) {
		buf_append(o, " ", 1);
		bool has = imap_mime_header(h, hl, dflt[i], &v, &vl);
		char *u = has ? imap_mime_unfold(v, vl) : NULL;
		fmt_addr_header(o, m, p, u != NULL && u[0] != '\0' ? dflt[i] : "From", utf8);
		free(u);
	}
	const char *rest[] = {"To", "Cc", "Bcc"};
	for (size_t i = 0; i < 3; i++) {
		buf_append(o, " ", 1);
		fmt_addr_header(o, m, p, rest[i], utf8);
	}
	buf_append(o, " ", 1);
	fmt_header(o, m, p, "In-Reply-To", utf8);
	buf_append(o, " ", 1);
	fmt_header(o, m, p, "Message-ID", utf8);
	buf_append(o, ")", 1);
}

/* ---- BODYSTRUCTURE ---- */

/* "(\"name\" \"value\" ...)" from a parameter list, or NIL. */
static void fmt_params(struct buf *o, const char *params, size_t len, const char *dflt_charset,
                       bool utf8)
{
	size_t start = o->len, i = 0;
	unsigned n = 0;
	buf_append(o, "(", 1);
	while (i < len && n < 100) {
		while (i < len && (params[i] == ';' || params[i] == ' ' || params[i] == '\t' ||
		                   params[i] == '\r' || params[i] == '\n'))
			i++;
		size_t ns = i;
		while (i < len && params[i] != '=' && params[i] != ';')
			i++;
		size_t ne = i;
		while (ne > ns && (params[ne - 1] == ' ' || params[ne - 1] == '\t'))
			ne--;
		if (i >= len || params[i] != '=')
			continue;
		/* A value without a name ("; =x") is skipped with the others below: i must move
		 * past it, or the loop would stop at the '=' again and again. */
		char *name = ne > ns ? xstrndup(params + ns, ne - ns) : NULL;
		char *value = name != NULL ? imap_mime_param(params + ns, len - ns, name) : NULL;
		/* Skip the value we just read. */
		i++;
		while (i < len && (params[i] == ' ' || params[i] == '\t'))
			i++;
		if (i < len && params[i] == '"') {
			i++;
			while (i < len && params[i] != '"')
				i += params[i] == '\\' ? 2 : 1;
			i++;
		} else {
			while (i < len && params[i] != ';')
				i++;
		}
		if (value != NULL) {
			if (n > 0)
				buf_append(o, " ", 1);
			imap_fmt_cstring(o, name, utf8);
			buf_append(o, " ", 1);
			imap_fmt_cstring(o, value, utf8);
			n++;
		}
		free(name);
		free(value);
	}
	if (n == 0 && dflt_charset != NULL) {
		buf_append_str(o, "\"charset\" ");
		imap_fmt_cstring(o, dflt_charset, utf8);
		n++;
	}
	if (n == 0) {
		o->len = start;
		o->data[start] = '\0';
		buf_append_str(o, "NIL");
		return;
	}
	buf_append(o, ")", 1);
}

/* Extension data shared by multipart and leaf: disposition, language, location. */
static void fmt_ext_tail(struct buf *o, const struct imap_mime *m, const struct imap_mime_part *p,
                         bool utf8)
{
	const char *h = m->data + p->hdr_off, *v;
	size_t hl = p->hdr_len, vl;
	buf_append(o, " ", 1);
	if (imap_mime_header(h, hl, "Content-Disposition", &v, &vl)) {
		const char *semi = memchr(v, ';', vl);
		size_t dl = semi != NULL ? (size_t)(semi - v) : vl;
		char *d = imap_mime_unfold(v, dl);
		buf_append(o, "(", 1);
		imap_fmt_cstring(o, d, utf8);
		buf_append(o, " ", 1);
		if (semi != NULL)
			fmt_params(o, semi, vl - dl, NULL, utf8);
		else
			buf_append_str(o, "NIL");
		buf_append(o, ")", 1);
		free(d);
	} else {
		buf_append_str(o, "NIL");
	}
	buf_append(o, " ", 1);
	fmt_header(o, m, p, "Content-Language", utf8);
	buf_append(o, " ", 1);
	fmt_header(o, m, p, "Content-Location", utf8);
}

static uint64_t count_lines(const char *s, size_t len)
{
	uint64_t n = 0;
	const char *p = s, *e = s + len;
	while (p < e && (p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
		n++;
		p++;
	}
	if (len > 0 && s[len - 1] != '\n')
		n++;
	return n;
}

void imap_fmt_bodystructure(struct buf *o, const struct imap_mime *m,
                            const struct imap_mime_part *p, bool extended, bool utf8)
{
	char *type, *subtype;
	const char *params;
	size_t plen;
	imap_mime_content_type(m, p, &type, &subtype, &params, &plen);
	buf_append(o, "(", 1);
	if (p->multipart && p->n_children > 0) {
		for (size_t i = 0; i < p->n_children; i++)
			imap_fmt_bodystructure(o, m, &p->children[i], extended, utf8);
		buf_append(o, " ", 1);
		imap_fmt_cstring(o, subtype, utf8);
		if (extended) {
			buf_append(o, " ", 1);
			fmt_params(o, params, plen, NULL, utf8);
			fmt_ext_tail(o, m, p, utf8);
		}
		buf_append(o, ")", 1);
		free(type);
		free(subtype);
		return;
	}
	if (p->multipart) {
		/* A multipart without parts: describe it as an empty text part. */
		free(type);
		free(subtype);
		type = xstrdup("text");
		subtype = xstrdup("plain");
		params = "";
		plen = 0;
	}
	imap_fmt_cstring(o, type, utf8);
	buf_append(o, " ", 1);
	imap_fmt_cstring(o, subtype, utf8);
	buf_append(o, " ", 1);
	fmt_params(o, params, plen, p->text ? "us-ascii" : NULL, utf8);
	buf_append(o, " ", 1);
	fmt_header(o, m, p, "Content-ID", utf8);
	buf_append(o, " ", 1);
	fmt_header(o, m, p, "Content-Description", utf8);
	buf_append(o, " ", 1);
	const char *v;
	size_t vl;
	if (imap_mime_header(m->data + p->hdr_off, p->hdr_len, "Content-Transfer-Encoding", &v,
	                     &vl)) {
		char *e = imap_mime_unfold(v, vl);
		imap_fmt_cstring(o, e[0] != '\0' ? e : "7bit", utf8);
		free(e);
	} else {
		buf_append_str(o, "\"7bit\"");
	}
	buf_printf(o, " %zu", p->body_len);
	if (p->message && p->msg != NULL) {
		buf_append(o, " ", 1);
		imap_fmt_envelope(o, m, p->msg, utf8);
		buf_append(o, " ", 1);
		imap_fmt_bodystructure(o, m, p->msg, extended, utf8);
		buf_printf(o, " %llu",
		           (unsigned long long)count_lines(m->data + p->body_off, p->body_len));
	} else if (p->text) {
		buf_printf(o, " %llu",
		           (unsigned long long)count_lines(m->data + p->body_off, p->body_len));
	}
	if (extended) {
		buf_append(o, " ", 1);
		fmt_header(o, m, p, "Content-MD5", utf8);
		fmt_ext_tail(o, m, p, utf8);
	}
	buf_append(o, ")", 1);
	free(type);
	free(subtype);
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

int imap_section_extract(const struct imap_mime *m, const struct imap_section *sec, struct buf *o)
{
	const struct imap_mime_part *p = imap_mime_find(m, sec->path, sec->n_path);
	if (p == NULL)
		return -ENOENT;
	/* HEADER / TEXT / FIELDS of a part address the embedded message's header. */
	const struct imap_mime_part *msg = p;
	if (sec->n_path > 0 && sec->kind != IMAP_SEC_ALL && sec->kind != IMAP_SEC_MIME) {
		if (!p->message || p->msg == NULL)
			return -ENOENT;
		msg = p->msg;
	}
	struct buf tmp;
	buf_init(&tmp, o->max);
	const char *src;
	size_t slen;
	switch (sec->kind) {
	case IMAP_SEC_ALL:
		if (sec->n_path == 0) {
			src = m->data;
			slen = m->len;
		} else {
			src = m->data + p->body_off;
			slen = p->body_len;
		}
		break;
	case IMAP_SEC_HEADER:
		src = m->data + msg->hdr_off;
		slen = msg->hdr_len;
		break;
	case IMAP_SEC_MIME:
		src = m->data + p->hdr_off;
		slen = p->hdr_len;
		break;
	case IMAP_SEC_TEXT:
		src = m->data + msg->body_off;
		slen = msg->body_len;
		break;
	default:
		filter_header(m->data + msg->hdr_off, msg->hdr_len, sec, &tmp);
		src = tmp.data != NULL ? tmp.data : "";
		slen = tmp.len;
		break;
	}
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
	return 0;
}
