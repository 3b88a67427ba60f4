/* stream.c - see stream.h.
 *
 * Ownership: a client's struct sub is its request's state (freed with the request, however
 * the request ends); a hub belongs to the worker's registry and lives while it has clients.
 * Ending a client's request from inside a loop over the hub's clients unlinks that client
 * only; a hub whose last client left is closed by whoever holds it busy once the loop is
 * over (hub->busy), never under a loop's feet. */
#include "stream.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "call.h"
#include "config.h"
#include "error.h"
#include "idcodec.h"
#include "log.h"
#include "mapping.h"
#include "query.h"
#include "request.h"
#include "timeutil.h"
#include "walk.h"

#define SEEN_MAX 2048                 /* event ids remembered per hub (as 64-bit hashes: 16 KiB) */
#define RING_MAX_BYTES (64 << 10)     /* recent frames kept per hub for Last-Event-ID */
#define RING_WORKER_BYTES (32u << 20) /* … and by all the hubs of a worker together */
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 8000
#define LAST_ID_MAX 256
#define HELD_MAX 2048 /* live events held while the history fills a gap; beyond, sent at once */

struct sg_streams_shared {
	pthread_mutex_t lock; /* regs and every registry's inbox */
	struct sg_streams **regs;
	size_t nregs, capregs;
};

struct frame {
	char *id;
	char *bytes;
	size_t len;
};

struct hub;

struct sub {
	struct hub *hub;
	struct sg_streams *reg;
	struct sg_req *r;
	struct sub *prev, *next;
	struct event *life;
	atomic_long *key_count; /* its key's open streams (config.h: sg_key_state), or NULL */
	int started;
	char last_id[LAST_ID_MAX]; /* Last-Event-ID, "" when none */
};

struct hub {
	struct sg_streams *reg;
	const struct sg_config *cfg; /* the generation it was opened in (a reference): its route,
	                              * backend and limits live there */
	struct hub *chain;           /* registry bucket */
	char *key;
	uint64_t hash;
	char *sid;
	const struct sg_route *rt;
	struct sg_pubid id;
	int own; /* one client's own stream (a native resume), never shared */
	struct sub *subs;
	size_t nsubs;
	struct sg_call *call; /* the upstream connection, NULL while reconnecting */
	struct sg_call *fill; /* after a drop: the history read that fills the gap */
	struct sg_walk *fill_walk;
	struct sg_event_query fill_q;
	json_t *held;  /* live events that came while the history was read (NULL: not reading) */
	int opened;    /* clients got their 200: the upstream answered 2xx once */
	int connected; /* the current call has answered 2xx */
	int busy;
	int closing;
	int64_t since_us;
	char *resume;
	struct event *timer; /* open deadline, then reconnect backoff */
	struct event *beat;
	int64_t lost_ms; /* monotonic ms when the upstream was lost; 0 while connected */
	long backoff_ms;
	int64_t last_frame_ms;
	struct frame *ring;
	size_t rhead, rcount, rbytes;
	uint64_t *seen; /* hashes of the event ids sent, oldest first from seen_head (FIFO) */
	size_t seen_head, seen_count, seen_cap;
};

struct sg_streams {
	struct sg_streams_shared *sh;
	struct sg_req_host *host;
	size_t ring_bytes; /* every hub's recent frames together */
	struct hub **buckets;
	size_t nbuckets, nhubs;
	size_t nopen;
	unsigned long own_seq;
	struct event *notify; /* activated by sg_streams_deleted on any worker */
	json_t *inbox;        /* deleted sids, under sh->lock */
	int draining;
};

static int64_t wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct timeval tv_ms(long ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	return tv;
}

/* ---- the registry -------------------------------------------------------------------- */

static struct hub *reg_find(struct sg_streams *reg, const char *key)
{
	uint64_t h = fnv(key);

	for (struct hub *b = reg->buckets[h & (reg->nbuckets - 1)]; b; b = b->chain)
		if (b->hash == h && !strcmp(b->key, key))
			return b;
	return NULL;
}

static void reg_grow(struct sg_streams *reg)
{
	size_t n = reg->nbuckets * 2;
	struct hub **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < reg->nbuckets; i++) {
		struct hub *b = reg->buckets[i], *next;

		for (; b; b = next) {
			next = b->chain;
			b->chain = nb[b->hash & (n - 1)];
			nb[b->hash & (n - 1)] = b;
		}
	}
	free(reg->buckets);
	reg->buckets = nb;
	reg->nbuckets = n;
}

static void reg_add(struct sg_streams *reg, struct hub *hub)
{
	struct hub **slot;

	if (reg->nhubs >= reg->nbuckets)
		reg_grow(reg);
	slot = &reg->buckets[hub->hash & (reg->nbuckets - 1)];
	hub->chain = *slot;
	*slot = hub;
	reg->nhubs++;
}

static void reg_remove(struct sg_streams *reg, struct hub *hub)
{
	struct hub **p = &reg->buckets[hub->hash & (reg->nbuckets - 1)];

	for (; *p; p = &(*p)->chain)
		if (*p == hub) {
			*p = hub->chain;
			reg->nhubs--;
			return;
		}
}

/* ---- frames ---------------------------------------------------------------------------- */

/* The SSE message of a north event: "id: …\nevent: <type>\ndata: <json>\n\n" (malloc'd), or
 * NULL when out of memory. */
static char *render(const json_t *ev, size_t *len)
{
	const char *id = json_string_value(json_object_get(ev, "id"));
	const char *type = json_string_value(json_object_get(ev, "type"));
	char *data = json_dumps(ev, JSON_COMPACT), *out;
	size_t n;
	int w;

	if (!data)
		return NULL;
	/* ids and types are the normaliser's: no line breaks in them */
	n = strlen(data) + (id ? strlen(id) : 0) + (type ? strlen(type) : 0) + 32;
	out = malloc(n);
	if (out) {
		w = snprintf(out, n, "%s%s%sevent: %s\ndata: %s\n\n", id ? "id: " : "",
		             id ? id : "", id ? "\n" : "", type ? type : "message", data);
		*len = (size_t)w;
	}
	free(data);
	return out;
}

/* "event: error" with the north error envelope. */
static char *render_error(const char *type, const char *message, size_t *len)
{
	json_t *body = json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type", type,
	                         "message", message);
	char *data = body ? json_dumps(body, JSON_COMPACT) : NULL, *out = NULL;

	json_decref(body);
	if (data && asprintf(&out, "event: error\ndata: %s\n\n", data) >= 0)
		*len = strlen(out);
	else
		out = NULL;
	free(data);
	return out;
}

/* The seen set: a FIFO of 64-bit hashes of event ids, grown as events come (an idle hub
 * holds none), scanned linearly (2048 at most). */
static int seen_has(const struct hub *hub, const char *id)
{
	uint64_t h = fnv(id);

	for (size_t i = 0; i < hub->seen_count; i++)
		if (hub->seen[i] == h)
			return 1;
	return 0;
}

static void seen_add(struct hub *hub, const char *id)
{
	if (hub->seen_count == hub->seen_cap && hub->seen_cap < SEEN_MAX) {
		size_t n = hub->seen_cap ? hub->seen_cap * 2 : 32;
		uint64_t *ns = realloc(hub->seen, n * sizeof(*ns));

		if (ns) {
			hub->seen = ns;
			hub->seen_cap = n;
		}
	}
	if (hub->seen_count < hub->seen_cap) {
		hub->seen[hub->seen_count++] = fnv(id);
		return;
	}
	if (!hub->seen_cap)
		return;
	/* full: the oldest goes (the order of the others does not matter to a linear scan) */
	hub->seen[hub->seen_head] = fnv(id);
	hub->seen_head = (hub->seen_head + 1) % hub->seen_cap;
}

static void ring_drop_oldest(struct hub *hub, size_t cap)
{
	struct frame *f = &hub->ring[hub->rhead];

	hub->rbytes -= f->len;
	hub->reg->ring_bytes -= f->len;
	free(f->id);
	free(f->bytes);
	f->id = f->bytes = NULL;
	hub->rhead = (hub->rhead + 1) % cap;
	hub->rcount--;
}

static void ring_add(struct hub *hub, const char *id, const char *bytes, size_t len)
{
	size_t cap = hub->cfg->stream_replay_events;
	struct frame *f;

	if (!cap || !id || len > RING_MAX_BYTES)
		return;
	if (!hub->ring && !(hub->ring = calloc(cap, sizeof(struct frame))))
		return; /* made when the first frame comes: an idle hub holds none */
	while (hub->rcount && (hub->rcount == cap || hub->rbytes + len > RING_MAX_BYTES ||
	                       hub->reg->ring_bytes + len > RING_WORKER_BYTES))
		ring_drop_oldest(hub, cap);
	if (hub->reg->ring_bytes + len > RING_WORKER_BYTES)
		return; /* the worker's budget is taken by other hubs: this one keeps nothing */
	f = &hub->ring[(hub->rhead + hub->rcount) % cap];
	f->id = strdup(id);
	f->bytes = malloc(len);
	if (!f->id || !f->bytes) {
		free(f->id);
		free(f->bytes);
		f->id = f->bytes = NULL;
		return;
	}
	memcpy(f->bytes, bytes, len);
	f->len = len;
	hub->rbytes += len;
	hub->reg->ring_bytes += len;
	hub->rcount++;
}

/* Index (0 = oldest) of the frame with this id in the ring, or -1. */
static long ring_find(const struct hub *hub, const char *id)
{
	size_t cap = hub->cfg->stream_replay_events;

	for (size_t i = 0; i < hub->rcount; i++)
		if (!strcmp(hub->ring[(hub->rhead + i) % cap].id, id))
			return (long)i;
	return -1;
}

/* ---- clients --------------------------------------------------------------------------- */

static void hub_close(struct hub *hub);
static void hub_settle(struct hub *hub);
static void hub_fill_cancel(struct hub *hub);
static void hub_fill(struct hub *hub);

/* Sends bytes to one started client; a client that cannot take them any more (its unread
 * bytes would pass the cap) gets the error and is cut. Returns 0, or -1 when s is gone. */
static int sub_send(struct sub *s, const char *bytes, size_t len)
{
	size_t cap = sg_req_config(s->r)->max_stream_backlog_bytes;
	struct sg_req *r = s->r;
	size_t backlog = sg_req_stream_backlog(r);

	/* The cap is on what a reader has left unread when the next event comes, not on the
	 * size of one event: a client within the cap takes any event whole (a big tool result),
	 * so one holds at most the cap plus one event. */
	if (backlog > cap) {
		size_t elen = 0;
		char *e =
		    render_error("api_error",
		                 "the client read too slowly: more than "
		                 "limits.max_stream_backlog_bytes waited for it; reconnect and "
		                 "list the session's events to fill the gap",
		                 &elen);

		sg_warn("%s: the client reads too slowly (more than %zu bytes waiting); ending its "
		        "stream",
		        sg_req_id(r), cap);
		if (e && sg_req_stream_send_last(r, e, elen) < 0) {
			free(e);
			return -1;
		}
		free(e);
		sg_req_stream_end(r);
		return -1;
	}
	return sg_req_stream_send_last(r, bytes, len);
}

/* Ends one client: cleanly when its stream has started, else with the error. */
static void sub_end(struct sub *s, const struct sg_error *e)
{
	if (s->started)
		sg_req_stream_end(s->r);
	else if (e)
		sg_req_error(s->r, e);
	else if (s->reg->draining)
		sg_req_fail(s->r, 503, "api_error", "the gateway is shutting down; reconnect");
	else
		sg_req_fail(s->r, 503, "api_error", "the stream ended before it started");
}

static void sub_free(void *p)
{
	struct sub *s = p;
	struct hub *hub = s->hub;

	if (s->life)
		event_free(s->life);
	if (s->key_count)
		atomic_fetch_sub(s->key_count, 1);
	s->reg->nopen--;
	if (hub) {
		if (s->prev)
			s->prev->next = s->next;
		else
			hub->subs = s->next;
		if (s->next)
			s->next->prev = s->prev;
		hub->nsubs--;
		if (hub->nsubs == 0 && !hub->closing && !hub->busy)
			hub_close(hub);
	}
	free(s);
}

static void on_life(evutil_socket_t fd, short what, void *arg)
{
	struct sub *s = arg;

	(void)fd;
	(void)what;
	if (s->started)
		/* the SDK's runner reconnects and lists the history; a client that sends its
		 * Last-Event-ID gets the frames it missed from the ring */
		sg_req_stream_end(s->r);
}

/* Starts one waiting client's stream: its 200, then what it missed since its Last-Event-ID
 * when the hub still has it. Returns 0, or -1 when the client is gone. */
static int sub_start(struct sub *s)
{
	struct hub *hub = s->hub;
	size_t cap = hub->cfg->stream_replay_events;
	struct timeval life = tv_ms(sg_req_config(s->r)->stream_max_lifetime_ms);
	long at;

	s->started = 1;
	if (sg_req_stream_start(s->r, "text/event-stream") < 0)
		return -1;
	s->life = evtimer_new(s->reg->host->base, on_life, s);
	if (s->life)
		evtimer_add(s->life, &life);
	if (s->last_id[0] && (at = ring_find(hub, s->last_id)) >= 0) {
		for (size_t i = (size_t)at + 1; i < hub->rcount; i++) {
			const struct frame *f = &hub->ring[(hub->rhead + i) % cap];

			if (sub_send(s, f->bytes, f->len) < 0)
				return -1;
		}
	}
	/* an empty comment: the headers and the first chunk leave now, so the client's
	 * for-await begins (the SDK returns from the connect only once it has a response) */
	return sg_req_stream_send(s->r, ": connected\n\n", 13);
}

/* ---- hubs ------------------------------------------------------------------------------ */

static void hub_connect(struct hub *hub);

/* Calls fn on every client (fn may end the one it is given), holding the hub. */
static void hub_each(struct hub *hub, void (*fn)(struct sub *s, void *arg), void *arg)
{
	struct sub *s = hub->subs, *next;

	hub->busy++;
	for (; s; s = next) {
		next = s->next;
		fn(s, arg);
	}
	hub->busy--;
}

struct bytes {
	const char *p;
	size_t len;
};

static void each_send(struct sub *s, void *arg)
{
	const struct bytes *b = arg;

	if (s->started)
		sub_send(s, b->p, b->len);
}

static void broadcast(struct hub *hub, const char *p, size_t len)
{
	struct bytes b = {p, len};

	hub->last_frame_ms = sg_mono_ms();
	hub_each(hub, each_send, &b);
}

static void each_end(struct sub *s, void *arg)
{
	sub_end(s, arg);
}

/* Frees what the hub holds (not its clients). */
static void hub_free(struct hub *hub)
{
	size_t cap = hub->cfg->stream_replay_events;

	while (hub->rcount)
		ring_drop_oldest(hub, cap);
	free(hub->seen);
	sg_event_query_clear(&hub->fill_q);
	free(hub->ring);
	free(hub->key);
	free(hub->sid);
	free(hub->resume);
	sg_config_unref(hub->cfg);
	free(hub);
}

/* Closes the hub: its upstream, its clients (e: what waiting clients are answered, NULL for
 * 503), its place in the registry; its memory once nobody holds it. */
static void hub_close_with(struct hub *hub, const struct sg_error *e)
{
	if (hub->closing)
		return;
	hub->closing = 1;
	reg_remove(hub->reg, hub);
	if (hub->timer)
		event_free(hub->timer);
	if (hub->beat)
		event_free(hub->beat);
	hub->timer = hub->beat = NULL;
	hub->busy++;
	if (hub->call) {
		sg_call_free(hub->call); /* deferred by call.c when inside its emit */
		hub->call = NULL;
	}
	hub_fill_cancel(hub);
	hub_each(hub, each_end, (void *)e);
	/* every client's free unlinked it */
	hub->busy--;
	if (!hub->busy)
		hub_free(hub);
}

static void hub_close(struct hub *hub)
{
	hub_close_with(hub, NULL);
}

/* After a loop that held the hub: close it when its last client left meanwhile, free it
 * when it was closed meanwhile. Returns 1 when the hub is gone. */
static int hub_release(struct hub *hub)
{
	if (hub->busy)
		return 0;
	if (hub->closing) {
		hub_free(hub);
		return 1;
	}
	if (hub->nsubs == 0) {
		hub_close(hub);
		return 1;
	}
	return 0;
}

static void hub_settle(struct hub *hub)
{
	hub_release(hub);
}

/* Sends a whole north event the hub made itself (session.deleted, error) and ends. */
static void hub_final(struct hub *hub, const char *bytes, size_t len)
{
	hub->busy++;
	if (bytes)
		broadcast(hub, bytes, len);
	hub->busy--;
	hub_close(hub);
}

static void hub_deleted(struct hub *hub)
{
	char id[SG_EVENT_ID_LEN + 1], ts[SG_TIME_BUFSZ], *seed = NULL, *bytes = NULL;
	json_t *ev;
	size_t len = 0;

	if (asprintf(&seed, "deleted\x1f%s", hub->sid) < 0)
		seed = NULL;
	if (seed)
		sg_event_id(seed, strlen(seed), id);
	free(seed);
	if (sg_time_format(wall_us(), ts, sizeof(ts)) < 0)
		ts[0] = 0;
	ev = json_pack("{s:s, s:s, s:s}", "id", id, "type", "session.deleted", "processed_at", ts);
	if (ev && hub->opened)
		bytes = render(ev, &len);
	json_decref(ev);
	if (hub->opened) {
		hub_final(hub, bytes, len);
	} else {
		struct sg_error e = {0};

		sg_err_not_found(&e, "session not found");
		hub_close_with(hub, &e);
	}
	free(bytes);
}

static void hub_lost(struct hub *hub, const char *why);
static int on_event(struct sg_call *c, const json_t *ev, void *arg);

static void hub_fill_cancel(struct hub *hub)
{
	sg_call_free(hub->fill);
	sg_walk_free(hub->fill_walk);
	hub->fill = NULL;
	hub->fill_walk = NULL;
	json_decref(hub->held);
	hub->held = NULL;
}

/* The gap a drop left: every event of the history dated from the hub's first connect on
 * (less a second: some backends date to the second) that the clients have not had yet, in
 * the history's order; then the stream is reopened. A history that cannot be read is
 * logged and skipped: the reopened stream still serves what comes next. */
static void fill_done(struct hub *hub, const json_t *items, const struct sg_error *e)
{
	json_t *ev, *held = hub->held;
	size_t i, n = 0;

	hub->held = NULL;
	hub->busy++;
	if (e) {
		sg_warn("stream %s: backend '%s' history could not fill the gap after a drop: %s",
		        hub->sid, hub->rt->backend->name, e->message);
	} else {
		json_array_foreach(items, i, ev) {
			const char *at = json_string_value(json_object_get(ev, "processed_at"));
			const char *id = json_string_value(json_object_get(ev, "id"));
			int64_t us;

			if (hub->closing)
				break;
			if (!id || seen_has(hub, id))
				continue;
			if (!at || sg_time_parse_rfc3339(at, &us) < 0 ||
			    us < hub->since_us - 1000000)
				continue;
			n++;
			on_event(NULL, ev, hub);
		}
		if (n)
			sg_info("stream %s: %zu event(s) the drop hid were sent from the history",
			        hub->sid, n);
	}
	/* then what the reopened stream sent meanwhile, in its order */
	json_array_foreach(held, i, ev) {
		if (hub->closing)
			break;
		on_event(NULL, ev, hub);
	}
	json_decref(held);
	hub->busy--;
	hub_release(hub);
}

static void on_fill_call(struct sg_call *c, void *arg)
{
	struct hub *hub = arg;
	json_t *items = json_incref(sg_call_result(c));
	struct sg_error e = {0};
	const struct sg_error *ce = sg_call_error(c);

	if (ce)
		e = *ce;
	hub->fill = NULL;
	sg_call_free(c);
	fill_done(hub, items, ce ? &e : NULL);
	json_decref(items);
}

static void on_fill_walk(struct sg_walk *w, void *arg)
{
	struct hub *hub = arg;
	json_t *items = json_incref(sg_walk_items(w));
	struct sg_error e = {0};
	const struct sg_error *we = sg_walk_error(w);

	if (we)
		e = *we;
	hub->fill_walk = NULL;
	sg_walk_free(w);
	fill_done(hub, items, we ? &e : NULL);
	json_decref(items);
}

/* After the stream was reopened: the history since the first connect, read while the
 * reopened stream's events are held, fills what the drop hid. Reading it only once the new
 * stream is open closes the race: an event is either persisted before the read (the history
 * has it) or happens after the reopen (the stream has it). */
static void hub_fill(struct hub *hub)
{
	const struct sg_mapping *m = hub->rt->backend->mapping;
	struct sg_call_env env = {.upstream = hub->reg->host->up,
	                          .cache = hub->reg->host->cache,
	                          .base = hub->reg->host->base,
	                          .request_id = hub->sid,
	                          .principal = "stream",
	                          .now_us = wall_us()};
	struct sg_error e = {0};

	if (hub->fill || hub->fill_walk)
		return; /* a read is already under way; it covers this reopen too */
	sg_event_query_clear(&hub->fill_q);
	if (sg_event_query_parse(NULL, &hub->fill_q, &e) != 0)
		return;
	hub->held = json_array();
	if (!hub->held)
		return;
	if (m->list_events) {
		hub->fill = sg_call_new(SG_CALL_LIST_EVENTS, &env, hub->rt->backend,
		                        hub->rt->identity, on_fill_call, hub);
		if (hub->fill) {
			sg_call_set_pubid(hub->fill, &hub->id);
			sg_call_set_event_query(hub->fill, &hub->fill_q);
			sg_call_start(hub->fill);
			return;
		}
	} else if (m->list_events_page) {
		struct sg_walk_spec spec = {.kind = SG_CALL_EVENTS_PAGE,
		                            .env = &env,
		                            .route = hub->rt,
		                            .eq = &hub->fill_q,
		                            .pubid = &hub->id,
		                            .collect_all = 1};

		hub->fill_walk = sg_walk_start(&spec, on_fill_walk, hub);
		if (hub->fill_walk)
			return;
	}
	/* no history to read (or no memory to read it): nothing to hold */
	json_decref(hub->held);
	hub->held = NULL;
}

static void on_hub_timer(evutil_socket_t fd, short what, void *arg)
{
	struct hub *hub = arg;

	(void)fd;
	(void)what;
	if (hub->nsubs == 0) {
		hub_close(hub); /* its last client left while it opened */
		return;
	}
	if (hub->call && !hub->connected) {
		/* the upstream did not answer within the backend's timeout */
		sg_call_free(hub->call);
		hub->call = NULL;
		if (!hub->opened) {
			struct sg_error e = {0};

			sg_err_timeout(&e,
			               "backend '%s' did not open the event stream within %ld ms",
			               hub->rt->backend->name, hub->rt->backend->timeout_ms);
			hub_close_with(hub, &e);
			return;
		}
		hub_lost(hub, "the backend did not answer in time");
		return;
	}
	if (!hub->call)
		hub_connect(hub); /* the backoff is over */
}

static void on_beat(evutil_socket_t fd, short what, void *arg)
{
	struct hub *hub = arg;
	long ms = hub->cfg->stream_heartbeat_ms;

	(void)fd;
	(void)what;
	if (!hub->opened || sg_mono_ms() - hub->last_frame_ms < ms - ms / 10)
		return;
	hub->busy++;
	broadcast(hub, ": heartbeat\n\n", 13);
	hub->busy--;
	hub_settle(hub);
}

/* The upstream went away (an error, or a clean end): reconnect after a backoff, or give up
 * once it has been gone for streams.reconnect_ms. */
static void hub_lost(struct hub *hub, const char *why)
{
	long window = hub->cfg->stream_reconnect_ms;
	int64_t now = sg_mono_ms();
	struct timeval tv;

	hub->connected = 0;
	if (!hub->lost_ms) {
		hub->lost_ms = now;
		hub->backoff_ms = 0;
		sg_warn("stream %s: backend '%s' stream lost (%s); reconnecting", hub->sid,
		        hub->rt->backend->name, why);
	}
	if (now - hub->lost_ms >= window) {
		char msg[400];
		size_t len = 0;
		char *bytes;

		snprintf(msg, sizeof(msg),
		         "backend '%s' event stream was lost and could not be reopened within %ld "
		         "ms (%s); reconnect and list the session's events to fill the gap",
		         hub->rt->backend->name, window, why);
		sg_warn("stream %s: %s", hub->sid, msg);
		bytes = render_error("api_error", msg, &len);
		hub_final(hub, bytes, len);
		free(bytes);
		return;
	}
	hub->backoff_ms = hub->backoff_ms ? hub->backoff_ms * 2 : BACKOFF_FIRST_MS;
	if (hub->backoff_ms > BACKOFF_MAX_MS)
		hub->backoff_ms = BACKOFF_MAX_MS;
	if (now + hub->backoff_ms > hub->lost_ms + window)
		hub->backoff_ms = (long)(hub->lost_ms + window - now);
	tv = tv_ms(hub->backoff_ms);
	evtimer_add(hub->timer, &tv);
}

/* The module's stream ended: an error, or the backend closed it. */
static void on_call_done(struct sg_call *c, void *arg)
{
	struct hub *hub = arg;
	const struct sg_error *ce = sg_call_error(c);
	const char *mark = sg_call_stream_marked(c);
	struct sg_error e;
	int status;

	if (mark) {
		char *m = strdup(mark);

		if (m) {
			free(hub->resume);
			hub->resume = m;
		}
	}
	e = ce ? *ce : (struct sg_error){0};
	status = ce ? ce->status : 0;
	sg_call_free(c);
	hub->call = NULL;
	evtimer_del(hub->timer);
	if (!hub->opened) {
		if (!ce)
			sg_err_bad_gateway(&e, "backend '%s' ended the event stream at once",
			                   hub->rt->backend->name);
		hub_close_with(hub, &e);
		return;
	}
	if (status == 404) {
		hub_deleted(hub); /* the session is gone upstream */
		return;
	}
	hub_lost(hub, ce ? e.message : "the backend closed it"); /* ce died with the call */
}

static void each_start(struct sub *s, void *arg)
{
	(void)arg;
	if (!s->started)
		sub_start(s);
}

/* The upstream answered 2xx: clients waiting get their 200. */
static void on_opened(struct sg_call *c, void *arg)
{
	struct hub *hub = arg;
	int reopened = hub->opened;

	(void)c;
	hub->connected = 1;
	if (hub->lost_ms)
		sg_info("stream %s: backend '%s' stream reopened", hub->sid,
		        hub->rt->backend->name);
	if (reopened)
		hub_fill(hub);
	hub->lost_ms = 0;
	hub->backoff_ms = 0;
	evtimer_del(hub->timer);
	hub->opened = 1;
	hub->last_frame_ms = sg_mono_ms();
	hub_each(hub, each_start, NULL);
	/* not closed here even when no client is left: call.c is about to hand the head to the
	 * module; the timer closes it from the loop */
	if (hub->nsubs == 0)
		event_active(hub->timer, EV_TIMEOUT, 0);
}

/* Every north event of the upstream stream, once: rendered once, kept for Last-Event-ID,
 * queued for every client. Returns -1 when the hub closed (the call is then freed). */
static int on_event(struct sg_call *c, const json_t *ev, void *arg)
{
	struct hub *hub = arg;
	const char *id = json_string_value(json_object_get(ev, "id"));
	const char *type = json_string_value(json_object_get(ev, "type"));
	int final = 0;
	size_t len = 0;
	char *bytes;

	if (hub->nsubs == 0) {
		hub_close(hub);
		return -1;
	}
	if (c && hub->held && json_array_size(hub->held) < HELD_MAX) {
		json_array_append(hub->held, (json_t *)ev); /* out of memory: this one is lost */
		return 0;
	}
	if (id && seen_has(hub, id))
		return 0; /* a reconnect's replay of what was already sent */
	if (id)
		seen_add(hub, id);
	bytes = render(ev, &len);
	if (!bytes)
		return 0; /* out of memory: this event is lost for the clients; never a crash */
	ring_add(hub, id, bytes, len);
	hub->busy++;
	broadcast(hub, bytes, len);
	hub->busy--;
	free(bytes);
	final = type &&
	        (!strcmp(type, "session.deleted") || !strcmp(type, "session.status_terminated"));
	if (final || hub->closing || hub->nsubs == 0) {
		if (hub->closing) {
			hub_release(hub);
			return -1;
		}
		hub_close(hub);
		return -1;
	}
	return 0;
}

/* Opens (or reopens) the upstream stream. */
static void hub_connect(struct hub *hub)
{
	struct sg_req_host *host = hub->reg->host;
	struct sg_call_env env = {.upstream = host->stream_up ? host->stream_up : host->up,
	                          .cache = host->cache,
	                          .base = host->base,
	                          .request_id = hub->sid,
	                          .principal = "stream",
	                          .now_us = wall_us()};
	struct timeval open_tv = tv_ms(hub->rt->backend->timeout_ms);
	struct sg_call *c;

	c = sg_call_new(SG_CALL_STREAM_EVENTS, &env, hub->rt->backend, hub->rt->identity,
	                on_call_done, hub);
	if (!c || sg_call_set_stream_input(c, hub->since_us, hub->resume, on_opened) < 0) {
		sg_call_free(c);
		if (hub->opened) {
			hub_lost(hub, "out of memory");
		} else {
			struct sg_error e = {0};

			sg_err_internal(&e, "out of memory");
			hub_close_with(hub, &e);
		}
		return;
	}
	sg_call_set_pubid(c, &hub->id);
	sg_call_set_sink(c, on_event, hub);
	hub->call = c;
	hub->connected = 0;
	evtimer_add(hub->timer, &open_tv);
	sg_call_start(c);
}

static struct hub *hub_new(struct sg_streams *reg, const struct sg_config *cfg, const char *key,
                           const char *sid, const struct sg_route *rt, const struct sg_pubid *id)
{
	struct hub *hub = calloc(1, sizeof(*hub));
	struct timeval beat = tv_ms(cfg->stream_heartbeat_ms);

	if (!hub)
		return NULL;
	hub->cfg = sg_config_ref(cfg);
	hub->reg = reg;
	hub->key = strdup(key);
	hub->sid = strdup(sid);
	hub->hash = fnv(key);
	hub->rt = rt;
	hub->id = *id;
	hub->since_us = wall_us();
	hub->timer = evtimer_new(reg->host->base, on_hub_timer, hub);
	hub->beat = event_new(reg->host->base, -1, EV_PERSIST, on_beat, hub);
	if (!hub->key || !hub->sid || !hub->timer || !hub->beat ||
	    event_add(hub->beat, &beat) < 0) {
		if (hub->timer)
			event_free(hub->timer);
		if (hub->beat)
			event_free(hub->beat);
		hub->timer = hub->beat = NULL;
		hub_free(hub);
		return NULL;
	}
	reg_add(reg, hub);
	return hub;
}

/* ---- the handler ----------------------------------------------------------------------- */

void sg_api_stream_events(struct sg_req *r)
{
	struct sg_req_host *host = sg_req_host(r);
	struct sg_streams *reg = host->streams;
	const struct sg_config *cfg = sg_req_config(r);
	const struct sg_key *key = sg_req_key(r);
	const char *last = sg_req_header(r, "Last-Event-ID");
	atomic_long *key_count = key ? &key->state->streams : NULL;
	const struct sg_route *rt;
	struct sg_pubid id;
	struct hub *hub;
	struct sub *s;
	char *hkey = NULL, *ident = NULL;
	int own = 0;

	if (!reg) {
		sg_req_fail(r, 500, "api_error", "streams are not set up on this worker");
		return;
	}
	if (sg_api_session_route(r, &id, &rt))
		return;
	if (!rt->backend->mapping->stream_events) {
		sg_req_fail(r, 404, "not_found_error", "backend '%s' has no live event stream",
		            rt->backend->name);
		return;
	}
	if (reg->draining) {
		sg_req_fail(r, 503, "api_error", "the gateway is shutting down; reconnect");
		return;
	}
	if (last && (!*last || strlen(last) >= LAST_ID_MAX || strpbrk(last, "\r\n"))) {
		sg_req_fail(r, 400, "invalid_request_error",
		            "Last-Event-ID: must be an event id of at most %d bytes",
		            LAST_ID_MAX - 1);
		return;
	}
	if ((long)reg->nopen >= cfg->streams_max_per_worker) {
		sg_req_fail(r, 429, "rate_limit_error",
		            "too many open event streams on this gateway worker (limit %ld); retry "
		            "later",
		            cfg->streams_max_per_worker);
		return;
	}
	if (key_count && atomic_load(key_count) >= cfg->streams_max_per_key) {
		sg_req_fail(
		    r, 429, "rate_limit_error",
		    "too many open event streams for this API key (limit %ld); close one or "
		    "retry later",
		    cfg->streams_max_per_key);
		return;
	}
	ident = json_dumps(rt->identity, JSON_COMPACT | JSON_SORT_KEYS);
	/* clients share a hub only within one configuration generation: after a reload new
	 * clients get the new backend definition, while the old hub runs on for its own */
	if (!ident || asprintf(&hkey, "%lu\x1f%s\x1f%s\x1f%s", cfg->generation, rt->backend->name,
	                       ident, sg_req_param(r)) < 0)
		hkey = NULL;
	free(ident);
	if (!hkey) {
		sg_req_fail(r, 500, "api_error", "out of memory");
		return;
	}
	hub = reg_find(reg, hkey);
	/* a Last-Event-ID the shared stream no longer holds: a backend that resumes natively
	 * serves it on a stream of the client's own */
	if (last && (rt->backend->mapping->caps & SG_CAP_STREAM_RESUME) &&
	    (!hub || !hub->opened || ring_find(hub, last) < 0)) {
		char *k = NULL;

		own = 1;
		if (asprintf(&k, "%s\x1f#%lu", hkey, ++reg->own_seq) < 0)
			k = NULL;
		free(hkey);
		hkey = k;
		hub = NULL;
		if (!hkey) {
			sg_req_fail(r, 500, "api_error", "out of memory");
			return;
		}
	}
	s = calloc(1, sizeof(*s));
	if (!hub && s) {
		hub = hub_new(reg, cfg, hkey, sg_req_param(r), rt, &id);
		if (hub && own) {
			hub->own = 1;
			hub->since_us = 0;
			hub->resume = strdup(last);
		}
	}
	free(hkey);
	if (!s || !hub) {
		free(s);
		sg_req_fail(r, 500, "api_error", "out of memory");
		return;
	}
	s->hub = hub;
	s->reg = reg;
	s->r = r;
	s->key_count = key_count;
	if (last && !own)
		snprintf(s->last_id, sizeof(s->last_id), "%s", last);
	s->next = hub->subs;
	if (hub->subs)
		hub->subs->prev = s;
	hub->subs = s;
	hub->nsubs++;
	reg->nopen++;
	if (key_count)
		atomic_fetch_add(key_count, 1);
	sg_req_set_state(r, s, sub_free);
	if (hub->opened) {
		hub->busy++;
		sub_start(s);
		hub->busy--;
		hub_settle(hub);
	} else if (!hub->call && !hub->lost_ms) {
		hub_connect(hub);
	}
}

/* ---- the worker's side ----------------------------------------------------------------- */

/* Hands each event to every hub of sid on this worker, as if its upstream had sent it. */
static void publish_here(struct sg_streams *reg, const char *sid, const json_t *events)
{
	struct hub **hubs = NULL;
	size_t n = 0;

	/* collect first: handing an event over may close a hub */
	for (size_t b = 0; b < reg->nbuckets; b++)
		for (struct hub *h = reg->buckets[b]; h; h = h->chain)
			if (!h->closing && h->opened && !strcmp(h->sid, sid)) {
				struct hub **nh = realloc(hubs, (n + 1) * sizeof(*nh));

				if (!nh)
					break;
				hubs = nh;
				hubs[n++] = h;
				h->busy++;
			}
	for (size_t i = 0; i < n; i++) {
		json_t *ev;
		size_t j;

		json_array_foreach(events, j, ev) {
			if (hubs[i]->closing || on_event(NULL, ev, hubs[i]) < 0)
				break;
		}
	}
	for (size_t i = 0; i < n; i++) {
		hubs[i]->busy--;
		hub_release(hubs[i]);
	}
	free(hubs);
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
	struct sg_streams *reg = arg;
	json_t *items, *item;
	size_t i;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&reg->sh->lock);
	items = reg->inbox;
	reg->inbox = json_array();
	pthread_mutex_unlock(&reg->sh->lock);
	json_array_foreach(items, i, item) {
		const char *want = json_string_value(json_array_get(item, 0));
		const json_t *events = json_array_get(item, 1);
		int again = 1;

		if (!want)
			continue;
		if (json_is_array(events)) {
			publish_here(reg, want, events);
			continue;
		}
		/* deleted: closing a hub unlinks it, so look again from the start after each */
		while (again) {
			again = 0;
			for (size_t b = 0; b < reg->nbuckets && !again; b++)
				for (struct hub *h = reg->buckets[b]; h; h = h->chain)
					if (!h->closing && !strcmp(h->sid, want)) {
						hub_deleted(h);
						again = 1;
						break;
					}
		}
	}
	json_decref(items);
}

/* Queues [sid, events or null] for every worker. */
static void tell_all(struct sg_streams *reg, const char *sid, const json_t *events)
{
	struct sg_streams_shared *sh = reg ? reg->sh : NULL;

	if (!sh || !sid)
		return;
	pthread_mutex_lock(&sh->lock);
	for (size_t i = 0; i < sh->nregs; i++) {
		json_t *item = json_pack("[s, O?]", sid, events);

		if (item && json_array_append_new(sh->regs[i]->inbox, item) == 0)
			event_active(sh->regs[i]->notify, EV_READ, 0);
	}
	pthread_mutex_unlock(&sh->lock);
}

struct sg_streams_shared *sg_streams_shared_new(void)
{
	struct sg_streams_shared *sh = calloc(1, sizeof(*sh));

	if (!sh)
		return NULL;
	pthread_mutex_init(&sh->lock, NULL);
	return sh;
}

void sg_streams_shared_free(struct sg_streams_shared *sh)
{
	if (!sh)
		return;
	pthread_mutex_destroy(&sh->lock);
	free(sh->regs);
	free(sh);
}

struct sg_streams *sg_streams_new(struct sg_streams_shared *sh, struct sg_req_host *host)
{
	struct sg_streams *reg = calloc(1, sizeof(*reg));
	int ok = 0;

	if (!reg)
		return NULL;
	reg->sh = sh;
	reg->host = host;
	reg->nbuckets = 64;
	reg->buckets = calloc(reg->nbuckets, sizeof(*reg->buckets));
	reg->inbox = json_array();
	reg->notify = event_new(host->base, -1, 0, on_notify, reg);
	pthread_mutex_lock(&sh->lock);
	if (reg->buckets && reg->inbox && reg->notify) {
		if (sh->nregs == sh->capregs) {
			size_t n = sh->capregs ? sh->capregs * 2 : 8;
			struct sg_streams **nr = realloc(sh->regs, n * sizeof(*nr));

			if (nr) {
				sh->regs = nr;
				sh->capregs = n;
			}
		}
		if (sh->nregs < sh->capregs) {
			sh->regs[sh->nregs++] = reg;
			ok = 1;
		}
	}
	pthread_mutex_unlock(&sh->lock);
	if (!ok) {
		if (reg->notify)
			event_free(reg->notify);
		json_decref(reg->inbox);
		free(reg->buckets);
		free(reg);
		return NULL;
	}
	return reg;
}

/* Closes every hub (their clients are answered as e says, NULL: 503). */
static void close_all(struct sg_streams *reg)
{
	for (size_t b = 0; b < reg->nbuckets; b++)
		while (reg->buckets[b])
			hub_close(reg->buckets[b]);
}

void sg_streams_drain(struct sg_streams *reg)
{
	if (!reg)
		return;
	reg->draining = 1;
	close_all(reg);
}

void sg_streams_free(struct sg_streams *reg)
{
	if (!reg)
		return;
	pthread_mutex_lock(&reg->sh->lock);
	for (size_t i = 0; i < reg->sh->nregs; i++)
		if (reg->sh->regs[i] == reg) {
			reg->sh->regs[i] = reg->sh->regs[--reg->sh->nregs];
			break;
		}
	pthread_mutex_unlock(&reg->sh->lock);
	/* the loop has stopped; requests were aborted (sg_req_abort_all), which freed their
	 * clients; hubs left have none */
	for (size_t b = 0; b < reg->nbuckets; b++)
		while (reg->buckets[b]) {
			struct hub *h = reg->buckets[b];

			reg_remove(reg, h);
			h->closing = 1;
			if (h->call)
				sg_call_free(h->call);
			hub_fill_cancel(h);
			if (h->timer)
				event_free(h->timer);
			if (h->beat)
				event_free(h->beat);
			h->busy = 0;
			hub_free(h);
		}
	event_free(reg->notify);
	json_decref(reg->inbox);
	free(reg->buckets);
	free(reg);
}

void sg_streams_deleted(struct sg_streams *reg, const char *sid)
{
	tell_all(reg, sid, NULL);
}

void sg_streams_publish(struct sg_streams *reg, const char *sid, const json_t *events)
{
	if (json_is_array(events) && json_array_size(events) > 0)
		tell_all(reg, sid, events);
}

size_t sg_streams_open(const struct sg_streams *reg)
{
	return reg ? reg->nopen : 0;
}

size_t sg_streams_upstreams(const struct sg_streams *reg)
{
	size_t n = 0;

	if (!reg)
		return 0;
	for (size_t b = 0; b < reg->nbuckets; b++)
		for (const struct hub *h = reg->buckets[b]; h; h = h->chain)
			n += h->call != NULL;
	return n;
}
