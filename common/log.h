#ifndef SEALMAIL_LOG_H
#define SEALMAIL_LOG_H
/*
 * One line per event on standard error, key=value, e.g.
 *   2026-11-29T03:40:00.123Z info session=3fa2 proto=imap event=auth_failed user=bob ip=127.0.0.1
 * Each line is written with a single write(2), so threads never interleave.
 * Client bytes must go through log_escape() first; secrets are never logged.
 */
#include <stdarg.h>
#include <stddef.h>

enum log_level { LOGL_DEBUG, LOGL_INFO, LOGL_WARN, LOGL_ERROR };

/* Sets the lowest level written (default LOGL_INFO; SEALMAIL_DEBUG=1 in the environment
 * lowers it to debug). */
void log_set_level(enum log_level min);
void log_event(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vevent(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Escapes untrusted bytes for a log value: printable ASCII other than space, '"', '\\' and
 * '=' is kept, every other byte becomes \xHH. At most outlen-1 bytes are written (a
 * truncated value ends in "..."); out is always NUL-terminated. Returns out. */
char *log_escape(char *out, size_t outlen, const void *in, size_t inlen);

#endif
