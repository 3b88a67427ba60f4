/* agentscope.c - the AgentScope agent service (backends.md §1): which upstream calls a
 * north request needs, in what order. The translation itself is pure and lives in
 * agentscope_translate.c.
 *
 * AgentScope has no lookup by session id and no pagination: every session call needs the
 * agent id (carried in our public ids as the scope) and returns the whole (user, agent)
 * listing. Identity is the X-User-ID header, taken from the authenticated key's identity
 * object and never from the client. */
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "config.h"
#include "mapping.h"
#include "tz.h"
#include "agentscope_translate.h"

#define AS_USER_MAX 256

struct as_priv {
	struct sg_tz *tz;
	long max_agents; /* fan-out bound when listing without agent_id */
	long fanout;     /* listings fetched at once */
};

/* Per-call state: the agents index and the raw listings, translated once all arrived. */
struct as_state {
	char user_hdr[AS_USER_MAX + 16];
	const char *headers[2];
	json_t *agents_index; /* agent id → AgentView */
	json_t *listings;     /* raw bodies of GET /sessions/ */
	json_t *agent_ids;    /* agents still to list (fan-out queue) */
	size_t next_agent;
	int agents_done;
};

static void state_free(void *p)
{
	struct as_state *st = p;

	json_decref(st->agents_index);
	json_decref(st->listings);
	json_decref(st->agent_ids);
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
	if (!st->listings)
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

/* Retrieve: only the view with the encoded ids is translated. */
static void finish_get(struct sg_call *call, struct as_state *st, const struct sg_as_ctx *ctx)
{
	const struct sg_pubid *id = sg_call_pubid(call);
	const json_t *sessions = json_object_get(json_array_get(st->listings, 0), "sessions");
	struct sg_error err = {0};
	json_t *view, *s;
	size_t i;

	if (!json_is_array(sessions)) {
		sg_call_fail(call, 502, "api_error",
			     "backend '%s': the session listing has the wrong shape", ctx->backend);
		return;
	}
	json_array_foreach(sessions, i, view) {
		const json_t *rec = json_object_get(view, "session");
		const char *sid = json_string_value(json_object_get(rec, "id"));
		const char *aid = json_string_value(json_object_get(rec, "agent_id"));

		if (!sid || !aid || strcmp(sid, id->native) || strcmp(aid, id->scope))
			continue;
		s = sg_as_session_to_cma(view, json_object_get(st->agents_index, aid), ctx, &err);
		if (!s) {
			sg_call_fail_with(call, &err);
			return;
		}
		sg_call_items(call, json_pack("[o]", s));
		return;
	}
	sg_call_fail(call, 404, "not_found_error", "session not found");
}

/* Translates every listing once nothing is pending: the list ends here. */
static void finish_list(struct sg_call *call, struct as_state *st)
{
	struct sg_as_ctx ctx;
	struct sg_error err = {0};
	json_t *out, *listing;
	size_t i;

	if (sg_call_pending(call) > 0 || !st->agents_done || st->next_agent <
	    json_array_size(st->agent_ids))
		return;
	ctx_of(call, &ctx);
	if (sg_call_kind(call) == SG_CALL_GET_SESSION) {
		finish_get(call, st, &ctx);
		return;
	}
	out = json_array();
	if (!out) {
		sg_call_fail(call, 500, "api_error", "out of memory");
		return;
	}
	json_array_foreach(st->listings, i, listing) {
		if (sg_as_listing_to_cma(listing, st->agents_index, &ctx, out, &err)) {
			json_decref(out);
			sg_call_fail_with(call, &err);
			return;
		}
	}
	sg_call_items(call, out);
}

static void on_listing(struct sg_call *call, const struct sg_fetch_res *res, void *arg);

/* Starts the next listing of the fan-out queue; returns -1 when the call failed. */
static int list_next_agent(struct sg_call *call, struct as_state *st)
{
	const char *aid = json_string_value(json_array_get(st->agent_ids, st->next_agent));
	char esc[1024], path[1100];

	st->next_agent++;
	if (!aid || sg_url_escape(aid, esc, sizeof(esc)) < 0) {
		sg_call_fail(call, 502, "api_error", "backend '%s': unusable agent id",
			     sg_call_backend(call)->name);
		return -1;
	}
	snprintf(path, sizeof(path), "/sessions/?agent_id=%s", esc);
	return sg_call_get(call, path, st->headers, on_listing, st);
}

static void on_listing(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct as_state *st = arg;
	json_t *body = sg_call_json(call, res);

	if (!body)
		return;
	json_array_append_new(st->listings, body);
	if (st->next_agent < json_array_size(st->agent_ids) && list_next_agent(call, st))
		return;
	finish_list(call, st);
}

static void on_agents(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct as_state *st = arg;
	const struct as_priv *pv = priv_of(call);
	const struct sg_session_query *q = sg_call_session_query(call);
	struct sg_as_ctx ctx;
	struct sg_error err = {0};
	json_t *body = sg_call_json(call, res);
	const char *aid;
	json_t *v;

	if (!body)
		return;
	ctx_of(call, &ctx);
	st->agents_index = sg_as_agents_index(body, &ctx, &err);
	json_decref(body);
	if (!st->agents_index) {
		sg_call_fail_with(call, &err);
		return;
	}
	st->agents_done = 1;
	/* Without agent_id: list every agent of the user, a bounded window at a time. */
	if (sg_call_kind(call) == SG_CALL_LIST_SESSIONS && !q->agent_id) {
		if ((long)json_object_size(st->agents_index) > pv->max_agents) {
			sg_call_fail(call, 502, "api_error",
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
	if (sg_call_get(call, "/agent/", st->headers, on_agents, st))
		return;
	if (q->agent_id) {
		st->agent_ids = json_pack("[s]", q->agent_id);
		list_next_agent(call, st);
	}
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
		sg_call_get(call, path, st->headers, on_listing, st);
	}
}

static int as_init(struct sg_backend *be, const json_t *options, struct sg_error *err)
{
	static const char *const allowed[] = {"timezone", "max_agents", "fanout", NULL};
	struct as_priv *pv = calloc(1, sizeof(*pv));
	const char *tzname = "UTC", *k;
	json_t *v;
	char tzerr[256];

	if (!pv)
		return sg_err_internal(err, "out of memory");
	pv->max_agents = 1000;
	pv->fanout = 8;
	json_object_foreach((json_t *)options, k, v) {
		size_t i;

		if (k[0] == '_')
			continue; /* comment */
		for (i = 0; allowed[i] && strcmp(allowed[i], k); i++)
			;
		if (!allowed[i]) {
			free(pv);
			return sg_err_invalid(err, "%s: unknown option", k);
		}
	}
	v = json_object_get(options, "timezone");
	if (v && !json_is_string(v)) {
		free(pv);
		return sg_err_invalid(err, "timezone: must be an IANA zone name such as \"UTC\"");
	}
	if (v)
		tzname = json_string_value(v);
	v = json_object_get(options, "max_agents");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 1 ||
		  json_integer_value(v) > 100000)) {
		free(pv);
		return sg_err_invalid(err, "max_agents: must be an integer between 1 and 100000");
	}
	if (v)
		pv->max_agents = (long)json_integer_value(v);
	v = json_object_get(options, "fanout");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 1 ||
		  json_integer_value(v) > 256)) {
		free(pv);
		return sg_err_invalid(err, "fanout: must be an integer between 1 and 256");
	}
	if (v)
		pv->fanout = (long)json_integer_value(v);
	pv->tz = sg_tz_load(tzname, tzerr, sizeof(tzerr));
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
		return sg_err_invalid(err, "user_id: must be a non-empty string of at most %d bytes",
				      AS_USER_MAX);
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
	.list_events = NULL,
};
