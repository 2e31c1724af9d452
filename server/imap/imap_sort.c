/*
 * SORT ordering (RFC 5256 section 2.2, RFC 5957): a stable bottom-up merge sort over
 * pointers with the criteria as context. The keys were computed at delivery, already in
 * the form the collation compares (i;unicode-casemap, the I18NLEVEL=1 default that RFC
 * 5256 section 1 requires), so a comparison is integer or byte work only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "server/imap/imap_sort.h"

static const struct {
	const char *name;
	enum imap_sort_key key;
} sort_names[] = {
    {"ARRIVAL", IMAP_SORT_ARRIVAL},
    {"CC", IMAP_SORT_CC},
    {"DATE", IMAP_SORT_DATE},
    {"FROM", IMAP_SORT_FROM},
    {"SIZE", IMAP_SORT_SIZE},
    {"SUBJECT", IMAP_SORT_SUBJECT},
    {"TO", IMAP_SORT_TO},
    {"DISPLAYFROM", IMAP_SORT_DISPLAYFROM},
    {"DISPLAYTO", IMAP_SORT_DISPLAYTO},
};

int imap_sort_parse(const struct imap_arg *a, struct imap_sort_crit *c, size_t *n_r,
                    const char **error_r)
{
	if (a == NULL || a->type != IMAP_ARG_LIST || a->n == 0) {
		*error_r = "SORT needs a list of sort criteria";
		return -EINVAL;
	}
	size_t n = 0;
	bool reverse = false;
	for (size_t i = 0; i < a->n; i++) {
		const struct imap_arg *k = &a->list[i];
		if (imap_arg_is(k, "REVERSE")) {
			if (reverse) {
				*error_r = "REVERSE REVERSE";
				return -EINVAL;
			}
			reverse = true;
			continue;
		}
		size_t j = 0;
		while (j < sizeof(sort_names) / sizeof(sort_names[0]) &&
		       !imap_arg_is(k, sort_names[j].name))
			j++;
		if (j == sizeof(sort_names) / sizeof(sort_names[0])) {
			*error_r = "unknown sort criterion";
			return -EINVAL;
		}
		if (n == IMAP_SORT_CRIT_MAX) {
			*error_r = "too many sort criteria";
			return -EINVAL;
		}
		c[n].key = sort_names[j].key;
		c[n].reverse = reverse;
		n++;
		reverse = false;
	}
	if (reverse) {
		*error_r = "REVERSE must be followed by a sort criterion";
		return -EINVAL;
	}
	*n_r = n;
	return 0;
}

/* The keys are stored in i;unicode-casemap form (RFC 5051, computed at delivery): what is
 * left is i;octet. NULL is "". */
static int key_cmp(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "");
}

static int cmp_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_key(const struct imap_sort_msg *a, const struct imap_sort_msg *b,
                   enum imap_sort_key k)
{
	switch (k) {
	case IMAP_SORT_ARRIVAL:
		return cmp_i64(a->arrival, b->arrival);
	case IMAP_SORT_DATE:
		return cmp_i64(a->date, b->date);
	case IMAP_SORT_SIZE:
		return a->size < b->size ? -1 : a->size > b->size;
	case IMAP_SORT_CC:
		return key_cmp(a->cc, b->cc);
	case IMAP_SORT_FROM:
		return key_cmp(a->from, b->from);
	case IMAP_SORT_TO:
		return key_cmp(a->to, b->to);
	case IMAP_SORT_SUBJECT:
		return key_cmp(a->subject, b->subject);
	case IMAP_SORT_DISPLAYFROM:
		return key_cmp(a->display_from, b->display_from);
	case IMAP_SORT_DISPLAYTO:
		return key_cmp(a->display_to, b->display_to);
	}
	return 0;
}

struct sort_ctx {
	const struct imap_sort_crit *c;
	size_t nc;
};

static int cmp_msg(const struct imap_sort_msg *a, const struct imap_sort_msg *b,
                   const struct sort_ctx *x)
{
	for (size_t i = 0; i < x->nc; i++) {
		int r = cmp_key(a, b, x->c[i].key);
		if (r != 0)
			return x->c[i].reverse ? -r : r;
	}
	/* RFC 5256 2.2: equal on every criterion, the sequence number decides (REVERSE
	 * applies only to the criterion it precedes, so never to this). */
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Bottom-up merge sort: stable, O(n log n), no recursion. */
static void merge_sort(const struct imap_sort_msg **v, size_t n, const struct sort_ctx *x)
{
	if (n < 2)
		return;
	const struct imap_sort_msg **tmp = xmalloc(n * sizeof(*tmp));
	const struct imap_sort_msg **src = v, **dst = tmp;
	for (size_t w = 1; w < n; w *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * w) {
			size_t mid = lo + w < n ? lo + w : n;
			size_t hi = lo + 2 * w < n ? lo + 2 * w : n;
			size_t i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				dst[k++] = cmp_msg(src[j], src[i], x) < 0 ? src[j++] : src[i++];
			while (i < mid)
				dst[k++] = src[i++];
			while (j < hi)
				dst[k++] = src[j++];
		}
		const struct imap_sort_msg **t = src;
		src = dst;
		dst = t;
	}
	if (src != v)
		memcpy(v, src, n * sizeof(*v));
	free(tmp);
}

int imap_sort_cmp(const struct imap_sort_msg *a, const struct imap_sort_msg *b,
                  const struct imap_sort_crit *c, size_t nc)
{
	struct sort_ctx x = {c, nc};
	return cmp_msg(a, b, &x);
}

void imap_sort(const struct imap_sort_msg **v, size_t n, const struct imap_sort_crit *c, size_t nc)
{
	struct sort_ctx x = {c, nc};
	merge_sort(v, n, &x);
}
