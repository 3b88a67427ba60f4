/* north.c - the SDK's north types as const tables, and the one walker that rebuilds any
 * Claude-like JSON into them; see north.h.
 *
 * Every object is rebuilt from a table that describes the @anthropic-ai/sdk 1.10.0 type it
 * must satisfy (resources/beta/sessions/{sessions,events,resources}.d.ts,
 * beta/agents/agents.d.ts). The tables say, per key, whether it is required, whether it may
 * be null and what its documented empty value is; one walker applies them. The rules it
 * enforces are in docs/fidelity-claude.md ("Normalisation rules"); change both together:
 *
 *   - keys the type does not have are dropped (conformance validates with
 *     additionalProperties: false at every level);
 *   - absent, or null where the type forbids null: an optional key stays absent, a required
 *     key gets its documented empty value ([], {}, null, 0, "end_turn", …), or the value is
 *     wrong when it has none (ids, names, timestamps);
 *   - a value of the wrong JSON type, or a timestamp that does not parse: wrong. Strict (an
 *     upstream that speaks the dialect never sends one, so it is misconfigured or broken):
 *     a 502. Lenient (SG_NORTH_LENIENT, for objects a module built from a dialect that is only
 *     Claude-like): treated like the next rule, so it costs a part rather than the answer;
 *   - a string outside a closed enum, or an object whose `type` the union does not know:
 *     what a newer upstream sends. It degrades to the nearest value the type allows: the
 *     union's fallback variant, else dropped from an array, null where null is allowed,
 *     absent where the key is optional; a required one makes its parent unknown in turn,
 *     and a session or agent that ends up unknown is a 502, an event is dropped;
 *   - every timestamp is re-formatted through sg_time_parse_rfc3339 + sg_time_format.
 *
 * Nothing here is specific to a backend dialect, does I/O, reads the clock or keeps state.
 * The tables are const. */
#include "north.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "jsonx.h"
#include "timeutil.h"

#define N_PATH_MAX 160 /* bytes of a JSON path in an error message */
#define N_QUOTE_MAX 64 /* bytes of a backend value quoted in an error message */
#define N_WHAT_MAX 256 /* bytes of what is wrong, after the path */
#define N_DEPTH_MAX 32 /* levels of a path kept for messages; deeper ones are left out */

/* What the walker returns: the value was converted, the value is of a kind the SDK does not
 * know (a newer upstream; when lenient, also a wrong one), or the answer must fail (err set). */
enum { N_BAD = -1, N_OK = 0, N_UNKNOWN = 1 };

enum kind {
	N_ANY,   /* any JSON value, copied as is */
	N_STR,   /* a string; with `values`, one of them */
	N_NUM,   /* an integer or a real */
	N_BOOL,  /* true or false */
	N_TIME,  /* an RFC 3339 string, normalised */
	N_OBJ,   /* an object with the keys of `fields`; other keys dropped */
	N_MAP,   /* an object with any keys, each value of shape `item` */
	N_ARR,   /* an array, each item of shape `item` */
	N_UNION, /* an object discriminated by its `type`, one of `variants` */
};

#define N_REQ 1u  /* the key is not optional in the SDK type */
#define N_NULL 2u /* the value may be null */

struct shape;

struct field {
	const char *key;
	const struct shape *shape;
	unsigned flags;
	const char *dflt; /* JSON text of the documented empty value of a required key, or NULL */
};

struct variant {
	const char *name;           /* the `type` value */
	const struct field *fields; /* besides `type`; NULL-key terminated, or NULL */
};

struct shape {
	enum kind kind;
	const struct field *fields;     /* N_OBJ */
	const struct shape *item;       /* N_ARR, N_MAP */
	const char *const *values;      /* N_STR: allowed values, NULL-terminated, or NULL */
	const struct variant *variants; /* N_UNION, NULL-name terminated */
	const char *fallback;           /* N_UNION: variant standing in for unknown types */
	const char *alt_key; /* N_UNION: key that names the variant when `type` is absent, and
	                      * is written with the variant's name (tool configs: name == type) */
	int open;            /* N_OBJ: keys not in `fields` are kept as they are (a JSON
	                      * Schema, which has an index signature in the SDK) */
};

/* Table-writing shorthands. A required nullable key's empty value is always null. Kept out
 * of clang-format, which cannot lay out brace-only macro bodies. */
/* clang-format off */
#define END {NULL, NULL, 0, NULL}
#define REQ(k, s) {k, s, N_REQ, NULL}
#define REQD(k, s, d) {k, s, N_REQ, d}
#define REQN(k, s) {k, s, N_REQ | N_NULL, "null"}
#define OPT(k, s) {k, s, 0, NULL}
#define OPTN(k, s) {k, s, N_NULL, NULL}
#define FIELDS(...) ((const struct field[]){__VA_ARGS__, END})
#define VARIANTS(...) ((const struct variant[]){__VA_ARGS__, {NULL, NULL}})
#define ENUM(...) {.kind = N_STR, .values = (const char *const[]){__VA_ARGS__, NULL}}
#define OBJ(...) {.kind = N_OBJ, .fields = FIELDS(__VA_ARGS__)}
#define ARR(s) {.kind = N_ARR, .item = s}
#define UNION(...) {.kind = N_UNION, .variants = VARIANTS(__VA_ARGS__)}
/* clang-format on */

/* ---- Scalars and enums ---- */

static const struct shape S_ANY = {.kind = N_ANY};
static const struct shape S_STR = {.kind = N_STR};
static const struct shape S_NUM = {.kind = N_NUM};
static const struct shape S_BOOL = {.kind = N_BOOL};
static const struct shape S_TIME = {.kind = N_TIME};
static const struct shape S_OPEN = {.kind = N_MAP, .item = &S_ANY}; /* tool input etc. */
static const struct shape S_STR_MAP = {.kind = N_MAP, .item = &S_STR};
static const struct shape A_STR = ARR(&S_STR);

static const struct shape E_SESSION = ENUM("session");
static const struct shape E_STATUS = ENUM("rescheduling", "running", "idle", "terminated");
static const struct shape E_PERMISSION = ENUM("allow", "ask", "deny");
static const struct shape E_CONFIRM = ENUM("allow", "deny");
static const struct shape E_SPEED = ENUM("standard", "fast");
static const struct shape E_CURRENCY = ENUM("USD");
static const struct shape E_ACCESS = ENUM("read_write", "read_only");
static const struct shape E_PLAIN = ENUM("text/plain");
static const struct shape E_OBJECT = ENUM("object");
static const struct shape E_CATEGORY =
    ENUM("cyber", "bio", "frontier_llm", "reasoning_extraction", "general_harms");

/* ---- Money, usage, budget (sessions.d.ts, beta.d.ts) ---- */

static const struct shape O_MONEY = OBJ(REQ("amount", &S_STR), REQ("currency", &E_CURRENCY));
static const struct shape O_CACHE_CREATION =
    OBJ(OPT("ephemeral_1h_input_tokens", &S_NUM), OPT("ephemeral_5m_input_tokens", &S_NUM));
static const struct shape O_SERVER_TOOL =
    OBJ(OPT("web_fetch_requests", &S_NUM), OPT("web_search_requests", &S_NUM));
/* BetaManagedAgentsSessionUsage: list_cost and server_tool_use may be null. */
static const struct shape O_SESSION_USAGE =
    OBJ(OPT("active_seconds", &S_NUM), OPT("cache_creation", &O_CACHE_CREATION),
        OPT("cache_read_input_tokens", &S_NUM), OPT("input_tokens", &S_NUM),
        OPTN("list_cost", &O_MONEY), OPT("output_tokens", &S_NUM),
        OPTN("server_tool_use", &O_SERVER_TOOL));
/* BetaManagedAgentsSessionUsageSnapshot (session.usage events): the same, never null. */
static const struct shape O_USAGE_SNAPSHOT = OBJ(
    OPT("active_seconds", &S_NUM), OPT("cache_creation", &O_CACHE_CREATION),
    OPT("cache_read_input_tokens", &S_NUM), OPT("input_tokens", &S_NUM), OPT("list_cost", &O_MONEY),
    OPT("output_tokens", &S_NUM), OPT("server_tool_use", &O_SERVER_TOOL));
/* BetaManagedAgentsSpanModelUsage: the four counts are required; unknown counts are 0. */
static const struct shape O_SPAN_USAGE = OBJ(
    REQD("cache_creation_input_tokens", &S_NUM, "0"), REQD("cache_read_input_tokens", &S_NUM, "0"),
    REQD("input_tokens", &S_NUM, "0"), REQD("output_tokens", &S_NUM, "0"), OPTN("speed", &E_SPEED));
static const struct shape U_BUDGET = UNION({"limit", FIELDS(REQ("max_list_cost", &O_MONEY))});
static const struct shape O_STATS =
    OBJ(OPT("active_seconds", &S_NUM), OPT("duration_seconds", &S_NUM));

/* ---- The agent snapshot (agents.d.ts) ---- */

static const struct shape U_POLICY =
    UNION({"always_allow", NULL}, {"always_ask", NULL}, {"auto", NULL});
static const struct shape U_TOOL_REFERENCE = UNION({"tool_reference", FIELDS(REQ("name", &S_STR))});
static const struct shape A_TOOL_REFERENCES = ARR(&U_TOOL_REFERENCE);
static const struct shape U_URL_FILTER =
    UNION({"all", NULL}, {"none", NULL}, {"only", FIELDS(REQD("tools", &A_TOOL_REFERENCES, "[]"))},
          {"except", FIELDS(REQD("tools", &A_TOOL_REFERENCES, "[]"))});
static const struct shape U_URL_USER_INPUT = UNION({"all", NULL}, {"none", NULL});
static const struct shape O_URL_SOURCES =
    OBJ(REQN("client_tool_results", &U_URL_FILTER), REQN("server_tool_results", &U_URL_FILTER),
        REQN("user_input", &U_URL_USER_INPUT));
static const struct shape U_USER_LOCATION =
    UNION({"approximate", FIELDS(OPTN("city", &S_STR), OPTN("country", &S_STR),
                                 OPTN("region", &S_STR), OPTN("timezone", &S_STR))});
static const struct shape O_INPUT_SCHEMA = {
    .kind = N_OBJ,
    .open = 1,
    .fields = FIELDS(REQD("type", &E_OBJECT, "\"object\""), OPTN("properties", &S_OPEN),
                     OPTN("required", &A_STR)),
};
static const struct field F_TOOL_CONFIG[] = {REQ("enabled", &S_BOOL),
                                             REQ("permission_policy", &U_POLICY), END};
/* The built-in tool configs: `name` and `type` are the same string in every variant. */
static const struct shape U_TOOL_CONFIG = {
    .kind = N_UNION,
    .alt_key = "name",
    .variants = VARIANTS(
        {"bash", F_TOOL_CONFIG}, {"edit", F_TOOL_CONFIG}, {"read", F_TOOL_CONFIG},
        {"write", F_TOOL_CONFIG}, {"glob", F_TOOL_CONFIG}, {"grep", F_TOOL_CONFIG},
        {"web_fetch", FIELDS(REQ("enabled", &S_BOOL), REQ("permission_policy", &U_POLICY),
                             REQN("url_sources", &O_URL_SOURCES), OPT("allowed_domains", &A_STR),
                             OPT("blocked_domains", &A_STR), OPTN("max_content_tokens", &S_NUM))},
        {"web_search", FIELDS(REQ("enabled", &S_BOOL), REQ("permission_policy", &U_POLICY),
                              OPT("allowed_domains", &A_STR), OPT("blocked_domains", &A_STR),
                              OPTN("user_location", &U_USER_LOCATION))}),
};
static const struct shape A_TOOL_CONFIGS = ARR(&U_TOOL_CONFIG);
static const struct shape O_DEFAULT_CONFIG =
    OBJ(REQ("enabled", &S_BOOL), REQ("permission_policy", &U_POLICY));
static const struct shape O_MCP_TOOL_CONFIG =
    OBJ(REQ("enabled", &S_BOOL), REQ("name", &S_STR), REQ("permission_policy", &U_POLICY));
static const struct shape A_MCP_TOOL_CONFIGS = ARR(&O_MCP_TOOL_CONFIG);
static const struct shape U_TOOL =
    UNION({"agent_toolset_20260401", FIELDS(REQD("configs", &A_TOOL_CONFIGS, "[]"),
                                            REQ("default_config", &O_DEFAULT_CONFIG))},
          {"mcp_toolset",
           FIELDS(REQD("configs", &A_MCP_TOOL_CONFIGS, "[]"),
                  REQ("default_config", &O_DEFAULT_CONFIG), REQ("mcp_server_name", &S_STR))},
          {"custom", FIELDS(REQ("description", &S_STR), REQ("input_schema", &O_INPUT_SCHEMA),
                            REQ("name", &S_STR))});
static const struct shape A_TOOLS = ARR(&U_TOOL);
static const struct field F_SKILL[] = {REQ("skill_id", &S_STR), REQ("version", &S_STR), END};
static const struct shape U_SKILL = UNION({"anthropic", F_SKILL}, {"custom", F_SKILL});
static const struct shape A_SKILLS = ARR(&U_SKILL);
static const struct shape U_MCP_SERVER =
    UNION({"url", FIELDS(REQ("name", &S_STR), REQ("url", &S_STR))});
static const struct shape A_MCP_SERVERS = ARR(&U_MCP_SERVER);
static const struct shape U_EXEC_IDENTITY =
    UNION({"service_account", NULL}, {"aws_role", FIELDS(REQ("role_arn", &S_STR))});
static const struct shape U_EFFORT =
    UNION({"low", NULL}, {"medium", NULL}, {"high", NULL}, {"xhigh", NULL}, {"max", NULL});
static const struct shape O_MODEL = OBJ(REQ("id", &S_STR), OPT("effort", &U_EFFORT),
                                        OPT("inference_geo", &S_STR), OPT("speed", &E_SPEED));

/* BetaManagedAgentsSessionThreadAgent; the session's own agent adds `multiagent`. An agent
 * without execution_identity runs as the service account, the platform's default. */
#define THREAD_AGENT_FIELDS                                                                        \
	REQ("id", &S_STR), REQN("description", &S_STR),                                            \
	    REQD("execution_identity", &U_EXEC_IDENTITY, "{\"type\":\"service_account\"}"),        \
	    REQD("mcp_servers", &A_MCP_SERVERS, "[]"), REQ("model", &O_MODEL),                     \
	    REQ("name", &S_STR), REQD("skills", &A_SKILLS, "[]"), REQN("system", &S_STR),          \
	    REQD("tools", &A_TOOLS, "[]"), REQ("version", &S_NUM)

static const struct field F_THREAD_AGENT[] = {THREAD_AGENT_FIELDS, END};
static const struct shape U_THREAD_AGENT = UNION({"agent", F_THREAD_AGENT});
static const struct shape A_THREAD_AGENTS = ARR(&U_THREAD_AGENT);
static const struct shape U_ROSTER_ENTRY =
    UNION({"agent", F_THREAD_AGENT}, {"advisor", FIELDS(REQ("model", &S_STR))});
static const struct shape A_ROSTER = ARR(&U_ROSTER_ENTRY);
static const struct shape U_ON_OFF = UNION({"enabled", NULL}, {"disabled", NULL});
static const struct shape U_TEAM =
    UNION({"enabled", FIELDS(REQ("inline_agents", &U_ON_OFF),
                             REQD("predefined_agents", &A_THREAD_AGENTS, "[]"))},
          {"disabled", NULL});
static const struct shape U_ADVISOR =
    UNION({"enabled", FIELDS(REQ("model", &S_STR))}, {"disabled", NULL});
static const struct shape U_MULTIAGENT =
    UNION({"coordinator", FIELDS(REQD("agents", &A_ROSTER, "[]"))},
          {"multiagent_20261001", FIELDS(REQ("advisor", &U_ADVISOR), REQ("subagents", &U_TEAM),
                                         REQ("workflows", &U_TEAM))});
static const struct shape U_SESSION_AGENT =
    UNION({"agent", FIELDS(THREAD_AGENT_FIELDS, REQN("multiagent", &U_MULTIAGENT))});

/* The agent resource itself (BetaManagedAgentsAgent, agents.list/retrieve): the snapshot's keys
 * plus its own timestamps and metadata, and a multiagent roster that names other agents by
 * reference ({id, type, version}) instead of embedding them. `updated_at` is optional here only
 * so that a missing one can take created_at's value afterwards, as for sessions. */
static const struct field F_AGENT_REFERENCE[] = {REQ("id", &S_STR), REQ("version", &S_NUM), END};
static const struct shape U_AGENT_REFERENCE = UNION({"agent", F_AGENT_REFERENCE});
static const struct shape A_AGENT_REFERENCES = ARR(&U_AGENT_REFERENCE);
static const struct shape U_REFERENCE_ROSTER_ENTRY =
    UNION({"agent", F_AGENT_REFERENCE}, {"advisor", FIELDS(REQ("model", &S_STR))});
static const struct shape A_REFERENCE_ROSTER = ARR(&U_REFERENCE_ROSTER_ENTRY);
static const struct shape U_REFERENCE_TEAM =
    UNION({"enabled", FIELDS(REQ("inline_agents", &U_ON_OFF),
                             REQD("predefined_agents", &A_AGENT_REFERENCES, "[]"))},
          {"disabled", NULL});
static const struct shape U_AGENT_MULTIAGENT = UNION(
    {"coordinator", FIELDS(REQD("agents", &A_REFERENCE_ROSTER, "[]"))},
    {"multiagent_20261001", FIELDS(REQ("advisor", &U_ADVISOR), REQ("subagents", &U_REFERENCE_TEAM),
                                   REQ("workflows", &U_REFERENCE_TEAM))});
static const struct shape U_AGENT =
    UNION({"agent", FIELDS(THREAD_AGENT_FIELDS, REQN("archived_at", &S_TIME),
                           REQ("created_at", &S_TIME), REQD("metadata", &S_STR_MAP, "{}"),
                           REQN("multiagent", &U_AGENT_MULTIAGENT), OPT("updated_at", &S_TIME))});

/* ---- The session (sessions.d.ts, resources.d.ts) ---- */

static const struct shape U_CHECKOUT =
    UNION({"branch", FIELDS(REQ("name", &S_STR))}, {"commit", FIELDS(REQ("sha", &S_STR))});
static const struct shape U_RESOURCE =
    UNION({"file", FIELDS(REQ("id", &S_STR), REQ("created_at", &S_TIME), REQ("file_id", &S_STR),
                          REQ("mount_path", &S_STR), REQ("updated_at", &S_TIME))},
          {"github_repository",
           FIELDS(REQ("id", &S_STR), REQ("created_at", &S_TIME), REQ("mount_path", &S_STR),
                  REQ("updated_at", &S_TIME), REQ("url", &S_STR), OPTN("checkout", &U_CHECKOUT))},
          {"memory_store", FIELDS(REQ("memory_store_id", &S_STR), OPTN("access", &E_ACCESS),
                                  OPT("description", &S_STR), OPTN("instructions", &S_STR),
                                  OPTN("mount_path", &S_STR), OPTN("name", &S_STR))});
static const struct shape A_RESOURCES = ARR(&U_RESOURCE);
static const struct shape U_OUTCOME_EVALUATION =
    UNION({"outcome_evaluation", FIELDS(REQN("completed_at", &S_TIME), REQ("description", &S_STR),
                                        REQN("explanation", &S_STR), REQ("iteration", &S_NUM),
                                        REQ("outcome_id", &S_STR), REQ("result", &S_STR))});
static const struct shape A_OUTCOME_EVALUATIONS = ARR(&U_OUTCOME_EVALUATION);

/* BetaManagedAgentsSession without `id` (re-encoded by the caller). `updated_at` is listed
 * as optional only so that a missing one can take created_at's value afterwards. */
static const struct field F_SESSION[] = {
    REQD("type", &E_SESSION, "\"session\""),
    REQ("agent", &U_SESSION_AGENT),
    REQN("archived_at", &S_TIME),
    REQN("budget", &U_BUDGET),
    REQ("created_at", &S_TIME),
    REQ("environment_id", &S_STR),
    REQD("metadata", &S_STR_MAP, "{}"),
    REQD("outcome_evaluations", &A_OUTCOME_EVALUATIONS, "[]"),
    REQD("resources", &A_RESOURCES, "[]"),
    REQD("stats", &O_STATS, "{}"),
    REQ("status", &E_STATUS),
    REQN("title", &S_STR),
    OPT("updated_at", &S_TIME),
    REQD("usage", &O_SESSION_USAGE, "{}"),
    REQD("vault_ids", &A_STR, "[]"),
    OPTN("deployment_id", &S_STR),
    END,
};

/* ---- Content blocks (events.d.ts) ---- */

static const struct field F_TEXT[] = {REQ("text", &S_STR), END};
static const struct field F_BASE64[] = {REQ("data", &S_STR), REQ("media_type", &S_STR), END};
static const struct field F_URL[] = {REQ("url", &S_STR), END};
static const struct field F_FILE[] = {REQ("file_id", &S_STR), END};
static const struct shape U_IMAGE_SOURCE =
    UNION({"base64", F_BASE64}, {"url", F_URL}, {"file", F_FILE});
static const struct shape U_DOCUMENT_SOURCE =
    UNION({"base64", F_BASE64},
          {"text", FIELDS(REQ("data", &S_STR), REQD("media_type", &E_PLAIN, "\"text/plain\""))},
          {"url", F_URL}, {"file", F_FILE});
static const struct field F_IMAGE[] = {REQ("source", &U_IMAGE_SOURCE), END};
static const struct field F_DOCUMENT[] = {REQ("source", &U_DOCUMENT_SOURCE),
                                          OPTN("context", &S_STR), OPTN("title", &S_STR), END};
static const struct shape U_SEARCH_TEXT = UNION({"text", F_TEXT});
static const struct shape A_SEARCH_TEXT = ARR(&U_SEARCH_TEXT);
static const struct shape O_CITATIONS = OBJ(REQ("enabled", &S_BOOL));
static const struct field F_SEARCH_RESULT[] = {REQ("citations", &O_CITATIONS),
                                               REQD("content", &A_SEARCH_TEXT, "[]"),
                                               REQ("source", &S_STR), REQ("title", &S_STR), END};

/* Which blocks each content array admits. */
static const struct shape U_USER_BLOCK =
    UNION({"text", F_TEXT}, {"image", F_IMAGE}, {"document", F_DOCUMENT}, {"redacted", NULL});
static const struct shape U_AGENT_BLOCK = UNION({"text", F_TEXT}, {"redacted", NULL});
static const struct shape U_RESULT_BLOCK =
    UNION({"text", F_TEXT}, {"image", F_IMAGE}, {"document", F_DOCUMENT},
          {"search_result", F_SEARCH_RESULT});
static const struct shape A_USER_CONTENT = ARR(&U_USER_BLOCK);
static const struct shape A_AGENT_CONTENT = ARR(&U_AGENT_BLOCK);
static const struct shape A_RESULT_CONTENT = ARR(&U_RESULT_BLOCK);
static const struct shape A_SYSTEM_CONTENT = ARR(&U_SEARCH_TEXT); /* text blocks only */

/* ---- Event payloads (events.d.ts, sessions.d.ts) ---- */

static const struct shape U_AUTO_PERMISSION =
    UNION({"allow", NULL}, {"ask", FIELDS(REQ("reason_code", &S_STR))},
          {"deny", FIELDS(REQ("reason_code", &S_STR))});
static const struct shape U_EVALUATION =
    UNION({"always_allow", NULL}, {"always_ask", NULL},
          {"auto", FIELDS(REQ("evaluated_permission", &U_AUTO_PERMISSION))});
static const struct shape U_RETRY_STATUS =
    UNION({"retrying", NULL}, {"exhausted", NULL}, {"terminal", NULL});

#define ERR_BASE REQ("message", &S_STR), REQ("retry_status", &U_RETRY_STATUS)
static const struct field F_ERR[] = {ERR_BASE, END};
static const struct field F_ERR_MCP[] = {ERR_BASE, REQ("mcp_server_name", &S_STR), END};
static const struct field F_ERR_REPO[] = {ERR_BASE, REQN("repository_url", &S_STR), END};
/* An error type this SDK does not know is read as unknown_error: the SDK tells clients to
 * fall back on message and retry_status, which every variant has. */
static const struct shape U_SESSION_ERROR = {
    .kind = N_UNION,
    .fallback = "unknown_error",
    .variants = VARIANTS(
        {"unknown_error", F_ERR}, {"model_overloaded_error", F_ERR},
        {"model_rate_limited_error", F_ERR}, {"model_request_failed_error", F_ERR},
        {"mcp_connection_failed_error", F_ERR_MCP}, {"mcp_authentication_failed_error", F_ERR_MCP},
        {"billing_error", F_ERR},
        {"credential_host_unreachable_error",
         FIELDS(ERR_BASE, REQ("credential_id", &S_STR), REQ("vault_id", &S_STR))},
        {"tool_use_limit_reached_error", F_ERR}, {"compaction_limit_reached_error", F_ERR},
        {"repository_authentication_error", F_ERR_REPO}, {"repository_forbidden_error", F_ERR_REPO},
        {"repository_not_found_error", F_ERR_REPO}, {"repository_checkout_error", F_ERR_REPO},
        {"repository_clone_error", F_ERR_REPO}),
};
static const struct field F_WF_ERR[] = {REQ("message", &S_STR), END};
static const struct shape U_WORKFLOW_ERROR = {
    .kind = N_UNION,
    .fallback = "unknown_error",
    .variants = VARIANTS({"timeout_error", F_WF_ERR}, {"program_error", F_WF_ERR},
                         {"unknown_error", F_WF_ERR}, {"thread_limit_error", F_WF_ERR},
                         {"max_workflow_runs_error", F_WF_ERR}),
};
static const struct shape U_WORKFLOW_RESULT = UNION(
    {"completed", NULL}, {"error", FIELDS(REQ("error", &U_WORKFLOW_ERROR))}, {"stopped", NULL});
static const struct shape O_PHASE =
    OBJ(REQ("id", &S_STR), REQN("description", &S_STR), REQ("name", &S_STR));
static const struct shape A_PHASES = ARR(&O_PHASE);
/* A stop reason this SDK does not know still ended the turn. */
static const struct shape U_STOP_REASON = {
    .kind = N_UNION,
    .fallback = "end_turn",
    .variants =
        VARIANTS({"end_turn", NULL}, {"requires_action", FIELDS(REQD("event_ids", &A_STR, "[]"))},
                 {"retries_exhausted", NULL}, {"budget_reached", NULL}, {"refusal", NULL}),
};
static const struct shape U_STOP_DETAILS =
    UNION({"refusal", FIELDS(REQN("category", &E_CATEGORY), REQN("explanation", &S_STR))});
static const struct shape U_RUBRIC =
    UNION({"file", FIELDS(REQ("file_id", &S_STR))}, {"text", FIELDS(REQ("content", &S_STR))});

#define STOP_FIELDS                                                                                \
	REQN("stop_details", &U_STOP_DETAILS),                                                     \
	    REQD("stop_reason", &U_STOP_REASON, "{\"type\":\"end_turn\"}")
#define THREAD_FIELDS REQ("agent_name", &S_STR), REQ("session_thread_id", &S_STR)

/* processed_at: required and non-null on most types; optional and nullable (null while
 * queued) on the user.* inputs other than define_outcome, and on system.message. */
enum when { PA_REQ, PA_OPT };

struct event_type {
	const char *type;
	enum when processed_at;
	const struct field *fields; /* besides id, type, processed_at */
};

/* The members of the BetaManagedAgentsSessionEvent union, in the SDK's order: the 41 values
 * of BetaManagedAgentsSessionEventType plus session.deleted, which the union has although
 * the type filter cannot name it. */
static const struct event_type event_types[] = {
    {"user.message", PA_OPT, FIELDS(REQD("content", &A_USER_CONTENT, "[]"))},
    {"user.interrupt", PA_OPT, FIELDS(OPTN("session_thread_id", &S_STR))},
    {"user.tool_confirmation", PA_OPT,
     FIELDS(REQ("result", &E_CONFIRM), REQ("tool_use_id", &S_STR), OPTN("deny_message", &S_STR),
            OPTN("session_thread_id", &S_STR))},
    {"user.custom_tool_result", PA_OPT,
     FIELDS(REQ("custom_tool_use_id", &S_STR), OPT("content", &A_RESULT_CONTENT),
            OPTN("is_error", &S_BOOL), OPTN("session_thread_id", &S_STR))},
    {"agent.custom_tool_use", PA_REQ,
     FIELDS(REQD("input", &S_OPEN, "{}"), REQ("name", &S_STR), OPTN("session_thread_id", &S_STR))},
    {"agent.message", PA_REQ, FIELDS(REQD("content", &A_AGENT_CONTENT, "[]"))},
    {"agent.thinking", PA_REQ, NULL},
    {"agent.mcp_tool_use", PA_REQ,
     FIELDS(REQD("input", &S_OPEN, "{}"), REQ("mcp_server_name", &S_STR), REQ("name", &S_STR),
            OPT("evaluated_permission", &E_PERMISSION), OPT("evaluation", &U_EVALUATION),
            OPTN("session_thread_id", &S_STR))},
    {"agent.mcp_tool_result", PA_REQ,
     FIELDS(REQ("mcp_tool_use_id", &S_STR), OPT("content", &A_RESULT_CONTENT),
            OPTN("is_error", &S_BOOL))},
    {"agent.tool_use", PA_REQ,
     FIELDS(REQD("input", &S_OPEN, "{}"), REQ("name", &S_STR),
            OPT("evaluated_permission", &E_PERMISSION), OPT("evaluation", &U_EVALUATION),
            OPTN("session_thread_id", &S_STR))},
    {"agent.tool_result", PA_REQ,
     FIELDS(REQ("tool_use_id", &S_STR), OPT("content", &A_RESULT_CONTENT),
            OPTN("is_error", &S_BOOL))},
    {"agent.thread_message_received", PA_REQ,
     FIELDS(REQD("content", &A_USER_CONTENT, "[]"), REQ("from_session_thread_id", &S_STR),
            OPTN("from_agent_name", &S_STR))},
    {"agent.thread_message_sent", PA_REQ,
     FIELDS(REQD("content", &A_USER_CONTENT, "[]"), REQ("to_session_thread_id", &S_STR),
            OPTN("to_agent_name", &S_STR))},
    {"agent.thread_context_compacted", PA_REQ, NULL},
    {"session.error", PA_REQ, FIELDS(REQ("error", &U_SESSION_ERROR))},
    {"session.status_rescheduled", PA_REQ, NULL},
    {"session.status_running", PA_REQ, NULL},
    {"session.status_idle", PA_REQ, FIELDS(STOP_FIELDS)},
    {"session.status_terminated", PA_REQ, NULL},
    {"session.thread_created", PA_REQ, FIELDS(THREAD_FIELDS, REQN("workflow_run_id", &S_STR))},
    {"span.outcome_evaluation_start", PA_REQ,
     FIELDS(REQ("iteration", &S_NUM), REQ("outcome_id", &S_STR))},
    {"span.outcome_evaluation_end", PA_REQ,
     FIELDS(REQ("explanation", &S_STR), REQ("iteration", &S_NUM),
            REQ("outcome_evaluation_start_id", &S_STR), REQ("outcome_id", &S_STR),
            REQ("result", &S_STR), REQD("usage", &O_SPAN_USAGE, "{}"))},
    {"span.model_request_start", PA_REQ, NULL},
    {"span.model_request_end", PA_REQ,
     FIELDS(REQN("is_error", &S_BOOL), REQ("model_request_start_id", &S_STR),
            REQD("model_usage", &O_SPAN_USAGE, "{}"))},
    {"span.outcome_evaluation_ongoing", PA_REQ,
     FIELDS(REQ("iteration", &S_NUM), REQ("outcome_id", &S_STR))},
    {"user.define_outcome", PA_REQ,
     FIELDS(REQ("description", &S_STR), REQN("max_iterations", &S_NUM), REQ("outcome_id", &S_STR),
            REQ("rubric", &U_RUBRIC))},
    {"session.deleted", PA_REQ, NULL},
    {"session.thread_status_running", PA_REQ, FIELDS(THREAD_FIELDS)},
    {"session.thread_status_idle", PA_REQ, FIELDS(THREAD_FIELDS, STOP_FIELDS)},
    {"session.thread_status_terminated", PA_REQ, FIELDS(THREAD_FIELDS)},
    {"user.tool_result", PA_OPT,
     FIELDS(REQ("tool_use_id", &S_STR), OPT("content", &A_RESULT_CONTENT),
            OPTN("is_error", &S_BOOL), OPTN("session_thread_id", &S_STR))},
    {"session.thread_status_rescheduled", PA_REQ, FIELDS(THREAD_FIELDS)},
    {"session.updated", PA_REQ,
     FIELDS(OPTN("agent", &U_SESSION_AGENT), OPTN("budget", &U_BUDGET), OPT("metadata", &S_STR_MAP),
            OPTN("title", &S_STR))},
    {"system.message", PA_OPT, FIELDS(REQD("content", &A_SYSTEM_CONTENT, "[]"))},
    {"session.usage", PA_REQ,
     FIELDS(REQD("usage", &O_USAGE_SNAPSHOT, "{}"), OPTN("budget", &U_BUDGET))},
    {"workflow_run.created", PA_REQ,
     FIELDS(REQN("description", &S_STR), REQ("name", &S_STR), REQD("phases", &A_PHASES, "[]"),
            REQ("workflow_run_id", &S_STR))},
    {"workflow_run.status_running", PA_REQ, FIELDS(REQ("workflow_run_id", &S_STR))},
    {"workflow_run.status_idle", PA_REQ, FIELDS(REQ("workflow_run_id", &S_STR))},
    {"workflow_run.status_ended", PA_REQ,
     FIELDS(REQ("result", &U_WORKFLOW_RESULT), REQ("workflow_run_id", &S_STR))},
    {"workflow_run.error", PA_REQ,
     FIELDS(REQ("error", &U_WORKFLOW_ERROR), REQN("workflow_run_id", &S_STR))},
    {"workflow_run.phase_started", PA_REQ,
     FIELDS(REQ("workflow_run_id", &S_STR), REQ("workflow_run_phase_id", &S_STR))},
    {"workflow_run.phase_ended", PA_REQ,
     FIELDS(REQ("phase_started_id", &S_STR), REQ("workflow_run_id", &S_STR),
            REQ("workflow_run_phase_id", &S_STR))},
};

/* ---- The walker ---- */

/* Where the walk is: the caller's `where`, then one segment per level, a key or an index.
 * Only a message needs it as text, so it is kept as pointers and rendered on demand. */
struct seg {
	const char *key; /* borrowed from the tables or the input; NULL: an array index */
	size_t idx;
};

/* State of one normalisation call: how strict, whether it owns its input, and where in the
 * input we are, for messages. */
struct walk {
	const char *backend; /* named in every message */
	int lenient;         /* SG_NORTH_LENIENT: a wrong value degrades, see wrong() */
	int take;            /* the input was given away (the _take functions): containers are
	                      * edited in place and scalars shared rather than copied */
	struct sg_error *err;
	const char *note;  /* the event type being translated, for messages, or NULL */
	const char *where; /* the caller's path of the value ("session", "events[3]") */
	struct seg segs[N_DEPTH_MAX];
	size_t depth;                      /* segments pushed; beyond N_DEPTH_MAX only counted */
	char why[N_PATH_MAX + N_WHAT_MAX]; /* what made the last N_UNKNOWN, with its path */
};

/* Enters a key, or an array index when key is NULL. Returns the depth to go back to. */
static size_t path_push(struct walk *w, const char *key, size_t idx)
{
	if (w->depth < N_DEPTH_MAX) {
		w->segs[w->depth].key = key;
		w->segs[w->depth].idx = idx;
	}
	return w->depth++;
}

static void path_pop(struct walk *w, size_t mark)
{
	w->depth = mark;
}

/* The path as text ("session.agent.tools[0].name") in buf (N_PATH_MAX bytes); a segment that
 * does not fit is left out whole. Returns buf. */
static const char *path_text(const struct walk *w, char *buf)
{
	size_t used, i, n = w->depth < N_DEPTH_MAX ? w->depth : N_DEPTH_MAX;
	int k;

	snprintf(buf, N_PATH_MAX, "%s", w->where);
	used = strlen(buf);
	for (i = 0; i < n; i++) {
		if (w->segs[i].key)
			k = snprintf(buf + used, N_PATH_MAX - used, ".%s", w->segs[i].key);
		else
			k = snprintf(buf + used, N_PATH_MAX - used, "[%zu]", w->segs[i].idx);
		if (k < 0 || (size_t)k >= N_PATH_MAX - used)
			buf[used] = '\0';
		else
			used += (size_t)k;
	}
	return buf;
}

/* Remembers what made a value N_UNKNOWN, with its path, in case nothing above can absorb it
 * and the answer fails for it. */
static int remember(struct walk *w, const char *what)
{
	char path[N_PATH_MAX];

	snprintf(w->why, sizeof(w->why), "%s %s", path_text(w, path), what);
	return N_UNKNOWN;
}

/* A value the answer cannot carry. Strict: a 502 naming the backend and the path (N_BAD).
 * Lenient: remembered like a value newer than the SDK (N_UNKNOWN), so that it costs the
 * nearest part that can be left out instead of the whole answer. */
__attribute__((format(printf, 2, 3))) static int wrong(struct walk *w, const char *fmt, ...)
{
	char msg[N_WHAT_MAX], path[N_PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (w->lenient)
		return remember(w, msg);
	sg_err_bad_gateway(w->err, "backend '%s': %s %s%s%s%s", w->backend, path_text(w, path), msg,
	                   w->note ? " (" : "", w->note ? w->note : "", w->note ? ")" : "");
	return N_BAD;
}

/* A value newer than this SDK (a string outside an enum, an unknown union type). */
__attribute__((format(printf, 2, 3))) static int unknown(struct walk *w, const char *fmt, ...)
{
	char msg[N_WHAT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return remember(w, msg);
}

static int oom(struct walk *w)
{
	sg_err_oom(w->err, w->backend);
	return N_BAD;
}

/* Whether an object key (klen bytes, may hold NULs) is the C string name. */
static int key_is(const char *name, const char *key, size_t klen)
{
	return strlen(name) == klen && !memcmp(name, key, klen);
}

/* Sets o[key] to the string name, unless it already is exactly that (no allocation then). */
static int set_name(json_t *o, const char *key, const char *name)
{
	const json_t *v = json_object_get(o, key);

	if (json_is_string(v) && json_string_length(v) == strlen(name) &&
	    !strcmp(json_string_value(v), name))
		return 0;
	return json_object_set_new_nocheck(o, key, json_string_nocheck(name));
}

/* Taking: deletes the keys of o that neither `fields` (may be NULL) nor `keep` (NULL-terminated,
 * may be NULL) names. `named` is how many named keys o holds, so that an object without other
 * keys, the usual case, is not scanned. */
static void drop_rest(const struct field *fields, const char *const *keep, json_t *o, size_t named)
{
	const struct field *f;
	const char *const *k;
	const char *key;
	size_t klen;
	json_t *v;
	void *tmp;

	if (json_object_size(o) <= named)
		return;
	json_object_keylen_foreach_safe(o, tmp, key, klen, v)
	{
		for (f = fields; f && f->key && !key_is(f->key, key, klen); f++)
			;
		if (f && f->key)
			continue;
		for (k = keep; k && *k && !key_is(*k, key, klen); k++)
			;
		if (!(k && *k))
			json_object_deln(o, key, klen);
	}
}

static int conv(const struct shape *sh, const json_t *in, json_t **out, struct walk *w);

/* The JSON text of a documented empty value as a new value, without a parser for the forms the
 * tables use (null, [], {}, 0, a string without escapes, {"type":"…"}), since a listing fills
 * several per session; anything else is parsed. NULL when out of memory. */
static json_t *empty_value(const char *text)
{
	static const char type_open[] = "{\"type\":\"";
	size_t n = strlen(text);
	json_t *o;

	if (!strcmp(text, "null"))
		return json_null();
	if (!strcmp(text, "[]"))
		return json_array();
	if (!strcmp(text, "{}"))
		return json_object();
	if (!strcmp(text, "0"))
		return json_integer(0);
	if (n >= 2 && text[0] == '"' && !strchr(text, '\\'))
		return json_stringn(text + 1, n - 2);
	if (n > sizeof(type_open) + 1 && !strncmp(text, type_open, sizeof(type_open) - 1) &&
	    !strcmp(text + n - 2, "\"}") && !strchr(text + sizeof(type_open) - 1, '\\')) {
		o = json_object();
		if (o &&
		    json_object_set_new_nocheck(o, "type",
		                                json_stringn(text + sizeof(type_open) - 1,
		                                             n - 2 - (sizeof(type_open) - 1)))) {
			json_decref(o);
			return NULL;
		}
		return o;
	}
	return json_loads(text, JSON_DECODE_ANY, NULL);
}

/* The documented empty value of a required key, itself normalised by the key's shape (an
 * empty model_usage is four zero counts). The value is fresh, so it is normalised in place in
 * either mode. Returns a new reference in *out. */
static int fill(const struct field *f, json_t **out, struct walk *w)
{
	json_t *d = empty_value(f->dflt);
	int rc, take = w->take;

	if (!d)
		return oom(w);
	if (json_is_null(d)) {
		*out = d;
		return N_OK;
	}
	w->take = 1;
	rc = conv(f->shape, d, out, w);
	w->take = take;
	json_decref(d);
	return rc;
}

/* Converts the keys of `fields` from object `in` (borrowed) into `out` (modified). When taking,
 * out is in itself: a key left out is deleted, and a value converted in place is not set again.
 * Keys not in `fields` are not looked at. *named (may be NULL) receives how many keys of
 * `fields` out holds afterwards. */
static int conv_fields(const struct field *f, const json_t *in, json_t *out, size_t *named,
                       struct walk *w)
{
	size_t n = 0;

	for (; f && f->key; f++) {
		json_t *v = json_object_get(in, f->key);
		size_t mark = path_push(w, f->key, 0);
		json_t *nv = NULL;
		int rc = N_OK;

		if (json_is_null(v) && (f->flags & N_NULL)) {
			nv = json_null();
		} else if (!v || json_is_null(v)) {
			if (!(f->flags & N_REQ)) {
				if (v && w->take)
					json_object_del(out, f->key);
				path_pop(w, mark);
				continue;
			}
			if (!f->dflt)
				return wrong(w, v ? "is null" : "is missing");
			rc = fill(f, &nv, w);
			if (rc != N_OK)
				return rc;
		} else {
			rc = conv(f->shape, v, &nv, w);
			if (rc == N_BAD)
				return N_BAD;
			if (rc == N_UNKNOWN) {
				if (f->flags & N_REQ && !(f->flags & N_NULL))
					return N_UNKNOWN; /* the parent cannot exist without it */
				if (!(f->flags & N_NULL)) {
					if (w->take)
						json_object_del(out, f->key);
					path_pop(w, mark);
					continue;
				}
				nv = json_null();
			}
		}
		path_pop(w, mark);
		n++;
		if (w->take && nv == v) {
			json_decref(nv); /* converted in place */
			continue;
		}
		if (!nv || json_object_set_new_nocheck(out, f->key, nv))
			return oom(w);
	}
	if (named)
		*named = n;
	return N_OK;
}

static const struct variant *find_variant(const struct variant *v, const char *name)
{
	for (; v->name; v++) {
		if (!strcmp(v->name, name))
			return v;
	}
	return NULL;
}

/* An object discriminated by `type`. A union with a single variant implies it when `type`
 * is absent (the agent snapshot, a budget, an outcome evaluation). */
static int conv_union(const struct shape *sh, const json_t *in, json_t **out, struct walk *w)
{
	const char *keep[3] = {"type", sh->alt_key, NULL};
	const struct variant *v = NULL;
	const json_t *t;
	size_t mark, named = 0;
	json_t *o;
	int rc;

	if (!json_is_object(in))
		return wrong(w, "is not an object");
	t = json_object_get(in, "type");
	if ((!t || json_is_null(t)) && sh->alt_key)
		t = json_object_get(in, sh->alt_key);
	if ((!t || json_is_null(t)) && !sh->variants[1].name) {
		v = &sh->variants[0];
	} else if (!json_is_string(t)) {
		return wrong(w, "has no string 'type'");
	} else {
		v = find_variant(sh->variants, json_string_value(t));
		if (!v && sh->fallback)
			v = find_variant(sh->variants, sh->fallback);
		if (!v) {
			mark = path_push(w, "type", 0);
			rc = unknown(w, "'%.*s' is not known to the SDK",
			             sg_utf8_cut(json_string_value(t), N_QUOTE_MAX),
			             json_string_value(t));
			path_pop(w, mark);
			return rc;
		}
	}
	o = w->take ? json_incref((json_t *)in) : json_object();
	if (!o || set_name(o, "type", v->name) ||
	    (sh->alt_key && set_name(o, sh->alt_key, v->name))) {
		json_decref(o);
		return oom(w);
	}
	rc = conv_fields(v->fields, in, o, &named, w);
	if (rc != N_OK) {
		json_decref(o);
		return rc;
	}
	if (w->take)
		drop_rest(v->fields, keep, o, named + (sh->alt_key ? 2 : 1));
	*out = o;
	return N_OK;
}

/* Array items and map values: an unknown one is dropped, a wrong one fails the whole. When
 * taking, the container is `in` itself, edited in place. */
static int conv_items(const struct shape *sh, const json_t *in, json_t **out, struct walk *w)
{
	json_t *o = w->take             ? json_incref((json_t *)in)
	            : sh->kind == N_ARR ? json_array()
	                                : json_object();
	const char *key;
	size_t i, at, klen;
	json_t *v, *nv;
	void *tmp;
	int rc;

	if (!o)
		return oom(w);
	if (sh->kind == N_ARR) {
		/* `at` reads `in`, which shrinks under it when an item is dropped in place; `i`
		 * is the item's index as the caller sent it, for messages. */
		for (i = 0, at = 0; at < json_array_size(in); i++) {
			size_t mark = path_push(w, NULL, i);

			v = json_array_get(in, at);
			rc = conv(sh->item, v, &nv, w);
			path_pop(w, mark);
			if (rc == N_BAD)
				goto fail;
			if (rc == N_UNKNOWN && w->take) {
				json_array_remove(o, at);
				continue;
			}
			at++;
			if (rc == N_UNKNOWN)
				continue;
			if (w->take && nv == v)
				json_decref(nv);
			else if (w->take ? json_array_set_new(o, at - 1, nv)
			                 : json_array_append_new(o, nv))
				goto nomem;
		}
	} else {
		json_object_keylen_foreach_safe((json_t *)in, tmp, key, klen, v)
		{
			size_t mark = path_push(w, key, 0);

			rc = conv(sh->item, v, &nv, w);
			path_pop(w, mark);
			if (rc == N_BAD)
				goto fail;
			if (rc == N_UNKNOWN) {
				if (w->take)
					json_object_deln(o, key, klen);
				continue;
			}
			if (w->take && nv == v)
				json_decref(nv);
			else if (json_object_setn_new(o, key, klen, nv))
				goto nomem;
		}
	}
	*out = o;
	return N_OK;
nomem:
	oom(w);
fail:
	json_decref(o);
	return N_BAD;
}

/* Whether s (n bytes) is spelled exactly as sg_time_format writes: "YYYY-MM-DDTHH:MM:SSZ", or
 * with ".ffffff" (not all zeros) before the Z, and no leap second (read as :59). Such a string
 * that parses is its own canonical form, so it need not be formatted again. */
static int canonical_time(const char *s, size_t n)
{
	static const char pattern[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
	size_t i, end = n == 20 ? 19 : 26;

	if ((n != 20 && n != 27) || s[n - 1] != 'Z' || !strncmp(s + 17, "60", 2) ||
	    (n == 27 && !strncmp(s + 20, "000000", 6)))
		return 0;
	for (i = 0; i < end; i++) {
		if (pattern[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != pattern[i])
			return 0;
	}
	return 1;
}

/* Re-formats an RFC 3339 timestamp. Returns a new string in *out; when taking, `in` itself if
 * it is already in the canonical form. */
static int conv_time(const json_t *in, json_t **out, struct walk *w)
{
	char buf[SG_TIME_BUFSZ];
	const char *s = json_string_value(in);
	size_t n = json_string_length(in);
	int64_t us;

	if (!s)
		return wrong(w, "is not a string");
	if (strlen(s) != n || sg_time_parse_rfc3339(s, &us))
		return wrong(w, "'%.*s' is not an RFC 3339 timestamp", sg_utf8_cut(s, N_QUOTE_MAX),
		             s);
	if (canonical_time(s, n)) {
		*out = w->take ? json_incref((json_t *)in) : json_stringn_nocheck(s, n);
		return *out ? N_OK : oom(w);
	}
	if (sg_time_format(us, buf, sizeof(buf)) < 0)
		return wrong(w, "'%.*s' is out of range", sg_utf8_cut(s, N_QUOTE_MAX), s);
	*out = json_string_nocheck(buf);
	return *out ? N_OK : oom(w);
}

/* Copies the keys of `in` that `fields` does not name into `out`, as they are. */
static int copy_rest(const struct field *fields, const json_t *in, json_t *out, struct walk *w)
{
	const struct field *f;
	const char *key;
	size_t klen;
	json_t *v;

	json_object_keylen_foreach((json_t *)in, key, klen, v) {
		for (f = fields; f->key && !key_is(f->key, key, klen); f++)
			;
		if (!f->key && json_object_setn_new(out, key, klen, json_deep_copy(v)))
			return oom(w);
	}
	return N_OK;
}

/* Converts `in` (borrowed, not null unless the shape is N_ANY) by shape into *out (new; when
 * taking, `in` itself where it could be kept). */
static int conv(const struct shape *sh, const json_t *in, json_t **out, struct walk *w)
{
	const char *const *val;
	size_t named = 0;
	json_t *o;
	int rc;

	switch (sh->kind) {
	case N_ANY:
		break;
	case N_STR:
		if (!json_is_string(in))
			return wrong(w, "is not a string");
		if (!sh->values)
			break;
		for (val = sh->values; *val; val++) {
			if (!strcmp(*val, json_string_value(in)) &&
			    strlen(*val) == json_string_length(in))
				break;
		}
		if (!*val)
			return unknown(w, "'%.*s' is not one of the SDK's values",
			               sg_utf8_cut(json_string_value(in), N_QUOTE_MAX),
			               json_string_value(in));
		break;
	case N_NUM:
		if (!json_is_number(in))
			return wrong(w, "is not a number");
		break;
	case N_BOOL:
		if (!json_is_boolean(in))
			return wrong(w, "is not a boolean");
		break;
	case N_TIME:
		return conv_time(in, out, w);
	case N_OBJ:
		if (!json_is_object(in))
			return wrong(w, "is not an object");
		o = w->take ? json_incref((json_t *)in) : json_object();
		if (!o)
			return oom(w);
		/* An object whose required key is unknown is unknown itself. */
		rc = conv_fields(sh->fields, in, o, &named, w);
		if (rc == N_OK && sh->open && !w->take)
			rc = copy_rest(sh->fields, in, o, w);
		if (rc == N_OK && !sh->open && w->take)
			drop_rest(sh->fields, NULL, o, named);
		if (rc != N_OK) {
			json_decref(o);
			return rc;
		}
		*out = o;
		return N_OK;
	case N_MAP:
		if (!json_is_object(in))
			return wrong(w, "is not an object");
		return conv_items(sh, in, out, w);
	case N_ARR:
		if (!json_is_array(in))
			return wrong(w, "is not an array");
		return conv_items(sh, in, out, w);
	case N_UNION:
		return conv_union(sh, in, out, w);
	}
	/* A copy, not a shared reference: the caller owns the answer and may change it. Taken
	 * input is the caller's own already, and a scalar is never changed in place. */
	*out = w->take ? json_incref((json_t *)in) : json_deep_copy(in);
	return *out ? N_OK : oom(w);
}

/* One event (borrowed; edited in place when taking) → *out (new), or N_UNKNOWN when the SDK
 * has no type for it. */
static int event_to_cma(const json_t *ev, json_t **out, struct walk *w)
{
	static const char *const envelope[] = {"id", "type", "processed_at", NULL};
	const struct event_type *et = NULL;
	const json_t *type, *id, *pa;
	json_t *o, *v = NULL;
	size_t i, mark, named = 0;
	int rc;

	if (!json_is_object(ev))
		return wrong(w, "is not an object");
	type = json_object_get(ev, "type");
	if (!json_is_string(type)) {
		path_push(w, "type", 0);
		return wrong(w, "is missing or not a string");
	}
	for (i = 0; i < sizeof(event_types) / sizeof(event_types[0]); i++) {
		if (!strcmp(event_types[i].type, json_string_value(type))) {
			et = &event_types[i];
			break;
		}
	}
	if (!et)
		return N_UNKNOWN; /* the SDK's union is closed */
	w->note = et->type;
	id = json_object_get(ev, "id");
	if (!json_is_string(id)) {
		path_push(w, "id", 0);
		return wrong(w, "is missing or not a string");
	}
	o = w->take ? json_incref((json_t *)ev) : json_object();
	if (!o || (!w->take && json_object_set_new_nocheck(o, "id", json_deep_copy(id))) ||
	    set_name(o, "type", et->type))
		goto nomem;
	mark = path_push(w, "processed_at", 0);
	pa = json_object_get(ev, "processed_at");
	if (!pa || json_is_null(pa)) {
		/* Absent or null means "still queued" where the type allows it. */
		if (et->processed_at == PA_REQ) {
			rc = wrong(w, "is missing or null");
			goto fail;
		}
		if (pa && !w->take && json_object_set_new_nocheck(o, "processed_at", json_null()))
			goto nomem;
	} else {
		rc = conv_time(pa, &v, w);
		if (rc != N_OK)
			goto fail;
		if (w->take && v == pa)
			json_decref(v);
		else if (json_object_set_new_nocheck(o, "processed_at", v))
			goto nomem;
	}
	path_pop(w, mark);
	rc = conv_fields(et->fields, ev, o, &named, w);
	if (rc != N_OK)
		goto fail;
	if (w->take)
		drop_rest(et->fields, envelope, o, named + (pa ? 3 : 2));
	*out = o;
	return N_OK;
nomem:
	rc = oom(w);
fail:
	json_decref(o);
	return rc;
}

/* ---- Public functions ---- */

/* Starts a walk at `where`. A missing backend name is the caller's bug: 500. */
static int walk_init(struct walk *w, const char *backend, const char *where, unsigned flags,
                     int take, struct sg_error *err)
{
	if (!backend)
		return sg_err_internal(err, "north normalisation called without a backend name");
	w->backend = backend;
	w->lenient = (flags & SG_NORTH_LENIENT) != 0;
	w->take = take;
	w->err = err;
	w->note = NULL;
	w->why[0] = '\0';
	w->where = where ? where : "";
	w->depth = 0;
	return 0;
}

/* Nothing above a session or an agent can absorb a part of it this SDK cannot express: the
 * answer fails rather than misstating it. */
static void unknown_root(struct walk *w)
{
	sg_err_bad_gateway(w->err, "backend '%s': %s", w->backend, w->why);
}

/* Both agent functions: `in` is borrowed, and edited in place when taking. */
static json_t *north_agent(const json_t *in, const char *backend, const char *where, unsigned flags,
                           int take, struct sg_error *err)
{
	struct walk w;
	json_t *out = NULL;
	int rc;

	if (walk_init(&w, backend, where, flags, take, err))
		return NULL;
	rc = conv(&U_SESSION_AGENT, in, &out, &w);
	if (rc == N_OK)
		return out;
	if (rc == N_UNKNOWN)
		unknown_root(&w);
	return NULL;
}

json_t *sg_north_agent(const json_t *in, const char *backend, const char *where, unsigned flags,
                       struct sg_error *err)
{
	return north_agent(in, backend, where, flags, 0, err);
}

json_t *sg_north_agent_take(json_t *in, const char *backend, const char *where, unsigned flags,
                            struct sg_error *err)
{
	json_t *out = north_agent(in, backend, where, flags, 1, err);

	json_decref(in); /* the answer, when there is one, holds its own reference */
	return out;
}

/* Both full agent functions: `in` is borrowed, and edited in place when taking. */
static json_t *north_full_agent(const json_t *in, const char *backend, const char *where,
                                unsigned flags, int take, struct sg_error *err)
{
	struct walk w;
	json_t *out = NULL;
	int rc;

	if (walk_init(&w, backend, where, flags, take, err))
		return NULL;
	rc = conv(&U_AGENT, in, &out, &w);
	if (rc == N_UNKNOWN)
		unknown_root(&w);
	if (rc != N_OK)
		return NULL;
	if (!json_object_get(out, "updated_at") &&
	    json_object_set(out, "updated_at", json_object_get(out, "created_at"))) {
		json_decref(out);
		oom(&w);
		return NULL;
	}
	return out;
}

json_t *sg_north_full_agent(const json_t *in, const char *backend, const char *where,
                            unsigned flags, struct sg_error *err)
{
	return north_full_agent(in, backend, where, flags, 0, err);
}

json_t *sg_north_full_agent_take(json_t *in, const char *backend, const char *where, unsigned flags,
                                 struct sg_error *err)
{
	json_t *out = north_full_agent(in, backend, where, flags, 1, err);

	json_decref(in);
	return out;
}

/* Both session functions: `in` is borrowed, and edited in place when taking (then its own `id`
 * is kept and `id` is not read). */
static json_t *north_session(const json_t *in, const char *id, const char *backend,
                             const char *where, unsigned flags, int take, struct sg_error *err)
{
	static const char *const keep[] = {"id", NULL};
	struct walk w;
	json_t *out = NULL;
	size_t named = 0;
	int rc;

	if (walk_init(&w, backend, where, flags, take, err))
		return NULL;
	if (!json_is_object(in)) {
		rc = wrong(&w, "is not an object");
		goto fail;
	}
	if (take && !json_is_string(json_object_get(in, "id"))) {
		path_push(&w, "id", 0);
		rc = wrong(&w, "is missing or not a string");
		goto fail;
	}
	out = take ? json_incref((json_t *)in) : json_object();
	if (!out || (!take && id && json_object_set_new_nocheck(out, "id", json_string(id)))) {
		rc = oom(&w);
		goto fail;
	}
	rc = conv_fields(F_SESSION, in, out, &named, &w);
	if (rc != N_OK)
		goto fail;
	if (!json_object_get(out, "updated_at")) {
		if (json_object_set(out, "updated_at", json_object_get(out, "created_at"))) {
			rc = oom(&w);
			goto fail;
		}
		named++;
	}
	if (take)
		drop_rest(F_SESSION, keep, out, named + 1);
	return out;
fail:
	if (rc == N_UNKNOWN)
		unknown_root(&w);
	json_decref(out);
	return NULL;
}

json_t *sg_north_session(const json_t *in, const char *id, const char *backend, const char *where,
                         unsigned flags, struct sg_error *err)
{
	return north_session(in, id, backend, where, flags, 0, err);
}

json_t *sg_north_session_take(json_t *in, const char *backend, const char *where, unsigned flags,
                              struct sg_error *err)
{
	json_t *out = north_session(in, NULL, backend, where, flags, 1, err);

	json_decref(in);
	return out;
}

/* Both event functions: `in` is borrowed, and edited in place when taking. */
static int north_event(const json_t *in, const char *backend, const char *where, unsigned flags,
                       int take, json_t **out, struct sg_error *err)
{
	struct walk w;
	int rc;

	*out = NULL;
	if (walk_init(&w, backend, where, flags, take, err))
		return -1;
	rc = event_to_cma(in, out, &w);
	if (rc == N_BAD)
		return -1;
	/* An event whose type, or a required part of it, is newer than the SDK has no shape a
	 * client could parse: it is left out. */
	return rc == N_UNKNOWN ? SG_NORTH_DROPPED : SG_NORTH_KEPT;
}

int sg_north_event(const json_t *in, const char *backend, const char *where, unsigned flags,
                   json_t **out, struct sg_error *err)
{
	return north_event(in, backend, where, flags, 0, out, err);
}

int sg_north_event_take(json_t *in, const char *backend, const char *where, unsigned flags,
                        json_t **out, struct sg_error *err)
{
	int rc = north_event(in, backend, where, flags, 1, out, err);

	json_decref(in);
	return rc;
}

int sg_north_page_parts(const json_t *body, const char *backend, const json_t **data,
                        const char **next, struct sg_error *err)
{
	const json_t *d, *n;

	if (!backend)
		return sg_err_internal(err, "list body split without a backend name");
	if (!json_is_object(body))
		return sg_err_backend(err, backend, "", "list body is not a JSON object");
	d = json_object_get(body, "data");
	if (!json_is_array(d))
		return sg_err_backend(err, backend, "", "list body has no 'data' array");
	if (json_array_size(d) > SG_NORTH_PAGE_MAX)
		return sg_err_backend(err, backend, "",
		                      "list body has %zu items, more than the limit of %d",
		                      json_array_size(d), SG_NORTH_PAGE_MAX);
	n = json_object_get(body, "next_page");
	/* The SDK reads absent, null and "" alike as "no more pages". */
	if (sg_jpresent(n) && !json_is_string(n))
		return sg_err_backend(err, backend, "", "list body's next_page is not a string");
	if (sg_jhas_nul(n))
		return sg_err_backend(err, backend, "",
		                      "list body's next_page contains a NUL byte");
	*data = d;
	*next = json_string_length(n) ? json_string_value(n) : NULL;
	return 0;
}
