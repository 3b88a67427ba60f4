/* request.c - see request.h.
 *
 * One request's life: sg_req_handle() routes it (routes.h), authenticates it unless the
 * route is public, arms the request deadline unless the route is long-lived, and calls the
 * route's handler, which starts calls and returns to the loop. Whatever answers it
 * (sg_req_reply, sg_req_error, sg_req_stream_end), the deadline, the client's departure or a
 * drain ends it, and ending frees everything that still works for it.
 *
 * evhttp in libevent 2.1 only notices that a client left when it next writes to it: while a
 * request is being worked on, reading is off. So once a request is routed, reading is turned
 * back on with no read callback, exactly as evhttp does itself while it writes a reply: an
 * EOF then reaches evhttp's error path, which detaches the request from the dying connection
 * and calls the connection's close callback, where the request is ended and its upstream
 * work cancelled. Bytes a client pipelines meanwhile wait in the buffer until evhttp reads
 * the next request. */
#include "request.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "accesslog.h"
#include "auth.h"
#include "codec.h"
#include "config.h"
#include "cors.h"
#include "crypto.h"
#include "idem.h"
#include "redis.h"
#include "log.h"
#include "metrics.h"
#include "overload.h"
#include "routes.h"
#include "timeutil.h"

/* A backend's share of a request: one call, or a walk over its own pages. */
struct part {
	struct sg_call *call;
	struct sg_walk *walk;
};

/* Lives until evhttp is done with the request (its reply written, or its connection gone),
 * which may be after the gateway is done with it: the worker counts it as in flight until
 * then. r is the request while the gateway is still answering. */
struct conn_watch {
	struct sg_req_host *host;
	struct sg_req *r;
};

struct sg_req {
	struct sg_req_host *host;
	const struct sg_config *cfg; /* the generation it started in (a reference, config.h) */
	struct evhttp_request *ev;
	struct conn_watch *watch;
	struct sg_req *prev, *next; /* host->live */
	char id[32];
	char method[8];
	char path[256];
	struct timespec t0;
	int64_t now_us;
	const struct sg_route_def *route;
	const struct sg_key *key;
	char *param;
	struct part *parts;
	size_t nparts, cap;
	struct event *deadline;
	void *state;
	void (*state_free)(void *);
	void (*on_drain)(struct sg_req *r);
	int streaming;
	size_t sent;    /* stream bytes handed to evhttp */
	char *idem_key; /* the Idempotency-Key record this request answers, or NULL */
	/* ... kept in Redis (idem_key is then the Redis key): our pending record, the fingerprint,
	 * the command under way and what runs once the key is settled */
	char *idem_pending;
	uint8_t idem_fp[SG_SHA256_LEN];
	struct sg_redis_op *redis_op;
	void (*idem_go)(struct sg_req *r);
	int orphan; /* a write whose client left: it runs on, its answer goes nowhere */
	/* what its access log line and its metrics say (accesslog.h, metrics.h) */
	char client[48];      /* the peer's address */
	size_t bytes_in;      /* its body */
	int64_t upstream_us;  /* summed over its calls' fetches (sg_call_env.upstream_us) */
	const char *backend;  /* the backend it reached (borrowed from the configuration) */
	int multi;            /* … or it reached several */
	int preflight;        /* a CORS preflight */
	const char *err_type; /* the north error type of its answer, or NULL */
	int counted;          /* its line and its metrics are written */
};

/* The reason phrase of a status the gateway answers with. */
static const char *reason(int status)
{
	static const struct {
		int status;
		const char *text;
	} phrases[] = {
	    {200, "OK"},
	    {201, "Created"},
	    {202, "Accepted"},
	    {204, "No Content"},
	    {400, "Bad Request"},
	    {401, "Unauthorized"},
	    {403, "Forbidden"},
	    {404, "Not Found"},
	    {405, "Method Not Allowed"},
	    {408, "Request Timeout"},
	    {409, "Conflict"},
	    {413, "Payload Too Large"},
	    {422, "Unprocessable Entity"},
	    {429, "Too Many Requests"},
	    {500, "Internal Server Error"},
	    {502, "Bad Gateway"},
	    {503, "Service Unavailable"},
	    {504, "Gateway Timeout"},
	    {529, "Overloaded"},
	};

	for (size_t i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++)
		if (phrases[i].status == status)
			return phrases[i].text;
	return "Error";
}

static int64_t elapsed_us(const struct sg_req *r)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (int64_t)(t1.tv_sec - r->t0.tv_sec) * 1000000 + (t1.tv_nsec - r->t0.tv_nsec) / 1000;
}

/* The route's index for metrics (metrics.h): its place in the table, or SG_MR_*. */
static int route_index(const struct sg_req *r)
{
	const struct sg_route_def *table = r->host->routes ? r->host->routes : sg_routes;

	if (r->preflight)
		return SG_MR_PREFLIGHT;
	if (!r->route || r->route < table || r->route - table >= SG_MR_UNMATCHED)
		return SG_MR_UNMATCHED;
	return (int)(r->route - table);
}

/* The request is over (status: what it was answered, 499 when the client left first): its
 * metrics, and its access log line (accesslog.h). A write whose client left (orphan) is
 * counted when its answer is ready; text logs also say when its client left (final 0). */
static void access_log_out(struct sg_req *r, int status, size_t out, const char *note, int final)
{
	const struct sg_config *cfg = r->cfg;
	struct sg_metrics_shard *ms = r->host->metrics;
	char route[160], path[sizeof(r->path)];
	struct sg_access a;

	if (r->counted || (!final && cfg->log_json))
		return;
	if (final) {
		r->counted = 1;
		sg_metrics_request(ms, route_index(r), status,
		                   r->multi
		                       ? SG_MB_MULTI
		                       : sg_metrics_backend(ms, r->backend ? r->backend : NULL));
		if (r->err_type)
			sg_metrics_error(ms, r->err_type);
	}
	if (!cfg->access_log)
		return;
	if (r->preflight)
		snprintf(route, sizeof(route), "OPTIONS (preflight)");
	else if (r->route)
		snprintf(route, sizeof(route), "%s %s", r->route->method, r->route->pattern);
	else
		snprintf(route, sizeof(route), "unmatched");
	memset(&a, 0, sizeof(a));
	a.id = r->id;
	a.start_us = r->now_us;
	a.client = r->client[0] ? r->client : NULL;
	a.xff = sg_req_header(r, "X-Forwarded-For");
	a.front_id = sg_req_header(r, "X-Request-Id");
	a.method = r->method;
	a.path = sg_access_clean(r->path, sizeof(path) - 1, 0, path, sizeof(path));
	a.route = route;
	a.key = r->key ? r->key->name : NULL;
	a.backend = r->multi ? "multi" : r->backend;
	a.status = status;
	a.bytes_in = r->bytes_in;
	a.bytes_out = out;
	a.upstream_us = r->upstream_us;
	a.total_us = elapsed_us(r);
	a.error_type = r->err_type;
	a.note = note;
	a.stream = r->streaming;
	sg_access_write(&a, cfg->log_json);
}

static void access_log(struct sg_req *r, int status, const char *note)
{
	access_log_out(r, status, r->sent, note, 1);
}

/* Frees what works for r and r itself; evhttp's request is someone else's by now. */
static void idem_cancel_claim(struct sg_req *r);

static void req_free(struct sg_req *r)
{
	struct sg_req_host *h = r->host;

	for (size_t i = 0; i < r->nparts; i++) {
		sg_call_free(r->parts[i].call);
		sg_walk_free(r->parts[i].walk);
	}
	free(r->parts);
	if (r->state && r->state_free)
		r->state_free(r->state);
	if (r->deadline)
		event_free(r->deadline);
	if (r->streaming && h->metrics)
		sg_metrics_gauge(&h->metrics->streams, -1);
	if (r->watch)
		r->watch->r = NULL;
	if (r->prev)
		r->prev->next = r->next;
	else if (h->live == r)
		h->live = r->next;
	if (r->next)
		r->next->prev = r->prev;
	if (r->redis_op) {
		/* gone while its key was being claimed: drop the claim if it was made (commands run
		 * in order on the connection), so a retry need not wait for it to expire */
		sg_redis_cancel(r->redis_op);
		if (r->idem_pending)
			idem_cancel_claim(r);
	}
	free(r->param);
	free(r->idem_key);
	free(r->idem_pending);
	sg_config_unref(r->cfg); /* after everything that may still read it */
	free(r);
}

static void request_gone(struct sg_req_host *h)
{
	h->inflight--;
	if (h->metrics)
		sg_metrics_gauge(&h->metrics->inflight, -1);
	if (h->draining && h->inflight == 0 && h->drained)
		h->drained(h);
}

/* evhttp wrote the whole answer. */
static void on_complete(struct evhttp_request *ev, void *arg)
{
	struct conn_watch *cw = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(ev);

	if (evcon)
		evhttp_connection_set_closecb(evcon, NULL, NULL);
	if (cw->r) /* cannot happen: a request completes only once answered */
		req_free(cw->r);
	request_gone(cw->host);
	free(cw);
}

/* The connection closed: the client left, timed out, or the server is being freed. A
 * request the gateway was still answering ends here; evhttp detached it from the connection
 * (then it is ours to free) unless the whole server is being torn down (then evhttp frees
 * it right after this callback). */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
	struct conn_watch *cw = arg;
	struct sg_req *r = cw->r;

	(void)evcon;
	if (r && (r->route->flags & SG_RT_WRITE) && !evhttp_request_get_connection(r->ev)) {
		/* A write is not cancelled halfway: that would leave its outcome unknown. It runs
		 * to its end (the deadline bounds it), its answer is kept for an Idempotency-Key,
		 * and it counts as in flight until then, so a drain waits for it. */
		access_log_out(r, 499, 0, "client went away; the write runs on", 0);
		r->orphan = 1;
		r->watch = NULL;
		free(cw);
		return;
	}
	if (r) {
		struct evhttp_request *ev = r->ev;

		access_log(r, 499, r->streaming ? "client closed the stream" : "client went away");
		req_free(r);
		if (!evhttp_request_get_connection(ev))
			evhttp_request_free(ev);
	}
	request_gone(cw->host);
	free(cw);
}

/* Turns reading back on while the request is worked on, so a client's EOF is seen now
 * rather than at the next write (see the comment at the top). */
static void watch_for_close(struct evhttp_request *ev)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	bufferevent_data_cb rd, wr;
	bufferevent_event_cb evcb;
	void *arg;

	if (!bev)
		return;
	bufferevent_getcb(bev, &rd, &wr, &evcb, &arg);
	bufferevent_setcb(bev, NULL, wr, evcb, arg);
	bufferevent_enable(bev, EV_READ);
}

/* The headers every north answer carries. */
static void common_headers(struct sg_req *r, const char *content_type)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);

	evhttp_add_header(h, "Content-Type", content_type);
	evhttp_add_header(h, "request-id", r->id);
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (r->cfg->cors)
		sg_cors_answer_headers(r->cfg->cors, sg_req_header(r, "Origin"), h);
}

/* Keeps the answer under the request's Idempotency-Key, or forgets the key when the answer
 * says nothing was done (x-should-retry true: refused before any work), so a retry runs. */
static void redis_keep_answer(struct sg_req *r, const struct sg_idem_answer *a, int abandon);

static void keep_answer(struct sg_req *r, int status, const char *text, const struct sg_error *e)
{
	struct sg_idem_answer a = {status, e ? e->should_retry : -1, (char *)text,
	                           text ? strlen(text) : 0};

	if (r->idem_pending) {
		redis_keep_answer(r, &a, (e && e->should_retry == 1) || !text);
		return;
	}
	if ((e && e->should_retry == 1) || !text)
		sg_idem_abandon(r->host->idem, r->idem_key);
	else
		sg_idem_finish(r->host->idem, r->idem_key, &a, sg_mono_ms());
}

static void free_text(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

/* Sends text (taken; NULL: out of memory, a 500) as the whole JSON answer. */
static void send_text(struct sg_req *r, int status, char *text, size_t len,
                      const struct sg_error *e)
{
	struct evbuffer *buf = evbuffer_new();

	common_headers(r, "application/json");
	if (e && e->should_retry >= 0)
		evhttp_add_header(evhttp_request_get_output_headers(r->ev), "x-should-retry",
		                  e->should_retry ? "true" : "false");
	if (e && e->retry_after_s > 0) {
		char ra[24];

		snprintf(ra, sizeof(ra), "%ld", e->retry_after_s);
		evhttp_add_header(evhttp_request_get_output_headers(r->ev), "retry-after", ra);
	}
	if (!text || !buf) {
		status = 500;
		if (buf)
			evbuffer_add_printf(buf,
			                    "{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
			                    "\"message\":\"out of memory\"},\"request_id\":\"%s\"}",
			                    r->id);
	} else if (evhttp_request_get_command(r->ev) == EVHTTP_REQ_HEAD) {
		/* libevent 2.1 would send the body after a HEAD's headers (and no length), which
		 * corrupts a kept-alive connection: state the GET's length and send nothing. */
		char n[32];

		snprintf(n, sizeof(n), "%zu", len);
		evhttp_add_header(evhttp_request_get_output_headers(r->ev), "Content-Length", n);
	}
	if (r->idem_key)
		keep_answer(r, status, text, e);
	if (text && buf && evhttp_request_get_command(r->ev) != EVHTTP_REQ_HEAD &&
	    evbuffer_add_reference(buf, text, len, free_text, NULL) == 0)
		text = NULL; /* the buffer frees it once sent */
	/* Logged first: the line reads the request's headers, and evhttp may free the request
	 * as it sends (an orphan's at once). The message is the client's to read, not the log's:
	 * it may quote what the client sent. */
	r->err_type = e ? e->type : NULL;
	access_log_out(r, status, len, NULL, 1);
	/* An orphan's request is detached from its (gone) connection: evhttp frees it here. */
	evhttp_send_reply(r->ev, status, reason(status), buf);
	if (buf)
		evbuffer_free(buf);
	free(text);
	if (r->orphan)
		request_gone(r->host);
	req_free(r);
}

static void send_whole(struct sg_req *r, int status, json_t *body, const struct sg_error *e)
{
	char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;

	json_decref(body);
	send_text(r, status, text, text ? strlen(text) : 0, e);
}

void sg_req_reply(struct sg_req *r, int status, json_t *body)
{
	send_whole(r, status, body, NULL);
}

void sg_req_reply_text(struct sg_req *r, int status, char *text, size_t len)
{
	send_text(r, status, text, len, NULL);
}

void sg_req_error(struct sg_req *r, const struct sg_error *err)
{
	struct sg_error e = *err;
	json_t *body;

	sg_error_default_retry(&e);
	body = json_pack("{s:s, s:{s:s, s:s}, s:s}", "type", "error", "error", "type", e.type,
	                 "message", e.message, "request_id", r->id);
	send_whole(r, e.status, body, &e);
}

void sg_req_fail(struct sg_req *r, int status, const char *type, const char *fmt, ...)
{
	struct sg_error e;
	va_list ap;

	va_start(ap, fmt);
	sg_error_vset(&e, status, type, fmt, ap);
	va_end(ap);
	sg_req_error(r, &e);
}

/* ---- streams --------------------------------------------------------------------------- */

#define SG_STREAM_SNDBUF (32 << 10) /* SO_SNDBUF of a stream's socket (Linux doubles it) */

int sg_req_stream_start(struct sg_req *r, const char *content_type)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;

	common_headers(r, content_type);
	evhttp_add_header(evhttp_request_get_output_headers(r->ev), "X-Accel-Buffering", "no");
	evhttp_add_header(evhttp_request_get_output_headers(r->ev), "Cache-Control", "no-cache");
	/* A stream's client sends nothing while it reads: only writes may time out (a client
	 * that reads nothing for idle_timeout_s is gone), never reads. */
	if (bev) {
		struct timeval wr = {r->cfg->idle_timeout_s, 0};
		int sndbuf = SG_STREAM_SNDBUF;

		bufferevent_set_timeouts(bev, NULL, &wr);
		/* The kernel's own buffer for a stream stays small (Linux would grow it to
		 * megabytes), so what a slow reader costs is bounded by that plus the backlog cap,
		 * and the cap is what decides when it is cut. */
		setsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	}
	if (r->deadline) {
		event_free(r->deadline);
		r->deadline = NULL;
	}
	r->streaming = 1;
	if (r->host->metrics)
		sg_metrics_gauge(&r->host->metrics->streams, 1);
	evhttp_send_reply_start(r->ev, 200, reason(200));
	if (evhttp_request_get_command(r->ev) == EVHTTP_REQ_HEAD) {
		/* The headers are the whole answer. */
		sg_req_stream_end(r);
		return -1;
	}
	return 0;
}

size_t sg_req_stream_backlog(const struct sg_req *r)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;

	return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

static int stream_add(struct sg_req *r, const char *data, size_t len)
{
	struct evbuffer *buf = evbuffer_new();

	if (!buf || evbuffer_add(buf, data, len) != 0) {
		if (buf)
			evbuffer_free(buf);
		sg_req_stream_end(r);
		return -1;
	}
	evhttp_send_reply_chunk(r->ev, buf);
	evbuffer_free(buf);
	r->sent += len;
	return 0;
}

int sg_req_stream_send(struct sg_req *r, const char *data, size_t len)
{
	size_t cap = r->cfg->max_stream_backlog_bytes;

	if (len == 0)
		return 0;
	if (sg_req_stream_backlog(r) + len > cap) {
		sg_warn("%s: the client reads too slowly (more than %zu bytes waiting); ending its "
		        "stream",
		        r->id, cap);
		sg_req_stream_end(r);
		return -1;
	}
	return stream_add(r, data, len);
}

int sg_req_stream_send_last(struct sg_req *r, const char *data, size_t len)
{
	return len ? stream_add(r, data, len) : 0;
}

void sg_req_stream_end(struct sg_req *r)
{
	char note[64];

	/* logged first: evhttp may free the request as the stream ends */
	snprintf(note, sizeof(note), "stream %zu bytes", r->sent);
	access_log(r, 200, note);
	evhttp_send_reply_end(r->ev);
	req_free(r);
}

void sg_req_on_drain(struct sg_req *r, void (*fn)(struct sg_req *r))
{
	r->on_drain = fn;
}

void sg_req_drain(struct sg_req_host *h)
{
	struct sg_req *r = h->live, *next;

	h->draining = 1;
	/* Streams never finish by themselves: end them now. A drain hook may end other
	 * requests than its own only through their own functions, which unlink them; restart
	 * from the head after each, since `next` may be gone. */
	while (r) {
		next = r->next;
		if (r->streaming) {
			if (r->on_drain)
				r->on_drain(r);
			else
				sg_req_stream_end(r);
			next = h->live;
		}
		r = next;
	}
	if (h->inflight == 0 && h->drained)
		h->drained(h);
}

void sg_req_abort_all(struct sg_req_host *h)
{
	while (h->live) {
		struct sg_req *r = h->live;
		struct evhttp_request *ev = r->ev;
		int orphan = r->orphan;

		req_free(r);
		/* a connected request is evhttp's to free; an orphan's was handed to us */
		if (orphan)
			evhttp_request_free(ev);
	}
}

/* ---- handler toolkit ------------------------------------------------------------------ */

const struct sg_config *sg_req_config(const struct sg_req *r)
{
	return r->cfg;
}

const char *sg_req_id(const struct sg_req *r)
{
	return r->id;
}

const char *sg_req_method(const struct sg_req *r)
{
	return r->method;
}

const struct sg_key *sg_req_key(const struct sg_req *r)
{
	return r->key;
}

const char *sg_req_param(const struct sg_req *r)
{
	return r->param;
}

const char *sg_req_query(const struct sg_req *r)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->ev);

	return uri ? evhttp_uri_get_query(uri) : NULL;
}

const char *sg_req_body(const struct sg_req *r, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->ev);

	*len = in ? evbuffer_get_length(in) : 0;
	return *len ? (const char *)evbuffer_pullup(in, -1) : "";
}

const char *sg_req_header(const struct sg_req *r, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(r->ev), name);
}

struct sg_req_host *sg_req_host(const struct sg_req *r)
{
	return r->host;
}

void sg_req_note_backend(struct sg_req *r, const struct sg_backend *be)
{
	if (!be)
		return;
	if (r->backend && strcmp(r->backend, be->name) != 0)
		r->multi = 1;
	r->backend = be->name;
}

int64_t sg_req_now_us(const struct sg_req *r)
{
	return r->now_us;
}

/* The kept body, with an error's request_id made this request's: the SDK reads the id from
 * the header and from the body, and the two must agree. */
static void add_replayed_body(struct evbuffer *buf, const struct sg_idem_answer *a, const char *id)
{
	json_t *j = a->status >= 400 ? json_loadb(a->body, a->len, 0, NULL) : NULL;
	char *text = NULL;

	if (json_is_object(j) && json_object_get(j, "request_id") &&
	    json_object_set_new(j, "request_id", json_string(id)) == 0)
		text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (text)
		evbuffer_add(buf, text, strlen(text));
	else
		evbuffer_add(buf, a->body, a->len);
	free(text);
	json_decref(j);
}

/* Sends a kept answer again. */
static void replay(struct sg_req *r, const struct sg_idem_answer *a)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
	struct evbuffer *buf = evbuffer_new();

	common_headers(r, "application/json");
	evhttp_add_header(h, "Idempotent-Replayed", "true");
	if (a->should_retry >= 0)
		evhttp_add_header(h, "x-should-retry", a->should_retry ? "true" : "false");
	if (buf)
		add_replayed_body(buf, a, r->id);
	access_log_out(r, a->status, a->len, "idempotent replay", 1);
	evhttp_send_reply(r->ev, a->status, reason(a->status), buf);
	if (buf)
		evbuffer_free(buf);
	req_free(r);
}

/* ---- Idempotency-Key answers in Redis (shared by every instance) ------------------------------
 *
 * Under prefix + "idem:" + hex(SHA-256 of principal, key, method and path), a record:
 *   "P" fp-hex ":" request-id                          the first is being answered
 *   "A" fp-hex status(3) should-retry(-|0|1) body     its answer
 * A new key is claimed atomically (the script below): set to pending unless present, else the
 * record present comes back. The pending record lives for twice the request deadline plus
 * 10 s (an instance that dies leaves it behind that long); the answer for the window. When the
 * store cannot be asked, a write carrying a key is refused with a retryable 503: running it
 * unrecorded could make a duplicate of a retry that lands on another instance. */

static const char idem_claim_lua[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if v and (v == ARGV[3] or string.sub(v, 1, 1) ~= 'X') then return v end "
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "return false";
static const char idem_finish_lua[] = "local v = redis.call('GET', KEYS[1]) "
                                      "if v and v ~= ARGV[1] then return 0 end "
                                      "if ARGV[2] == '' then redis.call('DEL', KEYS[1]) "
                                      "else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end "
                                      "return 1";

/* A claim whose reply never came (a timeout, a lost connection) may still be run by Redis
 * later: this marks it cancelled ("X:" request-id), so that it is a no-op if it runs after
 * (the claim script leaves its own request's mark alone) and is undone if it ran before.
 * Anyone else's claim replaces the mark. */
static const char idem_cancel_lua[] = "local v = redis.call('GET', KEYS[1]) "
                                      "if v and v ~= ARGV[1] and v ~= ARGV[2] then return 0 end "
                                      "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) "
                                      "return 1";

/* Claims whose fate is unknown, kept per worker until a connection settles them. */
#define SG_IDEM_DOUBTS_MAX 4096

struct sg_idem_doubt {
	char *key, *pending, *mark;
	struct sg_idem_doubt *next;
};

static void doubt_free(struct sg_idem_doubt *d)
{
	free(d->key);
	free(d->pending);
	free(d->mark);
	free(d);
}

struct doubt_op {
	struct sg_req_host *host;
	struct sg_idem_doubt *d;
};

static void doubt_push(struct sg_req_host *h, struct sg_idem_doubt *d);

static void on_doubt_settled(enum sg_redis_status st, const struct redisReply *reply, void *arg)
{
	struct doubt_op *o = arg;

	if (st == SG_REDIS_OK && reply->type == REDIS_REPLY_INTEGER)
		doubt_free(o->d);
	else
		doubt_push(o->host, o->d); /* at the next connection */
	free(o);
}

static int send_cancel(struct sg_req_host *h, struct sg_idem_doubt *d)
{
	char ttl[24];
	struct doubt_op *o = malloc(sizeof(*o));

	if (!o)
		return -1;
	snprintf(ttl, sizeof(ttl), "%ld", 2 * h->cfg->request_timeout_ms + 10000);
	o->host = h;
	o->d = d;
	{
		const char *argv[] = {"EVAL",     idem_cancel_lua, "1", d->key,
		                      d->pending, d->mark,         ttl};
		size_t lens[] = {4,
		                 sizeof(idem_cancel_lua) - 1,
		                 1,
		                 strlen(d->key),
		                 strlen(d->pending),
		                 strlen(d->mark),
		                 strlen(ttl)};

		if (sg_redis_cmd(h->redis, 7, argv, lens, on_doubt_settled, o))
			return 0;
	}
	free(o);
	return -1;
}

static void doubt_push(struct sg_req_host *h, struct sg_idem_doubt *d)
{
	if (h->ndoubts >= SG_IDEM_DOUBTS_MAX) {
		sg_warn(
		    "too many Idempotency-Key claims left unsettled by redis; one is dropped (its "
		    "key frees when its pending record expires)");
		doubt_free(d);
		return;
	}
	d->next = h->doubts;
	h->doubts = d;
	h->ndoubts++;
}

/* Cancels the claim r made, or may have made: now when the connection is up (commands run in
 * order on it, so after the claim), else at the next connection. */
static void idem_cancel_claim(struct sg_req *r)
{
	struct sg_idem_doubt *d = calloc(1, sizeof(*d));
	size_t n = strlen(r->id) + 3;

	if (!d || !(d->key = strdup(r->idem_key)) || !(d->pending = strdup(r->idem_pending)) ||
	    !(d->mark = malloc(n))) {
		if (d)
			doubt_free(d);
		sg_warn("request %s: out of memory settling its Idempotency-Key claim", r->id);
		return;
	}
	snprintf(d->mark, n, "X:%s", r->id);
	if (send_cancel(r->host, d))
		doubt_push(r->host, d);
}

void sg_req_redis_up(struct sg_redis *redis, void *arg)
{
	struct sg_req_host *h = arg;
	struct sg_idem_doubt *d = h->doubts;

	(void)redis;
	h->doubts = NULL;
	h->ndoubts = 0;
	while (d) {
		struct sg_idem_doubt *next = d->next;

		if (send_cancel(h, d))
			doubt_push(h, d);
		d = next;
	}
}

void sg_req_host_cleanup(struct sg_req_host *h)
{
	while (h->doubts) {
		struct sg_idem_doubt *next = h->doubts->next;

		doubt_free(h->doubts);
		h->doubts = next;
	}
	h->ndoubts = 0;
}

/* This request answers no key after all. */
static void idem_forget(struct sg_req *r)
{
	free(r->idem_pending);
	r->idem_pending = NULL;
	free(r->idem_key);
	r->idem_key = NULL;
}

static void idem_store_down(struct sg_req *r, const char *why)
{
	struct sg_error e;

	sg_warn("request %s: Idempotency-Key store (redis) %s: refusing the write", r->id, why);
	sg_error_set(&e, 503, "overloaded_error",
	             "the Idempotency-Key store is unavailable; retry shortly");
	e.should_retry = 1;
	e.retry_after_s = 1;
	sg_req_error(r, &e);
}

static void on_idem_kept(enum sg_redis_status st, const struct redisReply *reply, void *arg)
{
	char *rid = arg;

	if (st != SG_REDIS_OK || reply->type == REDIS_REPLY_ERROR)
		sg_warn("request %s: its Idempotency-Key answer could not be kept in redis (%s): a "
		        "retry after the pending record expires runs again",
		        rid,
		        st == SG_REDIS_TIMEOUT ? "timeout"
		        : st == SG_REDIS_DOWN  ? "down"
		                               : "error");
	free(rid);
}

/* Stores the answer under the key this request claimed (or drops the claim: nothing was
 * done), unless another request has taken the key since. Fire and forget. */
static void redis_keep_answer(struct sg_req *r, const struct sg_idem_answer *a, int abandon)
{
	const struct sg_config *cfg = r->cfg;
	char fph[2 * SG_SHA256_LEN + 1], win[24], *rec = NULL, *rid = strdup(r->id);
	size_t n = 0;

	sg_hex_encode(r->idem_fp, sizeof(r->idem_fp), fph, sizeof(fph));
	if (!abandon && a) {
		n = 1 + strlen(fph) + 3 + 1 + a->len;
		rec = malloc(n + 1);
		if (rec)
			snprintf(rec, n + 1, "A%s%03d%c%.*s", fph, a->status % 1000,
			         a->should_retry < 0 ? '-'
			         : a->should_retry   ? '1'
			                             : '0',
			         (int)a->len, a->body);
	}
	snprintf(win, sizeof(win), "%ld", cfg->idempotency_window_ms);
	{
		const char *argv[] = {"EVAL",          idem_finish_lua, "1", r->idem_key,
		                      r->idem_pending, rec ? rec : "",  win};
		size_t lens[] = {4,
		                 sizeof(idem_finish_lua) - 1,
		                 1,
		                 strlen(r->idem_key),
		                 strlen(r->idem_pending),
		                 rec ? n : 0,
		                 strlen(win)};

		if (!rid || !sg_redis_cmd(r->host->redis, 7, argv, lens, on_idem_kept, rid)) {
			if (rid)
				on_idem_kept(SG_REDIS_DOWN, NULL, rid);
		}
	}
	free(rec);
	free(r->idem_pending);
	r->idem_pending = NULL;
}

/* The claim's answer: a new key (go on), or the record already there. */
static void on_idem_claim(enum sg_redis_status st, const struct redisReply *reply, void *arg)
{
	struct sg_req *r = arg;
	char fph[2 * SG_SHA256_LEN + 1];
	struct sg_error e;

	r->redis_op = NULL;
	if (st != SG_REDIS_OK ||
	    (reply->type != REDIS_REPLY_NIL && reply->type != REDIS_REPLY_STRING)) {
		if (st != SG_REDIS_OK)
			idem_cancel_claim(r); /* Redis may still run it */
		idem_forget(r);
		idem_store_down(r, st == SG_REDIS_TIMEOUT ? "timed out"
		                   : st == SG_REDIS_DOWN  ? "went away"
		                                          : "answered an error");
		return;
	}
	if (reply->type == REDIS_REPLY_NIL) {
		r->idem_go(r);
		return;
	}
	idem_forget(r); /* not ours: nothing to finish */
	sg_hex_encode(r->idem_fp, sizeof(r->idem_fp), fph, sizeof(fph));
	if (reply->len < 1 + 64 || memcmp(reply->str + 1, fph, 64) != 0) {
		sg_error_set(&e, 409, "conflict_error",
		             "this Idempotency-Key was used with a different request body; use a "
		             "new key for a different request");
		e.should_retry = 0;
	} else if (reply->str[0] == 'A' && reply->len >= 1 + 64 + 4) {
		const char *p = reply->str + 65;
		struct sg_idem_answer a = {atoi((char[4]){p[0], p[1], p[2], 0}),
		                           p[3] == '-' ? -1 : p[3] == '1', (char *)p + 4,
		                           reply->len - 69};

		replay(r, &a);
		return;
	} else {
		sg_error_set(&e, 409, "conflict_error",
		             "a request with this Idempotency-Key is still being answered; retry "
		             "shortly to get its answer");
		e.should_retry = 1;
	}
	sg_req_error(r, &e);
}

/* Claims key (the composed one) in Redis; 1, or -1 after answering. */
static int redis_idempotency(struct sg_req *r, const char *key, const uint8_t fp[SG_SHA256_LEN],
                             void (*go)(struct sg_req *r))
{
	const struct sg_config *cfg = r->cfg;
	uint8_t h[SG_SHA256_LEN];
	char hex[2 * SG_SHA256_LEN + 1], fph[2 * SG_SHA256_LEN + 1], ttl[24], mark[48];
	size_t n, pn;

	sg_sha256(key, strlen(key), h);
	sg_hex_encode(h, sizeof(h), hex, sizeof(hex));
	sg_hex_encode(fp, SG_SHA256_LEN, fph, sizeof(fph));
	n = strlen(cfg->redis.prefix) + 5 + strlen(hex) + 1;
	r->idem_key = malloc(n);
	pn = 1 + strlen(fph) + 1 + strlen(r->id) + 1;
	r->idem_pending = malloc(pn);
	if (!r->idem_key || !r->idem_pending) {
		sg_req_fail(r, 500, "api_error", "out of memory");
		return -1;
	}
	snprintf(r->idem_key, n, "%sidem:%s", cfg->redis.prefix, hex);
	snprintf(r->idem_pending, pn, "P%s:%s", fph, r->id);
	memcpy(r->idem_fp, fp, SG_SHA256_LEN);
	r->idem_go = go;
	snprintf(ttl, sizeof(ttl), "%ld", 2 * cfg->request_timeout_ms + 10000);
	snprintf(mark, sizeof(mark), "X:%s", r->id);
	{
		const char *argv[] = {
		    "EVAL", idem_claim_lua, "1", r->idem_key, r->idem_pending, ttl, mark};
		size_t lens[] = {4,
		                 sizeof(idem_claim_lua) - 1,
		                 1,
		                 strlen(r->idem_key),
		                 strlen(r->idem_pending),
		                 strlen(ttl),
		                 strlen(mark)};

		r->redis_op = sg_redis_cmd(r->host->redis, 7, argv, lens, on_idem_claim, r);
	}
	if (!r->redis_op) {
		idem_forget(r);
		idem_store_down(r, "is not connected");
		return -1;
	}
	return 1;
}

int sg_req_idempotency(struct sg_req *r, const char *body, size_t len, void (*go)(struct sg_req *r))
{
	const char *k = sg_req_header(r, "Idempotency-Key");
	struct sg_idem_answer a = {0};
	uint8_t fp[SG_SHA256_LEN];
	struct sg_error e;
	char *key;
	size_t n;

	if (!k || (!r->host->idem && !r->host->redis))
		return 0;
	if (!sg_idem_key_valid(k)) {
		sg_req_fail(r, 400, "invalid_request_error",
		            "Idempotency-Key: must be 1 to %d printable ASCII characters",
		            SG_IDEM_KEY_MAX);
		return -1;
	}
	/* One key space per principal and endpoint: another key's or another path's use of the
	 * same string is another request. */
	n = strlen(r->key->name) + strlen(k) + strlen(r->method) + strlen(r->path) + 4;
	key = malloc(n);
	if (!key) {
		sg_req_fail(r, 500, "api_error", "out of memory");
		return -1;
	}
	snprintf(key, n, "%s\x1f%s\x1f%s\x1f%s", r->key->name, k, r->method, r->path);
	sg_sha256(body, len, fp);
	if (r->host->redis) {
		int rc = redis_idempotency(r, key, fp, go);

		free(key);
		return rc;
	}
	switch (sg_idem_begin(r->host->idem, key, fp, sg_mono_ms(), &a)) {
	case SG_IDEM_NEW:
		r->idem_key = key;
		return 0;
	case SG_IDEM_REPLAY:
		free(key);
		replay(r, &a);
		free(a.body);
		return -1;
	case SG_IDEM_PENDING:
		sg_error_set(&e, 409, "conflict_error",
		             "a request with this Idempotency-Key is still being answered; retry "
		             "shortly to get its answer");
		e.should_retry = 1;
		break;
	case SG_IDEM_MISMATCH:
		sg_error_set(
		    &e, 409, "conflict_error",
		    "this Idempotency-Key was used with a different request body; use a new "
		    "key for a different request");
		e.should_retry = 0;
		break;
	default:
		sg_error_set(&e, 503, "overloaded_error",
		             "too many Idempotency-Key requests in flight; retry shortly");
		e.should_retry = 1;
		break;
	}
	free(key);
	sg_req_error(r, &e);
	return -1;
}

void sg_req_set_state(struct sg_req *r, void *state, void (*free_fn)(void *))
{
	if (r->state && r->state_free)
		r->state_free(r->state);
	r->state = state;
	r->state_free = free_fn;
}

void *sg_req_state(const struct sg_req *r)
{
	return r->state;
}

/* 1 when the client asks for a fresh read: Cache-Control no-cache, no-store or max-age=0,
 * or Pragma: no-cache (RFC 9111 §5.2.1, §5.4). */
static int wants_fresh(const struct sg_req *r)
{
	const char *cc = sg_req_header(r, "Cache-Control"), *pragma = sg_req_header(r, "Pragma");

	if (pragma && strcasestr(pragma, "no-cache"))
		return 1;
	return cc && (strcasestr(cc, "no-cache") || strcasestr(cc, "no-store") ||
	              strcasestr(cc, "max-age=0"));
}

struct sg_call_env sg_req_call_env(const struct sg_req *r)
{
	struct sg_call_env env = {
	    .upstream = r->host->up,
	    .cache = r->host->cache,
	    .shared = r->host->held_cache,
	    .base = r->host->base,
	    .request_id = r->id,
	    .principal = r->key ? r->key->name : "-",
	    .now_us = r->now_us,
	    .no_cache = wants_fresh(r),
	    .metrics = r->host->metrics,
	    .upstream_us = (int64_t *)&r->upstream_us,
	};

	return env;
}

static struct part *new_part(struct sg_req *r)
{
	if (r->nparts == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 4;
		struct part *p = realloc(r->parts, cap * sizeof(*p));

		if (!p)
			return NULL;
		r->parts = p;
		r->cap = cap;
	}
	memset(&r->parts[r->nparts], 0, sizeof(r->parts[0]));
	return &r->parts[r->nparts];
}

struct sg_call *sg_req_call(struct sg_req *r, enum sg_call_kind kind, const struct sg_route *rt,
                            sg_call_done_cb done)
{
	struct sg_call_env env = sg_req_call_env(r);
	struct part *p = new_part(r);

	if (!p)
		return NULL;
	sg_req_note_backend(r, rt->backend);
	p->call = sg_call_new(kind, &env, rt->backend, rt->identity, done, r);
	if (p->call)
		r->nparts++;
	return p->call;
}

struct sg_walk *sg_req_walk(struct sg_req *r, struct sg_walk_spec *spec, sg_walk_done_cb done)
{
	struct sg_call_env env = sg_req_call_env(r);
	struct part *p = new_part(r);

	if (!p)
		return NULL;
	if (spec->route)
		sg_req_note_backend(r, spec->route->backend);
	spec->env = &env; /* copied by sg_walk_start */
	p->walk = sg_walk_start(spec, done, r);
	if (p->walk)
		r->nparts++;
	return p->walk;
}

/* ---- the request's start ---------------------------------------------------------------- */

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct sg_req *r = arg;

	(void)fd;
	(void)what;
	struct sg_error e;

	sg_error_set(&e, 504, "timeout_error", "the request took longer than %ld ms%s",
	             r->cfg->request_timeout_ms,
	             (r->route->flags & SG_RT_WRITE)
	                 ? "; the outcome of this write is unknown: it may have taken effect, so "
	                   "read the session before trying again"
	                 : "");
	if (r->route->flags & SG_RT_WRITE)
		e.should_retry = 0;
	sg_req_error(r, &e);
}

static const char *method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_TRACE:
		return "TRACE";
	case EVHTTP_REQ_CONNECT:
		return "CONNECT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	default:
		return "?";
	}
}

/* Allocates the request and ties it to its connection; NULL when out of memory (answered by
 * evhttp then). */
static struct sg_req *req_new(struct sg_req_host *h, struct evhttp_request *ev)
{
	struct sg_req *r = calloc(1, sizeof(*r));
	struct conn_watch *cw = malloc(sizeof(*cw));
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	uint8_t rnd[12];
	struct timespec now;

	if (!r || !cw) {
		free(r);
		free(cw);
		return NULL;
	}
	cw->host = h;
	cw->r = r;
	r->host = h;
	r->cfg = sg_config_ref(h->cfg);
	r->ev = ev;
	r->watch = cw;
	h->inflight++;
	if (h->metrics)
		sg_metrics_gauge(&h->metrics->inflight, 1);
	evhttp_request_set_on_complete_cb(ev, on_complete, cw);
	if (evhttp_request_get_connection(ev))
		evhttp_connection_set_closecb(evhttp_request_get_connection(ev), on_close, cw);
	r->next = h->live;
	if (h->live)
		h->live->prev = r;
	h->live = r;
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	clock_gettime(CLOCK_REALTIME, &now);
	r->now_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
	memcpy(r->id, "req_", 4);
	if (sg_random(rnd, sizeof(rnd)) != 0)
		memset(rnd, 0, sizeof(rnd));
	sg_hex_encode(rnd, sizeof(rnd), r->id + 4, sizeof(r->id) - 4);
	snprintf(r->method, sizeof(r->method), "%s", method_name(evhttp_request_get_command(ev)));
	snprintf(r->path, sizeof(r->path), "%s", path ? path : "?");
	if (evhttp_request_get_connection(ev)) {
		char *addr = NULL;
		ev_uint16_t port = 0;

		evhttp_connection_get_peer(evhttp_request_get_connection(ev), &addr, &port);
		snprintf(r->client, sizeof(r->client), "%s", addr ? addr : "");
	}
	r->bytes_in = evbuffer_get_length(evhttp_request_get_input_buffer(ev));
	return r;
}

/* How the request's body is framed, checked before anything else (RFC 9112 §6.3): libevent
 * 2.1 accepts a duplicated Content-Length (it takes the last), a Transfer-Encoding it does not
 * implement, or both framings at once; behind a front proxy that frames the same bytes
 * otherwise, that is request smuggling. NULL when the framing is sound, else why not. */
static const char *bad_framing(struct evhttp_request *ev, const char *method)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(ev);
	struct evkeyval *kv;
	int ncl = 0, nte = 0, body = 0;

	for (kv = in->tqh_first; kv; kv = kv->next.tqe_next) {
		const char *k = kv->key;

		if (!*k || strpbrk(k, " \t\r\n\v\f"))
			return "a header name is empty or holds whitespace";
		if (strcasecmp(k, "Content-Length") == 0) {
			const char *v = kv->value;

			if (++ncl > 1)
				return "Content-Length is given more than once";
			if (!*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 15)
				return "Content-Length is not a number";
			body = body || strspn(v, "0") != strlen(v);
		} else if (strcasecmp(k, "Transfer-Encoding") == 0) {
			if (++nte > 1 || strcasecmp(kv->value, "chunked") != 0)
				return "Transfer-Encoding other than a single 'chunked' is not "
				       "supported";
			body = 1;
		}
	}
	if (ncl && nte)
		return "both Content-Length and Transfer-Encoding are given";
	if (body && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
	             strcmp(method, "DELETE") == 0 || strcmp(method, "OPTIONS") == 0 ||
	             strcmp(method, "TRACE") == 0))
		return "this method takes no body";
	return NULL;
}

/* Past authentication and the rate limit: the request's deadline starts and its handler
 * runs. */
static void dispatch(struct sg_req *r)
{
	const struct sg_config *cfg = r->cfg;
	struct timeval tv;

	if (!(r->route->flags & SG_RT_LONG)) {
		r->deadline = evtimer_new(r->host->base, on_deadline, r);
		tv.tv_sec = cfg->request_timeout_ms / 1000;
		tv.tv_usec = (cfg->request_timeout_ms % 1000) * 1000;
		if (!r->deadline || evtimer_add(r->deadline, &tv) != 0) {
			sg_req_fail(r, 500, "api_error", "out of memory");
			return;
		}
	}
	r->route->handler(r);
}

static void rate_limited(struct sg_req *r, long wait)
{
	struct sg_error e;

	if (r->host->metrics)
		sg_mctr_add(&r->host->metrics->rate_limited, 1);
	sg_error_set(&e, 429, "rate_limit_error",
	             "this key's rate limit (%g requests per second, bursts of %g) is "
	             "exceeded; try again in %ld s",
	             r->key->bucket->rate, r->key->bucket->burst, wait);
	e.should_retry = 1;
	e.retry_after_s = wait;
	sg_req_error(r, &e);
}

/* This process's own bucket for the key: 1 to go on, 0 after answering 429. */
static int local_rate_limit(struct sg_req *r)
{
	long wait = 1;

	if (sg_bucket_take(r->key->bucket, sg_mono_ms() * 1000, &wait))
		return 1;
	rate_limited(r, wait);
	return 0;
}

/* ---- rate limits counted in Redis, across every instance ---------------------------------------
 *
 * The same token bucket as overload.c, kept in a hash (tokens, time of the last refill in µs,
 * by Redis's own clock so that instances' clocks do not matter) and updated by one script,
 * atomically: refill by elapsed × rate up to burst, take one token or say how long until one is
 * there. The hash expires once it would be full again. Redis unavailable: with
 * rate_limits_when_down "allow" (the default) each instance falls back to its own bucket, so
 * the limit holds per instance; with "refuse" the request gets a 503 that asks for a retry. */
static const char rate_lua[] =
    "local rate = tonumber(ARGV[1]) local burst = tonumber(ARGV[2]) "
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) "
    "local v = redis.call('HMGET', KEYS[1], 't', 'ts') "
    "local tokens = tonumber(v[1]) local ts = tonumber(v[2]) "
    "if not tokens or not ts then tokens = burst ts = now end "
    "tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000000) "
    "local ok = 0 local wait = 0 "
    "if tokens >= 1 then tokens = tokens - 1 ok = 1 "
    "else wait = math.ceil((1 - tokens) / rate) end "
    "redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now)) "
    "redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000) "
    "return {ok, wait}";

static void rate_store_down(struct sg_req *r, const char *why)
{
	struct sg_error e;

	if (r->cfg->redis.rate_limits_fail_open) {
		sg_debug(
		    "request %s: shared rate limit store (redis) %s: this instance's own limit "
		    "applies",
		    r->id, why);
		if (local_rate_limit(r))
			dispatch(r);
		return;
	}
	sg_warn("request %s: shared rate limit store (redis) %s: refusing", r->id, why);
	sg_error_set(&e, 503, "overloaded_error",
	             "the rate limit store is unavailable; retry shortly");
	e.should_retry = 1;
	e.retry_after_s = 1;
	sg_req_error(r, &e);
}

static void on_rate(enum sg_redis_status st, const struct redisReply *reply, void *arg)
{
	struct sg_req *r = arg;

	r->redis_op = NULL;
	if (st != SG_REDIS_OK || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[0]->type != REDIS_REPLY_INTEGER ||
	    reply->element[1]->type != REDIS_REPLY_INTEGER) {
		rate_store_down(r, st == SG_REDIS_TIMEOUT ? "timed out"
		                   : st == SG_REDIS_DOWN  ? "went away"
		                                          : "answered an error");
		return;
	}
	if (reply->element[0]->integer == 1)
		dispatch(r);
	else
		rate_limited(r,
		             reply->element[1]->integer > 0 ? (long)reply->element[1]->integer : 1);
}

static void shared_rate_limit(struct sg_req *r)
{
	const struct sg_config *cfg = r->cfg;
	char rate[32], burst[32], *key;
	size_t n = strlen(cfg->redis.prefix) + 3 + strlen(r->key->name) + 1;

	key = malloc(n);
	if (!key) {
		sg_req_fail(r, 500, "api_error", "out of memory");
		return;
	}
	snprintf(key, n, "%srl:%s", cfg->redis.prefix, r->key->name);
	snprintf(rate, sizeof(rate), "%.17g", r->key->bucket->rate);
	snprintf(burst, sizeof(burst), "%.17g", r->key->bucket->burst);
	{
		const char *argv[] = {"EVAL", rate_lua, "1", key, rate, burst};
		size_t lens[] = {4,           sizeof(rate_lua) - 1, 1,
		                 strlen(key), strlen(rate),         strlen(burst)};

		r->redis_op = sg_redis_cmd(r->host->redis, 6, argv, lens, on_rate, r);
	}
	free(key);
	if (!r->redis_op)
		rate_store_down(r, "is not connected");
}

/* A CORS preflight (cors.h): OPTIONS with Origin and Access-Control-Request-Method on a path
 * of the API, answered here before authentication (a browser sends no key with it). Returns 1
 * when answered, 0 when the request is not one (it is then routed as usual). */
static int preflight(struct sg_req *r, const struct sg_route_def *table)
{
	const struct sg_cors *cors = r->cfg->cors;
	const char *origin = sg_req_header(r, "Origin");
	const char *want = sg_req_header(r, "Access-Control-Request-Method");
	struct sg_route_match m;
	struct evkeyvalq *out;

	if (!cors || strcmp(r->method, "OPTIONS") != 0 || !origin || !want)
		return 0;
	if (sg_routes_match_in(table, want, r->path, &m) != 0 && m.status != 405)
		return 0; /* not a path of the API: 404 as any unknown route */
	free(m.param);
	r->preflight = 1;
	if (!sg_cors_allowed(cors, origin)) {
		sg_req_fail(r, 403, "permission_error",
		            "origin not allowed: add it to cors.origins to let browsers on it call "
		            "the API");
		return 1;
	}
	out = evhttp_request_get_output_headers(r->ev);
	evhttp_add_header(out, "request-id", r->id);
	sg_cors_preflight_headers(cors, origin, sg_req_header(r, "Access-Control-Request-Headers"),
	                          out);
	access_log_out(r, 204, 0, NULL, 1);
	evhttp_send_reply(r->ev, 204, reason(204), NULL);
	req_free(r);
	return 1;
}

void sg_req_handle(struct evhttp_request *ev, void *arg)
{
	struct sg_req_host *h = arg;
	struct sg_req *r = req_new(h, ev);
	const struct sg_config *cfg = r ? r->cfg : NULL;
	struct sg_route_match m;
	const char *xkey, *authz, *framing;

	if (!r) {
		evhttp_send_error(ev, 503, "out of memory");
		return;
	}
	framing = bad_framing(ev, r->method);
	if (framing) {
		/* answered, and the connection closed: nothing after these bytes is read as a
		 * request of its own */
		evhttp_add_header(evhttp_request_get_output_headers(ev), "Connection", "close");
		sg_req_fail(r, 400, "invalid_request_error", "malformed request framing: %s",
		            framing);
		return;
	}
	if (preflight(r, h->routes ? h->routes : sg_routes))
		return;
	if (sg_routes_match_in(h->routes ? h->routes : sg_routes, r->method, r->path, &m) != 0) {
		if (m.status == 405) {
			evhttp_add_header(evhttp_request_get_output_headers(ev), "Allow", m.allow);
			sg_req_fail(r, 405, "invalid_request_error",
			            "method %s is not allowed on %s (allowed: %s)", r->method,
			            r->path, m.allow);
		} else {
			sg_req_fail(r, 404, "not_found_error", "no such endpoint: %s %s", r->method,
			            r->path);
		}
		return;
	}
	r->route = m.route;
	r->param = m.param;
	watch_for_close(ev);
	if (!(r->route->flags & SG_RT_PUBLIC)) {
		xkey = sg_req_header(r, "x-api-key");
		authz = sg_req_header(r, "authorization");
		r->key = sg_auth_lookup(cfg, sg_auth_extract(xkey, authz));
		if (!r->key) {
			sg_req_fail(
			    r, 401, "authentication_error",
			    xkey || authz
			        ? "invalid API key"
			        : "missing API key: send x-api-key or Authorization: Bearer");
			return;
		}
	}
	if (r->key && r->key->bucket) {
		if (h->redis) {
			shared_rate_limit(r);
			return;
		}
		if (!local_rate_limit(r))
			return;
	}
	dispatch(r);
}
