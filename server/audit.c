/*
 * The access audit of sessions (audit.h): builds the record from the connection and hands
 * it to the store, which never blocks on it.
 */
#include "server/audit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/metrics.h"
#include "server/conn.h"
#include "server/services.h"
#include "storage/store.h"

/* The record's detail carries the certificate the connection came with, when one did. */
static void detail_with_cert(struct buf *b, struct conn *c, const char *detail)
{
	if (detail != NULL && detail[0] != '\0')
		buf_append_str(b, detail);
	const char *serial = conn_cert_serial(c);
	if (serial != NULL && strcmp(serial, "-") != 0)
		buf_printf(b, "%scert=%s", b->len > 0 ? " " : "", serial);
}

static bool audit_put(struct conn *c, const char *actor, const char *action, const char *mailbox,
                      const char *uids, const char *detail)
{
	struct services *sv = conn_services(c);
	const struct config *cfg = conn_config(c);
	if (sv == NULL || sv->store == NULL || cfg == NULL || !cfg->audit.enabled)
		return true;
	struct store_audit_record r = {
	    .actor = (char *)(actor != NULL ? actor : ""),
	    .ip = (char *)conn_peer_ip(c),
	    .session = (char *)conn_id(c),
	    .proto = (char *)conn_proto_name(c),
	    .action = (char *)action,
	    .mailbox = (char *)(mailbox != NULL ? mailbox : ""),
	    .uids = (char *)(uids != NULL ? uids : ""),
	    .detail = (char *)(detail != NULL ? detail : ""),
	};
	int rc = store_audit_append(sv->store, &r);
	if (rc == 0) {
		metrics_inc(METRIC_AUDIT_RECORDS, "recorded", NULL, NULL);
		return true;
	}
	if (rc == -ENOTSUP)
		return true;
	metrics_inc(METRIC_AUDIT_RECORDS, "refused", NULL, NULL);
	log_event(LOGL_ERROR, "session=%s proto=%s event=audit_refused action=%s error=\"%s\"",
	          conn_id(c), conn_proto_name(c), action, store_strerror(rc));
	conn_close(c, "audit_unavailable");
	return false;
}

bool audit_session(struct conn *c, const char *action, const char *mailbox, const uint32_t *uids,
                   size_t n, const char *detail)
{
	struct buf set, d;
	buf_init(&set, SIZE_MAX);
	buf_init(&d, SIZE_MAX);
	if (uids != NULL && n > 0)
		buf_append_uidset(&set, uids, n);
	detail_with_cert(&d, c, detail);
	bool ok = audit_put(c, conn_user(c), action, mailbox, set.data, d.data);
	buf_free(&set);
	buf_free(&d);
	return ok;
}

bool audit_login(struct conn *c, const char *user, const char *mech, bool ok, const char *why)
{
	struct buf d;
	buf_init(&d, SIZE_MAX);
	buf_printf(&d, "mech=%s", mech);
	if (!ok)
		buf_printf(&d, " reason=%s", why != NULL ? why : "failed");
	detail_with_cert(&d, c, NULL);
	bool r = audit_put(c, user, ok ? "login" : "login_failed", NULL, NULL, d.data);
	buf_free(&d);
	return r;
}

void audit_logout(struct conn *c, uint64_t duration_ms)
{
	char d[64];
	snprintf(d, sizeof(d), "duration_ms=%llu", (unsigned long long)duration_ms);
	audit_put(c, conn_user(c), "logout", NULL, NULL, d);
}
