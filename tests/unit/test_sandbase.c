/* test_sandbase.c - the SandBase translation (mappings/sandbase_translate.c).
 *
 * Golden fixtures: tests/fixtures/sandbase/sessions/<case>/ (ctx.json, session.json or a list
 * body list.json, optional agents.json keyed by agent id, ref.json, expected.json) and
 * tests/fixtures/sandbase/events/<case>/ (ctx.json, page1.json, page2.json, … as SandBase
 * answers them, expected.json = the north events of all pages in order, carry.json = the
 * linking state after each page). Plus properties every answer must have (only the SDK's
 * keys and shapes, content blocks included, canonical timestamps, resolvable links, stable
 * ids, paging-independent linking),
 * the 502 paths, the caps, error mapping, allocation failures, and a proof that the golden
 * comparison and the checkers report a mismatch. Writes: tests/fixtures/sandbase/writes/<case>/
 * (ctx.json with the op, the north request.json, expected.json: the body sent or the refusal),
 * and the module's I/O run against a scripted backend (flow.h). */
#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fixture.h"
#include "flow.h"
#include "idcodec.h"
#include "north.h"
#include "sandbase_translate.h"
#include "timeutil.h"

#define SESSIONS "sandbase/sessions"
#define EVENTS "sandbase/events"
#define WRITES "sandbase/writes"
#define MAX_CASES 64
#define MIN_SESSION_CASES 5 /* guards against a wrong SG_SRCDIR silently running nothing */
#define MIN_EVENT_CASES 8
#define MAX_PAGES 9
#define PENDING_CAP 32
#define PENDING_ID_BYTES 1024
#define EVENTS_CAP 100000

/* ---- helpers ------------------------------------------------------------------------ */

/* Parses inline JSON for a test. Returns a new reference. */
static json_t *parse(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);

	ck_assert_msg(v != NULL, "inline JSON: %s: %s", jerr.text, text);
	return v;
}

/* A context from a fixture's ctx.json (the backend string stays valid while j lives). */
static struct sg_sb_ctx ctx_of(const json_t *j)
{
	struct sg_sb_ctx ctx = {.backend = json_string_value(json_object_get(j, "backend"))};
	const char *now = json_string_value(json_object_get(j, "now"));

	ck_assert_ptr_nonnull(ctx.backend);
	if (now)
		ck_assert_int_eq(sg_time_parse_rfc3339(now, &ctx.now_us), 0);
	return ctx;
}

static const struct sg_sb_ctx base_ctx = {.backend = "sb1"};

/* 1 when s is an RFC 3339 time in the gateway's one canonical spelling. */
static int canonical_time(const char *s)
{
	char buf[SG_TIME_BUFSZ];
	int64_t us;

	return s && sg_time_parse_rfc3339(s, &us) == 0 &&
	       sg_time_format(us, buf, sizeof(buf)) > 0 && !strcmp(buf, s);
}

/* ---- session invariants ------------------------------------------------------------- */

static const char *const usage_keys[] = {
    "input_tokens",   "output_tokens", "cache_read_input_tokens", "cache_creation",
    "active_seconds", "list_cost",     "server_tool_use",         NULL};

/* What must hold for every translated session, whatever the case: exactly the SDK's keys
 * (SandBase's agent_id, agent_version, source… never leak), the right JSON types, canonical
 * times, and a public id that opens to (backend, "", SandBase id). Returns 1 when all hold. */
static int session_ok(const json_t *s, const json_t *src, const char *backend)
{
	const char *status = json_string_value(json_object_get(s, "status"));
	const json_t *agent = json_object_get(s, "agent"), *v,
	             *meta = json_object_get(s, "metadata");
	const char *key;
	struct sg_pubid pid;
	int ok = sg_check_keys(s, sg_check_session_keys, sg_check_session_required, "session") &&
	         sg_check_keys(agent, sg_check_agent_keys, sg_check_agent_keys, "session.agent") &&
	         sg_check_keys(json_object_get(s, "usage"), usage_keys, NULL, "session.usage");

	ok &= status && (!strcmp(status, "idle") || !strcmp(status, "running") ||
	                 !strcmp(status, "rescheduling") || !strcmp(status, "terminated"));
	ok &= canonical_time(json_string_value(json_object_get(s, "created_at")));
	ok &= canonical_time(json_string_value(json_object_get(s, "updated_at")));
	v = json_object_get(s, "archived_at");
	ok &= json_is_null(v) || canonical_time(json_string_value(v));
	ok &= json_is_string(json_object_get(s, "environment_id"));
	ok &= json_is_integer(json_object_get(agent, "version"));
	ok &= json_is_string(json_object_get(json_object_get(agent, "model"), "id"));
	ok &= json_is_object(meta);
	json_object_foreach((json_t *)meta, key, v)
		ok &= json_is_string(v);
	json_object_foreach((json_t *)json_object_get(s, "stats"), key, v) {
		ok &= json_is_real(v) && json_real_value(v) >= 0;
	}
	ok &= sg_id_decode("sesn_", json_string_value(json_object_get(s, "id")), &pid) == 0;
	ok &= !strcmp(pid.backend, backend) && !pid.scope[0] &&
	      !strcmp(pid.native, json_string_value(json_object_get(src, "id")));
	if (!ok)
		fprintf(stderr, "session invariants fail for %s\n",
		        json_string_value(json_object_get(src, "id")));
	return ok;
}

/* Translates one SandBase session of a fixture the way the mapping module would: the agent
 * reference is resolved from agents (keyed by id; borrowed, may be NULL), and the reference
 * itself ({id, version} or null) is appended to refs. Returns the north session (new). */
static json_t *translate_session(const json_t *s, const json_t *agents, const struct sg_sb_ctx *ctx,
                                 json_t *refs)
{
	struct sg_error err = {0};
	const char *aid = NULL;
	int64_t version = 0;
	json_t *agent = NULL, *out;

	if (sg_sb_session_agent_ref(s, &aid, &version)) {
		ck_assert_int_eq(
		    json_array_append_new(
		        refs, json_pack("{s:s, s:I}", "id", aid, "version", (json_int_t)version)),
		    0);
		if (json_object_get(agents, aid)) {
			agent = sg_sb_agent_to_cma(json_object_get(agents, aid), ctx, &err);
			ck_assert_msg(agent != NULL, "agent %s: %s", aid, err.message);
		}
	} else {
		ck_assert_int_eq(json_array_append_new(refs, json_null()), 0);
	}
	out = sg_sb_session_to_cma(s, agent, ctx, &err);
	ck_assert_msg(out != NULL, "%d %s", err.status, err.message);
	json_decref(agent);
	return out;
}

/* ---- event invariants --------------------------------------------------------------- */

/* The keys each type may carry beyond id, type and processed_at (SDK 1.10.0), required ones
 * marked with '!'. */
static const struct sg_check_event_type allowed[] = {
    {"user.message", {"!content"}},
    {"user.interrupt", {NULL}},
    {"system.message", {"!content"}},
    {"agent.message", {"!content"}},
    {"agent.thinking", {NULL}},
    {"agent.tool_use", {"!name", "!input"}},
    {"agent.custom_tool_use", {"!name", "!input"}},
    {"agent.mcp_tool_use", {"!name", "!input", "!mcp_server_name"}},
    {"agent.tool_result", {"!tool_use_id", "content", "is_error"}},
    {"agent.mcp_tool_result", {"!mcp_tool_use_id", "content", "is_error"}},
    {"session.status_running", {NULL}},
    {"session.status_rescheduled", {NULL}},
    {"session.status_terminated", {NULL}},
    {"session.deleted", {NULL}},
    {"session.status_idle", {"!stop_reason", "!stop_details"}},
    {"session.error", {"!error"}},
    {"span.model_request_start", {NULL}},
    {"span.model_request_end", {"!model_request_start_id", "!is_error", "!model_usage"}},
    {"user.tool_confirmation", {"!result", "!tool_use_id", "deny_message"}},
    {"user.custom_tool_result", {"!custom_tool_use_id", "content", "is_error"}},
    {"user.tool_result", {"!tool_use_id", "content", "is_error"}},
    {"session.updated", {"title", "metadata", "budget"}},
    {"session.usage", {"!usage", "budget"}},
};

/* SandBase's envelope: a non-empty id and a canonical processed_at. */
static int envelope_ok(const json_t *ev)
{
	const char *id = json_string_value(json_object_get(ev, "id"));

	return id && *id && canonical_time(json_string_value(json_object_get(ev, "processed_at")));
}

static const struct sg_check_event_rules rules = {
    .types = allowed,
    .ntypes = sizeof(allowed) / sizeof(allowed[0]),
    .known_types_only = 1,
    .envelope_ok = envelope_ok,
};

/* Envelope and key discipline of every event: a non-empty id, a known type, a canonical
 * processed_at, only the type's own keys, its required ones present. 0 when all hold. */
static int check_keys(const json_t *events, const char *label)
{
	return sg_check_event_keys(events, &rules, label);
}

/* Every event is a fixed point of the core's strict normaliser, so it is already exactly in
 * the SDK's shape below the top level too (content blocks, sources, payloads), which
 * check_keys does not look at. 0 when all are. */
static int check_sdk(const json_t *events, const char *label)
{
	const json_t *ev;
	size_t i;
	int bad = 0;

	for (i = 0; (ev = json_array_get(events, i)); i++) {
		struct sg_error err = {0};
		json_t *again = NULL;
		int rc = sg_north_event(ev, "sb1", "event", 0, &again, &err);

		if (rc != SG_NORTH_KEPT || !json_equal(again, (json_t *)ev)) {
			fprintf(stderr, "%s: [%zu] is not in the SDK's shape %s\n", label, i,
			        rc < 0 ? err.message : "");
			bad = 1;
		}
		json_decref(again);
	}
	return bad ? -1 : 0;
}

/* Every reference points at an earlier event of the right type: tool_use_id at an
 * agent.tool_use, requires_action ids at tool uses, model_request_start_id at a span start.
 * 0 when all resolve. */
static int check_links(const json_t *events, const char *label)
{
	static const char *const uses[] = {"agent.tool_use", "agent.custom_tool_use",
	                                   "agent.mcp_tool_use", NULL};
	static const char *const tool_use[] = {"agent.tool_use", NULL};

	return sg_check_links(events, tool_use, uses, label);
}

/* 0 when the events are oldest first by processed_at (ties allowed), as north lists them. */
static int check_order(const json_t *events, const char *label)
{
	int64_t prev = INT64_MIN, at;
	const json_t *ev;
	size_t i;

	for (i = 0; (ev = json_array_get(events, i)); i++) {
		if (sg_time_parse_rfc3339(json_string_value(json_object_get(ev, "processed_at")),
		                          &at) ||
		    at < prev) {
			fprintf(stderr, "%s: [%zu] is older than the event before it\n", label, i);
			return -1;
		}
		prev = at;
	}
	return 0;
}

/* Runs the pages of event case `name` in order, carrying the linking state. Returns the
 * concatenated north events (new) and sets *carries to the states after each page (new). */
static json_t *run_event_case(const char *name, json_t **carries)
{
	json_t *cj = sg_fixture_load(EVENTS, name, "ctx.json"), *all = json_array();
	json_t *carry = NULL;
	struct sg_sb_ctx ctx;
	int p;

	ck_assert_ptr_nonnull(cj);
	ctx = ctx_of(cj);
	*carries = json_array();
	for (p = 1; p <= MAX_PAGES; p++) {
		char file[32];
		struct sg_error err = {0};
		const json_t *data;
		const char *next;
		json_t *body, *got, *out_carry = NULL;

		snprintf(file, sizeof(file), "page%d.json", p);
		if (!sg_fixture_exists(EVENTS, name, file))
			break;
		body = sg_fixture_load(EVENTS, name, file);
		ck_assert_ptr_nonnull(body);
		ck_assert_msg(sg_north_page_parts(body, ctx.backend, &data, &next, &err) == 0,
		              "%s: %s", name, err.message);
		got = sg_sb_events_to_cma(data, carry, &out_carry, &ctx, &err);
		ck_assert_msg(got != NULL, "%s/%s: %d %s", name, file, err.status, err.message);
		ck_assert_ptr_nonnull(out_carry);
		ck_assert_int_eq(json_array_extend(all, got), 0);
		ck_assert_int_eq(json_array_append(*carries, out_carry), 0);
		json_decref(carry);
		carry = out_carry;
		json_decref(got);
		json_decref(body);
	}
	ck_assert_msg(p > 1, "%s: no page1.json", name);
	json_decref(carry);
	json_decref(cj);
	return all;
}

/* ---- golden fixtures ---------------------------------------------------------------- */

START_TEST(test_golden_sessions)
{
	static char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	size_t n = sg_fixture_list(SESSIONS, names, MAX_CASES), c, i;
	int failures = 0;

	ck_assert_uint_ge(n, MIN_SESSION_CASES);
	for (c = 0; c < n; c++) {
		const char *name = names[c];
		json_t *cj = sg_fixture_load(SESSIONS, name, "ctx.json");
		json_t *agents = NULL, *refs = json_array(), *got, *input, *items;
		struct sg_sb_ctx ctx;
		int ok = 1;

		ck_assert_ptr_nonnull(cj);
		ctx = ctx_of(cj);
		if (sg_fixture_exists(SESSIONS, name, "agents.json"))
			agents = sg_fixture_load(SESSIONS, name, "agents.json");
		if (sg_fixture_exists(SESSIONS, name, "list.json")) {
			struct sg_error err = {0};
			const json_t *data;
			const char *next;

			input = sg_fixture_load(SESSIONS, name, "list.json");
			ck_assert_ptr_nonnull(input);
			ck_assert_msg(sg_north_page_parts(input, ctx.backend, &data, &next, &err) ==
			                  0,
			              "%s", err.message);
			items = json_array();
			for (i = 0; i < json_array_size(data); i++) {
				json_t *s =
				    translate_session(json_array_get(data, i), agents, &ctx, refs);

				ok &= session_ok(s, json_array_get(data, i), ctx.backend);
				json_array_append_new(items, s);
			}
			got = json_pack("{s:o, s:s?}", "data", items, "next_page", next);
		} else {
			input = sg_fixture_load(SESSIONS, name, "session.json");
			ck_assert_msg(input != NULL, "%s: list.json or session.json is required",
			              name);
			got = translate_session(input, agents, &ctx, refs);
			ok &= session_ok(got, input, ctx.backend);
		}
		ok &= sg_fixture_expect(got, SESSIONS, name, "expected.json");
		ok &= sg_fixture_expect(refs, SESSIONS, name, "ref.json");
		if (!ok) {
			fprintf(stderr, "golden session case failed: %s\n", name);
			failures++;
		}
		json_decref(got);
		json_decref(input);
		json_decref(refs);
		json_decref(agents);
		json_decref(cj);
	}
	ck_assert_int_eq(failures, 0);
}
END_TEST

START_TEST(test_golden_events)
{
	static char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	size_t n = sg_fixture_list(EVENTS, names, MAX_CASES), c;
	int failures = 0;

	ck_assert_uint_ge(n, MIN_EVENT_CASES);
	for (c = 0; c < n; c++) {
		json_t *carries, *got = run_event_case(names[c], &carries);
		int ok = sg_fixture_expect(got, EVENTS, names[c], "expected.json") &&
		         sg_fixture_expect(carries, EVENTS, names[c], "carry.json") &&
		         check_keys(got, names[c]) == 0 && check_sdk(got, names[c]) == 0 &&
		         check_links(got, names[c]) == 0 && sg_check_unique_ids(got) == 0 &&
		         check_order(got, names[c]) == 0;

		if (!ok) {
			fprintf(stderr, "golden event case failed: %s\n", names[c]);
			failures++;
		}
		json_decref(got);
		json_decref(carries);
	}
	ck_assert_int_eq(failures, 0);
}
END_TEST

/* The pages of event case `name`, concatenated into one log. New reference. */
static json_t *case_log(const char *name)
{
	json_t *log = json_array();
	int p;

	for (p = 1; p <= MAX_PAGES; p++) {
		char file[32];
		json_t *body;

		snprintf(file, sizeof(file), "page%d.json", p);
		if (!sg_fixture_exists(EVENTS, name, file))
			break;
		body = sg_fixture_load(EVENTS, name, file);
		ck_assert_ptr_nonnull(body);
		ck_assert_int_eq(json_array_extend(log, json_object_get(body, "data")), 0);
		json_decref(body);
	}
	return log;
}

/* Cutting any fixture's log into two runs anywhere, with the carry passed along, gives its
 * golden answer and final carry: what the normaliser leaves out (blocks, keys, whole events)
 * never changes what links to or dates what. */
START_TEST(test_golden_split_anywhere)
{
	static char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	size_t n = sg_fixture_list(EVENTS, names, MAX_CASES), c, cut, i;

	ck_assert_uint_ge(n, MIN_EVENT_CASES);
	for (c = 0; c < n; c++) {
		json_t *cj = sg_fixture_load(EVENTS, names[c], "ctx.json");
		json_t *want = sg_fixture_load(EVENTS, names[c], "expected.json");
		json_t *carries = sg_fixture_load(EVENTS, names[c], "carry.json");
		json_t *log = case_log(names[c]);
		struct sg_sb_ctx ctx;

		ck_assert_ptr_nonnull(cj);
		ck_assert_ptr_nonnull(want);
		ck_assert_ptr_nonnull(carries);
		ctx = ctx_of(cj);
		for (cut = 0; cut <= json_array_size(log); cut++) {
			struct sg_error err = {0};
			json_t *a = json_array(), *b = json_array(), *ra, *rb;
			json_t *mid = NULL, *end = NULL;

			for (i = 0; i < json_array_size(log); i++)
				json_array_append(i < cut ? a : b, json_array_get(log, i));
			ra = sg_sb_events_to_cma(a, NULL, &mid, &ctx, &err);
			ck_assert_msg(ra != NULL, "%s: %s", names[c], err.message);
			rb = sg_sb_events_to_cma(b, mid, &end, &ctx, &err);
			ck_assert_msg(rb != NULL, "%s: %s", names[c], err.message);
			ck_assert_int_eq(json_array_extend(ra, rb), 0);
			ck_assert_msg(json_equal(ra, want), "%s: cut at %zu differs", names[c],
			              cut);
			ck_assert_msg(
			    json_equal(end, json_array_get(carries, json_array_size(carries) - 1)),
			    "%s: carry after a cut at %zu differs", names[c], cut);
			json_decref(ra);
			json_decref(rb);
			json_decref(a);
			json_decref(b);
			json_decref(mid);
			json_decref(end);
		}
		json_decref(log);
		json_decref(carries);
		json_decref(want);
		json_decref(cj);
	}
}
END_TEST

/* ---- the checks themselves ---------------------------------------------------------- */

/* A golden comparison that cannot fail proves nothing: a changed value, a missing key and an
 * extra key are each reported, and the checkers catch an envelope leak, a stray null
 * stop_details, a dangling link and a key the SDK does not declare inside a content block. */
START_TEST(test_mismatch_reported)
{
	json_t *carries, *got = run_event_case("tool_pair", &carries), *bad;
	json_t *ev;

	if (getenv("SG_UPDATE_GOLDEN")) {
		/* the comparison would rewrite the file instead of failing */
		json_decref(got);
		json_decref(carries);
		return;
	}
	ck_assert(sg_fixture_expect(got, EVENTS, "tool_pair", "expected.json"));

	bad = json_deep_copy(got);
	ev = json_array_get(bad, 4); /* the tool result */
	json_object_set_new(ev, "tool_use_id", json_string("sevt_tp01"));
	ck_assert(!sg_fixture_expect(bad, EVENTS, "tool_pair", "expected.json"));
	ck_assert_int_eq(check_links(bad, "proof"), -1);
	json_decref(bad);

	bad = json_deep_copy(got);
	json_object_del(json_array_get(bad, 0), "processed_at");
	ck_assert(!sg_fixture_expect(bad, EVENTS, "tool_pair", "expected.json"));
	ck_assert_int_eq(check_keys(bad, "proof"), -1);
	json_decref(bad);

	bad = json_deep_copy(got);
	json_object_set_new(json_array_get(bad, 2), "tokens_in", json_integer(900));
	ck_assert(!sg_fixture_expect(bad, EVENTS, "tool_pair", "expected.json"));
	ck_assert_int_eq(check_keys(bad, "proof"), -1);
	json_decref(bad);

	bad = json_deep_copy(got);
	json_object_set_new(json_array_get(json_object_get(json_array_get(bad, 4), "content"), 0),
	                    "cache_control", json_pack("{s:s}", "type", "ephemeral"));
	ck_assert(!sg_fixture_expect(bad, EVENTS, "tool_pair", "expected.json"));
	ck_assert_int_eq(check_keys(bad, "proof"), 0); /* below the top level: not its job */
	ck_assert_int_eq(check_sdk(bad, "proof"), -1);
	json_decref(bad);

	bad = json_deep_copy(got);
	json_object_set_new(json_array_get(bad, 8), "stop_details", json_object());
	ck_assert_int_eq(check_keys(bad, "proof"), -1);
	json_array_append(bad, json_array_get(bad, 0));
	ck_assert_int_eq(sg_check_unique_ids(bad), -1);
	json_decref(bad);

	json_decref(got);
	json_decref(carries);
}
END_TEST

/* ---- properties --------------------------------------------------------------------- */

START_TEST(test_same_input_same_output)
{
	json_t *ca, *cb, *a = run_event_case("session_error", &ca), *b;
	char *da, *db;

	b = run_event_case("session_error", &cb);
	da = json_dumps(a, JSON_COMPACT);
	db = json_dumps(b, JSON_COMPACT);
	ck_assert_str_eq(da, db);
	free(da);
	free(db);
	json_decref(a);
	json_decref(b);
	json_decref(ca);
	json_decref(cb);
}
END_TEST

/* A turn of `uses` tool uses (some content-shaped, some with top-level keys) whose results
 * carry no tool_use_id, some tokens (1.5 s of model time on events one second apart, so every
 * span start is held at the event before it), then an idle. New reference. */
static json_t *turn_log(int turns, int uses)
{
	json_t *log = json_array();
	int t, u, n = 0;

	for (t = 0; t < turns; t++) {
		char id[32], at[32];

#define NEXT()                                                                                     \
	(snprintf(id, sizeof(id), "sevt_g%05d", n),                                                \
	 snprintf(at, sizeof(at), "2026-06-01T%02d:%02d:%02dZ", n / 3600 % 24, n / 60 % 60,        \
	          n % 60),                                                                         \
	 n++)
		NEXT();
		json_array_append_new(log, json_pack("{s:s, s:s, s:s}", "id", id, "type",
		                                     "session.status_running", "processed_at", at));
		for (u = 0; u < uses; u++) {
			NEXT();
			json_array_append_new(
			    log, u % 2 ? json_pack(
			                     "{s:s, s:s, s:{s:s, s:{s:i}}, s:i, s:i, s:i, s:s}",
			                     "id", id, "type", "agent.tool_use", "content", "name",
			                     "read", "input", "n", u, "tokens_in", 10, "tokens_out",
			                     2, "duration_ms", 1500, "processed_at", at)
			               : json_pack("{s:s, s:s, s:s, s:{}, s:s}", "id", id, "type",
			                           "agent.tool_use", "name", "grep", "input",
			                           "processed_at", at));
		}
		for (u = 0; u < uses; u++) {
			NEXT();
			json_array_append_new(log, json_pack("{s:s, s:s, s:[{s:s, s:s}], s:s}",
			                                     "id", id, "type", "agent.tool_result",
			                                     "content", "type", "text", "text",
			                                     "ok", "processed_at", at));
		}
		NEXT();
		json_array_append_new(log, json_pack("{s:s, s:s, s:{s:s}, s:s}", "id", id, "type",
		                                     "session.status_idle", "stop_reason", "type",
		                                     "end_turn", "processed_at", at));
#undef NEXT
	}
	return log;
}

/* Cutting the log into two runs anywhere, with the carry passed along, links and dates
 * exactly as one pass does. */
START_TEST(test_split_anywhere)
{
	json_t *log = turn_log(3, 4), *whole, *carry = NULL;
	struct sg_error err = {0};
	size_t cut, i;

	whole = sg_sb_events_to_cma(log, NULL, NULL, &base_ctx, &err);
	ck_assert_ptr_nonnull(whole);
	ck_assert_int_eq(check_links(whole, "whole"), 0);
	ck_assert_int_eq(check_keys(whole, "whole"), 0);
	ck_assert_int_eq(check_sdk(whole, "whole"), 0);
	ck_assert_int_eq(sg_check_unique_ids(whole), 0);
	ck_assert_int_eq(check_order(whole, "whole"), 0);
	for (cut = 0; cut <= json_array_size(log); cut++) {
		json_t *a = json_array(), *b = json_array(), *ra, *rb, *c2 = NULL;

		for (i = 0; i < json_array_size(log); i++)
			json_array_append(i < cut ? a : b, json_array_get(log, i));
		ra = sg_sb_events_to_cma(a, NULL, &carry, &base_ctx, &err);
		ck_assert_ptr_nonnull(ra);
		rb = sg_sb_events_to_cma(b, carry, &c2, &base_ctx, &err);
		ck_assert_ptr_nonnull(rb);
		ck_assert_int_eq(json_array_extend(ra, rb), 0);
		ck_assert_msg(json_equal(ra, whole), "cut at %zu differs", cut);
		json_decref(ra);
		json_decref(rb);
		json_decref(a);
		json_decref(b);
		json_decref(carry);
		json_decref(c2);
		carry = NULL;
	}
	json_decref(whole);
	json_decref(log);
}
END_TEST

/* Without the carry, a result whose tool use was on an earlier page has nothing to link to:
 * it is dropped, never linked to a wrong tool use. */
START_TEST(test_no_carry_drops_orphan)
{
	json_t *page = parse("[{\"id\": \"e1\", \"type\": \"agent.tool_result\", "
	                     "\"content\": [], \"processed_at\": \"2026-06-01T00:00:00Z\"}]");
	struct sg_error err = {0};
	json_t *got = sg_sb_events_to_cma(page, NULL, NULL, &base_ctx, &err);

	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(json_array_size(got), 0);
	json_decref(got);
	json_decref(page);
}
END_TEST

/* An explicit tool_use_id wins over FIFO and takes its tool use off the queue; idle with
 * end_turn forgets what is still pending, so the next turn cannot mislink. */
START_TEST(test_explicit_link_and_turn_end)
{
	json_t *page =
	    parse("["
	          "{\"id\": \"a\", \"type\": \"agent.tool_use\", \"name\": \"x\", \"input\": {},"
	          " \"processed_at\": \"2026-06-01T00:00:00Z\"},"
	          "{\"id\": \"b\", \"type\": \"agent.tool_use\", \"name\": \"y\", \"input\": {},"
	          " \"processed_at\": \"2026-06-01T00:00:01Z\"},"
	          "{\"id\": \"r1\", \"type\": \"agent.tool_result\", \"tool_use_id\": \"b\","
	          " \"processed_at\": \"2026-06-01T00:00:02Z\"},"
	          "{\"id\": \"i1\", \"type\": \"session.status_idle\", \"stop_reason\": {\"type\": "
	          "\"end_turn\"}, \"processed_at\": \"2026-06-01T00:00:03Z\"},"
	          "{\"id\": \"r2\", \"type\": \"agent.tool_result\","
	          " \"processed_at\": \"2026-06-01T00:00:04Z\"},"
	          "{\"id\": \"i2\", \"type\": \"session.status_idle\", \"stop_reason\": {\"type\": "
	          "\"requires_action\", \"event_ids\": [\"zz\"]}, "
	          "\"processed_at\": \"2026-06-01T00:00:05Z\"}"
	          "]");
	struct sg_error err = {0};
	json_t *carry = NULL, *got = sg_sb_events_to_cma(page, NULL, &carry, &base_ctx, &err);
	const json_t *r1, *i2;

	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(json_array_size(got), 5); /* r2 has nothing left to answer */
	r1 = json_array_get(got, 2);
	ck_assert_str_eq(json_string_value(json_object_get(r1, "tool_use_id")), "b");
	ck_assert(json_is_false(json_object_get(r1, "is_error")));
	ck_assert_uint_eq(json_array_size(json_object_get(r1, "content")), 0);
	/* the backend's own event_ids are kept as given */
	i2 = json_array_get(got, 4);
	ck_assert_str_eq(json_string_value(json_array_get(
	                     json_object_get(json_object_get(i2, "stop_reason"), "event_ids"), 0)),
	                 "zz");
	ck_assert_uint_eq(json_array_size(json_object_get(carry, "pending")), 0);
	json_decref(carry);
	json_decref(got);
	json_decref(page);
}
END_TEST

/* processed_at of events[i] of a translated run. */
static const char *at_of(const json_t *events, size_t i)
{
	return json_string_value(json_object_get(json_array_get(events, i), "processed_at"));
}

/* A span start is never older than the event emitted before it, in this run or (through the
 * carry) the run before; nor newer than its own end when SandBase's own times run backwards,
 * which the gateway does not reorder. */
START_TEST(test_span_start_clamped)
{
	json_t *page =
	    parse("["
	          "{\"id\": \"a\", \"type\": \"agent.message\", \"content\": [],"
	          " \"processed_at\": \"2026-06-01T00:00:10Z\"},"
	          "{\"id\": \"b\", \"type\": \"agent.message\", \"content\": [], \"tokens_out\": 5,"
	          " \"duration_ms\": 3000, \"processed_at\": \"2026-06-01T00:00:11Z\"},"
	          "{\"id\": \"c\", \"type\": \"agent.message\", \"content\": [], \"tokens_out\": 5,"
	          " \"duration_ms\": 100, \"processed_at\": \"2026-06-01T00:00:05Z\"},"
	          "{\"id\": \"d\", \"type\": \"interrupt.response\", \"processed_at\": "
	          "\"2026-06-01T00:00:20Z\"},"
	          "{\"id\": \"e\", \"type\": \"agent.message\", \"content\": [], \"tokens_in\": 1,"
	          " \"duration_ms\": 9000, \"processed_at\": \"2026-06-01T00:00:21Z\"}"
	          "]");
	json_t *carry = parse("{\"pending\": [], \"at\": 1780272009000000}"), *carry_out = NULL;
	struct sg_error err = {0};
	json_t *got = sg_sb_events_to_cma(page, NULL, &carry_out, &base_ctx, &err);

	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(json_array_size(got), 10);
	ck_assert_str_eq(at_of(got, 1), "2026-06-01T00:00:10Z"); /* b: 00:08 held at a */
	ck_assert_str_eq(at_of(got, 4), "2026-06-01T00:00:05Z"); /* c: before b, not after c */
	ck_assert_str_eq(at_of(got, 5), "2026-06-01T00:00:05Z");
	/* the dropped interrupt.response (00:20) emitted nothing, so it holds nothing back */
	ck_assert_str_eq(at_of(got, 7), "2026-06-01T00:00:12Z");
	ck_assert_int_eq(json_integer_value(json_object_get(carry_out, "at")),
	                 1780272021000000); /* 00:00:21Z */
	json_decref(got);
	json_decref(carry_out);

	/* a carried time (00:09) holds the first span start of the next run: b alone */
	json_decref(page);
	page = parse("[{\"id\": \"b\", \"type\": \"agent.message\", \"content\": [],"
	             " \"tokens_out\": 5, \"duration_ms\": 3000,"
	             " \"processed_at\": \"2026-06-01T00:00:11Z\"}]");
	got = sg_sb_events_to_cma(page, NULL, NULL, &base_ctx, &err);
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(at_of(got, 0), "2026-06-01T00:00:08Z"); /* nothing before it */
	json_decref(got);
	got = sg_sb_events_to_cma(page, carry, NULL, &base_ctx, &err);
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(at_of(got, 0), "2026-06-01T00:00:09Z");
	json_decref(got);
	json_decref(carry);
	json_decref(page);
}
END_TEST

/* ---- sessions: edges ---------------------------------------------------------------- */

#define GOOD_SESSION                                                                               \
	"\"id\": \"sess_1\", \"status\": \"idle\", \"agent_id\": \"agent_1\", "                    \
	"\"created_at\": \"2026-05-29T10:00:00Z\""

static const struct {
	const char *session, *needle;
} bad_sessions[] = {
    {"[]", "session is not a JSON object"},
    {"\"<html>502</html>\"", "session is not a JSON object"},
    {"{\"status\": \"idle\"}", "session id is missing, empty or not a string"},
    {"{\"id\": \"\", \"status\": \"idle\"}", "session id is missing"},
    {"{\"id\": 7}", "session id is missing"},
    {"{\"id\": \"sess_1\", \"agent_id\": \"a\", \"created_at\": \"2026-05-29T10:00:00Z\"}",
     "session 'sess_1': status is missing or not a string"},
    {"{\"id\": \"sess_1\", \"status\": \"paused\", \"agent_id\": \"a\","
     " \"created_at\": \"2026-05-29T10:00:00Z\"}",
     "session 'sess_1': status 'paused' is not one of idle, running, rescheduling, terminated"},
    {"{\"id\": \"sess_1\", \"status\": \"IDLE\", \"agent_id\": \"a\","
     " \"created_at\": \"2026-05-29T10:00:00Z\"}",
     "status 'IDLE' is not one of"},
    {"{\"id\": \"sess_1\", \"status\": \"idle\", \"agent_id\": \"a\"}",
     "created_at is missing or not a string"},
    {"{\"id\": \"sess_1\", \"status\": \"idle\", \"agent_id\": \"a\", \"created_at\": 5}",
     "created_at is missing or not a string"},
    {"{\"id\": \"sess_1\", \"status\": \"idle\", \"agent_id\": \"a\","
     " \"created_at\": \"yesterday\"}",
     "created_at 'yesterday' is not an RFC 3339 timestamp"},
    {"{\"id\": \"sess_1\", \"status\": \"idle\", \"agent_id\": \"a\","
     " \"created_at\": \"2026-05-29 10:00:00\"}",
     "is not an RFC 3339 timestamp"},
    {"{" GOOD_SESSION ", \"updated_at\": \"2026-02-30T00:00:00Z\"}",
     "updated_at '2026-02-30T00:00:00Z' is not an RFC 3339 timestamp"},
    {"{" GOOD_SESSION ", \"archived_at\": true}", "archived_at is missing or not a string"},
    {"{" GOOD_SESSION ", \"metadata\": []}", "metadata is not an object"},
    {"{" GOOD_SESSION ", \"environment_id\": 5}", "environment_id is not a string"},
    {"{\"id\": \"sess_1\", \"status\": \"idle\", \"created_at\": \"2026-05-29T10:00:00Z\"}",
     "agent_id is missing, empty or not a string"},
    {"{\"id\": \"sess_1\", \"status\": \"idle\", \"created_at\": \"2026-05-29T10:00:00Z\","
     " \"agent\": {\"name\": \"Nameless\", \"model\": \"m\"}}",
     "agent.id is missing, empty or not a string"},
};

START_TEST(test_bad_session)
{
	json_t *s = parse(bad_sessions[_i].session);
	struct sg_error err = {0};

	ck_assert_ptr_null(sg_sb_session_to_cma(s, NULL, &base_ctx, &err));
	sg_check_502(&err, "sb1", bad_sessions[_i].needle);
	json_decref(s);
}
END_TEST

START_TEST(test_session_edges)
{
	char sid[256];
	json_t *s, *out, *agent, *want;
	struct sg_error err = {0};
	struct sg_sb_ctx ctx = {.backend = "sb1"};
	struct sg_pubid pid;

	/* 199 bytes is the most an id field holds; 200 is refused, not truncated */
	memset(sid, 'x', 199);
	sid[199] = '\0';
	s = json_pack("{s:s, s:s, s:s, s:s}", "id", sid, "status", "idle", "agent_id", "a",
	              "created_at", "2026-05-29T10:00:00Z");
	out = sg_sb_session_to_cma(s, NULL, &ctx, &err);
	ck_assert_msg(out != NULL, "%s", err.message);
	ck_assert_int_eq(sg_id_decode("sesn_", json_string_value(json_object_get(out, "id")), &pid),
	                 0);
	ck_assert_str_eq(pid.native, sid);
	json_decref(out);
	json_decref(s);
	memset(sid, 'y', 200);
	sid[200] = '\0';
	s = json_pack("{s:s, s:s, s:s, s:s}", "id", sid, "status", "idle", "agent_id", "a",
	              "created_at", "2026-05-29T10:00:00Z");
	ck_assert_ptr_null(sg_sb_session_to_cma(s, NULL, &ctx, &err));
	sg_check_502(&err, "sb1", "id (200 bytes) is too long for a public id");
	json_decref(s);

	/* a running session created "after now" (clock skew) lasts 0 s, not a negative time;
	 * the caller's agent (from sg_sb_agent_to_cma) is copied, not shared */
	ctx.now_us = 0;
	s = parse("{" GOOD_SESSION ", \"status\": \"running\"}");
	out = parse("{\"id\": \"agent_1\", \"name\": \"n\", \"model\": \"m\", \"created_at\":"
	            " \"2026-05-01T00:00:00Z\", \"metadata\": {\"k\": \"v\"}}");
	agent = sg_sb_agent_to_cma(out, &ctx, &err);
	ck_assert_ptr_nonnull(agent);
	json_decref(out);
	out = sg_sb_session_to_cma(s, agent, &ctx, &err);
	ck_assert_ptr_nonnull(out);
	ck_assert(json_real_value(
	              json_object_get(json_object_get(out, "stats"), "duration_seconds")) == 0.0);
	ck_assert_ptr_ne(json_object_get(out, "agent"), agent);
	/* the snapshot is the agent without what only the agent resource has */
	want = json_deep_copy(agent);
	json_object_del(want, "created_at");
	json_object_del(want, "updated_at");
	json_object_del(want, "archived_at");
	json_object_del(want, "metadata");
	ck_assert(json_equal(json_object_get(out, "agent"), want));
	json_decref(want);
	json_decref(out);

	/* an agent that is not an object is the caller's bug */
	json_decref(agent);
	agent = json_string("x");
	ck_assert_ptr_null(sg_sb_session_to_cma(s, agent, &ctx, &err));
	ck_assert_int_eq(err.status, 500);
	json_decref(agent);
	json_decref(s);

	/* metadata that is already full gets no sandbase.* keys; a client's own sandbase.source
	 * is never overwritten */
	s = parse("{" GOOD_SESSION ", \"source\": \"direct\", \"agent_version_id\": \"v\","
	          " \"metadata\": {\"sandbase.source\": \"mine\", \"k2\": \"v\", \"k3\": \"v\","
	          " \"k4\": \"v\", \"k5\": \"v\", \"k6\": \"v\", \"k7\": \"v\", \"k8\": \"v\","
	          " \"k9\": \"v\", \"k10\": \"v\", \"k11\": \"v\", \"k12\": \"v\", \"k13\": \"v\","
	          " \"k14\": \"v\", \"k15\": \"v\"}}");
	out = sg_sb_session_to_cma(s, NULL, &ctx, &err);
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(json_object_size(json_object_get(out, "metadata")), 16);
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(out, "metadata"), "sandbase.source")),
	    "mine");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(out, "metadata"),
	                                                   "sandbase.agent_version_id")),
	                 "v");
	json_decref(out);
	json_decref(s);

	/* a bare-string agent names the agent */
	s = parse("{\"id\": \"s\", \"status\": \"idle\", \"agent\": \"agent_str\","
	          " \"created_at\": \"2026-05-29T10:00:00Z\"}");
	out = sg_sb_session_to_cma(s, NULL, &ctx, &err);
	ck_assert_ptr_nonnull(out);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(out, "agent"), "id")),
	                 "agent_str");
	json_decref(out);
	json_decref(s);
}
END_TEST

START_TEST(test_agent_ref)
{
	static const struct {
		const char *session;
		int ref;
		const char *id;
		int64_t version;
	} cases[] = {
	    {"{\"agent_id\": \"a\", \"agent_version\": 3}", 1, "a", 3},
	    {"{\"agent_id\": \"a\", \"agent_version\": null}", 1, "a", -1},
	    {"{\"agent_id\": \"a\", \"agent_version\": 0}", 1, "a", -1},
	    {"{\"agent\": {\"type\": \"agent\", \"id\": \"b\", \"version\": 7}}", 1, "b", 7},
	    {"{\"agent_id\": \"a\", \"agent\": {\"type\": \"agent\", \"id\": \"b\"}}", 1, "a", -1},
	    {"{\"agent\": \"c\"}", 1, "c", -1},
	    {"{\"agent_id\": \"a\", \"agent\": {\"id\": \"a\", \"name\": \"A\"}}", 0, NULL, 0},
	    {"{\"agent_id\": \"a\", \"agent\": {\"id\": \"a\", \"model\": {\"id\": \"m\"}}}", 0,
	     NULL, 0},
	    {"{\"agent_id\": \"\"}", 0, NULL, 0},
	    {"{}", 0, NULL, 0},
	    {"[]", 0, NULL, 0},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *s = parse(cases[i].session);
		const char *id = NULL;
		int64_t version = 42;

		ck_assert_msg(sg_sb_session_agent_ref(s, &id, &version) == cases[i].ref, "case %zu",
		              i);
		if (cases[i].ref) {
			ck_assert_str_eq(id, cases[i].id);
			ck_assert_int_eq(version, cases[i].version);
		}
		json_decref(s);
	}
}
END_TEST

START_TEST(test_agent_to_cma)
{
	struct sg_error err = {0};
	json_t *a, *out, *want;

	a = parse("[]");
	ck_assert_ptr_null(sg_sb_agent_to_cma(a, &base_ctx, &err));
	sg_check_502(&err, "sb1", "agent is not a JSON object");
	json_decref(a);
	a = parse("{\"name\": \"x\"}");
	ck_assert_ptr_null(sg_sb_agent_to_cma(a, &base_ctx, &err));
	sg_check_502(&err, "sb1", "agent.id is missing");
	json_decref(a);
	a = parse("{\"id\": \"x\", \"name\": \"x\", \"model\": \"m\"}");
	ck_assert_ptr_null(sg_sb_agent_to_cma(a, &base_ctx, &err));
	sg_check_502(&err, "sb1", "agent has neither created_at nor updated_at");
	json_decref(a);
	a = parse("{\"id\": \"x\", \"name\": \"x\", \"model\": \"m\", \"created_at\": \"soon\"}");
	ck_assert_ptr_null(sg_sb_agent_to_cma(a, &base_ctx, &err));
	sg_check_502(&err, "sb1", "agent.created_at is not an RFC 3339 timestamp");
	json_decref(a);
	/* updated_at stands in for a missing created_at; metadata keeps its string pairs */
	a = parse("{\"id\": \"x\", \"name\": \"x\", \"model\": \"m\", \"updated_at\":"
	          " \"2026-05-02T10:00:00+02:00\", \"archived_at\": \"2026-05-03T00:00:00Z\","
	          " \"metadata\": {\"a\": \"b\", \"n\": 1}}");
	out = sg_sb_agent_to_cma(a, &base_ctx, &err);
	ck_assert_msg(out != NULL, "%s", err.message);
	ck_assert_str_eq(json_string_value(json_object_get(out, "created_at")),
	                 "2026-05-02T08:00:00Z");
	ck_assert_str_eq(json_string_value(json_object_get(out, "updated_at")),
	                 "2026-05-02T08:00:00Z");
	ck_assert_str_eq(json_string_value(json_object_get(out, "archived_at")),
	                 "2026-05-03T00:00:00Z");
	want = parse("{\"a\": \"b\"}");
	ck_assert(json_equal(json_object_get(out, "metadata"), want));
	json_decref(want);
	json_decref(out);
	json_decref(a);

	/* odd values take their documented defaults rather than failing; tools the SDK cannot
	 * express (no server name, a default_config without its required keys, a bare string)
	 * are dropped, and keys it does not declare (a config's "rate") left out */
	a = parse(
	    "{\"id\": \"agent_9\", \"name\": \"\", \"description\": 5, \"version\": 0,"
	    " \"created_at\": \"2026-05-01T00:00:00Z\","
	    " \"model\": {\"id\": \"m\", \"effort\": \"max\", \"speed\": \"warp\","
	    "  \"inference_geo\": \"eu\"},"
	    " \"execution_identity\": {\"type\": \"aws_role\"},"
	    " \"mcp_servers\": {\"x\": 1}, \"skills\": [{\"skill_id\": \"s\", \"version\": "
	    "\"2026-01\"}, 3, {\"version\": 1}],"
	    " \"tools\": [{\"type\": \"mcp_toolset\", \"configs\": [], \"default_config\": {}},"
	    "  {\"type\": \"mcp_toolset\", \"configs\": [], \"default_config\": {},"
	    "   \"mcp_server_name\": \"gh\"}, \"bash\", {\"type\": \"custom\", \"name\": \"c\","
	    "   \"description\": \"d\", \"input_schema\": {\"type\": \"object\"}},"
	    "  {\"type\": \"mcp_toolset\", \"mcp_server_name\": \"crm\", \"configs\": [{\"name\":"
	    "   \"lookup\", \"enabled\": true, \"permission_policy\": {\"type\": \"auto\"},"
	    "   \"rate\": 5}], \"default_config\": {\"enabled\": false, \"permission_policy\":"
	    "   {\"type\": \"always_ask\"}}}],"
	    " \"multiagent\": {\"type\": \"coordinator\"}}");
	out = sg_sb_agent_to_cma(a, &base_ctx, &err);
	ck_assert_ptr_nonnull(out);
	want = parse("{\"id\": \"agent_9\", \"type\": \"agent\", \"name\": \"agent_9\","
	             " \"description\": null, \"system\": null, \"version\": 1,"
	             " \"model\": {\"id\": \"m\", \"effort\": {\"type\": \"max\"},"
	             "  \"inference_geo\": \"eu\"},"
	             " \"execution_identity\": {\"type\": \"service_account\"},"
	             " \"mcp_servers\": [], \"skills\": [{\"skill_id\": \"s\", \"type\": "
	             "\"custom\", \"version\": \"2026-01\"}],"
	             " \"tools\": [{\"type\": \"custom\", \"name\": \"c\", \"description\": \"d\","
	             "   \"input_schema\": {\"type\": \"object\"}},"
	             "  {\"type\": \"mcp_toolset\", \"mcp_server_name\": \"crm\", \"configs\":"
	             "   [{\"name\": \"lookup\", \"enabled\": true, \"permission_policy\":"
	             "   {\"type\": \"auto\"}}], \"default_config\": {\"enabled\": false,"
	             "   \"permission_policy\": {\"type\": \"always_ask\"}}}],"
	             " \"multiagent\": null, \"metadata\": {}, \"archived_at\": null,"
	             " \"created_at\": \"2026-05-01T00:00:00Z\", \"updated_at\":"
	             " \"2026-05-01T00:00:00Z\"}");
	ck_assert(json_equal(out, want));
	json_decref(want);
	json_decref(out);
	json_decref(a);
}
END_TEST

/* ---- events: edges ------------------------------------------------------------------ */

static void expect_event_502(const char *json_text, const char *needle)
{
	struct sg_error err = {0};
	json_t *log = parse(json_text), *carry = json_true();

	ck_assert_msg(sg_sb_events_to_cma(log, NULL, &carry, &base_ctx, &err) == NULL,
	              "accepted: %s", json_text);
	ck_assert_ptr_null(carry); /* no state is handed out on failure */
	sg_check_502(&err, "sb1", needle);
	json_decref(log);
}

#define AT "\"processed_at\": \"2026-06-01T00:00:00Z\""

START_TEST(test_wrong_event_shapes)
{
	char longid[400], text[600];

	expect_event_502("{\"data\": []}", "the event list is not an array");
	expect_event_502("null", "the event list is not an array");
	expect_event_502("[42]", "events[0]: event is not an object");
	expect_event_502("[{\"type\": \"user.message\", " AT "}]", "events[0]: id is missing");
	expect_event_502("[{\"id\": \"\", \"type\": \"user.message\", " AT "}]", "id is missing");
	expect_event_502("[{\"id\": \"e\", " AT "}]", "events[0] 'e': type is missing");
	expect_event_502("[{\"id\": \"e\", \"type\": \"user.interrupt\"}]",
	                 "processed_at is null and created_at is not a timestamp");
	expect_event_502("[{\"id\": \"e\", \"type\": \"user.interrupt\", \"processed_at\": null,"
	                 " \"created_at\": \"soon\"}]",
	                 "processed_at is null and created_at is not a timestamp");
	expect_event_502("[{\"id\": \"e\", \"type\": \"user.interrupt\","
	                 " \"processed_at\": \"2026-06-01\"}]",
	                 "processed_at is not an RFC 3339 timestamp");
	expect_event_502("[{\"id\": \"e\", \"type\": \"agent.message\", \"tokens_in\": \"5\", " AT
	                 "}]",
	                 "tokens_in is not a non-negative integer");
	expect_event_502("[{\"id\": \"e\", \"type\": \"agent.message\", \"tokens_out\": -1, " AT
	                 "}]",
	                 "tokens_out is not a non-negative integer");
	expect_event_502("[{\"id\": \"e\", \"type\": \"agent.message\", \"duration_ms\": 1.5, " AT
	                 "}]",
	                 "duration_ms is not a non-negative integer");
	expect_event_502("[{\"id\": \"e\", \"type\": \"agent.message\", \"tokens_in\": 1,"
	                 " \"duration_ms\": 9223372036854775807, " AT "}]",
	                 "duration_ms reaches back before the year 1");
	expect_event_502("[{\"id\": \"e\", \"type\": \"agent.message\", \"tokens_in\": 1,"
	                 " \"duration_ms\": 1000, \"processed_at\": \"0001-01-01T00:00:00Z\"}]",
	                 "duration_ms reaches back before the year 1");
	expect_event_502("[{\"id\": \"e\", \"type\": \"user.message\", \"content\": null, " AT "}]",
	                 "events[0] 'e': content is missing or not an array");
	expect_event_502("[{\"id\": \"e\", \"type\": \"agent.message\", \"content\": {}, " AT "}]",
	                 "content is missing or not an array");
	expect_event_502("[{\"id\": \"e\", \"type\": \"agent.tool_use\", \"content\": {\"input\":"
	                 " {}}, " AT "}]",
	                 "agent.tool_use has no tool name");
	/* the bad event is located */
	expect_event_502("[{\"id\": \"ok\", \"type\": \"user.interrupt\", " AT "}, 7]",
	                 "events[1]: event is not an object");
	memset(longid, 'i', 257);
	longid[257] = '\0';
	snprintf(text, sizeof(text), "[{\"id\": \"%s\", \"type\": \"user.interrupt\", " AT "}]",
	         longid);
	expect_event_502(text, "longer than 256 bytes");
}
END_TEST

/* What is not a wrong shape: unknown keys, a bare-string tool input that is not an object,
 * a string stop reason, a null stop_reason, garbage in optional places. */
START_TEST(test_lenient_events)
{
	json_t *log = parse(
	    "[{\"id\": \"t\", \"type\": \"agent.tool_use\", \"name\": \"n\", \"input\": \"[1]\","
	    "  \"extra\": {\"x\": 1}, " AT "},"
	    " {\"id\": \"i\", \"type\": \"session.status_idle\", \"stop_reason\": "
	    "\"budget_reached\","
	    "  " AT "},"
	    " {\"id\": \"j\", \"type\": \"session.status_idle\", \"stop_reason\": {\"type\": "
	    "\"napping\"}, " AT "},"
	    " {\"id\": \"k\", \"type\": \"session.error\", " AT "},"
	    " {\"id\": \"u\", \"type\": \"user.tool_confirmation\", \"tool_use_id\": \"t\", " AT
	    "},"
	    " {\"id\": \"v\", \"type\": \"user.tool_confirmation\", \"tool_use_id\": \"t\","
	    "  \"result\": \"allow\", \"deny_message\": null, " AT "},"
	    " {\"id\": \"w\", \"type\": \"session.usage\", \"data\": {\"usage\": "
	    "{\"input_tokens\": "
	    "3}}, " AT "}]");
	struct sg_error err = {0};
	json_t *got = sg_sb_events_to_cma(log, NULL, NULL, &base_ctx, &err);

	ck_assert_msg(got != NULL, "%s", err.message);
	ck_assert_int_eq(check_keys(got, "lenient"), 0);
	ck_assert_int_eq(check_sdk(got, "lenient"), 0);
	ck_assert(json_is_object(json_object_get(json_array_get(got, 0), "input")));
	ck_assert_uint_eq(json_object_size(json_object_get(json_array_get(got, 0), "input")), 0);
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_object_get(json_array_get(got, 1), "stop_reason"), "type")),
	                 "budget_reached");
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_object_get(json_array_get(got, 2), "stop_reason"), "type")),
	                 "end_turn");
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_object_get(json_array_get(got, 3), "error"), "message")),
	                 "session error");
	/* the confirmation without result is dropped, the complete one kept */
	ck_assert_uint_eq(json_array_size(got), 6);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(got, 4), "result")),
	                 "allow");
	ck_assert_ptr_null(json_object_get(json_array_get(got, 4), "deny_message"));
	ck_assert_int_eq(json_integer_value(json_object_get(
	                     json_object_get(json_array_get(got, 5), "usage"), "input_tokens")),
	                 3);
	json_decref(got);
	json_decref(log);
}
END_TEST

/* Payloads taken from SandBase as they are, after the normaliser: an event it drops (a
 * user.tool_result whose link is not a string) takes no tool use off the queue, so the next
 * id-less result still links to it; a value it could only turn into null is left out, not
 * nulled (null would say "cleared"); metadata and usage read as sessions read them. */
START_TEST(test_normalised_payloads)
{
	json_t *log = parse(
	    "[{\"id\": \"a\", \"type\": \"agent.tool_use\", \"name\": \"x\", " AT "},"
	    " {\"id\": \"u\", \"type\": \"user.tool_result\", \"tool_use_id\": 7, " AT "},"
	    " {\"id\": \"r\", \"type\": \"agent.tool_result\", \"content\": [{\"type\":"
	    "  \"thinking_delta\", \"thinking\": \"t\"}], " AT "},"
	    " {\"id\": \"s\", \"type\": \"session.updated\", \"title\": 5,"
	    "  \"budget\": {\"type\": \"credits\"}, \"metadata\": {\"n\": 1, \"k\": \"v\"}, " AT
	    "},"
	    " {\"id\": \"g\", \"type\": \"session.usage\", \"usage\": \"n/a\", " AT "},"
	    " {\"id\": \"c\", \"type\": \"user.tool_confirmation\", \"tool_use_id\": \"a\","
	    "  \"result\": \"deny\", \"deny_message\": 5, " AT "}]");
	json_t *want = parse(
	    "[{\"id\": \"a\", \"type\": \"agent.tool_use\", \"name\": \"x\", \"input\": {}, " AT
	    "},"
	    " {\"id\": \"r\", \"type\": \"agent.tool_result\", \"tool_use_id\": \"a\","
	    "  \"content\": [], \"is_error\": false, " AT "},"
	    " {\"id\": \"s\", \"type\": \"session.updated\","
	    "  \"metadata\": {\"n\": \"1\", \"k\": \"v\"}, " AT "},"
	    " {\"id\": \"g\", \"type\": \"session.usage\", \"usage\": {}, " AT "},"
	    " {\"id\": \"c\", \"type\": \"user.tool_confirmation\", \"tool_use_id\": \"a\","
	    "  \"result\": \"deny\", " AT "}]");
	struct sg_error err = {0};
	json_t *carry = NULL, *got = sg_sb_events_to_cma(log, NULL, &carry, &base_ctx, &err);

	ck_assert_msg(got != NULL, "%s", err.message);
	ck_assert(json_equal(got, want));
	ck_assert_uint_eq(json_array_size(json_object_get(carry, "pending")), 0);
	ck_assert_int_eq(check_sdk(got, "payloads"), 0);
	ck_assert_int_eq(check_links(got, "payloads"), 0);
	json_decref(carry);
	json_decref(got);
	json_decref(want);
	json_decref(log);
}
END_TEST

START_TEST(test_caps)
{
	struct sg_error err = {0};
	json_t *log = json_array(), *one, *carry = NULL, *got, *ids;
	char id[32];
	size_t i;

	/* too many events: refused before any is read */
	one = json_object();
	for (i = 0; i <= EVENTS_CAP; i++)
		json_array_append(log, one);
	ck_assert_ptr_null(sg_sb_events_to_cma(log, NULL, NULL, &base_ctx, &err));
	sg_check_502(&err, "sb1", "100001 events, more than the limit of 100000");
	json_decref(one);
	json_decref(log);

	/* more pending tool uses than the cap: the oldest are forgotten, the carry stays small
	 * enough for a page cursor */
	log = json_array();
	for (i = 0; i < PENDING_CAP + 44; i++) {
		snprintf(id, sizeof(id), "use%03zu", i);
		json_array_append_new(log, json_pack("{s:s, s:s, s:s, s:{}, s:s}", "id", id, "type",
		                                     "agent.tool_use", "name", "t", "input",
		                                     "processed_at", "2026-06-01T00:00:00Z"));
	}
	json_array_append_new(log,
	                      json_pack("{s:s, s:s, s:{s:s}, s:s}", "id", "idle", "type",
	                                "session.status_idle", "stop_reason", "type",
	                                "requires_action", "processed_at", "2026-06-01T00:00:01Z"));
	got = sg_sb_events_to_cma(log, NULL, &carry, &base_ctx, &err);
	ck_assert_ptr_nonnull(got);
	ids = json_object_get(json_object_get(json_array_get(got, PENDING_CAP + 44), "stop_reason"),
	                      "event_ids");
	ck_assert_uint_eq(json_array_size(ids), PENDING_CAP);
	ck_assert_str_eq(json_string_value(json_array_get(ids, 0)), "use044");
	ck_assert_uint_eq(json_array_size(json_object_get(carry, "pending")), PENDING_CAP);
	ck_assert_str_eq(json_string_value(json_array_get(
	                     json_array_get(json_object_get(carry, "pending"), 0), 0)),
	                 "use044");
	ck_assert_int_eq(check_links(got, "cap"), 0);
	json_decref(got);
	json_decref(log);

	/* the full carry is accepted back */
	log = json_array();
	got = sg_sb_events_to_cma(log, carry, NULL, &base_ctx, &err);
	ck_assert_ptr_nonnull(got);
	json_decref(got);
	json_decref(log);
	json_decref(carry);

	/* long ids: the id bytes bound the queue too (5 × 200 bytes fit in 1024, 6 do not) */
	log = json_array();
	for (i = 0; i < 8; i++) {
		char longid[201];

		memset(longid, 'a' + (int)i, 200);
		longid[200] = '\0';
		json_array_append_new(log, json_pack("{s:s, s:s, s:s, s:{}, s:s}", "id", longid,
		                                     "type", "agent.tool_use", "name", "t", "input",
		                                     "processed_at", "2026-06-01T00:00:00Z"));
	}
	got = sg_sb_events_to_cma(log, NULL, &carry, &base_ctx, &err);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(json_array_size(json_object_get(carry, "pending")),
	                  PENDING_ID_BYTES / 200);
	ck_assert_int_eq(json_string_value(json_array_get(
	                     json_array_get(json_object_get(carry, "pending"), 0), 0))[0],
	                 'd');
	{
		char *text = json_dumps(carry, JSON_COMPACT);

		ck_assert_uint_lt(strlen(text), 2048);
		free(text);
	}
	json_decref(got);
	json_decref(log);
	json_decref(carry);
}
END_TEST

/* A linking state the module did not write is the caller's bug: 500. */
START_TEST(test_bad_carry)
{
	static const char *const carries[] = {
	    "[]",
	    "{\"pending\": \"x\"}",
	    "{\"pending\": [[\"a\", \"agent.message\"]]}",
	    "{\"pending\": [[\"\", \"agent.tool_use\"]]}",
	    "{\"pending\": [[\"a\", \"agent.tool_use\", 3]]}",
	    "{\"pending\": [{\"id\": \"a\", \"type\": \"agent.tool_use\"}]}",
	    "{\"pending\": [1]}",
	    "{\"pending\": [], \"at\": \"2026-06-01T00:00:00Z\"}",
	    "{\"pending\": [], \"at\": 1.5}",
	    "{\"pending\": [], \"at\": 253402300800000000}",
	};
	json_t *log = parse("[]");
	size_t i;

	for (i = 0; i < sizeof(carries) / sizeof(carries[0]); i++) {
		struct sg_error err = {0};
		json_t *c = parse(carries[i]);

		ck_assert_ptr_null(sg_sb_events_to_cma(log, c, NULL, &base_ctx, &err));
		ck_assert_int_eq(err.status, 500);
		json_decref(c);
	}
	json_decref(log);
}
END_TEST

START_TEST(test_no_context)
{
	struct sg_error err = {0};
	struct sg_sb_ctx none = {0};
	json_t *s = parse("{" GOOD_SESSION "}"), *log = parse("[]");
	const char *id;
	int64_t version;

	ck_assert_ptr_null(sg_sb_session_to_cma(s, NULL, NULL, &err));
	ck_assert_int_eq(err.status, 500);
	ck_assert_ptr_null(sg_sb_session_to_cma(s, NULL, &none, &err));
	ck_assert_int_eq(err.status, 500);
	ck_assert_ptr_null(sg_sb_events_to_cma(log, NULL, NULL, NULL, &err));
	ck_assert_int_eq(err.status, 500);
	ck_assert_ptr_null(sg_sb_agent_to_cma(s, NULL, &err));
	ck_assert_int_eq(err.status, 500);
	ck_assert_int_eq(sg_sb_session_agent_ref(NULL, &id, &version), 0);
	json_decref(s);
	json_decref(log);
}
END_TEST

/* ---- allocation failures ------------------------------------------------------------ */

/* Fails each jansson allocation of a translation in turn: every run either fails with a 500
 * or succeeds with the whole answer (the same as without failures: a failed allocation in the
 * lenient normaliser is never mistaken for a part to leave out), and frees everything it
 * allocated. */
START_TEST(test_allocation_failures)
{
	static const char *const ev_cases[] = {"tool_pair",     "carry_fifo",    "requires_action",
	                                       "session_error", "sandbase_only", "content_blocks"};
	static const char *const s_cases[] = {"embedded_agent", "running", "agent_argument"};
	size_t c;

	for (c = 0; c < sizeof(ev_cases) / sizeof(ev_cases[0]); c++) {
		json_t *body = sg_fixture_load(EVENTS, ev_cases[c], "page1.json");
		const json_t *data = json_object_get(body, "data");
		struct sg_error ref_err = {0};
		json_t *ref;
		long n;

		ck_assert_ptr_nonnull(data);
		ref = sg_sb_events_to_cma(data, NULL, NULL, &base_ctx, &ref_err);
		ck_assert_msg(ref != NULL, "%s: %s", ev_cases[c], ref_err.message);
		for (n = 0;; n++) {
			struct sg_error err = {0};
			json_t *got, *carry = NULL;
			long live;

			sg_fixture_alloc_begin(n);
			got = sg_sb_events_to_cma(data, NULL, &carry, &base_ctx, &err);
			if (got) {
				ck_assert_ptr_nonnull(carry);
				ck_assert_msg(json_equal(got, ref), "%s: a different answer at %ld",
				              ev_cases[c], n);
			} else {
				ck_assert_msg(sg_fixture_alloc_fired(),
				              "%s: failed without a failed allocation: %s",
				              ev_cases[c], err.message);
				ck_assert_int_eq(err.status, 500);
				ck_assert_ptr_null(carry);
			}
			json_decref(got);
			json_decref(carry);
			live = sg_fixture_alloc_end();
			ck_assert_msg(live == 0, "%s: %ld allocations leaked at %ld", ev_cases[c],
			              live, n);
			if (!sg_fixture_alloc_fired())
				break;
		}
		json_decref(body);
		json_decref(ref);
	}
	for (c = 0; c < sizeof(s_cases) / sizeof(s_cases[0]); c++) {
		json_t *s = sg_fixture_load(SESSIONS, s_cases[c], "session.json");
		json_t *agents = sg_fixture_exists(SESSIONS, s_cases[c], "agents.json")
		                     ? sg_fixture_load(SESSIONS, s_cases[c], "agents.json")
		                     : NULL;
		const json_t *raw = json_object_get(agents, "agent_01HqResearch");
		struct sg_sb_ctx ctx = {.backend = "sandbase"};
		long n;

		ck_assert_ptr_nonnull(s);
		for (n = 0;; n++) {
			struct sg_error err = {0};
			json_t *got, *agent = NULL;
			long live;

			sg_fixture_alloc_begin(n);
			if (raw)
				agent = sg_sb_agent_to_cma(raw, &ctx, &err);
			got = !raw || agent ? sg_sb_session_to_cma(s, agent, &ctx, &err) : NULL;
			if (!got) {
				ck_assert_msg(sg_fixture_alloc_fired(),
				              "%s: failed without a failed allocation", s_cases[c]);
				ck_assert_int_eq(err.status, 500);
			}
			json_decref(got);
			json_decref(agent);
			live = sg_fixture_alloc_end();
			ck_assert_msg(live == 0, "%s: %ld allocations leaked at %ld", s_cases[c],
			              live, n);
			if (!sg_fixture_alloc_fired())
				break;
		}
		json_decref(s);
		json_decref(agents);
	}
}
END_TEST

/* ---- writes ------------------------------------------------------------------------------ */

START_TEST(test_writes_golden)
{
	char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	size_t n = sg_fixture_list(WRITES, names, MAX_CASES);
	json_t *cj, *req, *got;
	struct sg_error err = {0};
	const char *op;

	ck_assert_uint_lt((size_t)_i, n);
	cj = sg_fixture_load(WRITES, names[_i], "ctx.json");
	req = sg_fixture_load(WRITES, names[_i], "request.json");
	ck_assert_msg(cj && req, "%s: ctx.json and request.json are required", names[_i]);
	op = json_string_value(json_object_get(cj, "op"));
	ck_assert_ptr_nonnull(op);
	got = !strcmp(op, "create") ? sg_sb_create_request(req, "sb1", &err)
	                            : sg_sb_update_request(req, "sb1", &err);
	if (!got) {
		ck_assert_int_eq(err.status, 400);
		ck_assert_msg(!strncmp(err.message, "backend 'sb1' (sandbase) ", 25), "%s",
		              err.message);
		got = json_pack("{s:{s:i, s:s, s:s}}", "error", "status", err.status, "type",
		                err.type, "message", err.message);
	}
	ck_assert_msg(sg_fixture_expect(got, WRITES, names[_i], "expected.json"),
	              "%s: output differs from expected.json", names[_i]);
	json_decref(got);
	json_decref(req);
	json_decref(cj);
}
END_TEST

/* The answer to a send: SandBase's flat events as north events, a missing data as none. */
START_TEST(test_sent)
{
	static const struct {
		const char *body, *needle;
	} bad[] = {
	    {"[]", "the send answer is not a JSON object"},
	    {"{\"data\": {}}", "the send answer's data is not an array"},
	    {"{\"data\": [{\"type\": \"user.message\"}]}", "events[0]: id is missing"},
	};
	json_t *body = parse(
	    "{\"data\": [{\"id\": \"sevt_1\", \"type\": \"user.message\", \"content\": "
	    "[{\"type\": \"text\", \"text\": \"hi\"}], \"stop_reason\": null, \"model_used\": "
	    "null, "
	    "\"tokens_in\": 0, \"tokens_out\": 0, \"duration_ms\": null, \"processed_at\": null, "
	    "\"created_at\": \"2026-06-01T00:00:00Z\"}, {\"id\": \"sevt_2\", \"type\": "
	    "\"user.interrupt\", \"processed_at\": \"2026-06-01T00:00:01Z\"}]}");
	json_t *out, *want;
	struct sg_error err = {0};

	out = sg_sb_sent_to_cma(body, &base_ctx, &err);
	ck_assert_msg(out != NULL, "%s", err.message);
	want =
	    parse("{\"data\": [{\"id\": \"sevt_1\", \"type\": \"user.message\", \"content\": "
	          "[{\"type\": \"text\", \"text\": \"hi\"}], \"processed_at\": "
	          "\"2026-06-01T00:00:00Z\"}, {\"id\": \"sevt_2\", \"type\": \"user.interrupt\", "
	          "\"processed_at\": \"2026-06-01T00:00:01Z\"}]}");
	ck_assert_msg(json_equal(out, want), "send answer differs");
	json_decref(want);
	json_decref(out);
	json_decref(body);
	body = parse("{}");
	out = sg_sb_sent_to_cma(body, &base_ctx, &err);
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(json_array_size(json_object_get(out, "data")), 0);
	json_decref(out);
	json_decref(body);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		body = parse(bad[i].body);
		ck_assert_ptr_null(sg_sb_sent_to_cma(body, &base_ctx, &err));
		sg_check_502(&err, "sb1", bad[i].needle);
		json_decref(body);
	}
}
END_TEST

/* Allocation failures in the write translations: a 500, nothing leaked. */
START_TEST(test_writes_oom)
{
	json_t *create = sg_fixture_load(WRITES, "create-pass", "request.json");
	json_t *update = sg_fixture_load(WRITES, "update-pass", "request.json");
	json_t *sent = parse("{\"data\": [{\"id\": \"sevt_1\", \"type\": \"user.message\", "
	                     "\"content\": [{\"type\": \"text\", \"text\": \"hi\"}], "
	                     "\"processed_at\": \"2026-06-01T00:00:00Z\"}]}");
	long n;

	ck_assert(create && update);
	for (int step = 0; step < 3; step++) {
		for (n = 0;; n++) {
			struct sg_error err = {0};
			json_t *got;
			long live;

			sg_fixture_alloc_begin(n);
			got = step == 0   ? sg_sb_create_request(create, "sb1", &err)
			      : step == 1 ? sg_sb_update_request(update, "sb1", &err)
			                  : sg_sb_sent_to_cma(sent, &base_ctx, &err);
			if (!got) {
				ck_assert_msg(sg_fixture_alloc_fired(), "step %d: %s", step,
				              err.message);
				ck_assert_int_eq(err.status, 500);
			}
			json_decref(got);
			live = sg_fixture_alloc_end();
			ck_assert_msg(live == 0, "step %d: %ld leaked at %ld", step, live, n);
			if (!sg_fixture_alloc_fired())
				break;
		}
	}
	json_decref(sent);
	json_decref(update);
	json_decref(create);
}
END_TEST

/* ---- the module's I/O, against a scripted backend ----------------------------------------- */

extern const struct sg_mapping sg_mapping_sandbase;

#define SB_OPTS "{\"api_key\": \"sk-sb-test\"}"
#define SB_SESSION                                                                                 \
	"{\"id\": \"sess_01\", \"type\": \"session\", \"status\": \"idle\", \"title\": \"T\", "    \
	"\"agent\": {\"type\": \"agent\", \"id\": \"agent_01\", \"version\": 2}, "                 \
	"\"environment_id\": "                                                                     \
	"\"env_01\", \"metadata\": {}, \"archived_at\": null, \"created_at\": "                    \
	"\"2026-06-01T00:00:00Z\", \"updated_at\": \"2026-06-01T00:00:00Z\"}"
#define SB_AGENT                                                                                   \
	"{\"id\": \"agent_01\", \"type\": \"agent\", \"name\": \"Researcher\", \"model\": "        \
	"\"claude-opus-4\", \"version\": 2, \"created_at\": \"2026-05-01T00:00:00Z\", "            \
	"\"updated_at\": \"2026-05-02T00:00:00Z\"}"

static const json_t *sb_seen(const struct sg_flow *f, size_t i, const char *method, const char *uri)
{
	const json_t *r = json_array_get(sg_flow_seen(f), i);

	ck_assert_msg(r != NULL, "request %zu was not sent", i);
	ck_assert_str_eq(json_string_value(json_object_get(r, "method")), method);
	ck_assert_str_eq(json_string_value(json_object_get(r, "uri")), uri);
	if (json_is_object(json_object_get(r, "body")))
		ck_assert_str_eq(json_string_value(json_object_get(r, "type")), "application/json");
	return r;
}

static void sb_flow_error(const struct sg_flow *f, int status, const char *needle)
{
	const struct sg_error *e = sg_flow_error(f);

	ck_assert_msg(e != NULL, "the call succeeded");
	ck_assert_msg(e->status == status, "status %d: %s", e->status, e->message);
	ck_assert_msg(strstr(e->message, needle) != NULL, "'%s' not in: %s", needle, e->message);
}

START_TEST(test_flow_writes)
{
	struct sg_flow *f = sg_flow_new(&sg_mapping_sandbase, "sb1", SB_OPTS);
	struct sg_pubid id = sg_flow_id("sb1", "", "sess_01");
	char want[SG_ID_MAX];
	const json_t *r;
	json_t *s;

	ck_assert_int_ge(sg_id_encode("sesn_", "sb1", "", "sess_01", want, sizeof(want)), 0);
	/* create: the session, then the agent it names by reference */
	sg_flow_route(f, "POST", "/v1/sessions", 200, SB_SESSION);
	sg_flow_route(f, "GET", "/v1/agents/agent_01?version=2", 200, SB_AGENT);
	sg_flow_run(f, SG_CALL_CREATE_SESSION, "{}", NULL,
	            "{\"agent\": {\"type\": \"agent\", \"id\": \"agent_01\"}, \"environment_id\": "
	            "\"env_01\", \"title\": \"T\", \"vault_ids\": []}",
	            -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	s = sg_flow_object(f);
	ck_assert_str_eq(json_string_value(json_object_get(s, "id")), want);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(s, "agent"), "name")),
	                 "Researcher");
	ck_assert_ptr_null(json_object_get(json_object_get(s, "agent"), "created_at"));
	r = sb_seen(f, 0, "POST", "/v1/sessions");
	ck_assert_ptr_null(json_object_get(json_object_get(r, "body"), "vault_ids"));
	sb_seen(f, 1, "GET", "/v1/agents/agent_01?version=2");

	/* the session exists, but its agent cannot be read: no retry */
	sg_flow_route(f, "GET", "/v1/agents/agent_01?version=2", 500,
	              "{\"error\": {\"type\": "
	              "\"api_error\", \"message\": \"x\"}}");
	sg_flow_run(f, SG_CALL_CREATE_SESSION, "{}", NULL,
	            "{\"agent\": \"agent_01\", \"environment_id\": \"env_01\"}", -1);
	sb_flow_error(f, 502, "was created, but its answer could not be read");
	ck_assert_ptr_nonnull(strstr(sg_flow_error(f)->message, want));
	ck_assert_int_eq(sg_flow_error(f)->should_retry, 0);
	sg_flow_route(f, "GET", "/v1/agents/agent_01?version=2", 200, SB_AGENT);

	/* refused by the gateway: nothing sent */
	sg_flow_run(f, SG_CALL_CREATE_SESSION, "{}", NULL,
	            "{\"agent\": \"agent_01\", \"environment_id\": \"env_01\", \"budget\": "
	            "{\"type\": \"limit\", \"max_list_cost\": {\"amount\": \"1\", \"currency\": "
	            "\"USD\"}}}",
	            -1);
	sb_flow_error(f, 400, "(sandbase) cannot enforce a budget");
	ck_assert_uint_eq(json_array_size(sg_flow_seen(f)), 0);

	/* update, archive */
	sg_flow_route(f, "POST", "/v1/sessions/sess_01", 200, SB_SESSION);
	sg_flow_run(f, SG_CALL_UPDATE_SESSION, "{}", &id, "{\"title\": \"T\", \"budget\": null}",
	            -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	r = sb_seen(f, 0, "POST", "/v1/sessions/sess_01");
	ck_assert_uint_eq(json_object_size(json_object_get(r, "body")), 1);
	sg_flow_route(f, "POST", "/v1/sessions/sess_01/archive", 200, SB_SESSION);
	sg_flow_run(f, SG_CALL_ARCHIVE_SESSION, "{}", &id, NULL, -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	r = sb_seen(f, 0, "POST", "/v1/sessions/sess_01/archive");
	ck_assert(json_is_null(json_object_get(r, "body")));

	/* SandBase's own refusals come back through the core's table */
	sg_flow_route(f, "POST", "/v1/sessions/sess_01/archive", 409,
	              "{\"type\": \"error\", \"error\": {\"type\": \"session_archived\", "
	              "\"message\": \"already archived\"}}");
	sg_flow_run(f, SG_CALL_ARCHIVE_SESSION, "{}", &id, NULL, -1);
	sb_flow_error(f, 409, "already archived");

	/* delete */
	sg_flow_route(f, "DELETE", "/v1/sessions/sess_01", 200,
	              "{\"id\": \"sess_01\", \"type\": \"session_deleted\"}");
	sg_flow_run(f, SG_CALL_DELETE_SESSION, "{}", &id, NULL, -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	ck_assert_ptr_null(sg_flow_object(f));
	sb_seen(f, 0, "DELETE", "/v1/sessions/sess_01");

	/* send: the body as it is, the answer in north events */
	sg_flow_route(f, "POST", "/v1/sessions/sess_01/events", 200,
	              "{\"data\": [{\"id\": \"sevt_9\", \"type\": \"user.message\", \"content\": "
	              "[{\"type\": \"text\", \"text\": \"hi\"}], \"processed_at\": "
	              "\"2026-06-01T00:00:00Z\", \"tokens_in\": 0, \"tokens_out\": 0}]}");
	sg_flow_run(f, SG_CALL_SEND_EVENTS, "{}", &id,
	            "{\"events\": [{\"type\": \"user.message\", \"content\": [{\"type\": "
	            "\"text\", \"text\": \"hi\"}]}]}",
	            -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	r = sb_seen(f, 0, "POST", "/v1/sessions/sess_01/events");
	ck_assert_str_eq(
	    json_string_value(json_object_get(
	        json_array_get(json_object_get(json_object_get(r, "body"), "events"), 0), "type")),
	    "user.message");
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_array_get(json_object_get(sg_flow_object(f), "data"), 0), "id")),
	                 "sevt_9");
	sg_flow_route(f, "POST", "/v1/sessions/sess_01/events", 422,
	              "{\"type\": \"error\", \"error\": {\"type\": \"unsupported_event_type\", "
	              "\"message\": \"user.tool_confirmation is not supported\"}}");
	sg_flow_run(f, SG_CALL_SEND_EVENTS, "{}", &id,
	            "{\"events\": [{\"type\": \"user.tool_confirmation\", \"tool_use_id\": "
	            "\"sevt_1\", \"result\": \"allow\"}]}",
	            -1);
	sb_flow_error(f, 400, "user.tool_confirmation is not supported");
	sg_flow_free(f);
}
END_TEST

START_TEST(test_flow_agents)
{
	struct sg_flow *f = sg_flow_new(&sg_mapping_sandbase, "sb1", SB_OPTS);
	struct sg_pubid id = sg_flow_id("sb1", "", "agent_01");

	sg_flow_route(f, "GET", "/v1/agents?limit=100&include_archived=true", 200,
	              "{\"data\": [" SB_AGENT "], \"next_page\": \"page_2\"}");
	sg_flow_route(f, "GET", "/v1/agents?limit=100&include_archived=true&page=page_2", 200,
	              "{\"data\": [" SB_AGENT "], \"next_page\": null}");
	sg_flow_run(f, SG_CALL_LIST_AGENTS, "{}", NULL, NULL, -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	ck_assert_uint_eq(json_array_size(sg_flow_items(f)), 2);
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_array_get(sg_flow_items(f), 0), "created_at")),
	    "2026-05-01T00:00:00Z");
	sg_flow_route(f, "GET", "/v1/agents/agent_01?version=2", 200, SB_AGENT);
	sg_flow_run(f, SG_CALL_GET_AGENT, "{}", &id, NULL, 2);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	ck_assert_str_eq(json_string_value(json_object_get(sg_flow_object(f), "name")),
	                 "Researcher");
	sg_flow_route(f, "GET", "/v1/agents/agent_01", 404,
	              "{\"type\": \"error\", \"error\": {\"type\": \"not_found_error\", "
	              "\"message\": \"no such agent\"}}");
	sg_flow_run(f, SG_CALL_GET_AGENT, "{}", &id, NULL, -1);
	sb_flow_error(f, 404, "no such agent");
	sg_flow_free(f);
}
END_TEST

/* ---- the live stream (stream_events), against a scripted SSE answer ------------------------- */

#define SB_STREAM "/v1/sessions/sess_01/events/stream"
#define SB_LIST "/v1/sessions/sess_01/events?limit=100"

/* body cut into pieces of n bytes: a NULL-terminated array; free with free_pieces. */
static char **cut_pieces(const char *body, size_t n)
{
	size_t len = strlen(body), k = 0, count = len / n + 2;
	char **out = calloc(count, sizeof(*out));

	ck_assert_ptr_nonnull(out);
	for (size_t at = 0; at < len; at += n)
		out[k++] = strndup(body + at, n);
	return out;
}

static void free_pieces(char **pieces)
{
	for (size_t i = 0; pieces[i]; i++)
		free(pieces[i]);
	free(pieces);
}

/* The stream SandBase sends for envelopes (borrowed array): a heartbeat, then one data-only
 * frame per envelope, line ends varied. New string; free it. */
static char *sse_body(const json_t *envelopes)
{
	static const char *const ends[] = {"\n", "\r\n", "\r"};
	const json_t *e;
	char *buf = NULL, *text;
	size_t size = 0, i;
	FILE *f = open_memstream(&buf, &size);

	ck_assert_ptr_nonnull(f);
	json_array_foreach(envelopes, i, e) {
		const char *end = ends[i % 3];

		text = json_dumps(e, JSON_COMPACT);
		ck_assert_ptr_nonnull(text);
		fprintf(f, ": heartbeat%s%sdata: %s%s%s", end, end, text, end, end);
		free(text);
	}
	fclose(f);
	return buf;
}

/* Routes the stream (and the events list) of sess_01 to serve envelopes (a JSON array text),
 * the stream cut into pieces of n bytes. */
static void route_envelopes(struct sg_flow *f, const char *uri, const json_t *envelopes, size_t n,
                            int hold)
{
	char *body = sse_body(envelopes), **pieces = cut_pieces(body, n), *list;
	json_t *wrap = json_pack("{s:O}", "data", envelopes);

	list = json_dumps(wrap, 0);
	sg_flow_route(f, "GET", SB_LIST, 200, list);
	sg_flow_route_stream(f, uri, 200, (const char *const *)pieces, hold);
	free(list);
	json_decref(wrap);
	free_pieces(pieces);
	free(body);
}

/* The north events the module's events list gives for what is routed at SB_LIST. New. */
static json_t *listed(struct sg_flow *f, const struct sg_pubid *id)
{
	sg_flow_run(f, SG_CALL_EVENTS_PAGE, "{}", id, NULL, -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	return json_deep_copy(sg_flow_items(f));
}

static void stream_ok(const struct sg_flow *f, const char *last_mark)
{
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	ck_assert_ptr_null(sg_flow_object(f)); /* a clean end of the upstream body */
	ck_assert_int_eq(sg_flow_opened(f), 1);
	if (last_mark)
		ck_assert_str_eq(sg_flow_marked(f), last_mark);
	else
		ck_assert_ptr_null(sg_flow_marked(f));
}

/* Every fixture log, streamed a frame per envelope and cut into pieces anywhere: the stream
 * shows exactly what the events list shows for the same envelopes (ids, links, spans). */
START_TEST(test_stream_same_as_list)
{
	static char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	size_t n = sg_fixture_list(EVENTS, names, MAX_CASES);
	struct sg_pubid id = sg_flow_id("sb1", "", "sess_01");
	struct sg_flow *f = sg_flow_new(&sg_mapping_sandbase, "sb1", SB_OPTS);

	ck_assert_uint_ge(n, MIN_EVENT_CASES);
	for (size_t c = 0; c < n; c++) {
		json_t *log = case_log(names[c]), *want;
		char *body = sse_body(log);
		const json_t *h;

		route_envelopes(f, SB_STREAM, log, strlen(body) / 30 + 7, 0);
		want = listed(f, &id);
		sg_flow_run_stream(f, &id, 0, NULL, 0);
		stream_ok(f, json_string_value(json_object_get(
		                 json_array_get(log, json_array_size(log) - 1), "id")));
		ck_assert_msg(json_equal(want, (json_t *)sg_flow_emitted(f)), "case %s differs",
		              names[c]);
		h = json_object_get(sb_seen(f, 0, "GET", SB_STREAM), "headers");
		ck_assert_str_eq(json_string_value(json_object_get(h, "x-api-key")), "sk-sb-test");
		ck_assert_uint_eq(json_array_size(sg_flow_seen(f)), 1);
		json_decref(want);
		json_decref(log);
		free(body);
	}
	sg_flow_free(f);
}
END_TEST

/* A tool use, a SandBase-only event (dropped), an id-less result, a message with tokens, the
 * turn's end. */
#define SB_ENVELOPES                                                                               \
	"[{\"id\": \"sevt_a1\", \"type\": \"session.status_running\", \"processed_at\": "          \
	"\"2026-06-05T10:00:00Z\"},"                                                               \
	"{\"id\": \"sevt_a2\", \"type\": \"agent.tool_use\", \"content\": {\"name\": \"grep\", "   \
	"\"input\": {\"q\": \"x\"}}, \"tokens_in\": 10, \"tokens_out\": 5, \"duration_ms\": 500, " \
	"\"processed_at\": \"2026-06-05T10:00:01Z\"},"                                             \
	"{\"id\": \"sevt_a3\", \"type\": \"interrupt.response\", \"processed_at\": "               \
	"\"2026-06-05T10:00:02Z\"},"                                                               \
	"{\"id\": \"sevt_a4\", \"type\": \"agent.tool_result\", \"content\": [{\"type\": "         \
	"\"text\", \"text\": \"found\"}], \"processed_at\": \"2026-06-05T10:00:03Z\"},"            \
	"{\"id\": \"sevt_a5\", \"type\": \"agent.message\", \"content\": [{\"type\": \"text\", "   \
	"\"text\": \"done\"}], \"tokens_in\": 100, \"tokens_out\": 20, \"duration_ms\": 4000, "    \
	"\"processed_at\": \"2026-06-05T10:00:05Z\"},"                                             \
	"{\"id\": \"sevt_a6\", \"type\": \"session.status_idle\", \"stop_reason\": {\"type\": "    \
	"\"end_turn\"}, \"processed_at\": \"2026-06-05T10:00:05Z\"}]"

static int64_t at_us(const char *t)
{
	int64_t us;

	ck_assert_int_eq(sg_time_parse_rfc3339(t, &us), 0);
	return us;
}

/* The emitted events' types, ids (span ids as "span"), and the marks they were sent under, as
 * one string: "type id mark; …". */
static void expect_emitted(const struct sg_flow *f, const char *want)
{
	char got[4096] = "";
	size_t i, n = 0;
	const json_t *ev;

	json_array_foreach(sg_flow_emitted(f), i, ev) {
		const char *type = json_string_value(json_object_get(ev, "type"));
		const char *eid = json_string_value(json_object_get(ev, "id"));
		const json_t *mark = json_array_get(sg_flow_marks(f), i);

		n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%s %s %s", i ? "; " : "", type,
		                      strncmp(type, "span.", 5) ? eid : "span",
		                      json_is_string(mark) ? json_string_value(mark) : "-");
	}
	ck_assert_str_eq(got, want);
}

START_TEST(test_stream_marks_and_replay)
{
	struct sg_pubid id = sg_flow_id("sb1", "", "sess_01");
	struct sg_flow *f = sg_flow_new(&sg_mapping_sandbase, "sb1", SB_OPTS);
	json_t *envs = parse(SB_ENVELOPES), *want, *tail;
	const json_t *result;

	route_envelopes(f, SB_STREAM, envs, 50, 0);
	want = listed(f, &id);
	/* no since: everything, marked after each envelope (the dropped one too) */
	sg_flow_run_stream(f, &id, 0, NULL, 0);
	stream_ok(f, "sevt_a6");
	ck_assert(json_equal(want, (json_t *)sg_flow_emitted(f)));
	expect_emitted(f, "session.status_running sevt_a1 -; "
	                  "span.model_request_start span sevt_a1; agent.tool_use sevt_a2 sevt_a1; "
	                  "span.model_request_end span sevt_a1; "
	                  "agent.tool_result sevt_a4 sevt_a3; "
	                  "span.model_request_start span sevt_a4; agent.message sevt_a5 sevt_a4; "
	                  "span.model_request_end span sevt_a4; "
	                  "session.status_idle sevt_a6 sevt_a5");
	/* a first connect (since set) reads the history first and opens the stream after its
	 * last event: SandBase replays nothing, and what follows links through the history's
	 * state (the result sevt_a4 has no tool_use_id: it is the history's sevt_a2's) */
	{
		json_t *head = json_array(), *rest = json_array(), *wrap;
		char *list, *body, **pieces;

		for (size_t i = 0; i < json_array_size(envs); i++)
			json_array_append(i < 3 ? head : rest, json_array_get(envs, i));
		wrap = json_pack("{s:O}", "data", head);
		list = json_dumps(wrap, 0);
		sg_flow_route(f, "GET", SB_LIST, 200, list);
		body = sse_body(rest);
		pieces = cut_pieces(body, 40);
		sg_flow_route_stream(f, SB_STREAM "?cursor=sevt_a3", 200,
		                     (const char *const *)pieces, 0);
		sg_flow_run_stream(f, &id, at_us("2026-06-05T10:00:09Z"), NULL, 0);
		stream_ok(f, "sevt_a6");
		expect_emitted(
		    f, "agent.tool_result sevt_a4 -; "
		       "span.model_request_start span sevt_a4; agent.message sevt_a5 sevt_a4; "
		       "span.model_request_end span sevt_a4; "
		       "session.status_idle sevt_a6 sevt_a5");
		result = json_array_get(sg_flow_emitted(f), 0);
		ck_assert_str_eq(json_string_value(json_object_get(result, "tool_use_id")),
		                 "sevt_a2");
		tail = json_array_get(want, 4);
		ck_assert(json_equal(tail, (json_t *)result));
		ck_assert_str_eq(
		    json_string_value(json_object_get(json_array_get(sg_flow_seen(f), 0), "uri")),
		    SB_LIST);
		free_pieces(pieces);
		free(body);
		free(list);
		json_decref(wrap);
		/* an empty history: the stream opens from the start, and shows all of it */
		sg_flow_route(f, "GET", SB_LIST, 200, "{\"data\": []}");
		sg_flow_run_stream(f, &id, at_us("2026-06-05T10:00:09Z"), NULL, 0);
		stream_ok(f, "sevt_a6");
		ck_assert(json_equal(want, (json_t *)sg_flow_emitted(f)));
		json_decref(head);
		json_decref(rest);
	}
	json_decref(want);
	json_decref(envs);
	sg_flow_free(f);
}
END_TEST

/* A resume asks SandBase to continue after the mark (?cursor=), which it does natively. */
START_TEST(test_stream_resume)
{
	struct sg_pubid id = sg_flow_id("sb1", "", "sess_01");
	struct sg_flow *f = sg_flow_new(&sg_mapping_sandbase, "sb1", SB_OPTS);
	json_t *envs = parse(SB_ENVELOPES), *rest = json_array();

	for (size_t i = 3; i < json_array_size(envs); i++)
		json_array_append(rest, json_array_get(envs, i));
	route_envelopes(f, SB_STREAM "?cursor=sevt_a3", rest, 64, 0);
	sg_flow_run_stream(f, &id, 0, "sevt_a3", 0);
	stream_ok(f, "sevt_a6");
	sb_seen(f, 0, "GET", SB_STREAM "?cursor=sevt_a3");
	/* the id-less result's tool use came before the resume point: nothing to link it to, so
	 * it is dropped, as the events list drops it without its carry */
	expect_emitted(f, "span.model_request_start span sevt_a4; agent.message sevt_a5 sevt_a4; "
	                  "span.model_request_end span sevt_a4; "
	                  "session.status_idle sevt_a6 sevt_a5");
	/* the token is escaped as a query value */
	sg_flow_route_stream(f, SB_STREAM "?cursor=a%2Fb%20c", 200,
	                     (const char *const[]){": hi\n", NULL}, 0);
	sg_flow_run_stream(f, &id, 0, "a/b c", 0);
	stream_ok(f, NULL);
	json_decref(rest);
	json_decref(envs);
	sg_flow_free(f);
}
END_TEST

/* Heartbeats, frames without data, unknown fields: nothing to emit. */
START_TEST(test_stream_ignores_non_frames)
{
	struct sg_pubid id = sg_flow_id("sb1", "", "sess_01");
	struct sg_flow *f = sg_flow_new(&sg_mapping_sandbase, "sb1", SB_OPTS);
	static const char *const pieces[] = {
	    "\xEF\xBB\xBF: heartbeat\n\n",
	    "event: ping\n\n",
	    "id: 5\n\n",
	    "data:\n\n",
	    "retry: 9\n\n",
	    "data: {\"id\": \"sevt_z\", \"type\": \"session.status_running\", \"processed_at\": "
	    "\"2026-06-05T10:00:00Z\"}\n\n",
	    ": heartbeat\n\ndata: {\"id\": \"sevt_unfinished\"}\n",
	    NULL};

	sg_flow_route_stream(f, SB_STREAM, 200, pieces, 0);
	sg_flow_run_stream(f, &id, 0, NULL, 0);
	stream_ok(f, "sevt_z");
	expect_emitted(f, "session.status_running sevt_z -");
	sg_flow_free(f);
}
END_TEST

/* A head that is not 2xx is the north error SandBase's answer deserves; a frame that is not
 * an envelope, or does not translate, ends the stream with a 502 naming the backend, after
 * what came before it. */
START_TEST(test_stream_failures)
{
	struct sg_pubid id = sg_flow_id("sb1", "", "sess_01");
	struct sg_flow *f = sg_flow_new(&sg_mapping_sandbase, "sb1", SB_OPTS);
	static const char good[] =
	    "data: {\"id\": \"sevt_ok\", \"type\": \"session.status_running\", "
	    "\"processed_at\": \"2026-06-05T10:00:00Z\"}\n\n";
	static const char *const bad[][2] = {
	    {"data: {\"id\": \"sevt_2\", \"type\": \n\n", "not a JSON object"},
	    {"data: [1]\n\n", "not a JSON object"},
	    {"data: \"sevt_2\"\n\n", "not a JSON object"},
	    {"data: {\"id\": \"sevt_2\", \"type\": \"agent.message\", \"processed_at\": "
	     "\"soon\"}\n\n",
	     "processed_at is not an RFC 3339 timestamp"},
	    {"data: {\"type\": \"agent.message\"}\n\n", "id is missing"},
	};
	const struct sg_error *e;
	char *huge;

	sg_flow_route(f, "GET", SB_STREAM, 404,
	              "{\"type\": \"error\", \"error\": {\"type\": \"not_found_error\", "
	              "\"message\": \"session sess_01 not found\"}}");
	sg_flow_run_stream(f, &id, 0, NULL, 0);
	e = sg_flow_error(f);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->status, 404);
	ck_assert_str_eq(e->type, "not_found_error");
	ck_assert_int_eq(sg_flow_opened(f), 0);
	ck_assert_uint_eq(json_array_size(sg_flow_emitted(f)), 0);
	sg_flow_route(f, "GET", SB_STREAM, 500, "{\"detail\": \"boom\"}");
	sg_flow_run_stream(f, &id, 0, NULL, 0);
	ck_assert_int_eq(sg_flow_error(f)->status, 502);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sg_flow_route_stream(f, SB_STREAM, 200,
		                     (const char *const[]){good, bad[i][0], good, NULL}, 0);
		sg_flow_run_stream(f, &id, 0, NULL, 0);
		sg_check_502(sg_flow_error(f), "sb1", bad[i][1]);
		expect_emitted(f, "session.status_running sevt_ok -");
		ck_assert_str_eq(sg_flow_marked(f), "sevt_ok");
	}
	/* one frame larger than the backend's max_response_bytes (4 MiB in the flow) */
	huge = malloc((5u << 20) + 16);
	ck_assert_ptr_nonnull(huge);
	memcpy(huge, "data: ", 6);
	memset(huge + 6, 'x', 5u << 20);
	strcpy(huge + 6 + (5u << 20), "\n\n");
	sg_flow_route_stream(f, SB_STREAM, 200, (const char *const[]){good, huge, NULL}, 0);
	sg_flow_run_stream(f, &id, 0, NULL, 0);
	sg_check_502(sg_flow_error(f), "sb1", "larger than 4194304 bytes");
	expect_emitted(f, "session.status_running sevt_ok -");
	free(huge);
	sg_flow_free(f);
}
END_TEST

/* The client leaves: the call is freed inside sg_call_emit, mid-piece (the reader with it),
 * and the module touches nothing afterwards (the sanitizer build checks that); and a stream
 * that goes silent ends when the backend's stream_idle_timeout_ms passes. */
START_TEST(test_stream_leave_and_silence)
{
	struct sg_pubid id = sg_flow_id("sb1", "", "sess_01");
	struct sg_flow *f = sg_flow_new(&sg_mapping_sandbase, "sb1", SB_OPTS);
	json_t *envs = parse(SB_ENVELOPES);
	char *body = sse_body(envs);

	sg_flow_route_stream(f, SB_STREAM, 200, (const char *const[]){body, NULL}, 1);
	for (size_t k = 1; k <= 9; k++) {
		sg_flow_run_stream(f, &id, 0, NULL, k);
		ck_assert(sg_flow_left(f));
		ck_assert_uint_eq(json_array_size(sg_flow_emitted(f)), k);
		ck_assert_ptr_null(sg_flow_error(f));
	}
	/* one frame a piece, the answer held open */
	route_envelopes(f, SB_STREAM, envs, 40, 1);
	sg_flow_run_stream(f, &id, 0, NULL, 5);
	ck_assert(sg_flow_left(f));
	/* silence after the last frame: 504 once the idle timeout (2 s in the flow) passes */
	sg_flow_run_stream(f, &id, 0, NULL, 0);
	ck_assert_int_eq(sg_flow_error(f)->status, 504);
	ck_assert_uint_eq(json_array_size(sg_flow_emitted(f)), 9);
	ck_assert_str_eq(sg_flow_marked(f), "sevt_a6");
	free(body);
	json_decref(envs);
	sg_flow_free(f);
}
END_TEST

static Suite *suite(void)
{
	static char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	Suite *s = suite_create("sandbase");
	TCase *golden = tcase_create("golden"), *edge = tcase_create("edge");

	tcase_add_test(golden, test_golden_sessions);
	tcase_add_test(golden, test_golden_events);
	tcase_add_test(golden, test_golden_split_anywhere);
	tcase_add_test(golden, test_mismatch_reported);
	tcase_add_test(edge, test_same_input_same_output);
	tcase_add_test(edge, test_split_anywhere);
	tcase_add_test(edge, test_no_carry_drops_orphan);
	tcase_add_test(edge, test_explicit_link_and_turn_end);
	tcase_add_test(edge, test_span_start_clamped);
	tcase_add_loop_test(edge, test_bad_session, 0,
	                    (int)(sizeof(bad_sessions) / sizeof(bad_sessions[0])));
	tcase_add_test(edge, test_session_edges);
	tcase_add_test(edge, test_agent_ref);
	tcase_add_test(edge, test_agent_to_cma);
	tcase_add_test(edge, test_wrong_event_shapes);
	tcase_add_test(edge, test_lenient_events);
	tcase_add_test(edge, test_normalised_payloads);
	tcase_add_test(edge, test_caps);
	tcase_add_test(edge, test_bad_carry);
	tcase_add_test(edge, test_no_context);
	tcase_add_test(edge, test_allocation_failures);
	tcase_add_loop_test(
	    golden, test_writes_golden, 0,
	    (int)sg_fixture_list(WRITES, (char(*)[SG_FIXTURE_NAME_MAX])names, MAX_CASES));
	tcase_add_test(edge, test_sent);
	tcase_add_test(edge, test_writes_oom);
	tcase_add_test(edge, test_flow_writes);
	tcase_add_test(edge, test_flow_agents);
	tcase_add_test(edge, test_stream_same_as_list);
	tcase_add_test(edge, test_stream_marks_and_replay);
	tcase_add_test(edge, test_stream_resume);
	tcase_add_test(edge, test_stream_ignores_non_frames);
	tcase_add_test(edge, test_stream_failures);
	tcase_add_test(edge, test_stream_leave_and_silence);
	tcase_set_timeout(golden, 60);
	tcase_set_timeout(edge, 300);
	suite_add_tcase(s, golden);
	suite_add_tcase(s, edge);
	return s;
}

int main(void)
{
	return sg_fixture_run(suite());
}
