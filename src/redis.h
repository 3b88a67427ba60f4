/* redis.h - one asynchronous Redis connection per worker, on the worker's own event loop
 * (hiredis's asynchronous API and its libevent adapter), for the state several instances
 * share (issue 16: idempotency keys, rate limits, shared caches).
 *
 * Nothing ever waits on Redis:
 *  - a command is sent only while the connection is up; otherwise sg_redis_cmd fails at once
 *    (returns NULL: the caller takes its documented degradation);
 *  - every command has a deadline (timeout_ms): when it passes, the callback runs with
 *    SG_REDIS_TIMEOUT and the connection is dropped (a Redis that does not answer in time is
 *    treated as down; a late reply is never delivered);
 *  - a lost or refused connection is made again in the background, 100 ms after the loss,
 *    then doubling up to 5 s between attempts, each attempt bounded by connect_timeout_ms.
 *
 * The address must be an IP literal or a Unix socket path (hiredis resolves names with a
 * blocking call; the configuration refuses names). One struct per worker, used only from that
 * worker's thread. */
#ifndef SG_REDIS_H
#define SG_REDIS_H

#include <stddef.h>

struct event_base;
struct redisReply;
struct sg_redis;
struct sg_redis_op;

struct sg_redis_cfg {
	const char *host; /* IP literal, or NULL with path set */
	int port;
	const char *path; /* Unix socket, or NULL */
	long timeout_ms;  /* per command */
	long connect_timeout_ms;
	const char *password; /* AUTH on every connect, or NULL */
	int db;               /* SELECT on every connect when > 0 */
};

enum sg_redis_status {
	SG_REDIS_OK,      /* a reply arrived (it may be an error reply: check reply->type) */
	SG_REDIS_TIMEOUT, /* no reply within timeout_ms */
	SG_REDIS_DOWN,    /* the connection was lost before the reply */
};

/* reply is borrowed for the callback's duration; NULL unless status is SG_REDIS_OK. */
typedef void (*sg_redis_cb)(enum sg_redis_status status, const struct redisReply *reply, void *arg);

/* Starts connecting at once (in the background). cfg's strings are copied. NULL when out of
 * memory. */
struct sg_redis *sg_redis_new(struct event_base *base, const struct sg_redis_cfg *cfg);
/* Drops the connection; pending callbacks run with SG_REDIS_DOWN first. */
void sg_redis_free(struct sg_redis *r);

/* fn(r, arg) runs each time a connection is made, before any other command can be sent on it
 * (a user catching up on what it could not send while Redis was away). One per client. */
void sg_redis_on_up(struct sg_redis *r, void (*fn)(struct sg_redis *r, void *arg), void *arg);

/* 1 while the connection is up (commands can be sent). */
int sg_redis_up(const struct sg_redis *r);

/* Sends one command (argc arguments of lens[i] bytes each, binary-safe). Returns a handle
 * that cancels it, or NULL when it could not be sent (not connected, out of memory): cb then
 * never runs. Otherwise cb runs exactly once, from the loop, unless cancelled first. */
struct sg_redis_op *sg_redis_cmd(struct sg_redis *r, int argc, const char **argv,
                                 const size_t *lens, sg_redis_cb cb, void *arg);
/* The same with its own deadline (timeout_ms > 0; otherwise the client's): a command that moves
 * a large value (a walk snapshot, shared.h) needs longer than the client's small commands. */
struct sg_redis_op *sg_redis_cmd_ms(struct sg_redis *r, int argc, const char **argv,
                                    const size_t *lens, long timeout_ms, sg_redis_cb cb, void *arg);
/* cb will not run (the reply, when it comes, is dropped). */
void sg_redis_cancel(struct sg_redis_op *op);

/* Counters since sg_redis_new (tests, metrics). */
struct sg_redis_stats {
	unsigned long connects; /* connections made */
	unsigned long losses;   /* connections lost or dropped */
	unsigned long timeouts; /* commands past their deadline */
	unsigned long refused;  /* commands not sent: not connected */
};
struct sg_redis_stats sg_redis_stats(const struct sg_redis *r);

#endif
