/* claude.c - Claude-native upstreams: backends that already speak the north dialect (a
 * migration target, or Anthropic itself). The gateway forwards reads, writes and agents
 * with the backend's own key, version and beta header, and normalises what comes back
 * (claude_translate.c) so the same north guarantees hold: public ids carry the route, every
 * required key is present, keys that do not apply are absent.
 *
 * The upstream filters and orders natively, so sessions and events are served one upstream
 * page at a time and the core walks them (walk.h) with its own sealed cursors. */
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "config.h"
#include "mapping.h"
#include "jsonx.h"
#include "north.h"
#include "sse.h"
#include "claude_translate.h"

#define CL_KEY_MAX 1024
#define CL_SESSIONS_PAGE 100 /* fixed upstream page sizes keep cursor positions valid */
#define CL_EVENTS_PAGE 1000
#define CL_AGENTS_PAGE 100
#define CL_AGENT_PAGES 100 /* pages of agents read for one list: 10 000 agents, else 502 */

struct cl_priv {
	char key_hdr[CL_KEY_MAX + 32];
	char version_hdr[128];
	char beta_hdr[512];
	const char *headers[4];  /* reads */
	const char *wheaders[5]; /* writes: the same and the body's type */
};

static const struct cl_priv *priv_of(const struct sg_call *call)
{
	return sg_call_backend(call)->priv;
}

/* Asks for one upstream page: path (len bytes of room) with the filters added, `bad` set when
 * one did not fit; the backend's cursor goes last, as the SDK sends it. A query too long for
 * the backend is a 400. */
static void get_page(struct sg_call *call, char *path, size_t len, int bad, sg_call_fetch_cb cb)
{
	const char *cursor = sg_call_page_cursor(call);

	if (cursor)
		bad |= sg_url_add_param(path, len, "page", cursor);
	if (bad) {
		sg_call_fail(call, 400, "invalid_request_error", "query too long for the backend");
		return;
	}
	sg_call_get(call, path, priv_of(call)->headers, cb, NULL);
}

static void on_sessions_page(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct sg_cl_ctx ctx = {sg_call_backend(call)->name};
	struct sg_error err = {0};
	json_t *body = sg_call_json(call, res), *out, *s, *v;
	const json_t *data;
	const char *next;
	size_t i;

	(void)arg;
	if (!body)
		return;
	if (sg_north_page_parts(body, ctx.backend, &data, &next, &err)) {
		json_decref(body);
		sg_call_fail_with(call, &err);
		return;
	}
	out = json_array();
	json_array_foreach(data, i, v) {
		s = sg_cl_session_to_cma(v, &ctx, &err);
		if (!s) {
			json_decref(out);
			json_decref(body);
			sg_call_fail_with(call, &err);
			return;
		}
		json_array_append_new(out, s);
	}
	sg_call_page(call, out, next, NULL);
	json_decref(body);
}

/* Every north filter goes upstream in the SDK's own spelling. */
static void cl_sessions_page(struct sg_call *call)
{
	const struct sg_session_query *q = sg_call_session_query(call);
	char path[8192] = "/v1/sessions", n[32];
	int bad = 0;

	snprintf(n, sizeof(n), "%d", CL_SESSIONS_PAGE);
	bad |= sg_url_add_param(path, sizeof(path), "limit", n);
	bad |= sg_url_add_param(path, sizeof(path), "order", q->order_asc ? "asc" : "desc");
	if (q->agent_id)
		bad |= sg_url_add_param(path, sizeof(path), "agent_id", q->agent_id);
	if (q->agent_version >= 0) {
		snprintf(n, sizeof(n), "%lld", (long long)q->agent_version);
		bad |= sg_url_add_param(path, sizeof(path), "agent_version", n);
	}
	if (q->deployment_id)
		bad |= sg_url_add_param(path, sizeof(path), "deployment_id", q->deployment_id);
	if (q->memory_store_id)
		bad |= sg_url_add_param(path, sizeof(path), "memory_store_id", q->memory_store_id);
	if (q->include_archived)
		bad |= sg_url_add_param(path, sizeof(path), "include_archived", "true");
	for (unsigned b = 1; b <= SG_STATUS_TERMINATED; b <<= 1)
		if (q->statuses & b)
			bad |= sg_url_add_param(path, sizeof(path), "statuses%5B%5D",
			                        sg_status_to_string(b));
	bad |= sg_url_add_time_range(path, sizeof(path), &q->created);
	get_page(call, path, sizeof(path), bad, on_sessions_page);
}

/* Fails a call whose answer does not translate. After a write the upstream has acted, so the
 * client is told not to send it again. */
static void fail_answer(struct sg_call *call, struct sg_error *err)
{
	enum sg_call_kind k = sg_call_kind(call);
	size_t n;

	if (k != SG_CALL_GET_SESSION && k != SG_CALL_GET_AGENT && k != SG_CALL_LIST_AGENTS) {
		n = strlen(err->message);
		snprintf(err->message + n, sizeof(err->message) - n,
		         "; the write was applied: read the session before trying again");
		err->should_retry = 0;
	}
	sg_call_fail_with(call, err);
}

static void on_session(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct sg_cl_ctx ctx = {sg_call_backend(call)->name};
	struct sg_error err = {0};
	json_t *body = sg_call_json(call, res), *s;

	(void)arg;
	if (!body)
		return;
	s = sg_cl_session_to_cma(body, &ctx, &err);
	json_decref(body);
	if (!s) {
		fail_answer(call, &err);
		return;
	}
	sg_call_object(call, s);
}

static void cl_get_session(struct sg_call *call)
{
	char esc[600], path[700];

	if (sg_url_escape(sg_call_pubid(call)->native, esc, sizeof(esc)) < 0) {
		sg_call_fail(call, 404, "not_found_error", "session not found");
		return;
	}
	snprintf(path, sizeof(path), "/v1/sessions/%s", esc);
	sg_call_get(call, path, priv_of(call)->headers, on_session, NULL);
}

static void on_events_page(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct sg_cl_ctx ctx = {sg_call_backend(call)->name};
	struct sg_error err = {0};
	json_t *body = sg_call_json(call, res), *events;
	const json_t *data;
	const char *next;

	(void)arg;
	if (!body)
		return;
	if (sg_north_page_parts(body, ctx.backend, &data, &next, &err) ||
	    !(events = sg_cl_events_to_cma(data, &ctx, &err))) {
		json_decref(body);
		sg_call_fail_with(call, &err);
		return;
	}
	sg_call_page(call, events, next, NULL);
	json_decref(body);
}

static void cl_events_page(struct sg_call *call)
{
	const struct sg_event_query *q = sg_call_event_query(call);
	char esc[600], path[16384], n[16];
	int bad = 0;

	if (sg_url_escape(sg_call_pubid(call)->native, esc, sizeof(esc)) < 0) {
		sg_call_fail(call, 404, "not_found_error", "session not found");
		return;
	}
	snprintf(path, sizeof(path), "/v1/sessions/%s/events", esc);
	snprintf(n, sizeof(n), "%d", CL_EVENTS_PAGE);
	bad |= sg_url_add_param(path, sizeof(path), "limit", n);
	bad |= sg_url_add_param(path, sizeof(path), "order", q->order_desc ? "desc" : "asc");
	for (size_t i = 0; i < q->ntypes; i++)
		bad |= sg_url_add_param(path, sizeof(path), "types%5B%5D", q->types[i]);
	bad |= sg_url_add_time_range(path, sizeof(path), &q->created);
	get_page(call, path, sizeof(path), bad, on_events_page);
}

/* ---- writes: the north body as is, to the upstream's own path ----
 *
 * The upstream speaks the north dialect, so a write is passed through: the body as the core
 * validated it, the path's public session id opened to the upstream's. Agent ids need no
 * translation: they carry no route, and every answer (sessions, agents) shows the upstream's
 * own. The answer is normalised like a read's. */

static void cl_create_session(struct sg_call *call)
{
	sg_call_send_json(call, "POST", "/v1/sessions", priv_of(call)->wheaders, sg_call_body(call),
	                  on_session, NULL);
}

static void cl_update_session(struct sg_call *call)
{
	char path[700];

	if (sg_call_session_path(call, "", path, sizeof(path)) == 0)
		sg_call_send_json(call, "POST", path, priv_of(call)->wheaders, sg_call_body(call),
		                  on_session, NULL);
}

static void cl_archive_session(struct sg_call *call)
{
	char path[700];

	if (sg_call_session_path(call, "/archive", path, sizeof(path)) == 0)
		sg_call_send_json(call, "POST", path, priv_of(call)->wheaders, NULL, on_session,
		                  NULL);
}

static void on_deleted(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	(void)arg;
	/* {id, type: "session_deleted"} names the upstream id; the core answers with the public
	 * one, so the body is not needed */
	if (res->fail == SG_FETCH_OK && res->status >= 200 && res->status <= 299) {
		sg_call_object(call, NULL);
		return;
	}
	json_decref(sg_call_json(call, res)); /* fails the call with the upstream's error */
}

static void cl_delete_session(struct sg_call *call)
{
	char path[700];

	if (sg_call_session_path(call, "", path, sizeof(path)) == 0)
		sg_call_send_json(call, "DELETE", path, priv_of(call)->wheaders, NULL, on_deleted,
		                  NULL);
}

static void on_sent(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct sg_cl_ctx ctx = {sg_call_backend(call)->name};
	struct sg_error err = {0};
	json_t *body = sg_call_json(call, res), *out;

	(void)arg;
	if (!body)
		return;
	out = sg_cl_sent_to_cma(body, &ctx, &err);
	json_decref(body);
	if (!out) {
		fail_answer(call, &err);
		return;
	}
	sg_call_object(call, out);
}

static void cl_send_events(struct sg_call *call)
{
	char path[700];

	if (sg_call_session_path(call, "/events", path, sizeof(path)) == 0)
		sg_call_send_json(call, "POST", path, priv_of(call)->wheaders, sg_call_body(call),
		                  on_sent, NULL);
}

/* ---- the live stream ----
 *
 * The upstream's GET /v1/sessions/{id}/events/stream speaks the north dialect: `event: <type>`
 * and `data: <json>` per event, `event: ping` or comments as keep-alives, `event: error` for a
 * failure after the 200. It has no replay and no resume, so every event it sends is live and
 * the core's resume token is not used. Each event is normalised as a listed one is. */

/* What the SSE callback tells the chunk callback. */
#define CL_GONE 1   /* the consumer left: the call (and this state) is freed */
#define CL_FAILED 2 /* the call failed: it stays valid until the loop ends it */

static int is_event(const struct sg_sse_msg *m, const char *name)
{
	return m->event && m->event_len == strlen(name) && !memcmp(m->event, name, m->event_len);
}

/* `event: error`: the upstream gave up after its 200. The call fails with a 502 carrying the
 * upstream's own type and message ({"type":"error","error":{type, message}}), or its raw data
 * when that is not the envelope. */
static void stream_error(struct sg_call *call, const struct sg_sse_msg *m)
{
	json_t *body = m->data ? json_loadb(m->data, m->data_len, 0, NULL) : NULL;
	const json_t *e = json_object_get(body, "error");
	const char *type = sg_jstr(e, "type"), *msg = sg_jstr(e, "message");
	char t[65], text[301];

	if (msg)
		sg_clip(msg, strlen(msg), sizeof(text) - 1, 1, text);
	else
		sg_clip(m->data, m->data ? m->data_len : 0, sizeof(text) - 1, 0, text);
	sg_clip(type, type ? strlen(type) : 0, sizeof(t) - 1, 1, t);
	sg_call_fail(call, 502, "api_error", "backend '%s' reported an error on the stream: %s%s%s",
	             sg_call_backend(call)->name, t, *t ? ": " : "", *text ? text : "(no message)");
	json_decref(body);
}

/* One SSE message. Returns 0, CL_GONE or CL_FAILED. */
static int on_stream_msg(struct sg_call *call, const struct sg_sse_msg *m, void *arg)
{
	struct sg_cl_ctx ctx = {sg_call_backend(call)->name};
	struct sg_error err = {0};
	json_t *body, *one, *events;
	const json_t *ev;
	size_t i;
	int rc = 0;

	(void)arg;
	if (m->comment || is_event(m, "ping"))
		return 0;
	if (is_event(m, "error")) {
		stream_error(call, m);
		return CL_FAILED;
	}
	/* as the SDK does: a message without data is skipped; one without an event name is read
	 * by its data's type (the SDK would drop it; the gateway names every event it sends) */
	if (!m->data || m->data_len == 0)
		return 0;
	body = json_loadb(m->data, m->data_len, 0, NULL);
	if (!json_is_object(body)) {
		json_decref(body);
		sg_call_fail(call, 502, "api_error",
		             "backend '%s': a stream event is not a JSON object", ctx.backend);
		return CL_FAILED;
	}
	one = json_pack("[O]", body);
	events = one ? sg_cl_events_to_cma(one, &ctx, &err) : NULL;
	json_decref(one);
	if (!events) {
		json_decref(body);
		if (!err.status)
			sg_err_internal(&err, "out of memory");
		sg_call_fail_with(call, &err);
		return CL_FAILED;
	}
	json_array_foreach(events, i, ev) {
		if (sg_call_emit(call, ev) < 0) {
			rc = CL_GONE;
			break;
		}
	}
	json_decref(events);
	/* an id the core can hand back: a non-empty string without NUL */
	if (rc == 0 && sg_jis_id(json_object_get(body, "id")))
		sg_call_stream_mark(call, sg_jstr(body, "id"));
	json_decref(body);
	return rc;
}

static void cl_stream_events(struct sg_call *call)
{
	char path[700];

	if (sg_call_session_path(call, "/events/stream", path, sizeof(path)))
		return;
	sg_call_sse(call, path, priv_of(call)->headers, on_stream_msg, NULL);
}

/* ---- agents ---- */

/* list_agents: the agents read so far (north), and how many pages. */
struct agents_walk {
	json_t *agents;
	int pages;
};

static void walk_free(void *p)
{
	struct agents_walk *w = p;

	json_decref(w->agents);
	free(w);
}

static int get_agents_page(struct sg_call *call, const char *cursor);

static void on_agents_page(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct sg_cl_ctx ctx = {sg_call_backend(call)->name};
	struct agents_walk *w = sg_call_state(call);
	struct sg_error err = {0};
	json_t *body = sg_call_json(call, res), *a;
	const json_t *data, *item;
	const char *next;
	size_t i;

	(void)arg;
	if (!body)
		return;
	if (sg_north_page_parts(body, ctx.backend, &data, &next, &err))
		goto fail;
	json_array_foreach(data, i, item) {
		a = sg_cl_agent_to_cma(item, &ctx, &err);
		if (!a)
			goto fail;
		if (json_array_append_new(w->agents, a)) {
			sg_err_internal(&err, "out of memory");
			goto fail;
		}
	}
	if (next && ++w->pages >= CL_AGENT_PAGES) {
		sg_err_bad_gateway(&err, "backend '%s' has more than %d pages of agents",
		                   ctx.backend, CL_AGENT_PAGES);
		goto fail;
	}
	if (next)
		get_agents_page(call, next);
	else
		sg_call_items(call, json_incref(w->agents));
	json_decref(body);
	return;
fail:
	json_decref(body);
	sg_call_fail_with(call, &err);
}

/* Every agent, archived ones included (the core filters on include_archived), a fixed page
 * size at a time. */
static int get_agents_page(struct sg_call *call, const char *cursor)
{
	char path[4096] = "/v1/agents", n[16];

	snprintf(n, sizeof(n), "%d", CL_AGENTS_PAGE);
	if (sg_url_add_param(path, sizeof(path), "limit", n) ||
	    sg_url_add_param(path, sizeof(path), "include_archived", "true") ||
	    (cursor && sg_url_add_param(path, sizeof(path), "page", cursor))) {
		sg_call_fail(call, 502, "api_error", "backend '%s': an agent page cursor too long",
		             sg_call_backend(call)->name);
		return -1;
	}
	return sg_call_get(call, path, priv_of(call)->headers, on_agents_page, NULL);
}

static void cl_list_agents(struct sg_call *call)
{
	struct agents_walk *w = calloc(1, sizeof(*w));

	if (w)
		w->agents = json_array();
	if (!w || !w->agents) {
		if (w)
			walk_free(w);
		sg_call_fail(call, 500, "api_error", "out of memory");
		return;
	}
	sg_call_set_state(call, w, walk_free);
	get_agents_page(call, NULL);
}

static void on_agent(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct sg_cl_ctx ctx = {sg_call_backend(call)->name};
	struct sg_error err = {0};
	json_t *body = sg_call_json(call, res), *a;

	(void)arg;
	if (!body)
		return;
	a = sg_cl_agent_to_cma(body, &ctx, &err);
	json_decref(body);
	if (!a) {
		sg_call_fail_with(call, &err);
		return;
	}
	sg_call_object(call, a);
}

static void cl_get_agent(struct sg_call *call)
{
	char path[700];

	if (sg_call_agent_path(call, path, sizeof(path)))
		return;
	sg_call_get(call, path, priv_of(call)->headers, on_agent, NULL);
}

static int cl_init(struct sg_backend *be, const json_t *options, struct sg_error *err)
{
	static const char *const allowed[] = {"api_key", "api_key_file", "anthropic_version",
	                                      "beta", NULL};
	const char *ver = "2023-06-01", *beta = "managed-agents-2026-04-01";
	char key[CL_KEY_MAX + 1];
	struct cl_priv *pv;

	if (sg_options_check(options, allowed, err))
		return -1;
	if (json_object_get(options, "anthropic_version") &&
	    !(ver = sg_option_secret(options, "anthropic_version", 64, err)))
		return -1;
	if (json_object_get(options, "beta") &&
	    !(beta = sg_option_secret(options, "beta", 400, err)))
		return -1;
	if (sg_option_secret_or_file(options, "api_key", "api_key_file", key, sizeof(key), err))
		return -1;
	pv = calloc(1, sizeof(*pv));
	if (!pv) {
		sg_wipe(key, sizeof(key));
		return sg_err_internal(err, "out of memory");
	}
	snprintf(pv->key_hdr, sizeof(pv->key_hdr), "x-api-key: %s", key);
	sg_wipe(key, sizeof(key)); /* the stack copy must not outlive this call */
	snprintf(pv->version_hdr, sizeof(pv->version_hdr), "anthropic-version: %s", ver);
	snprintf(pv->beta_hdr, sizeof(pv->beta_hdr), "anthropic-beta: %s", beta);
	pv->headers[0] = pv->key_hdr;
	pv->headers[1] = pv->version_hdr;
	pv->headers[2] = pv->beta_hdr;
	for (int i = 0; i < 3; i++)
		pv->wheaders[i] = pv->headers[i];
	pv->wheaders[3] = "Content-Type: application/json";
	be->priv = pv;
	return 0;
}

static void cl_destroy(struct sg_backend *be)
{
	struct cl_priv *pv = be->priv;

	sg_wipe(pv->key_hdr, sizeof(pv->key_hdr)); /* the backend's API key */
	free(pv);
	be->priv = NULL;
}

const struct sg_mapping sg_mapping_claude = {
    .name = "claude",
    .caps = SG_CAP_NATIVE_ORDER,
    .init = cl_init,
    .destroy = cl_destroy,
    .check_identity = sg_identity_none, /* the backend's own key is the identity */
    .read_error = sg_cl_read_error,
    .get_session = cl_get_session,
    .list_sessions_page = cl_sessions_page,
    .list_events_page = cl_events_page,
    .create_session = cl_create_session,
    .update_session = cl_update_session,
    .archive_session = cl_archive_session,
    .delete_session = cl_delete_session,
    .send_events = cl_send_events,
    .list_agents = cl_list_agents,
    .get_agent = cl_get_agent,
    .stream_events = cl_stream_events,
};
