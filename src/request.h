/* request.h - one north request in flight, from routing to the last byte of its answer.
 *
 * A request is answered once, either whole (sg_req_reply, sg_req_error) or in pieces
 * (sg_req_stream_start, _send, _end: libevent's chunked reply). Whatever works for it (calls
 * and walks, sg_req_call/sg_req_walk, and handler state, sg_req_set_state) belongs to it and
 * is freed with it, which is how upstream work is cancelled: when the answer is complete,
 * when the request deadline fires, when the client goes away, and for streams when the
 * worker drains. No function here blocks.
 *
 * Lifetime: the struct sg_req is freed as soon as the gateway is done answering (the reply is
 * handed to evhttp, or the stream ended) or the client has left; evhttp may still be writing
 * the reply out, and the worker counts the request as in flight until it has (so a drain
 * waits for the bytes, not only for the handler). */
#ifndef SG_REQUEST_H
#define SG_REQUEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "call.h"
#include "error.h"
#include "walk.h"

struct evhttp_request;
struct event_base;
struct sg_config;
struct sg_cache;
struct sg_idem;
struct sg_key;
struct sg_metrics_shard;
struct sg_backend;
struct sg_streams;
struct sg_ready;
struct sg_req;
struct sg_route;
struct sg_route_def;
struct sg_upstream;

/* What a worker lends its requests; server.c owns it, request.c keeps its counters. */
struct sg_req_host {
	const struct sg_config *cfg;       /* the worker's current generation (a reference: a reload
	                                    * replaces it on the worker's loop); each request takes
	                                    * its own reference to it when it starts */
	const struct sg_route_def *routes; /* the API (routes.h); NULL = sg_routes */
	struct event_base *base;
	struct sg_upstream *up;
	struct sg_upstream *stream_up; /* live streams' upstream: each holds its connection for
	                                * as long as it lives, so they do not count against the
	                                * backends' max_connections (NULL: up) */
	struct sg_cache *cache;        /* the worker's own (JSON: e.g. AgentScope's agent index) */
	struct sg_cache *held_cache;   /* the process's held listings and walk snapshots (shared) */
	struct sg_idem *idem;       /* Idempotency-Key answers, shared by the process's workers */
	struct sg_streams *streams; /* the worker's live event streams (stream.h) */
	struct sg_metrics_shard *metrics; /* the worker's counters (metrics.h), or NULL */
	struct sg_ready *ready;           /* the process's readiness (ready.h), may be NULL */
	/* request.c's bookkeeping */
	size_t inflight;     /* requests evhttp has not finished with */
	struct sg_req *live; /* requests the gateway is still answering */
	int draining;
	/* Called when inflight reaches 0 while draining. */
	void (*drained)(struct sg_req_host *host);
};

/* evhttp's general callback (arg: the struct sg_req_host). */
void sg_req_handle(struct evhttp_request *ev, void *host);

/* Drain: from now on, once no request is in flight, host->drained runs. Open streams are
 * ended now (their drain hook first, see sg_req_on_drain); whole answers are waited for. */
void sg_req_drain(struct sg_req_host *host);

/* Ends every request still held, before the worker's evhttp and upstream are freed (after a
 * drain's grace ran out): their work is cancelled and nothing is answered. */
void sg_req_abort_all(struct sg_req_host *host);

/* ---- for handlers -------------------------------------------------------------------- */

typedef void (*sg_handler)(struct sg_req *r);

const struct sg_config *sg_req_config(const struct sg_req *r);
const char *sg_req_id(const struct sg_req *r);
/* "GET", "POST", … */
const char *sg_req_method(const struct sg_req *r);
/* The authenticated key (NULL on public routes). */
const struct sg_key *sg_req_key(const struct sg_req *r);
/* The decoded path parameter ({id}) of the route, or NULL. */
const char *sg_req_param(const struct sg_req *r);
/* The raw query string, or NULL. */
const char *sg_req_query(const struct sg_req *r);
/* The request body (not NUL-terminated; evhttp bounded it by limits.max_body_bytes). */
const char *sg_req_body(const struct sg_req *r, size_t *len);
/* A request header (borrowed), or NULL. */
const char *sg_req_header(const struct sg_req *r, const char *name);
/* Wall-clock time the request arrived, µs since the epoch. */
int64_t sg_req_now_us(const struct sg_req *r);
/* The worker serving r. */
struct sg_req_host *sg_req_host(const struct sg_req *r);
/* Says that r is served by backend be (its access log line and its metrics name it; a request
 * served by several says "multi"). Calls and walks started with sg_req_call and sg_req_walk
 * note theirs; a handler notes the backend of an answer it serves without one (held). */
void sg_req_note_backend(struct sg_req *r, const struct sg_backend *be);

/* Honours an Idempotency-Key header on a write whose validated body is body (len bytes).
 * Returns 0 to go on (no key, or a new one: the answer will be kept), or -1 after answering:
 * the first answer again (a repeat with the same body, marked Idempotent-Replayed: true), a
 * 409 (the first is still running: retry; or the key was used with another body), a 400 (a
 * malformed key) or a 503 (no room to keep it). */
int sg_req_idempotency(struct sg_req *r, const char *body, size_t len);

/* Handler state that lives as long as the request; free_fn runs when it ends. */
void sg_req_set_state(struct sg_req *r, void *state, void (*free_fn)(void *));
void *sg_req_state(const struct sg_req *r);

/* A call of `kind` on route rt working for r: done runs later with done_arg r. Returns NULL
 * when out of memory (nothing answered). The call is freed with the request. */
struct sg_call *sg_req_call(struct sg_req *r, enum sg_call_kind kind, const struct sg_route *rt,
                            sg_call_done_cb done);
/* A walk (walk.h) working for r; spec->env is filled in here. NULL when out of memory. */
struct sg_walk *sg_req_walk(struct sg_req *r, struct sg_walk_spec *spec, sg_walk_done_cb done);
/* The env a call working for r gets (for code that builds calls itself). */
struct sg_call_env sg_req_call_env(const struct sg_req *r);

/* Answers with `body` (stolen; NULL = out of memory, answered 500), JSON. Ends the request. */
void sg_req_reply(struct sg_req *r, int status, json_t *body);
/* Answers with the north error envelope (x-should-retry per sg_error_default_retry). */
/* The same with the body already rendered: text (taken; NULL: out of memory) is len bytes
 * of compact JSON. */
void sg_req_reply_text(struct sg_req *r, int status, char *text, size_t len);
void sg_req_error(struct sg_req *r, const struct sg_error *e);
void sg_req_fail(struct sg_req *r, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Streams. Starts a 200 answer sent in pieces (chunked) with content_type. Returns 0, or -1
 * when the client is already gone (the request has then ended and r is freed). */
int sg_req_stream_start(struct sg_req *r, const char *content_type);
/* Queues data for the client. Returns 0, or -1 when the request has ended (the client left,
 * or it read so slowly that more than limits.max_stream_backlog_bytes waited for it: the
 * stream is then ended, since holding more is how a slow reader exhausts memory); r is then
 * freed and must not be used. */
int sg_req_stream_send(struct sg_req *r, const char *data, size_t len);
/* Queues data for the client whatever its backlog (a stream's last words, e.g. the error
 * that says why it is being cut). Returns 0, or -1 when the request has ended (r freed). */
int sg_req_stream_send_last(struct sg_req *r, const char *data, size_t len);
/* Bytes queued for the client and not yet written to its socket. */
size_t sg_req_stream_backlog(const struct sg_req *r);
/* Ends the stream (and the request; r is freed). */
void sg_req_stream_end(struct sg_req *r);
/* What a stream does when the worker drains, instead of being ended at once (e.g. a last
 * frame); it must end the stream before it returns. */
void sg_req_on_drain(struct sg_req *r, void (*fn)(struct sg_req *r));

#endif
