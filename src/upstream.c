/* upstream.c - see upstream.h.
 *
 * libcurl tells us which sockets to watch (socket_cb) and when to wake it (timer_cb); the
 * event loop calls curl_multi_socket_action back, and finished transfers are collected in
 * check_done(). User callbacks never run inside a libcurl callback, so they may start, pause
 * or cancel fetches freely:
 *
 * - A collected fetch (no on_chunk) gets its one callback from check_done().
 * - A streamed fetch (on_chunk) gets every callback from its own deferred event, on_deliver().
 *   libcurl's header callback only notes the status once the final headers are in; its write
 *   callback only appends a 2xx body's pieces to f->hold. Both activate the event, which then
 *   hands over the head, what is held, and, once the transfer is over and nothing is held,
 *   the final result. A non-2xx body is collected as for a collected fetch.
 * - Backpressure: when the consumer paused, or SG_HOLD_MAX bytes wait undelivered, the write
 *   callback answers CURL_WRITEFUNC_PAUSE. libcurl then keeps that piece, stops reading the
 *   socket, and hands the same piece again after curl_easy_pause(CURLPAUSE_CONT), which
 *   on_deliver() calls once everything held went out and the consumer is not paused.
 * - Idle timeout: an evtimer per fetch, re-armed by every piece of header or body, stopped
 *   while paused and between attempts; when it fires the transfer is removed and the fetch
 *   ends with SG_FETCH_TIMEOUT.
 * - A callback may cancel its own fetch: f->in_cb defers the free until it returns.
 * - A request other than GET/HEAD is sent once at most: never retried here, and always on a
 *   fresh connection, because libcurl resends any request whose reused connection closed
 *   before an answer byte (the backend may have acted on it). */
#include "upstream.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* Undelivered bytes of a streamed body beyond which libcurl is told to stop reading. */
#define SG_HOLD_MAX (64u << 10)

struct coal;

struct sg_upstream {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct sg_fetch *head; /* every fetch started and not finished or cancelled */
	size_t active;
	struct coal *coals; /* shared GET transfers in flight */
	unsigned long coalesced;
	size_t held, budget; /* bytes of collected answers' buffers, and their bound */
};

/* One transfer shared by identical GETs: the handles given to its callers are waiters
 * (struct sg_fetch without a transfer of their own). */
struct coal {
	struct sg_upstream *up;
	struct coal *next;
	char *key;
	struct sg_fetch *xfer;    /* the real transfer (NULL once it is done) */
	struct sg_fetch *waiters; /* linked by wnext */
	int delivering;
};

struct sg_fetch {
	struct sg_upstream *up;
	struct sg_fetch *prev, *next;
	struct coal *coal;      /* a waiter on a shared transfer (no transfer of its own) */
	struct sg_fetch *wnext; /* the next waiter of coal */
	CURL *easy;
	int in_multi; /* easy is added to up->multi (not between attempts, not when over) */
	struct curl_slist *headers;
	sg_fetch_cb cb;
	void (*on_chunk)(long status, const char *data, size_t len, void *arg);
	void *arg;
	char *buf; /* collected body */
	size_t len, cap, max;
	int too_large, over_budget;
	long retry_after_s; /* Retry-After of the last answer */
	int attempts, retries;
	int idempotent;         /* GET or HEAD: may be retried */
	int answered;           /* a header byte of the answer arrived in this attempt */
	struct event *retry_ev; /* backoff timer between attempts */
	struct timespec started;
	/* Streaming: pieces held for on_deliver. */
	struct event *deliver_ev;
	char *hold;
	size_t hold_len, hold_cap;
	long status;              /* of the final answer, once head_seen */
	int head_seen, head_sent; /* final headers in / handed to on_chunk */
	int streamed;             /* head_seen with a 2xx: the body goes to on_chunk */
	int user_paused;          /* sg_fetch_pause(f, 1) */
	int curl_paused;          /* write_cb answered CURL_WRITEFUNC_PAUSE */
	int in_cb, cancelled;     /* a user callback of this fetch is running; it cancelled */
	/* Idle timeout. */
	struct event *idle_ev;
	long idle_ms;
	/* The outcome, once the transfer is over (done). */
	int done;
	enum sg_fetch_fail fail;
	CURLcode rc;
	char errbuf[CURL_ERROR_SIZE];
};

/* Per-socket state handed to libcurl with curl_multi_assign. */
struct sockwatch {
	struct event *ev;
};

static int64_t elapsed_us(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)(t.tv_sec - t0->tv_sec) * 1000000 + (t.tv_nsec - t0->tv_nsec) / 1000;
}

static void unlink_fetch(struct sg_fetch *f)
{
	struct sg_upstream *up = f->up;

	if (f->prev)
		f->prev->next = f->next;
	else
		up->head = f->next;
	if (f->next)
		f->next->prev = f->prev;
	f->prev = f->next = NULL;
}

static void free_fetch(struct sg_fetch *f)
{
	if (f->easy) {
		if (f->in_multi)
			curl_multi_remove_handle(f->up->multi, f->easy);
		curl_easy_cleanup(f->easy);
		f->up->active--;
	}
	if (f->retry_ev)
		event_free(f->retry_ev);
	if (f->deliver_ev)
		event_free(f->deliver_ev);
	if (f->idle_ev)
		event_free(f->idle_ev);
	curl_slist_free_all(f->headers);
	f->up->held -= f->cap;
	free(f->buf);
	free(f->hold);
	free(f);
}

/* Silence is measured from the last piece that arrived; a paused fetch is never idle. */
static void idle_arm(struct sg_fetch *f)
{
	struct timeval tv;

	if (!f->idle_ev || !f->in_multi || f->user_paused || f->curl_paused)
		return;
	tv.tv_sec = f->idle_ms / 1000;
	tv.tv_usec = (f->idle_ms % 1000) * 1000;
	evtimer_add(f->idle_ev, &tv);
}

static void idle_stop(struct sg_fetch *f)
{
	if (f->idle_ev)
		evtimer_del(f->idle_ev);
}

/* Lets on_deliver run from the loop soon; libcurl callbacks only ever get this far. */
static void schedule(struct sg_fetch *f)
{
	event_active(f->deliver_ev, EV_TIMEOUT, 0);
}

/* Takes the transfer out of libcurl and records why it is over; the caller then delivers. */
static void stop_transfer(struct sg_fetch *f, enum sg_fetch_fail fail, CURLcode rc, const char *why)
{
	if (f->in_multi)
		curl_multi_remove_handle(f->up->multi, f->easy);
	f->in_multi = 0;
	f->curl_paused = 0;
	idle_stop(f);
	f->done = 1;
	f->fail = fail;
	f->rc = rc;
	snprintf(f->errbuf, sizeof(f->errbuf), "%s", why);
}

/* Keeps a piece of a streamed body for on_deliver, or refuses it with CURL_WRITEFUNC_PAUSE
 * when the consumer paused or enough is held already: libcurl keeps the refused piece and
 * hands exactly it again once unpaused, so nothing of it may be kept here. */
static size_t hold_piece(struct sg_fetch *f, const char *data, size_t n)
{
	if (f->user_paused || f->hold_len >= SG_HOLD_MAX) {
		f->curl_paused = 1;
		idle_stop(f);
		return CURL_WRITEFUNC_PAUSE;
	}
	if (f->hold_len + n > f->hold_cap) {
		size_t cap = f->hold_cap ? f->hold_cap : 16384;
		char *p;

		while (cap < f->hold_len + n)
			cap *= 2;
		p = realloc(f->hold, cap);
		if (!p)
			return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
		f->hold = p;
		f->hold_cap = cap;
	}
	memcpy(f->hold + f->hold_len, data, n);
	f->hold_len += n;
	idle_arm(f);
	schedule(f);
	return n;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sg_fetch *f = arg;
	size_t n = size * nmemb;

	if (f->streamed)
		return hold_piece(f, data, n);
	idle_arm(f);
	if (f->len + n > f->max) {
		f->too_large = 1;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	if (f->len + n + 1 > f->cap) {
		size_t cap = f->cap ? f->cap : 16384;
		char *p;

		while (cap < f->len + n + 1)
			cap *= 2;
		if (cap > f->max + 1)
			cap = f->max + 1;
		if (f->up->budget && f->up->held - f->cap + cap > f->up->budget) {
			/* every answer this worker collects shares one bound: several huge answers
			 * at once cannot multiply the per-answer cap */
			f->over_budget = 1;
			return 0;
		}
		p = realloc(f->buf, cap);
		if (!p)
			return 0;
		f->up->held = f->up->held - f->cap + cap;
		f->buf = p;
		f->cap = cap;
	}
	memcpy(f->buf + f->len, data, n);
	f->len += n;
	f->buf[f->len] = '\0';
	return n;
}

/* Every header line is a sign of life; the blank line that ends the final (non-1xx) header
 * block is when a streamed fetch learns its status and whether its body is streamed. */
static size_t header_cb(char *data, size_t size, size_t nitems, void *arg)
{
	struct sg_fetch *f = arg;
	size_t n = size * nitems;
	long status = 0;

	f->answered = 1;
	idle_arm(f);
	if (n > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
		/* delta-seconds or an HTTP date (RFC 9110 §10.2.3), bounded to a day */
		char v[64];
		size_t k = n - 12 < sizeof(v) - 1 ? n - 12 : sizeof(v) - 1;
		char *end;
		long secs;

		memcpy(v, data + 12, k);
		v[k] = '\0';
		secs = strtol(v, &end, 10);
		if (end == v) {
			time_t at = curl_getdate(v, NULL);

			secs = at > 0 ? (long)(at - time(NULL)) : 0;
		}
		f->retry_after_s = secs < 0 ? 0 : secs > 86400 ? 86400 : secs;
	}
	if (!f->on_chunk || f->head_seen)
		return n;
	if (!(n == 2 && data[0] == '\r' && data[1] == '\n') && !(n == 1 && data[0] == '\n'))
		return n;
	curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200)
		return n; /* an interim answer (100 Continue…); the real headers follow */
	f->head_seen = 1;
	f->status = status;
	f->streamed = status < 300;
	schedule(f);
	return n;
}

static void check_done(struct sg_upstream *up);

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sg_upstream *up = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(up->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(up);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
	struct sg_upstream *up = arg;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(up->timer);
		return 0;
	}
	/* Even a 0 timeout goes through the loop: calling back into libcurl from inside its
	 * own callback is not allowed. */
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(up->timer, &tv);
	return 0;
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct sg_upstream *up = arg;
	int flags = 0, running;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(up->multi, fd, flags, &running);
	check_done(up);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
	struct sg_upstream *up = arg;
	struct sockwatch *w = sockp;
	short kind;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (w) {
			event_free(w->ev);
			free(w);
			curl_multi_assign(up->multi, s, NULL);
		}
		return 0;
	}
	kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
	               ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
	if (!w) {
		w = calloc(1, sizeof(*w));
		if (!w)
			return -1;
		curl_multi_assign(up->multi, s, w);
	} else {
		event_free(w->ev);
	}
	w->ev = event_new(up->base, s, kind, on_socket, up);
	if (!w->ev || event_add(w->ev, NULL) != 0)
		return -1;
	return 0;
}

static enum sg_fetch_fail classify(CURLcode rc, int too_large, int over_budget)
{
	if (over_budget)
		return SG_FETCH_BUDGET;
	if (too_large)
		return SG_FETCH_TOO_LARGE;
	switch (rc) {
	case CURLE_OK:
		return SG_FETCH_OK;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return SG_FETCH_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		return SG_FETCH_TIMEOUT;
	case CURLE_FILESIZE_EXCEEDED:
		return SG_FETCH_TOO_LARGE;
	default:
		return SG_FETCH_ERROR;
	}
}

/* Hands the outcome of a transfer that is over to the user, then frees the fetch. */
static void finish(struct sg_fetch *f)
{
	struct sg_fetch_res res = {0};
	char *ct = NULL;
	long request_size = 0;

	res.fail = f->fail;
	curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &res.status);
	curl_easy_getinfo(f->easy, CURLINFO_CONTENT_TYPE, &ct);
	/* Bytes of request written to the socket in the last attempt (libcurl resets it when
	 * an attempt starts); an answer proves it was sent even where this is not counted. */
	curl_easy_getinfo(f->easy, CURLINFO_REQUEST_SIZE, &request_size);
	res.content_type = ct;
	res.body = (f->buf && !f->streamed) ? f->buf : "";
	res.len = f->streamed ? 0 : f->len;
	res.errmsg = f->errbuf[0] ? f->errbuf : curl_easy_strerror(f->rc);
	res.retry_after_s = f->retry_after_s;
	res.attempts = f->attempts;
	res.elapsed_us = elapsed_us(&f->started);
	res.elapsed_ms = (long)(res.elapsed_us / 1000);
	res.sent = request_size > 0 || f->answered;
	unlink_fetch(f);
	f->in_cb = 1;
	f->cb(&res, f->arg);
	free_fetch(f);
}

/* A transfer is over: a collected fetch ends now, a streamed one once its held pieces are
 * delivered. */
static void complete(struct sg_fetch *f)
{
	if (f->on_chunk)
		schedule(f);
	else
		finish(f);
}

/* Runs on_chunk. Returns 1 when the consumer cancelled the fetch meanwhile: it is freed. */
static int call_chunk(struct sg_fetch *f, const char *data, size_t len)
{
	f->in_cb = 1;
	f->on_chunk(f->status, data, len, f->arg);
	f->in_cb = 0;
	if (!f->cancelled)
		return 0;
	unlink_fetch(f);
	free_fetch(f);
	return 1;
}

/* Lets libcurl read again after write_cb refused a piece; that piece comes back to
 * write_cb from inside curl_easy_pause. */
static void resume_curl(struct sg_fetch *f)
{
	f->curl_paused = 0;
	if (curl_easy_pause(f->easy, CURLPAUSE_CONT) != CURLE_OK) {
		stop_transfer(f, SG_FETCH_ERROR, CURLE_WRITE_ERROR, "cannot resume transfer");
		schedule(f);
		return;
	}
	idle_arm(f);
}

/* The one place a streamed fetch's callbacks run: the head, then what is held, then the
 * final result; nothing while the consumer has it paused. Each step may cancel or pause. */
static void on_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct sg_fetch *f = arg;

	(void)fd;
	(void)what;
	if (f->user_paused)
		return;
	if (f->head_seen && !f->head_sent) {
		f->head_sent = 1;
		if (call_chunk(f, NULL, 0) || f->user_paused)
			return;
	}
	if (f->hold_len) {
		/* libcurl cannot run during the callback (resuming it happens only below), so
		 * nothing is appended to f->hold meanwhile. */
		size_t len = f->hold_len;

		f->hold_len = 0;
		if (call_chunk(f, f->hold, len) || f->user_paused)
			return;
	}
	if (f->done)
		finish(f);
	else if (f->curl_paused)
		resume_curl(f);
}

static void on_idle(evutil_socket_t fd, short what, void *arg)
{
	struct sg_fetch *f = arg;
	char why[96];

	(void)fd;
	(void)what;
	snprintf(why, sizeof(why), "no data from the backend for %ld ms", f->idle_ms);
	stop_transfer(f, SG_FETCH_TIMEOUT, CURLE_OPERATION_TIMEDOUT, why);
	complete(f);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct sg_fetch *f = arg;

	(void)fd;
	(void)what;
	f->len = 0;
	f->too_large = 0;
	f->over_budget = 0;
	f->retry_after_s = 0;
	f->answered = 0;
	f->errbuf[0] = '\0';
	if (curl_multi_add_handle(f->up->multi, f->easy) != CURLM_OK) {
		stop_transfer(f, SG_FETCH_ERROR, CURLE_FAILED_INIT, "cannot restart transfer");
		complete(f);
		return;
	}
	f->in_multi = 1;
	idle_arm(f);
}

/* Collects finished transfers; retries connection failures of GETs with a short backoff,
 * otherwise hands the result to the user. */
static void check_done(struct sg_upstream *up)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(up->multi, &left))) {
		struct sg_fetch *f = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&f);
		f->rc = msg->data.result;
		f->fail = classify(f->rc, f->too_large, f->over_budget);
		curl_multi_remove_handle(up->multi, f->easy);
		f->in_multi = 0;
		f->curl_paused = 0;
		idle_stop(f);
		/* A connection failure means nothing reached the backend, and it is only ever
		 * retried for requests that are safe to send twice anyway. */
		if (f->fail == SG_FETCH_CONNECT && f->idempotent && f->attempts <= f->retries) {
			struct timeval tv = {0, 50000L * f->attempts};

			sg_debug("upstream: retrying after: %s", f->errbuf);
			f->attempts++;
			if (!f->retry_ev)
				f->retry_ev = evtimer_new(up->base, on_retry, f);
			if (f->retry_ev && evtimer_add(f->retry_ev, &tv) == 0)
				continue;
			f->attempts--;
		}
		f->done = 1;
		complete(f);
	}
}

void sg_upstream_set_budget(struct sg_upstream *up, size_t bytes)
{
	up->budget = bytes;
}

struct sg_upstream *sg_upstream_new(struct event_base *base, long max_host_connections)
{
	struct sg_upstream *up = calloc(1, sizeof(*up));

	if (!up)
		return NULL;
	up->base = base;
	up->multi = curl_multi_init();
	up->timer = evtimer_new(base, on_timer, up);
	if (!up->multi || !up->timer) {
		sg_upstream_free(up);
		return NULL;
	}
	curl_multi_setopt(up->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(up->multi, CURLMOPT_SOCKETDATA, up);
	curl_multi_setopt(up->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(up->multi, CURLMOPT_TIMERDATA, up);
	curl_multi_setopt(up->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host_connections);
	return up;
}

static void coal_free(struct coal *c);

void sg_upstream_free(struct sg_upstream *up)
{
	if (!up)
		return;
	while (up->coals) {
		struct coal *c = up->coals;

		up->coals = c->next;
		coal_free(c); /* its transfer is in up->head, freed below */
	}
	while (up->head) {
		struct sg_fetch *f = up->head;

		unlink_fetch(f);
		free_fetch(f);
	}
	if (up->multi)
		curl_multi_cleanup(up->multi);
	if (up->timer)
		event_free(up->timer);
	free(up);
}

static struct sg_fetch *start_transfer(struct sg_upstream *up, const struct sg_fetch_req *req,
                                       sg_fetch_cb cb, void *arg)
{
	struct sg_fetch *f = calloc(1, sizeof(*f));
	const char *method = req->method ? req->method : "GET";
	int is_get = strcmp(method, "GET") == 0, is_head = strcmp(method, "HEAD") == 0;
	struct curl_slist *l;

	if (!f)
		return NULL;
	f->up = up;
	f->cb = cb;
	f->on_chunk = req->on_chunk;
	f->arg = arg;
	f->max = req->max_bytes ? req->max_bytes : (64u << 20);
	f->retries = req->retries;
	f->attempts = 1;
	f->idempotent = is_get || is_head;
	f->idle_ms = req->idle_timeout_ms;
	clock_gettime(CLOCK_MONOTONIC, &f->started);
	if (f->on_chunk) {
		f->deliver_ev = event_new(up->base, -1, 0, on_deliver, f);
		if (!f->deliver_ev)
			goto fail;
	}
	if (f->idle_ms > 0) {
		f->idle_ev = evtimer_new(up->base, on_idle, f);
		if (!f->idle_ev)
			goto fail;
	}
	f->easy = curl_easy_init();
	if (!f->easy)
		goto fail;
	for (size_t i = 0; req->headers && req->headers[i]; i++) {
		l = curl_slist_append(f->headers, req->headers[i]);
		if (!l)
			goto fail;
		f->headers = l;
	}
	/* No "Expect: 100-continue" round trip on bodies. */
	l = curl_slist_append(f->headers, "Expect:");
	if (!l)
		goto fail;
	f->headers = l;
	curl_easy_setopt(f->easy, CURLOPT_URL, req->url);
	curl_easy_setopt(f->easy, CURLOPT_PRIVATE, f);
	curl_easy_setopt(f->easy, CURLOPT_ERRORBUFFER, f->errbuf);
	curl_easy_setopt(f->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(f->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(f->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(f->easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(f->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(f->easy, CURLOPT_USERAGENT, "sessiongate/" PACKAGE_VERSION);
	curl_easy_setopt(f->easy, CURLOPT_TIMEOUT_MS, req->timeout_ms);
	curl_easy_setopt(f->easy, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
	/* A streamed 2xx body is unbounded; a collected one is still bounded by write_cb. */
	if (!f->on_chunk)
		curl_easy_setopt(f->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)f->max);
	curl_easy_setopt(f->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(f->easy, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(f->easy, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(f->easy, CURLOPT_HEADERDATA, f);
	/* A proxy's CONNECT answer must not pass for the backend's headers. */
	curl_easy_setopt(f->easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	curl_easy_setopt(f->easy, CURLOPT_HTTPHEADER, f->headers);
	if (is_head) {
		curl_easy_setopt(f->easy, CURLOPT_NOBODY, 1L);
	} else if (!is_get) {
		curl_easy_setopt(f->easy, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(f->easy, CURLOPT_FRESH_CONNECT, 1L);
		if (req->body) {
			curl_easy_setopt(f->easy, CURLOPT_POSTFIELDSIZE_LARGE,
			                 (curl_off_t)req->body_len);
			curl_easy_setopt(f->easy, CURLOPT_COPYPOSTFIELDS, req->body);
		}
	}
	if (curl_multi_add_handle(up->multi, f->easy) != CURLM_OK)
		goto fail;
	f->in_multi = 1;
	up->active++;
	f->next = up->head;
	if (up->head)
		up->head->prev = f;
	up->head = f;
	idle_arm(f);
	return f;
fail:
	if (f->easy)
		curl_easy_cleanup(f->easy);
	f->easy = NULL;
	free_fetch(f);
	return NULL;
}

static void coal_unlink(struct coal *c)
{
	for (struct coal **p = &c->up->coals; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			return;
		}
}

static void coal_free(struct coal *c)
{
	while (c->waiters) {
		struct sg_fetch *w = c->waiters;

		c->waiters = w->wnext;
		free(w);
	}
	free(c->key);
	free(c);
}

/* The shared transfer is over: every waiter still there gets the answer, in the order they
 * came. A waiter's callback may cancel other waiters (they are then skipped). */
static void coal_done(const struct sg_fetch_res *res, void *arg)
{
	struct coal *c = arg;
	struct sg_fetch *w, *rev = NULL;

	coal_unlink(c); /* from now on an identical GET starts a new transfer */
	c->xfer = NULL;
	c->delivering = 1;
	/* waiters were pushed at the front: deliver oldest first */
	while (c->waiters) {
		w = c->waiters;
		c->waiters = w->wnext;
		w->wnext = rev;
		rev = w;
	}
	c->waiters = rev;
	for (w = c->waiters; w; w = w->wnext)
		if (!w->cancelled) {
			w->in_cb = 1;
			w->cb(res, w->arg);
			w->in_cb = 0;
			w->cancelled = 1; /* answered: a later cancel of this handle is a no-op */
		}
	coal_free(c);
}

static void waiter_cancel(struct sg_fetch *w)
{
	struct coal *c = w->coal;

	if (c->delivering) {
		w->cancelled = 1; /* freed with the coal once every waiter is answered */
		return;
	}
	for (struct sg_fetch **p = &c->waiters; *p; p = &(*p)->wnext)
		if (*p == w) {
			*p = w->wnext;
			break;
		}
	free(w);
	if (!c->waiters) {
		/* nobody waits any more: the transfer is not needed */
		coal_unlink(c);
		sg_fetch_cancel(c->xfer);
		coal_free(c);
	}
}

/* The key of a coalescable GET: everything that makes two answers the same. NULL when out of
 * memory. */
static char *coal_key(const struct sg_fetch_req *req)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fprintf(f, "%s\n%s\n%ld %ld %ld %zu %d\n", req->coalesce, req->url, req->timeout_ms,
	        req->idle_timeout_ms, req->connect_timeout_ms, req->max_bytes, req->retries);
	for (size_t i = 0; req->headers && req->headers[i]; i++)
		fprintf(f, "%s\n", req->headers[i]);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

struct sg_fetch *sg_fetch_start(struct sg_upstream *up, const struct sg_fetch_req *req,
                                sg_fetch_cb cb, void *arg)
{
	const char *method = req->method ? req->method : "GET";
	struct sg_fetch *w;
	struct coal *c;
	char *key;

	if (!req->coalesce || strcmp(method, "GET") != 0 || req->body || req->on_chunk)
		return start_transfer(up, req, cb, arg);
	key = coal_key(req);
	if (!key)
		return NULL;
	for (c = up->coals; c; c = c->next)
		if (!strcmp(c->key, key))
			break;
	w = calloc(1, sizeof(*w));
	if (!w) {
		free(key);
		return NULL;
	}
	w->up = up;
	w->cb = cb;
	w->arg = arg;
	if (c) {
		free(key);
		/* read by the metrics scrape from another thread: one writer, relaxed */
		__atomic_store_n(&up->coalesced, up->coalesced + 1, __ATOMIC_RELAXED);
	} else {
		c = calloc(1, sizeof(*c));
		if (!c) {
			free(key);
			free(w);
			return NULL;
		}
		c->up = up;
		c->key = key;
		c->xfer = start_transfer(up, req, coal_done, c);
		if (!c->xfer) {
			free(key);
			free(c);
			free(w);
			return NULL;
		}
		c->next = up->coals;
		up->coals = c;
	}
	w->coal = c;
	w->wnext = c->waiters;
	c->waiters = w;
	return w;
}

unsigned long sg_upstream_coalesced(const struct sg_upstream *up)
{
	return __atomic_load_n(&up->coalesced, __ATOMIC_RELAXED);
}

void sg_fetch_cancel(struct sg_fetch *f)
{
	if (!f)
		return;
	if (f->coal) {
		waiter_cancel(f);
		return;
	}
	if (f->in_cb) {
		f->cancelled = 1; /* freed when the callback returns */
		return;
	}
	unlink_fetch(f);
	free_fetch(f);
}

/* Only a streamed fetch can be paused, and a paused one gets no callback at all (not even
 * its final one) until resumed or cancelled. Pausing only sets a flag: the next piece libcurl
 * offers is refused (and kept by libcurl). Resuming delivers what is held from the loop, and
 * on_deliver lets libcurl read again once that is out. */
void sg_fetch_pause(struct sg_fetch *f, int pause)
{
	if (!f || !f->on_chunk || f->cancelled || !pause == !f->user_paused)
		return;
	f->user_paused = pause != 0;
	if (f->user_paused) {
		idle_stop(f);
		return;
	}
	schedule(f);
	idle_arm(f);
}

size_t sg_upstream_active(const struct sg_upstream *up)
{
	return up->active;
}
