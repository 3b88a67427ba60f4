/* api_read.c - the read path: list, retrieve and the events of a session.
 *
 * A list fans out to every backend the key may reach (one call each, or a walk over the
 * pages of a backend that pages itself) and merges; retrieve and events go to the one
 * backend the public id names. The keyset pager (pager.h) orders, slices and seals cursors;
 * a native walk (walk.h) seals its own. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cursor.h"
#include "idcodec.h"
#include "mapping.h"
#include "pager.h"
#include "query.h"
#include "request.h"

/* The read handlers' state for one request. */
struct rd {
	struct sg_req *r;
	struct sg_session_query sq;
	struct sg_event_query eq;
	char *sid; /* events: the public session id, bound into cursors */
	struct part {
		struct sg_call *call; /* borrowed: the request owns its calls and walks */
		struct sg_walk *walk;
	} * parts; /* one per backend */
	size_t nparts, nwaiting;
	void (*merged)(struct rd *st); /* runs once every part is in */
};

static void rd_free(void *p)
{
	struct rd *st = p;

	sg_session_query_clear(&st->sq);
	sg_event_query_clear(&st->eq);
	free(st->sid);
	free(st->parts);
	free(st);
}

/* The handler state, or NULL after answering 500. */
static struct rd *rd_new(struct sg_req *r, size_t nparts)
{
	struct rd *st = calloc(1, sizeof(*st));

	if (st)
		st->parts = calloc(nparts ? nparts : 1, sizeof(*st->parts));
	if (!st || !st->parts) {
		if (st)
			rd_free(st);
		sg_req_fail(r, 500, "api_error", "out of memory");
		return NULL;
	}
	st->r = r;
	st->nparts = nparts;
	sg_req_set_state(r, st, rd_free);
	return st;
}

static struct sg_pager_ctx pager_ctx(const struct rd *st)
{
	const struct sg_config *cfg = sg_req_config(st->r);
	struct sg_pager_ctx pc = {cfg->secret, cfg->secretlen, sg_req_key(st->r)->name, st->sid};

	return pc;
}

const struct sg_route *sg_api_route_of(const struct sg_key *key, const char *backend)
{
	for (size_t i = 0; i < key->nroutes; i++)
		if (strcmp(key->routes[i].backend->name, backend) == 0)
			return &key->routes[i];
	return NULL;
}

/* A page, or the error that stopped it. */
static void reply_page(struct sg_req *r, json_t *page, const struct sg_error *e)
{
	if (page)
		sg_req_reply(r, 200, page);
	else
		sg_req_error(r, e);
}

static json_t *part_items(const struct part *p)
{
	return p->call ? sg_call_result(p->call) : sg_walk_items(p->walk);
}

/* One part (a backend's call or walk) ended. The first failure fails the request rather
 * than silently leaving a backend's items out; when every part is in, st->merged runs. */
static void part_done(struct rd *st, const struct sg_error *pe)
{
	if (pe) {
		sg_req_error(st->r, pe);
		return;
	}
	if (--st->nwaiting == 0)
		st->merged(st);
}

static void on_part_call(struct sg_call *c, void *arg)
{
	part_done(sg_req_state(arg), sg_call_error(c));
}

static void on_part_walk(struct sg_walk *w, void *arg)
{
	part_done(sg_req_state(arg), sg_walk_error(w));
}

/* Every backend's sessions are in: merge, page with the keyset pager, answer. */
static void sessions_merged(struct rd *st)
{
	struct sg_pager_ctx pc = pager_ctx(st);
	struct sg_error e = {0};
	json_t *all = json_array(), *page;

	for (size_t i = 0; i < st->nparts; i++)
		json_array_extend(all, part_items(&st->parts[i]));
	page = sg_page_sessions(all, &st->sq, &pc, &e);
	json_decref(all);
	reply_page(st->r, page, &e);
}

/* Native paging answers with the walk's own position, sealed like any cursor and marked
 * "m":"w" so a keyset cursor is never mistaken for one (and the other way round). */
static void reply_walk_page(struct rd *st, struct sg_walk *w, const char *fp, int sessions)
{
	struct sg_pager_ctx pc = pager_ctx(st);
	json_t *next = sg_walk_next(w), *page;
	char *tok = NULL;

	if (next) {
		json_object_set_new(next, "m", json_string("w"));
		tok = sg_cursor_seal(pc.secret, pc.secretlen, pc.principal, fp, next);
		json_decref(next);
		if (!tok) {
			sg_req_fail(st->r, 500, "api_error", "page cursor too large");
			return;
		}
	}
	page = json_pack("{s:O, s:s?}", "data", sg_walk_items(w), "next_page", tok);
	if (page && !tok)
		json_object_set_new(page, "next_page", json_null());
	if (page && sessions)
		json_object_set_new(page, "prev_page", json_null());
	free(tok);
	sg_req_reply(st->r, 200, page);
}

static void on_native_walk(struct sg_walk *w, void *arg)
{
	struct rd *st = sg_req_state(arg);
	const struct sg_error *we = sg_walk_error(w);
	int sessions = st->sid == NULL;
	char *fp;

	if (we) {
		sg_req_error(st->r, we);
		return;
	}
	fp = sessions ? sg_session_query_fingerprint(&st->sq)
	              : sg_event_query_bound_fingerprint(&st->eq, st->sid);
	reply_walk_page(st, w, fp ? fp : "", sessions);
	free(fp);
}

/* The position sealed in a native-paging cursor, or NULL after answering 400. */
static json_t *open_walk_cursor(struct rd *st, const char *token, const char *fp)
{
	struct sg_pager_ctx pc = pager_ctx(st);
	struct sg_error e = {0};
	json_t *p = sg_pager_open(&pc, fp, token, &e);
	const json_t *m = json_object_get(p, "m"), *k = json_object_get(p, "k");

	if (p && (!json_is_string(m) || strcmp(json_string_value(m), "w") != 0 ||
	          !json_is_integer(k) || json_integer_value(k) < 0)) {
		json_decref(p);
		p = NULL;
		sg_pager_bad_cursor(&e); /* a keyset cursor, say */
	}
	if (!p)
		sg_req_error(st->r, &e);
	return p;
}

/* Serves one north page natively with a walk from the cursor `page` (or the start). */
static void start_native_walk(struct rd *st, struct sg_walk_spec *spec, const char *page, char *fp)
{
	json_t *start = NULL;

	if (page && !(start = open_walk_cursor(st, page, fp ? fp : ""))) {
		free(fp);
		return;
	}
	free(fp);
	spec->start = start;
	if (!sg_req_walk(st->r, spec, on_native_walk))
		sg_req_fail(st->r, 500, "api_error", "out of memory");
	json_decref(start);
}

/* A backend that pages itself serves the page natively when it is the key's only backend
 * and can give the requested order; otherwise its pages are all read and merged. */
static int native_sessions(const struct sg_key *key, const struct sg_session_query *q)
{
	const struct sg_mapping *m = key->routes[0].backend->mapping;

	return key->nroutes == 1 && m->list_sessions_page &&
	       (!q->order_asc || (m->caps & SG_CAP_NATIVE_ORDER));
}

void sg_api_list_sessions(struct sg_req *r)
{
	const struct sg_key *key = sg_req_key(r);
	struct sg_error e = {0};
	struct rd *st = rd_new(r, key->nroutes);

	if (!st)
		return;
	if (sg_session_query_parse(sg_req_query(r), &st->sq, &e)) {
		sg_req_error(r, &e);
		return;
	}
	if (native_sessions(key, &st->sq)) {
		struct sg_walk_spec spec = {.kind = SG_CALL_SESSIONS_PAGE,
		                            .route = &key->routes[0],
		                            .sq = &st->sq,
		                            .limit = (size_t)st->sq.limit};

		start_native_walk(st, &spec, st->sq.page, sg_session_query_fingerprint(&st->sq));
		return;
	}
	st->nwaiting = key->nroutes;
	st->merged = sessions_merged;
	for (size_t i = 0; i < key->nroutes; i++) {
		const struct sg_route *rt = &key->routes[i];

		if (rt->backend->mapping->list_sessions) {
			struct sg_call *c = sg_req_call(r, SG_CALL_LIST_SESSIONS, rt, on_part_call);

			if (!c) {
				sg_req_fail(r, 500, "api_error", "out of memory");
				return;
			}
			st->parts[i].call = c;
			sg_call_set_session_query(c, &st->sq);
			sg_call_start(c);
		} else {
			struct sg_walk_spec spec = {.kind = SG_CALL_SESSIONS_PAGE,
			                            .route = rt,
			                            .sq = &st->sq,
			                            .collect_all = 1};

			st->parts[i].walk = sg_req_walk(r, &spec, on_part_walk);
			if (!st->parts[i].walk) {
				sg_req_fail(r, 500, "api_error", "out of memory");
				return;
			}
		}
	}
}

static void on_get_done(struct sg_call *c, void *arg)
{
	struct sg_req *r = arg;
	const struct sg_error *ce = sg_call_error(c);
	json_t *s = sg_call_result_object(c);

	if (ce)
		sg_req_error(r, ce);
	else if (!json_is_object(s))
		sg_req_fail(r, 500, "api_error", "backend '%s' returned no session",
		            sg_call_backend(c)->name);
	else
		sg_req_reply(r, 200, json_incref(s));
}

int sg_api_session_route(struct sg_req *r, struct sg_pubid *id, const struct sg_route **rt)
{
	if (sg_id_decode("sesn_", sg_req_param(r), id) ||
	    !(*rt = sg_api_route_of(sg_req_key(r), id->backend))) {
		sg_req_fail(r, 404, "not_found_error", "session not found");
		return -1;
	}
	return 0;
}

void sg_api_get_session(struct sg_req *r)
{
	struct sg_pubid id;
	const struct sg_route *rt;
	struct sg_call *c;

	if (sg_api_session_route(r, &id, &rt))
		return;
	c = sg_req_call(r, SG_CALL_GET_SESSION, rt, on_get_done);
	if (!c) {
		sg_req_fail(r, 500, "api_error", "out of memory");
		return;
	}
	sg_call_set_pubid(c, &id);
	sg_call_start(c);
}

/* Every event of the session is in: the keyset pager orders and slices. */
static void events_merged(struct rd *st)
{
	struct sg_pager_ctx pc = pager_ctx(st);
	struct sg_error e = {0};

	reply_page(st->r, sg_page_events(part_items(&st->parts[0]), &st->eq, &pc, &e), &e);
}

void sg_api_list_events(struct sg_req *r)
{
	struct sg_error e = {0};
	struct sg_pubid id;
	const struct sg_route *rt;
	const struct sg_mapping *m;
	struct sg_walk_spec spec = {.kind = SG_CALL_EVENTS_PAGE};
	struct rd *st = rd_new(r, 1);

	if (!st)
		return;
	if (sg_event_query_parse(sg_req_query(r), &st->eq, &e)) {
		sg_req_error(r, &e);
		return;
	}
	if (sg_api_session_route(r, &id, &rt))
		return;
	st->sid = strdup(sg_req_param(r));
	if (!st->sid) {
		sg_req_fail(r, 500, "api_error", "out of memory");
		return;
	}
	m = rt->backend->mapping;
	st->nwaiting = 1;
	st->merged = events_merged;
	spec.route = rt;
	spec.eq = &st->eq;
	spec.pubid = &id;
	if (m->list_events_page && (!st->eq.order_desc || (m->caps & SG_CAP_NATIVE_ORDER))) {
		spec.limit = (size_t)st->eq.limit;
		start_native_walk(st, &spec, st->eq.page,
		                  sg_event_query_bound_fingerprint(&st->eq, st->sid));
		return;
	}
	if (m->list_events) {
		struct sg_call *c = sg_req_call(r, SG_CALL_LIST_EVENTS, rt, on_part_call);

		if (!c) {
			sg_req_fail(r, 500, "api_error", "out of memory");
			return;
		}
		st->parts[0].call = c;
		sg_call_set_pubid(c, &id);
		sg_call_set_event_query(c, &st->eq);
		sg_call_start(c);
		return;
	}
	if (!m->list_events_page) {
		sg_req_fail(r, 404, "not_found_error", "backend '%s' has no event history",
		            rt->backend->name);
		return;
	}
	spec.collect_all = 1;
	st->parts[0].walk = sg_req_walk(r, &spec, on_part_walk);
	if (!st->parts[0].walk)
		sg_req_fail(r, 500, "api_error", "out of memory");
}

void sg_api_health(struct sg_req *r)
{
	sg_req_reply(r, 200, json_pack("{s:s}", "status", "ok"));
}
