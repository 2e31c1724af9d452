/*
 * Modified UTF-7 and mailbox name checks (see imap_mutf7.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "server/imap/imap_mutf7.h"

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64val(char c)
{
	const char *p = c != '\0' ? strchr(b64chars, c) : NULL;
	return p != NULL ? (int)(p - b64chars) : -1;
}

static void put_utf8(struct buf *o, uint32_t cp)
{
	char t[4];
	size_t n;
	if (cp < 0x80) {
		t[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		t[0] = (char)(0xc0 | (cp >> 6));
		t[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		t[0] = (char)(0xe0 | (cp >> 12));
		t[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		t[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		t[0] = (char)(0xf0 | (cp >> 18));
		t[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		t[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		t[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_append(o, t, n);
}

int imap_mutf7_to_utf8(const char *in, size_t len, char **out_r)
{
	struct buf o;
	buf_init(&o, len * 4 + 16);
	size_t i = 0;
	while (i < len) {
		unsigned char c = (unsigned char)in[i];
		if (c < 0x20 || c > 0x7e)
			goto bad;
		if (c != '&') {
			buf_append(&o, &in[i], 1);
			i++;
			continue;
		}
		i++;
		if (i < len && in[i] == '-') {
			buf_append(&o, "&", 1);
			i++;
			continue;
		}
		uint32_t bits = 0, hi = 0;
		unsigned nbits = 0;
		size_t start = i, units = 0;
		while (i < len && in[i] != '-') {
			int v = b64val(in[i]);
			if (v < 0)
				goto bad;
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			if (nbits >= 16) {
				nbits -= 16;
				uint32_t u = (bits >> nbits) & 0xffff;
				units++;
				if (hi != 0) {
					if (u < 0xdc00 || u > 0xdfff)
						goto bad;
					put_utf8(&o,
					         0x10000 + ((hi - 0xd800) << 10) + (u - 0xdc00));
					hi = 0;
				} else if (u >= 0xd800 && u <= 0xdbff) {
					hi = u;
				} else if (u >= 0xdc00 && u <= 0xdfff) {
					goto bad;
				} else {
					if (u >= 0x20 && u <= 0x7e)
						goto bad; /* printable ASCII must not be shifted */
					put_utf8(&o, u);
				}
			}
			i++;
		}
		if (i >= len || i == start || units == 0 || hi != 0 || nbits >= 6 ||
		    (bits & ((1u << nbits) - 1)) != 0)
			goto bad;
		i++; /* '-' */
		/* Two adjacent shifted runs ("&AOQ-&AOQ-") are not the canonical form. */
		if (i + 1 < len && in[i] == '&' && in[i + 1] != '-')
			goto bad;
	}
	*out_r = xstrndup(o.data != NULL ? o.data : "", o.len);
	buf_free(&o);
	return 0;
bad:
	buf_free(&o);
	return -EINVAL;
}

/* Decodes one UTF-8 sequence; returns its length or 0 when invalid. */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	size_t n;
	uint32_t min;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		*cp = s[0] & 0x1f;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		*cp = s[0] & 0x0f;
		min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		*cp = s[0] & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (s[k] & 0x3f);
	}
	if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return n;
}

bool imap_utf8_valid(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint32_t cp;
		size_t n = utf8_next((const unsigned char *)s + i, len - i, &cp);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

static void flush_shift(struct buf *o, const uint16_t *u, size_t n)
{
	uint32_t bits = 0;
	unsigned nbits = 0;
	buf_append(o, "&", 1);
	for (size_t k = 0; k < n; k++) {
		bits = (bits << 16) | u[k];
		nbits += 16;
		while (nbits >= 6) {
			nbits -= 6;
			buf_append(o, &b64chars[(bits >> nbits) & 0x3f], 1);
		}
	}
	if (nbits > 0)
		buf_append(o, &b64chars[(bits << (6 - nbits)) & 0x3f], 1);
	buf_append(o, "-", 1);
}

int imap_utf8_to_mutf7(const char *in, size_t len, char **out_r)
{
	struct buf o;
	buf_init(&o, len * 4 + 16);
	uint16_t *units = xmalloc((len * 2 + 1) * sizeof(*units));
	size_t nu = 0, i = 0;
	while (i < len) {
		uint32_t cp;
		size_t n = utf8_next((const unsigned char *)in + i, len - i, &cp);
		if (n == 0) {
			free(units);
			buf_free(&o);
			return -EINVAL;
		}
		i += n;
		if (cp >= 0x20 && cp <= 0x7e) {
			if (nu > 0) {
				flush_shift(&o, units, nu);
				nu = 0;
			}
			buf_append(&o, cp == '&' ? "&-" : (const char *)&in[i - 1],
			           cp == '&' ? 2 : 1);
			continue;
		}
		if (cp >= 0x10000) {
			cp -= 0x10000;
			units[nu++] = (uint16_t)(0xd800 + (cp >> 10));
			units[nu++] = (uint16_t)(0xdc00 + (cp & 0x3ff));
		} else {
			units[nu++] = (uint16_t)cp;
		}
	}
	if (nu > 0)
		flush_shift(&o, units, nu);
	free(units);
	*out_r = xstrndup(o.data != NULL ? o.data : "", o.len);
	buf_free(&o);
	return 0;
}

int imap_mailbox_name_check(const char *s, size_t len, char **name_r)
{
	if (len == 0 || len > IMAP_MAILBOX_NAME_MAX || !imap_utf8_valid(s, len))
		return -EINVAL;
	unsigned levels = 1;
	size_t level_start = 0;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)s[i] : '/';
		if (i < len && (c < 0x20 || c == 0x7f || c == '*' || c == '%'))
			return -EINVAL;
		if (c != '/')
			continue;
		size_t l = i - level_start;
		if (l == 0 || (l == 1 && s[level_start] == '.') ||
		    (l == 2 && s[level_start] == '.' && s[level_start + 1] == '.'))
			return -EINVAL;
		if (i < len && ++levels > IMAP_MAILBOX_LEVEL_MAX)
			return -EINVAL;
		level_start = i + 1;
	}
	char *name = xstrndup(s, len);
	if (strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '/'))
		memcpy(name, "INBOX", 5);
	*name_r = name;
	return 0;
}

int imap_mailbox_from_client(const char *s, size_t len, bool utf8, char **name_r)
{
	if (memchr(s, '\0', len) != NULL)
		return -EINVAL;
	if (utf8)
		return imap_mailbox_name_check(s, len, name_r);
	char *dec;
	if (imap_mutf7_to_utf8(s, len, &dec) < 0)
		return -EINVAL;
	int rc = imap_mailbox_name_check(dec, strlen(dec), name_r);
	free(dec);
	return rc;
}

char *imap_mailbox_to_client(const char *name, bool utf8)
{
	char *out;
	if (utf8 || imap_utf8_to_mutf7(name, strlen(name), &out) < 0)
		return xstrdup(name);
	return out;
}
