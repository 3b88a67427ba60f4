/* config.c - see config.h. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "cors.h"
#include "error.h"
#include "mapping.h"
#include "options.h"

/* A key's rate bucket, shared by the generations that give that key the same rate. */
struct shared_bucket {
	struct sg_bucket b; /* first: sg_key.bucket points here */
	atomic_long refs;
};

static void bucket_unref(struct sg_bucket *b)
{
	struct shared_bucket *sb = (struct shared_bucket *)b;

	if (sb && atomic_fetch_sub(&sb->refs, 1) == 1) {
		sg_bucket_destroy(&sb->b);
		free(sb);
	}
}

static void backend_state_unref(struct sg_backend_state *st)
{
	if (st && atomic_fetch_sub(&st->refs, 1) == 1)
		free(st);
}

static void key_state_unref(struct sg_key_state *st)
{
	if (st && atomic_fetch_sub(&st->refs, 1) == 1)
		free(st);
}

/* Where we are in the document, for messages: "backends[0].timeout_ms". */
struct cpath {
	char *err;
	size_t errlen;
	const char *origin;
};

__attribute__((format(printf, 3, 4))) static int fail(struct cpath *cp, const char *key,
                                                      const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(cp->err, cp->errlen, "%s: %s: %s", cp->origin, key, msg);
	return -1;
}

/* Refuses keys the schema does not know, so a typo is an error, not a silent default.
 * Keys starting with '_' are comments. */
static int check_keys(struct cpath *cp, const char *where, const json_t *obj,
                      const char *const *allowed)
{
	const char *k = sg_options_unknown(obj, allowed);
	char key[256];

	if (!k)
		return 0;
	snprintf(key, sizeof(key), "%s%s%s", where, *where ? "." : "", k);
	return fail(cp, key, "unknown key");
}

/* Reads an optional integer in [lo, hi]; leaves *out alone when absent. */
static int get_int(struct cpath *cp, const char *where, const json_t *obj, const char *name,
                   long long lo, long long hi, long long *out)
{
	json_t *v = json_object_get(obj, name);
	char key[256];

	if (!v)
		return 0;
	snprintf(key, sizeof(key), "%s%s%s", where, *where ? "." : "", name);
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return fail(cp, key, "must be an integer between %lld and %lld", lo, hi);
	*out = json_integer_value(v);
	return 0;
}

/* Reads a string, expanding "$NAME" from the environment. Returns a new malloc'd string,
 * NULL when absent (or on error, with *bad set). */
static char *get_str(struct cpath *cp, const char *where, const json_t *obj, const char *name,
                     int required, int *bad)
{
	json_t *v = json_object_get(obj, name);
	char key[256];
	const char *s;

	snprintf(key, sizeof(key), "%s%s%s", where, *where ? "." : "", name);
	if (!v) {
		if (required) {
			fail(cp, key, "is required");
			*bad = 1;
		}
		return NULL;
	}
	if (!json_is_string(v) || json_string_length(v) == 0) {
		fail(cp, key, "must be a non-empty string");
		*bad = 1;
		return NULL;
	}
	s = json_string_value(v);
	if (s[0] == '$') {
		const char *env = getenv(s + 1);

		if (!env || !*env) {
			fail(cp, key, "environment variable %s is not set", s + 1);
			*bad = 1;
			return NULL;
		}
		s = env;
	}
	return strdup(s);
}

/* "redis": where the shared state lives. An address is an IP literal (hiredis resolves names
 * with a blocking call, which a worker's loop must never make) or "unix:/path". */
static int load_redis(struct cpath *cp, const json_t *root, struct sg_config *cfg)
{
	static const char *const allowed[] = {"address",
	                                      "password",
	                                      "db",
	                                      "timeout_ms",
	                                      "connect_timeout_ms",
	                                      "key_prefix",
	                                      "rate_limits_when_down",
	                                      NULL};
	const json_t *rj = json_object_get(root, "redis");
	struct sg_redis_conf *rc = &cfg->redis;
	char *addr, *mode;
	long long v;
	int bad = 0;

	rc->timeout_ms = 250;
	rc->connect_timeout_ms = 1000;
	rc->rate_limits_fail_open = 1;
	if (!rj)
		return 0;
	if (!json_is_object(rj))
		return fail(cp, "redis", "must be an object");
	if (check_keys(cp, "redis", rj, allowed))
		return -1;
	addr = get_str(cp, "redis", rj, "address", 1, &bad);
	if (bad)
		return -1;
	if (strncmp(addr, "unix:", 5) == 0 && addr[5] == '/') {
		rc->path = strdup(addr + 5);
	} else {
		const char *colon = strrchr(addr, ':');
		char *end, host[64];
		unsigned char buf[16];
		long port;

		errno = 0;
		port = colon ? strtol(colon + 1, &end, 10) : -1;
		if (!colon || colon == addr || errno || *end || port < 1 || port > 65535 ||
		    (size_t)(colon - addr) >= sizeof(host)) {
			free(addr);
			return fail(
			    cp, "redis.address",
			    "must be IP:PORT ([IPv6]:PORT) or unix:/path, e.g. 127.0.0.1:6379");
		}
		if (addr[0] == '[' && colon[-1] == ']')
			snprintf(host, sizeof(host), "%.*s", (int)(colon - addr - 2), addr + 1);
		else
			snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
		if (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1) {
			free(addr);
			return fail(cp, "redis.address",
			            "'%s' is not an IP address (a name would be resolved with a "
			            "blocking call)",
			            host);
		}
		rc->host = strdup(host);
		rc->port = (int)port;
	}
	free(addr);
	if (!rc->host && !rc->path)
		return fail(cp, "redis", "out of memory");
	rc->password = get_str(cp, "redis", rj, "password", 0, &bad);
	if (bad)
		return -1;
	v = 0;
	if (get_int(cp, "redis", rj, "db", 0, 1000, &v))
		return -1;
	rc->db = (int)v;
	v = rc->timeout_ms;
	if (get_int(cp, "redis", rj, "timeout_ms", 1, 60000, &v))
		return -1;
	rc->timeout_ms = (long)v;
	v = rc->connect_timeout_ms;
	if (get_int(cp, "redis", rj, "connect_timeout_ms", 1, 60000, &v))
		return -1;
	rc->connect_timeout_ms = (long)v;
	rc->prefix = get_str(cp, "redis", rj, "key_prefix", 0, &bad);
	if (bad)
		return -1;
	if (!rc->prefix && !(rc->prefix = strdup("sg:")))
		return fail(cp, "redis", "out of memory");
	if (strlen(rc->prefix) > 64)
		return fail(cp, "redis.key_prefix", "must be at most 64 bytes");
	mode = get_str(cp, "redis", rj, "rate_limits_when_down", 0, &bad);
	if (bad)
		return -1;
	if (mode && strcmp(mode, "allow") && strcmp(mode, "refuse")) {
		free(mode);
		return fail(cp, "redis.rate_limits_when_down", "must be allow or refuse");
	}
	rc->rate_limits_fail_open = !mode || !strcmp(mode, "allow");
	free(mode);
	return 0;
}

static int parse_listen(struct cpath *cp, const char *s, struct sg_config *cfg)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || colon == s)
		return fail(cp, "listen", "must be HOST:PORT, e.g. 127.0.0.1:8080");
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
		return fail(cp, "listen", "port must be 0..65535");
	cfg->listen_port = (int)port;
	if (s[0] == '[' && colon[-1] == ']')
		cfg->listen_host = strndup(s + 1, (size_t)(colon - s - 2));
	else
		cfg->listen_host = strndup(s, (size_t)(colon - s));
	return cfg->listen_host ? 0 : fail(cp, "listen", "out of memory");
}

/* Reads a secret file (the path itself is no secret) into a new buffer; -1 with err. */
static int read_secret_file(struct cpath *cp, const char *key, const char *file, uint8_t **out,
                            size_t *outlen)
{
	FILE *f = fopen(file, "rb");
	uint8_t buf[4096];
	size_t n;

	if (!f)
		return fail(cp, key, "cannot open %s: %s", file, strerror(errno));
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	*out = malloc(n ? n : 1);
	if (*out) {
		memcpy(*out, buf, n);
		*outlen = n;
	}
	sg_wipe(buf, sizeof(buf)); /* the stack copy must not outlive this call */
	return *out ? 0 : fail(cp, key, "out of memory");
}

/* One entry of cursor_secret (inline, "$ENV" allowed) or cursor_secret_file (a path), at
 * `key` in messages; appended to cfg->secrets. */
static int add_secret(struct cpath *cp, const char *key, const json_t *v, int is_file,
                      struct sg_config *cfg)
{
	const char *s = json_string_value(v);
	uint8_t *bytes = NULL;
	size_t len = 0;

	if (!json_is_string(v) || json_string_length(v) == 0)
		return fail(cp, key, "must be a non-empty string");
	if (s[0] == '$') {
		const char *env = getenv(s + 1);

		if (!env || !*env)
			return fail(cp, key, "environment variable %s is not set", s + 1);
		s = env;
	}
	if (is_file) {
		if (read_secret_file(cp, key, s, &bytes, &len))
			return -1;
	} else {
		len = strlen(s);
		bytes = malloc(len);
		if (!bytes)
			return fail(cp, key, "out of memory");
		memcpy(bytes, s, len);
	}
	/* appended before any check, so that the bytes are wiped with the rest on failure */
	cfg->secrets[cfg->nsecrets].bytes = bytes;
	cfg->secrets[cfg->nsecrets].len = len;
	cfg->nsecrets++;
	if (len < SG_SECRET_MIN)
		return fail(cp, key, "must be at least %d bytes", SG_SECRET_MIN);
	for (size_t i = 0; i + 1 < cfg->nsecrets; i++)
		if (cfg->secrets[i].len == len && sg_ct_equal(cfg->secrets[i].bytes, bytes, len))
			return fail(cp, key, "the same secret is given twice");
	return 0;
}

/* The cursor secrets: cursor_secret and cursor_secret_file, each a string or an array of
 * them, at least 32 bytes each. Every one opens cursors; the first (inline ones first, then
 * files) seals new ones, so a rotation puts the new secret first and keeps the old one
 * until the cursors it sealed no longer matter. */
static int load_secret(struct cpath *cp, const json_t *root, struct sg_config *cfg)
{
	static const char *const names[] = {"cursor_secret", "cursor_secret_file"};
	size_t total = 0;
	char key[64];

	for (int f = 0; f < 2; f++) {
		const json_t *v = json_object_get(root, names[f]);

		if (json_is_array(v) && json_array_size(v) == 0)
			return fail(cp, names[f], "must not be an empty array");
		if (v && !json_is_array(v) && !json_is_string(v))
			return fail(cp, names[f], "must be a string or an array of strings");
		total += json_is_array(v) ? json_array_size(v) : v ? 1 : 0;
	}
	if (total == 0)
		return fail(cp, "cursor_secret",
		            "is required (or cursor_secret_file): the secret that seals cursors");
	if (total > 64)
		return fail(cp, "cursor_secret", "at most 64 secrets in all");
	cfg->secrets = calloc(total, sizeof(*cfg->secrets));
	if (!cfg->secrets)
		return fail(cp, "cursor_secret", "out of memory");
	for (int f = 0; f < 2; f++) {
		const json_t *v = json_object_get(root, names[f]);

		if (json_is_string(v) && add_secret(cp, names[f], v, f, cfg))
			return -1;
		for (size_t i = 0; json_is_array(v) && i < json_array_size(v); i++) {
			snprintf(key, sizeof(key), "%s[%zu]", names[f], i);
			if (add_secret(cp, key, json_array_get(v, i), f, cfg))
				return -1;
		}
	}
	cfg->secret = (uint8_t *)cfg->secrets[0].bytes;
	cfg->secretlen = cfg->secrets[0].len;
	return 0;
}

static int load_backend(struct cpath *cp, const json_t *b, size_t idx, struct sg_config *cfg)
{
	static const char *const allowed[] = {"name",
	                                      "mapping",
	                                      "url",
	                                      "timeout_ms",
	                                      "connect_timeout_ms",
	                                      "stream_idle_timeout_ms",
	                                      "retries",
	                                      "max_connections",
	                                      "max_response_bytes",
	                                      "max_concurrent",
	                                      "breaker",
	                                      "options",
	                                      NULL};
	static const char *const breaker_allowed[] = {"failures", "open_ms", NULL};
	struct sg_backend *be = &cfg->backends[idx];
	const json_t *br;
	long long failures = 5, open_ms = 10000;
	char where[64], key[128];
	long long v;
	int bad = 0;
	char *mapping;
	size_t n;

	snprintf(where, sizeof(where), "backends[%zu]", idx);
	if (!json_is_object(b))
		return fail(cp, where, "must be an object");
	if (check_keys(cp, where, b, allowed))
		return -1;
	be->name = get_str(cp, where, b, "name", 1, &bad);
	if (bad)
		return -1;
	for (const char *p = be->name; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= '0' && *p <= '9') && *p != '-' &&
		    *p != '_')
			return fail(cp, where, "name must use only a-z 0-9 - _");
	if (strlen(be->name) > 64)
		return fail(cp, where, "name must be at most 64 characters");
	for (size_t i = 0; i < idx; i++)
		if (strcmp(cfg->backends[i].name, be->name) == 0)
			return fail(cp, where, "name '%s' is used twice", be->name);
	mapping = get_str(cp, where, b, "mapping", 1, &bad);
	if (bad)
		return -1;
	be->mapping = sg_mapping_find(mapping);
	if (!be->mapping) {
		snprintf(key, sizeof(key), "%s.mapping", where);
		fail(cp, key, "unknown mapping '%s'", mapping);
		free(mapping);
		return -1;
	}
	free(mapping);
	be->url = get_str(cp, where, b, "url", 1, &bad);
	if (bad)
		return -1;
	snprintf(key, sizeof(key), "%s.url", where);
	if (strncmp(be->url, "http://", 7) != 0 && strncmp(be->url, "https://", 8) != 0)
		return fail(cp, key, "must start with http:// or https://");
	n = strlen(be->url);
	while (n > 0 && be->url[n - 1] == '/')
		be->url[--n] = '\0';

	be->timeout_ms = 10000;
	be->stream_idle_timeout_ms = 120000;
	be->connect_timeout_ms = 2000;
	be->retries = 1;
	be->max_connections = 64;
	be->max_response_bytes = 48u << 20; /* a 10,000-session v2.0.1 listing is 40 MB */
	v = be->timeout_ms;
	if (get_int(cp, where, b, "timeout_ms", 1, 600000, &v))
		return -1;
	be->timeout_ms = (long)v;
	v = be->connect_timeout_ms;
	if (get_int(cp, where, b, "connect_timeout_ms", 1, 600000, &v))
		return -1;
	be->connect_timeout_ms = (long)v;
	v = be->stream_idle_timeout_ms;
	if (get_int(cp, where, b, "stream_idle_timeout_ms", 1000, 3600000, &v))
		return -1;
	be->stream_idle_timeout_ms = (long)v;
	v = be->retries;
	if (get_int(cp, where, b, "retries", 0, 5, &v))
		return -1;
	be->retries = (int)v;
	v = be->max_connections;
	if (get_int(cp, where, b, "max_connections", 1, 10000, &v))
		return -1;
	be->max_connections = (long)v;
	v = (long long)be->max_response_bytes;
	if (get_int(cp, where, b, "max_response_bytes", 1024, 1LL << 30, &v))
		return -1;
	be->max_response_bytes = (size_t)v;

	v = 1024;
	if (get_int(cp, where, b, "max_concurrent", 0, 1000000, &v))
		return -1;
	be->max_concurrent = (long)v;
	be->state = calloc(1, sizeof(*be->state));
	if (!be->state)
		return fail(cp, where, "out of memory");
	atomic_init(&be->state->refs, 1);
	atomic_init(&be->state->write_gen, 0);
	atomic_init(&be->state->shared_gen, 0);
	atomic_init(&be->state->inflight, 0);
	atomic_init(&be->state->reachable, -1);
	atomic_init(&be->state->probed_ms, 0);
	be->generation = 1;
	br = json_object_get(b, "breaker");
	snprintf(key, sizeof(key), "%s.breaker", where);
	if (br && (!json_is_object(br) || check_keys(cp, key, br, breaker_allowed)))
		return json_is_object(br) ? -1 : fail(cp, key, "must be an object");
	if (br && (get_int(cp, key, br, "failures", 0, 1000, &failures) ||
	           get_int(cp, key, br, "open_ms", 100, 3600000, &open_ms)))
		return -1;
	sg_breaker_init(&be->breaker, (int)failures, (long)open_ms);

	be->options = json_object_get(b, "options");
	snprintf(key, sizeof(key), "%s.options", where);
	if (be->options && !json_is_object(be->options))
		return fail(cp, key, "must be an object");
	if (be->options)
		json_incref(be->options);
	if (be->mapping->init) {
		struct sg_error e = {0};

		if (be->mapping->init(be, be->options, &e))
			return fail(cp, key, "%s", e.message);
	}
	return 0;
}

static int load_key(struct cpath *cp, const json_t *k, size_t idx, struct sg_config *cfg)
{
	static const char *const allowed[] = {"name", "sha256", "backends", "rate_limit", NULL};
	static const char *const rate_allowed[] = {"requests_per_second", "burst", NULL};
	struct sg_key *key = &cfg->keys[idx];
	const json_t *rl;
	char where[64], path[256];
	const char *bname;
	json_t *ident, *routes;
	int bad = 0;
	char *hex;
	size_t r = 0;

	snprintf(where, sizeof(where), "keys[%zu]", idx);
	if (!json_is_object(k))
		return fail(cp, where, "must be an object");
	key->state = calloc(1, sizeof(*key->state));
	if (!key->state)
		return fail(cp, where, "out of memory");
	atomic_init(&key->state->refs, 1);
	atomic_init(&key->state->streams, 0);
	if (check_keys(cp, where, k, allowed))
		return -1;
	key->name = get_str(cp, where, k, "name", 1, &bad);
	if (bad)
		return -1;
	hex = get_str(cp, where, k, "sha256", 1, &bad);
	if (bad)
		return -1;
	snprintf(path, sizeof(path), "%s.sha256", where);
	if (strlen(hex) != 64 || sg_hex_decode(hex, 64, key->sha256, sizeof(key->sha256)) != 32) {
		free(hex);
		return fail(cp, path, "must be 64 hex characters (sessiongate hash-key prints it)");
	}
	free(hex);
	for (size_t i = 0; i < idx; i++) {
		if (strcmp(cfg->keys[i].name, key->name) == 0)
			return fail(cp, where, "name '%s' is used twice", key->name);
		if (memcmp(cfg->keys[i].sha256, key->sha256, SG_SHA256_LEN) == 0)
			return fail(cp, path, "the same key is configured twice");
	}
	rl = json_object_get(k, "rate_limit");
	snprintf(path, sizeof(path), "%s.rate_limit", where);
	if (rl) {
		const json_t *rps = json_object_get(rl, "requests_per_second");
		const json_t *burst = json_object_get(rl, "burst");

		if (!json_is_object(rl))
			return fail(cp, path, "must be an object");
		if (check_keys(cp, path, rl, rate_allowed))
			return -1;
		if (!json_is_number(rps) || json_number_value(rps) <= 0 ||
		    json_number_value(rps) > 1e6)
			return fail(cp, path, "requests_per_second must be a number above 0");
		if (burst && (!json_is_integer(burst) || json_integer_value(burst) < 1 ||
		              json_integer_value(burst) > 1000000))
			return fail(cp, path, "burst must be an integer from 1");
		struct shared_bucket *sb = calloc(1, sizeof(*sb));

		if (!sb)
			return fail(cp, path, "out of memory");
		atomic_init(&sb->refs, 1);
		key->bucket = &sb->b;
		sg_bucket_init(key->bucket, json_number_value(rps),
		               burst ? (double)json_integer_value(burst)
		                     : (json_number_value(rps) < 1 ? 1 : json_number_value(rps)));
	}
	routes = json_object_get(k, "backends");
	snprintf(path, sizeof(path), "%s.backends", where);
	if (!json_is_object(routes) || json_object_size(routes) == 0)
		return fail(cp, path, "must be an object naming at least one backend");
	if (json_object_size(routes) > SG_MAX_ROUTES)
		return fail(cp, path, "at most %d backends per key", SG_MAX_ROUTES);
	key->routes = calloc(json_object_size(routes), sizeof(*key->routes));
	if (!key->routes)
		return fail(cp, path, "out of memory");
	json_object_foreach(routes, bname, ident) {
		struct sg_backend *be = sg_config_backend(cfg, bname);
		struct sg_error e = {0};

		snprintf(path, sizeof(path), "%s.backends.%s", where, bname);
		if (!be)
			return fail(cp, path, "no backend named '%s'", bname);
		if (!json_is_object(ident))
			return fail(cp, path, "must be an object (the identity on that backend)");
		if (be->mapping->check_identity && be->mapping->check_identity(ident, &e))
			return fail(cp, path, "%s", e.message);
		key->routes[r].backend = be;
		key->routes[r].identity = json_incref(ident);
		key->nroutes = ++r;
	}
	return 0;
}

/* log.format, metrics.listen and cors (metrics.h, accesslog.h, cors.h). */
static int load_observability(struct cpath *cp, const json_t *root, struct sg_config *cfg)
{
	static const char *const metrics_allowed[] = {"listen", NULL};
	const json_t *log = json_object_get(root, "log"), *fmt = json_object_get(log, "format");
	const json_t *metrics = json_object_get(root, "metrics"), *listen, *cors;
	char key[300], msg[300];

	if (fmt) {
		if (!json_is_string(fmt) || (strcmp(json_string_value(fmt), "text") != 0 &&
		                             strcmp(json_string_value(fmt), "json") != 0))
			return fail(cp, "log.format", "must be \"text\" or \"json\"");
		cfg->log_json = strcmp(json_string_value(fmt), "json") == 0;
	}
	if (metrics) {
		const char *s, *colon;
		char *end;
		long port;

		if (!json_is_object(metrics))
			return fail(cp, "metrics", "must be an object");
		if (check_keys(cp, "metrics", metrics, metrics_allowed))
			return -1;
		listen = json_object_get(metrics, "listen");
		if (listen && !json_is_string(listen))
			return fail(cp, "metrics.listen",
			            "must be a string, HOST:PORT (\"\": off)");
		s = listen ? json_string_value(listen) : "";
		if (*s) {
			colon = strrchr(s, ':');
			if (!colon || colon == s)
				return fail(cp, "metrics.listen",
				            "must be HOST:PORT, e.g. 127.0.0.1:9464");
			errno = 0;
			port = strtol(colon + 1, &end, 10);
			if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
				return fail(cp, "metrics.listen", "port must be 0..65535");
			if (s[0] == '[' && colon[-1] == ']')
				cfg->metrics_host = strndup(s + 1, (size_t)(colon - s - 2));
			else
				cfg->metrics_host = strndup(s, (size_t)(colon - s));
			if (!cfg->metrics_host)
				return fail(cp, "metrics.listen", "out of memory");
			cfg->metrics_port = (int)port;
			if (cfg->metrics_port == cfg->listen_port && cfg->metrics_port != 0 &&
			    strcmp(cfg->metrics_host, cfg->listen_host) == 0)
				return fail(cp, "metrics.listen",
				            "must differ from listen (metrics are never served on "
				            "the public port)");
		}
	}
	cors = json_object_get(root, "cors");
	if (cors) {
		cfg->cors = sg_cors_from_json(cors, key, sizeof(key), msg, sizeof(msg));
		if (!cfg->cors)
			return fail(cp, key, "%s", msg);
	}
	return 0;
}

struct sg_config *sg_config_from_json(const json_t *root, const char *origin, char *err,
                                      size_t errlen)
{
	static const char *const allowed[] = {"listen",
	                                      "workers",
	                                      "cursor_secret",
	                                      "cursor_secret_file",
	                                      "shutdown_grace_ms",
	                                      "limits",
	                                      "log",
	                                      "idempotency",
	                                      "backends",
	                                      "keys",
	                                      "streams",
	                                      "cache",
	                                      "redis",
	                                      "metrics",
	                                      "cors",
	                                      "readiness",
	                                      NULL};
	static const char *const readiness_allowed[] = {"drain_delay_ms", "probe_interval_ms",
	                                                "probe_timeout_ms", NULL};
	static const char *const cache_allowed[] = {"max_bytes", "walk_snapshot_ms", NULL};
	static const char *const limits_allowed[] = {
	    "max_header_bytes",         "max_body_bytes",
	    "idle_timeout_s",           "request_timeout_ms",
	    "max_stream_backlog_bytes", "max_write_body_bytes",
	    "max_upstream_bytes",       NULL};
	static const char *const log_allowed[] = {"level", "access", "format", NULL};
	static const char *const idem_allowed[] = {"window_ms", "max_keys", "max_bytes", NULL};
	static const char *const streams_allowed[] = {"max_per_key",
	                                              "max_per_worker",
	                                              "heartbeat_ms",
	                                              "max_lifetime_ms",
	                                              "reconnect_ms",
	                                              "replay_events",
	                                              NULL};
	struct cpath cp = {err, errlen, origin};
	struct sg_config *cfg = calloc(1, sizeof(*cfg));
	json_t *backends, *keys, *limits, *log, *idem, *streams, *cache, *ready;
	long long v;
	int bad = 0;
	char *listen = NULL;

	if (!cfg) {
		snprintf(err, errlen, "%s: out of memory", origin);
		return NULL;
	}
	atomic_init(&cfg->refs, 1);
	cfg->generation = 1;
	if (!json_is_object(root)) {
		fail(&cp, "(top level)", "must be a JSON object");
		goto fail;
	}
	if (check_keys(&cp, "", root, allowed))
		goto fail;
	listen = get_str(&cp, "", root, "listen", 0, &bad);
	if (bad || parse_listen(&cp, listen ? listen : "127.0.0.1:8080", cfg))
		goto fail;
	v = 0;
	if (get_int(&cp, "", root, "workers", 0, 256, &v))
		goto fail;
	cfg->workers = (int)v;
	if (cfg->workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		cfg->workers = n > 0 ? (int)(n > 64 ? 64 : n) : 1;
	}
	v = 10000;
	if (get_int(&cp, "", root, "shutdown_grace_ms", 0, 600000, &v))
		goto fail;
	cfg->shutdown_grace_ms = (long)v;
	if (load_secret(&cp, root, cfg))
		goto fail;

	cfg->max_header_bytes = 16384;
	cfg->max_body_bytes = 1 << 20;
	cfg->idle_timeout_s = 60;
	cfg->request_timeout_ms = 30000;
	cfg->max_stream_backlog_bytes = 1 << 20;
	cfg->max_upstream_bytes = (size_t)96 << 20;
	cfg->max_write_body_bytes = 256 << 10;
	limits = json_object_get(root, "limits");
	if (limits) {
		if (!json_is_object(limits)) {
			fail(&cp, "limits", "must be an object");
			goto fail;
		}
		if (check_keys(&cp, "limits", limits, limits_allowed))
			goto fail;
		v = (long long)cfg->max_header_bytes;
		if (get_int(&cp, "limits", limits, "max_header_bytes", 1024, 1 << 20, &v))
			goto fail;
		cfg->max_header_bytes = (size_t)v;
		v = (long long)cfg->max_body_bytes;
		if (get_int(&cp, "limits", limits, "max_body_bytes", 0, 64 << 20, &v))
			goto fail;
		cfg->max_body_bytes = (size_t)v;
		v = (long long)cfg->max_upstream_bytes;
		if (get_int(&cp, "limits", limits, "max_upstream_bytes", 0, 1LL << 40, &v))
			goto fail;
		cfg->max_upstream_bytes = (size_t)v;
		v = cfg->idle_timeout_s;
		if (get_int(&cp, "limits", limits, "idle_timeout_s", 1, 3600, &v))
			goto fail;
		cfg->idle_timeout_s = (long)v;
		v = cfg->request_timeout_ms;
		if (get_int(&cp, "limits", limits, "request_timeout_ms", 100, 600000, &v))
			goto fail;
		cfg->request_timeout_ms = (long)v;
		v = (long long)cfg->max_stream_backlog_bytes;
		if (get_int(&cp, "limits", limits, "max_stream_backlog_bytes", 4096, 64 << 20, &v))
			goto fail;
		cfg->max_stream_backlog_bytes = (size_t)v;
		v = (long long)cfg->max_write_body_bytes;
		if (get_int(&cp, "limits", limits, "max_write_body_bytes", 1024, 64 << 20, &v))
			goto fail;
		cfg->max_write_body_bytes = (size_t)v;
	}
	if (!json_object_get(limits, "max_write_body_bytes") &&
	    cfg->max_write_body_bytes > cfg->max_body_bytes)
		cfg->max_write_body_bytes =
		    cfg->max_body_bytes; /* the default follows a small cap */
	if (cfg->max_write_body_bytes > cfg->max_body_bytes) {
		/* evhttp would refuse the body first, with its own non-JSON page */
		fail(&cp, "limits.max_write_body_bytes", "must not exceed limits.max_body_bytes");
		goto fail;
	}
	cfg->idempotency_window_ms = 86400000;
	cfg->idempotency_max_keys = 100000;
	cfg->idempotency_max_bytes = 64u << 20;
	idem = json_object_get(root, "idempotency");
	if (idem) {
		if (!json_is_object(idem)) {
			fail(&cp, "idempotency", "must be an object");
			goto fail;
		}
		if (check_keys(&cp, "idempotency", idem, idem_allowed))
			goto fail;
		v = cfg->idempotency_window_ms;
		if (get_int(&cp, "idempotency", idem, "window_ms", 1000, 7LL * 86400000, &v))
			goto fail;
		cfg->idempotency_window_ms = (long)v;
		v = (long long)cfg->idempotency_max_keys;
		if (get_int(&cp, "idempotency", idem, "max_keys", 1, 10000000, &v))
			goto fail;
		cfg->idempotency_max_keys = (size_t)v;
		v = (long long)cfg->idempotency_max_bytes;
		if (get_int(&cp, "idempotency", idem, "max_bytes", 65536, 1LL << 32, &v))
			goto fail;
		cfg->idempotency_max_bytes = (size_t)v;
	}
	cfg->streams_max_per_key = 1000;
	cfg->streams_max_per_worker = 10000;
	cfg->stream_heartbeat_ms = 15000;
	cfg->stream_max_lifetime_ms = 3600000;
	cfg->stream_reconnect_ms = 30000;
	cfg->stream_replay_events = 256;
	streams = json_object_get(root, "streams");
	if (streams) {
		if (!json_is_object(streams)) {
			fail(&cp, "streams", "must be an object");
			goto fail;
		}
		if (check_keys(&cp, "streams", streams, streams_allowed))
			goto fail;
		v = cfg->streams_max_per_key;
		if (get_int(&cp, "streams", streams, "max_per_key", 0, 1000000, &v))
			goto fail;
		cfg->streams_max_per_key = (long)v;
		v = cfg->streams_max_per_worker;
		if (get_int(&cp, "streams", streams, "max_per_worker", 0, 1000000, &v))
			goto fail;
		cfg->streams_max_per_worker = (long)v;
		v = cfg->stream_heartbeat_ms;
		if (get_int(&cp, "streams", streams, "heartbeat_ms", 100, 600000, &v))
			goto fail;
		cfg->stream_heartbeat_ms = (long)v;
		v = cfg->stream_max_lifetime_ms;
		if (get_int(&cp, "streams", streams, "max_lifetime_ms", 1000, 7LL * 86400000, &v))
			goto fail;
		cfg->stream_max_lifetime_ms = (long)v;
		v = cfg->stream_reconnect_ms;
		if (get_int(&cp, "streams", streams, "reconnect_ms", 0, 3600000, &v))
			goto fail;
		cfg->stream_reconnect_ms = (long)v;
		v = (long long)cfg->stream_replay_events;
		if (get_int(&cp, "streams", streams, "replay_events", 0, 100000, &v))
			goto fail;
		cfg->stream_replay_events = (size_t)v;
	}
	cfg->cache_max_bytes = (size_t)256 << 20;
	cfg->walk_snapshot_ms = 60000;
	cache = json_object_get(root, "cache");
	if (cache) {
		if (!json_is_object(cache)) {
			fail(&cp, "cache", "must be an object");
			goto fail;
		}
		if (check_keys(&cp, "cache", cache, cache_allowed))
			goto fail;
		v = (long long)cfg->cache_max_bytes;
		if (get_int(&cp, "cache", cache, "max_bytes", 0, 1LL << 40, &v))
			goto fail;
		cfg->cache_max_bytes = (size_t)v;
		v = cfg->walk_snapshot_ms;
		if (get_int(&cp, "cache", cache, "walk_snapshot_ms", 0, 3600000, &v))
			goto fail;
		cfg->walk_snapshot_ms = (long)v;
	}
	cfg->drain_delay_ms = 0;
	cfg->probe_interval_ms = 2000;
	cfg->probe_timeout_ms = 1000;
	ready = json_object_get(root, "readiness");
	if (ready) {
		if (!json_is_object(ready)) {
			fail(&cp, "readiness", "must be an object");
			goto fail;
		}
		if (check_keys(&cp, "readiness", ready, readiness_allowed))
			goto fail;
		v = cfg->drain_delay_ms;
		if (get_int(&cp, "readiness", ready, "drain_delay_ms", 0, 600000, &v))
			goto fail;
		cfg->drain_delay_ms = (long)v;
		v = cfg->probe_interval_ms;
		if (get_int(&cp, "readiness", ready, "probe_interval_ms", 100, 3600000, &v))
			goto fail;
		cfg->probe_interval_ms = (long)v;
		v = cfg->probe_timeout_ms;
		if (get_int(&cp, "readiness", ready, "probe_timeout_ms", 10, 600000, &v))
			goto fail;
		cfg->probe_timeout_ms = (long)v;
	}
	cfg->log_level = 2;
	cfg->access_log = 1;
	log = json_object_get(root, "log");
	if (log) {
		static const char *const levels[] = {"error", "warn", "info", "debug"};
		json_t *lv = json_object_get(log, "level"), *ac = json_object_get(log, "access");
		int i;

		if (!json_is_object(log) || check_keys(&cp, "log", log, log_allowed)) {
			if (!json_is_object(log))
				fail(&cp, "log", "must be an object");
			goto fail;
		}
		if (lv) {
			for (i = 0; i < 4; i++)
				if (json_is_string(lv) &&
				    strcmp(json_string_value(lv), levels[i]) == 0)
					break;
			if (i == 4) {
				fail(&cp, "log.level", "must be error, warn, info or debug");
				goto fail;
			}
			cfg->log_level = i;
		}
		if (ac) {
			if (!json_is_boolean(ac)) {
				fail(&cp, "log.access", "must be true or false");
				goto fail;
			}
			cfg->access_log = json_is_true(ac);
		}
	}
	if (load_observability(&cp, root, cfg))
		goto fail;

	if (load_redis(&cp, root, cfg))
		goto fail;
	backends = json_object_get(root, "backends");
	if (!json_is_array(backends) || json_array_size(backends) == 0) {
		fail(&cp, "backends", "must be a non-empty array");
		goto fail;
	}
	cfg->backends = calloc(json_array_size(backends), sizeof(*cfg->backends));
	if (!cfg->backends)
		goto fail;
	for (size_t i = 0; i < json_array_size(backends); i++) {
		cfg->nbackends = i + 1;
		if (load_backend(&cp, json_array_get(backends, i), i, cfg))
			goto fail;
	}
	keys = json_object_get(root, "keys");
	if (!json_is_array(keys) || json_array_size(keys) == 0) {
		fail(&cp, "keys", "must be a non-empty array");
		goto fail;
	}
	cfg->keys = calloc(json_array_size(keys), sizeof(*cfg->keys));
	if (!cfg->keys)
		goto fail;
	for (size_t i = 0; i < json_array_size(keys); i++) {
		cfg->nkeys = i + 1;
		if (load_key(&cp, json_array_get(keys, i), i, cfg))
			goto fail;
	}
	free(listen);
	return cfg;
fail:
	free(listen);
	sg_config_free(cfg);
	return NULL;
}

struct sg_config *sg_config_load(const char *path, char *err, size_t errlen)
{
	json_error_t jerr;
	struct stat st;
	json_t *root;
	struct sg_config *cfg;

	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		return NULL;
	}
	if (st.st_size > (4 << 20)) {
		snprintf(err, errlen, "%s: larger than 4 MiB", path);
		return NULL;
	}
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "%s:%d:%d: not valid JSON: %s", path, jerr.line, jerr.column,
		         jerr.text);
		return NULL;
	}
	cfg = sg_config_from_json(root, path, err, errlen);
	json_decref(root);
	return cfg;
}

void sg_config_free(struct sg_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->nkeys; i++) {
		for (size_t r = 0; r < cfg->keys[i].nroutes; r++)
			json_decref(cfg->keys[i].routes[r].identity);
		free(cfg->keys[i].routes);
		free(cfg->keys[i].name);
		bucket_unref(cfg->keys[i].bucket);
		key_state_unref(cfg->keys[i].state);
	}
	free(cfg->keys);
	for (size_t i = 0; i < cfg->nbackends; i++) {
		struct sg_backend *be = &cfg->backends[i];

		if (be->priv && be->mapping && be->mapping->destroy)
			be->mapping->destroy(be);
		json_decref(be->options);
		backend_state_unref(be->state);
		free(be->name);
		free(be->url);
	}
	free(cfg->backends);
	for (size_t i = 0; i < cfg->nsecrets; i++) {
		sg_wipe((void *)cfg->secrets[i].bytes, cfg->secrets[i].len);
		free((void *)cfg->secrets[i].bytes);
	}
	free(cfg->secrets);
	free(cfg->listen_host);
	free(cfg->redis.host);
	free(cfg->redis.path);
	if (cfg->redis.password)
		sg_wipe(cfg->redis.password, strlen(cfg->redis.password));
	free(cfg->redis.password);
	free(cfg->redis.prefix);
	free(cfg->metrics_host);
	sg_cors_free(cfg->cors);
	free(cfg);
}

struct sg_backend *sg_config_backend(const struct sg_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nbackends; i++)
		if (cfg->backends[i].name && strcmp(cfg->backends[i].name, name) == 0)
			return &cfg->backends[i];
	return NULL;
}

const struct sg_config *sg_config_ref(const struct sg_config *cfg)
{
	if (cfg)
		atomic_fetch_add(&((struct sg_config *)cfg)->refs, 1);
	return cfg;
}

void sg_config_unref(const struct sg_config *cfg)
{
	if (cfg && atomic_fetch_sub(&((struct sg_config *)cfg)->refs, 1) == 1)
		sg_config_free((struct sg_config *)cfg);
}

static int same_rate(const struct sg_bucket *a, const struct sg_bucket *b)
{
	return a->rate == b->rate && a->burst == b->burst;
}

void sg_config_inherit(struct sg_config *cfg, const struct sg_config *prev)
{
	cfg->generation = prev->generation + 1;
	for (size_t i = 0; i < cfg->nbackends; i++) {
		struct sg_backend *be = &cfg->backends[i];
		const struct sg_backend *old = sg_config_backend(prev, be->name);

		be->generation = cfg->generation;
		if (!old)
			continue;
		backend_state_unref(be->state);
		be->state = old->state;
		atomic_fetch_add(&be->state->refs, 1);
		/* its URL, credentials or options may have changed */
		atomic_fetch_add(&be->state->write_gen, 1);
	}
	for (size_t i = 0; i < cfg->nkeys; i++) {
		struct sg_key *k = &cfg->keys[i];
		const struct sg_key *old = NULL;

		for (size_t j = 0; j < prev->nkeys && !old; j++)
			if (strcmp(prev->keys[j].name, k->name) == 0)
				old = &prev->keys[j];
		if (!old)
			continue;
		key_state_unref(k->state);
		k->state = old->state;
		atomic_fetch_add(&k->state->refs, 1);
		if (k->bucket && old->bucket && same_rate(k->bucket, old->bucket)) {
			bucket_unref(k->bucket);
			k->bucket = old->bucket;
			atomic_fetch_add(&((struct shared_bucket *)k->bucket)->refs, 1);
		}
	}
}

__attribute__((format(printf, 3, 4))) static void note(char *out, size_t outlen, const char *fmt,
                                                       ...)
{
	size_t n = strlen(out);
	va_list ap;

	if (n + 3 >= outlen)
		return;
	if (n)
		n += (size_t)snprintf(out + n, outlen - n, "; ");
	va_start(ap, fmt);
	vsnprintf(out + n, outlen - n, fmt, ap);
	va_end(ap);
}

void sg_config_keep_restart_only(const struct sg_config *cur, struct sg_config *next, char *out,
                                 size_t outlen)
{
	long cur_conn = 1, next_conn = 1;

	out[0] = '\0';
	if (strcmp(cur->listen_host, next->listen_host) || cur->listen_port != next->listen_port) {
		char *host = strdup(cur->listen_host);

		note(out, outlen, "listen stays %s:%d", cur->listen_host, cur->listen_port);
		if (host) {
			free(next->listen_host);
			next->listen_host = host;
			next->listen_port = cur->listen_port;
		}
	}
	if (cur->workers != next->workers) {
		note(out, outlen, "workers stays %d", cur->workers);
		next->workers = cur->workers;
	}
	if (cur->cache_max_bytes != next->cache_max_bytes) {
		note(out, outlen, "cache.max_bytes stays %zu", cur->cache_max_bytes);
		next->cache_max_bytes = cur->cache_max_bytes;
	}
	if (cur->idempotency_window_ms != next->idempotency_window_ms ||
	    cur->idempotency_max_keys != next->idempotency_max_keys ||
	    cur->idempotency_max_bytes != next->idempotency_max_bytes) {
		note(out, outlen, "idempotency.* stays as it was");
		next->idempotency_window_ms = cur->idempotency_window_ms;
		next->idempotency_max_keys = cur->idempotency_max_keys;
		next->idempotency_max_bytes = cur->idempotency_max_bytes;
	}
	if ((cur->metrics_host == NULL) != (next->metrics_host == NULL) ||
	    (cur->metrics_host && (strcmp(cur->metrics_host, next->metrics_host) ||
	                           cur->metrics_port != next->metrics_port))) {
		char *host = cur->metrics_host ? strdup(cur->metrics_host) : NULL;

		note(out, outlen, "metrics.listen stays as it was");
		if (host || !cur->metrics_host) {
			free(next->metrics_host);
			next->metrics_host = host;
			next->metrics_port = cur->metrics_port;
		}
	}
	if ((cur->redis.host == NULL) != (next->redis.host == NULL) ||
	    (cur->redis.path == NULL) != (next->redis.path == NULL) ||
	    (cur->redis.host && strcmp(cur->redis.host, next->redis.host)) ||
	    (cur->redis.path && strcmp(cur->redis.path, next->redis.path)) ||
	    cur->redis.port != next->redis.port || cur->redis.db != next->redis.db ||
	    cur->redis.timeout_ms != next->redis.timeout_ms ||
	    cur->redis.connect_timeout_ms != next->redis.connect_timeout_ms ||
	    (cur->redis.password == NULL) != (next->redis.password == NULL) ||
	    (cur->redis.password && strcmp(cur->redis.password, next->redis.password)))
		/* each worker's connection was made with the first: keys and rate limits keep
		 * going to that Redis (prefix and rate_limits_when_down do follow the reload) */
		note(out, outlen, "redis (address, password, db, timeouts) stays as it was");
	if (cur->log_json != next->log_json) {
		note(out, outlen, "log.format stays %s", cur->log_json ? "json" : "text");
		next->log_json = cur->log_json;
	}
	for (size_t i = 0; i < cur->nbackends; i++)
		if (cur->backends[i].max_connections > cur_conn)
			cur_conn = cur->backends[i].max_connections;
	for (size_t i = 0; i < next->nbackends; i++)
		if (next->backends[i].max_connections > next_conn)
			next_conn = next->backends[i].max_connections;
	if (cur_conn != next_conn)
		note(out, outlen,
		     "each worker's connection pool stays at %ld per backend host (the largest "
		     "max_connections at start)",
		     cur_conn);
}

void sg_backend_shared_gen(struct sg_backend *be, unsigned long v)
{
	unsigned long cur = atomic_load(&be->state->shared_gen);

	while (v > cur && !atomic_compare_exchange_weak(&be->state->shared_gen, &cur, v))
		;
}
