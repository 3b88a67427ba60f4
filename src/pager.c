/* pager.c - see pager.h. */
#include "pager.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "timeutil.h"

struct entry {
	int64_t t;
	const char *id;
	json_t *obj; /* borrowed */
};

static int cmp_entry(const struct entry *a, const struct entry *b)
{
	if (a->t != b->t)
		return a->t < b->t ? -1 : 1;
	return strcmp(a->id, b->id);
}

static int cmp_asc(const void *a, const void *b)
{
	return cmp_entry(a, b);
}

static int cmp_desc(const void *a, const void *b)
{
	return cmp_entry(b, a);
}

static int str_eq(const json_t *v, const char *s)
{
	return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

int sg_session_matches(const json_t *s, const struct sg_session_query *q, int64_t created_us)
{
	const json_t *agent = json_object_get(s, "agent");

	if (q->statuses) {
		const json_t *st = json_object_get(s, "status");
		unsigned bit =
		    json_is_string(st) ? sg_status_from_string(json_string_value(st)) : 0;

		if (!(bit & q->statuses))
			return 0;
	}
	if (!sg_time_range_match(&q->created, created_us))
		return 0;
	if (!q->include_archived && !json_is_null(json_object_get(s, "archived_at")) &&
	    json_object_get(s, "archived_at"))
		return 0;
	if (q->agent_id && !str_eq(json_object_get(agent, "id"), q->agent_id))
		return 0;
	if (q->agent_version >= 0) {
		const json_t *v = json_object_get(agent, "version");

		if (!json_is_integer(v) || json_integer_value(v) != q->agent_version)
			return 0;
	}
	if (q->deployment_id && !str_eq(json_object_get(s, "deployment_id"), q->deployment_id))
		return 0;
	if (q->memory_store_id) {
		const json_t *res = json_object_get(s, "resources"), *r;
		size_t i;
		int hit = 0;

		json_array_foreach(res, i, r)
			if (str_eq(json_object_get(r, "type"), "memory_store") &&
			    str_eq(json_object_get(r, "memory_store_id"), q->memory_store_id))
				hit = 1;
		if (!hit)
			return 0;
	}
	return 1;
}

/* A cursor position: "d" direction ('n' = after, 'p' = before), "t" µs, "i" id. */
static char *mint(const struct sg_pager_ctx *ctx, const char *fp, const char *dir,
                  const struct entry *e)
{
	json_t *p = json_pack("{s:s, s:I, s:s}", "d", dir, "t", (json_int_t)e->t, "i", e->id);
	char *tok;

	if (!p)
		return NULL;
	tok = sg_cursor_seal(ctx->secret, ctx->secretlen, ctx->principal, fp, p);
	json_decref(p);
	return tok;
}

static json_t *maybe_string(char *s)
{
	json_t *v = s ? json_string(s) : json_null();

	free(s);
	return v;
}

void sg_pager_bad_cursor(struct sg_error *err)
{
	sg_err_invalid(err, "page: not a cursor this gateway issued for this key and these "
	                    "filters (cursors are bound to the key and to every filter but limit)");
}

json_t *sg_pager_open(const struct sg_pager_ctx *ctx, const char *fp, const char *token,
                      struct sg_error *err)
{
	json_t *p = sg_cursor_open(ctx->secret, ctx->secretlen, ctx->principal, fp, token);

	if (!p)
		sg_pager_bad_cursor(err);
	return p;
}

static char *bind_fp(char *fp, const char *bind);

json_t *sg_page_sessions(const json_t *items, const struct sg_session_query *q,
                         const struct sg_pager_ctx *ctx, struct sg_error *err)
{
	size_t n = json_array_size(items), m = 0, start = 0, end = 0, i;
	struct entry *v = NULL, pos = {0};
	char *fp = bind_fp(sg_session_query_fingerprint(q), ctx->bind);
	json_t *cur = NULL, *out = NULL, *data;
	int dir_prev = 0, have_pos = 0;

	if (!fp) {
		sg_err_internal(err, "out of memory");
		goto fail;
	}
	if (q->page) {
		const char *d;

		cur = sg_pager_open(ctx, fp, q->page, err);
		if (!cur)
			goto fail;
		d = json_string_value(json_object_get(cur, "d"));
		if (!d || (strcmp(d, "n") && strcmp(d, "p")) ||
		    !json_is_integer(json_object_get(cur, "t")) ||
		    !json_is_string(json_object_get(cur, "i"))) {
			sg_pager_bad_cursor(err);
			goto fail;
		}
		dir_prev = d[0] == 'p';
		pos.t = json_integer_value(json_object_get(cur, "t"));
		pos.id = json_string_value(json_object_get(cur, "i"));
		have_pos = 1;
	}
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v) {
		sg_err_internal(err, "out of memory");
		goto fail;
	}
	for (i = 0; i < n; i++) {
		json_t *s = json_array_get(items, i);
		const char *id = json_string_value(json_object_get(s, "id"));
		const char *ca = json_string_value(json_object_get(s, "created_at"));
		int64_t t;

		if (!id || !ca || sg_time_parse_rfc3339(ca, &t)) {
			sg_err_internal(err, "a session without a readable id or created_at");
			goto fail;
		}
		if (!sg_session_matches(s, q, t))
			continue;
		v[m].t = t;
		v[m].id = id;
		v[m].obj = s;
		m++;
	}
	qsort(v, m, sizeof(*v), q->order_asc ? cmp_asc : cmp_desc);

	/* Find the window in view order: after pos (next) or the `limit` items before it. */
	if (have_pos) {
		int (*cmp)(const void *, const void *) = q->order_asc ? cmp_asc : cmp_desc;
		size_t k = 0;

		if (!dir_prev) {
			while (k < m && cmp(&v[k], &pos) <= 0)
				k++;
			start = k;
		} else {
			while (k < m && cmp(&v[k], &pos) < 0)
				k++;
			/* The window ends at k and holds the `limit` items before it. */
			end = k;
			start = k > (size_t)q->limit ? k - (size_t)q->limit : 0;
		}
	}
	if (!dir_prev)
		end = start + (size_t)q->limit < m ? start + (size_t)q->limit : m;
	data = json_array();
	out = json_object();
	if (!data || !out) {
		json_decref(data);
		sg_err_internal(err, "out of memory");
		goto fail;
	}
	for (i = start; i < end; i++)
		json_array_append(data, v[i].obj);
	json_object_set_new(out, "data", data);
	json_object_set_new(out, "next_page",
	                    end < m && end > start ? maybe_string(mint(ctx, fp, "n", &v[end - 1]))
	                                           : json_null());
	json_object_set_new(out, "prev_page",
	                    start > 0 && end > start ? maybe_string(mint(ctx, fp, "p", &v[start]))
	                                             : json_null());
fail:
	json_decref(cur);
	free(v);
	free(fp);
	return out;
}

/* Events: the keyset is (processed_at, position in the log); the cursor also carries the
 * event id, which must still sit at that position, so a log that changed underneath a
 * walk is detected instead of skipping or repeating silently. */
struct eentry {
	int64_t t;
	size_t seq;
	json_t *obj; /* borrowed */
};

static int cmp_eentry(const void *a, const void *b)
{
	const struct eentry *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
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

json_t *sg_page_events(const json_t *items, const struct sg_event_query *q,
                       const struct sg_pager_ctx *ctx, struct sg_error *err)
{
	size_t n = json_array_size(items), m = 0, start = 0, end, i;
	struct eentry *v = NULL, pos = {0};
	char *fp = sg_event_query_bound_fingerprint(q, ctx->bind);
	json_t *cur = NULL, *out = NULL, *data;
	int have_pos = 0;

	if (!fp) {
		sg_err_internal(err, "out of memory");
		goto fail;
	}
	if (q->page) {
		const char *id;
		json_int_t seq;

		cur = sg_pager_open(ctx, fp, q->page, err);
		if (!cur)
			goto fail;
		id = json_string_value(json_object_get(cur, "i"));
		seq = json_integer_value(json_object_get(cur, "s"));
		if (!id || !json_is_integer(json_object_get(cur, "t")) || seq < 0) {
			sg_pager_bad_cursor(err);
			goto fail;
		}
		if ((size_t)seq >= n ||
		    !str_eq(json_object_get(json_array_get(items, (size_t)seq), "id"), id)) {
			sg_err_invalid(err,
			               "page: the session's history changed under this cursor; "
			               "list again without page");
			goto fail;
		}
		pos.t = json_integer_value(json_object_get(cur, "t"));
		pos.seq = (size_t)seq;
		have_pos = 1;
	}
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v) {
		sg_err_internal(err, "out of memory");
		goto fail;
	}
	for (i = 0; i < n; i++) {
		json_t *e = json_array_get(items, i);
		const char *type = json_string_value(json_object_get(e, "type"));
		const char *pa = json_string_value(json_object_get(e, "processed_at"));
		int64_t t;

		if (!type || !pa || sg_time_parse_rfc3339(pa, &t)) {
			sg_err_internal(err, "an event without a readable type or processed_at");
			goto fail;
		}
		if (!type_wanted(q, type) || !sg_time_range_match(&q->created, t))
			continue;
		v[m].t = t;
		v[m].seq = i;
		v[m].obj = e;
		m++;
	}
	qsort(v, m, sizeof(*v), cmp_eentry);
	if (q->order_desc)
		for (i = 0; i < m / 2; i++) {
			struct eentry tmp = v[i];

			v[i] = v[m - 1 - i];
			v[m - 1 - i] = tmp;
		}
	if (have_pos)
		while (start < m && (q->order_desc ? cmp_eentry(&v[start], &pos) >= 0
		                                   : cmp_eentry(&v[start], &pos) <= 0))
			start++;
	end = start + (size_t)q->limit < m ? start + (size_t)q->limit : m;
	data = json_array();
	out = json_object();
	if (!data || !out) {
		json_decref(data);
		json_decref(out);
		out = NULL;
		sg_err_internal(err, "out of memory");
		goto fail;
	}
	for (i = start; i < end; i++)
		json_array_append(data, v[i].obj);
	json_object_set_new(out, "data", data);
	if (end < m && end > start) {
		const struct eentry *last = &v[end - 1];
		json_t *p =
		    json_pack("{s:s, s:I, s:I, s:O}", "d", "n", "t", (json_int_t)last->t, "s",
		              (json_int_t)last->seq, "i", json_object_get(last->obj, "id"));
		char *tok =
		    p ? sg_cursor_seal(ctx->secret, ctx->secretlen, ctx->principal, fp, p) : NULL;

		json_decref(p);
		json_object_set_new(out, "next_page", maybe_string(tok));
	} else {
		json_object_set_new(out, "next_page", json_null());
	}
fail:
	json_decref(cur);
	free(v);
	free(fp);
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
