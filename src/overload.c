/* overload.c - see overload.h. */
#include "overload.h"

void sg_bucket_init(struct sg_bucket *b, double rate, double burst)
{
	pthread_mutex_init(&b->mu, NULL);
	b->rate = rate;
	b->burst = burst < 1 ? 1 : burst;
	b->tokens = b->burst;
	b->last_us = -1;
}

void sg_bucket_destroy(struct sg_bucket *b)
{
	pthread_mutex_destroy(&b->mu);
}

int sg_bucket_take(struct sg_bucket *b, int64_t now_us, long *wait_s)
{
	int ok;

	pthread_mutex_lock(&b->mu);
	if (b->last_us >= 0 && now_us > b->last_us) {
		b->tokens += (double)(now_us - b->last_us) / 1e6 * b->rate;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
	}
	if (b->last_us < 0 || now_us > b->last_us)
		b->last_us = now_us;
	ok = b->tokens >= 1.0;
	if (ok) {
		b->tokens -= 1.0;
	} else if (wait_s) {
		double s = (1.0 - b->tokens) / b->rate;
		long w = (long)s;

		*wait_s = (double)w < s ? w + 1 : w;
		if (*wait_s < 1)
			*wait_s = 1;
	}
	pthread_mutex_unlock(&b->mu);
	return ok;
}

void sg_breaker_init(struct sg_breaker *b, int threshold, long open_ms)
{
	b->threshold = threshold;
	b->open_ms = open_ms;
	atomic_init(&b->failures, 0);
	atomic_init(&b->open_until_ms, 0);
	atomic_init(&b->probing, 0);
}

int sg_breaker_admit(struct sg_breaker *b, int64_t now_ms, long *retry_ms)
{
	long long until = atomic_load(&b->open_until_ms);
	int expect = 0;

	if (until == 0)
		return 1;
	if (now_ms < until) {
		*retry_ms = (long)(until - now_ms);
		return 0;
	}
	/* open, and its time is up: one probe at a time */
	if (atomic_compare_exchange_strong(&b->probing, &expect, 1))
		return 2;
	*retry_ms = b->open_ms;
	return 0;
}

void sg_breaker_report(struct sg_breaker *b, int ok, int probe, int64_t now_ms)
{
	if (b->threshold <= 0)
		return;
	if (ok) {
		atomic_store(&b->failures, 0);
		if (probe || atomic_load(&b->open_until_ms) != 0) {
			atomic_store(&b->open_until_ms, 0);
			atomic_store(&b->probing, 0);
		}
		return;
	}
	if (probe) {
		atomic_store(&b->open_until_ms, now_ms + b->open_ms);
		atomic_store(&b->probing, 0);
		return;
	}
	if (atomic_fetch_add(&b->failures, 1) + 1 >= b->threshold &&
	    atomic_load(&b->open_until_ms) == 0) {
		atomic_store(&b->open_until_ms, now_ms + b->open_ms);
		atomic_store(&b->failures, 0);
	}
}

void sg_breaker_abandon(struct sg_breaker *b)
{
	atomic_store(&b->probing, 0);
}
