/* test_backends.c - SandBase and Claude-native upstreams behind the real gateway, and
 * routing keys to several backends. The fakes are tests/fake_sandbase in its two dialects
 * and tests/fake_agentscope. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "idcodec.h"

#define N_SB 120
#define N_CL 90

static struct h_proc sb, cl, as, gw;
static json_t *sb_truth; /* every SandBase session as the fake serves it, include_archived */
static json_t *cl_truth;

static const char *const K_SB[] = {"x-api-key: sk-client-sb", NULL};
static const char *const K_SB_BEARER[] = {"Authorization: Bearer sk-client-sb", NULL};
static const char *const K_CL[] = {"x-api-key: sk-client-cl", NULL};
static const char *const K_MULTI[] = {"x-api-key: sk-client-multi", NULL};

static json_t *be(const char *name, const char *mapping, int port, json_t *options)
{
	json_t *b = json_pack("{s:s, s:s, s:s, s:i, s:i, s:o}", "name", name, "mapping", mapping,
	                      "url", "", "timeout_ms", 3000, "retries", 0, "options", options);

	json_object_set_new(b, "url", json_sprintf("http://127.0.0.1:%d", port));
	return b;
}

static json_t *key(const char *name, const char *secret, json_t *routes)
{
	char h[65];

	h_hash_key(secret, h);
	return json_pack("{s:s, s:s, s:o}", "name", name, "sha256", h, "backends", routes);
}

/* Reads every page of a fake's own list (its dialect's cursors), oldest filters off. */
static json_t *truth(int port, const char *auth, const char *beta)
{
	const char *hdr[] = {auth, beta, NULL};
	json_t *all = json_array();
	char path[4096] = "/v1/sessions?limit=100&include_archived=true";

	for (int i = 0; i < 100; i++) {
		struct h_res r;
		const char *next;

		ck_assert_int_eq(h_get(port, path, hdr, &r), 0);
		ck_assert_msg(r.status == 200, "truth: %ld %s", r.status, r.body);
		json_array_extend(all, json_object_get(r.json, "data"));
		next = json_string_value(json_object_get(r.json, "next_page"));
		if (!next || !*next) {
			h_res_free(&r);
			return all;
		}
		snprintf(path, sizeof(path), "/v1/sessions?limit=100&include_archived=true&page=%s",
		         next);
		h_res_free(&r);
	}
	ck_abort_msg("truth walk did not end");
	return NULL;
}

static void setup(void)
{
	const char *a_sb[] = {"--dialect", "sandbase", "--generate", "120:3", "--seed", "5", NULL};
	const char *a_cl[] = {"--dialect", "claude", "--generate", "90:3", "--seed", "9", NULL};
	const char *a_as[] = {"--generate", "30:2", "--seed", "2", NULL};
	json_t *cfg;

	setenv("SG_TEST_SB_KEY", "sk-sb-test", 1);
	setenv("SG_TEST_CL_KEY", "sk-ant-test", 1);
	ck_assert_int_eq(h_fake_start_bin(&sb, "tests/fake_sandbase", a_sb), 0);
	ck_assert_int_eq(h_fake_start_bin(&cl, "tests/fake_sandbase", a_cl), 0);
	ck_assert_int_eq(h_fake_start(&as, a_as), 0);
	cfg = json_pack(
	    "{s:i, s:s, s:{s:s}, s:[o,o,o], s:[o,o,o]}", "workers", 2, "cursor_secret",
	    "backends-test-secret-0123456789abcdefgh", "log", "level", "debug", "backends",
	    be("sb", "sandbase", sb.port, json_pack("{s:s}", "api_key", "$SG_TEST_SB_KEY")),
	    be("cl", "claude", cl.port, json_pack("{s:s}", "api_key", "$SG_TEST_CL_KEY")),
	    be("as", "agentscope", as.port, json_object()), "keys",
	    key("sb", "sk-client-sb", json_pack("{s:{}}", "sb")),
	    key("cl", "sk-client-cl", json_pack("{s:{}}", "cl")),
	    key("multi", "sk-client-multi",
	        json_pack("{s:{}, s:{s:s}}", "sb", "as", "user_id", "alice")));
	ck_assert_int_eq(h_gateway_start(&gw, cfg), 0);
	json_decref(cfg);
	sb_truth = truth(sb.port, "x-api-key: sk-sb-test", NULL);
	cl_truth =
	    truth(cl.port, "x-api-key: sk-ant-test", "anthropic-beta: managed-agents-2026-04-01");
}

static void teardown(void)
{
	json_decref(sb_truth);
	json_decref(cl_truth);
	h_stop(&gw, 5000);
	h_stop(&sb, 2000);
	h_stop(&cl, 2000);
	h_stop(&as, 2000);
}

static unsigned rng = 99;
static int rnd_limit(void)
{
	rng = rng * 1103515245u + 12345u;
	return 1 + (int)((rng >> 16) % 23);
}

/* Walks a north list; checks every page but the last is exactly `limit` long when
 * `exact` (page sizes must hold even when the gateway filters what the backend ignores). */
static json_t *walk(const char *base, const char *filters, const char *const *hdrs, int exact)
{
	json_t *all = json_array();
	char *page = NULL;

	for (int n = 0; n < 3000; n++) {
		struct h_res r;
		char path[8192];
		int limit = rnd_limit();
		json_t *next;
		size_t got;

		snprintf(path, sizeof(path), "%s?limit=%d%s%s%s%s", base, limit,
		         *filters ? "&" : "", filters, page ? "&page=" : "", page ? page : "");
		ck_assert_int_eq(h_get(gw.port, path, hdrs, &r), 0);
		ck_assert_msg(r.status == 200, "%s -> %ld %s", path, r.status, r.body);
		got = json_array_size(json_object_get(r.json, "data"));
		next = json_object_get(r.json, "next_page");
		ck_assert_int_le(got, limit);
		if (exact && json_is_string(next))
			ck_assert_msg(got == (size_t)limit, "%s: short page %zu of %d", path, got,
			              limit);
		/* No cursor that leads to an empty page. */
		if (exact && n > 0 && !json_is_string(next))
			ck_assert_msg(got > 0, "%s: an empty last page", path);
		json_array_extend(all, json_object_get(r.json, "data"));
		free(page);
		page = json_is_string(next) ? strdup(json_string_value(next)) : NULL;
		if (!page)
			ck_assert(json_is_null(next));
		h_res_free(&r);
		if (!page)
			return all;
	}
	ck_abort_msg("walk did not end");
	return NULL;
}

static size_t count_truth(const json_t *t, const char *status, int archived)
{
	size_t i, n = 0;
	json_t *s;

	json_array_foreach(t, i, s) {
		if (status && strcmp(json_string_value(json_object_get(s, "status")), status))
			continue;
		if (!archived && !json_is_null(json_object_get(s, "archived_at")))
			continue;
		n++;
	}
	return n;
}

static void check_unique_and_order(const json_t *all, int desc)
{
	json_t *seen = json_object(), *s;
	size_t i;

	json_array_foreach(all, i, s) {
		const char *id = json_string_value(json_object_get(s, "id"));

		ck_assert_msg(strncmp(id, "sesn_", 5) == 0, "id %s", id);
		ck_assert_ptr_null(json_object_get(seen, id));
		json_object_set_new(seen, id, json_true());
		ck_assert(json_is_object(json_object_get(s, "usage")));
		ck_assert(json_is_object(json_object_get(s, "stats")));
		ck_assert(json_is_object(json_object_get(s, "agent")));
		ck_assert(json_is_array(json_object_get(s, "vault_ids")));
		if (i > 0) {
			int c = strcmp(json_string_value(json_object_get(json_array_get(all, i - 1),
			                                                 "created_at")),
			               json_string_value(json_object_get(s, "created_at")));

			ck_assert_msg(desc ? c >= 0 : c <= 0, "order broken at %zu", i);
		}
	}
	json_decref(seen);
}

START_TEST(sandbase_list_every_session_once)
{
	json_t *all = walk("/v1/sessions", "", K_SB, 1);

	ck_assert_int_eq(json_array_size(all), count_truth(sb_truth, NULL, 0));
	ck_assert_int_gt(json_array_size(all), 50);
	check_unique_and_order(all, 1);
	json_decref(all);
	all = walk("/v1/sessions", "include_archived=true", K_SB, 1);
	ck_assert_int_eq(json_array_size(all), N_SB);
	json_decref(all);
}
END_TEST

/* SandBase ignores statuses: the gateway filters, keeps page sizes, skips nothing. */
START_TEST(sandbase_status_filter_keeps_page_sizes)
{
	static const char *const st[] = {"running", "idle", "terminated", "rescheduling"};

	for (size_t k = 0; k < 4; k++) {
		char f[64];
		json_t *all, *s;
		size_t i;

		snprintf(f, sizeof(f), "statuses%%5B%%5D=%s&include_archived=true", st[k]);
		all = walk("/v1/sessions", f, K_SB, 1);
		ck_assert_int_eq(json_array_size(all), count_truth(sb_truth, st[k], 1));
		json_array_foreach(all, i, s)
			ck_assert_str_eq(json_string_value(json_object_get(s, "status")), st[k]);
		check_unique_and_order(all, 1);
		json_decref(all);
	}
}
END_TEST

START_TEST(sandbase_order_asc_and_dates)
{
	json_t *desc = walk("/v1/sessions", "include_archived=true", K_SB, 1);
	json_t *asc = walk("/v1/sessions", "include_archived=true&order=asc", K_SB, 1), *half;
	const char *mid =
	    json_string_value(json_object_get(json_array_get(desc, N_SB / 2), "created_at"));
	char f[128];
	size_t expect = 0, i;
	json_t *s;

	/* Ascending is read whole and ordered by the core (ties by public id); descending is
	 * SandBase's own order (ties by its id): the same sessions, each order monotonic. */
	ck_assert_int_eq(json_array_size(asc), N_SB);
	check_unique_and_order(asc, 0);
	for (i = 0; i < N_SB; i++) {
		int found = 0;

		for (size_t j = 0; j < N_SB && !found; j++)
			found = json_equal(json_object_get(json_array_get(asc, i), "id"),
			                   json_object_get(json_array_get(desc, j), "id"));
		ck_assert(found);
	}
	json_array_foreach(desc, i, s)
		expect += strcmp(json_string_value(json_object_get(s, "created_at")), mid) >= 0;
	snprintf(f, sizeof(f), "include_archived=true&created_at%%5Bgte%%5D=%s", mid);
	half = walk("/v1/sessions", f, K_SB, 1);
	ck_assert_int_eq(json_array_size(half), expect);
	json_decref(half);
	json_decref(asc);
	json_decref(desc);
}
END_TEST

START_TEST(sandbase_retrieve_and_agent_snapshots)
{
	json_t *all = walk("/v1/sessions", "include_archived=true", K_SB, 0), *s;
	size_t i, named = 0;

	json_array_foreach(all, i, s) {
		char path[1024];
		struct h_res r;
		json_t *a, *b;

		named +=
		    strcmp(json_string_value(json_object_get(json_object_get(s, "agent"), "name")),
		           json_string_value(json_object_get(json_object_get(s, "agent"), "id"))) !=
		    0;
		if (i % 11)
			continue;
		snprintf(path, sizeof(path), "/v1/sessions/%s",
		         json_string_value(json_object_get(s, "id")));
		ck_assert_int_eq(h_get(gw.port, path, K_SB, &r), 0);
		ck_assert_int_eq(r.status, 200);
		a = json_deep_copy(r.json);
		b = json_deep_copy(s);
		json_object_del(json_object_get(a, "stats"), "duration_seconds");
		json_object_del(json_object_get(b, "stats"), "duration_seconds");
		ck_assert_msg(json_equal(a, b), "retrieve differs: %s", path);
		json_decref(a);
		json_decref(b);
		h_res_free(&r);
	}
	/* Agents missing from a session are fetched: every snapshot has a real name. */
	ck_assert_int_eq(named, N_SB);
	json_decref(all);
}
END_TEST

/* Agent fetches SandBase recorded since the last clear: the total, and the distinct URIs. */
static size_t agent_fetches(size_t *distinct)
{
	struct h_res r;
	json_t *e, *seen = json_object();
	size_t i, n = 0;

	ck_assert_int_eq(h_get(sb.port, "/__fake/requests", NULL, &r), 0);
	json_array_foreach(r.json, i, e) {
		const char *uri = json_string_value(json_object_get(e, "uri"));

		if (strncmp(uri, "/v1/agents/", 11) == 0) {
			n++;
			json_object_set_new(seen, uri, json_true());
		}
	}
	*distinct = json_object_size(seen);
	json_decref(seen);
	h_res_free(&r);
	return n;
}

static void clear_requests(int port)
{
	struct h_res r;

	ck_assert_int_eq(h_request("DELETE", port, "/__fake/requests", NULL, &r), 0);
	h_res_free(&r);
}

/* Snapshots fetched for sessions without one are cached per worker by (id, version).
 * Uncached, every walk would fetch each such agent on every page that needs it; cached, each
 * of the two workers fetches each agent at most once, whatever ran before. */
START_TEST(sandbase_agent_snapshots_are_cached)
{
	json_t *refs = json_object(), *s, *a;
	size_t i, fetched, distinct;

	json_array_foreach(sb_truth, i, s) {
		const json_t *ag = json_object_get(s, "agent");

		if (json_is_object(ag) &&
		    (json_object_get(ag, "name") || json_object_get(ag, "model")))
			continue; /* embedded snapshot: nothing to fetch */
		json_object_set_new(refs, json_string_value(json_object_get(s, "agent_id")),
		                    json_true());
	}
	ck_assert_int_gt(json_object_size(refs), 0);
	clear_requests(sb.port);
	for (int k = 0; k < 6; k++) {
		a = walk("/v1/sessions", "include_archived=true", K_SB, 0);
		json_decref(a);
	}
	fetched = agent_fetches(&distinct);
	ck_assert_msg(fetched <= 2 * distinct, "%zu agent fetches for %zu agents", fetched,
	              distinct);
	json_decref(refs);
}
END_TEST

/* The client's key never reaches SandBase: only the backend's own key does. */
START_TEST(sandbase_gets_only_the_backends_key)
{
	struct h_res r;
	json_t *e, *all;
	size_t i;

	ck_assert_int_eq(h_request("DELETE", sb.port, "/__fake/requests", NULL, &r), 0);
	h_res_free(&r);
	all = walk("/v1/sessions", "", K_SB, 0);
	json_decref(all);
	ck_assert_int_eq(h_get(sb.port, "/__fake/requests", NULL, &r), 0);
	ck_assert_int_gt(json_array_size(r.json), 0);
	json_array_foreach(r.json, i, e) {
		ck_assert_int_eq(json_array_size(json_object_get(e, "x_api_key")), 1);
		ck_assert_str_eq(
		    json_string_value(json_array_get(json_object_get(e, "x_api_key"), 0)),
		    "sk-sb-test");
		ck_assert_int_eq(json_array_size(json_object_get(e, "authorization")), 0);
	}
	h_res_free(&r);
}
END_TEST

static json_t *events_of(const char *sid, const char *const *hdrs, const char *filters)
{
	char base[2048];

	snprintf(base, sizeof(base), "/v1/sessions/%s/events", sid);
	return walk(base, filters, hdrs, 1);
}

static void set_events_page(int n)
{
	char path[128];
	struct h_res r;

	snprintf(path, sizeof(path), "/__fake/mode?mode=ok&events_page=%d", n);
	ck_assert_int_eq(h_request("POST", sb.port, path, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_res_free(&r);
}

/* The same SandBase history served all at once and in backend pages of 7 gives the same
 * north events, ids included (linking state crosses backend pages in the cursor); the flat
 * envelope is gone; tool results link to their tool use. */
START_TEST(sandbase_events_native_and_emulated_agree)
{
	json_t *all = walk("/v1/sessions", "include_archived=true", K_SB_BEARER, 0), *s;
	size_t i, linked = 0, spans = 0, sessions_with_events = 0;

	json_array_foreach(all, i, s) {
		const char *sid = json_string_value(json_object_get(s, "id"));
		json_t *ev, *evp, *e, *uses;
		size_t j;

		if (i % 4)
			continue;
		uses = json_object();
		set_events_page(0);
		ev = events_of(sid, K_SB, "");
		set_events_page(7);
		evp = events_of(sid, K_SB, "");
		set_events_page(0);
		ck_assert_int_eq(json_array_size(ev), json_array_size(evp));
		for (j = 0; j < json_array_size(ev); j++)
			ck_assert(json_equal(json_array_get(ev, j), json_array_get(evp, j)));
		sessions_with_events += json_array_size(ev) > 0;
		json_array_foreach(ev, j, e) {
			const char *type = json_string_value(json_object_get(e, "type"));

			ck_assert_ptr_null(json_object_get(e, "tokens_in"));
			ck_assert_ptr_null(json_object_get(e, "model_used"));
			ck_assert_ptr_null(json_object_get(e, "created_at"));
			ck_assert_ptr_null(json_object_get(e, "duration_ms"));
			ck_assert(json_is_string(json_object_get(e, "processed_at")));
			if (!strcmp(type, "agent.tool_use") ||
			    !strcmp(type, "agent.mcp_tool_use") ||
			    !strcmp(type, "agent.custom_tool_use")) {
				ck_assert(json_is_string(json_object_get(e, "name")));
				ck_assert(json_is_object(json_object_get(e, "input")));
				json_object_set(uses, json_string_value(json_object_get(e, "id")),
				                e);
			}
			if (!strcmp(type, "agent.tool_result")) {
				const char *u =
				    json_string_value(json_object_get(e, "tool_use_id"));

				ck_assert_ptr_nonnull(u);
				linked += json_object_get(uses, u) != NULL;
			}
			if (!strcmp(type, "span.model_request_end"))
				spans++;
			if (!strcmp(type, "session.status_idle")) {
				const char *why = json_string_value(
				    json_object_get(json_object_get(e, "stop_reason"), "type"));

				ck_assert_ptr_nonnull(why);
				ck_assert_str_ne(why, "user_interrupt");
				ck_assert(json_object_get(e, "stop_details") != NULL);
			}
		}
		json_decref(uses);
		json_decref(ev);
		json_decref(evp);
	}
	ck_assert_int_gt(sessions_with_events, 5);
	ck_assert_int_gt(linked, 0);
	ck_assert_int_gt(spans, 0);
	json_decref(all);
}
END_TEST

START_TEST(sandbase_errors)
{
	char id[SG_ID_MAX], path[1024];
	struct h_res r;

	ck_assert_int_gt(sg_id_encode("sesn_", "sb", "", "sess_doesnotexist", id, sizeof(id)), 0);
	snprintf(path, sizeof(path), "/v1/sessions/%s", id);
	ck_assert_int_eq(h_get(gw.port, path, K_SB, &r), 0);
	ck_assert_int_eq(r.status, 404);
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(r.json, "error"), "type")),
	    "not_found_error");
	h_res_free(&r);
	snprintf(path, sizeof(path), "/v1/sessions/%s/events", id);
	ck_assert_int_eq(h_get(gw.port, path, K_SB, &r), 0);
	ck_assert_int_eq(r.status, 404);
	h_res_free(&r);
}
END_TEST

START_TEST(claude_list_filters_retrieve_events)
{
	json_t *all = walk("/v1/sessions", "include_archived=true", K_CL, 1), *run, *asc, *s;
	size_t i;

	ck_assert_int_eq(json_array_size(all), N_CL);
	ck_assert_int_eq(json_array_size(cl_truth), N_CL);
	check_unique_and_order(all, 1);
	run = walk("/v1/sessions", "include_archived=true&statuses%5B%5D=running", K_CL, 1);
	ck_assert_int_eq(json_array_size(run), count_truth(cl_truth, "running", 1));
	asc = walk("/v1/sessions", "include_archived=true&order=asc", K_CL, 1);
	check_unique_and_order(asc, 0);
	ck_assert_int_eq(json_array_size(asc), N_CL);
	json_array_foreach(all, i, s) {
		char path[1024];
		struct h_res r;
		json_t *ev;

		if (i % 13)
			continue;
		snprintf(path, sizeof(path), "/v1/sessions/%s",
		         json_string_value(json_object_get(s, "id")));
		ck_assert_int_eq(h_get(gw.port, path, K_CL, &r), 0);
		ck_assert_int_eq(r.status, 200);
		ck_assert(json_equal(json_object_get(r.json, "id"), json_object_get(s, "id")));
		h_res_free(&r);
		snprintf(path, sizeof(path), "%s", json_string_value(json_object_get(s, "id")));
		ev = events_of(path, K_CL, "");
		for (size_t j = 0; j < json_array_size(ev); j++) {
			json_t *e = json_array_get(ev, j);

			if (!strcmp(json_string_value(json_object_get(e, "type")),
			            "session.status_idle"))
				ck_assert(json_object_get(e, "stop_details") != NULL);
		}
		json_decref(ev);
	}
	json_decref(all);
	json_decref(run);
	json_decref(asc);
}
END_TEST

START_TEST(claude_gets_backend_key_and_beta)
{
	struct h_res r;
	json_t *e, *all;
	size_t i;

	ck_assert_int_eq(h_request("DELETE", cl.port, "/__fake/requests", NULL, &r), 0);
	h_res_free(&r);
	all = walk("/v1/sessions", "", K_CL, 0);
	json_decref(all);
	ck_assert_int_eq(h_get(cl.port, "/__fake/requests", NULL, &r), 0);
	ck_assert_int_gt(json_array_size(r.json), 0);
	json_array_foreach(r.json, i, e) {
		ck_assert_str_eq(
		    json_string_value(json_array_get(json_object_get(e, "x_api_key"), 0)),
		    "sk-ant-test");
		ck_assert_ptr_nonnull(strstr(
		    json_string_value(json_array_get(json_object_get(e, "anthropic_beta"), 0)),
		    "managed-agents-2026-04-01"));
	}
	h_res_free(&r);
}
END_TEST

/* A key mapped to two backends lists both, merged and paged by the core; each id finds its
 * own backend; a key never reaches a backend it is not mapped to. */
START_TEST(routing_merges_and_isolates)
{
	json_t *all = walk("/v1/sessions", "", K_MULTI, 1), *s;
	size_t i, from_sb = 0, from_as = 0;
	struct h_res r;

	check_unique_and_order(all, 1);
	json_array_foreach(all, i, s) {
		struct sg_pubid id;

		ck_assert_int_eq(
		    sg_id_decode("sesn_", json_string_value(json_object_get(s, "id")), &id), 0);
		from_sb += strcmp(id.backend, "sb") == 0;
		from_as += strcmp(id.backend, "as") == 0;
	}
	ck_assert_int_eq(from_sb, count_truth(sb_truth, NULL, 0));
	ck_assert_int_eq(from_as, 30);
	/* An AgentScope id asked with the SandBase-only key: 404, and no backend is asked. */
	ck_assert_int_eq(h_request("DELETE", as.port, "/__fake/requests", NULL, &r), 0);
	h_res_free(&r);
	json_array_foreach(all, i, s) {
		struct sg_pubid id;
		char path[1024];

		sg_id_decode("sesn_", json_string_value(json_object_get(s, "id")), &id);
		if (strcmp(id.backend, "as"))
			continue;
		snprintf(path, sizeof(path), "/v1/sessions/%s",
		         json_string_value(json_object_get(s, "id")));
		ck_assert_int_eq(h_get(gw.port, path, K_SB, &r), 0);
		ck_assert_int_eq(r.status, 404);
		h_res_free(&r);
		ck_assert_int_eq(h_get(gw.port, path, K_MULTI, &r), 0);
		ck_assert_int_eq(r.status, 200);
		h_res_free(&r);
		break;
	}
	json_decref(all);
}
END_TEST

/* Every request above ran with debug logging: neither a client's key nor a backend's key
 * may appear in the log. */
START_TEST(secrets_never_reach_the_log)
{
	static const char *const secrets[] = {"sk-client-sb", "sk-client-cl", "sk-client-multi",
	                                      "sk-sb-test",   "sk-ant-test",  NULL};
	FILE *f = fopen(gw.log, "r");
	char line[8192];
	size_t lines = 0;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		lines++;
		for (size_t i = 0; secrets[i]; i++)
			ck_assert_msg(!strstr(line, secrets[i]), "log line leaks a key: %s", line);
	}
	fclose(f);
	ck_assert_int_gt(lines, 100); /* the debug log did record the traffic */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("backends");
	TCase *tc = tcase_create("backends");
	SRunner *sr;
	int failed;

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, sandbase_list_every_session_once);
	tcase_add_test(tc, sandbase_status_filter_keeps_page_sizes);
	tcase_add_test(tc, sandbase_order_asc_and_dates);
	tcase_add_test(tc, sandbase_retrieve_and_agent_snapshots);
	tcase_add_test(tc, sandbase_gets_only_the_backends_key);
	tcase_add_test(tc, sandbase_agent_snapshots_are_cached);
	tcase_add_test(tc, sandbase_events_native_and_emulated_agree);
	tcase_add_test(tc, sandbase_errors);
	tcase_add_test(tc, claude_list_filters_retrieve_events);
	tcase_add_test(tc, claude_gets_backend_key_and_beta);
	tcase_add_test(tc, routing_merges_and_isolates);
	tcase_add_test(tc, secrets_never_reach_the_log);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
