/* test_agentscope.c - the AgentScope session translation: one Check loop over the golden
 * fixtures in tests/fixtures/agentscope/sessions/<case>/ (listing.json, agents.json,
 * ctx.json, expected.json), plus inline tests for huge listings and wrong shapes. */
#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentscope_translate.h"
#include "fixture.h"
#include "idcodec.h"
#include "timeutil.h"
#include "tz.h"

#define GROUP "agentscope/sessions"
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

static Suite *agentscope_suite(void)
{
	char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	size_t n = sg_fixture_list(GROUP, names, MAX_CASES);
	Suite *s = suite_create("agentscope");
	TCase *golden = tcase_create("golden");
	TCase *edge = tcase_create("edge");

	if (n)
		tcase_add_loop_test(golden, test_golden, 0, (int)n);
	else
		tcase_add_test(golden, test_no_fixtures);
	tcase_add_test(edge, test_huge_list);
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
	suite_add_tcase(s, edge);
	return s;
}

int main(void)
{
	return sg_fixture_run(agentscope_suite());
}
