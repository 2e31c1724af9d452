#ifndef SEALMAIL_IMAP_SORT_H
#define SEALMAIL_IMAP_SORT_H
/*
 * SORT (RFC 5256 section 2, with DISPLAYFROM and DISPLAYTO of RFC 5957) and THREAD
 * (section 3: ORDEREDSUBJECT and REFERENCES) over keys the store computed at delivery.
 * Pure: the session loads the keys (store_message_sortkeys) and the search result, these
 * functions order and group them and format the answer. No recursion anywhere: a chain
 * of 100,000 replies costs heap, not stack.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "server/imap/imap_parser.h"

enum imap_sort_key {
	IMAP_SORT_ARRIVAL,
	IMAP_SORT_CC,
	IMAP_SORT_DATE,
	IMAP_SORT_FROM,
	IMAP_SORT_SIZE,
	IMAP_SORT_SUBJECT,
	IMAP_SORT_TO,
	IMAP_SORT_DISPLAYFROM,
	IMAP_SORT_DISPLAYTO,
};

struct imap_sort_crit {
	enum imap_sort_key key;
	bool reverse;
};

#define IMAP_SORT_CRIT_MAX 32

/* One message as SORT and THREAD see it. Strings are borrowed, NULL counts as "", and
 * they are compared as octets: they must already be in the collation's form (the store's
 * keys are i;unicode-casemap). */
struct imap_sort_msg {
	uint32_t seq, uid;
	uint64_t size;
	int64_t arrival;            /* INTERNALDATE */
	int64_t date;               /* sent date: the Date: field in UTC, else INTERNALDATE */
	const char *subject;        /* base subject */
	bool reply;                 /* the subject was a reply or forward */
	const char *from, *to, *cc; /* addr-mailbox of the first address */
	const char *display_from, *display_to; /* display name, else addr-spec */
	const char *message_id;                /* NULL: none */
	const char *refs; /* msg-ids, space separated (References, else In-Reply-To) */
};

/* Parses a sort criteria list "(REVERSE DATE SUBJECT)" into c[0..IMAP_SORT_CRIT_MAX).
 * 0 and *n_r, or -EINVAL with *error_r (not a list, empty, unknown key, REVERSE without a
 * key after it, too many). */
int imap_sort_parse(const struct imap_arg *a, struct imap_sort_crit *c, size_t *n_r,
                    const char **error_r);

/* <0, 0 or >0 as a sorts before, with or after b by c[0..nc), ties by sequence number. */
int imap_sort_cmp(const struct imap_sort_msg *a, const struct imap_sort_msg *b,
                  const struct imap_sort_crit *c, size_t nc);

/* Orders v[0..n) by c[0..nc), ties (and equal keys throughout) by sequence number. */
void imap_sort(const struct imap_sort_msg **v, size_t n, const struct imap_sort_crit *c, size_t nc);

enum imap_thread_alg {
	IMAP_THREAD_ORDEREDSUBJECT,
	IMAP_THREAD_REFERENCES,
};

/* Threads v[0..n) (borrowed, in sequence order) and appends the thread lists of RFC 5256's
 * thread-data after "THREAD" ("(2)(3 6 (4 23)(44 7 96))", nothing for no message) to o,
 * naming messages by UID when uid is set, else by sequence number. */
void imap_thread(const struct imap_sort_msg *const *v, size_t n, enum imap_thread_alg alg, bool uid,
                 struct buf *o);

#endif
