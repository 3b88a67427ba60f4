/* test_snapshots.c - walks served from what their first page read (api_read.c), against the
 * real gateway (two workers, so a walk's pages land on both) and the fake AgentScope:
 *  - while the backend changes under a walk (a session created, one deleted), the walk still
 *    sees exactly the sessions its first page saw, once each, without asking the backend;
 *  - a cursor whose snapshot has gone (expired) falls back to the keyset position it carries:
 *    the rest of the walk is the current listing after that position, once each;
 *  - with no cache budget at all nothing is held, and walks still work by keyset. */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define MODEL_CFG "{\"type\":\"anthropic_credential\",\"credential_id\":\"c1\",\"model\":\"m1\"}"
#define SNAPSHOT_MS 1500

static struct h_proc fake, gw, gw_nocache;
static const char *const K[] = {"x-api-key: sk-walker", NULL};
static const char *const K_FRESH[] = {"x-api-key: sk-walker", "Cache-Control: no-cache", NULL};

static void sleep_ms(long ms)
{
	struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&d, NULL);
}

static json_t *config(int port, const char *cache, int workers)
{
	char h[65], doc[2048];
	json_error_t je;
	json_t *cfg;

	h_hash_key("sk-walker", h);
	snprintf(doc, sizeof(doc),
	         "{\"workers\":%d,\"cursor_secret\":\"snapshot-test-secret-0123456789abcdef\","
	         "\"cache\":%s,"
	         "\"backends\":[{\"name\":\"as\",\"mapping\":\"agentscope\",\"url\":"
	         "\"http://127.0.0.1:%d\",\"retries\":0,\"options\":{"
	         "\"chat_model_config\":" MODEL_CFG "}}],"
	         "\"keys\":[{\"name\":\"walker\",\"sha256\":\"%s\",\"backends\":{\"as\":{"
	         "\"user_id\":\"alice\"}}}]}",
	         workers, cache, port, h);
	cfg = json_loads(doc, 0, &je);
	ck_assert_msg(cfg != NULL, "%s", je.text);
	return cfg;
}

static void setup(void)
{
	const char *args[] = {"--generate", "30:1", "--seed", "7", "--run-ms", "100", NULL};
	char cache[128];
	json_t *cfg;

	ck_assert_int_eq(h_fake_start(&fake, args), 0);
	snprintf(cache, sizeof(cache), "{\"walk_snapshot_ms\":%d}", SNAPSHOT_MS);
	cfg = config(fake.port, cache, 2);
	ck_assert_int_eq(h_gateway_start(&gw, cfg), 0);
	json_decref(cfg);
	cfg = config(fake.port, "{\"max_bytes\":0}", 1); /* one worker: flights meet */
	ck_assert_int_eq(h_gateway_start(&gw_nocache, cfg), 0);
	json_decref(cfg);
}

static void teardown(void)
{
	ck_assert_int_eq(h_stop(&gw, 5000), 0);
	ck_assert_int_eq(h_stop(&gw_nocache, 5000), 0);
	h_stop(&fake, 2000);
}

/* Listing reads (GET /sessions/) the fake has seen since the last call (clears the record). */
static int listing_reads(void)
{
	struct h_res r;
	json_t *e;
	size_t i;
	int n = 0;

	ck_assert_int_eq(h_get(fake.port, "/__fake/requests", NULL, &r), 0);
	json_array_foreach(r.json, i, e) {
		const char *m = json_string_value(json_object_get(e, "method"));
		const char *u = json_string_value(json_object_get(e, "uri"));

		if (m && strcmp(m, "GET") == 0 && u && strncmp(u, "/sessions/?", 11) == 0)
			n++;
	}
	h_res_free(&r);
	ck_assert_int_eq(h_request("DELETE", fake.port, "/__fake/requests", NULL, &r), 0);
	h_res_free(&r);
	return n;
}

/* One page: its ids appended to ids, its next_page (malloc'd, NULL at the end). */
static char *page(int port, const char *const *hdrs, const char *query, const char *cursor,
                  json_t *ids)
{
	char path[4096];
	struct h_res r;
	json_t *s, *next;
	size_t i;
	char *out = NULL;

	snprintf(path, sizeof(path), "/v1/sessions?%s%s%s", query, cursor ? "&page=" : "",
	         cursor ? cursor : "");
	ck_assert_int_eq(h_get(port, path, hdrs, &r), 0);
	ck_assert_msg(r.status == 200, "%s: %s", path, r.body);
	json_array_foreach(json_object_get(r.json, "data"), i, s)
		json_array_append(ids, json_object_get(s, "id"));
	next = json_object_get(r.json, "next_page");
	if (json_is_string(next))
		out = strdup(json_string_value(next));
	h_res_free(&r);
	return out;
}

/* Every id of a walk from cursor (NULL: the first page) to the end. */
static void walk_rest(int port, const char *const *hdrs, const char *query, char *cursor,
                      json_t *ids)
{
	int pages = 0;

	while (cursor) {
		char *next = page(port, hdrs, query, cursor, ids);

		free(cursor);
		cursor = next;
		ck_assert_int_lt(++pages, 100);
	}
}

static json_t *fresh_listing(const char *query)
{
	json_t *ids = json_array();

	walk_rest(gw.port, K_FRESH, query, page(gw.port, K_FRESH, query, NULL, ids), ids);
	return ids;
}

static int index_of(const json_t *ids, const char *id)
{
	json_t *v;
	size_t i;

	json_array_foreach(ids, i, v)
		if (strcmp(json_string_value(v), id) == 0)
			return (int)i;
	return -1;
}

static void assert_unique(const json_t *ids)
{
	for (size_t i = 0; i < json_array_size(ids); i++)
		ck_assert_msg(index_of(ids, json_string_value(json_array_get(ids, i))) == (int)i,
		              "the walk repeated %s", json_string_value(json_array_get(ids, i)));
}

/* A new session on the backend, through the gateway: its id (malloc'd). */
static char *create_session(void)
{
	struct h_res r;
	char body[512], *agent, *sid;

	ck_assert_int_eq(h_get(gw.port, "/v1/agents", K, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	agent = strdup(json_string_value(
	    json_object_get(json_array_get(json_object_get(r.json, "data"), 0), "id")));
	h_res_free(&r);
	snprintf(body, sizeof(body),
	         "{\"agent\":\"%s\",\"environment_id\":\"env_none\",\"title\":\"mid-walk\"}",
	         agent);
	free(agent);
	ck_assert_int_eq(h_send("POST", gw.port, "/v1/sessions", K, body, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	sid = strdup(json_string_value(json_object_get(r.json, "id")));
	h_res_free(&r);
	return sid;
}

static void delete_session(const char *sid)
{
	char path[512];
	struct h_res r;

	snprintf(path, sizeof(path), "/v1/sessions/%s", sid);
	ck_assert_int_eq(h_send("DELETE", gw.port, path, K, NULL, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	h_res_free(&r);
}

START_TEST(a_walk_sees_the_listing_its_first_page_read)
{
	const char *q = "limit=7&order=asc";
	json_t *before = fresh_listing(q), *walk = json_array(), *after;
	char *cursor, *made, *gone;

	ck_assert_int_ge(json_array_size(before), 30);
	cursor = page(gw.port, K, q, NULL, walk);
	ck_assert_ptr_nonnull(cursor);
	/* the backend changes under the walk: a session ahead of it goes, a new one (the newest,
	 * so last in ascending order) comes */
	gone = strdup(json_string_value(json_array_get(before, 20)));
	delete_session(gone);
	made = create_session();
	listing_reads();
	walk_rest(gw.port, K, q, cursor, walk);
	/* exactly what the first page saw, in order, once each, and no backend read for it */
	ck_assert_msg(json_equal(walk, before), "the walk differs from its first page's listing");
	ck_assert_int_eq(listing_reads(), 0);
	/* the backend did change: a fresh walk sees it */
	after = fresh_listing(q);
	ck_assert_int_lt(index_of(after, gone), 0);
	ck_assert_int_eq(index_of(after, made), (int)json_array_size(after) - 1);
	json_decref(before);
	json_decref(walk);
	json_decref(after);
	free(gone);
	free(made);
}
END_TEST

START_TEST(a_cursor_whose_snapshot_has_gone_falls_back_to_its_position)
{
	const char *q = "limit=6&order=asc";
	json_t *walk = json_array(), *now;
	const char *last;
	char *cursor, *made;
	int at;

	cursor = page(gw.port, K, q, NULL, walk);
	ck_assert_ptr_nonnull(cursor);
	made = create_session();
	sleep_ms(SNAPSHOT_MS + 700); /* the snapshot and the freshness window both expire */
	listing_reads();
	walk_rest(gw.port, K, q, cursor, walk);
	ck_assert_int_ge(listing_reads(), 1); /* read again: the snapshot was gone */
	/* the rest is the current listing after the first page's last session */
	now = fresh_listing(q);
	last = json_string_value(json_array_get(walk, 5));
	at = index_of(now, last);
	ck_assert_int_ge(at, 0);
	ck_assert_int_eq(json_array_size(walk), 6 + json_array_size(now) - (size_t)at - 1);
	for (size_t i = 6; i < json_array_size(walk); i++)
		ck_assert_str_eq(json_string_value(json_array_get(walk, i)),
		                 json_string_value(json_array_get(now, (size_t)at + 1 + i - 6)));
	ck_assert_int_ge(index_of(walk, made), 0); /* created before the fallback read: seen */
	assert_unique(walk);
	json_decref(walk);
	json_decref(now);
	free(made);
}
END_TEST

START_TEST(with_no_cache_budget_walks_go_by_keyset)
{
	const char *q = "limit=9";
	json_t *walk = json_array(), *now = fresh_listing(q);
	int pages;

	listing_reads();
	walk_rest(gw_nocache.port, K, q, page(gw_nocache.port, K, q, NULL, walk), walk);
	pages = (int)(json_array_size(now) + 8) / 9;
	ck_assert_msg(json_equal(walk, now), "the keyset walk differs from the listing");
	ck_assert_int_ge(listing_reads(), pages); /* nothing held: every page read the backend */
	json_decref(walk);
	json_decref(now);
}
END_TEST

struct bg_get {
	int port;
	const char *path;
	struct h_res res;
	int rc;
};

static void *bg_get(void *arg)
{
	struct bg_get *g = arg;

	g->rc = h_get(g->port, g->path, K, &g->res);
	return NULL;
}

/* The first reader of path gives up after 200 ms, long before the slowed backend answers;
 * a second request for the same thing, started while the first reads, is still answered.
 * Returns the backend reads (GET) the fake saw meanwhile. */
static int leader_leaves(const char *path, struct h_res *out)
{
	struct bg_get b = {.port = gw_nocache.port, .path = path};
	struct h_res r;
	pthread_t th;
	char cmd[1024];
	int reads;

	ck_assert_int_eq(
	    h_send("POST", fake.port, "/__fake/mode?mode=slow&delay_ms=600", NULL, NULL, &r), 0);
	h_res_free(&r);
	ck_assert_int_eq(h_request("DELETE", fake.port, "/__fake/requests", NULL, &r), 0);
	h_res_free(&r);
	snprintf(
	    cmd, sizeof(cmd),
	    "curl -s -m 0.2 -H 'x-api-key: sk-walker' 'http://127.0.0.1:%d%s' >/dev/null 2>&1 &",
	    gw_nocache.port, path);
	ck_assert_int_eq(system(cmd), 0);
	sleep_ms(80);
	ck_assert_int_eq(pthread_create(&th, NULL, bg_get, &b), 0); /* waits for that read */
	pthread_join(th, NULL);
	ck_assert_int_eq(b.rc, 0);
	ck_assert_int_eq(h_get(fake.port, "/__fake/requests", NULL, &r), 0);
	reads = (int)json_array_size(r.json);
	h_res_free(&r);
	ck_assert_int_eq(
	    h_send("POST", fake.port, "/__fake/mode?mode=ok&delay_ms=0", NULL, NULL, &r), 0);
	h_res_free(&r);
	*out = b.res;
	return reads;
}

/* A listing no one holds is read once per worker while the requests that need it wait for
 * that read; when the request that reads it goes away first (its client left), a waiter
 * reads in its place and is answered. The same for a retrieve. */
START_TEST(a_waiting_request_outlives_the_reader_it_waited_for)
{
	struct h_res r, got;
	char path[512];
	int reads;

	reads = leader_leaves("/v1/sessions?limit=5", &got);
	ck_assert_msg(got.status == 200, "%s", got.body);
	ck_assert_uint_eq(json_array_size(json_object_get(got.json, "data")), 5);
	/* the agents and the listing, read by the leader and again by the waiter: at most 4 */
	ck_assert_int_le(reads, 4);
	snprintf(path, sizeof(path), "/v1/sessions/%s",
	         json_string_value(
	             json_object_get(json_array_get(json_object_get(got.json, "data"), 2), "id")));
	h_res_free(&got);
	reads = leader_leaves(path, &got);
	ck_assert_msg(got.status == 200, "%s", got.body);
	ck_assert_str_eq(json_string_value(json_object_get(got.json, "id")), path + 13);
	ck_assert_int_le(reads, 4);
	h_res_free(&got);
	ck_assert_int_eq(h_get(gw_nocache.port, path, K, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_res_free(&r);
}
END_TEST

/* Backend answers collected at once on a worker share limits.max_upstream_bytes: one that
 * would take more is a 503 overloaded_error the SDK may retry, and the worker goes on. */
START_TEST(upstream_answers_share_a_byte_budget)
{
	json_t *cfg = config(fake.port, "{}", 1);
	struct h_proc g;
	struct h_res r;

	json_object_set_new(cfg, "limits", json_pack("{s:i}", "max_upstream_bytes", 16384));
	ck_assert_int_eq(h_gateway_start(&g, cfg), 0);
	json_decref(cfg);
	ck_assert_int_eq(h_get(g.port, "/v1/sessions?limit=5", K, &r), 0);
	ck_assert_msg(r.status == 503, "%ld %s", r.status, r.body);
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(r.json, "error"), "type")),
	    "overloaded_error");
	ck_assert_str_eq(r.should_retry, "true");
	h_res_free(&r);
	ck_assert_int_eq(h_get(g.port, "/healthz", NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_res_free(&r);
	ck_assert_int_eq(h_stop(&g, 5000), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("snapshots");
	TCase *tc = tcase_create("walks");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, a_walk_sees_the_listing_its_first_page_read);
	tcase_add_test(tc, a_cursor_whose_snapshot_has_gone_falls_back_to_its_position);
	tcase_add_test(tc, with_no_cache_budget_walks_go_by_keyset);
	tcase_add_test(tc, a_waiting_request_outlives_the_reader_it_waited_for);
	tcase_add_test(tc, upstream_answers_share_a_byte_budget);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
