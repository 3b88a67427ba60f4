/* streamload.c - a load client for live event streams (bench/streams.sh drives it).
 *
 *   streamload open    PORT KEYS PATHFILE CONNS HOLD_MS
 *       Opens CONNS north streams (GET <path> with x-api-key, keys taken in turn from the
 *       comma list KEYS, paths in turn from PATHFILE, one per line), reads and discards what comes, and once all have their 200
 *       (or failed) holds them HOLD_MS. Prints one JSON line: {"connected", "failed", "ms"}.
 *       Writes "ready" to stderr when every stream is open (the script measures then).
 *
 *   streamload latency PORT KEY PATH CONNS FAKEPORT FAKEPATH USER AGENT SESSION RUNS
 *       Opens CONNS streams of one session through the gateway and one stream of the same
 *       session directly on the fake AgentScope (GET FAKEPATH, X-User-ID USER), then RUNS
 *       times: start a run on the fake (POST /chat/ for AGENT and SESSION, its native ids)
 *       and wait until every watcher has seen the run end. For each run and each watcher: the time a north frame
 *       arrived minus the time the backend frame it comes from arrived on the direct stream
 *       (REPLY_START → session.status_running, REPLY_END → session.status_idle). Prints one
 *       JSON line with the count, p50, p99 and max of that added latency in µs.
 *
 * One libevent loop; plain sockets; the chunked body decoded by hand. Not part of the tests. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct conn {
	struct bufferevent *bev;
	int index;
	int direct;
	int head_done;
	int status;
	long chunk_left; /* -1: a size line is next */
	char *msg;       /* decoded bytes not yet split into messages */
	size_t mlen, mcap;
	/* latency mode: arrival times by run */
	int runs_running, runs_idle;
};

static struct event_base *base;
static struct conn *conns;
static int nconns, connected, failed, ready_said;
static int mode_latency;
static long hold_ms;
static const char *g_key;
static int64_t t_start;

/* latency mode */
static int g_runs, run_now = -1;
static int64_t *t_direct_start, *t_direct_end; /* per run */
static int64_t **t_gw_start, **t_gw_end;       /* [conn][run] */
static int g_port, g_fake_port;
static const char *g_agent, *g_session, *g_user;
static struct conn direct_conn;

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void append(struct conn *c, const char *p, size_t n)
{
	if (c->mlen + n + 1 > c->mcap) {
		size_t cap = c->mcap ? c->mcap : 4096;

		while (cap < c->mlen + n + 1)
			cap *= 2;
		c->msg = realloc(c->msg, cap);
		c->mcap = cap;
	}
	memcpy(c->msg + c->mlen, p, n);
	c->mlen += n;
	c->msg[c->mlen] = 0;
}

static void maybe_ready(void);
static void next_run(void);

/* One SSE message (NUL-terminated). */
static void on_message(struct conn *c, const char *m)
{
	int64_t t = now_us();

	if (!mode_latency || run_now < 0 || run_now >= g_runs)
		return;
	if (c->direct) {
		if (strstr(m, "\"REPLY_START\""))
			t_direct_start[run_now] = t;
		else if (strstr(m, "\"REPLY_END\""))
			t_direct_end[run_now] = t;
	} else if (!strncmp(m, "id: ", 4) || !strncmp(m, "event: ", 7)) {
		if (strstr(m, "event: session.status_running\n") && c->runs_running == run_now) {
			t_gw_start[c->index][run_now] = t;
			c->runs_running++;
		} else if (strstr(m, "event: session.status_idle\n") && c->runs_idle == run_now) {
			t_gw_end[c->index][run_now] = t;
			c->runs_idle++;
		}
	}
	if (t_direct_end[run_now]) {
		for (int i = 0; i < nconns; i++)
			if (conns[i].runs_idle <= run_now)
				return;
		next_run();
	}
}

static void split(struct conn *c)
{
	char *end;

	while (c->msg && (end = strstr(c->msg, "\n\n"))) {
		size_t n = (size_t)(end - c->msg) + 2;

		*end = 0;
		on_message(c, c->msg);
		memmove(c->msg, c->msg + n, c->mlen - n);
		c->mlen -= n;
		c->msg[c->mlen] = 0;
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (!c->head_done) {
		struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
		char line[64] = {0};

		if (p.pos < 0)
			return;
		evbuffer_copyout(in, line, sizeof(line) - 1);
		c->status = atoi(line + 9);
		evbuffer_drain(in, (size_t)p.pos + 4);
		c->head_done = 1;
		c->chunk_left = -1;
		if (c->status == 200)
			connected++;
		else
			failed++;
		if (!c->direct)
			maybe_ready();
		if (c->status != 200) {
			bufferevent_free(bev);
			c->bev = NULL;
			return;
		}
	}
	for (;;) {
		size_t len = evbuffer_get_length(in);

		if (len == 0)
			break;
		if (c->chunk_left < 0) {
			size_t n;
			char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);

			if (!line)
				break;
			c->chunk_left = strtol(line, NULL, 16);
			free(line);
			if (c->chunk_left == 0) {
				c->chunk_left = -1;
				continue;
			}
		} else if (c->chunk_left == 0) {
			if (len < 2)
				break;
			evbuffer_drain(in, 2);
			c->chunk_left = -1;
		} else {
			char tmp[16384];
			size_t n = len < (size_t)c->chunk_left ? len : (size_t)c->chunk_left;

			if (n > sizeof(tmp))
				n = sizeof(tmp);
			evbuffer_remove(in, tmp, n);
			c->chunk_left -= (long)n;
			if (mode_latency)
				append(c, tmp, n);
		}
	}
	if (mode_latency)
		split(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (!c->head_done) {
		failed++;
		c->head_done = 1;
		maybe_ready();
	}
	bufferevent_free(bev);
	c->bev = NULL;
}

static int open_conn(struct conn *c, int port, const char *path, const char *hdr)
{
	struct sockaddr_in a = {0};

	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev)
		return -1;
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	evbuffer_add_printf(bufferevent_get_output(c->bev),
	                    "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\nAccept: "
	                    "text/event-stream\r\n\r\n",
	                    path, hdr);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&a, sizeof(a)) < 0)
		return -1;
	return 0;
}

static void on_hold(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_base_loopbreak(base);
}

static void maybe_ready(void)
{
	if (ready_said || connected + failed < nconns)
		return;
	ready_said = 1;
	fprintf(stderr, "ready %d connected %d failed\n", connected, failed);
	if (!mode_latency) {
		struct timeval tv = {hold_ms / 1000, (hold_ms % 1000) * 1000};

		event_base_once(base, -1, EV_TIMEOUT, on_hold, NULL, &tv);
	} else {
		next_run();
	}
}

/* ---- latency mode: one POST at a time on a plain socket ---- */

static void on_post_read(struct bufferevent *bev, void *arg)
{
	(void)arg;
	evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
}

static void on_post_event(struct bufferevent *bev, short what, void *arg)
{
	(void)arg;
	if (!(what & BEV_EVENT_CONNECTED))
		bufferevent_free(bev);
}

/* Starts a run: POST /chat/ straight to the fake (not through the gateway, whose own write
 * path would then run at the moment the frames are measured). */
static void post_message(int run)
{
	struct sockaddr_in a = {0};
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	char body[512];
	int n = snprintf(body, sizeof(body),
	                 "{\"agent_id\":\"%s\",\"session_id\":\"%s\",\"input\":{\"name\":"
	                 "\"user\",\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
	                 "\"bench run %d\"}]}}",
	                 g_agent, g_session, run);

	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)g_fake_port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bufferevent_setcb(bev, on_post_read, NULL, on_post_event, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	evbuffer_add_printf(bufferevent_get_output(bev),
	                    "POST /chat/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-User-ID: %s\r\n"
	                    "Content-Type: application/json\r\nContent-Length: %d\r\nConnection: "
	                    "close\r\n\r\n%s",
	                    g_user, n, body);
	bufferevent_socket_connect(bev, (struct sockaddr *)&a, sizeof(a));
}

static void on_next(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	post_message(run_now);
}

static void next_run(void)
{
	struct timeval gap = {0, 20000}; /* the fake releases the session lock after its run */

	run_now++;
	if (run_now >= g_runs) {
		event_base_loopbreak(base);
		return;
	}
	event_base_once(base, -1, EV_TIMEOUT, on_next, NULL, &gap);
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* p-th percentile of n sorted samples. */
static long long pct(const int64_t *d, size_t n, int p)
{
	return n ? (long long)d[(n * (size_t)p) / 100 < n ? (n * (size_t)p) / 100 : n - 1] : -1LL;
}

static void report_latency(void)
{
	size_t n = 0, ns = 0, ne = 0, cap = (size_t)nconns * (size_t)g_runs;
	int64_t *d = malloc(2 * cap * sizeof(*d)), *ds = malloc(cap * sizeof(*ds)),
	        *de = malloc(cap * sizeof(*de));

	for (int i = 0; i < nconns; i++)
		for (int r = 0; r < g_runs; r++) {
			if (t_gw_start[i][r] && t_direct_start[r])
				d[n++] = ds[ns++] = t_gw_start[i][r] - t_direct_start[r];
			if (t_gw_end[i][r] && t_direct_end[r])
				d[n++] = de[ne++] = t_gw_end[i][r] - t_direct_end[r];
		}
	qsort(d, n, sizeof(*d), cmp64);
	qsort(ds, ns, sizeof(*ds), cmp64);
	qsort(de, ne, sizeof(*de), cmp64);
	printf("{\"samples\":%zu,\"runs_done\":%d,\"p50_us\":%lld,\"p90_us\":%lld,"
	       "\"p99_us\":%lld,\"max_us\":%lld,\"start_p50_us\":%lld,\"start_p99_us\":%lld,"
	       "\"end_p50_us\":%lld,\"end_p99_us\":%lld}\n",
	       n, run_now, pct(d, n, 50), pct(d, n, 90), pct(d, n, 99), n ? (long long)d[n - 1] : -1LL,
	       pct(ds, ns, 50), pct(ds, ns, 99), pct(de, ne, 50), pct(de, ne, 99));
	free(d);
	free(ds);
	free(de);
}

int main(int argc, char **argv)
{
	char hdr[512], line[1024];
	char **paths = NULL, **keys = NULL;
	int npaths = 0, nkeys = 0;

	if (argc < 2)
		goto usage;
	base = event_base_new();
	if (!strcmp(argv[1], "open") && argc == 7) {
		FILE *f = fopen(argv[4], "r");
		int port = atoi(argv[2]);

		g_key = argv[3];
		nconns = atoi(argv[5]);
		hold_ms = atol(argv[6]);
		while (f && fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\r\n")] = 0;
			if (!*line)
				continue;
			paths = realloc(paths, (size_t)(npaths + 1) * sizeof(*paths));
			paths[npaths++] = strdup(line);
		}
		if (f)
			fclose(f);
		if (!npaths)
			goto usage;
		{
			char *list = strdup(g_key), *save = NULL, *k;

			for (k = strtok_r(list, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
				keys = realloc(keys, (size_t)(nkeys + 1) * sizeof(*keys));
				keys[nkeys++] = k;
			}
		}
		conns = calloc((size_t)nconns, sizeof(*conns));
		t_start = now_us();
		for (int i = 0; i < nconns; i++) {
			conns[i].index = i;
			snprintf(hdr, sizeof(hdr), "x-api-key: %s", keys[i % nkeys]);
			if (open_conn(&conns[i], port, paths[i % npaths], hdr) < 0) {
				failed++;
				conns[i].head_done = 1;
			}
		}
		event_base_dispatch(base);
		printf("{\"connected\":%d,\"failed\":%d,\"ms\":%lld}\n", connected, failed,
		       (long long)((now_us() - t_start) / 1000));
		return 0;
	}
	if (!strcmp(argv[1], "latency") && argc == 12) {
		char dh[256];

		mode_latency = 1;
		g_port = atoi(argv[2]);
		g_key = argv[3];
		nconns = atoi(argv[5]);
		g_agent = argv[9];
		g_fake_port = atoi(argv[6]);
		g_user = argv[8];
		g_session = argv[10];
		g_runs = atoi(argv[11]);
		t_direct_start = calloc((size_t)g_runs, sizeof(int64_t));
		t_direct_end = calloc((size_t)g_runs, sizeof(int64_t));
		t_gw_start = calloc((size_t)nconns, sizeof(int64_t *));
		t_gw_end = calloc((size_t)nconns, sizeof(int64_t *));
		conns = calloc((size_t)nconns, sizeof(*conns));
		snprintf(hdr, sizeof(hdr), "x-api-key: %s", g_key);
		snprintf(dh, sizeof(dh), "X-User-ID: %s", argv[8]);
		direct_conn.direct = 1;
		direct_conn.index = -1;
		if (open_conn(&direct_conn, atoi(argv[6]), argv[7], dh) < 0)
			goto usage;
		for (int i = 0; i < nconns; i++) {
			t_gw_start[i] = calloc((size_t)g_runs, sizeof(int64_t));
			t_gw_end[i] = calloc((size_t)g_runs, sizeof(int64_t));
			conns[i].index = i;
			if (open_conn(&conns[i], g_port, argv[4], hdr) < 0) {
				failed++;
				conns[i].head_done = 1;
			}
		}
		{
			/* a run that never ends for some watcher must not hang the benchmark */
			struct timeval wd = {10 + 2L * g_runs, 0};

			event_base_once(base, -1, EV_TIMEOUT, on_hold, NULL, &wd);
		}
		event_base_dispatch(base);
		report_latency();
		return 0;
	}
usage:
	fprintf(stderr, "usage: streamload open PORT KEY PATHFILE CONNS HOLD_MS\n"
	                "       streamload latency PORT KEY PATH CONNS FAKEPORT FAKEPATH USER "
	                "AGENT SESSION RUNS\n");
	return 2;
}
