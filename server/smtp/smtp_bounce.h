#ifndef SEALMAIL_SMTP_BOUNCE_H
#define SEALMAIL_SMTP_BOUNCE_H
/*
 * The failure report on local copies the store refuses after DATA (a recipient over quota
 * by then, or deleted since RCPT) while other copies are stored: the SMTP reply is 250 for
 * the message, so the sender learns about those recipients from a DSN (RFC 3464, formatted
 * by relay_notice_format_failed). The store asks for it inside the delivery's transaction
 * (store.h, struct store_deliver_report): smtp_bounce_format is that hook.
 *
 * The message is not tried again for those recipients, so each is reported as a permanent
 * failure: 5.2.2 for a full mailbox (RFC 3463 X.2.2 with class 5: the attempt is over),
 * 5.1.1 for a user that no longer exists.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_report_input;
struct store_target;

struct smtp_bounce_rcpt {
	const char *address;
	int64_t user_id;    /* the target it was delivered as */
	const char *notify; /* DSN NOTIFY (smtp_notify_str form) or NULL */
	const char *orcpt;  /* DSN ORCPT as received, or NULL */
};

/* What the hook reads; every pointer is borrowed and must stay unchanged until the
 * delivery's callback (the hook runs on a store thread, maybe twice). */
struct smtp_bounce {
	const char *reporting_mta;
	const char *sender;
	const char *envid; /* or NULL */
	const char *ret;   /* "FULL", "HDRS" or NULL */
	bool requiretls;
	int64_t arrival;
	const char *boundary;
	size_t max_size; /* of the report */
	const struct smtp_bounce_rcpt *rcpts;
	size_t n_rcpts;
	const struct store_target *targets; /* the delivery's, to map a failed target back */
	size_t n_targets;
	bool local; /* sender in a local domain: the report is delivered here */
};

/* The DSN status and the diagnostic of a target that failed with rc (store_delivered.rc),
 * whose user's quota is quota (0 = unlimited), for a message of size bytes. */
void smtp_bounce_status(int rc, uint64_t quota, uint64_t size, const char **status_r,
                        const char **diagnostic_r);
/* store_deliver_report.format with ctx a struct smtp_bounce. */
int smtp_bounce_format(void *ctx, const struct store_report_input *in, char **msg_r, size_t *len_r);

#endif
