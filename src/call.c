/* call.c - see call.h. */
#include "call.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "berror.h"
#include "cache.h"
#include "config.h"
#include "held.h"
#include "log.h"
#include "timeutil.h"
#include "mapping.h"
#include "metrics.h"
#include "sse.h"

#define SG_CALL_MAX_FETCHES 4096 /* fan-out bound per call */

struct pending {
	struct sg_call *call;
	struct sg_fetch *fetch;
	sg_call_fetch_cb cb;
	sg_call_chunk_cb on_chunk;
	void *arg;
	int write; /* not GET/HEAD: sent once, and its outcome may be unknown */
	struct pending *next;
};

/* One sg_call_sse fetch: its SSE reader and the module's callback. */
struct sse_reader {
	struct sg_call *call;
	struct sg_sse *sse;
	sg_call_sse_cb on_msg;
	void *arg;
	size_t max;
	struct sse_reader *next;
};

struct sg_call {
	enum sg_call_kind kind;
	struct sg_call_env env;
	const struct sg_backend *be;
	const json_t *identity;
	const struct sg_session_query *sq;
	const struct sg_event_query *eq;
	struct sg_pubid pubid;
	int has_pubid;
	const json_t *body;
	int64_t agent_version;
	sg_call_sink_cb sink;
	void *sink_arg;
	struct sse_reader *sses; /* sg_call_sse readers, freed with the call */
	int64_t since_us;        /* stream: live from */
	char *resume, *mark;     /* stream: resume token in, mark out */
	void (*opened)(struct sg_call *call, void *arg); /* stream: first 2xx head */
	int emitting;      /* inside sg_call_emit: sg_call_free waits for it */
	int free_after;    /* sg_call_free was asked for meanwhile */
	int cur_write;     /* the fetch whose callback runs is a write */
	unsigned long gen; /* the backend's write generation when the call started */
	sg_call_done_cb done;
	void *done_arg;
	struct event *done_ev;  /* defers "done" to the loop */
	struct event *later_ev; /* sg_call_later */
	void (*later_fn)(struct sg_call *call);
	int later_pending; /* later_fn is due: the call is not stalled */
	int slot;          /* it holds one of the backend's max_concurrent */
	int volatile_;     /* its result changes while it is read (sg_call_set_volatile) */
	int probe;         /* it is the probe of the backend's open breaker */
	struct pending *fetches;
	unsigned npending, nstarted;
	int ended;
	json_t *items;
	json_t *added;        /* sg_call_add_item without a held listing */
	struct sg_held *held; /* sg_call_collect_held: the items go here */
	json_t *object;
	char *page_in; /* native paging: backend cursor to start from */
	const json_t *carry_in;
	char *page_next; /* … and where the backend says the next page starts */
	json_t *carry_out;
	struct sg_error err;
	void *state;
	void (*state_free)(void *);
};

enum sg_call_kind sg_call_kind(const struct sg_call *c)
{
	return c->kind;
}

const struct sg_backend *sg_call_backend(const struct sg_call *c)
{
	return c->be;
}

const json_t *sg_call_identity(const struct sg_call *c)
{
	return c->identity;
}

const char *sg_call_principal(const struct sg_call *c)
{
	return c->env.principal;
}

const char *sg_call_request_id(const struct sg_call *c)
{
	return c->env.request_id;
}

const struct sg_session_query *sg_call_session_query(const struct sg_call *c)
{
	return c->sq;
}

const struct sg_event_query *sg_call_event_query(const struct sg_call *c)
{
	return c->eq;
}

const struct sg_pubid *sg_call_pubid(const struct sg_call *c)
{
	return c->has_pubid ? &c->pubid : NULL;
}

const json_t *sg_call_body(const struct sg_call *c)
{
	return c->body;
}

int64_t sg_call_agent_version(const struct sg_call *c)
{
	return c->agent_version;
}

int64_t sg_call_now_us(const struct sg_call *c)
{
	return c->env.now_us;
}

const char *sg_call_page_cursor(const struct sg_call *c)
{
	return c->page_in;
}

const json_t *sg_call_page_carry(const struct sg_call *c)
{
	return c->carry_in;
}

/* The cache key of `key` for this call: the backend's write generation at the call's start
 * goes in, so nothing fetched before a write answers a read after it, and so does its
 * configuration generation, so nothing fetched under a backend's previous definition (another
 * URL, another key) answers a read under the new one. */
static int gen_key(const struct sg_call *c, const char *key, char *out, size_t len)
{
	int n = snprintf(out, len, "%s\x1f%lu\x1f%lu", key, c->gen, c->be->generation);

	return n > 0 && (size_t)n < len ? 0 : -1;
}

json_t *sg_call_cache_get(const struct sg_call *c, const char *key)
{
	char k[2048];

	if (c->env.no_cache || gen_key(c, key, k, sizeof(k)))
		return NULL;
	return sg_cache_get(c->env.cache, k, sg_mono_ms());
}

void sg_call_cache_put(const struct sg_call *c, const char *key, json_t *value, int64_t ttl_ms)
{
	char k[2048];

	if (gen_key(c, key, k, sizeof(k)))
		return;
	sg_cache_put(c->env.cache, k, value, sg_mono_ms(), ttl_ms);
}

/* A remembered usage: a small value shared by the workers, released by whoever drops it last. */
struct usage_val {
	atomic_int refs;
	struct sg_usage_memo u;
};

static void usage_retain(void *v)
{
	atomic_fetch_add(&((struct usage_val *)v)->refs, 1);
}

static void usage_release(void *v)
{
	struct usage_val *uv = v;

	if (atomic_fetch_sub(&uv->refs, 1) == 1)
		free(uv);
}

static const struct sg_cache_type usage_type = {usage_retain, usage_release};

static int usage_key(const struct sg_call *c, const char *key, char *out, size_t len)
{
	int n = snprintf(out, len, "usage\x1f%s\x1f%s", c->be->name, key);

	return n > 0 && (size_t)n < len ? 0 : -1;
}

int sg_call_wants_fresh(const struct sg_call *c)
{
	return c->env.no_cache;
}

int sg_call_usage_get(const struct sg_call *c, const char *key, struct sg_usage_memo *out)
{
	char k[SG_CACHE_KEY_MAX + 1];
	struct usage_val *uv;

	if (!c->env.shared || usage_key(c, key, k, sizeof(k)))
		return 0;
	uv = sg_cache_get_typed(c->env.shared, k, &usage_type, sg_mono_ms());
	if (!uv)
		return 0;
	*out = uv->u;
	usage_release(uv);
	return 1;
}

void sg_call_usage_put(const struct sg_call *c, const char *key, const struct sg_usage_memo *u,
                       int64_t ttl_ms)
{
	char k[SG_CACHE_KEY_MAX + 1];
	struct usage_val *uv;

	if (!c->env.shared || usage_key(c, key, k, sizeof(k)) || !(uv = malloc(sizeof(*uv))))
		return;
	atomic_init(&uv->refs, 1);
	uv->u = *u;
	sg_cache_put_typed(c->env.shared, k, &usage_type, uv, sg_cache_chunk(sizeof(*uv)),
	                   sg_mono_ms(), ttl_ms);
	usage_release(uv); /* the cache holds its own */
}

void sg_call_set_state(struct sg_call *c, void *state, void (*free_fn)(void *))
{
	if (c->state && c->state_free)
		c->state_free(c->state);
	c->state = state;
	c->state_free = free_fn;
}

void *sg_call_state(const struct sg_call *c)
{
	return c->state;
}

unsigned sg_call_pending(const struct sg_call *c)
{
	return c->npending;
}

int sg_call_ended(const struct sg_call *c)
{
	return c->ended;
}

/* The backend's state may have changed: reads cached before now must not answer later ones
 * (see write_gen in config.h). */
static void bump_gen(const struct sg_call *c)
{
	atomic_fetch_add(&c->be->state->write_gen, 1);
}

static void cancel_fetches(struct sg_call *c)
{
	while (c->fetches) {
		struct pending *p = c->fetches;

		if (p->write)
			bump_gen(c); /* it may have been applied */
		c->fetches = p->next;
		sg_fetch_cancel(p->fetch);
		free(p);
	}
	c->npending = 0;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct sg_call *c = arg;

	(void)fd;
	(void)what;
	cancel_fetches(c);
	c->done(c, c->done_arg);
}

/* Marks the call ended and lets the loop run "done" after the current callback returns. */
/* What the call holds of its backend's overload guards goes back (once). */
static void release_guards(struct sg_call *c)
{
	struct sg_backend *be = (struct sg_backend *)c->be;

	if (c->slot) {
		atomic_fetch_sub(&be->state->inflight, 1);
		c->slot = 0;
	}
	if (c->probe) {
		sg_breaker_abandon(&be->breaker);
		c->probe = 0;
	}
}

static void end_call(struct sg_call *c)
{
	c->ended = 1;
	release_guards(c);
	event_active(c->done_ev, EV_TIMEOUT, 0);
}

void sg_call_items(struct sg_call *c, json_t *items)
{
	if (c->ended) {
		json_decref(items);
		return;
	}
	if (!json_is_array(items)) {
		json_decref(items);
		sg_call_fail(c, 500, "api_error", "mapping '%s' returned no items",
		             c->be->mapping->name);
		return;
	}
	c->items = items;
	end_call(c);
}

int sg_call_collect_held(struct sg_call *c, enum sg_held_kind kind, int seal)
{
	if (c->held || c->added)
		return -1;
	c->held = sg_held_begin(kind, seal);
	return c->held ? 0 : -1;
}

int sg_call_add_item(struct sg_call *c, json_t *item)
{
	struct sg_error e = {0};

	if (c->ended) {
		json_decref(item);
		return -1;
	}
	if (c->held) {
		if (sg_held_add(c->held, item, &e) == 0)
			return 0;
		sg_call_fail_with(c, &e);
		return -1;
	}
	if (!c->added)
		c->added = json_array();
	if (!c->added || json_array_append_new(c->added, item)) {
		sg_call_fail(c, 500, "api_error", "out of memory");
		return -1;
	}
	return 0;
}

void sg_call_items_added(struct sg_call *c)
{
	struct sg_error e = {0};
	json_t *items;

	if (c->ended)
		return;
	if (c->held) {
		if (sg_held_end(c->held, &e)) {
			sg_call_fail_with(c, &e);
			return;
		}
		end_call(c);
		return;
	}
	items = c->added ? c->added : json_array();
	c->added = NULL;
	sg_call_items(c, items);
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
	struct sg_call *c = arg;

	(void)fd;
	(void)what;
	c->later_pending = 0;
	if (c->ended)
		return;
	c->later_fn(c);
	if (!c->ended && c->npending == 0 && !c->later_pending)
		sg_call_fail(c, 500, "api_error", "mapping '%s' stalled", c->be->mapping->name);
}

int sg_call_later(struct sg_call *c, void (*fn)(struct sg_call *call))
{
	/* a zero timeout, not event_active: the loop polls its sockets before it runs (an
	 * activated event may run in the same pass, ahead of every waiting client) */
	struct timeval now = {0, 0};

	if (!c->later_ev)
		c->later_ev = evtimer_new(c->env.base, on_later, c);
	if (!c->later_ev) {
		sg_call_fail(c, 500, "api_error", "out of memory");
		return -1;
	}
	c->later_fn = fn;
	c->later_pending = 1;
	return evtimer_add(c->later_ev, &now);
}

void sg_call_set_volatile(struct sg_call *c)
{
	c->volatile_ = 1;
}

int sg_call_result_volatile(const struct sg_call *c)
{
	return c->volatile_;
}

struct sg_held *sg_call_result_held(const struct sg_call *c)
{
	return c->ended && !c->err.status ? c->held : NULL;
}

void sg_call_object(struct sg_call *c, json_t *obj)
{
	if (c->ended) {
		json_decref(obj);
		return;
	}
	c->object = obj;
	end_call(c);
}

int sg_call_emit(struct sg_call *c, const json_t *event)
{
	int rc;

	if (c->ended || !c->sink)
		return -1;
	c->emitting = 1;
	rc = c->sink(c, event, c->sink_arg);
	c->emitting = 0;
	if (c->free_after) {
		c->free_after = 0;
		sg_call_free(c);
		return -1;
	}
	return rc;
}

void sg_call_page(struct sg_call *c, json_t *items, const char *next, json_t *carry)
{
	if (c->ended) {
		json_decref(items);
		json_decref(carry);
		return;
	}
	if (next && *next) {
		c->page_next = strdup(next);
		if (!c->page_next) {
			json_decref(items);
			json_decref(carry);
			sg_call_fail(c, 500, "api_error", "out of memory");
			return;
		}
	}
	c->carry_out = carry;
	sg_call_items(c, items);
}

void sg_call_fail_with(struct sg_call *c, const struct sg_error *err)
{
	if (c->ended)
		return;
	c->err = *err;
	end_call(c);
}

void sg_call_fail(struct sg_call *c, int status, const char *type, const char *fmt, ...)
{
	struct sg_error e;
	va_list ap;

	if (c->ended)
		return;
	va_start(ap, fmt);
	sg_error_vset(&e, status, type, fmt, ap);
	va_end(ap);
	sg_call_fail_with(c, &e);
}

static void on_fetch(const struct sg_fetch_res *res, void *arg)
{
	struct pending *p = arg, **pp;
	struct sg_call *c = p->call;

	for (pp = &c->fetches; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	c->npending--;
	if (p->write)
		bump_gen(c);
	if (c->env.upstream_us)
		*c->env.upstream_us += res->elapsed_us;
	if (c->env.metrics && !p->on_chunk && res->fail != SG_FETCH_BUDGET)
		sg_metrics_upstream(c->env.metrics, sg_metrics_backend(c->env.metrics, c->be->name),
		                    res->elapsed_us);
	/* the backend's health, for its breaker: a transport failure or a 5xx counts against */
	if (res->fail != SG_FETCH_BUDGET && res->fail != SG_FETCH_TOO_LARGE) {
		int ok = res->fail == SG_FETCH_OK && res->status < 500;

		sg_breaker_report(&((struct sg_backend *)c->be)->breaker, ok, c->probe,
		                  sg_mono_ms());
		c->probe = 0;
	}
	if (!c->ended) {
		c->cur_write = p->write;
		p->cb(c, res, p->arg);
		/* A module that neither answered nor asked for more would hang the client. */
		if (!c->ended && c->npending == 0 && !c->later_pending)
			sg_call_fail(c, 500, "api_error", "mapping '%s' stalled",
			             c->be->mapping->name);
	}
	free(p);
}

/* A streamed piece for the module; the call may be freed inside (see sg_call_emit), so
 * nothing here touches it afterwards. */
static void on_fetch_chunk(long status, const char *data, size_t len, void *arg)
{
	struct pending *p = arg;

	struct sg_call *c = p->call;

	if (c->ended)
		return;
	if (!data && status >= 200 && status < 300 && c->opened) {
		void (*opened)(struct sg_call *, void *) = c->opened;

		c->opened = NULL;
		opened(c, c->sink_arg);
		if (c->ended)
			return;
	}
	p->on_chunk(c, status, data, len, p->arg);
}

/* path_query as the debug log shows it: a client's ids, filters and names end up in upstream
 * paths and queries, and a client may put anything there (a secret too), so only segments made
 * of the API's own words (lower-case letters and '_', at most 16, or a version such as "v1") are
 * shown; any other segment is "{}" and the query is "?...". */
static const char *redacted_path(const char *pq, char *out, size_t len)
{
	size_t o = 0;
	const char *p = pq;

	while (*p && *p != '?' && o + 24 < len) {
		size_t n = strcspn(p + 1, "/?") + 1, k = 1;

		while (k < n && ((p[k] >= 'a' && p[k] <= 'z') || p[k] == '_' ||
		                 (n <= 4 && p[k] >= '0' && p[k] <= '9'))) /* "v1" */
			k++;
		if (p[0] == '/' && (k == n) && n <= 17) {
			memcpy(out + o, p, n);
			o += n;
		} else {
			memcpy(out + o, "/{}", 3);
			o += 3;
		}
		p += n;
	}
	snprintf(out + o, len - o, "%s", *p ? "?..." : "");
	return out;
}

/* Starts one upstream request for the call (see sg_call_request and sg_call_stream). */
static int start_fetch(struct sg_call *c, const char *method, const char *path_query,
                       const char *const *headers, const char *body, size_t len,
                       sg_call_chunk_cb on_chunk, sg_call_fetch_cb cb, void *arg)
{
	struct sg_fetch_req req = {0};
	struct pending *p;
	char url[8192], tag[300];
	int n;

	if (c->ended)
		return -1;
	if (c->nstarted >= SG_CALL_MAX_FETCHES) {
		sg_call_fail(c, 502, "api_error",
		             "backend '%s': more than %d upstream requests for one call",
		             c->be->name, SG_CALL_MAX_FETCHES);
		return -1;
	}
	n = snprintf(url, sizeof(url), "%s%s", c->be->url, path_query);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		sg_call_fail(c, 500, "api_error", "backend '%s': upstream URL too long",
		             c->be->name);
		return -1;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		sg_call_fail(c, 500, "api_error", "out of memory");
		return -1;
	}
	req.method = method;
	req.url = url;
	req.headers = headers;
	req.body = body;
	req.body_len = len;
	req.connect_timeout_ms = c->be->connect_timeout_ms;
	req.max_bytes = c->be->max_response_bytes;
	if (on_chunk) {
		req.idle_timeout_ms = c->be->stream_idle_timeout_ms;
		req.on_chunk = on_fetch_chunk;
	} else {
		req.timeout_ms = c->be->timeout_ms;
	}
	p->write = strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
	if (p->write)
		bump_gen(c); /* a read that starts while the write is in flight caches nothing */
	if (p->write && !body) {
		/* an empty body, so the write carries Content-Length: 0 (some servers refuse a
		 * POST without it) */
		req.body = "";
		req.body_len = 0;
	}
	req.retries = p->write ? 0 : c->be->retries;
	if (!p->write && !on_chunk) {
		/* identical GETs in flight on this worker share one transfer, unless a write
		 * to the backend came between them (its generation is part of the tag) */
		snprintf(tag, sizeof(tag), "%s#%lu", c->be->name,
		         atomic_load(&c->be->state->write_gen));
		req.coalesce = tag;
	}
	p->call = c;
	p->cb = cb;
	p->on_chunk = on_chunk;
	p->arg = arg;
	p->fetch = sg_fetch_start(c->env.upstream, &req, on_fetch, p);
	if (!p->fetch) {
		free(p);
		sg_call_fail(c, 500, "api_error", "backend '%s': cannot start upstream request",
		             c->be->name);
		return -1;
	}
	p->next = c->fetches;
	c->fetches = p;
	c->npending++;
	c->nstarted++;
	if (sg_log_enabled(SG_LOG_DEBUG)) {
		char shown[256];

		sg_debug("%s: %s %s %s", c->env.request_id, c->be->name, method,
		         redacted_path(path_query, shown, sizeof(shown)));
	}
	return 0;
}

int sg_call_get(struct sg_call *c, const char *path_query, const char *const *headers,
                sg_call_fetch_cb cb, void *arg)
{
	return start_fetch(c, "GET", path_query, headers, NULL, 0, NULL, cb, arg);
}

static int sse_msg(const struct sg_sse_msg *m, void *arg)
{
	struct sse_reader *r = arg;

	return r->on_msg(r->call, m, r->arg);
}

static void on_sse_chunk(struct sg_call *c, long status, const char *data, size_t len, void *arg)
{
	struct sse_reader *r = arg;
	size_t max = r->max;
	int rc;

	if (!data || status < 200 || status > 299)
		return; /* the head; an error answer is read whole by on_sse_end */
	rc = sg_sse_feed(r->sse, data, len, sse_msg, r);
	/* any other nonzero rc is the module's: the call failed or is gone, r with it */
	if (rc == SG_SSE_TOO_LARGE)
		sg_call_fail(c, 502, "api_error",
		             "backend '%s': a stream message or line is larger than %zu bytes",
		             c->be->name, max);
	else if (rc == SG_SSE_NOMEM)
		sg_call_fail(c, 500, "api_error", "out of memory");
}

/* The stream's end: the backend closed it cleanly (the north stream ends too), answered an
 * error (its north error, e.g. 404 for a session it does not know), or the fetch failed. */
static void on_sse_end(struct sg_call *c, const struct sg_fetch_res *res, void *arg)
{
	json_t *body;

	(void)arg;
	if (res->fail == SG_FETCH_OK && res->status >= 200 && res->status <= 299) {
		sg_call_object(c, NULL);
		return;
	}
	body = sg_call_json(c, res);
	if (body) { /* cannot happen for a failure; never leave the call open */
		json_decref(body);
		sg_call_object(c, NULL);
	}
}

int sg_call_sse(struct sg_call *c, const char *path_query, const char *const *headers,
                sg_call_sse_cb on_msg, void *arg)
{
	struct sse_reader *r = calloc(1, sizeof(*r));
	size_t max = c->be->max_response_bytes;

	if (max == 0 || max > SG_CALL_SSE_MAX)
		max = SG_CALL_SSE_MAX;
	if (r)
		r->sse = sg_sse_new(max);
	if (!r || !r->sse) {
		free(r);
		sg_call_fail(c, 500, "api_error", "out of memory");
		return -1;
	}
	r->call = c;
	r->on_msg = on_msg;
	r->arg = arg;
	r->max = max;
	r->next = c->sses;
	c->sses = r;
	return sg_call_stream(c, path_query, headers, on_sse_chunk, on_sse_end, r);
}

int sg_call_request(struct sg_call *c, const char *method, const char *path_query,
                    const char *const *headers, const char *body, size_t len, sg_call_fetch_cb cb,
                    void *arg)
{
	return start_fetch(c, method, path_query, headers, body, len, NULL, cb, arg);
}

int sg_call_stream(struct sg_call *c, const char *path_query, const char *const *headers,
                   sg_call_chunk_cb on_chunk, sg_call_fetch_cb cb, void *arg)
{
	return start_fetch(c, "GET", path_query, headers, NULL, 0, on_chunk, cb, arg);
}

int sg_call_send_json(struct sg_call *c, const char *method, const char *path_query,
                      const char *const *headers, const json_t *body, sg_call_fetch_cb cb,
                      void *arg)
{
	size_t n = body ? json_dumpb(body, NULL, 0, JSON_COMPACT) : 0;
	char *text = n ? malloc(n) : NULL;
	int rc;

	if (body && (!text || json_dumpb(body, text, n, JSON_COMPACT) != n)) {
		free(text);
		sg_call_fail(c, 500, "api_error", "out of memory");
		return -1;
	}
	rc = sg_call_request(c, method, path_query, headers, text, n, cb, arg);
	free(text);
	return rc;
}

int sg_call_session_path(struct sg_call *c, const char *suffix, char *out, size_t len)
{
	char esc[600];
	int n;

	if (!c->has_pubid || sg_url_escape(c->pubid.native, esc, sizeof(esc)) < 0 ||
	    (n = snprintf(out, len, "/v1/sessions/%s%s", esc, suffix)) < 0 || (size_t)n >= len) {
		sg_call_fail(c, 404, "not_found_error", "session not found");
		return -1;
	}
	return 0;
}

int sg_call_agent_path(struct sg_call *c, char *out, size_t len)
{
	char esc[600], v[32];
	int n;

	snprintf(v, sizeof(v), "%lld", (long long)c->agent_version);
	if (!c->has_pubid || sg_url_escape(c->pubid.native, esc, sizeof(esc)) < 0 ||
	    (n = snprintf(out, len, "/v1/agents/%s", esc)) < 0 || (size_t)n >= len ||
	    (c->agent_version >= 0 && sg_url_add_param(out, len, "version", v))) {
		sg_call_fail(c, 404, "not_found_error", "agent not found");
		return -1;
	}
	return 0;
}

void sg_call_pause(struct sg_call *c, int pause)
{
	for (struct pending *p = c->fetches; p; p = p->next)
		if (p->on_chunk)
			sg_fetch_pause(p->fetch, pause);
}

/* Reads a backend answer: the parsed body of a 2xx answer (new), or NULL with e set. */
static json_t *read_answer(struct sg_call *c, const struct sg_fetch_res *res, struct sg_error *e,
                           int parse)
{
	const char *name = c->be->name;
	json_error_t jerr;
	json_t *body;

	switch (res->fail) {
	case SG_FETCH_OK:
		break;
	case SG_FETCH_CONNECT:
		sg_error_set(e, 502, "api_error", "backend '%s' is unreachable: %s", name,
		             res->errmsg);
		e->should_retry = 1;
		return NULL;
	case SG_FETCH_TIMEOUT:
		sg_error_set(e, 504, "timeout_error", "backend '%s' did not answer within %ld ms",
		             name, c->be->timeout_ms);
		return NULL;
	case SG_FETCH_TOO_LARGE:
		sg_error_set(e, 502, "api_error", "backend '%s' answered more than %zu bytes", name,
		             c->be->max_response_bytes);
		return NULL;
	case SG_FETCH_BUDGET:
		sg_error_set(e, 503, "overloaded_error",
		             "the gateway is holding too many backend answers at once "
		             "(limits.max_upstream_bytes); try again");
		e->should_retry = 1;
		return NULL;
	default:
		sg_error_set(e, 502, "api_error", "backend '%s' failed: %s", name, res->errmsg);
		e->should_retry = 1; /* a dropped connection may well not drop twice */
		return NULL;
	}
	if (res->status < 200 || res->status > 299) {
		/* the backend's error answer, read in its dialect, through the one status table */
		sg_berror(c->be->mapping, res->status, res->body, res->len, name, e);
		if (res->retry_after_s > 0)
			e->retry_after_s = res->retry_after_s; /* the backend's, passed on */
		return NULL;
	}
	if (!parse)
		return json_true(); /* a 2xx: the caller reads the text itself */
	body = json_loadb(res->body, res->len, 0, &jerr);
	if (!body) {
		sg_error_set(e, 502, "api_error",
		             "backend '%s' answered something that is not JSON", name);
		e->should_retry = 0;
	}
	return body;
}

/* Whether a failed write may have taken effect: it left for the backend and no answer
 * says it was refused. A connection that never opened, a 4xx, a 429, a 503 or a 529
 * (refused before any work) leave nothing behind; a lost or garbled answer, a timeout, a
 * 500/502/504 (possibly a proxy's, after the backend acted) may. */
static int outcome_unknown(const struct sg_fetch_res *res)
{
	if (res->fail == SG_FETCH_CONNECT)
		return 0; /* no connection, nothing sent */
	if (res->fail != SG_FETCH_OK)
		return res->sent;
	if (res->status >= 200 && res->status <= 299)
		return 1; /* applied, but its answer is unusable */
	return res->status >= 500 && res->status != 503 && res->status != 529;
}

/* The answer's body parsed (new), or with parse 0 json_true() for any 2xx; NULL after
 * failing the call. */
static json_t *answer(struct sg_call *c, const struct sg_fetch_res *res, int parse)
{
	struct sg_error e;
	json_t *body = read_answer(c, res, &e, parse);
	size_t n;

	if (body)
		return body;
	if (c->cur_write && outcome_unknown(res)) {
		/* The SDK would send the write again on a 5xx; say that it must not. */
		n = strlen(e.message);
		snprintf(
		    e.message + n, sizeof(e.message) - n,
		    "; the outcome of this write is unknown: it may have taken effect, so read "
		    "the session before trying again");
		e.should_retry = 0;
	}
	sg_call_fail_with(c, &e);
	return NULL;
}

json_t *sg_call_json(struct sg_call *c, const struct sg_fetch_res *res)
{
	return answer(c, res, 1);
}

int sg_call_answer_ok(struct sg_call *c, const struct sg_fetch_res *res)
{
	return answer(c, res, 0) ? 0 : -1;
}

int sg_url_escape(const char *s, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		            (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' ||
		            ch == '~';

		if (n + (plain ? 1 : 3) >= outlen)
			return -1;
		if (plain) {
			out[n++] = (char)ch;
		} else {
			out[n++] = '%';
			out[n++] = hex[ch >> 4];
			out[n++] = hex[ch & 15];
		}
	}
	if (n >= outlen)
		return -1;
	out[n] = '\0';
	return (int)n;
}

int sg_url_add_param(char *buf, size_t len, const char *key, const char *value)
{
	size_t used = strlen(buf);
	char esc[4096];
	int n;

	if (sg_url_escape(value, esc, sizeof(esc)) < 0)
		return -1;
	n = snprintf(buf + used, len - used, "%c%s=%s", strchr(buf, '?') ? '&' : '?', key, esc);
	if (n < 0 || (size_t)n >= len - used) {
		buf[used] = '\0';
		return -1;
	}
	return 0;
}

void sg_time_range_strings(const struct sg_time_range *r, char out[4][40])
{
	const int set[4] = {r->has_gt, r->has_gte, r->has_lt, r->has_lte};
	const int64_t v[4] = {r->gt, r->gte, r->lt, r->lte};

	for (int i = 0; i < 4; i++) {
		out[i][0] = '\0';
		if (set[i] && sg_time_format(v[i], out[i], 40) < 0)
			out[i][0] = '\0';
	}
}

int sg_url_add_time_range(char *buf, size_t len, const struct sg_time_range *r)
{
	static const char *const keys[4] = {"created_at%5Bgt%5D", "created_at%5Bgte%5D",
	                                    "created_at%5Blt%5D", "created_at%5Blte%5D"};
	char t[4][40];
	int bad = 0;

	sg_time_range_strings(r, t);
	for (int i = 0; i < 4; i++)
		if (t[i][0])
			bad |= sg_url_add_param(buf, len, keys[i], t[i]);
	return bad ? -1 : 0;
}

struct sg_call *sg_call_new(enum sg_call_kind kind, const struct sg_call_env *env,
                            const struct sg_backend *be, const json_t *identity,
                            sg_call_done_cb done, void *done_arg)
{
	struct sg_call *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->kind = kind;
	c->agent_version = -1;
	c->gen = atomic_load(&be->state->write_gen);
	c->env = *env;
	c->be = be;
	c->identity = identity;
	c->done = done;
	c->done_arg = done_arg;
	c->done_ev = event_new(env->base, -1, 0, on_done, c);
	if (!c->done_ev) {
		free(c);
		return NULL;
	}
	return c;
}

void sg_call_set_session_query(struct sg_call *c, const struct sg_session_query *q)
{
	c->sq = q;
}

void sg_call_set_event_query(struct sg_call *c, const struct sg_event_query *q)
{
	c->eq = q;
}

void sg_call_set_pubid(struct sg_call *c, const struct sg_pubid *id)
{
	c->pubid = *id;
	c->has_pubid = 1;
}

void sg_call_set_body(struct sg_call *c, const json_t *body)
{
	c->body = body;
}

void sg_call_set_agent_version(struct sg_call *c, int64_t version)
{
	c->agent_version = version;
}

int64_t sg_call_stream_since(const struct sg_call *c)
{
	return c->since_us;
}

const char *sg_call_stream_resume(const struct sg_call *c)
{
	return c->resume;
}

void sg_call_stream_mark(struct sg_call *c, const char *token)
{
	char *t = token ? strdup(token) : NULL;

	if (token && !t)
		return; /* out of memory: the older mark stays, a resume then repeats (deduped) */
	free(c->mark);
	c->mark = t;
}

const char *sg_call_stream_marked(const struct sg_call *c)
{
	return c->mark;
}

int sg_call_set_stream_input(struct sg_call *c, int64_t since_us, const char *resume,
                             void (*opened)(struct sg_call *call, void *arg))
{
	char *r = resume ? strdup(resume) : NULL;

	if (resume && !r)
		return -1;
	free(c->resume);
	c->resume = r;
	c->since_us = since_us;
	c->opened = opened;
	return 0;
}

void sg_call_set_sink(struct sg_call *c, sg_call_sink_cb sink, void *arg)
{
	c->sink = sink;
	c->sink_arg = arg;
}

/* The module's callback for a kind of call (NULL when the module has none). */
static void (*module_fn(const struct sg_mapping *m, enum sg_call_kind k))(struct sg_call *)
{
	switch (k) {
	case SG_CALL_LIST_SESSIONS:
		return m->list_sessions;
	case SG_CALL_GET_SESSION:
		return m->get_session;
	case SG_CALL_LIST_EVENTS:
		return m->list_events;
	case SG_CALL_SESSIONS_PAGE:
		return m->list_sessions_page;
	case SG_CALL_EVENTS_PAGE:
		return m->list_events_page;
	case SG_CALL_CREATE_SESSION:
		return m->create_session;
	case SG_CALL_UPDATE_SESSION:
		return m->update_session;
	case SG_CALL_ARCHIVE_SESSION:
		return m->archive_session;
	case SG_CALL_DELETE_SESSION:
		return m->delete_session;
	case SG_CALL_SEND_EVENTS:
		return m->send_events;
	case SG_CALL_LIST_AGENTS:
		return m->list_agents;
	case SG_CALL_GET_AGENT:
		return m->get_agent;
	case SG_CALL_STREAM_EVENTS:
		return m->stream_events;
	}
	return NULL;
}

int sg_mapping_can(const struct sg_mapping *m, enum sg_call_kind k)
{
	return module_fn(m, k) != NULL;
}

/* The backend's overload guards (overload.h): its concurrency bound (not for streams, which
 * stay open for hours) and its breaker. -1 after failing the call with a 503 the client may
 * retry. */
static int admit(struct sg_call *c)
{
	struct sg_backend *be = (struct sg_backend *)c->be;
	struct sg_error e;
	long retry_ms = 0;
	int adm;

	if (be->max_concurrent > 0 && c->kind != SG_CALL_STREAM_EVENTS) {
		if (atomic_fetch_add(&be->state->inflight, 1) >= be->max_concurrent) {
			atomic_fetch_sub(&be->state->inflight, 1);
			sg_metrics_refused(c->env.metrics,
			                   sg_metrics_backend(c->env.metrics, be->name),
			                   SG_REFUSED_CONCURRENCY);
			sg_error_set(&e, 503, "overloaded_error",
			             "backend '%s' already has %ld requests in flight "
			             "(max_concurrent); try again",
			             be->name, be->max_concurrent);
			e.should_retry = 1;
			e.retry_after_s = 1;
			sg_call_fail_with(c, &e);
			return -1;
		}
		c->slot = 1;
	}
	adm = sg_breaker_admit(&be->breaker, sg_mono_ms(), &retry_ms);
	if (adm == 0) {
		sg_metrics_refused(c->env.metrics, sg_metrics_backend(c->env.metrics, be->name),
		                   SG_REFUSED_BREAKER);
		sg_error_set(&e, 503, "overloaded_error",
		             "backend '%s' is failing: the gateway stops asking it for a while "
		             "(breaker open); try again in %ld ms",
		             be->name, retry_ms);
		e.should_retry = 1;
		e.retry_after_s = (retry_ms + 999) / 1000;
		sg_call_fail_with(c, &e);
		return -1;
	}
	c->probe = adm == 2;
	return 0;
}

void sg_call_start(struct sg_call *c)
{
	const struct sg_mapping *m = c->be->mapping;
	void (*fn)(struct sg_call *) = module_fn(m, c->kind);

	if (!fn) {
		sg_call_fail(c, 404, "not_found_error",
		             "backend '%s' (%s) does not offer this operation", c->be->name,
		             m->name);
		return;
	}
	if (admit(c))
		return;
	fn(c);
	if (!c->ended && c->npending == 0 && !c->later_pending)
		sg_call_fail(c, 500, "api_error", "mapping '%s' neither answered nor fetched",
		             m->name);
}

json_t *sg_call_result(const struct sg_call *c)
{
	return c->items;
}

json_t *sg_call_result_object(const struct sg_call *c)
{
	return c->object;
}

const char *sg_call_result_next(const struct sg_call *c)
{
	return c->page_next;
}

json_t *sg_call_result_carry(const struct sg_call *c)
{
	return c->carry_out;
}

int sg_call_set_page_input(struct sg_call *c, const char *cursor, const json_t *carry)
{
	free(c->page_in);
	c->page_in = cursor ? strdup(cursor) : NULL;
	c->carry_in = carry;
	return cursor && !c->page_in ? -1 : 0;
}

const struct sg_error *sg_call_error(const struct sg_call *c)
{
	return c->err.status ? &c->err : NULL;
}

void sg_call_free(struct sg_call *c)
{
	if (!c)
		return;
	release_guards(c);
	if (c->emitting) {
		/* inside sg_call_emit: it frees the call as it returns */
		cancel_fetches(c);
		c->ended = 1;
		c->free_after = 1;
		return;
	}
	cancel_fetches(c);
	if (c->state && c->state_free)
		c->state_free(c->state);
	event_free(c->done_ev);
	if (c->later_ev)
		event_free(c->later_ev);
	json_decref(c->items);
	json_decref(c->added);
	sg_held_release(c->held);
	json_decref(c->object);
	json_decref(c->carry_out);
	free(c->page_in);
	free(c->resume);
	free(c->mark);
	free(c->page_next);
	while (c->sses) {
		struct sse_reader *r = c->sses;

		c->sses = r->next;
		sg_sse_free(r->sse);
		free(r);
	}
	free(c);
}
