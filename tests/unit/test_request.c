/* test_request.c - the route table (pure) and the request lifecycle (request.h) driven over
 * real loopback connections: whole answers, 404/405/HEAD, the deadline, a client leaving
 * (its request's state is freed at once: that is how upstream work is cancelled), streams
 * answered in pieces, drains that end streams, and slow readers cut at the backlog bound.
 *
 * The server runs on this thread's event loop with a test route table; each client runs in
 * its own thread with blocking sockets (it is the client: blocking is fine there). */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fixture.h"
#include "request.h"
#include "routes.h"

/* ---- routes (pure) ----------------------------------------------------------------------- */

static void h_none(struct sg_req *r)
{
	(void)r;
}

static const struct sg_route_def table[] = {
    {"GET", "/v1/things", h_none, 0},
    {"POST", "/v1/things", h_none, 0},
    {"GET", "/v1/things/{id}", h_none, 0},
    {"DELETE", "/v1/things/{id}", h_none, 0},
    {"POST", "/v1/things/{id}/archive", h_none, 0},
    {"GET", "/health", h_none, SG_RT_PUBLIC},
    {NULL, NULL, NULL, 0},
};

START_TEST(route_matches_and_decodes)
{
	struct sg_route_match m;

	ck_assert_int_eq(sg_routes_match_in(table, "GET", "/v1/things", &m), 0);
	ck_assert_ptr_eq(m.route, &table[0]);
	ck_assert_ptr_null(m.param);
	ck_assert_int_eq(sg_routes_match_in(table, "POST", "/v1/things/", &m), 0);
	ck_assert_ptr_eq(m.route, &table[1]);
	ck_assert_int_eq(sg_routes_match_in(table, "DELETE", "/v1/things/a%2Fb%20c", &m), 0);
	ck_assert_ptr_eq(m.route, &table[3]);
	ck_assert_str_eq(m.param, "a/b c");
	free(m.param);
	ck_assert_int_eq(sg_routes_match_in(table, "POST", "/v1/things/x/archive", &m), 0);
	ck_assert_ptr_eq(m.route, &table[4]);
	ck_assert_str_eq(m.param, "x");
	free(m.param);
}
END_TEST

START_TEST(route_head_is_get)
{
	struct sg_route_match m;

	ck_assert_int_eq(sg_routes_match_in(table, "HEAD", "/v1/things/7", &m), 0);
	ck_assert_ptr_eq(m.route, &table[2]);
	ck_assert_str_eq(m.param, "7");
	free(m.param);
	/* a path with no GET takes no HEAD */
	ck_assert_int_eq(sg_routes_match_in(table, "HEAD", "/v1/things/7/archive", &m), -1);
	ck_assert_int_eq(m.status, 405);
	ck_assert_str_eq(m.allow, "POST");
}
END_TEST

START_TEST(route_405_lists_allowed_methods)
{
	struct sg_route_match m;

	ck_assert_int_eq(sg_routes_match_in(table, "PUT", "/v1/things", &m), -1);
	ck_assert_int_eq(m.status, 405);
	ck_assert_str_eq(m.allow, "GET, HEAD, POST");
	ck_assert_int_eq(sg_routes_match_in(table, "PATCH", "/v1/things/1", &m), -1);
	ck_assert_int_eq(m.status, 405);
	ck_assert_str_eq(m.allow, "GET, HEAD, DELETE");
	ck_assert_ptr_null(m.param);
}
END_TEST

START_TEST(route_404_for_unknown_paths)
{
	static const char *const paths[] = {
	    "/",
	    "/v1",
	    "/v1/thing",
	    "/v1/things/1/2",
	    "/v1/things//archive",
	    "/v1/things/x/y",
	    "/v1/things/%00x", /* an id that decodes to a NUL matches nothing */
	    "/v1/things/%zz/archive/extra",
	    "/healthz",
	    "/health/x",
	    "",
	};
	struct sg_route_match m;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		ck_assert_msg(sg_routes_match_in(table, "GET", paths[i], &m) == -1, "%s", paths[i]);
		ck_assert_int_eq(m.status, 404);
	}
}
END_TEST

START_TEST(route_param_length_is_bounded)
{
	char path[3 * SG_ROUTE_PARAM_MAX + 64];
	struct sg_route_match m;
	size_t n;

	n = (size_t)snprintf(path, sizeof(path), "/v1/things/");
	memset(path + n, 'a', SG_ROUTE_PARAM_MAX);
	path[n + SG_ROUTE_PARAM_MAX] = '\0';
	ck_assert_int_eq(sg_routes_match_in(table, "GET", path, &m), 0);
	ck_assert_uint_eq(strlen(m.param), SG_ROUTE_PARAM_MAX);
	free(m.param);
	path[n + SG_ROUTE_PARAM_MAX] = 'a';
	path[n + SG_ROUTE_PARAM_MAX + 1] = '\0';
	ck_assert_int_eq(sg_routes_match_in(table, "GET", path, &m), -1);
	ck_assert_int_eq(m.status, 404);
}
END_TEST

/* The real table: what the gateway serves today. */
START_TEST(route_table_of_the_api)
{
	struct sg_route_match m;

	ck_assert_int_eq(sg_routes_match("GET", "/v1/sessions/sesn_x/events", &m), 0);
	ck_assert_str_eq(m.param, "sesn_x");
	free(m.param);
	ck_assert_int_eq(sg_routes_match("GET", "/healthz", &m), 0);
	ck_assert(m.route->flags & SG_RT_PUBLIC);
	ck_assert_int_eq(sg_routes_match("GET", "/v1/sessions", &m), 0);
	ck_assert(!(m.route->flags & SG_RT_PUBLIC));
}
END_TEST

/* ---- the lifecycle over loopback --------------------------------------------------------- */

static struct sg_config cfg;
static struct event_base *base;
static struct evhttp *http;
static struct sg_req_host host;
static int port;
static int freed;    /* handler states freed */
static int drained;  /* host->drained calls */
static int flood_rc; /* what the slow reader's last send said */
static size_t flood_bytes;

/* A stream that sends "tick\n" every 20 ms until its request ends. */
struct ticker {
	struct sg_req *r;
	struct event *ev;
	int flood;
};

static void ticker_free(void *p)
{
	struct ticker *t = p;

	event_free(t->ev);
	free(t);
	freed++;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct ticker *t = arg;
	struct timeval tv = {0, 20000};
	static char chunk[65536];

	(void)fd;
	(void)what;
	if (t->flood) {
		memset(chunk, 'x', sizeof(chunk));
		flood_rc = sg_req_stream_send(t->r, chunk, sizeof(chunk));
		if (flood_rc != 0)
			return; /* t is gone with the request */
		flood_bytes += sizeof(chunk);
		tv.tv_usec = 1000;
	} else if (sg_req_stream_send(t->r, "tick\n", 5) != 0) {
		return;
	}
	evtimer_add(t->ev, &tv);
}

static void start_ticker(struct sg_req *r, int flood)
{
	struct ticker *t = calloc(1, sizeof(*t));
	struct timeval tv = {0, 20000};

	t->r = r;
	t->flood = flood;
	t->ev = evtimer_new(base, on_tick, t);
	sg_req_set_state(r, t, ticker_free);
	if (sg_req_stream_start(r, "text/plain") != 0)
		return;
	if (!flood && sg_req_stream_send(r, "hello\n", 6) != 0)
		return;
	evtimer_add(t->ev, &tv);
}

static void h_whole(struct sg_req *r)
{
	sg_req_reply(r, 200, json_pack("{s:b}", "ok", 1));
}

static void state_free(void *p)
{
	free(p);
	freed++;
}

static void h_hang(struct sg_req *r)
{
	sg_req_set_state(r, malloc(1), state_free);
}

static void h_stream(struct sg_req *r)
{
	start_ticker(r, 0);
}

static void h_flood(struct sg_req *r)
{
	start_ticker(r, 1);
}

/* A write that answers 300 ms after it starts, unless its request ends first. */
struct later {
	struct sg_req *r;
	struct event *ev;
};

static int writes_answered;

static void later_free(void *p)
{
	struct later *l = p;

	event_free(l->ev);
	free(l);
	freed++;
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
	struct later *l = arg;

	(void)fd;
	(void)what;
	writes_answered++;
	sg_req_reply(l->r, 200, json_pack("{s:s}", "id", "done"));
}

static void h_write(struct sg_req *r)
{
	struct later *l = calloc(1, sizeof(*l));
	struct timeval tv = {0, 300000};

	l->r = r;
	l->ev = evtimer_new(base, on_later, l);
	sg_req_set_state(r, l, later_free);
	evtimer_add(l->ev, &tv);
}

static const struct sg_route_def live_routes[] = {
    {"GET", "/whole", h_whole, SG_RT_PUBLIC},
    {"GET", "/hang", h_hang, SG_RT_PUBLIC},
    {"GET", "/stream", h_stream, SG_RT_PUBLIC | SG_RT_LONG},
    {"GET", "/flood", h_flood, SG_RT_PUBLIC | SG_RT_LONG},
    {"GET", "/private", h_whole, 0},
    {"POST", "/write", h_write, SG_RT_PUBLIC | SG_RT_WRITE},
    {"POST", "/write-hang", h_hang, SG_RT_PUBLIC | SG_RT_WRITE},
    {NULL, NULL, NULL, 0},
};

static void on_drained(struct sg_req_host *h)
{
	(void)h;
	drained++;
}

static void live_setup(void)
{
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	memset(&cfg, 0, sizeof(cfg));
	cfg.request_timeout_ms = 400;
	cfg.max_stream_backlog_bytes = 65536;
	atomic_init(&cfg.refs, 1); /* the test's own: a request takes and drops one of its own */
	base = event_base_new();
	http = evhttp_new(base);
	memset(&host, 0, sizeof(host));
	host.cfg = &cfg;
	host.routes = live_routes;
	host.base = base;
	host.drained = on_drained;
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                     EVHTTP_REQ_DELETE);
	evhttp_set_gencb(http, sg_req_handle, &host);
	bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
	ck_assert_ptr_nonnull(bs);
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
	port = ntohs(sa.sin_port);
	freed = drained = flood_rc = writes_answered = 0;
	flood_bytes = 0;
}

static void live_teardown(void)
{
	/* every request that ran gave its reference to the configuration back */
	ck_assert_int_eq(atomic_load(&cfg.refs), 1);
	evhttp_free(http);
	event_base_free(base);
}

/* ---- the client side ---- */

struct client {
	pthread_t t;
	const char *request;    /* sent as is */
	int read_ms;            /* read for this long (or until EOF) */
	int pause_ms;           /* sleep before reading at all (a slow reader) */
	int close_early;        /* close after the first bytes arrive */
	atomic_int first_bytes; /* set when the first bytes arrived */
	atomic_int done;
	char buf[65536];
	size_t len;
	int eof;
};

static int dial(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return -1;
	return fd;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	int fd = dial();
	struct timespec t0, d = {c->pause_ms / 1000, (c->pause_ms % 1000) * 1000000L};

	if (fd < 0 || write(fd, c->request, strlen(c->request)) < 0)
		goto out;
	if (c->pause_ms)
		nanosleep(&d, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (ms_since(&t0) < c->read_ms) {
		struct pollfd p = {fd, POLLIN, 0};
		char tmp[65536];
		ssize_t n;

		if (poll(&p, 1, 50) <= 0)
			continue;
		n = read(fd, tmp, sizeof(tmp));
		if (n <= 0) {
			c->eof = 1;
			break;
		}
		if (c->len + (size_t)n < sizeof(c->buf) - 1) {
			memcpy(c->buf + c->len, tmp, (size_t)n);
			c->len += (size_t)n;
			c->buf[c->len] = '\0';
		}
		atomic_store(&c->first_bytes, 1);
		if (c->close_early)
			break;
	}
out:
	if (fd >= 0)
		close(fd);
	atomic_store(&c->done, 1);
	return NULL;
}

static void client_start(struct client *c, const char *request, int read_ms)
{
	memset(c, 0, sizeof(*c));
	c->request = request;
	c->read_ms = read_ms;
}

static void client_go(struct client *c)
{
	ck_assert_int_eq(pthread_create(&c->t, NULL, client_main, c), 0);
}

static int *watch_flag;
static int watch_want;
static atomic_int *watch_atomic;

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if ((watch_flag && *watch_flag >= watch_want) ||
	    (watch_atomic && atomic_load(watch_atomic)))
		event_base_loopbreak(base);
}

/* Runs the server's loop until *flag reaches want (or *a is set), at most ms. */
static void run_until(int *flag, int want, atomic_int *a, int ms)
{
	struct event *poll_ev = event_new(base, -1, EV_PERSIST, on_poll, NULL);
	struct timeval tick = {0, 5000}, limit = {ms / 1000, (ms % 1000) * 1000};

	watch_flag = flag;
	watch_want = want;
	watch_atomic = a;
	event_add(poll_ev, &tick);
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	event_free(poll_ev);
	watch_flag = NULL;
	watch_atomic = NULL;
}

static void client_join(struct client *c)
{
	run_until(NULL, 0, &c->done, 10000);
	pthread_join(c->t, NULL);
}

START_TEST(whole_answers_and_route_errors)
{
	struct client c;

	client_start(&c, "GET /whole HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 3000);
	client_go(&c);
	client_join(&c);
	ck_assert_msg(strstr(c.buf, "HTTP/1.1 200 OK"), "%s", c.buf);
	ck_assert_msg(strstr(c.buf, "Content-Type: application/json"), "%s", c.buf);
	ck_assert_msg(strstr(c.buf, "request-id: req_"), "%s", c.buf);
	ck_assert_msg(strstr(c.buf, "{\"ok\":true}"), "%s", c.buf);

	client_start(&c,
	             "POST /whole HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
	             "Connection: close\r\n\r\n",
	             3000);
	client_go(&c);
	client_join(&c);
	ck_assert_msg(strstr(c.buf, "HTTP/1.1 405"), "%s", c.buf);
	ck_assert_msg(strstr(c.buf, "Allow: GET, HEAD"), "%s", c.buf);
	ck_assert_msg(strstr(c.buf, "\"type\":\"invalid_request_error\""), "%s", c.buf);

	client_start(&c,
	             "GET /v1/sessions/x/archive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	             3000);
	client_go(&c);
	client_join(&c);
	ck_assert_msg(strstr(c.buf, "HTTP/1.1 404"), "%s", c.buf);
	ck_assert_msg(strstr(c.buf, "no such endpoint: GET /v1/sessions/x/archive"), "%s", c.buf);

	/* HEAD, then a GET pipelined on the same connection: the HEAD answer states the GET's
	 * length and carries no body, so the GET's answer is read intact after it. */
	client_start(&c,
	             "HEAD /whole HTTP/1.1\r\nHost: x\r\n\r\n"
	             "GET /whole HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	             3000);
	client_go(&c);
	client_join(&c);
	ck_assert_msg(strstr(c.buf, "HTTP/1.1 200 OK"), "%s", c.buf);
	ck_assert_msg(strstr(c.buf, "Content-Length: 11\r\n"), "%s", c.buf);
	{
		const char *body = strstr(c.buf, "{\"ok\":true}");
		const char *second = strstr(c.buf + 1, "HTTP/1.1 200 OK");

		ck_assert_msg(body && second && body > second, "HEAD answered a body: %s", c.buf);
		ck_assert_msg(!strstr(body + 1, "{\"ok\":true}"), "two bodies: %s", c.buf);
	}

	/* No cfg->keys: every key is refused on a private route. */
	client_start(
	    &c, "GET /private HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\nConnection: close\r\n\r\n",
	    3000);
	client_go(&c);
	client_join(&c);
	ck_assert_msg(strstr(c.buf, "HTTP/1.1 401"), "%s", c.buf);
	ck_assert_uint_eq(host.inflight, 0);
	ck_assert_ptr_null(host.live);
}
END_TEST

START_TEST(deadline_answers_504_and_frees)
{
	struct client c;

	client_start(&c, "GET /hang HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5000);
	client_go(&c);
	client_join(&c);
	ck_assert_msg(strstr(c.buf, "HTTP/1.1 504"), "%s", c.buf);
	ck_assert_msg(strstr(c.buf, "x-should-retry: true"), "%s", c.buf);
	ck_assert_msg(strstr(c.buf, "\"type\":\"timeout_error\""), "%s", c.buf);
	ck_assert_int_eq(freed, 1);
	ck_assert_uint_eq(host.inflight, 0);
}
END_TEST

/* A client that leaves ends its request at once: the handler state (and with it whatever
 * upstream work it holds) is freed long before the deadline would have fired. */
START_TEST(client_leaving_ends_the_request)
{
	struct client c;
	struct timespec t0;

	cfg.request_timeout_ms = 60000;
	client_start(&c, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n", 200);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	client_go(&c);
	client_join(&c); /* reads nothing for 200 ms, then closes */
	run_until(&freed, 1, NULL, 5000);
	ck_assert_int_eq(freed, 1);
	ck_assert_ptr_null(host.live);
	ck_assert_uint_eq(host.inflight, 0);
	ck_assert_int_lt(ms_since(&t0), 10000);
}
END_TEST

START_TEST(stream_arrives_in_pieces_and_outlives_the_deadline)
{
	struct client c;

	/* 1.5 s of reading: far past the 400 ms request deadline, which streams do not have. */
	client_start(&c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", 1500);
	client_go(&c);
	client_join(&c);
	ck_assert_msg(strstr(c.buf, "HTTP/1.1 200 OK"), "%s", c.buf);
	ck_assert_msg(strstr(c.buf, "Transfer-Encoding: chunked"), "%s", c.buf);
	ck_assert_msg(strstr(c.buf, "Content-Type: text/plain"), "%s", c.buf);
	ck_assert_msg(strstr(c.buf, "hello\n"), "%s", c.buf);
	ck_assert_msg(strstr(c.buf, "tick\n"), "%s", c.buf);
	ck_assert_msg(!strstr(c.buf, "504"), "%s", c.buf);
	ck_assert_int_eq(c.eof, 0);
	/* The client closed: the stream ends and frees its state. */
	run_until(&freed, 1, NULL, 5000);
	ck_assert_int_eq(freed, 1);
	ck_assert_ptr_null(host.live);
	ck_assert_uint_eq(host.inflight, 0);
}
END_TEST

/* evhttp's idle timeout is for idle connections: a live stream to a client that has nothing
 * to say is not idle, and must outlive it. */
START_TEST(stream_outlives_the_connection_idle_timeout)
{
	struct client c;

	evhttp_set_timeout(http, 1);
	client_start(&c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", 2600);
	client_go(&c);
	client_join(&c);
	ck_assert_int_eq(c.eof, 0);
	{
		/* ticks kept coming past the 1 s idle timeout: count those after it */
		const char *p = c.buf;
		int ticks = 0;

		while ((p = strstr(p, "tick\n")) != NULL) {
			ticks++;
			p += 5;
		}
		ck_assert_msg(ticks > 1500 / 20 / 2, "only %d ticks in 2.6 s", ticks);
	}
	run_until(&freed, 1, NULL, 5000);
	ck_assert_int_eq(freed, 1);
}
END_TEST

/* A write is not cancelled when its client leaves: cancelling it halfway would leave its
 * outcome unknown. It runs to its answer (which goes nowhere) and counts as in flight. */
START_TEST(write_runs_on_when_its_client_leaves)
{
	struct client c;

	cfg.request_timeout_ms = 60000;
	client_start(&c, "POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 50);
	client_go(&c);
	client_join(&c); /* gone after 50 ms, long before the answer */
	run_until(NULL, 0, NULL, 100);
	ck_assert_int_eq(freed, 0);
	ck_assert_uint_eq(host.inflight, 1);
	sg_req_drain(&host); /* a drain waits for it */
	ck_assert_int_eq(drained, 0);
	run_until(&drained, 1, NULL, 5000);
	ck_assert_int_eq(writes_answered, 1);
	ck_assert_int_eq(freed, 1);
	ck_assert_uint_eq(host.inflight, 0);
	ck_assert_ptr_null(host.live);
}
END_TEST

/* A write that outlives the deadline may still take effect: the 504 says so and forbids the
 * SDK's automatic retry. */
START_TEST(write_deadline_leaves_the_outcome_unknown)
{
	struct client c;

	client_start(&c,
	             "POST /write-hang HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
	             "Connection: close\r\n\r\n",
	             5000);
	client_go(&c);
	client_join(&c);
	ck_assert_msg(strstr(c.buf, "HTTP/1.1 504"), "%s", c.buf);
	ck_assert_msg(strstr(c.buf, "x-should-retry: false"), "%s", c.buf);
	ck_assert_msg(strstr(c.buf, "outcome of this write is unknown"), "%s", c.buf);
	ck_assert_int_eq(freed, 1);
}
END_TEST

/* A worker torn down with a write still running (the grace ran out) frees it. */
START_TEST(abort_all_frees_orphaned_writes)
{
	struct client c;

	cfg.request_timeout_ms = 60000;
	client_start(&c, "POST /write-hang HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 50);
	client_go(&c);
	client_join(&c);
	run_until(NULL, 0, NULL, 100);
	ck_assert_ptr_nonnull(host.live);
	sg_req_abort_all(&host);
	ck_assert_ptr_null(host.live);
	ck_assert_int_eq(freed, 1);
}
END_TEST

START_TEST(drain_ends_open_streams)
{
	struct client c;

	client_start(&c, "GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 10000);
	client_go(&c);
	run_until(NULL, 0, &c.first_bytes, 5000);
	ck_assert_int_eq(atomic_load(&c.first_bytes), 1);
	ck_assert_int_eq(drained, 0);
	sg_req_drain(&host);
	ck_assert_int_eq(freed, 1); /* ended now, not when it would have ended by itself */
	client_join(&c);
	ck_assert_int_eq(c.eof, 1);
	ck_assert_msg(strstr(c.buf, "0\r\n\r\n"), "no final chunk: %s", c.buf);
	run_until(&drained, 1, NULL, 5000);
	ck_assert_int_eq(drained, 1);
	ck_assert_uint_eq(host.inflight, 0);
}
END_TEST

START_TEST(drain_waits_for_whole_answers)
{
	struct client c;

	client_start(&c, "GET /hang HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5000);
	client_go(&c);
	run_until(NULL, 0, NULL, 200);
	ck_assert_ptr_nonnull(host.live);
	sg_req_drain(&host);
	ck_assert_int_eq(drained, 0); /* still in flight */
	client_join(&c);              /* the deadline answers it */
	ck_assert_msg(strstr(c.buf, "HTTP/1.1 504"), "%s", c.buf);
	run_until(&drained, 1, NULL, 5000);
	ck_assert_int_eq(drained, 1);
}
END_TEST

/* A client that does not read is cut once the backlog bound is passed: the gateway never
 * holds more than max_stream_backlog_bytes for it (plus what the kernel buffers). */
START_TEST(slow_reader_is_cut_at_the_backlog_bound)
{
	struct client c;

	client_start(&c, "GET /flood HTTP/1.1\r\nHost: x\r\n\r\n", 200);
	c.pause_ms = 4000;
	client_go(&c);
	run_until(&freed, 1, NULL, 8000);
	ck_assert_int_eq(freed, 1);
	ck_assert_int_eq(flood_rc, -1);
	ck_assert_uint_gt(flood_bytes, 0);
	ck_assert_ptr_null(host.live);
	client_join(&c);
}
END_TEST

START_TEST(head_on_a_stream_route_sends_headers_only)
{
	struct client c;

	client_start(&c, "HEAD /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 3000);
	client_go(&c);
	client_join(&c);
	ck_assert_msg(strstr(c.buf, "HTTP/1.1 200 OK"), "%s", c.buf);
	ck_assert_msg(!strstr(c.buf, "hello"), "%s", c.buf);
	ck_assert_int_eq(c.eof, 1);
	ck_assert_int_eq(freed, 1);
	ck_assert_uint_eq(host.inflight, 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("request");
	TCase *t = tcase_create("routes");
	TCase *l = tcase_create("lifecycle");

	tcase_add_test(t, route_matches_and_decodes);
	tcase_add_test(t, route_head_is_get);
	tcase_add_test(t, route_405_lists_allowed_methods);
	tcase_add_test(t, route_404_for_unknown_paths);
	tcase_add_test(t, route_param_length_is_bounded);
	tcase_add_test(t, route_table_of_the_api);
	suite_add_tcase(s, t);
	tcase_add_checked_fixture(l, live_setup, live_teardown);
	tcase_set_timeout(l, 30);
	tcase_add_test(l, whole_answers_and_route_errors);
	tcase_add_test(l, deadline_answers_504_and_frees);
	tcase_add_test(l, client_leaving_ends_the_request);
	tcase_add_test(l, stream_arrives_in_pieces_and_outlives_the_deadline);
	tcase_add_test(l, stream_outlives_the_connection_idle_timeout);
	tcase_add_test(l, write_runs_on_when_its_client_leaves);
	tcase_add_test(l, write_deadline_leaves_the_outcome_unknown);
	tcase_add_test(l, abort_all_frees_orphaned_writes);
	tcase_add_test(l, drain_ends_open_streams);
	tcase_add_test(l, drain_waits_for_whole_answers);
	tcase_add_test(l, slow_reader_is_cut_at_the_backlog_bound);
	tcase_add_test(l, head_on_a_stream_route_sends_headers_only);
	suite_add_tcase(s, l);
	return s;
}

int main(void)
{
	return sg_fixture_run(suite());
}
