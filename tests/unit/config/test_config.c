/*
 * config/: the example in docs/design.md loads, defaults apply, every error names file:line: key,
 * and no prefix or mutation of a valid file crashes or leaks.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "config/config.h"
#include "config/config_private.h"

static char dir[PATH_MAX];
static char cfg_path[PATH_MAX + 32];

static void write_file(const char *rel, const char *data, size_t len)
{
	char *p = xasprintf("%s/%s", dir, rel);
	FILE *fp = fopen(p, "wb");
	cr_assert_not_null(fp, "cannot write %s", p);
	cr_assert_eq(fwrite(data, 1, len, fp), len);
	fclose(fp);
	free(p);
}

static void mkdir_rel(const char *rel)
{
	char *p = xasprintf("%s/%s", dir, rel);
	cr_assert_eq(mkdir(p, 0700), 0);
	free(p);
}

static void setup(void)
{
	char tmpl[] = "/tmp/sealmail-config-XXXXXX";
	cr_assert_not_null(mkdtemp(tmpl));
	/* The loader does not resolve symbolic links; compare against the real folder. */
	cr_assert_not_null(realpath(tmpl, dir));
	snprintf(cfg_path, sizeof(cfg_path), "%s/sealmail.yaml", dir);
	mkdir_rel("certs");
	mkdir_rel("data");
	mkdir_rel("data/ca");
	const char *files[] = {"certs/server.crt", "certs/server.key",     "certs/relay.crt",
	                       "certs/relay.key",  "certs/partner-ca.crt", "data/ca/ca.crt",
	                       "data/ca/crl.pem"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		write_file(files[i], "-----BEGIN X-----\n", 18);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void teardown(void)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(config, .init = setup, .fini = teardown);

static int load_text(const char *text, size_t len, struct config **cfg_r, struct cfg_errors *errs)
{
	write_file("sealmail.yaml", text, len);
	return cfg_load(cfg_path, cfg_r, errs);
}

static int load(const char *text, struct config **cfg_r, struct cfg_errors *errs)
{
	return load_text(text, strlen(text), cfg_r, errs);
}

static char *errors_joined(const struct cfg_errors *errs)
{
	size_t n = 1;
	for (size_t i = 0; i < errs->n; i++)
		n += strlen(errs->lines[i]) + 1;
	char *s = xmalloc(n), *at = s;
	for (size_t i = 0; i < errs->n; i++) {
		size_t len = strlen(errs->lines[i]);
		memcpy(at, errs->lines[i], len);
		at[len] = '\n';
		at += len + 1;
	}
	*at = '\0';
	return s;
}

/* The index of the error line "<file>:<line>: <key>: ...<what>...", or -1. */
static int find_error(const struct cfg_errors *errs, int line, const char *key, const char *what)
{
	char *prefix = xasprintf("%s:%d: %s: ", cfg_path, line, key);
	int found = -1;
	for (size_t i = 0; i < errs->n && found < 0; i++) {
		if (strncmp(errs->lines[i], prefix, strlen(prefix)) == 0 &&
		    strstr(errs->lines[i] + strlen(prefix), what) != NULL)
			found = (int)i;
	}
	free(prefix);
	return found;
}

/* ----- the example in docs/design.md ----- */

static const char design_example[] =
    "hostname: mail.corp.example\n"
    "domains: [corp.example]               # mail for these is delivered into the store\n"
    "data_dir: data                        # mail.db, spool, ca/ live here\n"
    "tls:\n"
    "  certificate: certs/server.crt       # PEM, full chain\n"
    "  key: certs/server.key\n"
    "  client_ca: data/ca/ca.crt           # who may sign client certificates\n"
    "  crl: data/ca/crl.pem                # optional; reloaded on SIGHUP\n"
    "  min_version: \"1.2\"                  # \"1.2\" or \"1.3\"\n"
    "listeners:\n"
    "  - { protocol: submission, address: 127.0.0.1, port: 465, tls: implicit,  "
    "client_certificate: optional }\n"
    "  - { protocol: submission, address: 127.0.0.1, port: 587, tls: starttls,  "
    "client_certificate: optional }\n"
    "  - { protocol: imap,       address: 127.0.0.1, port: 993, tls: implicit,  "
    "client_certificate: required, certificate_login: preauth }\n"
    "  - { protocol: imap,       address: 127.0.0.1, port: 143, tls: starttls }\n"
    "  - { protocol: pop3,       address: 127.0.0.1, port: 995, tls: implicit }\n"
    "  - { protocol: pop3,       address: 127.0.0.1, port: 110, tls: starttls }\n"
    "  - { protocol: smtp,       address: 127.0.0.1, port: 25,  tls: starttls,  "
    "client_certificate: required }  # peer servers\n"
    "auth:\n"
    "  require_client_certificate: false   # true: every user needs certificate AND password\n"
    "relay:\n"
    "  certificate: certs/relay.crt        # presented to peer servers (mutual TLS)\n"
    "  key: certs/relay.key\n"
    "  routes:                             # first match by recipient domain; else MX lookup\n"
    "    - { domain: partner.example, host: mx.partner.example, port: 25, tls: verify, ca: "
    "certs/partner-ca.crt }\n"
    "    - { domain: legacy.corp.example, host: 127.0.0.1, port: 2525, tls: none }   # "
    "gateway to a legacy server on this host\n"
    "    - { domain: \"*\", host: smarthost.corp.example, port: 587, tls: verify }\n"
    "limits: { message_size: 52428800, recipients: 100, connections: 10000 }\n";

static void assert_path(const char *got, const char *rel)
{
	char *want = xasprintf("%s/%s", dir, rel);
	cr_assert_not_null(got, "%s is not set", rel);
	cr_assert_str_eq(got, want);
	free(want);
}

Test(config, design_example_loads)
{
	struct config *cfg;
	struct cfg_errors errs = {0};
	int ret = load(design_example, &cfg, &errs);
	char *all = errors_joined(&errs);
	cr_assert_eq(ret, 0, "errors:\n%s", all);
	free(all);
	cr_assert_eq(errs.n, 0);

	cr_assert_str_eq(cfg->path, cfg_path);
	cr_assert_str_eq(cfg->dir, dir);
	cr_assert_str_eq(cfg->hostname, "mail.corp.example");
	cr_assert_eq(cfg->n_domains, 1);
	cr_assert_str_eq(cfg->domains[0], "corp.example");
	assert_path(cfg->data_dir, "data");
	assert_path(cfg->tls.certificate, "certs/server.crt");
	assert_path(cfg->tls.key, "certs/server.key");
	assert_path(cfg->tls.client_ca, "data/ca/ca.crt");
	assert_path(cfg->tls.crl, "data/ca/crl.pem");
	cr_assert_eq(cfg->tls.min_version, CFG_TLS_1_2);

	cr_assert_eq(cfg->n_listeners, 7);
	struct {
		enum cfg_protocol proto;
		uint16_t port;
		enum cfg_tls_mode tls;
		enum cfg_client_cert cc;
		enum cfg_cert_login login;
	} want[] = {
	    {CFG_PROTO_SUBMISSION, 465, CFG_TLS_IMPLICIT, CFG_CLIENT_CERT_OPTIONAL, 0},
	    {CFG_PROTO_SUBMISSION, 587, CFG_TLS_STARTTLS, CFG_CLIENT_CERT_OPTIONAL, 0},
	    {CFG_PROTO_IMAP, 993, CFG_TLS_IMPLICIT, CFG_CLIENT_CERT_REQUIRED,
	     CFG_CERT_LOGIN_PREAUTH},
	    {CFG_PROTO_IMAP, 143, CFG_TLS_STARTTLS, CFG_CLIENT_CERT_NONE, 0},
	    {CFG_PROTO_POP3, 995, CFG_TLS_IMPLICIT, CFG_CLIENT_CERT_NONE, 0},
	    {CFG_PROTO_POP3, 110, CFG_TLS_STARTTLS, CFG_CLIENT_CERT_NONE, 0},
	    {CFG_PROTO_SMTP, 25, CFG_TLS_STARTTLS, CFG_CLIENT_CERT_REQUIRED, 0},
	};
	for (size_t i = 0; i < 7; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];
		cr_assert_eq(l->protocol, want[i].proto, "listener %zu", i);
		cr_assert_str_eq(l->address, "127.0.0.1");
		cr_assert_eq(l->port, want[i].port, "listener %zu", i);
		cr_assert_eq(l->tls, want[i].tls, "listener %zu", i);
		cr_assert_eq(l->client_certificate, want[i].cc, "listener %zu", i);
		cr_assert_eq(l->certificate_login, want[i].login, "listener %zu", i);
		cr_assert_eq(l->max_connections, 0);
		cr_assert_eq(l->line, 11 + (int)i);
	}
	cr_assert_eq(cfg->auth.require_client_certificate, false);
	cr_assert_eq(cfg->auth.n_admins, 0);
	cr_assert_not(cfg_is_admin(cfg, "postmaster@corp.example"));

	assert_path(cfg->relay.certificate, "certs/relay.crt");
	assert_path(cfg->relay.key, "certs/relay.key");
	cr_assert_eq(cfg->relay.n_routes, 3);
	const struct cfg_route *r = cfg->relay.routes;
	cr_assert_str_eq(r[0].domain, "partner.example");
	cr_assert_str_eq(r[0].host, "mx.partner.example");
	cr_assert_eq(r[0].port, 25);
	cr_assert_eq(r[0].tls, CFG_ROUTE_TLS_VERIFY);
	assert_path(r[0].ca, "certs/partner-ca.crt");
	cr_assert_eq(r[0].line, 24);
	cr_assert_str_eq(r[1].domain, "legacy.corp.example");
	cr_assert_str_eq(r[1].host, "127.0.0.1");
	cr_assert_eq(r[1].port, 2525);
	cr_assert_eq(r[1].tls, CFG_ROUTE_TLS_NONE);
	cr_assert_null(r[1].ca);
	cr_assert_str_eq(r[2].domain, "*");
	cr_assert_eq(r[2].port, 587);
	cr_assert_eq(cfg->relay.n_legacy_gateways, 0);

	cr_assert_eq(cfg->limits.message_size, 52428800);
	cr_assert_eq(cfg->limits.recipients, 100);
	cr_assert_eq(cfg->limits.connections, 10000);
	cr_assert_eq(cfg->limits.connections_per_ip, 100);

	cr_assert(cfg_is_local_domain(cfg, "Corp.Example", 12));
	cr_assert(cfg_is_local_domain(cfg, "corp.example.", 13));
	cr_assert_not(cfg_is_local_domain(cfg, "corp.example.org", 16));
	cr_assert_not(cfg_is_local_domain(cfg, "corp.exampl", 11));
	cr_assert_eq(cfg_route_find(cfg, "PARTNER.example", 15), &r[0]);
	cr_assert_eq(cfg_route_find(cfg, "legacy.corp.example", 19), &r[1]);
	cr_assert_eq(cfg_route_find(cfg, "sub.partner.example", 19), &r[2]);
	cr_assert_str_eq(cfg_protocol_name(cfg->listeners[0].protocol), "submission");
	cr_assert_str_eq(cfg_protocol_name(CFG_PROTO_POP3), "pop3");
	cr_assert_str_eq(cfg_tls_mode_name(CFG_TLS_STARTTLS), "starttls");
	cr_assert_str_eq(cfg_client_cert_name(CFG_CLIENT_CERT_REQUIRED), "required");
	cr_assert_str_eq(cfg_route_tls_name(CFG_ROUTE_TLS_ENCRYPT), "encrypt");
	cfg_free(cfg);
}

/* Lines 1-7; error cases append from line 8. */
#define HEAD     "hostname: mail.corp.example\ndomains: [corp.example]\n"
#define TLS      "tls:\n  certificate: certs/server.crt\n  key: certs/server.key\n"
#define L993     "  - { protocol: imap, address: 127.0.0.1, port: 993, tls: implicit }\n"
#define LISTENER "listeners:\n" L993
#define MIN      HEAD TLS LISTENER

Test(config, defaults)
{
	struct config *cfg;
	struct cfg_errors errs = {0};
	cr_assert_eq(load("domains: [Corp.EXAMPLE, b.example]\n" TLS LISTENER, &cfg, &errs), 0);
	char host[HOST_NAME_MAX + 1] = {0};
	gethostname(host, sizeof(host) - 1);
	cr_assert_str_eq(cfg->hostname, host);
	cr_assert_str_eq(cfg->domains[0], "corp.example");
	cr_assert_str_eq(cfg->domains[1], "b.example");
	assert_path(cfg->data_dir, "data");
	cr_assert_null(cfg->ca_dir);
	cr_assert_null(cfg->tls.client_ca);
	cr_assert_null(cfg->tls.crl);
	cr_assert_eq(cfg->tls.min_version, CFG_TLS_1_2);
	cr_assert_eq(cfg->tls.client_certificate_without_eku, CFG_NO_EKU_REFUSE);
	cr_assert_eq(cfg->listeners[0].client_certificate, CFG_CLIENT_CERT_NONE);
	cr_assert_eq(cfg->listeners[0].certificate_login, CFG_CERT_LOGIN_NONE);
	cr_assert_eq(cfg->listeners[0].max_connections, 0);
	cr_assert_eq(cfg->auth.require_client_certificate, false);
	cr_assert_null(cfg->relay.certificate);
	cr_assert_null(cfg->relay.key);
	cr_assert_eq(cfg->relay.n_routes, 0);
	cr_assert_null(cfg_route_find(cfg, "x.example", 9));
	cr_assert_eq(cfg->relay.retry_initial, 300);
	cr_assert_eq(cfg->relay.retry_max, 14400);
	cr_assert_eq(cfg->relay.give_up, 432000);
	cr_assert_eq(cfg->relay.n_dns_servers, 0);
	cr_assert_eq(cfg->relay.mx_port, 25);
	cr_assert_null(cfg->relay.mx_ca);
	const struct cfg_limits *l = &cfg->limits;
	cr_assert_eq(l->message_size, 52428800);
	cr_assert_eq(l->recipients, 100);
	cr_assert_eq(l->connections, 10000);
	cr_assert_eq(l->connections_per_ip, 100);
	cr_assert_eq(l->line_length, 65536);
	cr_assert_eq(l->line_length_preauth, 2048);
	cr_assert_eq(l->handshake_timeout, 30);
	cr_assert_eq(l->idle_timeout, 1800);
	cr_assert_eq(l->idle_timeout_preauth, 60);
	cr_assert_eq(l->session_duration, 0);
	cr_assert_eq(l->commands, 100);
	cr_assert_eq(l->errors, 10);
	cfg_free(cfg);
}

Test(config, block_style_absolute_paths_and_every_key)
{
	char *text =
	    xasprintf("hostname: mx1.corp.example\n"
	              "domains:\n  - corp.example\n"
	              "data_dir: %s/elsewhere\n"
	              "tls:\n  certificate: %s/certs/server.crt\n"
	              "  key: ./certs//server.key\n"
	              "  client_ca: data/ca/ca.crt\n"
	              "  min_version: 1.3\n"
	              "listeners:\n"
	              "  - protocol: submission\n"
	              "    address: \"::\"\n"
	              "    port: 0\n"
	              "    tls: starttls\n"
	              "    client_certificate: optional\n"
	              "    certificate_login: preauth\n"
	              "    max_connections: 50\n"
	              "  - { protocol: pop3, address: \"::\", port: 0, tls: implicit }\n"
	              "auth:\n  require_client_certificate: true\n"
	              "relay:\n"
	              "  legacy_gateways: [10.1.2.3, old.corp.example]\n"
	              "  retry_initial: 60\n  retry_max: 600\n  give_up: 3600\n"
	              "  dns_servers: [192.0.2.53, \"192.0.2.54:5353\", \"[2001:db8::1]:53\"]\n"
	              "  mx_port: 2525\n  mx_ca: certs/partner-ca.crt\n"
	              "  routes:\n"
	              "    - domain: OLD.corp.example\n      host: old.corp.example\n"
	              "      tls: none\n"
	              "    - { domain: old2.corp.example, host: 10.1.2.3, tls: none }\n"
	              "    - { domain: lo.corp.example, host: localhost, tls: none }\n"
	              "    - { domain: lo6.corp.example, host: \"::1\", tls: none }\n"
	              "    - { domain: lo4.corp.example, host: 127.8.9.10, tls: encrypt }\n"
	              "limits:\n  message_size: 18446744073709551615\n  recipients: 1\n"
	              "  connections: 1\n  connections_per_ip: 1\n  line_length: 1000\n"
	              "  line_length_preauth: 512\n  handshake_timeout: 1\n"
	              "  idle_timeout: 1\n  idle_timeout_preauth: 1\n"
	              "  session_duration: 7\n  commands: 1\n  errors: 1\n",
	              dir, dir);
	struct config *cfg;
	struct cfg_errors errs = {0};
	int ret = load(text, &cfg, &errs);
	char *all = errors_joined(&errs);
	cr_assert_eq(ret, 0, "errors:\n%s", all);
	free(all);
	free(text);
	assert_path(cfg->data_dir, "elsewhere");
	assert_path(cfg->tls.certificate, "certs/server.crt");
	assert_path(cfg->tls.key, "certs/server.key");
	cr_assert_eq(cfg->tls.min_version, CFG_TLS_1_3);
	cr_assert_eq(cfg->n_listeners, 2);
	cr_assert_str_eq(cfg->listeners[0].address, "::");
	cr_assert_eq(cfg->listeners[0].port, 0);
	cr_assert_eq(cfg->listeners[0].line, 11);
	cr_assert_eq(cfg->listeners[0].max_connections, 50);
	cr_assert_eq(cfg->listeners[0].certificate_login, CFG_CERT_LOGIN_PREAUTH);
	cr_assert_eq(cfg->auth.require_client_certificate, true);
	cr_assert_eq(cfg->relay.n_legacy_gateways, 2);
	cr_assert_str_eq(cfg->relay.routes[0].domain, "old.corp.example");
	cr_assert_eq(cfg->relay.routes[0].tls, CFG_ROUTE_TLS_NONE);
	cr_assert_eq(cfg->relay.routes[4].tls, CFG_ROUTE_TLS_ENCRYPT);
	cr_assert_eq(cfg->relay.retry_initial, 60);
	cr_assert_eq(cfg->relay.n_dns_servers, 3);
	cr_assert_str_eq(cfg->relay.dns_servers[1], "192.0.2.54:5353");
	cr_assert_eq(cfg->relay.mx_port, 2525);
	assert_path(cfg->relay.mx_ca, "certs/partner-ca.crt");
	cr_assert_eq(cfg->limits.message_size, UINT64_MAX);
	cr_assert_eq(cfg->limits.session_duration, 7);
	cfg_free(cfg);
}

Test(config, relative_config_path_is_made_absolute)
{
	struct config *cfg;
	struct cfg_errors errs = {0};
	write_file("sealmail.yaml", MIN, strlen(MIN));
	cr_assert_eq(chdir(dir), 0);
	cr_assert_eq(cfg_load("./sealmail.yaml", &cfg, &errs), 0);
	cr_assert_str_eq(cfg->path, cfg_path);
	assert_path(cfg->tls.key, "certs/server.key");
	cfg_free(cfg);
	cr_assert_eq(chdir("/"), 0);
}

Test(config, empty_values_count_as_not_written)
{
	struct config *cfg;
	struct cfg_errors errs = {0};
	cr_assert_eq(load(MIN "auth:\nrelay:\n  routes: ~\nlimits: {}\n", &cfg, &errs), 0);
	cr_assert_eq(cfg->limits.recipients, 100);
	cfg_free(cfg);
}

/* ----- every error, table-driven ----- */

struct error_case {
	const char *name;
	const char *yaml;
	int line;
	const char *key;
	const char *what;
};

static const struct error_case error_cases[] = {
    /* unknown keys */
    {"unknown top-level key", MIN "hostnme: x\n", 8, "hostnme", "did you mean 'hostname'?"},
    {"unknown listener key",
     MIN "  - { protocol: imap, address: 127.0.0.1, prot: 994, tls: "
         "implicit }\n",
     8, "listeners[1].prot", "did you mean 'port'?"},
    {"unknown section key",
     HEAD "tls:\n  certificate: certs/server.crt\n  key: "
          "certs/server.key\n  ciphers: x\n" LISTENER,
     6, "tls.ciphers",
     "unknown key (allowed here: certificate, key, client_ca, crl, peer_ca, "
     "min_version, client_certificate_without_eku)"},
    {"unknown route key",
     MIN "relay:\n  routes:\n    - { domain: a.example, host: b.example, "
         "verify: true }\n",
     10, "relay.routes[0].verify", "unknown key"},
    {"unknown limits key", MIN "limits: { message_size: 1, bogus: 2 }\n", 8, "limits.bogus",
     "unknown key"},
    {"admin not an address", MIN "auth: { admins: [corp.example] }\n", 8, "auth.admins[0]",
     "is not an e-mail address"},
    {"admin with a space", MIN "auth: { admins: [\"a b@corp.example\"] }\n", 8, "auth.admins[0]",
     "is not an e-mail address"},
    {"admin listed twice", MIN "auth: { admins: [a@corp.example, A@Corp.Example] }\n", 8,
     "auth.admins[1]", "listed twice"},
    {"admins not a list", MIN "auth: { admins: a@corp.example }\n", 8, "auth.admins",
     "expected a list"},
    {"dotted key is not a path", MIN "tls.crl: data/ca/crl.pem\n", 8, "tls.crl", "unknown key"},
    {"duplicate key", MIN "hostname: b.example\n", 8, "hostname",
     "written twice (first on line 1)"},
    {"non-scalar key", MIN "[a]: b\n", 8, "(top level)", "a key must be a single word"},
    /* types */
    {"domains not a list", "domains: corp.example\n" TLS LISTENER, 1, "domains", "expected a list"},
    {"tls not a mapping", HEAD "tls: yes\n" LISTENER, 3, "tls", "expected a mapping of keys"},
    {"listeners not a list", HEAD TLS "listeners: imap\n", 6, "listeners",
     "expected a list of mappings"},
    {"listener not a mapping", HEAD TLS "listeners:\n  - imap\n", 7, "listeners[0]",
     "expected a mapping"},
    {"port is a list",
     MIN "  - { protocol: imap, address: 127.0.0.1, port: [1], tls: "
         "implicit }\n",
     8, "listeners[1].port", "expected a single value, got a list"},
    {"port not a number",
     MIN "  - { protocol: imap, address: 127.0.0.1, port: imaps, tls: "
         "implicit }\n",
     8, "listeners[1].port",
     "expected a whole number (plain decimal digits, no units), got "
     "'imaps'"},
    {"port quoted",
     MIN "  - { protocol: imap, address: 127.0.0.1, port: \"994\", tls: "
         "implicit }\n",
     8, "listeners[1].port", "without quotes"},
    {"leading zero",
     MIN "  - { protocol: imap, address: 127.0.0.1, port: 0993, tls: "
         "implicit }\n",
     8, "listeners[1].port", "'0993' has a leading zero"},
    {"negative port",
     MIN "  - { protocol: imap, address: 127.0.0.1, port: -1, tls: "
         "implicit }\n",
     8, "listeners[1].port", "expected a whole number"},
    {"bool not a bool", MIN "auth: { require_client_certificate: yes }\n", 8,
     "auth.require_client_certificate", "expected true or false, got 'yes'"},
    {"domain item not a value", "domains: [[a]]\n" TLS LISTENER, 1, "domains[0]",
     "expected a single value"},
    {"bad domain", "domains: [corp_example]\n" TLS LISTENER, 1, "domains[0]",
     "'corp_example' is not a domain"},
    {"duplicate domain", "domains: [a.example, A.example]\n" TLS LISTENER, 1, "domains[1]",
     "listed twice"},
    {"bad hostname", "hostname: -mail\ndomains: [a.example]\n" TLS LISTENER, 1, "hostname",
     "'-mail' is not a host name"},
    {"control bytes are escaped", MIN "limits: { recipients: \"\\x01\\n\" }\n", 8,
     "limits.recipients", "got \"\\x01\\x0a\""},
    /* files */
    {"missing certificate",
     HEAD "tls:\n  certificate: certs/nope.crt\n  key: "
          "certs/server.key\n" LISTENER,
     4, "tls.certificate", "cannot read /"},
    {"missing key",
     HEAD "tls:\n  certificate: certs/server.crt\n  key: /nonexistent/x.key\n" LISTENER, 5,
     "tls.key", "cannot read /nonexistent/x.key: No such file or directory"},
    {"key is a folder", HEAD "tls:\n  certificate: certs/server.crt\n  key: certs\n" LISTENER, 5,
     "tls.key", "not a regular file"},
    {"missing client_ca",
     HEAD "tls:\n  certificate: certs/server.crt\n  key: "
          "certs/server.key\n  client_ca: nope/ca.crt\n" LISTENER,
     6, "tls.client_ca", "No such file or directory"},
    {"missing crl",
     HEAD "tls:\n  certificate: certs/server.crt\n  key: certs/server.key\n  "
          "crl: data/ca/nope.pem\n" LISTENER,
     6, "tls.crl", "No such file or directory"},
    {"missing relay certificate",
     MIN "relay:\n  certificate: certs/nope.crt\n  key: "
         "certs/relay.key\n",
     9, "relay.certificate", "No such file or directory"},
    {"missing relay key", MIN "relay:\n  certificate: certs/relay.crt\n  key: certs/nope.key\n", 10,
     "relay.key", "No such file or directory"},
    {"missing route ca",
     MIN "relay:\n  routes:\n    - { domain: a.example, host: b.example, "
         "ca: nope.crt }\n",
     10, "relay.routes[0].ca", "No such file or directory"},
    {"empty path", HEAD "tls:\n  certificate: \"\"\n  key: certs/server.key\n" LISTENER, 4,
     "tls.certificate", "the path is empty"},
    /* required keys */
    {"no tls section", HEAD LISTENER, 1, "tls", "missing"},
    {"no certificate", HEAD "tls:\n  key: certs/server.key\n" LISTENER, 4, "tls.certificate",
     "missing"},
    {"no tls key", HEAD "tls:\n  certificate: certs/server.crt\n" LISTENER, 4, "tls.key",
     "missing"},
    {"no listeners", HEAD TLS, 1, "listeners", "missing: at least one is needed"},
    {"empty listeners", HEAD TLS "listeners: []\n", 6, "listeners",
     "the list is empty: at least one is needed"},
    {"no domains", "hostname: a.example\n" TLS LISTENER, 1, "domains",
     "missing: at least one is needed"},
    {"empty domains", "domains: []\n" TLS LISTENER, 1, "domains", "the list is empty"},
    {"listener without tls", MIN "  - { protocol: imap, address: 127.0.0.1, port: 994 }\n", 8,
     "listeners[1].tls", "missing: say implicit or starttls (there is no plaintext service)"},
    {"listener without port", MIN "  - { protocol: imap, address: 127.0.0.1, tls: implicit }\n", 8,
     "listeners[1].port", "missing"},
    {"listener without protocol", MIN "  - { address: 127.0.0.1, port: 1, tls: implicit }\n", 8,
     "listeners[1].protocol", "missing"},
    {"listener without address", MIN "  - { protocol: pop3, port: 1, tls: implicit }\n", 8,
     "listeners[1].address", "missing"},
    {"route without domain", MIN "relay:\n  routes:\n    - { host: b.example }\n", 10,
     "relay.routes[0].domain", "missing"},
    {"route without host", MIN "relay:\n  routes:\n    - domain: b.example\n      port: 25\n", 10,
     "relay.routes[0].host", "missing"},
    /* values */
    {"port out of range",
     MIN "  - { protocol: imap, address: 127.0.0.1, port: 70000, tls: "
         "implicit }\n",
     8, "listeners[1].port", "70000 is out of range (0-65535)"},
    {"huge port",
     MIN "  - { protocol: imap, address: 127.0.0.1, port: 99999999999999999999999, "
         "tls: implicit }\n",
     8, "listeners[1].port", "is out of range (0-65535)"},
    {"route port 0",
     MIN "relay:\n  routes:\n    - { domain: a.example, host: b.example, port: "
         "0 }\n",
     10, "relay.routes[0].port", "0 is out of range (1-65535)"},
    {"tls none on a listener",
     MIN "  - { protocol: imap, address: 127.0.0.1, port: 994, tls: "
         "none }\n",
     8, "listeners[1].tls", "there is no plaintext service"},
    {"bad listener tls", MIN "  - { protocol: imap, address: 127.0.0.1, port: 994, tls: ssl }\n", 8,
     "listeners[1].tls", "'ssl' is not allowed (allowed: implicit, starttls)"},
    {"bad protocol",
     MIN "  - { protocol: imaps, address: 127.0.0.1, port: 994, tls: implicit "
         "}\n",
     8, "listeners[1].protocol",
     "'imaps' is not allowed (allowed: submission, smtp, imap, pop3, https, gateway)"},
    /* gateway listeners */
    {"gateway backend not loopback",
     MIN "  - { protocol: gateway, address: 127.0.0.1, port: 994, tls: implicit,\n"
         "      backend: { host: 192.0.2.1, port: 143 } }\n",
     9, "listeners[1].backend.host", "192.0.2.1 is neither"},
    {"gateway backend missing",
     MIN "  - { protocol: gateway, address: 127.0.0.1, port: 994, tls: implicit }\n", 8,
     "listeners[1].backend", "missing: a gateway needs"},
    {"gateway backend port missing",
     MIN "  - { protocol: gateway, address: 127.0.0.1, port: 994, tls: implicit,\n"
         "      backend: { host: localhost } }\n",
     9, "listeners[1].backend.port", "missing"},
    {"gateway starttls without speaks",
     MIN "  - { protocol: gateway, address: 127.0.0.1, port: 994, tls: starttls,\n"
         "      backend: { host: 127.0.0.1, port: 143 } }\n",
     8, "listeners[1].speaks", "tls: starttls needs speaks"},
    {"backend on an imap listener",
     MIN "  - { protocol: imap, address: 127.0.0.1, port: 994, tls: implicit,\n"
         "      backend: { host: 127.0.0.1, port: 143 } }\n",
     9, "listeners[1].backend", "only gateway listeners take a backend"},
    {"proxy_protocol on an imap listener",
     MIN "  - { protocol: imap, address: 127.0.0.1, port: 994, tls: implicit, "
         "proxy_protocol: v2 }\n",
     8, "listeners[1].proxy_protocol", "only gateway listeners"},
    {"https with starttls",
     MIN "  - { protocol: https, address: 127.0.0.1, port: 443, tls: starttls }\n", 8,
     "listeners[1].tls", "https listeners are implicit TLS only"},
    {"https with certificate_login",
     MIN "  - { protocol: https, address: 127.0.0.1, port: 443, tls: implicit, "
         "client_certificate: optional, certificate_login: preauth }\n",
     8, "listeners[1].certificate_login", "https listeners log nobody in"},
    {"bad client_certificate",
     MIN "  - { protocol: imap, address: 127.0.0.1, port: 994, tls: "
         "implicit, client_certificate: yes }\n",
     8, "listeners[1].client_certificate", "(allowed: none, optional, required)"},
    {"bad certificate_login",
     MIN "  - { protocol: imap, address: 127.0.0.1, port: 994, tls: "
         "implicit, certificate_login: external }\n",
     8, "listeners[1].certificate_login", "(allowed: none, preauth)"},
    {"bad min_version",
     HEAD "tls:\n  certificate: certs/server.crt\n  key: certs/server.key\n  "
          "min_version: \"1.1\"\n" LISTENER,
     6, "tls.min_version", "'1.1' is not allowed (allowed: 1.2, 1.3)"},
    {"min_version as a number",
     HEAD "tls:\n  certificate: certs/server.crt\n  key: "
          "certs/server.key\n  min_version: 1.30\n" LISTENER,
     6, "tls.min_version", "'1.30' is not allowed"},
    {"optional without client_ca",
     MIN "  - { protocol: imap, address: 127.0.0.1, port: 994, "
         "tls: implicit, client_certificate: optional }\n",
     8, "listeners[1].client_certificate", "optional needs tls.client_ca"},
    {"required without client_ca",
     MIN "  - { protocol: imap, address: 127.0.0.1, port: 994, "
         "tls: implicit,\n      client_certificate: required }\n",
     9, "listeners[1].client_certificate", "required needs tls.client_ca"},
    {"preauth without certificate",
     MIN "  - { protocol: imap, address: 127.0.0.1, port: 994, "
         "tls: implicit, certificate_login: preauth }\n",
     8, "listeners[1].certificate_login",
     "preauth needs client_certificate: optional or "
     "required"},
    {"peers on a submission listener",
     MIN "  - { protocol: submission, address: 127.0.0.1, port: 587, "
         "tls: starttls, peers: [mx2.corp.example] }\n",
     8, "listeners[1].peers", "only smtp listeners take peers"},
    {"peers that are not host names",
     MIN "  - { protocol: smtp, address: 127.0.0.1, port: 25, tls: starttls,\n"
         "      peers: [mx2.corp.example, \"mx 3\"] }\n",
     9, "listeners[1].peers[1]", "'mx 3' is not a domain"},
    {"peers without client certificates",
     MIN "  - { protocol: smtp, address: 127.0.0.1, port: 25, tls: starttls, "
         "peers: [mx2.corp.example] }\n",
     8, "listeners[1].peers", "needs client_certificate: optional or required"},
    {"host name as listener address",
     MIN "  - { protocol: imap, address: localhost, port: 994, "
         "tls: implicit }\n",
     8, "listeners[1].address", "'localhost' is not a numeric IPv4 or IPv6 address"},
    {"bad IPv4 address",
     MIN "  - { protocol: imap, address: 127.0.0.256, port: 994, tls: "
         "implicit }\n",
     8, "listeners[1].address", "not a numeric IPv4 or IPv6 address"},
    {"duplicate address:port", MIN L993, 8, "listeners[1].port",
     "127.0.0.1:993 is already used by listeners[0] (line 7)"},
    {"duplicate with wildcard",
     MIN "  - { protocol: imap, address: 0.0.0.0, port: 993, tls: "
         "starttls }\n",
     8, "listeners[1].port", "0.0.0.0:993 is already used by listeners[0] (line 7)"},
    {"duplicate IPv6 spelled twice",
     MIN "  - { protocol: imap, address: \"::1\", port: 1, tls: "
         "implicit }\n  - { protocol: pop3, address: "
         "\"0:0::1\", port: 1, tls: implicit }\n",
     9, "listeners[2].port", "[0:0::1]:1 is already used by listeners[1] (line 8)"},
    {"bad route tls",
     MIN "relay:\n  routes:\n    - { domain: a.example, host: b.example, tls: "
         "dane }\n",
     10, "relay.routes[0].tls", "'dane' is not allowed (allowed: verify, encrypt, none)"},
    {"route tls none to a remote host",
     MIN "relay:\n  routes:\n    - { domain: a.example, host: "
         "b.example,\n        tls: none }\n",
     11, "relay.routes[0].tls", "none sends mail in plaintext, allowed only to loopback"},
    {"route tls none to a remote address",
     MIN "relay:\n  legacy_gateways: [10.0.0.1]\n  "
         "routes:\n    - { domain: a.example, host: "
         "10.0.0.2, tls: none }\n",
     11, "relay.routes[0].tls", "and 10.0.0.2 is neither"},
    {"route ca without verify",
     MIN "relay:\n  routes:\n    - { domain: a.example, host: "
         "b.example, tls: encrypt, ca: certs/partner-ca.crt }\n",
     10, "relay.routes[0].ca", "is only used with tls: verify"},
    {"duplicate route",
     MIN "relay:\n  routes:\n    - { domain: a.example, host: b.example }\n"
         "    - { domain: A.example, host: c.example }\n",
     11, "relay.routes[1].domain", "is already routed by relay.routes[0] (line 10)"},
    {"bad route host",
     MIN "relay:\n  routes:\n    - { domain: a.example, host: \"b example\" "
         "}\n",
     10, "relay.routes[0].host", "is neither a host name nor a numeric address"},
    {"bad route domain",
     MIN "relay:\n  routes:\n    - { domain: \"*.example\", host: b.example "
         "}\n",
     10, "relay.routes[0].domain", "is neither a domain nor \"*\""},
    {"bad legacy gateway", MIN "relay:\n  legacy_gateways: [\"a b\"]\n", 9,
     "relay.legacy_gateways[0]", "is neither a host name nor a numeric address"},
    {"dns server by name", MIN "relay:\n  dns_servers: [ns.example]\n", 9, "relay.dns_servers[0]",
     "'ns.example' is not a numeric IPv4 or IPv6 address"},
    {"dns server port out of range",
     MIN "relay:\n  dns_servers:\n    - 127.0.0.1\n"
         "    - \"127.0.0.1:65536\"\n",
     11, "relay.dns_servers[1]", "'127.0.0.1:65536' has a port that is not a number from 1"},
    {"dns server IPv6 with a port, no brackets", MIN "relay:\n  dns_servers: [\"fe80::1:x\"]\n", 9,
     "relay.dns_servers[0]", "write an IPv6 address with a port in brackets"},
    {"dns server listed twice", MIN "relay:\n  dns_servers: [192.0.2.1, 192.0.2.1]\n", 9,
     "relay.dns_servers[1]", "is listed twice"},
    {"dns servers not a list", MIN "relay:\n  dns_servers: 192.0.2.1\n", 9, "relay.dns_servers",
     "expected a list"},
    {"zero mx_port", MIN "relay: { mx_port: 0 }\n", 8, "relay.mx_port",
     "0 is out of range (1-65535)"},
    {"missing mx_ca", MIN "relay: { mx_ca: certs/nope.crt }\n", 8, "relay.mx_ca",
     "No such file or directory"},
    {"relay certificate without key", MIN "relay:\n  certificate: certs/relay.crt\n", 9,
     "relay.certificate", "needs relay.key"},
    {"relay key without certificate", MIN "relay:\n  key: certs/relay.key\n", 9, "relay.key",
     "needs relay.certificate"},
    {"retry_max below retry_initial", MIN "relay:\n  retry_initial: 600\n  retry_max: 60\n", 10,
     "relay.retry_max", "60 is less than relay.retry_initial (600)"},
    {"zero give_up", MIN "relay: { give_up: 0 }\n", 8, "relay.give_up", "0 is out of range (1-"},
    {"require certificate without client_ca", MIN "auth:\n  require_client_certificate: true\n", 9,
     "auth.require_client_certificate", "true needs tls.client_ca"},
    {"require certificate nowhere asked",
     HEAD "tls:\n  certificate: certs/server.crt\n  key: "
          "certs/server.key\n  client_ca: "
          "data/ca/ca.crt\n" LISTENER "auth:\n  require_client_certificate: true\n",
     10, "auth.require_client_certificate", "no listener asks for a certificate"},
    /* limits */
    {"message_size with a unit", MIN "limits:\n  message_size: 50M\n", 9, "limits.message_size",
     "expected a whole number (plain decimal digits, no units), got '50M'"},
    {"zero message_size", MIN "limits: { message_size: 0 }\n", 8, "limits.message_size",
     "0 is out of range (1-18446744073709551615)"},
    {"zero recipients", MIN "limits: { recipients: 0 }\n", 8, "limits.recipients",
     "0 is out of range (1-4294967295)"},
    {"zero connections", MIN "limits: { connections: 0 }\n", 8, "limits.connections",
     "out of range"},
    {"zero connections_per_ip", MIN "limits: { connections_per_ip: 0 }\n", 8,
     "limits.connections_per_ip", "out of range"},
    {"zero line_length", MIN "limits: { line_length: 0 }\n", 8, "limits.line_length",
     "0 is out of range (1000-16777216)"},
    {"short line_length_preauth", MIN "limits: { line_length_preauth: 100 }\n", 8,
     "limits.line_length_preauth", "100 is out of range (512-16777216)"},
    {"preauth line longer than line",
     MIN "limits:\n  line_length: 1000\n  "
         "line_length_preauth: 2000\n",
     10, "limits.line_length_preauth", "2000 is more than limits.line_length (1000)"},
    {"zero handshake_timeout", MIN "limits: { handshake_timeout: 0 }\n", 8,
     "limits.handshake_timeout", "out of range"},
    {"zero idle_timeout", MIN "limits: { idle_timeout: 0 }\n", 8, "limits.idle_timeout",
     "out of range"},
    {"zero idle_timeout_preauth", MIN "limits: { idle_timeout_preauth: 0 }\n", 8,
     "limits.idle_timeout_preauth", "out of range"},
    {"zero commands", MIN "limits: { commands: 0 }\n", 8, "limits.commands", "out of range"},
    {"zero errors", MIN "limits: { errors: 0 }\n", 8, "limits.errors", "out of range"},
    {"zero retry_initial", MIN "relay: { retry_initial: 0 }\n", 8, "relay.retry_initial",
     "out of range"},
    {"recipients above unsigned", MIN "limits: { recipients: 4294967296 }\n", 8,
     "limits.recipients", "out of range"},
    /* the file itself */
    {"syntax error", HEAD "tls: {certificate: x\nlisteners: []\n", 4, "(syntax)",
     "did not find expected ',' or '}' while parsing a flow mapping started on line 3"},
    {"tab indentation", "domains:\n\t- a\n", 2, "(syntax)", "found character that cannot start"},
    {"invalid UTF-8", "hostname: \xff\n", 1, "(syntax)", "invalid"},
    {"not a mapping", "- a\n- b\n", 1, "(file)",
     "expected a mapping of keys at the top, got a "
     "list"},
    {"second document", MIN "---\nfoo: 1\n", 9, "(file)", "a second YAML document"},
    {"empty file", "", 1, "domains", "missing"},
    {"comment only", "# nothing\n", 1, "listeners", "missing"},
};

Test(config, every_error_names_file_line_and_key)
{
	size_t failed = 0;
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		const struct error_case *tc = &error_cases[i];
		struct config *cfg = (struct config *)1;
		struct cfg_errors errs = {0};
		int ret = load(tc->yaml, &cfg, &errs);
		int at = find_error(&errs, tc->line, tc->key, tc->what);
		if (ret != -EINVAL || cfg != NULL || at < 0) {
			char *all = errors_joined(&errs);
			cr_log_error("case '%s': ret %d, want %s:%d: %s: ...%s...\ngot:\n%s",
			             tc->name, ret, cfg_path, tc->line, tc->key, tc->what, all);
			free(all);
			failed++;
		}
		cfg_errors_free(&errs);
	}
	cr_assert_eq(failed, 0, "%zu error cases failed", failed);
}

Test(config, every_error_is_reported)
{
	struct config *cfg;
	struct cfg_errors errs = {0};
	const char *text =
	    "hostname: mail.corp.example\n"   /* 1 */
	    "domains: [corp.example]\n"       /* 2 */
	    "tls:\n"                          /* 3 */
	    "  certificate: certs/none.crt\n" /* 4 */
	    "  key: certs/server.key\n"       /* 5 */
	    "  min_version: \"1.0\"\n"        /* 6 */
	    "listeners:\n"                    /* 7 */
	    "  - { protocol: imap, address: 127.0.0.1, port: 70000, tls: implicit }\n"
	    "  - { protocol: imap, address: host, port: 993, tls: none }\n" /* 9 */
	    "  - { protocol: smtp, address: 127.0.0.1, port: 25, tls: starttls,\n"
	    "      client_certificate: required, cetificate_login: preauth }\n"
	    "limits: { recipients: 0, message_size: 50MiB }\n"; /* 12 */
	cr_assert_eq(load(text, &cfg, &errs), -EINVAL);
	cr_assert_null(cfg);
	struct {
		int line;
		const char *key, *what;
	} want[] = {
	    {4, "tls.certificate", "No such file"},
	    {6, "tls.min_version", "'1.0' is not allowed"},
	    {8, "listeners[0].port", "70000 is out of range (0-65535)"},
	    {9, "listeners[1].address", "'host' is not a numeric"},
	    {9, "listeners[1].tls", "no plaintext service"},
	    {11, "listeners[2].cetificate_login", "did you mean 'certificate_login'?"},
	    {11, "listeners[2].client_certificate", "required needs tls.client_ca"},
	    {12, "limits.recipients", "out of range"},
	    {12, "limits.message_size", "'50MiB'"},
	};
	char *all = errors_joined(&errs);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_expect_geq(find_error(&errs, want[i].line, want[i].key, want[i].what), 0,
		              "missing %d %s %s in:\n%s", want[i].line, want[i].key, want[i].what,
		              all);
	cr_assert_eq(errs.n, sizeof(want) / sizeof(want[0]), "got:\n%s", all);
	free(all);
	cfg_errors_free(&errs);
}

Test(config, errors_are_appended_after_existing_ones)
{
	struct config *cfg;
	struct cfg_errors errs = {0};
	cr_assert_eq(load(MIN "x: 1\n", &cfg, &errs), -EINVAL);
	cr_assert_eq(load(MIN "y: 1\n", &cfg, &errs), -EINVAL);
	cr_assert_eq(errs.n, 2);
	cr_assert_geq(find_error(&errs, 8, "x", "unknown"), 0);
	cr_assert_geq(find_error(&errs, 8, "y", "unknown"), 0);
	cfg_errors_free(&errs);
	cr_assert_eq(errs.n, 0);
}

Test(config, unreadable_file)
{
	struct config *cfg = (struct config *)1;
	struct cfg_errors errs = {0};
	char *p = xasprintf("%s/nope.yaml", dir);
	cr_assert_eq(cfg_load(p, &cfg, &errs), -ENOENT);
	cr_assert_null(cfg);
	cr_assert_eq(errs.n, 1);
	char *want = xasprintf("%s:1: (file): cannot read: No such file or directory", p);
	cr_assert_str_eq(errs.lines[0], want);
	free(want);
	cfg_errors_free(&errs);
	cr_assert_eq(cfg_load(dir, &cfg, &errs), -EINVAL);
	cr_assert_eq(errs.n, 1);
	cr_assert_not_null(strstr(errs.lines[0], "not a regular file"));
	cfg_errors_free(&errs);
	free(p);
}

Test(config, oversized_file)
{
	size_t len = 1024 * 1024 + 1;
	char *big = xmalloc(len);
	memset(big, '#', len);
	struct config *cfg;
	struct cfg_errors errs = {0};
	cr_assert_eq(load_text(big, len, &cfg, &errs), -EFBIG);
	cr_assert_eq(errs.n, 1);
	cr_assert_not_null(strstr(errs.lines[0], "larger than 1 MiB"));
	cfg_errors_free(&errs);
	free(big);
}

/* Aliases let a small file repeat a bad mapping many times: the list of errors is bounded. */
Test(config, error_flood_is_bounded)
{
	struct config *cfg;
	struct cfg_errors errs = {0};
	const char *text =
	    HEAD TLS "bad: &b { a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8 }\n"
	             "listeners: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, "
	             "*b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n";
	cr_assert_eq(load(text, &cfg, &errs), -EINVAL);
	cr_assert_eq(errs.n, 101);
	cr_assert_not_null(strstr(errs.lines[100], "more than 100 errors"));
	cfg_errors_free(&errs);
}

Test(config, value_helpers)
{
	struct {
		const char *in, *out;
	} paths[] = {{"/a//b/./c/", "/a/b/c"},
	             {"/./", "/"},
	             {"/a/../b", "/a/../b"},
	             {"//", "/"},
	             {"/a/.b/.", "/a/.b"}};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		char *p = xstrdup(paths[i].in);
		cfg_path_normalize(p);
		cr_expect_str_eq(p, paths[i].out, "normalize(%s)", paths[i].in);
		free(p);
	}
	char *r = cfg_path_resolve("/etc/sealmail", "./certs/x.crt");
	cr_expect_str_eq(r, "/etc/sealmail/certs/x.crt");
	free(r);

	uint64_t v;
	cr_expect_eq(cfg_parse_u64("0", &v), 0);
	cr_expect_eq(v, 0);
	cr_expect_eq(cfg_parse_u64("18446744073709551615", &v), 0);
	cr_expect_eq(v, UINT64_MAX);
	cr_expect_eq(cfg_parse_u64("18446744073709551616", &v), -ERANGE);
	cr_expect_eq(cfg_parse_u64("010", &v), -EDOM);
	const char *bad[] = {"", "+1", "-1", "1e3", "0x10", " 1", "1 ", "1_000", "50M"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(cfg_parse_u64(bad[i], &v), -EINVAL, "'%s'", bad[i]);

	cr_expect(cfg_is_dns_name("a"));
	cr_expect(cfg_is_dns_name("xn--bcher-kva.example"));
	cr_expect_not(cfg_is_dns_name("a..b"));
	cr_expect_not(cfg_is_dns_name("a-.b"));
	cr_expect_not(cfg_is_dns_name("a.b."));
	cr_expect_not(cfg_is_dns_name("b\xc3\xbccher.example"));
	char label[80];
	memset(label, 'a', 64);
	label[64] = '\0';
	cr_expect_not(cfg_is_dns_name(label));

	const char *loop[] = {"localhost", "LocalHost",        "127.0.0.1",      "127.255.0.9",
	                      "::1",       "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1"};
	for (size_t i = 0; i < sizeof(loop) / sizeof(loop[0]); i++)
		cr_expect(cfg_host_is_loopback(loop[i]), "%s", loop[i]);
	const char *remote[] = {"128.0.0.1", "::2", "localhost.example", "10.0.0.1", "::"};
	for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++)
		cr_expect_not(cfg_host_is_loopback(remote[i]), "%s", remote[i]);
	cr_expect(cfg_host_equal("::1", "0::1"));
	cr_expect(cfg_host_equal("Old.Example", "old.example"));
	cr_expect_not(cfg_host_equal("10.0.0.1", "10.0.0.2"));

	char *e = cfg_escape("a\n\\\x01", 4);
	cr_expect_str_eq(e, "a\\x0a\\x5c\\x01");
	free(e);
	cr_expect_eq(cfg_edit_distance("prot", "port"), 2);
	cr_expect_eq(cfg_edit_distance("hostnme", "hostname"), 1);
}

/* ----- hostile input: prefixes and mutations of a valid file ----- */

Test(config, every_prefix_of_a_valid_file_is_handled)
{
	size_t len = strlen(design_example), ok = 0;
	for (size_t n = 0; n <= len; n++) {
		struct config *cfg = NULL;
		struct cfg_errors errs = {0};
		int ret = load_text(design_example, n, &cfg, &errs);
		cr_assert(ret == 0 || ret == -EINVAL, "prefix %zu: %d", n, ret);
		cr_assert_eq(ret == 0, cfg != NULL);
		cr_assert_eq(ret == 0, errs.n == 0, "prefix %zu", n);
		for (size_t i = 0; i < errs.n; i++)
			cr_assert_eq(strncmp(errs.lines[i], cfg_path, strlen(cfg_path)), 0);
		ok += ret == 0;
		cfg_free(cfg);
		cfg_errors_free(&errs);
	}
	cr_assert_geq(ok, 1);
}

Test(config, mutated_bytes_are_handled)
{
	static const char subst[] = {':', '[', '{', '-', '\n', '&', '*', '"', '\0', '\t', '#', '9'};
	size_t len = strlen(design_example);
	char *copy = xmalloc(len);
	for (size_t off = 0; off < len; off += 3) {
		for (size_t s = 0; s < sizeof(subst); s++) {
			memcpy(copy, design_example, len);
			copy[off] = subst[s];
			struct config *cfg = NULL;
			struct cfg_errors errs = {0};
			int ret = load_text(copy, len, &cfg, &errs);
			cr_assert(ret == 0 || ret == -EINVAL);
			cr_assert_eq(ret == 0, cfg != NULL);
			cfg_free(cfg);
			cfg_errors_free(&errs);
		}
	}
	free(copy);
}

Test(config, reference_documents_every_key)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);
	cfg_print_reference(fp);
	fclose(fp);
	const char *keys[] = {"hostname",
	                      "tls.min_version",
	                      "listeners[].port",
	                      "listeners[].certificate_login",
	                      "relay.routes[].ca",
	                      "relay.legacy_gateways",
	                      "limits.line_length_preauth",
	                      "limits.errors"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char *h = xasprintf("### `%s`", keys[i]);
		cr_assert_not_null(strstr(text, h), "%s is not documented", keys[i]);
		free(h);
	}
	cr_assert_not_null(strstr(text, "Generated"));
	free(text);
}

/* relay.dns_servers entries, one per row: what parses and into what. */
Test(config, dns_server_parse)
{
	static const struct {
		const char *in;
		int family; /* 0: refused */
		const char *addr;
		uint16_t port;
	} cases[] = {
	    {"127.0.0.1", AF_INET, "127.0.0.1", 53},
	    {"127.0.0.1:5353", AF_INET, "127.0.0.1", 5353},
	    {"192.0.2.1:1", AF_INET, "192.0.2.1", 1},
	    {"10.0.0.1:65535", AF_INET, "10.0.0.1", 65535},
	    {"::1", AF_INET6, "::1", 53},
	    {"2001:db8::53", AF_INET6, "2001:db8::53", 53},
	    {"::1:53", AF_INET6, "::1:53", 53}, /* an address, not ::1 port 53 */
	    {"[::1]", AF_INET6, "::1", 53},
	    {"[::1]:5353", AF_INET6, "::1", 5353},
	    {"[2001:db8::1]:53", AF_INET6, "2001:db8::1", 53},
	    {"::ffff:127.0.0.1", AF_INET6, "::ffff:127.0.0.1", 53},
	    {"", 0, NULL, 0},
	    {":53", 0, NULL, 0},
	    {"127.0.0.1:", 0, NULL, 0},
	    {"127.0.0.1:0", 0, NULL, 0},
	    {"127.0.0.1:053", 0, NULL, 0},
	    {"127.0.0.1:65536", 0, NULL, 0},
	    {"127.0.0.1:99999999999", 0, NULL, 0},
	    {"127.0.0.1:53x", 0, NULL, 0},
	    {"127.0.0.1:+53", 0, NULL, 0},
	    {"127.0.0.1:-1", 0, NULL, 0},
	    {"127.0.0.1 ", 0, NULL, 0},
	    {"127.1", 0, NULL, 0},
	    {"localhost", 0, NULL, 0},
	    {"ns.example:53", 0, NULL, 0},
	    {"[127.0.0.1]:53", 0, NULL, 0},
	    {"[::1", 0, NULL, 0},
	    {"[::1]53", 0, NULL, 0},
	    {"[::1]:", 0, NULL, 0},
	    {"[]:53", 0, NULL, 0},
	    {"fe80::1%eth0", 0, NULL, 0},
	    {"[fe80::1%eth0]:53", 0, NULL, 0},
	    {"1.2.3.4:53:53", 0, NULL, 0},
	    {"[::1]:53:53", 0, NULL, 0},
	    {"[0000:0000:0000:0000:0000:0000:0000:0000:0000]:53", 0, NULL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cfg_dns_server ds;
		const char *why = NULL;
		int rc = cfg_dns_server_parse(cases[i].in, &ds, &why);
		if (cases[i].family == 0) {
			cr_expect_eq(rc, -EINVAL, "'%s' parsed", cases[i].in);
			cr_expect_not_null(why, "'%s': no reason", cases[i].in);
			continue;
		}
		cr_expect_eq(rc, 0, "'%s': %s", cases[i].in, why ? why : "");
		if (rc != 0)
			continue;
		unsigned char want[16] = {0};
		cr_assert_eq(inet_pton(cases[i].family, cases[i].addr, want), 1);
		cr_expect_eq(ds.family, cases[i].family, "'%s' family", cases[i].in);
		cr_expect_eq(memcmp(ds.addr, want, 16), 0, "'%s' address", cases[i].in);
		cr_expect_eq(ds.port, cases[i].port, "'%s' port %u", cases[i].in, ds.port);
	}
}

/* docs/configuration.md is generated: it must match what the table prints now. */
Test(config, committed_reference_is_current)
{
	const char *root = getenv("SEALMAIL_SOURCE_ROOT");
	if (root == NULL)
		cr_skip_test("SEALMAIL_SOURCE_ROOT is not set");
	char *p = xasprintf("%s/docs/configuration.md", root);
	FILE *fp = fopen(p, "rb");
	cr_assert_not_null(fp, "%s is missing: run sealmail-config-reference", p);
	char *doc = xmalloc(1024 * 1024);
	size_t n = fread(doc, 1, 1024 * 1024 - 1, fp);
	doc[n] = '\0';
	fclose(fp);
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	cfg_print_reference(mem);
	fclose(mem);
	cr_assert_str_eq(doc, text,
	                 "docs/configuration.md is stale: regenerate it with "
	                 "build/config/sealmail-config-reference > docs/configuration.md");
	free(text);
	free(doc);
	free(p);
}

/* sealctl creates the CA, CRL and server certificate the file names: it loads without
 * opening them, and the server (plain cfg_load) still refuses them. */
Test(config, no_file_checks_for_sealctl)
{
	static const char text[] =
	    "domains: [corp.example]\n"
	    "tls:\n"
	    "  certificate: certs/missing.crt\n"
	    "  key: certs/missing.key\n"
	    "  client_ca: data/ca/ca.crt\n"
	    "  crl: data/ca/crl.pem\n"
	    "listeners:\n"
	    "  - { protocol: imap, address: 127.0.0.1, port: 993, tls: implicit,"
	    " client_certificate: required }\n";
	write_file("sealmail.yaml", text, sizeof(text) - 1);
	struct config *cfg = NULL;
	struct cfg_errors errs = {0};
	cr_assert_lt(cfg_load(cfg_path, &cfg, &errs), 0);
	cr_assert_geq(find_error(&errs, 3, "tls.certificate", "cannot read"), 0);
	cfg_errors_free(&errs);
	cr_assert_eq(cfg_load_flags(cfg_path, CFG_LOAD_NO_FILE_CHECKS, &cfg, &errs), 0, "%s",
	             errs.n ? errs.lines[0] : "");
	assert_path(cfg->tls.crl, "data/ca/crl.pem");
	cfg_free(cfg);
	cfg_errors_free(&errs);
}

Test(config, admins_are_lower_cased_and_matched_in_any_case)
{
	struct config *cfg;
	struct cfg_errors errs = {0};
	cr_assert_eq(load("domains: [corp.example]\n" TLS LISTENER
	                  "auth: { admins: [Boss@Corp.Example, ops@other.example] }\n",
	                  &cfg, &errs),
	             0);
	cr_assert_eq(cfg->auth.n_admins, 2);
	cr_assert_str_eq(cfg->auth.admins[0], "boss@corp.example");
	cr_assert(cfg_is_admin(cfg, "boss@corp.example"));
	cr_assert(cfg_is_admin(cfg, "BOSS@corp.example"));
	cr_assert_not(cfg_is_admin(cfg, "alice@corp.example"));
	cr_assert_not(cfg_is_admin(cfg, NULL));
	cfg_free(cfg);
	cfg_errors_free(&errs);
}

/* cfg_diff names exactly the keys that changed, list elements by index. */
Test(config, diff_names_changed_keys)
{
	static const char base[] =
	    "hostname: a.corp.example\n"
	    "domains: [corp.example]\n"
	    "tls: { certificate: certs/server.crt, key: certs/server.key }\n"
	    "listeners:\n"
	    "  - { protocol: imap, address: 127.0.0.1, port: 993, tls: implicit }\n"
	    "  - { protocol: pop3, address: 127.0.0.1, port: 995, tls: implicit }\n"
	    "limits: { connections: 100 }\n";
	static const char changed[] =
	    "hostname: a.corp.example\n"
	    "domains: [corp.example, other.example]\n"
	    "tls: { certificate: certs/server.crt, key: certs/server.key }\n"
	    "listeners:\n"
	    "  - { protocol: imap, address: 127.0.0.1, port: 993, tls: "
	    "implicit }\n"
	    "  - { protocol: pop3, address: 127.0.0.1, port: 1995, tls: "
	    "implicit }\n"
	    "limits: { connections: 200 }\n";
	struct config *a, *b, *c;
	struct cfg_errors errs = {0};
	cr_assert_eq(load(base, &a, &errs), 0);
	cr_assert_eq(load(changed, &b, &errs), 0);
	cr_assert_eq(load(base, &c, &errs), 0);
	char *d = cfg_diff(a, b);
	cr_assert_str_eq(d, "domains,listeners[1].port,limits.connections");
	free(d);
	d = cfg_diff(a, c);
	cr_assert_str_eq(d, "");
	free(d);
	cfg_free(a);
	cfg_free(b);
	cfg_free(c);
}
