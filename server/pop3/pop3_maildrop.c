/*
 * The maildrop snapshot and its DELE marks (see pop3_maildrop.h).
 */
#include "server/pop3/pop3_maildrop.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "storage/store.h"

void pop3_maildrop_init(struct pop3_maildrop *md, uint32_t uidvalidity,
                        const struct store_msg *msgs, size_t n)
{
	md->uidvalidity = uidvalidity;
	md->n = n;
	md->msgs = n > 0 ? xcalloc(n, sizeof(*md->msgs)) : NULL;
	for (size_t i = 0; i < n; i++) {
		md->msgs[i].uid = msgs[i].uid;
		md->msgs[i].size = msgs[i].size;
	}
}

void pop3_maildrop_free(struct pop3_maildrop *md)
{
	free(md->msgs);
	md->msgs = NULL;
	md->n = 0;
}

void pop3_maildrop_stat(const struct pop3_maildrop *md, size_t *count_r, uint64_t *octets_r)
{
	size_t count = 0;
	uint64_t octets = 0;
	for (size_t i = 0; i < md->n; i++) {
		if (md->msgs[i].deleted)
			continue;
		count++;
		octets += md->msgs[i].size;
	}
	*count_r = count;
	*octets_r = octets;
}

struct pop3_msg *pop3_maildrop_get(struct pop3_maildrop *md, uint64_t msgno)
{
	if (msgno == 0 || msgno > md->n || md->msgs[msgno - 1].deleted)
		return NULL;
	return &md->msgs[msgno - 1];
}

void pop3_maildrop_reset(struct pop3_maildrop *md)
{
	for (size_t i = 0; i < md->n; i++)
		md->msgs[i].deleted = false;
}

size_t pop3_maildrop_n_deleted(const struct pop3_maildrop *md)
{
	size_t n = 0;
	for (size_t i = 0; i < md->n; i++)
		n += md->msgs[i].deleted;
	return n;
}

size_t pop3_maildrop_deleted_ranges(const struct pop3_maildrop *md,
                                    struct store_uid_range **ranges_r)
{
	struct store_uid_range *r = NULL;
	size_t n = 0;
	for (size_t i = 0; i < md->n; i++) {
		if (!md->msgs[i].deleted)
			continue;
		if (n > 0 && i > 0 && md->msgs[i - 1].deleted) {
			r[n - 1].last = md->msgs[i].uid;
			continue;
		}
		r = xreallocarray(r, n + 1, sizeof(*r));
		r[n].first = md->msgs[i].uid;
		r[n].last = md->msgs[i].uid;
		n++;
	}
	*ranges_r = r;
	return n;
}

void pop3_maildrop_uidl(const struct pop3_maildrop *md, const struct pop3_msg *m, char *out)
{
	snprintf(out, POP3_UIDL_MAX, "%" PRIu32 ".%" PRIu32, md->uidvalidity, m->uid);
}

int pop3_parse_number(const char *s, size_t len, uint64_t *out)
{
	if (len == 0 || len > 10)
		return -EINVAL;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return -EINVAL;
	*out = v;
	return 0;
}
