/* held.c - see held.h. */
#include "held.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "timeutil.h"

struct sg_held {
	atomic_int refs; /* sealed listings are shared by the workers (api_read.c) */
	enum sg_held_kind kind;
	int sealed;
	int seal_as_added;
	uint64_t uid;
	size_t n, cap;
	size_t bytes; /* of everything but unrendered objects */
	struct sg_held_item *v;
	size_t *pos_of_seq; /* events */
};

static atomic_uint_fast64_t next_uid = 1;

static const char *str_of(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

int sg_held_keys(const json_t *obj, enum sg_held_kind kind, struct sg_held_item *it)
{
	const char *ts;

	memset(it, 0, sizeof(*it));
	it->agent_version = -1;
	if (kind == SG_HELD_EVENTS) {
		it->type = str_of(obj, "type");
		it->id = str_of(obj, "id");
		ts = str_of(obj, "processed_at");
		return it->type && ts && sg_time_parse_rfc3339(ts, &it->t) == 0 ? 0 : -1;
	} else {
		const json_t *agent = json_object_get(obj, "agent"), *arch, *ver, *res;

		it->id = str_of(obj, "id");
		if (str_of(obj, "status"))
			it->status = sg_status_from_string(str_of(obj, "status"));
		arch = json_object_get(obj, "archived_at");
		it->archived = arch && !json_is_null(arch);
		it->agent_id = str_of(agent, "id");
		ver = json_object_get(agent, "version");
		if (json_is_integer(ver))
			it->agent_version = json_integer_value(ver);
		it->deployment_id = str_of(obj, "deployment_id");
		res = json_object_get(obj, "resources");
		it->resources = json_array_size(res) > 0 ? (json_t *)res : NULL;
		ts = str_of(obj, "created_at");
		return it->id && ts && sg_time_parse_rfc3339(ts, &it->t) == 0 ? 0 : -1;
	}
}

static int cmp_sessions(const void *a, const void *b)
{
	const struct sg_held_item *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return strcmp(x->id, y->id);
}

static int cmp_events(const void *a, const void *b)
{
	const struct sg_held_item *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int render(const struct sg_held *hc, struct sg_held_item *it)
{
	struct sg_held *h = (struct sg_held *)hc;

	if (it->text)
		return 0;
	it->text = json_dumps(it->obj, JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (!it->text)
		return -1;
	it->len = strlen(it->text);
	h->bytes += sg_cache_chunk(it->len + 1);
	return 0;
}

const char *sg_held_text(const struct sg_held *h, const struct sg_held_item *it, size_t *len)
{
	if (render(h, (struct sg_held_item *)it))
		return NULL;
	*len = it->len;
	return it->text;
}

/* Copies a borrowed string to the end of the item's block; returns the copy. */
static const char *keep(char *block, size_t *at, const char *s)
{
	size_t n;
	char *out;

	if (!s)
		return NULL;
	n = strlen(s) + 1;
	out = block + *at;
	memcpy(out, s, n);
	*at += n;
	return out;
}

/* Renders the item and moves the filters' strings into the rendering's block, after its NUL;
 * the object goes. -1 when out of memory (the item is left as it was). */
static int seal_item(struct sg_held *h, struct sg_held_item *it)
{
	size_t need, at, before;
	char *block;

	if (!it->obj)
		return 0;
	if (render(h, it))
		return -1;
	at = it->len + 1;
	need = at + (it->id ? strlen(it->id) + 1 : 0) +
	       (it->agent_id ? strlen(it->agent_id) + 1 : 0) +
	       (it->deployment_id ? strlen(it->deployment_id) + 1 : 0) +
	       (it->type ? strlen(it->type) + 1 : 0);
	block = realloc(it->text, need);
	if (!block)
		return -1;
	before = sg_cache_chunk(it->len + 1);
	it->text = block;
	it->id = keep(block, &at, it->id);
	it->agent_id = keep(block, &at, it->agent_id);
	it->deployment_id = keep(block, &at, it->deployment_id);
	it->type = keep(block, &at, it->type);
	h->bytes += sg_cache_chunk(need) - before;
	if (it->resources) {
		json_incref(it->resources);
		h->bytes += sg_cache_value_bytes(it->resources);
	}
	json_decref(it->obj);
	it->obj = NULL;
	return 0;
}

int sg_held_seal(struct sg_held *h)
{
	if (h->sealed)
		return 0;
	for (size_t i = 0; i < h->n; i++)
		if (seal_item(h, &h->v[i]))
			return -1;
	h->sealed = 1;
	return 0;
}

struct sg_held *sg_held_begin(enum sg_held_kind kind, int seal)
{
	struct sg_held *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	atomic_init(&h->refs, 1);
	h->kind = kind;
	h->seal_as_added = seal;
	h->uid = atomic_fetch_add(&next_uid, 1);
	return h;
}

int sg_held_add(struct sg_held *h, json_t *obj, struct sg_error *err)
{
	struct sg_held_item *it;

	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct sg_held_item *v = realloc(h->v, cap * sizeof(*v));

		if (!v) {
			json_decref(obj);
			return sg_err_internal(err, "out of memory");
		}
		h->v = v;
		h->cap = cap;
	}
	it = &h->v[h->n];
	if (sg_held_keys(obj, h->kind, it)) {
		json_decref(obj);
		return sg_err_internal(err, h->kind == SG_HELD_EVENTS
		                                ? "an event without a readable type or processed_at"
		                                : "a session without a readable id or created_at");
	}
	it->seq = h->n;
	it->obj = obj;
	h->n++;
	if (h->seal_as_added && seal_item(h, it))
		return sg_err_internal(err, "out of memory");
	return 0;
}

int sg_held_add_rendered(struct sg_held *h, const struct sg_held_item *k, const char *text,
                         size_t len, struct sg_error *err)
{
	struct sg_held_item *it;
	size_t need, at;
	char *block;

	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct sg_held_item *v = realloc(h->v, cap * sizeof(*v));

		if (!v)
			return sg_err_internal(err, "out of memory");
		h->v = v;
		h->cap = cap;
	}
	need = len + 1 + (k->id ? strlen(k->id) + 1 : 0) +
	       (k->agent_id ? strlen(k->agent_id) + 1 : 0) +
	       (k->deployment_id ? strlen(k->deployment_id) + 1 : 0) +
	       (k->type ? strlen(k->type) + 1 : 0);
	block = malloc(need);
	if (!block)
		return sg_err_internal(err, "out of memory");
	memcpy(block, text, len);
	block[len] = '\0';
	at = len + 1;
	it = &h->v[h->n];
	*it = *k;
	it->seq = h->n;
	it->obj = NULL;
	it->text = block;
	it->len = len;
	it->id = keep(block, &at, k->id);
	it->agent_id = keep(block, &at, k->agent_id);
	it->deployment_id = keep(block, &at, k->deployment_id);
	it->type = keep(block, &at, k->type);
	it->resources = json_incref(k->resources);
	h->bytes +=
	    sg_cache_chunk(need) + (it->resources ? sg_cache_value_bytes(it->resources) : 0);
	h->n++;
	return 0;
}

int sg_held_end(struct sg_held *h, struct sg_error *err)
{
	size_t n = h->n;

	if (n > 1)
		qsort(h->v, n, sizeof(*h->v),
		      h->kind == SG_HELD_EVENTS ? cmp_events : cmp_sessions);
	if (h->kind == SG_HELD_EVENTS) {
		h->pos_of_seq = calloc(n ? n : 1, sizeof(size_t));
		if (!h->pos_of_seq)
			return sg_err_internal(err, "out of memory");
		for (size_t i = 0; i < n; i++)
			h->pos_of_seq[h->v[i].seq] = i;
	}
	h->bytes += sg_cache_chunk(sizeof(*h)) + sg_cache_chunk(h->cap * sizeof(*h->v)) +
	            (h->pos_of_seq ? sg_cache_chunk(n * sizeof(size_t)) : 0);
	h->sealed = h->seal_as_added;
	return 0;
}

struct sg_held *sg_held_new(const json_t *items, enum sg_held_kind kind, struct sg_error *err)
{
	struct sg_held *h = sg_held_begin(kind, 0);
	json_t *o;
	size_t i;

	if (!h) {
		sg_err_internal(err, "out of memory");
		return NULL;
	}
	json_array_foreach(items, i, o)
		if (sg_held_add(h, json_incref(o), err)) {
			sg_held_release(h);
			return NULL;
		}
	if (sg_held_end(h, err)) {
		sg_held_release(h);
		return NULL;
	}
	return h;
}

struct sg_held *sg_held_retain(struct sg_held *h)
{
	if (h)
		atomic_fetch_add(&h->refs, 1);
	return h;
}

void sg_held_release(struct sg_held *h)
{
	if (!h || atomic_fetch_sub(&h->refs, 1) > 1)
		return;
	for (size_t i = 0; i < h->n; i++) {
		if (!h->v[i].obj) /* sealed: it holds its resources itself */
			json_decref(h->v[i].resources);
		json_decref(h->v[i].obj);
		free(h->v[i].text);
	}
	free(h->v);
	free(h->pos_of_seq);
	free(h);
}

size_t sg_held_count(const struct sg_held *h)
{
	return h->n;
}

enum sg_held_kind sg_held_kind_of(const struct sg_held *h)
{
	return h->kind;
}

const struct sg_held_item *sg_held_at(const struct sg_held *h, size_t i)
{
	return &h->v[i];
}

size_t sg_held_pos_of_seq(const struct sg_held *h, size_t seq)
{
	return h->pos_of_seq && seq < h->n ? h->pos_of_seq[seq] : SIZE_MAX;
}

size_t sg_held_bytes(const struct sg_held *h)
{
	return h->bytes;
}

uint64_t sg_held_uid(const struct sg_held *h)
{
	return h->uid;
}

static void held_retain(void *p)
{
	sg_held_retain(p);
}

static void held_release(void *p)
{
	sg_held_release(p);
}

const struct sg_cache_type sg_held_cache_type = {held_retain, held_release};

/* ---- sets -------------------------------------------------------------------------------- */

uint64_t sg_held_set_uid(struct sg_held *const *v, size_t n)
{
	uint64_t u = 1469598103934665603ULL;

	if (n == 1)
		return v[0]->uid;
	for (size_t i = 0; i < n; i++)
		u = (u ^ v[i]->uid) * 1099511628211ULL;
	return u;
}

struct sg_held_set *sg_held_set_new(struct sg_held *const *v, size_t n)
{
	struct sg_held_set *s = calloc(1, sizeof(*s) + n * sizeof(*s->v));

	if (!s)
		return NULL;
	atomic_init(&s->refs, 1);
	s->n = n;
	s->bytes = sg_cache_chunk(sizeof(*s) + n * sizeof(*s->v));
	for (size_t i = 0; i < n; i++) {
		s->v[i] = sg_held_retain(v[i]);
		s->bytes += v[i]->bytes;
	}
	s->uid = sg_held_set_uid(v, n);
	return s;
}

void sg_held_set_release(struct sg_held_set *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) > 1)
		return;
	for (size_t i = 0; i < s->n; i++)
		sg_held_release(s->v[i]);
	free(s);
}

static void set_retain(void *p)
{
	atomic_fetch_add(&((struct sg_held_set *)p)->refs, 1);
}

static void set_release(void *p)
{
	sg_held_set_release(p);
}

const struct sg_cache_type sg_held_set_cache_type = {set_retain, set_release};
