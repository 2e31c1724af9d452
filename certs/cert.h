#ifndef SEALMAIL_CERT_H
#define SEALMAIL_CERT_H
/*
 * certs: the X.509 work of sealmail, pure GnuTLS and files.
 *
 * It is: the built-in client CA (create, load), issuing client and server certificates,
 * PKCS#12 export (modern and legacy), writing and reading CRLs, and mapping a verified
 * client certificate to an e-mail address. It is not: the record of what was issued or
 * revoked (that lives in the store and is kept by sealctl), certificate verification
 * during a TLS handshake (server/tls.c), or the "is this address a user" check (auth).
 * Nothing here includes the store, libuv or the configuration; sealctl and sealmaild
 * both link it.
 *
 * Keys: every key this module makes is ECDSA P-256 (the CA's too), which every client we
 * know of accepts (Thunderbird, mutt, curl, Python, Node, Android, iOS/macOS); client keys
 * may be RSA 2048 on request for very old clients. Ed25519 is not used: several clients
 * and keystores still reject it.
 *
 * Conventions: functions return 0 on success or a negative errno-style code. On failure
 * *error_r (when error_r is not NULL) points to one line saying what failed, naming the
 * file where there is one; the text lives in a thread-local buffer valid until the next
 * cert_ call on the same thread. Files are written atomically (temporary file, fsync,
 * rename) and key files are created 0600 from the start, never readable by others even
 * briefly. Serials are lowercase hex without separators ("3f0a...").
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* File names inside the CA folder (ca_dir in the configuration; only sealctl reads it). */
#define CERT_CA_KEY_FILE "ca.key"
#define CERT_CA_CRT_FILE "ca.crt"
#define CERT_CRL_FILE    "crl.pem"

/* A serial in hex: at most 20 octets (RFC 5280), so 40 hex digits. Ours are 16 octets. */
#define CERT_SERIAL_HEX_MAX 40
/* Longest address accepted as an identity (RFC 5321 path limit). */
#define CERT_ADDRESS_MAX 254

/* A loaded CA: its certificate and signing key. Opaque. */
struct cert_ca;

/* ---- CA (ca.c) -------------------------------------------------------------------- */

/* Creates a new CA in dir (created 0700 if missing; its parent must exist): dir/ca.key
 * (ECDSA P-256, PEM, mode 0600) and dir/ca.crt (self-signed, CN=name, CA:TRUE pathlen 0,
 * keyCertSign+cRLSign, subject key identifier, valid days days from now-5min). Refuses
 * with -EEXIST, changing nothing, when either file already exists. Writes no CRL: the
 * caller writes the first one with cert_crl_write (it owns the CRL number). days > 0. */
int cert_ca_init(const char *dir, const char *name, unsigned int days, const char **error_r);

/* Loads dir/ca.crt and dir/ca.key into a new *ca_r (freed with cert_ca_free). Fails with
 * -EINVAL if the key does not match the certificate or the certificate is not a CA,
 * -ENOENT if a file is missing. */
int cert_ca_load(const char *dir, struct cert_ca **ca_r, const char **error_r);

/* Frees *ca (wiping the key) and sets *ca to NULL. NULL and *ca == NULL are allowed. */
void cert_ca_free(struct cert_ca **ca);

/* The CA certificate in PEM, borrowed from ca (valid until cert_ca_free). */
const char *cert_ca_cert_pem(const struct cert_ca *ca);

/* Puts the CA certificate (not the key) at path, mode 0644, for sealmaild's
 * tls.client_ca: written atomically when path is missing or empty; 0 without writing when
 * it already holds exactly this certificate; -EEXIST, changing nothing, when it holds
 * anything else (another CA's certificates are never replaced). */
int cert_ca_publish(const struct cert_ca *ca, const char *path, const char **error_r);

/* ---- Issuing (issue.c) ------------------------------------------------------------ */

enum cert_key_type {
	CERT_KEY_ECDSA_P256 = 0, /* default */
	CERT_KEY_RSA_2048,       /* for old clients only */
};

struct cert_client_options {
	unsigned int days;           /* validity, > 0 */
	enum cert_key_type key_type; /* 0 = ECDSA P-256 */
	/* Folder for ADDRESS.crt, ADDRESS.key (0600) and ADDRESS.p12 (0600). Must exist.
	 * NULL: write nothing and make no PKCS#12 (the result is only in memory). */
	const char *out_dir;
	/* PKCS#12 password, borrowed. NULL: a random one (4 groups of 5 letters and digits,
	 * about 100 bits) is made and returned in cert_issued.p12_password. "" is refused:
	 * an empty-password bundle is a key in the clear. */
	const char *p12_password;
	/* false: PBES2 AES-256-CBC + HMAC-SHA256 MAC (modern). true: PKCS#12 3DES + SHA-1
	 * MAC, the only format macOS Keychain, iOS and Android <= 12 import. */
	bool legacy_p12;
};

/* What was issued. Owned by the caller; release with cert_issued_clear. */
struct cert_issued {
	char serial[CERT_SERIAL_HEX_MAX + 1]; /* lowercase hex, 32 digits for ours */
	char *name;                           /* normalised address, or the hostname */
	char *cert_pem;                       /* the leaf certificate alone */
	char *key_pem;                        /* its private key (PKCS#8 PEM, unencrypted) */
	char *p12_password;                   /* NULL when no PKCS#12 was written */
	time_t not_before, not_after;
};

/* Issues a client certificate for address (lower-cased; refused with -EINVAL when it has no
 * '@', control characters, spaces, '/', or starts with '.'): a new key, subject
 * CN=address + emailAddress=address (for old clients), SAN rfc822Name=address, EKU
 * clientAuth only, keyUsage digitalSignature, CA:FALSE, subject and authority key
 * identifiers, a random positive 16-octet serial, valid from now-5min for opt->days days.
 * With opt->out_dir, writes the three files (a PKCS#12 with friendly name = address,
 * holding key, certificate and the CA certificate; about 0.35 s of key stretching).
 * Fills *issued_r (zeroed first; on failure it holds nothing to free). Borrows ca. */
int cert_issue_client(struct cert_ca *ca, const char *address,
                      const struct cert_client_options *opt, struct cert_issued *issued_r,
                      const char **error_r);

/* Issues a server certificate: SAN dNSName hostname (only that, no "localhost") plus one
 * iPAddress per entry of ips (numeric IPv4 or IPv6 text; n_ips may be 0 and ips NULL),
 * CN=hostname, EKU serverAuth (and clientAuth too with client_auth: the certificate a
 * relay presents to peers that ask for one), keyUsage digitalSignature, CA:FALSE, ECDSA
 * P-256. Writes out_dir/server.crt (leaf then CA certificate) and out_dir/server.key
 * (0600); out_dir must exist. Fills *issued_r as cert_issue_client does (never a
 * PKCS#12). */
int cert_issue_server(struct cert_ca *ca, const char *hostname, const char *const *ips,
                      size_t n_ips, unsigned int days, bool client_auth, const char *out_dir,
                      struct cert_issued *issued_r, const char **error_r);

/* Frees what *issued holds (wiping key and password) and zeroes it. */
void cert_issued_clear(struct cert_issued *issued);

/* ---- PKCS#12 (p12.c) -------------------------------------------------------------- */

/* Builds a password-protected PKCS#12 bundle (DER) of cert_pem + key_pem + the CA
 * certificate, friendly name friendly_name on key and certificate, in the modern or the
 * legacy format (see cert_client_options.legacy_p12). password must be non-empty. On
 * success *der_r (free()) and *len_r hold the bundle. */
int cert_p12_export(const struct cert_ca *ca, const char *cert_pem, const char *key_pem,
                    const char *friendly_name, const char *password, bool legacy,
                    unsigned char **der_r, size_t *len_r, const char **error_r);

/* ---- CRL (crl.c) ------------------------------------------------------------------ */

struct cert_revoked {
	const char *serial; /* hex as cert_serial_normalize accepts */
	time_t revoked_at;
};

/* Writes a CRL signed by ca to path (PEM, mode 0644, atomically): thisUpdate now,
 * nextUpdate now + next_update_days (> 0), CRL number crl_number (the caller keeps it
 * monotonic, e.g. in the store), authority key identifier, and the n revoked entries
 * (n may be 0: an empty CRL). -EINVAL for a malformed serial. */
int cert_crl_write(struct cert_ca *ca, const struct cert_revoked *revoked, size_t n,
                   uint64_t crl_number, unsigned int next_update_days, const char *path,
                   const char **error_r);

struct cert_crl_info {
	uint64_t number; /* 0 when the CRL has no number */
	time_t this_update, next_update;
	size_t n_revoked;
};

/* Reads the CRL at path and checks its signature against the CA certificate at
 * ca_crt_path (-EBADMSG when it does not verify). Says nothing about staleness: the server
 * compares next_update with the clock itself and fails closed (GnuTLS silently ignores an
 * expired CRL). */
int cert_crl_info_from_file(const char *path, const char *ca_crt_path, struct cert_crl_info *info_r,
                            const char **error_r);

/* ---- Reading and mapping (map.c) -------------------------------------------------- */

/* The identity of a client certificate the TLS layer has already verified (DER, borrowed):
 * the SAN rfc822Name, else the subject emailAddress (1.2.840.113549.1.9.1), lower-cased,
 * into *addr_r (free()). Never the CN, never anything the client typed.
 * Returns 0, -ENOENT when the certificate has neither, -EINVAL when it cannot be parsed,
 * when the chosen identity is malformed (control characters, spaces, 8-bit bytes, not
 * exactly one '@', empty local part or domain, longer than CERT_ADDRESS_MAX) or ambiguous
 * (two different rfc822Names, or two different emailAddresses). A malformed SAN does not
 * fall through to emailAddress: the certificate authenticates nobody. */
int cert_identity_from_der(const unsigned char *der, size_t len, char **addr_r,
                           const char **error_r);

/* The DNS names of a verified server's certificate (DER, borrowed), lower-cased and
 * without duplicates: every subjectAltName dNSName, or the CN when the certificate has no
 * subjectAltName at all. Only host-name shapes count (letters, digits, '-', '.'; no
 * wildcards, no spaces): anything else is skipped. Returns 0 with *names_r (free with
 * cert_names_free; NULL when *n_r is 0), or -EINVAL when the certificate cannot be
 * parsed or lists more than 64 subjectAltNames. (peer.c) */
int cert_dns_names_from_der(const unsigned char *der, size_t len, char ***names_r, size_t *n_r,
                            const char **error_r);
void cert_names_free(char **names, size_t n);

/* What `sealctl cert list` shows about one certificate file. Owned by the caller. */
struct cert_info {
	char serial[CERT_SERIAL_HEX_MAX + 1];
	char *subject; /* RFC 4514 string, e.g. "CN=alice@example.org" */
	char *address; /* as cert_identity_from_der, NULL when there is none */
	time_t not_before, not_after;
	bool is_ca;
};

/* Reads the first certificate of the PEM file at path. */
int cert_info_from_pem(const char *path, struct cert_info *info_r, const char **error_r);
/* The same from PEM text in memory (borrowed). */
int cert_info_from_pem_data(const char *pem, size_t len, struct cert_info *info_r,
                            const char **error_r);
void cert_info_clear(struct cert_info *info);

/* Normalises a serial typed by an administrator ("3F:0A:..", "0x3f0a..", "3f0a..") to
 * lowercase hex without separators or leading zero octets into out. -EINVAL when it is
 * not hex, is empty, or has more than 20 octets. */
int cert_serial_normalize(const char *in, char out[CERT_SERIAL_HEX_MAX + 1]);

#endif
