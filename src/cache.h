/* cache.h - a small per-worker cache of JSON values with a time to live.
 *
 * One per worker, so no locks: workers share nothing mutable. It is an optimisation only:
 * a miss always falls back to asking the backend, and entries expire. Bounded: at most
 * `capacity` entries, the oldest insertion evicted first. */
#ifndef SG_CACHE_H
#define SG_CACHE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct sg_cache;

struct sg_cache *sg_cache_new(size_t capacity);
void sg_cache_free(struct sg_cache *c);
/* A new reference to the live value under key at time now_ms (monotonic), or NULL. */
json_t *sg_cache_get(struct sg_cache *c, const char *key, int64_t now_ms);
/* Stores value (borrowed; a reference is taken) for ttl_ms. Keys over 512 bytes are not
 * cached. */
void sg_cache_put(struct sg_cache *c, const char *key, json_t *value, int64_t now_ms,
                  int64_t ttl_ms);

#endif
