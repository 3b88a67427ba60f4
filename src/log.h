/* log.h - one line per event on stderr, with a level and the worker it came from.
 *
 * Callers never pass secrets: keys, Authorization headers and backend credentials are not
 * logged anywhere; requests are identified by request id and principal name.
 *
 * Two formats (log.format): text, "TIME LEVEL message"; or json, one object per line,
 * {"time":…,"level":…,"msg":…} (the access log writes its own objects, accesslog.h). */
#ifndef SG_LOG_H
#define SG_LOG_H

#include <stddef.h>

enum { SG_LOG_ERROR, SG_LOG_WARN, SG_LOG_INFO, SG_LOG_DEBUG };

/* Set once by main before any thread starts. */
void sg_log_set_level(int level);
void sg_log_set_json(int json);
int sg_log_enabled(int level);
int sg_log_json(void);
void sg_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes one whole line (a newline is added) to stderr as it is. */
void sg_log_line(const char *line);

/* "2026-01-02T03:04:05.678Z" of us (µs since the epoch) into out (≥ 25 bytes). */
void sg_log_time(long long us, char *out, size_t len);
/* Appends s as a JSON string (quotes included) to out at *pos (out holds len bytes; what does
 * not fit is cut, the string still closed): " \ and control bytes are escaped, bytes outside
 * ASCII become '?', so the result is always one valid JSON string on one line. NULL: null. */
void sg_log_json_str(char *out, size_t len, size_t *pos, const char *s);

#define sg_error_log(...) sg_log(SG_LOG_ERROR, __VA_ARGS__)
#define sg_warn(...) sg_log(SG_LOG_WARN, __VA_ARGS__)
#define sg_info(...) sg_log(SG_LOG_INFO, __VA_ARGS__)
#define sg_debug(...) sg_log(SG_LOG_DEBUG, __VA_ARGS__)

#endif
