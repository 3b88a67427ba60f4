/* config.h - the configuration file: one JSON document, validated whole at start-up.
 *
 * Every problem is reported with the JSON path of the key and what is wrong with it
 * ("keys[1].sha256: must be 64 hex characters"). Unknown keys are errors, so a typo never
 * silently falls back to a default. A string value "$NAME" is read from the environment
 * (where the config says so: secrets), so secrets need not live in the file.
 * After loading the configuration is immutable and shared read-only by every worker. */
#ifndef SG_CONFIG_H
#define SG_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "crypto.h"
#include "overload.h"

struct sg_mapping;

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
	atomic_long inflight;
	struct sg_breaker breaker; /* shared by every worker (overload.h) */
	long fresh_ms;             /* how long the core may answer reads from what it holds
	                            * (set by the module's init; 0: always ask the backend) */
	void *priv;                /* module state set by init(), immutable afterwards */
	/* The one mutable field, shared by every worker: bumped when a write to this backend
	 * completes. Cached reads are keyed by the generation their call started in, so a read
	 * after a write never gets an answer fetched before it (read-your-writes). */
	atomic_ulong write_gen;
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
	struct sg_bucket *bucket; /* its request rate (overload.h), NULL: no limit */
};

struct sg_config {
	char *listen_host;
	int listen_port;
	int workers;     /* resolved: ≥ 1 */
	uint8_t *secret; /* cursor secret */
	size_t secretlen;
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
};

#define SG_SECRET_MIN 32

/* Loads and validates path. Returns a new config, or NULL with "path: key: problem" in err
 * (errlen bytes). Calls every module's init(). */
struct sg_config *sg_config_load(const char *path, char *err, size_t errlen);
/* Same, from an in-memory document (borrowed); `origin` names it in messages. */
struct sg_config *sg_config_from_json(const json_t *root, const char *origin, char *err,
                                      size_t errlen);
void sg_config_free(struct sg_config *cfg);

struct sg_backend *sg_config_backend(const struct sg_config *cfg, const char *name);

#endif
