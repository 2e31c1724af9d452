/*
 * What to do with a domain's MX records (relay_private.h), without I/O: RFC 7505 null MX,
 * RFC 5321 5.1 ordering by preference, and the rule that keeps a server from relaying to
 * itself. The resolver (relay_hops.c) feeds it what c-ares parsed.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/relay/relay_private.h"

/* The root: an MX "." arrives as "" from the parser; accept both spellings. */
static bool is_root(const char *host)
{
	return host[0] == '\0' || strcmp(host, ".") == 0;
}

bool relay_name_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

bool relay_mx_host_ok(const char *host)
{
	size_t len = strlen(host), label = 0;
	if (len > 0 && host[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)host[i];
		if (ch == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!isalnum(ch) && ch != '-' && ch != '_')
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

bool relay_mx_is_null(const struct relay_mx *mx, size_t n)
{
	/* RFC 7505 3: the preference SHOULD be 0; a single root exchange is no mail server
	 * whatever the number, so it means the same. */
	return n == 1 && is_root(mx[0].host);
}

size_t relay_mx_prepare(struct relay_mx *mx, size_t n, const char *self, bool *self_r)
{
	/* Insertion sort: stable, so equal preferences keep the order DNS gave them. */
	for (size_t i = 1; i < n; i++) {
		struct relay_mx v = mx[i];
		size_t j = i;
		while (j > 0 && mx[j - 1].pref > v.pref) {
			mx[j] = mx[j - 1];
			j--;
		}
		mx[j] = v;
	}
	/* The first (most preferred) time self is listed: only better hosts remain. */
	bool found = false;
	unsigned limit = 0;
	for (size_t i = 0; i < n && !found && self != NULL; i++) {
		if (relay_name_equal(mx[i].host, self)) {
			found = true;
			limit = mx[i].pref;
		}
	}
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		bool drop = is_root(mx[i].host) || !relay_mx_host_ok(mx[i].host) ||
		            (found && mx[i].pref >= limit);
		for (size_t j = 0; j < kept && !drop; j++)
			drop = relay_name_equal(mx[j].host, mx[i].host);
		if (drop) {
			free(mx[i].host);
			continue;
		}
		mx[kept++] = mx[i];
	}
	for (size_t i = kept; i < n; i++)
		mx[i].host = NULL;
	*self_r = found;
	return kept;
}

void relay_mx_free(struct relay_mx *mx, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(mx[i].host);
	free(mx);
}
