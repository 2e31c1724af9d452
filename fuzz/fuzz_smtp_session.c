/*
 * libFuzzer target: one whole SMTP session (server/smtp/smtp.h) against the fake conn of
 * the unit tests (tests/unit/support/conn_fake.c, smtp_fakes.c: password "secret" logs in,
 * no store). The first byte picks submission or MX, STARTTLS or implicit TLS, and a
 * client certificate identity; the rest is split at LF into lines (a line that starts
 * with byte 0xff stands for an over-long one). STARTTLS completes at once; bytes the
 * session asks for (BDAT) are taken from the input, as the real conn does.
 */

#include "fuzz/fuzz_session.h"
#include "server/smtp/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0];
	struct config cfg;
	struct cfg_listener listener;
	fuzz_session_config(&cfg, &listener, CFG_PROTO_SUBMISSION, mode);
	if ((mode & 1) != 0)
		listener.protocol = CFG_PROTO_SMTP;
	fuzz_session_run(&smtp_proto_handler, &cfg, &listener, mode, data + 1, size - 1);
	return 0;
}
