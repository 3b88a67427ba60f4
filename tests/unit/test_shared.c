/* test_shared.c - walk snapshots shared through Redis (shared.h).
 * The stored form: what comes back from it is the listings that went in (keys, texts, order;
 * the pager's pages over it are the same), it is rebuilt in slices, a snapshot over the bound
 * is not encoded, and bytes that are not a whole snapshot are refused, never read past.
 * A key's scope (the part of the Redis key that says whose) changes with what the key reaches.
 * Against a real redis-server on loopback: a stored snapshot is fetched back whole; a missing
 * key says missed, a value that is not a snapshot says failed, a stopped server ends the fetch
 * at its deadline, no server refuses it at once, and a fetch freed before its reply never
 * calls back. No test waits without a bound: the loop runs to a deadline. */
#include <check.h>
#include <event2/event.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "held.h"
#include "mapping.h"
#include "pager.h"
#include "query.h"
#include "redis.h"
#include "redisrig.h"
#include "shared.h"
#include "timeutil.h"

static const uint8_t secret[] = "0123456789abcdef0123456789abcdef";
static const struct sg_pager_ctx ctx = {secret, 32, "alice", NULL, NULL, 0};

/* n sessions (every other one with resources and a deployment), from backend b. */
static struct sg_held *listing(int n, int b)
{
	json_t *a = json_array();
	struct sg_error e = {0};
	struct sg_held *h;

	for (int i = 0; i < n; i++) {
		char id[32], ts[40];
		json_t *s;

		snprintf(id, sizeof(id), "sesn_%d_%05d", b, (i * 7919) % 100000);
		snprintf(ts, sizeof(ts), "2026-01-%02dT%02d:%02d:00.%06dZ", 1 + i / 600,
		         (i / 60) % 10, i % 60, i * 13 % 1000000);
		s = json_pack("{s:s, s:s, s:s, s:n, s:{s:s, s:i}, s:[], s:s}", "id", id,
		              "created_at", ts, "status", i % 2 ? "running" : "idle", "archived_at",
		              "agent", "id", i % 3 ? "agent_a" : "agent_b", "version", 1 + i % 2,
		              "resources", "title", "é \"quoted\"");
		if (i % 2) {
			json_object_set_new(s, "deployment_id", json_string("dep_1"));
			json_array_append_new(json_object_get(s, "resources"),
			                      json_pack("{s:s, s:s}", "type", "memory_store",
			                                "memory_store_id", "mem_1"));
		}
		if (i % 5 == 0)
			json_object_set_new(s, "archived_at", json_string(ts));
		json_array_append_new(a, s);
	}
	h = sg_held_new(a, SG_HELD_SESSIONS, &e);
	json_decref(a);
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(sg_held_seal(h), 0);
	return h;
}

static char *page_text(struct sg_held *const *v, size_t n, const char *qs)
{
	struct sg_session_query q;
	struct sg_session_pos pos;
	struct sg_error e = {0};
	size_t len;
	int linked;
	char *t;

	ck_assert_int_eq(sg_session_query_parse(qs, &q, &e), 0);
	ck_assert_int_eq(sg_pager_session_pos(&ctx, &q, &pos, &e), 0);
	t = sg_pager_sessions_text(v, n, &q, &ctx, &pos, "snapname", &linked, &len, &e);
	ck_assert_ptr_nonnull(t);
	sg_pager_session_pos_clear(&pos);
	sg_session_query_clear(&q);
	return t;
}

static struct sg_held_set *decode(const char *buf, size_t len, size_t budget, int *steps)
{
	struct sg_snap_dec *d = sg_snap_dec_new(buf, len);
	struct sg_held_set *s;
	int rc;

	ck_assert_ptr_nonnull(d);
	*steps = 0;
	while ((rc = sg_snap_dec_step(d, budget)) == 1)
		(*steps)++;
	s = rc == 0 ? sg_snap_dec_take(d) : NULL;
	sg_snap_dec_free(d);
	return s;
}

START_TEST(round_trip_in_slices)
{
	struct sg_held *v[2] = {listing(300, 0), listing(7, 1)};
	static const char *const qs[] = {
	    "limit=100",
	    "limit=7&order=asc",
	    "include_archived=true&limit=50",
	    "include_archived=true&memory_store_id=mem_1&limit=100",
	    "agent_id=agent_b&agent_version=1&limit=100",
	    "deployment_id=dep_1&statuses[]=running&limit=100",
	};
	struct sg_held_set *s;
	size_t len;
	int steps;
	char *buf = sg_snap_encode(v, 2, SG_SHARED_SNAP_MAX, &len);

	ck_assert_ptr_nonnull(buf);
	s = decode(buf, len, 1, &steps); /* one item per step */
	ck_assert_ptr_nonnull(s);
	ck_assert_int_ge(steps, 300);
	ck_assert_uint_eq(s->n, 2);
	for (size_t l = 0; l < 2; l++) {
		ck_assert_uint_eq(sg_held_count(s->v[l]), sg_held_count(v[l]));
		for (size_t i = 0; i < sg_held_count(v[l]); i++) {
			const struct sg_held_item *a = sg_held_at(v[l], i),
			                          *b = sg_held_at(s->v[l], i);

			ck_assert_int_eq(a->t, b->t);
			ck_assert_str_eq(a->id, b->id);
			ck_assert_str_eq(a->agent_id, b->agent_id);
			ck_assert_int_eq(a->agent_version, b->agent_version);
			ck_assert_uint_eq(a->status, b->status);
			ck_assert_int_eq(a->archived, b->archived);
			ck_assert_int_eq(!a->deployment_id, !b->deployment_id);
			ck_assert_int_eq(!a->resources, !b->resources);
			ck_assert_uint_eq(a->len, b->len);
			ck_assert(memcmp(a->text, b->text, a->len) == 0);
		}
	}
	/* the pages over what came back are the pages over what went in */
	for (size_t k = 0; k < sizeof(qs) / sizeof(*qs); k++) {
		char *x = page_text(v, 2, qs[k]), *y = page_text(s->v, 2, qs[k]);

		ck_assert_str_eq(x, y);
		ck_assert_ptr_nonnull(strstr(x, "\"data\":[{"));
		free(x);
		free(y);
	}
	sg_held_set_release(s);
	/* in one go as well */
	s = decode(buf, len, SG_SHARED_SNAP_MAX, &steps);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(steps, 0);
	sg_held_set_release(s);
	free(buf);
	sg_held_release(v[0]);
	sg_held_release(v[1]);
}
END_TEST

START_TEST(over_the_bound_is_not_encoded)
{
	struct sg_held *v = listing(50, 0);
	size_t len, len2;
	char *buf = sg_snap_encode(&v, 1, SG_SHARED_SNAP_MAX, &len);

	ck_assert_ptr_nonnull(buf);
	ck_assert_ptr_null(sg_snap_encode(&v, 1, len - 1, &len2));
	free(buf);
	buf = sg_snap_encode(&v, 1, len, &len2);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(len, len2);
	free(buf);
	sg_held_release(v);
}
END_TEST

START_TEST(unsealed_is_not_encoded)
{
	json_t *a = json_pack("[{s:s, s:s}]", "id", "sesn_1", "created_at", "2026-01-01T00:00:00Z");
	struct sg_error e = {0};
	struct sg_held *h = sg_held_new(a, SG_HELD_SESSIONS, &e);
	size_t len;

	ck_assert_ptr_null(sg_snap_encode(&h, 1, SG_SHARED_SNAP_MAX, &len));
	sg_held_release(h);
	json_decref(a);
}
END_TEST

START_TEST(damaged_bytes_are_refused)
{
	struct sg_held *v = listing(20, 0);
	struct sg_held_set *s;
	size_t len;
	int steps;
	char *buf = sg_snap_encode(&v, 1, SG_SHARED_SNAP_MAX, &len), *bad;

	ck_assert_ptr_nonnull(buf);
	/* every truncation, and one byte too many */
	for (size_t cut = 0; cut < len; cut++)
		ck_assert_ptr_null(decode(buf, cut, 64, &steps));
	bad = malloc(len + 1);
	memcpy(bad, buf, len);
	bad[len] = 'x';
	ck_assert_ptr_null(decode(bad, len + 1, 64, &steps));
	/* another magic; a count of items larger than the bytes could hold */
	bad[0] = 'X';
	ck_assert_ptr_null(decode(bad, len, 64, &steps));
	memcpy(bad, buf, len);
	bad[16] = (char)0xff;
	bad[17] = (char)0xff;
	ck_assert_ptr_null(decode(bad, len, 64, &steps));
	/* a length that runs past the end */
	memcpy(bad, buf, len);
	memset(bad + 20 + 24, 0x7f, 4);
	ck_assert_ptr_null(decode(bad, len, 64, &steps));
	/* the undamaged bytes still decode */
	s = decode(buf, len, 64, &steps);
	ck_assert_ptr_nonnull(s);
	sg_held_set_release(s);
	free(bad);
	free(buf);
	sg_held_release(v);
}
END_TEST

/* Whose snapshots: the same key reaching the same backends as the same identity has one scope
 * on every instance; another identity, URL or backend is another scope. */
START_TEST(scope_names_what_a_key_reaches)
{
	struct sg_mapping m = {.name = "agentscope"};
	struct sg_backend be = {.name = "as", .mapping = &m, .url = "http://10.0.0.1:8000"};
	struct sg_route rt = {&be, NULL};
	struct sg_key k = {.name = "walker", .routes = &rt, .nroutes = 1};
	char *a, *b;

	rt.identity = json_pack("{s:s}", "user_id", "alice");
	a = sg_snap_scope(&k);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(strncmp(a, "walker:", 7), 0);
	ck_assert_uint_eq(strlen(a), 7 + 16);
	b = sg_snap_scope(&k);
	ck_assert_str_eq(a, b); /* the same configuration, the same scope */
	free(b);
	json_decref(rt.identity);
	rt.identity = json_pack("{s:s}", "user_id", "bob");
	b = sg_snap_scope(&k);
	ck_assert_str_ne(a, b);
	free(b);
	json_decref(rt.identity);
	rt.identity = json_pack("{s:s}", "user_id", "alice");
	be.url = "http://10.0.0.2:8000";
	b = sg_snap_scope(&k);
	ck_assert_str_ne(a, b);
	free(b);
	be.url = "http://10.0.0.1:8000";
	be.name = "as2";
	b = sg_snap_scope(&k);
	ck_assert_str_ne(a, b);
	free(b);
	be.name = "as";
	b = sg_snap_scope(&k);
	ck_assert_str_eq(a, b);
	free(b);
	free(a);
	json_decref(rt.identity);
}
END_TEST

/* ---- against redis-server ---------------------------------------------------------------- */

static pid_t server = -1;
static int port;

static int free_port(void)
{
	return sg_rr_free_port();
}

static void server_start(void)
{
	port = free_port();
	server = sg_rr_start(port);
}

static void server_stop(void)
{
	sg_rr_stop(&server);
}

struct rig {
	struct event_base *base;
	struct sg_redis *r;
};

static void run_until(struct rig *g, const int *flag, long ms)
{
	int64_t until = sg_mono_ms() + ms;

	while (!*flag && sg_mono_ms() < until) {
		struct timeval tv = {0, 10000};

		event_base_loopexit(g->base, &tv);
		event_base_dispatch(g->base);
	}
}

static void rig_open(struct rig *g, long timeout_ms)
{
	struct sg_redis_cfg cfg = {
	    .host = "127.0.0.1", .port = port, .timeout_ms = timeout_ms, .connect_timeout_ms = 500};
	int64_t until = sg_mono_ms() + 3000;

	g->base = event_base_new();
	g->r = sg_redis_new(g->base, &cfg);
	ck_assert_ptr_nonnull(g->r);
	while (!sg_redis_up(g->r) && sg_mono_ms() < until) {
		struct timeval tv = {0, 10000};

		event_base_loopexit(g->base, &tv);
		event_base_dispatch(g->base);
	}
}

static void rig_close(struct rig *g)
{
	sg_redis_free(g->r);
	event_base_free(g->base);
}

struct got {
	int done;
	int missed;
	struct sg_held_set *set;
	struct sg_snap_fetch *f;
};

static void on_fetched(struct sg_held_set *set, void *arg)
{
	struct got *g = arg;

	g->done++;
	g->set = set;
	g->missed = sg_snap_fetch_missed(g->f);
	sg_snap_fetch_free(g->f); /* allowed from within done */
	g->f = NULL;
}

static void on_stored(enum sg_redis_status st, const struct redisReply *reply, void *arg)
{
	int *ok = arg;

	*ok = st == SG_REDIS_OK && reply->type == REDIS_REPLY_STATUS ? 1 : -1;
}

static void fetch(struct rig *g, const char *name, struct got *out, long wait_ms)
{
	struct sg_snap_where w = {"t:", "alice", name};

	memset(out, 0, sizeof(*out));
	out->f = sg_snap_fetch_start(g->r, 100, g->base, &w, on_fetched, out);
	ck_assert_ptr_nonnull(out->f);
	ck_assert_int_eq(out->done, 0); /* never from within start */
	run_until(g, &out->done, wait_ms);
}

START_TEST(stored_then_fetched_in_redis)
{
	struct sg_held *v[2] = {listing(2000, 0), listing(3, 1)};
	struct sg_snap_where w = {"t:", "alice", "0123456789abcdef"};
	struct rig g;
	struct got got;
	int stored = 0;
	char *a, *b;

	server_start();
	rig_open(&g, 100);
	ck_assert_ptr_nonnull(sg_shared_snap_put(g.r, 100, &w, v, 2, 60000, on_stored, &stored));
	run_until(&g, &stored, 3000);
	ck_assert_int_eq(stored, 1);
	fetch(&g, "0123456789abcdef", &got, 3000);
	ck_assert_int_eq(got.done, 1);
	ck_assert_ptr_nonnull(got.set);
	ck_assert_uint_eq(got.set->n, 2);
	a = page_text(v, 2, "limit=100&include_archived=true");
	b = page_text(got.set->v, 2, "limit=100&include_archived=true");
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
	sg_held_set_release(got.set);
	/* another principal's snapshot of that name is another key */
	{
		struct sg_snap_where o = {"t:", "bob", "0123456789abcdef"};

		memset(&got, 0, sizeof(got));
		got.f = sg_snap_fetch_start(g.r, 100, g.base, &o, on_fetched, &got);
		run_until(&g, &got.done, 3000);
		ck_assert_int_eq(got.done, 1);
		ck_assert_ptr_null(got.set);
		ck_assert_int_eq(got.missed, 1);
	}
	rig_close(&g);
	server_stop();
	sg_held_release(v[0]);
	sg_held_release(v[1]);
}
END_TEST

START_TEST(missing_damaged_stopped_absent_and_cancelled)
{
	const char *argv[] = {"SET", "t:snap:alice:damaged", "not-a-snapshot"};
	size_t lens[] = {3, 20, 14};
	struct sg_snap_where w = {"t:", "alice", "x"};
	struct rig g;
	struct got got;
	int stored = 0;
	int64_t t0;

	server_start();
	rig_open(&g, 100);
	fetch(&g, "missing", &got, 3000);
	ck_assert_int_eq(got.done, 1);
	ck_assert_ptr_null(got.set);
	ck_assert_int_eq(got.missed, 1);
	/* a value that is not a snapshot */
	ck_assert_ptr_nonnull(sg_redis_cmd(g.r, 3, argv, lens, on_stored, &stored));
	run_until(&g, &stored, 3000);
	ck_assert_int_eq(stored, 1);
	fetch(&g, "damaged", &got, 3000);
	ck_assert_int_eq(got.done, 1);
	ck_assert_ptr_null(got.set);
	ck_assert_int_eq(got.missed, 0);
	/* freed before its reply: done never runs */
	memset(&got, 0, sizeof(got));
	got.f = sg_snap_fetch_start(g.r, 100, g.base, &w, on_fetched, &got);
	ck_assert_ptr_nonnull(got.f);
	sg_snap_fetch_free(got.f);
	got.f = NULL;
	{
		int never = 0;

		run_until(&g, &never, 300);
	}
	ck_assert_int_eq(got.done, 0);
	/* a server that does not answer: the fetch ends at its deadline (100 + 250 ms) */
	kill(server, SIGSTOP);
	t0 = sg_mono_ms();
	fetch(&g, "missing", &got, 3000);
	ck_assert_int_eq(got.done, 1);
	ck_assert_ptr_null(got.set);
	ck_assert_int_eq(got.missed, 0);
	ck_assert_int_ge(sg_mono_ms() - t0, 100 + SG_SHARED_FETCH_GRACE_MS - 20);
	rig_close(&g);
	server_stop();
	/* no server at all: refused at once, nothing to wait for */
	g.base = event_base_new();
	{
		struct sg_redis_cfg cfg = {.host = "127.0.0.1",
		                           .port = port,
		                           .timeout_ms = 100,
		                           .connect_timeout_ms = 100};

		g.r = sg_redis_new(g.base, &cfg);
	}
	ck_assert_ptr_null(sg_snap_fetch_start(g.r, 100, g.base, &w, on_fetched, &got));
	ck_assert_ptr_null(sg_shared_snap_put(g.r, 100, &w, NULL, 0, 60000, on_stored, &stored));
	rig_close(&g);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("shared");
	TCase *tc = tcase_create("shared");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, round_trip_in_slices);
	tcase_add_test(tc, over_the_bound_is_not_encoded);
	tcase_add_test(tc, unsealed_is_not_encoded);
	tcase_add_test(tc, damaged_bytes_are_refused);
	tcase_add_test(tc, scope_names_what_a_key_reaches);
	suite_add_tcase(s, tc);
	tc = tcase_create("redis");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, stored_then_fetched_in_redis);
	tcase_add_test(tc, missing_damaged_stopped_absent_and_cancelled);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
