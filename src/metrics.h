/* metrics.h - the process's Prometheus metrics, written by the workers without locks and
 * summed when scraped.
 *
 * Each worker writes only its own shard (struct sg_metrics_shard), and only from its own
 * thread: a counter moves by a relaxed atomic load and store (a plain load and store on
 * x86-64 and arm64, no locked instruction, no shared cache line between workers). The scrape
 * (sg_metrics_render, on the metrics thread) reads every shard with relaxed atomic loads and
 * sums them: a scrape may see one worker's counter a moment older than another's, never a
 * torn value. Label sets with open-ended values (route × status × backend) live in a small
 * per-shard open-addressing table whose slots are claimed once and never freed, so the scrape
 * can walk it while its worker adds to it.
 *
 * The registry lives as long as the server (not in struct sg_config), so a configuration
 * reload keeps every counter; backends are named by a process-wide append-only table of names
 * (SG_METRICS_MAX_BACKENDS; later names count as "other"). */
#ifndef SG_METRICS_H
#define SG_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct sg_cache;
struct sg_upstream;
struct sg_route_def;

#define SG_METRICS_MAX_BACKENDS 64
/* Backend label indexes beyond the registered names. */
#define SG_MB_NONE SG_METRICS_MAX_BACKENDS        /* "-": the request reached no backend */
#define SG_MB_MULTI (SG_METRICS_MAX_BACKENDS + 1) /* "multi": a listing over several */
#define SG_MB_OTHER (SG_METRICS_MAX_BACKENDS + 2) /* "other": past the table's end */
#define SG_MB_COUNT (SG_METRICS_MAX_BACKENDS + 3)

/* Route label indexes beyond the route table's own. */
#define SG_MR_UNMATCHED 250 /* no route: 404, 405, bad framing */
#define SG_MR_PREFLIGHT 251 /* a CORS preflight (OPTIONS) */

/* The upstream latency buckets, in µs (the last, +Inf, is implicit). */
#define SG_METRICS_NBUCKETS 14

/* Requests refused before their call started (labels of sessiongate_refused_total). */
enum sg_metrics_refusal {
	SG_REFUSED_BREAKER,     /* the backend's breaker is open */
	SG_REFUSED_CONCURRENCY, /* the backend's max_concurrent is reached */
	SG_REFUSED_COUNT
};

#define SG_METRICS_TABLE 1024 /* label sets per shard (a power of two) */

typedef _Atomic uint64_t sg_mctr;

struct sg_metrics_shard {
	/* requests by (route, status, backend): key 0 is a free slot */
	sg_mctr req_key[SG_METRICS_TABLE];
	sg_mctr req_val[SG_METRICS_TABLE];
	sg_mctr req_dropped; /* label sets that found no free slot */
	/* upstream latency per backend: a count per bucket (not cumulative), sum and count */
	sg_mctr up_bucket[SG_MB_COUNT][SG_METRICS_NBUCKETS + 1];
	sg_mctr up_sum_us[SG_MB_COUNT];
	sg_mctr refused[SG_MB_COUNT][SG_REFUSED_COUNT];
	sg_mctr errors[16]; /* by north error type (metrics.c's table; the last: other) */
	sg_mctr inflight;   /* gauge, written as a two's complement count */
	sg_mctr streams;    /* gauge */
	sg_mctr rate_limited;
	sg_mctr flight_joins;
	/* walk snapshots in Redis (shared.h), by enum sg_metrics_snap */
	sg_mctr snap_shared[5];
	struct sg_metrics *owner;
	struct sg_upstream *up; /* its coalesced transfers (read at scrape time) */
	struct sg_cache *cache; /* the worker's own JSON cache */
} __attribute__((aligned(64)));

/* What became of a walk snapshot's trip through Redis. */
enum sg_metrics_snap {
	SG_MS_STORED,       /* a new snapshot stored */
	SG_MS_STORE_FAILED, /* not stored: too large, Redis down, refused, late or gone */
	SG_MS_FETCHED,      /* a cursor's snapshot fetched and rebuilt */
	SG_MS_MISSED,       /* not in Redis (expired, evicted, too large to share) */
	SG_MS_FETCH_FAILED, /* Redis down, late or gone, or its value unreadable */
};

struct sg_metrics;

/* A registry with nshards worker shards; routes is the route table whose indexes requests are
 * counted by. NULL when out of memory. */
struct sg_metrics *sg_metrics_new(int nshards, const struct sg_route_def *routes);
void sg_metrics_free(struct sg_metrics *m);
struct sg_metrics_shard *sg_metrics_shard(struct sg_metrics *m, int i);
/* The process's shared cache of held listings (read under its own lock at scrape time). */
void sg_metrics_set_held_cache(struct sg_metrics *m, struct sg_cache *c);

/* The label index of a backend name (registered on first use; SG_MB_OTHER when full,
 * SG_MB_NONE for NULL). Lock-free once the name is known. s may be NULL. */
int sg_metrics_backend(struct sg_metrics_shard *s, const char *name);

/* ---- the hot path: every function takes a NULL shard (tests, no metrics) ---- */

static inline void sg_mctr_add(sg_mctr *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

/* A north request ended: route index (into the table, or SG_MR_*), status, backend label. */
void sg_metrics_request(struct sg_metrics_shard *s, int route, int status, int backend);
/* A north error answer of this type ("rate_limit_error", …). */
void sg_metrics_error(struct sg_metrics_shard *s, const char *type);
/* One upstream answer of backend (label index) that took us µs. */
void sg_metrics_upstream(struct sg_metrics_shard *s, int backend, int64_t us);
void sg_metrics_refused(struct sg_metrics_shard *s, int backend, enum sg_metrics_refusal why);
void sg_metrics_gauge(sg_mctr *g, int delta);

/* ---- the scrape ---- */

/* The text exposition (format 0.0.4) of every metric: a malloc'd string (its length in *len),
 * or NULL when out of memory. Safe while the workers run. */
char *sg_metrics_render(struct sg_metrics *m, size_t *len);

/* Serves GET /metrics on host:port from a thread of its own (its own event_base and evhttp;
 * nothing of a worker's loop). Binds now (blocking set-up, before the workers run): returns 0,
 * or -1 with a reason in err. The bound port is sg_metrics_port's. */
int sg_metrics_listen(struct sg_metrics *m, const char *host, int port, char *err, size_t errlen);
int sg_metrics_port(const struct sg_metrics *m);
/* Starts the thread (0, or -1); stops and joins it. Both no-ops when not listening. */
int sg_metrics_start(struct sg_metrics *m);
void sg_metrics_stop(struct sg_metrics *m);

#endif
