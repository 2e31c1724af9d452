/*
 * PROXY protocol v2 header (proxy_v2.h). Built into a scratch area first so the 16-bit
 * length fields can be filled in once their contents are known.
 */
#include "server/gateway/proxy_v2.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

static const unsigned char pp2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* Worst case: 16 header + 36 addresses + unique id + SSL (3 + 5 + three strings) + two
 * strings, each string a 3-byte TLV head and at most PROXY_V2_VALUE_MAX bytes. */
#define PP2_SCRATCH (16 + 36 + 3 + 128 + 8 + 6 * (3 + PROXY_V2_VALUE_MAX))

struct pp2_out {
	unsigned char b[PP2_SCRATCH];
	size_t len;
};

static void put(struct pp2_out *o, const void *p, size_t n)
{
	memcpy(o->b + o->len, p, n);
	o->len += n;
}

static void put_u8(struct pp2_out *o, unsigned v)
{
	o->b[o->len++] = (unsigned char)v;
}

static void put_u16(struct pp2_out *o, size_t v)
{
	o->b[o->len++] = (unsigned char)(v >> 8);
	o->b[o->len++] = (unsigned char)v;
}

static void set_u16(struct pp2_out *o, size_t at, size_t v)
{
	o->b[at] = (unsigned char)(v >> 8);
	o->b[at + 1] = (unsigned char)v;
}

/* A TLV of a string, cut at max bytes; nothing when s is NULL or empty. */
static void put_str_tlv(struct pp2_out *o, unsigned type, const char *s, size_t max)
{
	if (s == NULL || s[0] == '\0')
		return;
	size_t n = strlen(s);
	if (n > max)
		n = max;
	put_u8(o, type);
	put_u16(o, n);
	put(o, s, n);
}

int proxy_v2_build(const struct proxy_v2_info *in, struct buf *out)
{
	struct pp2_out o = {.len = 0};
	put(&o, pp2_signature, sizeof(pp2_signature));
	put_u8(&o, 0x21); /* version 2, PROXY */
	size_t fam_at = o.len;
	put_u8(&o, 0x00); /* AF_UNSPEC unless both addresses are known below */
	size_t len_at = o.len;
	put_u16(&o, 0);
	int af = in->src != NULL && in->dst != NULL && in->src->sa_family == in->dst->sa_family
	             ? in->src->sa_family
	             : AF_UNSPEC;
	if (af == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)in->src;
		const struct sockaddr_in *d = (const struct sockaddr_in *)in->dst;
		o.b[fam_at] = 0x11; /* TCP over IPv4 */
		put(&o, &s->sin_addr, 4);
		put(&o, &d->sin_addr, 4);
		put(&o, &s->sin_port, 2); /* already in network order */
		put(&o, &d->sin_port, 2);
	} else if (af == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)in->src;
		const struct sockaddr_in6 *d = (const struct sockaddr_in6 *)in->dst;
		o.b[fam_at] = 0x21; /* TCP over IPv6 */
		put(&o, &s->sin6_addr, 16);
		put(&o, &d->sin6_addr, 16);
		put(&o, &s->sin6_port, 2);
		put(&o, &d->sin6_port, 2);
	}
	put_str_tlv(&o, PP2_TYPE_UNIQUE_ID, in->unique_id, 128); /* at most 128 (2.2.5) */
	if (in->tls_version != NULL) {
		put_u8(&o, PP2_TYPE_SSL);
		size_t ssl_len_at = o.len;
		put_u16(&o, 0);
		size_t ssl_start = o.len;
		unsigned client = PP2_CLIENT_SSL;
		if (in->cert_presented)
			client |= PP2_CLIENT_CERT_CONN;
		if (in->cert_in_session || in->cert_presented)
			client |= PP2_CLIENT_CERT_SESS;
		put_u8(&o, client);
		/* verify: zero only when a certificate was presented and verified. */
		uint32_t verify = in->cert_verified ? 0 : 1;
		unsigned char v[4] = {(unsigned char)(verify >> 24), (unsigned char)(verify >> 16),
		                      (unsigned char)(verify >> 8), (unsigned char)verify};
		put(&o, v, 4);
		put_str_tlv(&o, PP2_SUBTYPE_SSL_VERSION, in->tls_version, PROXY_V2_VALUE_MAX);
		if (in->cert_verified)
			put_str_tlv(&o, PP2_SUBTYPE_SSL_CN, in->cert_cn, PROXY_V2_VALUE_MAX);
		put_str_tlv(&o, PP2_SUBTYPE_SSL_CIPHER, in->tls_cipher, PROXY_V2_VALUE_MAX);
		set_u16(&o, ssl_len_at, o.len - ssl_start);
	}
	if (in->cert_verified) {
		put_str_tlv(&o, PP2_TYPE_SEALMAIL_SUBJECT, in->cert_subject, PROXY_V2_VALUE_MAX);
		put_str_tlv(&o, PP2_TYPE_SEALMAIL_SERIAL, in->cert_serial, PROXY_V2_VALUE_MAX);
	}
	set_u16(&o, len_at, o.len - 16); /* what follows the 16-byte fixed part */
	return buf_append(out, o.b, o.len) < 0 ? -ENOBUFS : 0;
}
