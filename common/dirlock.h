#ifndef SEALMAIL_DIRLOCK_H
#define SEALMAIL_DIRLOCK_H
/*
 * An exclusive lock on a file in a folder, held as long as the returned descriptor is
 * open (flock; the kernel drops it when the process ends, however it ends). sealmaild
 * holds data_dir/sealmaild.lock while it runs, so a second daemon or `sealctl restore`
 * cannot work on a store that one is serving.
 */

#define DIRLOCK_DAEMON "sealmaild.lock"

/* Takes dir/name (created 0600 when missing) without waiting: the descriptor (close-on-exec,
 * keep it open), -EWOULDBLOCK when another process holds it, or another negative errno. */
int dirlock_take(const char *dir, const char *name);
/* Writes the process id into the lock taken (what dirlock_holder reads). */
void dirlock_set_pid(int fd);
/* The process holding dir/name (from the id it wrote), 0 when nobody holds the lock. */
long dirlock_holder(const char *dir, const char *name);

#endif
