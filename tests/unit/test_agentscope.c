/* test_agentscope.c - the AgentScope translation: Check loops over the golden fixtures in
 * tests/fixtures/agentscope/sessions/<case>/ (listing.json, agents.json, ctx.json,
 * expected.json), agents/<case>/ (agents.json, ctx.json, expected.json), writes/<case>/ (the
 * north request.json and the backend request or refusal it becomes) and resume/<case>/ (a
 * parked log, the tool answers sent to it, the /chat/ input or refusal), plus inline tests for
 * huge listings, wrong shapes, the echo of sent events and allocation failures. */
#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentscope_events.h"
#include "agentscope_translate.h"
#include "config.h"
#include "fixture.h"
#include "flow.h"
#include "idcodec.h"
#include "jsonx.h"
#include "north.h"
#include "timeutil.h"
#include "tz.h"

#define GROUP "agentscope/sessions"
#define AGENTS "agentscope/agents"
#define WRITES "agentscope/writes"
#define RESUME "agentscope/resume"
#define MAX_CASES 64
#define HUGE_COUNT 2000
#define LIMIT 100000

/* What a translation needs, built from a ctx.json or by hand. */
struct env {
	struct sg_tz *tz;
	struct sg_as_ctx ctx;
};

static void env_open(struct env *e, const char *backend, const char *zone, const char *now)
{
	char why[256] = "";

	memset(e, 0, sizeof(*e));
	e->tz = sg_tz_load(zone, why, sizeof(why));
	ck_assert_msg(e->tz != NULL, "time zone %s: %s", zone, why);
	e->ctx.backend = backend;
	e->ctx.tz = e->tz;
	ck_assert_msg(sg_time_parse_rfc3339(now, &e->ctx.now_us) == 0, "bad now %s", now);
}

static void env_close(struct env *e)
{
	sg_tz_free(e->tz);
}

/* Parses inline JSON for a test. Returns a new reference. */
static json_t *parse(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);

	ck_assert_msg(v != NULL, "inline JSON: %s", jerr.text);
	return v;
}

static int append_one(void *arg, json_t *session)
{
	return json_array_append_new(arg, session);
}

/* Checks what must hold for every translated session whatever the case: the required
 * north keys are there with the right JSON types, and the public id opens to the route it
 * was made from. `view` is the SessionView it came from (borrowed). */
static void check_invariants(const json_t *s, const json_t *view, const char *backend)
{
	const json_t *session = json_object_get(view, "session"), *v;
	const char *key, *status = json_string_value(json_object_get(s, "status"));
	struct sg_pubid pid;

	/* Required keys only: which optional ones appear is the golden files' business. */
	ck_assert_msg(sg_check_keys(s, NULL, sg_check_session_required, "session"),
	              "session lacks a required key");
	ck_assert_msg(
	    sg_check_keys(json_object_get(s, "agent"), NULL, sg_check_agent_keys, "session.agent"),
	    "session.agent lacks a required key");
	ck_assert_msg(status && (!strcmp(status, "idle") || !strcmp(status, "running")),
	              "status %s", status ? status : "(none)");
	ck_assert(json_is_string(json_object_get(s, "created_at")));
	ck_assert(json_is_string(json_object_get(s, "updated_at")));
	json_object_foreach((json_t *)json_object_get(s, "metadata"), key, v) {
		ck_assert_msg(json_is_string(v), "metadata %s is not a string", key);
	}
	json_object_foreach((json_t *)json_object_get(s, "stats"), key, v) {
		ck_assert_msg(json_is_real(v) && json_real_value(v) >= 0, "stats.%s", key);
	}

	ck_assert_int_eq(sg_id_decode("sesn_", json_string_value(json_object_get(s, "id")), &pid),
	                 0);
	ck_assert_str_eq(pid.backend, backend);
	ck_assert_str_eq(pid.scope, json_string_value(json_object_get(session, "agent_id")));
	ck_assert_str_eq(pid.native, json_string_value(json_object_get(session, "id")));
}

START_TEST(test_golden)
{
	char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	size_t n = sg_fixture_list(GROUP, names, MAX_CASES), i;
	json_t *ctxj, *listing, *agents = NULL, *index = NULL, *out;
	struct sg_error err = {0};
	const char *name;
	struct env e;

	ck_assert_uint_lt((size_t)_i, n);
	name = names[_i];
	ctxj = sg_fixture_load(GROUP, name, "ctx.json");
	listing = sg_fixture_load(GROUP, name, "listing.json");
	ck_assert_msg(ctxj && listing, "%s: ctx.json and listing.json are required", name);
	env_open(&e, json_string_value(json_object_get(ctxj, "backend")),
	         json_string_value(json_object_get(ctxj, "timezone")),
	         json_string_value(json_object_get(ctxj, "now")));
	if (sg_fixture_exists(GROUP, name, "agents.json")) {
		agents = sg_fixture_load(GROUP, name, "agents.json");
		ck_assert_ptr_nonnull(agents);
		index = sg_as_agents_index(agents, &e.ctx, &err);
		ck_assert_msg(index != NULL, "%s: agents: %s", name, err.message);
	}
	out = json_array();
	ck_assert_msg(sg_as_listing_to_cma(listing, index, &e.ctx, out, &err) == 0, "%s: %s", name,
	              err.message);
	ck_assert_uint_eq(json_array_size(out),
	                  json_array_size(json_object_get(listing, "sessions")));
	for (i = 0; i < json_array_size(out); i++)
		check_invariants(json_array_get(out, i),
		                 json_array_get(json_object_get(listing, "sessions"), i),
		                 e.ctx.backend);
	ck_assert_msg(sg_fixture_expect(out, GROUP, name, "expected.json"),
	              "%s: output differs from expected.json", name);
	/* the same from the listing's text, one session at a time, pretty-printed or not */
	for (int indent = 0; indent <= 2; indent += 2) {
		char *text = json_dumps(listing, JSON_INDENT(indent));
		json_t *out2 = json_array();

		ck_assert_msg(
		    sg_as_listing_text_to_cma(text, strlen(text), index, &e.ctx, out2, &err) == 0,
		    "%s (text): %s", name, err.message);
		ck_assert_msg(json_equal(out, out2), "%s: the text path translates differently",
		              name);
		json_decref(out2);
		/* and in slices of one session, as the module runs it between other requests */
		{
			struct sg_as_listing_text t;
			int rc;

			out2 = json_array();
			ck_assert_int_eq(
			    sg_as_listing_text_begin(&t, text, strlen(text), index, &e.ctx, &err),
			    0);
			while ((rc = sg_as_listing_text_step(&t, 1, append_one, out2, &err)) == 1)
				;
			ck_assert_msg(rc == 0, "%s (slices): %s", name, err.message);
			ck_assert_msg(json_equal(out, out2), "%s: slices translate differently",
			              name);
			json_decref(out2);
		}
		free(text);
	}
	json_decref(out);
	json_decref(index);
	json_decref(agents);
	json_decref(listing);
	env_close(&e);
	json_decref(ctxj);
}
END_TEST

START_TEST(test_no_fixtures)
{
	ck_abort_msg("no fixture cases under tests/fixtures/" GROUP " (is SG_SRCDIR set?)");
}
END_TEST

/* Builds a listing of `count` minimal v2.0.1 sessions of agent "ag-huge", created one
 * minute apart from 2026-01-01T00:00 local time. Returns a new reference. */
static json_t *huge_listing(size_t count)
{
	json_t *sessions = json_array(), *listing;
	size_t i;

	for (i = 0; i < count; i++) {
		char sid[40], title[32], created[64];
		json_t *view;

		snprintf(sid, sizeof(sid), "%032zx", i);
		snprintf(title, sizeof(title), "Session %zu", i);
		snprintf(created, sizeof(created), "2026-01-%02zuT%02zu:%02zu:00", 1 + i / 1440,
		         (i / 60) % 24, i % 60);
		view = json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:[]}}, s:b}",
		                 "session", "id", sid, "agent_id", "ag-huge", "user_id", "u",
		                 "created_at", created, "updated_at", created, "config",
		                 "workspace_id", "ws", "name", title, "state", "summary", "",
		                 "context", "is_running", 0);
		ck_assert_ptr_nonnull(view);
		ck_assert_int_eq(json_array_append_new(sessions, view), 0);
	}
	listing = json_pack("{s:o, s:I}", "sessions", sessions, "total", (json_int_t)count);
	ck_assert_ptr_nonnull(listing);
	return listing;
}

START_TEST(test_huge_list)
{
	json_t *listing = huge_listing(HUGE_COUNT), *out = json_array(), *seen = json_object();
	struct sg_error err = {0};
	const json_t *spot;
	struct sg_pubid pid;
	struct env e;
	size_t i;

	env_open(&e, "as-huge", "Asia/Shanghai", "2026-02-01T00:00:00Z");
	ck_assert_msg(sg_as_listing_to_cma(listing, NULL, &e.ctx, out, &err) == 0, "%s",
	              err.message);
	ck_assert_uint_eq(json_array_size(out), HUGE_COUNT);
	for (i = 0; i < HUGE_COUNT; i++) {
		const char *id = json_string_value(json_object_get(json_array_get(out, i), "id"));

		ck_assert_ptr_nonnull(id);
		ck_assert_msg(!json_object_get(seen, id), "duplicate id %s at %zu", id, i);
		ck_assert_int_eq(json_object_set_new(seen, id, json_true()), 0);
	}
	ck_assert_uint_eq(json_object_size(seen), HUGE_COUNT);
	/* Session 1234 was created at 2026-01-01 20:34 Shanghai time = 12:34 UTC. */
	spot = json_array_get(out, 1234);
	ck_assert_str_eq(json_string_value(json_object_get(spot, "title")), "Session 1234");
	ck_assert_str_eq(json_string_value(json_object_get(spot, "created_at")),
	                 "2026-01-01T12:34:00Z");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(spot, "agent"), "name")),
	                 "ag-huge");
	ck_assert_int_eq(
	    sg_id_decode("sesn_", json_string_value(json_object_get(spot, "id")), &pid), 0);
	ck_assert_str_eq(pid.native, "000000000000000000000000000004d2");
	ck_assert_str_eq(pid.scope, "ag-huge");
	json_decref(seen);
	json_decref(out);
	json_decref(listing);
	env_close(&e);
}
END_TEST

#define GOOD_VIEW                                                                                  \
	"{\"session\": {\"id\": \"s1\", \"agent_id\": \"a1\", "                                    \
	"\"created_at\": \"2026-06-05T14:03:11\", \"updated_at\": \"2026-06-05T14:03:11\"}, "      \
	"\"is_running\": false}"

static const struct {
	const char *listing;
	const char *needle;
} bad_listings[] = {
    {"[]", "session listing is not a JSON object"},
    {"\"<html>502 Bad Gateway</html>\"", "session listing is not a JSON object"},
    {"null", "session listing is not a JSON object"},
    {"{}", "no 'sessions' array"},
    {"{\"sessions\": {}, \"total\": 0}", "no 'sessions' array"},
    {"{\"detail\": \"X-User-ID header is required.\"}", "no 'sessions' array"},
    {"{\"sessions\": [42]}", "sessions[0]: session view is not an object"},
    {"{\"sessions\": [{\"is_running\": false}]}", "sessions[0]: session view has no 'session'"},
    {"{\"sessions\": [{\"session\": []}]}", "sessions[0]: session view has no 'session'"},
    {"{\"sessions\": [{\"session\": {\"agent_id\": \"a\", \"created_at\": "
     "\"2026-01-01T00:00:00\"}}]}",
     "sessions[0]: session.id is missing or not a string"},
    {"{\"sessions\": [{\"session\": {\"id\": 7, \"agent_id\": \"a\", \"created_at\": "
     "\"2026-01-01T00:00:00\"}}]}",
     "session.id is missing or not a string"},
    {"{\"sessions\": [{\"session\": {\"id\": \"\", \"agent_id\": \"a\", \"created_at\": "
     "\"2026-01-01T00:00:00\"}}]}",
     "session.id is empty"},
    {"{\"sessions\": [{\"session\": {\"id\": \"s\", \"created_at\": "
     "\"2026-01-01T00:00:00\"}}]}",
     "session.agent_id is missing or not a string"},
    {"{\"sessions\": [{\"session\": {\"id\": \"s\", \"agent_id\": null, \"created_at\": "
     "\"2026-01-01T00:00:00\"}}]}",
     "session.agent_id is missing or not a string"},
    {"{\"sessions\": [{\"session\": {\"id\": \"s\", \"agent_id\": \"a\"}}]}",
     "session.created_at is missing or not a string"},
    {"{\"sessions\": [{\"session\": {\"id\": \"s\", \"agent_id\": \"a\", \"created_at\": "
     "1780000000}}]}",
     "session.created_at is missing or not a string"},
    {"{\"sessions\": [{\"session\": {\"id\": \"s\", \"agent_id\": \"a\", \"created_at\": "
     "\"yesterday\"}}]}",
     "session.created_at 'yesterday' is not a timestamp"},
    {"{\"sessions\": [{\"session\": {\"id\": \"s\", \"agent_id\": \"a\", \"created_at\": "
     "\"2026-02-30T10:00:00\"}}]}",
     "session.created_at '2026-02-30T10:00:00' is not a timestamp"},
    {"{\"sessions\": [{\"session\": {\"id\": \"s\", \"agent_id\": \"a\", \"created_at\": "
     "\"2026-01-01T00:00:00\", \"updated_at\": \"2026-13-01T00:00:00\"}}]}",
     "session.updated_at '2026-13-01T00:00:00' is not a timestamp"},
    {"{\"sessions\": [{\"session\": {\"id\": \"s\", \"agent_id\": \"a\", \"created_at\": "
     "\"2026-01-01T00:00:00\", \"updated_at\": 5}}]}",
     "session.updated_at is missing or not a string"},
    {"{\"sessions\": [" GOOD_VIEW ", " GOOD_VIEW ", {\"session\": 1}]}",
     "sessions[2]: session view has no 'session'"},
};

START_TEST(test_bad_listing)
{
	json_t *listing = parse(bad_listings[_i].listing), *out = json_array();
	struct sg_error err = {0};
	struct env e;

	env_open(&e, "bad-be", "Asia/Shanghai", "2026-08-22T00:00:00Z");
	/* Whatever the caller had in `out` stays, and nothing of a failed listing is added. */
	ck_assert_int_eq(json_array_append_new(out, json_string("sentinel")), 0);
	ck_assert_int_eq(sg_as_listing_to_cma(listing, NULL, &e.ctx, out, &err), -1);
	sg_check_502(&err, "bad-be", bad_listings[_i].needle);
	ck_assert_uint_eq(json_array_size(out), 1);
	ck_assert_str_eq(json_string_value(json_array_get(out, 0)), "sentinel");
	json_decref(out);
	json_decref(listing);
	env_close(&e);
}
END_TEST

START_TEST(test_too_many_sessions)
{
	json_t *view = parse(GOOD_VIEW), *sessions = json_array(), *out = json_array();
	json_t *listing;
	struct sg_error err = {0};
	struct env e;
	size_t i;

	/* The same view LIMIT + 1 times: the limit is checked before any translation. */
	for (i = 0; i <= LIMIT; i++)
		ck_assert_int_eq(json_array_append(sessions, view), 0);
	listing = json_pack("{s:o}", "sessions", sessions);
	env_open(&e, "big-be", "UTC", "2026-08-22T00:00:00Z");
	ck_assert_int_eq(sg_as_listing_to_cma(listing, NULL, &e.ctx, out, &err), -1);
	sg_check_502(&err, "big-be", "100001 sessions, more than the limit of 100000");
	ck_assert_uint_eq(json_array_size(out), 0);
	/* At exactly the limit the listing gets past the count check: with a bad first item
	 * the error is about that item, which proves it without translating 100000 items. */
	ck_assert_int_eq(json_array_remove(sessions, 0), 0);
	ck_assert_int_eq(json_array_set_new(sessions, 0, json_integer(42)), 0);
	ck_assert_int_eq(sg_as_listing_to_cma(listing, NULL, &e.ctx, out, &err), -1);
	sg_check_502(&err, "big-be", "sessions[0]: session view is not an object");
	ck_assert_uint_eq(json_array_size(out), 0);
	json_decref(out);
	json_decref(listing);
	json_decref(view);
	env_close(&e);
}
END_TEST

START_TEST(test_long_ids)
{
	char sid[256], pub[SG_ID_MAX];
	json_t *view, *s;
	struct sg_error err = {0};
	struct sg_pubid pid;
	struct env e;

	env_open(&e, "as-long", "UTC", "2026-08-22T00:00:00Z");
	/* 199 bytes is the most a field holds. */
	memset(sid, 'x', 199);
	sid[199] = '\0';
	view = json_pack("{s:{s:s, s:s, s:s}}", "session", "id", sid, "agent_id", "a1",
	                 "created_at", "2026-08-01T00:00:00");
	s = sg_as_session_to_cma(view, NULL, &e.ctx, &err);
	ck_assert_msg(s != NULL, "%s", err.message);
	ck_assert_int_eq(sg_id_decode("sesn_", json_string_value(json_object_get(s, "id")), &pid),
	                 0);
	ck_assert_str_eq(pid.native, sid);
	/* Without updated_at the record's creation time stands in for it. */
	ck_assert_str_eq(json_string_value(json_object_get(s, "updated_at")),
	                 "2026-08-01T00:00:00Z");
	json_decref(s);
	json_decref(view);

	/* 200 bytes cannot be encoded: a 502 naming the backend, not a truncated id. */
	memset(sid, 'y', 200);
	sid[200] = '\0';
	view = json_pack("{s:{s:s, s:s, s:s}}", "session", "id", sid, "agent_id", "a1",
	                 "created_at", "2026-08-01T00:00:00");
	ck_assert_ptr_null(sg_as_session_to_cma(view, NULL, &e.ctx, &err));
	sg_check_502(&err, "as-long", "(200 bytes) with agent id (2 bytes) is too long");
	ck_assert_int_lt(sg_id_encode("sesn_", "as-long", "a1", sid, pub, sizeof(pub)), 0);
	json_decref(view);

	/* Each field fits, but together they are too long for one public id. */
	memset(sid, 'z', 190);
	sid[190] = '\0';
	view = json_pack("{s:{s:s, s:s, s:s}}", "session", "id", sid, "agent_id", sid, "created_at",
	                 "2026-08-01T00:00:00");
	ck_assert_ptr_null(sg_as_session_to_cma(view, NULL, &e.ctx, &err));
	sg_check_502(&err, "as-long", "(190 bytes) with agent id (190 bytes) is too long");
	json_decref(view);

	/* An id with an embedded NUL would be cut short by C string handling. */
	view = json_pack("{s:{s:s%, s:s, s:s}}", "session", "id", "ab\0cd", (size_t)5, "agent_id",
	                 "a1", "created_at", "2026-08-01T00:00:00");
	ck_assert_ptr_nonnull(view);
	ck_assert_ptr_null(sg_as_session_to_cma(view, NULL, &e.ctx, &err));
	sg_check_502(&err, "as-long", "session.id is empty or contains a NUL byte");
	json_decref(view);
	env_close(&e);
}
END_TEST

START_TEST(test_agents_index)
{
	static const struct {
		const char *body, *needle;
	} bad[] = {
	    {"[]", "agent listing is not a JSON object"},
	    {"{}", "agent listing has no 'agents' array"},
	    {"{\"agents\": 3}", "agent listing has no 'agents' array"},
	    {"{\"agents\": [1]}", "agents[0]: agent is not an object"},
	    {"{\"agents\": [{\"id\": \"a\"}, {\"data\": {}}]}", "agents[1]: agent id is missing"},
	};
	json_t *body, *index;
	struct sg_error err = {0};
	struct env e;
	size_t i;

	env_open(&e, "as-idx", "UTC", "2026-08-22T00:00:00Z");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		body = parse(bad[i].body);
		ck_assert_ptr_null(sg_as_agents_index(body, &e.ctx, &err));
		sg_check_502(&err, "as-idx", bad[i].needle);
		json_decref(body);
	}
	/* The first of duplicate ids wins; the index holds its own references. */
	body = parse("{\"agents\": [{\"id\": \"a\", \"data\": {\"name\": \"first\"}},"
	             " {\"id\": \"b\", \"data\": {\"name\": \"bee\"}},"
	             " {\"id\": \"a\", \"data\": {\"name\": \"second\"}}], \"total\": 3}");
	index = sg_as_agents_index(body, &e.ctx, &err);
	ck_assert_ptr_nonnull(index);
	json_decref(body);
	ck_assert_uint_eq(json_object_size(index), 2);
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_object_get(json_object_get(index, "a"), "data"), "name")),
	                 "first");
	json_decref(index);
	env_close(&e);
}
END_TEST

START_TEST(test_odd_values)
{
	/* Negative and non-numeric token counts count as 0, huge ones saturate; a record
	 * whose updated_at precedes created_at has a duration of 0, not a negative one; an
	 * is_running that is not a boolean reads as not running; a summary given as blocks
	 * marks the usage as partial. */
	json_t *view = parse(
	    "{\"session\": {\"id\": \"s\", \"agent_id\": \"a\","
	    " \"created_at\": \"2026-06-05T14:00:00\", \"updated_at\": \"2026-06-05T13:00:00\","
	    " \"config\": {\"workspace_id\": \"\", \"name\": 12,"
	    "  \"chat_model_config\": {\"model\": \"\", \"type\": 3}},"
	    " \"state\": {\"summary\": [{\"type\": \"text\", \"text\": \"earlier\"}], \"context\": "
	    "["
	    "  {\"role\": \"assistant\", \"usage\": {\"input_tokens\": -5, \"output_tokens\": "
	    "\"9\","
	    "   \"cache_input_tokens\": 9223372036854775807, \"cache_creation_input_tokens\": "
	    "2.5}},"
	    "  {\"role\": \"assistant\", \"usage\": {\"input_tokens\": 4,"
	    "   \"cache_input_tokens\": 9223372036854775807}, \"created_at\": "
	    "\"2026-06-05T14:10:00\","
	    "   \"finished_at\": \"2026-06-05T14:09:00\","
	    "   \"content\": [{\"type\": \"tool_call\", \"state\": \"asking\"}]}]}},"
	    " \"is_running\": 1}");
	json_t *s;
	struct sg_error err = {0};
	struct env e;

	env_open(&e, "as-odd", "UTC", "2026-08-22T00:00:00Z");
	s = sg_as_session_to_cma(view, NULL, &e.ctx, &err);
	ck_assert_msg(s != NULL, "%s", err.message);
	ck_assert_str_eq(json_string_value(json_object_get(s, "status")), "idle");
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(s, "metadata"), "agentscope.status")),
	    "awaiting_permission");
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(s, "metadata"), "agentscope.usage")),
	    "context_partial");
	ck_assert_ptr_null(
	    json_object_get(json_object_get(s, "metadata"), "agentscope.model_type"));
	ck_assert(json_is_null(json_object_get(s, "title")));
	ck_assert_str_eq(json_string_value(json_object_get(s, "environment_id")), "env_none");
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_object_get(json_object_get(s, "agent"), "model"), "id")),
	                 "unknown");
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(s, "usage"), "input_tokens")), 4);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(s, "usage"), "output_tokens")), 0);
	ck_assert(json_integer_value(json_object_get(json_object_get(s, "usage"),
	                                             "cache_read_input_tokens")) == INT64_MAX);
	ck_assert_int_eq(json_integer_value(json_object_get(
	                     json_object_get(json_object_get(s, "usage"), "cache_creation"),
	                     "ephemeral_5m_input_tokens")),
	                 2);
	ck_assert(json_real_value(
	              json_object_get(json_object_get(s, "stats"), "duration_seconds")) == 0.0);
	ck_assert(json_real_value(json_object_get(json_object_get(s, "stats"), "active_seconds")) ==
	          0.0);
	json_decref(s);
	json_decref(view);
	env_close(&e);
}
END_TEST

START_TEST(test_no_context)
{
	struct sg_error err = {0};
	json_t *view = parse(GOOD_VIEW);

	/* A missing context is the caller's bug: 500, not a backend error. */
	ck_assert_ptr_null(sg_as_session_to_cma(view, NULL, NULL, &err));
	ck_assert_int_eq(err.status, 500);
	json_decref(view);
}
END_TEST

/* ---- agents ------------------------------------------------------------------------------ */

/* Every key a north Agent carries; all required, no others. */
static const char *const full_agent_keys[] = {
    "id",          "type",        "name",       "description",
    "system",      "version",     "model",      "execution_identity",
    "mcp_servers", "skills",      "tools",      "multiagent",
    "metadata",    "archived_at", "created_at", "updated_at",
    NULL};

START_TEST(test_agents_golden)
{
	char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	size_t n = sg_fixture_list(AGENTS, names, MAX_CASES), i;
	json_t *ctxj, *body, *out, *a;
	struct sg_error err = {0};
	struct env e;

	ck_assert_uint_lt((size_t)_i, n);
	ctxj = sg_fixture_load(AGENTS, names[_i], "ctx.json");
	body = sg_fixture_load(AGENTS, names[_i], "agents.json");
	ck_assert_ptr_nonnull(ctxj);
	ck_assert_ptr_nonnull(body);
	env_open(&e, json_string_value(json_object_get(ctxj, "backend")),
	         json_string_value(json_object_get(ctxj, "timezone")),
	         json_string_value(json_object_get(ctxj, "now")));
	out = sg_as_agents_to_cma(body, json_string_value(json_object_get(ctxj, "model")), &e.ctx,
	                          &err);
	ck_assert_msg(out != NULL, "%s: %s", names[_i], err.message);
	json_array_foreach(out, i, a) {
		ck_assert_msg(sg_check_keys(a, full_agent_keys, full_agent_keys, "agent"),
		              "%s: agents[%zu] keys are not the SDK's", names[_i], i);
	}
	ck_assert_msg(sg_fixture_expect(out, AGENTS, names[_i], "expected.json"),
	              "%s: output differs from expected.json", names[_i]);
	json_decref(out);
	json_decref(body);
	json_decref(ctxj);
	env_close(&e);
}
END_TEST

START_TEST(test_bad_agents)
{
	static const struct {
		const char *body, *needle;
	} bad[] = {
	    {"[]", "agent listing is not a JSON object"},
	    {"{\"agents\": [{\"id\": \"a\"}]}", "agents[0]: agent created_at is missing"},
	    {"{\"agents\": [{\"id\": \"a\", \"created_at\": \"soon\"}]}",
	     "agents[0]: agent created_at 'soon' is not a timestamp"},
	    {"{\"agents\": [{\"id\": \"a\", \"created_at\": \"2026-01-01T00:00:00\", "
	     "\"updated_at\": 3}]}",
	     "agents[0]: agent updated_at is missing or not a string"},
	    {"{\"agents\": [{\"id\": \"a\", \"created_at\": \"2026-01-01T00:00:00\"}, 7]}",
	     "agents[1]: agent is not an object"},
	};
	struct sg_error err = {0};
	json_t *body, *a;
	struct env e;

	env_open(&e, "as-ag", "UTC", "2026-08-22T00:00:00Z");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		body = parse(bad[i].body);
		ck_assert_ptr_null(sg_as_agents_to_cma(body, "m", &e.ctx, &err));
		sg_check_502(&err, "as-ag", bad[i].needle);
		json_decref(body);
	}
	body = parse("{\"id\": \"a\", \"created_at\": \"2026-01-01T08:00:00+08:00\"}");
	a = sg_as_agent_to_cma(body, NULL, &e.ctx, &err);
	ck_assert_msg(a != NULL, "%s", err.message);
	ck_assert_str_eq(json_string_value(json_object_get(a, "name")), "a");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(a, "model"), "id")),
	                 "unknown");
	ck_assert_str_eq(json_string_value(json_object_get(a, "created_at")),
	                 "2026-01-01T00:00:00Z");
	ck_assert_str_eq(json_string_value(json_object_get(a, "updated_at")),
	                 "2026-01-01T00:00:00Z");
	json_decref(a);
	json_decref(body);
	ck_assert_ptr_null(sg_as_agent_to_cma(NULL, NULL, &e.ctx, &err));
	sg_check_502(&err, "as-ag", "agent is not an object");
	ck_assert_ptr_null(sg_as_agent_to_cma(NULL, NULL, NULL, &err));
	ck_assert_int_eq(err.status, 500);
	env_close(&e);
}
END_TEST

/* ---- writes ------------------------------------------------------------------------------ */

/* The tests' message ids: a counter, as 32 hex digits like AgentScope's own. */
static int counter_id(void *arg, char out[65])
{
	unsigned *n = arg;

	snprintf(out, 65, "%032x", ++*n);
	return 0;
}

static int failing_id(void *arg, char out[65])
{
	(void)arg;
	out[0] = '\0';
	return -1;
}

/* A write context from a writes/ ctx.json (borrowed). */
struct wenv {
	struct env e;
	struct sg_as_write_ctx w;
	char *texts[2];
	unsigned ids;
};

static void wenv_open(struct wenv *we, const json_t *cj)
{
	static const char *const keys[] = {"chat_model_config", "fallback_chat_model_config"};

	memset(we, 0, sizeof(*we));
	env_open(&we->e, json_string_value(json_object_get(cj, "backend")),
	         json_string_value(json_object_get(cj, "timezone")),
	         json_string_value(json_object_get(cj, "now")));
	we->w.backend = we->e.ctx.backend;
	we->w.tz = we->e.tz;
	we->w.now_us = we->e.ctx.now_us;
	we->w.new_id = counter_id;
	we->w.id_arg = &we->ids;
	for (int i = 0; i < 2; i++) {
		const json_t *given = json_object_get(cj, keys[i]);
		struct sg_error err = {0};
		json_t *v;

		if (!given)
			continue;
		v = sg_as_model_config(given, keys[i], &err);
		ck_assert_msg(v != NULL, "%s", err.message);
		/* as the module stores it */
		we->texts[i] = json_dumps(v, JSON_COMPACT);
		ck_assert_ptr_nonnull(we->texts[i]);
		json_decref(v);
	}
	we->w.chat_model_config = we->texts[0];
	we->w.fallback_chat_model_config = we->texts[1];
}

static void wenv_close(struct wenv *we)
{
	free(we->texts[0]);
	free(we->texts[1]);
	env_close(&we->e);
}

static json_t *error_json(const struct sg_error *err)
{
	json_t *v = json_pack("{s:{s:i, s:s, s:s}}", "error", "status", err->status, "type",
	                      err->type ? err->type : "", "message", err->message);

	ck_assert_ptr_nonnull(v);
	return v;
}

static const char *const kind_names[] = {"messages", "interrupt", "confirmation", "tool_result"};

/* Every Msg the gateway builds reads back as one user.message with the Msg's content. */
static void check_msgs(const json_t *msgs, const struct env *e)
{
	struct sg_as_events_ctx ec = {.backend = e->ctx.backend, .session_key = "a/s", .tz = e->tz};
	struct sg_error err = {0};
	json_t *events = sg_as_messages_to_events(msgs, &ec, &err);
	const json_t *ev;
	size_t i;

	ck_assert_msg(events != NULL, "%s", err.message);
	ck_assert_uint_eq(json_array_size(events), json_array_size(msgs));
	json_array_foreach(events, i, ev) {
		ck_assert_str_eq(json_string_value(json_object_get(ev, "type")), "user.message");
		ck_assert_uint_eq(
		    json_array_size(json_object_get(ev, "content")),
		    json_array_size(json_object_get(json_array_get(msgs, i), "content")));
	}
	json_decref(events);
}

START_TEST(test_writes_golden)
{
	char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	size_t n = sg_fixture_list(WRITES, names, MAX_CASES);
	json_t *cj, *req, *got = NULL;
	struct sg_error err = {0};
	const char *op, *name;
	struct wenv we;

	ck_assert_uint_lt((size_t)_i, n);
	name = names[_i];
	cj = sg_fixture_load(WRITES, name, "ctx.json");
	req = sg_fixture_load(WRITES, name, "request.json");
	ck_assert_msg(cj && req, "%s: ctx.json and request.json are required", name);
	wenv_open(&we, cj);
	op = json_string_value(json_object_get(cj, "op"));
	ck_assert_ptr_nonnull(op);
	if (!strcmp(op, "create")) {
		struct sg_as_create c;

		if (sg_as_create_request(req, &we.w, &c, &err)) {
			ck_assert_ptr_null(c.session_body);
			ck_assert_ptr_null(c.chat_input);
			got = error_json(&err);
		} else {
			got = json_pack("{s:s, s:o, s:o}", "agent_id", c.agent_id, "session_body",
			                c.session_body, "chat_input",
			                c.chat_input ? c.chat_input : json_null());
			if (json_is_array(json_object_get(got, "chat_input")))
				check_msgs(json_object_get(got, "chat_input"), &we.e);
		}
	} else if (!strcmp(op, "update")) {
		json_t *patch = NULL;

		if (sg_as_update_request(req, &we.w, &patch, &err))
			got = error_json(&err);
		else
			got = json_pack("{s:o}", "patch", patch ? patch : json_null());
	} else {
		struct sg_as_send plan;

		ck_assert_str_eq(op, "send");
		if (sg_as_send_plan(req, &we.w, &plan, &err)) {
			ck_assert_ptr_null(plan.msgs);
			got = error_json(&err);
		} else {
			if (plan.msgs)
				check_msgs(plan.msgs, &we.e);
			got = json_pack("{s:s, s:o}", "kind", kind_names[plan.kind], "msgs",
			                plan.msgs ? plan.msgs : json_null());
		}
	}
	ck_assert_ptr_nonnull(got);
	/* every refusal is a 400 that names the backend and its dialect */
	if (json_object_get(got, "error")) {
		ck_assert_int_eq(err.status, 400);
		ck_assert_msg(strncmp(err.message, "backend 'as1' (agentscope) ", 27) == 0,
		              "%s: %s", name, err.message);
	}
	ck_assert_msg(sg_fixture_expect(got, WRITES, name, "expected.json"),
	              "%s: output differs from expected.json", name);
	json_decref(got);
	json_decref(req);
	json_decref(cj);
	wenv_close(&we);
}
END_TEST

START_TEST(test_model_config)
{
	static const struct {
		const char *cfg, *message;
	} bad[] = {
	    {"\"qwen\"", "cmc: must be an object {type, credential_id, model, parameters}"},
	    {"{\"type\": \"t\", \"credential_id\": \"c\", \"model\": \"m\", \"temp\": 1}",
	     "cmc.temp: unknown key (AgentScope's model config has type, credential_id, model and "
	     "parameters)"},
	    {"{\"credential_id\": \"c\", \"model\": \"m\"}",
	     "cmc.type: must be a non-empty string"},
	    {"{\"type\": \"t\", \"model\": \"m\"}",
	     "cmc.credential_id: must be a non-empty string"},
	    {"{\"type\": \"t\", \"credential_id\": \"c\", \"model\": \"\"}",
	     "cmc.model: must be a non-empty string"},
	    {"{\"type\": \"t\", \"credential_id\": \"c\", \"model\": \"m\", \"parameters\": []}",
	     "cmc.parameters: must be an object"},
	};
	struct sg_error err = {0};
	json_t *cfg, *v, *want;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg = parse(bad[i].cfg);
		ck_assert_ptr_null(sg_as_model_config(cfg, "cmc", &err));
		ck_assert_int_eq(err.status, 400);
		ck_assert_str_eq(err.message, bad[i].message);
		json_decref(cfg);
	}
	/* comments are allowed and not sent; parameters default to {} */
	cfg =
	    parse("{\"_why\": \"x\", \"type\": \"t\", \"credential_id\": \"c\", \"model\": \"m\"}");
	v = sg_as_model_config(cfg, "cmc", &err);
	want = parse("{\"type\": \"t\", \"credential_id\": \"c\", \"model\": \"m\", "
	             "\"parameters\": {}}");
	ck_assert_msg(v && json_equal(v, want), "normalised config differs");
	json_decref(want);
	json_decref(v);
	json_decref(cfg);
}
END_TEST

/* A message id that cannot be minted is the gateway's failure, not the client's. */
START_TEST(test_id_failure)
{
	json_t *cj = parse("{\"backend\": \"as1\", \"timezone\": \"UTC\", \"now\": "
	                   "\"2026-06-05T06:03:11Z\", \"chat_model_config\": {\"type\": \"t\", "
	                   "\"credential_id\": \"c\", \"model\": \"m\"}}");
	json_t *req = parse("{\"events\": [{\"type\": \"user.message\", \"content\": []}]}");
	struct sg_error err = {0};
	struct sg_as_send plan;
	struct wenv we;

	wenv_open(&we, cj);
	we.w.new_id = failing_id;
	ck_assert_int_eq(sg_as_send_plan(req, &we.w, &plan, &err), -1);
	ck_assert_int_eq(err.status, 500);
	ck_assert_ptr_null(plan.msgs);
	we.w.new_id = NULL;
	ck_assert_int_eq(sg_as_send_plan(req, &we.w, &plan, &err), -1);
	ck_assert_int_eq(err.status, 500);
	wenv_close(&we);
	json_decref(req);
	json_decref(cj);
}
END_TEST

/* ---- tool answers to a parked reply ------------------------------------------------------ */

/* The events context of a resume/ ctx.json (borrowed), its zone in *tz (freed by the caller). */
static void resume_ctx(const json_t *cj, struct sg_as_events_ctx *ec, struct sg_tz **tz)
{
	char why[256] = "";

	memset(ec, 0, sizeof(*ec));
	*tz = sg_tz_load(json_string_value(json_object_get(cj, "tz")), why, sizeof(why));
	ck_assert_msg(*tz != NULL, "%s", why);
	ec->backend = json_string_value(json_object_get(cj, "backend"));
	ec->session_key = json_string_value(json_object_get(cj, "session_key"));
	ec->tz = *tz;
	ec->agent_name = json_string_value(json_object_get(cj, "agent_name"));
	ec->model = json_string_value(json_object_get(cj, "model"));
	ec->session_running = json_is_true(json_object_get(cj, "session_running"));
	ec->hint_mode = (int)json_integer_value(json_object_get(cj, "hint_mode"));
}

/* Block id of every tool_call in log order → the id of the tool-use event the event list gives
 * it, found without the index under test: each tool_call block yields exactly one tool-use
 * event, in log order. New object. */
static json_t *call_event_ids(const json_t *messages, const struct sg_as_events_ctx *ec)
{
	struct sg_error err = {0};
	json_t *events = sg_as_messages_to_events(messages, ec, &err), *map = json_object();
	const json_t *msg, *blk;
	size_t i, j, at = 0;

	ck_assert_msg(events != NULL, "%s", err.message);
	json_array_foreach(messages, i, msg) {
		json_array_foreach(json_object_get(msg, "content"), j, blk) {
			const char *t;

			if (!sg_streq(sg_jstr(blk, "type"), "tool_call"))
				continue;
			for (;; at++) {
				ck_assert_uint_lt(at, json_array_size(events));
				t = sg_jstr(json_array_get(events, at), "type");
				if (sg_streq(t, "agent.tool_use") ||
				    sg_streq(t, "agent.custom_tool_use"))
					break;
			}
			ck_assert_int_eq(
			    json_object_set(map, sg_jstr(blk, "id"),
			                    json_object_get(json_array_get(events, at), "id")),
			    0);
			at++;
		}
	}
	json_decref(events);
	return map;
}

/* Replaces "@call:<block id>" in the request's events with that call's event id. */
static void resolve_calls(json_t *req, const json_t *map)
{
	static const char *const keys[] = {"tool_use_id", "custom_tool_use_id"};
	json_t *ev;
	size_t i;

	json_array_foreach(json_object_get(req, "events"), i, ev) {
		for (size_t k = 0; k < 2; k++) {
			const char *v = sg_jstr(ev, keys[k]);

			if (!v || strncmp(v, "@call:", 6) != 0)
				continue;
			ck_assert_msg(json_object_get(map, v + 6), "no call %s", v + 6);
			ck_assert_int_eq(json_object_set(ev, keys[k], json_object_get(map, v + 6)),
			                 0);
		}
	}
}

START_TEST(test_resume_golden)
{
	char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	size_t n = sg_fixture_list(RESUME, names, MAX_CASES);
	json_t *cj, *log, *req, *map, *got;
	struct sg_as_events_ctx ec;
	struct sg_error err = {0};
	struct sg_tz *tz;
	const char *name;

	ck_assert_uint_lt((size_t)_i, n);
	name = names[_i];
	cj = sg_fixture_load(RESUME, name, "ctx.json");
	log = sg_fixture_load(RESUME, name, "messages.json");
	req = sg_fixture_load(RESUME, name, "request.json");
	ck_assert_msg(cj && log && req, "%s: ctx, messages and request are required", name);
	resume_ctx(cj, &ec, &tz);
	map = call_event_ids(log, &ec);
	resolve_calls(req, map);
	got = sg_as_resume_input(json_object_get(req, "events"), log, &ec, &err);
	if (!got) {
		ck_assert_int_eq(err.status, 400);
		got = error_json(&err);
	}
	ck_assert_msg(sg_fixture_expect(got, RESUME, name, "expected.json"),
	              "%s: output differs from expected.json", name);
	json_decref(got);
	json_decref(map);
	json_decref(req);
	json_decref(log);
	json_decref(cj);
	sg_tz_free(tz);
}
END_TEST

/* The index names every tool-use event of the list, at the block it came from, for every log
 * the events goldens and the resume fixtures hold. */
START_TEST(test_tool_use_index)
{
	static const char *const groups[] = {"agentscope/events", RESUME};
	char names[MAX_CASES][SG_FIXTURE_NAME_MAX];

	for (size_t g = 0; g < 2; g++) {
		size_t n = sg_fixture_list(groups[g], names, MAX_CASES);

		for (size_t c = 0; c < n; c++) {
			json_t *cj = sg_fixture_load(groups[g], names[c], "ctx.json");
			json_t *log = sg_fixture_load(groups[g], names[c], "messages.json");
			json_t *events, *index;
			struct sg_as_events_ctx ec;
			struct sg_error err = {0};
			const json_t *ev;
			size_t i, tail, uses = 0;
			struct sg_tz *tz;

			resume_ctx(cj, &ec, &tz);
			events = sg_as_messages_to_events(log, &ec, &err);
			index = sg_as_tool_use_index(log, &ec, &tail, &err);
			ck_assert_msg(!events == !index, "%s: %s", names[c], err.message);
			json_array_foreach(events, i, ev) {
				const char *t = sg_jstr(ev, "type");
				const json_t *loc, *blk;

				if (!sg_streq(t, "agent.tool_use") &&
				    !sg_streq(t, "agent.custom_tool_use"))
					continue;
				uses++;
				loc = json_object_get(index, sg_jstr(ev, "id"));
				ck_assert_msg(loc != NULL, "%s: %s not indexed", names[c],
				              sg_jstr(ev, "id"));
				blk = json_array_get(
				    json_object_get(
				        json_array_get(log, (size_t)json_integer_value(
				                                json_array_get(loc, 0))),
				        "content"),
				    (size_t)json_integer_value(json_array_get(loc, 1)));
				ck_assert_str_eq(sg_jstr(blk, "type"), "tool_call");
				ck_assert_str_eq(sg_jstr(blk, "name"), sg_jstr(ev, "name"));
			}
			if (index) {
				ck_assert_uint_eq(json_object_size(index), uses);
				ck_assert(tail == SIZE_MAX || tail < json_array_size(log));
			}
			json_decref(index);
			json_decref(events);
			json_decref(log);
			json_decref(cj);
			sg_tz_free(tz);
		}
	}
}
END_TEST

/* The echo of sent messages is what events.list shows once AgentScope stored them: same ids,
 * processed_at and content, whatever came before and after them in the log. */
START_TEST(test_echo_matches_list)
{
	json_t *cj = parse("{\"backend\": \"as1\", \"timezone\": \"America/New_York\", "
	                   "\"now\": \"2026-06-05T06:03:11.123456Z\"}");
	json_t *req =
	    parse("{\"events\": [{\"type\": \"user.message\", \"content\": [{\"type\": \"text\", "
	          "\"text\": \"first\"}, {\"type\": \"image\", \"source\": {\"type\": \"base64\", "
	          "\"media_type\": \"image/png\", \"data\": \"iVBORw0KGgo=\"}}]}, {\"type\": "
	          "\"user.message\", \"content\": [{\"type\": \"document\", \"source\": {\"type\": "
	          "\"text\", \"media_type\": \"text/plain\", \"data\": \"notes ✓\"}, \"title\": "
	          "\"n.txt\"}, {\"type\": \"document\", \"source\": {\"type\": \"base64\", "
	          "\"media_type\": \"application/pdf\", \"data\": \"JVBERi0x\"}}]}]}");
	json_t *stored, *echo, *listed, *m;
	struct sg_as_events_ctx ec = {0}, list_ec;
	struct sg_error err = {0};
	struct sg_as_send plan;
	const json_t *ev;
	struct wenv we;
	size_t i, j;

	wenv_open(&we, cj);
	ck_assert_int_eq(sg_as_send_plan(req, &we.w, &plan, &err), 0);
	ec.backend = "as1";
	ec.session_key = "agent1/sess1";
	ec.tz = we.e.tz;
	echo = sg_as_send_echo(req, &plan, &ec, we.w.now_us, &err);
	ck_assert_msg(echo != NULL, "%s", err.message);
	ck_assert_uint_eq(json_array_size(json_object_get(echo, "data")), 2);

	/* The log as AgentScope keeps it: an earlier turn, the Msgs as it stores them (block ids
	 * and times of its own, metadata, no finish), then the reply they started. */
	stored = parse("[{\"id\": \"m0\", \"name\": \"user\", \"role\": \"user\", "
	               "\"content\": [{\"type\": \"text\", \"text\": \"earlier\"}], "
	               "\"created_at\": \"2026-06-04T10:00:00\"}, {\"id\": \"r0\", \"name\": "
	               "\"Friday\", \"role\": \"assistant\", \"content\": [{\"type\": "
	               "\"text\", \"text\": \"ok\"}], \"created_at\": \"2026-06-04T10:00:01\", "
	               "\"finished_at\": \"2026-06-04T10:00:02\"}]");
	json_array_foreach(plan.msgs, i, m) {
		json_t *copy = json_deep_copy(m), *blk;

		json_array_foreach(json_object_get(copy, "content"), j, blk) {
			json_object_set_new(blk, "id", json_sprintf("blk%zu%zu", i, j));
			json_object_set_new(blk, "created_at", json_string("2026-06-05T02:03:12"));
			json_object_set_new(blk, "finished_at", json_null());
		}
		json_object_set_new(copy, "metadata", json_object());
		json_object_set_new(copy, "finished_at", json_null());
		json_object_set_new(copy, "usage", json_null());
		json_array_append_new(stored, copy);
	}
	json_array_append_new(stored,
	                      parse("{\"id\": \"r1\", \"name\": \"Friday\", \"role\": "
	                            "\"assistant\", \"content\": [{\"type\": \"text\", \"text\": "
	                            "\"thinking…\"}], \"created_at\": \"2026-06-05T02:03:13\"}"));
	list_ec = ec;
	list_ec.agent_name = "Friday";
	list_ec.session_running = 1;
	listed = sg_as_messages_to_events(stored, &list_ec, &err);
	ck_assert_msg(listed != NULL, "%s", err.message);
	json_array_foreach(json_object_get(echo, "data"), i, ev) {
		long at = sg_check_find_event(listed, sg_jstr(ev, "id"));

		ck_assert_msg(at >= 0, "echoed %s is not in the list", sg_jstr(ev, "id"));
		ck_assert_msg(json_equal(ev, json_array_get(listed, (size_t)at)),
		              "echo %zu differs from the listed event", i);
	}
	/* now in New York, naive, as AgentScope writes it; read back as the same instant */
	ck_assert_str_eq(sg_jstr(json_array_get(plan.msgs, 0), "created_at"),
	                 "2026-06-05T02:03:11.123456");
	ck_assert_str_eq(sg_jstr(json_array_get(json_object_get(echo, "data"), 0), "processed_at"),
	                 "2026-06-05T06:03:11.123456Z");
	json_decref(listed);
	json_decref(stored);
	json_decref(echo);
	json_decref(plan.msgs);
	json_decref(req);
	json_decref(cj);
	wenv_close(&we);
}
END_TEST

/* Events that leave no event of their own in AgentScope's log are echoed as sent, with ids of
 * their own: the same answer for the same request and time, distinct across events. */
START_TEST(test_echo_other_kinds)
{
	static const struct {
		enum sg_as_send_kind kind;
		const char *body;
	} cases[] = {
	    {SG_AS_SEND_INTERRUPT, "{\"events\": [{\"type\": \"user.interrupt\"}, {\"type\": "
	                           "\"user.interrupt\", \"session_thread_id\": null}]}"},
	    {SG_AS_SEND_CONFIRMATION,
	     "{\"events\": [{\"type\": \"user.tool_confirmation\", \"tool_use_id\": \"sevt_a\", "
	     "\"result\": \"deny\", \"deny_message\": \"no\"}, {\"type\": "
	     "\"user.tool_confirmation\", \"tool_use_id\": \"sevt_b\", \"result\": \"allow\"}]}"},
	    {SG_AS_SEND_TOOL_RESULT,
	     "{\"events\": [{\"type\": \"user.custom_tool_result\", \"custom_tool_use_id\": "
	     "\"sevt_c\", \"is_error\": true, \"content\": [{\"type\": \"text\", \"text\": "
	     "\"boom\"}]}]}"},
	};
	struct sg_as_events_ctx ec = {.backend = "as1", .session_key = "agent1/sess1"};
	int64_t now;

	ck_assert_int_eq(sg_time_parse_rfc3339("2026-06-05T06:03:11Z", &now), 0);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct sg_as_send plan = {.kind = cases[c].kind};
		json_t *body = parse(cases[c].body), *a, *b, *ev;
		struct sg_error err = {0};
		size_t i;

		a = sg_as_send_echo(body, &plan, &ec, now, &err);
		b = sg_as_send_echo(body, &plan, &ec, now, &err);
		ck_assert_msg(a && b && json_equal(a, b), "%zu: %s", c, err.message);
		json_array_foreach(json_object_get(a, "data"), i, ev) {
			const json_t *sent = json_array_get(json_object_get(body, "events"), i);
			json_t *want = json_deep_copy(sent);

			ck_assert_uint_eq(strlen(sg_jstr(ev, "id")), SG_EVENT_ID_LEN);
			ck_assert_str_eq(sg_jstr(ev, "processed_at"), "2026-06-05T06:03:11Z");
			json_object_set(want, "id", json_object_get(ev, "id"));
			json_object_set_new(want, "processed_at",
			                    json_string("2026-06-05T06:03:11Z"));
			ck_assert_msg(json_equal(ev, want), "%zu: echo %zu is not the event sent",
			              c, i);
			json_decref(want);
		}
		ck_assert_int_eq(sg_check_unique_ids(json_object_get(a, "data")), 0);
		json_decref(a);
		json_decref(b);
		/* a second later, other ids: two requests never share an echo id */
		a = sg_as_send_echo(body, &plan, &ec, now + 1000000, &err);
		b = sg_as_send_echo(body, &plan, &ec, now, &err);
		ck_assert_str_ne(sg_jstr(json_array_get(json_object_get(a, "data"), 0), "id"),
		                 sg_jstr(json_array_get(json_object_get(b, "data"), 0), "id"));
		json_decref(a);
		json_decref(b);
		json_decref(body);
	}
}
END_TEST

/* Every allocation failure in the write translations is a 500 that leaks nothing; success is
 * the same answer as without failures. */
START_TEST(test_writes_oom)
{
	json_t *cj = sg_fixture_load(WRITES, "create-full", "ctx.json");
	json_t *create = sg_fixture_load(WRITES, "create-full", "request.json");
	json_t *send = sg_fixture_load(WRITES, "send-messages", "request.json");
	json_t *rcj = sg_fixture_load(RESUME, "result-error-blocks", "ctx.json");
	json_t *log = sg_fixture_load(RESUME, "result-error-blocks", "messages.json");
	json_t *rreq = sg_fixture_load(RESUME, "result-error-blocks", "request.json");
	json_t *agents = sg_fixture_load(AGENTS, "basic", "agents.json"), *map;
	struct sg_as_events_ctx ec;
	struct sg_tz *tz;
	struct wenv we;
	long n;

	ck_assert(cj && create && send && rcj && log && rreq && agents);
	wenv_open(&we, cj);
	resume_ctx(rcj, &ec, &tz);
	map = call_event_ids(log, &ec);
	resolve_calls(rreq, map);
	for (int step = 0; step < 5; step++) {
		for (n = 0;; n++) {
			struct sg_error err = {0};
			struct sg_as_create c = {0};
			struct sg_as_send plan = {0};
			json_t *got = NULL;
			long live;
			int rc = 0;

			we.ids = 0;
			sg_fixture_alloc_begin(n);
			switch (step) {
			case 0:
				rc = sg_as_create_request(create, &we.w, &c, &err);
				json_decref(c.session_body);
				json_decref(c.chat_input);
				break;
			case 1:
				rc = sg_as_send_plan(send, &we.w, &plan, &err);
				if (rc == 0) {
					got = sg_as_send_echo(send, &plan, &ec, we.w.now_us, &err);
					rc = got ? 0 : -1;
				}
				json_decref(plan.msgs);
				break;
			case 2:
				got = sg_as_resume_input(json_object_get(rreq, "events"), log, &ec,
				                         &err);
				rc = got ? 0 : -1;
				break;
			case 3:
				plan.kind = SG_AS_SEND_TOOL_RESULT;
				got = sg_as_send_echo(rreq, &plan, &ec, we.w.now_us, &err);
				rc = got ? 0 : -1;
				break;
			default:
				got = sg_as_agents_to_cma(agents, "m", &we.e.ctx, &err);
				rc = got ? 0 : -1;
				break;
			}
			json_decref(got);
			if (rc) {
				ck_assert_msg(sg_fixture_alloc_fired(),
				              "step %d: failed without a failed allocation: %s",
				              step, err.message);
				ck_assert_msg(err.status == 500, "step %d at %ld: %d %s", step, n,
				              err.status, err.message);
			}
			live = sg_fixture_alloc_end();
			ck_assert_msg(live == 0, "step %d: %ld allocations leaked at %ld", step,
			              live, n);
			if (!sg_fixture_alloc_fired())
				break;
		}
	}
	json_decref(map);
	sg_tz_free(tz);
	wenv_close(&we);
	json_decref(agents);
	json_decref(rreq);
	json_decref(log);
	json_decref(rcj);
	json_decref(send);
	json_decref(create);
	json_decref(cj);
}
END_TEST

/* ---- the module's I/O, against a scripted backend ------------------------------------------ */

extern const struct sg_mapping sg_mapping_agentscope;

#define AS_OPTS                                                                                    \
	"{\"timezone\": \"Asia/Shanghai\", \"chat_model_config\": {\"type\": "                     \
	"\"dashscope_credential\", \"credential_id\": \"cred-1\", \"model\": \"qwen-max\"}}"
#define AS_USER "{\"user_id\": \"u1\"}"
#define AS_AGENTS                                                                                  \
	"{\"agents\": [{\"id\": \"agent1\", \"user_id\": \"u1\", \"source\": \"user\", "           \
	"\"created_at\": \"2026-06-01T09:00:00\", \"updated_at\": \"2026-06-01T09:00:00\", "       \
	"\"data\": {\"name\": \"Friday\", \"system_prompt\": \"Be brief.\"}}], \"total\": 1}"
#define AS_LISTING_PATH "/sessions/?agent_id=agent1"

/* A newer-build listing of agent1 holding session sid with this status and name (static
 * buffer, valid until the next call). */
static const char *as_listing(const char *sid, const char *status, const char *name)
{
	static char buf[2048];

	snprintf(buf, sizeof(buf),
	         "{\"sessions\": [{\"session\": {\"id\": \"%s\", \"agent_id\": \"agent1\", "
	         "\"user_id\": \"u1\", \"source\": \"user\", \"created_at\": "
	         "\"2026-06-05T14:03:11\", \"updated_at\": \"2026-06-05T14:03:12\", \"config\": "
	         "{\"workspace_id\": \"ws1\", \"name\": \"%s\", \"chat_model_config\": {\"type\": "
	         "\"dashscope_credential\", \"credential_id\": \"cred-1\", \"model\": "
	         "\"qwen-max\", \"parameters\": {}}}, \"state\": {\"context\": [], \"summary\": "
	         "\"\"}}, \"is_running\": %s, \"status\": \"%s\", \"team\": null}], \"total\": 1}",
	         sid, name, strcmp(status, "running") ? "false" : "true", status);
	return buf;
}

static const json_t *seen_at(const struct sg_flow *f, size_t i)
{
	const json_t *r = json_array_get(sg_flow_seen(f), i);

	ck_assert_msg(r != NULL, "request %zu was not sent", i);
	return r;
}

/* Request i was "METHOD URI", sent as user u1, with a JSON body on writes. */
static const json_t *expect_request(const struct sg_flow *f, size_t i, const char *method,
                                    const char *uri)
{
	const json_t *r = seen_at(f, i);

	ck_assert_str_eq(sg_jstr(r, "method"), method);
	ck_assert_str_eq(sg_jstr(r, "uri"), uri);
	ck_assert_str_eq(sg_jstr(r, "user"), "u1");
	if (strcmp(method, "GET") != 0 && json_is_object(json_object_get(r, "body")))
		ck_assert_str_eq(sg_jstr(r, "type"), "application/json");
	return r;
}

/* Whether the requests seen include "METHOD URI". */
static int was_sent(const struct sg_flow *f, const char *method, const char *uri)
{
	const json_t *r;
	size_t i;

	json_array_foreach(sg_flow_seen(f), i, r) {
		if (sg_streq(sg_jstr(r, "method"), method) && sg_streq(sg_jstr(r, "uri"), uri))
			return 1;
	}
	return 0;
}

static void expect_flow_error(const struct sg_flow *f, int status, const char *needle)
{
	const struct sg_error *e = sg_flow_error(f);

	ck_assert_msg(e != NULL, "the call succeeded");
	ck_assert_msg(e->status == status, "status %d: %s", e->status, e->message);
	ck_assert_msg(strstr(e->message, needle) != NULL, "'%s' not in: %s", needle, e->message);
}

static void expect_pubid(const json_t *s, const char *sid)
{
	char want[SG_ID_MAX];

	ck_assert_int_ge(sg_id_encode("sesn_", "as1", "agent1", sid, want, sizeof(want)), 0);
	ck_assert_str_eq(sg_jstr(s, "id"), want);
}

START_TEST(test_flow_create)
{
	struct sg_flow *f = sg_flow_new(&sg_mapping_agentscope, "as1", AS_OPTS);
	const json_t *r, *input;
	json_t *s;

	sg_flow_route(f, "POST", "/sessions/", 201, "{\"session_id\": \"s-new\"}");
	sg_flow_route(f, "POST", "/chat/", 200,
	              "{\"status\": \"started\", \"session_id\": \"s-new\"}");
	sg_flow_route(f, "GET", "/agent/", 200, AS_AGENTS);
	sg_flow_route(f, "GET", AS_LISTING_PATH, 200, as_listing("s-new", "running", "Report"));
	sg_flow_run(f, SG_CALL_CREATE_SESSION, AS_USER, NULL,
	            "{\"agent\": \"agent1\", \"environment_id\": \"env_ws1\", \"title\": "
	            "\"Report\", \"initial_events\": [{\"type\": \"user.message\", \"content\": "
	            "[{\"type\": \"text\", \"text\": \"hi\"}]}]}",
	            -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	s = sg_flow_object(f);
	expect_pubid(s, "s-new");
	ck_assert_str_eq(sg_jstr(s, "title"), "Report");
	ck_assert_str_eq(sg_jstr(s, "environment_id"), "env_ws1");
	ck_assert_str_eq(sg_jstr(json_object_get(s, "agent"), "name"), "Friday");
	/* the session first, then its initial events, then the read-back */
	ck_assert_uint_eq(json_array_size(sg_flow_seen(f)), 4);
	r = expect_request(f, 0, "POST", "/sessions/");
	ck_assert_str_eq(sg_jstr(json_object_get(r, "body"), "agent_id"), "agent1");
	ck_assert_str_eq(sg_jstr(json_object_get(r, "body"), "workspace_id"), "ws1");
	ck_assert_str_eq(sg_jstr(json_object_get(r, "body"), "name"), "Report");
	ck_assert_str_eq(
	    sg_jstr(json_object_get(json_object_get(r, "body"), "chat_model_config"), "model"),
	    "qwen-max");
	r = expect_request(f, 1, "POST", "/chat/");
	ck_assert_str_eq(sg_jstr(json_object_get(r, "body"), "session_id"), "s-new");
	input = json_object_get(json_object_get(r, "body"), "input");
	ck_assert_uint_eq(strlen(sg_jstr(input, "id")), 32);
	ck_assert_str_eq(sg_jstr(input, "role"), "user");
	ck_assert_str_eq(sg_jstr(input, "created_at"), "2026-06-05T14:03:11.123456");
	ck_assert(was_sent(f, "GET", "/agent/") && was_sent(f, "GET", AS_LISTING_PATH));
	sg_flow_free(f);
}
END_TEST

/* Once the session exists, a failure must not invite the SDK to create it again. */
START_TEST(test_flow_create_then_failures)
{
	struct sg_flow *f = sg_flow_new(&sg_mapping_agentscope, "as1", AS_OPTS);
	const struct sg_error *e;

	sg_flow_route(f, "POST", "/sessions/", 201, "{\"session_id\": \"s-new\"}");
	sg_flow_route(f, "GET", "/agent/", 200, AS_AGENTS);
	sg_flow_route(f, "GET", AS_LISTING_PATH, 500, "{\"detail\": \"boom\"}");
	sg_flow_run(f, SG_CALL_CREATE_SESSION, AS_USER, NULL,
	            "{\"agent\": \"agent1\", \"environment_id\": \"env_none\"}", -1);
	expect_flow_error(f, 502, "was created, but reading it back failed");
	e = sg_flow_error(f);
	ck_assert_int_eq(e->should_retry, 0);
	ck_assert_ptr_nonnull(strstr(e->message, "do not send the write again"));
	ck_assert_ptr_null(json_object_get(json_object_get(seen_at(f, 0), "body"), "workspace_id"));

	/* the listing no longer shows it */
	sg_flow_route(f, "GET", AS_LISTING_PATH, 200, as_listing("other", "idle", "x"));
	sg_flow_run(f, SG_CALL_CREATE_SESSION, AS_USER, NULL,
	            "{\"agent\": \"agent1\", \"environment_id\": \"env_none\"}", -1);
	expect_flow_error(f, 502, "does not list the session");
	ck_assert_int_eq(sg_flow_error(f)->should_retry, 0);

	/* initial events refused after the session was made */
	sg_flow_route(f, "POST", "/chat/", 422, "{\"detail\": [{\"msg\": \"bad input\"}]}");
	sg_flow_run(f, SG_CALL_CREATE_SESSION, AS_USER, NULL,
	            "{\"agent\": \"agent1\", \"environment_id\": \"env_none\", "
	            "\"initial_events\": [{\"type\": \"user.message\", \"content\": []}]}",
	            -1);
	e = sg_flow_error(f);
	ck_assert_ptr_nonnull(e);
	ck_assert_ptr_nonnull(strstr(e->message, "sending its initial events failed"));
	ck_assert_int_eq(e->should_retry, 0);
	ck_assert_uint_eq(json_array_size(sg_flow_seen(f)), 2);

	/* an answer without a session id */
	sg_flow_route(f, "POST", "/sessions/", 201, "{}");
	sg_flow_run(f, SG_CALL_CREATE_SESSION, AS_USER, NULL,
	            "{\"agent\": \"agent1\", \"environment_id\": \"env_none\"}", -1);
	expect_flow_error(f, 502, "may have created a session of agent 'agent1'");
	ck_assert_int_eq(sg_flow_error(f)->should_retry, 0);
	sg_flow_free(f);
}
END_TEST

START_TEST(test_flow_create_refused)
{
	struct sg_flow *f = sg_flow_new(&sg_mapping_agentscope, "as1", AS_OPTS);

	/* by the gateway: nothing is sent */
	sg_flow_run(f, SG_CALL_CREATE_SESSION, AS_USER, NULL,
	            "{\"agent\": {\"type\": \"agent_with_overrides\", \"id\": \"agent1\", "
	            "\"system\": \"x\"}, \"environment_id\": \"env_none\"}",
	            -1);
	expect_flow_error(f, 400, "cannot override an agent per session (given: system)");
	ck_assert_uint_eq(json_array_size(sg_flow_seen(f)), 0);
	/* by the backend */
	sg_flow_route(f, "POST", "/sessions/", 404, "{\"detail\": \"Agent 'nope' not found.\"}");
	sg_flow_run(f, SG_CALL_CREATE_SESSION, AS_USER, NULL,
	            "{\"agent\": \"nope\", \"environment_id\": \"env_none\"}", -1);
	expect_flow_error(f, 404, "not found");
	ck_assert_uint_eq(json_array_size(sg_flow_seen(f)), 1);
	sg_flow_free(f);
	/* a backend configured without a model takes no creates */
	f = sg_flow_new(&sg_mapping_agentscope, "as1", "{\"timezone\": \"UTC\"}");
	sg_flow_run(f, SG_CALL_CREATE_SESSION, AS_USER, NULL,
	            "{\"agent\": \"agent1\", \"environment_id\": \"env_none\"}", -1);
	expect_flow_error(f, 400, "no chat_model_config");
	sg_flow_free(f);
}
END_TEST

/* A retrieve of a session the listing does not show is a 404, unless a record of the listing
 * could not be read: the session may be that record, so it is a 502, never "not found" (a
 * client could take it for deleted). */
START_TEST(test_flow_get_unreadable_record)
{
	struct sg_flow *f = sg_flow_new(&sg_mapping_agentscope, "as1", AS_OPTS);
	struct sg_pubid other = sg_flow_id("as1", "agent1", "s9");
	struct sg_pubid id = sg_flow_id("as1", "agent1", "s1");
	char broken[2400];

	sg_flow_route(f, "GET", "/agent/", 200, AS_AGENTS);
	sg_flow_route(f, "GET", AS_LISTING_PATH, 200, as_listing("s1", "idle", "Fine"));
	sg_flow_run(f, SG_CALL_GET_SESSION, AS_USER, &id, NULL, -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	sg_flow_run(f, SG_CALL_GET_SESSION, AS_USER, &other, NULL, -1);
	expect_flow_error(f, 404, "session not found");
	/* the listing's second record has no readable session id */
	snprintf(broken, sizeof(broken), "%s", as_listing("s1", "idle", "Fine"));
	snprintf(strstr(broken, "], \"total\""), 200,
	         ", {\"session\": {\"id\": 42, \"agent_id\": \"agent1\"}}], \"total\": 2}");
	sg_flow_route(f, "GET", AS_LISTING_PATH, 200, broken);
	sg_flow_run(f, SG_CALL_GET_SESSION, AS_USER, &other, NULL, -1);
	expect_flow_error(f, 502, "cannot read (sessions[1] first)");
	ck_assert_int_eq(sg_flow_error(f)->should_retry, 0);
	sg_flow_run(f, SG_CALL_GET_SESSION, AS_USER, &id, NULL, -1); /* the readable one still is */
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	sg_flow_free(f);
}
END_TEST

/* A retrieve sums usage over the whole message log, paging back with before= (nothing kept
 * but the sums), and remembers it: a second retrieve of the unchanged session reads no log.
 * A log that cannot be read leaves the usage unknown and the session is still answered; a log
 * that cannot be paged further gives the sum so far, marked partial. */
#define AS_MSGS_PATH "/sessions/s1/messages?agent_id=agent1&limit=200"
START_TEST(test_flow_get_usage)
{
	struct sg_flow *f = sg_flow_new(&sg_mapping_agentscope, "as1", AS_OPTS);
	struct sg_pubid id = sg_flow_id("as1", "agent1", "s1");
	const json_t *u;
	json_t *s;

	sg_flow_route(f, "GET", "/agent/", 200, AS_AGENTS);
	sg_flow_route(f, "GET", AS_LISTING_PATH, 200, as_listing("s1", "idle", "Fine"));
	sg_flow_route(f, "GET", AS_MSGS_PATH, 200,
	              "{\"messages\": [{\"id\": \"m3\", \"usage\": {\"input_tokens\": 10, "
	              "\"output_tokens\": 5, \"cache_input_tokens\": 2, "
	              "\"cache_creation_input_tokens\": 1}}, {\"id\": \"m4\", \"usage\": "
	              "{\"input_tokens\": 20, \"output_tokens\": 7}}], \"is_running\": false, "
	              "\"has_more\": true}");
	sg_flow_route(f, "GET", AS_MSGS_PATH "&before=m3", 200,
	              "{\"messages\": [{\"id\": \"m1\", \"usage\": {\"input_tokens\": 1, "
	              "\"output_tokens\": 1.9}}, {\"id\": \"m2\", \"usage\": null}], "
	              "\"is_running\": false, \"has_more\": false}");
	sg_flow_run(f, SG_CALL_GET_SESSION, AS_USER, &id, NULL, -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	s = sg_flow_object(f);
	u = json_object_get(s, "usage");
	ck_assert_int_eq(json_integer_value(json_object_get(u, "input_tokens")), 31);
	ck_assert_int_eq(json_integer_value(json_object_get(u, "output_tokens")), 13);
	ck_assert_int_eq(json_integer_value(json_object_get(u, "cache_read_input_tokens")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(u, "cache_creation"),
	                                                    "ephemeral_5m_input_tokens")),
	                 1);
	ck_assert_str_eq(sg_jstr(json_object_get(s, "metadata"), "agentscope.usage"), "messages");
	ck_assert(was_sent(f, "GET", AS_MSGS_PATH "&before=m3"));

	/* remembered: the log is not read again */
	sg_flow_route(f, "GET", AS_MSGS_PATH, 500, "{}");
	sg_flow_run(f, SG_CALL_GET_SESSION, AS_USER, &id, NULL, -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	ck_assert(!was_sent(f, "GET", AS_MSGS_PATH));
	ck_assert_int_eq(json_integer_value(json_object_get(
	                     json_object_get(sg_flow_object(f), "usage"), "input_tokens")),
	                 31);

	/* a later run (updated_at moved): the log cannot be read, the session is still answered */
	{
		char buf[2048];
		char *p;

		snprintf(buf, sizeof(buf), "%s", as_listing("s1", "idle", "Fine"));
		p = strstr(buf, "14:03:12");
		ck_assert_ptr_nonnull(p);
		memcpy(p, "15:00:00", 8);
		sg_flow_route(f, "GET", AS_LISTING_PATH, 200, buf);
	}
	sg_flow_run(f, SG_CALL_GET_SESSION, AS_USER, &id, NULL, -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	ck_assert(was_sent(f, "GET", AS_MSGS_PATH));
	s = sg_flow_object(f);
	ck_assert_int_eq(json_object_size(json_object_get(s, "usage")), 0);
	ck_assert_str_eq(sg_jstr(json_object_get(s, "metadata"), "agentscope.usage"),
	                 "unavailable");

	/* a log whose paging does not move on: the sum so far, partial */
	sg_flow_route(f, "GET", AS_MSGS_PATH, 200,
	              "{\"messages\": [{\"id\": \"m3\", \"usage\": {\"input_tokens\": 4}}], "
	              "\"has_more\": true}");
	sg_flow_route(f, "GET", AS_MSGS_PATH "&before=m3", 200,
	              "{\"messages\": [{\"id\": \"m3\", \"usage\": {\"input_tokens\": 4}}], "
	              "\"has_more\": true}");
	sg_flow_run(f, SG_CALL_GET_SESSION, AS_USER, &id, NULL, -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	s = sg_flow_object(f);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(s, "usage"), "input_tokens")), 8);
	ck_assert_str_eq(sg_jstr(json_object_get(s, "metadata"), "agentscope.usage"),
	                 "messages_partial");
	sg_flow_free(f);
}
END_TEST

/* A log longer than a retrieve reads (AS_USAGE_MAX_MESSAGES, 10,000: 50 pages of 200): the
 * newest 10,000 are summed, the usage says messages_partial, and no 51st page is asked for. */
START_TEST(test_flow_get_usage_bounded)
{
	struct sg_flow *f = sg_flow_new(&sg_mapping_agentscope, "as1", AS_OPTS);
	struct sg_pubid id = sg_flow_id("as1", "agent1", "s1");
	char *page = malloc(200 * 64 + 64), uri[256];
	size_t n;
	json_t *s;

	ck_assert_ptr_nonnull(page);
	sg_flow_route(f, "GET", "/agent/", 200, AS_AGENTS);
	sg_flow_route(f, "GET", AS_LISTING_PATH, 200, as_listing("s1", "idle", "Fine"));
	for (int k = 0; k <= 50; k++) {
		n = (size_t)snprintf(page, 64, "{\"messages\": [");
		for (int j = 0; j < 200; j++)
			n += (size_t)snprintf(page + n, 64,
			                      "%s{\"id\": \"p%d_%d\", \"usage\": "
			                      "{\"input_tokens\": 1}}",
			                      j ? ", " : "", k, j);
		snprintf(page + n, 64, "], \"has_more\": true}");
		if (k == 0)
			snprintf(uri, sizeof(uri), "%s", AS_MSGS_PATH);
		else
			snprintf(uri, sizeof(uri), "%s&before=p%d_0", AS_MSGS_PATH, k - 1);
		sg_flow_route(f, "GET", uri, 200, page);
	}
	sg_flow_run(f, SG_CALL_GET_SESSION, AS_USER, &id, NULL, -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	s = sg_flow_object(f);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(s, "usage"), "input_tokens")),
	    10000);
	ck_assert_str_eq(sg_jstr(json_object_get(s, "metadata"), "agentscope.usage"),
	                 "messages_partial");
	ck_assert(was_sent(f, "GET", AS_MSGS_PATH "&before=p48_0"));
	ck_assert(!was_sent(f, "GET", AS_MSGS_PATH "&before=p49_0"));
	free(page);
	sg_flow_free(f);
}
END_TEST

START_TEST(test_flow_update)
{
	struct sg_flow *f = sg_flow_new(&sg_mapping_agentscope, "as1", AS_OPTS);
	struct sg_pubid id = sg_flow_id("as1", "agent1", "s1");
	const json_t *r;

	sg_flow_route(f, "PATCH", "/sessions/s1?agent_id=agent1", 200, "{\"id\": \"s1\"}");
	sg_flow_route(f, "GET", "/agent/", 200, AS_AGENTS);
	sg_flow_route(f, "GET", AS_LISTING_PATH, 200, as_listing("s1", "idle", "Renamed"));
	sg_flow_run(f, SG_CALL_UPDATE_SESSION, AS_USER, &id, "{\"title\": \"Renamed\"}", -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	expect_pubid(sg_flow_object(f), "s1");
	ck_assert_str_eq(sg_jstr(sg_flow_object(f), "title"), "Renamed");
	r = expect_request(f, 0, "PATCH", "/sessions/s1?agent_id=agent1");
	ck_assert_str_eq(sg_jstr(json_object_get(r, "body"), "name"), "Renamed");
	ck_assert_uint_eq(json_object_size(json_object_get(r, "body")), 1);

	/* nothing AgentScope stores changes: only read */
	sg_flow_run(f, SG_CALL_UPDATE_SESSION, AS_USER, &id, "{\"metadata\": {}}", -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	ck_assert(!was_sent(f, "PATCH", "/sessions/s1?agent_id=agent1"));

	/* refused by AgentScope while running */
	sg_flow_route(f, "PATCH", "/sessions/s1?agent_id=agent1", 409,
	              "{\"detail\": \"Cannot modify session configuration while the session is "
	              "running.\"}");
	sg_flow_run(f, SG_CALL_UPDATE_SESSION, AS_USER, &id, "{\"title\": \"x\"}", -1);
	expect_flow_error(f, 409, "while the session is running");
	ck_assert_uint_eq(json_array_size(sg_flow_seen(f)), 1);

	/* refused by the gateway */
	sg_flow_run(f, SG_CALL_UPDATE_SESSION, AS_USER, &id, "{\"metadata\": {\"k\": \"v\"}}", -1);
	expect_flow_error(f, 400, "cannot store metadata");
	ck_assert_uint_eq(json_array_size(sg_flow_seen(f)), 0);
	sg_flow_free(f);
}
END_TEST

START_TEST(test_flow_archive_delete)
{
	struct sg_flow *f = sg_flow_new(&sg_mapping_agentscope, "as1", AS_OPTS);
	struct sg_pubid id = sg_flow_id("as1", "agent1", "s1");

	sg_flow_run(f, SG_CALL_ARCHIVE_SESSION, AS_USER, &id, NULL, -1);
	expect_flow_error(f, 400,
	                  "backend 'as1' (agentscope) has no archive: delete the session "
	                  "instead");
	ck_assert_uint_eq(json_array_size(sg_flow_seen(f)), 0);

	sg_flow_route(f, "DELETE", "/sessions/s1?agent_id=agent1", 204, "");
	sg_flow_run(f, SG_CALL_DELETE_SESSION, AS_USER, &id, NULL, -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	ck_assert_ptr_null(sg_flow_object(f));
	expect_request(f, 0, "DELETE", "/sessions/s1?agent_id=agent1");

	id = sg_flow_id("as1", "agent1", "gone");
	sg_flow_route(f, "DELETE", "/sessions/gone?agent_id=agent1", 404,
	              "{\"detail\": \"Session 'gone' not found.\"}");
	sg_flow_run(f, SG_CALL_DELETE_SESSION, AS_USER, &id, NULL, -1);
	expect_flow_error(f, 404, "not found");
	sg_flow_free(f);
}
END_TEST

START_TEST(test_flow_send_message)
{
	struct sg_flow *f = sg_flow_new(&sg_mapping_agentscope, "as1", AS_OPTS);
	struct sg_pubid id = sg_flow_id("as1", "agent1", "s1");
	struct sg_as_events_ctx ec = {.backend = "as1", .session_key = "agent1/s1"};
	struct sg_error err = {0};
	const json_t *r, *echo;
	json_t *sent, *listed;
	struct sg_tz *tz;
	char why[128];

	sg_flow_route(f, "GET", AS_LISTING_PATH, 200, as_listing("s1", "idle", "x"));
	sg_flow_route(f, "POST", "/chat/", 200,
	              "{\"status\": \"started\", \"session_id\": \"s1\"}");
	sg_flow_run(f, SG_CALL_SEND_EVENTS, AS_USER, &id,
	            "{\"events\": [{\"type\": \"user.message\", \"content\": [{\"type\": "
	            "\"text\", \"text\": \"hello\"}]}]}",
	            -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	expect_request(f, 0, "GET", AS_LISTING_PATH);
	r = expect_request(f, 1, "POST", "/chat/");
	ck_assert_str_eq(sg_jstr(json_object_get(r, "body"), "agent_id"), "agent1");
	/* the echo is what the list will show for the message as AgentScope stores it */
	tz = sg_tz_load("Asia/Shanghai", why, sizeof(why));
	ec.tz = tz;
	sent = json_pack("[O]", json_object_get(json_object_get(r, "body"), "input"));
	listed = sg_as_messages_to_events(sent, &ec, &err);
	ck_assert_msg(listed != NULL, "%s", err.message);
	echo = json_object_get(sg_flow_object(f), "data");
	ck_assert_uint_eq(json_array_size(echo), 1);
	ck_assert_msg(json_equal(json_array_get(echo, 0), json_array_get(listed, 0)),
	              "the echo is not the listed event");
	ck_assert_str_eq(sg_jstr(json_array_get(echo, 0), "processed_at"),
	                 "2026-06-05T06:03:11.123456Z");
	json_decref(listed);
	json_decref(sent);
	sg_tz_free(tz);

	/* a session the listing does not have: nothing is sent */
	sg_flow_route(f, "GET", AS_LISTING_PATH, 200, as_listing("s2", "idle", "x"));
	sg_flow_run(f, SG_CALL_SEND_EVENTS, AS_USER, &id,
	            "{\"events\": [{\"type\": \"user.message\", \"content\": []}]}", -1);
	expect_flow_error(f, 404, "session not found");
	ck_assert(!was_sent(f, "POST", "/chat/"));

	/* a run already going in the same process */
	sg_flow_route(f, "GET", AS_LISTING_PATH, 200, as_listing("s1", "running", "x"));
	sg_flow_route(f, "POST", "/chat/", 409, "{\"detail\": \"Session s1 already has a run\"}");
	sg_flow_run(f, SG_CALL_SEND_EVENTS, AS_USER, &id,
	            "{\"events\": [{\"type\": \"user.message\", \"content\": []}]}", -1);
	expect_flow_error(f, 409, "already has a run");
	sg_flow_free(f);
}
END_TEST

START_TEST(test_flow_send_interrupt)
{
	struct sg_flow *f = sg_flow_new(&sg_mapping_agentscope, "as1", AS_OPTS);
	struct sg_pubid id = sg_flow_id("as1", "agent1", "s1");
	const json_t *echo;

	sg_flow_route(f, "POST", "/sessions/s1/interrupt?agent_id=agent1", 202,
	              "{\"session_id\": \"s1\"}");
	sg_flow_run(f, SG_CALL_SEND_EVENTS, AS_USER, &id,
	            "{\"events\": [{\"type\": \"user.interrupt\"}]}", -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	ck_assert_uint_eq(json_array_size(sg_flow_seen(f)), 1);
	echo = json_array_get(json_object_get(sg_flow_object(f), "data"), 0);
	ck_assert_str_eq(sg_jstr(echo, "type"), "user.interrupt");
	ck_assert_str_eq(sg_jstr(echo, "processed_at"), "2026-06-05T06:03:11.123456Z");

	/* an AgentScope build without the route */
	sg_flow_route(f, "POST", "/sessions/s1/interrupt?agent_id=agent1", 404,
	              "{\"detail\": \"Not Found\"}");
	sg_flow_run(f, SG_CALL_SEND_EVENTS, AS_USER, &id,
	            "{\"events\": [{\"type\": \"user.interrupt\"}]}", -1);
	expect_flow_error(f, 400, "has no POST /sessions/{id}/interrupt");
	/* a session it does not know */
	sg_flow_route(f, "POST", "/sessions/s1/interrupt?agent_id=agent1", 404,
	              "{\"detail\": \"Session 's1' not found\"}");
	sg_flow_run(f, SG_CALL_SEND_EVENTS, AS_USER, &id,
	            "{\"events\": [{\"type\": \"user.interrupt\"}]}", -1);
	expect_flow_error(f, 404, "not found");
	sg_flow_free(f);
}
END_TEST

START_TEST(test_flow_send_confirmation)
{
	struct sg_flow *f = sg_flow_new(&sg_mapping_agentscope, "as1", AS_OPTS);
	struct sg_pubid id = sg_flow_id("as1", "agent1", "s1");
	json_t *cj = sg_fixture_load(RESUME, "confirm-allow", "ctx.json");
	json_t *log = sg_fixture_load(RESUME, "confirm-allow", "messages.json"), *map, *page;
	struct sg_as_events_ctx ec;
	const json_t *r, *echo;
	char body[512], *text;
	struct sg_tz *tz;

	ck_assert(cj && log);
	/* the module's context for this session: the same key, zone and agent name */
	json_object_set_new(cj, "session_key", json_string("agent1/s1"));
	resume_ctx(cj, &ec, &tz);
	map = call_event_ids(log, &ec);
	page = json_pack("{s:O, s:b, s:b}", "messages", log, "is_running", 0, "has_more", 0);
	text = json_dumps(page, 0);
	sg_flow_route(f, "GET", "/agent/", 200, AS_AGENTS);
	sg_flow_route(f, "GET", AS_LISTING_PATH, 200, as_listing("s1", "awaiting_permission", "x"));
	sg_flow_route(f, "GET", "/sessions/s1/messages?agent_id=agent1&limit=200", 200, text);
	sg_flow_route(f, "POST", "/chat/", 200,
	              "{\"status\": \"started\", \"session_id\": \"s1\"}");
	snprintf(body, sizeof(body),
	         "{\"events\": [{\"type\": \"user.tool_confirmation\", \"tool_use_id\": \"%s\", "
	         "\"result\": \"allow\"}]}",
	         sg_jstr(map, "call_rm"));
	sg_flow_run(f, SG_CALL_SEND_EVENTS, AS_USER, &id, body, -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	r = expect_request(f, 3, "POST", "/chat/");
	ck_assert_str_eq(sg_jstr(json_object_get(json_object_get(r, "body"), "input"), "type"),
	                 "USER_CONFIRM_RESULT");
	ck_assert_str_eq(sg_jstr(json_object_get(json_object_get(r, "body"), "input"), "reply_id"),
	                 "r2");
	echo = json_array_get(json_object_get(sg_flow_object(f), "data"), 0);
	ck_assert_str_eq(sg_jstr(echo, "tool_use_id"), sg_jstr(map, "call_rm"));
	ck_assert_str_eq(sg_jstr(echo, "result"), "allow");

	/* a running session waits for nothing: refused before sending */
	sg_flow_route(f, "GET", AS_LISTING_PATH, 200, as_listing("s1", "running", "x"));
	sg_flow_run(f, SG_CALL_SEND_EVENTS, AS_USER, &id, body, -1);
	expect_flow_error(f, 409, "the session is running");
	ck_assert(!was_sent(f, "POST", "/chat/"));
	free(text);
	json_decref(page);
	json_decref(map);
	json_decref(log);
	json_decref(cj);
	sg_tz_free(tz);
	sg_flow_free(f);
}
END_TEST

START_TEST(test_flow_agents)
{
	struct sg_flow *f = sg_flow_new(&sg_mapping_agentscope, "as1", AS_OPTS);
	struct sg_pubid id = sg_flow_id("as1", "", "agent1");

	sg_flow_route(f, "GET", "/agent/", 200, AS_AGENTS);
	sg_flow_run(f, SG_CALL_LIST_AGENTS, AS_USER, NULL, NULL, -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	ck_assert_uint_eq(json_array_size(sg_flow_items(f)), 1);
	ck_assert_str_eq(
	    sg_jstr(json_object_get(json_array_get(sg_flow_items(f), 0), "model"), "id"),
	    "qwen-max");
	expect_request(f, 0, "GET", "/agent/");
	sg_flow_run(f, SG_CALL_GET_AGENT, AS_USER, &id, NULL, 1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	ck_assert_str_eq(sg_jstr(sg_flow_object(f), "name"), "Friday");
	sg_flow_run(f, SG_CALL_GET_AGENT, AS_USER, &id, NULL, 2);
	expect_flow_error(f, 404, "AgentScope agents have one version, 1");
	id = sg_flow_id("as1", "", "nope");
	sg_flow_run(f, SG_CALL_GET_AGENT, AS_USER, &id, NULL, -1);
	expect_flow_error(f, 404, "agent not found");
	sg_flow_free(f);
}
END_TEST

START_TEST(test_init_options)
{
	static const struct {
		const char *options, *message;
	} bad[] = {
	    {"{\"chat_model_config\": \"qwen\"}",
	     "chat_model_config: must be an object {type, credential_id, model, parameters}"},
	    {"{\"chat_model_config\": {\"type\": \"t\", \"model\": \"m\"}}",
	     "chat_model_config.credential_id: must be a non-empty string"},
	    {"{\"fallback_chat_model_config\": {\"type\": \"t\", \"credential_id\": \"c\", "
	     "\"model\": \"m\"}}",
	     "fallback_chat_model_config: needs chat_model_config"},
	    {"{\"chat_model_config\": {\"type\": \"t\", \"credential_id\": \"c\", \"model\": "
	     "\"m\"}, \"fallback_chat_model_config\": {\"type\": \"t\"}}",
	     "fallback_chat_model_config.credential_id: must be a non-empty string"},
	};
	struct sg_error err = {0};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sg_backend be = {.name = "as1"};
		json_t *o = parse(bad[i].options);

		ck_assert_int_eq(sg_mapping_agentscope.init(&be, o, &err), -1);
		ck_assert_str_eq(err.message, bad[i].message);
		ck_assert_ptr_null(be.priv);
		json_decref(o);
	}
}
END_TEST

/* The text path's own failures: not JSON (including a truncated body, or trailing bytes), not
 * an object, no sessions array; strings holding brackets and escaped quotes do not confuse
 * the scan; a bad session fails the whole listing, leaving `out` as it was. */
START_TEST(test_listing_text)
{
	static const struct {
		const char *text;
		int ok;
		size_t n;
		const char *msg;
	} cases[] = {
	    {"{\"total\":0,\"sessions\":[]}", 1, 0, NULL},
	    {" {\"a\":{\"b\":[1,{\"c\":\"]}\\\"[\"}]},\"sessions\" : [ ] , \"z\":null } ", 1, 0,
	     NULL},
	    {"{\"sessions\":[", 0, 0, "not JSON"},
	    {"{\"sessions\":[]} x", 0, 0, "not JSON"},
	    {"<html>500</html>", 0, 0, "not JSON"},
	    {"", 0, 0, "not JSON"},
	    {"{\"sessions\":[{\"session\":\"unterminated}]}", 0, 0, "not JSON"},
	    {"[1,2]", 0, 0, "not a JSON object"},
	    {"{\"total\":3}", 0, 0, "no 'sessions' array"},
	    {"{\"sessions\":{}}", 0, 0, "no 'sessions' array"},
	    {"{\"sessions\":[{}]}", 0, 0, "sessions[0]"},
	};
	struct env e;

	env_open(&e, "as", "UTC", "2026-01-01T00:00:00Z");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *out = json_pack("[s]", "before");
		struct sg_error err = {0};
		int rc = sg_as_listing_text_to_cma(cases[i].text, strlen(cases[i].text), NULL,
		                                   &e.ctx, out, &err);

		ck_assert_msg(rc == (cases[i].ok ? 0 : -1), "case %zu: rc %d", i, rc);
		if (!cases[i].ok) {
			ck_assert_int_eq(err.status, 502);
			ck_assert_msg(strstr(err.message, cases[i].msg), "case %zu: %s", i,
			              err.message);
			ck_assert_uint_eq(json_array_size(out), 1);
		} else {
			ck_assert_uint_eq(json_array_size(out), 1 + cases[i].n);
		}
		json_decref(out);
	}
	env_close(&e);
}
END_TEST

static Suite *agentscope_suite(void)
{
	char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	size_t n = sg_fixture_list(GROUP, names, MAX_CASES);
	Suite *s = suite_create("agentscope");
	TCase *golden = tcase_create("golden");
	TCase *edge = tcase_create("edge");
	TCase *flows = tcase_create("flows");

	if (n)
		tcase_add_loop_test(golden, test_golden, 0, (int)n);
	else
		tcase_add_test(golden, test_no_fixtures);
	n = sg_fixture_list(AGENTS, names, MAX_CASES);
	tcase_add_loop_test(golden, test_agents_golden, 0, (int)n);
	n = sg_fixture_list(WRITES, names, MAX_CASES);
	tcase_add_loop_test(golden, test_writes_golden, 0, (int)n);
	n = sg_fixture_list(RESUME, names, MAX_CASES);
	tcase_add_loop_test(golden, test_resume_golden, 0, (int)n);
	tcase_add_test(edge, test_bad_agents);
	tcase_add_test(edge, test_model_config);
	tcase_add_test(edge, test_id_failure);
	tcase_add_test(edge, test_tool_use_index);
	tcase_add_test(edge, test_echo_matches_list);
	tcase_add_test(edge, test_echo_other_kinds);
	tcase_add_test(edge, test_writes_oom);
	tcase_add_test(edge, test_init_options);
	tcase_add_test(flows, test_flow_create);
	tcase_add_test(flows, test_flow_create_then_failures);
	tcase_add_test(flows, test_flow_create_refused);
	tcase_add_test(flows, test_flow_update);
	tcase_add_test(flows, test_flow_get_unreadable_record);
	tcase_add_test(flows, test_flow_get_usage);
	tcase_add_test(flows, test_flow_get_usage_bounded);
	tcase_add_test(flows, test_flow_archive_delete);
	tcase_add_test(flows, test_flow_send_message);
	tcase_add_test(flows, test_flow_send_interrupt);
	tcase_add_test(flows, test_flow_send_confirmation);
	tcase_add_test(flows, test_flow_agents);
	tcase_add_test(edge, test_huge_list);
	tcase_add_test(edge, test_listing_text);
	tcase_add_loop_test(edge, test_bad_listing, 0,
	                    (int)(sizeof(bad_listings) / sizeof(bad_listings[0])));
	tcase_add_test(edge, test_too_many_sessions);
	tcase_add_test(edge, test_long_ids);
	tcase_add_test(edge, test_agents_index);
	tcase_add_test(edge, test_odd_values);
	tcase_add_test(edge, test_no_context);
	tcase_set_timeout(golden, 60);
	tcase_set_timeout(edge, 300);
	suite_add_tcase(s, golden);
	tcase_set_timeout(flows, 60);
	suite_add_tcase(s, edge);
	suite_add_tcase(s, flows);
	return s;
}

int main(void)
{
	return sg_fixture_run(agentscope_suite());
}
