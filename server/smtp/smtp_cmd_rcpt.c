/*
 * RCPT TO: recipients checked against the store and added to the transaction (smtp_txn.c).
 *
 * Rules:
 * - local recipients must exist (550 5.1.1); other domains go to the relay queue, and only
 *   from an authenticated submission session (550 5.7.1 otherwise: never an open relay).
 * - a local recipient's quota is checked against its usage and MAIL's SIZE= (RFC 1870):
 *   452 4.2.2 when it is full or the message would fill it, 552 5.2.2 when the declared
 *   size can never fit (smtp_quota.h); a recipient holding as many messages as its
 *   message-count limit allows gets 452 4.2.2 too.
 * - The store look-up pauses input (so pipelined commands wait and replies stay in order)
 *   and holds the conn (so a close meanwhile never frees what the completion touches).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/services.h"
#include "server/smtp/smtp_private.h"
#include "server/smtp/smtp_quota.h"
#include "storage/store.h"

struct smtp_rcpt_wait {
	struct smtp_session *s;
	unsigned notify;
	char orcpt[SMTP_ORCPT_MAX + 1];
	char *address; /* normalised */
};

static void smtp_rcpt_looked_up(void *ctx, int rc, struct store_users *res)
{
	struct smtp_rcpt_wait *w = ctx;
	struct smtp_session *s = w->s;
	const char *quota_reply;

	if (!conn_release(s->c)) {
		free(w->address);
		free(w);
		return;
	}
	s->waiting = false;
	if (rc == 0 && res->n != 1)
		rc = -ENOENT;
	/* A disabled user's mail: refused (RFC 3463 5.2.1, mailbox disabled), or kept as
	 * auth.disabled_user_mail says. */
	bool refuse_disabled = rc == 0 && res->v[0].disabled &&
	                       conn_config(s->c)->auth.disabled_user_mail != CFG_DISABLED_MAIL_KEEP;
	if (rc == -ENOENT) {
		smtp_error(s, "550 5.1.1 Recipient address rejected: user unknown");
	} else if (refuse_disabled) {
		smtp_error(s, "550 5.2.1 Recipient address rejected: mailbox disabled");
	} else if (rc < 0) {
		smtp_reply(s, "451 4.3.0 Temporary failure looking up the recipient");
	} else if ((quota_reply = smtp_quota_rcpt_reply(res->v[0].quota_bytes, res->v[0].used_bytes,
	                                                s->txn.mail.has_size, s->txn.mail.size)) !=
	               NULL ||
	           (quota_reply = smtp_quota_count_reply(res->v[0].quota_messages,
	                                                 res->v[0].used_messages)) != NULL) {
		/* Not counted as an error: a full mailbox is no fault of the client's. */
		smtp_reply(s, quota_reply);
	} else {
		if (!smtp_txn_has_rcpt(&s->txn, w->address))
			smtp_txn_add_rcpt(&s->txn, w->address, res->v[0].id, res->v[0].quota_bytes,
			                  w->notify, w->orcpt);
		smtp_set_state(s, SMTP_S_RCPT);
		smtp_reply(s, "250 2.1.5 Ok");
	}
	free(w->address);
	free(w);
	conn_resume(s->c);
}

void smtp_cmd_rcpt(void *sess, const char *args, size_t len)
{
	struct smtp_session *s = sess;
	const struct config *cfg = conn_config(s->c);
	struct smtp_rcpt_args r;
	const char *reply;

	if (cfg->limits.recipients > 0 && s->txn.n_rcpts >= cfg->limits.recipients) {
		smtp_reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	if (smtp_parse_rcpt(args, len, s->txn.mail.smtputf8, &r, &reply) < 0) {
		smtp_error(s, reply);
		return;
	}
	char pm[SMTP_PATH_MAX + 1];
	const char *address = r.address;
	const char *domain = r.address + r.at + 1;
	if (r.postmaster) {
		/* RFC 5321 4.5.1: <Postmaster> is the postmaster of our first domain. */
		const char *d = cfg->n_domains > 0 ? cfg->domains[0] : smtp_hostname(s);
		snprintf(pm, sizeof(pm), "postmaster@%s", d);
		address = pm;
		domain = pm + strlen("postmaster@");
	}
	bool local = domain[0] != '[' && cfg_is_local_domain(cfg, domain, strlen(domain));
	if (!local) {
		if (!s->submission || !s->authenticated) {
			smtp_error(s, "550 5.7.1 Relay access denied");
			return;
		}
		if (!smtp_txn_has_rcpt(&s->txn, address))
			smtp_txn_add_rcpt(&s->txn, address, 0, 0, r.notify, r.orcpt);
		smtp_set_state(s, SMTP_S_RCPT);
		smtp_reply(s, "250 2.1.5 Ok");
		return;
	}
	struct store *st = conn_services(s->c) ? conn_services(s->c)->store : NULL;
	char *norm = NULL;
	if (store_address_normalize(address, &norm) < 0) {
		smtp_error(s, "550 5.1.1 Recipient address rejected: user unknown");
		return;
	}
	if (st == NULL) {
		free(norm);
		smtp_reply(s, "451 4.3.0 Temporary failure looking up the recipient");
		return;
	}
	struct smtp_rcpt_wait *w = calloc(1, sizeof(*w));
	if (w == NULL)
		abort();
	w->s = s;
	w->notify = r.notify;
	memcpy(w->orcpt, r.orcpt, sizeof(w->orcpt));
	w->address = norm;
	conn_pause(s->c);
	conn_hold(s->c);
	s->waiting = true;
	if (store_user_get(st, norm, smtp_rcpt_looked_up, w) < 0) {
		s->waiting = false;
		conn_release(s->c);
		conn_resume(s->c);
		free(w->address);
		free(w);
		smtp_reply(s, "451 4.3.0 Temporary failure looking up the recipient");
	}
}
