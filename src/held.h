/* held.h - a held listing: one backend's north items, ordered once, each rendered once.
 *
 * The read path hands the pager (pager.h) held listings instead of JSON arrays. A listing is
 * built from the north objects a module produced (sessions, agents, or one session's events),
 * ordered by the keyset the pager walks — (created_at, id) for sessions, (processed_at, log
 * position) for events — with the fields the north filters test taken out of each object, so
 * a page is a binary search for the cursor's position, a filter over the items it looks at,
 * and a concatenation of their bytes: its cost does not grow with the listing's size.
 *
 * Each item's compact JSON is rendered when a page first needs it. A sealed listing has every
 * item rendered and its JSON objects let go: it is what the worker's cache keeps (it is
 * smaller, and immutable from then on), for the freshness window of its backend and, while a
 * walk over it keeps going, as that walk's snapshot (api_read.c).
 *
 * A listing is built by one worker; once sealed it never changes and may be shared by every
 * worker (the process's cache of held listings), so reference counts are atomic. An unsealed
 * listing renders lazily and must stay with the thread that built it. */
#ifndef SG_HELD_H
#define SG_HELD_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "error.h"

enum sg_held_kind {
	SG_HELD_SESSIONS, /* sessions or agents: id, created_at, the session filters' fields */
	SG_HELD_EVENTS,   /* events in log order: type, processed_at */
};

struct sg_held_item {
	int64_t t;  /* created_at (sessions) or processed_at (events), µs since the epoch */
	size_t seq; /* position among the items the listing was built from */
	const char *id;
	/* what the filters test (sessions); NULL / -1 / 0 when absent */
	const char *agent_id, *deployment_id;
	int64_t agent_version;
	unsigned status; /* enum sg_session_status bit */
	int archived;
	json_t *resources; /* its resources array (for memory_store_id), or NULL */
	const char *type;  /* events */
	/* private: the object until sealed, and the rendering */
	json_t *obj;
	char *text;
	size_t len;
};

struct sg_held;

/* Fills it from obj (borrowed; the strings point into it, resources too): 0, or -1 when obj
 * lacks a readable id and created_at (sessions) or type and processed_at (events); the
 * session filters' fields are filled either way. */
int sg_held_keys(const json_t *obj, enum sg_held_kind kind, struct sg_held_item *it);

/* Builds a listing from items (an array of north objects, borrowed: the listing takes its own
 * references until sealed). NULL with err: 500 for an item without a readable id and
 * created_at (sessions) or type and processed_at (events), or out of memory. */
struct sg_held *sg_held_new(const json_t *items, enum sg_held_kind kind, struct sg_error *err);

/* Built one item at a time: begin, add each north object (stolen) in source order, end (which
 * orders them). With seal, each item is rendered and its object dropped as it is added (the
 * listing ends sealed): a large listing is never all JSON trees at once. add and end return
 * 0, or -1 with err (500: an item without its keys, or out of memory); after a failure only
 * sg_held_release is allowed. */
struct sg_held *sg_held_begin(enum sg_held_kind kind, int seal);
int sg_held_add(struct sg_held *h, json_t *obj, struct sg_error *err);
int sg_held_end(struct sg_held *h, struct sg_error *err);

/* Adds one item already rendered (a listing begun with seal): k's keys (its strings and
 * resources borrowed: copied, resources retained) and its compact JSON text of len bytes, as
 * a sealed item holds them. Rebuilds a listing kept elsewhere (shared.h) without parsing it.
 * 0, or -1 with err (500: out of memory). */
int sg_held_add_rendered(struct sg_held *h, const struct sg_held_item *k, const char *text,
                         size_t len, struct sg_error *err);

/* Renders every item and drops the JSON objects. -1 when out of memory (the listing is still
 * usable, unsealed). */
int sg_held_seal(struct sg_held *h);

struct sg_held *sg_held_retain(struct sg_held *h);
void sg_held_release(struct sg_held *h);

size_t sg_held_count(const struct sg_held *h);
enum sg_held_kind sg_held_kind_of(const struct sg_held *h);
/* The i-th item in ascending keyset order (i < count). */
const struct sg_held_item *sg_held_at(const struct sg_held *h, size_t i);
/* Events: the sorted position of the item built from items[seq], or SIZE_MAX. */
size_t sg_held_pos_of_seq(const struct sg_held *h, size_t seq);
/* The item's compact JSON (rendered now if it was not), or NULL when out of memory. */
const char *sg_held_text(const struct sg_held *h, const struct sg_held_item *it, size_t *len);
/* What keeping it costs on the heap, for the cache's byte budget. */
size_t sg_held_bytes(const struct sg_held *h);
/* A number no other listing of this process has: what a walk's snapshot is named by. */
uint64_t sg_held_uid(const struct sg_held *h);

/* For sg_cache_get_typed / sg_cache_put_typed. */
extern const struct sg_cache_type sg_held_cache_type;

/* A set of listings (one per backend of a list): what a walk's snapshot holds. */
struct sg_held_set {
	atomic_int refs;
	size_t n;
	uint64_t uid; /* a name for the set, from its listings' uids */
	size_t bytes;
	struct sg_held *v[];
};

/* The uid a set of v[0..n-1] gets (known before the set is made). */
uint64_t sg_held_set_uid(struct sg_held *const *v, size_t n);
/* A new set holding a reference to each of v[0..n-1]; NULL when out of memory. */
struct sg_held_set *sg_held_set_new(struct sg_held *const *v, size_t n);
extern const struct sg_cache_type sg_held_set_cache_type;
void sg_held_set_release(struct sg_held_set *s);

#endif
