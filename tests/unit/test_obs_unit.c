/* test_obs_unit.c - the pure parts of observability: the access log's JSON line and its
 * cleaning of client-controlled values, the JSON string escaper, CORS header lists, and the
 * metrics registry's exposition (label escaping, summing the shards, histograms). */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accesslog.h"
#include "cors.h"
#include "log.h"
#include "metrics.h"
#include "routes.h"

START_TEST(access_json_survives_hostile_values)
{
	char xff[600];
	struct sg_access a = {0};
	json_t *j;
	char *line;

	memset(xff, 'x', sizeof(xff) - 1);
	xff[sizeof(xff) - 1] = '\0';
	memcpy(xff, "1.2.3.4\n\",\"status\":1,\"k\":\"\\\x01\xff", 29);
	a.id = "req_1";
	a.start_us = 1767322800123456LL; /* 2026-01-02T03:00:00.123Z */
	a.method = "GET";
	a.route = "GET /v1/sessions";
	a.status = 200;
	a.xff = xff;
	a.front_id = "abc \"def\"\r\n{}";
	a.upstream_us = 1500;
	a.total_us = 2500;
	a.error_type = NULL;
	line = sg_access_json(&a);
	ck_assert_ptr_nonnull(line);
	ck_assert_ptr_null(strchr(line, '\n'));
	j = json_loads(line, 0, NULL);
	ck_assert_msg(j != NULL, "%s", line);
	ck_assert_str_eq(json_string_value(json_object_get(j, "time")), "2026-01-02T03:00:00.123Z");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 200);
	ck_assert_ptr_null(json_object_get(j, "k"));
	ck_assert_uint_eq(strlen(json_string_value(json_object_get(j, "x_forwarded_for"))),
	                  SG_ACCESS_XFF_MAX);
	ck_assert_int_eq(strncmp(json_string_value(json_object_get(j, "x_forwarded_for")),
	                         "1.2.3.4?\",\"status\":1,\"k\":\"\\??", 29),
	                 0);
	ck_assert_str_eq(json_string_value(json_object_get(j, "front_request_id")),
	                 "abc__def_____");
	ck_assert(json_is_null(json_object_get(j, "key")));
	ck_assert(json_is_null(json_object_get(j, "error_type")));
	ck_assert_double_eq_tol(json_number_value(json_object_get(j, "upstream_ms")), 1.5, 1e-9);
	ck_assert(json_is_false(json_object_get(j, "stream")));
	json_decref(j);
	free(line);
}
END_TEST

START_TEST(json_strings_stay_valid_when_cut)
{
	char out[32];

	for (size_t len = 3; len <= sizeof(out); len++) {
		size_t pos = 0;
		json_t *j;

		out[0] = '\0';
		sg_log_json_str(out, len, &pos,
		                "a\"b\\c\nd\x01\xe9 long enough to be cut somewhere");
		ck_assert_uint_lt(pos, len);
		j = json_loads(out, JSON_DECODE_ANY, NULL);
		ck_assert_msg(json_is_string(j), "len %zu: %s", len, out);
		json_decref(j);
	}
}
END_TEST

START_TEST(cors_allow_headers)
{
	char out[256];

	sg_cors_allow_headers("X-API-Key, content-type,x-evil ,X-Stainless-OS,x-api-key,"
	                      "x-stainless-,anthropic-beta",
	                      out, sizeof(out));
	ck_assert_str_eq(out, "x-api-key, content-type, x-stainless-os, anthropic-beta");
	sg_cors_allow_headers(NULL, out, sizeof(out));
	ck_assert_str_eq(out, "");
	sg_cors_allow_headers("cookie, x-forwarded-for", out, sizeof(out));
	ck_assert_str_eq(out, "");
}
END_TEST

/* The index of a route in the table (the metrics count by it). */
static int route_index(const char *method, const char *pattern)
{
	for (int i = 0; sg_routes[i].method; i++)
		if (!strcmp(sg_routes[i].method, method) && !strcmp(sg_routes[i].pattern, pattern))
			return i;
	ck_abort_msg("no route %s %s", method, pattern);
	return -1;
}

START_TEST(metrics_sum_shards_and_escape)
{
	struct sg_metrics *m = sg_metrics_new(2, sg_routes);
	struct sg_metrics_shard *s0 = sg_metrics_shard(m, 0), *s1 = sg_metrics_shard(m, 1);
	int weird = sg_metrics_backend(s0, "we\"ird\\na\nme"), as = sg_metrics_backend(s1, "as");
	int list = route_index("GET", "/v1/sessions"),
	    get = route_index("GET", "/v1/sessions/{id}");
	size_t len;
	char *text;

	ck_assert_int_eq(weird, 0);
	ck_assert_int_eq(as, 1);
	ck_assert_int_eq(sg_metrics_backend(s0, "as"), 1); /* one table for the process */
	ck_assert_int_eq(sg_metrics_backend(s0, NULL), SG_MB_NONE);
	ck_assert_ptr_null(sg_metrics_shard(m, 2));
	sg_metrics_request(s0, list, 200, as);
	sg_metrics_request(s1, list, 200, as);
	sg_metrics_request(s1, list, 200, as);
	sg_metrics_request(s0, SG_MR_UNMATCHED, 404, SG_MB_NONE);
	sg_metrics_request(s0, get, 502, weird);
	sg_metrics_error(s0, "not_found_error");
	sg_metrics_error(s1, "something_new");
	sg_metrics_upstream(s0, as, 700);     /* ≤ 1 ms */
	sg_metrics_upstream(s1, as, 3000000); /* ≤ 5 s */
	sg_metrics_gauge(&s0->inflight, 1);
	sg_metrics_gauge(&s1->inflight, 1);
	sg_metrics_gauge(&s1->inflight, -1);
	sg_metrics_refused(s1, as, SG_REFUSED_BREAKER);
	sg_metrics_request(NULL, list, 200, as); /* no shard: nothing, no crash */
	text = sg_metrics_render(m, &len);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(strlen(text), len);
#define HAS(s) ck_assert_msg(strstr(text, s "\n") != NULL, "missing: %s\n%s", s, text)
	HAS("sessiongate_requests_total{route=\"GET /v1/sessions\",status=\"200\",backend=\"as\"} "
	    "3");
	HAS("sessiongate_requests_total{route=\"unmatched\",status=\"404\",backend=\"-\"} 1");
	HAS("sessiongate_requests_total{route=\"GET /v1/sessions/{id}\",status=\"502\","
	    "backend=\"we\\\"ird\\\\na\\nme\"} 1");
	HAS("sessiongate_errors_total{type=\"not_found_error\"} 1");
	HAS("sessiongate_errors_total{type=\"other\"} 1");
	HAS("sessiongate_requests_in_flight 1");
	HAS("sessiongate_upstream_request_duration_seconds_bucket{backend=\"as\",le=\"0.001\"} 1");
	HAS("sessiongate_upstream_request_duration_seconds_bucket{backend=\"as\",le=\"2.5\"} 1");
	HAS("sessiongate_upstream_request_duration_seconds_bucket{backend=\"as\",le=\"5\"} 2");
	HAS("sessiongate_upstream_request_duration_seconds_bucket{backend=\"as\",le=\"+Inf\"} 2");
	HAS("sessiongate_upstream_request_duration_seconds_sum{backend=\"as\"} 3.000700");
	HAS("sessiongate_upstream_request_duration_seconds_count{backend=\"as\"} 2");
	HAS("sessiongate_refused_total{backend=\"as\",reason=\"breaker\"} 1");
	HAS("# TYPE sessiongate_requests_total counter");
	HAS("# TYPE sessiongate_upstream_request_duration_seconds histogram");
#undef HAS
	free(text);
	sg_metrics_free(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("obs_unit");
	TCase *tc = tcase_create("obs_unit");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, access_json_survives_hostile_values);
	tcase_add_test(tc, json_strings_stay_valid_when_cut);
	tcase_add_test(tc, cors_allow_headers);
	tcase_add_test(tc, metrics_sum_shards_and_escape);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
