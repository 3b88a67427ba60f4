/* test_wbody.c - the write bodies (wbody.h): what the SDK sends is accepted, and every way a
 * body can break its type is a 400 that names the field. And the Idempotency-Key store
 * (idem.h): new, pending, replay, mismatch, abandon, expiry, eviction, full. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "idem.h"
#include "wbody.h"

static void expect_ok(enum sg_wbody_kind k, const char *body)
{
	struct sg_error e = {0};
	json_t *j = sg_wbody_parse(k, body, strlen(body), &e);

	ck_assert_msg(j != NULL, "%s: %s", body, e.message);
	json_decref(j);
}

static void expect_bad(enum sg_wbody_kind k, const char *body, const char *msg)
{
	struct sg_error e = {0};
	json_t *j = sg_wbody_parse(k, body, strlen(body), &e);

	ck_assert_msg(j == NULL, "accepted: %s", body);
	ck_assert_int_eq(e.status, 400);
	ck_assert_str_eq(e.type, "invalid_request_error");
	ck_assert_msg(strstr(e.message, msg), "%s: message '%s' lacks '%s'", body, e.message, msg);
}

START_TEST(create_accepts_what_the_sdk_sends)
{
	expect_ok(SG_WBODY_CREATE, "{\"agent\":\"agent_1\",\"environment_id\":\"env_1\"}");
	expect_ok(
	    SG_WBODY_CREATE,
	    "{\"agent\":{\"type\":\"agent\",\"id\":\"a\",\"version\":3},"
	    "\"environment_id\":\"env_1\",\"title\":null,\"metadata\":{\"k\":\"v\"},"
	    "\"initial_events\":[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\","
	    "\"text\":\"hi\"}]}],\"vault_ids\":[],\"resources\":[{\"type\":\"file\","
	    "\"file_id\":\"f\"}],\"budget\":{\"type\":\"limit\",\"max_list_cost\":{\"amount\":"
	    "\"2500\",\"currency\":\"USD\"}}}");
	expect_ok(SG_WBODY_CREATE,
	          "{\"agent\":{\"type\":\"agent_with_overrides\",\"id\":\"a\",\"system\":null,"
	          "\"tools\":[{\"type\":\"custom\"}],\"model\":{\"id\":\"m\"}},\"environment_id\":"
	          "\"e\"}");
}
END_TEST

START_TEST(create_refuses_with_the_field_named)
{
	static const struct {
		const char *body, *msg;
	} cases[] = {
	    {"", "needs a JSON body"},
	    {"{", "not valid JSON"},
	    {"[1]", "must be a JSON object"},
	    {"{\"agent\":\"a\",\"agent\":\"b\",\"environment_id\":\"e\"}", "not valid JSON"},
	    {"{\"environment_id\":\"e\"}", "agent: required"},
	    {"{\"agent\":5,\"environment_id\":\"e\"}", "agent: must be an agent id"},
	    {"{\"agent\":\"\",\"environment_id\":\"e\"}", "agent: must not be empty"},
	    {"{\"agent\":{},\"environment_id\":\"e\"}", "agent.type: required"},
	    {"{\"agent\":{\"type\":\"x\"},\"environment_id\":\"e\"}",
	     "agent.type: unknown type 'x'"},
	    {"{\"agent\":{\"type\":\"agent\"},\"environment_id\":\"e\"}", "agent.id: required"},
	    {"{\"agent\":{\"type\":\"agent\",\"id\":\"a\",\"version\":0},\"environment_id\":\"e\"}",
	     "agent.version: must be a positive integer"},
	    {"{\"agent\":{\"type\":\"agent\",\"id\":\"a\",\"x\":1},\"environment_id\":\"e\"}",
	     "agent.x: unknown field"},
	    {"{\"agent\":\"a\"}", "environment_id: required"},
	    {"{\"agent\":\"a\",\"environment_id\":\"\"}", "environment_id: must not be empty"},
	    {"{\"agent\":\"a\",\"environment_id\":7}", "environment_id: must be a string"},
	    {"{\"agent\":\"a\",\"environment_id\":\"e\",\"title\":5}", "title: must be a string"},
	    {"{\"agent\":\"a\",\"environment_id\":\"e\",\"foo\":1}", "foo: unknown field"},
	    {"{\"agent\":\"a\",\"environment_id\":\"e\",\"metadata\":[]}",
	     "metadata: must be an object"},
	    {"{\"agent\":\"a\",\"environment_id\":\"e\",\"metadata\":{\"k\":1}}",
	     "metadata.k: must be a string"},
	    {"{\"agent\":\"a\",\"environment_id\":\"e\",\"metadata\":{\"k\":null}}",
	     "metadata.k: must be a string"},
	    {"{\"agent\":\"a\",\"environment_id\":\"e\",\"initial_events\":[{\"type\":"
	     "\"user.interrupt\"}]}",
	     "initial_events[0].type: unknown type 'user.interrupt'"},
	    {"{\"agent\":\"a\",\"environment_id\":\"e\",\"vault_ids\":[1]}",
	     "vault_ids[0]: must be a string"},
	    {"{\"agent\":\"a\",\"environment_id\":\"e\",\"budget\":{\"type\":\"limit\","
	     "\"max_list_cost\":{\"amount\":\"1\",\"currency\":\"EUR\"}}}",
	     "budget.max_list_cost.currency: 'EUR' is not one of the allowed values"},
	    {"{\"agent\":\"a\",\"environment_id\":\"e\",\"resources\":[{\"type\":\"disk\"}]}",
	     "resources[0].type: unknown type 'disk'"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_bad(SG_WBODY_CREATE, cases[i].body, cases[i].msg);
}
END_TEST

/* The bounds the API states: 16 metadata pairs, keys of 64 and values of 512 bytes, 50
 * events. */
START_TEST(bounds)
{
	char body[65536], *p;
	int i;

	p = body + sprintf(body, "{\"agent\":\"a\",\"environment_id\":\"e\",\"metadata\":{");
	for (i = 0; i < 17; i++)
		p += sprintf(p, "%s\"k%d\":\"v\"", i ? "," : "", i);
	strcpy(p, "}}");
	expect_bad(SG_WBODY_CREATE, body, "metadata: at most 16 pairs");
	sprintf(body, "{\"agent\":\"a\",\"environment_id\":\"e\",\"metadata\":{\"%065d\":\"v\"}}",
	        0);
	expect_bad(SG_WBODY_CREATE, body, "keys must be 1 to 64 bytes");
	sprintf(body, "{\"agent\":\"a\",\"environment_id\":\"e\",\"metadata\":{\"k\":\"%0513d\"}}",
	        0);
	expect_bad(SG_WBODY_CREATE, body, "metadata.k: at most 512 bytes");
	sprintf(body, "{\"agent\":\"a\",\"environment_id\":\"e\",\"metadata\":{\"k\":\"%0512d\"}}",
	        0);
	expect_ok(SG_WBODY_CREATE, body);
	p = body + sprintf(body, "{\"events\":[");
	for (i = 0; i < 51; i++)
		p += sprintf(p, "%s{\"type\":\"user.interrupt\"}", i ? "," : "");
	strcpy(p, "]}");
	expect_bad(SG_WBODY_EVENTS, body, "events: at most 50 items");
	strcpy(strrchr(body, ',') ? strrchr(body, ',') : body, "]}");
	expect_ok(SG_WBODY_EVENTS, body);
}
END_TEST

START_TEST(update_bodies)
{
	expect_ok(SG_WBODY_UPDATE, "");
	expect_ok(SG_WBODY_UPDATE, "{}");
	expect_ok(SG_WBODY_UPDATE, "{\"title\":null,\"metadata\":{\"a\":\"b\",\"c\":null}}");
	expect_ok(SG_WBODY_UPDATE, "{\"metadata\":null,\"budget\":null,\"agent\":{\"tools\":[]}}");
	expect_bad(SG_WBODY_UPDATE, "{\"agent\":{\"model\":{}}}", "agent.model: unknown field");
	expect_bad(SG_WBODY_UPDATE, "{\"environment_id\":\"e\"}", "environment_id: unknown field");
	expect_bad(SG_WBODY_UPDATE, "{\"metadata\":{\"a\":5}}",
	           "metadata.a: must be a string or null");
	expect_bad(SG_WBODY_UPDATE, "{\"vault_ids\":\"v\"}", "vault_ids: must be an array");
}
END_TEST

START_TEST(event_bodies)
{
	expect_ok(
	    SG_WBODY_EVENTS,
	    "{\"events\":[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":"
	    "\"hi\"},{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"http://x\"}}]},"
	    "{\"type\":\"user.interrupt\"},{\"type\":\"user.tool_confirmation\",\"tool_use_id\":"
	    "\"t\",\"result\":\"deny\",\"deny_message\":null},{\"type\":"
	    "\"user.custom_tool_result\",\"custom_tool_use_id\":\"c\",\"content\":[{\"type\":"
	    "\"text\",\"text\":\"r\"}],\"is_error\":false},{\"type\":\"user.define_outcome\","
	    "\"description\":\"d\",\"rubric\":{\"type\":\"text\",\"content\":\"r\"}},{\"type\":"
	    "\"user.tool_result\",\"tool_use_id\":\"t\"},{\"type\":\"system.message\","
	    "\"content\":[{\"type\":\"text\",\"text\":\"s\"}]}]}");
	expect_bad(SG_WBODY_EVENTS, "{}", "events: required");
	expect_bad(SG_WBODY_EVENTS, "{\"events\":[]}", "events: must not be empty");
	expect_bad(SG_WBODY_EVENTS, "{\"events\":{}}", "events: must be an array");
	expect_bad(SG_WBODY_EVENTS, "{\"events\":[5]}", "events[0]: must be an object");
	expect_bad(SG_WBODY_EVENTS, "{\"events\":[{\"type\":\"agent.message\"}]}",
	           "events[0].type: unknown type 'agent.message'");
	expect_bad(SG_WBODY_EVENTS, "{\"events\":[{\"type\":\"user.message\",\"content\":[]}]}",
	           "events[0].content: must not be empty");
	expect_bad(SG_WBODY_EVENTS,
	           "{\"events\":[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\"}]}]}",
	           "events[0].content[0].text: required");
	expect_bad(
	    SG_WBODY_EVENTS,
	    "{\"events\":[{\"type\":\"user.interrupt\"},{\"type\":\"user.message\",\"content\":"
	    "[{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"data\":\"x\"}}]}]}",
	    "events[1].content[0].source.media_type: required");
	expect_bad(SG_WBODY_EVENTS,
	           "{\"events\":[{\"type\":\"user.tool_confirmation\",\"tool_use_id\":\"t\","
	           "\"result\":\"maybe\"}]}",
	           "events[0].result: 'maybe' is not one of the allowed values");
	expect_bad(SG_WBODY_EVENTS,
	           "{\"events\":[{\"type\":\"user.tool_confirmation\",\"result\":\"allow\"}]}",
	           "events[0].tool_use_id: required");
	expect_bad(SG_WBODY_EVENTS,
	           "{\"events\":[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\","
	           "\"text\":\"a\"}],\"id\":\"x\"}]}",
	           "events[0].id: unknown field");
}
END_TEST

/* ---- the Idempotency-Key store ---- */

static const uint8_t fp1[32] = {1}, fp2[32] = {2};

static struct sg_idem_answer answer(int status, const char *body, int retry)
{
	struct sg_idem_answer a = {status, retry, (char *)body, strlen(body)};

	return a;
}

START_TEST(idem_new_pending_replay_mismatch)
{
	struct sg_idem *s = sg_idem_new(10, 1 << 20, 1000);
	struct sg_idem_answer got = {0}, a = answer(200, "{\"id\":\"x\"}", -1);

	ck_assert_int_eq(sg_idem_begin(s, "k", fp1, 0, &got), SG_IDEM_NEW);
	ck_assert_int_eq(sg_idem_begin(s, "k", fp1, 1, &got), SG_IDEM_PENDING);
	ck_assert_int_eq(sg_idem_begin(s, "k", fp2, 1, &got), SG_IDEM_MISMATCH);
	sg_idem_finish(s, "k", &a, 2);
	ck_assert_int_eq(sg_idem_begin(s, "k", fp1, 3, &got), SG_IDEM_REPLAY);
	ck_assert_int_eq(got.status, 200);
	ck_assert_int_eq(got.should_retry, -1);
	ck_assert_str_eq(got.body, "{\"id\":\"x\"}");
	free(got.body);
	ck_assert_int_eq(sg_idem_begin(s, "k", fp2, 3, &got), SG_IDEM_MISMATCH);
	/* another key is another request */
	ck_assert_int_eq(sg_idem_begin(s, "k2", fp2, 3, &got), SG_IDEM_NEW);
	ck_assert_uint_eq(sg_idem_count(s), 2);
	sg_idem_free(s);
}
END_TEST

START_TEST(idem_abandon_and_expiry)
{
	struct sg_idem *s = sg_idem_new(10, 1 << 20, 1000);
	struct sg_idem_answer got = {0}, a = answer(400, "{}", 0);

	ck_assert_int_eq(sg_idem_begin(s, "k", fp1, 0, &got), SG_IDEM_NEW);
	sg_idem_abandon(s, "k"); /* nothing was done: the retry runs */
	ck_assert_int_eq(sg_idem_begin(s, "k", fp1, 1, &got), SG_IDEM_NEW);
	sg_idem_finish(s, "k", &a, 10);
	ck_assert_int_eq(sg_idem_begin(s, "k", fp1, 1009, &got), SG_IDEM_REPLAY);
	free(got.body);
	/* past the window the key is free again, with any body */
	ck_assert_int_eq(sg_idem_begin(s, "k", fp2, 1010, &got), SG_IDEM_NEW);
	sg_idem_free(s);
}
END_TEST

START_TEST(idem_bounded)
{
	struct sg_idem *s = sg_idem_new(3, 1 << 20, 100000);
	struct sg_idem_answer got = {0}, a = answer(200, "{}", -1);
	char k[16];

	for (int i = 0; i < 3; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		ck_assert_int_eq(sg_idem_begin(s, k, fp1, i, &got), SG_IDEM_NEW);
	}
	/* full of pending keys: nothing may be evicted */
	ck_assert_int_eq(sg_idem_begin(s, "k3", fp1, 5, &got), SG_IDEM_FULL);
	sg_idem_finish(s, "k0", &a, 6);
	/* the oldest answered key makes room, even inside its window */
	ck_assert_int_eq(sg_idem_begin(s, "k3", fp1, 7, &got), SG_IDEM_NEW);
	ck_assert_uint_eq(sg_idem_count(s), 3);
	ck_assert_int_eq(sg_idem_begin(s, "k1", fp1, 8, &got), SG_IDEM_PENDING);
	sg_idem_free(s);
	/* the byte bound: a large answer is evicted for the next key */
	s = sg_idem_new(100, 65536, 100000);
	{
		static char big[70000];

		memset(big, 'x', sizeof(big) - 1);
		a = answer(200, big, -1);
		ck_assert_int_eq(sg_idem_begin(s, "b", fp1, 0, &got), SG_IDEM_NEW);
		sg_idem_finish(s, "b", &a, 1);
		ck_assert_int_eq(sg_idem_begin(s, "c", fp1, 2, &got), SG_IDEM_NEW);
		ck_assert_int_eq(sg_idem_begin(s, "b", fp1, 3, &got), SG_IDEM_NEW);
	}
	sg_idem_free(s);
}
END_TEST

START_TEST(idem_key_syntax)
{
	char long_key[300];

	ck_assert(sg_idem_key_valid("a"));
	ck_assert(sg_idem_key_valid("3f6c2b1e-9a7d-4c51-b2e8-0d4a6f9c1b23"));
	ck_assert(!sg_idem_key_valid(""));
	ck_assert(!sg_idem_key_valid(NULL));
	ck_assert(!sg_idem_key_valid("a b"));
	ck_assert(!sg_idem_key_valid("caf\xc3\xa9"));
	memset(long_key, 'k', 256);
	long_key[256] = '\0';
	ck_assert(!sg_idem_key_valid(long_key));
	long_key[255] = '\0';
	ck_assert(sg_idem_key_valid(long_key));
}
END_TEST

/* Workers race for one key: exactly one of them is NEW. */
static struct sg_idem *race_store;
static int race_new;
static pthread_mutex_t race_lock = PTHREAD_MUTEX_INITIALIZER;

static void *racer(void *arg)
{
	struct sg_idem_answer got = {0};

	(void)arg;
	for (int i = 0; i < 1000; i++) {
		char k[16];

		snprintf(k, sizeof(k), "r%d", i);
		if (sg_idem_begin(race_store, k, fp1, i, &got) == SG_IDEM_NEW) {
			pthread_mutex_lock(&race_lock);
			race_new++;
			pthread_mutex_unlock(&race_lock);
		}
	}
	return NULL;
}

START_TEST(idem_threads)
{
	pthread_t t[4];

	race_store = sg_idem_new(10000, 1 << 20, 100000);
	race_new = 0;
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, racer, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(race_new, 1000);
	ck_assert_uint_eq(sg_idem_count(race_store), 1000);
	sg_idem_free(race_store);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("wbody");
	TCase *t = tcase_create("wbody");
	TCase *i = tcase_create("idem");

	tcase_add_test(t, create_accepts_what_the_sdk_sends);
	tcase_add_test(t, create_refuses_with_the_field_named);
	tcase_add_test(t, bounds);
	tcase_add_test(t, update_bodies);
	tcase_add_test(t, event_bodies);
	suite_add_tcase(s, t);
	tcase_add_test(i, idem_new_pending_replay_mismatch);
	tcase_add_test(i, idem_abandon_and_expiry);
	tcase_add_test(i, idem_bounded);
	tcase_add_test(i, idem_key_syntax);
	tcase_add_test(i, idem_threads);
	suite_add_tcase(s, i);
	return s;
}

int main(void)
{
	return sg_fixture_run(suite());
}
