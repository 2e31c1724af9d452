/*
 * The loader's pure helpers: paths, names, addresses, numbers, bounded file reading. No YAML
 * and no struct config here, so each can be tested and reasoned about alone.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "config/config.h"
#include "config/config_private.h"

/* Client-of-the-file bytes in an error line: printable ASCII, the rest as \xNN, bounded. */
char *cfg_escape(const char *s, size_t len)
{
	struct buf b;
	buf_init(&b, CFG_TEXT_MAX);
	buf_append(&b, "", 0);
	for (size_t i = 0; i < len; i++) {
		if (i == CFG_MAX_ECHO) {
			buf_append_str(&b, "...");
			break;
		}
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			buf_append(&b, &ch, 1);
		else
			buf_printf(&b, "\\x%02x", ch);
	}
	return b.data;
}

/* ----- paths ----- */

/* Removes empty and "." components; ".." is kept, since folders may be symbolic links. */
void cfg_path_normalize(char *p)
{
	char *out = p;
	const char *in = p;
	while (*in != '\0') {
		if (*in == '/') {
			while (*in == '/')
				in++;
			if (in[0] == '.' && (in[1] == '/' || in[1] == '\0')) {
				in++;
				continue;
			}
			*out++ = '/';
			continue;
		}
		*out++ = *in++;
	}
	if (out > p + 1 && out[-1] == '/')
		out--;
	if (out == p)
		*out++ = '/';
	*out = '\0';
}

char *cfg_path_resolve(const char *dir, const char *p)
{
	char *r = p[0] == '/' ? xstrdup(p) : xasprintf("%s/%s", dir, p);
	cfg_path_normalize(r);
	return r;
}

/* 0, or -errno with a reason why the file cannot serve as a certificate/key/CRL file. */
int cfg_file_check(const char *path, const char **reason_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		*reason_r = strerror(e);
		return -e;
	}
	struct stat st;
	int ret = 0;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		*reason_r = strerror(errno);
	} else if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		*reason_r = "not a regular file";
	}
	close(fd);
	return ret;
}

/* ----- value checks ----- */

bool cfg_is_dns_name(const char *s)
{
	size_t len = strlen(s), label = 0;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char ch = s[i];
		if (ch == '.' || ch == '\0') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!(isalnum((unsigned char)ch) || (ch == '-' && label > 0)))
			return false;
		label++;
	}
	return true;
}

bool cfg_addr_parse(const char *s, struct cfg_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, a->bytes) == 1) {
		a->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, a->bytes) == 1) {
		a->family = AF_INET6;
		return true;
	}
	return false;
}

bool cfg_addr_is_wildcard(const struct cfg_addr *a)
{
	static const unsigned char zero[16];
	return memcmp(a->bytes, zero, a->family == AF_INET ? 4 : 16) == 0;
}

bool cfg_host_is_loopback(const char *host)
{
	struct cfg_addr a;
	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (!cfg_addr_parse(host, &a))
		return false;
	if (a.family == AF_INET)
		return a.bytes[0] == 127;
	static const unsigned char v6_loopback[16] = {[15] = 1};
	static const unsigned char v4_mapped[12] = {[10] = 0xff, [11] = 0xff};
	if (memcmp(a.bytes, v6_loopback, 16) == 0)
		return true;
	return memcmp(a.bytes, v4_mapped, 12) == 0 && a.bytes[12] == 127;
}

bool cfg_host_equal(const char *x, const char *y)
{
	struct cfg_addr a, b;
	if (cfg_addr_parse(x, &a) && cfg_addr_parse(y, &b))
		return a.family == b.family && memcmp(a.bytes, b.bytes, 16) == 0;
	return strcasecmp(x, y) == 0;
}

/* 1-65535 in plain digits, no leading zero. */
static bool parse_port(const char *s, uint16_t *port_r)
{
	size_t n = strlen(s);
	if (n == 0 || n > 5 || s[0] == '0')
		return false;
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return false;
	*port_r = (uint16_t)v;
	return true;
}

int cfg_dns_server_parse(const char *s, struct cfg_dns_server *r, const char **reason_r)
{
	static const char not_addr[] = "is not a numeric IPv4 or IPv6 address (host names are "
	                               "not accepted), optionally with :PORT";
	static const char bad_port[] = "has a port that is not a number from 1 to 65535";
	char host[INET6_ADDRSTRLEN + 1];
	const char *port = NULL;
	size_t hlen;

	memset(r, 0, sizeof(*r));
	r->port = 53;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL) {
			*reason_r = "has a '[' without its ']'";
			return -EINVAL;
		}
		hlen = (size_t)(close - s - 1);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0') {
			*reason_r = "has something other than :PORT after ']'";
			return -EINVAL;
		}
		if (hlen >= sizeof(host)) {
			*reason_r = not_addr;
			return -EINVAL;
		}
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, r->addr) != 1) {
			*reason_r = "has brackets around something that is not an IPv6 address";
			return -EINVAL;
		}
		r->family = AF_INET6;
	} else if (inet_pton(AF_INET6, s, r->addr) == 1) {
		r->family = AF_INET6;
	} else {
		const char *colon = strchr(s, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL) {
			*reason_r = "is not an IPv6 address (write an IPv6 address with a port in "
			            "brackets, as in [::1]:53)";
			return -EINVAL;
		}
		hlen = colon != NULL ? (size_t)(colon - s) : strlen(s);
		if (hlen >= sizeof(host)) {
			*reason_r = not_addr;
			return -EINVAL;
		}
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET, host, r->addr) != 1) {
			*reason_r = not_addr;
			return -EINVAL;
		}
		r->family = AF_INET;
		if (colon != NULL)
			port = colon + 1;
	}
	if (port != NULL && !parse_port(port, &r->port)) {
		*reason_r = bad_port;
		return -EINVAL;
	}
	return 0;
}

void cfg_lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

int cfg_parse_u64(const char *s, uint64_t *v_r)
{
	uint64_t v = 0;
	if (s[strspn(s, "0123456789")] != '\0' || *s == '\0')
		return -EINVAL;
	if (s[0] == '0' && s[1] != '\0')
		return -EDOM;
	for (; *s != '\0'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*v_r = v;
	return 0;
}

size_t cfg_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[33];
	if (la > 32 || lb > 32)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

int cfg_read_file(const char *path, char **data_r, size_t *len_r, const char **reason_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		*reason_r = strerror(e);
		return -e;
	}
	struct stat st;
	int ret = 0;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		*reason_r = strerror(errno);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		*reason_r = "not a regular file";
		goto out;
	}
	struct buf b;
	buf_init(&b, CFG_MAX_FILE_SIZE);
	buf_append(&b, "", 0);
	for (;;) {
		char chunk[8192];
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			*reason_r = strerror(errno);
			break;
		}
		if (n == 0)
			break;
		if (buf_append(&b, chunk, (size_t)n) < 0) {
			ret = -EFBIG;
			*reason_r = "larger than 1 MiB, which no configuration needs";
			break;
		}
	}
	if (ret < 0) {
		buf_free(&b);
		goto out;
	}
	*data_r = b.data;
	*len_r = b.len;
out:
	close(fd);
	return ret;
}

char *cfg_path_absolute(const char *path)
{
	char *p;
	if (path[0] == '/') {
		p = xstrdup(path);
	} else {
		char *cwd = getcwd(NULL, 0);
		p = xasprintf("%s/%s", cwd != NULL ? cwd : ".", path);
		free(cwd);
	}
	cfg_path_normalize(p);
	return p;
}

/* "a.b.c.d[/n]" or "x::y[/n]": the address and prefix length (all bits without one). */
static bool net_parse(const char *s, struct cfg_addr *a, unsigned *bits_r)
{
	char host[64];
	const char *slash = strchr(s, '/');
	size_t hl = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (hl == 0 || hl >= sizeof(host))
		return false;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (!cfg_addr_parse(host, a))
		return false;
	unsigned max = a->family == AF_INET ? 32 : 128, bits = max;
	if (slash != NULL) {
		const char *p = slash + 1;
		if (*p == '\0' || strlen(p) > 3)
			return false;
		bits = 0;
		for (; *p != '\0'; p++) {
			if (*p < '0' || *p > '9')
				return false;
			bits = bits * 10 + (unsigned)(*p - '0');
		}
		if (bits > max)
			return false;
	}
	*bits_r = bits;
	return true;
}

bool cfg_net_valid(const char *net)
{
	struct cfg_addr a;
	unsigned bits;
	return net_parse(net, &a, &bits);
}

bool cfg_net_match(const char *net, const char *ip)
{
	struct cfg_addr n, a;
	unsigned bits;
	if (!net_parse(net, &n, &bits) || !cfg_addr_parse(ip, &a))
		return false;
	/* An IPv4 client seen as ::ffff:a.b.c.d matches IPv4 networks too. */
	static const unsigned char v4_mapped[12] = {[10] = 0xff, [11] = 0xff};
	if (a.family == AF_INET6 && n.family == AF_INET && memcmp(a.bytes, v4_mapped, 12) == 0) {
		memmove(a.bytes, a.bytes + 12, 4);
		a.family = AF_INET;
	}
	if (a.family != n.family)
		return false;
	size_t full = bits / 8;
	if (memcmp(a.bytes, n.bytes, full) != 0)
		return false;
	unsigned rest = bits % 8;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a.bytes[full] & mask) == (n.bytes[full] & mask);
}
