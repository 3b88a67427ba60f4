/* overload.h - protection against too much: per-key request rates (token buckets) and
 * per-backend circuit breakers. Both are shared by every worker of the process (a mutex per
 * bucket, atomics for a breaker), so a limit holds for the process, not per worker; several
 * instances of the gateway each keep their own (a shared store is a later issue).
 *
 * A breaker counts the outcomes of a backend's fetches: a transport failure or a 5xx is a
 * failure, anything else a success. After `threshold` failures in a row it opens: calls to
 * that backend are answered at once (503 overloaded_error, x-should-retry: true, retry-after)
 * for open_ms, then one call is let through as a probe; its first outcome closes the breaker
 * or opens it again. */
#ifndef SG_OVERLOAD_H
#define SG_OVERLOAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct sg_bucket {
	pthread_mutex_t mu;
	double rate;  /* tokens per second */
	double burst; /* the most it holds */
	double tokens;
	int64_t last_us;
};

/* A bucket starting full. */
void sg_bucket_init(struct sg_bucket *b, double rate, double burst);
void sg_bucket_destroy(struct sg_bucket *b);
/* Takes one token at now_us (monotonic): 1, or 0 with *wait_s the seconds until one is
 * there (rounded up, at least 1). */
int sg_bucket_take(struct sg_bucket *b, int64_t now_us, long *wait_s);

struct sg_breaker {
	int threshold; /* failures in a row that open it (0: never opens) */
	long open_ms;
	atomic_int failures;
	atomic_llong open_until_ms; /* 0: closed */
	atomic_int probing;         /* a probe call is out */
};

void sg_breaker_init(struct sg_breaker *b, int threshold, long open_ms);
/* Whether a call may go to the backend at now_ms (monotonic): 1 (closed), 2 (as the probe of
 * an open breaker: report its first outcome with probe set), or 0 with *retry_ms until the
 * next probe may go. */
int sg_breaker_admit(struct sg_breaker *b, int64_t now_ms, long *retry_ms);
/* The probe call ended without an outcome (its client left): the next call probes. */
void sg_breaker_abandon(struct sg_breaker *b);
/* One fetch's outcome. */
void sg_breaker_report(struct sg_breaker *b, int ok, int probe, int64_t now_ms);

#endif
