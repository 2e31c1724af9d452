/*
 * libFuzzer target: one whole POP3 session (pop3_proto_handler, server/pop3/pop3.h)
 * against the fake conn of the unit tests (tests/unit/support/conn_fake.c). The real store
 * is linked, but the session gets none: the fake answers every login "failed", so this
 * covers the AUTHORIZATION state, which never reaches the store: USER/PASS, AUTH PLAIN and
 * EXTERNAL exchanges, STLS (and lines injected after it), CAPA and the limits. The first
 * byte picks STLS or implicit TLS, a client certificate identity and how the session ends;
 * the rest is split at LF into lines (a line that starts with byte 0xff stands for an
 * over-long one). STLS completes at once.
 */

#include "fuzz/fuzz_session.h"
#include "server/pop3/pop3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0];
	struct config cfg;
	struct cfg_listener listener;
	fuzz_session_config(&cfg, &listener, CFG_PROTO_POP3, mode);
	cfg.auth.require_client_certificate = (mode & 64) != 0;
	fuzz_session_run(&pop3_proto_handler, &cfg, &listener, mode, data + 1, size - 1);
	return 0;
}
