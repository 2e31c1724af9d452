/*
 * The relay's SMTP client as a pure, line-driven state machine (relay_private.h). The
 * caller feeds reply lines and sends what the session puts in its output; the session
 * never touches a socket. Each state has one row in the table below: the reply handler
 * that runs when that state's reply is complete. relay_state() is the only place the state
 * changes.
 *
 * Under route tls verify/encrypt nothing but EHLO and STARTTLS is sent before TLS is up:
 * a peer that offers no STARTTLS, refuses it or fails the handshake sees no envelope.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/relay/relay_private.h"

typedef enum relay_action relay_reply_fn(struct relay_session *s, int code);

static relay_reply_fn reply_greeting, reply_ehlo, reply_starttls, reply_mail, reply_rcpt,
    reply_data, reply_dot, reply_quit;

static const struct {
	enum relay_state state;
	const char *name;
	relay_reply_fn *handler;
} relay_states[] = {
    {RELAY_S_GREETING, "greeting", reply_greeting},
    {RELAY_S_EHLO, "EHLO", reply_ehlo},
    {RELAY_S_STARTTLS, "STARTTLS", reply_starttls},
    {RELAY_S_HANDSHAKE, "TLS handshake", NULL},
    {RELAY_S_EHLO_TLS, "EHLO", reply_ehlo},
    {RELAY_S_MAIL, "MAIL FROM", reply_mail},
    {RELAY_S_RCPT, "RCPT TO", reply_rcpt},
    {RELAY_S_DATA, "DATA", reply_data},
    {RELAY_S_BODY, "message content", NULL},
    {RELAY_S_DOT, "end of data", reply_dot},
    {RELAY_S_QUIT, "QUIT", reply_quit},
    {RELAY_S_DONE, "done", NULL},
};

static void relay_state(struct relay_session *s, enum relay_state next)
{
	s->state = next;
}

static void send_cmd(struct relay_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void send_cmd(struct relay_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	buf_append(&s->out, "\r\n", 2);
}

void relay_session_init(struct relay_session *s, const struct relay_params *p)
{
	memset(s, 0, sizeof(*s));
	s->p = *p;
	buf_init(&s->out, 1024 * 1024);
	for (size_t i = 0; i < p->n_rcpts; i++) {
		p->rcpts[i].code = 0;
		p->rcpts[i].reply[0] = '\0';
	}
	relay_state(s, RELAY_S_GREETING);
}

void relay_session_free(struct relay_session *s)
{
	buf_free(&s->out);
}

/* Fails the session: every recipient without a final answer takes the reason. */
static enum relay_action fail(struct relay_session *s, bool permanent, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum relay_action fail(struct relay_session *s, bool permanent, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->error, sizeof(s->error), fmt, ap);
	va_end(ap);
	s->failed = true;
	s->permanent = permanent;
	relay_state(s, RELAY_S_DONE);
	return RELAY_ACT_FAIL;
}

/* Ends politely: QUIT, and the session is done whatever the answer. */
static enum relay_action quit(struct relay_session *s)
{
	send_cmd(s, "QUIT");
	relay_state(s, RELAY_S_QUIT);
	return RELAY_ACT_CONTINUE;
}

static enum relay_action fail_quit(struct relay_session *s, bool permanent, const char *what)
{
	snprintf(s->error, sizeof(s->error), "%s: %s", what, s->text);
	s->failed = true;
	s->permanent = permanent;
	return quit(s);
}

static void parse_cap(struct relay_session *s, const char *kw)
{
	static const struct {
		const char *name;
		unsigned cap;
	} caps[] = {
	    {"STARTTLS", RELAY_CAP_STARTTLS}, {"SIZE", RELAY_CAP_SIZE},
	    {"DSN", RELAY_CAP_DSN},           {"REQUIRETLS", RELAY_CAP_REQUIRETLS},
	    {"8BITMIME", RELAY_CAP_8BITMIME}, {"PIPELINING", RELAY_CAP_PIPELINING},
	};
	size_t n = 0;
	while (kw[n] != '\0' && kw[n] != ' ')
		n++;
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		if (strlen(caps[i].name) == n && strncasecmp(kw, caps[i].name, n) == 0) {
			s->caps |= caps[i].cap;
			if (caps[i].cap == RELAY_CAP_SIZE && kw[n] == ' ') {
				char *end = NULL;
				unsigned long long v = strtoull(kw + n + 1, &end, 10);
				s->peer_size = end != kw + n + 1 ? (uint64_t)v : 0;
			}
		}
	}
}

static void send_ehlo(struct relay_session *s, enum relay_state next)
{
	s->caps = 0;
	s->peer_size = 0;
	send_cmd(s, "EHLO %s", s->p.helo);
	relay_state(s, next);
}

static bool is_xtext_safe(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v <= ' ' || (unsigned char)*v >= 127)
			return false;
	return true;
}

static enum relay_action send_mail(struct relay_session *s)
{
	/* RFC 8689: only over verified TLS, only to a hop that promises to keep it so. */
	if (s->p.requiretls) {
		if (!s->in_tls || !s->p.tls_verified)
			return fail(s, true,
			            "REQUIRETLS: the route to this host does not verify TLS");
		if (!(s->caps & RELAY_CAP_REQUIRETLS)) {
			snprintf(s->error, sizeof(s->error),
			         "REQUIRETLS: the next hop does not support REQUIRETLS");
			s->failed = true;
			s->permanent = true;
			return quit(s);
		}
	}
	if ((s->caps & RELAY_CAP_SIZE) && s->peer_size != 0 && s->p.size > s->peer_size) {
		snprintf(s->error, sizeof(s->error),
		         "message size %" PRIu64 " exceeds the peer's limit of %" PRIu64, s->p.size,
		         s->peer_size);
		s->failed = true;
		s->permanent = true;
		return quit(s);
	}
	s->envelope = true;
	buf_printf(&s->out, "MAIL FROM:<%s>", s->p.sender);
	if (s->caps & RELAY_CAP_SIZE)
		buf_printf(&s->out, " SIZE=%" PRIu64, s->p.size);
	if (s->caps & RELAY_CAP_8BITMIME)
		buf_append_str(&s->out, " BODY=8BITMIME");
	if (s->p.requiretls)
		buf_append_str(&s->out, " REQUIRETLS");
	if (s->caps & RELAY_CAP_DSN) {
		if (s->p.ret != NULL && is_xtext_safe(s->p.ret))
			buf_printf(&s->out, " RET=%s", s->p.ret);
		if (s->p.envid != NULL && is_xtext_safe(s->p.envid))
			buf_printf(&s->out, " ENVID=%s", s->p.envid);
	}
	buf_append(&s->out, "\r\n", 2);
	relay_state(s, RELAY_S_MAIL);
	return RELAY_ACT_CONTINUE;
}

static void send_rcpt(struct relay_session *s)
{
	const struct relay_rcpt *r = &s->p.rcpts[s->rcpt_next];
	buf_printf(&s->out, "RCPT TO:<%s>", r->address);
	if (s->caps & RELAY_CAP_DSN) {
		if (r->notify != NULL && is_xtext_safe(r->notify))
			buf_printf(&s->out, " NOTIFY=%s", r->notify);
		if (r->orcpt != NULL && is_xtext_safe(r->orcpt))
			buf_printf(&s->out, " ORCPT=%s", r->orcpt);
	}
	buf_append(&s->out, "\r\n", 2);
	relay_state(s, RELAY_S_RCPT);
}

static enum relay_action reply_greeting(struct relay_session *s, int code)
{
	if (code != 220)
		return fail(s, false, "greeting: %s", s->text);
	send_ehlo(s, RELAY_S_EHLO);
	return RELAY_ACT_CONTINUE;
}

static enum relay_action reply_ehlo(struct relay_session *s, int code)
{
	if (code != 250)
		return fail_quit(s, false, "EHLO refused");
	if (s->state == RELAY_S_EHLO && s->p.tls != CFG_ROUTE_TLS_NONE) {
		if (!(s->caps & RELAY_CAP_STARTTLS)) {
			/* Not even QUIT: nothing more goes over this plaintext connection. */
			return fail(s, false, "peer offers no STARTTLS");
		}
		send_cmd(s, "STARTTLS");
		relay_state(s, RELAY_S_STARTTLS);
		return RELAY_ACT_CONTINUE;
	}
	return send_mail(s);
}

static enum relay_action reply_starttls(struct relay_session *s, int code)
{
	if (code != 220)
		return fail(s, false, "STARTTLS refused: %s", s->text);
	relay_state(s, RELAY_S_HANDSHAKE);
	return RELAY_ACT_START_TLS;
}

static void set_all_pending(struct relay_session *s, int code)
{
	for (size_t i = 0; i < s->p.n_rcpts; i++) {
		struct relay_rcpt *r = &s->p.rcpts[i];
		if (r->code == 0 || (r->code >= 200 && r->code < 300 && s->state >= RELAY_S_DATA)) {
			r->code = code;
			snprintf(r->reply, sizeof(r->reply), "%s", s->text);
		}
	}
}

static enum relay_action reply_mail(struct relay_session *s, int code)
{
	if (code / 100 != 2) {
		set_all_pending(s, code);
		return fail_quit(s, code / 100 == 5, "MAIL FROM refused");
	}
	send_rcpt(s);
	return RELAY_ACT_CONTINUE;
}

static enum relay_action reply_rcpt(struct relay_session *s, int code)
{
	struct relay_rcpt *r = &s->p.rcpts[s->rcpt_next++];
	r->code = code;
	snprintf(r->reply, sizeof(r->reply), "%s", s->text);
	if (code / 100 == 2)
		s->accepted++;
	if (s->rcpt_next < s->p.n_rcpts) {
		send_rcpt(s);
		return RELAY_ACT_CONTINUE;
	}
	if (s->accepted == 0)
		return quit(s);
	send_cmd(s, "DATA");
	relay_state(s, RELAY_S_DATA);
	return RELAY_ACT_CONTINUE;
}

static enum relay_action reply_data(struct relay_session *s, int code)
{
	if (code != 354) {
		set_all_pending(s, code);
		return quit(s);
	}
	relay_state(s, RELAY_S_BODY);
	return RELAY_ACT_SEND_BODY;
}

static enum relay_action reply_dot(struct relay_session *s, int code)
{
	s->data_done = true;
	set_all_pending(s, code);
	return quit(s);
}

static enum relay_action reply_quit(struct relay_session *s, int code)
{
	relay_state(s, RELAY_S_DONE);
	return RELAY_ACT_DONE;
}

enum relay_action relay_session_line(struct relay_session *s, const char *line, size_t len)
{
	if (s->state == RELAY_S_DONE)
		return s->failed ? RELAY_ACT_FAIL : RELAY_ACT_DONE;
	if (relay_states[s->state].handler == NULL)
		return fail(s, false, "unexpected reply during %s", relay_states[s->state].name);
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		len--;
	if (len < 3 || !isdigit((unsigned char)line[0]) || !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) || (len > 3 && line[3] != ' ' && line[3] != '-') ||
	    line[0] < '2' || line[0] > '5')
		return fail(s, false, "malformed reply during %s", relay_states[s->state].name);
	int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	bool last = len == 3 || line[3] == ' ';
	/* The text kept for errors: the first line whole (code included), then the rest. */
	if (s->n_lines == 0) {
		s->text_len = 0;
		s->text[0] = '\0';
	}
	size_t room = sizeof(s->text) - 1 - s->text_len;
	size_t take = len < room ? len : room;
	for (size_t i = 0; i < take; i++) {
		unsigned char ch = (unsigned char)line[i];
		s->text[s->text_len++] = ch >= ' ' && ch < 127 ? (char)ch : '?';
	}
	s->text[s->text_len] = '\0';
	if ((s->state == RELAY_S_EHLO || s->state == RELAY_S_EHLO_TLS) && s->n_lines > 0 &&
	    len > 4) {
		char kw[128];
		size_t n = len - 4 < sizeof(kw) - 1 ? len - 4 : sizeof(kw) - 1;
		memcpy(kw, line + 4, n);
		kw[n] = '\0';
		parse_cap(s, kw);
	}
	s->n_lines++;
	if (!last) {
		if (s->n_lines > 100)
			return fail(s, false, "reply of more than 100 lines");
		if (s->text_len < sizeof(s->text) - 4) {
			s->text[s->text_len++] = ' ';
			s->text[s->text_len++] = '/';
			s->text[s->text_len++] = ' ';
			s->text[s->text_len] = '\0';
		}
		return RELAY_ACT_CONTINUE;
	}
	s->n_lines = 0;
	return relay_states[s->state].handler(s, code);
}

void relay_session_tls_done(struct relay_session *s)
{
	s->in_tls = true;
	send_ehlo(s, RELAY_S_EHLO_TLS);
}

const char *relay_session_state_name(const struct relay_session *s)
{
	return relay_states[s->state].name;
}

void relay_session_body_done(struct relay_session *s)
{
	relay_state(s, RELAY_S_DOT);
}

void relay_session_abort(struct relay_session *s, const char *reason)
{
	if (s->state == RELAY_S_QUIT || (s->state == RELAY_S_DONE && !s->failed)) {
		relay_state(s, RELAY_S_DONE); /* every answer is in; QUIT's does not matter */
		return;
	}
	if (!s->failed) {
		snprintf(s->error, sizeof(s->error), "%s", reason);
		s->failed = true;
		s->permanent = false;
	}
	relay_state(s, RELAY_S_DONE);
}

void relay_session_fail_permanent(struct relay_session *s, const char *reason)
{
	snprintf(s->error, sizeof(s->error), "%s", reason);
	s->failed = true;
	s->permanent = true;
	relay_state(s, RELAY_S_DONE);
}

bool relay_session_may_try_next(const struct relay_session *s)
{
	return s->failed && !s->permanent && !s->envelope;
}

int relay_session_outcome(const struct relay_session *s, size_t i, const char **why_r)
{
	const struct relay_rcpt *r = &s->p.rcpts[i];
	if (r->code >= 400 && r->code < 500) {
		*why_r = r->reply;
		return 0;
	}
	if (r->code >= 500) {
		*why_r = r->reply;
		return 2;
	}
	/* A 2xx is final only once the end of data was answered (that reply replaced the
	 * RCPT reply); before that the recipient shares the session's fate. */
	if (r->code >= 200 && r->code < 300 && s->data_done) {
		*why_r = "";
		return 1;
	}
	*why_r = s->error[0] != '\0' ? s->error : "connection ended before the peer answered";
	return s->failed && s->permanent ? 2 : 0;
}

int relay_dotstuff(struct relay_dotstuff *d, const void *in, size_t len, struct buf *out)
{
	const unsigned char *p = in;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = p[i];
		int rc = 0;
		if (!d->mid_line && ch == '.')
			rc = buf_append(out, ".", 1);
		if (rc == 0 && ch == '\n' && !d->cr)
			rc = buf_append(out, "\r", 1);
		if (rc == 0)
			rc = buf_append(out, &ch, 1);
		if (rc < 0)
			return rc;
		d->cr = ch == '\r';
		d->mid_line = ch != '\n';
	}
	return 0;
}

int relay_dotstuff_finish(struct relay_dotstuff *d, struct buf *out)
{
	int rc = 0;
	if (d->mid_line)
		rc = buf_append(out, d->cr ? "\n" : "\r\n", d->cr ? 1 : 2);
	if (rc == 0)
		rc = buf_append(out, ".\r\n", 3);
	d->mid_line = false;
	d->cr = false;
	return rc;
}
