#include "server/server.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/dirlock.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "server/auth/auth.h"
#include "server/auth/login.h"
#include "server/metrics_scrape.h"
#include "server/server_private.h"
#include "server/notify.h"
#include "server/poster.h"
#include "server/relay/relay.h"
#include "server/services.h"
#include "server/spool.h"
#include "storage/store_key.h"
#include "storage/store.h"
#include "server/tls.h"

#define STOP_GRACE_MS      10000 /* connections still busy after this are cut */
#define IP_BUCKETS         1024
#define LOGIN_CACHE_TTL_MS (5 * 60 * 1000) /* successful logins remembered */

/* Open files besides one per connection. The store has a writer, its workers (4 unless
 * configured) and a checkpointer, each an SQLite connection holding the database, its
 * WAL and its shared-memory index. Spool files: messages arriving or being delivered at
 * once. Relay: relay.c's RELAY_MAX_ACTIVE outbound sessions and c-ares' sockets. The
 * loop: epoll, its wakeup and signal descriptors, the thread pool's, standard streams. */
#define SERVER_FILES_STORE  (6 * 3)
#define SERVER_FILES_SPOOL  32
#define SERVER_FILES_RELAY  (64 + 8)
#define SERVER_FILES_LOOP   16
#define SERVER_FILES_MARGIN 32

struct ipcount {
	struct ipcount *next;
	unsigned count;
	char ip[48];
};

static unsigned ip_hash(const char *ip)
{
	unsigned h = 2166136261u;
	for (; *ip; ip++)
		h = (h ^ (unsigned char)*ip) * 16777619u;
	return h % IP_BUCKETS;
}

bool server_ip_acquire(struct server *srv, const char *ip)
{
	struct ipcount **bucket = &srv->ipcounts[ip_hash(ip)].next;
	struct ipcount *e;
	for (e = *bucket; e != NULL; e = e->next)
		if (strcmp(e->ip, ip) == 0)
			break;
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		snprintf(e->ip, sizeof(e->ip), "%s", ip);
		e->next = *bucket;
		*bucket = e;
	}
	e->count++;
	return e->count <= srv->cfg->limits.connections_per_ip;
}

void server_ip_release(struct server *srv, const char *ip)
{
	struct ipcount **pp = &srv->ipcounts[ip_hash(ip)].next;
	for (; *pp != NULL; pp = &(*pp)->next) {
		struct ipcount *e = *pp;
		if (strcmp(e->ip, ip) != 0)
			continue;
		if (--e->count == 0) {
			*pp = e->next;
			free(e);
		}
		return;
	}
}

struct tls_ctx *server_tls(struct server *srv)
{
	return srv->tls;
}

static void server_finish(struct server *srv)
{
	/* Every connection is gone: finish the store's queued work (its completions run
	 * through the poster, drained when it closes). */
	if (srv->services->store != NULL) {
		store_close(srv->services->store);
		srv->services->store = NULL;
	}
	if (srv->poster != NULL) {
		poster_close(srv->poster);
		srv->poster = NULL;
	}
	uv_close((uv_handle_t *)&srv->sig_hup, NULL);
	uv_close((uv_handle_t *)&srv->sig_usr1, NULL);
	uv_close((uv_handle_t *)&srv->sig_usr2, NULL);
	uv_close((uv_handle_t *)&srv->sig_term, NULL);
	uv_close((uv_handle_t *)&srv->sig_int, NULL);
	uv_close((uv_handle_t *)&srv->stop_timer, NULL);
	uv_close((uv_handle_t *)&srv->crl_poll, NULL);
	uv_close((uv_handle_t *)&srv->crl_timer, NULL);
}

void server_conn_gone(struct server *srv)
{
	if (srv->stopping && srv->n_conns == 0 && !uv_is_closing((uv_handle_t *)&srv->sig_hup))
		server_finish(srv);
}

/* What a failed recheck means for the session: its log reason and its goodbye. */
static enum conn_goodbye server_recheck_goodbye(const char *why, const char **reason_r)
{
	if (strcmp(why, "revoked") == 0) {
		*reason_r = "certificate_revoked";
		return CONN_BYE_CERT_REVOKED;
	}
	if (strcmp(why, "CRL expired") == 0) {
		*reason_r = "crl_expired";
		return CONN_BYE_CRL_STALE;
	}
	if (strcmp(why, "CRL rolled back") == 0) {
		*reason_r = "crl_rolled_back";
		return CONN_BYE_CRL_STALE;
	}
	*reason_r = "certificate_invalid";
	return CONN_BYE_CERT_INVALID;
}

/* After a reload, and while the CRL is unusable: sessions whose client certificate the
 * current context no longer accepts (revoked, CRL expired) are told why and closed. */
static void server_recheck_sessions(struct server *srv)
{
	struct conn *c = srv->conns;
	while (c != NULL) {
		struct conn *next = c->next;
		const char *why = NULL, *reason = NULL;
		if (c->state == CONN_TLS && c->tls != NULL && tls_session_peer_verified(c->tls) &&
		    tls_ctx_recheck_peer(srv->tls, c->tls, &why) < 0) {
			enum conn_goodbye bye = server_recheck_goodbye(why, &reason);
			log_event(
			    LOGL_WARN,
			    "session=%s proto=%s event=session_closed reason=%s serial=%s ip=%s",
			    c->id, conn_proto_name(c), reason, tls_session_peer_serial(c->tls),
			    c->ip);
			if (c->sess != NULL && c->proto->shutdown != NULL && !c->paused)
				c->proto->shutdown(c->sess, bye);
			conn_close(c, reason);
		}
		c = next;
	}
}

/* The CRL number for the log, "-" when the CRL has none. */
static const char *crl_number(const struct crl_mark *m, char *buf, size_t len)
{
	if (m->has_number)
		snprintf(buf, len, "%llu", (unsigned long long)m->number);
	else
		snprintf(buf, len, "-");
	return buf;
}

/* A CRL was accepted: remember it as the newest when it is, on disk too, so that neither
 * a reload nor a restart takes an older one. */
static void server_crl_accepted(struct server *srv, const struct crl_mark *m)
{
	if (srv->crl_seen_valid && strcmp(srv->crl_seen.issuer, m->issuer) == 0 &&
	    !crlguard_older(&srv->crl_seen, m))
		return;
	srv->crl_seen = *m;
	srv->crl_seen_valid = true;
	int r = crlguard_save(srv->crl_state_path, m);
	if (r < 0)
		log_event(LOGL_ERROR,
		          "event=crl_state_failed state=%s error=\"%s\" "
		          "consequence=\"an older CRL is refused only until a restart\"",
		          srv->crl_state_path, strerror(-r));
}

/* data_dir holds the mail: a folder made before (or by hand) with group or other bits is
 * closed to 0700 and said so. Only a folder we own: anything else is the administrator's
 * layout, logged but left alone. */
static void server_private_dir(const char *dir)
{
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 077) == 0)
		return;
	if (st.st_uid != geteuid() || chmod(dir, 0700) < 0) {
		log_event(LOGL_WARN,
		          "event=data_dir_open path=\"%s\" mode=%04o fix=\"chmod 0700 %s\"", dir,
		          (unsigned)(st.st_mode & 07777), dir);
		return;
	}
	log_event(LOGL_WARN, "event=data_dir_mode_fixed path=\"%s\" old_mode=%04o new_mode=0700",
	          dir, (unsigned)(st.st_mode & 07777));
}

/* At start, once data_dir exists: an older CRL than one accepted before (a restored
 * backup, a stale copy) is not trusted; certificates are refused until a newer one comes. */
static void server_crl_start(struct server *srv)
{
	const char *path = srv->cfg->tls.crl;
	if (path == NULL)
		return;
	srv->crl_state_path = xasprintf("%s/%s", srv->cfg->data_dir, CRLGUARD_STATE_FILE);
	int r = crlguard_load(srv->crl_state_path, &srv->crl_seen);
	if (r == 0)
		srv->crl_seen_valid = true;
	else if (r != -ENOENT)
		log_event(LOGL_ERROR,
		          "event=crl_state_unreadable state=%s error=\"%s\" action=replacing_it",
		          srv->crl_state_path, r == -EINVAL ? "malformed" : strerror(-r));
	struct crl_mark cand;
	time_t next;
	if (!tls_ctx_crl_mark(srv->tls, &cand, &next))
		return;
	if (srv->crl_seen_valid && crlguard_older(&cand, &srv->crl_seen)) {
		char n1[24], n2[24], t1[32], t2[32];
		log_event(LOGL_ERROR,
		          "event=crl_refused crl=%s reason=older_than_accepted number=%s "
		          "this_update=%s accepted_number=%s accepted_this_update=%s state=%s "
		          "action=refusing_client_certificates fix=\"run sealctl cert crl\"",
		          path, crl_number(&cand, n1, sizeof(n1)),
		          crlguard_time(cand.this_update, t1, sizeof(t1)),
		          crl_number(&srv->crl_seen, n2, sizeof(n2)),
		          crlguard_time(srv->crl_seen.this_update, t2, sizeof(t2)),
		          srv->crl_state_path);
		tls_ctx_crl_distrust(srv->tls, "CRL rolled back");
		return;
	}
	server_crl_accepted(srv, &cand);
}

/* A reload's CRL older than the newest accepted (by number or thisUpdate) is refused:
 * true, with the old context kept and the reason logged. */
static bool server_crl_rolled_back(struct server *srv, struct tls_ctx *ctx)
{
	struct crl_mark cand;
	time_t next;
	if (!srv->crl_seen_valid || !tls_ctx_crl_mark(ctx, &cand, &next) ||
	    !crlguard_older(&cand, &srv->crl_seen))
		return false;
	char n1[24], n2[24], t1[32], t2[32];
	log_event(LOGL_ERROR,
	          "event=crl_refused crl=%s reason=older_than_loaded number=%s this_update=%s "
	          "loaded_number=%s loaded_this_update=%s action=kept_old_context "
	          "fix=\"run sealctl cert crl\"",
	          srv->cfg->tls.crl, crl_number(&cand, n1, sizeof(n1)),
	          crlguard_time(cand.this_update, t1, sizeof(t1)),
	          crl_number(&srv->crl_seen, n2, sizeof(n2)),
	          crlguard_time(srv->crl_seen.this_update, t2, sizeof(t2)));
	return true;
}

static void crl_tick(uv_timer_t *t);

/* SIGHUP reloads the TLS files only; every other change in the configuration file waits
 * for a restart. Say which, so that nobody believes a change is live when it is not. */
static void server_reload_config_check(struct server *srv)
{
	struct config *now = NULL;
	struct cfg_errors errs = {0};
	if (cfg_load(srv->cfg->path, &now, &errs) < 0) {
		log_event(LOGL_WARN,
		          "event=reload_config_invalid file=\"%s\" errors=%zu "
		          "action=running_config_kept",
		          srv->cfg->path, errs.n);
		cfg_errors_free(&errs);
		return;
	}
	cfg_errors_free(&errs);
	char *changed = cfg_diff(srv->cfg, now);
	if (changed[0] != '\0')
		log_event(LOGL_WARN,
		          "event=reload_restart_needed keys=\"%s\" "
		          "reason=\"a reload applies only the contents of the TLS files\"",
		          changed);
	free(changed);
	cfg_free(now);
}

static void server_reload(struct server *srv)
{
	struct tls_ctx *ctx = NULL;
	const char *err = NULL;
	if (tls_ctx_new(srv->cfg, &ctx, &err) < 0) {
		log_event(LOGL_ERROR, "event=reload_failed reason=\"%s\" action=kept_old_context",
		          err ? err : "unknown");
		return;
	}
	if (server_crl_rolled_back(srv, ctx)) {
		tls_ctx_unref(ctx);
		return;
	}
	struct tls_ctx *old = srv->tls;
	srv->tls = ctx;
	tls_ctx_unref(old); /* live sessions keep their own reference */
	log_event(LOGL_INFO, "event=reloaded what=tls_context ticket_key=rotated");
	struct crl_mark mark;
	time_t next;
	if (tls_ctx_crl_mark(srv->tls, &mark, &next))
		server_crl_accepted(srv, &mark);
	server_recheck_sessions(srv);
	if (srv->cfg->tls.crl != NULL) {
		/* A new nextUpdate: warn about it now and wake up when it passes. */
		srv->crl_warned = false;
		uv_timer_start(&srv->crl_timer, crl_tick, 0, 0);
	}
}

/* The CRL file changed (sealctl cert revoke / cert crl wrote a new one): reload without
 * waiting for SIGHUP. Polling stat() every two seconds also sees atomic renames, which an
 * inotify watch on the old inode would miss. */
static void crl_poll_cb(uv_fs_poll_t *h, int status, const uv_stat_t *prev, const uv_stat_t *cur)
{
	struct server *srv = h->data;
	(void)prev;
	(void)cur;
	if (status < 0)
		return;
	log_event(LOGL_INFO, "event=crl_changed crl=%s", srv->cfg->tls.crl);
	server_reload(srv);
}

/* At start, after each reload, once a minute, and right when nextUpdate passes:
 * - a CRL past its nextUpdate (or refused as rolled back) makes every certificate login
 *   fail: say so loudly until someone runs `sealctl cert crl`, and close the sessions
 *   that carry a certificate, which can no longer be checked;
 * - within CRLGUARD_WARN_DAYS of nextUpdate, warn once a day, before the outage. */
static void crl_tick(uv_timer_t *t)
{
	struct server *srv = t->data;
	const char *path = srv->cfg->tls.crl;
	const char *problem = tls_ctx_crl_problem(srv->tls);
	struct crl_mark mark;
	time_t next = (time_t)-1;
	bool has_crl = tls_ctx_crl_mark(srv->tls, &mark, &next);
	uint64_t delay = 60000;
	if (problem != NULL) {
		log_event(LOGL_ERROR,
		          "event=%s crl=%s action=refusing_client_certificates "
		          "fix=\"run sealctl cert crl\"",
		          strcmp(problem, "CRL expired") == 0 ? "crl_expired" : "crl_rolled_back",
		          path ? path : "-");
		server_recheck_sessions(srv);
	} else if (has_crl && next != (time_t)-1) {
		time_t now = time(NULL);
		int days_left = 0;
		uint64_t now_ms = uv_now(srv->loop);
		if (crlguard_expiring(next, now, &days_left) &&
		    (!srv->crl_warned || now_ms - srv->crl_warned_ms >= 24 * 3600 * 1000ULL)) {
			char when[32];
			log_event(LOGL_WARN,
			          "event=crl_expiring days_left=%d crl=%s next_update=%s "
			          "fix=\"run sealctl cert crl\"",
			          days_left, path, crlguard_time(next, when, sizeof(when)));
			srv->crl_warned = true;
			srv->crl_warned_ms = now_ms;
		}
		/* time() counts whole seconds: wake a little after nextUpdate, and again
		 * if the clock had not quite reached it. */
		if (next - now < 60)
			delay = (uint64_t)(next - now) * 1000 + 200;
	}
	uv_timer_start(t, crl_tick, delay, 0);
}

static void stop_timer_cb(uv_timer_t *t)
{
	struct server *srv = t->data;
	log_event(LOGL_WARN, "event=stop_forced connections=%u", srv->n_conns);
	/* Busy connections had their grace; cut them now. */
	for (struct conn *c = srv->conns; c != NULL; c = c->next)
		c->paused = false;
	conn_shutdown_all(srv);
}

static void server_stop(struct server *srv)
{
	if (srv->stopping)
		return;
	srv->stopping = true;
	log_event(LOGL_INFO, "event=stopping connections=%u", srv->n_conns);
	relay_stop(srv->relay);
	srv->relay = NULL;
	spool_teardown();
	for (size_t i = 0; i < srv->n_listeners; i++)
		listener_stop(&srv->listeners[i]);
	conn_shutdown_all(srv);
	if (srv->n_conns == 0) {
		server_finish(srv);
		return;
	}
	uv_timer_start(&srv->stop_timer, stop_timer_cb, STOP_GRACE_MS, 0);
}

/* A user's sessions, once the store says the user is disabled or gone. */
struct user_recheck {
	struct server *srv;
	char *user;
};

static void user_rechecked(void *ctx, int rc, struct store_users *res)
{
	struct user_recheck *u = ctx;
	struct server *srv = u->srv;
	bool gone = rc == -ENOENT || (rc == 0 && (res->n != 1 || res->v[0].disabled));
	for (struct conn *c = srv->conns, *next; gone && c != NULL; c = next) {
		next = c->next;
		const char *who = conn_user(c);
		if (who == NULL || strcmp(who, u->user) != 0 || c->state != CONN_TLS)
			continue;
		char esc[200];
		log_event(LOGL_WARN,
		          "session=%s proto=%s event=session_closed reason=user_disabled user=%s "
		          "ip=%s",
		          c->id, conn_proto_name(c), log_escape(esc, sizeof(esc), who, strlen(who)),
		          c->ip);
		if (c->sess != NULL && c->proto->shutdown != NULL && !c->paused)
			c->proto->shutdown(c->sess, CONN_BYE_USER_DISABLED);
		conn_close(c, "user_disabled");
	}
	free(u->user);
	free(u);
}

/* SIGUSR1, which sealctl sends after disabling or deleting a user: every logged-in user
 * is looked up once, and the sessions of those now disabled or gone are told and closed.
 * (Logins were refused from the change on; this ends what was already open.) */
static void server_recheck_users(struct server *srv)
{
	char **seen = NULL;
	size_t n = 0;
	for (struct conn *c = srv->conns; c != NULL; c = c->next) {
		const char *who = conn_user(c);
		bool dup = who == NULL || who[0] == '\0';
		for (size_t i = 0; !dup && i < n; i++)
			dup = strcmp(seen[i], who) == 0;
		if (dup)
			continue;
		seen = xreallocarray(seen, n + 1, sizeof(*seen));
		seen[n++] = xstrdup(who);
	}
	log_event(LOGL_INFO, "event=users_recheck sessions_users=%zu", n);
	for (size_t i = 0; i < n; i++) {
		struct user_recheck *u = xcalloc(1, sizeof(*u));
		u->srv = srv;
		u->user = seen[i];
		if (srv->services->store == NULL ||
		    store_user_get(srv->services->store, u->user, user_rechecked, u) < 0) {
			free(u->user);
			free(u);
		}
	}
	free(seen);
}

static void signal_cb(uv_signal_t *s, int signum)
{
	struct server *srv = s->data;
	if (signum == SIGHUP) {
		server_reload_config_check(srv);
		server_reload(srv);
	} else if (signum == SIGUSR1)
		server_recheck_users(srv);
	else if (signum == SIGUSR2) {
		int rc = server_status_write(srv);
		if (rc < 0)
			log_event(LOGL_WARN, "event=status_failed reason=\"%s\"", strerror(-rc));
	} else
		server_stop(srv);
}

static void server_store_changed(void *ctx, const struct store_change *change)
{
	struct server *srv = ctx;
	notify_publish(srv->services->notify, change);
}

/* The store met an I/O error or corruption while writing and takes no more writes: mail
 * can no longer be accepted safely. Stop as on SIGTERM (connections are told), and exit
 * with EX_TEMPFAIL (75) so that a supervisor restarts sealmaild, whose store recovery then
 * reads what is really on disk. */
static void server_store_failed(void *ctx, const char *reason)
{
	struct server *srv = ctx;
	log_event(LOGL_ERROR, "event=stopping reason=\"store failed: %s\" exit=75", reason);
	srv->exit_code = 75;
	server_stop(srv);
}

static int server_open_store(struct server *srv)
{
	static struct store_poster poster;
	poster.post = poster_post;
	poster.ctx = srv->poster;
	char *path = xasprintf("%s/mail.db", srv->cfg->data_dir);
	struct store_options opt = {
	    .backend = cfg_store_name(srv->cfg->store),
	    .path = path,
	    .max_message_size = srv->cfg->limits.message_size,
	    .poster = &poster,
	    .on_change = server_store_changed,
	    .change_ctx = srv,
	    .on_failure = server_store_failed,
	    .failure_ctx = srv,
	    .audit_retention_days = srv->cfg->audit.retention_days,
	};
	const char *err = NULL;
	/* The key is checked before anything in data_dir is created, locked or changed: a
	 * wrong or missing key stops the start with the store as it was. */
	uint8_t kek[STORE_KEK_LEN];
	bool have_kek = false;
	int kr = store_kek_resolve(srv->cfg->encryption.key_file, srv->cfg->encryption.credential,
	                           kek, &have_kek, &err);
	if (kr == 0 && have_kek)
		kr = store_key_verify(srv->cfg->data_dir, kek, &err);
	else if (kr == 0 && store_key_present(srv->cfg->data_dir)) {
		err =
		    "the store is encrypted (data_dir/store.key exists) but no key is configured: "
		    "set encryption.key_file or encryption.credential";
		kr = -EPERM;
	}
	if (kr < 0) {
		log_event(LOGL_ERROR, "event=start_failed reason=\"store key: %s\"", err);
		gnutls_memset(kek, 0, sizeof(kek));
		free(path);
		return -1;
	}
	opt.kek = have_kek ? kek : NULL;
	opt.spool_sealed = true; /* server/spool.c seals every spool file */
	if (mkdir(srv->cfg->data_dir, 0700) < 0 && errno != EEXIST) {
		log_event(LOGL_ERROR, "event=start_failed reason=\"cannot create data_dir %s: %s\"",
		          srv->cfg->data_dir, strerror(errno));
		free(path);
		return -1;
	}
	server_private_dir(srv->cfg->data_dir);
	/* One daemon per store, and none while sealctl restore replaces it: held until exit. */
	int lock = dirlock_take(srv->cfg->data_dir, DIRLOCK_DAEMON);
	if (lock < 0) {
		log_event(LOGL_ERROR,
		          "event=start_failed reason=\"data_dir %s is in use: %s\" "
		          "fix=\"stop the other sealmaild (or wait for sealctl restore) first\"",
		          srv->cfg->data_dir,
		          lock == -EWOULDBLOCK
		              ? "another sealmaild or sealctl restore holds " DIRLOCK_DAEMON
		              : strerror(-lock));
		free(path);
		return -1;
	}
	dirlock_set_pid(lock);
	int r = store_open(&opt, &srv->services->store, &err);
	gnutls_memset(kek, 0, sizeof(kek));
	if (r < 0) {
		log_event(LOGL_ERROR, "event=start_failed reason=\"store %s: %s\"", path,
		          err ? err : store_strerror(r));
		free(path);
		return -1;
	}
	free(path);
	return 0;
}

uint64_t server_open_files_needed(const struct config *cfg)
{
	return (uint64_t)cfg->limits.connections + cfg->n_listeners + SERVER_FILES_STORE +
	       SERVER_FILES_SPOOL + SERVER_FILES_RELAY + SERVER_FILES_LOOP + SERVER_FILES_MARGIN;
}

/* Started from a shell, the soft limit is often 1024 while the hard one allows far more:
 * take all of it, so limits.connections is what caps connections rather than accept()
 * failing with EMFILE. Says when even the hard limit is too low for the configuration. */
static void server_raise_open_files(const struct config *cfg)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_event(LOGL_WARN, "event=open_files_unknown error=\"%s\"", strerror(errno));
		return;
	}
	rlim_t was = rl.rlim_cur;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			log_event(LOGL_WARN,
			          "event=open_files_not_raised soft=%ju hard=%ju error=\"%s\"",
			          (uintmax_t)was, (uintmax_t)rl.rlim_max, strerror(errno));
			rl.rlim_cur = was;
		} else {
			log_event(LOGL_INFO, "event=open_files_raised from=%ju to=%ju",
			          (uintmax_t)was, (uintmax_t)rl.rlim_cur);
		}
	}
	uint64_t needed = server_open_files_needed(cfg);
	if (rl.rlim_cur != RLIM_INFINITY && (uint64_t)rl.rlim_cur < needed)
		log_event(LOGL_WARN,
		          "event=open_files_low limit=%ju needed=%" PRIu64 " connections=%u "
		          "config=%s:%d fix=\"raise the hard open-file limit (ulimit -Hn, systemd "
		          "LimitNOFILE=) or lower limits.connections\"",
		          (uintmax_t)rl.rlim_cur, needed, cfg->limits.connections, cfg->path,
		          cfg->limits.connections_line);
}

int server_run(struct config *cfg)
{
	struct server srv;
	const char *err = NULL;
	int ret = 1;

	memset(&srv, 0, sizeof(srv));
	srv.cfg = cfg;
	server_raise_open_files(cfg);
	uint64_t seed = 0;
	if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		seed = (uint64_t)uv_hrtime();
	srv.next_id = seed & 0xffffffffffULL;
	srv.ipcounts = xcalloc(IP_BUCKETS, sizeof(*srv.ipcounts));
	struct services services = {
	    .cfg = cfg,
	    .authfail = authfail_new(),
	    .authcache = authcache_new(LOGIN_CACHE_TTL_MS),
	};
	srv.services = &services;

	if (tls_ctx_new(cfg, &srv.tls, &err) < 0) {
		log_event(LOGL_ERROR, "event=start_failed reason=\"%s\"", err ? err : "tls");
		free(srv.ipcounts);
		authfail_free(services.authfail);
		authcache_free(services.authcache);
		return 1;
	}
	uv_loop_t loop;
	uv_loop_init(&loop);
	srv.loop = &loop;
	services.notify = notify_new();
	services.metrics_scrape = server_metrics_scrape;
	services.login = auth_login;
	srv.poster = poster_new(&loop);
	if (server_open_store(&srv) < 0) {
		poster_close(srv.poster);
		srv.poster = NULL;
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
		tls_ctx_unref(srv.tls);
		free(srv.ipcounts);
		authfail_free(services.authfail);
		authcache_free(services.authcache);
		notify_free(services.notify);
		return 1;
	}
	server_crl_start(&srv);
	signal(SIGPIPE, SIG_IGN);
	uv_signal_init(&loop, &srv.sig_hup);
	uv_signal_init(&loop, &srv.sig_usr1);
	uv_signal_init(&loop, &srv.sig_usr2);
	uv_signal_init(&loop, &srv.sig_term);
	uv_signal_init(&loop, &srv.sig_int);
	uv_timer_init(&loop, &srv.stop_timer);
	srv.sig_hup.data = srv.sig_term.data = srv.sig_int.data = srv.stop_timer.data = &srv;
	srv.sig_usr1.data = srv.sig_usr2.data = &srv;
	srv.started = time(NULL);
	uv_signal_start(&srv.sig_hup, signal_cb, SIGHUP);
	uv_signal_start(&srv.sig_usr1, signal_cb, SIGUSR1);
	uv_signal_start(&srv.sig_usr2, signal_cb, SIGUSR2);
	uv_signal_start(&srv.sig_term, signal_cb, SIGTERM);
	uv_signal_start(&srv.sig_int, signal_cb, SIGINT);
	uv_fs_poll_init(&loop, &srv.crl_poll);
	uv_timer_init(&loop, &srv.crl_timer);
	srv.crl_poll.data = srv.crl_timer.data = &srv;
	if (cfg->tls.crl != NULL) {
		uv_fs_poll_start(&srv.crl_poll, crl_poll_cb, cfg->tls.crl, 2000);
		uv_timer_start(&srv.crl_timer, crl_tick, 0, 0);
	}

	srv.listeners = xcalloc(cfg->n_listeners, sizeof(*srv.listeners));
	srv.n_listeners = cfg->n_listeners;
	bool ok = true;
	/* Large messages go to data_dir/spool while they arrive, never whole into memory. */
	int sr = spool_setup(&loop, cfg->data_dir);
	if (sr < 0) {
		log_event(LOGL_ERROR, "event=start_failed reason=\"spool in %s: %s\"",
		          cfg->data_dir, strerror(-sr));
		ok = false;
	}
	for (size_t i = 0; i < cfg->n_listeners && ok; i++) {
		if (listener_start(&srv, &srv.listeners[i], &cfg->listeners[i], &err) < 0) {
			log_event(LOGL_ERROR, "event=start_failed reason=\"%s\"", err);
			ok = false;
		}
	}
	if (ok) {
		log_event(LOGL_INFO, "event=ready hostname=%s listeners=%zu", cfg->hostname,
		          cfg->n_listeners);
		ret = 0;
		if (relay_start(&loop, cfg, srv.services, &srv.relay) < 0) {
			ret = 1;
			server_stop(&srv);
		}
	} else {
		spool_teardown();
		for (size_t i = 0; i < srv.n_listeners; i++)
			listener_stop(&srv.listeners[i]);
		server_finish(&srv);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	if (srv.exit_code != 0)
		ret = srv.exit_code;
	int lc = uv_loop_close(&loop);
	if (lc != 0) {
		log_event(LOGL_ERROR, "event=loop_close_failed error=%s", uv_strerror(lc));
		ret = 1;
	}
	tls_ctx_unref(srv.tls);
	free(srv.listeners);
	for (size_t i = 0; i < IP_BUCKETS; i++) {
		while (srv.ipcounts[i].next != NULL) {
			struct ipcount *e = srv.ipcounts[i].next;
			srv.ipcounts[i].next = e->next;
			free(e);
		}
	}
	free(srv.ipcounts);
	free(srv.crl_state_path);
	authfail_free(services.authfail);
	authcache_free(services.authcache);
	notify_free(services.notify);
	if (ret == 0)
		log_event(LOGL_INFO, "event=stopped");
	return ret;
}
