#ifndef SEALMAIL_STORE_VFS_H
#define SEALMAIL_STORE_VFS_H
/*
 * An encrypting SQLite VFS over the default one (docs/encryption.md). Every page of the
 * database file and of the WAL is sealed with AES-256-GCM under the data key: the nonce and
 * tag live in the STORE_VFS_RESERVE reserved bytes at the end of each page, the page number
 * (database) or frame offset (WAL) is authenticated with it, and a page that fails its tag
 * is a read error (SQLITE_IOERR_DATA, logged), never data. Only bytes 16..23 of the database
 * header stay in clear (page size, versions, reserved bytes: SQLite reads them before any
 * page). The -shm file is passed through (page and frame numbers, no content); every other
 * file SQLite might open (rollback journals, temporary files) is refused, so nothing is
 * ever written in clear: connections use temp_store=MEMORY and journal_mode=WAL.
 * Only storage/sqlite/ includes this.
 */
#include <stdint.h>

#define STORE_VFS_RESERVE 32 /* nonce 12, tag 16, 4 zero */
#define STORE_KEY_LEN     32

struct store_vfs;

/* Registers a new VFS instance sealing with key (copied; wiped at unregister). Returns 0 and
 * *vfs_r, or -ENOMEM/-EIO. store_vfs_name() is the name to give sqlite3_open_v2. */
int store_vfs_register(const uint8_t key[STORE_KEY_LEN], struct store_vfs **vfs_r);
const char *store_vfs_name(const struct store_vfs *vfs);
/* Another instance sealing with the same key (its own nonce prefix). 0 or -EIO. */
int store_vfs_clone(const struct store_vfs *vfs, struct store_vfs **clone_r);
/* Whether page 1 of the database file at path opens under key: 1 yes, 0 no, -errno. */
int store_vfs_check_file(const char *path, const uint8_t key[STORE_KEY_LEN]);
/* Lets the instance keep rollback journals in memory (never on disk). Only for files that
 * are thrown away unless fully written (a conversion's or a backup's temporary copy): a
 * crash loses the journal, so it must never serve the store itself. */
void store_vfs_memory_journals(struct store_vfs *vfs);
/* After every connection using it is closed. NULL is ignored. */
void store_vfs_unregister(struct store_vfs *vfs);

#endif
