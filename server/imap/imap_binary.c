/*
 * Transfer decoding for BINARY. The two encodings MIME defines besides the identities are
 * decoded leniently, as readers of mail must be: a stray character in base64 or a broken
 * =X escape in quoted-printable is skipped or kept, never an error, because the client
 * asked for the content and the sender's mistakes are not its fault.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "server/imap/imap_binary.h"

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static void base64_decode(const char *data, size_t len, struct buf *out)
{
	unsigned acc = 0, bits = 0;
	char chunk[768];
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];
		if (c == '=')
			break;
		int v = b64_value(c);
		if (v < 0)
			continue;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			chunk[n++] = (char)((acc >> bits) & 0xff);
			if (n == sizeof(chunk)) {
				buf_append(out, chunk, n);
				n = 0;
			}
		}
	}
	buf_append(out, chunk, n);
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void qp_decode(const char *data, size_t len, struct buf *out)
{
	size_t i = 0;
	while (i < len) {
		/* One line (with its break) at a time: padding before the break goes. */
		const char *nl = memchr(data + i, '\n', len - i);
		size_t end = nl != NULL ? (size_t)(nl - data) : len;
		size_t text_end = end;
		if (text_end > i && data[text_end - 1] == '\r')
			text_end--;
		size_t trimmed = text_end;
		while (trimmed > i && (data[trimmed - 1] == ' ' || data[trimmed - 1] == '\t'))
			trimmed--;
		bool soft = trimmed > i && data[trimmed - 1] == '=';
		size_t stop = soft ? trimmed - 1 : trimmed;
		size_t k = i;
		while (k < stop) {
			const char *eq = memchr(data + k, '=', stop - k);
			size_t run = eq != NULL ? (size_t)(eq - (data + k)) : stop - k;
			buf_append(out, data + k, run);
			k += run;
			if (k >= stop)
				break;
			int hi = k + 1 < stop ? hex_value((unsigned char)data[k + 1]) : -1;
			int lo = k + 2 < stop ? hex_value((unsigned char)data[k + 2]) : -1;
			if (hi >= 0 && lo >= 0) {
				char ch = (char)(hi * 16 + lo);
				buf_append(out, &ch, 1);
				k += 3;
			} else {
				buf_append(out, "=", 1); /* not an escape: kept as it is */
				k++;
			}
		}
		if (nl == NULL)
			break;
		if (!soft)
			buf_append(out, data + text_end, end + 1 - text_end); /* the break */
		i = end + 1;
	}
}

/* cte without surrounding blanks and any comment or parameter after the token. */
static bool cte_is(const char *cte, const char *name)
{
	while (*cte == ' ' || *cte == '\t')
		cte++;
	size_t n = strlen(name);
	if (strncasecmp(cte, name, n) != 0)
		return false;
	char next = cte[n];
	return next == '\0' || next == ' ' || next == '\t' || next == '(' || next == ';' ||
	       next == '\r' || next == '\n';
}

int imap_binary_decode(const char *cte, const char *data, size_t len, struct buf *out)
{
	if (cte == NULL || cte_is(cte, "7bit") || cte_is(cte, "8bit") || cte_is(cte, "binary")) {
		buf_append(out, data, len);
		return 0;
	}
	if (cte_is(cte, "base64")) {
		base64_decode(data, len, out);
		return 0;
	}
	if (cte_is(cte, "quoted-printable")) {
		qp_decode(data, len, out);
		return 0;
	}
	return -EPROTONOSUPPORT;
}

bool imap_binary_has_nul(const char *data, size_t len)
{
	return len > 0 && memchr(data, '\0', len) != NULL;
}

void imap_fmt_binary(struct buf *o, const char *spec, bool size_only, bool partial, uint64_t p_off,
                     uint64_t p_len, const struct buf *d)
{
	const char *data = d != NULL && d->data != NULL ? d->data : "";
	size_t len = d != NULL ? d->len : 0;
	if (size_only) {
		buf_printf(o, "BINARY.SIZE[%s] %zu", spec, len);
		return;
	}
	size_t off = 0;
	if (partial) {
		buf_printf(o, "BINARY[%s]<%llu> ", spec, (unsigned long long)p_off);
		off = p_off < len ? (size_t)p_off : len;
		if (p_len < len - off)
			len = off + (size_t)p_len;
	} else {
		buf_printf(o, "BINARY[%s] ", spec);
	}
	if (d == NULL) {
		buf_append_str(o, "NIL");
		return;
	}
	size_t n = len - off;
	if (n == 0) {
		buf_append_str(o, "\"\"");
		return;
	}
	buf_printf(o, "%s{%zu}\r\n", imap_binary_has_nul(data + off, n) ? "~" : "", n);
	buf_append(o, data + off, n);
}
