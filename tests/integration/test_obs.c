/* test_obs.c - observability and browsers, against the real gateway and the fake backends:
 *  - GET /metrics on metrics.listen: the text exposition format checked line by line (HELP
 *    and TYPE before each family's samples, names, labels, histograms), counters that move by
 *    exactly what a list, a cached repeat, a 404 and a rate-limited key did, requests that join
 *    a read under way; the public port 404s /metrics;
 *  - the JSON access log: one parseable object per request with every field, a client's
 *    X-Forwarded-For and X-Request-Id unable to break the line; and no secret (keys, their
 *    hashes, a backend's key, the cursor secret, whatever a client puts in its headers, query or
 *    body) in anything the gateway writes, at every level and in both formats;
 *  - CORS: preflights allowed and refused, the headers on a 200, an error and a live stream,
 *    and none at all without `cors`. */
#include <arpa/inet.h>
#include <check.h>
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define CURSOR_SECRET "obs-cursor-secret-0123456789abcdef-XYZ"
#define CLIENT_KEY "sk-obs-valid-key-1234"
#define LIMITED_KEY "sk-obs-limited-key-5678"
#define BACKEND_KEY "sk-obs-backend-key-9abc"

static const char *const K[] = {"x-api-key: " CLIENT_KEY, NULL};
static const char *const K_LIMITED[] = {"x-api-key: " LIMITED_KEY, NULL};

/* The fake AgentScope; a gateway config over it (cache_ms long, so a repeat is a hit). */
static json_t *config(int as_port, int sb_port, const char *level, const char *format,
                      int metrics_port, const char *cors)
{
	char hk[65], hl[65], doc[4096], metrics[64] = "", corsk[512] = "", sb[256] = "",
	                                sbkey[128] = "";
	json_error_t je;
	json_t *cfg;

	h_hash_key(CLIENT_KEY, hk);
	h_hash_key(LIMITED_KEY, hl);
	if (metrics_port)
		snprintf(metrics, sizeof(metrics), "\"metrics\":{\"listen\":\"127.0.0.1:%d\"},",
		         metrics_port);
	if (cors)
		snprintf(corsk, sizeof(corsk), "\"cors\":%s,", cors);
	if (sb_port) {
		snprintf(
		    sb, sizeof(sb),
		    ",{\"name\":\"sb\",\"mapping\":\"sandbase\",\"url\":\"http://127.0.0.1:%d\","
		    "\"retries\":0,\"options\":{\"api_key\":\"$SG_OBS_SB_KEY\"}}",
		    sb_port);
		snprintf(sbkey, sizeof(sbkey), ",\"sb\":{}");
	}
	snprintf(doc, sizeof(doc),
	         "{\"workers\":2,\"cursor_secret\":\"" CURSOR_SECRET "\",%s%s"
	         "\"log\":{\"level\":\"%s\",\"format\":\"%s\"},"
	         "\"backends\":[{\"name\":\"as\",\"mapping\":\"agentscope\",\"url\":"
	         "\"http://127.0.0.1:%d\",\"retries\":0,\"options\":{\"cache_ms\":60000}}%s],"
	         "\"keys\":[{\"name\":\"obs\",\"sha256\":\"%s\",\"backends\":{\"as\":{"
	         "\"user_id\":\"alice\"}%s}},"
	         "{\"name\":\"limited\",\"sha256\":\"%s\",\"rate_limit\":{"
	         "\"requests_per_second\":0.001,\"burst\":1},\"backends\":{\"as\":{"
	         "\"user_id\":\"alice\"}}}]}",
	         metrics, corsk, level, format, as_port, sb, hk, sbkey, hl);
	cfg = json_loads(doc, 0, &je);
	ck_assert_msg(cfg != NULL, "%s: %s", je.text, doc);
	return cfg;
}

/* ---- the exposition format ------------------------------------------------------------------ */

static int valid_name(const char *s, size_t n, int label)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (!(isalpha(c) || c == '_' || (!label && c == ':') || (i > 0 && isdigit(c))))
			return 0;
	}
	return 1;
}

/* One sample line's labels: `{a="x",b="y"}` at *p; checks names and escapes, sets le. */
static void parse_labels(const char **p, const char *line, char *le, size_t lelen)
{
	const char *s = *p + 1;

	le[0] = '\0';
	while (*s != '}') {
		const char *eq = strchr(s, '=');
		char val[512];
		size_t vn = 0;

		ck_assert_msg(eq && valid_name(s, (size_t)(eq - s), 1), "bad label name: %s", line);
		ck_assert_msg(eq[1] == '"', "label value not quoted: %s", line);
		for (s = eq + 2; *s != '"'; s++) {
			ck_assert_msg(*s && *s != '\n', "label value not closed: %s", line);
			if (*s == '\\') {
				s++;
				ck_assert_msg(*s == '\\' || *s == '"' || *s == 'n',
				              "bad escape: %s", line);
			}
			if (vn < sizeof(val) - 1)
				val[vn++] = *s;
		}
		val[vn] = '\0';
		if ((size_t)(eq - *p - 1) >= 2 && strncmp(eq - 2, "le", 2) == 0 &&
		    (eq - 2 == *p + 1 || eq[-3] == ','))
			snprintf(le, lelen, "%.63s", val);
		s++;
		ck_assert_msg(*s == ',' || *s == '}', "labels not separated: %s", line);
		if (*s == ',')
			s++;
	}
	*p = s + 1;
}

/* Scrapes GET /metrics, checks the format line by line, and returns every sample as
 * {"name{labels}": value}. */
static json_t *scrape(int port)
{
	json_t *out = json_object(), *families = json_object();
	char family[256] = "", type[32] = "", *text, *save = NULL, ct[128];
	struct h_res r;
	double last_bucket = -1;
	int samples = 0;

	ck_assert_int_eq(h_get(port, "/metrics", NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(h_header(r.headers, "Content-Type", ct, sizeof(ct)));
	ck_assert_str_eq(ct, "text/plain; version=0.0.4; charset=utf-8");
	ck_assert_msg(r.body[0] && r.body[strlen(r.body) - 1] == '\n', "no final newline");
	text = r.body;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[256], le[64], key[1024];
		const char *p = line, *sp;
		double v;
		char *end;

		if (strncmp(line, "# HELP ", 7) == 0) {
			sp = strchr(line + 7, ' ');
			ck_assert_msg(sp && sp[1], "HELP without text: %s", line);
			ck_assert_msg(valid_name(line + 7, (size_t)(sp - line - 7), 0), "%s", line);
			snprintf(name, sizeof(name), "%.*s", (int)(sp - line - 7), line + 7);
			ck_assert_msg(!json_object_get(families, name), "family twice: %s", name);
			snprintf(family, sizeof(family), "%s", name);
			type[0] = '\0';
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			sp = strchr(line + 7, ' ');
			ck_assert_msg(sp, "%s", line);
			ck_assert_msg(strncmp(line + 7, family, strlen(family)) == 0 &&
			                  (size_t)(sp - line - 7) == strlen(family),
			              "TYPE does not follow its HELP: %s", line);
			snprintf(type, sizeof(type), "%s", sp + 1);
			ck_assert_msg(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
			                  !strcmp(type, "histogram"),
			              "type: %s", line);
			if (!strcmp(type, "counter"))
				ck_assert_msg(strlen(family) > 6 &&
				                  !strcmp(family + strlen(family) - 6, "_total"),
				              "counter without _total: %s", family);
			json_object_set_new(families, family, json_string(type));
			last_bucket = -1;
			continue;
		}
		ck_assert_msg(line[0] != '#', "stray comment: %s", line);
		/* a sample of the family whose TYPE came last */
		ck_assert_msg(type[0], "sample before its TYPE: %s", line);
		while (*p && *p != '{' && *p != ' ')
			p++;
		ck_assert_msg(valid_name(line, (size_t)(p - line), 0), "bad name: %s", line);
		snprintf(name, sizeof(name), "%.*s", (int)(p - line), line);
		if (!strcmp(type, "histogram")) {
			size_t fl = strlen(family);

			ck_assert_msg(strncmp(name, family, fl) == 0 &&
			                  (!strcmp(name + fl, "_bucket") ||
			                   !strcmp(name + fl, "_sum") ||
			                   !strcmp(name + fl, "_count")),
			              "not of its histogram: %s", line);
		} else {
			ck_assert_msg(!strcmp(name, family), "sample of another family: %s", line);
		}
		le[0] = '\0';
		if (*p == '{')
			parse_labels(&p, line, le, sizeof(le));
		ck_assert_msg(*p == ' ', "no value: %s", line);
		v = strtod(p + 1, &end);
		ck_assert_msg(end != p + 1 && *end == '\0', "bad value: %s", line);
		if (strstr(name, "_bucket")) {
			ck_assert_msg(le[0], "bucket without le: %s", line);
			if (!strcmp(le, "+Inf")) {
				last_bucket = -1;
			} else {
				ck_assert_msg(v >= last_bucket, "buckets not cumulative: %s", line);
				last_bucket = v;
			}
		}
		snprintf(key, sizeof(key), "%.*s", (int)(p - line), line);
		json_object_set_new(out, key, json_real(v));
		samples++;
	}
	ck_assert_int_gt(samples, 20);
	json_decref(families);
	h_res_free(&r);
	return out;
}

static double val(const json_t *m, const char *key)
{
	json_t *v = json_object_get(m, key);

	return v ? json_real_value(v) : 0;
}

static double delta(const json_t *a, const json_t *b, const char *key)
{
	return val(b, key) - val(a, key);
}

/* Every histogram's +Inf bucket equals its _count. */
static void check_histograms(const json_t *m)
{
	const char *k;
	json_t *v;
	int seen = 0;

	json_object_foreach((json_t *)m, k, v) {
		const char *inf = strstr(k, ",le=\"+Inf\"}");
		char count[512];

		if (!inf || strncmp(k, "sessiongate_upstream_request_duration_seconds_bucket", 52))
			continue;
		snprintf(count, sizeof(count),
		         "sessiongate_upstream_request_duration_seconds_count%.*s}",
		         (int)(inf - strchr(k, '{')), strchr(k, '{'));
		ck_assert_msg(json_object_get(m, count), "no %s", count);
		ck_assert_msg(val(m, count) == json_real_value(v), "%s != +Inf bucket", count);
		seen++;
	}
	ck_assert_int_gt(seen, 0);
}

static void fake_mode(int port, const char *mode)
{
	char path[128];
	struct h_res r;

	snprintf(path, sizeof(path), "/__fake/mode?%s", mode);
	ck_assert_int_eq(h_send("POST", port, path, NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_res_free(&r);
}

static int listing_reads(int port)
{
	struct h_res r;
	json_t *e;
	size_t i;
	int n = 0;

	ck_assert_int_eq(h_get(port, "/__fake/requests", NULL, &r), 0);
	json_array_foreach(r.json, i, e) {
		const char *u = json_string_value(json_object_get(e, "uri"));

		if (u && strncmp(u, "/sessions/?", 11) == 0)
			n++;
	}
	h_res_free(&r);
	ck_assert_int_eq(h_request("DELETE", port, "/__fake/requests", NULL, &r), 0);
	h_res_free(&r);
	return n;
}

#define REQS(route, status, backend)                                                               \
	"sessiongate_requests_total{route=\"" route "\",status=\"" status "\",backend=\"" backend  \
	"\"}"

START_TEST(metrics_count_what_happened)
{
	const char *args[] = {"--generate", "6:1", "--seed", "3", NULL};
	struct h_proc fake, gw;
	int mport = h_free_port();
	json_t *cfg, *a, *b, *c, *a1, *a2;
	struct h_res r;
	char bi[256];

	ck_assert_int_eq(h_fake_start(&fake, args), 0);
	cfg = config(fake.port, 0, "info", "text", mport, NULL);
	ck_assert_int_eq(h_gateway_start(&gw, cfg), 0);
	json_decref(cfg);

	a = scrape(mport);
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=2", K, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	h_res_free(&r);
	a1 = scrape(mport);
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=2", K, &r), 0); /* held: a hit */
	ck_assert_int_eq(r.status, 200);
	h_res_free(&r);
	a2 = scrape(mport);
	/* the first read missed (its listing, and whatever else it looked for); the repeat is
	 * answered from the held listing: one hit, no miss, no backend call */
	ck_assert_double_ge(delta(a, a1, "sessiongate_cache_misses_total{cache=\"held\"}"), 1);
	ck_assert_double_eq(delta(a1, a2, "sessiongate_cache_hits_total{cache=\"held\"}"), 1);
	ck_assert_double_eq(delta(a1, a2, "sessiongate_cache_misses_total{cache=\"held\"}"), 0);
	ck_assert_double_eq(
	    delta(a1, a2, "sessiongate_upstream_request_duration_seconds_count{backend=\"as\"}"),
	    0);
	ck_assert_double_eq(delta(a1, a2, REQS("GET /v1/sessions", "200", "as")), 1);
	json_decref(a1);
	json_decref(a2);
	ck_assert_int_eq(h_get(gw.port, "/v1/nothing", K, &r), 0);
	ck_assert_int_eq(r.status, 404);
	h_res_free(&r);
	ck_assert_int_eq(h_get(gw.port, "/metrics", NULL, &r), 0); /* never on the public port */
	ck_assert_int_eq(r.status, 404);
	h_res_free(&r);
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=1", K_LIMITED, &r), 0); /* its burst */
	ck_assert_int_eq(r.status, 200);
	h_res_free(&r);
	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=1", K_LIMITED, &r), 0);
	ck_assert_int_eq(r.status, 429);
	h_res_free(&r);
	b = scrape(mport);

	ck_assert_double_eq(delta(a, b, REQS("GET /v1/sessions", "200", "as")), 3);
	ck_assert_double_eq(delta(a, b, REQS("unmatched", "404", "-")), 2);
	ck_assert_double_eq(delta(a, b, REQS("GET /v1/sessions", "429", "-")), 1);
	ck_assert_double_eq(delta(a, b, "sessiongate_rate_limited_total"), 1);
	ck_assert_double_eq(delta(a, b, "sessiongate_errors_total{type=\"not_found_error\"}"), 2);
	ck_assert_double_eq(delta(a, b, "sessiongate_errors_total{type=\"rate_limit_error\"}"), 1);
	ck_assert_double_eq(delta(a, b, "sessiongate_errors_total{type=\"api_error\"}"), 0);
	/* the other key's listing is its own: another miss */
	ck_assert_double_ge(delta(a, b, "sessiongate_cache_hits_total{cache=\"held\"}"), 1);
	ck_assert_double_ge(delta(a, b, "sessiongate_cache_misses_total{cache=\"held\"}"), 2);
	ck_assert_double_eq(delta(a, b, "sessiongate_cache_evictions_total{cache=\"held\"}"), 0);
	ck_assert_double_gt(val(b, "sessiongate_cache_bytes{cache=\"held\"}"), 0);
	ck_assert_double_ge(val(b, "sessiongate_cache_entries{cache=\"held\"}"), 2);
	/* each miss read the agent list and one listing (at least), each timed */
	ck_assert_double_ge(
	    delta(a, b, "sessiongate_upstream_request_duration_seconds_count{backend=\"as\"}"), 3);
	ck_assert_double_gt(
	    val(b, "sessiongate_upstream_request_duration_seconds_sum{backend=\"as\"}"), 0);
	check_histograms(b);
	/* in flight until evhttp has written the whole answer: the last one may still count */
	ck_assert_double_ge(val(b, "sessiongate_requests_in_flight"), 0);
	ck_assert_double_le(val(b, "sessiongate_requests_in_flight"), 1);
	ck_assert_double_eq(val(b, "sessiongate_streams_open"), 0);
	ck_assert_double_eq(
	    delta(a, b, "sessiongate_refused_total{backend=\"as\",reason=\"breaker\"}"), 0);
	snprintf(bi, sizeof(bi), "sessiongate_build_info{version=\"%s\",libevent=\"",
	         PACKAGE_VERSION);
	{
		const char *k;
		json_t *v;
		int found = 0;

		json_object_foreach(b, k, v)
			if (!strncmp(k, bi, strlen(bi)) && strstr(k, "jansson=\"")) {
				found = 1;
				ck_assert_double_eq(json_real_value(v), 1);
			}
		ck_assert_msg(found, "no %s…", bi);
	}
	ck_assert_double_gt(val(b, "process_start_time_seconds"), 1.7e9);
	ck_assert_double_le(val(b, "process_start_time_seconds"), (double)time(NULL) + 1);

	/* the counters never go back, and a scrape changes nothing */
	c = scrape(mport);
	ck_assert_double_eq(delta(b, c, REQS("GET /v1/sessions", "200", "as")), 0);
	json_decref(c);
	/* an open stream is in both gauges while its client reads */
	{
		char *id = NULL, path[512];
		struct h_sse s;

		ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=1", K, &r), 0);
		id = strdup(json_string_value(
		    json_object_get(json_array_get(json_object_get(r.json, "data"), 0), "id")));
		h_res_free(&r);
		snprintf(path, sizeof(path), "/v1/sessions/%s/events/stream", id);
		ck_assert_int_eq(h_sse_open(&s, gw.port, path, K, 10000), 0);
		ck_assert_int_eq(s.status, 200);
		c = scrape(mport);
		ck_assert_double_eq(val(c, "sessiongate_streams_open"), 1);
		ck_assert_double_ge(val(c, "sessiongate_requests_in_flight"), 1);
		h_sse_close(&s);
		free(id);
	}
	json_decref(a);
	json_decref(b);
	json_decref(c);
	ck_assert_int_eq(h_stop(&gw, 5000), 0);
	h_stop(&fake, 2000);
}
END_TEST

struct client {
	int port;
	pthread_barrier_t *go;
	long status;
};

static void *list_once(void *arg)
{
	struct client *c = arg;
	struct h_res r;

	pthread_barrier_wait(c->go);
	if (h_get(c->port, "/v1/sessions?limit=1", K, &r) == 0)
		c->status = r.status;
	h_res_free(&r);
	return NULL;
}

/* Requests that need the same listing while it is read join that read (api_read.c's flights):
 * every one that did not read counts as coalesced. */
START_TEST(metrics_count_coalesced_requests)
{
	const char *args[] = {"--generate", "6:1", "--seed", "3", NULL};
	struct h_proc fake, gw;
	int mport = h_free_port();
	pthread_barrier_t go;
	struct client cl[4];
	pthread_t t[4];
	json_t *cfg, *a, *b;
	double joins;
	int reads;

	ck_assert_int_eq(h_fake_start(&fake, args), 0);
	cfg = config(fake.port, 0, "info", "text", mport, NULL);
	json_object_set_new(cfg, "workers", json_integer(1)); /* flights are per worker */
	ck_assert_int_eq(h_gateway_start(&gw, cfg), 0);
	json_decref(cfg);
	fake_mode(fake.port, "mode=slow&delay_ms=1500");
	listing_reads(fake.port);
	a = scrape(mport);
	pthread_barrier_init(&go, NULL, 4);
	for (int i = 0; i < 4; i++) {
		cl[i] = (struct client){gw.port, &go, 0};
		ck_assert_int_eq(pthread_create(&t[i], NULL, list_once, &cl[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(cl[i].status, 200);
	}
	pthread_barrier_destroy(&go);
	b = scrape(mport);
	reads = listing_reads(fake.port);
	joins = delta(a, b, "sessiongate_coalesced_requests_total");
	/* whoever did not read the listing joined a read (never both, never neither) */
	ck_assert_double_eq(joins, 4 - reads);
	ck_assert_double_ge(joins, 1);
	json_decref(a);
	json_decref(b);
	ck_assert_int_eq(h_stop(&gw, 5000), 0);
	h_stop(&fake, 2000);
}
END_TEST

/* ---- the access log and secrets ---------------------------------------------------------- */

/* Sends raw bytes as one request on a fresh connection and reads the answer's status. */
static long raw_request(int port, const char *req)
{
	struct sockaddr_in a = {0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char buf[4096];
	size_t got = 0;
	long status = -1;

	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t n;

		if (poll(&p, 1, 10000) <= 0)
			break;
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n") || got == sizeof(buf) - 1)
			break;
	}
	close(fd);
	buf[got] = '\0';
	if (got > 12)
		status = strtol(buf + 9, NULL, 10);
	return status;
}

static char *first_session(int port)
{
	struct h_res r;
	char *id;

	ck_assert_int_eq(h_get(port, "/v1/sessions?limit=1", K, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	id = strdup(json_string_value(
	    json_object_get(json_array_get(json_object_get(r.json, "data"), 0), "id")));
	h_res_free(&r);
	return id;
}

/* Everything a client may put a secret in, and the requests that make the gateway log most. */
static void secret_traffic(int port, int sb_port)
{
	const char *bearer[] = {"Authorization: Bearer " CLIENT_KEY,
	                        "Cookie: token=sk-obs-cookie-secret", NULL};
	const char *wrong[] = {"Authorization: Bearer sk-obs-wrong-bearer", NULL};
	const char *wrong2[] = {"x-api-key: sk-obs-wrong-xapi", NULL};
	const char *json[] = {"x-api-key: " CLIENT_KEY, "Content-Type: application/json",
	                      "Cookie: sid=sk-obs-cookie-secret", NULL};
	const char *front[] = {"x-api-key: " CLIENT_KEY, "X-Forwarded-For: 203.0.113.7, 10.0.0.1",
	                       "X-Request-Id: front-123 \"quoted\"\\ <x>", NULL};
	static const char *const paths[] = {"/v1/sessions?limit=2",
	                                    "/v1/sessions?statuses=sk-obs-query-secret",
	                                    "/v1/sessions?agent_id=sk-obs-agent-secret",
	                                    "/v1/sessions?api_key=sk-obs-query-key",
	                                    "/v1/sessions?limit=2&page=sk-obs-page-secret",
	                                    "/v1/agents",
	                                    "/v1/sessions/sesn_nope/events",
	                                    NULL};
	char path[512], *id;
	struct h_res r;
	struct h_sse s;
	struct h_sse_ev ev = {0};

	(void)sb_port;
	for (size_t i = 0; paths[i]; i++) {
		ck_assert_int_eq(h_get(port, paths[i], bearer, &r), 0);
		h_res_free(&r);
	}
	ck_assert_int_eq(h_get(port, "/v1/sessions", wrong, &r), 0);
	ck_assert_int_eq(r.status, 401);
	h_res_free(&r);
	ck_assert_int_eq(h_get(port, "/v1/sessions", wrong2, &r), 0);
	ck_assert_int_eq(r.status, 401);
	h_res_free(&r);
	ck_assert_int_eq(h_get(port, "/v1/sessions?limit=1", front, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	h_res_free(&r);
	ck_assert_int_eq(h_send("POST", port, "/v1/sessions", json,
	                        "{\"agent\":\"sk-obs-body-secret\",\"environment_id\":\"env_x\"}",
	                        &r),
	                 0);
	h_res_free(&r);
	ck_assert_int_eq(
	    h_send("POST", port, "/v1/sessions", json, "{\"agent\": sk-obs-badjson-secret", &r), 0);
	ck_assert_int_eq(r.status, 400);
	h_res_free(&r);
	id = first_session(port);
	snprintf(path, sizeof(path), "/v1/sessions/%s/events", id);
	ck_assert_int_eq(
	    h_send("POST", port, path, json,
	           "{\"events\":[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\","
	           "\"text\":\"sk-obs-event-secret\"}]},{\"type\":\"sk-obs-type-secret\"}]}",
	           &r),
	    0);
	ck_assert_int_eq(r.status, 400);
	h_res_free(&r);
	snprintf(path, sizeof(path), "/v1/sessions/%s", id);
	ck_assert_int_eq(h_send("POST", port, path, json,
	                        "{\"metadata\":{\"token\":\"sk-obs-meta-secret\"}}", &r),
	                 0);
	h_res_free(&r);
	/* header injection attempts: a folded continuation line, control bytes, quotes */
	ck_assert_int_gt(raw_request(port, "GET /v1/sessions?limit=1 HTTP/1.1\r\nHost: x\r\n"
	                                   "x-api-key: " CLIENT_KEY "\r\n"
	                                   "X-Forwarded-For: 10.9.9.9\r\n"
	                                   "\t\"},\"status\":999,\"injected\":{\"a\":\"\r\n"
	                                   "X-Request-Id: a\x01"
	                                   "b\x7f\xff\"}\r\nConnection: close\r\n\r\n"),
	                 0);
	ck_assert_int_gt(raw_request(port, "GET /v1/sessions?limit=1 HTTP/1.1\r\nHost: x\r\n"
	                                   "x-api-key: " CLIENT_KEY "\r\n"
	                                   "X-Forwarded-For: 1.1.1.1\x1b[2J\\\" \xc3\xa9\r\n"
	                                   "Connection: close\r\n\r\n"),
	                 0);
	/* a live stream: its line comes when it ends */
	snprintf(path, sizeof(path), "/v1/sessions/%s/events/stream", id);
	ck_assert_int_eq(h_sse_open(&s, port, path, bearer, 10000), 0);
	ck_assert_int_eq(s.status, 200);
	h_sse_next(&s, 300, &ev); /* whatever comes first, or nothing */
	h_sse_ev_free(&ev);
	h_sse_close(&s);
	free(id);
}

static const char *const secrets[] = {CLIENT_KEY,
                                      "sk-obs-cookie-secret",
                                      "sk-obs-wrong-bearer",
                                      "sk-obs-wrong-xapi",
                                      "sk-obs-query-secret",
                                      "sk-obs-agent-secret",
                                      "sk-obs-query-key",
                                      "sk-obs-page-secret",
                                      "sk-obs-body-secret",
                                      "sk-obs-badjson-secret",
                                      "sk-obs-event-secret",
                                      "sk-obs-type-secret",
                                      "sk-obs-meta-secret",
                                      BACKEND_KEY,
                                      CURSOR_SECRET,
                                      NULL};

/* Checks an access line (parsed): every field, of its type. */
static void check_access(const json_t *j, const char *line)
{
	static const char *const strings[] = {"time", "request_id", "method", "route", NULL};
	static const char *const nullable[] = {
	    "key", "backend", "client", "x_forwarded_for", "front_request_id", "error_type", NULL};
	static const char *const numbers[] = {"bytes_in", "bytes_out", "upstream_ms", "total_ms",
	                                      NULL};
	const char *t;

	for (size_t i = 0; strings[i]; i++)
		ck_assert_msg(json_is_string(json_object_get(j, strings[i])), "%s: %s", strings[i],
		              line);
	for (size_t i = 0; nullable[i]; i++) {
		json_t *v = json_object_get(j, nullable[i]);

		ck_assert_msg(v && (json_is_string(v) || json_is_null(v)), "%s: %s", nullable[i],
		              line);
	}
	for (size_t i = 0; numbers[i]; i++)
		ck_assert_msg(json_is_number(json_object_get(j, numbers[i])) &&
		                  json_number_value(json_object_get(j, numbers[i])) >= 0,
		              "%s: %s", numbers[i], line);
	ck_assert_msg(json_is_integer(json_object_get(j, "status")), "status: %s", line);
	ck_assert_int_ge(json_integer_value(json_object_get(j, "status")), 200);
	ck_assert_int_le(json_integer_value(json_object_get(j, "status")), 599);
	ck_assert_msg(json_is_boolean(json_object_get(j, "stream")), "stream: %s", line);
	t = json_string_value(json_object_get(j, "time")); /* 2026-01-02T03:04:05.678Z */
	ck_assert_msg(strlen(t) == 24 && t[10] == 'T' && t[19] == '.' && t[23] == 'Z', "time: %s",
	              line);
	ck_assert_msg(!strncmp(json_string_value(json_object_get(j, "request_id")), "req_", 4),
	              "%s", line);
	ck_assert_msg(!json_object_get(j, "injected"), "a header added a field: %s", line);
}

static void run_secrets(const char *level, const char *format)
{
	const char *a_as[] = {"--generate", "6:1", "--seed", "4", NULL};
	const char *a_sb[] = {"--dialect", "sandbase",  "--generate", "8:1", "--seed",
	                      "5",         "--api-key", BACKEND_KEY,  NULL};
	struct h_proc as, sb, gw;
	json_t *cfg;
	char line[16384], hk[65];
	int lines = 0, access = 0, front = 0, xff = 0, streams = 0, folded = 0;
	FILE *f;

	setenv("SG_OBS_SB_KEY", BACKEND_KEY, 1);
	h_hash_key(CLIENT_KEY, hk);
	ck_assert_int_eq(h_fake_start(&as, a_as), 0);
	ck_assert_int_eq(h_fake_start_bin(&sb, "tests/fake_sandbase", a_sb), 0);
	cfg = config(as.port, sb.port, level, format, 0, NULL);
	ck_assert_int_eq(h_gateway_start(&gw, cfg), 0);
	json_decref(cfg);
	secret_traffic(gw.port, sb.port);
	ck_assert_int_eq(h_stop(&gw, 5000), 0);
	h_stop(&as, 2000);
	h_stop(&sb, 2000);

	f = fopen(gw.log, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		json_t *j;

		lines++;
		for (size_t i = 0; secrets[i]; i++)
			ck_assert_msg(!strstr(line, secrets[i]), "%s/%s: the log leaks %s: %s",
			              level, format, secrets[i], line);
		ck_assert_msg(!strcasestr(line, hk), "the log leaks the key's hash: %s", line);
		if (strcmp(format, "json") != 0)
			continue;
		j = json_loads(line, 0, NULL);
		ck_assert_msg(json_is_object(j), "not a JSON line: %s", line);
		ck_assert_msg(json_is_string(json_object_get(j, "level")), "%s", line);
		if (json_object_get(j, "type") &&
		    !strcmp(json_string_value(json_object_get(j, "type")), "access")) {
			const char *x = json_string_value(json_object_get(j, "x_forwarded_for"));
			const char *fr = json_string_value(json_object_get(j, "front_request_id"));

			access++;
			check_access(j, line);
			if (x && !strcmp(x, "203.0.113.7, 10.0.0.1")) {
				xff++;
				ck_assert_str_eq(fr, "front-123__quoted____x_");
				ck_assert_str_eq(json_string_value(json_object_get(j, "key")),
				                 "obs");
				ck_assert_str_eq(json_string_value(json_object_get(j, "route")),
				                 "GET /v1/sessions");
				ck_assert_str_eq(json_string_value(json_object_get(j, "backend")),
				                 "multi");
				ck_assert_int_gt(
				    json_integer_value(json_object_get(j, "bytes_out")), 0);
			}
			if (fr && !strcmp(fr, "front-123__quoted____x_"))
				front++;
			if (x && !strncmp(x, "10.9.9.9", 8)) {
				folded++;
				/* a\x01b\x7f\xff"} reduced to a token's characters */
				ck_assert_str_eq(fr, "a_b____");
			}
			if (json_is_true(json_object_get(j, "stream")))
				streams++;
		}
		json_decref(j);
	}
	fclose(f);
	if (strcmp(level, "warn") && strcmp(level, "error"))
		ck_assert_int_gt(lines, 20);
	if (!strcmp(format, "json") && strcmp(level, "warn") && strcmp(level, "error")) {
		/* every request has its line: the harness's /healthz and secret_traffic's 18 */
		ck_assert_int_eq(access, 19);
		ck_assert_int_eq(xff, 1);
		ck_assert_int_eq(front, 1);
		ck_assert_int_eq(folded, 1);
		ck_assert_int_eq(streams, 1);
	}
	if (!strcmp(level, "warn") || !strcmp(level, "error"))
		ck_assert_int_eq(access, 0);
}

START_TEST(no_secret_in_the_log_debug_json)
{
	run_secrets("debug", "json");
}
END_TEST

START_TEST(no_secret_in_the_log_info_json)
{
	run_secrets("info", "json");
}
END_TEST

START_TEST(no_secret_in_the_log_warn_and_error)
{
	run_secrets("warn", "json");
	run_secrets("error", "text");
}
END_TEST

START_TEST(no_secret_in_the_log_debug_text)
{
	run_secrets("debug", "text");
}
END_TEST

/* ---- CORS -------------------------------------------------------------------------------- */

static struct h_proc cfake, cgw, plain;

static void cors_setup(void)
{
	const char *args[] = {"--generate", "6:1", "--seed", "3", NULL};
	json_t *cfg;

	ck_assert_int_eq(h_fake_start(&cfake, args), 0);
	cfg = config(cfake.port, 0, "info", "json", 0,
	             "{\"origins\":[\"https://app.example\",\"http://localhost:5173\"],"
	             "\"max_age_s\":900}");
	ck_assert_int_eq(h_gateway_start(&cgw, cfg), 0);
	json_decref(cfg);
	cfg = config(cfake.port, 0, "info", "json", 0, NULL);
	ck_assert_int_eq(h_gateway_start(&plain, cfg), 0);
	json_decref(cfg);
}

static void cors_teardown(void)
{
	ck_assert_int_eq(h_stop(&cgw, 5000), 0);
	ck_assert_int_eq(h_stop(&plain, 5000), 0);
	h_stop(&cfake, 2000);
}

static const char *hdr(const struct h_res *r, const char *name)
{
	static char buf[1024];

	return h_header(r->headers, name, buf, sizeof(buf));
}

START_TEST(cors_preflight_allowed)
{
	const char *h[] = {"Origin: https://app.example", "Access-Control-Request-Method: POST",
	                   "Access-Control-Request-Headers: x-api-key,content-type,"
	                   "anthropic-version, X-Stainless-Retry-Count,x-stainless-os,"
	                   "anthropic-dangerous-direct-browser-access,idempotency-key,x-evil",
	                   NULL};
	struct h_res r;

	/* no key: a preflight needs none */
	ck_assert_int_eq(h_request("OPTIONS", cgw.port, "/v1/sessions/sesn_x/events", h, &r), 0);
	ck_assert_int_eq(r.status, 204);
	ck_assert_str_eq(hdr(&r, "Access-Control-Allow-Origin"), "https://app.example");
	ck_assert_ptr_nonnull(strstr(hdr(&r, "Access-Control-Allow-Methods"), "POST"));
	ck_assert_ptr_nonnull(strstr(hdr(&r, "Access-Control-Allow-Methods"), "DELETE"));
	ck_assert_str_eq(hdr(&r, "Access-Control-Allow-Headers"),
	                 "x-api-key, content-type, anthropic-version, x-stainless-retry-count, "
	                 "x-stainless-os, anthropic-dangerous-direct-browser-access, "
	                 "idempotency-key");
	ck_assert_str_eq(hdr(&r, "Access-Control-Max-Age"), "900");
	ck_assert_str_eq(hdr(&r, "Vary"), "Origin");
	ck_assert_ptr_null(hdr(&r, "Access-Control-Allow-Credentials"));
	ck_assert_str_eq(r.body, "");
	h_res_free(&r);
	/* any path of the API, whatever method it takes */
	ck_assert_int_eq(h_request("OPTIONS", cgw.port, "/v1/agents", h, &r), 0);
	ck_assert_int_eq(r.status, 204);
	h_res_free(&r);
	/* an OPTIONS that is not a preflight is routed as before */
	{
		const char *o[] = {"Origin: https://app.example", NULL};

		ck_assert_int_eq(h_request("OPTIONS", cgw.port, "/v1/sessions", o, &r), 0);
		ck_assert_int_eq(r.status, 405);
		ck_assert_str_eq(hdr(&r, "Access-Control-Allow-Origin"), "https://app.example");
		h_res_free(&r);
	}
	/* not a path of the API: 404 */
	ck_assert_int_eq(h_request("OPTIONS", cgw.port, "/v2/nothing", h, &r), 0);
	ck_assert_int_eq(r.status, 404);
	h_res_free(&r);
	/* a preflight with a body is refused by the framing checks before anything else */
	ck_assert_int_eq(h_send("OPTIONS", cgw.port, "/v1/sessions", h, "{}", &r), 0);
	ck_assert_int_eq(r.status, 400);
	ck_assert_msg(strstr(r.body, "takes no body"), "%s", r.body);
	h_res_free(&r);
}
END_TEST

START_TEST(cors_preflight_refused)
{
	const char *h[] = {"Origin: https://evil.example", "Access-Control-Request-Method: GET",
	                   "Access-Control-Request-Headers: x-api-key", NULL};
	struct h_res r;

	ck_assert_int_eq(h_request("OPTIONS", cgw.port, "/v1/sessions", h, &r), 0);
	ck_assert_int_eq(r.status, 403);
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(r.json, "error"), "type")),
	    "permission_error");
	ck_assert_msg(!strcasestr(r.headers, "access-control-"), "%s", r.headers);
	h_res_free(&r);
	/* and a real request from it gets no CORS header either */
	{
		const char *g[] = {"Origin: https://evil.example", "x-api-key: " CLIENT_KEY, NULL};

		ck_assert_int_eq(h_get(cgw.port, "/v1/sessions?limit=1", g, &r), 0);
		ck_assert_int_eq(r.status, 200);
		ck_assert_msg(!strcasestr(r.headers, "access-control-"), "%s", r.headers);
		ck_assert_str_eq(hdr(&r, "Vary"), "Origin");
		h_res_free(&r);
	}
}
END_TEST

START_TEST(cors_headers_on_answers)
{
	const char *g[] = {"Origin: http://localhost:5173", "x-api-key: " CLIENT_KEY, NULL};
	const char *bad[] = {"Origin: http://localhost:5173", "x-api-key: sk-nope", NULL};
	char path[512], v[512], *id;
	struct h_res r;
	struct h_sse s;

	ck_assert_int_eq(h_get(cgw.port, "/v1/sessions?limit=1", g, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(hdr(&r, "Access-Control-Allow-Origin"), "http://localhost:5173");
	ck_assert_str_eq(hdr(&r, "Vary"), "Origin");
	ck_assert_ptr_nonnull(strstr(hdr(&r, "Access-Control-Expose-Headers"), "request-id"));
	ck_assert_ptr_nonnull(strstr(hdr(&r, "Access-Control-Expose-Headers"), "x-should-retry"));
	ck_assert_ptr_nonnull(strstr(hdr(&r, "Access-Control-Expose-Headers"), "retry-after"));
	id = strdup(json_string_value(
	    json_object_get(json_array_get(json_object_get(r.json, "data"), 0), "id")));
	h_res_free(&r);
	/* an error (auth refused) */
	ck_assert_int_eq(h_get(cgw.port, "/v1/sessions", bad, &r), 0);
	ck_assert_int_eq(r.status, 401);
	ck_assert_str_eq(hdr(&r, "Access-Control-Allow-Origin"), "http://localhost:5173");
	ck_assert_ptr_nonnull(hdr(&r, "Access-Control-Expose-Headers"));
	h_res_free(&r);
	/* the live stream */
	snprintf(path, sizeof(path), "/v1/sessions/%s/events/stream", id);
	ck_assert_int_eq(h_sse_open(&s, cgw.port, path, g, 10000), 0);
	ck_assert_int_eq(s.status, 200);
	ck_assert_ptr_nonnull(
	    h_header(strchr(s.head, '\n') + 1, "Access-Control-Allow-Origin", v, sizeof(v)));
	ck_assert_str_eq(v, "http://localhost:5173");
	h_sse_close(&s);
	free(id);
}
END_TEST

START_TEST(no_cors_headers_without_cors)
{
	const char *g[] = {"Origin: https://app.example", "x-api-key: " CLIENT_KEY, NULL};
	const char *pre[] = {"Origin: https://app.example", "Access-Control-Request-Method: GET",
	                     NULL};
	struct h_res r;

	ck_assert_int_eq(h_get(plain.port, "/v1/sessions?limit=1", g, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(!strcasestr(r.headers, "access-control-"), "%s", r.headers);
	ck_assert_ptr_null(hdr(&r, "Vary"));
	h_res_free(&r);
	ck_assert_int_eq(h_request("OPTIONS", plain.port, "/v1/sessions", pre, &r), 0);
	ck_assert_int_eq(r.status, 405);
	ck_assert_msg(!strcasestr(r.headers, "access-control-"), "%s", r.headers);
	h_res_free(&r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("obs");
	TCase *m = tcase_create("metrics"), *l = tcase_create("log"), *c = tcase_create("cors");
	SRunner *sr;
	int failed;

	tcase_set_timeout(m, 120);
	tcase_add_test(m, metrics_count_what_happened);
	tcase_add_test(m, metrics_count_coalesced_requests);
	suite_add_tcase(s, m);
	tcase_set_timeout(l, 120);
	tcase_add_test(l, no_secret_in_the_log_debug_json);
	tcase_add_test(l, no_secret_in_the_log_info_json);
	tcase_add_test(l, no_secret_in_the_log_warn_and_error);
	tcase_add_test(l, no_secret_in_the_log_debug_text);
	suite_add_tcase(s, l);
	tcase_add_unchecked_fixture(c, cors_setup, cors_teardown);
	tcase_set_timeout(c, 60);
	tcase_add_test(c, cors_preflight_allowed);
	tcase_add_test(c, cors_preflight_refused);
	tcase_add_test(c, cors_headers_on_answers);
	tcase_add_test(c, no_cors_headers_without_cors);
	suite_add_tcase(s, c);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
