/* agentscope_translate.h - AgentScope agent service → north JSON. Pure functions: no I/O,
 * no clock (the caller passes "now"), no global state. Tested with golden fixtures under
 * tests/fixtures/agentscope/. The fidelity table is docs/fidelity-agentscope.md. */
#ifndef SG_AGENTSCOPE_TRANSLATE_H
#define SG_AGENTSCOPE_TRANSLATE_H

#include <jansson.h>
#include <stdint.h>

#include "error.h"
#include "jsonscan.h"

struct sg_tz;

/* A session's token usage summed over its message log (Msg.usage of every message, as the
 * context sums are made: docs/fidelity-agentscope.md, usage). */
struct sg_as_usage {
	int64_t in, out, cache_read, cache_create;
	int partial; /* summed over part of the log only */
};

/* Adds the usage of every message of `messages` (an array, borrowed; anything else adds
 * nothing) to u. Returns how many messages it saw. */
size_t sg_as_usage_add(struct sg_as_usage *u, const json_t *messages);

/* backend and tz must not be NULL (a NULL ctx, backend or tz is a 500, the caller's bug). */
struct sg_as_ctx {
	const char *backend;    /* backend name, encoded into public ids, named in errors */
	const struct sg_tz *tz; /* zone of the backend's naive timestamps */
	int64_t now_us;         /* "now", for the stats of a running session */
	/* Optional: the usage summed over a session's message log when the caller knows it
	 * (agentscope.c: a retrieve reads the log; a list asks the usage memo). `session` is the
	 * SessionView's record (borrowed), `running` whether a run holds it now. Returns 1 and
	 * fills u, or 0. It wins over the sums of a carried context, which may miss compressed
	 * turns. */
	int (*log_usage)(void *arg, const json_t *session, int running, struct sg_as_usage *u);
	void *log_usage_arg;
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

/* The same from the listing's text (borrowed; len bytes): each SessionView is parsed,
 * translated and let go in turn, so the whole listing is never a tree at once. The result and
 * the errors are those of sg_as_listing_to_cma; text that is not JSON is the core's 502
 * "answered something that is not JSON". */
int sg_as_listing_text_to_cma(const char *text, size_t len, const json_t *agents_index,
                              const struct sg_as_ctx *ctx, json_t *out, struct sg_error *err);
/* The same handing each north Session (new) to emit(arg, session) as soon as it is made; a
 * non-zero return stops the translation, which then returns -1 (err untouched: the emitter
 * knows why). On any failure what was emitted is to be thrown away. */
int sg_as_listing_text_each(const char *text, size_t len, const json_t *agents_index,
                            const struct sg_as_ctx *ctx, int (*emit)(void *arg, json_t *session),
                            void *arg, struct sg_error *err);

/* The same in slices, so a large listing does not hold the event loop: begin (0, or -1 with
 * err), then step until it returns 0 (done; each step translates at most max sessions and
 * returns 1 while some remain) or -1 (err, or emit refused). The text, the index and ctx must
 * stay alive and unchanged meanwhile. */
struct sg_as_listing_text {
	struct sg_jscanner js;
	const json_t *agents_index;
	const struct sg_as_ctx *ctx;
};
int sg_as_listing_text_begin(struct sg_as_listing_text *t, const char *text, size_t len,
                             const json_t *agents_index, const struct sg_as_ctx *ctx,
                             struct sg_error *err);
int sg_as_listing_text_step(struct sg_as_listing_text *t, size_t max,
                            int (*emit)(void *arg, json_t *session), void *arg,
                            struct sg_error *err);

/* ---- agents ------------------------------------------------------------------------------ */

/* One AgentView of GET /agent/ (borrowed) → north Agent (new; BetaManagedAgentsAgent, held to the
 * SDK's type by the core's normaliser, strict): id, name (data.name, else the id), system
 * (data.system_prompt), version 1 (AgentScope does not version agents), model {id: model_id}
 * ("unknown" when NULL or empty: an AgentScope agent has no model, its sessions do), created_at
 * and updated_at (naive local → UTC), metadata agentscope.source/user_id/editable, everything
 * else its documented empty value. NULL + 502 when the view is not an object, has no usable id,
 * or a created_at/updated_at that does not read; 500 when out of memory. */
json_t *sg_as_agent_to_cma(const json_t *view, const char *model_id, const struct sg_as_ctx *ctx,
                           struct sg_error *err);

/* The body of GET /agent/ (borrowed) → every agent as sg_as_agent_to_cma() makes it, in the
 * backend's order, the first of duplicate ids kept (new array). NULL + 502 as for
 * sg_as_agents_index() or for any agent ("agents[3]: …"). */
json_t *sg_as_agents_to_cma(const json_t *agents_body, const char *model_id,
                            const struct sg_as_ctx *ctx, struct sg_error *err);

/* ---- writes ------------------------------------------------------------------------------ */

/* A model configuration from the backend's options (borrowed), checked as AgentScope's
 * ChatModelConfig needs it: an object with non-empty strings `type` (the provider's credential
 * type), `credential_id` and `model`, and an optional object `parameters`; no other keys but
 * comments ("_…"). Returns the configuration as it is sent, {type, credential_id, model,
 * parameters} with parameters {} when absent (new), or NULL with a 400 naming `name`, the
 * option, and the key at fault (500 when out of memory). */
json_t *sg_as_model_config(const json_t *cfg, const char *name, struct sg_error *err);

/* Everything a write translation needs besides the north body. Borrowed; new_id must not be
 * NULL for create and send_events (the module's is a fresh uuid4 hex, the tests' a counter). */
struct sg_as_write_ctx {
	const char *backend;    /* named in every refusal: "backend 'NAME' (agentscope) …" */
	const struct sg_tz *tz; /* zone of the backend's naive timestamps */
	int64_t now_us;         /* stamped on the messages the gateway writes, and on echoes */
	/* Writes a fresh message id (at most 64 bytes, NUL-terminated) into out; returns 0, or -1
	 * when it cannot (a 500). */
	int (*new_id)(void *arg, char out[65]);
	void *id_arg;
	/* The backend's model configurations as JSON text (as sg_as_model_config() returns them),
	 * or NULL when the backend has none. */
	const char *chat_model_config;
	const char *fallback_chat_model_config;
};

/* What POST /v1/sessions becomes. */
struct sg_as_create {
	const char *agent_id; /* borrowed from the north body */
	json_t *session_body; /* POST /sessions/ {agent_id, workspace_id?, name?, chat_model_config,
	                       * fallback_chat_model_config?} (new) */
	json_t *chat_input;   /* POST /chat/ input for initial_events: a Msg, or a list of Msgs in
	                       * order (new), or NULL without initial events */
};

/* Translates a validated north create body (borrowed; SessionCreateParams) into *out (whose
 * members the caller frees on success; nothing to free on failure). Refusals are 400
 * invalid_request_error naming the field and the backend: an agent_with_overrides (with the
 * keys that cannot be overridden), an agent version other than 1, an environment_id other than
 * "env_none" / "env_<workspace id>", non-empty metadata, resources or vault_ids, any budget, an
 * initial event other than user.message, content AgentScope cannot hold (file sources,
 * redacted blocks), a backend without chat_model_config. 500 when out of memory or new_id fails.
 * Returns 0 or -1. */
int sg_as_create_request(const json_t *body, const struct sg_as_write_ctx *w,
                         struct sg_as_create *out, struct sg_error *err);

/* Translates a validated north update body (borrowed; SessionUpdateParams) into the body of
 * PATCH /sessions/{id} (*patch, new), or *patch NULL when nothing is to be sent (the answer is
 * then the session as it is). title → name; refusals (400): title null (AgentScope always keeps
 * a name), metadata other than absent or {}, agent, a budget other than null, non-empty
 * vault_ids. Returns 0 or -1. */
int sg_as_update_request(const json_t *body, const struct sg_as_write_ctx *w, json_t **patch,
                         struct sg_error *err);

/* What one north send_events request becomes: one kind of event per request, so that each
 * request is one backend request, applied whole or not at all. */
enum sg_as_send_kind {
	SG_AS_SEND_MESSAGES,     /* user.message: POST /chat/ with the Msgs */
	SG_AS_SEND_INTERRUPT,    /* user.interrupt: POST /sessions/{id}/interrupt */
	SG_AS_SEND_CONFIRMATION, /* user.tool_confirmation: POST /chat/ USER_CONFIRM_RESULT */
	SG_AS_SEND_TOOL_RESULT, /* user.custom_tool_result: POST /chat/ EXTERNAL_EXECUTION_RESULT */
};

struct sg_as_send {
	enum sg_as_send_kind kind;
	json_t *msgs; /* SG_AS_SEND_MESSAGES: the Msgs to send, in order (new); NULL otherwise */
};

/* Classifies a validated north send body (borrowed; {events: [...]}, at least one) into *out
 * (msgs freed by the caller on success). Refusals (400): a type AgentScope cannot take
 * (user.define_outcome, user.tool_result, system.message: "not supported by backend …"), a
 * user.interrupt naming a session_thread_id, a request mixing kinds (naming the first two), a
 * message content AgentScope cannot hold. Returns 0 or -1. */
int sg_as_send_plan(const json_t *body, const struct sg_as_write_ctx *w, struct sg_as_send *out,
                    struct sg_error *err);

/* The /chat/ input for Msgs (borrowed array of one or more): the Msg itself when there is one,
 * else the list. New reference, or NULL when out of memory. */
json_t *sg_as_chat_input(const json_t *msgs);

struct sg_as_events_ctx;

/* For user.tool_confirmation or user.custom_tool_result events (borrowed, all of that kind), the
 * /chat/ input that resumes the parked reply: {type: "USER_CONFIRM_RESULT", reply_id,
 * confirm_results: [{confirmed, tool_call: <the stored block>}]} or {type:
 * "EXTERNAL_EXECUTION_RESULT", reply_id, execution_results: [{type: "tool_result", id, name,
 * output, state: success|error}]}. The ids are matched against the tool-use event ids that
 * events.list shows for the same log (messages, borrowed, oldest first) and ctx, so ctx must be
 * the one list_events uses. A tool_use_id that names no tool call in the tail reply, or one not
 * waiting (for confirmation: state asking; for a result: submitted), or named twice, is a 400
 * naming it; a broken log a 502. New reference or NULL. */
json_t *sg_as_resume_input(const json_t *events, const json_t *messages,
                           const struct sg_as_events_ctx *ctx, struct sg_error *err);

/* The answer to a send_events request that the backend accepted: {data: [the events as north
 * events]}. user.message events are the translation of the Msgs sent (plan->msgs), with the
 * very ids, timestamps and content events.list gives them once AgentScope has stored them; the
 * other kinds (which leave no event of their own in AgentScope's log) get ids minted from the
 * session, the kind, what they name and now_us, and processed_at now_us. body is the north send
 * body (borrowed), ctx as for sg_as_resume_input (session_running is not read). New reference,
 * or NULL + err (500; 502 when a Msg built here does not translate, which is a bug). */
json_t *sg_as_send_echo(const json_t *body, const struct sg_as_send *plan,
                        const struct sg_as_events_ctx *ctx, int64_t now_us, struct sg_error *err);

#endif
