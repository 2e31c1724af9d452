/*
 * libFuzzer target: the configuration loader (config/config.h). Each input is written to
 * one file in a private temporary folder (made once per process, removed at exit) and
 * loaded without the certificate file checks; every error must be one line, and an
 * accepted configuration is queried a little and freed.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char path[96];

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (dir[0] == '\0') {
		char tmpl[] = "/tmp/sealmail-fuzz-config-XXXXXX";
		if (mkdtemp(tmpl) == NULL)
			abort();
		memcpy(dir, tmpl, sizeof(tmpl));
		int n = snprintf(path, sizeof(path), "%s/sealmail.yaml", dir);
		if (n < 0 || (size_t)n >= sizeof(path))
			abort();
		atexit(cleanup);
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		abort();
	size_t off = 0;
	while (off < size) {
		ssize_t w = write(fd, data + off, size - off);
		if (w <= 0)
			abort();
		off += (size_t)w;
	}
	close(fd);

	struct config *cfg = NULL;
	struct cfg_errors errs = {NULL, 0};
	int rc = cfg_load_flags(path, CFG_LOAD_NO_FILE_CHECKS, &cfg, &errs);
	if (rc == 0) {
		if (cfg == NULL)
			abort();
		(void)cfg_is_local_domain(cfg, "example.org", 11);
		(void)cfg_route_find(cfg, "example.org.", 12);
		cfg_free(cfg);
	} else {
		if (cfg != NULL || errs.n == 0)
			abort();
		for (size_t i = 0; i < errs.n; i++)
			if (errs.lines[i] == NULL || strchr(errs.lines[i], '\n') != NULL)
				abort();
	}
	cfg_errors_free(&errs);
	return 0;
}
