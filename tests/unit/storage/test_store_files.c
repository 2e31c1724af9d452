/* The store's files are private: mail.db, -wal and -shm are 0600 whatever the umask, and a
 * store left with wider modes is tightened when opened. */
#include <sys/stat.h>

#include "tests/unit/support/store_test_util.h"

static unsigned mode_of(const char *path)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "stat %s", path);
	return (unsigned)(st.st_mode & 07777);
}

static void expect_private(const struct store_fixture *fx)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		char p[160];
		snprintf(p, sizeof(p), "%s%s", fx->path, suffixes[i]);
		cr_expect_eq(mode_of(p), 0600, "%s is %04o", p, mode_of(p));
	}
}

static void add_user(struct store_fixture *fx, const char *address)
{
	cr_assert_eq(FX_CALL(fx, store_user_add(fx->s, address, "pw", store_sync_users, &fx->w)),
	             0);
}

/* A permissive umask must not leak into the files: the first writes create -wal and
 * -shm, which SQLite gives the main file's mode. */
Test(store_files, new_store_is_private_under_umask_022)
{
	struct store_fixture fx = {0};
	mode_t old = umask(022);
	fx_dir(&fx);
	fx_open(&fx);
	add_user(&fx, "alice@corp.example");
	expect_private(&fx);
	store_sync_done(&fx.w);
	store_close(fx.s);
	umask(old);
	fx_rmdir(&fx);
}

/* A store made before the rule (0644 everywhere) is tightened at open, -wal and -shm
 * included when they were left behind. */
Test(store_files, existing_wide_files_are_tightened)
{
	struct store_fixture fx = {0};
	mode_t old = umask(022);
	fx_dir(&fx);
	fx_open(&fx);
	add_user(&fx, "alice@corp.example");
	store_sync_done(&fx.w);
	store_close(fx.s);
	fx.s = NULL;
	char wal[160], shm[160];
	snprintf(wal, sizeof(wal), "%s-wal", fx.path);
	snprintf(shm, sizeof(shm), "%s-shm", fx.path);
	/* A clean close removes -wal and -shm: make them as a crashed writer leaves them. */
	FILE *fp = fopen(wal, "w");
	cr_assert_not_null(fp);
	fclose(fp);
	fp = fopen(shm, "w");
	cr_assert_not_null(fp);
	fclose(fp);
	cr_assert_eq(chmod(fx.path, 0644), 0);
	cr_assert_eq(chmod(wal, 0644), 0);
	cr_assert_eq(chmod(shm, 0666), 0);
	fx_open(&fx);
	add_user(&fx, "bob@corp.example");
	expect_private(&fx);
	store_sync_done(&fx.w);
	store_close(fx.s);
	umask(old);
	fx_rmdir(&fx);
}

/* A path that is not a regular file is refused rather than chmod-ed. */
Test(store_files, refuses_a_folder)
{
	struct store_fixture fx = {0};
	fx_dir(&fx);
	cr_assert_eq(mkdir(fx.path, 0755), 0);
	struct store_options opt = {0};
	cr_expect_lt(fx_open_opts(&fx, &opt), 0);
	cr_expect_eq(mode_of(fx.path), 0755);
	fx_rmdir(&fx);
}
