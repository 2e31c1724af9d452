/*
 * MIME structure of a message in memory (see imap_mime.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"
#include "server/imap/imap_mime.h"

/* Finds the end of the header block starting at off: returns the offset just past the
 * blank line (or end when there is none). */
static size_t header_end(const char *d, size_t off, size_t end)
{
	size_t i = off;
	/* A body may start right away: the header is empty. */
	if (i < end && d[i] == '\n')
		return i + 1;
	if (i + 1 < end && d[i] == '\r' && d[i + 1] == '\n')
		return i + 2;
	while (i < end) {
		const char *nl = memchr(d + i, '\n', end - i);
		if (nl == NULL)
			return end;
		i = (size_t)(nl - d) + 1;
		if (i < end && d[i] == '\n')
			return i + 1;
		if (i + 1 < end && d[i] == '\r' && d[i + 1] == '\n')
			return i + 2;
	}
	return end;
}

bool imap_mime_header(const char *hdr, size_t len, const char *name, const char **val_r,
                      size_t *vlen_r)
{
	size_t nl = strlen(name), i = 0;
	while (i < len) {
		size_t ls = i;
		const char *e = memchr(hdr + i, '\n', len - i);
		size_t le = e != NULL ? (size_t)(e - hdr) + 1 : len;
		if (le - ls > nl && hdr[ls + nl] == ':' && strncasecmp(hdr + ls, name, nl) == 0) {
			/* The value runs over continuation lines. */
			size_t ve = le;
			while (ve < len && (hdr[ve] == ' ' || hdr[ve] == '\t')) {
				const char *e2 = memchr(hdr + ve, '\n', len - ve);
				ve = e2 != NULL ? (size_t)(e2 - hdr) + 1 : len;
			}
			*val_r = hdr + ls + nl + 1;
			*vlen_r = ve - (ls + nl + 1);
			return true;
		}
		i = le;
	}
	return false;
}

char *imap_mime_unfold(const char *val, size_t len)
{
	char *o = xmalloc(len + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (val[i] == '\r' || val[i] == '\n')
			continue;
		o[n++] = val[i] == '\t' ? ' ' : val[i];
	}
	size_t s = 0;
	while (s < n && o[s] == ' ')
		s++;
	while (n > s && o[n - 1] == ' ')
		n--;
	memmove(o, o + s, n - s);
	o[n - s] = '\0';
	return o;
}

char *imap_mime_param(const char *params, size_t len, const char *name)
{
	size_t nl = strlen(name), i = 0;
	while (i < len) {
		while (i < len && (params[i] == ';' || params[i] == ' ' || params[i] == '\t' ||
		                   params[i] == '\r' || params[i] == '\n'))
			i++;
		size_t ns = i;
		while (i < len && params[i] != '=' && params[i] != ';')
			i++;
		size_t ne = i;
		while (ne > ns && (params[ne - 1] == ' ' || params[ne - 1] == '\t'))
			ne--;
		if (i >= len || params[i] != '=')
			continue;
		i++;
		while (i < len && (params[i] == ' ' || params[i] == '\t'))
			i++;
		char *v;
		if (i < len && params[i] == '"') {
			i++;
			v = xmalloc(len - i + 1);
			size_t n = 0;
			while (i < len && params[i] != '"') {
				if (params[i] == '\\' && i + 1 < len)
					i++;
				if (params[i] != '\r' && params[i] != '\n')
					v[n++] = params[i];
				i++;
			}
			v[n] = '\0';
			i++;
		} else {
			size_t vs = i;
			while (i < len && params[i] != ';' && params[i] != ' ' &&
			       params[i] != '\t' && params[i] != '\r' && params[i] != '\n')
				i++;
			v = xstrndup(params + vs, i - vs);
		}
		if (ne - ns == nl && strncasecmp(params + ns, name, nl) == 0)
			return v;
		free(v);
	}
	return NULL;
}

static void split_type(const char *val, size_t vlen, char **type_r, char **subtype_r,
                       const char **params_r, size_t *plen_r)
{
	const char *semi = val != NULL ? memchr(val, ';', vlen) : NULL;
	size_t tl = semi != NULL ? (size_t)(semi - val) : vlen;
	char *t = val != NULL ? imap_mime_unfold(val, tl) : xstrdup("");
	char *slash = strchr(t, '/');
	if (slash == NULL || slash == t || slash[1] == '\0' || strchr(t, ' ') != NULL) {
		free(t);
		*type_r = NULL;
		*subtype_r = NULL;
	} else {
		*slash = '\0';
		*type_r = xstrdup(t);
		*subtype_r = xstrdup(slash + 1);
		free(t);
	}
	*params_r = semi != NULL ? semi : "";
	*plen_r = semi != NULL ? vlen - tl : 0;
}

void imap_mime_content_type(const struct imap_mime *m, const struct imap_mime_part *p,
                            char **type_r, char **subtype_r, const char **params_r, size_t *plen_r)
{
	const char *val = NULL;
	size_t vlen = 0;
	bool found =
	    imap_mime_header(m->data + p->hdr_off, p->hdr_len, "Content-Type", &val, &vlen);
	split_type(found ? val : NULL, vlen, type_r, subtype_r, params_r, plen_r);
	if (*type_r == NULL) {
		*type_r = xstrdup(p->default_rfc822 ? "message" : "text");
		*subtype_r = xstrdup(p->default_rfc822 ? "rfc822" : "plain");
	}
}

static void parse_entity(struct imap_mime *m, struct imap_mime_part *p, size_t off, size_t end,
                         bool default_rfc822, unsigned depth);

static void parse_multipart(struct imap_mime *m, struct imap_mime_part *p, const char *boundary,
                            unsigned depth, bool digest)
{
	size_t bl = strlen(boundary);
	const char *d = m->data;
	size_t i = p->body_off, end = p->body_off + p->body_len;
	size_t part_start = SIZE_MAX, cap = 0;
	while (i < end) {
		const char *nl = memchr(d + i, '\n', end - i);
		size_t le = nl != NULL ? (size_t)(nl - d) + 1 : end;
		if (le - i >= 2 + bl && d[i] == '-' && d[i + 1] == '-' &&
		    memcmp(d + i + 2, boundary, bl) == 0) {
			bool last =
			    le - i >= 4 + bl && d[i + 2 + bl] == '-' && d[i + 3 + bl] == '-';
			if (part_start != SIZE_MAX) {
				/* The CRLF before the boundary line belongs to the boundary. */
				size_t pe = i;
				if (pe > part_start && d[pe - 1] == '\n')
					pe--;
				if (pe > part_start && d[pe - 1] == '\r')
					pe--;
				if (m->n_parts < IMAP_MIME_MAX_PARTS) {
					if (p->n_children == cap) {
						cap = cap == 0 ? 4 : cap * 2;
						p->children = xreallocarray(p->children, cap,
						                            sizeof(*p->children));
					}
					struct imap_mime_part *c = &p->children[p->n_children++];
					memset(c, 0, sizeof(*c));
					m->n_parts++;
					parse_entity(m, c, part_start, pe, digest, depth + 1);
				}
			}
			if (last)
				return;
			part_start = le;
		}
		i = le;
	}
	/* No closing boundary: the last part runs to the end. */
	if (part_start != SIZE_MAX && part_start <= end && m->n_parts < IMAP_MIME_MAX_PARTS) {
		if (p->n_children == cap)
			p->children = xreallocarray(p->children, cap + 1, sizeof(*p->children));
		struct imap_mime_part *c = &p->children[p->n_children++];
		memset(c, 0, sizeof(*c));
		m->n_parts++;
		parse_entity(m, c, part_start, end, digest, depth + 1);
	}
}

static void parse_entity(struct imap_mime *m, struct imap_mime_part *p, size_t off, size_t end,
                         bool default_rfc822, unsigned depth)
{
	size_t he = header_end(m->data, off, end);
	p->hdr_off = off;
	p->hdr_len = he - off;
	p->body_off = he;
	p->body_len = end - he;
	p->default_rfc822 = default_rfc822;
	char *type, *subtype;
	const char *params;
	size_t plen;
	imap_mime_content_type(m, p, &type, &subtype, &params, &plen);
	if (depth < IMAP_MIME_MAX_DEPTH) {
		if (strcasecmp(type, "multipart") == 0) {
			char *b = imap_mime_param(params, plen, "boundary");
			if (b != NULL && b[0] != '\0') {
				p->multipart = true;
				parse_multipart(m, p, b, depth, strcasecmp(subtype, "digest") == 0);
			}
			free(b);
		} else if (strcasecmp(type, "message") == 0 &&
		           (strcasecmp(subtype, "rfc822") == 0 ||
		            strcasecmp(subtype, "global") == 0) &&
		           m->n_parts < IMAP_MIME_MAX_PARTS) {
			p->message = true;
			p->msg = xcalloc(1, sizeof(*p->msg));
			m->n_parts++;
			parse_entity(m, p->msg, p->body_off, end, false, depth + 1);
		}
	}
	p->text = strcasecmp(type, "text") == 0;
	free(type);
	free(subtype);
}

void imap_mime_parse(struct imap_mime *m, const char *data, size_t len)
{
	memset(m, 0, sizeof(*m));
	m->data = data;
	m->len = len;
	m->n_parts = 1;
	parse_entity(m, &m->root, 0, len, false, 0);
}

static void part_free(struct imap_mime_part *p)
{
	for (size_t i = 0; i < p->n_children; i++)
		part_free(&p->children[i]);
	free(p->children);
	if (p->msg != NULL) {
		part_free(p->msg);
		free(p->msg);
	}
}

void imap_mime_free(struct imap_mime *m)
{
	part_free(&m->root);
	memset(m, 0, sizeof(*m));
}

const struct imap_mime_part *imap_mime_find(const struct imap_mime *m, const unsigned *path,
                                            size_t n_path)
{
	const struct imap_mime_part *cur = &m->root;
	for (size_t i = 0; i < n_path; i++) {
		const struct imap_mime_part *container = cur;
		if (i > 0 && container->message)
			container = container->msg;
		unsigned k = path[i];
		if (container->multipart) {
			if (k == 0 || k > container->n_children)
				return NULL;
			cur = &container->children[k - 1];
		} else {
			if (k != 1)
				return NULL;
			cur = container;
		}
	}
	return cur;
}
