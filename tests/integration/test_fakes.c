/* test_fakes.c - a self-check of the fake backends' write paths: every write endpoint of
 * fake_agentscope and fake_sandbase (both dialects), their simulated agent runs, parked states
 * and resumes, the refusals the real backends give, and the write-only failure modes; and of
 * their live event streams, read with a raw socket client (frames, heartbeats, replay,
 * resumption, the ids the streams share with the persisted history, the stream controls). The
 * gateway's write and stream tests are only as good as these fakes, so a fake that silently
 * misbehaves must fail here first.
 *
 * Runs are short (--run-ms 120) and every wait polls with a deadline: nothing depends on a
 * sleep being long enough. */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"

#define RUN_MS "120"
#define WAIT_MS 4000
#define SB_KEY "x-api-key: sk-sb-test"
#define CL_KEY "x-api-key: sk-ant-test"
#define CL_BETA "anthropic-beta: managed-agents-2026-04-01"

static struct h_proc as, sb, cl;

/* ------------------------------------------------------------------------------------------ */
/* HTTP                                                                                         */
/* ------------------------------------------------------------------------------------------ */

struct res {
	long status; /* 0: no answer at all */
	char *body;
	size_t len;
	json_t *json;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct res *r = arg;
	char *grown = realloc(r->body, r->len + size * n + 1);

	if (grown == NULL)
		return 0;
	r->body = grown;
	memcpy(r->body + r->len, p, size * n);
	r->len += size * n;
	r->body[r->len] = '\0';
	return size * n;
}

static void res_free(struct res *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

/* One request; headers is NULL-terminated (may be NULL), body NULL for none. */
static struct res req(const char *method, int port, const char *path, const char *const *headers,
                      const char *body)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	struct res r = {0};
	char url[2048];

	ck_assert_ptr_nonnull(c);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
		h = curl_slist_append(h, headers[i]);
	if (body != NULL)
		h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	if (body != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (r.body != NULL)
		r.json = json_loads(r.body, JSON_DECODE_ANY, NULL);
	return r;
}

/* A path built printf-style. */
static const char *pathf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return buf;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static void expect(struct res *r, long status)
{
	ck_assert_msg(r->status == status, "status %ld, want %ld: %s", r->status, status,
	              r->body != NULL ? r->body : "(no body)");
}

/* The error type of a SandBase / Claude error body. */
static const char *err_type(const struct res *r)
{
	return json_string_value(json_object_get(json_object_get(r->json, "error"), "type"));
}

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* The fake's recorded requests since the last clear with this method and URI prefix. */
static size_t recorded(int port, const char *method, const char *prefix, json_t **last)
{
	struct res r = req("GET", port, "/__fake/requests", NULL, NULL);
	json_t *e;
	size_t i, n = 0;

	expect(&r, 200);
	if (last != NULL)
		*last = NULL;
	json_array_foreach(r.json, i, e) {
		if (strcmp(str(e, "method"), method) == 0 &&
		    strncmp(str(e, "uri"), prefix, strlen(prefix)) == 0) {
			n++;
			if (last != NULL) {
				json_decref(*last);
				*last = json_incref(e);
			}
		}
	}
	res_free(&r);
	return n;
}

static void clear_requests(int port)
{
	struct res r = req("DELETE", port, "/__fake/requests", NULL, NULL);

	expect(&r, 200);
	res_free(&r);
}

static void set_mode(int port, const char *query)
{
	char path[256];
	struct res r =
	    req("POST", port, pathf(path, sizeof(path), "/__fake/mode?%s", query), NULL, NULL);

	expect(&r, 200);
	res_free(&r);
}

/* ------------------------------------------------------------------------------------------ */
/* AgentScope                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static const char *const as_alice[] = {"X-User-ID: alice", NULL};
static const char *const as_bob[] = {"X-User-ID: bob", NULL};
static char as_agent[64];

#define MODEL_CFG                                                                                  \
	"{\"type\":\"anthropic_credential\",\"credential_id\":\"cred1\",\"model\":\"claude\","     \
	"\"parameters\":{}}"

/* Creates a session of alice's first agent (with a chat model unless bare); returns its id. */
static void as_create(char out[64], bool bare)
{
	char body[512];
	struct res r;

	snprintf(body, sizeof(body), "{\"agent_id\":\"%s\"%s}", as_agent,
	         bare ? "" : ",\"chat_model_config\":" MODEL_CFG);
	r = req("POST", as.port, "/sessions/", as_alice, body);
	expect(&r, 201);
	ck_assert_int_eq(json_object_size(r.json), 1);
	ck_assert_uint_eq(strlen(str(r.json, "session_id")), 32);
	snprintf(out, 64, "%s", str(r.json, "session_id"));
	res_free(&r);
}

static struct res as_get(const char *sid, const char *what)
{
	char path[256];

	return req("GET", as.port,
	           pathf(path, sizeof(path), "/sessions/%s%s?agent_id=%s", sid, what, as_agent),
	           as_alice, NULL);
}

static char *as_status(const char *sid)
{
	struct res r = as_get(sid, "/status");
	char *s;

	expect(&r, 200);
	s = strdup(str(r.json, "status"));
	res_free(&r);
	return s;
}

static void as_check_status(const char *sid, const char *want)
{
	char *s = as_status(sid);

	ck_assert_msg(strcmp(s, want) == 0, "status %s, want %s", s, want);
	free(s);
}

/* Polls /status until it reads want. */
static void as_wait(const char *sid, const char *want)
{
	for (int waited = 0;; waited += 20) {
		char *s = as_status(sid);
		bool ok = strcmp(s, want) == 0;

		if (ok || waited >= WAIT_MS)
			ck_assert_msg(ok, "status %s, want %s", s, want);
		free(s);
		if (ok)
			return;
		sleep_ms(20);
	}
}

/* The session's durable log (new reference). */
static json_t *as_messages(const char *sid)
{
	struct res r = as_get(sid, "/messages");
	json_t *m;

	expect(&r, 200);
	m = json_incref(json_object_get(r.json, "messages"));
	res_free(&r);
	return m;
}

/* The listing item of sid (new reference), NULL when it is not listed. */
static json_t *as_view(const char *sid)
{
	char path[128];
	struct res r =
	    req("GET", as.port, pathf(path, sizeof(path), "/sessions/?agent_id=%s", as_agent),
	        as_alice, NULL);
	json_t *v, *found = NULL;
	size_t i;

	expect(&r, 200);
	json_array_foreach(json_object_get(r.json, "sessions"), i, v) {
		if (strcmp(str(json_object_get(v, "session"), "id"), sid) == 0)
			found = json_incref(v);
	}
	res_free(&r);
	return found;
}

static struct res as_chat(const char *sid, const char *input)
{
	char body[4096];

	snprintf(body, sizeof(body), "{\"agent_id\":\"%s\",\"session_id\":\"%s\",\"input\":%s}",
	         as_agent, sid, input);
	return req("POST", as.port, "/chat/", as_alice, body);
}

/* Sends a user message with this id and text; 200 {status: started}. */
static void as_say(const char *sid, const char *id, const char *text)
{
	char input[1024];
	struct res r;

	snprintf(input, sizeof(input),
	         "{\"id\":\"%s\",\"name\":\"user\",\"role\":\"user\",\"content\":[{\"type\":"
	         "\"text\",\"text\":\"%s\"}]}",
	         id, text);
	r = as_chat(sid, input);
	expect(&r, 200);
	ck_assert_str_eq(str(r.json, "status"), "started");
	ck_assert_str_eq(str(r.json, "session_id"), sid);
	res_free(&r);
}

/* The content block of this type in msg (the last one when several). */
static json_t *block(json_t *msg, const char *type)
{
	json_t *b, *found = NULL;
	size_t i;

	json_array_foreach(json_object_get(msg, "content"), i, b) {
		if (strcmp(str(b, "type"), type) == 0)
			found = b;
	}
	return found;
}

START_TEST(as_create_list_update_delete)
{
	char sid[64], path[256], body[256];
	json_t *v, *rec, *last;
	struct res r;

	clear_requests(as.port);
	as_create(sid, false);
	ck_assert_uint_eq(recorded(as.port, "POST", "/sessions/", &last), 1);
	ck_assert_str_eq(str(json_object_get(last, "json"), "agent_id"), as_agent);
	json_decref(last);
	v = as_view(sid);
	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(str(v, "status"), "idle");
	ck_assert(json_is_false(json_object_get(v, "is_running")));
	rec = json_object_get(v, "session");
	ck_assert_str_eq(str(rec, "user_id"), "alice");
	ck_assert_str_eq(str(rec, "source"), "user");
	/* The default name is the creation time; timestamps are naive (no zone). */
	ck_assert_uint_eq(strlen(str(json_object_get(rec, "config"), "name")), 19);
	ck_assert_ptr_null(strchr(str(rec, "created_at"), 'Z'));
	ck_assert_uint_eq(strlen(str(json_object_get(rec, "config"), "workspace_id")), 32);
	json_decref(v);

	/* Refusals: unknown agent, missing and empty identity, a bad body. */
	r = req("POST", as.port, "/sessions/", as_alice, "{\"agent_id\":\"nope\"}");
	expect(&r, 404);
	ck_assert_str_eq(str(r.json, "detail"), "Agent 'nope' not found.");
	res_free(&r);
	r = req("POST", as.port, "/sessions/", NULL, "{\"agent_id\":\"x\"}");
	expect(&r, 422);
	ck_assert_str_eq(str(json_array_get(json_object_get(r.json, "detail"), 0), "type"),
	                 "missing");
	res_free(&r);
	r = req("POST", as.port, "/sessions/", (const char *const[]){"X-User-ID;", NULL}, "{}");
	expect(&r, 401);
	res_free(&r);
	r = req("POST", as.port, "/sessions/", as_alice, "{\"agent_id\":");
	expect(&r, 422);
	ck_assert_str_eq(str(json_array_get(json_object_get(r.json, "detail"), 0), "type"),
	                 "json_invalid");
	res_free(&r);

	/* PATCH: the fields sent change, the others stay; permission_mode goes to the state. */
	r = req("PATCH", as.port,
	        pathf(path, sizeof(path), "/sessions/%s?agent_id=%s", sid, as_agent), as_alice,
	        "{\"name\":\"renamed\",\"permission_mode\":\"explore\",\"cwd\":\"src\"}");
	expect(&r, 200);
	ck_assert_str_eq(str(json_object_get(r.json, "config"), "name"), "renamed");
	ck_assert_str_eq(str(json_object_get(r.json, "config"), "cwd"), "src");
	/* Unset fields are unchanged. */
	ck_assert_str_eq(
	    str(json_object_get(json_object_get(r.json, "config"), "chat_model_config"), "model"),
	    "claude");
	ck_assert_str_eq(
	    str(json_object_get(json_object_get(r.json, "state"), "permission_context"), "mode"),
	    "explore");
	res_free(&r);
	r = req("PATCH", as.port, path, as_alice, "{\"permission_mode\":\"sometimes\"}");
	expect(&r, 422);
	res_free(&r);
	v = as_view(sid);
	ck_assert_str_eq(str(json_object_get(json_object_get(v, "session"), "config"), "name"),
	                 "renamed");
	json_decref(v);

	/* Another user sees nothing of it. */
	r = req("PATCH", as.port, path, as_bob, "{\"name\":\"x\"}");
	expect(&r, 404);
	res_free(&r);
	r = req("DELETE", as.port, path, as_bob, NULL);
	expect(&r, 404);
	res_free(&r);

	/* DELETE: 204, then gone everywhere. */
	r = req("DELETE", as.port, path, as_alice, NULL);
	expect(&r, 204);
	ck_assert_uint_eq(r.len, 0);
	res_free(&r);
	r = req("DELETE", as.port, path, as_alice, NULL);
	expect(&r, 404);
	ck_assert_str_eq(str(r.json, "detail"),
	                 pathf(body, sizeof(body), "Session '%s' not found.", sid));
	res_free(&r);
	r = as_get(sid, "/messages");
	expect(&r, 404);
	res_free(&r);
	ck_assert_ptr_null(as_view(sid));
}
END_TEST

START_TEST(as_run_holds_the_lock_then_replies)
{
	char sid[64], path[256];
	json_t *msgs, *reply, *v, *u;
	struct res r;

	as_create(sid, false);
	as_say(sid, "msg_client_1", "What is new?");
	/* The user message is in the log at once, under the client's id. */
	msgs = as_messages(sid);
	ck_assert_uint_eq(json_array_size(msgs), 1);
	ck_assert_str_eq(str(json_array_get(msgs, 0), "id"), "msg_client_1");
	ck_assert_str_eq(str(json_array_get(msgs, 0), "role"), "user");
	json_decref(msgs);
	v = as_view(sid);
	ck_assert_str_eq(str(v, "status"), "running");
	ck_assert(json_is_true(json_object_get(v, "is_running")));
	json_decref(v);
	/* While the run holds the session: a second message and a PATCH are refused. */
	r = as_chat(sid, "{\"name\":\"user\",\"role\":\"user\",\"content\":[]}");
	expect(&r, 409);
	ck_assert_ptr_nonnull(strstr(str(r.json, "detail"), "already has an active chat run"));
	res_free(&r);
	r = req("PATCH", as.port,
	        pathf(path, sizeof(path), "/sessions/%s?agent_id=%s", sid, as_agent), as_alice,
	        "{\"name\":\"x\"}");
	expect(&r, 409);
	res_free(&r);
	as_wait(sid, "idle");
	msgs = as_messages(sid);
	ck_assert_uint_eq(json_array_size(msgs), 2);
	reply = json_array_get(msgs, 1);
	ck_assert_str_eq(str(reply, "role"), "assistant");
	ck_assert_str_eq(str(reply, "finished_reason"), "completed");
	ck_assert_ptr_nonnull(str(reply, "finished_at"));
	ck_assert_ptr_nonnull(block(reply, "text"));
	u = json_object_get(reply, "usage");
	ck_assert_int_gt(json_integer_value(json_object_get(u, "input_tokens")), 0);
	ck_assert_int_gt(json_integer_value(json_object_get(u, "output_tokens")), 0);
	json_decref(msgs);
	/* A resume when nothing is parked: accepted, and nothing changes. */
	r = as_chat(sid,
	            "{\"type\":\"USER_CONFIRM_RESULT\",\"reply_id\":\"x\",\"confirm_results\":[]}");
	expect(&r, 200);
	res_free(&r);
	as_wait(sid, "idle");
	msgs = as_messages(sid);
	ck_assert_uint_eq(json_array_size(msgs), 2);
	ck_assert_str_eq(str(json_array_get(msgs, 1), "finished_reason"), "completed");
	json_decref(msgs);
}
END_TEST

/* Parks on [tool:ask], then resumes with a confirmation (confirmed or not). */
static void as_confirm(bool confirmed)
{
	char sid[64], input[2048], *text;
	json_t *msgs, *reply, *call, *res, *v;
	struct res r;

	as_create(sid, false);
	as_say(sid, "m1", "Push it [tool:ask]");
	as_wait(sid, "awaiting_permission");
	v = as_view(sid);
	ck_assert_str_eq(str(v, "status"), "awaiting_permission");
	ck_assert(json_is_false(json_object_get(v, "is_running")));
	json_decref(v);
	msgs = as_messages(sid);
	reply = json_array_get(msgs, 1);
	ck_assert(json_is_null(json_object_get(reply, "finished_at")));
	ck_assert(json_is_null(json_object_get(reply, "finished_reason")));
	call = block(reply, "tool_call");
	ck_assert_str_eq(str(call, "state"), "asking");
	ck_assert_ptr_null(block(reply, "tool_result"));
	text = json_dumps(call, JSON_COMPACT);
	snprintf(input, sizeof(input),
	         "{\"type\":\"USER_CONFIRM_RESULT\",\"reply_id\":\"%s\",\"confirm_results\":"
	         "[{\"confirmed\":%s,\"tool_call\":%s}]}",
	         str(reply, "id"), confirmed ? "true" : "false", text);
	free(text);
	json_decref(msgs);
	r = as_chat(sid, input);
	expect(&r, 200);
	res_free(&r);
	as_wait(sid, "idle");
	msgs = as_messages(sid);
	ck_assert_uint_eq(json_array_size(msgs), 2); /* the same reply, resumed */
	reply = json_array_get(msgs, 1);
	ck_assert_str_eq(str(reply, "finished_reason"), "completed");
	ck_assert_str_eq(str(block(reply, "tool_call"), "state"), "finished");
	res = block(reply, "tool_result");
	ck_assert_str_eq(str(res, "state"), confirmed ? "success" : "denied");
	ck_assert_str_eq(str(res, "id"), str(block(reply, "tool_call"), "id"));
	json_decref(msgs);
}

START_TEST(as_parked_permission_allowed)
{
	as_confirm(true);
}
END_TEST

START_TEST(as_parked_permission_denied)
{
	as_confirm(false);
}
END_TEST

START_TEST(as_parked_external_result)
{
	char sid[64], input[1024];
	json_t *msgs, *reply, *call, *res;
	struct res r;

	as_create(sid, false);
	as_say(sid, "m1", "Open a ticket [tool:external]");
	as_wait(sid, "awaiting_external_result");
	msgs = as_messages(sid);
	reply = json_array_get(msgs, 1);
	call = block(reply, "tool_call");
	ck_assert_str_eq(str(call, "state"), "submitted");
	ck_assert_str_eq(str(block(reply, "tool_result"), "state"), "running");
	/* A confirmation does not fit a call waiting for its result: the reply is closed with
	 * an error, and the session stays parked. */
	snprintf(
	    input, sizeof(input),
	    "{\"type\":\"USER_CONFIRM_RESULT\",\"reply_id\":\"%s\",\"confirm_results\":[{"
	    "\"confirmed\":true,\"tool_call\":{\"id\":\"%s\",\"name\":\"x\",\"input\":\"{}\"}}]}",
	    str(reply, "id"), str(call, "id"));
	r = as_chat(sid, input);
	expect(&r, 200);
	res_free(&r);
	as_check_status(sid, "awaiting_external_result");
	snprintf(
	    input, sizeof(input),
	    "{\"type\":\"EXTERNAL_EXECUTION_RESULT\",\"reply_id\":\"%s\",\"execution_results\":"
	    "[{\"type\":\"tool_result\",\"id\":\"%s\",\"name\":\"%s\",\"output\":\"HELP-1\","
	    "\"state\":\"success\"}]}",
	    str(reply, "id"), str(call, "id"), str(call, "name"));
	json_decref(msgs);
	r = as_chat(sid, input);
	expect(&r, 200);
	res_free(&r);
	as_wait(sid, "idle");
	msgs = as_messages(sid);
	reply = json_array_get(msgs, 1);
	ck_assert_str_eq(str(reply, "finished_reason"), "completed");
	res = block(reply, "tool_result");
	ck_assert_str_eq(str(res, "state"), "success");
	ck_assert_str_eq(str(json_array_get(json_object_get(res, "output"), 0), "text"), "HELP-1");
	json_decref(msgs);
}
END_TEST

START_TEST(as_interrupts)
{
	char sid[64], path[256];
	json_t *msgs, *reply;
	struct res r;

	as_create(sid, false);
	pathf(path, sizeof(path), "/sessions/%s/interrupt?agent_id=%s", sid, as_agent);
	/* Idle: a no-op. */
	r = req("POST", as.port, path, as_alice, NULL);
	expect(&r, 202);
	ck_assert_str_eq(str(r.json, "session_id"), sid);
	res_free(&r);
	/* Running until interrupted. */
	as_say(sid, "m1", "Think hard [run:long]");
	sleep_ms(3 * atoi(RUN_MS));
	as_check_status(sid, "running");
	r = req("POST", as.port, path, as_alice, NULL);
	expect(&r, 202);
	res_free(&r);
	as_wait(sid, "idle");
	msgs = as_messages(sid);
	ck_assert_uint_eq(json_array_size(msgs), 2);
	ck_assert_str_eq(str(json_array_get(msgs, 1), "finished_reason"), "interrupted");
	json_decref(msgs);
	/* Parked: the waiting call is closed as interrupted. */
	as_say(sid, "m2", "Push [tool:ask]");
	as_wait(sid, "awaiting_permission");
	r = req("POST", as.port, path, as_alice, NULL);
	expect(&r, 202);
	res_free(&r);
	as_wait(sid, "idle");
	msgs = as_messages(sid);
	reply = json_array_get(msgs, 3);
	ck_assert_str_eq(str(reply, "finished_reason"), "interrupted");
	ck_assert_str_eq(str(block(reply, "tool_result"), "state"), "interrupted");
	json_decref(msgs);
	/* Another user's interrupt finds nothing. */
	r = req("POST", as.port, path, as_bob, NULL);
	expect(&r, 404);
	res_free(&r);
}
END_TEST

START_TEST(as_tool_and_error_plans)
{
	char sid[64];
	json_t *msgs, *reply;

	as_create(sid, false);
	as_say(sid, "m1", "Read the notes [tool:auto]");
	as_wait(sid, "idle");
	as_say(sid, "m2", "Again [reply:error]");
	as_wait(sid, "idle");
	msgs = as_messages(sid);
	ck_assert_uint_eq(json_array_size(msgs), 4);
	reply = json_array_get(msgs, 1);
	ck_assert_str_eq(str(reply, "finished_reason"), "completed");
	ck_assert_str_eq(str(block(reply, "tool_call"), "state"), "finished");
	ck_assert_str_eq(str(block(reply, "tool_result"), "state"), "success");
	reply = json_array_get(msgs, 3);
	ck_assert_str_eq(str(reply, "finished_reason"), "error");
	ck_assert_str_eq(str(json_object_get(reply, "error"), "type"), "upstream");
	json_decref(msgs);
}
END_TEST

START_TEST(as_session_without_model_cannot_run)
{
	char sid[64];
	json_t *msgs, *reply;

	as_create(sid, true);
	as_say(sid, "m1", "hello");
	as_wait(sid, "idle");
	msgs = as_messages(sid);
	/* The run fails while it is assembled: no user message, one failed reply. */
	ck_assert_uint_eq(json_array_size(msgs), 1);
	reply = json_array_get(msgs, 0);
	ck_assert_str_eq(str(reply, "role"), "assistant");
	ck_assert_str_eq(str(reply, "finished_reason"), "error");
	ck_assert_str_eq(str(json_object_get(reply, "error"), "type"), "invalid_request");
	json_decref(msgs);
}
END_TEST

START_TEST(as_write_modes_perform_the_write)
{
	char body[256];
	json_t *last;
	struct res r;

	snprintf(body, sizeof(body), "{\"agent_id\":\"%s\",\"name\":\"unknown-outcome\"}",
	         as_agent);
	clear_requests(as.port);
	set_mode(as.port, "mode=write-unknown");
	r = req("POST", as.port, "/sessions/", as_alice, body);
	expect(&r, 500);
	res_free(&r);
	/* Reads are untouched by the mode. */
	r = req("GET", as.port, "/agent/", as_alice, NULL);
	expect(&r, 200);
	res_free(&r);
	set_mode(as.port, "mode=write-drop");
	r = req("POST", as.port, "/sessions/", as_alice, body);
	ck_assert_int_eq(r.status, 0);
	res_free(&r);
	set_mode(as.port, "mode=ok");
	ck_assert_uint_eq(recorded(as.port, "POST", "/sessions/", &last), 2);
	ck_assert_str_eq(str(last, "body"), body);
	json_decref(last);
	/* Both creates happened. */
	{
		char path[128];
		json_t *v;
		size_t i, n = 0;

		r = req("GET", as.port,
		        pathf(path, sizeof(path), "/sessions/?agent_id=%s", as_agent), as_alice,
		        NULL);
		json_array_foreach(json_object_get(r.json, "sessions"), i, v) {
			n += strcmp(str(json_object_get(json_object_get(v, "session"), "config"),
			                "name"),
			            "unknown-outcome") == 0;
		}
		ck_assert_uint_eq(n, 2);
		res_free(&r);
	}
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* SandBase and Claude                                                                          */
/* ------------------------------------------------------------------------------------------ */

static const char *const sb_h[] = {SB_KEY, NULL};
static const char *const cl_h[] = {CL_KEY, CL_BETA, NULL};
static char sb_agent[64], cl_agent[64];

static struct res sb_send(const char *sid, const char *events)
{
	char path[128], body[2048];

	snprintf(body, sizeof(body), "{\"events\":%s}", events);
	return req("POST", sb.port, pathf(path, sizeof(path), "/v1/sessions/%s/events", sid), sb_h,
	           body);
}

static json_t *events_of(int port, const char *const *h, const char *sid)
{
	char path[128];
	struct res r =
	    req("GET", port, pathf(path, sizeof(path), "/v1/sessions/%s/events", sid), h, NULL);
	json_t *d;

	expect(&r, 200);
	d = json_incref(json_object_get(r.json, "data"));
	res_free(&r);
	return d;
}

static char *session_status(int port, const char *const *h, const char *sid)
{
	char path[128];
	struct res r = req("GET", port, pathf(path, sizeof(path), "/v1/sessions/%s", sid), h, NULL);
	char *s;

	expect(&r, 200);
	s = strdup(str(r.json, "status"));
	res_free(&r);
	return s;
}

static void check_status(int port, const char *const *h, const char *sid, const char *want)
{
	char *s = session_status(port, h, sid);

	ck_assert_msg(strcmp(s, want) == 0, "status %s, want %s", s, want);
	free(s);
}

static void wait_status(int port, const char *const *h, const char *sid, const char *want)
{
	for (int waited = 0;; waited += 20) {
		char *s = session_status(port, h, sid);
		bool ok = strcmp(s, want) == 0;

		if (ok || waited >= WAIT_MS)
			ck_assert_msg(ok, "status %s, want %s", s, want);
		free(s);
		if (ok)
			return;
		sleep_ms(20);
	}
}

/* The types of a history, space-separated (malloc'd). */
static char *types_of(json_t *events)
{
	char *out = calloc(1, 4096);
	json_t *e;
	size_t i;

	json_array_foreach(events, i, e) {
		if (i > 0)
			strcat(out, " ");
		strncat(out, str(e, "type"), 4096 - strlen(out) - 64);
	}
	return out;
}

static void sb_create(char out[64], const char *extra)
{
	char body[1024];
	struct res r;

	snprintf(body, sizeof(body), "{\"agent\":\"%s\"%s}", sb_agent, extra);
	r = req("POST", sb.port, "/v1/sessions", sb_h, body);
	expect(&r, 200);
	ck_assert_uint_eq(strncmp(str(r.json, "id"), "sess_", 5), 0);
	ck_assert_str_eq(str(r.json, "status"), "idle");
	ck_assert_str_eq(str(r.json, "agent_id"), sb_agent);
	ck_assert(json_is_integer(json_object_get(r.json, "agent_version")));
	ck_assert_ptr_nonnull(str(r.json, "environment_id"));
	snprintf(out, 64, "%s", str(r.json, "id"));
	res_free(&r);
}

START_TEST(sb_create_update_archive_delete)
{
	char sid[64], path[256], body[512];
	json_t *ev;
	struct res r;

	sb_create(sid, ",\"title\":\"Research\",\"metadata\":{\"team\":\"a\",\"ticket\":\"T-1\"}");
	/* Refusals of create. */
	r = req("POST", sb.port, "/v1/sessions", sb_h, "{\"agent\":\"agent_nope\"}");
	expect(&r, 404);
	ck_assert_str_eq(err_type(&r), "not_found");
	res_free(&r);
	snprintf(body, sizeof(body), "{\"agent\":\"%s\",\"vault_ids\":[]}", sb_agent);
	r = req("POST", sb.port, "/v1/sessions", sb_h, body);
	expect(&r, 400);
	ck_assert_str_eq(err_type(&r), "invalid_request");
	res_free(&r);
	snprintf(body, sizeof(body),
	         "{\"agent\":{\"type\":\"agent\",\"id\":\"%s\",\"version\":1},\"initial_events\":"
	         "[{\"type\":\"user.interrupt\"}]}",
	         sb_agent);
	r = req("POST", sb.port, "/v1/sessions", sb_h, body);
	expect(&r, 422);
	ck_assert_str_eq(err_type(&r), "unsupported_event_type");
	res_free(&r);

	/* Update: title, a metadata patch (null deletes), the agent's tools; vault_ids refused. */
	pathf(path, sizeof(path), "/v1/sessions/%s", sid);
	r = req("POST", sb.port, path, sb_h,
	        "{\"title\":\"Renamed\",\"metadata\":{\"ticket\":null,\"prio\":\"high\"},"
	        "\"agent\":{\"tools\":[]}}");
	expect(&r, 200);
	ck_assert_str_eq(str(r.json, "title"), "Renamed");
	ck_assert_str_eq(str(json_object_get(r.json, "metadata"), "team"), "a");
	ck_assert_str_eq(str(json_object_get(r.json, "metadata"), "prio"), "high");
	ck_assert_ptr_null(json_object_get(json_object_get(r.json, "metadata"), "ticket"));
	ck_assert_uint_eq(
	    json_array_size(json_object_get(json_object_get(r.json, "agent"), "tools")), 0);
	res_free(&r);
	r = req("POST", sb.port, path, sb_h, "{\"vault_ids\":[\"vlt_1\"]}");
	expect(&r, 400);
	res_free(&r);

	/* Archive: archived_at, listed only with include_archived, events refused (409). */
	r = req("POST", sb.port, pathf(path, sizeof(path), "/v1/sessions/%s/archive", sid), sb_h,
	        NULL);
	expect(&r, 200);
	ck_assert_ptr_nonnull(str(r.json, "archived_at"));
	res_free(&r);
	r = sb_send(
	    sid, "[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}]");
	expect(&r, 409);
	ck_assert_str_eq(err_type(&r), "session_archived");
	res_free(&r);
	ev = events_of(sb.port, sb_h, sid);
	ck_assert_uint_eq(json_array_size(ev), 0);
	json_decref(ev);

	/* Delete: {id, type: session_deleted}, then 404. */
	pathf(path, sizeof(path), "/v1/sessions/%s", sid);
	r = req("DELETE", sb.port, path, sb_h, NULL);
	expect(&r, 200);
	ck_assert_str_eq(str(r.json, "id"), sid);
	ck_assert_str_eq(str(r.json, "type"), "session_deleted");
	res_free(&r);
	r = req("GET", sb.port, path, sb_h, NULL);
	expect(&r, 404);
	res_free(&r);
}
END_TEST

START_TEST(sb_turn_runs_and_refuses_while_running)
{
	char sid[64], path[128], *types;
	json_t *d, *e, *ev;
	struct res r;
	size_t n;

	sb_create(sid, "");
	r = sb_send(sid, "[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":"
	                 "\"Where is my order?\"}]}]");
	expect(&r, 200);
	d = json_object_get(r.json, "data");
	ck_assert_uint_eq(json_array_size(d), 1);
	e = json_array_get(d, 0);
	/* SandBase's flat envelope. */
	ck_assert_uint_eq(strncmp(str(e, "id"), "sevt_", 5), 0);
	ck_assert_str_eq(str(e, "type"), "user.message");
	ck_assert(json_is_null(json_object_get(e, "stop_reason")));
	ck_assert(json_is_null(json_object_get(e, "model_used")));
	ck_assert_int_eq(json_integer_value(json_object_get(e, "tokens_in")), 0);
	ck_assert(json_is_null(json_object_get(e, "duration_ms")));
	ck_assert_ptr_nonnull(str(e, "processed_at"));
	ck_assert_ptr_nonnull(str(e, "created_at"));
	res_free(&r);
	check_status(sb.port, sb_h, sid, "running");
	r = sb_send(
	    sid,
	    "[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":\"more\"}]}]");
	expect(&r, 409);
	ck_assert_str_eq(err_type(&r), "conflict");
	res_free(&r);
	r = req("DELETE", sb.port, pathf(path, sizeof(path), "/v1/sessions/%s", sid), sb_h, NULL);
	expect(&r, 409);
	res_free(&r);
	wait_status(sb.port, sb_h, sid, "idle");
	ev = events_of(sb.port, sb_h, sid);
	types = types_of(ev);
	ck_assert_str_eq(types, "user.message session.status_running agent.message "
	                        "session.status_idle");
	free(types);
	n = json_array_size(ev);
	e = json_array_get(ev, 2);
	ck_assert_int_gt(json_integer_value(json_object_get(e, "tokens_in")), 0);
	ck_assert_ptr_nonnull(str(e, "model_used"));
	ck_assert_str_eq(str(json_object_get(json_array_get(ev, n - 1), "stop_reason"), "type"),
	                 "end_turn");
	json_decref(ev);
}
END_TEST

START_TEST(sb_rejected_batches_and_interrupt)
{
	char sid[64], *types;
	json_t *ev;
	struct res r;

	sb_create(sid, "");
	r = sb_send(sid, "[{\"type\":\"system.message\",\"content\":[{\"type\":\"text\",\"text\":"
	                 "\"x\"}]},{\"type\":\"user.tool_confirmation\",\"tool_use_id\":\"sevt_1\","
	                 "\"result\":\"allow\"}]");
	expect(&r, 422);
	ck_assert_str_eq(err_type(&r), "unsupported_event_type");
	res_free(&r);
	r = sb_send(sid, "[{\"type\":\"user.interrupt\",\"session_thread_id\":\"sthr_1\"}]");
	expect(&r, 422);
	ck_assert_str_eq(err_type(&r), "unsupported_multiagent");
	res_free(&r);
	r = sb_send(sid,
	            "[{\"type\":\"user.define_outcome\",\"description\":\"x\",\"rubric\":{}}]");
	expect(&r, 422);
	res_free(&r);
	r = sb_send(sid, "[]");
	expect(&r, 400);
	res_free(&r);
	/* Nothing of the rejected batches was kept. */
	ev = events_of(sb.port, sb_h, sid);
	ck_assert_uint_eq(json_array_size(ev), 0);
	json_decref(ev);
	/* A turn that runs until interrupted. */
	r = sb_send(sid, "[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":"
	                 "\"go [run:long]\"}]}]");
	expect(&r, 200);
	res_free(&r);
	sleep_ms(3 * atoi(RUN_MS));
	check_status(sb.port, sb_h, sid, "running");
	r = sb_send(sid, "[{\"type\":\"user.interrupt\"}]");
	expect(&r, 200);
	ck_assert(json_is_null(
	    json_object_get(json_array_get(json_object_get(r.json, "data"), 0), "content")));
	res_free(&r);
	check_status(sb.port, sb_h, sid, "idle");
	ev = events_of(sb.port, sb_h, sid);
	types = types_of(ev);
	ck_assert_str_eq(types, "user.message session.status_running user.interrupt "
	                        "session.status_idle");
	ck_assert_str_eq(str(json_object_get(json_array_get(ev, 3), "stop_reason"), "type"),
	                 "user_interrupt");
	free(types);
	json_decref(ev);
	/* A custom tool use parks the turn; SandBase's answer to it is the next message. */
	r = sb_send(sid, "[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":"
	                 "\"ticket [tool:custom]\"}]}]");
	expect(&r, 200);
	res_free(&r);
	wait_status(sb.port, sb_h, sid, "idle");
	ev = events_of(sb.port, sb_h, sid);
	ck_assert_str_eq(str(json_array_get(ev, json_array_size(ev) - 2), "type"),
	                 "agent.custom_tool_use");
	ck_assert_str_eq(
	    str(json_object_get(json_array_get(ev, json_array_size(ev) - 1), "stop_reason"),
	        "type"),
	    "requires_action");
	json_decref(ev);
}
END_TEST

START_TEST(sb_tool_turn)
{
	char sid[64], *types;
	json_t *ev, *use, *res;
	struct res r;

	sb_create(sid, "");
	r = sb_send(sid, "[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":"
	                 "\"notes [tool:auto]\"}]}]");
	expect(&r, 200);
	res_free(&r);
	wait_status(sb.port, sb_h, sid, "idle");
	ev = events_of(sb.port, sb_h, sid);
	types = types_of(ev);
	ck_assert_str_eq(types, "user.message session.status_running agent.message agent.tool_use "
	                        "agent.tool_result agent.message session.status_idle");
	free(types);
	/* SandBase nests the tool use's name and input in content. */
	use = json_array_get(ev, 3);
	ck_assert_str_eq(str(json_object_get(use, "content"), "name"), "read");
	ck_assert(json_is_object(json_object_get(json_object_get(use, "content"), "input")));
	res = json_array_get(ev, 4);
	ck_assert_str_eq(str(res, "tool_use_id"), str(use, "id"));
	json_decref(ev);
}
END_TEST

START_TEST(sb_outcome_unknown_modes)
{
	char sid[64];
	json_t *ev, *last;
	struct res r;

	sb_create(sid, "");
	clear_requests(sb.port);
	set_mode(sb.port, "mode=write-unknown");
	r = sb_send(sid, "[{\"type\":\"system.message\",\"content\":[{\"type\":\"text\",\"text\":"
	                 "\"policy\"}]}]");
	expect(&r, 502);
	ck_assert_str_eq(err_type(&r), "delivery_outcome_unknown");
	ck_assert_str_eq(str(r.json, "session_id"), sid);
	ck_assert_str_eq(str(json_object_get(r.json, "recovery"), "action"),
	                 "get_session_and_list_events");
	ck_assert(
	    json_is_false(json_object_get(json_object_get(r.json, "recovery"), "retry_create")));
	res_free(&r);
	/* A refused write is not turned into an unknown outcome. */
	r = sb_send(sid, "[{\"type\":\"bogus\"}]");
	expect(&r, 400);
	res_free(&r);
	set_mode(sb.port, "mode=write-drop");
	r = sb_send(sid, "[{\"type\":\"system.message\",\"content\":[{\"type\":\"text\",\"text\":"
	                 "\"again\"}]}]");
	ck_assert_int_eq(r.status, 0);
	res_free(&r);
	set_mode(sb.port, "mode=ok");
	ev = events_of(sb.port, sb_h, sid);
	ck_assert_uint_eq(json_array_size(ev), 2); /* both were stored */
	json_decref(ev);
	ck_assert_uint_eq(recorded(sb.port, "POST", "/v1/sessions/", &last), 3);
	ck_assert_str_eq(
	    str(json_array_get(json_object_get(json_object_get(last, "json"), "events"), 0),
	        "type"),
	    "system.message");
	json_decref(last);
}
END_TEST

START_TEST(sb_agents_pages)
{
	char path[512], page[256] = "";
	json_t *seen = json_object(), *a;
	struct res r;
	size_t i, pages = 0;

	for (;;) {
		r = req("GET", sb.port,
		        pathf(path, sizeof(path), "/v1/agents?limit=1%s%s", *page ? "&page=" : "",
		              page),
		        sb_h, NULL);
		expect(&r, 200);
		ck_assert(json_object_get(r.json, "next_page") != NULL);
		json_array_foreach(json_object_get(r.json, "data"), i, a) {
			ck_assert_ptr_null(json_object_get(seen, str(a, "id")));
			json_object_set_new(seen, str(a, "id"), json_true());
		}
		pages++;
		if (json_is_null(json_object_get(r.json, "next_page"))) {
			res_free(&r);
			break;
		}
		snprintf(page, sizeof(page), "%s", str(r.json, "next_page"));
		res_free(&r);
		ck_assert_uint_lt(pages, 50);
	}
	ck_assert_uint_eq(json_object_size(seen), 2);
	ck_assert_uint_eq(pages, 2);
	r = req("GET", sb.port, pathf(path, sizeof(path), "/v1/agents/%s?version=1", sb_agent),
	        sb_h, NULL);
	expect(&r, 200);
	ck_assert_int_eq(json_integer_value(json_object_get(r.json, "version")), 1);
	res_free(&r);
	json_decref(seen);
}
END_TEST

static struct res cl_send(const char *sid, const char *events)
{
	char path[128], body[2048];

	snprintf(body, sizeof(body), "{\"events\":%s}", events);
	return req("POST", cl.port, pathf(path, sizeof(path), "/v1/sessions/%s/events", sid), cl_h,
	           body);
}

/* The id of the tool use a requires_action idle waits on. */
static char *cl_waiting_on(const char *sid)
{
	json_t *ev = events_of(cl.port, cl_h, sid),
	       *idle = json_array_get(ev, json_array_size(ev) - 1);
	json_t *stop = json_object_get(idle, "stop_reason");
	char *id;

	ck_assert_str_eq(str(idle, "type"), "session.status_idle");
	ck_assert_str_eq(str(stop, "type"), "requires_action");
	id = strdup(json_string_value(json_array_get(json_object_get(stop, "event_ids"), 0)));
	json_decref(ev);
	return id;
}

START_TEST(cl_confirmations_and_queue)
{
	char sid[64], body[512], events[512], *tu, *types;
	json_t *ev;
	struct res r;

	snprintf(body, sizeof(body), "{\"agent\":\"%s\"}", cl_agent);
	r = req("POST", cl.port, "/v1/sessions", cl_h, body);
	expect(&r, 400);
	ck_assert_str_eq(err_type(&r), "invalid_request_error");
	ck_assert_ptr_nonnull(str(r.json, "request_id"));
	res_free(&r);
	snprintf(
	    body, sizeof(body),
	    "{\"agent\":\"%s\",\"environment_id\":\"env_1\",\"initial_events\":[{\"type\":"
	    "\"user.message\",\"content\":[{\"type\":\"text\",\"text\":\"push [tool:ask]\"}]}]}",
	    cl_agent);
	r = req("POST", cl.port, "/v1/sessions", cl_h, body);
	expect(&r, 200);
	ck_assert_uint_eq(strncmp(str(r.json, "id"), "sesn_", 5), 0);
	snprintf(sid, sizeof(sid), "%s", str(r.json, "id"));
	res_free(&r);
	wait_status(cl.port, cl_h, sid, "idle");
	tu = cl_waiting_on(sid);
	/* An answer of the wrong kind is refused. */
	snprintf(events, sizeof(events),
	         "[{\"type\":\"user.custom_tool_result\",\"custom_tool_use_id\":\"%s\"}]", tu);
	r = cl_send(sid, events);
	expect(&r, 400);
	res_free(&r);
	snprintf(
	    events, sizeof(events),
	    "[{\"type\":\"user.tool_confirmation\",\"tool_use_id\":\"%s\",\"result\":\"allow\"}]",
	    tu);
	r = cl_send(sid, events);
	expect(&r, 200);
	ck_assert_str_eq(str(json_array_get(json_object_get(r.json, "data"), 0), "tool_use_id"),
	                 tu);
	res_free(&r);
	/* A message while the turn runs is queued (processed_at null), then taken. */
	r = cl_send(sid, "[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":"
	                 "\"and then?\"}]}]");
	expect(&r, 200);
	ck_assert(json_is_null(
	    json_object_get(json_array_get(json_object_get(r.json, "data"), 0), "processed_at")));
	res_free(&r);
	sleep_ms(atoi(RUN_MS));
	wait_status(cl.port, cl_h, sid, "idle");
	ev = events_of(cl.port, cl_h, sid);
	types = types_of(ev);
	/* The queued message sits where it arrived; its turn follows the confirmed one. */
	ck_assert_msg(strstr(types, "user.tool_confirmation session.status_running user.message "
	                            "agent.tool_result span.model_request_start agent.message "
	                            "span.model_request_end session.status_idle "
	                            "session.status_running span.model_request_start") != NULL,
	              "%s", types);
	{
		json_t *e;
		size_t i;

		json_array_foreach(ev, i, e) {
			ck_assert_msg(!json_is_null(json_object_get(e, "processed_at")),
			              "%s still queued", str(e, "type"));
		}
	}
	ck_assert_str_eq(
	    str(json_object_get(json_array_get(ev, json_array_size(ev) - 1), "stop_reason"),
	        "type"),
	    "end_turn");
	free(types);
	free(tu);
	json_decref(ev);
	/* The session's usage follows the model calls. */
	r = req("GET", cl.port, pathf(body, sizeof(body), "/v1/sessions/%s", sid), cl_h, NULL);
	expect(&r, 200);
	ck_assert_int_gt(
	    json_integer_value(json_object_get(json_object_get(r.json, "usage"), "input_tokens")),
	    0);
	res_free(&r);
}
END_TEST

START_TEST(cl_failed_turn)
{
	char sid[64], body[512], *types;
	json_t *ev, *err;
	struct res r;

	snprintf(
	    body, sizeof(body),
	    "{\"agent\":\"%s\",\"environment_id\":\"env_1\",\"initial_events\":[{\"type\":"
	    "\"user.message\",\"content\":[{\"type\":\"text\",\"text\":\"x [reply:error]\"}]}]}",
	    cl_agent);
	r = req("POST", cl.port, "/v1/sessions", cl_h, body);
	expect(&r, 200);
	snprintf(sid, sizeof(sid), "%s", str(r.json, "id"));
	res_free(&r);
	wait_status(cl.port, cl_h, sid, "idle");
	ev = events_of(cl.port, cl_h, sid);
	types = types_of(ev);
	ck_assert_str_eq(types, "user.message session.status_running span.model_request_start "
	                        "span.model_request_end session.error session.status_idle");
	free(types);
	ck_assert(json_is_true(json_object_get(json_array_get(ev, 3), "is_error")));
	err = json_object_get(json_array_get(ev, 4), "error");
	ck_assert_str_eq(str(err, "type"), "model_overloaded_error");
	ck_assert_str_eq(str(json_object_get(err, "retry_status"), "type"), "exhausted");
	ck_assert_str_eq(str(json_object_get(json_array_get(ev, 5), "stop_reason"), "type"),
	                 "retries_exhausted");
	json_decref(ev);
}
END_TEST

START_TEST(cl_custom_tool_result_update_delete)
{
	char sid[64], body[512], events[512], path[128], *tu;
	struct res r;

	snprintf(body, sizeof(body),
	         "{\"agent\":{\"type\":\"agent\",\"id\":\"%s\"},\"environment_id\":\"env_1\","
	         "\"metadata\":{\"a\":\"1\"}}",
	         cl_agent);
	r = req("POST", cl.port, "/v1/sessions", cl_h, body);
	expect(&r, 200);
	snprintf(sid, sizeof(sid), "%s", str(r.json, "id"));
	ck_assert(json_is_object(json_object_get(r.json, "usage")));
	ck_assert(json_is_object(json_object_get(r.json, "stats")));
	res_free(&r);
	r = cl_send(sid, "[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":"
	                 "\"ticket [tool:custom]\"}]}]");
	expect(&r, 200);
	res_free(&r);
	wait_status(cl.port, cl_h, sid, "idle");
	tu = cl_waiting_on(sid);
	snprintf(events, sizeof(events),
	         "[{\"type\":\"user.custom_tool_result\",\"custom_tool_use_id\":\"%s\",\"content\":"
	         "[{\"type\":\"text\",\"text\":\"HELP-1\"}]}]",
	         tu);
	free(tu);
	r = cl_send(sid, events);
	expect(&r, 200);
	res_free(&r);
	pathf(path, sizeof(path), "/v1/sessions/%s", sid);
	r = req("DELETE", cl.port, path, cl_h, NULL);
	expect(&r, 409);
	ck_assert_str_eq(err_type(&r), "conflict_error");
	res_free(&r);
	wait_status(cl.port, cl_h, sid, "idle");
	r = req("POST", cl.port, path, cl_h,
	        "{\"title\":\"t\",\"metadata\":{\"a\":null,\"b\":\"2\"}}");
	expect(&r, 200);
	ck_assert_str_eq(str(r.json, "title"), "t");
	ck_assert_ptr_null(json_object_get(json_object_get(r.json, "metadata"), "a"));
	res_free(&r);
	r = req("DELETE", cl.port, path, cl_h, NULL);
	expect(&r, 200);
	ck_assert_str_eq(str(r.json, "type"), "session_deleted");
	res_free(&r);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Live streams: a raw client on a plain socket, so the test sees exactly what was sent        */
/* ------------------------------------------------------------------------------------------ */

#define HEARTBEAT_MS "150"
#define BEAT "--stream-heartbeat-ms", HEARTBEAT_MS

/* One open stream as the client sees it. */
struct sse {
	int fd;
	int status;
	char head[4096]; /* the response head, NUL-terminated */
	char *raw;       /* what followed the head, still chunked */
	size_t rawlen, rawpos;
	char *body;          /* de-chunked */
	size_t bodylen, pos; /* the next frame starts at pos */
	bool eof;            /* the connection ended */
	bool ended;          /* the terminating chunk arrived before that */
};

/* One SSE message (the lines up to a blank line). */
struct frame {
	bool comment;   /* only comment lines */
	bool has_id;    /* an id: line */
	char event[64]; /* the event field; "" when none */
	char *text;     /* the frame as sent, without its blank line (malloc'd) */
	json_t *data;   /* the data field parsed; NULL when none (or not JSON) */
};

static void frame_free(struct frame *f)
{
	free(f->text);
	json_decref(f->data);
	memset(f, 0, sizeof(*f));
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sse_append(char **buf, size_t *len, const char *p, size_t n)
{
	char *grown = realloc(*buf, *len + n + 1);

	ck_assert_ptr_nonnull(grown);
	memcpy(grown + *len, p, n);
	*len += n;
	grown[*len] = '\0';
	*buf = grown;
}

/* Moves whole chunks from raw to body; the zero chunk marks the end. */
static void sse_dechunk(struct sse *c)
{
	while (!c->ended) {
		char *p = c->raw + c->rawpos, *crlf;
		size_t avail = c->rawlen - c->rawpos, size;

		crlf = avail > 0 ? memmem(p, avail, "\r\n", 2) : NULL;
		if (crlf == NULL)
			return;
		size = strtoul(p, NULL, 16);
		if ((size_t)(crlf - p) + 2 + size + 2 > avail)
			return;
		sse_append(&c->body, &c->bodylen, crlf + 2, size);
		c->rawpos += (size_t)(crlf - p) + 2 + size + 2;
		if (size == 0)
			c->ended = true;
	}
}

/* Waits up to ms for more bytes. Returns false on a timeout or at the end of the connection. */
static bool sse_read(struct sse *c, long ms)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	char buf[16384];
	ssize_t n;

	if (c->eof || poll(&pfd, 1, (int)(ms > 0 ? ms : 0)) <= 0)
		return false;
	n = read(c->fd, buf, sizeof(buf));
	if (n <= 0) {
		c->eof = true;
		return false;
	}
	sse_append(&c->raw, &c->rawlen, buf, (size_t)n);
	return true;
}

/* GET path as a stream; returns the status (the head is in c->head). headers: NULL-terminated
 * "Name: value" lines, may be NULL. */
static int sse_open(struct sse *c, int port, const char *path, const char *const *headers)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	char rq[4096];
	size_t n;
	long deadline = now_ms() + WAIT_MS;
	char *end = NULL;

	memset(c, 0, sizeof(*c));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(c->fd, 0);
	ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	n = (size_t)snprintf(rq, sizeof(rq), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", path);
	for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
		n += (size_t)snprintf(rq + n, sizeof(rq) - n, "%s\r\n", headers[i]);
	n += (size_t)snprintf(rq + n, sizeof(rq) - n, "\r\n");
	ck_assert_int_eq(write(c->fd, rq, n), (ssize_t)n);
	while ((end = c->raw != NULL ? strstr(c->raw, "\r\n\r\n") : NULL) == NULL) {
		ck_assert_msg(sse_read(c, deadline - now_ms()), "no answer to GET %s", path);
	}
	ck_assert_uint_lt((size_t)(end - c->raw), sizeof(c->head));
	memcpy(c->head, c->raw, (size_t)(end - c->raw));
	c->head[end - c->raw] = '\0';
	c->rawpos = (size_t)(end - c->raw) + 4;
	c->status = atoi(c->head + 9);
	if (c->status == 200)
		sse_dechunk(c);
	return c->status;
}

static void sse_close(struct sse *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->raw);
	free(c->body);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Is this header (name: value, value compared whole) in the head? */
static bool sse_has_header(const struct sse *c, const char *name, const char *value)
{
	char want[256];

	snprintf(want, sizeof(want), "\r\n%s: %s\r\n", name, value);
	return strcasestr(c->head, want) != NULL;
}

/* The next frame, waiting up to ms. false on a timeout or at the end of the stream. */
static bool sse_frame(struct sse *c, long ms, struct frame *f)
{
	long deadline = now_ms() + ms;

	memset(f, 0, sizeof(*f));
	for (;;) {
		char *start = c->body != NULL ? c->body + c->pos : NULL;
		char *end = start != NULL ? strstr(start, "\n\n") : NULL;

		if (end != NULL) {
			char *line, *save = NULL;
			bool fields = false;

			f->text = strndup(start, (size_t)(end - start));
			c->pos += (size_t)(end - start) + 2;
			for (char *t = strdup(f->text), *cur = t; cur != NULL; cur = NULL) {
				for (line = strtok_r(cur, "\n", &save); line != NULL;
				     line = strtok_r(NULL, "\n", &save)) {
					if (strncmp(line, "event: ", 7) == 0) {
						snprintf(f->event, sizeof(f->event), "%s",
						         line + 7);
						fields = true;
					} else if (strncmp(line, "data: ", 6) == 0) {
						json_decref(f->data);
						f->data = json_loads(line + 6, 0, NULL);
						fields = true;
					} else if (strncmp(line, "id:", 3) == 0) {
						f->has_id = true;
						fields = true;
					}
				}
				free(t);
			}
			f->comment = !fields;
			return true;
		}
		if (c->ended || c->eof)
			return false;
		if (!sse_read(c, deadline - now_ms()))
			return false;
		sse_dechunk(c);
	}
}

/* The frames' data up to and including the first of this type (comments and Claude's pings are
 * left out), within WAIT_MS. New reference. When plain, every frame must be exactly one data
 * line (AgentScope's and SandBase's framing). */
static json_t *sse_until(struct sse *c, const char *type, bool plain)
{
	json_t *all = json_array();
	long deadline = now_ms() + WAIT_MS;
	struct frame f;

	for (;;) {
		const char *t;

		ck_assert_msg(sse_frame(c, deadline - now_ms(), &f), "no %s on the stream", type);
		if (f.comment || strcmp(f.event, "ping") == 0) {
			frame_free(&f);
			continue;
		}
		ck_assert_msg(f.data != NULL, "a frame without JSON data: %s", f.text);
		if (plain)
			ck_assert_msg(strncmp(f.text, "data: ", 6) == 0 &&
			                  strchr(f.text, '\n') == NULL,
			              "not one data line: %s", f.text);
		t = str(f.data, "type");
		ck_assert_ptr_nonnull(t);
		json_array_append(all, f.data);
		if (strcmp(t, type) == 0) {
			frame_free(&f);
			return all;
		}
		frame_free(&f);
	}
}

/* The next frame is a comment (a heartbeat) arriving within ms; its text is returned
 * (malloc'd). Fails on any event frame before it. */
static char *sse_heartbeat(struct sse *c, long ms)
{
	struct frame f;
	char *text;

	ck_assert_msg(sse_frame(c, ms, &f), "no heartbeat within %ld ms", ms);
	ck_assert_msg(f.comment || strcmp(f.event, "ping") == 0,
	              "an event before the heartbeat: %s", f.text);
	text = f.text;
	f.text = NULL;
	frame_free(&f);
	return text;
}

/* Reads until the connection ends (within WAIT_MS); returns whether it ended cleanly. */
static bool sse_wait_end(struct sse *c)
{
	long deadline = now_ms() + WAIT_MS;

	while (!c->eof && !c->ended) {
		ck_assert_msg(now_ms() < deadline, "the stream did not end");
		sse_read(c, deadline - now_ms());
		sse_dechunk(c);
	}
	return c->ended;
}

static long long mode_num(int port, const char *key)
{
	struct res r = req("GET", port, "/__fake/mode", NULL, NULL);
	long long v;

	expect(&r, 200);
	ck_assert_msg(json_is_integer(json_object_get(r.json, key)), "no %s in %s", key, r.body);
	v = json_integer_value(json_object_get(r.json, key));
	res_free(&r);
	return v;
}

/* Polls GET /__fake/mode until streams_open reads n. */
static void wait_streams(int port, long long n)
{
	for (int waited = 0;; waited += 20) {
		long long open = mode_num(port, "streams_open");

		if (open == n)
			return;
		ck_assert_msg(waited < WAIT_MS, "streams_open %lld, want %lld", open, n);
		sleep_ms(20);
	}
}

/* The types of frames (data objects), space-separated, runs of one *_DELTA type written once
 * with a "+" (malloc'd). */
static char *frame_types(json_t *frames)
{
	char *out = calloc(1, 8192), prev[64] = "";
	json_t *f;
	size_t i;

	json_array_foreach(frames, i, f) {
		const char *t = str(f, "type");

		if (strstr(t, "_DELTA") != NULL && strcmp(t, prev) == 0)
			continue;
		if (*out != '\0')
			strcat(out, " ");
		strncat(out, t, 8192 - strlen(out) - 80);
		if (strstr(t, "_DELTA") != NULL)
			strcat(out, "+");
		snprintf(prev, sizeof(prev), "%s", t);
	}
	return out;
}

/* The frames of this type with member key equal to value (a new array). */
static json_t *frames_of(json_t *frames, const char *type, const char *key, const char *value)
{
	json_t *out = json_array(), *f;
	size_t i;

	json_array_foreach(frames, i, f) {
		if (strcmp(str(f, "type"), type) == 0 &&
		    (key == NULL || (str(f, key) != NULL && strcmp(str(f, key), value) == 0)))
			json_array_append(out, f);
	}
	return out;
}

/* The deltas of one block (or tool call) joined (malloc'd). */
static char *deltas(json_t *frames, const char *type, const char *key, const char *id)
{
	json_t *d = frames_of(frames, type, key, id), *f;
	char *out = calloc(1, 8192);
	size_t i;

	json_array_foreach(d, i, f) {
		strncat(out, str(f, "delta"), 8192 - strlen(out) - 1);
	}
	json_decref(d);
	return out;
}

/* A naive "YYYY-MM-DDTHH:MM:SS[.ffffff]" as seconds (zone-free, for comparisons), -1 when it
 * is not one. */
static long long naive_secs(const char *s)
{
	struct tm tm = {0};
	const char *rest;
	size_t n;

	if (s == NULL || (rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*rest == '.') {
		n = strspn(rest + 1, "0123456789");
		if (n != 6 || rest[7] != '\0')
			return -1;
	} else if (*rest != '\0') {
		return -1;
	}
	return (long long)timegm(&tm);
}

/* AgentScope's envelope on every frame: a fresh 32-hex id, a naive local created_at close to
 * `near` (a naive timestamp of the same clock), metadata, an UPPERCASE type. */
static void check_envelopes(json_t *frames, const char *near, json_t *seen_ids)
{
	long long t0 = naive_secs(near);
	json_t *f;
	size_t i;

	ck_assert_int_ge(t0, 0);
	json_array_foreach(frames, i, f) {
		const char *id = str(f, "id"), *type = str(f, "type");
		long long t = naive_secs(str(f, "created_at"));
		void *it = json_object_iter(f);

		ck_assert_ptr_nonnull(id);
		ck_assert_uint_eq(strlen(id), 32);
		ck_assert_uint_eq(strspn(id, "0123456789abcdef"), 32);
		ck_assert_msg(json_object_get(seen_ids, id) == NULL, "event id %s twice", id);
		json_object_set_new(seen_ids, id, json_true());
		ck_assert_msg(t >= 0 && llabs(t - t0) <= 60, "created_at %s vs %s",
		              str(f, "created_at"), near);
		ck_assert(json_is_object(json_object_get(f, "metadata")));
		for (const char *p = type; *p != '\0'; p++)
			ck_assert_msg((*p >= 'A' && *p <= 'Z') || *p == '_', "type %s", type);
		/* EventBase's members come first. */
		ck_assert_str_eq(json_object_iter_key(it), "id");
		it = json_object_iter_next(f, it);
		ck_assert_str_eq(json_object_iter_key(it), "created_at");
		it = json_object_iter_next(f, it);
		ck_assert_str_eq(json_object_iter_key(it), "metadata");
		it = json_object_iter_next(f, it);
		ck_assert_str_eq(json_object_iter_key(it), "type");
	}
}

/* Sum of the MODEL_CALL_END tokens of a reply. */
static void frame_tokens(json_t *frames, const char *reply_id, json_int_t *in, json_int_t *out)
{
	json_t *ends = frames_of(frames, "MODEL_CALL_END", "reply_id", reply_id), *f;
	size_t i;

	*in = *out = 0;
	json_array_foreach(ends, i, f) {
		*in += json_integer_value(json_object_get(f, "input_tokens"));
		*out += json_integer_value(json_object_get(f, "output_tokens"));
		ck_assert_int_eq(json_integer_value(json_object_get(f, "cache_input_tokens")), 0);
		ck_assert_int_eq(
		    json_integer_value(json_object_get(f, "cache_creation_input_tokens")), 0);
	}
	json_decref(ends);
}

/* The reply's usage equals its MODEL_CALL_END tokens. */
static void check_usage(json_t *frames, json_t *reply)
{
	json_t *u = json_object_get(reply, "usage");
	json_int_t in, out;

	frame_tokens(frames, str(reply, "id"), &in, &out);
	ck_assert_int_gt(in, 0);
	ck_assert_int_eq(in, json_integer_value(json_object_get(u, "input_tokens")));
	ck_assert_int_eq(out, json_integer_value(json_object_get(u, "output_tokens")));
}

static int as_stream(struct sse *c, const char *sid, const char *const *who)
{
	char path[256];

	return sse_open(c, as.port,
	                pathf(path, sizeof(path), "/sessions/%s/stream?agent_id=%s", sid, as_agent),
	                who);
}

/* The content blocks of msg of this type, in order (a new array). */
static json_t *blocks(json_t *msg, const char *type)
{
	json_t *out = json_array(), *b;
	size_t i;

	json_array_foreach(json_object_get(msg, "content"), i, b) {
		if (strcmp(str(b, "type"), type) == 0)
			json_array_append(out, b);
	}
	return out;
}

/* Every text block of the reply was streamed under its id, with its text; every tool call
 * under its id, with its input. */
static void check_blocks(json_t *frames, json_t *reply)
{
	json_t *texts = blocks(reply, "text"), *calls = blocks(reply, "tool_call"), *b;
	json_t *starts = frames_of(frames, "TEXT_BLOCK_START", "reply_id", str(reply, "id"));
	size_t i;

	ck_assert_uint_eq(json_array_size(starts), json_array_size(texts));
	json_array_foreach(texts, i, b) {
		const char *bid = str(b, "id");
		json_t *d = frames_of(frames, "TEXT_BLOCK_DELTA", "block_id", bid);
		char *joined = deltas(frames, "TEXT_BLOCK_DELTA", "block_id", bid);
		json_t *end = frames_of(frames, "TEXT_BLOCK_END", "block_id", bid);

		ck_assert_str_eq(str(json_array_get(starts, i), "block_id"), bid);
		ck_assert_uint_ge(json_array_size(d), 2);
		ck_assert_str_eq(joined, str(b, "text"));
		ck_assert_uint_eq(json_array_size(end), 1);
		free(joined);
		json_decref(d);
		json_decref(end);
	}
	json_array_foreach(calls, i, b) {
		const char *cid = str(b, "id");
		json_t *st = frames_of(frames, "TOOL_CALL_START", "tool_call_id", cid);
		char *joined = deltas(frames, "TOOL_CALL_DELTA", "tool_call_id", cid);

		ck_assert_uint_eq(json_array_size(st), 1);
		ck_assert_str_eq(str(json_array_get(st, 0), "tool_call_name"), str(b, "name"));
		ck_assert_str_eq(joined, str(b, "input"));
		free(joined);
		json_decref(st);
	}
	json_decref(starts);
	json_decref(texts);
	json_decref(calls);
}

START_TEST(as_stream_frames_are_the_reply)
{
	char sid[64];
	json_t *frames, *msgs, *reply, *f, *ids = json_object(), *res, *ends;
	struct sse c;
	char *types;
	size_t i;

	as_create(sid, false);
	ck_assert_int_eq(as_stream(&c, sid, as_alice), 200);
	ck_assert(sse_has_header(&c, "Content-Type", "text/event-stream; charset=utf-8"));
	ck_assert(sse_has_header(&c, "Cache-Control", "no-cache"));
	ck_assert(sse_has_header(&c, "X-Accel-Buffering", "no"));
	ck_assert(sse_has_header(&c, "Transfer-Encoding", "chunked"));
	as_say(sid, "m1", "Read the notes [tool:auto]");
	frames = sse_until(&c, "REPLY_END", true);
	types = frame_types(frames);
	ck_assert_str_eq(types,
	                 "REPLY_START MODEL_CALL_START TEXT_BLOCK_START TEXT_BLOCK_DELTA+ "
	                 "TEXT_BLOCK_END TOOL_CALL_START TOOL_CALL_DELTA+ TOOL_CALL_END "
	                 "MODEL_CALL_END TOOL_RESULT_START TOOL_RESULT_TEXT_DELTA+ TOOL_RESULT_END "
	                 "MODEL_CALL_START TEXT_BLOCK_START TEXT_BLOCK_DELTA+ TEXT_BLOCK_END "
	                 "MODEL_CALL_END REPLY_END");
	free(types);
	as_wait(sid, "idle");
	msgs = as_messages(sid);
	reply = json_array_get(msgs, 1);
	check_envelopes(frames, str(reply, "created_at"), ids);
	f = json_array_get(frames, 0);
	ck_assert_str_eq(str(f, "session_id"), sid);
	ck_assert_str_eq(str(f, "reply_id"), str(reply, "id"));
	ck_assert_str_eq(str(f, "name"), str(reply, "name"));
	ck_assert_str_eq(str(f, "role"), "assistant");
	ck_assert_str_eq(str(json_array_get(frames, 1), "model_name"), "claude");
	json_array_foreach(frames, i, f) {
		ck_assert_str_eq(str(f, "reply_id"), str(reply, "id"));
	}
	check_blocks(frames, reply);
	check_usage(frames, reply);
	res = block(reply, "tool_result");
	ends = frames_of(frames, "TOOL_RESULT_END", NULL, NULL);
	f = json_array_get(ends, 0);
	ck_assert_str_eq(str(f, "tool_call_id"), str(res, "id"));
	ck_assert_str_eq(str(f, "state"), "success");
	ck_assert(json_equal(json_object_get(f, "metadata"), json_object_get(res, "metadata")));
	json_decref(ends);
	f = json_array_get(frames, json_array_size(frames) - 1);
	ck_assert_str_eq(str(f, "finished_reason"), "completed");
	ck_assert(json_is_null(json_object_get(f, "error")));
	ck_assert_str_eq(str(f, "session_id"), sid);
	json_decref(msgs);
	json_decref(frames);
	json_decref(ids);
	sse_close(&c);
}
END_TEST

START_TEST(as_stream_replays_the_run_in_progress)
{
	char sid[64], path[256], *hb;
	json_t *a, *b, *msgs, *reply, *f, *ids = json_object();
	struct sse c1, c2, c3;
	struct frame fr;
	struct res r;

	as_create(sid, false);
	as_say(sid, "m1", "Think hard [run:long]");
	as_check_status(sid, "running");
	/* Two subscribers mid-run: each is replayed the run so far. */
	ck_assert_int_eq(as_stream(&c1, sid, as_alice), 200);
	ck_assert_int_eq(as_stream(&c2, sid, as_alice), 200);
	wait_streams(as.port, 2);
	a = sse_until(&c1, "MODEL_CALL_START", true);
	b = sse_until(&c2, "MODEL_CALL_START", true);
	ck_assert_uint_eq(json_array_size(a), 2);
	ck_assert(json_equal(a, b)); /* the same events, ids and all */
	ck_assert_str_eq(str(json_array_get(a, 0), "type"), "REPLY_START");
	json_decref(b);
	r = req("POST", as.port,
	        pathf(path, sizeof(path), "/sessions/%s/interrupt?agent_id=%s", sid, as_agent),
	        as_alice, NULL);
	expect(&r, 202);
	res_free(&r);
	/* Cancelled mid-stream: the partial text, the interrupted model call, the end. */
	b = sse_until(&c1, "REPLY_END", true);
	hb = frame_types(b);
	ck_assert_str_eq(hb, "TEXT_BLOCK_START TEXT_BLOCK_DELTA+ TEXT_BLOCK_END MODEL_CALL_END "
	                     "REPLY_END");
	free(hb);
	json_array_extend(a, b);
	json_decref(b);
	b = sse_until(&c2, "REPLY_END", true);
	json_decref(b);
	as_wait(sid, "idle");
	msgs = as_messages(sid);
	reply = json_array_get(msgs, 1);
	check_envelopes(a, str(reply, "created_at"), ids);
	ck_assert_str_eq(str(json_array_get(a, 0), "reply_id"), str(reply, "id"));
	check_blocks(a, reply);
	check_usage(a, reply);
	f = json_array_get(a, json_array_size(a) - 2);
	ck_assert_str_eq(str(f, "type"), "MODEL_CALL_END");
	ck_assert_str_eq(str(f, "finished_reason"), "interrupted");
	f = json_array_get(a, json_array_size(a) - 1);
	ck_assert_str_eq(str(f, "finished_reason"), "interrupted");
	ck_assert_str_eq(str(reply, "finished_reason"), "interrupted");
	/* The run has persisted: its log is trimmed, a new subscriber gets nothing old. */
	ck_assert_int_eq(as_stream(&c3, sid, as_alice), 200);
	hb = sse_heartbeat(&c3, 3 * atoi(HEARTBEAT_MS) + 1000);
	ck_assert_str_eq(hb, ":");
	free(hb);
	/* The old streams stay open across runs and see the next one. */
	as_say(sid, "m2", "And now?");
	b = sse_until(&c1, "REPLY_END", true);
	ck_assert_str_eq(str(json_array_get(b, 0), "type"), "REPLY_START");
	ck_assert_str_ne(str(json_array_get(b, 0), "reply_id"), str(reply, "id"));
	json_decref(b);
	b = sse_until(&c3, "REPLY_END", true);
	ck_assert_str_eq(str(json_array_get(b, 0), "type"), "REPLY_START");
	json_decref(b);
	/* Nothing else is pending on the first stream: the next frame is a heartbeat. */
	ck_assert(sse_frame(&c1, 3 * atoi(HEARTBEAT_MS) + 1000, &fr));
	ck_assert_msg(fr.comment, "unexpected frame %s", fr.text);
	frame_free(&fr);
	json_decref(msgs);
	json_decref(a);
	json_decref(ids);
	sse_close(&c1);
	sse_close(&c2);
	sse_close(&c3);
}
END_TEST

/* The input JSON of a HITL result resolving the parked tail's call. */
static void as_resume_input(char *out, size_t len, const char *sid, bool external)
{
	json_t *msgs = as_messages(sid), *reply = json_array_get(msgs, json_array_size(msgs) - 1);
	json_t *call = block(reply, "tool_call");
	char *text = json_dumps(call, JSON_COMPACT);

	if (external)
		snprintf(out, len,
		         "{\"type\":\"EXTERNAL_EXECUTION_RESULT\",\"reply_id\":\"%s\","
		         "\"execution_results\":[{\"type\":\"tool_result\",\"id\":\"%s\",\"name\":"
		         "\"%s\",\"output\":\"HELP-1\",\"state\":\"success\"}]}",
		         str(reply, "id"), str(call, "id"), str(call, "name"));
	else
		snprintf(
		    out, len,
		    "{\"type\":\"USER_CONFIRM_RESULT\",\"reply_id\":\"%s\",\"confirm_results\":"
		    "[{\"confirmed\":true,\"tool_call\":%s}]}",
		    str(reply, "id"), text);
	free(text);
	json_decref(msgs);
}

/* Parks ([tool:ask] or [tool:external]), then resumes; the stream follows both runs. */
static void as_stream_park_resume(bool external)
{
	char sid[64], input[2048], *types;
	json_t *a, *b, *msgs, *reply, *f, *ids = json_object(), *call;
	struct sse c;
	struct frame fr;
	struct res r;
	size_t i;

	as_create(sid, false);
	ck_assert_int_eq(as_stream(&c, sid, as_alice), 200);
	as_say(sid, "m1", external ? "Open a ticket [tool:external]" : "Push it [tool:ask]");
	a = sse_until(&c, external ? "REQUIRE_EXTERNAL_EXECUTION" : "REQUIRE_USER_CONFIRM", true);
	types = frame_types(a);
	ck_assert_str_eq(types, external ? "REPLY_START MODEL_CALL_START TEXT_BLOCK_START "
	                                   "TEXT_BLOCK_DELTA+ TEXT_BLOCK_END TOOL_CALL_START "
	                                   "TOOL_CALL_DELTA+ TOOL_CALL_END MODEL_CALL_END "
	                                   "TOOL_RESULT_START REQUIRE_EXTERNAL_EXECUTION"
	                                 : "REPLY_START MODEL_CALL_START TEXT_BLOCK_START "
	                                   "TEXT_BLOCK_DELTA+ TEXT_BLOCK_END TOOL_CALL_START "
	                                   "TOOL_CALL_DELTA+ TOOL_CALL_END MODEL_CALL_END "
	                                   "REQUIRE_USER_CONFIRM");
	free(types);
	as_wait(sid, external ? "awaiting_external_result" : "awaiting_permission");
	/* Parked: no REPLY_END; the next frame is a heartbeat. */
	ck_assert(sse_frame(&c, 3 * atoi(HEARTBEAT_MS) + 1000, &fr));
	ck_assert_msg(fr.comment, "unexpected frame %s", fr.text);
	frame_free(&fr);
	msgs = as_messages(sid);
	reply = json_array_get(msgs, 1);
	call = block(reply, "tool_call");
	f = json_array_get(a, json_array_size(a) - 1);
	/* The call exactly as stored, in its waiting state. */
	ck_assert_uint_eq(json_array_size(json_object_get(f, "tool_calls")), 1);
	ck_assert(json_equal(json_array_get(json_object_get(f, "tool_calls"), 0), call));
	ck_assert_str_eq(str(call, "state"), external ? "submitted" : "asking");
	json_decref(msgs);
	as_resume_input(input, sizeof(input), sid, external);
	r = as_chat(sid, input);
	expect(&r, 200);
	res_free(&r);
	b = sse_until(&c, "REPLY_END", true);
	types = frame_types(b);
	/* HEAD: the result is echoed and a REPLY_START continues the same reply. */
	ck_assert_str_eq(types, external
	                            ? "EXTERNAL_EXECUTION_RESULT REPLY_START "
	                              "TOOL_RESULT_TEXT_DELTA+ TOOL_RESULT_END MODEL_CALL_START "
	                              "TEXT_BLOCK_START TEXT_BLOCK_DELTA+ TEXT_BLOCK_END "
	                              "MODEL_CALL_END REPLY_END"
	                            : "USER_CONFIRM_RESULT REPLY_START TOOL_RESULT_START "
	                              "TOOL_RESULT_TEXT_DELTA+ TOOL_RESULT_END MODEL_CALL_START "
	                              "TEXT_BLOCK_START TEXT_BLOCK_DELTA+ TEXT_BLOCK_END "
	                              "MODEL_CALL_END REPLY_END");
	free(types);
	json_array_extend(a, b);
	as_wait(sid, "idle");
	msgs = as_messages(sid);
	ck_assert_uint_eq(json_array_size(msgs), 2);
	reply = json_array_get(msgs, 1);
	check_envelopes(a, str(reply, "created_at"), ids);
	json_array_foreach(a, i, f) {
		ck_assert_str_eq(str(f, "reply_id"), str(reply, "id"));
	}
	check_blocks(a, reply);
	check_usage(a, reply);
	f = json_array_get(b, 2 + !external);
	ck_assert_str_eq(str(f, "delta"), external ? "HELP-1" : "Everything up-to-date");
	f = json_array_get(b, 3 + !external);
	ck_assert_str_eq(str(f, "type"), "TOOL_RESULT_END");
	ck_assert_str_eq(str(f, "tool_call_id"), str(block(reply, "tool_result"), "id"));
	ck_assert_str_eq(str(f, "state"), "success");
	ck_assert_str_eq(str(json_array_get(b, json_array_size(b) - 1), "finished_reason"),
	                 "completed");
	json_decref(b);
	json_decref(msgs);
	json_decref(a);
	json_decref(ids);
	sse_close(&c);
}

START_TEST(as_stream_permission_prompt)
{
	as_stream_park_resume(false);
}
END_TEST

START_TEST(as_stream_external_result)
{
	as_stream_park_resume(true);
}
END_TEST

START_TEST(as_stream_failures_and_interrupts)
{
	char sid[64], bare[64], path[256], *types;
	json_t *a, *msgs, *reply, *f;
	struct sse c, d;
	struct frame fr;
	struct res r;

	as_create(sid, false);
	ck_assert_int_eq(as_stream(&c, sid, as_alice), 200);
	/* A reply that fails. */
	as_say(sid, "m1", "Again [reply:error]");
	a = sse_until(&c, "REPLY_END", true);
	f = json_array_get(a, json_array_size(a) - 1);
	ck_assert_str_eq(str(f, "finished_reason"), "error");
	ck_assert_str_eq(str(json_object_get(f, "error"), "type"), "upstream");
	as_wait(sid, "idle");
	msgs = as_messages(sid);
	reply = json_array_get(msgs, 1);
	ck_assert_str_eq(str(f, "reply_id"), str(reply, "id"));
	ck_assert(json_equal(json_object_get(f, "error"), json_object_get(reply, "error")));
	check_usage(a, reply);
	json_decref(msgs);
	json_decref(a);
	/* A parked reply interrupted: the waiting call closed as interrupted. */
	as_say(sid, "m2", "Push [tool:ask]");
	json_decref(sse_until(&c, "REQUIRE_USER_CONFIRM", true));
	as_wait(sid, "awaiting_permission");
	pathf(path, sizeof(path), "/sessions/%s/interrupt?agent_id=%s", sid, as_agent);
	r = req("POST", as.port, path, as_alice, NULL);
	expect(&r, 202);
	res_free(&r);
	a = sse_until(&c, "REPLY_END", true);
	types = frame_types(a);
	ck_assert_str_eq(types, "REPLY_START TOOL_RESULT_START TOOL_RESULT_TEXT_DELTA+ "
	                        "TOOL_RESULT_END REPLY_END");
	free(types);
	msgs = as_messages(sid);
	reply = json_array_get(msgs, 3);
	ck_assert_str_eq(str(json_array_get(a, 0), "reply_id"), str(reply, "id"));
	ck_assert_str_eq(str(json_array_get(a, 3), "state"), "interrupted");
	ck_assert_str_eq(str(json_array_get(a, 4), "finished_reason"), "interrupted");
	json_decref(a);
	/* An interrupt of an idle session is still a resume run on HEAD: its continuation
	 * REPLY_START (the last reply's id) goes out, and nothing ends it. */
	as_wait(sid, "idle");
	r = req("POST", as.port, path, as_alice, NULL);
	expect(&r, 202);
	res_free(&r);
	a = sse_until(&c, "REPLY_START", true);
	ck_assert_uint_eq(json_array_size(a), 1);
	ck_assert_str_eq(str(json_array_get(a, 0), "reply_id"), str(reply, "id"));
	ck_assert(sse_frame(&c, 3 * atoi(HEARTBEAT_MS) + 1000, &fr));
	ck_assert_msg(fr.comment, "unexpected frame %s", fr.text);
	frame_free(&fr);
	json_decref(msgs);
	json_decref(a);
	/* A run that fails before the agent starts: a start/end pair of its own, named after
	 * the agent id. */
	as_create(bare, true);
	ck_assert_int_eq(as_stream(&d, bare, as_alice), 200);
	r = as_chat(bare, "{\"name\":\"user\",\"role\":\"user\",\"content\":[{\"type\":\"text\","
	                  "\"text\":\"hi\"}]}");
	expect(&r, 200);
	res_free(&r);
	a = sse_until(&d, "REPLY_END", true);
	types = frame_types(a);
	ck_assert_str_eq(types, "REPLY_START REPLY_END");
	free(types);
	msgs = as_messages(bare);
	reply = json_array_get(msgs, json_array_size(msgs) - 1);
	ck_assert_str_eq(str(json_array_get(a, 0), "reply_id"), str(reply, "id"));
	ck_assert_str_eq(str(json_array_get(a, 0), "name"), as_agent);
	f = json_array_get(a, 1);
	ck_assert_str_eq(str(f, "finished_reason"), "error");
	ck_assert_str_eq(str(json_object_get(f, "error"), "type"), "invalid_request");
	json_decref(msgs);
	json_decref(a);
	sse_close(&c);
	sse_close(&d);
}
END_TEST

START_TEST(as_stream_lifetime_and_controls)
{
	char sid[64], path[256], *hb;
	struct sse c, d, e;
	struct res r;
	long long total;

	as_create(sid, false);
	/* Refusals as the other session routes give them. */
	r = as_get("0123", "/stream");
	expect(&r, 404);
	ck_assert_str_eq(str(r.json, "detail"), "Session '0123' not found.");
	res_free(&r);
	r = req("GET", as.port,
	        pathf(path, sizeof(path), "/sessions/%s/stream?agent_id=%s", sid, as_agent), as_bob,
	        NULL);
	expect(&r, 404);
	res_free(&r);
	r = req("GET", as.port, pathf(path, sizeof(path), "/sessions/%s/stream", sid), as_alice,
	        NULL);
	expect(&r, 422);
	res_free(&r);
	wait_streams(as.port, 0);
	total = mode_num(as.port, "streams_total");
	ck_assert_int_eq(mode_num(as.port, "stream_heartbeat_ms"), atoi(HEARTBEAT_MS));
	/* Heartbeats: exactly ":" and a blank line, again and again. */
	ck_assert_int_eq(as_stream(&c, sid, as_alice), 200);
	for (int i = 0; i < 3; i++) {
		hb = sse_heartbeat(&c, 3 * atoi(HEARTBEAT_MS) + 1000);
		ck_assert_str_eq(hb, ":");
		free(hb);
	}
	ck_assert_int_eq(as_stream(&d, sid, as_alice), 200);
	ck_assert_int_eq(as_stream(&e, sid, as_alice), 200);
	ck_assert_int_eq(mode_num(as.port, "streams_open"), 3);
	ck_assert_int_eq(mode_num(as.port, "streams_total"), total + 3);
	/* A client that leaves is noticed. */
	sse_close(&e);
	wait_streams(as.port, 2);
	/* Deleting the session does not end its streams; a new one is refused. */
	r = req("DELETE", as.port,
	        pathf(path, sizeof(path), "/sessions/%s?agent_id=%s", sid, as_agent), as_alice,
	        NULL);
	expect(&r, 204);
	res_free(&r);
	hb = sse_heartbeat(&c, 3 * atoi(HEARTBEAT_MS) + 1000);
	free(hb);
	ck_assert(!c.eof);
	r = as_get(sid, "/stream");
	expect(&r, 404);
	res_free(&r);
	ck_assert_int_eq(mode_num(as.port, "streams_open"), 2);
	/* stream-drop cuts them: no terminating chunk. */
	r = req("POST", as.port, "/__fake/stream-drop", NULL, NULL);
	expect(&r, 200);
	ck_assert_int_eq(json_integer_value(json_object_get(r.json, "dropped")), 2);
	res_free(&r);
	ck_assert(!sse_wait_end(&c));
	ck_assert(!sse_wait_end(&d));
	ck_assert_int_eq(mode_num(as.port, "streams_open"), 0);
	sse_close(&c);
	sse_close(&d);
}
END_TEST

/* SandBase's stream of sid with extra headers (NULL-terminated after the key). */
static int sb_stream(struct sse *c, const char *sid, const char *query, const char *last)
{
	char path[256], hdr[128];
	const char *h[] = {SB_KEY, last != NULL ? hdr : NULL, NULL};

	if (last != NULL)
		snprintf(hdr, sizeof(hdr), "Last-Event-ID: %s", last);
	return sse_open(c, sb.port,
	                pathf(path, sizeof(path), "/v1/sessions/%s/events/stream%s", sid, query),
	                h);
}

START_TEST(sb_stream_replays_then_streams)
{
	char sid[64], path[256], q[128], *hb;
	json_t *ev, *a, *b;
	struct sse c, d, e;
	struct res r;

	sb_create(sid, "");
	r = sb_send(sid, "[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":"
	                 "\"Read it [tool:auto]\"}]}]");
	expect(&r, 200);
	res_free(&r);
	wait_status(sb.port, sb_h, sid, "idle");
	ev = events_of(sb.port, sb_h, sid);
	/* The whole history first, as the events list shows it, "data:" frames only. */
	ck_assert_int_eq(sb_stream(&c, sid, "", NULL), 200);
	ck_assert(sse_has_header(&c, "Content-Type", "text/event-stream"));
	a = sse_until(&c, "session.status_idle", true);
	ck_assert_msg(json_equal(a, ev), "replay differs from the events list");
	json_decref(a);
	hb = sse_heartbeat(&c, 3 * atoi(HEARTBEAT_MS) + 1000);
	ck_assert_str_eq(hb, ": heartbeat");
	free(hb);
	/* Resume after an event: ?cursor= or Last-Event-ID. */
	snprintf(q, sizeof(q), "?cursor=%s", str(json_array_get(ev, 2), "id"));
	ck_assert_int_eq(sb_stream(&d, sid, q, NULL), 200);
	ck_assert_int_eq(sb_stream(&e, sid, "", str(json_array_get(ev, 2), "id")), 200);
	a = sse_until(&d, "session.status_idle", true);
	b = sse_until(&e, "session.status_idle", true);
	ck_assert_uint_eq(json_array_size(a), json_array_size(ev) - 3);
	ck_assert(json_equal(json_array_get(a, 0), json_array_get(ev, 3)));
	ck_assert(json_equal(a, b));
	json_decref(a);
	json_decref(b);
	sse_close(&d);
	sse_close(&e);
	r = req("GET", sb.port,
	        pathf(path, sizeof(path), "/v1/sessions/%s/events/stream?cursor=sevt_nope", sid),
	        sb_h, NULL);
	expect(&r, 400);
	ck_assert_str_eq(err_type(&r), "invalid_request");
	res_free(&r);
	r = req("GET", sb.port, "/v1/sessions/sess_nope/events/stream", sb_h, NULL);
	expect(&r, 404);
	ck_assert_str_eq(err_type(&r), "not_found");
	res_free(&r);
	/* Live: the next turn's events as they are appended. */
	r = sb_send(sid, "[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":"
	                 "\"And?\"}]}]");
	expect(&r, 200);
	res_free(&r);
	a = sse_until(&c, "session.status_idle", true);
	wait_status(sb.port, sb_h, sid, "idle");
	json_decref(ev);
	ev = events_of(sb.port, sb_h, sid);
	ck_assert_uint_eq(json_array_size(a), 4);
	for (size_t i = 0; i < 4; i++)
		ck_assert(json_equal(json_array_get(a, i),
		                     json_array_get(ev, json_array_size(ev) - 4 + i)));
	json_decref(a);
	/* A deleted session's stream stays open (and silent but for heartbeats). */
	r = req("DELETE", sb.port, pathf(path, sizeof(path), "/v1/sessions/%s", sid), sb_h, NULL);
	expect(&r, 200);
	res_free(&r);
	hb = sse_heartbeat(&c, 3 * atoi(HEARTBEAT_MS) + 1000);
	free(hb);
	ck_assert(!c.eof && !c.ended);
	wait_streams(sb.port, 1);
	r = req("POST", sb.port, "/__fake/stream-drop", NULL, NULL);
	expect(&r, 200);
	ck_assert_int_eq(json_integer_value(json_object_get(r.json, "dropped")), 1);
	res_free(&r);
	ck_assert(!sse_wait_end(&c));
	wait_streams(sb.port, 0);
	json_decref(ev);
	sse_close(&c);
}
END_TEST

START_TEST(cl_stream_is_live_only_and_ends_on_delete)
{
	char sid[64], body[512], path[256], *hb;
	json_t *a, *ev;
	struct sse c;
	struct frame f;
	struct res r;
	size_t n;

	snprintf(body, sizeof(body), "{\"agent\":\"%s\",\"environment_id\":\"env_1\"}", cl_agent);
	r = req("POST", cl.port, "/v1/sessions", cl_h, body);
	expect(&r, 200);
	snprintf(sid, sizeof(sid), "%s", str(r.json, "id"));
	res_free(&r);
	r = cl_send(sid, "[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":"
	                 "\"hi\"}]}]");
	expect(&r, 200);
	res_free(&r);
	wait_status(cl.port, cl_h, sid, "idle");
	/* No replay: the first thing is a ping. */
	pathf(path, sizeof(path), "/v1/sessions/%s/events/stream", sid);
	ck_assert_int_eq(sse_open(&c, cl.port, path, cl_h), 200);
	ck_assert(sse_has_header(&c, "Content-Type", "text/event-stream; charset=utf-8"));
	hb = sse_heartbeat(&c, 3 * atoi(HEARTBEAT_MS) + 1000);
	ck_assert_str_eq(hb, "event: ping\ndata: {\"type\":\"ping\"}");
	free(hb);
	n = json_array_size(ev = events_of(cl.port, cl_h, sid));
	json_decref(ev);
	r = cl_send(sid, "[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":"
	                 "\"more [tool:auto]\"}]}]");
	expect(&r, 200);
	res_free(&r);
	a = sse_until(&c, "session.status_idle", false);
	wait_status(cl.port, cl_h, sid, "idle");
	ev = events_of(cl.port, cl_h, sid);
	ck_assert_uint_eq(json_array_size(a), json_array_size(ev) - n);
	for (size_t i = 0; i < json_array_size(a); i++)
		ck_assert(json_equal(json_array_get(a, i), json_array_get(ev, n + i)));
	json_decref(ev);
	json_decref(a);
	/* Every frame is named after its type. */
	r = cl_send(sid, "[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":"
	                 "\"again\"}]}]");
	expect(&r, 200);
	res_free(&r);
	for (int got = 0; got < 3;) {
		ck_assert(sse_frame(&c, WAIT_MS, &f));
		if (!f.comment && f.data != NULL) {
			ck_assert_str_eq(f.event, str(f.data, "type"));
			ck_assert(!f.has_id);
			got += strcmp(f.event, "ping") != 0;
		}
		frame_free(&f);
	}
	json_decref(sse_until(&c, "session.status_idle", false));
	wait_status(cl.port, cl_h, sid, "idle");
	/* Deleted: session.deleted, then a clean end. */
	r = req("DELETE", cl.port, pathf(path, sizeof(path), "/v1/sessions/%s", sid), cl_h, NULL);
	expect(&r, 200);
	res_free(&r);
	a = sse_until(&c, "session.deleted", false);
	ev = json_array_get(a, json_array_size(a) - 1);
	ck_assert_uint_eq(json_object_size(ev), 3);
	ck_assert_uint_eq(strncmp(str(ev, "id"), "sevt_", 5), 0);
	ck_assert_ptr_nonnull(str(ev, "processed_at"));
	json_decref(a);
	ck_assert(sse_wait_end(&c));
	wait_streams(cl.port, 0);
	sse_close(&c);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Set-up                                                                                       */
/* ------------------------------------------------------------------------------------------ */

static void setup(void)
{
	/* The stream tests want heartbeats they can wait for. */
	const char *const a_as[] = {"--generate", "6:2",  "--seed", "5",
	                            "--run-ms",   RUN_MS, BEAT,     NULL};
	const char *const a_sb[] = {"--dialect", "sandbase", "--generate", "6:2",
	                            "--run-ms",  RUN_MS,     BEAT,         NULL};
	const char *const a_cl[] = {"--dialect", "claude", "--generate", "8:2",
	                            "--run-ms",  RUN_MS,   BEAT,         NULL};
	struct res r;

	ck_assert_int_eq(h_fake_start(&as, a_as), 0);
	ck_assert_int_eq(h_fake_start_bin(&sb, "tests/fake_sandbase", a_sb), 0);
	ck_assert_int_eq(h_fake_start_bin(&cl, "tests/fake_sandbase", a_cl), 0);
	r = req("GET", as.port, "/agent/", as_alice, NULL);
	expect(&r, 200);
	snprintf(as_agent, sizeof(as_agent), "%s",
	         str(json_array_get(json_object_get(r.json, "agents"), 0), "id"));
	res_free(&r);
	r = req("GET", sb.port, "/v1/agents", sb_h, NULL);
	expect(&r, 200);
	snprintf(sb_agent, sizeof(sb_agent), "%s",
	         str(json_array_get(json_object_get(r.json, "data"), 0), "id"));
	res_free(&r);
	r = req("GET", cl.port, "/v1/sessions?limit=1", cl_h, NULL);
	expect(&r, 200);
	snprintf(cl_agent, sizeof(cl_agent), "%s",
	         str(json_object_get(json_array_get(json_object_get(r.json, "data"), 0), "agent"),
	             "id"));
	res_free(&r);
}

/* Each fake must exit 0 on SIGTERM (under a sanitizer: with nothing leaked or misused). A
 * fixture's teardown cannot fail a test, so main() reads this. */
static bool stopped_cleanly;

static void teardown(void)
{
	int a = h_stop(&as, 3000), b = h_stop(&sb, 3000), c = h_stop(&cl, 3000);

	stopped_cleanly = a == 0 && b == 0 && c == 0;
	if (!stopped_cleanly)
		fprintf(stderr, "a fake did not exit 0 (%d %d %d); see %s, %s, %s\n", a, b, c,
		        as.log, sb.log, cl.log);
}

int main(void)
{
	Suite *s = suite_create("fakes");
	TCase *tc = tcase_create("writes");
	SRunner *sr;
	int failed;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, as_create_list_update_delete);
	tcase_add_test(tc, as_run_holds_the_lock_then_replies);
	tcase_add_test(tc, as_parked_permission_allowed);
	tcase_add_test(tc, as_parked_permission_denied);
	tcase_add_test(tc, as_parked_external_result);
	tcase_add_test(tc, as_interrupts);
	tcase_add_test(tc, as_tool_and_error_plans);
	tcase_add_test(tc, as_session_without_model_cannot_run);
	tcase_add_test(tc, as_write_modes_perform_the_write);
	tcase_add_test(tc, sb_create_update_archive_delete);
	tcase_add_test(tc, sb_turn_runs_and_refuses_while_running);
	tcase_add_test(tc, sb_rejected_batches_and_interrupt);
	tcase_add_test(tc, sb_tool_turn);
	tcase_add_test(tc, sb_outcome_unknown_modes);
	tcase_add_test(tc, sb_agents_pages);
	tcase_add_test(tc, cl_confirmations_and_queue);
	tcase_add_test(tc, cl_failed_turn);
	tcase_add_test(tc, cl_custom_tool_result_update_delete);
	tcase_add_test(tc, as_stream_frames_are_the_reply);
	tcase_add_test(tc, as_stream_replays_the_run_in_progress);
	tcase_add_test(tc, as_stream_permission_prompt);
	tcase_add_test(tc, as_stream_external_result);
	tcase_add_test(tc, as_stream_failures_and_interrupts);
	tcase_add_test(tc, as_stream_lifetime_and_controls);
	tcase_add_test(tc, sb_stream_replays_then_streams);
	tcase_add_test(tc, cl_stream_is_live_only_and_ends_on_delete);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	/* One process: the fixture's fakes live across the tests. */
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed == 0 && stopped_cleanly ? 0 : 1;
}
