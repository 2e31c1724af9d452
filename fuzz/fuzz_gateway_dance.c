/*
 * libFuzzer target: what a STARTTLS gateway parses (server/gateway/gateway_dance.h): the
 * client's command lines before TLS and the backend's greeting. The first byte picks the
 * protocol; the rest is split at LF into lines as the gateway does, and also offered whole
 * as a backend greeting. Checks that a greeting is never said to be longer than its input
 * or the bound, and that replies end with CRLF.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/gateway/gateway_dance.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum cfg_speaks sp = (enum cfg_speaks)(1 + data[0] % 3);
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	ssize_t g = gateway_backend_greeting(sp, in, len);
	if (g > 0 && ((size_t)g > len || (size_t)g > GW_GREETING_MAX))
		abort();
	size_t off = 0;
	while (off < len) {
		const char *nl = memchr(in + off, '\n', len - off);
		size_t n = nl != NULL ? (size_t)(nl - (in + off)) : len - off;
		size_t line = n > 0 && in[off + n - 1] == '\r' ? n - 1 : n;
		struct buf b;
		buf_init(&b, 1 << 16);
		gateway_dance_line(sp, "gw.example", in + off, line, &b);
		if (b.len < 2 || b.data[b.len - 2] != '\r' || b.data[b.len - 1] != '\n')
			abort();
		buf_free(&b);
		off += n + 1;
	}
	return 0;
}
