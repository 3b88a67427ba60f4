/* test_query.c - query string parsing, validation and fingerprints (src/query.c).
 *
 * The wire strings marked "SDK" are exactly what @anthropic-ai/sdk 1.10.0's
 * stringifyQuery produces for the given params (qs, arrayFormat "brackets"). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

#define US(s) ((int64_t)(s)*1000000)

/* 2026-01-02T03:04:05Z, 2025-12-31T16:00:00Z, 2026-01-01T00:00:00Z in seconds. */
#define T_0102 1767323045
#define T_1231_16 1767196800
#define T_0101 1767225600

static const char *const status_msg_tail =
    "(expected one of rescheduling, running, idle, terminated)";

static int str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static void parse_session_ok(const char *raw, struct sg_session_query *q)
{
	struct sg_error err = {0};
	int rc = sg_session_query_parse(raw, q, &err);

	ck_assert_msg(rc == 0, "parse '%s' failed: %s", raw ? raw : "(null)", err.message);
	ck_assert_int_eq(err.status, 0);
}

static void parse_event_ok(const char *raw, struct sg_event_query *q)
{
	struct sg_error err = {0};
	int rc = sg_event_query_parse(raw, q, &err);

	ck_assert_msg(rc == 0, "parse '%s' failed: %s", raw ? raw : "(null)", err.message);
	ck_assert_int_eq(err.status, 0);
}

/* The query must fail with exactly this 400 message and leave q in its default state. */
static void session_err(const char *raw, const char *msg)
{
	struct sg_session_query q;
	struct sg_error err = {0};

	ck_assert_msg(sg_session_query_parse(raw, &q, &err) == -1, "'%.80s' was accepted", raw);
	ck_assert_int_eq(err.status, 400);
	ck_assert_str_eq(err.type, "invalid_request_error");
	ck_assert_msg(strcmp(err.message, msg) == 0, "'%.80s': got \"%s\", want \"%s\"", raw,
	              err.message, msg);
	ck_assert_ptr_null(q.agent_id);
	ck_assert_ptr_null(q.deployment_id);
	ck_assert_ptr_null(q.memory_store_id);
	ck_assert_ptr_null(q.page);
	ck_assert_int_eq(q.limit, SG_LIST_LIMIT_DEFAULT);
	sg_session_query_clear(&q);
}

static void event_err(const char *raw, const char *msg)
{
	struct sg_event_query q;
	struct sg_error err = {0};

	ck_assert_msg(sg_event_query_parse(raw, &q, &err) == -1, "'%.80s' was accepted", raw);
	ck_assert_int_eq(err.status, 400);
	ck_assert_str_eq(err.type, "invalid_request_error");
	ck_assert_msg(strcmp(err.message, msg) == 0, "'%.80s': got \"%s\", want \"%s\"", raw,
	              err.message, msg);
	ck_assert_uint_eq(q.ntypes, 0);
	ck_assert_ptr_null(q.page);
	ck_assert_int_eq(q.limit, SG_EVENTS_LIMIT_DEFAULT);
	sg_event_query_clear(&q);
}

static void assert_range_eq(const struct sg_time_range *a, const struct sg_time_range *b)
{
	ck_assert_uint_eq(a->has_gt, b->has_gt);
	ck_assert_uint_eq(a->has_gte, b->has_gte);
	ck_assert_uint_eq(a->has_lt, b->has_lt);
	ck_assert_uint_eq(a->has_lte, b->has_lte);
	if (a->has_gt)
		ck_assert_int_eq(a->gt, b->gt);
	if (a->has_gte)
		ck_assert_int_eq(a->gte, b->gte);
	if (a->has_lt)
		ck_assert_int_eq(a->lt, b->lt);
	if (a->has_lte)
		ck_assert_int_eq(a->lte, b->lte);
}

static char *session_fp(const char *raw)
{
	struct sg_session_query q;
	char *fp;

	parse_session_ok(raw, &q);
	fp = sg_session_query_fingerprint(&q);
	ck_assert_ptr_nonnull(fp);
	sg_session_query_clear(&q);
	return fp;
}

static char *event_fp(const char *raw)
{
	struct sg_event_query q;
	char *fp;

	parse_event_ok(raw, &q);
	fp = sg_event_query_fingerprint(&q);
	ck_assert_ptr_nonnull(fp);
	sg_event_query_clear(&q);
	return fp;
}

/* Two spellings of the same request: equal structs (every field) and equal fingerprints. */
static void same_session(const char *a, const char *b)
{
	struct sg_session_query qa, qb;
	char *fa, *fb;

	parse_session_ok(a, &qa);
	parse_session_ok(b, &qb);
	ck_assert_msg(str_eq(qa.agent_id, qb.agent_id), "agent_id: '%s' vs '%s'", a, b);
	ck_assert_int_eq(qa.agent_version, qb.agent_version);
	ck_assert_msg(str_eq(qa.deployment_id, qb.deployment_id), "deployment_id: %s vs %s", a, b);
	ck_assert_msg(str_eq(qa.memory_store_id, qb.memory_store_id), "memory_store_id: %s vs %s",
	              a, b);
	assert_range_eq(&qa.created, &qb.created);
	ck_assert_int_eq(qa.include_archived, qb.include_archived);
	ck_assert_int_eq(qa.order_asc, qb.order_asc);
	ck_assert_uint_eq(qa.statuses, qb.statuses);
	ck_assert_int_eq(qa.limit, qb.limit);
	ck_assert_msg(str_eq(qa.page, qb.page), "page: %s vs %s", a, b);
	fa = sg_session_query_fingerprint(&qa);
	fb = sg_session_query_fingerprint(&qb);
	ck_assert_str_eq(fa, fb);
	free(fa);
	free(fb);
	sg_session_query_clear(&qa);
	sg_session_query_clear(&qb);
}

static void same_event(const char *a, const char *b)
{
	struct sg_event_query qa, qb;
	char *fa, *fb;
	size_t i;

	parse_event_ok(a, &qa);
	parse_event_ok(b, &qb);
	assert_range_eq(&qa.created, &qb.created);
	ck_assert_int_eq(qa.order_desc, qb.order_desc);
	ck_assert_uint_eq(qa.ntypes, qb.ntypes);
	for (i = 0; i < qa.ntypes; i++)
		ck_assert_str_eq(qa.types[i], qb.types[i]);
	ck_assert_int_eq(qa.limit, qb.limit);
	ck_assert_msg(str_eq(qa.page, qb.page), "page: %s vs %s", a, b);
	fa = sg_event_query_fingerprint(&qa);
	fb = sg_event_query_fingerprint(&qb);
	ck_assert_str_eq(fa, fb);
	free(fa);
	free(fb);
	sg_event_query_clear(&qa);
	sg_event_query_clear(&qb);
}

/* ---- sessions: defaults and the SDK's own wire strings ---- */

START_TEST(test_session_defaults)
{
	const char *raws[] = {NULL, "", "&", "&&=&"};
	size_t i;

	for (i = 0; i < sizeof(raws) / sizeof(raws[0]); i++) {
		struct sg_session_query q;
		char *fp;

		parse_session_ok(raws[i], &q);
		ck_assert_ptr_null(q.agent_id);
		ck_assert_int_eq(q.agent_version, -1);
		ck_assert_ptr_null(q.deployment_id);
		ck_assert_ptr_null(q.memory_store_id);
		ck_assert_uint_eq(
		    q.created.has_gt | q.created.has_gte | q.created.has_lt | q.created.has_lte, 0);
		ck_assert_int_eq(q.include_archived, 0);
		ck_assert_int_eq(q.order_asc, 0);
		ck_assert_uint_eq(q.statuses, 0);
		ck_assert_int_eq(q.limit, 20);
		ck_assert_ptr_null(q.page);
		fp = sg_session_query_fingerprint(&q);
		ck_assert_str_eq(fp, "v1|agent=-|ver=-|dep=-|mem=-|gt=-|gte=-|lt=-|lte=-|arch=0|"
		                     "order=desc|st=0");
		free(fp);
		sg_session_query_clear(&q);
	}
}
END_TEST

/* SDK: {statuses: ['idle','running'], 'created_at[gte]': new Date(…), order: 'asc', limit: 7,
 * page: 'page_abc'} */
START_TEST(test_session_sdk_wire)
{
	struct sg_session_query q;
	char *fp;

	parse_session_ok("statuses%5B%5D=idle&statuses%5B%5D=running&created_at%5Bgte%5D=2026-01-"
	                 "02T03%3A04%3A05.000Z&order=asc&limit=7&page=page_abc",
	                 &q);
	ck_assert_uint_eq(q.statuses, SG_STATUS_IDLE | SG_STATUS_RUNNING);
	ck_assert_uint_eq(q.created.has_gte, 1);
	ck_assert_uint_eq(q.created.has_gt | q.created.has_lt | q.created.has_lte, 0);
	ck_assert_int_eq(q.created.gte, US(T_0102));
	ck_assert_int_eq(q.order_asc, 1);
	ck_assert_int_eq(q.limit, 7);
	ck_assert_str_eq(q.page, "page_abc");
	ck_assert_ptr_null(q.agent_id);
	ck_assert_int_eq(q.agent_version, -1);
	fp = sg_session_query_fingerprint(&q);
	ck_assert_str_eq(fp, "v1|agent=-|ver=-|dep=-|mem=-|gt=-|gte=1767323045000000|lt=-|lte=-|"
	                     "arch=0|order=asc|st=6");
	free(fp);
	sg_session_query_clear(&q);
}
END_TEST

/* SDK: {agent_id: 'agent a&b+c', agent_version: 2, include_archived: true,
 * deployment_id: null, 'created_at[lt]': '2026-01-01T00:00:00+08:00'} */
START_TEST(test_session_sdk_wire_scalars)
{
	struct sg_session_query q;
	char *fp;

	parse_session_ok("agent_id=agent%20a%26b%2Bc&agent_version=2&include_archived=true&"
	                 "deployment_id=&created_at%5Blt%5D=2026-01-01T00%3A00%3A00%2B08%3A00",
	                 &q);
	ck_assert_str_eq(q.agent_id, "agent a&b+c");
	ck_assert_int_eq(q.agent_version, 2);
	ck_assert_int_eq(q.include_archived, 1);
	ck_assert_ptr_null(q.deployment_id);
	ck_assert_uint_eq(q.created.has_lt, 1);
	ck_assert_int_eq(q.created.lt, US(T_1231_16));
	ck_assert_int_eq(q.order_asc, 0);
	ck_assert_int_eq(q.limit, 20);
	fp = sg_session_query_fingerprint(&q);
	ck_assert_str_eq(fp, "v1|agent=11:agent a&b+c|ver=2|dep=-|mem=-|gt=-|gte=-|"
	                     "lt=1767196800000000|lte=-|arch=1|order=desc|st=0");
	free(fp);
	sg_session_query_clear(&q);
}
END_TEST

/* As a curl user types it: plain key, unencoded ':' and '+'. */
START_TEST(test_session_curl_style)
{
	struct sg_session_query q;

	parse_session_ok("statuses=idle&created_at_gte=2026-01-01T00:00:00+08:00", &q);
	ck_assert_uint_eq(q.statuses, SG_STATUS_IDLE);
	ck_assert_uint_eq(q.created.has_gte, 1);
	ck_assert_int_eq(q.created.gte, US(T_1231_16));
	sg_session_query_clear(&q);
	same_session("statuses=idle&created_at_gte=2026-01-01T00:00:00+08:00",
	             "statuses%5B%5D=idle&created_at%5Bgte%5D=2026-01-01T00%3A00%3A00%2B08%3A00");
}
END_TEST

START_TEST(test_session_all_filters)
{
	struct sg_session_query q;
	char *fp;

	parse_session_ok("agent_id=agent_1&agent_version=0&deployment_id=dep_9&memory_store_id=ms_"
	                 "x&created_at[gt]=2026-01-01T00:00:00Z&created_at[gte]=2026-01-01T00:00:"
	                 "00.5Z&created_at[lt]=2026-01-02T03:04:05Z&created_at[lte]=2026-01-02T03:"
	                 "04:05.123456Z&include_archived=false&order=desc&statuses[]=rescheduling&"
	                 "statuses[]=terminated&limit=100&page=p",
	                 &q);
	ck_assert_str_eq(q.agent_id, "agent_1");
	ck_assert_int_eq(q.agent_version, 0);
	ck_assert_str_eq(q.deployment_id, "dep_9");
	ck_assert_str_eq(q.memory_store_id, "ms_x");
	ck_assert_int_eq(q.created.gt, US(T_0101));
	ck_assert_int_eq(q.created.gte, US(T_0101) + 500000);
	ck_assert_int_eq(q.created.lt, US(T_0102));
	ck_assert_int_eq(q.created.lte, US(T_0102) + 123456);
	ck_assert_uint_eq(
	    q.created.has_gt & q.created.has_gte & q.created.has_lt & q.created.has_lte, 1);
	ck_assert_int_eq(q.include_archived, 0);
	ck_assert_int_eq(q.order_asc, 0);
	ck_assert_uint_eq(q.statuses, SG_STATUS_RESCHEDULING | SG_STATUS_TERMINATED);
	ck_assert_int_eq(q.limit, 100);
	ck_assert_str_eq(q.page, "p");
	fp = sg_session_query_fingerprint(&q);
	ck_assert_str_eq(fp, "v1|agent=7:agent_1|ver=0|dep=5:dep_9|mem=4:ms_x|gt=1767225600000000|"
	                     "gte=1767225600500000|lt=1767323045000000|lte=1767323045123456|arch=0|"
	                     "order=desc|st=9");
	free(fp);
	sg_session_query_clear(&q);
}
END_TEST

/* ---- sessions: every parameter in every spelling ---- */

START_TEST(test_session_spellings)
{
	static const char *const groups[][8] = {
	    {"statuses[]=idle&statuses[]=running", "statuses%5B%5D=idle&statuses%5B%5D=running",
	     "statuses%5b%5d=idle&statuses%5b%5d=running", "statuses=idle&statuses=running",
	     "statuses=idle,running", "statuses%5B0%5D=idle&statuses%5B1%5D=running",
	     "statuses[]=running,idle&statuses=idle", "statuses=idle,,running,"},
	    {"created_at[gt]=2026-01-01T00:00:00Z", "created_at_gt=2026-01-01T00:00:00Z",
	     "created_at%5Bgt%5D=2026-01-01T00%3A00%3A00Z",
	     "created_at_gt=2026-01-01T08:00:00+08:00",
	     "created_at%5Fgt=2026-01-01T00:00:00.000000Z",
	     "created_at[gt]=2025-12-31T19:00:00-05:00", NULL},
	    {"created_at[gte]=2026-01-01T00:00:00Z", "created_at_gte=2026-01-01T00:00:00Z",
	     "created_at%5Bgte%5D=2026-01-01T00%3A00%3A00.000Z",
	     "created_at_gte=2026-01-01T08:00:00%2B08:00", NULL},
	    {"created_at[lt]=2026-01-01T00:00:00Z", "created_at_lt=2026-01-01T00:00:00Z",
	     "created_at%5Blt%5D=2026-01-01T00%3A00%3A00Z", NULL},
	    {"created_at[lte]=2026-01-01T00:00:00Z", "created_at_lte=2026-01-01T00:00:00Z",
	     "created_at%5Blte%5D=2026-01-01T00%3A00%3A00Z", NULL},
	    {"include_archived=true", "include_archived=TRUE", "include_archived=True",
	     "include_archived=1", "include%5Farchived=true", NULL},
	    {"include_archived=false", "include_archived=FALSE", "include_archived=0", "",
	     "include_archived=", NULL},
	    {"agent_id=agent_1&agent_version=2", "agent_version=2&agent_id=agent_1",
	     "agent%5Fid=agent%5F1&agent_version=02", "agent_id=%61gent_1&agent_version=2", NULL},
	    {"deployment_id=d%2F1", "deployment_id=d/1", "deployment%5Fid=d%2f1", NULL},
	    {"memory_store_id=ms+1", "memory_store_id=ms%2B1", NULL},
	    {"order=asc&limit=5&page=abc", "page=abc&order=asc&limit=5",
	     "page=abc&order=asc&limit=005", "order=asc&limit=5&page=%61bc", NULL},
	    {"order=desc", "", "order=", NULL},
	    {"limit=20", "", "limit=", NULL},
	    {"agent_version=", "", "statuses[]=", "unknown=1&foo", NULL},
	};
	size_t g, i;

	for (g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		for (i = 1; i < 8 && groups[g][i]; i++)
			same_session(groups[g][0], groups[g][i]);
}
END_TEST

START_TEST(test_session_plus_and_escapes)
{
	struct sg_session_query q;

	parse_session_ok("agent_id=a+b%20c%25d%3D%26&page=x%3Dy", &q);
	ck_assert_str_eq(q.agent_id, "a+b c%d=&");
	ck_assert_str_eq(q.page, "x=y");
	sg_session_query_clear(&q);

	/* A value may itself contain '=' unencoded. */
	parse_session_ok("page=a=b", &q);
	ck_assert_str_eq(q.page, "a=b");
	sg_session_query_clear(&q);
}
END_TEST

START_TEST(test_session_empty_means_absent)
{
	struct sg_session_query q;

	/* The SDK sends null as `key=`; an empty occurrence does not count as given. */
	parse_session_ok("limit=&limit=5&page=&page=p&order=&order=asc&created_at_gt=&"
	                 "created_at[gt]=2026-01-01T00:00:00Z&created_at[gt]=",
	                 &q);
	ck_assert_int_eq(q.limit, 5);
	ck_assert_str_eq(q.page, "p");
	ck_assert_int_eq(q.order_asc, 1);
	ck_assert_uint_eq(q.created.has_gt, 1);
	ck_assert_int_eq(q.created.gt, US(T_0101));
	sg_session_query_clear(&q);
}
END_TEST

START_TEST(test_session_unknown_ignored)
{
	struct sg_session_query q;

	/* Unknown keys are ignored, values and all; so are event-only parameters. */
	parse_session_ok("foo=%zz&bar&types[]=nope&statuses[x]=paused&created_at[eq]=x&"
	                 "created_at=y&limit_=0&Limit=0&event_deltas%5B%5D=z&limit=3",
	                 &q);
	ck_assert_int_eq(q.limit, 3);
	ck_assert_uint_eq(q.statuses, 0);
	ck_assert_uint_eq(
	    q.created.has_gt | q.created.has_gte | q.created.has_lt | q.created.has_lte, 0);
	sg_session_query_clear(&q);
}
END_TEST

START_TEST(test_session_limits_bounds)
{
	struct sg_session_query q;
	char *raw;
	size_t i;

	parse_session_ok("limit=1", &q);
	ck_assert_int_eq(q.limit, 1);
	sg_session_query_clear(&q);
	parse_session_ok("limit=100", &q);
	ck_assert_int_eq(q.limit, 100);
	sg_session_query_clear(&q);
	parse_session_ok("agent_version=9223372036854775807", &q);
	ck_assert_int_eq(q.agent_version, INT64_MAX);
	sg_session_query_clear(&q);

	/* Exactly 16 KiB is accepted, one byte more is not. */
	raw = malloc(16384 + 2);
	ck_assert_ptr_nonnull(raw);
	memset(raw, 'x', 16384 + 1);
	memcpy(raw, "page=", 5);
	raw[16384] = '\0';
	parse_session_ok(raw, &q);
	ck_assert_uint_eq(strlen(q.page), 16384 - 5);
	sg_session_query_clear(&q);
	raw[16384] = 'x';
	raw[16385] = '\0';
	session_err(raw, "query: longer than 16384 bytes");
	free(raw);

	/* 256 parameters are accepted, 257 are not. */
	raw = malloc(257 * 4 + 1);
	ck_assert_ptr_nonnull(raw);
	for (i = 0; i < 256; i++)
		memcpy(raw + i * 4, "a=1&", 4);
	raw[256 * 4 - 1] = '\0';
	parse_session_ok(raw, &q);
	sg_session_query_clear(&q);
	raw[256 * 4 - 1] = '&';
	memcpy(raw + 256 * 4, "a=1", 4);
	session_err(raw, "query: more than 256 parameters");
	free(raw);
}
END_TEST

/* ---- sessions: every bad value, with the parameter named as the client spelled it ---- */

START_TEST(test_session_errors)
{
	static const char *const limit_bad[] = {"0",    "101",  "-1",   "abc",
	                                        "1e2",  "%2B5", "+5",   "%205",
	                                        "5%20", "1.0",  "0x10", "99999999999999999999"};
	static const char *const version_bad[] = {
	    "-1", "x", "1.5", "%2B1", "1e3", "9223372036854775808", " 1"};
	char raw[128], msg[256];
	size_t i;

	snprintf(msg, sizeof(msg), "statuses[]: unknown status 'paused' %s", status_msg_tail);
	session_err("statuses[]=paused", msg);
	session_err("statuses%5B%5D=idle&statuses%5B%5D=paused", msg);
	snprintf(msg, sizeof(msg), "statuses: unknown status 'paused' %s", status_msg_tail);
	session_err("statuses=idle,paused", msg);
	snprintf(msg, sizeof(msg), "statuses[0]: unknown status 'Idle' %s", status_msg_tail);
	session_err("statuses%5B0%5D=Idle", msg);
	snprintf(msg, sizeof(msg), "statuses: unknown status ' running' %s", status_msg_tail);
	session_err("statuses=idle,%20running", msg);
	/* Client text in messages: printable ASCII only, and truncated. */
	snprintf(msg, sizeof(msg), "statuses: unknown status 'a?b\"' %s", status_msg_tail);
	session_err("statuses=a%0Ab%22", msg);
	snprintf(msg, sizeof(msg), "statuses: unknown status '%s...' %s",
	         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", status_msg_tail);
	session_err("statuses=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	            msg);

	session_err("created_at[gte]=yesterday", "created_at[gte]: not an RFC 3339 timestamp");
	session_err("created_at%5Bgte%5D=2026-01-01", "created_at[gte]: not an RFC 3339 timestamp");
	session_err("created_at_gt=2026-13-01T00:00:00Z",
	            "created_at_gt: not an RFC 3339 timestamp");
	session_err("created_at_lt=2026-01-01T00:00:00",
	            "created_at_lt: not an RFC 3339 timestamp");
	session_err("created_at%5Blte%5D=1767225600", "created_at[lte]: not an RFC 3339 timestamp");

	for (i = 0; i < sizeof(limit_bad) / sizeof(limit_bad[0]); i++) {
		snprintf(raw, sizeof(raw), "limit=%s", limit_bad[i]);
		session_err(raw, "limit: must be an integer between 1 and 100");
	}
	for (i = 0; i < sizeof(version_bad) / sizeof(version_bad[0]); i++) {
		snprintf(raw, sizeof(raw), "agent_id=a&agent_version=%s", version_bad[i]);
		session_err(raw, "agent_version: must be a non-negative integer");
	}
	session_err("order=ascending", "order: must be asc or desc");
	session_err("order=ASC", "order: must be asc or desc");
	session_err("order=newest", "order: must be asc or desc");
	session_err("include_archived=yes", "include_archived: must be true or false");
	session_err("include_archived=2", "include_archived: must be true or false");
	session_err("include%5Farchived=on", "include_archived: must be true or false");

	session_err("limit=5&limit=6", "limit: given more than once");
	session_err("limit=5&limit=5", "limit: given more than once");
	session_err("page=a&page=b", "page: given more than once");
	session_err("order=asc&order=desc", "order: given more than once");
	session_err("agent_id=a&agent%5Fid=a", "agent_id: given more than once");
	session_err("agent_version=1&agent_version=2", "agent_version: given more than once");
	session_err("deployment_id=a&deployment_id=b", "deployment_id: given more than once");
	session_err("memory_store_id=a&memory_store_id=b", "memory_store_id: given more than once");
	session_err("include_archived=true&include_archived=1",
	            "include_archived: given more than once");
	session_err("created_at_gt=2026-01-01T00:00:00Z&created_at_gt=2026-01-01T00:00:00Z",
	            "created_at_gt: given more than once");
	session_err("created_at[gte]=2026-01-01T00:00:00Z&created_at_gte=2026-01-01T00:00:00Z",
	            "created_at_gte: given more than once (also as created_at[gte])");
	session_err("created_at_lte=2026-01-01T00:00:00Z&created_at%5Blte%5D=2026-01-02T00:00:00Z",
	            "created_at[lte]: given more than once (also as created_at_lte)");

	session_err("agent_id=%zz", "agent_id: invalid percent-encoding");
	session_err("page=abc%0", "page: invalid percent-encoding");
	session_err("limit=%", "limit: invalid percent-encoding");
	session_err("statuses%5B%5D=%G1dle", "statuses[]: invalid percent-encoding");
	session_err("created_at_gte=2026-01-01T00%3A00%3A00%2", "created_at_gte: invalid "
	                                                        "percent-encoding");
	session_err("agent_id=a%00b", "agent_id: contains a NUL character");
	session_err("created_at%5gte%5D=2026-01-01T00:00:00Z",
	            "created_at%5gte%5D: invalid percent-encoding in the parameter name");
	session_err("statuses%5B%5=idle",
	            "statuses%5B%5: invalid percent-encoding in the parameter name");
	session_err("limit=5&x%zz", "x%zz: invalid percent-encoding in the parameter name");
}
END_TEST

/* ---- events ---- */

START_TEST(test_event_defaults)
{
	struct sg_event_query q;
	char *fp;

	parse_event_ok(NULL, &q);
	ck_assert_int_eq(q.order_desc, 0);
	ck_assert_uint_eq(q.ntypes, 0);
	ck_assert_int_eq(q.limit, 1000);
	ck_assert_ptr_null(q.page);
	ck_assert_uint_eq(
	    q.created.has_gt | q.created.has_gte | q.created.has_lt | q.created.has_lte, 0);
	fp = sg_event_query_fingerprint(&q);
	ck_assert_str_eq(fp, "v1|ev|gt=-|gte=-|lt=-|lte=-|order=asc|types=-");
	free(fp);
	sg_event_query_clear(&q);
}
END_TEST

/* SDK: {types: ['user.message', 'agent.message'], limit: 1000} */
START_TEST(test_event_sdk_wire)
{
	struct sg_event_query q;
	char *fp;

	parse_event_ok("types%5B%5D=user.message&types%5B%5D=agent.message&limit=1000", &q);
	ck_assert_uint_eq(q.ntypes, 2);
	ck_assert_str_eq(q.types[0], "user.message");
	ck_assert_str_eq(q.types[1], "agent.message");
	ck_assert_int_eq(q.limit, 1000);
	fp = sg_event_query_fingerprint(&q);
	ck_assert_str_eq(fp, "v1|ev|gt=-|gte=-|lt=-|lte=-|order=asc|types=user.message,agent."
	                     "message");
	free(fp);
	sg_event_query_clear(&q);

	parse_event_ok("created_at%5Bgt%5D=2026-01-02T03%3A04%3A05.000Z&order=desc&"
	               "types%5B%5D=session.status_idle&limit=10&page=page_x",
	               &q);
	ck_assert_uint_eq(q.created.has_gt, 1);
	ck_assert_int_eq(q.created.gt, US(T_0102));
	ck_assert_int_eq(q.order_desc, 1);
	ck_assert_uint_eq(q.ntypes, 1);
	ck_assert_str_eq(q.types[0], "session.status_idle");
	ck_assert_int_eq(q.limit, 10);
	ck_assert_str_eq(q.page, "page_x");
	fp = sg_event_query_fingerprint(&q);
	ck_assert_str_eq(fp, "v1|ev|gt=1767323045000000|gte=-|lt=-|lte=-|order=desc|"
	                     "types=session.status_idle");
	free(fp);
	sg_event_query_clear(&q);
}
END_TEST

START_TEST(test_event_spellings)
{
	static const char *const groups[][7] = {
	    {"types[]=user.message&types[]=agent.message",
	     "types%5B%5D=user.message&types%5B%5D=agent.message",
	     "types=user.message&types=agent.message", "types=user.message,agent.message",
	     "types%5B0%5D=user.message&types%5B1%5D=agent.message",
	     "types=user.message&types[]=agent.message,user.message&types=agent.message", NULL},
	    {"created_at[lte]=2026-01-01T00:00:00Z", "created_at_lte=2026-01-01T00:00:00Z",
	     "created_at%5Blte%5D=2026-01-01T09:00:00%2B09:00", NULL},
	    {"created_at[gt]=2026-01-01T00:00:00Z&created_at[lt]=2026-01-02T03:04:05Z",
	     "created_at_lt=2026-01-02T03:04:05Z&created_at_gt=2026-01-01T00:00:00Z", NULL},
	    {"", "order=asc", "limit=1000", "types[]=", "agent_id=x&statuses=paused", NULL},
	    {"order=desc&limit=1", "limit=1&order=desc", "limit=0001&order=desc", NULL},
	};
	size_t g, i;
	char *a, *b;

	for (g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		for (i = 1; i < 7 && groups[g][i]; i++)
			same_event(groups[g][0], groups[g][i]);

	/* The order of the listed types does not change the filter. */
	a = event_fp("types[]=agent.message&types[]=user.message");
	b = event_fp("types[]=user.message&types[]=agent.message&types[]=user.message");
	ck_assert_str_eq(a, b);
	ck_assert_str_eq(a, "v1|ev|gt=-|gte=-|lt=-|lte=-|order=asc|types=user.message,agent."
	                    "message");
	free(a);
	free(b);
}
END_TEST

START_TEST(test_event_all_types)
{
	static const char *const all =
	    "user.message,user.interrupt,user.tool_confirmation,user.custom_tool_result,"
	    "agent.custom_tool_use,agent.message,agent.thinking,agent.mcp_tool_use,"
	    "agent.mcp_tool_result,agent.tool_use,agent.tool_result,"
	    "agent.thread_message_received,agent.thread_message_sent,"
	    "agent.thread_context_compacted,session.error,session.status_rescheduled,"
	    "session.status_running,session.status_idle,session.status_terminated,"
	    "session.thread_created,span.outcome_evaluation_start,"
	    "span.outcome_evaluation_end,span.model_request_start,span.model_request_end,"
	    "span.outcome_evaluation_ongoing,user.define_outcome,"
	    "session.thread_status_running,session.thread_status_idle,"
	    "session.thread_status_terminated,user.tool_result,"
	    "session.thread_status_rescheduled,session.updated,system.message,session.usage,"
	    "workflow_run.created,workflow_run.status_running,workflow_run.status_idle,"
	    "workflow_run.status_ended,workflow_run.error,workflow_run.phase_started,"
	    "workflow_run.phase_ended";
	struct sg_event_query q;
	char raw[2048], expect[2048];
	char *fp;
	size_t i;

	snprintf(raw, sizeof(raw), "types=%s", all);
	parse_event_ok(raw, &q);
	ck_assert_uint_eq(q.ntypes, 41);
	for (i = 0; i < q.ntypes; i++)
		ck_assert(sg_event_type_known(q.types[i]));
	ck_assert_str_eq(q.types[0], "user.message");
	ck_assert_str_eq(q.types[40], "workflow_run.phase_ended");
	fp = sg_event_query_fingerprint(&q);
	snprintf(expect, sizeof(expect), "v1|ev|gt=-|gte=-|lt=-|lte=-|order=asc|types=%s", all);
	ck_assert_str_eq(fp, expect);
	free(fp);
	sg_event_query_clear(&q);
}
END_TEST

START_TEST(test_event_errors)
{
	static const char *const limit_bad[] = {"0", "1001", "-1", "abc", "1e3", "10000"};
	char raw[64];
	size_t i;

	event_err("types[]=foo.bar", "types[]: unknown event type 'foo.bar'");
	event_err("types%5B%5D=user.message&types%5B%5D=event_delta",
	          "types[]: unknown event type 'event_delta'");
	event_err("types=user.message,User.Message", "types: unknown event type 'User.Message'");
	event_err("types%5B3%5D=session.status_paused",
	          "types[3]: unknown event type 'session.status_paused'");
	event_err("types=%zz", "types: invalid percent-encoding");
	for (i = 0; i < sizeof(limit_bad) / sizeof(limit_bad[0]); i++) {
		snprintf(raw, sizeof(raw), "limit=%s", limit_bad[i]);
		event_err(raw, "limit: must be an integer between 1 and 1000");
	}
	event_err("order=up", "order: must be asc or desc");
	event_err("created_at%5Blt%5D=nope", "created_at[lt]: not an RFC 3339 timestamp");
	event_err("created_at_gte=2026-01-01T00:00:00Z&created_at[gte]=2026-01-01T00:00:00Z",
	          "created_at[gte]: given more than once (also as created_at_gte)");
	event_err("page=a&page=a", "page: given more than once");
	event_err("limit=1&limit=2", "limit: given more than once");
	event_err("types[]=user.message&page=%0", "page: invalid percent-encoding");
}
END_TEST

/* ---- fingerprints ---- */

START_TEST(test_session_fingerprint_distinct)
{
	/* Each differs from every other in at least one filter. */
	static const char *const variants[] = {
	    "",
	    "agent_id=a",
	    "agent_id=b",
	    "agent_id=a&agent_version=0",
	    "agent_id=a&agent_version=1",
	    "agent_version=1",
	    "deployment_id=a",
	    "memory_store_id=a",
	    "agent_id=a%7Cdep%3D1%3Ab",
	    "agent_id=a&deployment_id=b",
	    "agent_id=1%3Aa",
	    "agent_id=-",
	    "created_at_gt=2026-01-01T00:00:00Z",
	    "created_at_gte=2026-01-01T00:00:00Z",
	    "created_at_lt=2026-01-01T00:00:00Z",
	    "created_at_lte=2026-01-01T00:00:00Z",
	    "created_at_lte=2026-01-01T00:00:00.000001Z",
	    "include_archived=true",
	    "order=asc",
	    "statuses=idle",
	    "statuses=running",
	    "statuses=idle,running",
	    "statuses=rescheduling,running,idle,terminated",
	};
	const size_t n = sizeof(variants) / sizeof(variants[0]);
	char *fp[sizeof(variants) / sizeof(variants[0])];
	size_t i, j;

	for (i = 0; i < n; i++)
		fp[i] = session_fp(variants[i]);
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			ck_assert_msg(strcmp(fp[i], fp[j]) != 0, "'%s' and '%s' share '%s'",
			              variants[i], variants[j], fp[i]);
	for (i = 0; i < n; i++)
		free(fp[i]);
}
END_TEST

START_TEST(test_session_fingerprint_ignores_paging)
{
	static const char *const base = "agent_id=a&statuses[]=idle&created_at[gte]=2026-01-01T00:"
	                                "00:00Z&order=asc";
	char *a = session_fp(base);
	char *b = session_fp("page=page_A&limit=3&order=asc&created_at_gte=2026-01-01T08:00:00+"
	                     "08:00&statuses=idle&agent_id=a");
	char *c = session_fp("agent_id=a&statuses[]=idle&created_at[gte]=2026-01-01T00:00:00Z&"
	                     "order=asc&limit=100&page=page_B");

	ck_assert_str_eq(a, b);
	ck_assert_str_eq(a, c);
	ck_assert_str_eq(a, "v1|agent=1:a|ver=-|dep=-|mem=-|gt=-|gte=1767225600000000|lt=-|lte=-|"
	                    "arch=0|order=asc|st=4");
	free(a);
	free(b);
	free(c);
}
END_TEST

START_TEST(test_event_fingerprint)
{
	static const char *const variants[] = {
	    "",
	    "order=desc",
	    "types=user.message",
	    "types=agent.message",
	    "types=user.message,agent.message",
	    "created_at_gt=2026-01-01T00:00:00Z",
	    "created_at_gte=2026-01-01T00:00:00Z",
	    "created_at_lt=2026-01-01T00:00:00Z",
	    "created_at_lte=2026-01-01T00:00:00Z",
	};
	const size_t n = sizeof(variants) / sizeof(variants[0]);
	char *fp[sizeof(variants) / sizeof(variants[0])];
	char *a, *b;
	size_t i, j;

	for (i = 0; i < n; i++)
		fp[i] = event_fp(variants[i]);
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			ck_assert_msg(strcmp(fp[i], fp[j]) != 0, "'%s' and '%s' share '%s'",
			              variants[i], variants[j], fp[i]);
	for (i = 0; i < n; i++)
		free(fp[i]);

	a = event_fp("types[]=agent.message&order=desc");
	b = event_fp("order=desc&types=agent.message&limit=5&page=page_Q");
	ck_assert_str_eq(a, b);
	free(a);
	free(b);

	/* A sessions fingerprint never equals an events one. */
	a = session_fp("");
	b = event_fp("");
	ck_assert_str_ne(a, b);
	free(a);
	free(b);
}
END_TEST

/* ---- small helpers ---- */

START_TEST(test_status_strings)
{
	static const char *const names[] = {"rescheduling", "running", "idle", "terminated"};
	static const unsigned bits[] = {SG_STATUS_RESCHEDULING, SG_STATUS_RUNNING, SG_STATUS_IDLE,
	                                SG_STATUS_TERMINATED};
	size_t i;

	for (i = 0; i < 4; i++) {
		ck_assert_uint_eq(sg_status_from_string(names[i]), bits[i]);
		ck_assert_str_eq(sg_status_to_string(bits[i]), names[i]);
	}
	ck_assert_uint_eq(bits[0] | bits[1] | bits[2] | bits[3], 15);
	ck_assert_uint_eq(sg_status_from_string("paused"), 0);
	ck_assert_uint_eq(sg_status_from_string("Idle"), 0);
	ck_assert_uint_eq(sg_status_from_string(""), 0);
	ck_assert_uint_eq(sg_status_from_string(NULL), 0);
	ck_assert_ptr_null(sg_status_to_string(0));
	ck_assert_ptr_null(sg_status_to_string(SG_STATUS_IDLE | SG_STATUS_RUNNING));
	ck_assert_ptr_null(sg_status_to_string(1u << 4));
}
END_TEST

START_TEST(test_event_type_known)
{
	ck_assert_int_eq(sg_event_type_known("user.message"), 1);
	ck_assert_int_eq(sg_event_type_known("session.status_idle"), 1);
	ck_assert_int_eq(sg_event_type_known("span.model_request_end"), 1);
	ck_assert_int_eq(sg_event_type_known("session.thread_status_rescheduled"), 1);
	ck_assert_int_eq(sg_event_type_known("workflow_run.phase_ended"), 1);
	ck_assert_int_eq(sg_event_type_known("session.deleted"), 0); /* not in 1.10.0's union */
	ck_assert_int_eq(sg_event_type_known("event_start"), 0);
	ck_assert_int_eq(sg_event_type_known("event_delta"), 0);
	ck_assert_int_eq(sg_event_type_known("user.message "), 0);
	ck_assert_int_eq(sg_event_type_known("user"), 0);
	ck_assert_int_eq(sg_event_type_known(""), 0);
	ck_assert_int_eq(sg_event_type_known(NULL), 0);
}
END_TEST

START_TEST(test_time_range_match)
{
	struct sg_time_range r;

	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(sg_time_range_match(&r, INT64_MIN), 1);
	ck_assert_int_eq(sg_time_range_match(&r, 0), 1);

	r.has_gt = 1;
	r.gt = 100;
	ck_assert_int_eq(sg_time_range_match(&r, 100), 0);
	ck_assert_int_eq(sg_time_range_match(&r, 101), 1);

	memset(&r, 0, sizeof(r));
	r.has_gte = 1;
	r.gte = 100;
	ck_assert_int_eq(sg_time_range_match(&r, 99), 0);
	ck_assert_int_eq(sg_time_range_match(&r, 100), 1);

	memset(&r, 0, sizeof(r));
	r.has_lt = 1;
	r.lt = 100;
	ck_assert_int_eq(sg_time_range_match(&r, 100), 0);
	ck_assert_int_eq(sg_time_range_match(&r, 99), 1);

	memset(&r, 0, sizeof(r));
	r.has_lte = 1;
	r.lte = 100;
	ck_assert_int_eq(sg_time_range_match(&r, 101), 0);
	ck_assert_int_eq(sg_time_range_match(&r, 100), 1);

	/* All four at once: (10, 20) ∩ [12, 18]. */
	r.has_gt = r.has_gte = r.has_lt = r.has_lte = 1;
	r.gt = 10;
	r.gte = 12;
	r.lt = 20;
	r.lte = 18;
	ck_assert_int_eq(sg_time_range_match(&r, 11), 0);
	ck_assert_int_eq(sg_time_range_match(&r, 12), 1);
	ck_assert_int_eq(sg_time_range_match(&r, 18), 1);
	ck_assert_int_eq(sg_time_range_match(&r, 19), 0);

	/* An empty range matches nothing. */
	r.has_gte = r.has_lt = 0;
	r.gt = 50;
	r.lte = 50;
	ck_assert_int_eq(sg_time_range_match(&r, 50), 0);
}
END_TEST

static Suite *query_suite(void)
{
	Suite *s = suite_create("query");
	TCase *tc = tcase_create("sessions");

	tcase_add_test(tc, test_session_defaults);
	tcase_add_test(tc, test_session_sdk_wire);
	tcase_add_test(tc, test_session_sdk_wire_scalars);
	tcase_add_test(tc, test_session_curl_style);
	tcase_add_test(tc, test_session_all_filters);
	tcase_add_test(tc, test_session_spellings);
	tcase_add_test(tc, test_session_plus_and_escapes);
	tcase_add_test(tc, test_session_empty_means_absent);
	tcase_add_test(tc, test_session_unknown_ignored);
	tcase_add_test(tc, test_session_limits_bounds);
	tcase_add_test(tc, test_session_errors);
	tcase_add_test(tc, test_session_fingerprint_distinct);
	tcase_add_test(tc, test_session_fingerprint_ignores_paging);
	suite_add_tcase(s, tc);

	tc = tcase_create("events");
	tcase_add_test(tc, test_event_defaults);
	tcase_add_test(tc, test_event_sdk_wire);
	tcase_add_test(tc, test_event_spellings);
	tcase_add_test(tc, test_event_all_types);
	tcase_add_test(tc, test_event_errors);
	tcase_add_test(tc, test_event_fingerprint);
	suite_add_tcase(s, tc);

	tc = tcase_create("helpers");
	tcase_add_test(tc, test_status_strings);
	tcase_add_test(tc, test_event_type_known);
	tcase_add_test(tc, test_time_range_match);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(query_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
