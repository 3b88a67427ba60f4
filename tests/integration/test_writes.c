/* test_writes.c - the write path's core guarantees against the real gateway (two workers)
 * and the fake AgentScope service: reads after a write never come from a cache filled before
 * it, through either worker; an Idempotency-Key repeat gets the first answer and no second
 * backend call; a write whose client left runs on and its answer is kept for the key; a body
 * that breaks its type reaches no backend. (The SDK-level flows per backend are the
 * conformance suite's `writes` run.) */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct h_proc fake, gw;
static const char *const K[] = {"x-api-key: sk-writer", "Content-Type: application/json", NULL};

#define MODEL_CFG "{\"type\":\"anthropic_credential\",\"credential_id\":\"c1\",\"model\":\"m1\"}"

static void sleep_ms(long ms)
{
	struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&d, NULL);
}

static void setup(void)
{
	const char *args[] = {"--generate", "6:2", "--seed", "11", "--run-ms", "100", NULL};
	json_error_t je;
	json_t *cfg;
	char h[65], doc[2048];

	ck_assert_int_eq(h_fake_start(&fake, args), 0);
	h_hash_key("sk-writer", h);
	/* a long cache: only the write generation can make a read after a write see it */
	snprintf(
	    doc, sizeof(doc),
	    "{\"workers\":2,\"cursor_secret\":\"writes-test-secret-0123456789abcdef\","
	    "\"backends\":[{\"name\":\"as\",\"mapping\":\"agentscope\",\"url\":"
	    "\"http://127.0.0.1:%d\",\"retries\":0,\"options\":{\"cache_ms\":60000,"
	    "\"chat_model_config\":" MODEL_CFG "}}],"
	    "\"keys\":[{\"name\":\"writer\",\"sha256\":\"%s\",\"backends\":{\"as\":{\"user_id\":"
	    "\"alice\"}}}]}",
	    fake.port, h);
	cfg = json_loads(doc, 0, &je);
	ck_assert_msg(cfg != NULL, "%s", je.text);
	ck_assert_int_eq(h_gateway_start(&gw, cfg), 0);
	json_decref(cfg);
}

static void teardown(void)
{
	ck_assert_int_eq(h_stop(&gw, 5000), 0);
	h_stop(&fake, 2000);
}

/* Writes the fake has recorded since the last call (clears the record). */
static int fake_writes(const char *path_prefix)
{
	struct h_res r;
	json_t *e;
	size_t i;
	int n = 0;

	ck_assert_int_eq(h_request("GET", fake.port, "/__fake/requests", NULL, &r), 0);
	json_array_foreach(r.json, i, e) {
		const char *m = json_string_value(json_object_get(e, "method"));
		const char *u = json_string_value(json_object_get(e, "uri"));

		if (m && strcmp(m, "GET") != 0 && u &&
		    strncmp(u, path_prefix, strlen(path_prefix)) == 0)
			n++;
	}
	h_res_free(&r);
	ck_assert_int_eq(h_request("DELETE", fake.port, "/__fake/requests", NULL, &r), 0);
	h_res_free(&r);
	return n;
}

/* An agent id of the key's backend (from GET /v1/agents). */
static char *an_agent(void)
{
	struct h_res r;
	char *id;

	ck_assert_int_eq(h_get(gw.port, "/v1/agents", K, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	ck_assert_int_gt(json_array_size(json_object_get(r.json, "data")), 0);
	id = strdup(json_string_value(
	    json_object_get(json_array_get(json_object_get(r.json, "data"), 0), "id")));
	h_res_free(&r);
	return id;
}

static int listed(const char *sid)
{
	struct h_res r;
	json_t *s;
	size_t i;
	int found = 0;

	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=100", K, &r), 0);
	ck_assert_int_eq(r.status, 200);
	json_array_foreach(json_object_get(r.json, "data"), i, s)
		found |= strcmp(json_string_value(json_object_get(s, "id")), sid) == 0;
	h_res_free(&r);
	return found;
}

START_TEST(reads_after_a_write_see_it_through_every_worker)
{
	char *agent = an_agent(), body[512], sid[256], path[512];
	struct h_res r;
	int i;

	for (i = 0; i < 8; i++) /* both workers cache the listing */
		ck_assert(!listed("sesn_none"));
	snprintf(body, sizeof(body),
	         "{\"agent\":\"%s\",\"environment_id\":\"env_none\",\"title\":\"fresh\"}", agent);
	ck_assert_int_eq(h_send("POST", gw.port, "/v1/sessions", K, body, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "title")), "fresh");
	snprintf(sid, sizeof(sid), "%s", json_string_value(json_object_get(r.json, "id")));
	h_res_free(&r);
	for (i = 0; i < 10; i++)
		ck_assert_msg(listed(sid), "listing %d missed the new session", i);
	/* update: every retrieve shows the new title */
	snprintf(path, sizeof(path), "/v1/sessions/%s", sid);
	ck_assert_int_eq(h_send("POST", gw.port, path, K, "{\"title\":\"renamed\"}", &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	h_res_free(&r);
	for (i = 0; i < 6; i++) {
		ck_assert_int_eq(h_get(gw.port, path, K, &r), 0);
		ck_assert_str_eq(json_string_value(json_object_get(r.json, "title")), "renamed");
		h_res_free(&r);
	}
	/* delete: gone from every listing, and a 404 */
	ck_assert_int_eq(h_send("DELETE", gw.port, path, K, NULL, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "type")), "session_deleted");
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "id")), sid);
	h_res_free(&r);
	for (i = 0; i < 10; i++)
		ck_assert_msg(!listed(sid), "listing %d still shows the deleted session", i);
	ck_assert_int_eq(h_get(gw.port, path, K, &r), 0);
	ck_assert_int_eq(r.status, 404);
	h_res_free(&r);
	free(agent);
}
END_TEST

START_TEST(idempotency_key_answers_once)
{
	const char *const hk[] = {"x-api-key: sk-writer", "Content-Type: application/json",
	                          "Idempotency-Key: create-1", NULL};
	char *agent = an_agent(), body[512], other[512], first[4096];
	struct h_res r;

	fake_writes("/");
	snprintf(body, sizeof(body), "{\"agent\":\"%s\",\"environment_id\":\"env_none\"}", agent);
	snprintf(other, sizeof(other),
	         "{\"agent\":\"%s\",\"environment_id\":\"env_none\",\"title\":\"x\"}", agent);
	ck_assert_int_eq(h_send("POST", gw.port, "/v1/sessions", hk, body, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	ck_assert_str_eq(r.replayed, "");
	snprintf(first, sizeof(first), "%s", r.body);
	h_res_free(&r);
	/* the repeat, through whichever worker: the first answer, no second create */
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(h_send("POST", gw.port, "/v1/sessions", hk, body, &r), 0);
		ck_assert_int_eq(r.status, 200);
		ck_assert_str_eq(r.replayed, "true");
		ck_assert_str_eq(r.body, first);
		h_res_free(&r);
	}
	ck_assert_int_eq(fake_writes("/sessions/"), 1);
	/* the same key for another body: refused, not retried, nothing sent */
	ck_assert_int_eq(h_send("POST", gw.port, "/v1/sessions", hk, other, &r), 0);
	ck_assert_int_eq(r.status, 409);
	ck_assert_str_eq(r.should_retry, "false");
	h_res_free(&r);
	ck_assert_int_eq(fake_writes("/"), 0);
	/* a replayed error is this request's: body request_id = request-id header */
	{
		const char *const h2[] = {"x-api-key: sk-writer", "Content-Type: application/json",
		                          "Idempotency-Key: ghost-1", NULL};
		const char *ghost = "{\"agent\":\"no-such-agent\",\"environment_id\":\"env_none\"}";

		for (int i = 0; i < 2; i++) {
			ck_assert_int_eq(h_send("POST", gw.port, "/v1/sessions", h2, ghost, &r), 0);
			ck_assert_msg(r.status == 404, "%ld %s", r.status, r.body);
			ck_assert_str_eq(r.replayed, i ? "true" : "");
			ck_assert_str_eq(json_string_value(json_object_get(r.json, "request_id")),
			                 r.request_id);
			h_res_free(&r);
		}
	}
	/* a malformed key */
	{
		const char *const bad[] = {"x-api-key: sk-writer", "Content-Type: application/json",
		                           "Idempotency-Key: has space", NULL};

		ck_assert_int_eq(h_send("POST", gw.port, "/v1/sessions", bad, body, &r), 0);
		ck_assert_int_eq(r.status, 400);
		ck_assert_msg(strstr(r.body, "Idempotency-Key"), "%s", r.body);
		h_res_free(&r);
	}
	free(agent);
}
END_TEST

/* The client gives up while the backend is slow: the create still happens once, and the
 * client's retry with the same key gets its answer instead of creating a second one. */
START_TEST(a_write_whose_client_left_is_answered_to_its_retry)
{
	char *agent = an_agent(), body[512], cmd[1024];
	struct h_res r;
	int rc;

	fake_writes("/");
	snprintf(body, sizeof(body), "{\"agent\":\"%s\",\"environment_id\":\"env_none\"}", agent);
	ck_assert_int_eq(
	    h_request("POST", fake.port, "/__fake/mode?mode=slow&delay_ms=800", NULL, &r), 0);
	h_res_free(&r);
	snprintf(cmd, sizeof(cmd),
	         "curl -s -m 0.3 -X POST -H 'x-api-key: sk-writer' -H 'Content-Type: "
	         "application/json' -H 'Idempotency-Key: gone-1' -d '%s' "
	         "http://127.0.0.1:%d/v1/sessions >/dev/null 2>&1",
	         body, gw.port);
	rc = system(cmd);
	ck_assert_int_ne(rc, 0); /* curl gave up */
	sleep_ms(3000);          /* the create, then its read-back, at 800 ms each */
	ck_assert_int_eq(h_request("POST", fake.port, "/__fake/mode?mode=ok", NULL, &r), 0);
	h_res_free(&r);
	{
		const char *const hk[] = {"x-api-key: sk-writer", "Content-Type: application/json",
		                          "Idempotency-Key: gone-1", NULL};

		ck_assert_int_eq(h_send("POST", gw.port, "/v1/sessions", hk, body, &r), 0);
		ck_assert_msg(r.status == 200, "%s", r.body);
		ck_assert_str_eq(r.replayed, "true");
		ck_assert(listed(json_string_value(json_object_get(r.json, "id"))));
		h_res_free(&r);
	}
	ck_assert_int_eq(fake_writes("/sessions/"), 1);
	free(agent);
}
END_TEST

START_TEST(bad_bodies_reach_no_backend)
{
	static const char *const bodies[] = {
	    "not json",
	    "[]",
	    "{\"environment_id\":\"env_none\"}",
	    "{\"agent\":\"a\",\"environment_id\":\"env_none\",\"bogus\":1}",
	    "{\"agent\":{\"type\":\"agent\"},\"environment_id\":\"env_none\"}",
	};
	struct h_res r;
	char big[300000];

	fake_writes("/");
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		ck_assert_int_eq(h_send("POST", gw.port, "/v1/sessions", K, bodies[i], &r), 0);
		ck_assert_msg(r.status == 400, "%s: %ld %s", bodies[i], r.status, r.body);
		ck_assert_str_eq(r.should_retry, "false");
		h_res_free(&r);
	}
	memset(big, ' ', sizeof(big) - 3);
	memcpy(big + sizeof(big) - 3, "{}", 3);
	ck_assert_int_eq(h_send("POST", gw.port, "/v1/sessions", K, big, &r), 0);
	ck_assert_int_eq(r.status, 413);
	ck_assert_msg(strstr(r.body, "invalid_request_error"), "%s", r.body);
	ck_assert_msg(strstr(r.body, "at most 262144"), "%s", r.body);
	h_res_free(&r);
	ck_assert_int_eq(fake_writes("/"), 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("writes");
	TCase *t = tcase_create("writes");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, reads_after_a_write_see_it_through_every_worker);
	tcase_add_test(t, idempotency_key_answers_once);
	tcase_add_test(t, a_write_whose_client_left_is_answered_to_its_retry);
	tcase_add_test(t, bad_bodies_reach_no_backend);
	suite_add_tcase(s, t);
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
