/* agentscope_stream.h - AgentScope's live stream (GET /sessions/{id}/stream) → north events.
 *
 * The stream sends one AgentEvent per SSE data frame (REPLY_START, TEXT_BLOCK_DELTA, …). This
 * translator is fed those frames in order and hands back the north events each one completes,
 * with the SAME ids and payloads that sg_as_messages_to_events() (agentscope_events.h) gives
 * the same events once AgentScope has persisted the reply, so a client can join a live stream
 * and a history listing by id. It rebuilds each block as AgentScope's server persists it from
 * these very frames, and lets the history translator turn it into events. The rules, and the
 * few places where a stream cannot agree with the history, are in docs/fidelity-agentscope.md
 * ("Live stream").
 *
 * Pure and stateful: no I/O, no clock, no globals; one value per upstream stream, used by one
 * thread at a time. Its memory is bounded (SG_AS_STREAM_MAX_BYTES of held text and input,
 * SG_AS_STREAM_MAX_BLOCKS held blocks) and does not grow with the number of replies: a reply
 * is forgotten once it ended, a parked one kept until it is resumed or superseded. */
#ifndef SG_AGENTSCOPE_STREAM_H
#define SG_AGENTSCOPE_STREAM_H

#include <jansson.h>
#include <stdint.h>

#include "agentscope_events.h"
#include "error.h"

/* Bytes of text, tool input, tool output and hints held for the reply in progress; beyond it a
 * frame is refused with a 502 (AgentScope's own replay log holds at most 1000 frames). */
#define SG_AS_STREAM_MAX_BYTES (8u << 20)
/* Blocks of the reply in progress whose events are not out yet. */
#define SG_AS_STREAM_MAX_BLOCKS 4096

struct sg_as_stream;

/* A stream for one session. ctx: as for sg_as_messages_to_events() on the same session (same
 * backend, session_key and hint_mode, or the ids will not match); its strings are copied,
 * ctx->tz is borrowed and must outlive the stream; session_running and max_events are not
 * used. since_us: frames whose created_at is before it (AgentScope replays the run in progress
 * on connect) build state, but the events they complete are not output; 0 outputs everything.
 * NULL when out of memory. */
struct sg_as_stream *sg_as_stream_new(const struct sg_as_events_ctx *ctx, int64_t since_us);

/* Before the first frame: tells the stream the session's last persisted message (a Msg,
 * borrowed), as GET /sessions/{id}/messages ends. AgentScope trims its replay once a run is
 * persisted, so a stream that connects while a reply is parked on tool calls never sees the
 * frames before the park; primed with that reply, it resumes it as one that saw them would
 * (the usage of the model calls before the park included, the pending calls known). Anything
 * but an assistant Msg parked on calls (asking or submitted, no finished_at) is ignored.
 * Returns 0, or -1 with a 500 when out of memory. */
int sg_as_stream_prime(struct sg_as_stream *s, const json_t *msg, struct sg_error *err);

/* Feeds one frame (a parsed JSON object, borrowed) and appends to `out` (a JSON array) the
 * north events it completes, in the history's order, each already through the core's
 * normaliser (strict). Returns 0, or -1 with err: a 502 naming the backend for a frame of a
 * known type whose fields have the wrong types, or one beyond the bounds above; 500 when out of
 * memory. Frames of unknown types are ignored. After -1 the stream may be fed on (the frame
 * was not applied, or only in part) but is best freed. */
int sg_as_stream_feed(struct sg_as_stream *s, const json_t *frame, json_t *out,
                      struct sg_error *err);

void sg_as_stream_free(struct sg_as_stream *s);

#endif
