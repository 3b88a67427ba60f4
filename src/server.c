/* server.c - see server.h.
 *
 * One request's life: handle() routes and authenticates, parses the query, starts one
 * struct sg_call per backend it needs, and returns to the loop. When the calls are done
 * (or the request deadline fires) finish_*() renders the answer and frees everything.
 * Nothing here blocks: all waiting happens in the event loop. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cache.h"
#include "call.h"
#include "codec.h"
#include "config.h"
#include "crypto.h"
#include "cursor.h"
#include "idcodec.h"
#include "log.h"
#include "mapping.h"
#include "pager.h"
#include "query.h"
#include "upstream.h"
#include "walk.h"

#define SG_MAX_ROUTES 64

struct worker {
	struct sg_server *srv;
	int index;
	pthread_t thread;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct sg_upstream *up;
	struct sg_cache *cache;
	struct event *stop_ev;  /* activated by the main thread */
	struct event *grace_ev; /* drain deadline */
	size_t inflight;
	int draining;
};

struct sg_server {
	const struct sg_config *cfg;
	evutil_socket_t fd;
	int port;
	struct worker *workers;
	int nworkers;
	int started;
	int listening; /* workers still accepting; the last to stop shuts the socket */
	pthread_mutex_t lock;
};

enum route { R_NONE, R_HEALTH, R_SESSIONS, R_SESSION, R_EVENTS };

/* A backend's share of a request: one call, or a walk over its own pages. */
struct part {
	struct sg_call *call;
	struct sg_walk *walk;
};

/* One north request in flight. */
struct req {
	struct worker *w;
	struct evhttp_request *ev;
	char id[32];
	char method[8];
	char path[256];
	struct timespec t0;
	int64_t now_us;
	const struct sg_key *key;
	struct sg_session_query sq;
	struct sg_event_query eq;
	char *sid;         /* events: the public session id, bound into cursors */
	struct part parts[SG_MAX_ROUTES]; /* one per backend: a call, or a walk over pages */
	size_t nparts, nwaiting;
	void (*merged)(struct req *r);    /* runs once every part is in */
	struct event *deadline;
	int finished;
};

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Error";
	}
}

static void req_free(struct req *r)
{
	for (size_t i = 0; i < r->nparts; i++) {
		sg_call_free(r->parts[i].call);
		sg_walk_free(r->parts[i].walk);
	}
	if (r->deadline)
		event_free(r->deadline);
	sg_session_query_clear(&r->sq);
	sg_event_query_clear(&r->eq);
	free(r->sid);
	free(r);
}

/* A request stops counting as in flight once its answer is written out (a draining worker
 * must not leave its loop with a reply still in a buffer) or once its connection is gone.
 * evhttp reports the first with the request's completion callback and the second only
 * with the connection's close callback, so both point at this small record; whichever
 * comes first uncounts the request and frees it (after a completion the close callback is
 * cleared; after a close, evhttp never completes the request). */
struct inflight {
	struct worker *w;
};

static void request_gone(struct worker *w)
{
	w->inflight--;
	if (w->draining && w->inflight == 0)
		event_base_loopexit(w->base, NULL);
}

static void on_complete(struct evhttp_request *ev, void *arg)
{
	struct inflight *f = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(ev);

	if (evcon)
		evhttp_connection_set_closecb(evcon, NULL, NULL);
	request_gone(f->w);
	free(f);
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
	struct inflight *f = arg;

	(void)evcon;
	request_gone(f->w);
	free(f);
}

/* Sends body (stolen) with the headers every north answer carries, logs, frees r. */
static void reply(struct req *r, int status, json_t *body, const struct sg_error *e)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
	struct evbuffer *buf = evbuffer_new();
	char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
	struct timespec t1;

	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "request-id", r->id);
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (e && e->should_retry >= 0)
		evhttp_add_header(h, "x-should-retry", e->should_retry ? "true" : "false");
	if (!text || !buf) {
		status = 500;
		if (buf)
			evbuffer_add_printf(buf, "{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
						 "\"message\":\"out of memory\"},\"request_id\":\"%s\"}",
					    r->id);
	} else {
		evbuffer_add(buf, text, strlen(text));
	}
	evhttp_send_reply(r->ev, status, reason(status), buf);
	if (buf)
		evbuffer_free(buf);
	free(text);
	json_decref(body);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r->w->srv->cfg->access_log)
		sg_info("%s %s %s %d %ldms key=%s%s%s", r->id, r->method, r->path, status,
			(long)((t1.tv_sec - r->t0.tv_sec) * 1000 + (t1.tv_nsec - r->t0.tv_nsec) / 1000000),
			r->key ? r->key->name : "-", e ? " error=" : "", e ? e->message : "");
	r->finished = 1;
	req_free(r);
}

static void reply_error(struct req *r, struct sg_error *e)
{
	json_t *body;

	sg_error_default_retry(e);
	body = json_pack("{s:s, s:{s:s, s:s}, s:s}", "type", "error", "error", "type", e->type,
			 "message", e->message, "request_id", r->id);
	reply(r, e->status, body, e);
}

__attribute__((format(printf, 4, 5))) static void fail(struct req *r, int status, const char *type,
						       const char *fmt, ...)
{
	struct sg_error e;
	va_list ap;

	va_start(ap, fmt);
	sg_error_vset(&e, status, type, fmt, ap);
	va_end(ap);
	reply_error(r, &e);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct req *r = arg;

	(void)fd;
	(void)what;
	fail(r, 504, "timeout_error", "the request took longer than %ld ms",
	     r->w->srv->cfg->request_timeout_ms);
}

static struct sg_call_env env_of(struct req *r)
{
	struct sg_call_env env = {
		.upstream = r->w->up,
		.cache = r->w->cache,
		.base = r->w->base,
		.request_id = r->id,
		.principal = r->key->name,
		.now_us = r->now_us,
	};

	return env;
}

static struct sg_call *new_call(struct req *r, enum sg_call_kind kind, const struct sg_route *rt,
				sg_call_done_cb done)
{
	struct sg_call_env env = env_of(r);
	struct sg_call *c;

	if (r->nparts >= SG_MAX_ROUTES)
		return NULL;
	c = sg_call_new(kind, &env, rt->backend, rt->identity, done, r);
	if (c)
		r->parts[r->nparts++].call = c;
	return c;
}

static struct sg_walk *new_walk(struct req *r, struct sg_walk_spec *spec, sg_walk_done_cb done)
{
	struct sg_call_env env = env_of(r);
	struct sg_walk *w;

	if (r->nparts >= SG_MAX_ROUTES)
		return NULL;
	spec->env = &env; /* copied by sg_walk_start */
	w = sg_walk_start(spec, done, r);
	if (w)
		r->parts[r->nparts++].walk = w;
	return w;
}

static json_t *part_items(const struct part *p)
{
	return p->call ? sg_call_result(p->call) : sg_walk_items(p->walk);
}

static struct sg_pager_ctx pager_ctx(const struct req *r)
{
	struct sg_pager_ctx pc = {r->w->srv->cfg->secret, r->w->srv->cfg->secretlen,
				  r->key->name, r->sid};

	return pc;
}

/* One part (a backend's call or walk) ended. The first failure fails the request rather
 * than silently leaving a backend's items out; when every part is in, r->merged runs. */
static void part_done(struct req *r, const struct sg_error *pe)
{
	struct sg_error e;

	if (pe) {
		e = *pe;
		reply_error(r, &e);
		return;
	}
	if (--r->nwaiting == 0)
		r->merged(r);
}

static void on_part_call(struct sg_call *c, void *arg)
{
	part_done(arg, sg_call_error(c));
}

static void on_part_walk(struct sg_walk *w, void *arg)
{
	part_done(arg, sg_walk_error(w));
}

/* A page, or the error that stopped it. */
static void reply_page(struct req *r, json_t *page, struct sg_error *e)
{
	if (page)
		reply(r, 200, page, NULL);
	else
		reply_error(r, e);
}

/* Every backend's sessions are in: merge, page with the keyset pager, answer. */
static void sessions_merged(struct req *r)
{
	struct sg_pager_ctx pc = pager_ctx(r);
	struct sg_error e = {0};
	json_t *all = json_array(), *page;

	for (size_t i = 0; i < r->nparts; i++)
		json_array_extend(all, part_items(&r->parts[i]));
	page = sg_page_sessions(all, &r->sq, &pc, &e);
	json_decref(all);
	reply_page(r, page, &e);
}

/* Native paging answers with the walk's own position, sealed like any cursor and marked
 * "m":"w" so a keyset cursor is never mistaken for one (and the other way round). */
static void reply_walk_page(struct req *r, struct sg_walk *w, const char *fp, int sessions)
{
	struct sg_pager_ctx pc = pager_ctx(r);
	json_t *next = sg_walk_next(w), *page;
	char *tok = NULL;

	if (next) {
		json_object_set_new(next, "m", json_string("w"));
		tok = sg_cursor_seal(pc.secret, pc.secretlen, pc.principal, fp, next);
		json_decref(next);
		if (!tok) {
			fail(r, 500, "api_error", "page cursor too large");
			return;
		}
	}
	page = json_pack("{s:O, s:s?}", "data", sg_walk_items(w), "next_page", tok);
	if (page && !tok)
		json_object_set_new(page, "next_page", json_null());
	if (page && sessions)
		json_object_set_new(page, "prev_page", json_null());
	free(tok);
	reply(r, 200, page, NULL);
}

static void on_native_sessions(struct sg_walk *w, void *arg)
{
	struct req *r = arg;
	const struct sg_error *we = sg_walk_error(w);
	struct sg_error e;
	char *fp;

	if (we) {
		e = *we;
		reply_error(r, &e);
		return;
	}
	fp = sg_session_query_fingerprint(&r->sq);
	reply_walk_page(r, w, fp ? fp : "", 1);
	free(fp);
}

/* The position sealed in a native-paging cursor, or NULL after answering 400. */
static json_t *open_walk_cursor(struct req *r, const char *token, const char *fp)
{
	struct sg_pager_ctx pc = pager_ctx(r);
	struct sg_error e = {0};
	json_t *p = sg_pager_open(&pc, fp, token, &e);

	if (p && (!json_is_string(json_object_get(p, "m")) ||
		  strcmp(json_string_value(json_object_get(p, "m")), "w") != 0 ||
		  !json_is_integer(json_object_get(p, "k")) ||
		  json_integer_value(json_object_get(p, "k")) < 0)) {
		json_decref(p);
		p = NULL;
		sg_pager_bad_cursor(&e); /* a keyset cursor, say */
	}
	if (!p)
		reply_error(r, &e);
	return p;
}

/* A backend that pages itself serves the page natively when it is the key's only backend
 * and can give the requested order; otherwise its pages are all read and merged. */
static int native_sessions(const struct req *r)
{
	const struct sg_mapping *m = r->key->routes[0].backend->mapping;

	return r->key->nroutes == 1 && m->list_sessions_page &&
	       (!r->sq.order_asc || (m->caps & SG_CAP_NATIVE_ORDER));
}

static void list_sessions(struct req *r, const char *query)
{
	struct sg_error e = {0};
	size_t n = r->key->nroutes < SG_MAX_ROUTES ? r->key->nroutes : SG_MAX_ROUTES;

	if (sg_session_query_parse(query, &r->sq, &e)) {
		reply_error(r, &e);
		return;
	}
	if (native_sessions(r)) {
		struct sg_walk_spec spec = {.kind = SG_CALL_SESSIONS_PAGE,
					    .route = &r->key->routes[0],
					    .sq = &r->sq,
					    .limit = (size_t)r->sq.limit};
		char *fp = sg_session_query_fingerprint(&r->sq);
		json_t *start = NULL;

		if (r->sq.page && !(start = open_walk_cursor(r, r->sq.page, fp ? fp : ""))) {
			free(fp);
			return;
		}
		free(fp);
		spec.start = start;
		if (!new_walk(r, &spec, on_native_sessions))
			fail(r, 500, "api_error", "out of memory");
		json_decref(start);
		return;
	}
	r->nwaiting = n;
	r->merged = sessions_merged;
	for (size_t i = 0; i < n; i++) {
		const struct sg_route *rt = &r->key->routes[i];

		if (rt->backend->mapping->list_sessions) {
			struct sg_call *c = new_call(r, SG_CALL_LIST_SESSIONS, rt, on_part_call);

			if (!c) {
				fail(r, 500, "api_error", "out of memory");
				return;
			}
			sg_call_set_session_query(c, &r->sq);
			sg_call_start(c);
		} else {
			struct sg_walk_spec spec = {.kind = SG_CALL_SESSIONS_PAGE,
						    .route = rt,
						    .sq = &r->sq,
						    .collect_all = 1};

			if (!new_walk(r, &spec, on_part_walk)) {
				fail(r, 500, "api_error", "out of memory");
				return;
			}
		}
	}
}

static void on_get_done(struct sg_call *c, void *arg)
{
	struct req *r = arg;
	const struct sg_error *ce = sg_call_error(c);
	json_t *items = sg_call_result(c);
	struct sg_error e;

	if (ce) {
		e = *ce;
		reply_error(r, &e);
		return;
	}
	if (json_array_size(items) != 1) {
		fail(r, 404, "not_found_error", "session not found");
		return;
	}
	reply(r, 200, json_incref(json_array_get(items, 0)), NULL);
}

/* The route of a public id among the key's backends, or NULL: an id of a backend this key
 * may not reach is answered like an unknown id, with no backend call. */
static const struct sg_route *route_of(const struct sg_key *key, const struct sg_pubid *id)
{
	for (size_t i = 0; i < key->nroutes; i++)
		if (strcmp(key->routes[i].backend->name, id->backend) == 0)
			return &key->routes[i];
	return NULL;
}

static void get_session(struct req *r, const char *sid)
{
	struct sg_pubid id;
	const struct sg_route *rt;
	struct sg_call *c;

	if (sg_id_decode("sesn_", sid, &id) || !(rt = route_of(r->key, &id))) {
		fail(r, 404, "not_found_error", "session not found");
		return;
	}
	c = new_call(r, SG_CALL_GET_SESSION, rt, on_get_done);
	if (!c) {
		fail(r, 500, "api_error", "out of memory");
		return;
	}
	sg_call_set_pubid(c, &id);
	sg_call_start(c);
}

/* Every event of the session is in: the keyset pager orders and slices. */
static void events_merged(struct req *r)
{
	struct sg_pager_ctx pc = pager_ctx(r);
	struct sg_error e = {0};
	reply_page(r, sg_page_events(part_items(&r->parts[0]), &r->eq, &pc, &e), &e);
}

static void on_native_events(struct sg_walk *w, void *arg)
{
	struct req *r = arg;
	const struct sg_error *we = sg_walk_error(w);
	struct sg_error e;
	char *fp;

	if (we) {
		e = *we;
		reply_error(r, &e);
		return;
	}
	fp = sg_event_query_bound_fingerprint(&r->eq, r->sid);
	reply_walk_page(r, w, fp ? fp : "", 0);
	free(fp);
}

static void list_events(struct req *r, const char *sid, const char *query)
{
	struct sg_error e = {0};
	struct sg_pubid id;
	const struct sg_route *rt;
	const struct sg_mapping *m;
	struct sg_walk_spec spec = {.kind = SG_CALL_EVENTS_PAGE};

	if (sg_event_query_parse(query, &r->eq, &e)) {
		reply_error(r, &e);
		return;
	}
	if (sg_id_decode("sesn_", sid, &id) || !(rt = route_of(r->key, &id))) {
		fail(r, 404, "not_found_error", "session not found");
		return;
	}
	r->sid = strdup(sid);
	if (!r->sid) {
		fail(r, 500, "api_error", "out of memory");
		return;
	}
	m = rt->backend->mapping;
	r->nwaiting = 1;
	r->merged = events_merged;
	spec.route = rt;
	spec.eq = &r->eq;
	spec.pubid = &id;
	if (m->list_events_page && (!r->eq.order_desc || (m->caps & SG_CAP_NATIVE_ORDER))) {
		char *fp = sg_event_query_bound_fingerprint(&r->eq, r->sid);
		json_t *start = NULL;

		if (r->eq.page && !(start = open_walk_cursor(r, r->eq.page, fp ? fp : ""))) {
			free(fp);
			return;
		}
		free(fp);
		spec.start = start;
		spec.limit = (size_t)r->eq.limit;
		if (!new_walk(r, &spec, on_native_events))
			fail(r, 500, "api_error", "out of memory");
		json_decref(start);
		return;
	}
	if (m->list_events) {
		struct sg_call *c = new_call(r, SG_CALL_LIST_EVENTS, rt, on_part_call);

		if (!c) {
			fail(r, 500, "api_error", "out of memory");
			return;
		}
		sg_call_set_pubid(c, &id);
		sg_call_set_event_query(c, &r->eq);
		sg_call_start(c);
		return;
	}
	if (!m->list_events_page) {
		fail(r, 404, "not_found_error", "backend '%s' has no event history",
		     rt->backend->name);
		return;
	}
	spec.collect_all = 1;
	if (!new_walk(r, &spec, on_part_walk))
		fail(r, 500, "api_error", "out of memory");
}

/* Splits the raw path into a route; *sid receives the decoded {session_id} (malloc'd). */
static enum route match(const char *path, char **sid)
{
	static const char prefix[] = "/v1/sessions";
	size_t n = strlen(path);
	const char *rest, *slash;
	size_t idlen;

	*sid = NULL;
	if (n > 1 && path[n - 1] == '/')
		n--; /* one trailing slash is tolerated */
	if (n == 8 && strncmp(path, "/healthz", 8) == 0)
		return R_HEALTH;
	if (n < sizeof(prefix) - 1 || strncmp(path, prefix, sizeof(prefix) - 1) != 0)
		return R_NONE;
	rest = path + sizeof(prefix) - 1;
	n -= sizeof(prefix) - 1;
	if (n == 0)
		return R_SESSIONS;
	if (rest[0] != '/' || n == 1)
		return R_NONE;
	rest++;
	n--;
	slash = memchr(rest, '/', n);
	idlen = slash ? (size_t)(slash - rest) : n;
	if (idlen == 0 || idlen > 1024)
		return R_NONE;
	{
		char raw[1025];
		size_t dl = 0;

		memcpy(raw, rest, idlen);
		raw[idlen] = '\0';
		*sid = evhttp_uridecode(raw, 0, &dl);
		if (!*sid || strlen(*sid) != dl) {
			free(*sid);
			*sid = NULL;
			return R_NONE;
		}
	}
	if (!slash)
		return R_SESSION;
	if ((size_t)(slash - rest) + 7 == n && strncmp(slash, "/events", 7) == 0)
		return R_EVENTS;
	free(*sid);
	*sid = NULL;
	return R_NONE;
}

static const char *method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	default: return "?";
	}
}

static void handle(struct evhttp_request *ev, void *arg)
{
	struct worker *w = arg;
	const struct sg_config *cfg = w->srv->cfg;
	struct req *r = calloc(1, sizeof(*r));
	struct inflight *f;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq *in = evhttp_request_get_input_headers(ev);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(ev);
	uint8_t rnd[12];
	struct timespec now;
	enum route rt;
	char *sid = NULL;
	struct timeval tv;

	if (!r) {
		evhttp_send_error(ev, 503, "out of memory");
		return;
	}
	f = malloc(sizeof(*f));
	if (!f) {
		free(r);
		evhttp_send_error(ev, 503, "out of memory");
		return;
	}
	f->w = w;
	w->inflight++;
	evhttp_request_set_on_complete_cb(ev, on_complete, f);
	if (evhttp_request_get_connection(ev))
		evhttp_connection_set_closecb(evhttp_request_get_connection(ev), on_close, f);
	r->w = w;
	r->ev = ev;
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	clock_gettime(CLOCK_REALTIME, &now);
	r->now_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
	memcpy(r->id, "req_", 4);
	if (sg_random(rnd, sizeof(rnd)) != 0)
		memset(rnd, 0, sizeof(rnd));
	sg_hex_encode(rnd, sizeof(rnd), r->id + 4, sizeof(r->id) - 4);
	snprintf(r->method, sizeof(r->method), "%s", method_name(cmd));
	snprintf(r->path, sizeof(r->path), "%s", path ? path : "?");

	rt = path ? match(path, &sid) : R_NONE;
	if (rt == R_NONE) {
		fail(r, 404, "not_found_error", "no such endpoint: %s %s", r->method, r->path);
		goto out;
	}
	if (cmd != EVHTTP_REQ_GET) {
		evhttp_add_header(evhttp_request_get_output_headers(ev), "Allow", "GET");
		fail(r, 405, "invalid_request_error", "method %s is not supported on %s", r->method,
		     r->path);
		goto out;
	}
	if (rt == R_HEALTH) {
		reply(r, 200, json_pack("{s:s}", "status", "ok"), NULL);
		goto out;
	}
	r->key = sg_auth_lookup(cfg, sg_auth_extract(evhttp_find_header(in, "x-api-key"),
						     evhttp_find_header(in, "authorization")));
	if (!r->key) {
		fail(r, 401, "authentication_error",
		     evhttp_find_header(in, "x-api-key") || evhttp_find_header(in, "authorization")
			     ? "invalid API key"
			     : "missing API key: send x-api-key or Authorization: Bearer");
		goto out;
	}
	r->deadline = evtimer_new(w->base, on_deadline, r);
	tv.tv_sec = cfg->request_timeout_ms / 1000;
	tv.tv_usec = (cfg->request_timeout_ms % 1000) * 1000;
	if (!r->deadline || evtimer_add(r->deadline, &tv) != 0) {
		fail(r, 500, "api_error", "out of memory");
		goto out;
	}
	switch (rt) {
	case R_SESSIONS:
		list_sessions(r, query);
		break;
	case R_SESSION:
		get_session(r, sid);
		break;
	case R_EVENTS:
		list_events(r, sid, query);
		break;
	default:
		fail(r, 404, "not_found_error", "no such endpoint");
		break;
	}
out:
	free(sid);
}

static void on_grace(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	sg_warn("worker %d: %zu request(s) still in flight after the grace period; stopping",
		w->index, w->inflight);
	event_base_loopexit(w->base, NULL);
}

/* Runs on the worker's loop when the main thread asks it to stop. */
static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	long ms = w->srv->cfg->shutdown_grace_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	(void)fd;
	(void)what;
	if (w->bound) {
		evhttp_del_accept_socket(w->http, w->bound);
		w->bound = NULL;
		/* Once nobody accepts, new connections are refused rather than left waiting in
		 * the backlog of a socket no one reads. */
		pthread_mutex_lock(&w->srv->lock);
		if (--w->srv->listening == 0)
			shutdown(w->srv->fd, SHUT_RDWR);
		pthread_mutex_unlock(&w->srv->lock);
	}
	w->draining = 1;
	if (w->inflight == 0) {
		event_base_loopexit(w->base, NULL);
		return;
	}
	w->grace_ev = evtimer_new(w->base, on_grace, w);
	if (!w->grace_ev || evtimer_add(w->grace_ev, &tv) != 0)
		event_base_loopexit(w->base, NULL);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	event_base_dispatch(w->base);
	return NULL;
}

static int worker_init(struct worker *w, struct sg_server *srv, int index)
{
	const struct sg_config *cfg = srv->cfg;
	struct evconnlistener *lst;
	long maxconn = 1;

	w->srv = srv;
	w->index = index;
	w->base = event_base_new();
	if (!w->base)
		return -1;
	for (size_t i = 0; i < cfg->nbackends; i++)
		if (cfg->backends[i].max_connections > maxconn)
			maxconn = cfg->backends[i].max_connections;
	w->up = sg_upstream_new(w->base, maxconn);
	w->cache = sg_cache_new(1024);
	w->http = evhttp_new(w->base);
	w->stop_ev = event_new(w->base, -1, 0, on_stop, w);
	if (!w->up || !w->cache || !w->http || !w->stop_ev)
		return -1;
	evhttp_set_max_headers_size(w->http, (ev_ssize_t)cfg->max_header_bytes);
	evhttp_set_max_body_size(w->http, (ev_ssize_t)cfg->max_body_bytes);
	evhttp_set_timeout(w->http, (int)cfg->idle_timeout_s);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(w->http, handle, w);
	/* Each worker listens on the same socket; no LEV_OPT_CLOSE_ON_FREE, since the socket
	 * is shared and closed once by sg_server_free. */
	lst = evconnlistener_new(w->base, NULL, NULL, LEV_OPT_REUSEABLE, -1, srv->fd);
	if (!lst)
		return -1;
	w->bound = evhttp_bind_listener(w->http, lst);
	return w->bound ? 0 : -1;
}

struct sg_server *sg_server_new(const struct sg_config *cfg, char *err, size_t errlen)
{
	struct sg_server *srv = calloc(1, sizeof(*srv));
	struct addrinfo hints = {0}, *ai = NULL;
	char port[16];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int one = 1, rc;

	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->cfg = cfg;
	srv->fd = -1;
	pthread_mutex_init(&srv->lock, NULL);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", cfg->listen_port);
	rc = getaddrinfo(cfg->listen_host, port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "listen: cannot resolve '%s': %s", cfg->listen_host,
			 gai_strerror(rc));
		goto fail;
	}
	srv->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* TCP_NODELAY on the listener is inherited by accepted sockets (Linux): without it the
	 * tail of every reply over a few segments waits for the client's delayed ACK. */
	if (srv->fd < 0 || setsockopt(srv->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(srv->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    bind(srv->fd, ai->ai_addr, ai->ai_addrlen) || listen(srv->fd, 1024) ||
	    evutil_make_socket_nonblocking(srv->fd)) {
		snprintf(err, errlen, "listen: cannot listen on %s:%d: %s", cfg->listen_host,
			 cfg->listen_port, strerror(errno));
		goto fail;
	}
	if (getsockname(srv->fd, (struct sockaddr *)&ss, &sl) == 0)
		srv->port = ntohs(ss.ss_family == AF_INET6
					  ? ((struct sockaddr_in6 *)&ss)->sin6_port
					  : ((struct sockaddr_in *)&ss)->sin_port);
	freeaddrinfo(ai);
	return srv;
fail:
	if (ai)
		freeaddrinfo(ai);
	sg_server_free(srv);
	return NULL;
}

int sg_server_port(const struct sg_server *srv)
{
	return srv->port;
}

int sg_server_start(struct sg_server *srv)
{
	srv->nworkers = srv->cfg->workers;
	srv->workers = calloc((size_t)srv->nworkers, sizeof(*srv->workers));
	if (!srv->workers)
		return -1;
	for (int i = 0; i < srv->nworkers; i++) {
		if (worker_init(&srv->workers[i], srv, i))
			return -1;
		srv->listening++;
	}
	for (int i = 0; i < srv->nworkers; i++) {
		if (pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]))
			return -1;
		srv->started = i + 1;
	}
	return 0;
}

void sg_server_stop(struct sg_server *srv)
{
	/* event_active from another thread is safe: evthread_use_pthreads() ran first. */
	for (int i = 0; i < srv->started; i++)
		event_active(srv->workers[i].stop_ev, EV_TIMEOUT, 0);
	for (int i = 0; i < srv->started; i++)
		pthread_join(srv->workers[i].thread, NULL);
	srv->started = 0;
}

void sg_server_free(struct sg_server *srv)
{
	if (!srv)
		return;
	for (int i = 0; srv->workers && i < srv->nworkers; i++) {
		struct worker *w = &srv->workers[i];

		if (w->http)
			evhttp_free(w->http);
		sg_upstream_free(w->up);
		sg_cache_free(w->cache);
		if (w->stop_ev)
			event_free(w->stop_ev);
		if (w->grace_ev)
			event_free(w->grace_ev);
		if (w->base)
			event_base_free(w->base);
	}
	free(srv->workers);
	if (srv->fd >= 0)
		close(srv->fd);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}
