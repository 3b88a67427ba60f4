/* shared.h - the shared tier of walk snapshots: a walk's listings kept in Redis, so a walk
 * whose pages go to different instances of a fleet is still served from what its first page
 * read (issue 16; docs/fleet.md).
 *
 * A snapshot is stored as one Redis string under prefix "snap:" scope ":" name (the scope:
 * the key's name and a digest of what it reaches, sg_snap_scope), with the walk's expiry
 * (cache.walk_snapshot_ms, PX), in a binary format of this file's own (shared.c): each
 * listing's items in keyset order, each with the keys the pager tests and its rendered
 * compact JSON, so rebuilding needs no JSON parse (only an item's resources array, when it
 * has one, is parsed). A snapshot larger than SG_SHARED_SNAP_MAX is not shared.
 *
 * Nothing here fails a read or waits past a deadline: a store that fails is logged at debug
 * and the walk goes on from the instance's own copy; a fetch that misses, times out
 * (the Redis client's deadline) or finds Redis down, or whose bytes do not decode, answers
 * NULL and the caller reads the backend at the cursor's keyset position. A fetched snapshot is
 * rebuilt in slices of SG_SHARED_SNAP_SLICE bytes, the loop serving others between them. */
#ifndef SG_SHARED_H
#define SG_SHARED_H

#include <stddef.h>
#include <stdint.h>

#include "held.h"
#include "redis.h"

struct event_base;

/* The largest snapshot shared (bytes of its stored form): 64 MiB. A 10,000-session AgentScope
 * walk is about 12 MiB. */
#define SG_SHARED_SNAP_MAX ((size_t)64 << 20)
/* A snapshot's commands get longer than the client's redis.timeout_ms, since they move up to
 * SG_SHARED_SNAP_MAX bytes: a store 1 ms more per SG_SHARED_BYTES_PER_MS bytes it sends (at
 * least 128 MB/s), a fetch (whose size is not known before it comes) SG_SHARED_FETCH_GRACE_MS
 * more. */
#define SG_SHARED_BYTES_PER_MS ((size_t)128 << 10)
#define SG_SHARED_FETCH_GRACE_MS 250
/* Bytes of a fetched snapshot rebuilt per loop turn. */
#define SG_SHARED_SNAP_SLICE ((size_t)1 << 20)

/* A number for this process that no other instance is likely to have (random, drawn once), to
 * mix into snapshot names: names are per process, and a cursor may reach any instance. */
uint64_t sg_shared_nonce(void);

/* The stored form of the sealed listings v[0..n-1] of kind: a new buffer of *len bytes, or
 * NULL when it would be larger than max (or out of memory, or a listing is not sealed). */
char *sg_snap_encode(struct sg_held *const *v, size_t n, size_t max, size_t *len);

/* Rebuilding a stored form: new copies buf; step does about budget bytes of it and returns 1
 * when more is left, 0 when done (then take the set), -1 when the bytes are not a snapshot. */
struct sg_snap_dec;
struct sg_snap_dec *sg_snap_dec_new(const char *buf, size_t len);
int sg_snap_dec_step(struct sg_snap_dec *d, size_t budget);
/* The rebuilt set (a new reference) once step returned 0; NULL otherwise. */
struct sg_held_set *sg_snap_dec_take(struct sg_snap_dec *d);
void sg_snap_dec_free(struct sg_snap_dec *d);

/* Where a snapshot lives: the Redis key's parts. */
struct sg_snap_where {
	const char *prefix;    /* redis.key_prefix */
	const char *principal; /* sg_snap_scope's */
	const char *name;
};

struct sg_key;
/* Whose snapshots they are, for their Redis key (a new string, NULL when out of memory): the
 * key's name and a digest of what it reaches (each route's backend name, mapping, URL and
 * identity there). Instances whose configurations disagree about a key then never serve each
 * other's snapshots (one would show another identity's sessions); they miss and read. */
char *sg_snap_scope(const struct sg_key *key);

/* Stores v[0..n-1] (sealed) for ttl_ms. The stored form is made now, in one go (a copy of
 * the rendered items: a few ms for 10,000 sessions, see docs/performance.md). cb NULL: fire
 * and forget. Otherwise cb runs once from the loop when Redis answered, timed out or went away
 * (pass its status to sg_shared_snap_stored, which logs a failure): the handle cancels it. NULL
 * when nothing was sent (Redis down, too large, out of memory): cb never runs. */
struct sg_redis_op *sg_shared_snap_put(struct sg_redis *r, long timeout_ms,
                                       const struct sg_snap_where *w, struct sg_held *const *v,
                                       size_t n, long ttl_ms, sg_redis_cb cb, void *arg);
/* Logs (debug) a store that did not take. */
void sg_shared_snap_stored(enum sg_redis_status st, const struct redisReply *reply);
/* A page was served from the snapshot: it lives ttl_ms more in Redis too (fire-and-forget). */
void sg_shared_snap_touch(struct sg_redis *r, const struct sg_snap_where *w, long ttl_ms);

/* timeout_ms: the client's redis.timeout_ms (the snapshot's grace is added to it).
 * Fetches a snapshot and rebuilds it on base's loop. done runs once, from the loop (never
 * from within start), with a new reference to the set or NULL (a miss, a timeout, Redis
 * down or an unreadable value); the fetch may be freed from within done. NULL when it could
 * not start (Redis down, out of memory): done never runs. Free it to cancel it. */
struct sg_snap_fetch;
typedef void (*sg_snap_done_cb)(struct sg_held_set *set, void *arg);
struct sg_snap_fetch *sg_snap_fetch_start(struct sg_redis *r, long timeout_ms,
                                          struct event_base *base, const struct sg_snap_where *w,
                                          sg_snap_done_cb done, void *arg);
void sg_snap_fetch_free(struct sg_snap_fetch *f);
/* Why done got NULL (ask from within done): 1 when Redis has no such snapshot, 0 when it
 * could not say (a timeout, Redis down) or its value was unreadable. */
int sg_snap_fetch_missed(const struct sg_snap_fetch *f);

#endif
