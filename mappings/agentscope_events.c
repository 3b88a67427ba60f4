/* agentscope_events.c - see agentscope_events.h.
 *
 * AgentScope keeps one Msg per user input and one Msg per assistant *reply*; every block of
 * every ReAct iteration of a reply is appended to that one Msg. So a user Msg becomes one
 * user.message, and an assistant Msg becomes a whole turn:
 *   session.status_running, span.model_request_start, one event per block (consecutive text
 *   blocks coalesced), span.model_request_end, [session.error], session.status_idle.
 *
 * Event ids are hashes of where the event comes from (backend, session, message, block,
 * kind), never of its position in the answer, so they survive paging, re-fetching and the
 * log growing at its end. A tuple seen twice (duplicate block or message ids) gets the next
 * ordinal, so ids are unique within one answer; the id itself is minted by the core
 * (sg_event_id, src/idcodec.h) from that tuple.
 *
 * Every event leaves through the core's normaliser (sg_north_event_take, strict), so what this
 * file builds is held to the SDK's event types like every other module's events. */
#include "agentscope_events.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec.h"
#include "idcodec.h"
#include "jsonx.h"
#include "north.h"
#include "timeutil.h"

#define WHERE_MAX 256

enum role { ROLE_USER, ROLE_ASSISTANT, ROLE_SYSTEM };

/* Where an event comes from inside its message: the message itself (synthetic events), or
 * a block named by its id, or by its index when it has no id. */
struct origin {
	const char *id; /* block id (not NUL-terminated), or NULL */
	size_t id_len;
	size_t index;
	int is_block;
	const json_t *parked; /* the end of a parked tail: the block ids (strings, borrowed) of
	                       * its pending tool calls, in content order; else NULL */
};

/* State of one sg_as_messages_to_events call. */
struct run {
	const struct sg_as_events_ctx *ctx;
	struct sg_error *err;
	json_t *out;            /* the answer (new; handed to the caller) */
	json_t *ids;            /* every id minted so far → next ordinal for its tuple (new) */
	json_t *calls;          /* tool call id → event id of its latest tool-use event (new) */
	json_t *where;          /* tool-use event id → [message index, block index], or NULL when
	                         * not asked for (sg_as_tool_use_index) */
	struct sg_id_seed seed; /* scratch for the id hash input, reused */
	size_t max_events;

	/* the message being translated */
	size_t mi;
	const char *msg_id; /* NULL when the Msg has no id */
	size_t msg_id_len;
	const char *created_raw;
	int64_t created, finished;
	int has_finished;
};

static const char *nz(const char *s)
{
	return s ? s : "";
}

/* Sets a 502 naming the backend and the message; returns -1. */
__attribute__((format(printf, 2, 3))) static int bad(struct run *r, const char *fmt, ...)
{
	char where[48];
	va_list ap;

	snprintf(where, sizeof(where), "messages[%zu]: ", r->mi);
	va_start(ap, fmt);
	sg_err_vbackend(r->err, nz(r->ctx->backend), where, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- ids --------------------------------------------------------------------------- */

/* The id of the event of `kind` from origin o in the current message, the tuple's
 * ordinal-th: sg_event_id over the tuple's fields. */
static int hash_id(struct run *r, const struct origin *o, const char *kind, size_t ordinal,
                   char out[SG_EVENT_ID_LEN + 1])
{
	struct sg_id_seed *b = &r->seed;
	int rc = 0;

	b->len = 0;
	rc |= sg_id_seed_str(b, "sevt1");
	rc |= sg_id_seed_str(b, r->ctx->backend);
	rc |= sg_id_seed_str(b, r->ctx->session_key);
	if (r->msg_id) {
		rc |= sg_id_seed_str(b, "id");
		rc |= sg_id_seed_add(b, r->msg_id, r->msg_id_len);
	} else {
		/* documented fallback: position and creation time of the id-less Msg */
		rc |= sg_id_seed_str(b, "ix");
		rc |= sg_id_seed_uint(b, r->mi);
		rc |= sg_id_seed_str(b, r->created_raw);
	}
	if (!o->is_block) {
		rc |= sg_id_seed_str(b, "msg");
	} else if (o->id) {
		rc |= sg_id_seed_str(b, "id");
		rc |= sg_id_seed_add(b, o->id, o->id_len);
	} else {
		rc |= sg_id_seed_str(b, "ix");
		rc |= sg_id_seed_uint(b, o->index);
	}
	if (o->parked) {
		const json_t *cid;
		size_t k;

		rc |= sg_id_seed_str(b, "parked");
		rc |= sg_id_seed_uint(b, json_array_size(o->parked));
		json_array_foreach(o->parked, k, cid)
			rc |= sg_id_seed_add(b, json_string_value(cid), json_string_length(cid));
	}
	rc |= sg_id_seed_str(b, kind);
	rc |= sg_id_seed_uint(b, ordinal);
	if (rc)
		return sg_err_internal(r->err, "out of memory");
	sg_event_id(b->p, b->len, out);
	return 0;
}

/* Mints the id of a new event and reserves it. r->ids maps every minted id to the next
 * ordinal to try for the tuple whose ordinal-0 id it is, so a tuple repeated k times costs
 * O(k) hashes in all, not O(k^2); the probe loop only runs again on a true hash collision. */
static int mint_id(struct run *r, const struct origin *o, const char *kind,
                   char out[SG_EVENT_ID_LEN + 1])
{
	char first[SG_EVENT_ID_LEN + 1];
	const json_t *seen;
	json_int_t ordinal;

	if (hash_id(r, o, kind, 0, first) < 0)
		return -1;
	seen = json_object_get(r->ids, first);
	memcpy(out, first, sizeof(first));
	if (seen) {
		for (ordinal = json_integer_value(seen) > 0 ? json_integer_value(seen) : 1;;
		     ordinal++) {
			if (hash_id(r, o, kind, (size_t)ordinal, out) < 0)
				return -1;
			if (!json_object_get(r->ids, out))
				break;
		}
		if (json_object_set_new(r->ids, first, json_integer(ordinal + 1)) < 0 ||
		    json_object_set_new(r->ids, out, json_integer(0)) < 0)
			return sg_err_internal(r->err, "out of memory");
		return 0;
	}
	if (json_object_set_new(r->ids, out, json_integer(1)) < 0)
		return sg_err_internal(r->err, "out of memory");
	return 0;
}

/* ---- small readers ---------------------------------------------------------------- */

/* 1 = *us set, 0 = absent or null, -1 = present but not a readable timestamp (err set). */
static int read_time(struct run *r, const json_t *obj, const char *key, const char *where,
                     int64_t *us)
{
	const json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || sg_time_parse_local(json_string_value(v), r->ctx->tz, us) < 0)
		return bad(r, "%s%s is not a timestamp", where, key);
	return 1;
}

/* A block's own time: its finished_at, else its created_at. 1 = *us set, 0 = it has neither,
 * -1 + err = one that does not read. */
static int own_time(struct run *r, const json_t *blk, size_t j, int64_t *us)
{
	char where[48];
	int rc;

	snprintf(where, sizeof(where), "content[%zu].", j);
	rc = read_time(r, blk, "finished_at", where, us);
	return rc == 0 ? read_time(r, blk, "created_at", where, us) : rc;
}

/* processed_at of a block's event: its own time, else the message's finished_at, else its
 * created_at. */
static int block_time(struct run *r, const json_t *blk, size_t j, int64_t *us)
{
	int rc = own_time(r, blk, j, us);

	if (rc < 0)
		return -1;
	if (rc == 0)
		*us = r->has_finished ? r->finished : r->created;
	return 0;
}

/* When a reply ended: finished_at, else the own time of its last block that has one, else its
 * created_at (a reply that died leaves finished_at null). */
static int end_time(struct run *r, const json_t *content, int64_t *us)
{
	size_t j;
	int rc;

	if (r->has_finished) {
		*us = r->finished;
		return 0;
	}
	for (j = json_array_size(content); j-- > 0;) {
		rc = own_time(r, json_array_get(content, j), j, us);
		if (rc != 0)
			return rc < 0 ? -1 : 0;
	}
	*us = r->created;
	return 0;
}

/* The media type without parameters equals want (case-insensitive). */
static int mt_is(const char *mt, const char *want)
{
	size_t n = strlen(want);

	return strncasecmp(mt, want, n) == 0 && (mt[n] == '\0' || mt[n] == ';' || mt[n] == ' ');
}

static int mt_prefix(const char *mt, const char *prefix)
{
	return strncasecmp(mt, prefix, strlen(prefix)) == 0;
}

/* ---- content blocks --------------------------------------------------------------- */

/* {type:"text", text} (new reference), or NULL. text is a string (borrowed). */
static json_t *text_block_of(const json_t *text)
{
	return json_pack("{s:s, s:O}", "type", "text", "text", text);
}

static json_t *text_block(const char *text)
{
	return json_pack("{s:s, s:s}", "type", "text", "text", text);
}

/* Decodes standard base64 (with or without padding) into a new JSON string when the bytes
 * are UTF-8; NULL otherwise. Reuses the strict base64url decoder on a translated copy. */
static json_t *decode_text(const char *b64, size_t n)
{
	json_t *s = NULL;
	uint8_t *bytes = NULL;
	char *url;
	size_t i;
	long got;

	while (n > 0 && b64[n - 1] == '=')
		n--;
	url = malloc(n + 1);
	if (!url)
		return NULL;
	for (i = 0; i < n; i++)
		url[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
	url[n] = '\0';
	bytes = malloc(n / 4 * 3 + 3);
	if (!bytes)
		goto out;
	got = sg_b64url_decode(url, n, bytes, n / 4 * 3 + 3);
	if (got >= 0)
		s = json_stringn((const char *)bytes, (size_t)got);
out:
	free(bytes);
	free(url);
	return s;
}

/* "[audio omitted: audio/mpeg]": the media type is cut to 100 bytes and anything but
 * printable ASCII replaced, so the placeholder is always valid UTF-8. */
static json_t *placeholder(const char *what, const char *mt)
{
	char clean[101], text[160];
	size_t i;

	for (i = 0; mt[i] && i < sizeof(clean) - 1; i++)
		clean[i] = mt[i] > 0x20 && mt[i] < 0x7f ? mt[i] : '?';
	clean[i] = '\0';
	snprintf(text, sizeof(text), "[%s omitted: %s]", what, i ? clean : "unknown");
	return text_block(text);
}

enum data_kind { DATA_IMAGE, DATA_PDF, DATA_TEXT, DATA_AUDIO, DATA_VIDEO, DATA_OTHER };

static enum data_kind data_kind(const char *mt)
{
	if (mt_prefix(mt, "image/"))
		return DATA_IMAGE;
	if (mt_is(mt, "application/pdf"))
		return DATA_PDF;
	if (mt_prefix(mt, "text/"))
		return DATA_TEXT;
	if (mt_prefix(mt, "audio/"))
		return DATA_AUDIO;
	if (mt_prefix(mt, "video/"))
		return DATA_VIDEO;
	return DATA_OTHER;
}

/* The north source of a data block: {url} or {base64}, or for text the decoded
 * PlainTextDocumentSource when the bytes are UTF-8. New reference, or NULL. */
static json_t *data_source(enum data_kind kind, int is_url, const char *mt, const json_t *payload)
{
	json_t *text;

	if (is_url)
		return json_pack("{s:s, s:O}", "type", "url", "url", payload);
	if (kind == DATA_TEXT &&
	    (text = decode_text(json_string_value(payload), json_string_length(payload))))
		return json_pack("{s:s, s:s, s:o}", "type", "text", "media_type", "text/plain",
		                 "data", text);
	/* images, PDFs, and text that is not base64 of UTF-8: the bytes as they came */
	return json_pack("{s:s, s:s, s:O}", "type", "base64", "media_type", mt, "data", payload);
}

/* The north block for an AgentScope data block (borrowed): image, document, or a text
 * placeholder for what north cannot carry. Returns a new reference, or NULL + err. */
static json_t *data_block(struct run *r, const json_t *blk, const char *where)
{
	const json_t *src = json_object_get(blk, "source"), *payload;
	const char *stype, *mt, *name = sg_jstr(blk, "name");
	enum data_kind kind;
	json_t *nsrc, *res;
	int is_url;

	if (!json_is_object(src)) {
		bad(r, "%s: data block has no source object", where);
		return NULL;
	}
	stype = sg_jstr(src, "type");
	if (!sg_streq(stype, "base64") && !sg_streq(stype, "url")) {
		bad(r, "%s: data source type is neither base64 nor url", where);
		return NULL;
	}
	is_url = sg_streq(stype, "url");
	payload = json_object_get(src, is_url ? "url" : "data");
	if (!json_is_string(payload)) {
		bad(r, "%s: data source has no %s string", where, is_url ? "url" : "data");
		return NULL;
	}
	mt = nz(sg_jstr(src, "media_type"));
	kind = data_kind(mt);

	switch (kind) {
	case DATA_AUDIO:
		res = placeholder("audio", mt);
		break;
	case DATA_VIDEO:
		res = placeholder("video", mt);
		break;
	case DATA_OTHER:
		res = placeholder("file", mt);
		break;
	case DATA_IMAGE:
		nsrc = data_source(kind, is_url, mt, payload);
		res = nsrc ? json_pack("{s:s, s:o}", "type", "image", "source", nsrc) : NULL;
		break;
	default: /* DATA_PDF, DATA_TEXT */
		nsrc = data_source(kind, is_url, mt, payload);
		res = nsrc ? json_pack("{s:s, s:o}", "type", "document", "source", nsrc) : NULL;
		if (res && name && *name &&
		    json_object_set_new(res, "title", json_string(name)) < 0) {
			json_decref(res);
			res = NULL;
		}
		break;
	}
	if (!res)
		sg_err_internal(r->err, "out of memory");
	return res;
}

/* Appends the north form of a text/data block list (AgentScope tool outputs, hints) to
 * arr. Other block types are skipped. Returns 0 or -1 + err. */
static int append_blocks(struct run *r, json_t *arr, const json_t *list, const char *where)
{
	char here[WHERE_MAX];
	const json_t *b;
	size_t k;

	for (k = 0; (b = json_array_get(list, k)); k++) {
		const char *type = sg_jstr(b, "type");
		json_t *nb = NULL;

		snprintf(here, sizeof(here), "%s[%zu]", where, k);
		if (!json_is_object(b) || !type)
			return bad(r, "%s is not a typed block", here);
		if (!strcmp(type, "text")) {
			if (!json_is_string(json_object_get(b, "text")))
				return bad(r, "%s.text is not a string", here);
			nb = text_block_of(json_object_get(b, "text"));
		} else if (!strcmp(type, "data")) {
			nb = data_block(r, b, here);
			if (!nb)
				return -1;
		} else {
			continue;
		}
		if (!nb || json_array_append_new(arr, nb) < 0)
			return sg_err_internal(r->err, "out of memory");
	}
	return 0;
}

/* ---- events ----------------------------------------------------------------------- */

/* A new event {id, type, processed_at} (new reference; its id also in id_out), or NULL. */
static json_t *new_event(struct run *r, const char *type, const struct origin *o, const char *kind,
                         int64_t at, char id_out[SG_EVENT_ID_LEN + 1])
{
	char ts[SG_TIME_BUFSZ];
	json_t *ev;

	if (json_array_size(r->out) >= r->max_events) {
		sg_err_bad_gateway(r->err,
		                   "backend '%s': message log expands to more than %zu events",
		                   nz(r->ctx->backend), r->max_events);
		return NULL;
	}
	if (sg_time_format(at, ts, sizeof(ts)) < 0) {
		bad(r, "a timestamp is out of range");
		return NULL;
	}
	if (mint_id(r, o, kind, id_out) < 0)
		return NULL;
	ev = json_pack("{s:s, s:s, s:s}", "id", id_out, "type", type, "processed_at", ts);
	if (!ev)
		sg_err_internal(r->err, "out of memory");
	return ev;
}

/* Appends ev (stolen; NULL after a failure that set err) once the core's normaliser has held
 * it to the SDK's event type. Strict: everything in ev was built here from values checked
 * here, so a value the SDK would not take, or an event it has no member for, is this file's
 * bug (a 502, or a 500 for a dropped event), never something to leave out quietly. Returns 0
 * or -1 + err. */
static int emit(struct run *r, json_t *ev)
{
	char path[48];
	json_t *north;
	int rc;

	if (!ev)
		return -1;
	snprintf(path, sizeof(path), "messages[%zu]: event", r->mi);
	rc = sg_north_event_take(ev, nz(r->ctx->backend), path, 0, &north, r->err);
	if (rc < 0)
		return -1;
	if (rc == SG_NORTH_DROPPED)
		return sg_err_internal(r->err,
		                       "backend '%s': messages[%zu]: an event built for it has no "
		                       "shape in the SDK's event types",
		                       nz(r->ctx->backend), r->mi);
	if (json_array_append_new(r->out, north) < 0)
		return sg_err_internal(r->err, "out of memory");
	return 0;
}

/* Emits a bare event (no payload beyond the envelope). */
static int emit_bare(struct run *r, const char *type, const struct origin *o, const char *kind,
                     int64_t at, char id_out[SG_EVENT_ID_LEN + 1])
{
	return emit(r, new_event(r, type, o, kind, at, id_out));
}

/* Sets key on ev to val (stolen); on failure drops ev too. Returns 0 or -1 + err. */
static int set_or_drop(struct run *r, json_t *ev, const char *key, json_t *val)
{
	if (!val || json_object_set_new(ev, key, val) < 0) {
		json_decref(ev);
		return sg_err_internal(r->err, "out of memory");
	}
	return 0;
}

/* Emits an event of `type` whose payload is `content` (stolen, also on failure). Returns 0 or
 * -1 + err. */
static int emit_content(struct run *r, const char *type, const struct origin *o, const char *kind,
                        int64_t at, json_t *content)
{
	char id[SG_EVENT_ID_LEN + 1];
	json_t *ev = new_event(r, type, o, kind, at, id);

	if (!ev) {
		json_decref(content);
		return -1;
	}
	if (set_or_drop(r, ev, "content", content) < 0)
		return -1;
	return emit(r, ev);
}

static struct origin block_origin(const json_t *blk, size_t j)
{
	struct origin o = {.is_block = 1, .index = j};
	const json_t *id = json_object_get(blk, "id");

	if (json_is_string(id) && json_string_length(id) > 0) {
		o.id = json_string_value(id);
		o.id_len = json_string_length(id);
	}
	return o;
}

/* A user Msg: AgentScope allows only text and data blocks from users; anything else is
 * skipped. */
static int user_message(struct run *r, const json_t *content)
{
	static const struct origin whole = {0};
	json_t *arr = json_array();

	if (!arr)
		return sg_err_internal(r->err, "out of memory");
	if (append_blocks(r, arr, content, "content") < 0) {
		json_decref(arr);
		return -1;
	}
	return emit_content(r, "user.message", &whole, "user_message",
	                    r->has_finished ? r->finished : r->created, arr);
}

/* Consecutive text blocks content[j..] become one agent.message keyed by the first block.
 * Any other block, even one that emits nothing, ends the run, so ids do not depend on
 * hint_mode. Sets *next to the first block after the run. */
static int text_run(struct run *r, const json_t *content, size_t j, size_t *next)
{
	struct origin o = block_origin(json_array_get(content, j), j);
	size_t k, n = json_array_size(content);
	json_t *arr;
	int64_t at;

	arr = json_array();
	if (!arr)
		return sg_err_internal(r->err, "out of memory");
	for (k = j; k < n; k++) {
		const json_t *blk = json_array_get(content, k);
		const json_t *text = json_object_get(blk, "text");

		if (!sg_streq(sg_jstr(blk, "type"), "text"))
			break;
		if (!json_is_string(text)) {
			bad(r, "content[%zu].text is not a string", k);
			goto fail;
		}
		if (json_array_append_new(arr, text_block_of(text)) < 0) {
			sg_err_internal(r->err, "out of memory");
			goto fail;
		}
	}
	*next = k;
	if (block_time(r, json_array_get(content, k - 1), k - 1, &at) < 0)
		goto fail;
	return emit_content(r, "agent.message", &o, "text", at, arr);
fail:
	json_decref(arr);
	return -1;
}

/* The tool input as an object: AgentScope stores the raw JSON text the model streamed.
 * Text that does not parse to an object becomes {} (documented loss). New reference, or
 * NULL when out of memory. */
static json_t *tool_input(const json_t *in)
{
	if (json_is_object(in))
		return json_deep_copy(in);
	if (!json_is_string(in))
		return json_object();
	return sg_jparse_object(json_string_value(in), json_string_length(in));
}

/* agent.tool_use, or agent.custom_tool_use while the call waits for external execution.
 * The id hashes the call as "tool_call" either way, so it survives submitted → finished. */
static int tool_call(struct run *r, const json_t *blk, size_t j, json_t *pending,
                     json_t *pending_blocks)
{
	const char *cid = sg_jstr(blk, "id"), *name = sg_jstr(blk, "name");
	const char *state = sg_jstr(blk, "state");
	struct origin o = block_origin(blk, j);
	char id[SG_EVENT_ID_LEN + 1];
	int submitted, asking;
	json_t *ev;
	int64_t at;

	if (!cid)
		return bad(r, "content[%zu]: tool_call has no id string", j);
	if (!name)
		return bad(r, "content[%zu]: tool_call has no name string", j);
	submitted = sg_streq(state, "submitted");
	asking = sg_streq(state, "asking");
	if (block_time(r, blk, j, &at) < 0)
		return -1;
	ev = new_event(r, submitted ? "agent.custom_tool_use" : "agent.tool_use", &o, "tool_call",
	               at, id);
	if (!ev)
		return -1;
	if (set_or_drop(r, ev, "name", json_string(name)) < 0 ||
	    set_or_drop(r, ev, "input", tool_input(json_object_get(blk, "input"))) < 0)
		return -1;
	if (emit(r, ev) < 0)
		return -1;
	if (json_object_setn_new(r->calls, cid, json_string_length(json_object_get(blk, "id")),
	                         json_string(id)) < 0)
		return sg_err_internal(r->err, "out of memory");
	if (r->where && json_object_set_new(
	                    r->where, id, json_pack("[I,I]", (json_int_t)r->mi, (json_int_t)j)) < 0)
		return sg_err_internal(r->err, "out of memory");
	if (pending && (asking || submitted) &&
	    (json_array_append_new(pending, json_string(id)) < 0 ||
	     json_array_append(pending_blocks, json_object_get(blk, "id")) < 0))
		return sg_err_internal(r->err, "out of memory");
	return 0;
}

static int tool_result(struct run *r, const json_t *blk, size_t j)
{
	const json_t *jid = json_object_get(blk, "id"), *out = json_object_get(blk, "output");
	const char *state = sg_jstr(blk, "state");
	struct origin o = block_origin(blk, j);
	char id[SG_EVENT_ID_LEN + 1], link[SG_EVENT_ID_LEN + 1];
	const char *use_id;
	char where[48];
	json_t *ev, *content;
	int64_t at;

	if (!json_is_string(jid))
		return bad(r, "content[%zu]: tool_result has no id string", j);
	if (sg_streq(state, "running"))
		return 0; /* partial output of a tool still running */
	use_id = json_string_value(
	    json_object_getn(r->calls, json_string_value(jid), json_string_length(jid)));
	if (!use_id) {
		/* orphan: point at the id its call would get in this message (documented) */
		if (hash_id(r, &o, "tool_call", 0, link) < 0)
			return -1;
		use_id = link;
	}
	content = json_array();
	if (!content)
		return sg_err_internal(r->err, "out of memory");
	snprintf(where, sizeof(where), "content[%zu].output", j);
	if (json_is_string(out)) {
		if (json_string_length(out) > 0 &&
		    json_array_append_new(content, text_block_of(out)) < 0) {
			sg_err_internal(r->err, "out of memory");
			goto fail;
		}
	} else if (json_is_array(out)) {
		if (append_blocks(r, content, out, where) < 0)
			goto fail;
	} else if (out && !json_is_null(out)) {
		bad(r, "%s is neither a string nor a block list", where);
		goto fail;
	}
	if (block_time(r, blk, j, &at) < 0)
		goto fail;
	ev = new_event(r, "agent.tool_result", &o, "tool_result", at, id);
	if (!ev)
		goto fail;
	if (set_or_drop(r, ev, "content", content) < 0 ||
	    set_or_drop(r, ev, "tool_use_id", json_string(use_id)) < 0)
		return -1;
	if (set_or_drop(r, ev, "is_error",
	                json_boolean(sg_streq(state, "error") || sg_streq(state, "denied") ||
	                             sg_streq(state, "interrupted"))) < 0)
		return -1;
	return emit(r, ev);
fail:
	json_decref(content);
	return -1;
}

/* A hint's label, "[from <source>]" or "[hint]" without a source, followed by " " and text
 * when text (a JSON string, borrowed) is given. src is the block's source (borrowed, any
 * JSON). Returns a new string, or NULL when out of memory. */
static json_t *hint_label(const json_t *src, const json_t *text)
{
	int from = json_is_string(src) && json_string_length(src) > 0;
	size_t sn = from ? json_string_length(src) : 0, tn = text ? json_string_length(text) : 0;
	char *p = malloc((from ? 7 + sn : 6) + (text ? 1 + tn : 0)), *q = p;
	json_t *s;

	if (!p)
		return NULL;
	if (from) {
		memcpy(q, "[from ", 6);
		memcpy(q + 6, json_string_value(src), sn);
		q[6 + sn] = ']';
		q += 7 + sn;
	} else {
		memcpy(q, "[hint]", 6);
		q += 6;
	}
	if (text) {
		*q++ = ' ';
		memcpy(q, json_string_value(text), tn);
		q += tn;
	}
	/* both pieces came out of jansson, which holds only valid UTF-8 */
	s = json_stringn_nocheck(p, (size_t)(q - p));
	free(p);
	return s;
}

/* hint_mode 1: the hint as the model sees it, a user turn, labelled with its sender. */
static int hint(struct run *r, const json_t *blk, size_t j)
{
	const json_t *h = json_object_get(blk, "hint"), *src = json_object_get(blk, "source");
	struct origin o = block_origin(blk, j);
	json_t *content = NULL, *first;
	char where[48];
	int64_t at;
	int rc = -1;

	content = json_array();
	if (!content)
		goto oom;
	snprintf(where, sizeof(where), "content[%zu].hint", j);
	if (json_is_string(h)) {
		if (json_array_append_new(content, text_block_of(h)) < 0)
			goto oom;
	} else if (json_is_array(h)) {
		if (append_blocks(r, content, h, where) < 0)
			goto out;
	} else {
		bad(r, "%s is neither a string nor a block list", where);
		goto out;
	}
	/* the label goes in front of the first text, or alone when the hint starts with media */
	first = json_array_get(content, 0);
	if (sg_streq(sg_jstr(first, "type"), "text")) {
		if (json_object_set_new(first, "text",
		                        hint_label(src, json_object_get(first, "text"))) < 0)
			goto oom;
	} else {
		first = json_pack("{s:s, s:o}", "type", "text", "text", hint_label(src, NULL));
		if (json_array_insert_new(content, 0, first) < 0)
			goto oom;
	}
	if (block_time(r, blk, j, &at) < 0)
		goto out;
	rc = emit_content(r, "user.message", &o, "hint", at, content);
	content = NULL;
	goto out;
oom:
	sg_err_internal(r->err, "out of memory");
out:
	json_decref(content);
	return rc;
}

/* The Msg.usage number at key: 0 when missing or null. */
static int usage_field(struct run *r, const json_t *usage, const char *key, json_int_t *v)
{
	const json_t *n = json_object_get(usage, key);

	*v = 0;
	if (!n || json_is_null(n))
		return 0;
	if (!json_is_integer(n))
		return bad(r, "usage.%s is not an integer", key);
	*v = json_integer_value(n);
	return 0;
}

/* SDK model_usage from Msg.usage (summed over the reply's model calls). New reference. */
static json_t *model_usage(struct run *r, const json_t *msg)
{
	const json_t *u = json_object_get(msg, "usage");
	json_int_t in, outp, cread, ccreate;
	json_t *mu;

	if (u && !json_is_null(u) && !json_is_object(u)) {
		bad(r, "usage is not an object");
		return NULL;
	}
	if (usage_field(r, u, "input_tokens", &in) < 0 ||
	    usage_field(r, u, "output_tokens", &outp) < 0 ||
	    usage_field(r, u, "cache_input_tokens", &cread) < 0 ||
	    usage_field(r, u, "cache_creation_input_tokens", &ccreate) < 0)
		return NULL;
	mu = json_pack("{s:I, s:I, s:I, s:I}", "input_tokens", in, "output_tokens", outp,
	               "cache_creation_input_tokens", ccreate, "cache_read_input_tokens", cread);
	if (!mu)
		sg_err_internal(r->err, "out of memory");
	return mu;
}

/* AgentScope's ErrorType → the SDK's session error union. Its types are not model-specific
 * (they also cover embedding, TTS and MCP calls), so only the unambiguous ones are mapped. */
static const char *error_type(const char *as_type)
{
	if (sg_streq(as_type, "rate_limit"))
		return "model_rate_limited_error";
	if (sg_streq(as_type, "upstream") || sg_streq(as_type, "connection"))
		return "model_request_failed_error";
	return "unknown_error";
}

static int session_error(struct run *r, const json_t *msg, int64_t at)
{
	static const struct origin whole = {0};
	const json_t *e = json_object_get(msg, "error");
	const char *message = sg_jstr(e, "message");
	char id[SG_EVENT_ID_LEN + 1];
	json_t *ev;

	ev = new_event(r, "session.error", &whole, "error", at, id);
	if (!ev)
		return -1;
	if (set_or_drop(r, ev, "error",
	                json_pack("{s:s, s:s, s:{s:s}}", "type", error_type(sg_jstr(e, "type")),
	                          "message", message ? message : "the reply ended with an error",
	                          "retry_status", "type", "terminal")) < 0)
		return -1;
	return emit(r, ev);
}

/* The end of a reply: span.model_request_end, [session.error], session.status_idle. A tail
 * parked on tool calls (requires_action) mints them under their own kinds, seeded also with
 * the block ids of its pending calls, so that each park of a reply has its own end events and
 * the reply's final end, once resumed, keeps the plain ids (a client de-duplicating by id
 * would otherwise drop the real end as a repeat of the park). */
static int assistant_reply(struct run *r, const json_t *msg, const json_t *content, int is_tail)
{
	static const struct origin whole = {0};
	char start_id[SG_EVENT_ID_LEN + 1], id[SG_EVENT_ID_LEN + 1];
	const json_t *e = json_object_get(msg, "error");
	json_t *pending = NULL, *pending_blocks = NULL, *ev, *stop, *usage;
	size_t j, n = json_array_size(content);
	struct origin end_origin = whole;
	int failed, parked;
	int64_t end;

	if (e && !json_is_null(e) && !json_is_object(e))
		return bad(r, "error is not an object");
	if (emit_bare(r, "session.status_running", &whole, "status_running", r->created, id) < 0 ||
	    emit_bare(r, "span.model_request_start", &whole, "span_start", r->created, start_id) <
	        0)
		return -1;
	if (is_tail) {
		pending = json_array();
		pending_blocks = json_array();
		if (!pending || !pending_blocks) {
			sg_err_internal(r->err, "out of memory");
			goto fail;
		}
	}
	for (j = 0; j < n;) {
		const json_t *blk = json_array_get(content, j);
		const char *type = sg_jstr(blk, "type");
		size_t next = j + 1;
		int rc = 0;

		if (!json_is_object(blk) || !type) {
			bad(r, "content[%zu] is not a typed block", j);
			goto fail;
		}
		if (!strcmp(type, "text")) {
			rc = text_run(r, content, j, &next);
		} else if (!strcmp(type, "thinking")) {
			struct origin o = block_origin(blk, j);
			int64_t at;

			rc = block_time(r, blk, j, &at);
			if (rc == 0)
				rc = emit_bare(r, "agent.thinking", &o, "thinking", at, id);
		} else if (!strcmp(type, "tool_call")) {
			rc = tool_call(r, blk, j, pending, pending_blocks);
		} else if (!strcmp(type, "tool_result")) {
			rc = tool_result(r, blk, j);
		} else if (!strcmp(type, "hint")) {
			if (r->ctx->hint_mode == SG_AS_HINT_USER_MESSAGE)
				rc = hint(r, blk, j);
		}
		/* data blocks (agent.message is text only) and unknown types: dropped */
		if (rc < 0)
			goto fail;
		j = next;
	}

	/* the reply is still being written: its end is not known yet */
	if (is_tail && r->ctx->session_running && !r->has_finished)
		goto done;
	if (end_time(r, content, &end) < 0)
		goto fail;
	failed = sg_streq(sg_jstr(msg, "finished_reason"), "error") || json_is_object(e);
	parked = pending && json_array_size(pending) > 0;
	if (parked)
		end_origin.parked = pending_blocks;

	usage = model_usage(r, msg);
	if (!usage)
		goto fail;
	ev = new_event(r, "span.model_request_end", &end_origin,
	               parked ? "span_end_parked" : "span_end", end, id);
	if (!ev) {
		json_decref(usage);
		goto fail;
	}
	if (set_or_drop(r, ev, "model_usage", usage) < 0 ||
	    set_or_drop(r, ev, "model_request_start_id", json_string(start_id)) < 0 ||
	    set_or_drop(r, ev, "is_error", json_boolean(failed)) < 0 || emit(r, ev) < 0)
		goto fail;
	if (failed && session_error(r, msg, end) < 0)
		goto fail;

	if (parked)
		stop = json_pack("{s:s, s:O}", "type", "requires_action", "event_ids", pending);
	else
		stop = json_pack("{s:s}", "type", "end_turn");
	ev = new_event(r, "session.status_idle", &end_origin,
	               parked ? "status_idle_parked" : "status_idle", end, id);
	if (!ev) {
		json_decref(stop);
		goto fail;
	}
	if (set_or_drop(r, ev, "stop_reason", stop) < 0 ||
	    set_or_drop(r, ev, "stop_details", json_null()) < 0 || emit(r, ev) < 0)
		goto fail;
done:
	json_decref(pending);
	json_decref(pending_blocks);
	return 0;
fail:
	json_decref(pending);
	json_decref(pending_blocks);
	return -1;
}

/* ---- messages --------------------------------------------------------------------- */

static int has_agent_blocks(const json_t *content)
{
	const json_t *blk;
	size_t j;

	for (j = 0; (blk = json_array_get(content, j)); j++) {
		const char *t = sg_jstr(blk, "type");

		if (sg_streq(t, "tool_call") || sg_streq(t, "tool_result") ||
		    sg_streq(t, "thinking") || sg_streq(t, "hint"))
			return 1;
	}
	return 0;
}

/* Validates the Msg's outer shape and resolves its role (inferred when missing).
 * Sets *content (borrowed). Returns 0 or -1 + err. */
static int msg_shape(struct run *r, const json_t *msg, const json_t **content, enum role *role)
{
	const json_t *jr;
	const char *rs;

	if (!json_is_object(msg))
		return bad(r, "not an object");
	*content = json_object_get(msg, "content");
	if (!json_is_array(*content))
		return bad(r, "content is not an array");
	jr = json_object_get(msg, "role");
	if (!jr || json_is_null(jr)) {
		const char *agent = r->ctx->agent_name;

		*role = (agent && *agent && sg_streq(sg_jstr(msg, "name"), agent)) ||
		                has_agent_blocks(*content)
		            ? ROLE_ASSISTANT
		            : ROLE_USER;
		return 0;
	}
	rs = json_string_value(jr);
	if (sg_streq(rs, "user"))
		*role = ROLE_USER;
	else if (sg_streq(rs, "assistant"))
		*role = ROLE_ASSISTANT;
	else if (sg_streq(rs, "system"))
		*role = ROLE_SYSTEM;
	else
		return bad(r, "role is not user, assistant or system");
	return 0;
}

/* Loads the per-message fields every event of the Msg needs. */
static int msg_begin(struct run *r, const json_t *msg)
{
	const json_t *id = json_object_get(msg, "id");
	const json_t *ca = json_object_get(msg, "created_at");
	int rc;

	r->msg_id = NULL;
	r->msg_id_len = 0;
	if (json_is_string(id) && json_string_length(id) > 0) {
		r->msg_id = json_string_value(id);
		r->msg_id_len = json_string_length(id);
	} else if (id && !json_is_null(id) && !json_is_string(id)) {
		return bad(r, "id is not a string");
	}
	if (!json_is_string(ca) ||
	    sg_time_parse_local(json_string_value(ca), r->ctx->tz, &r->created) < 0)
		return bad(r, "created_at is missing or not a timestamp");
	r->created_raw = json_string_value(ca);
	rc = read_time(r, msg, "finished_at", "", &r->finished);
	if (rc < 0)
		return -1;
	r->has_finished = rc == 1;
	return 0;
}

/* The translation of the log, shared by sg_as_messages_to_events and sg_as_tool_use_index:
 * `where` (borrowed, may be NULL) receives where each tool call sits, *tail_out (may be NULL)
 * the tail's index. Returns the events (new) or NULL + err. */
static json_t *translate_log(const json_t *messages, const struct sg_as_events_ctx *ctx,
                             json_t *where, size_t *tail_out, struct sg_error *err)
{
	struct run r = {.ctx = ctx, .err = err, .where = where};
	const json_t *content;
	enum role role;
	size_t i, n, tail = SIZE_MAX;

	if (tail_out)
		*tail_out = SIZE_MAX;
	if (!json_is_array(messages)) {
		sg_err_bad_gateway(err, "backend '%s': the message log is not an array",
		                   nz(ctx->backend));
		return NULL;
	}
	n = json_array_size(messages);
	if (n > SG_AS_EVENTS_MAX_MESSAGES) {
		sg_err_bad_gateway(err, "backend '%s': the message log has more than %d messages",
		                   nz(ctx->backend), SG_AS_EVENTS_MAX_MESSAGES);
		return NULL;
	}
	r.max_events = ctx->max_events && ctx->max_events < SG_AS_EVENTS_MAX_EVENTS
	                   ? ctx->max_events
	                   : SG_AS_EVENTS_MAX_EVENTS;
	r.out = json_array();
	r.ids = json_object();
	r.calls = json_object();
	if (!r.out || !r.ids || !r.calls) {
		sg_err_internal(err, "out of memory");
		goto fail;
	}
	/* the tail is the last Msg that produces events; only it can be parked or running */
	for (i = n; i-- > 0;) {
		r.mi = i;
		if (msg_shape(&r, json_array_get(messages, i), &content, &role) < 0)
			goto fail;
		if (role != ROLE_SYSTEM) {
			tail = i;
			break;
		}
	}
	if (tail_out)
		*tail_out = tail;
	for (i = 0; i < n; i++) {
		const json_t *msg = json_array_get(messages, i);

		r.mi = i;
		if (msg_shape(&r, msg, &content, &role) < 0)
			goto fail;
		if (role == ROLE_SYSTEM)
			continue;
		if (msg_begin(&r, msg) < 0)
			goto fail;
		if (role == ROLE_USER ? user_message(&r, content) < 0
		                      : assistant_reply(&r, msg, content, i == tail) < 0)
			goto fail;
	}
	json_decref(r.ids);
	json_decref(r.calls);
	sg_id_seed_free(&r.seed);
	return r.out;
fail:
	json_decref(r.out);
	json_decref(r.ids);
	json_decref(r.calls);
	sg_id_seed_free(&r.seed);
	return NULL;
}

json_t *sg_as_messages_to_events(const json_t *messages, const struct sg_as_events_ctx *ctx,
                                 struct sg_error *err)
{
	return translate_log(messages, ctx, NULL, NULL, err);
}

json_t *sg_as_tool_use_index(const json_t *messages, const struct sg_as_events_ctx *ctx,
                             size_t *tail, struct sg_error *err)
{
	json_t *where = json_object(), *events;

	if (!where) {
		sg_err_internal(err, "out of memory");
		return NULL;
	}
	/* The whole translation runs, so that every id, ordinals included, is the one the event
	 * list shows; only where the tool calls sit is kept. */
	events = translate_log(messages, ctx, where, tail, err);
	if (!events) {
		json_decref(where);
		return NULL;
	}
	json_decref(events);
	return where;
}

int sg_as_compacted_event(const json_t *record, const struct sg_as_events_ctx *ctx, json_t **out,
                          struct sg_error *err)
{
	const json_t *summary = json_object_get(json_object_get(record, "state"), "summary");
	const char *ca = sg_jstr(record, "created_at"), *be = nz(ctx->backend);
	const char *key = nz(ctx->session_key);
	char ts[SG_TIME_BUFSZ], id[SG_EVENT_ID_LEN + 1], *seed;
	size_t bn = strlen(be), kn = strlen(key);
	json_t *ev;
	int64_t us;
	int rc;

	*out = NULL;
	if (!sg_jpresent(summary) ||
	    (json_is_string(summary) && json_string_length(summary) == 0) ||
	    (json_is_array(summary) && json_array_size(summary) == 0))
		return 0;
	if (!ca || sg_time_parse_local(ca, ctx->tz, &us) || sg_time_format(us, ts, sizeof(ts)) < 0)
		return 0;
	/* "<backend>\x1f<session_key>\x1fcompacted", the seed this notice has always had */
	seed = malloc(bn + kn + 11);
	if (!seed)
		return sg_err_internal(err, "out of memory");
	memcpy(seed, be, bn);
	seed[bn] = '\x1f';
	memcpy(seed + bn + 1, key, kn);
	memcpy(seed + bn + 1 + kn,
	       "\x1f"
	       "compacted",
	       10);
	sg_event_id(seed, bn + kn + 11, id);
	free(seed);
	ev = json_pack("{s:s, s:s, s:s}", "id", id, "type", "agent.thread_context_compacted",
	               "processed_at", ts);
	if (!ev)
		return sg_err_internal(err, "out of memory");
	rc = sg_north_event_take(ev, be, "compacted notice", 0, out, err);
	if (rc == SG_NORTH_DROPPED)
		return sg_err_internal(err,
		                       "the compaction notice has no shape in the SDK's types");
	return rc < 0 ? -1 : 0;
}
