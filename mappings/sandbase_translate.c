/* sandbase_translate.c - SandBase sessions, agents and events → north JSON; see
 * sandbase_translate.h.
 *
 * SandBase is Claude-like, so most of the work is reshaping: its sessions lack the
 * snapshot, usage, stats and empty collections north requires, and its events carry a flat
 * envelope (tokens_in, tokens_out, model_used, duration_ms, created_at, null content and
 * stop_reason) that north spreads over span.model_request_* events. What is reshaped then goes
 * through the core's normaliser (src/north.h): agents and events lenient, so that nothing
 * SandBase wrote below the keys this file maps reaches a client in a shape the SDK does not
 * declare; sessions strict, built with only the keys SandBase gives, the core filling the
 * documented empty values of the rest. Error answers are the core's (src/berror.h); this file
 * only reads what SandBase's dialect adds to them (sg_sb_read_error). Every rule here is written
 * down in docs/fidelity-sandbase.md; change both together. Nothing in this file does I/O, reads
 * the clock or keeps state between calls. */
#include "sandbase_translate.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berror.h"
#include "idcodec.h"
#include "jsonx.h"
#include "north.h"
#include "timeutil.h"

#define SB_MAX_EVENTS 100000 /* backend events in one run */
/* Unmatched tool uses remembered for linking. The queue travels to the next backend page
 * inside the gateway's sealed page cursor (src/walk.c; SG_CURSOR_MAX), so it is bounded both
 * in entries and in id bytes: at the bounds it stays under 2 KB as JSON. */
#define SB_PENDING_MAX 32
#define SB_PENDING_ID_BYTES 1024
#define SB_EVENT_ID_MAX 256 /* bytes of a backend event id */
#define SB_METADATA_MAX 16  /* north metadata pairs; sandbase.* keys only fill free room */
#define SB_QUOTE_MAX 64     /* bytes of a backend value quoted in an error message */
#define SB_QUOTE_BUF (SB_QUOTE_MAX + 1)
#define SB_WHERE_MAX 160
#define SB_TIME_MIN_US (-62135596800LL * 1000000) /* 0001-01-01T00:00:00Z */

/* ---- small helpers -------------------------------------------------------------------- */

static int in_list(const char *s, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; s && i < n; i++)
		if (!strcmp(s, list[i]))
			return 1;
	return 0;
}

#define IN_LIST(s, list) in_list((s), (list), sizeof(list) / sizeof((list)[0]))

/* A quotable form of a JSON string (borrowed), cut to SB_QUOTE_MAX bytes. */
static const char *quote(const json_t *s, char out[SB_QUOTE_BUF])
{
	return sg_clip(json_string_value(s), json_string_length(s), SB_QUOTE_MAX, 1, out);
}

/* Sets a 502 naming the backend (see sg_err_backend). Always returns -1. */
__attribute__((format(printf, 4, 5))) static int bad(struct sg_error *err, const char *backend,
                                                     const char *where, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sg_err_vbackend(err, backend, where, fmt, ap);
	va_end(ap);
	return -1;
}

/* A missing context is the caller's bug, hence a 500. */
static int check_ctx(const struct sg_sb_ctx *ctx, struct sg_error *err)
{
	if (!ctx || !ctx->backend)
		return sg_err_internal(err, "sandbase translation called without a context");
	return 0;
}

/* Reads an RFC 3339 timestamp: 1 = *us set, 0 = absent or null, -1 = present but unreadable. */
static int read_time(const json_t *v, int64_t *us)
{
	if (!sg_jpresent(v))
		return 0;
	if (!json_is_string(v) || sg_jhas_nul(v) || sg_time_parse_rfc3339(json_string_value(v), us))
		return -1;
	return 1;
}

/* ---- agents --------------------------------------------------------------------------- */

static const char *const efforts[] = {"low", "medium", "high", "xhigh", "max"};

/* SandBase model ({id, effort: {type}|string|null, speed|null} or a bare string) → north
 * ModelConfig. New reference, NULL when out of memory. */
static json_t *map_model(const json_t *m)
{
	const json_t *id = json_is_string(m) ? m : json_object_get(m, "id");
	const json_t *effort = json_object_get(m, "effort");
	const json_t *geo = json_object_get(m, "inference_geo");
	const char *speed = sg_jstr(m, "speed");
	const char *e =
	    json_is_string(effort) ? json_string_value(effort) : sg_jstr(effort, "type");
	json_t *out;
	int rc = 0;

	if (!sg_jis_id(id))
		return json_pack("{s:s}", "id", "unknown");
	out = json_object();
	if (!out)
		return NULL;
	rc |= json_object_set_new(out, "id", sg_jstr_copy(id));
	if (IN_LIST(e, efforts))
		rc |= json_object_set_new(out, "effort", json_pack("{s:s}", "type", e));
	if (sg_streq(speed, "standard") || sg_streq(speed, "fast"))
		rc |= json_object_set_new(out, "speed", json_string(speed));
	if (sg_jis_id(geo))
		rc |= json_object_set_new(out, "inference_geo", sg_jstr_copy(geo));
	if (rc) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static json_t *map_identity(const json_t *ei)
{
	const json_t *arn = json_object_get(ei, "role_arn");

	if (sg_streq(sg_jstr(ei, "type"), "aws_role") && sg_jis_id(arn))
		return json_pack("{s:s, s:s%}", "type", "aws_role", "role_arn",
		                 json_string_value(arn), json_string_length(arn));
	return json_pack("{s:s}", "type", "service_account");
}

/* One item of a list; appends its north form to out, or nothing when it does not fit the
 * SDK shape. Returns 0, or -1 when out of memory. */
typedef int (*item_fn)(json_t *out, const json_t *item);

static int mcp_server_item(json_t *out, const json_t *s)
{
	const json_t *name = json_object_get(s, "name"), *url = json_object_get(s, "url");

	if (!sg_jis_id(name) || !sg_jis_id(url) ||
	    (sg_jpresent(json_object_get(s, "type")) && !sg_streq(sg_jstr(s, "type"), "url")))
		return 0;
	return json_array_append_new(out, json_pack("{s:o, s:s, s:o}", "name", sg_jstr_copy(name),
	                                            "type", "url", "url", sg_jstr_copy(url)));
}

/* SandBase Agents name skills by reference ("vendor/plugin"); the SDK wants
 * {skill_id, type, version: string}. */
static int skill_item(json_t *out, const json_t *s)
{
	const json_t *id = json_is_string(s) ? s : json_object_get(s, "skill_id");
	const json_t *v = json_object_get(s, "version");
	const char *type = sg_streq(sg_jstr(s, "type"), "anthropic") ? "anthropic" : "custom";
	json_t *version;

	if (!sg_jis_id(id))
		return 0;
	if (sg_jis_id(v))
		version = sg_jstr_copy(v);
	else if (json_is_integer(v))
		version = json_sprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else
		version = json_string("latest");
	return json_array_append_new(out, json_pack("{s:o, s:s, s:o}", "skill_id", sg_jstr_copy(id),
	                                            "type", type, "version", version));
}

/* Tools are copied as SandBase wrote them; sg_north_agent() then gives them the SDK's shape
 * (tool configs typed by their `name`, unknown and malformed tools and configs dropped). The
 * one SandBase habit fixed here: a custom tool without a description, which the SDK requires,
 * gets "". */
static int tool_item(json_t *out, const json_t *t)
{
	json_t *copy = json_deep_copy(t);

	if (!copy)
		return -1;
	if (sg_streq(sg_jstr(t, "type"), "custom") &&
	    !json_is_string(json_object_get(t, "description")) &&
	    json_object_set_new(copy, "description", json_string("")) < 0) {
		json_decref(copy);
		return -1;
	}
	return json_array_append_new(out, copy);
}

/* Maps every item of list (borrowed; anything but an array counts as empty). New array. */
static json_t *map_items(const json_t *list, item_fn one)
{
	json_t *out = json_array();
	const json_t *item;
	size_t i;

	if (!out)
		return NULL;
	json_array_foreach(list, i, item) {
		if (one(out, item) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* A SandBase Agent (borrowed, may be NULL) → north SessionAgent (new). fallback_id (may be
 * NULL) stands in for a missing agent id, fallback_version for a missing version. `where`
 * locates the agent in messages ("session 'sess_1': ", or ""). NULL with a 502 when no id is
 * known, a 500 when out of memory. */
static json_t *map_agent(const json_t *a, const char *fallback_id, json_int_t fallback_version,
                         const char *backend, const char *where, struct sg_error *err)
{
	const json_t *id = json_object_get(a, "id"), *name = json_object_get(a, "name");
	const json_t *desc = json_object_get(a, "description"), *sys = json_object_get(a, "system");
	const json_t *v = json_object_get(a, "version");
	json_int_t version = fallback_version;
	char path[SB_WHERE_MAX + 8];
	json_t *out;
	int rc = 0;

	if (!sg_jis_id(id) && !fallback_id) {
		bad(err, backend, where, "agent.id is missing, empty or not a string");
		return NULL;
	}
	if (json_is_integer(v) && json_integer_value(v) >= 1)
		version = json_integer_value(v);
	out = json_object();
	if (!out)
		goto oom;
	rc |= json_object_set_new(out, "id",
	                          sg_jis_id(id) ? sg_jstr_copy(id) : json_string(fallback_id));
	rc |= json_object_set_new(out, "type", json_string("agent"));
	rc |= json_object_set_new(out, "name",
	                          sg_jis_id(name) ? sg_jstr_copy(name)
	                          : sg_jis_id(id) ? sg_jstr_copy(id)
	                                          : json_string(fallback_id));
	rc |= json_object_set_new(out, "description",
	                          json_is_string(desc) ? sg_jstr_copy(desc) : json_null());
	rc |= json_object_set_new(out, "system",
	                          json_is_string(sys) ? sg_jstr_copy(sys) : json_null());
	rc |= json_object_set_new(out, "version", json_integer(version));
	rc |= json_object_set_new(out, "model", map_model(json_object_get(a, "model")));
	rc |= json_object_set_new(out, "execution_identity",
	                          map_identity(json_object_get(a, "execution_identity")));
	rc |= json_object_set_new(out, "mcp_servers",
	                          map_items(json_object_get(a, "mcp_servers"), mcp_server_item));
	rc |=
	    json_object_set_new(out, "skills", map_items(json_object_get(a, "skills"), skill_item));
	rc |= json_object_set_new(out, "tools", map_items(json_object_get(a, "tools"), tool_item));
	/* SandBase refuses non-null multiagent configurations (unsupported_feature). */
	rc |= json_object_set_new(out, "multiagent", json_null());
	if (rc) {
		json_decref(out);
		goto oom;
	}
	/* What SandBase wrote below the top-level keys (tool configs without `type`, keys the
	 * SDK does not declare) is only Claude-like: the core's normaliser gives the agent the
	 * SDK's exact shape. Lenient, so a malformed tool or config costs that part (dropped,
	 * as an unknown one is), not every session that uses the agent. */
	snprintf(path, sizeof(path), "%sagent", where);
	return sg_north_agent_take(out, backend, path, SG_NORTH_LENIENT, err);
oom:
	sg_err_oom(err, backend);
	return NULL;
}

static int put_time(json_t *out, const char *key, int64_t us);

/* The keys of SandBase's Agent object that only the agent resource has, beyond the snapshot's:
 * created_at (else updated_at: the SDK requires one), updated_at, archived_at, and metadata
 * (string pairs; the normaliser drops the rest). Sets them on the snapshot `out` (modified).
 * Returns 0, or -1 + 502 (no readable created_at or updated_at) or 500. */
static int agent_resource_keys(json_t *out, const json_t *a, const char *backend,
                               struct sg_error *err)
{
	static const char *const times[] = {"created_at", "updated_at", "archived_at"};
	const json_t *meta = json_object_get(a, "metadata");
	int64_t us;
	int rc = 0;

	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		int got = read_time(json_object_get(a, times[i]), &us);

		if (got < 0)
			return bad(err, backend, "", "agent.%s is not an RFC 3339 timestamp",
			           times[i]);
		if (got)
			rc |= put_time(out, times[i], us);
	}
	if (!json_object_get(out, "created_at")) {
		if (!json_object_get(out, "updated_at"))
			return bad(err, backend, "", "agent has neither created_at nor updated_at");
		rc |= json_object_set(out, "created_at", json_object_get(out, "updated_at"));
	}
	if (json_is_object(meta))
		rc |= json_object_set_new(out, "metadata", json_deep_copy(meta));
	if (rc)
		return sg_err_oom(err, backend);
	return 0;
}

json_t *sg_sb_agent_to_cma(const json_t *agent, const struct sg_sb_ctx *ctx, struct sg_error *err)
{
	json_t *out;

	if (check_ctx(ctx, err))
		return NULL;
	if (!json_is_object(agent)) {
		bad(err, ctx->backend, "", "agent is not a JSON object");
		return NULL;
	}
	out = map_agent(agent, NULL, 1, ctx->backend, "", err);
	if (!out)
		return NULL;
	if (agent_resource_keys(out, agent, ctx->backend, err)) {
		json_decref(out);
		return NULL;
	}
	/* Lenient, as the snapshot was: a metadata value that is not a string costs that pair. */
	return sg_north_full_agent_take(out, ctx->backend, "agent", SG_NORTH_LENIENT, err);
}

/* ---- sessions ------------------------------------------------------------------------- */

static const char *const statuses[] = {"idle", "running", "rescheduling", "terminated"};

/* An embedded agent is a snapshot when it says more than which agent it is: the create
 * answer's {type, id, version} is only a reference. */
static int is_snapshot(const json_t *a)
{
	const json_t *m = json_object_get(a, "model");

	return json_is_object(a) &&
	       (sg_jis_id(json_object_get(a, "name")) || json_is_object(m) || sg_jis_id(m));
}

/* The agent a session names: agent_id, else the embedded agent's id (object or string); its
 * version: agent_version, else the embedded agent's, else -1. */
static void agent_facts(const json_t *s, const char **id, json_int_t *version)
{
	const json_t *emb = json_object_get(s, "agent"), *v = json_object_get(s, "agent_version");
	const json_t *eid = json_is_string(emb) ? emb : json_object_get(emb, "id");

	*id = sg_jis_id(json_object_get(s, "agent_id")) ? sg_jstr(s, "agent_id")
	      : sg_jis_id(eid)                          ? json_string_value(eid)
	                                                : NULL;
	if (!json_is_integer(v) || json_integer_value(v) < 1)
		v = json_object_get(emb, "version");
	*version = json_is_integer(v) && json_integer_value(v) >= 1 ? json_integer_value(v) : -1;
}

int sg_sb_session_agent_ref(const json_t *s, const char **id, int64_t *version)
{
	const char *aid;
	json_int_t v;

	if (!json_is_object(s) || is_snapshot(json_object_get(s, "agent")))
		return 0;
	agent_facts(s, &aid, &v);
	if (!aid)
		return 0;
	*id = aid;
	*version = (int64_t)v;
	return 1;
}

/* The session's agent snapshot: embedded, else the caller's, else synthesised. New. */
static json_t *session_agent(const json_t *s, const json_t *given, const char *backend,
                             const char *where, struct sg_error *err)
{
	const json_t *emb = json_object_get(s, "agent");
	const char *aid;
	json_int_t version;
	json_t *copy;

	agent_facts(s, &aid, &version);
	if (version < 1)
		version = 1;
	if (is_snapshot(emb))
		return map_agent(emb, aid, version, backend, where, err);
	if (given) {
		copy = json_deep_copy(given);
		if (!copy)
			sg_err_oom(err, backend);
		return copy;
	}
	if (!aid) {
		bad(err, backend, where, "agent_id is missing, empty or not a string");
		return NULL;
	}
	return map_agent(NULL, aid, version, backend, where, err);
}

/* v (borrowed) as compact JSON text in a new string; NULL when out of memory. json_dumpb
 * writes into our buffer, so nothing here depends on jansson's allocator. */
static json_t *json_text(const json_t *v)
{
	const size_t flags = JSON_ENCODE_ANY | JSON_COMPACT;
	size_t n = json_dumpb(v, NULL, 0, flags);
	char *buf = n ? malloc(n) : NULL;
	json_t *s = NULL;

	if (buf && json_dumpb(v, buf, n, flags) == n)
		s = json_stringn(buf, n);
	free(buf);
	return s;
}

/* North metadata is string→string: adds the pairs of SandBase's metadata object m (borrowed)
 * to out, strings as they are, null values dropped (null means unset), other values written as
 * compact JSON text, so that only the type is lost. Returns 0, or -1 when out of memory. */
static int metadata_pairs(json_t *out, const json_t *m)
{
	const char *key;
	const json_t *v;
	size_t klen;

	json_object_keylen_foreach((json_t *)m, key, klen, v) {
		json_t *val;

		if (json_is_null(v))
			continue;
		val = json_is_string(v) ? sg_jstr_copy(v) : json_text(v);
		if (json_object_setn_new(out, key, klen, val) < 0)
			return -1;
	}
	return 0;
}

/* The session's metadata pairs, then the SandBase facts north has no key for, while fewer
 * than SB_METADATA_MAX pairs are taken. Returns a new object, NULL + err on failure. */
static json_t *map_metadata(const json_t *s, const char *backend, const char *where,
                            struct sg_error *err)
{
	static const char *const extras[][2] = {
	    {"sandbase.source", "source"},
	    {"sandbase.agent_version_id", "agent_version_id"},
	};
	const json_t *m = json_object_get(s, "metadata");
	json_t *out;
	size_t i;

	if (sg_jpresent(m) && !json_is_object(m)) {
		bad(err, backend, where, "metadata is not an object");
		return NULL;
	}
	out = json_object();
	if (!out || metadata_pairs(out, m) < 0)
		goto oom;
	for (i = 0; i < sizeof(extras) / sizeof(extras[0]); i++) {
		const json_t *x = json_object_get(s, extras[i][1]);

		if (json_object_size(out) >= SB_METADATA_MAX || !sg_jis_id(x) ||
		    json_object_get(out, extras[i][0]))
			continue;
		if (json_object_set_new(out, extras[i][0], sg_jstr_copy(x)) < 0)
			goto oom;
	}
	return out;
oom:
	json_decref(out);
	sg_err_oom(err, backend);
	return NULL;
}

/* Copies in[key] into out when it is a non-negative number. Returns 0 or -1 (memory). */
static int copy_count(json_t *out, const char *key, const json_t *in)
{
	const json_t *v = json_object_get(in, key);

	if (!json_is_number(v) || json_number_value(v) < 0)
		return 0;
	return json_object_set_new(out, key, json_copy((json_t *)v));
}

/* SandBase's usage object → north SessionUsage, keeping the keys north knows; anything but
 * an object is {} (every key is optional, and an unknown count is not a zero count). */
static json_t *map_usage(const json_t *u)
{
	const json_t *cc = json_object_get(u, "cache_creation");
	const json_t *cost = json_object_get(u, "list_cost");
	const json_t *stu = json_object_get(u, "server_tool_use");
	json_t *out = json_object(), *sub;
	int rc = 0;

	if (!out || !json_is_object(u))
		return out;
	rc |= copy_count(out, "input_tokens", u);
	rc |= copy_count(out, "output_tokens", u);
	rc |= copy_count(out, "cache_read_input_tokens", u);
	rc |= copy_count(out, "active_seconds", u);
	if (json_is_object(cc)) {
		sub = json_object();
		rc |= copy_count(sub, "ephemeral_5m_input_tokens", cc);
		rc |= copy_count(sub, "ephemeral_1h_input_tokens", cc);
		rc |= json_object_set_new(out, "cache_creation", sub);
	} else if (json_is_number(json_object_get(u, "cache_creation_input_tokens"))) {
		/* a Messages-API style total: its TTL is unknown, reported as 5-minute */
		sub = json_object();
		rc |= copy_count(sub, "cache_creation_input_tokens", u);
		rc |= json_object_set_new(
		    out, "cache_creation",
		    json_object_size(sub)
		        ? json_pack("{s:O}", "ephemeral_5m_input_tokens",
		                    json_object_get(sub, "cache_creation_input_tokens"))
		        : json_object());
		json_decref(sub);
	}
	if (json_is_null(cost))
		rc |= json_object_set_new(out, "list_cost", json_null());
	else if (sg_jis_id(json_object_get(cost, "amount")) &&
	         sg_streq(sg_jstr(cost, "currency"), "USD"))
		rc |= json_object_set_new(out, "list_cost",
		                          json_pack("{s:o, s:s}", "amount",
		                                    sg_jstr_copy(json_object_get(cost, "amount")),
		                                    "currency", "USD"));
	if (json_is_null(stu)) {
		rc |= json_object_set_new(out, "server_tool_use", json_null());
	} else if (json_is_object(stu)) {
		sub = json_object();
		rc |= copy_count(sub, "web_fetch_requests", stu);
		rc |= copy_count(sub, "web_search_requests", stu);
		rc |= json_object_set_new(out, "server_tool_use", sub);
	}
	if (rc) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* A session timestamp: required ones must read, optional ones may be absent or null.
 * Returns 1 (set), 0 (absent) or -1 with a 502. */
static int session_time(const json_t *s, const char *key, int required, int64_t *us,
                        const char *backend, const char *where, struct sg_error *err)
{
	const json_t *v = json_object_get(s, key);
	char q[SB_QUOTE_BUF];
	int rc = read_time(v, us);

	if (rc < 0 && json_is_string(v))
		return bad(err, backend, where, "%s '%s' is not an RFC 3339 timestamp", key,
		           quote(v, q));
	if (rc < 0 || (rc == 0 && required))
		return bad(err, backend, where, "%s is missing or not a string", key);
	return rc;
}

/* Sets out[key] to the RFC 3339 form of us (read from SandBase, so within range). Returns 0,
 * or -1 when out of memory. */
static int put_time(json_t *out, const char *key, int64_t us)
{
	json_t *t;

	sg_jtime(us, &t);
	return json_object_set_new(out, key, t);
}

json_t *sg_sb_session_to_cma(const json_t *s, const json_t *agent, const struct sg_sb_ctx *ctx,
                             struct sg_error *err)
{
	char where[SB_WHERE_MAX], path[SB_WHERE_MAX], q[SB_QUOTE_BUF], id_q[SB_QUOTE_BUF];
	char pubid[SG_ID_MAX];
	const json_t *idv, *st, *title, *env;
	json_t *out = NULL, *v;
	int64_t created, updated, archived, end;
	int has_archived, rc = 0;
	const char *status, *be;

	if (check_ctx(ctx, err))
		return NULL;
	be = ctx->backend;
	if (agent && !json_is_object(agent)) {
		sg_err_internal(err, "sandbase session translation given an agent that is not an "
		                     "object");
		return NULL;
	}
	if (!json_is_object(s)) {
		bad(err, be, "", "session is not a JSON object");
		return NULL;
	}
	idv = json_object_get(s, "id");
	if (!sg_jis_id(idv)) {
		bad(err, be, "", "session id is missing, empty or not a string");
		return NULL;
	}
	quote(idv, id_q);
	snprintf(where, sizeof(where), "session '%s': ", id_q);
	if (sg_id_encode("sesn_", be, "", json_string_value(idv), pubid, sizeof(pubid)) < 0) {
		bad(err, be, where, "id (%zu bytes) is too long for a public id",
		    json_string_length(idv));
		return NULL;
	}
	st = json_object_get(s, "status");
	status = json_string_value(st);
	if (!IN_LIST(status, statuses) || sg_jhas_nul(st)) {
		if (json_is_string(st))
			bad(err, be, where,
			    "status '%s' is not one of idle, running, rescheduling, terminated",
			    quote(st, q));
		else
			bad(err, be, where, "status is missing or not a string");
		return NULL;
	}
	if (session_time(s, "created_at", 1, &created, be, where, err) < 0)
		return NULL;
	rc = session_time(s, "updated_at", 0, &updated, be, where, err);
	if (rc < 0)
		return NULL;
	if (rc == 0)
		updated = created;
	has_archived = session_time(s, "archived_at", 0, &archived, be, where, err);
	if (has_archived < 0)
		return NULL;
	env = json_object_get(s, "environment_id");
	if (sg_jpresent(env) && !json_is_string(env)) {
		bad(err, be, where, "environment_id is not a string");
		return NULL;
	}
	title = json_object_get(s, "title");

	/* Only what SandBase's session gives; the core fills the rest (type, budget null,
	 * resources, vault_ids and outcome_evaluations [], archived_at null when not archived). */
	out = json_object();
	if (!out)
		goto oom;
	rc = 0;
	rc |= json_object_set_new(out, "id", json_string(pubid));
	rc |= json_object_set_new(out, "status", json_string(status));
	rc |= json_object_set_new(out, "title",
	                          json_is_string(title) ? sg_jstr_copy(title) : json_null());
	rc |= json_object_set_new(out, "environment_id",
	                          json_is_string(env) ? sg_jstr_copy(env) : json_string(""));
	rc |= put_time(out, "created_at", created);
	rc |= put_time(out, "updated_at", updated);
	if (has_archived)
		rc |= put_time(out, "archived_at", archived);
	rc |= json_object_set_new(out, "usage", map_usage(json_object_get(s, "usage")));
	end = sg_streq(status, "running") ? ctx->now_us : updated;
	rc |= json_object_set_new(out, "stats",
	                          json_pack("{s:f}", "duration_seconds",
	                                    end > created ? (double)(end - created) / 1e6 : 0.0));
	/* SandBase exposes no deployment id, even for sessions a deployment started */
	rc |= json_object_set_new(out, "deployment_id", json_null());
	if (rc)
		goto oom;
	v = map_metadata(s, be, where, err);
	if (!v)
		goto fail;
	if (json_object_set_new(out, "metadata", v) < 0)
		goto oom;
	v = session_agent(s, agent, be, where, err);
	if (!v)
		goto fail;
	if (json_object_set_new(out, "agent", v) < 0)
		goto oom;
	/* Strict: every value was checked or built here. */
	snprintf(path, sizeof(path), "session '%s'", id_q);
	return sg_north_session_take(out, be, path, 0, err);
oom:
	sg_err_oom(err, be);
fail:
	json_decref(out);
	return NULL;
}

/* ---- events --------------------------------------------------------------------------- */

/* How each type is reshaped from SandBase's event; emit() then gives the result the SDK's
 * exact shape (content blocks and payloads included). */
enum kind {
	K_BARE,    /* only id, type, processed_at */
	K_CONTENT, /* + content: the backend's block array */
	K_USE,     /* agent.tool_use, agent.custom_tool_use, agent.mcp_tool_use */
	K_RESULT,  /* agent.tool_result, agent.mcp_tool_result */
	K_IDLE,    /* session.status_idle */
	K_ERROR,   /* session.error */
	K_KEYS,    /* the SDK type's own keys, taken when SandBase sends them */
};

/* Keys of a K_KEYS type; a leading '!' marks a required key (the event is dropped without
 * it). */
static const char *const confirm_keys[] = {"!result", "!tool_use_id", "deny_message", NULL};
static const char *const custom_result_keys[] = {"!custom_tool_use_id", "content", "is_error",
                                                 NULL};
static const char *const user_result_keys[] = {"!tool_use_id", "content", "is_error", NULL};
static const char *const updated_keys[] = {"title", "metadata", "budget", NULL};
static const char *const usage_keys[] = {"!usage", "budget", NULL};

struct sb_type {
	const char *type;
	enum kind kind;
	const char *const *keys; /* K_KEYS */
	const char *link;        /* K_RESULT, K_KEYS: the key naming the tool use it answers */
	const char *use;         /* K_RESULT: the tool-use type it answers */
};

/* Every type north receives. Any other type (SandBase's interrupt.response, anything
 * unknown, and the SDK's multiagent, outcome, workflow and native span types) is dropped. */
static const struct sb_type types[] = {
    {"user.message", K_CONTENT, NULL, NULL, NULL},
    {"user.interrupt", K_BARE, NULL, NULL, NULL},
    {"user.tool_confirmation", K_KEYS, confirm_keys, NULL, NULL},
    {"user.custom_tool_result", K_KEYS, custom_result_keys, "custom_tool_use_id", NULL},
    {"user.tool_result", K_KEYS, user_result_keys, "tool_use_id", NULL},
    {"system.message", K_CONTENT, NULL, NULL, NULL},
    {"agent.message", K_CONTENT, NULL, NULL, NULL},
    {"agent.thinking", K_BARE, NULL, NULL, NULL},
    {"agent.thread_context_compacted", K_BARE, NULL, NULL, NULL},
    {"agent.tool_use", K_USE, NULL, NULL, NULL},
    {"agent.custom_tool_use", K_USE, NULL, NULL, NULL},
    {"agent.mcp_tool_use", K_USE, NULL, NULL, NULL},
    {"agent.tool_result", K_RESULT, NULL, "tool_use_id", "agent.tool_use"},
    {"agent.mcp_tool_result", K_RESULT, NULL, "mcp_tool_use_id", "agent.mcp_tool_use"},
    {"session.status_running", K_BARE, NULL, NULL, NULL},
    {"session.status_idle", K_IDLE, NULL, NULL, NULL},
    {"session.status_rescheduled", K_BARE, NULL, NULL, NULL},
    {"session.status_terminated", K_BARE, NULL, NULL, NULL},
    {"session.deleted", K_BARE, NULL, NULL, NULL},
    {"session.error", K_ERROR, NULL, NULL, NULL},
    {"session.updated", K_KEYS, updated_keys, NULL, NULL},
    {"session.usage", K_KEYS, usage_keys, NULL, NULL},
};

static const char *const use_types[] = {"agent.tool_use", "agent.custom_tool_use",
                                        "agent.mcp_tool_use"};

/* The SDK's session.error union (events.d.ts), with the extra keys each variant requires. */
static const struct {
	const char *type;
	const char *extra[2];
} error_types[] = {
    {"unknown_error", {NULL, NULL}},
    {"model_overloaded_error", {NULL, NULL}},
    {"model_rate_limited_error", {NULL, NULL}},
    {"model_request_failed_error", {NULL, NULL}},
    {"mcp_connection_failed_error", {"mcp_server_name", NULL}},
    {"mcp_authentication_failed_error", {"mcp_server_name", NULL}},
    {"billing_error", {NULL, NULL}},
    {"credential_host_unreachable_error", {"credential_id", "vault_id"}},
    {"tool_use_limit_reached_error", {NULL, NULL}},
    {"compaction_limit_reached_error", {NULL, NULL}},
    {"repository_authentication_error", {"repository_url", NULL}},
    {"repository_forbidden_error", {"repository_url", NULL}},
    {"repository_not_found_error", {"repository_url", NULL}},
    {"repository_checkout_error", {"repository_url", NULL}},
    {"repository_clone_error", {"repository_url", NULL}},
};

static const char *const retry_states[] = {"retrying", "exhausted", "terminal"};

/* State of one sg_sb_events_to_cma call. */
struct run {
	const struct sg_sb_ctx *ctx;
	struct sg_error *err;
	json_t *out;              /* the answer (new) */
	json_t *pending;          /* unmatched tool uses, oldest first: [{id, type}] (new) */
	int64_t last_at;          /* processed_at of the last event emitted, this run or before */
	int has_last;             /* last_at is known */
	struct sg_id_seed seed;   /* scratch for synthetic ids, reused */
	char where[SB_WHERE_MAX]; /* "events[3] 'sevt_…': " */
	char path[SB_WHERE_MAX];  /* "events[3]", the normaliser's `where` */
};

__attribute__((format(printf, 2, 3))) static int bad_ev(struct run *r, const char *fmt, ...)
{
	char msg[SG_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return bad(r->err, r->ctx->backend, r->where, "%s", msg);
}

static int oom_ev(struct run *r)
{
	return sg_err_oom(r->err, r->ctx->backend);
}

/* The id of a span half synthesised for a SandBase event: sg_event_id over the fields ("sb1",
 * backend, source event id, kind), so the same source event gives the same ids on every call,
 * whatever page it arrives on. */
static int synth_id(struct run *r, const json_t *src, const char *kind,
                    char out[SG_EVENT_ID_LEN + 1])
{
	struct sg_id_seed *b = &r->seed;

	b->len = 0;
	if (sg_id_seed_str(b, "sb1") || sg_id_seed_str(b, r->ctx->backend) ||
	    sg_id_seed_add(b, json_string_value(src), json_string_length(src)) ||
	    sg_id_seed_str(b, kind))
		return oom_ev(r);
	sg_event_id(b->p, b->len, out);
	return 0;
}

/* A payload key: at the top level, else inside `data`, else inside an object `content`
 * (SandBase puts some payloads there). A top-level `content` that is an object is the
 * payload, not the key. null counts as absent. Borrowed, or NULL. */
static const json_t *field(const json_t *e, const char *key)
{
	const json_t *v = json_object_get(e, key), *box;

	if (sg_jpresent(v) && !(json_is_object(v) && !strcmp(key, "content")))
		return v;
	box = json_object_get(e, "data");
	if (json_is_object(box) && sg_jpresent(json_object_get(box, key)))
		return json_object_get(box, key);
	box = json_object_get(e, "content");
	if (json_is_object(box) && sg_jpresent(json_object_get(box, key)))
		return json_object_get(box, key);
	return NULL;
}

/* A new event {id, type, processed_at}; id NULL = keep the backend's (src). */
static json_t *new_event(struct run *r, const char *type, const json_t *src, const char *id,
                         int64_t at)
{
	char ts[SG_TIME_BUFSZ];
	json_t *ev;
	int rc = 0;

	if (sg_time_format(at, ts, sizeof(ts)) < 0) {
		bad_ev(r, "a timestamp is out of range");
		return NULL;
	}
	ev = json_object();
	if (!ev) {
		oom_ev(r);
		return NULL;
	}
	rc |= json_object_set_new(ev, "id", id ? json_string(id) : sg_jstr_copy(src));
	rc |= json_object_set_new(ev, "type", json_string(type));
	rc |= json_object_set_new(ev, "processed_at", json_string(ts));
	if (rc) {
		json_decref(ev);
		oom_ev(r);
		return NULL;
	}
	return ev;
}

/* Sets ev[key] = v (stolen); on failure frees ev and reports. Returns 0 or -1. */
static int put(struct run *r, json_t *ev, const char *key, json_t *v)
{
	if (json_object_set_new(ev, key, v) < 0) {
		json_decref(ev);
		return oom_ev(r);
	}
	return 0;
}

/* How emit_as() treats an event. */
#define EMIT_LINKED 1u   /* other events name this one: it must not be dropped */
#define EMIT_NO_NULLS 2u /* a value that could only degrade to null is left out instead */

/* Every event leaves the module through here, once the SandBase-specific reshaping is done:
 * the core's normaliser (sg_north_event, lenient) rebuilds it into exactly the SDK's type, so
 * what SandBase wrote inside content blocks and copied payloads (block types the SDK does not
 * have, unknown image sources, keys it does not declare, values of the wrong JSON type) costs
 * that part, or the event, never the answer. ev (stolen) may share values with the backend's
 * input: the normaliser copies what it keeps, and ev is gone when this returns.
 *
 * EMIT_LINKED: other events name this one (a tool use, by tool_use_id and requires_action; a
 * span half, by model_request_start_id and as one of a pair). The module builds those from
 * values it has checked, so the normaliser keeps them; were one ever dropped (this file and
 * the core's tables disagreeing on a type), a dangling link would misstate the log, so that is
 * a 500 rather than an answer. Any other event the normaliser drops is simply not shown.
 *
 * EMIT_NO_NULLS: the normaliser writes null for an optional nullable value it cannot read. On
 * the payloads taken from SandBase as they are (K_KEYS) null says something SandBase did not
 * (a session.updated title or budget cleared), and they never hold a null of their own
 * (field() reads null as absent), so such a key is left out: "not said", like a null one.
 * Returns 0 (appended, or dropped), or -1 + err. */
static int emit_as(struct run *r, json_t *ev, unsigned how)
{
	json_t *north = NULL, *v;
	const char *key;
	void *tmp;
	int rc = sg_north_event(ev, r->ctx->backend, r->path, SG_NORTH_LENIENT, &north, r->err);

	if (rc == SG_NORTH_DROPPED && (how & EMIT_LINKED))
		sg_err_internal(r->err,
		                "backend '%s': %sthe %s built for it has no shape in the SDK's "
		                "event types",
		                r->ctx->backend, r->where,
		                json_string_value(json_object_get(ev, "type")));
	if (rc == SG_NORTH_KEPT && (how & EMIT_NO_NULLS)) {
		json_object_foreach_safe(north, tmp, key, v) {
			if (json_is_null(v) && sg_jpresent(json_object_get(ev, key)))
				json_object_del(north, key);
		}
	}
	json_decref(ev);
	if (rc < 0 || (rc == SG_NORTH_DROPPED && (how & EMIT_LINKED)))
		return -1;
	if (rc == SG_NORTH_DROPPED)
		return 0;
	if (json_array_append_new(r->out, north) < 0)
		return oom_ev(r);
	return 0;
}

static int emit(struct run *r, json_t *ev)
{
	return emit_as(r, ev, 0);
}

/* A pending entry is [id, type]: compact, since it rides in page cursors. */
static const json_t *pending_id(const json_t *p)
{
	return json_array_get(p, 0);
}

static const char *pending_type(const json_t *p)
{
	return json_string_value(json_array_get(p, 1));
}

/* Remembers a tool use until a result answers it. Beyond SB_PENDING_MAX entries or
 * SB_PENDING_ID_BYTES of ids the oldest are forgotten. */
static int pend(struct run *r, const json_t *id, const char *type)
{
	size_t bytes = json_string_length(id), i;
	const json_t *p;

	json_array_foreach(r->pending, i, p)
		bytes += json_string_length(pending_id(p));
	while (json_array_size(r->pending) > 0 &&
	       (json_array_size(r->pending) >= SB_PENDING_MAX || bytes > SB_PENDING_ID_BYTES)) {
		bytes -= json_string_length(pending_id(json_array_get(r->pending, 0)));
		if (json_array_remove(r->pending, 0) < 0)
			return oom_ev(r);
	}
	if (json_array_append_new(r->pending, json_pack("[o, s]", sg_jstr_copy(id), type)) < 0)
		return oom_ev(r);
	return 0;
}

/* Removes the pending tool use with this id, if any. */
static void unpend(struct run *r, const json_t *id)
{
	const json_t *p;
	size_t i;

	json_array_foreach(r->pending, i, p) {
		if (json_equal((json_t *)pending_id(p), (json_t *)id)) {
			json_array_remove(r->pending, i);
			return;
		}
	}
}

/* Takes the oldest pending tool use of this type: its id (new), or NULL when none is. */
static json_t *take_oldest(struct run *r, const char *type)
{
	const json_t *p;
	json_t *id;
	size_t i;

	json_array_foreach(r->pending, i, p) {
		if (!sg_streq(pending_type(p), type))
			continue;
		id = json_incref((json_t *)pending_id(p));
		json_array_remove(r->pending, i);
		return id;
	}
	return NULL;
}

/* Text as a one-block list. New reference. */
static json_t *text_blocks(const json_t *text)
{
	return json_pack("[{s:s, s:o}]", "type", "text", "text", sg_jstr_copy(text));
}

/* The tool input as an object: an object is shared (emit() copies it), JSON text holding an
 * object is parsed, anything else becomes {} (documented). New reference, NULL when out of
 * memory. */
static json_t *tool_input(const json_t *in)
{
	if (json_is_object(in))
		return json_incref((json_t *)in);
	if (!json_is_string(in))
		return json_object();
	return sg_jparse_object(json_string_value(in), json_string_length(in));
}

static int ev_content(struct run *r, const json_t *e, json_t *ev)
{
	const json_t *c = json_object_get(e, "content");

	if (!json_is_array(c)) {
		json_decref(ev);
		return bad_ev(r, "content is missing or not an array");
	}
	/* shared, not copied: emit() gives the blocks the SDK's shapes in a copy of its own */
	return put(r, ev, "content", json_incref((json_t *)c));
}

static int ev_use(struct run *r, const json_t *e, const char *type, json_t *ev)
{
	const json_t *name = field(e, "name"), *server = field(e, "mcp_server_name");

	if (!sg_jis_id(name)) {
		json_decref(ev);
		return bad_ev(r, "%s has no tool name", type);
	}
	if (put(r, ev, "name", sg_jstr_copy(name)) ||
	    put(r, ev, "input", tool_input(field(e, "input"))))
		return -1;
	if (!strcmp(type, "agent.mcp_tool_use") &&
	    put(r, ev, "mcp_server_name",
	        sg_jis_id(server) ? sg_jstr_copy(server) : json_string("unknown")))
		return -1;
	if (emit_as(r, ev, EMIT_LINKED))
		return -1;
	return pend(r, json_object_get(e, "id"), type);
}

/* Result blocks: a content array; an object content's own `content` (array or text), or its
 * `output` text; a bare text content; else none. New reference to an array (an array of the
 * backend's is shared: emit() copies the blocks it keeps). */
static json_t *result_blocks(const json_t *e)
{
	const json_t *c = json_object_get(e, "content"), *inner;

	if (json_is_array(c))
		return json_incref((json_t *)c);
	if (json_is_string(c))
		return text_blocks(c);
	inner = field(e, "content");
	if (!sg_jpresent(inner))
		inner = field(e, "output");
	if (json_is_array(inner))
		return json_incref((json_t *)inner);
	if (json_is_string(inner))
		return text_blocks(inner);
	return json_array();
}

static int ev_result(struct run *r, const json_t *e, const struct sb_type *t, json_t *ev)
{
	const json_t *link = field(e, t->link), *err = field(e, "is_error");
	json_t *id;

	if (sg_jis_id(link)) {
		unpend(r, link);
		id = sg_jstr_copy(link);
	} else {
		id = take_oldest(r, t->use);
		if (!id) {
			/* north requires the link: a result answering nothing known is dropped */
			json_decref(ev);
			return 0;
		}
	}
	if (put(r, ev, t->link, id) || put(r, ev, "content", result_blocks(e)) ||
	    put(r, ev, "is_error", json_boolean(json_is_true(err))))
		return -1;
	return emit(r, ev);
}

/* The ids north lists in requires_action: the backend's when it gives a list of ids, else
 * every pending tool use, oldest first. New array. */
static json_t *action_ids(struct run *r, const json_t *given)
{
	const json_t *p;
	json_t *ids;
	size_t i;
	int ok = json_is_array(given);

	json_array_foreach(given, i, p)
		ok &= sg_jis_id(p);
	if (ok)
		return json_deep_copy(given);
	ids = json_array();
	json_array_foreach(r->pending, i, p) {
		if (json_array_append(ids, (json_t *)pending_id(p)) < 0) {
			json_decref(ids);
			return NULL;
		}
	}
	return ids;
}

static int ev_idle(struct run *r, const json_t *e, json_t *ev)
{
	static const char *const passed[] = {"end_turn", "retries_exhausted", "budget_reached",
	                                     "refusal"};
	const json_t *sr = field(e, "stop_reason");
	const char *why = json_is_string(sr) ? json_string_value(sr) : sg_jstr(sr, "type");
	json_t *stop;

	if (sg_streq(why, "requires_action")) {
		stop = json_pack("{s:s, s:o}", "type", "requires_action", "event_ids",
		                 action_ids(r, json_object_get(sr, "event_ids")));
	} else {
		/* user_interrupt, null and unknown reasons end the turn (the preceding
		 * user.interrupt records why); nothing is pending after a finished turn */
		stop = json_pack("{s:s}", "type", IN_LIST(why, passed) ? why : "end_turn");
		json_array_clear(r->pending);
	}
	if (put(r, ev, "stop_reason", stop) || put(r, ev, "stop_details", json_null()))
		return -1;
	return emit(r, ev);
}

/* The north error union member for SandBase's error type: the name itself or with "_error"
 * appended, when the payload has the string keys that variant requires (repository_url may
 * be null or absent). Index, or -1. */
static int error_variant(const char *t, const json_t *eo)
{
	char name[64];
	size_t i, k;

	for (i = 0; t && i < sizeof(error_types) / sizeof(error_types[0]); i++) {
		snprintf(name, sizeof(name), "%s_error", t);
		if (strcmp(t, error_types[i].type) && strcmp(name, error_types[i].type))
			continue;
		for (k = 0; k < 2 && error_types[i].extra[k]; k++) {
			const char *key = error_types[i].extra[k];

			if (!sg_jis_id(json_object_get(eo, key)) && strcmp(key, "repository_url"))
				return -1;
		}
		return (int)i;
	}
	return -1;
}

/* The message of an unknown_error: SandBase's own type name stays in front of its message,
 * as it is the only place left for it. New string. */
static json_t *unknown_message(const json_t *msg, const char *type)
{
	if (json_is_string(msg) && type)
		return json_sprintf("%s: %s", type, json_string_value(msg));
	if (json_is_string(msg))
		return sg_jstr_copy(msg);
	return json_string(type ? type : "session error");
}

/* session.error: SandBase's error object (at `error`, in `data` or in an object `content`)
 * mapped onto the SDK union; unknown_error carrying the message when it does not fit. */
static json_t *map_error(const json_t *e)
{
	const json_t *eo = field(e, "error"), *c = json_object_get(e, "content"), *msg, *rs;
	const char *t, *state;
	json_t *out;
	int vi, rc = 0;
	size_t k;

	if (!json_is_object(eo))
		eo = json_is_object(json_object_get(e, "data")) ? json_object_get(e, "data") : c;
	msg = json_object_get(eo, "message");
	if (!json_is_string(msg) && json_is_string(field(e, "error")))
		msg = field(e, "error");
	if (!json_is_string(msg) && json_is_array(c))
		msg = json_object_get(json_array_get(c, 0), "text");
	t = sg_jstr(eo, "type");
	rs = json_object_get(eo, "retry_status");
	state = json_is_string(rs) ? json_string_value(rs) : sg_jstr(rs, "type");
	if (!IN_LIST(state, retry_states))
		state = "terminal";
	vi = json_is_string(msg) ? error_variant(t, eo) : -1;
	if (vi >= 0) {
		out = json_pack("{s:s, s:o, s:{s:s}}", "type", error_types[vi].type, "message",
		                sg_jstr_copy(msg), "retry_status", "type", state);
		for (k = 0; out && k < 2 && error_types[vi].extra[k]; k++) {
			const json_t *x = json_object_get(eo, error_types[vi].extra[k]);

			rc |= json_object_set_new(out, error_types[vi].extra[k],
			                          sg_jis_id(x) ? sg_jstr_copy(x) : json_null());
		}
		if (rc) {
			json_decref(out);
			return NULL;
		}
		return out;
	}
	return json_pack("{s:s, s:o, s:{s:s}}", "type", "unknown_error", "message",
	                 unknown_message(msg, t), "retry_status", "type", state);
}

/* A K_KEYS payload value: `metadata` and `usage` in the form sessions give them (their
 * metadata's string rule, map_usage), so an event never says less than the session does;
 * anything else shared as SandBase wrote it, for emit() to shape. New reference, NULL when out
 * of memory. */
static json_t *payload_value(const char *key, const json_t *v)
{
	json_t *m;

	if (!strcmp(key, "usage"))
		return map_usage(v);
	if (!strcmp(key, "metadata") && json_is_object(v)) {
		m = json_object();
		if (m && metadata_pairs(m, v) < 0) {
			json_decref(m);
			return NULL;
		}
		return m;
	}
	return json_incref((json_t *)v);
}

static int ev_keys(struct run *r, const json_t *e, const struct sb_type *t, json_t *ev)
{
	const char *const *k;
	const json_t *v;

	for (k = t->keys; *k; k++) {
		const char *key = **k == '!' ? *k + 1 : *k;

		v = field(e, key);
		if (!v && **k == '!') {
			/* the SDK requires it and SandBase did not send it: nothing to show */
			json_decref(ev);
			return 0;
		}
		if (v && put(r, ev, key, payload_value(key, v)))
			return -1;
	}
	/* The queue follows SandBase's log, whether or not the normaliser shows the result: a
	 * result with a usable link cannot be dropped (the link is its one required key), and
	 * one it drops had none, so it took no tool use off the queue. */
	if (t->link && sg_jis_id(field(e, t->link)))
		unpend(r, field(e, t->link));
	return emit_as(r, ev, EMIT_NO_NULLS);
}

/* A count in the envelope: 0 = absent or null (*n = 0), 1 = a non-negative integer, -1 with
 * a 502 otherwise. */
static int count(struct run *r, const json_t *e, const char *key, int64_t *n)
{
	const json_t *v = json_object_get(e, key);

	*n = 0;
	if (!sg_jpresent(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return bad_ev(r, "%s is not a non-negative integer", key);
	*n = json_integer_value(v);
	return 1;
}

/* The span pair around an event that spent tokens; `half` 0 emits the start, 1 the end. */
static int span(struct run *r, const json_t *src, int half, int64_t at, int64_t in,
                int64_t out_tokens, int is_error)
{
	char id[SG_EVENT_ID_LEN + 1], start_id[SG_EVENT_ID_LEN + 1];
	json_t *ev;

	if (synth_id(r, src, "span_start", start_id))
		return -1;
	if (half == 0) {
		ev = new_event(r, "span.model_request_start", src, start_id, at);
		return ev ? emit_as(r, ev, EMIT_LINKED) : -1;
	}
	if (synth_id(r, src, "span_end", id))
		return -1;
	ev = new_event(r, "span.model_request_end", src, id, at);
	if (!ev || put(r, ev, "model_request_start_id", json_string(start_id)) ||
	    put(r, ev, "is_error", json_boolean(is_error)) ||
	    put(r, ev, "model_usage",
	        json_pack("{s:I, s:I, s:I, s:I}", "input_tokens", (json_int_t)in, "output_tokens",
	                  (json_int_t)out_tokens, "cache_creation_input_tokens", (json_int_t)0,
	                  "cache_read_input_tokens", (json_int_t)0)))
		return -1;
	return emit_as(r, ev, EMIT_LINKED);
}

static const struct sb_type *find_type(const char *type)
{
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(types[i].type, type))
			return &types[i];
	return NULL;
}

/* Translates one backend event: [span start] [the event, unless dropped] [span end]. */
static int one_event(struct run *r, const json_t *e, size_t i)
{
	const json_t *idv = json_object_get(e, "id"), *tv = json_object_get(e, "type");
	const struct sb_type *t;
	int64_t at, in, outk, dur, start;
	size_t emitted = json_array_size(r->out);
	int spans, rc;
	char q[SB_QUOTE_BUF];
	json_t *ev;

	snprintf(r->where, sizeof(r->where), "events[%zu]: ", i);
	snprintf(r->path, sizeof(r->path), "events[%zu]", i);
	if (!json_is_object(e))
		return bad_ev(r, "event is not an object");
	if (!sg_jis_id(idv) || json_string_length(idv) > SB_EVENT_ID_MAX)
		return bad_ev(r, "id is missing, empty, not a string or longer than %d bytes",
		              SB_EVENT_ID_MAX);
	snprintf(r->where, sizeof(r->where), "events[%zu] '%s': ", i, quote(idv, q));
	if (!json_is_string(tv) || sg_jhas_nul(tv))
		return bad_ev(r, "type is missing or not a string");
	rc = read_time(json_object_get(e, "processed_at"), &at);
	if (rc < 0)
		return bad_ev(r, "processed_at is not an RFC 3339 timestamp");
	if (rc == 0 && read_time(json_object_get(e, "created_at"), &at) <= 0)
		return bad_ev(r, "processed_at is null and created_at is not a timestamp");
	if (count(r, e, "tokens_in", &in) < 0 || count(r, e, "tokens_out", &outk) < 0 ||
	    count(r, e, "duration_ms", &dur) < 0)
		return -1;
	t = find_type(json_string_value(tv));
	spans = in > 0 || outk > 0;
	/* a span starts duration_ms before processed_at; that must still be a time. Checked
	 * before any arithmetic (dur * 1000 overflows for a duration near 9.3e15), and only an
	 * event with a span uses it. */
	if (spans) {
		if (dur > (at - SB_TIME_MIN_US) / 1000)
			return bad_ev(r, "duration_ms reaches back before the year 1");
		/* SandBase writes whole seconds, so processed_at - duration_ms can land before the
		 * event emitted last; north lists oldest first, so the start is held at that time
		 * (a shorter span, never a reordered list), and never after its own end. */
		start = at - dur * 1000;
		if (r->has_last && start < r->last_at)
			start = r->last_at;
		if (start > at)
			start = at;
		if (span(r, idv, 0, start, 0, 0, 0))
			return -1;
	}
	if (t) {
		ev = new_event(r, t->type, idv, NULL, at);
		if (!ev)
			return -1;
		switch (t->kind) {
		case K_BARE:
			rc = emit(r, ev);
			break;
		case K_CONTENT:
			rc = ev_content(r, e, ev) || emit(r, ev);
			break;
		case K_USE:
			rc = ev_use(r, e, t->type, ev);
			break;
		case K_RESULT:
			rc = ev_result(r, e, t, ev);
			break;
		case K_IDLE:
			rc = ev_idle(r, e, ev);
			break;
		case K_ERROR:
			rc = put(r, ev, "error", map_error(e)) || emit(r, ev);
			break;
		default: /* K_KEYS */
			rc = ev_keys(r, e, t, ev);
			break;
		}
		if (rc)
			return -1;
	}
	/* spans outlive a dropped event: the tokens were spent all the same */
	if (spans && span(r, idv, 1, at, in, outk, t && t->kind == K_ERROR))
		return -1;
	/* whatever this event emitted last (itself or its span end) is dated `at` */
	if (json_array_size(r->out) > emitted) {
		r->last_at = at;
		r->has_last = 1;
	}
	return 0;
}

/* Loads the state a previous run handed out (see sg_sb_events_to_cma). A state this module
 * did not write is the caller's bug: 500. */
static int load_carry(struct run *r, const json_t *carry)
{
	const json_t *list = json_object_get(carry, "pending"), *p;
	const json_t *last = json_object_get(carry, "at");
	char ts[SG_TIME_BUFSZ];
	size_t i;

	if (!sg_jpresent(carry))
		return 0;
	if (!json_is_array(list) || json_array_size(list) > SB_PENDING_MAX)
		goto wrong;
	if (last) {
		if (!json_is_integer(last) ||
		    sg_time_format(json_integer_value(last), ts, sizeof(ts)) < 0)
			goto wrong;
		r->last_at = json_integer_value(last);
		r->has_last = 1;
	}
	json_array_foreach(list, i, p) {
		if (json_array_size(p) != 2 || !sg_jis_id(pending_id(p)) ||
		    json_string_length(pending_id(p)) > SB_EVENT_ID_MAX ||
		    !IN_LIST(pending_type(p), use_types))
			goto wrong;
		if (pend(r, pending_id(p), pending_type(p)))
			return -1;
	}
	return 0;
wrong:
	return sg_err_internal(r->err, "sandbase event translation given a linking state it did "
	                               "not write");
}

json_t *sg_sb_events_to_cma(const json_t *events, const json_t *carry_in, json_t **carry_out,
                            const struct sg_sb_ctx *ctx, struct sg_error *err)
{
	struct run r = {.ctx = ctx, .err = err};
	const json_t *e;
	json_t *carry = NULL;
	size_t i;

	if (carry_out)
		*carry_out = NULL;
	if (check_ctx(ctx, err))
		return NULL;
	if (!json_is_array(events)) {
		bad(err, ctx->backend, "", "the event list is not an array");
		return NULL;
	}
	if (json_array_size(events) > SB_MAX_EVENTS) {
		bad(err, ctx->backend, "",
		    "the event list has %zu events, more than the limit of %d",
		    json_array_size(events), SB_MAX_EVENTS);
		return NULL;
	}
	r.out = json_array();
	r.pending = json_array();
	if (!r.out || !r.pending) {
		sg_err_oom(err, ctx->backend);
		goto fail;
	}
	if (load_carry(&r, carry_in))
		goto fail;
	json_array_foreach(events, i, e) {
		if (one_event(&r, e, i))
			goto fail;
	}
	if (carry_out) {
		carry = json_object();
		if (!carry) {
			sg_err_oom(err, ctx->backend);
			goto fail;
		}
		/* json_object_set_new steals the queue, even when it fails */
		if (json_object_set_new(carry, "pending", r.pending) < 0) {
			r.pending = NULL;
			sg_err_oom(err, ctx->backend);
			goto fail;
		}
		r.pending = NULL;
		if (r.has_last &&
		    json_object_set_new(carry, "at", json_integer((json_int_t)r.last_at)) < 0) {
			sg_err_oom(err, ctx->backend);
			goto fail;
		}
		*carry_out = carry;
	}
	json_decref(r.pending);
	sg_id_seed_free(&r.seed);
	return r.out;
fail:
	json_decref(carry);
	json_decref(r.out);
	json_decref(r.pending);
	sg_id_seed_free(&r.seed);
	return NULL;
}

/* ---- errors --------------------------------------------------------------------------- */

/* ---- writes ------------------------------------------------------------------------------ */

/* 400 invalid_request_error "backend 'NAME' (sandbase) <what>". Always returns -1. */
__attribute__((format(printf, 3, 4))) static int refuse(struct sg_error *err, const char *backend,
                                                        const char *fmt, ...)
{
	char what[SG_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return sg_err_invalid(err, "backend '%s' (sandbase) %s", backend, what);
}

/* Copies body[key] into out when present (a null too: SandBase reads it as the north dialect
 * does). Returns 0, or -1 when out of memory. */
static int pass(json_t *out, const json_t *body, const char *key)
{
	const json_t *v = json_object_get(body, key);

	return v ? json_object_set_new(out, key, json_deep_copy(v)) : 0;
}

static int asks(const json_t *v)
{
	return json_is_array(v) && json_array_size(v) > 0;
}

json_t *sg_sb_create_request(const json_t *body, const char *backend, struct sg_error *err)
{
	static const char *const overrides[] = {"mcp_servers", "model", "skills", "system",
	                                        "tools"};
	static const char *const keys[] = {"agent", "environment_id", "title", "metadata",
	                                   "initial_events"};
	const json_t *agent = json_object_get(body, "agent");
	json_t *out;
	int rc = 0;

	if (sg_streq(sg_jstr(agent, "type"), "agent_with_overrides")) {
		char given[128] = "";
		size_t used = 0;

		for (size_t i = 0; i < sizeof(overrides) / sizeof(overrides[0]); i++) {
			if (json_object_get(agent, overrides[i]))
				used += (size_t)snprintf(given + used, sizeof(given) - used, "%s%s",
				                         used ? ", " : "", overrides[i]);
		}
		refuse(err, backend,
		       "cannot override an agent per session%s%s%s: update the agent, or the "
		       "session's "
		       "tools and MCP servers after creating it",
		       used ? " (given: " : "", given, used ? ")" : "");
		return NULL;
	}
	if (asks(json_object_get(body, "resources"))) {
		refuse(err, backend, "cannot attach resources: SandBase sessions have none");
		return NULL;
	}
	if (asks(json_object_get(body, "vault_ids"))) {
		refuse(err, backend, "cannot use vaults: SandBase sessions have none");
		return NULL;
	}
	if (sg_jpresent(json_object_get(body, "budget"))) {
		refuse(err, backend, "cannot enforce a budget: SandBase sessions have none");
		return NULL;
	}
	out = json_object();
	for (size_t i = 0; out && i < sizeof(keys) / sizeof(keys[0]); i++)
		rc |= pass(out, body, keys[i]);
	if (!out || rc) {
		json_decref(out);
		sg_err_internal(err, "out of memory");
		return NULL;
	}
	return out;
}

json_t *sg_sb_update_request(const json_t *body, const char *backend, struct sg_error *err)
{
	static const char *const keys[] = {"title", "metadata", "agent"};
	json_t *out;
	int rc = 0;

	if (sg_jpresent(json_object_get(body, "budget"))) {
		refuse(err, backend, "cannot enforce a budget: SandBase sessions have none");
		return NULL;
	}
	if (asks(json_object_get(body, "vault_ids"))) {
		refuse(err, backend, "cannot use vaults: SandBase sessions have none");
		return NULL;
	}
	out = json_object();
	for (size_t i = 0; out && i < sizeof(keys) / sizeof(keys[0]); i++)
		rc |= pass(out, body, keys[i]);
	if (!out || rc) {
		json_decref(out);
		sg_err_internal(err, "out of memory");
		return NULL;
	}
	return out;
}

json_t *sg_sb_sent_to_cma(const json_t *body, const struct sg_sb_ctx *ctx, struct sg_error *err)
{
	const json_t *data;
	json_t *events, *out;

	if (check_ctx(ctx, err))
		return NULL;
	if (!json_is_object(body)) {
		bad(err, ctx->backend, "", "the send answer is not a JSON object");
		return NULL;
	}
	data = json_object_get(body, "data");
	if (sg_jpresent(data) && !json_is_array(data)) {
		bad(err, ctx->backend, "", "the send answer's data is not an array");
		return NULL;
	}
	events = sg_jpresent(data) ? sg_sb_events_to_cma(data, NULL, NULL, ctx, err) : json_array();
	if (!events) {
		if (!sg_jpresent(data))
			sg_err_oom(err, ctx->backend);
		return NULL;
	}
	out = json_pack("{s:o}", "data", events);
	if (!out)
		sg_err_oom(err, ctx->backend);
	return out;
}

void sg_sb_read_error(long status, const char *body, size_t len, struct sg_backend_said *out)
{
	const json_t *sid;
	json_t *j;

	sg_berror_read(status, body, len, out);
	if (strcmp(out->type, "delivery_outcome_unknown"))
		return;
	/* A create whose outcome SandBase does not know: it names the session that may exist. */
	out->outcome_unknown = 1;
	j = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	sid = json_object_get(j, "session_id");
	if (sg_jis_id(sid) && json_string_length(sid) < sizeof(out->session))
		memcpy(out->session, json_string_value(sid), json_string_length(sid) + 1);
	json_decref(j);
}
