/* metrics.c - see metrics.h. */
#include "metrics.h"

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "cache.h"
#include "routes.h"
#include "upstream.h"

/* Upper bounds of the latency buckets, µs: 1 ms to 30 s. */
static const int64_t bucket_us[SG_METRICS_NBUCKETS] = {1000,    2500,    5000,     10000,   25000,
                                                       50000,   100000,  250000,   500000,  1000000,
                                                       2500000, 5000000, 10000000, 30000000};

/* The north error types (the SDK's); anything else counts as "other", the last slot. */
static const char *const error_types[] = {
    "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
    "request_too_large",     "rate_limit_error",     "api_error",        "overloaded_error",
    "timeout_error",         "conflict_error",       "billing_error",    "other"};
#define NERROR_TYPES (sizeof(error_types) / sizeof(error_types[0]))

struct sg_metrics {
	struct sg_metrics_shard *shards;
	int nshards;
	const struct sg_route_def *routes;
	int nroutes;
	struct sg_cache *held;
	double start_time; /* s since the epoch */
	/* backend names: appended under mu, published by nbackends (release) */
	char names[SG_METRICS_MAX_BACKENDS][65];
	atomic_int nbackends;
	pthread_mutex_t mu;
	/* the scrape server */
	struct event_base *base;
	struct evhttp *http;
	struct event *stop_ev;
	pthread_t thread;
	int running;
	int port;
};

struct sg_metrics *sg_metrics_new(int nshards, const struct sg_route_def *routes)
{
	struct sg_metrics *m = calloc(1, sizeof(*m));
	struct timespec now;

	if (!m)
		return NULL;
	if (nshards < 1 ||
	    posix_memalign((void **)&m->shards, 64, (size_t)nshards * sizeof(*m->shards)) != 0) {
		free(m);
		return NULL;
	}
	memset(m->shards, 0, (size_t)nshards * sizeof(*m->shards));
	m->nshards = nshards;
	for (int i = 0; i < nshards; i++)
		m->shards[i].owner = m;
	m->routes = routes;
	while (routes && routes[m->nroutes].method)
		m->nroutes++;
	pthread_mutex_init(&m->mu, NULL);
	clock_gettime(CLOCK_REALTIME, &now);
	m->start_time = (double)now.tv_sec + (double)(now.tv_nsec / 1000000) / 1000.0;
	return m;
}

void sg_metrics_free(struct sg_metrics *m)
{
	if (!m)
		return;
	sg_metrics_stop(m);
	if (m->stop_ev)
		event_free(m->stop_ev);
	if (m->http)
		evhttp_free(m->http);
	if (m->base)
		event_base_free(m->base);
	pthread_mutex_destroy(&m->mu);
	free(m->shards);
	free(m);
}

struct sg_metrics_shard *sg_metrics_shard(struct sg_metrics *m, int i)
{
	return m && i >= 0 && i < m->nshards ? &m->shards[i] : NULL;
}

void sg_metrics_set_held_cache(struct sg_metrics *m, struct sg_cache *c)
{
	m->held = c;
}

int sg_metrics_backend(struct sg_metrics_shard *s, const char *name)
{
	struct sg_metrics *m = s ? s->owner : NULL;
	int n, i;

	if (!name)
		return SG_MB_NONE;
	if (!m)
		return SG_MB_OTHER;
	n = atomic_load_explicit(&m->nbackends, memory_order_acquire);
	for (i = 0; i < n; i++)
		if (strcmp(m->names[i], name) == 0)
			return i;
	/* a name not seen yet: once per backend name for the process's life */
	pthread_mutex_lock(&m->mu);
	n = atomic_load_explicit(&m->nbackends, memory_order_relaxed);
	for (i = 0; i < n; i++)
		if (strcmp(m->names[i], name) == 0)
			break;
	if (i == n) {
		if (n < SG_METRICS_MAX_BACKENDS) {
			snprintf(m->names[n], sizeof(m->names[n]), "%s", name);
			atomic_store_explicit(&m->nbackends, n + 1, memory_order_release);
		} else {
			i = SG_MB_OTHER;
		}
	}
	pthread_mutex_unlock(&m->mu);
	return i;
}

/* ---- the hot path --------------------------------------------------------------------------- */

void sg_metrics_request(struct sg_metrics_shard *s, int route, int status, int backend)
{
	uint64_t key, h;

	if (!s)
		return;
	if (status < 0 || status > 999)
		status = 0;
	key =
	    ((uint64_t)(route & 0xff) << 32 | (uint64_t)status << 8 | (uint64_t)(backend & 0xff)) +
	    1;
	h = key * 0x9e3779b97f4a7c15ull;
	for (unsigned i = 0; i < SG_METRICS_TABLE; i++) {
		unsigned slot = (unsigned)((h >> 40) + i) & (SG_METRICS_TABLE - 1);
		uint64_t k = atomic_load_explicit(&s->req_key[slot], memory_order_relaxed);

		if (k == key) {
			sg_mctr_add(&s->req_val[slot], 1);
			return;
		}
		if (k == 0) {
			/* claim it: the count first, then the key the scrape looks for */
			atomic_store_explicit(&s->req_val[slot], 1, memory_order_relaxed);
			atomic_store_explicit(&s->req_key[slot], key, memory_order_release);
			return;
		}
	}
	sg_mctr_add(&s->req_dropped, 1);
}

void sg_metrics_error(struct sg_metrics_shard *s, const char *type)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < NERROR_TYPES - 1; i++)
		if (type && strcmp(type, error_types[i]) == 0)
			break;
	sg_mctr_add(&s->errors[i], 1);
}

void sg_metrics_upstream(struct sg_metrics_shard *s, int backend, int64_t us)
{
	int b = 0;

	if (!s || backend < 0 || backend >= SG_MB_COUNT)
		return;
	if (us < 0)
		us = 0;
	while (b < SG_METRICS_NBUCKETS && us > bucket_us[b])
		b++;
	sg_mctr_add(&s->up_bucket[backend][b], 1);
	sg_mctr_add(&s->up_sum_us[backend], (uint64_t)us);
}

void sg_metrics_refused(struct sg_metrics_shard *s, int backend, enum sg_metrics_refusal why)
{
	if (s && backend >= 0 && backend < SG_MB_COUNT && why < SG_REFUSED_COUNT)
		sg_mctr_add(&s->refused[backend][why], 1);
}

void sg_metrics_gauge(sg_mctr *g, int delta)
{
	sg_mctr_add(g, (uint64_t)(int64_t)delta);
}

/* ---- the scrape ----------------------------------------------------------------------------- */

static uint64_t ld(sg_mctr *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* A label value with \, " and newline escaped (exposition format 0.0.4). */
static void put_label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			fputs("\\\\", f);
		else if (*v == '"')
			fputs("\\\"", f);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *backend_name(struct sg_metrics *m, int b, int n)
{
	if (b < n)
		return m->names[b];
	return b == SG_MB_NONE ? "-" : b == SG_MB_MULTI ? "multi" : "other";
}

static void route_label(FILE *f, struct sg_metrics *m, int route)
{
	if (route == SG_MR_PREFLIGHT) {
		fputs("OPTIONS (preflight)", f);
	} else if (route >= 0 && route < m->nroutes) {
		put_label(f, m->routes[route].method);
		fputc(' ', f);
		put_label(f, m->routes[route].pattern);
	} else {
		fputs("unmatched", f);
	}
}

/* The request counters of every shard merged by label set. */
struct req_row {
	uint64_t key, n;
};

static int row_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct req_row *)a)->key, y = ((const struct req_row *)b)->key;

	return x < y ? -1 : x > y;
}

static void render_requests(FILE *f, struct sg_metrics *m, int nb)
{
	size_t cap = (size_t)m->nshards * SG_METRICS_TABLE, n = 0;
	struct req_row *rows = malloc(cap * sizeof(*rows));
	uint64_t dropped = 0;

	family(f, "sessiongate_requests_total", "counter",
	       "North requests answered, by route template, status and backend.");
	for (int i = 0; rows && i < m->nshards; i++) {
		struct sg_metrics_shard *s = &m->shards[i];

		dropped += ld(&s->req_dropped);
		for (int j = 0; j < SG_METRICS_TABLE; j++) {
			uint64_t k = atomic_load_explicit(&s->req_key[j], memory_order_acquire);

			if (k) {
				rows[n].key = k;
				rows[n++].n = ld(&s->req_val[j]);
			}
		}
	}
	if (rows)
		qsort(rows, n, sizeof(*rows), row_cmp);
	for (size_t i = 0; rows && i < n;) {
		uint64_t key = rows[i].key - 1, sum = 0;
		int route = (int)(key >> 32 & 0xff), status = (int)(key >> 8 & 0xffffff);
		int be = (int)(key & 0xff);

		for (; i < n && rows[i].key == key + 1; i++)
			sum += rows[i].n;
		fputs("sessiongate_requests_total{route=\"", f);
		route_label(f, m, route);
		fprintf(f, "\",status=\"%d\",backend=\"", status);
		put_label(f, backend_name(m, be, nb));
		fprintf(f, "\"} %llu\n", (unsigned long long)sum);
	}
	free(rows);
	family(f, "sessiongate_metrics_dropped_total", "counter",
	       "Requests not counted by label set because a worker's table of label sets was "
	       "full.");
	fprintf(f, "sessiongate_metrics_dropped_total %llu\n", (unsigned long long)dropped);
}

static void render_upstream(FILE *f, struct sg_metrics *m, int nb)
{
	const char *name = "sessiongate_upstream_request_duration_seconds";

	family(f, name, "histogram",
	       "Time from sending an upstream request to its complete answer (live streams "
	       "excluded), by backend.");
	for (int b = 0; b < SG_MB_COUNT; b++) {
		uint64_t counts[SG_METRICS_NBUCKETS + 1] = {0}, sum_us = 0, total = 0, cum = 0;

		if (b >= nb && b != SG_MB_OTHER)
			continue;
		for (int i = 0; i < m->nshards; i++) {
			for (int k = 0; k <= SG_METRICS_NBUCKETS; k++)
				counts[k] += ld(&m->shards[i].up_bucket[b][k]);
			sum_us += ld(&m->shards[i].up_sum_us[b]);
		}
		for (int k = 0; k <= SG_METRICS_NBUCKETS; k++)
			total += counts[k];
		if (b == SG_MB_OTHER && total == 0)
			continue;
		for (int k = 0; k < SG_METRICS_NBUCKETS; k++) {
			cum += counts[k];
			fprintf(f, "%s_bucket{backend=\"", name);
			put_label(f, backend_name(m, b, nb));
			fprintf(f, "\",le=\"%g\"} %llu\n", (double)bucket_us[k] / 1e6,
			        (unsigned long long)cum);
		}
		fprintf(f, "%s_bucket{backend=\"", name);
		put_label(f, backend_name(m, b, nb));
		fprintf(f, "\",le=\"+Inf\"} %llu\n", (unsigned long long)total);
		fprintf(f, "%s_sum{backend=\"", name);
		put_label(f, backend_name(m, b, nb));
		fprintf(f, "\"} %.6f\n", (double)sum_us / 1e6);
		fprintf(f, "%s_count{backend=\"", name);
		put_label(f, backend_name(m, b, nb));
		fprintf(f, "\"} %llu\n", (unsigned long long)total);
	}
}

static void render_refused(FILE *f, struct sg_metrics *m, int nb)
{
	static const char *const reasons[SG_REFUSED_COUNT] = {"breaker", "concurrency"};

	family(f, "sessiongate_refused_total", "counter",
	       "North calls refused before reaching a backend (503 overloaded_error): its "
	       "breaker was open, or its max_concurrent was reached.");
	for (int b = 0; b < SG_MB_COUNT; b++) {
		if (b >= nb && b != SG_MB_OTHER)
			continue;
		for (int r = 0; r < SG_REFUSED_COUNT; r++) {
			uint64_t n = 0;

			for (int i = 0; i < m->nshards; i++)
				n += ld(&m->shards[i].refused[b][r]);
			if (b == SG_MB_OTHER && n == 0)
				continue;
			fputs("sessiongate_refused_total{backend=\"", f);
			put_label(f, backend_name(m, b, nb));
			fprintf(f, "\",reason=\"%s\"} %llu\n", reasons[r], (unsigned long long)n);
		}
	}
}

static void render_caches(FILE *f, struct sg_metrics *m)
{
	struct sg_cache_stats w = {0}, h = sg_cache_stats(m->held);
	size_t wbytes = 0, wcount = 0;
	struct {
		const char *name, *type, *help;
		uint64_t worker, held;
	} rows[] = {
	    {"sessiongate_cache_hits_total", "counter", "Cache lookups that found a live entry.", 0,
	     0},
	    {"sessiongate_cache_misses_total", "counter",
	     "Cache lookups that found none (expired entries included).", 0, 0},
	    {"sessiongate_cache_evictions_total", "counter",
	     "Live entries dropped to make room within the cache's byte budget.", 0, 0},
	    {"sessiongate_cache_bytes", "gauge", "Bytes accounted to the entries held now.", 0, 0},
	    {"sessiongate_cache_entries", "gauge", "Entries held now.", 0, 0},
	};

	for (int i = 0; i < m->nshards; i++) {
		struct sg_cache_stats s = sg_cache_stats(m->shards[i].cache);

		w.hits += s.hits;
		w.misses += s.misses;
		w.evictions += s.evictions;
		wbytes += sg_cache_bytes(m->shards[i].cache);
		wcount += sg_cache_count(m->shards[i].cache);
	}
	rows[0].worker = w.hits, rows[0].held = h.hits;
	rows[1].worker = w.misses, rows[1].held = h.misses;
	rows[2].worker = w.evictions, rows[2].held = h.evictions;
	rows[3].worker = wbytes, rows[3].held = sg_cache_bytes(m->held);
	rows[4].worker = wcount, rows[4].held = sg_cache_count(m->held);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		family(f, rows[i].name, rows[i].type, rows[i].help);
		fprintf(f, "%s{cache=\"held\"} %llu\n", rows[i].name,
		        (unsigned long long)rows[i].held);
		fprintf(f, "%s{cache=\"worker_json\"} %llu\n", rows[i].name,
		        (unsigned long long)rows[i].worker);
	}
}

char *sg_metrics_render(struct sg_metrics *m, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	int nb = atomic_load_explicit(&m->nbackends, memory_order_acquire);
	uint64_t errors[NERROR_TYPES] = {0}, rate = 0, joins = 0, coal = 0, snap[5] = {0};
	static const char *const snap_results[5] = {"stored", "store_failed", "fetched", "missed",
	                                            "fetch_failed"};
	int64_t inflight = 0, streams = 0;
	const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

	if (!f)
		return NULL;
	for (int i = 0; i < m->nshards; i++) {
		struct sg_metrics_shard *s = &m->shards[i];

		for (size_t t = 0; t < NERROR_TYPES; t++)
			errors[t] += ld(&s->errors[t]);
		rate += ld(&s->rate_limited);
		joins += ld(&s->flight_joins);
		for (int k = 0; k < 5; k++)
			snap[k] += ld(&s->snap_shared[k]);
		inflight += (int64_t)ld(&s->inflight);
		streams += (int64_t)ld(&s->streams);
		coal += s->up ? sg_upstream_coalesced(s->up) : 0;
	}
	render_requests(f, m, nb);
	family(f, "sessiongate_requests_in_flight", "gauge",
	       "North requests received and not yet completely answered.");
	fprintf(f, "sessiongate_requests_in_flight %lld\n", (long long)inflight);
	family(f, "sessiongate_streams_open", "gauge", "Live event streams open to clients.");
	fprintf(f, "sessiongate_streams_open %lld\n", (long long)streams);
	render_upstream(f, m, nb);
	render_caches(f, m);
	family(f, "sessiongate_coalesced_requests_total", "counter",
	       "Requests that joined a read already under way (a flight) instead of reading.");
	fprintf(f, "sessiongate_coalesced_requests_total %llu\n", (unsigned long long)joins);
	family(f, "sessiongate_upstream_coalesced_total", "counter",
	       "Upstream GETs that shared a transfer already in flight instead of starting one.");
	fprintf(f, "sessiongate_upstream_coalesced_total %llu\n", (unsigned long long)coal);
	family(
	    f, "sessiongate_walk_snapshots_shared_total", "counter",
	    "Walk snapshots through Redis: stored, store_failed, fetched, missed, fetch_failed.");
	for (int k = 0; k < 5; k++)
		fprintf(f, "sessiongate_walk_snapshots_shared_total{result=\"%s\"} %llu\n",
		        snap_results[k], (unsigned long long)snap[k]);
	family(f, "sessiongate_rate_limited_total", "counter",
	       "Requests refused by their key's rate limit (429).");
	fprintf(f, "sessiongate_rate_limited_total %llu\n", (unsigned long long)rate);
	render_refused(f, m, nb);
	family(f, "sessiongate_errors_total", "counter", "North error answers, by error type.");
	for (size_t t = 0; t < NERROR_TYPES; t++)
		fprintf(f, "sessiongate_errors_total{type=\"%s\"} %llu\n", error_types[t],
		        (unsigned long long)errors[t]);
	family(f, "sessiongate_build_info", "gauge",
	       "The gateway's version and the libraries it runs with.");
	fputs("sessiongate_build_info{version=\"", f);
	put_label(f, PACKAGE_VERSION);
	fputs("\",libevent=\"", f);
	put_label(f, event_get_version());
	fputs("\",libcurl=\"", f);
	put_label(f, cv && cv->version ? cv->version : "?");
	fputs("\",jansson=\"", f);
	put_label(f, jansson_version_str());
	fputs("\"} 1\n", f);
	family(f, "process_start_time_seconds", "gauge",
	       "Start time of the process since the epoch, in seconds.");
	fprintf(f, "process_start_time_seconds %.3f\n", m->start_time);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- the scrape server ---------------------------------------------------------------------- */

static void on_scrape(struct evhttp_request *req, void *arg)
{
	struct sg_metrics *m = arg;
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct evbuffer *buf;
	size_t len = 0;
	char *text;

	if (!path || strcmp(path, "/metrics") != 0) {
		evhttp_send_error(req, 404, "Not Found");
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(out, "Allow", "GET, HEAD");
		evhttp_send_error(req, 405, "Method Not Allowed");
		return;
	}
	text = sg_metrics_render(m, &len);
	buf = evbuffer_new();
	if (!text || !buf) {
		free(text);
		if (buf)
			evbuffer_free(buf);
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	evhttp_add_header(out, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_add_header(out, "Cache-Control", "no-store");
	if (cmd == EVHTTP_REQ_GET)
		evbuffer_add(buf, text, len);
	free(text);
	evhttp_send_reply(req, 200, "OK", buf);
	evbuffer_free(buf);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopexit(arg, NULL);
}

int sg_metrics_listen(struct sg_metrics *m, const char *host, int port, char *err, size_t errlen)
{
	struct evhttp_bound_socket *bs;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	m->base = event_base_new();
	m->http = m->base ? evhttp_new(m->base) : NULL;
	m->stop_ev = m->base ? event_new(m->base, -1, 0, on_stop, m->base) : NULL;
	if (!m->http || !m->stop_ev) {
		snprintf(err, errlen, "metrics.listen: out of memory");
		return -1;
	}
	evhttp_set_timeout(m->http, 30);
	evhttp_set_max_headers_size(m->http, 16384);
	evhttp_set_max_body_size(m->http, 0);
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
	                                        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                        EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(m->http, on_scrape, m);
	bs = evhttp_bind_socket_with_handle(m->http, host, (ev_uint16_t)port);
	if (!bs) {
		snprintf(err, errlen, "metrics.listen: cannot listen on %s:%d", host, port);
		return -1;
	}
	if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0)
		m->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                                         : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

int sg_metrics_port(const struct sg_metrics *m)
{
	return m ? m->port : 0;
}

static void *metrics_main(void *arg)
{
	event_base_dispatch(arg);
	return NULL;
}

int sg_metrics_start(struct sg_metrics *m)
{
	if (!m || !m->http || m->running)
		return 0;
	if (pthread_create(&m->thread, NULL, metrics_main, m->base) != 0)
		return -1;
	m->running = 1;
	return 0;
}

void sg_metrics_stop(struct sg_metrics *m)
{
	if (!m || !m->running)
		return;
	/* event_active from another thread is safe: evthread_use_pthreads() ran first */
	event_active(m->stop_ev, EV_TIMEOUT, 0);
	pthread_join(m->thread, NULL);
	m->running = 0;
}
