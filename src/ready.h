/* ready.h - readiness, apart from liveness: GET /readyz says whether this instance should
 * get traffic (GET /healthz only says the process is alive).
 *
 * Ready means: not draining, and every backend of the current configuration answered its
 * last reachability probe (any HTTP status counts, even 401 or 404: the backend is there)
 * and its breaker is not open. The probe is one plain GET of each backend's base URL every
 * readiness.probe_interval_ms, within readiness.probe_timeout_ms, run on one worker's loop
 * through its upstream (never blocking); results live in the backends' shared states
 * (config.h), so every worker answers /readyz from the same ones. Draining is the first step
 * of a stop (main.c): /readyz fails for readiness.drain_delay_ms while everything else still
 * serves, so a load balancer takes the instance out before it stops accepting. */
#ifndef SG_READY_H
#define SG_READY_H

#include <stdatomic.h>

/* The User-Agent of a probe (it carries no credentials). */
#define SG_PROBE_USER_AGENT "sessiongate-readiness-probe"

struct sg_req;
struct sg_req_host;
struct sg_probe;

/* What the workers share: the draining flag (set by the main thread). */
struct sg_ready {
	atomic_int draining;
};

/* The probe of every backend, on host's loop, of host->cfg (whichever generation is current
 * when a round starts). The first round starts at once. NULL when out of memory. Free it on
 * its loop's thread, or after the loop stopped, before host->up. */
struct sg_probe *sg_probe_new(struct sg_req_host *host);
/* A round now (when none is under way): after a reload, so new backends are probed at once. */
void sg_probe_kick(struct sg_probe *p);
/* No more rounds; the one under way is cancelled. */
void sg_probe_stop(struct sg_probe *p);
void sg_probe_free(struct sg_probe *p);

/* GET /readyz (public): 200 {"status":"ready"}, or 503 {"status":"not_ready", "draining":
 * bool, "backends": [{"name", "reason"}]}. */
void sg_api_readyz(struct sg_req *r);

#endif
