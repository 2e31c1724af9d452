/*
 * A GMime stream over a spool file's plain bytes (store_spool.h), so the MIME parser reads a
 * sealed spool file in chunks as it does a plain one (g_mime_stream_fs), never whole. It
 * seeks and makes substreams (the parser keeps the stream, persist mode): all of them share
 * one reader. Positions are absolute, bounded by bound_start/bound_end, as in GMime's own
 * streams.
 */
#include <errno.h>
#include <gmime/gmime.h>

#include "storage/sqlite/store_private.h"
#include "storage/store_spool.h"

/* GObject's type macros want these typedefs (the house rule has to bend for GObject). */
typedef struct {
	GMimeStream parent;
	struct store_spool_reader *r;
	gint64 size;
} SpoolStream;
typedef struct {
	GMimeStreamClass parent_class;
} SpoolStreamClass;

static GType spool_stream_get_type(void);
#define SPOOL_TYPE_STREAM (spool_stream_get_type())
#define SPOOL_STREAM(o)   ((SpoolStream *)(o))

G_DEFINE_TYPE(SpoolStream, spool_stream, GMIME_TYPE_STREAM)

static gint64 stream_end(GMimeStream *s)
{
	return s->bound_end != -1 ? s->bound_end : SPOOL_STREAM(s)->size;
}

static ssize_t spool_stream_read(GMimeStream *s, char *buf, size_t len)
{
	gint64 end = stream_end(s);
	if (s->position >= end)
		return 0;
	if ((gint64)len > end - s->position)
		len = (size_t)(end - s->position);
	ssize_t n = store_spool_pread(SPOOL_STREAM(s)->r, buf, len, (uint64_t)s->position);
	if (n < 0) {
		errno = EIO;
		return -1;
	}
	s->position += n;
	return n;
}

static ssize_t spool_stream_write(GMimeStream *s, const char *buf, size_t len)
{
	(void)s;
	(void)buf;
	(void)len;
	errno = EBADF;
	return -1;
}

static int spool_stream_flush(GMimeStream *s)
{
	(void)s;
	return 0;
}

static int spool_stream_close(GMimeStream *s)
{
	(void)s;
	return 0;
}

static gboolean spool_stream_eos(GMimeStream *s)
{
	return s->position >= stream_end(s);
}

static int spool_stream_reset(GMimeStream *s)
{
	s->position = s->bound_start;
	return 0;
}

static gint64 spool_stream_seek(GMimeStream *s, gint64 offset, GMimeSeekWhence whence)
{
	gint64 real;
	switch (whence) {
	case GMIME_STREAM_SEEK_SET:
		real = offset;
		break;
	case GMIME_STREAM_SEEK_CUR:
		real = s->position + offset;
		break;
	case GMIME_STREAM_SEEK_END:
		real = stream_end(s) + offset;
		break;
	default:
		errno = EINVAL;
		return -1;
	}
	if (real < s->bound_start || real > stream_end(s)) {
		errno = EINVAL;
		return -1;
	}
	s->position = real;
	return real;
}

static gint64 spool_stream_tell(GMimeStream *s)
{
	return s->position;
}

static gint64 spool_stream_length(GMimeStream *s)
{
	return stream_end(s) - s->bound_start;
}

static GMimeStream *spool_stream_new(struct store_spool_reader *r, gint64 size, gint64 start,
                                     gint64 end)
{
	SpoolStream *ss = g_object_new(SPOOL_TYPE_STREAM, NULL);
	store_spool_ref(r);
	ss->r = r;
	ss->size = size;
	g_mime_stream_construct(GMIME_STREAM(ss), start, end);
	return GMIME_STREAM(ss);
}

static GMimeStream *spool_stream_substream(GMimeStream *s, gint64 start, gint64 end)
{
	return spool_stream_new(SPOOL_STREAM(s)->r, SPOOL_STREAM(s)->size, start, end);
}

static void spool_stream_finalize(GObject *o)
{
	store_spool_close(SPOOL_STREAM(o)->r);
	G_OBJECT_CLASS(spool_stream_parent_class)->finalize(o);
}

static void spool_stream_class_init(SpoolStreamClass *klass)
{
	GMimeStreamClass *sc = GMIME_STREAM_CLASS(klass);
	G_OBJECT_CLASS(klass)->finalize = spool_stream_finalize;
	sc->read = spool_stream_read;
	sc->write = spool_stream_write;
	sc->flush = spool_stream_flush;
	sc->close = spool_stream_close;
	sc->eos = spool_stream_eos;
	sc->reset = spool_stream_reset;
	sc->seek = spool_stream_seek;
	sc->tell = spool_stream_tell;
	sc->length = spool_stream_length;
	sc->substream = spool_stream_substream;
}

static void spool_stream_init(SpoolStream *ss)
{
	(void)ss;
}

GMimeStream *store_spool_stream_open(const char *path, bool sealed)
{
	struct store_spool_reader *r;
	uint64_t size;
	if (store_spool_open(path, sealed, &r, &size) < 0)
		return NULL;
	GMimeStream *s = spool_stream_new(r, (gint64)size, 0, -1);
	store_spool_close(r); /* the stream holds its own reference */
	return s;
}
