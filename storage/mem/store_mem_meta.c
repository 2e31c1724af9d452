/*
 * Annotations (IMAP METADATA) in the in-memory store: one array of entries under the
 * store's lock, with the SQLite backend's semantics (all-or-none changes, the per-user
 * entry limit, a mailbox's entries going with it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "storage/mem/store_mem_private.h"

static void annot_clear(struct mem_annot *a)
{
	free(a->name);
	free(a->value);
}

void mem_meta_drop(struct mem_store *m, int64_t user_id, int64_t mailbox_id)
{
	for (size_t i = m->n_annots; i-- > 0;) {
		struct mem_annot *a = &m->annots[i];
		if (a->user_id != user_id || (mailbox_id != 0 && a->mailbox_id != mailbox_id))
			continue;
		annot_clear(a);
		m->annots[i] = m->annots[--m->n_annots];
	}
}

static unsigned char *value_dup(const void *v, size_t len)
{
	unsigned char *p = xmalloc(len + 1);
	if (len > 0)
		memcpy(p, v, len);
	p[len] = '\0';
	return p;
}

static void annot_add(struct mem_store *m, int64_t user_id, int64_t mailbox_id, const char *name,
                      const void *value, size_t len)
{
	m->annots = xreallocarray(m->annots, m->n_annots + 1, sizeof(*m->annots));
	m->annots[m->n_annots++] = (struct mem_annot){.user_id = user_id,
	                                              .mailbox_id = mailbox_id,
	                                              .name = xstrdup(name),
	                                              .value = value_dup(value, len),
	                                              .len = len};
}

void mem_meta_copy(struct mem_store *m, int64_t src, int64_t dst)
{
	size_t n = m->n_annots; /* the copies are appended: not copied again */
	for (size_t i = 0; i < n; i++) {
		struct mem_annot a = m->annots[i];
		if (a.mailbox_id == src)
			annot_add(m, a.user_id, dst, a.name, a.value, a.len);
	}
}

void mem_meta_free(struct mem_store *m)
{
	for (size_t i = 0; i < m->n_annots; i++)
		annot_clear(&m->annots[i]);
	free(m->annots);
	m->annots = NULL;
	m->n_annots = 0;
}

static bool owned(struct mem_store *m, int64_t user_id, int64_t mailbox_id)
{
	if (mailbox_id == 0)
		return true;
	struct mem_mailbox *mb = mem_mailbox_by_id(m, mailbox_id);
	return mb != NULL && mb->user_id == user_id;
}

static size_t annot_find(struct mem_store *m, int64_t user_id, int64_t mailbox_id, const char *name)
{
	for (size_t i = 0; i < m->n_annots; i++) {
		const struct mem_annot *a = &m->annots[i];
		if (a->user_id == user_id && a->mailbox_id == mailbox_id &&
		    strcmp(a->name, name) == 0)
			return i;
	}
	return SIZE_MAX;
}

static uint64_t user_count(struct mem_store *m, int64_t user_id)
{
	uint64_t n = 0;
	for (size_t i = 0; i < m->n_annots; i++)
		n += m->annots[i].user_id == user_id;
	return n;
}

int mem_store_metadata_get(void *impl, int64_t user_id, int64_t mailbox_id,
                           const char *const *names, size_t n, int depth, store_backend_cb *cb,
                           void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	int rc = 0;
	pthread_mutex_lock(&m->lock);
	if (!owned(m, user_id, mailbox_id)) {
		rc = -ENOENT;
	} else {
		for (size_t i = 0; i < m->n_annots; i++) {
			const struct mem_annot *a = &m->annots[i];
			if (a->user_id != user_id || a->mailbox_id != mailbox_id ||
			    !store_meta_matches(a->name, names, n, depth))
				continue;
			res.meta = xreallocarray(res.meta, res.n_meta + 1, sizeof(*res.meta));
			res.meta[res.n_meta++] =
			    (struct store_meta_entry){.name = xstrdup(a->name),
			                              .value = value_dup(a->value, a->len),
			                              .len = a->len};
		}
		store_meta_sort(res.meta, res.n_meta);
	}
	mem_done(m, cb, ctx, rc, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int mem_store_metadata_set(void *impl, int64_t user_id, int64_t mailbox_id,
                           const struct store_meta_change *changes, size_t n, uint64_t max_entries,
                           store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	int rc = 0;
	pthread_mutex_lock(&m->lock);
	if (!owned(m, user_id, mailbox_id)) {
		rc = -ENOENT;
	} else if (max_entries > 0) {
		/* All or none: count what the change would leave before making it. */
		uint64_t before = user_count(m, user_id), after = before;
		for (size_t i = 0; i < n; i++) {
			bool dup = false;
			for (size_t k = 0; k < i; k++)
				dup = dup || strcmp(changes[k].name, changes[i].name) == 0;
			if (dup)
				continue; /* the last change of a name decides; counted below */
			size_t last = i;
			for (size_t k = i + 1; k < n; k++)
				if (strcmp(changes[k].name, changes[i].name) == 0)
					last = k;
			bool exists =
			    annot_find(m, user_id, mailbox_id, changes[i].name) != SIZE_MAX;
			bool will = changes[last].value != NULL;
			after = after + (will && !exists) - (!will && exists);
		}
		if (after > max_entries && after > before)
			rc = -EDQUOT;
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct store_meta_change *ch = &changes[i];
		size_t k = annot_find(m, user_id, mailbox_id, ch->name);
		if (ch->value == NULL) {
			if (k != SIZE_MAX) {
				annot_clear(&m->annots[k]);
				m->annots[k] = m->annots[--m->n_annots];
			}
		} else if (k != SIZE_MAX) {
			free(m->annots[k].value);
			m->annots[k].value = value_dup(ch->value, ch->len);
			m->annots[k].len = ch->len;
		} else {
			annot_add(m, user_id, mailbox_id, ch->name, ch->value, ch->len);
		}
	}
	mem_done(m, cb, ctx, rc, NULL, true);
	pthread_mutex_unlock(&m->lock);
	return 0;
}
