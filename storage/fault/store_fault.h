#ifndef SEALMAIL_STORE_FAULT_H
#define SEALMAIL_STORE_FAULT_H
/*
 * The fault-injecting backend ("fault", for tests): a store opened with backend "fault" or
 * "fault:BACKEND" passes every operation to a store of BACKEND (mem when not named, the
 * same options otherwise) and makes chosen calls fail. Rules say which calls:
 *   {"deliver", 3, -EIO, false}     the 3rd call to store_deliver calls back with -EIO
 *   {"deliver", 0, -EIO, true}      every call to store_deliver returns -EIO
 *   {NULL, 0, -ENOSPC, false}       every operation calls back with -ENOSPC
 * A failed call does not reach the inner store. A failure in the callback keeps the
 * contract of store.h (asynchronous, exactly once, through the poster when there is one);
 * a failure at submit returns the error and never calls back. Thread-safe.
 */
#include <stdbool.h>

#include "storage/store.h"

struct store_fault_rule {
	/* The operation as named in struct store_backend and store.h without "store_"
	 * ("deliver", "auth", "mailbox_get", ...); NULL for every operation. */
	const char *op;
	/* Fail only the nth call (1-based) that matches, counted from when the rule was added;
	 * 0 for every matching call. */
	unsigned nth;
	int rc;         /* negative errno */
	bool at_submit; /* the call returns rc; else it calls back with rc */
};

/* Adds a rule (copied). 0, or -EINVAL when s is not a fault store or rc is not negative. */
int store_fault_add(struct store *s, const struct store_fault_rule *rule);
/* Removes every rule. */
void store_fault_clear(struct store *s);
/* Calls of op (NULL: of every operation) seen since the store opened, failed or not. */
unsigned store_fault_calls(struct store *s, const char *op);
/* Calls failed by a rule since the store opened. */
unsigned store_fault_failed(struct store *s);

#endif
