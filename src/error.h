/* error.h - the north error model: an HTTP status, a CMA error type and a message.
 *
 * Every failure inside the gateway is carried as a struct sg_error until it is
 * rendered as {"type":"error","error":{"type":…,"message":…},"request_id":…}. */
#ifndef SG_ERROR_H
#define SG_ERROR_H

#include <stdarg.h>

#define SG_ERRMSG_MAX 512

struct sg_error {
	int status;         /* HTTP status, 0 = no error */
	const char *type;   /* static string: "invalid_request_error", … */
	int should_retry;   /* -1 = send no x-should-retry header, 0 = false, 1 = true */
	long retry_after_s; /* > 0: a retry-after header (seconds) */
	char message[SG_ERRMSG_MAX];
};

/* Set *e (if e is non-NULL). Returns -1 so callers can `return sg_error_set(…)`. */
int sg_error_set(struct sg_error *e, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int sg_error_vset(struct sg_error *e, int status, const char *type, const char *fmt, va_list ap);

/* Shorthands for the common statuses (type strings per claude-dialect.md §6.2). */
#define sg_err_invalid(e, ...) sg_error_set((e), 400, "invalid_request_error", __VA_ARGS__)
#define sg_err_auth(e, ...) sg_error_set((e), 401, "authentication_error", __VA_ARGS__)
#define sg_err_not_found(e, ...) sg_error_set((e), 404, "not_found_error", __VA_ARGS__)
#define sg_err_internal(e, ...) sg_error_set((e), 500, "api_error", __VA_ARGS__)
#define sg_err_bad_gateway(e, ...) sg_error_set((e), 502, "api_error", __VA_ARGS__)
#define sg_err_timeout(e, ...) sg_error_set((e), 504, "timeout_error", __VA_ARGS__)

/* The x-should-retry decision documented in docs/compatibility.md, for errors that did not
 * set it: 503, 504 and 529 say true, everything else false. */
void sg_error_default_retry(struct sg_error *e);

#endif
