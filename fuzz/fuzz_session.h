#ifndef SEALMAIL_FUZZ_SESSION_H
#define SEALMAIL_FUZZ_SESSION_H
/*
 * The driver the whole-session fuzz targets share: a protocol session on the fake conn of
 * the unit tests (tests/unit/support/conn_fake.c). The first input byte is a mode:
 *   2 implicit TLS (else STARTTLS)   4 a client certificate identity   8 certificate_login
 *   16 end with an idle timeout      32 end with a server shutdown
 * (targets may read other bits). The rest is split at LF into lines; a line that starts
 * with byte 0xff stands for an over-long one; STARTTLS completes at once; bytes the
 * session asks for (literals, BDAT) are taken from the input, as the real conn does.
 */
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "server/conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fills cfg and l with small limits for protocol p, TLS mode and certificate_login from
 * mode. Strings are static. */
void fuzz_session_config(struct config *cfg, struct cfg_listener *l, enum cfg_protocol p,
                         unsigned mode);
/* Opens a session of h, feeds it data, ends it as mode says and frees it. */
void fuzz_session_run(const struct proto_handler *h, const struct config *cfg,
                      const struct cfg_listener *l, unsigned mode, const uint8_t *data,
                      size_t size);

#endif
