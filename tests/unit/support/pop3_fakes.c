/*
 * Fakes for the POP3 (and IMAP) session tests: what lives in sealmaild rather than in the
 * protocol library. auth_login checks the password with the real store the test gives the
 * session (SQLite in a mkdtemp folder, or mem through mem_store.h) and answers through a
 * poster that the test pumps, so completions run on the test's thread in order, as they do
 * on the loop.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xmalloc.h"
#include "server/auth/login.h"
#include "server/conn.h"
#include "server/services.h"
#include "storage/store.h"
#include "tests/unit/support/pop3_fakes.h"

void *fake_conn_sess(struct conn *c);
bool fake_conn_closed(const struct conn *c);

/* ---- poster -------------------------------------------------------------------- */

struct posted {
	void (*fn)(void *);
	void *arg;
	struct posted *next;
};

static pthread_mutex_t post_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t post_cv = PTHREAD_COND_INITIALIZER;
static struct posted *post_head, *post_tail;

static void pop3_fake_post(void *ctx, void (*fn)(void *), void *arg)
{
	struct posted *p = xcalloc(1, sizeof(*p));
	(void)ctx;
	p->fn = fn;
	p->arg = arg;
	pthread_mutex_lock(&post_lock);
	if (post_tail != NULL)
		post_tail->next = p;
	else
		post_head = p;
	post_tail = p;
	pthread_cond_signal(&post_cv);
	pthread_mutex_unlock(&post_lock);
}

const struct store_poster pop3_fake_poster = {.post = pop3_fake_post};

bool pop3_fake_run_one(unsigned timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&post_lock);
	while (post_head == NULL) {
		if (pthread_cond_timedwait(&post_cv, &post_lock, &ts) != 0)
			break;
	}
	struct posted *p = post_head;
	if (p != NULL) {
		post_head = p->next;
		if (post_head == NULL)
			post_tail = NULL;
	}
	pthread_mutex_unlock(&post_lock);
	if (p == NULL)
		return false;
	p->fn(p->arg);
	free(p);
	return true;
}

bool pop3_fake_run_until(bool (*done)(void *arg), void *arg)
{
	while (!done(arg)) {
		if (!pop3_fake_run_one(10000))
			return false;
	}
	return true;
}

void pop3_fake_drop_posted(void)
{
	pthread_mutex_lock(&post_lock);
	while (post_head != NULL) {
		struct posted *p = post_head;
		post_head = p->next;
		free(p);
	}
	post_tail = NULL;
	pthread_mutex_unlock(&post_lock);
}

/* The certificate road (linked for real) waits through the poster: delays pass at once. */
void conn_after(struct conn *c, unsigned ms, void (*fn)(void *arg), void *arg)
{
	(void)c;
	(void)ms;
	pop3_fake_post(NULL, fn, arg);
}

/* ---- auth_login ---------------------------------------------------------------- */

unsigned pop3_fake_logins;

struct fake_login {
	struct conn *c;
	auth_login_cb *cb;
	char *user;
};

static void fake_login_done(void *ctx, int rc, struct store_login *res)
{
	struct fake_login *l = ctx;
	struct auth_login_result r = {.status = AUTH_LOGIN_FAILED, .user = l->user};
	if (rc == 0) {
		r.status = AUTH_LOGIN_OK;
		r.user_id = res->user_id;
	} else if (rc != -EACCES && rc != -ENOENT && rc != -EINVAL) {
		r.status = AUTH_LOGIN_TEMPFAIL;
	}
	/* As login.c: the callback runs while the conn is held, then input resumes. */
	if (!fake_conn_closed(l->c)) {
		l->cb(fake_conn_sess(l->c), &r);
		conn_resume(l->c);
	}
	conn_release(l->c);
	free(l->user);
	free(l);
}

void auth_login(struct conn *c, const char *mech, const char *user, const char *password,
                auth_login_cb *cb)
{
	struct fake_login *l = xcalloc(1, sizeof(*l));
	(void)mech;
	pop3_fake_logins++;
	l->c = c;
	l->cb = cb;
	l->user = xstrdup(user);
	conn_pause(c);
	conn_hold(c);
	int rc = store_auth(conn_services(c)->store, user, password, fake_login_done, l);
	if (rc < 0)
		fake_login_done(l, rc, NULL);
}
