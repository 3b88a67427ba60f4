/* log.h - one line per event on stderr, with a level and the worker it came from.
 *
 * Callers never pass secrets: keys, Authorization headers and backend credentials are not
 * logged anywhere; requests are identified by request id and principal name. */
#ifndef SG_LOG_H
#define SG_LOG_H

enum { SG_LOG_ERROR, SG_LOG_WARN, SG_LOG_INFO, SG_LOG_DEBUG };

/* Set once by main before any thread starts. */
void sg_log_set_level(int level);
int sg_log_enabled(int level);
void sg_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define sg_error_log(...) sg_log(SG_LOG_ERROR, __VA_ARGS__)
#define sg_warn(...) sg_log(SG_LOG_WARN, __VA_ARGS__)
#define sg_info(...) sg_log(SG_LOG_INFO, __VA_ARGS__)
#define sg_debug(...) sg_log(SG_LOG_DEBUG, __VA_ARGS__)

#endif
