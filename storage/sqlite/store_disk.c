/*
 * A full disk. SQLite rolls a transaction that meets SQLITE_FULL back, so nothing is ever
 * half-written; what is added here is that the store stays usable while the disk is full:
 *
 * - data_dir/reserve, a file of STORE_RESERVE_MAX bytes (at most a sixteenth of the file
 *   system) allocated while there is room, is deleted the moment a write meets a full
 *   disk. Its space is for what frees space (EXPUNGE, POP3 DELE, the relay finishing its
 *   work) and for the WAL checkpoint and the recovery at the next start, which need a
 *   little room themselves; a store that could not even checkpoint could never shrink.
 * - While the disk is full, jobs that add mail (delivery, APPEND, COPY) fail at once with
 *   -ENOSPC without touching the disk, so new mail cannot eat the reserve; everything
 *   else runs. At most once a second the free space is looked at again: once there is
 *   twice the reserve, the reserve is made again and mail is taken.
 * - event=disk_full is logged when it starts and then once a minute while it lasts.
 *
 * Writer thread only (and store open, before the writer runs).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "storage/sqlite/store_private.h"

#define STORE_RESERVE_MAX (16u << 20)

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool fs_space(const char *dir, uint64_t *free_r, uint64_t *total_r)
{
	struct statvfs v;
	if (statvfs(dir, &v) < 0)
		return false;
	*free_r = (uint64_t)v.f_bavail * v.f_frsize;
	*total_r = (uint64_t)v.f_blocks * v.f_frsize;
	return true;
}

static bool reserve_make(struct sqlite_store *s)
{
	int fd = open(s->reserve_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return false;
	int rc = posix_fallocate(fd, 0, (off_t)s->reserve_size);
	close(fd);
	if (rc != 0) {
		unlink(s->reserve_path);
		return false;
	}
	return true;
}

void store_disk_open(struct sqlite_store *s)
{
	const char *slash = strrchr(s->path, '/');
	s->data_dir = slash != NULL ? xstrndup(s->path, (size_t)(slash - s->path)) : xstrdup(".");
	s->reserve_path = xasprintf("%s/reserve", s->data_dir);
	uint64_t free_b, total;
	if (!fs_space(s->data_dir, &free_b, &total))
		return;
	s->reserve_size = total / 16 < STORE_RESERVE_MAX ? total / 16 : STORE_RESERVE_MAX;
	bool have = access(s->reserve_path, F_OK) == 0;
	if (have && free_b < s->reserve_size) {
		/* Started on a full disk: the reserve is what lets recovery and the first
		 * checkpoint run. */
		unlink(s->reserve_path);
		s->disk_full = true;
		log_event(LOGL_WARN, "event=disk_reserve_released reason=start free_bytes=%llu",
		          (unsigned long long)free_b);
	} else if (!have && free_b >= 4 * s->reserve_size && !reserve_make(s)) {
		log_event(LOGL_WARN, "event=disk_reserve_failed path=%s", s->reserve_path);
	}
}

void store_disk_close(struct sqlite_store *s)
{
	free(s->data_dir);
	free(s->reserve_path);
}

static void log_full(struct sqlite_store *s, int64_t now)
{
	uint64_t free_b = 0, total = 0;
	fs_space(s->data_dir, &free_b, &total);
	log_event(LOGL_WARN,
	          "event=disk_full dir=%s free_bytes=%llu action=\"refusing new mail until "
	          "%llu bytes are free\"",
	          s->data_dir, (unsigned long long)free_b,
	          (unsigned long long)(2 * s->reserve_size));
	s->disk_logged_ms = now;
}

void store_disk_full(struct sqlite_store *s)
{
	int64_t now = now_ms();
	s->disk_checked_ms = now;
	if (s->disk_full)
		return;
	s->disk_full = true;
	if (s->reserve_path != NULL && unlink(s->reserve_path) == 0)
		log_event(LOGL_WARN, "event=disk_reserve_released reason=full bytes=%llu",
		          (unsigned long long)s->reserve_size);
	log_full(s, now);
}

bool store_disk_refuses(struct sqlite_store *s)
{
	if (!s->disk_full)
		return false;
	int64_t now = now_ms();
	if (now - s->disk_checked_ms >= 1000) {
		s->disk_checked_ms = now;
		uint64_t free_b, total;
		if (fs_space(s->data_dir, &free_b, &total) && free_b >= 2 * s->reserve_size &&
		    (s->reserve_size == 0 || access(s->reserve_path, F_OK) == 0 ||
		     reserve_make(s))) {
			s->disk_full = false;
			log_event(LOGL_INFO, "event=disk_space_back free_bytes=%llu",
			          (unsigned long long)free_b);
			return false;
		}
	}
	if (now - s->disk_logged_ms >= 60000)
		log_full(s, now);
	return true;
}
