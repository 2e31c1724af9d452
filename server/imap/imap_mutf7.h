#ifndef SEALMAIL_IMAP_MUTF7_H
#define SEALMAIL_IMAP_MUTF7_H
/*
 * Mailbox names: modified UTF-7 (RFC 3501 5.1.3) to and from UTF-8, and the checks every
 * name from a client passes before it reaches the store. Pure, strict: a name is refused,
 * never truncated or mapped onto another one.
 */
#include <stdbool.h>
#include <stddef.h>

#define IMAP_MAILBOX_NAME_MAX  255 /* bytes of UTF-8 */
#define IMAP_MAILBOX_LEVEL_MAX 16

/* Decodes modified UTF-7. 0 and a new NUL-terminated UTF-8 string, or -EINVAL (bad base64,
 * non-zero padding bits, a shifted run that encodes printable ASCII or is empty, an
 * unpaired surrogate, a raw byte over 0x7e). */
int imap_mutf7_to_utf8(const char *in, size_t len, char **out_r);
/* Encodes UTF-8 as modified UTF-7. 0 and a new string, or -EINVAL (invalid UTF-8). */
int imap_utf8_to_mutf7(const char *in, size_t len, char **out_r);
/* True when s[0..len) is valid UTF-8 (no overlongs, no surrogates). */
bool imap_utf8_valid(const char *s, size_t len);

/*
 * Checks a mailbox name given in UTF-8 and returns the store's form in *name_r (new
 * string): "INBOX" in any case (alone or as the first level) becomes "INBOX". Refused
 * with -EINVAL: empty, longer than IMAP_MAILBOX_NAME_MAX, NUL or control characters,
 * invalid UTF-8, the wildcards * and %, an empty level (leading, trailing or doubled /),
 * a level "." or "..", more than IMAP_MAILBOX_LEVEL_MAX levels.
 */
int imap_mailbox_name_check(const char *utf8, size_t len, char **name_r);

/* The client's name (mUTF-7 unless utf8 mode) to a checked store name. */
int imap_mailbox_from_client(const char *s, size_t len, bool utf8, char **name_r);
/* The store's name to what the client sees (mUTF-7 unless utf8 mode); new string. */
char *imap_mailbox_to_client(const char *name, bool utf8);

#endif
