/* walk.c - see walk.h. */
#include "walk.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "held.h"
#include "idcodec.h"
#include "pager.h"

struct sg_walk {
	struct sg_walk_spec spec;
	struct sg_call_env env;
	struct sg_pubid pubid;
	char *bc;      /* backend cursor of the page being read; NULL = first */
	json_t *carry; /* carry at that page's start */
	size_t skip;   /* items of that page already served */
	json_t *out;
	json_t *next; /* native mode: where the next north page starts */
	int pages;
	int looking;  /* native mode: `limit` matches held; reading on for the next one */
	char *native; /* spec.key.native, our copy */
	struct sg_call *call;
	struct sg_error err;
	int failed;
	int finished;
	struct event *done_ev; /* runs done from the loop (see finish) */
	sg_walk_done_cb done;
	void *arg;
};

static void fetch(struct sg_walk *w);

static void on_finish(evutil_socket_t fd, short what, void *arg)
{
	struct sg_walk *w = arg;

	(void)fd;
	(void)what;
	w->done(w, w->arg);
}

/* Ends the walk; done runs from the loop after the current callback returns. Never directly:
 * inside sg_walk_start the caller does not hold the walk yet (its done handler would free the
 * request under it), and inside on_page we are still in the call's own done. */
static void finish(struct sg_walk *w)
{
	if (w->finished)
		return;
	w->finished = 1;
	event_active(w->done_ev, EV_TIMEOUT, 0);
}

/* Something could not be allocated. A shorter, truncated or restarted listing would lose or
 * repeat items without saying so; a 500 says so. */
static void fail_oom(struct sg_walk *w)
{
	sg_error_set(&w->err, 500, "api_error", "out of memory");
	w->failed = 1;
	finish(w);
}

/* Where item lies against the walk's key, in the walk's order: <0 before, 0 at, >0 after. An
 * item without a readable created_at or public id counts as after (it is served, never lost).
 */
static int side_of(const struct sg_walk *w, const json_t *item)
{
	struct sg_held_item hk;
	struct sg_pubid id;
	int c;

	if (sg_held_keys(item, SG_HELD_SESSIONS, &hk) || sg_id_decode("sesn_", hk.id, &id))
		return 1;
	if (hk.t != w->spec.key.t)
		c = hk.t < w->spec.key.t ? -1 : 1;
	else
		c = strcmp(id.native, w->native);
	return w->spec.sq && !w->spec.sq->order_asc ? -c : c;
}

static int matches(const struct sg_walk *w, const json_t *item)
{
	if (w->spec.kind != SG_CALL_SESSIONS_PAGE)
		return sg_event_query_match(item, w->spec.eq);
	if (!sg_session_query_match(item, w->spec.sq))
		return 0;
	switch (w->spec.side) {
	case SG_WALK_FROM:
		return side_of(w, item) >= 0;
	case SG_WALK_AFTER:
		return side_of(w, item) > 0;
	case SG_WALK_BEFORE:
		return side_of(w, item) < 0;
	default:
		return 1;
	}
}

/* Where the next north page starts: this backend page at position k. Returns 0, or -1 when
 * out of memory (a NULL next would read as "no more pages"). */
static int set_next(struct sg_walk *w, const char *bc, size_t k, json_t *carry)
{
	w->next = json_pack("{s:s?, s:I, s:O?}", "bc", bc, "k", (json_int_t)k, "c", carry);
	return w->next ? 0 : -1;
}

/* On to the backend's next page, carrying the module's state across. Without a copy of its
 * cursor the next fetch would read the first page again. */
static void advance(struct sg_walk *w, const char *next, json_t *carry_out)
{
	free(w->bc);
	w->bc = strdup(next);
	if (!w->bc) {
		fail_oom(w);
		return;
	}
	json_decref(w->carry);
	w->carry = json_incref(carry_out);
	w->skip = 0;
	sg_call_free(w->call); /* safe: the call's done event has fired */
	w->call = NULL;
	fetch(w);
}

/* Native mode, `limit` matches held: the next north page starts at the first match from item
 * k of this page on; past this page, on the backend's next pages. */
static void look_on(struct sg_walk *w, const json_t *items, size_t k, const char *next,
                    json_t *carry_out)
{
	size_t n = json_array_size(items);

	while (k < n && !matches(w, json_array_get(items, k)))
		k++;
	if (k < n) {
		if (set_next(w, w->bc, k, w->carry))
			fail_oom(w);
		else
			finish(w);
		return;
	}
	if (!next) { /* none: this was the last page */
		finish(w);
		return;
	}
	if (w->pages >= SG_WALK_MAX_PAGES) {
		/* out of pages to look at: the next page starts where the reading stopped (it may
		 * then come back empty, with a cursor, which is still correct) */
		if (set_next(w, next, 0, carry_out))
			fail_oom(w);
		else
			finish(w);
		return;
	}
	w->looking = 1;
	advance(w, next, carry_out);
}

/* Tail mode: keeps the last `limit` matches. */
static int keep_tail(struct sg_walk *w, json_t *it)
{
	if (json_array_append(w->out, it))
		return -1;
	if (json_array_size(w->out) > w->spec.limit)
		json_array_remove(w->out, 0);
	return 0;
}

static void on_page(struct sg_call *c, void *arg)
{
	struct sg_walk *w = arg;
	const struct sg_error *ce = sg_call_error(c);
	json_t *items = sg_call_result(c), *carry_out = sg_call_result_carry(c);
	const char *next = sg_call_result_next(c);
	size_t n = json_array_size(items), i;
	int all = w->spec.collect_all || w->spec.tail;

	w->pages++;
	if (ce) {
		w->err = *ce;
		w->failed = 1;
		finish(w);
		return;
	}
	if (w->looking) {
		look_on(w, items, w->skip, next, carry_out);
		return;
	}
	for (i = w->skip; i < n; i++) {
		json_t *it = json_array_get(items, i);

		if (!w->spec.collect_all && !matches(w, it))
			continue;
		if (w->spec.tail ? keep_tail(w, it) : json_array_append(w->out, it)) {
			fail_oom(w);
			return;
		}
		if (!all && json_array_size(w->out) >= w->spec.limit) {
			if (w->spec.no_next)
				finish(w);
			else
				look_on(w, items, i + 1, next, carry_out);
			return;
		}
	}
	if (!next) {
		finish(w);
		return;
	}
	if (w->pages >= SG_WALK_MAX_PAGES) {
		if (all) {
			sg_error_set(&w->err, 502, "api_error",
			             "backend '%s' has more than %d pages to read for this request",
			             w->spec.route->backend->name, SG_WALK_MAX_PAGES);
			w->failed = 1;
		} else if (set_next(w, next, 0, carry_out)) {
			fail_oom(w);
			return;
		}
		/* Natively, a short page with a cursor is still a correct page. */
		finish(w);
		return;
	}
	advance(w, next, carry_out);
}

static void fetch(struct sg_walk *w)
{
	w->call = sg_call_new(w->spec.kind, &w->env, w->spec.route->backend,
	                      w->spec.route->identity, on_page, w);
	if (!w->call) {
		sg_error_set(&w->err, 500, "api_error", "out of memory");
		w->failed = 1;
		finish(w);
		return;
	}
	sg_call_set_session_query(w->call, w->spec.sq);
	sg_call_set_event_query(w->call, w->spec.eq);
	if (w->spec.pubid)
		sg_call_set_pubid(w->call, &w->pubid);
	if (sg_call_set_page_input(w->call, w->bc, w->carry)) {
		fail_oom(w); /* without its cursor the call would read the first page again */
		return;
	}
	sg_call_start(w->call);
}

struct sg_walk *sg_walk_start(const struct sg_walk_spec *spec, sg_walk_done_cb done, void *arg)
{
	struct sg_walk *w = calloc(1, sizeof(*w));
	const char *bc;

	if (!w)
		return NULL;
	w->spec = *spec;
	w->env = *spec->env;
	if (spec->pubid)
		w->pubid = *spec->pubid;
	/* What spec pointed at may be the caller's stack: keep only our own copies. */
	w->spec.env = &w->env;
	w->spec.pubid = spec->pubid ? &w->pubid : NULL;
	w->spec.start = NULL;
	w->spec.key.native = NULL;
	if (spec->side != SG_WALK_ANY) {
		w->native = strdup(spec->key.native ? spec->key.native : "");
		if (!w->native) {
			free(w);
			return NULL;
		}
	}
	w->done = done;
	w->arg = arg;
	w->done_ev = event_new(spec->env->base, -1, 0, on_finish, w);
	w->out = json_array();
	if (spec->start) {
		bc = json_string_value(json_object_get(spec->start, "bc"));
		w->bc = bc ? strdup(bc) : NULL;
		if (bc && !w->bc) { /* else the walk would restart at the first page */
			sg_walk_free(w);
			return NULL;
		}
		w->skip = (size_t)json_integer_value(json_object_get(spec->start, "k"));
		w->carry = json_incref(json_object_get(spec->start, "c"));
	}
	if (!w->out || !w->done_ev) {
		sg_walk_free(w);
		return NULL;
	}
	fetch(w); /* may finish at once (no memory for the call): done is still deferred */
	return w;
}

const struct sg_error *sg_walk_error(const struct sg_walk *w)
{
	return w->failed ? &w->err : NULL;
}

json_t *sg_walk_items(const struct sg_walk *w)
{
	return w->out;
}

json_t *sg_walk_next(const struct sg_walk *w)
{
	return w->next ? json_incref(w->next) : NULL;
}

void sg_walk_free(struct sg_walk *w)
{
	if (!w)
		return;
	sg_call_free(w->call);
	if (w->done_ev)
		event_free(w->done_ev); /* also drops a pending done */
	free(w->bc);
	free(w->native);
	json_decref(w->carry);
	json_decref(w->out);
	json_decref(w->next);
	free(w);
}
