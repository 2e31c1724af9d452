/*
 * libFuzzer target: mailbox names (server/imap/imap_mutf7.h). Decodes the input as
 * modified UTF-7 and checks that its re-encoding decodes to the same text; encodes it as UTF-8 and
 * checks the round trip; runs the name checks in both client modes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/imap/imap_mutf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	char *utf8 = NULL, *back = NULL, *name = NULL;

	if (imap_mutf7_to_utf8(in, size, &utf8) == 0) {
		size_t n = strlen(utf8);
		if (!imap_utf8_valid(utf8, n))
			abort();
		if (imap_utf8_to_mutf7(utf8, n, &back) != 0)
			abort();
		char *again = NULL;
		if (imap_mutf7_to_utf8(back, strlen(back), &again) != 0 || strcmp(again, utf8) != 0)
			abort();
		free(again);
		free(back);
		back = NULL;
		free(utf8);
	}

	bool valid = imap_utf8_valid(in, size);
	if (imap_utf8_to_mutf7(in, size, &back) == 0) {
		if (!valid)
			abort();
		if (memchr(in, '\0', size) == NULL) {
			if (imap_mutf7_to_utf8(back, strlen(back), &utf8) != 0)
				abort();
			if (strlen(utf8) != size || memcmp(utf8, in, size) != 0)
				abort();
			free(utf8);
		}
		free(back);
	}

	if (imap_mailbox_name_check(in, size, &name) == 0) {
		char *client = imap_mailbox_to_client(name, false);
		char *again = NULL;
		if (imap_mailbox_from_client(client, strlen(client), false, &again) != 0 ||
		    strcmp(again, name) != 0)
			abort();
		free(again);
		free(client);
		free(name);
	}
	if (imap_mailbox_from_client(in, size, false, &name) == 0)
		free(name);
	if (imap_mailbox_from_client(in, size, true, &name) == 0)
		free(name);
	return 0;
}
