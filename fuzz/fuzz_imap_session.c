/*
 * libFuzzer target: one whole IMAP session (imap_proto_handler, server/imap/imap_session.c)
 * against the fake conn of the unit tests (tests/unit/support/conn_fake.c, imap_fakes.c).
 * The real store is linked, but the session gets none: the fake answers every login
 * "failed", so this covers the not-authenticated state, which never reaches the store: the
 * command reader, tags, literals, STARTTLS, LOGIN/AUTHENTICATE exchanges and the limits.
 * The first byte picks STARTTLS or implicit TLS, a client certificate identity and how the
 * session ends; the rest is split at LF into lines (a line that starts with byte 0xff
 * stands for an over-long one). STARTTLS completes at once; bytes the session asks for
 * (literals) are taken from the input, as the real conn does.
 */

#include "fuzz/fuzz_session.h"
#include "server/imap/imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0];
	struct config cfg;
	struct cfg_listener listener;
	fuzz_session_config(&cfg, &listener, CFG_PROTO_IMAP, mode);
	fuzz_session_run(&imap_proto_handler, &cfg, &listener, mode, data + 1, size - 1);
	return 0;
}
