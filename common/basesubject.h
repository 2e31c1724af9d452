#ifndef SEALMAIL_BASESUBJECT_H
#define SEALMAIL_BASESUBJECT_H
/*
 * The base subject of RFC 5256 section 2.1 (IMAP SORT SUBJECT and THREAD): the subject
 * with reply and forward markers ("Re:", "Fwd:", "[fwd: ...]", "(fwd)"), list tags
 * ("[list]") and extra white space taken off. Computed once at delivery by the store and
 * compared later with i;ascii-casemap. Pure; works on bytes (UTF-8 passes through).
 */
#include <stdbool.h>
#include <stddef.h>

/* The base subject of in[0..len) (already decoded from RFC 2047 to UTF-8) as a new
 * string ("" for an empty one). *reply_r (may be NULL) says whether a reply or forward
 * marker was removed (a subj-refwd, "(fwd)" or the "[fwd: ...]" wrapper), which THREAD
 * REFERENCES uses when it groups threads by subject. NUL bytes count as white space. */
char *basesubject_get(const char *in, size_t len, bool *reply_r);

/* i;ascii-casemap (RFC 4790): bytes compared after mapping a-z to A-Z. NULL is "". */
int basesubject_casecmp(const char *a, const char *b);

#endif
