/* upstream.h - asynchronous HTTP client: one libcurl multi handle per worker, driven by
 * that worker's event_base (curl's hiperfifo pattern). Nothing here blocks: DNS goes
 * through libcurl's threaded resolver, sockets through the event loop. */
#ifndef SG_UPSTREAM_H
#define SG_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

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
	SG_FETCH_BUDGET,    /* this upstream's bytes held for answers reached its budget */
};

struct sg_fetch_req {
	const char *method; /* "GET" (default when NULL), "POST", … */
	const char *url;
	const char *const *headers; /* NULL-terminated "Name: value" lines, may be NULL */
	const char *body;           /* request body (copied), may be NULL */
	size_t body_len;
	long timeout_ms;      /* whole exchange; 0 = none (streams use idle_timeout_ms) */
	long idle_timeout_ms; /* longest silence while the answer arrives, 0 = none; a
	                       * fetch paused with sg_fetch_pause() is never idle */
	long connect_timeout_ms;
	size_t max_bytes; /* a collected body larger than this fails (TOO_LARGE); a
	                   * streamed 2xx body is not collected and not bounded */
	int retries;      /* extra attempts after SG_FETCH_CONNECT, GET/HEAD only: a
	                   * request that changes state is never sent twice */
	/* Streaming (may be NULL): called with the status once the answer's headers are in
	 * (data NULL, len 0), then, for a 2xx answer only, with each piece of the body as it
	 * arrives, in order. Called from the event loop, never from inside libcurl, so it may
	 * start, pause or cancel fetches, this one included. A non-2xx body is collected as
	 * usual and handed to the final callback. */
	void (*on_chunk)(long status, const char *data, size_t len, void *arg);
	/* Coalescing (may be NULL): a GET without body or on_chunk that names a tag shares one
	 * transfer with every other such GET in flight on this upstream with the same tag, URL,
	 * headers and limits: one request reaches the backend and every caller gets its answer
	 * (the same bytes). The tag says what else must match, e.g. the backend's write
	 * generation, so a read that follows a write never joins a fetch started before it. */
	const char *coalesce;
};

struct sg_fetch_res {
	enum sg_fetch_fail fail;
	long status;              /* HTTP status when fail == SG_FETCH_OK */
	const char *content_type; /* may be NULL */
	const char *body;         /* NUL-terminated; valid only during the callback; "" for a
	                           * streamed 2xx body (it went to on_chunk) */
	size_t len;
	const char *errmsg; /* transport error text when fail != SG_FETCH_OK */
	long retry_after_s; /* the answer's Retry-After in seconds (0: none) */
	int attempts;
	long elapsed_ms;
	int64_t elapsed_us; /* the same in µs (metrics) */
	int sent;           /* 1 when request bytes left for the backend in the last
	                     * attempt: a failure then leaves a write's outcome unknown;
	                     * 0 means the backend never saw it (e.g. no connection) */
};

/* Called exactly once per started fetch unless it was cancelled; res is borrowed. */
typedef void (*sg_fetch_cb)(const struct sg_fetch_res *res, void *arg);

struct sg_upstream *sg_upstream_new(struct event_base *base, long max_host_connections);
/* Bounds the bytes all collected answers of this upstream may hold at once (0: no bound).
 * A fetch whose answer would take more ends with SG_FETCH_BUDGET. */
void sg_upstream_set_budget(struct sg_upstream *up, size_t bytes);
/* Cancels every outstanding fetch (their callbacks are not called). */
void sg_upstream_free(struct sg_upstream *up);

/* Starts a fetch. Returns a handle for sg_fetch_cancel, or NULL when the request could not
 * even be set up (out of memory, bad URL); then cb is never called. */
struct sg_fetch *sg_fetch_start(struct sg_upstream *up, const struct sg_fetch_req *req,
                                sg_fetch_cb cb, void *arg);
/* Aborts a fetch whose callback has not run yet; neither callback will run again. Safe from
 * inside the fetch's own on_chunk. */
void sg_fetch_cancel(struct sg_fetch *f);
/* Stops (pause 1) or resumes (pause 0) reading a streamed answer: the consumer's flow
 * control, so a slow reader downstream bounds what is held here. libcurl keeps at most one
 * receive buffer meanwhile; the idle timeout does not run while paused. */
void sg_fetch_pause(struct sg_fetch *f, int pause);

/* Number of transfers in flight, for shutdown and metrics. */
size_t sg_upstream_active(const struct sg_upstream *up);
/* Fetches that joined a transfer already in flight instead of starting their own. */
unsigned long sg_upstream_coalesced(const struct sg_upstream *up);

#endif
