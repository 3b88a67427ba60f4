/* test_lifecycle.c - the gateway's life around its requests, against the real binary and the
 * fake backends: a configuration reload on SIGHUP under load (no request fails, new keys and
 * limits take effect, a live stream keeps going, an invalid file is refused, two reloads in
 * quick succession, cursor secrets rotated across reloads, a backend key read from a file);
 * readiness apart from liveness (/readyz follows the backends; a SIGTERM fails it first, for
 * readiness.drain_delay_ms, while everything else still serves). */
#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define MODEL_CFG "{\"type\":\"anthropic_credential\",\"credential_id\":\"c1\",\"model\":\"m1\"}"
#define SECRET_A "lifecycle-secret-A-0123456789abcdef"
#define SECRET_B "lifecycle-secret-B-0123456789abcdef"
#define SB_KEY "sk-sb-lifecycle-file-key"

static struct h_proc fake, sb, gw;
static const char *const KA[] = {"x-api-key: sk-alpha", "Content-Type: application/json", NULL};
static const char *const KB[] = {"x-api-key: sk-beta", "Content-Type: application/json", NULL};
static const char *const KG[] = {"x-api-key: sk-gamma", "Content-Type: application/json", NULL};
static const char *const KS[] = {"x-api-key: sk-sbuser", "Content-Type: application/json", NULL};
static char sb_key_file[128];

static void sleep_ms(long ms)
{
	struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&d, NULL);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)(ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* The gateway's configuration file: the harness writes it next to its log. */
static void config_path(char *out, size_t len)
{
	size_t n = strlen(gw.log);

	ck_assert(n > 4 && strcmp(gw.log + n - 4, ".log") == 0);
	snprintf(out, len, "%.*s", (int)(n - 4), gw.log);
}

/* The configuration: keys alpha (always), beta (2: with a rate limit of one request, then one
 * a minute), gamma; the AgentScope backend's max_concurrent; the cursor secrets (a JSON
 * value); the readiness settings. The AgentScope backend's breaker opens after 2 failures. */
static json_t *config(int beta, int gamma, int max_concurrent, const char *secrets,
                      const char *readiness, int as_port)
{
	char ha[65], hb[65], hg[65], hs[65], doc[8192];
	json_error_t je;
	json_t *cfg;

	h_hash_key("sk-alpha", ha);
	h_hash_key("sk-beta", hb);
	h_hash_key("sk-gamma", hg);
	h_hash_key("sk-sbuser", hs);
	snprintf(
	    doc, sizeof(doc),
	    "{\"workers\":2,\"cursor_secret\":%s,\"shutdown_grace_ms\":2000,"
	    "\"readiness\":%s,\"log\":{\"access\":false},"
	    "\"streams\":{\"heartbeat_ms\":300},"
	    "\"backends\":["
	    "{\"name\":\"as\",\"mapping\":\"agentscope\",\"url\":\"http://127.0.0.1:%d\","
	    "\"retries\":0,\"timeout_ms\":3000,\"max_concurrent\":%d,"
	    "\"breaker\":{\"failures\":2,\"open_ms\":600000},"
	    "\"options\":{\"chat_model_config\":" MODEL_CFG "}},"
	    "{\"name\":\"sb\",\"mapping\":\"sandbase\",\"url\":\"http://127.0.0.1:%d\","
	    "\"retries\":0,\"timeout_ms\":3000,\"options\":{\"api_key_file\":\"%s\"}}],"
	    "\"keys\":["
	    "{\"name\":\"alpha\",\"sha256\":\"%s\",\"backends\":{\"as\":{\"user_id\":\"alice\"}}},"
	    "{\"name\":\"sbuser\",\"sha256\":\"%s\",\"backends\":{\"sb\":{}}}"
	    "%s%s%s%s%s%s]}",
	    secrets, readiness, as_port, max_concurrent, sb.port, sb_key_file, ha, hs,
	    beta ? ",{\"name\":\"beta\",\"sha256\":\"" : "", beta ? hb : "",
	    beta == 2 ? "\",\"rate_limit\":{\"requests_per_second\":0.016,\"burst\":1},"
	                "\"backends\":{\"as\":{\"user_id\":\"bob\"}}}"
	    : beta    ? "\",\"backends\":{\"as\":{\"user_id\":\"bob\"}}}"
	              : "",
	    gamma ? ",{\"name\":\"gamma\",\"sha256\":\"" : "", gamma ? hg : "",
	    gamma ? "\",\"backends\":{\"as\":{\"user_id\":\"carol\"}}}" : "");
	cfg = json_loads(doc, 0, &je);
	ck_assert_msg(cfg != NULL, "%s: %s", je.text, doc);
	return cfg;
}

static void fakes(void)
{
	const char *a_as[] = {"--generate", "30:2", "--seed", "3", "--run-ms", "300", NULL};
	const char *a_sb[] = {"--dialect", "sandbase",  "--generate", "6:2", "--seed",
	                      "5",         "--api-key", SB_KEY,       NULL};
	FILE *f;

	ck_assert_int_eq(h_fake_start(&fake, a_as), 0);
	ck_assert_int_eq(h_fake_start_bin(&sb, "tests/fake_sandbase", a_sb), 0);
	snprintf(sb_key_file, sizeof(sb_key_file), "/tmp/sg-lifecycle-%d.key", (int)getpid());
	f = fopen(sb_key_file, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s\n", SB_KEY);
	fclose(f);
}

static void start(const json_t *cfg)
{
	ck_assert_int_eq(h_gateway_start(&gw, cfg), 0);
}

/* Writes the gateway's configuration file anew (as an operator would) and sends SIGHUP. */
static void reload_with(const json_t *cfg)
{
	char path[512], tmp[600];

	json_t *c = json_deep_copy(cfg);

	/* where it listens does not change (a reload would only warn) */
	json_object_set_new(c, "listen", json_sprintf("127.0.0.1:%d", gw.port));
	config_path(path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	ck_assert_int_eq(json_dump_file(c, tmp, JSON_INDENT(1)), 0);
	json_decref(c);
	ck_assert_int_eq(rename(tmp, path), 0);
	ck_assert_int_eq(kill(gw.pid, SIGHUP), 0);
}

static void reload_text(const char *text)
{
	char path[512];
	FILE *f;

	config_path(path, sizeof(path));
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	ck_assert_int_eq(kill(gw.pid, SIGHUP), 0);
}

/* How many times `what` is in the gateway's log. */
static int log_count(const char *what)
{
	FILE *f = fopen(gw.log, "r");
	char line[4096];
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, what))
			n++;
	fclose(f);
	return n;
}

/* Waits (5 s at most) until `what` is in the log `want` times; returns how many it saw. The
 * gateway logs a reload once every worker runs new requests in it. */
static int wait_log(const char *what, int want)
{
	int n = 0;

	for (int i = 0; i < 500 && (n = log_count(what)) < want; i++)
		sleep_ms(10);
	return n;
}

static long status_of(const char *const *hdr, const char *path)
{
	struct h_res r;
	long st;

	ck_assert_int_eq(h_get(gw.port, path, hdr, &r), 0);
	st = r.status;
	h_res_free(&r);
	return st;
}

/* ---- the load: clients asking all along, on their own connections ---------------------- */

struct load {
	pthread_t t;
	atomic_int *stop;
	const char *const *hdr;
	const char *path;
	int keep_alive; /* one connection for every request */
	long total, failed, connects;
	char first_failure[512];
};

static size_t discard(char *d, size_t sz, size_t n, void *arg)
{
	(void)d;
	(void)arg;
	return sz * n;
}

/* Requests back to back on one kept-alive connection: a reload must not close it. */
static void keep_alive_load(struct load *l)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hl = NULL;
	char url[256];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", gw.port, l->path);
	for (size_t i = 0; l->hdr[i]; i++)
		hl = curl_slist_append(hl, l->hdr[i]);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	while (!atomic_load(l->stop)) {
		long status = 0, made = 0;
		CURLcode rc = curl_easy_perform(c);

		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &made);
		l->total++;
		l->connects += made;
		if ((rc != CURLE_OK || status != 200) && !l->failed++)
			snprintf(l->first_failure, sizeof(l->first_failure), "%ld %s", status,
			         curl_easy_strerror(rc));
	}
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
}

static void *load_thread(void *arg)
{
	struct load *l = arg;

	if (l->keep_alive) {
		keep_alive_load(l);
		return NULL;
	}
	while (!atomic_load(l->stop)) {
		struct h_res r;
		int rc = h_get(gw.port, l->path, l->hdr, &r);

		l->total++;
		if (rc != 0 || r.status != 200) {
			if (!l->failed++)
				snprintf(l->first_failure, sizeof(l->first_failure), "%ld %s",
				         rc ? -1 : r.status, rc ? "(no answer)" : r.body);
		}
		if (rc == 0)
			h_res_free(&r);
	}
	return NULL;
}

/* A new AgentScope session for alpha; its public id (malloc'd). */
static char *new_session(void)
{
	struct h_res r;
	char body[512], *agent, *sid;

	ck_assert_int_eq(h_get(gw.port, "/v1/agents", KA, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	agent = strdup(json_string_value(
	    json_object_get(json_array_get(json_object_get(r.json, "data"), 0), "id")));
	h_res_free(&r);
	snprintf(body, sizeof(body),
	         "{\"agent\":\"%s\",\"environment_id\":\"env_life\",\"title\":\"reload\"}", agent);
	free(agent);
	ck_assert_int_eq(h_send("POST", gw.port, "/v1/sessions", KA, body, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	sid = strdup(json_string_value(json_object_get(r.json, "id")));
	h_res_free(&r);
	return sid;
}

static void send_text(const char *sid, const char *text)
{
	char path[512], body[512];
	struct h_res r;

	snprintf(path, sizeof(path), "/v1/sessions/%s/events", sid);
	snprintf(body, sizeof(body),
	         "{\"events\":[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":"
	         "\"%s\"}]}]}",
	         text);
	ck_assert_int_eq(h_send("POST", gw.port, path, KA, body, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	h_res_free(&r);
}

/* Reads the stream until an event of `type` whose data holds `text` (5 s at most). */
static int stream_sees(struct h_sse *s, const char *type, const char *text)
{
	struct h_sse_ev ev;
	int found = 0;

	while (!found && h_sse_next(s, 5000, &ev) == 1) {
		found = ev.json && !strcmp(ev.event, type) && ev.data && strstr(ev.data, text);
		h_sse_ev_free(&ev);
	}
	return found;
}

/* The second page's cursor of alpha's session listing (malloc'd). */
static char *next_cursor(void)
{
	struct h_res r;
	char *tok;

	ck_assert_int_eq(h_get(gw.port, "/v1/sessions?limit=2", KA, &r), 0);
	ck_assert_msg(r.status == 200, "%s", r.body);
	ck_assert(json_is_string(json_object_get(r.json, "next_page")));
	tok = strdup(json_string_value(json_object_get(r.json, "next_page")));
	h_res_free(&r);
	return tok;
}

static struct h_res page_at(const char *tok)
{
	char path[8192];
	struct h_res r;

	snprintf(path, sizeof(path), "/v1/sessions?limit=2&page=%s", tok);
	ck_assert_int_eq(h_get(gw.port, path, KA, &r), 0);
	return r;
}

START_TEST(reload_under_load_drops_nothing)
{
	const char *secrets_a = "\"" SECRET_A "\"";
	const char *secrets_ba = "[\"" SECRET_B "\",\"" SECRET_A "\"]";
	const char *secrets_b = "[\"" SECRET_B "\"]";
	const char *ready = "{\"probe_interval_ms\":500}";
	json_t *c1 = config(0, 0, 1024, secrets_a, ready, fake.port), *c2, *c3;
	atomic_int stop = 0;
	struct load l[6];
	struct h_sse s;
	struct h_res r;
	char *sid, *tok, path[512];
	long total = 0;

	start(c1);
	/* before: beta and gamma are unknown; the SandBase key from the file works */
	ck_assert_int_eq(status_of(KB, "/v1/sessions"), 401);
	ck_assert_int_eq(status_of(KG, "/v1/sessions"), 401);
	ck_assert_int_eq(status_of(KS, "/v1/sessions"), 200);
	tok = next_cursor(); /* sealed under secret A */

	/* a live stream, open across every reload */
	sid = new_session();
	snprintf(path, sizeof(path), "/v1/sessions/%s/events/stream", sid);
	ck_assert_int_eq(h_sse_open(&s, gw.port, path, (const char *const[]){KA[0], NULL}, 5000),
	                 0);
	ck_assert_int_eq(s.status, 200);
	send_text(sid, "before the reload");
	ck_assert_msg(stream_sees(&s, "user.message", "before the reload"), "stream before");
	/* the run that answers it streams from the backend to its end */
	ck_assert_msg(stream_sees(&s, "session.status_idle", ""), "no idle");

	for (int i = 0; i < 6; i++) {
		memset(&l[i], 0, sizeof(l[i]));
		l[i].stop = &stop;
		l[i].hdr = i == 3 || i == 5 ? KS : KA;
		l[i].path = i == 2 ? "/v1/agents" : "/v1/sessions?limit=3";
		l[i].keep_alive = i >= 4;
		ck_assert_int_eq(pthread_create(&l[i].t, NULL, load_thread, &l[i]), 0);
	}
	sleep_ms(200); /* the load runs before the reload too */

	/* 1: a new key, another limit, a second cursor secret (the new one first) */
	c2 = config(1, 0, 500, secrets_ba, ready, fake.port);
	reload_with(c2);
	ck_assert_int_eq(wait_log("reloaded configuration (2 backends, 3 keys", 1), 1);
	ck_assert_int_eq(status_of(KB, "/v1/sessions"), 200);
	r = page_at(tok); /* sealed under A, opened under [B, A] */
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	h_res_free(&r);

	/* the stream opened before the reload still streams, on the old configuration */
	send_text(sid, "after the first reload");
	ck_assert_msg(stream_sees(&s, "user.message", "after the first reload"), "stream after");
	/* the run that answers it streams from the backend to its end */
	ck_assert_msg(stream_sees(&s, "session.status_idle", ""), "no idle");

	/* 2: two reloads at once; the second (gamma, and secret A retired) wins */
	c3 = config(2, 1, 700, secrets_b, ready, fake.port);
	reload_with(c2);
	reload_with(c3);
	ck_assert_int_ge(wait_log("reloaded configuration (2 backends, 4 keys", 1), 1);
	ck_assert_int_eq(status_of(KG, "/v1/sessions"), 200);
	/* beta's new rate limit holds from its next request on */
	ck_assert_int_eq(status_of(KB, "/v1/sessions"), 200);
	ck_assert_int_eq(status_of(KB, "/v1/sessions"), 429);
	r = page_at(tok); /* A is no longer listed: the usual 400 */
	ck_assert_int_eq(r.status, 400);
	ck_assert_ptr_nonnull(strstr(r.body, "page: not a cursor this gateway issued"));
	h_res_free(&r);

	/* 3: an invalid file is refused, with the reason; the configuration before it serves */
	reload_text("{\"workers\":2,\"cursor_secret\":\"" SECRET_B "\",\"bogus\":1}");
	ck_assert_int_eq(wait_log("reload refused: ", 1), 1);
	ck_assert_int_eq(log_count("need a restart"), 0);
	ck_assert_int_eq(log_count("bogus: unknown key; still running with the previous "
	                           "configuration"),
	                 1);
	ck_assert_int_eq(status_of(KG, "/v1/sessions"), 200);
	ck_assert_int_eq(kill(gw.pid, 0), 0);
	/* 4: one reload after another, under the same load, around the same stream */
	for (int i = 0; i < 10; i++) {
		int before = log_count("reloaded configuration");

		reload_with(i % 2 ? c3 : c2);
		ck_assert_int_eq(wait_log("reloaded configuration", before + 1), before + 1);
	}
	ck_assert_int_eq(status_of(KG, "/v1/sessions"), 200);
	send_text(sid, "after the refused reload");
	ck_assert_msg(stream_sees(&s, "user.message", "after the refused reload"), "stream last");
	/* the run that answers it streams from the backend to its end */
	ck_assert_msg(stream_sees(&s, "session.status_idle", ""), "no idle");

	sleep_ms(200); /* the load runs after the reloads too */
	atomic_store(&stop, 1);
	for (int i = 0; i < 6; i++) {
		pthread_join(l[i].t, NULL);
		ck_assert_msg(l[i].failed == 0, "client %d: %ld of %ld failed, first: %s", i,
		              l[i].failed, l[i].total, l[i].first_failure);
		total += l[i].total;
	}
	/* the kept-alive clients used one connection each, from before the first reload to
	 * after the last */
	ck_assert_int_eq(l[4].connects, 1);
	ck_assert_int_eq(l[5].connects, 1);
	ck_assert_int_ge(l[4].total, 10);
	ck_assert_int_ge(l[5].total, 10);
	ck_assert_msg(total >= 40, "only %ld requests ran", total);
	h_sse_close(&s);
	/* no secret reached the log: not the backend key from the file, not a cursor secret */
	ck_assert_int_eq(log_count(SB_KEY), 0);
	ck_assert_int_eq(log_count("lifecycle-secret"), 0);
	free(tok);
	free(sid);
	json_decref(c1);
	json_decref(c2);
	json_decref(c3);
}
END_TEST

static void fake_mode(const char *mode)
{
	char path[128];
	struct h_res r;

	snprintf(path, sizeof(path), "/__fake/mode?%s", mode);
	ck_assert_int_eq(h_send("POST", fake.port, path, NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	h_res_free(&r);
}

struct one_get {
	pthread_t t;
	const char *path;
	long status;
	char body[512];
};

static void *one_get_thread(void *arg)
{
	struct one_get *g = arg;
	struct h_res r;

	g->status = h_get(gw.port, g->path, KA, &r) == 0 ? r.status : -1;
	snprintf(g->body, sizeof(g->body), "%s", r.body ? r.body : "");
	h_res_free(&r);
	return NULL;
}

/* Requests the fake AgentScope has recorded. */
static size_t fake_recorded(void)
{
	struct h_res r;
	size_t n;

	ck_assert_int_eq(h_get(fake.port, "/__fake/requests", NULL, &r), 0);
	n = json_array_size(r.json);
	h_res_free(&r);
	return n;
}

/* A request that has reached its backend when the reload points the backend elsewhere
 * finishes on the configuration it started in (its next upstream calls too), while a new
 * request already gets the new one. The old generation is freed only when the request ends:
 * the sanitizer build sees any use after that. */
START_TEST(a_request_in_flight_finishes_on_its_configuration)
{
	json_t *c1 = config(0, 0, 1024, "\"" SECRET_A "\"", "{}", fake.port);
	json_t *c2 = config(0, 0, 1024, "\"" SECRET_A "\"", "{}", h_free_port());
	struct one_get g = {.path = "/v1/sessions?limit=2"};
	struct h_res r;

	start(c1);
	ck_assert_int_eq(h_request("DELETE", fake.port, "/__fake/requests", NULL, &r), 0);
	h_res_free(&r);
	/* every backend answer now takes 600 ms; a listing without agent_id asks /agent/ first,
	 * then the agent's sessions */
	fake_mode("mode=slow&delay_ms=600");
	ck_assert_int_eq(pthread_create(&g.t, NULL, one_get_thread, &g), 0);
	for (int i = 0; i < 500 && fake_recorded() == 0; i++)
		sleep_ms(10);
	ck_assert_uint_ge(fake_recorded(), 1); /* it is at the backend */
	reload_with(c2);                       /* the backend now points at a closed port */
	ck_assert_int_eq(wait_log("reloaded configuration", 1), 1);
	ck_assert_int_ge(status_of(KA, "/v1/sessions?limit=2"), 500); /* new: the new URL */
	pthread_join(g.t, NULL);
	ck_assert_msg(g.status == 200, "%ld %s", g.status, g.body); /* old: the old URL */
	ck_assert_uint_ge(fake_recorded(), 2); /* its second call went to the old backend */
	fake_mode("mode=ok&delay_ms=0");
	json_decref(c1);
	json_decref(c2);
}
END_TEST

static void write_key_file(const char *text)
{
	char tmp[160];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.new", sb_key_file);
	f = fopen(tmp, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	ck_assert_int_eq(rename(tmp, sb_key_file), 0);
}

/* A backend key rotated through its file: a reload reads it again; an empty file is refused
 * and the key in use kept. */
START_TEST(a_reload_reads_the_backend_key_file_again)
{
	json_t *cfg = config(0, 0, 1024, "\"" SECRET_A "\"", "{}", fake.port);
	long st;

	start(cfg);
	ck_assert_int_eq(status_of(KS, "/v1/sessions"), 200);
	/* a key the backend does not take: the backend's refusal shows */
	write_key_file("sk-sb-not-this-one\n");
	reload_with(cfg);
	ck_assert_int_eq(wait_log("reloaded configuration", 1), 1);
	st = status_of(KS, "/v1/sessions");
	ck_assert_msg(st != 200, "the old key is still in use");
	/* an empty file: refused, naming the option, and the key in use stays */
	write_key_file("");
	reload_with(cfg);
	ck_assert_int_eq(wait_log("reload refused: ", 1), 1);
	ck_assert_int_eq(log_count("backends[1].options: api_key_file: "), 1);
	ck_assert_int_eq(status_of(KS, "/v1/sessions"), st);
	/* the right key again */
	write_key_file(SB_KEY "\n");
	reload_with(cfg);
	ck_assert_int_eq(wait_log("reloaded configuration", 2), 2);
	ck_assert_int_eq(status_of(KS, "/v1/sessions"), 200);
	ck_assert_int_eq(log_count(SB_KEY), 0);
	ck_assert_int_eq(log_count("sk-sb-not-this-one"), 0);
	json_decref(cfg);
}
END_TEST

/* Waits (5 s at most) until /readyz answers `want`; returns the last answer (to free). */
static struct h_res readyz_until(long want)
{
	struct h_res r = {0};

	for (int i = 0; i < 250; i++) {
		ck_assert_int_eq(h_get(gw.port, "/readyz", NULL, &r), 0);
		if (r.status == want)
			break;
		h_res_free(&r);
		sleep_ms(20);
	}
	return r;
}

START_TEST(readyz_follows_the_backends)
{
	const char *ready = "{\"probe_interval_ms\":100,\"probe_timeout_ms\":300}";
	json_t *cfg = config(0, 0, 1024, "\"" SECRET_A "\"", ready, fake.port);
	char port[16];
	const char *again[] = {"--port", port, "--generate", "4:1", NULL};
	struct h_res r;
	json_t *bad;

	start(cfg);
	r = readyz_until(200);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "status")), "ready");
	h_res_free(&r);
	/* liveness does not follow the backends */
	ck_assert_int_eq(status_of(NULL, "/healthz"), 200);

	/* the AgentScope backend goes away: not ready, and the answer names it */
	snprintf(port, sizeof(port), "%d", fake.port);
	h_stop(&fake, 2000);
	r = readyz_until(503);
	ck_assert_msg(r.status == 503, "%s", r.body);
	ck_assert(json_is_false(json_object_get(r.json, "draining")));
	bad = json_object_get(r.json, "backends");
	ck_assert_int_eq(json_array_size(bad), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(bad, 0), "name")), "as");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(bad, 0), "reason")),
	                 "unreachable");
	h_res_free(&r);
	ck_assert_int_eq(status_of(NULL, "/healthz"), 200);

	/* back on the same port: ready again */
	ck_assert_int_eq(h_fake_start(&fake, again), 0);
	r = readyz_until(200);
	ck_assert_msg(r.status == 200, "%s", r.body);
	h_res_free(&r);
	json_decref(cfg);
}
END_TEST

/* A backend that answers, but only with 500s: its probe still gets an answer, but its open
 * breaker makes the instance not ready; a reload closes the breaker. */
START_TEST(an_open_breaker_is_not_ready)
{
	const char *ready = "{\"probe_interval_ms\":100}";
	json_t *cfg = config(0, 0, 1024, "\"" SECRET_A "\"", ready, fake.port);
	struct h_res r;
	json_t *bad;

	start(cfg);
	r = readyz_until(200);
	ck_assert_int_eq(r.status, 200);
	h_res_free(&r);
	fake_mode("mode=http500");
	for (int i = 0; i < 2; i++)
		ck_assert_int_ge(status_of(KA, "/v1/sessions?limit=1"), 500);
	ck_assert_int_eq(status_of(KA, "/v1/sessions?limit=1"), 503); /* open */
	r = readyz_until(503);
	ck_assert_msg(r.status == 503, "%s", r.body);
	bad = json_object_get(r.json, "backends");
	ck_assert_int_eq(json_array_size(bad), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(bad, 0), "reason")),
	                 "breaker open");
	h_res_free(&r);
	/* the backend is fixed and the configuration reloaded: its breaker starts closed */
	fake_mode("mode=ok");
	reload_with(cfg);
	ck_assert_int_eq(wait_log("reloaded configuration", 1), 1);
	r = readyz_until(200);
	ck_assert_msg(r.status == 200, "%s", r.body);
	h_res_free(&r);
	ck_assert_int_eq(status_of(KA, "/v1/sessions?limit=1"), 200);
	json_decref(cfg);
}
END_TEST

/* Waits for the gateway to exit (timeout_ms); its exit status, or -1 when it still runs. */
static int wait_exit(int timeout_ms)
{
	int st;

	for (int i = 0; i < timeout_ms / 10; i++) {
		if (waitpid(gw.pid, &st, WNOHANG) == gw.pid) {
			gw.pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		sleep_ms(10);
	}
	return -1;
}

START_TEST(sigterm_fails_readiness_first)
{
	const char *ready = "{\"drain_delay_ms\":3000,\"probe_interval_ms\":100}";
	json_t *cfg = config(0, 0, 1024, "\"" SECRET_A "\"", ready, fake.port);
	struct h_res r;
	long t0;
	int rc;

	start(cfg);
	r = readyz_until(200);
	ck_assert_int_eq(r.status, 200);
	h_res_free(&r);
	t0 = now_ms();
	ck_assert_int_eq(kill(gw.pid, SIGTERM), 0);
	r = readyz_until(503);
	ck_assert_msg(r.status == 503, "%s", r.body);
	ck_assert(json_is_true(json_object_get(r.json, "draining")));
	h_res_free(&r);
	/* meanwhile everything else is served, on new connections too */
	ck_assert_int_eq(status_of(KA, "/v1/sessions"), 200);
	ck_assert_int_eq(status_of(NULL, "/healthz"), 200);
	ck_assert_msg(now_ms() - t0 < 3000, "the checks above took the whole delay");
	/* then it stops: within the delay and the grace (and some slack for a loaded machine) */
	rc = wait_exit(3000 + 2000 + 3000);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(log_count("not ready (/readyz 503)"), 1);
	json_decref(cfg);
}
END_TEST

START_TEST(a_second_sigterm_skips_the_delay)
{
	const char *ready = "{\"drain_delay_ms\":600000}";
	json_t *cfg = config(0, 0, 1024, "\"" SECRET_A "\"", ready, fake.port);
	struct h_res r;

	start(cfg);
	ck_assert_int_eq(kill(gw.pid, SIGTERM), 0);
	r = readyz_until(503);
	ck_assert_int_eq(r.status, 503);
	h_res_free(&r);
	ck_assert_int_eq(status_of(KA, "/v1/sessions"), 200);
	ck_assert_int_eq(kill(gw.pid, SIGTERM), 0);
	/* the ten minutes are not waited for */
	ck_assert_int_eq(wait_exit(2000 + 5000), 0);
	ck_assert_int_eq(log_count("the rest of the drain delay is skipped"), 1);
	json_decref(cfg);
}
END_TEST

static void setup(void)
{
	fakes();
}

static void teardown(void)
{
	if (gw.pid > 0)
		/* a clean exit: the sanitizer build aborts on any memory error */
		ck_assert_int_eq(h_stop(&gw, 8000), 0);
	h_stop(&fake, 2000);
	h_stop(&sb, 2000);
	unlink(sb_key_file);
}

int main(void)
{
	Suite *s = suite_create("lifecycle");
	TCase *tc = tcase_create("lifecycle");
	SRunner *sr;
	int failed;

	curl_global_init(CURL_GLOBAL_DEFAULT); /* before the load's threads */
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, reload_under_load_drops_nothing);
	tcase_add_test(tc, a_reload_reads_the_backend_key_file_again);
	tcase_add_test(tc, a_request_in_flight_finishes_on_its_configuration);
	tcase_add_test(tc, readyz_follows_the_backends);
	tcase_add_test(tc, an_open_breaker_is_not_ready);
	tcase_add_test(tc, sigterm_fails_readiness_first);
	tcase_add_test(tc, a_second_sigterm_skips_the_delay);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
