/* test_config.c - configuration validation: every error names its key, and auth lookups. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "cors.h"
#include "options.h"

#define SECRET "0123456789abcdef0123456789abcdef"
/* any well-formed hash; which key it matches does not matter here */
#define KEYHASH "5f3a9d7a1a2b1d9e0e0b9f3d0c8c1a6f8b1e7c2d4a5b6c7d8e9f0a1b2c3d4e5f"

#define BASE_FMT                                                                                   \
	"{\"listen\":\"127.0.0.1:0\",\"workers\":1,\"cursor_secret\":\"" SECRET "\","              \
	"\"backends\":[{\"name\":\"as\",\"mapping\":\"agentscope\",\"url\":\"http://127.0.0.1:1/"  \
	"\","                                                                                      \
	"\"options\":{\"timezone\":\"Asia/Shanghai\"}}],"                                          \
	"\"keys\":[{\"name\":\"alice\",\"sha256\":\"%s\",\"backends\":{\"as\":{\"user_id\":"       \
	"\"alice\"}}}]}"

static struct sg_config *load(const char *text, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loads(text, 0, &je);
	struct sg_config *cfg;

	ck_assert_msg(root != NULL, "bad test JSON: %s", je.text);
	cfg = sg_config_from_json(root, "test.json", err, errlen);
	json_decref(root);
	return cfg;
}

static char *base_with(const char *hash)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf), BASE_FMT, hash);
	return buf;
}

START_TEST(valid)
{
	char err[512] = "";
	struct sg_config *cfg = load(base_with(KEYHASH), err, sizeof(err));

	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_str_eq(cfg->listen_host, "127.0.0.1");
	ck_assert_int_eq(cfg->listen_port, 0);
	ck_assert_int_eq(cfg->nbackends, 1);
	ck_assert_str_eq(cfg->backends[0].url, "http://127.0.0.1:1"); /* slash trimmed */
	ck_assert_int_eq(cfg->backends[0].timeout_ms, 10000);
	ck_assert_int_eq(cfg->keys[0].nroutes, 1);
	ck_assert_ptr_eq(cfg->keys[0].routes[0].backend, &cfg->backends[0]);
	ck_assert_int_eq(cfg->secretlen, 32);
	/* the defaults of the write path and streams */
	ck_assert_uint_eq(cfg->max_write_body_bytes, 256 << 10);
	ck_assert_int_eq(cfg->idempotency_window_ms, 86400000);
	ck_assert_uint_eq(cfg->idempotency_max_keys, 100000);
	ck_assert_uint_eq(cfg->max_stream_backlog_bytes, 1 << 20);
	ck_assert_int_eq(cfg->backends[0].stream_idle_timeout_ms, 120000);
	/* the defaults of the read cache, upstream memory and overload guards */
	ck_assert_uint_eq(cfg->cache_max_bytes, (size_t)256 << 20);
	ck_assert_int_eq(cfg->walk_snapshot_ms, 60000);
	ck_assert_uint_eq(cfg->max_upstream_bytes, (size_t)96 << 20);
	ck_assert_uint_eq(cfg->backends[0].max_response_bytes, (size_t)48 << 20);
	ck_assert_int_eq(cfg->backends[0].max_concurrent, 1024);
	ck_assert_int_eq(cfg->backends[0].breaker.threshold, 5);
	ck_assert_int_eq(cfg->backends[0].breaker.open_ms, 10000);
	ck_assert_int_eq(cfg->backends[0].fresh_ms, 1000); /* AgentScope's cache_ms */
	ck_assert_ptr_null(cfg->keys[0].bucket);
	ck_assert_int_eq(cfg->drain_delay_ms, 0);
	ck_assert_int_eq(cfg->probe_interval_ms, 2000);
	ck_assert_int_eq(cfg->probe_timeout_ms, 1000);
	ck_assert_uint_eq(cfg->nsecrets, 1);
	ck_assert_uint_eq(cfg->generation, 1);
	ck_assert_int_eq(atomic_load(&cfg->refs), 1);
	ck_assert_int_eq(atomic_load(&cfg->backends[0].state->reachable), -1);
	sg_config_free(cfg);
}
END_TEST

/* Writes text to a new temporary file; returns its path (static buffer per slot). */
static const char *temp_file(int slot, const char *text)
{
	static char paths[4][64];
	FILE *f;

	snprintf(paths[slot], sizeof(paths[slot]), "/tmp/sg-test-config-%d-%d", (int)getpid(),
	         slot);
	f = fopen(paths[slot], "wb");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return paths[slot];
}

#define SECRET_B "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
#define SECRET_C "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"

/* Rotation: cursor_secret and cursor_secret_file as arrays, inline ones first, the first of
 * all seals; a secret given both inline and in a file is refused. */
START_TEST(several_secrets)
{
	char doc[4096], err[512] = "";
	const char *src = base_with(KEYHASH), *at = strstr(src, "\"cursor_secret\"");
	const char *after = strstr(at, ",");
	const char *fc = temp_file(0, SECRET_C "\n"), *fa = temp_file(1, SECRET "\r\n");
	struct sg_config *cfg;

	snprintf(doc, sizeof(doc),
	         "%.*s\"cursor_secret\":[\"" SECRET_B "\",\"" SECRET "\"],\"cursor_secret_file\":"
	         "\"%s\"%s",
	         (int)(at - src), src, fc, after);
	cfg = load(doc, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_uint_eq(cfg->nsecrets, 3);
	ck_assert_uint_eq(cfg->secretlen, strlen(SECRET_B));
	ck_assert_int_eq(memcmp(cfg->secret, SECRET_B, cfg->secretlen), 0);
	ck_assert_ptr_eq(cfg->secrets[0].bytes, cfg->secret);
	ck_assert_int_eq(memcmp(cfg->secrets[1].bytes, SECRET, 32), 0);
	ck_assert_uint_eq(cfg->secrets[2].len, strlen(SECRET_C)); /* the line break trimmed */
	ck_assert_int_eq(memcmp(cfg->secrets[2].bytes, SECRET_C, cfg->secrets[2].len), 0);
	sg_config_free(cfg);

	/* the same secret inline and in a file: named by the file's index */
	snprintf(doc, sizeof(doc),
	         "%.*s\"cursor_secret\":\"" SECRET "\",\"cursor_secret_file\":[\"%s\",\"%s\"]%s",
	         (int)(at - src), src, fc, fa, after);
	ck_assert_ptr_null(load(doc, err, sizeof(err)));
	ck_assert_str_eq(err, "test.json: cursor_secret_file[1]: the same secret is given twice");
	/* the secret itself never appears in a message */
	ck_assert_ptr_null(strstr(err, SECRET));
	unlink(fc);
	unlink(fa);
}
END_TEST

/* A backend's API key from a file: read at load, one trailing line break trimmed; errors
 * name the option and the path, never the key. */
START_TEST(api_key_file)
{
	const char *good = temp_file(0, "sk-from-file\n"), *empty = temp_file(1, "");
	const char *two = temp_file(2, "sk-secret-line\nsecond\n");
	struct sg_error e = {0};
	char key[64], doc[512], err[512] = "";
	json_t *o;

	snprintf(doc, sizeof(doc), "{\"api_key_file\":\"%s\"}", good);
	o = json_loads(doc, 0, NULL);
	ck_assert_int_eq(
	    sg_option_secret_or_file(o, "api_key", "api_key_file", key, sizeof(key), &e), 0);
	ck_assert_str_eq(key, "sk-from-file");
	json_decref(o);

	snprintf(doc, sizeof(doc), "{\"api_key_file\":\"%s\"}", two);
	o = json_loads(doc, 0, NULL);
	ck_assert_int_eq(
	    sg_option_secret_or_file(o, "api_key", "api_key_file", key, sizeof(key), &e), -1);
	ck_assert_ptr_nonnull(strstr(e.message, "api_key_file: "));
	ck_assert_ptr_null(strstr(e.message, "sk-secret-line"));
	json_decref(o);

	/* through the configuration: the JSON path of the options, then the option */
	for (int i = 0; i < 4; i++) {
		static const char *const mapping[] = {"sandbase", "claude", "sandbase", "sandbase"};
		const char *file = i == 0   ? good
		                   : i == 1 ? empty
		                   : i == 2 ? "/nonexistent/k"
		                            : good;
		json_t *root;
		struct sg_config *cfg;

		root = json_pack("{s:s, s:[{s:s, s:s, s:s, s:{s:s}}], s:[{s:s, s:s, s:{s:{}}}]}",
		                 "cursor_secret", SECRET, "backends", "name", "b", "mapping",
		                 mapping[i], "url", "http://127.0.0.1:1", "options", "api_key_file",
		                 file, "keys", "name", "k", "sha256", KEYHASH, "backends", "b");
		ck_assert_ptr_nonnull(root);
		if (i == 3)
			json_object_set_new(
			    json_object_get(json_array_get(json_object_get(root, "backends"), 0),
			                    "options"),
			    "api_key", json_string("sk-inline"));
		cfg = sg_config_from_json(root, "t", err, sizeof(err));
		json_decref(root);
		if (i == 0) {
			ck_assert_msg(cfg != NULL, "%s", err);
			sg_config_free(cfg);
			continue;
		}
		ck_assert_ptr_null(cfg);
		if (i == 1)
			ck_assert_msg(strstr(err, "t: backends[0].options: api_key_file: ") &&
			                  strstr(err, "is empty"),
			              "%s", err);
		if (i == 2)
			ck_assert_msg(strstr(err,
			                     "t: backends[0].options: api_key_file: cannot read "
			                     "/nonexistent/k"),
			              "%s", err);
		if (i == 3) {
			ck_assert_msg(
			    strstr(err, "t: backends[0].options: api_key, api_key_file: give only "
			                "one of them"),
			    "%s", err);
			ck_assert_ptr_null(strstr(err, "sk-inline"));
		}
	}
	unlink(good);
	unlink(empty);
	unlink(two);
}
END_TEST

/* A document with backends "as" (and "extra") and keys alice (and "bob"), alice limited to
 * `rps` requests a second. */
static struct sg_config *gen_doc(int extra, double rps, int workers)
{
	char err[512] = "";
	json_t *root = json_pack(
	    "{s:s, s:i, s:[{s:s, s:s, s:s}], s:[{s:s, s:s, s:{s:{s:s}}, s:{s:f}}]}",
	    "cursor_secret", SECRET, "workers", workers, "backends", "name", "as", "mapping",
	    "agentscope", "url", "http://127.0.0.1:1", "keys", "name", "alice", "sha256", KEYHASH,
	    "backends", "as", "user_id", "alice", "rate_limit", "requests_per_second", rps);
	struct sg_config *cfg;

	ck_assert_ptr_nonnull(root);
	if (extra) {
		json_array_append_new(json_object_get(root, "backends"),
		                      json_pack("{s:s, s:s, s:s}", "name", "extra", "mapping",
		                                "agentscope", "url", "http://127.0.0.1:2"));
		json_array_append_new(
		    json_object_get(root, "keys"),
		    json_pack("{s:s, s:s, s:{s:{s:s}}}", "name", "bob", "sha256",
		              "1f3a9d7a1a2b1d9e0e0b9f3d0c8c1a6f8b1e7c2d4a5b6c7d8e9f0a1b2c3d4e5f",
		              "backends", "extra", "user_id", "bob"));
	}
	cfg = sg_config_from_json(root, "gen.json", err, sizeof(err));
	json_decref(root);
	ck_assert_msg(cfg != NULL, "%s", err);
	return cfg;
}

/* Generations: references, and what a new generation shares with the one before it. */
START_TEST(generations)
{
	struct sg_config *g1 = gen_doc(0, 5, 1), *g2, *g3;
	struct sg_backend_state *st;
	struct sg_key_state *ks;
	struct sg_bucket *b1;
	char kept[512];

	/* references: the last one frees (ASan would see a use after free or a leak) */
	ck_assert_ptr_eq(sg_config_ref(g1), g1);
	ck_assert_int_eq(atomic_load(&g1->refs), 2);
	sg_config_unref(g1);
	ck_assert_int_eq(atomic_load(&g1->refs), 1);
	ck_assert_str_eq(g1->backends[0].name, "as");

	st = g1->backends[0].state;
	ks = g1->keys[0].state;
	b1 = g1->keys[0].bucket;
	atomic_store(&st->write_gen, 41);
	atomic_store(&st->inflight, 3);
	atomic_store(&ks->streams, 2);

	/* same rate: the backend's state, the key's state and its bucket carry over */
	g2 = gen_doc(1, 5, 2);
	sg_config_keep_restart_only(g1, g2, kept, sizeof(kept));
	ck_assert_msg(strstr(kept, "workers stays 1") != NULL, "%s", kept);
	ck_assert_int_eq(g2->workers, 1);
	sg_config_inherit(g2, g1);
	ck_assert_uint_eq(g2->generation, 2);
	ck_assert_uint_eq(g1->backends[0].generation, 1);
	ck_assert_uint_eq(g2->backends[0].generation, 2);
	ck_assert_uint_eq(g2->backends[1].generation, 2);
	ck_assert_ptr_eq(g2->backends[0].state, st);
	ck_assert_uint_eq(atomic_load(&st->write_gen), 42); /* bumped: nothing cached before */
	ck_assert_int_eq(atomic_load(&st->inflight), 3);
	ck_assert_int_eq(atomic_load(&st->refs), 2);
	ck_assert_ptr_eq(g2->keys[0].state, ks);
	ck_assert_ptr_eq(g2->keys[0].bucket, b1);
	/* new names start fresh */
	ck_assert_ptr_ne(g2->backends[1].state, st);
	ck_assert_uint_eq(atomic_load(&g2->backends[1].state->write_gen), 0);
	ck_assert_int_eq(atomic_load(&g2->backends[1].state->refs), 1);
	ck_assert_ptr_ne(g2->keys[1].state, ks);

	/* the old generation goes (its last request ended): what g2 shares stays */
	sg_config_unref(g1);
	ck_assert_int_eq(atomic_load(&st->refs), 1);
	ck_assert_int_eq(atomic_load(&st->inflight), 3);
	ck_assert_int_eq(atomic_load(&ks->refs), 1);
	ck_assert(sg_bucket_take(g2->keys[0].bucket, 0, NULL));

	/* another rate: a bucket of its own, the rest still carries over */
	g3 = gen_doc(0, 7, 1);
	sg_config_keep_restart_only(g2, g3, kept, sizeof(kept));
	ck_assert_str_eq(kept, "");
	sg_config_inherit(g3, g2);
	ck_assert_uint_eq(g3->generation, 3);
	ck_assert_ptr_ne(g3->keys[0].bucket, g2->keys[0].bucket);
	ck_assert_ptr_eq(g3->keys[0].state, ks);
	ck_assert_ptr_eq(g3->backends[0].state, st);
	ck_assert_uint_eq(atomic_load(&st->write_gen), 43);
	sg_config_unref(g2);
	ck_assert_int_eq(atomic_load(&st->refs), 1);
	ck_assert_int_eq(atomic_load(&ks->streams), 2);
	sg_config_unref(g3);
}
END_TEST

/* Each broken document must fail with a message that names the key. */
static const struct {
	const char *from, *to, *expect;
} cases[] = {
    {"\"workers\":1", "\"workers\":1,\"wokers\":2", "test.json: wokers: unknown key"},
    {"\"workers\":1", "\"workers\":-1", "workers: must be an integer between 0 and 256"},
    {"127.0.0.1:0", "127.0.0.1", "listen: must be HOST:PORT"},
    {"127.0.0.1:0", "127.0.0.1:99999", "listen: port must be 0..65535"},
    {SECRET, "short", "cursor_secret: must be at least 32 bytes"},
    {"\"cursor_secret\":\"" SECRET "\",", "", "test.json: cursor_secret: is required"},
    /* several cursor secrets (a rotation): each entry is named by its index */
    {"\"cursor_secret\":\"" SECRET "\"", "\"cursor_secret\":[]",
     "test.json: cursor_secret: must not be an empty array"},
    {"\"cursor_secret\":\"" SECRET "\"", "\"cursor_secret\":5",
     "test.json: cursor_secret: must be a string or an array of strings"},
    {"\"cursor_secret\":\"" SECRET "\"", "\"cursor_secret\":[\"" SECRET "\",\"short\"]",
     "test.json: cursor_secret[1]: must be at least 32 bytes"},
    {"\"cursor_secret\":\"" SECRET "\"", "\"cursor_secret\":[\"" SECRET "\",7]",
     "test.json: cursor_secret[1]: must be a non-empty string"},
    {"\"cursor_secret\":\"" SECRET "\"", "\"cursor_secret\":[\"" SECRET "\",\"" SECRET "\"]",
     "test.json: cursor_secret[1]: the same secret is given twice"},
    {"\"cursor_secret\":\"" SECRET "\"",
     "\"cursor_secret\":\"" SECRET "\",\"cursor_secret_file\":[\"/nonexistent/sg-secret\"]",
     "test.json: cursor_secret_file[0]: cannot open /nonexistent/sg-secret"},
    {"\"cursor_secret\":\"" SECRET "\"", "\"cursor_secret_file\":[]",
     "test.json: cursor_secret_file: must not be an empty array"},
    /* readiness */
    {"\"workers\":1", "\"workers\":1,\"readiness\":[]", "test.json: readiness: must be an object"},
    {"\"workers\":1", "\"workers\":1,\"readiness\":{\"drain_ms\":1}",
     "test.json: readiness.drain_ms: unknown key"},
    {"\"workers\":1", "\"workers\":1,\"readiness\":{\"drain_delay_ms\":-1}",
     "test.json: readiness.drain_delay_ms: must be an integer between 0 and 600000"},
    {"\"workers\":1", "\"workers\":1,\"readiness\":{\"probe_interval_ms\":5}",
     "test.json: readiness.probe_interval_ms: must be an integer between 100 and"},
    {"\"workers\":1", "\"workers\":1,\"readiness\":{\"probe_timeout_ms\":\"1s\"}",
     "test.json: readiness.probe_timeout_ms: must be an integer between 10 and"},
    {"agentscope", "nosuch", "backends[0].mapping: unknown mapping 'nosuch'"},
    {"http://127.0.0.1:1/", "ftp://x", "backends[0].url: must start with http:// or https://"},
    {"\"url\"", "\"timeout_ms\":0,\"url\"", "backends[0].timeout_ms: must be an integer between"},
    {"Asia/Shanghai", "Nope/Nowhere", "backends[0].options: timezone:"},
    {"\"timezone\"", "\"tz\":1,\"timezone\"", "backends[0].options: tz: unknown option"},
    {"\"name\":\"as\"", "\"name\":\"A S\"", "backends[0]: name must use only"},
    {"{\"as\":{\"user_id\"", "{\"zz\":{\"user_id\"", "keys[0].backends.zz: no backend named 'zz'"},
    {"\"user_id\":\"alice\"", "\"user\":\"alice\"", "keys[0].backends.as: user_id: must be"},
    {"\"user_id\":\"alice\"", "\"user_id\":\"\"", "keys[0].backends.as: user_id: must be"},
    {"\"keys\":[{", "\"keys\":[],\"k\":[{", "test.json: k: unknown key"},
    {"\"sha256\":\"", "\"sha256\":\"zz", "keys[0].sha256: must be 64 hex characters"},
    {"\"cursor_secret\":\"" SECRET "\"", "\"cursor_secret\":\"$SG_TEST_UNSET_VAR\"",
     "cursor_secret: environment variable SG_TEST_UNSET_VAR is not set"},
    {"\"workers\":1", "\"workers\":1,\"idempotency\":[]", "idempotency: must be an object"},
    {"\"workers\":1", "\"workers\":1,\"idempotency\":{\"window\":1}",
     "idempotency.window: unknown key"},
    {"\"workers\":1", "\"workers\":1,\"idempotency\":{\"window_ms\":5}",
     "idempotency.window_ms: must be an integer between 1000 and"},
    {"\"workers\":1", "\"workers\":1,\"limits\":{\"max_write_body_bytes\":2000000}",
     "limits.max_write_body_bytes: must not exceed limits.max_body_bytes"},
    {"\"url\"", "\"stream_idle_timeout_ms\":10,\"url\"",
     "backends[0].stream_idle_timeout_ms: must be an integer between"},
    /* the read cache, upstream memory and overload guards */
    {"\"workers\":1", "\"workers\":1,\"cache\":[]", "cache: must be an object"},
    {"\"workers\":1", "\"workers\":1,\"cache\":{\"max\":1}", "cache.max: unknown key"},
    {"\"workers\":1", "\"workers\":1,\"cache\":{\"max_bytes\":-1}",
     "cache.max_bytes: must be an integer between"},
    {"\"workers\":1", "\"workers\":1,\"cache\":{\"walk_snapshot_ms\":99999999}",
     "cache.walk_snapshot_ms: must be an integer between"},
    {"\"workers\":1", "\"workers\":1,\"limits\":{\"max_upstream_bytes\":-5}",
     "limits.max_upstream_bytes: must be an integer between"},
    {"\"url\"", "\"max_concurrent\":-1,\"url\"",
     "backends[0].max_concurrent: must be an integer between"},
    {"\"url\"", "\"breaker\":5,\"url\"", "backends[0].breaker: must be an object"},
    {"\"url\"", "\"breaker\":{\"fails\":1},\"url\"", "backends[0].breaker.fails: unknown key"},
    {"\"url\"", "\"breaker\":{\"open_ms\":5},\"url\"",
     "backends[0].breaker.open_ms: must be an integer between"},
    {"\"backends\":{\"as\"", "\"rate_limit\":1,\"backends\":{\"as\"",
     "keys[0].rate_limit: must be an object"},
    {"\"backends\":{\"as\"", "\"rate_limit\":{\"rps\":1},\"backends\":{\"as\"",
     "keys[0].rate_limit.rps: unknown key"},
    {"\"backends\":{\"as\"", "\"rate_limit\":{\"requests_per_second\":0},\"backends\":{\"as\"",
     "keys[0].rate_limit: requests_per_second must be a number above 0"},
    {"\"backends\":{\"as\"",
     "\"rate_limit\":{\"requests_per_second\":2,\"burst\":0},\"backends\":{\"as\"",
     "keys[0].rate_limit: burst must be an integer from 1"},
    /* observability and browsers: log.format, metrics.listen, cors */
    {"\"workers\":1", "\"workers\":1,\"log\":{\"format\":\"xml\"}",
     "log.format: must be \"text\" or \"json\""},
    {"\"workers\":1", "\"workers\":1,\"log\":{\"format\":true}",
     "log.format: must be \"text\" or \"json\""},
    {"\"workers\":1", "\"workers\":1,\"metrics\":\"127.0.0.1:9464\"", "metrics: must be an object"},
    {"\"workers\":1", "\"workers\":1,\"metrics\":{\"port\":9464}", "metrics.port: unknown key"},
    {"\"workers\":1", "\"workers\":1,\"metrics\":{\"listen\":9464}",
     "metrics.listen: must be a string"},
    {"\"workers\":1", "\"workers\":1,\"metrics\":{\"listen\":\"9464\"}",
     "metrics.listen: must be HOST:PORT"},
    {"\"workers\":1", "\"workers\":1,\"metrics\":{\"listen\":\"127.0.0.1:70000\"}",
     "metrics.listen: port must be 0..65535"},
    {"\"listen\":\"127.0.0.1:0\"",
     "\"listen\":\"127.0.0.1:8080\",\"metrics\":{\"listen\":\"127.0.0.1:8080\"}",
     "metrics.listen: must differ from listen"},
    {"\"workers\":1", "\"workers\":1,\"cors\":[]", "cors: must be an object"},
    {"\"workers\":1", "\"workers\":1,\"cors\":{\"origin\":[\"*\"]}", "cors.origin: unknown key"},
    {"\"workers\":1", "\"workers\":1,\"cors\":{}", "cors.origins: must be a non-empty array"},
    {"\"workers\":1", "\"workers\":1,\"cors\":{\"origins\":[]}",
     "cors.origins: must be a non-empty array"},
    {"\"workers\":1", "\"workers\":1,\"cors\":{\"origins\":[\"https://a.example\",\"a.example\"]}",
     "cors.origins[1]: must be \"*\" or an origin"},
    {"\"workers\":1", "\"workers\":1,\"cors\":{\"origins\":[\"https://a.example/\"]}",
     "cors.origins[0]: must be \"*\" or an origin"},
    {"\"workers\":1", "\"workers\":1,\"cors\":{\"origins\":[\"https://a.example/app\"]}",
     "cors.origins[0]: must be \"*\" or an origin"},
    {"\"workers\":1", "\"workers\":1,\"cors\":{\"origins\":[7]}",
     "cors.origins[0]: must be \"*\" or an origin"},
    {"\"workers\":1", "\"workers\":1,\"cors\":{\"origins\":[\"*\"],\"max_age_s\":-1}",
     "cors.max_age_s: must be an integer between 0 and 86400"},
};

START_TEST(errors_name_the_key)
{
	char doc[4096], err[512] = "";
	const char *src = base_with(KEYHASH), *at = strstr(src, cases[_i].from);
	struct sg_config *cfg;

	ck_assert_msg(at != NULL, "case %d: '%s' not in base", _i, cases[_i].from);
	snprintf(doc, sizeof(doc), "%.*s%s%s", (int)(at - src), src, cases[_i].to,
	         at + strlen(cases[_i].from));
	cfg = load(doc, err, sizeof(err));
	ck_assert_msg(cfg == NULL, "case %d loaded: %s", _i, doc);
	ck_assert_msg(strstr(err, cases[_i].expect) != NULL, "case %d: got '%s', want '%s'", _i,
	              err, cases[_i].expect);
}
END_TEST

/* log.format, metrics.listen and cors: their defaults (all off) and what they read. */
START_TEST(observability_keys)
{
	char doc[4096], err[512] = "";
	const char *src = base_with(KEYHASH), *at = strstr(src, "\"workers\":1");
	struct sg_config *cfg = load(src, err, sizeof(err));

	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_int_eq(cfg->log_json, 0);
	ck_assert_ptr_null(cfg->metrics_host);
	ck_assert_ptr_null(cfg->cors);
	sg_config_free(cfg);

	snprintf(doc, sizeof(doc),
	         "%.*s\"log\":{\"format\":\"json\",\"access\":true},"
	         "\"metrics\":{\"listen\":\"[::1]:9464\"},"
	         "\"cors\":{\"origins\":[\"https://App.Example\",\"http://localhost:5173\"]},%s",
	         (int)(at - src), src, at);
	cfg = load(doc, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_int_eq(cfg->log_json, 1);
	ck_assert_str_eq(cfg->metrics_host, "::1");
	ck_assert_int_eq(cfg->metrics_port, 9464);
	ck_assert_ptr_nonnull(cfg->cors);
	ck_assert_uint_eq(cfg->cors->norigins, 2);
	ck_assert_int_eq(cfg->cors->any, 0);
	ck_assert_int_eq(cfg->cors->max_age_s, 600); /* the default */
	ck_assert(sg_cors_allowed(cfg->cors, "https://app.example"));
	ck_assert(sg_cors_allowed(cfg->cors, "http://localhost:5173"));
	ck_assert(!sg_cors_allowed(cfg->cors, "http://localhost:5174"));
	ck_assert(!sg_cors_allowed(cfg->cors, "https://app.example.evil"));
	ck_assert(!sg_cors_allowed(cfg->cors, NULL));
	sg_config_free(cfg);

	/* "" turns the metrics endpoint off; "*" lets any origin in */
	snprintf(doc, sizeof(doc),
	         "%.*s\"log\":{\"format\":\"text\"},\"metrics\":{\"listen\":\"\"},"
	         "\"cors\":{\"origins\":[\"*\"],\"max_age_s\":0},%s",
	         (int)(at - src), src, at);
	cfg = load(doc, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_int_eq(cfg->log_json, 0);
	ck_assert_ptr_null(cfg->metrics_host);
	ck_assert_int_eq(cfg->cors->any, 1);
	ck_assert_int_eq(cfg->cors->max_age_s, 0);
	ck_assert(sg_cors_allowed(cfg->cors, "https://anything.example"));
	sg_config_free(cfg);
}
END_TEST

START_TEST(env_expansion_and_file_errors)
{
	char err[512] = "";
	struct sg_config *cfg;
	char doc[4096];
	const char *src = base_with(KEYHASH);
	const char *at = strstr(src, SECRET);

	setenv("SG_TEST_SECRET", SECRET "-from-env", 1);
	snprintf(doc, sizeof(doc), "%.*s$SG_TEST_SECRET%s", (int)(at - src), src,
	         at + strlen(SECRET));
	cfg = load(doc, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_int_eq(cfg->secretlen, strlen(SECRET "-from-env"));
	ck_assert_int_eq(memcmp(cfg->secret, SECRET "-from-env", cfg->secretlen), 0);
	sg_config_free(cfg);

	ck_assert_ptr_null(sg_config_load("/nonexistent/sessiongate.json", err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/sessiongate.json: cannot read"));
}
END_TEST

START_TEST(auth_lookup)
{
	char err[512] = "";
	struct sg_config *cfg = load(base_with(KEYHASH), err, sizeof(err));
	uint8_t h[32];

	ck_assert_msg(cfg != NULL, "%s", err);
	sg_sha256("sk-alice", 8, h);
	memcpy(cfg->keys[0].sha256, h, 32); /* configure the hash of "sk-alice" */
	ck_assert_ptr_eq(sg_auth_lookup(cfg, "sk-alice"), &cfg->keys[0]);
	ck_assert_ptr_eq(sg_auth_lookup(cfg, "sk-alice  "), &cfg->keys[0]);
	ck_assert_ptr_null(sg_auth_lookup(cfg, "sk-alicf"));
	ck_assert_ptr_null(sg_auth_lookup(cfg, ""));
	ck_assert_ptr_null(sg_auth_lookup(cfg, NULL));
	ck_assert_str_eq(sg_auth_extract(NULL, "Bearer sk-alice"), "sk-alice");
	ck_assert_str_eq(sg_auth_extract(NULL, "bearer   sk-alice"), "sk-alice");
	ck_assert_str_eq(sg_auth_extract("sk-x", "Bearer sk-alice"), "sk-x");
	ck_assert_ptr_null(sg_auth_extract(NULL, "Basic abc"));
	ck_assert_ptr_null(sg_auth_extract(NULL, "Bearer "));
	ck_assert_ptr_null(sg_auth_extract("", NULL));
	sg_config_free(cfg);
}
END_TEST

/* A document with nbackends AgentScope backends, a small key "alice" and a key "wide" routed
 * to the first nroutes of them. Returns a new reference. */
static json_t *routes_doc(size_t nbackends, size_t nroutes)
{
	json_t *root =
	    json_pack("{s:s, s:i, s:s, s:[], s:[{s:s, s:s, s:{s:{s:s}}}]}", "listen", "127.0.0.1:0",
	              "workers", 1, "cursor_secret", SECRET, "backends", "keys", "name", "alice",
	              "sha256", KEYHASH, "backends", "b0", "user_id", "alice");
	json_t *wide = json_pack("{s:s, s:s, s:{}}", "name", "wide", "sha256",
	                         "00000000000000000000000000000000000000000000000000000000000000ff",
	                         "backends");
	char name[24]; /* "b" and any size_t */

	ck_assert_ptr_nonnull(root);
	ck_assert_ptr_nonnull(wide);
	for (size_t i = 0; i < nbackends; i++) {
		snprintf(name, sizeof(name), "b%zu", i);
		ck_assert_int_eq(json_array_append_new(json_object_get(root, "backends"),
		                                       json_pack("{s:s, s:s, s:s, s:{s:s}}", "name",
		                                                 name, "mapping", "agentscope",
		                                                 "url", "http://127.0.0.1:1",
		                                                 "options", "timezone", "UTC")),
		                 0);
		if (i < nroutes)
			ck_assert_int_eq(json_object_set_new(json_object_get(wide, "backends"),
			                                     name,
			                                     json_pack("{s:s}", "user_id", "wide")),
			                 0);
	}
	ck_assert_int_eq(json_array_append_new(json_object_get(root, "keys"), wide), 0);
	return root;
}

/* SG_MAX_ROUTES routes load; one more is refused at load time, naming the key, instead of
 * the server silently leaving the extra backends out of every listing. */
START_TEST(routes_limit)
{
	char err[512] = "";
	json_t *root = routes_doc(SG_MAX_ROUTES + 1, SG_MAX_ROUTES);
	struct sg_config *cfg = sg_config_from_json(root, "test.json", err, sizeof(err));

	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_int_eq(cfg->nkeys, 2);
	ck_assert_uint_eq(cfg->keys[1].nroutes, SG_MAX_ROUTES);
	for (size_t i = 1; i < cfg->keys[1].nroutes; i++)
		ck_assert_ptr_ne(cfg->keys[1].routes[i].backend, cfg->keys[1].routes[0].backend);
	sg_config_free(cfg);
	json_decref(root);

	root = routes_doc(SG_MAX_ROUTES + 1, SG_MAX_ROUTES + 1);
	cfg = sg_config_from_json(root, "test.json", err, sizeof(err));
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(err, "test.json: keys[1].backends: at most 64 backends per key");
	json_decref(root);
}
END_TEST

/* Module options: secrets from the environment, unknown options, identities. */
START_TEST(module_options)
{
	static const struct {
		const char *doc, *expect;
	} c[] = {
	    {"{\"mapping\":\"sandbase\",\"options\":{}}", "backends[0].options: api_key: required"},
	    {"{\"mapping\":\"sandbase\",\"options\":{\"api_key\":\"$SG_TEST_NOPE\"}}",
	     "api_key: environment variable SG_TEST_NOPE is not set"},
	    {"{\"mapping\":\"sandbase\",\"options\":{\"api_key\":\"k\",\"x\":1}}",
	     "backends[0].options: x: unknown option"},
	    {"{\"mapping\":\"claude\",\"options\":{\"api_key\":\"k\\nX: y\"}}",
	     "api_key: not usable in a header"},
	    {"{\"mapping\":\"claude\",\"options\":{\"api_key\":\"k\"},\"id\":{\"user_id\":\"a\"}}",
	     "keys[0].backends.b: this backend takes no identity"},
	    {"{\"mapping\":\"agentscope\",\"options\":{\"fanout\":0}}",
	     "fanout: must be an integer between 1 and 256"},
	    {"{\"mapping\":\"agentscope\",\"options\":{\"hints\":\"keep\"}}", "hints: must be"},
	    {"{\"mapping\":\"agentscope\",\"options\":{\"cache_ms\":60001}}", "cache_ms: must be"},
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		json_t *spec = json_loads(c[i].doc, 0, NULL), *root;
		json_t *ident = json_object_get(spec, "id");
		char err[512] = "";
		struct sg_config *cfg;

		ck_assert_ptr_nonnull(spec);
		root = json_pack("{s:s, s:[{s:s, s:O, s:s, s:O}], s:[{s:s, s:s, s:{s:o}}]}",
		                 "cursor_secret", SECRET, "backends", "name", "b", "mapping",
		                 json_object_get(spec, "mapping"), "url", "http://127.0.0.1:1",
		                 "options", json_object_get(spec, "options"), "keys", "name", "k",
		                 "sha256", KEYHASH, "backends", "b",
		                 ident ? json_incref(ident) : json_object());
		ck_assert_ptr_nonnull(root);
		cfg = sg_config_from_json(root, "t", err, sizeof(err));
		ck_assert_msg(cfg == NULL, "case %zu loaded", i);
		ck_assert_msg(strstr(err, c[i].expect) != NULL, "case %zu: got '%s', want '%s'", i,
		              err, c[i].expect);
		json_decref(root);
		json_decref(spec);
	}
	setenv("SG_TEST_SBKEY", "sk-sb-x", 1);
	{
		json_t *root = json_pack(
		    "{s:s, s:[{s:s, s:s, s:s, s:{s:s}}], s:[{s:s, s:s, s:{s:{}}}]}",
		    "cursor_secret", SECRET, "backends", "name", "b", "mapping", "sandbase", "url",
		    "http://127.0.0.1:1", "options", "api_key", "$SG_TEST_SBKEY", "keys", "name",
		    "k", "sha256", KEYHASH, "backends", "b");
		char err[512] = "";
		struct sg_config *cfg = sg_config_from_json(root, "t", err, sizeof(err));

		ck_assert_msg(cfg != NULL, "%s", err);
		sg_config_free(cfg);
		json_decref(root);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, valid);
	tcase_add_loop_test(tc, errors_name_the_key, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, env_expansion_and_file_errors);
	tcase_add_test(tc, observability_keys);
	tcase_add_test(tc, auth_lookup);
	tcase_add_test(tc, module_options);
	tcase_add_test(tc, routes_limit);
	tcase_add_test(tc, several_secrets);
	tcase_add_test(tc, api_key_file);
	tcase_add_test(tc, generations);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
