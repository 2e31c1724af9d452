#ifndef SEALMAIL_MOBILECONFIG_H
#define SEALMAIL_MOBILECONFIG_H
/*
 * Apple configuration profiles (.mobileconfig): an XML property list that sets up a mail
 * account (IMAP and SMTP over TLS) and, when the user has a certificate from the built-in
 * CA, installs it as a PKCS#12 identity payload (com.apple.security.pkcs12); signed as CMS
 * SignedData with the server certificate so that the device shows who made it and that
 * it was not changed. Pure GnuTLS; sealctl and the HTTPS listener both build profiles
 * here.
 */
#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

struct mobileconfig {
	const char *address;      /* the account's address and user name */
	const char *organization; /* shown as the profile's organization; NULL: "sealmail" */
	const char *host;         /* the server's host name for IMAP and SMTP */
	/* Ports: implicit TLS or STARTTLS alike (Apple's "UseSSL" is TLS either way: its
	 * Mail starts TLS on a port that is not an implicit-TLS one and never goes on
	 * without it). */
	unsigned imap_port; /* 0: no incoming server (the profile is refused) */
	unsigned smtp_port; /* 0: no outgoing server */
	/* The identity: a PKCS#12 bundle in the legacy format Apple devices import (3DES,
	 * SHA-1 MAC), or NULL. Its password is never written into the profile: the device
	 * asks for it when the profile is installed. */
	const unsigned char *p12;
	size_t p12_len;
};

/* The unsigned property list. 0, or -EINVAL with *error_r (a missing address, host or
 * IMAP port). */
int mobileconfig_build(const struct mobileconfig *mc, struct buf *out, const char **error_r);

/* CMS SignedData (DER) of data[0..len) embedded, signed with SHA-256 by the key of
 * cert_pem (a chain: the first certificate signs, the others go along), key_pem. 0, or a
 * negative code with *error_r. Free *out_r with mobileconfig_free. */
int mobileconfig_sign(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                      const void *data, size_t len, unsigned char **out_r, size_t *out_len_r,
                      const char **error_r);

void mobileconfig_free(unsigned char *der);

#endif
