/* idem.c - see idem.h.
 *
 * A chained hash table for lookups and one list in order of last change for expiry and
 * eviction (the window is the same for every entry, so the oldest is always at the head).
 * One mutex: the critical sections are a lookup and a few pointer moves. */
#include "idem.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct entry {
	char *key;
	uint8_t fp[32];
	int pending;
	struct sg_idem_answer answer;
	int64_t at_ms;             /* last change */
	struct entry *hnext;       /* hash chain */
	struct entry *prev, *next; /* age list */
};

struct sg_idem {
	pthread_mutex_t lock;
	struct entry **buckets;
	size_t nbuckets, count, bytes;
	size_t max_keys, max_bytes;
	long window_ms;
	struct entry *oldest, *newest;
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct entry **slot(struct sg_idem *s, const char *key)
{
	struct entry **e = &s->buckets[hash(key) % s->nbuckets];

	while (*e && strcmp((*e)->key, key))
		e = &(*e)->hnext;
	return e;
}

static void age_unlink(struct sg_idem *s, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		s->oldest = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		s->newest = e->prev;
	e->prev = e->next = NULL;
}

static void age_append(struct sg_idem *s, struct entry *e)
{
	e->prev = s->newest;
	if (s->newest)
		s->newest->next = e;
	else
		s->oldest = e;
	s->newest = e;
}

static void drop(struct sg_idem *s, struct entry *e)
{
	struct entry **p = slot(s, e->key);

	*p = e->hnext;
	age_unlink(s, e);
	s->count--;
	s->bytes -= e->answer.len;
	free(e->answer.body);
	free(e->key);
	free(e);
}

/* Drops answered entries older than the window, then, while over a bound, the oldest
 * answered ones. Returns 0 when there is room for one more entry. */
static int make_room(struct sg_idem *s, int64_t now_ms)
{
	struct entry *e = s->oldest, *next;
	size_t evicted = 0;

	for (; e && e->at_ms + s->window_ms <= now_ms; e = next) {
		next = e->next;
		if (!e->pending)
			drop(s, e);
	}
	for (e = s->oldest; e && (s->count >= s->max_keys || s->bytes > s->max_bytes); e = next) {
		next = e->next;
		if (!e->pending) {
			drop(s, e);
			evicted++;
		}
	}
	if (evicted)
		sg_warn("idempotency store full: %zu answered key(s) evicted inside their window",
		        evicted);
	return s->count < s->max_keys ? 0 : -1;
}

struct sg_idem *sg_idem_new(size_t max_keys, size_t max_bytes, long window_ms)
{
	struct sg_idem *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->nbuckets = max_keys < 64 ? 64 : max_keys;
	s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
	if (!s->buckets) {
		free(s);
		return NULL;
	}
	s->max_keys = max_keys ? max_keys : 1;
	s->max_bytes = max_bytes;
	s->window_ms = window_ms;
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

void sg_idem_free(struct sg_idem *s)
{
	if (!s)
		return;
	while (s->oldest)
		drop(s, s->oldest);
	pthread_mutex_destroy(&s->lock);
	free(s->buckets);
	free(s);
}

enum sg_idem_state sg_idem_begin(struct sg_idem *s, const char *key, const uint8_t fp[32],
                                 int64_t now_ms, struct sg_idem_answer *answer)
{
	enum sg_idem_state st;
	struct entry *e;

	pthread_mutex_lock(&s->lock);
	e = *slot(s, key);
	if (e && !e->pending && e->at_ms + s->window_ms <= now_ms) {
		drop(s, e); /* expired: as if never seen */
		e = NULL;
	}
	if (e) {
		if (memcmp(e->fp, fp, 32) != 0) {
			st = SG_IDEM_MISMATCH;
		} else if (e->pending) {
			st = SG_IDEM_PENDING;
		} else {
			*answer = e->answer;
			answer->body = malloc(e->answer.len + 1);
			if (answer->body) {
				memcpy(answer->body, e->answer.body, e->answer.len);
				answer->body[e->answer.len] = '\0';
				st = SG_IDEM_REPLAY;
			} else {
				st = SG_IDEM_FULL;
			}
		}
		goto out;
	}
	st = SG_IDEM_FULL;
	if (make_room(s, now_ms) != 0)
		goto out;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->key = strdup(key))) {
		free(e);
		goto out;
	}
	memcpy(e->fp, fp, 32);
	e->pending = 1;
	e->at_ms = now_ms;
	e->hnext = s->buckets[hash(key) % s->nbuckets];
	s->buckets[hash(key) % s->nbuckets] = e;
	age_append(s, e);
	s->count++;
	st = SG_IDEM_NEW;
out:
	pthread_mutex_unlock(&s->lock);
	return st;
}

void sg_idem_finish(struct sg_idem *s, const char *key, const struct sg_idem_answer *answer,
                    int64_t now_ms)
{
	struct entry *e;
	char *copy = malloc(answer->len + 1);

	pthread_mutex_lock(&s->lock);
	e = *slot(s, key);
	if (!e || !e->pending) {
		pthread_mutex_unlock(&s->lock);
		free(copy);
		return;
	}
	if (!copy) {
		/* Keeping nothing would let a retry run the write again: keep the key, say
		 * nothing more than that it was answered. */
		sg_warn("idempotency: out of memory keeping an answer; the key stays blocked");
		e->answer.status = 500;
	} else {
		memcpy(copy, answer->body, answer->len);
		copy[answer->len] = '\0';
		e->answer = *answer;
		e->answer.body = copy;
		s->bytes += answer->len;
	}
	e->pending = 0;
	e->at_ms = now_ms;
	age_unlink(s, e);
	age_append(s, e);
	pthread_mutex_unlock(&s->lock);
}

void sg_idem_abandon(struct sg_idem *s, const char *key)
{
	struct entry *e;

	pthread_mutex_lock(&s->lock);
	e = *slot(s, key);
	if (e && e->pending)
		drop(s, e);
	pthread_mutex_unlock(&s->lock);
}

size_t sg_idem_count(struct sg_idem *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->count;
	pthread_mutex_unlock(&s->lock);
	return n;
}

int sg_idem_key_valid(const char *v)
{
	size_t n = v ? strlen(v) : 0;

	if (n == 0 || n > SG_IDEM_KEY_MAX)
		return 0;
	for (; *v; v++)
		if ((unsigned char)*v < 0x21 || (unsigned char)*v > 0x7e)
			return 0;
	return 1;
}
