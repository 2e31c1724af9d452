/*
 * The PROXY v2 header (server/gateway/proxy_v2.c), checked byte by byte against the
 * layout of HAProxy's proxy-protocol.txt 2.2.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "server/gateway/proxy_v2.h"

static const unsigned char sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static unsigned u16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* The value of TLV type t in [p, end), or NULL; its length in *len. */
static const unsigned char *tlv(const unsigned char *p, const unsigned char *end, unsigned t,
                                size_t *len)
{
	while (p + 3 <= end) {
		size_t n = u16(p + 1);
		cr_assert(p + 3 + n <= end, "TLV overruns its area");
		if (p[0] == t) {
			*len = n;
			return p + 3;
		}
		p += 3 + n;
	}
	return NULL;
}

Test(proxy_v2, ipv4_with_certificate)
{
	struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = htons(40000)};
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(993)};
	inet_pton(AF_INET, "192.0.2.7", &src.sin_addr);
	inet_pton(AF_INET, "198.51.100.1", &dst.sin_addr);
	struct proxy_v2_info in = {
	    .src = (struct sockaddr *)&src,
	    .dst = (struct sockaddr *)&dst,
	    .unique_id = "00ab",
	    .tls_version = "TLSv1.3",
	    .tls_cipher = "TLS_AES_128_GCM_SHA256",
	    .cert_presented = true,
	    .cert_in_session = true,
	    .cert_verified = true,
	    .cert_cn = "alice",
	    .cert_subject = "CN=alice,O=Corp",
	    .cert_serial = "1f",
	};
	struct buf b;
	buf_init(&b, 65536);
	cr_assert_eq(proxy_v2_build(&in, &b), 0);
	const unsigned char *h = (const unsigned char *)b.data;
	cr_assert(memcmp(h, sig, 12) == 0);
	cr_assert_eq(h[12], 0x21); /* version 2, PROXY */
	cr_assert_eq(h[13], 0x11); /* TCP over IPv4 */
	cr_assert_eq(u16(h + 14), b.len - 16);
	cr_assert(memcmp(h + 16, &src.sin_addr, 4) == 0);
	cr_assert(memcmp(h + 20, &dst.sin_addr, 4) == 0);
	cr_assert_eq(u16(h + 24), 40000);
	cr_assert_eq(u16(h + 26), 993);
	const unsigned char *end = h + b.len;
	size_t n;
	const unsigned char *v = tlv(h + 28, end, PP2_TYPE_UNIQUE_ID, &n);
	cr_assert(v != NULL && n == 4 && memcmp(v, "00ab", 4) == 0);
	v = tlv(h + 28, end, PP2_TYPE_SSL, &n);
	cr_assert(v != NULL && n >= 5);
	cr_assert_eq(v[0], PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS);
	cr_assert(v[1] == 0 && v[2] == 0 && v[3] == 0 && v[4] == 0); /* verified */
	size_t sn;
	const unsigned char *s = tlv(v + 5, v + n, PP2_SUBTYPE_SSL_VERSION, &sn);
	cr_assert(s != NULL && sn == 7 && memcmp(s, "TLSv1.3", 7) == 0);
	s = tlv(v + 5, v + n, PP2_SUBTYPE_SSL_CN, &sn);
	cr_assert(s != NULL && sn == 5 && memcmp(s, "alice", 5) == 0);
	s = tlv(v + 5, v + n, PP2_SUBTYPE_SSL_CIPHER, &sn);
	cr_assert(s != NULL && sn == strlen(in.tls_cipher));
	v = tlv(h + 28, end, PP2_TYPE_SEALMAIL_SUBJECT, &n);
	cr_assert(v != NULL && n == strlen(in.cert_subject));
	v = tlv(h + 28, end, PP2_TYPE_SEALMAIL_SERIAL, &n);
	cr_assert(v != NULL && n == 2 && memcmp(v, "1f", 2) == 0);
	buf_free(&b);
}

Test(proxy_v2, ipv6_without_certificate)
{
	struct sockaddr_in6 src = {.sin6_family = AF_INET6, .sin6_port = htons(1)};
	struct sockaddr_in6 dst = {.sin6_family = AF_INET6, .sin6_port = htons(2)};
	inet_pton(AF_INET6, "2001:db8::1", &src.sin6_addr);
	inet_pton(AF_INET6, "2001:db8::2", &dst.sin6_addr);
	struct proxy_v2_info in = {.src = (struct sockaddr *)&src,
	                           .dst = (struct sockaddr *)&dst,
	                           .tls_version = "TLSv1.2",
	                           .tls_cipher = "x",
	                           .cert_cn = "ignored: not verified"};
	struct buf b;
	buf_init(&b, 65536);
	cr_assert_eq(proxy_v2_build(&in, &b), 0);
	const unsigned char *h = (const unsigned char *)b.data;
	cr_assert_eq(h[13], 0x21); /* TCP over IPv6 */
	cr_assert(memcmp(h + 16, &src.sin6_addr, 16) == 0);
	cr_assert(memcmp(h + 32, &dst.sin6_addr, 16) == 0);
	cr_assert_eq(u16(h + 48), 1);
	cr_assert_eq(u16(h + 50), 2);
	size_t n;
	const unsigned char *v = tlv(h + 52, h + b.len, PP2_TYPE_SSL, &n);
	cr_assert(v != NULL);
	cr_assert_eq(v[0], PP2_CLIENT_SSL);
	cr_assert(v[4] != 0); /* not verified */
	size_t sn;
	cr_assert_null(tlv(v + 5, v + n, PP2_SUBTYPE_SSL_CN, &sn));
	cr_assert_null(tlv(h + 52, h + b.len, PP2_TYPE_SEALMAIL_SUBJECT, &n));
	buf_free(&b);
}

Test(proxy_v2, unknown_addresses_and_long_values)
{
	static char big[5000];
	memset(big, 'a', sizeof(big) - 1);
	struct proxy_v2_info in = {.tls_version = "TLSv1.3",
	                           .tls_cipher = "c",
	                           .cert_verified = true,
	                           .cert_subject = big,
	                           .unique_id = big};
	struct buf b;
	buf_init(&b, 65536);
	cr_assert_eq(proxy_v2_build(&in, &b), 0);
	const unsigned char *h = (const unsigned char *)b.data;
	cr_assert_eq(h[13], 0x00); /* AF_UNSPEC */
	cr_assert_eq(u16(h + 14), b.len - 16);
	size_t n;
	cr_assert_not_null(tlv(h + 16, h + b.len, PP2_TYPE_UNIQUE_ID, &n));
	cr_assert_eq(n, 128);
	cr_assert_not_null(tlv(h + 16, h + b.len, PP2_TYPE_SEALMAIL_SUBJECT, &n));
	cr_assert_eq(n, PROXY_V2_VALUE_MAX);
	buf_free(&b);
	buf_init(&b, 20);
	cr_assert_eq(proxy_v2_build(&in, &b), -ENOBUFS);
	buf_free(&b);
}
