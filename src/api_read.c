/* api_read.c - the read path: list, retrieve and the events of a session.
 *
 * A list fans out to every backend the key may reach (one call each, or a walk over the
 * pages of a backend that pages itself) and merges; retrieve and events go to the one
 * backend the public id names. The keyset pager (pager.h) orders, slices and seals cursors;
 * a native walk (walk.h) seals its own. */
#include "api.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "config.h"
#include "held.h"
#include "cursor.h"
#include "idcodec.h"
#include "log.h"
#include "mapping.h"
#include "metrics.h"
#include "pager.h"
#include "query.h"
#include "redis.h"
#include "request.h"
#include "shared.h"
#include "timeutil.h"

/* The read handlers' state for one request. */
struct rd {
	struct sg_req *r;
	struct sg_session_query sq;
	struct sg_event_query eq;
	char *sid; /* events: the public session id, bound into cursors */
	struct part {
		struct sg_call *call; /* borrowed: the request owns its calls and walks */
		struct sg_walk *walk;
		struct sg_held *held; /* its items as a held listing (owned), once in */
		const struct sg_backend *be;
		unsigned long gen; /* the backend's write generation when the read began */
	} * parts;                 /* one per backend */
	size_t nparts, nwaiting;
	struct sg_session_pos pos;     /* lists: the cursor, opened */
	void (*merged)(struct rd *st); /* runs once every part is in */
	/* one read per listing at a time (see flights below) */
	void (*start)(struct rd *st); /* starts the reads of the parts not held */
	const struct sg_route *route; /* events: the session's backend */
	struct sg_pubid id;           /* events: the session */
	struct flight *flight;        /* the flight this request leads */
	struct flight *waiting;       /* the flight this request waits for */
	struct rd *wnext;             /* the next waiter of that flight */
	json_t *object;               /* retrieve: the session to answer */
	int fresh;                    /* the client asked for a fresh read (Cache-Control) */
	/* native paging of sessions (see below) */
	struct sg_session_query wq; /* what the walk asks: sq, bounded (shares sq's strings) */
	json_t *wx;                 /* the keyset position the walk started at, or NULL */
	json_t *back;               /* a page read back from this keyset position, or NULL */
	int back_reversed;          /* ... in the other order */
	struct sg_redis_op *gen_op; /* the fleet's write generations being read */
	void (*after_gens)(struct rd *st);
	const struct sg_route *gen_routes; /* ... of these backends */
	size_t ngen_routes;
	struct sg_snap_fetch *sfetch; /* the cursor's snapshot being fetched from Redis */
	struct sg_redis_op *sput;     /* the page's new snapshot being stored in Redis ... */
	char *ptext;                  /* ... and the page, answered once it is */
	size_t plen;
	/* the freshness window shared by a fleet (below) */
	int gens_known;               /* the fleet's write generations were read for this read */
	struct sg_snap_fetch *ffetch; /* a part's listing being fetched from Redis */
	size_t ffi;                   /* ... which part */
};

static void flight_leave(struct rd *st);

static void rd_free(void *p)
{
	struct rd *st = p;

	flight_leave(st);
	sg_redis_cancel(st->gen_op);
	sg_snap_fetch_free(st->sfetch);
	sg_snap_fetch_free(st->ffetch);
	sg_redis_cancel(st->sput);
	free(st->ptext);
	sg_session_query_clear(&st->sq);
	sg_event_query_clear(&st->eq);
	sg_pager_session_pos_clear(&st->pos);
	json_decref(st->object);
	json_decref(st->wx);
	json_decref(st->back);
	free(st->sid);
	for (size_t i = 0; st->parts && i < st->nparts; i++)
		sg_held_release(st->parts[i].held);
	free(st->parts);
	free(st);
}

/* The handler state, or NULL after answering 500. */
static struct rd *rd_new(struct sg_req *r, size_t nparts)
{
	struct rd *st = calloc(1, sizeof(*st));

	if (st)
		st->parts = calloc(nparts ? nparts : 1, sizeof(*st->parts));
	if (!st || !st->parts) {
		if (st)
			rd_free(st);
		sg_req_fail(r, 500, "api_error", "out of memory");
		return NULL;
	}
	st->r = r;
	st->nparts = nparts;
	st->fresh = sg_req_call_env(r).no_cache;
	sg_req_set_state(r, st, rd_free);
	return st;
}

static struct sg_pager_ctx pager_ctx(const struct rd *st)
{
	const struct sg_config *cfg = sg_req_config(st->r);
	struct sg_pager_ctx pc = {cfg->secret, cfg->secretlen, sg_req_key(st->r)->name,
	                          st->sid,     cfg->secrets,   cfg->nsecrets};

	return pc;
}

const struct sg_route *sg_api_route_of(const struct sg_key *key, const char *backend)
{
	for (size_t i = 0; i < key->nroutes; i++)
		if (strcmp(key->routes[i].backend->name, backend) == 0)
			return &key->routes[i];
	return NULL;
}

static json_t *part_items(const struct part *p)
{
	return p->call ? sg_call_result(p->call) : sg_walk_items(p->walk);
}

/* ---- what the worker holds ------------------------------------------------------------------
 *
 * A backend whose module sets fresh_ms has its translated listings (per principal and agent
 * filter) and session logs held for that long by the process's cache (shared by the workers:
 * sealed listings never change), under the backend's write generation at the read's start: a
 * read after a write through any worker never gets what was held before it. A client's
 * Cache-Control: no-cache skips the lookup (what it reads still refreshes the cache). A
 * session's log is held at most 1 s whatever the window, and not at all while its session
 * runs (the module says so: sg_call_set_volatile), so a client polling it sees a run go on.
 *
 * A list page that has a next or previous page keeps its listings as the walk's snapshot for
 * cache.walk_snapshot_ms after its last use, named in the page's cursors: the walk's next pages
 * come from the listings its first page read (no backend call, no session skipped or repeated
 * while the backend changes), for as long as it keeps going. A cursor whose snapshot has gone
 * (expired, or evicted to keep cache.max_bytes) is served from a fresh read at the keyset
 * position it carries. */

#define SG_LOG_FRESH_MAX_MS 1000

static struct sg_cache *held_cache(const struct rd *st)
{
	return sg_req_host(st->r)->held_cache;
}

/* The cache key of a part's listing: "S" (sessions, with the agent filter the module applies)
 * or "E" (a session's events); "G" (a retrieve) names only flights. -1 when it does not fit. */
static int held_key(const struct rd *st, const struct part *p, char kind, char *out, size_t len)
{
	const char *what = kind == 'S' ? st->sq.agent_id : st->sid;
	/* the configuration generation goes in too: a reload may point the name elsewhere */
	int n = snprintf(out, len, "held\x1f%c\x1f%s\x1f%s\x1f%s\x1f%lu\x1f%lu", kind, p->be->name,
	                 sg_req_key(st->r)->name, what ? what : "", p->gen,
	                 sg_req_config(st->r)->generation);

	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* The part's listing from the worker's cache, or NULL. */
static struct sg_held *held_lookup(const struct rd *st, const struct part *p, char kind)
{
	char key[SG_CACHE_KEY_MAX + 1];

	if (!p->be || p->be->fresh_ms <= 0 || st->fresh || held_key(st, p, kind, key, sizeof(key)))
		return NULL;
	return sg_cache_get_typed(held_cache(st), key, &sg_held_cache_type, sg_mono_ms());
}

static void fresh_put(const struct rd *st, const struct part *p);
static void fresh_next(struct rd *st);
static void list_go(struct rd *st);

/* Builds the part's listing from its items; held for the backend's freshness window when it
 * has one. -1 with err. */
static int held_build(struct rd *st, struct part *p, char kind, struct sg_error *err)
{
	struct sg_held *made = p->call ? sg_call_result_held(p->call) : NULL;
	char key[SG_CACHE_KEY_MAX + 1];
	long ttl = p->be ? p->be->fresh_ms : 0;

	p->held =
	    made ? sg_held_retain(made)
	         : sg_held_new(part_items(p), kind == 'E' ? SG_HELD_EVENTS : SG_HELD_SESSIONS, err);
	if (!p->held)
		return -1;

	/* a session's log is held at most SG_LOG_FRESH_MAX_MS, and not at all while a run
	 * writes to it: a client polling events.list sees a run progress */
	if (kind == 'E' && ttl > SG_LOG_FRESH_MAX_MS)
		ttl = SG_LOG_FRESH_MAX_MS;
	if (p->call && sg_call_result_volatile(p->call))
		ttl = 0;
	if (ttl > 0 && held_key(st, p, kind, key, sizeof(key)) == 0 && sg_held_seal(p->held) == 0) {
		sg_cache_put_typed(held_cache(st), key, &sg_held_cache_type, p->held,
		                   sg_held_bytes(p->held), sg_mono_ms(), ttl);
		if (kind == 'S')
			fresh_put(st, p); /* the fleet's shared window (below) */
	}
	return 0;
}

static void snap_key(const struct rd *st, const char *name, char *out, size_t len)
{
	snprintf(out, len, "snap\x1f%s\x1f%s", sg_req_key(st->r)->name, name);
}

/* ---- the freshness window shared by a fleet --------------------------------------------------
 *
 * With Redis configured, and the fleet's write generations read for this read (api_read.c,
 * below), a sessions listing a read builds within its backend's freshness window is also
 * stored in Redis (shared.h's form, under the key's scope and "fresh:" backend, agent filter
 * and the fleet's write generation) for half the window; an instance that does not hold it
 * fetches it there before reading the backend and holds what it fetched for half the window,
 * so what a client sees is never older than the window, whichever instance reads first. A
 * write through any instance moves the generation, so nothing stored before it answers after
 * it. Miss, timeout, Redis down: the backend is read, as without Redis. (Session logs, held at
 * most 1 s, are not shared.) */

static struct sg_redis *fresh_redis(const struct rd *st)
{
	return st->gens_known && !st->fresh && sg_req_config(st->r)->redis.prefix
	           ? sg_req_host(st->r)->redis
	           : NULL;
}

static int fresh_where(const struct rd *st, const struct part *p, char *name, size_t len,
                       struct sg_snap_where *w)
{
	int n = snprintf(name, len, "fresh:S:%s:%s:%lu", p->be->name,
	                 st->sq.agent_id ? st->sq.agent_id : "", p->gen >> 32);

	if (n < 0 || (size_t)n >= len)
		return -1;
	w->prefix = sg_req_config(st->r)->redis.prefix;
	w->principal = sg_snap_scope(sg_req_key(st->r));
	w->name = name;
	return w->principal ? 0 : -1;
}

/* Stores a listing this read built (sealed) for half its window; fire and forget. */
static void fresh_put(const struct rd *st, const struct part *p)
{
	struct sg_snap_where w = {0};
	char name[512];

	if (!fresh_redis(st) || p->be->fresh_ms < 2)
		return;
	if (fresh_where(st, p, name, sizeof(name), &w) == 0)
		sg_shared_snap_put(fresh_redis(st), sg_req_config(st->r)->redis.timeout_ms, &w,
		                   &p->held, 1, p->be->fresh_ms / 2, NULL, NULL);
	free((char *)w.principal);
}

static void on_fresh(struct sg_held_set *set, void *arg)
{
	struct rd *st = arg;
	struct part *p = &st->parts[st->ffi];
	char key[SG_CACHE_KEY_MAX + 1];

	sg_snap_fetch_free(st->ffetch);
	st->ffetch = NULL;
	if (set && set->n == 1) {
		p->held = sg_held_retain(set->v[0]);
		if (held_key(st, p, 'S', key, sizeof(key)) == 0)
			sg_cache_put_typed(held_cache(st), key, &sg_held_cache_type, p->held,
			                   sg_held_bytes(p->held), sg_mono_ms(),
			                   p->be->fresh_ms / 2);
	}
	if (set)
		sg_held_set_release(set);
	st->ffi++;
	fresh_next(st);
}

/* Asks Redis, one part at a time, for the listings not held here; then list_go. */
static void fresh_next(struct rd *st)
{
	for (; st->ffi < st->nparts; st->ffi++) {
		struct part *p = &st->parts[st->ffi];
		struct sg_snap_where w = {0};
		char name[512];

		if (p->held || !p->be || p->be->fresh_ms < 2 || !fresh_redis(st))
			continue;
		if (fresh_where(st, p, name, sizeof(name), &w) == 0)
			st->ffetch = sg_snap_fetch_start(
			    fresh_redis(st), sg_req_config(st->r)->redis.timeout_ms,
			    sg_req_host(st->r)->base, &w, on_fresh, st);
		free((char *)w.principal);
		if (st->ffetch)
			return;
	}
	list_go(st);
}

/* ---- walk snapshots shared by a fleet (shared.h) ---------------------------------------------
 *
 * With Redis configured, a new snapshot is also stored there (under the key's scope,
 * sg_snap_scope, and its name, for cache.walk_snapshot_ms after its last page), and a cursor
 * naming a snapshot this process does not hold fetches it from there before reading the
 * backend: a walk whose pages go to different instances is served from what its first page
 * read.
 * A miss, a timeout or Redis down reads the backend at the cursor's keyset position, as a
 * snapshot that expired does; a walk never fails because of Redis. Names mix in a random
 * number of the process's (sg_shared_nonce), since a cursor may reach any instance. */

/* Where the snapshot name lives in Redis; free w->principal after (NULL when out of memory:
 * then it is not shared). */
static int snap_where(const struct rd *st, const char *name, struct sg_snap_where *w)
{
	w->prefix = sg_req_config(st->r)->redis.prefix;
	w->principal = sg_snap_scope(sg_req_key(st->r));
	w->name = name;
	return w->principal ? 0 : -1;
}

static struct sg_redis *snap_redis(const struct rd *st)
{
	const struct sg_config *cfg = sg_req_config(st->r);

	return cfg->redis.prefix && cfg->walk_snapshot_ms > 0 ? sg_req_host(st->r)->redis : NULL;
}

static void snap_count(const struct rd *st, enum sg_metrics_snap what)
{
	if (sg_req_host(st->r)->metrics)
		sg_mctr_add(&sg_req_host(st->r)->metrics->snap_shared[what], 1);
}

static void on_snap_stored(enum sg_redis_status status, const struct redisReply *reply, void *arg)
{
	struct rd *st = arg;
	char *text = st->ptext;

	sg_shared_snap_stored(status, reply);
	snap_count(st, status == SG_REDIS_OK && reply->type != REDIS_REPLY_ERROR
	                   ? SG_MS_STORED
	                   : SG_MS_STORE_FAILED);
	st->sput = NULL;
	st->ptext = NULL;
	sg_req_reply_text(st->r, 200, text, st->plen);
}

/* Stores a new snapshot in Redis. The page that made it is answered once Redis took it (or
 * failed to, or its deadline passed): its cursors may reach another instance at once, which
 * then finds the snapshot there instead of racing the store. 1 when the answer is left to
 * on_snap_stored (text taken). */
static int snap_shared_put(struct rd *st, const struct sg_held_set *set, const char *name,
                           char *text, size_t len)
{
	struct sg_snap_where w;

	if (!snap_redis(st))
		return 0;
	st->sput = NULL;
	if (snap_where(st, name, &w) == 0)
		st->sput = sg_shared_snap_put(
		    snap_redis(st), sg_req_config(st->r)->redis.timeout_ms, &w, set->v, set->n,
		    sg_req_config(st->r)->walk_snapshot_ms, on_snap_stored, st);
	free((char *)w.principal);
	if (!st->sput) {
		snap_count(st, SG_MS_STORE_FAILED);
		return 0;
	}
	st->ptext = text;
	st->plen = len;
	return 1;
}

static void snap_shared_touch(const struct rd *st, const char *name)
{
	struct sg_snap_where w;

	if (!snap_redis(st))
		return;
	if (snap_where(st, name, &w) == 0)
		sg_shared_snap_touch(snap_redis(st), &w, sg_req_config(st->r)->walk_snapshot_ms);
	free((char *)w.principal);
}

/* The page over the listings v[0..n-1], kept as the walk's snapshot (see above) when the page
 * has a neighbour; `name` is the snapshot's name when it is one already. */
static void reply_sessions(struct rd *st, struct sg_held *const *v, size_t n, const char *name)
{
	const struct sg_config *cfg = sg_req_config(st->r);
	struct sg_pager_ctx pc = pager_ctx(st);
	struct sg_error e = {0};
	char made[24], key[SG_CACHE_KEY_MAX + 1], *text;
	const char *snap = name;
	size_t len;
	int linked = 0;

	if (!snap && cfg->walk_snapshot_ms > 0) {
		/* the name is known before the snapshot is made: it is made only if needed */
		snprintf(made, sizeof(made), "%016" PRIx64,
		         sg_held_set_uid(v, n) ^ sg_shared_nonce());
		snap = made;
	}
	text = sg_pager_sessions_text(v, n, &st->sq, &pc, &st->pos, snap, &linked, &len, &e);
	if (!text) {
		sg_req_error(st->r, &e);
		return;
	}
	if (snap)
		snap_key(st, snap, key, sizeof(key));
	if (name) {
		/* a page served from the snapshot: it lives on */
		sg_cache_touch(held_cache(st), key, sg_mono_ms(), cfg->walk_snapshot_ms);
		snap_shared_touch(st, name);
	} else if (snap && linked) {
		struct sg_held_set *set = NULL;
		int sealed = 1;

		/* a snapshot is rendered whole and never changes (it may be shared by workers) */
		for (size_t i = 0; i < n && sealed; i++)
			sealed = sg_held_seal(v[i]) == 0;
		if (sealed)
			set = sg_held_set_new(v, n);
		if (set)
			sg_cache_put_typed(held_cache(st), key, &sg_held_set_cache_type, set,
			                   set->bytes, sg_mono_ms(), cfg->walk_snapshot_ms);
		if (set && snap_shared_put(st, set, snap, text, len)) {
			sg_held_set_release(set);
			return;
		}
		sg_held_set_release(set);
	}
	sg_req_reply_text(st->r, 200, text, len);
}

/* A page whose cursor names a snapshot this worker still holds: served from it. 1 when it
 * answered. */
static int reply_from_snapshot(struct rd *st)
{
	char key[SG_CACHE_KEY_MAX + 1];
	struct sg_held_set *set;

	if (!st->pos.snap[0] || st->fresh)
		return 0;
	snap_key(st, st->pos.snap, key, sizeof(key));
	set = sg_cache_get_typed(held_cache(st), key, &sg_held_set_cache_type, sg_mono_ms());
	if (!set)
		return 0;
	reply_sessions(st, set->v, set->n, st->pos.snap);
	sg_held_set_release(set);
	return 1;
}

static void sessions_read(struct rd *st);

/* The cursor's snapshot came from Redis (set) or did not (NULL: read the backend). */
static void on_shared_snapshot(struct sg_held_set *set, void *arg)
{
	struct rd *st = arg;
	char key[SG_CACHE_KEY_MAX + 1];

	snap_count(st, set                                ? SG_MS_FETCHED
	               : sg_snap_fetch_missed(st->sfetch) ? SG_MS_MISSED
	                                                  : SG_MS_FETCH_FAILED);
	sg_snap_fetch_free(st->sfetch);
	st->sfetch = NULL;
	if (!set) {
		sessions_read(st);
		return;
	}
	/* this instance holds it from now on: the walk's next pages here need no fetch */
	snap_key(st, st->pos.snap, key, sizeof(key));
	sg_cache_put_typed(held_cache(st), key, &sg_held_set_cache_type, set, set->bytes,
	                   sg_mono_ms(), sg_req_config(st->r)->walk_snapshot_ms);
	reply_sessions(st, set->v, set->n, st->pos.snap);
	sg_held_set_release(set);
}

/* A cursor names a snapshot this process does not hold: asks Redis for it. 1 when the
 * answer will come from on_shared_snapshot. */
static int fetch_shared_snapshot(struct rd *st)
{
	struct sg_snap_where w;

	if (!st->pos.snap[0] || st->fresh || !snap_redis(st))
		return 0;
	st->sfetch = NULL;
	if (snap_where(st, st->pos.snap, &w) == 0)
		st->sfetch =
		    sg_snap_fetch_start(snap_redis(st), sg_req_config(st->r)->redis.timeout_ms,
		                        sg_req_host(st->r)->base, &w, on_shared_snapshot, st);
	free((char *)w.principal);
	if (!st->sfetch)
		snap_count(st, SG_MS_FETCH_FAILED);
	return st->sfetch != NULL;
}

/* ---- flights: one read per listing at a time ----------------------------------------------
 *
 * When the held listing of a single-backend list, or a session's log, is not held, the first
 * request on the worker to need it reads it (it leads a flight under the listing's cache key)
 * and the requests that need the same listing meanwhile wait for it instead of reading and
 * translating it once each: when it lands they are answered from the same held listing, or
 * with the same error. Retrieves of one session fly the same way (the answer is the one
 * translated session, shared). A waiter still has its own deadline; a leader that goes away before
 * its read lands hands the flight to its first waiter, which reads again. Flights are per
 * worker (thread-local, and the worker's host is part of the match): a waiter is answered on
 * its own loop. */

struct flight {
	struct flight *next;
	const struct sg_req_host *host;
	struct rd *leader;
	struct rd *waiters;
	char key[SG_CACHE_KEY_MAX + 1];
};

static _Thread_local struct flight *flights;

/* 1 when st joined a flight already under way (it waits); 0 when st leads (or flies alone,
 * if the flight cannot be recorded) and must start its reads. */
static int flight_join(struct rd *st, char kind)
{
	struct part *p = &st->parts[0];
	struct flight *f;
	char key[SG_CACHE_KEY_MAX + 1];

	if (st->nparts != 1 || held_key(st, p, kind, key, sizeof(key)))
		return 0;
	for (f = flights; f; f = f->next)
		if (f->host == sg_req_host(st->r) && strcmp(f->key, key) == 0) {
			if (sg_req_host(st->r)->metrics)
				sg_mctr_add(&sg_req_host(st->r)->metrics->flight_joins, 1);
			st->waiting = f;
			st->wnext = f->waiters;
			f->waiters = st;
			return 1;
		}
	f = calloc(1, sizeof(*f));
	if (!f)
		return 0;
	f->host = sg_req_host(st->r);
	f->leader = st;
	memcpy(f->key, key, sizeof(key));
	f->next = flights;
	flights = f;
	st->flight = f;
	return 0;
}

static void flight_unlink(struct flight *f)
{
	struct flight **pp = &flights;

	while (*pp && *pp != f)
		pp = &(*pp)->next;
	if (*pp)
		*pp = f->next;
}

/* The leader's read landed: its waiters get its held listing (err NULL) or its error. */
static void flight_land(struct rd *st, const struct sg_error *err)
{
	struct flight *f = st->flight;
	struct rd *w;

	if (!f)
		return;
	flight_unlink(f);
	st->flight = NULL;
	while ((w = f->waiters)) {
		f->waiters = w->wnext;
		w->waiting = NULL;
		w->wnext = NULL;
		if (err) {
			sg_req_error(w->r, err);
		} else {
			if (st->object)
				w->object = json_incref(st->object);
			else
				w->parts[0].held = sg_held_retain(st->parts[0].held);
			w->merged(w);
		}
	}
	free(f);
}

/* st ends: out of the flight it waits for, or the flight it leads passes to a waiter. */
static void flight_leave(struct rd *st)
{
	struct flight *f = st->waiting;
	struct rd **pp;

	if (f) {
		for (pp = &f->waiters; *pp && *pp != st; pp = &(*pp)->wnext)
			;
		if (*pp)
			*pp = st->wnext;
		st->waiting = NULL;
	}
	f = st->flight;
	if (!f)
		return;
	st->flight = NULL;
	if (!f->waiters) {
		flight_unlink(f);
		free(f);
		return;
	}
	st = f->waiters;
	f->waiters = st->wnext;
	st->waiting = NULL;
	st->wnext = NULL;
	st->flight = f;
	f->leader = st;
	st->start(st);
}

/* One part (a backend's call or walk) ended. The first failure fails the request rather
 * than silently leaving a backend's items out; when every part is in, st->merged runs. */
static void part_done(struct rd *st, const struct sg_error *pe)
{
	if (pe) {
		flight_land(st, pe);
		sg_req_error(st->r, pe);
		return;
	}
	if (--st->nwaiting == 0)
		st->merged(st);
}

static void on_part_call(struct sg_call *c, void *arg)
{
	part_done(sg_req_state(arg), sg_call_error(c));
}

static void on_part_walk(struct sg_walk *w, void *arg)
{
	part_done(sg_req_state(arg), sg_walk_error(w));
}

/* Every backend's sessions are in: held listings, merged and paged. */
static void sessions_merged(struct rd *st)
{
	struct sg_held **v = calloc(st->nparts ? st->nparts : 1, sizeof(*v));
	struct sg_error e = {0};

	if (!v) {
		sg_req_fail(st->r, 500, "api_error", "out of memory");
		return;
	}
	for (size_t i = 0; i < st->nparts; i++) {
		struct part *p = &st->parts[i];

		if (!p->held && held_build(st, p, 'S', &e)) {
			free(v);
			flight_land(st, &e);
			sg_req_error(st->r, &e);
			return;
		}
		v[i] = p->held;
	}
	flight_land(st, NULL);
	reply_sessions(st, v, st->nparts, NULL);
	free(v);
}

/* ---- native paging --------------------------------------------------------------------------
 *
 * A backend that pages itself is walked one north page per request (walk.h). Its cursors are
 * sealed like the pager's and marked "m":"w", so one is never taken for the other:
 *  - a position {"bc","k","c"}: the north page starts at item k of the backend page whose
 *    cursor is bc (the module's carry c at its start), optionally with "x":{"t","i"}: the walk
 *    was started at that keyset position (created_at µs, native id), so its backend reads are
 *    bounded by that created_at and its items must lie at or after it;
 *  - a way back {"d":"b","t","i"} (sessions): the `limit` items before that keyset position.
 *    A backend that pages in either order is walked the other way from there; one that pages
 *    newest first only is read from its first page down to the position, keeping the last
 *    `limit` matches (bounded by SG_WALK_MAX_PAGES, like any walk).
 * A page read backwards has, as its next page, the keyset position it was read back from. */

/* {"t","i"} of a north session: its keyset position. NULL when it has none readable. */
static json_t *session_key_of(const json_t *s)
{
	struct sg_held_item hk;
	struct sg_pubid id;

	if (sg_held_keys(s, SG_HELD_SESSIONS, &hk) || sg_id_decode("sesn_", hk.id, &id))
		return NULL;
	return json_pack("{s:I, s:s}", "t", (json_int_t)hk.t, "i", id.native);
}

static int walk_key_of(const json_t *o, struct sg_walk_key *k)
{
	const json_t *t = json_object_get(o, "t"), *i = json_object_get(o, "i");

	if (!json_is_integer(t) || !json_is_string(i))
		return -1;
	k->t = json_integer_value(t);
	k->native = json_string_value(i);
	return 0;
}

/* Seals payload (stolen; marked "m":"w") into *tok. 0, or -1 after answering 500. */
static int seal_walk(struct rd *st, const char *fp, json_t *payload, char **tok)
{
	struct sg_pager_ctx pc = pager_ctx(st);

	*tok = NULL;
	if (!payload)
		return 0;
	json_object_set_new(payload, "m", json_string("w"));
	*tok = sg_cursor_seal(pc.secret, pc.secretlen, pc.principal, fp, payload);
	json_decref(payload);
	if (!*tok) {
		sg_req_fail(st->r, 500, "api_error", "page cursor too large");
		return -1;
	}
	return 0;
}

/* Answers data (stolen) with the cursors next and prev (payloads, stolen, NULL = none);
 * prev_page is part of a sessions page only. */
static void reply_walk_page(struct rd *st, json_t *data, json_t *next, json_t *prev, int sessions)
{
	char *fp = sessions ? sg_session_query_fingerprint(&st->sq)
	                    : sg_event_query_bound_fingerprint(&st->eq, st->sid);
	char *ntok = NULL, *ptok = NULL;
	json_t *page;

	if (seal_walk(st, fp ? fp : "", next, &ntok) || seal_walk(st, fp ? fp : "", prev, &ptok)) {
		json_decref(data);
		free(ntok);
		free(fp);
		return;
	}
	free(fp);
	page = json_pack("{s:o, s:s?}", "data", data, "next_page", ntok);
	if (page && !ntok)
		json_object_set_new(page, "next_page", json_null());
	if (page && sessions)
		json_object_set_new(page, "prev_page", ptok ? json_string(ptok) : json_null());
	free(ntok);
	free(ptok);
	sg_req_reply(st->r, 200, page);
}

static void on_native_walk(struct sg_walk *w, void *arg)
{
	struct rd *st = sg_req_state(arg);
	const struct sg_error *we = sg_walk_error(w);
	json_t *items = sg_walk_items(w), *next = sg_walk_next(w), *prev = NULL;
	int sessions = st->sid == NULL;

	if (we) {
		json_decref(next);
		sg_req_error(st->r, we);
		return;
	}
	if (next && st->wx)
		json_object_set(next, "x", st->wx);
	/* A page reached by a cursor has items before it: its way back starts at its first. */
	if (sessions && st->sq.page && json_array_size(items) > 0) {
		prev = session_key_of(json_array_get(items, 0));
		if (prev)
			json_object_set_new(prev, "d", json_string("b"));
	}
	reply_walk_page(st, json_incref(items), next, prev, sessions);
}

/* A page read backwards: the walk found up to limit + 1 items before the position st->back, in
 * the other order (a backend that pages either way) or in this one (tail mode). */
static void on_native_back(struct sg_walk *w, void *arg)
{
	struct rd *st = sg_req_state(arg);
	const struct sg_error *we = sg_walk_error(w);
	json_t *items = sg_walk_items(w), *data = json_array(), *next, *prev = NULL;
	size_t n = json_array_size(items), lim = (size_t)st->sq.limit, take = n < lim ? n : lim;

	if (we) {
		json_decref(data);
		sg_req_error(st->r, we);
		return;
	}
	for (size_t i = 0; data && i < take; i++)
		json_array_append(
		    data, json_array_get(items, st->back_reversed ? take - 1 - i : n - take + i));
	if (data && n > lim) {
		prev = session_key_of(json_array_get(data, 0));
		if (prev)
			json_object_set_new(prev, "d", json_string("b"));
	}
	next = json_pack("{s:I, s:O}", "k", (json_int_t)0, "x", st->back);
	if (!data || !next) {
		json_decref(data);
		json_decref(next);
		json_decref(prev);
		sg_req_fail(st->r, 500, "api_error", "out of memory");
		return;
	}
	reply_walk_page(st, data, next, prev, 1);
}

/* The position sealed in a native-paging cursor, or NULL after answering 400. A way back is a
 * sessions cursor only. */
static json_t *open_walk_cursor(struct rd *st, const char *token, const char *fp)
{
	struct sg_pager_ctx pc = pager_ctx(st);
	struct sg_error e = {0};
	struct sg_walk_key key;
	json_t *p = sg_pager_open(&pc, fp, token, &e);
	const json_t *m = json_object_get(p, "m"), *k = json_object_get(p, "k");
	const json_t *d = json_object_get(p, "d"), *x = json_object_get(p, "x");
	int ok;

	if (d)
		ok = st->sid == NULL && json_is_string(d) && !strcmp(json_string_value(d), "b") &&
		     walk_key_of(p, &key) == 0;
	else
		ok = json_is_integer(k) && json_integer_value(k) >= 0 &&
		     (!x || (st->sid == NULL && walk_key_of(x, &key) == 0));
	if (p && (!json_is_string(m) || strcmp(json_string_value(m), "w") != 0 || !ok)) {
		json_decref(p);
		p = NULL;
		sg_pager_bad_cursor(&e); /* a keyset cursor, say */
	}
	if (!p)
		sg_req_error(st->r, &e);
	return p;
}

/* Serves one north page of events natively with a walk from the cursor `page` (or the
 * start). */
static void start_native_walk(struct rd *st, struct sg_walk_spec *spec, const char *page, char *fp)
{
	json_t *start = NULL;

	if (page && !(start = open_walk_cursor(st, page, fp ? fp : ""))) {
		free(fp);
		return;
	}
	free(fp);
	spec->start = start;
	if (!sg_req_walk(st->r, spec, on_native_walk))
		sg_req_fail(st->r, 500, "api_error", "out of memory");
	json_decref(start);
}

/* Narrows q to the sessions created at or after t (newer), or at or before it. */
static void bound_at(struct sg_session_query *q, int64_t t, int newer)
{
	struct sg_time_range *r = &q->created;

	if (newer && (!r->has_gte || r->gte < t)) {
		r->gte = t;
		r->has_gte = 1;
	} else if (!newer && (!r->has_lte || r->lte > t)) {
		r->lte = t;
		r->has_lte = 1;
	}
}

/* Serves one north page of sessions natively, forwards from a position or backwards from a
 * keyset position (see above). */
static void start_native_sessions(struct rd *st, const struct sg_route *rt)
{
	struct sg_walk_spec spec = {.kind = SG_CALL_SESSIONS_PAGE,
	                            .route = rt,
	                            .sq = &st->wq,
	                            .limit = (size_t)st->sq.limit};
	char *fp = sg_session_query_fingerprint(&st->sq);
	json_t *cur = NULL;
	sg_walk_done_cb done = on_native_walk;

	st->wq = st->sq; /* a shallow copy: st->sq keeps its strings */
	if (st->sq.page && !(cur = open_walk_cursor(st, st->sq.page, fp ? fp : ""))) {
		free(fp);
		return;
	}
	free(fp);
	if (json_object_get(cur, "d")) {
		walk_key_of(cur, &spec.key);
		st->back =
		    json_pack("{s:I, s:s}", "t", (json_int_t)spec.key.t, "i", spec.key.native);
		bound_at(&st->wq, spec.key.t, !st->sq.order_asc);
		spec.limit++; /* one more: is there a page before this one? */
		if (rt->backend->mapping->caps & SG_CAP_NATIVE_ORDER) {
			st->wq.order_asc = !st->sq.order_asc;
			spec.side = SG_WALK_AFTER;
			spec.no_next = 1;
			st->back_reversed = 1;
		} else {
			spec.side = SG_WALK_BEFORE;
			spec.tail = 1;
		}
		done = on_native_back;
	} else {
		const json_t *x = json_object_get(cur, "x");

		if (x) {
			walk_key_of(x, &spec.key);
			bound_at(&st->wq, spec.key.t, st->sq.order_asc);
			spec.side = SG_WALK_FROM;
			st->wx = json_incref((json_t *)x);
		}
		spec.start = cur;
	}
	if ((json_object_get(cur, "d") && !st->back) || !sg_req_walk(st->r, &spec, done))
		sg_req_fail(st->r, 500, "api_error", "out of memory");
	json_decref(cur);
}

/* A backend that pages itself serves the page natively when it is the key's only backend
 * and can give the requested order; otherwise its pages are all read and merged. */
static int native_sessions(const struct sg_key *key, const struct sg_session_query *q)
{
	const struct sg_mapping *m = key->routes[0].backend->mapping;

	return key->nroutes == 1 && m->list_sessions_page &&
	       (!q->order_asc || (m->caps & SG_CAP_NATIVE_ORDER));
}

/* Reads every backend's sessions that are not held: a call, or a walk over every page of a
 * backend that pages itself. */
static void start_sessions(struct rd *st)
{
	const struct sg_key *key = sg_req_key(st->r);
	struct sg_req *r = st->r;

	for (size_t i = 0; i < key->nroutes; i++) {
		const struct sg_route *rt = &key->routes[i];

		if (st->parts[i].held)
			continue;
		if (rt->backend->mapping->list_sessions) {
			struct sg_call *c = sg_req_call(r, SG_CALL_LIST_SESSIONS, rt, on_part_call);

			if (!c) {
				sg_req_fail(r, 500, "api_error", "out of memory");
				return;
			}
			st->parts[i].call = c;
			sg_call_set_session_query(c, &st->sq);
			/* straight into a held listing, rendered as it comes when it will be held
			 */
			sg_call_collect_held(c, SG_HELD_SESSIONS, rt->backend->fresh_ms > 0);
			sg_call_start(c);
		} else {
			struct sg_walk_spec spec = {.kind = SG_CALL_SESSIONS_PAGE,
			                            .route = rt,
			                            .sq = &st->sq,
			                            .collect_all = 1};

			st->parts[i].walk = sg_req_walk(r, &spec, on_part_walk);
			if (!st->parts[i].walk) {
				sg_req_fail(r, 500, "api_error", "out of memory");
				return;
			}
		}
	}
}

/* ---- the fleet's write generations -----------------------------------------------------------
 *
 * With Redis configured, every instance counts writes to a backend in one Redis counter
 * (prefix "gen:" backend; api_write.c increments it before answering a write), and a read that
 * may answer from what is held first reads the counters of its backends (one MGET) and keys
 * its lookups by them as well as by the local generation: a write through another instance is
 * then never answered from what was held before it. Redis slow or down: the read does not
 * use what is held (it asks the backends, as Cache-Control: no-cache does) and says so at
 * debug level. */

/* The generation a read keys held listings by: the local one, and the fleet's above it. */
static unsigned long read_gen(const struct sg_backend *be)
{
	return atomic_load(&be->state->write_gen) +
	       ((unsigned long)atomic_load(&be->state->shared_gen) << 32);
}

static void on_gens(enum sg_redis_status status, const struct redisReply *reply, void *arg)
{
	struct rd *st = arg;

	st->gen_op = NULL;
	if (status != SG_REDIS_OK || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != st->ngen_routes) {
		sg_debug(
		    "request %s: the fleet's write generations are unknown (redis %s): reading "
		    "from the backends",
		    sg_req_id(st->r),
		    status == SG_REDIS_TIMEOUT ? "timed out"
		    : status == SG_REDIS_DOWN  ? "went away"
		                               : "answered an error");
		st->fresh = 1;
	} else {
		st->gens_known = 1;
		for (size_t i = 0; i < reply->elements; i++) {
			const struct redisReply *e = reply->element[i];

			if (e->type == REDIS_REPLY_STRING)
				sg_backend_shared_gen(st->gen_routes[i].backend,
				                      strtoul(e->str, NULL, 10));
		}
	}
	st->after_gens(st);
}

/* Reads the fleet's write generations of routes[0..n-1] when Redis is configured and one of
 * them holds what it reads (fresh_ms), then runs next(st); at once otherwise. */
static void with_fleet_gens(struct rd *st, const struct sg_route *routes, size_t n,
                            void (*next)(struct rd *st))
{
	struct sg_req_host *h = sg_req_host(st->r);
	const struct sg_config *cfg = sg_req_config(st->r);
	const char *argv[1 + SG_MAX_ROUTES];
	size_t lens[1 + SG_MAX_ROUTES], held = 0;
	char keys[SG_MAX_ROUTES][160];

	for (size_t i = 0; i < n; i++)
		held += routes[i].backend->fresh_ms > 0;
	if (!h->redis || held == 0 || st->fresh || n > SG_MAX_ROUTES) {
		next(st);
		return;
	}
	argv[0] = "MGET";
	lens[0] = 4;
	for (size_t i = 0; i < n; i++) {
		int k = snprintf(keys[i], sizeof(keys[i]), "%sgen:%s", cfg->redis.prefix,
		                 routes[i].backend->name);

		argv[i + 1] = keys[i];
		lens[i + 1] = k > 0 && (size_t)k < sizeof(keys[i]) ? (size_t)k : 0;
	}
	st->after_gens = next;
	st->gen_routes = routes;
	st->ngen_routes = n;
	st->gen_op = sg_redis_cmd(h->redis, (int)n + 1, argv, lens, on_gens, st);
	if (!st->gen_op) {
		sg_debug("request %s: redis is not connected: reading from the backends",
		         sg_req_id(st->r));
		st->fresh = 1;
		next(st);
	}
}

/* The list goes on from what is held, or reads. */
static void list_held(struct rd *st)
{
	const struct sg_key *key = sg_req_key(st->r);

	st->merged = sessions_merged;
	for (size_t i = 0; i < key->nroutes; i++) {
		struct part *p = &st->parts[i];

		p->be = key->routes[i].backend;
		p->gen = read_gen(p->be);
		p->held = held_lookup(st, p, 'S');
	}
	st->ffi = 0;
	fresh_next(st);
}

/* Every part found held (here or in Redis) or not: the rest are read. */
static void list_go(struct rd *st)
{
	for (size_t i = 0; i < st->nparts; i++)
		if (!st->parts[i].held)
			st->nwaiting++;
	if (st->nwaiting == 0) {
		sessions_merged(st);
		return;
	}
	st->start = start_sessions;
	if (!flight_join(st, 'S'))
		start_sessions(st);
}

void sg_api_list_sessions(struct sg_req *r)
{
	const struct sg_key *key = sg_req_key(r);
	struct sg_error e = {0};
	struct rd *st = rd_new(r, key->nroutes);

	if (!st)
		return;
	if (sg_session_query_parse(sg_req_query(r), &st->sq, &e)) {
		sg_req_error(r, &e);
		return;
	}
	if (native_sessions(key, &st->sq)) {
		start_native_sessions(st, &key->routes[0]);
		return;
	}
	{
		struct sg_pager_ctx pc = pager_ctx(st);

		if (sg_pager_session_pos(&pc, &st->sq, &st->pos, &e)) {
			sg_req_error(r, &e);
			return;
		}
	}
	for (size_t i = 0; i < key->nroutes; i++)
		sg_req_note_backend(r, key->routes[i].backend);
	if (reply_from_snapshot(st) || fetch_shared_snapshot(st))
		return;
	sessions_read(st);
}

/* Reads (or finds held) every backend's listing for the page. */
static void sessions_read(struct rd *st)
{
	const struct sg_key *key = sg_req_key(st->r);

	with_fleet_gens(st, key->routes, key->nroutes, list_held);
}

static void get_merged(struct rd *st)
{
	sg_req_reply(st->r, 200, json_incref(st->object));
}

static void on_get_done(struct sg_call *c, void *arg)
{
	struct rd *st = sg_req_state(arg);
	const struct sg_error *ce = sg_call_error(c);
	json_t *s = sg_call_result_object(c);
	struct sg_error e;

	if (!ce && !json_is_object(s)) {
		sg_error_set(&e, 500, "api_error", "backend '%s' returned no session",
		             sg_call_backend(c)->name);
		ce = &e;
	}
	if (ce) {
		flight_land(st, ce);
		sg_req_error(st->r, ce);
		return;
	}
	st->object = json_incref(s);
	flight_land(st, NULL);
	get_merged(st);
}

/* Reads the session (a flight's leader). */
static void start_get(struct rd *st)
{
	struct sg_call *c = sg_req_call(st->r, SG_CALL_GET_SESSION, st->route, on_get_done);

	if (!c) {
		sg_req_fail(st->r, 500, "api_error", "out of memory");
		return;
	}
	st->parts[0].call = c;
	sg_call_set_pubid(c, &st->id);
	sg_call_start(c);
}

int sg_api_session_route(struct sg_req *r, struct sg_pubid *id, const struct sg_route **rt)
{
	if (sg_id_decode("sesn_", sg_req_param(r), id) ||
	    !(*rt = sg_api_route_of(sg_req_key(r), id->backend))) {
		sg_req_fail(r, 404, "not_found_error", "session not found");
		return -1;
	}
	sg_req_note_backend(r, (*rt)->backend);
	return 0;
}

static void get_go(struct rd *st)
{
	st->parts[0].gen = read_gen(st->route->backend);
	st->merged = get_merged;
	st->start = start_get;
	if (!flight_join(st, 'G'))
		start_get(st);
}

void sg_api_get_session(struct sg_req *r)
{
	const struct sg_route *rt;
	struct rd *st = rd_new(r, 1);

	if (!st || sg_api_session_route(r, &st->id, &rt))
		return;
	st->sid = strdup(sg_req_param(r));
	if (!st->sid) {
		sg_req_fail(r, 500, "api_error", "out of memory");
		return;
	}
	/* identical retrieves on a worker share one read (flights, above) */
	st->route = rt;
	st->parts[0].be = rt->backend;
	with_fleet_gens(st, rt, 1, get_go);
}

static void reply_events(struct rd *st, const struct sg_held *h)
{
	struct sg_pager_ctx pc = pager_ctx(st);
	struct sg_error e = {0};
	size_t len;
	char *text = sg_pager_events_text(h, &st->eq, &pc, &len, &e);

	if (text)
		sg_req_reply_text(st->r, 200, text, len);
	else
		sg_req_error(st->r, &e);
}

/* Every event of the session is in: the keyset pager orders and slices. */
static void events_merged(struct rd *st)
{
	struct sg_error e = {0};

	if (!st->parts[0].held && held_build(st, &st->parts[0], 'E', &e)) {
		flight_land(st, &e);
		sg_req_error(st->r, &e);
		return;
	}
	flight_land(st, NULL);
	reply_events(st, st->parts[0].held);
}

/* Reads the session's whole log (a flight's leader). */
static void start_events(struct rd *st)
{
	struct sg_call *c = sg_req_call(st->r, SG_CALL_LIST_EVENTS, st->route, on_part_call);

	if (!c) {
		sg_req_fail(st->r, 500, "api_error", "out of memory");
		return;
	}
	st->parts[0].call = c;
	sg_call_set_pubid(c, &st->id);
	sg_call_set_event_query(c, &st->eq);
	sg_call_start(c);
}

/* The session's log from what is held, or read. */
static void events_held(struct rd *st)
{
	struct part *p = &st->parts[0];

	p->gen = read_gen(st->route->backend);
	p->held = held_lookup(st, p, 'E');
	if (p->held) {
		reply_events(st, p->held);
		return;
	}
	st->start = start_events;
	if (!flight_join(st, 'E'))
		start_events(st);
}

void sg_api_list_events(struct sg_req *r)
{
	struct sg_error e = {0};
	struct sg_pubid id;
	const struct sg_route *rt;
	const struct sg_mapping *m;
	struct sg_walk_spec spec = {.kind = SG_CALL_EVENTS_PAGE};
	struct rd *st = rd_new(r, 1);

	if (!st)
		return;
	if (sg_event_query_parse(sg_req_query(r), &st->eq, &e)) {
		sg_req_error(r, &e);
		return;
	}
	if (sg_api_session_route(r, &id, &rt))
		return;
	st->sid = strdup(sg_req_param(r));
	if (!st->sid) {
		sg_req_fail(r, 500, "api_error", "out of memory");
		return;
	}
	m = rt->backend->mapping;
	st->nwaiting = 1;
	st->merged = events_merged;
	st->parts[0].be = rt->backend;
	st->parts[0].gen = atomic_load(&rt->backend->state->write_gen);
	spec.route = rt;
	spec.eq = &st->eq;
	spec.pubid = &id;
	if (m->list_events_page && (!st->eq.order_desc || (m->caps & SG_CAP_NATIVE_ORDER))) {
		spec.limit = (size_t)st->eq.limit;
		start_native_walk(st, &spec, st->eq.page,
		                  sg_event_query_bound_fingerprint(&st->eq, st->sid));
		return;
	}
	if (m->list_events) {
		st->route = rt;
		st->id = id;
		with_fleet_gens(st, rt, 1, events_held);
		return;
	}
	if (!m->list_events_page) {
		sg_req_fail(r, 404, "not_found_error", "backend '%s' has no event history",
		            rt->backend->name);
		return;
	}
	spec.collect_all = 1;
	st->parts[0].walk = sg_req_walk(r, &spec, on_part_walk);
	if (!st->parts[0].walk)
		sg_req_fail(r, 500, "api_error", "out of memory");
}

void sg_api_health(struct sg_req *r)
{
	sg_req_reply(r, 200, json_pack("{s:s}", "status", "ok"));
}
