#ifndef SEALMAIL_XMALLOC_H
#define SEALMAIL_XMALLOC_H
/*
 * Allocation that never returns NULL: on failure the process logs and aborts
 * (house rules, docs/hacking.md). Limits, not malloc failures, bound memory.
 */
#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* Overflow-checked nmemb * size reallocation. */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a freshly allocated string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
