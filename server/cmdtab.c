/*
 * The shared command dispatcher (see cmdtab.h): lookup, the one pre-handler check, and the
 * per-command debug log line.
 */
#include <string.h>

#include "common/log.h"
#include "server/cmdtab.h"

static char cmdtab_upper(char ch)
{
	return ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
}

static bool cmdtab_is(const char *t, const char *name, size_t len)
{
	size_t j = 0;
	while (j < len && t[j] != '\0' && cmdtab_upper(name[j]) == t[j])
		j++;
	return j == len && t[j] == '\0';
}

const struct cmdtab_entry *cmdtab_find_in(const void *tab, size_t n, size_t size, const char *name,
                                          size_t len)
{
	const char *p = tab;
	for (size_t i = 0; i < n; i++, p += size) {
		const struct cmdtab_entry *e = (const struct cmdtab_entry *)(const void *)p;
		if (cmdtab_is(e->name, name, len))
			return e;
	}
	return NULL;
}

const struct cmdtab_entry *cmdtab_find(const struct cmdtab_entry *tab, size_t n, const char *name,
                                       size_t len)
{
	return cmdtab_find_in(tab, n, sizeof(*tab), name, len);
}

const struct cmdtab_entry *cmdtab_find_uid(const void *tab, size_t n, size_t size, const char *name,
                                           size_t len, const char *next, size_t next_len,
                                           bool *uid_r)
{
	*uid_r = next != NULL && cmdtab_is("UID", name, len);
	if (!*uid_r)
		return cmdtab_find_in(tab, n, size, name, len);
	const struct cmdtab_entry *e = cmdtab_find_in(tab, n, size, next, next_len);
	return e != NULL && (e->flags & CMD_UID) != 0 ? e : NULL;
}

unsigned cmdtab_refusals(const struct cmdtab_entry *e, unsigned state, bool tls, bool authed)
{
	unsigned r = 0;
	if (e == NULL)
		return 1u << CMDTAB_UNKNOWN;
	if (!tls && (e->flags & CMD_PRE_TLS) == 0)
		r |= 1u << CMDTAB_NEED_TLS;
	if (tls && (e->flags & CMD_NOT_TLS) != 0)
		r |= 1u << CMDTAB_TLS_ACTIVE;
	if (!authed && (e->flags & CMD_PRE_AUTH) == 0)
		r |= 1u << CMDTAB_NEED_AUTH;
	if ((e->states & state) == 0)
		r |= 1u << CMDTAB_BAD_STATE;
	return r;
}

enum cmdtab_verdict cmdtab_check(const struct cmdtab_entry *e, unsigned state, bool tls,
                                 bool authed)
{
	unsigned r = cmdtab_refusals(e, state, tls, authed);
	for (unsigned v = CMDTAB_UNKNOWN; v <= CMDTAB_BAD_STATE; v++)
		if (r & (1u << v))
			return (enum cmdtab_verdict)v;
	return CMDTAB_OK;
}

void cmdtab_split(const char *line, size_t len, size_t *word_len, const char **args,
                  size_t *args_len)
{
	const char *sp = memchr(line, ' ', len);
	if (sp == NULL) {
		*word_len = len;
		*args = line + len;
		*args_len = 0;
		return;
	}
	*word_len = (size_t)(sp - line);
	*args = sp + 1;
	*args_len = len - *word_len - 1;
}

void cmdtab_log(const char *session, const char *proto, const struct cmdtab_entry *e,
                const char *name, size_t name_len, const char *args, size_t args_len)
{
	char ename[64], eargs[256];

	if (e != NULL) {
		log_escape(ename, sizeof(ename), e->name, strlen(e->name));
	} else {
		log_escape(ename, sizeof(ename), name, name_len);
	}
	if (e == NULL || (e->flags & CMD_SECRET) != 0) {
		log_event(LOGL_DEBUG, "session=%s proto=%s event=command cmd=%s args_len=%zu",
		          session, proto, ename, args_len);
		return;
	}
	log_escape(eargs, sizeof(eargs), args, args_len);
	log_event(LOGL_DEBUG, "session=%s proto=%s event=command cmd=%s args=%s", session, proto,
	          ename, eargs);
}
