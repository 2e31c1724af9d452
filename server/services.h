#ifndef SEALMAIL_SERVICES_H
#define SEALMAIL_SERVICES_H
/*
 * What every protocol session shares, owned by the server for its whole run: the store,
 * failed-login throttling and the cache of successful logins. Loop thread only (the store
 * is thread-safe on its own; the auth tables are not).
 */
#include "config/config.h"

struct store;
struct authfail;
struct authcache;
struct notify;

struct services {
	const struct config *cfg;
	struct store *store; /* NULL in protocol unit tests that need none */
	struct authfail *authfail;
	struct authcache *authcache;
	struct notify *notify; /* mailbox change watchers, POP3 maildrop locks */
};

#endif
