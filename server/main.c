/*
 * sealmaild: the mail server. `sealmaild -c FILE` runs in the foreground and logs to
 * standard error; `--check` validates the configuration (and that the TLS files load), and
 * warns when limits.connections cannot fit in the hard open-file limit.
 */
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "common/log.h"
#include "config/config.h"
#include "server/server.h"
#include "server/tls.h"

static void usage(FILE *fp)
{
	fprintf(fp, "usage: sealmaild -c FILE [--check]\n"
	            "       sealmaild --print-config-reference\n"
	            "  -c, --config FILE   the configuration file (YAML)\n"
	            "      --check         validate the configuration and exit (0 = valid)\n"
	            "  -h, --help          this text\n"
	            "  -V, --version       print the version\n");
}

/* --check: sealmaild raises its soft open-file limit to the hard one at start, so the hard
 * limit of this environment is what limits.connections must fit in. A warning in the form
 * of the configuration errors; the configuration itself is still valid. */
static void main_check_open_files(const struct config *cfg)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max == RLIM_INFINITY)
		return;
	uint64_t needed = server_open_files_needed(cfg);
	if (needed <= (uint64_t)rl.rlim_max)
		return;
	fprintf(stderr,
	        "%s:%d: limits.connections: warning: %u connections need about %" PRIu64
	        " open files, more than the hard limit of %ju here (RLIMIT_NOFILE); raise it "
	        "(ulimit -Hn, systemd LimitNOFILE=) or lower limits.connections\n",
	        cfg->path, cfg->limits.connections_line, cfg->limits.connections, needed,
	        (uintmax_t)rl.rlim_max);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", no_argument, NULL, 'k'},
	    {"print-config-reference", no_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = NULL;
	int check = 0, opt;

	/* Everything this process creates (mail.db and its -wal and -shm, spool files, the
	 * data folder) holds mail or secrets: owner only, whatever the caller's umask. Files
	 * are also opened with explicit modes; this covers what a library creates. */
	umask(077);

	while ((opt = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			check = 1;
			break;
		case 'r':
			cfg_print_reference(stdout);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("sealmaild 0.1.0\n");
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (path == NULL || optind != argc) {
		fprintf(stderr, "sealmaild: missing -c FILE; run sealmaild --help\n");
		return 2;
	}

	struct config *cfg = NULL;
	struct cfg_errors errs = {0};
	if (cfg_load(path, &cfg, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.lines[i]);
		if (errs.n == 0)
			fprintf(stderr, "%s: cannot load the configuration\n", path);
		cfg_errors_free(&errs);
		return 1;
	}
	cfg_errors_free(&errs);

	if (check) {
		/* The files exist; make sure they also load as certificates and keys. */
		struct tls_ctx *ctx = NULL;
		const char *err = NULL;
		int r = tls_ctx_new(cfg, &ctx, &err);
		if (r < 0) {
			fprintf(stderr, "%s: tls: %s\n", cfg->path, err ? err : "cannot load");
			cfg_free(cfg);
			return 1;
		}
		tls_ctx_unref(ctx);
		main_check_open_files(cfg);
		for (size_t i = 0; i < cfg->n_listeners; i++) {
			const struct cfg_listener *l = &cfg->listeners[i];
			if (cfg_listener_without_peers(cfg, l))
				fprintf(
				    stderr,
				    "%s:%d: listeners[%zu].peers: warning: neither peers nor "
				    "tls.peer_ca is set, so no server counts as the "
				    "organisation's and MAIL FROM a local domain will be refused "
				    "on this smtp listener\n",
				    cfg->path, l->line, i);
		}
		/* Only here, never while serving: the running server does not look at the CA's
		 * folder at all. */
		char *warning = NULL;
		free(cfg_ca_dir(cfg, &warning));
		if (warning != NULL)
			fprintf(stderr, "%s: %s\n", cfg->path, warning);
		free(warning);
		printf("%s: configuration ok (%zu listeners)\n", cfg->path, cfg->n_listeners);
		cfg_free(cfg);
		return 0;
	}

	/* A fixed mmap threshold: glibc otherwise raises it after the first large free, and
	 * the temporary megabyte-sized lists of a SELECT on a big mailbox then stay in the heap
	 * as RSS that idle sessions seem to cost. Large blocks go back to the system. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	mallopt(M_TRIM_THRESHOLD, 256 * 1024);

	int ret = server_run(cfg);
	cfg_free(cfg);
	return ret;
}
