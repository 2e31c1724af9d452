#ifndef SEALMAIL_AUDIT_H
#define SEALMAIL_AUDIT_H
/*
 * The access audit of sessions (docs/audit.md): one call where a session reads content,
 * changes or removes messages, manages mailboxes, logs in or out, or submits mail. The
 * record names the session's user, address, session id, protocol and the certificate it
 * came with; the store keeps it in its hash chain, written with its next group commit.
 *
 * Fail closed: when the store cannot take the record (its writer is that far behind, or
 * the disk failed) the session is closed instead of being served unrecorded, and the call
 * returns false; the caller stops (any answer it writes after that is discarded). With
 * audit.enabled false, or a store without an audit, nothing is recorded and it returns
 * true.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;

/* An action of the session's logged-in user on mailbox (NULL: none) and the UIDs uids[n]
 * (ascending, or NULL), with the action's own words in detail (NULL: none). */
bool audit_session(struct conn *c, const char *action, const char *mailbox, const uint32_t *uids,
                   size_t n, const char *detail);
/* A login, or an attempt (ok false: why says what failed), as user with mechanism mech. */
bool audit_login(struct conn *c, const char *user, const char *mech, bool ok, const char *why);
/* The end of a logged-in session (from the connection layer). */
void audit_logout(struct conn *c, uint64_t duration_ms);

#endif
