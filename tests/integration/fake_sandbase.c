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
 * Writes (create, update, archive, delete, send events) change the store in memory. A
 * user.message starts a simulated turn that runs --run-ms on a loop timer and then records the
 * agent's events and the idle; markers in the text ([tool:auto], [tool:ask] (Claude),
 * [tool:custom], [reply:error], [run:long]) choose what the turn does. SandBase refuses what
 * its docs say it refuses (422 unsupported_event_type / unsupported_multiagent, 409 while
 * running, 409 session_archived); Claude queues a message sent while running and takes tool
 * confirmations and custom tool results.
 *
 * GET /v1/sessions/{id}/events/stream streams every event as it is appended to a session's
 * history, in the JSON the events list shows. SandBase first replays the history (after
 * ?cursor=<event id> or Last-Event-ID), frames are "data: {json}" with no event line and a
 * ": heartbeat" comment follows every quiet --stream-heartbeat-ms; its streams never end, not
 * even for a deleted session. Claude replays nothing, names every frame ("event: <type>"),
 * pings every interval and, when the session is deleted, sends session.deleted and ends.
 *
 * One thread, one libevent loop; nothing blocks it (delays and turns are event timers).
 * Every session is serialised once per change and listings reference those texts.
 *
 * Data (file and generator alike), in the dialect served:
 *   {"agents": [Agent...], "sessions": [{"session": Session, "events": [Event...]}]}
 * A file may hold both dialects as {"sandbase": {...}, "claude": {...}}; the served one is
 * picked. "agents" (one object per id and version) is only used by SandBase's agent routes
 * (Claude's agents are the snapshots its sessions carry). Events are served in file order. */
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
#include <event2/event.h>
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
#define FS_RUN_MS_DEFAULT 300
#define FS_RUN_MS_MAX 600000

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

struct fs_run;

struct fs_session {
	json_t *entry;          /* {"session", "events"}, held */
	const char *id;         /* borrowed from entry */
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
	size_t nev_time;        /* events ev_time covers (fs_refresh brings it up to date) */
	struct fk_text *text;   /* the session, serialised */
	struct fs_run *run;     /* the simulated turn in progress, or NULL */
	json_t *pending;        /* ids of the tool uses a requires_action idle waits on, or NULL */
	int64_t run_from;       /* Claude stats: when the current running stretch began, or -1 */
};

struct fs_store {
	json_t *doc;             /* the whole loaded document */
	json_t *byid;            /* {session id: index into sess} */
	json_t *agents;          /* {agent id: [Agent...] in version order} */
	struct fs_session *sess; /* newest first: created_at desc, id desc */
	size_t nsess, cap;
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
		fk_text_unref(st->sess[i].text);
		free(st->sess[i].ev_time);
		json_decref(st->sess[i].entry);
		json_decref(st->sess[i].pending);
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

/* Re-reads what the handlers look up from the session object and the events (the cached
 * fields, Claude's event times) and serialises the session again. 0 or -1. */
static int fs_refresh(struct fs_store *st, struct fs_session *s)
{
	json_t *obj = json_object_get(s->entry, "session"), *agent = json_object_get(obj, "agent");
	json_t *ver, *archived;
	bool sb = st->dialect == FS_D_SANDBASE;
	struct fk_text *text;
	size_t i, n = json_array_size(s->events);

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
		int64_t *t = realloc(s->ev_time, (n + 1) * sizeof(*t));

		if (t == NULL)
			return -1;
		s->ev_time = t;
		s->deployment = fk_get_str(obj, "deployment_id");
		s->resources = json_object_get(obj, "resources");
		for (i = 0; i < n; i++)
			if (fs_parse_time(fk_get_str(json_array_get(s->events, i), "processed_at"),
			                  &s->ev_time[i]))
				s->ev_time[i] = INT64_MIN;
		s->nev_time = n;
	}
	text = fk_text_json(obj, FS_DUMP_FLAGS);
	if (text == NULL)
		return -1;
	fk_text_unref(s->text);
	s->text = text;
	return 0;
}

/* Reads one {"session", "events"} entry into s. */
static int fs_index_session(struct fs_store *st, struct fs_session *s, json_t *entry, char *err,
                            size_t errlen)
{
	json_t *obj = json_object_get(entry, "session"), *events = json_object_get(entry, "events");
	size_t i;

	if (!json_is_object(obj) || fk_get_str(obj, "id") == NULL) {
		snprintf(err, errlen, "needs a \"session\" object with a string \"id\"");
		return -1;
	}
	s->entry = json_incref(entry);
	s->run_from = -1;
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
	return fs_refresh(st, s);
}

/* Sorts the sessions newest first again and rebuilds the id index. 0, or -1 on a duplicate id
 * (named in err when err is not NULL). */
static int fs_reindex(struct fs_store *st, char *err, size_t errlen)
{
	qsort(st->sess, st->nsess, sizeof(*st->sess), fs_sess_cmp);
	json_object_clear(st->byid);
	for (size_t i = 0; i < st->nsess; i++) {
		if (json_object_get(st->byid, st->sess[i].id) != NULL) {
			if (err != NULL)
				snprintf(err, errlen, "duplicate session id %s", st->sess[i].id);
			return -1;
		}
		if (json_object_set_new(st->byid, st->sess[i].id, json_integer((json_int_t)i)))
			return -1;
	}
	return 0;
}

/* Claude's agents are the snapshots its sessions carry: one per (id, version), so that a
 * session can be created with any agent the data knows. */
static int fs_index_snapshots(struct fs_store *st)
{
	json_t *agents = json_array();
	int rc;

	if (agents == NULL)
		return -1;
	/* Oldest session first, so that an agent is dated by the first session that used it. */
	for (size_t i = st->nsess; i-- > 0;) {
		json_t *a = json_object_get(json_object_get(st->sess[i].entry, "session"), "agent");
		bool seen = false;

		if (fk_get_str(a, "id") == NULL || !json_is_integer(json_object_get(a, "version")))
			continue;
		for (size_t k = 0; k < json_array_size(agents); k++) {
			json_t *b = json_array_get(agents, k);

			seen = seen || (strcmp(fk_get_str(b, "id"), fk_get_str(a, "id")) == 0 &&
			                json_equal(json_object_get(a, "version"),
			                           json_object_get(b, "version")));
		}
		if (seen)
			continue;
		/* The Agent resource is the snapshot plus its own record keys. */
		a = json_deep_copy(a);
		if (a == NULL ||
		    json_object_set_new(a, "created_at", json_string(st->sess[i].created_at)) ||
		    json_object_set_new(a, "updated_at", json_string(st->sess[i].created_at)) ||
		    json_object_set_new(a, "archived_at", json_null()) ||
		    json_object_set_new(a, "metadata", json_object()) ||
		    json_array_append_new(agents, a)) {
			json_decref(agents);
			return -1;
		}
	}
	rc = fs_index_agents(st, agents, NULL, 0);
	json_decref(agents);
	return rc;
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
	st->cap = n > 16 ? n : 16;
	st->sess = calloc(st->cap, sizeof(*st->sess));
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
	if (fs_reindex(st, err, errlen))
		return -1;
	if (d == FS_D_CLAUDE && fs_index_snapshots(st))
		goto oom;
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
	struct fk_rng ids;          /* ids of what the writes create */
	json_t *minted;             /* ids minted once and kept: agent environments, versions */
	unsigned run_ms;            /* how long a simulated turn runs */
	char write_sid[FS_ID_LEN];  /* the session the current write is about */
	unsigned heartbeat_ms;      /* the event stream's heartbeat interval */
	struct fk_rng gone_ids;     /* ids of Claude's session.deleted (apart: the rest stay put) */
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
	/* Referenced, not copied: the reply holds the text while it is written. */
	fk_buf_add_text(r->body, s->text);
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
		fk_buf_add_text(r->body, s->text);
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
		if (!ok || ((lo != INT64_MIN || hi != INT64_MAX) &&
		            (i >= s->nev_time || s->ev_time[i] == INT64_MIN || s->ev_time[i] < lo ||
		             s->ev_time[i] > hi)))
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

static void fs_fail(struct fk_server *fk, struct fk_reply *r);

/* ------------------------------------------------------------------------------------------ */
/* Writes: clock, ids, bodies, events                                                           */
/* ------------------------------------------------------------------------------------------ */

static bool fs_is_sb(const struct fs_server *srv)
{
	return srv->dialect == FS_D_SANDBASE;
}

/* Now, as the dialect stamps it: SandBase in whole seconds, Claude in microseconds. */
static json_t *fs_now_json(const struct fs_server *srv)
{
	char ts[40];

	fs_fmt_time(ts, sizeof(ts), fk_now_us(), fs_is_sb(srv) ? 0 : 6);
	return json_string(ts);
}

/* A new id with the dialect's body (ULID for SandBase, Anthropic's shape for Claude). */
static void fs_mint(struct fs_server *srv, const char *prefix, char *out)
{
	if (fs_is_sb(srv))
		fs_ulid(&srv->ids, prefix, fk_now_us(), out, FS_ID_LEN);
	else
		fs_antid(&srv->ids, prefix, out, FS_ID_LEN);
}

/* 409 in the dialect's spelling (SandBase: the given type, Claude: conflict_error). */
static void fs_conflict(struct fs_server *srv, struct fk_reply *r, const char *sb_type,
                        const char *msg)
{
	fs_reply_error(srv, r, 409, "Conflict", fs_is_sb(srv) ? sb_type : "conflict_error", msg);
}

/* The JSON body, which must be an object. Returns a new reference, or NULL with r holding the
 * 400. */
static json_t *fs_read_body(struct fs_server *srv, struct evhttp_request *req, struct fk_reply *r)
{
	size_t len;
	const char *b = fk_body(req, &len);
	json_t *body = b != NULL ? json_loadb(b, len, 0, NULL) : NULL;

	if (body == NULL)
		fs_bad_request(srv, r,
		               b == NULL ? "A JSON request body is required" : "Invalid JSON body");
	return body;
}

/* The session whose writes are being served (mode write-unknown names it). */
static void fs_note_write(struct fs_server *srv, const char *sid)
{
	snprintf(srv->write_sid, sizeof(srv->write_sid), "%s", sid != NULL ? sid : "");
}

static json_t *fs_obj(struct fs_session *s)
{
	return json_object_get(s->entry, "session");
}

/* ------------------------------------------------------------------------------------------ */
/* The event stream: GET /v1/sessions/{id}/events/stream                                        */
/* ------------------------------------------------------------------------------------------ */

#define FS_HEARTBEAT_MS_DEFAULT 15000
#define FS_HEARTBEAT_MS_MAX 3600000

static const char *const fs_stream_headers[] = {"Cache-Control", "no-cache", NULL};

/* SandBase: "data: {event}" frames, an idle heartbeat comment. */
static const struct fk_stream_kind fs_sb_stream_kind = {
    .ctype = "text/event-stream",
    .headers = fs_stream_headers,
    .heartbeat = ": heartbeat\n\n",
    .periodic = false,
};

/* Claude: named events, a ping event every interval (the SDK skips it). */
static const struct fk_stream_kind fs_cl_stream_kind = {
    .ctype = "text/event-stream; charset=utf-8",
    .headers = fs_stream_headers,
    .heartbeat = "event: ping\ndata: {\"type\":\"ping\"}\n\n",
    .periodic = true,
};

/* One event (borrowed) as a frame of the dialect's stream, appended to buf: SandBase
 * "data: <json>", Claude "event: <type>" first. The JSON is what the events list shows. */
static int fs_frame(const struct fs_server *srv, struct evbuffer *buf, const json_t *ev)
{
	const char *type = fk_get_str(ev, "type");

	if (!fs_is_sb(srv) &&
	    evbuffer_add_printf(buf, "event: %s\n", type != NULL ? type : "message") < 0)
		return -1;
	if (evbuffer_add(buf, "data: ", 6) || fk_buf_add_json(buf, ev, FS_DUMP_FLAGS) ||
	    evbuffer_add(buf, "\n\n", 2))
		return -1;
	return 0;
}

/* An event just appended to s's history goes to the session's open streams. */
static void fs_publish(struct fs_server *srv, struct fs_session *s, const json_t *ev)
{
	struct evbuffer *buf;

	if (srv->fk.streams == NULL)
		return;
	buf = evbuffer_new();
	if (buf != NULL && fs_frame(srv, buf, ev) == 0)
		fk_stream_send(&srv->fk, s->id, (const char *)evbuffer_pullup(buf, -1),
		               evbuffer_get_length(buf));
	if (buf != NULL)
		evbuffer_free(buf);
}

/* The index of the event with this id in s's history, or -1. */
static long long fs_event_index(const struct fs_session *s, const char *id)
{
	json_t *ev;
	size_t i;

	json_array_foreach(s->events, i, ev) {
		const char *eid = fk_get_str(ev, "id");

		if (eid != NULL && strcmp(eid, id) == 0)
			return (long long)i;
	}
	return -1;
}

/* Appends an event (stolen) to s's history. SandBase events get the flat envelope's fields
 * they lack (content null, no stop_reason, no model, 0 tokens, now); Claude events get
 * processed_at now unless queued (null). Returns the event (borrowed) or NULL. */
static json_t *fs_push(struct fs_server *srv, struct fs_session *s, json_t *ev, bool queued)
{
	json_t *now = fs_now_json(srv);

	if (ev == NULL || now == NULL) {
		json_decref(ev);
		json_decref(now);
		return NULL;
	}
	if (fs_is_sb(srv)) {
		static const char *const keys[] = {"content", "data", "stop_reason", "model_used"};
		json_t *out = json_pack("{s:O}", "id", json_object_get(ev, "id"));
		const char *key;
		json_t *v;

		if (out == NULL)
			goto fail;
		json_object_set(out, "type", json_object_get(ev, "type"));
		for (size_t i = 0; i < FK_COUNT(keys); i++) {
			v = json_object_get(ev, keys[i]);
			if (i == 1 && v == NULL) /* data only where the payload is not content */
				continue;
			json_object_set_new(out, keys[i], v != NULL ? json_incref(v) : json_null());
		}
		json_object_set_new(
		    out, "tokens_in",
		    json_integer(json_integer_value(json_object_get(ev, "tokens_in"))));
		json_object_set_new(
		    out, "tokens_out",
		    json_integer(json_integer_value(json_object_get(ev, "tokens_out"))));
		v = json_object_get(ev, "duration_ms");
		json_object_set_new(out, "duration_ms", v != NULL ? json_incref(v) : json_null());
		json_object_set(out, "processed_at", queued ? json_null() : now);
		json_object_set(out, "created_at", now);
		/* Anything else (tool_use_id, is_error on some results) trails the envelope. */
		json_object_foreach(ev, key, v) {
			if (json_object_get(out, key) == NULL)
				json_object_set(out, key, v);
		}
		json_decref(ev);
		ev = out;
	} else {
		json_object_set(ev, "processed_at", queued ? json_null() : now);
	}
	json_decref(now);
	if (json_array_append_new(s->events, ev))
		return NULL;
	fs_publish(srv, s, ev);
	return ev;
fail:
	json_decref(now);
	json_decref(ev);
	return NULL;
}

/* A new event {id, type} with a fresh id. New reference. */
static json_t *fs_ev(struct fs_server *srv, const char *type)
{
	char id[FS_ID_LEN];

	fs_mint(srv, "sevt_", id);
	return json_pack("{s:s, s:s}", "id", id, "type", type);
}

/* Sets key on a new event, stealing v (NULL is skipped). Returns ev. */
static json_t *fs_ev_set(json_t *ev, const char *key, json_t *v)
{
	if (ev != NULL && v != NULL)
		json_object_set_new(ev, key, v);
	else
		json_decref(v);
	return ev;
}

/* The session's status, in the object and the cache; Claude's stats keep the running time. */
static void fs_set_status(struct fs_server *srv, struct fs_session *s, const char *status)
{
	json_t *obj = fs_obj(s);
	int64_t now = fk_now_us();

	json_object_set_new(obj, "status", json_string(status));
	json_object_set_new(obj, "updated_at", fs_now_json(srv));
	if (fs_is_sb(srv))
		return;
	if (strcmp(status, "running") == 0 && s->run_from < 0) {
		s->run_from = now;
	} else if (strcmp(status, "running") != 0 && s->run_from >= 0) {
		json_t *stats = json_object_get(obj, "stats");
		double active = json_number_value(json_object_get(stats, "active_seconds"));

		if (json_is_object(stats))
			json_object_set_new(stats, "active_seconds",
			                    json_real(active + (double)(now - s->run_from) / 1e6));
		s->run_from = -1;
	}
}

/* Claude's Session.usage and stats.duration_seconds follow the model calls and the clock. */
static void fs_cl_account(struct fs_session *s, json_int_t in, json_int_t out)
{
	json_t *obj = fs_obj(s), *u = json_object_get(obj, "usage");
	json_t *stats = json_object_get(obj, "stats");

	if (json_is_object(u)) {
		json_object_set_new(
		    u, "input_tokens",
		    json_integer(json_integer_value(json_object_get(u, "input_tokens")) + in));
		json_object_set_new(
		    u, "output_tokens",
		    json_integer(json_integer_value(json_object_get(u, "output_tokens")) + out));
	}
	if (json_is_object(stats))
		json_object_set_new(stats, "duration_seconds",
		                    json_real((double)(fk_now_us() - s->created) / 1e6));
}

/* ------------------------------------------------------------------------------------------ */
/* The simulated agent turn                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* What a turn does after its user input: a new answer, or (Claude) the continuation after a
 * tool confirmation or a custom tool result. */
enum fs_step { FS_STEP_TURN, FS_STEP_ALLOW, FS_STEP_DENY, FS_STEP_CUSTOM };

/* One turn in progress: it ends on a loop timer (never by sleeping), by an interrupt, or when
 * the session goes away. Sessions move in the array, so the run names its session by id. */
struct fs_run {
	struct fs_server *srv;
	char sid[FS_ID_LEN];
	struct event *timer;
	enum fk_plan plan;
	enum fs_step step;
	char *text;               /* what the user asked */
	char tool_use[FS_ID_LEN]; /* the tool use a continuation answers */
	char *deny;               /* deny_message of a denial, or NULL */
};

static void fs_run_free(struct fs_run *run)
{
	if (run == NULL)
		return;
	if (run->timer != NULL)
		event_free(run->timer);
	free(run->text);
	free(run->deny);
	free(run);
}

/* The model the session's agent uses (model_used on SandBase's events). */
static const char *fs_model_of(struct fs_server *srv, struct fs_session *s)
{
	json_t *agent = json_object_get(fs_obj(s), "agent"), *list;
	const char *m = fk_get_str(json_object_get(agent, "model"), "id");

	if (m != NULL)
		return m;
	list = json_object_get(srv->store.agents, s->agent_id != NULL ? s->agent_id : "");
	m = fk_get_str(json_object_get(json_array_get(list, json_array_size(list) - 1), "model"),
	               "id");
	return m != NULL ? m : "claude-sonnet-4-5";
}

static json_t *fs_text_content(const char *text)
{
	return json_pack("[{s:s, s:o}]", "type", "text", "text", fk_json_text(text));
}

/* One model call and what it produced: a text and/or a tool use (type, name, input JSON
 * text). SandBase puts the call's tokens and duration on its first event; Claude wraps the
 * outputs in span.model_request_start/end. *tool_id gets the tool use's id. */
static void fs_call(struct fs_server *srv, struct fs_session *s, const char *text,
                    const char *tool_type, const char *name, const char *input, bool ask,
                    char *tool_id)
{
	json_int_t in = 120 + (json_int_t)(text != NULL ? strlen(text) : 0), out = 42;
	const char *model = fs_model_of(srv, s);
	json_t *ev, *start = NULL;
	bool first = true;

	if (!fs_is_sb(srv))
		start = fs_push(srv, s, fs_ev(srv, "span.model_request_start"), false);
	if (text != NULL) {
		ev = fs_ev_set(fs_ev(srv, "agent.message"), "content", fs_text_content(text));
		if (fs_is_sb(srv)) {
			fs_ev_set(ev, "model_used", json_string(model));
			fs_ev_set(ev, "tokens_in", json_integer(in));
			fs_ev_set(ev, "tokens_out", json_integer(out));
			fs_ev_set(ev, "duration_ms", json_integer(900));
			first = false;
		}
		fs_push(srv, s, ev, false);
	}
	if (tool_type != NULL) {
		json_t *args = json_loads(input, 0, NULL);

		ev = fs_ev(srv, tool_type);
		if (fs_is_sb(srv)) {
			fs_ev_set(ev, "content",
			          json_pack("{s:s, s:o}", "name", name, "input", args));
			fs_ev_set(ev, "model_used", json_string(model));
			if (first) {
				fs_ev_set(ev, "tokens_in", json_integer(in));
				fs_ev_set(ev, "tokens_out", json_integer(out));
				fs_ev_set(ev, "duration_ms", json_integer(900));
			}
		} else {
			fs_ev_set(ev, "name", json_string(name));
			fs_ev_set(ev, "input", args);
			if (strcmp(tool_type, "agent.tool_use") == 0) {
				fs_ev_set(ev, "evaluated_permission",
				          json_string(ask ? "ask" : "allow"));
				fs_ev_set(ev, "evaluation",
				          json_pack("{s:s}", "type",
				                    ask ? "always_ask" : "always_allow"));
			}
		}
		if (tool_id != NULL)
			snprintf(tool_id, FS_ID_LEN, "%s", fk_get_str(ev, "id"));
		fs_push(srv, s, ev, false);
	}
	if (fs_is_sb(srv))
		return;
	ev = fs_ev(srv, "span.model_request_end");
	fs_ev_set(ev, "model_request_start_id", json_incref(json_object_get(start, "id")));
	fs_ev_set(ev, "is_error", json_false());
	fs_ev_set(ev, "model_usage",
	          json_pack("{s:I, s:I, s:i, s:i}", "input_tokens", in, "output_tokens", out,
	                    "cache_creation_input_tokens", 0, "cache_read_input_tokens", 0));
	fs_push(srv, s, ev, false);
	fs_cl_account(s, in, out);
}

/* A tool's result. SandBase: agent.tool_result with the text and tool_use_id on top. */
static void fs_result(struct fs_server *srv, struct fs_session *s, const char *tool_use,
                      const char *text, bool is_error)
{
	json_t *ev = fs_ev(srv, "agent.tool_result");

	fs_ev_set(ev, "content", fs_text_content(text));
	fs_ev_set(ev, "tool_use_id", json_string(tool_use));
	if (!fs_is_sb(srv) || is_error)
		fs_ev_set(ev, "is_error", json_boolean(is_error));
	fs_push(srv, s, ev, false);
}

/* session.status_idle; event_ids (stolen, NULL for none) makes it requires_action, and those
 * become the tool uses the session waits on. */
static void fs_idle(struct fs_server *srv, struct fs_session *s, const char *reason,
                    json_t *event_ids)
{
	json_t *stop = json_pack("{s:s}", "type", event_ids != NULL ? "requires_action" : reason);
	json_t *ev = fs_ev(srv, "session.status_idle");

	/* A copy: the pending list shrinks as answers come, the stored event must not. */
	if (event_ids != NULL)
		json_object_set_new(stop, "event_ids", json_copy(event_ids));
	fs_ev_set(ev, "stop_reason", stop);
	if (!fs_is_sb(srv))
		fs_ev_set(ev, "stop_details", json_null());
	fs_push(srv, s, ev, false);
	json_decref(s->pending);
	s->pending = event_ids;
	fs_set_status(srv, s, "idle");
}

static void fs_turn_start(struct fs_server *srv, struct fs_session *s, enum fk_plan plan,
                          enum fs_step step, char *text, const char *tool_use, const char *deny);

/* A user.message still queued behind a running turn (Claude). */
static bool fs_queued(json_t *ev)
{
	const char *type = fk_get_str(ev, "type");

	return type != NULL && strcmp(type, "user.message") == 0 &&
	       json_is_null(json_object_get(ev, "processed_at"));
}

/* Claude queues a user.message sent while the session runs (processed_at null): when the turn
 * is over, the queued messages are taken together as the next turn. */
static void fs_take_queue(struct fs_server *srv, struct fs_session *s)
{
	json_t *ev, *now;
	char *text = NULL;
	size_t i;

	if (fs_is_sb(srv) || s->run != NULL)
		return;
	now = fs_now_json(srv);
	json_array_foreach(s->events, i, ev) {
		json_t *b;
		size_t k;

		if (!fs_queued(ev))
			continue;
		json_object_set(ev, "processed_at", now);
		json_array_foreach(json_object_get(ev, "content"), k, b) {
			if (fk_get_str(b, "text") != NULL) {
				free(text);
				text = strdup(fk_get_str(b, "text"));
			}
		}
		if (text == NULL)
			text = strdup("");
	}
	json_decref(now);
	if (text != NULL)
		fs_turn_start(srv, s, fk_plan_of(text), FS_STEP_TURN, text, NULL, NULL);
}

/* The end of a turn: what the plan produced, then idle (or requires_action). */
static void fs_turn_finish(struct fs_server *srv, struct fs_session *s, struct fs_run *run)
{
	bool sb = fs_is_sb(srv);
	char answer[256], id[FS_ID_LEN];
	enum fk_plan plan = run->plan;

	snprintf(answer, sizeof(answer), "Here is my answer to: %.200s",
	         run->text != NULL ? run->text : "");
	s->run = NULL;
	if (run->step == FS_STEP_ALLOW || run->step == FS_STEP_DENY) {
		fs_result(srv, s, run->tool_use,
		          run->step == FS_STEP_ALLOW ? "Everything up-to-date"
		          : run->deny != NULL        ? run->deny
		                                     : "The user denied this tool call.",
		          run->step == FS_STEP_DENY);
		plan = FK_PLAN_TEXT;
		snprintf(answer, sizeof(answer), "Here is my answer after the tool call.");
	} else if (run->step == FS_STEP_CUSTOM) {
		plan = FK_PLAN_TEXT;
		snprintf(answer, sizeof(answer), "Thanks, the ticket is noted.");
	}
	if (sb && plan == FK_PLAN_ASK) /* no tool confirmations on SandBase */
		plan = FK_PLAN_TOOL;
	if (sb && plan == FK_PLAN_TERMINATE) /* SandBase emits no terminated status */
		plan = FK_PLAN_ERROR;
	switch (plan) {
	case FK_PLAN_TEXT:
	case FK_PLAN_LONG:
		fs_call(srv, s, answer, NULL, NULL, NULL, false, NULL);
		fs_idle(srv, s, "end_turn", NULL);
		break;
	case FK_PLAN_TOOL:
		fs_call(srv, s, "Let me read the notes first.", "agent.tool_use", "read",
		        "{\"file_path\":\"/workspace/notes.md\"}", false, id);
		fs_result(srv, s, id, "# Notes\n- ship the fix", false);
		fs_call(srv, s, answer, NULL, NULL, NULL, false, NULL);
		fs_idle(srv, s, "end_turn", NULL);
		break;
	case FK_PLAN_ASK:
		fs_call(srv, s, "I need to push the branch.", "agent.tool_use", "bash",
		        "{\"command\":\"git push origin main\"}", true, id);
		fs_idle(srv, s, NULL, json_pack("[s]", id));
		break;
	case FK_PLAN_EXTERNAL:
		fs_call(srv, s, "I'll open a follow-up ticket.", "agent.custom_tool_use",
		        "create_ticket", "{\"title\":\"Follow up\",\"priority\":\"high\"}", false,
		        id);
		fs_idle(srv, s, NULL, json_pack("[s]", id));
		break;
	case FK_PLAN_ERROR:
		if (!sb) {
			json_t *start =
			    fs_push(srv, s, fs_ev(srv, "span.model_request_start"), false);
			json_t *end = fs_ev(srv, "span.model_request_end");

			fs_ev_set(end, "model_request_start_id",
			          json_incref(json_object_get(start, "id")));
			fs_ev_set(end, "is_error", json_true());
			fs_ev_set(end, "model_usage",
			          json_pack("{s:i, s:i, s:i, s:i}", "input_tokens", 0,
			                    "output_tokens", 0, "cache_creation_input_tokens", 0,
			                    "cache_read_input_tokens", 0));
			fs_push(srv, s, end, false);
		}
		fs_push(srv, s,
		        sb ? fs_ev_set(fs_ev(srv, "session.error"), "data",
		                       json_pack("{s:{s:s, s:s}}", "error", "type",
		                                 "model_overloaded", "message",
		                                 "The model is overloaded; the request was retried "
		                                 "without success."))
		           : fs_ev_set(fs_ev(srv, "session.error"), "error",
		                       json_pack("{s:s, s:s, s:{s:s}}", "type",
		                                 "model_overloaded_error", "message",
		                                 "The model is overloaded; the request was retried "
		                                 "without success.",
		                                 "retry_status", "type", "exhausted")),
		        false);
		fs_idle(srv, s, sb ? "end_turn" : "retries_exhausted", NULL);
		break;
	case FK_PLAN_TERMINATE:
		/* Claude: a terminal error, then the session is over for good */
		fs_push(srv, s,
		        fs_ev_set(fs_ev(srv, "session.error"), "error",
		                  json_pack("{s:s, s:s, s:{s:s}}", "type", "unknown_error",
		                            "message", "The session failed and cannot continue.",
		                            "retry_status", "type", "terminal")),
		        false);
		fs_push(srv, s, fs_ev(srv, "session.status_terminated"), false);
		fs_set_status(srv, s, "terminated");
		break;
	}
	fs_run_free(run);
	fs_refresh(&srv->store, s);
	fs_take_queue(srv, s);
}

static void fs_run_fire(evutil_socket_t fd, short what, void *arg)
{
	struct fs_run *run = arg;
	struct fs_session *s = fs_lookup(&run->srv->store, run->sid);

	(void)fd;
	(void)what;
	if (s == NULL || s->run != run) { /* cannot happen: deletion frees the run */
		fs_run_free(run);
		return;
	}
	fs_turn_finish(run->srv, s, run);
}

/* Starts a turn: status running (and its event), then a timer of run_ms ([run:long]: none, it
 * runs until interrupted). text is taken. */
static void fs_turn_start(struct fs_server *srv, struct fs_session *s, enum fk_plan plan,
                          enum fs_step step, char *text, const char *tool_use, const char *deny)
{
	struct fs_run *run = calloc(1, sizeof(*run));
	struct timeval tv = {.tv_sec = srv->run_ms / 1000, .tv_usec = (srv->run_ms % 1000) * 1000};

	if (run == NULL) {
		free(text);
		return;
	}
	*run = (struct fs_run){.srv = srv, .plan = plan, .step = step, .text = text};
	snprintf(run->sid, sizeof(run->sid), "%s", s->id);
	snprintf(run->tool_use, sizeof(run->tool_use), "%s", tool_use != NULL ? tool_use : "");
	run->deny = deny != NULL ? strdup(deny) : NULL;
	json_decref(s->pending);
	s->pending = NULL;
	fs_push(srv, s, fs_ev(srv, "session.status_running"), false);
	fs_set_status(srv, s, "running");
	s->run = run;
	if (plan != FK_PLAN_LONG || step != FS_STEP_TURN) {
		run->timer = evtimer_new(srv->fk.base, fs_run_fire, run);
		if (run->timer == NULL || evtimer_add(run->timer, &tv) != 0)
			fprintf(stderr, FS_NAME ": cannot arm a run timer\n");
	}
	fs_refresh(&srv->store, s);
}

/* user.interrupt: a running turn (simulated, or one the data says runs) stops where it is and
 * the session goes idle (SandBase: user_interrupt; Claude: end_turn); a session waiting on a
 * tool use stops waiting. Claude's queued messages are consumed by the interrupt. */
static void fs_interrupt(struct fs_server *srv, struct fs_session *s)
{
	bool busy = s->run != NULL || strcmp(s->status, "running") == 0 ||
	            strcmp(s->status, "rescheduling") == 0;
	json_t *ev, *now = fs_now_json(srv);
	size_t i;

	fs_run_free(s->run);
	s->run = NULL;
	json_array_foreach(s->events, i, ev) {
		if (!fs_is_sb(srv) && fs_queued(ev))
			json_object_set(ev, "processed_at", now);
	}
	json_decref(now);
	if (busy || s->pending != NULL)
		fs_idle(srv, s, fs_is_sb(srv) ? "user_interrupt" : "end_turn", NULL);
	fs_refresh(&srv->store, s);
}

/* Stops every turn without a word (shutdown). */
static void fs_runs_stop(struct fs_store *st)
{
	for (size_t i = 0; i < st->nsess; i++) {
		fs_run_free(st->sess[i].run);
		st->sess[i].run = NULL;
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Write routes: validation                                                                     */
/* ------------------------------------------------------------------------------------------ */

static const char *const fs_sb_unsupported[] = {"user.tool_confirmation", "user.custom_tool_result",
                                                "user.tool_result", "user.define_outcome"};

static bool fs_in(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; s != NULL && i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

/* Content blocks of the given kinds (text needs text, the others a source object). Returns
 * NULL, or what is wrong. */
static const char *fs_check_blocks(json_t *content, bool media)
{
	json_t *b;
	size_t i;

	if (!json_is_array(content) || json_array_size(content) == 0)
		return "content must be a non-empty array of content blocks";
	json_array_foreach(content, i, b) {
		const char *t = fk_get_str(b, "type");

		if (t != NULL && strcmp(t, "text") == 0 &&
		    json_is_string(json_object_get(b, "text")))
			continue;
		if (media && t != NULL && (strcmp(t, "image") == 0 || strcmp(t, "document") == 0) &&
		    json_is_object(json_object_get(b, "source")))
			continue;
		return media ? "content blocks must be text (with text), image or document (with "
		               "source)"
		             : "content blocks must be text blocks with text";
	}
	return NULL;
}

/* One input event of a batch (events[i]). initial: in POST /v1/sessions' initial_events.
 * Returns 0, or -1 with r holding the 400/422 that rejects the whole batch. */
static int fs_check_event(struct fs_server *srv, json_t *ev, size_t i, bool initial,
                          struct fk_reply *r)
{
	static const char *const sb_known[] = {"user.message", "user.interrupt",
	                                       "interrupt.response", "system.message"};
	static const char *const cl_known[] = {"user.message", "user.interrupt",
	                                       "user.tool_confirmation", "user.custom_tool_result",
	                                       "user.define_outcome"};
	static const char *const keys_msg[] = {"type", "content"};
	static const char *const keys_int[] = {"type", "session_thread_id"};
	static const char *const keys_resp[] = {"type", "interrupt_id", "response"};
	const char *type = fk_get_str(ev, "type"), *bad = NULL;
	const char *const *keys = keys_msg;
	size_t nkeys = FK_COUNT(keys_msg);
	char msg[200];
	const char *k;
	json_t *v;

	if (!json_is_object(ev) || type == NULL) {
		snprintf(msg, sizeof(msg), "events[%zu]: type is required", i);
		fs_bad_request(srv, r, msg);
		return -1;
	}
	if (fs_is_sb(srv)) {
		if (json_object_get(ev, "session_thread_id") != NULL) {
			snprintf(
			    msg, sizeof(msg),
			    "events[%zu]: session_thread_id is not supported: SandBase sessions "
			    "have a single thread",
			    i);
			fs_reply_error(srv, r, 422, "Unprocessable Entity",
			               "unsupported_multiagent", msg);
			return -1;
		}
		if (fs_in(type, fs_sb_unsupported, FK_COUNT(fs_sb_unsupported)) ||
		    (initial && fs_in(type, sb_known, FK_COUNT(sb_known)) &&
		     strcmp(type, "user.message") != 0)) {
			snprintf(msg, sizeof(msg), "events[%zu]: event type %.60s is not supported",
			         i, type);
			fs_reply_error(srv, r, 422, "Unprocessable Entity",
			               "unsupported_event_type", msg);
			return -1;
		}
		if (!fs_in(type, sb_known, FK_COUNT(sb_known))) {
			snprintf(msg, sizeof(msg), "events[%zu]: unknown event type %.60s", i,
			         type);
			fs_bad_request(srv, r, msg);
			return -1;
		}
		if (strcmp(type, "user.interrupt") == 0) {
			keys = keys_int;
			nkeys = FK_COUNT(keys_int);
		} else if (strcmp(type, "interrupt.response") == 0) {
			keys = keys_resp;
			nkeys = FK_COUNT(keys_resp);
		}
		/* additionalProperties: false */
		json_object_foreach(ev, k, v) {
			if (!fs_in(k, keys, nkeys)) {
				snprintf(msg, sizeof(msg), "events[%zu]: unknown field %.60s", i,
				         k);
				fs_bad_request(srv, r, msg);
				return -1;
			}
		}
	} else if (!fs_in(type, cl_known, FK_COUNT(cl_known)) ||
	           (initial && strcmp(type, "user.message") != 0 &&
	            strcmp(type, "user.define_outcome") != 0)) {
		snprintf(msg, sizeof(msg), "events[%zu].type: %.60s cannot be sent%s", i, type,
		         initial ? " in initial_events" : "");
		fs_bad_request(srv, r, msg);
		return -1;
	}
	if (strcmp(type, "user.message") == 0)
		bad = fs_check_blocks(json_object_get(ev, "content"), true);
	else if (strcmp(type, "system.message") == 0)
		bad = fs_check_blocks(json_object_get(ev, "content"), false);
	else if (strcmp(type, "interrupt.response") == 0 &&
	         (!json_is_string(json_object_get(ev, "interrupt_id")) ||
	          !json_is_object(json_object_get(ev, "response"))))
		bad = "interrupt_id (string) and response (object) are required";
	else if (strcmp(type, "user.tool_confirmation") == 0 &&
	         (!json_is_string(json_object_get(ev, "tool_use_id")) ||
	          !fs_in(fk_get_str(ev, "result"), (const char *const[]){"allow", "deny"}, 2) ||
	          (json_object_get(ev, "deny_message") != NULL &&
	           strcmp(fk_get_str(ev, "result"), "deny") != 0)))
		bad =
		    "tool_use_id and result (allow|deny) are required; deny_message only with deny";
	else if (strcmp(type, "user.custom_tool_result") == 0 &&
	         !json_is_string(json_object_get(ev, "custom_tool_use_id")))
		bad = "custom_tool_use_id is required";
	else if (strcmp(type, "user.define_outcome") == 0 &&
	         (!json_is_string(json_object_get(ev, "description")) ||
	          !json_is_object(json_object_get(ev, "rubric"))))
		bad = "description and rubric are required";
	if (bad != NULL) {
		snprintf(msg, sizeof(msg), "events[%zu]: %s", i, bad);
		fs_bad_request(srv, r, msg);
		return -1;
	}
	return 0;
}

/* Every event of a batch, in order; the first problem rejects all of them. */
static int fs_check_batch(struct fs_server *srv, json_t *events, bool initial, struct fk_reply *r)
{
	json_t *ev;
	size_t i;

	json_array_foreach(events, i, ev) {
		if (fs_check_event(srv, ev, i, initial, r))
			return -1;
	}
	return 0;
}

/* Is the tool use with this id one the session waits on, of the kind the answer needs? */
static bool fs_waits_on(struct fs_session *s, json_t *pending, const char *id, bool custom)
{
	json_t *p, *ev;
	size_t i;
	bool listed = false;

	json_array_foreach(pending, i, p) {
		listed = listed || (json_is_string(p) && strcmp(json_string_value(p), id) == 0);
	}
	if (!listed)
		return false;
	json_array_foreach(s->events, i, ev) {
		const char *t = fk_get_str(ev, "type");

		if (strcmp(fk_get_str(ev, "id"), id) == 0 && t != NULL)
			return custom ? strcmp(t, "agent.custom_tool_use") == 0
			              : strcmp(t, "agent.tool_use") == 0 ||
			                    strcmp(t, "agent.mcp_tool_use") == 0;
	}
	return false;
}

/* Whether the session can take the batch now: 409s for a running SandBase session (it takes
 * messages only when idle), 400s for Claude answers to tool uses it does not wait on. The
 * batch is played in order against a copy of the state. */
static int fs_check_state(struct fs_server *srv, struct fs_session *s, json_t *events,
                          struct fk_reply *r)
{
	bool running = s->run != NULL || strcmp(s->status, "running") == 0 ||
	               strcmp(s->status, "rescheduling") == 0;
	json_t *pending = s->pending != NULL ? json_copy(s->pending) : json_array(), *ev;
	int rc = 0;
	size_t i;

	json_array_foreach(events, i, ev) {
		const char *type = fk_get_str(ev, "type");
		bool custom = strcmp(type, "user.custom_tool_result") == 0;

		if (strcmp(type, "user.message") == 0) {
			if (running && fs_is_sb(srv)) {
				fs_conflict(
				    srv, r, "conflict",
				    "Session is running: send user.interrupt, wait for idle, then "
				    "send the message");
				rc = -1;
				break;
			}
			running = true;
			json_array_clear(pending);
		} else if (strcmp(type, "user.interrupt") == 0) {
			running = false;
			json_array_clear(pending);
		} else if (custom || strcmp(type, "user.tool_confirmation") == 0) {
			const char *id =
			    fk_get_str(ev, custom ? "custom_tool_use_id" : "tool_use_id");
			char msg[160];

			if (!fs_waits_on(s, pending, id, custom)) {
				snprintf(msg, sizeof(msg),
				         "events[%zu]: %.60s is not a tool use awaiting %s", i, id,
				         custom ? "a result" : "confirmation");
				fs_bad_request(srv, r, msg);
				rc = -1;
				break;
			}
			for (size_t k = 0; k < json_array_size(pending); k++)
				if (strcmp(json_string_value(json_array_get(pending, k)), id) == 0)
					json_array_remove(pending, k--);
			running = json_array_size(pending) == 0;
		}
	}
	json_decref(pending);
	return rc;
}

/* The text of a user.message, for the simulated agent (malloc'd). */
static char *fs_event_text(json_t *ev)
{
	json_t *b;
	size_t i;
	const char *last = "";

	json_array_foreach(json_object_get(ev, "content"), i, b) {
		if (fk_get_str(b, "text") != NULL)
			last = fk_get_str(b, "text");
	}
	return strdup(last);
}

/* Plays an accepted batch; the events as stored go into accepted (when not NULL). */
static void fs_apply_batch(struct fs_server *srv, struct fs_session *s, json_t *events,
                           json_t *accepted)
{
	json_t *in, *ev;
	size_t i;

	json_array_foreach(events, i, in) {
		const char *type = fk_get_str(in, "type");
		bool running = s->run != NULL || strcmp(s->status, "running") == 0;
		json_t *copy = json_deep_copy(in);
		char id[FS_ID_LEN];

		fs_mint(srv, "sevt_", id);
		json_object_del(copy, "type");
		ev = json_pack("{s:s, s:s}", "id", id, "type", type);
		json_object_update(ev, copy);
		json_decref(copy);
		if (strcmp(type, "user.interrupt") == 0 && fs_is_sb(srv))
			json_object_set_new(ev, "content", json_null());
		if (strcmp(type, "interrupt.response") == 0) {
			json_t *data = json_pack("{s:O, s:O}", "interrupt_id",
			                         json_object_get(in, "interrupt_id"), "response",
			                         json_object_get(in, "response"));

			json_object_del(ev, "interrupt_id");
			json_object_del(ev, "response");
			json_object_set_new(ev, "data", data);
		}
		if (strcmp(type, "user.define_outcome") == 0) {
			char oid[FS_ID_LEN];

			fs_mint(srv, "outc_", oid);
			json_object_set_new(ev, "outcome_id", json_string(oid));
			if (json_object_get(ev, "max_iterations") == NULL)
				json_object_set_new(ev, "max_iterations", json_integer(3));
		}
		ev = fs_push(srv, s, ev, strcmp(type, "user.message") == 0 && running);
		if (ev != NULL && accepted != NULL)
			json_array_append(accepted, ev);
		if (ev == NULL)
			continue;
		if (strcmp(type, "user.message") == 0 && !running) {
			char *text = fs_event_text(in);

			fs_turn_start(srv, s, fk_plan_of(text), FS_STEP_TURN, text, NULL, NULL);
		} else if (strcmp(type, "user.interrupt") == 0) {
			fs_interrupt(srv, s);
		} else if (strcmp(type, "user.tool_confirmation") == 0 ||
		           strcmp(type, "user.custom_tool_result") == 0) {
			bool custom = type[5] == 'c';
			const char *tid =
			    fk_get_str(in, custom ? "custom_tool_use_id" : "tool_use_id");

			for (size_t k = 0; k < json_array_size(s->pending); k++)
				if (strcmp(json_string_value(json_array_get(s->pending, k)), tid) ==
				    0)
					json_array_remove(s->pending, k--);
			if (json_array_size(s->pending) > 0)
				continue;
			fs_turn_start(srv, s, FK_PLAN_TEXT,
			              custom ? FS_STEP_CUSTOM
			              : strcmp(fk_get_str(in, "result"), "allow") == 0
			                  ? FS_STEP_ALLOW
			                  : FS_STEP_DENY,
			              strdup(""), tid, fk_get_str(in, "deny_message"));
		}
	}
	fs_refresh(&srv->store, s);
}

/* ------------------------------------------------------------------------------------------ */
/* Write routes                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/* Adds a session entry (taken) and re-sorts. Returns the session (look it up again after any
 * later insertion: the array moves), or NULL. */
static struct fs_session *fs_add_session(struct fs_store *st, json_t *entry)
{
	const char *id = fk_get_str(json_object_get(entry, "session"), "id");
	char err[256];

	if (st->nsess == st->cap) {
		struct fs_session *grown = realloc(st->sess, st->cap * 2 * sizeof(*grown));

		if (grown == NULL) {
			json_decref(entry);
			return NULL;
		}
		memset(grown + st->cap, 0, st->cap * sizeof(*grown));
		st->sess = grown;
		st->cap *= 2;
	}
	st->nsess++;
	if (fs_index_session(st, &st->sess[st->nsess - 1], entry, err, sizeof(err)) ||
	    fs_reindex(st, err, sizeof(err))) {
		fprintf(stderr, FS_NAME ": %s\n", err);
		json_decref(entry);
		return NULL;
	}
	json_decref(entry); /* the session holds it */
	return fs_lookup(st, id);
}

/* Removes a session and its history; its turn stops without a word. */
static void fs_remove_session(struct fs_store *st, struct fs_session *s)
{
	size_t k = (size_t)(s - st->sess);

	fs_run_free(s->run);
	fk_text_unref(s->text);
	free(s->ev_time);
	json_decref(s->pending);
	json_decref(s->entry);
	memmove(s, s + 1, (st->nsess - k - 1) * sizeof(*s));
	st->nsess--;
	memset(&st->sess[st->nsess], 0, sizeof(*s));
	fs_reindex(st, NULL, 0);
}

/* The agent version a create names: the latest, or the one asked for. NULL when unknown. */
static json_t *fs_find_agent(struct fs_store *st, const char *id, bool has_version,
                             json_int_t version)
{
	json_t *list = json_object_get(st->agents, id != NULL ? id : ""), *a;
	size_t i;

	if (!has_version)
		return json_array_get(list, json_array_size(list) - 1);
	json_array_foreach(list, i, a) {
		if (json_integer_value(json_object_get(a, "version")) == version)
			return a;
	}
	return NULL;
}

/* A member of the data's sessions of this agent (and version, when version > 0): the
 * environment an agent owns and the AgentVersion ids live there. */
static const char *fs_agent_fact(struct fs_store *st, const char *agent, json_int_t version,
                                 const char *key)
{
	for (size_t i = 0; i < st->nsess; i++) {
		struct fs_session *s = &st->sess[i];

		if (s->agent_id != NULL && strcmp(s->agent_id, agent) == 0 &&
		    (version <= 0 || (s->has_version && s->version == version)) &&
		    fk_get_str(fs_obj(s), key) != NULL)
			return fk_get_str(fs_obj(s), key);
	}
	return NULL;
}

/* SandBase's agent_version_id for (agent, version): the data's, or one minted once. */
static const char *fs_version_id(struct fs_server *srv, const char *agent, json_int_t version)
{
	char key[FS_ID_LEN + 24], id[FS_ID_LEN];
	const char *known = fs_agent_fact(&srv->store, agent, version, "agent_version_id");

	if (known != NULL)
		return known;
	snprintf(key, sizeof(key), "%s@%" PRId64, agent, (int64_t)version);
	if (json_object_get(srv->minted, key) == NULL) {
		fs_mint(srv, "agver_", id);
		json_object_set_new(srv->minted, key, json_string(id));
	}
	return fk_get_str(srv->minted, key);
}

/* The environment an agent owns: the one its sessions in the data use, or one minted once. */
static const char *fs_agent_env(struct fs_server *srv, const char *agent)
{
	char id[FS_ID_LEN];
	const char *known = fs_agent_fact(&srv->store, agent, 0, "environment_id");

	if (known != NULL)
		return known;
	if (json_object_get(srv->minted, agent) == NULL) {
		fs_mint(srv, "env_", id);
		json_object_set_new(srv->minted, agent, json_string(id));
	}
	return fk_get_str(srv->minted, agent);
}

/* Resolves SandBase's agent_version_id to the (agent, version) the data knows it for. */
static bool fs_version_by_id(struct fs_server *srv, const char *vid, const char **agent,
                             json_int_t *version)
{
	struct fs_store *st = &srv->store;
	const char *k;
	json_t *v;

	for (size_t i = 0; i < st->nsess; i++) {
		json_t *obj = fs_obj(&st->sess[i]);

		if (fk_get_str(obj, "agent_version_id") != NULL &&
		    strcmp(fk_get_str(obj, "agent_version_id"), vid) == 0 &&
		    st->sess[i].has_version) {
			*agent = st->sess[i].agent_id;
			*version = st->sess[i].version;
			return *agent != NULL;
		}
	}
	/* A version id minted here: "<agent>@<version>" names it. */
	json_object_foreach(srv->minted, k, v) {
		const char *at = strchr(k, '@'), *ak;
		json_t *av;

		if (at == NULL || strcmp(json_string_value(v), vid) != 0)
			continue;
		json_object_foreach(st->agents, ak, av) {
			if (strlen(ak) == (size_t)(at - k) &&
			    strncmp(ak, k, (size_t)(at - k)) == 0) {
				*agent = ak;
				*version = (json_int_t)strtoll(at + 1, NULL, 10);
				return true;
			}
		}
	}
	return false;
}

/* Claude's resources as a session keeps them: files and repositories get an id and times
 * (and never keep a token). New reference. */
static json_t *fs_cl_resources_in(struct fs_server *srv, json_t *given)
{
	json_t *out = json_array(), *res;
	size_t i;

	json_array_foreach(given, i, res) {
		json_t *copy = json_deep_copy(res);
		const char *t = fk_get_str(res, "type");
		char id[FS_ID_LEN];

		if (copy == NULL)
			continue;
		json_object_del(copy, "authorization_token");
		if (t != NULL && (strcmp(t, "file") == 0 || strcmp(t, "github_repository") == 0)) {
			fs_mint(srv, "sesrsc_", id);
			json_object_set_new(copy, "id", json_string(id));
			json_object_set_new(copy, "created_at", fs_now_json(srv));
			json_object_set_new(copy, "updated_at", fs_now_json(srv));
		}
		json_array_append_new(out, copy);
	}
	return out;
}

/* The new session object. agent is the version used (borrowed). New reference. */
static json_t *fs_new_session(struct fs_server *srv, const char *id, json_t *agent, json_t *body)
{
	const char *aid = fk_get_str(agent, "id"), *env = fk_get_str(body, "environment_id");
	json_int_t ver = json_integer_value(json_object_get(agent, "version"));
	json_t *meta = json_object_get(body, "metadata"), *title = json_object_get(body, "title");
	json_t *now = fs_now_json(srv);

	if (!json_is_object(meta))
		meta = NULL;
	if (!json_is_string(title))
		title = json_null();
	if (fs_is_sb(srv))
		return json_pack("{s:s, s:s, s:s, s:O, s:s, s:I, s:s, s:o, s:s, s:s, s:n, s:o, s:n,"
		                 " s:O, s:o}",
		                 "id", id, "type", "session", "status", "idle", "title", title,
		                 "agent_id", aid, "agent_version", ver, "agent_version_id",
		                 fs_version_id(srv, aid, ver), "agent", fs_sb_snapshot(agent),
		                 "environment_id", env != NULL ? env : fs_agent_env(srv, aid),
		                 "source", "direct", "usage", "metadata",
		                 meta != NULL ? json_deep_copy(meta) : json_object(), "archived_at",
		                 "created_at", now, "updated_at", now);
	return json_pack(
	    "{s:s, s:s, s:o, s:n, s:O, s:O, s:s, s:o, s:[], s:o, s:{s:f, s:f}, s:s, s:O, s:o,"
	    " s:{s:i, s:i, s:i, s:{s:i, s:i}}, s:o}",
	    "id", id, "type", "session", "agent", json_deep_copy(agent), "archived_at", "budget",
	    json_object_get(body, "budget") != NULL ? json_object_get(body, "budget") : json_null(),
	    "created_at", now, "environment_id", env != NULL ? env : "", "metadata",
	    meta != NULL ? json_deep_copy(meta) : json_object(), "outcome_evaluations", "resources",
	    fs_cl_resources_in(srv, json_object_get(body, "resources")), "stats", "active_seconds",
	    0.0, "duration_seconds", 0.0, "status", "idle", "title", title, "updated_at", now,
	    "usage", "input_tokens", 0, "output_tokens", 0, "cache_read_input_tokens", 0,
	    "cache_creation", "ephemeral_1h_input_tokens", 0, "ephemeral_5m_input_tokens", 0,
	    "vault_ids",
	    json_is_array(json_object_get(body, "vault_ids"))
	        ? json_deep_copy(json_object_get(body, "vault_ids"))
	        : json_array());
}

/* The members of POST /v1/sessions each dialect knows. */
static const char *const fs_sb_create_keys[] = {
    "agent", "agent_version_id", "environment_id", "initial_events", "initial_event",
    "title", "metadata",         "resources",      "vault_ids"};

/* Which agent version a create asks for. Returns it (borrowed), or NULL with r holding the
 * 400/404. */
static json_t *fs_create_agent(struct fs_server *srv, json_t *body, struct fk_reply *r)
{
	json_t *a = json_object_get(body, "agent"), *found;
	const char *aid = json_is_string(a) ? json_string_value(a) : fk_get_str(a, "id");
	const char *vid = fk_get_str(body, "agent_version_id"), *type = fk_get_str(a, "type");
	json_t *v = json_object_get(a, "version");
	json_int_t version = json_integer_value(v);
	bool has_version = json_is_integer(v);

	if (a == NULL) {
		fs_bad_request(srv, r,
		               fs_is_sb(srv) ? "agent is required" : "agent: Field required");
		return NULL;
	}
	if (!fs_is_sb(srv) && type != NULL && strcmp(type, "agent_with_overrides") == 0) {
		fs_bad_request(srv, r, "agent: agent_with_overrides is not supported by " FS_NAME);
		return NULL;
	}
	if (aid == NULL || (json_is_object(a) && (type == NULL || strcmp(type, "agent") != 0)) ||
	    (v != NULL && (!has_version || version < 1))) {
		fs_bad_request(srv, r,
		               "agent must be an agent id or {\"type\": \"agent\", \"id\": ..., "
		               "\"version\": N >= 1}");
		return NULL;
	}
	if (fs_is_sb(srv) && vid != NULL) {
		const char *va = NULL;

		if (!fs_version_by_id(srv, vid, &va, &version) || strcmp(va, aid) != 0) {
			fs_not_found(srv, r, "Agent version not found");
			return NULL;
		}
		has_version = true; /* agent_version_id wins over agent.version */
	}
	found = fs_find_agent(&srv->store, aid, has_version, version);
	if (found == NULL)
		fs_not_found(srv, r,
		             json_object_get(srv->store.agents, aid) == NULL
		                 ? "Agent not found"
		                 : "Agent version not found");
	return found;
}

/* POST /v1/sessions. SandBase: additionalProperties false, resources/vault_ids refused,
 * initial_events (or its deprecated alias) of at most 50 user.message; the answer is the
 * session as created, before the events run. Claude: environment_id required, initial_events
 * of user.message / user.define_outcome. */
static void fs_h_create(struct fs_server *srv, struct evhttp_request *req, struct fk_reply *r)
{
	json_t *body = fs_read_body(srv, req, r), *agent, *events, *alias, *snap = NULL;
	struct fs_session *s;
	const char *key;
	char id[FS_ID_LEN], msg[160];
	json_t *v;

	if (body == NULL)
		return;
	if (fs_is_sb(srv)) {
		json_object_foreach(body, key, v) {
			if (strcmp(key, "resources") == 0 || strcmp(key, "vault_ids") == 0) {
				snprintf(msg, sizeof(msg), "%s is not supported yet", key);
				fs_bad_request(srv, r, msg);
				goto out;
			}
			if (!fs_in(key, fs_sb_create_keys, FK_COUNT(fs_sb_create_keys))) {
				snprintf(msg, sizeof(msg), "unknown field %.80s", key);
				fs_bad_request(srv, r, msg);
				goto out;
			}
		}
	} else if (!json_is_string(json_object_get(body, "environment_id"))) {
		fs_bad_request(srv, r, "environment_id: Field required");
		goto out;
	}
	events = json_object_get(body, "initial_events");
	alias = json_object_get(body, "initial_event");
	if (fs_is_sb(srv) && events != NULL && alias != NULL) {
		fs_bad_request(srv, r,
		               "initial_event is a deprecated alias of initial_events: send one");
		goto out;
	}
	if (fs_is_sb(srv) && events == NULL)
		events = alias;
	if (events != NULL && (!json_is_array(events) || json_array_size(events) > 50)) {
		fs_bad_request(srv, r, "initial_events must be an array of at most 50 events");
		goto out;
	}
	if ((json_object_get(body, "title") != NULL &&
	     !json_is_string(json_object_get(body, "title")) &&
	     !json_is_null(json_object_get(body, "title"))) ||
	    (json_object_get(body, "metadata") != NULL &&
	     !json_is_object(json_object_get(body, "metadata")) &&
	     !json_is_null(json_object_get(body, "metadata")))) {
		fs_bad_request(srv, r, "title must be a string and metadata an object");
		goto out;
	}
	agent = fs_create_agent(srv, body, r);
	if (agent == NULL || fs_check_batch(srv, events, true, r))
		goto out;
	fs_mint(srv, fs_is_sb(srv) ? "sess_" : "sesn_", id);
	fs_note_write(srv, id);
	s = fs_add_session(&srv->store, json_pack("{s:o, s:[]}", "session",
	                                          fs_new_session(srv, id, agent, body), "events"));
	if (s == NULL) {
		fs_fail(&srv->fk, r);
		goto out;
	}
	snap = json_deep_copy(fs_obj(s));
	fs_apply_batch(srv, s, events, NULL);
	/* SandBase answers with the session as it was created; Claude with what it is now. */
	fs_reply_json(r, 200, "OK",
	              fs_is_sb(srv) ? snap : json_deep_copy(fs_obj(fs_lookup(&srv->store, id))));
	if (!fs_is_sb(srv))
		json_decref(snap);
out:
	json_decref(body);
}

/* Applies a metadata patch: a string (any non-null value on SandBase) upserts, null deletes;
 * a whole null clears. */
static void fs_patch_metadata(json_t *obj, json_t *patch)
{
	json_t *meta = json_object_get(obj, "metadata"), *v;
	const char *k;

	if (!json_is_object(meta) || json_is_null(patch)) {
		meta = json_object();
		json_object_set_new(obj, "metadata", meta);
	}
	json_object_foreach(patch, k, v) {
		if (json_is_null(v))
			json_object_del(meta, k);
		else
			json_object_set(meta, k, v);
	}
}

/* POST /v1/sessions/{id}: title, metadata (a patch), agent {tools, mcp_servers} (a full
 * replacement in the session's own snapshot); vault_ids refused. Claude also takes budget
 * (replaced, or removed with null, never added) and records a session.updated event. */
static void fs_h_update(struct fs_server *srv, const char *sid, struct evhttp_request *req,
                        struct fk_reply *r)
{
	struct fs_session *s = fs_lookup(&srv->store, sid);
	json_t *body, *obj, *agent, *upd, *changed = NULL, *title, *meta, *budget;

	if (s == NULL) {
		fs_not_found(srv, r, "Session not found");
		return;
	}
	body = fs_read_body(srv, req, r);
	if (body == NULL)
		return;
	fs_note_write(srv, sid);
	obj = fs_obj(s);
	title = json_object_get(body, "title");
	meta = json_object_get(body, "metadata");
	upd = json_object_get(body, "agent");
	budget = json_object_get(body, "budget");
	if (json_object_get(body, "vault_ids") != NULL) {
		fs_bad_request(srv, r, "vault_ids cannot be changed on a session");
		goto out;
	}
	if ((title != NULL && !json_is_string(title) && !json_is_null(title)) ||
	    (meta != NULL && !json_is_object(meta) && !json_is_null(meta)) ||
	    (upd != NULL && !json_is_object(upd)) ||
	    (upd != NULL && json_object_get(upd, "tools") != NULL &&
	     !json_is_array(json_object_get(upd, "tools"))) ||
	    (upd != NULL && json_object_get(upd, "mcp_servers") != NULL &&
	     !json_is_array(json_object_get(upd, "mcp_servers")))) {
		fs_bad_request(srv, r,
		               "title must be a string, metadata an object, agent {tools: [...], "
		               "mcp_servers: [...]}");
		goto out;
	}
	if (!fs_is_sb(srv) && budget != NULL && !json_is_null(budget) &&
	    json_is_null(json_object_get(obj, "budget"))) {
		fs_bad_request(srv, r, "budget: a session created without a budget cannot get one");
		goto out;
	}
	if (!fs_is_sb(srv) && upd != NULL && s->run != NULL) {
		fs_conflict(srv, r, "conflict",
		            "The agent cannot be changed while the session runs");
		goto out;
	}
	changed = fs_ev(srv, "session.updated");
	if (title != NULL) {
		json_object_set(obj, "title", title);
		json_object_set(changed, "title", title);
	}
	if (meta != NULL) {
		fs_patch_metadata(obj, meta);
		json_object_set(changed, "metadata", json_object_get(obj, "metadata"));
	}
	if (upd != NULL) {
		agent = json_object_get(obj, "agent");
		if (!json_is_object(agent) && fs_is_sb(srv)) {
			/* The session had only a reference: it gets the pinned snapshot to
			 * override. */
			agent = fs_sb_snapshot(
			    fs_find_agent(&srv->store, s->agent_id, s->has_version, s->version));
			json_object_set_new(obj, "agent", agent != NULL ? agent : json_object());
			agent = json_object_get(obj, "agent");
		}
		if (json_object_get(upd, "tools") != NULL)
			json_object_set(agent, "tools", json_object_get(upd, "tools"));
		if (json_object_get(upd, "mcp_servers") != NULL)
			json_object_set(agent, "mcp_servers", json_object_get(upd, "mcp_servers"));
		json_object_set(changed, "agent", agent);
	}
	if (!fs_is_sb(srv) && budget != NULL) {
		json_object_set(obj, "budget", budget);
		json_object_set(changed, "budget", budget);
	}
	json_object_set_new(obj, "updated_at", fs_now_json(srv));
	if (!fs_is_sb(srv)) /* SandBase does not emit session.updated */
		fs_push(srv, s, json_incref(changed), false);
	fs_refresh(&srv->store, s);
	fs_reply_json(r, 200, "OK", json_incref(obj));
out:
	json_decref(changed);
	json_decref(body);
}

/* POST /v1/sessions/{id}/archive: archived_at is set (once); the history stays readable. */
static void fs_h_archive(struct fs_server *srv, const char *sid, struct fk_reply *r)
{
	struct fs_session *s = fs_lookup(&srv->store, sid);
	json_t *obj;

	if (s == NULL) {
		fs_not_found(srv, r, "Session not found");
		return;
	}
	fs_note_write(srv, sid);
	obj = fs_obj(s);
	if (!s->archived) {
		json_object_set_new(obj, "archived_at", fs_now_json(srv));
		json_object_set_new(obj, "updated_at", fs_now_json(srv));
		fs_refresh(&srv->store, s);
	}
	fs_reply_json(r, 200, "OK", json_incref(obj));
}

/* Claude: a deleted session's open streams get session.deleted, then end cleanly (SandBase's
 * stay open, silent). */
static void fs_cl_gone(struct fs_server *srv, const char *sid)
{
	struct evbuffer *buf;
	json_t *ev;
	char id[FS_ID_LEN];

	if (srv->fk.streams == NULL)
		return;
	fs_antid(&srv->gone_ids, "sevt_", id, sizeof(id));
	ev = json_pack("{s:s, s:s, s:o}", "type", "session.deleted", "id", id, "processed_at",
	               fs_now_json(srv));
	buf = evbuffer_new();
	if (ev != NULL && buf != NULL && fs_frame(srv, buf, ev) == 0)
		fk_stream_finish(&srv->fk, sid, (const char *)evbuffer_pullup(buf, -1),
		                 evbuffer_get_length(buf));
	if (buf != NULL)
		evbuffer_free(buf);
	json_decref(ev);
}

/* DELETE /v1/sessions/{id}: only when neither running nor rescheduling (409 otherwise);
 * {id, type: "session_deleted"}. */
static void fs_h_delete(struct fs_server *srv, const char *sid, struct fk_reply *r)
{
	struct fs_session *s = fs_lookup(&srv->store, sid);
	json_t *answer;

	if (s == NULL) {
		fs_not_found(srv, r, "Session not found");
		return;
	}
	fs_note_write(srv, sid);
	if (s->run != NULL || strcmp(s->status, "running") == 0 ||
	    strcmp(s->status, "rescheduling") == 0) {
		fs_conflict(
		    srv, r, "conflict",
		    "Session is running: send user.interrupt, wait for idle, then delete it");
		return;
	}
	answer = json_pack("{s:s, s:s}", "id", s->id, "type", "session_deleted");
	if (!fs_is_sb(srv))
		fs_cl_gone(srv, s->id);
	fs_remove_session(&srv->store, s);
	fs_reply_json(r, 200, "OK", answer);
}

/* POST /v1/sessions/{id}/events: the batch is checked whole (nothing is stored when any
 * event is refused), then played in order; {data: [the accepted events as stored]}. */
static void fs_h_send(struct fs_server *srv, const char *sid, struct evhttp_request *req,
                      struct fk_reply *r)
{
	struct fs_session *s = fs_lookup(&srv->store, sid);
	json_t *body, *events, *accepted;

	if (s == NULL) {
		fs_not_found(srv, r, "Session not found");
		return;
	}
	body = fs_read_body(srv, req, r);
	if (body == NULL)
		return;
	fs_note_write(srv, sid);
	events = json_object_get(body, "events");
	if (!json_is_array(events) || json_array_size(events) == 0) {
		fs_bad_request(srv, r, "events must be a non-empty array");
	} else if (s->archived) {
		fs_conflict(
		    srv, r, "session_archived",
		    "Session is archived: its history is readable but it takes no new events");
	} else if (strcmp(s->status, "terminated") == 0) {
		fs_conflict(srv, r, "conflict", "Session is terminated");
	} else if (fs_check_batch(srv, events, false, r) == 0 &&
	           fs_check_state(srv, s, events, r) == 0) {
		accepted = json_array();
		fs_apply_batch(srv, s, events, accepted);
		fs_reply_json(r, 200, "OK", json_pack("{s:o}", "data", accepted));
	}
	json_decref(body);
}

/* GET /v1/agents (SandBase): each agent's current version, newest first (created_at, then
 * id), created_at[gte|lte] and include_archived as documented, limit 1..100 (20), a page
 * cursor like the sessions one, and next_page null on the last page. */
static void fs_sb_agents(struct fs_server *srv, const char *query, struct fk_reply *r)
{
	char *limit_s = fs_query_get(query, "limit"), *page = fs_query_get(query, "page");
	char *gte_s = fs_query_get(query, "created_at[gte]");
	char *lte_s = fs_query_get(query, "created_at[lte]");
	char *arch_s = fs_query_get(query, "include_archived");
	json_t *all = json_array(), *cur = NULL, *data = json_array(), *list;
	long long limit = FS_SB_LIMIT_DEFAULT;
	int64_t gte = INT64_MIN, lte = INT64_MAX, ac = 0;
	bool archived = false;
	const char *key, *after_id = NULL;
	char *next = NULL;
	size_t i;

	if ((limit_s != NULL &&
	     (fs_parse_int(limit_s, &limit) || limit < 1 || limit > FS_SB_LIMIT_MAX)) ||
	    (gte_s != NULL && fs_parse_time(gte_s, &gte)) ||
	    (lte_s != NULL && fs_parse_time(lte_s, &lte)) ||
	    (arch_s != NULL && fs_parse_bool(arch_s, &archived))) {
		fs_bad_request(srv, r,
		               "limit must be 1..100, created_at[gte|lte] RFC 3339 times and "
		               "include_archived a boolean");
		goto out;
	}
	if (page != NULL) {
		cur = fs_cursor_open(page);
		after_id = fk_get_str(cur, "i");
		if (after_id == NULL || fs_parse_time(fk_get_str(cur, "c"), &ac)) {
			fs_bad_request(srv, r, "Invalid page cursor");
			goto out;
		}
	}
	json_object_foreach(srv->store.agents, key, list) {
		json_t *a = json_array_get(list, json_array_size(list) - 1);
		int64_t c;

		if (fs_parse_time(fk_get_str(a, "created_at"), &c) || c < gte || c > lte ||
		    (!archived && !json_is_null(json_object_get(a, "archived_at")) &&
		     json_object_get(a, "archived_at") != NULL))
			continue;
		json_array_append(all, a);
	}
	/* Newest first by (created_at, id); the cursor resumes after its key. */
	for (size_t n = json_array_size(all); n > 1; n--)
		for (i = 0; i + 1 < n; i++) {
			json_t *x = json_array_get(all, i), *y = json_array_get(all, i + 1);
			int64_t cx = 0, cy = 0;

			fs_parse_time(fk_get_str(x, "created_at"), &cx);
			fs_parse_time(fk_get_str(y, "created_at"), &cy);
			if (cx < cy ||
			    (cx == cy && strcmp(fk_get_str(x, "id"), fk_get_str(y, "id")) < 0)) {
				json_incref(x);
				json_array_set(all, i, y);
				json_array_set_new(all, i + 1, x);
			}
		}
	json_array_foreach(all, i, list) {
		int64_t c = 0;

		fs_parse_time(fk_get_str(list, "created_at"), &c);
		if (after_id != NULL &&
		    (c > ac || (c == ac && strcmp(fk_get_str(list, "id"), after_id) >= 0)))
			continue;
		if (json_array_size(data) == (size_t)limit) {
			json_t *last = json_array_get(data, json_array_size(data) - 1);

			next = fs_cursor_mint(json_pack("{s:O, s:O}", "c",
			                                json_object_get(last, "created_at"), "i",
			                                json_object_get(last, "id")));
			break;
		}
		json_array_append(data, list);
	}
	fs_reply_json(r, 200, "OK", json_pack("{s:O, s:s?}", "data", data, "next_page", next));
out:
	free(next);
	json_decref(cur);
	json_decref(all);
	json_decref(data);
	free(limit_s);
	free(page);
	free(gte_s);
	free(lte_s);
	free(arch_s);
}

/* ------------------------------------------------------------------------------------------ */
/* Routes                                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* GET /v1/sessions/{id}/events/stream. SandBase replays the history (after ?cursor= or
 * Last-Event-ID, an event id: 400 when the session has no such event), then streams what is
 * appended; Claude sends only what happens after the connect. Neither ends a stream on its own
 * (Claude: but for session.deleted, see fs_h_delete). */
static void fs_h_stream(struct fs_server *srv, const char *sid, struct evhttp_request *req,
                        const char *query, struct fk_reply *r)
{
	struct fs_session *s = fs_lookup(&srv->store, sid);
	char *cursor = NULL;

	if (s == NULL) {
		fs_not_found(srv, r, "Session not found");
		return;
	}
	if (fs_is_sb(srv)) {
		const char *last =
		    evhttp_find_header(evhttp_request_get_input_headers(req), "Last-Event-ID");

		cursor = fs_query_get(query, "cursor");
		if ((cursor == NULL || *cursor == '\0') && last != NULL && *last != '\0') {
			free(cursor);
			cursor = strdup(last);
		}
		if (cursor != NULL && *cursor == '\0') {
			free(cursor);
			cursor = NULL;
		}
		if (cursor != NULL && fs_event_index(s, cursor) < 0) {
			fs_bad_request(srv, r, "cursor: no event of this session has that id");
			free(cursor);
			return;
		}
	}
	if (fk_reply_stream(&srv->fk, r, fs_is_sb(srv) ? &fs_sb_stream_kind : &fs_cl_stream_kind,
	                    srv->heartbeat_ms, s->id, cursor))
		fs_fail(&srv->fk, r);
}

/* A stream opens (the fk_fake hook): SandBase's replay, oldest first, after the cursor (arg,
 * an event id, or NULL for the whole history); Claude replays nothing. */
static void fs_stream_open(struct fk_server *fk, const char *key, void *arg, struct evbuffer *out)
{
	struct fs_server *srv = fs_srv(fk);
	struct fs_session *s = fs_lookup(&srv->store, key);
	long long from = 0;

	if (s == NULL || !fs_is_sb(srv))
		return;
	if (arg != NULL)
		from = fs_event_index(s, arg) + 1;
	for (size_t i = (size_t)from; i < json_array_size(s->events); i++)
		fs_frame(srv, out, json_array_get(s->events, i));
}

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
	unsigned impl;     /* methods this fake answers (both dialects) */
	const char *allow; /* the Allow header of a 405 */
};

static const struct fs_route_def fs_routes[] = {
    [FS_R_SESSIONS] = {EVHTTP_REQ_GET | EVHTTP_REQ_POST, EVHTTP_REQ_GET | EVHTTP_REQ_POST,
                       "GET, POST"},
    [FS_R_SESSION] = {EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE,
                      EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE, "GET, POST, DELETE"},
    [FS_R_EVENTS] = {EVHTTP_REQ_GET | EVHTTP_REQ_POST, EVHTTP_REQ_GET | EVHTTP_REQ_POST,
                     "GET, POST"},
    [FS_R_STREAM] = {EVHTTP_REQ_GET, EVHTTP_REQ_GET, "GET"},
    [FS_R_ARCHIVE] = {EVHTTP_REQ_POST, EVHTTP_REQ_POST, "POST"},
    [FS_R_AGENTS] = {EVHTTP_REQ_GET | EVHTTP_REQ_POST, EVHTTP_REQ_GET, "GET, POST"},
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
		if (cmd == EVHTTP_REQ_POST)
			fs_h_create(srv, req, r);
		else if (sb)
			fs_sb_list(srv, query, r);
		else
			fs_cl_list(srv, query, r);
		break;
	case FS_R_SESSION:
		if (cmd == EVHTTP_REQ_POST)
			fs_h_update(srv, id, req, r);
		else if (cmd == EVHTTP_REQ_DELETE)
			fs_h_delete(srv, id, r);
		else
			fs_get_session(srv, id, r);
		break;
	case FS_R_EVENTS:
		if (cmd == EVHTTP_REQ_POST)
			fs_h_send(srv, id, req, r);
		else if (sb)
			fs_sb_events(srv, id, query, r);
		else
			fs_cl_events(srv, id, query, r);
		break;
	case FS_R_STREAM:
		fs_h_stream(srv, id, req, query, r);
		break;
	case FS_R_ARCHIVE:
		fs_h_archive(srv, id, r);
		break;
	case FS_R_AGENTS:
		fs_sb_agents(srv, query, r);
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

/* Mode write-unknown: the write was performed, then the backend could not say so. SandBase
 * documents this answer (502 delivery_outcome_unknown, the session and how to recover);
 * Claude's is a plain 500 api_error. */
static void fs_write_fail(struct fk_server *fk, struct fk_reply *r)
{
	struct fs_server *srv = fs_srv(fk);
	json_t *body;

	fk_reply_clear(r);
	if (!fs_is_sb(srv)) {
		fs_fail(fk, r);
		return;
	}
	body =
	    json_pack("{s:s, s:{s:s, s:s}, s:s, s:s, s:{s:b, s:b, s:s}}", "type", "error", "error",
	              "type", "delivery_outcome_unknown", "message",
	              "The runtime did not confirm delivery; the outcome is unknown. Read the "
	              "session and its events before retrying.",
	              "session_id", srv->write_sid, "delivery_status", "unknown", "recovery",
	              "recoverable", 1, "retry_create", 0, "action", "get_session_and_list_events");
	fs_reply_json(r, 502, "Bad Gateway", body);
}

/* GET /__fake/mode also shows events_page, run_ms and the dialect. */
static int fs_mode_info(struct fk_server *fk, json_t *info)
{
	struct fs_server *srv = fs_srv(fk);

	if (json_object_set_new(info, "events_page", json_integer((int)srv->events_page)) ||
	    json_object_set_new(info, "run_ms", json_integer((int)srv->run_ms)) ||
	    json_object_set_new(info, "stream_heartbeat_ms", json_integer(srv->heartbeat_ms)) ||
	    json_object_set_new(info, "dialect", json_string(fs_dialect_names[srv->dialect])))
		return -1;
	return 0;
}

/* POST /__fake/mode?events_page=N&run_ms=N&stream_heartbeat_ms=N (nothing changes when one
 * is bad; the heartbeat applies to streams opened later). */
static int fs_mode_set(struct fk_server *fk, const char *query)
{
	struct fs_server *srv = fs_srv(fk);
	char *e = fs_query_get(query, "events_page"), *m = fs_query_get(query, "run_ms");
	char *h = fs_query_get(query, "stream_heartbeat_ms");
	unsigned long long ep = srv->events_page, ms = srv->run_ms, hb = srv->heartbeat_ms;
	int rc = 0;

	if ((e != NULL && fk_parse_ulong(e, FS_MAX_EVENTS_PAGE, &ep)) ||
	    (m != NULL && fk_parse_ulong(m, FS_RUN_MS_MAX, &ms)) ||
	    (h != NULL && fk_parse_ulong(h, FS_HEARTBEAT_MS_MAX, &hb))) {
		rc = -1;
	} else {
		srv->events_page = (unsigned)ep;
		srv->run_ms = (unsigned)ms;
		srv->heartbeat_ms = (unsigned)hb;
	}
	free(e);
	free(m);
	free(h);
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
    .mode_usage = "mode must be ok|slow|garbage|wrong-shape|http500|close|write-unknown|"
                  "write-drop, delay_ms and run_ms 0..600000, events_page 0..100000, "
                  "stream_heartbeat_ms 0..3600000",
    .serve = fs_serve,
    .fail = fs_fail,
    .write_fail = fs_write_fail,
    .mode_info = fs_mode_info,
    .mode_set = fs_mode_set,
    .stream_open = fs_stream_open,
};

/* ------------------------------------------------------------------------------------------ */
/* main                                                                                         */
/* ------------------------------------------------------------------------------------------ */

static void fs_usage(FILE *fp)
{
	fprintf(
	    fp,
	    "usage: " FS_NAME " --dialect sandbase|claude [--port N] [--port-file F]\n"
	    "       [--data FILE | --generate N[:AGENTS]] [--seed S] [--api-key KEY]\n"
	    "       [--mode ok|slow|garbage|wrong-shape|http500|close|write-unknown|write-drop]\n"
	    "       [--delay-ms N] [--events-page N] [--run-ms N] [--stream-heartbeat-ms N]\n"
	    "       [--dump] [--quiet]\n"
	    "\n"
	    "A fake SandBase sessions API, or a fake Claude-native upstream, on 127.0.0.1.\n"
	    "  --dialect D       sandbase (SandBase's quirks) or claude (the north dialect)\n"
	    "  --port N          port to listen on (0 = ephemeral, the default)\n"
	    "  --port-file F     write the bound port and a newline to F once listening\n"
	    "  --data FILE       serve this dataset (JSON, at most 64 MiB; see the source)\n"
	    "  --generate SPEC   generate N sessions over AGENTS agents (3)\n"
	    "  --seed S          generator seed (1)\n"
	    "  --api-key KEY     the accepted key (sk-sb-test / sk-ant-test)\n"
	    "  --mode M          misbehaviour for every non-control route (ok); write-unknown\n"
	    "                    and write-drop perform a write, then answer SandBase's 502\n"
	    "                    delivery_outcome_unknown (Claude: 500) / close\n"
	    "  --delay-ms N      delay of --mode slow (3000)\n"
	    "  --events-page N   SandBase event pages: 0 = all at once, no next_page (0)\n"
	    "  --run-ms N        how long a simulated agent turn runs (300)\n"
	    "  --stream-heartbeat-ms N\n"
	    "                    heartbeat of GET /v1/sessions/{id}/events/stream: SandBase's\n"
	    "                    ': heartbeat' after a quiet interval, Claude's ping event every\n"
	    "                    interval (15000; 0 = none)\n"
	    "  --dump            print the dataset as --data reads it and exit\n"
	    "  --quiet           do not log requests on stderr\n"
	    "Turns: a user text with [tool:auto], [tool:ask], [tool:custom], [reply:error] or\n"
	    "[run:long] makes the agent run a tool, wait for a confirmation (Claude) or a\n"
	    "custom tool result, fail, or run until interrupted.\n"
	    "Control: GET|DELETE /__fake/requests,"
	    " POST /__fake/mode?mode=M&delay_ms=N&events_page=N&run_ms=N&\n"
	    "         stream_heartbeat_ms=N, POST /__fake/stream-drop (cuts every open stream)\n");
}

struct fs_opts {
	struct fk_opts c;
	bool has_dialect;
	enum fs_dialect dialect;
	const char *api_key;
	unsigned events_page;
	unsigned run_ms;
	unsigned heartbeat_ms;
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
	case 'R':
		if (fk_parse_ulong(arg, FS_RUN_MS_MAX, &v))
			return -1;
		o->run_ms = (unsigned)v;
		return 0;
	case 'H':
		if (fk_parse_ulong(arg, FS_HEARTBEAT_MS_MAX, &v))
			return -1;
		o->heartbeat_ms = (unsigned)v;
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
	    {"run-ms", required_argument, NULL, 'R'},
	    {"stream-heartbeat-ms", required_argument, NULL, 'H'},
	    {"dump", no_argument, NULL, 'u'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};

	*o = (struct fs_opts){.has_dialect = false,
	                      .run_ms = FS_RUN_MS_DEFAULT,
	                      .heartbeat_ms = FS_HEARTBEAT_MS_DEFAULT};
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
	srv.ids.s = o.c.seed ^ 0x6e65772d69647321ULL;
	srv.run_ms = o.run_ms;
	srv.heartbeat_ms = o.heartbeat_ms;
	srv.gone_ids.s = o.c.seed ^ 0x676f6e652d696473ULL;
	srv.minted = json_object();
	if (srv.minted == NULL)
		goto out;
	status = fk_server_run(&srv.fk, &fs_fake, &o.c);
out:
	/* Turns first (their timers belong to the loop), then the server, the store last. */
	fs_runs_stop(&srv.store);
	fk_server_free(&srv.fk);
	json_decref(srv.minted);
	if (srv.store.doc != NULL)
		fs_store_free(&srv.store);
	else
		json_decref(root);
	return status;
}
