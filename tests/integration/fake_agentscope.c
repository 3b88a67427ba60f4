/* fake_agentscope.c - a fake AgentScope "agent service" (agentscope-ai/agentscope,
 * src/agentscope/app) for the integration tests, the Node SDK conformance suite and the
 * README demo.
 *
 * It serves a dataset (a --data file, or a seeded --generate) through the session routes, in
 * the wire shape of v2.0.1 or of HEAD, and misbehaves on request (--mode, POST /__fake/mode)
 * so the gateway's failure paths can be exercised. It copies the real FastAPI server's
 * observable behaviour: 307 slash redirects, 422 validation bodies listing the X-User-ID
 * dependency first, 401 on an empty X-User-ID, the 404 texts "Agent '<id>' not found." and
 * "Session '<id>' not found.", 405 with an Allow header.
 *
 * Writes (POST /sessions/, PATCH and DELETE /sessions/{id}, POST /sessions/{id}/interrupt,
 * POST /chat/) change the store in memory. A chat run is simulated: it holds the session's
 * run lock for --run-ms (a loop timer), then leaves one assistant reply in the message log;
 * markers in the user's text ([tool:ask], [tool:external], [tool:auto], [reply:error],
 * [run:long]) make it park on a tool call, run one, fail or run until interrupted. What the
 * real service does asynchronously after answering /chat/ (failed runs, resumes that do not
 * fit) is visible the same way: in the log, never in the answer.
 *
 * GET /sessions/{id}/stream is the live SSE stream (§1.7): every step of a run is published as
 * an AgentEvent frame ("data: {json}", no event or id lines) while the reply is built, with
 * the ids the persisted reply ends up with (reply_id, block_id, tool_call_id). A new subscriber
 * first gets the replay log of the run in progress (trimmed when the run persists), then the
 * live frames; a heartbeat comment ":" follows every quiet --stream-heartbeat-ms. The stream
 * never ends on its own. Frames of a run's start go out when it starts, the rest when its
 * timer fires (the real service trickles them; the gateway must not care).
 *
 * One thread, one libevent loop; nothing blocks it (delays and runs are event timers). Every
 * listing item is serialised once per change and listings are built from references to those
 * texts.
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
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "fake_common.h"

#define FA_NAME "fake_agentscope"
#define FA_MAX_GENERATE 50000 /* about 33 KiB of memory per generated session */
#define FA_MAX_USER_LEN 128
#define FA_MSG_LIMIT_DEFAULT 50
#define FA_MSG_LIMIT_MAX 200
#define FA_RUN_MS_DEFAULT 300
#define FA_RUN_MS_MAX 600000

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
	unsigned long_turns;     /* turns of the main user's first session (0: 1-3 like the rest) */
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
	unsigned turns; /* 0: 1-3 */
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

	if (sp->turns > 0)
		nturns = sp->turns;
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
		if (i == 0)
			sp.turns = g->long_turns; /* an idle session with a long log */
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
static json_t *fa_generate(uint64_t seed, unsigned n, unsigned nagents, const char *user,
                           unsigned long_turns)
{
	struct fa_gen g = {.rng = {seed}, .long_turns = long_turns};
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

struct fa_run;

struct fa_session {
	json_t *entry;        /* {"record", "is_running", "team", "messages"}, held */
	const char *id;       /* record.id, borrowed from entry */
	const char *agent;    /* record.agent_id, borrowed from entry */
	char *user;           /* the user (X-User-ID) it belongs to */
	int64_t created;      /* record.created_at in microseconds, for ordering */
	size_t ord;           /* position in the data (creation order after): ties keep it */
	bool running;         /* someone holds the run lock */
	bool deleted;         /* gone: no index points here any more */
	const char *status;   /* parked status derived from state.context (a static string) */
	json_t *messages;     /* the durable log, borrowed from entry */
	struct fk_text *view; /* this session's SessionView in the served shape, serialised */
	struct fa_run *run;   /* the simulated run holding the lock, or NULL */
	json_t *queue;        /* HITL resumes waiting for the lock, oldest first */
	json_t *replay;       /* the run's replay log: its stream frames (strings), or NULL */
};

struct fa_store {
	json_t *root;    /* the dataset */
	json_t *index;   /* {user: {"agents": {id: AgentView}, "lists": {agent: [i…]},
	                  *         "byid": {agent: {session id: i}}}} */
	json_t *running; /* {session id: true}: the real run lock is keyed by session id alone */
	struct fa_session *sess;
	size_t nsess, cap;
	enum fa_shape shape;
	bool no_messages;      /* --no-messages: a build without the durable message log */
	struct fk_rng rng;     /* fills reply ids missing from the data, and every new id */
	unsigned run_ms;       /* how long a simulated run holds the lock */
	struct fk_rng ev_rng;  /* the ids of stream events (apart, so the others stay put) */
	unsigned heartbeat_ms; /* the stream's heartbeat interval */
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

/* The state as the served version dumps it (record_id is borrowed). HEAD moves the legacy
 * top-level reply_id/cur_iter into reply_context (as its loader does) and, in a listing (trim),
 * clears context, summary and tool_context; v2.0.1 keeps everything and has the reply fields at
 * the top level. Returns a new reference. */
static json_t *fa_state_view(struct fa_store *st, json_t *state, json_t *record_id, bool trim)
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
		    (trim && (json_object_set_new(src, "context", json_array()) ||
		              json_object_set_new(src, "summary", json_string("")) ||
		              json_object_set_new(src, "tool_context",
		                                  json_loads(FA_DEF_TOOL_CONTEXT, 0, NULL))))) {
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

/* A SessionRecord (borrowed) as the served version dumps it: config and state reshaped, the
 * state cleared as in a listing when trim. Returns a new reference. */
static json_t *fa_record_out(struct fa_store *st, json_t *record, bool trim)
{
	json_t *src = json_copy(record), *config = json_object_get(record, "config"), *rec = NULL;
	bool head = st->shape == FA_SHAPE_HEAD;

	if (src == NULL)
		return NULL;
	if (json_is_object(config) &&
	    json_object_set_new(
	        src, "config",
	        head ? fa_reshape(config, fa_config_head, FK_COUNT(fa_config_head), NULL, 0)
	             : fa_reshape(config, fa_config_v201, FK_COUNT(fa_config_v201),
	                          fa_config_v201_drop, FK_COUNT(fa_config_v201_drop))))
		goto out;
	if (json_object_set_new(src, "state",
	                        fa_state_view(st, json_object_get(record, "state"),
	                                      json_object_get(record, "id"), trim)))
		goto out;
	rec = head ? fa_reshape(src, fa_record_head, FK_COUNT(fa_record_head), NULL, 0)
	           : fa_reshape(src, fa_record_v201, FK_COUNT(fa_record_v201), fa_record_v201_drop,
	                        FK_COUNT(fa_record_v201_drop));
out:
	json_decref(src);
	return rec;
}

/* Serialises s's SessionView for the served shape into s->view (replacing the old text, which
 * replies still being written keep alive). */
static int fa_build_view(struct fa_store *st, struct fa_session *s)
{
	json_t *record = json_object_get(s->entry, "record"),
	       *team = json_object_get(s->entry, "team");
	json_t *rec = fa_record_out(st, record, true), *view = NULL;
	struct fk_text *text;

	if (rec == NULL)
		return -1;
	if (team == NULL)
		team = json_null();
	if (st->shape == FA_SHAPE_HEAD)
		view = json_pack("{s:o, s:b, s:s, s:O}", "session", rec, "is_running", s->running,
		                 "status", s->running ? "running" : s->status, "team", team);
	else
		view = json_pack("{s:o, s:b, s:O}", "session", rec, "is_running", s->running,
		                 "team", team);
	text = view != NULL ? fk_text_json(view, FA_DUMP_FLAGS) : NULL;
	json_decref(view);
	if (text == NULL)
		return -1;
	fk_text_unref(s->view);
	s->view = text;
	return 0;
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
static int fa_index_session(struct fa_store *st, const char *user, json_t *ux, json_t *entry,
                            size_t k, char *err, size_t errlen)
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
	s->entry = json_incref(entry);
	s->user = strdup(user);
	if (s->user == NULL)
		return -1;
	s->id = sid;
	s->agent = aid;
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
	for (size_t i = 0; i < st->nsess; i++) {
		fk_text_unref(st->sess[i].view);
		json_decref(st->sess[i].entry);
		json_decref(st->sess[i].queue);
		json_decref(st->sess[i].replay);
		free(st->sess[i].user);
	}
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
	st->ev_rng.s = 0xe7e27;
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
	st->cap = total > 16 ? total : 16;
	st->sess = calloc(st->cap, sizeof(*st->sess));
	if (st->sess == NULL)
		goto oom;
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
			st->nsess = k + 1;
			if (fa_index_session(st, uname, ux, v, k, sub, sizeof(sub))) {
				snprintf(err, errlen, "users.%s.sessions[%zu]: %s", uname, i, sub);
				return -1;
			}
			if (fa_build_view(st, &st->sess[k]))
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
	FA_R_INTERRUPT,
	FA_R_CHAT
};

struct fa_route_def {
	unsigned real;     /* methods the real server has on this path */
	unsigned impl;     /* methods this fake answers */
	const char *allow; /* the Allow header of a 405 */
};

static const struct fa_route_def fa_routes[] = {
    [FA_R_SESSIONS] = {EVHTTP_REQ_GET | EVHTTP_REQ_POST, EVHTTP_REQ_GET | EVHTTP_REQ_POST,
                       "GET, POST"},
    [FA_R_AGENTS] = {EVHTTP_REQ_GET | EVHTTP_REQ_POST, EVHTTP_REQ_GET, "GET, POST"},
    [FA_R_SESSION] = {EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH, EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH,
                      "DELETE, PATCH"},
    [FA_R_MESSAGES] = {EVHTTP_REQ_GET, EVHTTP_REQ_GET, "GET"},
    [FA_R_STATUS] = {EVHTTP_REQ_GET, EVHTTP_REQ_GET, "GET"},
    [FA_R_STREAM] = {EVHTTP_REQ_GET, EVHTTP_REQ_GET, "GET"},
    [FA_R_INTERRUPT] = {EVHTTP_REQ_POST, EVHTTP_REQ_POST, "POST"},
    [FA_R_CHAT] = {EVHTTP_REQ_POST, EVHTTP_REQ_POST, "POST"},
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
	if (strcmp(path, "/chat/") == 0)
		return FA_R_CHAT;
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
		/* Referenced, not copied: the reply holds the text while it is written. */
		fk_buf_add_text(r->body, s->view);
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

/* ------------------------------------------------------------------------------------------ */
/* Writes: clock, bodies and pydantic's validation errors                                       */
/* ------------------------------------------------------------------------------------------ */

#define FA_INTERRUPTED_TEXT                                                                        \
	"<system-reminder>The tool call has been interrupted by the user.</system-reminder>"

/* datetime.now().isoformat(): naive local time, the fraction left out when it is zero. */
static void fa_now_iso(char *buf, size_t len)
{
	int64_t us = fk_now_us();
	time_t t = (time_t)(us / 1000000);
	struct tm tm;
	size_t n;

	if (localtime_r(&t, &tm) == NULL) {
		snprintf(buf, len, "1970-01-01T00:00:00");
		return;
	}
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (us % 1000000 != 0 && n > 0 && n < len)
		snprintf(buf + n, len - n, ".%06d", (int)(us % 1000000));
}

/* A JSON string of the current naive local time. New reference. */
static json_t *fa_now_json(void)
{
	char ts[40];

	fa_now_iso(ts, sizeof(ts));
	return json_string(ts);
}

/* A new uuid4().hex-like id from the store's PRNG (deterministic for a given seed). */
static void fa_new_id(struct fa_store *st, char out[33])
{
	fa_rng_hex(&st->rng, out);
}

/* FastAPI parses the body before it solves anything else: JSON that does not parse is a 422 on
 * its own. Returns 0 with *body (new reference; NULL when the body is empty), or 1 when r
 * holds the 422. */
static int fa_read_body(struct evhttp_request *req, struct fk_reply *r, json_t **body)
{
	size_t len;
	const char *b = fk_body(req, &len);
	json_error_t e;

	*body = NULL;
	if (b == NULL)
		return 0;
	*body = json_loadb(b, len, JSON_DECODE_ANY, &e);
	if (*body != NULL)
		return 0;
	fa_reply_json(r, 422, "Unprocessable Entity",
	              json_pack("{s:[{s:s, s:[s, i], s:s, s:{}, s:{s:s}}]}", "detail", "type",
	                        "json_invalid", "loc", "body", e.position, "msg",
	                        "JSON decode error", "input", "ctx", "error", "Expecting value"));
	return 1;
}

/* Appends one pydantic error at loc + key (key NULL: loc itself); input is borrowed (NULL is
 * null). loc is a JSON array, borrowed. */
static void fa_err(json_t *errors, const json_t *loc, const char *key, const char *type,
                   const char *msg, json_t *input)
{
	json_t *l = json_copy((json_t *)loc), *e;

	if (l == NULL)
		return;
	if (key != NULL)
		json_array_append_new(l, json_string(key));
	e = json_pack("{s:s, s:o, s:s, s:O?}", "type", type, "loc", l, "msg", msg, "input", input);
	if (e != NULL)
		json_array_append_new(errors, e);
}

/* A required-or-optional string member; nullable allows null. Returns the string or NULL. */
static const char *fa_want_str(json_t *errors, const json_t *loc, json_t *obj, const char *key,
                               bool required, bool nullable)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL) {
		if (required)
			fa_err(errors, loc, key, "missing", "Field required", obj);
		return NULL;
	}
	if (json_is_null(v) && nullable)
		return NULL;
	if (!json_is_string(v)) {
		fa_err(errors, loc, key, "string_type", "Input should be a valid string", v);
		return NULL;
	}
	return json_string_value(v);
}

/* A value that must be a model (a JSON object); false with the error appended otherwise. */
static bool fa_want_model(json_t *errors, const json_t *loc, const char *key, json_t *v)
{
	if (json_is_object(v))
		return true;
	fa_err(errors, loc, key, "model_attributes_type",
	       "Input should be a valid dictionary or object to extract fields from", v);
	return false;
}

/* ChatModelConfig | None under key (absent is fine). */
static void fa_want_model_config(json_t *errors, const json_t *loc, json_t *obj, const char *key)
{
	static const char *const strs[] = {"type", "credential_id", "model"};
	json_t *v = json_object_get(obj, key), *sub, *p;

	if (v == NULL || json_is_null(v) || !fa_want_model(errors, loc, key, v))
		return;
	sub = json_copy((json_t *)loc);
	if (sub == NULL)
		return;
	json_array_append_new(sub, json_string(key));
	for (size_t i = 0; i < FK_COUNT(strs); i++)
		fa_want_str(errors, sub, v, strs[i], true, false);
	p = json_object_get(v, "parameters");
	if (p == NULL)
		fa_err(errors, sub, "parameters", "missing", "Field required", v);
	else if (!json_is_object(p))
		fa_err(errors, sub, "parameters", "dict_type", "Input should be a valid dictionary",
		       p);
	json_decref(sub);
}

/* A model | None the fake does not look into (tts_model_config, knowledge_config). */
static void fa_want_opaque_model(json_t *errors, const json_t *loc, json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (v != NULL && !json_is_null(v))
		fa_want_model(errors, loc, key, v);
}

/* The request body must be there and be an object. Returns true when it is. */
static bool fa_want_body(json_t *errors, json_t *body, json_t *loc)
{
	if (body == NULL) {
		fa_err(errors, loc, NULL, "missing", "Field required", NULL);
		return false;
	}
	return fa_want_model(errors, loc, NULL, body);
}

/* ------------------------------------------------------------------------------------------ */
/* Writes: messages as the served version dumps them                                            */
/* ------------------------------------------------------------------------------------------ */

static bool fa_head(const struct fa_store *st)
{
	return st->shape == FA_SHAPE_HEAD;
}

/* A block's timestamps, which only HEAD's blocks carry. */
static void fa_block_stamp(const struct fa_store *st, json_t *b, bool finished)
{
	if (b == NULL || !fa_head(st))
		return;
	json_object_set_new(b, "created_at", fa_now_json());
	json_object_set_new(b, "finished_at", finished ? fa_now_json() : json_null());
}

/* {type, <field>: text, id, created_at, finished_at}. New reference. */
static json_t *fa_text_block(struct fa_store *st, const char *type, const char *field,
                             const char *text, bool finished)
{
	char id[33];
	json_t *b;

	fa_new_id(st, id);
	b = json_pack("{s:s, s:o, s:s}", "type", type, field, fk_json_text(text), "id", id);
	fa_block_stamp(st, b, finished);
	return b;
}

/* A ToolCallBlock. rules is stolen (NULL: []). New reference. */
static json_t *fa_tool_call_block(struct fa_store *st, const char *id, const char *name,
                                  const char *input, const char *state, json_t *rules)
{
	json_t *b = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "type", "tool_call", "id", id,
	                      "name", name, "input", input, "state", state, "suggested_rules",
	                      rules != NULL ? rules : json_array());

	/* The call itself has finished streaming even when it waits for a decision. */
	fa_block_stamp(st, b, true);
	return b;
}

/* A ToolResultBlock; output is stolen. New reference. */
static json_t *fa_tool_result_block(struct fa_store *st, const char *id, const char *name,
                                    json_t *output, const char *state)
{
	json_t *b = json_pack("{s:s, s:s, s:s, s:o, s:s, s:{}}", "type", "tool_result", "id", id,
	                      "name", name, "output", output, "state", state, "metadata");

	fa_block_stamp(st, b, strcmp(state, "running") != 0);
	return b;
}

/* A tool result's output as the streamed events leave it: a list of text blocks. */
static json_t *fa_output_text(struct fa_store *st, const char *text)
{
	return json_pack("[o]", fa_text_block(st, "text", "text", text, false));
}

/* A new Msg with the served version's members in its order. content is stolen. */
static json_t *fa_msg_new(struct fa_store *st, const char *id, const char *name, const char *role,
                          json_t *content)
{
	if (fa_head(st))
		return json_pack("{s:o, s:o, s:s, s:s, s:{}, s:o, s:n, s:n, s:n, s:n, s:n}", "name",
		                 fk_json_text(name), "content", content, "role", role, "id", id,
		                 "metadata", "created_at", fa_now_json(), "usage", "finished_at",
		                 "finished_reason", "structured_output", "error");
	return json_pack("{s:o, s:o, s:s, s:s, s:{}, s:o, s:n, s:n}", "name", fk_json_text(name),
	                 "content", content, "role", role, "id", id, "metadata", "created_at",
	                 fa_now_json(), "finished_at", "usage");
}

/* REPLY_END: finished_at, and on HEAD the reason and error (stolen, NULL for none). */
static void fa_msg_finish(struct fa_store *st, json_t *msg, const char *reason, json_t *error)
{
	json_object_set_new(msg, "finished_at", fa_now_json());
	if (fa_head(st)) {
		json_object_set_new(msg, "finished_reason", json_string(reason));
		json_object_set_new(msg, "error", error != NULL ? error : json_null());
	} else {
		json_decref(error);
	}
}

/* MODEL_CALL_END: adds one model call's tokens to the reply's usage. */
static void fa_msg_add_usage(struct fa_store *st, json_t *msg, json_int_t in, json_int_t out)
{
	json_t *u = json_object_get(msg, "usage");

	if (!json_is_object(u)) {
		u = fa_head(st)
		        ? json_pack("{s:i, s:i, s:i, s:i}", "input_tokens", 0, "output_tokens", 0,
		                    "cache_input_tokens", 0, "cache_creation_input_tokens", 0)
		        : json_pack("{s:i, s:i}", "input_tokens", 0, "output_tokens", 0);
		if (json_object_set_new(msg, "usage", u))
			return;
	}
	json_object_set_new(
	    u, "input_tokens",
	    json_integer(json_integer_value(json_object_get(u, "input_tokens")) + in));
	json_object_set_new(
	    u, "output_tokens",
	    json_integer(json_integer_value(json_object_get(u, "output_tokens")) + out));
}

/* The concatenated text blocks of a Msg (malloc'd, "" when none). */
static char *fa_msg_text(json_t *msg)
{
	json_t *content = json_object_get(msg, "content"), *b;
	size_t i, len = 0;
	char *out;

	json_array_foreach(content, i, b) {
		if (fk_get_str(b, "text") != NULL)
			len += strlen(fk_get_str(b, "text")) + 1;
	}
	out = calloc(1, len + 1);
	if (out == NULL)
		return NULL;
	json_array_foreach(content, i, b) {
		if (fk_get_str(b, "text") == NULL)
			continue;
		if (*out != '\0')
			strcat(out, "\n");
		strcat(out, fk_get_str(b, "text"));
	}
	return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Writes: session state                                                                        */
/* ------------------------------------------------------------------------------------------ */

static json_t *fa_record(struct fa_session *s)
{
	return json_object_get(s->entry, "record");
}

/* record.state, created empty when the data has none. Borrowed. */
static json_t *fa_state(struct fa_session *s)
{
	json_t *rec = fa_record(s), *state = json_object_get(rec, "state");

	if (!json_is_object(state)) {
		state = json_object();
		if (json_object_set_new(rec, "state", state))
			return NULL;
	}
	return state;
}

/* state.context, created empty when missing. Borrowed. */
static json_t *fa_context(struct fa_session *s)
{
	json_t *state = fa_state(s), *ctx = json_object_get(state, "context");

	if (!json_is_array(ctx)) {
		ctx = json_array();
		if (json_object_set_new(state, "context", ctx))
			return NULL;
		if (s->messages == NULL)
			s->messages = ctx;
	}
	return ctx;
}

/* The reply id the agent state points at (reply_context, or the legacy top level). */
static const char *fa_state_reply_id(struct fa_session *s)
{
	json_t *state = fa_state(s);
	const char *id = fk_get_str(json_object_get(state, "reply_context"), "reply_id");

	return id != NULL ? id : fk_get_str(state, "reply_id");
}

/* A new reply: the agent state's reply_context starts over. */
static void fa_state_set_reply(struct fa_session *s, const char *reply_id, json_int_t iter)
{
	json_t *state = fa_state(s), *rc = json_object_get(state, "reply_context");

	if (!json_is_object(rc) && json_object_get(state, "reply_id") != NULL) {
		json_object_set_new(state, "reply_id", json_string(reply_id));
		json_object_set_new(state, "cur_iter", json_integer(iter));
		return;
	}
	if (!json_is_object(rc)) {
		rc = json_pack("{s:n, s:i, s:n, s:n}", "reply_id", "cur_iter", 0,
		               "structured_schema", "structured_output");
		if (json_object_set_new(state, "reply_context", rc))
			return;
	}
	json_object_set_new(rc, "reply_id", json_string(reply_id));
	json_object_set_new(rc, "cur_iter", json_integer(iter));
}

/* Puts msg (borrowed) into the message log and the context, replacing the message with its id
 * (the log is upserted by id; a resumed reply is the same message). */
static void fa_upsert(struct fa_session *s, json_t *msg, bool context)
{
	json_t *lists[2] = {s->messages, context ? fa_context(s) : NULL};
	const char *id = fk_get_str(msg, "id");

	for (int k = 0; k < 2; k++) {
		json_t *list = lists[k], *m;
		size_t i;
		bool done = false;

		if (list == NULL || (k == 1 && list == lists[0]))
			continue;
		json_array_foreach(list, i, m) {
			if (id != NULL && fk_get_str(m, "id") != NULL &&
			    strcmp(fk_get_str(m, "id"), id) == 0) {
				json_array_set(list, i, msg);
				done = true;
				break;
			}
		}
		if (!done)
			json_array_append(list, msg);
	}
}

/* The log's message with this id (borrowed), or NULL. */
static json_t *fa_log_find(struct fa_session *s, const char *id)
{
	json_t *m;
	size_t i;

	json_array_foreach(s->messages, i, m) {
		if (id != NULL && fk_get_str(m, "id") != NULL &&
		    strcmp(fk_get_str(m, "id"), id) == 0)
			return m;
	}
	return NULL;
}

/* The context's tail when it is an assistant message parked on tool calls (borrowed). */
static json_t *fa_parked_tail(struct fa_session *s)
{
	json_t *ctx = fa_context(s);

	if (strcmp(fa_parked_status(ctx), "idle") == 0)
		return NULL;
	return json_array_get(ctx, json_array_size(ctx) - 1);
}

/* The display name the agent's replies carry. */
static const char *fa_agent_name(struct fa_store *st, struct fa_session *s)
{
	json_t *a = json_object_get(json_object_get(json_object_get(st->index, s->user), "agents"),
	                            s->agent);
	const char *name = fk_get_str(json_object_get(a, "data"), "name");

	return name != NULL ? name : s->agent;
}

static void fa_touch(struct fa_session *s)
{
	json_object_set_new(fa_record(s), "updated_at", fa_now_json());
}

/* Takes or releases the run lock (keyed by the session id alone, as on the bus). */
static void fa_lock(struct fa_store *st, struct fa_session *s, bool held)
{
	s->running = held;
	if (held)
		json_object_set_new(st->running, s->id, json_true());
	else
		json_object_del(st->running, s->id);
}

/* Re-derives what the listing shows after a change. */
static void fa_refresh(struct fa_store *st, struct fa_session *s)
{
	s->status = fa_parked_status(json_object_get(fa_state(s), "context"));
	if (fa_build_view(st, s))
		fprintf(stderr, FA_NAME ": cannot serialise session %s\n", s->id);
}

/* ------------------------------------------------------------------------------------------ */
/* The live stream: what a run publishes (AgentEvents), GET /sessions/{id}/stream               */
/* ------------------------------------------------------------------------------------------ */

#define FA_HEARTBEAT_MS_DEFAULT 30000 /* _HEARTBEAT_INTERVAL_SECS */
#define FA_HEARTBEAT_MS_MAX 3600000
#define FA_REPLAY_MAX 1000 /* MessageBusKeys.SESSION_REPLAY_MAX_LEN */
/* The frames are json.dumps(event, ensure_ascii=False): ", " and ": " between members (what
 * jansson writes without JSON_COMPACT or an indent), UTF-8 as is. */
#define FA_FRAME_FLAGS JSON_REAL_PRECISION(16)

static const char *const fa_stream_headers[] = {"Cache-Control", "no-cache", "X-Accel-Buffering",
                                                "no", NULL};

/* StreamingResponse(media_type="text/event-stream"): Starlette adds the charset. The heartbeat
 * is sent when no event came for a whole interval. */
static const struct fk_stream_kind fa_stream_kind = {
    .ctype = "text/event-stream; charset=utf-8",
    .headers = fa_stream_headers,
    .heartbeat = ":\n\n",
    .periodic = false,
};

static struct fk_server *fa_fk(struct fa_store *st)
{
	return &FK_CONTAINER_OF(st, struct fa_server, store)->fk;
}

/* publish_session_event: an AgentEvent of this type, EventBase's id, created_at and metadata
 * first, then fields (stolen, in the model's order; a "metadata" among them takes the base's
 * place). It goes to every open stream of the session, and into the replay log while a run
 * holds the session: the log is trimmed once a run has persisted, so what is published outside
 * a simulated run (a failure reported at once, a parked reply interrupted) is never replayed. */
static void fa_emit(struct fa_store *st, struct fa_session *s, const char *type, json_t *fields)
{
	char id[33], ts[40];
	json_t *ev;
	struct evbuffer *buf = NULL;
	const char *data;
	size_t len;

	fa_rng_hex(&st->ev_rng, id);
	fa_now_iso(ts, sizeof(ts));
	ev = json_pack("{s:s, s:s, s:{}, s:s}", "id", id, "created_at", ts, "metadata", "type",
	               type);
	if (ev == NULL || fields == NULL || json_object_update(ev, fields))
		goto out;
	buf = evbuffer_new();
	if (buf == NULL || evbuffer_add(buf, "data: ", 6) ||
	    fk_buf_add_json(buf, ev, FA_FRAME_FLAGS) || evbuffer_add(buf, "\n\n", 2))
		goto out;
	len = evbuffer_get_length(buf);
	data = (const char *)evbuffer_pullup(buf, -1);
	if (data == NULL)
		goto out;
	fk_stream_send(fa_fk(st), s->id, data, len);
	if (s->run != NULL) {
		if (s->replay == NULL)
			s->replay = json_array();
		if (json_array_size(s->replay) >= FA_REPLAY_MAX)
			json_array_remove(s->replay, 0);
		json_array_append_new(s->replay, json_stringn(data, len));
	}
out:
	if (buf != NULL)
		evbuffer_free(buf);
	json_decref(ev);
	json_decref(fields);
}

/* The run has persisted (or the session is gone): log_trim. */
static void fa_log_trim(struct fa_session *s)
{
	json_array_clear(s->replay);
}

/* REPLY_START: a new reply, a failure's, or (HEAD) the continuation of a parked one. */
static void fa_emit_reply_start(struct fa_store *st, struct fa_session *s, const char *reply_id,
                                const char *name)
{
	fa_emit(st, s, "REPLY_START",
	        json_pack("{s:s, s:s, s:o, s:s}", "session_id", s->id, "reply_id", reply_id, "name",
	                  fk_json_text(name), "role", "assistant"));
}

/* REPLY_END, and the reply (borrowed) finished the same way; error is stolen (NULL: none).
 * v2.0.1's event had neither finished_reason nor error. */
static void fa_reply_end(struct fa_store *st, struct fa_session *s, json_t *reply,
                         const char *reason, json_t *error)
{
	json_t *f =
	    json_pack("{s:s, s:s}", "session_id", s->id, "reply_id", fk_get_str(reply, "id"));

	if (f != NULL && fa_head(st)) {
		json_object_set_new(f, "finished_reason", json_string(reason));
		json_object_set_new(f, "error",
		                    error != NULL ? json_deep_copy(error) : json_null());
	}
	fa_msg_finish(st, reply, reason, error);
	fa_emit(st, s, "REPLY_END", f);
}

/* MODEL_CALL_START with the session's model. */
static void fa_model_start(struct fa_store *st, struct fa_session *s, json_t *reply)
{
	const char *model = fk_get_str(
	    json_object_get(json_object_get(fa_record(s), "config"), "chat_model_config"), "model");

	fa_emit(st, s, "MODEL_CALL_START",
	        json_pack("{s:s, s:o}", "reply_id", fk_get_str(reply, "id"), "model_name",
	                  fk_json_text(model != NULL ? model : "")));
}

/* MODEL_CALL_END, whose tokens the reply's usage adds up (reason: how the call finished). */
static void fa_model_end(struct fa_store *st, struct fa_session *s, json_t *reply, json_int_t in,
                         json_int_t out, const char *reason)
{
	json_t *f = json_pack("{s:s, s:I, s:I}", "reply_id", fk_get_str(reply, "id"),
	                      "input_tokens", in, "output_tokens", out);

	if (f != NULL && fa_head(st)) {
		json_object_set_new(f, "cache_input_tokens", json_integer(0));
		json_object_set_new(f, "cache_creation_input_tokens", json_integer(0));
		json_object_set_new(f, "finished_reason", json_string(reason));
	}
	fa_msg_add_usage(st, reply, in, out);
	fa_emit(st, s, "MODEL_CALL_END", f);
}

/* The <type>_DELTA events a model streams text (the string v) in: about three pieces, cut
 * between characters. key names the id member (block_id / tool_call_id). */
static void fa_emit_pieces(struct fa_store *st, struct fa_session *s, const char *type,
                           const char *reply_id, const char *key, const char *id, json_t *v)
{
	const char *text = json_string_value(v);
	size_t len = json_string_length(v), from = 0;

	for (size_t k = 1; text != NULL && k <= 3 && from < len; k++) {
		size_t to = k == 3 ? len : len * k / 3;

		while (to < len && ((unsigned char)text[to] & 0xc0) == 0x80)
			to++;
		if (to <= from)
			continue;
		fa_emit(st, s, type,
		        json_pack("{s:s, s:s, s:o}", "reply_id", reply_id, key, id, "delta",
		                  json_stringn(text + from, to - from)));
		from = to;
	}
}

/* Appends a text block (stolen) to the reply, streamed: TEXT_BLOCK_START, deltas, END. */
static void fa_add_text(struct fa_store *st, struct fa_session *s, json_t *reply, json_t *block)
{
	const char *rid = fk_get_str(reply, "id"), *bid = fk_get_str(block, "id");

	if (block == NULL || json_array_append_new(json_object_get(reply, "content"), block))
		return;
	fa_emit(st, s, "TEXT_BLOCK_START",
	        json_pack("{s:s, s:s}", "reply_id", rid, "block_id", bid));
	fa_emit_pieces(st, s, "TEXT_BLOCK_DELTA", rid, "block_id", bid,
	               json_object_get(block, "text"));
	fa_emit(st, s, "TEXT_BLOCK_END", json_pack("{s:s, s:s}", "reply_id", rid, "block_id", bid));
}

/* Appends a tool_call block (stolen), streamed: TOOL_CALL_START, its input in pieces, END. */
static void fa_add_call(struct fa_store *st, struct fa_session *s, json_t *reply, json_t *call)
{
	const char *rid = fk_get_str(reply, "id"), *cid = fk_get_str(call, "id");

	if (call == NULL || json_array_append_new(json_object_get(reply, "content"), call))
		return;
	fa_emit(st, s, "TOOL_CALL_START",
	        json_pack("{s:s, s:s, s:o}", "reply_id", rid, "tool_call_id", cid, "tool_call_name",
	                  fk_json_text(fk_get_str(call, "name"))));
	fa_emit_pieces(st, s, "TOOL_CALL_DELTA", rid, "tool_call_id", cid,
	               json_object_get(call, "input"));
	fa_emit(st, s, "TOOL_CALL_END",
	        json_pack("{s:s, s:s}", "reply_id", rid, "tool_call_id", cid));
}

/* TOOL_RESULT_START of a result block (borrowed) just opened. */
static void fa_emit_result_start(struct fa_store *st, struct fa_session *s, const char *reply_id,
                                 json_t *res)
{
	fa_emit(st, s, "TOOL_RESULT_START",
	        json_pack("{s:s, s:O, s:o}", "reply_id", reply_id, "tool_call_id",
	                  json_object_get(res, "id"), "tool_call_name",
	                  fk_json_text(fk_get_str(res, "name"))));
}

/* A result block's (borrowed) output and end: a text delta per text (a string output is one
 * text), a data delta per data block, then TOOL_RESULT_END with its state and metadata. */
static void fa_emit_result_rest(struct fa_store *st, struct fa_session *s, const char *reply_id,
                                json_t *res)
{
	json_t *out = json_object_get(res, "output"), *tid = json_object_get(res, "id"), *b, *meta;
	size_t i;

	if (json_is_string(out))
		fa_emit(st, s, "TOOL_RESULT_TEXT_DELTA",
		        json_pack("{s:s, s:O, s:O}", "reply_id", reply_id, "tool_call_id", tid,
		                  "delta", out));
	json_array_foreach(out, i, b) {
		const char *type = fk_get_str(b, "type");
		json_t *src = json_object_get(b, "source"), *bid = json_object_get(b, "id");
		char id[33];

		if (type != NULL && strcmp(type, "text") == 0 &&
		    json_is_string(json_object_get(b, "text"))) {
			fa_emit(st, s, "TOOL_RESULT_TEXT_DELTA",
			        json_pack("{s:s, s:O, s:O}", "reply_id", reply_id, "tool_call_id",
			                  tid, "delta", json_object_get(b, "text")));
		} else if (type != NULL && strcmp(type, "data") == 0 && json_is_object(src)) {
			if (!json_is_string(bid)) {
				fa_new_id(st, id);
				bid = json_string(id);
			} else {
				json_incref(bid);
			}
			fa_emit(st, s, "TOOL_RESULT_DATA_DELTA",
			        json_pack("{s:s, s:O, s:o, s:O?, s:O?, s:O?}", "reply_id", reply_id,
			                  "tool_call_id", tid, "block_id", bid, "media_type",
			                  json_object_get(src, "media_type"), "data",
			                  json_object_get(src, "data"), "url",
			                  json_object_get(src, "url")));
		}
	}
	meta = json_object_get(res, "metadata");
	fa_emit(st, s, "TOOL_RESULT_END",
	        json_pack("{s:o, s:s, s:O, s:O}", "metadata",
	                  json_is_object(meta) ? json_deep_copy(meta) : json_object(), "reply_id",
	                  reply_id, "tool_call_id", tid, "state", json_object_get(res, "state")));
}

/* REQUIRE_USER_CONFIRM / REQUIRE_EXTERNAL_EXECUTION: the call (borrowed) as it is stored. */
static void fa_emit_require(struct fa_store *st, struct fa_session *s, const char *type,
                            json_t *reply, json_t *call)
{
	fa_emit(st, s, type,
	        json_pack("{s:s, s:[o]}", "reply_id", fk_get_str(reply, "id"), "tool_calls",
	                  json_deep_copy(call)));
}

/* A block of a HITL result as pydantic validates it: the model's members in its order, the
 * defaults for those left out, unknown members dropped. New reference. */
static json_t *fa_norm_block(const json_t *in, bool call)
{
	json_t *b = json_pack("{s:s, s:O?, s:O?}", "type", call ? "tool_call" : "tool_result", "id",
	                      json_object_get(in, "id"), "name", json_object_get(in, "name"));
	json_t *v;

	if (b == NULL)
		return NULL;
	if (call) {
		json_object_set(b, "input", json_object_get(in, "input"));
		v = json_object_get(in, "state");
		json_object_set_new(b, "state",
		                    v != NULL ? json_incref(v) : json_string("pending"));
		v = json_object_get(in, "suggested_rules");
		json_object_set_new(b, "suggested_rules",
		                    v != NULL ? json_incref(v) : json_array());
	} else {
		json_object_set(b, "output", json_object_get(in, "output"));
		v = json_object_get(in, "state");
		json_object_set_new(b, "state",
		                    v != NULL ? json_incref(v) : json_string("running"));
		v = json_object_get(in, "metadata");
		json_object_set_new(b, "metadata", v != NULL ? json_incref(v) : json_object());
	}
	v = json_object_get(in, "created_at");
	json_object_set_new(b, "created_at", v != NULL ? json_incref(v) : fa_now_json());
	v = json_object_get(in, "finished_at");
	json_object_set_new(b, "finished_at", v != NULL ? json_incref(v) : json_null());
	return b;
}

/* HEAD's Case B publishes the HITL result it applies (so other observers close their prompt),
 * then a REPLY_START that continues the parked reply (the same reply_id). v2.0.1 did neither. */
static void fa_emit_continuation(struct fa_store *st, struct fa_session *s, json_t *input)
{
	const char *reply_id = fa_state_reply_id(s);

	if (!fa_head(st))
		return;
	if (input != NULL) {
		bool confirm = json_object_get(input, "confirm_results") != NULL;
		const char *key = confirm ? "confirm_results" : "execution_results";
		json_t *list = json_array(), *item, *f, *v;
		size_t i;

		json_array_foreach(json_object_get(input, key), i, item) {
			if (confirm)
				json_array_append_new(
				    list, json_pack("{s:O, s:o, s:O?}", "confirmed",
				                    json_object_get(item, "confirmed"), "tool_call",
				                    fa_norm_block(
				                        json_object_get(item, "tool_call"), true),
				                    "rules", json_object_get(item, "rules")));
			else
				json_array_append_new(list, fa_norm_block(item, false));
		}
		f = json_object();
		/* The event's own id, created_at and metadata when the client gave them. */
		v = json_object_get(input, "id");
		if (f != NULL && json_is_string(v))
			json_object_set(f, "id", v);
		v = json_object_get(input, "created_at");
		if (f != NULL && json_is_string(v))
			json_object_set(f, "created_at", v);
		v = json_object_get(input, "metadata");
		if (f != NULL && json_is_object(v))
			json_object_set(f, "metadata", v);
		if (f != NULL) {
			json_object_set(f, "reply_id", json_object_get(input, "reply_id"));
			json_object_set_new(f, key, list);
		} else {
			json_decref(list);
		}
		fa_emit(st, s, confirm ? "USER_CONFIRM_RESULT" : "EXTERNAL_EXECUTION_RESULT", f);
	}
	if (reply_id != NULL)
		fa_emit_reply_start(st, s, reply_id, fa_agent_name(st, s));
}

/* _report_failure: a run that failed before its reply started leaves a reply of its own, named
 * after the agent id, with no content and the classified error. Only the log gets it; the
 * stream gets its REPLY_START / REPLY_END pair. */
static void fa_failed_reply(struct fa_store *st, struct fa_session *s, const char *type,
                            const char *msg)
{
	char id[33];
	json_t *reply;

	fa_new_id(st, id);
	reply = fa_msg_new(st, id, s->agent, "assistant", json_array());
	if (reply == NULL)
		return;
	fa_emit_reply_start(st, s, id, s->agent);
	fa_reply_end(st, s, reply, "error", json_pack("{s:s, s:s}", "type", type, "message", msg));
	fa_upsert(s, reply, false);
	json_decref(reply);
}

/* ------------------------------------------------------------------------------------------ */
/* The simulated agent run                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* One run holding a session's lock: a new reply, or a parked one resumed by a HITL result. It
 * ends on a timer (never by sleeping), by an interrupt, or when the session is deleted. */
struct fa_run {
	struct fa_server *srv;
	size_t idx; /* the session (indexes stay valid when the array grows) */
	struct event *timer;
	enum fk_plan plan;
	json_t *reply;  /* the reply being built; a resumed one is already in the log */
	json_t *resume; /* the USER_CONFIRM_RESULT / EXTERNAL_EXECUTION_RESULT applied, or NULL */
	char *text;     /* what the user asked */
};

static void fa_run_free(struct fa_run *run)
{
	if (run == NULL)
		return;
	if (run->timer != NULL)
		event_free(run->timer);
	json_decref(run->reply);
	json_decref(run->resume);
	free(run->text);
	free(run);
}

/* A tool call id as a model provider mints it. */
static void fa_tool_id(struct fa_store *st, char *out, size_t len)
{
	char hex[33];

	fa_new_id(st, hex);
	snprintf(out, len, "toolu_01%.24s", hex);
}

/* What the simulated model answers. */
static json_t *fa_answer_block(struct fa_store *st, const char *text)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "Here is my answer to: %.200s", text != NULL ? text : "");
	return fa_text_block(st, "text", "text", buf, true);
}

/* Token counts derived from the text, so they are deterministic. */
static json_int_t fa_tokens(const char *text, json_int_t base)
{
	return base + (json_int_t)(text != NULL ? strlen(text) : 0);
}

/* Fills a new reply the way the plan goes, streaming it as it is built: text (and a tool call,
 * parked or run) and usage, one MODEL_CALL_END per model call; finished unless it parks
 * (then no REPLY_END: the agent returns while the reply waits). The run's MODEL_CALL_START was
 * published when it started. */
static void fa_run_generate(struct fa_store *st, struct fa_session *s, struct fa_run *run)
{
	json_t *reply = run->reply, *content = json_object_get(reply, "content"), *call, *res;
	const char *rid = fk_get_str(reply, "id");
	char id[40];

	fa_tool_id(st, id, sizeof(id));
	switch (run->plan) {
	case FK_PLAN_TEXT:
	case FK_PLAN_LONG:
		fa_add_text(st, s, reply, fa_answer_block(st, run->text));
		fa_model_end(st, s, reply, fa_tokens(run->text, 120), 42, "completed");
		fa_reply_end(st, s, reply, "completed", NULL);
		break;
	case FK_PLAN_ERROR:
	case FK_PLAN_TERMINATE: /* AgentScope has no terminated state */
		fa_add_text(st, s, reply,
		            fa_text_block(st, "text", "text", "Let me look into that.", true));
		fa_model_end(st, s, reply, fa_tokens(run->text, 120), 6, "completed");
		fa_reply_end(st, s, reply, "error",
		             json_pack("{s:s, s:s}", "type", "upstream", "message",
		                       "The upstream model service returned an error."));
		break;
	case FK_PLAN_TOOL:
		fa_add_text(
		    st, s, reply,
		    fa_text_block(st, "text", "text", "Let me read the notes first.", true));
		fa_add_call(st, s, reply,
		            fa_tool_call_block(st, id, "Read",
		                               "{\"file_path\": \"/workspace/notes.md\"}",
		                               "finished", NULL));
		fa_model_end(st, s, reply, fa_tokens(run->text, 120), 30, "completed");
		res = fa_tool_result_block(
		    st, id, "Read", fa_output_text(st, "# Notes\n- ship the fix"), "success");
		if (res != NULL && json_array_append_new(content, res) == 0) {
			fa_emit_result_start(st, s, rid, res);
			fa_emit_result_rest(st, s, rid, res);
		}
		fa_model_start(st, s, reply);
		fa_add_text(st, s, reply, fa_answer_block(st, run->text));
		fa_model_end(st, s, reply, fa_tokens(run->text, 180), 42, "completed");
		fa_reply_end(st, s, reply, "completed", NULL);
		break;
	case FK_PLAN_ASK:
		fa_add_text(st, s, reply,
		            fa_text_block(st, "text", "text", "I need to push the branch.", true));
		call = fa_tool_call_block(
		    st, id, "Bash", "{\"command\": \"git push origin main\"}", "asking",
		    json_pack("[{s:s, s:s, s:s, s:s}]", "tool_name", "Bash", "rule_content",
		              "git push*", "behavior", "allow", "source", "session"));
		fa_add_call(st, s, reply, call);
		fa_model_end(st, s, reply, fa_tokens(run->text, 120), 30, "completed");
		fa_emit_require(st, s, "REQUIRE_USER_CONFIRM", reply, call);
		break;
	case FK_PLAN_EXTERNAL:
		fa_add_text(
		    st, s, reply,
		    fa_text_block(st, "text", "text", "I'll open a follow-up ticket.", true));
		call = fa_tool_call_block(st, id, "CreateTicket",
		                          "{\"title\": \"Follow up\", \"priority\": \"high\"}",
		                          "submitted", NULL);
		fa_add_call(st, s, reply, call);
		fa_model_end(st, s, reply, fa_tokens(run->text, 120), 30, "completed");
		/* An external call was allowed first: its result block is open (TOOL_RESULT_START),
		 * with no output, when the agent asks for the result. */
		res = fa_tool_result_block(st, id, "CreateTicket", json_array(), "running");
		if (res != NULL && json_array_append_new(content, res) == 0)
			fa_emit_result_start(st, s, rid, res);
		fa_emit_require(st, s, "REQUIRE_EXTERNAL_EXECUTION", reply, call);
		break;
	}
}

/* The reply's tool_call block with this id (borrowed), or NULL; same for its tool_result. */
static json_t *fa_find_block(json_t *reply, const char *type, const char *id)
{
	json_t *b;
	size_t i;

	json_array_foreach(json_object_get(reply, "content"), i, b) {
		const char *t = fk_get_str(b, "type"), *bid = fk_get_str(b, "id");

		if (t != NULL && bid != NULL && id != NULL && strcmp(t, type) == 0 &&
		    strcmp(bid, id) == 0)
			return b;
	}
	return NULL;
}

/* Sets a tool result's final output and state (TOOL_RESULT_END); the call is finished. The
 * stream gets TOOL_RESULT_START unless the result was open already (an external call's), then
 * the output and the end. */
static void fa_close_result(struct fa_store *st, struct fa_session *s, json_t *reply, json_t *call,
                            json_t *output, const char *state)
{
	const char *id = fk_get_str(call, "id"), *rid = fk_get_str(reply, "id");
	json_t *res = fa_find_block(reply, "tool_result", id);
	bool opened = res == NULL;

	if (res == NULL) {
		res = fa_tool_result_block(st, id, fk_get_str(call, "name"), output, state);
		if (res == NULL || json_array_append_new(json_object_get(reply, "content"), res))
			return;
	} else {
		json_object_set_new(res, "output", output);
		json_object_set_new(res, "state", json_string(state));
		if (fa_head(st))
			json_object_set_new(res, "finished_at", fa_now_json());
	}
	json_object_set_new(call, "state", json_string("finished"));
	if (opened)
		fa_emit_result_start(st, s, rid, res);
	fa_emit_result_rest(st, s, rid, res);
}

/* Applies a HITL result to the parked reply: allowed calls run, denied ones get the denial,
 * external results come in. Returns true when nothing is left waiting. */
static bool fa_apply_resume(struct fa_store *st, struct fa_session *s, struct fa_run *run)
{
	json_t *r, *b;
	size_t i;
	bool waiting = false;

	json_array_foreach(json_object_get(run->resume, "confirm_results"), i, r) {
		json_t *tc = json_object_get(r, "tool_call");
		json_t *call = fa_find_block(run->reply, "tool_call", fk_get_str(tc, "id"));
		char msg[300];

		if (call == NULL || strcmp(fk_get_str(call, "state"), "asking") != 0)
			continue;
		if (json_is_true(json_object_get(r, "confirmed"))) {
			/* The user may have edited the call before allowing it. */
			json_object_set(call, "name", json_object_get(tc, "name"));
			json_object_set(call, "input", json_object_get(tc, "input"));
			fa_close_result(st, s, run->reply, call,
			                fa_output_text(st, "Everything up-to-date"), "success");
		} else {
			snprintf(msg, sizeof(msg),
			         "<system-reminder>The execution of tool \"%.100s\" is denied by "
			         "user!</system-reminder>",
			         fk_get_str(call, "name"));
			fa_close_result(st, s, run->reply, call, fa_output_text(st, msg), "denied");
		}
	}
	json_array_foreach(json_object_get(run->resume, "execution_results"), i, r) {
		json_t *call = fa_find_block(run->reply, "tool_call", fk_get_str(r, "id"));
		json_t *out = json_object_get(r, "output");
		const char *state = fk_get_str(r, "state");

		if (call == NULL || strcmp(fk_get_str(call, "state"), "submitted") != 0)
			continue;
		/* The result streams in as text deltas: a string becomes one text block. */
		fa_close_result(st, s, run->reply, call,
		                json_is_string(out) ? fa_output_text(st, json_string_value(out))
		                                    : json_deep_copy(out),
		                state != NULL ? state : "running");
	}
	json_array_foreach(json_object_get(run->reply, "content"), i, b) {
		const char *state = fk_get_str(b, "state");

		if (fk_get_str(b, "type") != NULL &&
		    strcmp(fk_get_str(b, "type"), "tool_call") == 0 && state != NULL &&
		    (strcmp(state, "asking") == 0 || strcmp(state, "submitted") == 0))
			waiting = true;
	}
	return !waiting;
}

/* _close_unfinished_tool_calls: every call still without a final result gets the interruption
 * text as an interrupted result. */
static void fa_close_unfinished(struct fa_store *st, struct fa_session *s, json_t *reply)
{
	json_t *b;
	size_t i;

	json_array_foreach(json_object_get(reply, "content"), i, b) {
		json_t *res;

		if (fk_get_str(b, "type") == NULL ||
		    strcmp(fk_get_str(b, "type"), "tool_call") != 0)
			continue;
		res = fa_find_block(reply, "tool_result", fk_get_str(b, "id"));
		if (res != NULL && strcmp(fk_get_str(res, "state"), "running") != 0)
			continue;
		fa_close_result(st, s, reply, b, fa_output_text(st, FA_INTERRUPTED_TEXT),
		                "interrupted");
	}
}

static void fa_drain_queue(struct fa_server *srv, struct fa_session *s);

/* The run is over: its reply goes into the log and the context, the agent state moves on, the
 * lock is released and the next queued resume (if any) starts. */
static void fa_run_end(struct fa_server *srv, struct fa_run *run)
{
	struct fa_store *st = &srv->store;
	struct fa_session *s = &st->sess[run->idx];

	fa_upsert(s, run->reply, true);
	fa_state_set_reply(s, fk_get_str(run->reply, "id"),
	                   json_is_null(json_object_get(run->reply, "finished_at")) ? 1 : 2);
	fa_touch(s);
	s->run = NULL;
	fa_log_trim(s);
	fa_run_free(run);
	fa_lock(st, s, false);
	fa_refresh(st, s);
	fa_drain_queue(srv, s);
}

static void fa_run_fire(evutil_socket_t fd, short what, void *arg)
{
	struct fa_run *run = arg;
	struct fa_store *st = &run->srv->store;
	struct fa_session *s = &st->sess[run->idx];

	(void)fd;
	(void)what;
	if (run->resume == NULL) {
		fa_run_generate(st, s, run);
	} else if (fa_apply_resume(st, s, run)) {
		fa_model_start(st, s, run->reply);
		fa_add_text(st, s, run->reply, fa_answer_block(st, "the tool results"));
		fa_model_end(st, s, run->reply, 400, 42, "completed");
		fa_reply_end(st, s, run->reply, "completed", NULL);
	}
	fa_run_end(run->srv, run);
}

/* Starts a run on s holding its lock for run_ms (forever for [run:long]). reply, resume and
 * text are taken. Returns 0, or -1 (everything freed) when the loop cannot take a timer. */
static int fa_run_start(struct fa_server *srv, struct fa_session *s, enum fk_plan plan,
                        json_t *reply, json_t *resume, char *text)
{
	struct fa_store *st = &srv->store;
	struct fa_run *run = calloc(1, sizeof(*run));
	struct timeval tv = {.tv_sec = st->run_ms / 1000, .tv_usec = (st->run_ms % 1000) * 1000};

	if (run != NULL)
		*run = (struct fa_run){.srv = srv,
		                       .idx = (size_t)(s - st->sess),
		                       .plan = plan,
		                       .reply = reply,
		                       .resume = resume,
		                       .text = text};
	if (run == NULL || reply == NULL) {
		free(run);
		json_decref(reply);
		json_decref(resume);
		free(text);
		return -1;
	}
	if (plan != FK_PLAN_LONG || resume != NULL) {
		run->timer = evtimer_new(srv->fk.base, fa_run_fire, run);
		if (run->timer == NULL || evtimer_add(run->timer, &tv) != 0) {
			fa_run_free(run);
			return -1;
		}
	}
	s->run = run;
	fa_lock(st, s, true);
	fa_refresh(st, s);
	/* A run's replay log starts empty (the last one was trimmed when it persisted). */
	fa_log_trim(s);
	if (resume == NULL) {
		fa_emit_reply_start(st, s, fk_get_str(reply, "id"), fa_agent_name(st, s));
		fa_model_start(st, s, reply);
	} else {
		fa_emit_continuation(st, s, resume);
	}
	return 0;
}

/* A user interrupt reaching a running session: the run is cancelled where it stands. The
 * reply keeps what was generated, unfinished calls are closed, and it ends "interrupted". */
static void fa_run_interrupt(struct fa_server *srv, struct fa_session *s)
{
	struct fa_store *st = &srv->store;
	struct fa_run *run = s->run;

	if (run == NULL) {
		/* A run the data says holds the lock (another worker's): its reply is persisted
		 * with nothing in it. */
		char id[33];
		json_t *reply;

		fa_new_id(st, id);
		reply = fa_msg_new(st, id, fa_agent_name(st, s), "assistant", json_array());
		if (reply != NULL) {
			fa_emit_reply_start(st, s, id, fa_agent_name(st, s));
			fa_reply_end(st, s, reply, "interrupted", NULL);
			fa_upsert(s, reply, true);
			fa_state_set_reply(s, id, 0);
			json_decref(reply);
		}
		fa_touch(s);
		fa_lock(st, s, false);
		fa_refresh(st, s);
		fa_drain_queue(srv, s);
		return;
	}
	if (run->resume == NULL) {
		/* Cancelled mid-stream: the text so far (its block closed when the model call ends
		 * interrupted), and the tokens of the aborted call. */
		fa_add_text(st, s, run->reply,
		            fa_text_block(st, "text", "text", "Let me think about", true));
		fa_model_end(st, s, run->reply, fa_tokens(run->text, 120), 4, "interrupted");
	}
	fa_close_unfinished(st, s, run->reply);
	fa_reply_end(st, s, run->reply, "interrupted", NULL);
	fa_run_end(srv, run);
}

/* A resume the agent cannot take (not parked, or on calls that do not wait): Agent raises
 * before its reply restarts. An unfinished stored reply is then closed with the error; with no
 * stored reply a failure reply is reported; a finished one stays as it is. */
static void fa_resume_fails(struct fa_store *st, struct fa_session *s, json_t *input)
{
	json_t *msg = fa_log_find(s, fa_state_reply_id(s));

	fa_emit_continuation(st, s, input);
	if (msg == NULL) {
		fa_failed_reply(
		    st, s, "setup",
		    "The session could not be prepared \xe2\x80\x94 check the agent's model, "
		    "tools and knowledge bases.");
	} else if (json_is_null(json_object_get(msg, "finished_at"))) {
		/* _close_failed_reply */
		fa_reply_end(st, s, msg, "error",
		             json_pack("{s:s, s:s}", "type", "unknown", "message",
		                       "The reply failed with an unknown error."));
	}
	fa_touch(s);
	fa_refresh(st, s);
}

/* Are the calls a HITL result names exactly ones the parked tail waits on (in that state)? */
static bool fa_resume_fits(json_t *tail, json_t *input)
{
	bool confirm = json_object_get(input, "confirm_results") != NULL;
	json_t *list = json_object_get(input, confirm ? "confirm_results" : "execution_results");
	const char *want = confirm ? "asking" : "submitted";
	bool any = false;
	json_t *r, *b;
	size_t i;

	json_array_foreach(json_object_get(tail, "content"), i, b) {
		const char *state = fk_get_str(b, "state");

		if (state != NULL && strcmp(fk_get_str(b, "type"), "tool_call") == 0 &&
		    strcmp(state, want) == 0)
			any = true;
	}
	if (!any)
		return false;
	json_array_foreach(list, i, r) {
		const char *id = confirm ? fk_get_str(json_object_get(r, "tool_call"), "id")
		                         : fk_get_str(r, "id");
		json_t *call = fa_find_block(tail, "tool_call", id);

		if (call == NULL || strcmp(fk_get_str(call, "state"), want) != 0)
			return false;
	}
	return true;
}

/* A HITL result taken off the queue (the session is not running): resume the parked reply. */
static void fa_resume(struct fa_server *srv, struct fa_session *s, json_t *input)
{
	struct fa_store *st = &srv->store;
	json_t *tail = fa_parked_tail(s);

	if (tail == NULL || !fa_resume_fits(tail, input)) {
		fa_resume_fails(st, s, input);
		return;
	}
	if (fa_run_start(srv, s, FK_PLAN_TEXT, json_incref(tail), json_incref(input), NULL))
		fprintf(stderr, FA_NAME ": cannot start a run\n");
}

/* HEAD's wakeup dispatcher: resumes queued while the session ran start once it is free. */
static void fa_drain_queue(struct fa_server *srv, struct fa_session *s)
{
	json_t *next;

	while (!s->deleted && !s->running && json_array_size(s->queue) > 0) {
		next = json_incref(json_array_get(s->queue, 0));
		json_array_remove(s->queue, 0);
		fa_resume(srv, s, next);
		json_decref(next);
	}
}

/* A USER_INTERRUPT for a parked session: the waiting calls are closed as interrupted and the
 * reply ends; nothing runs a model. */
static void fa_interrupt_parked(struct fa_store *st, struct fa_session *s)
{
	json_t *tail = fa_parked_tail(s);

	/* The USER_INTERRUPT resume is a Case B run: its continuation REPLY_START is published
	 * even when nothing is parked and the agent then does nothing (no REPLY_END follows). */
	fa_emit_continuation(st, s, NULL);
	if (tail == NULL)
		return;
	fa_close_unfinished(st, s, tail);
	fa_reply_end(st, s, tail, "interrupted", NULL);
	fa_upsert(s, tail, true);
	fa_touch(s);
	fa_refresh(st, s);
}

/* Stops every run without persisting anything (shutdown). */
static void fa_runs_stop(struct fa_store *st)
{
	for (size_t i = 0; i < st->nsess; i++) {
		fa_run_free(st->sess[i].run);
		st->sess[i].run = NULL;
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Write routes                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/* A new session record with the defaults SessionConfig and AgentState give it. body members
 * are borrowed. New reference. */
static json_t *fa_new_record(struct fa_store *st, const char *id, const char *user,
                             const char *agent, json_t *body)
{
	char ws[33], state_id[33], reply_id[33], name[32];
	const char *given_ws = fk_get_str(body, "workspace_id"), *given = fk_get_str(body, "name");
	json_t *now = fa_now_json(), *cfg;
	time_t t = time(NULL);
	struct tm tm;

	fa_new_id(st, ws);
	fa_new_id(st, state_id);
	fa_new_id(st, reply_id);
	/* The default name is the creation time, to the second. */
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(name, sizeof(name), "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(name, sizeof(name), "1970-01-01 00:00:00");
	cfg = json_object_get(body, "chat_model_config");
	return json_pack(
	    "{s:s, s:O, s:o, s:s, s:s, s:s, s:n, s:n, s:n, s:n,"
	    " s:{s:s, s:s, s:n, s:O, s:O, s:O, s:O},"
	    " s:{s:s, s:s, s:[], s:{s:s, s:i, s:n, s:n}, s:o, s:o, s:{s:[]}, s:{}}}",
	    "id", id, "updated_at", now, "created_at", now, "user_id", user, "agent_id", agent,
	    "source", "user", "source_schedule_id", "source_chat_id", "source_channel_id",
	    "team_id", "config", "workspace_id", given_ws != NULL ? given_ws : ws, "name",
	    given != NULL ? given : name, "cwd", "chat_model_config",
	    cfg != NULL ? cfg : json_null(), "fallback_chat_model_config",
	    json_object_get(body, "fallback_chat_model_config") != NULL
	        ? json_object_get(body, "fallback_chat_model_config")
	        : json_null(),
	    "tts_model_config",
	    json_object_get(body, "tts_model_config") != NULL
	        ? json_object_get(body, "tts_model_config")
	        : json_null(),
	    "knowledge_config",
	    json_object_get(body, "knowledge_config") != NULL
	        ? json_object_get(body, "knowledge_config")
	        : json_null(),
	    "state", "session_id", state_id, "summary", "", "context", "reply_context", "reply_id",
	    reply_id, "cur_iter", 0, "structured_schema", "structured_output", "permission_context",
	    json_loads(FA_DEF_PERMISSION, 0, NULL), "tool_context",
	    json_loads(FA_DEF_TOOL_CONTEXT, 0, NULL), "tasks_context", "tasks", "middle_context");
}

/* Adds a session entry (taken) to the store and its indexes. Returns it, or NULL. */
static struct fa_session *fa_add_session(struct fa_store *st, const char *user, json_t *entry)
{
	json_t *ux = json_object_get(st->index, user), *record = json_object_get(entry, "record");
	const char *aid = fk_get_str(record, "agent_id"), *sid = fk_get_str(record, "id");
	json_t *lists = json_object_get(ux, "lists"), *byid = json_object_get(ux, "byid"), *l, *m;
	struct fa_session *s;
	size_t k = st->nsess;

	if (st->nsess == st->cap) {
		struct fa_session *grown = realloc(st->sess, st->cap * 2 * sizeof(*grown));

		if (grown == NULL)
			goto fail;
		memset(grown + st->cap, 0, st->cap * sizeof(*grown));
		st->sess = grown;
		st->cap *= 2;
	}
	s = &st->sess[k];
	*s = (struct fa_session){.entry = entry,
	                         .id = sid,
	                         .agent = aid,
	                         .user = strdup(user),
	                         .ord = k,
	                         .status = "idle",
	                         .messages = json_object_get(entry, "messages")};
	if (s->user == NULL || fa_parse_time(fk_get_str(record, "created_at"), &s->created)) {
		free(s->user);
		memset(s, 0, sizeof(*s));
		goto fail;
	}
	st->nsess++;
	l = json_object_get(lists, aid);
	if (l == NULL && json_object_set_new(lists, aid, l = json_array()))
		return NULL;
	m = json_object_get(byid, aid);
	if (m == NULL && json_object_set_new(byid, aid, m = json_object()))
		return NULL;
	if (json_array_append_new(l, json_integer((json_int_t)k)) ||
	    json_object_set_new(m, sid, json_integer((json_int_t)k)) || fa_sort_list(st, l))
		return NULL;
	fa_refresh(st, s);
	return s;
fail:
	json_decref(entry);
	return NULL;
}

/* POST /sessions/ : a new session of a visible agent; 201 {session_id}. */
static void fa_h_create(struct fa_server *srv, struct evhttp_request *req, struct fk_reply *r)
{
	struct fa_store *st = &srv->store;
	json_t *errors = json_array(), *body = NULL, *loc = json_pack("[s]", "body"), *entry;
	const char *user, *agent = NULL;
	char id[33];

	if (fa_read_body(req, r, &body) || fa_prologue(req, NULL, errors, r, &user, NULL))
		goto out;
	if (fa_want_body(errors, body, loc)) {
		agent = fa_want_str(errors, loc, body, "agent_id", true, false);
		fa_want_str(errors, loc, body, "workspace_id", false, true);
		fa_want_str(errors, loc, body, "name", false, true);
		fa_want_model_config(errors, loc, body, "chat_model_config");
		fa_want_model_config(errors, loc, body, "fallback_chat_model_config");
		fa_want_opaque_model(errors, loc, body, "tts_model_config");
		fa_want_opaque_model(errors, loc, body, "knowledge_config");
	}
	if (fa_reply_errors(r, errors))
		goto out;
	if (json_object_get(json_object_get(json_object_get(st->index, user), "agents"), agent) ==
	    NULL) {
		fa_reply_detail(r, 404, "Not Found", "Agent", agent);
		goto out;
	}
	fa_new_id(st, id);
	entry =
	    json_pack("{s:o, s:b, s:n, s:[]}", "record", fa_new_record(st, id, user, agent, body),
	              "is_running", 0, "team", "messages");
	if (entry == NULL || fa_add_session(st, user, entry) == NULL) {
		fa_reply_detail(r, 500, "Internal Server Error", "Internal Server Error", NULL);
		goto out;
	}
	fa_reply_json(r, 201, "Created", json_pack("{s:s}", "session_id", id));
out:
	json_decref(loc);
	json_decref(body);
	json_decref(errors);
}

/* The session a per-session write names, after its prologue (401/422) and lookup (404).
 * Returns NULL when r already holds the answer. body (may be NULL) is validated by check. */
static struct fa_session *fa_write_target(struct fa_server *srv, struct evhttp_request *req,
                                          const char *sid, const char *query, json_t *errors,
                                          struct fk_reply *r,
                                          void (*check)(json_t *errors, json_t *body, bool head),
                                          json_t *body)
{
	struct fa_session *s;
	const char *user;
	char *agent = NULL;

	if (fa_prologue(req, query, errors, r, &user, &agent))
		return NULL;
	if (check != NULL)
		check(errors, body, srv->store.shape == FA_SHAPE_HEAD);
	if (fa_reply_errors(r, errors)) {
		free(agent);
		return NULL;
	}
	s = fa_lookup(&srv->store, user, agent, sid);
	free(agent);
	if (s == NULL)
		fa_reply_detail(r, 404, "Not Found", "Session", sid);
	return s;
}

/* UpdateSessionRequest (HEAD has cwd; an unknown member is ignored, as pydantic does). */
static void fa_check_update(json_t *errors, json_t *body, bool head)
{
	static const char *const modes[] = {"default", "accept_edits", "explore", "bypass",
	                                    "dont_ask"};
	json_t *loc = json_pack("[s]", "body"), *mode;
	bool ok = false;

	if (loc == NULL || !fa_want_body(errors, body, loc))
		goto out;
	fa_want_str(errors, loc, body, "name", false, true);
	fa_want_model_config(errors, loc, body, "chat_model_config");
	fa_want_model_config(errors, loc, body, "fallback_chat_model_config");
	fa_want_opaque_model(errors, loc, body, "tts_model_config");
	fa_want_opaque_model(errors, loc, body, "knowledge_config");
	if (head)
		fa_want_str(errors, loc, body, "cwd", false, true);
	mode = json_object_get(body, "permission_mode");
	for (size_t i = 0; json_is_string(mode) && i < FK_COUNT(modes); i++)
		ok = ok || strcmp(json_string_value(mode), modes[i]) == 0;
	if (mode != NULL && !json_is_null(mode) && !ok) {
		json_t *l = json_pack("[s, s]", "body", "permission_mode");
		json_t *e =
		    json_pack("{s:s, s:o, s:s, s:O, s:{s:s}}", "type", "enum", "loc", l, "msg",
		              "Input should be 'default', 'accept_edits', 'explore', 'bypass' "
		              "or 'dont_ask'",
		              "input", mode, "ctx", "expected",
		              "'default', 'accept_edits', 'explore', 'bypass' or 'dont_ask'");

		if (e != NULL)
			json_array_append_new(errors, e);
	}
out:
	json_decref(loc);
}

/* PATCH /sessions/{id}: the fields sent replace the stored ones (null clears, except name:
 * SessionConfig refuses a null name, which the real server answers with a bare 500).
 * permission_mode goes into the state. HEAD refuses while a run holds the lock (409). */
static void fa_h_update(struct fa_server *srv, struct evhttp_request *req, const char *sid,
                        const char *query, struct fk_reply *r)
{
	static const char *const cfg_keys[] = {"name",
	                                       "chat_model_config",
	                                       "fallback_chat_model_config",
	                                       "tts_model_config",
	                                       "knowledge_config",
	                                       "cwd"};
	struct fa_store *st = &srv->store;
	json_t *errors = json_array(), *body = NULL, *config, *mode;
	struct fa_session *s;

	if (fa_read_body(req, r, &body))
		goto out;
	s = fa_write_target(srv, req, sid, query, errors, r, fa_check_update, body);
	if (s == NULL)
		goto out;
	if (fa_head(st) && s->running) {
		fa_reply_json(r, 409, "Conflict",
		              json_pack("{s:s}", "detail",
		                        "Cannot modify session configuration while the session is "
		                        "running."));
		goto out;
	}
	if (json_is_null(json_object_get(body, "name"))) {
		fk_reply_clear(r);
		if (fk_reply_init(r, 500, "Internal Server Error", "text/plain; charset=utf-8") ==
		    0)
			evbuffer_add_printf(r->body, "Internal Server Error");
		goto out;
	}
	config = json_object_get(fa_record(s), "config");
	if (!json_is_object(config)) {
		config = json_object();
		json_object_set_new(fa_record(s), "config", config);
	}
	for (size_t i = 0; i < FK_COUNT(cfg_keys); i++) {
		json_t *v = json_object_get(body, cfg_keys[i]);

		if (v != NULL && (fa_head(st) || strcmp(cfg_keys[i], "cwd") != 0))
			json_object_set(config, cfg_keys[i], v);
	}
	mode = json_object_get(body, "permission_mode");
	if (json_is_string(mode)) {
		json_t *state = fa_state(s), *pc = json_object_get(state, "permission_context");

		if (!json_is_object(pc)) {
			pc = json_loads(FA_DEF_PERMISSION, 0, NULL);
			json_object_set_new(state, "permission_context", pc);
		}
		json_object_set(pc, "mode", mode);
	}
	fa_touch(s);
	fa_refresh(st, s);
	fa_reply_json(r, 200, "OK", fa_record_out(st, fa_record(s), false));
out:
	json_decref(body);
	json_decref(errors);
}

/* Removes a session from the indexes; its run is cancelled without persisting anything. */
static void fa_remove_session(struct fa_store *st, struct fa_session *s)
{
	json_t *ux = json_object_get(st->index, s->user);
	json_t *l = json_object_get(json_object_get(ux, "lists"), s->agent);
	size_t k = (size_t)(s - st->sess);

	fa_run_free(s->run);
	s->run = NULL;
	fa_lock(st, s, false);
	for (size_t i = 0; i < json_array_size(l); i++) {
		if ((size_t)json_integer_value(json_array_get(l, i)) == k) {
			json_array_remove(l, i);
			break;
		}
	}
	json_object_del(json_object_get(json_object_get(ux, "byid"), s->agent), s->id);
	s->deleted = true;
	json_array_clear(s->queue);
	fa_log_trim(s); /* the bus state goes with the session; open streams stay open */
}

/* DELETE /sessions/{id}: the run is cancelled, the session and its log vanish; 204. */
static void fa_h_delete(struct fa_server *srv, struct evhttp_request *req, const char *sid,
                        const char *query, struct fk_reply *r)
{
	json_t *errors = json_array();
	struct fa_session *s = fa_write_target(srv, req, sid, query, errors, r, NULL, NULL);

	if (s != NULL) {
		fa_remove_session(&srv->store, s);
		fk_reply_init(r, 204, "No Content", NULL);
	}
	json_decref(errors);
}

/* POST /sessions/{id}/interrupt (HEAD): a running run is cancelled, a parked reply is closed
 * as interrupted, an idle session is left alone; 202 {session_id} in every case. */
static void fa_h_interrupt(struct fa_server *srv, struct evhttp_request *req, const char *sid,
                           const char *query, struct fk_reply *r)
{
	json_t *errors = json_array();
	struct fa_session *s = fa_write_target(srv, req, sid, query, errors, r, NULL, NULL);

	if (s != NULL) {
		if (s->running)
			fa_run_interrupt(srv, s);
		else
			fa_interrupt_parked(&srv->store, s);
		fa_reply_json(r, 202, "Accepted",
		              json_pack("{s:o}", "session_id", fk_json_text(sid)));
	}
	json_decref(errors);
}

/* What POST /chat/'s input is. */
enum fa_input { FA_IN_NONE, FA_IN_MSG, FA_IN_MSGS, FA_IN_CONFIRM, FA_IN_EXTERNAL };

/* One Msg of the input (loc is where it sits, borrowed). User messages hold text and data
 * blocks only, system messages text only. */
static void fa_check_msg(json_t *errors, json_t *loc, json_t *msg)
{
	static const char *const types[] = {"text",      "thinking",    "hint",
	                                    "tool_call", "tool_result", "data"};
	const char *role;
	json_t *content, *b;
	size_t i;

	if (!fa_want_model(errors, loc, NULL, msg))
		return;
	fa_want_str(errors, loc, msg, "name", true, false);
	content = json_object_get(msg, "content");
	if (content == NULL)
		fa_err(errors, loc, "content", "missing", "Field required", msg);
	else if (!json_is_array(content))
		fa_err(errors, loc, "content", "list_type", "Input should be a valid list",
		       content);
	role = fk_get_str(msg, "role");
	if (json_object_get(msg, "role") == NULL) {
		fa_err(errors, loc, "role", "missing", "Field required", msg);
		return;
	}
	if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0 &&
	                     strcmp(role, "system") != 0)) {
		fa_err(errors, loc, "role", "literal_error",
		       "Input should be 'user', 'assistant' or 'system'",
		       json_object_get(msg, "role"));
		return;
	}
	json_array_foreach(content, i, b) {
		const char *t = fk_get_str(b, "type");
		bool known = false;

		for (size_t k = 0; t != NULL && k < FK_COUNT(types); k++)
			known = known || strcmp(t, types[k]) == 0;
		if (!known) {
			fa_err(errors, loc, "content", "union_tag_invalid",
			       "Input tag does not match any of the expected tags: 'text', "
			       "'thinking', "
			       "'hint', 'tool_call', 'tool_result', 'data'",
			       b);
			return;
		}
		if (strcmp(t, "text") == 0 && !json_is_string(json_object_get(b, "text"))) {
			fa_err(errors, loc, "content", "missing", "Field required", b);
			return;
		}
		if ((strcmp(role, "user") == 0 && strcmp(t, "text") != 0 &&
		     strcmp(t, "data") != 0) ||
		    (strcmp(role, "system") == 0 && strcmp(t, "text") != 0)) {
			fa_err(
			    errors, loc, NULL, "value_error",
			    strcmp(role, "user") == 0
			        ? "Value error, User message can only contain text blocks or data "
			          "blocks."
			        : "Value error, System message can only contain text blocks.",
			    msg);
			return;
		}
	}
}

/* UserConfirmResultEvent / ExternalExecutionResultEvent under loc. */
static void fa_check_hitl(json_t *errors, json_t *loc, json_t *ev, bool confirm)
{
	const char *list_key = confirm ? "confirm_results" : "execution_results";
	json_t *list = json_object_get(ev, list_key), *item, *sub;
	size_t i;

	fa_want_str(errors, loc, ev, "reply_id", true, false);
	if (list == NULL) {
		fa_err(errors, loc, list_key, "missing", "Field required", ev);
		return;
	}
	if (!json_is_array(list)) {
		fa_err(errors, loc, list_key, "list_type", "Input should be a valid list", list);
		return;
	}
	json_array_foreach(list, i, item) {
		sub = json_copy(loc);
		json_array_append_new(sub, json_string(list_key));
		json_array_append_new(sub, json_integer((json_int_t)i));
		if (!fa_want_model(errors, sub, NULL, item)) {
			json_decref(sub);
			continue;
		}
		if (confirm) {
			json_t *tc = json_object_get(item, "tool_call");

			if (!json_is_boolean(json_object_get(item, "confirmed")))
				fa_err(errors, sub, "confirmed",
				       json_object_get(item, "confirmed") == NULL ? "missing"
				                                                  : "bool_type",
				       json_object_get(item, "confirmed") == NULL
				           ? "Field required"
				           : "Input should be a valid boolean",
				       json_object_get(item, "confirmed") == NULL
				           ? item
				           : json_object_get(item, "confirmed"));
			if (tc == NULL) {
				fa_err(errors, sub, "tool_call", "missing", "Field required", item);
			} else if (fa_want_model(errors, sub, "tool_call", tc)) {
				json_array_append_new(sub, json_string("tool_call"));
				fa_want_str(errors, sub, tc, "id", true, false);
				fa_want_str(errors, sub, tc, "name", true, false);
				fa_want_str(errors, sub, tc, "input", true, false);
			}
		} else {
			fa_want_str(errors, sub, item, "id", true, false);
			fa_want_str(errors, sub, item, "name", true, false);
			if (json_object_get(item, "output") == NULL)
				fa_err(errors, sub, "output", "missing", "Field required", item);
		}
		json_decref(sub);
	}
}

/* Classifies and validates ChatRequest.input the way pydantic's union picks a member; errors
 * carry that member's tag in their loc. */
static enum fa_input fa_check_input(json_t *errors, json_t *input)
{
	json_t *loc = json_pack("[s, s]", "body", "input"), *m;
	const char *type = fk_get_str(input, "type");
	enum fa_input kind = FA_IN_MSG;
	size_t i;

	if (input == NULL || json_is_null(input)) {
		kind = FA_IN_NONE;
	} else if (json_is_array(input)) {
		kind = FA_IN_MSGS;
		json_array_append_new(loc, json_string("list[Msg]"));
		json_array_foreach(input, i, m) {
			json_t *sub = json_copy(loc);

			json_array_append_new(sub, json_integer((json_int_t)i));
			fa_check_msg(errors, sub, m);
			json_decref(sub);
		}
	} else if (json_object_get(input, "confirm_results") != NULL ||
	           (type != NULL && strcmp(type, "USER_CONFIRM_RESULT") == 0)) {
		kind = FA_IN_CONFIRM;
		json_array_append_new(loc, json_string("UserConfirmResultEvent"));
		fa_check_hitl(errors, loc, input, true);
	} else if (json_object_get(input, "execution_results") != NULL ||
	           (type != NULL && strcmp(type, "EXTERNAL_EXECUTION_RESULT") == 0)) {
		kind = FA_IN_EXTERNAL;
		json_array_append_new(loc, json_string("ExternalExecutionResultEvent"));
		fa_check_hitl(errors, loc, input, false);
	} else {
		json_array_append_new(loc, json_string("Msg"));
		fa_check_msg(errors, loc, input);
	}
	json_decref(loc);
	return kind;
}

/* A user Msg from the input as pydantic stores it: the client's id (and created_at, metadata)
 * kept, defaults for the rest, blocks given their ids and (HEAD) timestamps. New reference. */
static json_t *fa_input_msg(struct fa_store *st, json_t *in)
{
	const char *given = fk_get_str(in, "id");
	json_t *content = json_array(), *b, *msg;
	char id[33];
	size_t i;

	fa_new_id(st, id);
	json_array_foreach(json_object_get(in, "content"), i, b) {
		json_t *copy = json_deep_copy(b);
		char bid[33];

		if (copy == NULL)
			continue;
		if (!json_is_string(json_object_get(copy, "id"))) {
			fa_new_id(st, bid);
			json_object_set_new(copy, "id", json_string(bid));
		}
		if (fa_head(st) && json_object_get(copy, "created_at") == NULL)
			json_object_set_new(copy, "created_at", fa_now_json());
		if (fa_head(st) && json_object_get(copy, "finished_at") == NULL)
			json_object_set_new(copy, "finished_at", json_null());
		json_array_append_new(content, copy);
	}
	msg = fa_msg_new(st, given != NULL ? given : id, fk_get_str(in, "name"),
	                 fk_get_str(in, "role"), content);
	if (msg != NULL && json_is_string(json_object_get(in, "created_at")))
		json_object_set(msg, "created_at", json_object_get(in, "created_at"));
	if (msg != NULL && json_is_object(json_object_get(in, "metadata")))
		json_object_set(msg, "metadata", json_object_get(in, "metadata"));
	return msg;
}

/* A message the agent refuses at run time (system role, or tool/thinking blocks). */
static bool fa_msg_unusable(json_t *msg)
{
	json_t *b;
	size_t i;

	if (strcmp(fk_get_str(msg, "role"), "system") == 0)
		return true;
	json_array_foreach(json_object_get(msg, "content"), i, b) {
		const char *t = fk_get_str(b, "type");

		if (strcmp(t, "tool_call") == 0 || strcmp(t, "tool_result") == 0 ||
		    strcmp(t, "thinking") == 0)
			return true;
	}
	return false;
}

/* A new reply run (Case A): the input messages go to the log at once, then the agent runs. */
static void fa_start_reply(struct fa_server *srv, struct fa_session *s, json_t *input,
                           enum fa_input kind)
{
	struct fa_store *st = &srv->store;
	json_t *msgs = kind == FA_IN_MSG ? json_pack("[O]", input) : json_incref(input), *m;
	char *text = NULL, id[33];
	bool unusable = false;
	size_t i;

	json_array_foreach(msgs, i, m) {
		json_t *msg = fa_input_msg(st, m);

		if (msg == NULL)
			continue;
		unusable = unusable || fa_msg_unusable(msg);
		fa_upsert(s, msg, !unusable);
		free(text);
		text = fa_msg_text(msg);
		json_decref(msg);
	}
	json_decref(msgs);
	/* A wake-up with nothing new on a parked reply, or an unusable message: Agent raises
	 * before REPLY_START, and the failure is reported as a reply of its own. */
	if (unusable || (kind == FA_IN_NONE && fa_parked_tail(s) != NULL)) {
		free(text);
		fa_failed_reply(
		    st, s, "setup",
		    "The session could not be prepared \xe2\x80\x94 check the agent's model, "
		    "tools and knowledge bases.");
		fa_touch(s);
		fa_refresh(st, s);
		return;
	}
	fa_new_id(st, id);
	fa_state_set_reply(s, id, 0);
	if (fa_run_start(srv, s, fk_plan_of(text),
	                 fa_msg_new(st, id, fa_agent_name(st, s), "assistant", json_array()), NULL,
	                 text))
		fprintf(stderr, FA_NAME ": cannot start a run\n");
}

/* A session never given a chat model cannot run (the run fails while it is assembled). */
static bool fa_no_model(struct fa_session *s)
{
	json_t *cfg = json_object_get(json_object_get(fa_record(s), "config"), "chat_model_config");

	return cfg == NULL || json_is_null(cfg);
}

/* ChatRequest: agent_id, session_id and input (required, nullable). */
static enum fa_input fa_check_chat(json_t *errors, json_t *body)
{
	json_t *loc = json_pack("[s]", "body");
	enum fa_input kind = FA_IN_NONE;

	if (loc != NULL && fa_want_body(errors, body, loc)) {
		fa_want_str(errors, loc, body, "agent_id", true, false);
		fa_want_str(errors, loc, body, "session_id", true, false);
		if (json_object_get(body, "input") == NULL)
			fa_err(errors, loc, "input", "missing", "Field required", body);
		else
			kind = fa_check_input(errors, json_object_get(body, "input"));
	}
	json_decref(loc);
	return kind;
}

/* POST /chat/: fire-and-forget. New messages (or null) start a run at once: 409 while one
 * runs. HITL results are queued for the session (HEAD; v2.0.1 spawned them directly, so 409
 * there too). Whatever fails later (no model configured, nothing to resume, no such
 * session) shows in the message log, never in this answer. */
static void fa_h_chat(struct fa_server *srv, struct evhttp_request *req, struct fk_reply *r)
{
	struct fa_store *st = &srv->store;
	json_t *errors = json_array(), *body = NULL, *input;
	struct fa_session *s;
	enum fa_input kind;
	const char *user, *sid;
	char msg[200];
	bool hitl;

	if (fa_read_body(req, r, &body) || fa_prologue(req, NULL, errors, r, &user, NULL))
		goto out;
	kind = fa_check_chat(errors, body);
	if (fa_reply_errors(r, errors))
		goto out;
	sid = fk_get_str(body, "session_id");
	input = json_object_get(body, "input");
	s = fa_lookup(st, user, fk_get_str(body, "agent_id"), sid);
	hitl = kind == FA_IN_CONFIRM || kind == FA_IN_EXTERNAL;
	snprintf(msg, sizeof(msg),
	         "Session '%.100s' already has an active chat run in this process.", sid);
	if (s == NULL) {
		/* The run fails on its own, where nobody can see it. */
	} else if (hitl && fa_head(st) && s->running) {
		if (s->queue == NULL)
			s->queue = json_array();
		json_array_append(s->queue, input);
	} else if (s->running) {
		fa_reply_json(r, 409, "Conflict", json_pack("{s:o}", "detail", fk_json_text(msg)));
		goto out;
	} else if (fa_no_model(s)) {
		/* Assembly stops before the input is stored: only the failure is left. */
		fa_failed_reply(st, s, "invalid_request",
		                "The request to the model was rejected as invalid.");
		fa_refresh(st, s);
	} else if (hitl) {
		fa_resume(srv, s, input);
	} else {
		fa_start_reply(srv, s, input, kind);
	}
	fa_reply_json(
	    r, 200, "OK",
	    json_pack("{s:s, s:o}", "status", "started", "session_id", fk_json_text(sid)));
out:
	json_decref(body);
	json_decref(errors);
}

static void fa_fail(struct fk_server *fk, struct fk_reply *r);

/* GET /sessions/{id}/stream?agent_id=: 404 unless the caller owns the session, then the
 * stream (fa_emit): the current run's replay log, the live events, a heartbeat after every
 * quiet interval. It never ends on its own, not even when the session is deleted. */
static void fa_h_stream(struct fa_server *srv, struct evhttp_request *req, const char *sid,
                        const char *query, struct fk_reply *r)
{
	json_t *errors = json_array();
	struct fa_session *s;
	const char *user;
	char *agent = NULL;
	size_t *idx;

	if (fa_prologue(req, query, errors, r, &user, &agent) || fa_reply_errors(r, errors))
		goto out;
	s = fa_lookup(&srv->store, user, agent, sid);
	if (s == NULL) {
		fa_reply_detail(r, 404, "Not Found", "Session", sid);
		goto out;
	}
	idx = malloc(sizeof(*idx));
	if (idx != NULL)
		*idx = (size_t)(s - srv->store.sess);
	if (idx == NULL ||
	    fk_reply_stream(&srv->fk, r, &fa_stream_kind, srv->store.heartbeat_ms, s->id, idx))
		fa_fail(&srv->fk, r);
out:
	free(agent);
	json_decref(errors);
}

/* A stream opens: the replay log of the run in progress (nothing once it has persisted, or
 * when the session is gone). */
static void fa_stream_open(struct fk_server *fk, const char *key, void *arg, struct evbuffer *out)
{
	struct fa_session *s = &fa_srv(fk)->store.sess[*(size_t *)arg];
	json_t *frame;
	size_t i;

	(void)key;
	if (s->deleted)
		return;
	json_array_foreach(s->replay, i, frame) {
		evbuffer_add(out, json_string_value(frame), json_string_length(frame));
	}
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
		if (cmd == EVHTTP_REQ_POST)
			fa_h_create(srv, req, r);
		else
			fa_h_sessions(srv, req, query, r);
		break;
	case FA_R_SESSION:
		if (cmd == EVHTTP_REQ_PATCH)
			fa_h_update(srv, req, sid, query, r);
		else
			fa_h_delete(srv, req, sid, query, r);
		break;
	case FA_R_INTERRUPT:
		fa_h_interrupt(srv, req, sid, query, r);
		break;
	case FA_R_CHAT:
		fa_h_chat(srv, req, r);
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
	case FA_R_STREAM:
		fa_h_stream(srv, req, sid, query, r);
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

/* Mode write-unknown: the write went through, then the server fell over before it could say
 * so; Starlette's own plain-text 500. */
static void fa_write_fail(struct fk_server *fk, struct fk_reply *r)
{
	(void)fk;
	fk_reply_clear(r);
	if (fk_reply_init(r, 500, "Internal Server Error", "text/plain; charset=utf-8") == 0)
		evbuffer_add_printf(r->body, "Internal Server Error");
}

/* GET /__fake/mode also shows run_ms and stream_heartbeat_ms. */
static int fa_mode_info(struct fk_server *fk, json_t *info)
{
	struct fa_store *st = &fa_srv(fk)->store;

	if (json_object_set_new(info, "run_ms", json_integer(st->run_ms)) ||
	    json_object_set_new(info, "stream_heartbeat_ms", json_integer(st->heartbeat_ms)))
		return -1;
	return 0;
}

/* POST /__fake/mode?run_ms=N&stream_heartbeat_ms=N (the latter for streams opened later). */
static int fa_mode_set(struct fk_server *fk, const char *query)
{
	struct fa_store *st = &fa_srv(fk)->store;
	char *v = fa_query_get(query, "run_ms"), *h = fa_query_get(query, "stream_heartbeat_ms");
	unsigned long long ms = st->run_ms, hb = st->heartbeat_ms;
	int rc = 0;

	if ((v != NULL && fk_parse_ulong(v, FA_RUN_MS_MAX, &ms)) ||
	    (h != NULL && fk_parse_ulong(h, FA_HEARTBEAT_MS_MAX, &hb))) {
		rc = -1;
	} else {
		st->run_ms = (unsigned)ms;
		st->heartbeat_ms = (unsigned)hb;
	}
	free(v);
	free(h);
	return rc;
}

static const struct fk_header fa_recorded[] = {{"x_user_id", "X-User-ID"}};

static const struct fk_fake fa_fake = {
    .name = FA_NAME,
    .dump_flags = FA_DUMP_FLAGS,
    .query_nul = FK_NUL_CUT,
    .recorded = fa_recorded,
    .nrecorded = FK_COUNT(fa_recorded),
    .mode_usage = "mode must be ok|slow|garbage|wrong-shape|http500|close|write-unknown|"
                  "write-drop, delay_ms and run_ms 0..600000, stream_heartbeat_ms 0..3600000",
    .serve = fa_route,
    .fail = fa_fail,
    .write_fail = fa_write_fail,
    .mode_info = fa_mode_info,
    .mode_set = fa_mode_set,
    .stream_open = fa_stream_open,
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
	        "http500|close|\n"
	        "       write-unknown|write-drop]\n"
	        "       [--delay-ms N] [--run-ms N] [--stream-heartbeat-ms N] [--quiet]\n"
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
	        "  --long-turns N    the main user's first session (idle) has N turns, 2N\n"
	        "                    messages, instead of 1-3 (0)\n"
	        "  --mode M          misbehaviour for every non-control route (ok); write-unknown\n"
	        "                    and write-drop perform a write, then answer 500 / close\n"
	        "  --delay-ms N      delay of --mode slow (3000)\n"
	        "  --run-ms N        how long a simulated agent run holds the session (300)\n"
	        "  --stream-heartbeat-ms N\n"
	        "                    quiet time after which GET /sessions/{id}/stream sends its\n"
	        "                    heartbeat comment (30000; 0 = none)\n"
	        "  --quiet           do not log requests on stderr\n"
	        "Runs: a user text with [tool:auto], [tool:ask], [tool:external], [reply:error]\n"
	        "or [run:long] makes the agent run a tool, park on a permission prompt or an\n"
	        "external result, fail, or run until interrupted.\n"
	        "Control: GET|DELETE /__fake/requests,"
	        " POST /__fake/mode?mode=M&delay_ms=N&run_ms=N&stream_heartbeat_ms=N,\n"
	        "         POST /__fake/stream-drop (cuts every open stream)\n");
}

struct fa_opts {
	struct fk_opts c;
	enum fa_shape shape;
	bool no_messages;
	unsigned run_ms;
	unsigned heartbeat_ms;
	unsigned long_turns;
};

/* --shape and --no-messages, the options that are fake_agentscope's own. */
static int fa_parse_opt(int c, const char *arg, void *ctx)
{
	struct fa_opts *o = ctx;

	unsigned long long v;

	if (c == 'M') {
		o->no_messages = true;
		return 0;
	}
	if (c == 'R') {
		if (fk_parse_ulong(arg, FA_RUN_MS_MAX, &v))
			return -1;
		o->run_ms = (unsigned)v;
		return 0;
	}
	if (c == 'L') {
		if (fk_parse_ulong(arg, 5000, &v))
			return -1;
		o->long_turns = (unsigned)v;
		return 0;
	}
	if (c == 'H') {
		if (fk_parse_ulong(arg, FA_HEARTBEAT_MS_MAX, &v))
			return -1;
		o->heartbeat_ms = (unsigned)v;
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
	    {"port", required_argument, NULL, 'p'},
	    {"port-file", required_argument, NULL, 'f'},
	    {"data", required_argument, NULL, 'd'},
	    {"generate", required_argument, NULL, 'g'},
	    {"seed", required_argument, NULL, 's'},
	    {"shape", required_argument, NULL, 'S'},
	    {"no-messages", no_argument, NULL, 'M'},
	    {"long-turns", required_argument, NULL, 'L'},
	    {"mode", required_argument, NULL, 'm'},
	    {"delay-ms", required_argument, NULL, 'D'},
	    {"run-ms", required_argument, NULL, 'R'},
	    {"stream-heartbeat-ms", required_argument, NULL, 'H'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};

	o->shape = FA_SHAPE_HEAD;
	o->no_messages = false;
	o->long_turns = 0;
	o->run_ms = FA_RUN_MS_DEFAULT;
	o->heartbeat_ms = FA_HEARTBEAT_MS_DEFAULT;
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
		root = fa_generate(o.c.seed, n, agents, user, o.long_turns);
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
	srv.store.run_ms = o.run_ms;
	srv.store.heartbeat_ms = o.heartbeat_ms;
	status = fk_server_run(&srv.fk, &fa_fake, &o.c);
out:
	/* Runs first (their timers belong to the loop), then the server, the store last. */
	fa_runs_stop(&srv.store);
	fk_server_free(&srv.fk);
	fa_store_free(&srv.store);
	return status;
}
