/* agentscope.c - the AgentScope agent service (backends.md §1): which upstream calls a
 * north request needs, in what order. The translation itself is pure and lives in
 * agentscope_translate.c.
 *
 * AgentScope has no lookup by session id and no pagination: every session call needs the
 * agent id (carried in our public ids as the scope) and returns the whole (user, agent)
 * listing. Identity is the X-User-ID header, taken from the authenticated key's identity
 * object and never from the client. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "config.h"
#include "mapping.h"
#include "tz.h"
#include "agentscope_events.h"
#include "agentscope_translate.h"

#define AS_USER_MAX 256
#define AS_MSG_PAGE 200 /* the largest page /messages allows */

struct as_priv {
	struct sg_tz *tz;
	long max_agents; /* fan-out bound when listing without agent_id */
	long fanout;     /* listings fetched at once */
	int hint_mode;   /* enum sg_as_hint_mode */
	long cache_ms;   /* freshness of the worker's cache of agents and translated listings;
	                  * 0 = always ask the backend */
};

/* Per-call state: the agents index and the raw listings, translated once all arrived. */
struct as_state {
	char user_hdr[AS_USER_MAX + 16];
	const char *headers[2];
	json_t *agents_index; /* agent id → AgentView */
	json_t *listings;     /* raw bodies of GET /sessions/, or for lists
	                       * [agent id, body] pairs */
	json_t *cached;       /* lists: north sessions of agents served from the cache */
	json_t *agent_ids;    /* agents still to list (fan-out queue) */
	size_t next_agent;
	int agents_done;
	/* events: the message log, read to the end */
	json_t *messages; /* oldest first */
	int msgs_done;
	int msgs_endpoint_missing;
	long msg_offset;  /* v2.0.1 paging */
	char before[256]; /* newer builds' paging */
};

static void state_free(void *p)
{
	struct as_state *st = p;

	json_decref(st->agents_index);
	json_decref(st->listings);
	json_decref(st->cached);
	json_decref(st->agent_ids);
	json_decref(st->messages);
	free(st);
}

static const struct as_priv *priv_of(const struct sg_call *call)
{
	return sg_call_backend(call)->priv;
}

static struct as_state *state_new(struct sg_call *call)
{
	struct as_state *st = calloc(1, sizeof(*st));
	const char *uid = json_string_value(json_object_get(sg_call_identity(call), "user_id"));

	if (!st || !uid)
		goto fail;
	snprintf(st->user_hdr, sizeof(st->user_hdr), "X-User-ID: %s", uid);
	st->headers[0] = st->user_hdr;
	st->headers[1] = NULL;
	st->listings = json_array();
	st->cached = json_array();
	if (!st->listings || !st->cached)
		goto fail;
	sg_call_set_state(call, st, state_free);
	return st;
fail:
	if (st)
		state_free(st);
	sg_call_fail(call, 500, "api_error", "out of memory");
	return NULL;
}

static void ctx_of(const struct sg_call *call, struct sg_as_ctx *ctx)
{
	ctx->backend = sg_call_backend(call)->name;
	ctx->tz = priv_of(call)->tz;
	ctx->now_us = sg_call_now_us(call);
}

/* The worker-cache key of what this principal sees of `what` ("agents", or "sessions" and
 * an agent id). Identity is part of the key: one user's view never serves another. */
static void cache_key(const struct sg_call *call, const char *what, const char *agent, char *out,
                      size_t len)
{
	snprintf(out, len, "agentscope\x1f%s\x1f%s\x1f%s\x1f%s", sg_call_backend(call)->name,
	         json_string_value(json_object_get(sg_call_identity(call), "user_id")), what,
	         agent ? agent : "");
}

/* The view of the session a get/events call names, from the agent's listing: borrowed, or
 * NULL after failing the call (wrong shape → 502, absent → 404). */
static const json_t *find_view(struct sg_call *call, struct as_state *st)
{
	const struct sg_pubid *id = sg_call_pubid(call);
	const json_t *sessions = json_object_get(json_array_get(st->listings, 0), "sessions");
	json_t *view;
	size_t i;

	if (!json_is_array(sessions)) {
		sg_call_fail(call, 502, "api_error",
		             "backend '%s': the session listing has the wrong shape",
		             sg_call_backend(call)->name);
		return NULL;
	}
	json_array_foreach(sessions, i, view) {
		const json_t *rec = json_object_get(view, "session");
		const char *sid = json_string_value(json_object_get(rec, "id"));
		const char *aid = json_string_value(json_object_get(rec, "agent_id"));

		if (sid && aid && strcmp(sid, id->native) == 0 && strcmp(aid, id->scope) == 0)
			return view;
	}
	sg_call_fail(call, 404, "not_found_error", "session not found");
	return NULL;
}

/* Retrieve: only the view with the encoded ids is translated. */
static void finish_get(struct sg_call *call, struct as_state *st, const struct sg_as_ctx *ctx)
{
	const json_t *view = find_view(call, st);
	struct sg_error err = {0};
	json_t *s;

	if (!view)
		return;
	s = sg_as_session_to_cma(
	    view, json_object_get(st->agents_index, sg_call_pubid(call)->scope), ctx, &err);
	if (!s) {
		sg_call_fail_with(call, &err);
		return;
	}
	sg_call_object(call, s);
}

static void finish_events(struct sg_call *call, struct as_state *st, const struct sg_as_ctx *ctx)
{
	const struct sg_pubid *id = sg_call_pubid(call);
	const json_t *view = find_view(call, st), *rec, *status, *agent, *log;
	struct sg_as_events_ctx ec = {0};
	struct sg_error err = {0};
	char key[2 * SG_ID_FIELD_MAX + 2];
	json_t *events, *first = NULL;

	if (!view)
		return;
	rec = json_object_get(view, "session");
	status = json_object_get(view, "status");
	agent = json_object_get(st->agents_index, id->scope);
	snprintf(key, sizeof(key), "%s/%s", id->scope, id->native);
	ec.backend = ctx->backend;
	ec.session_key = key;
	ec.tz = ctx->tz;
	ec.agent_name = json_string_value(json_object_get(json_object_get(agent, "data"), "name"));
	ec.model = json_string_value(json_object_get(
	    json_object_get(json_object_get(rec, "config"), "chat_model_config"), "model"));
	ec.session_running = json_is_string(status)
	                         ? strcmp(json_string_value(status), "running") == 0
	                         : json_is_true(json_object_get(view, "is_running"));
	ec.hint_mode = priv_of(call)->hint_mode;
	log = st->messages;
	if (st->msgs_endpoint_missing) {
		/* Without a message log only state.context is left; say so when earlier turns
		 * were compacted away rather than pretend the history starts here. */
		log = json_object_get(json_object_get(rec, "state"), "context");
		if (sg_as_compacted_event(rec, &ec, &first, &err)) {
			sg_call_fail_with(call, &err);
			return;
		}
	}
	events = sg_as_messages_to_events(log ? log : st->messages, &ec, &err);
	if (!events || (first && json_array_insert_new(events, 0, first))) {
		if (events)
			sg_err_internal(&err, "out of memory");
		else
			json_decref(first);
		json_decref(events);
		sg_call_fail_with(call, &err);
		return;
	}
	sg_call_items(call, events);
}

/* Translates every listing once nothing is pending: the list ends here. */
static void finish_list(struct sg_call *call, struct as_state *st)
{
	struct sg_as_ctx ctx;
	struct sg_error err = {0};
	json_t *out, *listing;
	size_t i;

	if (sg_call_pending(call) > 0 || !st->agents_done ||
	    st->next_agent < json_array_size(st->agent_ids))
		return;
	ctx_of(call, &ctx);
	if (sg_call_kind(call) == SG_CALL_GET_SESSION) {
		finish_get(call, st, &ctx);
		return;
	}
	if (sg_call_kind(call) == SG_CALL_LIST_EVENTS) {
		if (st->msgs_done)
			finish_events(call, st, &ctx);
		return;
	}
	out = json_copy(st->cached);
	if (!out) {
		sg_call_fail(call, 500, "api_error", "out of memory");
		return;
	}
	json_array_foreach(st->listings, i, listing) {
		json_t *one = json_array();
		char key[1024];

		if (!one || sg_as_listing_to_cma(json_array_get(listing, 1), st->agents_index, &ctx,
		                                 one, &err)) {
			json_decref(one);
			json_decref(out);
			sg_call_fail_with(call, &err);
			return;
		}
		if (priv_of(call)->cache_ms > 0) {
			cache_key(call, "sessions", json_string_value(json_array_get(listing, 0)),
			          key, sizeof(key));
			sg_call_cache_put(call, key, one, priv_of(call)->cache_ms);
		}
		json_array_extend(out, one);
		json_decref(one);
	}
	sg_call_items(call, out);
}

static void on_listing(struct sg_call *call, const struct sg_fetch_res *res, void *arg);

/* Starts the next listing of the fan-out queue that the cache cannot answer; returns -1
 * when the call failed. The fetch's argument is the agent's index in the queue, so the
 * answer can be cached under its agent without any per-fetch allocation. */
static int list_next_agent(struct sg_call *call, struct as_state *st)
{
	while (st->next_agent < json_array_size(st->agent_ids)) {
		size_t idx = st->next_agent++;
		const char *aid = json_string_value(json_array_get(st->agent_ids, idx));
		char esc[1024], path[1100], key[1024];
		json_t *hit;

		if (!aid || sg_url_escape(aid, esc, sizeof(esc)) < 0) {
			sg_call_fail(call, 502, "api_error", "backend '%s': unusable agent id",
			             sg_call_backend(call)->name);
			return -1;
		}
		if (priv_of(call)->cache_ms > 0 && sg_call_kind(call) == SG_CALL_LIST_SESSIONS) {
			cache_key(call, "sessions", aid, key, sizeof(key));
			hit = sg_call_cache_get(call, key);
			if (hit) {
				json_array_extend(st->cached, hit);
				json_decref(hit);
				continue;
			}
		}
		snprintf(path, sizeof(path), "/sessions/?agent_id=%s", esc);
		return sg_call_get(call, path, st->headers, on_listing, (void *)(uintptr_t)idx);
	}
	return 0;
}

static void on_listing(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct as_state *st = sg_call_state(call);
	size_t idx = (size_t)(uintptr_t)arg;
	json_t *body;

	/* AgentScope answers 404 for an agent the user cannot see; as a list filter that
	 * is simply an agent with no sessions (retrieve and events keep their 404). */
	if (res->fail == SG_FETCH_OK && res->status == 404 &&
	    sg_call_kind(call) == SG_CALL_LIST_SESSIONS)
		body = json_pack("{s:[], s:i}", "sessions", "total", 0);
	else
		body = sg_call_json(call, res);
	if (!body)
		return;
	if (sg_call_kind(call) == SG_CALL_LIST_SESSIONS)
		json_array_append_new(st->listings,
		                      json_pack("[O,o]", json_array_get(st->agent_ids, idx), body));
	else
		json_array_append_new(st->listings, body);
	if (list_next_agent(call, st))
		return;
	finish_list(call, st);
}

static void agents_ready(struct sg_call *call, struct as_state *st);

static void on_agents(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct as_state *st = arg;
	struct sg_as_ctx ctx;
	struct sg_error err = {0};
	json_t *body = sg_call_json(call, res);
	char key[1024];

	if (!body)
		return;
	ctx_of(call, &ctx);
	st->agents_index = sg_as_agents_index(body, &ctx, &err);
	json_decref(body);
	if (!st->agents_index) {
		sg_call_fail_with(call, &err);
		return;
	}
	if (priv_of(call)->cache_ms > 0) {
		cache_key(call, "agents", NULL, key, sizeof(key));
		sg_call_cache_put(call, key, st->agents_index, priv_of(call)->cache_ms);
	}
	agents_ready(call, st);
}

/* The user's agents (from GET /agent/ or the cache); a list without agent_id fans out. */
static int fetch_agents(struct sg_call *call, struct as_state *st)
{
	char key[1024];

	if (priv_of(call)->cache_ms > 0) {
		cache_key(call, "agents", NULL, key, sizeof(key));
		st->agents_index = sg_call_cache_get(call, key);
		if (st->agents_index) {
			agents_ready(call, st);
			return sg_call_ended(call) ? -1 : 0;
		}
	}
	return sg_call_get(call, "/agent/", st->headers, on_agents, st);
}

static void agents_ready(struct sg_call *call, struct as_state *st)
{
	const struct as_priv *pv = priv_of(call);
	const struct sg_session_query *q = sg_call_session_query(call);
	const char *aid;
	json_t *v;

	st->agents_done = 1;
	/* Without agent_id: list every agent of the user, a bounded window at a time. */
	if (sg_call_kind(call) == SG_CALL_LIST_SESSIONS && !q->agent_id) {
		if ((long)json_object_size(st->agents_index) > pv->max_agents) {
			sg_call_fail(
			    call, 502, "api_error",
			    "backend '%s': the user has more than %ld agents; pass agent_id",
			    sg_call_backend(call)->name, pv->max_agents);
			return;
		}
		st->agent_ids = json_array();
		json_object_foreach(st->agents_index, aid, v)
			json_array_append_new(st->agent_ids, json_string(aid));
		for (long i = 0; i < pv->fanout && st->next_agent < json_array_size(st->agent_ids);
		     i++)
			if (list_next_agent(call, st))
				return;
	}
	finish_list(call, st);
}

static void as_list_sessions(struct sg_call *call)
{
	const struct sg_session_query *q = sg_call_session_query(call);
	struct as_state *st = state_new(call);

	if (!st)
		return;
	if (q->agent_id)
		st->agent_ids = json_pack("[s]", q->agent_id);
	if (fetch_agents(call, st))
		return;
	if (q->agent_id && !sg_call_ended(call) && list_next_agent(call, st) == 0)
		finish_list(call, st);
}

static void as_get_session(struct sg_call *call)
{
	const struct sg_pubid *id = sg_call_pubid(call);
	struct as_state *st = state_new(call);

	if (!st)
		return;
	if (!id->scope[0]) {
		sg_call_fail(call, 404, "not_found_error", "session not found");
		return;
	}
	st->agent_ids = json_pack("[s]", id->scope);
	if (sg_call_get(call, "/agent/", st->headers, on_agents, st))
		return;
	{
		char esc[1024], path[1100];

		st->next_agent = 1;
		if (sg_url_escape(id->scope, esc, sizeof(esc)) < 0) {
			sg_call_fail(call, 404, "not_found_error", "session not found");
			return;
		}
		snprintf(path, sizeof(path), "/sessions/?agent_id=%s", esc);
		sg_call_get(call, path, st->headers, on_listing, (void *)(uintptr_t)0);
	}
}

static int fetch_messages(struct sg_call *call, struct as_state *st);

/* One page of /messages. Newer builds answer the latest page and `has_more`, and page back
 * with before=<oldest id>; v2.0.1 answers from the oldest with offset/limit and no
 * has_more. Either way the log is read to the end, within SG_AS_EVENTS_MAX_MESSAGES. */
static void on_messages(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct as_state *st = arg;
	const char *name = sg_call_backend(call)->name;
	json_t *body, *page, *has_more;
	size_t n;

	if (res->fail == SG_FETCH_OK && res->status == 404 && json_array_size(st->messages) == 0 &&
	    !st->before[0] && st->msg_offset == 0) {
		/* Either the session is unknown (the listing will say so) or this build has no
		 * message log: fall back to state.context. */
		st->msgs_endpoint_missing = 1;
		st->msgs_done = 1;
		finish_list(call, st);
		return;
	}
	body = sg_call_json(call, res);
	if (!body)
		return;
	page = json_object_get(body, "messages");
	has_more = json_object_get(body, "has_more");
	if (!json_is_array(page)) {
		json_decref(body);
		sg_call_fail(call, 502, "api_error",
		             "backend '%s': the message log has the wrong shape", name);
		return;
	}
	n = json_array_size(page);
	if (json_array_size(st->messages) + n > SG_AS_EVENTS_MAX_MESSAGES) {
		json_decref(body);
		sg_call_fail(call, 502, "api_error",
		             "backend '%s': the session has more than %d messages", name,
		             SG_AS_EVENTS_MAX_MESSAGES);
		return;
	}
	if (has_more) {
		const char *oldest =
		    json_string_value(json_object_get(json_array_get(page, 0), "id"));

		/* This page is older than everything held so far: it goes in front. */
		json_array_extend(page, st->messages);
		json_decref(st->messages);
		st->messages = json_incref(page);
		if (json_is_true(has_more) && n > 0 && oldest &&
		    strlen(oldest) < sizeof(st->before) && strcmp(oldest, st->before) != 0) {
			snprintf(st->before, sizeof(st->before), "%s", oldest);
			json_decref(body);
			fetch_messages(call, st);
			return;
		}
	} else {
		json_array_extend(st->messages, page);
		if (n == AS_MSG_PAGE) {
			st->msg_offset += AS_MSG_PAGE;
			json_decref(body);
			fetch_messages(call, st);
			return;
		}
	}
	json_decref(body);
	st->msgs_done = 1;
	finish_list(call, st);
}

static int fetch_messages(struct sg_call *call, struct as_state *st)
{
	const struct sg_pubid *id = sg_call_pubid(call);
	char sid[600], aid[600], before[800], path[2200];

	if (sg_url_escape(id->native, sid, sizeof(sid)) < 0 ||
	    sg_url_escape(id->scope, aid, sizeof(aid)) < 0 ||
	    sg_url_escape(st->before, before, sizeof(before)) < 0) {
		sg_call_fail(call, 404, "not_found_error", "session not found");
		return -1;
	}
	if (st->before[0])
		snprintf(path, sizeof(path), "/sessions/%s/messages?agent_id=%s&limit=%d&before=%s",
		         sid, aid, AS_MSG_PAGE, before);
	else if (st->msg_offset > 0)
		snprintf(path, sizeof(path),
		         "/sessions/%s/messages?agent_id=%s&limit=%d&offset=%ld", sid, aid,
		         AS_MSG_PAGE, st->msg_offset);
	else
		snprintf(path, sizeof(path), "/sessions/%s/messages?agent_id=%s&limit=%d", sid, aid,
		         AS_MSG_PAGE);
	return sg_call_get(call, path, st->headers, on_messages, st);
}

/* Events: the agent (for its name), the listing (running state, model, the context
 * fallback) and the message log, fetched concurrently. */
static void as_list_events(struct sg_call *call)
{
	const struct sg_pubid *id = sg_call_pubid(call);
	struct as_state *st = state_new(call);
	char esc[1024], path[1100];

	if (!st)
		return;
	st->messages = json_array();
	if (!id->scope[0] || !st->messages || sg_url_escape(id->scope, esc, sizeof(esc)) < 0) {
		sg_call_fail(call, 404, "not_found_error", "session not found");
		return;
	}
	st->agent_ids = json_pack("[s]", id->scope);
	st->next_agent = 1;
	if (sg_call_get(call, "/agent/", st->headers, on_agents, st))
		return;
	snprintf(path, sizeof(path), "/sessions/?agent_id=%s", esc);
	if (sg_call_get(call, path, st->headers, on_listing, (void *)(uintptr_t)0))
		return;
	fetch_messages(call, st);
}

static int as_init(struct sg_backend *be, const json_t *options, struct sg_error *err)
{
	static const char *const allowed[] = {"timezone", "max_agents", "fanout",
	                                      "hints",    "cache_ms",   NULL};
	const json_t *tz = json_object_get(options, "timezone");
	const json_t *hints = json_object_get(options, "hints");
	struct as_priv *pv;
	long max_agents = 1000, fanout = 8, cache_ms = 0;
	char tzerr[256];

	if (sg_options_check(options, allowed, err) ||
	    sg_option_int(options, "max_agents", 1, 100000, &max_agents, err) ||
	    sg_option_int(options, "fanout", 1, 256, &fanout, err) ||
	    sg_option_int(options, "cache_ms", 0, 60000, &cache_ms, err))
		return -1;
	if (tz && !json_is_string(tz))
		return sg_err_invalid(err, "timezone: must be an IANA zone name such as \"UTC\"");
	if (hints &&
	    !(json_is_string(hints) && (strcmp(json_string_value(hints), "drop") == 0 ||
	                                strcmp(json_string_value(hints), "user_message") == 0)))
		return sg_err_invalid(err, "hints: must be \"drop\" or \"user_message\"");
	pv = calloc(1, sizeof(*pv));
	if (!pv)
		return sg_err_internal(err, "out of memory");
	pv->max_agents = max_agents;
	pv->fanout = fanout;
	pv->cache_ms = cache_ms;
	pv->hint_mode = hints && strcmp(json_string_value(hints), "user_message") == 0
	                    ? SG_AS_HINT_USER_MESSAGE
	                    : SG_AS_HINT_DROP;
	pv->tz = sg_tz_load(tz ? json_string_value(tz) : "UTC", tzerr, sizeof(tzerr));
	if (!pv->tz) {
		free(pv);
		return sg_err_invalid(err, "timezone: %s", tzerr);
	}
	be->priv = pv;
	return 0;
}

static void as_destroy(struct sg_backend *be)
{
	struct as_priv *pv = be->priv;

	sg_tz_free(pv->tz);
	free(pv);
	be->priv = NULL;
}

static int as_check_identity(const json_t *identity, struct sg_error *err)
{
	const json_t *u = json_object_get(identity, "user_id");
	const char *s = json_string_value(u);

	if (!s || !*s || strlen(s) > AS_USER_MAX)
		return sg_err_invalid(
		    err, "user_id: must be a non-empty string of at most %d bytes", AS_USER_MAX);
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return sg_err_invalid(err, "user_id: must not contain control characters");
	if (json_object_size(identity) != 1)
		return sg_err_invalid(err, "only user_id is accepted");
	return 0;
}

const struct sg_mapping sg_mapping_agentscope = {
    .name = "agentscope",
    .caps = 0,
    .init = as_init,
    .destroy = as_destroy,
    .check_identity = as_check_identity,
    .list_sessions = as_list_sessions,
    .get_session = as_get_session,
    .list_events = as_list_events,
};
