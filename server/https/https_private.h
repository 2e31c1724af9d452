#ifndef SEALMAIL_HTTPS_PRIVATE_H
#define SEALMAIL_HTTPS_PRIVATE_H
/*
 * Inside server/https/: the request as the parser leaves it, the route table and the
 * reply functions handlers use. Files:
 *   https_session.c    the connection: parser, limits, keep-alive, pipelining, access log
 *   https_route.c      the route table and dispatch (404, 405)
 *   https_health.c     GET /healthz
 *   https_autoconfig.c Thunderbird autoconfig and Outlook autodiscover documents
 *   https_text.c       pure helpers: XML escaping, address checks, query and POX parsing
 *
 * Adding a route is one entry in https_routes[] (https_route.c) and a handler:
 *   void handler(struct https_session *s, const struct https_request *req);
 * A handler answers exactly once with https_reply() (or https_reply_error()), either
 * before it returns or, for asynchronous work, later: it calls https_async_begin() first
 * and, in its completion, https_async_end() with a function that replies; that function
 * runs only when the connection is still open. The request is borrowed until the reply.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "server/conn.h"

/* Bounds on what a client may send (docs/https.md). Beyond them the answer is 414, 431 or
 * 413 and the connection closes: the parser cannot skip the rest safely. */
#define HTTPS_MAX_URL          2048 /* request target, bytes */
#define HTTPS_MAX_HEADERS      64   /* header fields per request */
#define HTTPS_MAX_HEADER_BYTES 8192 /* names and values of all fields together */
#define HTTPS_MAX_BODY         8192 /* request body (only autodiscover POST reads one) */
/* The largest reply a handler writes (documents are a few KiB). */
#define HTTPS_MAX_REPLY (4 * 1024 * 1024) /* a /metrics scrape can be large */

enum https_method {
	HTTPS_M_GET = 1 << 0,
	HTTPS_M_HEAD = 1 << 1, /* answered by every GET route, without the body */
	HTTPS_M_POST = 1 << 2,
	HTTPS_M_OTHER = 1 << 3,
};

struct https_header {
	size_t name, name_len; /* offsets into https_request.hdr */
	size_t value, value_len;
};

struct https_request {
	enum https_method method;
	const char *method_name; /* as the parser names it ("GET") */
	struct buf url;          /* the request target as sent, bounded by HTTPS_MAX_URL */
	size_t path_len;         /* url.data[0..path_len) is the path, up to '?' or '#' */
	const char *query;       /* after '?', NUL-terminated in url (the '#' cut), or NULL */
	struct buf hdr;          /* header names and values, bounded by HTTPS_MAX_HEADER_BYTES */
	struct https_header headers[HTTPS_MAX_HEADERS];
	size_t n_headers;
	struct buf body; /* bounded by HTTPS_MAX_BODY */
	unsigned http_major, http_minor;
	bool keep_alive; /* what the client asked for (http_should_keep_alive) */
	uint64_t started_ms;
};

struct https_session;

/* The value of the first header field called name (any case), NUL-terminated, or NULL. */
const char *https_request_header(const struct https_request *req, const char *name);

/* Answers the current request: status, Content-Type (NULL for none), the body (not sent
 * for HEAD; Content-Length always says its length) and extra header lines (each ending
 * in CRLF, or NULL). Connection: close is added, and the connection closed after the
 * reply, when the client asked for it or close is true. */
void https_reply(struct https_session *s, int status, const char *content_type, const char *body,
                 size_t body_len, const char *extra_headers, bool close);
/* A short text/plain answer naming the status ("404 Not Found\n"). */
void https_reply_error(struct https_session *s, int status, bool close);

/* Asynchronous handlers: pause the connection until the reply (conn_step_begin). */
void https_async_begin(struct https_session *s);
/* From the completion, exactly once: runs fn(s, arg) when the connection is still open (it
 * replies), then goes on with pipelined requests; calls nothing when the connection is
 * gone. Returns whether fn ran (else arg is still the caller's to free). */
bool https_async_end(struct conn *c, void (*fn)(struct https_session *s, void *arg), void *arg);

struct conn *https_conn(struct https_session *s);
/* The reason text of a status ("Not Found"). */
const char *https_status_text(int status);

/* ---- routes (https_route.c) ---- */

typedef void https_handler_fn(struct https_session *s, const struct https_request *req);

struct https_route {
	const char *path; /* exact path, without the query */
	bool nocase;      /* match the path in any case (Outlook's Autodiscover) */
	unsigned methods; /* enum https_method bits; GET implies HEAD */
	https_handler_fn *handler;
};

/* Finds the handler for the request: 0 and *route_r; 404 when no path matches; 405 when
 * the path matches but not the method (*route_r is then the route, for Allow). */
int https_route_find(const struct https_request *req, const struct https_route **route_r);
/* "GET, HEAD, POST" for an Allow header. */
void https_route_allow(const struct https_route *route, char *out, size_t outlen);

/* The listeners clients should use for proto, in the order to try them (implicit TLS,
 * then STARTTLS, then those requiring a client certificate), with their bound ports. */
struct https_server {
	const struct cfg_listener *l;
	uint16_t port;
};
size_t https_client_servers(struct conn *c, enum cfg_protocol proto, struct https_server *out,
                            size_t max);

/* ---- handlers ---- */
void https_health(struct https_session *s, const struct https_request *req);
void https_autoconfig(struct https_session *s, const struct https_request *req);
void https_autodiscover(struct https_session *s, const struct https_request *req);
void https_metrics(struct https_session *s, const struct https_request *req);
void https_profile(struct https_session *s, const struct https_request *req);

/* ---- pure helpers (https_text.c) ---- */

/* Appends text with &, <, >, " and ' escaped for XML content and attribute values;
 * control characters other than TAB, LF and CR (not allowed in XML 1.0) become U+FFFD.
 * 0 or -ENOBUFS. */
int https_xml_escape(struct buf *out, const char *text, size_t len);
/* An e-mail address the store would accept: dot-atom local part (at most 64 bytes) and
 * LDH domain labels, at most 254 bytes in all, ASCII only. */
bool https_address_valid(const char *addr, size_t len);
/* The value of parameter name in an application/x-www-form-urlencoded query string,
 * percent-decoded ('+' is a space) into out (NUL-terminated). 1 found, 0 absent,
 * -EINVAL malformed (bad %-escape, NUL) or longer than outlen-1. */
int https_query_param(const char *query, const char *name, char *out, size_t outlen);
/* The text of the first <EMailAddress> element of an Outlook autodiscover (POX) request,
 * with any namespace prefix on the element, surrounding white space trimmed. Bounded by
 * len, no entities decoded (an address needs none: one that has them is invalid). *at_r
 * and *len_r point into body. 0, or -ENOENT when there is none. */
int https_pox_email(const char *body, size_t len, const char **at_r, size_t *len_r);
/* The parameter names of a query string, for the access log: "emailaddress,x" (values
 * are dropped: they may hold personal data). Escaped for the log. */
void https_query_names(const char *query, char *out, size_t outlen);

#endif
