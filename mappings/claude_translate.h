/* claude_translate.h - Claude-native upstreams (the north dialect itself: a migration target
 * or Anthropic) → north JSON with the gateway's guarantees: public ids re-encoded to carry
 * the route, every required key present, keys that do not apply absent. Pure functions; the
 * normalising itself is the core's (src/north.h, strict), this is the dialect layer around it.
 * Tested with golden fixtures under tests/fixtures/claude/. Fidelity: docs/fidelity-claude.md. */
#ifndef SG_CLAUDE_TRANSLATE_H
#define SG_CLAUDE_TRANSLATE_H

#include <jansson.h>

#include "error.h"
#include "mapping.h"

struct sg_cl_ctx {
	const char *backend; /* backend name: encoded into public ids, named in errors */
};

/* An upstream Session (borrowed) → north Session (new), id re-encoded as
 * sg_id_encode("sesn_", backend, "", upstream id); missing required keys filled with their
 * documented empty values; NULL + 502 when id/created_at are unusable. */
json_t *sg_cl_session_to_cma(const json_t *s, const struct sg_cl_ctx *ctx, struct sg_error *err);

/* Upstream events (borrowed array) → north events (new array): only id, type, processed_at
 * and the type's own keys; session.status_idle always with stop_reason and stop_details.
 * NULL + 502 on a wrong shape. */
json_t *sg_cl_events_to_cma(const json_t *events, const struct sg_cl_ctx *ctx,
                            struct sg_error *err);

/* An upstream agent (borrowed; BetaManagedAgentsAgent, from GET /v1/agents or
 * /v1/agents/{id}) → north Agent (new), held strictly to the SDK's type by the core's normaliser
 * (sg_north_full_agent). Agent ids are not re-encoded: they carry no route, and sessions name
 * their agent with the same upstream ids. NULL + 502 on a wrong shape. */
json_t *sg_cl_agent_to_cma(const json_t *agent, const struct sg_cl_ctx *ctx, struct sg_error *err);

/* The upstream's answer to POST /v1/sessions/{id}/events ({data?: Event[]}, borrowed) → {data:
 * north events} (new), the events as sg_cl_events_to_cma() gives them; an absent or null data
 * is an empty list. NULL + 502 when the body is not an object or data is not an array. */
json_t *sg_cl_sent_to_cma(const json_t *body, const struct sg_cl_ctx *ctx, struct sg_error *err);

/* The read_error hook of the claude mapping (mapping.h): the core's reader (sg_berror_read),
 * except that only the north error envelope ({"error": {…, "message"}}, the outer type not
 * required) counts as the upstream's own body, so that a proxy's 404 page or another server's
 * {"detail"} is not taken for a missing session. Pure. */
void sg_cl_read_error(long status, const char *body, size_t len, struct sg_backend_said *out);

#endif
