#include "server/tls_pipe.h"

#include <errno.h>
#include <string.h>

static ssize_t tls_pipe_push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
	struct tls_pipe *p = ptr;
	if (buf_append(&p->out, data, len) < 0) {
		gnutls_transport_set_errno(p->gs, ENOBUFS);
		return -1;
	}
	return (ssize_t)len;
}

static ssize_t tls_pipe_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
	struct tls_pipe *p = ptr;
	size_t avail = p->in.len - p->in_off;
	if (avail == 0) {
		gnutls_transport_set_errno(p->gs, EAGAIN);
		return -1;
	}
	if (len > avail)
		len = avail;
	memcpy(data, p->in.data + p->in_off, len);
	p->in_off += len;
	p->pulled += len;
	if (p->in_off == p->in.len) {
		buf_reset(&p->in);
		p->in_off = 0;
	}
	return (ssize_t)len;
}

void tls_pipe_init(struct tls_pipe *p, gnutls_session_t gs, size_t in_max)
{
	p->gs = gs;
	buf_init(&p->in, in_max);
	p->in_off = 0;
	p->pulled = 0;
	buf_init(&p->out, (size_t)-1);
	gnutls_transport_set_ptr(gs, p);
	gnutls_transport_set_push_function(gs, tls_pipe_push);
	gnutls_transport_set_pull_function(gs, tls_pipe_pull);
}

void tls_pipe_free(struct tls_pipe *p)
{
	buf_free(&p->in);
	buf_free(&p->out);
}

int tls_pipe_feed(struct tls_pipe *p, const void *data, size_t len)
{
	if (p->in_off > 0) {
		/* Drop what GnuTLS already consumed: the bound is on unread bytes. */
		size_t left = p->in.len - p->in_off;
		memmove(p->in.data, p->in.data + p->in_off, left);
		p->in.len = left;
		p->in_off = 0;
	}
	return buf_append(&p->in, data, len);
}

void *tls_pipe_take_output(struct tls_pipe *p, size_t *len_r)
{
	if (p->out.len == 0) {
		*len_r = 0;
		return NULL;
	}
	void *data = p->out.data;
	*len_r = p->out.len;
	buf_init(&p->out, (size_t)-1);
	return data;
}

int tls_pipe_send(struct tls_pipe *p, const void *data, size_t len)
{
	const unsigned char *d = data;
	while (len > 0) {
		ssize_t n = gnutls_record_send(p->gs, d, len);
		if (n == GNUTLS_E_INTERRUPTED || n == GNUTLS_E_AGAIN)
			continue;
		if (n < 0)
			return (int)n;
		d += n;
		len -= (size_t)n;
	}
	return 0;
}

void tls_pipe_bye(struct tls_pipe *p)
{
	int ret;
	do {
		ret = gnutls_bye(p->gs, GNUTLS_SHUT_WR);
	} while (ret == GNUTLS_E_INTERRUPTED);
}

const char *tls_pipe_version(const struct tls_pipe *p)
{
	switch (gnutls_protocol_get_version(p->gs)) {
	case GNUTLS_TLS1_3:
		return "TLSv1.3";
	case GNUTLS_TLS1_2:
		return "TLSv1.2";
	default: {
		const char *name = gnutls_protocol_get_name(gnutls_protocol_get_version(p->gs));
		return name != NULL ? name : "unknown";
	}
	}
}
