/* test_agentscope_events.c - AgentScope message log → north events: golden fixtures under
 * tests/fixtures/agentscope/events/<case>/ (messages.json, ctx.json, expected.json) plus
 * properties every answer must have (stable and unique ids, resolvable links, no keys
 * that do not apply, UTC timestamps) and the 502 paths. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentscope_events.h"
#include "fixture.h"
#include "idcodec.h"
#include "tz.h"

#define GROUP "agentscope/events"
#define MAX_CASES 64
#define MIN_CASES 14 /* guards against a wrong SG_SRCDIR silently running nothing */

/* ---- helpers ------------------------------------------------------------------------ */

/* A context from a fixture's ctx.json (borrowed strings stay valid while j lives). The
 * zone is loaded into *tz; the caller frees it. Returns 0 or -1. */
static int ctx_from_json(const json_t *j, struct sg_as_events_ctx *ctx, struct sg_tz **tz)
{
	char err[128];

	memset(ctx, 0, sizeof(*ctx));
	ctx->backend = json_string_value(json_object_get(j, "backend"));
	ctx->session_key = json_string_value(json_object_get(j, "session_key"));
	ctx->agent_name = json_string_value(json_object_get(j, "agent_name"));
	ctx->model = json_string_value(json_object_get(j, "model"));
	ctx->session_running = json_is_true(json_object_get(j, "session_running"));
	ctx->hint_mode = (int)json_integer_value(json_object_get(j, "hint_mode"));
	*tz = sg_tz_load(json_string_value(json_object_get(j, "tz")), err, sizeof(err));
	if (!*tz) {
		fprintf(stderr, "ctx: %s\n", err);
		return -1;
	}
	ctx->tz = *tz;
	return 0;
}

/* Translates fixture case `name`; returns the events (new) or NULL. */
static json_t *run_case(const char *name)
{
	json_t *messages = sg_fixture_load(GROUP, name, "messages.json");
	json_t *cj = sg_fixture_load(GROUP, name, "ctx.json");
	struct sg_as_events_ctx ctx;
	struct sg_error err = {0};
	struct sg_tz *tz = NULL;
	json_t *got = NULL;

	if (messages && cj && ctx_from_json(cj, &ctx, &tz) == 0) {
		got = sg_as_messages_to_events(messages, &ctx, &err);
		if (!got)
			fprintf(stderr, "%s: %d %s\n", name, err.status, err.message);
	}
	sg_tz_free(tz);
	json_decref(messages);
	json_decref(cj);
	return got;
}

static const struct sg_as_events_ctx base_ctx = {
    .backend = "as1",
    .session_key = "agent1/sess1",
    .agent_name = "Friday",
};

/* What a tool_result's tool_use_id and a requires_action's event_ids may point at. */
static const char *const tool_uses[] = {"agent.tool_use", "agent.custom_tool_use", NULL};

static int check_links(const json_t *events, const char *label)
{
	return sg_check_links(events, tool_uses, tool_uses, label);
}

/* A null anywhere except stop_details (tool inputs are the model's data and may hold
 * nulls of their own). */
static int has_null(const json_t *v)
{
	const json_t *x;
	void *it;
	size_t i;

	if (json_is_null(v))
		return 1;
	if (json_is_object(v)) {
		for (it = json_object_iter((json_t *)v); it;
		     it = json_object_iter_next((json_t *)v, it)) {
			if (strcmp(json_object_iter_key(it), "input") &&
			    has_null(json_object_iter_value(it)))
				return 1;
		}
	} else if (json_is_array(v)) {
		for (i = 0; (x = json_array_get(v, i)); i++)
			if (has_null(x))
				return 1;
	}
	return 0;
}

/* The keys each type may carry beyond id, type and processed_at (SDK 1.10.0 events.d.ts);
 * none is marked required, and a type not listed may carry only the envelope. */
static const struct sg_check_event_type allowed[] = {
    {"user.message", {"content"}},
    {"agent.message", {"content"}},
    {"agent.thinking", {NULL}},
    {"agent.tool_use", {"name", "input"}},
    {"agent.custom_tool_use", {"name", "input"}},
    {"agent.tool_result", {"tool_use_id", "content", "is_error"}},
    {"session.status_running", {NULL}},
    {"span.model_request_start", {NULL}},
    {"span.model_request_end", {"model_request_start_id", "is_error", "model_usage"}},
    {"session.error", {"error"}},
    {"session.status_idle", {"stop_reason", "stop_details"}},
};

/* AgentScope's envelope: a full-length sevt_ id and a UTC processed_at. */
static int envelope_ok(const json_t *ev)
{
	const char *id = json_string_value(json_object_get(ev, "id"));
	const char *at = json_string_value(json_object_get(ev, "processed_at"));

	return id && strlen(id) == SG_EVENT_ID_LEN && !strncmp(id, "sevt_", 5) && at &&
	       at[strlen(at) - 1] == 'Z';
}

static const struct sg_check_event_rules rules = {
    .types = allowed,
    .ntypes = sizeof(allowed) / sizeof(allowed[0]),
    .known_types_only = 0,
    .envelope_ok = envelope_ok,
};

/* Envelope and key discipline of every event (see sg_check_event_keys), and no null below
 * any key but stop_details and input. Returns 0 when all hold. */
static int check_keys(const json_t *events, const char *label)
{
	const json_t *ev;
	size_t i;
	void *it;
	int bad = sg_check_event_keys(events, &rules, label) != 0;

	for (i = 0; (ev = json_array_get(events, i)); i++) {
		const char *type = json_string_value(json_object_get(ev, "type"));

		for (it = json_object_iter((json_t *)ev); it;
		     it = json_object_iter_next((json_t *)ev, it)) {
			const char *key = json_object_iter_key(it);

			if (strcmp(key, "stop_details") && strcmp(key, "input") &&
			    has_null(json_object_iter_value(it))) {
				fprintf(stderr, "%s: [%zu] %s.%s holds a null\n", label, i,
				        type ? type : "?", key);
				bad = 1;
			}
		}
	}
	return bad ? -1 : 0;
}

/* ---- golden fixtures ---------------------------------------------------------------- */

START_TEST(test_golden)
{
	static char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	size_t i, n = sg_fixture_list(GROUP, names, MAX_CASES);
	int failures = 0;

	ck_assert_uint_ge(n, MIN_CASES);
	for (i = 0; i < n; i++) {
		json_t *got = run_case(names[i]);
		int ok = got && sg_fixture_expect(got, GROUP, names[i], "expected.json") &&
		         check_links(got, names[i]) == 0 && check_keys(got, names[i]) == 0 &&
		         sg_check_unique_ids(got) == 0;

		if (!ok) {
			fprintf(stderr, "golden case failed: %s\n", names[i]);
			failures++;
		}
		json_decref(got);
	}
	ck_assert_int_eq(failures, 0);
}
END_TEST

/* ---- properties --------------------------------------------------------------------- */

START_TEST(test_same_input_same_ids)
{
	json_t *a = run_case("multi_iteration"), *b = run_case("multi_iteration");
	char *da, *db;

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	da = json_dumps(a, JSON_COMPACT);
	db = json_dumps(b, JSON_COMPACT);
	ck_assert_str_eq(da, db);
	free(da);
	free(db);
	json_decref(a);
	json_decref(b);
}
END_TEST

/* Ids do not depend on hint_mode: the events both modes share have the same ids. */
START_TEST(test_ids_independent_of_hint_mode)
{
	json_t *drop = run_case("hints_drop"), *user = run_case("hints_user_message");
	const json_t *ev;
	size_t i;

	ck_assert_ptr_nonnull(drop);
	ck_assert_ptr_nonnull(user);
	for (i = 0; (ev = json_array_get(drop, i)); i++)
		ck_assert_int_ge(
		    sg_check_find_event(user, json_string_value(json_object_get(ev, "id"))), 0);
	json_decref(drop);
	json_decref(user);
}
END_TEST

/* A block as AgentScope writes it (new reference). */
static json_t *mk_block(const char *type, const char *id, const char *at)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "type", type, "id", id, "created_at", at,
	                 "finished_at", at);
}

/* A 500-message log: user turns and replies with text, thinking, tool calls and results,
 * provider tool ids reused in every reply ("call_0", "call_1"). New reference. */
static json_t *big_log(void)
{
	json_t *log = json_array();
	char id[32], at[32];
	int i, k;

	for (i = 0; i < 500; i++) {
		json_t *content = json_array(), *m;

		snprintf(id, sizeof(id), "m%03d", i);
		snprintf(at, sizeof(at), "2026-08-%02dT%02d:%02d:00", 1 + i / 100, i % 24, i % 60);
		if (i % 2 == 0) {
			json_t *b = mk_block("text", "u", at);

			json_object_set_new(b, "text", json_string("question"));
			json_array_append_new(content, b);
		} else {
			json_t *b = mk_block("thinking", "t", at);

			json_object_set_new(b, "thinking", json_string("…"));
			json_array_append_new(content, b);
			for (k = 0; k < 2; k++) {
				char cid[32];

				snprintf(cid, sizeof(cid), "call_%d", k);
				b = mk_block("tool_call", cid, at);
				json_object_set_new(b, "name", json_string("Read"));
				json_object_set_new(b, "input",
				                    json_string("{\"file_path\": \"x\"}"));
				json_object_set_new(b, "state", json_string("finished"));
				json_array_append_new(content, b);
				b = mk_block("tool_result", cid, at);
				json_object_set_new(b, "name", json_string("Read"));
				json_object_set_new(b, "output", json_string("ok"));
				json_object_set_new(b, "state", json_string("success"));
				json_array_append_new(content, b);
			}
			b = mk_block("text", "x", at);
			json_object_set_new(b, "text", json_string("answer"));
			json_array_append_new(content, b);
		}
		m = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s}", "id", id, "name",
		              i % 2 ? "Friday" : "user", "role", i % 2 ? "assistant" : "user",
		              "content", content, "created_at", at, "finished_at", at);
		json_array_append_new(log, m);
	}
	return log;
}

START_TEST(test_unique_ids_500_messages)
{
	struct sg_error err = {0};
	json_t *log = big_log(), *a, *b;

	a = sg_as_messages_to_events(log, &base_ctx, &err);
	b = sg_as_messages_to_events(log, &base_ctx, &err);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	/* 250 user.message + 250 × (running, start, thinking, 2×(use, result), message, end,
	 * idle) */
	ck_assert_uint_eq(json_array_size(a), 250 + 250 * 10);
	ck_assert_int_eq(sg_check_unique_ids(a), 0);
	ck_assert_int_eq(check_links(a, "big"), 0);
	ck_assert_int_eq(check_keys(a, "big"), 0);
	ck_assert(json_equal(a, b));
	json_decref(a);
	json_decref(b);
	json_decref(log);
}
END_TEST

/* Ids of a message's events do not move when the log grows at its end or is paged. */
START_TEST(test_ids_survive_paging)
{
	struct sg_error err = {0};
	json_t *log = big_log(), *page = json_array(), *all, *part;
	const json_t *ev;
	size_t i;

	for (i = 400; i < 450; i++)
		json_array_append(page, json_array_get(log, i));
	all = sg_as_messages_to_events(log, &base_ctx, &err);
	part = sg_as_messages_to_events(page, &base_ctx, &err);
	ck_assert_ptr_nonnull(all);
	ck_assert_ptr_nonnull(part);
	for (i = 0; (ev = json_array_get(part, i)); i++)
		ck_assert_int_ge(
		    sg_check_find_event(all, json_string_value(json_object_get(ev, "id"))), 0);
	json_decref(all);
	json_decref(part);
	json_decref(page);
	json_decref(log);
}
END_TEST

/* Naive local times are read in the configured zone and re-emitted as UTC 'Z'. */
START_TEST(test_naive_times_shanghai)
{
	struct sg_as_events_ctx ctx = base_ctx;
	struct sg_error err = {0};
	char tzerr[128];
	struct sg_tz *tz = sg_tz_load("Asia/Shanghai", tzerr, sizeof(tzerr));
	json_t *log, *ev;

	ck_assert_msg(tz != NULL, "%s", tzerr);
	ctx.tz = tz;
	log = json_pack("[{s:s, s:s, s:[{s:s, s:s}], s:s}, {s:s, s:s, s:[], s:s, s:s}]", "id", "u",
	                "role", "user", "content", "type", "text", "text", "hi", "created_at",
	                "2026-01-01T07:59:59.5", "id", "r", "role", "assistant", "content",
	                "created_at", "2026-01-01 08:00:00", "finished_at",
	                "2026-01-01T08:00:01+08:00");
	ev = sg_as_messages_to_events(log, &ctx, &err);
	ck_assert_ptr_nonnull(ev);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(ev, 0), "processed_at")),
	                 "2025-12-31T23:59:59.500000Z");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(ev, 1), "processed_at")),
	                 "2026-01-01T00:00:00Z");
	/* an explicit offset is honoured as such */
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(ev, 3), "processed_at")),
	                 "2026-01-01T00:00:01Z");
	json_decref(ev);
	json_decref(log);
	sg_tz_free(tz);
}
END_TEST

/* The same log with the session not running: the unfinished tail reply ends with idle. */
START_TEST(test_unfinished_tail_not_running)
{
	json_t *messages = sg_fixture_load(GROUP, "running_tail", "messages.json"), *ev, *last;
	struct sg_error err = {0};

	ck_assert_ptr_nonnull(messages);
	ev = sg_as_messages_to_events(messages, &base_ctx, &err);
	ck_assert_ptr_nonnull(ev);
	last = json_array_get(ev, json_array_size(ev) - 1);
	ck_assert_str_eq(json_string_value(json_object_get(last, "type")), "session.status_idle");
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(last, "stop_reason"), "type")),
	    "end_turn");
	/* ended at the last block time, the tool call's created_at */
	ck_assert_str_eq(json_string_value(json_object_get(last, "processed_at")),
	                 "2026-08-09T20:01:03Z");
	json_decref(ev);
	json_decref(messages);
}
END_TEST

/* An orphan tool_result (its call is not in the log given) still gets a tool_use_id. */
START_TEST(test_orphan_result)
{
	struct sg_error err = {0};
	json_t *log, *ev;

	log = json_pack("[{s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:s, s:s}]}]", "id", "r", "role",
	                "assistant", "created_at", "2026-08-01T00:00:00", "content", "type",
	                "tool_result", "id", "c9", "name", "Read", "output", "x", "state", "error");
	ev = sg_as_messages_to_events(log, &base_ctx, &err);
	ck_assert_ptr_nonnull(ev);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(ev, 2), "type")),
	                 "agent.tool_result");
	ck_assert_uint_eq(
	    strlen(json_string_value(json_object_get(json_array_get(ev, 2), "tool_use_id"))),
	    SG_EVENT_ID_LEN);
	ck_assert(json_is_true(json_object_get(json_array_get(ev, 2), "is_error")));
	json_decref(ev);
	json_decref(log);
}
END_TEST

/* A running tool's partial result is skipped. */
START_TEST(test_running_result_skipped)
{
	struct sg_error err = {0};
	json_t *log, *ev;
	const json_t *e;
	size_t i;

	log = json_pack("[{s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:s, s:s}]}]", "id", "r", "role",
	                "assistant", "created_at", "2026-08-01T00:00:00", "finished_at",
	                "2026-08-01T00:00:01", "content", "type", "tool_result", "id", "c9", "name",
	                "Read", "output", "x", "state", "running");
	ev = sg_as_messages_to_events(log, &base_ctx, &err);
	ck_assert_ptr_nonnull(ev);
	for (i = 0; (e = json_array_get(ev, i)); i++)
		ck_assert_str_ne(json_string_value(json_object_get(e, "type")),
		                 "agent.tool_result");
	json_decref(ev);
	json_decref(log);
}
END_TEST

/* ---- allocation failures ------------------------------------------------------------ */

/* Fails each jansson allocation of a translation in turn: every run must either fail with
 * a 500 or succeed with the full answer, and must free everything it allocated. */
START_TEST(test_allocation_failures)
{
	static const char *const cases[] = {"multi_iteration", "hints_user_message",
	                                    "data_blocks",     "parked_permission",
	                                    "failed_reply",    "malformed_tool_input"};
	size_t c;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		json_t *messages = sg_fixture_load(GROUP, cases[c], "messages.json");
		json_t *expected = sg_fixture_load(GROUP, cases[c], "expected.json");
		json_t *cj = sg_fixture_load(GROUP, cases[c], "ctx.json");
		struct sg_as_events_ctx ctx;
		struct sg_tz *tz = NULL;
		long n;

		ck_assert_ptr_nonnull(messages);
		ck_assert_ptr_nonnull(expected);
		ck_assert_int_eq(ctx_from_json(cj, &ctx, &tz), 0);
		for (n = 0;; n++) {
			struct sg_error err = {0};
			json_t *got;
			long live;

			sg_fixture_alloc_begin(n);
			got = sg_as_messages_to_events(messages, &ctx, &err);
			if (got) {
				ck_assert_uint_eq(json_array_size(got), json_array_size(expected));
			} else {
				ck_assert_msg(sg_fixture_alloc_fired(),
				              "%s: failed without a failed allocation", cases[c]);
				ck_assert_int_eq(err.status, 500);
			}
			json_decref(got);
			live = sg_fixture_alloc_end();
			ck_assert_msg(live == 0, "%s: %ld allocations leaked at %ld", cases[c],
			              live, n);
			if (!sg_fixture_alloc_fired())
				break;
		}
		sg_tz_free(tz);
		json_decref(messages);
		json_decref(expected);
		json_decref(cj);
	}
}
END_TEST

/* ---- 502 paths ---------------------------------------------------------------------- */

static void expect_502(const char *json_text)
{
	struct sg_error err = {0};
	json_t *log = json_loads(json_text, JSON_DECODE_ANY, NULL), *ev;

	ck_assert_msg(log != NULL, "test input does not parse: %s", json_text);
	ev = sg_as_messages_to_events(log, &base_ctx, &err);
	ck_assert_msg(ev == NULL, "accepted: %s", json_text);
	ck_assert_int_eq(err.status, 502);
	ck_assert_str_eq(err.type, "api_error");
	ck_assert_msg(strstr(err.message, "backend 'as1'") != NULL, "%s", err.message);
	json_decref(log);
}

START_TEST(test_wrong_shapes)
{
	expect_502("{\"messages\": []}");
	expect_502("null");
	expect_502("[42]");
	expect_502(
	    "[{\"id\": \"m\", \"role\": \"user\", \"created_at\": \"2026-08-01T00:00:00\"}]");
	expect_502("[{\"id\": \"m\", \"role\": \"user\", \"content\": {}, "
	           "\"created_at\": \"2026-08-01T00:00:00\"}]");
	expect_502("[{\"id\": \"m\", \"role\": \"user\", \"content\": []}]");
	expect_502("[{\"id\": \"m\", \"role\": \"user\", \"content\": [], "
	           "\"created_at\": \"yesterday\"}]");
	expect_502("[{\"id\": \"m\", \"role\": \"robot\", \"content\": [], "
	           "\"created_at\": \"2026-08-01T00:00:00\"}]");
	expect_502("[{\"id\": \"m\", \"role\": \"user\", \"content\": [7], "
	           "\"created_at\": \"2026-08-01T00:00:00\"}]");
	expect_502("[{\"id\": \"m\", \"role\": \"assistant\", \"content\": [{\"type\": "
	           "\"tool_call\", \"name\": \"x\", \"input\": \"{}\"}], "
	           "\"created_at\": \"2026-08-01T00:00:00\"}]");
	expect_502("[{\"id\": \"m\", \"role\": \"assistant\", \"content\": [{\"type\": \"text\", "
	           "\"text\": 1}], \"created_at\": \"2026-08-01T00:00:00\"}]");
	expect_502("[{\"id\": \"m\", \"role\": \"assistant\", \"content\": [], "
	           "\"usage\": {\"input_tokens\": \"many\"}, "
	           "\"created_at\": \"2026-08-01T00:00:00\"}]");
	expect_502("[{\"id\": \"m\", \"role\": \"user\", \"content\": [{\"type\": \"data\", "
	           "\"source\": {\"type\": \"file\", \"file_id\": \"f\"}}], "
	           "\"created_at\": \"2026-08-01T00:00:00\"}]");
	/* the bad message is named */
	{
		struct sg_error err = {0};
		json_t *log = json_loads("[{\"role\": \"system\", \"content\": []}, 1]", 0, NULL);

		ck_assert_ptr_null(sg_as_messages_to_events(log, &base_ctx, &err));
		ck_assert_msg(strstr(err.message, "messages[1]") != NULL, "%s", err.message);
		json_decref(log);
	}
}
END_TEST

START_TEST(test_caps)
{
	struct sg_as_events_ctx ctx = base_ctx;
	struct sg_error err = {0};
	json_t *log = json_array(), *one, *ev;
	size_t i;

	/* too many messages: refused before any is read */
	one = json_object();
	for (i = 0; i <= SG_AS_EVENTS_MAX_MESSAGES; i++)
		json_array_append(log, one);
	ck_assert_ptr_null(sg_as_messages_to_events(log, &ctx, &err));
	ck_assert_int_eq(err.status, 502);
	json_decref(one);
	json_decref(log);

	/* too many events: an empty reply is 4 events (running, start, end, idle) */
	log = json_loads("[{\"id\": \"r\", \"role\": \"assistant\", \"content\": [], "
	                 "\"created_at\": \"2026-08-01T00:00:00\"}]",
	                 0, NULL);
	ctx.max_events = 3;
	err.status = 0;
	ck_assert_ptr_null(sg_as_messages_to_events(log, &ctx, &err));
	ck_assert_int_eq(err.status, 502);
	ck_assert_msg(strstr(err.message, "more than 3 events") != NULL, "%s", err.message);
	ctx.max_events = 4;
	ev = sg_as_messages_to_events(log, &ctx, &err);
	ck_assert_ptr_nonnull(ev);
	ck_assert_uint_eq(json_array_size(ev), 4);
	json_decref(ev);
	json_decref(log);
}
END_TEST

/* The notice a build without the message log gets when its context was compacted: the id it
 * has always had, the record's created_at, nothing without a summary. */
START_TEST(test_compacted_notice)
{
	struct sg_as_events_ctx ctx = {.backend = "as1", .session_key = "ag1/s1"};
	struct sg_error err = {0};
	json_t *rec, *ev = NULL;

	rec = json_loads("{\"created_at\": \"2026-08-01T10:00:00.5\", "
	                 "\"state\": {\"summary\": \"earlier turns\"}}",
	                 0, NULL);
	ck_assert_int_eq(sg_as_compacted_event(rec, &ctx, &ev, &err), 0);
	ck_assert_ptr_nonnull(ev);
	ck_assert_str_eq(json_string_value(json_object_get(ev, "id")),
	                 "sevt_3bcd963b38f3ff365371c7e3");
	ck_assert_str_eq(json_string_value(json_object_get(ev, "type")),
	                 "agent.thread_context_compacted");
	ck_assert_str_eq(json_string_value(json_object_get(ev, "processed_at")),
	                 "2026-08-01T10:00:00.500000Z");
	ck_assert_uint_eq(json_object_size(ev), 3);
	json_decref(ev);
	json_object_set_new(json_object_get(rec, "state"), "summary", json_array());
	ck_assert_int_eq(sg_as_compacted_event(rec, &ctx, &ev, &err), 0);
	ck_assert_ptr_null(ev);
	json_object_set_new(json_object_get(rec, "state"), "summary", json_string("x"));
	json_object_set_new(rec, "created_at", json_string("<string>"));
	ck_assert_int_eq(sg_as_compacted_event(rec, &ctx, &ev, &err), 0);
	ck_assert_ptr_null(ev);
	json_decref(rec);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("agentscope_events");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_golden);
	tcase_add_test(tc, test_same_input_same_ids);
	tcase_add_test(tc, test_ids_independent_of_hint_mode);
	tcase_add_test(tc, test_unique_ids_500_messages);
	tcase_add_test(tc, test_ids_survive_paging);
	tcase_add_test(tc, test_naive_times_shanghai);
	tcase_add_test(tc, test_unfinished_tail_not_running);
	tcase_add_test(tc, test_orphan_result);
	tcase_add_test(tc, test_running_result_skipped);
	tcase_add_test(tc, test_allocation_failures);
	tcase_add_test(tc, test_wrong_shapes);
	tcase_add_test(tc, test_caps);
	tcase_add_test(tc, test_compacted_notice);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sg_fixture_run(suite());
}
