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
	CFG_TYPE_SECTION,        /* a mapping of further keys */
	CFG_TYPE_LIST,           /* a sequence of mappings (listeners, routes) */
	CFG_TYPE_HOSTNAME,       /* a DNS name (char *) */
	CFG_TYPE_HOST,           /* a DNS name or a numeric address (char *) */
	CFG_TYPE_ADDRESS,        /* a numeric IPv4 or IPv6 address (char *) */
	CFG_TYPE_DOMAINS,        /* a sequence of domains, lower-cased (char **, size_t count) */
	CFG_TYPE_HOSTS,          /* a sequence of host names or addresses (char **, size_t count) */
	CFG_TYPE_DNS_SERVERS,    /* a sequence of cfg_dns_server_parse entries (char **, count) */
	CFG_TYPE_MAIL_ADDRESSES, /* a sequence of local@domain addresses, lower-cased (char **,
	                            count) */
	CFG_TYPE_ROUTE_DOMAIN,   /* a domain, lower-cased, or "*" (char *) */
	CFG_TYPE_FILE,           /* a path to a file that must be readable (char *, absolute) */
	CFG_TYPE_DIR,            /* a path to a folder, not checked (char *, absolute) */
	CFG_TYPE_BOOL,           /* true or false (bool) */
	CFG_TYPE_UINT,           /* a whole number in [min, max] (unsigned) */
	CFG_TYPE_U64,            /* a whole number in [min, max] (uint64_t) */
	CFG_TYPE_PORT,           /* a whole number in [min, max] (uint16_t) */
	CFG_TYPE_ENUM,           /* one of values[] (an enum, stored as int) */
	CFG_TYPE_NETS,           /* a sequence of numeric addresses or address/prefix (char **,
	                            count) */
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
/* What a value of key's type is, in words ("whole number", "one of"). */
const char *cfg_key_type_doc(const struct cfg_key *key);
/* True when key sits directly under parent ("" for the top level, "listeners[]", "tls"). */
bool cfg_key_is_child(const struct cfg_key *key, const char *parent);

/* ----- config_value.c: pure helpers of the loader ----- */

/* Bound of any text the module builds (error lines name a path, a key and a short value). */
#define CFG_TEXT_MAX (64 * 1024)
/* A configuration file is small; a huge one is a mistake (or an attack on --check). */
#define CFG_MAX_FILE_SIZE (1024 * 1024)
/* How much of a bad value an error line repeats. */
#define CFG_MAX_ECHO 64

struct cfg_addr {
	int family; /* AF_INET or AF_INET6 */
	unsigned char bytes[16];
};

/* Bytes from the file made safe for one error line: printable ASCII kept, the rest as \xNN,
 * at most CFG_MAX_ECHO bytes then "...". Returns a new string (caller frees). */
char *cfg_escape(const char *s, size_t len);
/* Removes empty and "." components in place; ".." stays, since folders may be symlinks. */
void cfg_path_normalize(char *p);
/* p if absolute, else dir/p; normalized; a new string. */
char *cfg_path_resolve(const char *dir, const char *p);
/* path against the current folder, normalized (symbolic links are not resolved). */
char *cfg_path_absolute(const char *path);
/* 0 when path opens for reading and is a regular file; else -errno and a reason (static). */
int cfg_file_check(const char *path, const char **reason_r);
/* Reads a whole regular file of at most CFG_MAX_FILE_SIZE bytes: 0 and *data_r (caller
 * frees, NUL-terminated) or -errno/-EFBIG and a reason (static). */
int cfg_read_file(const char *path, char **data_r, size_t *len_r, const char **reason_r);
/* Letters, digits and '-' in dot-separated labels of 1-63, at most 253 in all. */
bool cfg_is_dns_name(const char *s);
/* Numeric IPv4 or IPv6 (inet_pton). */
bool cfg_addr_parse(const char *s, struct cfg_addr *a);
bool cfg_addr_is_wildcard(const struct cfg_addr *a);
/* localhost, 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104. */
bool cfg_host_is_loopback(const char *host);
/* Same address (any spelling) or same name (any case). */
bool cfg_host_equal(const char *x, const char *y);
void cfg_lower(char *s);
/* Plain decimal digits: 0, or -EINVAL (not digits: sign, unit, hex, empty), -EDOM (a
 * leading zero, octal in YAML 1.1), -ERANGE (above UINT64_MAX). */
int cfg_parse_u64(const char *s, uint64_t *v_r);
/* Levenshtein distance, SIZE_MAX when either is longer than 32 bytes. */
size_t cfg_edit_distance(const char *a, const char *b);

#endif
