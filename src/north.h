/* north.h - the north dialect's own shapes, and one normaliser that rebuilds any Claude-like
 * JSON into exactly them: the SessionAgent, Session and event types of @anthropic-ai/sdk
 * 1.10.0, as const tables in north.c. Keys the SDK does not declare are dropped, required
 * keys take their documented empty values, values newer than the SDK degrade to the nearest
 * one it allows (rules: docs/fidelity-claude.md, "Normalisation rules").
 *
 * Dialect-independent: a mapping module translates its backend's dialect, then passes what it
 * built (or, for a Claude-native upstream, what it received) through here, so that nothing
 * outside the SDK's types reaches a client. Pure: no I/O, no clock, no state.
 *
 * Two ways to hand a value over. The plain functions borrow their input and never change it;
 * the output owns all its values (deep copies), so the caller may edit it: for JSON the module
 * received (a Claude-native upstream's answer, SandBase's events, which share containers with
 * the backend body). The _take functions steal their input, a value the module has just built
 * for this purpose, and normalise it in place: no copy is made of what is already right, which
 * matters on the paths that translate whole listings. What is stolen must be the caller's alone
 * down to its containers (no object or array in it referenced from anywhere else, since they
 * are edited); strings and numbers in it may be shared, they are never changed. The input is
 * consumed on success and on failure alike.
 *
 * Every function names `backend` in its error messages ("backend 'NAME': <where>.tools[0]
 * <problem>"), `where` being the value's path as the caller wants it read ("session",
 * "events[3]", "session 'sess_1': agent"). A NULL backend is the caller's bug: 500. Out of
 * memory: 500. Never a partial answer. */
#ifndef SG_NORTH_H
#define SG_NORTH_H

#include <jansson.h>

#include "error.h"

/* Flags. Strict (0): a value of the wrong JSON type, a required key that is missing with no
 * empty value, or a timestamp that does not parse is a 502 (an upstream that speaks the
 * dialect never sends one, so it is broken). SG_NORTH_LENIENT: such a value is treated like one
 * newer than the SDK: dropped from an array, absent when optional, null when nullable, and
 * when required its parent degrades in turn. For objects a module built from a dialect that is
 * only Claude-like, where a malformed part should cost that part, not the answer. */
#define SG_NORTH_LENIENT 1u

/* What sg_north_event() did with an event. */
enum { SG_NORTH_KEPT = 0, SG_NORTH_DROPPED = 1 };

/* A SessionAgent (borrowed: an object; `type` may be absent) → the SDK's SessionAgent (new):
 * execution_identity defaults to the service account, empty lists to [], description and
 * system to null, multiagent to null; tools, tool configs (typed by `name` when `type` is
 * absent), skills and MCP servers of kinds the SDK does not know are dropped. NULL + 502 when
 * the agent itself cannot be expressed (missing id, name, model or version; an unknown
 * execution identity). */
json_t *sg_north_agent(const json_t *in, const char *backend, const char *where, unsigned flags,
                       struct sg_error *err);
/* The same for an agent the caller built (stolen, see above); returns it, normalised. */
json_t *sg_north_agent_take(json_t *in, const char *backend, const char *where, unsigned flags,
                            struct sg_error *err);

/* An agent resource (borrowed: an object; `type` may be absent) → the SDK's
 * BetaManagedAgentsAgent (new), as agents.list and agents.retrieve answer it: what
 * sg_north_agent() does for a snapshot, plus archived_at (null when absent), created_at
 * (required), updated_at (absent → created_at), metadata ({} when absent) and a multiagent
 * roster of agent references ({id, type, version}). NULL + 502 when the agent cannot be
 * expressed (missing id, name, model, version or created_at; an unknown execution identity). */
json_t *sg_north_full_agent(const json_t *in, const char *backend, const char *where,
                            unsigned flags, struct sg_error *err);
/* The same for an agent the caller built (stolen, see above); returns it, normalised. */
json_t *sg_north_full_agent_take(json_t *in, const char *backend, const char *where, unsigned flags,
                                 struct sg_error *err);

/* A Session (borrowed) → the SDK's Session (new), its `id` = id (copied; NULL leaves the key
 * out for the caller to set: a public id carries the route, which only the caller knows). The
 * input's own `id` is not read. updated_at absent → created_at. NULL + 502 when it is not an
 * object, a required key has no value and no empty value, or a required part is newer than
 * the SDK (a status, an agent). */
json_t *sg_north_session(const json_t *in, const char *id, const char *backend, const char *where,
                         unsigned flags, struct sg_error *err);
/* The same for a Session the caller built (stolen, see above), its own `id` kept (a string:
 * the public id, which the caller minted; missing: 502). A translator sets only the keys it
 * derives; this fills the documented empty values of the rest (type, archived_at and budget
 * null, metadata and stats {}, usage {}, outcome_evaluations, resources and vault_ids [], the
 * agent's empty lists, null description and system, service-account identity). */
json_t *sg_north_session_take(json_t *in, const char *backend, const char *where, unsigned flags,
                              struct sg_error *err);

/* One event (borrowed) → *out (new): id as is, type, processed_at (normalised; required on
 * most types, optional and nullable on queued user inputs and system.message) and the type's
 * own keys; session.status_idle always with stop_reason and stop_details. Returns
 * SG_NORTH_KEPT with *out set; SG_NORTH_DROPPED (*out NULL) when the SDK's closed event union
 * has no member for it (an unknown type, or a known type whose required part is newer than the
 * SDK; lenient: or wrong); -1 + err otherwise (502 for a wrong shape when strict, 500). */
int sg_north_event(const json_t *in, const char *backend, const char *where, unsigned flags,
                   json_t **out, struct sg_error *err);
/* The same for an event the caller built (stolen, see above); *out is it, normalised. */
int sg_north_event_take(json_t *in, const char *backend, const char *where, unsigned flags,
                        json_t **out, struct sg_error *err);

/* Items in one list body; more is refused, not truncated. */
#define SG_NORTH_PAGE_MAX 100000

/* Splits a Claude-like list body {data: [...], next_page?, prev_page?} (borrowed), as a
 * Claude-native upstream and SandBase answer lists: *data borrowed from body, *next borrowed
 * (NULL when absent, null or "", which the SDK reads alike as "no more pages"; prev_page is
 * ignored: the gateway mints its own cursors). Returns 0, or -1 with a 502 api_error naming the
 * backend when the body has the wrong shape (not an object, no `data` array, more than
 * SG_NORTH_PAGE_MAX items, a next_page that is not a string or holds a NUL byte); a NULL
 * backend is a 500. */
int sg_north_page_parts(const json_t *body, const char *backend, const json_t **data,
                        const char **next, struct sg_error *err);

#endif
