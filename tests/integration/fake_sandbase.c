/* fake_sandbase.c - a fake SandBase sessions API (backends.md §2, seeds 000/002 and SandBase's
 * public OpenAPI) and a fake Claude-native upstream (the north dialect itself,
 * claude-dialect.md §1-§6) for the integration tests, the SDK conformance suite and the demo.
 *
 * --dialect sandbase copies SandBase's quirks on purpose, because the gateway exists to hide
 * them:
 *   - auth by x-api-key or "Authorization: Bearer" (x-api-key wins when both are sent);
 *   - GET /v1/sessions knows created_at_gte/created_at_lte only (the bracket spelling is
 *     ignored), ignores statuses in every spelling, pages newest first by (created_at, id) with
 *     an opaque "page_…" cursor, leaves next_page out on the last page and has no prev_page;
 *   - sessions use "sess_" ids, flat agent_id/agent_version, usage null, and about half of them
 *     carry no agent snapshot (GET /v1/agents/{id}?version=N has it);
 *   - events have a flat envelope (content, stop_reason, model_used, tokens_in, tokens_out,
 *     duration_ms, processed_at, created_at; timestamps in whole seconds, so neighbours tie);
 *     content is null on status events and user.interrupt; tool uses carry {name, input}
 *     (+ mcp_server_name for agent.mcp_tool_use) in content; a model call's tokens and
 *     duration sit on its first event only; results of built-in and MCP tools alike are
 *     agent.tool_result, with tool_use_id (the tool-use event's id) and is_error at the top
 *     level on only some; session.error keeps {"error": {type, message}} under "data", as
 *     does interrupt.response {interrupt_id, response}; idles may stop with user_interrupt or
 *     a requires_action lacking event_ids; a queued user.message has processed_at null;
 *     rescheduling/terminated sessions end in session.error with no status event after it;
 *   - GET /v1/sessions/{id}/events answers everything at once and ignores its query
 *     (--events-page 0, the seed's behaviour) or pages N per page (--events-page N);
 *   - errors are {"type":"error","error":{"type":"invalid_request"|"not_found"|…,"message"}}.
 * --dialect claude is a faithful upstream: the SDK's bracketed query keys, the beta header,
 * BidirectionalPageCursor / PageCursor bodies, "sesn_" ids, north error envelopes with
 * request_id and a request-id header. A few of its sessions leave out blocks the SDK types
 * call required (outcome_evaluations, stats, budget, vault_ids, resources, the agent's
 * execution_identity/multiagent; usage null) and a few idles have no stop_details, so the
 * gateway's normalisation is exercised.
 *
 * Cursors are "page_" + unpadded base64url of a compact JSON object:
 *   SandBase sessions  {"c": created_at, "i": id}              resume after that key
 *   Claude sessions    {"d": "next"|"prev", "o": "asc"|"desc", "c": created_at, "i": id}
 *   events (both)      {"p": index in the session's history, "i": event id}
 * A cursor that does not decode, or an events cursor whose index does not hold that id, is a
 * 400. Ids and cursors are deterministic for a given dataset.
 *
 * One thread, one libevent loop; nothing blocks it (delays are event timers). The dataset is
 * immutable after start-up: every session is serialised once and listings reference those
 * strings.
 *
 * Data (file and generator alike), in the dialect served:
 *   {"agents": [Agent...], "sessions": [{"session": Session, "events": [Event...]}]}
 * A file may hold both dialects as {"sandbase": {...}, "claude": {...}}; the served one is
 * picked. "agents" (one object per id and version) is only used by SandBase's
 * GET /v1/agents/{id}. Events are served in file order. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "fake_common.h"

#define FS_NAME "fake_sandbase"
#define FS_MAX_GENERATE 20000 /* about 8 KiB of JSON per generated session */
#define FS_MAX_EVENTS_PAGE 100000
#define FS_MAX_CURSOR 1024 /* a longer page value cannot be one of ours */
#define FS_SB_LIMIT_DEFAULT 20
#define FS_SB_LIMIT_MAX 100
#define FS_CL_LIMIT_DEFAULT 20
#define FS_CL_LIMIT_MAX 100
#define FS_CL_EV_LIMIT_DEFAULT 1000
#define FS_CL_EV_LIMIT_MAX 1000
#define FS_ID_LEN 48
#define FS_BETA "managed-agents-2026-04-01"
#define FS_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

enum fs_dialect { FS_D_SANDBASE, FS_D_CLAUDE };

static const char *const fs_dialect_names[] = {"sandbase", "claude"};

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                                */
/* ------------------------------------------------------------------------------------------ */

/* Strict signed decimal parse of a whole string (no spaces, no '+'); 0 on success. */
static int fs_parse_int(const char *s, long long *out)
{
	char *end = NULL;
	long long v;

	if (s == NULL || (*s != '-' && (*s < '0' || *s > '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Time: RFC 3339 in UTC, microseconds since the epoch inside                                   */
/* ------------------------------------------------------------------------------------------ */

/* Parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)" into microseconds since the epoch (digits
 * past the sixth fractional one are dropped). Returns 0 on success. */
static int fs_parse_time(const char *s, int64_t *out)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 1;
	int64_t us = 0, secs;
	const char *p = s;

	if (s == NULL || fk_digits(&p, 4, &y) || *p++ != '-' || fk_digits(&p, 2, &mo) ||
	    *p++ != '-' || fk_digits(&p, 2, &d) || (*p != 'T' && *p != 't'))
		return -1;
	p++;
	if (fk_digits(&p, 2, &h) || *p++ != ':' || fk_digits(&p, 2, &mi) || *p++ != ':' ||
	    fk_digits(&p, 2, &sec))
		return -1;
	if (*p == '.') {
		int scale = 100000, n = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, n++) {
			us += (*p - '0') * scale;
			scale /= 10;
		}
		if (n == 0)
			return -1;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (fk_digits(&p, 2, &oh) || *p++ != ':' || fk_digits(&p, 2, &om))
			return -1;
	} else {
		return -1;
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
	    oh > 23 || om > 59)
		return -1;
	secs = fk_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec -
	       sign * (oh * 3600 + om * 60);
	*out = secs * 1000000 + us;
	return 0;
}

/* Formats us (>= 0) as RFC 3339 UTC with 'Z': prec 0 = seconds, 3 = milliseconds,
 * 6 = microseconds. */
static void fs_fmt_time(char *buf, size_t len, int64_t us, int prec)
{
	time_t t = (time_t)(us / 1000000);
	int frac = (int)(us % 1000000);
	struct tm tm;
	size_t n;

	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, len, "1970-01-01T00:00:00Z");
		return;
	}
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n == 0 || n >= len)
		return;
	if (prec == 3)
		snprintf(buf + n, len - n, ".%03dZ", frac / 1000);
	else if (prec == 6)
		snprintf(buf + n, len - n, ".%06dZ", frac);
	else
		snprintf(buf + n, len - n, "Z");
}

static int64_t fs_epoch_us(int y, unsigned m, unsigned d)
{
	return fk_days_from_civil(y, m, d) * 86400 * INT64_C(1000000);
}

/* ------------------------------------------------------------------------------------------ */
/* Id shapes from the seeded PRNG                                                               */
/* ------------------------------------------------------------------------------------------ */

/* prefix + a ULID (SandBase's "01Hq…" bodies): 10 Crockford characters of millisecond time,
 * then 16 random ones. */
static void fs_ulid(struct fk_rng *r, const char *prefix, int64_t us, char *out, size_t len)
{
	static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	uint64_t ms = (uint64_t)(us / 1000), a = fk_rng_next(r), b = fk_rng_next(r);
	char body[27];

	for (int i = 9; i >= 0; i--, ms >>= 5)
		body[i] = crockford[ms & 31];
	for (int i = 10; i < 18; i++, a >>= 5)
		body[i] = crockford[a & 31];
	for (int i = 18; i < 26; i++, b >>= 5)
		body[i] = crockford[b & 31];
	body[26] = '\0';
	snprintf(out, len, "%s%s", prefix, body);
}

/* prefix + "011C" + 20 base62 characters: the shape of Anthropic's ids. */
static void fs_antid(struct fk_rng *r, const char *prefix, char *out, size_t len)
{
	static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	char body[25] = "011C";

	for (int i = 4; i < 24; i++)
		body[i] = b62[fk_rng_below(r, 62)];
	body[24] = '\0';
	snprintf(out, len, "%s%s", prefix, body);
}

/* ------------------------------------------------------------------------------------------ */
/* Cursors: "page_" + unpadded base64url of a compact JSON object                               */
/* ------------------------------------------------------------------------------------------ */

static const char fs_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int fs_b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-' || c == '+')
		return 62;
	if (c == '_' || c == '/')
		return 63;
	return -1;
}

/* Returns "page_" + base64url(j) (malloc'd) or NULL. j is stolen. */
static char *fs_cursor_mint(json_t *j)
{
	char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL, *out = NULL;
	size_t n, o = 5;
	uint32_t acc = 0;
	int bits = 0;

	json_decref(j);
	if (text == NULL)
		return NULL;
	n = strlen(text);
	out = malloc(5 + (n * 4 + 2) / 3 + 1);
	if (out == NULL)
		goto out;
	memcpy(out, "page_", 5);
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | (unsigned char)text[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = fs_b64[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = fs_b64[(acc << (6 - bits)) & 63];
	out[o] = '\0';
out:
	free(text);
	return out;
}

/* Opens a "page_…" cursor (either base64 alphabet, padding optional). Returns the JSON object
 * it carries (new reference) or NULL when it is not one of ours. */
static json_t *fs_cursor_open(const char *s)
{
	size_t n, o = 0;
	uint32_t acc = 0;
	int bits = 0;
	char *raw;
	json_t *j;

	if (s == NULL || strncmp(s, "page_", 5) != 0 || strlen(s) > FS_MAX_CURSOR)
		return NULL;
	s += 5;
	n = strlen(s);
	while (n > 0 && s[n - 1] == '=')
		n--;
	raw = malloc(n + 1);
	if (raw == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int v = fs_b64_value(s[i]);

		if (v < 0) {
			free(raw);
			return NULL;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			raw[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	raw[o] = '\0';
	j = strlen(raw) == o ? json_loads(raw, 0, NULL) : NULL;
	free(raw);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* ------------------------------------------------------------------------------------------ */
/* Generator: --generate N[:AGENTS]                                                             */
/* ------------------------------------------------------------------------------------------ */

/* One user request and how the agent handles it with a built-in tool. */
struct fs_topic {
	const char *prompt;
	const char *intro;
	const char *tool;
	const char *input; /* JSON object text */
	const char *output;
	const char *answer;
};

static const struct fs_topic fs_topics[] = {
    {"Where is my order #1234?", "Let me look up order #1234 for you.", "web_fetch",
     "{\"url\":\"https://shop.example.com/api/orders/1234\"}",
     "{\"status\":\"shipped\",\"carrier\":\"DHL\",\"eta\":\"2026-06-02\"}",
     "Order #1234 shipped with DHL yesterday and should arrive on 2 June."},
    {"Count the failing tests in the nightly report.", "I'll read the nightly report first.",
     "read", "{\"file_path\":\"/workspace/reports/nightly.xml\"}",
     "<testsuite tests=\"812\" failures=\"3\" errors=\"1\"/>",
     "Four tests fail in the nightly run: three failures and one error."},
    {"Which services still pin openssl 1.1?", "Searching the lock files for openssl.", "grep",
     "{\"pattern\":\"openssl.*1\\\\.1\",\"glob\":\"**/*.lock\"}",
     "billing/poetry.lock\nsearch/Cargo.lock", "Two services still pin it: billing and search."},
    {"Summarise yesterday's incident channel.", "Let me pull the incident log.", "bash",
     "{\"command\":\"cat /workspace/incidents/2026-05-28.log | tail -n 200\"}",
     "09:12 alert p95 latency\n09:20 rollback of api v2.31\n09:41 resolved",
     "A latency alert at 09:12 was fixed by rolling back api v2.31; resolved by 09:41."},
    {"How big is the customers table?", "I'll ask the database.", "bash",
     "{\"command\":\"psql -c 'select count(*) from customers'\"}", " count \n-------\n 48211",
     "The customers table holds 48,211 rows."},
    {"Find a flight from Lisbon to Berlin on Friday.", "Searching flights for Friday.",
     "web_search", "{\"query\":\"Lisbon Berlin flights Friday\"}",
     "TP 544 07:05-11:35 EUR 142\nLH 1173 12:40-17:05 EUR 188",
     "The cheapest is TAP 544 at 07:05 for EUR 142; Lufthansa 1173 leaves at 12:40."},
    {"Draft release notes for v2.4.", "Let me list the merged changes since v2.3.", "bash",
     "{\"command\":\"git log --oneline v2.3..HEAD\"}", "a1b2c3 faster sync\nd4e5f6 dark mode",
     "v2.4 brings faster sync and a dark mode."},
    {"Is the staging deploy healthy?", "Checking the staging health endpoint.", "web_fetch",
     "{\"url\":\"https://staging.example.com/healthz\"}",
     "200 {\"status\":\"ok\",\"version\":\"2.4.0-rc1\"}", "Staging is healthy and runs 2.4.0-rc1."},
};

static const char *const fs_followups[] = {
    "Thanks. Can you also check the previous week?",
    "Please keep it shorter next time.",
    "And what about the EU region?",
    "Great, send that to the team channel.",
};

static const char *const fs_roles[] = {"Support agent", "Research assistant", "Release helper",
                                       "Data analyst", "Travel planner"};
static const char *const fs_models[] = {"claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"};

#define FS_MAX_VERSIONS 3

/* An agent and its versions, as the generator knows it. */
struct fs_gagent {
	char id[FS_ID_LEN];
	char env[FS_ID_LEN];
	char ver_id[FS_MAX_VERSIONS][FS_ID_LEN]; /* SandBase agent_version_id */
	json_int_t ver[FS_MAX_VERSIONS];         /* version numbers */
	json_t *obj[FS_MAX_VERSIONS]; /* SandBase Agent / Claude SessionAgent, borrowed */
	unsigned nver;
	const char *model;
};

struct fs_gen {
	struct fk_rng rng;
	enum fs_dialect dialect;
};

static bool fs_gen_sb(const struct fs_gen *g)
{
	return g->dialect == FS_D_SANDBASE;
}

/* The tool list of version v (1-based) of agent k: it grows with the version. New reference. */
static json_t *fs_gen_tools(unsigned v)
{
	json_t *tools =
	    json_pack("[{s:s, s:[{s:s, s:b, s:{s:s}}, {s:s, s:b, s:{s:s}}], s:{s:b, s:{s:s}}}]",
	              "type", "agent_toolset_20260401", "configs", "name", "bash", "enabled", 1,
	              "permission_policy", "type", "always_ask", "name", "read", "enabled", 1,
	              "permission_policy", "type", "always_allow", "default_config", "enabled", 1,
	              "permission_policy", "type", "always_allow");

	if (tools != NULL && v >= 2)
		json_array_append_new(
		    tools, json_pack("{s:s, s:s, s:[], s:{s:b, s:{s:s}}}", "type", "mcp_toolset",
		                     "mcp_server_name", "crm", "configs", "default_config",
		                     "enabled", 1, "permission_policy", "type", "always_allow"));
	if (tools != NULL && v >= 3)
		json_array_append_new(
		    tools, json_pack("{s:s, s:s, s:s, s:{s:s, s:{s:{s:s}, s:{s:s}}, s:[s]}}",
		                     "type", "custom", "name", "create_ticket", "description",
		                     "Open a ticket in the helpdesk.", "input_schema", "type",
		                     "object", "properties", "title", "type", "string", "priority",
		                     "type", "string", "required", "title"));
	return tools;
}

/* Version v (1-based) of agent k in the served dialect. New reference. */
static json_t *fs_gen_agent_version(struct fs_gen *g, const struct fs_gagent *a, unsigned k,
                                    unsigned v, const char *name)
{
	char system[160], created[40], updated[40];
	int64_t t0 = fs_epoch_us(2025, 12, 1) + (int64_t)k * 86400 * INT64_C(1000000);
	json_t *model = json_pack("{s:s, s:s}", "id", a->model, "speed", "standard");
	json_t *mcp = v >= 2 ? json_pack("[{s:s, s:s, s:s}]", "name", "crm", "type", "url", "url",
	                                 "https://mcp.example.com/crm")
	                     : json_array();
	json_t *skills = k % 2 == 0 ? json_pack("[{s:s, s:s, s:s}]", "skill_id", "xlsx", "type",
	                                        "anthropic", "version", "1")
	                            : json_array();
	const char *desc = k % 4 == 3 ? NULL : "Answers questions and uses tools when they help.";

	snprintf(system, sizeof(system), "You are the %s (revision %u). Be brief and cite tools.",
	         name, v);
	if (model != NULL && k % 3 == 1)
		json_object_set_new(model, "effort", json_pack("{s:s}", "type", "high"));
	if (!fs_gen_sb(g))
		return json_pack(
		    "{s:s, s:s, s:s, s:s?, s:s, s:I, s:o, s:{s:s}, s:o, s:o, s:o, s:n}", "id",
		    a->id, "type", "agent", "name", name, "description", desc, "system", system,
		    "version", a->ver[v - 1], "model", model, "execution_identity", "type",
		    "service_account", "mcp_servers", mcp, "skills", skills, "tools",
		    fs_gen_tools(v), "multiagent");
	fs_fmt_time(created, sizeof(created), t0, 0);
	fs_fmt_time(updated, sizeof(updated), t0 + (int64_t)v * 7 * 86400 * INT64_C(1000000), 0);
	/* SandBase's own Agent object: description and empty lists are sometimes left out (the
	 * documented GET example has neither mcp_servers nor skills). */
	if (json_array_size(mcp) == 0 && k % 2 == 1) {
		json_decref(mcp);
		mcp = NULL;
	}
	if (json_array_size(skills) == 0) {
		json_decref(skills);
		skills = NULL;
	}
	return json_pack("{s:s, s:s, s:s, s:s*, s:o, s:s, s:o, s:o*, s:o*, s:s, s:{}, s:I, s:s,"
	                 " s:s, s:n}",
	                 "id", a->id, "type", "agent", "name", name, "description", desc, "model",
	                 model, "system", system, "tools", fs_gen_tools(v), "mcp_servers", mcp,
	                 "skills", skills, "runtime_profile", "standard", "metadata", "version",
	                 a->ver[v - 1], "created_at", created, "updated_at", updated,
	                 "archived_at");
}

/* The agents: agent k has 1 + k % 3 versions. Claude's second agent uses 19-digit version
 * numbers, as the SDK's examples do. Fills a[] and appends SandBase's Agents to out. */
static int fs_gen_agents(struct fs_gen *g, struct fs_gagent *a, unsigned n, json_t *out)
{
	for (unsigned k = 0; k < n; k++) {
		char name[64];

		snprintf(name, sizeof(name), "%s %u", fs_roles[k % FK_COUNT(fs_roles)], k + 1);
		a[k].model = fs_models[k % FK_COUNT(fs_models)];
		a[k].nver = 1 + k % FS_MAX_VERSIONS;
		if (fs_gen_sb(g)) {
			int64_t t = fs_epoch_us(2025, 12, 1) + (int64_t)k * INT64_C(86400000000);

			fs_ulid(&g->rng, "agent_", t, a[k].id, sizeof(a[k].id));
			fs_ulid(&g->rng, "env_", t, a[k].env, sizeof(a[k].env));
		} else {
			fs_antid(&g->rng, "agent_", a[k].id, sizeof(a[k].id));
			fs_antid(&g->rng, "env_", a[k].env, sizeof(a[k].env));
		}
		for (unsigned v = 1; v <= a[k].nver; v++) {
			json_t *obj;

			a[k].ver[v - 1] = !fs_gen_sb(g) && k % 3 == 1
			                      ? INT64_C(1760000000000000000) + (json_int_t)v * 1000
			                      : (json_int_t)v;
			fs_ulid(&g->rng, "agver_", fs_epoch_us(2025, 12, 1) + v, a[k].ver_id[v - 1],
			        sizeof(a[k].ver_id[v - 1]));
			obj = fs_gen_agent_version(g, &a[k], k, v, name);
			if (obj == NULL || json_array_append_new(out, obj))
				return -1;
			a[k].obj[v - 1] = obj;
		}
	}
	return 0;
}

/* The history being built for one session. */
struct fs_ev {
	struct fs_gen *g;
	json_t *events;
	int64_t t; /* the clock, µs */
	const char *model;
	json_int_t in, out, cread, ccreate; /* usage sums (Claude's Session.usage) */
	int64_t active, run_from;           /* running time; run_from < 0: not running */
	bool queue_tail;                    /* a running session ends with a queued message */
};

static bool fs_sb(const struct fs_ev *e)
{
	return fs_gen_sb(e->g);
}

static void fs_tick(struct fs_ev *e, unsigned lo_ms, unsigned span_ms)
{
	e->t += ((int64_t)lo_ms + fk_rng_below(&e->g->rng, span_ms)) * 1000;
}

static void fs_new_id(struct fs_ev *e, char *out)
{
	if (fs_sb(e))
		fs_ulid(&e->g->rng, "sevt_", e->t, out, FS_ID_LEN);
	else
		fs_antid(&e->g->rng, "sevt_", out, FS_ID_LEN);
}

static void fs_run_stop(struct fs_ev *e)
{
	if (e->run_from >= 0)
		e->active += e->t - e->run_from;
	e->run_from = -1;
}

/* Appends a SandBase event in its flat envelope; content, data and stop are stolen (NULL:
 * null content / no data key / null stop_reason); dur < 0 is null. SandBase stamps whole
 * seconds, so neighbours often tie. Returns the event (borrowed) or NULL. */
static json_t *fs_sb_push(struct fs_ev *e, const char *type, json_t *content, json_t *data,
                          json_t *stop, const char *model, json_int_t tin, json_int_t tout,
                          json_int_t dur, bool queued)
{
	char id[FS_ID_LEN], ts[40];
	json_t *ev;

	fs_new_id(e, id);
	fs_fmt_time(ts, sizeof(ts), e->t, 0);
	ev = json_pack("{s:s, s:s, s:o?, s:o*, s:o?, s:s?, s:I, s:I, s:o, s:s?, s:s}", "id", id,
	               "type", type, "content", content, "data", data, "stop_reason", stop,
	               "model_used", model, "tokens_in", tin, "tokens_out", tout, "duration_ms",
	               dur >= 0 ? json_integer(dur) : json_null(), "processed_at",
	               queued ? NULL : ts, "created_at", ts);
	if (json_array_append_new(e->events, ev))
		return NULL;
	return ev;
}

/* A new Claude event {id, type}; the id is copied to id_out when not NULL. */
static json_t *fs_cl_ev(struct fs_ev *e, const char *type, char *id_out)
{
	char id[FS_ID_LEN];

	fs_new_id(e, id);
	if (id_out != NULL)
		memcpy(id_out, id, FS_ID_LEN);
	return json_pack("{s:s, s:s}", "id", id, "type", type);
}

/* Appends a Claude event (stolen) with processed_at last (null while queued). */
static int fs_cl_push(struct fs_ev *e, json_t *ev, bool queued)
{
	char ts[40];

	if (ev == NULL)
		return -1;
	fs_fmt_time(ts, sizeof(ts), e->t, 6);
	if (json_object_set_new(ev, "processed_at", queued ? json_null() : json_string(ts))) {
		json_decref(ev);
		return -1;
	}
	return json_array_append_new(e->events, ev);
}

/* 0 when a builder returned something, -1 when it failed. */
static int fs_rc(const void *p)
{
	return p != NULL ? 0 : -1;
}

static json_t *fs_text_blocks(const char *text)
{
	return json_pack("[{s:s, s:s}]", "type", "text", "text", text);
}

static int fs_emit_user(struct fs_ev *e, const char *text, bool queued)
{
	json_t *ev;

	if (fs_sb(e))
		return fs_rc(fs_sb_push(e, "user.message", fs_text_blocks(text), NULL, NULL, NULL,
		                        0, 0, -1, queued));
	ev = fs_cl_ev(e, "user.message", NULL);
	if (ev != NULL && json_object_set_new(ev, "content", fs_text_blocks(text))) {
		json_decref(ev);
		return -1;
	}
	return fs_cl_push(e, ev, queued);
}

/* A status event without payload (running, rescheduled, terminated) or user.interrupt. */
static int fs_emit_bare(struct fs_ev *e, const char *type)
{
	if (strcmp(type, "session.status_running") == 0 && e->run_from < 0)
		e->run_from = e->t;
	if (fs_sb(e))
		return fs_rc(fs_sb_push(e, type, NULL, NULL, NULL, NULL, 0, 0, -1, false));
	return fs_cl_push(e, fs_cl_ev(e, type, NULL), false);
}

enum fs_tool { FS_TOOL_NONE, FS_TOOL_BUILTIN, FS_TOOL_MCP, FS_TOOL_CUSTOM, FS_TOOL_ASK };

/* One model request and what it produced. */
struct fs_call {
	const char *text; /* agent.message text, or NULL */
	enum fs_tool tool;
	const char *name;   /* the tool */
	const char *input;  /* JSON object text */
	char id[FS_ID_LEN]; /* out: the tool-use event's id */
};

/* The tool-use event of a call. SandBase nests {name, input} in content; Claude has them at
 * the top level plus the permission verdict. */
static int fs_emit_tool_use(struct fs_ev *e, struct fs_call *c, json_int_t tin, json_int_t tout,
                            json_int_t dur)
{
	const char *type = c->tool == FS_TOOL_MCP      ? "agent.mcp_tool_use"
	                   : c->tool == FS_TOOL_CUSTOM ? "agent.custom_tool_use"
	                                               : "agent.tool_use";
	json_t *input = json_loads(c->input, 0, NULL), *ev, *content;

	if (input == NULL)
		return -1;
	if (fs_sb(e)) {
		content = json_pack("{s:s, s:o}", "name", c->name, "input", input);
		if (content != NULL && c->tool == FS_TOOL_MCP)
			json_object_set_new(content, "mcp_server_name", json_string("crm"));
		ev = fs_sb_push(e, type, content, NULL, NULL, e->model, tin, tout, dur, false);
		if (ev == NULL)
			return -1;
		snprintf(c->id, sizeof(c->id), "%s", fk_get_str(ev, "id"));
		return 0;
	}
	ev = fs_cl_ev(e, type, c->id);
	if (ev == NULL || json_object_set_new(ev, "name", json_string(c->name)) ||
	    json_object_set_new(ev, "input", input)) {
		json_decref(ev);
		return -1;
	}
	if (c->tool == FS_TOOL_MCP)
		json_object_set_new(ev, "mcp_server_name", json_string("crm"));
	if (c->tool == FS_TOOL_ASK) {
		json_object_set_new(ev, "evaluated_permission", json_string("ask"));
		json_object_set_new(ev, "evaluation", json_pack("{s:s}", "type", "always_ask"));
	} else if (c->tool != FS_TOOL_CUSTOM && fk_rng_below(&e->g->rng, 5) != 0) {
		json_object_set_new(ev, "evaluated_permission", json_string("allow"));
		if (fk_rng_below(&e->g->rng, 2) == 0)
			json_object_set_new(ev, "evaluation",
			                    json_pack("{s:s}", "type", "always_allow"));
	}
	return fs_cl_push(e, ev, false);
}

/* One model request: SandBase puts its tokens and duration on the first event it produced;
 * Claude wraps the outputs in span.model_request_start/end (sometimes with agent.thinking). */
static int fs_emit_call(struct fs_ev *e, struct fs_call *c)
{
	struct fk_rng *r = &e->g->rng;
	json_int_t in = 800 + fk_rng_below(r, 12000), out = 40 + fk_rng_below(r, 900);
	json_int_t cread = fk_rng_below(r, (uint32_t)in / 2);
	json_int_t ccreate = fk_rng_below(r, 3) == 0 ? fk_rng_below(r, 1500) : 0;
	json_int_t dur = 400 + fk_rng_below(r, 7000);
	char start[FS_ID_LEN];
	json_t *ev;

	if (!fs_sb(e)) {
		if (fs_cl_push(e, fs_cl_ev(e, "span.model_request_start", start), false))
			return -1;
		if (fk_rng_below(r, 5) == 0) {
			fs_tick(e, 300, 1500);
			if (fs_cl_push(e, fs_cl_ev(e, "agent.thinking", NULL), false))
				return -1;
		}
	}
	e->t += dur * 1000;
	if (c->text != NULL) {
		if (fs_sb(e)) {
			if (fs_sb_push(e, "agent.message", fs_text_blocks(c->text), NULL, NULL,
			               e->model, in, out, dur, false) == NULL)
				return -1;
			in = out = 0;
			dur = -1;
		} else {
			ev = fs_cl_ev(e, "agent.message", NULL);
			if (ev != NULL &&
			    json_object_set_new(ev, "content", fs_text_blocks(c->text))) {
				json_decref(ev);
				return -1;
			}
			if (fs_cl_push(e, ev, false))
				return -1;
		}
	}
	if (c->tool != FS_TOOL_NONE && fs_emit_tool_use(e, c, in, out, dur))
		return -1;
	if (fs_sb(e))
		return 0;
	fs_tick(e, 20, 300);
	e->in += in;
	e->out += out;
	e->cread += cread;
	e->ccreate += ccreate;
	ev = fs_cl_ev(e, "span.model_request_end", NULL);
	if (ev == NULL || json_object_set_new(ev, "model_request_start_id", json_string(start)) ||
	    json_object_set_new(ev, "is_error", json_false()) ||
	    json_object_set_new(ev, "model_usage",
	                        json_pack("{s:I, s:I, s:I, s:I}", "input_tokens", in,
	                                  "output_tokens", out, "cache_creation_input_tokens",
	                                  ccreate, "cache_read_input_tokens", cread))) {
		json_decref(ev);
		return -1;
	}
	return fs_cl_push(e, ev, false);
}

/* The result of c's tool. SandBase: agent.tool_result for built-in and MCP tools alike, with
 * tool_use_id (and is_error) at the top level on only some of them. */
static int fs_emit_result(struct fs_ev *e, const struct fs_call *c, const char *text, bool is_error)
{
	json_t *ev;
	bool mcp = c->tool == FS_TOOL_MCP;

	fs_tick(e, 300, 15000);
	if (fs_sb(e)) {
		ev = fs_sb_push(e, "agent.tool_result", fs_text_blocks(text), NULL, NULL, NULL, 0,
		                0, -1, false);
		if (ev == NULL)
			return -1;
		if (fk_rng_below(&e->g->rng, 5) < 3) {
			json_object_set_new(ev, "tool_use_id", json_string(c->id));
			if (is_error)
				json_object_set_new(ev, "is_error", json_true());
		}
		return 0;
	}
	ev = fs_cl_ev(e, mcp ? "agent.mcp_tool_result" : "agent.tool_result", NULL);
	if (ev == NULL ||
	    json_object_set_new(ev, mcp ? "mcp_tool_use_id" : "tool_use_id", json_string(c->id)) ||
	    json_object_set_new(ev, "content", fs_text_blocks(text)) ||
	    json_object_set_new(ev, "is_error", json_boolean(is_error))) {
		json_decref(ev);
		return -1;
	}
	return fs_cl_push(e, ev, false);
}

enum fs_stop { FS_STOP_END, FS_STOP_ACTION, FS_STOP_INTERRUPT, FS_STOP_EXHAUSTED };

/* session.status_idle. SandBase: user_interrupt is its own reason and requires_action comes
 * without event_ids now and then. Claude: interrupts end with end_turn, and a few idles have
 * no stop_details key. */
static int fs_emit_idle(struct fs_ev *e, enum fs_stop stop, const char *action_id)
{
	struct fk_rng *r = &e->g->rng;
	json_t *reason, *ev;

	fs_tick(e, 20, 500);
	fs_run_stop(e);
	if (stop == FS_STOP_ACTION) {
		reason = json_pack("{s:s}", "type", "requires_action");
		if (reason != NULL && (!fs_sb(e) || fk_rng_below(r, 3) != 0))
			json_object_set_new(reason, "event_ids", json_pack("[s]", action_id));
	} else if (stop == FS_STOP_INTERRUPT && fs_sb(e)) {
		reason = json_pack("{s:s}", "type", "user_interrupt");
	} else if (stop == FS_STOP_EXHAUSTED && !fs_sb(e)) {
		reason = json_pack("{s:s}", "type", "retries_exhausted");
	} else {
		reason = json_pack("{s:s}", "type", "end_turn");
	}
	if (fs_sb(e))
		return fs_rc(fs_sb_push(e, "session.status_idle", NULL, NULL, reason, NULL, 0, 0,
		                        -1, false));
	ev = fs_cl_ev(e, "session.status_idle", NULL);
	if (ev == NULL || json_object_set_new(ev, "stop_reason", reason)) {
		json_decref(ev);
		return -1;
	}
	if (fk_rng_below(r, 8) != 0)
		json_object_set_new(ev, "stop_details", json_null());
	return fs_cl_push(e, ev, false);
}

enum fs_retry { FS_RETRY_RETRYING, FS_RETRY_EXHAUSTED, FS_RETRY_TERMINAL };

/* session.error. SandBase keeps the payload under "data" (its envelope's slot for payloads
 * that are not content) with its own error codes. */
static int fs_emit_error(struct fs_ev *e, enum fs_retry rs)
{
	static const char *const retry[] = {"retrying", "exhausted", "terminal"};
	const char *msg = rs == FS_RETRY_TERMINAL
	                      ? "The agent run failed and cannot continue."
	                      : "The model is overloaded; the request was retried without success.";
	json_t *ev;

	fs_tick(e, 500, 3000);
	if (fs_sb(e))
		return fs_rc(fs_sb_push(
		    e, "session.error", NULL,
		    json_pack("{s:{s:s, s:s}}", "error", "type",
		              rs == FS_RETRY_TERMINAL ? "run_failed" : "model_overloaded",
		              "message", msg),
		    NULL, NULL, 0, 0, -1, false));
	ev = fs_cl_ev(e, "session.error", NULL);
	if (ev == NULL ||
	    json_object_set_new(
	        ev, "error",
	        json_pack("{s:s, s:s, s:{s:s}}", "type",
	                  rs == FS_RETRY_TERMINAL ? "unknown_error" : "model_overloaded_error",
	                  "message", msg, "retry_status", "type", retry[rs]))) {
		json_decref(ev);
		return -1;
	}
	return fs_cl_push(e, ev, false);
}

/* Claude's answers to a parked call: a tool confirmation or a custom tool result. */
static int fs_emit_resolution(struct fs_ev *e, const struct fs_call *c)
{
	json_t *ev;

	fs_tick(e, 5000, 600000);
	if (c->tool == FS_TOOL_ASK) {
		ev = fs_cl_ev(e, "user.tool_confirmation", NULL);
		if (ev == NULL || json_object_set_new(ev, "tool_use_id", json_string(c->id)) ||
		    json_object_set_new(ev, "result", json_string("allow"))) {
			json_decref(ev);
			return -1;
		}
	} else {
		ev = fs_cl_ev(e, "user.custom_tool_result", NULL);
		if (ev == NULL ||
		    json_object_set_new(ev, "custom_tool_use_id", json_string(c->id)) ||
		    json_object_set_new(ev, "content",
		                        fs_text_blocks("Ticket HELP-2211 created.")) ||
		    json_object_set_new(ev, "is_error", json_false())) {
			json_decref(ev);
			return -1;
		}
	}
	return fs_cl_push(e, ev, false);
}

/* SandBase-only events between turns: a privileged system message or the answer to one of
 * its interrupts. */
static int fs_emit_sb_extra(struct fs_ev *e)
{
	uint32_t pick = fk_rng_below(&e->g->rng, 100);
	char iid[FS_ID_LEN];

	if (pick >= 16)
		return 0;
	fs_tick(e, 1000, 30000);
	if (pick < 9)
		return fs_rc(
		    fs_sb_push(e, "system.message",
		               fs_text_blocks("Policy update: never share order addresses."), NULL,
		               NULL, NULL, 0, 0, -1, false));
	fs_ulid(&e->g->rng, "intr_", e->t, iid, sizeof(iid));
	return fs_rc(fs_sb_push(
	    e, "interrupt.response", NULL,
	    json_pack("{s:s, s:{s:s}}", "interrupt_id", iid, "response", "choice", "continue"),
	    NULL, NULL, 0, 0, -1, false));
}

enum fs_turn { FS_T_PLAIN, FS_T_TOOL, FS_T_MCP, FS_T_INTERRUPT, FS_T_ERROR, FS_T_CUSTOM, FS_T_ASK };

static enum fs_turn fs_pick_turn(struct fk_rng *r)
{
	uint32_t p = fk_rng_below(r, 100);

	return p < 20   ? FS_T_PLAIN
	       : p < 50 ? FS_T_TOOL
	       : p < 64 ? FS_T_MCP
	       : p < 72 ? FS_T_INTERRUPT
	       : p < 78 ? FS_T_ERROR
	       : p < 89 ? FS_T_CUSTOM
	                : FS_T_ASK;
}

/* One user turn. The session's last turn is shaped by the session's status: running stops
 * mid-turn (maybe with a queued user message), rescheduling and terminated end in an error. */
static int fs_emit_turn(struct fs_ev *e, const struct fs_topic *tp, enum fs_turn kind,
                        const char *status, bool last, const char *prompt)
{
	struct fk_rng *r = &e->g->rng;
	struct fs_call c = {.text = tp->intro, .name = tp->tool, .input = tp->input};
	struct fs_call c2 = {.text = tp->answer};

	if (fs_emit_user(e, prompt, false))
		return -1;
	fs_tick(e, 100, 2000);
	if (fs_emit_bare(e, "session.status_running"))
		return -1;
	if (last && strcmp(status, "running") == 0) {
		c.tool = FS_TOOL_BUILTIN;
		if (fs_emit_call(e, &c) ||
		    (fk_rng_below(r, 2) == 0 && fs_emit_result(e, &c, tp->output, false)))
			return -1;
		if (e->queue_tail || fk_rng_below(r, 3) == 0) {
			fs_tick(e, 1000, 20000);
			return fs_emit_user(
			    e, fs_followups[fk_rng_below(r, FK_COUNT(fs_followups))], true);
		}
		return 0;
	}
	if (last && (strcmp(status, "rescheduling") == 0 || strcmp(status, "terminated") == 0)) {
		bool term = status[0] == 't';

		if (fs_emit_call(e, &c) ||
		    fs_emit_error(e, term ? FS_RETRY_TERMINAL : FS_RETRY_RETRYING))
			return -1;
		if (term)
			fs_run_stop(e);
		if (fs_sb(e)) /* SandBase emits neither status event */
			return 0;
		fs_tick(e, 10, 200);
		return fs_emit_bare(e, term ? "session.status_terminated"
		                            : "session.status_rescheduled");
	}
	if (fs_sb(e) && kind == FS_T_ASK) /* no tool confirmations on SandBase */
		kind = FS_T_TOOL;
	switch (kind) {
	case FS_T_PLAIN:
		c2.tool = FS_TOOL_NONE;
		return fs_emit_call(e, &c2) || fs_emit_idle(e, FS_STOP_END, NULL) ? -1 : 0;
	case FS_T_TOOL:
	case FS_T_MCP:
		c.tool = kind == FS_T_MCP ? FS_TOOL_MCP : FS_TOOL_BUILTIN;
		if (kind == FS_T_MCP) {
			c.text = "Let me look the customer up in the CRM first.";
			c.name = "lookup_customer";
			c.input = "{\"email\":\"dana@example.com\"}";
		}
		if (fk_rng_below(r, 4) == 0)
			c.text = NULL; /* straight to the tool */
		if (fs_emit_call(e, &c) ||
		    fs_emit_result(e, &c,
		                   kind == FS_T_MCP ? "{\"customer\":\"Dana\",\"tier\":\"gold\"}"
		                                    : tp->output,
		                   fk_rng_below(r, 12) == 0))
			return -1;
		return fs_emit_call(e, &c2) || fs_emit_idle(e, FS_STOP_END, NULL) ? -1 : 0;
	case FS_T_INTERRUPT:
		c.tool = FS_TOOL_BUILTIN;
		if (fs_emit_call(e, &c))
			return -1;
		fs_tick(e, 500, 5000);
		if (fs_emit_bare(e, "user.interrupt"))
			return -1;
		return fs_emit_idle(e, FS_STOP_INTERRUPT, NULL);
	case FS_T_ERROR:
		if (fs_emit_call(e, &c) || fs_emit_error(e, FS_RETRY_EXHAUSTED))
			return -1;
		return fs_emit_idle(e, FS_STOP_EXHAUSTED, NULL);
	case FS_T_CUSTOM:
	case FS_T_ASK:
		c.tool = kind == FS_T_CUSTOM ? FS_TOOL_CUSTOM : FS_TOOL_ASK;
		if (kind == FS_T_CUSTOM) {
			c.text = "I'll open a follow-up ticket for this.";
			c.name = "create_ticket";
			c.input =
			    "{\"title\":\"Follow up with the customer\",\"priority\":\"high\"}";
		}
		if (fs_emit_call(e, &c) || fs_emit_idle(e, FS_STOP_ACTION, c.id))
			return -1;
		/* SandBase cannot take the answer: its next turn is a new user message. */
		if (last || fs_sb(e))
			return 0;
		if (fs_emit_resolution(e, &c) || fs_emit_bare(e, "session.status_running"))
			return -1;
		if (kind == FS_T_ASK && fs_emit_result(e, &c, tp->output, false))
			return -1;
		return fs_emit_call(e, &c2) || fs_emit_idle(e, FS_STOP_END, NULL) ? -1 : 0;
	}
	return -1;
}

/* What a generated session looks like before it is rendered. */
struct fs_spec {
	int64_t created;
	int prec; /* timestamp precision of the session's created_at/updated_at */
	const struct fs_gagent *agent;
	unsigned ver; /* 1-based */
	const char *status;
	const char *title;
	bool archived, embed, no_version, empty, no_title, queue_tail;
	unsigned quirk; /* Claude: which block to leave out (0 = none) */
};

enum {
	FS_Q_NONE,
	FS_Q_NO_OUTCOMES,
	FS_Q_USAGE_NULL,
	FS_Q_NO_STATS,
	FS_Q_NO_BUDGET_VAULTS,
	FS_Q_THIN,
	FS_Q_COUNT
};

/* SandBase's embedded snapshot: a fixed subset of the Agent. New reference. */
static json_t *fs_sb_snapshot(const json_t *agent)
{
	static const char *const keys[] = {"id",     "type",   "name",  "description",
	                                   "model",  "system", "tools", "mcp_servers",
	                                   "skills", "version"};
	json_t *s = json_object();

	for (size_t i = 0; s != NULL && i < FK_COUNT(keys); i++) {
		json_t *v = json_object_get(agent, keys[i]);

		if (v == NULL && i >= 6 && i <= 8)
			v = json_array();
		else if (v != NULL)
			json_incref(v);
		if (v != NULL && json_object_set_new(s, keys[i], v)) {
			json_decref(s);
			return NULL;
		}
	}
	return s;
}

static json_t *fs_gen_metadata(struct fk_rng *r)
{
	if (fk_rng_below(r, 4) != 0)
		return json_object();
	return json_pack("{s:s, s:s}", "team", fk_rng_below(r, 2) ? "growth" : "platform", "ticket",
	                 fk_rng_below(r, 2) ? "SUP-1234" : "OPS-77");
}

/* A SandBase session object. New reference. */
static json_t *fs_sb_session(struct fs_gen *g, const struct fs_spec *sp, const char *id,
                             int64_t updated)
{
	static const char *const sources[] = {"direct",   "direct",   "direct",
	                                      "direct",   "direct",   "direct",
	                                      "endpoint", "endpoint", "deployment"};
	char c[40], u[40], a[40];
	const struct fs_gagent *ag = sp->agent;
	json_t *env = json_string(ag->env);

	fs_fmt_time(c, sizeof(c), sp->created, sp->prec);
	fs_fmt_time(u, sizeof(u), updated, sp->prec);
	fs_fmt_time(a, sizeof(a), updated + INT64_C(86400000000), 0);
	/* Now and then an environment override instead of the agent's own. */
	if (fk_rng_below(&g->rng, 10) == 0) {
		char other[FS_ID_LEN];

		fs_ulid(&g->rng, "env_", sp->created, other, sizeof(other));
		json_decref(env);
		env = json_string(other);
	}
	return json_pack("{s:s, s:s, s:s, s:s*, s:s, s:o, s:s, s:o*, s:o, s:s, s:n, s:o, s:o, s:s,"
	                 " s:s}",
	                 "id", id, "type", "session", "status", sp->status, "title",
	                 sp->no_title ? NULL : sp->title, "agent_id", ag->id, "agent_version",
	                 sp->no_version ? json_null() : json_integer(ag->ver[sp->ver - 1]),
	                 "agent_version_id", ag->ver_id[sp->ver - 1], "agent",
	                 sp->embed ? fs_sb_snapshot(ag->obj[sp->ver - 1]) : NULL, "environment_id",
	                 env, "source", sources[fk_rng_below(&g->rng, FK_COUNT(sources))], "usage",
	                 "metadata", fs_gen_metadata(&g->rng), "archived_at",
	                 sp->archived ? json_string(a) : json_null(), "created_at", c, "updated_at",
	                 u);
}

/* Claude's resources[]: mostly none, sometimes a file, a repository or a memory store. */
static json_t *fs_cl_resources(struct fs_gen *g, const char *created)
{
	uint32_t p = fk_rng_below(&g->rng, 10);
	char id[FS_ID_LEN], other[FS_ID_LEN];

	fs_antid(&g->rng, "sesrsc_", id, sizeof(id));
	fs_antid(&g->rng, p == 2 ? "memstore_" : "file_", other, sizeof(other));
	if (p == 0)
		return json_pack("[{s:s, s:s, s:s, s:s, s:s, s:s}]", "id", id, "type", "file",
		                 "file_id", other, "mount_path", "/uploads/report.pdf",
		                 "created_at", created, "updated_at", created);
	if (p == 1)
		return json_pack("[{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}}]", "id", id, "type",
		                 "github_repository", "url", "https://github.com/example-org/shop",
		                 "mount_path", "/workspace/shop", "created_at", created,
		                 "updated_at", created, "checkout", "type", "branch", "name",
		                 "main");
	if (p == 2)
		return json_pack("[{s:s, s:s, s:s, s:s}]", "type", "memory_store",
		                 "memory_store_id", other, "access", "read_write", "name",
		                 "team-notes");
	return json_array();
}

/* A Claude Session. e holds the usage sums and running time of its history. New reference. */
static json_t *fs_cl_session(struct fs_gen *g, const struct fs_spec *sp, const char *id,
                             int64_t updated, const struct fs_ev *e)
{
	struct fk_rng *r = &g->rng;
	char c[40], u[40], a[40], dep[FS_ID_LEN], vlt[FS_ID_LEN];
	json_t *s = json_object(), *agent = json_copy(sp->agent->obj[sp->ver - 1]);
	uint32_t dp = fk_rng_below(r, 10);
	bool ok;

	fs_fmt_time(c, sizeof(c), sp->created, sp->prec);
	fs_fmt_time(u, sizeof(u), updated, sp->prec);
	fs_fmt_time(a, sizeof(a), updated + INT64_C(86400000000), 6);
	fs_antid(r, "depl_", dep, sizeof(dep));
	fs_antid(r, "vlt_", vlt, sizeof(vlt));
	if (s == NULL || agent == NULL)
		goto fail;
	if (sp->quirk == FS_Q_THIN) {
		json_object_del(agent, "execution_identity");
		json_object_del(agent, "multiagent");
	}
	ok = !json_object_set_new(s, "id", json_string(id)) &&
	     !json_object_set_new(s, "type", json_string("session")) &&
	     !json_object_set_new(s, "agent", agent) &&
	     !json_object_set_new(s, "archived_at", sp->archived ? json_string(a) : json_null());
	agent = NULL;
	if (ok && sp->quirk != FS_Q_NO_BUDGET_VAULTS)
		ok = !json_object_set_new(s, "budget",
		                          fk_rng_below(r, 10) == 0
		                              ? json_pack("{s:s, s:{s:s, s:s}}", "type", "limit",
		                                          "max_list_cost", "amount", "2500",
		                                          "currency", "USD")
		                              : json_null());
	ok = ok && !json_object_set_new(s, "created_at", json_string(c)) &&
	     !json_object_set_new(s, "environment_id", json_string(sp->agent->env)) &&
	     !json_object_set_new(s, "metadata", fs_gen_metadata(r));
	if (ok && sp->quirk != FS_Q_NO_OUTCOMES)
		ok = !json_object_set_new(
		    s, "outcome_evaluations",
		    fk_rng_below(r, 12) == 0
		        ? json_pack(
		              "[{s:s, s:s, s:s, s:i, s:s, s:s, s:s}]", "type", "outcome_evaluation",
		              "outcome_id", "outc_011CZkZRSw2kEfs6ncTVljxP", "description",
		              "Answer with a tracking link", "iteration", 0, "result", "satisfied",
		              "explanation", "The link is present.", "completed_at", u)
		        : json_array());
	if (ok && sp->quirk != FS_Q_THIN)
		ok = !json_object_set_new(s, "resources", fs_cl_resources(g, c));
	if (ok && sp->quirk != FS_Q_NO_STATS)
		ok = !json_object_set_new(
		    s, "stats",
		    json_pack("{s:f, s:f}", "active_seconds", (double)(e->active / 100000) / 10.0,
		              "duration_seconds",
		              (double)((updated - sp->created) / 100000) / 10.0));
	ok =
	    ok && !json_object_set_new(s, "status", json_string(sp->status)) &&
	    !json_object_set_new(s, "title", sp->no_title ? json_null() : json_string(sp->title)) &&
	    !json_object_set_new(s, "updated_at", json_string(u)) &&
	    !json_object_set_new(s, "usage",
	                         sp->quirk == FS_Q_USAGE_NULL
	                             ? json_null()
	                             : json_pack("{s:I, s:I, s:I, s:{s:i, s:I}}", "input_tokens",
	                                         e->in, "output_tokens", e->out,
	                                         "cache_read_input_tokens", e->cread,
	                                         "cache_creation", "ephemeral_1h_input_tokens", 0,
	                                         "ephemeral_5m_input_tokens", e->ccreate));
	if (ok && sp->quirk != FS_Q_NO_BUDGET_VAULTS)
		ok = !json_object_set_new(
		    s, "vault_ids", fk_rng_below(r, 8) == 0 ? json_pack("[s]", vlt) : json_array());
	/* deployment_id is optional: mostly absent, sometimes null, sometimes set. */
	if (ok && dp < 2)
		ok = !json_object_set_new(s, "deployment_id",
		                          dp == 0 ? json_string(dep) : json_null());
	if (!ok)
		goto fail;
	return s;
fail:
	json_decref(agent);
	json_decref(s);
	return NULL;
}

/* One {"session", "events"} entry. Returns a new reference. */
static json_t *fs_gen_session(struct fs_gen *g, const struct fs_spec *sp)
{
	struct fs_ev e = {.g = g,
	                  .events = json_array(),
	                  .model = sp->agent->model,
	                  .run_from = -1,
	                  .queue_tail = sp->queue_tail,
	                  .t =
	                      sp->created + (2000 + (int64_t)fk_rng_below(&g->rng, 120000)) * 1000};
	unsigned nturns = sp->empty ? 0 : 1 + fk_rng_below(&g->rng, 4);
	int64_t updated = sp->created;
	char id[FS_ID_LEN];
	json_t *s;

	if (e.events == NULL)
		return NULL;
	if (fs_gen_sb(g))
		fs_ulid(&g->rng, "sess_", sp->created, id, sizeof(id));
	else
		fs_antid(&g->rng, "sesn_", id, sizeof(id));
	for (unsigned k = 0; k < nturns; k++) {
		bool last = k + 1 == nturns;
		const struct fs_topic *tp = &fs_topics[fk_rng_below(&g->rng, FK_COUNT(fs_topics))];
		/* Most turns ask something new; some follow up on the last answer. */
		const char *prompt =
		    k > 0 && fk_rng_below(&g->rng, 4) == 0
		        ? fs_followups[fk_rng_below(&g->rng, FK_COUNT(fs_followups))]
		        : tp->prompt;

		if (k > 0)
			e.t += (30 + (int64_t)fk_rng_below(&g->rng, 3 * 3600)) * 1000000;
		if (fs_emit_turn(&e, tp, fs_pick_turn(&g->rng), sp->status, last, prompt))
			goto fail;
		if (!last && fs_gen_sb(g) && fs_emit_sb_extra(&e))
			goto fail;
	}
	if (nturns > 0)
		updated = e.t;
	if (fs_gen_sb(g))
		s = fs_sb_session(g, sp, id, updated);
	else
		s = fs_cl_session(g, sp, id, updated, &e);
	if (s == NULL)
		goto fail;
	return json_pack("{s:o, s:o}", "session", s, "events", e.events);
fail:
	json_decref(e.events);
	return NULL;
}

/* Builds the generated dataset in the given dialect: n sessions over nagents agents, created
 * through 2026 in groups that share created_at exactly. Returns a new reference or NULL. */
static json_t *fs_generate(enum fs_dialect d, uint64_t seed, unsigned n, unsigned nagents)
{
	struct fs_gen g = {.rng = {seed}, .dialect = d};
	const int64_t end = fs_epoch_us(2026, 12, 20);
	int64_t t = fs_epoch_us(2026, 1, 5) + INT64_C(9) * 3600 * 1000000;
	struct fs_gagent *agents = calloc(nagents, sizeof(*agents));
	json_t *root = json_pack("{s:[], s:[]}", "agents", "sessions"), *sessions;
	unsigned left = 0;
	int64_t frac = 0;

	if (agents == NULL || root == NULL)
		goto fail;
	sessions = json_object_get(root, "sessions");
	if (fs_gen_agents(&g, agents, nagents, json_object_get(root, "agents")))
		goto fail;
	for (unsigned i = 0; i < n; i++) {
		struct fs_spec sp = {0};
		uint32_t p = fk_rng_below(&g.rng, 100);
		char title[48];
		const struct fs_gagent *ag = &agents[fk_rng_below(&g.rng, nagents)];

		/* 3-7 consecutive sessions share created_at exactly (across agents too). */
		if (left == 0) {
			int64_t step = (end - t) / ((int64_t)(n - i) / 5 + 1) / 1000000;

			if (i > 0 && step > 1)
				t += (step / 2 + fk_rng_below(&g.rng, (uint32_t)(step / 2))) *
				     1000000;
			left = 3 + fk_rng_below(&g.rng, 5);
			frac = (int64_t)fk_rng_below(&g.rng, 1000000);
		}
		left--;
		snprintf(title, sizeof(title), "Session %04u", i + 1);
		sp.title = title;
		sp.agent = ag;
		sp.ver = 1 + fk_rng_below(&g.rng, ag->nver);
		/* SandBase: whole seconds, one group in eight with milliseconds. */
		sp.prec = d == FS_D_CLAUDE ? 6 : frac % 8 == 0 ? 3 : 0;
		sp.created = t + (sp.prec == 0 ? 0 : frac);
		sp.status = p < 60   ? "idle"
		            : p < 75 ? "running"
		            : p < 83 ? "rescheduling"
		                     : "terminated";
		sp.archived =
		    (sp.status[0] == 'i' || sp.status[0] == 't') && fk_rng_below(&g.rng, 7) == 0;
		sp.embed = fk_rng_below(&g.rng, 2) == 0;
		sp.no_version = !sp.embed && fk_rng_below(&g.rng, 30) == 0;
		sp.empty = sp.status[0] == 'i' && fk_rng_below(&g.rng, 40) == 0;
		sp.no_title = fk_rng_below(&g.rng, 20) == 0;
		sp.quirk =
		    fk_rng_below(&g.rng, 100) < 24 ? 1 + fk_rng_below(&g.rng, FS_Q_COUNT - 1) : 0;
		/* Every interesting case exists even for small N. */
		if (i < 8 && n >= 8) {
			static const char *const st[] = {"idle",       "running",   "rescheduling",
			                                 "terminated", "idle",      "idle",
			                                 "idle",       "terminated"};

			sp.status = st[i];
			sp.embed = i % 2 == 0;
			sp.archived = i == 4 || i == 7;
			sp.no_version = i == 5;
			sp.empty = i == 6;
			sp.no_title = false;
			sp.queue_tail = i == 1;
			sp.quirk = i >= 1 && i < FS_Q_COUNT ? i : 0;
		}
		if (json_array_append_new(sessions, fs_gen_session(&g, &sp)))
			goto fail;
	}
	if (d == FS_D_CLAUDE) /* the snapshots live in the sessions */
		json_array_clear(json_object_get(root, "agents"));
	free(agents);
	return root;
fail:
	free(agents);
	json_decref(root);
	return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* The store: the dataset, its indexes and the pre-serialised sessions                          */
/* ------------------------------------------------------------------------------------------ */

struct fs_session {
	const char *id;         /* borrowed from the dataset */
	const char *created_at; /* as served, borrowed */
	int64_t created;        /* µs */
	const char *agent_id;   /* SandBase agent_id / Claude agent.id; NULL when absent */
	bool has_version;
	json_int_t version; /* SandBase agent_version / Claude agent.version */
	const char *status;
	bool archived;
	const char *deployment; /* Claude deployment_id, or NULL */
	json_t *resources;      /* Claude resources, borrowed */
	json_t *events;         /* borrowed */
	int64_t *ev_time;       /* Claude: processed_at per event, INT64_MIN when null */
	char *text;             /* the session, serialised */
	size_t len;
};

struct fs_store {
	json_t *doc;             /* the whole loaded document */
	json_t *byid;            /* {session id: index into sess} */
	json_t *agents;          /* {agent id: [Agent...] in version order} (SandBase) */
	struct fs_session *sess; /* newest first: created_at desc, id desc */
	size_t nsess;
	enum fs_dialect dialect;
};

/* Newest first; ties on created_at by id, descending. */
static int fs_sess_cmp(const void *a, const void *b)
{
	const struct fs_session *x = a, *y = b;

	if (x->created != y->created)
		return x->created > y->created ? -1 : 1;
	return -strcmp(x->id, y->id);
}

static int fs_ver_cmp(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "version"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "version"));

	return x < y ? -1 : x > y;
}

static void fs_store_free(struct fs_store *st)
{
	for (size_t i = 0; i < st->nsess; i++) {
		free(st->sess[i].text);
		free(st->sess[i].ev_time);
	}
	free(st->sess);
	json_decref(st->agents);
	json_decref(st->byid);
	json_decref(st->doc);
	memset(st, 0, sizeof(*st));
}

/* Indexes SandBase's agents by id, versions ascending. */
static int fs_index_agents(struct fs_store *st, json_t *agents, char *err, size_t errlen)
{
	size_t i;
	void *it;

	if (agents != NULL && !json_is_array(agents)) {
		snprintf(err, errlen, "\"agents\" must be an array");
		return -1;
	}
	for (i = 0; i < json_array_size(agents); i++) {
		json_t *a = json_array_get(agents, i), *list;
		const char *id = fk_get_str(a, "id");

		if (id == NULL || !json_is_integer(json_object_get(a, "version"))) {
			snprintf(err, errlen,
			         "agents[%zu]: needs a string \"id\" and an integer"
			         " \"version\"",
			         i);
			return -1;
		}
		list = json_object_get(st->agents, id);
		if (list == NULL && json_object_set_new(st->agents, id, list = json_array()))
			return -1;
		for (size_t k = 0; k < json_array_size(list); k++)
			if (json_integer_value(
			        json_object_get(json_array_get(list, k), "version")) ==
			    json_integer_value(json_object_get(a, "version"))) {
				snprintf(err, errlen, "agents[%zu]: duplicate version of %s", i,
				         id);
				return -1;
			}
		if (json_array_append(list, a))
			return -1;
	}
	for (it = json_object_iter(st->agents); it != NULL;
	     it = json_object_iter_next(st->agents, it)) {
		json_t *list = json_object_iter_value(it);
		size_t n = json_array_size(list);
		json_t **v = calloc(n ? n : 1, sizeof(*v));

		if (v == NULL)
			return -1;
		for (i = 0; i < n; i++)
			v[i] = json_incref(json_array_get(list, i));
		qsort(v, n, sizeof(*v), fs_ver_cmp);
		json_array_clear(list);
		for (i = 0; i < n; i++)
			json_array_append_new(list, v[i]);
		free(v);
	}
	return 0;
}

/* Reads one {"session", "events"} entry into s. */
static int fs_index_session(struct fs_store *st, struct fs_session *s, json_t *entry, char *err,
                            size_t errlen)
{
	json_t *obj = json_object_get(entry, "session"), *events = json_object_get(entry, "events");
	json_t *agent = json_object_get(obj, "agent"), *ver, *archived;
	bool sb = st->dialect == FS_D_SANDBASE;
	size_t i;

	if (!json_is_object(obj) || fk_get_str(obj, "id") == NULL) {
		snprintf(err, errlen, "needs a \"session\" object with a string \"id\"");
		return -1;
	}
	s->id = fk_get_str(obj, "id");
	s->created_at = fk_get_str(obj, "created_at");
	if (fs_parse_time(s->created_at, &s->created)) {
		snprintf(err, errlen, "%s: bad or missing created_at (RFC 3339)", s->id);
		return -1;
	}
	if (events != NULL && !json_is_array(events)) {
		snprintf(err, errlen, "%s: \"events\" must be an array", s->id);
		return -1;
	}
	s->events = events != NULL ? events : json_array();
	if (events == NULL &&
	    (s->events == NULL || json_object_set_new(entry, "events", s->events)))
		return -1;
	for (i = 0; i < json_array_size(s->events); i++)
		if (fk_get_str(json_array_get(s->events, i), "id") == NULL) {
			snprintf(err, errlen, "%s: events[%zu] needs a string \"id\"", s->id, i);
			return -1;
		}
	s->status = fk_get_str(obj, "status");
	if (s->status == NULL)
		s->status = "";
	archived = json_object_get(obj, "archived_at");
	s->archived = archived != NULL && !json_is_null(archived);
	s->agent_id = sb ? fk_get_str(obj, "agent_id") : fk_get_str(agent, "id");
	ver = sb ? json_object_get(obj, "agent_version") : json_object_get(agent, "version");
	s->has_version = json_is_integer(ver);
	s->version = json_integer_value(ver);
	if (!sb) {
		s->deployment = fk_get_str(obj, "deployment_id");
		s->resources = json_object_get(obj, "resources");
		s->ev_time = calloc(json_array_size(s->events) + 1, sizeof(*s->ev_time));
		if (s->ev_time == NULL)
			return -1;
		for (i = 0; i < json_array_size(s->events); i++)
			if (fs_parse_time(fk_get_str(json_array_get(s->events, i), "processed_at"),
			                  &s->ev_time[i]))
				s->ev_time[i] = INT64_MIN;
	}
	s->text = json_dumps(obj, FS_DUMP_FLAGS);
	if (s->text == NULL)
		return -1;
	s->len = strlen(s->text);
	return 0;
}

/* Takes the loaded document (stolen), picks the served dialect's section, validates and
 * indexes it. On error fills err and returns -1; fs_store_free() is still needed. */
static int fs_store_build(struct fs_store *st, json_t *doc, enum fs_dialect d, char *err,
                          size_t errlen)
{
	json_t *root = doc, *sessions;
	size_t i, n;

	st->doc = doc;
	st->dialect = d;
	st->byid = json_object();
	st->agents = json_object();
	if (st->byid == NULL || st->agents == NULL)
		goto oom;
	if (json_is_object(json_object_get(doc, fs_dialect_names[d])))
		root = json_object_get(doc, fs_dialect_names[d]);
	sessions = json_object_get(root, "sessions");
	if (!json_is_object(root) || (sessions != NULL && !json_is_array(sessions))) {
		snprintf(err, errlen, "expected {\"agents\": [...], \"sessions\": [...]}");
		return -1;
	}
	if (d == FS_D_SANDBASE && fs_index_agents(st, json_object_get(root, "agents"), err, errlen))
		return -1;
	n = json_array_size(sessions);
	st->sess = calloc(n ? n : 1, sizeof(*st->sess));
	if (st->sess == NULL)
		goto oom;
	for (i = 0; i < n; i++) {
		char sub[256];

		st->nsess = i + 1;
		if (!json_is_object(json_array_get(sessions, i)) ||
		    fs_index_session(st, &st->sess[i], json_array_get(sessions, i), sub,
		                     sizeof(sub))) {
			snprintf(err, errlen, "sessions[%zu]: %s", i,
			         json_is_object(json_array_get(sessions, i)) ? sub
			                                                     : "not an object");
			return -1;
		}
	}
	qsort(st->sess, st->nsess, sizeof(*st->sess), fs_sess_cmp);
	for (i = 0; i < st->nsess; i++) {
		if (json_object_get(st->byid, st->sess[i].id) != NULL) {
			snprintf(err, errlen, "duplicate session id %s", st->sess[i].id);
			return -1;
		}
		if (json_object_set_new(st->byid, st->sess[i].id, json_integer((json_int_t)i)))
			goto oom;
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Replies and server state                                                                     */
/* ------------------------------------------------------------------------------------------ */

struct fs_server {
	struct fk_server fk;
	struct fs_store store;
	enum fs_dialect dialect;
	const char *api_key;
	unsigned events_page;       /* SandBase: 0 = the whole history at once */
	struct fk_rng rng;          /* request ids */
	char request_id[FS_ID_LEN]; /* Claude: the current request's id */
};

static struct fs_server *fs_srv(struct fk_server *fk)
{
	return FK_CONTAINER_OF(fk, struct fs_server, fk);
}

/* A JSON reply; j is stolen (NULL gives an empty body). */
static void fs_reply_json(struct fk_reply *r, int code, const char *reason, json_t *j)
{
	fk_reply_json(r, code, reason, j, FS_DUMP_FLAGS);
}

/* The dialect's error envelope. SandBase: {"type":"error","error":{"type","message"}} with its
 * own type strings; Claude adds "request_id" (also sent as the request-id header). */
static void fs_reply_error(struct fs_server *srv, struct fk_reply *r, int code, const char *reason,
                           const char *type, const char *msg)
{
	json_t *body = json_pack("{s:s, s:{s:s, s:o}}", "type", "error", "error", "type", type,
	                         "message", fk_json_text(msg));

	if (body != NULL && srv->dialect == FS_D_CLAUDE)
		json_object_set_new(body, "request_id", json_string(srv->request_id));
	fs_reply_json(r, code, reason, body);
}

/* 400 in the dialect's spelling. */
static void fs_bad_request(struct fs_server *srv, struct fk_reply *r, const char *msg)
{
	fs_reply_error(srv, r, 400, "Bad Request",
	               srv->dialect == FS_D_SANDBASE ? "invalid_request" : "invalid_request_error",
	               msg);
}

/* 404 in the dialect's spelling. */
static void fs_not_found(struct fs_server *srv, struct fk_reply *r, const char *msg)
{
	fs_reply_error(srv, r, 404, "Not Found",
	               srv->dialect == FS_D_SANDBASE ? "not_found" : "not_found_error", msg);
}

/* ------------------------------------------------------------------------------------------ */
/* Request parsing                                                                              */
/* ------------------------------------------------------------------------------------------ */

/* The last value of key (decoded, malloc'd), or NULL when absent. */
static char *fs_query_get(const char *query, const char *key)
{
	/* A key or value holding an encoded NUL (%00) reads as "", as it always has here. */
	return fk_query_get(query, key, FK_NUL_BLANK);
}

/* Every value of a repeated key, in order. New reference (an empty array when absent). */
static json_t *fs_query_all(const char *query, const char *key)
{
	return fk_query_all(query, key, FK_NUL_BLANK);
}

/* ------------------------------------------------------------------------------------------ */
/* Auth                                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* The key a request presents: x-api-key when the header is there at all (it wins over
 * Authorization), else the token of "Authorization: Bearer <token>". NULL when none. */
static const char *fs_presented_key(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *x = evhttp_find_header(h, "x-api-key");
	const char *a = evhttp_find_header(h, "Authorization");

	if (x != NULL)
		return x;
	if (a == NULL || strncasecmp(a, "Bearer", 6) != 0 || (a[6] != ' ' && a[6] != '\t'))
		return NULL;
	for (a += 6; *a == ' ' || *a == '\t'; a++)
		;
	return a;
}

/* Does an anthropic-beta header (a comma list, possibly sent several times) name our beta? */
static bool fs_has_beta(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);

	for (struct evkeyval *kv = h->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
		const char *p = kv->value;

		if (strcasecmp(kv->key, "anthropic-beta") != 0)
			continue;
		while (*p != '\0') {
			size_t n;

			while (*p == ' ' || *p == '\t' || *p == ',')
				p++;
			n = strcspn(p, ",");
			while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
				n--;
			if (n == strlen(FS_BETA) && strncmp(p, FS_BETA, n) == 0)
				return true;
			p += strcspn(p, ",");
		}
	}
	return false;
}

/* Authenticates (and for Claude checks the beta header). Returns 0 when the request may go
 * on; otherwise r holds the 401/400. */
static int fs_auth(struct fs_server *srv, struct evhttp_request *req, struct fk_reply *r)
{
	const char *key = fs_presented_key(req);

	if (key == NULL || strcmp(key, srv->api_key) != 0) {
		fs_reply_error(srv, r, 401, "Unauthorized", "authentication_error",
		               srv->dialect == FS_D_SANDBASE ? "Invalid or missing API key"
		                                             : "invalid x-api-key");
		return -1;
	}
	if (srv->dialect == FS_D_CLAUDE && !fs_has_beta(req)) {
		fs_bad_request(srv, r,
		               "The Managed Agents API requires the anthropic-beta header to "
		               "include " FS_BETA);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Shared pieces of the handlers                                                                */
/* ------------------------------------------------------------------------------------------ */

/* The session with this id, or NULL. */
static struct fs_session *fs_lookup(struct fs_store *st, const char *sid)
{
	json_t *v = json_object_get(st->byid, sid);

	return v != NULL ? &st->sess[json_integer_value(v)] : NULL;
}

/* Parses a boolean query value; 0 on success. */
static int fs_parse_bool(const char *s, bool *out)
{
	if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0)
		*out = true;
	else if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0)
		*out = false;
	else
		return -1;
	return 0;
}

/* A keyset position in the newest-first session order. */
struct fs_key {
	int64_t created;
	const char *id;
};

/* Where s stands relative to k in the newest-first order: < 0 before it (newer), 0 at it,
 * > 0 after it (older). */
static int fs_key_cmp(const struct fs_session *s, const struct fs_key *k)
{
	if (s->created != k->created)
		return s->created > k->created ? -1 : 1;
	return -strcmp(s->id, k->id);
}

/* The session's created_at exactly as served (the keyset cursors carry it). */
static json_t *fs_created_json(const struct fs_session *s)
{
	return json_string(s->created_at);
}

/* Starts a list body: {"data":[ */
static int fs_list_open(struct fk_reply *r)
{
	if (fk_reply_init(r, 200, "OK", "application/json"))
		return -1;
	return evbuffer_add(r->body, "{\"data\":[", 9);
}

/* Appends session s to an open list body; first says whether it is the first item. */
static void fs_list_add(struct fk_reply *r, const struct fs_session *s, bool first)
{
	if (!first)
		evbuffer_add(r->body, ",", 1);
	/* The store outlives every reply, so the text is not copied. */
	evbuffer_add_reference(r->body, s->text, s->len, NULL, NULL);
}

/* Appends ,"name":"cursor" (or ,"name":null when cursor is NULL and null_ok). */
static void fs_list_cursor(struct fk_reply *r, const char *name, const char *cursor, bool null_ok)
{
	if (cursor != NULL)
		evbuffer_add_printf(r->body, ",\"%s\":\"%s\"", name, cursor);
	else if (null_ok)
		evbuffer_add_printf(r->body, ",\"%s\":null", name);
}

/* Reads an events cursor {"p": index, "i": event id} against s. Returns the index, or -1. */
static long long fs_events_cursor(const struct fs_session *s, const char *page)
{
	json_t *c = fs_cursor_open(page), *p = json_object_get(c, "p");
	long long pos = json_is_integer(p) ? json_integer_value(p) : -1;
	const char *id = fk_get_str(c, "i");

	if (pos < 0 || (size_t)pos >= json_array_size(s->events) || id == NULL ||
	    strcmp(id, fk_get_str(json_array_get(s->events, (size_t)pos), "id")) != 0)
		pos = -1;
	json_decref(c);
	return pos;
}

static char *fs_events_mint(const struct fs_session *s, size_t pos)
{
	return fs_cursor_mint(json_pack("{s:I, s:s}", "p", (json_int_t)pos, "i",
	                                fk_get_str(json_array_get(s->events, pos), "id")));
}

/* ------------------------------------------------------------------------------------------ */
/* SandBase handlers                                                                            */
/* ------------------------------------------------------------------------------------------ */

struct fs_sb_list_q {
	char *agent, *version, *archived, *gte, *lte, *limit, *page;
};

static void fs_sb_list_q_free(struct fs_sb_list_q *q)
{
	free(q->agent);
	free(q->version);
	free(q->archived);
	free(q->gte);
	free(q->lte);
	free(q->limit);
	free(q->page);
}

/* GET /v1/sessions. Only created_at_gte/_lte are known (created_at[…] is silently ignored, as
 * is statuses in every spelling); newest first by (created_at, id); next_page is left out on
 * the last page and there is no prev_page. */
static void fs_sb_list(struct fs_server *srv, const char *query, struct fk_reply *r)
{
	struct fs_sb_list_q q = {
	    .agent = fs_query_get(query, "agent_id"),
	    .version = fs_query_get(query, "agent_version"),
	    .archived = fs_query_get(query, "include_archived"),
	    .gte = fs_query_get(query, "created_at_gte"),
	    .lte = fs_query_get(query, "created_at_lte"),
	    .limit = fs_query_get(query, "limit"),
	    .page = fs_query_get(query, "page"),
	};
	long long limit = FS_SB_LIMIT_DEFAULT, version = 0;
	int64_t gte = INT64_MIN, lte = INT64_MAX;
	bool archived = false, has_after = false, first = true;
	struct fs_key after = {0};
	const struct fs_session *last = NULL;
	json_t *cur = NULL;
	char *next = NULL;
	size_t taken = 0;

	if (q.agent != NULL && *q.agent == '\0') {
		free(q.agent);
		q.agent = NULL;
	}
	if (q.limit != NULL &&
	    (fs_parse_int(q.limit, &limit) || limit < 1 || limit > FS_SB_LIMIT_MAX)) {
		fs_bad_request(srv, r, "limit must be an integer between 1 and 100");
		goto out;
	}
	/* agent_version only applies together with agent_id. */
	if (q.agent != NULL && q.version != NULL &&
	    (fs_parse_int(q.version, &version) || version < 1)) {
		fs_bad_request(srv, r, "agent_version must be a positive integer");
		goto out;
	}
	if (q.archived != NULL && fs_parse_bool(q.archived, &archived)) {
		fs_bad_request(srv, r, "include_archived must be true or false");
		goto out;
	}
	if ((q.gte != NULL && fs_parse_time(q.gte, &gte)) ||
	    (q.lte != NULL && fs_parse_time(q.lte, &lte))) {
		fs_bad_request(srv, r, "created_at_gte and created_at_lte must be RFC 3339 times");
		goto out;
	}
	if (q.page != NULL) {
		cur = fs_cursor_open(q.page);
		after.id = fk_get_str(cur, "i");
		if (after.id == NULL || fs_parse_time(fk_get_str(cur, "c"), &after.created)) {
			fs_bad_request(srv, r, "Invalid page cursor");
			goto out;
		}
		has_after = true;
	}
	if (fs_list_open(r))
		goto out;
	for (size_t i = 0; i < srv->store.nsess; i++) {
		const struct fs_session *s = &srv->store.sess[i];

		if ((has_after && fs_key_cmp(s, &after) <= 0) || (s->archived && !archived) ||
		    s->created < gte || s->created > lte)
			continue;
		if (q.agent != NULL && (s->agent_id == NULL || strcmp(s->agent_id, q.agent) != 0))
			continue;
		if (q.agent != NULL && q.version != NULL &&
		    (!s->has_version || s->version != version))
			continue;
		if (taken == (size_t)limit) {
			/* More exist: the cursor resumes after the last item sent. */
			next = fs_cursor_mint(
			    json_pack("{s:o, s:s}", "c", fs_created_json(last), "i", last->id));
			break;
		}
		fs_list_add(r, s, first);
		first = false;
		taken++;
		last = s;
	}
	evbuffer_add(r->body, "]", 1);
	fs_list_cursor(r, "next_page", next, false);
	evbuffer_add(r->body, "}", 1);
out:
	free(next);
	json_decref(cur);
	fs_sb_list_q_free(&q);
}

/* GET /v1/sessions/{id} (both dialects: the stored object as it is). */
static void fs_get_session(struct fs_server *srv, const char *sid, struct fk_reply *r)
{
	struct fs_session *s = fs_lookup(&srv->store, sid);

	if (s == NULL) {
		fs_not_found(srv, r, "Session not found");
		return;
	}
	if (fk_reply_init(r, 200, "OK", "application/json") == 0)
		evbuffer_add_reference(r->body, s->text, s->len, NULL, NULL);
}

/* Appends events [from, to) of s to r's body as a JSON array's items. */
static void fs_add_events(struct fk_reply *r, const struct fs_session *s, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		if (i > from)
			evbuffer_add(r->body, ",", 1);
		fk_buf_add_json(r->body, json_array_get(s->events, i), FS_DUMP_FLAGS);
	}
}

/* GET /v1/sessions/{id}/events. --events-page 0 (the seed): the whole history, oldest first,
 * no next_page key, every query parameter ignored. N > 0: limit (clamped to N) and page are
 * honoured and next_page is there until the last page; types/order/created_at stay ignored. */
static void fs_sb_events(struct fs_server *srv, const char *sid, const char *query,
                         struct fk_reply *r)
{
	struct fs_session *s = fs_lookup(&srv->store, sid);
	char *limit_s = NULL, *page = NULL, *next = NULL;
	size_t n, from = 0, to;
	long long limit;

	if (s == NULL) {
		fs_not_found(srv, r, "Session not found");
		return;
	}
	n = json_array_size(s->events);
	if (srv->events_page == 0) {
		if (fs_list_open(r) == 0) {
			fs_add_events(r, s, 0, n);
			evbuffer_add(r->body, "]}", 2);
		}
		return;
	}
	limit = srv->events_page;
	limit_s = fs_query_get(query, "limit");
	page = fs_query_get(query, "page");
	if (limit_s != NULL && (fs_parse_int(limit_s, &limit) || limit < 1)) {
		fs_bad_request(srv, r, "limit must be a positive integer");
		goto out;
	}
	if (limit > (long long)srv->events_page)
		limit = srv->events_page;
	if (page != NULL) {
		long long pos = fs_events_cursor(s, page);

		if (pos < 0) {
			fs_bad_request(srv, r, "Invalid page cursor");
			goto out;
		}
		from = (size_t)pos + 1;
	}
	to = from + (size_t)limit < n ? from + (size_t)limit : n;
	if (to < n)
		next = fs_events_mint(s, to - 1);
	if (fs_list_open(r))
		goto out;
	fs_add_events(r, s, from, to);
	evbuffer_add(r->body, "]", 1);
	fs_list_cursor(r, "next_page", next, false);
	evbuffer_add(r->body, "}", 1);
out:
	free(next);
	free(page);
	free(limit_s);
}

/* GET /v1/agents/{id}[?version=N]: that version, or the latest one. */
static void fs_sb_agent(struct fs_server *srv, const char *aid, const char *query,
                        struct fk_reply *r)
{
	json_t *list = json_object_get(srv->store.agents, aid), *found = NULL;
	char *v = fs_query_get(query, "version");
	long long version = 0;

	if (v != NULL && (fs_parse_int(v, &version) || version < 1)) {
		fs_bad_request(srv, r, "version must be a positive integer");
		goto out;
	}
	if (v == NULL) {
		found = json_array_get(list, json_array_size(list) - 1);
	} else {
		for (size_t i = 0; i < json_array_size(list); i++) {
			json_t *a = json_array_get(list, i);

			if (json_integer_value(json_object_get(a, "version")) == version)
				found = a;
		}
	}
	if (found == NULL)
		fs_not_found(srv, r, list == NULL ? "Agent not found" : "Agent version not found");
	else
		fs_reply_json(r, 200, "OK", json_incref(found));
out:
	free(v);
}

/* ------------------------------------------------------------------------------------------ */
/* Claude handlers                                                                              */
/* ------------------------------------------------------------------------------------------ */

/* created_at[gt|gte|lt|lte] as inclusive bounds in µs; 0, or -1 with r holding the 400. */
static int fs_cl_time_bounds(struct fs_server *srv, const char *query, int64_t *lo, int64_t *hi,
                             struct fk_reply *r)
{
	static const char *const keys[] = {"created_at[gt]", "created_at[gte]", "created_at[lt]",
	                                   "created_at[lte]"};
	int rc = 0;

	*lo = INT64_MIN;
	*hi = INT64_MAX;
	for (size_t i = 0; i < FK_COUNT(keys); i++) {
		char *v = fs_query_get(query, keys[i]), msg[96];
		int64_t t;

		if (v == NULL)
			continue;
		if (fs_parse_time(v, &t)) {
			snprintf(msg, sizeof(msg), "%s: expected an RFC 3339 date-time", keys[i]);
			fs_bad_request(srv, r, msg);
			rc = -1;
		} else if (i == 0 && t + 1 > *lo) {
			*lo = t + 1;
		} else if (i == 1 && t > *lo) {
			*lo = t;
		} else if (i == 2 && t - 1 < *hi) {
			*hi = t - 1;
		} else if (i == 3 && t < *hi) {
			*hi = t;
		}
		free(v);
		if (rc)
			break;
	}
	return rc;
}

/* "asc"/"desc" (absent: dflt) into *asc; 0, or -1 with r holding the 400. */
static int fs_cl_order(struct fs_server *srv, const char *query, bool dflt, bool *asc, bool *given,
                       struct fk_reply *r)
{
	char *o = fs_query_get(query, "order");
	int rc = 0;

	*asc = dflt;
	*given = o != NULL;
	if (o != NULL && strcmp(o, "asc") == 0) {
		*asc = true;
	} else if (o != NULL && strcmp(o, "desc") == 0) {
		*asc = false;
	} else if (o != NULL) {
		fs_bad_request(srv, r, "order: expected one of asc, desc");
		rc = -1;
	}
	free(o);
	return rc;
}

/* limit in [1, max] (absent: dflt); 0, or -1 with r holding the 400. */
static int fs_cl_limit(struct fs_server *srv, const char *query, long long dflt, long long max,
                       long long *out, struct fk_reply *r)
{
	char *v = fs_query_get(query, "limit"), msg[80];
	int rc = 0;

	*out = dflt;
	if (v != NULL && (fs_parse_int(v, out) || *out < 1 || *out > max)) {
		snprintf(msg, sizeof(msg), "limit: expected an integer between 1 and %lld", max);
		fs_bad_request(srv, r, msg);
		rc = -1;
	}
	free(v);
	return rc;
}

struct fs_cl_filter {
	char *agent, *deployment, *memory;
	bool has_version, archived;
	long long version;
	json_t *statuses;
	int64_t lo, hi;
};

static bool fs_cl_match(const struct fs_session *s, const struct fs_cl_filter *f)
{
	bool ok;

	if ((s->archived && !f->archived) || s->created < f->lo || s->created > f->hi)
		return false;
	if (f->agent != NULL && (s->agent_id == NULL || strcmp(s->agent_id, f->agent) != 0))
		return false;
	if (f->agent != NULL && f->has_version && (!s->has_version || s->version != f->version))
		return false;
	if (f->deployment != NULL &&
	    (s->deployment == NULL || strcmp(s->deployment, f->deployment) != 0))
		return false;
	if (json_array_size(f->statuses) > 0) {
		ok = false;
		for (size_t i = 0; !ok && i < json_array_size(f->statuses); i++)
			ok = strcmp(json_string_value(json_array_get(f->statuses, i)), s->status) ==
			     0;
		if (!ok)
			return false;
	}
	if (f->memory != NULL) {
		ok = false;
		for (size_t i = 0; !ok && i < json_array_size(s->resources); i++) {
			json_t *res = json_array_get(s->resources, i);
			const char *t = fk_get_str(res, "type"),
			           *m = fk_get_str(res, "memory_store_id");

			ok = t != NULL && m != NULL && strcmp(t, "memory_store") == 0 &&
			     strcmp(m, f->memory) == 0;
		}
		if (!ok)
			return false;
	}
	return true;
}

/* Parses the list filters; 0, or -1 with r holding the 400. */
static int fs_cl_filter_parse(struct fs_server *srv, const char *query, struct fs_cl_filter *f,
                              struct fk_reply *r)
{
	static const char *const known[] = {"rescheduling", "running", "idle", "terminated"};
	char *v;

	f->agent = fs_query_get(query, "agent_id");
	f->deployment = fs_query_get(query, "deployment_id");
	f->memory = fs_query_get(query, "memory_store_id");
	f->statuses = fs_query_all(query, "statuses[]");
	if (f->statuses == NULL)
		return -1;
	for (size_t i = 0; i < json_array_size(f->statuses); i++) {
		const char *s = json_string_value(json_array_get(f->statuses, i));
		bool ok = false;

		for (size_t k = 0; k < FK_COUNT(known); k++)
			ok = ok || strcmp(s, known[k]) == 0;
		if (!ok) {
			fs_bad_request(srv, r,
			               "statuses[]: expected rescheduling, running, idle or "
			               "terminated");
			return -1;
		}
	}
	v = fs_query_get(query, "agent_version");
	if (v != NULL) {
		f->has_version = true;
		if (fs_parse_int(v, &f->version)) {
			free(v);
			fs_bad_request(srv, r, "agent_version: expected an integer");
			return -1;
		}
		free(v);
	}
	v = fs_query_get(query, "include_archived");
	if (v != NULL && fs_parse_bool(v, &f->archived)) {
		free(v);
		fs_bad_request(srv, r, "include_archived: expected true or false");
		return -1;
	}
	free(v);
	return fs_cl_time_bounds(srv, query, &f->lo, &f->hi, r);
}

/* Mints a Claude sessions cursor anchored at s. */
static char *fs_cl_mint(const struct fs_session *s, const char *dir, bool asc)
{
	return fs_cursor_mint(json_pack("{s:s, s:s, s:o, s:s}", "d", dir, "o", asc ? "asc" : "desc",
	                                "c", fs_created_json(s), "i", s->id));
}

/* GET /v1/sessions: every §1.2 filter, order asc|desc, limit 1..100, and a
 * BidirectionalPageCursor: next_page null at the end, prev_page null on the first page. */
static void fs_cl_list(struct fs_server *srv, const char *query, struct fk_reply *r)
{
	struct fs_cl_filter f = {0};
	bool asc, order_given, prev = false, has_cursor = false;
	long long limit;
	struct fs_key anchor = {0};
	char *page = fs_query_get(query, "page"), *next_c = NULL, *prev_c = NULL;
	size_t *m = NULL, nm = 0, start = 0, end, n = srv->store.nsess;
	json_t *cur = NULL;

	if (fs_cl_filter_parse(srv, query, &f, r) ||
	    fs_cl_order(srv, query, false, &asc, &order_given, r) ||
	    fs_cl_limit(srv, query, FS_CL_LIMIT_DEFAULT, FS_CL_LIMIT_MAX, &limit, r))
		goto out;
	if (page != NULL) {
		const char *d, *o;

		cur = fs_cursor_open(page);
		d = fk_get_str(cur, "d");
		o = fk_get_str(cur, "o");
		anchor.id = fk_get_str(cur, "i");
		if (d == NULL || o == NULL || anchor.id == NULL ||
		    fs_parse_time(fk_get_str(cur, "c"), &anchor.created) ||
		    (strcmp(d, "next") != 0 && strcmp(d, "prev") != 0) ||
		    (strcmp(o, "asc") != 0 && strcmp(o, "desc") != 0)) {
			fs_bad_request(srv, r, "page: invalid page cursor");
			goto out;
		}
		/* The cursor knows its order; a different explicit one is an error. */
		if (order_given && asc != (strcmp(o, "asc") == 0)) {
			fs_bad_request(srv, r, "page: the cursor was issued for another order");
			goto out;
		}
		asc = strcmp(o, "asc") == 0;
		prev = strcmp(d, "prev") == 0;
		has_cursor = true;
	}
	/* The matching sessions in the requested order. */
	m = calloc(n ? n : 1, sizeof(*m));
	if (m == NULL)
		goto out;
	for (size_t k = 0; k < n; k++) {
		size_t i = asc ? n - 1 - k : k;

		if (fs_cl_match(&srv->store.sess[i], &f))
			m[nm++] = i;
	}
	/* start = how many matches come before the anchor in this order. */
	if (has_cursor) {
		while (start < nm) {
			int c = fs_key_cmp(&srv->store.sess[m[start]], &anchor);

			if (asc ? c < 0 : c > 0)
				break;
			if (!prev && c == 0) {
				start++;
				break;
			}
			if (c == 0)
				break;
			start++;
		}
	}
	if (prev) {
		end = start;
		start = end > (size_t)limit ? end - (size_t)limit : 0;
	} else {
		end = start + (size_t)limit < nm ? start + (size_t)limit : nm;
	}
	if (end > start && end < nm)
		next_c = fs_cl_mint(&srv->store.sess[m[end - 1]], "next", asc);
	if (end > start && start > 0)
		prev_c = fs_cl_mint(&srv->store.sess[m[start]], "prev", asc);
	if (fs_list_open(r))
		goto out;
	for (size_t k = start; k < end; k++)
		fs_list_add(r, &srv->store.sess[m[k]], k == start);
	evbuffer_add(r->body, "]", 1);
	fs_list_cursor(r, "next_page", next_c, true);
	fs_list_cursor(r, "prev_page", prev_c, true);
	evbuffer_add(r->body, "}", 1);
out:
	free(m);
	free(next_c);
	free(prev_c);
	free(page);
	json_decref(cur);
	free(f.agent);
	free(f.deployment);
	free(f.memory);
	json_decref(f.statuses);
}

/* GET /v1/sessions/{id}/events: types[] filter, order (asc by default), limit 1..1000
 * (default 1000), created_at[…] on processed_at, page; next_page null at the end. */
static void fs_cl_events(struct fs_server *srv, const char *sid, const char *query,
                         struct fk_reply *r)
{
	struct fs_session *s = fs_lookup(&srv->store, sid);
	json_t *types = NULL;
	char *page = NULL, *next = NULL;
	bool asc, order_given, first = true;
	long long limit, pos = -1;
	int64_t lo, hi;
	size_t n, taken = 0, last = 0;

	if (s == NULL) {
		fs_not_found(srv, r, "Session not found");
		return;
	}
	n = json_array_size(s->events);
	types = fs_query_all(query, "types[]");
	page = fs_query_get(query, "page");
	if (types == NULL || fs_cl_order(srv, query, true, &asc, &order_given, r) ||
	    fs_cl_limit(srv, query, FS_CL_EV_LIMIT_DEFAULT, FS_CL_EV_LIMIT_MAX, &limit, r) ||
	    fs_cl_time_bounds(srv, query, &lo, &hi, r))
		goto out;
	if (page != NULL && (pos = fs_events_cursor(s, page)) < 0) {
		fs_bad_request(srv, r, "page: invalid page cursor");
		goto out;
	}
	if (fs_list_open(r))
		goto out;
	for (size_t k = 0; k < n; k++) {
		size_t i = asc ? k : n - 1 - k;
		json_t *ev = json_array_get(s->events, i);
		bool ok = json_array_size(types) == 0;

		if (pos >= 0 && (asc ? (long long)i <= pos : (long long)i >= pos))
			continue;
		for (size_t t = 0; !ok && t < json_array_size(types); t++)
			ok = fk_get_str(ev, "type") != NULL &&
			     strcmp(fk_get_str(ev, "type"),
			            json_string_value(json_array_get(types, t))) == 0;
		if (!ok ||
		    ((lo != INT64_MIN || hi != INT64_MAX) &&
		     (s->ev_time[i] == INT64_MIN || s->ev_time[i] < lo || s->ev_time[i] > hi)))
			continue;
		if (taken == (size_t)limit) {
			next = fs_events_mint(s, last);
			break;
		}
		if (!first)
			evbuffer_add(r->body, ",", 1);
		fk_buf_add_json(r->body, ev, FS_DUMP_FLAGS);
		first = false;
		taken++;
		last = i;
	}
	evbuffer_add(r->body, "]", 1);
	fs_list_cursor(r, "next_page", next, true);
	evbuffer_add(r->body, "}", 1);
out:
	free(next);
	free(page);
	json_decref(types);
}

/* ------------------------------------------------------------------------------------------ */
/* Routes                                                                                       */
/* ------------------------------------------------------------------------------------------ */

enum fs_route {
	FS_R_NONE,
	FS_R_SESSIONS,
	FS_R_SESSION,
	FS_R_EVENTS,
	FS_R_STREAM,
	FS_R_ARCHIVE,
	FS_R_AGENTS,
	FS_R_AGENT
};

struct fs_route_def {
	unsigned real;     /* methods the real service has on this path */
	unsigned impl;     /* methods this fake answers (SandBase; Claude has no agent routes) */
	const char *allow; /* the Allow header of a 405 */
};

static const struct fs_route_def fs_routes[] = {
    [FS_R_SESSIONS] = {EVHTTP_REQ_GET | EVHTTP_REQ_POST, EVHTTP_REQ_GET, "GET, POST"},
    [FS_R_SESSION] = {EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE, EVHTTP_REQ_GET,
                      "GET, POST, DELETE"},
    [FS_R_EVENTS] = {EVHTTP_REQ_GET | EVHTTP_REQ_POST, EVHTTP_REQ_GET, "GET, POST"},
    [FS_R_STREAM] = {EVHTTP_REQ_GET, 0, "GET"},
    [FS_R_ARCHIVE] = {EVHTTP_REQ_POST, 0, "POST"},
    [FS_R_AGENTS] = {EVHTTP_REQ_GET | EVHTTP_REQ_POST, 0, "GET, POST"},
    [FS_R_AGENT] = {EVHTTP_REQ_GET | EVHTTP_REQ_POST, EVHTTP_REQ_GET, "GET, POST"},
};

/* Matches a decoded path; *id gets the session or agent id (malloc'd) when there is one. */
static enum fs_route fs_match(const char *path, char **id)
{
	static const char sp[] = "/v1/sessions/", ap[] = "/v1/agents/";
	const char *p, *rest;
	size_t len;
	enum fs_route route;

	*id = NULL;
	if (strcmp(path, "/v1/sessions") == 0)
		return FS_R_SESSIONS;
	if (strcmp(path, "/v1/agents") == 0)
		return FS_R_AGENTS;
	if (strncmp(path, sp, sizeof(sp) - 1) == 0)
		p = path + sizeof(sp) - 1;
	else if (strncmp(path, ap, sizeof(ap) - 1) == 0)
		p = path + sizeof(ap) - 1;
	else
		return FS_R_NONE;
	len = strcspn(p, "/");
	if (len == 0)
		return FS_R_NONE;
	rest = p + len;
	if (path[4] == 'a')
		route = *rest == '\0' ? FS_R_AGENT : FS_R_NONE;
	else if (*rest == '\0')
		route = FS_R_SESSION;
	else if (strcmp(rest, "/events") == 0)
		route = FS_R_EVENTS;
	else if (strcmp(rest, "/events/stream") == 0)
		route = FS_R_STREAM;
	else if (strcmp(rest, "/archive") == 0)
		route = FS_R_ARCHIVE;
	else
		route = FS_R_NONE;
	if (route != FS_R_NONE)
		*id = strndup(p, len);
	return route;
}

/* Routes one authenticated, non-control request into r. */
static void fs_route(struct fs_server *srv, struct evhttp_request *req, const char *path,
                     const char *query, struct fk_reply *r)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	char *id = NULL;
	enum fs_route route = fs_match(path, &id);
	const struct fs_route_def *def = &fs_routes[route];
	unsigned impl = def->impl;
	bool sb = srv->dialect == FS_D_SANDBASE;

	if (route == FS_R_AGENT && !sb)
		impl = 0;
	if (route == FS_R_NONE) {
		fs_not_found(srv, r, "Not found");
		goto out;
	}
	if (!(impl & (unsigned)cmd)) {
		if (def->real & (unsigned)cmd) {
			fs_reply_error(srv, r, 501, "Not Implemented",
			               sb ? "not_implemented" : "api_error",
			               "Not implemented by " FS_NAME);
		} else {
			fs_reply_error(srv, r, 405, "Method Not Allowed",
			               sb ? "invalid_request" : "invalid_request_error",
			               "Method not allowed");
			r->allow = def->allow;
		}
		goto out;
	}
	switch (route) {
	case FS_R_SESSIONS:
		if (sb)
			fs_sb_list(srv, query, r);
		else
			fs_cl_list(srv, query, r);
		break;
	case FS_R_SESSION:
		fs_get_session(srv, id, r);
		break;
	case FS_R_EVENTS:
		if (sb)
			fs_sb_events(srv, id, query, r);
		else
			fs_cl_events(srv, id, query, r);
		break;
	case FS_R_AGENT:
		fs_sb_agent(srv, id, query, r);
		break;
	default:
		break;
	}
out:
	free(id);
}

/* ------------------------------------------------------------------------------------------ */
/* The fake                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Every non-control request (the fk_fake serve hook): Claude's request id first, since its
 * errors carry it too, then auth and routing. */
static void fs_serve(struct fk_server *fk, struct evhttp_request *req, const char *raw_path,
                     const char *path, const char *query, struct fk_reply *r)
{
	struct fs_server *srv = fs_srv(fk);

	(void)raw_path;
	if (srv->dialect == FS_D_CLAUDE) {
		fs_antid(&srv->rng, "req_", srv->request_id, sizeof(srv->request_id));
		evhttp_add_header(evhttp_request_get_output_headers(req), "request-id",
		                  srv->request_id);
	}
	if (fs_auth(srv, req, r) == 0)
		fs_route(srv, req, path, query, r);
}

/* Mode http500: the dialect's own error envelope. */
static void fs_fail(struct fk_server *fk, struct fk_reply *r)
{
	struct fs_server *srv = fs_srv(fk);

	fs_reply_error(srv, r, 500, "Internal Server Error",
	               srv->dialect == FS_D_SANDBASE ? "internal_error" : "api_error",
	               "Internal server error");
}

/* GET /__fake/mode also shows events_page and the dialect. */
static int fs_mode_info(struct fk_server *fk, json_t *info)
{
	struct fs_server *srv = fs_srv(fk);

	if (json_object_set_new(info, "events_page", json_integer((int)srv->events_page)) ||
	    json_object_set_new(info, "dialect", json_string(fs_dialect_names[srv->dialect])))
		return -1;
	return 0;
}

/* POST /__fake/mode?events_page=N. */
static int fs_mode_set(struct fk_server *fk, const char *query)
{
	struct fs_server *srv = fs_srv(fk);
	char *e = fs_query_get(query, "events_page");
	unsigned long long ep = srv->events_page;
	int rc = 0;

	if (e != NULL && fk_parse_ulong(e, FS_MAX_EVENTS_PAGE, &ep))
		rc = -1;
	else
		srv->events_page = (unsigned)ep;
	free(e);
	return rc;
}

/* Every credential-bearing header, so tests can check which key arrived. */
static const struct fk_header fs_recorded[] = {
    {"x_api_key", "x-api-key"},
    {"authorization", "Authorization"},
    {"anthropic_beta", "anthropic-beta"},
    {"anthropic_version", "anthropic-version"},
};

static const struct fk_fake fs_fake = {
    .name = FS_NAME,
    .dump_flags = FS_DUMP_FLAGS,
    .query_nul = FK_NUL_BLANK,
    .recorded = fs_recorded,
    .nrecorded = FK_COUNT(fs_recorded),
    .mode_usage = "mode must be ok|slow|garbage|wrong-shape|http500|close,"
                  " delay_ms 0..600000 and events_page 0..100000",
    .serve = fs_serve,
    .fail = fs_fail,
    .mode_info = fs_mode_info,
    .mode_set = fs_mode_set,
};

/* ------------------------------------------------------------------------------------------ */
/* main                                                                                         */
/* ------------------------------------------------------------------------------------------ */

static void fs_usage(FILE *fp)
{
	fprintf(fp,
	        "usage: " FS_NAME " --dialect sandbase|claude [--port N] [--port-file F]\n"
	        "       [--data FILE | --generate N[:AGENTS]] [--seed S] [--api-key KEY]\n"
	        "       [--mode ok|slow|garbage|wrong-shape|http500|close] [--delay-ms N]\n"
	        "       [--events-page N] [--dump] [--quiet]\n"
	        "\n"
	        "A fake SandBase sessions API, or a fake Claude-native upstream, on 127.0.0.1.\n"
	        "  --dialect D       sandbase (SandBase's quirks) or claude (the north dialect)\n"
	        "  --port N          port to listen on (0 = ephemeral, the default)\n"
	        "  --port-file F     write the bound port and a newline to F once listening\n"
	        "  --data FILE       serve this dataset (JSON, at most 64 MiB; see the source)\n"
	        "  --generate SPEC   generate N sessions over AGENTS agents (3)\n"
	        "  --seed S          generator seed (1)\n"
	        "  --api-key KEY     the accepted key (sk-sb-test / sk-ant-test)\n"
	        "  --mode M          misbehaviour for every non-control route (ok)\n"
	        "  --delay-ms N      delay of --mode slow (3000)\n"
	        "  --events-page N   SandBase event pages: 0 = all at once, no next_page (0)\n"
	        "  --dump            print the dataset as --data reads it and exit\n"
	        "  --quiet           do not log requests on stderr\n"
	        "Control: GET|DELETE /__fake/requests,"
	        " POST /__fake/mode?mode=M&delay_ms=N&events_page=N\n");
}

struct fs_opts {
	struct fk_opts c;
	bool has_dialect;
	enum fs_dialect dialect;
	const char *api_key;
	unsigned events_page;
	bool dump;
};

/* The options that are fake_sandbase's own. */
static int fs_parse_opt(int c, const char *arg, void *ctx)
{
	struct fs_opts *o = ctx;
	unsigned long long v;

	switch (c) {
	case 'L':
		o->has_dialect = true;
		if (strcmp(arg, "sandbase") == 0)
			o->dialect = FS_D_SANDBASE;
		else if (strcmp(arg, "claude") == 0)
			o->dialect = FS_D_CLAUDE;
		else
			return -1;
		return 0;
	case 'k':
		if (*arg == '\0')
			return -1;
		o->api_key = arg;
		return 0;
	case 'E':
		if (fk_parse_ulong(arg, FS_MAX_EVENTS_PAGE, &v))
			return -1;
		o->events_page = (unsigned)v;
		return 0;
	case 'u':
		o->dump = true;
		return 0;
	}
	return 1;
}

/* Parses argv; returns 0, or -1 after printing why (the caller exits 2). */
static int fs_parse_args(int argc, char **argv, struct fs_opts *o)
{
	static const struct option longopts[] = {
	    {"dialect", required_argument, NULL, 'L'},
	    {"port", required_argument, NULL, 'p'},
	    {"port-file", required_argument, NULL, 'f'},
	    {"data", required_argument, NULL, 'd'},
	    {"generate", required_argument, NULL, 'g'},
	    {"seed", required_argument, NULL, 's'},
	    {"api-key", required_argument, NULL, 'k'},
	    {"mode", required_argument, NULL, 'm'},
	    {"delay-ms", required_argument, NULL, 'D'},
	    {"events-page", required_argument, NULL, 'E'},
	    {"dump", no_argument, NULL, 'u'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};

	*o = (struct fs_opts){.has_dialect = false};
	if (fk_parse_args(FS_NAME, argc, argv, longopts, &o->c, fs_parse_opt, o, fs_usage))
		return -1;
	if (!o->has_dialect) {
		fprintf(stderr, FS_NAME ": --dialect sandbase|claude is required\n");
		goto usage;
	}
	if (o->c.data != NULL && o->c.generate != NULL) {
		fprintf(stderr, FS_NAME ": --data and --generate exclude each other\n");
		goto usage;
	}
	if (o->api_key == NULL)
		o->api_key = o->dialect == FS_D_SANDBASE ? "sk-sb-test" : "sk-ant-test";
	return 0;
usage:
	fs_usage(stderr);
	return -1;
}

/* Parses "N[:AGENTS]"; 0 on success. */
static int fs_parse_generate(const char *spec, unsigned *n, unsigned *agents)
{
	char buf[64], *rest;

	if (fk_parse_generate(spec, buf, sizeof(buf), FS_MAX_GENERATE, n, agents, &rest) ||
	    rest != NULL)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct fs_opts o;
	struct fs_server srv = {0};
	json_t *root = NULL;
	char err[512];
	unsigned n = 0, agents = 0;
	int status = 1;

	if (fs_parse_args(argc, argv, &o))
		return 2;
	if (o.c.generate != NULL && fs_parse_generate(o.c.generate, &n, &agents)) {
		fprintf(stderr,
		        FS_NAME ": bad --generate '%s' (N[:AGENTS], N <= %d, AGENTS <= %d)\n",
		        o.c.generate, FS_MAX_GENERATE, FK_MAX_AGENTS);
		fs_usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (o.c.data != NULL)
		root = fk_load_file(o.c.data, err, sizeof(err));
	else if (o.c.generate != NULL)
		root = fs_generate(o.dialect, o.c.seed, n, agents);
	else
		root = json_pack("{s:[], s:[]}", "agents", "sessions");
	if (root == NULL) {
		fprintf(stderr, FS_NAME ": %s\n",
		        o.c.data != NULL ? err : "cannot build the dataset");
		return 1;
	}
	if (o.dump) {
		status = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) == 0 &&
		                 fputc('\n', stdout) != EOF && fflush(stdout) == 0
		             ? 0
		             : 1;
		json_decref(root);
		return status;
	}
	if (fs_store_build(&srv.store, root, o.dialect, err, sizeof(err))) {
		fprintf(stderr, FS_NAME ": data: %s\n", err);
		goto out;
	}
	srv.dialect = o.dialect;
	srv.api_key = o.api_key;
	srv.events_page = o.events_page;
	srv.rng.s = o.c.seed ^ 0x7265717565737473ULL;
	status = fk_server_run(&srv.fk, &fs_fake, &o.c);
out:
	/* The server first (its buffers may still reference session texts), the store last. */
	fk_server_free(&srv.fk);
	if (srv.store.doc != NULL)
		fs_store_free(&srv.store);
	else
		json_decref(root);
	return status;
}
