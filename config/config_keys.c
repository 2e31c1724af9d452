/*
 * Every configuration key, once. The loader walks the YAML file with this table (a key not
 * here is a typo and an error) and docs/configuration.md is generated from it, so the
 * documentation and the behaviour cannot drift apart: defaults are applied by parsing
 * the `def` text exactly as if it had been written in the file.
 */
#include <inttypes.h>
#include <limits.h>
#include <string.h>

#include "config/config.h"
#include "config/config_private.h"

#define C(field)  CFG_SCOPE_CONFIG, offsetof(struct config, field)
#define L(field)  CFG_SCOPE_LISTENER, offsetof(struct cfg_listener, field)
#define R(field)  CFG_SCOPE_ROUTE, offsetof(struct cfg_route, field)
#define SECTION   CFG_TYPE_SECTION, CFG_SCOPE_CONFIG, 0
#define UINT_MAX_ UINT_MAX

static const char *const protocol_values[] = {"submission", "smtp",    "imap", "pop3",
                                              "https",      "gateway", NULL};
static const char *const speaks_values[] = {"none", "smtp", "imap", "pop3", NULL};
static const char *const proxy_protocol_values[] = {"none", "v2", NULL};
static const char *const tls_mode_values[] = {"implicit", "starttls", NULL};
static const char *const client_cert_values[] = {"none", "optional", "required", NULL};
static const char *const cert_login_values[] = {"none", "preauth", NULL};
static const char *const tls_version_values[] = {"1.2", "1.3", NULL};
static const char *const route_tls_values[] = {"verify", "encrypt", "none", NULL};
static const char *const no_eku_values[] = {"refuse", "allow", NULL};
static const char *const disabled_mail_values[] = {"refuse", "keep", NULL};
static const char *const store_values[] = {"sqlite", NULL};

/* The enums are stored through an int pointer by the loader. */
_Static_assert(sizeof(enum cfg_protocol) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_tls_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_client_cert) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_cert_login) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_tls_version) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_route_tls) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_no_eku) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_store) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_disabled_mail) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_speaks) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_proxy_protocol) == sizeof(int), "enum size");

const struct cfg_key cfg_keys[] = {
    {.path = "hostname",
     .type = CFG_TYPE_HOSTNAME,
     C(hostname),
     .def_doc = "the machine's host name (gethostname)",
     .doc = "The name this server gives in greetings, EHLO and Received: lines."},
    {.path = "domains",
     .type = CFG_TYPE_DOMAINS,
     C(domains),
     .count_offset = offsetof(struct config, n_domains),
     .required = true,
     .doc = "Mail for these domains is delivered into the store; mail for any other domain "
            "is relayed. Lower-cased when loaded. Use the A-label (xn--) form for "
            "internationalised names."},
    {.path = "data_dir",
     .type = CFG_TYPE_DIR,
     C(data_dir),
     .def = "data",
     .doc = "Folder of the mail database (mail.db) and the spool. sealmaild must be able to "
            "write it; created 0700 when missing. The client CA's key does not belong here "
            "(see ca_dir)."},
    {.path = "store",
     .type = CFG_TYPE_ENUM,
     C(store),
     .values = store_values,
     .def = "sqlite",
     .doc = "The store backend: sqlite, the mail database data_dir/mail.db (docs/storage.md). "
            "sealmaild and sealctl open the store with it. Other backends of the code (in "
            "memory, fault injecting) are for tests and cannot be chosen here."},
    /* Top level, beside data_dir, not under tls: it is a folder only sealctl uses, and
     * tls: holds what the server reads. */
    {.path = "ca_dir",
     .type = CFG_TYPE_DIR,
     C(ca_dir),
     .def_doc = "`" CFG_CA_DIR_DEFAULT "`; but when a CA made by an older sealctl is "
                "still in data_dir/ca (its ca.key exists), that one, with a warning from "
                "sealctl and `sealmaild --check`",
     .doc = "Folder where sealctl keeps the built-in client CA: its private key (ca.key), "
            "its certificate and its lock; created 0700. Only sealctl reads it: sealmaild "
            "never opens it and needs only tls.client_ca and tls.crl, which sealctl "
            "writes. Keep it out of data_dir and out of reach of the user sealmaild runs "
            "as: whoever reads ca.key can issue a certificate for any address."},

    {.path = "encryption",
     SECTION,
     .doc = "Encryption at rest of the store (docs/encryption.md): with a key, mail.db, its "
            "WAL, spool files and backups are sealed with AES-256-GCM under a data key "
            "that data_dir/store.key keeps wrapped by this key. Set at most one of "
            "key_file and credential. A new store is created encrypted; an existing "
            "plaintext one is converted with `sealctl store encrypt`."},
    {.path = "encryption.key_file",
     .type = CFG_TYPE_FILE,
     C(encryption.key_file),
     .doc = "File holding the key-encryption key: 32 bytes, or 64 hex digits (`sealctl "
            "store genkey PATH` makes one). It must lie outside data_dir (a copy of "
            "data_dir must not carry its key) and be readable by its owner only. Without "
            "it sealmaild does not start on an encrypted store."},
    {.path = "encryption.credential",
     .type = CFG_TYPE_HOSTNAME,
     C(encryption.credential),
     .doc = "Name of a systemd credential holding the key-encryption key, read from "
            "$CREDENTIALS_DIRECTORY/NAME (LoadCredential= or LoadCredentialEncrypted=, "
            "which can seal it to the TPM: docs/encryption.md). Letters, digits, '-' and "
            "'.'."},

    {.path = "tls", SECTION, .required = true, .doc = "The server's TLS credentials and policy."},
    {.path = "tls.certificate",
     .type = CFG_TYPE_FILE,
     C(tls.certificate),
     .required = true,
     .doc = "PEM file with the server certificate followed by its chain. Reloaded on SIGHUP."},
    {.path = "tls.key",
     .type = CFG_TYPE_FILE,
     C(tls.key),
     .required = true,
     .doc = "PEM file with the private key of tls.certificate. Reloaded on SIGHUP."},
    {.path = "tls.client_ca",
     .type = CFG_TYPE_FILE,
     C(tls.client_ca),
     .doc = "PEM file with the CA certificates that may sign client certificates. Required "
            "when a listener sets client_certificate to optional or required, or when "
            "auth.require_client_certificate is true."},
    {.path = "tls.crl",
     .type = CFG_TYPE_FILE,
     C(tls.crl),
     .doc = "PEM file with the certificate revocation list of tls.client_ca. Reloaded on "
            "SIGHUP. Without it revoked client certificates are not detected."},
    {.path = "tls.peer_ca",
     .type = CFG_TYPE_FILE,
     C(tls.peer_ca),
     .doc = "PEM file with the CA certificates of the organisation's own mail servers, for "
            "organisations whose servers have certificates from a PKI of their own. Such "
            "certificates are then accepted as client certificates (with clientAuth in "
            "their extended key usage), only as servers: on an smtp listener a certificate "
            "from this CA without an e-mail identity makes the session an organisation "
            "server (see listeners[].peers), and on no listener does it log in a user. "
            "Not the same CA as tls.client_ca. tls.crl does not cover it. Reloaded on "
            "SIGHUP."},
    {.path = "tls.min_version",
     .type = CFG_TYPE_ENUM,
     C(tls.min_version),
     .values = tls_version_values,
     .def = "1.2",
     .doc = "The oldest TLS version accepted. Quote it in YAML (\"1.3\")."},
    {.path = "tls.client_certificate_without_eku",
     .type = CFG_TYPE_ENUM,
     C(tls.client_certificate_without_eku),
     .values = no_eku_values,
     .def = "refuse",
     .doc = "A client certificate is accepted only when its extended key usage lists "
            "clientAuth (1.3.6.1.5.5.7.3.2); one whose extended key usage lists other "
            "purposes only (a server certificate) is always refused. This decides about "
            "a certificate with no extended key usage at all: refuse, or allow it as a "
            "client certificate (for a CA that issues such certificates). Reloaded on "
            "SIGHUP."},

    {.path = "listeners",
     .type = CFG_TYPE_LIST,
     C(listeners),
     .count_offset = offsetof(struct config, n_listeners),
     .elem_size = sizeof(struct cfg_listener),
     .elem_line_offset = offsetof(struct cfg_listener, line),
     .required = true,
     .doc = "The sockets the server accepts connections on, at least one. Every listener is "
            "TLS: there is no plaintext service. Two listeners may not share an address and "
            "port."},
    {.path = "listeners[].protocol",
     .type = CFG_TYPE_ENUM,
     L(protocol),
     .values = protocol_values,
     .required = true,
     .doc = "What the listener speaks: submission (mail from users), smtp (mail from peer "
            "servers), imap, pop3, https (client autoconfiguration and /healthz, "
            "docs/https.md; tls: implicit only), or gateway (TLS in front of an older "
            "plaintext mail server given by backend, docs/gateway.md)."},
    {.path = "listeners[].address",
     .type = CFG_TYPE_ADDRESS,
     L(address),
     .required = true,
     .doc = "Numeric IPv4 or IPv6 address to bind (0.0.0.0 or :: for every address). Host "
            "names are not accepted."},
    {.path = "listeners[].port",
     .type = CFG_TYPE_PORT,
     L(port),
     .min = 0,
     .max = 65535,
     .required = true,
     .doc = "TCP port. 0 lets the kernel pick a free port (for tests); the port is logged."},
    {.path = "listeners[].tls",
     .type = CFG_TYPE_ENUM,
     L(tls),
     .values = tls_mode_values,
     .required = true,
     .doc = "implicit: TLS from the first byte (465, 993, 995). starttls: the client must "
            "send STARTTLS (STLS in POP3) before anything else is accepted (587, 143, 110, "
            "25, never https). There is no `none`."},
    {.path = "listeners[].client_certificate",
     .type = CFG_TYPE_ENUM,
     L(client_certificate),
     .values = client_cert_values,
     .def = "none",
     .doc = "none: no certificate is asked for. optional: asked for and verified against "
            "tls.client_ca when sent. required: the handshake fails without a valid one. Apple "
            "Mail and Outlook cannot send client certificates: give them a listener without "
            "required."},
    {.path = "listeners[].certificate_login",
     .type = CFG_TYPE_ENUM,
     L(certificate_login),
     .values = cert_login_values,
     .def = "none",
     .doc = "none: a certificate never logs in by itself (SASL EXTERNAL is still offered). "
            "preauth: a verified certificate is the login (IMAP greets with PREAUTH, "
            "submission takes the sender from it). Needs client_certificate optional or "
            "required."},
    {.path = "listeners[].peers",
     .type = CFG_TYPE_DOMAINS,
     L(peers),
     .count_offset = offsetof(struct cfg_listener, n_peers),
     .def_doc = "none",
     .doc = "smtp listeners only: the host names of the organisation's servers that may "
            "send mail from a local domain to this listener. A session is an organisation "
            "server when its verified client certificate carries no e-mail identity, names "
            "one of these in a subjectAltName dNSName (or in its CN when it has no "
            "subjectAltName; exact names, no wildcards), and, when tls.peer_ca is set, "
            "comes from that CA. Without peers, any such certificate from tls.peer_ca "
            "qualifies; with neither, none does. Everyone else may still send from other "
            "domains and the null sender (bounces), but MAIL FROM a local domain is "
            "refused (550 5.7.1), and a user's certificate is refused outright (554 "
            "5.7.1). Needs client_certificate optional or required."},
    {.path = "listeners[].max_connections",
     .type = CFG_TYPE_UINT,
     L(max_connections),
     .min = 0,
     .max = UINT_MAX_,
     .def = "0",
     .doc = "Connections this listener accepts at once; 0 means only limits.connections "
            "applies."},
    {.path = "listeners[].backend",
     SECTION,
     .doc = "gateway listeners only, and required there: the plaintext server the decrypted "
            "stream goes to, as { host: ..., port: ... }."},
    {.path = "listeners[].backend.host",
     .type = CFG_TYPE_HOST,
     L(backend_host),
     .doc = "Host name or numeric address of the backend: loopback (127.0.0.0/8, ::1, "
            "localhost) or a host listed in relay.legacy_gateways, because the stream "
            "crosses the network in plaintext from here on. Required with backend."},
    {.path = "listeners[].backend.port",
     .type = CFG_TYPE_PORT,
     L(backend_port),
     .min = 1,
     .max = 65535,
     .doc = "TCP port of the backend. Required with backend."},
    {.path = "listeners[].speaks",
     .type = CFG_TYPE_ENUM,
     L(speaks),
     .values = speaks_values,
     .def = "none",
     .doc = "gateway listeners only: the protocol of the backend. With tls: starttls the "
            "gateway answers the greeting and the STARTTLS (STLS) exchange of this "
            "protocol itself, offering nothing but STARTTLS before TLS, and needs smtp, "
            "imap or pop3 here. With tls: implicit it only lets the gateway say goodbye "
            "in the protocol's words when the backend cannot be reached; none relays "
            "bytes only."},
    {.path = "listeners[].proxy_protocol",
     .type = CFG_TYPE_ENUM,
     L(proxy_protocol),
     .values = proxy_protocol_values,
     .def = "none",
     .doc = "gateway listeners only: v2 sends the backend a PROXY protocol version 2 "
            "header first (the client's address and port, the TLS version and cipher, "
            "whether a client certificate was verified, its common name and subject; "
            "docs/gateway.md), so the backend can log and judge the real client. The "
            "backend must expect it."},

    {.path = "auth", SECTION, .doc = "Login policy."},
    {.path = "auth.require_client_certificate",
     .type = CFG_TYPE_BOOL,
     C(auth.require_client_certificate),
     .def = "false",
     .doc = "true: every user needs a valid client certificate as well as the password, on "
            "every listener. false: per-user policy (sealctl user require-cert)."},
    {.path = "auth.channel_binding",
     .type = CFG_TYPE_BOOL,
     C(auth.channel_binding),
     .def = "false",
     .doc = "true: offer SCRAM-SHA-256-PLUS (SCRAM bound to the TLS session by "
            "tls-exporter, RFC 9266) besides SCRAM-SHA-256 in SMTP AUTH, IMAP CAPABILITY "
            "and POP3 CAPA. false: only "
            "SCRAM-SHA-256 is offered and a request for the -PLUS variant is refused as an "
            "unknown mechanism. Off by default because some clients (neomutt) pick -PLUS "
            "whenever it is offered and then fail when their TLS library cannot give the "
            "binding."},
    {.path = "auth.disabled_user_mail",
     .type = CFG_TYPE_ENUM,
     C(auth.disabled_user_mail),
     .values = disabled_mail_values,
     .def = "refuse",
     .doc = "Mail for a user disabled with sealctl user disable: refuse it at RCPT TO with "
            "550 5.2.1 (the sender is told at once), or keep delivering it to the mailbox "
            "(the user cannot log in to read it until enabled again)."},
    {.path = "auth.admins",
     .type = CFG_TYPE_MAIL_ADDRESSES,
     C(auth.admins),
     .count_offset = offsetof(struct config, auth.n_admins),
     .doc = "Users who are IMAP administrators: they may read and set the quota of any user "
            "with GETQUOTA and SETQUOTA (RFC 9208), naming another user's quota root by "
            "that user's address. Nobody else may use SETQUOTA. Lower-cased when loaded; "
            "an address that is no user grants nothing. Default: none."},

    {.path = "metrics",
     SECTION,
     .doc = "Who may read GET /metrics on an https listener (docs/metrics.md). A client is "
            "let in when its address is in allow_from or its verified client certificate "
            "names one of allow_certificates; everyone else gets 403."},
    {.path = "metrics.allow_from",
     .type = CFG_TYPE_NETS,
     C(metrics.allow_from),
     .count_offset = offsetof(struct config, metrics.n_allow_from),
     .def_doc = "loopback only (127.0.0.0/8 and ::1)",
     .doc = "Addresses or networks (address/prefix) whose clients may read /metrics, for "
            "example [127.0.0.1, 10.0.5.0/24]. An IPv4 client connected to an IPv6 listener "
            "(::ffff:a.b.c.d) matches IPv4 networks."},
    {.path = "metrics.allow_certificates",
     .type = CFG_TYPE_MAIL_ADDRESSES,
     C(metrics.allow_certificates),
     .count_offset = offsetof(struct config, metrics.n_allow_certificates),
     .doc = "Identities (the e-mail address a client certificate carries) that may read "
            "/metrics from any address: give the scraper a certificate from the built-in CA "
            "(sealctl cert issue) and list its address here. The listener must ask for "
            "certificates (client_certificate: optional or required). Default: none."},

    {.path = "audit",
     SECTION,
     .doc = "The access audit (docs/audit.md): who read, changed or removed which message, "
            "logins, submissions and administrators' changes, in the store as an "
            "append-only hash chain. Read it with sealctl audit show and check it with "
            "sealctl audit verify."},
    {.path = "audit.enabled",
     .type = CFG_TYPE_BOOL,
     C(audit.enabled),
     .def = "true",
     .doc = "true: every session's accesses and every sealctl change are recorded. false: "
            "nothing new is recorded (what is recorded stays, and still checks). While "
            "records cannot be written (the disk is full or failing and "
            "65536 records wait), sessions that would add one are closed rather than "
            "served unrecorded."},
    {.path = "audit.retention_days",
     .type = CFG_TYPE_UINT,
     C(audit.retention_days),
     .min = 0,
     .max = 36500,
     .def = "2190",
     .doc = "Records older than this many days are removed, oldest first, in an hourly "
            "pass that is itself recorded; the chain keeps checking from the last removed "
            "record's hash. 0 keeps every record. The default is six years, the HIPAA "
            "retention period for compliance documentation."},

    {.path = "relay", SECTION, .doc = "Mail for domains that are not local."},
    {.path = "relay.certificate",
     .type = CFG_TYPE_FILE,
     C(relay.certificate),
     .doc = "PEM certificate (and chain) presented to peer servers that ask for one (mutual "
            "TLS). Needs relay.key."},
    {.path = "relay.key",
     .type = CFG_TYPE_FILE,
     C(relay.key),
     .doc = "PEM private key of relay.certificate. Needs relay.certificate."},
    {.path = "relay.routes",
     .type = CFG_TYPE_LIST,
     C(relay.routes),
     .count_offset = offsetof(struct config, relay.n_routes),
     .elem_size = sizeof(struct cfg_route),
     .elem_line_offset = offsetof(struct cfg_route, line),
     .def_doc = "none: every domain goes to its MX hosts",
     .doc = "Where mail for a domain goes. The route whose domain equals the recipient's "
            "domain wins, then the route for \"*\"; without a match the MX hosts of the "
            "domain are used with tls: verify (see relay.mx_port and relay.mx_ca)."},
    {.path = "relay.routes[].domain",
     .type = CFG_TYPE_ROUTE_DOMAIN,
     R(domain),
     .required = true,
     .doc = "Recipient domain (exact, lower-cased), or \"*\" for every other domain."},
    {.path = "relay.routes[].host",
     .type = CFG_TYPE_HOST,
     R(host),
     .required = true,
     .doc = "Host name or numeric address of the next hop."},
    {.path = "relay.routes[].port",
     .type = CFG_TYPE_PORT,
     R(port),
     .min = 1,
     .max = 65535,
     .def = "25",
     .doc = "TCP port of the next hop."},
    {.path = "relay.routes[].tls",
     .type = CFG_TYPE_ENUM,
     R(tls),
     .values = route_tls_values,
     .def = "verify",
     .doc = "verify: STARTTLS required and the certificate checked against ca (or the "
            "system store) and host. encrypt: STARTTLS required, certificate not checked. "
            "none: plaintext, allowed only to loopback (127.0.0.0/8, ::1, localhost) or a host "
            "in relay.legacy_gateways, and logged as a warning."},
    {.path = "relay.routes[].ca",
     .type = CFG_TYPE_FILE,
     R(ca),
     .def_doc = "the system's trust store",
     .doc = "PEM file with the CA certificates the next hop's certificate must chain to. "
            "Only meaningful with tls: verify."},
    {.path = "relay.legacy_gateways",
     .type = CFG_TYPE_HOSTS,
     C(relay.legacy_gateways),
     .count_offset = offsetof(struct config, relay.n_legacy_gateways),
     .def_doc = "none",
     .doc = "Hosts (names or addresses, as written in routes[].host) besides loopback to "
            "which a route may use tls: none."},
    {.path = "relay.dns_servers",
     .type = CFG_TYPE_DNS_SERVERS,
     C(relay.dns_servers),
     .count_offset = offsetof(struct config, relay.n_dns_servers),
     .def_doc = "the name servers of /etc/resolv.conf",
     .doc = "The DNS servers the relay asks for MX and address records (c-ares, on the "
            "event loop), tried in order. Each is a numeric address with an optional port: "
            "\"192.0.2.53\", \"192.0.2.53:5353\", \"2001:db8::53\" or "
            "\"[2001:db8::53]:5353\" (an IPv6 address with a port needs the brackets). "
            "A query gets 2 seconds, then 4 more, before the delivery is deferred."},
    {.path = "relay.mx_port",
     .type = CFG_TYPE_PORT,
     C(relay.mx_port),
     .min = 1,
     .max = 65535,
     .def = "25",
     .doc = "TCP port of MX hosts (deliveries that no route matches). Mail servers listen "
            "on 25: change it only for tests and unusual setups."},
    {.path = "relay.mx_ca",
     .type = CFG_TYPE_FILE,
     C(relay.mx_ca),
     .def_doc = "the system's trust store",
     .doc = "PEM file with the CA certificates an MX host's certificate must chain to. "
            "Deliveries to MX hosts use tls: verify, and the certificate must name the MX "
            "host (the name in the MX record, not the recipient domain). Set it for a "
            "private network whose mail servers have certificates from an internal CA, "
            "and for tests."},
    {.path = "relay.retry_initial",
     .type = CFG_TYPE_UINT,
     C(relay.retry_initial),
     .min = 1,
     .max = UINT_MAX_,
     .def = "300",
     .doc = "Seconds before the first retry of a deferred message; doubles each retry."},
    {.path = "relay.retry_max",
     .type = CFG_TYPE_UINT,
     C(relay.retry_max),
     .min = 1,
     .max = UINT_MAX_,
     .def = "14400",
     .doc = "Longest wait in seconds between retries. At least relay.retry_initial."},
    {.path = "relay.give_up",
     .type = CFG_TYPE_UINT,
     C(relay.give_up),
     .min = 1,
     .max = UINT_MAX_,
     .def = "432000",
     .doc = "Seconds after which an undelivered message is bounced to its sender (432000 "
            "is 5 days)."},

    {.path = "limits", SECTION, .doc = "Bounds on what a client may use."},
    {.path = "limits.message_size",
     .type = CFG_TYPE_U64,
     C(limits.message_size),
     .min = 1,
     .max = UINT64_MAX,
     .def = "52428800",
     .doc = "Largest message accepted, in bytes (a plain number: 52428800 is 50 MiB). "
            "Announced in the SMTP SIZE extension."},
    {.path = "limits.recipients",
     .type = CFG_TYPE_UINT,
     C(limits.recipients),
     .min = 1,
     .max = UINT_MAX_,
     .def = "100",
     .doc = "Recipients per message."},
    {.path = "limits.connections",
     .type = CFG_TYPE_UINT,
     C(limits.connections),
     .min = 1,
     .max = UINT_MAX_,
     .def = "10000",
     .doc = "Connections open at once over all listeners. Each holds an open file, and the "
            "server needs about 170 more for itself, plus one per listener (the database and "
            "its WAL, spool files, relay connections): at start sealmaild raises its soft "
            "open-file limit (RLIMIT_NOFILE) to the hard limit and logs event=open_files_low "
            "when the total does not fit; `--check` warns against the hard limit in force "
            "where it runs. Raise the hard limit (systemd LimitNOFILE=, ulimit -Hn) or lower "
            "this."},
    {.path = "limits.connections_per_ip",
     .type = CFG_TYPE_UINT,
     C(limits.connections_per_ip),
     .min = 1,
     .max = UINT_MAX_,
     .def = "100",
     .doc = "Connections open at once from one client address."},
    {.path = "limits.line_length",
     .type = CFG_TYPE_UINT,
     C(limits.line_length),
     .min = 1000,
     .max = 16777216,
     .def = "65536",
     .doc = "Longest command line in bytes after login, for SMTP and POP3. At least 1000, "
            "the SMTP text line limit (RFC 5321). IMAP after login takes a line as long as "
            "its whole-command bound (1 MiB: long sequence sets and OR chains need room), "
            "so this does not apply to it."},
    {.path = "limits.line_length_preauth",
     .type = CFG_TYPE_UINT,
     C(limits.line_length_preauth),
     .min = 512,
     .max = 16777216,
     .def = "2048",
     .doc = "Longest command line in bytes before login. At least 512 (RFC 5321) and at most "
            "limits.line_length."},
    {.path = "limits.handshake_timeout",
     .type = CFG_TYPE_UINT,
     C(limits.handshake_timeout),
     .min = 1,
     .max = UINT_MAX_,
     .def = "30",
     .doc = "Seconds a client has to complete the TLS handshake."},
    {.path = "limits.idle_timeout",
     .type = CFG_TYPE_UINT,
     C(limits.idle_timeout),
     .min = 1,
     .max = UINT_MAX_,
     .def = "1800",
     .doc = "Seconds a logged-in client may stay silent (IMAP IDLE included; RFC 9051 asks "
            "for at least 1800)."},
    {.path = "limits.idle_timeout_preauth",
     .type = CFG_TYPE_UINT,
     C(limits.idle_timeout_preauth),
     .min = 1,
     .max = UINT_MAX_,
     .def = "60",
     .doc = "Seconds a client that has not logged in may stay silent."},
    {.path = "limits.session_duration",
     .type = CFG_TYPE_UINT,
     C(limits.session_duration),
     .min = 0,
     .max = UINT_MAX_,
     .def = "0",
     .doc = "Longest SMTP session in seconds; 0 means unlimited."},
    {.path = "limits.commands",
     .type = CFG_TYPE_UINT,
     C(limits.commands),
     .min = 1,
     .max = UINT_MAX_,
     .def = "100",
     .doc = "Commands a client may send before it logs in."},
    {.path = "limits.errors",
     .type = CFG_TYPE_UINT,
     C(limits.errors),
     .min = 1,
     .max = UINT_MAX_,
     .def = "10",
     .doc = "Failed commands (protocol errors, failed logins) after which a session is "
            "closed."},
    {.path = "limits.metadata_size",
     .type = CFG_TYPE_UINT,
     C(limits.metadata_size),
     .min = 1024,
     .max = 65536,
     .def = "16384",
     .doc = "Largest value of one IMAP METADATA annotation (RFC 5464), in bytes. A larger "
            "SETMETADATA value is refused with `NO [METADATA MAXSIZE n]`, before its literal "
            "is sent when it comes as one. At least 1024 (RFC 5464 4.1) and at most 65536, "
            "the bound of an IMAP literal outside APPEND."},
    {.path = "limits.metadata_entries",
     .type = CFG_TYPE_UINT,
     C(limits.metadata_entries),
     .min = 10,
     .max = 100000,
     .def = "256",
     .doc = "IMAP METADATA annotations one user may have in all: server entries and the "
            "entries of every mailbox, /private and /shared together. A SETMETADATA that "
            "would add one past it is refused with `NO [METADATA TOOMANY]`; changing or "
            "removing entries is always allowed. At least 10 (RFC 5464 4.1)."},
    {.path = "limits.gateway_idle_timeout",
     .type = CFG_TYPE_UINT,
     C(limits.gateway_idle_timeout),
     .min = 1,
     .max = UINT_MAX_,
     .def = "1800",
     .doc = "Seconds a gateway session may pass no byte in either direction before it is "
            "closed (after the TLS handshake; before it, limits.handshake_timeout and, for "
            "the STARTTLS exchange, limits.idle_timeout_preauth apply)."},
    {.path = "limits.gateway_session_duration",
     .type = CFG_TYPE_UINT,
     C(limits.gateway_session_duration),
     .min = 0,
     .max = UINT_MAX_,
     .def = "86400",
     .doc = "Longest gateway session in seconds, however busy; 0 means unlimited. A "
            "client certificate is checked again at every CRL reload, so this bounds "
            "sessions for other reasons (a backend that never ends a stream)."},
};

const size_t cfg_n_keys = sizeof(cfg_keys) / sizeof(cfg_keys[0]);

const struct cfg_key *cfg_key_find(const char *path)
{
	for (size_t i = 0; i < cfg_n_keys; i++) {
		if (strcmp(cfg_keys[i].path, path) == 0)
			return &cfg_keys[i];
	}
	return NULL;
}

const char *cfg_key_name(const struct cfg_key *key)
{
	const char *dot = strrchr(key->path, '.');
	return dot != NULL ? dot + 1 : key->path;
}

bool cfg_key_is_child(const struct cfg_key *key, const char *parent)
{
	size_t n = strlen(parent);
	if (n == 0)
		return strchr(key->path, '.') == NULL;
	return strncmp(key->path, parent, n) == 0 && key->path[n] == '.' &&
	       strchr(key->path + n + 1, '.') == NULL;
}

const char *cfg_key_type_doc(const struct cfg_key *key)
{
	switch (key->type) {
	case CFG_TYPE_SECTION:
		return "mapping";
	case CFG_TYPE_LIST:
		return "list of mappings";
	case CFG_TYPE_HOSTNAME:
		return "host name";
	case CFG_TYPE_HOST:
		return "host name or numeric address";
	case CFG_TYPE_ADDRESS:
		return "numeric IPv4 or IPv6 address";
	case CFG_TYPE_DOMAINS:
		return "list of domains";
	case CFG_TYPE_HOSTS:
		return "list of host names or addresses";
	case CFG_TYPE_MAIL_ADDRESSES:
		return "list of e-mail addresses";
	case CFG_TYPE_DNS_SERVERS:
		return "list of numeric addresses, each with an optional port";
	case CFG_TYPE_ROUTE_DOMAIN:
		return "domain or \"*\"";
	case CFG_TYPE_FILE:
		return "path to a readable file (relative to the configuration file's folder)";
	case CFG_TYPE_DIR:
		return "path to a folder (relative to the configuration file's folder)";
	case CFG_TYPE_BOOL:
		return "true or false";
	case CFG_TYPE_UINT:
	case CFG_TYPE_U64:
	case CFG_TYPE_PORT:
		return "whole number";
	case CFG_TYPE_ENUM:
		return "one of";
	case CFG_TYPE_NETS:
		return "list of numeric addresses or networks (address/prefix)";
	}
	return "?";
}

static void print_key(FILE *fp, const struct cfg_key *key)
{
	fprintf(fp, "### `%s`\n\n", key->path);
	fprintf(fp, "- Type: %s", cfg_key_type_doc(key));
	if (key->type == CFG_TYPE_ENUM) {
		for (size_t i = 0; key->values[i] != NULL; i++)
			fprintf(fp, "%s`%s`", i == 0 ? " " : ", ", key->values[i]);
	}
	if (key->type == CFG_TYPE_UINT || key->type == CFG_TYPE_U64 || key->type == CFG_TYPE_PORT)
		fprintf(fp, " from %" PRIu64 " to %" PRIu64, key->min, key->max);
	fprintf(fp, "\n");
	if (key->required)
		fprintf(fp, "- Required\n");
	else if (key->def != NULL)
		fprintf(fp, "- Default: `%s`\n", key->def);
	else if (key->def_doc != NULL)
		fprintf(fp, "- Default: %s\n", key->def_doc);
	else if (key->type != CFG_TYPE_SECTION)
		fprintf(fp, "- Default: not set\n");
	fprintf(fp, "\n%s\n\n", key->doc);
}

void cfg_print_reference(FILE *fp)
{
	fprintf(fp, "# sealmail configuration reference\n\n"
	            "<!-- Generated from config/config_keys.c by sealmail-config-reference "
	            "(`sealmaild --print-config-reference`). Do not edit: change the table and "
	            "regenerate. -->\n\n"
	            "The configuration is one YAML file, given with `-c FILE`. Block and flow "
	            "styles both work. Relative paths are relative to the folder of the file. "
	            "An unknown key is an error, never ignored: `sealmaild -c FILE --check` prints "
	            "every problem as `FILE:LINE: KEY: what is wrong` (list items are counted from "
	            "0, as in `listeners[0].port`).\n\n"
	            "A key written with an empty value (`crl:` or `crl: ~`) counts as not written. "
	            "Numbers are plain decimal numbers without units or quotes.\n\n");
	for (size_t i = 0; i < cfg_n_keys; i++) {
		const struct cfg_key *key = &cfg_keys[i];
		bool top = strchr(key->path, '.') == NULL;
		if (i == 0)
			fprintf(fp, "## Top-level keys\n\n");
		if (top && (key->type == CFG_TYPE_SECTION || key->type == CFG_TYPE_LIST)) {
			fprintf(fp, "## `%s`\n\n%s%s\n\n", key->path, key->doc,
			        key->required ? " Required." : "");
			continue;
		}
		print_key(fp, key);
	}
	fprintf(fp,
	        "## Example\n\n"
	        "```yaml\n"
	        "hostname: mail.corp.example\n"
	        "domains: [corp.example]\n"
	        "data_dir: data\n"
	        "ca_dir: /etc/sealmail/ca\n"
	        "tls:\n"
	        "  certificate: certs/server.crt\n"
	        "  key: certs/server.key\n"
	        "  client_ca: certs/client-ca.crt\n"
	        "  crl: certs/client-ca.crl\n"
	        "  min_version: \"1.2\"\n"
	        "listeners:\n"
	        "  - { protocol: submission, address: 127.0.0.1, port: 465, tls: implicit, "
	        "client_certificate: optional }\n"
	        "  - { protocol: imap, address: 127.0.0.1, port: 993, tls: implicit, "
	        "client_certificate: required, certificate_login: preauth }\n"
	        "  - { protocol: imap, address: 127.0.0.1, port: 143, tls: starttls }\n"
	        "  - { protocol: smtp, address: 127.0.0.1, port: 25, tls: starttls, "
	        "client_certificate: required }\n"
	        "relay:\n"
	        "  routes:\n"
	        "    - { domain: partner.example, host: mx.partner.example, tls: verify, "
	        "ca: certs/partner-ca.crt }\n"
	        "    - { domain: legacy.corp.example, host: 127.0.0.1, port: 2525, tls: none }\n"
	        "limits: { message_size: 52428800, recipients: 100, connections: 10000 }\n"
	        "```\n");
}

const char *cfg_protocol_name(enum cfg_protocol p)
{
	return (unsigned)p <= CFG_PROTO_GATEWAY ? protocol_values[p] : "?";
}

const char *cfg_tls_mode_name(enum cfg_tls_mode m)
{
	return (unsigned)m < 2 ? tls_mode_values[m] : "?";
}

const char *cfg_client_cert_name(enum cfg_client_cert m)
{
	return (unsigned)m < 3 ? client_cert_values[m] : "?";
}

const char *cfg_store_name(enum cfg_store m)
{
	return (unsigned)m < 1 ? store_values[m] : "?";
}

const char *cfg_speaks_name(enum cfg_speaks m)
{
	return (unsigned)m < 4 ? speaks_values[m] : "?";
}

const char *cfg_route_tls_name(enum cfg_route_tls m)
{
	return (unsigned)m < 3 ? route_tls_values[m] : "?";
}
