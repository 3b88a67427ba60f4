/* cache.c - see cache.h.
 *
 * A chained hash table on a 64-bit hash of the key (a power-of-two number of buckets,
 * doubled once there are as many entries as buckets) for lookups, and one doubly linked list
 * in order of last use for eviction: a get or put moves its entry to the front, a put that
 * does not fit drops entries from the back. Both are O(1) on average; nothing scans.
 *
 * What an entry costs is decided once, at put: its own allocation (the key is stored in it),
 * its share of the bucket array, and the value's estimated heap size (sg_cache_value_bytes).
 * The sum over entries is what sg_cache_bytes reports and what the budget bounds. */
#include "cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	struct entry *hnext;       /* hash chain */
	struct entry *prev, *next; /* use list: prev is more recent */
	uint64_t hash;
	void *value;
	const struct sg_cache_type *type;
	int64_t expires;
	size_t cost; /* bytes accounted to it */
	size_t keylen;
	char key[]; /* NUL-terminated */
};

struct sg_cache {
	struct entry **buckets;
	size_t nbuckets; /* a power of two */
	size_t count, bytes, max_bytes;
	struct entry *newest, *oldest;
	struct sg_cache_stats stats;
	uint64_t (*hash)(const char *key, size_t len);
	int shared; /* the operations below take mu */
	pthread_mutex_t mu;
};

static void lock(const struct sg_cache *c)
{
	if (c->shared)
		pthread_mutex_lock((pthread_mutex_t *)&c->mu);
}

static void unlock(const struct sg_cache *c)
{
	if (c->shared)
		pthread_mutex_unlock((pthread_mutex_t *)&c->mu);
}

/* The counters and sizes below are read by the metrics scrape from another thread (metrics.h)
 * while a worker's own cache, which takes no lock, changes them: its one writer stores them
 * with relaxed atomics (plain stores on the usual targets) and sg_cache_stats, _bytes and _count
 * load them the same way. */
#define SET(field, value) __atomic_store_n(&(field), (value), __ATOMIC_RELAXED)
#define BUMP(field) SET(field, (field) + 1)
#define LOAD(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

#define MIN_BUCKETS 16

/* An entry may cost at most this fraction of the budget (1/4): one huge answer cannot flush
 * everything else, and at least four of the largest fit side by side, so a few of them used in
 * turn do not evict each other on every put. */
#define ENTRY_SHARE 4

/* ---- what a value costs ------------------------------------------------------------------
 *
 * jansson 2.14 on LP64 allocates, per node (measured with json_set_alloc_funcs, logging every
 * request while building and parsing values; test_cache's value_bytes_matches_jansson checks
 * the model against the same count):
 *   string   32 bytes (json_string_t) + the text, length + 1
 *   integer, real   24 bytes
 *   true, false, null   nothing (shared singletons)
 *   object   72 bytes + 16 a bucket (a power of two, at least 8, at least the member count),
 *            and per member 56 bytes + the key's length + 1 (struct hashtable_pair, key inline)
 *   array    40 bytes + 8 a slot (8 slots, doubled when full)
 * and glibc's malloc hands out each request as a chunk of request + 8 bytes of header,
 * rounded up to 16, at least 32 (chunk()). So a short string really costs 48 + 32 = 80
 * bytes, an integer 32, an object member about 80 plus its key and value: the per-node
 * overhead, not the text, dominates a typical listing, which is why it is modelled rather
 * than approximated by the length of the JSON text. */

#define JS_STRING 32
#define JS_NUMBER 24
#define JS_OBJECT 72
#define JS_BUCKET 16
#define JS_MIN_BUCKETS 8
#define JS_PAIR 56
#define JS_ARRAY 40
#define JS_SLOT 8
#define JS_MIN_SLOTS 8

/* jansson's parser refuses nesting deeper than 2048; a value built by hand deeper than twice
 * that is not worth caching (and bounds the recursion). */
#define MAX_DEPTH 4096

static size_t chunk(size_t n)
{
	if (n > SIZE_MAX - 32)
		return SIZE_MAX;
	n = (n + 8 + 15) & ~(size_t)15;
	return n < 32 ? 32 : n;
}

size_t sg_cache_chunk(size_t n)
{
	return chunk(n);
}

static size_t add(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static size_t pow2_at_least(size_t n, size_t min)
{
	size_t p = min;

	while (p < n && p <= SIZE_MAX / 2)
		p *= 2;
	return p;
}

static size_t value_bytes(const json_t *v, int depth)
{
	size_t sum, n;

	if (depth > MAX_DEPTH)
		return SIZE_MAX;
	switch (json_typeof(v)) {
	case JSON_STRING:
		return add(chunk(JS_STRING), chunk(json_string_length(v) + 1));
	case JSON_INTEGER:
	case JSON_REAL:
		return chunk(JS_NUMBER);
	case JSON_OBJECT: {
		const char *k;
		size_t klen;
		json_t *m;

		n = json_object_size(v);
		sum = add(chunk(JS_OBJECT), chunk(JS_BUCKET * pow2_at_least(n, JS_MIN_BUCKETS)));
		json_object_keylen_foreach((json_t *)v, k, klen, m) {
			sum = add(sum, chunk(JS_PAIR + klen + 1));
			sum = add(sum, value_bytes(m, depth + 1));
		}
		return sum;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *m;

		n = json_array_size(v);
		sum = add(chunk(JS_ARRAY), chunk(JS_SLOT * pow2_at_least(n, JS_MIN_SLOTS)));
		json_array_foreach(v, i, m)
			sum = add(sum, value_bytes(m, depth + 1));
		return sum;
	}
	default: /* true, false, null */
		return 0;
	}
}

size_t sg_cache_value_bytes(const json_t *v)
{
	return v ? value_bytes(v, 0) : 0;
}

/* The entry's own chunk plus its share of the bucket array: 8 bytes a bucket, between one and
 * two buckets an entry (the table doubles when full and never shrinks, so after many
 * removals it can be more; entries are bounded by the budget, and so is the table). */
static size_t entry_bytes(size_t keylen)
{
	return chunk(sizeof(struct entry) + keylen + 1) + 2 * sizeof(struct entry *);
}

/* ---- the table and the use list ---------------------------------------------------------- */

/* FNV-1a, then murmur3's finaliser so that the low bits the bucket mask keeps depend on
 * every byte. Keys are the gateway's own (backend, identity, path), not a client's bytes. */
static uint64_t default_hash(const char *key, size_t len)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static struct entry **slot_of(struct sg_cache *c, uint64_t h)
{
	return &c->buckets[h & (c->nbuckets - 1)];
}

static struct entry *find(struct sg_cache *c, const char *key, size_t len, uint64_t h)
{
	struct entry *e = *slot_of(c, h);

	while (e && (e->hash != h || e->keylen != len || memcmp(e->key, key, len)))
		e = e->hnext;
	return e;
}

static void list_unlink(struct sg_cache *c, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->newest = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->oldest = e->prev;
	e->prev = e->next = NULL;
}

static void list_push_front(struct sg_cache *c, struct entry *e)
{
	e->prev = NULL;
	e->next = c->newest;
	if (c->newest)
		c->newest->prev = e;
	else
		c->oldest = e;
	c->newest = e;
}

/* Doubles the bucket array. On failure the table stays as it is: chains grow longer, every
 * lookup is still right. */
static void grow(struct sg_cache *c)
{
	size_t n = c->nbuckets * 2;
	struct entry **b;

	if (n > SIZE_MAX / sizeof(*b))
		return;
	b = calloc(n, sizeof(*b));
	if (!b)
		return;
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct entry *e = c->buckets[i], *next;

		for (; e; e = next) {
			next = e->hnext;
			e->hnext = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
}

static void insert(struct sg_cache *c, struct entry *e)
{
	struct entry **s = slot_of(c, e->hash);

	e->hnext = *s;
	*s = e;
	list_push_front(c, e);
	SET(c->count, c->count + 1);
	SET(c->bytes, c->bytes + e->cost);
	if (c->count >= c->nbuckets)
		grow(c);
}

static void drop(struct sg_cache *c, struct entry *e)
{
	struct entry **s = slot_of(c, e->hash);

	while (*s != e)
		s = &(*s)->hnext;
	*s = e->hnext;
	list_unlink(c, e);
	SET(c->count, c->count - 1);
	SET(c->bytes, c->bytes - e->cost);
	e->type->release(e->value);
	free(e);
}

/* ---- the interface ----------------------------------------------------------------------- */

struct sg_cache *sg_cache_new(size_t max_bytes)
{
	struct sg_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->nbuckets = MIN_BUCKETS;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return NULL;
	}
	c->max_bytes = max_bytes;
	c->hash = default_hash;
	return c;
}

struct sg_cache *sg_cache_new_shared(size_t max_bytes)
{
	struct sg_cache *c = sg_cache_new(max_bytes);

	if (c && pthread_mutex_init(&c->mu, NULL) == 0)
		c->shared = 1;
	else if (c) {
		sg_cache_free(c);
		c = NULL;
	}
	return c;
}

void sg_cache_free(struct sg_cache *c)
{
	struct entry *e, *next;

	if (!c)
		return;
	for (e = c->newest; e; e = next) {
		next = e->next;
		e->type->release(e->value);
		free(e);
	}
	free(c->buckets);
	if (c->shared)
		pthread_mutex_destroy(&c->mu);
	free(c);
}

static void *get_typed(struct sg_cache *c, const char *key, const struct sg_cache_type *type,
                       int64_t now_ms)
{
	struct entry *e;
	size_t len;

	if (!c || !key)
		return NULL;
	len = strlen(key);
	e = len <= SG_CACHE_KEY_MAX ? find(c, key, len, c->hash(key, len)) : NULL;
	if (e && e->expires <= now_ms) {
		drop(c, e);
		BUMP(c->stats.expired);
		e = NULL;
	}
	if (!e || e->type != type) {
		BUMP(c->stats.misses);
		return NULL;
	}
	BUMP(c->stats.hits);
	if (c->newest != e) {
		list_unlink(c, e);
		list_push_front(c, e);
	}
	type->retain(e->value);
	return e->value;
}

void *sg_cache_get_typed(struct sg_cache *c, const char *key, const struct sg_cache_type *type,
                         int64_t now_ms)
{
	void *out;

	if (!c)
		return NULL;
	lock(c);
	out = get_typed(c, key, type, now_ms);
	unlock(c);
	return out;
}

static void json_retain(void *v)
{
	json_incref(v);
}

static void json_release(void *v)
{
	json_decref(v);
}

static const struct sg_cache_type json_cache_type = {json_retain, json_release};

json_t *sg_cache_get(struct sg_cache *c, const char *key, int64_t now_ms)
{
	return sg_cache_get_typed(c, key, &json_cache_type, now_ms);
}

/* Drops entries from the back of the use list, never `keep`, until `need` more bytes fit
 * (need ≤ max_bytes / ENTRY_SHARE). An expired entry dropped here counts as expired, not as an
 * eviction. */
static void make_room(struct sg_cache *c, size_t need, const struct entry *keep, int64_t now_ms)
{
	while (c->bytes > c->max_bytes - need && c->oldest && c->oldest != keep) {
		struct entry *e = c->oldest;

		if (e->expires <= now_ms)
			BUMP(c->stats.expired);
		else
			BUMP(c->stats.evictions);
		drop(c, e);
	}
}

static void put_typed(struct sg_cache *c, const char *key, const struct sg_cache_type *type,
                      void *value, size_t value_bytes, int64_t now_ms, int64_t ttl_ms)
{
	struct entry *e;
	size_t len, cost;
	uint64_t h;

	if (!c || !key)
		return;
	len = strlen(key);
	if (len > SG_CACHE_KEY_MAX) {
		BUMP(c->stats.rejected);
		return;
	}
	h = c->hash(key, len);
	e = find(c, key, len, h);
	if (!value || ttl_ms <= 0)
		goto refuse;
	cost = add(entry_bytes(len), value_bytes);
	if (cost > c->max_bytes / ENTRY_SHARE) {
		BUMP(c->stats.rejected);
		goto refuse;
	}
	if (e) {
		/* the same key again: keep the entry, change its value and cost */
		void *old = e->value;
		const struct sg_cache_type *otype = e->type;

		type->retain(value);
		e->value = value;
		e->type = type;
		otype->release(old);
		SET(c->bytes, c->bytes - e->cost + cost);
		e->cost = cost;
		list_unlink(c, e);
		list_push_front(c, e);
		make_room(c, 0, e, now_ms);
	} else {
		e = malloc(sizeof(*e) + len + 1);
		if (!e) {
			BUMP(c->stats.rejected);
			return;
		}
		memcpy(e->key, key, len + 1);
		e->keylen = len;
		e->hash = h;
		type->retain(value);
		e->value = value;
		e->type = type;
		e->cost = cost;
		make_room(c, cost, NULL, now_ms);
		insert(c, e);
	}
	e->expires = ttl_ms > INT64_MAX - now_ms ? INT64_MAX : now_ms + ttl_ms;
	return;

refuse:
	if (e)
		drop(c, e);
}

void sg_cache_put_typed(struct sg_cache *c, const char *key, const struct sg_cache_type *type,
                        void *value, size_t value_bytes, int64_t now_ms, int64_t ttl_ms)
{
	if (!c)
		return;
	lock(c);
	put_typed(c, key, type, value, value_bytes, now_ms, ttl_ms);
	unlock(c);
}

void sg_cache_put(struct sg_cache *c, const char *key, json_t *value, int64_t now_ms,
                  int64_t ttl_ms)
{
	sg_cache_put_typed(c, key, &json_cache_type, value, value ? sg_cache_value_bytes(value) : 0,
	                   now_ms, ttl_ms);
}

static int touch(struct sg_cache *c, const char *key, int64_t now_ms, int64_t ttl_ms)
{
	struct entry *e;
	size_t len;

	if (!c || !key || ttl_ms <= 0)
		return 0;
	len = strlen(key);
	e = len <= SG_CACHE_KEY_MAX ? find(c, key, len, c->hash(key, len)) : NULL;
	if (!e || e->expires <= now_ms)
		return 0;
	e->expires = ttl_ms > INT64_MAX - now_ms ? INT64_MAX : now_ms + ttl_ms;
	if (c->newest != e) {
		list_unlink(c, e);
		list_push_front(c, e);
	}
	return 1;
}

int sg_cache_touch(struct sg_cache *c, const char *key, int64_t now_ms, int64_t ttl_ms)
{
	int out;

	if (!c)
		return 0;
	lock(c);
	out = touch(c, key, now_ms, ttl_ms);
	unlock(c);
	return out;
}

static int del(struct sg_cache *c, const char *key)
{
	struct entry *e;
	size_t len;

	if (!c || !key)
		return 0;
	len = strlen(key);
	e = len <= SG_CACHE_KEY_MAX ? find(c, key, len, c->hash(key, len)) : NULL;
	if (!e)
		return 0;
	drop(c, e);
	return 1;
}

int sg_cache_del(struct sg_cache *c, const char *key)
{
	int out;

	if (!c)
		return 0;
	lock(c);
	out = del(c, key);
	unlock(c);
	return out;
}

size_t sg_cache_bytes(const struct sg_cache *c)
{
	size_t n;

	if (!c)
		return 0;
	lock(c);
	n = LOAD(c->bytes);
	unlock(c);
	return n;
}

size_t sg_cache_count(const struct sg_cache *c)
{
	size_t n;

	if (!c)
		return 0;
	lock(c);
	n = LOAD(c->count);
	unlock(c);
	return n;
}

struct sg_cache_stats sg_cache_stats(const struct sg_cache *c)
{
	struct sg_cache_stats st = {0};

	if (c) {
		lock(c);
		st.hits = LOAD(c->stats.hits);
		st.misses = LOAD(c->stats.misses);
		st.evictions = LOAD(c->stats.evictions);
		st.expired = LOAD(c->stats.expired);
		st.rejected = LOAD(c->stats.rejected);
		unlock(c);
	}
	return st;
}

void sg_cache_set_hash(struct sg_cache *c, uint64_t (*hash)(const char *key, size_t len))
{
	if (!c)
		return;
	c->hash = hash ? hash : default_hash;
	/* rehash what is held under the new function */
	memset(c->buckets, 0, c->nbuckets * sizeof(*c->buckets));
	for (struct entry *e = c->newest; e; e = e->next) {
		struct entry **s;

		e->hash = c->hash(e->key, e->keylen);
		s = slot_of(c, e->hash);
		e->hnext = *s;
		*s = e;
	}
}
