/* The CRL rollback and expiry rules (crlguard.h has the contract). */
#include "server/crlguard.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool crlguard_older(const struct crl_mark *cand, const struct crl_mark *ref)
{
	if (strcmp(cand->issuer, ref->issuer) != 0)
		return false;
	if (cand->has_number && ref->has_number && cand->number < ref->number)
		return true;
	return cand->this_update < ref->this_update;
}

bool crlguard_expiring(time_t next_update, time_t now, int *days_left_r)
{
	if (next_update <= now)
		return false;
	time_t left = next_update - now;
	if (left > (time_t)CRLGUARD_WARN_DAYS * 86400)
		return false;
	*days_left_r = (int)(left / 86400);
	return true;
}

int crlguard_format(const struct crl_mark *m, char *buf, size_t len)
{
	char number[24] = "-";
	if (m->has_number)
		snprintf(number, sizeof(number), "%" PRIu64, m->number);
	int n = snprintf(buf, len, "issuer=%s number=%s this_update=%lld\n", m->issuer, number,
	                 (long long)m->this_update);
	return n < 0 || (size_t)n >= len ? -ENOBUFS : 0;
}

static bool crlguard_is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strchr("0123456789abcdef", s[i]) == NULL || s[i] == '\0')
			return false;
	return true;
}

/* Parses an unsigned decimal that ends at *end_r; no sign, no spaces, no overflow. */
static int crlguard_parse_u64(const char *s, uint64_t *v_r, const char **end_r)
{
	if (*s < '0' || *s > '9')
		return -EINVAL;
	uint64_t v = 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*v_r = v;
	*end_r = s;
	return 0;
}

int crlguard_parse(const char *text, struct crl_mark *m_r)
{
	memset(m_r, 0, sizeof(*m_r));
	const char *p = text;
	if (strncmp(p, "issuer=", 7) != 0)
		return -EINVAL;
	p += 7;
	if (!crlguard_is_hex(p, CRLGUARD_ISSUER_LEN) || p[CRLGUARD_ISSUER_LEN] != ' ')
		return -EINVAL;
	memcpy(m_r->issuer, p, CRLGUARD_ISSUER_LEN);
	m_r->issuer[CRLGUARD_ISSUER_LEN] = '\0';
	p += CRLGUARD_ISSUER_LEN + 1;
	if (strncmp(p, "number=", 7) != 0)
		return -EINVAL;
	p += 7;
	if (*p == '-') {
		p++;
	} else {
		if (crlguard_parse_u64(p, &m_r->number, &p) < 0)
			return -EINVAL;
		m_r->has_number = true;
	}
	if (strncmp(p, " this_update=", 13) != 0)
		return -EINVAL;
	p += 13;
	uint64_t t;
	if (crlguard_parse_u64(p, &t, &p) < 0 || t > (uint64_t)INT64_MAX)
		return -EINVAL;
	m_r->this_update = (time_t)t;
	if (*p == '\n')
		p++;
	return *p == '\0' ? 0 : -EINVAL;
}

int crlguard_load(const char *path, struct crl_mark *m_r)
{
	char buf[256];
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return -errno;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	int err = ferror(f) ? -EIO : 0;
	fclose(f);
	if (err < 0)
		return err;
	buf[n] = '\0';
	if (n == sizeof(buf) - 1 || strlen(buf) != n)
		return -EINVAL;
	return crlguard_parse(buf, m_r);
}

int crlguard_save(const char *path, const struct crl_mark *m)
{
	char line[256], tmp[4096];
	int r = crlguard_format(m, line, sizeof(line));
	if (r < 0)
		return r;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	size_t len = strlen(line), off = 0;
	while (off < len) {
		ssize_t w = write(fd, line + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			r = -errno;
			break;
		}
		off += (size_t)w;
	}
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

const char *crlguard_time(time_t t, char *buf, size_t len)
{
	struct tm tm;
	if (t == (time_t)-1 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "-");
	return buf;
}
