/* agentscope_events.h - AgentScope message log → north session events.
 *
 * Pure translation: no I/O, no clock, no global state; safe to call from any worker thread
 * with its own ctx. Tested with golden fixtures under tests/fixtures/agentscope/events/.
 * The rules and what they lose are in docs/fidelity-agentscope.md. Event ids are minted with
 * sg_event_id (src/idcodec.h): SG_EVENT_ID_LEN characters. */
#ifndef SG_AGENTSCOPE_EVENTS_H
#define SG_AGENTSCOPE_EVENTS_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

struct sg_tz;

/* Bounds on one translation; beyond them the call fails with a 502 rather than building an
 * unbounded answer. AgentScope pages /messages by 200, so these are far above real logs. */
#define SG_AS_EVENTS_MAX_MESSAGES 100000
#define SG_AS_EVENTS_MAX_EVENTS 1000000

enum sg_as_hint_mode {
	SG_AS_HINT_DROP = 0,         /* hint blocks produce no event (default) */
	SG_AS_HINT_USER_MESSAGE = 1, /* each hint becomes a user.message "[from <source>] …" */
};

/* Everything the translation needs besides the log. All pointers are borrowed and only
 * read during the call; any of the strings may be NULL (treated as ""). */
struct sg_as_events_ctx {
	const char *backend;     /* backend name: named in errors, mixed into event ids */
	const char *session_key; /* stable per-session string mixed into event ids,
	                          * e.g. "<agent_id>/<session_id>" */
	const struct sg_tz *tz;  /* zone of the naive timestamps; NULL = UTC */
	const char *agent_name;  /* AgentRecord.data.name, to infer a missing role; may be NULL */
	const char *model;       /* chat_model_config.model; may be NULL. Not emitted: SDK 1.10.0
	                          * span events carry no model key (kept for the live bridge) */
	int session_running;     /* the backend says a run holds the session now */
	int hint_mode;           /* enum sg_as_hint_mode */
	size_t max_events;       /* lower event cap; 0 = SG_AS_EVENTS_MAX_EVENTS */
};

/* Translates the /messages log (Msg[], oldest first; borrowed) into north events in log
 * order. The same input and ctx give byte-identical output, ids included, on every call.
 * The answer may hold references to string values of `messages` (texts, base64 data)
 * instead of copies; neither side may modify them afterwards.
 * Returns a new array, or NULL with a 502 api_error naming the backend (and the message)
 * when the log has the wrong shape or exceeds the bounds above, or a 500 when out of memory;
 * never a partial answer. */
json_t *sg_as_messages_to_events(const json_t *messages, const struct sg_as_events_ctx *ctx,
                                 struct sg_error *err);

/* Where each tool call of the log (Msg[], oldest first; borrowed) sits, under the id of the
 * tool-use event sg_as_messages_to_events() gives it for the same log and ctx: a new object
 * {event id: [message index, block index]}. *tail receives the index of the log's tail, the last
 * message that produces events (the only one that can be parked), or SIZE_MAX when none does.
 * NULL + err exactly when sg_as_messages_to_events() fails on the log. */
json_t *sg_as_tool_use_index(const json_t *messages, const struct sg_as_events_ctx *ctx,
                             size_t *tail, struct sg_error *err);

/* For a build without the message log, whose events come from the record's state.context: when
 * earlier turns were compacted into state.summary, the agent.thread_context_compacted event that
 * says so, dated at the record's created_at, so the history does not pretend to start where the
 * context does. `record` is the SessionRecord (borrowed). Its id is sg_event_id over
 * "<backend>\x1f<session_key>\x1fcompacted". Returns 0 with *out the event (new), or NULL when
 * there is nothing to say (no summary, or a created_at that does not read); -1 with a 500 when
 * out of memory. */
int sg_as_compacted_event(const json_t *record, const struct sg_as_events_ctx *ctx, json_t **out,
                          struct sg_error *err);

#endif
