/*
 * faultvfs: a test-only SQLite VFS, loaded into sealmaild with LD_PRELOAD (never linked
 * into it), that makes a disk fail the ways real ones do. It wraps the default VFS and
 * becomes the process's default, so the store uses it without knowing. Each mode is
 * switched on by an environment variable:
 *
 *   SEALMAIL_FAULTVFS_JOURNAL=PATH  power cut: before every write or truncate of the
 *       database or its WAL, the bytes it overwrites are appended to PATH (an undo log);
 *       after every successful sync, a mark says those writes are durable. After kill -9,
 *       tests/integration/powercut.py undoes every write not covered by a sync: the files
 *       are then what a power cut at that instant would have left on a disk that keeps
 *       exactly what was synced.
 *   SEALMAIL_FAULTVFS_FAIL_SYNC_AFTER=N  a failing disk: the first N syncs succeed, every
 *       later one fails with SQLITE_IOERR_FSYNC (as fsync's EIO); a sync tried after the
 *       first failure also prints "faultvfs: sync after failure" to standard error.
 *   SEALMAIL_FAULTVFS_SPACE=BYTES  a full disk: the files may grow by BYTES in all beyond
 *       their size when opened; a write past that fails with SQLITE_FULL.
 *
 * Undo records (native byte order, one process writes and one reads them back):
 *   'O' u32 file  u32 len  path       a file was opened (file numbers count up)
 *   'W' u32 file  u64 off  u64 size_before  u32 n  bytes[n]   n old bytes at off
 *   'T' u32 file  u64 size_before  u64 size_after  bytes[size_before - size_after]
 *   'S' u32 file                      every record before this one for file is durable
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ffile {
	sqlite3_file base; /* pMethods = &methods */
	sqlite3_file *real;
	uint32_t id;
	int tracked; /* the database or its WAL */
	sqlite3_int64 size_at_open;
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs fault_vfs;
static struct sqlite3_io_methods methods;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int journal_fd = -1;
static uint32_t next_id;
static long long fail_sync_after = -1, syncs;
static long long space = -1, grown;

static void jwrite(const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(journal_fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			abort(); /* a test cannot go on with a broken undo log */
		c += w;
		n -= (size_t)w;
	}
}

static void record(char kind, uint32_t id, const void *a, size_t an, const void *b, size_t bn)
{
	pthread_mutex_lock(&lock);
	jwrite(&kind, 1);
	jwrite(&id, sizeof(id));
	if (an > 0)
		jwrite(a, an);
	if (bn > 0)
		jwrite(b, bn);
	pthread_mutex_unlock(&lock);
}

static int f_close(sqlite3_file *f)
{
	struct ffile *ff = (struct ffile *)f;
	int rc = ff->real->pMethods->xClose(ff->real);
	sqlite3_free(ff->real);
	return rc;
}

static int f_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	struct ffile *ff = (struct ffile *)f;
	return ff->real->pMethods->xRead(ff->real, buf, n, off);
}

/* The bytes [off, off + n) hold before a write, and the file's size, into the log. */
static int save_old(struct ffile *ff, sqlite3_int64 off, int n)
{
	sqlite3_int64 size = 0;
	int rc = ff->real->pMethods->xFileSize(ff->real, &size);
	if (rc != SQLITE_OK)
		return rc;
	uint32_t have = 0;
	if (off < size)
		have = (uint32_t)(size - off < n ? size - off : n);
	char *old = have > 0 ? malloc(have) : NULL;
	if (have > 0) {
		rc = ff->real->pMethods->xRead(ff->real, old, (int)have, off);
		if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) {
			free(old);
			return rc;
		}
	}
	char head[8 + 8 + 4];
	uint64_t o = (uint64_t)off, s = (uint64_t)size;
	memcpy(head, &o, 8);
	memcpy(head + 8, &s, 8);
	memcpy(head + 16, &have, 4);
	record('W', ff->id, head, sizeof(head), old, have);
	free(old);
	return SQLITE_OK;
}

static int f_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	struct ffile *ff = (struct ffile *)f;
	if (ff->tracked && space >= 0) {
		sqlite3_int64 size = 0;
		ff->real->pMethods->xFileSize(ff->real, &size);
		long long more = off + n > size ? (long long)(off + n - size) : 0;
		pthread_mutex_lock(&lock);
		int full = more > 0 && grown + more > space;
		if (!full)
			grown += more;
		pthread_mutex_unlock(&lock);
		if (full)
			return SQLITE_FULL;
	}
	if (ff->tracked && journal_fd >= 0) {
		int rc = save_old(ff, off, n);
		if (rc != SQLITE_OK)
			return rc;
	}
	return ff->real->pMethods->xWrite(ff->real, buf, n, off);
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct ffile *ff = (struct ffile *)f;
	if (ff->tracked && journal_fd >= 0) {
		sqlite3_int64 before = 0;
		int rc = ff->real->pMethods->xFileSize(ff->real, &before);
		if (rc != SQLITE_OK)
			return rc;
		if (before > size) {
			size_t n = (size_t)(before - size);
			char *tail = malloc(n);
			rc = ff->real->pMethods->xRead(ff->real, tail, (int)n, size);
			if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) {
				free(tail);
				return rc;
			}
			char head[16];
			uint64_t b = (uint64_t)before, a = (uint64_t)size;
			memcpy(head, &b, 8);
			memcpy(head + 8, &a, 8);
			record('T', ff->id, head, sizeof(head), tail, n);
			free(tail);
		}
	}
	return ff->real->pMethods->xTruncate(ff->real, size);
}

static int f_sync(sqlite3_file *f, int flags)
{
	struct ffile *ff = (struct ffile *)f;
	if (ff->tracked && fail_sync_after >= 0) {
		pthread_mutex_lock(&lock);
		int again = syncs > fail_sync_after; /* a failure was already reported */
		int fail = syncs >= fail_sync_after;
		syncs++;
		pthread_mutex_unlock(&lock);
		if (again) /* the test checks that the store never tries again */
			fprintf(stderr, "faultvfs: sync after failure\n");
		if (fail)
			return SQLITE_IOERR_FSYNC;
	}
	int rc = ff->real->pMethods->xSync(ff->real, flags);
	if (rc == SQLITE_OK && ff->tracked && journal_fd >= 0)
		record('S', ff->id, NULL, 0, NULL, 0);
	return rc;
}

#define PASS(name, sig, args)                                                                      \
	static int f_##name sig                                                                    \
	{                                                                                          \
		struct ffile *ff = (struct ffile *)f;                                              \
		return ff->real->pMethods->x##name args;                                           \
	}
PASS(FileSize, (sqlite3_file * f, sqlite3_int64 *s), (ff->real, s))
PASS(Lock, (sqlite3_file * f, int l), (ff->real, l))
PASS(Unlock, (sqlite3_file * f, int l), (ff->real, l))
PASS(CheckReservedLock, (sqlite3_file * f, int *r), (ff->real, r))
PASS(FileControl, (sqlite3_file * f, int op, void *a), (ff->real, op, a))
PASS(SectorSize, (sqlite3_file * f), (ff->real))
PASS(DeviceCharacteristics, (sqlite3_file * f), (ff->real))
PASS(ShmMap, (sqlite3_file * f, int pg, int sz, int ext, void volatile **p),
     (ff->real, pg, sz, ext, p))
PASS(ShmLock, (sqlite3_file * f, int off, int n, int fl), (ff->real, off, n, fl))
PASS(ShmUnmap, (sqlite3_file * f, int del), (ff->real, del))
PASS(Fetch, (sqlite3_file * f, sqlite3_int64 off, int amt, void **p), (ff->real, off, amt, p))
PASS(Unfetch, (sqlite3_file * f, sqlite3_int64 off, void *p), (ff->real, off, p))

static void f_shm_barrier(sqlite3_file *f)
{
	struct ffile *ff = (struct ffile *)f;
	ff->real->pMethods->xShmBarrier(ff->real);
}

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
	struct ffile *ff = (struct ffile *)f;
	memset(ff, 0, sizeof(*ff));
	ff->real = sqlite3_malloc(real_vfs->szOsFile);
	if (ff->real == NULL)
		return SQLITE_NOMEM;
	memset(ff->real, 0, (size_t)real_vfs->szOsFile);
	int rc = real_vfs->xOpen(real_vfs, name, ff->real, flags, out);
	if (rc != SQLITE_OK || ff->real->pMethods == NULL) {
		sqlite3_free(ff->real);
		ff->real = NULL;
		return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
	}
	ff->tracked = (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)) != 0 && name != NULL;
	ff->real->pMethods->xFileSize(ff->real, &ff->size_at_open);
	pthread_mutex_lock(&lock);
	ff->id = next_id++;
	pthread_mutex_unlock(&lock);
	if (ff->tracked && journal_fd >= 0) {
		uint32_t len = (uint32_t)strlen(name);
		record('O', ff->id, &len, sizeof(len), name, len);
	}
	ff->base.pMethods = &methods;
	(void)vfs;
	return SQLITE_OK;
}

#define VPASS(name, sig, args)                                                                     \
	static int v_##name sig                                                                    \
	{                                                                                          \
		(void)vfs;                                                                         \
		return real_vfs->x##name args;                                                     \
	}
VPASS(Delete, (sqlite3_vfs * vfs, const char *n, int sd), (real_vfs, n, sd))
VPASS(Access, (sqlite3_vfs * vfs, const char *n, int fl, int *r), (real_vfs, n, fl, r))
VPASS(FullPathname, (sqlite3_vfs * vfs, const char *n, int len, char *out), (real_vfs, n, len, out))
VPASS(Randomness, (sqlite3_vfs * vfs, int n, char *out), (real_vfs, n, out))
VPASS(Sleep, (sqlite3_vfs * vfs, int us), (real_vfs, us))
VPASS(CurrentTimeInt64, (sqlite3_vfs * vfs, sqlite3_int64 *t), (real_vfs, t))

static void *v_dlopen(sqlite3_vfs *vfs, const char *n)
{
	(void)vfs;
	return real_vfs->xDlOpen(real_vfs, n);
}
static void v_dlerror(sqlite3_vfs *vfs, int n, char *m)
{
	(void)vfs;
	real_vfs->xDlError(real_vfs, n, m);
}
static void (*v_dlsym(sqlite3_vfs *vfs, void *h, const char *s))(void)
{
	(void)vfs;
	return real_vfs->xDlSym(real_vfs, h, s);
}
static void v_dlclose(sqlite3_vfs *vfs, void *h)
{
	(void)vfs;
	real_vfs->xDlClose(real_vfs, h);
}
static int v_current_time(sqlite3_vfs *vfs, double *t)
{
	(void)vfs;
	return real_vfs->xCurrentTime(real_vfs, t);
}
static int v_last_error(sqlite3_vfs *vfs, int n, char *m)
{
	(void)vfs;
	return real_vfs->xGetLastError != NULL ? real_vfs->xGetLastError(real_vfs, n, m) : 0;
}

__attribute__((constructor)) static void faultvfs_init(void)
{
	const char *j = getenv("SEALMAIL_FAULTVFS_JOURNAL");
	const char *fs = getenv("SEALMAIL_FAULTVFS_FAIL_SYNC_AFTER");
	const char *sp = getenv("SEALMAIL_FAULTVFS_SPACE");
	if (j == NULL && fs == NULL && sp == NULL)
		return;
	if (j != NULL &&
	    (journal_fd = open(j, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0)
		abort();
	if (fs != NULL)
		fail_sync_after = atoll(fs);
	if (sp != NULL)
		space = atoll(sp);
	real_vfs = sqlite3_vfs_find(NULL);
	if (real_vfs == NULL)
		abort();
	methods = (struct sqlite3_io_methods){
	    .iVersion = 3,
	    .xClose = f_close,
	    .xRead = f_read,
	    .xWrite = f_write,
	    .xTruncate = f_truncate,
	    .xSync = f_sync,
	    .xFileSize = f_FileSize,
	    .xLock = f_Lock,
	    .xUnlock = f_Unlock,
	    .xCheckReservedLock = f_CheckReservedLock,
	    .xFileControl = f_FileControl,
	    .xSectorSize = f_SectorSize,
	    .xDeviceCharacteristics = f_DeviceCharacteristics,
	    .xShmMap = f_ShmMap,
	    .xShmLock = f_ShmLock,
	    .xShmBarrier = f_shm_barrier,
	    .xShmUnmap = f_ShmUnmap,
	    .xFetch = f_Fetch,
	    .xUnfetch = f_Unfetch,
	};
	fault_vfs = (sqlite3_vfs){
	    .iVersion = 2,
	    .szOsFile = (int)sizeof(struct ffile),
	    .mxPathname = real_vfs->mxPathname,
	    .zName = "faultvfs",
	    .xOpen = v_open,
	    .xDelete = v_Delete,
	    .xAccess = v_Access,
	    .xFullPathname = v_FullPathname,
	    .xDlOpen = v_dlopen,
	    .xDlError = v_dlerror,
	    .xDlSym = v_dlsym,
	    .xDlClose = v_dlclose,
	    .xRandomness = v_Randomness,
	    .xSleep = v_Sleep,
	    .xCurrentTime = v_current_time,
	    .xGetLastError = v_last_error,
	    .xCurrentTimeInt64 = v_CurrentTimeInt64,
	};
	if (sqlite3_vfs_register(&fault_vfs, 1) != SQLITE_OK)
		abort();
}
