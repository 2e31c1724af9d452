/*
 * The HTTPS connection (see https.h and https_private.h): HTTP/1.1 requests parsed with
 * libhttp-parser from the bytes the conn offers (proto_handler.raw), answered one at a
 * time in order.
 *
 * Decisions worth knowing:
 * - Pipelining: the parser is paused at the end of each request (http_parser_pause in
 *   on_message_complete), so it never reads past a request that has no answer yet; the
 *   bytes after it stay in the conn's bounded input buffer, offered again after the
 *   answer. An asynchronous answer (/healthz) pauses the conn meanwhile.
 * - Limits (https_private.h) are enforced in the parser callbacks, before anything is
 *   buffered beyond them: an over-long target is 414, too many or too large header fields
 *   431, a body over the limit 413 (on its Content-Length before the body is read, or as a
 *   chunked body grows). Those and every parse error (400; 501 for an unknown method, 505
 *   for an HTTP major version other than 1) are answered with Connection: close and the
 *   connection is closed: the parser cannot be trusted to find the next request.
 * - An HTTP/1.1 request needs exactly one Host field (RFC 9112 3.2): else 400, and the
 *   connection goes on.
 * - Keep-alive is what http_should_keep_alive() says: HTTP/1.1 unless Connection: close,
 *   HTTP/1.0 only with Connection: keep-alive (which the answer then repeats).
 * - Expect: 100-continue gets an interim 100 before a body within the limit is read.
 * - Nothing is written on the idle timeout or at shutdown: HTTP has no goodbye, and a 408
 *   on an idle keep-alive connection only confuses clients.
 * - One access line per answer (event=request): method, path, the names (never the
 *   values) of query parameters, status, body bytes, duration, client certificate serial.
 */
#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "server/https/https.h"
#include "server/https/https_private.h"

struct https_session {
	struct conn *c;
	http_parser parser;
	struct https_request req;
	enum { HDR_NONE, HDR_FIELD, HDR_VALUE } hdr_state;
	int error;      /* status decided by a callback (413, 414, 431, 505) */
	bool complete;  /* the parser paused at the end of a request */
	bool answering; /* a request is being answered (asynchronously) */
	bool closing;   /* the last answer is written: input is ignored */
	bool method_known;
};

static const http_parser_settings https_settings;

struct conn *https_conn(struct https_session *s)
{
	return s->c;
}

const char *https_status_text(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Error";
	}
}

const char *https_request_header(const struct https_request *req, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct https_header *h = &req->headers[i];
		if (h->name_len == n && strncasecmp(req->hdr.data + h->name, name, n) == 0)
			return req->hdr.data + h->value;
	}
	return NULL;
}

/* Empties b; a keep-alive connection between requests keeps no big buffer. */
static void https_buf_empty(struct buf *b)
{
	size_t max = b->max;
	if (b->cap > 1024) {
		buf_free(b);
		buf_init(b, max);
	}
	buf_reset(b);
}

static void https_request_reset(struct https_session *s)
{
	struct https_request *req = &s->req;
	https_buf_empty(&req->url);
	https_buf_empty(&req->hdr);
	https_buf_empty(&req->body);
	req->n_headers = 0;
	req->path_len = 0;
	req->query = NULL;
	req->method = HTTPS_M_OTHER;
	req->method_name = "-";
	req->keep_alive = false;
	req->started_ms = conn_now_ms(s->c);
	s->hdr_state = HDR_NONE;
	s->error = 0;
	s->method_known = false;
}

/* ---- the access log ---- */

static void https_log(struct https_session *s, int status, size_t bytes)
{
	struct https_request *req = &s->req;
	char path[256], names[128];
	size_t plen = req->path_len;
	if (plen == 0 && req->url.len > 0) {
		/* Not yet split (a parse error): log up to the query. */
		const char *q = memchr(req->url.data, '?', req->url.len);
		plen = q != NULL ? (size_t)(q - req->url.data) : req->url.len;
	}
	if (plen == 0)
		snprintf(path, sizeof(path), "-");
	else
		log_escape(path, sizeof(path), req->url.data, plen);
	https_query_names(req->query, names, sizeof(names));
	log_event(LOGL_INFO,
	          "session=%s proto=https event=request ip=%s method=%s path=\"%s\" query=%s "
	          "status=%d bytes=%zu duration_ms=%llu client_cert=%s",
	          conn_id(s->c), conn_peer_ip(s->c), req->method_name, path, names, status, bytes,
	          (unsigned long long)(conn_now_ms(s->c) - req->started_ms),
	          conn_cert_serial(s->c));
}

/* ---- answers ---- */

static void https_date(char *out, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(out, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void https_reply(struct https_session *s, int status, const char *content_type, const char *body,
                 size_t body_len, const char *extra_headers, bool close)
{
	struct https_request *req = &s->req;
	bool keep = req->keep_alive && !close && !s->parser.upgrade && s->error == 0;
	bool head = req->method == HTTPS_M_HEAD;
	char date[64];
	struct buf out;
	https_date(date, sizeof(date));
	buf_init(&out, HTTPS_MAX_REPLY + 4096);
	int r = buf_printf(&out, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: sealmail\r\n", status,
	                   https_status_text(status), date);
	if (r == 0 && content_type != NULL)
		r = buf_printf(&out, "Content-Type: %s\r\n", content_type);
	if (r == 0)
		r = buf_printf(&out, "Content-Length: %zu\r\n%s%s\r\n", body_len,
		               extra_headers != NULL ? extra_headers : "",
		               !keep                  ? "Connection: close\r\n"
		               : req->http_minor == 0 ? "Connection: keep-alive\r\n"
		                                      : "");
	if (r == 0 && !head && body_len > 0)
		r = buf_append(&out, body, body_len);
	if (r < 0) {
		/* A handler wrote more than HTTPS_MAX_REPLY: a bug, not the client's doing. */
		log_event(LOGL_ERROR, "session=%s proto=https event=reply_too_large status=%d",
		          conn_id(s->c), status);
		buf_reset(&out);
		status = 500;
		keep = false;
		buf_printf(&out,
		           "HTTP/1.1 500 Internal Server Error\r\nDate: %s\r\nContent-Length: "
		           "0\r\nConnection: close\r\n\r\n",
		           date);
		body_len = 0;
	}
	conn_write(s->c, out.data, out.len);
	buf_free(&out);
	https_log(s, status, head ? 0 : body_len);
	s->answering = false;
	if (!keep) {
		s->closing = true;
		conn_close(s->c, "http_close");
		return;
	}
	https_request_reset(s);
}

void https_reply_error(struct https_session *s, int status, bool close)
{
	char text[80];
	int n = snprintf(text, sizeof(text), "%d %s\n", status, https_status_text(status));
	https_reply(s, status, "text/plain; charset=utf-8", text, (size_t)n, NULL, close);
}

struct https_async {
	void (*fn)(struct https_session *s, void *arg);
	void *arg;
};

void https_async_begin(struct https_session *s)
{
	conn_step_begin(s->c);
}

static void https_async_run(void *sess, void *arg)
{
	struct https_async *a = arg;
	a->fn(sess, a->arg);
}

bool https_async_end(struct conn *c, void (*fn)(struct https_session *s, void *arg), void *arg)
{
	struct https_async a = {fn, arg};
	return conn_step_end(c, https_async_run, &a);
}

/* ---- the parser's callbacks ---- */

static int on_message_begin(http_parser *p)
{
	struct https_session *s = p->data;
	https_request_reset(s);
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct https_session *s = p->data;
	if (s->req.url.len + len > HTTPS_MAX_URL) {
		s->error = 414;
		return -1;
	}
	buf_append(&s->req.url, at, len);
	return 0;
}

/* Header names and values go into one bounded buffer, each NUL-terminated. */
static int hdr_append(struct https_session *s, const char *at, size_t len)
{
	if (buf_append(&s->req.hdr, at, len) < 0) {
		s->error = 431;
		return -1;
	}
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct https_session *s = p->data;
	struct https_request *req = &s->req;
	if (s->hdr_state != HDR_FIELD) {
		if (s->hdr_state == HDR_VALUE && hdr_append(s, "", 1) < 0)
			return -1;
		if (req->n_headers == HTTPS_MAX_HEADERS) {
			s->error = 431;
			return -1;
		}
		struct https_header *h = &req->headers[req->n_headers++];
		memset(h, 0, sizeof(*h));
		h->name = req->hdr.len;
		s->hdr_state = HDR_FIELD;
	}
	req->headers[req->n_headers - 1].name_len += len;
	return hdr_append(s, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct https_session *s = p->data;
	struct https_request *req = &s->req;
	struct https_header *h = &req->headers[req->n_headers - 1];
	if (s->hdr_state != HDR_VALUE) {
		if (hdr_append(s, "", 1) < 0)
			return -1;
		h->value = req->hdr.len;
		s->hdr_state = HDR_VALUE;
	}
	h->value_len += len;
	return hdr_append(s, at, len);
}

/* Splits the target into path and query (the fragment, never sent by real clients, is
 * cut). The query stays NUL-terminated in place. */
static void https_split_url(struct https_request *req)
{
	char *u = req->url.data != NULL ? req->url.data : (char *)"";
	size_t len = req->url.len;
	char *hash = memchr(u, '#', len);
	if (hash != NULL) {
		*hash = '\0';
		len = (size_t)(hash - u);
	}
	char *q = memchr(u, '?', len);
	req->path_len = q != NULL ? (size_t)(q - u) : len;
	req->query = q != NULL ? q + 1 : NULL;
}

static enum https_method https_method_of(unsigned m)
{
	switch (m) {
	case HTTP_GET:
		return HTTPS_M_GET;
	case HTTP_HEAD:
		return HTTPS_M_HEAD;
	case HTTP_POST:
		return HTTPS_M_POST;
	default:
		return HTTPS_M_OTHER;
	}
}

static int on_headers_complete(http_parser *p)
{
	struct https_session *s = p->data;
	struct https_request *req = &s->req;
	/* The last value's NUL; names with no value yet (impossible past the parser) get one. */
	if (s->hdr_state != HDR_NONE) {
		if (s->hdr_state == HDR_FIELD) {
			if (hdr_append(s, "", 1) < 0)
				return -1;
			req->headers[req->n_headers - 1].value = req->hdr.len;
		}
		if (hdr_append(s, "", 1) < 0)
			return -1;
	}
	req->method = https_method_of(p->method);
	req->method_name = http_method_str((enum http_method)p->method);
	s->method_known = true;
	req->http_major = p->http_major;
	req->http_minor = p->http_minor;
	req->keep_alive = http_should_keep_alive(p) != 0;
	https_split_url(req);
	if (p->http_major != 1) {
		s->error = 505;
		return -1;
	}
	bool chunked = (p->flags & F_CHUNKED) != 0;
	bool has_length = p->content_length != ULLONG_MAX && p->content_length > 0;
	if (has_length && p->content_length > HTTPS_MAX_BODY) {
		s->error = 413;
		return -1;
	}
	const char *expect = https_request_header(req, "expect");
	if (expect != NULL && strcasecmp(expect, "100-continue") == 0 && (chunked || has_length) &&
	    p->http_minor >= 1)
		conn_write_str(s->c, "HTTP/1.1 100 Continue\r\n\r\n");
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct https_session *s = p->data;
	if (buf_append(&s->req.body, at, len) < 0) {
		s->error = 413;
		return -1;
	}
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct https_session *s = p->data;
	s->complete = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings https_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- dispatch ---- */

static size_t https_host_count(const struct https_request *req)
{
	size_t n = 0;
	for (size_t i = 0; i < req->n_headers; i++)
		if (req->headers[i].name_len == 4 &&
		    strncasecmp(req->hdr.data + req->headers[i].name, "host", 4) == 0)
			n++;
	return n;
}

static void https_dispatch(struct https_session *s)
{
	struct https_request *req = &s->req;
	const struct https_route *route = NULL;
	s->answering = true;
	if (req->http_minor >= 1 && https_host_count(req) != 1) {
		https_reply_error(s, 400, false);
		return;
	}
	if (req->url.len == 0 || req->url.data[0] != '/') {
		/* Absolute-form and authority-form targets are for proxies. */
		https_reply_error(s, 400, false);
		return;
	}
	int status = https_route_find(req, &route);
	if (status == 405) {
		char allow[64], extra[96];
		https_route_allow(route, allow, sizeof(allow));
		snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
		const char *text = "405 Method Not Allowed\n";
		https_reply(s, 405, "text/plain; charset=utf-8", text, strlen(text), extra, false);
		return;
	}
	if (status != 0) {
		https_reply_error(s, status, false);
		return;
	}
	route->handler(s, req);
}

static size_t https_raw(void *sess, const char *data, size_t len)
{
	struct https_session *s = sess;
	if (s->closing)
		return len; /* the last answer is out: what follows is dropped */
	size_t n = http_parser_execute(&s->parser, &https_settings, data, len);
	enum http_errno e = HTTP_PARSER_ERRNO(&s->parser);
	if (s->complete) {
		s->complete = false;
		http_parser_pause(&s->parser, 0);
		https_dispatch(s);
		return n;
	}
	if (e != HPE_OK) {
		int status = s->error != 0              ? s->error
		             : e == HPE_INVALID_METHOD  ? 501
		             : e == HPE_INVALID_VERSION ? 505
		                                        : 400;
		if (s->error == 0)
			s->error = status; /* closes after the answer */
		if (!s->method_known)
			s->req.method = HTTPS_M_OTHER;
		log_event(LOGL_INFO, "session=%s proto=https event=bad_request ip=%s error=%s",
		          conn_id(s->c), conn_peer_ip(s->c), http_errno_name(e));
		https_reply_error(s, status, true);
		return len;
	}
	return n;
}

/* ---- the proto_handler ---- */

static void *https_open(struct conn *c)
{
	struct https_session *s = xcalloc(1, sizeof(*s));
	s->c = c;
	http_parser_init(&s->parser, HTTP_REQUEST);
	s->parser.data = s;
	buf_init(&s->req.url, HTTPS_MAX_URL);
	/* Each field adds two NULs to its bytes. */
	buf_init(&s->req.hdr, HTTPS_MAX_HEADER_BYTES + 2 * HTTPS_MAX_HEADERS);
	buf_init(&s->req.body, HTTPS_MAX_BODY);
	https_request_reset(s);
	return s;
}

static void https_close(void *sess)
{
	struct https_session *s = sess;
	buf_free(&s->req.url);
	buf_free(&s->req.hdr);
	buf_free(&s->req.body);
	free(s);
}

const struct proto_handler https_proto_handler = {
    .name = "https",
    .open = https_open,
    .close = https_close,
    .raw = https_raw,
};
