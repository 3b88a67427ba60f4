/* agentscope_stream.c - see agentscope_stream.h.
 *
 * AgentScope's server persists a reply by applying the very frames it streams to an empty
 * assistant Msg (Msg.append_event): a *_START appends a block with the frame's id, deltas grow
 * it, an END stamps its finished_at with the frame's created_at, REQUIRE_* and results move
 * tool-call states, MODEL_CALL_END adds to usage, REPLY_END stamps finished_at, reason and
 * error. This file does the same, block by block, and hands each finished block (or run of
 * text blocks) to the history translator as a one-message log, so that every id and payload
 * comes from the one place that makes them for the history: what the stream adds is only WHEN
 * an event is final.
 *
 * An event is final, and output in the history's order, when nothing later can change it:
 *   - a run of consecutive text blocks, when a block of another type starts after it (the
 *     history coalesces the run into one agent.message keyed by its first block), at a park or
 *     at the reply's end;
 *   - thinking, when its block ended; hints at once; data blocks give nothing (they only end a
 *     text run);
 *   - a tool call, once it is known to be a tool_use or a custom_tool_use: AgentScope sends a
 *     TOOL_RESULT_START before REQUIRE_EXTERNAL_EXECUTION for an external tool, so the start of
 *     a result does not decide; its output, its end, a REQUIRE_* listing it, a park, the next
 *     model call or the reply's end do;
 *   - a tool result, when it ended (the history skips results still running).
 * Events wait behind the first event that is not final yet, so the order is the history's.
 *
 * Ids the history cannot show: a parked reply's resumption (status_running and
 * span.model_request_start again) is invisible in the persisted reply, which shows its final
 * shape only; those two get ids of their own, seeded with "resume" and the first resumed call. */
#include "agentscope_stream.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idcodec.h"
#include "jsonx.h"
#include "north.h"
#include "timeutil.h"

enum kind { K_TEXT, K_THINKING, K_DATA, K_HINT, K_CALL, K_RESULT };

/* How far a flush may go: only what is final; everything but running tool results (a park);
 * everything, running results dropped as the history drops them (the reply's end). */
enum force { F_NONE, F_PARK, F_END };

/* How a reply is handed to the history translator. */
enum mode {
	M_RUNNING, /* the reply is being written: no end events */
	M_END,     /* ended: finished_at, reason and error set */
	M_PARKED,  /* the session's tail, parked on its pending calls */
	M_CLOSED,  /* not the tail any more: another message follows it */
};

struct buf {
	char *p;
	size_t len, cap;
};

/* One block of the reply whose event is not out yet, as AgentScope persists it. */
struct slot {
	enum kind kind;
	char *id;        /* block id, or the tool call's id (= its result block's id) */
	char *name;      /* tool name (calls, results) */
	struct buf text; /* text, thinking, tool input, or a result's trailing text item */
	int text_open;   /* results: the output ends with a text item that is `text` */
	json_t *items;   /* results: the output items before it; hints: the whole block */
	char state[16];  /* calls: pending|asking|allowed|submitted|finished; results: its state */
	char *created;   /* naive created_at of the frame that opened it */
	char *finished;  /* naive created_at of its END frame, or NULL */
	int decided;     /* calls: known to be a tool_use or custom_tool_use */
	size_t seq;      /* its position in the reply's content */
	size_t bytes;    /* what it holds, counted against SG_AS_STREAM_MAX_BYTES */
};

/* A tool call the reply waits on (asking or submitted), for the park's end events. */
struct await {
	size_t seq;
	json_t *blk; /* the persisted tool_call block (new) */
	size_t bytes;
};

struct reply {
	char *id;
	char *created; /* naive created_at of its REPLY_START (or of its first frame) */
	struct slot **q;
	size_t qn, qcap;
	size_t seq;          /* blocks seen so far */
	json_int_t usage[4]; /* input, output, cache read, cache creation */
	int has_usage;       /* a MODEL_CALL_END arrived: usage is not null */
	int span_out;        /* this run's span.model_request_start is out */
	int parked;          /* the reply waits on tool calls (REQUIRE_* seen, no resume yet) */
	int resuming;        /* a confirmation, result or interrupt for it arrived */
	int resumed;         /* it runs again after a park: resume ids */
	char *resume_call;   /* the first resumed call (seeds the resume ids) */
	json_t *call_seq;    /* tool call id → its position, for calls already out */
	struct await *aw;
	size_t awn, awcap;
};

struct sg_as_stream {
	struct sg_as_events_ctx ctx; /* strings point at the copies below */
	char *backend, *key, *agent, *model;
	int64_t since;
	struct reply *r; /* the reply in progress or parked, or NULL */
	size_t bytes;    /* held by r's slots and awaits */

	/* the frame being fed */
	json_t *out;
	struct sg_error *err;
	const char *type;
	const char *now_raw;
	int64_t now;
};

static const char *nz(const char *s)
{
	return s ? s : "";
}

static char *dup(const char *s)
{
	return strdup(nz(s));
}

__attribute__((format(printf, 2, 3))) static int bad(struct sg_as_stream *s, const char *fmt, ...)
{
	char where[96];
	va_list ap;

	snprintf(where, sizeof(where), "stream frame %s: ", s->type ? s->type : "?");
	va_start(ap, fmt);
	sg_err_vbackend(s->err, nz(s->ctx.backend), where, fmt, ap);
	va_end(ap);
	return -1;
}

static int oom(struct sg_as_stream *s)
{
	return sg_err_oom(s->err, nz(s->ctx.backend));
}

/* ---- buffers, slots, replies -------------------------------------------------------- */

static int budget(struct sg_as_stream *s, size_t n)
{
	if (n > SG_AS_STREAM_MAX_BYTES || s->bytes > SG_AS_STREAM_MAX_BYTES - n)
		return bad(s, "the reply in progress holds more than %u bytes",
		           SG_AS_STREAM_MAX_BYTES);
	s->bytes += n;
	return 0;
}

static int buf_add(struct sg_as_stream *s, struct buf *b, size_t *acct, const char *p, size_t n)
{
	if (budget(s, n) < 0)
		return -1;
	*acct += n;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *np;

		while (cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np)
			return oom(s);
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static json_t *buf_json(const struct buf *b)
{
	return json_stringn(b->p ? b->p : "", b->len);
}

static void slot_free(struct sg_as_stream *s, struct slot *sl)
{
	if (!sl)
		return;
	s->bytes -= sl->bytes;
	free(sl->id);
	free(sl->name);
	free(sl->text.p);
	json_decref(sl->items);
	free(sl->created);
	free(sl->finished);
	free(sl);
}

static void await_drop(struct sg_as_stream *s, struct reply *r, size_t i)
{
	s->bytes -= r->aw[i].bytes;
	json_decref(r->aw[i].blk);
	memmove(&r->aw[i], &r->aw[i + 1], (r->awn - i - 1) * sizeof(r->aw[0]));
	r->awn--;
}

static void reply_free(struct sg_as_stream *s, struct reply *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->qn; i++)
		slot_free(s, r->q[i]);
	while (r->awn > 0)
		await_drop(s, r, r->awn - 1);
	free(r->q);
	free(r->aw);
	free(r->id);
	free(r->created);
	free(r->resume_call);
	json_decref(r->call_seq);
	free(r);
}

static struct reply *reply_new(const char *id, const char *created)
{
	struct reply *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->id = dup(id);
	r->created = dup(created);
	r->call_seq = json_object();
	if (!r->id || !r->created || !r->call_seq) {
		free(r->id);
		free(r->created);
		json_decref(r->call_seq);
		free(r);
		return NULL;
	}
	return r;
}

/* Appends a new slot of kind with id to the reply's content. NULL + err. */
static struct slot *slot_add(struct sg_as_stream *s, enum kind kind, const char *id,
                             const char *name)
{
	struct reply *r = s->r;
	struct slot *sl;

	if (r->qn >= SG_AS_STREAM_MAX_BLOCKS) {
		bad(s, "the reply in progress holds more than %d open blocks",
		    SG_AS_STREAM_MAX_BLOCKS);
		return NULL;
	}
	if (r->qn == r->qcap) {
		size_t cap = r->qcap ? r->qcap * 2 : 16;
		struct slot **nq = realloc(r->q, cap * sizeof(*nq));

		if (!nq) {
			oom(s);
			return NULL;
		}
		r->q = nq;
		r->qcap = cap;
	}
	sl = calloc(1, sizeof(*sl));
	if (!sl) {
		oom(s);
		return NULL;
	}
	sl->kind = kind;
	sl->id = dup(id);
	sl->name = name ? dup(name) : NULL;
	sl->created = dup(s->now_raw);
	sl->seq = r->seq++;
	if (!sl->id || (name && !sl->name) || !sl->created) {
		slot_free(s, sl);
		oom(s);
		return NULL;
	}
	r->q[r->qn++] = sl;
	return sl;
}

/* The first held slot of kind with id, or NULL (AgentScope, too, applies a frame to the first
 * block of its type with that id, and skips a frame whose block it cannot find). */
static struct slot *slot_find(struct reply *r, enum kind kind, const char *id)
{
	size_t i;

	for (i = 0; r && i < r->qn; i++)
		if (r->q[i]->kind == kind && !strcmp(r->q[i]->id, id))
			return r->q[i];
	return NULL;
}

static int slot_end(struct sg_as_stream *s, struct slot *sl)
{
	free(sl->finished);
	sl->finished = dup(s->now_raw);
	return sl->finished ? 0 : oom(s);
}

/* ---- the persisted shape ------------------------------------------------------------ */

/* The block as AgentScope persists it (new), or NULL when out of memory. */
static json_t *materialize(const struct slot *sl)
{
	static const char *const types[] = {"text", "thinking",  "data",
	                                    "hint", "tool_call", "tool_result"};
	json_t *b, *out;

	if (sl->kind == K_HINT)
		return json_deep_copy(sl->items);
	b = json_pack("{s:s, s:s, s:s}", "type", types[sl->kind], "id", sl->id, "created_at",
	              sl->created);
	if (!b)
		return NULL;
	if (sl->finished && json_object_set_new(b, "finished_at", json_string(sl->finished)) < 0)
		goto fail;
	switch (sl->kind) {
	case K_TEXT:
	case K_THINKING:
		if (json_object_set_new(b, sl->kind == K_TEXT ? "text" : "thinking",
		                        buf_json(&sl->text)) < 0)
			goto fail;
		break;
	case K_CALL:
		if (json_object_set_new(b, "name", json_string(nz(sl->name))) < 0 ||
		    json_object_set_new(b, "input", buf_json(&sl->text)) < 0 ||
		    json_object_set_new(b, "state", json_string(sl->state)) < 0)
			goto fail;
		break;
	case K_RESULT:
		out = json_deep_copy(sl->items);
		if (!out ||
		    (sl->text_open &&
		     json_array_append_new(out, json_pack("{s:s, s:o}", "type", "text", "text",
		                                          buf_json(&sl->text))) < 0)) {
			json_decref(out);
			goto fail;
		}
		if (json_object_set_new(b, "name", json_string(nz(sl->name))) < 0 ||
		    json_object_set_new(b, "output", out) < 0 ||
		    json_object_set_new(b, "state", json_string(sl->state)) < 0)
			goto fail;
		break;
	default:
		break;
	}
	return b;
fail:
	json_decref(b);
	return NULL;
}

/* The history's events for the reply holding `content` (stolen), handed over as `mode` says;
 * for M_END, the reason and error of the REPLY_END frame (borrowed, may be NULL). New, or NULL +
 * err. */
static json_t *translate(struct sg_as_stream *s, json_t *content, enum mode mode,
                         const json_t *reason, const json_t *error)
{
	struct reply *r = s->r;
	struct sg_as_events_ctx ctx = s->ctx;
	json_t *msg, *log = NULL, *events = NULL;

	msg = json_pack("{s:s, s:s, s:s, s:o, s:s}", "id", r->id, "name", "", "role", "assistant",
	                "content", content, "created_at", r->created);
	if (!msg)
		goto oom;
	if (r->has_usage &&
	    json_object_set_new(msg, "usage",
	                        json_pack("{s:I, s:I, s:I, s:I}", "input_tokens", r->usage[0],
	                                  "output_tokens", r->usage[1], "cache_input_tokens",
	                                  r->usage[2], "cache_creation_input_tokens",
	                                  r->usage[3])) < 0)
		goto oom;
	if (mode == M_END) {
		if (json_object_set_new(msg, "finished_at", json_string(s->now_raw)) < 0 ||
		    (json_is_string(reason) &&
		     json_object_set(msg, "finished_reason", (json_t *)reason) < 0) ||
		    (json_is_object(error) && json_object_set(msg, "error", (json_t *)error) < 0))
			goto oom;
	}
	log = json_array();
	if (!log || json_array_append_new(log, msg) < 0) {
		msg = NULL;
		goto oom;
	}
	msg = NULL;
	if (mode == M_CLOSED &&
	    json_array_append_new(log, json_pack("{s:s, s:[], s:s}", "role", "user", "content",
	                                         "created_at", r->created)) < 0)
		goto oom;
	ctx.session_running = mode == M_RUNNING;
	ctx.max_events = 0;
	events = sg_as_messages_to_events(log, &ctx, s->err);
	json_decref(log);
	if (events && json_array_size(events) < 2) {
		json_decref(events);
		sg_err_internal(s->err, "the history gave no turn for a reply");
		return NULL;
	}
	return events;
oom:
	json_decref(msg);
	json_decref(log);
	oom(s);
	return NULL;
}

/* ---- output ------------------------------------------------------------------------- */

/* Outputs ev (stolen) unless the frame completing it is older than since. */
static int put(struct sg_as_stream *s, json_t *ev)
{
	if (!ev)
		return oom(s);
	if (s->since && s->now < s->since) {
		json_decref(ev);
		return 0;
	}
	if (json_array_append_new(s->out, ev) < 0)
		return oom(s);
	return 0;
}

/* events[from, to) (borrowed), each with processed_at = the frame's time when at_now. */
static int put_range(struct sg_as_stream *s, const json_t *events, size_t from, size_t to,
                     int at_now)
{
	size_t i;

	for (i = from; i < to; i++) {
		json_t *ev = json_incref(json_array_get(events, i)), *t = NULL;

		if (at_now && (sg_jtime(s->now, &t) < 0 || !t ||
		               json_object_set_new(ev, "processed_at", t) < 0)) {
			json_decref(ev);
			return t ? oom(s) : bad(s, "created_at is out of range");
		}
		if (put(s, ev) < 0)
			return -1;
	}
	return 0;
}

/* A bare event of the resumed reply under its stream-only id: sg_event_id over ("sevt1",
 * backend, session_key, "id", reply id, "resume", first resumed call, kind). */
static int put_resume(struct sg_as_stream *s, const char *type, const char *kind)
{
	struct sg_id_seed seed = {0};
	char id[SG_EVENT_ID_LEN + 1], ts[SG_TIME_BUFSZ], where[64];
	json_t *ev, *north;
	int rc = 0;

	rc |= sg_id_seed_str(&seed, "sevt1");
	rc |= sg_id_seed_str(&seed, s->ctx.backend);
	rc |= sg_id_seed_str(&seed, s->ctx.session_key);
	rc |= sg_id_seed_str(&seed, "id");
	rc |= sg_id_seed_str(&seed, s->r->id);
	rc |= sg_id_seed_str(&seed, "resume");
	rc |= sg_id_seed_str(&seed, s->r->resume_call);
	rc |= sg_id_seed_str(&seed, kind);
	if (rc) {
		sg_id_seed_free(&seed);
		return oom(s);
	}
	sg_event_id(seed.p, seed.len, id);
	sg_id_seed_free(&seed);
	if (sg_time_format(s->now, ts, sizeof(ts)) < 0)
		return bad(s, "created_at is out of range");
	ev = json_pack("{s:s, s:s, s:s}", "id", id, "type", type, "processed_at", ts);
	if (!ev)
		return oom(s);
	snprintf(where, sizeof(where), "stream frame %s: event", nz(s->type));
	rc = sg_north_event_take(ev, nz(s->ctx.backend), where, 0, &north, s->err);
	if (rc < 0)
		return -1;
	if (rc == SG_NORTH_DROPPED)
		return sg_err_internal(s->err, "a resume event has no shape in the SDK's types");
	return put(s, north);
}

/* Event k of a reply's start as the history gives it (the translation of the reply with no
 * blocks yet: 0 session.status_running, 1 span.model_request_start). */
static int put_start(struct sg_as_stream *s, size_t k)
{
	json_t *events, *content = json_array();
	int rc;

	if (!content)
		return oom(s);
	events = translate(s, content, M_RUNNING, NULL, NULL);
	if (!events)
		return -1;
	rc = put_range(s, events, k, k + 1, 0);
	json_decref(events);
	return rc;
}

/* session.status_running of the reply: the history's, or the resume one. */
static int put_running(struct sg_as_stream *s)
{
	if (s->r->resumed)
		return put_resume(s, "session.status_running", "status_running");
	return put_start(s, 0);
}

/* span.model_request_start, once per run of the reply, before its first other event. */
static int ensure_span(struct sg_as_stream *s)
{
	if (s->r->span_out)
		return 0;
	s->r->span_out = 1;
	if (s->r->resumed)
		return put_resume(s, "span.model_request_start", "span_start");
	return put_start(s, 1);
}

/* The events of held slots q[0..n) (one block, or one run of text blocks), then forgets them. */
static int put_blocks(struct sg_as_stream *s, size_t n)
{
	struct reply *r = s->r;
	json_t *content = json_array(), *events;
	size_t i;
	int rc;

	if (!content)
		return oom(s);
	for (i = 0; i < n; i++) {
		if (json_array_append_new(content, materialize(r->q[i])) < 0) {
			json_decref(content);
			return oom(s);
		}
	}
	events = translate(s, content, M_RUNNING, NULL, NULL);
	if (!events)
		return -1;
	rc = json_array_size(events) > 2 ? ensure_span(s) : 0;
	if (rc == 0)
		rc = put_range(s, events, 2, json_array_size(events), 0);
	json_decref(events);
	if (rc < 0)
		return -1;
	for (i = 0; i < n; i++) {
		struct slot *sl = r->q[i];

		/* a call's position stays known, for the order of a later park's pending calls */
		if (sl->kind == K_CALL &&
		    json_object_size(r->call_seq) < 4 * SG_AS_STREAM_MAX_BLOCKS &&
		    json_object_set_new(r->call_seq, sl->id, json_integer((json_int_t)sl->seq)) <
		        0) {
			return oom(s);
		}
		slot_free(s, sl);
	}
	memmove(r->q, r->q + n, (r->qn - n) * sizeof(r->q[0]));
	r->qn -= n;
	return 0;
}

/* Outputs, in content order, every held event that is final (see the top of the file). */
static int pump(struct sg_as_stream *s, enum force force)
{
	struct reply *r = s->r;

	while (r->qn > 0) {
		struct slot *sl = r->q[0];
		size_t k;

		switch (sl->kind) {
		case K_TEXT:
			for (k = 0; k < r->qn && r->q[k]->kind == K_TEXT; k++)
				if (!r->q[k]->finished && force == F_NONE)
					return 0;
			if (k == r->qn && force == F_NONE)
				return 0; /* the run may go on */
			if (put_blocks(s, k) < 0)
				return -1;
			break;
		case K_THINKING:
			if (!sl->finished && force == F_NONE)
				return 0;
			if (put_blocks(s, 1) < 0)
				return -1;
			break;
		case K_CALL:
			if (!sl->decided && force == F_NONE)
				return 0;
			sl->decided = 1;
			if (put_blocks(s, 1) < 0)
				return -1;
			break;
		case K_RESULT:
			if (!sl->finished) {
				if (force != F_END)
					return 0;
				slot_free(s, sl); /* still running: the history skips it */
				memmove(r->q, r->q + 1, (r->qn - 1) * sizeof(r->q[0]));
				r->qn--;
				break;
			}
			if (put_blocks(s, 1) < 0)
				return -1;
			break;
		default: /* data gives nothing; a hint its user.message when hint_mode says so */
			if (put_blocks(s, 1) < 0)
				return -1;
			break;
		}
	}
	return 0;
}

/* Every held call is known now: as a tool_use (its state as it stands). */
static void decide_all(struct reply *r)
{
	size_t i;

	for (i = 0; i < r->qn; i++)
		if (r->q[i]->kind == K_CALL)
			r->q[i]->decided = 1;
}

static int cmp_await(const void *a, const void *b)
{
	const struct await *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The reply's end as `mode` says (M_END with the REPLY_END frame's reason and error), after
 * everything held. M_PARKED keeps the reply; the others forget it. */
static int finish(struct sg_as_stream *s, enum mode mode, const json_t *reason, const json_t *error)
{
	struct reply *r = s->r;
	json_t *content, *events;
	size_t i, n;
	int rc;

	decide_all(r);
	if (pump(s, mode == M_PARKED ? F_PARK : F_END) < 0 || ensure_span(s) < 0)
		return -1;
	content = json_array();
	if (!content)
		return oom(s);
	if (mode == M_PARKED) {
		qsort(r->aw, r->awn, sizeof(r->aw[0]), cmp_await);
		for (i = 0; i < r->awn; i++)
			if (json_array_append(content, r->aw[i].blk) < 0) {
				json_decref(content);
				return oom(s);
			}
	}
	events = translate(s, content, mode, reason, error);
	if (!events)
		return -1;
	n = json_array_size(events);
	if (mode == M_PARKED) /* the pending calls' events were out already: the end only */
		rc = put_range(s, events, n - 2, n, 1);
	else if (mode == M_CLOSED) /* without the stand-in message that follows it */
		rc = put_range(s, events, 2, n - 1, 1);
	else
		rc = put_range(s, events, 2, n, 0);
	json_decref(events);
	if (rc < 0)
		return -1;
	if (mode == M_PARKED) {
		r->parked = 1;
		r->resuming = 0;
		return 0;
	}
	reply_free(s, r);
	s->r = NULL;
	return 0;
}

/* ---- replies ------------------------------------------------------------------------ */

/* The reply runs again after a park: status_running under a resume id; its span start follows
 * before its next event. */
static int resume(struct sg_as_stream *s)
{
	struct reply *r = s->r;
	size_t i;

	if (!r->resume_call) {
		const struct await *first = NULL;

		for (i = 0; i < r->awn; i++)
			if (!first || r->aw[i].seq < first->seq)
				first = &r->aw[i];
		r->resume_call = dup(first ? sg_jstr(first->blk, "id") : "");
		if (!r->resume_call)
			return oom(s);
	}
	r->parked = 0;
	r->resuming = 0;
	r->resumed = 1;
	r->span_out = 0;
	return put_running(s);
}

/* Starts reply id (its first frame is the one being fed): the reply in progress, if another,
 * is closed as the history shows a message that is no longer the last. running: announce it
 * (a REPLY_START or any agent frame); else it is only known to be parked (a confirmation or
 * result for a reply this stream never saw). */
static int open_reply(struct sg_as_stream *s, const char *id, int running)
{
	if (s->r && finish(s, M_CLOSED, NULL, NULL) < 0)
		return -1;
	s->r = reply_new(id, s->now_raw);
	if (!s->r)
		return oom(s);
	if (!running) {
		s->r->parked = 1;
		return 0;
	}
	return put_running(s);
}

/* The reply the frame's reply_id names, opened or resumed as needed; NULL + err. agent: the
 * frame is the agent's own work (not a confirmation, result or interrupt arriving for it). */
static struct reply *reply_for(struct sg_as_stream *s, const char *id, int agent)
{
	if (!s->r || strcmp(s->r->id, id) != 0) {
		if (open_reply(s, id, agent) < 0)
			return NULL;
		return s->r;
	}
	if (agent && s->r->parked && s->r->resuming && resume(s) < 0)
		return NULL;
	return s->r;
}

/* ---- tool call states --------------------------------------------------------------- */

static struct await *await_find(struct reply *r, const char *id)
{
	size_t i;

	for (i = 0; i < r->awn; i++)
		if (sg_streq(sg_jstr(r->aw[i].blk, "id"), id))
			return &r->aw[i];
	return NULL;
}

/* The call id now has state: its held slot, and the calls the reply waits on. */
static void set_state(struct sg_as_stream *s, const char *id, const char *state)
{
	struct reply *r = s->r;
	struct slot *sl = slot_find(r, K_CALL, id);
	struct await *a = await_find(r, id);

	if (sl)
		snprintf(sl->state, sizeof(sl->state), "%s", state);
	if (a) {
		if (!strcmp(state, "asking") || !strcmp(state, "submitted"))
			json_object_set_new(a->blk, "state", json_string(state));
		else
			await_drop(s, r, (size_t)(a - r->aw));
	}
}

/* REQUIRE_*: each listed call (a ToolCallBlock, checked) waits on `state` (NULL: the state it
 * carries, for a primed tail); decided. */
static int require(struct sg_as_stream *s, const json_t *calls, const char *state)
{
	struct reply *r = s->r;
	const json_t *c;
	size_t i;

	json_array_foreach(calls, i, c) {
		const char *id = sg_jstr(c, "id");
		struct slot *sl = slot_find(r, K_CALL, id);
		struct await *a;
		json_t *blk;

		if (sl)
			sl->decided = 1;
		if (state)
			set_state(s, id, state);
		if (await_find(r, id))
			continue;
		if (sl) {
			blk = materialize(sl);
		} else {
			blk = json_deep_copy(c);
			if (blk && state &&
			    json_object_set_new(blk, "state", json_string(state)) < 0) {
				json_decref(blk);
				blk = NULL;
			}
		}
		if (!blk)
			return oom(s);
		if (r->awn == r->awcap) {
			size_t cap = r->awcap ? r->awcap * 2 : 8;
			struct await *na = realloc(r->aw, cap * sizeof(*na));

			if (!na) {
				json_decref(blk);
				return oom(s);
			}
			r->aw = na;
			r->awcap = cap;
		}
		a = &r->aw[r->awn];
		a->blk = blk;
		a->bytes = sl ? sl->text.len : json_string_length(json_object_get(c, "input"));
		if (sl)
			a->seq = sl->seq;
		else if (json_is_integer(json_object_get(r->call_seq, id)))
			a->seq = (size_t)json_integer_value(json_object_get(r->call_seq, id));
		else
			a->seq = r->seq + i; /* never seen: after everything seen */
		if (budget(s, a->bytes) < 0) {
			json_decref(blk);
			return -1;
		}
		r->awn++;
	}
	return 0;
}

/* ---- frame readers ------------------------------------------------------------------ */

/* frame[key] as a string: 0 with *out (borrowed; NULL when absent and optional), or -1 + 502.
 * ids must be non-empty and free of NUL. */
static int fstr(struct sg_as_stream *s, const json_t *f, const char *key, int required, int is_id,
                const char **out)
{
	const json_t *v = json_object_get(f, key);

	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return bad(s, "%s is missing", key);
		return 0;
	}
	if (!json_is_string(v) || (is_id && !sg_jis_id(v)) || sg_jhas_nul(v))
		return bad(s, "%s is not %s", key, is_id ? "an id string" : "a string");
	*out = json_string_value(v);
	return 0;
}

/* A token count of MODEL_CALL_END: absent or null is 0. */
static int ftokens(struct sg_as_stream *s, const json_t *f, const char *key, json_int_t *v)
{
	const json_t *n = json_object_get(f, key);

	*v = 0;
	if (!n || json_is_null(n))
		return 0;
	if (!json_is_integer(n) || json_integer_value(n) < 0)
		return bad(s, "%s is not a token count", key);
	*v = json_integer_value(n);
	return 0;
}

/* The tool_calls of a REQUIRE_* frame: an array of objects with an id and a name. */
static int fcalls(struct sg_as_stream *s, const json_t *f, const json_t **out)
{
	const json_t *calls = json_object_get(f, "tool_calls"), *c;
	size_t i;

	if (!json_is_array(calls))
		return bad(s, "tool_calls is not an array");
	json_array_foreach(calls, i, c) {
		const json_t *in = json_object_get(c, "input");

		if (!sg_jis_id(json_object_get(c, "id")) ||
		    !json_is_string(json_object_get(c, "name")) ||
		    (in && !json_is_string(in) && !json_is_object(in)))
			return bad(s, "tool_calls[%zu] is not a tool call block", i);
	}
	*out = calls;
	return 0;
}

/* The bytes a hint holds (its strings), for the budget. */
static size_t hint_bytes(const json_t *v)
{
	const json_t *x;
	const char *k;
	size_t n = 0, i;

	if (json_is_string(v))
		return json_string_length(v);
	if (json_is_array(v))
		json_array_foreach(v, i, x)
			n += hint_bytes(x);
	if (json_is_object(v))
		json_object_foreach((json_t *)v, k, x)
			n += strlen(k) + hint_bytes(x);
	return n;
}

/* ---- frames ------------------------------------------------------------------------- */

static int on_block(struct sg_as_stream *s, const json_t *f, enum kind kind, int phase)
{
	const char *rid, *bid, *delta = NULL;
	struct reply *r;
	struct slot *sl;

	if (fstr(s, f, "reply_id", 1, 1, &rid) < 0 || fstr(s, f, "block_id", 1, 1, &bid) < 0 ||
	    (phase == 1 &&
	     fstr(s, f, kind == K_DATA ? "data" : "delta", kind != K_DATA, 0, &delta) < 0) ||
	    (phase == 0 && kind == K_DATA && fstr(s, f, "media_type", 0, 0, &delta) < 0))
		return -1;
	r = reply_for(s, rid, 1);
	if (!r)
		return -1;
	if (phase == 0) {
		/* a block of another type ends the text run before it */
		if (!slot_add(s, kind, bid, NULL))
			return -1;
		return kind == K_TEXT ? 0 : pump(s, F_NONE);
	}
	sl = slot_find(r, kind, bid);
	if (!sl)
		return 0;
	if (phase == 1)
		return kind == K_DATA ? 0 : buf_add(s, &sl->text, &sl->bytes, delta, strlen(delta));
	if (slot_end(s, sl) < 0)
		return -1;
	return pump(s, F_NONE);
}

static int on_hint(struct sg_as_stream *s, const json_t *f)
{
	const json_t *hint = json_object_get(f, "hint"), *src = json_object_get(f, "source");
	const char *rid, *bid;
	struct slot *sl;
	size_t n;

	if (fstr(s, f, "reply_id", 1, 1, &rid) < 0 || fstr(s, f, "block_id", 1, 1, &bid) < 0)
		return -1;
	if (!json_is_string(hint) && !json_is_array(hint))
		return bad(s, "hint is neither a string nor a block list");
	if (src && !json_is_null(src) && !json_is_string(src))
		return bad(s, "source is not a string");
	if (!reply_for(s, rid, 1))
		return -1;
	sl = slot_add(s, K_HINT, bid, NULL);
	if (!sl)
		return -1;
	sl->items = json_pack("{s:s, s:s, s:O, s:O, s:s, s:s}", "type", "hint", "id", bid, "hint",
	                      hint, "source", src ? src : json_null(), "created_at", s->now_raw,
	                      "finished_at", s->now_raw);
	if (!sl->items)
		return oom(s);
	n = hint_bytes(hint);
	if (budget(s, n) < 0)
		return -1;
	sl->bytes += n;
	return pump(s, F_NONE);
}

static int on_model_call(struct sg_as_stream *s, const json_t *f, int end)
{
	json_int_t v[4];
	const char *rid;
	struct reply *r;
	int i;

	if (fstr(s, f, "reply_id", 1, 1, &rid) < 0)
		return -1;
	if (end && (ftokens(s, f, "input_tokens", &v[0]) < 0 ||
	            ftokens(s, f, "output_tokens", &v[1]) < 0 ||
	            ftokens(s, f, "cache_input_tokens", &v[2]) < 0 ||
	            ftokens(s, f, "cache_creation_input_tokens", &v[3]) < 0))
		return -1;
	if (s->r && !strcmp(s->r->id, rid) && s->r->parked && !end) {
		/* a model call runs only once the reply is resumed */
		s->r->resuming = 1;
	}
	r = reply_for(s, rid, 1);
	if (!r)
		return -1;
	if (end) {
		/* counts from the backend, summed without overflow (both are ≥ 0) */
		for (i = 0; i < 4; i++)
			r->usage[i] =
			    v[i] > INT64_MAX - r->usage[i] ? INT64_MAX : r->usage[i] + v[i];
		r->has_usage = 1;
		return 0;
	}
	/* the acting round before this call is over: its calls are all decided */
	decide_all(r);
	if (pump(s, F_NONE) < 0)
		return -1;
	return ensure_span(s);
}

static int on_tool_call(struct sg_as_stream *s, const json_t *f, int phase)
{
	const char *rid, *cid, *name = NULL, *delta = NULL;
	struct reply *r;
	struct slot *sl;

	if (fstr(s, f, "reply_id", 1, 1, &rid) < 0 || fstr(s, f, "tool_call_id", 1, 1, &cid) < 0 ||
	    (phase == 0 && fstr(s, f, "tool_call_name", 1, 0, &name) < 0) ||
	    (phase == 1 && fstr(s, f, "delta", 1, 0, &delta) < 0))
		return -1;
	r = reply_for(s, rid, 1);
	if (!r)
		return -1;
	if (phase == 0) {
		sl = slot_add(s, K_CALL, cid, name);
		if (!sl)
			return -1;
		snprintf(sl->state, sizeof(sl->state), "pending");
		return pump(s, F_NONE);
	}
	sl = slot_find(r, K_CALL, cid);
	if (!sl)
		return 0;
	if (phase == 1)
		return buf_add(s, &sl->text, &sl->bytes, delta, strlen(delta));
	return slot_end(s, sl);
}

/* The held result of call id, created running when this stream never saw it start (a result
 * AgentScope keeps from before a park this stream did not see). */
static struct slot *result_of(struct sg_as_stream *s, const char *id, const char *name)
{
	struct slot *sl = slot_find(s->r, K_RESULT, id);

	if (sl)
		return sl;
	sl = slot_add(s, K_RESULT, id, name ? name : "");
	if (!sl)
		return NULL;
	snprintf(sl->state, sizeof(sl->state), "running");
	sl->items = json_array();
	if (!sl->items) {
		oom(s);
		return NULL;
	}
	return sl;
}

/* Closes the result's open text item into its items. */
static int close_text(struct sg_as_stream *s, struct slot *sl)
{
	json_t *t;

	if (!sl->text_open)
		return 0;
	t = json_pack("{s:s, s:o}", "type", "text", "text", buf_json(&sl->text));
	if (!t || json_array_append_new(sl->items, t) < 0)
		return oom(s);
	sl->text_open = 0;
	sl->text.len = 0;
	return 0;
}

static int on_tool_result(struct sg_as_stream *s, const json_t *f, int phase)
{
	const char *rid, *cid, *name = NULL, *delta = NULL, *state = NULL, *mt = NULL;
	const char *data = NULL, *url = NULL, *bid = NULL;
	struct slot *sl, *call;
	struct reply *r;

	if (fstr(s, f, "reply_id", 1, 1, &rid) < 0 || fstr(s, f, "tool_call_id", 1, 1, &cid) < 0 ||
	    (phase == 0 && fstr(s, f, "tool_call_name", 1, 0, &name) < 0) ||
	    (phase == 1 && fstr(s, f, "delta", 1, 0, &delta) < 0) ||
	    (phase == 2 &&
	     (fstr(s, f, "media_type", 1, 0, &mt) < 0 || fstr(s, f, "data", 0, 0, &data) < 0 ||
	      fstr(s, f, "url", 0, 0, &url) < 0 || fstr(s, f, "block_id", 0, 0, &bid) < 0)) ||
	    (phase == 3 && fstr(s, f, "state", 1, 0, &state) < 0))
		return -1;
	if (phase == 2 && !data == !url)
		return bad(s, "needs exactly one of data and url");
	if (phase == 3 && strlen(state) >= sizeof(sl->state))
		return bad(s, "state is not a tool result state");
	r = reply_for(s, rid, 1);
	if (!r)
		return -1;
	if (phase == 0) {
		sl = slot_add(s, K_RESULT, cid, name);
		if (!sl)
			return -1;
		snprintf(sl->state, sizeof(sl->state), "running");
		sl->items = json_array();
		if (!sl->items)
			return oom(s);
		return pump(s, F_NONE);
	}
	/* output or an end: the call ran here, so it is a tool_use */
	call = slot_find(r, K_CALL, cid);
	if (call)
		call->decided = 1;
	sl = result_of(s, cid, NULL);
	if (!sl)
		return -1;
	if (phase == 1) {
		if (!sl->text_open)
			sl->text.len = 0;
		sl->text_open = 1;
		if (buf_add(s, &sl->text, &sl->bytes, delta, strlen(delta)) < 0)
			return -1;
		return pump(s, F_NONE);
	}
	if (phase == 2) {
		json_t *src, *item;
		size_t n = strlen(data ? data : url);

		if (close_text(s, sl) < 0 || budget(s, n) < 0)
			return -1;
		sl->bytes += n;
		src = data ? json_pack("{s:s, s:s, s:s}", "type", "base64", "data", data,
		                       "media_type", mt)
		           : json_pack("{s:s, s:s, s:s}", "type", "url", "url", url, "media_type",
		                       mt);
		item =
		    src ? json_pack("{s:s, s:s, s:o}", "type", "data", "id", nz(bid), "source", src)
		        : NULL;
		if (!item || json_array_append_new(sl->items, item) < 0)
			return oom(s);
		return pump(s, F_NONE);
	}
	snprintf(sl->state, sizeof(sl->state), "%s", state);
	if (slot_end(s, sl) < 0)
		return -1;
	set_state(s, cid, "finished");
	if (call)
		call->decided = 1;
	return pump(s, F_NONE);
}

static int on_require(struct sg_as_stream *s, const json_t *f, int external)
{
	const json_t *calls = NULL;
	const char *rid;

	if (fstr(s, f, "reply_id", 1, 1, &rid) < 0 || fcalls(s, f, &calls) < 0)
		return -1;
	if (!reply_for(s, rid, 1))
		return -1;
	if (require(s, calls, external ? "submitted" : "asking") < 0)
		return -1;
	/* no REPLY_END follows a park: the reply ends here until it is resumed */
	return finish(s, M_PARKED, NULL, NULL);
}

/* USER_CONFIRM_RESULT, EXTERNAL_EXECUTION_RESULT, USER_INTERRUPT: no event of their own; they
 * move call states as AgentScope does, and mark the parked reply as about to resume (its first
 * resumed call seeds the resume ids). */
static int on_resume_input(struct sg_as_stream *s, const json_t *f, const char *list)
{
	const json_t *items = list ? json_object_get(f, list) : NULL, *it;
	const char *rid, *first = NULL;
	struct reply *r;
	size_t i;

	if (fstr(s, f, "reply_id", 1, 1, &rid) < 0)
		return -1;
	if (list && !json_is_array(items))
		return bad(s, "%s is not an array", list);
	json_array_foreach(items, i, it) {
		const json_t *call =
		    strcmp(list, "confirm_results") ? it : json_object_get(it, "tool_call");

		if (!sg_jis_id(json_object_get(call, "id")) ||
		    (!strcmp(list, "confirm_results") &&
		     !json_is_boolean(json_object_get(it, "confirmed"))))
			return bad(s, "%s[%zu] has the wrong shape", list, i);
		if (!first)
			first = sg_jstr(call, "id");
	}
	r = reply_for(s, rid, 0);
	if (!r)
		return -1;
	if (r->parked) {
		r->resuming = 1;
		if (first) {
			free(r->resume_call);
			r->resume_call = dup(first);
			if (!r->resume_call)
				return oom(s);
		}
	}
	json_array_foreach(items, i, it) {
		if (!strcmp(list, "confirm_results")) {
			const char *id = sg_jstr(json_object_get(it, "tool_call"), "id");
			struct await *a = await_find(r, id);
			struct slot *sl = slot_find(r, K_CALL, id);
			const char *now = a ? sg_jstr(a->blk, "state") : sl ? sl->state : NULL;

			/* only a call that asks moves: a late answer changes nothing */
			if (sg_streq(now, "asking"))
				set_state(s, id,
				          json_is_true(json_object_get(it, "confirmed"))
				              ? "allowed"
				              : "finished");
		} else if (!slot_find(r, K_RESULT, sg_jstr(it, "id"))) {
			/* the result AgentScope keeps running from the park, unless this stream
			 * saw it start: the output arrives as deltas next */
			if (!result_of(s, sg_jstr(it, "id"), sg_jstr(it, "name")))
				return -1;
		}
	}
	return 0;
}

static int on_reply_start(struct sg_as_stream *s, const json_t *f)
{
	const char *rid;

	if (fstr(s, f, "reply_id", 1, 1, &rid) < 0)
		return -1;
	if (s->r && !strcmp(s->r->id, rid)) {
		/* AgentScope's server announces a continuation with the same reply id */
		if (s->r->parked)
			return resume(s);
		return 0;
	}
	return open_reply(s, rid, 1);
}

static int on_reply_end(struct sg_as_stream *s, const json_t *f)
{
	const json_t *reason = json_object_get(f, "finished_reason");
	const json_t *error = json_object_get(f, "error");
	const char *rid;

	if (fstr(s, f, "reply_id", 0, 0, &rid) < 0)
		return -1;
	if (reason && !json_is_null(reason) && !json_is_string(reason))
		return bad(s, "finished_reason is not a string");
	if (error && !json_is_null(error) && !json_is_object(error))
		return bad(s, "error is not an object");
	if (json_is_object(error) &&
	    ((json_object_get(error, "type") && !json_is_string(json_object_get(error, "type"))) ||
	     (json_object_get(error, "message") &&
	      !json_is_string(json_object_get(error, "message")))))
		return bad(s, "error has the wrong shape");
	if (!rid || !*rid)
		return 0; /* AgentScope's "session no longer exists" notice names no reply */
	if (s->r && !strcmp(s->r->id, rid) && s->r->parked && resume(s) < 0)
		return -1;
	if (!reply_for(s, rid, 1))
		return -1;
	return finish(s, M_END, reason, error);
}

/* ---- priming ----------------------------------------------------------------------- */

int sg_as_stream_prime(struct sg_as_stream *s, const json_t *msg, struct sg_error *err)
{
	const json_t *content = json_object_get(msg, "content"), *blk, *usage;
	const char *id = sg_jstr(msg, "id"), *created = sg_jstr(msg, "created_at");
	static const char *const keys[] = {"input_tokens", "output_tokens", "cache_input_tokens",
	                                   "cache_creation_input_tokens"};
	json_t *pending = json_array();
	size_t j;
	int k, rc = 0;

	s->err = err;
	s->type = "(primed tail)";
	if (!pending)
		return oom(s);
	if (s->r || !sg_streq(sg_jstr(msg, "role"), "assistant") || !id || !*id || !created ||
	    !json_is_array(content) || sg_jpresent(json_object_get(msg, "finished_at")))
		goto out;
	json_array_foreach(content, j, blk) {
		const char *st = sg_jstr(blk, "state");

		if (sg_streq(sg_jstr(blk, "type"), "tool_call") &&
		    sg_jis_id(json_object_get(blk, "id")) &&
		    json_is_string(json_object_get(blk, "name")) &&
		    (sg_streq(st, "asking") || sg_streq(st, "submitted")))
			json_array_append(pending, (json_t *)blk);
	}
	if (json_array_size(pending) == 0)
		goto out; /* not parked: nothing a later frame could need */
	s->now_raw = created;
	s->r = reply_new(id, created);
	if (!s->r) {
		rc = oom(s);
		goto out;
	}
	s->r->parked = 1;
	s->r->seq = json_array_size(content);
	usage = json_object_get(msg, "usage");
	if (json_is_object(usage)) {
		s->r->has_usage = 1;
		for (k = 0; k < 4; k++)
			if (json_is_integer(json_object_get(usage, keys[k])) &&
			    json_integer_value(json_object_get(usage, keys[k])) >= 0)
				s->r->usage[k] =
				    json_integer_value(json_object_get(usage, keys[k]));
	}
	json_array_foreach(content, j, blk) {
		if (sg_streq(sg_jstr(blk, "type"), "tool_call") &&
		    sg_jis_id(json_object_get(blk, "id")))
			json_object_set_new(s->r->call_seq, sg_jstr(blk, "id"),
			                    json_integer((json_int_t)j));
	}
	if (require(s, pending, NULL) < 0)
		rc = -1;
out:
	json_decref(pending);
	s->err = NULL;
	s->now_raw = NULL;
	return rc;
}

/* ---- interface ---------------------------------------------------------------------- */

struct sg_as_stream *sg_as_stream_new(const struct sg_as_events_ctx *ctx, int64_t since_us)
{
	struct sg_as_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->backend = dup(ctx->backend);
	s->key = dup(ctx->session_key);
	s->agent = dup(ctx->agent_name);
	s->model = dup(ctx->model);
	if (!s->backend || !s->key || !s->agent || !s->model) {
		sg_as_stream_free(s);
		return NULL;
	}
	s->ctx.backend = s->backend;
	s->ctx.session_key = s->key;
	s->ctx.agent_name = s->agent;
	s->ctx.model = s->model;
	s->ctx.tz = ctx->tz;
	s->ctx.hint_mode = ctx->hint_mode;
	s->since = since_us > 0 ? since_us : 0;
	return s;
}

void sg_as_stream_free(struct sg_as_stream *s)
{
	if (!s)
		return;
	reply_free(s, s->r);
	free(s->backend);
	free(s->key);
	free(s->agent);
	free(s->model);
	free(s);
}

/* Every frame type with a handler: on_block's arg is kind << 2 | phase; the tool handlers'
 * the phase (0 start, 1 text delta, 2 data delta, 3 end; calls: 0 start, 1 delta, 2 end). */
enum {
	H_REPLY_START,
	H_REPLY_END,
	H_MODEL,
	H_BLOCK,
	H_HINT,
	H_CALL,
	H_RESULT,
	H_REQUIRE,
	H_INPUT,
};

static const struct {
	const char *type;
	int handler, arg;
} frames[] = {
    {"REPLY_START", H_REPLY_START, 0},
    {"REPLY_END", H_REPLY_END, 0},
    {"MODEL_CALL_START", H_MODEL, 0},
    {"MODEL_CALL_END", H_MODEL, 1},
    {"TEXT_BLOCK_START", H_BLOCK, K_TEXT << 2 | 0},
    {"TEXT_BLOCK_DELTA", H_BLOCK, K_TEXT << 2 | 1},
    {"TEXT_BLOCK_END", H_BLOCK, K_TEXT << 2 | 2},
    {"THINKING_BLOCK_START", H_BLOCK, K_THINKING << 2 | 0},
    {"THINKING_BLOCK_DELTA", H_BLOCK, K_THINKING << 2 | 1},
    {"THINKING_BLOCK_END", H_BLOCK, K_THINKING << 2 | 2},
    {"DATA_BLOCK_START", H_BLOCK, K_DATA << 2 | 0},
    {"DATA_BLOCK_DELTA", H_BLOCK, K_DATA << 2 | 1},
    {"DATA_BLOCK_END", H_BLOCK, K_DATA << 2 | 2},
    {"HINT_BLOCK", H_HINT, 0},
    {"TOOL_CALL_START", H_CALL, 0},
    {"TOOL_CALL_DELTA", H_CALL, 1},
    {"TOOL_CALL_END", H_CALL, 2},
    {"TOOL_RESULT_START", H_RESULT, 0},
    {"TOOL_RESULT_TEXT_DELTA", H_RESULT, 1},
    {"TOOL_RESULT_DATA_DELTA", H_RESULT, 2},
    {"TOOL_RESULT_END", H_RESULT, 3},
    {"REQUIRE_USER_CONFIRM", H_REQUIRE, 0},
    {"REQUIRE_EXTERNAL_EXECUTION", H_REQUIRE, 1},
    {"USER_CONFIRM_RESULT", H_INPUT, 0},
    {"EXTERNAL_EXECUTION_RESULT", H_INPUT, 1},
    {"USER_INTERRUPT", H_INPUT, 2},
    /* CUSTOM and EXCEED_MAX_ITERS have no north event (docs/fidelity-agentscope.md) and are
     * ignored like any type not listed here */
};

int sg_as_stream_feed(struct sg_as_stream *s, const json_t *frame, json_t *out,
                      struct sg_error *err)
{
	static const char *const lists[] = {"confirm_results", "execution_results", NULL};
	const char *type, *ca;
	size_t i;
	int rc = 0;

	s->out = out;
	s->err = err;
	s->type = "?";
	if (!json_is_object(frame))
		return bad(s, "is not an object");
	type = sg_jstr(frame, "type");
	for (i = 0; type && i < sizeof(frames) / sizeof(frames[0]); i++)
		if (!strcmp(type, frames[i].type))
			break;
	if (!type || i == sizeof(frames) / sizeof(frames[0]))
		return 0;
	s->type = type;
	ca = sg_jstr(frame, "created_at");
	if (!ca || sg_time_parse_local(ca, s->ctx.tz, &s->now) < 0)
		return bad(s, "created_at is not a timestamp");
	s->now_raw = ca;

	switch (frames[i].handler) {
	case H_REPLY_START:
		rc = on_reply_start(s, frame);
		break;
	case H_REPLY_END:
		rc = on_reply_end(s, frame);
		break;
	case H_MODEL:
		rc = on_model_call(s, frame, frames[i].arg);
		break;
	case H_BLOCK:
		rc = on_block(s, frame, (enum kind)(frames[i].arg >> 2), frames[i].arg & 3);
		break;
	case H_HINT:
		rc = on_hint(s, frame);
		break;
	case H_CALL:
		rc = on_tool_call(s, frame, frames[i].arg);
		break;
	case H_RESULT:
		rc = on_tool_result(s, frame, frames[i].arg);
		break;
	case H_REQUIRE:
		rc = on_require(s, frame, frames[i].arg);
		break;
	default:
		rc = on_resume_input(s, frame, lists[frames[i].arg]);
		break;
	}
	s->out = NULL;
	s->err = NULL;
	s->now_raw = NULL;
	return rc;
}
