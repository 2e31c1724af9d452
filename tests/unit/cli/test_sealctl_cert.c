/*
 * cli/cmd_cert.c: the built sealctl binary through every cert verb, against a real
 * configuration, database and CA folder, with certtool (GnuTLS's own tool) checking what it
 * wrote: PKCS#12 files open with their password, the CRL lists revoked serials, a server
 * certificate verifies against the CA. Exit codes 0, 1 and 2, one line on stderr.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "certs/cert.h"
#include "common/xmalloc.h"

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
	char *rel = xasprintf("%s/cli/sealctl", root != NULL ? root : ".");
	sealctl = realpath(rel, NULL); /* run() changes folder first */
	cr_assert_not_null(sealctl, "%s: build sealctl first", rel);
	free(rel);
	snprintf(dir, sizeof(dir), "/tmp/sealmail-cert-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	write_file("server.crt", "");
	write_file("server.key", "");
	write_file("sealmail.yaml",
	           "hostname: mail.corp.example\n"
	           "domains: [corp.example]\n"
	           "data_dir: data\n"
	           "ca_dir: ca\n"
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

TestSuite(sealctl_cert, .init = setup, .fini = teardown, .timeout = 120);

/* Runs "[printf STDIN |] sealctl -c dir/sealmail.yaml ARGS" in dir, output in dir/out and
 * dir/err. Returns the exit code. */
static int run(const char *stdin_text, const char *args)
{
	char *cmd = xasprintf("cd %s && %s%s%s %s -c %s/sealmail.yaml %s >%s/out 2>%s/err", dir,
	                      stdin_text != NULL ? "printf '%s\\n' '" : "",
	                      stdin_text != NULL ? stdin_text : "", stdin_text != NULL ? "' |" : "",
	                      sealctl, dir, args, dir, dir);
	int status = system(cmd);
	free(cmd);
	cr_assert(WIFEXITED(status));
	if (WEXITSTATUS(status) != 0) {
		char *p = xasprintf("%s/err", dir);
		FILE *fp = fopen(p, "r");
		char line[512] = "";
		if (fp != NULL && fgets(line, sizeof(line), fp) != NULL)
			cr_log_info("sealctl %s: exit %d: %s", args, WEXITSTATUS(status), line);
		if (fp != NULL)
			fclose(fp);
		free(p);
	}
	return WEXITSTATUS(status);
}

/* Runs a shell command in dir, output in dir/tool.out: its exit code. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char inner[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(inner, sizeof(inner), fmt, ap);
	va_end(ap);
	cr_assert(n > 0 && (size_t)n < sizeof(inner));
	char *cmd = xasprintf("cd %s && (%s) >%s/tool.out 2>&1", dir, inner, dir);
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
	cr_assert_not_null(fp, "%s", name);
	char *buf = xcalloc(1, 65536);
	size_t n = fread(buf, 1, 65535, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static void expect_one_error_line(const char *what)
{
	char *err = slurp("err");
	cr_expect(strncmp(err, "sealctl: ", 9) == 0, "%s: stderr: %s", what, err);
	char *nl = strchr(err, '\n');
	cr_expect(nl != NULL && nl[1] == '\0', "%s: not one line: %s", what, err);
	free(err);
}

static bool out_contains(const char *needle)
{
	char *out = slurp("out");
	bool found = strstr(out, needle) != NULL;
	free(out);
	return found;
}

/* The value after "label" on its line of dir/out, into buf. */
static void out_value(const char *label, char *buf, size_t size)
{
	char *out = slurp("out");
	char *p = strstr(out, label);
	cr_assert_not_null(p, "'%s' not in: %s", label, out);
	p += strlen(label);
	while (*p == ' ')
		p++;
	size_t n = strcspn(p, " \n");
	cr_assert_lt(n, size);
	memcpy(buf, p, n);
	buf[n] = '\0';
	free(out);
}

static mode_t file_mode(const char *name)
{
	struct stat st;
	char *p = xasprintf("%s/%s", dir, name);
	cr_assert_eq(stat(p, &st), 0, "%s", p);
	free(p);
	return st.st_mode & 07777;
}

static void crl_info(struct cert_crl_info *info)
{
	char *crl = xasprintf("%s/ca/crl.pem", dir);
	char *ca = xasprintf("%s/ca/ca.crt", dir);
	const char *err = NULL;
	cr_assert_eq(cert_crl_info_from_file(crl, ca, info, &err), 0, "%s", err);
	free(crl);
	free(ca);
}

/* The status column of serial in "cert list". */
static bool listed_as(const char *serial, const char *status)
{
	cr_assert_eq(run(NULL, "cert list"), 0);
	char *out = slurp("out");
	char *line = strstr(out, serial);
	bool ok = false;
	if (line != NULL) {
		char *end = strchr(line, '\n');
		if (end != NULL)
			*end = '\0';
		char *word = xasprintf(" %s ", status);
		ok = strstr(line, word) != NULL;
		free(word);
	}
	free(out);
	return ok;
}

Test(sealctl_cert, init_ca_once)
{
	cr_assert_eq(run(NULL, "cert init-ca --name 'Corp Mail Client CA' --days 100"), 0);
	cr_expect_eq(file_mode("ca/ca.key"), 0600);
	cr_expect_eq(sh("certtool --certificate-info --infile ca/ca.crt | grep -q "
	                "'Corp Mail Client CA'"),
	             0);
	struct cert_crl_info info;
	crl_info(&info);
	cr_expect_eq(info.number, 1);
	cr_expect_eq(info.n_revoked, 0);
	cr_expect_gt(info.next_update, time(NULL) + 29 * 86400);

	char *key = slurp("ca/ca.key");
	cr_assert_eq(run(NULL, "cert init-ca"), 1);
	expect_one_error_line("second init-ca");
	char *err = slurp("err");
	cr_expect(strstr(err, "already") != NULL, "%s", err);
	free(err);
	/* The key that signed everything is untouched. */
	char *key2 = slurp("ca/ca.key");
	cr_expect_str_eq(key, key2);
	free(key);
	free(key2);
}

Test(sealctl_cert, no_ca_yet)
{
	cr_assert_eq(run("pw", "user add alice@corp.example --password-stdin"), 0);
	static const char *const verbs[] = {
	    "cert issue alice@corp.example --out issued",
	    "cert crl",
	    "cert server mail.corp.example --out srv",
	};
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		cr_expect_eq(run(NULL, verbs[i]), 1, "%s", verbs[i]);
		expect_one_error_line(verbs[i]);
		char *err = slurp("err");
		cr_expect(strstr(err, "init-ca") != NULL, "%s: %s", verbs[i], err);
		free(err);
	}
}

Test(sealctl_cert, issue_list_revoke_crl)
{
	char serial1[64], serial2[64], serial3[64], pw[64];

	cr_assert_eq(run(NULL, "cert init-ca"), 0);
	cr_assert_eq(run(NULL, "cert issue nobody@corp.example --out issued"), 1);
	expect_one_error_line("unknown user");
	cr_assert_eq(run("pw", "user add alice@corp.example --password-stdin"), 0);

	/* A generated password, printed once. */
	cr_assert_eq(run(NULL, "cert issue Alice@Corp.Example --out issued --days 30"), 0);
	out_value("serial", serial1, sizeof(serial1));
	out_value("PKCS#12 password:", pw, sizeof(pw));
	cr_expect_eq(strlen(serial1), 32);
	cr_expect_eq(file_mode("issued/alice@corp.example.key"), 0600);
	cr_expect_eq(file_mode("issued/alice@corp.example.p12"), 0600);
	free(slurp("issued/alice@corp.example.crt"));
	cr_expect_eq(sh("certtool --p12-info --inder --password '%s' --infile "
	                "issued/alice@corp.example.p12",
	                pw),
	             0);
	cr_expect_neq(sh("certtool --p12-info --inder --password 'wrong' --infile "
	                 "issued/alice@corp.example.p12"),
	              0);
	cr_expect_eq(sh("certtool --verify --load-ca-certificate ca/ca.crt --infile "
	                "issued/alice@corp.example.crt"),
	             0);

	/* The password from standard input, never echoed; the legacy format. */
	cr_assert_eq(run("correct horse", "cert issue alice@corp.example --out legacy "
	                                  "--p12-password-stdin --legacy-p12"),
	             0);
	cr_expect(!out_contains("correct horse"));
	cr_expect(!out_contains("password:"));
	out_value("serial", serial2, sizeof(serial2));
	cr_expect_eq(sh("certtool --p12-info --inder --password 'correct horse' --infile "
	                "legacy/alice@corp.example.p12"),
	             0);
	/* RSA for very old clients. */
	cr_assert_eq(run("x", "cert issue alice@corp.example --out rsa --p12-password-stdin --rsa"),
	             0);
	out_value("serial", serial3, sizeof(serial3));
	cr_expect_eq(sh("certtool --certificate-info --infile rsa/alice@corp.example.crt | "
	                "grep -q RSA"),
	             0);

	cr_expect(listed_as(serial1, "valid"));
	cr_expect(listed_as(serial2, "valid"));
	cr_assert_eq(run(NULL, "cert list --expiring 60"), 0);
	cr_expect(out_contains(serial1));
	cr_expect(!out_contains(serial2)); /* 365 days */

	/* Revoke by serial, typed with colons and upper case. */
	char typed[128];
	size_t t = 0;
	for (size_t i = 0; serial1[i] != '\0'; i++) {
		if (i > 0 && i % 2 == 0)
			typed[t++] = ':';
		typed[t++] = (char)toupper((unsigned char)serial1[i]);
	}
	typed[t] = '\0';
	char *args = xasprintf("cert revoke %s", typed);
	cr_assert_eq(run(NULL, args), 0, "%s", args);
	free(args);
	cr_expect(out_contains(serial1));
	cr_expect(out_contains("SIGHUP"));
	cr_expect(listed_as(serial1, "revoked"));
	cr_expect(listed_as(serial2, "valid"));
	cr_expect_eq(sh("certtool --crl-info --infile ca/crl.pem | grep -qi '%s'", serial1), 0);
	struct cert_crl_info info;
	crl_info(&info);
	cr_expect_eq(info.number, 2);
	cr_expect_eq(info.n_revoked, 1);

	/* Again: nothing to do, no new CRL. */
	args = xasprintf("cert revoke %s", serial1);
	cr_expect_eq(run(NULL, args), 0);
	free(args);
	cr_expect(out_contains("already"));
	crl_info(&info);
	cr_expect_eq(info.number, 2);

	/* By address: every valid one. */
	cr_assert_eq(run(NULL, "cert revoke ALICE@corp.example"), 0);
	cr_expect(out_contains(serial2));
	cr_expect(out_contains(serial3));
	cr_expect(listed_as(serial2, "revoked"));
	cr_expect(listed_as(serial3, "revoked"));
	crl_info(&info);
	cr_expect_eq(info.number, 3);
	cr_expect_eq(info.n_revoked, 3);
	cr_expect_eq(sh("certtool --crl-info --infile ca/crl.pem | grep -qi '%s'", serial3), 0);
	cr_expect_eq(run(NULL, "cert revoke alice@corp.example"), 1);
	expect_one_error_line("nothing left to revoke");
	cr_expect_eq(run(NULL, "cert revoke 0123abcd"), 1);
	expect_one_error_line("unknown serial");

	/* cert crl: a higher number and the requested next update. */
	time_t before = time(NULL);
	cr_assert_eq(run(NULL, "cert crl --days 7"), 0);
	struct cert_crl_info info2;
	crl_info(&info2);
	cr_expect_eq(info2.number, 4);
	cr_expect_eq(info2.n_revoked, 3);
	cr_expect_geq(info2.next_update, before + 7 * 86400);
	cr_expect_leq(info2.next_update, time(NULL) + 7 * 86400);
	cr_assert_eq(run(NULL, "cert crl"), 0);
	crl_info(&info2);
	cr_expect_eq(info2.number, 5);
	cr_expect_geq(info2.next_update, before + 30 * 86400);
}

Test(sealctl_cert, crl_goes_to_tls_crl)
{
	cr_assert_eq(run(NULL, "cert init-ca"), 0);
	cr_assert_eq(sh("cp ca/crl.pem served.pem"), 0);
	write_file("sealmail.yaml",
	           "hostname: mail.corp.example\n"
	           "domains: [corp.example]\n"
	           "data_dir: data\n"
	           "ca_dir: ca\n"
	           "tls: { certificate: server.crt, key: server.key, client_ca: ca/ca.crt,\n"
	           "       crl: served.pem }\n"
	           "listeners:\n"
	           "  - { protocol: imap, address: 127.0.0.1, port: 0, tls: implicit,\n"
	           "      client_certificate: required }\n");
	cr_assert_eq(run("pw", "user add bob@corp.example --password-stdin"), 0);
	cr_assert_eq(run("pw", "cert issue bob@corp.example --out issued --p12-password-stdin"), 0);
	cr_assert_eq(run(NULL, "cert revoke bob@corp.example"), 0);
	cr_expect(out_contains("served.pem"));
	cr_expect_eq(sh("certtool --crl-info --infile served.pem | grep -q 'Revoked "
	                "certificates (1)'"),
	             0);
}

Test(sealctl_cert, server_certificate)
{
	cr_assert_eq(run(NULL, "cert init-ca"), 0);
	cr_assert_eq(run(NULL, "cert server mail.corp.example --ip 127.0.0.1 --ip ::1 --out srv"),
	             0);
	cr_expect_eq(file_mode("srv/server.key"), 0600);
	cr_expect_eq(sh("certtool --verify --load-ca-certificate ca/ca.crt --infile "
	                "srv/server.crt"),
	             0);
	cr_expect_eq(sh("certtool --certificate-info --infile srv/server.crt | grep -q "
	                "'DNSname: mail.corp.example'"),
	             0);
	cr_expect_eq(sh("certtool --certificate-info --infile srv/server.crt | grep -q "
	                "'IPAddress: 127.0.0.1'"),
	             0);
	cr_assert_eq(run(NULL, "cert list"), 0);
	cr_expect(out_contains("mail.corp.example"));
	cr_expect(out_contains("server"));
	cr_expect_eq(run(NULL, "cert server mail.corp.example --ip not-an-ip --out srv2"), 1);
	expect_one_error_line("bad ip");
}

/* The relay's certificate: serverAuth always, clientAuth when asked for. */
Test(sealctl_cert, server_certificate_extended_key_usage)
{
	cr_assert_eq(run(NULL, "cert init-ca"), 0);
	cr_assert_eq(run(NULL, "cert server mail.corp.example --out srv"), 0);
	cr_expect_eq(sh("certtool --certificate-info --infile srv/server.crt | grep -q "
	                "'TLS WWW Server'"),
	             0);
	cr_expect_neq(sh("certtool --certificate-info --infile srv/server.crt | grep -q "
	                 "'TLS WWW Client'"),
	              0);
	cr_assert_eq(run(NULL, "cert server mail.corp.example --client-auth --out relay"), 0);
	cr_expect(out_contains("clientAuth"));
	cr_expect_eq(sh("certtool --certificate-info --infile relay/server.crt | grep -q "
	                "'TLS WWW Server'"),
	             0);
	cr_expect_eq(sh("certtool --certificate-info --infile relay/server.crt | grep -q "
	                "'TLS WWW Client'"),
	             0);
	/* --peer: the same, the name for listeners[].peers; the DNS name and no e-mail. */
	cr_assert_eq(run(NULL, "cert server mx2.corp.example --peer --out peer"), 0);
	cr_expect(out_contains("clientAuth"));
	cr_expect_eq(sh("certtool --certificate-info --infile peer/server.crt | grep -q "
	                "'TLS WWW Server'"),
	             0);
	cr_expect_eq(sh("certtool --certificate-info --infile peer/server.crt | grep -q "
	                "'TLS WWW Client'"),
	             0);
	cr_expect_eq(sh("certtool --certificate-info --infile peer/server.crt | grep -q "
	                "'DNSname: mx2.corp.example'"),
	             0);
	cr_expect_neq(sh("certtool --certificate-info --infile peer/server.crt | grep -qi "
	                 "'RFC822Name'"),
	              0);
	/* A user's certificate is a client's only. */
	cr_assert_eq(run("pw", "user add eve@corp.example --password-stdin"), 0);
	cr_assert_eq(run("pw", "cert issue eve@corp.example --out issued --p12-password-stdin"), 0);
	cr_expect_eq(sh("certtool --certificate-info --infile issued/eve@corp.example.crt | grep "
	                "-q 'TLS WWW Client'"),
	             0);
	cr_expect_neq(sh("certtool --certificate-info --infile issued/eve@corp.example.crt | grep "
	                 "-q 'TLS WWW Server'"),
	              0);
}

/* Under a permissive umask: the CA folder 0700, the key, the store and its journal files
 * 0600; the certificate and CRL stay readable for sealmaild. */
Test(sealctl_cert, private_files_whatever_the_umask)
{
	mode_t old = umask(022);
	cr_assert_eq(run(NULL, "cert init-ca"), 0);
	cr_assert_eq(run("pw", "user add eve@corp.example --password-stdin"), 0);
	umask(old);
	cr_expect_eq(file_mode("ca"), 0700);
	cr_expect_eq(file_mode("ca/ca.key"), 0600);
	cr_expect_eq(file_mode("ca/ca.lock"), 0600);
	cr_expect_eq(file_mode("ca/ca.crt"), 0644);
	cr_expect_eq(file_mode("ca/crl.pem"), 0644);
	cr_expect_eq(file_mode("data"), 0700);
	cr_expect_eq(file_mode("data/mail.db"), 0600);
}

/* The layout sealmaild wants: the key in ca_dir, the certificate and the CRL written where
 * tls.client_ca and tls.crl point; another CA's certificates there are never replaced. */
Test(sealctl_cert, init_ca_publishes_certificate_and_crl)
{
	write_file(
	    "sealmail.yaml",
	    "hostname: mail.corp.example\n"
	    "domains: [corp.example]\n"
	    "data_dir: data\n"
	    "ca_dir: private-ca\n"
	    "tls: { certificate: server.crt, key: server.key, client_ca: pub/client-ca.crt,\n"
	    "       crl: pub/client-ca.crl }\n"
	    "listeners:\n"
	    "  - { protocol: imap, address: 127.0.0.1, port: 0, tls: implicit,\n"
	    "      client_certificate: required }\n");
	/* pub/ is missing: made 0755 (sealmaild, another user, reads what is in it). */
	cr_assert_eq(run(NULL, "cert init-ca"), 0);
	cr_expect_eq(file_mode("pub"), 0755);
	cr_expect(out_contains("pub/client-ca.crt"));
	cr_expect_eq(file_mode("private-ca"), 0700);
	cr_expect_eq(file_mode("private-ca/ca.key"), 0600);
	cr_expect_eq(file_mode("pub/client-ca.crt"), 0644);
	cr_expect_eq(sh("cmp private-ca/ca.crt pub/client-ca.crt"), 0);
	cr_expect_eq(sh("certtool --crl-info --infile pub/client-ca.crl"), 0);
	cr_expect_eq(sh("ls pub | grep -c . | grep -qx 2"), 0); /* no key, no temporary file */
	/* cert crl puts a lost certificate back, and leaves a foreign one alone. */
	cr_assert_eq(sh("rm pub/client-ca.crt"), 0);
	cr_assert_eq(run(NULL, "cert crl"), 0);
	cr_expect_eq(sh("cmp private-ca/ca.crt pub/client-ca.crt"), 0);
	write_file("pub/client-ca.crt", "-----BEGIN CERTIFICATE-----\nother\n");
	cr_assert_eq(run(NULL, "cert crl"), 0);
	cr_expect_eq(sh("grep -q other pub/client-ca.crt"), 0);
}

/* A CA made before ca_dir (data_dir/ca) keeps working, with a one-line warning that says
 * how to move it; without one, the default folder is used. */
Test(sealctl_cert, old_ca_in_data_dir_still_used_with_a_warning)
{
	write_file("sealmail.yaml",
	           "hostname: mail.corp.example\n"
	           "domains: [corp.example]\n"
	           "data_dir: data\n"
	           "tls: { certificate: server.crt, key: server.key }\n"
	           "listeners:\n"
	           "  - { protocol: imap, address: 127.0.0.1, port: 0, tls: implicit }\n");
	cr_assert_eq(sh("mkdir -m 700 data && mkdir -m 700 data/ca"), 0);
	const char *err = NULL;
	char *old = xasprintf("%s/data/ca", dir);
	cr_assert_eq(cert_ca_init(old, "Old CA", 30, &err), 0, "%s", err);
	free(old);
	cr_assert_eq(run(NULL, "cert crl"), 0);
	cr_expect(out_contains("data/ca/crl.pem"));
	char *e = slurp("err");
	cr_expect(strstr(e, "sealctl: warning: ") == e, "%s", e);
	cr_expect(strstr(e, "ca_dir: /etc/sealmail/ca") != NULL, "%s", e);
	cr_expect(strchr(e, '\n') != NULL && strchr(e, '\n')[1] == '\0', "not one line: %s", e);
	free(e);
	cr_assert_eq(run("pw", "user add eve@corp.example --password-stdin"), 0);
	cr_assert_eq(run("pw", "cert issue eve@corp.example --out issued --p12-password-stdin"), 0);
	cr_expect_eq(sh("certtool --verify --load-ca-certificate data/ca/ca.crt --infile "
	                "issued/eve@corp.example.crt"),
	             0);
}

Test(sealctl_cert, usage_exit_2)
{
	static const char *const cases[] = {
	    "cert",
	    "cert frobnicate",
	    "cert init-ca --days 0",
	    "cert init-ca --days x",
	    "cert init-ca --bogus",
	    "cert issue",
	    "cert issue alice@corp.example",
	    "cert issue alice@corp.example --out",
	    "cert issue alice@corp.example --out d --days 0",
	    "cert issue alice@corp.example --out d --p12-password hunter2",
	    "cert issue not-an-address --out d",
	    "cert list extra",
	    "cert list --expiring",
	    "cert list --expiring -3",
	    "cert revoke",
	    "cert revoke xyz",
	    "cert revoke a@corp.example extra",
	    "cert crl --days",
	    "cert crl --days 99999999",
	    "cert server",
	    "cert server mail.corp.example",
	    "cert server mail.corp.example --out d --bogus",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_expect_eq(run(NULL, cases[i]), 2, "'%s'", cases[i]);
		expect_one_error_line(cases[i]);
	}
	/* --p12-password-stdin with nothing, or an empty line, on standard input. */
	cr_expect_eq(run("", "cert issue alice@corp.example --out d --p12-password-stdin"), 2);
	expect_one_error_line("empty password");
	cr_assert_eq(run(NULL, "cert --help"), 0);
	cr_expect(out_contains("cert revoke SERIAL|ADDRESS"));
}
