/* flow.c - see flow.h. */
#include "flow.h"

#include <arpa/inet.h>
#include <check.h>
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cache.h"
#include "config.h"
#include "upstream.h"

#define PIECE_MS 5 /* between the pieces of a streamed answer */

/* A streamed answer being sent: its pieces one timer tick apart.
 *
 * libevent 2.1 detaches a request whose chunked reply is still being sent when its client
 * leaves (evhttp_connection_incoming_fail: req->evcon becomes NULL) and leaves it to the
 * sender, who must free it; a request still attached is freed with its connection. So the
 * connection is never remembered here, only asked of the request. */
struct flow_stream {
	struct sg_flow *f;
	struct evhttp_request *req; /* NULL once the reply was ended */
	json_t *pieces;             /* [string, …] */
	size_t next;
	int hold; /* after the last piece, keep the answer open */
	struct event *timer;
	struct flow_stream *link;
};

struct sg_flow {
	struct event_base *base;
	struct evhttp *http;
	struct sg_upstream *up;
	struct sg_cache *shared; /* the process's shared cache, as server.c makes it */
	struct sg_backend be;
	struct sg_backend_state be_state; /* what config.c would allocate */
	char url[64];
	json_t *routes; /* "METHOD URI" → [status, body] or [status, [pieces], hold] */
	json_t *seen;
	json_t *identity;
	json_t *body;
	struct sg_call *call;
	struct flow_stream *streams; /* answers still being sent */
	/* stream runs */
	json_t *emitted; /* the events the sink got (copies) */
	json_t *marks;   /* the call's mark as each arrived (string or null) */
	int opened;
	size_t leave_after;
	int left;
};

static const char *method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_PUT:
		return "PUT";
	default:
		return "OTHER";
	}
}

static json_t *header_or_null(struct evhttp_request *req, const char *name)
{
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);

	return v ? json_string(v) : json_null();
}

/* Every request header, its name lowercased, as {name: value}. New. */
static json_t *all_headers(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	json_t *out = json_object();

	for (struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
		char name[128];
		size_t i;

		for (i = 0; kv->key[i] && i < sizeof(name) - 1; i++)
			name[i] = (char)tolower((unsigned char)kv->key[i]);
		name[i] = '\0';
		json_object_set_new(out, name, json_string(kv->value));
	}
	return out;
}

static void stream_drop(struct flow_stream *fs)
{
	struct evhttp_connection *conn = fs->req ? evhttp_request_get_connection(fs->req) : NULL;
	struct flow_stream **pp;

	for (pp = &fs->f->streams; *pp; pp = &(*pp)->link)
		if (*pp == fs) {
			*pp = fs->link;
			break;
		}
	if (conn)
		evhttp_connection_set_closecb(conn, NULL, NULL);
	else if (fs->req)
		evhttp_request_free(fs->req); /* detached: the client left */
	event_free(fs->timer);
	json_decref(fs->pieces);
	free(fs);
}

/* The client left (the gateway cancelled the fetch). */
static void stream_closed(struct evhttp_connection *conn, void *arg)
{
	(void)conn;
	stream_drop(arg);
}

static void stream_tick(evutil_socket_t fd, short what, void *arg)
{
	struct flow_stream *fs = arg;
	struct timeval tv = {0, PIECE_MS * 1000};
	const json_t *piece = json_array_get(fs->pieces, fs->next);
	struct evhttp_connection *conn = evhttp_request_get_connection(fs->req);
	struct evbuffer *out;

	(void)fd;
	(void)what;
	if (!conn) {
		stream_drop(fs);
		return;
	}
	if (piece) {
		fs->next++;
		out = evbuffer_new();
		evbuffer_add(out, json_string_value(piece), json_string_length(piece));
		evhttp_send_reply_chunk(fs->req, out);
		evbuffer_free(out);
		evtimer_add(fs->timer, &tv);
		return;
	}
	if (fs->hold)
		return; /* open until the client leaves or the flow is freed */
	evhttp_connection_set_closecb(conn, NULL, NULL);
	evhttp_send_reply_end(fs->req);
	fs->req = NULL;
	stream_drop(fs);
}

/* Starts a streamed answer: the head now, the pieces one tick apart. */
static void stream_start(struct sg_flow *f, struct evhttp_request *req, const json_t *route)
{
	struct flow_stream *fs = calloc(1, sizeof(*fs));
	struct timeval tv = {0, PIECE_MS * 1000};

	ck_assert_ptr_nonnull(fs);
	fs->f = f;
	fs->req = req;
	fs->pieces = json_incref(json_array_get(route, 1));
	fs->hold = json_is_true(json_array_get(route, 2));
	fs->timer = evtimer_new(f->base, stream_tick, fs);
	ck_assert_ptr_nonnull(fs->timer);
	fs->link = f->streams;
	f->streams = fs;
	evhttp_connection_set_closecb(evhttp_request_get_connection(req), stream_closed, fs);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "text/event-stream");
	evhttp_send_reply_start(req, (int)json_integer_value(json_array_get(route, 0)), "X");
	evtimer_add(fs->timer, &tv);
}

static void answer(struct evhttp_request *req, void *arg)
{
	struct sg_flow *f = arg;
	struct evbuffer *in = evhttp_request_get_input_buffer(req), *out = evbuffer_new();
	const char *method = method_name(evhttp_request_get_command(req));
	const char *uri = evhttp_request_get_uri(req);
	size_t n = evbuffer_get_length(in);
	char key[2048];
	json_t *body = NULL, *route;

	if (n) {
		const char *text = (const char *)evbuffer_pullup(in, -1);

		body = json_loadb(text, n, 0, NULL);
		if (!body)
			body = json_stringn(text, n);
	}
	json_array_append_new(f->seen, json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "method", method,
	                                         "uri", uri, "body", body ? body : json_null(),
	                                         "user", header_or_null(req, "X-User-ID"), "type",
	                                         header_or_null(req, "Content-Type"), "headers",
	                                         all_headers(req)));
	snprintf(key, sizeof(key), "%s %s", method, uri);
	route = json_object_get(f->routes, key);
	if (route && json_is_array(json_array_get(route, 1))) {
		evbuffer_free(out);
		stream_start(f, req, route);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "application/json");
	if (!route) {
		evbuffer_add_printf(out, "{\"detail\": \"no route for %s\"}", key);
		evhttp_send_reply(req, 418, "Unrouted", out);
		evbuffer_free(out);
		return;
	}
	evbuffer_add(out, json_string_value(json_array_get(route, 1)),
	             json_string_length(json_array_get(route, 1)));
	evhttp_send_reply(req, (int)json_integer_value(json_array_get(route, 0)), "X", out);
	evbuffer_free(out);
}

struct sg_flow *sg_flow_new(const struct sg_mapping *m, const char *backend, const char *options)
{
	struct sg_flow *f = calloc(1, sizeof(*f));
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	struct sg_error err = {0};

	ck_assert_ptr_nonnull(f);
	f->shared = sg_cache_new_shared(1 << 20);
	ck_assert_ptr_nonnull(f->shared);
	f->base = event_base_new();
	f->http = evhttp_new(f->base);
	evhttp_set_allowed_methods(f->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PATCH |
	                                        EVHTTP_REQ_DELETE | EVHTTP_REQ_PUT |
	                                        EVHTTP_REQ_HEAD);
	evhttp_set_gencb(f->http, answer, f);
	bs = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0);
	ck_assert_ptr_nonnull(bs);
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
	f->up = sg_upstream_new(f->base, 8);
	ck_assert_ptr_nonnull(f->up);
	f->be.name = strdup(backend);
	f->be.state = &f->be_state;
	f->be.mapping = m;
	f->be.url = f->url;
	f->be.timeout_ms = 2000;
	f->be.stream_idle_timeout_ms = 2000;
	f->be.connect_timeout_ms = 1000;
	f->be.max_connections = 8;
	f->be.max_response_bytes = 1 << 22;
	if (options) {
		f->be.options = json_loads(options, 0, NULL);
		ck_assert_msg(f->be.options != NULL, "options are not JSON: %s", options);
	}
	ck_assert_msg(m->init(&f->be, f->be.options, &err) == 0, "init: %s", err.message);
	f->routes = json_object();
	f->seen = json_array();
	f->emitted = json_array();
	f->marks = json_array();
	return f;
}

void sg_flow_free(struct sg_flow *f)
{
	if (!f)
		return;
	sg_call_free(f->call);
	while (f->streams)
		stream_drop(f->streams);
	if (f->be.mapping->destroy)
		f->be.mapping->destroy(&f->be);
	sg_upstream_free(f->up);
	sg_cache_free(f->shared);
	evhttp_free(f->http);
	event_base_free(f->base);
	json_decref(f->be.options);
	free(f->be.name);
	json_decref(f->routes);
	json_decref(f->seen);
	json_decref(f->identity);
	json_decref(f->body);
	json_decref(f->emitted);
	json_decref(f->marks);
	free(f);
}

void sg_flow_route(struct sg_flow *f, const char *method, const char *uri, int status,
                   const char *body)
{
	char key[2048];
	json_t *route;

	snprintf(key, sizeof(key), "%s %s", method, uri);
	route = json_pack("[i,s]", status, body);
	ck_assert_ptr_nonnull(route);
	json_object_set_new(f->routes, key, route);
}

static void on_done(struct sg_call *call, void *arg)
{
	(void)call;
	event_base_loopbreak(arg);
}

void sg_flow_route_stream(struct sg_flow *f, const char *uri, int status, const char *const *pieces,
                          int hold)
{
	char key[2048];
	json_t *route, *list = json_array();

	ck_assert_ptr_nonnull(list);
	for (size_t i = 0; pieces[i]; i++)
		json_array_append_new(list, json_string(pieces[i]));
	snprintf(key, sizeof(key), "GET %s", uri);
	route = json_pack("[i,o,b]", status, list, hold);
	ck_assert_ptr_nonnull(route);
	json_object_set_new(f->routes, key, route);
}

/* A new call for the next run, the previous run's results forgotten. */
static void prepare(struct sg_flow *f, enum sg_call_kind kind, const char *identity,
                    const struct sg_pubid *id, const char *body, int64_t version)
{
	struct sg_call_env env = {.upstream = f->up,
	                          .shared = f->shared,
	                          .base = f->base,
	                          .request_id = "req_flow",
	                          .principal = "tester",
	                          .now_us = 1780639391123456LL /* 2026-06-05T06:03:11.123456Z */};

	sg_call_free(f->call);
	json_decref(f->identity);
	json_decref(f->body);
	json_array_clear(f->seen);
	json_array_clear(f->emitted);
	json_array_clear(f->marks);
	f->opened = 0;
	f->left = 0;
	f->leave_after = 0;
	f->identity = json_loads(identity, 0, NULL);
	f->body = body ? json_loads(body, 0, NULL) : NULL;
	ck_assert_msg(f->identity && (!body || f->body), "identity or body is not JSON");
	f->call = sg_call_new(kind, &env, &f->be, f->identity, on_done, f->base);
	ck_assert_ptr_nonnull(f->call);
	if (id)
		sg_call_set_pubid(f->call, id);
	if (f->body)
		sg_call_set_body(f->call, f->body);
	sg_call_set_agent_version(f->call, version);
}

static void run(struct sg_flow *f)
{
	struct timeval limit = {10, 0};

	sg_call_start(f->call);
	event_base_loopexit(f->base, &limit);
	event_base_dispatch(f->base);
}

void sg_flow_run(struct sg_flow *f, enum sg_call_kind kind, const char *identity,
                 const struct sg_pubid *id, const char *body, int64_t version)
{
	prepare(f, kind, identity, id, body, version);
	run(f);
}

/* The core's sink, as a client that records what it is sent and may leave. */
static int flow_sink(struct sg_call *call, const json_t *event, void *arg)
{
	struct sg_flow *f = arg;
	const char *mark = sg_call_stream_marked(call);

	json_array_append_new(f->emitted, json_deep_copy(event));
	json_array_append_new(f->marks, mark ? json_string(mark) : json_null());
	if (f->leave_after && json_array_size(f->emitted) >= f->leave_after) {
		/* as the core does for a departed client: freed once sg_call_emit returns */
		sg_call_free(call);
		f->call = NULL;
		f->left = 1;
		event_base_loopbreak(f->base);
		return -1;
	}
	return 0;
}

static void flow_opened(struct sg_call *call, void *arg)
{
	struct sg_flow *f = arg;

	(void)call;
	f->opened++;
}

void sg_flow_run_stream(struct sg_flow *f, const struct sg_pubid *id, int64_t since_us,
                        const char *resume, size_t leave_after)
{
	prepare(f, SG_CALL_STREAM_EVENTS, "{}", id, NULL, -1);
	f->leave_after = leave_after;
	sg_call_set_sink(f->call, flow_sink, f);
	ck_assert_int_eq(sg_call_set_stream_input(f->call, since_us, resume, flow_opened), 0);
	run(f);
}

const json_t *sg_flow_emitted(const struct sg_flow *f)
{
	return f->emitted;
}

const json_t *sg_flow_marks(const struct sg_flow *f)
{
	return f->marks;
}

const char *sg_flow_marked(const struct sg_flow *f)
{
	return f->call ? sg_call_stream_marked(f->call) : NULL;
}

int sg_flow_opened(const struct sg_flow *f)
{
	return f->opened;
}

int sg_flow_left(const struct sg_flow *f)
{
	return f->left;
}

const json_t *sg_flow_seen(const struct sg_flow *f)
{
	return f->seen;
}

const struct sg_error *sg_flow_error(const struct sg_flow *f)
{
	return f->call ? sg_call_error(f->call) : NULL;
}

json_t *sg_flow_object(const struct sg_flow *f)
{
	return f->call ? sg_call_result_object(f->call) : NULL;
}

json_t *sg_flow_items(const struct sg_flow *f)
{
	return f->call ? sg_call_result(f->call) : NULL;
}

struct sg_pubid sg_flow_id(const char *backend, const char *scope, const char *native)
{
	struct sg_pubid id;

	memset(&id, 0, sizeof(id));
	snprintf(id.backend, sizeof(id.backend), "%s", backend);
	snprintf(id.scope, sizeof(id.scope), "%s", scope);
	snprintf(id.native, sizeof(id.native), "%s", native);
	return id;
}
