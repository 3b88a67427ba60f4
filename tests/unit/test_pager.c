/* test_pager.c - the core pager: filters, (created_at, id) ordering, keyset windows, sealed
 * cursors bound to principal and filters. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "held.h"
#include "pager.h"
#include "query.h"

static const uint8_t secret[] = "0123456789abcdef0123456789abcdef";
static const struct sg_pager_ctx ctx = {secret, 32, "alice", NULL, NULL, 0};

/* n sessions; groups of `tie` share one created_at; statuses alternate idle/running. */
static json_t *make_sessions(int n, int tie)
{
	json_t *a = json_array();

	for (int i = 0; i < n; i++) {
		char id[32], ts[40];
		int g = i / tie;

		snprintf(id, sizeof(id), "sesn_%05d", (i * 7919) % 100000);
		snprintf(ts, sizeof(ts), "2026-01-%02dT%02d:%02d:00Z", 1 + g / 600, (g / 60) % 10,
		         g % 60);
		json_array_append_new(
		    a, json_pack("{s:s, s:s, s:s, s:n, s:{s:s, s:i}, s:[]}", "id", id, "created_at",
		                 ts, "status", i % 2 ? "running" : "idle", "archived_at", "agent",
		                 "id", i % 3 ? "agent_a" : "agent_b", "version", 1, "resources"));
	}
	return a;
}

static void parse(const char *qs, struct sg_session_query *q)
{
	struct sg_error e = {0};

	ck_assert_msg(sg_session_query_parse(qs, q, &e) == 0, "%s: %s", qs, e.message);
}

/* Walks every page with changing limits; returns the ids seen, in order. */
static json_t *walk(const json_t *items, const char *filters, unsigned seed, int *pages)
{
	json_t *seen = json_array();
	char *page = NULL;

	*pages = 0;
	srand(seed);
	for (;;) {
		struct sg_session_query q;
		struct sg_error e = {0};
		char qs[8192];
		json_t *out, *s;
		size_t i;
		int limit = 1 + rand() % 9;

		snprintf(qs, sizeof(qs), "%s&limit=%d%s%s", filters, limit, page ? "&page=" : "",
		         page ? page : "");
		parse(qs, &q);
		out = sg_page_sessions(items, &q, &ctx, &e);
		ck_assert_msg(out != NULL, "%s", e.message);
		ck_assert_int_le(json_array_size(json_object_get(out, "data")), limit);
		json_array_foreach(json_object_get(out, "data"), i, s)
			json_array_append(seen, json_object_get(s, "id"));
		(*pages)++;
		free(page);
		page = json_is_string(json_object_get(out, "next_page"))
		           ? strdup(json_string_value(json_object_get(out, "next_page")))
		           : NULL;
		if (!page) {
			ck_assert(json_is_null(json_object_get(out, "next_page")));
		}
		json_decref(out);
		sg_session_query_clear(&q);
		if (!page)
			break;
		ck_assert_int_lt(*pages, 10000);
	}
	return seen;
}

/* The expected order computed independently: a plain sort of (created_at, id). */
static int cmp_pair(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(json_string_value(json_object_get(x, "created_at")),
	               json_string_value(json_object_get(y, "created_at")));

	return c ? c
	         : strcmp(json_string_value(json_object_get(x, "id")),
	                  json_string_value(json_object_get(y, "id")));
}

static json_t *expected_ids(const json_t *items, int desc, const char *status)
{
	size_t n = json_array_size(items), m = 0;
	json_t **v = calloc(n, sizeof(*v)), *ids = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *s = json_array_get(items, i);

		if (status && strcmp(json_string_value(json_object_get(s, "status")), status))
			continue;
		v[m++] = s;
	}
	qsort(v, m, sizeof(*v), cmp_pair);
	for (size_t i = 0; i < m; i++)
		json_array_append(ids, json_object_get(v[desc ? m - 1 - i : i], "id"));
	free(v);
	return ids;
}

/* One page over the listings v[0..n-1] (held.h), parsed back. */
static json_t *held_page(struct sg_held *const *v, size_t n, const char *qs)
{
	struct sg_session_query q;
	struct sg_session_pos pos;
	struct sg_error e = {0};
	size_t len;
	int linked;
	char *text;
	json_t *out;

	parse(qs, &q);
	ck_assert_int_eq(sg_pager_session_pos(&ctx, &q, &pos, &e), 0);
	text = sg_pager_sessions_text(v, n, &q, &ctx, &pos, "snapname", &linked, &len, &e);
	ck_assert_msg(text != NULL, "%s", e.message);
	ck_assert_uint_eq(strlen(text), len);
	out = json_loadb(text, len, 0, NULL);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(linked, !json_is_null(json_object_get(out, "next_page")) ||
	                             !json_is_null(json_object_get(out, "prev_page")));
	free(text);
	sg_pager_session_pos_clear(&pos);
	sg_session_query_clear(&q);
	return out;
}

/* A list merged from several backends' listings pages exactly as one listing of their union:
 * forward to the end, then back with prev_page to the start, in both orders and inside a
 * created_at window; cursors name the snapshot and sealed listings page like unsealed. */
START_TEST(held_listings_merge_like_their_union)
{
	json_t *all = make_sessions(97, 4), *parts[3] = {json_array(), json_array(), json_array()};
	struct sg_held *v[3], *one;
	struct sg_error e = {0};
	static const char *const filters[] = {
	    "order=asc", "order=desc",
	    "created_at[gte]=2026-01-01T00:05:00Z&created_at[lt]=2026-01-01T00:20:00Z",
	    "statuses=running&order=asc"};

	for (size_t i = 0; i < json_array_size(all); i++)
		json_array_append(parts[(i * 5) % 3], json_array_get(all, i));
	for (int k = 0; k < 3; k++) {
		v[k] = sg_held_new(parts[k], SG_HELD_SESSIONS, &e);
		ck_assert_ptr_nonnull(v[k]);
	}
	ck_assert_int_eq(sg_held_seal(v[1]), 0);
	one = sg_held_new(all, SG_HELD_SESSIONS, &e);
	ck_assert_ptr_nonnull(one);
	for (size_t f = 0; f < sizeof(filters) / sizeof(filters[0]); f++) {
		json_t *fwd = json_array(), *back = json_array(), *ref = json_array(), *s, *out;
		char qs[8192], *page = NULL, *prev = NULL;
		size_t i;

		for (;;) { /* forward over the merge, and over the union alongside */
			json_t *o1;

			snprintf(qs, sizeof(qs), "%s&limit=6%s%s", filters[f], page ? "&page=" : "",
			         page ? page : "");
			out = held_page(v, 3, qs);
			o1 = held_page(&one, 1, qs);
			ck_assert(
			    json_equal(json_object_get(out, "data"), json_object_get(o1, "data")));
			json_array_foreach(json_object_get(out, "data"), i, s)
				json_array_append(fwd, json_object_get(s, "id"));
			free(page);
			free(prev);
			page = json_is_string(json_object_get(out, "next_page"))
			           ? strdup(json_string_value(json_object_get(out, "next_page")))
			           : NULL;
			prev = json_is_string(json_object_get(out, "prev_page"))
			           ? strdup(json_string_value(json_object_get(out, "prev_page")))
			           : NULL;
			json_decref(o1);
			json_decref(out);
			if (!page)
				break;
		}
		while (prev) { /* and back from the last page */
			snprintf(qs, sizeof(qs), "%s&limit=6&page=%s", filters[f], prev);
			out = held_page(v, 3, qs);
			for (i = json_array_size(json_object_get(out, "data")); i-- > 0;)
				json_array_insert(
				    back, 0,
				    json_object_get(json_array_get(json_object_get(out, "data"), i),
				                    "id"));
			free(prev);
			prev = json_is_string(json_object_get(out, "prev_page"))
			           ? strdup(json_string_value(json_object_get(out, "prev_page")))
			           : NULL;
			json_decref(out);
		}
		/* the reference: the union in one page (the JSON pager, checked against a plain
		 * sort in the tests below) */
		snprintf(qs, sizeof(qs), "%s&limit=100", filters[f]);
		out = held_page(&one, 1, qs);
		json_array_foreach(json_object_get(out, "data"), i, s)
			json_array_append(ref, json_object_get(s, "id"));
		json_decref(out);
		ck_assert_int_gt(json_array_size(ref), 6);
		ck_assert_msg(json_equal(fwd, ref), "forward walk differs (%s)", filters[f]);
		/* back holds every page but the last one */
		ck_assert_uint_lt(json_array_size(back), json_array_size(ref));
		for (i = 0; i < json_array_size(back); i++)
			ck_assert(json_equal(json_array_get(back, i), json_array_get(ref, i)));
		json_decref(fwd);
		json_decref(back);
		json_decref(ref);
	}
	for (int k = 0; k < 3; k++) {
		sg_held_release(v[k]);
		json_decref(parts[k]);
	}
	sg_held_release(one);
	json_decref(all);
}
END_TEST

START_TEST(walk_desc_with_ties)
{
	json_t *items = make_sessions(333, 7), *want = expected_ids(items, 1, NULL), *got;
	int pages;

	got = walk(items, "", 42, &pages);
	ck_assert_int_eq(json_array_size(got), 333);
	ck_assert(json_equal(got, want));
	ck_assert_int_gt(pages, 333 / 9);
	json_decref(got);
	json_decref(want);
	json_decref(items);
}
END_TEST

START_TEST(walk_asc_filtered)
{
	json_t *items = make_sessions(250, 11), *want = expected_ids(items, 0, "running"), *got;
	int pages;

	got = walk(items, "order=asc&statuses[]=running", 7, &pages);
	ck_assert_int_eq(json_array_size(got), 125);
	ck_assert(json_equal(got, want));
	json_decref(got);
	json_decref(want);
	json_decref(items);
}
END_TEST

START_TEST(all_one_timestamp)
{
	json_t *items = make_sessions(60, 1000), *want = expected_ids(items, 1, NULL), *got;
	int pages;

	got = walk(items, "", 3, &pages);
	ck_assert(json_equal(got, want));
	json_decref(got);
	json_decref(want);
	json_decref(items);
}
END_TEST

static json_t *page_of(const json_t *items, const char *qs, struct sg_error *e)
{
	struct sg_session_query q;
	json_t *out;

	parse(qs, &q);
	out = sg_page_sessions(items, &q, &ctx, e);
	sg_session_query_clear(&q);
	return out;
}

/* A rotation: a cursor sealed under the old secret pages on under [new, old] (whose pages
 * are sealed under the new one) and is refused under [new] alone, with the usual 400. */
START_TEST(cursor_secret_rotation)
{
	static const uint8_t fresh[] = "ffffffffffffffffffffffffffffffff";
	const struct sg_cursor_key both[] = {{fresh, 32}, {secret, 32}}, only[] = {{fresh, 32}};
	const struct sg_pager_ctx rotated = {fresh, 32, "alice", NULL, both, 2};
	const struct sg_pager_ctx retired = {fresh, 32, "alice", NULL, only, 1};
	json_t *items = make_sessions(12, 1);
	struct sg_error e = {0};
	json_t *p1 = page_of(items, "limit=4", &e), *p2, *p3;
	struct sg_session_query q;
	char qs[8192];

	ck_assert_ptr_nonnull(p1);
	snprintf(qs, sizeof(qs), "limit=4&page=%s",
	         json_string_value(json_object_get(p1, "next_page")));
	parse(qs, &q);
	p2 = sg_page_sessions(items, &q, &rotated, &e);
	ck_assert_msg(p2 != NULL, "%s", e.message);
	ck_assert_int_eq(json_array_size(json_object_get(p2, "data")), 4);
	ck_assert_ptr_null(sg_page_sessions(items, &q, &retired, &e));
	ck_assert_int_eq(e.status, 400);
	ck_assert_ptr_nonnull(strstr(e.message, "page: not a cursor this gateway issued"));
	sg_session_query_clear(&q);
	/* the next page's cursor is sealed under the new secret: [new] alone opens it */
	snprintf(qs, sizeof(qs), "limit=4&page=%s",
	         json_string_value(json_object_get(p2, "next_page")));
	parse(qs, &q);
	p3 = sg_page_sessions(items, &q, &retired, &e);
	ck_assert_msg(p3 != NULL, "%s", e.message);
	ck_assert_int_eq(json_array_size(json_object_get(p3, "data")), 4);
	sg_session_query_clear(&q);
	json_decref(p1);
	json_decref(p2);
	json_decref(p3);
	json_decref(items);
}
END_TEST

START_TEST(first_and_last_page)
{
	json_t *items = make_sessions(5, 1);
	struct sg_error e = {0};
	json_t *out = page_of(items, "limit=5", &e);

	ck_assert_int_eq(json_array_size(json_object_get(out, "data")), 5);
	ck_assert(json_is_null(json_object_get(out, "next_page")));
	ck_assert(json_is_null(json_object_get(out, "prev_page")));
	json_decref(out);
	out = page_of(items, "", &e); /* default limit 20 */
	ck_assert_int_eq(json_array_size(json_object_get(out, "data")), 5);
	json_decref(out);
	json_decref(items);
}
END_TEST

START_TEST(prev_page_goes_back)
{
	json_t *items = make_sessions(30, 4);
	struct sg_error e = {0};
	json_t *p1 = page_of(items, "limit=10", &e), *p2, *back;
	char qs[8192];

	snprintf(qs, sizeof(qs), "limit=10&page=%s",
	         json_string_value(json_object_get(p1, "next_page")));
	p2 = page_of(items, qs, &e);
	ck_assert(json_is_string(json_object_get(p2, "prev_page")));
	snprintf(qs, sizeof(qs), "limit=10&page=%s",
	         json_string_value(json_object_get(p2, "prev_page")));
	back = page_of(items, qs, &e);
	ck_assert(json_equal(json_object_get(back, "data"), json_object_get(p1, "data")));
	ck_assert(json_is_null(json_object_get(back, "prev_page")));
	json_decref(p1);
	json_decref(p2);
	json_decref(back);
	json_decref(items);
}
END_TEST

START_TEST(cursor_bound_to_filters_and_key)
{
	json_t *items = make_sessions(30, 4);
	struct sg_error e = {0};
	json_t *p1 = page_of(items, "limit=3&statuses=idle", &e);
	const char *tok = json_string_value(json_object_get(p1, "next_page"));
	struct sg_pager_ctx bob = {secret, 32, "bob", NULL, NULL, 0};
	struct sg_session_query q;
	char qs[8192], bad[4096];
	json_t *out;

	/* Another spelling of the same filter and another limit: accepted. */
	snprintf(qs, sizeof(qs), "limit=9&statuses%%5B%%5D=idle&page=%s", tok);
	out = page_of(items, qs, &e);
	ck_assert_ptr_nonnull(out);
	json_decref(out);
	/* Other filters: refused. */
	snprintf(qs, sizeof(qs), "limit=3&statuses=running&page=%s", tok);
	e.status = 0;
	ck_assert_ptr_null(page_of(items, qs, &e));
	ck_assert_int_eq(e.status, 400);
	ck_assert_str_eq(e.type, "invalid_request_error");
	ck_assert_ptr_nonnull(strstr(e.message, "page"));
	snprintf(qs, sizeof(qs), "limit=3&statuses=idle&order=asc&page=%s", tok);
	e.status = 0;
	ck_assert_ptr_null(page_of(items, qs, &e));
	ck_assert_int_eq(e.status, 400);
	/* Another principal: refused. */
	snprintf(qs, sizeof(qs), "limit=3&statuses=idle&page=%s", tok);
	parse(qs, &q);
	e.status = 0;
	ck_assert_ptr_null(sg_page_sessions(items, &q, &bob, &e));
	ck_assert_int_eq(e.status, 400);
	sg_session_query_clear(&q);
	/* Tampered: refused. */
	snprintf(bad, sizeof(bad), "%s", tok);
	bad[strlen(bad) / 2] = bad[strlen(bad) / 2] == 'A' ? 'B' : 'A';
	snprintf(qs, sizeof(qs), "limit=3&statuses=idle&page=%s", bad);
	e.status = 0;
	ck_assert_ptr_null(page_of(items, qs, &e));
	ck_assert_int_eq(e.status, 400);
	snprintf(qs, sizeof(qs), "limit=3&statuses=idle&page=garbage");
	e.status = 0;
	ck_assert_ptr_null(page_of(items, qs, &e));
	ck_assert_int_eq(e.status, 400);
	json_decref(p1);
	json_decref(items);
}
END_TEST

START_TEST(filters)
{
	json_t *items = json_array(), *out;
	struct sg_error e = {0};

	json_array_append_new(items, json_pack("{s:s,s:s,s:s,s:n,s:{s:s,s:i},s:[{s:s,s:s}]}", "id",
	                                       "sesn_a", "created_at", "2026-01-01T00:00:00Z",
	                                       "status", "idle", "archived_at", "agent", "id",
	                                       "ag1", "version", 1, "resources", "type",
	                                       "memory_store", "memory_store_id", "mem_1"));
	json_array_append_new(
	    items, json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:i},s:[],s:s}", "id", "sesn_b", "created_at",
	                     "2026-01-02T00:00:00.5Z", "status", "terminated", "archived_at",
	                     "2026-01-03T00:00:00Z", "agent", "id", "ag2", "version", 2,
	                     "resources", "deployment_id", "dep_1"));
#define COUNT(qs, n)                                                                               \
	do {                                                                                       \
		out = page_of(items, qs, &e);                                                      \
		ck_assert_msg(out &&json_array_size(json_object_get(out, "data")) == (n), "%s",    \
		              qs);                                                                 \
		json_decref(out);                                                                  \
	} while (0)
	COUNT("", 1);
	COUNT("include_archived=true", 2);
	COUNT("include_archived=true&statuses=terminated", 1);
	COUNT("include_archived=true&statuses[]=idle&statuses[]=terminated", 2);
	COUNT("include_archived=true&agent_id=ag2", 1);
	COUNT("include_archived=true&agent_id=ag2&agent_version=1", 0);
	COUNT("include_archived=true&deployment_id=dep_1", 1);
	COUNT("include_archived=true&memory_store_id=mem_1", 1);
	COUNT("include_archived=true&created_at[gt]=2026-01-02T00:00:00.5Z", 0);
	COUNT("include_archived=true&created_at[gte]=2026-01-02T00:00:00.5Z", 1);
	COUNT("include_archived=true&created_at_lt=2026-01-02T00:00:00.5Z", 1);
	COUNT("include_archived=true&created_at_lte=2026-01-02T08:00:00.5%2B08:00", 2);
#undef COUNT
	json_decref(items);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pager");
	TCase *tc = tcase_create("pager");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, walk_desc_with_ties);
	tcase_add_test(tc, held_listings_merge_like_their_union);
	tcase_add_test(tc, walk_asc_filtered);
	tcase_add_test(tc, all_one_timestamp);
	tcase_add_test(tc, first_and_last_page);
	tcase_add_test(tc, cursor_secret_rotation);
	tcase_add_test(tc, prev_page_goes_back);
	tcase_add_test(tc, cursor_bound_to_filters_and_key);
	tcase_add_test(tc, filters);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
