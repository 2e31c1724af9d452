/*
 * Spool files on the libuv thread pool. One request in flight per file at a time (open,
 * write, close, unlink), so the file's state has one owner: the completion of that request.
 */
#include "server/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include <gnutls/gnutls.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "storage/store_spool.h"

#define SPOOL_PENDING_MAX (256u * 1024 * 1024) /* the session pauses far below this */

static uv_loop_t *spool_loop;
static char *spool_dir;
static uint64_t spool_counter;

enum spool_state { SP_OPENING, SP_IDLE, SP_WRITING, SP_CLOSING, SP_CLOSED, SP_UNLINKING };

struct spool_file {
	uv_fs_t req;
	enum spool_state state;
	uv_file fd;
	char *path;
	struct buf pending;  /* queued by spool_write */
	struct buf inflight; /* owned by the write request until its callback */
	size_t inflight_off; /* bytes of inflight already written (short writes) */
	uint64_t offset;
	int error;
	bool finishing; /* spool_finish was called */
	bool freed;     /* spool_free was called: clean up when the request returns */
	void (*drained)(void *ctx);
	void *drain_ctx;
	void (*finish_cb)(void *ctx, int rc);
	void *finish_ctx;
	/* Sealing (storage/store_spool.h): plain bytes wait in stage until a whole chunk is
	 * there and more follows (the last chunk is sealed as such by spool_finish). */
	struct store_spool_sealer sealer;
	unsigned char *stage;
	size_t stage_len;
	uint64_t plain;        /* plain bytes accepted */
	unsigned char *sealed; /* one sealed chunk */
};

int spool_setup(void *uv_loop, const char *data_dir)
{
	char *dir = xasprintf("%s/spool", data_dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int e = -errno;
		log_event(LOGL_ERROR, "event=spool_setup_failed path=%s error=%s", dir,
		          strerror(errno));
		free(dir);
		return e;
	}
	if (chmod(dir, 0700) < 0) {
		int e = -errno;
		free(dir);
		return e;
	}
	/* Spool files of a previous run belong to messages that were never acknowledged. */
	DIR *d = opendir(dir);
	if (d != NULL) {
		struct dirent *de;
		unsigned removed = 0;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if (unlinkat(dirfd(d), de->d_name, 0) == 0)
				removed++;
		}
		closedir(d);
		if (removed > 0)
			log_event(LOGL_INFO, "event=spool_cleaned files=%u", removed);
	}
	free(spool_dir);
	spool_dir = dir;
	spool_loop = uv_loop;
	return 0;
}

void spool_teardown(void)
{
	spool_loop = NULL;
	free(spool_dir);
	spool_dir = NULL;
}

static void spool_step(struct spool_file *f);

static void destroy(struct spool_file *f)
{
	store_spool_seal_end(&f->sealer);
	if (f->stage != NULL)
		gnutls_memset(f->stage, 0, STORE_SPOOL_CHUNK);
	free(f->stage);
	free(f->sealed);
	buf_free(&f->pending);
	buf_free(&f->inflight);
	free(f->path);
	free(f);
}

static void on_unlink(uv_fs_t *req)
{
	struct spool_file *f = req->data;
	uv_fs_req_cleanup(req);
	destroy(f);
}

static void start_unlink(struct spool_file *f)
{
	f->state = SP_UNLINKING;
	if (uv_fs_unlink(spool_loop, &f->req, f->path, on_unlink) < 0) {
		unlink(f->path); /* the loop is going away; a short synchronous fallback */
		destroy(f);
	}
}

static void on_close(uv_fs_t *req)
{
	struct spool_file *f = req->data;
	uv_fs_req_cleanup(req);
	f->state = SP_CLOSED;
	f->fd = -1;
	if (f->freed) {
		start_unlink(f);
		return;
	}
	if (f->finish_cb) {
		void (*cb)(void *, int) = f->finish_cb;
		f->finish_cb = NULL;
		cb(f->finish_ctx, f->error);
	}
}

static void on_write(uv_fs_t *req)
{
	struct spool_file *f = req->data;
	ssize_t r = req->result;
	uv_fs_req_cleanup(req);
	f->state = SP_IDLE;
	if (r < 0) {
		if (f->error == 0)
			f->error = (int)r;
	} else {
		f->inflight_off += (size_t)r;
		f->offset += (uint64_t)r;
		if (r == 0 && f->inflight_off < f->inflight.len && f->error == 0)
			f->error = -EIO;
	}
	if (f->error != 0 || f->inflight_off >= f->inflight.len) {
		buf_reset(&f->inflight);
		f->inflight_off = 0;
	}
	spool_step(f);
}

static void on_open(uv_fs_t *req)
{
	struct spool_file *f = req->data;
	ssize_t r = req->result;
	uv_fs_req_cleanup(req);
	f->state = SP_IDLE;
	if (r < 0) {
		f->error = (int)r;
		f->state = SP_CLOSED;
		if (f->freed) {
			destroy(f); /* nothing was created */
			return;
		}
		if (f->finish_cb) {
			void (*cb)(void *, int) = f->finish_cb;
			f->finish_cb = NULL;
			cb(f->finish_ctx, f->error);
		}
		return;
	}
	f->fd = (uv_file)r;
	spool_step(f);
}

/* Starts the next request if none is in flight. */
static void spool_step(struct spool_file *f)
{
	if (f->state != SP_IDLE)
		return;
	if (!f->freed && f->error == 0) {
		if (f->inflight.len == 0 && f->pending.len > 0) {
			struct buf t = f->inflight;
			f->inflight = f->pending;
			f->pending = t;
			f->inflight_off = 0;
		}
		if (f->inflight.len > f->inflight_off) {
			uv_buf_t b = uv_buf_init(f->inflight.data + f->inflight_off,
			                         (unsigned)(f->inflight.len - f->inflight_off));
			f->state = SP_WRITING;
			int r = uv_fs_write(spool_loop, &f->req, f->fd, &b, 1, (int64_t)f->offset,
			                    on_write);
			if (r == 0)
				return;
			f->state = SP_IDLE;
			f->error = r;
		}
		if (f->drained && f->pending.len == 0) {
			void (*cb)(void *) = f->drained;
			f->drained = NULL;
			cb(f->drain_ctx); /* may write, finish or free: each steps itself */
			return;
		}
	}
	if (f->freed || f->finishing || f->error != 0) {
		if (!f->freed && !f->finishing)
			return; /* keep the error for spool_write / spool_finish */
		f->state = SP_CLOSING;
		if (uv_fs_close(spool_loop, &f->req, f->fd, on_close) < 0) {
			close(f->fd);
			f->state = SP_CLOSED;
			if (f->freed)
				start_unlink(f);
		}
	}
}

int spool_create(struct spool_file **f_r)
{
	if (spool_loop == NULL || spool_dir == NULL)
		return -ENOTSUP;
	struct spool_file *f = xcalloc(1, sizeof(*f));
	f->req.data = f;
	f->fd = -1;
	f->path = xasprintf("%s/%ld.%llu", spool_dir, (long)getpid(),
	                    (unsigned long long)++spool_counter);
	buf_init(&f->pending, SPOOL_PENDING_MAX);
	buf_init(&f->inflight, SPOOL_PENDING_MAX);
	f->stage = xmalloc(STORE_SPOOL_CHUNK);
	f->sealed = xmalloc(STORE_SPOOL_CHUNK + STORE_SPOOL_TAG);
	uint8_t hdr[STORE_SPOOL_HDR];
	if (store_spool_seal_begin(&f->sealer, hdr) < 0 ||
	    buf_append(&f->pending, hdr, sizeof(hdr)) < 0) {
		destroy(f);
		return -EIO;
	}
	f->state = SP_OPENING;
	int r = uv_fs_open(spool_loop, &f->req, f->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	                   0600, on_open);
	if (r < 0) {
		destroy(f);
		return r;
	}
	f->req.data = f;
	*f_r = f;
	return 0;
}

/* Seals what is staged as the next chunk onto pending. */
static int seal_stage(struct spool_file *f, bool final)
{
	if (store_spool_seal_chunk(&f->sealer, f->stage, f->stage_len, final, f->sealed) < 0)
		return -EIO;
	int r = buf_append(&f->pending, f->sealed, f->stage_len + STORE_SPOOL_TAG);
	f->stage_len = 0;
	return r;
}

int spool_write(struct spool_file *f, const void *data, size_t len)
{
	if (f->error != 0)
		return f->error;
	const unsigned char *p = data;
	f->plain += len;
	while (len > 0) {
		if (f->stage_len == STORE_SPOOL_CHUNK) {
			int r = seal_stage(f, false);
			if (r < 0)
				return r;
		}
		size_t n = STORE_SPOOL_CHUNK - f->stage_len;
		if (n > len)
			n = len;
		memcpy(f->stage + f->stage_len, p, n);
		f->stage_len += n;
		p += n;
		len -= n;
	}
	spool_step(f);
	return f->error;
}

size_t spool_pending(const struct spool_file *f)
{
	return f->pending.len + (f->inflight.len - f->inflight_off);
}

void spool_on_drain(struct spool_file *f, void (*drained)(void *ctx), void *ctx)
{
	f->drained = drained;
	f->drain_ctx = ctx;
}

void spool_finish(struct spool_file *f, void (*cb)(void *ctx, int rc), void *ctx)
{
	if (f->error == 0 && f->state != SP_CLOSED) {
		int r = seal_stage(f, true);
		if (r < 0)
			f->error = r;
	}
	f->finishing = true;
	f->finish_cb = cb;
	f->finish_ctx = ctx;
	f->drained = NULL;
	if (f->state == SP_CLOSED) {
		/* Open failed earlier: report it, but never before returning (there is no fd
		 * to close, so a stat of the folder carries the callback to the loop). */
		f->state = SP_CLOSING;
		if (uv_fs_stat(spool_loop, &f->req, spool_dir ? spool_dir : "/", on_close) < 0) {
			f->state = SP_CLOSED;
		}
		return;
	}
	spool_step(f);
}

const char *spool_path(const struct spool_file *f)
{
	return f->path;
}

uint64_t spool_size(const struct spool_file *f)
{
	return f->plain;
}

void spool_free(struct spool_file *f)
{
	if (f == NULL)
		return;
	f->freed = true;
	f->drained = NULL;
	f->finish_cb = NULL;
	switch (f->state) {
	case SP_IDLE:
		spool_step(f); /* closes, then unlinks */
		break;
	case SP_CLOSED:
		start_unlink(f); /* after a failed open this is a harmless ENOENT */
		break;
	default:
		break; /* the request in flight finishes the job */
	}
}
