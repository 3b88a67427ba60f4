/* call.c - see call.h. */
#include "call.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "berror.h"
#include "cache.h"
#include "config.h"
#include "log.h"
#include "timeutil.h"
#include "mapping.h"

#define SG_CALL_MAX_FETCHES 4096 /* fan-out bound per call */

struct pending {
	struct sg_call *call;
	struct sg_fetch *fetch;
	sg_call_fetch_cb cb;
	void *arg;
	struct pending *next;
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
	sg_call_done_cb done;
	void *done_arg;
	struct event *done_ev; /* defers "done" to the loop */
	struct pending *fetches;
	unsigned npending, nstarted;
	int ended;
	json_t *items;
	char *page_in;      /* native paging: backend cursor to start from */
	const json_t *carry_in;
	char *page_next;    /* … and where the backend says the next page starts */
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

static int64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

json_t *sg_call_cache_get(const struct sg_call *c, const char *key)
{
	return sg_cache_get(c->env.cache, key, mono_ms());
}

void sg_call_cache_put(const struct sg_call *c, const char *key, json_t *value, int64_t ttl_ms)
{
	sg_cache_put(c->env.cache, key, value, mono_ms(), ttl_ms);
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

static void cancel_fetches(struct sg_call *c)
{
	while (c->fetches) {
		struct pending *p = c->fetches;

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
static void end_call(struct sg_call *c)
{
	c->ended = 1;
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
	if (!c->ended) {
		p->cb(c, res, p->arg);
		/* A module that neither answered nor asked for more would hang the client. */
		if (!c->ended && c->npending == 0)
			sg_call_fail(c, 500, "api_error", "mapping '%s' stalled",
				     c->be->mapping->name);
	}
	free(p);
}

int sg_call_get(struct sg_call *c, const char *path_query, const char *const *headers,
		sg_call_fetch_cb cb, void *arg)
{
	struct sg_fetch_req req = {0};
	struct pending *p;
	char url[8192];
	int n;

	if (c->ended)
		return -1;
	if (c->nstarted >= SG_CALL_MAX_FETCHES) {
		sg_call_fail(c, 502, "api_error",
			     "backend '%s': more than %d upstream requests for one call", c->be->name,
			     SG_CALL_MAX_FETCHES);
		return -1;
	}
	n = snprintf(url, sizeof(url), "%s%s", c->be->url, path_query);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		sg_call_fail(c, 500, "api_error", "backend '%s': upstream URL too long", c->be->name);
		return -1;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		sg_call_fail(c, 500, "api_error", "out of memory");
		return -1;
	}
	req.url = url;
	req.headers = headers;
	req.timeout_ms = c->be->timeout_ms;
	req.connect_timeout_ms = c->be->connect_timeout_ms;
	req.max_bytes = c->be->max_response_bytes;
	req.retries = c->be->retries;
	p->call = c;
	p->cb = cb;
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
	sg_debug("%s: %s GET %s", c->env.request_id, c->be->name, path_query);
	return 0;
}

json_t *sg_call_json(struct sg_call *c, const struct sg_fetch_res *res)
{
	const char *name = c->be->name;
	json_error_t jerr;
	json_t *body;

	struct sg_error e;

	switch (res->fail) {
	case SG_FETCH_OK:
		break;
	case SG_FETCH_CONNECT:
		sg_error_set(&e, 502, "api_error", "backend '%s' is unreachable: %s", name,
			     res->errmsg);
		e.should_retry = 1;
		sg_call_fail_with(c, &e);
		return NULL;
	case SG_FETCH_TIMEOUT:
		sg_call_fail(c, 504, "timeout_error", "backend '%s' did not answer within %ld ms",
			     name, c->be->timeout_ms);
		return NULL;
	case SG_FETCH_TOO_LARGE:
		sg_call_fail(c, 502, "api_error", "backend '%s' answered more than %zu bytes", name,
			     c->be->max_response_bytes);
		return NULL;
	default:
		sg_error_set(&e, 502, "api_error", "backend '%s' failed: %s", name, res->errmsg);
		e.should_retry = 1; /* a dropped connection may well not drop twice */
		sg_call_fail_with(c, &e);
		return NULL;
	}
	if (res->status < 200 || res->status > 299) {
		/* the backend's error answer, read in its dialect, through the one status table */
		sg_berror(c->be->mapping, res->status, res->body, res->len, name, &e);
		sg_call_fail_with(c, &e);
		return NULL;
	}
	body = json_loadb(res->body, res->len, 0, &jerr);
	if (!body) {
		sg_error_set(&e, 502, "api_error", "backend '%s' answered something that is not JSON",
			     name);
		e.should_retry = 0;
		sg_call_fail_with(c, &e);
		return NULL;
	}
	return body;
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

void sg_call_start(struct sg_call *c)
{
	const struct sg_mapping *m = c->be->mapping;
	void (*fn)(struct sg_call *) = NULL;

	switch (c->kind) {
	case SG_CALL_LIST_SESSIONS:
		fn = m->list_sessions;
		break;
	case SG_CALL_GET_SESSION:
		fn = m->get_session;
		break;
	case SG_CALL_LIST_EVENTS:
		fn = m->list_events;
		break;
	case SG_CALL_SESSIONS_PAGE:
		fn = m->list_sessions_page;
		break;
	case SG_CALL_EVENTS_PAGE:
		fn = m->list_events_page;
		break;
	}
	if (!fn) {
		sg_call_fail(c, 404, "not_found_error",
			     "backend '%s' (%s) does not offer this operation", c->be->name, m->name);
		return;
	}
	fn(c);
	if (!c->ended && c->npending == 0)
		sg_call_fail(c, 500, "api_error", "mapping '%s' neither answered nor fetched",
			     m->name);
}

json_t *sg_call_result(const struct sg_call *c)
{
	return c->items;
}

const char *sg_call_result_next(const struct sg_call *c)
{
	return c->page_next;
}

json_t *sg_call_result_carry(const struct sg_call *c)
{
	return c->carry_out;
}

void sg_call_set_page_input(struct sg_call *c, const char *cursor, const json_t *carry)
{
	free(c->page_in);
	c->page_in = cursor ? strdup(cursor) : NULL;
	c->carry_in = carry;
}

const struct sg_error *sg_call_error(const struct sg_call *c)
{
	return c->err.status ? &c->err : NULL;
}

void sg_call_free(struct sg_call *c)
{
	if (!c)
		return;
	cancel_fetches(c);
	if (c->state && c->state_free)
		c->state_free(c->state);
	event_free(c->done_ev);
	json_decref(c->items);
	json_decref(c->carry_out);
	free(c->page_in);
	free(c->page_next);
	free(c);
}
