#ifndef SEALMAIL_SMTP_PARSE_H
#define SEALMAIL_SMTP_PARSE_H
/*
 * Parsers for the arguments of MAIL and RCPT (RFC 5321 section 4.1.2) and their ESMTP
 * parameters: SIZE (RFC 1870), BODY (RFC 6152, RFC 3030), SMTPUTF8 (RFC 6531), REQUIRETLS
 * (RFC 8689), RET / ENVID / NOTIFY / ORCPT (RFC 3461), AUTH= (RFC 4954, value checked and
 * ignored). Pure: no I/O, no allocation, bounded by fixed-size outputs. Input is hostile.
 *
 * The argument is what follows the verb and its space: "FROM:<a@b> SIZE=10".
 * - Keywords (FROM:, TO:, parameter names and keyword values) are case-insensitive.
 * - One optional space after the colon is tolerated (common clients send it).
 * - Paths: "<>" (null sender, MAIL only), "<@relay,@relay:local@domain>" (the source route
 *   is dropped, RFC 5321 appendix C), quoted local parts ("a b"@x; quotes that are not
 *   needed are removed: "alice"@x -> alice@x), address literals (user@[192.0.2.1]),
 *   "<Postmaster>" without a domain (RCPT only). UTF-8 in the local part or domain only
 *   when SMTPUTF8 is in effect (else 553 5.6.7), and only well-formed UTF-8.
 * - ENVID and ORCPT are kept in their wire form (xtext, checked): a relay passes them on
 *   unchanged (RFC 3461 section 4); smtp_xtext_decode gives the decoded text for reports.
 *
 * On error the functions return -EINVAL and set *reply_r to a complete static reply line
 * without CRLF ("501 5.1.7 Bad sender address syntax"), ready to send.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_PATH_MAX  256 /* RFC 5321 4.5.3.1.3, without the brackets */
#define SMTP_ENVID_MAX 100
#define SMTP_ORCPT_MAX 500

enum smtp_body { SMTP_BODY_NONE, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };
enum smtp_ret { SMTP_RET_NONE, SMTP_RET_FULL, SMTP_RET_HDRS };

enum smtp_notify {
	SMTP_NOTIFY_NEVER = 1 << 0,
	SMTP_NOTIFY_SUCCESS = 1 << 1,
	SMTP_NOTIFY_FAILURE = 1 << 2,
	SMTP_NOTIFY_DELAY = 1 << 3,
};

struct smtp_mail_args {
	char address[SMTP_PATH_MAX + 1]; /* "" for the null sender */
	size_t at;                       /* offset of the '@' separating the domain */
	bool has_size;
	uint64_t size; /* SIZE=, saturated at UINT64_MAX */
	enum smtp_body body;
	bool smtputf8;
	bool requiretls;
	bool utf8; /* the address contains non-ASCII bytes */
	enum smtp_ret ret;
	char envid[SMTP_ENVID_MAX + 1]; /* xtext as sent, "" when not given */
};

struct smtp_rcpt_args {
	char address[SMTP_PATH_MAX + 1];
	size_t at;       /* offset of the '@'; 0 when postmaster is set */
	bool postmaster; /* "<Postmaster>" with no domain */
	bool utf8;
	unsigned notify;                /* enum smtp_notify bits, 0 when not given */
	char orcpt[SMTP_ORCPT_MAX + 1]; /* "addr-type;xtext" as sent, "" when not given */
};

/* 0, or -EINVAL with *reply_r. */
int smtp_parse_mail(const char *arg, size_t len, struct smtp_mail_args *out, const char **reply_r);
/* utf8_ok: the transaction's MAIL had SMTPUTF8. 0, or -EINVAL with *reply_r. */
int smtp_parse_rcpt(const char *arg, size_t len, bool utf8_ok, struct smtp_rcpt_args *out,
                    const char **reply_r);

/* Decodes xtext (RFC 3461 section 4) into out (room for len + 1 bytes, NUL-terminated).
 * Returns the decoded length, or -EINVAL for a byte outside xchar, a '+' not followed by
 * two upper-case hex digits, or a decoded NUL. */
long smtp_xtext_decode(const char *in, size_t len, char *out);
/* True when in[0..len) is well-formed UTF-8 (no overlongs, surrogates, > U+10FFFF). */
bool smtp_utf8_valid(const char *in, size_t len);
/* Comma list of the notify bits, upper case ("SUCCESS,FAILURE", "NEVER"), into out (at
 * least 32 bytes). Returns out. */
const char *smtp_notify_str(unsigned notify, char *out, size_t outlen);

#endif
