/* sandbase.c - SandBase's hosted sessions API (backends.md §2): which upstream calls a
 * north request needs. Translation is pure and lives in sandbase_translate.c.
 *
 * SandBase pages sessions itself (newest first, opaque cursor) and may answer events all at
 * once or paged, so this module serves one backend page at a time and lets the core walk
 * (walk.h): the filters SandBase ignores are applied by the core without breaking page
 * sizes. The gateway authenticates with the backend's own key from the configuration; the
 * client's key never leaves the gateway. Agent snapshots missing from a session are fetched
 * from /v1/agents/{id}?version=N and cached per worker by (id, version).
 *
 * Writes are SandBase's own: the north body, minus what SandBase refuses (sandbase_translate.c),
 * sent once to the same paths; sessions they answer with are translated as a retrieve's are. */
#include <stdlib.h>
#include <string.h>

#include "after.h"
#include "call.h"
#include "config.h"
#include "idcodec.h"
#include "jsonx.h"
#include "mapping.h"
#include "north.h"
#include "sandbase_translate.h"
#include "sse.h"
#include "timeutil.h"

#define SB_PAGE 100 /* backend page size: fixed, so cursor positions stay valid */
#define SB_KEY_MAX 1024
#define SB_AGENT_FETCH_MAX 100 /* distinct agents fetched for one page */
#define SB_AGENT_PAGES 100     /* pages of agents read for one list: 10 000 agents, else 502 */

struct sb_priv {
	char key_hdr[SB_KEY_MAX + 32];
	const char *headers[2];  /* reads */
	const char *wheaders[3]; /* writes: the key and the body's type */
	long agent_ttl_ms;
};

/* One agent lookup in flight; lives in the call's state, so a cancelled fetch leaks
 * nothing. */
struct agent_req {
	struct sb_state *st;
	char key[512];  /* "id@version", the key in st->agents */
	char ckey[700]; /* the worker cache's key */
};

struct sb_state {
	json_t *body;   /* the sessions page (or the one session) being translated */
	json_t *agents; /* "id@version" → north Agent, or null when not found */
	int single;     /* retrieve, writes: body is one session */
	/* writes: the write took effect, and what, for a later failure's message (after.h) */
	int applied;
	char after[SG_ID_MAX + 96];
	/* list_agents: the agents read so far, and how many pages */
	json_t *list;
	int pages;
	struct agent_req reqs[SB_AGENT_FETCH_MAX];
	size_t nreqs;
};

static void state_free(void *p)
{
	struct sb_state *st = p;

	json_decref(st->body);
	json_decref(st->agents);
	json_decref(st->list);
	free(st);
}

static const struct sb_priv *priv_of(const struct sg_call *call)
{
	return sg_call_backend(call)->priv;
}

static void ctx_of(const struct sg_call *call, struct sg_sb_ctx *ctx)
{
	ctx->backend = sg_call_backend(call)->name;
	ctx->now_us = sg_call_now_us(call);
}

static void agent_key(const char *id, int64_t version, char *out, size_t len)
{
	snprintf(out, len, "%s@%lld", id, (long long)version);
}

/* Translates the page (or the single session) once every agent it needs is known. */
static void finish_sessions(struct sg_call *call, struct sb_state *st)
{
	struct sg_sb_ctx ctx;
	struct sg_error err = {0};
	const json_t *data;
	const char *next = NULL;
	json_t *out, *s;
	size_t i;

	if (sg_call_pending(call) > 0)
		return;
	ctx_of(call, &ctx);
	if (st->single) {
		data = NULL;
	} else if (sg_north_page_parts(st->body, ctx.backend, &data, &next, &err)) {
		sg_call_fail_with(call, &err);
		return;
	}
	out = json_array();
	for (i = 0; i < (st->single ? 1 : json_array_size(data)); i++) {
		const json_t *src = st->single ? st->body : json_array_get(data, i);
		const json_t *agent = NULL;
		const char *aid;
		int64_t ver;
		char k[512];

		if (sg_sb_session_agent_ref(src, &aid, &ver)) {
			agent_key(aid, ver, k, sizeof(k));
			agent = json_object_get(st->agents, k);
			if (json_is_null(agent))
				agent = NULL;
		}
		s = sg_sb_session_to_cma(src, agent, &ctx, &err);
		if (!s) {
			json_decref(out);
			if (st->applied)
				sg_after_fail(call, st->after, &err);
			else
				sg_call_fail_with(call, &err);
			return;
		}
		json_array_append_new(out, s);
	}
	if (st->single) {
		sg_call_object(call, json_incref(json_array_get(out, 0)));
		json_decref(out);
	} else
		sg_call_page(call, out, next, NULL);
}

static void on_agent(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct agent_req *ar = arg;
	struct sb_state *st = ar->st;
	struct sg_sb_ctx ctx;
	struct sg_error err = {0};
	json_t *body, *agent;

	/* A deleted agent must not break the listing: its sessions get the documented minimal
	 * snapshot. Any other failure is the backend's and fails the call. */
	if (res->fail == SG_FETCH_OK && res->status == 404) {
		json_object_set_new(st->agents, ar->key, json_null());
		finish_sessions(call, st);
		return;
	}
	body = st->applied ? sg_after_json(call, st->after, res) : sg_call_json(call, res);
	if (!body)
		return;
	ctx_of(call, &ctx);
	agent = sg_sb_agent_to_cma(body, &ctx, &err);
	json_decref(body);
	if (!agent) {
		if (st->applied)
			sg_after_fail(call, st->after, &err);
		else
			sg_call_fail_with(call, &err);
		return;
	}
	sg_call_cache_put(call, ar->ckey, agent, priv_of(call)->agent_ttl_ms);
	json_object_set_new(st->agents, ar->key, agent);
	finish_sessions(call, st);
}

/* Looks up (cache first) every agent the sessions need, then translates. */
static void resolve_agents(struct sg_call *call, struct sb_state *st)
{
	struct sg_sb_ctx ctx;
	struct sg_error err = {0};
	const json_t *data;
	const char *next;
	size_t i, n;

	ctx_of(call, &ctx);
	if (st->single) {
		n = 1;
		data = NULL;
	} else if (sg_north_page_parts(st->body, ctx.backend, &data, &next, &err)) {
		sg_call_fail_with(call, &err);
		return;
	} else {
		n = json_array_size(data);
	}
	for (i = 0; i < n; i++) {
		const json_t *src = st->single ? st->body : json_array_get(data, i);
		const char *aid;
		int64_t ver;
		char k[512], ck[700], esc[600], path[1400];
		json_t *cached;
		struct agent_req *ar;

		if (!sg_sb_session_agent_ref(src, &aid, &ver))
			continue;
		agent_key(aid, ver, k, sizeof(k));
		if (json_object_get(st->agents, k))
			continue;
		snprintf(ck, sizeof(ck), "sandbase:%s:agent:%s", ctx.backend, k);
		cached = sg_call_cache_get(call, ck);
		if (cached) {
			json_object_set_new(st->agents, k, cached);
			continue;
		}
		if (st->nreqs >= SB_AGENT_FETCH_MAX || sg_url_escape(aid, esc, sizeof(esc)) < 0) {
			sg_call_fail(call, 502, "api_error",
			             "backend '%s': too many or unusable agent references",
			             ctx.backend);
			return;
		}
		snprintf(path, sizeof(path), "/v1/agents/%s", esc);
		if (ver >= 0) {
			char v[32];

			snprintf(v, sizeof(v), "%lld", (long long)ver);
			sg_url_add_param(path, sizeof(path), "version", v);
		}
		ar = &st->reqs[st->nreqs++];
		ar->st = st;
		snprintf(ar->key, sizeof(ar->key), "%s", k);
		snprintf(ar->ckey, sizeof(ar->ckey), "%s", ck);
		/* Placeholder so the same agent is fetched once per page. */
		json_object_set_new(st->agents, k, json_null());
		if (sg_call_get(call, path, priv_of(call)->headers, on_agent, ar))
			return;
	}
	finish_sessions(call, st);
}

static struct sb_state *state_new(struct sg_call *call)
{
	struct sb_state *st = calloc(1, sizeof(*st));

	if (st)
		st->agents = json_object();
	if (!st || !st->agents) {
		if (st)
			state_free(st);
		sg_call_fail(call, 500, "api_error", "out of memory");
		return NULL;
	}
	sg_call_set_state(call, st, state_free);
	return st;
}

static void on_sessions(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct sb_state *st = arg;

	st->body = sg_call_json(call, res);
	if (st->body)
		resolve_agents(call, st);
}

/* Filters SandBase may honour are passed in every spelling it might know; the core checks
 * every item again, so a filter the backend ignores costs pages, never correctness. */
static void sb_sessions_page(struct sg_call *call)
{
	const struct sg_session_query *q = sg_call_session_query(call);
	const char *cursor = sg_call_page_cursor(call);
	struct sb_state *st = state_new(call);
	char path[8192] = "/v1/sessions", t[4][40], n[32];
	int bad = 0;

	if (!st)
		return;
	snprintf(n, sizeof(n), "%d", SB_PAGE);
	bad |= sg_url_add_param(path, sizeof(path), "limit", n);
	if (cursor)
		bad |= sg_url_add_param(path, sizeof(path), "page", cursor);
	if (q->agent_id)
		bad |= sg_url_add_param(path, sizeof(path), "agent_id", q->agent_id);
	/* agent_version is not passed: a session without one shows its agent's current version
	 * (fetched), which SandBase's own filter cannot know; the core filters on what it
	 * shows. */
	if (q->include_archived)
		bad |= sg_url_add_param(path, sizeof(path), "include_archived", "true");
	for (unsigned b = 1; b <= SG_STATUS_TERMINATED; b <<= 1)
		if (q->statuses & b)
			bad |= sg_url_add_param(path, sizeof(path), "statuses",
			                        sg_status_to_string(b));
	bad |= sg_url_add_time_range(path, sizeof(path), &q->created);
	sg_time_range_strings(&q->created, t);
	/* The seed's spelling knows only inclusive bounds: send the wider one. */
	if (t[1][0] || t[0][0])
		bad |=
		    sg_url_add_param(path, sizeof(path), "created_at_gte", t[1][0] ? t[1] : t[0]);
	if (t[3][0] || t[2][0])
		bad |=
		    sg_url_add_param(path, sizeof(path), "created_at_lte", t[3][0] ? t[3] : t[2]);
	if (bad) {
		sg_call_fail(call, 400, "invalid_request_error", "query too long for the backend");
		return;
	}
	sg_call_get(call, path, priv_of(call)->headers, on_sessions, st);
}

static void sb_get_session(struct sg_call *call)
{
	struct sb_state *st = state_new(call);
	char esc[600], path[700];

	if (!st)
		return;
	st->single = 1;
	if (sg_url_escape(sg_call_pubid(call)->native, esc, sizeof(esc)) < 0) {
		sg_call_fail(call, 404, "not_found_error", "session not found");
		return;
	}
	snprintf(path, sizeof(path), "/v1/sessions/%s", esc);
	sg_call_get(call, path, priv_of(call)->headers, on_sessions, st);
}

static void on_events(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct sg_sb_ctx ctx;
	struct sg_error err = {0};
	json_t *body = sg_call_json(call, res), *events, *carry = NULL;
	const json_t *data;
	const char *next;

	(void)arg;
	if (!body)
		return;
	ctx_of(call, &ctx);
	if (sg_north_page_parts(body, ctx.backend, &data, &next, &err)) {
		json_decref(body);
		sg_call_fail_with(call, &err);
		return;
	}
	events = sg_sb_events_to_cma(data, sg_call_page_carry(call), &carry, &ctx, &err);
	if (!events) {
		json_decref(body);
		sg_call_fail_with(call, &err);
		return;
	}
	sg_call_page(call, events, next, carry);
	json_decref(body);
}

/* Events are asked for oldest first and unfiltered: a tool result without tool_use_id is
 * linked to the oldest unmatched tool use, which a type filter upstream would hide. */
static void sb_events_page(struct sg_call *call)
{
	const char *cursor = sg_call_page_cursor(call);
	char esc[600], path[8192], n[16];

	if (sg_url_escape(sg_call_pubid(call)->native, esc, sizeof(esc)) < 0) {
		sg_call_fail(call, 404, "not_found_error", "session not found");
		return;
	}
	snprintf(path, sizeof(path), "/v1/sessions/%s/events", esc);
	snprintf(n, sizeof(n), "%d", SB_PAGE);
	if (sg_url_add_param(path, sizeof(path), "limit", n) ||
	    (cursor && sg_url_add_param(path, sizeof(path), "page", cursor))) {
		sg_call_fail(call, 400, "invalid_request_error", "cursor too long for the backend");
		return;
	}
	sg_call_get(call, path, priv_of(call)->headers, on_events, NULL);
}

/* ---- writes: the north body, minus what SandBase refuses, to SandBase's own paths ---- */

/* A write answered with the session: it took effect, and the answer is the session as a
 * retrieve gives it (its agent snapshot fetched when SandBase names it only by reference). */
static void on_session_written(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	enum sg_call_kind kind = sg_call_kind(call);
	const char *done = kind == SG_CALL_CREATE_SESSION    ? "created"
	                   : kind == SG_CALL_ARCHIVE_SESSION ? "archived"
	                                                     : "updated";
	struct sb_state *st = arg;
	const json_t *id;
	char pub[SG_ID_MAX];

	st->body = sg_call_json(call, res);
	if (!st->body)
		return;
	st->applied = 1;
	id = json_object_get(st->body, "id");
	if (sg_jis_id(id) && sg_id_encode("sesn_", sg_call_backend(call)->name, "",
	                                  json_string_value(id), pub, sizeof(pub)) >= 0)
		snprintf(st->after, sizeof(st->after),
		         "session %s was %s, but its answer could not be read", pub, done);
	else
		snprintf(
		    st->after, sizeof(st->after),
		    "the session was %s, but the backend's answer names no usable session id%s",
		    done,
		    kind == SG_CALL_CREATE_SESSION ? " (list the sessions before retrying)" : "");
	resolve_agents(call, st);
}

/* Sends a write answered with a session. body (stolen) may be NULL. */
static void write_session(struct sg_call *call, const char *path, json_t *body)
{
	struct sb_state *st = state_new(call);

	if (st) {
		st->single = 1;
		sg_call_send_json(call, "POST", path, priv_of(call)->wheaders, body,
		                  on_session_written, st);
	}
	json_decref(body);
}

static void sb_create_session(struct sg_call *call)
{
	struct sg_error err = {0};
	json_t *body = sg_sb_create_request(sg_call_body(call), sg_call_backend(call)->name, &err);

	if (!body) {
		sg_call_fail_with(call, &err);
		return;
	}
	write_session(call, "/v1/sessions", body);
}

static void sb_update_session(struct sg_call *call)
{
	struct sg_error err = {0};
	char path[700];
	json_t *body;

	body = sg_sb_update_request(sg_call_body(call), sg_call_backend(call)->name, &err);
	if (!body) {
		sg_call_fail_with(call, &err);
		return;
	}
	if (sg_call_session_path(call, "", path, sizeof(path))) {
		json_decref(body);
		return;
	}
	write_session(call, path, body);
}

static void sb_archive_session(struct sg_call *call)
{
	char path[700];

	if (sg_call_session_path(call, "/archive", path, sizeof(path)) == 0)
		write_session(call, path, NULL);
}

static void on_deleted(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	(void)arg;
	if (res->fail == SG_FETCH_OK && res->status >= 200 && res->status <= 299) {
		sg_call_object(call, NULL);
		return;
	}
	json_decref(sg_call_json(call, res)); /* fails the call with SandBase's error */
}

/* SandBase deletes only a session that is neither running nor rescheduling (409 otherwise). */
static void sb_delete_session(struct sg_call *call)
{
	char path[700];

	if (sg_call_session_path(call, "", path, sizeof(path)) == 0)
		sg_call_send_json(call, "DELETE", path, priv_of(call)->wheaders, NULL, on_deleted,
		                  NULL);
}

static void on_sent(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct sg_sb_ctx ctx;
	struct sg_error err = {0};
	json_t *body = sg_call_json(call, res), *out;

	(void)arg;
	if (!body)
		return;
	ctx_of(call, &ctx);
	out = sg_sb_sent_to_cma(body, &ctx, &err);
	json_decref(body);
	if (!out) {
		sg_after_fail(call, "the events were accepted, but the answer could not be read",
		              &err);
		return;
	}
	sg_call_object(call, out);
}

/* The events as sent: SandBase takes the north {events} body itself, and refuses a batch whole
 * (422, a 400 here) when it cannot run one of them. */
static void sb_send_events(struct sg_call *call)
{
	char path[700];

	if (sg_call_session_path(call, "/events", path, sizeof(path)) == 0)
		sg_call_send_json(call, "POST", path, priv_of(call)->wheaders, sg_call_body(call),
		                  on_sent, NULL);
}

/* ---- the live stream ----
 *
 * GET /v1/sessions/{id}/events/stream answers data-only SSE frames, one SandBase event
 * envelope each (the JSON of its events list), with `: heartbeat` comments between them. On
 * connect it replays the persisted events, then streams new ones, and it never closes on its
 * own. Each frame goes through the list's own translation, one envelope at a time with the
 * linking state carried from frame to frame, so the stream shows the ids, links and spans the
 * events list shows for the same envelopes. */

#define SB_HISTORY_PAGES 200 /* history pages read before a first connect, at most */

/* What the SSE callback tells the chunk callback. */
#define SB_GONE 1   /* the consumer left: the call (and this state) is freed */
#define SB_FAILED 2 /* the call failed: it stays valid until the loop ends it */

struct sb_stream {
	json_t *carry;   /* sg_sb_events_to_cma's state after the last frame (NULL before) */
	int64_t live_us; /* envelopes processed before this are replay (0: emit everything) */
	char *last;      /* the history's last event id, read before a first connect */
	int pages;       /* history pages read */
};

static void stream_free(void *p)
{
	struct sb_stream *st = p;

	json_decref(st->carry);
	free(st->last);
	free(st);
}

/* When the replay ends: the core's connect time, down to its whole second. SandBase writes
 * whole seconds, so an event processed just after the connect can carry a time just before
 * it; taking the second keeps such an event (and may repeat one from that second, which
 * clients drop by id) instead of losing it. */
static int64_t live_from(int64_t since_us)
{
	if (since_us <= 0)
		return 0;
	return since_us - since_us % 1000000;
}

/* 1 when the north events of one envelope are replayed history, which the north stream does
 * not have: they all complete at the envelope's time (its event, or its span's end, last). */
static int is_replay(const struct sb_stream *st, const json_t *events)
{
	const json_t *last = json_array_get(events, json_array_size(events) - 1);
	const char *t = json_string_value(json_object_get(last, "processed_at"));
	int64_t at;

	return st->live_us && t && sg_time_parse_rfc3339(t, &at) == 0 && at < st->live_us;
}

/* One SSE message: a frame holding one envelope, translated and emitted; then the stream's
 * mark moves past it, shown or not. Returns 0, SB_GONE or SB_FAILED. */
static int on_frame(struct sg_call *call, const struct sg_sse_msg *m, void *arg)
{
	struct sb_stream *st = arg;
	struct sg_sb_ctx ctx;
	struct sg_error err = {0};
	json_t *env, *one, *events, *carry = NULL;
	const json_t *ev;
	char id[300];
	size_t i;
	int rc = 0;

	if (m->comment || !m->data || m->data_len == 0)
		return 0; /* heartbeats, and frames with nothing to read */
	ctx_of(call, &ctx);
	env = json_loadb(m->data, m->data_len, 0, NULL);
	if (!json_is_object(env)) {
		json_decref(env);
		sg_call_fail(call, 502, "api_error",
		             "backend '%s': a stream frame is not a JSON object", ctx.backend);
		return SB_FAILED;
	}
	one = json_pack("[O]", env);
	events = one ? sg_sb_events_to_cma(one, st->carry, &carry, &ctx, &err) : NULL;
	json_decref(one);
	if (!events) {
		json_decref(env);
		if (!err.status)
			sg_err_internal(&err, "out of memory");
		sg_call_fail_with(call, &err);
		return SB_FAILED;
	}
	json_decref(st->carry);
	st->carry = carry;
	/* translated, so the id is a string of at most 256 bytes without NUL */
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(env, "id")));
	json_decref(env);
	if (!is_replay(st, events))
		json_array_foreach(events, i, ev) {
			if (sg_call_emit(call, ev) < 0) {
				rc = SB_GONE;
				break;
			}
		}
	json_decref(events);
	if (rc == 0)
		sg_call_stream_mark(call, id);
	return rc;
}

/* Opens the stream after `cursor` (NULL: from the start). */
static void stream_open(struct sg_call *call, struct sb_stream *st, const char *cursor)
{
	char path[4096];

	if (sg_call_session_path(call, "/events/stream", path, sizeof(path)))
		return;
	if (cursor && sg_url_add_param(path, sizeof(path), "cursor", cursor)) {
		sg_call_fail(call, 400, "invalid_request_error",
		             "the stream's resume position is too long for the backend");
		return;
	}
	sg_call_sse(call, path, priv_of(call)->headers, on_frame, st);
}

static int history_page(struct sg_call *call, struct sb_stream *st, const char *page);

/* A page of the history read before a first connect: the linking state moves over it and
 * the last id is kept; at its end the stream opens after that id, so SandBase replays
 * nothing from before the connect and the stream links as the events list does. */
static void on_history(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct sb_stream *st = arg;
	struct sg_sb_ctx ctx;
	struct sg_error err = {0};
	json_t *body = sg_call_json(call, res), *events, *carry = NULL;
	const json_t *data, *last;
	const char *next;

	if (!body)
		return;
	ctx_of(call, &ctx);
	if (sg_north_page_parts(body, ctx.backend, &data, &next, &err))
		goto fail;
	events = sg_sb_events_to_cma(data, st->carry, &carry, &ctx, &err);
	if (!events)
		goto fail;
	json_decref(events);
	json_decref(st->carry);
	st->carry = carry;
	last = json_array_get(data, json_array_size(data) - 1);
	if (sg_jis_id(json_object_get(last, "id"))) {
		free(st->last);
		st->last = strdup(json_string_value(json_object_get(last, "id")));
	}
	if (next && ++st->pages < SB_HISTORY_PAGES) {
		history_page(call, st, next);
	} else {
		if (next) {
			/* too long to read first: the whole replay comes, filtered by time */
			st->live_us = live_from(sg_call_stream_since(call));
			json_decref(st->carry);
			st->carry = NULL;
		} else {
			st->live_us = 0;
		}
		stream_open(call, st, next ? NULL : st->last);
	}
	json_decref(body);
	return;
fail:
	json_decref(body);
	sg_call_fail_with(call, &err);
}

static int history_page(struct sg_call *call, struct sb_stream *st, const char *page)
{
	char esc[600], path[8192], n[16];

	if (sg_url_escape(sg_call_pubid(call)->native, esc, sizeof(esc)) < 0) {
		sg_call_fail(call, 404, "not_found_error", "session not found");
		return -1;
	}
	snprintf(path, sizeof(path), "/v1/sessions/%s/events", esc);
	snprintf(n, sizeof(n), "%d", SB_PAGE);
	if (sg_url_add_param(path, sizeof(path), "limit", n) ||
	    (page && sg_url_add_param(path, sizeof(path), "page", page))) {
		sg_call_fail(call, 400, "invalid_request_error", "cursor too long for the backend");
		return -1;
	}
	return sg_call_get(call, path, priv_of(call)->headers, on_history, st);
}

/* SandBase resumes natively: the core's resume token is a SandBase event id (this module's
 * mark, or a client's Last-Event-ID), passed as ?cursor=. A first connect that must not
 * replay reads the history's pages first (as the events list does) and opens the stream
 * after its last event: exact, whatever the clocks say, and the linking state is the
 * list's. */
static void sb_stream_events(struct sg_call *call)
{
	const char *resume = sg_call_stream_resume(call);
	struct sb_stream *st = calloc(1, sizeof(*st));

	if (!st) {
		sg_call_fail(call, 500, "api_error", "out of memory");
		return;
	}
	sg_call_set_state(call, st, stream_free);
	if (!resume && sg_call_stream_since(call)) {
		history_page(call, st, NULL);
		return;
	}
	/* a resume: SandBase sends what follows the cursor; the core drops what it has sent */
	st->live_us = resume ? 0 : live_from(sg_call_stream_since(call));
	stream_open(call, st, resume);
}

/* ---- agents ---- */

static int get_agents_page(struct sg_call *call, struct sb_state *st, const char *cursor);

static void on_agents_page(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct sb_state *st = arg;
	struct sg_sb_ctx ctx;
	struct sg_error err = {0};
	json_t *body = sg_call_json(call, res), *a;
	const json_t *data, *item;
	const char *next;
	size_t i;

	if (!body)
		return;
	ctx_of(call, &ctx);
	if (sg_north_page_parts(body, ctx.backend, &data, &next, &err))
		goto fail;
	json_array_foreach(data, i, item) {
		a = sg_sb_agent_to_cma(item, &ctx, &err);
		if (!a)
			goto fail;
		if (json_array_append_new(st->list, a)) {
			sg_err_internal(&err, "out of memory");
			goto fail;
		}
	}
	if (next && ++st->pages >= SB_AGENT_PAGES) {
		sg_err_bad_gateway(&err, "backend '%s' has more than %d pages of agents",
		                   ctx.backend, SB_AGENT_PAGES);
		goto fail;
	}
	if (next)
		get_agents_page(call, st, next);
	else
		sg_call_items(call, json_incref(st->list));
	json_decref(body);
	return;
fail:
	json_decref(body);
	sg_call_fail_with(call, &err);
}

/* Every agent, archived ones included (the core filters on include_archived), a fixed page
 * size at a time. */
static int get_agents_page(struct sg_call *call, struct sb_state *st, const char *cursor)
{
	char path[4096] = "/v1/agents", n[16];

	snprintf(n, sizeof(n), "%d", SB_PAGE);
	if (sg_url_add_param(path, sizeof(path), "limit", n) ||
	    sg_url_add_param(path, sizeof(path), "include_archived", "true") ||
	    (cursor && sg_url_add_param(path, sizeof(path), "page", cursor))) {
		sg_call_fail(call, 502, "api_error", "backend '%s': an agent page cursor too long",
		             sg_call_backend(call)->name);
		return -1;
	}
	return sg_call_get(call, path, priv_of(call)->headers, on_agents_page, st);
}

static void sb_list_agents(struct sg_call *call)
{
	struct sb_state *st = state_new(call);

	if (!st)
		return;
	st->list = json_array();
	if (!st->list) {
		sg_call_fail(call, 500, "api_error", "out of memory");
		return;
	}
	get_agents_page(call, st, NULL);
}

static void on_agent_read(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct sg_sb_ctx ctx;
	struct sg_error err = {0};
	json_t *body = sg_call_json(call, res), *a;

	(void)arg;
	if (!body)
		return;
	ctx_of(call, &ctx);
	a = sg_sb_agent_to_cma(body, &ctx, &err);
	json_decref(body);
	if (!a) {
		sg_call_fail_with(call, &err);
		return;
	}
	sg_call_object(call, a);
}

static void sb_get_agent(struct sg_call *call)
{
	char path[700];

	if (sg_call_agent_path(call, path, sizeof(path)))
		return;
	sg_call_get(call, path, priv_of(call)->headers, on_agent_read, NULL);
}

static int sb_init(struct sg_backend *be, const json_t *options, struct sg_error *err)
{
	static const char *const allowed[] = {"api_key", "api_key_file", "agent_cache_ttl_ms",
	                                      NULL};
	long ttl = 300000;
	char key[SB_KEY_MAX + 1];
	struct sb_priv *pv;

	if (sg_options_check(options, allowed, err) ||
	    sg_option_int(options, "agent_cache_ttl_ms", 0, 86400000, &ttl, err) ||
	    sg_option_secret_or_file(options, "api_key", "api_key_file", key, sizeof(key), err))
		return -1;
	pv = calloc(1, sizeof(*pv));
	if (!pv) {
		sg_wipe(key, sizeof(key));
		return sg_err_internal(err, "out of memory");
	}
	snprintf(pv->key_hdr, sizeof(pv->key_hdr), "x-api-key: %s", key);
	sg_wipe(key, sizeof(key)); /* the stack copy must not outlive this call */
	pv->headers[0] = pv->key_hdr;
	pv->wheaders[0] = pv->key_hdr;
	pv->wheaders[1] = "Content-Type: application/json";
	pv->agent_ttl_ms = ttl;
	be->priv = pv;
	return 0;
}

static void sb_destroy(struct sg_backend *be)
{
	struct sb_priv *pv = be->priv;

	sg_wipe(pv->key_hdr, sizeof(pv->key_hdr)); /* the backend's API key */
	free(pv);
	be->priv = NULL;
}

const struct sg_mapping sg_mapping_sandbase = {
    .name = "sandbase",
    .caps = SG_CAP_STREAM_RESUME,
    .init = sb_init,
    .destroy = sb_destroy,
    .check_identity = sg_identity_none, /* the backend's own key is the identity */
    .read_error = sg_sb_read_error,
    .get_session = sb_get_session,
    .list_sessions_page = sb_sessions_page,
    .list_events_page = sb_events_page,
    .create_session = sb_create_session,
    .update_session = sb_update_session,
    .archive_session = sb_archive_session,
    .delete_session = sb_delete_session,
    .send_events = sb_send_events,
    .list_agents = sb_list_agents,
    .get_agent = sb_get_agent,
    .stream_events = sb_stream_events,
};
