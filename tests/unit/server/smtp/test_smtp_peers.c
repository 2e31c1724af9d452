/*
 * Who may send what on an smtp listener: a user's certificate is refused outright, a
 * local-domain sender only from an organisation server, and the null sender and foreign
 * senders from anyone. Against the fake conn, whose peer kind the tests set.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "server/smtp/smtp.h"

/* tests/unit/support/conn_fake.c */
struct conn *fake_conn_open(const struct proto_handler *h, const struct config *cfg,
                            const struct cfg_listener *l, bool tls);
void fake_conn_line(struct conn *c, const char *line);
void fake_conn_tls_ready(struct conn *c);
const char *fake_conn_output(struct conn *c);
void fake_conn_clear_output(struct conn *c);
bool fake_conn_closed(const struct conn *c);
void fake_conn_free(struct conn *c);
void fake_conn_set_peer(struct conn *c, enum conn_peer_kind kind, const char *name);
void fake_conn_next_peer(enum conn_peer_kind kind, const char *name);

#define REFUSED_LOCAL                                                                              \
	"550 5.7.1 Mail from a local domain is accepted here only from the organisation's "        \
	"servers\r\n"
#define REFUSED_CERT "554 5.7.1 A user certificate is not accepted on this port; use submission\r\n"

static struct config cfg;
static struct cfg_listener listener;
static char *domains[] = {"corp.test", "other.corp.test"};

static void setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	memset(&listener, 0, sizeof(listener));
	cfg.hostname = "mail.test";
	cfg.domains = domains;
	cfg.n_domains = 2;
	cfg.limits.message_size = 1000;
	cfg.limits.commands = 100;
	cfg.limits.errors = 10;
	listener.protocol = CFG_PROTO_SMTP;
	listener.tls = CFG_TLS_STARTTLS;
}

/* After STARTTLS, the handshake (peer kind) and EHLO. */
static struct conn *open_peer(enum conn_peer_kind kind, const char *name)
{
	struct conn *c = fake_conn_open(&smtp_proto_handler, &cfg, &listener, false);
	fake_conn_line(c, "STARTTLS");
	fake_conn_set_peer(c, kind, name);
	fake_conn_tls_ready(c);
	fake_conn_line(c, "EHLO peer.test");
	fake_conn_clear_output(c);
	return c;
}

static void expect_mail(enum conn_peer_kind kind, const char *from, const char *reply)
{
	struct conn *c = open_peer(kind, kind == CONN_PEER_SERVER ? "mx2.corp.test" : NULL);
	fake_conn_line(c, from);
	cr_expect_str_eq(fake_conn_output(c), reply, "kind %d: %s", (int)kind, from);
	fake_conn_free(c);
}

Test(smtp_peers, local_sender_only_from_an_organisation_server, .init = setup)
{
	const enum conn_peer_kind not_server[] = {CONN_PEER_NONE, CONN_PEER_OTHER};
	for (size_t i = 0; i < 2; i++) {
		expect_mail(not_server[i], "MAIL FROM:<demo@corp.test>", REFUSED_LOCAL);
		expect_mail(not_server[i], "MAIL FROM:<Demo@CORP.Test>", REFUSED_LOCAL);
		expect_mail(not_server[i], "MAIL FROM:<x@other.corp.test>", REFUSED_LOCAL);
		/* Bounces and mail from outside still arrive. */
		expect_mail(not_server[i], "MAIL FROM:<>", "250 2.1.0 Ok\r\n");
		expect_mail(not_server[i], "MAIL FROM:<a@partner.test>", "250 2.1.0 Ok\r\n");
		expect_mail(not_server[i], "MAIL FROM:<a@sub.corp.test>", "250 2.1.0 Ok\r\n");
	}
	expect_mail(CONN_PEER_SERVER, "MAIL FROM:<demo@corp.test>", "250 2.1.0 Ok\r\n");
	expect_mail(CONN_PEER_SERVER, "MAIL FROM:<>", "250 2.1.0 Ok\r\n");
	expect_mail(CONN_PEER_SERVER, "MAIL FROM:<a@partner.test>", "250 2.1.0 Ok\r\n");
}

Test(smtp_peers, user_certificate_after_starttls_is_refused_until_quit, .init = setup)
{
	struct conn *c = open_peer(CONN_PEER_USER, NULL);
	/* open_peer's EHLO was refused too; its output was cleared. */
	fake_conn_line(c, "EHLO peer.test");
	fake_conn_line(c, "MAIL FROM:<>");
	cr_expect_str_eq(fake_conn_output(c), REFUSED_CERT REFUSED_CERT);
	cr_expect(!fake_conn_closed(c));
	fake_conn_clear_output(c);
	fake_conn_line(c, "QUIT");
	cr_expect_str_eq(fake_conn_output(c), "221 2.0.0 Bye\r\n");
	cr_expect(fake_conn_closed(c));
	fake_conn_free(c);
}

Test(smtp_peers, user_certificate_gets_a_554_greeting_and_the_error_limit, .init = setup)
{
	listener.tls = CFG_TLS_IMPLICIT;
	fake_conn_next_peer(CONN_PEER_USER, NULL);
	struct conn *c = fake_conn_open(&smtp_proto_handler, &cfg, &listener, true);
	cr_expect_str_eq(fake_conn_output(c), "554 5.7.1 mail.test A user certificate is not "
	                                      "accepted on this port; use submission\r\n");
	for (unsigned i = 0; i < cfg.limits.errors && !fake_conn_closed(c); i++)
		fake_conn_line(c, "EHLO peer.test");
	cr_expect(fake_conn_closed(c));
	cr_expect_not_null(strstr(fake_conn_output(c), "421 4.7.0 Too many errors"));
	fake_conn_free(c);
}

Test(smtp_peers, submission_takes_user_certificates, .init = setup)
{
	listener.protocol = CFG_PROTO_SUBMISSION;
	listener.tls = CFG_TLS_IMPLICIT;
	fake_conn_next_peer(CONN_PEER_USER, NULL);
	struct conn *c = fake_conn_open(&smtp_proto_handler, &cfg, &listener, true);
	cr_expect_str_eq(fake_conn_output(c), "220 mail.test ESMTP sealmail\r\n");
	fake_conn_free(c);
}
