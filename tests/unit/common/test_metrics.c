/*
 * common/metrics: the Prometheus text format of counters, gauges and histograms, label
 * escaping, and the bound on series per family.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "common/metrics.h"

static char *format(void)
{
	struct buf o;
	buf_init(&o, 1 << 20);
	metrics_format(&o);
	char *s = strndup(o.data != NULL ? o.data : "", o.len);
	buf_free(&o);
	return s;
}

TestSuite(metrics, .init = metrics_reset, .fini = metrics_reset);

Test(metrics, counters_with_labels)
{
	metrics_inc(METRIC_LOGINS, "imap", "PLAIN", "ok");
	metrics_inc(METRIC_LOGINS, "imap", "PLAIN", "ok");
	metrics_inc(METRIC_LOGINS, "pop3", "SCRAM-SHA-256", "failed");
	const char *lv[] = {"delivered"};
	metrics_add(METRIC_MESSAGES, 5, lv);
	char *s = format();
	cr_assert(strstr(s, "# HELP sealmail_logins_total ") != NULL, "%s", s);
	cr_assert(strstr(s, "# TYPE sealmail_logins_total counter\n") != NULL, "%s", s);
	cr_assert(strstr(s, "sealmail_logins_total{protocol=\"imap\",mechanism=\"PLAIN\","
	                    "outcome=\"ok\"} 2\n") != NULL,
	          "%s", s);
	cr_assert(strstr(s, "outcome=\"failed\"} 1\n") != NULL, "%s", s);
	cr_assert(strstr(s, "sealmail_messages_total{event=\"delivered\"} 5\n") != NULL, "%s", s);
	/* A family without series is not written. */
	cr_assert_null(strstr(s, "sealmail_imap_commands_total"));
	free(s);
}

Test(metrics, label_values_escaped)
{
	metrics_inc(METRIC_IMAP_COMMANDS, "a\"b\\c\nd", NULL, NULL);
	char *s = format();
	cr_assert(strstr(s, "{command=\"a\\\"b\\\\c\\nd\"} 1\n") != NULL, "%s", s);
	free(s);
}

Test(metrics, gauge_goes_both_ways)
{
	metrics_gauge_add(METRIC_IMAP_IDLE, 1);
	metrics_gauge_add(METRIC_IMAP_IDLE, 1);
	metrics_gauge_add(METRIC_IMAP_IDLE, -1);
	char *s = format();
	cr_assert(strstr(s, "# TYPE sealmail_imap_idle_sessions gauge\n"
	                    "sealmail_imap_idle_sessions 1\n") != NULL,
	          "%s", s);
	free(s);
}

Test(metrics, histogram_buckets_are_cumulative)
{
	metrics_observe(METRIC_STORE_COMMIT_SECONDS, 0.0004);
	metrics_observe(METRIC_STORE_COMMIT_SECONDS, 0.003);
	metrics_observe(METRIC_STORE_COMMIT_SECONDS, 30);
	char *s = format();
	cr_assert(strstr(s, "# TYPE sealmail_store_commit_seconds histogram\n") != NULL, "%s", s);
	cr_assert(strstr(s, "sealmail_store_commit_seconds_bucket{le=\"0.0005\"} 1\n") != NULL,
	          "%s", s);
	cr_assert(strstr(s, "sealmail_store_commit_seconds_bucket{le=\"0.002\"} 1\n") != NULL, "%s",
	          s);
	cr_assert(strstr(s, "sealmail_store_commit_seconds_bucket{le=\"0.005\"} 2\n") != NULL, "%s",
	          s);
	cr_assert(strstr(s, "sealmail_store_commit_seconds_bucket{le=\"2.5\"} 2\n") != NULL, "%s",
	          s);
	cr_assert(strstr(s, "sealmail_store_commit_seconds_bucket{le=\"+Inf\"} 3\n") != NULL, "%s",
	          s);
	cr_assert(strstr(s, "sealmail_store_commit_seconds_count 3\n") != NULL, "%s", s);
	cr_assert(strstr(s, "sealmail_store_commit_seconds_sum 30.0034\n") != NULL, "%s", s);
	free(s);
}

Test(metrics, series_are_bounded)
{
	char name[32];
	for (int i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "C%d", i);
		metrics_inc(METRIC_IMAP_COMMANDS, name, NULL, NULL);
	}
	char *s = format();
	size_t n = 0;
	for (const char *p = s; (p = strstr(p, "sealmail_imap_commands_total{")) != NULL; p++)
		n++;
	cr_assert_eq(n, 512);
	free(s);
}

Test(metrics, value_lines)
{
	struct buf o;
	buf_init(&o, 4096);
	metrics_fmt_value(&o, "x_open", "Open.", "gauge", "protocol=\"imap\"", 3);
	metrics_fmt_value(&o, "x_open", NULL, "gauge", "protocol=\"pop3\"", 0.25);
	buf_append(&o, "", 1);
	cr_assert_str_eq(o.data, "# HELP x_open Open.\n# TYPE x_open gauge\n"
	                         "x_open{protocol=\"imap\"} 3\nx_open{protocol=\"pop3\"} 0.25\n");
	buf_free(&o);
}
