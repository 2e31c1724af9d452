/*
 * Client autoconfiguration documents, built from the configured listeners and hostname:
 *
 * - Thunderbird's autoconfig (clientConfig version 1.1): GET /mail/config-v1.1.xml and
 *   /.well-known/autoconfig/mail/config-v1.1.xml, optionally ?emailaddress=ADDRESS.
 * - Outlook's autodiscover (the POX "outlook" schema 2006a): POST of a request naming
 *   <EMailAddress>, or GET with ?emailaddress=ADDRESS.
 *
 * Decisions worth knowing:
 * - Every value written into XML is escaped (https_xml_escape), the client's address
 *   first among them; an address that is not valid is 400, one outside the configured
 *   domains 404 (this server has nothing to say about it).
 * - Servers are listed in the order clients should try them: implicit TLS before
 *   STARTTLS (RFC 8314), and listeners that require a client certificate last, since
 *   neither document can ask the client for one. Outgoing mail is the submission
 *   listeners only, never the server-to-server port.
 * - Authentication is password-cleartext (PLAIN/LOGIN inside TLS) in autoconfig; the
 *   other values it has (CRAM-MD5, NTLM, GSSAPI, OAuth2) are mechanisms sealmail does not
 *   offer, and SCRAM has no name there.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "server/https/https_private.h"

#define AUTOCONFIG_TYPE  "application/xml; charset=utf-8"
#define ADDRESS_MAX      254
#define NO_STORE_HEADERS "Cache-Control: no-store\r\n"

/* One server a client may use: the listeners in the order described above. */
size_t https_client_servers(struct conn *c, enum cfg_protocol proto, struct https_server *out,
                            size_t max)
{
	const struct config *cfg = conn_config(c);
	size_t n = 0;
	for (int pass = 0; pass < 4; pass++) {
		bool want_required = pass >= 2;
		enum cfg_tls_mode want_tls = (pass % 2) == 0 ? CFG_TLS_IMPLICIT : CFG_TLS_STARTTLS;
		for (size_t i = 0; i < cfg->n_listeners && n < max; i++) {
			const struct cfg_listener *l = &cfg->listeners[i];
			bool required = l->client_certificate == CFG_CLIENT_CERT_REQUIRED;
			if (l->protocol != proto || l->tls != want_tls || required != want_required)
				continue;
			uint16_t port = conn_listener_port(c, l);
			bool dup = port == 0;
			for (size_t j = 0; j < n && !dup; j++)
				dup = out[j].port == port;
			if (dup)
				continue;
			out[n].l = l;
			out[n].port = port;
			n++;
		}
	}
	return n;
}

static int ac_put(struct buf *b, const char *s)
{
	return buf_append_str(b, s);
}

static int ac_put_escaped(struct buf *b, const char *s)
{
	return https_xml_escape(b, s, strlen(s));
}

/* ---- Thunderbird ---- */

static int tb_server(struct buf *b, const char *element, const char *type, const char *host,
                     const struct https_server *sv)
{
	int r = buf_printf(b, "    <%s type=\"%s\">\n      <hostname>", element, type);
	if (r == 0)
		r = ac_put_escaped(b, host);
	if (r == 0)
		r = buf_printf(
		    b,
		    "</hostname>\n      <port>%u</port>\n      <socketType>%s</socketType>\n"
		    "      <username>%%EMAILADDRESS%%</username>\n"
		    "      <authentication>password-cleartext</authentication>\n    </%s>\n",
		    sv->port, sv->l->tls == CFG_TLS_IMPLICIT ? "SSL" : "STARTTLS", element);
	return r;
}

static int tb_document(struct conn *c, const char *domain, struct buf *b)
{
	const struct config *cfg = conn_config(c);
	struct https_server sv[16];
	int r = ac_put(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	                  "<clientConfig version=\"1.1\">\n  <emailProvider id=\"");
	if (r == 0)
		r = ac_put_escaped(b, domain);
	if (r == 0)
		r = ac_put(b, "\">\n");
	for (size_t i = 0; i < cfg->n_domains && r == 0; i++) {
		r = ac_put(b, "    <domain>");
		if (r == 0)
			r = ac_put_escaped(b, cfg->domains[i]);
		if (r == 0)
			r = ac_put(b, "</domain>\n");
	}
	const char *names[] = {"displayName", "displayShortName"};
	for (size_t i = 0; i < 2 && r == 0; i++) {
		r = buf_printf(b, "    <%s>", names[i]);
		if (r == 0)
			r = ac_put_escaped(b, domain);
		if (r == 0)
			r = buf_printf(b, "</%s>\n", names[i]);
	}
	size_t n = https_client_servers(c, CFG_PROTO_IMAP, sv, 16);
	for (size_t i = 0; i < n && r == 0; i++)
		r = tb_server(b, "incomingServer", "imap", cfg->hostname, &sv[i]);
	n = https_client_servers(c, CFG_PROTO_POP3, sv, 16);
	for (size_t i = 0; i < n && r == 0; i++)
		r = tb_server(b, "incomingServer", "pop3", cfg->hostname, &sv[i]);
	n = https_client_servers(c, CFG_PROTO_SUBMISSION, sv, 16);
	for (size_t i = 0; i < n && r == 0; i++)
		r = tb_server(b, "outgoingServer", "smtp", cfg->hostname, &sv[i]);
	if (r == 0)
		r = ac_put(b, "  </emailProvider>\n</clientConfig>\n");
	return r;
}

/* An address from the client: 1 when it is valid and in a configured domain, else the
 * status to answer, negated. */
static int ac_checked_address(struct conn *c, const char *addr)
{
	if (!https_address_valid(addr, strlen(addr)))
		return -400;
	const char *at = strrchr(addr, '@');
	if (!cfg_is_local_domain(conn_config(c), at + 1, strlen(at + 1)))
		return -404;
	return 1;
}

static int ac_query_address(struct conn *c, const char *query, char *out, size_t outlen)
{
	int r = https_query_param(query, "emailaddress", out, outlen);
	if (r < 0)
		return -400;
	if (r == 0 || out[0] == '\0')
		return 0;
	return ac_checked_address(c, out);
}

static void ac_send(struct https_session *s, int r, struct buf *b)
{
	if (r < 0)
		https_reply_error(s, 500, false);
	else
		https_reply(s, 200, AUTOCONFIG_TYPE, b->data, b->len, NO_STORE_HEADERS, false);
	buf_free(b);
}

void https_autoconfig(struct https_session *s, const struct https_request *req)
{
	struct conn *c = https_conn(s);
	const struct config *cfg = conn_config(c);
	char addr[ADDRESS_MAX + 2];
	int r = ac_query_address(c, req->query, addr, sizeof(addr));
	if (r < 0) {
		https_reply_error(s, -r, false);
		return;
	}
	const char *domain = r > 0 ? strrchr(addr, '@') + 1 : cfg->domains[0];
	char lower[ADDRESS_MAX + 2];
	size_t i;
	for (i = 0; domain[i] != '\0' && i + 1 < sizeof(lower); i++)
		lower[i] =
		    (char)((domain[i] >= 'A' && domain[i] <= 'Z') ? domain[i] + 32 : domain[i]);
	lower[i] = '\0';
	struct buf b;
	buf_init(&b, HTTPS_MAX_REPLY);
	ac_send(s, tb_document(c, lower, &b), &b);
}

/* ---- Outlook ---- */

static int od_protocol(struct buf *b, const char *type, const char *host, const char *login,
                       const struct https_server *sv)
{
	int r = buf_printf(b, "      <Protocol>\n        <Type>%s</Type>\n        <Server>", type);
	if (r == 0)
		r = ac_put_escaped(b, host);
	if (r == 0)
		r = buf_printf(b,
		               "</Server>\n        <Port>%u</Port>\n"
		               "        <DomainRequired>off</DomainRequired>\n        <LoginName>",
		               sv->port);
	if (r == 0)
		r = ac_put_escaped(b, login);
	/* Every listener is TLS: SSL is on, and Encryption says which kind (SSL is TLS from
	 * the first byte, TLS is STARTTLS). */
	if (r == 0)
		r = buf_printf(b,
		               "</LoginName>\n        <SPA>off</SPA>\n        <SSL>on</SSL>\n"
		               "        <Encryption>%s</Encryption>\n"
		               "        <AuthRequired>on</AuthRequired>\n      </Protocol>\n",
		               sv->l->tls == CFG_TLS_IMPLICIT ? "SSL" : "TLS");
	return r;
}

static int od_document(struct conn *c, const char *addr, struct buf *b)
{
	const struct config *cfg = conn_config(c);
	struct https_server sv[16];
	int r = ac_put(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	                  "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/"
	                  "autodiscover/responseschema/2006\">\n"
	                  "  <Response xmlns=\"http://schemas.microsoft.com/exchange/"
	                  "autodiscover/outlook/responseschema/2006a\">\n"
	                  "    <Account>\n      <AccountType>email</AccountType>\n"
	                  "      <Action>settings</Action>\n");
	static const struct {
		enum cfg_protocol proto;
		const char *type;
	} kinds[] = {
	    {CFG_PROTO_IMAP, "IMAP"}, {CFG_PROTO_POP3, "POP3"}, {CFG_PROTO_SUBMISSION, "SMTP"}};
	for (size_t k = 0; k < 3 && r == 0; k++) {
		size_t n = https_client_servers(c, kinds[k].proto, sv, 16);
		for (size_t i = 0; i < n && r == 0; i++)
			r = od_protocol(b, kinds[k].type, cfg->hostname, addr, &sv[i]);
	}
	if (r == 0)
		r = ac_put(b, "    </Account>\n  </Response>\n</Autodiscover>\n");
	return r;
}

void https_autodiscover(struct https_session *s, const struct https_request *req)
{
	struct conn *c = https_conn(s);
	char addr[ADDRESS_MAX + 2];
	int r;
	if (req->method == HTTPS_M_POST) {
		const char *at;
		size_t len;
		if (https_pox_email(req->body.data != NULL ? req->body.data : "", req->body.len,
		                    &at, &len) < 0 ||
		    len == 0 || len > ADDRESS_MAX) {
			https_reply_error(s, 400, false);
			return;
		}
		memcpy(addr, at, len);
		addr[len] = '\0';
		r = ac_checked_address(c, addr);
	} else {
		r = ac_query_address(c, req->query, addr, sizeof(addr));
		if (r == 0)
			r = -400; /* autodiscover is always about one address */
	}
	if (r < 0) {
		https_reply_error(s, -r, false);
		return;
	}
	struct buf b;
	buf_init(&b, HTTPS_MAX_REPLY);
	ac_send(s, od_document(c, addr, &b), &b);
}
