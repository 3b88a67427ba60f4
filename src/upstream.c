/* upstream.c - see upstream.h.
 *
 * libcurl tells us which sockets to watch (socket_cb) and when to wake it (timer_cb); the
 * event loop calls curl_multi_socket_action back, and finished transfers are collected in
 * check_done(). User callbacks run from check_done(), i.e. never inside a libcurl callback,
 * so they may start or cancel other fetches freely.
 *
 * A request other than GET/HEAD is sent once at most: never retried here, and always on a
 * fresh connection, because libcurl resends any request whose reused connection closed
 * before an answer byte (the backend may have acted on it). */
#include "upstream.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

struct sg_upstream {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct sg_fetch *head; /* every fetch started and not finished or cancelled */
	size_t active;
};

struct sg_fetch {
	struct sg_upstream *up;
	struct sg_fetch *prev, *next;
	CURL *easy;
	struct curl_slist *headers;
	sg_fetch_cb cb;
	void *arg;
	char *buf;
	size_t len, cap, max;
	int too_large;
	int attempts, retries;
	int idempotent;         /* GET or HEAD: may be retried */
	int answered;           /* a header byte of the answer arrived in this attempt */
	struct event *retry_ev; /* backoff timer between attempts */
	struct timespec started;
	char errbuf[CURL_ERROR_SIZE];
};

/* Per-socket state handed to libcurl with curl_multi_assign. */
struct sockwatch {
	struct event *ev;
};

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long)((t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000);
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
		curl_multi_remove_handle(f->up->multi, f->easy);
		curl_easy_cleanup(f->easy);
		f->up->active--;
	}
	if (f->retry_ev)
		event_free(f->retry_ev);
	curl_slist_free_all(f->headers);
	free(f->buf);
	free(f);
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sg_fetch *f = arg;
	size_t n = size * nmemb;

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
		p = realloc(f->buf, cap);
		if (!p)
			return 0;
		f->buf = p;
		f->cap = cap;
	}
	memcpy(f->buf + f->len, data, n);
	f->len += n;
	f->buf[f->len] = '\0';
	return n;
}

/* Any header line proves the request reached the backend. */
static size_t header_cb(char *data, size_t size, size_t nitems, void *arg)
{
	struct sg_fetch *f = arg;

	(void)data;
	f->answered = 1;
	return size * nitems;
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

static enum sg_fetch_fail classify(CURLcode rc, int too_large)
{
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

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct sg_fetch *f = arg;

	(void)fd;
	(void)what;
	f->len = 0;
	f->too_large = 0;
	f->answered = 0;
	f->errbuf[0] = '\0';
	if (curl_multi_add_handle(f->up->multi, f->easy) != CURLM_OK) {
		struct sg_fetch_res res = {.fail = SG_FETCH_ERROR, .errmsg = "cannot restart transfer",
					   .attempts = f->attempts};

		unlink_fetch(f);
		f->cb(&res, f->arg);
		free_fetch(f);
	}
}

/* Collects finished transfers; retries connection failures of GETs with a short backoff,
 * otherwise hands the result to the user. */
static void check_done(struct sg_upstream *up)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(up->multi, &left))) {
		struct sg_fetch *f = NULL;
		struct sg_fetch_res res;
		char *ct = NULL;
		long request_size = 0;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&f);
		res.fail = classify(msg->data.result, f->too_large);
		curl_multi_remove_handle(up->multi, f->easy);
		/* A connection failure means nothing reached the backend, and it is only ever
		 * retried for requests that are safe to send twice anyway. */
		if (res.fail == SG_FETCH_CONNECT && f->idempotent && f->attempts <= f->retries) {
			struct timeval tv = {0, 50000L * f->attempts};

			sg_debug("upstream: retrying after: %s", f->errbuf);
			f->attempts++;
			if (!f->retry_ev)
				f->retry_ev = evtimer_new(up->base, on_retry, f);
			if (f->retry_ev && evtimer_add(f->retry_ev, &tv) == 0)
				continue;
			f->attempts--;
		}
		res.status = 0;
		curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &res.status);
		curl_easy_getinfo(f->easy, CURLINFO_CONTENT_TYPE, &ct);
		res.content_type = ct;
		res.body = f->buf ? f->buf : "";
		res.len = f->len;
		res.errmsg = f->errbuf[0] ? f->errbuf : curl_easy_strerror(msg->data.result);
		res.attempts = f->attempts;
		res.elapsed_ms = elapsed_ms(&f->started);
		/* Bytes of request written to the socket in the last attempt (libcurl resets it
		 * when an attempt starts); an answer proves it was sent even where this is not
		 * counted. */
		curl_easy_getinfo(f->easy, CURLINFO_REQUEST_SIZE, &request_size);
		res.sent = request_size > 0 || f->answered;
		unlink_fetch(f);
		/* The handle is already out of the multi; keep it alive for content_type. */
		f->cb(&res, f->arg);
		curl_easy_cleanup(f->easy);
		f->easy = NULL;
		up->active--;
		free_fetch(f);
	}
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

void sg_upstream_free(struct sg_upstream *up)
{
	if (!up)
		return;
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

struct sg_fetch *sg_fetch_start(struct sg_upstream *up, const struct sg_fetch_req *req,
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
	f->arg = arg;
	f->max = req->max_bytes ? req->max_bytes : (64u << 20);
	f->retries = req->retries;
	f->attempts = 1;
	f->idempotent = is_get || is_head;
	clock_gettime(CLOCK_MONOTONIC, &f->started);
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
	curl_easy_setopt(f->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)f->max);
	curl_easy_setopt(f->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(f->easy, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(f->easy, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(f->easy, CURLOPT_HEADERDATA, f);
	/* A proxy's CONNECT answer must not pass for the backend's. */
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
	up->active++;
	f->next = up->head;
	if (up->head)
		up->head->prev = f;
	up->head = f;
	return f;
fail:
	if (f->easy)
		curl_easy_cleanup(f->easy);
	f->easy = NULL;
	curl_slist_free_all(f->headers);
	free(f);
	return NULL;
}

void sg_fetch_cancel(struct sg_fetch *f)
{
	if (!f)
		return;
	unlink_fetch(f);
	free_fetch(f);
}

size_t sg_upstream_active(const struct sg_upstream *up)
{
	return up->active;
}
