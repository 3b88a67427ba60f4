/* stream.h - the live event stream, GET /v1/sessions/{id}/events/stream, shared per worker.
 *
 * The clients of one session (same backend, same identity there) on one worker share one
 * upstream stream, a "hub": the module's stream_events call translates each upstream frame
 * into north events once, the hub renders each as one SSE message (`id:`, `event:`, `data:`)
 * once and queues the bytes for every client. A client's north 200 waits for the upstream's
 * own 2xx, so an unknown session is a plain 404, not an empty stream.
 *
 * What a client gets: only events that happen after it connected (the module filters the
 * backend's replay by the hub's connect time; a later client joins live), except that a
 * Last-Event-ID still in the hub's recent frames (streams.replay_events) gets exactly the
 * frames after it, and a module that resumes natively (SG_CAP_STREAM_RESUME) serves any other
 * Last-Event-ID on a stream of the client's own. Heartbeat comments keep idle connections
 * alive (streams.heartbeat_ms); a stream ends cleanly after streams.max_lifetime_ms (the SDK
 * reconnects); a client whose unread bytes pass limits.max_stream_backlog_bytes gets an
 * `event: error` and is cut. An upstream stream that drops is reconnected with backoff and
 * de-duplicated by event id; lost for longer than streams.reconnect_ms, its clients get
 * `event: error` and the end. session.deleted (from the backend, from a delete through any
 * worker of this process, or a 404 on reconnect) and session.status_terminated end the
 * session's streams after that event. The last client leaving closes the upstream at once.
 * Limits: streams.max_per_key (per process) and streams.max_per_worker, 429 past them.
 * Nothing here blocks; everything but sg_streams_deleted() runs on the worker's loop. */
#ifndef SG_STREAM_H
#define SG_STREAM_H

#include <jansson.h>
#include <stddef.h>

struct sg_config;
struct sg_req;
struct sg_req_host;
struct sg_streams;
struct sg_streams_shared;

/* What the workers of one process share: the way to tell every worker that a session is
 * gone (the per-key counts live in the keys' states, config.h). NULL when out of memory. */
struct sg_streams_shared *sg_streams_shared_new(void);
void sg_streams_shared_free(struct sg_streams_shared *sh);

/* A worker's streams, on host's loop; host->streams should point to it. NULL when out of
 * memory. Free it after its loop has stopped (anything still open is dropped unanswered). */
struct sg_streams *sg_streams_new(struct sg_streams_shared *sh, struct sg_req_host *host);
void sg_streams_free(struct sg_streams *reg);

/* Drain: every stream ends now, cleanly (the terminating chunk, so the SDK reconnects
 * elsewhere); clients still waiting for their upstream get 503. */
void sg_streams_drain(struct sg_streams *reg);

/* The session `sid` (public id) was deleted through the gateway (by a request on reg's
 * worker): every worker's streams of it get session.deleted and end. */
void sg_streams_deleted(struct sg_streams *reg, const char *sid);

/* Events (a JSON array of north events, borrowed) were accepted by the session `sid` through
 * the gateway: every worker's streams of it get them (a backend that echoes them on its own
 * stream too is de-duplicated by event id). */
void sg_streams_publish(struct sg_streams *reg, const char *sid, const json_t *events);

/* North streams open (or waiting for their upstream), and upstream streams held. */
size_t sg_streams_open(const struct sg_streams *reg);
size_t sg_streams_upstreams(const struct sg_streams *reg);

/* The route's handler. */
void sg_api_stream_events(struct sg_req *r);

#endif
