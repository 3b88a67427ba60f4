/* test_fleet.c - two gateway instances sharing one redis-server in front of one fake
 * AgentScope service (issue 16): an Idempotency-Key create retried on the other instance creates
 * one session; a key's rate limit holds across both; with Redis stopped (SIGSTOP: it accepts
 * nothing and answers nothing) a write carrying a key gets a retryable 503 at once, rate limits
 * fall back to each instance's own, reads go on; once Redis answers again, so does the
 * gateway. */
#include <check.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct h_proc redis, fake, gw[2];
static const char *const K[] = {"x-api-key: sk-fleet", "Content-Type: application/json", NULL};
static const char *const KL[] = {"x-api-key: sk-limited", NULL};

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
	char h[65], hl[65], doc[4096];

	ck_assert_int_eq(h_redis_start(&redis, 0), 0);
	ck_assert_int_eq(h_fake_start(&fake, args), 0);
	h_hash_key("sk-fleet", h);
	h_hash_key("sk-limited", hl);
	snprintf(
	    doc, sizeof(doc),
	    "{\"workers\":2,\"cursor_secret\":\"fleet-test-secret-0123456789abcdef\","
	    "\"redis\":{\"address\":\"127.0.0.1:%d\",\"timeout_ms\":300,"
	    "\"connect_timeout_ms\":300},"
	    "\"backends\":[{\"name\":\"as\",\"mapping\":\"agentscope\",\"url\":"
	    "\"http://127.0.0.1:%d\",\"retries\":0,\"options\":{\"cache_ms\":60000,"
	    "\"chat_model_config\":" MODEL_CFG "}}],"
	    "\"keys\":[{\"name\":\"fleet\",\"sha256\":\"%s\",\"backends\":{\"as\":{\"user_id\":"
	    "\"alice\"}}},"
	    "{\"name\":\"limited\",\"sha256\":\"%s\",\"rate_limit\":{"
	    "\"requests_per_second\":0.2,\"burst\":4},"
	    "\"backends\":{\"as\":{\"user_id\":\"alice\"}}}]}",
	    redis.port, fake.port, h, hl);
	cfg = json_loads(doc, 0, &je);
	ck_assert_msg(cfg != NULL, "%s", je.text);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(h_gateway_start(&gw[i], cfg), 0);
	json_decref(cfg);
}

static void teardown(void)
{
	kill(redis.pid, SIGCONT);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(h_stop(&gw[i], 5000), 0);
	h_stop(&fake, 2000);
	h_stop(&redis, 2000);
}

static char *an_agent(void)
{
	struct h_res r;
	char *id;

	ck_assert_int_eq(h_get(gw[0].port, "/v1/agents", K, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	id = strdup(json_string_value(
	    json_object_get(json_array_get(json_object_get(r.json, "data"), 0), "id")));
	h_res_free(&r);
	return id;
}

/* Waits (at most 15 s: each worker reconnects on its own, after at most 5 s of backoff) until
 * instance i takes Idempotency-Key writes again on every worker: 8 in a row. */
static void wait_store_back(int i, const char *body)
{
	int streak = 0;

	for (int t = 0; t < 300 && streak < 8; t++) {
		char key[64];
		const char *hd[] = {K[0], K[1], key, NULL};
		struct h_res r;

		snprintf(key, sizeof(key), "Idempotency-Key: probe-back-%d-%d", i, t);
		ck_assert_int_eq(h_send("POST", gw[i].port, "/v1/sessions", hd, body, &r), 0);
		streak = r.status == 200 ? streak + 1 : 0;
		h_res_free(&r);
		if (streak == 0)
			sleep_ms(50);
	}
	ck_assert_msg(streak >= 8, "instance %d did not take Idempotency-Key writes again", i);
}

START_TEST(idempotent_create_retried_on_the_other_instance_creates_one_session)
{
	char *agent = an_agent(), body[512], other[512];
	const char *hd[] = {K[0], K[1], "Idempotency-Key: fleet-create-1", NULL};
	struct h_res a, b, c;

	snprintf(body, sizeof(body), "{\"agent\":\"%s\",\"environment_id\":\"env_x\"}", agent);
	snprintf(other, sizeof(other), "{\"agent\":\"%s\",\"environment_id\":\"env_y\"}", agent);
	h_fake_take(fake.port, "POST", "/sessions");
	ck_assert_int_eq(h_send("POST", gw[0].port, "/v1/sessions", hd, body, &a), 0);
	ck_assert_msg(a.status == 200, "%s", a.body);
	ck_assert_str_eq(a.replayed, "");
	ck_assert_int_eq(h_send("POST", gw[1].port, "/v1/sessions", hd, body, &b), 0);
	ck_assert_msg(b.status == 200, "%s", b.body);
	ck_assert_str_eq(b.replayed, "true");
	ck_assert_str_eq(json_string_value(json_object_get(a.json, "id")),
	                 json_string_value(json_object_get(b.json, "id")));
	ck_assert_int_eq(h_fake_take(fake.port, "POST", "/sessions/"),
	                 1); /* one create reached the backend */
	/* the same key with another body, on either instance: 409, not retried */
	ck_assert_int_eq(h_send("POST", gw[1].port, "/v1/sessions", hd, other, &c), 0);
	ck_assert_int_eq(c.status, 409);
	ck_assert_str_eq(c.should_retry, "false");
	h_res_free(&a);
	h_res_free(&b);
	h_res_free(&c);
	free(agent);
}
END_TEST

static int listed_on(int i, const char *sid)
{
	struct h_res r;
	json_t *s;
	size_t k;
	int found = 0;

	ck_assert_int_eq(h_get(gw[i].port, "/v1/sessions?limit=100", K, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	json_array_foreach(json_object_get(r.json, "data"), k, s)
		found |= strcmp(json_string_value(json_object_get(s, "id")), sid) == 0;
	h_res_free(&r);
	return found;
}

/* The listing is held for a minute (cache_ms 60000): only the fleet's write generation can
 * make instance 1 see a create made through instance 0, at once and on every worker; with
 * Redis stopped, reads go to the backend instead, so they are right too. */
START_TEST(a_write_on_one_instance_is_read_on_the_other)
{
	char *agent = an_agent(), body[512], sid[256];
	struct h_res r;

	for (int i = 0; i < 6; i++) /* both workers of both instances hold the listing */
		ck_assert(!listed_on(i % 2, "sesn_none"));
	snprintf(body, sizeof(body), "{\"agent\":\"%s\",\"environment_id\":\"env_x\"}", agent);
	ck_assert_int_eq(h_send("POST", gw[0].port, "/v1/sessions", K, body, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	snprintf(sid, sizeof(sid), "%s", json_string_value(json_object_get(r.json, "id")));
	h_res_free(&r);
	for (int i = 0; i < 6; i++)
		ck_assert_msg(listed_on(1, sid), "instance 1, read %d, missed the new session", i);

	kill(redis.pid, SIGSTOP);
	ck_assert_int_eq(h_send("POST", gw[1].port, "/v1/sessions", K, body, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	snprintf(sid, sizeof(sid), "%s", json_string_value(json_object_get(r.json, "id")));
	h_res_free(&r);
	for (int i = 0; i < 4; i++)
		ck_assert_msg(listed_on(0, sid), "instance 0 (redis stopped), read %d, missed it",
		              i);
	kill(redis.pid, SIGCONT);
	free(agent);
}
END_TEST

/* Waits (at most 3 s) until Redis holds a key matching pattern (the store is sent as the
 * listing is built; the page may be answered before Redis has it). */
static void wait_redis_key(const char *pattern)
{
	struct timeval tv = {1, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", redis.port, tv);
	int found = 0;

	ck_assert(c && !c->err);
	for (int t = 0; t < 60 && !found; t++) {
		redisReply *rep = redisCommand(c, "KEYS %s", pattern);

		found = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0;
		if (rep)
			freeReplyObject(rep);
		if (!found)
			sleep_ms(50);
	}
	redisFree(c);
	ck_assert_msg(found, "no key %s in redis", pattern);
}

/* The freshness window is the fleet's: a listing one instance read is served to the other from
 * Redis, on every worker, without another backend read; a write moves it on. */
START_TEST(a_listing_one_instance_read_serves_the_other)
{
	char *agent = an_agent(), body[512];
	struct h_res r;
	int first;

	h_fake_take(fake.port, "GET", "/sessions/?");
	ck_assert(!listed_on(0, "sesn_none"));
	first = h_fake_take(fake.port, "GET", "/sessions/?");
	ck_assert_int_gt(first, 0);
	wait_redis_key("sg:snap:*fresh:S:*");
	for (int i = 0; i < 6; i++)
		ck_assert(!listed_on(1, "sesn_none"));
	ck_assert_int_eq(h_fake_take(fake.port, "GET", "/sessions/?"), 0);
	/* after a write, the next read reads (and shares) again */
	snprintf(body, sizeof(body), "{\"agent\":\"%s\",\"environment_id\":\"env_x\"}", agent);
	ck_assert_int_eq(h_send("POST", gw[0].port, "/v1/sessions", K, body, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	h_res_free(&r);
	h_fake_take(fake.port, "GET", "/sessions/?");
	ck_assert(!listed_on(1, "sesn_none"));
	ck_assert_int_eq(h_fake_take(fake.port, "GET", "/sessions/?"), first);
	free(agent);
}
END_TEST

START_TEST(a_keys_rate_limit_holds_across_instances)
{
	int ok = 0, limited = 0;

	/* burst 4, 0.2 per second: 10 requests alternating between the instances within a
	 * second get 4 through (5 if a token came back meanwhile), not 4 per instance */
	for (int i = 0; i < 10; i++) {
		struct h_res r;

		ck_assert_int_eq(h_get(gw[i % 2].port, "/v1/agents", KL, &r), 0);
		if (r.status == 200)
			ok++;
		else if (r.status == 429) {
			limited++;
			ck_assert_str_ne(r.retry_after, "");
		}
		h_res_free(&r);
	}
	ck_assert_int_ge(ok, 4);
	ck_assert_int_le(ok, 5);
	ck_assert_int_eq(ok + limited, 10);
}
END_TEST

START_TEST(redis_stopped_then_back)
{
	char *agent = an_agent(), body[512];
	const char *hd[] = {K[0], K[1], "Idempotency-Key: fleet-while-down", NULL};
	struct h_res r;
	int ok = 0;

	snprintf(body, sizeof(body), "{\"agent\":\"%s\",\"environment_id\":\"env_x\"}", agent);
	kill(redis.pid, SIGSTOP);
	h_fake_take(fake.port, "POST", "/sessions");
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(h_send("POST", gw[i].port, "/v1/sessions", hd, body, &r), 0);
		ck_assert_msg(r.status == 503, "%ld %s", r.status, r.body);
		ck_assert_str_eq(r.should_retry, "true");
		ck_assert_str_eq(
		    json_string_value(json_object_get(json_object_get(r.json, "error"), "type")),
		    "overloaded_error");
		ck_assert(r.seconds < 2.0); /* bounded by redis.timeout_ms, never a hang */
		h_res_free(&r);
	}
	ck_assert_int_eq(h_fake_take(fake.port, "POST", "/sessions/"), 0); /* nothing was created */
	/* a write without a key and every read go on */
	ck_assert_int_eq(h_get(gw[0].port, "/v1/sessions?limit=5", K, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_res_free(&r);
	/* the rate-limited key: each instance's own bucket (rate_limits_when_down: allow) */
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(h_get(gw[i % 2].port, "/v1/agents", KL, &r), 0);
		ck_assert(r.status == 200 || r.status == 429);
		ok += r.status == 200;
		h_res_free(&r);
	}
	ck_assert_int_ge(ok, 1);
	kill(redis.pid, SIGCONT);
	for (int i = 0; i < 2; i++)
		wait_store_back(i, body);
	/* and the key that was refused now runs once */
	ck_assert_int_eq(h_send("POST", gw[1].port, "/v1/sessions", hd, body, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	h_res_free(&r);
	free(agent);
}
END_TEST

/* rate_limits_when_down "refuse", with no Redis at all (nothing listens on its port): a
 * rate-limited key gets a retryable 503 at once, a key without a limit is served. */
START_TEST(refuse_rate_limits_when_redis_is_down)
{
	struct h_proc lone;
	const char *args[] = {"--generate", "3:1", NULL};
	struct h_proc fk;
	json_error_t je;
	json_t *cfg;
	struct h_res r;
	char h[65], hl[65], doc[2048];

	ck_assert_int_eq(h_fake_start(&fk, args), 0);
	h_hash_key("sk-fleet", h);
	h_hash_key("sk-limited", hl);
	snprintf(doc, sizeof(doc),
	         "{\"workers\":1,\"cursor_secret\":\"fleet-test-secret-0123456789abcdef\","
	         "\"redis\":{\"address\":\"127.0.0.1:%d\",\"timeout_ms\":200,"
	         "\"connect_timeout_ms\":200,\"rate_limits_when_down\":\"refuse\"},"
	         "\"backends\":[{\"name\":\"as\",\"mapping\":\"agentscope\",\"url\":"
	         "\"http://127.0.0.1:%d\"}],"
	         "\"keys\":[{\"name\":\"fleet\",\"sha256\":\"%s\",\"backends\":{\"as\":{"
	         "\"user_id\":\"alice\"}}},{\"name\":\"limited\",\"sha256\":\"%s\","
	         "\"rate_limit\":{\"requests_per_second\":100,\"burst\":100},"
	         "\"backends\":{\"as\":{\"user_id\":\"alice\"}}}]}",
	         h_free_port(), fk.port, h, hl);
	cfg = json_loads(doc, 0, &je);
	ck_assert_msg(cfg != NULL, "%s", je.text);
	ck_assert_int_eq(h_gateway_start(&lone, cfg), 0);
	json_decref(cfg);
	ck_assert_int_eq(h_get(lone.port, "/v1/agents", KL, &r), 0);
	ck_assert_msg(r.status == 503, "%ld %s", r.status, r.body);
	ck_assert_str_eq(r.should_retry, "true");
	ck_assert_str_eq(r.retry_after, "1");
	ck_assert(r.seconds < 2.0);
	h_res_free(&r);
	ck_assert_int_eq(h_get(lone.port, "/v1/agents", K, &r), 0);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	h_res_free(&r);
	ck_assert_int_eq(h_stop(&lone, 5000), 0);
	h_stop(&fk, 2000);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("fleet");
	TCase *tc = tcase_create("two instances, one redis");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, idempotent_create_retried_on_the_other_instance_creates_one_session);
	tcase_add_test(tc, a_keys_rate_limit_holds_across_instances);
	tcase_add_test(tc, a_write_on_one_instance_is_read_on_the_other);
	tcase_add_test(tc, a_listing_one_instance_read_serves_the_other);
	tcase_add_test(tc, redis_stopped_then_back);
	suite_add_tcase(s, tc);
	tc = tcase_create("no redis");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, refuse_rate_limits_when_redis_is_down);
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
