/* test_integration.c - the real gateway binary in front of fake AgentScope backends on
 * loopback ports: listing, filters, pagination walks over tied timestamps, retrieve, auth,
 * identity, ids, bad input, and failing backends (down / slow / garbage) while other
 * clients are served. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "idcodec.h"

#define N_ALICE 300

static struct h_proc fake, fake_old, fake_slow, fake_garbage, fake_shape, fake_nomsg, gw;
static int down_port;
static json_t *all_desc; /* every session of alice, as the gateway lists them (limit=100) */

static const char *const K_ALICE[] = {"x-api-key: sk-alice", NULL};
static const char *const K_ALICE_BEARER[] = {"Authorization: Bearer sk-alice", NULL};
static const char *const K_BOB[] = {"x-api-key: sk-bob", NULL};

static json_t *backend(const char *name, long timeout_ms)
{
	return json_pack("{s:s, s:s, s:s%, s:I, s:I, s:i, s:{s:s}}", "name", name, "mapping",
	                 "agentscope", "url", "http://127.0.0.1:", 0, "timeout_ms",
	                 (json_int_t)timeout_ms, "connect_timeout_ms", (json_int_t)500, "retries",
	                 1, "options", "timezone", "Asia/Shanghai");
}

static json_t *with_url(json_t *be, int port)
{
	json_object_set_new(be, "url", json_sprintf("http://127.0.0.1:%d", port));
	return be;
}

/* The same fake as "as", through a worker cache of agents and translated listings. */
static json_t *cached_backend(void)
{
	json_t *be = with_url(backend("cached", 3000), fake.port);

	json_object_set_new(json_object_get(be, "options"), "cache_ms", json_integer(60000));
	return be;
}

static json_t *key(const char *name, const char *secret, const char *be, const char *user)
{
	char h[65];

	h_hash_key(secret, h);
	return json_pack("{s:s, s:s, s:{s:{s:s}}}", "name", name, "sha256", h, "backends", be,
	                 "user_id", user);
}

static json_t *gateway_config(void)
{
	return json_pack(
	    "{s:i, s:s, s:i, s:[o,o,o,o,o,o,o,o], s:[o,o,o,o,o,o,o,o,o,o], s:{s:s}}", "workers", 1,
	    "cursor_secret", "integration-test-secret-0123456789abcdef", "shutdown_grace_ms", 3000,
	    "backends", with_url(backend("as", 3000), fake.port),
	    with_url(backend("old", 3000), fake_old.port),
	    with_url(backend("slow", 500), fake_slow.port),
	    with_url(backend("garbage", 3000), fake_garbage.port),
	    with_url(backend("shape", 3000), fake_shape.port),
	    with_url(backend("down", 3000), down_port), cached_backend(),
	    with_url(backend("nomsg", 3000), fake_nomsg.port), "keys",
	    key("alice", "sk-alice", "as", "alice"), key("bob", "sk-bob", "as", "bob"),
	    key("old", "sk-old", "old", "alice"), key("slow", "sk-slow", "slow", "alice"),
	    key("garbage", "sk-garbage", "garbage", "alice"),
	    key("shape", "sk-shape", "shape", "alice"), key("down", "sk-down", "down", "alice"),
	    key("calice", "sk-calice", "cached", "alice"), key("cbob", "sk-cbob", "cached", "bob"),
	    key("nomsg", "sk-nomsg", "nomsg", "alice"), "log", "level", "warn");
}

/* Walks /v1/sessions with `filters` and a page size from limit_of(page number). */
static json_t *walk(const char *filters, const char *const *hdrs, int (*limit_of)(int))
{
	json_t *ids = json_array();
	char *page = NULL;

	for (int n = 0; n < 2000; n++) {
		struct h_res r;
		char path[8192];
		json_t *s, *next;
		size_t i;
		int limit = limit_of(n);

		snprintf(path, sizeof(path), "/v1/sessions?limit=%d%s%s%s%s", limit,
		         *filters ? "&" : "", filters, page ? "&page=" : "", page ? page : "");
		ck_assert_int_eq(h_get(gw.port, path, hdrs, &r), 0);
		ck_assert_msg(r.status == 200, "%s -> %ld %s", path, r.status, r.body);
		ck_assert_int_le(json_array_size(json_object_get(r.json, "data")), limit);
		json_array_foreach(json_object_get(r.json, "data"), i, s)
			json_array_append(ids, s);
		next = json_object_get(r.json, "next_page");
		free(page);
		page = json_is_string(next) ? strdup(json_string_value(next)) : NULL;
		if (!page)
			ck_assert(json_is_null(next));
		ck_assert(json_object_get(r.json, "prev_page") != NULL);
		h_res_free(&r);
		if (!page)
			return ids;
	}
	ck_abort_msg("pagination did not end");
	return NULL;
}

static int limit_100(int n)
{
	(void)n;
	return 100;
}

static unsigned rng = 12345;
static int limit_random(int n)
{
	(void)n;
	rng = rng * 1103515245u + 12345u;
	return 1 + (int)((rng >> 16) % 37);
}

static int cmp_key(const json_t *a, const json_t *b)
{
	int c = strcmp(json_string_value(json_object_get(a, "created_at")),
	               json_string_value(json_object_get(b, "created_at")));

	/* Same-format UTC strings compare like instants only when both have a fraction or
	 * neither; the fake writes microseconds everywhere, so this holds here. */
	return c ? c
	         : strcmp(json_string_value(json_object_get(a, "id")),
	                  json_string_value(json_object_get(b, "id")));
}

static int count_raw_sessions(int port, const char *user)
{
	char uh[128], path[512];
	const char *hdr[] = {uh, NULL};
	struct h_res a;
	json_t *ag;
	size_t i;
	int total = 0;

	snprintf(uh, sizeof(uh), "X-User-ID: %s", user);
	ck_assert_int_eq(h_get(port, "/agent/", hdr, &a), 0);
	json_array_foreach(json_object_get(a.json, "agents"), i, ag) {
		struct h_res s;

		snprintf(path, sizeof(path), "/sessions/?agent_id=%s",
		         json_string_value(json_object_get(ag, "id")));
		ck_assert_int_eq(h_get(port, path, hdr, &s), 0);
		total += (int)json_array_size(json_object_get(s.json, "sessions"));
		h_res_free(&s);
	}
	h_res_free(&a);
	return total;
}

static void setup(void)
{
	const char *a1[] = {"--generate", "300:3", "--seed", "7", "--shape", "head", NULL};
	const char *a2[] = {"--generate", "40:2", "--seed", "3", "--shape", "v2.0.1", NULL};
	const char *a3[] = {"--generate", "10:1", "--mode", "slow", "--delay-ms", "3000", NULL};
	const char *a4[] = {"--generate", "10:1", "--mode", "garbage", NULL};
	const char *a5[] = {"--generate", "10:1", "--mode", "wrong-shape", NULL};
	const char *a6[] = {"--generate", "40:1",   "--seed",        "11",
	                    "--shape",    "v2.0.1", "--no-messages", NULL};
	json_t *cfg;

	ck_assert_int_eq(h_fake_start(&fake, a1), 0);
	ck_assert_int_eq(h_fake_start(&fake_old, a2), 0);
	ck_assert_int_eq(h_fake_start(&fake_slow, a3), 0);
	ck_assert_int_eq(h_fake_start(&fake_garbage, a4), 0);
	ck_assert_int_eq(h_fake_start(&fake_shape, a5), 0);
	ck_assert_int_eq(h_fake_start(&fake_nomsg, a6), 0);
	down_port = h_free_port();
	cfg = gateway_config();
	ck_assert_int_eq(h_gateway_start(&gw, cfg), 0);
	json_decref(cfg);
	all_desc = walk("", K_ALICE, limit_100);
}

static void teardown(void)
{
	json_decref(all_desc);
	h_stop(&gw, 5000);
	h_stop(&fake, 2000);
	h_stop(&fake_old, 2000);
	h_stop(&fake_slow, 2000);
	h_stop(&fake_garbage, 2000);
	h_stop(&fake_shape, 2000);
	h_stop(&fake_nomsg, 2000);
}

START_TEST(list_every_session_once_newest_first)
{
	json_t *seen = json_object(), *s;
	size_t i;

	ck_assert_int_eq(count_raw_sessions(fake.port, "alice"), N_ALICE);
	ck_assert_int_eq(json_array_size(all_desc), N_ALICE);
	json_array_foreach(all_desc, i, s) {
		const char *id = json_string_value(json_object_get(s, "id"));

		ck_assert_ptr_null(json_object_get(seen, id));
		json_object_set_new(seen, id, json_true());
		ck_assert_str_eq(json_string_value(json_object_get(s, "type")), "session");
		if (i > 0)
			ck_assert_int_ge(cmp_key(json_array_get(all_desc, i - 1), s), 0);
	}
	json_decref(seen);
}
END_TEST

START_TEST(ties_exist_in_the_data)
{
	size_t i, ties = 0;

	for (i = 1; i < json_array_size(all_desc); i++)
		ties += strcmp(json_string_value(
		                   json_object_get(json_array_get(all_desc, i - 1), "created_at")),
		               json_string_value(json_object_get(json_array_get(all_desc, i),
		                                                 "created_at"))) == 0;
	ck_assert_int_gt(ties, 50);
}
END_TEST

START_TEST(walk_with_random_limits)
{
	json_t *got;

	rng = 777u + (unsigned)_i;
	got = walk("", K_ALICE, limit_random);
	ck_assert_int_eq(json_array_size(got), N_ALICE);
	for (size_t i = 0; i < N_ALICE; i++)
		ck_assert_str_eq(
		    json_string_value(json_object_get(json_array_get(got, i), "id")),
		    json_string_value(json_object_get(json_array_get(all_desc, i), "id")));
	json_decref(got);
}
END_TEST

START_TEST(walk_ascending)
{
	json_t *got = walk("order=asc", K_ALICE_BEARER, limit_random);

	ck_assert_int_eq(json_array_size(got), N_ALICE);
	for (size_t i = 0; i < N_ALICE; i++)
		ck_assert_str_eq(json_string_value(json_object_get(json_array_get(got, i), "id")),
		                 json_string_value(json_object_get(
		                     json_array_get(all_desc, N_ALICE - 1 - i), "id")));
	json_decref(got);
}
END_TEST

static size_t count_where(const char *field, const char *value)
{
	size_t i, n = 0;
	json_t *s;

	json_array_foreach(all_desc, i, s) {
		const json_t *v = strcmp(field, "agent") == 0
		                      ? json_object_get(json_object_get(s, "agent"), "id")
		                      : json_object_get(s, field);

		n += strcmp(json_string_value(v), value) == 0;
	}
	return n;
}

static size_t count_created(const char *bound, int ge)
{
	size_t i, n = 0;
	json_t *s;

	json_array_foreach(all_desc, i, s) {
		int c = strcmp(json_string_value(json_object_get(s, "created_at")), bound);

		n += ge ? c >= 0 : c < 0;
	}
	return n;
}

/* Same sessions in the same order (a running session's stats move with "now"). */
static int same_ids(const json_t *a, const json_t *b)
{
	if (json_array_size(a) != json_array_size(b))
		return 0;
	for (size_t i = 0; i < json_array_size(a); i++)
		if (!json_equal(json_object_get(json_array_get(a, i), "id"),
		                json_object_get(json_array_get(b, i), "id")))
			return 0;
	return 1;
}

START_TEST(filters_in_both_spellings)
{
	json_t *a, *b, *c;
	const char *mid =
	    json_string_value(json_object_get(json_array_get(all_desc, N_ALICE / 2), "created_at"));
	const char *agent = json_string_value(
	    json_object_get(json_object_get(json_array_get(all_desc, 0), "agent"), "id"));
	char f[512];
	size_t running = count_where("status", "running");

	ck_assert_int_gt(running, 0);
	ck_assert_int_lt(running, N_ALICE);
	a = walk("statuses%5B%5D=running", K_ALICE, limit_random);
	b = walk("statuses=running", K_ALICE, limit_100);
	ck_assert_int_eq(json_array_size(a), running);
	ck_assert(same_ids(a, b));
	json_decref(a);
	json_decref(b);
	a = walk("statuses%5B%5D=running&statuses%5B%5D=idle", K_ALICE, limit_100);
	ck_assert_int_eq(json_array_size(a), N_ALICE);
	json_decref(a);

	snprintf(f, sizeof(f), "created_at%%5Bgte%%5D=%s", mid);
	a = walk(f, K_ALICE, limit_random);
	snprintf(f, sizeof(f), "created_at_gte=%s", mid);
	b = walk(f, K_ALICE, limit_100);
	snprintf(f, sizeof(f), "created_at[lt]=%s", mid);
	c = walk(f, K_ALICE, limit_100);
	ck_assert(same_ids(a, b));
	ck_assert_int_eq(json_array_size(a), count_created(mid, 1));
	ck_assert_int_eq(json_array_size(c), count_created(mid, 0));
	ck_assert_int_eq(json_array_size(a) + json_array_size(c), N_ALICE);
	json_decref(a);
	json_decref(b);
	json_decref(c);

	snprintf(f, sizeof(f), "agent_id=%s", agent);
	a = walk(f, K_ALICE, limit_random);
	ck_assert_int_eq(json_array_size(a), count_where("agent", agent));
	ck_assert_int_lt(json_array_size(a), N_ALICE);
	json_decref(a);
	/* An agent the user cannot see filters to nothing; it is not an error. */
	a = walk("agent_id=0123456789abcdef0123456789abcdef", K_ALICE, limit_100);
	ck_assert_int_eq(json_array_size(a), 0);
	json_decref(a);
}
END_TEST

START_TEST(retrieve_equals_listed)
{
	for (size_t i = 0; i < N_ALICE; i += 37) {
		json_t *s = json_array_get(all_desc, i), *got;
		char path[1024];
		struct h_res r;

		snprintf(path, sizeof(path), "/v1/sessions/%s",
		         json_string_value(json_object_get(s, "id")));
		ck_assert_int_eq(h_get(gw.port, path, K_ALICE, &r), 0);
		ck_assert_int_eq(r.status, 200);
		got = json_deep_copy(r.json);
		/* A running session's duration grows with "now". */
		json_object_del(json_object_get(got, "stats"), "duration_seconds");
		s = json_deep_copy(s);
		json_object_del(json_object_get(s, "stats"), "duration_seconds");
		/* A retrieve sums usage over the message log, which the list had not read. */
		ck_assert_str_eq(json_string_value(json_object_get(json_object_get(got, "metadata"),
		                                                   "agentscope.usage")),
		                 "messages");
		ck_assert(json_is_integer(
		    json_object_get(json_object_get(got, "usage"), "input_tokens")));
		json_object_del(got, "usage");
		json_object_del(s, "usage");
		json_object_del(json_object_get(got, "metadata"), "agentscope.usage");
		json_object_del(json_object_get(s, "metadata"), "agentscope.usage");
		ck_assert_msg(json_equal(got, s), "retrieve differs for %s", path);
		json_decref(got);
		json_decref(s);
		h_res_free(&r);
	}
}
END_TEST

static void expect_error(int port, const char *method, const char *path, const char *const *hdrs,
                         long status, const char *type, const char *in_msg)
{
	struct h_res r;
	json_t *e;

	ck_assert_int_eq(h_request(method, port, path, hdrs, &r), 0);
	ck_assert_msg(r.status == status, "%s %s: %ld %s", method, path, r.status, r.body);
	ck_assert_str_eq(r.content_type, "application/json");
	ck_assert_msg(strncmp(r.request_id, "req_", 4) == 0, "no request-id header");
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "type")), "error");
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "request_id")), r.request_id);
	e = json_object_get(r.json, "error");
	ck_assert_str_eq(json_string_value(json_object_get(e, "type")), type);
	if (in_msg)
		ck_assert_msg(strstr(json_string_value(json_object_get(e, "message")), in_msg),
		              "%s %s: message '%s' lacks '%s'", method, path,
		              json_string_value(json_object_get(e, "message")), in_msg);
	h_res_free(&r);
}

START_TEST(auth)
{
	const char *const wrong[] = {"x-api-key: sk-nobody", NULL};
	const char *const wrong_bearer[] = {"Authorization: Bearer sk-alicE", NULL};
	const char *const basic[] = {"Authorization: Basic c2stYWxpY2U=", NULL};
	struct h_res r;
	json_t *bobs, *s;
	size_t i;

	expect_error(gw.port, "GET", "/v1/sessions", NULL, 401, "authentication_error", "missing");
	expect_error(gw.port, "GET", "/v1/sessions", wrong, 401, "authentication_error", "invalid");
	expect_error(gw.port, "GET", "/v1/sessions", wrong_bearer, 401, "authentication_error",
	             NULL);
	expect_error(gw.port, "GET", "/v1/sessions", basic, 401, "authentication_error", NULL);
	expect_error(gw.port, "GET", "/v1/sessions/x", NULL, 401, "authentication_error", NULL);
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=1", K_ALICE_BEARER, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.content_type, "application/json");
	ck_assert(strncmp(r.request_id, "req_", 4) == 0);
	h_res_free(&r);
	/* bob sees his own five sessions and none of alice's. */
	bobs = walk("", K_BOB, limit_100);
	ck_assert_int_eq(json_array_size(bobs), 5);
	json_array_foreach(bobs, i, s)
		for (size_t j = 0; j < N_ALICE; j++)
			ck_assert_str_ne(
			    json_string_value(json_object_get(s, "id")),
			    json_string_value(json_object_get(json_array_get(all_desc, j), "id")));
	json_decref(bobs);
}
END_TEST

START_TEST(client_identity_header_never_forwarded)
{
	/* no-cache: the listing must be read from the backend now, not from the worker's cache */
	const char *const hdrs[] = {"x-api-key: sk-alice",     "X-User-ID: bob",
	                            "x-user-id: mallory",      "X-USER-ID: eve",
	                            "Cache-Control: no-cache", NULL};
	struct h_res r, rec;
	json_t *e;
	size_t i;

	ck_assert_int_eq(h_request("DELETE", fake.port, "/__fake/requests", NULL, &rec), 0);
	h_res_free(&rec);
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=100", hdrs, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert(
	    json_equal(json_object_get(json_array_get(json_object_get(r.json, "data"), 0), "id"),
	               json_object_get(json_array_get(all_desc, 0), "id")));
	h_res_free(&r);
	ck_assert_int_eq(h_get(fake.port, "/__fake/requests", NULL, &rec), 0);
	ck_assert_int_ge(json_array_size(rec.json), 4); /* /agent/ and three listings */
	json_array_foreach(rec.json, i, e) {
		json_t *ids = json_object_get(e, "x_user_id");

		ck_assert_int_eq(json_array_size(ids), 1);
		ck_assert_str_eq(json_string_value(json_array_get(ids, 0)), "alice");
	}
	h_res_free(&rec);
}
END_TEST

/* The default freshness window: a listing read again within cache_ms (1 s by default) comes
 * from the worker's cache, and a client that sends Cache-Control: no-cache (or Pragma:
 * no-cache) gets a fresh read. */
static size_t backend_calls(void)
{
	struct h_res rec;
	size_t n;

	ck_assert_int_eq(h_get(fake.port, "/__fake/requests", NULL, &rec), 0);
	n = json_array_size(rec.json);
	h_res_free(&rec);
	ck_assert_int_eq(h_request("DELETE", fake.port, "/__fake/requests", NULL, &rec), 0);
	h_res_free(&rec);
	return n;
}

START_TEST(freshness_window_and_no_cache)
{
	const char *const plain[] = {"x-api-key: sk-alice", NULL};
	const char *const fresh[] = {"x-api-key: sk-alice", "Cache-Control: no-cache", NULL};
	const char *const pragma[] = {"x-api-key: sk-alice", "Pragma: no-cache", NULL};
	struct h_res r;

	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=3", fresh, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_res_free(&r);
	backend_calls();
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=3", plain, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_res_free(&r);
	ck_assert_uint_eq(backend_calls(), 0); /* within the window: the worker's cache */
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=3", fresh, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_res_free(&r);
	ck_assert_uint_ge(backend_calls(), 4); /* /agent/ and three listings, asked again */
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=3", pragma, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_res_free(&r);
	ck_assert_uint_ge(backend_calls(), 4);
}
END_TEST

/* Sends raw bytes on a new connection and reads for up to ms (or until the gateway closes).
 * Returns what was read (NUL-terminated in buf); *closed is 1 when the gateway closed. */
static size_t raw_exchange(int port, const char *bytes, int ms, char *buf, size_t cap, int *closed)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t len = 0;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*closed = 0;
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(write(fd, bytes, strlen(bytes)), (ssize_t)strlen(bytes));
	for (int waited = 0; waited < ms;) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t n;

		if (poll(&p, 1, 50) <= 0) {
			waited += 50;
			continue;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0) {
			*closed = 1;
			break;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	return len;
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* Request smuggling (RFC 9112 §6.3): every request whose body framing a front proxy could read
 * otherwise gets one 400 and the connection closed, so no bytes after it are ever answered as
 * a request of their own. Sound framings still work, pipelined requests included. */
START_TEST(ambiguous_framing_is_400_and_closes)
{
	static const char *const probes[][2] = {
	    {"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 27\r\n\r\n"
	     "GET /healthz HTTP/1.1\r\nX: y\r\n\r\n",
	     "more than once"},
	    {"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"
	     "hello",
	     "more than once"},
	    {"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nx-api-key: sk-alice\r\nTransfer-Encoding : "
	     "chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
	     "whitespace"},
	    /* libevent refuses this one itself (its HTML 400), before the gateway sees it */
	    {"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
	     "Content-Length: 5\r\n\r\n0\r\n\r\n",
	     NULL},
	    {"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, "
	     "chunked\r\n\r\n0\r\n\r\n",
	     "Transfer-Encoding"},
	    {"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
	     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	     NULL}, /* libevent's own 400 too */
	    {"GET /v1/sessions HTTP/1.1\r\nHost: x\r\nx-api-key: sk-alice\r\nContent-Length: "
	     "31\r\n\r\n"
	     "GET /healthz HTTP/1.1\r\nX: y\r\n\r\n",
	     "takes no body"},
	    {"DELETE /v1/sessions/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
	     "takes no body"},
	    {"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
	     "not a number"},
	};
	char buf[16384];
	int closed;

	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		raw_exchange(gw.port, probes[i][0], 2000, buf, sizeof(buf), &closed);
		ck_assert_msg(count_of(buf, "HTTP/1.1 ") == 1, "probe %zu: %s", i, buf);
		ck_assert_msg(strstr(buf, "HTTP/1.1 400 ") &&
		                  (!probes[i][1] || (strstr(buf, probes[i][1]) &&
		                                     strstr(buf, "invalid_request_error"))),
		              "probe %zu: %s", i, buf);
		ck_assert_msg(closed, "probe %zu: the connection stayed open", i);
	}
	/* sound framings: a pipelined pair, a chunked body, an empty Content-Length on a GET */
	raw_exchange(
	    gw.port,
	    "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	    "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
	    2000, buf, sizeof(buf), &closed);
	ck_assert_msg(count_of(buf, "HTTP/1.1 200 ") == 2, "%s", buf);
	raw_exchange(
	    gw.port,
	    "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nx-api-key: sk-alice\r\nTransfer-Encoding: "
	    "chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
	    2000, buf, sizeof(buf), &closed);
	ck_assert_msg(count_of(buf, "HTTP/1.1 ") == 1 && strstr(buf, "HTTP/1.1 400 ") &&
	                  !strstr(buf, "framing"),
	              "%s", buf); /* read as a body: refused for what it says, not how it came */
}
END_TEST

/* SIGHUP (sent by process supervisors and terminals) must not kill the gateway while reload
 * does not exist: it is logged, and the gateway goes on serving. */
START_TEST(sighup_does_not_kill)
{
	struct timespec d = {0, 300000000L};
	struct h_res r;

	ck_assert_int_eq(kill(gw.pid, SIGHUP), 0);
	nanosleep(&d, NULL);
	ck_assert_int_eq(kill(gw.pid, 0), 0);
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=1", K_ALICE, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_res_free(&r);
}
END_TEST

START_TEST(bad_ids_are_404_without_backend_call)
{
	char path[1024], foreign[SG_ID_MAX], unknown[SG_ID_MAX];
	const char *real = json_string_value(json_object_get(json_array_get(all_desc, 0), "id"));
	const char *agent = json_string_value(
	    json_object_get(json_object_get(json_array_get(all_desc, 0), "agent"), "id"));
	struct h_res rec;

	ck_assert_int_gt(sg_id_encode("sesn_", "slow", agent, "0123456789abcdef0123456789abcdef",
	                              foreign, sizeof(foreign)),
	                 0);
	ck_assert_int_eq(h_request("DELETE", fake.port, "/__fake/requests", NULL, &rec), 0);
	h_res_free(&rec);
	expect_error(gw.port, "GET", "/v1/sessions/sesn_011CZkZAtmR3yMPDzynEDxu7", K_ALICE, 404,
	             "not_found_error", NULL);
	snprintf(path, sizeof(path), "/v1/sessions/%.*s", (int)strlen(real) - 1, real);
	expect_error(gw.port, "GET", path, K_ALICE, 404, "not_found_error", NULL);
	snprintf(path, sizeof(path), "/v1/sessions/%sa", real);
	expect_error(gw.port, "GET", path, K_ALICE, 404, "not_found_error", NULL);
	snprintf(path, sizeof(path), "/v1/sessions/%s", foreign); /* a backend alice can't reach */
	expect_error(gw.port, "GET", path, K_ALICE, 404, "not_found_error", NULL);
	expect_error(gw.port, "GET", "/v1/sessions/%00%ff", K_ALICE, 404, "not_found_error", NULL);
	ck_assert_int_eq(h_get(fake.port, "/__fake/requests", NULL, &rec), 0);
	ck_assert_int_eq(json_array_size(rec.json), 0);
	h_res_free(&rec);
	/* Well-formed but unknown to the backend: asked, then 404. */
	ck_assert_int_gt(sg_id_encode("sesn_", "as", agent, "ffffffffffffffffffffffffffffffff",
	                              unknown, sizeof(unknown)),
	                 0);
	snprintf(path, sizeof(path), "/v1/sessions/%s", unknown);
	expect_error(gw.port, "GET", path, K_ALICE, 404, "not_found_error", NULL);
	/* bob cannot retrieve alice's session: his X-User-ID does not see it. */
	snprintf(path, sizeof(path), "/v1/sessions/%s", real);
	expect_error(gw.port, "GET", path, K_BOB, 404, "not_found_error", NULL);
}
END_TEST

START_TEST(bad_query_values_are_400_naming_the_parameter)
{
	static const char *const cases[][2] = {
	    {"limit=0", "limit"},
	    {"limit=101", "limit"},
	    {"limit=ten", "limit"},
	    {"statuses=paused", "statuses"},
	    {"statuses%5B%5D=paused", "statuses[]"},
	    {"created_at%5Bgte%5D=yesterday", "created_at[gte]"},
	    {"created_at_lt=2026-13-01T00:00:00Z", "created_at_lt"},
	    {"order=up", "order"},
	    {"include_archived=maybe", "include_archived"},
	    {"agent_version=-1", "agent_version"},
	    {"page=page_bogus", "page"},
	};
	char path[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(path, sizeof(path), "/v1/sessions?%s", cases[i][0]);
		expect_error(gw.port, "GET", path, K_ALICE, 400, "invalid_request_error",
		             cases[i][1]);
	}
}
END_TEST

START_TEST(cursor_bound_to_key_and_filters)
{
	struct h_res r;
	char path[4096];
	const char *tok;

	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=3&statuses=idle", K_ALICE, &r), 0);
	tok = json_string_value(json_object_get(r.json, "next_page"));
	ck_assert_ptr_nonnull(tok);
	snprintf(path, sizeof(path), "/v1/sessions?limit=3&statuses=idle&page=%s", tok);
	expect_error(gw.port, "GET", path, K_BOB, 400, "invalid_request_error", "page");
	snprintf(path, sizeof(path), "/v1/sessions?limit=3&statuses=running&page=%s", tok);
	expect_error(gw.port, "GET", path, K_ALICE, 400, "invalid_request_error", "page");
	snprintf(path, sizeof(path), "/v1/sessions?limit=3&statuses=idle&page=%sx", tok);
	expect_error(gw.port, "GET", path, K_ALICE, 400, "invalid_request_error", "page");
	h_res_free(&r);
}
END_TEST

START_TEST(routes_and_methods)
{
	struct h_res r;

	/* An unknown path says so: never a message that reads as a missing session. */
	expect_error(gw.port, "GET", "/v2/nothing", K_ALICE, 404, "not_found_error",
	             "no such endpoint: GET /v2/nothing");
	expect_error(gw.port, "GET", "/v1/sessionsx", K_ALICE, 404, "not_found_error",
	             "no such endpoint");
	expect_error(gw.port, "GET", "/v1/sessions/sesn_x/nothing", K_ALICE, 404, "not_found_error",
	             "no such endpoint");
	/* The route table answers before auth: a wrong path is a 404 even without a key. */
	expect_error(gw.port, "GET", "/v2/nothing", NULL, 404, "not_found_error",
	             "no such endpoint");
	expect_error(gw.port, "DELETE", "/v1/sessions", K_ALICE, 405, "invalid_request_error",
	             "DELETE");
	expect_error(gw.port, "PUT", "/v1/sessions/sesn_x", K_ALICE, 405, "invalid_request_error",
	             NULL);
	expect_error(gw.port, "TRACE", "/v1/sessions", K_ALICE, 405, "invalid_request_error", NULL);
	ck_assert_int_eq(h_request("PATCH", gw.port, "/v1/sessions/sesn_x/events", K_ALICE, &r), 0);
	ck_assert_int_eq(r.status, 405);
	ck_assert_str_eq(r.allow, "GET, HEAD, POST");
	h_res_free(&r);
	ck_assert_int_eq(h_get(gw.port, "/healthz", NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.content_type, "application/json");
	h_res_free(&r);
	/* HEAD on every GET route: the GET's status and headers, no body. */
	ck_assert_int_eq(h_request("HEAD", gw.port, "/healthz", NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "");
	h_res_free(&r);
	ck_assert_int_eq(h_request("HEAD", gw.port, "/v1/sessions?limit=2", K_ALICE, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.content_type, "application/json");
	ck_assert_str_eq(r.body, "");
	h_res_free(&r);
	ck_assert_int_eq(h_request("HEAD", gw.port, "/v1/sessions/sesn_x", K_ALICE, &r), 0);
	ck_assert_int_eq(r.status, 404);
	ck_assert_str_eq(r.body, "");
	h_res_free(&r);
}
END_TEST

START_TEST(backend_down_is_502)
{
	const char *const k[] = {"x-api-key: sk-down", NULL};
	struct h_res r;

	expect_error(gw.port, "GET", "/v1/sessions", k, 502, "api_error", "'down'");
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions", k, &r), 0);
	ck_assert_str_eq(r.should_retry, "true");
	h_res_free(&r);
}
END_TEST

START_TEST(backend_garbage_is_502)
{
	const char *const g[] = {"x-api-key: sk-garbage", NULL};
	const char *const s[] = {"x-api-key: sk-shape", NULL};
	struct h_res r;

	expect_error(gw.port, "GET", "/v1/sessions", g, 502, "api_error", "'garbage'");
	expect_error(gw.port, "GET", "/v1/sessions", s, 502, "api_error", "'shape'");
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions", g, &r), 0);
	ck_assert_str_eq(r.should_retry, "false");
	h_res_free(&r);
}
END_TEST

struct slow_req {
	struct h_res res;
	struct timespec done;
};

static void *slow_thread(void *arg)
{
	struct slow_req *s = arg;
	const char *const k[] = {"x-api-key: sk-slow", NULL};

	h_get(gw.port, "/v1/sessions", k, &s->res);
	clock_gettime(CLOCK_MONOTONIC, &s->done);
	return NULL;
}

static int before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* One worker: the slow backend's request must not hold up anyone else. */
START_TEST(slow_backend_is_504_while_others_are_served)
{
	struct slow_req s = {0};
	struct timespec ok_done, d = {0, 100000000L};
	struct h_res r;
	pthread_t t;

	ck_assert_int_eq(pthread_create(&t, NULL, slow_thread, &s), 0);
	nanosleep(&d, NULL);
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=5", K_ALICE, &r), 0);
	clock_gettime(CLOCK_MONOTONIC, &ok_done);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(json_array_size(json_object_get(r.json, "data")), 5);
	h_res_free(&r);
	pthread_join(t, NULL);
	ck_assert_msg(before(&ok_done, &s.done), "the fast request waited for the slow one");
	ck_assert_int_eq(s.res.status, 504);
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(s.res.json, "error"), "type")),
	    "timeout_error");
	ck_assert_ptr_nonnull(strstr(s.res.body, "'slow'"));
	ck_assert_str_eq(s.res.should_retry, "true");
	h_res_free(&s.res);
}
END_TEST

START_TEST(old_shape_sums_usage_from_context)
{
	const char *const k[] = {"x-api-key: sk-old", NULL};
	json_t *all = walk("", k, limit_random), *s;
	size_t i, with_tokens = 0;

	ck_assert_int_eq(json_array_size(all), 40);
	json_array_foreach(all, i, s) {
		json_t *u = json_object_get(s, "usage");

		const char *src = json_string_value(
		    json_object_get(json_object_get(s, "metadata"), "agentscope.usage"));

		ck_assert(json_is_object(u));
		ck_assert_msg(src && (!strcmp(src, "context") || !strcmp(src, "context_partial")),
		              "agentscope.usage = %s", src ? src : "(none)");
		with_tokens += json_integer_value(json_object_get(u, "input_tokens")) > 0;
	}
	ck_assert_int_gt(with_tokens, 0);
	json_decref(all);
}
END_TEST

/* The fake writes naive local times; the gateway is told they are Asia/Shanghai (UTC+8). */
START_TEST(naive_timestamps_become_utc)
{
	const char *const hdr[] = {"X-User-ID: alice", NULL};
	struct h_res a, l;
	char path[512], id[SG_ID_MAX], want[80];
	const json_t *rec;
	const char *naive;
	struct tm tm = {0};
	unsigned us = 0;
	time_t t;
	int found = 0;
	size_t i;
	json_t *s;

	ck_assert_int_eq(h_get(fake.port, "/agent/", hdr, &a), 0);
	snprintf(path, sizeof(path), "/sessions/?agent_id=%s",
	         json_string_value(
	             json_object_get(json_array_get(json_object_get(a.json, "agents"), 0), "id")));
	ck_assert_int_eq(h_get(fake.port, path, hdr, &l), 0);
	rec = json_object_get(json_array_get(json_object_get(l.json, "sessions"), 0), "session");
	naive = json_string_value(json_object_get(rec, "created_at"));
	ck_assert_ptr_nonnull(naive);
	ck_assert_ptr_null(strchr(naive, 'Z'));
	ck_assert_int_ge(sscanf(naive, "%d-%d-%dT%d:%d:%d.%u", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	                        &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &us),
	                 6);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm) - 8 * 3600;
	gmtime_r(&t, &tm);
	if (us)
		snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ",
		         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		         tm.tm_sec, us);
	else
		snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
		         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	ck_assert_int_gt(
	    sg_id_encode("sesn_", "as", json_string_value(json_object_get(rec, "agent_id")),
	                 json_string_value(json_object_get(rec, "id")), id, sizeof(id)),
	    0);
	json_array_foreach(all_desc, i, s)
		if (strcmp(json_string_value(json_object_get(s, "id")), id) == 0) {
			ck_assert_str_eq(json_string_value(json_object_get(s, "created_at")), want);
			found = 1;
		}
	ck_assert(found);
	h_res_free(&a);
	h_res_free(&l);
}
END_TEST

/* Every event of a session, walking pages of `limit`. */
static json_t *walk_events_as(const char *sid, const char *filters, int limit,
                              const char *const *hdrs)
{
	json_t *all = json_array();
	char *page = NULL;

	for (int n = 0; n < 5000; n++) {
		struct h_res r;
		char path[8192];
		json_t *next;

		snprintf(path, sizeof(path), "/v1/sessions/%s/events?limit=%d%s%s%s%s", sid, limit,
		         *filters ? "&" : "", filters, page ? "&page=" : "", page ? page : "");
		ck_assert_int_eq(h_get(gw.port, path, hdrs, &r), 0);
		ck_assert_msg(r.status == 200, "%s -> %ld %s", path, r.status, r.body);
		ck_assert_int_le(json_array_size(json_object_get(r.json, "data")), limit);
		ck_assert_ptr_null(json_object_get(r.json, "prev_page"));
		json_array_extend(all, json_object_get(r.json, "data"));
		next = json_object_get(r.json, "next_page");
		free(page);
		page = json_is_string(next) ? strdup(json_string_value(next)) : NULL;
		if (!page)
			ck_assert(json_is_null(next));
		h_res_free(&r);
		if (!page)
			return all;
	}
	ck_abort_msg("event pagination did not end");
	return NULL;
}

static json_t *walk_events(const char *sid, const char *filters, int limit)
{
	return walk_events_as(sid, filters, limit, K_ALICE);
}

START_TEST(events_walk_filters_and_stable_ids)
{
	const char *sid = json_string_value(json_object_get(json_array_get(all_desc, 3), "id"));
	json_t *full = walk_events(sid, "", 1000), *again = walk_events(sid, "", 1000), *paged, *e;
	json_t *types, *desc;
	size_t i, n = json_array_size(full), messages = 0;
	char f[256];

	ck_assert_int_gt(n, 3);
	ck_assert(json_equal(full, again)); /* deterministic ids and content */
	paged = walk_events(sid, "", 2);
	ck_assert(json_equal(paged, full));
	json_array_foreach(full, i, e) {
		const char *type = json_string_value(json_object_get(e, "type"));

		ck_assert(strncmp(json_string_value(json_object_get(e, "id")), "sevt_", 5) == 0);
		ck_assert_ptr_nonnull(
		    strchr(json_string_value(json_object_get(e, "processed_at")), 'Z'));
		if (i > 0)
			ck_assert_int_le(
			    strcmp(json_string_value(json_object_get(json_array_get(full, i - 1),
			                                             "processed_at")),
			           json_string_value(json_object_get(e, "processed_at"))),
			    0);
		messages += strcmp(type, "agent.message") == 0 || strcmp(type, "user.message") == 0;
	}
	types = walk_events(sid, "types%5B%5D=agent.message&types%5B%5D=user.message", 1);
	ck_assert_int_eq(json_array_size(types), messages);
	json_decref(types);
	types = walk_events(sid, "types=agent.message,user.message", 3);
	ck_assert_int_eq(json_array_size(types), messages);
	json_decref(types);
	desc = walk_events(sid, "order=desc", 4);
	ck_assert_int_eq(json_array_size(desc), n);
	for (i = 0; i < n; i++)
		ck_assert(json_equal(json_array_get(desc, i), json_array_get(full, n - 1 - i)));
	json_decref(desc);
	snprintf(f, sizeof(f), "created_at%%5Bgte%%5D=%s",
	         json_string_value(json_object_get(json_array_get(full, n / 2), "processed_at")));
	desc = walk_events(sid, f, 1000);
	ck_assert_int_ge(json_array_size(desc), n - n / 2);
	ck_assert_int_lt(json_array_size(desc), n + 1);
	json_decref(desc);
	json_decref(full);
	json_decref(again);
	json_decref(paged);
}
END_TEST

START_TEST(events_errors)
{
	const char *sid = json_string_value(json_object_get(json_array_get(all_desc, 0), "id"));
	const char *const g[] = {"x-api-key: sk-garbage", NULL};
	char path[2048];

	expect_error(gw.port, "GET", "/v1/sessions/sesn_nope/events", K_ALICE, 404,
	             "not_found_error", NULL);
	snprintf(path, sizeof(path), "/v1/sessions/%s/events", sid);
	expect_error(gw.port, "GET", path, K_BOB, 404, "not_found_error", NULL);
	expect_error(gw.port, "GET", path, g, 404, "not_found_error", NULL);
	snprintf(path, sizeof(path), "/v1/sessions/%s/events?limit=1001", sid);
	expect_error(gw.port, "GET", path, K_ALICE, 400, "invalid_request_error", "limit");
	snprintf(path, sizeof(path), "/v1/sessions/%s/events?types%%5B%%5D=agent.nonsense", sid);
	expect_error(gw.port, "GET", path, K_ALICE, 400, "invalid_request_error", "types[]");
	snprintf(path, sizeof(path), "/v1/sessions/%s/events?order=sideways", sid);
	expect_error(gw.port, "GET", path, K_ALICE, 400, "invalid_request_error", "order");
	snprintf(path, sizeof(path), "/v1/sessions/%s/events?page=page_x", sid);
	expect_error(gw.port, "GET", path, K_ALICE, 400, "invalid_request_error", "page");
	snprintf(path, sizeof(path), "/v1/sessions/%s/events", sid);
	/* Sending events is a route now: a body that is not one is refused before any backend. */
	expect_error(gw.port, "POST", path, K_ALICE, 400, "invalid_request_error",
	             "needs a JSON body");
	/* A cursor belongs to one session's history. */
	{
		const char *other =
		    json_string_value(json_object_get(json_array_get(all_desc, 1), "id"));
		struct h_res r;
		const char *tok;

		snprintf(path, sizeof(path), "/v1/sessions/%s/events?limit=1", sid);
		ck_assert_int_eq(h_get(gw.port, path, K_ALICE, &r), 0);
		tok = json_string_value(json_object_get(r.json, "next_page"));
		ck_assert_ptr_nonnull(tok);
		snprintf(path, sizeof(path), "/v1/sessions/%s/events?limit=1&page=%s", other, tok);
		expect_error(gw.port, "GET", path, K_ALICE, 400, "invalid_request_error", "page");
		h_res_free(&r);
	}
}
END_TEST

static size_t fake_requests(int port, int clear)
{
	struct h_res r;
	size_t n;

	ck_assert_int_eq(h_request(clear ? "DELETE" : "GET", port, "/__fake/requests", NULL, &r),
	                 0);
	n = json_array_size(r.json);
	h_res_free(&r);
	return n;
}

/* With cache_ms, a second walk asks the backend nothing, returns the same sessions, and
 * one principal's cached view never serves another. */
START_TEST(listing_cache_is_per_identity_and_saves_backend_calls)
{
	const char *const ka[] = {"x-api-key: sk-calice", NULL};
	const char *const kb[] = {"x-api-key: sk-cbob", NULL};
	json_t *first, *second, *bobs;

	first = walk("", ka, limit_random);
	ck_assert_int_eq(json_array_size(first), N_ALICE);
	fake_requests(fake.port, 1);
	second = walk("statuses=idle&statuses=running", ka, limit_100);
	ck_assert(same_ids(first, second));
	ck_assert_int_eq(fake_requests(fake.port, 0), 0);
	bobs = walk("", kb, limit_100);
	ck_assert_int_eq(json_array_size(bobs), 5);
	ck_assert_int_gt(fake_requests(fake.port, 0), 0);
	json_decref(first);
	json_decref(second);
	json_decref(bobs);
}
END_TEST

/* A build without the message log: events come from state.context, and a session whose
 * early turns were compacted into state.summary says so first instead of pretending its
 * history starts with what is left. */
START_TEST(events_fall_back_to_context_and_admit_compaction)
{
	const char *const k[] = {"x-api-key: sk-nomsg", NULL};
	const char *const hdr[] = {"X-User-ID: alice", NULL};
	json_t *sessions = walk("", k, limit_100), *s;
	size_t i, compacted = 0, plain = 0;

	ck_assert_int_eq(json_array_size(sessions), 40);
	json_array_foreach(sessions, i, s) {
		struct sg_pubid id;
		char path[1024];
		struct h_res raw;
		const json_t *view = NULL, *v, *summary;
		json_t *ev;
		size_t j;
		int has_summary;

		ck_assert_int_eq(
		    sg_id_decode("sesn_", json_string_value(json_object_get(s, "id")), &id), 0);
		snprintf(path, sizeof(path), "/sessions/?agent_id=%s", id.scope);
		ck_assert_int_eq(h_get(fake_nomsg.port, path, hdr, &raw), 0);
		json_array_foreach(json_object_get(raw.json, "sessions"), j, v)
			if (!strcmp(json_string_value(
			                json_object_get(json_object_get(v, "session"), "id")),
			            id.native))
				view = v;
		ck_assert_ptr_nonnull(view);
		summary = json_object_get(
		    json_object_get(json_object_get(view, "session"), "state"), "summary");
		has_summary = (json_is_string(summary) && json_string_length(summary) > 0) ||
		              json_array_size(summary) > 0;
		snprintf(path, sizeof(path), "%s", json_string_value(json_object_get(s, "id")));
		ev = walk_events_as(path, "", 1000, k);
		if (has_summary) {
			ck_assert_str_eq(
			    json_string_value(json_object_get(json_array_get(ev, 0), "type")),
			    "agent.thread_context_compacted");
			compacted++;
		} else if (json_array_size(ev) > 0) {
			ck_assert_str_ne(
			    json_string_value(json_object_get(json_array_get(ev, 0), "type")),
			    "agent.thread_context_compacted");
			plain++;
		}
		json_decref(ev);
		h_res_free(&raw);
	}
	ck_assert_int_gt(compacted, 0);
	ck_assert_int_gt(plain, 0);
	json_decref(sessions);
}
END_TEST

/* SIGTERM: stop accepting, finish what is in flight, exit 0. */
struct inflight {
	int port;
	struct h_res res;
};

static void *inflight_thread(void *arg)
{
	struct inflight *f = arg;

	h_get(f->port, "/v1/sessions?limit=2", K_ALICE, &f->res);
	return NULL;
}

START_TEST(graceful_shutdown_finishes_in_flight)
{
	const char *args[] = {"--generate", "20:1", "--mode", "slow", "--delay-ms", "800", NULL};
	struct h_proc slowfake, g2;
	struct inflight f = {0};
	struct timespec d = {0, 300000000L};
	json_t *cfg;
	struct h_res r;
	pthread_t t;

	ck_assert_int_eq(h_fake_start(&slowfake, args), 0);
	cfg = json_pack("{s:i, s:s, s:i, s:[o], s:[o]}", "workers", 2, "cursor_secret",
	                "integration-test-secret-0123456789abcdef", "shutdown_grace_ms", 5000,
	                "backends", with_url(backend("as", 5000), slowfake.port), "keys",
	                key("alice", "sk-alice", "as", "alice"));
	ck_assert_int_eq(h_gateway_start(&g2, cfg), 0);
	json_decref(cfg);
	f.port = g2.port;
	ck_assert_int_eq(pthread_create(&t, NULL, inflight_thread, &f), 0);
	nanosleep(&d, NULL);
	kill(g2.pid, SIGTERM);
	nanosleep(&d, NULL);
	/* No longer accepting. */
	ck_assert_int_ne(h_get(g2.port, "/healthz", NULL, &r), 0);
	h_res_free(&r);
	pthread_join(t, NULL);
	ck_assert_int_eq(f.res.status, 200);
	ck_assert_int_eq(json_array_size(json_object_get(f.res.json, "data")), 2);
	h_res_free(&f.res);
	ck_assert_int_eq(h_stop(&g2, 5000), 0);
	h_stop(&slowfake, 2000);
}
END_TEST

/* 1 when the file at path contains needle. */
static int log_contains(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int found = 0;

	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return found;
}

/* Concurrent identical requests share one backend call per URL (one worker here): 32
 * clients list at once while the backend takes 300 ms, and the backend sees each URL once;
 * every client gets the same page. */
struct same_req {
	int port;
	long status;
	char *body;
};

static void *same_thread(void *arg)
{
	struct same_req *q = arg;
	const char *hdr[] = {"x-api-key: sk-alice", NULL};
	struct h_res r;

	if (h_get(q->port, "/v1/sessions?limit=5", hdr, &r) == 0) {
		q->status = r.status;
		q->body = r.json ? json_dumps(json_object_get(r.json, "data"), JSON_COMPACT) : NULL;
		h_res_free(&r);
	}
	return NULL;
}

START_TEST(concurrent_identical_requests_share_one_backend_call)
{
	const char *args[] = {"--generate", "20:1", "--mode", "slow", "--delay-ms", "300", NULL};
	struct same_req q[32];
	pthread_t th[32];
	struct h_proc slowfake, g2;
	struct h_res rec;
	json_t *cfg, *e, *seen = json_object();
	size_t i;

	ck_assert_int_eq(h_fake_start(&slowfake, args), 0);
	cfg = json_pack("{s:i, s:s, s:[o], s:[o]}", "workers", 1, "cursor_secret",
	                "integration-test-secret-0123456789abcdef", "backends",
	                with_url(backend("as", 5000), slowfake.port), "keys",
	                key("alice", "sk-alice", "as", "alice"));
	ck_assert_int_eq(h_gateway_start(&g2, cfg), 0);
	json_decref(cfg);
	ck_assert_int_eq(h_request("DELETE", slowfake.port, "/__fake/requests", NULL, &rec), 0);
	h_res_free(&rec);
	for (i = 0; i < 32; i++) {
		q[i] = (struct same_req){.port = g2.port};
		ck_assert_int_eq(pthread_create(&th[i], NULL, same_thread, &q[i]), 0);
	}
	for (i = 0; i < 32; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 32; i++) {
		ck_assert_int_eq(q[i].status, 200);
		ck_assert_ptr_nonnull(q[i].body);
		ck_assert_str_eq(q[i].body, q[0].body);
	}
	ck_assert_int_eq(h_get(slowfake.port, "/__fake/requests", NULL, &rec), 0);
	ck_assert_int_gt(json_array_size(rec.json), 0);
	json_array_foreach(rec.json, i, e) {
		const char *uri = json_string_value(json_object_get(e, "uri"));

		ck_assert_msg(!json_object_get(seen, uri), "the backend was asked twice for %s",
		              uri);
		json_object_set_new(seen, uri, json_true());
	}
	h_res_free(&rec);
	json_decref(seen);
	for (i = 0; i < 32; i++)
		free(q[i].body);
	ck_assert_int_eq(h_stop(&g2, 5000), 0);
	h_stop(&slowfake, 2000);
}
END_TEST

/* A client that gives up mid-request must not keep the request counted as in flight:
 * otherwise every drain would wait out the whole grace period. */
START_TEST(abandoned_request_does_not_hold_shutdown)
{
	const char *args[] = {"--generate", "20:1", "--mode", "slow", "--delay-ms", "400", NULL};
	struct h_proc slowfake, g2;
	struct timespec t0, t1, d = {1, 200000000L}, quick = {0, 150000000L};
	json_t *cfg;
	char cmd[512];
	int rc;

	ck_assert_int_eq(h_fake_start(&slowfake, args), 0);
	cfg = json_pack("{s:i, s:s, s:i, s:[o], s:[o]}", "workers", 1, "cursor_secret",
	                "integration-test-secret-0123456789abcdef", "shutdown_grace_ms", 20000,
	                "backends", with_url(backend("as", 5000), slowfake.port), "keys",
	                key("alice", "sk-alice", "as", "alice"));
	ck_assert_int_eq(h_gateway_start(&g2, cfg), 0);
	json_decref(cfg);
	/* curl gives up after 100 ms, long before the backend answers. */
	snprintf(cmd, sizeof(cmd),
	         "curl -s -m 0.1 -H 'x-api-key: sk-alice' http://127.0.0.1:%d/v1/sessions "
	         ">/dev/null 2>&1",
	         g2.port);
	rc = system(cmd);
	ck_assert_int_ne(rc, 0);
	/* The gateway notices at once, not when the backend answers (400 ms) or at the
	 * deadline, and ends the request: that is what cancels its upstream fetch. */
	nanosleep(&quick, NULL);
	ck_assert_msg(log_contains(g2.log, " 499 ") && log_contains(g2.log, "client went away"),
	              "the gateway did not notice the client leave (log %s)", g2.log);
	nanosleep(&d, NULL); /* the backend has answered and the reply found no client */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(h_stop(&g2, 15000), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_msg(t1.tv_sec - t0.tv_sec < 10, "drain waited for an abandoned request");
	h_stop(&slowfake, 2000);
}
END_TEST

/* The limits that are not the backend's timeout: the whole-request deadline and the size
 * of a backend answer. */
START_TEST(request_deadline_and_answer_size_limits)
{
	const char *slow_args[] = {"--generate", "20:1", "--mode", "slow",
	                           "--delay-ms", "3000", NULL};
	const char *big_args[] = {"--generate", "50:1", NULL};
	const char *const ks[] = {"x-api-key: sk-slow", NULL};
	const char *const kb[] = {"x-api-key: sk-big", NULL};
	struct h_proc slowfake, bigfake, g2;
	json_t *cfg, *big;

	ck_assert_int_eq(h_fake_start(&slowfake, slow_args), 0);
	ck_assert_int_eq(h_fake_start(&bigfake, big_args), 0);
	big = with_url(backend("big", 5000), bigfake.port);
	json_object_set_new(big, "max_response_bytes", json_integer(4096));
	cfg = json_pack("{s:i, s:s, s:{s:i}, s:[o,o], s:[o,o]}", "workers", 1, "cursor_secret",
	                "integration-test-secret-0123456789abcdef", "limits", "request_timeout_ms",
	                800, "backends", with_url(backend("slow", 10000), slowfake.port), big,
	                "keys", key("slow", "sk-slow", "slow", "alice"),
	                key("big", "sk-big", "big", "alice"));
	ck_assert_int_eq(h_gateway_start(&g2, cfg), 0);
	json_decref(cfg);
	expect_error(g2.port, "GET", "/v1/sessions", ks, 504, "timeout_error", "800 ms");
	expect_error(g2.port, "GET", "/v1/sessions", kb, 502, "api_error", "more than 4096 bytes");
	ck_assert_int_eq(h_stop(&g2, 5000), 0);
	h_stop(&slowfake, 2000);
	h_stop(&bigfake, 2000);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("integration");
	TCase *tc = tcase_create("gateway");
	TCase *sd = tcase_create("shutdown");
	SRunner *sr;
	int failed;

	srandom((unsigned)getpid());
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, list_every_session_once_newest_first);
	tcase_add_test(tc, ties_exist_in_the_data);
	tcase_add_loop_test(tc, walk_with_random_limits, 0, 3);
	tcase_add_test(tc, walk_ascending);
	tcase_add_test(tc, filters_in_both_spellings);
	tcase_add_test(tc, retrieve_equals_listed);
	tcase_add_test(tc, auth);
	tcase_add_test(tc, client_identity_header_never_forwarded);
	tcase_add_test(tc, freshness_window_and_no_cache);
	tcase_add_test(tc, bad_ids_are_404_without_backend_call);
	tcase_add_test(tc, sighup_does_not_kill);
	tcase_add_test(tc, ambiguous_framing_is_400_and_closes);
	tcase_add_test(tc, bad_query_values_are_400_naming_the_parameter);
	tcase_add_test(tc, cursor_bound_to_key_and_filters);
	tcase_add_test(tc, routes_and_methods);
	tcase_add_test(tc, backend_down_is_502);
	tcase_add_test(tc, backend_garbage_is_502);
	tcase_add_test(tc, slow_backend_is_504_while_others_are_served);
	tcase_add_test(tc, old_shape_sums_usage_from_context);
	tcase_add_test(tc, naive_timestamps_become_utc);
	tcase_add_test(tc, events_walk_filters_and_stable_ids);
	tcase_add_test(tc, events_errors);
	tcase_add_test(tc, listing_cache_is_per_identity_and_saves_backend_calls);
	tcase_add_test(tc, events_fall_back_to_context_and_admit_compaction);
	suite_add_tcase(s, tc);
	tcase_set_timeout(sd, 60);
	tcase_add_test(sd, graceful_shutdown_finishes_in_flight);
	tcase_add_test(sd, abandoned_request_does_not_hold_shutdown);
	tcase_add_test(sd, concurrent_identical_requests_share_one_backend_call);
	tcase_add_test(sd, request_deadline_and_answer_size_limits);
	suite_add_tcase(s, sd);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
