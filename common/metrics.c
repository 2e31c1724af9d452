/*
 * The metrics registry (metrics.h): per family a small array of series keyed by their
 * label string; one mutex for all (recording is a few dozen times per message, far from
 * contended).
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"
#include "common/xmalloc.h"

#define SERIES_MAX 512 /* per family: past it a new label set is counted as "other" */
#define N_BUCKETS  12

enum family_type { FT_COUNTER, FT_GAUGE, FT_HISTOGRAM };

struct family {
	const char *name, *help;
	enum family_type type;
	const char *labels[3];
};

static const struct family families[METRIC__COUNT] = {
    [METRIC_CONNECTIONS] = {"sealmail_connections_total",
                            "Connections accepted.",
                            FT_COUNTER,
                            {"protocol"}},
    [METRIC_TLS_HANDSHAKES] = {"sealmail_tls_handshakes_total",
                               "TLS handshakes by outcome (ok, failed, timeout).",
                               FT_COUNTER,
                               {"protocol", "outcome"}},
    [METRIC_LOGINS] = {"sealmail_logins_total",
                       "Authentication attempts by mechanism and outcome (ok, failed).",
                       FT_COUNTER,
                       {"protocol", "mechanism", "outcome"}},
    [METRIC_MESSAGES] = {"sealmail_messages_total",
                         "Messages accepted (SMTP 250), delivered to local mailboxes, "
                         "relayed, deferred and bounced.",
                         FT_COUNTER,
                         {"event"}},
    [METRIC_IMAP_COMMANDS] = {"sealmail_imap_commands_total",
                              "IMAP commands by name.",
                              FT_COUNTER,
                              {"command"}},
    [METRIC_STORE_COMMITS] = {"sealmail_store_commits_total",
                              "Store write transactions committed (each one fsync).",
                              FT_COUNTER,
                              {NULL}},
    [METRIC_STORE_COMMITTED_JOBS] = {"sealmail_store_committed_writes_total",
                                     "Writes (deliveries, flag changes, ...) carried by those "
                                     "commits: over commits, writes per fsync.",
                                     FT_COUNTER,
                                     {NULL}},
    [METRIC_STORE_COMMIT_SECONDS] = {"sealmail_store_commit_seconds",
                                     "Time to commit a store transaction, fsync included.",
                                     FT_HISTOGRAM,
                                     {NULL}},
    [METRIC_IMAP_IDLE] = {"sealmail_imap_idle_sessions",
                          "IMAP sessions in IDLE now.",
                          FT_GAUGE,
                          {NULL}},
    [METRIC_AUDIT_RECORDS] = {"sealmail_audit_records_total",
                              "Access audit records handed to the store (recorded), and "
                              "those it could not take, whose sessions were closed (refused).",
                              FT_COUNTER,
                              {"outcome"}},
    [METRIC_GATEWAY_SESSIONS] =
        {"sealmail_gateway_sessions_total",
         "Gateway sessions ended, by outcome (relayed: the backend "
         "was reached; backend_failed; not_relayed: the client left before).",
         FT_COUNTER,
         {"outcome"}},
    [METRIC_GATEWAY_BYTES] = {"sealmail_gateway_bytes_total",
                              "Plaintext bytes relayed by gateways, by direction "
                              "(to_backend, to_client).",
                              FT_COUNTER,
                              {"direction"}},
    [METRIC_GATEWAY_BACKEND_FAILURES] = {"sealmail_gateway_backend_connect_failures_total",
                                         "Gateway connections to the backend that failed.",
                                         FT_COUNTER,
                                         {NULL}},
};

static const double bucket_le[N_BUCKETS] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                            0.05,   0.1,   0.2,   0.5,   1,    2.5};

struct series {
	char *labels;                /* "a=\"x\",b=\"y\"" or "" */
	uint64_t value;              /* a gauge's is signed */
	uint64_t buckets[N_BUCKETS]; /* histograms: observations <= le (not cumulative) */
	double sum;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct series *series[METRIC__COUNT];
static size_t n_series[METRIC__COUNT];

void metrics_escape(struct buf *o, const char *v)
{
	for (const char *p = v; *p != '\0'; p++) {
		if (*p == '\\' || *p == '"')
			buf_append(o, "\\", 1);
		if (*p == '\n') {
			buf_append_str(o, "\\n");
			continue;
		}
		buf_append(o, p, 1);
	}
}

static char *label_string(const struct family *f, const char *const *labels)
{
	struct buf b;
	buf_init(&b, 4096);
	for (size_t i = 0; i < 3 && f->labels[i] != NULL; i++) {
		const char *v = labels != NULL && labels[i] != NULL ? labels[i] : "";
		buf_printf(&b, "%s%s=\"", i > 0 ? "," : "", f->labels[i]);
		metrics_escape(&b, v);
		buf_append(&b, "\"", 1);
	}
	char *s = xstrndup(b.data != NULL ? b.data : "", b.len);
	buf_free(&b);
	return s;
}

/* The series of id with this label string, made when new; under lock. */
static struct series *series_get(enum metric_id id, char *labels)
{
	for (size_t i = 0; i < n_series[id]; i++)
		if (strcmp(series[id][i].labels, labels) == 0) {
			free(labels);
			return &series[id][i];
		}
	if (n_series[id] >= SERIES_MAX) {
		free(labels);
		return NULL;
	}
	series[id] = xreallocarray(series[id], n_series[id] + 1, sizeof(*series[id]));
	struct series *s = &series[id][n_series[id]++];
	memset(s, 0, sizeof(*s));
	s->labels = labels;
	return s;
}

void metrics_add(enum metric_id id, uint64_t n, const char *const *labels)
{
	if ((unsigned)id >= METRIC__COUNT || families[id].type != FT_COUNTER)
		return;
	char *ls = label_string(&families[id], labels);
	pthread_mutex_lock(&lock);
	struct series *s = series_get(id, ls);
	if (s != NULL)
		s->value += n;
	pthread_mutex_unlock(&lock);
}

void metrics_inc(enum metric_id id, const char *l1, const char *l2, const char *l3)
{
	const char *labels[3] = {l1, l2, l3};
	metrics_add(id, 1, labels);
}

void metrics_gauge_add(enum metric_id id, int64_t delta)
{
	if ((unsigned)id >= METRIC__COUNT || families[id].type != FT_GAUGE)
		return;
	char *ls = label_string(&families[id], NULL);
	pthread_mutex_lock(&lock);
	struct series *s = series_get(id, ls);
	if (s != NULL)
		s->value = (uint64_t)((int64_t)s->value + delta);
	pthread_mutex_unlock(&lock);
}

void metrics_observe(enum metric_id id, double value)
{
	if ((unsigned)id >= METRIC__COUNT || families[id].type != FT_HISTOGRAM || isnan(value))
		return;
	char *ls = label_string(&families[id], NULL);
	pthread_mutex_lock(&lock);
	struct series *s = series_get(id, ls);
	if (s != NULL) {
		s->value++;
		s->sum += value;
		for (size_t i = 0; i < N_BUCKETS; i++)
			if (value <= bucket_le[i]) {
				s->buckets[i]++;
				break;
			}
	}
	pthread_mutex_unlock(&lock);
}

static void fmt_num(struct buf *o, double v)
{
	if (v == floor(v) && fabs(v) < 1e15)
		buf_printf(o, "%.0f", v);
	else
		buf_printf(o, "%.9g", v);
}

void metrics_fmt_value(struct buf *o, const char *name, const char *help, const char *type,
                       const char *labels, double value)
{
	if (help != NULL)
		buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	buf_append_str(o, name);
	if (labels != NULL && labels[0] != '\0')
		buf_printf(o, "{%s}", labels);
	buf_append(o, " ", 1);
	fmt_num(o, value);
	buf_append(o, "\n", 1);
}

static void fmt_histogram(struct buf *o, const struct family *f, const struct series *s)
{
	uint64_t cum = 0;
	const char *sep = s->labels[0] != '\0' ? "," : "";
	for (size_t i = 0; i < N_BUCKETS; i++) {
		cum += s->buckets[i];
		buf_printf(o, "%s_bucket{%s%sle=\"", f->name, s->labels, sep);
		fmt_num(o, bucket_le[i]);
		buf_printf(o, "\"} %llu\n", (unsigned long long)cum);
	}
	buf_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name, s->labels, sep,
	           (unsigned long long)s->value);
	buf_printf(o, "%s_sum%s%s%s ", f->name, s->labels[0] != '\0' ? "{" : "", s->labels,
	           s->labels[0] != '\0' ? "}" : "");
	fmt_num(o, s->sum);
	buf_printf(o, "\n%s_count%s%s%s %llu\n", f->name, s->labels[0] != '\0' ? "{" : "",
	           s->labels, s->labels[0] != '\0' ? "}" : "", (unsigned long long)s->value);
}

void metrics_format(struct buf *o)
{
	pthread_mutex_lock(&lock);
	for (size_t id = 0; id < METRIC__COUNT; id++) {
		const struct family *f = &families[id];
		if (n_series[id] == 0)
			continue;
		buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
		           f->type == FT_HISTOGRAM ? "histogram"
		           : f->type == FT_GAUGE   ? "gauge"
		                                   : "counter");
		for (size_t i = 0; i < n_series[id]; i++) {
			const struct series *s = &series[id][i];
			if (f->type == FT_HISTOGRAM) {
				fmt_histogram(o, f, s);
				continue;
			}
			metrics_fmt_value(o, f->name, NULL, NULL, s->labels,
			                  f->type == FT_GAUGE ? (double)(int64_t)s->value
			                                      : (double)s->value);
		}
	}
	pthread_mutex_unlock(&lock);
}

void metrics_reset(void)
{
	pthread_mutex_lock(&lock);
	for (size_t id = 0; id < METRIC__COUNT; id++) {
		for (size_t i = 0; i < n_series[id]; i++)
			free(series[id][i].labels);
		free(series[id]);
		series[id] = NULL;
		n_series[id] = 0;
	}
	pthread_mutex_unlock(&lock);
}
