/*
 * The encrypting VFS (store_vfs.h). Layout of a page of P bytes on disk, R =
 * STORE_VFS_RESERVE:
 *
 *   [0, P-R)      ciphertext of the page's usable bytes (page 1: bytes 16..23 in clear)
 *   [P-R, P-R+12) nonce
 *   [P-R+12, P-4) GCM tag
 *   [P-4, P)      zero
 *
 * Additional data: 'D' and the page number for the database file (so pages cannot be moved
 * or swapped; page 1 also binds its clear header bytes), 'W' and the frame's offset for the
 * WAL (the checkpoint re-encrypts what it copies, so WAL ciphertext never moves either).
 *
 * Nonces: a random 64-bit prefix drawn when the instance is registered (each store open)
 * and a 32-bit counter; at the counter's end a new prefix is drawn. Two seals under one key
 * reuse a nonce only if two prefixes collide: with k prefixes ever drawn under one data key
 * that chance is below k^2/2^65, under 2^-32 for k up to 2^16 (docs/encryption.md). A fully
 * random 96-bit nonce would instead bound the page writes per key at 2^32, which a busy
 * store reaches in weeks (each commit writes WAL frames and each checkpoint rewrites pages).
 */
#include "storage/sqlite/store_vfs.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmalloc.h"

#define VFS_NONCE 12
#define VFS_TAG   16
#define WAL_HDR   32
#define WAL_FRAME 24
#define PAGE_MIN  512
#define PAGE_MAX  65536

struct store_vfs {
	sqlite3_vfs base; /* first: SQLite hands this pointer back */
	sqlite3_vfs *under;
	char name[48];
	uint8_t key[STORE_KEY_LEN];
	pthread_mutex_t lock;
	uint8_t prefix[8];
	uint32_t counter;
	bool memory_journals; /* store_vfs_memory_journals */
};

enum vfs_kind { VFS_DB, VFS_WAL };

struct vfs_file {
	sqlite3_file base; /* first */
	struct store_vfs *vfs;
	enum vfs_kind kind;
	gnutls_aead_cipher_hd_t aead;
	uint32_t pgsz; /* 0 until known */
	uint8_t *page; /* scratch page of pgsz bytes */
	const char *name;
	sqlite3_file *under; /* follows this struct in the same allocation */
};

static void nonce_next(struct store_vfs *v, uint8_t out[VFS_NONCE])
{
	pthread_mutex_lock(&v->lock);
	if (v->counter == UINT32_MAX) {
		gnutls_rnd(GNUTLS_RND_NONCE, v->prefix, sizeof(v->prefix));
		v->counter = 0;
	}
	uint32_t c = v->counter++;
	memcpy(out, v->prefix, 8);
	pthread_mutex_unlock(&v->lock);
	out[8] = (uint8_t)(c >> 24);
	out[9] = (uint8_t)(c >> 16);
	out[10] = (uint8_t)(c >> 8);
	out[11] = (uint8_t)c;
}

static void be_put(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The additional data of one page and the iovecs of its sealed part. */
struct page_layout {
	uint8_t ad[1 + 8 + 8];
	giovec_t ad_iov[1];
	giovec_t iov[2];
	int n_iov;
};

static void layout(struct vfs_file *f, uint8_t *page, uint64_t where, struct page_layout *l)
{
	size_t usable = f->pgsz - STORE_VFS_RESERVE;
	size_t ad_len;
	if (f->kind == VFS_DB) {
		uint64_t pgno = where / f->pgsz + 1;
		l->ad[0] = 'D';
		be_put(l->ad + 1, pgno, 4);
		ad_len = 5;
		if (pgno == 1) {
			memcpy(l->ad + ad_len, page + 16, 8);
			ad_len += 8;
			l->iov[0] = (giovec_t){page, 16};
			l->iov[1] = (giovec_t){page + 24, usable - 24};
			l->n_iov = 2;
		} else {
			l->iov[0] = (giovec_t){page, usable};
			l->n_iov = 1;
		}
	} else {
		l->ad[0] = 'W';
		be_put(l->ad + 1, where, 8);
		ad_len = 9;
		l->iov[0] = (giovec_t){page, usable};
		l->n_iov = 1;
	}
	l->ad_iov[0] = (giovec_t){l->ad, ad_len};
}

/* Seals page (pgsz bytes, in place) stored at where (database offset or WAL frame offset). */
static int page_seal(struct vfs_file *f, uint8_t *page, uint64_t where)
{
	size_t usable = f->pgsz - STORE_VFS_RESERVE;
	struct page_layout l;
	uint8_t *nonce = page + usable;
	nonce_next(f->vfs, nonce);
	memset(page + usable + VFS_NONCE + VFS_TAG, 0, STORE_VFS_RESERVE - VFS_NONCE - VFS_TAG);
	layout(f, page, where, &l);
	size_t tag_len = VFS_TAG;
	if (gnutls_aead_cipher_encryptv2(f->aead, nonce, VFS_NONCE, l.ad_iov, 1, l.iov, l.n_iov,
	                                 page + usable + VFS_NONCE, &tag_len) < 0 ||
	    tag_len != VFS_TAG)
		return SQLITE_IOERR_WRITE;
	return SQLITE_OK;
}

static int page_open(struct vfs_file *f, uint8_t *page, uint64_t where)
{
	size_t usable = f->pgsz - STORE_VFS_RESERVE;
	struct page_layout l;
	layout(f, page, where, &l);
	uint8_t tag[VFS_TAG];
	memcpy(tag, page + usable + VFS_NONCE, VFS_TAG);
	if (gnutls_aead_cipher_decryptv2(f->aead, page + usable, VFS_NONCE, l.ad_iov, 1, l.iov,
	                                 l.n_iov, tag, VFS_TAG) < 0) {
		memset(page, 0, f->pgsz);
		return SQLITE_IOERR_DATA;
	}
	/* SQLite's own images keep the reserved bytes zero (new pages are zeroed, b-tree code
	 * never writes there): handing back zeros keeps the WAL frame checksums, computed on
	 * the image SQLite wrote, true for what it reads back. */
	memset(page + usable, 0, STORE_VFS_RESERVE);
	return SQLITE_OK;
}

static void log_bad_page(struct vfs_file *f, uint64_t where)
{
	log_event(LOGL_ERROR,
	          "event=store_integrity_error file=\"%s\" %s=%llu "
	          "reason=\"page fails its authentication tag: wrong key or modified file\"",
	          f->name != NULL ? f->name : "?", f->kind == VFS_DB ? "page" : "wal_offset",
	          (unsigned long long)(f->kind == VFS_DB ? where / f->pgsz + 1 : where));
}

static bool pgsz_valid(uint32_t p)
{
	return p >= PAGE_MIN && p <= PAGE_MAX && (p & (p - 1)) == 0;
}

static int set_pgsz(struct vfs_file *f, uint32_t p)
{
	if (!pgsz_valid(p))
		return SQLITE_IOERR_READ;
	if (f->pgsz != p) {
		free(f->page);
		f->page = xmalloc(p);
		f->pgsz = p;
	}
	return SQLITE_OK;
}

/* Learns the page size from the clear bytes on disk. SQLITE_OK with pgsz 0: empty file. */
static int learn_pgsz(struct vfs_file *f)
{
	uint8_t h[WAL_HDR];
	int rc;
	if (f->kind == VFS_DB) {
		rc = f->under->pMethods->xRead(f->under, h, 8, 16);
		if (rc == SQLITE_IOERR_SHORT_READ)
			return SQLITE_OK;
		if (rc != SQLITE_OK)
			return rc;
		uint32_t p = (uint32_t)h[0] << 8 | h[1];
		if (p == 1)
			p = 65536;
		if (h[4] != STORE_VFS_RESERVE || !pgsz_valid(p)) {
			log_event(
			    LOGL_ERROR,
			    "event=store_integrity_error file=\"%s\" reason=\"not an encrypted "
			    "sealmail database (reserved bytes %u)\"",
			    f->name != NULL ? f->name : "?", (unsigned)h[4]);
			return SQLITE_IOERR_DATA;
		}
		return set_pgsz(f, p);
	}
	rc = f->under->pMethods->xRead(f->under, h, WAL_HDR, 0);
	if (rc == SQLITE_IOERR_SHORT_READ)
		return SQLITE_OK;
	if (rc != SQLITE_OK)
		return rc;
	return set_pgsz(f, be32(h + 8));
}

/* One segment of an I/O range: clear bytes (headers) or part of one sealed page. */
struct seg {
	uint64_t off; /* file offset of the segment */
	size_t len;
	bool sealed;
	uint64_t page_off; /* sealed: file offset of its page */
	uint64_t where;    /* sealed: what the page is bound to */
};

static void seg_at(struct vfs_file *f, uint64_t off, uint64_t end, struct seg *s)
{
	uint64_t p = f->pgsz;
	s->off = off;
	if (f->kind == VFS_DB) {
		s->sealed = true;
		s->page_off = off / p * p;
		s->where = s->page_off;
		uint64_t stop = s->page_off + p;
		s->len = (size_t)((end < stop ? end : stop) - off);
		return;
	}
	if (off < WAL_HDR) {
		s->sealed = false;
		s->len = (size_t)((end < WAL_HDR ? end : WAL_HDR) - off);
		return;
	}
	uint64_t frame = (off - WAL_HDR) / (WAL_FRAME + p) * (WAL_FRAME + p) + WAL_HDR;
	uint64_t data = frame + WAL_FRAME;
	uint64_t stop = off < data ? data : data + p;
	s->sealed = off >= data;
	s->page_off = data;
	s->where = frame;
	s->len = (size_t)((end < stop ? end : stop) - off);
}

static int vfs_read(sqlite3_file *file, void *buf, int amt, sqlite3_int64 off)
{
	struct vfs_file *f = (struct vfs_file *)file;
	sqlite3_file *u = f->under;
	int rc;
	if (f->pgsz == 0) {
		rc = learn_pgsz(f);
		if (rc != SQLITE_OK)
			return rc;
		if (f->pgsz == 0) {
			/* An empty file (or a WAL without its header yet): nothing to open. */
			if (f->kind == VFS_DB || off >= WAL_HDR) {
				memset(buf, 0, (size_t)amt);
				return SQLITE_IOERR_SHORT_READ;
			}
			return u->pMethods->xRead(u, buf, amt, off);
		}
	}
	uint8_t *out = buf;
	uint64_t pos = (uint64_t)off, end = (uint64_t)off + (uint64_t)amt;
	/* A read of whole frames is WAL recovery: a frame that fails its tag ends the log there,
	 * as a torn frame does (its checksum no longer matches), instead of failing the open. */
	bool recovery = f->kind == VFS_WAL && off >= WAL_HDR &&
	                (uint64_t)amt == WAL_FRAME + f->pgsz &&
	                ((uint64_t)off - WAL_HDR) % (WAL_FRAME + f->pgsz) == 0;
	bool short_read = false;
	while (pos < end) {
		struct seg s;
		seg_at(f, pos, end, &s);
		uint8_t *dst = out + (pos - (uint64_t)off);
		if (!s.sealed) {
			rc = u->pMethods->xRead(u, dst, (int)s.len, (sqlite3_int64)pos);
			if (rc == SQLITE_IOERR_SHORT_READ)
				short_read = true;
			else if (rc != SQLITE_OK)
				return rc;
			pos += s.len;
			continue;
		}
		bool whole = s.off == s.page_off && s.len == f->pgsz;
		uint8_t *page = whole ? dst : f->page;
		rc = u->pMethods->xRead(u, page, (int)f->pgsz, (sqlite3_int64)s.page_off);
		if (rc == SQLITE_IOERR_SHORT_READ) {
			/* Past the end: SQLite expects zeros. */
			memset(dst, 0, s.len);
			short_read = true;
			pos += s.len;
			continue;
		}
		if (rc != SQLITE_OK)
			return rc;
		rc = page_open(f, page, s.where);
		if (rc != SQLITE_OK) {
			if (recovery) {
				log_event(
				    LOGL_WARN,
				    "event=store_wal_frame_dropped file=\"%s\" wal_offset=%llu "
				    "reason=\"frame fails its tag: torn write or modified\"",
				    f->name != NULL ? f->name : "?", (unsigned long long)s.where);
				memset(dst, 0, s.len);
				pos += s.len;
				continue;
			}
			log_bad_page(f, s.where);
			return rc;
		}
		if (!whole)
			memcpy(dst, page + (s.off - s.page_off), s.len);
		pos += s.len;
	}
	return short_read ? SQLITE_IOERR_SHORT_READ : SQLITE_OK;
}

static int vfs_write(sqlite3_file *file, const void *buf, int amt, sqlite3_int64 off)
{
	struct vfs_file *f = (struct vfs_file *)file;
	sqlite3_file *u = f->under;
	const uint8_t *in = buf;
	int rc;
	if (f->kind == VFS_DB && off == 0 && amt >= 24) {
		uint32_t p = (uint32_t)in[16] << 8 | in[17];
		if (p == 1)
			p = 65536;
		if (in[20] != STORE_VFS_RESERVE) {
			log_event(LOGL_ERROR,
			          "event=store_vfs_refused file=\"%s\" reason=\"page "
			          "without room for the nonce and tag\"",
			          f->name != NULL ? f->name : "?");
			return SQLITE_IOERR_WRITE;
		}
		if ((rc = set_pgsz(f, p)) != SQLITE_OK)
			return SQLITE_IOERR_WRITE;
	} else if (f->kind == VFS_WAL && off == 0 && amt >= WAL_HDR) {
		if (set_pgsz(f, be32(in + 8)) != SQLITE_OK)
			return SQLITE_IOERR_WRITE;
	} else if (f->pgsz == 0) {
		rc = learn_pgsz(f);
		/* A new file written from its end first (the backup API): SQLite writes whole
		 * pages to a database file, so the write's size is the page size. */
		if (rc == SQLITE_OK && f->pgsz == 0 && f->kind == VFS_DB &&
		    pgsz_valid((uint32_t)amt) && off % amt == 0)
			rc = set_pgsz(f, (uint32_t)amt);
		if (rc != SQLITE_OK || f->pgsz == 0) {
			log_event(LOGL_ERROR,
			          "event=store_vfs_refused file=\"%s\" offset=%lld len=%d "
			          "reason=\"write before the page size is known\"",
			          f->name != NULL ? f->name : "?", (long long)off, amt);
			return SQLITE_IOERR_WRITE;
		}
	}
	uint64_t pos = (uint64_t)off, end = (uint64_t)off + (uint64_t)amt;
	while (pos < end) {
		struct seg s;
		seg_at(f, pos, end, &s);
		const uint8_t *src = in + (pos - (uint64_t)off);
		if (!s.sealed) {
			rc = u->pMethods->xWrite(u, src, (int)s.len, (sqlite3_int64)pos);
		} else if (s.off != s.page_off || s.len != f->pgsz) {
			/* SQLite writes whole pages; a part could not be sealed on its own. */
			log_event(LOGL_ERROR,
			          "event=store_vfs_refused file=\"%s\" offset=%llu len=%zu "
			          "reason=\"write of part of a page\"",
			          f->name != NULL ? f->name : "?", (unsigned long long)pos, s.len);
			return SQLITE_IOERR_WRITE;
		} else {
			memcpy(f->page, src, f->pgsz);
			rc = page_seal(f, f->page, s.where);
			if (rc == SQLITE_OK)
				rc = u->pMethods->xWrite(u, f->page, (int)f->pgsz,
				                         (sqlite3_int64)s.page_off);
		}
		if (rc != SQLITE_OK)
			return rc;
		pos += s.len;
	}
	return SQLITE_OK;
}

static int vfs_close(sqlite3_file *file)
{
	struct vfs_file *f = (struct vfs_file *)file;
	int rc = f->under->pMethods != NULL ? f->under->pMethods->xClose(f->under) : SQLITE_OK;
	if (f->aead != NULL)
		gnutls_aead_cipher_deinit(f->aead);
	if (f->page != NULL) {
		gnutls_memset(f->page, 0, f->pgsz);
		free(f->page);
	}
	f->aead = NULL;
	f->page = NULL;
	return rc;
}

/* The rest passes through to the file below. */
#define U(f) (((struct vfs_file *)(f))->under)

static int vfs_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return U(f)->pMethods->xTruncate(U(f), size);
}
static int vfs_sync(sqlite3_file *f, int flags)
{
	return U(f)->pMethods->xSync(U(f), flags);
}
static int vfs_file_size(sqlite3_file *f, sqlite3_int64 *size_r)
{
	return U(f)->pMethods->xFileSize(U(f), size_r);
}
static int vfs_lock(sqlite3_file *f, int level)
{
	return U(f)->pMethods->xLock(U(f), level);
}
static int vfs_unlock(sqlite3_file *f, int level)
{
	return U(f)->pMethods->xUnlock(U(f), level);
}
static int vfs_check_reserved(sqlite3_file *f, int *out)
{
	return U(f)->pMethods->xCheckReservedLock(U(f), out);
}
static int vfs_file_control(sqlite3_file *f, int op, void *arg)
{
	/* Memory mapping would hand SQLite the sealed bytes. */
	if (op == SQLITE_FCNTL_MMAP_SIZE) {
		*(sqlite3_int64 *)arg = 0;
		return SQLITE_OK;
	}
	return U(f)->pMethods->xFileControl(U(f), op, arg);
}
static int vfs_sector_size(sqlite3_file *f)
{
	return U(f)->pMethods->xSectorSize(U(f));
}
static int vfs_device_chars(sqlite3_file *f)
{
	return U(f)->pMethods->xDeviceCharacteristics(U(f));
}
static int vfs_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	return U(f)->pMethods->xShmMap(U(f), pg, pgsz, extend, pp);
}
static int vfs_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	return U(f)->pMethods->xShmLock(U(f), offset, n, flags);
}
static void vfs_shm_barrier(sqlite3_file *f)
{
	U(f)->pMethods->xShmBarrier(U(f));
}
static int vfs_shm_unmap(sqlite3_file *f, int delete_flag)
{
	return U(f)->pMethods->xShmUnmap(U(f), delete_flag);
}
static int vfs_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
	(void)f;
	(void)off;
	(void)amt;
	*pp = NULL; /* never a mapping: pages must pass through vfs_read */
	return SQLITE_OK;
}
static int vfs_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	(void)f;
	(void)off;
	(void)p;
	return SQLITE_OK;
}

static const sqlite3_io_methods vfs_io = {
    .iVersion = 3,
    .xClose = vfs_close,
    .xRead = vfs_read,
    .xWrite = vfs_write,
    .xTruncate = vfs_truncate,
    .xSync = vfs_sync,
    .xFileSize = vfs_file_size,
    .xLock = vfs_lock,
    .xUnlock = vfs_unlock,
    .xCheckReservedLock = vfs_check_reserved,
    .xFileControl = vfs_file_control,
    .xSectorSize = vfs_sector_size,
    .xDeviceCharacteristics = vfs_device_chars,
    .xShmMap = vfs_shm_map,
    .xShmLock = vfs_shm_lock,
    .xShmBarrier = vfs_shm_barrier,
    .xShmUnmap = vfs_shm_unmap,
    .xFetch = vfs_fetch,
    .xUnfetch = vfs_unfetch,
};

/* ---- Rollback journals in memory (store_vfs_memory_journals) ---- */

struct mem_file {
	sqlite3_file base;
	uint8_t *data;
	size_t len, cap;
};

static int mem_close(sqlite3_file *file)
{
	struct mem_file *m = (struct mem_file *)file;
	if (m->data != NULL)
		gnutls_memset(m->data, 0, m->cap);
	free(m->data);
	m->data = NULL;
	return SQLITE_OK;
}

static int mem_read(sqlite3_file *file, void *buf, int amt, sqlite3_int64 off)
{
	struct mem_file *m = (struct mem_file *)file;
	size_t have = (uint64_t)off < m->len ? m->len - (size_t)off : 0;
	size_t n = have < (size_t)amt ? have : (size_t)amt;
	if (n > 0)
		memcpy(buf, m->data + off, n);
	if (n < (size_t)amt) {
		memset((uint8_t *)buf + n, 0, (size_t)amt - n);
		return SQLITE_IOERR_SHORT_READ;
	}
	return SQLITE_OK;
}

static int mem_write(sqlite3_file *file, const void *buf, int amt, sqlite3_int64 off)
{
	struct mem_file *m = (struct mem_file *)file;
	size_t end = (size_t)off + (size_t)amt;
	if (end > m->cap) {
		size_t cap = m->cap > 0 ? m->cap : 65536;
		while (cap < end)
			cap *= 2;
		m->data = xrealloc(m->data, cap);
		memset(m->data + m->cap, 0, cap - m->cap);
		m->cap = cap;
	}
	memcpy(m->data + off, buf, (size_t)amt);
	if (end > m->len)
		m->len = end;
	return SQLITE_OK;
}

static int mem_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	struct mem_file *m = (struct mem_file *)file;
	if ((size_t)size < m->len)
		m->len = (size_t)size;
	return SQLITE_OK;
}

static int mem_sync(sqlite3_file *file, int flags)
{
	(void)file;
	(void)flags;
	return SQLITE_OK;
}

static int mem_size(sqlite3_file *file, sqlite3_int64 *size_r)
{
	*size_r = (sqlite3_int64)((struct mem_file *)file)->len;
	return SQLITE_OK;
}

static int mem_lock(sqlite3_file *file, int level)
{
	(void)file;
	(void)level;
	return SQLITE_OK;
}

static int mem_check_reserved(sqlite3_file *file, int *out)
{
	(void)file;
	*out = 0;
	return SQLITE_OK;
}

static int mem_file_control(sqlite3_file *file, int op, void *arg)
{
	(void)file;
	(void)op;
	(void)arg;
	return SQLITE_NOTFOUND;
}

static int mem_sector_size(sqlite3_file *file)
{
	(void)file;
	return 512;
}

static int mem_device_chars(sqlite3_file *file)
{
	(void)file;
	return 0;
}

static const sqlite3_io_methods mem_io = {
    .iVersion = 1,
    .xClose = mem_close,
    .xRead = mem_read,
    .xWrite = mem_write,
    .xTruncate = mem_truncate,
    .xSync = mem_sync,
    .xFileSize = mem_size,
    .xLock = mem_lock,
    .xUnlock = mem_lock,
    .xCheckReservedLock = mem_check_reserved,
    .xFileControl = mem_file_control,
    .xSectorSize = mem_sector_size,
    .xDeviceCharacteristics = mem_device_chars,
};

static bool is_journal_name(const char *name)
{
	size_t n = name != NULL ? strlen(name) : 0;
	return n > 8 && strcmp(name + n - 8, "-journal") == 0;
}

static size_t file_head(void)
{
	return (sizeof(struct vfs_file) + 15) & ~(size_t)15;
}

static int vfs_open(sqlite3_vfs *base, sqlite3_filename name, sqlite3_file *file, int flags,
                    int *out_flags)
{
	struct store_vfs *v = (struct store_vfs *)base;
	struct vfs_file *f = (struct vfs_file *)file;
	memset(f, 0, sizeof(*f));
	f->vfs = v;
	f->under = (sqlite3_file *)((char *)file + file_head());
	f->name = name;
	if (flags & SQLITE_OPEN_MAIN_DB) {
		f->kind = VFS_DB;
	} else if (flags & SQLITE_OPEN_WAL) {
		f->kind = VFS_WAL;
	} else if ((flags & SQLITE_OPEN_MAIN_JOURNAL) && v->memory_journals) {
		struct mem_file *m = (struct mem_file *)file;
		memset(m, 0, sizeof(*m));
		m->base.pMethods = &mem_io;
		if (out_flags != NULL)
			*out_flags = flags;
		return SQLITE_OK;
	} else {
		/* Journals and temporary files would hold pages in clear. */
		log_event(LOGL_ERROR,
		          "event=store_vfs_refused file=\"%s\" flags=0x%x reason=\"an encrypted "
		          "store writes only its database and WAL\"",
		          name != NULL ? name : "(temporary)", (unsigned)flags);
		return SQLITE_CANTOPEN;
	}
	gnutls_datum_t k = {v->key, STORE_KEY_LEN};
	if (gnutls_aead_cipher_init(&f->aead, GNUTLS_CIPHER_AES_256_GCM, &k) < 0) {
		f->aead = NULL;
		return SQLITE_CANTOPEN;
	}
	int rc = v->under->xOpen(v->under, name, f->under, flags, out_flags);
	if (rc != SQLITE_OK) {
		gnutls_aead_cipher_deinit(f->aead);
		f->aead = NULL;
		return rc;
	}
	f->base.pMethods = &vfs_io;
	return SQLITE_OK;
}

static int vfs_delete(sqlite3_vfs *b, const char *name, int sync_dir)
{
	if (((struct store_vfs *)b)->memory_journals && is_journal_name(name))
		return SQLITE_OK; /* it lived in memory */
	sqlite3_vfs *u = ((struct store_vfs *)b)->under;
	return u->xDelete(u, name, sync_dir);
}
static int vfs_access(sqlite3_vfs *b, const char *name, int flags, int *out)
{
	sqlite3_vfs *u = ((struct store_vfs *)b)->under;
	return u->xAccess(u, name, flags, out);
}
static int vfs_full_pathname(sqlite3_vfs *b, const char *name, int n, char *out)
{
	sqlite3_vfs *u = ((struct store_vfs *)b)->under;
	return u->xFullPathname(u, name, n, out);
}
static void *vfs_dlopen(sqlite3_vfs *b, const char *name)
{
	(void)b;
	(void)name;
	return NULL;
}
static void vfs_dlerror(sqlite3_vfs *b, int n, char *msg)
{
	(void)b;
	snprintf(msg, (size_t)n, "extensions are not loaded by the encrypted store");
}
static void (*vfs_dlsym(sqlite3_vfs *b, void *h, const char *sym))(void)
{
	(void)b;
	(void)h;
	(void)sym;
	return NULL;
}
static void vfs_dlclose(sqlite3_vfs *b, void *h)
{
	(void)b;
	(void)h;
}
static int vfs_randomness(sqlite3_vfs *b, int n, char *out)
{
	sqlite3_vfs *u = ((struct store_vfs *)b)->under;
	return u->xRandomness(u, n, out);
}
static int vfs_sleep(sqlite3_vfs *b, int us)
{
	sqlite3_vfs *u = ((struct store_vfs *)b)->under;
	return u->xSleep(u, us);
}
static int vfs_current_time(sqlite3_vfs *b, double *t)
{
	sqlite3_vfs *u = ((struct store_vfs *)b)->under;
	return u->xCurrentTime(u, t);
}
static int vfs_last_error(sqlite3_vfs *b, int n, char *msg)
{
	sqlite3_vfs *u = ((struct store_vfs *)b)->under;
	return u->xGetLastError != NULL ? u->xGetLastError(u, n, msg) : 0;
}
static int vfs_current_time64(sqlite3_vfs *b, sqlite3_int64 *t)
{
	sqlite3_vfs *u = ((struct store_vfs *)b)->under;
	return u->xCurrentTimeInt64(u, t);
}

int store_vfs_register(const uint8_t key[STORE_KEY_LEN], struct store_vfs **vfs_r)
{
	static atomic_uint seq;
	sqlite3_initialize();
	sqlite3_vfs *under = sqlite3_vfs_find(NULL);
	if (under == NULL || under->iVersion < 2)
		return -EIO;
	struct store_vfs *v = xcalloc(1, sizeof(*v));
	v->under = under;
	memcpy(v->key, key, STORE_KEY_LEN);
	pthread_mutex_init(&v->lock, NULL);
	if (gnutls_rnd(GNUTLS_RND_NONCE, v->prefix, sizeof(v->prefix)) < 0) {
		store_vfs_unregister(v);
		return -EIO;
	}
	snprintf(v->name, sizeof(v->name), "sealmail-enc-%u", atomic_fetch_add(&seq, 1));
	v->base = (sqlite3_vfs){
	    .iVersion = 2,
	    .szOsFile = (int)(file_head() + (size_t)under->szOsFile),
	    .mxPathname = under->mxPathname,
	    .zName = v->name,
	    .xOpen = vfs_open,
	    .xDelete = vfs_delete,
	    .xAccess = vfs_access,
	    .xFullPathname = vfs_full_pathname,
	    .xDlOpen = vfs_dlopen,
	    .xDlError = vfs_dlerror,
	    .xDlSym = vfs_dlsym,
	    .xDlClose = vfs_dlclose,
	    .xRandomness = vfs_randomness,
	    .xSleep = vfs_sleep,
	    .xCurrentTime = vfs_current_time,
	    .xGetLastError = vfs_last_error,
	    .xCurrentTimeInt64 = vfs_current_time64,
	};
	if (sqlite3_vfs_register(&v->base, 0) != SQLITE_OK) {
		v->base.zName = NULL;
		store_vfs_unregister(v);
		return -EIO;
	}
	*vfs_r = v;
	return 0;
}

int store_vfs_clone(const struct store_vfs *vfs, struct store_vfs **clone_r)
{
	return store_vfs_register(vfs->key, clone_r);
}

int store_vfs_check_file(const char *path, const uint8_t key[STORE_KEY_LEN])
{
	struct store_vfs *v;
	if (store_vfs_register(key, &v) < 0)
		return -EIO;
	sqlite3 *db = NULL;
	int ok = 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, v->name) == SQLITE_OK) {
		sqlite3_file *f = NULL;
		uint8_t head[100];
		if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f) == SQLITE_OK &&
		    f != NULL && f->pMethods != NULL)
			ok = f->pMethods->xRead(f, head, sizeof(head), 0) == SQLITE_OK &&
			     memcmp(head, "SQLite format 3", 16) == 0;
	}
	sqlite3_close(db);
	store_vfs_unregister(v);
	return ok;
}

void store_vfs_memory_journals(struct store_vfs *vfs)
{
	vfs->memory_journals = true;
}

const char *store_vfs_name(const struct store_vfs *vfs)
{
	return vfs->name;
}

void store_vfs_unregister(struct store_vfs *v)
{
	if (v == NULL)
		return;
	if (v->base.zName != NULL)
		sqlite3_vfs_unregister(&v->base);
	gnutls_memset(v->key, 0, sizeof(v->key));
	pthread_mutex_destroy(&v->lock);
	free(v);
}
