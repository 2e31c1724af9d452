/*
 * Pure helpers of the HTTPS side: no I/O, no conn, so they are unit-tested on their own
 * (tests/unit/server/https/test_https_text.c) and fuzzed.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "server/https/https_private.h"

int https_xml_escape(struct buf *out, const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)text[i];
		const char *rep = NULL;
		switch (ch) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&apos;";
			break;
		default:
			/* XML 1.0 has no way to write these, not even as references. */
			if ((ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') || ch == 0x7f)
				rep = "\xef\xbf\xbd";
			break;
		}
		int r = rep != NULL ? buf_append_str(out, rep) : buf_append(out, &text[i], 1);
		if (r < 0)
			return r;
	}
	return 0;
}

/* atext of RFC 5322 (the dot-atom's characters), as the store accepts them. */
static bool local_char(unsigned char ch)
{
	return isalnum(ch) || (ch != '\0' && strchr("!#$%&'*+-/=?^_`{|}~.", ch) != NULL);
}

bool https_address_valid(const char *addr, size_t len)
{
	const char *at = NULL;
	if (len == 0 || len > 254)
		return false;
	for (size_t i = 0; i < len; i++)
		if (addr[i] == '@')
			at = &addr[i];
	if (at == NULL || at == addr || at - addr > 64)
		return false;
	for (const char *p = addr; p < at; p++) {
		if (!local_char((unsigned char)*p))
			return false;
		if (*p == '.' && (p == addr || p + 1 == at || p[1] == '.'))
			return false;
	}
	const char *label = at + 1, *end = addr + len;
	if (label == end)
		return false;
	for (const char *p = label;; p++) {
		if (p == end || *p == '.') {
			size_t n = (size_t)(p - label);
			if (n == 0 || n > 63 || label[0] == '-' || p[-1] == '-')
				return false;
			if (p == end)
				return true;
			label = p + 1;
		} else if (!isalnum((unsigned char)*p) && *p != '-') {
			return false;
		}
	}
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)tolower((unsigned char)ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Decodes one form-encoded component of len bytes into out. */
static int form_decode(const char *in, size_t len, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = in[i];
		if (ch == '+') {
			ch = ' ';
		} else if (ch == '%') {
			if (i + 2 >= len)
				return -EINVAL;
			int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
			if (h < 0 || l < 0)
				return -EINVAL;
			ch = (char)(h * 16 + l);
			i += 2;
		}
		if (ch == '\0' || o + 1 >= outlen)
			return -EINVAL;
		out[o++] = ch;
	}
	out[o] = '\0';
	return 0;
}

int https_query_param(const char *query, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name);
	if (query == NULL)
		return 0;
	const char *p = query;
	while (*p != '\0') {
		const char *amp = strchr(p, '&');
		size_t plen = amp != NULL ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', plen);
		size_t klen = eq != NULL ? (size_t)(eq - p) : plen;
		if (klen == nlen && strncasecmp(p, name, nlen) == 0) {
			const char *v = eq != NULL ? eq + 1 : p + plen;
			size_t vlen = eq != NULL ? plen - klen - 1 : 0;
			return form_decode(v, vlen, out, outlen) < 0 ? -EINVAL : 1;
		}
		p += plen;
		if (*p == '&')
			p++;
	}
	return 0;
}

void https_query_names(const char *query, char *out, size_t outlen)
{
	char names[256];
	size_t n = 0;
	if (query == NULL || *query == '\0') {
		snprintf(out, outlen, "-");
		return;
	}
	for (const char *p = query; *p != '\0' && n + 1 < sizeof(names);) {
		size_t plen = strcspn(p, "&");
		size_t klen = strcspn(p, "=&");
		if (klen > plen)
			klen = plen;
		if (n > 0 && n + 1 < sizeof(names))
			names[n++] = ',';
		size_t take = klen < sizeof(names) - 1 - n ? klen : sizeof(names) - 1 - n;
		memcpy(names + n, p, take);
		n += take;
		p += plen;
		if (*p == '&')
			p++;
	}
	log_escape(out, outlen, names, n);
}

int https_pox_email(const char *body, size_t len, const char **at_r, size_t *len_r)
{
	static const char tag[] = "EMailAddress";
	const size_t tlen = sizeof(tag) - 1;
	const char *end = body + len;
	for (const char *p = body; p < end; p++) {
		if (*p != '<')
			continue;
		/* <EMailAddress> or <prefix:EMailAddress> (attributes are not expected). */
		const char *name = p + 1;
		const char *gt = memchr(name, '>', (size_t)(end - name));
		if (gt == NULL)
			return -ENOENT;
		const char *colon = memchr(name, ':', (size_t)(gt - name));
		if (colon != NULL)
			name = colon + 1;
		if ((size_t)(gt - name) != tlen || memcmp(name, tag, tlen) != 0)
			continue;
		const char *v = gt + 1;
		const char *lt = memchr(v, '<', (size_t)(end - v));
		if (lt == NULL)
			return -ENOENT;
		while (v < lt && isspace((unsigned char)*v))
			v++;
		while (lt > v && isspace((unsigned char)lt[-1]))
			lt--;
		*at_r = v;
		*len_r = (size_t)(lt - v);
		return 0;
	}
	return -ENOENT;
}
