/*
 * Quota answers for RCPT and after DATA (smtp_quota.h).
 */
#include "server/smtp/smtp_quota.h"

#include <stddef.h>

bool smtp_quota_never_fits(uint64_t quota, uint64_t size)
{
	return quota > 0 && size > quota;
}

const char *smtp_quota_rcpt_reply(uint64_t quota, uint64_t used, bool has_size, uint64_t size)
{
	if (quota == 0)
		return NULL;
	/* Before the usage check: a message that can never fit is refused for good, so the
	 * client bounces it now instead of retrying for days. */
	if (has_size && smtp_quota_never_fits(quota, size))
		return SMTP_QUOTA_FULL_PERM;
	if (used >= quota)
		return SMTP_QUOTA_FULL_TEMP;
	/* used < quota here, so quota - used cannot wrap; size may be UINT64_MAX. */
	if (has_size && size > quota - used)
		return SMTP_QUOTA_FULL_TEMP;
	return NULL;
}

const char *smtp_quota_count_reply(uint64_t quota_messages, uint64_t used_messages)
{
	if (quota_messages != 0 && used_messages >= quota_messages)
		return SMTP_QUOTA_FULL_TEMP;
	return NULL;
}
