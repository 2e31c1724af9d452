/*
 * CATENATE: IMAP URLs to the user's own messages, and the assembly of a message from TEXT
 * parts and the bytes those URLs name. A URL is resolved only against the logged-in
 * user's mailboxes, so it can never reach another user's mail; a URL that names someone
 * else (or carries URLAUTH, which sealmail does not issue) is refused as a bad URL.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"
#include "server/imap/imap_bodystruct.h"
#include "server/imap/imap_catenate.h"
#include "server/imap/imap_fetch_fmt.h"
#include "server/imap/imap_private.h"

#define CHUNK (1024 * 1024)

/* ---- URLs (RFC 5092) ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..len) into a new string; NULL when an escape is broken or decodes
 * to NUL. */
static char *pct_decode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1), *w = out;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (ch == '%') {
			int a = len - i >= 3 ? hexval(s[i + 1]) : -1;
			int b = len - i >= 3 ? hexval(s[i + 2]) : -1;
			if (a < 0 || b < 0 || (a == 0 && b == 0))
				goto bad;
			ch = (char)(a * 16 + b);
			i += 2;
		} else if (ch == '\0') {
			goto bad;
		}
		*w++ = ch;
	}
	*w = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* A number of 1 to 10 digits that fits 32 bits (nz: not 0), all of s[0..len). */
static int parse_u32(const char *s, size_t len, bool nz, uint32_t *v_r)
{
	if (len == 0 || len > 10)
		return -EINVAL;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX || (nz && v == 0))
		return -EINVAL;
	*v_r = (uint32_t)v;
	return 0;
}

/* The first case-insensitive occurrence of key in s[0..len), or NULL. */
static const char *find_ci(const char *s, size_t len, const char *key)
{
	size_t k = strlen(key);
	for (size_t i = 0; i + k <= len; i++)
		if (strncasecmp(s + i, key, k) == 0)
			return s + i;
	return NULL;
}

static bool starts_ci(const char *s, const char *end, const char *key)
{
	size_t k = strlen(key);
	return (size_t)(end - s) >= k && strncasecmp(s, key, k) == 0;
}

void imap_url_free(struct imap_url *u)
{
	free(u->mailbox);
	free(u->section);
	memset(u, 0, sizeof(*u));
}

int imap_url_parse(const char *s, size_t len, const char *user, struct imap_url *u)
{
	memset(u, 0, sizeof(*u));
	const char *p = s, *end = s + len;
	if (memchr(s, '\0', len) != NULL)
		return -EINVAL;
	if (starts_ci(p, end, "imap://")) {
		p += 7;
		const char *slash = memchr(p, '/', (size_t)(end - p));
		if (slash == NULL)
			return -EINVAL;
		const char *at = NULL;
		for (const char *q = p; q < slash; q++)
			if (*q == '@')
				at = q;
		if (at != NULL) {
			/* iuserinfo: enc-user [";AUTH=" ...]; the user must be us. */
			const char *semi = memchr(p, ';', (size_t)(at - p));
			const char *uend = semi != NULL ? semi : at;
			if (uend > p) {
				char *name = pct_decode(p, (size_t)(uend - p));
				bool same =
				    name != NULL && user != NULL && strcasecmp(name, user) == 0;
				free(name);
				if (!same)
					return -EINVAL;
			}
		}
		if (at == NULL ? slash == p : slash == at + 1)
			return -EINVAL; /* no host */
		p = slash;
	}
	if (p >= end || *p != '/')
		return -EINVAL;
	p++;
	const char *uid = find_ci(p, (size_t)(end - p), "/;UID=");
	if (uid == NULL || uid == p)
		return -EINVAL;
	/* enc-mailbox [";UIDVALIDITY=" nz-number] */
	const char *mb_end = uid;
	const char *uv = find_ci(p, (size_t)(uid - p), ";UIDVALIDITY=");
	if (uv != NULL) {
		mb_end = uv;
		if (uv == p ||
		    parse_u32(uv + 13, (size_t)(uid - (uv + 13)), true, &u->uidvalidity) < 0)
			return -EINVAL;
	}
	if (memchr(p, ';', (size_t)(mb_end - p)) != NULL)
		return -EINVAL; /* some other parameter: not ours to ignore */
	u->mailbox = pct_decode(p, (size_t)(mb_end - p));
	if (u->mailbox == NULL || u->mailbox[0] == '\0')
		return -EINVAL;
	p = uid + 6;
	const char *next = find_ci(p, (size_t)(end - p), "/;");
	const char *num_end = next != NULL ? next : end;
	if (parse_u32(p, (size_t)(num_end - p), true, &u->uid) < 0)
		return -EINVAL;
	p = num_end;
	if (starts_ci(p, end, "/;SECTION=")) {
		p += 10;
		next = find_ci(p, (size_t)(end - p), "/;");
		const char *sec_end = next != NULL ? next : end;
		if (sec_end == p)
			return -EINVAL;
		u->section = pct_decode(p, (size_t)(sec_end - p));
		if (u->section == NULL)
			return -EINVAL;
		p = sec_end;
	}
	if (starts_ci(p, end, "/;PARTIAL=")) {
		p += 10;
		const char *dot = memchr(p, '.', (size_t)(end - p));
		uint32_t off, n = 0;
		if (parse_u32(p, (size_t)((dot != NULL ? dot : end) - p), false, &off) < 0 ||
		    (dot != NULL && parse_u32(dot + 1, (size_t)(end - dot - 1), true, &n) < 0))
			return -EINVAL;
		u->partial = true;
		u->p_off = off;
		u->p_len = dot != NULL ? n : UINT64_MAX;
		p = end;
	}
	return p == end ? 0 : -EINVAL; /* URLAUTH, EXPIRE or anything else left */
}

/* ---- Assembly ---- */

struct cat {
	struct imap_client *cl;
	const struct imap_cat_part *parts;
	size_t n, i;
	struct buf *out;
	void (*done)(void *arg, int rc, const struct imap_cat_part *bad);
	void *arg;
	/* The URL being read. */
	struct imap_url url;
	struct imap_section sec;
	bool have_sec;
	int64_t mailbox_id;
	uint64_t off, end;
	struct buf tmp; /* header fields, filtered once read whole */
};

static void cat_free(struct cat *c)
{
	imap_url_free(&c->url);
	if (c->have_sec)
		imap_section_free(&c->sec);
	buf_free(&c->tmp);
	free(c);
}

static void cat_next(struct cat *c);

static void cat_end(struct cat *c, int rc)
{
	void (*done)(void *, int, const struct imap_cat_part *) = c->done;
	void *arg = c->arg;
	const struct imap_cat_part *bad = rc == -EINVAL ? &c->parts[c->i] : NULL;
	cat_free(c);
	done(arg, rc, bad);
}

/* The URL's part is read: on to the next part. */
static void url_done(struct cat *c)
{
	imap_url_free(&c->url);
	if (c->have_sec)
		imap_section_free(&c->sec);
	c->have_sec = false;
	c->i++;
	cat_next(c);
}

static void chunk_got(void *ctx, int rc, struct store_content *res);

static void read_more(struct cat *c)
{
	if (c->off >= c->end) {
		if (c->sec.kind == IMAP_SEC_FIELDS || c->sec.kind == IMAP_SEC_FIELDS_NOT) {
			struct buf f;
			buf_init(&f, SIZE_MAX);
			imap_section_finish(&c->sec, c->tmp.data != NULL ? c->tmp.data : "",
			                    c->tmp.len, &f);
			size_t off = 0, n = f.len;
			if (c->url.partial) {
				off = c->url.p_off < n ? (size_t)c->url.p_off : n;
				if (c->url.p_len < n - off)
					n = off + (size_t)c->url.p_len;
			}
			int rc = buf_append(c->out, f.data + off, n - off);
			buf_free(&f);
			buf_free(&c->tmp);
			buf_init(&c->tmp, SIZE_MAX);
			if (rc < 0) {
				cat_end(c, -EFBIG);
				return;
			}
		}
		url_done(c);
		return;
	}
	uint64_t left = c->end - c->off;
	imap_async_begin(c->cl);
	if (store_content_read(imap_store(c->cl), c->mailbox_id, c->url.uid, c->off,
	                       left < CHUNK ? (size_t)left : CHUNK, chunk_got, c) == 0)
		return;
	conn_release(c->cl->c);
	cat_end(c, -EIO);
}

static void chunk_got(void *ctx, int rc, struct store_content *res)
{
	struct cat *c = ctx;
	if (!imap_async_end(c->cl)) {
		cat_free(c);
		return;
	}
	if (rc == -ENOENT) {
		cat_end(c, -EINVAL); /* expunged meanwhile: the URL names nothing now */
		return;
	}
	if (rc < 0) {
		cat_end(c, rc);
		return;
	}
	if (res->len == 0) { /* shorter than its structure says: what there is */
		c->end = c->off;
		read_more(c);
		return;
	}
	bool fields = c->sec.kind == IMAP_SEC_FIELDS || c->sec.kind == IMAP_SEC_FIELDS_NOT;
	if (buf_append(fields ? &c->tmp : c->out, res->data, res->len) < 0) {
		cat_end(c, -EFBIG);
		return;
	}
	c->off += res->len;
	read_more(c);
}

static void message_got(void *ctx, int rc, struct store_msgs *res)
{
	struct cat *c = ctx;
	if (!imap_async_end(c->cl)) {
		cat_free(c);
		return;
	}
	if (rc < 0 || res->n != 1) {
		cat_end(c, rc == -ENOENT || rc == 0 ? -EINVAL : rc);
		return;
	}
	const struct store_msg *m = &res->v[0];
	struct imap_bs bs = {0};
	const char *json = m->mime_json;
	imap_bs_parse(&bs, json, json != NULL ? strlen(json) : 0);
	char *spec = xasprintf("[%s]", c->url.section != NULL ? c->url.section : "");
	int prc = imap_section_parse(spec, strlen(spec), &c->sec);
	free(spec);
	if (prc < 0) {
		imap_bs_free(&bs);
		cat_end(c, -EINVAL);
		return;
	}
	c->have_sec = true;
	bool fields = c->sec.kind == IMAP_SEC_FIELDS || c->sec.kind == IMAP_SEC_FIELDS_NOT;
	if (c->url.partial && !fields) {
		/* The range is cut as FETCH cuts a <partial>: only those bytes are read. */
		c->sec.partial = true;
		c->sec.p_off = c->url.p_off;
		c->sec.p_len = c->url.p_len;
	}
	uint64_t off, len;
	rc = imap_section_range(&bs, &c->sec, m->size, &off, &len);
	imap_bs_free(&bs);
	if (rc < 0) {
		cat_end(c, -EINVAL); /* no such part */
		return;
	}
	if (!fields && len > c->out->max - c->out->len) {
		cat_end(c, -EFBIG);
		return;
	}
	c->off = off;
	c->end = off + len;
	read_more(c);
}

static void mailbox_got(void *ctx, int rc, struct store_mailboxes *res)
{
	struct cat *c = ctx;
	if (!imap_async_end(c->cl)) {
		cat_free(c);
		return;
	}
	if (rc < 0 || res->n != 1) {
		cat_end(c, rc == -ENOENT || rc == 0 ? -EINVAL : rc);
		return;
	}
	if (c->url.uidvalidity != 0 && c->url.uidvalidity != res->v[0].uidvalidity) {
		cat_end(c, -EINVAL); /* the UIDs the URL was made with are gone */
		return;
	}
	c->mailbox_id = res->v[0].id;
	imap_async_begin(c->cl);
	if (store_message_get(imap_store(c->cl), c->mailbox_id, c->url.uid, message_got, c) == 0)
		return;
	conn_release(c->cl->c);
	cat_end(c, -EIO);
}

static void cat_next(struct cat *c)
{
	for (; c->i < c->n; c->i++) {
		const struct imap_cat_part *p = &c->parts[c->i];
		if (!p->is_url) {
			if (buf_append(c->out, p->data, p->len) < 0) {
				cat_end(c, -EFBIG);
				return;
			}
			continue;
		}
		if (imap_url_parse(p->data, p->len, c->cl->user, &c->url) < 0) {
			cat_end(c, -EINVAL);
			return;
		}
		imap_async_begin(c->cl);
		int rc = store_mailbox_get(imap_store(c->cl), c->cl->user_id, c->url.mailbox,
		                           mailbox_got, c);
		if (rc == 0)
			return;
		conn_release(c->cl->c);
		cat_end(c, rc == -EINVAL ? -EINVAL : -EIO);
		return;
	}
	cat_end(c, 0);
}

void imap_catenate(struct imap_client *cl, const struct imap_cat_part *parts, size_t n,
                   struct buf *out,
                   void (*done)(void *arg, int rc, const struct imap_cat_part *bad), void *arg)
{
	struct cat *c = xcalloc(1, sizeof(*c));
	c->cl = cl;
	c->parts = parts;
	c->n = n;
	c->out = out;
	c->done = done;
	c->arg = arg;
	buf_init(&c->tmp, SIZE_MAX);
	cat_next(c);
}
