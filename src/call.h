/* call.h - the toolkit a mapping module works with: one struct sg_call is the work one
 * north request asks of one backend.
 *
 * A module's request callback starts fetches with sg_call_get() or sg_call_request() (any
 * method, with a body) or sg_call_stream() (an answer read as it arrives); each fetch
 * callback turns the body into north JSON with pure functions and, when everything it needs
 * has arrived, ends the call once: sg_call_items() (a list), sg_call_object() (one object),
 * sg_call_page() (one backend page) or sg_call_fail(). A stream call hands the core each
 * north event as it is translated (sg_call_emit()) before it ends. Fan-out/join is just
 * several fetches and a counter (sg_call_pending()). Ending is deferred to the event loop,
 * so the call stays valid until the callback that ended it returns; results of fetches that
 * complete after the call ended are dropped and their callbacks never run. Freeing a call
 * cancels its fetches: that is how a client's departure reaches the backend. */
#ifndef SG_CALL_H
#define SG_CALL_H

#include <jansson.h>
#include <stdint.h>

#include "error.h"
#include "held.h"
#include "idcodec.h"
#include "query.h"
#include "upstream.h"

struct sg_backend;
struct sg_call;

/* What a call asks of its module: one kind per slot of struct sg_mapping. */
enum sg_call_kind {
	SG_CALL_LIST_SESSIONS,
	SG_CALL_GET_SESSION,
	SG_CALL_LIST_EVENTS,
	SG_CALL_SESSIONS_PAGE, /* native paging: one backend page of sessions */
	SG_CALL_EVENTS_PAGE,   /* native paging: one backend page of events */
	SG_CALL_CREATE_SESSION,
	SG_CALL_UPDATE_SESSION,
	SG_CALL_ARCHIVE_SESSION,
	SG_CALL_DELETE_SESSION,
	SG_CALL_SEND_EVENTS,
	SG_CALL_LIST_AGENTS,
	SG_CALL_GET_AGENT,
	SG_CALL_STREAM_EVENTS,
};

/* Called with the call and the result (borrowed, valid during the callback only). */
typedef void (*sg_call_fetch_cb)(struct sg_call *call, const struct sg_fetch_res *res, void *arg);
/* A streamed answer's pieces (see sg_fetch_req.on_chunk): first the status with data NULL,
 * then, for a 2xx answer, each piece as it arrives. Not called once the call has ended. */
typedef void (*sg_call_chunk_cb)(struct sg_call *call, long status, const char *data, size_t len,
                                 void *arg);

enum sg_call_kind sg_call_kind(const struct sg_call *call);
const struct sg_backend *sg_call_backend(const struct sg_call *call);
/* The principal's identity object on this backend (borrowed). */
const json_t *sg_call_identity(const struct sg_call *call);
/* The principal's name (for logs; never a secret). */
const char *sg_call_principal(const struct sg_call *call);
/* The request id, for logs. */
const char *sg_call_request_id(const struct sg_call *call);
/* The parsed north query of a list call (NULL for other kinds). */
const struct sg_session_query *sg_call_session_query(const struct sg_call *call);
const struct sg_event_query *sg_call_event_query(const struct sg_call *call);
/* The decoded public id of a call on one session or agent (NULL for a list). */
const struct sg_pubid *sg_call_pubid(const struct sg_call *call);
/* The north request body of a write, parsed and validated by the core (borrowed), or NULL. */
const json_t *sg_call_body(const struct sg_call *call);
/* get_agent: the agent version asked for (?version=N), or -1 for the latest. */
int64_t sg_call_agent_version(const struct sg_call *call);
/* Wall-clock time the north request arrived, µs since the epoch. */
int64_t sg_call_now_us(const struct sg_call *call);

/* Native paging input: the backend cursor to start from (NULL = first page) and the
 * module's carry state at that point (borrowed, may be NULL). */
const char *sg_call_page_cursor(const struct sg_call *call);
const json_t *sg_call_page_carry(const struct sg_call *call);

/* The worker's cache (see cache.h): a new reference or NULL; put takes a reference. */
json_t *sg_call_cache_get(const struct sg_call *call, const char *key);
void sg_call_cache_put(const struct sg_call *call, const char *key, json_t *value, int64_t ttl_ms);

/* A session's token usage that is costly to compute (AgentScope sums it over the whole message
 * log), remembered for every worker in the process's shared cache (cache.max_bytes bounds it
 * with everything else there, least recently used first). The module's key must change
 * whenever the usage can (AgentScope: the session's updated_at) and name whose view it is
 * (the identity); the core adds the backend. get returns 1 and fills out, or 0. */
struct sg_usage_memo {
	int64_t input, output, cache_read, cache_create;
	int partial; /* summed over part of the log only */
};
int sg_call_usage_get(const struct sg_call *call, const char *key, struct sg_usage_memo *out);
/* 1 when the client asked for a fresh read (Cache-Control: no-cache): a module that would answer
 * from a memo computes anew instead (and refreshes the memo). */
int sg_call_wants_fresh(const struct sg_call *call);
void sg_call_usage_put(const struct sg_call *call, const char *key, const struct sg_usage_memo *u,
                       int64_t ttl_ms);

/* Module state that lives as long as the call; freed with free_fn when the call ends. */
void sg_call_set_state(struct sg_call *call, void *state, void (*free_fn)(void *));
void *sg_call_state(const struct sg_call *call);

/* GET backend URL + path_query with the backend's limits. headers: NULL-terminated "Name:
 * value" lines or NULL. Returns 0, or -1 after failing the call (500) when the fetch could
 * not be started. */
int sg_call_get(struct sg_call *call, const char *path_query, const char *const *headers,
                sg_call_fetch_cb cb, void *arg);
/* The same with any method and an optional body (copied; len bytes). A request other than
 * GET/HEAD is sent once, never retried: sg_call_json() then tells an unknown outcome from a
 * refused one. */
int sg_call_request(struct sg_call *call, const char *method, const char *path_query,
                    const char *const *headers, const char *body, size_t len, sg_call_fetch_cb cb,
                    void *arg);
/* A GET whose answer is read as it arrives (a live stream): on_chunk gets its pieces, and cb
 * runs once at the end (body "" for a 2xx answer, the collected error body otherwise). No
 * total timeout: the backend's stream_idle_timeout_ms bounds the silence between pieces.
 * Returns 0, or -1 after failing the call. */
int sg_call_stream(struct sg_call *call, const char *path_query, const char *const *headers,
                   sg_call_chunk_cb on_chunk, sg_call_fetch_cb cb, void *arg);
/* The usual stream_events fetch: a GET read as Server-Sent Events (src/sse.h). Each message
 * goes to on_msg(call, msg, arg) as it is complete; on_msg returns 0 to go on, or nonzero once
 * the call has failed or was freed (sg_call_emit returned -1): nothing of the call is touched
 * after that. A message or line larger than the backend's max_response_bytes (at most
 * SG_CALL_SSE_MAX) fails the call with a 502; the body's clean end ends it
 * (sg_call_object(NULL)); an error answer fails it with its north error (sg_call_json).
 * Returns 0, or -1 after failing the call. */
#define SG_CALL_SSE_MAX (8u << 20)
struct sg_sse_msg;
typedef int (*sg_call_sse_cb)(struct sg_call *call, const struct sg_sse_msg *m, void *arg);
int sg_call_sse(struct sg_call *call, const char *path_query, const char *const *headers,
                sg_call_sse_cb on_msg, void *arg);
/* sg_call_request with a JSON body: body (borrowed) dumped compactly, or none when NULL.
 * Returns 0, or -1 after failing the call. */
int sg_call_send_json(struct sg_call *call, const char *method, const char *path_query,
                      const char *const *headers, const json_t *body, sg_call_fetch_cb cb,
                      void *arg);
/* "/v1/sessions/{native id, escaped}<suffix>" of the call's session into out: the path of a
 * backend that speaks the Claude-like dialect. Returns 0, or -1 after failing the call (404). */
int sg_call_session_path(struct sg_call *call, const char *suffix, char *out, size_t len);
/* "/v1/agents/{native id, escaped}[?version=N]" of a get_agent call into out. Returns 0, or -1
 * after failing the call (404). */
int sg_call_agent_path(struct sg_call *call, char *out, size_t len);

/* A stream call's input from the core. since: the time (µs since the epoch) from which the
 * stream is live: an event the backend replays from before it is not emitted (a module that
 * must read a replay to build state reads it all and emits only events that complete at or
 * after since); 0 emits the replay too. resume: where the previous connection of the same
 * stream stood (the module's own sg_call_stream_mark() token), or a client's Last-Event-ID
 * handed to a module that resumes natively; NULL on a first connect. */
int64_t sg_call_stream_since(const struct sg_call *call);
const char *sg_call_stream_resume(const struct sg_call *call);
/* Remembers where the upstream stream stands (token copied; a backend cursor, an event id):
 * the core hands it to the next connection as sg_call_stream_resume() after a drop. */
void sg_call_stream_mark(struct sg_call *call, const char *token);

/* Stops or resumes reading every stream of the call (flow control toward a slow client). */
void sg_call_pause(struct sg_call *call, int pause);
/* Fetches started by this call and not finished yet. */
unsigned sg_call_pending(const struct sg_call *call);
/* 1 once sg_call_items or sg_call_fail has been called. */
int sg_call_ended(const struct sg_call *call);

/* The usual reading of a backend answer: returns a new reference to the parsed JSON body
 * of a 2xx answer. Anything else fails the call with the north error it deserves and
 * returns NULL: unreachable → 502, timeout → 504, too large → 502, not JSON → 502, another
 * status → the backend error table (src/berror.h: the mapping's read_error, then one table
 * for every backend); every message names the backend. For a request that changes state
 * (not GET/HEAD), a failure after the request left for the backend (a timeout, a dropped
 * connection, a garbled or proxy-made answer, a 500/502/504) leaves its outcome unknown: the
 * error says so and carries x-should-retry: false, so that the SDK does not send the write a
 * second time. */
json_t *sg_call_json(struct sg_call *call, const struct sg_fetch_res *res);
/* The same checks without the parse, for a module that reads a large 2xx body's text itself
 * (jsonscan.h): 0 for a 2xx, or -1 after failing the call as sg_call_json would. */
int sg_call_answer_ok(struct sg_call *call, const struct sg_fetch_res *res);

/* Ends the call with its result: `items` (stolen) is an array of north objects. */
void sg_call_items(struct sg_call *call, json_t *items);
/* Items one at a time, for a module that translates a large listing piece by piece: add each
 * north object (stolen) in order, then end the call with sg_call_items_added. When the core
 * asked for a held listing (sg_call_collect_held, before the call starts), each item goes
 * straight into it (rendered at once with seal) and never sits in a JSON array; otherwise the
 * result is the array, as for sg_call_items. add returns 0, or -1 after failing the call (the
 * module must stop). */
int sg_call_add_item(struct sg_call *call, json_t *item);
void sg_call_items_added(struct sg_call *call);
int sg_call_collect_held(struct sg_call *call, enum sg_held_kind kind, int seal);
/* Runs fn(call) from the loop once it has served what is waiting (its sockets polled first):
 * how a module works through a large answer in slices without holding the loop. Not after the
 * call ended; freeing the call cancels it. 0, or -1 after failing the call. */
int sg_call_later(struct sg_call *call, void (*fn)(struct sg_call *call));
/* The result is a moving picture (a running session's log): the core must not hold it for
 * the backend's freshness window. */
void sg_call_set_volatile(struct sg_call *call);
int sg_call_result_volatile(const struct sg_call *call);
/* After done: the held listing the items went to, or NULL (none asked for, none made, or
 * the call failed). */
struct sg_held *sg_call_result_held(const struct sg_call *call);
/* Ends the call with one north object (stolen; NULL for a stream that ended cleanly). */
void sg_call_object(struct sg_call *call, json_t *obj);
/* A stream call's next north event (borrowed): handed to the core's sink at once. Returns 0,
 * or -1 when the consumer is gone: the call is then over and freed as this returns, so the
 * module must return at once without touching it (or anything it owns) again. */
int sg_call_emit(struct sg_call *call, const json_t *event);
/* Ends a native page call: items (stolen) as for sg_call_items, the backend's cursor for
 * the next page (copied; NULL when this was the last page) and the carry state at the
 * page's end (stolen, may be NULL). */
void sg_call_page(struct sg_call *call, json_t *items, const char *next, json_t *carry);

/* Ends the call with a north error. Further ends are ignored. */
void sg_call_fail(struct sg_call *call, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void sg_call_fail_with(struct sg_call *call, const struct sg_error *err);

/* Percent-encodes s for a URL query value or path segment into out. Returns the length,
 * or -1 when out is too small. */
int sg_url_escape(const char *s, char *out, size_t outlen);

/* Appends "?key=value" or "&key=value" to the NUL-terminated URL in buf, value
 * percent-encoded, key as given (already encoded). Returns 0, or -1 when it does not fit
 * (buf is then unchanged). */
int sg_url_add_param(char *buf, size_t len, const char *key, const char *value);

/* The north time bounds of q as RFC 3339 UTC strings, for passing filters upstream:
 * fills out[i] ("" when unset) for gt, gte, lt, lte. */
struct sg_time_range;
void sg_time_range_strings(const struct sg_time_range *r, char out[4][40]);
/* Appends every set bound of r in the SDK's spelling (created_at%5Bgte%5D=…). Returns 0, or
 * -1 when it does not fit. */
int sg_url_add_time_range(char *buf, size_t len, const struct sg_time_range *r);

/* ---- for the core (server.c) ---- */

struct sg_mapping;
/* 1 when module m has the callback a call of kind k needs. */
int sg_mapping_can(const struct sg_mapping *m, enum sg_call_kind k);

struct sg_cache;
struct sg_metrics_shard;

struct sg_call_env {
	struct sg_upstream *upstream;
	struct sg_cache *cache;
	struct sg_cache *shared; /* the process's shared cache (usage memos), or NULL */
	struct event_base *base;
	const char *request_id;
	const char *principal;
	int64_t now_us;
	int no_cache; /* the client asked for a fresh read: cache lookups miss (puts still
	               * refresh the cache for the next reader) */
	struct sg_metrics_shard *metrics; /* the worker's metrics (metrics.h), or NULL */
	int64_t *upstream_us;             /* the request's upstream time, summed here, or NULL */
};

typedef void (*sg_call_done_cb)(struct sg_call *call, void *arg);

struct sg_call *sg_call_new(enum sg_call_kind kind, const struct sg_call_env *env,
                            const struct sg_backend *be, const json_t *identity,
                            sg_call_done_cb done, void *done_arg);
void sg_call_set_session_query(struct sg_call *call, const struct sg_session_query *q);
void sg_call_set_event_query(struct sg_call *call, const struct sg_event_query *q);
void sg_call_set_pubid(struct sg_call *call, const struct sg_pubid *id);
/* The north body of a write (borrowed; must outlive the call). */
void sg_call_set_body(struct sg_call *call, const json_t *body);
void sg_call_set_agent_version(struct sg_call *call, int64_t version);
/* Where a stream call's events go: sink(call, event, arg) returns 0, or -1 when the consumer
 * is gone; a sink may free the call (sg_call_free() is then deferred until sg_call_emit()
 * returns -1). */
typedef int (*sg_call_sink_cb)(struct sg_call *call, const json_t *event, void *arg);
void sg_call_set_sink(struct sg_call *call, sg_call_sink_cb sink, void *arg);
/* A stream call's input (see sg_call_stream_since/_resume; resume copied, may be NULL), and
 * opened(call, sink arg), run once when the call's first stream fetch gets a 2xx head (before
 * the module sees it). Returns 0, or -1 when out of memory. */
int sg_call_set_stream_input(struct sg_call *call, int64_t since_us, const char *resume,
                             void (*opened)(struct sg_call *call, void *arg));
/* The module's last sg_call_stream_mark() token (borrowed), or NULL. */
const char *sg_call_stream_marked(const struct sg_call *call);
/* Copies cursor; carry is borrowed and must outlive the call. Returns 0, or -1 when out of
 * memory (the input is then unset: the call must not start). */
int sg_call_set_page_input(struct sg_call *call, const char *cursor, const json_t *carry);
/* Starts the module's work. done runs later from the event loop, once. */
void sg_call_start(struct sg_call *call);
/* After done: the items (borrowed) or the error; for page calls also the next cursor
 * (borrowed, NULL at the end) and the carry (borrowed, may be NULL). */
json_t *sg_call_result(const struct sg_call *call);
/* After done: the object of sg_call_object() (borrowed, may be NULL). */
json_t *sg_call_result_object(const struct sg_call *call);
const char *sg_call_result_next(const struct sg_call *call);
json_t *sg_call_result_carry(const struct sg_call *call);
const struct sg_error *sg_call_error(const struct sg_call *call);
/* Cancels outstanding fetches and frees the call; done will not run. */
void sg_call_free(struct sg_call *call);

#endif
