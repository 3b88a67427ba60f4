/* sandbase_translate.h - SandBase (Claude-like, with quirks; backends.md §2) → north JSON.
 * Pure functions: no I/O, no clock (the caller passes "now"), no global state. Tested with
 * golden fixtures under tests/fixtures/sandbase/. Fidelity table: docs/fidelity-sandbase.md. */
#ifndef SG_SANDBASE_TRANSLATE_H
#define SG_SANDBASE_TRANSLATE_H

#include <jansson.h>
#include <stdint.h>

#include "error.h"
#include "mapping.h"

struct sg_sb_ctx {
	const char *backend; /* backend name: encoded into public ids, named in errors */
	int64_t now_us;      /* "now", for the stats of a running session */
};

/* When session s (borrowed) carries no embedded agent snapshot, returns 1 and sets *id
 * (borrowed) and *version (-1 when the session names none) for GET /v1/agents/{id}.
 * A snapshot is an embedded `agent` object with a string `name` or a `model`; the create
 * answer's {type, id, version} is only a reference. The id is `agent_id`, else the embedded
 * agent's id (object or bare string); the version `agent_version` (≥ 1), else the embedded
 * one. Returns 0 when s has a snapshot, names no agent, or is not an object. */
int sg_sb_session_agent_ref(const json_t *s, const char **id, int64_t *version);

/* A SandBase agent object (GET /v1/agents, /v1/agents/{id}; borrowed) → north Agent (new;
 * BetaManagedAgentsAgent) in exactly the SDK's shape: SandBase's own spellings mapped (skill
 * references and integer versions, bare-string models, …), documented defaults for missing
 * keys, its created_at (else updated_at), updated_at, archived_at and metadata, then the core's
 * normaliser (sg_north_full_agent, lenient), so tool configs carry `type` and tools, configs
 * or metadata pairs the SDK cannot express are dropped. Given to sg_sb_session_to_cma() as a
 * session's agent, the session's normaliser keeps only the snapshot's keys. NULL + 502 when it
 * is not an object, has no usable `id`, or no readable created_at or updated_at; 500 when out
 * of memory. */
json_t *sg_sb_agent_to_cma(const json_t *agent, const struct sg_sb_ctx *ctx, struct sg_error *err);

/* A SandBase session (borrowed) → north Session (new), or NULL + 502 on a wrong shape (id,
 * status outside the four north values, created_at, updated_at/archived_at, metadata,
 * environment_id; no agent id at all). Public id = sg_id_encode("sesn_", backend, "", id).
 * An embedded snapshot is mapped as sg_sb_agent_to_cma() maps one. agent is the north
 * SessionAgent to use when s has no embedded snapshot (borrowed and copied as is, so it must
 * come from sg_sb_agent_to_cma(); may be NULL: then a minimal agent is synthesised from
 * agent_id/agent_version and documented); an agent that is not an object is a 500. */
json_t *sg_sb_session_to_cma(const json_t *s, const json_t *agent, const struct sg_sb_ctx *ctx,
                             struct sg_error *err);

/* A run of SandBase events in backend order (borrowed; at most 100000) → north events (new
 * array), or NULL + 502 naming the backend and the event ("events[3] 'sevt_…': …"), 500 when
 * out of memory; never a partial answer. Each event, once reshaped, passes through the core's
 * normaliser (sg_north_event, lenient), so content blocks and payloads have exactly the SDK's
 * shapes: what it cannot express is dropped (a block, a key, or an event no other event
 * names), never failed on. The same input gives the same output, synthetic span ids
 * included. A synthesised span start is never older than the event emitted before it (north
 * lists oldest first). carry_in (borrowed, may be NULL or null) is the state at the
 * start of the run: unmatched tool uses (for tool results without tool_use_id and for
 * requires_action without event_ids) and the processed_at of the last event emitted;
 * *carry_out (carry_out may be NULL) receives the state at its end, {"pending": [[tool-use
 * event id, its type], …] oldest first, "at": µs since the epoch, absent until an event was
 * emitted} (a new reference; NULL on failure), so a walk over several backend pages links and
 * dates exactly as one pass would. It is bounded to fit in a page cursor: at most 32 entries
 * and 1024 bytes of ids, oldest forgotten first (under 2 KB as JSON). A carry_in this module
 * did not write is a 500. */
json_t *sg_sb_events_to_cma(const json_t *events, const json_t *carry_in, json_t **carry_out,
                            const struct sg_sb_ctx *ctx, struct sg_error *err);

/* ---- writes ---- *
 *
 * SandBase is Claude-like: a write is the north body passed on, with what SandBase refuses
 * refused first (400 invalid_request_error "backend 'NAME' (sandbase) …"). What SandBase's
 * runtime cannot run (user.tool_confirmation, user.custom_tool_result, user.define_outcome,
 * session_thread_id, …) is left to SandBase, whose 422 the core's error table makes a 400 with
 * SandBase's own words: the gateway does not freeze today's list of what SandBase supports. */

/* The body of POST /v1/sessions for a validated north create body (borrowed;
 * SessionCreateParams): agent, environment_id, title, metadata and initial_events as given.
 * New, or NULL + 400 for an agent_with_overrides (naming the overrides given), non-empty
 * resources or vault_ids, or a budget; 500 when out of memory. */
json_t *sg_sb_create_request(const json_t *body, const char *backend, struct sg_error *err);

/* The body of POST /v1/sessions/{id} for a validated north update body (borrowed;
 * SessionUpdateParams): title, metadata (a patch) and agent ({tools, mcp_servers}) as given; a
 * null budget (nothing to remove) and empty vault_ids are not sent. New, or NULL + 400 for a
 * budget or non-empty vault_ids; 500 when out of memory. */
json_t *sg_sb_update_request(const json_t *body, const char *backend, struct sg_error *err);

/* SandBase's answer to POST /v1/sessions/{id}/events ({data: SessionEvent[]}, borrowed) →
 * {data: north events} (new): the events as sg_sb_events_to_cma() reads a run of them on its
 * own; an absent or null data is an empty list. NULL + 502 when the body is not an object, data
 * is not an array, or an event is unreadable; 500 when out of memory. */
json_t *sg_sb_sent_to_cma(const json_t *body, const struct sg_sb_ctx *ctx, struct sg_error *err);

/* The read_error hook of the sandbase mapping (mapping.h): the core's reader
 * (sg_berror_read), plus what SandBase's dialect says beyond it: a 502
 * delivery_outcome_unknown means a create may have made a session, whose id it names in
 * `session_id`; the core's table then tells the client to look before retrying. Pure. */
void sg_sb_read_error(long status, const char *body, size_t len, struct sg_backend_said *out);

#endif
