/* smtp_load: a cheap SMTP submission load client for bench/smtp_bench.py.
 *
 * One thread, one epoll loop, non-blocking sockets with GnuTLS on top of the socket (implicit
 * TLS). Each of --conns connections runs the same dialogue as smtp_bench.py's Python client:
 * connect (TCP_NODELAY before the handshake), TLS, greeting, "EHLO" and "AUTH PLAIN" written
 * together (or EHLO alone with --no-auth), then per message "MAIL", "RCPT", "DATA" written
 * together, three replies, the message with its final dot, the final reply. The client sends
 * nothing else ahead of replies (no other pipelining, no BDAT, no CHUNKING).
 *
 *   loop      each connection sends messages back to back until --seconds have passed, then
 *             QUIT;
 *   per-conn  each connection slot opens a session (full TLS handshake: no session resumption,
 *             no tickets are ever given back), sends one message, QUITs, closes, and starts over
 *             until --seconds have passed.
 *
 * It prints one JSON line: messages (final 250s), rates, MAIL-to-final-250 latency and, for
 * per-conn, whole-session latency (connect to QUIT's reply) percentiles, errors and the
 * client's own CPU time. --insecure skips certificate verification (a benchmark against a
 * local server; the default is to verify against --ca with the host as the name).
 *
 * This is bench-only code: it is not part of sealmaild and links nothing of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#define LOAD_LINE_MAX  2048  /* one reply line; longer is an error */
#define LOAD_ERROR_MAX 10000 /* stop reconnecting after this many errors */
#define LOAD_GRACE_S   30.0  /* after --seconds, how long sessions in flight may take */

enum load_mode { LOAD_LOOP, LOAD_PER_CONN };

enum load_state {
	LOAD_IDLE, /* slot without a connection */
	LOAD_CONNECTING,
	LOAD_HANDSHAKE,
	LOAD_GREETING,
	LOAD_EHLO,
	LOAD_AUTH,
	LOAD_ENVELOPE, /* replies to MAIL, RCPT, DATA */
	LOAD_DATA_END, /* reply after the final dot */
	LOAD_QUIT,
};

struct load_opts {
	const char *host;
	int port;
	int conns;
	double seconds;
	size_t size;
	enum load_mode mode;
	const char *user; /* NULL: no AUTH */
	const char *password;
	const char *from; /* MAIL FROM and RCPT TO address */
	const char *ca;
	bool insecure;
	bool tls13;
	bool nodelay;
};

struct load_lat {
	double *v;
	size_t n, cap;
};

struct load_conn {
	int fd;
	uint32_t gen;  /* tells a stale epoll event from one for the slot's current socket */
	bool want_out; /* EPOLLOUT is in the socket's epoll events */
	enum load_state state;
	gnutls_session_t tls;
	int replies_left; /* replies still expected in this state */
	int first_code;   /* first reply code that was not what the state wants, or 0 */
	const char *out;  /* borrowed: always one of the shared, immutable buffers */
	size_t out_len;
	char in[LOAD_LINE_MAX];
	size_t in_len;
	double t_session, t_mail;
};

struct load_run {
	struct load_opts o;
	int ep;
	struct sockaddr_in addr;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	char *greet; /* EHLO [+ AUTH PLAIN] */
	size_t greet_len;
	char *envelope; /* MAIL, RCPT, DATA */
	size_t envelope_len;
	char *msg; /* the message, then ".\r\n" */
	size_t msg_len;
	double deadline;
	struct load_conn *c;
	int active;
	uint64_t messages, sessions, errors;
	char first_error[256];
	char *tls_desc; /* the first session's parameters, for the output */
	struct load_lat lat_msg, lat_session;
};

static double load_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *load_xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL)
		abort();
	return p;
}

static void load_lat_add(struct load_lat *l, double v)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4096;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (l->v == NULL)
			abort();
	}
	l->v[l->n++] = v;
}

static int load_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The same rank as smtp_bench.py's pct(): sorted[min(n - 1, n * p / 100)], in ms. */
static double load_pct(const struct load_lat *l, int p)
{
	size_t i;

	if (l->n == 0)
		return 0;
	i = l->n * (size_t)p / 100;
	if (i > l->n - 1)
		i = l->n - 1;
	return l->v[i] * 1000.0;
}

static void load_close(struct load_run *r, struct load_conn *c)
{
	if (c->tls != NULL) {
		/* close_notify, best effort: one non-blocking try, as a client that is done */
		if (c->state >= LOAD_GREETING)
			(void)gnutls_bye(c->tls, GNUTLS_SHUT_WR);
		gnutls_deinit(c->tls);
		c->tls = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd); /* also leaves the epoll set */
		c->fd = -1;
		r->active--;
	}
	c->state = LOAD_IDLE;
	c->gen++;
}

static int load_open(struct load_run *r, struct load_conn *c);

/* Ends a connection that failed; counts it and, before the deadline, starts the slot over. */
static void load_fail(struct load_run *r, struct load_conn *c, const char *fmt, ...)
{
	va_list ap;

	if (r->errors++ == 0) {
		va_start(ap, fmt);
		vsnprintf(r->first_error, sizeof(r->first_error), fmt, ap);
		va_end(ap);
	}
	load_close(r, c);
	if (load_now() < r->deadline && r->errors < LOAD_ERROR_MAX)
		(void)load_open(r, c);
}

static int load_open(struct load_run *r, struct load_conn *c)
{
	struct epoll_event ev;
	int one = 1, ret;

	c->t_session = load_now();
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		load_fail(r, c, "socket: %s", strerror(errno));
		return -1;
	}
	r->active++;
	c->in_len = 0;
	c->out_len = 0;
	c->first_code = 0;
	if (r->o.nodelay)
		(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ret = connect(c->fd, (struct sockaddr *)&r->addr, sizeof(r->addr));
	if (ret < 0 && errno != EINPROGRESS) {
		load_fail(r, c, "connect: %s", strerror(errno));
		return -1;
	}
	c->state = LOAD_CONNECTING;
	/* level-triggered: GnuTLS may return GNUTLS_E_AGAIN after a post-handshake message (a
	 * session ticket) with the next record still in the socket, which an edge-triggered
	 * wait would never report again. EPOLLOUT only while connecting or a send is blocked. */
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.u64 = ((uint64_t)(c - r->c) << 32) | c->gen;
	c->want_out = true;
	if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		load_fail(r, c, "epoll_ctl: %s", strerror(errno));
		return -1;
	}
	if (gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_KEY_SHARE_TOP) < 0)
		abort();
	gnutls_priority_set(c->tls, r->prio);
	gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, r->cred);
	if (!r->o.insecure)
		gnutls_session_set_verify_cert(c->tls, r->o.host, 0);
	gnutls_transport_set_int(c->tls, c->fd);
	return 0;
}

static void load_send(struct load_conn *c, enum load_state next, int replies, const char *buf,
                      size_t len)
{
	c->state = next;
	c->replies_left = replies;
	c->out = buf;
	c->out_len = len;
}

static void load_quit(struct load_conn *c)
{
	load_send(c, LOAD_QUIT, 1, "QUIT\r\n", 6);
}

static void load_next_message_or_quit(struct load_run *r, struct load_conn *c, double now)
{
	if (r->o.mode == LOAD_LOOP && now < r->deadline) {
		c->t_mail = now;
		load_send(c, LOAD_ENVELOPE, 3, r->envelope, r->envelope_len);
	} else {
		load_quit(c);
	}
}

/* One complete reply (its last line) arrived. Returns 0, or -1 after the connection failed. */
static int load_on_reply(struct load_run *r, struct load_conn *c, int code)
{
	double now;

	switch (c->state) {
	case LOAD_GREETING:
		if (code != 220)
			goto bad;
		load_send(c, LOAD_EHLO, r->o.user ? 2 : 1, r->greet, r->greet_len);
		return 0;
	case LOAD_EHLO:
		if (code != 250)
			goto bad;
		c->state = LOAD_AUTH;
		if (r->o.user != NULL)
			return 0;
		/* no AUTH: as if it had been accepted */
		/* fall through */
	case LOAD_AUTH:
		if (r->o.user != NULL && code != 235)
			goto bad;
		now = load_now();
		c->t_mail = now;
		load_send(c, LOAD_ENVELOPE, 3, r->envelope, r->envelope_len);
		return 0;
	case LOAD_ENVELOPE:
		if (code != (c->replies_left == 1 ? 354 : 250) && c->first_code == 0)
			c->first_code = code;
		if (c->replies_left > 1) {
			c->replies_left--;
			return 0;
		}
		if (c->first_code != 0) {
			code = c->first_code;
			goto bad;
		}
		load_send(c, LOAD_DATA_END, 1, r->msg, r->msg_len);
		return 0;
	case LOAD_DATA_END:
		if (code != 250)
			goto bad;
		now = load_now();
		r->messages++;
		load_lat_add(&r->lat_msg, now - c->t_mail);
		load_next_message_or_quit(r, c, now);
		return 0;
	case LOAD_QUIT:
		if (r->o.mode == LOAD_PER_CONN) {
			r->sessions++;
			load_lat_add(&r->lat_session, load_now() - c->t_session);
		}
		load_close(r, c);
		if (r->o.mode == LOAD_PER_CONN && load_now() < r->deadline)
			(void)load_open(r, c);
		return -1;
	default:
		break;
	}
bad:
	load_fail(r, c, "unexpected reply %d in state %d", code, (int)c->state);
	return -1;
}

/* Splits what arrived into reply lines. Returns 0, or -1 once the connection is gone. */
static int load_parse(struct load_run *r, struct load_conn *c)
{
	size_t start = 0, i;

	for (i = 0; i < c->in_len; i++) {
		char *line = c->in + start;
		size_t len = i + 1 - start;

		if (c->in[i] != '\n')
			continue;
		start = i + 1;
		if (len < 5 || line[0] < '2' || line[0] > '5') {
			load_fail(r, c, "malformed reply line");
			return -1;
		}
		if (line[3] == '-')
			continue;
		if (load_on_reply(
		        r, c, (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0')) < 0)
			return -1;
		if (c->state == LOAD_IDLE)
			return -1;
	}
	if (start > 0) {
		memmove(c->in, c->in + start, c->in_len - start);
		c->in_len -= start;
	}
	if (c->in_len == sizeof(c->in)) {
		load_fail(r, c, "reply line over %d bytes", LOAD_LINE_MAX);
		return -1;
	}
	return 0;
}

static void load_want_out(struct load_run *r, struct load_conn *c, bool on)
{
	struct epoll_event ev;

	if (c->want_out == on)
		return;
	ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
	ev.data.u64 = ((uint64_t)(c - r->c) << 32) | c->gen;
	if (epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		abort(); /* the socket is ours and open: a bug */
	c->want_out = on;
}

/* Runs the dialogue of one connection until the socket would block. */
static void load_drive(struct load_run *r, struct load_conn *c, uint32_t events)
{
	int ret, err;
	socklen_t len = sizeof(err);

	if (c->state == LOAD_CONNECTING) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
			load_fail(r, c, "connect: %s", strerror(err));
			return;
		}
		c->state = LOAD_HANDSHAKE;
	}
	if (c->state == LOAD_HANDSHAKE) {
		ret = gnutls_handshake(c->tls);
		if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED) {
			load_want_out(r, c, gnutls_record_get_direction(c->tls) == 1);
			return;
		}
		if (ret < 0) {
			load_fail(r, c, "TLS handshake: %s", gnutls_strerror(ret));
			return;
		}
		c->state = LOAD_GREETING;
		c->replies_left = 1;
		load_want_out(r, c, false);
		if (r->tls_desc == NULL)
			r->tls_desc = gnutls_session_get_desc(c->tls);
	}
	for (;;) {
		while (c->out_len > 0) {
			ret = (int)gnutls_record_send(c->tls, c->out, c->out_len);
			if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED) {
				/* retried with the same arguments, as GnuTLS wants */
				load_want_out(r, c, true);
				return;
			}
			if (ret < 0) {
				load_fail(r, c, "TLS send: %s", gnutls_strerror(ret));
				return;
			}
			c->out += ret;
			c->out_len -= (size_t)ret;
		}
		if (c->want_out)
			load_want_out(r, c, false);
		ret = (int)gnutls_record_recv(c->tls, c->in + c->in_len, sizeof(c->in) - c->in_len);
		if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED) {
			if (gnutls_record_check_pending(c->tls) > 0)
				continue;
			return; /* level-triggered: bytes left in the socket wake us again */
		}
		if (ret == 0 || ret == GNUTLS_E_PREMATURE_TERMINATION) {
			if (c->state == LOAD_QUIT) { /* the server closed right after 221 */
				(void)load_on_reply(r, c, 221);
				return;
			}
			load_fail(r, c, "connection closed by the server in state %d",
			          (int)c->state);
			return;
		}
		if (ret < 0) {
			if (!gnutls_error_is_fatal(ret))
				continue;
			load_fail(r, c, "TLS receive: %s", gnutls_strerror(ret));
			return;
		}
		c->in_len += (size_t)ret;
		if (load_parse(r, c) < 0)
			return;
	}
}

static char *load_message(size_t size, size_t *len_r)
{
	static const char line[] =
	    "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.,;-=+/\r\n";
	char head[512];
	size_t hlen, i, body;
	char *m;
	unsigned long long id;

	id = ((unsigned long long)getpid() << 32) ^ (unsigned long long)time(NULL) ^
	     (unsigned long long)(load_now() * 1e9);
	hlen = (size_t)snprintf(head, sizeof(head),
	                        "From: <bench@corp.example>\r\nTo: <bench@corp.example>\r\n"
	                        "Subject: bench\r\nMessage-ID: <%016llx@bench>\r\n"
	                        "Date: Tue, 03 Dec 2024 10:00:00 +0000\r\n\r\n",
	                        id);
	if (size < hlen + 2)
		size = hlen + 2;
	m = load_xmalloc(size + 3);
	memcpy(m, head, hlen);
	body = size - hlen - 2;
	for (i = 0; i < body; i++)
		m[hlen + i] = line[i % (sizeof(line) - 1)];
	memcpy(m + size - 2, "\r\n.\r\n", 5);
	*len_r = size + 3;
	return m;
}

static char *load_printf(size_t *len_r, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *s;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	s = load_xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	*len_r = (size_t)n;
	return s;
}

static char *load_auth_plain(const char *user, const char *password)
{
	size_t ul = strlen(user), pl = strlen(password), n = ul + pl + 2;
	char *raw = load_xmalloc(n);
	gnutls_datum_t in, out;
	char *s;

	raw[0] = '\0';
	memcpy(raw + 1, user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, password, pl);
	in.data = (unsigned char *)raw;
	in.size = (unsigned int)n;
	if (gnutls_base64_encode2(&in, &out) < 0)
		abort();
	gnutls_memset(raw, 0, n);
	free(raw);
	s = load_xmalloc(out.size + 1);
	memcpy(s, out.data, out.size);
	s[out.size] = '\0';
	gnutls_free(out.data);
	return s;
}

static void load_usage(FILE *f)
{
	fprintf(
	    f, "usage: smtp_load --port N [--host 127.0.0.1] [--conns 64] [--seconds 3]\n"
	       "         [--size 4096] [--mode loop|per-conn] [--user U --password P | --no-auth]\n"
	       "         [--from ADDR] [--ca FILE | --insecure] [--tls12] [--no-nodelay]\n"
	       "  --from: the MAIL FROM and RCPT TO address (default: --user)\n"
	       "  --insecure: no certificate verification (local benchmarks only)\n");
}

static int load_parse_args(int argc, char **argv, struct load_opts *o)
{
	static const struct option longs[] = {
	    {"host", required_argument, NULL, 'h'},  {"port", required_argument, NULL, 'p'},
	    {"conns", required_argument, NULL, 'c'}, {"seconds", required_argument, NULL, 's'},
	    {"size", required_argument, NULL, 'z'},  {"mode", required_argument, NULL, 'm'},
	    {"user", required_argument, NULL, 'u'},  {"password", required_argument, NULL, 'w'},
	    {"no-auth", no_argument, NULL, 'n'},     {"from", required_argument, NULL, 'f'},
	    {"ca", required_argument, NULL, 'a'},    {"insecure", no_argument, NULL, 'k'},
	    {"tls12", no_argument, NULL, '2'},       {"no-nodelay", no_argument, NULL, 'D'},
	    {"help", no_argument, NULL, 'H'},        {NULL, 0, NULL, 0},
	};
	bool no_auth = false;
	char *end = NULL;
	int ch;

	*o = (struct load_opts){.host = "127.0.0.1",
	                        .conns = 64,
	                        .seconds = 3,
	                        .size = 4096,
	                        .mode = LOAD_LOOP,
	                        .tls13 = true,
	                        .nodelay = true};
	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (ch) {
		case 'h':
			o->host = optarg;
			break;
		case 'p':
			o->port = (int)strtol(optarg, &end, 10);
			break;
		case 'c':
			o->conns = (int)strtol(optarg, &end, 10);
			break;
		case 's':
			o->seconds = strtod(optarg, &end);
			break;
		case 'z':
			o->size = (size_t)strtoul(optarg, &end, 10);
			break;
		case 'm':
			if (strcmp(optarg, "loop") == 0)
				o->mode = LOAD_LOOP;
			else if (strcmp(optarg, "per-conn") == 0)
				o->mode = LOAD_PER_CONN;
			else
				return -1;
			break;
		case 'u':
			o->user = optarg;
			break;
		case 'w':
			o->password = optarg;
			break;
		case 'n':
			no_auth = true;
			break;
		case 'f':
			o->from = optarg;
			break;
		case 'a':
			o->ca = optarg;
			break;
		case 'k':
			o->insecure = true;
			break;
		case '2':
			o->tls13 = false;
			break;
		case 'D':
			o->nodelay = false;
			break;
		case 'H':
			load_usage(stdout);
			exit(0);
		default:
			return -1;
		}
		if (end != NULL && (*end != '\0' || end == optarg))
			return -1; /* a number with something else in it */
		end = NULL;
	}
	if (no_auth)
		o->user = NULL;
	else if (o->user == NULL || o->password == NULL)
		return -1;
	if (o->from == NULL)
		o->from = o->user;
	if (o->from == NULL || o->port <= 0 || o->port > 65535 || o->conns <= 0 ||
	    o->seconds <= 0 || o->size > (64u << 20) || (o->ca == NULL && !o->insecure))
		return -1;
	return 0;
}

static int load_setup(struct load_run *r)
{
	const char *err;
	char *b64;
	int ret;

	r->addr.sin_family = AF_INET;
	r->addr.sin_port = htons((uint16_t)r->o.port);
	if (inet_pton(AF_INET, r->o.host, &r->addr.sin_addr) != 1) {
		fprintf(stderr, "smtp_load: --host must be an IPv4 address\n");
		return -1;
	}
	if (gnutls_certificate_allocate_credentials(&r->cred) < 0)
		abort();
	if (r->o.ca != NULL) {
		ret = gnutls_certificate_set_x509_trust_file(r->cred, r->o.ca, GNUTLS_X509_FMT_PEM);
		if (ret <= 0) {
			fprintf(stderr, "smtp_load: no CA certificate in %s\n", r->o.ca);
			return -1;
		}
	}
	/* X25519 first and its key share alone (GNUTLS_KEY_SHARE_TOP), as OpenSSL's client (the
	 * Python client's) does; Debian's NORMAL puts SECP256R1 first */
	ret = gnutls_priority_init(&r->prio,
	                           r->o.tls13
	                               ? "NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-X25519:"
	                                 "+GROUP-SECP256R1:+GROUP-SECP384R1"
	                               : "NORMAL:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"
	                                 "+GROUP-SECP384R1",
	                           &err);
	if (ret < 0) {
		fprintf(stderr, "smtp_load: priority: %s at %s\n", gnutls_strerror(ret), err);
		return -1;
	}
	if (r->o.user != NULL) {
		b64 = load_auth_plain(r->o.user, r->o.password);
		r->greet =
		    load_printf(&r->greet_len, "EHLO bench.example\r\nAUTH PLAIN %s\r\n", b64);
		free(b64);
	} else {
		r->greet = load_printf(&r->greet_len, "EHLO bench.example\r\n");
	}
	r->envelope = load_printf(&r->envelope_len, "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n",
	                          r->o.from, r->o.from);
	r->msg = load_message(r->o.size, &r->msg_len);
	r->ep = epoll_create1(EPOLL_CLOEXEC);
	if (r->ep < 0) {
		perror("smtp_load: epoll_create1");
		return -1;
	}
	r->c = calloc((size_t)r->o.conns, sizeof(*r->c));
	if (r->c == NULL)
		abort();
	for (int i = 0; i < r->o.conns; i++)
		r->c[i].fd = -1;
	return 0;
}

static void load_loop(struct load_run *r)
{
	struct epoll_event ev[256];
	double hard_end;
	int n, i;

	r->deadline = load_now() + r->o.seconds;
	hard_end = r->deadline + LOAD_GRACE_S;
	for (i = 0; i < r->o.conns; i++)
		(void)load_open(r, &r->c[i]);
	while (r->active > 0) {
		n = epoll_wait(r->ep, ev, (int)(sizeof(ev) / sizeof(ev[0])), 100);
		if (n < 0 && errno != EINTR) {
			perror("smtp_load: epoll_wait");
			break;
		}
		for (i = 0; i < n; i++) {
			struct load_conn *c = &r->c[ev[i].data.u64 >> 32];

			if ((uint32_t)ev[i].data.u64 != c->gen || c->state == LOAD_IDLE)
				continue; /* for a socket closed earlier in this batch */
			load_drive(r, c, ev[i].events);
		}
		if (load_now() > hard_end) {
			for (i = 0; i < r->o.conns; i++) {
				if (r->c[i].state != LOAD_IDLE) {
					r->deadline = 0; /* no new sessions */
					load_fail(r, &r->c[i], "still busy %.0f s after the end",
					          LOAD_GRACE_S);
				}
			}
		}
	}
}

static void load_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

int main(int argc, char **argv)
{
	struct load_run r = {0};
	struct rusage ru;
	double t0, wall;

	if (load_parse_args(argc, argv, &r.o) < 0) {
		load_usage(stderr);
		return 2;
	}
	if (gnutls_global_init() < 0 || load_setup(&r) < 0)
		return 1;
	t0 = load_now();
	load_loop(&r);
	wall = load_now() - t0;
	getrusage(RUSAGE_SELF, &ru);
	qsort(r.lat_msg.v, r.lat_msg.n, sizeof(double), load_cmp_double);
	qsort(r.lat_session.v, r.lat_session.n, sizeof(double), load_cmp_double);
	printf("{\"mode\": \"%s\", \"conns\": %d, \"size\": %zu, \"seconds\": %.3f, "
	       "\"messages\": %llu, \"sessions\": %llu, \"msg_per_s\": %.1f, "
	       "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"session_p50_ms\": %.3f, "
	       "\"session_p99_ms\": %.3f, \"errors\": %llu, \"first_error\": ",
	       r.o.mode == LOAD_LOOP ? "loop" : "per-conn", r.o.conns, r.o.size, wall,
	       (unsigned long long)r.messages, (unsigned long long)r.sessions,
	       (double)r.messages / wall, load_pct(&r.lat_msg, 50), load_pct(&r.lat_msg, 99),
	       load_pct(&r.lat_session, 50), load_pct(&r.lat_session, 99),
	       (unsigned long long)r.errors);
	load_json_string(r.first_error);
	printf(", \"tls\": ");
	load_json_string(r.tls_desc ? r.tls_desc : "");
	printf(", \"cpu_user_s\": %.3f, \"cpu_sys_s\": %.3f, \"tls13\": %s, \"verify\": %s}\n",
	       (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
	       r.o.tls13 ? "true" : "false", r.o.insecure ? "false" : "true");
	gnutls_free(r.tls_desc);
	free(r.lat_msg.v);
	free(r.lat_session.v);
	free(r.c);
	free(r.greet);
	free(r.envelope);
	free(r.msg);
	close(r.ep);
	gnutls_priority_deinit(r.prio);
	gnutls_certificate_free_credentials(r.cred);
	gnutls_global_deinit();
	return 0;
}
