/*
 * What IMAP needs from a message, computed once at delivery with GMime 3: the header fields
 * SEARCH and SORT use (decoded to UTF-8), the MIME tree as JSON with byte offsets
 * (docs/storage.md; the IMAP code formats BODYSTRUCTURE and BODY[n.m] from it), and the
 * decoded text for the FTS5 index. The parser keeps part bodies in the source stream
 * (persist stream), so a spooled 50 MiB message is never read whole into memory. Depth,
 * part count and indexed text are bounded; past a bound the tree is cut, not the message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "storage/sqlite/store_private.h"

#define TEXT_PART_MAX (4 * 1024 * 1024) /* larger text parts are not indexed */
#define JSON_MAX      (4 * 1024 * 1024)

static pthread_once_t mime_once = PTHREAD_ONCE_INIT;

static void mime_init(void)
{
	g_mime_init();
}

void store_mime_info_clear(struct store_mime_info *info)
{
	free(info->json);
	free(info->from);
	free(info->to);
	free(info->cc);
	free(info->subject);
	free(info->message_id);
	free(info->text);
	memset(info, 0, sizeof(*info));
}

struct walk {
	struct buf json;
	struct buf text;
	size_t parts;
};

static void json_str(struct buf *b, const char *s)
{
	if (s == NULL) {
		buf_append_str(b, "null");
		return;
	}
	buf_append(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			buf_printf(b, "\\%c", *p);
		else if (*p < 0x20)
			buf_printf(b, "\\u%04x", *p);
		else
			buf_append(b, p, 1);
	}
	buf_append(b, "\"", 1);
}

static void index_text(struct walk *w, GMimePart *part, GMimeDataWrapper *content)
{
	GMimeStream *src = g_mime_data_wrapper_get_stream(content);
	if (src == NULL || g_mime_stream_length(src) > TEXT_PART_MAX ||
	    w->text.len >= STORE_FTS_MAX)
		return;
	GMimeStream *mem = g_mime_stream_mem_new();
	GMimeStream *filtered = g_mime_stream_filter_new(mem);
	const char *charset =
	    g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");
	if (charset != NULL && g_ascii_strcasecmp(charset, "utf-8") != 0) {
		GMimeFilter *f = g_mime_filter_charset_new(charset, "UTF-8");
		if (f != NULL) {
			g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
			g_object_unref(f);
		}
	}
	if (g_mime_data_wrapper_write_to_stream(content, filtered) >= 0) {
		g_mime_stream_flush(filtered);
		GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
		size_t room = STORE_FTS_MAX - w->text.len;
		size_t n = bytes->len < room ? bytes->len : room;
		buf_append(&w->text, bytes->data, n);
		buf_append(&w->text, "\n", 1);
	}
	g_object_unref(filtered);
	g_object_unref(mem);
}

static void walk_object(struct walk *w, GMimeObject *obj, int depth);

static void walk_headers(struct walk *w, GMimeObject *obj)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(obj);
	int n = hl != NULL ? g_mime_header_list_get_count(hl) : 0;
	gint64 off = n > 0 ? g_mime_header_get_offset(g_mime_header_list_get_header_at(hl, 0)) : -1;
	buf_printf(&w->json, ",\"header_offset\":%lld,\"header_count\":%d", (long long)off, n);
}

static void walk_part(struct walk *w, GMimePart *part)
{
	GMimeDataWrapper *content = g_mime_part_get_content(part);
	GMimeStream *s = content != NULL ? g_mime_data_wrapper_get_stream(content) : NULL;
	buf_append_str(&w->json, ",\"encoding\":");
	json_str(&w->json,
	         g_mime_content_encoding_to_string(g_mime_part_get_content_encoding(part)));
	buf_append_str(&w->json, ",\"description\":");
	json_str(&w->json, g_mime_part_get_content_description(part));
	if (s != NULL)
		buf_printf(&w->json, ",\"body_offset\":%lld,\"body_length\":%lld",
		           (long long)s->bound_start,
		           (long long)(s->bound_end >= 0 ? s->bound_end - s->bound_start
		                                         : g_mime_stream_length(s)));
	GMimeContentType *ct = g_mime_object_get_content_type(GMIME_OBJECT(part));
	if (content != NULL && ct != NULL &&
	    g_ascii_strcasecmp(g_mime_content_type_get_media_type(ct), "text") == 0)
		index_text(w, part, content);
}

static void walk_object(struct walk *w, GMimeObject *obj, int depth)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	GMimeContentDisposition *cd = g_mime_object_get_content_disposition(obj);
	w->parts++;
	buf_append_str(&w->json, "{\"type\":");
	json_str(&w->json, ct != NULL ? g_mime_content_type_get_media_type(ct) : "text");
	buf_append_str(&w->json, ",\"subtype\":");
	json_str(&w->json, ct != NULL ? g_mime_content_type_get_media_subtype(ct) : "plain");
	buf_append_str(&w->json, ",\"params\":{");
	GMimeParamList *pl = ct != NULL ? g_mime_content_type_get_parameters(ct) : NULL;
	for (int i = 0; pl != NULL && i < g_mime_param_list_length(pl); i++) {
		GMimeParam *p = g_mime_param_list_get_parameter_at(pl, i);
		if (i > 0)
			buf_append(&w->json, ",", 1);
		json_str(&w->json, g_mime_param_get_name(p));
		buf_append(&w->json, ":", 1);
		json_str(&w->json, g_mime_param_get_value(p));
	}
	buf_append_str(&w->json, "},\"disposition\":");
	json_str(&w->json, cd != NULL ? g_mime_content_disposition_get_disposition(cd) : NULL);
	if (cd != NULL) {
		const char *fn = g_mime_content_disposition_get_parameter(cd, "filename");
		buf_append_str(&w->json, ",\"filename\":");
		json_str(&w->json, fn);
	}
	buf_append_str(&w->json, ",\"id\":");
	json_str(&w->json, g_mime_object_get_content_id(obj));
	walk_headers(w, obj);

	if (GMIME_IS_PART(obj)) {
		walk_part(w, GMIME_PART(obj));
	} else if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		buf_append_str(&w->json, ",\"parts\":[");
		int n = g_mime_multipart_get_count(mp);
		for (int i = 0; i < n && depth < STORE_MIME_DEPTH && w->parts < STORE_MIME_PARTS;
		     i++) {
			if (i > 0)
				buf_append(&w->json, ",", 1);
			walk_object(w, g_mime_multipart_get_part(mp, i), depth + 1);
		}
		buf_append_str(&w->json, "]");
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		GMimeObject *root = inner != NULL ? g_mime_message_get_mime_part(inner) : NULL;
		if (root != NULL && depth < STORE_MIME_DEPTH && w->parts < STORE_MIME_PARTS) {
			buf_append_str(&w->json, ",\"message\":");
			walk_object(w, root, depth + 1);
		}
	}
	buf_append_str(&w->json, "}");
}

/* "Name <addr>", "addr" or "Group: member, member;" joined by ", ", for SEARCH FROM/TO/CC
 * (substring matches). Formatted here rather than with internet_address_list_to_string:
 * that one converts every domain to its IDNA ASCII form first (libidn2), which cost more
 * than the rest of the header parsing and made an internationalized domain unsearchable
 * by the form the message shows. */
static void address_append(struct buf *b, InternetAddressList *l, int depth)
{
	int n = internet_address_list_length(l);
	for (int i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(l, i);
		const char *name = internet_address_get_name(ia);
		bool named = name != NULL && name[0] != '\0';
		if (b->len > 0 && b->data[b->len - 1] != ':')
			buf_append_str(b, ", ");
		else if (b->len > 0)
			buf_append_str(b, " ");
		if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			const char *addr =
			    internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
			if (named)
				buf_printf(b, "%s <%s>", name, addr != NULL ? addr : "");
			else
				buf_append_str(b, addr != NULL ? addr : "");
		} else if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			buf_printf(b, "%s:", named ? name : "");
			if (depth < 4)
				address_append(
				    b,
				    internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
				    depth + 1);
			buf_append_str(b, ";");
		}
	}
}

static char *address_list(InternetAddressList *l)
{
	if (l == NULL || internet_address_list_length(l) == 0)
		return NULL;
	struct buf b;
	buf_init(&b, STORE_FTS_MAX); /* past it the field is cut, as the FTS text is */
	address_append(&b, l, 0);
	char *out = b.len > 0 ? xstrndup(b.data, b.len) : NULL;
	buf_free(&b);
	return out;
}

static int parse_stream(GMimeStream *stream, struct store_mime_info *info)
{
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_persist_stream(parser, TRUE);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	if (msg == NULL)
		return 0; /* not parseable as MIME: stored all the same, without structure */

	const char *subject = g_mime_message_get_subject(msg);
	info->subject = subject != NULL ? xstrdup(subject) : NULL;
	info->from = address_list(g_mime_message_get_from(msg));
	info->to = address_list(g_mime_message_get_to(msg));
	info->cc = address_list(g_mime_message_get_cc(msg));
	const char *mid = g_mime_message_get_message_id(msg);
	info->message_id = mid != NULL ? xstrdup(mid) : NULL;
	GDateTime *date = g_mime_message_get_date(msg);
	info->date = date != NULL ? (int64_t)g_date_time_to_unix(date) : 0;

	struct walk w;
	buf_init(&w.json, JSON_MAX);
	buf_init(&w.text, STORE_FTS_MAX + 2);
	w.parts = 0;
	GMimeObject *root = g_mime_message_get_mime_part(msg);
	if (root != NULL)
		walk_object(&w, root, 0);
	/* A tree that hit the JSON bound is unusable: keep none rather than a broken one. */
	if (w.json.len > 0 && w.json.len < JSON_MAX - 1)
		info->json = xstrndup(w.json.data, w.json.len);
	if (w.text.len > 0)
		info->text = xstrndup(w.text.data, w.text.len);
	buf_free(&w.json);
	buf_free(&w.text);
	g_object_unref(msg);
	return 0;
}

int store_mime_parse_mem(const void *data, size_t size, struct store_mime_info *info)
{
	memset(info, 0, sizeof(*info));
	pthread_once(&mime_once, mime_init);
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, size);
	int rc = parse_stream(stream, info);
	g_object_unref(stream);
	return rc;
}

int store_mime_parse_file(const char *path, struct store_mime_info *info)
{
	memset(info, 0, sizeof(*info));
	pthread_once(&mime_once, mime_init);
	GError *err = NULL;
	GMimeStream *stream = g_mime_stream_fs_open(path, O_RDONLY, 0, &err);
	if (stream == NULL) {
		if (err != NULL)
			g_error_free(err);
		return -EIO;
	}
	int rc = parse_stream(stream, info);
	g_object_unref(stream);
	return rc;
}
