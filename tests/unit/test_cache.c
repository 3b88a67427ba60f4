/* test_cache.c - the worker cache: lookups, TTL, LRU order, the byte budget under random
 * load, oversized values, counters, shared values outliving their entries, many keys,
 * colliding hashes, and the value-size estimate against jansson's real allocations. */
#include "cache.h"
#include "held.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB ((size_t)1 << 20)

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* xorshift64*: the same sequence every run */
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static json_t *str_of(size_t len)
{
	char *s = malloc(len + 1);
	json_t *v;

	ck_assert_ptr_nonnull(s);
	memset(s, 'x', len);
	s[len] = '\0';
	v = json_string(s);
	free(s);
	return v;
}

/* What one entry with this key and value costs: measured by putting it in an empty cache. */
static size_t cost_of(const char *key, json_t *v)
{
	struct sg_cache *c = sg_cache_new(SIZE_MAX / 2);
	size_t n;

	sg_cache_put(c, key, v, 0, 1000);
	n = sg_cache_bytes(c);
	ck_assert_uint_eq(sg_cache_count(c), 1);
	sg_cache_free(c);
	return n;
}

START_TEST(get_put_overwrite)
{
	struct sg_cache *c = sg_cache_new(MiB);
	json_t *a = json_pack("{s:i}", "n", 1), *b = json_pack("{s:i}", "n", 2), *got;

	ck_assert_ptr_null(sg_cache_get(c, "k", 0));
	sg_cache_put(c, "k", a, 0, 1000);
	ck_assert_int_eq(a->refcount, 2); /* the cache took its own reference */
	got = sg_cache_get(c, "k", 10);
	ck_assert_ptr_eq(got, a);
	ck_assert_int_eq(a->refcount, 3); /* and handed out a new one */
	json_decref(got);

	/* the same key again replaces the value and releases the old one */
	sg_cache_put(c, "k", b, 20, 1000);
	ck_assert_int_eq(a->refcount, 1);
	got = sg_cache_get(c, "k", 30);
	ck_assert_ptr_eq(got, b);
	json_decref(got);
	ck_assert_uint_eq(sg_cache_count(c), 1);
	/* putting the value it already holds is fine */
	sg_cache_put(c, "k", b, 40, 1000);
	ck_assert_int_eq(b->refcount, 2);

	/* other keys, including ones that share a prefix, are distinct */
	ck_assert_ptr_null(sg_cache_get(c, "k2", 40));
	ck_assert_ptr_null(sg_cache_get(c, "", 40));
	sg_cache_put(c, "", a, 40, 1000);
	got = sg_cache_get(c, "", 40);
	ck_assert_ptr_eq(got, a);
	json_decref(got);
	ck_assert_uint_eq(sg_cache_count(c), 2);

	/* del */
	ck_assert_int_eq(sg_cache_del(c, "k"), 1);
	ck_assert_int_eq(sg_cache_del(c, "k"), 0);
	ck_assert_ptr_null(sg_cache_get(c, "k", 50));
	ck_assert_int_eq(b->refcount, 1);

	sg_cache_free(c);
	ck_assert_int_eq(a->refcount, 1);
	json_decref(a);
	json_decref(b);
}
END_TEST

START_TEST(null_and_degenerate)
{
	struct sg_cache *c = sg_cache_new(MiB);
	json_t *v = json_integer(1), *got;

	/* a NULL cache is a cache that always misses */
	sg_cache_put(NULL, "k", v, 0, 1000);
	ck_assert_ptr_null(sg_cache_get(NULL, "k", 0));
	ck_assert_int_eq(sg_cache_del(NULL, "k"), 0);
	ck_assert_uint_eq(sg_cache_bytes(NULL), 0);
	ck_assert_uint_eq(sg_cache_count(NULL), 0);
	ck_assert_uint_eq(sg_cache_stats(NULL).hits, 0);
	sg_cache_free(NULL);

	/* NULL key or value: nothing stored, nothing crashes */
	sg_cache_put(c, NULL, v, 0, 1000);
	sg_cache_put(c, "k", NULL, 0, 1000);
	ck_assert_ptr_null(sg_cache_get(c, NULL, 0));
	ck_assert_uint_eq(sg_cache_count(c), 0);

	/* a put with no time to live is not kept, and removes what was there */
	sg_cache_put(c, "k", v, 0, 1000);
	sg_cache_put(c, "k", v, 0, 0);
	ck_assert_ptr_null(sg_cache_get(c, "k", 0));
	sg_cache_put(c, "k", v, 0, -5);
	ck_assert_uint_eq(sg_cache_count(c), 0);
	ck_assert_uint_eq(sg_cache_bytes(c), 0);

	/* a huge TTL does not overflow into the past */
	sg_cache_put(c, "k", v, INT64_MAX - 10, INT64_MAX);
	got = sg_cache_get(c, "k", INT64_MAX - 1);
	ck_assert_ptr_eq(got, v);
	json_decref(got);
	sg_cache_free(c);

	/* a budget of 0 caches nothing */
	c = sg_cache_new(0);
	sg_cache_put(c, "k", v, 0, 1000);
	ck_assert_ptr_null(sg_cache_get(c, "k", 0));
	ck_assert_uint_eq(sg_cache_bytes(c), 0);
	sg_cache_free(c);
	ck_assert_int_eq(v->refcount, 1);
	json_decref(v);
}
END_TEST

START_TEST(key_length)
{
	struct sg_cache *c = sg_cache_new(MiB);
	char key[SG_CACHE_KEY_MAX + 2];
	json_t *v = json_true(), *got;

	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0'; /* 513 bytes: too long */
	sg_cache_put(c, key, v, 0, 1000);
	ck_assert_ptr_null(sg_cache_get(c, key, 0));
	ck_assert_uint_eq(sg_cache_count(c), 0);
	ck_assert_uint_eq(sg_cache_stats(c).rejected, 1);
	ck_assert_int_eq(sg_cache_del(c, key), 0);

	key[SG_CACHE_KEY_MAX] = '\0'; /* 512 bytes: the longest kept */
	sg_cache_put(c, key, v, 0, 1000);
	got = sg_cache_get(c, key, 0);
	ck_assert_ptr_eq(got, v);
	json_decref(got);
	sg_cache_free(c);
}
END_TEST

START_TEST(ttl_expiry)
{
	struct sg_cache *c = sg_cache_new(MiB);
	json_t *v = json_string("v"), *got;
	struct sg_cache_stats st;

	sg_cache_put(c, "k", v, 1000, 500);
	got = sg_cache_get(c, "k", 1499); /* live until now + ttl, exclusive */
	ck_assert_ptr_eq(got, v);
	json_decref(got);
	ck_assert_ptr_null(sg_cache_get(c, "k", 1500));
	/* the expired entry was removed when met, its reference released */
	ck_assert_uint_eq(sg_cache_count(c), 0);
	ck_assert_uint_eq(sg_cache_bytes(c), 0);
	ck_assert_int_eq(v->refcount, 1);
	st = sg_cache_stats(c);
	ck_assert_uint_eq(st.hits, 1);
	ck_assert_uint_eq(st.misses, 1);
	ck_assert_uint_eq(st.expired, 1);

	/* a put renews the time to live */
	sg_cache_put(c, "k", v, 2000, 100);
	sg_cache_put(c, "k", v, 2050, 100);
	got = sg_cache_get(c, "k", 2120);
	ck_assert_ptr_eq(got, v);
	json_decref(got);
	/* a get does not */
	ck_assert_ptr_null(sg_cache_get(c, "k", 2150));
	sg_cache_free(c);
	json_decref(v);
}
END_TEST

/* A get protects an entry from eviction; a put evicts from the least recently used end. */
START_TEST(lru_order)
{
	json_t *v = str_of(100), *big, *got;
	size_t per = cost_of("k0", v);
	struct sg_cache *c = sg_cache_new(per * 4); /* exactly four entries */
	char key[16];

	for (int i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		sg_cache_put(c, key, v, 0, 1000);
	}
	ck_assert_uint_eq(sg_cache_count(c), 4);
	ck_assert_uint_eq(sg_cache_bytes(c), per * 4);

	/* use k0, the oldest put: k1 is now the least recently used */
	got = sg_cache_get(c, "k0", 1);
	json_decref(got);
	sg_cache_put(c, "k4", v, 2, 1000);
	ck_assert_uint_eq(sg_cache_count(c), 4);
	ck_assert_ptr_null(sg_cache_get(c, "k1", 3));
	for (int i = 0; i < 5; i++) {
		if (i == 1)
			continue;
		snprintf(key, sizeof(key), "k%d", i);
		got = sg_cache_get(c, key, 3);
		ck_assert_msg(got == v, "%s evicted", key);
		json_decref(got);
	}
	/* the gets above ran k0, k2, k3, k4: k0 goes next; an overwrite counts as a use too */
	sg_cache_put(c, "k0", v, 4, 1000);
	sg_cache_put(c, "k5", v, 5, 1000);
	ck_assert_ptr_null(sg_cache_get(c, "k2", 6));
	got = sg_cache_get(c, "k0", 6);
	ck_assert_ptr_eq(got, v);
	json_decref(got);
	ck_assert_uint_eq(sg_cache_stats(c).evictions, 2);

	sg_cache_free(c);

	/* a value that grows on overwrite evicts others, never itself */
	c = sg_cache_new(per * 16);
	for (int i = 0; i < 16; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		sg_cache_put(c, key, v, 0, 1000);
	}
	big = str_of(100 + per * 2); /* about three entries' worth: within a quarter */
	sg_cache_put(c, "k15", big, 1, 1000);
	ck_assert_uint_le(sg_cache_bytes(c), per * 16);
	ck_assert_uint_eq(sg_cache_count(c), 14); /* k0 and k1 went */
	ck_assert_ptr_null(sg_cache_get(c, "k0", 2));
	ck_assert_ptr_null(sg_cache_get(c, "k1", 2));
	got = sg_cache_get(c, "k15", 2);
	ck_assert_ptr_eq(got, big);
	json_decref(got);
	sg_cache_free(c);

	/* an expired entry at the back goes as expired, not as an eviction */
	c = sg_cache_new(per * 4);
	sg_cache_put(c, "old", v, 0, 10);
	sg_cache_put(c, "a", v, 0, 1000);
	sg_cache_put(c, "b", v, 0, 1000);
	sg_cache_put(c, "c", v, 0, 1000);
	sg_cache_put(c, "d", v, 20, 1000);
	ck_assert_uint_eq(sg_cache_stats(c).expired, 1);
	ck_assert_uint_eq(sg_cache_stats(c).evictions, 0);

	sg_cache_free(c);
	json_decref(big);
	ck_assert_int_eq(v->refcount, 1);
	json_decref(v);
}
END_TEST

/* A value of random shape and size, mostly small, sometimes larger than the budget allows. */
static json_t *random_value(void)
{
	switch (rnd() % 4) {
	case 0:
		return str_of(rnd() % 4096);
	case 1: {
		json_t *a = json_array();
		size_t n = rnd() % 200;

		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, json_integer((json_int_t)i));
		return a;
	}
	case 2: {
		json_t *o = json_object();
		size_t n = rnd() % 50;
		char k[24];

		for (size_t i = 0; i < n; i++) {
			snprintf(k, sizeof(k), "key%zu", i);
			json_object_set_new(o, k, str_of(rnd() % 64));
		}
		return o;
	}
	default:
		return rnd() % 50 ? json_integer(7) : str_of(40000 + rnd() % 40000);
	}
}

#define POOL 300

/* Thousands of random puts, gets and dels: the bytes held never exceed the budget, and a get
 * returns either nothing or exactly the value last put under that key (never an older one). */
START_TEST(budget_never_exceeded)
{
	const size_t budget = 256 << 10;
	struct sg_cache *c = sg_cache_new(budget);
	json_t *last[POOL] = {0};
	char key[32];
	int64_t now = 0;
	size_t held_max = 0;

	for (int i = 0; i < 20000; i++) {
		size_t k = rnd() % POOL;
		uint64_t op = rnd() % 10;

		now += (int64_t)(rnd() % 3);
		snprintf(key, sizeof(key), "key-%zu", k);
		if (op < 6) {
			json_t *v = random_value();
			int64_t ttl = (int64_t)(rnd() % 2000);

			sg_cache_put(c, key, v, now, ttl);
			json_decref(last[k]);
			last[k] = v; /* the cache may or may not hold a reference */
		} else if (op < 9) {
			json_t *got = sg_cache_get(c, key, now);

			ck_assert_msg(!got || got == last[k], "stale value under %s", key);
			json_decref(got);
		} else {
			sg_cache_del(c, key);
		}
		ck_assert_msg(sg_cache_bytes(c) <= budget, "%zu bytes held, budget %zu after op %d",
		              sg_cache_bytes(c), budget, i);
		if (sg_cache_bytes(c) > held_max)
			held_max = sg_cache_bytes(c);
	}
	/* the budget was actually reached, so eviction was exercised */
	ck_assert_uint_gt(held_max, budget * 3 / 4);
	ck_assert_uint_gt(sg_cache_stats(c).evictions, 100);
	ck_assert_uint_gt(sg_cache_stats(c).rejected, 0);
	sg_cache_free(c);
	for (size_t k = 0; k < POOL; k++) {
		if (last[k])
			ck_assert_int_eq(last[k]->refcount,
			                 1); /* the cache gave back every reference */
		json_decref(last[k]);
	}
}
END_TEST

/* Held listings in a shared cache (what api_read.c keeps): each accounted at sg_held_bytes,
 * which grows when it is sealed (every item rendered); the budget holds, the least recently
 * used listing goes first, one over a quarter of the budget is refused, a get of another
 * type misses, and a listing the cache let go stays alive for whoever still holds it. */
START_TEST(held_listings_within_the_budget)
{
	const size_t budget = 512 << 10;
	struct sg_cache *c = sg_cache_new_shared(budget);
	struct sg_error e = {0};
	struct sg_held *h[8], *got;
	size_t before;

	for (int k = 0; k < 8; k++) {
		json_t *items = json_array();
		char key[32];

		for (int i = 0; i < 200; i++)
			json_array_append_new(items,
			                      json_pack("{s:o, s:s, s:s}", "id",
			                                json_sprintf("sesn_%d", 1000 * k + i),
			                                "created_at", "2026-01-01T00:00:00Z",
			                                "title", "a title of some length"));
		h[k] = sg_held_new(items, SG_HELD_SESSIONS, &e);
		json_decref(items);
		ck_assert_ptr_nonnull(h[k]);
		ck_assert_uint_eq(sg_held_count(h[k]), 200);
		before = sg_held_bytes(h[k]);
		ck_assert_int_eq(sg_held_seal(h[k]), 0);
		ck_assert_uint_gt(sg_held_bytes(h[k]), before + 200 * 60);
		snprintf(key, sizeof(key), "held-%d", k);
		sg_cache_put_typed(c, key, &sg_held_cache_type, h[k], sg_held_bytes(h[k]), 0, 1000);
		ck_assert_uint_le(sg_cache_bytes(c), budget);
	}
	ck_assert_uint_eq(sg_cache_count(c), 8);
	got = sg_cache_get_typed(c, "held-0", &sg_held_cache_type, 1);
	ck_assert_ptr_eq(got, h[0]);
	sg_held_release(got);
	ck_assert_ptr_null(sg_cache_get(c, "held-0", 1)); /* not JSON */
	/* one over a quarter of the budget is refused */
	sg_cache_put_typed(c, "huge", &sg_held_cache_type, h[1], budget / 4 + 1, 1, 1000);
	ck_assert_ptr_null(sg_cache_get_typed(c, "huge", &sg_held_cache_type, 1));
	/* a put that needs room evicts the least recently used (held-1; held-0 was just used) */
	ck_assert_uint_gt(sg_cache_bytes(c), budget / 2);
	sg_cache_put_typed(c, "big", &sg_held_cache_type, h[2], budget / 4 - 1024, 1, 1000);
	sg_cache_put_typed(c, "big2", &sg_held_cache_type, h[3], budget / 4 - 1024, 1, 1000);
	ck_assert_ptr_nonnull(sg_cache_get_typed(c, "big2", &sg_held_cache_type, 1));
	sg_held_release(h[3]);
	ck_assert_uint_le(sg_cache_bytes(c), budget);
	ck_assert_ptr_null(sg_cache_get_typed(c, "held-1", &sg_held_cache_type, 1));
	got = sg_cache_get_typed(c, "held-0", &sg_held_cache_type, 1);
	ck_assert_ptr_eq(got, h[0]);
	sg_held_release(got);
	sg_cache_free(c);
	for (int k = 0; k < 8; k++) {
		size_t len;

		/* still ours, still whole */
		ck_assert_ptr_nonnull(sg_held_text(h[k], sg_held_at(h[k], 0), &len));
		ck_assert_uint_gt(len, 20);
		sg_held_release(h[k]);
	}
}
END_TEST

START_TEST(oversized_not_cached)
{
	const size_t budget = 64 << 10;
	struct sg_cache *c = sg_cache_new(budget);
	json_t *small = json_integer(1), *big = str_of(budget / 4), *got;

	/* something else is there first: a rejected put must not evict it */
	sg_cache_put(c, "other", small, 0, 1000);
	sg_cache_put(c, "k", small, 0, 1000);
	sg_cache_put(c, "k", big, 0, 1000);
	ck_assert_uint_eq(sg_cache_stats(c).rejected, 1);
	/* the older value under the key is gone, not served in place of the newer */
	ck_assert_ptr_null(sg_cache_get(c, "k", 1));
	got = sg_cache_get(c, "other", 1);
	ck_assert_ptr_eq(got, small);
	json_decref(got);
	ck_assert_int_eq(big->refcount, 1);
	ck_assert_uint_eq(sg_cache_stats(c).evictions, 0);

	/* just under a quarter of the budget is kept */
	json_t *fits = str_of(budget / 4 - 400);
	ck_assert_uint_le(cost_of("k", fits), budget / 4);
	sg_cache_put(c, "k", fits, 0, 1000);
	got = sg_cache_get(c, "k", 1);
	ck_assert_ptr_eq(got, fits);
	json_decref(got);

	/* a value nested past any sane depth is refused, not walked to the bottom of the stack */
	json_t *deep = json_array(), *in = deep;
	for (int i = 0; i < 5000; i++) {
		json_t *next = json_array();

		json_array_append_new(in, next);
		in = next;
	}
	ck_assert_uint_eq(sg_cache_value_bytes(deep), SIZE_MAX);
	sg_cache_put(c, "deep", deep, 0, 1000);
	ck_assert_ptr_null(sg_cache_get(c, "deep", 1));

	sg_cache_free(c);
	json_decref(deep);
	json_decref(fits);
	json_decref(big);
	json_decref(small);
}
END_TEST

START_TEST(stats_counters)
{
	struct sg_cache *c = sg_cache_new(MiB);
	json_t *v = json_integer(1), *got;
	struct sg_cache_stats st;

	st = sg_cache_stats(c);
	ck_assert_uint_eq(st.hits + st.misses + st.evictions + st.expired + st.rejected, 0);
	ck_assert_ptr_null(sg_cache_get(c, "a", 0));
	sg_cache_put(c, "a", v, 0, 10);
	got = sg_cache_get(c, "a", 1);
	json_decref(got);
	got = sg_cache_get(c, "a", 2);
	json_decref(got);
	ck_assert_ptr_null(sg_cache_get(c, "a", 10));
	st = sg_cache_stats(c);
	ck_assert_uint_eq(st.hits, 2);
	ck_assert_uint_eq(st.misses, 2);
	ck_assert_uint_eq(st.expired, 1);
	ck_assert_uint_eq(st.evictions, 0);
	ck_assert_uint_eq(st.rejected, 0);
	sg_cache_free(c);

	/* evictions: a budget of four entries and five puts */
	c = sg_cache_new(cost_of("a", v) * 4);
	sg_cache_put(c, "a", v, 0, 10);
	sg_cache_put(c, "b", v, 0, 10);
	sg_cache_put(c, "c", v, 0, 10);
	sg_cache_put(c, "d", v, 0, 10);
	sg_cache_put(c, "e", v, 0, 10);
	ck_assert_uint_eq(sg_cache_stats(c).evictions, 1);
	ck_assert_uint_eq(sg_cache_count(c), 4);
	sg_cache_free(c);
	json_decref(v);
}
END_TEST

/* A value a caller got stays valid after its entry is evicted, overwritten or deleted. */
START_TEST(value_outlives_entry)
{
	json_t *v = json_pack("{s:s, s:[i,i,i]}", "name", "kept", "list", 1, 2, 3);
	size_t per = cost_of("k", v);
	struct sg_cache *c = sg_cache_new(per * 4);
	json_t *held, *filler = json_pack("{s:s, s:[i,i,i]}", "name", "fill", "list", 4, 5, 6);
	char key[16];

	sg_cache_put(c, "k", v, 0, 1000);
	json_decref(v); /* the cache holds the only reference now */
	held = sg_cache_get(c, "k", 1);
	ck_assert_ptr_nonnull(held);
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "f%d", i);
		sg_cache_put(c, key, filler, 2, 1000);
	}
	ck_assert_ptr_null(sg_cache_get(c, "k", 3)); /* evicted */
	ck_assert_int_eq(held->refcount, 1);
	ck_assert_str_eq(json_string_value(json_object_get(held, "name")), "kept");
	ck_assert_int_eq(json_array_size(json_object_get(held, "list")), 3);

	/* the same through an overwrite and a del */
	sg_cache_put(c, "k", held, 4, 1000);
	json_decref(held);
	held = sg_cache_get(c, "k", 5);
	sg_cache_put(c, "k", filler, 6, 1000);
	ck_assert_int_eq(held->refcount, 1);
	sg_cache_put(c, "k", held, 7, 1000);
	sg_cache_del(c, "k");
	ck_assert_int_eq(held->refcount, 1);
	ck_assert_str_eq(json_string_value(json_object_get(held, "name")), "kept");

	sg_cache_free(c);
	json_decref(held);
	json_decref(filler);
}
END_TEST

/* 200k keys put and read back: with a linear scan per lookup this would be 2·10^10 key
 * comparisons and far beyond Check's timeout; hashed, it is well under a second. No timing
 * is asserted. */
START_TEST(many_keys)
{
	enum { N = 200000 };
	struct sg_cache *c = sg_cache_new(256 * MiB);
	json_t *v = json_integer(42), *got;
	char key[48];

	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "as\x1fuser-%d\x1fsessions\x1f%d", i % 97, i);
		sg_cache_put(c, key, v, 0, 60000);
	}
	ck_assert_uint_eq(sg_cache_count(c), N);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "as\x1fuser-%d\x1fsessions\x1f%d", i % 97, i);
		got = sg_cache_get(c, key, 1);
		ck_assert_msg(got == v, "miss on %s", key);
		json_decref(got);
	}
	ck_assert_uint_eq(sg_cache_stats(c).hits, N);
	ck_assert_uint_eq(sg_cache_stats(c).evictions, 0);
	/* half of them deleted, the rest still there */
	for (int i = 0; i < N; i += 2) {
		snprintf(key, sizeof(key), "as\x1fuser-%d\x1fsessions\x1f%d", i % 97, i);
		ck_assert_int_eq(sg_cache_del(c, key), 1);
	}
	ck_assert_uint_eq(sg_cache_count(c), N / 2);
	snprintf(key, sizeof(key), "as\x1fuser-%d\x1fsessions\x1f%d", 1 % 97, 1);
	got = sg_cache_get(c, key, 2);
	ck_assert_ptr_eq(got, v);
	json_decref(got);
	sg_cache_free(c);
	ck_assert_int_eq(v->refcount, 1);
	json_decref(v);
}
END_TEST

static uint64_t same_hash(const char *key, size_t len)
{
	(void)key;
	(void)len;
	return 0x5eed;
}

/* Two hashes for many keys: keys differ only past the hash, so the chain compares them. */
static uint64_t two_hashes(const char *key, size_t len)
{
	return len ? (unsigned char)key[len - 1] & 1 : 0;
}

START_TEST(hash_collisions)
{
	enum { N = 2000 };
	struct sg_cache *c = sg_cache_new(64 * MiB);
	json_t *vals[N], *got;
	char key[32];

	sg_cache_set_hash(c, same_hash);
	for (int i = 0; i < N; i++) {
		vals[i] = json_integer(i);
		snprintf(key, sizeof(key), "key-%d", i);
		sg_cache_put(c, key, vals[i], 0, 1000);
	}
	ck_assert_uint_eq(sg_cache_count(c), N);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		got = sg_cache_get(c, key, 1);
		ck_assert_ptr_eq(got, vals[i]);
		json_decref(got);
	}
	/* keys of different lengths with the same prefix are told apart */
	ck_assert_ptr_null(sg_cache_get(c, "key-1999x", 1));
	ck_assert_ptr_null(sg_cache_get(c, "key-", 1));
	/* deleting from the middle, the head and the tail of one chain */
	ck_assert_int_eq(sg_cache_del(c, "key-1000"), 1);
	ck_assert_int_eq(sg_cache_del(c, "key-0"), 1);
	ck_assert_int_eq(sg_cache_del(c, "key-1999"), 1);
	ck_assert_ptr_null(sg_cache_get(c, "key-1000", 1));
	got = sg_cache_get(c, "key-1001", 1);
	ck_assert_ptr_eq(got, vals[1001]);
	json_decref(got);

	/* changing the hash rehashes what is held */
	sg_cache_set_hash(c, two_hashes);
	got = sg_cache_get(c, "key-1002", 1);
	ck_assert_ptr_eq(got, vals[1002]);
	json_decref(got);
	sg_cache_set_hash(c, NULL);
	got = sg_cache_get(c, "key-1003", 1);
	ck_assert_ptr_eq(got, vals[1003]);
	json_decref(got);
	ck_assert_uint_eq(sg_cache_count(c), N - 3);
	sg_cache_free(c);

	/* eviction under collisions: a small budget, one chain */
	c = sg_cache_new(cost_of("key-0000", vals[0]) * 8);
	sg_cache_set_hash(c, same_hash);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "key-%04d", i);
		sg_cache_put(c, key, vals[i], 0, 1000);
	}
	ck_assert_uint_eq(sg_cache_count(c), 8);
	for (int i = 92; i < 100; i++) {
		snprintf(key, sizeof(key), "key-%04d", i);
		got = sg_cache_get(c, key, 1);
		ck_assert_ptr_eq(got, vals[i]);
		json_decref(got);
	}
	sg_cache_free(c);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(vals[i]->refcount, 1);
		json_decref(vals[i]);
	}
}
END_TEST

/* ---- the size estimate against jansson's real allocations ------------------------------- */

/* A counting allocator: every block carries its requested size, and `live` sums glibc's chunk
 * for each block not yet freed (the same rounding cache.c models, so what is compared is the
 * model of jansson's requests, not malloc's behaviour under a sanitiser). */
static size_t live;

static size_t glibc_chunk(size_t n)
{
	n = (n + 8 + 15) & ~(size_t)15;
	return n < 32 ? 32 : n;
}

static void *count_malloc(size_t n)
{
	size_t *p = malloc(n + 16);

	if (!p)
		return NULL;
	p[0] = n;
	live += glibc_chunk(n);
	return p + 2;
}

static void count_free(void *q)
{
	size_t *p;

	if (!q)
		return;
	p = (size_t *)q - 2;
	live -= glibc_chunk(p[0]);
	free(p);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The estimate is within 10% of what jansson really allocates for the value, whether it was
 * parsed or built. */
static void check_estimate(const char *label, json_t *(*make)(const char *), const char *arg)
{
	size_t before = live, real, est;
	json_t *v = make(arg);

	ck_assert_ptr_nonnull(v);
	real = live - before;
	est = sg_cache_value_bytes(v);
	fprintf(stderr, "%-28s real %8zu estimated %8zu (%+.1f%%)\n", label, real, est,
	        100.0 * ((double)est - (double)real) / (double)real);
	ck_assert_msg(est * 10 >= real * 9 && est * 10 <= real * 11,
	              "%s: estimated %zu bytes, jansson allocated %zu", label, est, real);
	json_decref(v);
	ck_assert_uint_eq(live, before);
}

static json_t *parse(const char *text)
{
	return json_loads(text, 0, NULL);
}

static json_t *parse_and_copy(const char *text)
{
	json_t *v = json_loads(text, 0, NULL), *copy = json_deep_copy(v);

	json_decref(v);
	return copy;
}

static json_t *sessions(const char *n)
{
	json_t *a = json_array();

	for (int i = 0; i < atoi(n); i++) {
		json_t *s = json_pack(
		    "{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:i}, s:n, s:s, s:s, s:{s:s, s:s, s:s},"
		    " s:{s:f}, s:[], s:[]}",
		    "id", "sesn_aeaaoyltfvugkyleaeij6hbohvfvu2lyq6lklngd2lq7aaiqbinsypkol5qh",
		    "type", "session", "status", i % 2 ? "idle" : "running", "title",
		    "Weekly report", "agent", "id", "9f1c2e3d4b5a69788796a5b4c3d2e1f0", "name",
		    "Researcher", "version", i, "archived_at", "created_at",
		    "2026-08-21T09:00:00.250000Z", "updated_at", "2026-08-21T09:30:00.750000Z",
		    "metadata", "agentscope.user_id", "u-1", "agentscope.source", "channel",
		    "agentscope.cwd", "reports/2026", "stats", "duration_seconds", 1800.5,
		    "resources", "vault_ids");

		json_array_append_new(a, s);
	}
	return a;
}

START_TEST(value_bytes_matches_jansson)
{
	const char *dir = getenv("SG_SRCDIR") ? getenv("SG_SRCDIR") : ".";
	char path[1024];
	char *text;

	/* exact for the simple nodes */
	ck_assert_uint_eq(sg_cache_value_bytes(json_null()), 0);
	ck_assert_uint_eq(sg_cache_value_bytes(json_true()), 0);
	ck_assert_uint_eq(sg_cache_value_bytes(NULL), 0);

	json_set_alloc_funcs(count_malloc, count_free);
	/* translated north sessions, as the AgentScope module caches them */
	snprintf(path, sizeof(path),
	         "%s/tests/fixtures/agentscope/sessions/head-shape/expected.json", dir);
	text = read_file(path);
	check_estimate("fixture, parsed", parse, text);
	check_estimate("fixture, deep copy", parse_and_copy, text);
	free(text);
	/* the same shape built with json_pack, small and large */
	check_estimate("1 session, built", sessions, "1");
	check_estimate("1000 sessions, built", sessions, "1000");
	check_estimate("numbers", parse, "[1,2,3,4,5,6,7,8,9,10,1.5,2.5,true,null]");
	check_estimate("strings", parse, "[\"\",\"a\",\"a somewhat longer string of text\"]");
	check_estimate("wide object", parse,
	               "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9}");
	json_set_alloc_funcs(malloc, free);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cache");
	TCase *tc = tcase_create("cache");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, get_put_overwrite);
	tcase_add_test(tc, null_and_degenerate);
	tcase_add_test(tc, key_length);
	tcase_add_test(tc, ttl_expiry);
	tcase_add_test(tc, lru_order);
	tcase_add_test(tc, budget_never_exceeded);
	tcase_add_test(tc, oversized_not_cached);
	tcase_add_test(tc, held_listings_within_the_budget);
	tcase_add_test(tc, stats_counters);
	tcase_add_test(tc, value_outlives_entry);
	tcase_add_test(tc, many_keys);
	tcase_add_test(tc, hash_collisions);
	tcase_add_test(tc, value_bytes_matches_jansson);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
