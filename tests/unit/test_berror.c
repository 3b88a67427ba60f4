/* test_berror.c - backend error answers → north errors (src/berror.c): the core's body reader,
 * its status table row by row, and each backend end to end through its mapping's read_error
 * hook (AgentScope: the core's reader; SandBase: delivery_outcome_unknown; Claude-native: only
 * the north envelope is the upstream's own). The table is docs/compatibility.md's "Backend
 * error answers". */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berror.h"
#include "fixture.h"
#include "mapping.h"

#define ENV(type, msg)                                                                             \
	"{\"type\": \"error\", \"error\": {\"type\": \"" type "\", \"message\": \"" msg            \
	"\"}, \"request_id\": \"req_011\"}"

/* Whatever the row, the message starts with the backend, fits, and renders as JSON. */
static void check_message(const struct sg_error *err, const char *backend)
{
	char prefix[96];
	json_t *rendered;

	snprintf(prefix, sizeof(prefix), "backend '%s': ", backend);
	ck_assert_msg(!strncmp(err->message, prefix, strlen(prefix)), "%s", err->message);
	ck_assert_uint_lt(strlen(err->message), SG_ERRMSG_MAX);
	rendered = json_pack("{s:s}", "m", err->message);
	ck_assert_msg(rendered != NULL, "message is not valid UTF-8: %s", err->message);
	json_decref(rendered);
}

/* ---- the reader ------------------------------------------------------------------------ */

static const struct {
	const char *body;
	const char *type, *message;
	int own;
} reads[] = {
    {ENV("not_found_error", "no such session"), "not_found_error", "no such session", 1},
    {"{\"error\": {\"type\": \"not_found\", \"message\": \"gone\"}}", "not_found", "gone", 1},
    {"{\"error\": {\"type\": \"api_error\"}}", "api_error", "", 1},
    {"{\"error\": \"bad cursor\"}", "", "bad cursor", 1},
    {"{\"detail\": \"Session 'x' not found.\"}", "", "Session 'x' not found.", 1},
    {"{\"detail\": [{\"loc\": [\"header\", \"x-user-id\"], \"msg\": \"Field required\"}]}", "",
     "Field required", 1},
    {"{\"detail\": {\"message\": \"nested\"}}", "", "nested", 1},
    {"{\"code\": 402, \"message\": \"Insufficient balance\"}", "", "Insufficient balance", 1},
    {"{\"type\": \"invalid_request\", \"message\": \"top\"}", "invalid_request", "top", 1},
    {"{\"type\": \"error\", \"message\": \"x\"}", "", "x", 1},
    {"{\"error\": {\"type\": \"caf\xc3\xa9\\u0001\", \"message\": \"a\\u0000b\\nc\"}}", "caf?? ",
     "a b c", 1},
    {"{\"data\": []}", "", "", 0},
    {"<html><body>Not Found</body></html>", "", "<html><body>Not Found</body></html>", 0},
    {"\x01\xff\xfe control", "", " ?? control", 0},
    {"\"just a string\"", "", "\"just a string\"", 0},
    {"", "", "", 0},
};

START_TEST(test_read)
{
	struct sg_backend_said said;

	memset(&said, 0x55, sizeof(said)); /* the reader clears what the body does not say */
	sg_berror_read(400, reads[_i].body, strlen(reads[_i].body), &said);
	ck_assert_str_eq(said.type, reads[_i].type);
	ck_assert_str_eq(said.message, reads[_i].message);
	ck_assert_int_eq(said.own, reads[_i].own);
	ck_assert_str_eq(said.session, "");
	ck_assert_int_eq(said.outcome_unknown, 0);
}
END_TEST

/* Only len bytes are read, and a long message is cut between characters. */
START_TEST(test_read_bounds)
{
	struct sg_backend_said said;
	char body[2048];
	size_t n = 0, i;
	json_t *j;

	sg_berror_read(404, ENV("not_found_error", "gone") "trailing garbage",
	               strlen(ENV("not_found_error", "gone")), &said);
	ck_assert_str_eq(said.message, "gone");
	sg_berror_read(500, NULL, 0, &said);
	ck_assert_int_eq(said.own, 0);
	ck_assert_str_eq(said.message, "");

	n += (size_t)snprintf(body, sizeof(body), "{\"error\": {\"message\": \"");
	for (i = 0; i < 400; i++) {
		memcpy(body + n, "\xe2\x82\xac", 3); /* U+20AC */
		n += 3;
	}
	n += (size_t)snprintf(body + n, sizeof(body) - n, "\"}}");
	sg_berror_read(500, body, n, &said);
	ck_assert_uint_eq(strlen(said.message), 300);
	j = json_string(said.message);
	ck_assert_msg(j != NULL, "message is not valid UTF-8");
	json_decref(j);
}
END_TEST

/* ---- the table, row by row ------------------------------------------------------------- */

static const struct {
	long status;
	int own;
	const char *type;
	int want, retry;
	const char *want_type, *needle;
} rows[] = {
    /* the gateway's own credentials or account: nothing the client can fix */
    {401, 1, "authentication_error", 502, 0, "api_error",
     "the gateway's credentials for this backend were rejected (HTTP 401 authentication_error)"},
    {402, 1, "billing_error", 502, 0, "api_error",
     "the gateway's account on this backend cannot pay (HTTP 402 billing_error)"},
    {403, 0, "", 502, 0, "api_error",
     "the gateway's credentials for this backend lack permission (HTTP 403)"},
    /* statuses whose meaning does not depend on who answered */
    {413, 0, "", 413, 0, "invalid_request_error", "request too large (HTTP 413)"},
    {429, 0, "", 429, 1, "rate_limit_error", "rate limited (HTTP 429)"},
    {429, 1, "rate_limit_error", 429, 1, "rate_limit_error", "(HTTP 429 rate_limit_error)"},
    /* client statuses, passed on when the body is the backend's own */
    {400, 1, "invalid_request", 400, 0, "invalid_request_error",
     "invalid request (HTTP 400 invalid_request)"},
    {400, 1, "memory_path_conflict_error", 400, 0, "memory_path_conflict_error", "(HTTP 400"},
    {422, 1, "unsupported_event_type", 400, 0, "invalid_request_error",
     "invalid request (HTTP 422 unsupported_event_type)"},
    {404, 1, "", 404, 0, "not_found_error", "not found (HTTP 404)"},
    {404, 1, "conflict_error", 404, 0, "conflict_error", "not found (HTTP 404 conflict_error)"},
    {409, 1, "session_archived", 409, 0, "conflict_error", "conflict (HTTP 409 session_archived)"},
    {400, 0, "", 502, 0, "api_error",
     "unexpected answer (HTTP 400, not the backend's own error body)"},
    {404, 0, "", 502, 0, "api_error",
     "unexpected answer (HTTP 404, not the backend's own error body)"},
    {409, 0, "", 502, 0, "api_error", "(HTTP 409, not the backend's own error body)"},
    {422, 0, "", 502, 0, "api_error", "(HTTP 422, not the backend's own error body)"},
    /* the backend's trouble, which may well pass */
    {500, 1, "api_error", 502, 1, "api_error", "backend error (HTTP 500 api_error)"},
    {503, 0, "", 502, 1, "api_error", "backend error (HTTP 503)"},
    {529, 1, "overloaded_error", 502, 1, "api_error", "backend error (HTTP 529 overloaded_error)"},
    /* other statuses: by the backend's type, with or without "_error", else unexpected */
    {418, 1, "invalid_request", 400, 0, "invalid_request_error", "(HTTP 418 invalid_request)"},
    {418, 1, "not_found_error", 404, 0, "not_found_error", "not found (HTTP 418 not_found_error)"},
    {418, 0, "invalid_request", 502, 0, "api_error", "(HTTP 418 invalid_request, not the"},
    {418, 1, "teapot", 502, 0, "api_error", "unexpected answer (HTTP 418 teapot)"},
    {405, 1, "", 502, 0, "api_error", "unexpected answer (HTTP 405)"},
    {200, 0, "", 502, 0, "api_error", "unexpected answer (HTTP 200)"},
    {307, 0, "", 502, 0, "api_error", "unexpected answer (HTTP 307)"},
    {0, 0, "", 502, 0, "api_error", "unexpected answer (HTTP 0)"},
};

START_TEST(test_table)
{
	struct sg_backend_said said = {0};
	struct sg_error err = {0};

	snprintf(said.type, sizeof(said.type), "%s", rows[_i].type);
	said.own = rows[_i].own;
	sg_berror_north(rows[_i].status, &said, "be1", &err);
	ck_assert_int_eq(err.status, rows[_i].want);
	ck_assert_str_eq(err.type, rows[_i].want_type);
	ck_assert_int_eq(err.should_retry, rows[_i].retry);
	ck_assert_msg(strstr(err.message, rows[_i].needle), "'%s' lacks '%s'", err.message,
	              rows[_i].needle);
	check_message(&err, "be1");
}
END_TEST

/* A write whose outcome the backend does not know: never "retry", and the client is told what
 * to look at, by the public id of the session that may exist. */
START_TEST(test_outcome_unknown)
{
	struct sg_backend_said said = {0};
	struct sg_error err = {0};

	said.outcome_unknown = 1;
	said.own = 1;
	snprintf(said.type, sizeof(said.type), "delivery_outcome_unknown");
	snprintf(said.message, sizeof(said.message), "runtime timeout");
	snprintf(said.session, sizeof(said.session), "sess_01abc...");
	sg_berror_north(502, &said, "sandbase", &err);
	ck_assert_int_eq(err.status, 502);
	ck_assert_str_eq(err.type, "api_error");
	ck_assert_int_eq(err.should_retry, 0);
	ck_assert_str_eq(
	    err.message,
	    "backend 'sandbase': the outcome is unknown (HTTP 502 "
	    "delivery_outcome_unknown): session "
	    "sesn_aeaaq43bnzsgeyltmuaaaaanonsxg427gaywcytdfyxc4m3omvoq may have been "
	    "created; retrieve it and list its events before retrying: runtime timeout");
	said.session[0] = '\0';
	sg_berror_north(200, &said, "sandbase", &err);
	ck_assert_int_eq(err.status, 502);
	ck_assert_int_eq(err.should_retry, 0);
	ck_assert_msg(strstr(err.message, "may or may not have taken effect"), "%s", err.message);
}
END_TEST

/* The backend's message is cut to what still fits, between characters; a NULL backend reads
 * as "?" and a NULL err is allowed. */
START_TEST(test_table_bounds)
{
	struct sg_backend_said said = {0};
	struct sg_error err = {0};
	char backend[65];
	size_t i;

	for (i = 0; i + 3 < sizeof(said.message); i += 3)
		memcpy(said.message + i, "\xe2\x82\xac", 3);
	memset(said.type, 't', sizeof(said.type) - 1);
	memset(backend, 'b', sizeof(backend) - 1);
	backend[sizeof(backend) - 1] = '\0';
	said.own = 1;
	sg_berror_north(401, &said, backend, &err);
	ck_assert_int_eq(err.status, 502);
	check_message(&err, backend);
	ck_assert_msg(strstr(err.message, ": \xe2\x82\xac"), "%s", err.message);
	sg_berror_north(500, &said, NULL, &err);
	check_message(&err, "?");
	sg_berror_north(500, &said, "x", NULL);
}
END_TEST

/* ---- each backend, end to end through its mapping --------------------------------------- */

static const struct {
	const char *mapping;
	long status;
	const char *body;
	int want, retry;
	const char *want_type, *needle;
} answers[] = {
    /* AgentScope: FastAPI bodies, the core's reader */
    {"agentscope", 404, "{\"detail\": \"Session 'ab' not found.\"}", 404, 0, "not_found_error",
     "not found (HTTP 404): Session 'ab' not found."},
    {"agentscope", 404, "<html>404 Not Found</html>", 502, 0, "api_error",
     "(HTTP 404, not the backend's own error body): <html>404 Not Found</html>"},
    {"agentscope", 409, "{\"detail\": \"Session is running.\"}", 409, 0, "conflict_error",
     "conflict (HTTP 409): Session is running."},
    {"agentscope", 422,
     "{\"detail\": [{\"loc\": [\"query\", \"agent_id\"], \"msg\": \"Field "
     "required\"}]}",
     400, 0, "invalid_request_error", "invalid request (HTTP 422): Field required"},
    {"agentscope", 401, "{\"detail\": \"X-User-ID header is required.\"}", 502, 0, "api_error",
     "credentials for this backend were rejected (HTTP 401): X-User-ID header is required."},
    {"agentscope", 500, "{\"detail\": \"Internal Server Error\"}", 502, 1, "api_error",
     "backend error (HTTP 500): Internal Server Error"},
    {"agentscope", 429, "", 429, 1, "rate_limit_error", "rate limited (HTTP 429)"},
    /* SandBase: its own types, and delivery_outcome_unknown */
    {"sandbase", 404, "{\"error\": {\"type\": \"not_found\", \"message\": \"Session not found\"}}",
     404, 0, "not_found_error", "not found (HTTP 404 not_found): Session not found"},
    {"sandbase", 404, ENV("not_found_error", "no"), 404, 0, "not_found_error",
     "(HTTP 404 not_found_error): no"},
    {"sandbase", 400,
     "{\"error\": {\"type\": \"invalid_request\", \"message\": \"Invalid page cursor\"}}", 400, 0,
     "invalid_request_error", "invalid request (HTTP 400 invalid_request): Invalid page cursor"},
    {"sandbase", 422,
     "{\"error\": {\"type\": \"unsupported_event_type\", \"message\": \"user.tool_result is not "
     "supported\"}}",
     400, 0, "invalid_request_error", "(HTTP 422 unsupported_event_type): user.tool_result"},
    {"sandbase", 401, ENV("authentication_error", "Invalid API key"), 502, 0, "api_error",
     "credentials for this backend were rejected (HTTP 401 authentication_error): Invalid API "
     "key"},
    {"sandbase", 403, "{\"detail\": \"Forbidden\"}", 502, 0, "api_error",
     "lack permission (HTTP 403): Forbidden"},
    {"sandbase", 402, "{\"code\": 402, \"message\": \"Insufficient balance\"}", 502, 0, "api_error",
     "cannot pay (HTTP 402): Insufficient balance"},
    {"sandbase", 429, ENV("rate_limit_error", "slow down"), 429, 1, "rate_limit_error",
     "rate limited (HTTP 429 rate_limit_error): slow down"},
    {"sandbase", 409, "{\"error\": {\"type\": \"session_archived\", \"message\": \"archived\"}}",
     409, 0, "conflict_error", "conflict (HTTP 409 session_archived): archived"},
    {"sandbase", 413, "", 413, 0, "invalid_request_error", "request too large (HTTP 413)"},
    {"sandbase", 500, "<html><body>Internal Server Error</body></html>", 502, 1, "api_error",
     "backend error (HTTP 500): <html><body>Internal Server Error"},
    {"sandbase", 503, "{\"detail\": [{\"loc\": [\"body\"], \"msg\": \"upstream down\"}]}", 502, 1,
     "api_error", "backend error (HTTP 503): upstream down"},
    {"sandbase", 502,
     "{\"error\": {\"type\": \"delivery_outcome_unknown\", \"message\": \"runtime timeout\"}, "
     "\"session_id\": \"sess_01abc...\", \"delivery_status\": \"unknown\"}",
     502, 0, "api_error",
     "session sesn_aeaaq43bnzsgeyltmuaaaaanonsxg427gaywcytdfyxc4m3omvoq may have been created"},
    {"sandbase", 418, "{\"error\": {\"type\": \"invalid_request\", \"message\": \"teapot\"}}", 400,
     0, "invalid_request_error", "(HTTP 418 invalid_request): teapot"},
    {"sandbase", 418, "{\"message\": \"odd\"}", 502, 0, "api_error",
     "unexpected answer (HTTP 418): odd"},
    {"sandbase", 200, "{\"data\": []}", 502, 0, "api_error", "unexpected answer (HTTP 200)"},
    {"sandbase", 500, "\x01\xff\xfe control", 502, 1, "api_error", "(HTTP 500):  ?? control"},
    /* Claude-native: only the north envelope is the upstream's own */
    {"claude", 400, ENV("invalid_request_error", "limit: must be at most 100"), 400, 0,
     "invalid_request_error",
     "invalid request (HTTP 400 invalid_request_error): limit: must be "
     "at most 100"},
    {"claude", 404, ENV("not_found_error", "session not found"), 404, 0, "not_found_error",
     "not found (HTTP 404 not_found_error): session not found"},
    {"claude", 404, "{\"error\": {\"message\": \"no such session\"}}", 404, 0, "not_found_error",
     "not found (HTTP 404): no such session"},
    {"claude", 409, ENV("conflict_error", "session is running"), 409, 0, "conflict_error",
     "session is running"},
    {"claude", 413, ENV("request_too_large", "too large"), 413, 0, "invalid_request_error",
     "too large"},
    {"claude", 429, ENV("rate_limit_error", "slow down"), 429, 1, "rate_limit_error", "slow down"},
    {"claude", 400, ENV("memory_path_conflict_error", "path taken"), 400, 0,
     "memory_path_conflict_error", "path taken"},
    {"claude", 400, ENV("weird_error", "odd"), 400, 0, "invalid_request_error", "odd"},
    {"claude", 404, ENV("conflict_error", "mislabelled"), 404, 0, "conflict_error", "mislabelled"},
    {"claude", 422, ENV("invalid_request_error", "unprocessable"), 400, 0, "invalid_request_error",
     "(HTTP 422 invalid_request_error): unprocessable"},
    {"claude", 401, ENV("authentication_error", "invalid x-api-key"), 502, 0, "api_error",
     "credentials for this backend were rejected (HTTP 401 authentication_error): invalid "
     "x-api-key"},
    {"claude", 403, ENV("permission_error", "not allowed"), 502, 0, "api_error",
     "lack permission (HTTP 403 permission_error): not allowed"},
    {"claude", 401, "Unauthorized", 502, 0, "api_error",
     "credentials for this backend were rejected (HTTP 401): Unauthorized"},
    {"claude", 402, ENV("billing_error", "credit exhausted"), 502, 0, "api_error",
     "cannot pay (HTTP 402 billing_error): credit exhausted"},
    {"claude", 500, ENV("api_error", "Internal server error"), 502, 1, "api_error",
     "backend error (HTTP 500 api_error): Internal server error"},
    {"claude", 503, "<html><body>503 Service Unavailable</body></html>", 502, 1, "api_error",
     "backend error (HTTP 503): <html>"},
    {"claude", 504, ENV("timeout_error", "upstream timed out"), 502, 1, "api_error",
     "(HTTP 504 timeout_error): upstream timed out"},
    {"claude", 529, ENV("overloaded_error", "Overloaded"), 502, 1, "api_error",
     "backend error (HTTP 529 overloaded_error): Overloaded"},
    {"claude", 529, "", 502, 1, "api_error", "backend error (HTTP 529)"},
    {"claude", 404, "<html>Not Found</html>", 502, 0, "api_error",
     "unexpected answer (HTTP 404, not the backend's own error body): <html>Not Found</html>"},
    {"claude", 404, "{\"detail\": \"Not Found\"}", 502, 0, "api_error",
     "(HTTP 404, not the backend's own error body): Not Found"},
    {"claude", 400, "{\"error\": \"bad\"}", 502, 0, "api_error",
     "(HTTP 400, not the backend's own error body): bad"},
    {"claude", 200, "{\"data\": []}", 502, 0, "api_error", "unexpected answer (HTTP 200)"},
    {"claude", 0, "", 502, 0, "api_error", "unexpected answer (HTTP 0)"},
};

START_TEST(test_backend)
{
	const struct sg_mapping *m = sg_mapping_find(answers[_i].mapping);
	const char *body = answers[_i].body;
	struct sg_error err = {0};

	ck_assert_ptr_nonnull(m);
	sg_berror(m, answers[_i].status, body, strlen(body), answers[_i].mapping, &err);
	ck_assert_msg(err.status == answers[_i].want, "%s %ld: status %d (%s)", answers[_i].mapping,
	              answers[_i].status, err.status, err.message);
	ck_assert_str_eq(err.type, answers[_i].want_type);
	ck_assert_int_eq(err.should_retry, answers[_i].retry);
	ck_assert_msg(strstr(err.message, answers[_i].needle), "'%s' lacks '%s'", err.message,
	              answers[_i].needle);
	check_message(&err, answers[_i].mapping);
}
END_TEST

/* The hooks read only what their dialect adds: a SandBase session id only with
 * delivery_outcome_unknown, and one too long for a public id is left out. */
START_TEST(test_hooks)
{
	const struct sg_mapping *sb = sg_mapping_find("sandbase");
	struct sg_backend_said said;
	char body[512];

	ck_assert_ptr_nonnull(sb->read_error);
	ck_assert_ptr_null(sg_mapping_find("agentscope")->read_error);
	snprintf(body, sizeof(body),
	         "{\"error\": {\"type\": \"conflict\", \"message\": \"m\"}, \"session_id\": "
	         "\"sess_1\"}");
	sb->read_error(409, body, strlen(body), &said);
	ck_assert_int_eq(said.outcome_unknown, 0);
	ck_assert_str_eq(said.session, "");
	snprintf(
	    body, sizeof(body),
	    "{\"error\": {\"type\": \"delivery_outcome_unknown\"}, \"session_id\": \"%0250d\"}", 0);
	sb->read_error(502, body, strlen(body), &said);
	ck_assert_int_eq(said.outcome_unknown, 1);
	ck_assert_str_eq(said.session, "");
}
END_TEST

static Suite *berror_suite(void)
{
	Suite *s = suite_create("berror");
	TCase *tc = tcase_create("berror");

	tcase_add_loop_test(tc, test_read, 0, (int)(sizeof(reads) / sizeof(reads[0])));
	tcase_add_test(tc, test_read_bounds);
	tcase_add_loop_test(tc, test_table, 0, (int)(sizeof(rows) / sizeof(rows[0])));
	tcase_add_test(tc, test_outcome_unknown);
	tcase_add_test(tc, test_table_bounds);
	tcase_add_loop_test(tc, test_backend, 0, (int)(sizeof(answers) / sizeof(answers[0])));
	tcase_add_test(tc, test_hooks);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sg_fixture_run(berror_suite());
}
