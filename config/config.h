#ifndef SEALMAIL_CONFIG_H
#define SEALMAIL_CONFIG_H
/*
 * The configuration: one YAML file (docs/design.md) loaded with libyaml into one validated,
 * immutable struct config. Nothing outside config/ includes yaml.h.
 *
 * Every path in the struct is absolute: relative paths in the file are resolved against
 * the folder of the file. Every error names file, line and key:
 *   /etc/sealmail/sealmail.yaml:12: listeners[2].port: 70000 is out of range (1-65535)
 * The key list lives in one table (config_keys.c) from which docs/configuration.md is
 * generated (`sealmaild --print-config-reference`).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* HTTPS serves client autoconfiguration and health checks beside the mail protocols
 * (docs/https.md); it is implicit TLS only. */
enum cfg_protocol {
	CFG_PROTO_SUBMISSION,
	CFG_PROTO_SMTP,
	CFG_PROTO_IMAP,
	CFG_PROTO_POP3,
	CFG_PROTO_HTTPS,
	CFG_PROTO_GATEWAY, /* TLS in front of a plaintext backend (docs/gateway.md) */
};
enum cfg_tls_mode { CFG_TLS_IMPLICIT, CFG_TLS_STARTTLS };
enum cfg_client_cert { CFG_CLIENT_CERT_NONE, CFG_CLIENT_CERT_OPTIONAL, CFG_CLIENT_CERT_REQUIRED };
/* certificate_login: "none" (default: a certificate never logs in by itself; EXTERNAL
 * is still offered where a verified certificate is present) or "preauth" (IMAP greets a
 * verified user with PREAUTH, SMTP submission treats the certificate as the login). */
enum cfg_cert_login { CFG_CERT_LOGIN_NONE, CFG_CERT_LOGIN_PREAUTH };
enum cfg_tls_version { CFG_TLS_1_2, CFG_TLS_1_3 };
/* gateway listeners: the protocol the backend speaks, for the STARTTLS dance the gateway
 * answers itself and for its goodbyes; none relays bytes only (implicit TLS). */
enum cfg_speaks { CFG_SPEAKS_NONE, CFG_SPEAKS_SMTP, CFG_SPEAKS_IMAP, CFG_SPEAKS_POP3 };
/* gateway listeners: what the gateway tells the backend before the client's bytes. */
enum cfg_proxy_protocol { CFG_PROXY_NONE, CFG_PROXY_V2 };
enum cfg_route_tls { CFG_ROUTE_TLS_VERIFY, CFG_ROUTE_TLS_ENCRYPT, CFG_ROUTE_TLS_NONE };
/* tls.client_certificate_without_eku: a client certificate without any extended key usage
 * is refused (default) or, when the administrator allows it, taken as a client one. */
enum cfg_no_eku { CFG_NO_EKU_REFUSE, CFG_NO_EKU_ALLOW };
/* auth.disabled_user_mail: what happens to mail for a disabled user. */
enum cfg_disabled_mail { CFG_DISABLED_MAIL_REFUSE, CFG_DISABLED_MAIL_KEEP };
/* store: the store backend by name (storage/store_backend.h). Only backends that keep mail
 * across restarts are offered here; the in-memory and fault ones are for tests. */
enum cfg_store { CFG_STORE_SQLITE };

struct cfg_listener {
	enum cfg_protocol protocol;
	char *address; /* numeric IPv4 or IPv6 address */
	uint16_t port; /* 0 is allowed: the kernel picks (tests); the real port is logged */
	enum cfg_tls_mode tls;
	enum cfg_client_cert client_certificate; /* default none */
	enum cfg_cert_login certificate_login;   /* default none */
	unsigned max_connections;                /* default 0 = only the global limit */
	/* smtp only: the DNS names (lower-case) an organisation server's client certificate
	 * may carry to send from a local domain here. */
	char **peers;
	size_t n_peers;
	/* gateway only: the plaintext server behind it (loopback or relay.legacy_gateways),
	 * what it speaks and whether it is sent a PROXY protocol header. */
	char *backend_host;
	uint16_t backend_port;
	enum cfg_speaks speaks;                 /* default none */
	enum cfg_proxy_protocol proxy_protocol; /* default none */
	int line;                               /* line of the listener in the file */
};

struct cfg_route {
	char *domain; /* lower-case domain, or "*" */
	char *host;
	uint16_t port;          /* default 25 */
	enum cfg_route_tls tls; /* default verify */
	char *ca;               /* absolute path, or NULL for the system store */
	int line;
};

struct cfg_limits {
	uint64_t message_size;         /* bytes, default 52428800 */
	unsigned recipients;           /* per message, default 100 */
	unsigned connections;          /* global, default 10000 */
	unsigned connections_per_ip;   /* default 100 */
	unsigned line_length;          /* after login, default 65536 (IMAP commands can be long) */
	unsigned line_length_preauth;  /* before login, default 2048 */
	unsigned handshake_timeout;    /* seconds, default 30 */
	unsigned idle_timeout;         /* seconds after login, default 1800 */
	unsigned idle_timeout_preauth; /* seconds before login, default 60 */
	unsigned session_duration;     /* seconds, 0 = unlimited (default 0; SMTP uses it) */
	unsigned commands;             /* per session before login, default 100 */
	unsigned errors;               /* per session, default 10 */
	unsigned metadata_size;        /* bytes of one IMAP METADATA value, default 16384 */
	unsigned metadata_entries;     /* IMAP METADATA entries per user, default 256 */
	unsigned gateway_idle_timeout; /* seconds without a byte either way, default 1800 */
	unsigned gateway_session_duration; /* seconds, 0 = unlimited (default 86400) */
	/* Where limits.connections is written (else limits:, else 1): warnings about it that
	 * only the server can judge (the open-file limit) name this line. */
	int connections_line;
};

struct cfg_relay {
	char *certificate; /* presented to peers, or NULL */
	char *key;
	struct cfg_route *routes;
	size_t n_routes;
	char **legacy_gateways; /* addresses where route tls: none is allowed besides loopback */
	size_t n_legacy_gateways;
	unsigned retry_initial; /* seconds, default 300 */
	unsigned retry_max;     /* seconds, default 14400 */
	unsigned give_up;       /* seconds, default 432000 (5 days) */
	char **dns_servers;     /* as written (cfg_dns_server_parse); none: /etc/resolv.conf */
	size_t n_dns_servers;
	uint16_t mx_port; /* MX deliveries, default 25 (other ports: tests) */
	char *mx_ca;      /* absolute path, or NULL for the system store (MX deliveries) */
};

struct config {
	char *path;     /* absolute path of the file */
	char *dir;      /* its folder */
	char *hostname; /* default: gethostname() */
	char **domains; /* lower-case */
	size_t n_domains;
	char *data_dir;       /* absolute; default "<dir>/data" */
	enum cfg_store store; /* default sqlite */
	char *ca_dir;         /* absolute, or NULL when not written (see cfg_ca_dir) */
	struct {
		char *key_file;   /* absolute path of the KEK, outside data_dir, or NULL */
		char *credential; /* systemd credential name holding the KEK, or NULL */
	} encryption;
	struct {
		char *certificate; /* PEM chain, required */
		char *key;         /* PEM key, required */
		char *client_ca;   /* required when a listener asks for client certificates */
		char *crl;         /* optional */
		char *peer_ca;     /* optional: the CA of the organisation's own servers */
		enum cfg_tls_version min_version;               /* default 1.2 */
		enum cfg_no_eku client_certificate_without_eku; /* default refuse */
	} tls;
	struct cfg_listener *listeners;
	size_t n_listeners;
	struct {
		bool require_client_certificate;
		bool channel_binding; /* offer SCRAM-SHA-256-PLUS; default false */
		enum cfg_disabled_mail disabled_user_mail; /* default refuse */
		char **admins; /* IMAP administrators (SETQUOTA), lower-case addresses */
		size_t n_admins;
	} auth;
	struct {
		char **allow_from; /* networks; none written: loopback only */
		size_t n_allow_from;
		char **allow_certificates; /* certificate identities (lower-case addresses) */
		size_t n_allow_certificates;
	} metrics;
	struct {
		bool enabled;            /* default true */
		unsigned retention_days; /* 0: for ever; default 2190 */
	} audit;
	struct cfg_relay relay;
	struct cfg_limits limits;
};

/* Collected errors, each one line "file:line: key: message". */
struct cfg_errors {
	char **lines;
	size_t n;
};

/*
 * Loads and validates the file. On success returns 0 and sets *cfg_r (caller frees with
 * cfg_free). On failure returns -EINVAL (or -errno when the file cannot be read), sets
 * *cfg_r to NULL and appends every problem found to errs (caller frees with
 * cfg_errors_free). Checks files: certificate, key, client_ca and crl must be readable.
 */
int cfg_load(const char *path, struct config **cfg_r, struct cfg_errors *errs);
/* CFG_LOAD_NO_FILE_CHECKS: paths are resolved but not opened. For sealctl, which creates
 * the CA, CRL and server certificate that the configuration names (the server always
 * checks them). */
#define CFG_LOAD_NO_FILE_CHECKS 1u
int cfg_load_flags(const char *path, unsigned flags, struct config **cfg_r,
                   struct cfg_errors *errs);
void cfg_free(struct config *cfg);
/* The keys whose values differ between a and b, comma-separated ("limits.connections,
 * listeners[1].port"; a list whose length changed is named alone): a new string, "" when
 * none differs. */
char *cfg_diff(const struct config *a, const struct config *b);
/* Whether net is a numeric address or address/prefix (CIDR), and whether the numeric
 * address ip lies in it. */
bool cfg_net_valid(const char *net);
bool cfg_net_match(const char *net, const char *ip);
/* May a client at ip, with the verified certificate identity cert_identity (NULL: none),
 * read /metrics? metrics.allow_from (loopback when not written) or
 * metrics.allow_certificates. */
bool cfg_metrics_allowed(const struct config *cfg, const char *ip, const char *cert_identity);
void cfg_errors_free(struct cfg_errors *errs);

/* True when address (any case) is one of auth.admins. */
bool cfg_is_admin(const struct config *cfg, const char *address);
/* True when domain (any case) is one of cfg->domains. */
bool cfg_is_local_domain(const struct config *cfg, const char *domain, size_t len);

const char *
cfg_protocol_name(enum cfg_protocol p); /* "submission", "smtp", "imap", "pop3", "https" */

/* True when no client certificate can make a session on the smtp listener l an
 * organisation server (neither l->peers nor tls.peer_ca is set): local senders are then
 * refused there. sealmaild warns about it in --check and at start. */
bool cfg_listener_without_peers(const struct config *cfg, const struct cfg_listener *l);

/* Where sealctl keeps the client CA when ca_dir is not written. */
#define CFG_CA_DIR_DEFAULT "/etc/sealmail/ca"

/*
 * The folder of the client CA's key and serial state, for sealctl (and the warnings of
 * `sealmaild --check`; the running server never looks there): ca_dir when written; else
 * data_dir/ca when a CA made before ca_dir existed is there (its ca.key exists); else
 * CFG_CA_DIR_DEFAULT. A new string. *warning_r is a new one-line text (no "sealctl:"
 * prefix) when the folder lies where sealmaild can write, i.e. inside data_dir, saying how
 * to move it; else NULL.
 */
char *cfg_ca_dir(const struct config *cfg, char **warning_r);

/* Writes the reference documentation of every key (Markdown) to fp. */
void cfg_print_reference(FILE *fp);
/* The same as a manual page, sealmail.yaml(5), with its date and version. */
void cfg_print_manpage(FILE *fp, const char *date, const char *version);

/* ----- Added with the loader (config.c). ----- */

/*
 * Error lines name keys by path, list items counted from 0 ("listeners[0].port"). Problems
 * that belong to no key use "(file)" (unreadable, empty, not a mapping, too many errors)
 * or "(syntax)" (YAML syntax, with the line libyaml reports).
 */

/* Writes every line of errs to fp, one per line. */
void cfg_errors_print(const struct cfg_errors *errs, FILE *fp);

/*
 * The route for a recipient domain (any case, trailing dot ignored): the route whose domain
 * is equal (no subdomain matching), else the "*" route, else NULL (use MX hosts, tls
 * verify). Borrowed from cfg.
 */
const struct cfg_route *cfg_route_find(const struct config *cfg, const char *domain, size_t len);

/* One relay.dns_servers entry. */
struct cfg_dns_server {
	int family;             /* AF_INET or AF_INET6 */
	unsigned char addr[16]; /* network byte order; the first 4 bytes for AF_INET */
	uint16_t port;          /* 53 unless written */
};

/*
 * Parses a relay.dns_servers entry: "IP", "IPv4:PORT", "[IPv6]" or "[IPv6]:PORT" (an IPv6
 * address with a port needs the brackets: "::1:53" is an address). Numeric only: the
 * resolver cannot need a resolver to be found. 0, or -EINVAL with *reason_r (static text
 * that completes "'<entry>' ...").
 */
int cfg_dns_server_parse(const char *s, struct cfg_dns_server *r, const char **reason_r);

/* Names as written in the file: "implicit"/"starttls", "none"/"optional"/"required",
 * "verify"/"encrypt"/"none". */
const char *cfg_tls_mode_name(enum cfg_tls_mode m);
const char *cfg_client_cert_name(enum cfg_client_cert m);
const char *cfg_route_tls_name(enum cfg_route_tls m);
/* The backend name store_options.backend takes ("sqlite"). */
const char *cfg_store_name(enum cfg_store m);
/* "none", "smtp", "imap", "pop3". */
const char *cfg_speaks_name(enum cfg_speaks m);

#endif
