/* upstream.h - asynchronous HTTP client: one libcurl multi handle per worker, driven by
 * that worker's event_base (curl's hiperfifo pattern). Nothing here blocks: DNS goes
 * through libcurl's threaded resolver, sockets through the event loop. */
#ifndef SG_UPSTREAM_H
#define SG_UPSTREAM_H

#include <stddef.h>

struct event_base;
struct sg_upstream;
struct sg_fetch;

/* Why a fetch produced no usable HTTP response. */
enum sg_fetch_fail {
	SG_FETCH_OK = 0,
	SG_FETCH_CONNECT,   /* could not resolve or connect */
	SG_FETCH_TIMEOUT,   /* no complete answer within timeout_ms */
	SG_FETCH_TOO_LARGE, /* body larger than max_bytes */
	SG_FETCH_ERROR,     /* any other transport failure (reset, bad HTTP, …) */
};

struct sg_fetch_req {
	const char *method;          /* "GET" (default when NULL), "POST", … */
	const char *url;
	const char *const *headers;  /* NULL-terminated "Name: value" lines, may be NULL */
	const char *body;            /* request body, may be NULL */
	size_t body_len;
	long timeout_ms;
	long connect_timeout_ms;
	size_t max_bytes;
	int retries;                 /* extra attempts after SG_FETCH_CONNECT (GET only) */
};

struct sg_fetch_res {
	enum sg_fetch_fail fail;
	long status;                 /* HTTP status when fail == SG_FETCH_OK */
	const char *content_type;    /* may be NULL */
	const char *body;            /* NUL-terminated; valid only during the callback */
	size_t len;
	const char *errmsg;          /* transport error text when fail != SG_FETCH_OK */
	int attempts;
	long elapsed_ms;
};

/* Called exactly once per started fetch unless it was cancelled; res is borrowed. */
typedef void (*sg_fetch_cb)(const struct sg_fetch_res *res, void *arg);

struct sg_upstream *sg_upstream_new(struct event_base *base, long max_host_connections);
/* Cancels every outstanding fetch (their callbacks are not called). */
void sg_upstream_free(struct sg_upstream *up);

/* Starts a fetch. Returns a handle for sg_fetch_cancel, or NULL when the request could not
 * even be set up (out of memory, bad URL); then cb is never called. */
struct sg_fetch *sg_fetch_start(struct sg_upstream *up, const struct sg_fetch_req *req,
				sg_fetch_cb cb, void *arg);
/* Aborts a fetch whose callback has not run yet; the callback will not run. */
void sg_fetch_cancel(struct sg_fetch *f);

/* Number of transfers in flight, for shutdown and metrics. */
size_t sg_upstream_active(const struct sg_upstream *up);

#endif
