/* cache.h - a per-worker cache of JSON values with a time to live and a byte budget.
 *
 * A worker's own cache takes no locks; a shared one (sg_cache_new_shared: the process's held
 * listings, held.h) takes a mutex around each operation, which holds it for a hash lookup or
 * an insert, never for I/O. It is an optimisation only: a miss always falls back to asking
 * the backend, and entries expire.
 *
 * Bounded in bytes: everything it holds (keys, entry overhead, and each value's estimated
 * heap size, sg_cache_value_bytes) stays within the budget given to sg_cache_new. A put
 * evicts the least recently used entries (a get counts as a use) until the new one fits. An
 * entry costing more than a quarter of the budget is not cached, so one huge answer never
 * flushes everything else; neither is one whose key is over SG_CACHE_KEY_MAX bytes.
 *
 * Values are shared, never copied: the cache holds a reference and a get hands out another,
 * so a value a caller still holds stays valid after its entry goes. The caller must not
 * change a value after putting it or while it holds one from a get. */
#ifndef SG_CACHE_H
#define SG_CACHE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The budget of each worker's own cache (server.c): AgentScope's agent indexes and the like;
 * translated listings go to the process's shared cache, whose budget is cache.max_bytes. */
#define SG_CACHE_WORKER_BYTES ((size_t)16 << 20)

/* Longer keys are not cached. */
#define SG_CACHE_KEY_MAX 512

struct sg_cache;

/* Counters since sg_cache_new (for metrics). */
struct sg_cache_stats {
	uint64_t hits;      /* gets that returned a value */
	uint64_t misses;    /* gets that did not (expired entries included) */
	uint64_t evictions; /* live entries dropped to make room */
	uint64_t expired;   /* entries dropped because their time had passed */
	uint64_t rejected;  /* puts not kept: key or value too large, or out of memory */
};

/* A cache holding at most max_bytes (0 caches nothing). NULL when out of memory. */
struct sg_cache *sg_cache_new(size_t max_bytes);
/* The same, usable from several threads at once; its values' retain and release must be too. */
struct sg_cache *sg_cache_new_shared(size_t max_bytes);
void sg_cache_free(struct sg_cache *c);

/* A new reference to the live value under key at time now_ms (monotonic), or NULL. An
 * expired entry met here is removed. c may be NULL (always a miss). */
json_t *sg_cache_get(struct sg_cache *c, const char *key, int64_t now_ms);

/* Stores value (borrowed; the cache takes its own reference) under key until now_ms + ttl_ms,
 * replacing any entry under that key. When it is not stored (ttl_ms ≤ 0, key or value too
 * large, out of memory), any older entry under key is removed too, so a get never returns a
 * value older than the caller's last put. */
void sg_cache_put(struct sg_cache *c, const char *key, json_t *value, int64_t now_ms,
                  int64_t ttl_ms);

/* Values other than JSON (the held listings of held.h): the cache keeps a value alive with
 * retain and lets it go with release. A get under a key whose entry holds another type is a
 * miss. */
struct sg_cache_type {
	void (*retain)(void *value);
	void (*release)(void *value);
};

/* As sg_cache_get: the value retained for the caller, or NULL. */
void *sg_cache_get_typed(struct sg_cache *c, const char *key, const struct sg_cache_type *type,
                         int64_t now_ms);
/* As sg_cache_put, with what keeping the value costs given by the caller (value_bytes). */
void sg_cache_put_typed(struct sg_cache *c, const char *key, const struct sg_cache_type *type,
                        void *value, size_t value_bytes, int64_t now_ms, int64_t ttl_ms);

/* Gives the live entry under key ttl_ms more from now_ms and counts it as used. Returns 1 when
 * there was one, else 0. */
int sg_cache_touch(struct sg_cache *c, const char *key, int64_t now_ms, int64_t ttl_ms);

/* Removes the entry under key. Returns 1 when there was one, else 0. */
int sg_cache_del(struct sg_cache *c, const char *key);

/* Bytes accounted to the entries held now (≤ the budget), and how many there are. */
size_t sg_cache_bytes(const struct sg_cache *c);
size_t sg_cache_count(const struct sg_cache *c);
struct sg_cache_stats sg_cache_stats(const struct sg_cache *c);

/* What keeping v (borrowed) alive costs on the heap, estimated from its shape: jansson 2.14's
 * allocations for each node, rounded as glibc's malloc rounds them (see cache.c). Counts a
 * value shared inside v once per place it appears. SIZE_MAX for a value nested deeper than
 * jansson's own parser allows twice over. */
size_t sg_cache_value_bytes(const json_t *v);

/* What glibc's malloc hands out for a request of n bytes (see cache.c); other values'
 * estimates use it too (held.c). */
size_t sg_cache_chunk(size_t n);

/* Replaces the key hash (tests: force collisions). NULL restores the default. */
void sg_cache_set_hash(struct sg_cache *c, uint64_t (*hash)(const char *key, size_t len));

#endif
