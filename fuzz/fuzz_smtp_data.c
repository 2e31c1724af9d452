/*
 * libFuzzer target: the DATA / BDAT message reader (server/smtp/smtp_data.h). The first
 * byte picks DATA or BDAT, BINARYMIME, a size limit, the submission headers to add and
 * whether the sink fails; the rest is split at LF into lines (DATA, an over-long line
 * where a line holds byte 0xff at its start) or fed in chunks (BDAT). Checks that the
 * sink receives at most what the reader says and that DATA ends where it reports it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/smtp/smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink_state {
	uint64_t bytes;
	unsigned writes;
	bool fail_after_first;
};

static int sink_write(void *ctx, const void *data, size_t len)
{
	struct sink_state *s = ctx;
	(void)data;
	s->bytes += len;
	s->writes++;
	return s->fail_after_first && s->writes > 1 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0];
	data++;
	size--;

	struct sink_state st = {0, 0, (mode & 0x40) != 0};
	struct smtp_sink sink = {sink_write, &st};
	struct smtp_data_opts opts;
	memset(&opts, 0, sizeof(opts));
	opts.max_size = (mode & 2) != 0 ? 1 + (mode >> 3) * 37 : 0;
	opts.binary = (mode & 4) != 0;
	if ((mode & 0x80) != 0) {
		opts.add_message_id = "Message-ID: <fuzz@mail.test>\r\n";
		opts.add_date = "Date: Thu, 1 Jan 2026 00:00:00 +0000\r\n";
	}
	struct smtp_data d;
	smtp_data_init(&d, &opts, &sink);
	smtp_data_prepend(&d, "Received: from fuzz\r\n", 21);

	if ((mode & 1) == 0) {
		size_t off = 0;
		while (off < size) {
			const uint8_t *lf = memchr(data + off, '\n', size - off);
			size_t len = lf != NULL ? (size_t)(lf - (data + off)) : size - off;
			bool has_cr = len > 0 && data[off + len - 1] == '\r';
			size_t text = has_cr ? len - 1 : len;
			if (text > 0 && data[off] == 0xff) {
				smtp_data_line_too_long(&d);
			} else if (smtp_data_line(&d, (const char *)data + off, text, has_cr) ==
			           1) {
				if (text != 1 || data[off] != '.')
					abort();
				break;
			}
			off += len + (lf != NULL ? 1 : 0);
		}
	} else {
		size_t off = 0, chunk = 1 + (mode >> 3);
		while (off < size) {
			size_t n = chunk < size - off ? chunk : size - off;
			smtp_data_bytes(&d, data + off, n);
			off += n;
			chunk = chunk * 3 % 251 + 1;
		}
	}
	enum smtp_data_status status = smtp_data_finish(&d);
	if (status != SMTP_DATA_OK && smtp_data_reply(status) == NULL)
		abort();
	if (opts.max_size > 0 && status == SMTP_DATA_OK && d.size > opts.max_size)
		abort();
	return 0;
}
