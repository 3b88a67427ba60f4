/* fake_agentscope.c - a fake AgentScope "agent service" (agentscope-ai/agentscope,
 * src/agentscope/app) for the integration tests, the Node SDK conformance suite and the
 * README demo.
 *
 * It serves a static dataset (a --data file, or a seeded --generate) through the read-only
 * session routes, in the wire shape of v2.0.1 or of HEAD, and misbehaves on request (--mode,
 * POST /__fake/mode) so the gateway's failure paths can be exercised. It copies the real
 * FastAPI server's observable behaviour: 307 slash redirects, 422 validation bodies listing
 * the X-User-ID dependency first, 401 on an empty X-User-ID, the 404 texts
 * "Agent '<id>' not found." and "Session '<id>' not found.", 405 with an Allow header.
 *
 * One thread, one libevent loop; nothing blocks it (delays are event timers). The dataset is
 * immutable after start-up, so every listing item is serialised once and listings are built
 * from references to those strings.
 *
 * Data model (file and generator alike):
 *   {"users": {"<user>": {"agents": [AgentView...],
 *                         "sessions": [{"record": SessionRecord, "is_running": bool,
 *                                       "team": TeamDetail|null, "messages": [Msg...]}]}}}
 * "messages" is the durable message log, oldest first; when absent, record.state.context is
 * used. Timestamps are naive local strings and are served untouched. */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>

#include "fake_common.h"

#define FA_NAME "fake_agentscope"
#define FA_MAX_GENERATE 50000 /* about 33 KiB of memory per generated session */
#define FA_MAX_USER_LEN 128
#define FA_MSG_LIMIT_DEFAULT 50
#define FA_MSG_LIMIT_MAX 200

/* Python prints the shortest round-tripping float; jansson's default of 17 digits would turn
 * 0.8 into 0.80000000000000004. 16 digits prints the generator's and the demo's floats as
 * Python does; a data-file value that needs 17 digits loses its last one. */
#define FA_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(16))

enum fa_shape { FA_SHAPE_V201, FA_SHAPE_HEAD };

/* ------------------------------------------------------------------------------------------ */
/* Time: naive ISO strings, as datetime.now().isoformat() writes them                           */
/* ------------------------------------------------------------------------------------------ */

/* Parses "YYYY-MM-DD[T ]HH:MM[:SS[.ffffff]]" (any zone suffix is ignored: the data is naive)
 * into microseconds since the epoch, for ordering only. Returns 0 on success. */
static int fa_parse_time(const char *s, int64_t *out)
{
	int y, mo, d, h, mi, sec = 0, us = 0;
	int64_t secs;
	const char *p = s;

	if (s == NULL || fk_digits(&p, 4, &y) || *p++ != '-' || fk_digits(&p, 2, &mo) ||
	    *p++ != '-' || fk_digits(&p, 2, &d) || (*p != 'T' && *p != ' '))
		return -1;
	p++;
	if (fk_digits(&p, 2, &h) || *p++ != ':' || fk_digits(&p, 2, &mi))
		return -1;
	if (*p == ':') {
		p++;
		if (fk_digits(&p, 2, &sec))
			return -1;
		if (*p == '.') {
			int scale = 100000;

			for (p++; *p >= '0' && *p <= '9'; p++) {
				us += (*p - '0') * scale;
				scale /= 10;
			}
		}
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31)
		return -1;
	secs = fk_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec;
	*out = secs * 1000000 + us;
	return 0;
}

/* Formats epoch seconds as a naive ISO timestamp. Like Python's isoformat(), the fraction is
 * omitted when us == 0 - one of the "ugly" shapes the gateway has to accept. */
static void fa_fmt_time(char *buf, size_t len, int64_t secs, int us)
{
	time_t t = (time_t)secs;
	struct tm tm;
	size_t n;

	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, len, "1970-01-01T00:00:00");
		return;
	}
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (us > 0 && n > 0 && n < len)
		snprintf(buf + n, len - n, ".%06d", us);
}

/* ------------------------------------------------------------------------------------------ */
/* Ids from the seeded PRNG                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* A uuid4().hex-like id: 32 lowercase hex characters. */
static void fa_rng_hex(struct fk_rng *r, char out[33])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 2; i++) {
		uint64_t v = fk_rng_next(r);

		for (int j = 0; j < 16; j++, v >>= 4)
			out[i * 16 + j] = hex[v & 0xf];
	}
	out[32] = '\0';
}

/* ------------------------------------------------------------------------------------------ */
/* Generator: --generate N[:AGENTS[:USER]]                                                      */
/* ------------------------------------------------------------------------------------------ */

/* One short exchange: the user asks, the agent thinks, calls a tool and answers. */
struct fa_topic {
	const char *prompt;
	const char *thinking;
	const char *intro;
	const char *tool;
	const char *input; /* raw JSON text, exactly as the model streamed it */
	const char *output;
	const char *answer;
};

static const struct fa_topic fa_topics[] = {
    {"Find three recent papers on retrieval-augmented generation.",
     "The user wants recent RAG papers; a web search is the quickest way.",
     "Let me search for recent work on retrieval-augmented generation.", "WebSearch",
     "{\"query\": \"retrieval-augmented generation survey 2026\"}",
     "1. RAG at scale (2026)\n2. Long-context vs retrieval (2026)\n3. Agentic retrieval (2025)",
     "Here are three recent papers: RAG at scale, Long-context vs retrieval, and Agentic "
     "retrieval. The first is the best starting point."},
    {"Summarise the open issues in the tracker.",
     "I should read the exported issue list before summarising.",
     "I'll read the exported issue list first.", "Read",
     "{\"file_path\": \"/workspace/issues.md\"}",
     "- #12 login loop on Safari\n- #15 CSV export drops unicode\n- #19 slow dashboard",
     "There are three open issues: a Safari login loop, a unicode bug in CSV export and a "
     "slow dashboard. The login loop affects the most users."},
    {"How many rows are in sales_2026.csv?",
     "Counting lines with wc is enough; remember the header row.",
     "I'll count the lines in the file.", "Bash",
     "{\"command\": \"wc -l /workspace/data/sales_2026.csv\"}",
     "48213 /workspace/data/sales_2026.csv",
     "The file has 48,212 data rows (48,213 lines including the header)."},
    {"Review the diff in feature/login-timeout.",
     "Look at the diff first, then comment on correctness and tests.", "Let me look at the diff.",
     "Bash", "{\"command\": \"git diff main...feature/login-timeout\"}",
     "diff --git a/auth/session.py b/auth/session.py\n-TIMEOUT = 300\n+TIMEOUT = 900",
     "The change raises the session timeout from 5 to 15 minutes. It looks fine, but the "
     "constant should come from configuration and there is no test for the new value."},
    {"What's the weather in Lisbon this weekend?",
     "A weather lookup for Lisbon, Saturday and Sunday.", "Checking the forecast for Lisbon.",
     "WeatherForecast", "{\"city\": \"Lisbon\", \"days\": 3}",
     "Sat: 24C sunny; Sun: 22C light clouds",
     "Lisbon looks pleasant: 24 C and sunny on Saturday, 22 C with light clouds on Sunday."},
    {"Draft a short reply to the customer about the delayed order.",
     "Check the order status before drafting so the reply is accurate.",
     "I'll check the order status first.", "OrderLookup", "{\"order_id\": \"A-10442\"}",
     "{\"status\": \"in transit\", \"eta\": \"2026-06-12\"}",
     "Draft: \"Thanks for your patience - order A-10442 is in transit and should arrive by "
     "12 June. We're sorry for the delay.\""},
    {"Plot monthly revenue for 2025.", "Aggregate by month with pandas, then describe the trend.",
     "Let me aggregate the revenue by month.", "PythonExec",
     "{\"code\": \"df.groupby('month').revenue.sum()\"}",
     "Jan 1.2M, Feb 1.1M, Mar 1.4M, ..., Dec 2.0M",
     "Revenue grew from 1.2M in January to 2.0M in December, with a dip in February."},
    {"List the Python files that import requests.",
     "A grep over the repository answers this directly.", "Searching the repository.", "Grep",
     "{\"pattern\": \"^import requests\", \"glob\": \"**/*.py\"}",
     "src/client.py\nsrc/sync/fetch.py\ntools/release.py",
     "Three files import requests: src/client.py, src/sync/fetch.py and tools/release.py."},
    {"Translate the release notes into German.",
     "Read the notes first; keep product names untranslated.", "I'll read the release notes.",
     "Read", "{\"file_path\": \"/workspace/RELEASE_NOTES.md\"}",
     "## 2.4.0\n- Faster sync\n- Dark mode",
     "## 2.4.0\n- Schnellere Synchronisierung\n- Dunkelmodus"},
    {"Is the staging deploy healthy?", "Hit the health endpoint of staging and report.",
     "Checking the staging health endpoint.", "HttpGet",
     "{\"url\": \"https://staging.example.com/healthz\"}",
     "200 OK {\"status\": \"ok\", \"version\": \"2.4.0-rc1\"}",
     "Staging is healthy and running 2.4.0-rc1."},
};

#define FA_NTOPICS (sizeof(fa_topics) / sizeof(fa_topics[0]))

static const char *const fa_roles[] = {"Research assistant", "Code reviewer", "Data analyst",
                                       "Travel planner", "Support agent"};

struct fa_model {
	const char *type;
	const char *model;
	bool openai_ids; /* tool-call ids look like call_… rather than toolu_… */
};

static const struct fa_model fa_models[] = {
    {"anthropic_credential", "claude-sonnet-4-5", false},
    {"dashscope_credential", "qwen3-max", true},
    {"openai_credential", "gpt-4.1", true},
};

enum fa_kind { FA_KIND_IDLE, FA_KIND_RUNNING, FA_KIND_ASKING, FA_KIND_SUBMITTED };

struct fa_gen {
	struct fk_rng rng;
	int64_t cut_cache_usage; /* usage cache fields exist from here on */
	int64_t cut_block_times; /* blocks carry created_at/finished_at from here on */
	int64_t cut_reply_ctx;   /* state.reply_context replaces top-level reply_id/cur_iter */
};

static int64_t fa_epoch(int y, unsigned m, unsigned d)
{
	return fk_days_from_civil(y, m, d) * 86400;
}

/* A message/block timestamp: always with a fraction, as datetime.now() practically is. */
static void fa_gen_ts(struct fa_gen *g, char *buf, size_t len, int64_t secs)
{
	fa_fmt_time(buf, len, secs, 1 + (int)fk_rng_below(&g->rng, 999999));
}

/* Gives a block its created_at/finished_at unless it predates block timestamps (v2.0.1). */
static int fa_block_times(json_t *b, bool stamped, const char *created, const char *finished)
{
	if (b == NULL)
		return -1;
	if (!stamped)
		return 0;
	if (json_object_set_new(b, "created_at", json_string(created)) ||
	    json_object_set_new(b, "finished_at", finished ? json_string(finished) : json_null()))
		return -1;
	return 0;
}

/* Appends a {type, <field>: text, id} block; returns 0 or -1. */
static int fa_gen_add_text(struct fa_gen *g, json_t *content, const char *type, const char *field,
                           const char *text, bool stamped, int64_t *t)
{
	char id[33], c[40], f[40];
	json_t *b;

	fa_rng_hex(&g->rng, id);
	fa_gen_ts(g, c, sizeof(c), *t);
	*t += 1 + fk_rng_below(&g->rng, 4);
	fa_gen_ts(g, f, sizeof(f), *t);
	b = json_pack("{s:s, s:s, s:s}", "type", type, field, text, "id", id);
	if (fa_block_times(b, stamped, c, f)) {
		json_decref(b);
		return -1;
	}
	return json_array_append_new(content, b);
}

/* Returns a new Msg object. content, usage and error are stolen; usage/error may be NULL. */
static json_t *fa_gen_msg(const char *id, const char *name, const char *role, json_t *content,
                          const char *created, json_t *usage, const char *finished,
                          const char *reason, json_t *error)
{
	return json_pack("{s:s, s:o, s:s, s:s, s:{}, s:s, s:o?, s:s?, s:s?, s:n, s:o?}", "name",
	                 name, "content", content, "role", role, "id", id, "metadata", "created_at",
	                 created, "usage", usage, "finished_at", finished, "finished_reason",
	                 reason, "structured_output", "error", error);
}

/* A user turn. Returns a new reference. */
static json_t *fa_gen_user_msg(struct fa_gen *g, const char *text, int64_t t, bool stamped)
{
	char id[33], bid[33], ts[40];
	json_t *content, *b;

	fa_rng_hex(&g->rng, id);
	fa_rng_hex(&g->rng, bid);
	fa_gen_ts(g, ts, sizeof(ts), t);
	/* A block built by the client: created with the message, never "finished". */
	b = json_pack("{s:s, s:s, s:s}", "type", "text", "text", text, "id", bid);
	if (fa_block_times(b, stamped, ts, NULL)) {
		json_decref(b);
		return NULL;
	}
	content = json_pack("[o]", b);
	if (content == NULL)
		return NULL;
	/* UserMsg stamps finished_at = created_at. */
	return fa_gen_msg(id, "user", "user", content, ts, NULL, ts, NULL, NULL);
}

struct fa_reply_spec {
	const char *agent_name;
	const struct fa_topic *topic;
	int64_t start;
	enum fa_kind park; /* IDLE: the reply finished; ASKING/SUBMITTED: parked on its tail */
	bool fail;
	bool stamped;
	bool cache_usage;
	bool openai_ids;
};

static json_t *fa_gen_usage(struct fa_gen *g, bool cache)
{
	json_int_t in = 400 + fk_rng_below(&g->rng, 20000);
	json_int_t out = 40 + fk_rng_below(&g->rng, 2000);

	if (!cache)
		return json_pack("{s:I, s:I}", "input_tokens", in, "output_tokens", out);
	return json_pack("{s:I, s:I, s:I, s:I}", "input_tokens", in, "output_tokens", out,
	                 "cache_input_tokens", (json_int_t)fk_rng_below(&g->rng, (uint32_t)in),
	                 "cache_creation_input_tokens", (json_int_t)fk_rng_below(&g->rng, 2000));
}

/* Appends a tool_call block (and its tool_result unless the call is parked). */
static int fa_gen_add_tool(struct fa_gen *g, json_t *content, const struct fa_reply_spec *rs,
                           int64_t *t)
{
	char hex[33], call_id[40], c[40], f[40];
	const char *name = rs->topic->tool, *input = rs->topic->input, *state = "finished";
	json_t *rules = json_array(), *b;

	fa_rng_hex(&g->rng, hex);
	snprintf(call_id, sizeof(call_id), "%s%.24s", rs->openai_ids ? "call_" : "toolu_01", hex);
	if (rs->park == FA_KIND_ASKING) {
		name = "Bash";
		input = "{\"command\": \"git push origin release/2.4\"}";
		state = "asking";
		json_array_append_new(rules, json_pack("{s:s, s:s, s:s, s:s}", "tool_name", "Bash",
		                                       "rule_content", "git push*", "behavior",
		                                       "allow", "source", "session"));
	} else if (rs->park == FA_KIND_SUBMITTED) {
		name = "CreateTicket";
		input = "{\"title\": \"Follow up with customer\", \"priority\": \"high\"}";
		state = "submitted";
	}
	fa_gen_ts(g, c, sizeof(c), *t);
	*t += 1 + fk_rng_below(&g->rng, 3);
	fa_gen_ts(g, f, sizeof(f), *t);
	b = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "type", "tool_call", "id", call_id, "name",
	              name, "input", input, "state", state, "suggested_rules", rules);
	/* A parked call has not finished. */
	if (fa_block_times(b, rs->stamped, c, rs->park == FA_KIND_IDLE ? f : NULL) ||
	    json_array_append_new(content, b))
		return -1;
	if (rs->park != FA_KIND_IDLE)
		return 0;
	fa_gen_ts(g, c, sizeof(c), *t);
	*t += 1 + fk_rng_below(&g->rng, 20);
	fa_gen_ts(g, f, sizeof(f), *t);
	b = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{}}", "type", "tool_result", "id", call_id,
	              "name", name, "output", rs->topic->output, "state", "success", "metadata");
	if (fa_block_times(b, rs->stamped, c, f))
		return -1;
	return json_array_append_new(content, b);
}

/* One assistant Msg per reply (its id is the reply id). *end gets the last time used. */
static json_t *fa_gen_reply(struct fa_gen *g, const struct fa_reply_spec *rs, int64_t *end)
{
	char id[33], created[40], finished[40];
	int64_t t = rs->start;
	json_t *content = json_array(), *error = NULL;
	const char *reason = "completed";

	fa_rng_hex(&g->rng, id);
	fa_gen_ts(g, created, sizeof(created), t);
	if (content == NULL || fa_gen_add_text(g, content, "thinking", "thinking",
	                                       rs->topic->thinking, rs->stamped, &t))
		goto fail;
	if (rs->fail) {
		if (fa_gen_add_text(g, content, "text", "text", "Let me look into that.",
		                    rs->stamped, &t))
			goto fail;
		reason = "error";
		error = json_pack("{s:s, s:s}", "type", "upstream", "message",
		                  "The model provider returned HTTP 529 (overloaded).");
	} else {
		if (fa_gen_add_text(g, content, "text", "text", rs->topic->intro, rs->stamped,
		                    &t) ||
		    fa_gen_add_tool(g, content, rs, &t))
			goto fail;
		if (rs->park == FA_KIND_IDLE &&
		    fa_gen_add_text(g, content, "text", "text", rs->topic->answer, rs->stamped, &t))
			goto fail;
	}
	t += 1 + fk_rng_below(&g->rng, 5);
	fa_gen_ts(g, finished, sizeof(finished), t);
	*end = t;
	/* A reply parked on a confirmation or an external result never saw REPLY_END. */
	if (rs->park != FA_KIND_IDLE)
		return fa_gen_msg(id, rs->agent_name, "assistant", content, created,
		                  fa_gen_usage(g, rs->cache_usage), NULL, NULL, NULL);
	return fa_gen_msg(id, rs->agent_name, "assistant", content, created,
	                  fa_gen_usage(g, rs->cache_usage), finished, reason, error);
fail:
	json_decref(content);
	return NULL;
}

/* An AgentView ({...AgentRecord, editable}). Returns a new reference. */
static json_t *fa_gen_agent(struct fa_gen *g, const char *user, const char *name, int64_t created,
                            const char *source)
{
	char id[33], c[40], u[40];

	fa_rng_hex(&g->rng, id);
	fa_gen_ts(g, c, sizeof(c), created);
	fa_gen_ts(g, u, sizeof(u), created + 3600 + fk_rng_below(&g->rng, 86400 * 20));
	return json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:{s:f, s:f, s:s, s:s, s:{}, s:i},"
	    " s:{s:i, s:b}, s:{s:b, s:n}}, s:b}",
	    "id", id, "updated_at", u, "created_at", c, "user_id", user, "source", source, "data",
	    "id", id, "name", name, "system_prompt",
	    "You are a careful assistant. Use tools when they help and say when you are unsure.",
	    "context_config", "trigger_ratio", 0.8, "reserve_ratio", 0.1, "compression_prompt",
	    "<system-hint>Summarise the work so far so that it can be resumed later.</system-hint>",
	    "summary_template",
	    "<system-info>Summary of earlier work\n# Task\n{task_overview}\n# State\n"
	    "{current_state}\n# Next steps\n{next_steps}</system-info>",
	    "summary_schema", "tool_result_limit", 50000, "react_config", "max_iters", 50,
	    "stop_on_reject", 0, "invite_config", "invitable", 0, "invite_description", "editable",
	    1);
}

/* TeamDetail for a session that leads a small team. leader is borrowed. New reference. */
static json_t *fa_gen_team(struct fa_gen *g, const char *user, const char *sid, json_t *leader,
                           int64_t created)
{
	char tid[33], wid[33], wsid[33], c[40];
	json_t *worker = fa_gen_agent(g, user, "Fact checker", created, "team");

	if (worker == NULL)
		return NULL;
	snprintf(wid, sizeof(wid), "%s", fk_get_str(worker, "id"));
	fa_rng_hex(&g->rng, tid);
	fa_rng_hex(&g->rng, wsid);
	fa_gen_ts(g, c, sizeof(c), created + 1);
	return json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:[s], s:[{s:s, s:s, s:s,"
	                 " s:s}]}}, s:O, s:[{s:o, s:s}]}",
	                 "team", "id", tid, "updated_at", c, "created_at", c, "user_id", user,
	                 "session_id", sid, "leader_agent_id", fk_get_str(leader, "id"), "data",
	                 "name", "Research squad", "description", "", "member_ids", wid, "members",
	                 "owner_id", user, "agent_id", wid, "session_id", wsid, "role", "created",
	                 "leader_agent", leader, "members", "agent", worker, "session_id", wsid);
}

struct fa_sess_spec {
	const char *user;
	json_t *agent; /* AgentView, borrowed */
	const struct fa_model *model;
	const char *title;
	int64_t created;
	int created_us;
	enum fa_kind kind;
	bool fail_last; /* the last finished reply failed */
	bool team;
};

/* The state pieces that are not the conversation. Returns 0 or -1. */
static int fa_gen_state_rest(struct fa_gen *g, json_t *state, const struct fa_sess_spec *sp)
{
	json_t *allow = json_object(), *cache = json_array(), *tasks = json_array();
	char ts[40], tid[33];
	int rc;

	if (allow == NULL || cache == NULL || tasks == NULL)
		goto fail;
	if (fk_rng_below(&g->rng, 5) == 0)
		json_object_set_new(allow, "Bash",
		                    json_pack("[{s:s, s:s, s:s, s:s}]", "tool_name", "Bash",
		                              "rule_content", "git status", "behavior", "allow",
		                              "source", "user"));
	if (fk_rng_below(&g->rng, 3) == 0)
		json_array_append_new(cache,
		                      json_pack("{s:[s, s], s:f, s:f, s:s}", "lines", "# Notes",
		                                "- follow up on the export bug", "updated_at",
		                                (double)(sp->created - 3600) + 0.25, "bytes",
		                                0.0400390625, "file_path", "/workspace/notes.md"));
	if (fk_rng_below(&g->rng, 4) == 0) {
		fa_rng_hex(&g->rng, tid);
		fa_gen_ts(g, ts, sizeof(ts), sp->created + 30);
		json_array_append_new(tasks, json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:n, s:[],"
		                                       " s:[]}",
		                                       "subject", "Collect sources", "description",
		                                       "Gather the material the user asked for.",
		                                       "metadata", "created_at", ts, "state",
		                                       "in_progress", "id", tid, "owner", "blocks",
		                                       "blocked_by"));
	}
	/* json_pack's "o" and json_object_set_new() take the reference even on failure. */
	rc = json_object_set_new(
	    state, "permission_context",
	    json_pack("{s:s, s:{}, s:o, s:{}, s:{}}", "mode",
	              fk_rng_below(&g->rng, 10) == 0 ? "accept_edits" : "default",
	              "working_directories", "allow_rules", allow, "deny_rules", "ask_rules"));
	allow = NULL;
	if (rc)
		goto fail;
	rc = json_object_set_new(state, "tool_context",
	                         json_pack("{s:i, s:i, s:o, s:[]}", "max_cache_files", 100,
	                                   "max_cache_bytes", 25000, "read_file_cache", cache,
	                                   "activated_groups"));
	cache = NULL;
	if (rc)
		goto fail;
	rc = json_object_set_new(state, "tasks_context", json_pack("{s:o}", "tasks", tasks));
	return rc ? -1 : 0;
fail:
	json_decref(allow);
	json_decref(cache);
	json_decref(tasks);
	return -1;
}

/* One {"record", "is_running", "team", "messages"} entry. Returns a new reference. */
static json_t *fa_gen_session(struct fa_gen *g, const struct fa_sess_spec *sp)
{
	char sid[33], ws[33], cred[33], reply_id[33], created[40], updated[40];
	const char *agent_name = fk_get_str(json_object_get(sp->agent, "data"), "name");
	bool stamped = sp->created >= g->cut_block_times;
	unsigned nturns = 1 + fk_rng_below(&g->rng, 3);
	int64_t t = sp->created + 2 + fk_rng_below(&g->rng, 120), persisted = sp->created;
	json_t *log = json_array(), *context = json_array(), *state = NULL, *record = NULL;
	json_t *team = NULL, *mcfg = NULL;
	json_int_t cur_iter = 0;
	const char *summary = "";
	size_t from = 0, n;

	if (log == NULL || context == NULL || agent_name == NULL)
		goto fail;
	fa_rng_hex(&g->rng, sid);
	fa_rng_hex(&g->rng, ws);
	fa_rng_hex(&g->rng, cred);
	fa_rng_hex(&g->rng, reply_id);
	for (unsigned k = 0; k < nturns; k++) {
		bool last = k + 1 == nturns;
		const struct fa_topic *tp = &fa_topics[fk_rng_below(&g->rng, FA_NTOPICS)];
		struct fa_reply_spec rs = {.agent_name = agent_name,
		                           .topic = tp,
		                           .stamped = stamped,
		                           .cache_usage = sp->created >= g->cut_cache_usage,
		                           .openai_ids = sp->model->openai_ids};
		json_t *m = fa_gen_user_msg(g, tp->prompt, t, stamped);

		if (json_array_append_new(log, m))
			goto fail;
		/* A reply in flight is only persisted when its run ends. */
		if (last && sp->kind == FA_KIND_RUNNING) {
			fa_rng_hex(&g->rng, reply_id);
			cur_iter = fk_rng_below(&g->rng, 3);
			break;
		}
		rs.start = t + 1 + fk_rng_below(&g->rng, 3);
		if (last && (sp->kind == FA_KIND_ASKING || sp->kind == FA_KIND_SUBMITTED))
			rs.park = sp->kind;
		rs.fail = rs.park == FA_KIND_IDLE &&
		          (last ? sp->fail_last : fk_rng_below(&g->rng, 100) < 4);
		m = fa_gen_reply(g, &rs, &t);
		if (m == NULL)
			goto fail;
		snprintf(reply_id, sizeof(reply_id), "%s", fk_get_str(m, "id"));
		if (json_array_append_new(log, m))
			goto fail;
		persisted = t;
		cur_iter = rs.park != FA_KIND_IDLE ? 1 : rs.fail ? 0 : 2;
		t += 30 + fk_rng_below(&g->rng, 3 * 3600);
	}
	/* The model's window: without the in-flight user turn, and now and then compressed
	 * into a summary so that /messages holds more than state.context. */
	n = json_array_size(log) - (sp->kind == FA_KIND_RUNNING ? 1 : 0);
	if (n >= 4 && fk_rng_below(&g->rng, 4) == 0) {
		from = n - 2;
		summary = "Earlier the user asked for background research; sources were collected "
		          "and summarised.";
	}
	for (size_t i = from; i < n; i++)
		if (json_array_append(context, json_array_get(log, i)))
			goto fail;

	fa_fmt_time(created, sizeof(created), sp->created, sp->created_us);
	if (persisted == sp->created)
		snprintf(updated, sizeof(updated), "%s", created);
	else
		fa_gen_ts(g, updated, sizeof(updated), persisted);

	state =
	    json_pack("{s:s, s:s, s:O}", "session_id", sid, "summary", summary, "context", context);
	if (state == NULL)
		goto fail;
	if (sp->created < g->cut_reply_ctx) {
		if (json_object_set_new(state, "reply_id", json_string(reply_id)) ||
		    json_object_set_new(state, "cur_iter", json_integer(cur_iter)))
			goto fail;
	} else if (json_object_set_new(state, "reply_context",
	                               json_pack("{s:s, s:I, s:n, s:n}", "reply_id", reply_id,
	                                         "cur_iter", cur_iter, "structured_schema",
	                                         "structured_output"))) {
		goto fail;
	}
	if (fa_gen_state_rest(g, state, sp))
		goto fail;
	if (sp->created >= g->cut_reply_ctx &&
	    json_object_set_new(state, "middle_context", json_object()))
		goto fail;

	/* About 3% of idle sessions were never given a model and cannot run. */
	if (sp->kind != FA_KIND_IDLE || fk_rng_below(&g->rng, 33) != 0)
		mcfg = json_pack("{s:s, s:s, s:s, s:{s:f, s:i}}", "type", sp->model->type,
		                 "credential_id", cred, "model", sp->model->model, "parameters",
		                 "temperature", 0.7, "max_tokens", 8192);
	if (sp->team) {
		team = fa_gen_team(g, sp->user, sid, sp->agent, sp->created);
		if (team == NULL)
			goto fail;
	}
	{
		bool sched = !sp->team && fk_rng_below(&g->rng, 20) == 0;
		char sched_id[33];

		fa_rng_hex(&g->rng, sched_id);
		record = json_pack(
		    "{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:n, s:n, s:s?, s:{s:s, s:s, s:n, s:o?,"
		    " s:n, s:n, s:n}, s:O}",
		    "id", sid, "updated_at", updated, "created_at", created, "user_id", sp->user,
		    "agent_id", fk_get_str(sp->agent, "id"), "source", sched ? "schedule" : "user",
		    "source_schedule_id", sched ? sched_id : NULL, "source_chat_id",
		    "source_channel_id", "team_id",
		    team ? fk_get_str(json_object_get(team, "team"), "id") : NULL, "config",
		    "workspace_id", ws, "name", sp->title, "cwd", "chat_model_config", mcfg,
		    "fallback_chat_model_config", "tts_model_config", "knowledge_config", "state",
		    state);
		mcfg = NULL;
	}
	if (record == NULL)
		goto fail;
	json_decref(state);
	json_decref(context);
	return json_pack("{s:o, s:b, s:o?, s:o}", "record", record, "is_running",
	                 sp->kind == FA_KIND_RUNNING, "team", team, "messages", log);
fail:
	json_decref(log);
	json_decref(context);
	json_decref(state);
	json_decref(record);
	json_decref(team);
	json_decref(mcfg);
	return NULL;
}

/* Adds user `name` with its agents and sessions to `users`. Returns the user object
 * (borrowed) or NULL. */
static json_t *fa_gen_user(json_t *users, const char *name)
{
	json_t *u = json_pack("{s:[], s:[]}", "agents", "sessions");

	if (json_object_set_new(users, name, u))
		return NULL;
	return u;
}

/* The main user: n sessions over nagents agents, created through 2026 in tied groups. */
static int fa_gen_main_user(struct fa_gen *g, json_t *u, const char *user, unsigned n,
                            unsigned nagents)
{
	const int64_t end = fa_epoch(2026, 12, 20);
	json_t *agents = json_object_get(u, "agents"), *sessions = json_object_get(u, "sessions");
	int64_t t = fa_epoch(2026, 1, 3) + 8 * 3600;
	unsigned left = 0;
	int us = 0;

	for (unsigned k = 0; k < nagents; k++) {
		char name[64];

		snprintf(name, sizeof(name), "%s %u",
		         fa_roles[k % (sizeof(fa_roles) / sizeof(fa_roles[0]))], k + 1);
		if (json_array_append_new(
		        agents, fa_gen_agent(g, user, name,
		                             fa_epoch(2025, 12, 1) + k * 86400 + 9 * 3600, "user")))
			return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		unsigned ai = fk_rng_below(&g->rng, nagents);
		uint32_t r = fk_rng_below(&g->rng, 100);
		char title[32];
		struct fa_sess_spec sp = {.user = user, .title = title};

		/* Every 3-7 consecutive sessions share exactly the same created_at (across
		 * agents too); one group in eight has no fractional part at all. */
		if (left == 0) {
			/* Spread what is left of the year over the groups still to come (about
			 * one per five sessions), never past the end. */
			int64_t step = (end - t) / ((int64_t)(n - i) / 5 + 1);

			if (i > 0 && step > 1)
				t += step / 2 + fk_rng_below(&g->rng, (uint32_t)(step / 2));
			left = 3 + fk_rng_below(&g->rng, 5);
			us = fk_rng_below(&g->rng, 8) == 0 ? 0
			                                   : 1 + (int)fk_rng_below(&g->rng, 999999);
		}
		left--;
		snprintf(title, sizeof(title), "Session %04u", i + 1);
		sp.agent = json_array_get(agents, ai);
		sp.model = &fa_models[ai % (sizeof(fa_models) / sizeof(fa_models[0]))];
		sp.created = t;
		sp.created_us = us;
		sp.kind = r < 10   ? FA_KIND_RUNNING
		          : r < 17 ? FA_KIND_ASKING
		          : r < 22 ? FA_KIND_SUBMITTED
		                   : FA_KIND_IDLE;
		sp.fail_last = sp.kind == FA_KIND_IDLE && fk_rng_below(&g->rng, 100) < 6;
		sp.team = sp.kind == FA_KIND_IDLE && fk_rng_below(&g->rng, 100) < 3;
		/* Make sure every status (and a failed reply) exists even for small N. */
		if (i < 4 && n >= 4) {
			static const enum fa_kind forced[] = {FA_KIND_IDLE, FA_KIND_ASKING,
			                                      FA_KIND_SUBMITTED, FA_KIND_RUNNING};

			sp.kind = forced[i];
			sp.fail_last = i == 0;
			sp.team = false;
		}
		if (json_array_append_new(sessions, fa_gen_session(g, &sp)))
			return -1;
	}
	return 0;
}

/* A second user with five sessions on an agent of their own (same display name as the main
 * user's first agent), so that identity mix-ups show in the tests. */
static int fa_gen_other_user(struct fa_gen *g, json_t *u, const char *user)
{
	static const enum fa_kind kinds[] = {FA_KIND_IDLE, FA_KIND_RUNNING, FA_KIND_ASKING,
	                                     FA_KIND_IDLE, FA_KIND_SUBMITTED};
	json_t *agents = json_object_get(u, "agents"), *sessions = json_object_get(u, "sessions");
	json_t *agent =
	    fa_gen_agent(g, user, "Research assistant 1", fa_epoch(2025, 12, 10), "user");

	if (json_array_append_new(agents, agent))
		return -1;
	for (unsigned i = 0; i < 5; i++) {
		char title[64];
		struct fa_sess_spec sp = {.user = user,
		                          .agent = agent,
		                          .model = &fa_models[0],
		                          .title = title,
		                          .kind = kinds[i],
		                          .fail_last = i == 3};

		snprintf(title, sizeof(title), "%s session %u", user, i + 1);
		/* The first two share a created_at. */
		sp.created = fa_epoch(2026, 4, 2) + 10 * 3600 + (i < 2 ? 0 : (int64_t)i * 7200);
		sp.created_us = 250000;
		if (json_array_append_new(sessions, fa_gen_session(g, &sp)))
			return -1;
	}
	return 0;
}

/* Builds the generated dataset. Returns a new reference or NULL. */
static json_t *fa_generate(uint64_t seed, unsigned n, unsigned nagents, const char *user)
{
	struct fa_gen g = {.rng = {seed}};
	const char *other = strcmp(user, "bob") == 0 ? "carol" : "bob";
	json_t *root = json_pack("{s:{}}", "users"), *users = json_object_get(root, "users");
	json_t *u;

	g.cut_cache_usage = fa_epoch(2026, 3, 1);
	g.cut_block_times = fa_epoch(2026, 5, 1);
	g.cut_reply_ctx = fa_epoch(2026, 7, 22);
	if (root == NULL)
		return NULL;
	u = fa_gen_user(users, user);
	if (u == NULL || fa_gen_main_user(&g, u, user, n, nagents))
		goto fail;
	u = fa_gen_user(users, other);
	if (u == NULL || fa_gen_other_user(&g, u, other))
		goto fail;
	return root;
fail:
	json_decref(root);
	return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* The store: the dataset, its indexes and the pre-serialised listing items                     */
/* ------------------------------------------------------------------------------------------ */

struct fa_session {
	const char *id;     /* record.id, borrowed from the dataset */
	int64_t created;    /* record.created_at in microseconds, for ordering */
	size_t ord;         /* position in the data: ties keep this order */
	bool running;       /* someone holds the run lock */
	const char *status; /* parked status derived from state.context (a static string) */
	json_t *messages;   /* the durable log, borrowed */
	char *view;         /* this session's SessionView in the served shape, serialised */
	size_t view_len;
};

struct fa_store {
	json_t *root;    /* the dataset */
	json_t *index;   /* {user: {"agents": {id: AgentView}, "lists": {agent: [i…]},
	                  *         "byid": {agent: {session id: i}}}} */
	json_t *running; /* {session id: true}: the real run lock is keyed by session id alone */
	struct fa_session *sess;
	size_t nsess;
	enum fa_shape shape;
	bool no_messages;  /* --no-messages: a build without the durable message log */
	struct fk_rng rng; /* fills reply ids missing from the data */
};

/* A member to emit in order; def is the JSON text of its default, NULL = omit when absent. */
struct fa_field {
	const char *key;
	const char *def;
};

#define FA_DEF_PERMISSION                                                                          \
	"{\"mode\":\"default\",\"working_directories\":{},\"allow_rules\":{},\"deny_rules\":{},"   \
	"\"ask_rules\":{}}"
#define FA_DEF_TOOL_CONTEXT                                                                        \
	"{\"max_cache_files\":100,\"max_cache_bytes\":25000,\"read_file_cache\":[],"               \
	"\"activated_groups\":[]}"

/* Field sets of the pydantic models as each server version dumps them. */
static const struct fa_field fa_record_head[] = {
    {"id", NULL},
    {"updated_at", NULL},
    {"created_at", NULL},
    {"user_id", NULL},
    {"agent_id", NULL},
    {"source", "\"user\""},
    {"source_schedule_id", "null"},
    {"source_chat_id", "null"},
    {"source_channel_id", "null"},
    {"team_id", "null"},
    {"config", NULL},
    {"state", NULL},
};
static const struct fa_field fa_record_v201[] = {
    {"id", NULL},       {"updated_at", NULL},   {"created_at", NULL},           {"user_id", NULL},
    {"agent_id", NULL}, {"source", "\"user\""}, {"source_schedule_id", "null"}, {"team_id", "null"},
    {"config", NULL},   {"state", NULL},
};
static const char *const fa_record_v201_drop[] = {"source_chat_id", "source_channel_id"};

static const struct fa_field fa_config_head[] = {
    {"workspace_id", NULL},
    {"name", NULL},
    {"cwd", "null"},
    {"chat_model_config", "null"},
    {"fallback_chat_model_config", "null"},
    {"tts_model_config", "null"},
    {"knowledge_config", "null"},
};
static const struct fa_field fa_config_v201[] = {
    {"workspace_id", NULL},
    {"name", NULL},
    {"chat_model_config", "null"},
    {"fallback_chat_model_config", "null"},
};
static const char *const fa_config_v201_drop[] = {"cwd", "tts_model_config", "knowledge_config"};

static const struct fa_field fa_state_head[] = {
    {"session_id", NULL},
    {"summary", "\"\""},
    {"context", "[]"},
    {"reply_context", NULL},
    {"permission_context", FA_DEF_PERMISSION},
    {"tool_context", FA_DEF_TOOL_CONTEXT},
    {"tasks_context", "{\"tasks\":[]}"},
    {"middle_context", "{}"},
};
static const char *const fa_state_head_drop[] = {"reply_id", "cur_iter"};
static const struct fa_field fa_state_v201[] = {
    {"session_id", NULL},
    {"summary", "\"\""},
    {"context", "[]"},
    {"reply_id", NULL},
    {"cur_iter", "0"},
    {"permission_context", FA_DEF_PERMISSION},
    {"tool_context", FA_DEF_TOOL_CONTEXT},
    {"tasks_context", "{\"tasks\":[]}"},
};
static const char *const fa_state_v201_drop[] = {"reply_context", "middle_context"};
static const struct fa_field fa_reply_context[] = {
    {"reply_id", NULL},
    {"cur_iter", "0"},
    {"structured_schema", "null"},
    {"structured_output", "null"},
};

static bool fa_in_list(const char *const *list, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], key) == 0)
			return true;
	return false;
}

/* Re-dumps src (borrowed) the way a given pydantic model would: `fields` first and in order
 * (missing ones get their default), then any other members, minus those in `drop`.
 * Returns a new reference. */
static json_t *fa_reshape(json_t *src, const struct fa_field *fields, size_t nf,
                          const char *const *drop, size_t nd)
{
	json_t *out = json_object(), *val;
	const char *key;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < nf; i++) {
		json_t *v = json_object_get(src, fields[i].key);

		if (v != NULL) {
			if (json_object_set(out, fields[i].key, v))
				goto fail;
		} else if (fields[i].def != NULL) {
			if (json_object_set_new(out, fields[i].key,
			                        json_loads(fields[i].def, JSON_DECODE_ANY, NULL)))
				goto fail;
		}
	}
	for (void *it = json_object_iter(src); it != NULL; it = json_object_iter_next(src, it)) {
		key = json_object_iter_key(it);
		val = json_object_iter_value(it);
		if (json_object_get(out, key) != NULL || fa_in_list(drop, nd, key))
			continue;
		if (json_object_set(out, key, val))
			goto fail;
	}
	return out;
fail:
	json_decref(out);
	return NULL;
}

/* The state as the served version dumps it in a listing (record_id is borrowed). HEAD moves the
 * legacy top-level reply_id/cur_iter into reply_context (as its loader does) and trims context,
 * summary and tool_context; v2.0.1 keeps everything and has the reply fields at the top level.
 * Returns a new reference. */
static json_t *fa_state_view(struct fa_store *st, json_t *state, json_t *record_id)
{
	json_t *src = json_is_object(state) ? json_copy(state) : json_object();
	json_t *rc = json_object_get(src, "reply_context"), *rid, *iter, *out = NULL;
	char hex[33];

	if (src == NULL)
		return NULL;
	/* A state's own id is overwritten with the record id on its first run. */
	if (json_object_get(src, "session_id") == NULL && record_id != NULL &&
	    json_object_set(src, "session_id", record_id)) {
		json_decref(src);
		return NULL;
	}
	rid = json_object_get(rc, "reply_id");
	if (rid == NULL)
		rid = json_object_get(src, "reply_id");
	iter = json_object_get(rc, "cur_iter");
	if (iter == NULL)
		iter = json_object_get(src, "cur_iter");
	if (rid == NULL) {
		fa_rng_hex(&st->rng, hex); /* pydantic's default factory would do the same */
		rid = json_string(hex);
	} else {
		json_incref(rid);
	}
	iter = iter != NULL ? json_incref(iter) : json_integer(0);
	if (st->shape == FA_SHAPE_HEAD) {
		json_t *rcs = json_is_object(rc) ? json_copy(rc) : json_object();

		if (rcs == NULL || json_object_set(rcs, "reply_id", rid) ||
		    json_object_set(rcs, "cur_iter", iter) ||
		    json_object_set_new(
		        src, "reply_context",
		        fa_reshape(rcs, fa_reply_context, FK_COUNT(fa_reply_context), NULL, 0)) ||
		    json_object_set_new(src, "context", json_array()) ||
		    json_object_set_new(src, "summary", json_string("")) ||
		    json_object_set_new(src, "tool_context",
		                        json_loads(FA_DEF_TOOL_CONTEXT, 0, NULL))) {
			json_decref(rcs);
			goto out;
		}
		json_decref(rcs);
		out = fa_reshape(src, fa_state_head, FK_COUNT(fa_state_head), fa_state_head_drop,
		                 FK_COUNT(fa_state_head_drop));
	} else {
		if (json_object_set(src, "reply_id", rid) || json_object_set(src, "cur_iter", iter))
			goto out;
		out = fa_reshape(src, fa_state_v201, FK_COUNT(fa_state_v201), fa_state_v201_drop,
		                 FK_COUNT(fa_state_v201_drop));
	}
out:
	json_decref(rid);
	json_decref(iter);
	json_decref(src);
	return out;
}

/* HEAD's SessionService.derive_parked_status: only the tail message counts, and only when it
 * is an assistant message; a call asking for permission dominates a submitted one. */
static const char *fa_parked_status(json_t *context)
{
	size_t n = json_array_size(context), i;
	json_t *last, *content;
	bool asking = false, submitted = false;

	if (n == 0)
		return "idle";
	last = json_array_get(context, n - 1);
	if (!json_is_string(json_object_get(last, "role")) ||
	    strcmp(fk_get_str(last, "role"), "assistant") != 0)
		return "idle";
	content = json_object_get(last, "content");
	for (i = 0; i < json_array_size(content); i++) {
		json_t *b = json_array_get(content, i);
		const char *type = fk_get_str(b, "type"), *state = fk_get_str(b, "state");

		if (type == NULL || state == NULL || strcmp(type, "tool_call") != 0)
			continue;
		asking |= strcmp(state, "asking") == 0;
		submitted |= strcmp(state, "submitted") == 0;
	}
	return asking ? "awaiting_permission" : submitted ? "awaiting_external_result" : "idle";
}

/* Serialises one SessionView for the served shape into s->view. */
static int fa_build_view(struct fa_store *st, struct fa_session *s, json_t *entry)
{
	json_t *record = json_object_get(entry, "record"), *team = json_object_get(entry, "team");
	json_t *src = json_copy(record), *config = json_object_get(record, "config");
	json_t *rec = NULL, *view = NULL;
	bool head = st->shape == FA_SHAPE_HEAD;
	int rc = -1;

	if (src == NULL)
		return -1;
	if (json_is_object(config) &&
	    json_object_set_new(
	        src, "config",
	        head ? fa_reshape(config, fa_config_head, FK_COUNT(fa_config_head), NULL, 0)
	             : fa_reshape(config, fa_config_v201, FK_COUNT(fa_config_v201),
	                          fa_config_v201_drop, FK_COUNT(fa_config_v201_drop))))
		goto out;
	if (json_object_set_new(
	        src, "state",
	        fa_state_view(st, json_object_get(record, "state"), json_object_get(record, "id"))))
		goto out;
	rec = head ? fa_reshape(src, fa_record_head, FK_COUNT(fa_record_head), NULL, 0)
	           : fa_reshape(src, fa_record_v201, FK_COUNT(fa_record_v201), fa_record_v201_drop,
	                        FK_COUNT(fa_record_v201_drop));
	if (rec == NULL)
		goto out;
	if (team == NULL)
		team = json_null();
	if (head)
		view = json_pack("{s:O, s:b, s:s, s:O}", "session", rec, "is_running", s->running,
		                 "status", s->running ? "running" : s->status, "team", team);
	else
		view = json_pack("{s:O, s:b, s:O}", "session", rec, "is_running", s->running,
		                 "team", team);
	if (view == NULL)
		goto out;
	s->view = json_dumps(view, FA_DUMP_FLAGS);
	if (s->view == NULL)
		goto out;
	s->view_len = strlen(s->view);
	rc = 0;
out:
	json_decref(view);
	json_decref(rec);
	json_decref(src);
	return rc;
}

struct fa_sort_item {
	int64_t created;
	size_t ord;
	size_t idx;
};

/* Newest first; equal created_at keeps data order (any stable order is faithful: the real
 * server's tie order depends on its storage). */
static int fa_sort_cmp(const void *a, const void *b)
{
	const struct fa_sort_item *x = a, *y = b;

	if (x->created != y->created)
		return x->created > y->created ? -1 : 1;
	return x->ord < y->ord ? -1 : x->ord > y->ord;
}

static int fa_sort_list(struct fa_store *st, json_t *list)
{
	size_t n = json_array_size(list), i;
	struct fa_sort_item *items;

	if (n < 2)
		return 0;
	items = calloc(n, sizeof(*items));
	if (items == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		size_t idx = (size_t)json_integer_value(json_array_get(list, i));

		items[i] = (struct fa_sort_item){st->sess[idx].created, st->sess[idx].ord, idx};
	}
	qsort(items, n, sizeof(*items), fa_sort_cmp);
	for (i = 0; i < n; i++)
		json_array_set_new(list, i, json_integer((json_int_t)items[i].idx));
	free(items);
	return 0;
}

/* Indexes one session entry of `user` (ux is its index object). */
static int fa_index_session(struct fa_store *st, json_t *ux, json_t *entry, size_t k, char *err,
                            size_t errlen)
{
	json_t *record = json_object_get(entry, "record"), *state, *msgs, *lists, *byid, *l, *m;
	json_t *running = json_object_get(entry, "is_running"), *team;
	const char *sid = fk_get_str(record, "id"), *aid = fk_get_str(record, "agent_id");
	struct fa_session *s = &st->sess[k];

	if (sid == NULL || aid == NULL) {
		snprintf(err, errlen, "record needs string \"id\" and \"agent_id\"");
		return -1;
	}
	if (fa_parse_time(fk_get_str(record, "created_at"), &s->created)) {
		snprintf(err, errlen, "session %s: bad or missing record.created_at", sid);
		return -1;
	}
	team = json_object_get(entry, "team");
	if ((running != NULL && !json_is_boolean(running)) ||
	    (team != NULL && !json_is_object(team) && !json_is_null(team))) {
		snprintf(err, errlen, "session %s: is_running must be a bool, team null or object",
		         sid);
		return -1;
	}
	state = json_object_get(record, "state");
	msgs = json_object_get(entry, "messages");
	if (msgs == NULL)
		msgs = json_object_get(state, "context");
	if ((msgs != NULL && !json_is_array(msgs)) ||
	    (json_object_get(state, "context") != NULL &&
	     !json_is_array(json_object_get(state, "context")))) {
		snprintf(err, errlen, "session %s: messages and state.context must be arrays", sid);
		return -1;
	}
	s->id = sid;
	s->ord = k;
	s->running = json_is_true(running);
	s->status = fa_parked_status(json_object_get(state, "context"));
	s->messages = msgs;
	lists = json_object_get(ux, "lists");
	byid = json_object_get(ux, "byid");
	l = json_object_get(lists, aid);
	if (l == NULL && json_object_set_new(lists, aid, l = json_array()))
		return -1;
	m = json_object_get(byid, aid);
	if (m == NULL && json_object_set_new(byid, aid, m = json_object()))
		return -1;
	if (json_array_append_new(l, json_integer((json_int_t)k)) ||
	    json_object_set_new(m, sid, json_integer((json_int_t)k)))
		return -1;
	if (s->running && json_object_set_new(st->running, sid, json_true()))
		return -1;
	return 0;
}

static void fa_store_free(struct fa_store *st)
{
	for (size_t i = 0; i < st->nsess; i++)
		free(st->sess[i].view);
	free(st->sess);
	json_decref(st->running);
	json_decref(st->index);
	json_decref(st->root);
	memset(st, 0, sizeof(*st));
}

/* Takes the dataset root (stolen), validates and indexes it, and serialises every listing
 * item. On error fills err and returns -1; fa_store_free() is still needed. */
static int fa_store_build(struct fa_store *st, json_t *root, enum fa_shape shape, char *err,
                          size_t errlen)
{
	json_t *users = json_object_get(root, "users");
	size_t total = 0, k = 0, i;

	st->root = root;
	st->shape = shape;
	st->rng.s = 0x5eed;
	st->index = json_object();
	st->running = json_object();
	if (st->index == NULL || st->running == NULL)
		goto oom;
	if (!json_is_object(users)) {
		snprintf(err, errlen, "the top level needs a \"users\" object");
		return -1;
	}
	for (void *it = json_object_iter(users); it != NULL;
	     it = json_object_iter_next(users, it)) {
		const char *uname = json_object_iter_key(it);
		json_t *u = json_object_iter_value(it), *a = json_object_get(u, "agents");
		json_t *s = json_object_get(u, "sessions");

		if (!json_is_object(u) || (a != NULL && !json_is_array(a)) ||
		    (s != NULL && !json_is_array(s))) {
			snprintf(err, errlen,
			         "users.%s: expected {\"agents\": [], \"sessions\": []}", uname);
			return -1;
		}
		total += json_array_size(s);
	}
	st->sess = calloc(total ? total : 1, sizeof(*st->sess));
	if (st->sess == NULL)
		goto oom;
	st->nsess = total;
	for (void *it = json_object_iter(users); it != NULL;
	     it = json_object_iter_next(users, it)) {
		const char *uname = json_object_iter_key(it);
		json_t *u = json_object_iter_value(it), *ux, *lists;
		json_t *agents = json_object_get(u, "agents"),
		       *sessions = json_object_get(u, "sessions");
		char sub[256];

		ux = json_pack("{s:{}, s:{}, s:{}}", "agents", "lists", "byid");
		if (json_object_set_new(st->index, uname, ux))
			goto oom;
		for (i = 0; i < json_array_size(agents); i++) {
			json_t *v = json_array_get(agents, i);
			const char *aid = fk_get_str(v, "id");

			if (aid == NULL) {
				snprintf(err, errlen, "users.%s.agents[%zu]: needs a string \"id\"",
				         uname, i);
				return -1;
			}
			if (json_object_set(json_object_get(ux, "agents"), aid, v))
				goto oom;
		}
		for (i = 0; i < json_array_size(sessions); i++) {
			json_t *v = json_array_get(sessions, i);

			if (!json_is_object(v) || !json_is_object(json_object_get(v, "record"))) {
				snprintf(err, errlen,
				         "users.%s.sessions[%zu]: needs a \"record\" object", uname,
				         i);
				return -1;
			}
			if (fa_index_session(st, ux, v, k, sub, sizeof(sub))) {
				snprintf(err, errlen, "users.%s.sessions[%zu]: %s", uname, i, sub);
				return -1;
			}
			if (fa_build_view(st, &st->sess[k], v))
				goto oom;
			k++;
		}
		lists = json_object_get(ux, "lists");
		for (void *li = json_object_iter(lists); li != NULL;
		     li = json_object_iter_next(lists, li))
			if (fa_sort_list(st, json_object_iter_value(li)))
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

struct fa_server {
	struct fk_server fk;
	struct fa_store store;
};

static struct fa_server *fa_srv(struct fk_server *fk)
{
	return FK_CONTAINER_OF(fk, struct fa_server, fk);
}

/* A JSON reply; j is stolen (NULL gives an empty body). */
static void fa_reply_json(struct fk_reply *r, int code, const char *reason, json_t *j)
{
	fk_reply_json(r, code, reason, j, FA_DUMP_FLAGS);
}

/* FastAPI's HTTPException body: {"detail": "<prefix> '<id>' not found."} when id is set. */
static void fa_reply_detail(struct fk_reply *r, int code, const char *reason, const char *prefix,
                            const char *id)
{
	char *text;
	size_t len;

	if (id == NULL) {
		fk_reply_detail(r, code, reason, prefix);
		return;
	}
	len = strlen(prefix) + strlen(id) + 32;
	text = malloc(len);
	if (text == NULL) {
		fa_reply_json(r, code, reason, NULL);
		return;
	}
	snprintf(text, len, "%s '%s' not found.", prefix, id);
	fa_reply_json(r, code, reason, json_pack("{s:o}", "detail", fk_json_text(text)));
	free(text);
}

/* ------------------------------------------------------------------------------------------ */
/* Request parsing, FastAPI style                                                               */
/* ------------------------------------------------------------------------------------------ */

/* The last value of `key` in the query (Starlette keeps the last), decoded; a bare "key"
 * counts as "". Returns malloc'd text, or NULL when absent. */
static char *fa_query_get(const char *query, const char *key)
{
	/* An encoded NUL (%00) ends a key or value here, as it always has in this fake. */
	return fk_query_get(query, key, FK_NUL_CUT);
}

/* pydantic's lax str -> int: surrounding whitespace, a sign, digits with single underscores,
 * and a fraction of zeros are accepted. Out-of-range values saturate. 0 on success. */
static int fa_pyint(const char *s, long long *out)
{
	unsigned long long v = 0;
	bool neg = false, digit = false, sat = false;

	while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
		s++;
	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	for (; (*s >= '0' && *s <= '9') || *s == '_'; s++) {
		if (*s == '_') {
			if (!digit || s[1] < '0' || s[1] > '9')
				return -1;
			continue;
		}
		digit = true;
		if (v > (ULLONG_MAX - 9) / 10)
			sat = true;
		else
			v = v * 10 + (unsigned long long)(*s - '0');
	}
	if (!digit)
		return -1;
	if (*s == '.')
		for (s++; *s == '0'; s++)
			;
	while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
		s++;
	if (*s != '\0')
		return -1;
	if (sat || v > (unsigned long long)LLONG_MAX)
		*out = neg ? LLONG_MIN : LLONG_MAX;
	else
		*out = neg ? -(long long)v : (long long)v;
	return 0;
}

/* One FastAPI "missing" validation error. New reference. */
static json_t *fa_err_missing(const char *where, const char *name)
{
	return json_pack("{s:s, s:[s, s], s:s, s:n}", "type", "missing", "loc", where, name, "msg",
	                 "Field required", "input");
}

struct fa_int_rule {
	const char *name;
	bool has_min, has_max;
	long long min, max;
};

/* Validates an optional int query parameter like `int = Query(default, ge=, le=)`; appends a
 * pydantic error to `errors` when invalid. *out keeps its default when absent. */
static void fa_query_int(json_t *errors, const char *query, const struct fa_int_rule *rule,
                         long long *out)
{
	char *raw = fa_query_get(query, rule->name), msg[96];
	long long v;
	json_t *e = NULL;

	if (raw == NULL)
		return;
	if (fa_pyint(raw, &v)) {
		e = json_pack(
		    "{s:s, s:[s, s], s:s, s:o}", "type", "int_parsing", "loc", "query", rule->name,
		    "msg", "Input should be a valid integer, unable to parse string as an integer",
		    "input", fk_json_text(raw));
	} else if (rule->has_min && v < rule->min) {
		snprintf(msg, sizeof(msg), "Input should be greater than or equal to %lld",
		         rule->min);
		e = json_pack("{s:s, s:[s, s], s:s, s:o, s:{s:I}}", "type", "greater_than_equal",
		              "loc", "query", rule->name, "msg", msg, "input", fk_json_text(raw),
		              "ctx", "ge", (json_int_t)rule->min);
	} else if (rule->has_max && v > rule->max) {
		snprintf(msg, sizeof(msg), "Input should be less than or equal to %lld", rule->max);
		e = json_pack("{s:s, s:[s, s], s:s, s:o, s:{s:I}}", "type", "less_than_equal",
		              "loc", "query", rule->name, "msg", msg, "input", fk_json_text(raw),
		              "ctx", "le", (json_int_t)rule->max);
	} else {
		*out = v;
	}
	if (e != NULL)
		json_array_append_new(errors, e);
	free(raw);
}

/* get_current_user_id. FastAPI solves this dependency before the endpoint's own parameters:
 * a missing header is the first 422 error, and an empty one is a 401 raised before any
 * query parameter is validated. Several headers: the first wins. Returns 1 on the 401. */
static int fa_auth(struct evhttp_request *req, json_t *errors, struct fk_reply *r,
                   const char **user)
{
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), "X-User-ID");

	*user = v;
	if (v == NULL) {
		json_array_append_new(errors, fa_err_missing("header", "x-user-id"));
		return 0;
	}
	if (*v == '\0') {
		fa_reply_detail(r, 401, "Unauthorized", "X-User-ID header is required.", NULL);
		return 1;
	}
	return 0;
}

/* The common prologue of a route: identity, then agent_id (when agent is not NULL). Returns 0 when
 * the route may go on; otherwise r holds the 401/422 and *agent is NULL. */
static int fa_prologue(struct evhttp_request *req, const char *query, json_t *errors,
                       struct fk_reply *r, const char **user, char **agent)
{
	if (agent != NULL)
		*agent = NULL;
	if (fa_auth(req, errors, r, user))
		return -1;
	if (agent != NULL) {
		*agent = fa_query_get(query, "agent_id");
		if (*agent == NULL)
			json_array_append_new(errors, fa_err_missing("query", "agent_id"));
	}
	return 0;
}

/* 422 with the collected errors when there are any. Returns 1 when it replied. */
static int fa_reply_errors(struct fk_reply *r, json_t *errors)
{
	if (json_array_size(errors) == 0)
		return 0;
	fa_reply_json(r, 422, "Unprocessable Entity", json_pack("{s:O}", "detail", errors));
	return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Routes                                                                                       */
/* ------------------------------------------------------------------------------------------ */

enum fa_route {
	FA_R_NONE,
	FA_R_SESSIONS,
	FA_R_AGENTS,
	FA_R_SESSION,
	FA_R_MESSAGES,
	FA_R_STATUS,
	FA_R_STREAM,
	FA_R_INTERRUPT
};

struct fa_route_def {
	unsigned real;     /* methods the real server has on this path */
	unsigned impl;     /* methods this fake answers */
	const char *allow; /* the Allow header of a 405 */
};

static const struct fa_route_def fa_routes[] = {
    [FA_R_SESSIONS] = {EVHTTP_REQ_GET | EVHTTP_REQ_POST, EVHTTP_REQ_GET, "GET, POST"},
    [FA_R_AGENTS] = {EVHTTP_REQ_GET | EVHTTP_REQ_POST, EVHTTP_REQ_GET, "GET, POST"},
    [FA_R_SESSION] = {EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH, 0, "DELETE, PATCH"},
    [FA_R_MESSAGES] = {EVHTTP_REQ_GET, EVHTTP_REQ_GET, "GET"},
    [FA_R_STATUS] = {EVHTTP_REQ_GET, EVHTTP_REQ_GET, "GET"},
    [FA_R_STREAM] = {EVHTTP_REQ_GET, 0, "GET"},
    [FA_R_INTERRUPT] = {EVHTTP_REQ_POST, 0, "POST"},
};

/* Matches a decoded path the way Starlette does (a path parameter is one non-empty segment).
 * For per-session routes *sid gets the session id (malloc'd) when sid is not NULL. /status
 * (2026-07) and /interrupt only exist on HEAD. */
static enum fa_route fa_match(const char *path, enum fa_shape shape, char **sid)
{
	static const char prefix[] = "/sessions/";
	const char *id, *rest;
	enum fa_route route;
	size_t idlen;

	if (strcmp(path, "/sessions/") == 0)
		return FA_R_SESSIONS;
	if (strcmp(path, "/agent/") == 0)
		return FA_R_AGENTS;
	if (strncmp(path, prefix, sizeof(prefix) - 1) != 0)
		return FA_R_NONE;
	id = path + sizeof(prefix) - 1;
	idlen = strcspn(id, "/");
	if (idlen == 0)
		return FA_R_NONE;
	rest = id + idlen;
	if (*rest == '\0')
		route = FA_R_SESSION;
	else if (strcmp(rest, "/messages") == 0)
		route = FA_R_MESSAGES;
	else if (strcmp(rest, "/stream") == 0)
		route = FA_R_STREAM;
	else if (strcmp(rest, "/status") == 0 && shape == FA_SHAPE_HEAD)
		route = FA_R_STATUS;
	else if (strcmp(rest, "/interrupt") == 0 && shape == FA_SHAPE_HEAD)
		route = FA_R_INTERRUPT;
	else
		return FA_R_NONE;
	if (sid != NULL)
		*sid = strndup(id, idlen);
	return route;
}

/* The session (user, agent, id) or NULL: storage is keyed by all three. */
static struct fa_session *fa_lookup(struct fa_store *st, const char *user, const char *agent,
                                    const char *sid)
{
	json_t *ux = json_object_get(st->index, user);
	json_t *v = json_object_get(json_object_get(json_object_get(ux, "byid"), agent), sid);

	return v != NULL ? &st->sess[json_integer_value(v)] : NULL;
}

/* GET /sessions/?agent_id= : every session of (user, agent), newest first. */
static void fa_h_sessions(struct fa_server *srv, struct evhttp_request *req, const char *query,
                          struct fk_reply *r)
{
	json_t *errors = json_array(), *ux, *list;
	const char *user;
	char *agent = NULL;
	size_t i;

	if (fa_prologue(req, query, errors, r, &user, &agent) || fa_reply_errors(r, errors))
		goto out;
	ux = json_object_get(srv->store.index, user);
	if (json_object_get(json_object_get(ux, "agents"), agent) == NULL) {
		fa_reply_detail(r, 404, "Not Found", "Agent", agent);
		goto out;
	}
	list = json_object_get(json_object_get(ux, "lists"), agent);
	if (fk_reply_init(r, 200, "OK", "application/json"))
		goto out;
	evbuffer_add(r->body, "{\"sessions\":[", 13);
	for (i = 0; i < json_array_size(list); i++) {
		struct fa_session *s =
		    &srv->store.sess[json_integer_value(json_array_get(list, i))];

		if (i > 0)
			evbuffer_add(r->body, ",", 1);
		/* The store outlives every reply, so the items are not copied. */
		evbuffer_add_reference(r->body, s->view, s->view_len, NULL, NULL);
	}
	evbuffer_add_printf(r->body, "],\"total\":%zu}", json_array_size(list));
out:
	free(agent);
	json_decref(errors);
}

/* GET /agent/ : the user's agents. */
static void fa_h_agents(struct fa_server *srv, struct evhttp_request *req, struct fk_reply *r)
{
	json_t *errors = json_array(), *agents;
	const char *user;

	if (fa_prologue(req, NULL, errors, r, &user, NULL) || fa_reply_errors(r, errors))
		goto out;
	agents = json_object_get(json_object_get(json_object_get(srv->store.root, "users"), user),
	                         "agents");
	fa_reply_json(r, 200, "OK",
	              json_pack("{s:o, s:I}", "agents",
	                        agents != NULL ? json_incref(agents) : json_array(), "total",
	                        (json_int_t)json_array_size(agents)));
out:
	json_decref(errors);
}

/* GET /sessions/{id}/messages. HEAD: the latest `limit` messages older than `before`, in
 * chronological order, plus has_more (offset is validated and ignored). v2.0.1: a plain
 * offset/limit window from the oldest. */
static void fa_h_messages(struct fa_server *srv, struct evhttp_request *req, const char *sid,
                          const char *query, struct fk_reply *r)
{
	static const struct fa_int_rule off_head = {"offset", false, false, 0, 0};
	static const struct fa_int_rule off_v201 = {"offset", true, false, 0, 0};
	static const struct fa_int_rule limit = {"limit", true, true, 1, FA_MSG_LIMIT_MAX};
	bool head = srv->store.shape == FA_SHAPE_HEAD, has_more = false;
	json_t *errors = json_array(), *page = NULL, *msgs, *v;
	long long offset = 0, lim = FA_MSG_LIMIT_DEFAULT, start = 0, end = -1, n;
	char *agent = NULL, *before = NULL;
	struct fa_session *s;
	const char *user;

	if (fa_prologue(req, query, errors, r, &user, &agent))
		goto out;
	if (head)
		before = fa_query_get(query, "before");
	fa_query_int(errors, query, head ? &off_head : &off_v201, &offset);
	fa_query_int(errors, query, &limit, &lim);
	if (fa_reply_errors(r, errors))
		goto out;
	s = fa_lookup(&srv->store, user, agent, sid);
	if (s == NULL) {
		fa_reply_detail(r, 404, "Not Found", "Session", sid);
		goto out;
	}
	msgs = s->messages;
	n = (long long)json_array_size(msgs);
	if (head) {
		end = n - 1;
		if (before != NULL) {
			end = -1; /* an unknown cursor gives an empty page */
			for (long long i = 0; i < n; i++) {
				const char *id = fk_get_str(json_array_get(msgs, (size_t)i), "id");

				if (id != NULL && strcmp(id, before) == 0) {
					end = i - 1;
					break;
				}
			}
		}
		start = end - lim + 1 > 0 ? end - lim + 1 : 0;
		has_more = end >= 0 && start > 0;
	} else {
		start = offset;
		end = offset < n ? (offset + lim < n ? offset + lim : n) - 1 : -1;
	}
	page = json_array();
	for (long long i = start; page != NULL && i <= end; i++)
		json_array_append(page, json_array_get(msgs, (size_t)i));
	/* is_running reads the run lock, which is keyed by the session id alone. */
	v = json_boolean(json_object_get(srv->store.running, sid) != NULL);
	if (head)
		fa_reply_json(r, 200, "OK",
		              json_pack("{s:o, s:o, s:b}", "messages", page, "is_running", v,
		                        "has_more", has_more));
	else
		fa_reply_json(r, 200, "OK",
		              json_pack("{s:o, s:o}", "messages", page, "is_running", v));
	page = NULL;
out:
	json_decref(page);
	free(before);
	free(agent);
	json_decref(errors);
}

/* GET /sessions/{id}/status (HEAD). Like the real service it answers "running" from the run
 * lock before it even loads the session. */
static void fa_h_status(struct fa_server *srv, struct evhttp_request *req, const char *sid,
                        const char *query, struct fk_reply *r)
{
	json_t *errors = json_array();
	struct fa_session *s = NULL;
	const char *user, *status;
	char *agent = NULL;

	if (fa_prologue(req, query, errors, r, &user, &agent) || fa_reply_errors(r, errors))
		goto out;
	if (json_object_get(srv->store.running, sid) != NULL) {
		status = "running";
	} else {
		s = fa_lookup(&srv->store, user, agent, sid);
		if (s == NULL) {
			fa_reply_detail(r, 404, "Not Found", "Session", sid);
			goto out;
		}
		status = s->status;
	}
	fa_reply_json(r, 200, "OK",
	              json_pack("{s:o, s:s}", "session_id", fk_json_text(sid), "status", status));
out:
	free(agent);
	json_decref(errors);
}

/* Starlette's redirect_slashes: a path that matches nothing, but would with the trailing
 * slash added (or stripped), gets a 307 to that path, query kept. Returns 1 when it did. */
static int fa_redirect(struct fa_server *srv, struct evhttp_request *req, const char *raw_path,
                       const char *path, const char *query, struct fk_reply *r)
{
	size_t plen = strlen(path), rlen = strlen(raw_path), len;
	const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
	char *alt, *loc;
	bool strip = plen > 1 && path[plen - 1] == '/';
	enum fa_route route;
	char fallback[32];

	if (plen <= 1)
		return 0;
	alt = malloc(plen + 2);
	if (alt == NULL)
		return 0;
	memcpy(alt, path, plen + 1);
	if (strip) {
		while (plen > 0 && alt[plen - 1] == '/')
			alt[--plen] = '\0';
	} else {
		alt[plen] = '/';
		alt[plen + 1] = '\0';
	}
	route = plen > 0 ? fa_match(alt, srv->store.shape, NULL) : FA_R_NONE;
	free(alt);
	if (route == FA_R_NONE)
		return 0;
	if (host == NULL || *host == '\0') {
		snprintf(fallback, sizeof(fallback), "127.0.0.1:%u", srv->fk.port);
		host = fallback;
	}
	if (strip)
		while (rlen > 0 && raw_path[rlen - 1] == '/')
			rlen--;
	len = strlen(host) + rlen + (query != NULL ? strlen(query) : 0) + 16;
	loc = malloc(len);
	if (loc == NULL)
		return 0;
	snprintf(loc, len, "http://%s%.*s%s%s%s", host, (int)rlen, raw_path, strip ? "" : "/",
	         query != NULL ? "?" : "", query != NULL ? query : "");
	fk_reply_clear(r);
	r->code = 307;
	r->reason = "Temporary Redirect";
	r->location = loc;
	return 1;
}

/* Routes one non-control request into r (the fk_fake serve hook). */
static void fa_route(struct fk_server *fk, struct evhttp_request *req, const char *raw_path,
                     const char *path, const char *query, struct fk_reply *r)
{
	struct fa_server *srv = fa_srv(fk);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	char *sid = NULL;
	enum fa_route route = fa_match(path, srv->store.shape, &sid);
	const struct fa_route_def *def;

	/* Builds before the durable message log have no such route at all. */
	if (route == FA_R_MESSAGES && srv->store.no_messages) {
		free(sid);
		sid = NULL;
		route = FA_R_NONE;
	}
	def = &fa_routes[route];
	if (route == FA_R_NONE) {
		if (!fa_redirect(srv, req, raw_path, path, query, r))
			fa_reply_detail(r, 404, "Not Found", "Not Found", NULL);
		return;
	}
	if (!(def->impl & (unsigned)cmd)) {
		if (def->real & (unsigned)cmd) {
			fa_reply_detail(r, 501, "Not Implemented", "Not implemented by " FA_NAME,
			                NULL);
		} else {
			fa_reply_detail(r, 405, "Method Not Allowed", "Method Not Allowed", NULL);
			r->allow = def->allow;
		}
		free(sid);
		return;
	}
	switch (route) {
	case FA_R_SESSIONS:
		fa_h_sessions(srv, req, query, r);
		break;
	case FA_R_AGENTS:
		fa_h_agents(srv, req, r);
		break;
	case FA_R_MESSAGES:
		fa_h_messages(srv, req, sid, query, r);
		break;
	case FA_R_STATUS:
		fa_h_status(srv, req, sid, query, r);
		break;
	default:
		break;
	}
	free(sid);
}

/* ------------------------------------------------------------------------------------------ */
/* The fake                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Mode http500: FastAPI's own 500 body. */
static void fa_fail(struct fk_server *fk, struct fk_reply *r)
{
	(void)fk;
	fa_reply_detail(r, 500, "Internal Server Error", "Internal Server Error", NULL);
}

static const struct fk_header fa_recorded[] = {{"x_user_id", "X-User-ID"}};

static const struct fk_fake fa_fake = {
    .name = FA_NAME,
    .dump_flags = FA_DUMP_FLAGS,
    .query_nul = FK_NUL_CUT,
    .recorded = fa_recorded,
    .nrecorded = FK_COUNT(fa_recorded),
    .mode_usage = "mode must be ok|slow|garbage|wrong-shape|http500|close and delay_ms 0..600000",
    .serve = fa_route,
    .fail = fa_fail,
};

/* ------------------------------------------------------------------------------------------ */
/* main                                                                                         */
/* ------------------------------------------------------------------------------------------ */

static void fa_usage(FILE *fp)
{
	fprintf(fp,
	        "usage: " FA_NAME " [--port N] [--port-file F] [--data FILE |"
	        " --generate N[:AGENTS[:USER]]]\n"
	        "       [--seed S] [--shape v2.0.1|head] [--mode ok|slow|garbage|wrong-shape|"
	        "http500|close]\n"
	        "       [--delay-ms N] [--quiet]\n"
	        "\n"
	        "A fake AgentScope agent service on 127.0.0.1 for tests and demos.\n"
	        "  --port N          port to listen on (0 = ephemeral, the default)\n"
	        "  --port-file F     write the bound port and a newline to F once listening\n"
	        "  --data FILE       serve this dataset (JSON, at most 64 MiB)\n"
	        "  --generate SPEC   generate N sessions over AGENTS agents (3) for USER (alice),\n"
	        "                    plus a second user \"bob\" with 5 sessions\n"
	        "  --seed S          generator seed (1)\n"
	        "  --shape V         wire shape of GET /sessions/ and /messages (head)\n"
	        "  --no-messages     no /sessions/{id}/messages route (builds before the log)\n"
	        "  --mode M          misbehaviour for every non-control route (ok)\n"
	        "  --delay-ms N      delay of --mode slow (3000)\n"
	        "  --quiet           do not log requests on stderr\n"
	        "Control: GET|DELETE /__fake/requests, POST /__fake/mode?mode=M&delay_ms=N\n");
}

struct fa_opts {
	struct fk_opts c;
	enum fa_shape shape;
	bool no_messages;
};

/* --shape and --no-messages, the options that are fake_agentscope's own. */
static int fa_parse_opt(int c, const char *arg, void *ctx)
{
	struct fa_opts *o = ctx;

	if (c == 'M') {
		o->no_messages = true;
		return 0;
	}
	if (c != 'S')
		return 1;
	if (strcmp(arg, "head") == 0)
		o->shape = FA_SHAPE_HEAD;
	else if (strcmp(arg, "v2.0.1") == 0)
		o->shape = FA_SHAPE_V201;
	else
		return -1;
	return 0;
}

/* Parses argv; returns 0, or -1 after printing why (the caller exits 2). */
static int fa_parse_args(int argc, char **argv, struct fa_opts *o)
{
	static const struct option longopts[] = {
	    {"port", required_argument, NULL, 'p'},     {"port-file", required_argument, NULL, 'f'},
	    {"data", required_argument, NULL, 'd'},     {"generate", required_argument, NULL, 'g'},
	    {"seed", required_argument, NULL, 's'},     {"shape", required_argument, NULL, 'S'},
	    {"no-messages", no_argument, NULL, 'M'},    {"mode", required_argument, NULL, 'm'},
	    {"delay-ms", required_argument, NULL, 'D'}, {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
	};

	o->shape = FA_SHAPE_HEAD;
	o->no_messages = false;
	if (fk_parse_args(FA_NAME, argc, argv, longopts, &o->c, fa_parse_opt, o, fa_usage))
		return -1;
	if (o->c.data != NULL && o->c.generate != NULL) {
		fprintf(stderr, FA_NAME ": --data and --generate exclude each other\n");
		fa_usage(stderr);
		return -1;
	}
	return 0;
}

/* Parses "N[:AGENTS[:USER]]"; 0 on success. */
static int fa_parse_generate(const char *spec, unsigned *n, unsigned *agents, char *user,
                             size_t ulen)
{
	char buf[64 + FA_MAX_USER_LEN], *rest;
	json_t *check;

	snprintf(user, ulen, "alice");
	if (fk_parse_generate(spec, buf, sizeof(buf), FA_MAX_GENERATE, n, agents, &rest))
		return -1;
	if (rest == NULL)
		return 0;
	if (*rest == '\0' || strlen(rest) > FA_MAX_USER_LEN)
		return -1;
	check = json_string(rest); /* the user id becomes a JSON key: UTF-8 only */
	if (check == NULL)
		return -1;
	json_decref(check);
	snprintf(user, ulen, "%s", rest);
	return 0;
}

int main(int argc, char **argv)
{
	struct fa_opts o;
	struct fa_server srv = {0};
	json_t *root = NULL;
	char err[512], user[FA_MAX_USER_LEN + 1];
	unsigned n, agents;
	int status = 1;

	if (fa_parse_args(argc, argv, &o))
		return 2;
	if (o.c.generate != NULL &&
	    fa_parse_generate(o.c.generate, &n, &agents, user, sizeof(user))) {
		fprintf(stderr, FA_NAME ": bad --generate '%s' (N[:AGENTS[:USER]], N <= %d)\n",
		        o.c.generate, FA_MAX_GENERATE);
		fa_usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (o.c.data != NULL)
		root = fk_load_file(o.c.data, err, sizeof(err));
	else if (o.c.generate != NULL)
		root = fa_generate(o.c.seed, n, agents, user);
	else
		root = json_pack("{s:{}}", "users");
	if (root == NULL) {
		fprintf(stderr, FA_NAME ": %s\n",
		        o.c.data != NULL ? err : "cannot build the dataset");
		return 1;
	}
	if (fa_store_build(&srv.store, root, o.shape, err, sizeof(err))) {
		fprintf(stderr, FA_NAME ": data: %s\n", err);
		goto out;
	}
	srv.store.no_messages = o.no_messages;
	status = fk_server_run(&srv.fk, &fa_fake, &o.c);
out:
	/* The server first (its buffers may still reference listing items), the store last. */
	fk_server_free(&srv.fk);
	fa_store_free(&srv.store);
	return status;
}
