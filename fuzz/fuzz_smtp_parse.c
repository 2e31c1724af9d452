/*
 * libFuzzer target: MAIL and RCPT arguments (server/smtp/smtp_parse.h). The first byte
 * picks the verb and SMTPUTF8; the rest is the argument. Checks that outputs stay within
 * their documented bounds and decodes ENVID and ORCPT as xtext.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "server/smtp/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0];
	const char *arg = (const char *)data + 1;
	size_t len = size - 1;
	const char *reply = NULL;

	/* The session hands over a NUL-terminated copy; the parser must use len alone. */
	char *copy = xmalloc(len > 0 ? len : 1);
	memcpy(copy, arg, len);

	if ((mode & 1) == 0) {
		struct smtp_mail_args m;
		if (smtp_parse_mail(copy, len, &m, &reply) == 0) {
			size_t n = strnlen(m.address, sizeof(m.address));
			if (n > SMTP_PATH_MAX || (n > 0 && (m.at >= n || m.address[m.at] != '@')))
				abort();
			if (m.utf8 && !smtp_utf8_valid(m.address, n))
				abort();
			size_t e = strnlen(m.envid, sizeof(m.envid));
			if (e > SMTP_ENVID_MAX)
				abort();
			char out[SMTP_ENVID_MAX + 1];
			if (e > 0 && smtp_xtext_decode(m.envid, e, out) < 0)
				abort();
		} else if (reply == NULL) {
			abort();
		}
	} else {
		struct smtp_rcpt_args r;
		if (smtp_parse_rcpt(copy, len, (mode & 2) != 0, &r, &reply) == 0) {
			size_t n = strnlen(r.address, sizeof(r.address));
			if (n == 0 || n > SMTP_PATH_MAX)
				abort();
			if (!r.postmaster && (r.at >= n || r.address[r.at] != '@'))
				abort();
			char buf[32];
			(void)smtp_notify_str(r.notify, buf, sizeof(buf));
			size_t o = strnlen(r.orcpt, sizeof(r.orcpt));
			if (o > SMTP_ORCPT_MAX)
				abort();
		} else if (reply == NULL) {
			abort();
		}
	}
	free(copy);

	char *out = xmalloc(len + 1);
	long n = smtp_xtext_decode(arg, len, out);
	if (n > (long)len)
		abort();
	free(out);
	(void)smtp_utf8_valid(arg, len);
	return 0;
}
