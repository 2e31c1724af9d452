/*
 * Header fields of a header block in memory (see imap_header.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"
#include "server/imap/imap_header.h"

bool imap_header_find(const char *hdr, size_t len, const char *name, const char **val_r,
                      size_t *vlen_r)
{
	size_t nl = strlen(name), i = 0;
	while (i < len) {
		size_t ls = i;
		const char *e = memchr(hdr + i, '\n', len - i);
		size_t le = e != NULL ? (size_t)(e - hdr) + 1 : len;
		if (le - ls > nl && hdr[ls + nl] == ':' && strncasecmp(hdr + ls, name, nl) == 0) {
			/* The value runs over continuation lines. */
			size_t ve = le;
			while (ve < len && (hdr[ve] == ' ' || hdr[ve] == '\t')) {
				const char *e2 = memchr(hdr + ve, '\n', len - ve);
				ve = e2 != NULL ? (size_t)(e2 - hdr) + 1 : len;
			}
			*val_r = hdr + ls + nl + 1;
			*vlen_r = ve - (ls + nl + 1);
			return true;
		}
		i = le;
	}
	return false;
}

char *imap_header_unfold(const char *val, size_t len)
{
	char *o = xmalloc(len + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (val[i] == '\r' || val[i] == '\n')
			continue;
		o[n++] = val[i] == '\t' ? ' ' : val[i];
	}
	size_t s = 0;
	while (s < n && o[s] == ' ')
		s++;
	while (n > s && o[n - 1] == ' ')
		n--;
	memmove(o, o + s, n - s);
	o[n - s] = '\0';
	return o;
}
