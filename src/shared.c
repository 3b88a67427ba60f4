/* shared.c - see shared.h.
 *
 * The stored form (all integers little-endian):
 *   "SGSNAP1\n", u32 listings;
 *   per listing: u32 kind, u32 items;
 *   per item, in keyset order: i64 t, i64 agent_version, u32 status, u32 archived, then six
 *   u32 lengths (text, id, agent_id, deployment_id, type, resources as compact JSON;
 *   0xffffffff for an absent string), then those bytes in that order. */
#include "shared.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "crypto.h"
#include "mapping.h"
#include "log.h"
#include "redis.h"

#define MAGIC "SGSNAP1\n"
#define MAGIC_LEN 8
#define NONE 0xffffffffu
#define ITEM_HEAD (8 + 8 + 4 + 4 + 6 * 4)
#define MAX_LISTINGS 64 /* SG_MAX_ROUTES */

static pthread_once_t nonce_once = PTHREAD_ONCE_INIT;
static uint64_t nonce; /* written once, under nonce_once */

static void nonce_init(void)
{
	if (sg_random(&nonce, sizeof(nonce)))
		nonce = (uint64_t)time(NULL) * 6364136223846793005ULL ^ (uint64_t)getpid();
}

uint64_t sg_shared_nonce(void)
{
	pthread_once(&nonce_once, nonce_init);
	return nonce;
}

/* ---- the stored form ----------------------------------------------------------------------- */

static void put32(char **p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		*(*p)++ = (char)(v >> (8 * i));
}

static void put64(char **p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		*(*p)++ = (char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static size_t slen(const char *s)
{
	return s ? strlen(s) : 0;
}

static void put_str_len(char **p, const char *s)
{
	put32(p, s ? (uint32_t)strlen(s) : NONE);
}

static void put_bytes(char **p, const char *s, size_t n)
{
	if (s && n) {
		memcpy(*p, s, n);
		*p += n;
	}
}

char *sg_snap_encode(struct sg_held *const *v, size_t n, size_t max, size_t *len)
{
	size_t need = MAGIC_LEN + 4;
	char **res = NULL, *buf = NULL, *p;
	size_t nres = 0, r = 0;

	if (n > MAX_LISTINGS)
		return NULL;
	/* the size first: a snapshot over max costs no copy */
	for (size_t l = 0; l < n; l++) {
		size_t cnt = sg_held_count(v[l]);

		need += 8;
		for (size_t i = 0; i < cnt; i++) {
			const struct sg_held_item *it = sg_held_at(v[l], i);

			if (!it->text || it->obj || it->len >= NONE) /* not sealed */
				return NULL;
			need += ITEM_HEAD + it->len + slen(it->id) + slen(it->agent_id) +
			        slen(it->deployment_id) + slen(it->type);
			nres += it->resources != NULL;
			if (need > max)
				return NULL;
		}
	}
	if (nres && !(res = calloc(nres, sizeof(*res))))
		return NULL;
	for (size_t l = 0; l < n; l++)
		for (size_t i = 0; i < sg_held_count(v[l]); i++) {
			const struct sg_held_item *it = sg_held_at(v[l], i);

			if (!it->resources)
				continue;
			res[r] = json_dumps(it->resources, JSON_COMPACT);
			if (!res[r])
				goto out;
			need += strlen(res[r++]);
			if (need > max)
				goto out;
		}
	buf = malloc(need);
	if (!buf)
		goto out;
	p = buf;
	memcpy(p, MAGIC, MAGIC_LEN);
	p += MAGIC_LEN;
	put32(&p, (uint32_t)n);
	r = 0;
	for (size_t l = 0; l < n; l++) {
		size_t cnt = sg_held_count(v[l]);

		put32(&p, (uint32_t)sg_held_kind_of(v[l]));
		put32(&p, (uint32_t)cnt);
		for (size_t i = 0; i < cnt; i++) {
			const struct sg_held_item *it = sg_held_at(v[l], i);
			const char *rj = it->resources ? res[r++] : NULL;

			put64(&p, (uint64_t)it->t);
			put64(&p, (uint64_t)it->agent_version);
			put32(&p, it->status);
			put32(&p, (uint32_t)it->archived);
			put32(&p, (uint32_t)it->len);
			put_str_len(&p, it->id);
			put_str_len(&p, it->agent_id);
			put_str_len(&p, it->deployment_id);
			put_str_len(&p, it->type);
			put_str_len(&p, rj);
			put_bytes(&p, it->text, it->len);
			put_bytes(&p, it->id, slen(it->id));
			put_bytes(&p, it->agent_id, slen(it->agent_id));
			put_bytes(&p, it->deployment_id, slen(it->deployment_id));
			put_bytes(&p, it->type, slen(it->type));
			put_bytes(&p, rj, slen(rj));
		}
	}
	*len = (size_t)(p - buf);
out:
	for (size_t i = 0; i < nres; i++)
		free(res[i]);
	free(res);
	if (buf && p - buf != (ptrdiff_t)need) { /* cannot happen: the sizes were counted */
		free(buf);
		buf = NULL;
	}
	return buf;
}

struct sg_snap_dec {
	unsigned char *buf;
	size_t len, at;
	uint32_t nlists, li; /* listings, the one being rebuilt */
	uint32_t left;       /* its items still to add */
	struct sg_held *cur;
	struct sg_held **v;
	struct sg_held_set *set; /* once done */
};

struct sg_snap_dec *sg_snap_dec_new(const char *buf, size_t len)
{
	struct sg_snap_dec *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->buf = malloc(len ? len : 1);
	if (!d->buf) {
		free(d);
		return NULL;
	}
	memcpy(d->buf, buf, len);
	d->len = len;
	return d;
}

/* n bytes at the current position, or NULL when fewer are left (advances past them). */
static const unsigned char *take(struct sg_snap_dec *d, size_t n)
{
	const unsigned char *p;

	if (n > d->len - d->at)
		return NULL;
	p = d->buf + d->at;
	d->at += n;
	return p;
}

/* A string of length l (NONE: absent) at the position, copied NUL-terminated into tmp (which
 * has room for l + 1); *ok = 0 when it runs off the end. */
static const char *take_str(struct sg_snap_dec *d, uint32_t l, char *tmp, int *ok)
{
	const unsigned char *p;

	if (l == NONE)
		return NULL;
	if (!(p = take(d, l))) {
		*ok = 0;
		return NULL;
	}
	memcpy(tmp, p, l);
	tmp[l] = '\0';
	return tmp;
}

static int add_item(struct sg_snap_dec *d)
{
	const unsigned char *h = take(d, ITEM_HEAD), *text;
	uint32_t l[6];
	struct sg_held_item k;
	struct sg_error err = {0};
	char *tmp = NULL, *id, *agent, *dep, *type, *res;
	size_t room = 0;
	int ok = 1, rc = -1;

	if (!h)
		return -1;
	memset(&k, 0, sizeof(k));
	k.t = (int64_t)get64(h);
	k.agent_version = (int64_t)get64(h + 8);
	k.status = get32(h + 16);
	k.archived = get32(h + 20) != 0;
	for (int i = 0; i < 6; i++) {
		l[i] = get32(h + 24 + 4 * i);
		if (l[i] != NONE && l[i] > d->len) /* runs off the end: take() says so below */
			return -1;
		room += l[i] == NONE ? 1 : l[i] + 1;
	}
	if (l[0] == NONE || l[1] == NONE || !(text = take(d, l[0])) || !(tmp = malloc(room)))
		return -1;
	id = tmp;
	agent = id + l[1] + 1;
	dep = agent + (l[2] == NONE ? 1 : l[2] + 1);
	type = dep + (l[3] == NONE ? 1 : l[3] + 1);
	res = type + (l[4] == NONE ? 1 : l[4] + 1);
	k.id = take_str(d, l[1], id, &ok);
	k.agent_id = take_str(d, l[2], agent, &ok);
	k.deployment_id = take_str(d, l[3], dep, &ok);
	k.type = take_str(d, l[4], type, &ok);
	if (ok && take_str(d, l[5], res, &ok)) {
		k.resources = json_loads(res, 0, NULL);
		ok = json_is_array(k.resources);
	}
	if (ok && sg_held_add_rendered(d->cur, &k, (const char *)text, l[0], &err) == 0)
		rc = 0;
	json_decref(k.resources);
	free(tmp);
	return rc;
}

int sg_snap_dec_step(struct sg_snap_dec *d, size_t budget)
{
	size_t stop = d->at + budget;
	const unsigned char *p;
	struct sg_error err = {0};

	if (d->set)
		return 0;
	if (!d->v) {
		if (!(p = take(d, MAGIC_LEN + 4)) || memcmp(p, MAGIC, MAGIC_LEN))
			return -1;
		d->nlists = get32(p + MAGIC_LEN);
		if (d->nlists == 0 || d->nlists > MAX_LISTINGS ||
		    !(d->v = calloc(d->nlists, sizeof(*d->v))))
			return -1;
	}
	while (d->at < stop || d->li == d->nlists) {
		if (!d->cur) {
			uint32_t kind;

			if (d->li == d->nlists) {
				if (d->at != d->len)
					return -1;
				d->set = sg_held_set_new(d->v, d->nlists);
				return d->set ? 0 : -1;
			}
			if (!(p = take(d, 8)))
				return -1;
			kind = get32(p);
			d->left = get32(p + 4);
			if (kind != SG_HELD_SESSIONS && kind != SG_HELD_EVENTS)
				return -1;
			/* each item takes at least ITEM_HEAD bytes: a count beyond that is a lie */
			if (d->left > (d->len - d->at) / ITEM_HEAD)
				return -1;
			if (!(d->cur = sg_held_begin((enum sg_held_kind)kind, 1)))
				return -1;
		}
		if (d->left > 0) {
			if (add_item(d))
				return -1;
			d->left--;
			continue;
		}
		if (sg_held_end(d->cur, &err))
			return -1;
		d->v[d->li++] = d->cur;
		d->cur = NULL;
	}
	return 1;
}

struct sg_held_set *sg_snap_dec_take(struct sg_snap_dec *d)
{
	struct sg_held_set *s = d->set;

	d->set = NULL;
	return s;
}

void sg_snap_dec_free(struct sg_snap_dec *d)
{
	if (!d)
		return;
	sg_held_release(d->cur);
	for (uint32_t i = 0; d->v && i < d->nlists; i++)
		sg_held_release(d->v[i]);
	free(d->v);
	sg_held_set_release(d->set);
	free(d->buf);
	free(d);
}

/* ---- in Redis ------------------------------------------------------------------------------- */

char *sg_snap_scope(const struct sg_key *key)
{
	uint8_t d[SG_SHA256_LEN];
	json_t *what = json_array();
	char *text = NULL, *out = NULL;
	size_t n;

	for (size_t i = 0; what && i < key->nroutes; i++) {
		const struct sg_route *rt = &key->routes[i];

		json_array_append_new(what, json_pack("[s, s, s, O?]", rt->backend->name,
		                                      rt->backend->mapping->name, rt->backend->url,
		                                      rt->identity));
	}
	if (what)
		text = json_dumps(what, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	json_decref(what);
	if (!text)
		return NULL;
	sg_sha256(text, strlen(text), d);
	sg_wipe(text, strlen(text)); /* identities are not secrets, but need not linger */
	free(text);
	n = strlen(key->name) + 1 + 16 + 1;
	out = malloc(n);
	if (out)
		snprintf(out, n, "%s:%02x%02x%02x%02x%02x%02x%02x%02x", key->name, d[0], d[1], d[2],
		         d[3], d[4], d[5], d[6], d[7]);
	return out;
}

/* The key: prefix "snap:" scope ":" name (new string, *len bytes), or NULL. */
static char *snap_key(const struct sg_snap_where *w, size_t *len)
{
	size_t n = strlen(w->prefix) + 5 + strlen(w->principal) + 1 + strlen(w->name);
	char *k = malloc(n + 1);

	if (!k)
		return NULL;
	snprintf(k, n + 1, "%ssnap:%s:%s", w->prefix, w->principal, w->name);
	*len = n;
	return k;
}

static void log_put(enum sg_redis_status st, const struct redisReply *reply, const char *what)
{
	if (st != SG_REDIS_OK || reply->type == REDIS_REPLY_ERROR)
		sg_debug(
		    "redis: a walk snapshot's %s was not kept (%s); the walk goes on from this "
		    "instance's copy",
		    what,
		    st == SG_REDIS_TIMEOUT ? "timeout"
		    : st == SG_REDIS_DOWN  ? "down"
		                           : "error reply");
}

static void on_put(enum sg_redis_status st, const struct redisReply *reply, void *arg)
{
	log_put(st, reply, arg);
}

void sg_shared_snap_stored(enum sg_redis_status st, const struct redisReply *reply)
{
	log_put(st, reply, "store");
}

struct sg_redis_op *sg_shared_snap_put(struct sg_redis *r, long timeout_ms,
                                       const struct sg_snap_where *w, struct sg_held *const *v,
                                       size_t n, long ttl_ms, sg_redis_cb cb, void *arg)
{
	size_t klen, vlen = 0;
	char *key, *val, px[24];
	const char *argv[5];
	size_t lens[5];
	struct sg_redis_op *op = NULL;

	if (!sg_redis_up(r) || ttl_ms <= 0)
		return NULL;
	val = sg_snap_encode(v, n, SG_SHARED_SNAP_MAX, &vlen);
	if (!val) {
		sg_debug("redis: a walk snapshot over %zu bytes is not shared", SG_SHARED_SNAP_MAX);
		return NULL;
	}
	key = snap_key(w, &klen);
	if (key) {
		argv[0] = "SET";
		lens[0] = 3;
		argv[1] = key;
		lens[1] = klen;
		argv[2] = val;
		lens[2] = vlen;
		argv[3] = "PX";
		lens[3] = 2;
		lens[4] = (size_t)snprintf(px, sizeof(px), "%ld", ttl_ms);
		argv[4] = px;
		/* hiredis copies the command: the buffers go at once */
		timeout_ms += (long)(vlen / SG_SHARED_BYTES_PER_MS);
		op = cb ? sg_redis_cmd_ms(r, 5, argv, lens, timeout_ms, cb, arg)
		        : sg_redis_cmd_ms(r, 5, argv, lens, timeout_ms, on_put, "store");
		if (!op)
			sg_debug("redis: a walk snapshot was not sent; not shared");
	}
	free(key);
	free(val);
	return op;
}

void sg_shared_snap_touch(struct sg_redis *r, const struct sg_snap_where *w, long ttl_ms)
{
	size_t klen;
	char *key, px[24];
	const char *argv[3];
	size_t lens[3];

	if (!sg_redis_up(r) || ttl_ms <= 0 || !(key = snap_key(w, &klen)))
		return;
	argv[0] = "PEXPIRE";
	lens[0] = 7;
	argv[1] = key;
	lens[1] = klen;
	lens[2] = (size_t)snprintf(px, sizeof(px), "%ld", ttl_ms);
	argv[2] = px;
	sg_redis_cmd(r, 3, argv, lens, on_put, "expiry");
	free(key);
}

struct sg_snap_fetch {
	struct sg_redis_op *op;
	struct event *ev; /* the next slice of the rebuild */
	struct sg_snap_dec *dec;
	sg_snap_done_cb done;
	void *arg;
	int missed; /* Redis said it has no such key */
};

/* The end: done runs last (it may free f). */
static void fetch_end(struct sg_snap_fetch *f, struct sg_held_set *set)
{
	sg_snap_done_cb done = f->done;

	f->done = NULL;
	if (done)
		done(set, f->arg);
	else
		sg_held_set_release(set);
}

static void on_slice(evutil_socket_t fd, short what, void *arg)
{
	struct sg_snap_fetch *f = arg;
	struct timeval now = {0, 0};
	int rc = sg_snap_dec_step(f->dec, SG_SHARED_SNAP_SLICE);

	(void)fd;
	(void)what;
	if (rc == 1) {
		/* a zero timeout, not event_active: the loop polls its sockets first */
		if (evtimer_add(f->ev, &now) == 0)
			return;
		rc = -1;
	}
	if (rc < 0) {
		sg_warn("redis: a walk snapshot in redis could not be read; reading the backend");
		fetch_end(f, NULL);
		return;
	}
	fetch_end(f, sg_snap_dec_take(f->dec));
}

static void on_get(enum sg_redis_status st, const struct redisReply *reply, void *arg)
{
	struct sg_snap_fetch *f = arg;
	struct timeval now = {0, 0};

	f->op = NULL;
	if (st != SG_REDIS_OK || reply->type != REDIS_REPLY_STRING) {
		f->missed = st == SG_REDIS_OK && reply->type == REDIS_REPLY_NIL;
		if (!f->missed)
			sg_debug("redis: a walk snapshot could not be fetched (%s); reading the "
			         "backend",
			         st == SG_REDIS_TIMEOUT ? "timeout"
			         : st == SG_REDIS_DOWN  ? "down"
			                                : "unexpected reply");
		fetch_end(f, NULL);
		return;
	}
	/* not one of ours (they are bounded): not copied */
	if (reply->len > SG_SHARED_SNAP_MAX) {
		sg_warn("redis: a walk snapshot in redis is over %zu bytes; reading the backend",
		        SG_SHARED_SNAP_MAX);
		fetch_end(f, NULL);
		return;
	}
	/* the reply is hiredis's until this returns: a copy, rebuilt in slices from the loop */
	f->dec = sg_snap_dec_new(reply->str, reply->len);
	if (!f->dec || evtimer_add(f->ev, &now)) {
		fetch_end(f, NULL);
		return;
	}
}

struct sg_snap_fetch *sg_snap_fetch_start(struct sg_redis *r, long timeout_ms,
                                          struct event_base *base, const struct sg_snap_where *w,
                                          sg_snap_done_cb done, void *arg)
{
	struct sg_snap_fetch *f;
	size_t klen;
	char *key;
	const char *argv[2];
	size_t lens[2];

	if (!sg_redis_up(r) || !(f = calloc(1, sizeof(*f))))
		return NULL;
	f->done = done;
	f->arg = arg;
	f->ev = evtimer_new(base, on_slice, f);
	key = snap_key(w, &klen);
	if (f->ev && key) {
		argv[0] = "GET";
		lens[0] = 3;
		argv[1] = key;
		lens[1] = klen;
		f->op = sg_redis_cmd_ms(r, 2, argv, lens, timeout_ms + SG_SHARED_FETCH_GRACE_MS,
		                        on_get, f);
	}
	free(key);
	if (!f->op) {
		f->done = NULL;
		sg_snap_fetch_free(f);
		return NULL;
	}
	return f;
}

int sg_snap_fetch_missed(const struct sg_snap_fetch *f)
{
	return f->missed;
}

void sg_snap_fetch_free(struct sg_snap_fetch *f)
{
	if (!f)
		return;
	sg_redis_cancel(f->op);
	if (f->ev)
		event_free(f->ev);
	sg_snap_dec_free(f->dec);
	free(f);
}
