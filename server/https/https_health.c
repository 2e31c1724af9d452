/*
 * GET /healthz: 200 "ok" only when every configured listener is bound and the store
 * answers a trivial query through its threads (store_ping); 503 with what is wrong
 * otherwise. The answer is never cached.
 */
#include <stdint.h>
#include <string.h>

#include "server/https/https_private.h"
#include "server/services.h"
#include "storage/store.h"

#define HEALTH_HEADERS "Cache-Control: no-store\r\n"

static void health_answer(struct https_session *s, const char *text, bool ok)
{
	https_reply(s, ok ? 200 : 503, "text/plain; charset=utf-8", text, strlen(text),
	            HEALTH_HEADERS, false);
}

static void health_reply(struct https_session *s, void *arg)
{
	int rc = (int)(intptr_t)arg;
	if (rc == 0 && !conn_listeners_bound(https_conn(s)))
		health_answer(s, "unavailable: a listener is not bound\n", false);
	else if (rc == 0)
		health_answer(s, "ok\n", true);
	else
		health_answer(s, "unavailable: the store does not answer\n", false);
}

static void health_store_done(void *ctx, int rc)
{
	https_async_end(ctx, health_reply, (void *)(intptr_t)rc);
}

void https_health(struct https_session *s, const struct https_request *req)
{
	struct conn *c = https_conn(s);
	struct services *sv = conn_services(c);
	(void)req;
	if (!conn_listeners_bound(c)) {
		health_answer(s, "unavailable: a listener is not bound\n", false);
		return;
	}
	if (sv == NULL || sv->store == NULL) {
		health_answer(s, "unavailable: the store does not answer\n", false);
		return;
	}
	https_async_begin(s);
	int rc = store_ping(sv->store, health_store_done, c);
	if (rc < 0)
		https_async_end(c, health_reply, (void *)(intptr_t)rc);
}
