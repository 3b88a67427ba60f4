/* server.c - see server.h.
 *
 * Workers, the listening socket and draining. What happens to one request (routing, auth,
 * the deadline, answering, cancelling) is request.c's; the endpoints are routes.c's table.
 * Nothing here blocks once the workers run: all waiting happens in their event loops. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "config.h"
#include "idem.h"
#include "log.h"
#include "metrics.h"
#include "ready.h"
#include "request.h"
#include "routes.h"
#include "stream.h"
#include "upstream.h"

#define SWAP_WAIT_S 5 /* how long a reload waits for every worker to take the new generation */

struct worker {
	struct sg_server *srv;
	int index;
	pthread_t thread;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct sg_req_host host; /* what its requests use: loop, upstream, cache, counters */
	struct event *stop_ev;   /* activated by the main thread */
	struct event *grace_ev;  /* drain deadline */
	/* a reload: the main thread leaves the next generation here and activates swap_ev */
	pthread_mutex_t swap_lock;
	const struct sg_config *pending; /* a reference, or NULL */
	unsigned long taken;             /* the generation it runs new requests in (srv->lock) */
	struct event *swap_ev;
	struct sg_probe *probe; /* the backends' readiness probe (worker 0 only) */
};

struct sg_server {
	const struct sg_config *cfg; /* the current generation (a reference; main thread's) */
	struct sg_ready ready;
	evutil_socket_t fd;
	int port;
	struct worker *workers;
	int nworkers;
	int started;
	int listening; /* workers still accepting; the last to stop shuts the socket */
	pthread_mutex_t lock;
	pthread_cond_t swapped;            /* a worker took a new generation (taken, under lock) */
	struct sg_idem *idem;              /* Idempotency-Key answers, shared by every worker */
	struct sg_cache *held_cache;       /* held listings and walk snapshots, shared likewise */
	struct sg_streams_shared *streams; /* live streams: per-key counts, deletes */
	struct sg_metrics *metrics;        /* the process's counters, and GET /metrics */
};

/* Every request of a draining worker is done: leave the loop. */
static void on_drained(struct sg_req_host *h)
{
	event_base_loopexit(h->base, NULL);
}

static void on_grace(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	sg_warn("worker %d: %zu request(s) still in flight after the grace period; stopping",
	        w->index, w->host.inflight);
	event_base_loopexit(w->base, NULL);
}

/* Runs on the worker's loop when the main thread asks it to stop. */
static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	long ms = w->host.cfg->shutdown_grace_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	(void)fd;
	(void)what;
	sg_probe_stop(w->probe);
	if (w->bound) {
		evhttp_del_accept_socket(w->http, w->bound);
		w->bound = NULL;
		/* Once nobody accepts, new connections are refused rather than left waiting in
		 * the backlog of a socket no one reads. */
		pthread_mutex_lock(&w->srv->lock);
		if (--w->srv->listening == 0)
			shutdown(w->srv->fd, SHUT_RDWR);
		pthread_mutex_unlock(&w->srv->lock);
	}
	/* Whole answers are waited for (within the grace period); streams, which would never
	 * end by themselves, are ended now. */
	w->host.drained = on_drained;
	sg_streams_drain(w->host.streams);
	sg_req_drain(&w->host);
	if (w->host.inflight == 0)
		return;
	w->grace_ev = evtimer_new(w->base, on_grace, w);
	if (!w->grace_ev || evtimer_add(w->grace_ev, &tv) != 0)
		event_base_loopexit(w->base, NULL);
}

/* Runs on the worker's loop after a reload: requests from now on start in the new generation;
 * those in flight keep theirs (each holds a reference) and the old one goes with the last. */
static void on_swap(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	const struct sg_config *next, *old;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&w->swap_lock);
	next = w->pending;
	w->pending = NULL;
	pthread_mutex_unlock(&w->swap_lock);
	if (!next)
		return;
	/* the limits evhttp applies to requests and connections from now on */
	evhttp_set_max_headers_size(w->http, (ev_ssize_t)next->max_header_bytes);
	evhttp_set_max_body_size(w->http, (ev_ssize_t)next->max_body_bytes);
	evhttp_set_timeout(w->http, (int)next->idle_timeout_s);
	sg_upstream_set_budget(w->host.up, next->max_upstream_bytes);
	old = w->host.cfg;
	w->host.cfg = next;
	sg_config_unref(old);
	sg_probe_kick(w->probe);
	pthread_mutex_lock(&w->srv->lock);
	w->taken = next->generation;
	pthread_cond_broadcast(&w->srv->swapped);
	pthread_mutex_unlock(&w->srv->lock);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	event_base_dispatch(w->base);
	return NULL;
}

static int worker_init(struct worker *w, struct sg_server *srv, int index)
{
	const struct sg_config *cfg = srv->cfg;
	struct evconnlistener *lst;
	long maxconn = 1;

	w->srv = srv;
	w->index = index;
	w->base = event_base_new();
	if (!w->base)
		return -1;
	for (size_t i = 0; i < cfg->nbackends; i++)
		if (cfg->backends[i].max_connections > maxconn)
			maxconn = cfg->backends[i].max_connections;
	pthread_mutex_init(&w->swap_lock, NULL);
	w->host.cfg = sg_config_ref(cfg);
	w->taken = cfg->generation;
	w->host.ready = &srv->ready;
	w->host.idem = srv->idem;
	w->host.base = w->base;
	w->host.up = sg_upstream_new(w->base, maxconn);
	if (w->host.up)
		sg_upstream_set_budget(w->host.up, cfg->max_upstream_bytes);
	w->host.cache = sg_cache_new(SG_CACHE_WORKER_BYTES);
	w->host.held_cache = srv->held_cache;
	/* unlimited per host: a stream is one connection for its whole life, bounded by
	 * streams.max_per_worker, and must not starve the pool of whole answers */
	w->host.stream_up = sg_upstream_new(w->base, 0);
	w->host.streams = sg_streams_new(srv->streams, &w->host);
	w->host.metrics = sg_metrics_shard(srv->metrics, index);
	if (w->host.metrics) {
		w->host.metrics->up = w->host.up;
		w->host.metrics->cache = w->host.cache;
	}
	w->http = evhttp_new(w->base);
	w->stop_ev = event_new(w->base, -1, 0, on_stop, w);
	w->swap_ev = event_new(w->base, -1, 0, on_swap, w);
	if (index == 0 && w->host.up)
		w->probe = sg_probe_new(&w->host);
	if (!w->host.up || !w->host.stream_up || !w->host.cache || !w->host.streams || !w->http ||
	    !w->stop_ev || !w->swap_ev || (index == 0 && !w->probe))
		return -1;
	evhttp_set_max_headers_size(w->http, (ev_ssize_t)cfg->max_header_bytes);
	evhttp_set_max_body_size(w->http, (ev_ssize_t)cfg->max_body_bytes);
	evhttp_set_timeout(w->http, (int)cfg->idle_timeout_s);
	/* Every method evhttp can parse reaches the route table, so that a method a path does
	 * not take gets the north 405 with Allow rather than libevent's own page. */
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                        EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH |
	                                        EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT);
	evhttp_set_gencb(w->http, sg_req_handle, &w->host);
	/* Each worker listens on the same socket; no LEV_OPT_CLOSE_ON_FREE, since the socket
	 * is shared and closed once by sg_server_free. */
	lst = evconnlistener_new(w->base, NULL, NULL, LEV_OPT_REUSEABLE, -1, srv->fd);
	if (!lst)
		return -1;
	w->bound = evhttp_bind_listener(w->http, lst);
	return w->bound ? 0 : -1;
}

struct sg_server *sg_server_new(const struct sg_config *cfg, char *err, size_t errlen)
{
	struct sg_server *srv = calloc(1, sizeof(*srv));
	struct addrinfo hints = {0}, *ai = NULL;
	char port[16];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int one = 1, rc;

	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->cfg = sg_config_ref(cfg);
	atomic_init(&srv->ready.draining, 0);
	srv->fd = -1;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->swapped, NULL);
	srv->idem = sg_idem_new(cfg->idempotency_max_keys, cfg->idempotency_max_bytes,
	                        cfg->idempotency_window_ms);
	srv->streams = sg_streams_shared_new();
	srv->held_cache = sg_cache_new_shared(cfg->cache_max_bytes);
	srv->metrics = sg_metrics_new(cfg->workers, sg_routes);
	if (!srv->idem || !srv->streams || !srv->held_cache || !srv->metrics) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	sg_metrics_set_held_cache(srv->metrics, srv->held_cache);
	if (cfg->metrics_host &&
	    sg_metrics_listen(srv->metrics, cfg->metrics_host, cfg->metrics_port, err, errlen))
		goto fail;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", cfg->listen_port);
	rc = getaddrinfo(cfg->listen_host, port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "listen: cannot resolve '%s': %s", cfg->listen_host,
		         gai_strerror(rc));
		goto fail;
	}
	srv->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* TCP_NODELAY on the listener is inherited by accepted sockets (Linux): without it the
	 * tail of every reply over a few segments waits for the client's delayed ACK. */
	if (srv->fd < 0 || setsockopt(srv->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(srv->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    bind(srv->fd, ai->ai_addr, ai->ai_addrlen) || listen(srv->fd, 1024) ||
	    evutil_make_socket_nonblocking(srv->fd)) {
		snprintf(err, errlen, "listen: cannot listen on %s:%d: %s", cfg->listen_host,
		         cfg->listen_port, strerror(errno));
		goto fail;
	}
	if (getsockname(srv->fd, (struct sockaddr *)&ss, &sl) == 0)
		srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                                           : ((struct sockaddr_in *)&ss)->sin_port);
	freeaddrinfo(ai);
	return srv;
fail:
	if (ai)
		freeaddrinfo(ai);
	sg_server_free(srv);
	return NULL;
}

int sg_server_port(const struct sg_server *srv)
{
	return srv->port;
}

int sg_server_metrics_port(const struct sg_server *srv)
{
	return sg_metrics_port(srv->metrics);
}

int sg_server_start(struct sg_server *srv)
{
	srv->nworkers = srv->cfg->workers;
	srv->workers = calloc((size_t)srv->nworkers, sizeof(*srv->workers));
	if (!srv->workers)
		return -1;
	for (int i = 0; i < srv->nworkers; i++) {
		if (worker_init(&srv->workers[i], srv, i))
			return -1;
		srv->listening++;
	}
	for (int i = 0; i < srv->nworkers; i++) {
		if (pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]))
			return -1;
		srv->started = i + 1;
	}
	if (sg_metrics_start(srv->metrics))
		return -1;
	if (srv->cfg->metrics_host)
		sg_info("metrics on http://%s:%d/metrics", srv->cfg->metrics_host,
		        sg_metrics_port(srv->metrics));
	return 0;
}

int sg_server_reload(struct sg_server *srv, const struct sg_config *cfg)
{
	const struct sg_config *old = srv->cfg;
	struct timespec until;
	int all = 0;

	for (int i = 0; i < srv->started; i++) {
		struct worker *w = &srv->workers[i];
		const struct sg_config *skipped;

		pthread_mutex_lock(&w->swap_lock);
		skipped = w->pending; /* a reload the worker had not taken yet: this one wins */
		w->pending = sg_config_ref(cfg);
		pthread_mutex_unlock(&w->swap_lock);
		sg_config_unref(skipped);
		event_active(w->swap_ev, EV_TIMEOUT, 0);
	}
	srv->cfg = sg_config_ref(cfg);
	sg_config_unref(old);
	/* Wait (in the main thread, never on a loop) until every worker has taken it, so that
	 * once the reload is logged every new request runs in it; a worker that is stuck for
	 * seconds is not waited for longer. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += SWAP_WAIT_S;
	pthread_mutex_lock(&srv->lock);
	for (;;) {
		all = 1;
		for (int i = 0; i < srv->started; i++)
			all &= srv->workers[i].taken >= cfg->generation;
		if (all || pthread_cond_timedwait(&srv->swapped, &srv->lock, &until) != 0)
			break;
	}
	pthread_mutex_unlock(&srv->lock);
	return all ? 0 : -1;
}

void sg_server_set_draining(struct sg_server *srv)
{
	atomic_store(&srv->ready.draining, 1);
}

void sg_server_stop(struct sg_server *srv)
{
	sg_metrics_stop(srv->metrics);
	/* event_active from another thread is safe: evthread_use_pthreads() ran first. */
	for (int i = 0; i < srv->started; i++)
		event_active(srv->workers[i].stop_ev, EV_TIMEOUT, 0);
	for (int i = 0; i < srv->started; i++)
		pthread_join(srv->workers[i].thread, NULL);
	srv->started = 0;
}

void sg_server_free(struct sg_server *srv)
{
	if (!srv)
		return;
	sg_metrics_stop(srv->metrics); /* it reads the workers' caches and upstreams */
	for (int i = 0; srv->workers && i < srv->nworkers; i++) {
		struct worker *w = &srv->workers[i];

		/* Requests first, then evhttp (whose connections' close callbacks then find nothing
		 * left to end), then the upstream their fetches ran on. */
		sg_req_abort_all(&w->host);
		sg_streams_free(w->host.streams);
		sg_probe_free(w->probe);
		if (w->http)
			evhttp_free(w->http);
		sg_upstream_free(w->host.up);
		sg_upstream_free(w->host.stream_up);
		sg_cache_free(w->host.cache);
		if (w->stop_ev)
			event_free(w->stop_ev);
		if (w->grace_ev)
			event_free(w->grace_ev);
		if (w->swap_ev)
			event_free(w->swap_ev);
		if (w->base) /* worker_init ran: the lock and its references exist */
			pthread_mutex_destroy(&w->swap_lock);
		sg_config_unref(w->pending);
		sg_config_unref(w->host.cfg);
		if (w->base)
			event_base_free(w->base);
	}
	free(srv->workers);
	if (srv->fd >= 0)
		close(srv->fd);
	sg_idem_free(srv->idem);
	sg_streams_shared_free(srv->streams);
	sg_cache_free(srv->held_cache);
	sg_metrics_free(srv->metrics);
	sg_config_unref(srv->cfg);
	pthread_cond_destroy(&srv->swapped);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}
