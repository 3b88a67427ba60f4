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
 *    backend's pages are stable. */
#ifndef SG_WALK_H
#define SG_WALK_H

#include <jansson.h>

#include "call.h"

#define SG_WALK_MAX_PAGES 200 /* backend pages read for one north request */

struct sg_walk;
struct sg_route;

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
};

/* Starts a walk. done runs once, from the event loop of spec->env->base: never before
 * sg_walk_start has returned, even when the walk fails at once. Returns NULL (and done never
 * runs) when out of memory. */
struct sg_walk *sg_walk_start(const struct sg_walk_spec *spec, sg_walk_done_cb done, void *arg);
/* After done: the error, or NULL. */
const struct sg_error *sg_walk_error(const struct sg_walk *w);
/* After done: the items collected (borrowed). */
json_t *sg_walk_items(const struct sg_walk *w);
/* After done, native mode: where the next north page starts, as a new {"bc","k","c"}
 * object, or NULL when the walk reached the end. */
json_t *sg_walk_next(const struct sg_walk *w);
/* Cancels and frees; done will not run. */
void sg_walk_free(struct sg_walk *w);

#endif
