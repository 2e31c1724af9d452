/*
 * The flush-cost shim (bench_flush_vfs.h). Every file the default VFS opens is wrapped: our
 * sqlite3_file is followed in memory by the real one, and each I/O method forwards to it;
 * only xSync adds the sleep after the real sync returned.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <time.h>

#include "bench/bench_flush_vfs.h"

struct flush_file {
	sqlite3_file base;
	sqlite3_file *real; /* right after this struct, szOsFile of the real VFS */
};

static sqlite3_vfs *real_vfs;
static unsigned sync_sleep_us;
static atomic_uint_fast64_t sync_count;

#define REAL(f) (((struct flush_file *)(f))->real)

void bench_flush_sleep(unsigned us)
{
	if (us == 0)
		return;
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

uint64_t bench_flush_vfs_syncs(void)
{
	return atomic_load(&sync_count);
}

static int f_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}

static int f_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int f_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int f_sync(sqlite3_file *f, int flags)
{
	int rc = REAL(f)->pMethods->xSync(REAL(f), flags);
	atomic_fetch_add(&sync_count, 1);
	if (rc == SQLITE_OK)
		bench_flush_sleep(sync_sleep_us);
	return rc;
}

static int f_file_size(sqlite3_file *f, sqlite3_int64 *size_r)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size_r);
}

static int f_lock(sqlite3_file *f, int level)
{
	return REAL(f)->pMethods->xLock(REAL(f), level);
}

static int f_unlock(sqlite3_file *f, int level)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int f_check_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int f_file_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int f_sector_size(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int f_device_chars(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

/* The methods below exist from io_methods version 2 (shared memory, WAL) and 3 (mmap). */
static int f_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **pp)
{
	const sqlite3_io_methods *m = REAL(f)->pMethods;
	return m->iVersion >= 2 ? m->xShmMap(REAL(f), region, size, extend, pp) : SQLITE_IOERR;
}

static int f_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	const sqlite3_io_methods *m = REAL(f)->pMethods;
	return m->iVersion >= 2 ? m->xShmLock(REAL(f), offset, n, flags) : SQLITE_IOERR;
}

static void f_shm_barrier(sqlite3_file *f)
{
	const sqlite3_io_methods *m = REAL(f)->pMethods;
	if (m->iVersion >= 2)
		m->xShmBarrier(REAL(f));
}

static int f_shm_unmap(sqlite3_file *f, int delete_flag)
{
	const sqlite3_io_methods *m = REAL(f)->pMethods;
	return m->iVersion >= 2 ? m->xShmUnmap(REAL(f), delete_flag) : SQLITE_OK;
}

static int f_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	const sqlite3_io_methods *m = REAL(f)->pMethods;
	if (m->iVersion >= 3)
		return m->xFetch(REAL(f), off, n, pp);
	*pp = NULL;
	return SQLITE_OK;
}

static int f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	const sqlite3_io_methods *m = REAL(f)->pMethods;
	return m->iVersion >= 3 ? m->xUnfetch(REAL(f), off, p) : SQLITE_OK;
}

static const sqlite3_io_methods flush_io = {
    .iVersion = 3,
    .xClose = f_close,
    .xRead = f_read,
    .xWrite = f_write,
    .xTruncate = f_truncate,
    .xSync = f_sync,
    .xFileSize = f_file_size,
    .xLock = f_lock,
    .xUnlock = f_unlock,
    .xCheckReservedLock = f_check_reserved,
    .xFileControl = f_file_control,
    .xSectorSize = f_sector_size,
    .xDeviceCharacteristics = f_device_chars,
    .xShmMap = f_shm_map,
    .xShmLock = f_shm_lock,
    .xShmBarrier = f_shm_barrier,
    .xShmUnmap = f_shm_unmap,
    .xFetch = f_fetch,
    .xUnfetch = f_unfetch,
};

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	struct flush_file *ff = (struct flush_file *)f;
	ff->real = (sqlite3_file *)(ff + 1);
	int rc = real_vfs->xOpen(real_vfs, name, ff->real, flags, out_flags);
	/* SQLite calls xClose only when pMethods is set; mirror the real file. */
	ff->base.pMethods = ff->real->pMethods != NULL ? &flush_io : NULL;
	return rc;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static int v_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	return real_vfs->xRandomness(real_vfs, n, out);
}

static int v_sleep(sqlite3_vfs *vfs, int us)
{
	return real_vfs->xSleep(real_vfs, us);
}

static int v_current_time(sqlite3_vfs *vfs, double *out)
{
	return real_vfs->xCurrentTime(real_vfs, out);
}

static int v_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	return real_vfs->xGetLastError(real_vfs, n, out);
}

static int v_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

/* No loadable extensions in the bench: xDlOpen and friends stay NULL. */
static sqlite3_vfs flush_vfs = {
    .iVersion = 2,
    .zName = "bench-flush",
    .xOpen = v_open,
    .xDelete = v_delete,
    .xAccess = v_access,
    .xFullPathname = v_full_pathname,
    .xRandomness = v_randomness,
    .xSleep = v_sleep,
    .xCurrentTime = v_current_time,
    .xGetLastError = v_last_error,
    .xCurrentTimeInt64 = v_current_time64,
};

int bench_flush_vfs_register(unsigned flush_us)
{
	if (sqlite3_initialize() != SQLITE_OK)
		return -EIO;
	real_vfs = sqlite3_vfs_find(NULL);
	if (real_vfs == NULL || real_vfs->iVersion < 2)
		return -EIO;
	sync_sleep_us = flush_us;
	flush_vfs.szOsFile = (int)sizeof(struct flush_file) + real_vfs->szOsFile;
	flush_vfs.mxPathname = real_vfs->mxPathname;
	return sqlite3_vfs_register(&flush_vfs, 1) == SQLITE_OK ? 0 : -EIO;
}
