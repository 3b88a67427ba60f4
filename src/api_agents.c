/* api_agents.c - the agents a key can run sessions with, read-only: GET /v1/agents (a
 * PageCursor: {data, next_page}) and GET /v1/agents/{id}?version=N.
 *
 * Agents keep their backend's own ids (the id a session's `agent.id` shows and `agent_id`
 * filters on). A key routed to several backends lists them all, merged newest first; a
 * retrieve asks every backend that can look agents up and answers the one that knows the
 * id (an id two backends know is refused as ambiguous, never answered with a guess). */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "idcodec.h"
#include "mapping.h"
#include "pager.h"
#include "query.h"
#include "request.h"

struct ag {
	struct sg_req *r;
	struct sg_session_query q;
	struct sg_call *calls[SG_MAX_ROUTES]; /* borrowed: the request owns them */
	size_t ncalls, nwaiting;
	json_t *found; /* retrieve: the agent, when one backend had it */
	const char *found_on;
	const char *also_on;
	struct sg_error err;
	int failed;
};

static void ag_free(void *p)
{
	struct ag *a = p;

	sg_session_query_clear(&a->q);
	json_decref(a->found);
	free(a);
}

static struct ag *ag_new(struct sg_req *r)
{
	struct ag *a = calloc(1, sizeof(*a));

	if (!a) {
		sg_req_fail(r, 500, "api_error", "out of memory");
		return NULL;
	}
	a->r = r;
	sg_req_set_state(r, a, ag_free);
	return a;
}

/* Every backend's agents are in: merge, filter, page. */
static void agents_merged(struct ag *a)
{
	const struct sg_config *cfg = sg_req_config(a->r);
	struct sg_pager_ctx pc = {cfg->secret, cfg->secretlen, sg_req_key(a->r)->name,
	                          "agents",    cfg->secrets,   cfg->nsecrets};
	struct sg_error e = {0};
	json_t *all = json_array(), *page;

	for (size_t i = 0; i < a->ncalls; i++)
		json_array_extend(all, sg_call_result(a->calls[i]));
	page = sg_page_sessions(all, &a->q, &pc, &e);
	json_decref(all);
	if (!page) {
		sg_req_error(a->r, &e);
		return;
	}
	json_object_del(page, "prev_page"); /* agents.list is a PageCursor */
	sg_req_reply(a->r, 200, page);
}

static void on_list(struct sg_call *c, void *arg)
{
	struct ag *a = sg_req_state(arg);
	const struct sg_error *ce = sg_call_error(c);

	if (ce) {
		sg_req_error(a->r, ce); /* nothing silently left out */
		return;
	}
	if (--a->nwaiting == 0)
		agents_merged(a);
}

void sg_api_list_agents(struct sg_req *r)
{
	const struct sg_key *key = sg_req_key(r);
	struct sg_error e = {0};
	struct ag *a = ag_new(r);

	if (!a)
		return;
	if (sg_session_query_parse(sg_req_query(r), &a->q, &e)) {
		sg_req_error(r, &e);
		return;
	}
	/* The parser knows the sessions list; of its filters, agents take only these. */
	if (a->q.agent_id || a->q.agent_version >= 0 || a->q.deployment_id ||
	    a->q.memory_store_id || a->q.statuses || a->q.order_asc || a->q.created.has_gt ||
	    a->q.created.has_lt) {
		sg_req_fail(
		    r, 400, "invalid_request_error",
		    "GET /v1/agents takes limit, page, include_archived, created_at[gte] and "
		    "created_at[lte] only");
		return;
	}
	for (size_t i = 0; i < key->nroutes; i++) {
		struct sg_call *c;

		if (!key->routes[i].backend->mapping->list_agents)
			continue;
		c = sg_req_call(r, SG_CALL_LIST_AGENTS, &key->routes[i], on_list);
		if (!c) {
			sg_req_fail(r, 500, "api_error", "out of memory");
			return;
		}
		a->calls[a->ncalls++] = c;
	}
	a->nwaiting = a->ncalls;
	if (a->ncalls == 0) {
		sg_req_reply(r, 200, json_pack("{s:[], s:n}", "data", "next_page"));
		return;
	}
	for (size_t i = 0; i < a->ncalls; i++)
		sg_call_start(a->calls[i]);
}

static void on_get(struct sg_call *c, void *arg)
{
	struct ag *a = sg_req_state(arg);
	const struct sg_error *ce = sg_call_error(c);
	json_t *obj = sg_call_result_object(c);

	if (ce && ce->status != 404 && !a->failed) {
		a->err = *ce;
		a->failed = 1;
	} else if (!ce && json_is_object(obj)) {
		if (a->found)
			a->also_on = sg_call_backend(c)->name;
		else {
			a->found = json_incref(obj);
			a->found_on = sg_call_backend(c)->name;
		}
	}
	if (--a->nwaiting)
		return;
	if (a->found && a->also_on)
		sg_req_fail(a->r, 400, "invalid_request_error",
		            "agent '%.200s' is known to more than one backend of this key ('%s', "
		            "'%s')",
		            sg_req_param(a->r), a->found_on, a->also_on);
	else if (a->found)
		sg_req_reply(a->r, 200, json_incref(a->found));
	else if (a->failed)
		sg_req_error(a->r, &a->err);
	else
		sg_req_fail(a->r, 404, "not_found_error", "agent not found");
}

/* ?version=N, or -1. Returns -1 after answering 400. */
static int version_param(struct sg_req *r, int64_t *out)
{
	const char *q = sg_req_query(r), *p;
	char *end;
	long long v;

	*out = -1;
	if (!q)
		return 0;
	for (p = q; p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
		if (strncmp(p, "version=", 8) != 0)
			continue;
		v = strtoll(p + 8, &end, 10);
		if (end == p + 8 || (*end && *end != '&') || v < 1) {
			sg_req_fail(r, 400, "invalid_request_error",
			            "version: must be a positive integer");
			return -1;
		}
		*out = v;
	}
	return 0;
}

void sg_api_get_agent(struct sg_req *r)
{
	const struct sg_key *key = sg_req_key(r);
	struct ag *a = ag_new(r);
	int64_t version;

	if (!a || version_param(r, &version))
		return;
	if (strlen(sg_req_param(r)) >= SG_ID_FIELD_MAX) {
		sg_req_fail(r, 404, "not_found_error", "agent not found");
		return;
	}
	for (size_t i = 0; i < key->nroutes; i++) {
		struct sg_pubid id = {0};
		struct sg_call *c;

		if (!key->routes[i].backend->mapping->get_agent)
			continue;
		c = sg_req_call(r, SG_CALL_GET_AGENT, &key->routes[i], on_get);
		if (!c) {
			sg_req_fail(r, 500, "api_error", "out of memory");
			return;
		}
		snprintf(id.backend, sizeof(id.backend), "%s", key->routes[i].backend->name);
		snprintf(id.native, sizeof(id.native), "%s", sg_req_param(r));
		sg_call_set_pubid(c, &id);
		sg_call_set_agent_version(c, version);
		a->calls[a->ncalls++] = c;
	}
	a->nwaiting = a->ncalls;
	if (a->ncalls == 0) {
		sg_req_fail(r, 404, "not_found_error", "agent not found");
		return;
	}
	for (size_t i = 0; i < a->ncalls; i++)
		sg_call_start(a->calls[i]);
}
