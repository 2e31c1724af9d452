#ifndef SEALMAIL_CRLGUARD_H
#define SEALMAIL_CRLGUARD_H
/*
 * The rules that keep the client CRL from rolling back or lapsing, without GnuTLS or libuv
 * (tls.c reads the CRL, server.c applies these).
 *
 * - A CRL is summed up as a mark: its issuer (SHA-256 of the issuer's DER name, hex), its
 *   CRL number (when it has one) and its thisUpdate.
 * - A candidate is older than a reference when both come from the same issuer and its CRL
 *   number is lower or its thisUpdate is earlier. A CRL from another issuer (the client CA
 *   was replaced) is never older: numbering starts again with a new CA.
 * - The highest mark accepted is kept in a one-line state file in data_dir, so a restart
 *   does not forget it: "issuer=HEX number=N|- this_update=UNIXTIME\n".
 * - A CRL is expiring within CRLGUARD_WARN_DAYS days of its nextUpdate.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CRLGUARD_WARN_DAYS  7
#define CRLGUARD_STATE_FILE "crl-state"
#define CRLGUARD_ISSUER_LEN 64 /* hex digits of a SHA-256 */

struct crl_mark {
	char issuer[CRLGUARD_ISSUER_LEN + 1];
	bool has_number;
	uint64_t number;
	time_t this_update;
};

/* Whether cand is older than ref (see above). */
bool crlguard_older(const struct crl_mark *cand, const struct crl_mark *ref);

/* When next_update is within CRLGUARD_WARN_DAYS days from now and not yet passed: true,
 * with the whole days left (0 on the last day) in *days_left_r. */
bool crlguard_expiring(time_t next_update, time_t now, int *days_left_r);

/* The state-file line for m into buf (NUL-terminated). 0, or -ENOBUFS when len is short. */
int crlguard_format(const struct crl_mark *m, char *buf, size_t len);
/* Parses one state-file line (a final LF is allowed). 0, or -EINVAL. */
int crlguard_parse(const char *text, struct crl_mark *m_r);

/* Reads the state file at path. 0, -ENOENT when there is none, -EINVAL when it is
 * malformed, or another negative errno. */
int crlguard_load(const char *path, struct crl_mark *m_r);
/* Replaces the state file at path atomically (mode 0600, written and synced beside it,
 * then renamed). 0 or a negative errno. */
int crlguard_save(const char *path, const struct crl_mark *m);

/* "2026-01-31T12:00:00Z" for the log; buf holds at least 21 bytes. Returns buf. */
const char *crlguard_time(time_t t, char *buf, size_t len);

#endif
