/*
 * RFC 5256 section 2.1, step by step. The text is normalised once (white space runs become
 * one space) and then only shrinks: a window [b, e) moves inwards over a private copy, so
 * every step is linear and a hostile subject of many "re:" costs one pass per marker.
 */
#include <stdlib.h>
#include <string.h>

#include "common/basesubject.h"
#include "common/xmalloc.h"

static int casemap(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

int basesubject_casecmp(const char *a, const char *b)
{
	const unsigned char *x = (const unsigned char *)(a != NULL ? a : "");
	const unsigned char *y = (const unsigned char *)(b != NULL ? b : "");
	for (;; x++, y++) {
		int cx = casemap(*x), cy = casemap(*y);
		if (cx != cy)
			return cx < cy ? -1 : 1;
		if (cx == 0)
			return 0;
	}
}

/* Whether s[0..n) starts with the lower-case ASCII word w, case-insensitively. */
static bool starts(const char *s, size_t n, const char *w)
{
	size_t wl = strlen(w);
	if (n < wl)
		return false;
	for (size_t i = 0; i < wl; i++)
		if (casemap((unsigned char)s[i]) != casemap((unsigned char)w[i]))
			return false;
	return true;
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP at s: its length, or 0. */
static size_t blob(const char *s, size_t n)
{
	if (n == 0 || s[0] != '[')
		return 0;
	size_t i = 1;
	while (i < n && s[i] != '[' && s[i] != ']')
		i++;
	if (i >= n || s[i] != ']')
		return 0;
	i++;
	while (i < n && s[i] == ' ')
		i++;
	return i;
}

/* subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" at s: its length, or 0. */
static size_t refwd(const char *s, size_t n)
{
	size_t i;
	if (starts(s, n, "fwd"))
		i = 3;
	else if (starts(s, n, "fw") || starts(s, n, "re"))
		i = 2;
	else
		return 0;
	while (i < n && s[i] == ' ')
		i++;
	i += blob(s + i, n - i);
	return i < n && s[i] == ':' ? i + 1 : 0;
}

/* subj-leader = (*subj-blob subj-refwd) / WSP at s: its length, or 0 and in *stop_r how
 * far the blobs before no subj-refwd went (a leader from any of those blobs fails too). */
static size_t leader(const char *s, size_t n, size_t *stop_r)
{
	if (n > 0 && s[0] == ' ')
		return 1;
	size_t i = 0, k;
	for (;;) {
		if ((k = refwd(s + i, n - i)) > 0)
			return i + k;
		if ((k = blob(s + i, n - i)) == 0) {
			*stop_r = i;
			return 0;
		}
		i += k;
	}
}

char *basesubject_get(const char *in, size_t len, bool *reply_r)
{
	bool reply = false;
	/* (1) Tabs, line breaks (unfolded continuations) and runs of them become one space. */
	char *t = xmalloc(len + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c == '\t' || c == '\r' || c == '\n' || c == '\0')
			c = ' ';
		if (c == ' ' && n > 0 && t[n - 1] == ' ')
			continue;
		t[n++] = c;
	}
	const char *b = t, *e = t + n;
	for (;;) {
		/* (2) Trailers: white space and "(fwd)", as often as they occur. */
		for (;;) {
			if (e > b && e[-1] == ' ') {
				e--;
			} else if (e - b >= 5 && starts(e - 5, 5, "(fwd)")) {
				e -= 5;
				reply = true;
			} else {
				break;
			}
		}
		/* (3)-(5) Leaders, and a leading blob when something is left after it. A run of
		 * blobs without a subj-refwd after it is scanned once, not once per blob. */
		const char *no_leader = b;
		for (;;) {
			size_t k = 0, stop = 0;
			if (b >= no_leader) {
				k = leader(b, (size_t)(e - b), &stop);
				if (k == 0)
					no_leader = b + stop;
			}
			if (k > 0) {
				if (b[0] != ' ')
					reply = true;
				b += k;
				continue;
			}
			k = blob(b, (size_t)(e - b));
			if (k > 0 && b + k < e) {
				b += k;
				continue;
			}
			break;
		}
		/* (6) "[fwd: ...]" around the rest: unwrap and start over from (2). */
		if (e - b >= 6 && starts(b, (size_t)(e - b), "[fwd:") && e[-1] == ']') {
			b += 5;
			e--;
			reply = true;
			continue;
		}
		break;
	}
	char *out = xstrndup(b, (size_t)(e - b));
	free(t);
	if (reply_r != NULL)
		*reply_r = reply;
	return out;
}
