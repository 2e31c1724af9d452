#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_min = LOGL_INFO;
static int log_env_checked;

void log_set_level(enum log_level min)
{
	log_min = min;
	log_env_checked = 1;
}

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_vevent(enum log_level level, const char *fmt, va_list ap)
{
	if (!log_env_checked) {
		const char *d = getenv("SEALMAIL_DEBUG");
		if (d != NULL && *d == '1')
			log_min = LOGL_DEBUG;
		log_env_checked = 1;
	}
	if (level < log_min)
		return;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
	                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	                 tm.tm_sec, ts.tv_nsec / 1000000, level_names[level]);
	if (n < 0)
		return;
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

void log_event(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vevent(level, fmt, ap);
	va_end(ap);
}

char *log_escape(char *out, size_t outlen, const void *in, size_t inlen)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = in;
	size_t o = 0;
	if (outlen == 0)
		return out;
	for (size_t i = 0; i < inlen; i++) {
		unsigned char c = p[i];
		int plain = c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '=';
		size_t need = plain ? 1 : 4;
		if (o + need + 4 > outlen) {
			if (o + 4 <= outlen) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}
