/*
 * OBJECTID, SAVEDATE and PREVIEW formatting (imap_objectid.h).
 */
#include <stdio.h>
#include <string.h>

#include "server/imap/imap_fetch_fmt.h"
#include "server/imap/imap_objectid.h"

void imap_fmt_objectid(struct buf *o, char kind, uint64_t id)
{
	buf_printf(o, "%c%016llx", kind, (unsigned long long)id);
}

bool imap_objectid_parse(const char *s, size_t len, char kind, uint64_t *id_r)
{
	if (len != IMAP_OBJECTID_LEN || s[0] != kind)
		return false;
	uint64_t v = 0;
	for (size_t i = 1; i < len; i++) {
		char c = s[i];
		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return false; /* the server writes lower case: "FA..." is another id */
	}
	*id_r = v;
	return true;
}

void imap_fmt_meta(struct buf *o, enum imap_meta_item item, const struct store_msg *m, bool utf8)
{
	switch (item) {
	case IMAP_META_EMAILID:
		buf_append_str(o, "EMAILID (");
		imap_fmt_objectid(o, 'M', m->email_id);
		buf_append_str(o, ")");
		break;
	case IMAP_META_THREADID:
		/* A message stored without a thread (none before the store kept them) is NIL,
		 * as RFC 8474 5.2 has for a message in no thread. */
		if (m->thread_id == 0) {
			buf_append_str(o, "THREADID NIL");
			break;
		}
		buf_append_str(o, "THREADID (");
		imap_fmt_objectid(o, 'T', m->thread_id);
		buf_append_str(o, ")");
		break;
	case IMAP_META_SAVEDATE:
		buf_append_str(o, "SAVEDATE ");
		if (m->save_date == 0)
			buf_append_str(o, "NIL");
		else
			imap_fmt_date(o, m->save_date);
		break;
	case IMAP_META_PREVIEW:
		/* RFC 8970 3.1: the empty string when the message has no text to show. */
		buf_append_str(o, "PREVIEW ");
		imap_fmt_string(o, m->preview != NULL ? m->preview : "",
		                m->preview != NULL ? strlen(m->preview) : 0, utf8);
		break;
	}
}
