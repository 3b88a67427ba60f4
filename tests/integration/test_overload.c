/* test_overload.c - protection against too much (overload.h), against the real gateway and
 * the fake AgentScope: a key's request rate (429 rate_limit_error with retry-after), a
 * backend's concurrency bound and its circuit breaker (503 overloaded_error, x-should-retry:
 * true, retry-after, no backend call while open, a probe that closes it), and a backend's own
 * Retry-After passed on. */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

static struct h_proc fake, gw;
static int mport; /* the gateway's metrics.listen */
static const char *const K[] = {"x-api-key: sk-free", NULL};
static const char *const K_LIMITED[] = {"x-api-key: sk-limited", NULL};

static void sleep_ms(long ms)
{
	struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&d, NULL);
}

static void setup(void)
{
	const char *args[] = {"--generate", "6:1", "--seed", "5", NULL};
	char hf[65], hl[65], doc[2048];
	json_error_t je;
	json_t *cfg;

	ck_assert_int_eq(h_fake_start(&fake, args), 0);
	h_hash_key("sk-free", hf);
	h_hash_key("sk-limited", hl);
	snprintf(doc, sizeof(doc),
	         "{\"workers\":2,\"cursor_secret\":\"overload-test-secret-0123456789abcdef\","
	         "\"backends\":[{\"name\":\"as\",\"mapping\":\"agentscope\",\"url\":"
	         "\"http://127.0.0.1:%d\",\"retries\":0,\"max_concurrent\":1,"
	         "\"breaker\":{\"failures\":2,\"open_ms\":700},\"options\":{\"cache_ms\":0}}],"
	         "\"keys\":[{\"name\":\"free\",\"sha256\":\"%s\",\"backends\":{\"as\":{"
	         "\"user_id\":\"alice\"}}},"
	         "{\"name\":\"limited\",\"sha256\":\"%s\",\"rate_limit\":{"
	         "\"requests_per_second\":0.5,\"burst\":2},\"backends\":{\"as\":{"
	         "\"user_id\":\"alice\"}}}]}",
	         fake.port, hf, hl);
	cfg = json_loads(doc, 0, &je);
	ck_assert_msg(cfg != NULL, "%s", je.text);
	mport = h_free_port();
	json_object_set_new(cfg, "metrics",
	                    json_pack("{s:o}", "listen", json_sprintf("127.0.0.1:%d", mport)));
	ck_assert_int_eq(h_gateway_start(&gw, cfg), 0);
	json_decref(cfg);
}

static void teardown(void)
{
	ck_assert_int_eq(h_stop(&gw, 5000), 0);
	h_stop(&fake, 2000);
}

static void fake_mode(const char *mode)
{
	char path[128];
	struct h_res r;

	snprintf(path, sizeof(path), "/__fake/mode?%s", mode);
	ck_assert_int_eq(h_send("POST", fake.port, path, NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_res_free(&r);
}

static int backend_requests(void)
{
	struct h_res r;
	int n;

	ck_assert_int_eq(h_get(fake.port, "/__fake/requests", NULL, &r), 0);
	n = (int)json_array_size(r.json);
	h_res_free(&r);
	ck_assert_int_eq(h_request("DELETE", fake.port, "/__fake/requests", NULL, &r), 0);
	h_res_free(&r);
	return n;
}

/* A sample's value from GET /metrics (the whole "name{labels}"), 0 when absent. */
static double metric(const char *sample)
{
	struct h_res r;
	double v = 0;
	size_t n = strlen(sample);

	ck_assert_int_eq(h_get(mport, "/metrics", NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	for (const char *l = r.body; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, sample, n) == 0 && l[n] == ' ')
			v = strtod(l + n + 1, NULL);
	h_res_free(&r);
	return v;
}

static void expect(const struct h_res *r, long status, const char *type)
{
	ck_assert_msg(r->status == status, "%ld %s", r->status, r->body);
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(r->json, "error"), "type")), type);
}

START_TEST(a_key_over_its_rate_gets_429_with_retry_after)
{
	struct h_res r;

	for (int i = 0; i < 2; i++) { /* the burst */
		ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=1", K_LIMITED, &r), 0);
		ck_assert_msg(r.status == 200, "%s", r.body);
		h_res_free(&r);
	}
	backend_requests();
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=1", K_LIMITED, &r), 0);
	expect(&r, 429, "rate_limit_error");
	ck_assert_str_eq(r.should_retry, "true");
	ck_assert_msg(atoi(r.retry_after) >= 1 && atoi(r.retry_after) <= 2, "retry-after '%s'",
	              r.retry_after);
	ck_assert_msg(strstr(r.body, "rate limit"), "%s", r.body);
	h_res_free(&r);
	ck_assert_double_eq(metric("sessiongate_rate_limited_total"), 1);
	ck_assert_int_eq(backend_requests(), 0); /* refused before any backend call */
	/* another key is not held back */
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=1", K, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_res_free(&r);
	/* 0.5 per second: a token is back after 2 s */
	sleep_ms(2100);
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=1", K_LIMITED, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_res_free(&r);
}
END_TEST

struct bg {
	struct h_res res;
};

static void *bg_list(void *arg)
{
	struct bg *b = arg;

	h_get(gw.port, "/v1/sessions?limit=1", K, &b->res);
	return NULL;
}

START_TEST(a_backend_at_its_concurrency_bound_gets_503)
{
	struct bg b = {0};
	pthread_t th;
	struct h_res r;

	fake_mode("mode=slow&delay_ms=600");
	ck_assert_int_eq(pthread_create(&th, NULL, bg_list, &b), 0);
	sleep_ms(150);
	/* another listing (an agent filter), so it cannot wait for the first one's read */
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=1&agent_id=other", K, &r), 0);
	expect(&r, 503, "overloaded_error");
	ck_assert_str_eq(r.should_retry, "true");
	ck_assert_msg(strstr(r.body, "max_concurrent"), "%s", r.body);
	ck_assert_str_eq(r.retry_after, "1");
	h_res_free(&r);
	ck_assert_double_eq(
	    metric("sessiongate_refused_total{backend=\"as\",reason=\"concurrency\"}"), 1);
	ck_assert_double_eq(metric("sessiongate_refused_total{backend=\"as\",reason=\"breaker\"}"),
	                    0);
	pthread_join(th, NULL);
	ck_assert_msg(b.res.status == 200, "%s", b.res.body);
	h_res_free(&b.res);
	fake_mode("mode=ok&delay_ms=0");
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=1", K, &r), 0);
	ck_assert_int_eq(r.status, 200); /* the slot came back */
	h_res_free(&r);
}
END_TEST

START_TEST(a_failing_backend_opens_its_breaker_and_a_probe_closes_it)
{
	struct h_res r;

	fake_mode("mode=http500");
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=1", K, &r), 0);
		ck_assert_msg(r.status >= 500 && r.status != 503, "%ld %s", r.status, r.body);
		h_res_free(&r);
	}
	backend_requests();
	/* open: answered at once, the backend not asked */
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=1", K, &r), 0);
	expect(&r, 503, "overloaded_error");
	ck_assert_str_eq(r.should_retry, "true");
	ck_assert_msg(strstr(r.body, "breaker open"), "%s", r.body);
	ck_assert_msg(atoi(r.retry_after) == 1, "retry-after '%s'", r.retry_after); /* 700 ms */
	h_res_free(&r);
	ck_assert_int_eq(backend_requests(), 0);
	ck_assert_double_eq(metric("sessiongate_refused_total{backend=\"as\",reason=\"breaker\"}"),
	                    1);
	ck_assert_double_eq(metric("sessiongate_errors_total{type=\"overloaded_error\"}"), 1);
	/* the backend recovers; after open_ms one probe goes and closes the breaker */
	fake_mode("mode=ok");
	sleep_ms(800);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=1", K, &r), 0);
		ck_assert_msg(r.status == 200, "%d: %ld %s", i, r.status, r.body);
		h_res_free(&r);
	}
	ck_assert_int_ge(backend_requests(), 3);
}
END_TEST

START_TEST(a_backends_retry_after_is_passed_on)
{
	struct h_res r;

	fake_mode("mode=busy");
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=1", K, &r), 0);
	ck_assert_msg(r.status >= 500, "%ld %s", r.status, r.body);
	ck_assert_msg(strstr(r.body, "\"error\""), "%s", r.body);
	ck_assert_str_eq(r.retry_after, "7"); /* the backend's own */
	h_res_free(&r);
	fake_mode("mode=ok");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("overload");
	TCase *tc = tcase_create("overload");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, a_key_over_its_rate_gets_429_with_retry_after);
	tcase_add_test(tc, a_backend_at_its_concurrency_bound_gets_503);
	tcase_add_test(tc, a_failing_backend_opens_its_breaker_and_a_probe_closes_it);
	tcase_add_test(tc, a_backends_retry_after_is_passed_on);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
