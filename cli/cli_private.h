#ifndef SEALMAIL_CLI_PRIVATE_H
#define SEALMAIL_CLI_PRIVATE_H
/*
 * sealctl internals: one file per noun (cmd_user.c, cmd_mailbox.c, cmd_cert.c,
 * cmd_queue.c, cmd_quota.c, cmd_dns.c), dispatched from sealctl.c. A noun handler returns the exit
 * code: CLI_OK, CLI_FAIL (operational failure) or CLI_USAGE, after printing one line on standard
 * error that says what to do.
 */
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "storage/store.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

struct cli {
	const char *config_path;
	struct config *cfg;
	struct store *store; /* opened on first use by cli_store() */
	char *ca_dir;        /* the CA's folder, resolved on first use (cmd_cert.c) */
	/* After `store rekey`: the new key file, which opens the store from then on (the
	 * audit record of the command is written after it). */
	const char *key_file_override;
};

struct cli_noun {
	const char *name;
	const char *usage;                                  /* lines of "<noun> <verb> ..." */
	int (*run)(struct cli *cli, int argc, char **argv); /* argv[0] is the verb */
};

extern const struct cli_noun cli_noun_user;
extern const struct cli_noun cli_noun_mailbox;
extern const struct cli_noun cli_noun_queue;
extern const struct cli_noun cli_noun_cert;
extern const struct cli_noun cli_noun_quota;
extern const struct cli_noun cli_noun_backup;
extern const struct cli_noun cli_noun_restore;
extern const struct cli_noun cli_noun_status;
extern const struct cli_noun cli_noun_dns;
extern const struct cli_noun cli_noun_audit;
extern const struct cli_noun cli_noun_store;
/* sealctl store genkey PATH, which runs without a configuration. */
int cli_store_genkey(int argc, char **argv);

/* The configured key-encryption key into kek, *kek_r pointing at it (NULL when the store
 * is not to be encrypted): CLI_OK, or CLI_FAIL after printing why. Wipe kek after use. */
int cli_kek(struct cli *cli, uint8_t kek[32], const uint8_t **kek_r);
/* The store of the configured data_dir (created when missing), or NULL after printing why. */
struct store *cli_store(struct cli *cli);
/* Prints "sealctl: <formatted>" on standard error. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_usage(const struct cli_noun *noun, const char *problem);
/* Normalizes address and checks that its domain is configured: 0, or an exit code. */
int cli_local_address(struct cli *cli, const char *address, char **norm_r);
/* Records the command argv[0..argc) (noun first) and its exit code rc in the access audit,
 * unless it only looked (cmd_audit.c). */
void cli_audit_admin(struct cli *cli, int argc, char **argv, int rc);
/* Runs one store call to completion: rc of the operation. */
int cli_wait(struct store_sync *w, int submit_rc);

/* Asks the sealmaild serving this data_dir (if one runs) to close the sessions of users
 * that are now disabled or deleted; says what to do when it cannot be signalled. */
void cli_tell_daemon(struct cli *cli);
/* The port clients should use for protocol p (an implicit-TLS listener first, else
 * STARTTLS), 0 when none is configured. */
unsigned cli_client_port(const struct config *cfg, enum cfg_protocol p);
/* Writes the signed Apple profile for address with the PKCS#12 at p12_path to out_path
 * (mode 0600): 0, or 1 after printing why. */
int cli_mobileconfig_write(struct cli *cli, const char *address, const char *p12_path,
                           const char *out_path);

#endif
