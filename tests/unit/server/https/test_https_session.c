/*
 * The HTTPS session against the fake conn: requests fed whole, byte by byte and in random
 * chunks give the same answers; limits, malformed input, keep-alive and pipelining. The
 * store is the mem backend, so /healthz is answered asynchronously as on the server.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "server/https/https.h"
#include "server/https/https_private.h"
#include "server/services.h"
#include "tests/unit/support/mem_store.h"

/* tests/unit/support/conn_fake.c */
struct conn *fake_conn_open(const struct proto_handler *h, const struct config *cfg,
                            const struct cfg_listener *l, bool tls);
void fake_conn_raw(struct conn *c, const void *data, size_t len);
const char *fake_conn_output(struct conn *c);
void fake_conn_clear_output(struct conn *c);
bool fake_conn_closed(const struct conn *c);
void fake_conn_free(struct conn *c);
void fake_conn_set_services(struct conn *c, struct services *sv);

static struct config cfg;
static struct cfg_listener listeners[3];
static struct services sv;
static char *domains[] = {"corp.example"};

static void setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	memset(listeners, 0, sizeof(listeners));
	cfg.hostname = "mail.corp.example";
	cfg.domains = domains;
	cfg.n_domains = 1;
	listeners[0] = (struct cfg_listener){.protocol = CFG_PROTO_IMAP, .port = 993};
	listeners[1] = (struct cfg_listener){
	    .protocol = CFG_PROTO_SUBMISSION, .port = 587, .tls = CFG_TLS_STARTTLS};
	listeners[2] = (struct cfg_listener){.protocol = CFG_PROTO_HTTPS, .port = 443};
	cfg.listeners = listeners;
	cfg.n_listeners = 3;
	memset(&sv, 0, sizeof(sv));
	sv.cfg = &cfg;
	cr_assert_eq(support_mem_store_open(&sv.store), 0);
}

static void teardown(void)
{
	support_mem_store_close(sv.store);
	sv.store = NULL;
}

TestSuite(https, .init = setup, .fini = teardown);

static struct conn *open_session(void)
{
	struct conn *c = fake_conn_open(&https_proto_handler, &cfg, &listeners[2], true);
	fake_conn_set_services(c, &sv);
	return c;
}

/* The output with Date: lines taken out (they change). */
static char *answers(struct conn *c)
{
	const char *out = fake_conn_output(c);
	char *copy = strdup(out), *w = copy;
	for (const char *p = out; *p != '\0';) {
		const char *eol = strstr(p, "\r\n");
		size_t n = eol != NULL ? (size_t)(eol - p) + 2 : strlen(p);
		if (strncmp(p, "Date: ", 6) != 0) {
			memmove(w, p, n);
			w += n;
		}
		p += n;
	}
	*w = '\0';
	return copy;
}

enum feed { WHOLE, BYTES, CHUNKS };

/* Feeds input the given way, answering every store call between pieces. */
static char *run(const char *in, size_t len, enum feed how, bool *closed_r)
{
	struct conn *c = open_session();
	size_t i = 0;
	while (i < len) {
		/* Each piece waits a few ms for store answers: long inputs go in larger pieces. */
		size_t step = len > 1024 ? len / 100 : 1;
		size_t n = how == WHOLE   ? len - i
		           : how == BYTES ? step
		                          : step + (size_t)rand() % (step * 37);
		if (n > len - i)
			n = len - i;
		fake_conn_raw(c, in + i, n);
		cr_assert(support_mem_settle(c));
		i += n;
	}
	/* Pipelined input held while a step ran is offered once it ends. */
	fake_conn_raw(c, "", 0);
	cr_assert(support_mem_settle(c));
	char *out = answers(c);
	*closed_r = fake_conn_closed(c);
	fake_conn_free(c);
	return out;
}

/* The same answers however the input is cut. */
static char *run_all(const char *in, size_t len, bool *closed_r)
{
	bool closed;
	char *whole = run(in, len, WHOLE, closed_r);
	for (int k = 0; k < 3; k++) {
		char *other = run(in, len, k == 0 ? BYTES : CHUNKS, &closed);
		cr_assert_str_eq(other, whole, "cut input gave other answers for %.40s", in);
		cr_assert_eq(closed, *closed_r);
		free(other);
	}
	return whole;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

Test(https, healthz_and_pipelining)
{
	const char in[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	                  "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
	                  "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	bool closed;
	char *out = run_all(in, sizeof(in) - 1, &closed);
	const char *first = strstr(out, "HTTP/1.1 200 OK");
	const char *second = strstr(out, "HTTP/1.1 404 Not Found");
	cr_assert(first != NULL && second != NULL && first < second, "%s", out);
	cr_assert(strstr(second, "HTTP/1.1 200 OK") != NULL, "%s", out);
	cr_assert_eq(count(out, "\r\n\r\nok\n"), 2);
	cr_assert(!closed);
	cr_assert(strstr(out, "Connection: close") == NULL);
	free(out);
}

Test(https, autoconfig_document)
{
	const char in[] = "GET /mail/config-v1.1.xml?emailaddress=alice%40corp.example HTTP/1.1\r\n"
	                  "Host: x\r\n\r\n";
	bool closed;
	char *out = run_all(in, sizeof(in) - 1, &closed);
	cr_assert(strstr(out, "HTTP/1.1 200 OK\r\n") == out, "%s", out);
	cr_assert(strstr(out, "<port>993</port>\n      <socketType>SSL</socketType>") != NULL);
	cr_assert(strstr(out, "<outgoingServer type=\"smtp\">") != NULL);
	cr_assert(strstr(out, "<port>587</port>\n      <socketType>STARTTLS</socketType>") != NULL);
	cr_assert(strstr(out, "<port>443</port>") == NULL);
	free(out);
}

struct refusal {
	const char *in;
	const char *status;
	bool closed;
};

Test(https, refusals)
{
	static char long_url[3100], many[2000], big_hdr[10000];
	snprintf(long_url, sizeof(long_url), "GET /%02990d HTTP/1.1\r\nHost: x\r\n\r\n", 0);
	size_t n = (size_t)snprintf(many, sizeof(many), "GET /healthz HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < 70; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "X-%d: v\r\n", i);
	snprintf(many + n, sizeof(many) - n, "\r\n");
	n = (size_t)snprintf(big_hdr, sizeof(big_hdr), "GET /healthz HTTP/1.1\r\nHost: x\r\nX: ");
	memset(big_hdr + n, 'a', 8500);
	memcpy(big_hdr + n + 8500, "\r\n\r\n", 5);
	const struct refusal cases[] = {
	    {long_url, "414 URI Too Long", true},
	    {many, "431 Request Header Fields Too Large", true},
	    {big_hdr, "431 Request Header Fields Too Large", true},
	    {"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nContent-Length: "
	     "9000\r\n\r\n",
	     "413 Content Too Large", true},
	    {"GARBAGE / HTTP/1.1\r\n\r\n", "501 Not Implemented", true},
	    {"GET / HTTP/3.0\r\nHost: x\r\n\r\n", "505 HTTP Version Not Supported", true},
	    {"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", "400 Bad Request", true},
	    {"GET /healthz HTTP/1.1\r\n\r\n", "400 Bad Request", false},
	    {"GET http://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n", "400 Bad Request", false},
	    {"DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "405 Method Not Allowed", false},
	    {"GET /mail/config-v1.1.xml?emailaddress=%3C%40corp.example HTTP/1.1\r\nHost: "
	     "x\r\n\r\n",
	     "400 Bad Request", false},
	    {"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nContent-Length: "
	     "5\r\n\r\nhello",
	     "400 Bad Request", false},
	    {"GET /healthz HTTP/1.0\r\n\r\n", "200 OK", true},
	    {"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "200 OK", true},
	    /* No protocol switch: answered, then closed (the parser stops there). */
	    {"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
	     "200 OK", true},
	    {"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "400 Bad Request", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool closed;
		char *out = run_all(cases[i].in, strlen(cases[i].in), &closed);
		char want[80];
		snprintf(want, sizeof(want), "HTTP/1.1 %s\r\n", cases[i].status);
		cr_assert(strncmp(out, want, strlen(want)) == 0, "case %zu: %s", i, out);
		cr_assert_eq(closed, cases[i].closed, "case %zu", i);
		cr_assert_eq(strstr(out, "Connection: close\r\n") != NULL, cases[i].closed,
		             "case %zu: %s", i, out);
		free(out);
	}
}

Test(https, nothing_after_close)
{
	const char in[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	                  "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	bool closed;
	char *out = run_all(in, sizeof(in) - 1, &closed);
	cr_assert_eq(count(out, "HTTP/1.1 "), 1, "%s", out);
	cr_assert(closed);
	free(out);
}

Test(https, head_has_headers_only)
{
	const char in[] = "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	bool closed;
	char *out = run_all(in, sizeof(in) - 1, &closed);
	cr_assert(strstr(out, "Content-Length: 3\r\n") != NULL, "%s", out);
	size_t len = strlen(out);
	cr_assert(len >= 4 && strcmp(out + len - 4, "\r\n\r\n") == 0, "%s", out);
	free(out);
}

Test(https, healthz_without_store_is_503)
{
	struct conn *c = fake_conn_open(&https_proto_handler, &cfg, &listeners[2], true);
	struct services none = {.cfg = &cfg};
	fake_conn_set_services(c, &none);
	const char in[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	fake_conn_raw(c, in, sizeof(in) - 1);
	const char *out = fake_conn_output(c);
	cr_assert(strncmp(out, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0, "%s", out);
	cr_assert(strstr(out, "unavailable: the store does not answer\n") != NULL, "%s", out);
	cr_assert(!fake_conn_closed(c));
	fake_conn_free(c);
}
