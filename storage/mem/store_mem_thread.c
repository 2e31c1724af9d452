/*
 * THREADID and random ids for the in-memory store: the rules of store_thread.c (the
 * message joins the thread of the first of its own Message-ID, then its references
 * nearest first, that the user's mail named before; else a new thread), over a per-user
 * array.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/xmalloc.h"
#include "storage/mem/store_mem_private.h"

uint64_t mem_random64(void)
{
	uint64_t v = 0;
	while (v == 0)
		if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
			v = 0;
	return v;
}

static struct mem_thread_ref *thread_find(struct mem_user *u, const char *id)
{
	for (size_t i = 0; i < u->n_threads; i++)
		if (strcmp(u->threads[i].message_id, id) == 0)
			return &u->threads[i];
	return NULL;
}

uint64_t mem_thread_assign(struct mem_store *m, int64_t user_id, const struct mem_content *c)
{
	struct mem_user *u = mem_user_by_id(m, user_id);
	struct store_mime_info info = {0};
	if (u == NULL || store_mime_parse_mem(c->data, c->size, &info) < 0) {
		store_mime_info_clear(&info);
		return mem_random64();
	}
	const char *ids[129];
	size_t n = 0;
	if (info.message_id != NULL && info.message_id[0] != '\0')
		ids[n++] = info.message_id;
	const char *refs[128];
	size_t nr = 0;
	for (char *save = NULL,
	          *t = info.thread_refs != NULL ? strtok_r(info.thread_refs, " ", &save) : NULL;
	     t != NULL && nr < 128; t = strtok_r(NULL, " ", &save))
		refs[nr++] = t;
	while (nr > 0)
		ids[n++] = refs[--nr];
	uint64_t thread = 0;
	for (size_t i = 0; i < n && thread == 0; i++) {
		struct mem_thread_ref *r = thread_find(u, ids[i]);
		thread = r != NULL ? r->thread_id : 0;
	}
	if (thread == 0)
		thread = mem_random64();
	for (size_t i = 0; i < n; i++) {
		if (thread_find(u, ids[i]) != NULL)
			continue;
		u->threads = xreallocarray(u->threads, u->n_threads + 1, sizeof(*u->threads));
		u->threads[u->n_threads++] =
		    (struct mem_thread_ref){.message_id = xstrdup(ids[i]), .thread_id = thread};
	}
	store_mime_info_clear(&info);
	return thread;
}

void mem_threads_free(struct mem_user *u)
{
	for (size_t i = 0; i < u->n_threads; i++)
		free(u->threads[i].message_id);
	free(u->threads);
	u->threads = NULL;
	u->n_threads = 0;
}
