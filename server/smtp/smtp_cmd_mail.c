/*
 * MAIL FROM: who may send as whom, and the start of the transaction (smtp_txn.c).
 *
 * Rules:
 * - submission: AUTH is required for MAIL (the command table enforces it); MAIL FROM must
 *   be the authenticated user's own address (553 5.7.1, also for the null sender).
 * - SIZE= over limits.message_size: 552 5.3.4; BODY=BINARYMIME: 555 5.5.4.
 * - smtp (peer servers): no AUTH. A sender in a local domain only from an organisation
 *   server (conn.h, CONN_PEER_SERVER: its certificate, listeners[].peers, tls.peer_ca),
 *   550 5.7.1 otherwise: anyone else could pose as a local user here, where no login binds
 *   the sender. Foreign senders and the null sender (bounces) from anyone.
 */
#include <string.h>

#include "common/log.h"
#include "server/smtp/smtp_private.h"

static bool addr_ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
		char y = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
		if (x != y)
			return false;
	}
	return *a == *b;
}

void smtp_cmd_mail(void *sess, const char *args, size_t len)
{
	struct smtp_session *s = sess;
	const struct config *cfg = conn_config(s->c);
	struct smtp_mail_args m;
	const char *reply;

	if (smtp_parse_mail(args, len, &m, &reply) < 0) {
		smtp_error(s, reply);
		return;
	}
	if (m.has_size && cfg->limits.message_size > 0 && m.size > cfg->limits.message_size) {
		smtp_error(s, "552 5.3.4 Message size exceeds fixed maximum message size");
		return;
	}
	if (m.body == SMTP_BODY_BINARYMIME) {
		smtp_error(s, "555 5.5.4 BODY=BINARYMIME is not supported");
		return;
	}
	if (s->submission) {
		const char *user = conn_user(s->c);
		if (user == NULL || !addr_ieq(m.address, user)) {
			smtp_error(
			    s, "553 5.7.1 Sender address does not belong to the logged in user");
			return;
		}
	} else if (m.address[0] != '\0' && conn_peer_kind(s->c) != CONN_PEER_SERVER) {
		const char *at = strrchr(m.address, '@');
		const char *d = at != NULL ? at + 1 : "";
		if (d[0] != '[' && cfg_is_local_domain(cfg, d, strlen(d))) {
			log_event(LOGL_INFO,
			          "session=%s proto=smtp event=local_sender_refused ip=%s "
			          "reason=not_an_organisation_server",
			          conn_id(s->c), conn_peer_ip(s->c));
			smtp_error(s,
			           "550 5.7.1 Mail from a local domain is accepted here only from "
			           "the organisation's servers");
			return;
		}
	}
	smtp_txn_mail(&s->txn, &m);
	smtp_set_state(s, SMTP_S_MAIL);
	smtp_reply(s, "250 2.1.0 Ok");
}
