/*
 * The RFC 8970 preview of a message: the start of what its reader would see first, as
 * plain UTF-8 text of at most STORE_PREVIEW_CHARS characters, computed once at delivery.
 *
 * From a text part's decoded text: in html, tags and the contents of head, style and
 * script are dropped and character references decoded; in plain text, quoted lines
 * ("> ...") and everything after a signature separator ("-- ") are left out. Runs of white
 * space and control characters become one space; bytes that are not UTF-8 are dropped.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "storage/store_backend.h"

struct preview {
	struct buf out;
	size_t chars;
	bool space; /* a space is owed before the next character */
};

static bool preview_full(const struct preview *p)
{
	return p->chars >= STORE_PREVIEW_CHARS;
}

static void put_space(struct preview *p)
{
	if (p->out.len > 0)
		p->space = true;
}

/* One code point. */
static void put_cp(struct preview *p, uint32_t cp)
{
	if (preview_full(p))
		return;
	if (cp <= 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || cp == 0xa0 ||
	    (cp >= 0x2000 && cp <= 0x200b) || cp == 0x2028 || cp == 0x2029 || cp == 0xfeff) {
		put_space(p);
		return;
	}
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return;
	if (p->space) {
		buf_append(&p->out, " ", 1);
		p->chars++;
		p->space = false;
		if (preview_full(p))
			return;
	}
	char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_append(&p->out, u, n);
	p->chars++;
}

/* Decodes the UTF-8 sequence at s[0..len): its length (0 for an invalid byte, which is
 * then skipped) and *cp. */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t v, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		n = 2, v = c & 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3, v = c & 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min)
		return 0;
	*cp = v;
	return n;
}

/* Text to the preview, every code point through put_cp. */
static void put_text(struct preview *p, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	while (i < len && !preview_full(p)) {
		uint32_t cp;
		size_t n = utf8_next(u + i, len - i, &cp);
		if (n == 0) {
			i++;
			continue;
		}
		put_cp(p, cp);
		i += n;
	}
}

static void plain(struct preview *p, const char *text, size_t len)
{
	size_t i = 0;
	while (i < len && !preview_full(p)) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t end = nl != NULL ? (size_t)(nl - text) : len;
		size_t l = end - i;
		if (l > 0 && text[i + l - 1] == '\r')
			l--;
		if (l == 3 && memcmp(text + i, "-- ", 3) == 0)
			break; /* a signature follows (RFC 3676 4.3) */
		if (l > 0 && text[i] != '>')
			put_text(p, text + i, l);
		put_space(p);
		i = end + 1;
	}
}

/* A character reference (&name; or &#n; / &#xh;) at s[0..len), s[0] == '&': its length,
 * *cp set, or 0 when it is none of those known. */
static size_t html_ref(const char *s, size_t len, uint32_t *cp)
{
	static const struct {
		const char *name;
		uint32_t cp;
	} names[] = {{"amp", '&'},       {"lt", '<'},       {"gt", '>'},       {"quot", '"'},
	             {"apos", '\''},     {"nbsp", ' '},     {"mdash", 0x2014}, {"ndash", 0x2013},
	             {"hellip", 0x2026}, {"copy", 0xa9},    {"rsquo", 0x2019}, {"lsquo", 0x2018},
	             {"rdquo", 0x201d},  {"ldquo", 0x201c}, {"euro", 0x20ac},  {"eacute", 0xe9},
	             {"egrave", 0xe8},   {"ecirc", 0xea},   {"agrave", 0xe0},  {"aacute", 0xe1},
	             {"auml", 0xe4},     {"ouml", 0xf6},    {"uuml", 0xfc},    {"Auml", 0xc4},
	             {"Ouml", 0xd6},     {"Uuml", 0xdc},    {"szlig", 0xdf},   {"ccedil", 0xe7},
	             {"ntilde", 0xf1},   {"iacute", 0xed},  {"oacute", 0xf3},  {"uacute", 0xfa}};
	const char *semi = memchr(s, ';', len < 12 ? len : 12);
	if (semi == NULL)
		return 0;
	size_t n = (size_t)(semi - s) + 1;
	if (s[1] == '#') {
		bool hex = n > 3 && (s[2] == 'x' || s[2] == 'X');
		uint32_t v = 0;
		size_t d = hex ? 3 : 2;
		if (d >= n - 1)
			return 0;
		for (; d < n - 1; d++) {
			char c = s[d];
			unsigned dv;
			if (c >= '0' && c <= '9')
				dv = (unsigned)(c - '0');
			else if (hex && c >= 'a' && c <= 'f')
				dv = (unsigned)(c - 'a' + 10);
			else if (hex && c >= 'A' && c <= 'F')
				dv = (unsigned)(c - 'A' + 10);
			else
				return 0;
			v = v * (hex ? 16 : 10) + dv;
			if (v > 0x10ffff)
				return 0;
		}
		*cp = v;
		return n;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i].name) == n - 2 && memcmp(s + 1, names[i].name, n - 2) == 0) {
			*cp = names[i].cp;
			return n;
		}
	return 0;
}

/* Is the tag at s (after '<', with an optional '/') named name? */
static bool tag_is(const char *s, size_t len, const char *name)
{
	size_t n = strlen(name);
	if (len > 0 && s[0] == '/')
		s++, len--;
	return len > n && strncasecmp(s, name, n) == 0 &&
	       (s[n] == '>' || s[n] == ' ' || s[n] == '\t' || s[n] == '\r' || s[n] == '\n' ||
	        s[n] == '/');
}

static void html(struct preview *p, const char *text, size_t len)
{
	const char *skip_to = NULL; /* inside head, style or script: its end tag */
	size_t i = 0;
	while (i < len && !preview_full(p)) {
		char c = text[i];
		if (c == '<') {
			const char *gt = memchr(text + i, '>', len - i);
			if (gt == NULL)
				break;
			const char *t = text + i + 1;
			size_t tl = (size_t)(gt - t) + 1;
			if (skip_to != NULL) {
				if (t[0] == '/' && tag_is(t, tl, skip_to))
					skip_to = NULL;
			} else if (t[0] != '/' && tag_is(t, tl, "head")) {
				skip_to = "head";
			} else if (t[0] != '/' && tag_is(t, tl, "style")) {
				skip_to = "style";
			} else if (t[0] != '/' && tag_is(t, tl, "script")) {
				skip_to = "script";
			} else if (t[0] != '/' && tag_is(t, tl, "blockquote")) {
				skip_to = "blockquote"; /* quoted text, as "> " in plain text */
			} else {
				put_space(p); /* a tag may separate words: <br>, <p>, <td> */
			}
			i = (size_t)(gt - text) + 1;
			continue;
		}
		if (skip_to != NULL) {
			i++;
			continue;
		}
		uint32_t cp;
		size_t n = c == '&' ? html_ref(text + i, len - i, &cp) : 0;
		if (n > 0) {
			put_cp(p, cp);
			i += n;
			continue;
		}
		n = utf8_next((const unsigned char *)text + i, len - i, &cp);
		if (n == 0) {
			i++;
			continue;
		}
		put_cp(p, cp);
		i += n;
	}
}

char *store_preview_make(const char *text, size_t len, bool is_html)
{
	struct preview p = {.chars = 0};
	buf_init(&p.out, STORE_PREVIEW_CHARS * 4 + 8);
	if (is_html)
		html(&p, text, len);
	else
		plain(&p, text, len);
	char *out = p.out.len > 0 ? xstrndup(p.out.data, p.out.len) : NULL;
	buf_free(&p.out);
	return out;
}
