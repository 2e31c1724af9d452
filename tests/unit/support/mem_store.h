#ifndef SEALMAIL_TEST_MEM_STORE_H
#define SEALMAIL_TEST_MEM_STORE_H
/*
 * The store for protocol session tests: the real store front on the in-memory backend
 * ("mem"), instead of fakes of store functions. Its completions go through pop3_fakes.c's
 * poster, so they run on the test's thread when the test pumps, in order, as they do on
 * the server's loop. Link mem_store.c with pop3_fakes.c, conn_fake.c and the store library.
 *
 * The set-up calls below are blocking: each pumps the poster until its own completion has
 * run. They return what the store answered (a negative errno) rather than asserting, so a
 * test says what it expects.
 */
#include <stdbool.h>
#include <stdint.h>

#include "storage/store.h"

struct conn;

/* Opens an empty mem store with the poster: 0 and *store_r, or a negative errno. */
int support_mem_store_open(struct store **store_r);
/* Closes it (queued completions run) and forgets completions still posted, which belong
 * to sessions the test has already freed. NULL is ignored. */
void support_mem_store_close(struct store *s);

/* Creates a user with its mailboxes (INBOX, Sent, Drafts, Trash, Junk, Archive): the
 * user's id (> 0), or a negative errno. */
int64_t support_mem_user_add(struct store *s, const char *address, const char *password);
/* Creates mailbox name of user_id: its id (> 0), or a negative errno (-EEXIST). */
int64_t support_mem_mailbox_create(struct store *s, int64_t user_id, const char *name);
/* Delivers msg (CRLF line ends) into the INBOX of user_id: 0 or a negative errno. */
int support_mem_deliver(struct store *s, int64_t user_id, const char *msg);

/* Runs completions until c holds nothing and none is left posted: every store call the
 * last line started has been answered. False when one did not come within 10 s. */
bool support_mem_settle(struct conn *c);

#endif
