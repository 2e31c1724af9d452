#ifndef SEALMAIL_BENCH_FLUSH_VFS_H
#define SEALMAIL_BENCH_FLUSH_VFS_H
/*
 * A benchmark-only SQLite VFS that models a slower disk: it wraps the default VFS ("unix")
 * and adds a fixed sleep to every xSync, i.e. to each fsync SQLite asks for (the WAL's at
 * every COMMIT with synchronous=FULL, the WAL's and the database's at checkpoints). The
 * sleep blocks only the syncing thread and costs no CPU, as a real flush does.
 *
 * Never linked into sealmaild: it lives in bench/ and exists so that group commit can be
 * measured where a flush costs what it costs on real disks, not ~80 µs as on the virtio
 * disk with a write-back cache this project is benchmarked on.
 */
#include <stdint.h>

/* Registers the shim as the process's default VFS, adding flush_us microseconds to every
 * xSync (0: only counts syncs). Call once, before any database is opened. 0 or -EIO. */
int bench_flush_vfs_register(unsigned flush_us);

/* xSync calls so far (every connection of the process). */
uint64_t bench_flush_vfs_syncs(void);

/* Sleeps us microseconds (the same sleep the shim adds; for the raw fdatasync probe). */
void bench_flush_sleep(unsigned us);

#endif
