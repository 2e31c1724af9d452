/*
 * The route table: one entry per path. Adding a route (metrics, Apple profiles) is one
 * entry here and a handler (https_private.h says how handlers answer).
 *
 * Paths match exactly, without the query; HEAD is answered wherever GET is. Outlook asks
 * for /autodiscover/autodiscover.xml and /Autodiscover/Autodiscover.xml (both spellings are
 * seen), so that path matches in any case.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server/https/https_private.h"

static const struct https_route https_routes[] = {
    {"/healthz", false, HTTPS_M_GET, https_health},
    {"/metrics", false, HTTPS_M_GET, https_metrics},
    /* Apple devices: the account (and the identity) as a signed configuration profile. */
    {"/mobileconfig", false, HTTPS_M_GET, https_profile},
    /* Thunderbird: autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=... and
     * <domain>/.well-known/autoconfig/mail/config-v1.1.xml */
    {"/mail/config-v1.1.xml", false, HTTPS_M_GET, https_autoconfig},
    {"/.well-known/autoconfig/mail/config-v1.1.xml", false, HTTPS_M_GET, https_autoconfig},
    /* Outlook: POST of a POX request; GET with ?emailaddress= for simple probes. */
    {"/autodiscover/autodiscover.xml", true, HTTPS_M_GET | HTTPS_M_POST, https_autodiscover},
};

int https_route_find(const struct https_request *req, const struct https_route **route_r)
{
	const char *path = req->url.data;
	size_t len = req->path_len;
	*route_r = NULL;
	for (size_t i = 0; i < sizeof(https_routes) / sizeof(https_routes[0]); i++) {
		const struct https_route *r = &https_routes[i];
		if (strlen(r->path) != len)
			continue;
		if (r->nocase ? strncasecmp(r->path, path, len) != 0
		              : memcmp(r->path, path, len) != 0)
			continue;
		*route_r = r;
		unsigned allowed = r->methods;
		if (allowed & HTTPS_M_GET)
			allowed |= HTTPS_M_HEAD;
		return (req->method & allowed) != 0 ? 0 : 405;
	}
	return 404;
}

void https_route_allow(const struct https_route *route, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s%s%s", (route->methods & HTTPS_M_GET) ? "GET, HEAD" : "",
	         (route->methods & HTTPS_M_GET) && (route->methods & HTTPS_M_POST) ? ", " : "",
	         (route->methods & HTTPS_M_POST) ? "POST" : "");
}
