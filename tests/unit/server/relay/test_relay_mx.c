/*
 * server/relay/relay_mx.c: MX sets by preference, our own name among them (RFC 5321 5.1),
 * null MX (RFC 7505), and which names an MX record may give.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "server/relay/relay_private.h"

/* "20:b.example 10:a.example" -> an array the way relay_dns hands it over. */
static struct relay_mx *parse(const char *spec, size_t *n_r)
{
	struct relay_mx *mx = xcalloc(16, sizeof(*mx));
	size_t n = 0;
	char *copy = xstrdup(spec), *save = NULL;
	for (char *tok = strtok_r(copy, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		char *colon = strchr(tok, ':');
		cr_assert_not_null(colon, "bad spec %s", spec);
		*colon = '\0';
		mx[n].pref = (unsigned)strtoul(tok, NULL, 10);
		/* "~" stands for the empty name c-ares gives for the root. */
		mx[n].host = xstrdup(strcmp(colon + 1, "~") == 0 ? "" : colon + 1);
		n++;
	}
	free(copy);
	*n_r = n;
	return mx;
}

static char *hosts(const struct relay_mx *mx, size_t n)
{
	char buf[512] = "";
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(buf);
		snprintf(buf + len, sizeof(buf) - len, "%s%s", i ? " " : "", mx[i].host);
	}
	return xstrdup(buf);
}

Test(relay_mx, prepare_orders_and_trims)
{
	static const struct {
		const char *in, *self, *want;
		bool self_found;
	} cases[] = {
	    {"20:b.example 10:a.example 30:c.example", "me.example",
	     "a.example b.example c.example", false},
	    /* equal preferences keep the DNS order (stable) */
	    {"10:b.example 10:a.example 5:c.example", "me.example", "c.example b.example a.example",
	     false},
	    {"10:only.example", NULL, "only.example", false},
	    {"", "me.example", "", false},
	    /* we are the best MX: nothing is left to try */
	    {"10:me.example 20:a.example", "me.example", "", true},
	    /* only hosts preferred to us remain */
	    {"20:me.example 10:a.example 30:b.example", "me.example", "a.example", true},
	    {"20:me.example 10:a.example 20:b.example 15:c.example", "me.example",
	     "a.example c.example", true},
	    /* any case, a trailing dot: still us */
	    {"10:ME.Example. 5:a.example", "me.example", "a.example", true},
	    {"10:me.example 5:a.example", "me.example.", "a.example", true},
	    /* listed twice: the better of our two preferences counts */
	    {"30:me.example 10:a.example 20:me.example 25:b.example", "me.example", "a.example",
	     true},
	    /* a name that only starts like ours is not ours */
	    {"10:me.example.org 20:a.example", "me.example", "me.example.org a.example", false},
	    {"10:me.example 20:a.example", NULL, "me.example a.example", false},
	    /* the root and repeats go */
	    {"10:. 20:a.example", NULL, "a.example", false},
	    {"10:~ 20:a.example", NULL, "a.example", false},
	    {"10:a.example 20:A.EXAMPLE. 5:b.example 30:a.example", NULL, "b.example a.example",
	     false},
	    /* names no MX record may give */
	    {"10:a\"b.example 20:c.example", NULL, "c.example", false},
	    {"10:a..b.example 20:.c.example 30:d\\032e.example 40:ok_1-x.example", NULL,
	     "ok_1-x.example", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n;
		struct relay_mx *mx = parse(cases[i].in, &n);
		bool self = !cases[i].self_found;
		size_t kept = relay_mx_prepare(mx, n, cases[i].self, &self);
		char *got = hosts(mx, kept);
		cr_expect_str_eq(got, cases[i].want, "case %zu '%s': got '%s'", i, cases[i].in,
		                 got);
		cr_expect_eq(self, cases[i].self_found, "case %zu: self %d", i, self);
		for (size_t k = kept; k < n; k++)
			cr_expect_null(mx[k].host, "case %zu: slot %zu not cleared", i, k);
		relay_mx_free(mx, n);
		free(got);
	}
}

Test(relay_mx, preference_order_survives_many_hosts)
{
	struct relay_mx *mx = xcalloc(200, sizeof(*mx));
	for (size_t i = 0; i < 200; i++) {
		mx[i].pref = (unsigned)((i * 7919) % 97);
		mx[i].host = xasprintf("h%zu.example", i);
	}
	bool self;
	size_t kept = relay_mx_prepare(mx, 200, "h5.example", &self);
	cr_assert(self);
	unsigned self_pref = (5 * 7919) % 97;
	for (size_t i = 0; i < kept; i++) {
		cr_assert_lt(mx[i].pref, self_pref);
		if (i > 0)
			cr_assert_leq(mx[i - 1].pref, mx[i].pref);
	}
	size_t below = 0;
	for (size_t i = 0; i < 200; i++)
		below += (i * 7919) % 97 < self_pref;
	cr_assert_eq(kept, below);
	relay_mx_free(mx, 200);
}

Test(relay_mx, null_mx)
{
	static const struct {
		const char *in;
		bool null;
	} cases[] = {
	    {"0:~", true},
	    {"0:.", true},
	    {"10:~", true}, /* RFC 7505 asks for 0; a lone root means no mail either way */
	    {"0:~ 10:a.example", false},
	    {"0:a.example", false},
	    {"", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n;
		struct relay_mx *mx = parse(cases[i].in, &n);
		cr_expect_eq(relay_mx_is_null(mx, n), cases[i].null, "'%s'", cases[i].in);
		relay_mx_free(mx, n);
	}
}

Test(relay_mx, names)
{
	cr_expect(relay_name_equal("a.example", "A.EXAMPLE"));
	cr_expect(relay_name_equal("a.example.", "a.example"));
	cr_expect(relay_name_equal("a.example", "a.example."));
	cr_expect_not(relay_name_equal("a.example", "a.example.org"));
	cr_expect_not(relay_name_equal("a.example", "b.example"));
	cr_expect_not(relay_name_equal("", "a"));

	static const struct {
		const char *host;
		bool ok;
	} cases[] = {
	    {"mx.example", true},
	    {"mx.example.", true},
	    {"MX-1.Example", true},
	    {"_dmarc.example", true},
	    {"localhost", true},
	    {"", false},
	    {".", false},
	    {"..", false},
	    {".mx.example", false},
	    {"mx..example", false},
	    {"mx.example..", false},
	    {"mx example", false},
	    {"mx\"example", false},
	    {"mx\\.example", false},
	    {"m\xc3\xbc.example", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(relay_mx_host_ok(cases[i].host), cases[i].ok, "'%s'", cases[i].host);

	char label[80], name[400];
	memset(label, 'a', 63);
	label[63] = '\0';
	cr_expect(relay_mx_host_ok(label));
	label[63] = 'a';
	label[64] = '\0';
	cr_expect_not(relay_mx_host_ok(label));
	/* 253 is the longest name: 63*4 + 3 dots = 255 is too long, 61 + 3*63 + 3 = 253 fits */
	memset(label, 'b', 63);
	label[63] = '\0';
	snprintf(name, sizeof(name), "%.61s.%s.%s.%s", label, label, label, label);
	cr_expect_eq(strlen(name), 253);
	cr_expect(relay_mx_host_ok(name));
	snprintf(name, sizeof(name), "%.62s.%s.%s.%s", label, label, label, label);
	cr_expect_not(relay_mx_host_ok(name));
}
