/* test_upstream.c - upstream.c against an HTTP/1.1 server in the same process: collected and
 * streamed answers, retries, what "sent" means, the idle timeout, pause and cancel.
 *
 * The server is a few bufferevents on the client's own event_base, written by hand so that a
 * test controls every byte: chunked pieces on timers, holding the rest back, silence, or
 * closing after reading a request. Timings leave wide margins (idle 200 ms against silences
 * of 1.5 s, no upper bound tighter than the guard of several seconds). */
#include "upstream.h"

#include <check.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* libevent runs timers on CLOCK_MONOTONIC_COARSE (a tick of 4 ms, 10 ms with HZ=100), while
 * elapsed_ms is read from CLOCK_MONOTONIC: a timer may end a fetch up to a tick "early". */
#define TICK_MS 10

/* ---- the server ------------------------------------------------------------------------ */

struct conn;

struct srv {
	struct event_base *base;
	struct evconnlistener *lis;
	int port;
	struct conn *conns;
	int accepted, closed, requests;
	/* The last request read. */
	char method[16], path[64], body[256];
	size_t body_len;
	/* What /stream sends: npieces pieces of piece_len bytes from data, gap_ms apart (the
	 * one numbered slow_piece comes slow_gap_ms after its predecessor), then the closing
	 * chunk when end is set (else silence). After hold_after pieces (0: never) it waits
	 * for srv_release(). */
	char *data;
	size_t piece_len, npieces, hold_after;
	long gap_ms, slow_piece, slow_gap_ms;
	int end, released;
	size_t pieces_sent; /* of the current stream */
	int stream_done;    /* its closing chunk went out */
};

struct conn {
	struct srv *srv;
	struct conn *next;
	struct bufferevent *bev;
	struct event *tick;
	size_t piece;  /* next piece of the stream */
	int streaming; /* answering /stream: no other request is read meanwhile */
	int held;      /* waiting for srv_release() */
};

static void conn_free(struct conn *c)
{
	struct conn **pp;

	for (pp = &c->srv->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	c->srv->closed++;
	event_free(c->tick);
	bufferevent_free(c->bev);
	free(c);
}

/* Sends pieces until one has to wait (gap, hold) or the stream is over. */
static void stream_step(struct conn *c)
{
	struct srv *s = c->srv;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct timeval tv;
	long gap;

	for (;;) {
		if (c->piece == s->npieces) {
			if (s->end) {
				evbuffer_add(out, "0\r\n\r\n", 5);
				c->streaming = 0;
				s->stream_done = 1;
			}
			return;
		}
		if (s->hold_after && c->piece == s->hold_after && !s->released) {
			c->held = 1;
			return;
		}
		evbuffer_add_printf(out, "%zx\r\n", s->piece_len);
		evbuffer_add(out, s->data + c->piece * s->piece_len, s->piece_len);
		evbuffer_add(out, "\r\n", 2);
		c->piece++;
		s->pieces_sent = c->piece;
		gap = (long)c->piece == s->slow_piece ? s->slow_gap_ms : s->gap_ms;
		if (gap > 0)
			break;
	}
	tv.tv_sec = gap / 1000;
	tv.tv_usec = (gap % 1000) * 1000;
	evtimer_add(c->tick, &tv);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	stream_step(arg);
}

static void reply(struct conn *c, const char *status, const char *ctype, const char *body,
                  int head_only)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
	                    status, ctype, strlen(body));
	if (!head_only)
		evbuffer_add(out, body, strlen(body));
}

/* Answers the request just read. Returns 1 when the connection is gone. */
static int respond(struct conn *c)
{
	struct srv *s = c->srv;
	char echo[300];

	if (strcmp(s->path, "/drop") == 0) {
		conn_free(c);
		return 1;
	}
	if (strcmp(s->path, "/plain") == 0) {
		reply(c, "200 OK", "text/plain", "hello world", strcmp(s->method, "HEAD") == 0);
	} else if (strcmp(s->path, "/echo") == 0) {
		snprintf(echo, sizeof(echo), "%s %s", s->method, s->body);
		reply(c, "200 OK", "text/plain", echo, 0);
	} else if (strcmp(s->path, "/error") == 0) {
		reply(c, "503 Service Unavailable", "application/json", "{\"error\":\"busy\"}", 0);
	} else if (strcmp(s->path, "/stream") == 0) {
		evbuffer_add_printf(bufferevent_get_output(c->bev),
		                    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
		                    "Transfer-Encoding: chunked\r\n\r\n");
		c->streaming = 1;
		c->piece = 0;
		s->pieces_sent = 0;
		s->stream_done = 0;
		stream_step(c);
	} else {
		reply(c, "404 Not Found", "text/plain", "no", 0);
	}
	return 0;
}

/* Reads whole requests (headers and a Content-Length body) and answers them in order. */
static void conn_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct srv *s = c->srv;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (!c->streaming) {
		struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
		char head[4096], *cl;
		size_t hlen, clen = 0;

		if (end.pos < 0)
			return;
		hlen = (size_t)end.pos + 4;
		ck_assert_uint_lt(hlen, sizeof(head));
		evbuffer_copyout(in, head, hlen);
		head[hlen] = '\0';
		cl = strcasestr(head, "\r\nContent-Length:");
		if (cl)
			clen = strtoul(cl + 17, NULL, 10);
		if (evbuffer_get_length(in) < hlen + clen)
			return;
		evbuffer_drain(in, hlen);
		ck_assert_int_eq(sscanf(head, "%15s %63s", s->method, s->path), 2);
		ck_assert_uint_lt(clen, sizeof(s->body));
		evbuffer_remove(in, s->body, clen);
		s->body[clen] = '\0';
		s->body_len = clen;
		s->requests++;
		if (respond(c))
			return;
	}
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_free(arg);
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
	struct srv *s = arg;
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	(void)lis;
	(void)sa;
	(void)salen;
	ck_assert_ptr_nonnull(c);
	/* Small pieces must not wait for delayed ACKs. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->srv = s;
	c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->tick = evtimer_new(s->base, on_tick, c);
	ck_assert_ptr_nonnull(c->bev);
	ck_assert_ptr_nonnull(c->tick);
	bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = s->conns;
	s->conns = c;
	s->accepted++;
}

static void srv_start(struct srv *s, struct event_base *base)
{
	struct sockaddr_in sin = {0};
	socklen_t len = sizeof(sin);

	memset(s, 0, sizeof(*s));
	s->base = base;
	s->slow_piece = -1;
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lis =
	    evconnlistener_new_bind(base, on_accept, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
	                            -1, (struct sockaddr *)&sin, sizeof(sin));
	ck_assert_ptr_nonnull(s->lis);
	ck_assert_int_eq(getsockname(evconnlistener_get_fd(s->lis), (struct sockaddr *)&sin, &len),
	                 0);
	s->port = ntohs(sin.sin_port);
}

static void srv_free(struct srv *s)
{
	while (s->conns)
		conn_free(s->conns);
	evconnlistener_free(s->lis);
	free(s->data);
}

/* A loopback port that refuses connections: bound, never listening, kept for the test. */
static int refused_port(int *fd)
{
	struct sockaddr_in sin = {0};
	socklen_t len = sizeof(sin);

	*fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(*fd, 0);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(*fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(*fd, (struct sockaddr *)&sin, &len), 0);
	return ntohs(sin.sin_port);
}

/* ---- the client side ------------------------------------------------------------------- */

struct t {
	struct event_base *base;
	struct sg_upstream *up;
	struct srv srv;
	int pending;               /* probes started and not finished */
	int (*until)(struct t *t); /* t_run stops when it says 1; NULL: when pending is 0 */
	struct event *poll, *guard;
	int guard_fired;
	char url[128];
};

/* What one fetch delivered, in order. */
struct probe {
	struct t *t;
	struct sg_fetch *f;
	int heads, chunks, finals;
	int bad_order; /* a piece before the head, or anything after the final */
	long head_status;
	char *got; /* streamed pieces, concatenated */
	size_t got_len, first_len;
	/* The final result, copied. */
	enum sg_fetch_fail fail;
	long status;
	char body[512], ctype[64];
	size_t len;
	int attempts, sent;
	long elapsed_ms;
	/* The test's step after each on_chunk call (data NULL for the head). */
	void (*step)(struct probe *p, const char *data, size_t len);
	int mark;         /* free for the step */
	struct event *ev; /* free for the step */
};

static void on_final(const struct sg_fetch_res *res, void *arg)
{
	struct probe *p = arg;

	if (p->finals)
		p->bad_order = 1;
	p->finals++;
	p->fail = res->fail;
	p->status = res->status;
	ck_assert_ptr_nonnull(res->body);
	ck_assert_uint_lt(res->len, sizeof(p->body));
	ck_assert_uint_eq(strlen(res->body), res->len);
	memcpy(p->body, res->body, res->len + 1);
	p->len = res->len;
	snprintf(p->ctype, sizeof(p->ctype), "%s", res->content_type ? res->content_type : "");
	p->attempts = res->attempts;
	p->sent = res->sent;
	p->elapsed_ms = res->elapsed_ms;
	p->t->pending--;
}

static void t_poll(evutil_socket_t fd, short what, void *arg)
{
	struct t *t = arg;

	(void)fd;
	(void)what;
	if (t->until ? t->until(t) : t->pending == 0)
		event_base_loopbreak(t->base);
}

static void t_guard(evutil_socket_t fd, short what, void *arg)
{
	struct t *t = arg;

	(void)fd;
	(void)what;
	t->guard_fired = 1;
	event_base_loopbreak(t->base);
}

static void t_init(struct t *t)
{
	memset(t, 0, sizeof(*t));
	t->base = event_base_new();
	ck_assert_ptr_nonnull(t->base);
	srv_start(&t->srv, t->base);
	t->up = sg_upstream_new(t->base, 8);
	ck_assert_ptr_nonnull(t->up);
	t->poll = event_new(t->base, -1, EV_PERSIST, t_poll, t);
	t->guard = evtimer_new(t->base, t_guard, t);
}

static const char *t_url(struct t *t, const char *path)
{
	snprintf(t->url, sizeof(t->url), "http://127.0.0.1:%d%s", t->srv.port, path);
	return t->url;
}

/* Runs the loop until t->until (or, without it, every probe finished); failing after max_ms
 * means something never happened. */
static void t_run(struct t *t, long max_ms)
{
	struct timeval poll = {0, 5000}, guard = {max_ms / 1000, (max_ms % 1000) * 1000};

	evtimer_add(t->poll, &poll);
	evtimer_add(t->guard, &guard);
	event_base_dispatch(t->base);
	evtimer_del(t->poll);
	evtimer_del(t->guard);
	ck_assert_msg(!t->guard_fired, "nothing more happened within %ld ms", max_ms);
}

static void t_free(struct t *t)
{
	sg_upstream_free(t->up);
	srv_free(&t->srv);
	event_free(t->poll);
	event_free(t->guard);
	event_base_free(t->base);
}

static void probe_start(struct t *t, struct probe *p, struct sg_fetch_req *req)
{
	p->t = t;
	p->f = sg_fetch_start(t->up, req, on_final, p);
	ck_assert_ptr_nonnull(p->f);
	t->pending++;
}

static void probe_free(struct probe *p)
{
	free(p->got);
	if (p->ev)
		event_free(p->ev);
}

/* ---- collected answers, methods, retries, "sent" ---------------------------------------- */

START_TEST(get_collected)
{
	struct sg_fetch_req req = {0};
	struct probe p = {0};
	struct t t;

	t_init(&t);
	req.url = t_url(&t, "/plain");
	req.timeout_ms = 10000;
	probe_start(&t, &p, &req);
	t_run(&t, 10000);
	ck_assert_int_eq(p.finals, 1);
	ck_assert_int_eq(p.fail, SG_FETCH_OK);
	ck_assert_int_eq(p.status, 200);
	ck_assert_str_eq(p.body, "hello world");
	ck_assert_uint_eq(p.len, 11);
	ck_assert_str_eq(p.ctype, "text/plain");
	ck_assert_int_eq(p.attempts, 1);
	ck_assert_int_eq(p.sent, 1);
	ck_assert_str_eq(t.srv.method, "GET");
	ck_assert_str_eq(t.srv.path, "/plain");
	ck_assert_uint_eq(sg_upstream_active(t.up), 0);
	probe_free(&p);
	t_free(&t);
}
END_TEST

/* HEAD must not wait for the body its Content-Length announces. */
START_TEST(head_has_no_body)
{
	struct sg_fetch_req req = {0};
	struct probe p = {0};
	struct t t;

	t_init(&t);
	req.method = "HEAD";
	req.url = t_url(&t, "/plain");
	req.timeout_ms = 10000;
	probe_start(&t, &p, &req);
	t_run(&t, 10000);
	ck_assert_int_eq(p.fail, SG_FETCH_OK);
	ck_assert_int_eq(p.status, 200);
	ck_assert_uint_eq(p.len, 0);
	ck_assert_str_eq(t.srv.method, "HEAD");
	probe_free(&p);
	t_free(&t);
}
END_TEST

START_TEST(post_reaches_server)
{
	static const char *const headers[] = {"Content-Type: application/json", NULL};
	struct sg_fetch_req req = {0};
	struct probe p = {0};
	struct t t;

	t_init(&t);
	req.method = "POST";
	req.url = t_url(&t, "/echo");
	req.headers = headers;
	req.body = "{\"a\":1}";
	req.body_len = 7;
	req.timeout_ms = 10000;
	probe_start(&t, &p, &req);
	t_run(&t, 10000);
	ck_assert_int_eq(t.srv.requests, 1);
	ck_assert_str_eq(t.srv.method, "POST");
	ck_assert_str_eq(t.srv.path, "/echo");
	ck_assert_uint_eq(t.srv.body_len, 7);
	ck_assert_str_eq(t.srv.body, "{\"a\":1}");
	ck_assert_int_eq(p.fail, SG_FETCH_OK);
	ck_assert_int_eq(p.status, 200);
	ck_assert_str_eq(p.body, "POST {\"a\":1}");
	ck_assert_int_eq(p.sent, 1);
	probe_free(&p);
	t_free(&t);
}
END_TEST

static const char *const write_methods[] = {"POST", "PATCH", "DELETE", "PUT"};

/* A refused connection is retried only for GET/HEAD; nothing was sent either way. */
START_TEST(refused_retries_reads_only)
{
	struct sg_fetch_req req = {0};
	struct probe w = {0}, g = {0}, h = {0};
	char url[64];
	int fd, port;
	struct t t;

	t_init(&t);
	port = refused_port(&fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", port);
	req.url = url;
	req.timeout_ms = 10000;
	req.connect_timeout_ms = 5000;
	req.retries = 2;
	req.method = write_methods[_i];
	req.body = "{}";
	req.body_len = 2;
	probe_start(&t, &w, &req);
	req.method = "GET";
	req.body = NULL;
	req.body_len = 0;
	probe_start(&t, &g, &req);
	req.method = "HEAD";
	req.retries = 1;
	probe_start(&t, &h, &req);
	t_run(&t, 20000);
	ck_assert_int_eq(w.fail, SG_FETCH_CONNECT);
	ck_assert_int_eq(w.attempts, 1);
	ck_assert_int_eq(w.sent, 0);
	ck_assert_int_eq(g.fail, SG_FETCH_CONNECT);
	ck_assert_int_eq(g.attempts, 3);
	ck_assert_int_eq(g.sent, 0);
	ck_assert_int_eq(h.fail, SG_FETCH_CONNECT);
	ck_assert_int_eq(h.attempts, 2);
	ck_assert_uint_eq(sg_upstream_active(t.up), 0);
	close(fd);
	probe_free(&w);
	probe_free(&g);
	probe_free(&h);
	t_free(&t);
}
END_TEST

/* The backend read the write and closed without answering: the outcome is unknown (sent 1),
 * and the write went out once, although the connection it would have reused (kept alive by
 * a GET before it) died without an answer byte, the case where libcurl resends by itself. */
START_TEST(write_dropped_after_read_is_sent_once)
{
	struct sg_fetch_req req = {0};
	struct probe g = {0}, w = {0};
	struct t t;

	t_init(&t);
	req.url = t_url(&t, "/plain");
	req.timeout_ms = 10000;
	probe_start(&t, &g, &req);
	t_run(&t, 10000);
	ck_assert_int_eq(g.fail, SG_FETCH_OK);
	ck_assert_int_eq(t.srv.accepted, 1);

	req.method = write_methods[_i];
	req.url = t_url(&t, "/drop");
	req.body = "{\"b\":2}";
	req.body_len = 7;
	req.retries = 2;
	probe_start(&t, &w, &req);
	t_run(&t, 10000);
	ck_assert_int_ne(w.fail, SG_FETCH_OK);
	ck_assert_int_eq(w.sent, 1);
	ck_assert_int_eq(w.attempts, 1);
	ck_assert_str_eq(t.srv.method, write_methods[_i]);
	ck_assert_str_eq(t.srv.body, "{\"b\":2}");
	ck_assert_int_eq(t.srv.requests, 2); /* the GET and the write, once */
	probe_free(&g);
	probe_free(&w);
	t_free(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("upstream");
	TCase *tc = tcase_create("upstream");
	int nwrites = (int)(sizeof(write_methods) / sizeof(write_methods[0]));
	SRunner *sr;
	int failed;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return EXIT_FAILURE;
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, get_collected);
	tcase_add_test(tc, head_has_no_body);
	tcase_add_test(tc, post_reaches_server);
	tcase_add_loop_test(tc, refused_retries_reads_only, 0, nwrites);
	tcase_add_loop_test(tc, write_dropped_after_read_is_sent_once, 0, nwrites);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
