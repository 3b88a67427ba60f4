/* test_walk.c - the core's native-paging walk (src/walk.c), over a module defined here that
 * serves two backend pages from memory, with no HTTP.
 *
 * What must hold: done runs exactly once and always from the event loop (never inside
 * sg_walk_start, before the caller has even stored the walk, and never inside a call's own
 * done), also when the walk cannot create its first call; and a walk yields every item of
 * every page, in order, whether it collects everything or serves north pages natively.
 *
 * This program links with -Wl,--wrap=calloc,--wrap=event_new,--wrap=strdup, so libsg's calls
 * to those land here, where a countdown can fail the n-th one from now. sg_call_new allocates
 * with exactly calloc and event_new; jansson, libevent and libc allocate through their own
 * malloc and are not affected (jansson's allocator is hooked by fixture.c instead). Check
 * itself is linked statically and its assertions allocate through the same wrappers, so no
 * ck_assert runs while a countdown is armed. */
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "config.h"
#include "fixture.h"
#include "mapping.h"
#include "query.h"
#include "walk.h"

/* ---- allocation-failure injection -------------------------------------------------------- */

/* Process-wide, like the allocator it replaces; Check runs one test at a time. */
static struct {
	long calloc_in;    /* callocs left before one fails; < 0 = never */
	long event_new_in; /* the same for event_new */
	long strdup_in;    /* and for strdup */
	int fired;
} inject = {-1, -1, -1, 0};

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
struct event *__real_event_new(struct event_base *base, evutil_socket_t fd, short what,
                               event_callback_fn cb, void *arg);
struct event *__wrap_event_new(struct event_base *base, evutil_socket_t fd, short what,
                               event_callback_fn cb, void *arg);
char *__real_strdup(const char *s);
char *__wrap_strdup(const char *s);

void *__wrap_calloc(size_t n, size_t size)
{
	if (inject.calloc_in >= 0 && inject.calloc_in-- == 0) {
		inject.fired = 1;
		errno = ENOMEM;
		return NULL;
	}
	return __real_calloc(n, size);
}

struct event *__wrap_event_new(struct event_base *base, evutil_socket_t fd, short what,
                               event_callback_fn cb, void *arg)
{
	if (inject.event_new_in >= 0 && inject.event_new_in-- == 0) {
		inject.fired = 1;
		return NULL;
	}
	return __real_event_new(base, fd, what, cb, arg);
}

char *__wrap_strdup(const char *s)
{
	if (inject.strdup_in >= 0 && inject.strdup_in-- == 0) {
		inject.fired = 1;
		errno = ENOMEM;
		return NULL;
	}
	return __real_strdup(s);
}

static void inject_arm(long calloc_in, long event_new_in)
{
	inject.calloc_in = calloc_in;
	inject.event_new_in = event_new_in;
	inject.fired = 0;
}

static void inject_strdup(long n)
{
	inject.strdup_in = n;
	inject.fired = 0;
}

static void inject_off(void)
{
	inject.calloc_in = -1;
	inject.event_new_in = -1;
	inject.strdup_in = -1;
}

/* ---- a module that pages from memory ----------------------------------------------------- */

/* Newest first, like a backend's native order: page 1 (cursor NULL) is s3, s2 and says "p2"
 * comes next with carry {"seen": 2}; page 2 is s1 and the end. */
static int pages_served;

/* A north-enough session (what sg_session_query_match reads). Returns a new reference. */
static json_t *session(const char *id, const char *created_at)
{
	return json_pack("{s:s, s:s, s:s, s:n}", "id", id, "created_at", created_at, "status",
	                 "idle", "archived_at");
}

static void mem_sessions_page(struct sg_call *call)
{
	const char *cur = sg_call_page_cursor(call);
	const json_t *carry = sg_call_page_carry(call);
	json_t *items, *carry_out;

	pages_served++;
	if (!cur) {
		items = json_pack("[o, o]", session("s3", "2026-01-01T00:00:03Z"),
		                  session("s2", "2026-01-01T00:00:02Z"));
		carry_out = json_pack("{s:i}", "seen", 2);
		if (!items || !carry_out) {
			json_decref(items);
			json_decref(carry_out);
			sg_call_fail(call, 500, "api_error", "out of memory");
			return;
		}
		sg_call_page(call, items, "p2", carry_out);
		return;
	}
	if (strcmp(cur, "p2") != 0) {
		sg_call_fail(call, 400, "invalid_request_error", "no page '%s'", cur);
		return;
	}
	/* the carry at page 1's end arrives with page 2 */
	if (json_integer_value(json_object_get(carry, "seen")) != 2) {
		sg_call_fail(call, 500, "api_error", "carry lost");
		return;
	}
	items = json_pack("[o]", session("s1", "2026-01-01T00:00:01Z"));
	if (!items) {
		sg_call_fail(call, 500, "api_error", "out of memory");
		return;
	}
	sg_call_page(call, items, NULL, NULL);
}

static const struct sg_mapping mem_mapping = {
    .name = "memory",
    .list_sessions_page = mem_sessions_page,
};

/* A backend whose listing never ends: one session a page, always with a next cursor; the
 * first page's is newer (00:00:03) than every later one's (00:00:01). */
static void endless_sessions_page(struct sg_call *call)
{
	json_t *items =
	    json_pack("[o]", session("s", sg_call_page_cursor(call) ? "2026-01-01T00:00:01Z"
	                                                            : "2026-01-01T00:00:03Z"));

	pages_served++;
	if (!items) {
		sg_call_fail(call, 500, "api_error", "out of memory");
		return;
	}
	sg_call_page(call, items, "more", NULL);
}

static const struct sg_mapping endless_mapping = {
    .name = "endless",
    .list_sessions_page = endless_sessions_page,
};

/* ---- driving a walk ---------------------------------------------------------------------- */

struct rig {
	struct event_base *base;
	struct sg_backend be;
	struct sg_backend_state be_state;
	struct sg_route route;
	struct sg_call_env env;
	struct sg_session_query sq;
};

/* What done saw. */
struct outcome {
	int runs;      /* times done ran */
	int from_loop; /* 1 when the last run was inside event_base_dispatch */
	int status;    /* error status, 0 on success */
	json_t *items; /* the walk's items (new reference) */
	json_t *next;  /* sg_walk_next (new reference or NULL) */
};

static int dispatching;

static void rig_init(struct rig *r)
{
	struct sg_error err;

	memset(r, 0, sizeof(*r));
	r->base = event_base_new();
	ck_assert_ptr_nonnull(r->base);
	r->be.name = "mem";
	r->be.state = &r->be_state;
	r->be.mapping = &mem_mapping;
	r->route.backend = &r->be;
	r->route.identity = json_object();
	ck_assert_ptr_nonnull(r->route.identity);
	r->env.base = r->base;
	r->env.request_id = "req_test";
	r->env.principal = "tester";
	ck_assert_int_eq(sg_session_query_parse(NULL, &r->sq, &err), 0);
	pages_served = 0;
}

static void rig_free(struct rig *r)
{
	sg_session_query_clear(&r->sq);
	json_decref(r->route.identity);
	event_base_free(r->base);
}

static void outcome_clear(struct outcome *o)
{
	json_decref(o->items);
	json_decref(o->next);
	memset(o, 0, sizeof(*o));
}

/* Records what the walk says, then frees it, as server.c does when it replies and frees
 * the request: the walk must not be touched after its done. */
static void on_done(struct sg_walk *w, void *arg)
{
	struct outcome *o = arg;
	const struct sg_error *e = sg_walk_error(w);

	o->runs++;
	o->from_loop = dispatching;
	o->status = e ? e->status : 0;
	json_decref(o->items);
	json_decref(o->next);
	o->items = json_incref(sg_walk_items(w));
	o->next = sg_walk_next(w);
	sg_walk_free(w);
}

static struct sg_walk_spec spec_of(struct rig *r, int collect_all, size_t limit,
                                   const json_t *start)
{
	struct sg_walk_spec spec = {
	    .kind = SG_CALL_SESSIONS_PAGE,
	    .env = &r->env,
	    .route = &r->route,
	    .sq = &r->sq,
	    .collect_all = collect_all,
	    .limit = limit,
	    .start = start,
	};

	return spec;
}

/* Runs the loop until nothing is left. Returns event_base_dispatch's result (asserting is
 * the caller's business, outside any armed countdown). */
static int run_loop(struct rig *r)
{
	int rc;

	dispatching = 1;
	rc = event_base_dispatch(r->base);
	dispatching = 0;
	return rc;
}

/* The ids of o->items, comma-separated, into buf. */
static const char *ids(const struct outcome *o, char *buf, size_t len)
{
	size_t i, pos = 0;
	json_t *it;

	buf[0] = '\0';
	json_array_foreach(o->items, i, it) {
		int n = snprintf(buf + pos, len - pos, "%s%s", i ? "," : "",
		                 json_string_value(json_object_get(it, "id")));

		ck_assert(n >= 0 && (size_t)n < len - pos);
		pos += (size_t)n;
	}
	return buf;
}

/* ---- tests ------------------------------------------------------------------------------- */

/* The walk's first call cannot be created (its calloc fails): sg_walk_start still returns the
 * walk, done has not run when it returns, and runs once from the loop with a 500. Before the
 * fix, done ran inside sg_walk_start and the caller's handler freed the request (and the
 * walk) before the caller had stored it. */
START_TEST(first_call_oom_is_deferred)
{
	struct rig r;
	struct outcome o = {0};
	struct sg_walk_spec spec;
	struct sg_walk *w;
	int runs;

	rig_init(&r);
	spec = spec_of(&r, 1, 0, NULL);
	inject_arm(1, -1); /* the walk's own calloc succeeds, the call's is the next one */
	w = sg_walk_start(&spec, on_done, &o);
	runs = o.runs;
	inject_off();
	ck_assert(inject.fired);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(runs, 0);
	ck_assert_int_ge(run_loop(&r), 0);
	ck_assert_int_eq(o.runs, 1);
	ck_assert(o.from_loop);
	ck_assert_int_eq(o.status, 500);
	ck_assert_int_eq(pages_served, 0);
	ck_assert_ptr_null(o.next);
	outcome_clear(&o);
	rig_free(&r);
}
END_TEST

/* Every calloc and event_new a walk makes, failed in turn: sg_walk_start either returns NULL
 * without running done, or returns a walk whose done runs once, from the loop, with a 500 or
 * (once nothing failed) every item. */
START_TEST(every_allocation_failure)
{
	for (int which = 0; which < 2; which++) {
		for (long n = 0;; n++) {
			struct rig r;
			struct outcome o = {0};
			struct sg_walk_spec spec;
			struct sg_walk *w;
			char buf[64];
			int fired, runs, rc;

			ck_assert_int_lt(n, 100);
			rig_init(&r);
			spec = spec_of(&r, 1, 0, NULL);
			inject_arm(which == 0 ? n : -1, which == 1 ? n : -1);
			w = sg_walk_start(&spec, on_done, &o);
			runs = o.runs;
			rc = run_loop(&r);
			inject_off();
			fired = inject.fired;
			ck_assert_int_ge(rc, 0);
			ck_assert_int_eq(runs, 0);
			if (!w) {
				ck_assert(fired);
				ck_assert_int_eq(o.runs, 0);
			} else {
				ck_assert_int_eq(o.runs, 1);
				ck_assert(o.from_loop);
				if (fired)
					ck_assert_int_eq(o.status, 500);
				else
					ck_assert_str_eq(ids(&o, buf, sizeof(buf)), "s3,s2,s1");
			}
			outcome_clear(&o);
			rig_free(&r);
			if (!fired)
				break;
		}
	}
}
END_TEST

/* Collecting every page: both pages' items in the backend's order, the carry handed from
 * page 1 to page 2, done once from the loop. */
START_TEST(collect_all_pages)
{
	struct rig r;
	struct outcome o = {0};
	struct sg_walk_spec spec;
	struct sg_walk *w;
	char buf[64];

	rig_init(&r);
	spec = spec_of(&r, 1, 0, NULL);
	w = sg_walk_start(&spec, on_done, &o);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(o.runs, 0);
	ck_assert_int_ge(run_loop(&r), 0);
	ck_assert_int_eq(o.runs, 1);
	ck_assert(o.from_loop);
	ck_assert_int_eq(o.status, 0);
	ck_assert_str_eq(ids(&o, buf, sizeof(buf)), "s3,s2,s1");
	ck_assert_int_eq(pages_served, 2);
	ck_assert_ptr_null(o.next);
	outcome_clear(&o);
	rig_free(&r);
}
END_TEST

/* Native mode: north pages of `limit` items, each resumed from the previous one's
 * {"bc","k","c"}, cover s3, s2, s1 exactly once and the last says there is no more. */
START_TEST(native_pages_resume)
{
	static const char *const want[] = {"s3|s2|s1", "s3,s2|s1"};
	size_t limit = (size_t)_i + 1;
	struct rig r;
	char got[64] = "", buf[64];
	json_t *start = NULL;

	rig_init(&r);
	for (int page = 0; page < 5; page++) {
		struct outcome o = {0};
		struct sg_walk_spec spec = spec_of(&r, 0, limit, start);
		struct sg_walk *w = sg_walk_start(&spec, on_done, &o);

		ck_assert_ptr_nonnull(w);
		ck_assert_int_eq(o.runs, 0);
		ck_assert_int_ge(run_loop(&r), 0);
		ck_assert_int_eq(o.runs, 1);
		ck_assert(o.from_loop);
		ck_assert_int_eq(o.status, 0);
		if (*got)
			strcat(got, "|");
		strcat(got, ids(&o, buf, sizeof(buf)));
		json_decref(start);
		start = json_incref(o.next);
		outcome_clear(&o);
		if (!start)
			break;
	}
	ck_assert_ptr_null(start);
	ck_assert_str_eq(got, want[_i]);
	rig_free(&r);
}
END_TEST

/* A north page that ends on the last match of a backend page looks on: when the next backend
 * page holds no match, the page says it is the last (no cursor to an empty page); when a match
 * follows in the same page, the next page starts there. created_at[gte] 00:00:02 keeps s3 and
 * s2 (page 1) and drops s1 (page 2). */
START_TEST(native_page_looks_on_for_the_next_match)
{
	struct rig r;
	struct sg_error err;
	char buf[64];

	for (size_t limit = 1; limit <= 2; limit++) {
		struct outcome o = {0};
		struct sg_walk_spec spec;

		rig_init(&r);
		sg_session_query_clear(&r.sq);
		ck_assert_int_eq(
		    sg_session_query_parse("created_at%5Bgte%5D=2026-01-01T00:00:02Z", &r.sq, &err),
		    0);
		spec = spec_of(&r, 0, limit, NULL);
		ck_assert_ptr_nonnull(sg_walk_start(&spec, on_done, &o));
		ck_assert_int_ge(run_loop(&r), 0);
		ck_assert_int_eq(o.status, 0);
		if (limit == 2) {
			ck_assert_str_eq(ids(&o, buf, sizeof(buf)), "s3,s2");
			ck_assert_int_eq(pages_served, 2); /* it read page 2 to know */
			ck_assert_ptr_null(o.next);
		} else {
			ck_assert_str_eq(ids(&o, buf, sizeof(buf)), "s3");
			ck_assert_int_eq(pages_served, 1);
			ck_assert_ptr_nonnull(o.next);
			ck_assert_int_eq(json_integer_value(json_object_get(o.next, "k")), 1);
		}
		outcome_clear(&o);
		rig_free(&r);
	}
}
END_TEST

/* Reading back from a backend that pages one way (tail mode) reads every page down to the
 * position: within SG_WALK_MAX_PAGES, else a 502 that names the backend, never an endless
 * read or a wrong page. A native page that looks on for its next match stops there too, with
 * a cursor where it stopped. */
START_TEST(tail_and_look_on_are_bounded)
{
	struct rig r;
	struct outcome o = {0};
	struct sg_walk_spec spec;

	rig_init(&r);
	r.be.mapping = &endless_mapping;
	spec = spec_of(&r, 0, 3, NULL);
	spec.tail = 1;
	ck_assert_ptr_nonnull(sg_walk_start(&spec, on_done, &o));
	ck_assert_int_ge(run_loop(&r), 0);
	ck_assert_int_eq(o.status, 502);
	ck_assert_int_eq(pages_served, SG_WALK_MAX_PAGES);
	outcome_clear(&o);
	rig_free(&r);

	/* one match wanted, then nothing matches for ever: the look-on stops at the bound and
	 * the next page starts where it stopped */
	rig_init(&r);
	r.be.mapping = &endless_mapping;
	{
		struct sg_error err;

		sg_session_query_clear(&r.sq);
		ck_assert_int_eq(
		    sg_session_query_parse("created_at%5Bgte%5D=2026-01-01T00:00:02Z", &r.sq, &err),
		    0);
	}
	spec = spec_of(&r, 0, 1, NULL);
	ck_assert_ptr_nonnull(sg_walk_start(&spec, on_done, &o));
	ck_assert_int_ge(run_loop(&r), 0);
	ck_assert_int_eq(o.status, 0);
	ck_assert_int_eq(json_array_size(o.items), 1);
	ck_assert_int_eq(pages_served, SG_WALK_MAX_PAGES);
	ck_assert_ptr_nonnull(o.next);
	ck_assert_str_eq(json_string_value(json_object_get(o.next, "bc")), "more");
	outcome_clear(&o);
	rig_free(&r);
}
END_TEST

/* Without a copy of the next page's cursor the walk must fail, not fetch the first page
 * again (which served s3,s2,s3,s2,s1). The strdups of one walk, in order: call.c keeps the
 * module's next cursor (#0), the walk copies it (#1). */
START_TEST(next_cursor_copy_fails)
{
	struct rig r;
	struct outcome o = {0};
	struct sg_walk_spec spec;
	struct sg_walk *w;
	int rc;

	rig_init(&r);
	spec = spec_of(&r, 1, 0, NULL);
	inject_strdup(1);
	w = sg_walk_start(&spec, on_done, &o);
	rc = run_loop(&r);
	inject_off();
	ck_assert_ptr_nonnull(w);
	ck_assert_int_ge(rc, 0);
	ck_assert(inject.fired);
	ck_assert_int_eq(o.runs, 1);
	ck_assert_int_eq(o.status, 500);
	ck_assert_int_eq(pages_served, 1);
	outcome_clear(&o);
	rig_free(&r);
}
END_TEST

/* The same when the next page's call cannot keep its copy of the cursor (#2: the call's
 * page input): without the fix the call read page 1 again. */
START_TEST(call_cursor_copy_fails)
{
	struct rig r;
	struct outcome o = {0};
	struct sg_walk_spec spec;
	struct sg_walk *w;
	int rc;

	rig_init(&r);
	spec = spec_of(&r, 1, 0, NULL);
	inject_strdup(2);
	w = sg_walk_start(&spec, on_done, &o);
	rc = run_loop(&r);
	inject_off();
	ck_assert_ptr_nonnull(w);
	ck_assert_int_ge(rc, 0);
	ck_assert(inject.fired);
	ck_assert_int_eq(o.runs, 1);
	ck_assert_int_eq(o.status, 500);
	ck_assert_int_eq(pages_served, 1);
	outcome_clear(&o);
	rig_free(&r);
}
END_TEST

/* Resuming from a cursor whose backend cursor cannot be copied: no walk, rather than one
 * that starts over at the first page. */
START_TEST(start_cursor_copy_fails)
{
	struct rig r;
	struct outcome o = {0};
	struct sg_walk_spec spec;
	struct sg_walk *w;
	json_t *start = json_pack("{s:s, s:i, s:{s:i}}", "bc", "p2", "k", 0, "c", "seen", 2);

	rig_init(&r);
	spec = spec_of(&r, 0, 2, start);
	inject_strdup(0);
	w = sg_walk_start(&spec, on_done, &o);
	inject_off();
	ck_assert_ptr_null(w);
	ck_assert(inject.fired);
	ck_assert_int_ge(run_loop(&r), 0);
	ck_assert_int_eq(o.runs, 0);
	ck_assert_int_eq(pages_served, 0);
	json_decref(start);
	rig_free(&r);
}
END_TEST

/* Every jansson allocation of a walk failed in turn (fixture.c's injector), in each mode:
 * the walk ends once, from the loop, with either exactly the answer it gives with memory
 * (items and next cursor) or a 500, never a shorter listing or a lost cursor; and every
 * jansson allocation made meanwhile is freed. */
START_TEST(every_json_allocation_failure)
{
	static const struct {
		int collect_all;
		size_t limit;
	} mode[] = {{1, 0}, {0, 2}, {0, 1}};

	for (size_t m = 0; m < sizeof(mode) / sizeof(mode[0]); m++) {
		struct rig r;
		struct outcome ref = {0};
		struct sg_walk_spec spec;

		rig_init(&r);
		spec = spec_of(&r, mode[m].collect_all, mode[m].limit, NULL);
		ck_assert_ptr_nonnull(sg_walk_start(&spec, on_done, &ref));
		ck_assert_int_ge(run_loop(&r), 0);
		ck_assert_int_eq(ref.status, 0);
		for (long n = 0;; n++) {
			struct outcome o = {0};
			struct sg_walk *w;
			long live;
			int fired, runs, rc;

			ck_assert_int_lt(n, 1000);
			sg_fixture_alloc_begin(n);
			w = sg_walk_start(&spec, on_done, &o);
			runs = o.runs;
			rc = run_loop(&r);
			fired = sg_fixture_alloc_fired();
			ck_assert_int_ge(rc, 0);
			ck_assert_int_eq(runs, 0);
			if (!w) {
				ck_assert(fired);
				ck_assert_int_eq(o.runs, 0);
			} else {
				ck_assert_int_eq(o.runs, 1);
				ck_assert(o.from_loop);
				if (o.status) {
					ck_assert_msg(fired, "mode %zu: %d without a failure", m,
					              o.status);
					ck_assert_int_eq(o.status, 500);
				} else {
					ck_assert_msg(json_equal(o.items, ref.items),
					              "mode %zu: other items at %ld", m, n);
					ck_assert_msg(json_equal(o.next, ref.next) ||
					                  (!o.next && !ref.next),
					              "mode %zu: other next at %ld", m, n);
				}
			}
			outcome_clear(&o);
			live = sg_fixture_alloc_end();
			ck_assert_msg(live == 0, "mode %zu: %ld leaked at %ld", m, live, n);
			if (!fired)
				break;
		}
		outcome_clear(&ref);
		rig_free(&r);
	}
}
END_TEST

/* Freed before its done ran: done never runs and nothing leaks (ASan build). */
START_TEST(free_before_done)
{
	struct rig r;
	struct outcome o = {0};
	struct sg_walk_spec spec;
	struct sg_walk *w;

	rig_init(&r);
	spec = spec_of(&r, 1, 0, NULL);
	inject_arm(1, -1);
	w = sg_walk_start(&spec, on_done, &o);
	inject_off();
	ck_assert_ptr_nonnull(w);
	sg_walk_free(w);
	ck_assert_int_ge(run_loop(&r), 0);
	ck_assert_int_eq(o.runs, 0);

	w = sg_walk_start(&spec, on_done, &o);
	ck_assert_ptr_nonnull(w);
	sg_walk_free(w);
	ck_assert_int_ge(run_loop(&r), 0);
	ck_assert_int_eq(o.runs, 0);
	rig_free(&r);
}
END_TEST

static Suite *walk_suite(void)
{
	Suite *s = suite_create("walk");
	TCase *tc = tcase_create("walk");

	tcase_add_test(tc, first_call_oom_is_deferred);
	tcase_add_test(tc, every_allocation_failure);
	tcase_add_test(tc, collect_all_pages);
	tcase_add_loop_test(tc, native_pages_resume, 0, 2);
	tcase_add_test(tc, native_page_looks_on_for_the_next_match);
	tcase_add_test(tc, tail_and_look_on_are_bounded);
	tcase_add_test(tc, free_before_done);
	tcase_add_test(tc, next_cursor_copy_fails);
	tcase_add_test(tc, call_cursor_copy_fails);
	tcase_add_test(tc, start_cursor_copy_fails);
	tcase_add_test(tc, every_json_allocation_failure);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(walk_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
