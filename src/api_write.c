/* api_write.c - the write path: create, update, archive and delete a session, send events.
 *
 * Every write is validated whole before anything reaches a backend (wbody.h), honours an
 * Idempotency-Key (request.h), goes to exactly one backend (the one a public id names; for a
 * create, the one of the key's backends that has the agent), and is sent once: the module
 * never retries it, and an answer that is lost says the outcome is unknown (call.c). */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "idcodec.h"
#include "mapping.h"
#include "log.h"
#include "redis.h"
#include "request.h"
#include "stream.h"
#include "wbody.h"

/* One write in flight. */
struct wr {
	struct sg_req *r;
	json_t *body; /* the validated north body (owned), or NULL */
	struct sg_pubid id;
	int has_id;
	enum sg_call_kind kind;
	/* create with several candidate backends: the agent lookups */
	const struct sg_route *cands[SG_MAX_ROUTES];
	size_t ncands, nwaiting;
	const struct sg_route *found[SG_MAX_ROUTES];
	size_t nfound;
	struct sg_error probe_err;
	int probe_failed;
	/* what runs once the Idempotency-Key is settled (at once, or when the shared store
	 * answers), and the session's backend for a write on one session */
	void (*go)(struct wr *w);
	const struct sg_route *rt;
	/* the write is done: the fleet's count of writes to its backend is raised first */
	struct sg_call *done_call;
	struct sg_redis_op *gen_op;
};

static void wr_free(void *p)
{
	struct wr *w = p;

	sg_redis_cancel(w->gen_op);
	json_decref(w->body);
	free(w);
}

static const char *op_name(enum sg_call_kind k)
{
	switch (k) {
	case SG_CALL_CREATE_SESSION:
		return "create sessions";
	case SG_CALL_UPDATE_SESSION:
		return "update sessions";
	case SG_CALL_ARCHIVE_SESSION:
		return "archive sessions";
	case SG_CALL_DELETE_SESSION:
		return "delete sessions";
	case SG_CALL_SEND_EVENTS:
		return "take events";
	default:
		return "do this";
	}
}

static void finish_write(struct wr *w)
{
	struct sg_call *c = w->done_call;
	const struct sg_error *ce = sg_call_error(c);
	json_t *obj = sg_call_result_object(c);

	if (ce) {
		sg_req_error(w->r, ce);
	} else if (w->kind == SG_CALL_DELETE_SESSION) {
		/* its open streams, on every worker, say session.deleted and end */
		sg_streams_deleted(sg_req_host(w->r)->streams, sg_req_param(w->r));
		sg_req_reply(
		    w->r, 200,
		    json_pack("{s:s, s:s}", "id", sg_req_param(w->r), "type", "session_deleted"));
	} else if (!json_is_object(obj)) {
		sg_req_fail(w->r, 500, "api_error", "backend '%s' answered the write with nothing",
		            sg_call_backend(c)->name);
	} else {
		if (w->kind == SG_CALL_SEND_EVENTS)
			/* the accepted events are echoed on the session's open streams (a backend
			 * whose own stream echoes them too is de-duplicated by id) */
			sg_streams_publish(sg_req_host(w->r)->streams, sg_req_param(w->r),
			                   json_object_get(obj, "data"));
		sg_req_reply(w->r, 200, json_incref(obj));
	}
}

/* With Redis (redis.h): every instance is to see this write before the client can ask any of
 * them (api_read.c, the fleet's write generations), so the counter is raised before the
 * answer goes. Redis slow or down: the answer goes anyway; other instances may then answer
 * from what they held for up to the backend's freshness window. */
static void on_gen_bumped(enum sg_redis_status status, const struct redisReply *reply, void *arg)
{
	struct wr *w = arg;
	struct sg_backend *be = (struct sg_backend *)sg_call_backend(w->done_call);

	w->gen_op = NULL;
	if (status == SG_REDIS_OK && reply->type == REDIS_REPLY_INTEGER)
		sg_backend_shared_gen(be, (unsigned long)reply->integer);
	else
		sg_warn("request %s: redis %s: other instances may answer from what they held of "
		        "backend '%s' for up to its freshness window",
		        sg_req_id(w->r),
		        status == SG_REDIS_TIMEOUT ? "timed out"
		        : status == SG_REDIS_DOWN  ? "went away"
		                                   : "answered an error",
		        be->name);
	finish_write(w);
}

static void on_write_done(struct sg_call *c, void *arg)
{
	struct wr *w = sg_req_state(arg);
	struct sg_req_host *h = sg_req_host(w->r);
	const struct sg_config *cfg = sg_req_config(w->r);

	w->done_call = c;
	if (h->redis) {
		char key[160];
		const char *argv[] = {"INCR", key};
		size_t lens[2] = {4, 0};
		int n = snprintf(key, sizeof(key), "%sgen:%s", cfg->redis.prefix,
		                 sg_call_backend(c)->name);

		lens[1] = n > 0 && (size_t)n < sizeof(key) ? (size_t)n : 0;
		w->gen_op = sg_redis_cmd(h->redis, 2, argv, lens, on_gen_bumped, w);
		if (w->gen_op)
			return;
		sg_warn("request %s: redis is not connected: other instances may answer from what "
		        "they held of backend '%s' for up to its freshness window",
		        sg_req_id(w->r), sg_call_backend(c)->name);
	}
	finish_write(w);
}

/* Sends the write to rt's backend. */
static void start_write(struct wr *w, const struct sg_route *rt)
{
	const struct sg_mapping *m = rt->backend->mapping;
	struct sg_call *c;

	if (!sg_mapping_can(m, w->kind)) {
		sg_req_fail(w->r, 400, "invalid_request_error", "backend '%s' (%s) cannot %s",
		            rt->backend->name, m->name, op_name(w->kind));
		return;
	}
	c = sg_req_call(w->r, w->kind, rt, on_write_done);
	if (!c) {
		sg_req_fail(w->r, 500, "api_error", "out of memory");
		return;
	}
	sg_call_set_body(c, w->body);
	if (w->has_id)
		sg_call_set_pubid(c, &w->id);
	sg_call_start(c);
}

/* Settled by the shared Idempotency-Key store: the write goes on. */
static void resume(struct sg_req *r)
{
	struct wr *w = sg_req_state(r);

	w->go(w);
}

/* The body of a write validated, and its Idempotency-Key honoured; then go(w) runs, at once
 * or once the key's store (Redis, when configured) has answered. Answers the request itself
 * otherwise. id: the session of a write on one session (its backend rt), or NULL. */
static void begin_write(struct sg_req *r, enum sg_call_kind kind, int has_body,
                        enum sg_wbody_kind bk, const struct sg_pubid *id, const struct sg_route *rt,
                        void (*go)(struct wr *w))
{
	const struct sg_config *cfg = sg_req_config(r);
	struct sg_error e;
	size_t len;
	const char *raw = sg_req_body(r, &len);
	struct wr *w;

	if (len > cfg->max_write_body_bytes) {
		sg_req_fail(r, 413, "invalid_request_error",
		            "the request body is %zu bytes; at most %zu are accepted", len,
		            cfg->max_write_body_bytes);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		sg_req_fail(r, 500, "api_error", "out of memory");
		return;
	}
	w->r = r;
	w->kind = kind;
	sg_req_set_state(r, w, wr_free);
	if (has_body) {
		w->body = sg_wbody_parse(bk, raw, len, &e);
		if (!w->body) {
			sg_req_error(r, &e);
			return;
		}
	} else if (len && !(len == 2 && !memcmp(raw, "{}", 2))) {
		/* archive takes no parameters: say so rather than drop what was sent */
		sg_req_fail(r, 400, "invalid_request_error", "this request takes no body");
		return;
	}
	w->go = go;
	w->rt = rt;
	if (id) {
		w->id = *id;
		w->has_id = 1;
	}
	if (strcmp(sg_req_method(r), "POST") == 0 && sg_req_idempotency(r, raw, len, resume))
		return; /* answered, or resume() runs later */
	go(w);
}

static void session_go(struct wr *w)
{
	start_write(w, w->rt);
}

/* A write on the session the path names. */
static void session_write(struct sg_req *r, enum sg_call_kind kind, int has_body,
                          enum sg_wbody_kind bk)
{
	const struct sg_route *rt;
	struct sg_pubid id;

	/* An unknown id is a 404 before the body is even read: nothing to validate against. */
	if (sg_api_session_route(r, &id, &rt))
		return;
	begin_write(r, kind, has_body, bk, &id, rt, session_go);
}

void sg_api_update_session(struct sg_req *r)
{
	session_write(r, SG_CALL_UPDATE_SESSION, 1, SG_WBODY_UPDATE);
}

void sg_api_archive_session(struct sg_req *r)
{
	session_write(r, SG_CALL_ARCHIVE_SESSION, 0, SG_WBODY_UPDATE);
}

void sg_api_delete_session(struct sg_req *r)
{
	session_write(r, SG_CALL_DELETE_SESSION, 0, SG_WBODY_UPDATE);
}

void sg_api_send_events(struct sg_req *r)
{
	session_write(r, SG_CALL_SEND_EVENTS, 1, SG_WBODY_EVENTS);
}

/* ---- create: which backend has the agent ---------------------------------------------- */

static const char *agent_id_of(const json_t *body)
{
	const json_t *a = json_object_get(body, "agent");

	return json_is_string(a) ? json_string_value(a)
	                         : json_string_value(json_object_get(a, "id"));
}

static void on_probe(struct sg_call *c, void *arg)
{
	struct wr *w = sg_req_state(arg);
	const struct sg_error *ce = sg_call_error(c);
	size_t i;

	for (i = 0; i < w->ncands && w->cands[i]->backend != sg_call_backend(c); i++)
		;
	if (ce && ce->status != 404 && !w->probe_failed) {
		w->probe_err = *ce;
		w->probe_failed = 1;
	} else if (!ce && i < w->ncands) {
		w->found[w->nfound++] = w->cands[i];
	}
	if (--w->nwaiting)
		return;
	if (w->nfound == 1) {
		start_write(w, w->found[0]);
	} else if (w->nfound > 1) {
		sg_req_fail(w->r, 400, "invalid_request_error",
		            "agent: '%.200s' is known to more than one backend of this key ('%s', "
		            "'%s'); use a key routed to one of them",
		            agent_id_of(w->body), w->found[0]->backend->name,
		            w->found[1]->backend->name);
	} else if (w->probe_failed) {
		/* Not knowing where the agent lives, creating anywhere could be wrong. */
		sg_req_error(w->r, &w->probe_err);
	} else {
		sg_req_fail(w->r, 404, "not_found_error",
		            "agent: '%.200s' is not an agent of any backend of this key",
		            agent_id_of(w->body));
	}
}

/* Creates on the one backend that can, or on the one of several that has the agent. */
static void create_go(struct wr *w)
{
	struct sg_req *r = w->r;
	const struct sg_key *key = sg_req_key(r);
	size_t i;

	if (strlen(agent_id_of(w->body)) >= SG_ID_FIELD_MAX) {
		sg_req_fail(r, 400, "invalid_request_error",
		            "agent: the id is longer than %d bytes", SG_ID_FIELD_MAX - 1);
		return;
	}
	for (i = 0; i < key->nroutes && w->ncands < SG_MAX_ROUTES; i++)
		if (key->routes[i].backend->mapping->create_session)
			w->cands[w->ncands++] = &key->routes[i];
	if (w->ncands == 0) {
		sg_req_fail(r, 400, "invalid_request_error",
		            "none of the backends this key reaches can create sessions");
		return;
	}
	if (w->ncands == 1) {
		start_write(w, w->cands[0]);
		return;
	}
	/* Several backends could take it: the one that has the agent does. */
	w->nwaiting = w->ncands;
	for (i = 0; i < w->ncands; i++) {
		struct sg_pubid id = {0};
		struct sg_call *c;

		if (!w->cands[i]->backend->mapping->get_agent) {
			w->nwaiting--;
			continue;
		}
		c = sg_req_call(r, SG_CALL_GET_AGENT, w->cands[i], on_probe);
		if (!c) {
			sg_req_fail(r, 500, "api_error", "out of memory");
			return;
		}
		snprintf(id.backend, sizeof(id.backend), "%s", w->cands[i]->backend->name);
		snprintf(id.native, sizeof(id.native), "%s", agent_id_of(w->body));
		sg_call_set_pubid(c, &id);
		sg_call_start(c);
	}
	if (w->nwaiting == 0)
		sg_req_fail(r, 400, "invalid_request_error",
		            "this key reaches several backends and none can look agents up; use a "
		            "key routed to one backend to create sessions");
}

void sg_api_create_session(struct sg_req *r)
{
	begin_write(r, SG_CALL_CREATE_SESSION, 1, SG_WBODY_CREATE, NULL, NULL, create_go);
}
