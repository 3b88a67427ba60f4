/* test_streams.c - the live event stream (GET /v1/sessions/{id}/events/stream) against the
 * real gateway and the fake backends' streams: what a client sees (the run it started, ids
 * equal to the history's, nothing from before it connected, heartbeats), what the gateway
 * does for it (one upstream stream shared by a worker's clients, closed when the last one
 * leaves; reconnect after a drop without duplicates; error and end when the backend is gone;
 * session.deleted; Last-Event-ID; limits with 429; lifetime; drain). The SDK-level flows are
 * the conformance suite's `stream` run. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define MODEL_CFG "{\"type\":\"anthropic_credential\",\"credential_id\":\"c1\",\"model\":\"m1\"}"

static struct h_proc fake, sb, cl, gw;
static const char *const K[] = {"x-api-key: sk-watcher", "Content-Type: application/json", NULL};
static const char *const K2[] = {"x-api-key: sk-other", "Content-Type: application/json", NULL};
static const char *const KS[] = {"x-api-key: sk-sb-watcher", "Content-Type: application/json",
                                 NULL};
static const char *const KC[] = {"x-api-key: sk-cl-watcher", "Content-Type: application/json",
                                 NULL};

static void sleep_ms(long ms)
{
	struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&d, NULL);
}

/* Starts the gateway in front of the fakes with these "streams" and "limits" settings. */
static void gateway_with(int workers, const char *streams, const char *limits)
{
	json_error_t je;
	json_t *cfg;
	char h1[65], h2[65], h3[65], h4[65], doc[4096];

	h_hash_key("sk-watcher", h1);
	h_hash_key("sk-other", h2);
	h_hash_key("sk-sb-watcher", h3);
	h_hash_key("sk-cl-watcher", h4);
	snprintf(
	    doc, sizeof(doc),
	    "{\"workers\":%d,\"cursor_secret\":\"streams-test-secret-0123456789abcdef\","
	    "\"shutdown_grace_ms\":3000,\"streams\":%s,\"limits\":%s,"
	    "\"backends\":["
	    "{\"name\":\"as\",\"mapping\":\"agentscope\",\"url\":\"http://127.0.0.1:%d\","
	    "\"retries\":0,\"timeout_ms\":3000,\"options\":{\"chat_model_config\":" MODEL_CFG "}},"
	    "{\"name\":\"sb\",\"mapping\":\"sandbase\",\"url\":\"http://127.0.0.1:%d\","
	    "\"retries\":0,\"timeout_ms\":3000,\"options\":{\"api_key\":\"$SG_TEST_SB_KEY\"}},"
	    "{\"name\":\"cl\",\"mapping\":\"claude\",\"url\":\"http://127.0.0.1:%d\","
	    "\"retries\":0,\"timeout_ms\":3000,\"options\":{\"api_key\":\"$SG_TEST_CL_KEY\"}}],"
	    "\"keys\":["
	    "{\"name\":\"watcher\",\"sha256\":\"%s\",\"backends\":{\"as\":{\"user_id\":\"alice\"}}}"
	    ","
	    "{\"name\":\"other\",\"sha256\":\"%s\",\"backends\":{\"as\":{\"user_id\":\"alice\"}}},"
	    "{\"name\":\"sbw\",\"sha256\":\"%s\",\"backends\":{\"sb\":{}}},"
	    "{\"name\":\"clw\",\"sha256\":\"%s\",\"backends\":{\"cl\":{}}}]}",
	    workers, streams, limits, fake.port, sb.port, cl.port, h1, h2, h3, h4);
	cfg = json_loads(doc, 0, &je);
	ck_assert_msg(cfg != NULL, "%s", je.text);
	ck_assert_int_eq(h_gateway_start(&gw, cfg), 0);
	json_decref(cfg);
}

static void gateway(int workers, const char *streams)
{
	gateway_with(workers, streams, "{}");
}

static void fakes(void)
{
	const char *a_as[] = {
	    "--generate", "6:2", "--seed", "11", "--run-ms", "300", "--stream-heartbeat-ms",
	    "200",        NULL};
	const char *a_sb[] = {
	    "--dialect", "sandbase", "--generate", "6:2", "--seed", "5", "--stream-heartbeat-ms",
	    "200",       NULL};

	const char *a_cl[] = {
	    "--dialect", "claude", "--generate", "6:2", "--seed", "7", "--stream-heartbeat-ms",
	    "200",       NULL};

	setenv("SG_TEST_SB_KEY", "sk-sb-test", 1);
	setenv("SG_TEST_CL_KEY", "sk-ant-test", 1);
	ck_assert_int_eq(h_fake_start(&fake, a_as), 0);
	ck_assert_int_eq(h_fake_start_bin(&sb, "tests/fake_sandbase", a_sb), 0);
	ck_assert_int_eq(h_fake_start_bin(&cl, "tests/fake_sandbase", a_cl), 0);
}

static void setup(void)
{
	fakes();
	gateway(1, "{\"heartbeat_ms\":300,\"max_per_key\":50,\"max_per_worker\":60,"
	           "\"reconnect_ms\":1500}");
}

static void teardown(void)
{
	/* a clean exit: the sanitizer build aborts on any memory error */
	ck_assert_int_eq(h_stop(&gw, 5000), 0);
	h_stop(&fake, 2000);
	h_stop(&sb, 2000);
	h_stop(&cl, 2000);
}

/* A fake's open and total upstream streams. */
static void fake_streams(const struct h_proc *p, long *open, long *total)
{
	struct h_res r;

	ck_assert_int_eq(h_get(p->port, "/__fake/mode", NULL, &r), 0);
	ck_assert_msg(r.json != NULL, "%s", r.body);
	*open = (long)json_integer_value(json_object_get(r.json, "streams_open"));
	if (total)
		*total = (long)json_integer_value(json_object_get(r.json, "streams_total"));
	h_res_free(&r);
}

/* Waits until the fake has `want` open streams (2 s at most). */
static long wait_streams(const struct h_proc *p, long want)
{
	long open = -1;

	for (int i = 0; i < 100; i++) {
		fake_streams(p, &open, NULL);
		if (open == want)
			break;
		sleep_ms(20);
	}
	return open;
}

/* A new session of the key's first agent; returns its id (malloc'd). */
static char *new_session(const char *const *hdr)
{
	struct h_res r;
	char body[512], *agent, *sid;

	ck_assert_int_eq(h_get(gw.port, "/v1/agents", hdr, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	agent = strdup(json_string_value(
	    json_object_get(json_array_get(json_object_get(r.json, "data"), 0), "id")));
	h_res_free(&r);
	snprintf(body, sizeof(body),
	         "{\"agent\":\"%s\",\"environment_id\":\"env_streams\",\"title\":\"stream test\"}",
	         agent);
	free(agent);
	ck_assert_int_eq(h_send("POST", gw.port, "/v1/sessions", hdr, body, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	sid = strdup(json_string_value(json_object_get(r.json, "id")));
	h_res_free(&r);
	return sid;
}

static void send_text(const char *const *hdr, const char *sid, const char *text)
{
	char path[512], *body = NULL;
	struct h_res r;

	snprintf(path, sizeof(path), "/v1/sessions/%s/events", sid);
	ck_assert_int_gt(asprintf(&body,
	                          "{\"events\":[{\"type\":\"user.message\",\"content\":[{\"type\":"
	                          "\"text\",\"text\":\"%s\"}]}]}",
	                          text),
	                 0);
	ck_assert_int_eq(h_send("POST", gw.port, path, hdr, body, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	h_res_free(&r);
	free(body);
}

static void send_json(const char *const *hdr, const char *sid, const char *body)
{
	char path[512];
	struct h_res r;

	snprintf(path, sizeof(path), "/v1/sessions/%s/events", sid);
	ck_assert_int_eq(h_send("POST", gw.port, path, hdr, body, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	h_res_free(&r);
}

static void open_stream(struct h_sse *s, const char *const *hdr, const char *sid,
                        const char *last_id)
{
	char path[512], lh[300];
	const char *h[4] = {hdr[0], NULL, NULL, NULL};

	if (last_id) {
		snprintf(lh, sizeof(lh), "Last-Event-ID: %s", last_id);
		h[1] = lh;
	}
	snprintf(path, sizeof(path), "/v1/sessions/%s/events/stream", sid);
	ck_assert_int_eq(h_sse_open(s, gw.port, path, h, 5000), 0);
}

/* Reads events into `out` (an array of their JSON) until one of type `until` (included) or
 * timeout_ms; returns 1 when `until` came. */
static int read_until(struct h_sse *s, json_t *out, const char *until, int timeout_ms)
{
	struct h_sse_ev ev;
	int rc;

	while ((rc = h_sse_next(s, timeout_ms, &ev)) == 1) {
		const char *type = json_string_value(json_object_get(ev.json, "type"));

		ck_assert_msg(ev.json != NULL, "frame data is not JSON: %s", ev.data);
		ck_assert_str_eq(ev.event, type ? type : "");
		if (json_object_get(ev.json, "id"))
			ck_assert_str_eq(ev.id, json_string_value(json_object_get(ev.json, "id")));
		json_array_append(out, ev.json);
		h_sse_ev_free(&ev);
		if (until && type && !strcmp(type, until))
			return 1;
	}
	return 0;
}

static int has_type(const json_t *evs, const char *type)
{
	json_t *e;
	size_t i;

	json_array_foreach(evs, i, e)
		if (!strcmp(json_string_value(json_object_get(e, "type")), type))
			return 1;
	return 0;
}

/* No id twice. */
static void no_duplicates(const json_t *evs)
{
	json_t *seen = json_object(), *e;
	size_t i;

	json_array_foreach(evs, i, e) {
		const char *id = json_string_value(json_object_get(e, "id"));

		ck_assert_msg(id != NULL, "an event without id");
		ck_assert_msg(!json_object_get(seen, id), "event %s streamed twice", id);
		json_object_set_new(seen, id, json_true());
	}
	json_decref(seen);
}

/* The session's listed events (every page). */
static json_t *listed(const char *const *hdr, const char *sid)
{
	char path[600];
	struct h_res r;
	json_t *all;

	snprintf(path, sizeof(path), "/v1/sessions/%s/events?limit=1000", sid);
	ck_assert_int_eq(h_get(gw.port, path, hdr, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	all = json_incref(json_object_get(r.json, "data"));
	h_res_free(&r);
	return all;
}

/* Every streamed event of a type the history keeps is listed later under the same id, with
 * the same type. */
static void streamed_ids_are_listed(const json_t *streamed, const json_t *list,
                                    const char *const *exempt)
{
	json_t *e, *l;
	size_t i, j;

	json_array_foreach(streamed, i, e) {
		const char *id = json_string_value(json_object_get(e, "id"));
		const char *type = json_string_value(json_object_get(e, "type"));
		int found = 0, skip = 0;

		for (size_t k = 0; exempt && exempt[k]; k++)
			skip |= !strcmp(exempt[k], type);
		if (skip)
			continue;
		json_array_foreach(list, j, l)
			if (!strcmp(json_string_value(json_object_get(l, "id")), id)) {
				found = 1;
				ck_assert_str_eq(json_string_value(json_object_get(l, "type")),
				                 type);
			}
		ck_assert_msg(found, "streamed %s %s is not in the events list", type, id);
	}
}

START_TEST(a_run_streams_with_the_ids_the_list_gives)
{
	char *sid = new_session(K);
	struct h_sse s;
	json_t *evs = json_array(), *list;

	open_stream(&s, K, sid, NULL);
	ck_assert_int_eq(s.status, 200);
	ck_assert_ptr_nonnull(strcasestr(s.head, "content-type: text/event-stream"));
	send_text(K, sid, "what is in the notes? [tool:auto]");
	ck_assert_msg(read_until(&s, evs, "session.status_idle", 5000), "no idle: %s",
	              json_dumps(evs, 0));
	ck_assert(has_type(evs, "user.message")); /* echoed by the gateway */
	ck_assert(has_type(evs, "session.status_running"));
	ck_assert(has_type(evs, "agent.tool_use"));
	ck_assert(has_type(evs, "agent.tool_result"));
	ck_assert(has_type(evs, "agent.message"));
	ck_assert(has_type(evs, "span.model_request_end"));
	no_duplicates(evs);
	list = listed(K, sid);
	streamed_ids_are_listed(evs, list, NULL);
	json_decref(list);
	json_decref(evs);
	h_sse_close(&s);
	free(sid);
}
END_TEST

START_TEST(nothing_from_before_the_connect)
{
	char *sid = new_session(K);
	struct h_sse s;
	json_t *evs = json_array();

	/* the run starts (status_running, span start) before the client connects */
	send_text(K, sid, "think long [run:long]");
	sleep_ms(300);
	open_stream(&s, K, sid, NULL);
	ck_assert_int_eq(s.status, 200);
	send_json(K, sid, "{\"events\":[{\"type\":\"user.interrupt\"}]}");
	ck_assert_msg(read_until(&s, evs, "session.status_idle", 5000), "no idle: %s",
	              json_dumps(evs, 0));
	ck_assert_msg(!has_type(evs, "session.status_running"), "replayed: %s", json_dumps(evs, 0));
	ck_assert_msg(!has_type(evs, "span.model_request_start"), "replayed: %s",
	              json_dumps(evs, 0));
	ck_assert(has_type(evs, "span.model_request_end"));
	no_duplicates(evs);
	json_decref(evs);
	h_sse_close(&s);
	free(sid);
}
END_TEST

START_TEST(idle_streams_get_heartbeats)
{
	char *sid = new_session(K);
	struct h_sse s;
	struct h_sse_ev ev;

	open_stream(&s, K, sid, NULL);
	ck_assert_int_eq(h_sse_next(&s, 1200, &ev), 0);
	/* ": connected", then one per 300 ms */
	ck_assert_int_ge(s.heartbeats, 3);
	h_sse_close(&s);
	free(sid);
}
END_TEST

START_TEST(watchers_share_one_upstream_stream)
{
	char *sid = new_session(K);
	struct h_sse s[20];
	long open, total0, total1;

	fake_streams(&fake, &open, &total0);
	for (int i = 0; i < 20; i++)
		open_stream(&s[i], i % 2 ? K : K2, sid, NULL);
	ck_assert_int_eq(wait_streams(&fake, 1), 1);
	fake_streams(&fake, &open, &total1);
	ck_assert_int_eq(total1 - total0, 1);
	send_text(K, sid, "hello");
	for (int i = 0; i < 20; i++) {
		json_t *evs = json_array();

		ck_assert_msg(read_until(&s[i], evs, "session.status_idle", 5000), "watcher %d", i);
		json_decref(evs);
	}
	for (int i = 0; i < 19; i++)
		h_sse_close(&s[i]);
	sleep_ms(200);
	ck_assert_int_eq(wait_streams(&fake, 1), 1); /* one watcher is left */
	h_sse_close(&s[19]);
	/* the last client leaving closes the upstream at once */
	ck_assert_int_eq(wait_streams(&fake, 0), 0);
	free(sid);
}
END_TEST

START_TEST(an_unknown_session_is_a_404_not_a_stream)
{
	char *sid = new_session(K), path[512];
	struct h_sse s;
	struct h_res r;

	snprintf(path, sizeof(path), "/v1/sessions/%s", sid);
	ck_assert_int_eq(h_request("DELETE", gw.port, path, (const char *[]){K[0], NULL}, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_res_free(&r);
	open_stream(&s, K, sid, NULL);
	ck_assert_int_eq(s.status, 404);
	h_sse_rest(&s, 2000);
	ck_assert_ptr_nonnull(strstr(s.buf, "not_found_error"));
	h_sse_close(&s);
	free(sid);
}
END_TEST

START_TEST(streams_past_the_limits_get_429)
{
	char *sid = new_session(K);
	struct h_sse a[3], b;

	h_stop(&gw, 5000);
	gateway(1, "{\"max_per_key\":2,\"max_per_worker\":3}");
	for (int i = 0; i < 2; i++) {
		open_stream(&a[i], K, sid, NULL);
		ck_assert_int_eq(a[i].status, 200);
	}
	open_stream(&a[2], K, sid, NULL);
	ck_assert_int_eq(a[2].status, 429);
	h_sse_rest(&a[2], 2000);
	ck_assert_ptr_nonnull(strstr(a[2].buf, "rate_limit_error"));
	ck_assert_ptr_nonnull(strstr(a[2].buf, "API key"));
	open_stream(&b, K2, sid, NULL); /* the worker's third */
	ck_assert_int_eq(b.status, 200);
	h_sse_close(&a[2]);
	open_stream(&a[2], K2, sid, NULL);
	ck_assert_int_eq(a[2].status, 429);
	h_sse_rest(&a[2], 2000);
	ck_assert_ptr_nonnull(strstr(a[2].buf, "worker"));
	/* a closed stream frees its place */
	h_sse_close(&b);
	sleep_ms(200);
	h_sse_close(&a[2]);
	open_stream(&a[2], K2, sid, NULL);
	ck_assert_int_eq(a[2].status, 200);
	for (int i = 0; i < 3; i++)
		h_sse_close(&a[i]);
	free(sid);
}
END_TEST

START_TEST(a_dropped_upstream_is_reopened_without_duplicates)
{
	char *sid = new_session(K);
	struct h_sse s;
	struct h_res r;
	json_t *evs = json_array(), *list;
	long open, t0, t1;

	open_stream(&s, K, sid, NULL);
	ck_assert_int_eq(wait_streams(&fake, 1), 1);
	fake_streams(&fake, &open, &t0);
	/* a run, cut in the middle: the drop comes while it runs */
	send_text(K, sid, "what is in the notes? [tool:auto]");
	sleep_ms(100);
	ck_assert_int_eq(h_request("POST", fake.port, "/__fake/stream-drop", NULL, &r), 0);
	h_res_free(&r);
	ck_assert_msg(read_until(&s, evs, "session.status_idle", 6000), "no idle: %s",
	              json_dumps(evs, 0));
	/* the history filled the gap; the stream is open again */
	ck_assert_int_eq(wait_streams(&fake, 1), 1);
	fake_streams(&fake, &open, &t1);
	ck_assert_int_ge(t1 - t0, 1);
	no_duplicates(evs);
	list = listed(K, sid);
	streamed_ids_are_listed(evs, list, NULL);
	json_decref(list);
	/* a second run on the reopened stream */
	json_decref(evs);
	evs = json_array();
	send_text(K, sid, "and again");
	ck_assert(read_until(&s, evs, "session.status_idle", 5000));
	json_decref(evs);
	h_sse_close(&s);
	free(sid);
}
END_TEST

START_TEST(a_backend_that_is_gone_ends_the_stream_with_an_error)
{
	char *sid = new_session(K);
	struct h_sse s;
	struct h_sse_ev ev;
	int rc;

	open_stream(&s, K, sid, NULL);
	ck_assert_int_eq(wait_streams(&fake, 1), 1);
	kill(fake.pid, SIGKILL);
	h_stop(&fake, 2000);
	/* reconnect_ms is 1500: then event: error, then the end */
	while ((rc = h_sse_next(&s, 4000, &ev)) == 1) {
		if (!strcmp(ev.event, "error"))
			break;
		h_sse_ev_free(&ev);
	}
	ck_assert_int_eq(rc, 1);
	ck_assert_str_eq(ev.event, "error");
	ck_assert_str_eq(json_string_value(json_object_get(ev.json, "type")), "error");
	ck_assert_ptr_nonnull(json_object_get(json_object_get(ev.json, "error"), "message"));
	h_sse_ev_free(&ev);
	ck_assert_int_eq(h_sse_next(&s, 2000, &ev), -1);
	ck_assert(s.eof);
	h_sse_close(&s);
	/* teardown stops it again: harmless */
	free(sid);
}
END_TEST

START_TEST(a_deleted_session_ends_its_streams_on_every_worker)
{
	char *sid, path[512];
	struct h_sse s[6];
	struct h_res r;

	h_stop(&gw, 5000);
	gateway(2, "{}");
	sid = new_session(K);
	for (int i = 0; i < 6; i++) {
		open_stream(&s[i], K, sid, NULL);
		ck_assert_int_eq(s[i].status, 200);
	}
	snprintf(path, sizeof(path), "/v1/sessions/%s", sid);
	ck_assert_int_eq(h_request("DELETE", gw.port, path, (const char *[]){K[0], NULL}, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	h_res_free(&r);
	for (int i = 0; i < 6; i++) {
		json_t *evs = json_array();
		struct h_sse_ev ev;

		ck_assert_msg(read_until(&s[i], evs, "session.deleted", 3000), "client %d: %s", i,
		              json_dumps(evs, 0));
		ck_assert_int_eq(h_sse_next(&s[i], 2000, &ev), -1);
		ck_assert(s[i].eof);
		json_decref(evs);
		h_sse_close(&s[i]);
	}
	/* and a new stream on it is a 404 */
	open_stream(&s[0], K, sid, NULL);
	ck_assert_int_eq(s[0].status, 404);
	h_sse_close(&s[0]);
	free(sid);
}
END_TEST

START_TEST(a_stream_ends_cleanly_after_its_lifetime)
{
	char *sid;
	struct h_sse s;
	struct h_sse_ev ev;

	h_stop(&gw, 5000);
	gateway(1, "{\"max_lifetime_ms\":1000}");
	sid = new_session(K);
	open_stream(&s, K, sid, NULL);
	ck_assert_int_eq(s.status, 200);
	ck_assert_int_eq(h_sse_next(&s, 3000, &ev), -1);
	ck_assert(s.eof);
	h_sse_close(&s);
	free(sid);
}
END_TEST

START_TEST(drain_ends_streams_cleanly)
{
	char *sid = new_session(K);
	struct h_sse s;
	struct h_sse_ev ev;

	open_stream(&s, K, sid, NULL);
	ck_assert_int_eq(s.status, 200);
	kill(gw.pid, SIGTERM);
	ck_assert_int_eq(h_sse_next(&s, 2000, &ev), -1);
	ck_assert(s.eof);
	ck_assert_int_eq(h_stop(&gw, 3000), 0);
	h_sse_close(&s);
	free(sid);
	gateway(1, "{}"); /* for teardown */
}
END_TEST

START_TEST(last_event_id_gets_what_followed_it)
{
	char *sid = new_session(K);
	struct h_sse a, b;
	json_t *evs = json_array(), *again = json_array();
	const char *first;

	open_stream(&a, K, sid, NULL);
	send_text(K, sid, "hello");
	ck_assert(read_until(&a, evs, "session.status_idle", 5000));
	ck_assert_int_ge(json_array_size(evs), 3);
	first = json_string_value(json_object_get(json_array_get(evs, 0), "id"));
	open_stream(&b, K, sid, first);
	ck_assert_int_eq(b.status, 200);
	ck_assert(read_until(&b, again, "session.status_idle", 3000));
	ck_assert_int_eq(json_array_size(again), json_array_size(evs) - 1);
	for (size_t i = 0; i < json_array_size(again); i++)
		ck_assert(json_equal(json_array_get(again, i), json_array_get(evs, i + 1)));
	json_decref(evs);
	json_decref(again);
	h_sse_close(&a);
	h_sse_close(&b);
	free(sid);
}
END_TEST

START_TEST(sandbase_streams_the_run_with_the_listed_ids)
{
	char *sid = new_session(KS);
	struct h_sse s;
	json_t *evs = json_array(), *list;

	open_stream(&s, KS, sid, NULL);
	ck_assert_int_eq(s.status, 200);
	send_text(KS, sid, "hello there");
	ck_assert_msg(read_until(&s, evs, "session.status_idle", 5000), "no idle: %s",
	              json_dumps(evs, 0));
	ck_assert(has_type(evs, "agent.message"));
	/* the user's message is echoed by SandBase itself */
	no_duplicates(evs);
	list = listed(KS, sid);
	streamed_ids_are_listed(evs, list, NULL);
	json_decref(list);
	json_decref(evs);
	h_sse_close(&s);
	free(sid);
}
END_TEST

START_TEST(sandbase_resumes_a_last_event_id_natively)
{
	char *sid = new_session(KS);
	struct h_sse a, b;
	json_t *evs = json_array(), *again = json_array();
	const char *first;
	long open;

	open_stream(&a, KS, sid, NULL);
	send_text(KS, sid, "hello there");
	ck_assert(read_until(&a, evs, "session.status_idle", 5000));
	h_sse_close(&a);
	ck_assert_int_eq(wait_streams(&sb, 0), 0);
	/* no shared stream holds it any more: SandBase resumes by its cursor */
	first = json_string_value(json_object_get(json_array_get(evs, 0), "id"));
	open_stream(&b, KS, sid, first);
	ck_assert_int_eq(b.status, 200);
	ck_assert(read_until(&b, again, "session.status_idle", 3000));
	fake_streams(&sb, &open, NULL);
	ck_assert_int_eq(open, 1);
	ck_assert_msg(json_array_size(again) == json_array_size(evs) - 1, "first %s then %s",
	              json_dumps(evs, JSON_COMPACT), json_dumps(again, JSON_COMPACT));
	for (size_t i = 0; i < json_array_size(again); i++)
		ck_assert_str_eq(
		    json_string_value(json_object_get(json_array_get(again, i), "id")),
		    json_string_value(json_object_get(json_array_get(evs, i + 1), "id")));
	json_decref(evs);
	json_decref(again);
	h_sse_close(&b);
	free(sid);
}
END_TEST

START_TEST(a_terminated_session_ends_its_streams)
{
	char *sid = new_session(KC);
	struct h_sse s;
	struct h_sse_ev ev;
	json_t *evs = json_array();

	open_stream(&s, KC, sid, NULL);
	ck_assert_int_eq(s.status, 200);
	send_text(KC, sid, "this will not end well [session:terminate]");
	ck_assert_msg(read_until(&s, evs, "session.status_terminated", 5000), "%s",
	              json_dumps(evs, 0));
	ck_assert(has_type(evs, "session.error"));
	ck_assert_int_eq(h_sse_next(&s, 2000, &ev), -1);
	ck_assert(s.eof);
	json_decref(evs);
	h_sse_close(&s);
	free(sid);
}
END_TEST

/* Waits until the session's runs are over (retrieve says idle). */
static void wait_idle(const char *sid)
{
	char path[512];
	struct h_res r;

	snprintf(path, sizeof(path), "/v1/sessions/%s", sid);
	for (int i = 0; i < 200; i++) {
		int idle;

		ck_assert_int_eq(h_get(gw.port, path, K, &r), 0);
		idle = r.json &&
		       !strcmp(json_string_value(json_object_get(r.json, "status")) ?: "", "idle");
		h_res_free(&r);
		if (idle)
			return;
		sleep_ms(10);
	}
	ck_abort_msg("the session did not go idle");
}

START_TEST(a_slow_reader_is_cut_and_nobody_else_waits)
{
	char *sid, text[256];
	struct h_sse slow, fast;
	struct h_sse_ev ev;
	struct h_res r;
	int rc, idles = 0, errors = 0, runs = 40;
	int small = 1024;

	h_stop(&gw, 5000);
	gateway_with(1, "{}", "{\"max_stream_backlog_bytes\":4096}");
	ck_assert_int_eq(h_request("POST", fake.port, "/__fake/mode?run_ms=5", NULL, &r), 0);
	h_res_free(&r);
	sid = new_session(K);
	/* a client that reads nothing, with a receive window the kernel keeps small */
	{
		char path[512];

		snprintf(path, sizeof(path), "/v1/sessions/%s/events/stream", sid);
		ck_assert_int_eq(h_sse_open_rcvbuf(&slow, gw.port, path,
		                                   (const char *[]){K[0], NULL}, 5000, small),
		                 0);
	}
	ck_assert_int_eq(slow.status, 200);
	open_stream(&fast, K, sid, NULL);
	memset(text, 'x', 180);
	text[180] = 0;
	for (int i = 0; i < runs; i++) {
		json_t *evs = json_array();

		snprintf(text + 180, sizeof(text) - 180, " %d [tool:auto]", i);
		send_text(K, sid, text);
		/* the reading client keeps up: every run reaches it */
		ck_assert_msg(read_until(&fast, evs, "session.status_idle", 5000), "run %d", i);
		json_decref(evs);
		idles++;
		wait_idle(sid);
	}
	ck_assert_int_eq(idles, runs);
	/* the slow one now reads: what fitted, then the error, then the end */
	int got = 0;

	while ((rc = h_sse_next(&slow, 3000, &ev)) == 1) {
		got++;
		if (!strcmp(ev.event, "error")) {
			errors++;
			ck_assert_ptr_nonnull(strstr(ev.data, "too slowly"));
		}
		h_sse_ev_free(&ev);
	}
	ck_assert_msg(rc == -1, "the slow reader got %d events, %d errors, and no end", got,
	              errors);
	ck_assert_int_eq(errors, 1);
	h_sse_close(&slow);
	h_sse_close(&fast);
	ck_assert_int_eq(h_request("POST", fake.port, "/__fake/mode?run_ms=300", NULL, &r), 0);
	h_res_free(&r);
	free(sid);
}
END_TEST

/* The cap is on what a client leaves unread, not on the size of one event: a client that
 * keeps up gets an event larger than the cap whole. */
START_TEST(an_event_larger_than_the_backlog_cap_reaches_a_reader)
{
	char *sid, *text = malloc(6001);
	struct h_sse s;
	json_t *evs = json_array(), *e;
	size_t i;
	int big = 0;

	h_stop(&gw, 5000);
	gateway_with(1, "{}", "{\"max_stream_backlog_bytes\":4096}");
	sid = new_session(K);
	open_stream(&s, K, sid, NULL);
	ck_assert_int_eq(s.status, 200);
	memset(text, 'y', 6000);
	text[6000] = 0;
	send_text(K, sid, text);
	ck_assert_msg(read_until(&s, evs, "session.status_idle", 5000), "%s",
	              json_dumps(evs, JSON_COMPACT));
	json_array_foreach(evs, i, e)
		big |= !strcmp(json_string_value(json_object_get(e, "type")), "user.message") &&
		       strlen(json_string_value(json_object_get(
		           json_array_get(json_object_get(e, "content"), 0), "text"))) == 6000;
	ck_assert_msg(big, "the 6000-byte user.message did not arrive whole");
	json_decref(evs);
	h_sse_close(&s);
	free(text);
	free(sid);
}
END_TEST

/* A Last-Event-ID that cannot be an event id (too long) is a 400, before any upstream. */
START_TEST(a_bad_last_event_id_is_a_400)
{
	char *sid = new_session(K), id[400];
	struct h_sse s;
	long open;

	memset(id, 'a', 300);
	id[300] = 0;
	open_stream(&s, K, sid, id);
	ck_assert_int_eq(s.status, 400);
	h_sse_rest(&s, 2000);
	ck_assert_ptr_nonnull(strstr(s.buf, "Last-Event-ID"));
	h_sse_close(&s);
	fake_streams(&fake, &open, NULL);
	ck_assert_int_eq(open, 0);
	free(sid);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("streams");
	TCase *tc = tcase_create("streams");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, a_run_streams_with_the_ids_the_list_gives);
	tcase_add_test(tc, nothing_from_before_the_connect);
	tcase_add_test(tc, idle_streams_get_heartbeats);
	tcase_add_test(tc, watchers_share_one_upstream_stream);
	tcase_add_test(tc, an_unknown_session_is_a_404_not_a_stream);
	tcase_add_test(tc, streams_past_the_limits_get_429);
	tcase_add_test(tc, a_dropped_upstream_is_reopened_without_duplicates);
	tcase_add_test(tc, a_backend_that_is_gone_ends_the_stream_with_an_error);
	tcase_add_test(tc, a_deleted_session_ends_its_streams_on_every_worker);
	tcase_add_test(tc, a_stream_ends_cleanly_after_its_lifetime);
	tcase_add_test(tc, drain_ends_streams_cleanly);
	tcase_add_test(tc, last_event_id_gets_what_followed_it);
	tcase_add_test(tc, sandbase_streams_the_run_with_the_listed_ids);
	tcase_add_test(tc, sandbase_resumes_a_last_event_id_natively);
	tcase_add_test(tc, a_terminated_session_ends_its_streams);
	tcase_add_test(tc, a_slow_reader_is_cut_and_nobody_else_waits);
	tcase_add_test(tc, an_event_larger_than_the_backlog_cap_reaches_a_reader);
	tcase_add_test(tc, a_bad_last_event_id_is_a_400);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
