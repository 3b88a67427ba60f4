/* redis.c - see redis.h.
 *
 * hiredis 0.14 (Debian bookworm) has no command timeouts of its own, so each command carries a
 * libevent timer. hiredis calls every command's callback exactly once: with the reply, or with
 * NULL when the context goes (a lost connection, our disconnect, our free). An op therefore
 * lives until that call, whether its caller's callback already ran (timeout) or was cancelled;
 * the caller's callback runs at most once. */
#include "redis.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000

enum state { DOWN, CONNECTING, UP };

struct sg_redis {
	struct event_base *base;
	char *host, *path, *password;
	int port, db;
	long timeout_ms, connect_timeout_ms;
	redisAsyncContext *ac;
	enum state state;
	int freeing;
	long backoff_ms;
	struct event *retry_ev;   /* the next connection attempt */
	struct event *connect_ev; /* the current attempt's deadline */
	struct sg_redis_stats stats;
	void (*on_up)(struct sg_redis *r, void *arg);
	void *on_up_arg;
};

struct sg_redis_op {
	struct sg_redis *r;
	sg_redis_cb cb; /* NULL once it ran or was cancelled */
	void *arg;
	struct event *timer;
	long ms; /* its deadline */
};

static void connect_now(struct sg_redis *r);

static void tv_ms(struct timeval *tv, long ms)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

/* The connection is gone (or never came): try again after the backoff. */
static void schedule_retry(struct sg_redis *r)
{
	struct timeval tv;

	r->state = DOWN;
	r->ac = NULL;
	event_del(r->connect_ev);
	if (r->freeing)
		return;
	tv_ms(&tv, r->backoff_ms);
	event_add(r->retry_ev, &tv);
	r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	connect_now(arg);
}

/* An attempt that did not connect in time: drop it (no hiredis callback is running). */
static void on_connect_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct sg_redis *r = arg;
	redisAsyncContext *ac = r->ac;

	(void)fd;
	(void)what;
	if (r->state != CONNECTING || !ac)
		return;
	sg_warn("redis: no connection within %ld ms; retrying in the background",
	        r->connect_timeout_ms);
	r->ac = NULL;
	redisAsyncFree(ac); /* not connected: no disconnect callback */
	schedule_retry(r);
}

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	redisReply *rep = reply;

	(void)privdata;
	if (rep && rep->type == REDIS_REPLY_ERROR) {
		sg_warn("redis: connection set-up refused (%.*s); dropping it", (int)rep->len,
		        rep->str ? rep->str : "");
		redisAsyncDisconnect(ac);
	}
}

static void on_connect(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *)cac;
	struct sg_redis *r = ac->data;

	if (!r)
		return;
	event_del(r->connect_ev);
	if (status != REDIS_OK) {
		/* hiredis frees the context after this callback */
		sg_debug("redis: cannot connect: %s", ac->errstr);
		schedule_retry(r);
		return;
	}
	r->state = UP;
	r->backoff_ms = BACKOFF_FIRST_MS;
	r->stats.connects++;
	sg_info("redis: connected");
	/* ahead of any command: they go out in order on the one connection */
	if (r->password) {
		const char *argv[] = {"AUTH", r->password};
		const size_t lens[] = {4, strlen(r->password)};

		redisAsyncCommandArgv(ac, on_setup_reply, NULL, 2, argv, lens);
	}
	if (r->db > 0) {
		char db[16];
		const char *argv[] = {"SELECT", db};
		size_t lens[2] = {6, 0};

		lens[1] = (size_t)snprintf(db, sizeof(db), "%d", r->db);
		redisAsyncCommandArgv(ac, on_setup_reply, NULL, 2, argv, lens);
	}
	if (r->on_up)
		r->on_up(r, r->on_up_arg);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
	struct sg_redis *r = cac->data;

	(void)status;
	if (!r)
		return;
	r->stats.losses++;
	if (!r->freeing)
		sg_warn("redis: connection lost%s%s; reconnecting in the background",
		        cac->errstr[0] ? ": " : "", cac->errstr);
	schedule_retry(r);
}

static void connect_now(struct sg_redis *r)
{
	redisAsyncContext *ac;
	struct timeval tv;

	if (r->freeing || r->state != DOWN)
		return;
	ac = r->path ? redisAsyncConnectUnix(r->path) : redisAsyncConnect(r->host, r->port);
	if (!ac || ac->err) {
		sg_debug("redis: cannot connect: %s", ac ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		schedule_retry(r);
		return;
	}
	ac->data = r;
	if (redisLibeventAttach(ac, r->base) != REDIS_OK ||
	    redisAsyncSetConnectCallback(ac, on_connect) != REDIS_OK ||
	    redisAsyncSetDisconnectCallback(ac, on_disconnect) != REDIS_OK) {
		ac->data = NULL;
		redisAsyncFree(ac);
		schedule_retry(r);
		return;
	}
	r->ac = ac;
	r->state = CONNECTING;
	tv_ms(&tv, r->connect_timeout_ms);
	event_add(r->connect_ev, &tv);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct sg_redis *sg_redis_new(struct event_base *base, const struct sg_redis_cfg *cfg)
{
	struct sg_redis *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->base = base;
	r->host = dup_or_null(cfg->host);
	r->path = dup_or_null(cfg->path);
	r->password = dup_or_null(cfg->password);
	r->port = cfg->port;
	r->db = cfg->db;
	r->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 1000;
	r->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 1000;
	r->backoff_ms = BACKOFF_FIRST_MS;
	r->retry_ev = event_new(base, -1, 0, on_retry, r);
	r->connect_ev = event_new(base, -1, 0, on_connect_deadline, r);
	if ((cfg->host && !r->host) || (cfg->path && !r->path) || (cfg->password && !r->password) ||
	    !r->retry_ev || !r->connect_ev) {
		sg_redis_free(r);
		return NULL;
	}
	connect_now(r);
	return r;
}

void sg_redis_free(struct sg_redis *r)
{
	if (!r)
		return;
	r->freeing = 1;
	if (r->ac) {
		redisAsyncContext *ac = r->ac;

		r->ac = NULL;
		redisAsyncFree(ac); /* pending callbacks run with NULL: their ops are freed */
	}
	if (r->retry_ev)
		event_free(r->retry_ev);
	if (r->connect_ev)
		event_free(r->connect_ev);
	free(r->host);
	free(r->path);
	free(r->password);
	free(r);
}

void sg_redis_on_up(struct sg_redis *r, void (*fn)(struct sg_redis *r, void *arg), void *arg)
{
	r->on_up = fn;
	r->on_up_arg = arg;
}

int sg_redis_up(const struct sg_redis *r)
{
	return r && r->state == UP && r->ac;
}

/* hiredis's one call for an op: its reply, or NULL when the context goes. */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct sg_redis_op *op = privdata;
	sg_redis_cb cb = op->cb;

	(void)ac;
	op->cb = NULL;
	event_free(op->timer);
	if (cb)
		cb(reply ? SG_REDIS_OK : SG_REDIS_DOWN, reply, op->arg);
	free(op);
}

/* No reply in time: the caller hears so now, and the connection is dropped (what it sends
 * after this is not to be trusted to arrive in time either). */
static void on_op_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct sg_redis_op *op = arg;
	struct sg_redis *r = op->r;
	sg_redis_cb cb = op->cb;

	(void)fd;
	(void)what;
	if (!cb)
		return;
	op->cb = NULL;
	r->stats.timeouts++;
	cb(SG_REDIS_TIMEOUT, NULL, op->arg);
	if (r->ac && r->state == UP) {
		redisAsyncContext *ac = r->ac;

		sg_warn("redis: no reply within %ld ms; dropping the connection", op->ms);
		/* at once, replies pending or not (redisAsyncDisconnect would wait for them); op is
		 * freed too: its hiredis call comes now, with NULL */
		redisAsyncFree(ac);
	}
}

struct sg_redis_op *sg_redis_cmd(struct sg_redis *r, int argc, const char **argv,
                                 const size_t *lens, sg_redis_cb cb, void *arg)
{
	return sg_redis_cmd_ms(r, argc, argv, lens, 0, cb, arg);
}

struct sg_redis_op *sg_redis_cmd_ms(struct sg_redis *r, int argc, const char **argv,
                                    const size_t *lens, long timeout_ms, sg_redis_cb cb, void *arg)
{
	struct sg_redis_op *op;
	struct timeval tv;

	if (!sg_redis_up(r)) {
		if (r)
			r->stats.refused++;
		return NULL;
	}
	op = calloc(1, sizeof(*op));
	if (!op)
		return NULL;
	op->r = r;
	op->cb = cb;
	op->arg = arg;
	op->timer = event_new(r->base, -1, 0, on_op_deadline, op);
	if (!op->timer ||
	    redisAsyncCommandArgv(r->ac, on_reply, op, argc, argv, lens) != REDIS_OK) {
		if (op->timer)
			event_free(op->timer);
		free(op);
		r->stats.refused++;
		return NULL;
	}
	op->ms = timeout_ms > 0 ? timeout_ms : r->timeout_ms;
	tv_ms(&tv, op->ms);
	event_add(op->timer, &tv);
	return op;
}

void sg_redis_cancel(struct sg_redis_op *op)
{
	if (!op)
		return;
	op->cb = NULL;
	event_del(op->timer);
}

struct sg_redis_stats sg_redis_stats(const struct sg_redis *r)
{
	return r->stats;
}
