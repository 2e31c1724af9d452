/*
 * Reading messages: the list of a mailbox (SELECT), one message with what IMAP FETCH
 * needs, content by byte range (BODY[]<partial>, POP3 RETR streaming), VANISHED, and
 * SEARCH BODY/TEXT over the FTS5 index. Also the keyword set helpers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "storage/sqlite/store_private.h"

#define KEYWORDS_MAX_LEN 4096

void store_msg_load(sqlite3_stmt *st, struct store_msg *m)
{
	m->uid = (uint32_t)sqlite3_column_int64(st, 0);
	m->modseq = (uint64_t)sqlite3_column_int64(st, 1);
	m->flags = (unsigned)sqlite3_column_int(st, 2);
	m->keywords = store_col_text(st, 3);
	if (m->keywords == NULL)
		m->keywords = xstrdup("");
	m->internal_date = sqlite3_column_int64(st, 4);
	m->size = (uint64_t)sqlite3_column_int64(st, 5);
	m->content_id = sqlite3_column_int64(st, 6);
	m->email_id = (uint64_t)sqlite3_column_int64(st, 7);
	m->thread_id = (uint64_t)sqlite3_column_int64(st, 8);
	m->save_date = sqlite3_column_int64(st, 9);
}

/* ---- Keywords ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* IMAP atom characters, and not a system flag. */
static bool keyword_valid(const char *k)
{
	if (k[0] == '\\' || k[0] == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)k; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\]", *p) != NULL)
			return false;
	return true;
}

int store_keywords_normalize(const char *in, char **out_r)
{
	*out_r = NULL;
	if (in == NULL || in[0] == '\0') {
		*out_r = xstrdup("");
		return 0;
	}
	if (strlen(in) > KEYWORDS_MAX_LEN)
		return -EINVAL;
	char *copy = xstrdup(in);
	char **words = NULL;
	size_t n = 0;
	for (char *p = copy; *p != '\0';) {
		while (*p == ' ')
			*p++ = '\0';
		if (*p == '\0')
			break;
		char *w = p;
		while (*p != ' ' && *p != '\0')
			p++;
		if (*p == ' ')
			*p++ = '\0';
		if (!keyword_valid(w)) {
			free(words);
			free(copy);
			return -EINVAL;
		}
		words = xreallocarray(words, n + 1, sizeof(*words));
		words[n++] = w;
	}
	qsort(words, n, sizeof(*words), cmp_str);
	char *out = xmalloc(strlen(in) + 1);
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(words[i], words[i - 1]) == 0)
			continue;
		if (len > 0)
			out[len++] = ' ';
		size_t wl = strlen(words[i]);
		memcpy(out + len, words[i], wl);
		len += wl;
	}
	out[len] = '\0';
	free(words);
	free(copy);
	*out_r = out;
	return 0;
}

static bool kw_has(const char *list, const char *word, size_t wl)
{
	for (const char *p = list; *p != '\0';) {
		const char *e = strchr(p, ' ');
		size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
		if (n == wl && memcmp(p, word, wl) == 0)
			return true;
		p += n + (e != NULL);
	}
	return false;
}

char *store_keywords_apply(const char *cur, const char *delta, enum store_flag_mode mode)
{
	size_t cap = strlen(cur) + strlen(delta) + 2;
	char *joined = xmalloc(cap);
	size_t len = 0;
	for (const char *p = cur; *p != '\0';) {
		const char *e = strchr(p, ' ');
		size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
		if (mode != STORE_FLAGS_REMOVE || !kw_has(delta, p, n)) {
			if (len > 0)
				joined[len++] = ' ';
			memcpy(joined + len, p, n);
			len += n;
		}
		p += n + (e != NULL);
	}
	if (mode == STORE_FLAGS_ADD && delta[0] != '\0') {
		if (len > 0)
			joined[len++] = ' ';
		memcpy(joined + len, delta, strlen(delta));
		len += strlen(delta);
	}
	joined[len] = '\0';
	char *out = NULL;
	store_keywords_normalize(joined, &out); /* parts were valid: cannot fail */
	free(joined);
	return out != NULL ? out : xstrdup("");
}

struct store_uid_range *store_ranges_dup(const struct store_uid_range *r, size_t n)
{
	struct store_uid_range *out = xcalloc(n + 1, sizeof(*out));
	if (n > 0)
		memcpy(out, r, n * sizeof(*r));
	return out;
}

/* ---- Jobs ---- */

struct msg_job {
	struct store_job job;
	int64_t mailbox_id;
	uint32_t uid;
	uint64_t since;
	uint64_t offset;
	size_t max_len;
	char *text;
	bool body_only, scan; /* search */
};

static void msg_job_free(struct store_job *job)
{
	free(((struct msg_job *)job)->text);
}

static struct msg_job *msg_job_new(struct sqlite_store *s, store_job_run_fn *run,
                                   int64_t mailbox_id, store_backend_cb *cb, void *ctx)
{
	struct msg_job *j = store_job_new(sizeof(*j), s, STORE_JOB_READ, run, cb, ctx);
	j->job.free_args = msg_job_free;
	j->mailbox_id = mailbox_id;
	return j;
}

static int list_run(struct store_conn *c, struct store_job *job)
{
	struct msg_job *j = (struct msg_job *)job;
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc = store_exec_stmt(c, SQL_BEGIN_READ); /* one snapshot for both queries */
	if (rc < 0)
		return rc;
	st = store_stmt(c, SQL_MAILBOX_BY_ID);
	if (st == NULL) {
		rc = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, j->mailbox_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		job->res.uidvalidity = (uint32_t)sqlite3_column_int64(st, 5);
		job->res.modseq = (uint64_t)sqlite3_column_int64(st, 7);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? -ENOENT : store_err(c->db, rc);
		goto out;
	}
	st = store_stmt(c, j->since > 0 ? SQL_ENTRY_LIST_SINCE : SQL_ENTRY_LIST);
	if (st == NULL) {
		rc = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, j->mailbox_id);
	if (j->since > 0)
		sqlite3_bind_int64(st, 2, (sqlite3_int64)j->since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (job->res.n_msgs == cap) {
			cap = cap != 0 ? cap * 2 : 64;
			job->res.msgs = xreallocarray(job->res.msgs, cap, sizeof(*job->res.msgs));
		}
		memset(&job->res.msgs[job->res.n_msgs], 0, sizeof(*job->res.msgs));
		store_msg_load(st, &job->res.msgs[job->res.n_msgs++]);
	}
	sqlite3_reset(st);
	rc = rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
out:
	store_exec_stmt(c, SQL_COMMIT);
	return rc;
}

int sqlite_store_message_list(void *impl, int64_t mailbox_id, uint64_t changed_since,
                              store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	struct msg_job *j = msg_job_new(s, list_run, mailbox_id, cb, ctx);
	j->since = changed_since;
	return store_job_submit(&j->job);
}

static int get_run(struct store_conn *c, struct store_job *job)
{
	struct msg_job *j = (struct msg_job *)job;
	sqlite3_stmt *st = store_stmt(c, SQL_ENTRY_GET);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, j->mailbox_id);
	sqlite3_bind_int64(st, 2, j->uid);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		struct store_msg *m = xcalloc(1, sizeof(*m));
		store_msg_load(st, m);
		m->mime_json = store_col_text(st, 10);
		m->hdr_from = store_col_text(st, 11);
		m->hdr_to = store_col_text(st, 12);
		m->hdr_cc = store_col_text(st, 13);
		m->hdr_subject = store_col_text(st, 14);
		m->hdr_message_id = store_col_text(st, 15);
		m->hdr_date = sqlite3_column_int64(st, 16);
		m->preview = store_col_text(st, 17);
		job->res.msgs = m;
		job->res.n_msgs = 1;
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : store_err(c->db, rc);
	}
	sqlite3_reset(st);
	return rc;
}

int sqlite_store_message_get(void *impl, int64_t mailbox_id, uint32_t uid, store_backend_cb *cb,
                             void *ctx)
{
	struct sqlite_store *s = impl;
	struct msg_job *j = msg_job_new(s, get_run, mailbox_id, cb, ctx);
	j->uid = uid;
	return store_job_submit(&j->job);
}

struct structs_job {
	struct store_job job;
	int64_t mailbox_id;
	uint32_t *uids;
	size_t n;
	size_t max_total;
	bool with_mime;    /* message_structures: the stored structure of each */
	bool with_content; /* the whole content of each */
};

static void structs_job_free(struct store_job *job)
{
	free(((struct structs_job *)job)->uids);
}

static int structs_run(struct store_conn *c, struct store_job *job)
{
	struct structs_job *j = (struct structs_job *)job;
	/* Prepared once per connection: a FETCH of one message runs this for that message. */
	sqlite3_stmt *st = store_stmt(c, j->with_mime ? SQL_STRUCTS_MIME : SQL_STRUCTS);
	if (st == NULL)
		return -EIO;
	int rc = store_exec_stmt(c, SQL_BEGIN_READ); /* one snapshot for the whole batch */
	if (rc < 0)
		return rc;
	size_t total = 0, data_len = 0, data_cap = 0;
	job->res.msgs = xcalloc(j->n, sizeof(*job->res.msgs));
	for (size_t i = 0; i < j->n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, j->mailbox_id);
		sqlite3_bind_int64(st, 2, j->uids[i]);
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			continue; /* expunged meanwhile: left out */
		if (rc != SQLITE_ROW) {
			rc = store_err(c->db, rc);
			goto out;
		}
		uint64_t size = (uint64_t)sqlite3_column_int64(st, 0);
		int64_t content_id = sqlite3_column_int64(st, 1);
		size_t json_len = (size_t)sqlite3_column_bytes(st, 2);
		uint64_t need = json_len + (j->with_content ? size : 0);
		if (need > j->max_total - total && (job->res.n_msgs > 0 || j->with_content))
			break; /* the caller asks again from here */
		/* The buffer grows to what the batch holds (at most max_total): a FETCH of one
		 * small message allocates kilobytes, not the batch's megabyte. */
		if (j->with_content && data_len + size + 1 > data_cap) {
			size_t want = data_cap == 0 ? 64 * 1024 : data_cap * 2;
			while (want < data_len + size + 1)
				want *= 2;
			if (want > j->max_total + 1)
				want = j->max_total + 1;
			job->res.data = xrealloc(job->res.data, want);
			data_cap = want;
		}
		if (j->with_content && size > 0) {
			sqlite3_blob *blob = NULL;
			rc = sqlite3_blob_open(c->db, "main", "contents", "body", content_id, 0,
			                       &blob);
			if (rc == SQLITE_OK)
				rc =
				    sqlite3_blob_read(blob, job->res.data + data_len, (int)size, 0);
			sqlite3_blob_close(blob);
			if (rc != SQLITE_OK) {
				rc = store_err(c->db, rc);
				goto out;
			}
			data_len += size;
		}
		struct store_msg *m = &job->res.msgs[job->res.n_msgs++];
		m->uid = j->uids[i];
		m->size = size;
		m->content_id = content_id;
		m->mime_json = store_col_text(st, 2);
		m->email_id = (uint64_t)sqlite3_column_int64(st, 3);
		m->thread_id = (uint64_t)sqlite3_column_int64(st, 4);
		m->save_date = sqlite3_column_int64(st, 5);
		m->preview = store_col_text(st, 6);
		total += need < j->max_total - total ? need : j->max_total - total;
	}
	if (j->with_content && job->res.data == NULL)
		job->res.data = xmalloc(1); /* callers may count on a buffer */
	job->res.data_len = data_len;
	rc = 0;
out:
	store_exec_stmt(c, SQL_COMMIT);
	sqlite3_reset(st);
	return rc;
}

/* One batch read serves both the structures (FETCH BODYSTRUCTURE, sections) and the
 * contents of many small messages (FETCH BODY[]): the same snapshot, order and limits. */
static int structs_submit(struct sqlite_store *s, int64_t mailbox_id, const uint32_t *uids,
                          size_t n, size_t max_total, bool with_mime, bool with_content,
                          store_backend_cb *cb, void *ctx)
{
	if (n == 0 || max_total == 0 || max_total > STORE_READ_MAX)
		return -EINVAL;
	struct structs_job *j = store_job_new(sizeof(*j), s, STORE_JOB_READ, structs_run, cb, ctx);
	j->job.free_args = structs_job_free;
	j->mailbox_id = mailbox_id;
	j->uids = xmalloc(n * sizeof(*uids));
	memcpy(j->uids, uids, n * sizeof(*uids));
	j->n = n;
	j->max_total = max_total;
	j->with_mime = with_mime;
	j->with_content = with_content;
	return store_job_submit(&j->job);
}

int sqlite_store_message_structures(void *impl, int64_t mailbox_id, const uint32_t *uids, size_t n,
                                    size_t max_total, bool with_content, store_backend_cb *cb,
                                    void *ctx)
{
	return structs_submit(impl, mailbox_id, uids, n, max_total, true, with_content, cb, ctx);
}

int sqlite_store_content_read_batch(void *impl, int64_t mailbox_id, const uint32_t *uids, size_t n,
                                    size_t max_total, store_backend_cb *cb, void *ctx)
{
	return structs_submit(impl, mailbox_id, uids, n, max_total, false, true, cb, ctx);
}

static int read_run(struct store_conn *c, struct store_job *job)
{
	struct msg_job *j = (struct msg_job *)job;
	sqlite3_stmt *st = store_stmt(c, SQL_ENTRY_CONTENT);
	int64_t content_id = 0;
	int rc;
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, j->mailbox_id);
	sqlite3_bind_int64(st, 2, j->uid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		content_id = sqlite3_column_int64(st, 0);
		job->res.total_size = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? -ENOENT : store_err(c->db, rc);
	return store_content_range(c, content_id, j->offset, j->max_len, &job->res);
}

int store_content_range(struct store_conn *c, int64_t content_id, uint64_t offset, size_t max_len,
                        struct store_backend_result *res)
{
	sqlite3_blob *blob = NULL;
	if (offset >= res->total_size) {
		res->data = xmalloc(1);
		return 0;
	}
	size_t n =
	    res->total_size - offset < max_len ? (size_t)(res->total_size - offset) : max_len;
	int rc = sqlite3_blob_open(c->db, "main", "contents", "body", content_id, 0, &blob);
	if (rc != SQLITE_OK)
		return store_err(c->db, rc);
	res->data = xmalloc(n + 1);
	rc = sqlite3_blob_read(blob, res->data, (int)n, (int)offset);
	sqlite3_blob_close(blob);
	if (rc != SQLITE_OK)
		return store_err(c->db, rc);
	res->data_len = n;
	return 0;
}

int sqlite_store_content_read(void *impl, int64_t mailbox_id, uint32_t uid, uint64_t offset,
                              size_t max_len, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	if (max_len == 0 || max_len > STORE_READ_MAX)
		return -EINVAL;
	struct msg_job *j = msg_job_new(s, read_run, mailbox_id, cb, ctx);
	j->uid = uid;
	j->offset = offset;
	j->max_len = max_len;
	return store_job_submit(&j->job);
}

static int uids_run(struct store_conn *c, struct store_job *job, sqlite3_stmt *st)
{
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (job->res.n_uids == cap) {
			cap = cap != 0 ? cap * 2 : 64;
			job->res.uids = xreallocarray(job->res.uids, cap, sizeof(*job->res.uids));
		}
		job->res.uids[job->res.n_uids++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
}

static int vanished_run(struct store_conn *c, struct store_job *job)
{
	struct msg_job *j = (struct msg_job *)job;
	sqlite3_stmt *st = store_stmt(c, SQL_EXPUNGED_SINCE);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, j->mailbox_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)j->since);
	return uids_run(c, job, st);
}

int sqlite_store_vanished(void *impl, int64_t mailbox_id, uint64_t since_modseq,
                          store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	struct msg_job *j = msg_job_new(s, vanished_run, mailbox_id, cb, ctx);
	j->since = since_modseq;
	return store_job_submit(&j->job);
}

/*
 * BODY and TEXT are case-insensitive substring matches (RFC 3501 6.4.4). The index is FTS5
 * with the trigram tokenizer: a string of three or more characters becomes one FTS5 phrase
 * of its trigrams, which matches exactly where the string occurs, case folded. A shorter
 * string has no trigram to look up and is compared with LIKE against each message's
 * indexed text instead, read by rowid.
 */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* The string as one FTS5 phrase, restricted to the body column for BODY; quoted, so no
 * FTS5 syntax gets through. */
static char *fts_query(const char *text, bool body_only)
{
	struct buf b;
	buf_init(&b, SIZE_MAX);
	buf_append_str(&b, body_only ? "body : \"" : "\"");
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '"')
			buf_append(&b, "\"", 1);
		buf_append(&b, p, 1);
	}
	buf_append(&b, "\"", 1);
	char *q = xstrndup(b.data, b.len);
	buf_free(&b);
	return q;
}

/* The string as a LIKE pattern, its own '%', '_' and '\\' escaped. */
static char *like_pattern(const char *text)
{
	struct buf b;
	buf_init(&b, SIZE_MAX);
	buf_append(&b, "%", 1);
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '%' || *p == '_' || *p == '\\')
			buf_append(&b, "\\", 1);
		buf_append(&b, p, 1);
	}
	buf_append(&b, "%", 1);
	char *q = xstrndup(b.data, b.len);
	buf_free(&b);
	return q;
}

static int search_run(struct store_conn *c, struct store_job *job)
{
	struct msg_job *j = (struct msg_job *)job;
	sqlite3_stmt *st = store_stmt(c, j->scan ? SQL_SEARCH_SCAN : SQL_SEARCH_TEXT);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, j->mailbox_id);
	store_bind_text(st, 2, j->text);
	if (j->scan)
		sqlite3_bind_int(st, 3, !j->body_only);
	return uids_run(c, job, st);
}

static int search_submit(struct sqlite_store *s, int64_t mailbox_id, const char *text,
                         bool body_only, store_backend_cb *cb, void *ctx)
{
	if (text == NULL || strlen(text) > KEYWORDS_MAX_LEN)
		return -EINVAL;
	struct msg_job *j = msg_job_new(s, search_run, mailbox_id, cb, ctx);
	j->body_only = body_only;
	j->scan = utf8_chars(text) < 3;
	j->text = j->scan ? like_pattern(text) : fts_query(text, body_only);
	return store_job_submit(&j->job);
}

int sqlite_store_search_text(void *impl, int64_t mailbox_id, const char *text, store_backend_cb *cb,
                             void *ctx)
{
	return search_submit(impl, mailbox_id, text, false, cb, ctx);
}

int sqlite_store_search_body(void *impl, int64_t mailbox_id, const char *text, store_backend_cb *cb,
                             void *ctx)
{
	return search_submit(impl, mailbox_id, text, true, cb, ctx);
}
