/*
 * sealctl audit show|verify: the access audit for a compliance officer (docs/audit.md),
 * and the record of sealctl's own changes (cli_audit_admin, called by main for every
 * command that is not a plain listing).
 */
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_private.h"
#include "common/buf.h"
#include "common/xmalloc.h"

static int audit_run(struct cli *cli, int argc, char **argv);

const struct cli_noun cli_noun_audit = {
    .name = "audit",
    .usage = "  sealctl -c FILE audit show [--user ADDRESS] [--mailbox NAME] [--since TIME]\n"
             "                             [--until TIME] [--limit N] [--json]\n"
             "  sealctl -c FILE audit verify [--anchor SEQ:HASH]\n"
             "      TIME: YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS][Z] (UTC) or @UNIXSECONDS\n",
    .run = audit_run,
};

/* ---- Time ---- */

static int parse_time(const char *s, int64_t *ms_r)
{
	if (s[0] == '@') {
		char *end;
		errno = 0;
		long long v = strtoll(s + 1, &end, 10);
		if (errno != 0 || end == s + 1 || *end != '\0' || v < 0)
			return -EINVAL;
		*ms_r = (int64_t)v * 1000;
		return 0;
	}
	struct tm tm = {0};
	const char *end = strptime(s, "%Y-%m-%d", &tm);
	if (end == NULL)
		return -EINVAL;
	if (*end == 'T' || *end == ' ') {
		const char *t = strptime(end + 1, "%H:%M:%S", &tm);
		if (t == NULL)
			t = strptime(end + 1, "%H:%M", &tm);
		if (t == NULL)
			return -EINVAL;
		end = t;
		if (*end == 'Z')
			end++;
	}
	if (*end != '\0')
		return -EINVAL;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*ms_r = (int64_t)t * 1000;
	return 0;
}

static void fmt_time(char *out, size_t size, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	char base[32];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, size, "%s.%03dZ", base, (int)(ms % 1000));
}

static void hex(char *out, const unsigned char *h)
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* ---- Output ---- */

/* A text value: bare when it is one plain word, else in double quotes with \" \\ and
 * control bytes escaped, so every record stays one line. */
static void text_value(const char *s)
{
	bool plain = s[0] != '\0';
	for (const char *p = s; *p != '\0' && plain; p++)
		plain = (unsigned char)*p > 0x20 && *p != '"' && *p != '\\' && *p != 0x7f;
	if (plain) {
		fputs(s, stdout);
		return;
	}
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

/* Length of the valid UTF-8 sequence at p, or 0. */
static size_t utf8_len(const unsigned char *p)
{
	size_t n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
	if (p[0] >= 0xf8)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* A JSON string; bytes that are not UTF-8 are given as U+00XX so the output stays valid. */
static void json_string(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0';) {
		if (*p == '"' || *p == '\\') {
			printf("\\%c", *p++);
		} else if (*p < 0x20 || *p == 0x7f) {
			printf("\\u%04x", *p++);
		} else if (*p < 0x80) {
			putchar(*p++);
		} else {
			size_t n = utf8_len(p);
			if (n == 0) {
				printf("\\u%04x", *p++);
			} else {
				fwrite(p, 1, n, stdout);
				p += n;
			}
		}
	}
	putchar('"');
}

static void print_record(const struct store_audit_record *r, bool json, bool first)
{
	char when[48], h[65];
	fmt_time(when, sizeof(when), r->time_ms);
	hex(h, r->hash);
	const char *names[] = {"actor",  "ip",      "session", "proto",
	                       "action", "mailbox", "uids",    "detail"};
	const char *values[] = {r->actor,  r->ip,      r->session, r->proto,
	                        r->action, r->mailbox, r->uids,    r->detail};
	if (json) {
		printf("%s\n  {\"seq\": %" PRIu64 ", \"time\": \"%s\"", first ? "" : ",", r->seq,
		       when);
		for (size_t i = 0; i < 8; i++) {
			printf(", \"%s\": ", names[i]);
			json_string(values[i]);
		}
		printf(", \"hash\": \"%s\"}", h);
		return;
	}
	printf("%s seq=%" PRIu64, when, r->seq);
	for (size_t i = 0; i < 8; i++) {
		if (values[i][0] == '\0')
			continue;
		printf(" %s=", names[i]);
		text_value(values[i]);
	}
	putchar('\n');
}

static int show(struct cli *cli, int argc, char **argv)
{
	struct store_audit_filter f = {.limit = 1000};
	bool json = false;
	unsigned long long max = 0;
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(opt, "--json") == 0) {
			json = true;
			continue;
		}
		if (val == NULL)
			return cli_usage(&cli_noun_audit, "an option is missing its value");
		i++;
		if (strcmp(opt, "--user") == 0) {
			f.actor = val;
		} else if (strcmp(opt, "--mailbox") == 0) {
			f.mailbox = val;
		} else if (strcmp(opt, "--since") == 0 || strcmp(opt, "--until") == 0) {
			int64_t ms;
			if (parse_time(val, &ms) < 0)
				return cli_usage(&cli_noun_audit,
				                 "TIME must be YYYY-MM-DD, "
				                 "YYYY-MM-DDTHH:MM[:SS] or @SECONDS");
			if (opt[2] == 's') {
				f.since_ms = ms;
			} else {
				/* A day or a minute given means to its end. */
				size_t len = strlen(val);
				f.until_ms = ms + (len == 10   ? 86400000 - 1
				                   : len <= 16 ? 59999
				                               : 999);
			}
		} else if (strcmp(opt, "--limit") == 0) {
			char *end;
			max = strtoull(val, &end, 10);
			if (*end != '\0' || max == 0)
				return cli_usage(&cli_noun_audit,
				                 "--limit needs a positive number");
		} else {
			return cli_usage(&cli_noun_audit, "unknown option");
		}
	}
	/* The user's records are the ones they made: an address is compared normalised. */
	char *norm = NULL;
	if (f.actor != NULL && strchr(f.actor, '@') != NULL &&
	    store_address_normalize(f.actor, &norm) == 0)
		f.actor = norm;
	struct store *s = cli_store(cli);
	if (s == NULL) {
		free(norm);
		return CLI_FAIL;
	}
	unsigned long long shown = 0;
	int rc = 0;
	if (json)
		printf("[");
	for (;;) {
		struct store_sync w;
		store_sync_init(&w);
		rc = cli_wait(&w, store_audit_query(s, &f, store_sync_audit, &w));
		size_t n = rc == 0 ? w.audit.n : 0;
		for (size_t i = 0; i < n && (max == 0 || shown < max); i++, shown++)
			print_record(&w.audit.v[i], json, shown == 0);
		if (n > 0)
			f.after_seq = w.audit.v[n - 1].seq;
		store_sync_done(&w);
		if (rc < 0 || n < f.limit || (max != 0 && shown >= max))
			break;
	}
	if (json)
		printf("%s]\n", shown > 0 ? "\n" : "");
	free(norm);
	if (rc < 0) {
		cli_error("cannot read the audit: %s", store_strerror(rc));
		return CLI_FAIL;
	}
	return CLI_OK;
}

static int parse_anchor(const char *s, uint64_t *seq_r, unsigned char *hash)
{
	char *end;
	errno = 0;
	unsigned long long seq = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != ':' || seq == 0 || strlen(end + 1) != 64)
		return -EINVAL;
	for (int i = 0; i < 32; i++) {
		unsigned v;
		char two[3] = {end[1 + 2 * i], end[2 + 2 * i], '\0'};
		char *e2;
		v = (unsigned)strtoul(two, &e2, 16);
		if (*e2 != '\0' || two[0] == '+' || two[0] == '-' || two[0] == ' ')
			return -EINVAL;
		hash[i] = (unsigned char)v;
	}
	*seq_r = seq;
	return 0;
}

static int verify(struct cli *cli, int argc, char **argv)
{
	uint64_t anchor_seq = 0;
	unsigned char anchor[32] = {0};
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--anchor") == 0 && i + 1 < argc) {
			if (parse_anchor(argv[++i], &anchor_seq, anchor) < 0)
				return cli_usage(
				    &cli_noun_audit,
				    "--anchor takes SEQ:HASH as printed by audit verify");
		} else {
			return cli_usage(&cli_noun_audit, "unknown option");
		}
	}
	struct store *s = cli_store(cli);
	if (s == NULL)
		return CLI_FAIL;
	struct store_sync w;
	store_sync_init(&w);
	int rc = cli_wait(&w, store_audit_verify(s, anchor_seq, anchor_seq > 0 ? anchor : NULL,
	                                         store_sync_audit_check, &w));
	struct store_audit_check c = w.audit_check;
	store_sync_done(&w);
	if (rc < 0) {
		cli_error("cannot read the audit: %s", store_strerror(rc));
		return CLI_FAIL;
	}
	if (c.bad_seq != 0) {
		printf("audit chain BROKEN at record %" PRIu64 ": %s\n", c.bad_seq, c.problem);
		printf("  %" PRIu64 " records before it check\n", c.records);
		return CLI_FAIL;
	}
	char h[65];
	hex(h, c.head);
	if (c.records == 0)
		printf("audit chain intact: no records\n");
	else
		printf("audit chain intact: %" PRIu64 " records, seq %" PRIu64 " to %" PRIu64 "\n",
		       c.records, c.first_seq, c.last_seq);
	printf("head %" PRIu64 ":%s\n", c.last_seq, h);
	return CLI_OK;
}

static int audit_run(struct cli *cli, int argc, char **argv)
{
	if (strcmp(argv[0], "show") == 0)
		return show(cli, argc, argv);
	if (strcmp(argv[0], "verify") == 0)
		return verify(cli, argc, argv);
	return cli_usage(&cli_noun_audit, "unknown verb");
}

/* ---- sealctl's own changes ---- */

/* Commands that only look: not recorded (audit show is: reading the audit is an access). */
static bool only_looks(const char *noun, const char *verb)
{
	static const char *const looks[][2] = {
	    {"user", "list"},  {"mailbox", "list"}, {"cert", "list"},
	    {"queue", "list"}, {"queue", "show"},   {"quota", "show"},
	    {"status", NULL},  {"dns", NULL},       {"audit", "verify"},
	};
	for (size_t i = 0; i < sizeof(looks) / sizeof(looks[0]); i++)
		if (strcmp(noun, looks[i][0]) == 0 &&
		    (looks[i][1] == NULL || (verb != NULL && strcmp(verb, looks[i][1]) == 0)))
			return true;
	return false;
}

void cli_audit_admin(struct cli *cli, int argc, char **argv, int rc)
{
	if (argc < 1 || !cli->cfg->audit.enabled || only_looks(argv[0], argc > 1 ? argv[1] : NULL))
		return;
	if (rc == CLI_USAGE)
		return; /* nothing was attempted */
	/* A command that failed before any store existed (a refused restore into an empty
	 * data_dir) changed nothing, and there is nowhere to record it: no store is made
	 * just for that. */
	if (cli->store == NULL && rc != CLI_OK) {
		char *db = xasprintf("%s/mail.db", cli->cfg->data_dir);
		bool exists = access(db, F_OK) == 0;
		free(db);
		if (!exists)
			return;
	}
	struct store *s = cli_store(cli);
	if (s == NULL)
		return;
	struct passwd *pw = getpwuid(getuid());
	const char *sudo = getenv("SUDO_USER");
	char actor[160], session[32];
	snprintf(actor, sizeof(actor), "sealctl:%s%s%s%s", pw != NULL ? pw->pw_name : "?",
	         sudo != NULL ? " (sudo " : "", sudo != NULL ? sudo : "", sudo != NULL ? ")" : "");
	snprintf(session, sizeof(session), "pid%ld", (long)getpid());
	struct buf d;
	buf_init(&d, 4096);
	for (int i = 0; i < argc; i++)
		buf_printf(&d, "%s%s", i > 0 ? " " : "", argv[i]);
	if (rc != CLI_OK)
		buf_printf(&d, " (failed, exit %d)", rc);
	struct store_audit_record r = {
	    .actor = actor,
	    .ip = "",
	    .session = session,
	    .proto = "sealctl",
	    .action = strcmp(argv[0], "backup") == 0 ? "backup" : "admin",
	    .mailbox = "",
	    .uids = "",
	    .detail = d.data != NULL ? d.data : "",
	};
	int arc = store_audit_append(s, &r);
	buf_free(&d);
	if (arc < 0 && arc != -ENOTSUP)
		cli_error("the change was made but could not be recorded in the audit: %s",
		          store_strerror(arc));
}
