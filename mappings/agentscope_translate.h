/* agentscope_translate.h - AgentScope agent service → north JSON. Pure functions: no I/O,
 * no clock (the caller passes "now"), no global state. Tested with golden fixtures under
 * tests/fixtures/agentscope/. The fidelity table is docs/fidelity-agentscope.md. */
#ifndef SG_AGENTSCOPE_TRANSLATE_H
#define SG_AGENTSCOPE_TRANSLATE_H

#include <jansson.h>
#include <stdint.h>

#include "error.h"

struct sg_tz;

struct sg_as_ctx {
	const char *backend;     /* backend name, encoded into public ids */
	const struct sg_tz *tz;  /* zone of the backend's naive timestamps */
	int64_t now_us;          /* "now", for the stats of a running session */
};

/* Indexes the body of GET /agent/ ({agents: AgentView[], total}) by agent id.
 * Returns a new object {agent_id: AgentView} (values are new references), or NULL
 * with a 502 api_error naming the backend when the body has the wrong shape. */
json_t *sg_as_agents_index(const json_t *agents_body, const struct sg_as_ctx *ctx,
			   struct sg_error *err);

/* Translates one SessionView into a north Session. `agent` is the session's AgentView from
 * GET /agent/ (borrowed), or NULL when the agent is not visible. Returns a new reference,
 * or NULL with a 502 api_error when a field the mapping needs (session.id, created_at) is
 * missing or unreadable. */
json_t *sg_as_session_to_cma(const json_t *view, const json_t *agent, const struct sg_as_ctx *ctx,
			     struct sg_error *err);

/* Translates the body of GET /sessions/?agent_id=… ({sessions: SessionView[], total}).
 * agents_index is the result of sg_as_agents_index (borrowed, may be NULL). Appends every
 * north Session to `out` (an array). Returns 0, or -1 with a 502 api_error when the body
 * or any item has the wrong shape: a listing is translated whole or not at all. */
int sg_as_listing_to_cma(const json_t *listing, const json_t *agents_index,
			 const struct sg_as_ctx *ctx, json_t *out, struct sg_error *err);

#endif
