/* agentscope.c - the AgentScope agent service (backends.md §1): which upstream calls a
 * north request needs, in what order. The translation itself is pure and lives in
 * agentscope_translate.c.
 *
 * AgentScope has no lookup by session id and no pagination: every session call needs the
 * agent id (carried in our public ids as the scope) and returns the whole (user, agent)
 * listing. Identity is the X-User-ID header, taken from the authenticated key's identity
 * object and never from the client.
 *
 * Writes (docs/fidelity-agentscope.md, "Writes") are translated by pure functions too; this
 * file sends each once and reads the session back as a retrieve does, since AgentScope
 * answers a create with nothing but the id. A failure after a write took effect goes through
 * after.h, so the client is never invited to send it again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "after.h"
#include "call.h"
#include "cache.h"
#include "codec.h"
#include "config.h"
#include "crypto.h"
#include "jsonx.h"
#include "mapping.h"
#include "tz.h"
#include "sse.h"
#include "agentscope_events.h"
#include "agentscope_stream.h"
#include "agentscope_translate.h"

#define AS_USER_MAX 256
#define AS_MSG_PAGE 200  /* the largest page /messages allows */
#define AS_LIST_SLICE 32 /* sessions translated before the loop serves others again */
/* A retrieve sums usage over at most this many messages of the log (50 pages), the newest
 * ones on newer builds; past it the usage says messages_partial. */
#define AS_USAGE_MAX_MESSAGES 10000
/* How long a summed usage is remembered (its key holds the session's updated_at, so a later
 * run makes a new key; the cache's byte budget bounds the memos with everything else). */
#define AS_USAGE_MEMO_MS (24LL * 3600 * 1000)

struct as_priv {
	struct sg_tz *tz;
	long max_agents; /* fan-out bound when listing without agent_id */
	long fanout;     /* listings fetched at once */
	int hint_mode;   /* enum sg_as_hint_mode */
	long cache_ms;   /* freshness of the worker's cache of agents and translated listings;
	                  * 0 = always ask the backend */
	/* What a created session runs with (sg_as_model_config() as JSON text; NULL: the backend
	 * takes no creates), and the model its agents are shown with. */
	char *chat_model_config;
	char *fallback_chat_model_config;
	char *model;
};

/* Per-call state: the agents index and the raw listings, translated once all arrived. */
struct as_state {
	char user_hdr[AS_USER_MAX + 16];
	const char *headers[2];  /* reads */
	const char *wheaders[3]; /* writes: the identity and the body's type */
	/* the session a call addresses (retrieve, events, writes): native ids, and for writes the
	 * public id, known once the backend made or named it */
	char agent_id[SG_ID_FIELD_MAX];
	char session_id[SG_ID_FIELD_MAX];
	char pubid[SG_ID_MAX];
	int applied; /* the write took effect: a later failure must not invite a retry */
	char after[SG_ID_MAX + 160]; /* what took effect, for such a failure's message */
	json_t *chat_input;          /* create: the initial events, sent once the session exists */
	struct sg_as_send plan;      /* send_events */
	json_t *agents_index;        /* agent id → AgentView */
	json_t *listings;            /* raw bodies of GET /sessions/, or for lists
	                              * [agent id, body] pairs */
	json_t *agent_ids;           /* agents still to list (fan-out queue) */
	size_t next_agent;
	int agents_done;
	/* events: the message log, read to the end */
	json_t *messages; /* oldest first */
	int msgs_done;
	int msgs_endpoint_missing;
	long msg_offset;  /* v2.0.1 paging */
	char before[256]; /* newer builds' paging */
	/* retrieve: the usage summed over the message log, page by page (nothing kept) */
	struct sg_as_usage usage;
	int usage_state; /* 0 not asked, 1 reading the log, 2 known, 3 unknown */
	size_t usage_msgs;
	char ubefore[256];
	long uoffset;
	/* lists: the translation under way, in slices (continue_list) */
	struct sg_as_ctx lctx;
	struct sg_as_listing_text lt;
	size_t li;
	int in_text;
	/* the live stream: its SSE reader and translator, and the session key its ids use */
	struct sg_as_stream *stream;
	char skey[2 * SG_ID_FIELD_MAX + 2];
};

static void state_free(void *p)
{
	struct as_state *st = p;

	json_decref(st->agents_index);
	json_decref(st->listings);
	json_decref(st->agent_ids);
	json_decref(st->messages);
	json_decref(st->chat_input);
	json_decref(st->plan.msgs);
	sg_as_stream_free(st->stream);
	free(st);
}

static const struct as_priv *priv_of(const struct sg_call *call)
{
	return sg_call_backend(call)->priv;
}

static struct as_state *state_new(struct sg_call *call)
{
	struct as_state *st = calloc(1, sizeof(*st));
	const char *uid = json_string_value(json_object_get(sg_call_identity(call), "user_id"));

	if (!st || !uid)
		goto fail;
	snprintf(st->user_hdr, sizeof(st->user_hdr), "X-User-ID: %s", uid);
	st->headers[0] = st->user_hdr;
	st->headers[1] = NULL;
	st->wheaders[0] = st->user_hdr;
	st->wheaders[1] = "Content-Type: application/json";
	st->wheaders[2] = NULL;
	st->listings = json_array();
	if (!st->listings)
		goto fail;
	sg_call_set_state(call, st, state_free);
	return st;
fail:
	if (st)
		state_free(st);
	sg_call_fail(call, 500, "api_error", "out of memory");
	return NULL;
}

/* The usage memo's key of a session record: whose view (the identity), which session, and its
 * updated_at, which changes at the end of every run. -1 when the record lacks one of them. */
static int usage_memo_key(const struct sg_call *call, const json_t *rec, char *out, size_t len)
{
	const char *uid = json_string_value(json_object_get(sg_call_identity(call), "user_id"));
	const char *sid = sg_jstr(rec, "id"), *aid = sg_jstr(rec, "agent_id");
	const char *upd = sg_jstr(rec, "updated_at");
	int n;

	if (!uid || !sid || !aid || !upd)
		return -1;
	n = snprintf(out, len, "%s\x1f%s\x1f%s\x1f%s", uid, aid, sid, upd);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* A listed session's usage: what a retrieve or an events read of it remembered, unless a run
 * holds it now (its log grows while updated_at stays). */
static int usage_from_memo(void *arg, const json_t *rec, int running, struct sg_as_usage *u)
{
	const struct sg_call *call = arg;
	struct sg_usage_memo m;
	char key[SG_CACHE_KEY_MAX];

	if (running || usage_memo_key(call, rec, key, sizeof(key)) ||
	    !sg_call_usage_get(call, key, &m))
		return 0;
	u->in = m.input;
	u->out = m.output;
	u->cache_read = m.cache_read;
	u->cache_create = m.cache_create;
	u->partial = m.partial;
	return 1;
}

static void usage_remember(const struct sg_call *call, const json_t *rec,
                           const struct sg_as_usage *u)
{
	struct sg_usage_memo m = {u->in, u->out, u->cache_read, u->cache_create, u->partial};
	char key[SG_CACHE_KEY_MAX];

	if (usage_memo_key(call, rec, key, sizeof(key)) == 0)
		sg_call_usage_put(call, key, &m, AS_USAGE_MEMO_MS);
}

static void ctx_of(const struct sg_call *call, struct sg_as_ctx *ctx)
{
	ctx->backend = sg_call_backend(call)->name;
	ctx->tz = priv_of(call)->tz;
	ctx->now_us = sg_call_now_us(call);
	ctx->log_usage = usage_from_memo;
	ctx->log_usage_arg = (void *)call;
}

/* The worker-cache key of what this principal sees of `what` ("agents", or "sessions" and
 * an agent id). Identity is part of the key: one user's view never serves another. */
static void cache_key(const struct sg_call *call, const char *what, const char *agent, char *out,
                      size_t len)
{
	snprintf(out, len, "agentscope\x1f%s\x1f%s\x1f%s\x1f%s", sg_call_backend(call)->name,
	         json_string_value(json_object_get(sg_call_identity(call), "user_id")), what,
	         agent ? agent : "");
}

/* Fails a call whose write took effect (st->applied): see after.h. */
static void fail_applied(struct sg_call *call, struct as_state *st, struct sg_error *err)
{
	sg_after_fail(call, st->after, err);
}

/* The answer to a fetch (reading the session back, sending the initial events): once the write
 * took effect, read through sg_after_json(), else as usual. Returns the parsed 2xx body (new), or
 * NULL after failing the call. */
static json_t *json_after(struct sg_call *call, struct as_state *st, const struct sg_fetch_res *res)
{
	return st->applied ? sg_after_json(call, st->after, res) : sg_call_json(call, res);
}

/* The view of the session a call addresses (st->agent_id, st->session_id), from the agent's
 * listing: borrowed, or NULL after failing the call (wrong shape → 502, absent → 404). */
static const json_t *find_view(struct sg_call *call, struct as_state *st)
{
	const json_t *sessions = json_object_get(json_array_get(st->listings, 0), "sessions");
	struct sg_error err = {0};
	size_t i, unreadable = 0, first_bad = 0;
	json_t *view;

	if (!json_is_array(sessions)) {
		sg_err_bad_gateway(&err, "backend '%s': the session listing has the wrong shape",
		                   sg_call_backend(call)->name);
		goto fail;
	}
	json_array_foreach(sessions, i, view) {
		const json_t *rec = json_object_get(view, "session");
		const char *sid = json_string_value(json_object_get(rec, "id"));
		const char *aid = json_string_value(json_object_get(rec, "agent_id"));

		if (!sid || !aid) {
			if (unreadable++ == 0)
				first_bad = i;
			continue;
		}
		if (strcmp(sid, st->session_id) == 0 && strcmp(aid, st->agent_id) == 0)
			return view;
	}
	if (st->applied)
		sg_err_bad_gateway(&err, "backend '%s' does not list the session",
		                   sg_call_backend(call)->name);
	else if (unreadable) {
		/* the session may be the record that cannot be read: not "not found", which a
		 * client could take for deleted; asking again would bring the same records */
		sg_err_bad_gateway(
		    &err,
		    "backend '%s' sent %zu session record(s) the gateway cannot read "
		    "(sessions[%zu] first); the session may be one of them",
		    sg_call_backend(call)->name, unreadable, first_bad);
		err.should_retry = 0;
	} else
		sg_err_not_found(&err, "session not found");
fail:
	if (st->applied)
		fail_applied(call, st, &err);
	else
		sg_call_fail_with(call, &err);
	return NULL;
}

/* Retrieve, and the answer of create and update: only the view with the call's ids is
 * translated, exactly as a retrieve does it. */
static void finish_get(struct sg_call *call, struct as_state *st, const struct sg_as_ctx *ctx)
{
	const json_t *view = find_view(call, st);
	struct sg_error err = {0};
	json_t *s;

	if (!view)
		return;
	s = sg_as_session_to_cma(view, json_object_get(st->agents_index, st->agent_id), ctx, &err);
	if (!s) {
		if (st->applied)
			fail_applied(call, st, &err);
		else
			sg_call_fail_with(call, &err);
		return;
	}
	sg_call_object(call, s);
}

/* Whether the view says a run holds the session now. */
static int view_running(const json_t *view)
{
	const json_t *status = json_object_get(view, "status");

	return json_is_string(status) ? strcmp(json_string_value(status), "running") == 0
	                              : json_is_true(json_object_get(view, "is_running"));
}

/* The events context of the session st addresses, whose view is `view` (borrowed): what
 * list_events translates the log with, so that every id it mints is the one the list shows.
 * key (2 * SG_ID_FIELD_MAX + 2 bytes) holds the session key the context points at. */
static void events_ctx(const struct sg_call *call, const struct as_state *st, const json_t *view,
                       char *key, struct sg_as_events_ctx *ec)
{
	const json_t *rec = json_object_get(view, "session");
	const json_t *agent = json_object_get(st->agents_index, st->agent_id);

	memset(ec, 0, sizeof(*ec));
	snprintf(key, 2 * SG_ID_FIELD_MAX + 2, "%s/%s", st->agent_id, st->session_id);
	ec->backend = sg_call_backend(call)->name;
	ec->session_key = key;
	ec->tz = priv_of(call)->tz;
	ec->agent_name = json_string_value(json_object_get(json_object_get(agent, "data"), "name"));
	ec->model = json_string_value(json_object_get(
	    json_object_get(json_object_get(rec, "config"), "chat_model_config"), "model"));
	ec->session_running = view_running(view);
	ec->hint_mode = priv_of(call)->hint_mode;
}

static void finish_events(struct sg_call *call, struct as_state *st)
{
	const json_t *view = find_view(call, st), *rec, *log;
	struct sg_as_events_ctx ec = {0};
	struct sg_error err = {0};
	char key[2 * SG_ID_FIELD_MAX + 2];
	json_t *events, *first = NULL;

	if (!view)
		return;
	rec = json_object_get(view, "session");
	events_ctx(call, st, view, key, &ec);
	log = st->messages;
	if (st->msgs_endpoint_missing) {
		/* Without a message log only state.context is left; say so when earlier turns
		 * were compacted away rather than pretend the history starts here. */
		log = json_object_get(json_object_get(rec, "state"), "context");
		if (sg_as_compacted_event(rec, &ec, &first, &err)) {
			sg_call_fail_with(call, &err);
			return;
		}
	}
	if (ec.session_running)
		sg_call_set_volatile(call); /* its log grows as the run goes */
	else if (!st->msgs_endpoint_missing) {
		/* the whole log is here: remember its usage for the listings (no run adds to it) */
		struct sg_as_usage u = {0};

		sg_as_usage_add(&u, st->messages);
		usage_remember(call, rec, &u);
	}
	events = sg_as_messages_to_events(log ? log : st->messages, &ec, &err);
	if (!events || (first && json_array_insert_new(events, 0, first))) {
		if (events)
			sg_err_internal(&err, "out of memory");
		else
			json_decref(first);
		json_decref(events);
		sg_call_fail_with(call, &err);
		return;
	}
	sg_call_items(call, events);
}

static void send_checked(struct sg_call *call, struct as_state *st);

static void continue_list(struct sg_call *call);

static int read_usage(struct sg_call *call, struct as_state *st);

/* A retrieve's usage: the sum it read from the log (whether a run holds the session or not). */
static int usage_own(void *arg, const json_t *rec, int running, struct sg_as_usage *u)
{
	const struct as_state *st = arg;

	(void)rec;
	(void)running;
	*u = st->usage;
	return 1;
}

static int add_item(void *arg, json_t *session)
{
	return sg_call_add_item(arg, session);
}

/* Translates every listing once nothing is pending: the list ends here. */
static void finish_list(struct sg_call *call, struct as_state *st)
{
	struct sg_as_ctx ctx;

	if (sg_call_pending(call) > 0 || !st->agents_done ||
	    st->next_agent < json_array_size(st->agent_ids))
		return;
	ctx_of(call, &ctx);
	switch (sg_call_kind(call)) {
	case SG_CALL_CREATE_SESSION:
	case SG_CALL_UPDATE_SESSION:
		/* the answer is the session as a retrieve gives it; caches filled before the
		 * write no longer answer (the core's write generation, call.c) */
		finish_get(call, st, &ctx);
		return;
	case SG_CALL_GET_SESSION:
		if (st->usage_state == 0 && read_usage(call, st))
			return; /* reading the log (finish_list runs again), or failed */
		if (st->usage_state == 2) {
			ctx.log_usage = usage_own;
			ctx.log_usage_arg = st;
		}
		finish_get(call, st, &ctx);
		return;
	case SG_CALL_LIST_EVENTS:
		if (st->msgs_done)
			finish_events(call, st);
		return;
	case SG_CALL_SEND_EVENTS:
		if (st->msgs_done)
			send_checked(call, st);
		return;
	default:
		break;
	}
	st->lctx = ctx;
	st->li = 0;
	continue_list(call);
}

/* Translates the listings in slices of AS_LIST_SLICE sessions, the loop serving other
 * requests between slices (a 10,000-session listing takes about a second of CPU). Each
 * session goes to the core as soon as it is translated (into a held listing when the core
 * asked for one): a large listing never sits whole as JSON trees. */
static void continue_list(struct sg_call *call)
{
	struct as_state *st = sg_call_state(call);
	struct sg_error err = {0};

	while (st->li < json_array_size(st->listings)) {
		const json_t *body = json_array_get(json_array_get(st->listings, st->li), 1);
		json_t *one = NULL, *s;
		size_t k;
		int rc;

		if (json_is_string(body)) {
			if (!st->in_text &&
			    sg_as_listing_text_begin(&st->lt, json_string_value(body),
			                             json_string_length(body), st->agents_index,
			                             &st->lctx, &err)) {
				sg_call_fail_with(call, &err);
				return;
			}
			st->in_text = 1;
			rc = sg_as_listing_text_step(&st->lt, AS_LIST_SLICE, add_item, call, &err);
			if (rc == 1) {
				sg_call_later(call, continue_list);
				return;
			}
			st->in_text = 0;
		} else {
			one = json_array();
			rc = !one ||
			     sg_as_listing_to_cma(body, st->agents_index, &st->lctx, one, &err);
			json_array_foreach(one, k, s)
				if (!rc && sg_call_add_item(call, json_incref(s)))
					rc = -1;
			json_decref(one);
		}
		if (rc) {
			if (!sg_call_ended(call))
				sg_call_fail_with(call, &err);
			return;
		}
		st->li++;
	}
	sg_call_items_added(call);
}

static void on_listing(struct sg_call *call, const struct sg_fetch_res *res, void *arg);

/* Starts the next listing of the fan-out queue; returns -1 when the call failed. The fetch's
 * argument is the agent's index in the queue, so the answer is paired with its agent without
 * any per-fetch allocation. (Translated listings are held by the core, api_read.c.) */
static int list_next_agent(struct sg_call *call, struct as_state *st)
{
	while (st->next_agent < json_array_size(st->agent_ids)) {
		size_t idx = st->next_agent++;
		const char *aid = json_string_value(json_array_get(st->agent_ids, idx));
		char esc[1024], path[1100];

		if (!aid || sg_url_escape(aid, esc, sizeof(esc)) < 0) {
			sg_call_fail(call, 502, "api_error", "backend '%s': unusable agent id",
			             sg_call_backend(call)->name);
			return -1;
		}
		snprintf(path, sizeof(path), "/sessions/?agent_id=%s", esc);
		return sg_call_get(call, path, st->headers, on_listing, (void *)(uintptr_t)idx);
	}
	return 0;
}

static void on_listing(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct as_state *st = sg_call_state(call);
	size_t idx = (size_t)(uintptr_t)arg;
	json_t *body;

	/* AgentScope answers 404 for an agent the user cannot see; as a list filter that
	 * is simply an agent with no sessions (retrieve and events keep their 404). */
	if (res->fail == SG_FETCH_OK && res->status == 404 &&
	    sg_call_kind(call) == SG_CALL_LIST_SESSIONS)
		body = json_pack("{s:[], s:i}", "sessions", "total", 0);
	else if (sg_call_kind(call) == SG_CALL_LIST_SESSIONS)
		/* a list keeps the text: finish_list() parses one session at a time */
		body =
		    sg_call_answer_ok(call, res) ? NULL : json_stringn_nocheck(res->body, res->len);
	else
		body = json_after(call, st, res);
	if (!body)
		return;
	if (sg_call_kind(call) == SG_CALL_LIST_SESSIONS)
		json_array_append_new(st->listings,
		                      json_pack("[O,o]", json_array_get(st->agent_ids, idx), body));
	else
		json_array_append_new(st->listings, body);
	if (list_next_agent(call, st))
		return;
	finish_list(call, st);
}

static void agents_ready(struct sg_call *call, struct as_state *st);

static void on_agents(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct as_state *st = arg;
	struct sg_as_ctx ctx;
	struct sg_error err = {0};
	json_t *body = json_after(call, st, res);
	char key[1024];

	if (!body)
		return;
	ctx_of(call, &ctx);
	st->agents_index = sg_as_agents_index(body, &ctx, &err);
	json_decref(body);
	if (!st->agents_index) {
		if (st->applied)
			fail_applied(call, st, &err);
		else
			sg_call_fail_with(call, &err);
		return;
	}
	if (priv_of(call)->cache_ms > 0) {
		cache_key(call, "agents", NULL, key, sizeof(key));
		sg_call_cache_put(call, key, st->agents_index, priv_of(call)->cache_ms);
	}
	agents_ready(call, st);
}

/* The user's agents (from GET /agent/ or the cache); a list without agent_id fans out. */
static int fetch_agents(struct sg_call *call, struct as_state *st)
{
	char key[1024];

	if (priv_of(call)->cache_ms > 0) {
		cache_key(call, "agents", NULL, key, sizeof(key));
		st->agents_index = sg_call_cache_get(call, key);
		if (st->agents_index) {
			agents_ready(call, st);
			return sg_call_ended(call) ? -1 : 0;
		}
	}
	return sg_call_get(call, "/agent/", st->headers, on_agents, st);
}

static void agents_ready(struct sg_call *call, struct as_state *st)
{
	const struct as_priv *pv = priv_of(call);
	const struct sg_session_query *q = sg_call_session_query(call);
	const char *aid;
	json_t *v;

	st->agents_done = 1;
	/* Without agent_id: list every agent of the user, a bounded window at a time. */
	if (sg_call_kind(call) == SG_CALL_LIST_SESSIONS && !q->agent_id) {
		if ((long)json_object_size(st->agents_index) > pv->max_agents) {
			sg_call_fail(
			    call, 502, "api_error",
			    "backend '%s': the user has more than %ld agents; pass agent_id",
			    sg_call_backend(call)->name, pv->max_agents);
			return;
		}
		st->agent_ids = json_array();
		json_object_foreach(st->agents_index, aid, v)
			json_array_append_new(st->agent_ids, json_string(aid));
		for (long i = 0; i < pv->fanout && st->next_agent < json_array_size(st->agent_ids);
		     i++)
			if (list_next_agent(call, st))
				return;
	}
	finish_list(call, st);
}

static void as_list_sessions(struct sg_call *call)
{
	const struct sg_session_query *q = sg_call_session_query(call);
	struct as_state *st = state_new(call);

	if (!st)
		return;
	if (q->agent_id)
		st->agent_ids = json_pack("[s]", q->agent_id);
	if (fetch_agents(call, st))
		return;
	if (q->agent_id && !sg_call_ended(call) && list_next_agent(call, st) == 0)
		finish_list(call, st);
}

/* Reads the session st addresses, as a retrieve does: the agents (for the snapshot's name and
 * prompt) and the agent's listing, concurrently; finish_list() translates. */
static void read_session(struct sg_call *call, struct as_state *st)
{
	char esc[1024], path[1100];

	st->agent_ids = json_pack("[s]", st->agent_id);
	st->next_agent = 1;
	if (sg_url_escape(st->agent_id, esc, sizeof(esc)) < 0) {
		sg_call_fail(call, 404, "not_found_error", "session not found");
		return;
	}
	snprintf(path, sizeof(path), "/sessions/?agent_id=%s", esc);
	if (sg_call_get(call, path, st->headers, on_listing, (void *)(uintptr_t)0))
		return;
	fetch_agents(call, st); /* after the listing: a cached index goes on at once */
}

static struct as_state *session_state(struct sg_call *call);

static void as_get_session(struct sg_call *call)
{
	struct as_state *st = session_state(call);

	if (st)
		read_session(call, st);
}

static int fetch_messages(struct sg_call *call, struct as_state *st);

/* One page of /messages. Newer builds answer the latest page and `has_more`, and page back
 * with before=<oldest id>; v2.0.1 answers from the oldest with offset/limit and no
 * has_more. Either way the log is read to the end, within SG_AS_EVENTS_MAX_MESSAGES. */
static void on_messages(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct as_state *st = arg;
	const char *name = sg_call_backend(call)->name;
	json_t *body, *page, *has_more;
	size_t n;

	if (res->fail == SG_FETCH_OK && res->status == 404 && json_array_size(st->messages) == 0 &&
	    !st->before[0] && st->msg_offset == 0) {
		/* Either the session is unknown (the listing will say so) or this build has no
		 * message log: fall back to state.context. */
		st->msgs_endpoint_missing = 1;
		st->msgs_done = 1;
		finish_list(call, st);
		return;
	}
	body = sg_call_json(call, res);
	if (!body)
		return;
	page = json_object_get(body, "messages");
	has_more = json_object_get(body, "has_more");
	if (!json_is_array(page)) {
		json_decref(body);
		sg_call_fail(call, 502, "api_error",
		             "backend '%s': the message log has the wrong shape", name);
		return;
	}
	n = json_array_size(page);
	if (json_array_size(st->messages) + n > SG_AS_EVENTS_MAX_MESSAGES) {
		json_decref(body);
		sg_call_fail(call, 502, "api_error",
		             "backend '%s': the session has more than %d messages", name,
		             SG_AS_EVENTS_MAX_MESSAGES);
		return;
	}
	if (has_more) {
		const char *oldest =
		    json_string_value(json_object_get(json_array_get(page, 0), "id"));

		/* This page is older than everything held so far: it goes in front. */
		json_array_extend(page, st->messages);
		json_decref(st->messages);
		st->messages = json_incref(page);
		if (json_is_true(has_more) && n > 0 && oldest &&
		    strlen(oldest) < sizeof(st->before) && strcmp(oldest, st->before) != 0) {
			snprintf(st->before, sizeof(st->before), "%s", oldest);
			json_decref(body);
			fetch_messages(call, st);
			return;
		}
	} else {
		json_array_extend(st->messages, page);
		if (n == AS_MSG_PAGE) {
			st->msg_offset += AS_MSG_PAGE;
			json_decref(body);
			fetch_messages(call, st);
			return;
		}
	}
	json_decref(body);
	st->msgs_done = 1;
	finish_list(call, st);
}

/* The path of one page of the session's log: back from before (newer builds), or from offset
 * (v2.0.1), or the first. -1 when an id does not fit. */
static int messages_path(const struct as_state *st, const char *before_id, long offset, char *path,
                         size_t len)
{
	char sid[600], aid[600], before[800];

	if (sg_url_escape(st->session_id, sid, sizeof(sid)) < 0 ||
	    sg_url_escape(st->agent_id, aid, sizeof(aid)) < 0 ||
	    sg_url_escape(before_id, before, sizeof(before)) < 0)
		return -1;
	if (before_id[0])
		snprintf(path, len, "/sessions/%s/messages?agent_id=%s&limit=%d&before=%s", sid,
		         aid, AS_MSG_PAGE, before);
	else if (offset > 0)
		snprintf(path, len, "/sessions/%s/messages?agent_id=%s&limit=%d&offset=%ld", sid,
		         aid, AS_MSG_PAGE, offset);
	else
		snprintf(path, len, "/sessions/%s/messages?agent_id=%s&limit=%d", sid, aid,
		         AS_MSG_PAGE);
	return 0;
}

static int fetch_messages(struct sg_call *call, struct as_state *st)
{
	char path[2200];

	if (messages_path(st, st->before, st->msg_offset, path, sizeof(path))) {
		sg_call_fail(call, 404, "not_found_error", "session not found");
		return -1;
	}
	return sg_call_get(call, path, st->headers, on_messages, st);
}

static int fetch_usage_page(struct sg_call *call, struct as_state *st);

/* One page of the log a retrieve sums usage over: added up and let go. Anything but a readable
 * page (no log on this build, an error, a timeout) leaves the usage unknown; the session is
 * still answered. */
static void on_usage_page(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct as_state *st = arg;
	json_t *body = NULL;
	const json_t *page, *has_more, *view;
	size_t n;
	int more;

	if (res->fail == SG_FETCH_OK && res->status >= 200 && res->status <= 299)
		body = json_loadb(res->body, res->len, 0, NULL);
	page = json_object_get(body, "messages");
	if (!json_is_array(page)) {
		st->usage_state = 3;
		json_decref(body);
		finish_list(call, st);
		return;
	}
	n = sg_as_usage_add(&st->usage, page);
	st->usage_msgs += n;
	has_more = json_object_get(body, "has_more");
	if (has_more) { /* newer builds: the latest page first, then before=<its oldest id> */
		const char *oldest =
		    json_string_value(json_object_get(json_array_get(page, 0), "id"));

		more = json_is_true(has_more);
		if (more && (!n || !oldest || strlen(oldest) >= sizeof(st->ubefore) ||
		             !strcmp(oldest, st->ubefore)))
			st->usage.partial = 1, more = 0; /* it cannot be paged further */
		else if (more)
			snprintf(st->ubefore, sizeof(st->ubefore), "%s", oldest);
	} else { /* v2.0.1: from the oldest, offset/limit, no has_more */
		more = n == AS_MSG_PAGE;
		st->uoffset += AS_MSG_PAGE;
	}
	json_decref(body);
	if (more && st->usage_msgs >= AS_USAGE_MAX_MESSAGES)
		st->usage.partial = 1, more = 0;
	if (more) {
		fetch_usage_page(call, st);
		return;
	}
	st->usage_state = 2;
	view = find_view(call, st);
	if (!view)
		return;
	if (!view_running(view))
		usage_remember(call, json_object_get(view, "session"), &st->usage);
	finish_list(call, st);
}

static int fetch_usage_page(struct sg_call *call, struct as_state *st)
{
	char path[2200];

	if (messages_path(st, st->ubefore, st->uoffset, path, sizeof(path))) {
		st->usage_state = 3;
		finish_list(call, st);
		return -1;
	}
	return sg_call_get(call, path, st->headers, on_usage_page, st);
}

/* A retrieve carries the session's usage summed over its whole message log: from the memo
 * when a read of the same log (same updated_at) left it there, no run holds the session and
 * the client did not ask for a fresh read, else by reading the log. Returns 1 while the log is read
 * (finish_list runs again once it is), 0 to answer now, -1 after failing the call. */
static int read_usage(struct sg_call *call, struct as_state *st)
{
	const json_t *view = find_view(call, st);

	if (!view)
		return -1;
	if (!view_running(view) && !sg_call_wants_fresh(call) &&
	    usage_from_memo(call, json_object_get(view, "session"), 0, &st->usage)) {
		st->usage_state = 2;
		return 0;
	}
	st->usage_state = 1;
	return fetch_usage_page(call, st) ? -1 : 1;
}

/* The session's log as list_events reads it: the agent (for its name), the listing (running
 * state, model, the context fallback) and the message log, fetched concurrently; finish_list()
 * goes on once all arrived. */
static void read_log(struct sg_call *call, struct as_state *st)
{
	char esc[1024], path[1100];

	st->messages = json_array();
	if (!st->messages || sg_url_escape(st->agent_id, esc, sizeof(esc)) < 0) {
		sg_call_fail(call, 404, "not_found_error", "session not found");
		return;
	}
	st->agent_ids = json_pack("[s]", st->agent_id);
	st->next_agent = 1;
	snprintf(path, sizeof(path), "/sessions/?agent_id=%s", esc);
	if (sg_call_get(call, path, st->headers, on_listing, (void *)(uintptr_t)0) ||
	    fetch_messages(call, st))
		return;
	fetch_agents(call, st); /* last: a cached index goes on at once */
}

/* The state of a call on the session its public id names; NULL after failing the call (an id
 * without an agent cannot be one of AgentScope's). */
static struct as_state *session_state(struct sg_call *call)
{
	const struct sg_pubid *id = sg_call_pubid(call);
	struct as_state *st;

	if (!id || !id->scope[0]) {
		sg_call_fail(call, 404, "not_found_error", "session not found");
		return NULL;
	}
	st = state_new(call);
	if (!st)
		return NULL;
	snprintf(st->agent_id, sizeof(st->agent_id), "%s", id->scope);
	snprintf(st->session_id, sizeof(st->session_id), "%s", id->native);
	return st;
}

static void as_list_events(struct sg_call *call)
{
	struct as_state *st = session_state(call);

	if (st)
		read_log(call, st);
}

static int session_path(struct sg_call *call, const struct as_state *st, const char *suffix,
                        char *out, size_t len);

/* ---- the live stream ------------------------------------------------------------------ */

/* What a callback of the SSE reader says when it stopped: the call was failed (and still
 * exists), or the consumer is gone (the call and everything it owns are freed). */
#define AS_STREAM_FAILED 1
#define AS_STREAM_GONE 2
/* One SSE message of the backend's stream: a frame, translated and handed to the core event by
 * event. Heartbeats (comments) and messages without data are nothing. */
static int on_frame(struct sg_call *call, const struct sg_sse_msg *m, void *arg)
{
	struct as_state *st = arg;
	const char *name = sg_call_backend(call)->name;
	struct sg_error err = {0};
	json_t *frame, *out;
	size_t i;

	if (m->comment || !m->data)
		return 0;
	frame = json_loadb(m->data, m->data_len, 0, NULL);
	if (!json_is_object(frame)) {
		json_decref(frame);
		sg_call_fail(call, 502, "api_error",
		             "backend '%s': a stream frame is not a JSON object", name);
		return AS_STREAM_FAILED;
	}
	out = json_array();
	if (!out || sg_as_stream_feed(st->stream, frame, out, &err) < 0) {
		json_decref(frame);
		json_decref(out);
		if (!out)
			sg_err_internal(&err, "out of memory");
		sg_call_fail_with(call, &err);
		return AS_STREAM_FAILED;
	}
	json_decref(frame);
	for (i = 0; i < json_array_size(out); i++) {
		if (sg_call_emit(call, json_array_get(out, i)) < 0) {
			/* the call is freed, st with it: touch neither */
			json_decref(out);
			return AS_STREAM_GONE;
		}
	}
	json_decref(out);
	return 0;
}

static void open_stream(struct sg_call *call, struct as_state *st)
{
	char path[1400];

	if (session_path(call, st, "/stream", path, sizeof(path)) < 0)
		return;
	sg_call_sse(call, path, st->headers, on_frame, st);
}

/* The session's last persisted message, before the stream opens: when it is a reply parked on
 * tool calls, the translator learns what AgentScope's trimmed replay will not show it
 * (sg_as_stream_prime). Anything but a readable page just opens the stream: this read only
 * improves the resumed reply's usage, and the stream's own answer says what is wrong. */
static void on_stream_tail(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct as_state *st = arg;
	struct sg_error err = {0};
	json_t *body = NULL;
	const json_t *msgs;

	if (res->fail == SG_FETCH_OK && res->status >= 200 && res->status <= 299)
		body = json_loadb(res->body, res->len, 0, NULL);
	msgs = json_object_get(body, "messages");
	if (json_is_array(msgs) && json_array_size(msgs) > 0 &&
	    json_object_get(body, "has_more") /* newer builds: the latest page */ &&
	    sg_as_stream_prime(st->stream, json_array_get(msgs, json_array_size(msgs) - 1), &err) <
	        0) {
		json_decref(body);
		sg_call_fail_with(call, &err);
		return;
	}
	json_decref(body);
	open_stream(call, st);
}

/* GET /sessions/{id}/stream?agent_id=…, translated frame by frame with the context list_events
 * uses (same backend, session key, zone and hint mode: the ids must be the history's). Events
 * completed by frames the backend replays from before sg_call_stream_since() are not emitted. */
static void as_stream_events(struct sg_call *call)
{
	struct as_state *st = session_state(call);
	struct sg_as_events_ctx ec = {0};
	char sid[600], aid[600], path[1400];

	if (!st)
		return;
	snprintf(st->skey, sizeof(st->skey), "%s/%s", st->agent_id, st->session_id);
	ec.backend = sg_call_backend(call)->name;
	ec.session_key = st->skey;
	ec.tz = priv_of(call)->tz;
	ec.hint_mode = priv_of(call)->hint_mode;
	st->stream = sg_as_stream_new(&ec, sg_call_stream_since(call));
	if (!st->stream) {
		sg_call_fail(call, 500, "api_error", "out of memory");
		return;
	}
	if (sg_url_escape(st->session_id, sid, sizeof(sid)) < 0 ||
	    sg_url_escape(st->agent_id, aid, sizeof(aid)) < 0) {
		sg_call_fail(call, 404, "not_found_error", "session not found");
		return;
	}
	snprintf(path, sizeof(path), "/sessions/%s/messages?agent_id=%s&limit=1", sid, aid);
	sg_call_get(call, path, st->headers, on_stream_tail, st);
}

/* ---- writes ------------------------------------------------------------------------------ */

/* A fresh uuid4 as 32 lowercase hex digits, the form of AgentScope's own ids. */
static int mint_uuid(void *arg, char out[65])
{
	uint8_t b[16];

	(void)arg;
	if (sg_random(b, sizeof(b)))
		return -1;
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	return sg_hex_encode(b, sizeof(b), out, 65) == 32 ? 0 : -1;
}

static void write_ctx(const struct sg_call *call, struct sg_as_write_ctx *w)
{
	const struct as_priv *pv = priv_of(call);

	memset(w, 0, sizeof(*w));
	w->backend = sg_call_backend(call)->name;
	w->tz = pv->tz;
	w->now_us = sg_call_now_us(call);
	w->new_id = mint_uuid;
	w->chat_model_config = pv->chat_model_config;
	w->fallback_chat_model_config = pv->fallback_chat_model_config;
}

/* v (borrowed) as compact JSON text in a new malloc'd buffer (*len bytes, NUL-terminated), or
 * NULL when out of memory. json_dumpb writes into our buffer, so the text is ours to free. */
static char *dump(const json_t *v, size_t *len)
{
	size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT);
	char *p = n ? malloc(n + 1) : NULL;

	if (!p || json_dumpb(v, p, n, JSON_COMPACT) != n) {
		free(p);
		return NULL;
	}
	p[n] = '\0';
	*len = n;
	return p;
}

/* Sends one write with the write headers: body (borrowed) as JSON, or none. Returns 0, or -1
 * after failing the call. */
static int send_write(struct sg_call *call, struct as_state *st, const char *method,
                      const char *path, const json_t *body, sg_call_fetch_cb cb)
{
	return sg_call_send_json(call, method, path, st->wheaders, body, cb, st);
}

/* "/sessions/{id}<suffix>?agent_id=…" for the session st addresses. Returns 0, or -1 after
 * failing the call (ids that cannot be sent name no session). */
static int session_path(struct sg_call *call, const struct as_state *st, const char *suffix,
                        char *out, size_t len)
{
	char sid[600], aid[600];
	int n;

	if (sg_url_escape(st->session_id, sid, sizeof(sid)) < 0 ||
	    sg_url_escape(st->agent_id, aid, sizeof(aid)) < 0 ||
	    (n = snprintf(out, len, "/sessions/%s%s?agent_id=%s", sid, suffix, aid)) < 0 ||
	    (size_t)n >= len) {
		sg_call_fail(call, 404, "not_found_error", "session not found");
		return -1;
	}
	return 0;
}

/* The body of POST /chat/ for the session st addresses, with input (stolen). New, or NULL. */
static json_t *chat_body(const struct as_state *st, json_t *input)
{
	return json_pack("{s:s, s:s, s:o}", "agent_id", st->agent_id, "session_id", st->session_id,
	                 "input", input);
}

static void on_initial_sent(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct as_state *st = arg;
	json_t *body = json_after(call, st, res);

	if (!body)
		return;
	json_decref(body);
	snprintf(st->after, sizeof(st->after), "session %s was created, but reading it back failed",
	         st->pubid);
	read_session(call, st);
}

/* POST /sessions/ answered: the session exists from here on, whatever happens next. */
static void on_created(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct as_state *st = arg;
	const char *name = sg_call_backend(call)->name;
	json_t *body = sg_call_json(call, res), *chat;
	struct sg_error err = {0};
	const json_t *sid;

	if (!body)
		return;
	sid = json_object_get(body, "session_id");
	st->applied = 1;
	if (!sg_jis_id(sid) || json_string_length(sid) >= sizeof(st->session_id) ||
	    sg_id_encode("sesn_", name, st->agent_id, json_string_value(sid), st->pubid,
	                 sizeof(st->pubid)) < 0) {
		json_decref(body);
		snprintf(st->after, sizeof(st->after),
		         "the backend may have created a session of agent '%.*s' (list them before "
		         "retrying)",
		         sg_utf8_cut(st->agent_id, 64), st->agent_id);
		sg_err_bad_gateway(&err, "backend '%s' answered without a usable session_id", name);
		fail_applied(call, st, &err);
		return;
	}
	snprintf(st->session_id, sizeof(st->session_id), "%s", json_string_value(sid));
	json_decref(body);
	if (!st->chat_input) {
		snprintf(st->after, sizeof(st->after),
		         "session %s was created, but reading it back failed", st->pubid);
		read_session(call, st);
		return;
	}
	snprintf(st->after, sizeof(st->after),
	         "session %s was created, but sending its initial events failed (send them with "
	         "events.send)",
	         st->pubid);
	chat = chat_body(st, st->chat_input);
	st->chat_input = NULL;
	if (!chat) {
		sg_err_internal(&err, "out of memory");
		fail_applied(call, st, &err);
		return;
	}
	send_write(call, st, "POST", "/chat/", chat, on_initial_sent);
	json_decref(chat);
}

/* Create: POST /sessions/ with the backend's model, then the initial events as one POST /chat/,
 * then the session read back as a retrieve reads it. */
static void as_create_session(struct sg_call *call)
{
	struct as_state *st = state_new(call);
	struct sg_error err = {0};
	struct sg_as_write_ctx w;
	struct sg_as_create c;

	if (!st)
		return;
	write_ctx(call, &w);
	if (sg_as_create_request(sg_call_body(call), &w, &c, &err)) {
		sg_call_fail_with(call, &err);
		return;
	}
	snprintf(st->agent_id, sizeof(st->agent_id), "%s", c.agent_id);
	st->chat_input = c.chat_input;
	send_write(call, st, "POST", "/sessions/", c.session_body, on_created);
	json_decref(c.session_body);
}

static void on_patched(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct as_state *st = arg;
	json_t *body = sg_call_json(call, res);

	if (!body)
		return;
	json_decref(body);
	st->applied = 1;
	snprintf(st->after, sizeof(st->after),
	         "the session was updated, but reading it back failed");
	read_session(call, st);
}

/* Update: PATCH what AgentScope can change (the name), then the session read back; a body that
 * changes nothing AgentScope stores is only read back. 409 while a run holds the session. */
static void as_update_session(struct sg_call *call)
{
	struct as_state *st = session_state(call);
	struct sg_error err = {0};
	struct sg_as_write_ctx w;
	json_t *patch;
	char path[1400];

	if (!st)
		return;
	write_ctx(call, &w);
	if (sg_as_update_request(sg_call_body(call), &w, &patch, &err)) {
		sg_call_fail_with(call, &err);
		return;
	}
	if (!patch) {
		read_session(call, st);
		return;
	}
	if (session_path(call, st, "", path, sizeof(path)) == 0)
		send_write(call, st, "PATCH", path, patch, on_patched);
	json_decref(patch);
}

/* AgentScope has no archive, and a session it cannot hide must not look archived: refused,
 * never a silent no-op (docs/fidelity-agentscope.md). */
static void as_archive_session(struct sg_call *call)
{
	sg_call_fail(call, 400, "invalid_request_error",
	             "backend '%s' (agentscope) has no archive: delete the session instead",
	             sg_call_backend(call)->name);
}

static void on_deleted(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	(void)arg;
	if (res->fail == SG_FETCH_OK && res->status >= 200 && res->status <= 299) {
		sg_call_object(call, NULL);
		return;
	}
	json_decref(sg_call_json(call, res)); /* fails the call with the backend's error */
}

/* Delete: DELETE /sessions/{id}; AgentScope answers 204 with no body. */
static void as_delete_session(struct sg_call *call)
{
	struct as_state *st = session_state(call);
	char path[1400];

	if (st && session_path(call, st, "", path, sizeof(path)) == 0)
		send_write(call, st, "DELETE", path, NULL, on_deleted);
}

/* The events were accepted: the answer echoes them as north events. */
static void send_answer(struct sg_call *call, struct as_state *st)
{
	struct sg_as_events_ctx ec = {0};
	struct sg_error err = {0};
	char key[2 * SG_ID_FIELD_MAX + 2];
	json_t *echo;

	snprintf(key, sizeof(key), "%s/%s", st->agent_id, st->session_id);
	ec.backend = sg_call_backend(call)->name;
	ec.session_key = key;
	ec.tz = priv_of(call)->tz;
	ec.hint_mode = priv_of(call)->hint_mode;
	echo = sg_as_send_echo(sg_call_body(call), &st->plan, &ec, sg_call_now_us(call), &err);
	if (!echo) {
		st->applied = 1;
		snprintf(st->after, sizeof(st->after),
		         "the events were accepted, but the answer could not be built");
		fail_applied(call, st, &err);
		return;
	}
	sg_call_object(call, echo);
}

static void on_sent(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct as_state *st = arg;
	json_t *body = sg_call_json(call, res);

	if (!body)
		return;
	json_decref(body);
	send_answer(call, st);
}

/* Whether a 404 is FastAPI's own for a route it does not have ({"detail": "Not Found"}), not
 * the session's. */
static int no_such_route(const struct sg_fetch_res *res)
{
	json_t *body;
	int yes;

	if (res->fail != SG_FETCH_OK || res->status != 404)
		return 0;
	body = json_loadb(res->body, res->len, 0, NULL);
	yes = json_object_size(body) == 1 && sg_streq(sg_jstr(body, "detail"), "Not Found");
	json_decref(body);
	return yes;
}

static void on_interrupted(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	struct as_state *st = arg;
	json_t *body;

	if (no_such_route(res)) {
		sg_call_fail(
		    call, 400, "invalid_request_error",
		    "backend '%s' (agentscope) cannot interrupt: this AgentScope build has "
		    "no POST /sessions/{id}/interrupt (added after v2.0.1)",
		    sg_call_backend(call)->name);
		return;
	}
	body = sg_call_json(call, res);
	if (!body)
		return;
	json_decref(body);
	send_answer(call, st);
}

/* The session is known to exist (and for tool answers, its log is read): sends the one
 * POST /chat/ the request becomes. */
static void send_checked(struct sg_call *call, struct as_state *st)
{
	const json_t *view = find_view(call, st), *log;
	struct sg_as_events_ctx ec;
	struct sg_error err = {0};
	char key[2 * SG_ID_FIELD_MAX + 2];
	json_t *input, *chat;

	if (!view)
		return;
	if (st->plan.kind == SG_AS_SEND_MESSAGES) {
		input = sg_as_chat_input(st->plan.msgs);
	} else {
		if (view_running(view)) {
			sg_call_fail(
			    call, 409, "conflict_error",
			    "backend '%s' (agentscope): the session is running; it takes a "
			    "tool confirmation or result only while it waits for one",
			    sg_call_backend(call)->name);
			return;
		}
		/* the ids are matched against the log exactly as list_events translates it */
		events_ctx(call, st, view, key, &ec);
		log =
		    st->msgs_endpoint_missing
		        ? json_object_get(
		              json_object_get(json_object_get(view, "session"), "state"), "context")
		        : st->messages;
		input = sg_as_resume_input(json_object_get(sg_call_body(call), "events"), log, &ec,
		                           &err);
		if (!input) {
			sg_call_fail_with(call, &err);
			return;
		}
	}
	chat = input ? chat_body(st, input) : NULL;
	if (!chat) {
		sg_call_fail(call, 500, "api_error", "out of memory");
		return;
	}
	send_write(call, st, "POST", "/chat/", chat, on_sent);
	json_decref(chat);
}

/* Send events: one kind per request, one backend request per north request. Messages first
 * check that the session exists (AgentScope's /chat/ answers 200 for any session id and fails
 * in the background); tool answers read the log to find the parked call. */
static void as_send_events(struct sg_call *call)
{
	struct as_state *st = session_state(call);
	struct sg_error err = {0};
	struct sg_as_write_ctx w;
	char esc[1024], path[1400];

	if (!st)
		return;
	write_ctx(call, &w);
	if (sg_as_send_plan(sg_call_body(call), &w, &st->plan, &err)) {
		sg_call_fail_with(call, &err);
		return;
	}
	switch (st->plan.kind) {
	case SG_AS_SEND_MESSAGES:
		st->agents_done = 1;
		st->msgs_done = 1;
		st->agent_ids = json_pack("[s]", st->agent_id);
		st->next_agent = 1;
		if (sg_url_escape(st->agent_id, esc, sizeof(esc)) < 0) {
			sg_call_fail(call, 404, "not_found_error", "session not found");
			return;
		}
		snprintf(path, sizeof(path), "/sessions/?agent_id=%s", esc);
		sg_call_get(call, path, st->headers, on_listing, (void *)(uintptr_t)0);
		return;
	case SG_AS_SEND_INTERRUPT:
		if (session_path(call, st, "/interrupt", path, sizeof(path)) == 0)
			send_write(call, st, "POST", path, NULL, on_interrupted);
		return;
	default:
		read_log(call, st);
		return;
	}
}

/* ---- agents ------------------------------------------------------------------------------ */

static void on_agent_list(struct sg_call *call, const struct sg_fetch_res *res, void *arg)
{
	const struct as_priv *pv = priv_of(call);
	json_t *body = sg_call_json(call, res), *agents, *a;
	struct sg_error err = {0};
	struct sg_as_ctx ctx;
	int64_t version;
	size_t i;

	(void)arg;
	if (!body)
		return;
	ctx_of(call, &ctx);
	agents = sg_as_agents_to_cma(body, pv->model, &ctx, &err);
	json_decref(body);
	if (!agents) {
		sg_call_fail_with(call, &err);
		return;
	}
	if (sg_call_kind(call) == SG_CALL_LIST_AGENTS) {
		sg_call_items(call, agents);
		return;
	}
	json_array_foreach(agents, i, a) {
		if (!sg_streq(sg_jstr(a, "id"), sg_call_pubid(call)->native))
			continue;
		version = sg_call_agent_version(call);
		if (version != -1 && version != 1) {
			sg_call_fail(call, 404, "not_found_error",
			             "agent version %lld not found: AgentScope agents have one "
			             "version, 1",
			             (long long)version);
		} else {
			sg_call_object(call, json_incref(a));
		}
		json_decref(agents);
		return;
	}
	json_decref(agents);
	sg_call_fail(call, 404, "not_found_error", "agent not found");
}

/* AgentScope has no GET /agent/{id}: both read the user's agent listing. */
static void as_list_agents(struct sg_call *call)
{
	struct as_state *st = state_new(call);

	if (st)
		sg_call_get(call, "/agent/", st->headers, on_agent_list, NULL);
}

static void as_free(struct as_priv *pv)
{
	if (!pv)
		return;
	sg_tz_free(pv->tz);
	free(pv->chat_model_config);
	free(pv->fallback_chat_model_config);
	free(pv->model);
	free(pv);
}

static int as_init(struct sg_backend *be, const json_t *options, struct sg_error *err)
{
	static const char *const allowed[] = {"timezone",
	                                      "max_agents",
	                                      "fanout",
	                                      "hints",
	                                      "cache_ms",
	                                      "chat_model_config",
	                                      "fallback_chat_model_config",
	                                      NULL};
	const json_t *cmc = json_object_get(options, "chat_model_config");
	const json_t *fallback = json_object_get(options, "fallback_chat_model_config");
	char *texts[2] = {NULL, NULL};
	json_t *model = NULL;
	const json_t *tz = json_object_get(options, "timezone");
	const json_t *hints = json_object_get(options, "hints");
	struct as_priv *pv;
	long max_agents = 1000, fanout = 8, cache_ms = 1000;
	char tzerr[256];

	if (sg_options_check(options, allowed, err) ||
	    sg_option_int(options, "max_agents", 1, 100000, &max_agents, err) ||
	    sg_option_int(options, "fanout", 1, 256, &fanout, err) ||
	    sg_option_int(options, "cache_ms", 0, 60000, &cache_ms, err))
		return -1;
	if (tz && !json_is_string(tz))
		return sg_err_invalid(err, "timezone: must be an IANA zone name such as \"UTC\"");
	if (hints &&
	    !(json_is_string(hints) && (strcmp(json_string_value(hints), "drop") == 0 ||
	                                strcmp(json_string_value(hints), "user_message") == 0)))
		return sg_err_invalid(err, "hints: must be \"drop\" or \"user_message\"");
	if (fallback && !cmc)
		return sg_err_invalid(err, "fallback_chat_model_config: needs chat_model_config");
	for (int i = 0; i < 2; i++) {
		const json_t *given = i ? fallback : cmc;
		json_t *v;
		size_t len;

		if (!given)
			continue;
		v = sg_as_model_config(given,
		                       i ? "fallback_chat_model_config" : "chat_model_config", err);
		if (!v)
			goto fail;
		texts[i] = dump(v, &len);
		if (!i)
			model = json_incref(json_object_get(v, "model"));
		json_decref(v);
		if (!texts[i]) {
			sg_err_internal(err, "out of memory");
			goto fail;
		}
	}
	pv = calloc(1, sizeof(*pv));
	if (!pv) {
		sg_err_internal(err, "out of memory");
		goto fail;
	}
	pv->chat_model_config = texts[0];
	pv->fallback_chat_model_config = texts[1];
	pv->model = model ? strdup(json_string_value(model)) : NULL;
	json_decref(model);
	model = NULL;
	texts[0] = texts[1] = NULL;
	if (cmc && !pv->model) {
		as_free(pv);
		return sg_err_internal(err, "out of memory");
	}
	pv->max_agents = max_agents;
	pv->fanout = fanout;
	pv->cache_ms = cache_ms;
	pv->hint_mode = hints && strcmp(json_string_value(hints), "user_message") == 0
	                    ? SG_AS_HINT_USER_MESSAGE
	                    : SG_AS_HINT_DROP;
	pv->tz = sg_tz_load(tz ? json_string_value(tz) : "UTC", tzerr, sizeof(tzerr));
	if (!pv->tz) {
		as_free(pv);
		return sg_err_invalid(err, "timezone: %s", tzerr);
	}
	be->priv = pv;
	be->fresh_ms = cache_ms; /* the core holds translated listings and logs as long */
	return 0;
fail:
	free(texts[0]);
	free(texts[1]);
	json_decref(model);
	return -1;
}

static void as_destroy(struct sg_backend *be)
{
	as_free(be->priv);
	be->priv = NULL;
}

static int as_check_identity(const json_t *identity, struct sg_error *err)
{
	const json_t *u = json_object_get(identity, "user_id");
	const char *s = json_string_value(u);

	if (!s || !*s || strlen(s) > AS_USER_MAX)
		return sg_err_invalid(
		    err, "user_id: must be a non-empty string of at most %d bytes", AS_USER_MAX);
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return sg_err_invalid(err, "user_id: must not contain control characters");
	if (json_object_size(identity) != 1)
		return sg_err_invalid(err, "only user_id is accepted");
	return 0;
}

const struct sg_mapping sg_mapping_agentscope = {
    .name = "agentscope",
    .caps = 0,
    .init = as_init,
    .destroy = as_destroy,
    .check_identity = as_check_identity,
    .list_sessions = as_list_sessions,
    .get_session = as_get_session,
    .list_events = as_list_events,
    .create_session = as_create_session,
    .update_session = as_update_session,
    .archive_session = as_archive_session,
    .delete_session = as_delete_session,
    .send_events = as_send_events,
    .list_agents = as_list_agents,
    .get_agent = as_list_agents,
    .stream_events = as_stream_events,
};
