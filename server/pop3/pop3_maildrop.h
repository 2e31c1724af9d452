#ifndef SEALMAIL_POP3_MAILDROP_H
#define SEALMAIL_POP3_MAILDROP_H
/*
 * The POP3 maildrop as the session sees it (RFC 1939 TRANSACTION state): the INBOX as it
 * was at login, numbered 1..n in UID order, with the DELE marks. Messages delivered after
 * login are not in it; messages that another session expunged stay listed (RETR of one
 * answers -ERR). Nothing here touches the store: the marks become a store change only in
 * the UPDATE state, through pop3_maildrop_deleted_ranges.
 *
 * Also the argument parsers of the maildrop commands. Pure: no I/O; unit-tested.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_msg;
struct store_uid_range;

struct pop3_msg {
	uint32_t uid;
	uint64_t size;
	bool deleted;
};

struct pop3_maildrop {
	uint32_t uidvalidity;
	struct pop3_msg *msgs; /* owned */
	size_t n;
};

/* Copies the snapshot (UIDs and sizes of msgs, in UID order as the store lists them). */
void pop3_maildrop_init(struct pop3_maildrop *md, uint32_t uidvalidity,
                        const struct store_msg *msgs, size_t n);
void pop3_maildrop_free(struct pop3_maildrop *md);

/* Messages not marked deleted, and their total size (STAT). */
void pop3_maildrop_stat(const struct pop3_maildrop *md, size_t *count_r, uint64_t *octets_r);
/* The message numbered msgno (1-based) when it exists and is not marked deleted, else
 * NULL. */
struct pop3_msg *pop3_maildrop_get(struct pop3_maildrop *md, uint64_t msgno);
/* RSET: clears every mark. */
void pop3_maildrop_reset(struct pop3_maildrop *md);
/* How many messages are marked deleted. */
size_t pop3_maildrop_n_deleted(const struct pop3_maildrop *md);
/*
 * The UPDATE state: the UID ranges that cover exactly the marked messages. Consecutive
 * marked messages share one range; that never covers a message that is not marked,
 * because the snapshot holds every message below the login's uidnext and UIDs are never
 * reused. Returns how many ranges were written to ranges_r (a new array, free() it; NULL
 * when none).
 */
size_t pop3_maildrop_deleted_ranges(const struct pop3_maildrop *md,
                                    struct store_uid_range **ranges_r);
/* The unique-id of a message: "<uidvalidity>.<uid>" (stable forever), into out (at least
 * POP3_UIDL_MAX bytes). */
#define POP3_UIDL_MAX 24
void pop3_maildrop_uidl(const struct pop3_maildrop *md, const struct pop3_msg *m, char *out);

/* Parses a message number or a line count: 1-10 decimal digits, nothing else (no sign, no
 * spaces), value at most UINT32_MAX. 0 or -EINVAL. */
int pop3_parse_number(const char *s, size_t len, uint64_t *out);

#endif
