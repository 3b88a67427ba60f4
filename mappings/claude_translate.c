/* claude_translate.c - Claude-native upstream JSON → north JSON; see claude_translate.h.
 *
 * The upstream already speaks the north dialect, so the work is normalising, not mapping,
 * and the normaliser is the core's (src/north.c: the SDK's types as tables, one walker, used
 * strictly here). What is left is the dialect layer: the route in the public session id,
 * the event run, and what proves an error answer is the upstream's own. The rules are in
 * docs/fidelity-claude.md; change both together.
 *
 * Nothing here does I/O, reads the clock or keeps state. */
#include "claude_translate.h"

#include <stdio.h>
#include <string.h>

#include "berror.h"
#include "idcodec.h"
#include "jsonx.h"
#include "north.h"

#define CL_MAX_ITEMS SG_NORTH_PAGE_MAX /* items in one event run; more is refused */
#define CL_QUOTE_MAX 64                /* bytes of a backend value quoted in an error message */
#define CL_EVENT_PATH 32               /* "events[N]" */

/* Refuses a context the translation cannot work with: a programming error, not the
 * backend's fault, hence a 500. */
static int check_ctx(const struct sg_cl_ctx *ctx, struct sg_error *err)
{
	if (!ctx || !ctx->backend)
		return sg_err_internal(err, "claude translation called without a context");
	return 0;
}

json_t *sg_cl_session_to_cma(const json_t *s, const struct sg_cl_ctx *ctx, struct sg_error *err)
{
	char pubid[SG_ID_MAX];
	const json_t *id;
	const char *sid;

	if (check_ctx(ctx, err))
		return NULL;
	if (!json_is_object(s)) {
		sg_err_bad_gateway(err, "backend '%s': session is not an object", ctx->backend);
		return NULL;
	}
	id = json_object_get(s, "id");
	sid = json_string_value(id);
	if (!sid || !*sid || strlen(sid) != json_string_length(id)) {
		sg_err_bad_gateway(err,
		                   "backend '%s': session.id is missing, empty, not a string "
		                   "or contains a NUL byte",
		                   ctx->backend);
		return NULL;
	}
	/* The public id must carry the route (which backend); the upstream's own id rides
	 * inside it, so a retrieve needs no table. */
	if (sg_id_encode("sesn_", ctx->backend, "", sid, pubid, sizeof(pubid)) < 0) {
		sg_err_bad_gateway(err,
		                   "backend '%s': session id '%.*s' (%zu bytes) is too long for a "
		                   "public id",
		                   ctx->backend, sg_utf8_cut(sid, CL_QUOTE_MAX), sid, strlen(sid));
		return NULL;
	}
	/* Strict: an upstream that speaks the dialect and sends a wrong shape is broken. */
	return sg_north_session(s, pubid, ctx->backend, "session", 0, err);
}

json_t *sg_cl_events_to_cma(const json_t *events, const struct sg_cl_ctx *ctx, struct sg_error *err)
{
	const json_t *ev;
	json_t *out;
	size_t i;

	if (check_ctx(ctx, err))
		return NULL;
	if (!json_is_array(events)) {
		sg_err_bad_gateway(err, "backend '%s': events is not an array", ctx->backend);
		return NULL;
	}
	if (json_array_size(events) > CL_MAX_ITEMS) {
		sg_err_bad_gateway(err,
		                   "backend '%s': events has %zu items, more than the limit of %d",
		                   ctx->backend, json_array_size(events), CL_MAX_ITEMS);
		return NULL;
	}
	out = json_array();
	if (!out)
		goto nomem;
	json_array_foreach(events, i, ev) {
		char where[CL_EVENT_PATH];
		json_t *e = NULL;
		int rc;

		snprintf(where, sizeof(where), "events[%zu]", i);
		rc = sg_north_event(ev, ctx->backend, where, 0, &e, err);
		if (rc < 0)
			goto fail;
		/* The SDK's event union is closed: a type it has no member for is left out. */
		if (rc == SG_NORTH_DROPPED)
			continue;
		if (json_array_append_new(out, e))
			goto nomem;
	}
	return out;
nomem:
	sg_err_internal(err, "out of memory translating an answer of backend '%s'", ctx->backend);
fail:
	json_decref(out);
	return NULL;
}

json_t *sg_cl_agent_to_cma(const json_t *agent, const struct sg_cl_ctx *ctx, struct sg_error *err)
{
	if (check_ctx(ctx, err))
		return NULL;
	/* Strict, as for sessions: an upstream that speaks the dialect and sends a wrong shape is
	 * broken. */
	return sg_north_full_agent(agent, ctx->backend, "agent", 0, err);
}

json_t *sg_cl_sent_to_cma(const json_t *body, const struct sg_cl_ctx *ctx, struct sg_error *err)
{
	const json_t *data;
	json_t *events, *out;

	if (check_ctx(ctx, err))
		return NULL;
	if (!json_is_object(body)) {
		sg_err_bad_gateway(err, "backend '%s': the send answer is not an object",
		                   ctx->backend);
		return NULL;
	}
	data = json_object_get(body, "data");
	if (sg_jpresent(data) && !json_is_array(data)) {
		sg_err_bad_gateway(err, "backend '%s': the send answer's data is not an array",
		                   ctx->backend);
		return NULL;
	}
	events = sg_jpresent(data) ? sg_cl_events_to_cma(data, ctx, err) : json_array();
	if (!events) {
		if (!sg_jpresent(data))
			sg_err_internal(err, "out of memory");
		return NULL;
	}
	out = json_pack("{s:o}", "data", events);
	if (!out)
		sg_err_internal(err, "out of memory");
	return out;
}

/* ---- Errors ---- */

void sg_cl_read_error(long status, const char *body, size_t len, struct sg_backend_said *out)
{
	json_t *root =
	    body && len ? json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
	const json_t *e = json_object_get(root, "error");

	sg_berror_read(status, body, len, out);
	/* Only the north envelope proves that the dialect's speaker answered: FastAPI's
	 * {"detail"} or a bare {"error": "…"} came from something else in front of it. */
	out->own = json_is_object(e) && json_is_string(json_object_get(e, "message"));
	json_decref(root);
}
