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

static void srv_release(struct srv *s)
{
	struct conn *c;

	s->released = 1;
	for (c = s->conns; c; c = c->next)
		if (c->held) {
			c->held = 0;
			stream_step(c);
		}
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

/* npieces pieces of len bytes each, every piece different ("[0003cccc…]"). */
static void srv_pieces(struct srv *s, size_t npieces, size_t len)
{
	size_t i;

	ck_assert_uint_ge(len, 7);
	free(s->data);
	s->data = malloc(npieces * len + 1);
	ck_assert_ptr_nonnull(s->data);
	for (i = 0; i < npieces; i++) {
		char *p = s->data + i * len;

		snprintf(p, len, "[%04zu", i % 10000);
		memset(p + 5, 'a' + (int)(i % 26), len - 6);
		p[len - 1] = ']';
	}
	s->data[npieces * len] = '\0';
	s->npieces = npieces;
	s->piece_len = len;
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
	int want;                  /* free for until */
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
	/* A snapshot a step takes: the server's progress and what had been delivered. */
	size_t snap_srv_sent;
	int snap_srv_done, snap_chunks, snap_finals;
};

static void snap(struct probe *p)
{
	p->snap_srv_sent = p->t->srv.pieces_sent;
	p->snap_srv_done = p->t->srv.stream_done;
	p->snap_chunks = p->chunks;
	p->snap_finals = p->finals;
}

static void on_piece(long status, const char *data, size_t len, void *arg)
{
	struct probe *p = arg;

	if (p->finals)
		p->bad_order = 1;
	if (!data) {
		ck_assert_uint_eq(len, 0);
		if (p->heads || p->chunks)
			p->bad_order = 1;
		p->heads++;
		p->head_status = status;
	} else {
		char *g;

		ck_assert_uint_gt(len, 0);
		if (!p->heads || status != p->head_status)
			p->bad_order = 1;
		if (!p->chunks)
			p->first_len = len;
		p->chunks++;
		g = realloc(p->got, p->got_len + len + 1);
		ck_assert_ptr_nonnull(g);
		memcpy(g + p->got_len, data, len);
		p->got = g;
		p->got_len += len;
		p->got[p->got_len] = '\0';
	}
	if (p->step)
		p->step(p, data, len);
}

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

static int never(struct t *t)
{
	(void)t;
	return 0;
}

/* Runs the loop for ms whatever happens. */
static void t_run_for(struct t *t, long ms)
{
	struct timeval guard = {ms / 1000, (ms % 1000) * 1000}, poll = {1, 0};

	t->until = never;
	evtimer_add(t->poll, &poll);
	evtimer_add(t->guard, &guard);
	event_base_dispatch(t->base);
	evtimer_del(t->poll);
	evtimer_del(t->guard);
	t->guard_fired = 0;
	t->until = NULL;
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

/* A streaming GET of path with the given idle timeout and step. */
static void stream_req(struct t *t, struct sg_fetch_req *req, const char *path, long idle_ms)
{
	memset(req, 0, sizeof(*req));
	req->url = t_url(t, path);
	req->idle_timeout_ms = idle_ms;
	req->connect_timeout_ms = 5000;
	req->on_chunk = on_piece;
}

/* ---- coalescing ------------------------------------------------------------------------ */

/* Identical GETs with a tag in flight together share one transfer: one request reaches the
 * server and every caller gets the answer; another tag, or no tag, is a request of its own. */
START_TEST(identical_gets_share_one_transfer)
{
	struct sg_fetch_req req = {0};
	struct probe p[36];
	struct t t;

	memset(p, 0, sizeof(p));
	t_init(&t);
	req.url = t_url(&t, "/plain");
	req.timeout_ms = 10000;
	req.coalesce = "be#0";
	for (int i = 0; i < 32; i++)
		probe_start(&t, &p[i], &req);
	req.coalesce = "be#1"; /* e.g. after a write: a new generation */
	probe_start(&t, &p[32], &req);
	req.coalesce = NULL;
	probe_start(&t, &p[33], &req);
	probe_start(&t, &p[34], &req);
	t_run(&t, 10000);
	for (int i = 0; i < 35; i++) {
		ck_assert_int_eq(p[i].finals, 1);
		ck_assert_int_eq(p[i].status, 200);
		ck_assert_str_eq(p[i].body, "hello world");
	}
	ck_assert_int_eq(t.srv.requests, 4);
	ck_assert_uint_eq(sg_upstream_coalesced(t.up), 31);
	ck_assert_uint_eq(sg_upstream_active(t.up), 0);
	for (int i = 0; i < 35; i++)
		probe_free(&p[i]);
	t_free(&t);
}
END_TEST

/* A caller that leaves does not take the others' answer with it; when every caller left, the
 * transfer is cancelled. */
START_TEST(coalesced_cancel)
{
	struct sg_fetch_req req = {0};
	struct probe p[6];
	struct t t;

	memset(p, 0, sizeof(p));
	t_init(&t);
	req.url = t_url(&t, "/plain");
	req.timeout_ms = 10000;
	req.coalesce = "be#0";
	for (int i = 0; i < 3; i++)
		probe_start(&t, &p[i], &req);
	sg_fetch_cancel(p[0].f);
	sg_fetch_cancel(p[2].f);
	t.pending -= 2;
	req.coalesce = "other";
	for (int i = 3; i < 6; i++)
		probe_start(&t, &p[i], &req);
	for (int i = 3; i < 6; i++)
		sg_fetch_cancel(p[i].f);
	t.pending -= 3;
	ck_assert_uint_eq(sg_upstream_active(t.up), 1); /* the second group's transfer is gone */
	t_run(&t, 10000);
	ck_assert_int_eq(p[0].finals, 0);
	ck_assert_int_eq(p[1].finals, 1);
	ck_assert_str_eq(p[1].body, "hello world");
	ck_assert_int_eq(p[2].finals, 0);
	for (int i = 3; i < 6; i++)
		ck_assert_int_eq(p[i].finals, 0);
	ck_assert_uint_eq(sg_upstream_active(t.up), 0);
	for (int i = 0; i < 6; i++)
		probe_free(&p[i]);
	t_free(&t);
}
END_TEST

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

/* ---- streaming ------------------------------------------------------------------------- */

/* Notes how far the server is when the first piece arrives, then lets it send the rest. */
static void release_after_first(struct probe *p, const char *data, size_t len)
{
	(void)len;
	if (!data || p->chunks != 1)
		return;
	snap(p);
	srv_release(&p->t->srv);
}

START_TEST(stream_arrives_in_pieces)
{
	struct sg_fetch_req req;
	struct probe p = {0};
	struct t t;

	t_init(&t);
	srv_pieces(&t.srv, 3, 16);
	t.srv.hold_after = 1;
	t.srv.gap_ms = 20;
	t.srv.end = 1;
	stream_req(&t, &req, "/stream", 0);
	p.step = release_after_first;
	probe_start(&t, &p, &req);
	t_run(&t, 10000);
	/* The first piece came while the server still held the other two back. */
	ck_assert_uint_eq(p.snap_srv_sent, 1);
	ck_assert_int_eq(p.snap_srv_done, 0);
	ck_assert_uint_eq(p.first_len, 16);
	ck_assert_int_ge(p.chunks, 2);
	/* The head came first, with the status. */
	ck_assert_int_eq(p.heads, 1);
	ck_assert_int_eq(p.head_status, 200);
	ck_assert_int_eq(p.bad_order, 0);
	ck_assert_uint_eq(p.got_len, 48);
	ck_assert_str_eq(p.got, t.srv.data);
	/* The final callback: success, nothing collected. */
	ck_assert_int_eq(p.finals, 1);
	ck_assert_int_eq(p.fail, SG_FETCH_OK);
	ck_assert_int_eq(p.status, 200);
	ck_assert_str_eq(p.body, "");
	ck_assert_uint_eq(p.len, 0);
	ck_assert_str_eq(p.ctype, "text/event-stream");
	ck_assert_int_eq(p.sent, 1);
	probe_free(&p);
	t_free(&t);
}
END_TEST

START_TEST(stream_error_is_collected)
{
	struct sg_fetch_req req;
	struct probe p = {0};
	struct t t;

	t_init(&t);
	stream_req(&t, &req, "/error", 0);
	probe_start(&t, &p, &req);
	t_run(&t, 10000);
	ck_assert_int_eq(p.heads, 1);
	ck_assert_int_eq(p.head_status, 503);
	ck_assert_int_eq(p.chunks, 0);
	ck_assert_int_eq(p.finals, 1);
	ck_assert_int_eq(p.bad_order, 0);
	ck_assert_int_eq(p.fail, SG_FETCH_OK);
	ck_assert_int_eq(p.status, 503);
	ck_assert_str_eq(p.body, "{\"error\":\"busy\"}");
	ck_assert_uint_eq(p.len, 16);
	ck_assert_str_eq(p.ctype, "application/json");
	probe_free(&p);
	t_free(&t);
}
END_TEST

/* One piece, then 1.5 s of silence before the next: the 200 ms idle timeout ends it, for a
 * streamed (_i 0) and a collected (_i 1) fetch alike. */
START_TEST(idle_timeout_fires)
{
	struct sg_fetch_req req;
	struct probe p = {0};
	struct t t;

	t_init(&t);
	srv_pieces(&t.srv, 3, 8);
	t.srv.gap_ms = 10;
	t.srv.slow_piece = 1;
	t.srv.slow_gap_ms = 1500;
	t.srv.end = 1;
	stream_req(&t, &req, "/stream", 200);
	if (_i == 1)
		req.on_chunk = NULL;
	probe_start(&t, &p, &req);
	t_run(&t, 10000);
	ck_assert_int_eq(p.finals, 1);
	ck_assert_int_eq(p.fail, SG_FETCH_TIMEOUT);
	ck_assert_int_ge(p.elapsed_ms, 200 - TICK_MS);
	ck_assert_uint_eq(t.srv.pieces_sent, 1); /* it ended inside the silence */
	ck_assert_int_eq(p.sent, 1);
	if (_i == 0) {
		ck_assert_int_eq(p.heads, 1);
		ck_assert_int_eq(p.chunks, 1);
		ck_assert_str_eq(p.got, "[0000aa]");
		ck_assert_uint_eq(p.len, 0);
	}
	ck_assert_int_eq(p.bad_order, 0);
	ck_assert_uint_eq(sg_upstream_active(t.up), 0);
	probe_free(&p);
	t_free(&t);
}
END_TEST

/* A piece every 40 ms for 2.6 s: an idle timeout of 800 ms never cuts it, and there is no
 * total timeout (timeout_ms 0). */
START_TEST(idle_timeout_spares_live_stream)
{
	struct sg_fetch_req req;
	struct probe p = {0};
	struct t t;

	t_init(&t);
	srv_pieces(&t.srv, 65, 8);
	t.srv.gap_ms = 40;
	t.srv.end = 1;
	stream_req(&t, &req, "/stream", 800);
	probe_start(&t, &p, &req);
	t_run(&t, 20000);
	ck_assert_int_eq(p.fail, SG_FETCH_OK);
	ck_assert_int_ge(p.elapsed_ms, 3 * 800 - TICK_MS);
	ck_assert_str_eq(p.got, t.srv.data);
	ck_assert_int_eq(p.bad_order, 0);
	probe_free(&p);
	t_free(&t);
}
END_TEST

/* Cancels from inside on_chunk: in the head callback (_i 0) or the first piece's (_i 1). */
static void cancel_step(struct probe *p, const char *data, size_t len)
{
	(void)len;
	if ((p->mark == 0 && !data) || (p->mark == 1 && data)) {
		sg_fetch_cancel(p->f);
		p->t->pending--;
	}
}

START_TEST(cancel_inside_on_chunk)
{
	struct sg_fetch_req req;
	struct probe p = {0};
	struct t t;

	t_init(&t);
	srv_pieces(&t.srv, 20, 8);
	t.srv.gap_ms = 20;
	t.srv.end = 1;
	stream_req(&t, &req, "/stream", 200);
	p.step = cancel_step;
	p.mark = _i;
	probe_start(&t, &p, &req);
	t_run(&t, 10000);
	/* Nothing more arrives: no piece, no final, no idle timeout. */
	t_run_for(&t, 700);
	ck_assert_int_eq(p.heads, 1);
	ck_assert_int_eq(p.chunks, _i);
	ck_assert_int_eq(p.finals, 0);
	ck_assert_uint_eq(sg_upstream_active(t.up), 0);
	/* The backend saw the connection close and stopped. */
	ck_assert_int_eq(t.srv.closed, 1);
	ck_assert_uint_lt(t.srv.pieces_sent, 20);
	probe_free(&p);
	t_free(&t);
}
END_TEST

static void check_and_resume(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;

	(void)fd;
	(void)what;
	snap(p);
	sg_fetch_pause(p->f, 0);
	srv_release(&p->t->srv);
}

/* Pauses after the first piece and resumes a second later, 5 idle timeouts later. */
static void pause_after_first(struct probe *p, const char *data, size_t len)
{
	struct timeval tv = {1, 0};

	(void)len;
	if (!data || p->chunks != 1)
		return;
	sg_fetch_pause(p->f, 1);
	p->ev = evtimer_new(p->t->base, check_and_resume, p);
	ck_assert_ptr_nonnull(p->ev);
	evtimer_add(p->ev, &tv);
}

/* _i 0: the server sends everything during the pause; _i 1: it is silent during the pause
 * (and sends the rest when the fetch resumes), so only the pause keeps the idle timer off. */
START_TEST(pause_holds_then_resumes_in_order)
{
	struct sg_fetch_req req;
	struct probe p = {0};
	struct t t;

	t_init(&t);
	srv_pieces(&t.srv, 5, 8);
	t.srv.gap_ms = 20;
	t.srv.end = 1;
	if (_i == 1)
		t.srv.hold_after = 1;
	stream_req(&t, &req, "/stream", 200);
	p.step = pause_after_first;
	probe_start(&t, &p, &req);
	t_run(&t, 10000);
	/* While paused nothing was delivered, even what the server sent, and the idle timeout
	 * did not end the fetch. */
	ck_assert_uint_eq(p.snap_srv_sent, _i == 0 ? 5 : 1);
	ck_assert_int_eq(p.snap_srv_done, _i == 0);
	ck_assert_int_eq(p.snap_chunks, 1);
	ck_assert_int_eq(p.snap_finals, 0);
	/* Resumed: the rest, in order, then success. */
	ck_assert_int_eq(p.fail, SG_FETCH_OK);
	ck_assert_int_ge(p.chunks, 2);
	ck_assert_str_eq(p.got, t.srv.data);
	ck_assert_int_eq(p.bad_order, 0);
	ck_assert_int_ge(p.elapsed_ms, 1000 - TICK_MS);
	probe_free(&p);
	t_free(&t);
}
END_TEST

/* Paused right after starting, before any answer: a streamed 2xx and a non-2xx whose whole
 * answer (and so its end) arrives during the pause. Nothing runs until resumed, not even the
 * head or the final callback; then everything, in order. */
START_TEST(pause_before_answer)
{
	struct sg_fetch_req req;
	struct probe s = {0}, e = {0};
	struct t t;

	t_init(&t);
	srv_pieces(&t.srv, 3, 8);
	t.srv.end = 1;
	stream_req(&t, &req, "/stream", 200);
	probe_start(&t, &s, &req);
	sg_fetch_pause(s.f, 1);
	stream_req(&t, &req, "/error", 200);
	probe_start(&t, &e, &req);
	sg_fetch_pause(e.f, 1);
	t_run_for(&t, 1000);
	ck_assert_int_eq(t.srv.requests, 2);
	ck_assert_int_eq(t.srv.stream_done, 1);
	ck_assert_int_eq(s.heads + s.chunks + s.finals, 0);
	ck_assert_int_eq(e.heads + e.chunks + e.finals, 0);
	sg_fetch_pause(s.f, 0);
	sg_fetch_pause(e.f, 0);
	t_run(&t, 10000);
	ck_assert_int_eq(s.heads, 1);
	ck_assert_int_eq(s.head_status, 200);
	ck_assert_str_eq(s.got, t.srv.data);
	ck_assert_int_eq(s.fail, SG_FETCH_OK);
	ck_assert_int_eq(s.bad_order, 0);
	ck_assert_int_eq(e.heads, 1);
	ck_assert_int_eq(e.head_status, 503);
	ck_assert_int_eq(e.chunks, 0);
	ck_assert_int_eq(e.fail, SG_FETCH_OK);
	ck_assert_str_eq(e.body, "{\"error\":\"busy\"}");
	ck_assert_int_eq(e.bad_order, 0);
	probe_free(&s);
	probe_free(&e);
	t_free(&t);
}
END_TEST

static void resume_now(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;

	(void)fd;
	(void)what;
	p->mark++;
	sg_fetch_pause(p->f, 0);
}

/* Pauses after every piece and resumes from the loop a millisecond later. */
static void pause_each(struct probe *p, const char *data, size_t len)
{
	struct timeval tv = {0, 1000};

	(void)len;
	if (!data)
		return;
	sg_fetch_pause(p->f, 1);
	if (!p->ev)
		p->ev = evtimer_new(p->t->base, resume_now, p);
	ck_assert_ptr_nonnull(p->ev);
	evtimer_add(p->ev, &tv);
}

/* 1 MiB sent at once to a consumer that pauses after every piece: libcurl hands back every
 * piece it was refused, and each must arrive exactly once, in order. */
START_TEST(pause_resume_large_body)
{
	struct sg_fetch_req req;
	struct probe p = {0};
	struct t t;

	t_init(&t);
	srv_pieces(&t.srv, 256, 4096);
	t.srv.end = 1;
	stream_req(&t, &req, "/stream", 5000);
	p.step = pause_each;
	probe_start(&t, &p, &req);
	t_run(&t, 30000);
	ck_assert_int_eq(p.fail, SG_FETCH_OK);
	ck_assert_uint_eq(p.got_len, 256 * 4096);
	ck_assert_int_eq(memcmp(p.got, t.srv.data, p.got_len), 0);
	ck_assert_int_gt(p.chunks, 1);
	ck_assert_int_eq(p.mark, p.chunks); /* every pause was resumed */
	probe_free(&p);
	t_free(&t);
}
END_TEST

/* ---- cancel and free at every stage ----------------------------------------------------- */

static void pause_on_head(struct probe *p, const char *data, size_t len)
{
	(void)len;
	if (!data)
		sg_fetch_pause(p->f, 1);
}

static void pause_on_first(struct probe *p, const char *data, size_t len)
{
	(void)len;
	if (data && p->chunks == 1)
		sg_fetch_pause(p->f, 1);
}

/* Fetches in every stage: [0] just started, [1] between attempts, [2] paused with pieces
 * held, [3] over but its final result held by a pause, [4] waiting on a silent stream. */
#define NSTAGES 5

static void start_stages(struct t *t, struct probe *p, int fd_port)
{
	struct sg_fetch_req req;
	char url[64];

	srv_pieces(&t->srv, 4, 8);
	t->srv.gap_ms = 20;
	t->srv.hold_after = 3; /* never released: the stream then stays silent */

	stream_req(t, &req, "/stream", 0);
	probe_start(t, &p[0], &req);

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", fd_port);
	memset(&req, 0, sizeof(req));
	req.url = url;
	req.retries = 1000;
	req.connect_timeout_ms = 5000;
	probe_start(t, &p[1], &req);

	stream_req(t, &req, "/stream", 200);
	p[2].step = pause_on_first;
	probe_start(t, &p[2], &req);

	stream_req(t, &req, "/error", 200);
	p[3].step = pause_on_head;
	probe_start(t, &p[3], &req);

	memset(&req, 0, sizeof(req));
	req.url = t_url(t, "/stream");
	probe_start(t, &p[4], &req);
}

static int stages_reached(struct t *t)
{
	struct conn *c;
	int held = 0;

	for (c = t->srv.conns; c; c = c->next)
		held += c->held;
	return held == t->want;
}

/* _i 0: each is cancelled (the first right after it started); _i 1: sg_upstream_free with
 * all in flight. No callback runs afterwards, every connection is closed, nothing leaks. */
START_TEST(cancel_or_free_in_every_stage)
{
	struct probe p[NSTAGES] = {{0}};
	int fd, port, i;
	struct t t;

	t_init(&t);
	port = refused_port(&fd);
	start_stages(&t, p, port);
	t.want = 3; /* streams that reach the hold: [0], [2], [4] */
	if (_i == 0) {
		sg_fetch_cancel(p[0].f);
		t.pending--;
		t.want = 2;
	}
	t.until = stages_reached;
	t_run(&t, 10000);
	t_run_for(&t, 300); /* the pieces after the pause reach libcurl, [3] is over */
	for (i = 0; i < NSTAGES; i++)
		ck_assert_int_eq(p[i].finals, 0);
	ck_assert_int_eq(p[2].chunks, 1);
	ck_assert_int_eq(p[3].heads, 1);
	if (_i == 0) {
		for (i = 1; i < NSTAGES; i++)
			sg_fetch_cancel(p[i].f);
		ck_assert_uint_eq(sg_upstream_active(t.up), 0);
	} else {
		sg_upstream_free(t.up);
		t.up = NULL;
	}
	t_run_for(&t, 500);
	for (i = 0; i < NSTAGES; i++)
		ck_assert_int_eq(p[i].finals, 0);
	ck_assert_int_eq(p[2].chunks, 1);
	if (_i == 1)
		ck_assert_int_eq(t.srv.closed, t.srv.accepted);
	close(fd);
	for (i = 0; i < NSTAGES; i++)
		probe_free(&p[i]);
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
	tcase_add_test(tc, identical_gets_share_one_transfer);
	tcase_add_test(tc, coalesced_cancel);
	tcase_add_test(tc, head_has_no_body);
	tcase_add_test(tc, post_reaches_server);
	tcase_add_loop_test(tc, refused_retries_reads_only, 0, nwrites);
	tcase_add_loop_test(tc, write_dropped_after_read_is_sent_once, 0, nwrites);
	tcase_add_test(tc, stream_arrives_in_pieces);
	tcase_add_test(tc, stream_error_is_collected);
	tcase_add_loop_test(tc, idle_timeout_fires, 0, 2);
	tcase_add_test(tc, idle_timeout_spares_live_stream);
	tcase_add_loop_test(tc, cancel_inside_on_chunk, 0, 2);
	tcase_add_loop_test(tc, pause_holds_then_resumes_in_order, 0, 2);
	tcase_add_test(tc, pause_before_answer);
	tcase_add_test(tc, pause_resume_large_body);
	tcase_add_loop_test(tc, cancel_or_free_in_every_stage, 0, 2);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
