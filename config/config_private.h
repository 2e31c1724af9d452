#ifndef SEALMAIL_CONFIG_PRIVATE_H
#define SEALMAIL_CONFIG_PRIVATE_H
/*
 * The key table shared by the loader (config.c) and the reference generator
 * (config_keys.c). One entry per key; the loader is driven by it, so a key that is not in
 * the table is an unknown key and a key in the table is documented.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cfg_type {
	CFG_TYPE_SECTION,      /* a mapping of further keys */
	CFG_TYPE_LIST,         /* a sequence of mappings (listeners, routes) */
	CFG_TYPE_HOSTNAME,     /* a DNS name (char *) */
	CFG_TYPE_HOST,         /* a DNS name or a numeric address (char *) */
	CFG_TYPE_ADDRESS,      /* a numeric IPv4 or IPv6 address (char *) */
	CFG_TYPE_DOMAINS,      /* a sequence of domains, lower-cased (char **, size_t count) */
	CFG_TYPE_HOSTS,        /* a sequence of host names or addresses (char **, size_t count) */
	CFG_TYPE_ROUTE_DOMAIN, /* a domain, lower-cased, or "*" (char *) */
	CFG_TYPE_FILE,         /* a path to a file that must be readable (char *, absolute) */
	CFG_TYPE_DIR,          /* a path to a folder, not checked (char *, absolute) */
	CFG_TYPE_BOOL,         /* true or false (bool) */
	CFG_TYPE_UINT,         /* a whole number in [min, max] (unsigned) */
	CFG_TYPE_U64,          /* a whole number in [min, max] (uint64_t) */
	CFG_TYPE_PORT,         /* a whole number in [min, max] (uint16_t) */
	CFG_TYPE_ENUM,         /* one of values[] (an enum, stored as int) */
};

/* Which struct offset and count_offset point into. */
enum cfg_scope { CFG_SCOPE_CONFIG, CFG_SCOPE_LISTENER, CFG_SCOPE_ROUTE };

struct cfg_key {
	const char *path; /* "listeners[].port"; a list's children sit under "name[]." */
	enum cfg_type type;
	enum cfg_scope scope;
	size_t offset;       /* of the value in the scope's struct */
	size_t count_offset; /* lists and sequences: of the size_t count */
	/* Lists: the element and where its line goes. */
	size_t elem_size;
	size_t elem_line_offset;
	const char *const *values; /* enums: NULL-terminated, index = enum value */
	uint64_t min, max;         /* numbers */
	const char *def;     /* applied when the key is absent, exactly as if written in the file */
	const char *def_doc; /* documents a default that is computed (def is NULL then) */
	bool required;
	const char *doc;
};

extern const struct cfg_key cfg_keys[];
extern const size_t cfg_n_keys;

/* The entry for a table path such as "listeners[].port", or NULL. */
const struct cfg_key *cfg_key_find(const char *path);
/* The last component of a table path: "port" for "listeners[].port". */
const char *cfg_key_name(const struct cfg_key *key);
/* True when key sits directly under parent ("" for the top level, "listeners[]", "tls"). */
bool cfg_key_is_child(const struct cfg_key *key, const char *parent);

#endif
