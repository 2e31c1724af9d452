/*
 * The relay's decisions that need no I/O: back-off, giving up, where plaintext is allowed,
 * whether a DSN is wanted, and the TLS-Required header (relay_private.h).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "server/relay/relay_private.h"

unsigned relay_backoff(unsigned attempts, unsigned initial, unsigned max)
{
	if (initial == 0)
		initial = 1;
	uint64_t delay = initial;
	for (unsigned i = 1; i < attempts && delay < max; i++)
		delay *= 2;
	return delay > max ? max : (unsigned)delay;
}

bool relay_give_up(int64_t created, int64_t now, unsigned give_up)
{
	return now - created >= (int64_t)give_up;
}

static bool is_loopback(const char *host)
{
	unsigned char a[16];
	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, host, a) == 1) {
		static const unsigned char lo[16] = {[15] = 1};
		return memcmp(a, lo, 16) == 0;
	}
	return false;
}

bool relay_plaintext_allowed(const struct cfg_relay *relay, const char *host)
{
	if (is_loopback(host))
		return true;
	for (size_t i = 0; i < relay->n_legacy_gateways; i++)
		if (strcasecmp(relay->legacy_gateways[i], host) == 0)
			return true;
	return false;
}

bool relay_dsn_wanted(const char *notify, enum relay_dsn_action action)
{
	static const char *const keyword[] = {
	    [RELAY_DSN_FAILED] = "FAILURE",
	    [RELAY_DSN_DELAYED] = "DELAY",
	    [RELAY_DSN_DELIVERED] = "SUCCESS",
	    [RELAY_DSN_RELAYED] = "SUCCESS",
	};
	if (notify == NULL)
		return action == RELAY_DSN_FAILED; /* RFC 3461 4.1: the default */
	const char *want = keyword[action];
	size_t wlen = strlen(want);
	const char *p = notify;
	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		if (n == wlen && strncasecmp(p, want, n) == 0)
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

bool relay_tls_optional_header(const char *head, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t end = i;
		while (end < len && head[end] != '\n')
			end++;
		size_t l = end - i;
		if (l > 0 && head[i + l - 1] == '\r')
			l--;
		if (l == 0)
			return false; /* end of the header block */
		if (l >= 13 && strncasecmp(head + i, "TLS-Required:", 13) == 0) {
			size_t v = i + 13;
			while (v < i + l && (head[v] == ' ' || head[v] == '\t'))
				v++;
			size_t vl = i + l - v;
			while (vl > 0 && isspace((unsigned char)head[v + vl - 1]))
				vl--;
			return vl == 2 && strncasecmp(head + v, "No", 2) == 0;
		}
		i = end + 1;
	}
	return false;
}

size_t relay_return_path_len(const char *head, size_t len)
{
	if (len < 12 || strncasecmp(head, "Return-Path:", 12) != 0)
		return 0;
	for (size_t i = 12; i + 1 < len; i++) {
		if (head[i] != '\r' || head[i + 1] != '\n')
			continue;
		/* A line that starts with white space continues the field. */
		if (i + 2 < len && (head[i + 2] == ' ' || head[i + 2] == '\t'))
			continue;
		return i + 2 < len ? i + 2 : 0; /* a message that is only the field: keep it */
	}
	return 0;
}
