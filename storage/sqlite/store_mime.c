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
#include <json-glib/json-glib.h>

#include "common/basesubject.h"
#include "common/buf.h"
#include "common/xmalloc.h"
#include "storage/sqlite/store_private.h"

#define TEXT_PART_MAX    (4 * 1024 * 1024) /* larger text parts are not indexed */
#define HEADER_INDEX_MAX (256 * 1024)      /* past it a header block is cut in the index */

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
	free(info->header);
	free(info->sort_subject);
	free(info->sort_from);
	free(info->sort_to);
	free(info->sort_cc);
	free(info->sort_from_name);
	free(info->sort_to_name);
	free(info->thread_refs);
	free(info->preview);
	memset(info, 0, sizeof(*info));
}

/*
 * The walk over one parsed message. src is the stream the parser read (memory or file);
 * byte ranges the parser does not report (where a header block ends, where a multipart
 * or an embedded message ends, line counts) are found by reading src around the offsets it
 * does report.
 */
struct walk {
	JsonBuilder *jb;
	struct buf text;
	/* The RFC 8970 preview: from the first inline text/plain part, else the first
	 * text/html one (preview_html). */
	char *preview;
	bool preview_html;
	size_t parts;
	GMimeStream *src;
	gint64 size;
};

/* A string value. JSON holds UTF-8 only: the bytes of a value that is not (a raw 8-bit
 * header in another charset) that are not valid UTF-8 become U+FFFD. */
static void jtext(JsonBuilder *jb, const char *s)
{
	if (g_utf8_validate(s, -1, NULL)) {
		json_builder_add_string_value(jb, s);
		return;
	}
	gchar *valid = g_utf8_make_valid(s, -1);
	json_builder_add_string_value(jb, valid);
	g_free(valid);
}

/* A string member; left out when s is NULL (the reader takes a missing member as null,
 * and a shorter document is read faster). */
static void jstr(JsonBuilder *jb, const char *name, const char *s)
{
	if (s == NULL)
		return;
	json_builder_set_member_name(jb, name);
	jtext(jb, s);
}

static void jint(JsonBuilder *jb, const char *name, gint64 v)
{
	json_builder_set_member_name(jb, name);
	json_builder_add_int_value(jb, v);
}

/* Reads src[off, off + len) into out (at most len bytes); returns the bytes read. */
static gint64 src_read(struct walk *w, gint64 off, char *out, size_t len)
{
	if (off < 0 || off >= w->size || g_mime_stream_seek(w->src, off, GMIME_STREAM_SEEK_SET) < 0)
		return 0;
	gint64 n = g_mime_stream_read(w->src, out, len);
	return n > 0 ? n : 0;
}

/* The end of the header block that starts at off: just past its blank line (or the end of
 * the message when it has none). */
static gint64 header_end(struct walk *w, gint64 off)
{
	char chunk[8192];
	bool bol = true; /* at the beginning of a line */
	bool cr = false; /* a CR at the beginning of a line */
	while (off < w->size) {
		gint64 n = src_read(w, off, chunk, sizeof(chunk));
		if (n <= 0)
			break;
		for (gint64 i = 0; i < n; i++) {
			char c = chunk[i];
			if (bol && c == '\n')
				return off + i + 1;
			if (bol && c == '\r' && !cr) {
				cr = true;
				continue;
			}
			if (cr && c == '\n')
				return off + i + 1;
			cr = false;
			bol = c == '\n';
		}
		off += n;
	}
	return w->size;
}

/* Where the line break before the next "--boundary" line from off is (the part before it
 * ends there), or the end of the message. */
static gint64 boundary_before(struct walk *w, gint64 off, const char *boundary)
{
	if (boundary == NULL)
		return w->size;
	char *needle = g_strdup_printf("\n--%s", boundary);
	size_t nl = strlen(needle);
	char chunk[16384];
	gint64 found = w->size;
	while (off < w->size && nl < sizeof(chunk) / 2) {
		gint64 n = src_read(w, off, chunk, sizeof(chunk));
		if (n < (gint64)nl)
			break;
		const char *hit = memmem(chunk, (size_t)n, needle, nl);
		if (hit != NULL) {
			found = off + (hit - chunk);
			if (hit > chunk && hit[-1] == '\r')
				found--;
			break;
		}
		off += n - (gint64)nl + 1;
	}
	g_free(needle);
	return found;
}

/* Lines as BODYSTRUCTURE counts them: line breaks, plus an unterminated last line. */
static gint64 count_lines(struct walk *w, gint64 off, gint64 len)
{
	char chunk[65536];
	gint64 lines = 0, end = off + len;
	char last = '\n';
	while (off < end) {
		size_t want =
		    end - off < (gint64)sizeof(chunk) ? (size_t)(end - off) : sizeof(chunk);
		gint64 n = src_read(w, off, chunk, want);
		if (n <= 0)
			break;
		for (const char *p = chunk, *e = chunk + n;
		     (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
			lines++;
		last = chunk[n - 1];
		off += n;
	}
	return len > 0 && last != '\n' ? lines + 1 : lines;
}

/* A header's raw value as IMAP shows it: the first field called name, unfolded (line
 * breaks removed) and trimmed, undecoded; NULL when missing or empty. */
static char *raw_header(GMimeObject *obj, const char *name)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(obj);
	GMimeHeader *h = hl != NULL ? g_mime_header_list_get_header(hl, name) : NULL;
	const char *v = h != NULL ? g_mime_header_get_raw_value(h) : NULL;
	if (v == NULL)
		return NULL;
	size_t len = strlen(v), n = 0;
	char *out = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++)
		if (v[i] != '\r' && v[i] != '\n')
			out[n++] = v[i] == '\t' ? ' ' : v[i];
	while (n > 0 && out[n - 1] == ' ')
		n--;
	size_t s = 0;
	while (s < n && out[s] == ' ')
		s++;
	memmove(out, out + s, n - s);
	out[n - s] = '\0';
	if (out[0] == '\0') {
		free(out);
		return NULL;
	}
	return out;
}

static void jraw(JsonBuilder *jb, const char *member, GMimeObject *obj, const char *name)
{
	char *v = raw_header(obj, name);
	jstr(jb, member, v);
	free(v);
}

/* A preview from this part's decoded text, if it is the part a preview comes from. */
static void preview_take(struct walk *w, GMimePart *part, const char *text, size_t len)
{
	if (g_mime_part_is_attachment(part) || (w->preview != NULL && !w->preview_html))
		return;
	GMimeContentType *ct = g_mime_object_get_content_type(GMIME_OBJECT(part));
	const char *sub = ct != NULL ? g_mime_content_type_get_media_subtype(ct) : "plain";
	bool html = sub != NULL && g_ascii_strcasecmp(sub, "html") == 0;
	if (!html && sub != NULL && g_ascii_strcasecmp(sub, "plain") != 0)
		return;
	if (w->preview != NULL && html)
		return; /* an html part after another: the first one stays */
	char *p = store_preview_make(text, len, html);
	if (p == NULL && w->preview != NULL)
		return;
	free(w->preview);
	w->preview = p;
	w->preview_html = html;
}

static void index_text(struct walk *w, GMimePart *part, GMimeDataWrapper *content)
{
	GMimeStream *src = g_mime_data_wrapper_get_stream(content);
	if (src == NULL || g_mime_stream_length(src) > TEXT_PART_MAX ||
	    (w->text.len >= STORE_FTS_MAX && (w->preview != NULL && !w->preview_html)))
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
		preview_take(w, part, (const char *)bytes->data, bytes->len);
		size_t room = w->text.len < STORE_FTS_MAX ? STORE_FTS_MAX - w->text.len : 0;
		size_t n = bytes->len < room ? bytes->len : room;
		if (room > 0) {
			buf_append(&w->text, bytes->data, n);
			buf_append(&w->text, "\n", 1);
		}
	}
	g_object_unref(filtered);
	g_object_unref(mem);
}

/* Encoded words stay raw in ENVELOPE (RFC 3501 7.4.2), but GMime's address parser decodes
 * them in display names. Their "=?" is hidden from it behind a private-use character
 * (U+E000) and put back in the names it returns. */
#define EW_MARK "\xee\x80\x80"

static char *ew_hide(const char *v)
{
	struct buf b;
	buf_init(&b, SIZE_MAX);
	for (const char *p = v; *p != '\0'; p++) {
		if (p[0] == '=' && p[1] == '?') /* the '=' only: "?" follows as it is */
			buf_append_str(&b, EW_MARK);
		else
			buf_append(&b, p, 1);
	}
	char *out = xstrndup(b.data != NULL ? b.data : "", b.len);
	buf_free(&b);
	return out;
}

static void jname(JsonBuilder *jb, const char *name)
{
	if (name == NULL || name[0] == '\0') {
		json_builder_add_null_value(jb);
		return;
	}
	struct buf b;
	buf_init(&b, SIZE_MAX);
	for (const char *p = name; *p != '\0'; p++) {
		if (strncmp(p, EW_MARK, 3) == 0) {
			buf_append(&b, "=", 1);
			p += 2;
		} else {
			buf_append(&b, p, 1);
		}
	}
	char *s = xstrndup(b.data != NULL ? b.data : "", b.len);
	jtext(jb, s);
	free(s);
	buf_free(&b);
}

static void jaddr4(JsonBuilder *jb, const char *name, const char *adl, const char *mbox,
                   const char *host)
{
	json_builder_begin_array(jb);
	jname(jb, name);
	const char *rest[] = {adl, mbox, host};
	for (size_t i = 0; i < 3; i++) {
		if (rest[i] == NULL)
			json_builder_add_null_value(jb);
		else
			jtext(jb, rest[i]);
	}
	json_builder_end_array(jb);
}

/* An address list as IMAP addresses: [name, adl, mailbox, host] each; a group opens with
 * [null, null, group, null] and closes with four nulls (RFC 3501 7.4.2). GMime drops
 * source routes, so adl is always null. */
static unsigned jaddr_list(JsonBuilder *jb, InternetAddressList *l, int depth, unsigned count)
{
	int n = internet_address_list_length(l);
	for (int i = 0; i < n && count < STORE_MIME_ADDRS; i++) {
		InternetAddress *ia = internet_address_list_get_address(l, i);
		const char *name = internet_address_get_name(ia);
		if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			const char *addr =
			    internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
			if ((addr == NULL || addr[0] == '\0') && (name == NULL || name[0] == '\0'))
				continue;
			char *spec = xstrdup(addr != NULL ? addr : "");
			char *at = strrchr(spec, '@');
			if (at != NULL)
				*at = '\0';
			jaddr4(jb, name, NULL, spec[0] != '\0' ? spec : NULL,
			       at != NULL ? at + 1 : NULL);
			free(spec);
			count++;
		} else if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			json_builder_begin_array(jb);
			json_builder_add_null_value(jb);
			json_builder_add_null_value(jb);
			jname(jb, name);
			json_builder_add_null_value(jb);
			json_builder_end_array(jb);
			count++;
			if (depth < 4)
				count = jaddr_list(
				    jb,
				    internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
				    depth + 1, count);
			jaddr4(jb, NULL, NULL, NULL, NULL);
		}
	}
	return count;
}

/* The address field name as member (left out when missing or without an address, unless
 * keep_null: then null). */
static void jaddr_header(JsonBuilder *jb, const char *member, GMimeObject *obj, const char *name,
                         bool keep_null)
{
	char *raw = raw_header(obj, name);
	if (raw == NULL) {
		if (keep_null) {
			json_builder_set_member_name(jb, member);
			json_builder_add_null_value(jb);
		}
		return;
	}
	char *hidden = ew_hide(raw);
	InternetAddressList *l = internet_address_list_parse(NULL, hidden);
	if (l == NULL || internet_address_list_length(l) == 0) {
		if (keep_null) {
			json_builder_set_member_name(jb, member);
			json_builder_add_null_value(jb);
		}
	} else {
		json_builder_set_member_name(jb, member);
		json_builder_begin_array(jb);
		jaddr_list(jb, l, 0, 0);
		json_builder_end_array(jb);
	}
	if (l != NULL)
		g_object_unref(l);
	free(hidden);
	free(raw);
}

/* ENVELOPE of a message (its header fields, raw): "envelope" member. */
static void jenvelope(JsonBuilder *jb, GMimeObject *msg)
{
	json_builder_set_member_name(jb, "envelope");
	json_builder_begin_object(jb);
	jraw(jb, "date", msg, "Date");
	jraw(jb, "subject", msg, "Subject");
	jaddr_header(jb, "from", msg, "From", false);
	/* Sender and Reply-To default to From (RFC 3501 7.4.2): "sender"/"reply_to" are left
	 * out when their field is missing or empty, and the reader uses "from". */
	char *v = raw_header(msg, "Sender");
	if (v != NULL)
		jaddr_header(jb, "sender", msg, "Sender", true);
	free(v);
	v = raw_header(msg, "Reply-To");
	if (v != NULL)
		jaddr_header(jb, "reply_to", msg, "Reply-To", true);
	free(v);
	jaddr_header(jb, "to", msg, "To", false);
	jaddr_header(jb, "cc", msg, "Cc", false);
	jaddr_header(jb, "bcc", msg, "Bcc", false);
	jraw(jb, "in_reply_to", msg, "In-Reply-To");
	jraw(jb, "message_id", msg, "Message-ID");
	json_builder_end_object(jb);
}

static void jparams(JsonBuilder *jb, const char *member, GMimeParamList *pl)
{
	json_builder_set_member_name(jb, member);
	json_builder_begin_array(jb);
	for (int i = 0; pl != NULL && i < g_mime_param_list_length(pl) && i < 100; i++) {
		GMimeParam *p = g_mime_param_list_get_parameter_at(pl, i);
		const char *n = g_mime_param_get_name(p), *v = g_mime_param_get_value(p);
		if (n == NULL || n[0] == '\0' || v == NULL)
			continue;
		json_builder_begin_array(jb);
		jtext(jb, n);
		jtext(jb, v);
		json_builder_end_array(jb);
	}
	json_builder_end_array(jb);
}

/* The first header's offset of obj, or -1 when it has none. */
static gint64 first_header(GMimeObject *obj)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(obj);
	int n = hl != NULL ? g_mime_header_list_get_count(hl) : 0;
	return n > 0 ? g_mime_header_get_offset(g_mime_header_list_get_header_at(hl, 0)) : -1;
}

/* The part's own fields, extents and children; returns where it ends. hdr_off is where its
 * header starts (-1: from its first field, or the blank line before its body). env_msg:
 * obj is the root part of that message, whose header is the message's (its ENVELOPE goes
 * with it). */
static gint64 walk_object(struct walk *w, GMimeObject *obj, int depth, gint64 hdr_off,
                          const char *parent_boundary, GMimeMessage *env_msg)
{
	JsonBuilder *jb = w->jb;
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	GMimeContentDisposition *cd = g_mime_object_get_content_disposition(obj);
	w->parts++;
	if (hdr_off < 0)
		hdr_off = first_header(obj);
	json_builder_begin_object(jb);
	if (depth == 0)
		jint(jb, "v", STORE_MIME_VERSION);
	if (env_msg != NULL)
		jenvelope(jb, GMIME_OBJECT(env_msg));
	jstr(jb, "type", ct != NULL ? g_mime_content_type_get_media_type(ct) : "text");
	jstr(jb, "subtype", ct != NULL ? g_mime_content_type_get_media_subtype(ct) : "plain");
	jparams(jb, "params", ct != NULL ? g_mime_content_type_get_parameters(ct) : NULL);
	char *draw = cd != NULL ? raw_header(obj, "Content-Disposition") : NULL;
	if (draw != NULL) {
		json_builder_set_member_name(jb, "disposition");
		char *semi = strchr(draw, ';');
		if (semi != NULL)
			*semi = '\0';
		g_strchomp(draw);
		json_builder_begin_object(jb);
		jstr(jb, "type", draw);
		jparams(jb, "params", g_mime_content_disposition_get_parameters(cd));
		json_builder_end_object(jb);
	}
	free(draw);
	jraw(jb, "id", obj, "Content-ID");
	jraw(jb, "description", obj, "Content-Description");
	jraw(jb, "encoding", obj, "Content-Transfer-Encoding");
	jraw(jb, "md5", obj, "Content-MD5");
	jraw(jb, "language", obj, "Content-Language");
	jraw(jb, "location", obj, "Content-Location");

	gint64 body_off = -1, body_end = -1;
	if (GMIME_IS_PART(obj)) {
		GMimePart *part = GMIME_PART(obj);
		GMimeDataWrapper *content = g_mime_part_get_content(part);
		GMimeStream *s = content != NULL ? g_mime_data_wrapper_get_stream(content) : NULL;
		if (s != NULL) {
			body_off = s->bound_start;
			body_end = s->bound_end >= 0 ? s->bound_end
			                             : s->bound_start + g_mime_stream_length(s);
		}
		if (content != NULL && ct != NULL &&
		    g_ascii_strcasecmp(g_mime_content_type_get_media_type(ct), "text") == 0)
			index_text(w, part, content);
	}
	if (hdr_off < 0) {
		/* No header fields: the header is the blank line before the body. */
		hdr_off = body_off;
		if (body_off > 0) {
			char two[2];
			hdr_off = body_off - 1;
			if (body_off >= 2 && src_read(w, body_off - 2, two, 2) == 2 &&
			    two[0] == '\r')
				hdr_off = body_off - 2;
		}
		if (hdr_off < 0)
			hdr_off = 0;
	}
	gint64 hdr_end = header_end(w, hdr_off);
	if (body_off < 0)
		body_off = hdr_end;
	gint64 end = body_end;

	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		const char *boundary = g_mime_multipart_get_boundary(mp);
		json_builder_set_member_name(jb, "parts");
		json_builder_begin_array(jb);
		int n = g_mime_multipart_get_count(mp);
		gint64 last = hdr_end;
		for (int i = 0; i < n && depth < STORE_MIME_DEPTH && w->parts < STORE_MIME_PARTS;
		     i++)
			last = walk_object(w, g_mime_multipart_get_part(mp, i), depth + 1, -1,
			                   boundary, NULL);
		json_builder_end_array(jb);
		end = boundary_before(w, last, parent_boundary);
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		GMimeObject *root = inner != NULL ? g_mime_message_get_mime_part(inner) : NULL;
		end = boundary_before(w, hdr_end, parent_boundary);
		if (root != NULL && depth < STORE_MIME_DEPTH && w->parts < STORE_MIME_PARTS) {
			json_builder_set_member_name(jb, "message");
			walk_object(w, root, depth + 1, hdr_end, parent_boundary, inner);
		}
	} else if (end < 0) {
		end = boundary_before(w, body_off, parent_boundary);
	}
	if (end < body_off)
		end = body_off;
	jint(jb, "header_offset", hdr_off);
	jint(jb, "header_length", hdr_end - hdr_off);
	jint(jb, "body_offset", body_off);
	jint(jb, "body_length", end - body_off);
	if (ct != NULL &&
	    (g_ascii_strcasecmp(g_mime_content_type_get_media_type(ct), "text") == 0 ||
	     GMIME_IS_MESSAGE_PART(obj)))
		jint(jb, "lines", count_lines(w, body_off, end - body_off));
	json_builder_end_object(jb);
	return end;
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

/* ---- SORT and THREAD keys (RFC 5256, RFC 5957) ---- */

#define SORT_KEY_MAX    1024 /* a longer key is cut: it still sorts by its first 1 KiB */
#define THREAD_REFS_MAX 100  /* msg-ids of References kept, the last ones (nearest parents) */

static char *key_dup(const char *s, size_t len)
{
	if (len > SORT_KEY_MAX)
		len = SORT_KEY_MAX;
	/* Cut on a UTF-8 character boundary. */
	while (len > 0 && len < strlen(s) && ((unsigned char)s[len] & 0xc0) == 0x80)
		len--;
	return xstrndup(s, len);
}

/*
 * The i;unicode-casemap form of s (RFC 5051): every character titlecased by its simple
 * mapping, then NFKD; two keys compare with strcmp. RFC 5256 section 1 makes SORT and
 * THREAD collate as I18NLEVEL=1 does, whose default comparator this is (RFC 5255 4.3); on
 * ASCII it is i;ascii-casemap. Bytes that are not UTF-8 are kept as they are (compared as
 * octets). The key is cut to SORT_KEY_MAX.
 */
static char *casemap_key(const char *s)
{
	size_t len = strlen(s);
	if (!g_utf8_validate(s, (gssize)len, NULL))
		return key_dup(s, len);
	GString *t = g_string_sized_new(len + 8);
	for (const char *p = s; *p != '\0'; p = g_utf8_next_char(p))
		g_string_append_unichar(t, g_unichar_totitle(g_utf8_get_char(p)));
	gchar *d = g_utf8_normalize(t->str, (gssize)t->len, G_NORMALIZE_NFKD);
	g_string_free(t, TRUE);
	char *out = key_dup(d != NULL ? d : "", d != NULL ? strlen(d) : 0);
	g_free(d);
	return out;
}

/*
 * The keys of the first address of l as IMAP's address structure (RFC 3501 ENVELOPE) has
 * it, which RFC 5256 and RFC 5957 refer to: *mbox_r its addr-mailbox (FROM, TO, CC: the
 * local part, unquoted) and, when name_r is not NULL, its addr-name, else addr-mailbox "@"
 * addr-host (DISPLAYFROM, DISPLAYTO). A list that starts with a group starts with the
 * group's marker, whose addr-mailbox is the group's name and which has no addr-name: both
 * keys are that name.
 */
static void sort_address(InternetAddressList *l, char **mbox_r, char **name_r)
{
	if (l == NULL || internet_address_list_length(l) == 0)
		return;
	InternetAddress *ia = internet_address_list_get_address(l, 0);
	const char *name = internet_address_get_name(ia);
	if (name != NULL && name[0] == '\0')
		name = NULL;
	if (INTERNET_ADDRESS_IS_GROUP(ia)) {
		*mbox_r = casemap_key(name != NULL ? name : "");
		if (name_r != NULL)
			*name_r = casemap_key(name != NULL ? name : "");
		return;
	}
	if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
		return;
	const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
	if (addr == NULL)
		addr = "";
	const char *at = strrchr(addr, '@');
	size_t local = at != NULL ? (size_t)(at - addr) : strlen(addr);
	/* A quoted local part is its content, as in the address structure. */
	char *lp = local >= 2 && addr[0] == '"' && addr[local - 1] == '"'
	               ? xstrndup(addr + 1, local - 2)
	               : xstrndup(addr, local);
	*mbox_r = casemap_key(lp);
	if (name_r != NULL) {
		if (name != NULL) {
			*name_r = casemap_key(name);
		} else {
			struct buf b;
			buf_init(&b, SIZE_MAX);
			buf_append_str(&b, lp);
			if (at != NULL)
				buf_append_str(&b, at);
			char *spec = xstrndup(b.data != NULL ? b.data : "", b.len);
			buf_free(&b);
			*name_r = casemap_key(spec);
			free(spec);
		}
	}
	free(lp);
}

/* The msg-ids of a References (or In-Reply-To) value, space separated, the last
 * THREAD_REFS_MAX of them, or NULL when it has none. */
static char *thread_ids(const char *value)
{
	if (value == NULL)
		return NULL;
	GMimeReferences *refs = g_mime_references_parse(NULL, value);
	if (refs == NULL)
		return NULL;
	int n = g_mime_references_length(refs);
	struct buf b;
	buf_init(&b, SIZE_MAX);
	for (int i = n > THREAD_REFS_MAX ? n - THREAD_REFS_MAX : 0; i < n; i++) {
		const char *id = g_mime_references_get_message_id(refs, i);
		if (id == NULL || id[0] == '\0' || strpbrk(id, " \t\r\n") != NULL)
			continue;
		if (b.len > 0)
			buf_append_str(&b, " ");
		buf_append_str(&b, id);
	}
	g_mime_references_free(refs);
	char *out = b.len > 0 ? xstrndup(b.data, b.len) : NULL;
	buf_free(&b);
	return out;
}

/* THREAD=REFERENCES step 1: References' msg-ids, else (none, or none valid) the first of
 * In-Reply-To. */
static char *thread_refs(GMimeMessage *msg)
{
	char *ids = thread_ids(g_mime_object_get_header(GMIME_OBJECT(msg), "References"));
	if (ids != NULL)
		return ids;
	ids = thread_ids(g_mime_object_get_header(GMIME_OBJECT(msg), "In-Reply-To"));
	if (ids != NULL)
		ids[strcspn(ids, " ")] = '\0';
	return ids;
}

static void sort_keys(GMimeMessage *msg, struct store_mime_info *info)
{
	const char *subject = info->subject != NULL ? info->subject : "";
	char *base = basesubject_get(subject, strlen(subject), &info->sort_reply);
	info->sort_subject = casemap_key(base);
	free(base);
	sort_address(g_mime_message_get_from(msg), &info->sort_from, &info->sort_from_name);
	sort_address(g_mime_message_get_to(msg), &info->sort_to, &info->sort_to_name);
	sort_address(g_mime_message_get_cc(msg), &info->sort_cc, NULL);
	info->thread_refs = thread_refs(msg);
}

/* The builder's document as a new string. */
static char *json_build(JsonBuilder *jb)
{
	JsonNode *node = json_builder_get_root(jb);
	JsonGenerator *gen = json_generator_new();
	json_generator_set_root(gen, node);
	gchar *s = json_generator_to_data(gen, NULL);
	char *out = xstrdup(s);
	g_free(s);
	g_object_unref(gen);
	json_node_unref(node);
	return out;
}

/* The header block as SEARCH TEXT sees it: the raw fields (bytes that are not UTF-8 become
 * U+FFFD, as FTS5 wants text), and when the header has encoded words (RFC 2047), the
 * decoded Subject, From, To and Cc after it, so that a search finds what the client shows
 * as well as what is written. msg may be NULL (a message GMime cannot parse). */
static char *index_header(struct walk *w, GMimeMessage *msg, const struct store_mime_info *info)
{
	gint64 end = header_end(w, 0);
	if (end > HEADER_INDEX_MAX)
		end = HEADER_INDEX_MAX;
	if (end <= 0)
		return NULL;
	char *raw = xmalloc((size_t)end + 1);
	gint64 n = 0, got;
	while (n < end && (got = src_read(w, n, raw + n, (size_t)(end - n))) > 0)
		n += got;
	if (n <= 0) {
		free(raw);
		return NULL;
	}
	raw[n] = '\0';
	gchar *valid = g_utf8_make_valid(raw, (gssize)n);
	free(raw);
	struct buf b;
	buf_init(&b, SIZE_MAX);
	buf_append_str(&b, valid);
	if (msg != NULL && strstr(valid, "=?") != NULL) {
		const char *const decoded[] = {info->subject, info->from, info->to, info->cc};
		for (size_t i = 0; i < sizeof(decoded) / sizeof(decoded[0]); i++) {
			if (decoded[i] != NULL && g_utf8_validate(decoded[i], -1, NULL)) {
				buf_append_str(&b, decoded[i]);
				buf_append_str(&b, "\n");
			}
		}
	}
	g_free(valid);
	char *out = xstrndup(b.data, b.len);
	buf_free(&b);
	return out;
}

/* A message GMime cannot parse: one text/plain part after the header. */
static char *json_unparsed(struct walk *w)
{
	JsonBuilder *jb = w->jb;
	gint64 hdr_end = header_end(w, 0);
	json_builder_begin_object(jb);
	jint(jb, "v", STORE_MIME_VERSION);
	jstr(jb, "type", "text");
	jstr(jb, "subtype", "plain");
	json_builder_set_member_name(jb, "params");
	json_builder_begin_array(jb);
	json_builder_end_array(jb);
	jint(jb, "header_offset", 0);
	jint(jb, "header_length", hdr_end);
	jint(jb, "body_offset", hdr_end);
	jint(jb, "body_length", w->size - hdr_end);
	jint(jb, "lines", count_lines(w, hdr_end, w->size - hdr_end));
	json_builder_end_object(jb);
	return json_build(jb);
}

static int parse_stream(GMimeStream *stream, gint64 size, struct store_mime_info *info)
{
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_persist_stream(parser, TRUE);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	if (msg == NULL) {
		/* Not parseable as MIME: stored all the same, as one text part. */
		struct walk w = {.jb = json_builder_new(), .src = stream, .size = size};
		info->json = json_unparsed(&w);
		info->header = index_header(&w, NULL, info);
		g_object_unref(w.jb);
		return 0;
	}

	const char *subject = g_mime_message_get_subject(msg);
	info->subject = subject != NULL ? xstrdup(subject) : NULL;
	info->from = address_list(g_mime_message_get_from(msg));
	info->to = address_list(g_mime_message_get_to(msg));
	info->cc = address_list(g_mime_message_get_cc(msg));
	const char *mid = g_mime_message_get_message_id(msg);
	info->message_id = mid != NULL ? xstrdup(mid) : NULL;
	GDateTime *date = g_mime_message_get_date(msg);
	info->date = date != NULL ? (int64_t)g_date_time_to_unix(date) : 0;
	sort_keys(msg, info);

	struct walk w = {.jb = json_builder_new(), .src = stream, .size = size};
	buf_init(&w.text, STORE_FTS_MAX + 2);
	GMimeObject *root = g_mime_message_get_mime_part(msg);
	if (root != NULL) {
		walk_object(&w, root, 0, 0, NULL, msg);
		info->json = json_build(w.jb);
	} else {
		info->json = json_unparsed(&w);
	}
	if (w.text.len > 0)
		info->text = xstrndup(w.text.data, w.text.len);
	info->preview = w.preview;
	info->header = index_header(&w, msg, info);
	buf_free(&w.text);
	g_object_unref(w.jb);
	g_object_unref(msg);
	return 0;
}

int store_mime_parse_mem(const void *data, size_t size, struct store_mime_info *info)
{
	memset(info, 0, sizeof(*info));
	pthread_once(&mime_once, mime_init);
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, size);
	int rc = parse_stream(stream, g_mime_stream_length(stream), info);
	g_object_unref(stream);
	return rc;
}

int store_mime_parse_file(const char *path, bool sealed, struct store_mime_info *info)
{
	memset(info, 0, sizeof(*info));
	pthread_once(&mime_once, mime_init);
	GMimeStream *stream = store_spool_stream_open(path, sealed);
	if (stream == NULL)
		return -EIO;
	int rc = parse_stream(stream, g_mime_stream_length(stream), info);
	g_object_unref(stream);
	return rc;
}
