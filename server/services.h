#ifndef SEALMAIL_SERVICES_H
#define SEALMAIL_SERVICES_H
/*
 * What every protocol session shares, owned by the server for its whole run: the store,
 * failed-login throttling and the cache of successful logins. Loop thread only (the store
 * is thread-safe on its own; the auth tables are not).
 */
#include "config/config.h"

struct store;
struct buf;
struct conn;
struct authfail;
struct authcache;
struct notify;
struct auth_login_result;

struct services {
	const struct config *cfg;
	struct store *store; /* NULL in protocol unit tests that need none */
	struct authfail *authfail;
	struct authcache *authcache;
	struct notify *notify; /* mailbox change watchers, POP3 maildrop locks */
	/* The /metrics text of the server c belongs to (server_metrics_scrape in
	 * metrics_scrape.h); NULL where there is no server (protocol unit tests). */
	void (*metrics_scrape)(struct conn *c, void (*cb)(void *ctx, int rc, struct buf *text),
	                       void *ctx);
	/* auth_login (server/auth/login.h), for protocol libraries that cannot link it:
	 * throttling, the login cache, the log line, the certificate policy. NULL in tests. */
	void (*login)(struct conn *c, const char *mech, const char *user, const char *password,
	              void (*cb)(void *sess, const struct auth_login_result *r));
};

#endif
