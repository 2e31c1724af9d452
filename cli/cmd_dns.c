/*
 * sealctl dns records [--domain D]: the DNS records to publish so that mail clients find
 * this server by themselves, from the configured listeners and hostname, as zone-file
 * lines:
 * - SRV records of RFC 6186 (_imap, _imaps, _pop3, _pop3s, _submission) and RFC 8314
 *   (_submissions). Implicit TLS gets a better (lower) priority than STARTTLS, as RFC 8314
 *   5.1 asks, and listeners that require a client certificate come after both, since a
 *   client that found the server through DNS may have none. A service with no listener
 *   gets the "decidedly not available" record (target ".", RFC 6186 3.4 and RFC 2782).
 * - CNAME records for autoconfig.D and autodiscover.D (Thunderbird and Outlook look
 *   there) and Outlook's _autodiscover._tcp SRV record, when an https listener exists.
 * Nothing is looked up: this only prints.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli/cli_private.h"

#define DNS_TTL 3600

static int dns_run(struct cli *cli, int argc, char **argv);

const struct cli_noun cli_noun_dns = {
    .name = "dns",
    .usage = "  sealctl -c FILE dns records [--domain DOMAIN]\n",
    .run = dns_run,
};

static const struct {
	const char *service;
	enum cfg_protocol proto;
	enum cfg_tls_mode tls;
} dns_services[] = {
    {"_imaps", CFG_PROTO_IMAP, CFG_TLS_IMPLICIT},
    {"_imap", CFG_PROTO_IMAP, CFG_TLS_STARTTLS},
    {"_pop3s", CFG_PROTO_POP3, CFG_TLS_IMPLICIT},
    {"_pop3", CFG_PROTO_POP3, CFG_TLS_STARTTLS},
    {"_submissions", CFG_PROTO_SUBMISSION, CFG_TLS_IMPLICIT},
    {"_submission", CFG_PROTO_SUBMISSION, CFG_TLS_STARTTLS},
};

static void dns_domain(const struct config *cfg, const char *domain)
{
	printf("; %s: SRV records (RFC 6186, RFC 8314)\n", domain);
	for (size_t k = 0; k < sizeof(dns_services) / sizeof(dns_services[0]); k++) {
		bool any = false;
		for (size_t i = 0; i < cfg->n_listeners; i++) {
			const struct cfg_listener *l = &cfg->listeners[i];
			if (l->protocol != dns_services[k].proto || l->tls != dns_services[k].tls)
				continue;
			if (l->port == 0) {
				printf("; listeners[%zu] (line %d) has port 0, chosen at start: no "
				       "record\n",
				       i, l->line);
				any = true; /* the service exists: never say it does not */
				continue;
			}
			/* Two listeners on one port (two addresses) are one service. */
			bool dup = false;
			for (size_t j = 0; j < i && !dup; j++)
				dup = cfg->listeners[j].protocol == l->protocol &&
				      cfg->listeners[j].tls == l->tls &&
				      cfg->listeners[j].port == l->port;
			if (dup)
				continue;
			unsigned prio =
			    (l->tls == CFG_TLS_IMPLICIT ? 0 : 10) +
			    (l->client_certificate == CFG_CLIENT_CERT_REQUIRED ? 20 : 0);
			printf("%s._tcp.%s. %d IN SRV %u 1 %u %s.\n", dns_services[k].service,
			       domain, DNS_TTL, prio, l->port, cfg->hostname);
			any = true;
		}
		if (!any)
			printf("%s._tcp.%s. %d IN SRV 0 0 0 .\n", dns_services[k].service, domain,
			       DNS_TTL);
	}
	const struct cfg_listener *https = NULL;
	for (size_t i = 0; i < cfg->n_listeners && https == NULL; i++)
		if (cfg->listeners[i].protocol == CFG_PROTO_HTTPS)
			https = &cfg->listeners[i];
	if (https == NULL) {
		printf("; %s: no https listener, so no autoconfig or autodiscover names\n", domain);
		return;
	}
	printf("; %s: autoconfiguration (Thunderbird, Outlook); the server certificate must "
	       "name these too\n",
	       domain);
	if (https->port == 0)
		printf("; the https listener has port 0, chosen at start: clients ask these "
		       "names on port 443\n");
	else if (https->port != 443)
		printf("; clients ask these names on port 443; the https listener is on port %u\n",
		       https->port);
	printf("autoconfig.%s. %d IN CNAME %s.\n", domain, DNS_TTL, cfg->hostname);
	/* Outlook also asks this SRV record (after the two names). */
	if (https->port != 0)
		printf("_autodiscover._tcp.%s. %d IN SRV 0 1 %u %s.\n", domain, DNS_TTL,
		       https->port, cfg->hostname);
	printf("autodiscover.%s. %d IN CNAME %s.\n", domain, DNS_TTL, cfg->hostname);
}

static int cmd_records(struct cli *cli, int argc, char **argv)
{
	const char *only = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--domain") == 0 && i + 1 < argc)
			only = argv[++i];
		else
			return cli_usage(&cli_noun_dns, "dns records takes only --domain DOMAIN");
	}
	if (only != NULL && !cfg_is_local_domain(cli->cfg, only, strlen(only))) {
		cli_error("%s is not one of the configured domains: add it to domains: in %s", only,
		          cli->config_path);
		return CLI_FAIL;
	}
	bool first = true;
	for (size_t d = 0; d < cli->cfg->n_domains; d++) {
		const char *domain = cli->cfg->domains[d];
		if (only != NULL && strcasecmp(domain, only) != 0)
			continue;
		if (!first)
			printf("\n");
		first = false;
		dns_domain(cli->cfg, domain);
	}
	return CLI_OK;
}

static int dns_run(struct cli *cli, int argc, char **argv)
{
	if (strcmp(argv[0], "records") == 0)
		return cmd_records(cli, argc, argv);
	return cli_usage(&cli_noun_dns, "unknown verb for dns");
}
