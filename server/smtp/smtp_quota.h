#ifndef SEALMAIL_SMTP_QUOTA_H
#define SEALMAIL_SMTP_QUOTA_H
/*
 * What a recipient's quota means for the SMTP replies (RFC 5321 4.2, RFC 3463 X.2.2,
 * RFC 1870 SIZE). Pure: the caller brings the numbers from the store.
 *
 * At RCPT, with quota > 0 (0 = unlimited):
 *   - a declared SIZE= larger than the whole quota can never fit: 552 5.2.2 (permanent);
 *   - usage at or over the quota, or usage plus a declared SIZE= over it: 452 4.2.2
 *     (temporary: the user can make room).
 * A limit on the number of messages (quota_messages > 0) refuses at RCPT with 452 4.2.2
 * when the recipient already holds that many: never permanent, one expunge makes room.
 * After DATA, when no copy could be stored because of the quota, the same two answers
 * for the whole transaction: 552 when the message is larger than the whole quota of every
 * recipient that refused it, else 452.
 */
#include <stdbool.h>
#include <stdint.h>

#define SMTP_QUOTA_FULL_TEMP "452 4.2.2 Mailbox full"
#define SMTP_QUOTA_FULL_PERM "552 5.2.2 Mailbox full: message larger than the mailbox quota"

/* The reply refusing a RCPT, or NULL when the recipient can take the message. */
const char *smtp_quota_rcpt_reply(uint64_t quota, uint64_t used, bool has_size, uint64_t size);
/* The reply refusing a RCPT for the message-count limit (0 = unlimited), or NULL. */
const char *smtp_quota_count_reply(uint64_t quota_messages, uint64_t used_messages);
/* Whether a message of size bytes can never fit a quota (0 = unlimited: always fits). */
bool smtp_quota_never_fits(uint64_t quota, uint64_t size);

#endif
