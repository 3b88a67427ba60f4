/* pager.h - the core's pagination: filter, order, slice, and sealed cursors.
 *
 * Modules hand the core every candidate item; the pager applies the north filters the
 * backend could not, orders by (time, id) in the requested direction — the id breaks ties,
 * so a walk visits every item exactly once even when many share one timestamp — and cuts
 * `limit` items after (or before) the keyset position sealed in the cursor. Cursors are
 * bound to the principal and to the filters (query fingerprint), not to the page size. */
#ifndef SG_PAGER_H
#define SG_PAGER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cursor.h"
#include "error.h"
#include "query.h"

struct sg_pager_ctx {
	const uint8_t *secret; /* seals new cursors */
	size_t secretlen;
	const char *principal;
	const char *bind; /* what else the cursor belongs to (events: the public session id;
	                   * agents: the listing), or NULL */
	const struct sg_cursor_key *verify; /* every secret that opens cursors, the sealing
	                                     * one included (a rotation); NULL: secret alone */
	size_t nverify;
};

/* The events fingerprint with the session bound into it (new string; bind may be NULL):
 * a cursor from one session's history is refused for another's. */
char *sg_event_query_bound_fingerprint(const struct sg_event_query *q, const char *bind);

/* Opens a page cursor sealed for ctx's principal and fingerprint fp: a new reference to its
 * payload, or NULL with the 400 every refused cursor gets. */
json_t *sg_pager_open(const struct sg_pager_ctx *ctx, const char *fp, const char *token,
                      struct sg_error *err);
/* That 400, for a cursor that opened but does not hold what the caller needs. */
void sg_pager_bad_cursor(struct sg_error *err);

struct sg_held;

/* A sessions cursor, opened: where the page starts, and the walk snapshot it names. */
struct sg_session_pos {
	int have; /* 0: the first page */
	int prev; /* the page before the position (prev_page), not after it */
	int64_t t;
	const char *id; /* borrowed from payload */
	char snap[24];  /* the snapshot's name, "" when the cursor names none */
	json_t *payload;
};

/* Opens q->page (when given) for ctx: 0, or -1 with the 400 a refused cursor gets. Clear pos
 * with sg_pager_session_pos_clear either way. */
int sg_pager_session_pos(const struct sg_pager_ctx *ctx, const struct sg_session_query *q,
                         struct sg_session_pos *pos, struct sg_error *err);
void sg_pager_session_pos_clear(struct sg_session_pos *pos);

/* The page of q at pos over the sessions of the listings v[0..n-1] (merged in view order), as
 * the JSON text {"data": […], "next_page": …, "prev_page": …} (malloc'd, *len bytes). Its
 * cursors name the snapshot `snap` (NULL: none); *linked is 1 when it has a next or previous
 * page. The position is found by binary search and
 * only the items the page looks at are filtered and rendered. NULL with err when out of
 * memory. */
char *sg_pager_sessions_text(struct sg_held *const *v, size_t n, const struct sg_session_query *q,
                             const struct sg_pager_ctx *ctx, const struct sg_session_pos *pos,
                             const char *snap, int *linked, size_t *len, struct sg_error *err);

/* The page of q over the events of h, as the text {"data": […], "next_page": …}; NULL with
 * err (400 for a bad cursor or one whose event is no longer where it was). */
char *sg_pager_events_text(const struct sg_held *h, const struct sg_event_query *q,
                           const struct sg_pager_ctx *ctx, size_t *len, struct sg_error *err);

/* items: array of north Session objects (borrowed; or anything with id, created_at and
 * archived_at, such as agents, when q holds no session-only filter). Returns a new
 * {"data": […], "next_page": …, "prev_page": …} or NULL with err (400 for a bad cursor,
 * 500 for an item without a readable id or created_at). */
json_t *sg_page_sessions(const json_t *items, const struct sg_session_query *q,
                         const struct sg_pager_ctx *ctx, struct sg_error *err);

/* items: array of north events in log order (borrowed). Filters by type and processed_at,
 * orders by (processed_at, log position) — the position breaks ties, so equal timestamps
 * keep the log's order — and returns a new {"data": […], "next_page": …}, or NULL with err
 * (400 for a bad cursor, 500 for an event without a readable processed_at). */
json_t *sg_page_events(const json_t *items, const struct sg_event_query *q,
                       const struct sg_pager_ctx *ctx, struct sg_error *err);

/* 1 when a north Session (borrowed) passes every filter of q. */
int sg_session_matches(const json_t *session, const struct sg_session_query *q, int64_t created_us);

/* Filters for items that arrive page by page (native paging): 1 when the item passes every
 * filter of q; 0 otherwise, and also when it has no readable created_at, or a processed_at
 * that is neither readable nor null (a queued event, null, matches unless a time bound is
 * given). */
int sg_session_query_match(const json_t *session, const struct sg_session_query *q);
int sg_event_query_match(const json_t *event, const struct sg_event_query *q);

#endif
