/* walk.h - the core's driver for backends that page themselves (native paging).
 *
 * A walk asks the module for one backend page at a time (SG_CALL_*_PAGE calls) and either
 *  - collects every item of every page (up to SG_WALK_MAX_PAGES; more is a 502), for the
 *    keyset pager to order and slice — used when the north order is not the backend's, or
 *    when several backends are merged; or
 *  - serves one north page natively: filters each item with the north query, stops at
 *    `limit` matches, and reports where it stopped as (backend cursor of that page,
 *    position in it, carry at its start). The next request re-reads that backend page and
 *    skips `position` items, so page sizes hold and nothing is skipped or repeated while the
 *    backend's pages are stable. A page that has `limit` matches looks on, over as many
 *    backend pages as it takes (within SG_WALK_MAX_PAGES), for the next match: the next page
 *    starts there, and when there is none the page says it is the last, so a north page with
 *    a next page is never followed by an empty one. */
#ifndef SG_WALK_H
#define SG_WALK_H

#include <jansson.h>
#include <stdint.h>

#include "call.h"

#define SG_WALK_MAX_PAGES 200 /* backend pages read for one north request */

struct sg_walk;
struct sg_route;

/* A keyset position in a sessions listing: created_at (µs) and the backend's own id (the
 * native id the public id carries), compared as the backends order ties: by that id. */
struct sg_walk_key {
	int64_t t;
	const char *native; /* borrowed for sg_walk_start; the walk keeps a copy */
};

/* Which items of a sessions walk pass, relative to a key, in the walk's own order. */
enum sg_walk_side {
	SG_WALK_ANY = 0, /* no key */
	SG_WALK_FROM,    /* the key's item and everything after it */
	SG_WALK_AFTER,   /* strictly after it */
	SG_WALK_BEFORE,  /* strictly before it */
};

typedef void (*sg_walk_done_cb)(struct sg_walk *w, void *arg);

struct sg_walk_spec {
	enum sg_call_kind kind; /* SG_CALL_SESSIONS_PAGE or SG_CALL_EVENTS_PAGE */
	const struct sg_call_env *env;
	const struct sg_route *route;
	const struct sg_session_query *sq; /* for sessions */
	const struct sg_event_query *eq;   /* for events */
	const struct sg_pubid *pubid;      /* for events */
	int collect_all;                   /* 1: read every page, no filtering */
	size_t limit;                      /* native mode: matches wanted */
	const json_t *start; /* native mode: {"bc","k","c"} from the cursor, or NULL */
	/* sessions only: items must also lie on `side` of `key` (in the walk's order) */
	enum sg_walk_side side;
	struct sg_walk_key key;
	/* native mode: read every page and keep the last `limit` matches (a page read backwards
	 * from a backend that pages one way only) */
	int tail;
	/* native mode: stop at `limit` matches without looking for where the next page starts */
	int no_next;
};

/* Starts a walk. done runs once, from the event loop of spec->env->base: never before
 * sg_walk_start has returned, even when the walk fails at once. Returns NULL (and done never
 * runs) when out of memory. */
struct sg_walk *sg_walk_start(const struct sg_walk_spec *spec, sg_walk_done_cb done, void *arg);
/* After done: the error, or NULL. */
const struct sg_error *sg_walk_error(const struct sg_walk *w);
/* After done: the items collected (borrowed). In tail mode, the last `limit` matches. */
json_t *sg_walk_items(const struct sg_walk *w);
/* After done, native mode: where the next north page starts, as a new {"bc","k","c"}
 * object, or NULL when the walk reached the end. */
json_t *sg_walk_next(const struct sg_walk *w);
/* Cancels and frees; done will not run. */
void sg_walk_free(struct sg_walk *w);

#endif
