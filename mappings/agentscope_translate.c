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
#include <strings.h>

#include "agentscope_events.h"
#include "codec.h"
#include "jsonscan.h"
#include "idcodec.h"
#include "jsonx.h"
#include "north.h"
#include "options.h"
#include "timeutil.h"
#include "tz.h"

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
	int log;                /* usage from the message log: 1 whole, 2 part of it */
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

size_t sg_as_usage_add(struct sg_as_usage *u, const json_t *messages)
{
	const json_t *msg;
	size_t i;

	json_array_foreach(messages, i, msg) {
		const json_t *mu = json_object_get(msg, "usage");

		u->in = sat_add(u->in, count_of(json_object_get(mu, "input_tokens")));
		u->out = sat_add(u->out, count_of(json_object_get(mu, "output_tokens")));
		u->cache_read =
		    sat_add(u->cache_read, count_of(json_object_get(mu, "cache_input_tokens")));
		u->cache_create = sat_add(
		    u->cache_create, count_of(json_object_get(mu, "cache_creation_input_tokens")));
	}
	return json_array_size(messages);
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
	if (f->log)
		usage = f->log == 2 ? "messages_partial" : "messages";
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

	if (!f->carried && !f->log)
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
	if (ctx->log_usage) {
		struct sg_as_usage lu = {0};

		if (ctx->log_usage(ctx->log_usage_arg, session, f.running, &lu)) {
			f.log = lu.partial ? 2 : 1;
			f.in = lu.in;
			f.out = lu.out;
			f.cache_read = lu.cache_read;
			f.cache_create = lu.cache_create;
		}
	}
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

/* The text variant: one element parsed, translated and let go at a time. */
static int text_element(struct sg_as_listing_text *t, const char *el, size_t len, size_t i,
                        int (*emit)(void *arg, json_t *session), void *arg, struct sg_error *err)
{
	char where[AS_WHERE_MAX], path[AS_PATH_MAX];
	json_t *view, *s;
	const char *aid;

	if (i >= AS_MAX_SESSIONS)
		return bad(err, t->ctx, "",
		           "session listing has more sessions than the limit of %d",
		           AS_MAX_SESSIONS);
	view = json_loadb(el, len, JSON_DECODE_ANY, NULL);
	if (!view) {
		sg_error_set(err, 502, "api_error",
		             "backend '%s' answered something that is not JSON", t->ctx->backend);
		err->should_retry = 0;
		return -1;
	}
	aid = sg_jstr(json_object_get(view, "session"), "agent_id");
	snprintf(where, sizeof(where), "sessions[%zu]: ", i);
	snprintf(path, sizeof(path), "sessions[%zu]", i);
	s = translate(view, aid ? json_object_get(t->agents_index, aid) : NULL, t->ctx, where, path,
	              err);
	json_decref(view);
	if (!s)
		return -1;
	return emit(arg, s) ? -1 : 0;
}

static int scan_failed(int rc, const struct sg_as_ctx *ctx, struct sg_error *err)
{
	if (rc == SG_JSCAN_NOT_OBJECT)
		return bad(err, ctx, "", "session listing is not a JSON object");
	if (rc == SG_JSCAN_NO_ARRAY)
		return bad(err, ctx, "", "session listing has no 'sessions' array");
	sg_error_set(err, 502, "api_error", "backend '%s' answered something that is not JSON",
	             ctx->backend);
	err->should_retry = 0;
	return -1;
}

int sg_as_listing_text_begin(struct sg_as_listing_text *t, const char *text, size_t len,
                             const json_t *agents_index, const struct sg_as_ctx *ctx,
                             struct sg_error *err)
{
	int rc;

	memset(t, 0, sizeof(*t));
	t->agents_index = agents_index;
	t->ctx = ctx;
	if (check_ctx(ctx, err))
		return -1;
	rc = sg_jscan_begin(&t->js, text, len, "sessions");
	return rc ? scan_failed(rc, ctx, err) : 0;
}

int sg_as_listing_text_step(struct sg_as_listing_text *t, size_t max,
                            int (*emit)(void *arg, json_t *session), void *arg,
                            struct sg_error *err)
{
	const char *el;
	size_t len;

	for (size_t n = 0; n < max; n++) {
		int rc = sg_jscan_next(&t->js, &el, &len);

		if (rc == 0)
			return 0;
		if (rc < 0)
			return scan_failed(rc, t->ctx, err);
		if (text_element(t, el, len, t->js.index - 1, emit, arg, err))
			return -1;
	}
	return 1;
}

int sg_as_listing_text_each(const char *text, size_t len, const json_t *agents_index,
                            const struct sg_as_ctx *ctx, int (*emit)(void *arg, json_t *session),
                            void *arg, struct sg_error *err)
{
	struct sg_as_listing_text t;

	if (sg_as_listing_text_begin(&t, text, len, agents_index, ctx, err))
		return -1;
	return sg_as_listing_text_step(&t, SIZE_MAX, emit, arg, err) ? -1 : 0;
}

static int append_to(void *arg, json_t *session)
{
	return json_array_append_new(arg, session);
}

int sg_as_listing_text_to_cma(const char *text, size_t len, const json_t *agents_index,
                              const struct sg_as_ctx *ctx, json_t *out, struct sg_error *err)
{
	size_t base = json_array_size(out);

	if (!json_is_array(out))
		return sg_err_internal(err, "agentscope listing translation needs an output array");
	if (sg_as_listing_text_each(text, len, agents_index, ctx, append_to, out, err) == 0)
		return 0;
	if (!err->status)
		sg_err_oom(err, ctx->backend); /* append_to refused */
	/* whole or nothing */
	while (json_array_size(out) > base)
		json_array_remove(out, json_array_size(out) - 1);
	return -1;
}

/* ---- agents ------------------------------------------------------------------------------ */

/* Reads an agent record's timestamp (naive local time); NULL-safe messages as for sessions. */
static int agent_time(const json_t *view, const char *key, const struct sg_as_ctx *ctx,
                      const char *where, int64_t *us, struct sg_error *err)
{
	const json_t *v = json_object_get(view, key);

	if (!json_is_string(v))
		return bad(err, ctx, where, "agent %s is missing or not a string", key);
	if (parse_time(v, ctx, us))
		return bad(err, ctx, where, "agent %s '%.*s' is not a timestamp", key,
		           sg_utf8_cut(json_string_value(v), AS_QUOTE_MAX), json_string_value(v));
	return 0;
}

/* The facts of an AgentView north has no key for. New object, or NULL when out of memory. */
static json_t *agent_metadata(const json_t *view)
{
	const json_t *editable = json_object_get(view, "editable");
	json_t *meta = json_object();
	int rc = 0;

	if (!meta)
		return NULL;
	rc |= meta_copy(meta, "agentscope.source", view, "source");
	rc |= meta_copy(meta, "agentscope.user_id", view, "user_id");
	if (json_is_boolean(editable))
		rc |= json_object_set_new_nocheck(
		    meta, "agentscope.editable",
		    json_string_nocheck(json_is_true(editable) ? "true" : "false"));
	if (rc) {
		json_decref(meta);
		return NULL;
	}
	return meta;
}

/* The body of sg_as_agent_to_cma; `where` and `path` locate the agent as in translate(). */
static json_t *agent_translate(const json_t *view, const char *model, const struct sg_as_ctx *ctx,
                               const char *where, const char *path, struct sg_error *err)
{
	const json_t *data = json_object_get(view, "data");
	const char *id, *name = sg_jstr(data, "name"), *system = sg_jstr(data, "system_prompt");
	json_t *out, *created_js = NULL, *updated_js = NULL;
	int64_t created, updated;
	int rc = 0;

	if (!json_is_object(view)) {
		bad(err, ctx, where, "agent is not an object");
		return NULL;
	}
	id = need_id(view, "id", "agent id", ctx, where, err);
	if (!id || agent_time(view, "created_at", ctx, where, &created, err))
		return NULL;
	if (!sg_jpresent(json_object_get(view, "updated_at")))
		updated = created;
	else if (agent_time(view, "updated_at", ctx, where, &updated, err))
		return NULL;
	if (sg_jtime(created, &created_js) < 0 || sg_jtime(updated, &updated_js) < 0) {
		json_decref(created_js);
		bad(err, ctx, where, "agent timestamps are out of range");
		return NULL;
	}
	if (!name || !*name)
		name = id;
	if (!model || !*model)
		model = "unknown";
	out = json_object();
	if (!out) {
		json_decref(created_js);
		json_decref(updated_js);
		sg_err_oom(err, ctx->backend);
		return NULL;
	}
	/* a failed set frees the value it was given, so nothing leaks when one is NULL */
	rc |= json_object_set_new_nocheck(out, "id", json_string_nocheck(id));
	rc |= json_object_set_new_nocheck(out, "name", json_string_nocheck(name));
	rc |= json_object_set_new_nocheck(out, "system",
	                                  system ? json_string_nocheck(system) : json_null());
	rc |= json_object_set_new_nocheck(out, "model", json_pack("{s:s}", "id", model));
	rc |= json_object_set_new_nocheck(out, "version", json_integer(1));
	rc |= json_object_set_new_nocheck(out, "created_at", created_js);
	rc |= json_object_set_new_nocheck(out, "updated_at", updated_js);
	rc |= json_object_set_new_nocheck(out, "metadata", agent_metadata(view));
	if (rc) {
		json_decref(out);
		sg_err_oom(err, ctx->backend);
		return NULL;
	}
	/* Strict: every value was checked or built here; the core fills description, the empty
	 * lists, archived_at and multiagent null, and the service-account identity. */
	return sg_north_full_agent_take(out, ctx->backend, path, 0, err);
}

json_t *sg_as_agent_to_cma(const json_t *view, const char *model_id, const struct sg_as_ctx *ctx,
                           struct sg_error *err)
{
	if (check_ctx(ctx, err))
		return NULL;
	return agent_translate(view, model_id, ctx, "", "agent", err);
}

json_t *sg_as_agents_to_cma(const json_t *agents_body, const char *model_id,
                            const struct sg_as_ctx *ctx, struct sg_error *err)
{
	json_t *index, *out = NULL, *seen = NULL;
	char where[AS_WHERE_MAX], path[AS_PATH_MAX];
	const json_t *item;
	size_t i;

	/* the index checks the body's shape and every id, once */
	index = sg_as_agents_index(agents_body, ctx, err);
	if (!index)
		return NULL;
	json_decref(index);
	out = json_array();
	seen = json_object();
	if (!out || !seen)
		goto oom;
	json_array_foreach(json_object_get(agents_body, "agents"), i, item) {
		const char *id = sg_jstr(item, "id");
		json_t *a;

		if (json_object_get(seen, id))
			continue; /* the first of duplicate ids wins, as in the index */
		if (json_object_set_new(seen, id, json_true()))
			goto oom;
		snprintf(where, sizeof(where), "agents[%zu]: ", i);
		snprintf(path, sizeof(path), "agents[%zu]", i);
		a = agent_translate(item, model_id, ctx, where, path, err);
		if (!a)
			goto fail;
		if (json_array_append_new(out, a))
			goto oom;
	}
	json_decref(seen);
	return out;
oom:
	sg_err_oom(err, ctx->backend);
fail:
	json_decref(seen);
	json_decref(out);
	return NULL;
}

/* ---- writes ------------------------------------------------------------------------------ *
 *
 * A north write becomes the AgentScope request that does the same thing, or a 400 that says
 * what AgentScope cannot do. The core has validated the body against the SDK's params types
 * (known keys, right JSON types), so a shape that is still wrong here is refused the same way
 * rather than trusted. */

#define AS_MSG_ID_MAX 65 /* a message id the gateway mints, NUL included */

/* 400 invalid_request_error "backend 'NAME' (agentscope) <what>". Always returns -1. */
__attribute__((format(printf, 3, 4))) static int refuse(struct sg_error *err, const char *backend,
                                                        const char *fmt, ...)
{
	char what[SG_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return sg_err_invalid(err, "backend '%s' (agentscope) %s", backend, what);
}

json_t *sg_as_model_config(const json_t *cfg, const char *name, struct sg_error *err)
{
	static const char *const keys[] = {"type", "credential_id", "model", "parameters", NULL};
	static const char *const need[] = {"type", "credential_id", "model"};
	const json_t *params;
	const char *unknown;
	json_t *out;

	if (!json_is_object(cfg)) {
		sg_err_invalid(
		    err, "%s: must be an object {type, credential_id, model, parameters}", name);
		return NULL;
	}
	unknown = sg_options_unknown(cfg, keys);
	if (unknown) {
		sg_err_invalid(err,
		               "%s.%s: unknown key (AgentScope's model config has type, "
		               "credential_id, model and parameters)",
		               name, unknown);
		return NULL;
	}
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (!sg_jis_id(json_object_get(cfg, need[i]))) {
			sg_err_invalid(err, "%s.%s: must be a non-empty string", name, need[i]);
			return NULL;
		}
	}
	params = json_object_get(cfg, "parameters");
	if (params && !json_is_object(params)) {
		sg_err_invalid(err, "%s.parameters: must be an object", name);
		return NULL;
	}
	out =
	    json_pack("{s:O, s:O, s:O, s:o}", "type", json_object_get(cfg, "type"), "credential_id",
	              json_object_get(cfg, "credential_id"), "model", json_object_get(cfg, "model"),
	              "parameters", params ? json_deep_copy(params) : json_object());
	if (!out)
		sg_err_internal(err, "out of memory");
	return out;
}

/* Standard base64 with padding of n bytes, as AgentScope's Base64Source holds it. New string,
 * or NULL when out of memory. */
static json_t *base64_of(const char *p, size_t n)
{
	size_t cap = (n + 2) / 3 * 4 + 1;
	char *out = malloc(cap);
	long got;
	json_t *s = NULL;

	if (!out)
		return NULL;
	got = sg_b64url_encode((const uint8_t *)p, n, out, cap);
	if (got >= 0) {
		for (long i = 0; i < got; i++)
			out[i] = out[i] == '-' ? '+' : out[i] == '_' ? '/' : out[i];
		while (got % 4)
			out[got++] = '=';
		s = json_stringn_nocheck(out, (size_t)got);
	}
	free(out);
	return s;
}

/* The media type of an image named by URL, from its extension, else the wildcard image type
 * (AgentScope's URLSource needs one, and reads any "image/" type as an image). */
static const char *image_type_of(const char *url)
{
	static const struct {
		const char *ext, *type;
	} known[] = {{".png", "image/png"}, {".jpg", "image/jpeg"},  {".jpeg", "image/jpeg"},
	             {".gif", "image/gif"}, {".webp", "image/webp"}, {".svg", "image/svg+xml"},
	             {".bmp", "image/bmp"}};
	size_t n = strcspn(url, "?#");

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		size_t k = strlen(known[i].ext);

		if (n >= k && !strncasecmp(url + n - k, known[i].ext, k))
			return known[i].type;
	}
	return "image/*";
}

/* {type: "data", source: src, name?} (src stolen). New, or NULL when out of memory. */
static json_t *data_block_of(json_t *src, const json_t *title)
{
	json_t *b = json_pack("{s:s, s:o}", "type", "data", "source", src);

	if (b && json_is_string(title) &&
	    json_object_set_new_nocheck(b, "name", sg_jstr_copy(title)) < 0) {
		json_decref(b);
		return NULL;
	}
	return b;
}

/* One image or document source (borrowed) as AgentScope's data source. New, NULL + err. */
static json_t *data_source_of(const json_t *src, int image, const char *what, size_t i,
                              const char *backend, struct sg_error *err)
{
	const char *t = sg_jstr(src, "type");
	const json_t *data = json_object_get(src, "data"), *url = json_object_get(src, "url");
	json_t *out = NULL;

	if (sg_streq(t, "base64") && json_is_string(data) &&
	    json_is_string(json_object_get(src, "media_type")))
		out = json_pack("{s:s, s:O, s:O}", "type", "base64", "data", data, "media_type",
		                json_object_get(src, "media_type"));
	else if (sg_streq(t, "text") && json_is_string(data) && !image)
		out = json_pack("{s:s, s:o, s:s}", "type", "base64", "data",
		                base64_of(json_string_value(data), json_string_length(data)),
		                "media_type", "text/plain");
	else if (sg_streq(t, "url") && json_is_string(url))
		out = json_pack("{s:s, s:O, s:s}", "type", "url", "url", url, "media_type",
		                image ? image_type_of(json_string_value(url)) : "application/pdf");
	else if (sg_streq(t, "file")) {
		refuse(err, backend,
		       "cannot take %s[%zu]: a file source (AgentScope has no files API; send the "
		       "bytes as base64)",
		       what, i);
		return NULL;
	} else {
		refuse(err, backend, "cannot take %s[%zu]: an unknown source", what, i);
		return NULL;
	}
	if (!out)
		sg_err_internal(err, "out of memory");
	return out;
}

/* A search result as AgentScope text blocks: its title and source, then its texts. Appends to
 * out; returns 0, or -1 when out of memory. */
static int search_result_blocks(json_t *out, const json_t *b)
{
	const char *title = sg_jstr(b, "title"), *source = sg_jstr(b, "source");
	const json_t *c;
	size_t k;
	json_t *head =
	    json_sprintf("[search result: %s (%s)]", title ? title : "", source ? source : "");

	if (!head ||
	    json_array_append_new(out, json_pack("{s:s, s:o}", "type", "text", "text", head)) < 0)
		return -1;
	json_array_foreach(json_object_get(b, "content"), k, c) {
		const json_t *text = json_object_get(c, "text");

		if (json_is_string(text) &&
		    json_array_append_new(
		        out, json_pack("{s:s, s:O}", "type", "text", "text", text)) < 0)
			return -1;
	}
	return 0;
}

/* North content blocks (borrowed array) → AgentScope's text and data blocks (new array). A
 * tool result may also hold search results. `what` names the array in refusals. NULL + 400 for
 * what AgentScope cannot hold, 500 when out of memory. */
static json_t *blocks_of(const json_t *content, int tool_result, const char *what,
                         const char *backend, struct sg_error *err)
{
	json_t *out = json_array(), *nb;
	const json_t *b;
	size_t i;

	if (!out)
		goto oom;
	json_array_foreach(content, i, b) {
		const char *t = sg_jstr(b, "type");

		if (sg_streq(t, "text") && json_is_string(json_object_get(b, "text"))) {
			nb = json_pack("{s:s, s:O}", "type", "text", "text",
			               json_object_get(b, "text"));
		} else if (sg_streq(t, "image") || sg_streq(t, "document")) {
			json_t *src = data_source_of(json_object_get(b, "source"),
			                             sg_streq(t, "image"), what, i, backend, err);

			if (!src)
				goto fail;
			/* a document's context has no place in AgentScope's block: lost */
			nb = data_block_of(src, json_object_get(b, "title"));
		} else if (sg_streq(t, "search_result") && tool_result) {
			if (search_result_blocks(out, b) < 0)
				goto oom;
			continue;
		} else if (sg_streq(t, "redacted")) {
			refuse(err, backend, "cannot take %s[%zu]: a redacted block", what, i);
			goto fail;
		} else {
			refuse(err, backend, "cannot take %s[%zu]: a block of type '%.*s'", what, i,
			       sg_utf8_cut(t ? t : "?", AS_QUOTE_MAX), t ? t : "?");
			goto fail;
		}
		if (!nb || json_array_append_new(out, nb) < 0)
			goto oom;
	}
	return out;
oom:
	sg_err_internal(err, "out of memory");
fail:
	json_decref(out);
	return NULL;
}

/* us as the backend writes its own times: naive local time in tz, microseconds when non-zero
 * ("2026-06-05T14:03:11.123456"), so that AgentScope stores, and the event list reads back,
 * exactly this instant. Returns 0, or -1 when out of range. */
static int local_stamp(int64_t us, const struct sg_tz *tz, char out[SG_TIME_BUFSZ])
{
	int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
	int n =
	    sg_time_format(us + (int64_t)sg_tz_offset_at(tz, secs) * 1000000, out, SG_TIME_BUFSZ);

	if (n <= 0)
		return -1;
	out[n - 1] = '\0'; /* the 'Z': the backend's times are naive */
	return 0;
}

/* The Msg of one north user.message (borrowed): a fresh id from the write context, name and
 * role "user", the content as AgentScope blocks, created_at now in the backend's zone. New, or
 * NULL + err. */
static json_t *user_msg(const json_t *ev, const char *what, const struct sg_as_write_ctx *w,
                        struct sg_error *err)
{
	char id[AS_MSG_ID_MAX], stamp[SG_TIME_BUFSZ], where[AS_WHERE_MAX + 16];
	json_t *content, *msg;

	snprintf(where, sizeof(where), "%s.content", what);
	content = blocks_of(json_object_get(ev, "content"), 0, where, w->backend, err);
	if (!content)
		return NULL;
	if (!w->new_id || w->new_id(w->id_arg, id) < 0 || !*id) {
		json_decref(content);
		sg_err_internal(err, "cannot mint a message id");
		return NULL;
	}
	if (local_stamp(w->now_us, w->tz, stamp) < 0) {
		json_decref(content);
		sg_err_internal(err, "the clock is out of range");
		return NULL;
	}
	msg = json_pack("{s:s, s:s, s:s, s:o, s:s}", "id", id, "name", "user", "role", "user",
	                "content", content, "created_at", stamp);
	if (!msg)
		sg_err_internal(err, "out of memory");
	return msg;
}

json_t *sg_as_chat_input(const json_t *msgs)
{
	if (json_array_size(msgs) == 1)
		return json_incref(json_array_get(msgs, 0));
	return json_incref((json_t *)msgs);
}

/* Whether a north list value (borrowed) asks for something: present and not empty. */
static int non_empty(const json_t *v)
{
	return (json_is_array(v) && json_array_size(v) > 0) ||
	       (json_is_object(v) && json_object_size(v) > 0) ||
	       (v && !json_is_array(v) && !json_is_object(v) && !json_is_null(v));
}

/* The agent id of a create body's `agent` (borrowed from it), or NULL + 400. */
static const char *create_agent_id(const json_t *agent, const char *backend, struct sg_error *err)
{
	static const char *const overrides[] = {"mcp_servers", "model", "skills", "system",
	                                        "tools"};
	const char *type = sg_jstr(agent, "type");
	const json_t *id = json_is_string(agent) ? agent : json_object_get(agent, "id");
	const json_t *version = json_object_get(agent, "version");

	if (sg_streq(type, "agent_with_overrides")) {
		char given[128] = "";
		size_t used = 0;

		for (size_t i = 0; i < sizeof(overrides) / sizeof(overrides[0]); i++) {
			if (!json_object_get(agent, overrides[i]))
				continue;
			used += (size_t)snprintf(given + used, sizeof(given) - used, "%s%s",
			                         used ? ", " : "", overrides[i]);
		}
		refuse(err, backend,
		       "cannot override an agent per session%s%s%s: its agents have no per-session "
		       "configuration; pass the agent as {\"type\": \"agent\", \"id\": …}",
		       used ? " (given: " : "", given, used ? ")" : "");
		return NULL;
	}
	if (!json_is_string(agent) && !sg_streq(type, "agent")) {
		refuse(err, backend,
		       "takes agent as an agent id or {\"type\": \"agent\", \"id\": …}");
		return NULL;
	}
	if (!sg_jis_id(id)) {
		refuse(err, backend, "needs a non-empty agent id without NUL bytes");
		return NULL;
	}
	if (json_string_length(id) >= SG_ID_FIELD_MAX) {
		refuse(err, backend, "cannot address an agent id of %zu bytes (at most %d)",
		       json_string_length(id), SG_ID_FIELD_MAX - 1);
		return NULL;
	}
	if (sg_jpresent(version) &&
	    !(json_is_integer(version) && json_integer_value(version) == 1)) {
		if (json_is_integer(version))
			refuse(err, backend,
			       "has no version %" JSON_INTEGER_FORMAT
			       " of agent '%.*s': AgentScope agents have one version, 1",
			       json_integer_value(version), sg_utf8_cut(json_string_value(id), 64),
			       json_string_value(id));
		else
			refuse(err, backend, "takes an integer agent version (1)");
		return NULL;
	}
	return json_string_value(id);
}

/* Parses a model configuration the module stored as text. New, or NULL + 500. */
static json_t *config_of(const char *text, struct sg_error *err)
{
	json_t *v = json_loads(text, 0, NULL);

	if (!v)
		sg_err_internal(err, "a stored model configuration does not parse");
	return v;
}

int sg_as_create_request(const json_t *body, const struct sg_as_write_ctx *w,
                         struct sg_as_create *out, struct sg_error *err)
{
	const json_t *env = json_object_get(body, "environment_id");
	const json_t *title = json_object_get(body, "title"), *ev;
	const char *be = w->backend, *envs = json_string_value(env);
	json_t *sb = NULL, *msgs = NULL, *cfg;
	char what[AS_WHERE_MAX];
	size_t i;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->agent_id = create_agent_id(json_object_get(body, "agent"), be, err);
	if (!out->agent_id)
		return -1;
	if (!w->chat_model_config)
		return refuse(err, be,
		              "cannot create sessions: the gateway has no chat_model_config for it "
		              "(an AgentScope session without a model cannot run)");
	if (!envs || sg_jhas_nul(env) ||
	    !(strcmp(envs, "env_none") == 0 || (strncmp(envs, "env_", 4) == 0 && envs[4])))
		return refuse(err, be,
		              "takes environment_id as \"env_none\" or \"env_<workspace id>\" "
		              "(AgentScope sessions run in workspaces), not '%.*s'",
		              sg_utf8_cut(envs ? envs : "", AS_QUOTE_MAX), envs ? envs : "");
	if (non_empty(json_object_get(body, "metadata")))
		return refuse(err, be, "cannot store metadata: AgentScope sessions have none");
	if (non_empty(json_object_get(body, "resources")))
		return refuse(err, be,
		              "cannot attach resources: AgentScope has no session resources");
	if (non_empty(json_object_get(body, "vault_ids")))
		return refuse(err, be, "cannot use vaults: AgentScope has none");
	if (sg_jpresent(json_object_get(body, "budget")))
		return refuse(err, be, "cannot enforce a budget: AgentScope sessions have none");
	msgs = json_array();
	if (!msgs)
		goto oom;
	json_array_foreach(json_object_get(body, "initial_events"), i, ev) {
		const char *t = sg_jstr(ev, "type");
		json_t *m;

		snprintf(what, sizeof(what), "initial_events[%zu]", i);
		if (!sg_streq(t, "user.message")) {
			refuse(err, be, "cannot take %s: %.*s is not supported (only user.message)",
			       what, sg_utf8_cut(t ? t : "?", AS_QUOTE_MAX), t ? t : "?");
			goto fail;
		}
		m = user_msg(ev, what, w, err);
		if (!m)
			goto fail;
		if (json_array_append_new(msgs, m))
			goto oom;
	}
	cfg = config_of(w->chat_model_config, err);
	if (!cfg)
		goto fail;
	sb = json_pack("{s:s, s:o}", "agent_id", out->agent_id, "chat_model_config", cfg);
	if (!sb)
		goto oom;
	if (strcmp(envs, "env_none") != 0)
		rc |= json_object_set_new(sb, "workspace_id", json_string(envs + 4));
	if (json_is_string(title))
		rc |= json_object_set_new(sb, "name", sg_jstr_copy(title));
	if (w->fallback_chat_model_config) {
		cfg = config_of(w->fallback_chat_model_config, err);
		if (!cfg)
			goto fail;
		rc |= json_object_set_new(sb, "fallback_chat_model_config", cfg);
	}
	if (rc)
		goto oom;
	if (json_array_size(msgs) > 0) {
		out->chat_input = sg_as_chat_input(msgs);
		if (!out->chat_input)
			goto oom;
	}
	json_decref(msgs);
	out->session_body = sb;
	return 0;
oom:
	sg_err_internal(err, "out of memory");
fail:
	json_decref(sb);
	json_decref(msgs);
	out->agent_id = NULL;
	return -1;
}

int sg_as_update_request(const json_t *body, const struct sg_as_write_ctx *w, json_t **patch,
                         struct sg_error *err)
{
	const json_t *title = json_object_get(body, "title");
	const json_t *meta = json_object_get(body, "metadata");
	const char *be = w->backend;

	*patch = NULL;
	if (title && json_is_null(title))
		return refuse(err, be,
		              "cannot clear a session's title: AgentScope always keeps a name; set "
		              "a new title instead");
	if (meta && !(json_is_object(meta) && json_object_size(meta) == 0))
		return refuse(err, be, "cannot store metadata: AgentScope sessions have none");
	if (json_object_get(body, "agent"))
		return refuse(err, be,
		              "cannot change a session's agent tools or MCP servers: AgentScope "
		              "resolves them from the agent at run time");
	if (sg_jpresent(json_object_get(body, "budget")))
		return refuse(err, be, "cannot enforce a budget: AgentScope sessions have none");
	if (non_empty(json_object_get(body, "vault_ids")))
		return refuse(err, be, "cannot use vaults: AgentScope has none");
	if (!json_is_string(title))
		return 0;
	*patch = json_pack("{s:O}", "name", title);
	if (!*patch)
		return sg_err_internal(err, "out of memory");
	return 0;
}

/* The kind a north event type is sent as, or -1 when AgentScope cannot take it. */
static int send_kind(const char *type)
{
	if (sg_streq(type, "user.message"))
		return SG_AS_SEND_MESSAGES;
	if (sg_streq(type, "user.interrupt"))
		return SG_AS_SEND_INTERRUPT;
	if (sg_streq(type, "user.tool_confirmation"))
		return SG_AS_SEND_CONFIRMATION;
	if (sg_streq(type, "user.custom_tool_result"))
		return SG_AS_SEND_TOOL_RESULT;
	return -1;
}

int sg_as_send_plan(const json_t *body, const struct sg_as_write_ctx *w, struct sg_as_send *out,
                    struct sg_error *err)
{
	const json_t *events = json_object_get(body, "events"), *ev;
	const char *be = w->backend, *first = NULL;
	char what[AS_WHERE_MAX];
	size_t i;

	memset(out, 0, sizeof(*out));
	if (json_array_size(events) == 0)
		return refuse(err, be, "needs at least one event");
	json_array_foreach(events, i, ev) {
		const char *t = sg_jstr(ev, "type");
		int kind = send_kind(t);

		if (kind < 0)
			return refuse(err, be,
			              "does not support events[%zu]: %.*s (it takes user.message, "
			              "user.interrupt, user.tool_confirmation and "
			              "user.custom_tool_result)",
			              i, sg_utf8_cut(t ? t : "?", AS_QUOTE_MAX), t ? t : "?");
		if (i == 0) {
			out->kind = (enum sg_as_send_kind)kind;
			first = t;
		} else if ((int)out->kind != kind) {
			return refuse(
			    err, be,
			    "takes one kind of event per request, so that each request is "
			    "applied whole or not at all: events[0] is %s, events[%zu] is %s; "
			    "send them in separate requests",
			    first, i, t);
		}
		if (kind == SG_AS_SEND_INTERRUPT &&
		    sg_jpresent(json_object_get(ev, "session_thread_id")))
			return refuse(
			    err, be,
			    "has no threads to interrupt (events[%zu].session_thread_id): "
			    "omit it to interrupt the session",
			    i);
	}
	if (out->kind != SG_AS_SEND_MESSAGES)
		return 0;
	out->msgs = json_array();
	if (!out->msgs)
		return sg_err_internal(err, "out of memory");
	json_array_foreach(events, i, ev) {
		json_t *m;

		snprintf(what, sizeof(what), "events[%zu]", i);
		m = user_msg(ev, what, w, err);
		if (!m || json_array_append_new(out->msgs, m)) {
			if (m)
				sg_err_internal(err, "out of memory");
			json_decref(out->msgs);
			out->msgs = NULL;
			return -1;
		}
	}
	return 0;
}

/* The tool result AgentScope stores for a north custom tool result (borrowed): the stored
 * call's id and name, its content as output ("" when there is none), success or error. New, or
 * NULL + err. */
static json_t *execution_result(const json_t *ev, const json_t *call, const char *what,
                                const char *backend, struct sg_error *err)
{
	const json_t *content = json_object_get(ev, "content");
	json_t *output;

	if (json_array_size(content) > 0) {
		char where[AS_WHERE_MAX + 16];

		snprintf(where, sizeof(where), "%s.content", what);
		output = blocks_of(content, 1, where, backend, err);
		if (!output)
			return NULL;
	} else {
		output = json_string("");
	}
	output = json_pack("{s:s, s:O, s:O, s:o, s:s}", "type", "tool_result", "id",
	                   json_object_get(call, "id"), "name", json_object_get(call, "name"),
	                   "output", output, "state",
	                   json_is_true(json_object_get(ev, "is_error")) ? "error" : "success");
	if (!output)
		sg_err_internal(err, "out of memory");
	return output;
}

json_t *sg_as_resume_input(const json_t *events, const json_t *messages,
                           const struct sg_as_events_ctx *ctx, struct sg_error *err)
{
	const char *be = ctx->backend ? ctx->backend : "";
	const json_t *ev, *tail_msg, *reply_id;
	json_t *index, *results = NULL, *seen = NULL, *input = NULL;
	int confirm =
	    sg_streq(sg_jstr(json_array_get(events, 0), "type"), "user.tool_confirmation");
	const char *key = confirm ? "tool_use_id" : "custom_tool_use_id";
	const char *want = confirm ? "asking" : "submitted";
	char what[AS_WHERE_MAX];
	size_t tail, i;

	index = sg_as_tool_use_index(messages, ctx, &tail, err);
	if (!index)
		return NULL;
	tail_msg = json_array_get(messages, tail);
	results = json_array();
	seen = json_object();
	if (!results || !seen)
		goto oom;
	json_array_foreach(events, i, ev) {
		const json_t *idv = json_object_get(ev, key), *loc, *call;
		const char *id = json_string_value(idv), *state;
		json_t *r;

		snprintf(what, sizeof(what), "events[%zu]", i);
		if (!id || sg_jhas_nul(idv)) {
			refuse(err, be, "needs %s.%s", what, key);
			goto fail;
		}
		loc = json_object_get(index, id);
		if (!loc) {
			refuse(err, be, "has no tool use '%.*s' in this session (%s.%s)",
			       sg_utf8_cut(id, AS_QUOTE_MAX), id, what, key);
			goto fail;
		}
		if ((size_t)json_integer_value(json_array_get(loc, 0)) != tail) {
			refuse(err, be,
			       "cannot answer tool use '%.*s' (%s.%s): it belongs to an earlier "
			       "reply, and only the last one can wait",
			       sg_utf8_cut(id, AS_QUOTE_MAX), id, what, key);
			goto fail;
		}
		call = json_array_get(json_object_get(tail_msg, "content"),
		                      (size_t)json_integer_value(json_array_get(loc, 1)));
		state = sg_jstr(call, "state");
		if (!sg_streq(state, want)) {
			refuse(
			    err, be,
			    "cannot answer tool use '%.*s' (%s.%s): it is not waiting for %s (its "
			    "state is '%.*s')",
			    sg_utf8_cut(id, AS_QUOTE_MAX), id, what, key,
			    confirm ? "a confirmation" : "a result",
			    sg_utf8_cut(state ? state : "none", AS_QUOTE_MAX),
			    state ? state : "none");
			goto fail;
		}
		if (json_object_get(seen, id)) {
			refuse(err, be,
			       "cannot answer tool use '%.*s' twice in one request (%s.%s)",
			       sg_utf8_cut(id, AS_QUOTE_MAX), id, what, key);
			goto fail;
		}
		if (json_object_set_new(seen, id, json_true()))
			goto oom;
		if (confirm) {
			/* the stored block whole: AgentScope takes its name and input from it */
			r = json_pack("{s:b, s:o}", "confirmed",
			              sg_streq(sg_jstr(ev, "result"), "allow"), "tool_call",
			              json_deep_copy(call));
			if (!r)
				goto oom;
		} else {
			r = execution_result(ev, call, what, be, err);
			if (!r)
				goto fail;
		}
		if (json_array_append_new(results, r))
			goto oom;
	}
	reply_id = json_object_get(tail_msg, "id");
	if (!sg_jis_id(reply_id)) {
		sg_err_backend(err, be, "", "the waiting reply has no id to resume it by");
		goto fail;
	}
	input = confirm ? json_pack("{s:s, s:O, s:O}", "type", "USER_CONFIRM_RESULT", "reply_id",
	                            reply_id, "confirm_results", results)
	                : json_pack("{s:s, s:O, s:O}", "type", "EXTERNAL_EXECUTION_RESULT",
	                            "reply_id", reply_id, "execution_results", results);
	if (!input)
		goto oom;
	json_decref(results);
	json_decref(seen);
	json_decref(index);
	return input;
oom:
	sg_err_internal(err, "out of memory");
fail:
	json_decref(results);
	json_decref(seen);
	json_decref(index);
	return NULL;
}

/* The echo of one event that leaves no event of its own in AgentScope's log. Its id is minted
 * from the session, the event's place in the request, its type, what it names and the time it
 * was accepted: stable for the answer, unique across requests. New (normalised) or NULL + err. */
static json_t *echo_event(const json_t *ev, size_t i, const struct sg_as_events_ctx *ctx,
                          int64_t now_us, struct sg_id_seed *seed, struct sg_error *err)
{
	static const char *const keep[] = {
	    "result",  "tool_use_id", "deny_message",      "custom_tool_use_id",
	    "content", "is_error",    "session_thread_id", NULL};
	const char *type = sg_jstr(ev, "type"), *be = ctx->backend ? ctx->backend : "";
	const char *ref = sg_jstr(ev, "tool_use_id");
	char id[SG_EVENT_ID_LEN + 1], ts[SG_TIME_BUFSZ], path[AS_PATH_MAX];
	json_t *out, *north = NULL;
	int rc = 0;

	if (!ref)
		ref = sg_jstr(ev, "custom_tool_use_id");
	seed->len = 0;
	rc |= sg_id_seed_str(seed, "sevt-echo1");
	rc |= sg_id_seed_str(seed, be);
	rc |= sg_id_seed_str(seed, ctx->session_key);
	rc |= sg_id_seed_str(seed, type);
	rc |= sg_id_seed_str(seed, ref);
	rc |= sg_id_seed_uint(seed, (uint64_t)now_us);
	rc |= sg_id_seed_uint(seed, i);
	if (rc || sg_time_format(now_us, ts, sizeof(ts)) < 0) {
		sg_err_internal(err, "out of memory");
		return NULL;
	}
	sg_event_id(seed->p, seed->len, id);
	out = json_pack("{s:s, s:s, s:s}", "id", id, "type", type, "processed_at", ts);
	for (const char *const *k = keep; out && *k; k++) {
		const json_t *v = json_object_get(ev, *k);

		if (v && json_object_set_new(out, *k, json_deep_copy(v)) < 0) {
			json_decref(out);
			out = NULL;
		}
	}
	if (!out) {
		sg_err_internal(err, "out of memory");
		return NULL;
	}
	snprintf(path, sizeof(path), "events[%zu]", i);
	rc = sg_north_event_take(out, be, path, 0, &north, err);
	if (rc == SG_NORTH_DROPPED) {
		sg_err_internal(err, "an echoed %s has no shape in the SDK's types", type);
		return NULL;
	}
	return rc < 0 ? NULL : north;
}

json_t *sg_as_send_echo(const json_t *body, const struct sg_as_send *plan,
                        const struct sg_as_events_ctx *ctx, int64_t now_us, struct sg_error *err)
{
	struct sg_id_seed seed = {0};
	json_t *data = NULL, *e;
	const json_t *ev;
	size_t i;

	if (plan->kind == SG_AS_SEND_MESSAGES) {
		struct sg_as_events_ctx mine = *ctx;

		/* The Msgs as AgentScope stores them translate to the very events the list will
		 * show: same ids (the message id was chosen here), times and content. */
		mine.session_running = 0;
		data = sg_as_messages_to_events(plan->msgs, &mine, err);
		if (!data)
			return NULL;
	} else {
		data = json_array();
		if (!data)
			goto oom;
		json_array_foreach(json_object_get(body, "events"), i, ev) {
			e = echo_event(ev, i, ctx, now_us, &seed, err);
			if (!e)
				goto fail;
			if (json_array_append_new(data, e))
				goto oom;
		}
	}
	sg_id_seed_free(&seed);
	e = json_pack("{s:o}", "data", data);
	if (!e)
		sg_err_internal(err, "out of memory");
	return e;
oom:
	sg_err_internal(err, "out of memory");
fail:
	sg_id_seed_free(&seed);
	json_decref(data);
	return NULL;
}
