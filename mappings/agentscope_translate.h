/* agentscope_translate.h - AgentScope agent service → north JSON. Pure functions: no I/O,
 * no clock (the caller passes "now"), no global state. Tested with golden fixtures under
 * tests/fixtures/agentscope/. The fidelity table is docs/fidelity-agentscope.md. */
#ifndef SG_AGENTSCOPE_TRANSLATE_H
#define SG_AGENTSCOPE_TRANSLATE_H

#include <jansson.h>
#include <stdint.h>

#include "error.h"

struct sg_tz;

/* backend and tz must not be NULL (a NULL ctx, backend or tz is a 500, the caller's bug). */
struct sg_as_ctx {
	const char *backend;    /* backend name, encoded into public ids, named in errors */
	const struct sg_tz *tz; /* zone of the backend's naive timestamps */
	int64_t now_us;         /* "now", for the stats of a running session */
};

/* Indexes the body of GET /agent/ ({agents: AgentView[], total}) by agent id.
 * Returns a new object {agent_id: AgentView}, or NULL with a 502 api_error naming the
 * backend when the body has the wrong shape (not an object, no `agents` array, more than
 * 100000 agents, an item that is not an object or lacks a non-empty string `id`).
 * The values are new references to the body's own AgentViews (shared, not copied: the
 * index outlives the body; treat both as read-only). Of duplicate ids the first wins. */
json_t *sg_as_agents_index(const json_t *agents_body, const struct sg_as_ctx *ctx,
                           struct sg_error *err);

/* Translates one SessionView (v2.0.1 or newer shape; borrowed) into a north Session.
 * `agent` is the session's AgentView from GET /agent/ (borrowed), or NULL when the agent
 * is not visible. Returns a new reference, or NULL with a 502 api_error "backend 'NAME': …"
 * when the view is not an object, session.id / session.agent_id are not non-empty
 * NUL-free strings, they are too long for a public id, or session.created_at (or a
 * present, non-null updated_at) is not a readable timestamp; 500 when out of memory.
 * The rules are in docs/fidelity-agentscope.md. */
json_t *sg_as_session_to_cma(const json_t *view, const json_t *agent, const struct sg_as_ctx *ctx,
                             struct sg_error *err);

/* Translates the body of GET /sessions/?agent_id=… ({sessions: SessionView[], total};
 * borrowed), keeping the backend's order. agents_index is the result of sg_as_agents_index
 * (borrowed, may be NULL). Appends every north Session to `out` (an array, borrowed,
 * which gains new references). Returns 0, or -1 with a 502 api_error when the body is not
 * an object, has no `sessions` array, holds more than 100000 sessions, or any item fails
 * as in sg_as_session_to_cma (the message then locates it: "sessions[3]: …"). A listing
 * is translated whole or not at all: on failure `out` is left as it was. */
int sg_as_listing_to_cma(const json_t *listing, const json_t *agents_index,
                         const struct sg_as_ctx *ctx, json_t *out, struct sg_error *err);

#endif
