/* flow.h - a scripted loopback backend and a runner for one mapping call, for testing a mapping
 * module's thin I/O part without the fake backends: which requests it sends, in what order,
 * with which bodies and headers, and how the call ends.
 *
 * The backend answers "METHOD URI" (the URI exactly as sent, query included) from routes the
 * test gives; a request with no route is answered 418 and recorded like the others, so a test
 * sees it. The module runs for real: its init() with the given options, its callbacks on a
 * libevent loop with the gateway's upstream (libcurl multi). One flow at a time per process. */
#ifndef SG_FLOW_H
#define SG_FLOW_H

#include <jansson.h>
#include <stdint.h>

#include "call.h"
#include "error.h"
#include "idcodec.h"
#include "mapping.h"

struct sg_flow;

/* A backend named `backend` of mapping m, initialised with options (JSON text, may be NULL);
 * init must succeed (Check aborts otherwise). */
struct sg_flow *sg_flow_new(const struct sg_mapping *m, const char *backend, const char *options);
void sg_flow_free(struct sg_flow *f);

/* The answer to "METHOD URI" from now on: status and body (text, sent as application/json),
 * replacing any earlier one. */
void sg_flow_route(struct sg_flow *f, const char *method, const char *uri, int status,
                   const char *body);

/* The answer to "GET URI" from now on: status, then the body as a live stream sends it (Content-
 * Type text/event-stream, chunked): each of pieces (NULL-terminated) as one chunk, a few ms
 * apart. The body then ends, unless hold is set: the answer then stays open until the client
 * leaves (or the flow is freed), as a stream that never closes does. */
void sg_flow_route_stream(struct sg_flow *f, const char *uri, int status, const char *const *pieces,
                          int hold);

/* Runs one call to its end (10 s at most): kind, the principal's identity (JSON text), the
 * public id of a call on one session or agent (NULL for none), the north body (JSON text or
 * NULL), the agent version (-1: latest). Forgets the previous run's results. */
void sg_flow_run(struct sg_flow *f, enum sg_call_kind kind, const char *identity,
                 const struct sg_pubid *id, const char *body, int64_t version);

/* Runs a stream call (SG_CALL_STREAM_EVENTS) on session id to its end (10 s at most), with the
 * core's input: since (µs) and resume (NULL on a first connect). Its sink records every event
 * emitted and, when leave_after > 0, leaves at the leave_after-th event as a departed client
 * does (the call is freed: error, object and marked are then NULL). */
void sg_flow_run_stream(struct sg_flow *f, const struct sg_pubid *id, int64_t since_us,
                        const char *resume, size_t leave_after);
/* After a stream run: the events emitted (copies, in order; borrowed), the call's mark as each
 * was emitted (string or null, same length), the mark at the end (NULL: none, or the client
 * left), how many times the opened hook ran, and 1 when the client left. */
const json_t *sg_flow_emitted(const struct sg_flow *f);
const json_t *sg_flow_marks(const struct sg_flow *f);
const char *sg_flow_marked(const struct sg_flow *f);
int sg_flow_opened(const struct sg_flow *f);
int sg_flow_left(const struct sg_flow *f);

/* After a run. seen: every request the backend received, in order, as [{method, uri, body
 * (parsed JSON, the raw text when it is not JSON, null when empty), user (X-User-ID or null),
 * type (Content-Type or null), headers (every header, names lowercased)}] (borrowed). error: the
 * call's error, or NULL. object and items: what it ended with (borrowed, may be NULL). */
const json_t *sg_flow_seen(const struct sg_flow *f);
const struct sg_error *sg_flow_error(const struct sg_flow *f);
json_t *sg_flow_object(const struct sg_flow *f);
json_t *sg_flow_items(const struct sg_flow *f);

/* The public session id for (backend, scope, native), decoded: for sg_flow_run. */
struct sg_pubid sg_flow_id(const char *backend, const char *scope, const char *native);

#endif
