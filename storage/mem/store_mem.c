/*
 * The in-memory backend ("mem"): users, mailboxes and certificates, and the table. It keeps
 * the semantics of the SQLite backend where the protocol code can tell (ids, UIDs, modseqs,
 * errors), so protocol tests run against a real store; nothing survives store_close.
 * Passwords are kept as a salted SHA-256 compared in constant time: a test store needs no
 * yescrypt. It has no MIME parsing: store_message_get gives one text/plain part, and the
 * header fields are as written (no RFC 2047 decoding, no Date).
 */
#include <errno.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/xmalloc.h"
#include "storage/mem/store_mem_private.h"

/* ---- Shared pieces ---- */

struct mem_user *mem_user_by_id(struct mem_store *m, int64_t id)
{
	for (size_t i = 0; i < m->n_users; i++)
		if (m->users[i].id == id)
			return &m->users[i];
	return NULL;
}

struct mem_user *mem_user_by_address(struct mem_store *m, const char *address)
{
	for (size_t i = 0; i < m->n_users; i++)
		if (strcmp(m->users[i].address, address) == 0)
			return &m->users[i];
	return NULL;
}

struct mem_mailbox *mem_mailbox_by_id(struct mem_store *m, int64_t id)
{
	for (size_t i = 0; i < m->n_mailboxes; i++)
		if (m->mailboxes[i]->id == id)
			return m->mailboxes[i];
	return NULL;
}

struct mem_mailbox *mem_mailbox_by_name(struct mem_store *m, int64_t user_id, const char *name)
{
	if (strcasecmp(name, "INBOX") == 0)
		name = "INBOX";
	for (size_t i = 0; i < m->n_mailboxes; i++)
		if (m->mailboxes[i]->user_id == user_id && strcmp(m->mailboxes[i]->name, name) == 0)
			return m->mailboxes[i];
	return NULL;
}

/* Subscriptions are names of the user, kept when their mailbox goes (RFC 3501 6.3.6). */
static size_t sub_find(const struct mem_user *u, const char *name)
{
	for (size_t i = 0; i < u->n_subs; i++)
		if (strcmp(u->subs[i], name) == 0)
			return i;
	return SIZE_MAX;
}

static void sub_set(struct mem_store *m, int64_t user_id, const char *name, bool on)
{
	struct mem_user *u = mem_user_by_id(m, user_id);
	if (u == NULL)
		return;
	size_t i = sub_find(u, name);
	if (on && i == SIZE_MAX) {
		u->subs = xreallocarray(u->subs, u->n_subs + 1, sizeof(*u->subs));
		u->subs[u->n_subs++] = xstrdup(name);
	} else if (!on && i != SIZE_MAX) {
		free(u->subs[i]);
		u->subs[i] = u->subs[--u->n_subs];
	}
}

static void subs_free(struct mem_user *u)
{
	for (size_t i = 0; i < u->n_subs; i++)
		free(u->subs[i]);
	free(u->subs);
	u->subs = NULL;
	u->n_subs = 0;
}

struct mem_mailbox *mem_mailbox_add(struct mem_store *m, int64_t user_id, const char *name,
                                    unsigned special_use)
{
	struct mem_mailbox *mb = xcalloc(1, sizeof(*mb));
	mb->id = ++m->next_id;
	mb->user_id = user_id;
	mb->name = xstrdup(strcasecmp(name, "INBOX") == 0 ? "INBOX" : name);
	mb->special_use = special_use;
	mb->recent_uid = 1;
	mb->objectid = mem_random64();
	sub_set(m, user_id, mb->name, true);
	/* The clock, but never a value given before (as the SQLite backend). */
	uint32_t now = (uint32_t)time(NULL);
	m->last_uidvalidity = now > m->last_uidvalidity ? now : m->last_uidvalidity + 1;
	mb->uidvalidity = m->last_uidvalidity;
	mb->uidnext = 1;
	mb->highest_modseq = 1;
	m->mailboxes = xreallocarray(m->mailboxes, m->n_mailboxes + 1, sizeof(*m->mailboxes));
	m->mailboxes[m->n_mailboxes++] = mb;
	return mb;
}

static void mailbox_free(struct mem_store *m, struct mem_mailbox *mb)
{
	for (size_t i = 0; i < mb->n_entries; i++)
		mem_entry_clear(m, &mb->entries[i]);
	free(mb->entries);
	free(mb->expunged);
	free(mb->name);
	free(mb);
}

static void mailbox_remove(struct mem_store *m, struct mem_mailbox *mb)
{
	for (size_t i = 0; i < m->n_mailboxes; i++) {
		if (m->mailboxes[i] == mb) {
			m->mailboxes[i] = m->mailboxes[--m->n_mailboxes];
			break;
		}
	}
	mem_meta_drop(m, mb->user_id, mb->id);
	mailbox_free(m, mb);
}

uint64_t mem_user_used(struct mem_store *m, int64_t user_id)
{
	uint64_t used = 0;
	for (size_t i = 0; i < m->n_mailboxes; i++) {
		if (m->mailboxes[i]->user_id != user_id)
			continue;
		for (size_t j = 0; j < m->mailboxes[i]->n_entries; j++)
			used += m->mailboxes[i]->entries[j].content->size;
	}
	return used;
}

uint64_t mem_user_messages(struct mem_store *m, int64_t user_id)
{
	uint64_t n = 0;
	for (size_t i = 0; i < m->n_mailboxes; i++)
		if (m->mailboxes[i]->user_id == user_id)
			n += m->mailboxes[i]->n_entries;
	return n;
}

bool mem_user_over(struct mem_store *m, const struct mem_user *u, uint64_t n, uint64_t size)
{
	if (u->quota != 0 && mem_user_used(m, u->id) + size > u->quota)
		return true;
	return u->quota_messages != 0 && mem_user_messages(m, u->id) + n > u->quota_messages;
}

void mem_done(struct mem_store *m, store_backend_cb *cb, void *ctx, int rc,
              struct store_backend_result *res, bool write)
{
	if (write)
		m->writes++;
	store_async_complete(m->async, cb, ctx, rc, res);
}

void mem_note(struct mem_store *m, const struct mem_mailbox *mb)
{
	struct store_change ch = {
	    .user_id = mb->user_id,
	    .mailbox_id = mb->id,
	    .highest_modseq = mb->highest_modseq,
	    .uidnext = mb->uidnext,
	    .exists = (uint32_t)mb->n_entries,
	};
	store_async_change(m->async, m->on_change, m->change_ctx, &ch);
}

static void mailbox_fill(struct mem_store *m, const struct mem_mailbox *mb,
                         struct store_mailbox *out)
{
	memset(out, 0, sizeof(*out));
	out->id = mb->id;
	out->user_id = mb->user_id;
	out->name = xstrdup(mb->name);
	out->special_use = mb->special_use;
	out->objectid = mb->objectid;
	struct mem_user *u = mem_user_by_id(m, mb->user_id);
	out->subscribed = u != NULL && sub_find(u, mb->name) != SIZE_MAX;
	out->uidvalidity = mb->uidvalidity;
	out->uidnext = mb->uidnext;
	out->highest_modseq = mb->highest_modseq;
	out->messages = (uint32_t)mb->n_entries;
	for (size_t i = 0; i < mb->n_entries; i++) {
		if (!(mb->entries[i].flags & STORE_SEEN))
			out->unseen++;
		if (mb->entries[i].uid >= mb->recent_uid)
			out->recent++;
		out->size += mb->entries[i].content->size;
		if (mb->entries[i].flags & STORE_DELETED) {
			out->deleted++;
			out->deleted_size += mb->entries[i].content->size;
		}
	}
}

static void mailbox_result(struct mem_store *m, const struct mem_mailbox *mb,
                           struct store_backend_result *res)
{
	res->mailboxes = xcalloc(1, sizeof(*res->mailboxes));
	res->n_mailboxes = 1;
	mailbox_fill(m, mb, &res->mailboxes[0]);
}

/* ---- Open and close ---- */

static void scram_clear(struct store_scram *sc)
{
	free(sc->salt);
	free(sc->stored_key);
	free(sc->server_key);
	memset(sc, 0, sizeof(*sc));
}

static int mem_open(const struct store_options *opt, void **impl_r, const char **error_r)
{
	(void)error_r;
	struct mem_store *m = xcalloc(1, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	m->async = store_async_new(opt->poster);
	m->on_change = opt->on_change;
	m->change_ctx = opt->change_ctx;
	m->spool_sealed = opt->spool_sealed;
	m->max_message_size = opt->max_message_size != 0 ? opt->max_message_size : 50 * 1024 * 1024;
	*impl_r = m;
	return 0;
}

static void mem_close(void *impl)
{
	struct mem_store *m = impl;
	/* Queued completions run first (store_close's contract); they hold copies only. */
	store_async_free(m->async);
	for (size_t i = 0; i < m->n_mailboxes; i++)
		mailbox_free(m, m->mailboxes[i]);
	free(m->mailboxes);
	for (size_t i = 0; i < m->n_queue; i++)
		mem_queued_clear(m, &m->queue[i]);
	free(m->queue);
	for (size_t i = 0; i < m->n_users; i++) {
		free(m->users[i].address);
		scram_clear(&m->users[i].scram);
		subs_free(&m->users[i]);
		mem_threads_free(&m->users[i]);
	}
	free(m->users);
	free(m->contents);
	store_cert_free_all(m->certs, m->n_certs);
	mem_meta_free(m);
	mem_audit_free(m);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static void mem_stats(void *impl, uint64_t *commits_r, uint64_t *writes_r)
{
	struct mem_store *m = impl;
	pthread_mutex_lock(&m->lock);
	*commits_r = m->writes;
	*writes_r = m->writes;
	pthread_mutex_unlock(&m->lock);
}

/* ---- Users ---- */

static void password_hash(const unsigned char salt[16], const char *password, unsigned char out[32])
{
	size_t len = strlen(password);
	unsigned char *buf = xmalloc(16 + len);
	memcpy(buf, salt, 16);
	memcpy(buf + 16, password, len);
	gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, 16 + len, out);
	gnutls_memset(buf, 0, 16 + len);
	free(buf);
}

static bool same_32(const unsigned char *a, const unsigned char *b)
{
	unsigned char d = 0;
	for (size_t i = 0; i < 32; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

static void password_set(struct mem_user *u, const char *password)
{
	gnutls_rnd(GNUTLS_RND_NONCE, u->salt, sizeof(u->salt));
	password_hash(u->salt, password, u->hash);
	scram_clear(&u->scram);
	if (store_scram_derive(password, &u->scram) < 0)
		scram_clear(&u->scram);
}

static void user_fill(struct mem_store *m, const struct mem_user *u, struct store_user *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char tag[32];
	memset(out, 0, sizeof(*out));
	out->id = u->id;
	out->address = xstrdup(u->address);
	out->require_client_certificate = u->require_cert;
	out->disabled = u->disabled;
	out->quota_bytes = u->quota;
	out->used_bytes = mem_user_used(m, u->id);
	out->quota_messages = u->quota_messages;
	out->used_messages = mem_user_messages(m, u->id);
	gnutls_hash_fast(GNUTLS_DIG_SHA256, u->hash, sizeof(u->hash), tag);
	out->password_tag = xmalloc(65);
	for (size_t i = 0; i < 32; i++) {
		out->password_tag[2 * i] = hex[tag[i] >> 4];
		out->password_tag[2 * i + 1] = hex[tag[i] & 15];
	}
	out->password_tag[64] = '\0';
}

static void user_result(struct mem_store *m, const struct mem_user *u,
                        struct store_backend_result *res)
{
	res->users = xcalloc(1, sizeof(*res->users));
	res->n_users = 1;
	user_fill(m, u, &res->users[0]);
}

static int mem_user_add(void *impl, const char *address, const char *password, store_backend_cb *cb,
                        void *ctx)
{
	static const struct {
		const char *name;
		unsigned su;
	} defaults[] = {{"INBOX", 0},
	                {"Sent", STORE_SU_SENT},
	                {"Drafts", STORE_SU_DRAFTS},
	                {"Trash", STORE_SU_TRASH},
	                {"Junk", STORE_SU_JUNK},
	                {"Archive", STORE_SU_ARCHIVE}};
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	char *addr;
	if (password == NULL || password[0] == '\0')
		return -EINVAL;
	int rc = store_address_normalize(address, &addr);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&m->lock);
	if (mem_user_by_address(m, addr) != NULL) {
		rc = -EEXIST;
	} else {
		m->users = xreallocarray(m->users, m->n_users + 1, sizeof(*m->users));
		struct mem_user *u = &m->users[m->n_users++];
		memset(u, 0, sizeof(*u));
		u->id = ++m->next_id;
		u->address = addr;
		addr = NULL;
		password_set(u, password);
		for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
			mem_mailbox_add(m, u->id, defaults[i].name, defaults[i].su);
		user_result(m, u, &res);
	}
	mem_done(m, cb, ctx, rc, &res, true);
	pthread_mutex_unlock(&m->lock);
	free(addr);
	return 0;
}

enum user_change {
	USER_DEL,
	USER_PASSWD,
	USER_REQUIRE_CERT,
	USER_DISABLED,
	USER_QUOTA,
	USER_MESSAGE_QUOTA
};

static int user_change(struct mem_store *m, const char *address, enum user_change what,
                       const char *password, uint64_t value, store_backend_cb *cb, void *ctx)
{
	char *addr;
	int rc = store_address_normalize(address, &addr);
	if (rc < 0)
		return rc;
	struct store_backend_result res = {0};
	pthread_mutex_lock(&m->lock);
	struct mem_user *u = mem_user_by_address(m, addr);
	if (u == NULL) {
		rc = -ENOENT;
	} else if (what == USER_DEL) {
		int64_t id = u->id;
		for (size_t i = m->n_mailboxes; i-- > 0;)
			if (m->mailboxes[i]->user_id == id)
				mailbox_remove(m, m->mailboxes[i]);
		for (size_t i = 0; i < m->n_certs; i++)
			if (m->certs[i].user_id == id)
				m->certs[i].user_id = 0;
		mem_meta_drop(m, id, 0);
		free(u->address);
		scram_clear(&u->scram);
		subs_free(u);
		mem_threads_free(u);
		*u = m->users[--m->n_users];
	} else if (what == USER_PASSWD) {
		password_set(u, password);
	} else if (what == USER_REQUIRE_CERT) {
		u->require_cert = value != 0;
	} else if (what == USER_DISABLED) {
		u->disabled = value != 0;
	} else if (what == USER_QUOTA) {
		u->quota = value;
	} else {
		u->quota_messages = value;
	}
	mem_done(m, cb, ctx, rc, &res, true);
	pthread_mutex_unlock(&m->lock);
	free(addr);
	return 0;
}

static int mem_user_del(void *impl, const char *address, store_backend_cb *cb, void *ctx)
{
	return user_change(impl, address, USER_DEL, NULL, 0, cb, ctx);
}

static int mem_user_passwd(void *impl, const char *address, const char *password,
                           store_backend_cb *cb, void *ctx)
{
	if (password == NULL || password[0] == '\0')
		return -EINVAL;
	return user_change(impl, address, USER_PASSWD, password, 0, cb, ctx);
}

static int mem_user_set_require_cert(void *impl, const char *address, bool on, store_backend_cb *cb,
                                     void *ctx)
{
	return user_change(impl, address, USER_REQUIRE_CERT, NULL, on, cb, ctx);
}

static int mem_user_set_disabled(void *impl, const char *address, bool on, store_backend_cb *cb,
                                 void *ctx)
{
	return user_change(impl, address, USER_DISABLED, NULL, on, cb, ctx);
}

static int mem_user_set_quota(void *impl, const char *address, uint64_t bytes, store_backend_cb *cb,
                              void *ctx)
{
	if (bytes > INT64_MAX)
		return -EINVAL;
	return user_change(impl, address, USER_QUOTA, NULL, bytes, cb, ctx);
}

static int mem_user_set_message_quota(void *impl, const char *address, uint64_t messages,
                                      store_backend_cb *cb, void *ctx)
{
	if (messages > INT64_MAX)
		return -EINVAL;
	return user_change(impl, address, USER_MESSAGE_QUOTA, NULL, messages, cb, ctx);
}

static int mem_user_get(void *impl, const char *address, store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	char *addr;
	int rc = store_address_normalize(address, &addr);
	if (rc < 0)
		return rc;
	struct store_backend_result res = {0};
	pthread_mutex_lock(&m->lock);
	struct mem_user *u = mem_user_by_address(m, addr);
	if (u == NULL)
		rc = -ENOENT;
	else
		user_result(m, u, &res);
	mem_done(m, cb, ctx, rc, &res, false);
	pthread_mutex_unlock(&m->lock);
	free(addr);
	return 0;
}

static int user_cmp(const void *a, const void *b)
{
	return strcmp(((const struct store_user *)a)->address,
	              ((const struct store_user *)b)->address);
}

static int mem_user_list(void *impl, store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	pthread_mutex_lock(&m->lock);
	if (m->n_users > 0) {
		res.users = xcalloc(m->n_users, sizeof(*res.users));
		for (size_t i = 0; i < m->n_users; i++)
			user_fill(m, &m->users[i], &res.users[i]);
		res.n_users = m->n_users;
		qsort(res.users, res.n_users, sizeof(*res.users), user_cmp);
	}
	mem_done(m, cb, ctx, 0, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mem_auth(void *impl, const char *address, const char *password, store_backend_cb *cb,
                    void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	char *addr = NULL;
	int rc = -EACCES;
	if (password == NULL)
		return -EINVAL;
	if (store_address_normalize(address, &addr) < 0)
		addr = NULL;
	pthread_mutex_lock(&m->lock);
	struct mem_user *u = addr != NULL ? mem_user_by_address(m, addr) : NULL;
	/* An unknown user costs a hash too, like a known one. */
	static const unsigned char dummy_salt[16];
	unsigned char h[32];
	password_hash(u != NULL ? u->salt : dummy_salt, password, h);
	if (u != NULL && same_32(h, u->hash) && !u->disabled) {
		rc = 0;
		res.user_id = u->id;
		res.require_client_certificate = u->require_cert;
	}
	mem_done(m, cb, ctx, rc, &res, false);
	pthread_mutex_unlock(&m->lock);
	free(addr);
	return 0;
}

static int mem_user_scram(void *impl, const char *address, store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	char *addr;
	int rc = store_address_normalize(address, &addr);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&m->lock);
	struct mem_user *u = mem_user_by_address(m, addr);
	if (u == NULL || u->disabled || u->scram.salt == NULL) {
		rc = -ENOENT;
	} else {
		res.user_id = u->id;
		res.scram.salt = xstrdup(u->scram.salt);
		res.scram.iterations = u->scram.iterations;
		res.scram.stored_key = xstrdup(u->scram.stored_key);
		res.scram.server_key = xstrdup(u->scram.server_key);
	}
	mem_done(m, cb, ctx, rc, &res, false);
	pthread_mutex_unlock(&m->lock);
	free(addr);
	return 0;
}

/* ---- Mailboxes ---- */

static int mailbox_cmp(const void *a, const void *b)
{
	const struct store_mailbox *x = a, *y = b;
	bool xi = strcmp(x->name, "INBOX") == 0, yi = strcmp(y->name, "INBOX") == 0;
	if (xi != yi)
		return xi ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int mem_mailbox_list(void *impl, int64_t user_id, store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_mailboxes; i++) {
		if (m->mailboxes[i]->user_id != user_id)
			continue;
		res.mailboxes =
		    xreallocarray(res.mailboxes, res.n_mailboxes + 1, sizeof(*res.mailboxes));
		mailbox_fill(m, m->mailboxes[i], &res.mailboxes[res.n_mailboxes++]);
	}
	if (res.n_mailboxes > 0)
		qsort(res.mailboxes, res.n_mailboxes, sizeof(*res.mailboxes), mailbox_cmp);
	struct mem_user *u = mem_user_by_id(m, user_id);
	for (size_t i = 0; u != NULL && i < u->n_subs; i++)
		if (mem_mailbox_by_name(m, user_id, u->subs[i]) == NULL) {
			res.names = xreallocarray(res.names, res.n_names + 1, sizeof(*res.names));
			res.names[res.n_names++] = xstrdup(u->subs[i]);
		}
	if (res.n_names > 0)
		qsort(res.names, res.n_names, sizeof(*res.names), name_cmp);
	mem_done(m, cb, ctx, res.n_mailboxes > 0 ? 0 : -ENOENT, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mem_mailbox_get(void *impl, int64_t user_id, const char *name, store_backend_cb *cb,
                           void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	if (name == NULL)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	struct mem_mailbox *mb = mem_mailbox_by_name(m, user_id, name);
	if (mb != NULL)
		mailbox_result(m, mb, &res);
	mem_done(m, cb, ctx, mb != NULL ? 0 : -ENOENT, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mem_mailbox_create(void *impl, int64_t user_id, const char *name, unsigned special_use,
                              store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	int rc = 0;
	if (!store_mailbox_name_valid(name))
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	if (mem_user_by_id(m, user_id) == NULL)
		rc = -ENOENT;
	else if (mem_mailbox_by_name(m, user_id, name) != NULL)
		rc = -EEXIST;
	else
		mailbox_result(m, mem_mailbox_add(m, user_id, name, special_use), &res);
	mem_done(m, cb, ctx, rc, &res, true);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mem_mailbox_delete(void *impl, int64_t user_id, const char *name, store_backend_cb *cb,
                              void *ctx)
{
	struct mem_store *m = impl;
	int rc = 0;
	if (!store_mailbox_name_valid(name) || strcasecmp(name, "INBOX") == 0)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	struct mem_mailbox *mb = mem_mailbox_by_name(m, user_id, name);
	if (mb == NULL) {
		rc = -ENOENT;
	} else {
		struct store_change ch = {.user_id = user_id, .mailbox_id = mb->id};
		mailbox_remove(m, mb);
		store_async_change(m->async, m->on_change, m->change_ctx, &ch);
	}
	mem_done(m, cb, ctx, rc, NULL, true);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static bool under(const char *name, const char *parent)
{
	size_t n = strlen(parent);
	return strncmp(name, parent, n) == 0 && (name[n] == '\0' || name[n] == '/');
}

static int mem_mailbox_rename(void *impl, int64_t user_id, const char *name, const char *new_name,
                              store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	int rc = 0;
	if (!store_mailbox_name_valid(name) || !store_mailbox_name_valid(new_name) ||
	    strcasecmp(new_name, "INBOX") == 0)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	struct mem_mailbox *mb = mem_mailbox_by_name(m, user_id, name);
	if (mb == NULL) {
		rc = -ENOENT;
	} else if (mem_mailbox_by_name(m, user_id, new_name) != NULL) {
		rc = -EEXIST;
	} else if (strcmp(mb->name, "INBOX") == 0) {
		/* INBOX stays, empty; its messages move to the new mailbox. */
		struct mem_mailbox *dst = mem_mailbox_add(m, user_id, new_name, 0);
		mem_meta_copy(m, mb->id, dst->id); /* RFC 5464 4.1: INBOX keeps them too */
		mem_entries_move_all(m, mb, dst);
		mailbox_result(m, dst, &res);
	} else {
		char *old = xstrdup(mb->name);
		for (size_t i = 0; i < m->n_mailboxes; i++) {
			struct mem_mailbox *x = m->mailboxes[i];
			if (x->user_id != user_id || !under(x->name, old))
				continue;
			char *nn = xasprintf("%s%s", new_name, x->name + strlen(old));
			struct mem_user *u = mem_user_by_id(m, user_id);
			if (u != NULL && sub_find(u, x->name) != SIZE_MAX &&
			    sub_find(u, nn) == SIZE_MAX) {
				sub_set(m, user_id, x->name, false);
				sub_set(m, user_id, nn, true);
			}
			free(x->name);
			x->name = nn;
		}
		free(old);
		mailbox_result(m, mb, &res);
	}
	mem_done(m, cb, ctx, rc, &res, true);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mem_mailbox_subscribe(void *impl, int64_t user_id, const char *name, bool on,
                                 store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	if (!store_mailbox_name_valid(name))
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	sub_set(m, user_id, strcasecmp(name, "INBOX") == 0 ? "INBOX" : name, on);
	mem_done(m, cb, ctx, 0, NULL, true);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mem_recent_take(void *impl, int64_t mailbox_id, uint32_t upto, store_backend_cb *cb,
                           void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	pthread_mutex_lock(&m->lock);
	struct mem_mailbox *mb = mem_mailbox_by_id(m, mailbox_id);
	if (mb != NULL && mb->recent_uid < upto) {
		for (size_t i = 0; i < mb->n_entries; i++) {
			uint32_t uid = mb->entries[i].uid;
			if (uid < mb->recent_uid || uid >= upto)
				continue;
			res.uids = xreallocarray(res.uids, res.n_uids + 1, sizeof(*res.uids));
			res.uids[res.n_uids++] = uid;
		}
		mb->recent_uid = upto;
	}
	mem_done(m, cb, ctx, mb != NULL ? 0 : -ENOENT, &res, true);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* ---- Certificates ---- */

static bool serial_valid(const char *serial)
{
	size_t len = serial != NULL ? strlen(serial) : 0;
	if (len == 0 || len > 40)
		return false;
	return strspn(serial, "0123456789abcdef") == len;
}

static void cert_copy(const struct store_cert *c, struct store_backend_result *res)
{
	res->certs = xreallocarray(res->certs, res->n_certs + 1, sizeof(*res->certs));
	struct store_cert *o = &res->certs[res->n_certs++];
	*o = *c;
	o->serial = xstrdup(c->serial);
	o->address = xstrdup(c->address);
}

static int mem_cert_add(void *impl, const struct store_cert_new *cert, store_backend_cb *cb,
                        void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	int rc = 0;
	if (!serial_valid(cert->serial) || cert->address == NULL || cert->address[0] == '\0' ||
	    (cert->kind != STORE_CERT_CLIENT && cert->kind != STORE_CERT_SERVER) ||
	    cert->not_after < cert->not_before)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_certs; i++)
		if (strcmp(m->certs[i].serial, cert->serial) == 0)
			rc = -EEXIST;
	if (rc == 0) {
		m->certs = xreallocarray(m->certs, m->n_certs + 1, sizeof(*m->certs));
		struct store_cert *c = &m->certs[m->n_certs++];
		memset(c, 0, sizeof(*c));
		c->id = ++m->next_id;
		c->serial = xstrdup(cert->serial);
		c->address = xstrdup(cert->address);
		c->kind = cert->kind;
		c->not_before = cert->not_before;
		c->not_after = cert->not_after;
		c->created = (int64_t)time(NULL);
		struct mem_user *u =
		    cert->kind == STORE_CERT_CLIENT ? mem_user_by_address(m, cert->address) : NULL;
		c->user_id = u != NULL ? u->id : 0;
		cert_copy(c, &res);
	}
	mem_done(m, cb, ctx, rc, &res, true);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int cert_by_after(const void *a, const void *b)
{
	const struct store_cert *x = a, *y = b;
	if (x->not_after != y->not_after)
		return x->not_after < y->not_after ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int cert_by_revoked(const void *a, const void *b)
{
	const struct store_cert *x = a, *y = b;
	if (x->revoked_at != y->revoked_at)
		return x->revoked_at < y->revoked_at ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int mem_cert_list(void *impl, int64_t expiring_before, store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	if (expiring_before < 0)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_certs; i++) {
		const struct store_cert *c = &m->certs[i];
		if (expiring_before == 0 || (c->revoked_at == 0 && c->not_after <= expiring_before))
			cert_copy(c, &res);
	}
	if (res.n_certs > 1)
		qsort(res.certs, res.n_certs, sizeof(*res.certs), cert_by_after);
	mem_done(m, cb, ctx, 0, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static struct store_cert *cert_by_serial(struct mem_store *m, const char *serial)
{
	for (size_t i = 0; i < m->n_certs; i++)
		if (strcmp(m->certs[i].serial, serial) == 0)
			return &m->certs[i];
	return NULL;
}

static int mem_cert_get(void *impl, const char *serial, store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	if (!serial_valid(serial))
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	struct store_cert *c = cert_by_serial(m, serial);
	if (c != NULL)
		cert_copy(c, &res);
	mem_done(m, cb, ctx, c != NULL ? 0 : -ENOENT, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static bool cert_valid_for(const struct store_cert *c, const char *address, int64_t now)
{
	return c->kind == STORE_CERT_CLIENT && c->revoked_at == 0 && c->not_after > now &&
	       strcmp(c->address, address) == 0;
}

static int mem_cert_find_valid(void *impl, const char *address, int64_t now, store_backend_cb *cb,
                               void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	char *norm;
	int rc = store_address_normalize(address, &norm);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_certs; i++)
		if (cert_valid_for(&m->certs[i], norm, now))
			cert_copy(&m->certs[i], &res);
	mem_done(m, cb, ctx, 0, &res, false);
	pthread_mutex_unlock(&m->lock);
	free(norm);
	return 0;
}

static int mem_cert_revoke(void *impl, const char *serial, const char *address, int64_t now,
                           store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	int rc = 0;
	char *norm = NULL;
	if ((serial == NULL) == (address == NULL) || now <= 0 ||
	    (serial != NULL && !serial_valid(serial)) ||
	    (address != NULL && store_address_normalize(address, &norm) < 0))
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	if (serial != NULL) {
		struct store_cert *c = cert_by_serial(m, serial);
		if (c == NULL) {
			rc = -ENOENT;
		} else if (c->revoked_at != 0) {
			rc = -EALREADY;
		} else {
			c->revoked_at = now;
			cert_copy(c, &res);
		}
	} else {
		for (size_t i = 0; i < m->n_certs; i++) {
			if (cert_valid_for(&m->certs[i], norm, now)) {
				m->certs[i].revoked_at = now;
				cert_copy(&m->certs[i], &res);
			}
		}
		if (res.n_certs == 0)
			rc = -ENOENT;
	}
	if (rc == 0)
		res.crl_number = ++m->crl_number;
	mem_done(m, cb, ctx, rc, &res, true);
	pthread_mutex_unlock(&m->lock);
	free(norm);
	return 0;
}

static int mem_ping(void *impl, store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	pthread_mutex_lock(&m->lock);
	mem_done(m, cb, ctx, 0, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mem_cert_crl_next(void *impl, store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	pthread_mutex_lock(&m->lock);
	res.crl_number = ++m->crl_number;
	mem_done(m, cb, ctx, 0, &res, true);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mem_cert_list_revoked(void *impl, store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_certs; i++)
		if (m->certs[i].revoked_at != 0)
			cert_copy(&m->certs[i], &res);
	if (res.n_certs > 1)
		qsort(res.certs, res.n_certs, sizeof(*res.certs), cert_by_revoked);
	mem_done(m, cb, ctx, 0, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

const struct store_backend store_backend_mem = {
    .name = "mem",
    .persistent = false,
    .open = mem_open,
    .close = mem_close,
    .stats = mem_stats,
    .user_add = mem_user_add,
    .user_del = mem_user_del,
    .user_passwd = mem_user_passwd,
    .user_set_require_cert = mem_user_set_require_cert,
    .user_set_disabled = mem_user_set_disabled,
    .user_set_quota = mem_user_set_quota,
    .user_set_message_quota = mem_user_set_message_quota,
    .user_get = mem_user_get,
    .user_list = mem_user_list,
    .auth = mem_auth,
    .user_scram = mem_user_scram,
    .mailbox_list = mem_mailbox_list,
    .mailbox_get = mem_mailbox_get,
    .mailbox_create = mem_mailbox_create,
    .mailbox_delete = mem_mailbox_delete,
    .mailbox_rename = mem_mailbox_rename,
    .mailbox_subscribe = mem_mailbox_subscribe,
    .metadata_get = mem_store_metadata_get,
    .metadata_set = mem_store_metadata_set,
    .recent_take = mem_recent_take,
    .deliver = mem_store_deliver,
    .deliver_batch = mem_store_deliver_batch,
    .message_list = mem_store_message_list,
    .message_get = mem_store_message_get,
    .message_headers = mem_store_message_headers,
    .message_sortkeys = mem_store_message_sortkeys,
    .message_structures = mem_store_message_structures,
    .content_read_batch = mem_store_content_read_batch,
    .content_read = mem_store_content_read,
    .flags_store = mem_store_flags_store,
    .expunge = mem_store_expunge,
    .remove = mem_store_remove,
    .copy = mem_store_copy,
    .vanished = mem_store_vanished,
    .search_text = mem_store_search_text,
    .search_body = mem_store_search_body,
    .queue_list = mem_store_queue_list,
    .queue_summary = mem_store_queue_summary,
    .audit_append = mem_store_audit_append,
    .audit_query = mem_store_audit_query,
    .audit_verify = mem_store_audit_verify,
    .queue_delete = mem_store_queue_delete,
    .queue_due = mem_store_queue_due,
    .queue_recover = mem_store_queue_recover,
    .queue_flush = mem_store_queue_flush,
    .queue_content_read = mem_store_queue_content_read,
    .queue_report = mem_store_queue_report,
    .cert_add = mem_cert_add,
    .cert_list = mem_cert_list,
    .cert_get = mem_cert_get,
    .cert_find_valid = mem_cert_find_valid,
    .cert_revoke = mem_cert_revoke,
    .cert_crl_next = mem_cert_crl_next,
    .ping = mem_ping,
    .cert_list_revoked = mem_cert_list_revoked,
};
