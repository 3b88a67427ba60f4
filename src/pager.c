/* pager.c - see pager.h. */
#include "pager.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "timeutil.h"

#include "held.h"

static int str_eq(const json_t *v, const char *s)
{
	return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

static int cstr_eq(const char *a, const char *b)
{
	return a && strcmp(a, b) == 0;
}

/* The session filters of q on an item's keys (created_at included). */
static int item_matches(const struct sg_held_item *it, const struct sg_session_query *q)
{
	if (q->statuses && !(it->status & q->statuses))
		return 0;
	if (!sg_time_range_match(&q->created, it->t))
		return 0;
	if (!q->include_archived && it->archived)
		return 0;
	if (q->agent_id && !cstr_eq(it->agent_id, q->agent_id))
		return 0;
	if (q->agent_version >= 0 && it->agent_version != q->agent_version)
		return 0;
	if (q->deployment_id && !cstr_eq(it->deployment_id, q->deployment_id))
		return 0;
	if (q->memory_store_id) {
		const json_t *r;
		size_t i;
		int hit = 0;

		json_array_foreach(it->resources, i, r)
			if (str_eq(json_object_get(r, "type"), "memory_store") &&
			    str_eq(json_object_get(r, "memory_store_id"), q->memory_store_id))
				hit = 1;
		if (!hit)
			return 0;
	}
	return 1;
}

int sg_session_matches(const json_t *s, const struct sg_session_query *q, int64_t created_us)
{
	struct sg_held_item it;

	sg_held_keys(s, SG_HELD_SESSIONS, &it);
	it.t = created_us;
	return item_matches(&it, q);
}

void sg_pager_bad_cursor(struct sg_error *err)
{
	sg_err_invalid(err, "page: not a cursor this gateway issued for this key and these "
	                    "filters (cursors are bound to the key and to every filter but limit)");
}

json_t *sg_pager_open(const struct sg_pager_ctx *ctx, const char *fp, const char *token,
                      struct sg_error *err)
{
	json_t *p = ctx->verify
	                ? sg_cursor_open_any(ctx->verify, ctx->nverify, ctx->principal, fp, token)
	                : sg_cursor_open(ctx->secret, ctx->secretlen, ctx->principal, fp, token);

	if (!p)
		sg_pager_bad_cursor(err);
	return p;
}

static char *bind_fp(char *fp, const char *bind);

/* ---- the page text ------------------------------------------------------------------------ */

struct tb {
	char *p;
	size_t len, cap;
	int oom;
};

static void tb_add(struct tb *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void tb_reserve(struct tb *b, size_t n)
{
	char *p;

	if (b->oom || n <= b->cap)
		return;
	p = realloc(b->p, n);
	if (!p) {
		b->oom = 1;
		return;
	}
	b->p = p;
	b->cap = n;
}

static void tb_str(struct tb *b, const char *s)
{
	tb_add(b, s, strlen(s));
}

/* `"name":"token"` or `"name":null`; token (taken) is base64url, nothing to escape. */
static void tb_cursor(struct tb *b, const char *name, char *token)
{
	tb_str(b, ",\"");
	tb_str(b, name);
	tb_str(b, "\":");
	if (token) {
		tb_str(b, "\"");
		tb_str(b, token);
		tb_str(b, "\"");
	} else {
		tb_str(b, "null");
	}
	free(token);
}

/* The text of b, or NULL with err when something ran out of memory. */
static char *tb_done(struct tb *b, size_t *len, struct sg_error *err)
{
	if (b->oom || !b->p) {
		free(b->p);
		sg_err_internal(err, "out of memory");
		return NULL;
	}
	*len = b->len;
	return b->p;
}

/* ---- sessions ----------------------------------------------------------------------------- */

static int cmp_key(const struct sg_held_item *a, const struct sg_held_item *b)
{
	if (a->t != b->t)
		return a->t < b->t ? -1 : 1;
	return strcmp(a->id, b->id);
}

/* The first index of h (ascending) whose time is at least lo (lo_inclusive) or above it. */
static size_t first_time(const struct sg_held *h, int64_t t, int after)
{
	size_t a = 0, b = sg_held_count(h);

	while (a < b) {
		size_t m = a + (b - a) / 2;
		int64_t mt = sg_held_at(h, m)->t;

		if (after ? mt <= t : mt < t)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

/* The indices [lo, hi) of h whose times can satisfy r: a binary search for each bound. */
static void time_window(const struct sg_held *h, const struct sg_time_range *r, size_t *lo,
                        size_t *hi)
{
	*lo = 0;
	*hi = sg_held_count(h);
	if (r->has_gte && first_time(h, r->gte, 0) > *lo)
		*lo = first_time(h, r->gte, 0);
	if (r->has_gt && first_time(h, r->gt, 1) > *lo)
		*lo = first_time(h, r->gt, 1);
	if (r->has_lte && first_time(h, r->lte, 1) < *hi)
		*hi = first_time(h, r->lte, 1);
	if (r->has_lt && first_time(h, r->lt, 0) < *hi)
		*hi = first_time(h, r->lt, 0);
	if (*hi < *lo)
		*hi = *lo;
}

/* One listing seen in view order: view index j is lo + j ascending, hi - 1 - j descending;
 * p is the next view index to look at. */
struct lane {
	const struct sg_held *h;
	size_t lo, hi, p;
};

struct picked {
	const struct sg_held *h;
	const struct sg_held_item *it;
};

static const struct sg_held_item *lane_at(const struct lane *l, size_t j, int asc)
{
	return sg_held_at(l->h, asc ? l->lo + j : l->hi - 1 - j);
}

static int cmp_view(const struct sg_held_item *a, const struct sg_held_item *b, int asc)
{
	return asc ? cmp_key(a, b) : cmp_key(b, a);
}

/* How many of l's items come before pos in view order (at pos too, when `inclusive`). */
static size_t lane_count(const struct lane *l, const struct sg_held_item *pos, int asc,
                         int inclusive)
{
	size_t a = 0, b = l->hi - l->lo;

	while (a < b) {
		size_t m = a + (b - a) / 2;
		int c = cmp_view(lane_at(l, m, asc), pos, asc);

		if (inclusive ? c <= 0 : c < 0)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

/* The next item in view order over every lane (merging them), or NULL at the end. */
static int step_fwd(struct lane *ls, size_t k, int asc, struct picked *out)
{
	size_t w = k;

	for (size_t i = 0; i < k; i++)
		if (ls[i].p < ls[i].hi - ls[i].lo &&
		    (w == k || cmp_view(lane_at(&ls[i], ls[i].p, asc),
		                        lane_at(&ls[w], ls[w].p, asc), asc) < 0))
			w = i;
	if (w == k)
		return 0;
	out->h = ls[w].h;
	out->it = lane_at(&ls[w], ls[w].p++, asc);
	return 1;
}

/* The previous item in view order, or NULL at the start. */
static int step_bwd(struct lane *ls, size_t k, int asc, struct picked *out)
{
	size_t w = k;

	for (size_t i = 0; i < k; i++)
		if (ls[i].p > 0 && (w == k || cmp_view(lane_at(&ls[i], ls[i].p - 1, asc),
		                                       lane_at(&ls[w], ls[w].p - 1, asc), asc) > 0))
			w = i;
	if (w == k)
		return 0;
	out->h = ls[w].h;
	out->it = lane_at(&ls[w], --ls[w].p, asc);
	return 1;
}

/* 1 when a matching item lies ahead (fwd) or behind, from the lanes' positions. */
static int any_match(struct lane *ls, size_t k, int asc, int fwd, const struct sg_session_query *q)
{
	struct picked pk;

	while (fwd ? step_fwd(ls, k, asc, &pk) : step_bwd(ls, k, asc, &pk))
		if (item_matches(pk.it, q))
			return 1;
	return 0;
}

/* A cursor position: "d" direction ('n' = after, 'p' = before), "t" µs, "i" id, and "g"
 * the snapshot the page came from (absent: none). */
static char *mint(const struct sg_pager_ctx *ctx, const char *fp, const char *dir,
                  const struct sg_held_item *it, const char *snap)
{
	json_t *p = json_pack("{s:s, s:I, s:s}", "d", dir, "t", (json_int_t)it->t, "i", it->id);
	char *tok;

	if (!p)
		return NULL;
	if (snap && json_object_set_new(p, "g", json_string(snap))) {
		json_decref(p);
		return NULL;
	}
	tok = sg_cursor_seal(ctx->secret, ctx->secretlen, ctx->principal, fp, p);
	json_decref(p);
	return tok;
}

static char *sessions_fp(const struct sg_session_query *q, const struct sg_pager_ctx *ctx)
{
	return bind_fp(sg_session_query_fingerprint(q), ctx->bind);
}

int sg_pager_session_pos(const struct sg_pager_ctx *ctx, const struct sg_session_query *q,
                         struct sg_session_pos *pos, struct sg_error *err)
{
	char *fp;
	const char *d, *g;

	memset(pos, 0, sizeof(*pos));
	if (!q->page)
		return 0;
	fp = sessions_fp(q, ctx);
	if (!fp) {
		sg_err_internal(err, "out of memory");
		return -1;
	}
	pos->payload = sg_pager_open(ctx, fp, q->page, err);
	free(fp);
	if (!pos->payload)
		return -1;
	d = json_string_value(json_object_get(pos->payload, "d"));
	g = json_string_value(json_object_get(pos->payload, "g"));
	if (!d || (strcmp(d, "n") && strcmp(d, "p")) ||
	    !json_is_integer(json_object_get(pos->payload, "t")) ||
	    !json_is_string(json_object_get(pos->payload, "i")) ||
	    (json_object_get(pos->payload, "g") && (!g || strlen(g) >= sizeof(pos->snap)))) {
		sg_pager_session_pos_clear(pos);
		sg_pager_bad_cursor(err);
		return -1;
	}
	pos->have = 1;
	pos->prev = d[0] == 'p';
	pos->t = json_integer_value(json_object_get(pos->payload, "t"));
	pos->id = json_string_value(json_object_get(pos->payload, "i"));
	if (g)
		snprintf(pos->snap, sizeof(pos->snap), "%s", g);
	return 0;
}

void sg_pager_session_pos_clear(struct sg_session_pos *pos)
{
	json_decref(pos->payload);
	memset(pos, 0, sizeof(*pos));
}

char *sg_pager_sessions_text(struct sg_held *const *v, size_t n, const struct sg_session_query *q,
                             const struct sg_pager_ctx *ctx, const struct sg_session_pos *pos,
                             const char *snap, int *linked, size_t *len, struct sg_error *err)
{
	int asc = q->order_asc;
	size_t limit = (size_t)q->limit, count = 0, i;
	struct lane *ls = calloc(n ? n : 1, sizeof(*ls));
	size_t *p0 = calloc(n ? n : 1, sizeof(*p0));
	struct picked *page = calloc(limit ? limit : 1, sizeof(*page)), pk;
	char *fp = sessions_fp(q, ctx);
	struct sg_held_item at = {0};
	int more_after = 0, more_before = 0;
	struct tb b = {0};

	if (!ls || !p0 || !page || !fp) {
		b.oom = 1;
		goto out;
	}
	at.t = pos->t;
	at.id = pos->id;
	for (i = 0; i < n; i++) {
		ls[i].h = v[i];
		time_window(v[i], &q->created, &ls[i].lo, &ls[i].hi);
		ls[i].p = pos->have ? lane_count(&ls[i], &at, asc, !pos->prev) : 0;
		p0[i] = ls[i].p;
	}
	if (!pos->prev) {
		while (count < limit && step_fwd(ls, n, asc, &pk))
			if (item_matches(pk.it, q))
				page[count++] = pk;
		more_after = any_match(ls, n, asc, 1, q);
		for (i = 0; i < n; i++)
			ls[i].p = p0[i];
		more_before = count > 0 && any_match(ls, n, asc, 0, q);
	} else {
		while (count < limit && step_bwd(ls, n, asc, &pk))
			if (item_matches(pk.it, q))
				page[count++] = pk;
		for (i = 0; i < count / 2; i++) {
			struct picked tmp = page[i];

			page[i] = page[count - 1 - i];
			page[count - 1 - i] = tmp;
		}
		more_before = any_match(ls, n, asc, 0, q);
		for (i = 0; i < n; i++)
			ls[i].p = p0[i];
		more_after = count > 0 && any_match(ls, n, asc, 1, q);
	}
	/* one allocation for the whole answer: the items, the cursors, the punctuation */
	{
		size_t need = 256 + 2 * (SG_CURSOR_MAX + 32);

		for (i = 0; i < count; i++) {
			size_t tl;

			if (sg_held_text(page[i].h, page[i].it, &tl))
				need += tl + 1;
		}
		tb_reserve(&b, need);
	}
	tb_str(&b, "{\"data\":[");
	for (i = 0; i < count; i++) {
		size_t tl;
		const char *t = sg_held_text(page[i].h, page[i].it, &tl);

		if (!t) {
			b.oom = 1;
			break;
		}
		if (i)
			tb_add(&b, ",", 1);
		tb_add(&b, t, tl);
	}
	tb_str(&b, "]");
	tb_cursor(&b, "next_page",
	          count && more_after ? mint(ctx, fp, "n", page[count - 1].it, snap) : NULL);
	tb_cursor(&b, "prev_page",
	          count && more_before ? mint(ctx, fp, "p", page[0].it, snap) : NULL);
	tb_str(&b, "}");
	*linked = count && (more_after || more_before);
out:
	free(ls);
	free(p0);
	free(page);
	free(fp);
	return tb_done(&b, len, err);
}

json_t *sg_page_sessions(const json_t *items, const struct sg_session_query *q,
                         const struct sg_pager_ctx *ctx, struct sg_error *err)
{
	struct sg_session_pos pos;
	struct sg_held *h;
	json_t *out = NULL;
	size_t len;
	int linked;
	char *text;

	if (sg_pager_session_pos(ctx, q, &pos, err))
		return NULL;
	h = sg_held_new(items, SG_HELD_SESSIONS, err);
	text = h ? sg_pager_sessions_text(&h, 1, q, ctx, &pos, NULL, &linked, &len, err) : NULL;
	if (text && !(out = json_loadb(text, len, 0, NULL)))
		sg_err_internal(err, "out of memory");
	free(text);
	sg_held_release(h);
	sg_pager_session_pos_clear(&pos);
	return out;
}

/* ---- events ------------------------------------------------------------------------------- *
 * The keyset is (processed_at, position in the log); the cursor also carries the event id,
 * which must still sit at that position, so a log that changed underneath a walk is detected
 * instead of skipping or repeating silently. */

static int cmp_ekey(const struct sg_held_item *a, int64_t t, size_t seq)
{
	if (a->t != t)
		return a->t < t ? -1 : 1;
	return a->seq < seq ? -1 : a->seq > seq;
}

static int type_wanted(const struct sg_event_query *q, const char *type)
{
	if (q->ntypes == 0)
		return 1;
	for (size_t i = 0; i < q->ntypes; i++)
		if (strcmp(q->types[i], type) == 0)
			return 1;
	return 0;
}

static int event_wanted(const struct sg_held_item *it, const struct sg_event_query *q)
{
	return type_wanted(q, it->type) && sg_time_range_match(&q->created, it->t);
}

char *sg_pager_events_text(const struct sg_held *h, const struct sg_event_query *q,
                           const struct sg_pager_ctx *ctx, size_t *len, struct sg_error *err)
{
	char *fp = sg_event_query_bound_fingerprint(q, ctx->bind);
	json_t *cur = NULL;
	size_t lo, hi, n, start = 0, count = 0, j;
	const struct sg_held_item *last = NULL;
	int desc = q->order_desc, more = 0, first = 1;
	struct tb b = {0};

	if (!fp) {
		sg_err_internal(err, "out of memory");
		return NULL;
	}
	time_window(h, &q->created, &lo, &hi);
	n = hi - lo;
	if (q->page) {
		const char *id;
		json_int_t seq, t;
		size_t at;

		cur = sg_pager_open(ctx, fp, q->page, err);
		if (!cur)
			goto fail;
		id = json_string_value(json_object_get(cur, "i"));
		seq = json_integer_value(json_object_get(cur, "s"));
		t = json_integer_value(json_object_get(cur, "t"));
		if (!id || !json_is_integer(json_object_get(cur, "t")) || seq < 0) {
			sg_pager_bad_cursor(err);
			goto fail;
		}
		at = sg_held_pos_of_seq(h, (size_t)seq);
		if (at == SIZE_MAX || !sg_held_at(h, at)->id ||
		    strcmp(sg_held_at(h, at)->id, id) != 0) {
			sg_err_invalid(err,
			               "page: the session's history changed under this cursor; "
			               "list again without page");
			goto fail;
		}
		/* how many of the window come at or before the cursor in view order */
		{
			size_t a = 0, z = n;

			while (a < z) {
				size_t m = a + (z - a) / 2;
				const struct sg_held_item *it =
				    sg_held_at(h, desc ? hi - 1 - m : lo + m);
				int c = cmp_ekey(it, t, (size_t)seq);

				if (desc ? c >= 0 : c <= 0)
					a = m + 1;
				else
					z = m;
			}
			start = a;
		}
	}
	tb_reserve(&b, 64 << 10);
	tb_str(&b, "{\"data\":[");
	for (j = start; j < n; j++) {
		const struct sg_held_item *it = sg_held_at(h, desc ? hi - 1 - j : lo + j);
		const char *text;
		size_t tl;

		if (!event_wanted(it, q))
			continue;
		if (count == (size_t)q->limit) {
			more = 1;
			break;
		}
		text = sg_held_text(h, it, &tl);
		if (!text) {
			b.oom = 1;
			break;
		}
		if (!first)
			tb_add(&b, ",", 1);
		first = 0;
		tb_add(&b, text, tl);
		last = it;
		count++;
	}
	tb_str(&b, "]");
	if (more && last) {
		json_t *p = json_pack("{s:s, s:I, s:I, s:s}", "d", "n", "t", (json_int_t)last->t,
		                      "s", (json_int_t)last->seq, "i", last->id ? last->id : "");
		char *tok =
		    p ? sg_cursor_seal(ctx->secret, ctx->secretlen, ctx->principal, fp, p) : NULL;

		json_decref(p);
		if (!tok)
			b.oom = 1;
		tb_cursor(&b, "next_page", tok);
	} else {
		tb_cursor(&b, "next_page", NULL);
	}
	tb_str(&b, "}");
	json_decref(cur);
	free(fp);
	return tb_done(&b, len, err);
fail:
	json_decref(cur);
	free(fp);
	free(b.p);
	return NULL;
}

json_t *sg_page_events(const json_t *items, const struct sg_event_query *q,
                       const struct sg_pager_ctx *ctx, struct sg_error *err)
{
	struct sg_held *h = sg_held_new(items, SG_HELD_EVENTS, err);
	json_t *out = NULL;
	size_t len;
	char *text = h ? sg_pager_events_text(h, q, ctx, &len, err) : NULL;

	if (text && !(out = json_loadb(text, len, 0, NULL)))
		sg_err_internal(err, "out of memory");
	free(text);
	sg_held_release(h);
	return out;
}

/* fp (taken) with bind appended, or fp itself when bind is NULL. */
static char *bind_fp(char *fp, const char *bind)
{
	char *out;
	size_t n;

	if (!fp || !bind)
		return fp;
	n = strlen(fp) + strlen(bind) + 8;
	out = malloc(n);
	if (out)
		snprintf(out, n, "%s|bind=%s", fp, bind);
	free(fp);
	return out;
}

char *sg_event_query_bound_fingerprint(const struct sg_event_query *q, const char *bind)
{
	return bind_fp(sg_event_query_fingerprint(q), bind);
}

int sg_session_query_match(const json_t *s, const struct sg_session_query *q)
{
	const char *ca = json_string_value(json_object_get(s, "created_at"));
	int64_t t;

	return ca && sg_time_parse_rfc3339(ca, &t) == 0 && sg_session_matches(s, q, t);
}

int sg_event_query_match(const json_t *e, const struct sg_event_query *q)
{
	const char *type = json_string_value(json_object_get(e, "type"));
	const char *pa = json_string_value(json_object_get(e, "processed_at"));
	int64_t t;

	if (!type || !type_wanted(q, type))
		return 0;
	/* A queued event has no processed_at yet (the SDK allows null on user input): it
	 * matches when no time bound asks about it. */
	if (!pa)
		return !(q->created.has_gt || q->created.has_gte || q->created.has_lt ||
		         q->created.has_lte);
	return sg_time_parse_rfc3339(pa, &t) == 0 && sg_time_range_match(&q->created, t);
}
