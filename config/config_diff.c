/*
 * cfg_diff: which keys differ between two loaded configurations, from the key table, so
 * that a reload can say exactly which changes it did not apply.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "config/config.h"
#include "config/config_private.h"

static const void *at(const void *base, size_t offset)
{
	return (const char *)base + offset;
}

static bool str_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* One value of key in a and b (their structs: the config or a list element). */
static bool same(const struct cfg_key *key, const void *a, const void *b)
{
	switch (key->type) {
	case CFG_TYPE_SECTION:
	case CFG_TYPE_LIST:
		return true; /* compared through their children */
	case CFG_TYPE_HOSTNAME:
	case CFG_TYPE_HOST:
	case CFG_TYPE_ADDRESS:
	case CFG_TYPE_ROUTE_DOMAIN:
	case CFG_TYPE_FILE:
	case CFG_TYPE_DIR:
		return str_eq(*(char *const *)at(a, key->offset),
		              *(char *const *)at(b, key->offset));
	case CFG_TYPE_DOMAINS:
	case CFG_TYPE_HOSTS:
	case CFG_TYPE_DNS_SERVERS:
	case CFG_TYPE_MAIL_ADDRESSES:
	case CFG_TYPE_NETS: {
		size_t na = *(const size_t *)at(a, key->count_offset);
		size_t nb = *(const size_t *)at(b, key->count_offset);
		char *const *va = *(char **const *)at(a, key->offset);
		char *const *vb = *(char **const *)at(b, key->offset);
		if (na != nb)
			return false;
		for (size_t i = 0; i < na; i++)
			if (!str_eq(va[i], vb[i]))
				return false;
		return true;
	}
	case CFG_TYPE_BOOL:
		return *(const bool *)at(a, key->offset) == *(const bool *)at(b, key->offset);
	case CFG_TYPE_UINT:
		return *(const unsigned *)at(a, key->offset) ==
		       *(const unsigned *)at(b, key->offset);
	case CFG_TYPE_U64:
		return *(const uint64_t *)at(a, key->offset) ==
		       *(const uint64_t *)at(b, key->offset);
	case CFG_TYPE_PORT:
		return *(const uint16_t *)at(a, key->offset) ==
		       *(const uint16_t *)at(b, key->offset);
	case CFG_TYPE_ENUM:
		return *(const int *)at(a, key->offset) == *(const int *)at(b, key->offset);
	}
	return false;
}

static void add(struct buf *o, const char *path)
{
	if (o->len > 0)
		buf_append_str(o, ",");
	buf_append_str(o, path);
}

/* A list key (listeners, relay.routes): its length, then each element's children. */
static void diff_list(struct buf *o, const struct cfg_key *list, const struct config *a,
                      const struct config *b)
{
	size_t na = *(const size_t *)at(a, list->count_offset);
	size_t nb = *(const size_t *)at(b, list->count_offset);
	if (na != nb) {
		add(o, list->path);
		return;
	}
	const char *ea = *(const char *const *)at(a, list->offset);
	const char *eb = *(const char *const *)at(b, list->offset);
	char *parent = xasprintf("%s[]", list->path);
	for (size_t i = 0; i < na; i++)
		for (size_t k = 0; k < cfg_n_keys; k++) {
			const struct cfg_key *key = &cfg_keys[k];
			/* Children and the keys of sections inside an element
			 * (listeners[].backend.host). */
			size_t np = strlen(parent);
			if (strncmp(key->path, parent, np) != 0 || key->path[np] != '.' ||
			    same(key, ea + i * list->elem_size, eb + i * list->elem_size))
				continue;
			char *p = xasprintf("%s[%zu]%s", list->path, i, key->path + np);
			add(o, p);
			free(p);
		}
	free(parent);
}

char *cfg_diff(const struct config *a, const struct config *b)
{
	struct buf o;
	buf_init(&o, 1 << 20);
	for (size_t k = 0; k < cfg_n_keys; k++) {
		const struct cfg_key *key = &cfg_keys[k];
		if (key->scope != CFG_SCOPE_CONFIG)
			continue;
		if (key->type == CFG_TYPE_LIST)
			diff_list(&o, key, a, b);
		else if (!same(key, a, b))
			add(&o, key->path);
	}
	char *out = xstrndup(o.data != NULL ? o.data : "", o.len);
	buf_free(&o);
	return out;
}
