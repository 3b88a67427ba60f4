/* test_claude.c - the Claude-native translation: Check loops over the golden fixtures in
 * tests/fixtures/claude/{sessions,events}/<case>/ (input.json: the upstream's list body,
 * expected.json: the north items), plus inline tests for wrong shapes, the list-body split
 * and the core's normaliser in both its modes. Error answers are test_berror's. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "claude_translate.h"
#include "config.h"
#include "fixture.h"
#include "flow.h"
#include "idcodec.h"
#include "jsonx.h"
#include "north.h"

#define SESSIONS "claude/sessions"
#define EVENTS "claude/events"
#define AGENTS "claude/agents"
#define BACKEND "claude-main"
#define MAX_CASES 64
#define LIMIT 100000

static const struct sg_cl_ctx good_ctx = {.backend = BACKEND};
static const struct sg_cl_ctx bad_ctx = {.backend = "bad-be"};

/* Parses inline JSON for a test. Returns a new reference. */
static json_t *parse(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);

	ck_assert_msg(v != NULL, "inline JSON: %s: %s", jerr.text, text);
	return v;
}

/* What must hold for every translated session: exactly the SDK's keys (deployment_id
 * optional), every required one present, and an id that opens to this route. */
static void check_session(const json_t *s, const json_t *in)
{
	const json_t *agent = json_object_get(s, "agent");
	struct sg_pubid pid;

	ck_assert_msg(sg_check_keys(s, sg_check_session_keys, sg_check_session_required, "session"),
	              "session keys are not the SDK's");
	ck_assert_msg(
	    sg_check_keys(agent, sg_check_agent_keys, sg_check_agent_keys, "session.agent"),
	    "session.agent keys are not the SDK's");
	ck_assert(json_is_object(json_object_get(s, "usage")));
	ck_assert(json_is_string(json_object_get(s, "created_at")));
	ck_assert(json_is_string(json_object_get(s, "updated_at")));
	ck_assert_int_eq(sg_id_decode("sesn_", json_string_value(json_object_get(s, "id")), &pid),
	                 0);
	ck_assert_str_eq(pid.backend, BACKEND);
	ck_assert_str_eq(pid.scope, "");
	ck_assert_str_eq(pid.native, json_string_value(json_object_get(in, "id")));
}

/* The same error, or the same answer: the _take normalisers must answer exactly as the
 * copying ones, only without the copies. Frees a and b. */
static void check_same(json_t *a, const struct sg_error *ea, json_t *b, const struct sg_error *eb,
                       const char *what)
{
	ck_assert_msg(!a == !b, "%s: copy %s, take %s (%s / %s)", what, a ? "kept" : "failed",
	              b ? "kept" : "failed", ea->message, eb->message);
	if (a)
		ck_assert_msg(json_equal(a, b), "%s: take differs from copy", what);
	else
		ck_assert_msg(ea->status == eb->status && !strcmp(ea->message, eb->message),
		              "%s: copy said %d %s, take %d %s", what, ea->status, ea->message,
		              eb->status, eb->message);
	json_decref(a);
	json_decref(b);
}

/* sg_north_session_take and sg_north_agent_take against the copying functions on `in`
 * (borrowed, any JSON), strict and lenient. */
static void check_take_session(const json_t *in)
{
	for (unsigned flags = 0; flags <= SG_NORTH_LENIENT; flags++) {
		struct sg_error ea = {0}, eb = {0};
		json_t *mine = json_deep_copy(in), *a, *b;
		const json_t *agent = json_object_get(in, "agent");

		if (json_is_object(mine))
			ck_assert_int_eq(json_object_set_new(mine, "id", json_string("sesn_x")), 0);
		a = sg_north_session(in, "sesn_x", "bad-be", "session", flags, &ea);
		b = sg_north_session_take(mine, "bad-be", "session", flags, &eb);
		check_same(a, &ea, b, &eb, "session");
		if (!agent)
			continue;
		a = sg_north_agent(agent, "bad-be", "session.agent", flags, &ea);
		b = sg_north_agent_take(json_deep_copy(agent), "bad-be", "session.agent", flags,
		                        &eb);
		check_same(a, &ea, b, &eb, "agent");
	}
}

/* sg_north_event_take against sg_north_event on `in` (borrowed, any JSON), both modes. */
static void check_take_event(const json_t *in)
{
	for (unsigned flags = 0; flags <= SG_NORTH_LENIENT; flags++) {
		struct sg_error ea = {0}, eb = {0};
		json_t *a = NULL, *b = NULL;
		int ra = sg_north_event(in, "bad-be", "events[0]", flags, &a, &ea);
		int rb =
		    sg_north_event_take(json_deep_copy(in), "bad-be", "events[0]", flags, &b, &eb);

		ck_assert_int_eq(ra, rb);
		if (ra != SG_NORTH_DROPPED)
			check_same(a, &ea, b, &eb, "event");
	}
}

START_TEST(test_sessions_golden)
{
	char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	size_t n = sg_fixture_list(SESSIONS, names, MAX_CASES), i;
	struct sg_error err = {0};
	const json_t *data, *item;
	const char *next = NULL;
	json_t *body, *out;

	ck_assert_uint_lt((size_t)_i, n);
	body = sg_fixture_load(SESSIONS, names[_i], "input.json");
	ck_assert_msg(body != NULL, "%s: input.json is required", names[_i]);
	ck_assert_msg(sg_north_page_parts(body, BACKEND, &data, &next, &err) == 0, "%s: %s",
	              names[_i], err.message);
	out = json_array();
	json_array_foreach(data, i, item) {
		json_t *s = sg_cl_session_to_cma(item, &good_ctx, &err), *again, *back;

		ck_assert_msg(s != NULL, "%s[%zu]: %s", names[_i], i, err.message);
		check_session(s, item);
		check_take_session(item);
		/* The output is a fixed point: fed back with the upstream id, it comes out
		 * unchanged. */
		back = json_deep_copy(s);
		ck_assert_int_eq(json_object_set(back, "id", json_object_get(item, "id")), 0);
		again = sg_cl_session_to_cma(back, &good_ctx, &err);
		ck_assert_msg(again && json_equal(again, s), "%s[%zu]: not a fixed point",
		              names[_i], i);
		json_decref(again);
		json_decref(back);
		ck_assert_int_eq(json_array_append_new(out, s), 0);
	}
	ck_assert_msg(sg_fixture_expect(out, SESSIONS, names[_i], "expected.json"),
	              "%s: output differs from expected.json", names[_i]);
	json_decref(out);
	json_decref(body);
}
END_TEST

/* Types whose processed_at may be absent or null (queued inputs). */
static int queued_type(const char *type)
{
	static const char *const t[] = {"user.message",           "user.interrupt",
	                                "user.tool_confirmation", "user.custom_tool_result",
	                                "user.tool_result",       "system.message"};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (!strcmp(t[i], type))
			return 1;
	}
	return 0;
}

START_TEST(test_events_golden)
{
	char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	size_t n = sg_fixture_list(EVENTS, names, MAX_CASES), i;
	struct sg_error err = {0};
	const json_t *data, *ev;
	const char *next = NULL;
	json_t *body, *out, *again;

	ck_assert_uint_lt((size_t)_i, n);
	body = sg_fixture_load(EVENTS, names[_i], "input.json");
	ck_assert_msg(body != NULL, "%s: input.json is required", names[_i]);
	ck_assert_msg(sg_north_page_parts(body, BACKEND, &data, &next, &err) == 0, "%s: %s",
	              names[_i], err.message);
	ck_assert_ptr_null(next);
	out = sg_cl_events_to_cma(data, &good_ctx, &err);
	ck_assert_msg(out != NULL, "%s: %s", names[_i], err.message);
	json_array_foreach(data, i, ev) {
		check_take_event(ev);
	}
	json_array_foreach(out, i, ev) {
		const char *type = json_string_value(json_object_get(ev, "type"));

		ck_assert_ptr_nonnull(type);
		ck_assert(json_is_string(json_object_get(ev, "id")));
		if (!queued_type(type))
			ck_assert_msg(json_is_string(json_object_get(ev, "processed_at")),
			              "%s: %s without processed_at", names[_i], type);
		if (!strcmp(type, "session.status_idle")) {
			ck_assert(json_is_object(json_object_get(ev, "stop_reason")));
			ck_assert_ptr_nonnull(json_object_get(ev, "stop_details"));
		}
	}
	ck_assert_msg(sg_fixture_expect(out, EVENTS, names[_i], "expected.json"),
	              "%s: output differs from expected.json", names[_i]);
	again = sg_cl_events_to_cma(out, &good_ctx, &err);
	ck_assert_msg(again && json_equal(again, out), "%s: not a fixed point", names[_i]);
	json_decref(again);
	json_decref(out);
	json_decref(body);
}
END_TEST

/* Every key a north Agent (BetaManagedAgentsAgent) carries; all required, no others. */
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
	struct sg_error err = {0};
	const json_t *data, *item;
	const char *next = NULL;
	json_t *body, *out;

	ck_assert_uint_lt((size_t)_i, n);
	body = sg_fixture_load(AGENTS, names[_i], "input.json");
	ck_assert_msg(body != NULL, "%s: input.json is required", names[_i]);
	ck_assert_int_eq(sg_north_page_parts(body, BACKEND, &data, &next, &err), 0);
	out = json_array();
	json_array_foreach(data, i, item) {
		json_t *a = sg_cl_agent_to_cma(item, &good_ctx, &err), *again;

		ck_assert_msg(a != NULL, "%s[%zu]: %s", names[_i], i, err.message);
		ck_assert_msg(sg_check_keys(a, full_agent_keys, full_agent_keys, "agent"),
		              "%s[%zu]: agent keys are not the SDK's", names[_i], i);
		/* the id is the upstream's own: agents carry no route */
		ck_assert_str_eq(json_string_value(json_object_get(a, "id")),
		                 json_string_value(json_object_get(item, "id")));
		for (unsigned flags = 0; flags <= SG_NORTH_LENIENT; flags++) {
			struct sg_error ea = {0}, eb = {0};
			json_t *x = sg_north_full_agent(item, "bad-be", "agent", flags, &ea);
			json_t *y = sg_north_full_agent_take(json_deep_copy(item), "bad-be",
			                                     "agent", flags, &eb);

			check_same(x, &ea, y, &eb, "full agent");
		}
		again = sg_cl_agent_to_cma(a, &good_ctx, &err);
		ck_assert_msg(again && json_equal(again, a), "%s[%zu]: not a fixed point",
		              names[_i], i);
		json_decref(again);
		ck_assert_int_eq(json_array_append_new(out, a), 0);
	}
	ck_assert_msg(sg_fixture_expect(out, AGENTS, names[_i], "expected.json"),
	              "%s: output differs from expected.json", names[_i]);
	json_decref(out);
	json_decref(body);
}
END_TEST

#define GOOD_AGENT                                                                                 \
	"{\"id\": \"agent_1\", \"name\": \"A\", \"model\": {\"id\": \"m\"}, \"version\": 1, "      \
	"\"created_at\": \"2026-01-01T00:00:00Z\"}"

static void patch(json_t *obj, const char *path, const char *value);

/* An agent the SDK's type cannot hold: strict, a 502 naming the path; lenient, the parts that
 * can be left out are. */
START_TEST(test_bad_agent)
{
	static const struct {
		const char *path, *value, *needle;
	} bad[] = {
	    {"created_at", NULL, "agent.created_at is missing"},
	    {"created_at", "\"soon\"", "agent.created_at 'soon' is not an RFC 3339 timestamp"},
	    {"updated_at", "1", "agent.updated_at is not a string"},
	    {"archived_at", "\"x\"", "agent.archived_at 'x' is not an RFC 3339 timestamp"},
	    {"metadata", "{\"a\": 1}", "agent.metadata.a is not a string"},
	    {"version", NULL, "agent.version is missing"},
	    {"type", "\"session\"", "agent.type 'session' is not known to the SDK"},
	    {"multiagent",
	     "{\"type\": \"coordinator\", \"agents\": [{\"type\": \"agent\", \"id\": \"a\"}]}",
	     "agent.multiagent.agents[0].version is missing"},
	};
	json_t *a = parse(GOOD_AGENT), *out;
	struct sg_error err = {0};

	out = sg_cl_agent_to_cma(a, &bad_ctx, &err);
	ck_assert_msg(out != NULL, "%s", err.message);
	ck_assert_str_eq(json_string_value(json_object_get(out, "updated_at")),
	                 "2026-01-01T00:00:00Z");
	ck_assert(json_is_null(json_object_get(out, "archived_at")));
	ck_assert_int_eq(json_object_size(json_object_get(out, "metadata")), 0);
	json_decref(out);
	json_decref(a);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		a = parse(GOOD_AGENT);
		patch(a, bad[i].path, bad[i].value);
		ck_assert_ptr_null(sg_cl_agent_to_cma(a, &bad_ctx, &err));
		sg_check_502(&err, "bad-be", bad[i].needle);
		json_decref(a);
	}
	/* lenient: a metadata value that is not a string costs that pair only */
	a = parse(GOOD_AGENT);
	patch(a, "metadata", "{\"a\": 1, \"b\": \"x\"}");
	out = sg_north_full_agent(a, "bad-be", "agent", SG_NORTH_LENIENT, &err);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(json_object_size(json_object_get(out, "metadata")), 1);
	json_decref(out);
	json_decref(a);
}
END_TEST

/* The answer to a send: {data} with normalised events, an absent data read as none. */
START_TEST(test_sent)
{
	static const struct {
		const char *body, *needle;
	} bad[] = {
	    {"[]", "the send answer is not an object"},
	    {"{\"data\": {}}", "the send answer's data is not an array"},
	};
	json_t *body = parse("{\"data\": [{\"id\": \"sevt_1\", \"type\": \"user.message\", "
	                     "\"content\": [{\"type\": \"text\", \"text\": \"hi\"}], "
	                     "\"processed_at\": null, \"extra\": 1}, {\"id\": \"sevt_2\", "
	                     "\"type\": \"user.future\"}]}");
	struct sg_error err = {0};
	json_t *out = sg_cl_sent_to_cma(body, &good_ctx, &err), *want;

	ck_assert_msg(out != NULL, "%s", err.message);
	want = parse("{\"data\": [{\"id\": \"sevt_1\", \"type\": \"user.message\", "
	             "\"content\": [{\"type\": \"text\", \"text\": \"hi\"}], "
	             "\"processed_at\": null}]}");
	ck_assert_msg(json_equal(out, want), "send answer differs");
	json_decref(want);
	json_decref(out);
	json_decref(body);
	body = parse("{}");
	out = sg_cl_sent_to_cma(body, &good_ctx, &err);
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(json_array_size(json_object_get(out, "data")), 0);
	json_decref(out);
	json_decref(body);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		body = parse(bad[i].body);
		ck_assert_ptr_null(sg_cl_sent_to_cma(body, &bad_ctx, &err));
		sg_check_502(&err, "bad-be", bad[i].needle);
		json_decref(body);
	}
}
END_TEST

START_TEST(test_no_fixtures)
{
	ck_abort_msg("no fixture cases under tests/fixtures/claude (is SG_SRCDIR set?)");
}
END_TEST

/* sg_north_page_parts, the one split of a {data, next_page} body (Claude-native and SandBase
 * lists). */
START_TEST(test_page_parts)
{
	static const struct {
		const char *body, *next; /* next: expected cursor, or NULL */
	} good[] = {
	    {"{\"data\": [1, 2], \"next_page\": \"page_B\", \"prev_page\": \"page_A\"}", "page_B"},
	    {"{\"data\": [], \"next_page\": \"\"}", NULL},
	    {"{\"data\": [], \"next_page\": null}", NULL},
	    {"{\"data\": []}", NULL},
	};
	static const struct {
		const char *body, *needle;
	} bad[] = {
	    {"[]", "list body is not a JSON object"},
	    {"\"<html>Bad Gateway</html>\"", "list body is not a JSON object"},
	    {"{}", "list body has no 'data' array"},
	    {"{\"data\": {}}", "list body has no 'data' array"},
	    {"{\"error\": {\"type\": \"api_error\"}}", "list body has no 'data' array"},
	    {"{\"data\": [], \"next_page\": 5}", "next_page is not a string"},
	    {"{\"data\": [], \"next_page\": \"a\\u0000b\"}", "next_page contains a NUL byte"},
	    {"null", "list body is not a JSON object"},
	    {"{\"error\": {\"type\": \"not_found\", \"message\": \"x\"}}", "no 'data' array"},
	};
	struct sg_error err = {0};
	const json_t *data;
	const char *next;
	json_t *body;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		body = parse(good[i].body);
		next = "unset";
		ck_assert_int_eq(sg_north_page_parts(body, BACKEND, &data, &next, &err), 0);
		ck_assert_ptr_eq(data, json_object_get(body, "data"));
		if (good[i].next)
			ck_assert_str_eq(next, good[i].next);
		else
			ck_assert_ptr_null(next);
		json_decref(body);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		body = parse(bad[i].body);
		ck_assert_int_eq(sg_north_page_parts(body, "bad-be", &data, &next, &err), -1);
		sg_check_502(&err, "bad-be", bad[i].needle);
		json_decref(body);
	}
}
END_TEST

START_TEST(test_page_too_big)
{
	json_t *data = json_array(), *body;
	struct sg_error err = {0};
	const json_t *d;
	const char *next;
	size_t i;

	for (i = 0; i <= LIMIT; i++)
		ck_assert_int_eq(json_array_append(data, json_null()), 0);
	body = json_pack("{s:o}", "data", data);
	ck_assert_int_eq(sg_north_page_parts(body, "bad-be", &d, &next, &err), -1);
	sg_check_502(&err, "bad-be", "100001 items, more than the limit of 100000");
	ck_assert_ptr_null(sg_cl_events_to_cma(json_object_get(body, "data"), &bad_ctx, &err));
	sg_check_502(&err, "bad-be", "events has 100001 items, more than the limit of 100000");
	json_decref(body);
}
END_TEST

#define GOOD_SESSION                                                                               \
	"{\"id\": \"sesn_up\", \"type\": \"session\", \"status\": \"idle\", "                      \
	"\"created_at\": \"2026-01-01T00:00:00Z\", \"environment_id\": \"env_1\", "                \
	"\"agent\": {\"id\": \"agent_1\", \"name\": \"A\", \"model\": {\"id\": \"m\"}, "           \
	"\"version\": 1}}"

/* Each case changes GOOD_SESSION at a dotted path: sets the JSON `value`, or removes the
 * key when value is NULL. */
static const struct {
	const char *path, *value, *needle;
} bad_sessions[] = {
    {"id", NULL, "session.id is missing"},
    {"id", "7", "session.id is missing, empty, not a string"},
    {"id", "\"\"", "session.id is missing, empty"},
    {"id", "\"a\\u0000b\"", "contains a NUL byte"},
    {"created_at", "\"2026-01-01T00:00:00Z\\u0000junk\"", "is not an RFC 3339 timestamp"},
    {"created_at", NULL, "session.created_at is missing"},
    {"created_at", "null", "session.created_at is null"},
    {"created_at", "1780000000", "session.created_at is not a string"},
    {"created_at", "\"yesterday\"", "session.created_at 'yesterday' is not an RFC 3339 timestamp"},
    {"created_at", "\"2026-02-30T00:00:00Z\"", "'2026-02-30T00:00:00Z' is not an RFC 3339"},
    {"created_at", "\"2026-01-01T00:00:00\"", "'2026-01-01T00:00:00' is not an RFC 3339"},
    {"created_at", "\"0001-01-01T00:00:00+01:00\"",
     "session.created_at '0001-01-01T00:00:00+01:00' "
     "is out of range"},
    {"updated_at", "\"soon\"", "session.updated_at 'soon' is not an RFC 3339 timestamp"},
    {"archived_at", "\"x\"", "session.archived_at 'x' is not an RFC 3339 timestamp"},
    {"status", NULL, "session.status is missing"},
    {"status", "\"paused\"", "session.status 'paused' is not one of the SDK's values"},
    {"status", "1", "session.status is not a string"},
    {"type", "\"session_deleted\"", "session.type 'session_deleted' is not one of the SDK's"},
    {"environment_id", NULL, "session.environment_id is missing"},
    {"agent", NULL, "session.agent is missing"},
    {"agent", "null", "session.agent is null"},
    {"agent", "\"agent_1\"", "session.agent is not an object"},
    {"agent.type", "\"team\"", "session.agent.type 'team' is not known to the SDK"},
    {"agent.name", NULL, "session.agent.name is missing"},
    {"agent.id", "null", "session.agent.id is null"},
    {"agent.model", NULL, "session.agent.model is missing"},
    {"agent.model", "\"claude-sonnet-4-6\"", "session.agent.model is not an object"},
    {"agent.version", "\"3\"", "session.agent.version is not a number"},
    {"agent.execution_identity", "{\"type\": \"gcp\"}",
     "session.agent.execution_identity.type 'gcp' is not known to the SDK"},
    {"agent.execution_identity", "{\"type\": \"aws_role\"}",
     "session.agent.execution_identity.role_arn is missing"},
    {"agent.tools", "[{\"type\": \"custom\", \"name\": \"x\", \"input_schema\": {}}]",
     "session.agent.tools[0].description is missing"},
    {"agent.tools", "[{\"configs\": []}]", "session.agent.tools[0] has no string 'type'"},
    {"agent.tools",
     "[{\"type\": \"agent_toolset_20260401\", \"configs\": [{\"name\": \"bash\"}], "
     "\"default_config\": {\"enabled\": true, \"permission_policy\": {\"type\": \"auto\"}}}]",
     "session.agent.tools[0].configs[0].enabled is missing"},
    {"agent.multiagent",
     "{\"type\": \"coordinator\", \"agents\": [{\"type\": \"agent\", "
     "\"id\": \"a2\"}]}",
     "session.agent.multiagent.agents[0].model is missing"},
    {"agent.skills", "[{\"type\": \"anthropic\", \"skill_id\": \"pdf\", \"version\": 1}]",
     "session.agent.skills[0].version is not a string"},
    {"metadata", "{\"a\": 1}", "session.metadata.a is not a string"},
    {"metadata", "[]", "session.metadata is not an object"},
    {"resources", "{}", "session.resources is not an array"},
    {"resources", "[{\"id\": \"r\"}]", "session.resources[0] has no string 'type'"},
    {"resources",
     "[{\"type\": \"file\", \"id\": \"r\", \"created_at\": \"bad\", \"updated_at\": "
     "\"2026-01-01T00:00:00Z\", \"file_id\": \"f\", \"mount_path\": \"/m\"}]",
     "session.resources[0].created_at 'bad' is not an RFC 3339 timestamp"},
    {"title", "5", "session.title is not a string"},
    {"usage", "\"lots\"", "session.usage is not an object"},
    {"usage", "{\"input_tokens\": \"12\"}", "session.usage.input_tokens is not a number"},
    {"stats", "[]", "session.stats is not an object"},
    {"vault_ids", "[1]", "session.vault_ids[0] is not a string"},
    {"budget", "{\"type\": \"limit\"}", "session.budget.max_list_cost is missing"},
    {"outcome_evaluations", "[{\"type\": \"outcome_evaluation\"}]",
     "session.outcome_evaluations[0].description is missing"},
    {"deployment_id", "false", "session.deployment_id is not a string"},
};

/* Sets (or removes) the value at a dotted path of obj, creating nothing on the way. */
static void patch(json_t *obj, const char *path, const char *value)
{
	char buf[128];
	char *dot, *key = buf;
	json_t *at = obj;

	ck_assert_uint_lt(strlen(path), sizeof(buf));
	memcpy(buf, path, strlen(path) + 1);
	while ((dot = strchr(key, '.')) != NULL) {
		*dot = '\0';
		at = json_object_get(at, key);
		ck_assert_msg(json_is_object(at), "patch path %s", path);
		key = dot + 1;
	}
	if (value)
		ck_assert_int_eq(json_object_set_new(at, key, parse(value)), 0);
	else
		ck_assert_int_eq(json_object_del(at, key), 0);
}

START_TEST(test_bad_session)
{
	json_t *s = parse(GOOD_SESSION), *out;
	struct sg_error err = {0};

	/* The unpatched session translates; the patch alone breaks it. */
	out = sg_cl_session_to_cma(s, &bad_ctx, &err);
	ck_assert_msg(out != NULL, "%s", err.message);
	json_decref(out);
	patch(s, bad_sessions[_i].path, bad_sessions[_i].value);
	ck_assert_ptr_null(sg_cl_session_to_cma(s, &bad_ctx, &err));
	sg_check_502(&err, "bad-be", bad_sessions[_i].needle);
	json_decref(s);
}
END_TEST

START_TEST(test_session_not_object)
{
	struct sg_error err = {0};
	json_t *v = parse("[]");

	ck_assert_ptr_null(sg_cl_session_to_cma(v, &bad_ctx, &err));
	sg_check_502(&err, "bad-be", "session is not an object");
	json_decref(v);
	ck_assert_ptr_null(sg_cl_session_to_cma(NULL, &bad_ctx, &err));
	sg_check_502(&err, "bad-be", "session is not an object");
}
END_TEST

START_TEST(test_long_id)
{
	char sid[256];
	json_t *s = parse(GOOD_SESSION), *out;
	struct sg_error err = {0};
	struct sg_pubid pid;

	/* 199 bytes is the most an id field holds. */
	memset(sid, 'x', 199);
	sid[199] = '\0';
	ck_assert_int_eq(json_object_set_new(s, "id", json_string(sid)), 0);
	out = sg_cl_session_to_cma(s, &good_ctx, &err);
	ck_assert_msg(out != NULL, "%s", err.message);
	ck_assert_int_eq(sg_id_decode("sesn_", json_string_value(json_object_get(out, "id")), &pid),
	                 0);
	ck_assert_str_eq(pid.native, sid);
	json_decref(out);
	/* 200 bytes cannot be encoded: a 502, not a truncated id. */
	memset(sid, 'y', 200);
	sid[200] = '\0';
	ck_assert_int_eq(json_object_set_new(s, "id", json_string(sid)), 0);
	ck_assert_ptr_null(sg_cl_session_to_cma(s, &bad_ctx, &err));
	sg_check_502(&err, "bad-be", "(200 bytes) is too long for a public id");
	json_decref(s);
}
END_TEST

START_TEST(test_no_context)
{
	struct sg_cl_ctx none = {.backend = NULL};
	struct sg_error err = {0};
	json_t *s = parse(GOOD_SESSION), *events = parse("[]");
	const json_t *data;
	const char *next;

	/* A missing context is the caller's bug: 500, not a backend error. */
	ck_assert_ptr_null(sg_cl_session_to_cma(s, NULL, &err));
	ck_assert_int_eq(err.status, 500);
	err.status = 0;
	ck_assert_ptr_null(sg_cl_events_to_cma(events, &none, &err));
	ck_assert_int_eq(err.status, 500);
	err.status = 0;
	ck_assert_int_eq(sg_north_page_parts(s, NULL, &data, &next, &err), -1);
	ck_assert_int_eq(err.status, 500);
	json_decref(events);
	json_decref(s);
}
END_TEST

#define AT "\"processed_at\": \"2026-01-01T00:00:00Z\""
#define MSG(extra) "{\"id\": \"e\", \"type\": \"agent.message\", " extra "}"

static const struct {
	const char *events, *needle;
} bad_events[] = {
    {"{}", "events is not an array"},
    {"null", "events is not an array"},
    {"[1]", "events[0] is not an object"},
    {"[{\"id\": \"e\"}]", "events[0].type is missing or not a string"},
    {"[{\"id\": \"e\", \"type\": 5}]", "events[0].type is missing or not a string"},
    {"[{\"type\": \"agent.message\", " AT ", \"content\": []}]",
     "events[0].id is missing or not a string (agent.message)"},
    {"[{\"id\": 5, \"type\": \"agent.message\", " AT ", \"content\": []}]",
     "events[0].id is missing or not a string"},
    {"[" MSG("\"content\": []") "]", "events[0].processed_at is missing or null (agent.message)"},
    {"[" MSG("\"processed_at\": null, \"content\": []") "]",
     "events[0].processed_at is missing or null"},
    {"[" MSG("\"processed_at\": \"garbage\", \"content\": []") "]",
     "events[0].processed_at 'garbage' is not an RFC 3339 timestamp (agent.message)"},
    {"[" MSG("\"processed_at\": 1780000000, \"content\": []") "]",
     "events[0].processed_at is not a string"},
    {"[{\"id\": \"u\", \"type\": \"user.message\", \"processed_at\": \"nope\", \"content\": []}]",
     "events[0].processed_at 'nope' is not an RFC 3339 timestamp (user.message)"},
    {"[{\"id\": \"t\", \"type\": \"agent.tool_use\", " AT ", \"input\": {}}]",
     "events[0].name is missing (agent.tool_use)"},
    {"[{\"id\": \"t\", \"type\": \"agent.tool_use\", " AT ", \"name\": \"bash\", \"input\": "
     "\"ls\"}]",
     "events[0].input is not an object (agent.tool_use)"},
    {"[{\"id\": \"t\", \"type\": \"agent.tool_use\", " AT ", \"name\": \"bash\", \"input\": {}, "
     "\"evaluation\": {\"type\": \"auto\"}}]",
     "events[0].evaluation.evaluated_permission is missing"},
    {"[" MSG(AT ", \"content\": {}") "]", "events[0].content is not an array (agent.message)"},
    {"[" MSG(AT ", \"content\": [{\"type\": \"text\"}]") "]",
     "events[0].content[0].text is missing (agent.message)"},
    {"[" MSG(AT ", \"content\": [{\"text\": \"x\"}]") "]",
     "events[0].content[0] has no string 'type' (agent.message)"},
    {"[" MSG(AT ", \"content\": [{\"type\": \"text\", \"text\": 5}]") "]",
     "events[0].content[0].text is not a string"},
    {"[{\"id\": \"u\", \"type\": \"user.message\", \"content\": [{\"type\": \"image\", "
     "\"source\": {\"type\": \"url\"}}]}]",
     "events[0].content[0].source.url is missing (user.message)"},
    {"[{\"id\": \"s\", \"type\": \"span.model_request_end\", " AT ", \"model_request_start_id\": "
     "\"s0\", \"model_usage\": {\"input_tokens\": \"12\"}}]",
     "events[0].model_usage.input_tokens is not a number (span.model_request_end)"},
    {"[{\"id\": \"s\", \"type\": \"span.model_request_end\", " AT ", \"model_usage\": {}}]",
     "events[0].model_request_start_id is missing"},
    {"[{\"id\": \"i\", \"type\": \"session.status_idle\", " AT ", \"stop_reason\": "
     "\"end_turn\"}]",
     "events[0].stop_reason is not an object (session.status_idle)"},
    {"[{\"id\": \"i\", \"type\": \"session.status_idle\", " AT ", \"stop_reason\": {\"type\": "
     "\"requires_action\", \"event_ids\": [1]}}]",
     "events[0].stop_reason.event_ids[0] is not a string"},
    {"[{\"id\": \"x\", \"type\": \"session.error\", " AT "}]",
     "events[0].error is missing (session.error)"},
    {"[{\"id\": \"x\", \"type\": \"session.error\", " AT ", \"error\": {\"type\": "
     "\"billing_error\", \"retry_status\": {\"type\": \"terminal\"}}}]",
     "events[0].error.message is missing (session.error)"},
    {"[{\"id\": \"r\", \"type\": \"agent.tool_result\", " AT ", \"tool_use_id\": \"t\", "
     "\"is_error\": \"yes\"}]",
     "events[0].is_error is not a boolean (agent.tool_result)"},
    {"[{\"id\": \"d\", \"type\": \"user.define_outcome\", " AT ", \"description\": \"d\", "
     "\"outcome_id\": \"o\", \"rubric\": {\"type\": \"text\"}}]",
     "events[0].rubric.content is missing (user.define_outcome)"},
    {"[" MSG(AT ", \"content\": []") ", 7]", "events[1] is not an object"},
};

START_TEST(test_bad_events)
{
	json_t *events = parse(bad_events[_i].events);
	struct sg_error err = {0};

	ck_assert_ptr_null(sg_cl_events_to_cma(events, &bad_ctx, &err));
	sg_check_502(&err, "bad-be", bad_events[_i].needle);
	json_decref(events);
}
END_TEST

START_TEST(test_events_copy)
{
	/* The answer owns its values: changing it leaves the upstream body alone. */
	json_t *in = parse("[{\"id\": \"t\", \"type\": \"agent.tool_use\", " AT
	                   ", \"name\": \"bash\", \"input\": {\"cmd\": \"ls\"}}]");
	struct sg_error err = {0};
	json_t *out = sg_cl_events_to_cma(in, &good_ctx, &err);

	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(json_object_set_new(json_object_get(json_array_get(out, 0), "input"),
	                                     "cmd", json_string("rm")),
	                 0);
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_object_get(json_array_get(in, 0), "input"), "cmd")),
	                 "ls");
	json_decref(out);
	json_decref(in);
}
END_TEST

/* What the _take functions promise beyond giving the copying ones' answer: the input itself
 * comes back, edited in place (undeclared keys gone, keys with NUL bytes too, empty values
 * filled), and what was already right is shared rather than copied. */
START_TEST(test_take_in_place)
{
	json_t *s = parse(GOOD_SESSION), *title = json_string("t"), *out, *ev;
	json_t *agent = json_object_get(s, "agent");
	struct sg_error err = {0};

	ck_assert_int_eq(json_object_set(s, "title", title), 0);
	ck_assert_int_eq(json_object_set_new(s, "extra", json_true()), 0);
	ck_assert_int_eq(json_object_setn_new(s, "type\0x", 6, json_true()), 0);
	ck_assert_int_eq(json_object_set_new(agent, "extra", json_true()), 0);
	ck_assert_int_eq(
	    json_object_set_new(s, "metadata", json_pack("{s:s, s:i}", "k", "v", "n", 1)), 0);
	json_incref(s);
	out = sg_north_session_take(s, "bad-be", "session", SG_NORTH_LENIENT, &err);
	ck_assert_ptr_eq(out, s);
	ck_assert_ptr_eq(json_object_get(out, "title"), title);
	ck_assert_ptr_eq(json_object_get(out, "agent"), agent);
	ck_assert_ptr_null(json_object_get(out, "extra"));
	ck_assert_ptr_null(json_object_getn(out, "type\0x", 6));
	ck_assert_ptr_null(json_object_get(agent, "extra"));
	ck_assert_ptr_null(json_object_get(json_object_get(out, "metadata"), "n"));
	ck_assert(json_is_array(json_object_get(agent, "tools")));
	ck_assert(json_is_null(json_object_get(out, "budget")));
	ck_assert_str_eq(json_string_value(json_object_get(out, "updated_at")),
	                 "2026-01-01T00:00:00Z");
	json_decref(out);
	json_decref(s);
	json_decref(title);

	/* Failing, the input is consumed all the same (the sanitizer build checks the leak). */
	s = parse("{\"type\": \"session\"}");
	ck_assert_ptr_null(sg_north_session_take(s, "bad-be", "session", 0, &err));
	sg_check_502(&err, "bad-be", "session.id is missing or not a string");
	ev = parse("{\"id\": \"e\", \"type\": \"agent.message\", \"content\": 1, " AT "}");
	ck_assert_int_eq(sg_north_event_take(ev, "bad-be", "events[0]", 0, &out, &err), -1);
	ck_assert_ptr_null(out);
	ev = parse("{\"id\": \"e\", \"type\": \"agent.new_kind\", " AT "}");
	ck_assert_int_eq(sg_north_event_take(ev, "bad-be", "events[0]", 0, &out, &err),
	                 SG_NORTH_DROPPED);
	ck_assert_ptr_null(out);
	ck_assert_ptr_null(sg_north_agent_take(json_integer(1), "bad-be", "agent", 0, &err));
	ck_assert_ptr_null(sg_north_session_take(json_object(), NULL, "session", 0, &err));
	ck_assert_int_eq(err.status, 500);
}
END_TEST

/* Timestamps leave in sg_time_format's spelling, whichever RFC 3339 spelling came in; one
 * already in it is kept as it is (taken: the very same string). */
START_TEST(test_time_spellings)
{
	static const char *const cases[][2] = {
	    {"2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"},
	    {"2026-01-01T00:00:00.123456Z", "2026-01-01T00:00:00.123456Z"},
	    {"2026-01-01t00:00:00z", "2026-01-01T00:00:00Z"},
	    {"2026-01-01 00:00:00Z", "2026-01-01T00:00:00Z"},
	    {"2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:00Z"},
	    {"2026-01-01T00:00:00.5Z", "2026-01-01T00:00:00.500000Z"},
	    {"2026-01-01T01:00:00+01:00", "2026-01-01T00:00:00Z"},
	    {"2026-06-30T23:59:60Z", "2026-06-30T23:59:59Z"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *ev = json_pack("{s:s, s:s, s:s}", "id", "e", "type",
		                       "session.status_running", "processed_at", cases[i][0]);
		json_t *pa = json_object_get(ev, "processed_at"), *a = NULL, *b = NULL;
		struct sg_error err = {0};

		ck_assert_int_eq(sg_north_event(ev, BACKEND, "e", 0, &a, &err), SG_NORTH_KEPT);
		ck_assert_str_eq(json_string_value(json_object_get(a, "processed_at")),
		                 cases[i][1]);
		ck_assert_int_eq(sg_north_event_take(json_incref(ev), BACKEND, "e", 0, &b, &err),
		                 SG_NORTH_KEPT);
		ck_assert_str_eq(json_string_value(json_object_get(b, "processed_at")),
		                 cases[i][1]);
		if (!strcmp(cases[i][0], cases[i][1]))
			ck_assert_ptr_eq(json_object_get(b, "processed_at"), pa);
		json_decref(a);
		json_decref(b);
		json_decref(ev);
	}
}
END_TEST

/* Replacements tried at every node of a fixture input. */
static const char *const mutations[] = {"null", "7", "\"x\"", "{}", "[]", "true"};
#define NMUT (sizeof(mutations) / sizeof(mutations[0]))

/* Translates `doc` (the whole input item) with the node at *cur replaced: whatever the
 * replacement, the answer is either a 502 naming the backend or a north value that is a
 * fixed point of the translation. Returns how many translations ran. */
static size_t try_mutations(json_t *doc, json_t *parent, const char *key, size_t idx, int events)
{
	json_t *orig = key ? json_object_get(parent, key) : json_array_get(parent, idx);
	size_t runs = 0, m;

	json_incref(orig);
	for (m = 0; m < NMUT; m++) {
		struct sg_error err = {0};
		json_t *rep = parse(mutations[m]), *out, *again, *wrapped;

		if (key)
			ck_assert_int_eq(json_object_set_new(parent, key, rep), 0);
		else
			ck_assert_int_eq(json_array_set_new(parent, idx, rep), 0);
		if (events)
			check_take_event(doc);
		else
			check_take_session(doc);
		if (events) {
			wrapped = json_pack("[O]", doc);
			out = sg_cl_events_to_cma(wrapped, &bad_ctx, &err);
			json_decref(wrapped);
		} else {
			out = sg_cl_session_to_cma(doc, &bad_ctx, &err);
		}
		runs++;
		if (!out) {
			sg_check_502(&err, "bad-be", "");
			continue;
		}
		if (events) {
			again = sg_cl_events_to_cma(out, &bad_ctx, &err);
		} else {
			json_t *back = json_deep_copy(out);

			ck_assert_int_eq(json_object_set(back, "id", json_object_get(doc, "id")),
			                 0);
			again = sg_cl_session_to_cma(back, &bad_ctx, &err);
			json_decref(back);
		}
		ck_assert_msg(again && json_equal(again, out),
		              "mutation %s at %s: not a fixed point", mutations[m],
		              key ? key : "[]");
		json_decref(again);
		json_decref(out);
	}
	if (key)
		ck_assert_int_eq(json_object_set_new(parent, key, orig), 0);
	else
		ck_assert_int_eq(json_array_set_new(parent, idx, orig), 0);
	return runs;
}

/* Depth first over every node below `node`, mutating each in turn. */
static size_t walk_mutations(json_t *doc, json_t *node, int events)
{
	size_t runs = 0, i;
	const char *key;
	json_t *v;
	void *tmp;

	if (json_is_object(node)) {
		json_object_foreach_safe(node, tmp, key, v) {
			runs += walk_mutations(doc, v, events);
			runs += try_mutations(doc, node, key, 0, events);
		}
	} else if (json_is_array(node)) {
		for (i = 0; i < json_array_size(node); i++) {
			runs += walk_mutations(doc, json_array_get(node, i), events);
			runs += try_mutations(doc, node, NULL, i, events);
		}
	}
	return runs;
}

START_TEST(test_mutations)
{
	char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	const char *group = _i ? EVENTS : SESSIONS;
	size_t n = sg_fixture_list(group, names, MAX_CASES), c, i, runs = 0;

	for (c = 0; c < n; c++) {
		json_t *body = sg_fixture_load(group, names[c], "input.json");
		json_t *data = json_object_get(body, "data");

		ck_assert_ptr_nonnull(data);
		for (i = 0; i < json_array_size(data); i++)
			runs +=
			    walk_mutations(json_array_get(data, i), json_array_get(data, i), _i);
		json_decref(body);
	}
	ck_assert_uint_gt(runs, 100);
}
END_TEST

/* Allocation budget for test_oom. jansson's allocator hook takes no context pointer, so
 * this one test needs file-scope state; nothing else reads it. */
static long alloc_left = -1;

static void *failing_malloc(size_t size)
{
	if (alloc_left == 0)
		return NULL;
	if (alloc_left > 0)
		alloc_left--;
	return malloc(size);
}

/* Fails the n-th allocation of each translation, for every n until one succeeds: each
 * failure must be a 500 with nothing leaked (valgrind checks the latter). */
START_TEST(test_oom)
{
	json_t *sessions = sg_fixture_load(SESSIONS, "seed1_list", "input.json");
	json_t *events = sg_fixture_load(EVENTS, "other_types", "input.json");
	const json_t *s = json_array_get(json_object_get(sessions, "data"), 0);
	const json_t *ev = json_object_get(events, "data");
	int done_s = 0, done_e = 0;
	long n;

	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(ev);
	for (n = 0; !(done_s && done_e); n++) {
		struct sg_error err = {0};
		json_t *out;

		ck_assert_int_lt(n, 100000);
		json_set_alloc_funcs(failing_malloc, free);
		alloc_left = n;
		out = done_s ? NULL : sg_cl_session_to_cma(s, &good_ctx, &err);
		alloc_left = -1;
		if (!done_s && !out)
			ck_assert_msg(err.status == 500, "n=%ld: %d %s", n, err.status,
			              err.message);
		done_s |= out != NULL;
		json_decref(out);
		err.status = 0;
		alloc_left = n;
		out = done_e ? NULL : sg_cl_events_to_cma(ev, &good_ctx, &err);
		alloc_left = -1;
		if (!done_e && !out)
			ck_assert_msg(err.status == 500, "n=%ld: %d %s", n, err.status,
			              err.message);
		done_e |= out != NULL;
		json_decref(out);
		json_set_alloc_funcs(malloc, free);
	}
	json_decref(events);
	json_decref(sessions);
}
END_TEST

/* The same for the _take normalisers, which also own their input: each failure is a 500, and
 * neither the input nor anything built is leaked (the sanitizer build checks). */
START_TEST(test_oom_take)
{
	json_t *sessions = sg_fixture_load(SESSIONS, "seed1_list", "input.json");
	json_t *events = sg_fixture_load(EVENTS, "other_types", "input.json");
	const json_t *s = json_array_get(json_object_get(sessions, "data"), 0);
	const json_t *ev = json_object_get(events, "data");
	size_t i, done = 0, total = json_array_size(ev) + 1;
	long n;

	ck_assert_ptr_nonnull(s);
	for (n = 0; done < total; n++) {
		ck_assert_int_lt(n, 100000);
		done = 0;
		for (i = 0; i < total; i++) {
			struct sg_error err = {0};
			json_t *mine = json_deep_copy(i ? json_array_get(ev, i - 1) : s),
			       *out = NULL;
			int rc;

			ck_assert_ptr_nonnull(mine);
			if (!i)
				ck_assert_int_eq(json_object_set_new(mine, "id", json_string("x")),
				                 0);
			json_set_alloc_funcs(failing_malloc, free);
			alloc_left = n;
			if (i) {
				rc = sg_north_event_take(mine, BACKEND, "e", 0, &out, &err);
			} else {
				out = sg_north_session_take(mine, BACKEND, "s", 0, &err);
				rc = out ? 0 : -1;
			}
			alloc_left = -1;
			json_set_alloc_funcs(malloc, free);
			if (rc < 0)
				ck_assert_msg(err.status == 500, "n=%ld: %d %s", n, err.status,
				              err.message);
			else
				done++;
			json_decref(out);
		}
	}
	json_decref(events);
	json_decref(sessions);
}
END_TEST

/* ---- the module's I/O, against a scripted upstream ---------------------------------------- */

extern const struct sg_mapping sg_mapping_claude;

#define CL_OPTS "{\"api_key\": \"sk-ant-test\", \"anthropic_version\": \"2023-06-01\"}"

static const json_t *cl_seen(const struct sg_flow *f, size_t i, const char *method, const char *uri)
{
	const json_t *r = json_array_get(sg_flow_seen(f), i), *h;

	ck_assert_msg(r != NULL, "request %zu was not sent", i);
	ck_assert_str_eq(json_string_value(json_object_get(r, "method")), method);
	ck_assert_str_eq(json_string_value(json_object_get(r, "uri")), uri);
	h = json_object_get(r, "headers");
	/* the backend's own credentials and dialect headers, never the client's */
	ck_assert_str_eq(json_string_value(json_object_get(h, "x-api-key")), "sk-ant-test");
	ck_assert_str_eq(json_string_value(json_object_get(h, "anthropic-version")), "2023-06-01");
	ck_assert_str_eq(json_string_value(json_object_get(h, "anthropic-beta")),
	                 "managed-agents-2026-04-01");
	ck_assert_ptr_null(json_object_get(h, "authorization"));
	if (json_is_object(json_object_get(r, "body")))
		ck_assert_str_eq(json_string_value(json_object_get(h, "content-type")),
		                 "application/json");
	return r;
}

START_TEST(test_flow_writes)
{
	struct sg_flow *f = sg_flow_new(&sg_mapping_claude, BACKEND, CL_OPTS);
	struct sg_pubid id = sg_flow_id(BACKEND, "", "sesn_up");
	const char *create = "{\"agent\": {\"type\": \"agent\", \"id\": \"agent_1\", \"version\": "
	                     "2}, \"environment_id\": \"env_1\", \"metadata\": {\"k\": \"v\"}}";
	const struct sg_error *e;
	char want[SG_ID_MAX];
	const json_t *r;
	json_t *body;

	ck_assert_int_ge(sg_id_encode("sesn_", BACKEND, "", "sesn_up", want, sizeof(want)), 0);
	sg_flow_route(f, "POST", "/v1/sessions", 200, GOOD_SESSION);
	sg_flow_run(f, SG_CALL_CREATE_SESSION, "{}", NULL, create, -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	ck_assert_str_eq(json_string_value(json_object_get(sg_flow_object(f), "id")), want);
	r = cl_seen(f, 0, "POST", "/v1/sessions");
	/* the body as the client sent it: agent ids carry no route, so none is translated */
	body = parse(create);
	ck_assert(json_equal(json_object_get(r, "body"), body));
	json_decref(body);

	sg_flow_route(f, "POST", "/v1/sessions/sesn_up", 200, GOOD_SESSION);
	sg_flow_run(f, SG_CALL_UPDATE_SESSION, "{}", &id, "{\"title\": null}", -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	r = cl_seen(f, 0, "POST", "/v1/sessions/sesn_up");
	ck_assert(json_is_null(json_object_get(json_object_get(r, "body"), "title")));

	sg_flow_route(f, "POST", "/v1/sessions/sesn_up/archive", 200, GOOD_SESSION);
	sg_flow_run(f, SG_CALL_ARCHIVE_SESSION, "{}", &id, NULL, -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	r = cl_seen(f, 0, "POST", "/v1/sessions/sesn_up/archive");
	ck_assert(json_is_null(json_object_get(r, "body")));

	sg_flow_route(f, "DELETE", "/v1/sessions/sesn_up", 200,
	              "{\"id\": \"sesn_up\", \"type\": \"session_deleted\"}");
	sg_flow_run(f, SG_CALL_DELETE_SESSION, "{}", &id, NULL, -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	ck_assert_ptr_null(sg_flow_object(f));
	cl_seen(f, 0, "DELETE", "/v1/sessions/sesn_up");

	sg_flow_route(f, "POST", "/v1/sessions/sesn_up/events", 200,
	              "{\"data\": [{\"id\": \"sevt_1\", \"type\": \"user.interrupt\", "
	              "\"processed_at\": null}]}");
	sg_flow_run(f, SG_CALL_SEND_EVENTS, "{}", &id,
	            "{\"events\": [{\"type\": \"user.interrupt\"}]}", -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_array_get(json_object_get(sg_flow_object(f), "data"), 0), "id")),
	                 "sevt_1");
	cl_seen(f, 0, "POST", "/v1/sessions/sesn_up/events");

	/* an answer that does not translate after the write: applied, no retry */
	sg_flow_route(f, "POST", "/v1/sessions/sesn_up", 200, "{\"id\": \"sesn_up\"}");
	sg_flow_run(f, SG_CALL_UPDATE_SESSION, "{}", &id, "{\"title\": \"x\"}", -1);
	e = sg_flow_error(f);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->status, 502);
	ck_assert_int_eq(e->should_retry, 0);
	ck_assert_ptr_nonnull(strstr(e->message, "the write was applied"));
	/* the upstream's own refusal */
	sg_flow_route(f, "POST", "/v1/sessions/sesn_up/archive", 409,
	              "{\"type\": \"error\", \"error\": {\"type\": \"conflict_error\", "
	              "\"message\": \"session is running\"}}");
	sg_flow_run(f, SG_CALL_ARCHIVE_SESSION, "{}", &id, NULL, -1);
	e = sg_flow_error(f);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->status, 409);
	ck_assert_ptr_nonnull(strstr(e->message, "session is running"));
	sg_flow_free(f);
}
END_TEST

START_TEST(test_flow_agents)
{
	struct sg_flow *f = sg_flow_new(&sg_mapping_claude, BACKEND, CL_OPTS);
	struct sg_pubid id = sg_flow_id(BACKEND, "", "agent_1");

	sg_flow_route(f, "GET", "/v1/agents?limit=100&include_archived=true", 200,
	              "{\"data\": [" GOOD_AGENT "], \"next_page\": \"page_2\"}");
	sg_flow_route(f, "GET", "/v1/agents?limit=100&include_archived=true&page=page_2", 200,
	              "{\"data\": [" GOOD_AGENT "], \"next_page\": null}");
	sg_flow_run(f, SG_CALL_LIST_AGENTS, "{}", NULL, NULL, -1);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	ck_assert_uint_eq(json_array_size(sg_flow_items(f)), 2);
	cl_seen(f, 1, "GET", "/v1/agents?limit=100&include_archived=true&page=page_2");
	sg_flow_route(f, "GET", "/v1/agents/agent_1?version=3", 200, GOOD_AGENT);
	sg_flow_run(f, SG_CALL_GET_AGENT, "{}", &id, NULL, 3);
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	ck_assert_str_eq(json_string_value(json_object_get(sg_flow_object(f), "id")), "agent_1");
	sg_flow_free(f);
}
END_TEST

/* ---- the live stream (stream_events), against a scripted SSE answer ------------------------- */

#define CL_STREAM "/v1/sessions/sesn_up/events/stream"

/* The stream the upstream sends for events (borrowed array): `event: <type>` + `data:` per
 * event, with pings and comments between, line ends varied, cut into pieces of n bytes (a
 * NULL-terminated array; free each and it). */
static char **cl_stream_pieces(const json_t *events, size_t n)
{
	static const char *const ends[] = {"\n", "\r\n", "\r"};
	char *buf = NULL, **out;
	size_t size = 0, i, len, k = 0;
	FILE *f = open_memstream(&buf, &size);
	const json_t *e;

	ck_assert_ptr_nonnull(f);
	json_array_foreach(events, i, e) {
		const char *end = ends[i % 3];
		char *text = json_dumps(e, JSON_COMPACT);

		ck_assert_ptr_nonnull(text);
		fprintf(f, ": keep-alive%sevent: ping%sdata: {\"type\": \"ping\"}%s%s", end, end,
		        end, end);
		fprintf(f, "event: %s%sdata: %s%s%s", json_string_value(json_object_get(e, "type")),
		        end, text, end, end);
		free(text);
	}
	fclose(f);
	len = strlen(buf);
	out = calloc(len / n + 2, sizeof(*out));
	ck_assert_ptr_nonnull(out);
	for (size_t at = 0; at < len; at += n)
		out[k++] = strndup(buf + at, n);
	free(buf);
	return out;
}

static void cl_free_pieces(char **pieces)
{
	for (size_t i = 0; pieces[i]; i++)
		free(pieces[i]);
	free(pieces);
}

static void cl_stream_ok(const struct sg_flow *f, const char *last_mark)
{
	ck_assert_msg(!sg_flow_error(f), "%s", sg_flow_error(f)->message);
	ck_assert_ptr_null(sg_flow_object(f));
	ck_assert_int_eq(sg_flow_opened(f), 1);
	if (last_mark)
		ck_assert_str_eq(sg_flow_marked(f), last_mark);
	else
		ck_assert_ptr_null(sg_flow_marked(f));
}

/* Every events fixture, streamed and cut into pieces anywhere: the stream shows exactly what
 * the events list shows (expected.json); resume tokens are not sent (no native resume). */
START_TEST(test_stream_same_as_list)
{
	char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	size_t n = sg_fixture_list(EVENTS, names, MAX_CASES);
	struct sg_pubid id = sg_flow_id(BACKEND, "", "sesn_up");
	struct sg_flow *f = sg_flow_new(&sg_mapping_claude, BACKEND, CL_OPTS);

	ck_assert_uint_gt(n, 0);
	for (size_t c = 0; c < n; c++) {
		json_t *body = sg_fixture_load(EVENTS, names[c], "input.json");
		json_t *want = sg_fixture_load(EVENTS, names[c], "expected.json");
		const json_t *data = json_object_get(body, "data"), *last = NULL, *ev;
		char **pieces = cl_stream_pieces(data, 23 + c * 7);
		size_t i;

		ck_assert_ptr_nonnull(want);
		json_array_foreach(data, i, ev) {
			if (sg_jis_id(json_object_get(ev, "id")))
				last = json_object_get(ev, "id");
		}
		sg_flow_route_stream(f, CL_STREAM, 200, (const char *const *)pieces, 0);
		sg_flow_run_stream(f, &id, 0, c % 2 ? "sevt_resume" : NULL, 0);
		cl_stream_ok(f, json_string_value(last));
		cl_seen(f, 0, "GET", CL_STREAM);
		ck_assert_msg(json_equal(want, (json_t *)sg_flow_emitted(f)), "case %s differs",
		              names[c]);
		cl_free_pieces(pieces);
		json_decref(want);
		json_decref(body);
	}
	sg_flow_free(f);
}
END_TEST

#define CL_EV1                                                                                     \
	"{\"id\": \"sevt_1\", \"type\": \"session.status_running\", \"processed_at\": "            \
	"\"2026-06-05T10:00:00Z\"}"

/* What the SDK skips is skipped (pings, comments, messages without data); an event without an
 * `event:` line is read by its data's type; an event the SDK's union lacks is dropped but
 * still moves the mark. */
START_TEST(test_stream_messages)
{
	struct sg_pubid id = sg_flow_id(BACKEND, "", "sesn_up");
	struct sg_flow *f = sg_flow_new(&sg_mapping_claude, BACKEND, CL_OPTS);
	static const char *const pieces[] = {
	    ": hello\n\nevent: ping\ndata: {}\n\nevent: ping\n\n",
	    "event: session.status_running\ndata: " CL_EV1 "\n\n",
	    "event: agent.message\n\nevent: agent.message\ndata:\n\n",
	    "data: {\"id\": \"sevt_2\", \"type\": \"session.status_idle\", \"processed_at\": "
	    "\"2026-06-05T10:00:01Z\"}\n\n",
	    "event: weird\ndata: {\"id\": \"sevt_3\", \"type\": \"weird\"}\nid: 77\n\n",
	    "event: agent.message\ndata: {\"id\": \"sevt_4\", \"type\": \"agent.mess",
	    NULL};
	const json_t *em;

	sg_flow_route_stream(f, CL_STREAM, 200, pieces, 0);
	sg_flow_run_stream(f, &id, 0, NULL, 0);
	cl_stream_ok(f, "sevt_3");
	em = sg_flow_emitted(f);
	ck_assert_uint_eq(json_array_size(em), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(em, 0), "id")), "sevt_1");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(em, 1), "type")),
	                 "session.status_idle");
	/* normalised as listed: the idle event gets its stop_reason and stop_details */
	ck_assert_ptr_nonnull(json_object_get(json_array_get(em, 1), "stop_reason"));
	ck_assert_ptr_nonnull(json_object_get(json_array_get(em, 1), "stop_details"));
	ck_assert(json_is_null(json_array_get(sg_flow_marks(f), 0)));
	ck_assert_str_eq(json_string_value(json_array_get(sg_flow_marks(f), 1)), "sevt_1");
	sg_flow_free(f);
}
END_TEST

/* `event: error` after the 200 fails the call with a 502 carrying the upstream's words; so does
 * data that is not a JSON object or not an event; a head that is not 2xx is the north error the
 * upstream's answer deserves. */
START_TEST(test_stream_failures)
{
	struct sg_pubid id = sg_flow_id(BACKEND, "", "sesn_up");
	struct sg_flow *f = sg_flow_new(&sg_mapping_claude, BACKEND, CL_OPTS);
	static const char good[] = "event: session.status_running\ndata: " CL_EV1 "\n\n";
	static const char *const bad[][2] = {
	    {"event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": "
	     "\"overloaded_error\", "
	     "\"message\": \"Overloaded\"}}\n\n",
	     "reported an error on the stream: overloaded_error: Overloaded"},
	    {"event: error\ndata: oops\x01\n\n", "reported an error on the stream: oops "},
	    {"event: error\n\n", "reported an error on the stream: (no message)"},
	    {"event: agent.message\ndata: {\"id\": \n\n", "not a JSON object"},
	    {"event: agent.message\ndata: [1]\n\n", "not a JSON object"},
	    {"event: agent.message\ndata: {\"id\": 5, \"type\": \"agent.message\"}\n\n", "id"},
	};
	const struct sg_error *e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sg_flow_route_stream(f, CL_STREAM, 200,
		                     (const char *const[]){good, bad[i][0], good, NULL}, 0);
		sg_flow_run_stream(f, &id, 0, NULL, 0);
		e = sg_flow_error(f);
		ck_assert_msg(e != NULL, "case %zu succeeded", i);
		ck_assert_int_eq(e->status, 502);
		ck_assert_str_eq(e->type, "api_error");
		ck_assert_msg(strstr(e->message, "backend '" BACKEND "'") &&
		                  strstr(e->message, bad[i][1]),
		              "case %zu: %s", i, e->message);
		ck_assert_uint_eq(json_array_size(sg_flow_emitted(f)), 1);
		ck_assert_str_eq(sg_flow_marked(f), "sevt_1");
	}
	sg_flow_route(f, "GET", CL_STREAM, 404,
	              "{\"type\": \"error\", \"error\": {\"type\": \"not_found_error\", "
	              "\"message\": \"no such session\"}}");
	sg_flow_run_stream(f, &id, 0, NULL, 0);
	e = sg_flow_error(f);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->status, 404);
	ck_assert_str_eq(e->type, "not_found_error");
	ck_assert_int_eq(sg_flow_opened(f), 0);
	sg_flow_free(f);
}
END_TEST

/* The client leaves mid-piece: the call (and the reader) are freed inside sg_call_emit. */
START_TEST(test_stream_leave)
{
	struct sg_pubid id = sg_flow_id(BACKEND, "", "sesn_up");
	struct sg_flow *f = sg_flow_new(&sg_mapping_claude, BACKEND, CL_OPTS);
	static const char three[] = "event: session.status_running\ndata: " CL_EV1 "\n\n"
	                            "event: session.status_running\ndata: " CL_EV1 "\n\n"
	                            "event: session.status_running\ndata: " CL_EV1 "\n\n";

	sg_flow_route_stream(f, CL_STREAM, 200, (const char *const[]){three, NULL}, 1);
	for (size_t k = 1; k <= 3; k++) {
		sg_flow_run_stream(f, &id, 0, NULL, k);
		ck_assert(sg_flow_left(f));
		ck_assert_uint_eq(json_array_size(sg_flow_emitted(f)), k);
	}
	sg_flow_free(f);
}
END_TEST

static Suite *claude_suite(void)
{
	char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	size_t ns = sg_fixture_list(SESSIONS, names, MAX_CASES);
	size_t ne = sg_fixture_list(EVENTS, names, MAX_CASES);
	size_t na = sg_fixture_list(AGENTS, names, MAX_CASES);
	Suite *s = suite_create("claude");
	TCase *golden = tcase_create("golden");
	TCase *edge = tcase_create("edge");

	if (ns && ne && na) {
		tcase_add_loop_test(golden, test_sessions_golden, 0, (int)ns);
		tcase_add_loop_test(golden, test_events_golden, 0, (int)ne);
		tcase_add_loop_test(golden, test_agents_golden, 0, (int)na);
	} else {
		tcase_add_test(golden, test_no_fixtures);
	}
	tcase_add_test(edge, test_page_parts);
	tcase_add_test(edge, test_page_too_big);
	tcase_add_loop_test(edge, test_bad_session, 0,
	                    (int)(sizeof(bad_sessions) / sizeof(bad_sessions[0])));
	tcase_add_test(edge, test_session_not_object);
	tcase_add_test(edge, test_bad_agent);
	tcase_add_test(edge, test_sent);
	tcase_add_test(edge, test_flow_writes);
	tcase_add_test(edge, test_flow_agents);
	tcase_add_test(edge, test_stream_same_as_list);
	tcase_add_test(edge, test_stream_messages);
	tcase_add_test(edge, test_stream_failures);
	tcase_add_test(edge, test_stream_leave);
	tcase_add_test(edge, test_long_id);
	tcase_add_test(edge, test_no_context);
	tcase_add_loop_test(edge, test_bad_events, 0,
	                    (int)(sizeof(bad_events) / sizeof(bad_events[0])));
	tcase_add_test(edge, test_events_copy);
	tcase_add_test(edge, test_take_in_place);
	tcase_add_test(edge, test_time_spellings);
	tcase_add_loop_test(edge, test_mutations, 0, 2);
	tcase_add_test(edge, test_oom);
	tcase_add_test(edge, test_oom_take);
	tcase_set_timeout(golden, 60);
	tcase_set_timeout(edge, 300);
	suite_add_tcase(s, golden);
	suite_add_tcase(s, edge);
	return s;
}

int main(void)
{
	return sg_fixture_run(claude_suite());
}
