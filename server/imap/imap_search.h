#ifndef SEALMAIL_IMAP_SEARCH_H
#define SEALMAIL_IMAP_SEARCH_H
/*
 * SEARCH keys: parsed from command arguments into a tree, evaluated per message against
 * what the session already holds (flags, UIDs, sizes, dates, modseqs), the message header
 * (only when a key needs it: FROM, TO, CC, BCC, SUBJECT, HEADER, SENT*) and the UID sets
 * that BODY/TEXT keys got from the store's full-text index beforehand. Pure.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "server/imap/imap_parser.h"

enum imap_skey {
	IMAP_SK_ALL,
	IMAP_SK_AND,    /* children */
	IMAP_SK_OR,     /* two or more children: a chain of ORs is one */
	IMAP_SK_NOT,    /* one child */
	IMAP_SK_FLAG,   /* flags set: u.flag */
	IMAP_SK_NOFLAG, /* flags clear */
	IMAP_SK_NEW,    /* \Recent and not \Seen */
	IMAP_SK_KEYWORD,
	IMAP_SK_UNKEYWORD,
	IMAP_SK_LARGER,
	IMAP_SK_SMALLER,
	IMAP_SK_BEFORE, /* internal date, by day (UTC) */
	IMAP_SK_ON,
	IMAP_SK_SINCE,
	IMAP_SK_SENTBEFORE, /* Date: header, by its day as written */
	IMAP_SK_SENTON,
	IMAP_SK_SENTSINCE,
	IMAP_SK_SEQ,
	IMAP_SK_UID,
	IMAP_SK_HEADER, /* field name + substring */
	IMAP_SK_TEXT,   /* BODY / TEXT: uids from the full-text index */
	IMAP_SK_MODSEQ,
	IMAP_SK_SAVED,       /* $ */
	IMAP_SK_SAVEDBEFORE, /* save date (RFC 8514), by day (UTC) */
	IMAP_SK_SAVEDON,
	IMAP_SK_SAVEDSINCE,
	IMAP_SK_EMAILID,  /* RFC 8474: num is the id; str set when it is no id of this server */
	IMAP_SK_THREADID, /* the same */
};

struct imap_search_key {
	enum imap_skey type;
	unsigned flag;
	char *str;   /* keyword, header value, text */
	char *field; /* header name */
	bool body_only;
	uint64_t num; /* size, day (epoch seconds at 00:00 UTC), modseq */
	struct imap_seqset set;
	struct imap_search_key *kids;
	size_t n_kids;
	/* Filled by the session before evaluation (IMAP_SK_TEXT): sorted UIDs. */
	uint32_t *uids;
	size_t n_uids;
};

/* In imap_search_msg.flags beside the store's flags: the message is \Recent in this
 * session (RECENT, NEW, OLD). */
#define IMAP_SEARCH_RECENT (1u << 16)

struct imap_search_msg {
	uint32_t seq, uid;
	unsigned flags;
	const char *keywords; /* space separated */
	uint64_t size, modseq;
	int64_t internal_date;
	const char *hdr; /* the raw message header, or NULL when the tree needs none */
	size_t hdr_len;
	/* Decoded fields from the store (NULL when absent or not loaded); decoded says they
	 * were loaded, and then they answer FROM, TO, CC, SUBJECT and HEADER Message-ID with a
	 * non-empty string instead of the raw header. The SENT* keys read the raw Date: (date
	 * has lost the zone the day is counted in). */
	bool decoded;
	const char *from, *to, *cc, *subject, *message_id;
	int64_t date; /* Date: in epoch seconds, 0 when missing */
	/* Loaded with the decoded fields: RFC 8474 ids and the RFC 8514 save date. */
	uint64_t email_id, thread_id;
	int64_t save_date;
};

struct store_msg;
/* Sets m's decoded fields, ids and save date from the store's message h (the strings are
 * borrowed); m->decoded is the caller's to set. */
void imap_search_msg_stored(struct imap_search_msg *m, const struct store_msg *h);

enum imap_esearch_opt {
	IMAP_ES_MIN = 1,
	IMAP_ES_MAX = 2,
	IMAP_ES_COUNT = 4,
	IMAP_ES_ALL = 8,
	IMAP_ES_SAVE = 16,
	IMAP_ES_PARTIAL = 32,  /* RFC 5267 4.4 */
	IMAP_ES_UPDATE = 64,   /* RFC 5267 4.3: keep the result up to date (imap_context.c) */
	IMAP_ES_CONTEXT = 128, /* RFC 5267 4.2: a hint, taken as none */
};
/* The options that ask for result data (UPDATE and CONTEXT ask for none). */
#define IMAP_ES_RESULT                                                                             \
	(IMAP_ES_MIN | IMAP_ES_MAX | IMAP_ES_COUNT | IMAP_ES_ALL | IMAP_ES_SAVE | IMAP_ES_PARTIAL)

struct imap_search {
	struct imap_search_key root;     /* an AND */
	unsigned esearch;                /* RETURN (...) options; 0 for plain SEARCH */
	uint32_t partial_lo, partial_hi; /* PARTIAL lo:hi, lo <= hi */
	bool has_return;
	bool needs_header;     /* a header, id or save date key: load the decoded fields */
	bool needs_raw_header; /* a key the decoded fields cannot answer (BCC, other fields) */
	bool needs_modseq;     /* a MODSEQ key: the reply carries (MODSEQ n) */
};

/* Parses the list after RETURN (SEARCH's, and SORT's with ESORT) into *opts_r and, for
 * PARTIAL, the positions *lo_r <= *hi_r. An empty list means ALL (RFC 4731 3.1), and so
 * does a list of only UPDATE and CONTEXT: a live result starts from the whole one. 0, or
 * -EINVAL with *error_r (unknown option, a bad range, both ALL and PARTIAL, which RFC 5267
 * section 4.4 forbids, or PARTIAL twice). */
int imap_search_parse_return(const struct imap_arg *l, unsigned *opts_r, uint32_t *lo_r,
                             uint32_t *hi_r, const char **error_r);
/* Appends the ESEARCH return data (" MIN 3 MAX 9 COUNT 4 ALL 3,5:6,9 PARTIAL (1:2 3,5)")
 * of the hits v[0..n), given in result order: ascending for SEARCH, the sort order for
 * SORT (RFC 5267 section 3: MIN and MAX are then the first and last in that order, and ALL
 * and PARTIAL list them in that order, a range "a:b" standing only for the ascending run
 * a, a+1 ... b). Nothing for SAVE; MIN, MAX and ALL are left out when there is no hit. */
void imap_esearch_fmt(struct buf *o, unsigned opts, const uint32_t *v, size_t n,
                      uint32_t partial_lo, uint32_t partial_hi);
/* Parses args[0..n) (after "SEARCH"; RETURN (...) and CHARSET are handled). 0 or -EINVAL
 * with *error_r; -ENOTSUP for an unknown charset ([BADCHARSET]). */
int imap_search_parse(const struct imap_arg *args, size_t n, struct imap_search *s,
                      const char **error_r);
void imap_search_free(struct imap_search *s);
/* Calls fn for every TEXT key (for the session to fill uids). */
void imap_search_each_text(struct imap_search_key *k,
                           void (*fn)(struct imap_search_key *k, void *ctx), void *ctx);
/* Gives every "$" key of k the SEARCHRES result uids[0..n) (copied): "$" matches those
 * messages (RFC 5182 2.1); without it, "$" matches none. */
void imap_search_set_saved(struct imap_search_key *k, const uint32_t *uids, size_t n);
/* Whether every message sequence number of k's sequence-set keys names a message of a
 * mailbox of n_msgs (RFC 9051 seq-number: a greater number, or "*" in an empty mailbox,
 * is answered BAD, as in FETCH and STORE). UID sets are not checked: any UID may be asked. */
bool imap_search_seqs_valid(const struct imap_search_key *k, uint32_t n_msgs);
/* Evaluates; max_seq and max_uid are what "*" stands for. */
bool imap_search_match(const struct imap_search_key *k, const struct imap_search_msg *m,
                       uint32_t max_seq, uint32_t max_uid);

/* Parses "1-Feb-1994" into seconds at 00:00 UTC. 0 or -EINVAL. */
int imap_parse_date(const char *s, size_t len, int64_t *t_r);
/* The calendar day of a Date: field's value (RFC 5322, obsolete forms included) as seconds
 * at 00:00 UTC of that day as written: time and zone are ignored, as SENTBEFORE, SENTON and
 * SENTSINCE want. 0 or -EINVAL. */
int imap_parse_sent_date(const char *s, size_t len, int64_t *day_r);

#endif
