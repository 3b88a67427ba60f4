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

#include "config.h"
#include "upstream.h"

struct sg_flow {
	struct event_base *base;
	struct evhttp *http;
	struct sg_upstream *up;
	struct sg_backend be;
	char url[64];
	json_t *routes; /* "METHOD URI" → [status, body] */
	json_t *seen;
	json_t *identity;
	json_t *body;
	struct sg_call *call;
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
	return f;
}

void sg_flow_free(struct sg_flow *f)
{
	if (!f)
		return;
	sg_call_free(f->call);
	if (f->be.mapping->destroy)
		f->be.mapping->destroy(&f->be);
	sg_upstream_free(f->up);
	evhttp_free(f->http);
	event_base_free(f->base);
	json_decref(f->be.options);
	free(f->be.name);
	json_decref(f->routes);
	json_decref(f->seen);
	json_decref(f->identity);
	json_decref(f->body);
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

void sg_flow_run(struct sg_flow *f, enum sg_call_kind kind, const char *identity,
                 const struct sg_pubid *id, const char *body, int64_t version)
{
	struct sg_call_env env = {.upstream = f->up,
	                          .base = f->base,
	                          .request_id = "req_flow",
	                          .principal = "tester",
	                          .now_us = 1780639391123456LL /* 2026-06-05T06:03:11.123456Z */};
	struct timeval limit = {10, 0};

	sg_call_free(f->call);
	json_decref(f->identity);
	json_decref(f->body);
	json_array_clear(f->seen);
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
	sg_call_start(f->call);
	event_base_loopexit(f->base, &limit);
	event_base_dispatch(f->base);
}

const json_t *sg_flow_seen(const struct sg_flow *f)
{
	return f->seen;
}

const struct sg_error *sg_flow_error(const struct sg_flow *f)
{
	return sg_call_error(f->call);
}

json_t *sg_flow_object(const struct sg_flow *f)
{
	return sg_call_result_object(f->call);
}

json_t *sg_flow_items(const struct sg_flow *f)
{
	return sg_call_result(f->call);
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
