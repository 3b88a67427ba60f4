/* config.h - the configuration file: one JSON document, validated whole at start-up.
 *
 * Every problem is reported with the JSON path of the key and what is wrong with it
 * ("keys[1].sha256: must be 64 hex characters"). Unknown keys are errors, so a typo never
 * silently falls back to a default. A string value "$NAME" is read from the environment
 * (where the config says so: secrets), so secrets need not live in the file.
 *
 * Generations: a loaded configuration is immutable and shared read-only by every worker, but
 * it is not there for the process's whole life: SIGHUP loads the file again into a new
 * generation (sg_config_inherit links it to the one it follows), and each request and stream
 * holds a reference to the generation current when it started (sg_config_ref/_unref); the
 * last reference frees it. What must outlive a generation lives in small shared states found
 * by name (a backend's write generation, in-flight count and probe result; a key's open
 * streams; a key's rate bucket while its rate is unchanged). */
#ifndef SG_CONFIG_H
#define SG_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "crypto.h"
#include "cursor.h"
#include "overload.h"

struct sg_mapping;

/* What a backend of one name keeps across configuration generations: shared by every
 * generation that has a backend of that name (sg_config_inherit), freed with the last. */
struct sg_backend_state {
	atomic_long refs;
	/* bumped when a write to this backend leaves and when it completes (and once by each
	 * reload). Cached reads are keyed by the generation their call started in, so a read
	 * after a write never gets an answer fetched before it (read-your-writes), whichever
	 * configuration generation either ran in. */
	atomic_ulong write_gen;
	/* with Redis (redis.h): the fleet's count of writes to this backend as last read from
	 * it; a read keys what it holds by both (api_read.c), so a write through another
	 * instance is seen too */
	atomic_ulong shared_gen;
	atomic_long inflight;   /* north calls in flight to it, against max_concurrent */
	atomic_int reachable;   /* the readiness probe's last word: 1 answered, 0 not, -1 not yet */
	atomic_llong probed_ms; /* monotonic ms of that word (0: never) */
};

/* What a key of one name keeps across generations (see sg_backend_state). */
struct sg_key_state {
	atomic_long refs;
	atomic_long streams; /* its open north streams, in the process, against max_per_key */
};

struct sg_backend {
	char *name;
	const struct sg_mapping *mapping;
	char *url;                   /* base URL, no trailing slash */
	long timeout_ms;             /* whole upstream exchange, per attempt */
	long stream_idle_timeout_ms; /* a live stream's longest silence */
	long connect_timeout_ms;
	int retries;               /* extra attempts for idempotent GETs on transport errors */
	long max_connections;      /* per worker */
	size_t max_response_bytes; /* larger upstream bodies fail with 502 */
	json_t *options;           /* module options (owned) */
	long max_concurrent;       /* north calls in flight to it, per process (0: no bound) */
	struct sg_breaker breaker; /* shared by every worker (overload.h); a reload closes it */
	long fresh_ms;             /* how long the core may answer reads from what it holds
	                            * (set by the module's init; 0: always ask the backend) */
	void *priv;                /* module state set by init(), immutable afterwards */
	/* The mutable part, shared by every worker and by every configuration generation that
	 * has a backend of this name: write generation, in-flight count, probe result. */
	struct sg_backend_state *state;
	unsigned long generation; /* its configuration's (see below): cache keys carry it */
};

/* One backend a key may reach, and the principal's identity there. */
struct sg_route {
	struct sg_backend *backend; /* borrowed from sg_config.backends */
	json_t *identity;           /* owned; module-specific, checked by check_identity() */
};

/* Backends one key may reach. A list fans out to every one of them at once and a request
 * keeps one slot per route, so loading refuses a key with more rather than the server
 * quietly leaving some out. */
#define SG_MAX_ROUTES 64

struct sg_key {
	char *name; /* the principal: logged, bound into cursors; never the key itself */
	uint8_t sha256[SG_SHA256_LEN];
	struct sg_route *routes;
	size_t nroutes;
	struct sg_bucket *bucket; /* its request rate (overload.h), NULL: no limit; shared with
	                           * the previous generation's key of this name at the same rate */
	struct sg_key_state *state;
};

struct sg_config {
	char *listen_host;
	int listen_port;
	int workers;     /* resolved: ≥ 1 */
	uint8_t *secret; /* the cursor secret that seals: secrets[0] */
	size_t secretlen;
	struct sg_cursor_key *secrets; /* every secret that opens cursors, the sealing one
	                                * first (owned bytes) */
	size_t nsecrets;
	long shutdown_grace_ms;
	size_t max_header_bytes;
	size_t max_body_bytes;
	long idle_timeout_s;             /* evhttp connection timeout */
	long request_timeout_ms;         /* whole north request, all upstream calls included */
	size_t max_stream_backlog_bytes; /* stream bytes a slow client may leave unread */
	size_t max_write_body_bytes;     /* a write's JSON body; larger → 413 */
	size_t max_upstream_bytes;       /* per worker: collected backend answers held at once */
	long idempotency_window_ms;      /* how long an Idempotency-Key answer is kept */
	size_t idempotency_max_keys;
	size_t idempotency_max_bytes;
	/* live event streams (src/stream.h) */
	long streams_max_per_key;    /* open north streams one key may hold, per process */
	long streams_max_per_worker; /* open north streams per worker */
	long stream_heartbeat_ms;    /* a comment after this long without a frame */
	long stream_max_lifetime_ms; /* a north stream is ended cleanly after this long */
	long stream_reconnect_ms;    /* an upstream stream lost for this long: error and end */
	size_t stream_replay_events; /* frames a shared stream keeps for Last-Event-ID */
	/* the read cache (cache.h, held.h): bytes per process, split evenly between the workers,
	 * and how long a walk's snapshot outlives its last page */
	size_t cache_max_bytes;
	long walk_snapshot_ms;
	/* the state several instances share (redis.h), when configured: host (an IP literal) or
	 * path (a Unix socket) set; neither: this instance keeps it all to itself */
	struct sg_redis_conf {
		char *host;
		int port;
		char *path;
		char *password;
		int db;
		long timeout_ms;
		long connect_timeout_ms;
		char *prefix;              /* of every key the gateway writes */
		int rate_limits_fail_open; /* Redis down: 1 let requests through, 0 refuse (429) */
	} redis;
	/* readiness (GET /readyz) and the start of a drain */
	long drain_delay_ms;    /* SIGTERM: /readyz fails this long before accepting stops */
	long probe_interval_ms; /* each backend's reachability probe */
	long probe_timeout_ms;
	int log_level; /* 0 error, 1 warn, 2 info, 3 debug */
	int access_log;
	/* observability and browsers (metrics.h, accesslog.h, cors.h) */
	int log_json;         /* log.format "json": every line on stderr a JSON object */
	char *metrics_host;   /* metrics.listen; NULL: no metrics endpoint */
	int metrics_port;     /* 0: any free port (logged at start) */
	struct sg_cors *cors; /* NULL: no CORS headers at all */
	struct sg_backend *backends;
	size_t nbackends;
	struct sg_key *keys;
	size_t nkeys;
	/* the generation's life (see the top of this file) */
	atomic_long refs;         /* 1 when loaded */
	unsigned long generation; /* 1 for the first configuration, +1 at each reload */
};

#define SG_SECRET_MIN 32

/* Loads and validates path. Returns a new config, or NULL with "path: key: problem" in err
 * (errlen bytes). Calls every module's init(). */
struct sg_config *sg_config_load(const char *path, char *err, size_t errlen);
/* Same, from an in-memory document (borrowed); `origin` names it in messages. */
struct sg_config *sg_config_from_json(const json_t *root, const char *origin, char *err,
                                      size_t errlen);
/* Frees cfg now, whatever its references (for a configuration never shared). */
void sg_config_free(struct sg_config *cfg);

/* Takes a reference to a generation (returns cfg), or drops one: the last frees it. Any
 * thread. The reference count is not part of the configuration, hence the const. */
const struct sg_config *sg_config_ref(const struct sg_config *cfg);
void sg_config_unref(const struct sg_config *cfg);

/* Makes cfg (just loaded, not yet shared) the generation after prev: its backends and keys
 * share the states of prev's of the same name (a rate bucket only while the rate and burst
 * are the same), every shared backend's write generation is bumped (what was cached under
 * the previous configuration is not served under this one), and its generation number
 * follows prev's. */
void sg_config_inherit(struct sg_config *cfg, const struct sg_config *prev);

/* What a reload cannot change in a running process (listen, workers, cache.max_bytes,
 * idempotency.*, the per-worker connection pools): next keeps cur's values of those, and out
 * gets one note per setting that differed, "; "-separated (empty when none). */
void sg_config_keep_restart_only(const struct sg_config *cur, struct sg_config *next, char *out,
                                 size_t outlen);

struct sg_backend *sg_config_backend(const struct sg_config *cfg, const char *name);

/* Raises be's record of the fleet's write count to v (never lowers it). Thread-safe. */
void sg_backend_shared_gen(struct sg_backend *be, unsigned long v);

#endif
