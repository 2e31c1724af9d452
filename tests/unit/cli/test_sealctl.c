/*
 * cli/: the built sealctl binary, run against a real configuration and database: every
 * verb, and exit codes 0 (success), 1 (operational failure), 2 (usage error). One test
 * runs it while a store has the database open, as sealmaild would.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "storage/store.h"

static char dir[64];
static char *sealctl;

static void write_file(const char *name, const char *text)
{
	char *p = xasprintf("%s/%s", dir, name);
	FILE *fp = fopen(p, "w");
	cr_assert_not_null(fp);
	fputs(text, fp);
	fclose(fp);
	free(p);
}

static void setup(void)
{
	const char *root = getenv("SEALMAIL_BUILD_ROOT");
	sealctl = xasprintf("%s/cli/sealctl", root != NULL ? root : ".");
	snprintf(dir, sizeof(dir), "/tmp/sealmail-cli-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	write_file("server.crt", "");
	write_file("server.key", "");
	write_file("sealmail.yaml",
	           "hostname: mail.corp.example\n"
	           "domains: [corp.example]\n"
	           "data_dir: data\n"
	           "tls: { certificate: server.crt, key: server.key }\n"
	           "listeners:\n"
	           "  - { protocol: imap, address: 127.0.0.1, port: 0, tls: implicit }\n");
}

static void teardown(void)
{
	char *cmd = xasprintf("rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
	free(cmd);
	free(sealctl);
}

TestSuite(sealctl, .init = setup, .fini = teardown, .timeout = 60);

/* Runs "[printf STDIN |] sealctl -c dir/sealmail.yaml ARGS", output in dir/out and dir/err.
 * Returns the exit code. */
static int run(const char *stdin_text, const char *args)
{
	char *cmd = xasprintf("%s%s%s %s -c %s/sealmail.yaml %s >%s/out 2>%s/err",
	                      stdin_text != NULL ? "printf '%s\\n' '" : "",
	                      stdin_text != NULL ? stdin_text : "", stdin_text != NULL ? "' |" : "",
	                      sealctl, dir, args, dir, dir);
	int status = system(cmd);
	free(cmd);
	cr_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static char *slurp(const char *name)
{
	char *p = xasprintf("%s/%s", dir, name);
	FILE *fp = fopen(p, "r");
	free(p);
	cr_assert_not_null(fp);
	char *buf = xcalloc(1, 65536);
	size_t n = fread(buf, 1, 65535, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static void expect_one_error_line(void)
{
	char *err = slurp("err");
	cr_expect(strncmp(err, "sealctl: ", 9) == 0, "stderr: %s", err);
	char *nl = strchr(err, '\n');
	cr_expect(nl != NULL && nl[1] == '\0', "not one line: %s", err);
	free(err);
}

static void expect_out_contains(const char *needle)
{
	char *out = slurp("out");
	cr_expect(strstr(out, needle) != NULL, "'%s' not in: %s", needle, out);
	free(out);
}

Test(sealctl, user_verbs)
{
	cr_assert_eq(run("s3cret pw", "user add Alice@Corp.Example --password-stdin"), 0);
	cr_assert_eq(run("other", "user add bob@corp.example --password-stdin"), 0);
	cr_assert_eq(run(NULL, "user list"), 0);
	expect_out_contains("alice@corp.example\trequire-cert=off");
	expect_out_contains("bob@corp.example");
	cr_assert_eq(run(NULL, "user require-cert alice@corp.example on"), 0);
	cr_assert_eq(run(NULL, "user list"), 0);
	expect_out_contains("alice@corp.example\trequire-cert=on");
	cr_assert_eq(run("new pw", "user passwd alice@corp.example --password-stdin"), 0);
	cr_assert_eq(run(NULL, "user del bob@corp.example"), 0);
	cr_assert_eq(run(NULL, "user list"), 0);
	char *out = slurp("out");
	cr_assert_null(strstr(out, "bob@"));
	free(out);

	/* The new password works, the old does not, through the store itself. */
	char *path = xasprintf("%s/data/mail.db", dir);
	struct store_options opt = {.path = path};
	struct store *s;
	const char *e;
	cr_assert_eq(store_open(&opt, &s, &e), 0);
	struct store_sync w;
	store_sync_init(&w);
	cr_assert_eq(store_sync_wait(
	                 &w, store_auth(s, "alice@corp.example", "new pw", store_sync_login, &w)),
	             0);
	store_sync_done(&w);
	store_sync_init(&w);
	cr_assert_eq(store_sync_wait(&w, store_auth(s, "alice@corp.example", "s3cret pw",
	                                            store_sync_login, &w)),
	             -EACCES);
	store_sync_done(&w);
	/* sealctl works while the database is open elsewhere (sealmaild). */
	cr_assert_eq(run("pw", "user add carol@corp.example --password-stdin"), 0);
	store_sync_init(&w);
	cr_assert_eq(
	    store_sync_wait(&w, store_user_get(s, "carol@corp.example", store_sync_users, &w)), 0);
	store_sync_done(&w);
	store_close(s);
	free(path);
}

Test(sealctl, mailbox_list)
{
	cr_assert_eq(run("pw", "user add alice@corp.example --password-stdin"), 0);
	cr_assert_eq(run(NULL, "mailbox list alice@corp.example"), 0);
	expect_out_contains("INBOX\t-\t0\t0\t0\t");
	expect_out_contains("Sent\t\\Sent\t");
	expect_out_contains("Archive\t\\Archive\t");
	cr_assert_eq(run(NULL, "mailbox list nobody@corp.example"), 1);
	expect_one_error_line();
}

Test(sealctl, failures_exit_1)
{
	cr_assert_eq(run("pw", "user add alice@corp.example --password-stdin"), 0);
	cr_assert_eq(run("pw", "user add alice@corp.example --password-stdin"), 1);
	expect_one_error_line();
	cr_assert_eq(run("pw", "user add a@elsewhere.example --password-stdin"), 1);
	expect_one_error_line();
	cr_assert_eq(run(NULL, "user del nobody@corp.example"), 1);
	expect_one_error_line();
	cr_assert_eq(run("pw", "user passwd nobody@corp.example --password-stdin"), 1);
	expect_one_error_line();
	cr_assert_eq(run(NULL, "user require-cert nobody@corp.example on"), 1);
	expect_one_error_line();
	/* A corrupt database: a clear error, exit 1, file untouched. */
	write_file("data/mail.db", "garbage garbage garbage garbage garbage garbage garbage");
	cr_assert_eq(run(NULL, "user list"), 1);
	expect_one_error_line();
	char *err = slurp("err");
	cr_expect(strstr(err, "corrupt") != NULL, "%s", err);
	free(err);
}

Test(sealctl, usage_exit_2)
{
	static const char *const cases[] = {
	    "",
	    "bogus list",
	    "user",
	    "user frobnicate",
	    "user add alice@corp.example",
	    "user add alice@corp.example hunter2",
	    "user add not-an-address --password-stdin",
	    "user del",
	    "user require-cert alice@corp.example maybe",
	    "user list extra",
	    "mailbox list",
	    "mailbox drop x@corp.example",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_expect_eq(run(NULL, cases[i]), 2, "'%s'", cases[i]);
		expect_one_error_line();
	}
	/* No password on stdin. */
	cr_expect_eq(run("", "user add alice@corp.example --password-stdin"), 2);
	cr_assert_eq(run(NULL, "--help"), 0);
}

Test(sealctl, quota_set_and_show)
{
	cr_assert_eq(run("pw", "user add alice@corp.example --password-stdin"), 0);
	cr_assert_eq(run(NULL, "quota show Alice@Corp.Example"), 0);
	expect_out_contains("storage: 0 bytes used, limit none");
	expect_out_contains("messages: 0, limit none");
	cr_assert_eq(run(NULL, "quota set alice@corp.example --storage 20000 --messages 2"), 0);
	expect_out_contains("limit 20000 bytes");
	expect_out_contains("messages: 0, limit 2");
	/* One limit changed leaves the other. */
	cr_assert_eq(run(NULL, "quota set alice@corp.example --storage none"), 0);
	expect_out_contains("storage: 0 bytes used, limit none");
	expect_out_contains("messages: 0, limit 2");

	/* What the store enforces is what sealctl set: the third message is refused. */
	char *path = xasprintf("%s/data/mail.db", dir);
	struct store_options opt = {.path = path};
	struct store *s;
	const char *e;
	cr_assert_eq(store_open(&opt, &s, &e), 0);
	struct store_sync w;
	store_sync_init(&w);
	cr_assert_eq(
	    store_sync_wait(&w, store_user_get(s, "alice@corp.example", store_sync_users, &w)), 0);
	int64_t uid = w.users.v[0].id;
	store_sync_done(&w);
	struct store_target t = {.user_id = uid};
	static const char msg[] = "Subject: q\r\n\r\nq\r\n";
	struct store_deliver_req req = {
	    .data = msg, .size = strlen(msg), .targets = &t, .n_targets = 1};
	for (int i = 0; i < 3; i++) {
		store_sync_init(&w);
		cr_assert_eq(store_sync_wait(&w, store_deliver(s, &req, store_sync_delivery, &w)),
		             i < 2 ? 0 : -EDQUOT, "message %d", i);
		store_sync_done(&w);
	}
	store_close(s);
	free(path);
	cr_assert_eq(run(NULL, "quota show alice@corp.example"), 0);
	expect_out_contains("messages: 2, limit 2");
	char *want = xasprintf("storage: %zu bytes used", 2 * strlen(msg));
	expect_out_contains(want);
	free(want);

	/* Operational failures exit 1, usage errors 2, each with one line. */
	cr_assert_eq(run(NULL, "quota show nobody@corp.example"), 1);
	expect_one_error_line();
	cr_assert_eq(run(NULL, "quota set nobody@corp.example --messages 3"), 1);
	expect_one_error_line();
	cr_assert_eq(run(NULL, "quota set alice@elsewhere.example --messages 3"), 1);
	expect_one_error_line();
	static const char *const usage[] = {
	    "quota set alice@corp.example",
	    "quota set alice@corp.example --storage",
	    "quota set alice@corp.example --storage 0",
	    "quota set alice@corp.example --storage -5",
	    "quota set alice@corp.example --storage 12k",
	    "quota set alice@corp.example --messages 99999999999999999999",
	    "quota set alice@corp.example --messages 1 --messages 2",
	    "quota set alice@corp.example --bytes 5",
	    "quota set 'not an address' --messages 1",
	    "quota show",
	    "quota show alice@corp.example extra",
	    "quota show 'not an address'",
	    "quota frob alice@corp.example",
	};
	for (size_t i = 0; i < sizeof(usage) / sizeof(usage[0]); i++) {
		cr_expect_eq(run(NULL, usage[i]), 2, "%s", usage[i]);
		expect_one_error_line();
	}
	/* Nothing of the refused commands changed the limits. */
	cr_assert_eq(run(NULL, "quota show alice@corp.example"), 0);
	expect_out_contains("messages: 2, limit 2");
	expect_out_contains("limit none");
}
