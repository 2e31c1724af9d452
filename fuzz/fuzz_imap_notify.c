/*
 * libFuzzer target: NOTIFY arguments (server/imap/imap_notify_parse.h). The input is the
 * text after "t NOTIFY "; what imap_parse takes goes to imap_notify_parse in both client
 * modes, and a spec it accepts is asked which events a few names get.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/imap/imap_notify_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char prefix[] = "t NOTIFY ";
	size_t len = sizeof(prefix) - 1 + size + 2;
	char *line = malloc(len);
	if (line == NULL)
		abort();
	memcpy(line, prefix, sizeof(prefix) - 1);
	memcpy(line + sizeof(prefix) - 1, data, size);
	memcpy(line + len - 2, "\r\n", 2);
	for (int utf8 = 0; utf8 < 2; utf8++) {
		char *copy = malloc(len);
		if (copy == NULL)
			abort();
		memcpy(copy, line, len);
		struct imap_args a = {0};
		const char *err = NULL;
		if (imap_parse(copy, len, &a, &err) == 0 && a.n >= 2) {
			struct imap_notify_spec spec;
			int rc = imap_notify_parse(a.v + 2, a.n - 2, utf8 != 0, &spec, &err);
			if (rc < 0 && rc != -EINVAL && rc != -E2BIG && rc != -ENOTSUP)
				abort();
			if (rc < 0 && err == NULL)
				abort();
			if (rc == 0) {
				(void)imap_notify_selected(&spec);
				(void)imap_notify_events_for(&spec, "INBOX", true);
				(void)imap_notify_events_for(&spec, "a/b", false);
			}
			imap_notify_spec_free(&spec);
		}
		imap_args_free(&a);
		free(copy);
	}
	free(line);
	return 0;
}
