/*
 * Annotations (IMAP METADATA, RFC 5464) as every backend sees them: the name rule the
 * store keeps, the DEPTH match of store_metadata_get, and the result's freeing. No SQL.
 */
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "storage/store_backend.h"

bool store_meta_name_valid(const char *name)
{
	const char *rest;
	if (strncmp(name, "/private/", 9) == 0)
		rest = name + 9;
	else if (strncmp(name, "/shared/", 8) == 0)
		rest = name + 8;
	else
		return false;
	if (rest[0] == '\0' || rest[0] == '/')
		return false;
	for (const char *p = rest; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c >= 0x7f || c == '*' || c == '%' || (c >= 'A' && c <= 'Z'))
			return false;
		if (c == '/' && (p[1] == '/' || p[1] == '\0'))
			return false;
	}
	return true;
}

bool store_meta_matches(const char *name, const char *const *names, size_t n, int depth)
{
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(names[i]);
		if (strncmp(name, names[i], len) != 0)
			continue;
		if (name[len] == '\0')
			return true;
		if (depth == 0 || name[len] != '/')
			continue;
		if (depth == STORE_META_DEPTH_INFINITY || strchr(name + len + 1, '/') == NULL)
			return true;
	}
	return false;
}

void store_meta_free_all(struct store_meta_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
}

static int meta_cmp(const void *a, const void *b)
{
	const struct store_meta_entry *x = a, *y = b;
	return strcmp(x->name, y->name);
}

void store_meta_sort(struct store_meta_entry *v, size_t n)
{
	if (n > 1)
		qsort(v, n, sizeof(*v), meta_cmp);
}

void store_metadata_free(struct store_metadata *res)
{
	store_meta_free_all(res->v, res->n);
	memset(res, 0, sizeof(*res));
}

void store_metadata_move(struct store_metadata *dst, struct store_metadata *src)
{
	store_metadata_free(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}
