/* server.h - the north HTTP server: worker threads, each with its own event_base, evhttp
 * server on the one shared listening socket, and libcurl multi handle. Workers share only
 * read-only configuration generations (config.h), which a reload replaces. */
#ifndef SG_SERVER_H
#define SG_SERVER_H

#include <stddef.h>

struct sg_config;
struct sg_server;

/* Binds the listening socket (blocking set-up, before any loop runs). Returns NULL with a
 * reason in err. The server takes its own references to cfg. */
struct sg_server *sg_server_new(const struct sg_config *cfg, char *err, size_t errlen);
/* The bound port (useful with port 0). */
int sg_server_port(const struct sg_server *srv);
/* The bound port of GET /metrics (metrics.listen), 0 when off. */
int sg_server_metrics_port(const struct sg_server *srv);
/* Starts the workers (and the metrics thread); returns 0 once they run. */
int sg_server_start(struct sg_server *srv);
/* Makes cfg (loaded and checked by the caller, sg_config_inherit'ed from the current one) the
 * current generation: each worker takes it on its own loop, for requests that start from
 * then on; this waits (a few seconds at most) until all have. The server takes its own
 * references. Returns 0, or -1 when a worker had not taken it in time (it will, later). Call
 * from the main thread. */
int sg_server_reload(struct sg_server *srv, const struct sg_config *cfg);
/* The first step of a stop: /readyz fails from now on; nothing else changes. */
void sg_server_set_draining(struct sg_server *srv);
/* Asks every worker to stop accepting and to finish in-flight requests within the
 * configured grace period, then waits for them. Call from the main thread. */
void sg_server_stop(struct sg_server *srv);
void sg_server_free(struct sg_server *srv);

#endif
