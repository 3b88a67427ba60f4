/* log.c - see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Written by the main thread (at start and at each reload), read by every worker. */
static atomic_int log_level = SG_LOG_INFO;
static int log_json; /* written once by main before the workers start */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void sg_log_set_level(int level)
{
	log_level = level;
}

void sg_log_set_json(int json)
{
	log_json = json;
}

int sg_log_enabled(int level)
{
	return level <= log_level;
}

int sg_log_json(void)
{
	return log_json;
}

void sg_log_time(long long us, char *out, size_t len)
{
	time_t s = (time_t)(us / 1000000);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us / 1000 % 1000));
}

static void put(char *out, size_t len, size_t *pos, const char *s, size_t n)
{
	if (*pos + n < len) {
		memcpy(out + *pos, s, n);
		*pos += n;
		out[*pos] = '\0';
	}
}

void sg_log_json_str(char *out, size_t len, size_t *pos, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	if (!s) {
		put(out, len, pos, "null", 4);
		return;
	}
	/* keep room for the closing quote whatever happens */
	if (*pos + 2 >= len)
		return;
	put(out, len - 1, pos, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			put(out, len - 1, pos, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			put(out, len - 1, pos, esc, 6);
		} else if (c >= 0x80) {
			put(out, len - 1, pos, "?", 1);
		} else {
			put(out, len - 1, pos, (const char *)&c, 1);
		}
	}
	put(out, len, pos, "\"", 1);
}

void sg_log_line(const char *line)
{
	/* One call: stdio locks the stream, so lines from workers never interleave. */
	fprintf(stderr, "%s\n", line);
}

void sg_log(int level, const char *fmt, ...)
{
	char msg[2048], line[4096], when[32];
	struct timespec ts;
	va_list ap;
	size_t pos = 0;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	sg_log_time((long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, when, sizeof(when));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!log_json) {
		fprintf(stderr, "%s %s %s\n", when, level_names[level & 3], msg);
		return;
	}
	line[0] = '\0';
	put(line, sizeof(line), &pos, "{\"time\":\"", 9);
	put(line, sizeof(line), &pos, when, strlen(when));
	put(line, sizeof(line), &pos, "\",\"level\":\"", 11);
	put(line, sizeof(line), &pos, level_names[level & 3], strlen(level_names[level & 3]));
	put(line, sizeof(line), &pos, "\",\"msg\":", 8);
	sg_log_json_str(line, sizeof(line) - 1, &pos, msg);
	put(line, sizeof(line), &pos, "}", 1);
	sg_log_line(line);
}
