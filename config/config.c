/*
 * Loads the YAML file with libyaml's document API (so every node keeps its line), walks it
 * with the key table from config_keys.c, then checks what involves several keys. Every
 * problem is collected; the walk never stops at the first one, so `--check` shows them all.
 */
#include <arpa/inet.h> /* AF_INET */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "config/config.h"
#include "config/config_private.h"

/* Aliases can make a small file expand into very many errors: stop listing them here. */
#define CFG_MAX_ERRORS 100
#define CFG_MAX_KEYS   128 /* seen[] and set[] of walk_mapping are indexed by key */

struct key_line {
	char *key; /* display path, "listeners[2].port" */
	int line;
};

struct ctx {
	const char *path;
	const char *dir;
	yaml_document_t *doc;
	struct cfg_errors *errs;
	size_t n_errors; /* added by this load */
	struct config *cfg;
	struct key_line *lines;
	size_t n_lines;
	bool syntax_error;   /* nothing was walked: checks across keys would only mislead */
	bool no_file_checks; /* CFG_LOAD_NO_FILE_CHECKS */
};

static void errs_add(struct cfg_errors *errs, char *line)
{
	errs->lines = xreallocarray(errs->lines, errs->n + 1, sizeof(*errs->lines));
	errs->lines[errs->n++] = line;
}

static void err(struct ctx *c, int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void err(struct ctx *c, int line, const char *key, const char *fmt, ...)
{
	c->n_errors++;
	if (c->n_errors > CFG_MAX_ERRORS + 1)
		return;
	if (c->n_errors == CFG_MAX_ERRORS + 1) {
		errs_add(c->errs, xasprintf("%s:%d: (file): more than %d errors, stopped listing",
		                            c->path, line, CFG_MAX_ERRORS));
		return;
	}
	struct buf b;
	buf_init(&b, CFG_TEXT_MAX);
	buf_printf(&b, "%s:%d: %s: ", c->path, line, key);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	errs_add(c->errs, b.data != NULL ? b.data : xstrdup("(error line too long)"));
}

static void record_line(struct ctx *c, const char *key, int line)
{
	c->lines = xreallocarray(c->lines, c->n_lines + 1, sizeof(*c->lines));
	c->lines[c->n_lines].key = xstrdup(key);
	c->lines[c->n_lines].line = line;
	c->n_lines++;
}

/* The line a key was written on, or 0 when it was not written. */
static int line_of(const struct ctx *c, const char *key)
{
	for (size_t i = 0; i < c->n_lines; i++) {
		if (strcmp(c->lines[i].key, key) == 0)
			return c->lines[i].line;
	}
	return 0;
}

static int line_of_or(const struct ctx *c, const char *key, int fallback)
{
	int line = line_of(c, key);
	return line > 0 ? line : fallback;
}

static int node_line(const yaml_node_t *node)
{
	return (int)node->start_mark.line + 1;
}

static const char *node_kind(const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_SCALAR_NODE:
		return "a single value";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "nothing";
	}
}

static bool node_is_null(const yaml_node_t *node)
{
	if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *v = (const char *)node->data.scalar.value;
	return node->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	       strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static char *join(const char *prefix, const char *name)
{
	return prefix[0] == '\0' ? xstrdup(name) : xasprintf("%s.%s", prefix, name);
}

static void err_unknown(struct ctx *c, int line, const char *tpath, const char *dkey,
                        const char *name)
{
	const struct cfg_key *best = NULL;
	size_t best_d = 3;
	struct buf allowed;
	buf_init(&allowed, CFG_TEXT_MAX);
	buf_append(&allowed, "", 0);
	for (size_t i = 0; i < cfg_n_keys; i++) {
		if (!cfg_key_is_child(&cfg_keys[i], tpath))
			continue;
		const char *kn = cfg_key_name(&cfg_keys[i]);
		buf_printf(&allowed, "%s%s", allowed.len == 0 ? "" : ", ", kn);
		size_t d = cfg_edit_distance(name, kn);
		if (d < best_d) {
			best_d = d;
			best = &cfg_keys[i];
		}
	}
	if (best != NULL)
		err(c, line, dkey, "unknown key (did you mean '%s'?)", cfg_key_name(best));
	else
		err(c, line, dkey, "unknown key (allowed here: %s)", allowed.data);
	buf_free(&allowed);
}

static void *field(void *base, size_t offset)
{
	return (char *)base + offset;
}

static void set_string(void *base, size_t offset, char *value)
{
	char **p = field(base, offset);
	free(*p);
	*p = value;
}

static void walk_mapping(struct ctx *c, yaml_node_t *node, int parent_line, const char *tpath,
                         const char *dpath, void *base, bool report_missing);

/* A scalar, from the file or from the table's default text. */
static void set_scalar(struct ctx *c, const struct cfg_key *key, const char *text, size_t len,
                       bool plain, int line, const char *dkey, void *base)
{
	if (strlen(text) != len) {
		err(c, line, dkey, "contains a NUL byte");
		return;
	}
	char *shown = cfg_escape(text, len);
	uint64_t v = 0;
	int ret;
	struct cfg_addr a;
	switch (key->type) {
	case CFG_TYPE_HOSTNAME:
		if (!cfg_is_dns_name(text)) {
			err(c, line, dkey,
			    "'%s' is not a host name (letters, digits, '-' and '.'; use the "
			    "A-label "
			    "xn-- form for international names)",
			    shown);
			break;
		}
		set_string(base, key->offset, xstrdup(text));
		break;
	case CFG_TYPE_HOST:
		if (!cfg_is_dns_name(text) && !cfg_addr_parse(text, &a)) {
			err(c, line, dkey, "'%s' is neither a host name nor a numeric address",
			    shown);
			break;
		}
		set_string(base, key->offset, xstrdup(text));
		break;
	case CFG_TYPE_ADDRESS:
		if (!cfg_addr_parse(text, &a)) {
			err(c, line, dkey,
			    "'%s' is not a numeric IPv4 or IPv6 address (host names are not "
			    "accepted; 0.0.0.0 or :: means every address)",
			    shown);
			break;
		}
		set_string(base, key->offset, xstrdup(text));
		break;
	case CFG_TYPE_ROUTE_DOMAIN:
		if (strcmp(text, "*") != 0 && !cfg_is_dns_name(text)) {
			err(c, line, dkey, "'%s' is neither a domain nor \"*\"", shown);
			break;
		}
		set_string(base, key->offset, xstrdup(text));
		cfg_lower(*(char **)field(base, key->offset));
		break;
	case CFG_TYPE_FILE:
	case CFG_TYPE_DIR: {
		if (len == 0) {
			err(c, line, dkey, "the path is empty");
			break;
		}
		char *p = cfg_path_resolve(c->dir, text);
		const char *reason;
		if (key->type == CFG_TYPE_FILE && !c->no_file_checks &&
		    cfg_file_check(p, &reason) < 0) {
			char *ps = cfg_escape(p, strlen(p));
			err(c, line, dkey, "cannot read %s: %s", ps, reason);
			free(ps);
		}
		set_string(base, key->offset, p);
		break;
	}
	case CFG_TYPE_BOOL:
		if (!plain) {
			err(c, line, dkey, "expected true or false without quotes, got \"%s\"",
			    shown);
		} else if (strcmp(text, "true") == 0 || strcmp(text, "True") == 0 ||
		           strcmp(text, "TRUE") == 0) {
			*(bool *)field(base, key->offset) = true;
		} else if (strcmp(text, "false") == 0 || strcmp(text, "False") == 0 ||
		           strcmp(text, "FALSE") == 0) {
			*(bool *)field(base, key->offset) = false;
		} else {
			err(c, line, dkey, "expected true or false, got '%s'", shown);
		}
		break;
	case CFG_TYPE_UINT:
	case CFG_TYPE_U64:
	case CFG_TYPE_PORT:
		if (!plain) {
			err(c, line, dkey, "expected a whole number without quotes, got \"%s\"",
			    shown);
			break;
		}
		ret = cfg_parse_u64(text, &v);
		if (ret == -EDOM) {
			err(c, line, dkey,
			    "'%s' has a leading zero, which YAML 1.1 reads as octal: write it "
			    "without",
			    shown);
			break;
		}
		if (ret == -EINVAL) {
			err(c, line, dkey,
			    "expected a whole number (plain decimal digits, no units), got '%s'",
			    shown);
			break;
		}
		if (ret == -ERANGE || v < key->min || v > key->max) {
			err(c, line, dkey, "%s is out of range (%" PRIu64 "-%" PRIu64 ")", shown,
			    key->min, key->max);
			break;
		}
		if (key->type == CFG_TYPE_UINT)
			*(unsigned *)field(base, key->offset) = (unsigned)v;
		else if (key->type == CFG_TYPE_U64)
			*(uint64_t *)field(base, key->offset) = v;
		else
			*(uint16_t *)field(base, key->offset) = (uint16_t)v;
		break;
	case CFG_TYPE_ENUM: {
		size_t i;
		for (i = 0; key->values[i] != NULL; i++) {
			if (strcmp(key->values[i], text) == 0)
				break;
		}
		if (key->values[i] != NULL) {
			*(int *)field(base, key->offset) = (int)i;
			break;
		}
		if (strcmp(key->path, "listeners[].tls") == 0 && strcmp(text, "none") == 0) {
			err(c, line, dkey,
			    "'none' is not allowed: there is no plaintext service (use starttls: "
			    "a client can then do nothing but start TLS or leave)");
			break;
		}
		struct buf vals;
		buf_init(&vals, CFG_TEXT_MAX);
		for (i = 0; key->values[i] != NULL; i++)
			buf_printf(&vals, "%s%s", i == 0 ? "" : ", ", key->values[i]);
		err(c, line, dkey, "'%s' is not allowed (allowed: %s)", shown, vals.data);
		buf_free(&vals);
		break;
	}
	default:
		break;
	}
	free(shown);
}

/* local@domain: a local part of printable characters without spaces, '@' or quotes
 * (what the store's addresses are), and a domain name. */
static bool mail_address_ok(const char *text)
{
	const char *at = strrchr(text, '@');
	if (at == NULL || at == text || at - text > 64)
		return false;
	for (const char *p = text; p < at; p++)
		if (*p <= ' ' || *p >= 127 || *p == '@' || *p == '"' || *p == '\\')
			return false;
	return cfg_is_dns_name(at + 1);
}

/* domains, legacy_gateways, dns_servers, auth.admins: a list of single values. */
static void set_strings(struct ctx *c, const struct cfg_key *key, yaml_node_t *node,
                        const char *dkey, void *base)
{
	if (node->type != YAML_SEQUENCE_NODE) {
		err(c, node_line(node), dkey, "expected a list (for example [a, b]), got %s",
		    node_kind(node));
		return;
	}
	char ***items = field(base, key->offset);
	size_t *n = field(base, key->count_offset);
	for (yaml_node_item_t *it = node->data.sequence.items.start;
	     it < node->data.sequence.items.top; it++) {
		yaml_node_t *item = yaml_document_get_node(c->doc, *it);
		size_t idx = (size_t)(it - node->data.sequence.items.start);
		char *ikey = xasprintf("%s[%zu]", dkey, idx);
		int line = node_line(item);
		if (item->type != YAML_SCALAR_NODE) {
			err(c, line, ikey, "expected a single value, got %s", node_kind(item));
			free(ikey);
			continue;
		}
		const char *text = (const char *)item->data.scalar.value;
		char *shown = cfg_escape(text, item->data.scalar.length);
		bool domain = key->type == CFG_TYPE_DOMAINS;
		bool server = key->type == CFG_TYPE_DNS_SERVERS;
		bool mail = key->type == CFG_TYPE_MAIL_ADDRESSES;
		bool net = key->type == CFG_TYPE_NETS;
		struct cfg_addr a;
		struct cfg_dns_server ds;
		const char *why = NULL;
		if (strlen(text) != item->data.scalar.length) {
			err(c, line, ikey, "contains a NUL byte");
		} else if (server && cfg_dns_server_parse(text, &ds, &why) < 0) {
			err(c, line, ikey, "'%s' %s", shown, why);
		} else if (net && !cfg_net_valid(text)) {
			err(c, line, ikey,
			    "'%s' is not a numeric address or network (127.0.0.1, ::1, "
			    "10.0.0.0/8, fd00::/8)",
			    shown);
		} else if (mail && !mail_address_ok(text)) {
			err(c, line, ikey, "'%s' is not an e-mail address (give local@domain)",
			    shown);
		} else if (domain && !cfg_is_dns_name(text)) {
			err(c, line, ikey,
			    "'%s' is not a domain (letters, digits, '-' and '.'; use the A-label "
			    "xn-- form for international names)",
			    shown);
		} else if (!domain && !server && !mail && !net && !cfg_is_dns_name(text) &&
		           !cfg_addr_parse(text, &a)) {
			err(c, line, ikey, "'%s' is neither a host name nor a numeric address",
			    shown);
		} else {
			char *v = xstrdup(text);
			if (domain || mail)
				cfg_lower(v);
			size_t dup;
			for (dup = 0; dup < *n; dup++) {
				if (strcasecmp((*items)[dup], v) == 0)
					break;
			}
			if (dup < *n) {
				err(c, line, ikey, "'%s' is listed twice (also %s[%zu])", shown,
				    dkey, dup);
				free(v);
			} else {
				*items = xreallocarray(*items, *n + 1, sizeof(**items));
				(*items)[(*n)++] = v;
			}
		}
		free(shown);
		free(ikey);
	}
	if (*n == 0 && node->data.sequence.items.top == node->data.sequence.items.start &&
	    key->required)
		err(c, node_line(node), dkey, "the list is empty: at least one is needed");
}

/* listeners, relay.routes: a list of mappings. */
static void set_list(struct ctx *c, const struct cfg_key *key, yaml_node_t *node, const char *dkey,
                     void *base)
{
	if (node->type != YAML_SEQUENCE_NODE) {
		err(c, node_line(node), dkey, "expected a list of mappings, got %s",
		    node_kind(node));
		return;
	}
	size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
	if (n == 0) {
		if (key->required)
			err(c, node_line(node), dkey, "the list is empty: at least one is needed");
		return;
	}
	char *elems = xcalloc(n, key->elem_size);
	*(void **)field(base, key->offset) = elems;
	*(size_t *)field(base, key->count_offset) = n;
	char *tpath = xasprintf("%s[]", key->path);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item =
		    yaml_document_get_node(c->doc, node->data.sequence.items.start[i]);
		char *ikey = xasprintf("%s[%zu]", dkey, i);
		void *elem = elems + i * key->elem_size;
		*(int *)field(elem, key->elem_line_offset) = node_line(item);
		if (item->type != YAML_MAPPING_NODE)
			err(c, node_line(item), ikey, "expected a mapping, got %s",
			    node_kind(item));
		else
			walk_mapping(c, item, node_line(item), tpath, ikey, elem, true);
		free(ikey);
	}
	free(tpath);
}

static void set_value(struct ctx *c, const struct cfg_key *key, yaml_node_t *node, const char *dkey,
                      void *base)
{
	switch (key->type) {
	case CFG_TYPE_SECTION:
		if (node->type != YAML_MAPPING_NODE) {
			err(c, node_line(node), dkey, "expected a mapping of keys, got %s",
			    node_kind(node));
			walk_mapping(c, NULL, node_line(node), key->path, dkey, base, false);
			return;
		}
		walk_mapping(c, node, node_line(node), key->path, dkey, base, true);
		return;
	case CFG_TYPE_LIST:
		set_list(c, key, node, dkey, base);
		return;
	case CFG_TYPE_DOMAINS:
	case CFG_TYPE_HOSTS:
	case CFG_TYPE_DNS_SERVERS:
	case CFG_TYPE_MAIL_ADDRESSES:
	case CFG_TYPE_NETS:
		set_strings(c, key, node, dkey, base);
		return;
	default:
		break;
	}
	if (node->type != YAML_SCALAR_NODE) {
		err(c, node_line(node), dkey, "expected a single value, got %s", node_kind(node));
		return;
	}
	set_scalar(c, key, (const char *)node->data.scalar.value, node->data.scalar.length,
	           node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE, node_line(node), dkey, base);
}

static void err_missing(struct ctx *c, const struct cfg_key *key, int line, const char *dkey)
{
	if (strcmp(key->path, "listeners[].tls") == 0)
		err(c, line, dkey,
		    "missing: say implicit or starttls (there is no plaintext service)");
	else if (key->type == CFG_TYPE_LIST || key->type == CFG_TYPE_DOMAINS)
		err(c, line, dkey, "missing: at least one is needed");
	else
		err(c, line, dkey, "missing");
}

/*
 * Walks one mapping (node may be NULL: the section is absent, only defaults apply).
 * tpath is the table path of the mapping ("" top level, "tls", "listeners[]"); dpath the
 * same as shown in errors ("listeners[2]").
 */
static void walk_mapping(struct ctx *c, yaml_node_t *node, int parent_line, const char *tpath,
                         const char *dpath, void *base, bool report_missing)
{
	int seen[CFG_MAX_KEYS] = {0};
	bool set[CFG_MAX_KEYS] = {false};
	/* The table outgrowing the arrays wrote past them (the encryption keys found it). */
	assert(cfg_n_keys <= CFG_MAX_KEYS);

	if (node != NULL) {
		for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
		     pair < node->data.mapping.pairs.top; pair++) {
			yaml_node_t *k = yaml_document_get_node(c->doc, pair->key);
			yaml_node_t *v = yaml_document_get_node(c->doc, pair->value);
			int line = node_line(k);
			if (k->type != YAML_SCALAR_NODE) {
				err(c, line, dpath[0] != '\0' ? dpath : "(top level)",
				    "a key must be a single word, got %s", node_kind(k));
				continue;
			}
			const char *name = (const char *)k->data.scalar.value;
			char *shown = cfg_escape(name, k->data.scalar.length);
			char *dkey = join(dpath, shown);
			char *tkey = join(tpath, name);
			const struct cfg_key *key = NULL;
			if (strlen(name) == k->data.scalar.length && strpbrk(name, ".[]") == NULL)
				key = cfg_key_find(tkey);
			if (key == NULL) {
				err_unknown(c, line, tpath, dkey, shown);
			} else {
				size_t idx = (size_t)(key - cfg_keys);
				if (seen[idx] > 0) {
					err(c, line, dkey, "written twice (first on line %d)",
					    seen[idx]);
				} else {
					seen[idx] = line;
					record_line(c, dkey, line);
					if (!node_is_null(v)) {
						set[idx] = true;
						set_value(c, key, v, dkey, base);
					}
				}
			}
			free(tkey);
			free(dkey);
			free(shown);
		}
	}

	for (size_t i = 0; i < cfg_n_keys; i++) {
		const struct cfg_key *key = &cfg_keys[i];
		if (set[i] || !cfg_key_is_child(key, tpath))
			continue;
		int line = seen[i] > 0 ? seen[i] : node != NULL ? node_line(node) : parent_line;
		char *dkey = join(dpath, cfg_key_name(key));
		if (key->required && report_missing)
			err_missing(c, key, line, dkey);
		else if (key->type == CFG_TYPE_SECTION)
			walk_mapping(c, NULL, line, key->path, dkey, base, false);
		else if (key->def != NULL)
			set_scalar(c, key, key->def, strlen(key->def), true, line, dkey, base);
		free(dkey);
	}
}

/* ----- checks across keys ----- */

/* An error on item i of a list, at the line of its key when written, else of the item. */
static void err_item(struct ctx *c, const char *list, size_t i, const char *name, int item_line,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void err_item(struct ctx *c, const char *list, size_t i, const char *name, int item_line,
                     const char *fmt, ...)
{
	char *key = xasprintf("%s[%zu].%s", list, i, name);
	struct buf b;
	buf_init(&b, CFG_TEXT_MAX);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	err(c, line_of_or(c, key, item_line), key, "%s", b.data);
	buf_free(&b);
	free(key);
}

/* A gateway listener needs a backend it may send plaintext to; its keys mean nothing on
 * other listeners. */
static void check_gateway(struct ctx *c, size_t i, const struct cfg_listener *l)
{
	const struct cfg_relay *r = &c->cfg->relay;
	char *bkey = xasprintf("listeners[%zu].backend", i);
	int bline = line_of(c, bkey);
	if (l->protocol != CFG_PROTO_GATEWAY) {
		if (bline > 0)
			err(c, bline, bkey,
			    "only gateway listeners take a backend; this is a %s "
			    "listener",
			    cfg_protocol_name(l->protocol));
		if (l->speaks != CFG_SPEAKS_NONE)
			err_item(c, "listeners", i, "speaks", l->line,
			         "only gateway listeners take speaks; this is a %s listener",
			         cfg_protocol_name(l->protocol));
		if (l->proxy_protocol != CFG_PROXY_NONE)
			err_item(
			    c, "listeners", i, "proxy_protocol", l->line,
			    "only gateway listeners take proxy_protocol; this is a %s listener",
			    cfg_protocol_name(l->protocol));
		free(bkey);
		return;
	}
	if (bline == 0)
		err_item(c, "listeners", i, "backend", l->line,
		         "missing: a gateway needs the server it passes the stream to, as "
		         "backend: { host: 127.0.0.1, port: 143 }");
	char *hkey = xasprintf("%s.host", bkey), *pkey = xasprintf("%s.port", bkey);
	if (bline > 0 && l->backend_host == NULL && line_of(c, hkey) == 0)
		err_item(c, "listeners", i, "backend.host", bline, "missing");
	if (bline > 0 && l->backend_port == 0 && line_of(c, pkey) == 0)
		err_item(c, "listeners", i, "backend.port", bline, "missing");
	free(hkey);
	free(pkey);
	if (l->backend_host != NULL && !cfg_host_is_loopback(l->backend_host)) {
		bool listed = false;
		for (size_t j = 0; j < r->n_legacy_gateways && !listed; j++)
			listed = cfg_host_equal(l->backend_host, r->legacy_gateways[j]);
		if (!listed) {
			char *h = cfg_escape(l->backend_host, strlen(l->backend_host));
			err_item(c, "listeners", i, "backend.host", bline,
			         "the gateway passes the stream on in plaintext, allowed only to "
			         "loopback (127.0.0.0/8, ::1, localhost) or a host in "
			         "relay.legacy_gateways, and %s is neither",
			         h);
			free(h);
		}
	}
	if (l->tls == CFG_TLS_STARTTLS && l->speaks == CFG_SPEAKS_NONE)
		err_item(c, "listeners", i, "speaks", l->line,
		         "tls: starttls needs speaks: smtp, imap or pop3 (the gateway answers the "
		         "STARTTLS exchange of that protocol itself)");
	if (l->certificate_login != CFG_CERT_LOGIN_NONE)
		err_item(c, "listeners", i, "certificate_login", l->line,
		         "gateway listeners log nobody in (the backend does): leave "
		         "certificate_login out");
	free(bkey);
}

static void check_listeners(struct ctx *c)
{
	struct config *cfg = c->cfg;
	/* A written but unreadable client_ca already has its error: do not add a second. */
	bool client_ca_written = line_of(c, "tls.client_ca") > 0;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct cfg_listener *l = &cfg->listeners[i];
		if (l->client_certificate != CFG_CLIENT_CERT_NONE && cfg->tls.client_ca == NULL &&
		    !client_ca_written)
			err_item(c, "listeners", i, "client_certificate", l->line,
			         "%s needs tls.client_ca (the CA that signs client certificates)",
			         l->client_certificate == CFG_CLIENT_CERT_OPTIONAL ? "optional"
			                                                           : "required");
		if (l->certificate_login == CFG_CERT_LOGIN_PREAUTH &&
		    l->client_certificate == CFG_CLIENT_CERT_NONE)
			err_item(c, "listeners", i, "certificate_login", l->line,
			         "preauth needs client_certificate: optional or required (this "
			         "listener never asks for a certificate)");
		/* HTTP has no STARTTLS (RFC 2817's Upgrade is not what clients do), and
		 * nothing logs in over it. */
		if (l->protocol == CFG_PROTO_HTTPS && l->tls == CFG_TLS_STARTTLS)
			err_item(c, "listeners", i, "tls", l->line,
			         "https listeners are implicit TLS only (HTTP has no STARTTLS): "
			         "say tls: implicit");
		if (l->protocol == CFG_PROTO_HTTPS && l->certificate_login != CFG_CERT_LOGIN_NONE)
			err_item(c, "listeners", i, "certificate_login", l->line,
			         "https listeners log nobody in: leave certificate_login out");
		if (l->n_peers > 0 && l->protocol != CFG_PROTO_SMTP)
			err_item(c, "listeners", i, "peers", l->line,
			         "only smtp listeners take peers (organisation servers); this is a "
			         "%s listener",
			         cfg_protocol_name(l->protocol));
		else if (l->n_peers > 0 && l->client_certificate == CFG_CLIENT_CERT_NONE)
			err_item(
			    c, "listeners", i, "peers", l->line,
			    "needs client_certificate: optional or required (peers are known by "
			    "their certificates, and this listener never asks for one)");
		check_gateway(c, i, l);
		if (l->address == NULL || l->port == 0)
			continue;
		struct cfg_addr a;
		if (!cfg_addr_parse(l->address, &a))
			continue;
		for (size_t j = 0; j < i; j++) {
			struct cfg_listener *o = &cfg->listeners[j];
			struct cfg_addr b;
			if (o->address == NULL || o->port != l->port ||
			    !cfg_addr_parse(o->address, &b) || a.family != b.family)
				continue;
			if (memcmp(a.bytes, b.bytes, 16) != 0 && !cfg_addr_is_wildcard(&a) &&
			    !cfg_addr_is_wildcard(&b))
				continue;
			char *ea = cfg_escape(l->address, strlen(l->address));
			err_item(c, "listeners", i, "port", l->line,
			         "%s%s%s:%u is already used by listeners[%zu] (line %d)",
			         a.family == AF_INET6 ? "[" : "", ea,
			         a.family == AF_INET6 ? "]" : "", l->port, j, o->line);
			free(ea);
			break;
		}
	}
	if (cfg->auth.require_client_certificate) {
		int line = line_of_or(c, "auth.require_client_certificate", 1);
		bool any = false;
		for (size_t i = 0; i < cfg->n_listeners; i++)
			any = any || cfg->listeners[i].client_certificate != CFG_CLIENT_CERT_NONE;
		if (cfg->tls.client_ca == NULL && !client_ca_written)
			err(c, line, "auth.require_client_certificate",
			    "true needs tls.client_ca (the CA that signs client certificates)");
		if (!any && cfg->n_listeners > 0)
			err(c, line, "auth.require_client_certificate",
			    "true, but no listener asks for a certificate (client_certificate: "
			    "optional or required), so nobody could log in");
	}
}

static void check_relay(struct ctx *c)
{
	struct cfg_relay *r = &c->cfg->relay;
	int cert_line = line_of(c, "relay.certificate"), key_line = line_of(c, "relay.key");
	if (cert_line > 0 && key_line == 0)
		err(c, cert_line, "relay.certificate", "needs relay.key (its private key)");
	if (key_line > 0 && cert_line == 0)
		err(c, key_line, "relay.key", "needs relay.certificate (the key's certificate)");
	/* 0 is below every minimum: the value had an error of its own. */
	if (r->retry_max != 0 && r->retry_max < r->retry_initial)
		err(c, line_of_or(c, "relay.retry_max", line_of_or(c, "relay.retry_initial", 1)),
		    "relay.retry_max", "%u is less than relay.retry_initial (%u)", r->retry_max,
		    r->retry_initial);

	for (size_t i = 0; i < r->n_routes; i++) {
		struct cfg_route *rt = &r->routes[i];
		if (rt->tls == CFG_ROUTE_TLS_NONE && rt->host != NULL &&
		    !cfg_host_is_loopback(rt->host)) {
			bool listed = false;
			for (size_t j = 0; j < r->n_legacy_gateways && !listed; j++)
				listed = cfg_host_equal(rt->host, r->legacy_gateways[j]);
			if (!listed) {
				char *h = cfg_escape(rt->host, strlen(rt->host));
				err_item(c, "relay.routes", i, "tls", rt->line,
				         "none sends mail in plaintext, allowed only to loopback "
				         "(127.0.0.0/8, ::1, localhost) or a host in "
				         "relay.legacy_gateways, and %s is neither",
				         h);
				free(h);
			}
		}
		if (rt->ca != NULL && rt->tls != CFG_ROUTE_TLS_VERIFY)
			err_item(c, "relay.routes", i, "ca", rt->line,
			         "is only used with tls: verify (this route does not check the "
			         "peer's certificate)");
		if (rt->domain == NULL)
			continue;
		for (size_t j = 0; j < i; j++) {
			if (r->routes[j].domain != NULL &&
			    strcmp(r->routes[j].domain, rt->domain) == 0) {
				err_item(
				    c, "relay.routes", i, "domain", rt->line,
				    "'%s' is already routed by relay.routes[%zu] (line %d), so "
				    "this route is never used",
				    rt->domain, j, r->routes[j].line);
				break;
			}
		}
	}
}

static void check_limits(struct ctx *c)
{
	struct cfg_limits *l = &c->cfg->limits;
	l->connections_line = line_of_or(c, "limits.connections", line_of_or(c, "limits", 1));
	if (l->line_length != 0 && l->line_length_preauth > l->line_length)
		err(c,
		    line_of_or(c, "limits.line_length_preauth",
		               line_of_or(c, "limits.line_length", 1)),
		    "limits.line_length_preauth", "%u is more than limits.line_length (%u)",
		    l->line_length_preauth, l->line_length);
}

static bool path_within(const char *path, const char *dir);

/* The key of the store must not travel with a copy of data_dir, nor be readable by others. */
static void check_encryption(struct ctx *c)
{
	const char *kf = c->cfg->encryption.key_file;
	if (kf != NULL && c->cfg->encryption.credential != NULL)
		err(c, line_of_or(c, "encryption.credential", 1), "encryption.credential",
		    "set either encryption.key_file or encryption.credential, not both");
	if (kf == NULL)
		return;
	int line = line_of_or(c, "encryption.key_file", 1);
	if (c->cfg->data_dir != NULL && path_within(kf, c->cfg->data_dir)) {
		err(c, line, "encryption.key_file",
		    "%s is inside data_dir (%s): a copy or backup of data_dir would carry its own "
		    "key; keep it elsewhere, for example /etc/sealmail/store.kek",
		    kf, c->cfg->data_dir);
		return;
	}
	struct stat st;
	if (!c->no_file_checks && stat(kf, &st) == 0 && (st.st_mode & 077) != 0)
		err(c, line, "encryption.key_file",
		    "%s may be read by group or others (mode %04o): chmod 0400 it", kf,
		    (unsigned)(st.st_mode & 07777));
}

static void check(struct ctx *c)
{
	check_listeners(c);
	check_encryption(c);
	check_relay(c);
	check_limits(c);
	if (c->cfg->hostname == NULL && line_of(c, "hostname") == 0) {
		char name[HOST_NAME_MAX + 1] = {0};
		if (gethostname(name, sizeof(name) - 1) < 0 || !cfg_is_dns_name(name))
			err(c, 1, "hostname",
			    "missing, and the machine's host name '%s' cannot be used: write it",
			    name);
		else
			c->cfg->hostname = xstrdup(name);
	}
}

/* ----- loading ----- */

static void err_syntax(struct ctx *c, const yaml_parser_t *parser)
{
	int line = (int)parser->problem_mark.line + 1;
	const char *problem = parser->problem != NULL ? parser->problem : "unreadable YAML";
	c->syntax_error = true;
	if (parser->error == YAML_READER_ERROR)
		err(c, line, "(syntax)", "%s (at byte %zu)", problem, parser->problem_offset);
	else if (parser->context != NULL)
		err(c, line, "(syntax)", "%s %s started on line %d", problem, parser->context,
		    (int)parser->context_mark.line + 1);
	else
		err(c, line, "(syntax)", "%s", problem);
}

static void parse(struct ctx *c, const char *data, size_t len)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	if (yaml_parser_initialize(&parser) == 0) {
		err(c, 1, "(file)", "cannot start the YAML parser");
		return;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	if (yaml_parser_load(&parser, &doc) == 0) {
		err_syntax(c, &parser);
		yaml_parser_delete(&parser);
		return;
	}
	c->doc = &doc;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (root != NULL && node_is_null(root))
		root = NULL;
	if (root != NULL && root->type != YAML_MAPPING_NODE)
		err(c, node_line(root), "(file)", "expected a mapping of keys at the top, got %s",
		    node_kind(root));
	else
		walk_mapping(c, root, 1, "", "", c->cfg, true);

	yaml_document_t next;
	if (yaml_parser_load(&parser, &next) == 0) {
		err_syntax(c, &parser);
	} else {
		yaml_node_t *extra = yaml_document_get_root_node(&next);
		if (extra != NULL)
			err(c, node_line(extra), "(file)",
			    "a second YAML document: the configuration is one document");
		yaml_document_delete(&next);
	}
	c->doc = NULL;
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
}

int cfg_load(const char *path, struct config **cfg_r, struct cfg_errors *errs)
{
	return cfg_load_flags(path, 0, cfg_r, errs);
}

int cfg_load_flags(const char *path, unsigned flags, struct config **cfg_r, struct cfg_errors *errs)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	cfg->path = cfg_path_absolute(path);
	char *slash = strrchr(cfg->path, '/');
	cfg->dir =
	    slash == cfg->path ? xstrdup("/") : xstrndup(cfg->path, (size_t)(slash - cfg->path));
	struct ctx c = {.path = cfg->path,
	                .dir = cfg->dir,
	                .errs = errs,
	                .cfg = cfg,
	                .no_file_checks = (flags & CFG_LOAD_NO_FILE_CHECKS) != 0};
	int ret = 0;
	char *data = NULL;
	size_t len = 0;
	const char *reason = NULL;

	*cfg_r = NULL;
	ret = cfg_read_file(cfg->path, &data, &len, &reason);
	if (ret < 0) {
		err(&c, 1, "(file)", "cannot read: %s", reason);
		goto out;
	}
	parse(&c, data, len);
	if (!c.syntax_error)
		check(&c);
	ret = c.n_errors > 0 ? -EINVAL : 0;
out:
	free(data);
	for (size_t i = 0; i < c.n_lines; i++)
		free(c.lines[i].key);
	free(c.lines);
	if (ret < 0)
		cfg_free(cfg);
	else
		*cfg_r = cfg;
	return ret;
}

void cfg_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->dir);
	free(cfg->hostname);
	for (size_t i = 0; i < cfg->n_domains; i++)
		free(cfg->domains[i]);
	free(cfg->domains);
	for (size_t i = 0; i < cfg->auth.n_admins; i++)
		free(cfg->auth.admins[i]);
	free(cfg->auth.admins);
	for (size_t i = 0; i < cfg->metrics.n_allow_from; i++)
		free(cfg->metrics.allow_from[i]);
	free(cfg->metrics.allow_from);
	for (size_t i = 0; i < cfg->metrics.n_allow_certificates; i++)
		free(cfg->metrics.allow_certificates[i]);
	free(cfg->metrics.allow_certificates);
	free(cfg->data_dir);
	free(cfg->encryption.key_file);
	free(cfg->encryption.credential);
	free(cfg->ca_dir);
	free(cfg->tls.certificate);
	free(cfg->tls.key);
	free(cfg->tls.client_ca);
	free(cfg->tls.crl);
	free(cfg->tls.peer_ca);
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct cfg_listener *l = &cfg->listeners[i];
		free(l->address);
		for (size_t k = 0; k < l->n_peers; k++)
			free(l->peers[k]);
		free(l->peers);
		free(l->backend_host);
	}
	free(cfg->listeners);
	free(cfg->relay.certificate);
	free(cfg->relay.key);
	for (size_t i = 0; i < cfg->relay.n_routes; i++) {
		free(cfg->relay.routes[i].domain);
		free(cfg->relay.routes[i].host);
		free(cfg->relay.routes[i].ca);
	}
	free(cfg->relay.routes);
	for (size_t i = 0; i < cfg->relay.n_legacy_gateways; i++)
		free(cfg->relay.legacy_gateways[i]);
	free(cfg->relay.legacy_gateways);
	for (size_t i = 0; i < cfg->relay.n_dns_servers; i++)
		free(cfg->relay.dns_servers[i]);
	free(cfg->relay.dns_servers);
	free(cfg->relay.mx_ca);
	free(cfg);
}

bool cfg_listener_without_peers(const struct config *cfg, const struct cfg_listener *l)
{
	return l->protocol == CFG_PROTO_SMTP && l->n_peers == 0 && cfg->tls.peer_ca == NULL;
}

/* True when path is dir or lies below it (both absolute and normalized). */
static bool path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

char *cfg_ca_dir(const struct config *cfg, char **warning_r)
{
	char *dir;
	*warning_r = NULL;
	if (cfg->ca_dir != NULL) {
		dir = xstrdup(cfg->ca_dir);
	} else {
		char *old = xasprintf("%s/ca", cfg->data_dir);
		char *old_key = xasprintf("%s/ca.key", old);
		if (access(old_key, F_OK) == 0) {
			dir = old;
		} else {
			free(old);
			dir = xstrdup(CFG_CA_DIR_DEFAULT);
		}
		free(old_key);
	}
	if (path_within(dir, cfg->data_dir))
		*warning_r = xasprintf(
		    "warning: the client CA's key is in %s, inside data_dir, where sealmaild can "
		    "read it: move it out with 'mkdir -m 0700 %s && cp %s/ca.crt %s/ && mv "
		    "%s/ca.key %s/' and set 'ca_dir: %s' in %s (tls.client_ca and tls.crl can "
		    "stay)",
		    dir, CFG_CA_DIR_DEFAULT, dir, CFG_CA_DIR_DEFAULT, dir, CFG_CA_DIR_DEFAULT,
		    CFG_CA_DIR_DEFAULT, cfg->path);
	return dir;
}

void cfg_errors_free(struct cfg_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		free(errs->lines[i]);
	free(errs->lines);
	errs->lines = NULL;
	errs->n = 0;
}

void cfg_errors_print(const struct cfg_errors *errs, FILE *fp)
{
	for (size_t i = 0; i < errs->n; i++)
		fprintf(fp, "%s\n", errs->lines[i]);
}

/* A trailing dot (an absolute DNS name) is the same domain. */
static size_t domain_len(const char *domain, size_t len)
{
	return len > 0 && domain[len - 1] == '.' ? len - 1 : len;
}

bool cfg_is_local_domain(const struct config *cfg, const char *domain, size_t len)
{
	len = domain_len(domain, len);
	for (size_t i = 0; i < cfg->n_domains; i++) {
		if (strlen(cfg->domains[i]) == len &&
		    strncasecmp(cfg->domains[i], domain, len) == 0)
			return true;
	}
	return false;
}

bool cfg_is_admin(const struct config *cfg, const char *address)
{
	for (size_t i = 0; address != NULL && i < cfg->auth.n_admins; i++)
		if (strcasecmp(cfg->auth.admins[i], address) == 0)
			return true;
	return false;
}

const struct cfg_route *cfg_route_find(const struct config *cfg, const char *domain, size_t len)
{
	const struct cfg_route *any = NULL;
	len = domain_len(domain, len);
	for (size_t i = 0; i < cfg->relay.n_routes; i++) {
		const struct cfg_route *r = &cfg->relay.routes[i];
		if (strcmp(r->domain, "*") == 0) {
			if (any == NULL)
				any = r;
		} else if (strlen(r->domain) == len && strncasecmp(r->domain, domain, len) == 0) {
			return r;
		}
	}
	return any;
}

bool cfg_metrics_allowed(const struct config *cfg, const char *ip, const char *cert_identity)
{
	for (size_t i = 0; cert_identity != NULL && i < cfg->metrics.n_allow_certificates; i++)
		if (strcasecmp(cfg->metrics.allow_certificates[i], cert_identity) == 0)
			return true;
	if (cfg->metrics.n_allow_from == 0)
		return ip != NULL && (cfg_net_match("127.0.0.0/8", ip) || cfg_net_match("::1", ip));
	for (size_t i = 0; ip != NULL && i < cfg->metrics.n_allow_from; i++)
		if (cfg_net_match(cfg->metrics.allow_from[i], ip))
			return true;
	return false;
}
