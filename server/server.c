#include "server/server.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "server/auth/auth.h"
#include "server/server_private.h"
#include "server/notify.h"
#include "server/poster.h"
#include "server/relay/relay.h"
#include "server/services.h"
#include "server/spool.h"
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

/* After a reload: sessions whose client certificate the new context no longer accepts
 * (revoked, CRL expired) are closed. */
static void server_recheck_sessions(struct server *srv)
{
	struct conn *c = srv->conns;
	while (c != NULL) {
		struct conn *next = c->next;
		const char *why = NULL;
		if (c->state == CONN_TLS && c->tls != NULL && tls_session_peer_verified(c->tls) &&
		    tls_ctx_recheck_peer(srv->tls, c->tls, &why) < 0) {
			log_event(LOGL_WARN,
			          "session=%s proto=%s event=session_closed reason=certificate_%s "
			          "serial=%s ip=%s",
			          c->id, c->proto->name,
			          strcmp(why, "revoked") == 0 ? "revoked" : "invalid",
			          tls_session_peer_serial(c->tls), c->ip);
			if (c->sess != NULL && c->proto->shutdown != NULL && !c->paused)
				c->proto->shutdown(c->sess);
			conn_close(c, "certificate_revoked");
		}
		c = next;
	}
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
	struct tls_ctx *old = srv->tls;
	srv->tls = ctx;
	tls_ctx_unref(old); /* live sessions keep their own reference */
	log_event(LOGL_INFO, "event=reloaded what=tls_context ticket_key=rotated");
	if (tls_ctx_crl_expired(srv->tls))
		log_event(LOGL_ERROR,
		          "event=crl_expired crl=%s action=refusing_client_certificates "
		          "fix=\"run sealctl cert crl\"",
		          srv->cfg->tls.crl ? srv->cfg->tls.crl : "-");
	server_recheck_sessions(srv);
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

/* Once a minute: a CRL past its nextUpdate makes every certificate login fail; say so
 * loudly until someone runs `sealctl cert crl`. */
static void crl_check_cb(uv_timer_t *t)
{
	struct server *srv = t->data;
	if (tls_ctx_crl_expired(srv->tls))
		log_event(LOGL_ERROR,
		          "event=crl_expired crl=%s action=refusing_client_certificates "
		          "fix=\"run sealctl cert crl\"",
		          srv->cfg->tls.crl ? srv->cfg->tls.crl : "-");
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
	relay_stop(srv);
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

static void signal_cb(uv_signal_t *s, int signum)
{
	struct server *srv = s->data;
	if (signum == SIGHUP)
		server_reload(srv);
	else
		server_stop(srv);
}

static void server_store_changed(void *ctx, const struct store_change *change)
{
	struct server *srv = ctx;
	notify_publish(srv->services->notify, change);
}

static int server_open_store(struct server *srv)
{
	static struct store_poster poster;
	poster.post = poster_post;
	poster.ctx = srv->poster;
	char *path = xasprintf("%s/mail.db", srv->cfg->data_dir);
	struct store_options opt = {
	    .path = path,
	    .max_message_size = srv->cfg->limits.message_size,
	    .poster = &poster,
	    .on_change = server_store_changed,
	    .change_ctx = srv,
	};
	const char *err = NULL;
	if (mkdir(srv->cfg->data_dir, 0700) < 0 && errno != EEXIST) {
		log_event(LOGL_ERROR, "event=start_failed reason=\"cannot create data_dir %s: %s\"",
		          srv->cfg->data_dir, strerror(errno));
		free(path);
		return -1;
	}
	int r = store_open(&opt, &srv->services->store, &err);
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
	signal(SIGPIPE, SIG_IGN);
	uv_signal_init(&loop, &srv.sig_hup);
	uv_signal_init(&loop, &srv.sig_term);
	uv_signal_init(&loop, &srv.sig_int);
	uv_timer_init(&loop, &srv.stop_timer);
	srv.sig_hup.data = srv.sig_term.data = srv.sig_int.data = srv.stop_timer.data = &srv;
	uv_signal_start(&srv.sig_hup, signal_cb, SIGHUP);
	uv_signal_start(&srv.sig_term, signal_cb, SIGTERM);
	uv_signal_start(&srv.sig_int, signal_cb, SIGINT);
	uv_fs_poll_init(&loop, &srv.crl_poll);
	uv_timer_init(&loop, &srv.crl_timer);
	srv.crl_poll.data = srv.crl_timer.data = &srv;
	if (cfg->tls.crl != NULL) {
		uv_fs_poll_start(&srv.crl_poll, crl_poll_cb, cfg->tls.crl, 2000);
		uv_timer_start(&srv.crl_timer, crl_check_cb, 0, 60000);
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
		if (relay_start(&srv) < 0) {
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
	authfail_free(services.authfail);
	authcache_free(services.authcache);
	notify_free(services.notify);
	if (ret == 0)
		log_event(LOGL_INFO, "event=stopped");
	return ret;
}
