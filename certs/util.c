/* Shared helpers of certs/: errors, atomic files, serials, addresses, key export. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certs/cert_private.h"
#include "common/xmalloc.h"

static _Thread_local char cert_errbuf[512];

int cert_error(const char **error_r, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cert_errbuf, sizeof(cert_errbuf), fmt, ap);
	va_end(ap);
	if (error_r != NULL)
		*error_r = cert_errbuf;
	return ret;
}

int cert_gnutls_error(const char **error_r, int gtls_ret, const char *what)
{
	int ret = -EIO;

	switch (gtls_ret) {
	case GNUTLS_E_MEMORY_ERROR:
		ret = -ENOMEM;
		break;
	case GNUTLS_E_ASN1_DER_ERROR:
	case GNUTLS_E_ASN1_GENERIC_ERROR:
	case GNUTLS_E_ASN1_TAG_ERROR:
	case GNUTLS_E_ASN1_ELEMENT_NOT_FOUND:
	case GNUTLS_E_ASN1_VALUE_NOT_FOUND:
	case GNUTLS_E_ASN1_DER_OVERFLOW:
	case GNUTLS_E_BASE64_DECODING_ERROR:
	case GNUTLS_E_BASE64_UNEXPECTED_HEADER_ERROR:
	case GNUTLS_E_INVALID_REQUEST:
	case GNUTLS_E_CERTIFICATE_ERROR:
	case GNUTLS_E_PARSING_ERROR:
		ret = -EINVAL;
		break;
	case GNUTLS_E_DECRYPTION_FAILED:
	case GNUTLS_E_MAC_VERIFY_FAILED:
		ret = -EACCES;
		break;
	default:
		break;
	}
	return cert_error(error_r, ret, "%s: %s", what, gnutls_strerror(gtls_ret));
}

int cert_crt_from_der(const unsigned char *der, size_t len, gnutls_x509_crt_t *crt_r,
                      const char **error_r)
{
	gnutls_datum_t d = {(unsigned char *)der, (unsigned int)len};
	if (der == NULL || len == 0 || len > CERT_FILE_MAX)
		return cert_error(error_r, -EINVAL, "empty or oversized certificate");
	int ret = gnutls_x509_crt_init(crt_r);
	if (ret < 0)
		return cert_gnutls_error(error_r, ret, "certificate");
	ret = gnutls_x509_crt_import(*crt_r, &d, GNUTLS_X509_FMT_DER);
	if (ret < 0) {
		gnutls_x509_crt_deinit(*crt_r);
		return cert_error(error_r, -EINVAL, "certificate: %s", gnutls_strerror(ret));
	}
	return 0;
}

static int cert_fsync_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, ret = 0;

	if (slash == NULL)
		dir = xstrdup(".");
	else if (slash == path)
		dir = xstrdup("/");
	else
		dir = xstrndup(path, (size_t)(slash - path));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	free(dir);
	return ret;
}

int cert_file_write(const char *path, const void *data, size_t len, mode_t mode, bool replace,
                    const char **error_r)
{
	const unsigned char *p = data;
	char *tmp = xasprintf("%s.tmp.XXXXXX", path);
	size_t done = 0;
	int fd, ret = 0;

	/* mkostemp creates the file 0600, so a key is never readable by others, even
	 * between creation and chmod. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ret = cert_error(error_r, -errno, "%s: cannot create a temporary file: %s", path,
		                 strerror(errno));
		free(tmp);
		return ret;
	}
	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = cert_error(error_r, -errno, "%s: write: %s", tmp, strerror(errno));
			goto out;
		}
		done += (size_t)n;
	}
	if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
		ret = cert_error(error_r, -errno, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		ret = cert_error(error_r, -errno, "%s: close: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (replace) {
		if (rename(tmp, path) < 0) {
			ret = cert_error(error_r, -errno, "%s: rename: %s", path, strerror(errno));
			goto out;
		}
	} else {
		/* link() never replaces: an existing file is refused atomically. */
		if (link(tmp, path) < 0) {
			ret = cert_error(error_r, -errno, "%s: %s", path,
			                 errno == EEXIST ? "already exists, not overwritten"
			                                 : strerror(errno));
			goto out;
		}
		(void)unlink(tmp);
	}
	ret = cert_fsync_dir_of(path);
	if (ret < 0)
		ret = cert_error(error_r, ret, "%s: fsync of the folder: %s", path, strerror(-ret));
out:
	if (fd >= 0)
		close(fd);
	if (ret < 0 || !replace)
		(void)unlink(tmp);
	free(tmp);
	return ret;
}

int cert_file_read(const char *path, gnutls_datum_t *out, const char **error_r)
{
	struct stat st;
	unsigned char *data;
	size_t done = 0;
	int fd, ret;

	out->data = NULL;
	out->size = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return cert_error(error_r, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		ret = cert_error(error_r, -errno, "%s: %s", path, strerror(errno));
		close(fd);
		return ret;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CERT_FILE_MAX) {
		close(fd);
		return cert_error(error_r, -EINVAL, "%s: not a regular file of at most %d bytes",
		                  path, CERT_FILE_MAX);
	}
	data = xmalloc((size_t)st.st_size + 1);
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, data + done, (size_t)st.st_size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = cert_error(error_r, -errno, "%s: read: %s", path, strerror(errno));
			close(fd);
			gnutls_memset(data, 0, done);
			free(data);
			return ret;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	close(fd);
	data[done] = '\0';
	out->data = data;
	out->size = (unsigned int)done;
	return 0;
}

void cert_datum_wipe_free(gnutls_datum_t *d)
{
	if (d->data != NULL) {
		gnutls_memset(d->data, 0, d->size);
		free(d->data);
	}
	d->data = NULL;
	d->size = 0;
}

void cert_serial_to_hex(const unsigned char *raw, size_t len, char out[CERT_SERIAL_HEX_MAX + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0, o = 0;

	while (len - i > 1 && raw[i] == 0)
		i++;
	for (; i < len && o + 2 <= CERT_SERIAL_HEX_MAX; i++) {
		out[o++] = hex[raw[i] >> 4];
		out[o++] = hex[raw[i] & 0xf];
	}
	out[o] = '\0';
}

static int cert_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int cert_serial_normalize(const char *in, char out[CERT_SERIAL_HEX_MAX + 1])
{
	unsigned char raw[64];
	size_t n = 0, digits = 0;
	int hi = -1;

	if (in[0] == '0' && (in[1] == 'x' || in[1] == 'X'))
		in += 2;
	/* Count the digits first so an odd count gets an implied leading zero. */
	for (const char *p = in; *p != '\0'; p++) {
		if (*p == ':')
			continue;
		if (cert_hexval(*p) < 0)
			return -EINVAL;
		digits++;
	}
	if (digits == 0 || digits > 2 * sizeof(raw))
		return -EINVAL;
	if (digits % 2 == 1)
		hi = 0;
	for (const char *p = in; *p != '\0'; p++) {
		int v;
		if (*p == ':')
			continue;
		v = cert_hexval(*p);
		if (hi < 0) {
			hi = v;
		} else {
			raw[n++] = (unsigned char)(hi << 4 | v);
			hi = -1;
		}
	}
	/* Drop leading zero octets before checking the RFC 5280 limit of 20. */
	size_t skip = 0;
	while (n - skip > 1 && raw[skip] == 0)
		skip++;
	if (n - skip > 20)
		return -EINVAL;
	cert_serial_to_hex(raw + skip, n - skip, out);
	return 0;
}

int cert_serial_from_hex(const char *hex, unsigned char raw[21], size_t *len_r)
{
	char norm[CERT_SERIAL_HEX_MAX + 1];
	size_t n = 0, off = 0;

	if (cert_serial_normalize(hex, norm) < 0)
		return -EINVAL;
	if (cert_hexval(norm[0]) >= 8) {
		raw[0] = 0;
		off = 1;
	}
	for (size_t i = 0; norm[i] != '\0'; i += 2)
		raw[off + n++] =
		    (unsigned char)(cert_hexval(norm[i]) << 4 | cert_hexval(norm[i + 1]));
	*len_r = off + n;
	return 0;
}

int cert_crt_serial_hex(gnutls_x509_crt_t crt, char out[CERT_SERIAL_HEX_MAX + 1])
{
	unsigned char raw[64];
	size_t len = sizeof(raw);
	int ret;

	ret = gnutls_x509_crt_get_serial(crt, raw, &len);
	if (ret < 0)
		return ret;
	if (len == 0)
		return GNUTLS_E_ASN1_VALUE_NOT_FOUND;
	cert_serial_to_hex(raw, len, out);
	return 0;
}

int cert_address_normalize(const char *in, size_t len, char **addr_r)
{
	size_t at = len, n_at = 0;
	char *out;

	*addr_r = NULL;
	if (len == 0 || len > CERT_ADDRESS_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		/* Controls, space, DEL, 8-bit bytes and NUL (an embedded NUL would let
		 * "alice@x\0.evil" read as alice@x) are all refused. */
		if (c <= 0x20 || c >= 0x7f)
			return -EINVAL;
		if (c == '@') {
			at = i;
			n_at++;
		}
	}
	if (n_at != 1 || at == 0 || at == len - 1)
		return -EINVAL;
	out = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[len] = '\0';
	*addr_r = out;
	return 0;
}

int cert_crt_reimport(gnutls_x509_crt_t *crt)
{
	gnutls_datum_t der = {NULL, 0};
	gnutls_x509_crt_t fresh;
	int ret;

	ret = gnutls_x509_crt_export2(*crt, GNUTLS_X509_FMT_DER, &der);
	if (ret < 0)
		return ret;
	ret = gnutls_x509_crt_init(&fresh);
	if (ret < 0) {
		gnutls_free(der.data);
		return ret;
	}
	ret = gnutls_x509_crt_import(fresh, &der, GNUTLS_X509_FMT_DER);
	gnutls_free(der.data);
	if (ret < 0) {
		gnutls_x509_crt_deinit(fresh);
		return ret;
	}
	gnutls_x509_crt_deinit(*crt);
	*crt = fresh;
	return 0;
}

/* Copies a GnuTLS-allocated datum into a malloc'ed NUL-terminated string, wiping the
 * original (it may hold a key). */
static char *cert_datum_to_str(gnutls_datum_t *d)
{
	char *s = xmalloc((size_t)d->size + 1);

	memcpy(s, d->data, d->size);
	s[d->size] = '\0';
	gnutls_memset(d->data, 0, d->size);
	gnutls_free(d->data);
	d->data = NULL;
	return s;
}

int cert_crt_export_pem(gnutls_x509_crt_t crt, char **pem_r)
{
	gnutls_datum_t d = {NULL, 0};
	int ret;

	ret = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d);
	if (ret < 0)
		return ret;
	*pem_r = cert_datum_to_str(&d);
	return 0;
}

int cert_key_generate(enum cert_key_type type, gnutls_x509_privkey_t *key_r)
{
	gnutls_x509_privkey_t key;
	int ret;

	ret = gnutls_x509_privkey_init(&key);
	if (ret < 0)
		return ret;
	if (type == CERT_KEY_RSA_2048)
		ret = gnutls_x509_privkey_generate(key, GNUTLS_PK_RSA, 2048, 0);
	else
		ret = gnutls_x509_privkey_generate(
		    key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
	if (ret < 0) {
		gnutls_x509_privkey_deinit(key);
		return ret;
	}
	*key_r = key;
	return 0;
}

int cert_key_export_pem(gnutls_x509_privkey_t key, char **pem_r)
{
	gnutls_datum_t d = {NULL, 0};
	int ret;

	ret = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN,
	                                        &d);
	if (ret < 0)
		return ret;
	*pem_r = cert_datum_to_str(&d);
	return 0;
}

int cert_key_id(gnutls_x509_privkey_t key, unsigned char *id, size_t *len_r)
{
	return gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA1, id, len_r);
}

time_t cert_add_days(time_t a, unsigned int days)
{
	if (days == 0 || days > CERT_DAYS_MAX)
		return (time_t)-1;
	return a + (time_t)days * 86400;
}
