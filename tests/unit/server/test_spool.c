#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "server/spool.h"
#include "storage/store_spool.h"

static char dir[] = "/tmp/sealmail-spool-XXXXXX";
static uv_loop_t loop;

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	uv_loop_init(&loop);
	cr_assert_eq(spool_setup(&loop, dir), 0);
}

static void teardown(void)
{
	spool_teardown();
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

struct result {
	int rc;
	int calls;
	int drains;
};

static void finished(void *ctx, int rc)
{
	struct result *r = ctx;
	r->rc = rc;
	r->calls++;
}

static void drained(void *ctx)
{
	struct result *r = ctx;
	r->drains++;
}

TestSuite(spool, .init = setup, .fini = teardown);

Test(spool, write_finish_free)
{
	struct spool_file *f;
	cr_assert_eq(spool_create(&f), 0);
	struct stat st;
	char sp[256];
	snprintf(sp, sizeof(sp), "%s/spool", dir);
	cr_assert_eq(stat(sp, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0700);

	struct result r = {0};
	size_t total = 0;
	char chunk[65536];
	for (int i = 0; i < 40; i++) {
		memset(chunk, 'a' + i % 26, sizeof(chunk));
		cr_assert_eq(spool_write(f, chunk, sizeof(chunk)), 0);
		total += sizeof(chunk);
		if (i % 7 == 0)
			uv_run(&loop, UV_RUN_NOWAIT);
	}
	cr_assert(spool_pending(f) > 0);
	spool_on_drain(f, drained, &r);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(r.drains, 1);
	cr_assert_eq(spool_pending(f), 0);
	spool_finish(f, finished, &r);
	cr_assert_eq(r.calls, 0); /* never before returning */
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(r.calls, 1);
	cr_assert_eq(r.rc, 0);
	cr_assert_eq(spool_size(f), total);
	char path[256];
	snprintf(path, sizeof(path), "%s", spool_path(f));
	cr_assert_eq(stat(path, &st), 0);
	/* Sealed: the header and a tag per chunk (the 40th, staged at finish, is the last). */
	cr_assert_eq((size_t)st.st_size, total + STORE_SPOOL_HDR + 40 * STORE_SPOOL_TAG);
	cr_assert_eq(st.st_mode & 0777, 0600);
	FILE *fp = fopen(path, "rb");
	int plain_runs = 0;
	while (fread(chunk, 1, 64, fp) == 64)
		plain_runs += memcmp(chunk, "aaaaaaaaaaaaaaaa", 16) == 0;
	fclose(fp);
	cr_assert_eq(plain_runs, 0, "the message is on disk in clear");
	struct store_spool_reader *rd;
	uint64_t plain = 0;
	cr_assert_eq(store_spool_open(path, true, &rd, &plain), 0);
	cr_assert_eq(plain, total);
	for (int i = 0; i < 40; i++) {
		cr_assert_eq(
		    store_spool_pread(rd, chunk, sizeof(chunk), (uint64_t)i * sizeof(chunk)),
		    (ssize_t)sizeof(chunk));
		cr_assert_eq(chunk[0], 'a' + i % 26);
		cr_assert_eq(chunk[sizeof(chunk) - 1], 'a' + i % 26);
	}
	/* Across a chunk boundary. */
	cr_assert_eq(store_spool_pread(rd, chunk, 10, 65536 - 5), 10);
	cr_assert_eq(chunk[4], 'a');
	cr_assert_eq(chunk[5], 'b');
	store_spool_close(rd);

	/* Cut at a chunk's end, one byte changed, or read as plain: never the message. */
	char copy[300];
	snprintf(copy, sizeof(copy), "%s.cut", path);
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "head -c %zu %s > %s", (size_t)st.st_size - STORE_SPOOL_TAG,
	         path, copy);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(store_spool_open(copy, true, &rd, &plain), 0);
	ssize_t n = 0;
	for (uint64_t off = 0; off < plain && n >= 0; off += (uint64_t)n)
		n = store_spool_pread(rd, chunk, sizeof(chunk), off);
	cr_assert_eq(n, -EBADMSG);
	store_spool_close(rd);
	FILE *w = fopen(path, "r+b");
	fseek(w, STORE_SPOOL_HDR + 100, SEEK_SET);
	fputc('x', w);
	fclose(w);
	cr_assert_eq(store_spool_open(path, true, &rd, &plain), 0);
	cr_assert_eq(store_spool_pread(rd, chunk, 10, 0), -EBADMSG);
	store_spool_close(rd);
	unlink(copy);
	spool_free(f);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(stat(path, &st), -1);
}

Test(spool, free_while_in_flight)
{
	for (int k = 0; k < 3; k++) {
		struct spool_file *f;
		cr_assert_eq(spool_create(&f), 0);
		char path[256];
		snprintf(path, sizeof(path), "%s", spool_path(f));
		char chunk[4096] = {0};
		if (k > 0)
			spool_write(f, chunk, sizeof(chunk));
		if (k > 1)
			uv_run(&loop, UV_RUN_NOWAIT);
		struct result r = {0};
		spool_finish(f, finished, &r);
		spool_free(f); /* cancels the callback */
		uv_run(&loop, UV_RUN_DEFAULT);
		cr_assert_eq(r.calls, 0);
		struct stat st;
		cr_assert_eq(stat(path, &st), -1, "k=%d", k);
	}
}

Test(spool, leftovers_removed_at_setup)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/spool/old.1", dir);
	FILE *fp = fopen(p, "w");
	fputs("x", fp);
	fclose(fp);
	cr_assert_eq(spool_setup(&loop, dir), 0);
	struct stat st;
	cr_assert_eq(stat(p, &st), -1);
}

Test(spool, not_set_up)
{
	spool_teardown();
	struct spool_file *f;
	cr_assert_eq(spool_create(&f), -ENOTSUP);
}
