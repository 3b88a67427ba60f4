/* test_pager.c - the core pager: filters, (created_at, id) ordering, keyset windows, sealed
 * cursors bound to principal and filters. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pager.h"
#include "query.h"

static const uint8_t secret[] = "0123456789abcdef0123456789abcdef";
static const struct sg_pager_ctx ctx = {secret, 32, "alice", NULL};

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
	struct sg_pager_ctx bob = {secret, 32, "bob", NULL};
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
	tcase_add_test(tc, walk_asc_filtered);
	tcase_add_test(tc, all_one_timestamp);
	tcase_add_test(tc, first_and_last_page);
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
