/* agentscope_translate.c - AgentScope SessionView → north Session; see agentscope_translate.h.
 *
 * Accepts both listing shapes: v2.0.1 (no `status`, reply_id/cur_iter at the top of `state`,
 * full `state.context`) and newer builds (`status`, `reply_context`, context cleared in the
 * listing). Only the keys derived from AgentScope's records are built here; the core's
 * normaliser (src/north.h, sg_north_session_take) fills the documented empty values of the rest
 * and holds the result to the SDK's Session type. Every rule here is written down in
 * docs/fidelity-agentscope.md; change both together. Nothing in this file does I/O, reads the
 * clock or keeps state. */
#include "agentscope_translate.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idcodec.h"
#include "jsonx.h"
#include "north.h"
#include "timeutil.h"

#define AS_MAX_SESSIONS 100000 /* items in one listing; more is refused, not truncated */
#define AS_MAX_AGENTS 100000   /* items in one GET /agent/ body */
#define AS_QUOTE_MAX 64        /* bytes of a backend value quoted in an error message */
#define AS_WHERE_MAX 48        /* "sessions[99999]: " and the like */
#define AS_PATH_MAX 32         /* "sessions[99999]", the normaliser's `where` */

/* The derived view of one session that several north fields depend on. */
struct as_facts {
	const char *agent_name; /* AgentView.data.name, NULL when unknown */
	const char *fine;       /* the backend's fine status: running, idle, awaiting_… */
	int running;            /* north status is "running" */
	int carried;            /* the listing carries state.context (v2.0.1 shape) */
	int64_t in, out, cache_read, cache_create;
	int64_t active_us;
};

/* Sets a 502 naming the backend (see sg_err_backend). Always returns -1. */
__attribute__((format(printf, 4, 5))) static int
bad(struct sg_error *err, const struct sg_as_ctx *ctx, const char *where, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sg_err_vbackend(err, ctx->backend, where, fmt, ap);
	va_end(ap);
	return -1;
}

/* Reads a required, non-empty, NUL-free string field of an id kind. Returns the borrowed
 * string or NULL with a 502. */
static const char *need_id(const json_t *obj, const char *key, const char *what,
                           const struct sg_as_ctx *ctx, const char *where, struct sg_error *err)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_string(v)) {
		bad(err, ctx, where, "%s is missing or not a string", what);
		return NULL;
	}
	if (!sg_jis_id(v)) {
		bad(err, ctx, where, "%s is empty or contains a NUL byte", what);
		return NULL;
	}
	return json_string_value(v);
}

/* Parses a backend timestamp (naive local time in ctx->tz, or with its own Z/offset). */
static int parse_time(const json_t *v, const struct sg_as_ctx *ctx, int64_t *us)
{
	const char *s = json_string_value(v);

	if (!s || sg_jhas_nul(v))
		return -1;
	return sg_time_parse_local(s, ctx->tz, us);
}

/* Reads a record timestamp (session.created_at / updated_at); a record whose times cannot
 * be read cannot be placed in time, so it fails the translation. */
static int record_time(const json_t *session, const char *key, const struct sg_as_ctx *ctx,
                       const char *where, int64_t *us, struct sg_error *err)
{
	const json_t *v = json_object_get(session, key);

	if (!json_is_string(v))
		return bad(err, ctx, where, "session.%s is missing or not a string", key);
	if (parse_time(v, ctx, us))
		return bad(err, ctx, where, "session.%s '%.*s' is not a timestamp", key,
		           sg_utf8_cut(json_string_value(v), AS_QUOTE_MAX), json_string_value(v));
	return 0;
}

/* Formats us as RFC 3339 UTC. Returns a new string, or NULL with a 502 (out of range) or a
 * 500 (out of memory). */
static json_t *time_json(int64_t us, const char *key, const struct sg_as_ctx *ctx,
                         const char *where, struct sg_error *err)
{
	json_t *s;

	if (sg_jtime(us, &s) < 0)
		bad(err, ctx, where, "session.%s is out of range", key);
	else if (!s)
		sg_err_oom(err, ctx->backend);
	return s;
}

/* Role of a context message. `role` is required in every 2.x build; when a payload lacks
 * it anyway, the sender's name and the kinds of blocks tell assistant from user. */
static int is_assistant(const json_t *msg, const char *agent_name)
{
	const char *role = sg_jstr(msg, "role");
	const char *name = sg_jstr(msg, "name");
	const json_t *block;
	size_t i;

	if (role)
		return strcmp(role, "assistant") == 0;
	if (agent_name && name && strcmp(name, agent_name) == 0)
		return 1;
	json_array_foreach(json_object_get(msg, "content"), i, block) {
		const char *type = sg_jstr(block, "type");

		if (type && (!strcmp(type, "tool_call") || !strcmp(type, "tool_result") ||
		             !strcmp(type, "thinking") || !strcmp(type, "hint")))
			return 1;
	}
	return 0;
}

/* The parked status the newer server computes, recomputed from a v2.0.1 context: only the
 * tail assistant message can be parked, and waiting for permission dominates waiting for
 * an external result. */
static const char *parked_status(const json_t *context, const char *agent_name)
{
	const json_t *tail, *block;
	int asking = 0, submitted = 0;
	size_t n = json_array_size(context), i;

	if (n == 0)
		return "idle";
	tail = json_array_get(context, n - 1);
	if (!json_is_object(tail) || !is_assistant(tail, agent_name))
		return "idle";
	json_array_foreach(json_object_get(tail, "content"), i, block) {
		const char *state = sg_jstr(block, "state");
		const char *type = sg_jstr(block, "type");

		if (!type || strcmp(type, "tool_call") || !state)
			continue;
		asking |= !strcmp(state, "asking");
		submitted |= !strcmp(state, "submitted");
	}
	if (asking)
		return "awaiting_permission";
	return submitted ? "awaiting_external_result" : "idle";
}

/* A token count as the backend wrote it; anything that is not a non-negative number counts
 * as 0 (missing counts as 0 by the mapping rule; garbage is not worth failing a listing). */
static int64_t count_of(const json_t *v)
{
	double d;

	if (json_is_integer(v))
		return json_integer_value(v) > 0 ? (int64_t)json_integer_value(v) : 0;
	if (!json_is_real(v))
		return 0;
	d = json_real_value(v);
	if (!(d > 0))
		return 0;
	return d >= 9.2e18 ? INT64_MAX : (int64_t)d;
}

static int64_t sat_add(int64_t a, int64_t b)
{
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* Sums usage and active time over a carried context. Message timestamps that do not parse
 * (the seed's "<string>") leave that message out of active_seconds instead of failing. */
static void scan_context(const json_t *context, const struct sg_as_ctx *ctx, struct as_facts *f)
{
	const json_t *msg;
	size_t i;

	json_array_foreach(context, i, msg) {
		const json_t *u = json_object_get(msg, "usage");
		int64_t c, e;

		if (!json_is_object(msg))
			continue;
		f->in = sat_add(f->in, count_of(json_object_get(u, "input_tokens")));
		f->out = sat_add(f->out, count_of(json_object_get(u, "output_tokens")));
		f->cache_read =
		    sat_add(f->cache_read, count_of(json_object_get(u, "cache_input_tokens")));
		f->cache_create = sat_add(
		    f->cache_create, count_of(json_object_get(u, "cache_creation_input_tokens")));
		if (!is_assistant(msg, f->agent_name))
			continue;
		if (parse_time(json_object_get(msg, "created_at"), ctx, &c) ||
		    parse_time(json_object_get(msg, "finished_at"), ctx, &e) || e <= c)
			continue;
		f->active_us = sat_add(f->active_us, e - c);
	}
}

/* Derives status, running and (for v2.0.1) the context sums. */
static void derive_facts(const json_t *view, const json_t *session, const json_t *agent,
                         const struct sg_as_ctx *ctx, struct as_facts *f)
{
	const json_t *state = json_object_get(session, "state");
	const json_t *context = json_object_get(state, "context");
	const char *status = sg_jstr(view, "status");

	memset(f, 0, sizeof(*f));
	f->agent_name = sg_jstr(json_object_get(agent, "data"), "name");
	if (status) {
		/* Newer build: the server computed the fine status; the listing's context is
		 * cleared, so usage and active time are unknown here. */
		f->fine = status;
		f->running = !strcmp(status, "running");
		return;
	}
	f->carried = json_is_array(context);
	f->running = json_is_true(json_object_get(view, "is_running"));
	f->fine = f->running ? "running" : parked_status(context, f->agent_name);
	if (f->carried)
		scan_context(context, ctx, f);
}

/* Copies obj[key] into meta[name] when it is a string; absent, null and other types are
 * omitted (north metadata is string→string). Returns 0 or -1 on allocation failure. */
static int meta_copy(json_t *meta, const char *name, const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		return 0;
	return json_object_set_new_nocheck(meta, name, sg_jstr_copy(v));
}

/* This file builds objects on the path that translates whole listings, so it sets keys it
 * spells itself without jansson's UTF-8 check (json_object_set_new_nocheck), and strings that
 * came out of jansson, which holds only valid UTF-8, without checking them again. */

/* Builds the metadata map. Returns a new object, or NULL when out of memory. */
static json_t *build_metadata(const json_t *session, const struct as_facts *f)
{
	const json_t *config = json_object_get(session, "config");
	const json_t *state = json_object_get(session, "state");
	json_t *meta = json_object();
	const char *usage = "unavailable";
	int rc = 0;

	if (!meta)
		return NULL;
	if (f->carried) {
		const json_t *summary = json_object_get(state, "summary");
		int compressed = json_is_string(summary) ? json_string_length(summary) > 0
		                                         : json_array_size(summary) > 0;

		usage = compressed ? "context_partial" : "context";
	}
	rc |= meta_copy(meta, "agentscope.user_id", session, "user_id");
	rc |= meta_copy(meta, "agentscope.source", session, "source");
	rc |= meta_copy(meta, "agentscope.source_schedule_id", session, "source_schedule_id");
	rc |= meta_copy(meta, "agentscope.source_chat_id", session, "source_chat_id");
	rc |= meta_copy(meta, "agentscope.source_channel_id", session, "source_channel_id");
	rc |= meta_copy(meta, "agentscope.team_id", session, "team_id");
	rc |= meta_copy(meta, "agentscope.workspace_id", config, "workspace_id");
	rc |= meta_copy(meta, "agentscope.cwd", config, "cwd");
	rc |= meta_copy(meta, "agentscope.permission_mode",
	                json_object_get(state, "permission_context"), "mode");
	rc |= meta_copy(meta, "agentscope.model_type", json_object_get(config, "chat_model_config"),
	                "type");
	rc |= meta_copy(meta, "agentscope.fallback_model",
	                json_object_get(config, "fallback_chat_model_config"), "model");
	rc |= json_object_set_new_nocheck(meta, "agentscope.status", json_string_nocheck(f->fine));
	rc |= json_object_set_new_nocheck(meta, "agentscope.usage", json_string_nocheck(usage));
	if (rc) {
		json_decref(meta);
		return NULL;
	}
	return meta;
}

/* Builds the agent snapshot from what AgentScope has: an id, a name, a system prompt, and the
 * session's model (an AgentScope agent has none of its own). Its version is 1; the core fills
 * the documented empty values of the rest (no tools, skills or MCP servers, service account).
 * `agent` is borrowed and may be NULL. Returns a new object, or NULL when out of memory. */
static json_t *build_agent(const char *agent_id, const json_t *agent, const json_t *session)
{
	const json_t *data = json_object_get(agent, "data");
	const char *name = sg_jstr(data, "name"), *system = sg_jstr(data, "system_prompt");
	const char *model = sg_jstr(
	    json_object_get(json_object_get(session, "config"), "chat_model_config"), "model");
	json_t *a = json_object(), *m = json_object();
	int rc = 0;

	if (!name)
		name = agent_id;
	if (!model || !*model)
		model = "unknown";
	/* a failed set frees the value it was given, so nothing leaks when a or m is NULL */
	rc |= json_object_set_new_nocheck(m, "id", json_string_nocheck(model));
	rc |= json_object_set_new_nocheck(a, "model", m);
	rc |= json_object_set_new_nocheck(a, "id", json_string_nocheck(agent_id));
	rc |= json_object_set_new_nocheck(a, "name", json_string_nocheck(name));
	rc |= json_object_set_new_nocheck(a, "system",
	                                  system ? json_string_nocheck(system) : json_null());
	rc |= json_object_set_new_nocheck(a, "version", json_integer(1));
	if (rc) {
		json_decref(a);
		return NULL;
	}
	return a;
}

/* Sets usage to the context sums when the listing carries the context; otherwise the key is
 * left to the core, whose empty usage {} says "unknown" (every key is optional in the SDK
 * type, and an unknown count is not a zero count). Returns 0, or -1 when out of memory. */
static int set_usage(json_t *out, const struct as_facts *f)
{
	json_t *u, *cc;
	int rc = 0;

	if (!f->carried)
		return 0;
	u = json_object();
	cc = json_object();
	rc |= json_object_set_new_nocheck(cc, "ephemeral_5m_input_tokens",
	                                  json_integer((json_int_t)f->cache_create));
	rc |= json_object_set_new_nocheck(cc, "ephemeral_1h_input_tokens", json_integer(0));
	rc |= json_object_set_new_nocheck(u, "cache_creation", cc);
	rc |= json_object_set_new_nocheck(u, "input_tokens", json_integer((json_int_t)f->in));
	rc |= json_object_set_new_nocheck(u, "output_tokens", json_integer((json_int_t)f->out));
	rc |= json_object_set_new_nocheck(u, "cache_read_input_tokens",
	                                  json_integer((json_int_t)f->cache_read));
	rc |= json_object_set_new_nocheck(out, "usage", u);
	return rc ? -1 : 0;
}

/* Builds stats; seconds are JSON reals computed from whole microseconds. */
static json_t *build_stats(const struct as_facts *f, int64_t created, int64_t updated,
                           const struct sg_as_ctx *ctx)
{
	int64_t end = f->running ? ctx->now_us : updated;
	int64_t dur = end > created ? end - created : 0;
	json_t *stats = json_object();
	int rc =
	    json_object_set_new_nocheck(stats, "duration_seconds", json_real((double)dur / 1e6));

	if (f->carried)
		rc |= json_object_set_new_nocheck(stats, "active_seconds",
		                                  json_real((double)f->active_us / 1e6));
	if (rc) {
		json_decref(stats);
		return NULL;
	}
	return stats;
}

/* "env_" + workspace id, or "env_none" without one; any length. Returns a new string, or NULL
 * when out of memory. */
static json_t *build_environment(const json_t *session)
{
	const json_t *ws = json_object_get(json_object_get(session, "config"), "workspace_id");
	size_t n = json_string_length(ws);
	char buf[256], *p = buf;
	json_t *s;

	if (!sg_jis_id(ws))
		return json_string_nocheck("env_none");
	if (n > sizeof(buf) - 4 && !(p = malloc(n + 4)))
		return NULL;
	memcpy(p, "env_", 4);
	memcpy(p + 4, json_string_value(ws), n);
	s = json_stringn_nocheck(p, n + 4);
	if (p != buf)
		free(p);
	return s;
}

/* The body of sg_as_session_to_cma: builds the keys AgentScope's record gives and hands the
 * object to the core's normaliser. `where` locates the item in a listing for this file's
 * messages ("sessions[3]: ", or ""), `path` for the normaliser's ("sessions[3]", "session").
 * view and agent are borrowed; returns a new reference or NULL with err set. */
static json_t *translate(const json_t *view, const json_t *agent, const struct sg_as_ctx *ctx,
                         const char *where, const char *path, struct sg_error *err)
{
	const json_t *session, *title, *schedule;
	json_t *created_js = NULL, *updated_js = NULL;
	const char *sid, *aid, *source;
	char pubid[SG_ID_MAX];
	int64_t created, updated;
	struct as_facts f;
	json_t *out = NULL;
	int rc = 0;

	if (!json_is_object(view)) {
		bad(err, ctx, where, "session view is not an object");
		goto fail;
	}
	session = json_object_get(view, "session");
	if (!json_is_object(session)) {
		bad(err, ctx, where, "session view has no 'session' object");
		goto fail;
	}
	sid = need_id(session, "id", "session.id", ctx, where, err);
	if (!sid)
		goto fail;
	aid = need_id(session, "agent_id", "session.agent_id", ctx, where, err);
	if (!aid)
		goto fail;
	if (sg_id_encode("sesn_", ctx->backend, aid, sid, pubid, sizeof(pubid)) < 0) {
		bad(err, ctx, where,
		    "session id '%.*s' (%zu bytes) with agent id (%zu bytes) is too long for a "
		    "public id",
		    sg_utf8_cut(sid, AS_QUOTE_MAX), sid, strlen(sid), strlen(aid));
		goto fail;
	}
	if (record_time(session, "created_at", ctx, where, &created, err))
		goto fail;
	if (!sg_jpresent(json_object_get(session, "updated_at")))
		updated = created;
	else if (record_time(session, "updated_at", ctx, where, &updated, err))
		goto fail;

	derive_facts(view, session, agent, ctx, &f);
	source = sg_jstr(session, "source");

	created_js = time_json(created, "created_at", ctx, where, err);
	if (!created_js)
		goto fail;
	updated_js = time_json(updated, "updated_at", ctx, where, err);
	if (!updated_js)
		goto fail;
	out = json_object();
	if (!out)
		goto oom;
	rc |= json_object_set_new_nocheck(out, "id", json_string_nocheck(pubid));
	rc |= json_object_set_new_nocheck(out, "status",
	                                  json_string_nocheck(f.running ? "running" : "idle"));
	title = json_object_get(json_object_get(session, "config"), "name");
	rc |= json_object_set_new_nocheck(
	    out, "title", json_is_string(title) ? sg_jstr_copy(title) : json_null());
	rc |= json_object_set_new_nocheck(out, "agent", build_agent(aid, agent, session));
	schedule = json_object_get(session, "source_schedule_id");
	rc |= json_object_set_new_nocheck(out, "deployment_id",
	                                  sg_streq(source, "schedule") && json_is_string(schedule)
	                                      ? sg_jstr_copy(schedule)
	                                      : json_null());
	rc |= json_object_set_new_nocheck(out, "created_at", created_js);
	created_js = NULL;
	rc |= json_object_set_new_nocheck(out, "updated_at", updated_js);
	updated_js = NULL;
	rc |= json_object_set_new_nocheck(out, "environment_id", build_environment(session));
	rc |= json_object_set_new_nocheck(out, "metadata", build_metadata(session, &f));
	rc |= json_object_set_new_nocheck(out, "stats", build_stats(&f, created, updated, ctx));
	rc |= set_usage(out, &f);
	if (rc)
		goto oom;
	/* Strict: every value above was checked or built here, so a value the SDK would not take
	 * is this file's bug, not a part to leave out. */
	return sg_north_session_take(out, ctx->backend, path, 0, err);
oom:
	sg_err_oom(err, ctx->backend);
fail:
	json_decref(created_js);
	json_decref(updated_js);
	json_decref(out);
	return NULL;
}

/* Refuses a context the translation cannot work with: a programming error, not the
 * backend's fault, hence a 500. */
static int check_ctx(const struct sg_as_ctx *ctx, struct sg_error *err)
{
	if (!ctx || !ctx->backend || !ctx->tz)
		return sg_err_internal(err, "agentscope translation called without a context");
	return 0;
}

json_t *sg_as_agents_index(const json_t *agents_body, const struct sg_as_ctx *ctx,
                           struct sg_error *err)
{
	const json_t *agents, *item;
	json_t *index = NULL;
	char where[AS_WHERE_MAX];
	size_t i;

	if (check_ctx(ctx, err))
		return NULL;
	if (!json_is_object(agents_body)) {
		bad(err, ctx, "", "agent listing is not a JSON object");
		goto fail;
	}
	agents = json_object_get(agents_body, "agents");
	if (!json_is_array(agents)) {
		bad(err, ctx, "", "agent listing has no 'agents' array");
		goto fail;
	}
	if (json_array_size(agents) > AS_MAX_AGENTS) {
		bad(err, ctx, "", "agent listing has %zu agents, more than the limit of %d",
		    json_array_size(agents), AS_MAX_AGENTS);
		goto fail;
	}
	index = json_object();
	if (!index)
		goto oom;
	json_array_foreach(agents, i, item) {
		const char *id;

		snprintf(where, sizeof(where), "agents[%zu]: ", i);
		if (!json_is_object(item)) {
			bad(err, ctx, where, "agent is not an object");
			goto fail;
		}
		id = need_id(item, "id", "agent id", ctx, where, err);
		if (!id)
			goto fail;
		/* The first of duplicate ids wins, as in a linear search of the body. */
		if (json_object_get(index, id))
			continue;
		if (json_object_set(index, id, (json_t *)item))
			goto oom;
	}
	return index;
oom:
	sg_err_oom(err, ctx->backend);
fail:
	json_decref(index);
	return NULL;
}

json_t *sg_as_session_to_cma(const json_t *view, const json_t *agent, const struct sg_as_ctx *ctx,
                             struct sg_error *err)
{
	if (check_ctx(ctx, err))
		return NULL;
	return translate(view, agent, ctx, "", "session", err);
}

int sg_as_listing_to_cma(const json_t *listing, const json_t *agents_index,
                         const struct sg_as_ctx *ctx, json_t *out, struct sg_error *err)
{
	const json_t *sessions, *view;
	char where[AS_WHERE_MAX], path[AS_PATH_MAX];
	size_t base = json_array_size(out), i;

	if (check_ctx(ctx, err))
		return -1;
	if (!json_is_array(out))
		return sg_err_internal(err, "agentscope listing translation needs an output array");
	if (!json_is_object(listing))
		return bad(err, ctx, "", "session listing is not a JSON object");
	sessions = json_object_get(listing, "sessions");
	if (!json_is_array(sessions))
		return bad(err, ctx, "", "session listing has no 'sessions' array");
	if (json_array_size(sessions) > AS_MAX_SESSIONS)
		return bad(err, ctx, "",
		           "session listing has %zu sessions, more than the limit of %d",
		           json_array_size(sessions), AS_MAX_SESSIONS);
	json_array_foreach(sessions, i, view) {
		const char *aid = sg_jstr(json_object_get(view, "session"), "agent_id");
		const json_t *agent = aid ? json_object_get(agents_index, aid) : NULL;
		json_t *s;

		snprintf(where, sizeof(where), "sessions[%zu]: ", i);
		snprintf(path, sizeof(path), "sessions[%zu]", i);
		s = translate(view, agent, ctx, where, path, err);
		if (!s)
			goto fail;
		if (json_array_append_new(out, s)) {
			sg_err_oom(err, ctx->backend);
			goto fail;
		}
	}
	return 0;
fail:
	/* Whole or nothing: take back what this call appended. */
	while (json_array_size(out) > base)
		json_array_remove(out, json_array_size(out) - 1);
	return -1;
}
