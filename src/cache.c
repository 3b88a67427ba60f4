/* cache.c - see cache.h. A hash table would be overkill for the few hundred agent
 * snapshots a worker sees: a ring of entries scanned linearly (hashes compared first) is
 * enough and keeps eviction trivial (the slot the ring points at is the oldest). */
#include "cache.h"

#include <stdlib.h>
#include <string.h>

#define KEY_MAX 512

struct entry {
	char *key;
	uint64_t hash;
	json_t *value;
	int64_t expires;
};

struct sg_cache {
	struct entry *v;
	size_t cap, next;
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

struct sg_cache *sg_cache_new(size_t capacity)
{
	struct sg_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->cap = capacity ? capacity : 1;
	c->v = calloc(c->cap, sizeof(*c->v));
	if (!c->v) {
		free(c);
		return NULL;
	}
	return c;
}

static void clear(struct entry *e)
{
	free(e->key);
	json_decref(e->value);
	memset(e, 0, sizeof(*e));
}

void sg_cache_free(struct sg_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->cap; i++)
		clear(&c->v[i]);
	free(c->v);
	free(c);
}

static struct entry *find(struct sg_cache *c, const char *key, uint64_t h)
{
	for (size_t i = 0; i < c->cap; i++)
		if (c->v[i].key && c->v[i].hash == h && strcmp(c->v[i].key, key) == 0)
			return &c->v[i];
	return NULL;
}

json_t *sg_cache_get(struct sg_cache *c, const char *key, int64_t now_ms)
{
	struct entry *e = c ? find(c, key, fnv1a(key)) : NULL;

	if (!e)
		return NULL;
	if (e->expires <= now_ms) {
		clear(e);
		return NULL;
	}
	return json_incref(e->value);
}

void sg_cache_put(struct sg_cache *c, const char *key, json_t *value, int64_t now_ms,
                  int64_t ttl_ms)
{
	uint64_t h;
	struct entry *e;

	if (!c || !value || strlen(key) > KEY_MAX || ttl_ms <= 0)
		return;
	h = fnv1a(key);
	e = find(c, key, h);
	if (!e) {
		e = &c->v[c->next];
		c->next = (c->next + 1) % c->cap;
		clear(e);
		e->key = strdup(key);
		if (!e->key)
			return;
		e->hash = h;
	} else {
		json_decref(e->value);
	}
	e->value = json_incref(value);
	e->expires = now_ms + ttl_ms;
}
