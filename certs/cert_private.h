#ifndef SEALMAIL_CERT_PRIVATE_H
#define SEALMAIL_CERT_PRIVATE_H
/* Declarations shared by the files of certs/ only. */
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <sys/types.h>

#include "certs/cert.h"

/* Certificates start 5 minutes in the past to absorb clock skew between machines. */
#define CERT_BACKDATE_SECS (5 * 60)
/* Ten years of days is plenty; more overflows nothing but is surely a typo. */
#define CERT_DAYS_MAX (100 * 366)
/* Files we read (certificates, keys, CRLs) are small. */
#define CERT_FILE_MAX (8 * 1024 * 1024)

struct cert_ca {
	gnutls_x509_crt_t crt;
	gnutls_x509_privkey_t key;
	char *cert_pem;
	unsigned char ski[64];
	size_t ski_len;
};

/* Formats a message into the thread-local error buffer, points *error_r at it (if
 * error_r) and returns ret. */
int cert_error(const char **error_r, int ret, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same for a GnuTLS failure: "<what>: <gnutls message>", returns -EINVAL for
 * parse-type failures and -EIO otherwise. */
int cert_gnutls_error(const char **error_r, int gtls_ret, const char *what);

/* A certificate from DER (at most CERT_FILE_MAX bytes): 0 with *crt_r to deinit, or a
 * negative errno with *error_r. */
int cert_crt_from_der(const unsigned char *der, size_t len, gnutls_x509_crt_t *crt_r,
                      const char **error_r);

/* Writes data to path through a temporary file in the same folder made with mode 0600,
 * chmod'ed to mode, fsync'ed, then renamed over path (replace) or hard-linked to it, which
 * fails with -EEXIST if path exists (no replace). The folder is fsync'ed too. */
int cert_file_write(const char *path, const void *data, size_t len, mode_t mode, bool replace,
                    const char **error_r);
/* Reads a whole file (at most CERT_FILE_MAX) into *out (NUL-terminated, free with
 * cert_datum_wipe_free). */
int cert_file_read(const char *path, gnutls_datum_t *out, const char **error_r);
/* Wipes and frees a datum from cert_file_read or a GnuTLS export. */
void cert_datum_wipe_free(gnutls_datum_t *d);

/* Lowercase hex of a raw serial, leading zero octets dropped (at least one octet kept). */
void cert_serial_to_hex(const unsigned char *raw, size_t len, char out[CERT_SERIAL_HEX_MAX + 1]);
/* Raw octets of a normalised hex serial; a leading 00 is added when the top bit is set so
 * the INTEGER stays positive. raw must hold 21 octets. */
int cert_serial_from_hex(const char *hex, unsigned char raw[21], size_t *len_r);
/* Serial of crt as hex. */
int cert_crt_serial_hex(gnutls_x509_crt_t crt, char out[CERT_SERIAL_HEX_MAX + 1]);

/* Checks and lower-cases an e-mail identity of len bytes (see cert_identity_from_der). */
int cert_address_normalize(const char *in, size_t len, char **addr_r);

/* Exports crt to DER and imports it again: a certificate just signed in memory answers
 * some queries wrongly until then. */
int cert_crt_reimport(gnutls_x509_crt_t *crt);
int cert_crt_export_pem(gnutls_x509_crt_t crt, char **pem_r);
int cert_key_generate(enum cert_key_type type, gnutls_x509_privkey_t *key_r);
/* PKCS#8 PEM, unencrypted. */
int cert_key_export_pem(gnutls_x509_privkey_t key, char **pem_r);
/* Subject key identifier (SHA-1 of the public key, RFC 5280 method 1). */
int cert_key_id(gnutls_x509_privkey_t key, unsigned char *id, size_t *len_r);

/* a + days days, saturating, or -1 when days is out of range. */
time_t cert_add_days(time_t a, unsigned int days);

#endif
