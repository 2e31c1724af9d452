/* RFC 5256 section 2.1 base subject extraction and the i;ascii-casemap comparator. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/basesubject.h"
#include "common/xmalloc.h"

struct bs_case {
	const char *in, *base;
	bool reply;
};

static const struct bs_case cases[] = {
    {"", "", false},
    {"Hello", "Hello", false},
    {"  Hello   world  ", "Hello world", false},
    {"Hello\r\n\tworld", "Hello world", false},
    {"Re: Hello", "Hello", true},
    {"RE: Hello", "Hello", true},
    {"re:Hello", "Hello", true},
    {"Re: Re: re: Hello", "Hello", true},
    {"Fwd: Hello", "Hello", true},
    {"FW: Hello", "Hello", true},
    {"fw : Hello", "Hello", true},
    {"Re[2]: Hello", "Hello", true},
    {"Re [2] : Hello", "Hello", true},
    {"[list] Re: Hello", "Hello", true},
    {"[list] [tag] Re: [x] Fwd: Hello", "Hello", true},
    {"[list] Hello", "Hello", false},
    {"[list]Hello", "Hello", false},
    /* A blob that would leave nothing is the subject itself. */
    {"[list]", "[list]", false},
    {"Re: [list]", "[list]", true},
    {"[a] [b]", "[b]", false},
    {"Hello (fwd)", "Hello", true},
    {"Hello (FWD) (fwd)  ", "Hello", true},
    {"Hello(fwd)", "Hello", true},
    {"[fwd: Hello]", "Hello", true},
    {"[Fwd: Re: Hello (fwd)]", "Hello", true},
    {"Re: [fwd: [fwd: Hello]]", "Hello", true},
    {"[fwd: Hello", "[fwd: Hello", false}, /* no closing bracket: neither blob nor wrapper */
    {"Fwd: [fwd: ]", "", true},
    {"Re:", "", true},
    {"Re: ", "", true},
    {"(fwd)", "", true},
    /* Words that merely start like markers stay. */
    {"Reply needed", "Reply needed", false},
    {"Fwdx: Hello", "Fwdx: Hello", false},
    {"Ref: Hello", "Ref: Hello", false},
    {"Hello Re: world", "Hello Re: world", false},
    {"Grüße: Re: Ä", "Grüße: Re: Ä", false},
    {"Re: Grüße", "Grüße", true},
    {"[unclosed Re: x", "[unclosed Re: x", false},
};

Test(basesubject, table)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool reply = !cases[i].reply;
		char *b = basesubject_get(cases[i].in, strlen(cases[i].in), &reply);
		cr_expect_str_eq(b, cases[i].base, "case %zu \"%s\"", i, cases[i].in);
		cr_expect_eq(reply, cases[i].reply, "case %zu \"%s\" reply", i, cases[i].in);
		free(b);
	}
}

Test(basesubject, nul_and_long)
{
	char *b = basesubject_get("Re: a\0b", 7, NULL);
	cr_expect_str_eq(b, "a b");
	free(b);
	/* 100,000 "Re: " prefixes: linear, no recursion. */
	size_t n = 100000;
	char *s = xmalloc(n * 4 + 2);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * 4, "Re: ", 4);
	memcpy(s + n * 4, "x", 2);
	bool reply = false;
	b = basesubject_get(s, n * 4 + 1, &reply);
	cr_expect_str_eq(b, "x");
	cr_expect(reply);
	free(b);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * 4, "[a] ", 4);
	b = basesubject_get(s, n * 4 + 1, NULL);
	cr_expect_str_eq(b, "x");
	free(b);
	free(s);
}

Test(basesubject, casemap)
{
	cr_expect_eq(basesubject_casecmp("abc", "ABC"), 0);
	cr_expect_lt(basesubject_casecmp("abc", "abd"), 0);
	cr_expect_gt(basesubject_casecmp("b", "A"), 0);
	cr_expect_lt(basesubject_casecmp(NULL, "a"), 0);
	cr_expect_eq(basesubject_casecmp(NULL, ""), 0);
	/* Only ASCII letters fold: "ä" and "Ä" differ, and bytes above 0x7f sort high. */
	cr_expect_neq(basesubject_casecmp("ä", "Ä"), 0);
	cr_expect_gt(basesubject_casecmp("ä", "z"), 0);
	/* "_" (0x5f) sorts after "Z" but before "a" would without folding; folded it is
	 * after "A".."Z" and so after "a" too. */
	cr_expect_gt(basesubject_casecmp("_", "a"), 0);
}
