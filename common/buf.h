#ifndef SEALMAIL_BUF_H
#define SEALMAIL_BUF_H
/*
 * A growable byte buffer with a hard maximum (curl's dynbuf, Dovecot's
 * buffer_create_dynamic_max). Every buffer has one owner. Pointers into
 * data stay valid until the next append, consume or free.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	char *data; /* always NUL-terminated after len when data != NULL */
	size_t len;
	size_t cap;
	size_t max; /* appends that would exceed max fail with -ENOBUFS */
};

void buf_init(struct buf *b, size_t max);
/* Frees the storage; the buffer can be reused after buf_init. */
void buf_free(struct buf *b);
/* Wipes the bytes (gnutls-style secure wipe) and frees: for secrets. */
void buf_free_secret(struct buf *b);
/* 0, or -ENOBUFS when len + n would exceed max (buffer unchanged). */
int buf_append(struct buf *b, const void *data, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Drops the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);

/* "1:3,5" from numbers (IMAP sequence-set syntax): only ascending runs of consecutive
 * numbers become ranges, so the order of unsorted numbers is kept. */
void buf_append_uidset(struct buf *o, const uint32_t *v, size_t n);

#endif
