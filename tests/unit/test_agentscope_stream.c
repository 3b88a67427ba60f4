/* test_agentscope_stream.c - AgentScope's live stream → north events.
 *
 * Fixtures under tests/fixtures/agentscope/stream/<case>/: frames.json (the AgentEvent frames
 * GET /sessions/{id}/stream sends for the case), messages.json (the log AgentScope persists for
 * it: made by applying those frames with AgentScope's own Msg.append_event, as its chat service
 * does, including the continuation of a parked reply loaded back from storage), for a resumed
 * case messages_parked.json (the log as persisted while parked), and ctx.json.
 *
 * The property under test is the one the stream exists for: every event it outputs is the
 * event the history (sg_as_messages_to_events over the persisted log, same ctx) shows under the
 * same id, with the same payload (processed_at aside), in the history's order; a park's end is
 * the parked history's; only a resumption's status_running and span start have ids of their
 * own, minted by the documented rule. */
#include <arpa/inet.h>
#include <check.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentscope_events.h"
#include "agentscope_stream.h"
#include "call.h"
#include "config.h"
#include "fixture.h"
#include "mapping.h"
#include "upstream.h"
#include "idcodec.h"
#include "jsonx.h"
#include "timeutil.h"
#include "tz.h"

#define GROUP "agentscope/stream"
#define MAX_CASES 64
#define MIN_CASES 11

struct kase {
	json_t *frames, *log, *parked, *cj;
	struct sg_as_events_ctx ctx;
	struct sg_tz *tz;
};

static int load_case(const char *name, struct kase *k)
{
	char err[128];

	memset(k, 0, sizeof(*k));
	k->frames = sg_fixture_load(GROUP, name, "frames.json");
	k->log = sg_fixture_load(GROUP, name, "messages.json");
	k->cj = sg_fixture_load(GROUP, name, "ctx.json");
	if (sg_fixture_exists(GROUP, name, "messages_parked.json"))
		k->parked = sg_fixture_load(GROUP, name, "messages_parked.json");
	if (!k->frames || !k->log || !k->cj)
		return -1;
	k->ctx.backend = json_string_value(json_object_get(k->cj, "backend"));
	k->ctx.session_key = json_string_value(json_object_get(k->cj, "session_key"));
	k->ctx.agent_name = json_string_value(json_object_get(k->cj, "agent_name"));
	k->ctx.hint_mode = (int)json_integer_value(json_object_get(k->cj, "hint_mode"));
	k->tz = sg_tz_load(json_string_value(json_object_get(k->cj, "tz")), err, sizeof(err));
	if (!k->tz) {
		fprintf(stderr, "%s: %s\n", name, err);
		return -1;
	}
	k->ctx.tz = k->tz;
	return 0;
}

static void free_case(struct kase *k)
{
	json_decref(k->frames);
	json_decref(k->log);
	json_decref(k->parked);
	json_decref(k->cj);
	sg_tz_free(k->tz);
}

/* Streams frames[from..] with since, primed with `tail` (borrowed, may be NULL); returns the
 * events (new). at (may be NULL) receives, per event, the index of the frame that output it. */
static json_t *stream_primed(const struct kase *k, const json_t *tail, size_t from, int64_t since,
                             json_t *at)
{
	struct sg_as_stream *s = sg_as_stream_new(&k->ctx, since);
	json_t *out = json_array();
	struct sg_error err = {0};
	size_t i;

	ck_assert_ptr_nonnull(s);
	if (tail)
		ck_assert_int_eq(sg_as_stream_prime(s, tail, &err), 0);
	for (i = from; i < json_array_size(k->frames); i++) {
		size_t before = json_array_size(out);

		if (sg_as_stream_feed(s, json_array_get(k->frames, i), out, &err) < 0) {
			fprintf(stderr, "frame %zu: %d %s\n", i, err.status, err.message);
			ck_abort_msg("a fixture frame was refused");
		}
		while (at && json_array_size(at) < json_array_size(out))
			json_array_append_new(at, json_integer((json_int_t)i));
		(void)before;
	}
	sg_as_stream_free(s);
	return out;
}

static json_t *stream(const struct kase *k, size_t from, int64_t since, json_t *at)
{
	return stream_primed(k, NULL, from, since, at);
}

/* The history of the assistant messages of log (new). */
static json_t *history(const struct kase *k, const json_t *log)
{
	json_t *replies = json_array(), *events;
	struct sg_error err = {0};
	const json_t *m;
	size_t i;

	json_array_foreach(log, i, m) {
		if (!sg_streq(json_string_value(json_object_get(m, "role")), "user"))
			json_array_append(replies, (json_t *)m);
	}
	events = sg_as_messages_to_events(replies, &k->ctx, &err);
	if (!events)
		fprintf(stderr, "history: %d %s\n", err.status, err.message);
	ck_assert_ptr_nonnull(events);
	json_decref(replies);
	return events;
}

static int find(const json_t *events, const char *id)
{
	const json_t *ev;
	size_t i;

	json_array_foreach(events, i, ev) {
		if (!strcmp(json_string_value(json_object_get(ev, "id")), id))
			return (int)i;
	}
	return -1;
}

/* ev and want equal but for processed_at. */
static int same_payload(const json_t *ev, const json_t *want)
{
	json_t *a = json_deep_copy(ev), *b = json_deep_copy(want);
	int eq;

	json_object_del(a, "processed_at");
	json_object_del(b, "processed_at");
	eq = json_equal(a, b);
	if (!eq) {
		char *x = json_dumps(a, JSON_SORT_KEYS), *y = json_dumps(b, JSON_SORT_KEYS);

		fprintf(stderr, "  stream:  %s\n  history: %s\n", x, y);
		free(x);
		free(y);
	}
	json_decref(a);
	json_decref(b);
	return eq;
}

/* The documented id of a resumed reply's status_running / span start. */
static void resume_id(const struct kase *k, const char *reply, const char *call, const char *kind,
                      char out[SG_EVENT_ID_LEN + 1])
{
	struct sg_id_seed seed = {0};

	sg_id_seed_str(&seed, "sevt1");
	sg_id_seed_str(&seed, k->ctx.backend);
	sg_id_seed_str(&seed, k->ctx.session_key);
	sg_id_seed_str(&seed, "id");
	sg_id_seed_str(&seed, reply);
	sg_id_seed_str(&seed, "resume");
	sg_id_seed_str(&seed, call);
	sg_id_seed_str(&seed, kind);
	sg_event_id(seed.p, seed.len, out);
	sg_id_seed_free(&seed);
}

/* The first frame that hands a parked reply its confirmation or result, or -1. */
static int resume_frame(const struct kase *k, const char **reply, const char **call)
{
	const json_t *f;
	size_t i;

	json_array_foreach(k->frames, i, f) {
		const char *t = json_string_value(json_object_get(f, "type"));

		if (sg_streq(t, "USER_CONFIRM_RESULT")) {
			*call = json_string_value(json_object_get(
			    json_object_get(
			        json_array_get(json_object_get(f, "confirm_results"), 0),
			        "tool_call"),
			    "id"));
		} else if (sg_streq(t, "EXTERNAL_EXECUTION_RESULT")) {
			*call = json_string_value(json_object_get(
			    json_array_get(json_object_get(f, "execution_results"), 0), "id"));
		} else {
			continue;
		}
		*reply = json_string_value(json_object_get(f, "reply_id"));
		return (int)i;
	}
	return -1;
}

/* Checks one case; returns the number of problems (named on stderr). */
static int check_case(const char *name)
{
	struct kase k;
	json_t *got, *hist, *parked = NULL;
	const char *rreply = NULL, *rcall = NULL;
	char rid_run[SG_EVENT_ID_LEN + 1] = "", rid_span[SG_EVENT_ID_LEN + 1] = "";
	int problems = 0, last = -1, matched = 0, resumed = 0, parked_seen = 0;
	const json_t *ev;
	size_t i;

	if (load_case(name, &k) < 0) {
		free_case(&k);
		return 1;
	}
	got = stream(&k, 0, 0, NULL);
	hist = history(&k, k.log);
	if (k.parked)
		parked = history(&k, k.parked);
	if (resume_frame(&k, &rreply, &rcall) >= 0) {
		resume_id(&k, rreply, rcall, "status_running", rid_run);
		resume_id(&k, rreply, rcall, "span_start", rid_span);
	}
	json_array_foreach(got, i, ev) {
		const char *id = json_string_value(json_object_get(ev, "id"));
		const char *at = json_string_value(json_object_get(ev, "processed_at"));
		int h = find(hist, id), p = parked ? find(parked, id) : -1;

		if (!at || at[strlen(at) - 1] != 'Z') {
			fprintf(stderr, "%s: [%zu] %s has no UTC processed_at\n", name, i, id);
			problems++;
		}
		if (h >= 0) {
			/* a call submitted for external execution is a custom_tool_use in the
			 * history of the park and a tool_use once it finished: the stream announced
			 * it at the park */
			int flipped = p >= 0 &&
			              sg_streq(json_string_value(json_object_get(ev, "type")),
			                       "agent.custom_tool_use") &&
			              same_payload(ev, json_array_get(parked, (size_t)p));

			if (!flipped && !same_payload(ev, json_array_get(hist, (size_t)h))) {
				fprintf(stderr, "%s: [%zu] %s differs from the history\n", name, i,
				        id);
				problems++;
			}
			if (h <= last) {
				fprintf(stderr, "%s: [%zu] %s is out of the history's order\n",
				        name, i, id);
				problems++;
			}
			last = h;
			matched++;
		} else if (p >= 0) {
			if (!same_payload(ev, json_array_get(parked, (size_t)p))) {
				fprintf(stderr, "%s: [%zu] %s differs from the parked history\n",
				        name, i, id);
				problems++;
			}
			parked_seen++;
		} else if (!strcmp(id, rid_run) || !strcmp(id, rid_span)) {
			resumed++;
		} else {
			fprintf(stderr, "%s: [%zu] %s (%s) is in no history\n", name, i, id,
			        json_string_value(json_object_get(ev, "type")));
			problems++;
		}
	}
	if ((size_t)matched != json_array_size(hist)) {
		fprintf(stderr, "%s: %d of the history's %zu events streamed\n", name, matched,
		        json_array_size(hist));
		problems++;
	}
	if (parked) {
		/* the park's own end: span_end and status_idle, the parked history's last two */
		if (parked_seen != 2 ||
		    find(got, json_string_value(json_object_get(
		                  json_array_get(parked, json_array_size(parked) - 1), "id"))) <
		        0) {
			fprintf(stderr,
			        "%s: the park's end was not streamed as the parked history\n",
			        name);
			problems++;
		}
		if (resumed != 2) {
			fprintf(stderr, "%s: %d resume events, not 2\n", name, resumed);
			problems++;
		}
	}
	json_decref(got);
	json_decref(hist);
	json_decref(parked);
	free_case(&k);
	return problems;
}

START_TEST(test_golden)
{
	static char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	size_t i, n = sg_fixture_list(GROUP, names, MAX_CASES);
	int failures = 0;

	ck_assert_uint_ge(n, MIN_CASES);
	for (i = 0; i < n; i++) {
		if (check_case(names[i]) != 0) {
			fprintf(stderr, "stream case failed: %s\n", names[i]);
			failures++;
		}
	}
	ck_assert_int_eq(failures, 0);
}
END_TEST

/* The order of types is the history's, spelled out for the tool run. */
START_TEST(test_tool_run_order)
{
	static const char *const want[] = {
	    "session.status_running", "span.model_request_start", "user.message",
	    "agent.message",          "agent.tool_use",           "agent.tool_result",
	    "agent.message",          "span.model_request_end",   "session.status_idle"};
	struct kase k;
	json_t *got;
	size_t i;

	ck_assert_int_eq(load_case("tool_run", &k), 0);
	got = stream(&k, 0, 0, NULL);
	ck_assert_uint_eq(json_array_size(got), sizeof(want) / sizeof(want[0]));
	for (i = 0; i < json_array_size(got); i++)
		ck_assert_str_eq(json_string_value(json_object_get(json_array_get(got, i), "type")),
		                 want[i]);
	json_decref(got);
	free_case(&k);
}
END_TEST

static int64_t frame_time(const struct kase *k, size_t i)
{
	int64_t us = 0;

	ck_assert_int_eq(sg_time_parse_local(json_string_value(json_object_get(
	                                         json_array_get(k->frames, i), "created_at")),
	                                     k->tz, &us),
	                 0);
	return us;
}

/* since: exactly the events completed by frames at or after it, for every frame of every
 * case; state is built from the frames before it all the same. */
START_TEST(test_since)
{
	static char names[MAX_CASES][SG_FIXTURE_NAME_MAX];
	size_t c, n = sg_fixture_list(GROUP, names, MAX_CASES);

	for (c = 0; c < n; c++) {
		struct kase k;
		json_t *at = json_array(), *all;
		size_t f, i;

		ck_assert_int_eq(load_case(names[c], &k), 0);
		all = stream(&k, 0, 0, at);
		for (f = 0; f < json_array_size(k.frames); f++) {
			json_t *got = stream(&k, 0, frame_time(&k, f), NULL);
			size_t j = 0;

			for (i = 0; i < json_array_size(all); i++) {
				if ((size_t)json_integer_value(json_array_get(at, i)) < f)
					continue;
				ck_assert_msg(
				    json_equal(json_array_get(got, j), json_array_get(all, i)),
				    "%s: since frame %zu: event %zu", names[c], f, i);
				j++;
			}
			ck_assert_uint_eq(j, json_array_size(got));
			json_decref(got);
		}
		/* after the last frame: nothing */
		{
			json_t *none =
			    stream(&k, 0, frame_time(&k, json_array_size(k.frames) - 1) + 1, NULL);

			ck_assert_uint_eq(json_array_size(none), 0);
			json_decref(none);
		}
		json_decref(all);
		json_decref(at);
		free_case(&k);
	}
}
END_TEST

/* A block that started before since and ended after it is output; the reply's start is not. */
START_TEST(test_since_mid_block)
{
	struct kase k;
	json_t *got;
	size_t i, delta = 0;

	ck_assert_int_eq(load_case("plain_text", &k), 0);
	for (i = 0; i < json_array_size(k.frames); i++)
		if (sg_streq(
		        json_string_value(json_object_get(json_array_get(k.frames, i), "type")),
		        "TEXT_BLOCK_DELTA")) {
			delta = i;
			break;
		}
	ck_assert_uint_gt(delta, 0);
	got = stream(&k, 0, frame_time(&k, delta), NULL);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(got, 0), "type")),
	                 "agent.message");
	ck_assert_str_eq(
	    json_string_value(json_object_get(
	        json_array_get(json_object_get(json_array_get(got, 0), "content"), 0), "text")),
	    "Hi there!");
	for (i = 0; i < json_array_size(got); i++)
		ck_assert_str_ne(json_string_value(json_object_get(json_array_get(got, i), "type")),
		                 "session.status_running");
	json_decref(got);
	free_case(&k);
}
END_TEST

/* A stream that connects while the session is parked (AgentScope trims its replay once the run
 * persisted), primed with the parked tail, sees the resumed run as one that saw the park does. */
START_TEST(test_join_parked)
{
	static const char *const cases[] = {"resume_confirm", "resume_external"};
	size_t c;

	for (c = 0; c < 2; c++) {
		struct kase k;
		const char *reply, *call;
		json_t *at = json_array(), *all, *late;
		int from;
		size_t i, j = 0;

		ck_assert_int_eq(load_case(cases[c], &k), 0);
		from = resume_frame(&k, &reply, &call);
		ck_assert_int_gt(from, 0);
		all = stream(&k, 0, 0, at);
		late = stream_primed(&k, json_array_get(k.parked, json_array_size(k.parked) - 1),
		                     (size_t)from, 0, NULL);
		for (i = 0; i < json_array_size(all); i++) {
			if (json_integer_value(json_array_get(at, i)) < from)
				continue;
			if (!json_equal(json_array_get(late, j), json_array_get(all, i))) {
				char *x = json_dumps(json_array_get(late, j), JSON_SORT_KEYS);
				char *y = json_dumps(json_array_get(all, i), JSON_SORT_KEYS);

				fprintf(stderr, "late: %s\nall:  %s\n", x, y);
				free(x);
				free(y);
				ck_abort_msg("%s: event %zu", cases[c], i);
			}
			j++;
		}
		ck_assert_uint_eq(j, json_array_size(late));
		json_decref(all);
		json_decref(late);
		json_decref(at);
		free_case(&k);
	}
}
END_TEST

static const struct sg_as_events_ctx base_ctx = {
    .backend = "as1",
    .session_key = "agent1/sess1",
    .agent_name = "Friday",
};

/* Feeds text (JSON) to s; returns the feed's result. */
static int feed(struct sg_as_stream *s, const char *text, json_t *out, struct sg_error *err)
{
	json_t *f = json_loads(text, 0, NULL);
	int rc;

	ck_assert_ptr_nonnull(f);
	rc = sg_as_stream_feed(s, f, out, err);
	json_decref(f);
	return rc;
}

#define START_R1                                                                                   \
	"{\"type\":\"REPLY_START\",\"created_at\":\"2026-08-02T09:00:00\",\"reply_id\":\"r1\","    \
	"\"session_id\":\"s\",\"name\":\"Friday\"}"

START_TEST(test_malformed)
{
	static const struct {
		const char *frame, *needle;
	} bad[] = {
	    {"{\"type\":\"REPLY_START\",\"created_at\":\"2026-08-02T09:00:00\",\"reply_id\":5}",
	     "reply_id"},
	    {"{\"type\":\"REPLY_START\",\"created_at\":\"yesterday\",\"reply_id\":\"r1\"}",
	     "created_at"},
	    {"{\"type\":\"REPLY_START\",\"reply_id\":\"r1\"}", "created_at"},
	    {"{\"type\":\"TEXT_BLOCK_DELTA\",\"created_at\":\"2026-08-02T09:00:01\","
	     "\"reply_id\":\"r1\",\"block_id\":\"t1\",\"delta\":7}",
	     "delta"},
	    {"{\"type\":\"TEXT_BLOCK_START\",\"created_at\":\"2026-08-02T09:00:01\","
	     "\"reply_id\":\"r1\",\"block_id\":\"\"}",
	     "block_id"},
	    {"{\"type\":\"MODEL_CALL_END\",\"created_at\":\"2026-08-02T09:00:01\","
	     "\"reply_id\":\"r1\",\"input_tokens\":\"many\",\"output_tokens\":1}",
	     "input_tokens"},
	    {"{\"type\":\"TOOL_CALL_START\",\"created_at\":\"2026-08-02T09:00:01\","
	     "\"reply_id\":\"r1\",\"tool_call_id\":\"c1\"}",
	     "tool_call_name"},
	    {"{\"type\":\"REQUIRE_USER_CONFIRM\",\"created_at\":\"2026-08-02T09:00:01\","
	     "\"reply_id\":\"r1\",\"tool_calls\":{}}",
	     "tool_calls"},
	    {"{\"type\":\"REQUIRE_EXTERNAL_EXECUTION\",\"created_at\":\"2026-08-02T09:00:01\","
	     "\"reply_id\":\"r1\",\"tool_calls\":[{\"id\":\"c1\"}]}",
	     "tool_calls[0]"},
	    {"{\"type\":\"TOOL_RESULT_DATA_DELTA\",\"created_at\":\"2026-08-02T09:00:01\","
	     "\"reply_id\":\"r1\",\"tool_call_id\":\"c1\",\"media_type\":\"image/png\"}",
	     "data and url"},
	    {"{\"type\":\"HINT_BLOCK\",\"created_at\":\"2026-08-02T09:00:01\","
	     "\"reply_id\":\"r1\",\"block_id\":\"h1\",\"hint\":3}",
	     "hint"},
	    {"{\"type\":\"REPLY_END\",\"created_at\":\"2026-08-02T09:00:01\","
	     "\"reply_id\":\"r1\",\"error\":\"boom\"}",
	     "error"},
	    {"{\"type\":\"USER_CONFIRM_RESULT\",\"created_at\":\"2026-08-02T09:00:01\","
	     "\"reply_id\":\"r1\",\"confirm_results\":[{\"tool_call\":{\"id\":\"c1\"}}]}",
	     "confirm_results[0]"},
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sg_as_stream *s = sg_as_stream_new(&base_ctx, 0);
		struct sg_error err = {0};
		json_t *out = json_array();

		ck_assert_int_eq(feed(s, START_R1, out, &err), 0);
		ck_assert_int_eq(feed(s, bad[i].frame, out, &err), -1);
		sg_check_502(&err, "as1", bad[i].needle);
		json_decref(out);
		sg_as_stream_free(s);
	}
	/* not an object at all */
	{
		struct sg_as_stream *s = sg_as_stream_new(&base_ctx, 0);
		struct sg_error err = {0};
		json_t *out = json_array(), *arr = json_array();

		ck_assert_int_eq(sg_as_stream_feed(s, arr, out, &err), -1);
		sg_check_502(&err, "as1", "not an object");
		json_decref(arr);
		json_decref(out);
		sg_as_stream_free(s);
	}
}
END_TEST

START_TEST(test_unknown_ignored)
{
	struct sg_as_stream *s = sg_as_stream_new(&base_ctx, 0);
	struct sg_error err = {0};
	json_t *out = json_array();

	ck_assert_int_eq(feed(s, "{\"type\":\"SOMETHING_NEW\",\"reply_id\":7}", out, &err), 0);
	ck_assert_int_eq(feed(s, "{\"no_type\":1}", out, &err), 0);
	ck_assert_int_eq(feed(s, "{\"type\":\"CUSTOM\",\"name\":\"x\",\"value\":{}}", out, &err),
	                 0);
	ck_assert_int_eq(
	    feed(s,
	         "{\"type\":\"EXCEED_MAX_ITERS\",\"created_at\":\"2026-08-02T09:00:00\","
	         "\"reply_id\":\"r1\",\"name\":\"Friday\"}",
	         out, &err),
	    0);
	ck_assert_uint_eq(json_array_size(out), 0);
	/* the server's notice for a deleted session names no reply */
	ck_assert_int_eq(feed(s,
	                      "{\"type\":\"REPLY_END\",\"created_at\":\"2026-08-02T09:00:00\","
	                      "\"reply_id\":\"\",\"finished_reason\":\"error\"}",
	                      out, &err),
	                 0);
	ck_assert_uint_eq(json_array_size(out), 0);
	json_decref(out);
	sg_as_stream_free(s);
}
END_TEST

/* One complete text reply, as frames. */
static void one_reply(struct sg_as_stream *s, int i, json_t *out)
{
	char f[512], rid[32], at[40];
	struct sg_error err = {0};
	/* each frame: {"type":…, "created_at": at, "reply_id": rid, <rest>} */
	static const char *const tmpl[][2] = {
	    {"REPLY_START", "\"name\":\"F\""},
	    {"MODEL_CALL_START", "\"model_name\":\"m\""},
	    {"TEXT_BLOCK_START", "\"block_id\":\"t\""},
	    {"TEXT_BLOCK_DELTA", "\"block_id\":\"t\",\"delta\":\"hello\""},
	    {"TEXT_BLOCK_END", "\"block_id\":\"t\""},
	    {"TOOL_CALL_START", "\"tool_call_id\":\"c\",\"tool_call_name\":\"Bash\""},
	    {"TOOL_CALL_END", "\"tool_call_id\":\"c\""},
	    {"MODEL_CALL_END", "\"input_tokens\":3,\"output_tokens\":1"},
	    {"REPLY_END", "\"finished_reason\":\"completed\""},
	};
	size_t t;

	snprintf(rid, sizeof(rid), "r%06d", i);
	snprintf(at, sizeof(at), "2026-08-%02dT%02d:%02d:%02d", 1 + i / 86400 % 28, i / 3600 % 24,
	         i / 60 % 60, i % 60);
	for (t = 0; t < sizeof(tmpl) / sizeof(tmpl[0]); t++) {
		snprintf(f, sizeof(f),
		         "{\"type\":\"%s\",\"created_at\":\"%s\",\"reply_id\":\"%s\",%s}",
		         tmpl[t][0], at, rid, tmpl[t][1]);
		ck_assert_int_eq(feed(s, f, out, &err), 0);
	}
}

/* Thousands of replies: every one ends in its idle event and the held state does not grow. */
START_TEST(test_no_growth)
{
	struct sg_as_stream *s = sg_as_stream_new(&base_ctx, 0);
	json_t *out = json_array();
	size_t before, after;
	int i;

	for (i = 0; i < 200; i++) {
		one_reply(s, i, out);
		json_array_clear(out);
	}
	before = mallinfo2().uordblks;
	for (; i < 5200; i++) {
		one_reply(s, i, out);
		ck_assert_uint_eq(json_array_size(out), 6);
		ck_assert_str_eq(json_string_value(json_object_get(json_array_get(out, 5), "type")),
		                 "session.status_idle");
		json_array_clear(out);
	}
	after = mallinfo2().uordblks;
	ck_assert_msg(after < before + 64 * 1024, "grew from %zu to %zu bytes", before, after);
	json_decref(out);
	sg_as_stream_free(s);
}
END_TEST

/* The held text of a reply is bounded, and so are its open blocks. */
START_TEST(test_bounds)
{
	struct sg_as_stream *s = sg_as_stream_new(&base_ctx, 0);
	struct sg_error err = {0};
	json_t *out = json_array(), *f;
	char *big = malloc(SG_AS_STREAM_MAX_BYTES / 2 + 1);
	char frame[256];
	int i, rc = 0;

	memset(big, 'x', SG_AS_STREAM_MAX_BYTES / 2);
	big[SG_AS_STREAM_MAX_BYTES / 2] = '\0';
	ck_assert_int_eq(feed(s, START_R1, out, &err), 0);
	ck_assert_int_eq(
	    feed(s,
	         "{\"type\":\"TEXT_BLOCK_START\",\"created_at\":\"2026-08-02T09:00:01\","
	         "\"reply_id\":\"r1\",\"block_id\":\"t1\"}",
	         out, &err),
	    0);
	f = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "TEXT_BLOCK_DELTA", "created_at",
	              "2026-08-02T09:00:02", "reply_id", "r1", "block_id", "t1", "delta", big);
	ck_assert_int_eq(sg_as_stream_feed(s, f, out, &err), 0);
	ck_assert_int_eq(sg_as_stream_feed(s, f, out, &err), 0);
	ck_assert_int_eq(sg_as_stream_feed(s, f, out, &err), -1);
	sg_check_502(&err, "as1", "bytes");
	json_decref(f);
	free(big);
	sg_as_stream_free(s);

	s = sg_as_stream_new(&base_ctx, 0);
	ck_assert_int_eq(feed(s, START_R1, out, &err), 0);
	for (i = 0; i <= SG_AS_STREAM_MAX_BLOCKS && rc == 0; i++) {
		snprintf(frame, sizeof(frame),
		         "{\"type\":\"TOOL_RESULT_START\",\"created_at\":\"2026-08-02T09:00:01\","
		         "\"reply_id\":\"r1\",\"tool_call_id\":\"c%d\",\"tool_call_name\":\"X\"}",
		         i);
		rc = feed(s, frame, out, &err);
	}
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(i, SG_AS_STREAM_MAX_BLOCKS + 1);
	sg_check_502(&err, "as1", "open blocks");
	json_decref(out);
	sg_as_stream_free(s);
}
END_TEST

/* A new reply while one is open closes the old one as the history shows a message that is not
 * the last: end_turn under the plain ids. */
START_TEST(test_superseded)
{
	struct sg_as_stream *s = sg_as_stream_new(&base_ctx, 0);
	struct sg_error err = {0};
	json_t *out = json_array();

	ck_assert_int_eq(feed(s, START_R1, out, &err), 0);
	ck_assert_int_eq(feed(s,
	                      "{\"type\":\"REPLY_START\",\"created_at\":\"2026-08-02T09:00:05\","
	                      "\"reply_id\":\"r2\",\"name\":\"Friday\"}",
	                      out, &err),
	                 0);
	ck_assert_uint_eq(json_array_size(out), 5);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(out, 3), "type")),
	                 "session.status_idle");
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_object_get(json_array_get(out, 3), "stop_reason"), "type")),
	                 "end_turn");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(out, 4), "type")),
	                 "session.status_running");
	json_decref(out);
	sg_as_stream_free(s);
}
END_TEST

/* ---- the module's slot, against a scripted loopback backend ------------------------------ */

extern const struct sg_mapping sg_mapping_agentscope;

/* The backend: "GET URI" → [status, body]; every request's "URI user" is recorded. */
struct slot_env {
	struct event_base *base;
	json_t *routes, *seen, *events;
	int ended;
	size_t leave_after; /* > 0: the client leaves at that event */
	int left;
};

static void slot_answer(struct evhttp_request *req, void *arg)
{
	struct slot_env *e = arg;
	const char *uri = evhttp_request_get_uri(req);
	const char *user = evhttp_find_header(evhttp_request_get_input_headers(req), "X-User-ID");
	const json_t *route = json_object_get(e->routes, uri);
	struct evbuffer *out = evbuffer_new();

	json_array_append_new(e->seen, json_pack("[s,s?]", uri, user));
	if (!route) {
		evbuffer_add_printf(out, "{\"detail\":\"Not Found\"}");
		evhttp_send_reply(req, 404, "Not Found", out);
	} else {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
		                  json_integer_value(json_array_get(route, 0)) == 200 &&
		                          strstr(uri, "/stream")
		                      ? "text/event-stream"
		                      : "application/json");
		evbuffer_add(out, json_string_value(json_array_get(route, 1)),
		             json_string_length(json_array_get(route, 1)));
		evhttp_send_reply(req, (int)json_integer_value(json_array_get(route, 0)), "X", out);
	}
	evbuffer_free(out);
}

static int slot_sink(struct sg_call *call, const json_t *event, void *arg)
{
	struct slot_env *e = arg;

	json_array_append(e->events, (json_t *)event);
	if (e->leave_after && json_array_size(e->events) == e->leave_after) {
		/* as the core's sink does for a departed client: the call is freed (deferred until
		 * sg_call_emit returns -1) */
		e->left = 1;
		sg_call_free(call);
		event_base_loopbreak(e->base);
		return -1;
	}
	return 0;
}

static void slot_done(struct sg_call *call, void *arg)
{
	struct slot_env *e = arg;

	(void)call;
	e->ended = 1;
	event_base_loopbreak(e->base);
}

/* Runs the stream_events slot for session sess1 of agent agent1 as user u1 against a backend
 * whose /stream answers status and body, and /messages the parked tail page when given.
 * Returns the call's error status (0 when it ended cleanly); *events the emitted events (new),
 * *seen the requests (new). */
static int run_slot_leaving(int status, const char *body, const char *tail, size_t leave_after,
                            json_t **events, json_t **seen)
{
	struct slot_env e = {.leave_after = leave_after};
	struct sg_backend be;
	struct sg_backend_state be_state = {0};
	struct evhttp *http;
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	struct sg_upstream *up;
	struct sg_error err = {0};
	struct sg_pubid id;
	struct sg_call *call;
	json_t *identity = json_pack("{s:s}", "user_id", "u1");
	char url[64];
	struct timeval limit = {10, 0};
	struct sg_call_env env = {.request_id = "req_slot", .principal = "tester", .now_us = 1};
	int rc;

	e.base = event_base_new();
	e.routes = json_object();
	e.seen = json_array();
	e.events = json_array();
	json_object_set_new(e.routes, "/sessions/sess1/stream?agent_id=agent1",
	                    json_pack("[i,s]", status, body));
	if (tail)
		json_object_set_new(e.routes, "/sessions/sess1/messages?agent_id=agent1&limit=1",
		                    json_pack("[i,s]", 200, tail));
	http = evhttp_new(e.base);
	evhttp_set_gencb(http, slot_answer, &e);
	bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
	ck_assert_ptr_nonnull(bs);
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
	up = sg_upstream_new(e.base, 8);
	memset(&be, 0, sizeof(be));
	be.state = &be_state;
	be.name = "as1";
	be.mapping = &sg_mapping_agentscope;
	be.url = url;
	be.timeout_ms = 2000;
	be.stream_idle_timeout_ms = 2000;
	be.connect_timeout_ms = 1000;
	be.max_connections = 8;
	be.max_response_bytes = 1 << 20;
	ck_assert_int_eq(sg_mapping_agentscope.init(&be, NULL, &err), 0);
	env.upstream = up;
	env.base = e.base;
	call = sg_call_new(SG_CALL_STREAM_EVENTS, &env, &be, identity, slot_done, &e);
	memset(&id, 0, sizeof(id));
	snprintf(id.backend, sizeof(id.backend), "as1");
	snprintf(id.scope, sizeof(id.scope), "agent1");
	snprintf(id.native, sizeof(id.native), "sess1");
	sg_call_set_pubid(call, &id);
	sg_call_set_sink(call, slot_sink, &e);
	ck_assert_int_eq(sg_call_set_stream_input(call, 0, NULL, NULL), 0);
	sg_call_start(call);
	event_base_loopexit(e.base, &limit);
	event_base_dispatch(e.base);
	ck_assert_msg(e.ended || e.left, "the stream call did not end");
	rc = e.left ? -1 : sg_call_error(call) ? sg_call_error(call)->status : 0;
	if (!e.left)
		sg_call_free(call);
	sg_mapping_agentscope.destroy(&be);
	sg_upstream_free(up);
	evhttp_free(http);
	event_base_free(e.base);
	json_decref(identity);
	json_decref(e.routes);
	*events = e.events;
	*seen = e.seen;
	return rc;
}

static int run_slot(int status, const char *body, const char *tail, json_t **events, json_t **seen)
{
	return run_slot_leaving(status, body, tail, 0, events, seen);
}

/* The SSE body AgentScope would send for a case's frames: data-only frames, heartbeats. */
static char *sse_body(const json_t *frames)
{
	size_t i, cap = 1 << 16, len = 0;
	char *out = malloc(cap);

	out[0] = '\0';
	for (i = 0; i < json_array_size(frames); i++) {
		char *f = json_dumps(json_array_get(frames, i), JSON_COMPACT);
		size_t n = strlen(f) + 16;

		while (len + n >= cap)
			out = realloc(out, cap *= 2);
		len += (size_t)sprintf(out + len, "%sdata: %s\n\n", i % 3 == 0 ? ":\n\n" : "", f);
		free(f);
	}
	return out;
}

START_TEST(test_slot)
{
	static const char *const cases[] = {"tool_run_hints_dropped", "resume_external"};
	size_t c;

	for (c = 0; c < 2; c++) {
		struct kase k;
		json_t *events, *seen, *want;
		char *body;

		ck_assert_int_eq(load_case(cases[c], &k), 0);
		/* the module's context: backend, "<agent>/<session>", UTC, hints dropped */
		k.ctx.backend = "as1";
		k.ctx.session_key = "agent1/sess1";
		k.ctx.hint_mode = 0;
		sg_tz_free(k.tz);
		k.tz = sg_tz_load("UTC", NULL, 0);
		k.ctx.tz = k.tz;
		want = stream(&k, 0, 0, NULL);
		body = sse_body(k.frames);
		ck_assert_int_eq(run_slot(200, body, NULL, &events, &seen), 0);
		ck_assert_msg(json_equal(events, want),
		              "%s: the slot's events are not the stream's", cases[c]);
		/* the tail is read first (no route here: 404, ignored), then the stream */
		ck_assert_uint_eq(json_array_size(seen), 2);
		ck_assert_str_eq(json_string_value(json_array_get(json_array_get(seen, 1), 0)),
		                 "/sessions/sess1/stream?agent_id=agent1");
		ck_assert_str_eq(json_string_value(json_array_get(json_array_get(seen, 1), 1)),
		                 "u1");
		json_decref(events);
		json_decref(seen);
		/* a client that leaves at the third event: the call is freed mid-frame */
		ck_assert_int_eq(run_slot_leaving(200, body, NULL, 3, &events, &seen), -1);
		ck_assert_uint_eq(json_array_size(events), 3);
		free(body);
		json_decref(events);
		json_decref(seen);
		json_decref(want);
		if (k.parked) {
			/* joining while parked: the stream starts at the resumption, and the slot
			 * primes the translator with the tail of GET /messages (a newer build's
			 * page) */
			const char *reply, *call;
			int from = resume_frame(&k, &reply, &call);
			const json_t *last =
			    json_array_get(k.parked, json_array_size(k.parked) - 1);
			json_t *rest = json_array(), *page;
			char *tail;
			size_t i;

			for (i = (size_t)from; i < json_array_size(k.frames); i++)
				json_array_append(rest, json_array_get(k.frames, i));
			page = json_pack("{s:[O], s:b, s:b}", "messages", last, "is_running", 0,
			                 "has_more", 1);
			tail = json_dumps(page, JSON_COMPACT);
			body = sse_body(rest);
			want = stream_primed(&k, last, (size_t)from, 0, NULL);
			ck_assert_int_eq(run_slot(200, body, tail, &events, &seen), 0);
			ck_assert_msg(json_equal(events, want), "%s: primed slot", cases[c]);
			free(body);
			free(tail);
			json_decref(page);
			json_decref(rest);
			json_decref(events);
			json_decref(seen);
			json_decref(want);
		}
		free_case(&k);
	}
}
END_TEST

START_TEST(test_slot_failures)
{
	json_t *events, *seen;

	/* the backend does not know the session: its 404 */
	ck_assert_int_eq(run_slot(404, "{\"detail\":\"Session not found\"}", NULL, &events, &seen),
	                 404);
	json_decref(events);
	json_decref(seen);
	/* a frame that is not JSON: 502, after what came before it */
	ck_assert_int_eq(run_slot(200,
	                          "data: {\"type\":\"REPLY_START\",\"created_at\":"
	                          "\"2026-08-02T09:00:00\",\"reply_id\":\"r1\"}\n\ndata: nope\n\n",
	                          NULL, &events, &seen),
	                 502);
	ck_assert_uint_eq(json_array_size(events), 1);
	json_decref(events);
	json_decref(seen);
	/* a frame of the wrong shape: 502 */
	ck_assert_int_eq(run_slot(200, "data: {\"type\":\"REPLY_START\",\"reply_id\":1}\n\n", NULL,
	                          &events, &seen),
	                 502);
	json_decref(events);
	json_decref(seen);
	/* a frame larger than the bound (the backend's max_response_bytes here, 1 MiB): 502 */
	{
		size_t n = (1u << 20) + 64;
		char *big = malloc(n + 16);

		memcpy(big, "data: ", 6);
		memset(big + 6, 'x', n);
		memcpy(big + 6 + n, "\n\n", 3);
		ck_assert_int_eq(run_slot(200, big, NULL, &events, &seen), 502);
		free(big);
		json_decref(events);
		json_decref(seen);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("agentscope_stream");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_golden);
	tcase_add_test(tc, test_tool_run_order);
	tcase_add_test(tc, test_since);
	tcase_add_test(tc, test_since_mid_block);
	tcase_add_test(tc, test_join_parked);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_unknown_ignored);
	tcase_add_test(tc, test_no_growth);
	tcase_add_test(tc, test_bounds);
	tcase_add_test(tc, test_superseded);
	tcase_add_test(tc, test_slot);
	tcase_add_test(tc, test_slot_failures);
	suite_add_tcase(s, tc);
	return sg_fixture_run(s);
}
