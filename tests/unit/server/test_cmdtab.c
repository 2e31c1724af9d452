/*
 * The shared command table: lookup (any case, unknown, empty, over-long and embedded NUL
 * names), the UID prefix, tables of a protocol's own entry type, and the checks run before
 * every handler.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "server/cmdtab.h"

enum { S_ONE = 1 << 0, S_TWO = 1 << 1 };

static const struct cmdtab_entry tab[] = {
    {"NOOP", NULL, CMD_PRE_TLS | CMD_PRE_AUTH, S_ONE | S_TWO},
    {"LOGIN", NULL, CMD_PRE_AUTH | CMD_SECRET, S_ONE},
    {"STARTTLS", NULL, CMD_PRE_TLS | CMD_PRE_AUTH | CMD_NOT_TLS, S_ONE},
    {"FETCH", NULL, CMD_UID, S_TWO},
    {"EXPUNGE", NULL, CMD_UID, S_TWO},
    {"APPEND", NULL, CMD_BIG_LITERAL, S_ONE | S_TWO},
    {"CLOSE", NULL, 0, S_TWO},
};
#define N (sizeof(tab) / sizeof(tab[0]))

static const struct cmdtab_entry *find(const char *name)
{
	return cmdtab_find(tab, N, name, strlen(name));
}

Test(cmdtab, find_ignores_case)
{
	static const char *names[] = {"NOOP", "noop", "NoOp", "nOOp"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct cmdtab_entry *e = find(names[i]);
		cr_assert_not_null(e, "%s", names[i]);
		cr_assert_str_eq(e->name, "NOOP");
	}
	cr_assert_eq(find("starttls"), &tab[2]);
}

Test(cmdtab, find_unknown_empty_and_prefixes)
{
	static const char *names[] = {"",      "X",      "NOO",       "NOOPS", "NOOP ",
	                              " NOOP", "FETCH1", "\xc4PPEND", "UID",   "uid FETCH"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		cr_assert_null(find(names[i]), "%s", names[i]);
	cr_assert_null(cmdtab_find(tab, 0, "NOOP", 4));
}

Test(cmdtab, find_uses_only_len_bytes)
{
	/* Not NUL-terminated: only name[0..len) counts. */
	cr_assert_eq(cmdtab_find(tab, N, "LOGINXYZ", 5), &tab[1]);
	cr_assert_null(cmdtab_find(tab, N, "LOGINXYZ", 4));
	/* An embedded NUL never matches. */
	cr_assert_null(cmdtab_find(tab, N, "NO\0P", 4));
	cr_assert_null(cmdtab_find(tab, N, "NOOP\0", 5));
}

Test(cmdtab, find_long_names)
{
	char name[4096];
	memset(name, 'A', sizeof(name));
	cr_assert_null(cmdtab_find(tab, N, name, sizeof(name)));
	memcpy(name, "APPEND", 6);
	cr_assert_null(cmdtab_find(tab, N, name, sizeof(name)));
	cr_assert_eq(cmdtab_find(tab, N, name, 6), &tab[5]);
}

/* A protocol's own entry type, with cmdtab_entry as its first member. */
struct own_entry {
	struct cmdtab_entry e;
	int id;
	const char *extra;
};

static const struct own_entry own[] = {
    {{"SELECT", NULL, 0, S_ONE}, 1, "a"},
    {{"FETCH", NULL, CMD_UID, S_TWO}, 2, "b"},
    {{"COPY", NULL, CMD_UID, S_TWO}, 3, "c"},
    {{"SEARCH", NULL, CMD_UID | CMD_PROTO_FIRST, S_TWO}, 4, "d"},
};
#define NOWN (sizeof(own) / sizeof(own[0]))

static int own_id(const struct cmdtab_entry *e)
{
	return e != NULL ? ((const struct own_entry *)(const void *)e)->id : 0;
}

Test(cmdtab, find_in_own_entry_type)
{
	cr_assert_eq(own_id(cmdtab_find_in(own, NOWN, sizeof(own[0]), "select", 6)), 1);
	cr_assert_eq(own_id(cmdtab_find_in(own, NOWN, sizeof(own[0]), "COPY", 4)), 3);
	cr_assert_eq(own_id(cmdtab_find_in(own, NOWN, sizeof(own[0]), "Search", 6)), 4);
	cr_assert_null(cmdtab_find_in(own, NOWN, sizeof(own[0]), "EXTRA", 5));
	cr_assert_null(cmdtab_find_in(own, NOWN, sizeof(own[0]), "", 0));
	cr_assert_eq(cmdtab_find_in(own, NOWN, sizeof(own[0]), "FETCH", 5), &own[1].e);
}

static const struct cmdtab_entry *find_uid(const char *name, const char *next, bool *uid)
{
	return cmdtab_find_uid(own, NOWN, sizeof(own[0]), name, strlen(name), next,
	                       next != NULL ? strlen(next) : 0, uid);
}

Test(cmdtab, uid_variants)
{
	static const struct {
		const char *name, *next;
		int id;
		bool uid;
	} cases[] = {
	    {"UID", "FETCH", 2, true},   {"uid", "fetch", 2, true},   {"Uid", "Copy", 3, true},
	    {"UID", "SEARCH", 4, true},  {"UID", "SELECT", 0, true},  {"UID", "UID", 0, true},
	    {"UID", "NOPE", 0, true},    {"UID", NULL, 0, false},     {"FETCH", NULL, 2, false},
	    {"UID", "", 0, true},        {"FETCH", "COPY", 2, false}, {"SELECT", "X", 1, false},
	    {"UIDS", "FETCH", 0, false}, {"UI", "FETCH", 0, false},   {"", "FETCH", 0, false},
	    {"", NULL, 0, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool uid = !cases[i].uid;
		const struct cmdtab_entry *e = find_uid(cases[i].name, cases[i].next, &uid);
		cr_assert_eq(own_id(e), cases[i].id, "case %zu", i);
		cr_assert_eq(uid, cases[i].uid, "case %zu", i);
	}
}

Test(cmdtab, flags_are_kept)
{
	cr_assert(find("LOGIN")->flags & CMD_SECRET);
	cr_assert(find("APPEND")->flags & CMD_BIG_LITERAL);
	cr_assert_not(find("NOOP")->flags & CMD_BIG_LITERAL);
	cr_assert(find("EXPUNGE")->flags & CMD_UID);
	cr_assert_not(find("CLOSE")->flags & CMD_UID);
	/* Protocol bits never collide with cmdtab's own. */
	cr_assert_eq(CMD_PROTO_FIRST & (CMD_PRE_TLS | CMD_PRE_AUTH | CMD_SECRET | CMD_NOT_TLS |
	                                CMD_UID | CMD_BIG_LITERAL),
	             0);
}

Test(cmdtab, check_order)
{
	cr_assert_eq(cmdtab_check(NULL, S_ONE, true, true), CMDTAB_UNKNOWN);
	cr_assert_eq(cmdtab_check(find("NOOP"), S_ONE, false, false), CMDTAB_OK);
	cr_assert_eq(cmdtab_check(find("LOGIN"), S_ONE, false, false), CMDTAB_NEED_TLS);
	cr_assert_eq(cmdtab_check(find("LOGIN"), S_ONE, true, false), CMDTAB_OK);
	cr_assert_eq(cmdtab_check(find("LOGIN"), S_TWO, true, false), CMDTAB_BAD_STATE);
	cr_assert_eq(cmdtab_check(find("STARTTLS"), S_ONE, false, false), CMDTAB_OK);
	cr_assert_eq(cmdtab_check(find("STARTTLS"), S_ONE, true, false), CMDTAB_TLS_ACTIVE);
	/* TLS before login before state: the first refusal wins. */
	cr_assert_eq(cmdtab_check(find("CLOSE"), S_ONE, false, false), CMDTAB_NEED_TLS);
	cr_assert_eq(cmdtab_check(find("CLOSE"), S_ONE, true, false), CMDTAB_NEED_AUTH);
	cr_assert_eq(cmdtab_check(find("CLOSE"), S_ONE, true, true), CMDTAB_BAD_STATE);
	cr_assert_eq(cmdtab_check(find("CLOSE"), S_TWO, true, true), CMDTAB_OK);
}

Test(cmdtab, refusals_lists_all)
{
	cr_assert_eq(cmdtab_refusals(NULL, S_ONE, false, false), 1u << CMDTAB_UNKNOWN);
	cr_assert_eq(cmdtab_refusals(find("NOOP"), S_TWO, false, false), 0);
	cr_assert_eq(cmdtab_refusals(find("CLOSE"), S_ONE, false, false),
	             (1u << CMDTAB_NEED_TLS) | (1u << CMDTAB_NEED_AUTH) | (1u << CMDTAB_BAD_STATE));
	cr_assert_eq(cmdtab_refusals(find("STARTTLS"), S_TWO, true, true),
	             (1u << CMDTAB_TLS_ACTIVE) | (1u << CMDTAB_BAD_STATE));
}

Test(cmdtab, split)
{
	const char *args;
	size_t wl, al;
	cmdtab_split("MAIL FROM:<a@b>", 15, &wl, &args, &al);
	cr_assert_eq(wl, 4);
	cr_assert_eq(al, 10);
	cr_assert_eq(strncmp(args, "FROM:<a@b>", al), 0);
	cmdtab_split("QUIT", 4, &wl, &args, &al);
	cr_assert_eq(wl, 4);
	cr_assert_eq(al, 0);
	cmdtab_split("", 0, &wl, &args, &al);
	cr_assert_eq(wl, 0);
	cr_assert_eq(al, 0);
	cmdtab_split(" X", 2, &wl, &args, &al);
	cr_assert_eq(wl, 0);
	cr_assert_eq(al, 1);
}
