/*
 * The peer classification rule (server/conn_peer.h), table-driven over the facts a
 * certificate gives and the listener's configuration.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "server/conn_peer.h"

static char *peers[] = {"mx2.corp.test", "mx3.corp.test"};

struct row {
	const char *what;
	enum cfg_protocol proto;
	bool listed_peers; /* listener.peers = peers */
	bool peer_ca;      /* tls.peer_ca set */
	struct conn_peer_facts f;
	enum conn_peer_kind want;
	const char *want_name;
};

static const char *const mx2[] = {"mx2.corp.test"};
static const char *const two[] = {"mail.corp.test", "mx3.corp.test"};
static const char *const other[] = {"evil.test"};

static const struct row rows[] = {
    {"no certificate", CFG_PROTO_SMTP, true, false, {.verified = false}, CONN_PEER_NONE, NULL},
    {"user certificate",
     CFG_PROTO_SMTP,
     true,
     false,
     {.verified = true, .user_identity = true, .names = mx2, .n_names = 1},
     CONN_PEER_USER,
     NULL},
    {"user certificate from peer_ca",
     CFG_PROTO_SMTP,
     false,
     true,
     {.verified = true, .user_identity = true, .from_peer_ca = true},
     CONN_PEER_USER,
     NULL},
    {"listed",
     CFG_PROTO_SMTP,
     true,
     false,
     {.verified = true, .names = mx2, .n_names = 1},
     CONN_PEER_SERVER,
     "mx2.corp.test"},
    {"second name listed",
     CFG_PROTO_SMTP,
     true,
     false,
     {.verified = true, .names = two, .n_names = 2},
     CONN_PEER_SERVER,
     "mx3.corp.test"},
    {"not listed",
     CFG_PROTO_SMTP,
     true,
     false,
     {.verified = true, .names = other, .n_names = 1},
     CONN_PEER_OTHER,
     NULL},
    {"no names", CFG_PROTO_SMTP, true, false, {.verified = true}, CONN_PEER_OTHER, NULL},
    {"neither peers nor peer_ca",
     CFG_PROTO_SMTP,
     false,
     false,
     {.verified = true, .names = mx2, .n_names = 1},
     CONN_PEER_OTHER,
     NULL},
    {"peer_ca only, from it",
     CFG_PROTO_SMTP,
     false,
     true,
     {.verified = true, .from_peer_ca = true, .names = other, .n_names = 1},
     CONN_PEER_SERVER,
     "evil.test"},
    {"peer_ca only, from the client CA",
     CFG_PROTO_SMTP,
     false,
     true,
     {.verified = true, .names = mx2, .n_names = 1},
     CONN_PEER_OTHER,
     NULL},
    {"both, listed but from the client CA",
     CFG_PROTO_SMTP,
     true,
     true,
     {.verified = true, .names = mx2, .n_names = 1},
     CONN_PEER_OTHER,
     NULL},
    {"both, from peer_ca but not listed",
     CFG_PROTO_SMTP,
     true,
     true,
     {.verified = true, .from_peer_ca = true, .names = other, .n_names = 1},
     CONN_PEER_OTHER,
     NULL},
    {"both, listed and from peer_ca",
     CFG_PROTO_SMTP,
     true,
     true,
     {.verified = true, .from_peer_ca = true, .names = mx2, .n_names = 1},
     CONN_PEER_SERVER,
     "mx2.corp.test"},
    {"server certificate on submission",
     CFG_PROTO_SUBMISSION,
     false,
     true,
     {.verified = true, .from_peer_ca = true, .names = mx2, .n_names = 1},
     CONN_PEER_OTHER,
     NULL},
    {"user certificate on imap",
     CFG_PROTO_IMAP,
     false,
     false,
     {.verified = true, .user_identity = true},
     CONN_PEER_USER,
     NULL},
};

Test(conn_peer, decide)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct config cfg;
		struct cfg_listener l;
		memset(&cfg, 0, sizeof(cfg));
		memset(&l, 0, sizeof(l));
		l.protocol = r->proto;
		if (r->listed_peers) {
			l.peers = peers;
			l.n_peers = 2;
		}
		cfg.tls.peer_ca = r->peer_ca ? "/etc/sealmail/peer-ca.crt" : NULL;
		const char *name = "unset";
		enum conn_peer_kind k = conn_peer_decide(&r->f, &cfg, &l, &name);
		cr_expect_eq(k, r->want, "%s: kind %d, want %d", r->what, (int)k, (int)r->want);
		if (r->want_name == NULL)
			cr_expect_null(name, "%s", r->what);
		else
			cr_expect_str_eq(name, r->want_name, "%s", r->what);
	}
}

Test(conn_peer, warning_rule)
{
	struct config cfg;
	struct cfg_listener l;
	memset(&cfg, 0, sizeof(cfg));
	memset(&l, 0, sizeof(l));
	l.protocol = CFG_PROTO_SMTP;
	cr_expect(cfg_listener_without_peers(&cfg, &l));
	l.protocol = CFG_PROTO_SUBMISSION;
	cr_expect(!cfg_listener_without_peers(&cfg, &l));
	l.protocol = CFG_PROTO_SMTP;
	cfg.tls.peer_ca = "/x";
	cr_expect(!cfg_listener_without_peers(&cfg, &l));
	cfg.tls.peer_ca = NULL;
	l.peers = peers;
	l.n_peers = 1;
	cr_expect(!cfg_listener_without_peers(&cfg, &l));
}
