/* test_fleet_walk.c - walk snapshots shared through Redis (issue 16, shared.h), proven behind a
 * real load balancer: nginx on loopback, round robin over two gateway instances (same
 * configuration, two workers each, one redis-server) in front of one fake AgentScope service.
 *  - a walk whose pages alternate instances (nginx's access log says which instance served
 *    each page) returns every session of the backend once, and the backend is asked for the
 *    listing once: the instance that did not make the snapshot fetches it from Redis;
 *  - a snapshot whose bytes in Redis are not a snapshot is read from the backend instead;
 *  - with Redis stopped (SIGSTOP: it accepts and answers nothing) mid-walk, the walk still
 *    completes with no duplicate and no gap (each page whose snapshot is elsewhere reads the
 *    backend at its cursor's keyset position); once Redis answers again, a walk reads the
 *    backend once again.
 * Switching the shared tier off fails the first test (each page reads the backend).
 * nginx is /usr/sbin/nginx (scripts/setup.sh installs it); without it the test fails. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "idcodec.h"

#define NGINX "/usr/sbin/nginx"
#define MODEL_CFG "{\"type\":\"anthropic_credential\",\"credential_id\":\"c1\",\"model\":\"m1\"}"
#define SESSIONS 240
#define AGENTS 3
#define LIMIT "20" /* 12 pages */

static struct h_proc redis, fake, gw[2], nginx;
static int mport[2]; /* each instance's metrics.listen */
static char dir[64] = "";
static size_t logged; /* /v1/sessions lines of the access log already looked at */
static const char *const K[] = {"x-api-key: sk-walker", NULL};

static void sleep_ms(long ms)
{
	struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&d, NULL);
}

static void nginx_start(void)
{
	char conf[2048], path[128], port[16];
	const char *argv[] = {NGINX, "-p", dir, "-c", path, "-g", "daemon off;", NULL};
	FILE *f;

	ck_assert_msg(access(NGINX, X_OK) == 0,
	              NGINX " is missing: this test needs nginx (scripts/setup.sh installs it)");
	nginx.port = h_free_port();
	snprintf(port, sizeof(port), "%d", nginx.port);
	/* the access log says which instance served each request ($upstream_addr) */
	snprintf(conf, sizeof(conf),
	         "worker_processes 1;\n"
	         "pid %s/nginx.pid;\n"
	         "error_log %s/error.log warn;\n"
	         "events { worker_connections 256; }\n"
	         "http {\n"
	         "  log_format up '$upstream_addr $status $request_uri';\n"
	         "  access_log %s/access.log up;\n"
	         "  client_body_temp_path %s/body; proxy_temp_path %s/proxy;\n"
	         "  fastcgi_temp_path %s/fcgi; uwsgi_temp_path %s/uwsgi; scgi_temp_path %s/scgi;\n"
	         "  upstream gateways { server 127.0.0.1:%d; server 127.0.0.1:%d; keepalive 4; }\n"
	         "  server {\n"
	         "    listen 127.0.0.1:%s;\n"
	         "    location / {\n"
	         "      proxy_pass http://gateways;\n"
	         "      proxy_http_version 1.1;\n"
	         "      proxy_set_header Connection \"\";\n"
	         "      proxy_max_temp_file_size 0;\n"
	         "      proxy_next_upstream off;\n"
	         "    }\n"
	         "  }\n"
	         "}\n",
	         dir, dir, dir, dir, dir, dir, dir, dir, gw[0].port, gw[1].port, port);
	snprintf(path, sizeof(path), "%s/nginx.conf", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(conf, f);
	fclose(f);
	snprintf(nginx.log, sizeof(nginx.log), "%s/nginx.out", dir);
	nginx.pid = fork();
	if (nginx.pid == 0) {
		int fd = open(nginx.log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(NGINX, (char *const *)argv);
		_exit(127);
	}
	ck_assert_int_gt(nginx.pid, 0);
	for (int i = 0; i < 500; i++) {
		struct h_res r;

		int up = h_get(nginx.port, "/healthz", NULL, &r) == 0 && r.status == 200;

		h_res_free(&r); /* a failed exchange has a body too */
		if (up)
			return;
		sleep_ms(10);
	}
	ck_abort_msg("nginx did not start; see %s and %s/error.log", nginx.log, dir);
}

static void setup(void)
{
	const char *args[] = {"--generate", "240:3", "--seed", "5", "--run-ms", "100", NULL};
	json_error_t je;
	json_t *cfg;
	char h[65], doc[4096];

	logged = 0;
	snprintf(dir, sizeof(dir), "/tmp/sg-fleetwalk-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	chmod(dir, 0755); /* nginx's workers may run as another user */
	ck_assert_int_eq(h_redis_start(&redis, 0), 0);
	ck_assert_int_eq(h_fake_start(&fake, args), 0);
	h_hash_key("sk-walker", h);
	/* cache_ms 0: no freshness window, so only the walk's snapshot can spare a backend read */
	snprintf(doc, sizeof(doc),
	         "{\"workers\":2,\"cursor_secret\":\"fleet-walk-secret-0123456789abcdef\","
	         "\"cache\":{\"walk_snapshot_ms\":60000},"
	         "\"redis\":{\"address\":\"127.0.0.1:%d\",\"timeout_ms\":300,"
	         "\"connect_timeout_ms\":300,\"key_prefix\":\"fw:\"},"
	         "\"backends\":[{\"name\":\"as\",\"mapping\":\"agentscope\",\"url\":"
	         "\"http://127.0.0.1:%d\",\"retries\":0,\"options\":{\"cache_ms\":0,"
	         "\"chat_model_config\":" MODEL_CFG "}}],"
	         "\"keys\":[{\"name\":\"walker\",\"sha256\":\"%s\",\"backends\":{\"as\":{"
	         "\"user_id\":\"alice\"}}}]}",
	         redis.port, fake.port, h);
	cfg = json_loads(doc, 0, &je);
	ck_assert_msg(cfg != NULL, "%s", je.text);
	for (int i = 0; i < 2; i++) {
		mport[i] = h_free_port();
		json_object_set_new(
		    cfg, "metrics",
		    json_pack("{s:o}", "listen", json_sprintf("127.0.0.1:%d", mport[i])));
		ck_assert_int_eq(h_gateway_start(&gw[i], cfg), 0);
	}
	json_decref(cfg);
	nginx_start();
}

static void teardown(void)
{
	char cmd[128];

	kill(redis.pid, SIGCONT);
	h_stop(&nginx, 5000);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(h_stop(&gw[i], 5000), 0);
	h_stop(&fake, 2000);
	h_stop(&redis, 2000);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (dir[0] && system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* The fake's own listing: every session's native id, sorted (a new array). */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **backend_ids(size_t *n)
{
	const char *const U[] = {"X-User-ID: alice", NULL};
	struct h_res ra;
	json_t *a;
	size_t i;
	char **ids = calloc(SESSIONS * 2, sizeof(*ids));

	*n = 0;
	ck_assert_int_eq(h_get(fake.port, "/agent/", U, &ra), 0);
	ck_assert_int_eq(json_array_size(json_object_get(ra.json, "agents")), AGENTS);
	json_array_foreach(json_object_get(ra.json, "agents"), i, a) {
		char path[256];
		struct h_res rs;
		json_t *s;
		size_t j;

		snprintf(path, sizeof(path), "/sessions/?agent_id=%s",
		         json_string_value(json_object_get(a, "id")));
		ck_assert_int_eq(h_get(fake.port, path, U, &rs), 0);
		ck_assert_int_eq(rs.status, 200);
		json_array_foreach(json_object_get(rs.json, "sessions"), j, s) {
			const char *id =
			    json_string_value(json_object_get(json_object_get(s, "session"), "id"));

			ck_assert_ptr_nonnull(id);
			ck_assert_uint_lt(*n, SESSIONS * 2);
			ids[(*n)++] = strdup(id);
		}
		h_res_free(&rs);
	}
	h_res_free(&ra);
	qsort(ids, *n, sizeof(*ids), cmp_str);
	h_fake_take(fake.port, "GET", "/sessions/?"); /* not the gateway's */
	return ids;
}

/* Lines of nginx's access log for /v1/sessions, in order: the upstream address of each, or
 * NULL when the log does not have n of them within 5 s (it is written after the answer). */
static char **served_by(size_t skip, size_t n)
{
	char path[128], line[1024];
	char **up = calloc(n + 1, sizeof(*up));

	snprintf(path, sizeof(path), "%s/access.log", dir);
	for (int t = 0; t < 500; t++) {
		FILE *f = fopen(path, "r");
		size_t k = 0, got = 0;

		while (f && fgets(line, sizeof(line), f)) {
			char addr[256];

			if (!strstr(line, " /v1/sessions") || k++ < skip)
				continue;
			if (got < n && sscanf(line, "%255s", addr) == 1)
				up[got++] = strdup(addr);
		}
		if (f)
			fclose(f);
		if (got == n)
			return up;
		for (size_t i = 0; i < got; i++)
			free(up[i]);
		sleep_ms(10);
	}
	free(up);
	return NULL;
}

/* Walks every page through nginx; between pages, before(page) runs. Checks the walk against
 * the backend's own listing (no duplicate, no gap) and returns its page count. */
static int walk(void (*before)(int page), char ***servers)
{
	size_t nb, nw = 0;
	char **want = backend_ids(&nb), **got = calloc(SESSIONS * 2, sizeof(*got));
	char *cursor = NULL;
	int pages = 0;

	do {
		char path[2048];
		struct h_res r;
		json_t *s, *next;
		size_t i;

		if (before)
			before(pages);
		snprintf(path, sizeof(path), "/v1/sessions?limit=" LIMIT "%s%s",
		         cursor ? "&page=" : "", cursor ? cursor : "");
		free(cursor);
		cursor = NULL;
		ck_assert_int_eq(h_get(nginx.port, path, K, &r), 0);
		ck_assert_msg(r.status == 200, "page %d: %ld %s", pages, r.status, r.body);
		json_array_foreach(json_object_get(r.json, "data"), i, s) {
			struct sg_pubid id;

			ck_assert_int_eq(
			    sg_id_decode("sesn_", json_string_value(json_object_get(s, "id")), &id),
			    0);
			ck_assert_uint_lt(nw, SESSIONS * 2);
			got[nw++] = strdup(id.native);
		}
		next = json_object_get(r.json, "next_page");
		if (json_is_string(next))
			cursor = strdup(json_string_value(next));
		h_res_free(&r);
		pages++;
	} while (cursor);
	qsort(got, nw, sizeof(*got), cmp_str);
	for (size_t i = 1; i < nw; i++)
		ck_assert_msg(strcmp(got[i - 1], got[i]) != 0, "session %s twice", got[i]);
	ck_assert_uint_eq(nw, nb);
	for (size_t i = 0; i < nw; i++)
		ck_assert_str_eq(got[i], want[i]);
	for (size_t i = 0; i < nw; i++)
		free(got[i]);
	for (size_t i = 0; i < nb; i++)
		free(want[i]);
	free(got);
	free(want);
	*servers = served_by(logged, (size_t)pages);
	ck_assert_msg(*servers != NULL, "nginx's access log lacks the walk's %d pages", pages);
	logged += (size_t)pages;
	return pages;
}

/* sessiongate_walk_snapshots_shared_total{result=...} summed over both instances. */
static long snap_metric(const char *result)
{
	char want[128];
	long sum = 0;

	snprintf(want, sizeof(want), "sessiongate_walk_snapshots_shared_total{result=\"%s\"} ",
	         result);
	for (int i = 0; i < 2; i++) {
		struct h_res r;
		const char *at;

		ck_assert_int_eq(h_get(mport[i], "/metrics", NULL, &r), 0);
		ck_assert_int_eq(r.status, 200);
		at = strstr(r.body, want);
		ck_assert_msg(at != NULL, "no %s in /metrics", want);
		sum += atol(at + strlen(want));
		h_res_free(&r);
	}
	return sum;
}

static void free_servers(char **up, int n)
{
	for (int i = 0; i < n; i++)
		free(up[i]);
	free(up);
}

static void check_alternate(char **up, int pages)
{
	char a[32], b[32];

	snprintf(a, sizeof(a), "127.0.0.1:%d", gw[0].port);
	snprintf(b, sizeof(b), "127.0.0.1:%d", gw[1].port);
	for (int i = 0; i < pages; i++) {
		ck_assert_msg(!strcmp(up[i], a) || !strcmp(up[i], b), "page %d served by %s", i,
		              up[i]);
		if (i > 0)
			ck_assert_msg(strcmp(up[i], up[i - 1]) != 0,
			              "pages %d and %d were both served by %s", i - 1, i, up[i]);
	}
}

START_TEST(a_walk_alternating_instances_reads_the_backend_once)
{
	char **up;
	int pages;

	h_fake_take(fake.port, "GET", "/sessions/?");
	pages = walk(NULL, &up);
	ck_assert_int_ge(pages, 10);
	check_alternate(up, pages);
	/* one listing read per agent: the first page's, and no other */
	ck_assert_int_eq(h_fake_take(fake.port, "GET", "/sessions/?"), AGENTS);
	free_servers(up, pages);
	/* one snapshot stored; the other instance fetched it once (then held it) */
	ck_assert_int_eq(snap_metric("stored"), 1);
	ck_assert_int_eq(snap_metric("fetched"), 1);
	ck_assert_int_eq(snap_metric("missed") + snap_metric("fetch_failed"), 0);
	/* and again (a new walk, a new snapshot) */
	pages = walk(NULL, &up);
	check_alternate(up, pages);
	ck_assert_int_eq(h_fake_take(fake.port, "GET", "/sessions/?"), AGENTS);
	free_servers(up, pages);
}
END_TEST

static void stop_redis_after_first(int page)
{
	if (page == 1)
		ck_assert_int_eq(kill(redis.pid, SIGSTOP), 0);
}

START_TEST(redis_stopped_mid_walk_falls_back_to_the_backend)
{
	char **up;
	int pages, reads;

	h_fake_take(fake.port, "GET", "/sessions/?");
	pages = walk(stop_redis_after_first, &up);
	check_alternate(up, pages);
	free_servers(up, pages);
	ck_assert_int_ge(snap_metric("fetch_failed"), pages - 1);
	/* every page after the first reached the instance that did not make the snapshot its
	 * cursor names, and Redis did not answer: each read the backend at its cursor's keyset
	 * position (and made a snapshot of its own, which the other instance cannot see) */
	reads = h_fake_take(fake.port, "GET", "/sessions/?");
	ck_assert_int_eq(reads, AGENTS * pages);
	ck_assert_int_eq(kill(redis.pid, SIGCONT), 0);
	/* every worker reconnects on its own (at most 5 s of backoff): until then a walk may read
	 * more than once; within 20 s one reads it once */
	for (int t = 0; t < 20; t++) {
		pages = walk(NULL, &up);
		free_servers(up, pages);
		reads = h_fake_take(fake.port, "GET", "/sessions/?");
		if (reads == AGENTS)
			break;
		sleep_ms(1000);
	}
	ck_assert_int_eq(reads, AGENTS);
}
END_TEST

static void damage_snapshots_at_1(int page)
{
	char cmd[512];

	if (page != 1)
		return;
	snprintf(cmd, sizeof(cmd),
	         "redis-cli -p %d --scan --pattern 'fw:snap:*' | "
	         "xargs -r -I{} redis-cli -p %d SET {} not-a-snapshot >/dev/null",
	         redis.port, redis.port);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(a_damaged_snapshot_in_redis_is_read_from_the_backend)
{
	char **up;
	int pages;

	h_fake_take(fake.port, "GET", "/sessions/?");
	pages = walk(damage_snapshots_at_1, &up);
	check_alternate(up, pages);
	free_servers(up, pages);
	/* the first page's, and the second's (its snapshot did not decode); the second page's
	 * snapshot, stored after the damage, serves the rest */
	ck_assert_int_eq(h_fake_take(fake.port, "GET", "/sessions/?"), 2 * AGENTS);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fleet_walk");
	TCase *tc = tcase_create("fleet_walk");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, a_walk_alternating_instances_reads_the_backend_once);
	tcase_add_test(tc, a_damaged_snapshot_in_redis_is_read_from_the_backend);
	tcase_add_test(tc, redis_stopped_mid_walk_falls_back_to_the_backend);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
