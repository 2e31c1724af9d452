/*
 * libFuzzer target: the identity of a client certificate (certs/cert.h,
 * cert_identity_from_der). Checks that an accepted address is lower-case, bounded, has
 * exactly one '@' between a non-empty local part and domain, and no space or control byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "certs/cert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *addr = NULL;
	const char *error = NULL;
	if (cert_identity_from_der(data, size, &addr, &error) == 0) {
		size_t n = strlen(addr);
		const char *at = strchr(addr, '@');
		if (n == 0 || n > CERT_ADDRESS_MAX || at == NULL || at == addr || at[1] == '\0' ||
		    strchr(at + 1, '@') != NULL)
			abort();
		for (size_t i = 0; i < n; i++) {
			unsigned char ch = (unsigned char)addr[i];
			if (ch <= 0x20 || ch >= 0x7f || (ch >= 'A' && ch <= 'Z'))
				abort();
		}
		free(addr);
	}
	return 0;
}
