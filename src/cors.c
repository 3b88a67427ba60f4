/* cors.c - see cors.h. */
#include "cors.h"

#include <ctype.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What the official SDK sends from a browser (dangerouslyAllowBrowser) and what the API reads:
 * its auth and version headers, the x-stainless-* family (matched by prefix), Idempotency-Key,
 * the stream's Last-Event-ID, and the freshness headers a client may send. */
static const char *const allowed_headers[] = {"accept",
                                              "anthropic-beta",
                                              "anthropic-dangerous-direct-browser-access",
                                              "anthropic-version",
                                              "authorization",
                                              "cache-control",
                                              "content-type",
                                              "idempotency-key",
                                              "last-event-id",
                                              "pragma",
                                              "user-agent",
                                              "x-api-key",
                                              "x-request-id",
                                              NULL};

#define ALLOW_METHODS "GET, HEAD, POST, DELETE"
/* What the SDK reads from an answer beyond the safelisted headers. */
#define EXPOSE_HEADERS                                                                             \
	"request-id, retry-after, retry-after-ms, x-should-retry, idempotent-replayed"

static int set_err(char *key, size_t keylen, const char *k, char *msg, size_t msglen, const char *m)
{
	snprintf(key, keylen, "%s", k);
	snprintf(msg, msglen, "%s", m);
	return -1;
}

/* A serialized origin: scheme "://" host [":" port], nothing after it. */
static int origin_ok(const char *s)
{
	const char *h;

	if (strncmp(s, "http://", 7) == 0)
		h = s + 7;
	else if (strncmp(s, "https://", 8) == 0)
		h = s + 8;
	else
		return 0;
	if (!*h || strlen(s) > SG_CORS_ORIGIN_MAX)
		return 0;
	for (; *h; h++)
		if (!isalnum((unsigned char)*h) && !strchr(".-:[]", *h))
			return 0;
	return 1;
}

struct sg_cors *sg_cors_from_json(const json_t *v, char *key, size_t keylen, char *msg,
                                  size_t msglen)
{
	struct sg_cors *c;
	const json_t *origins, *age;
	const char *k;
	json_t *val;
	size_t i;

	if (!json_is_object(v)) {
		set_err(key, keylen, "cors", msg, msglen, "must be an object");
		return NULL;
	}
	json_object_foreach((json_t *)v, k, val) {
		if (k[0] != '_' && strcmp(k, "origins") != 0 && strcmp(k, "max_age_s") != 0) {
			char kk[300];

			snprintf(kk, sizeof(kk), "cors.%s", k);
			set_err(key, keylen, kk, msg, msglen, "unknown key");
			return NULL;
		}
	}
	origins = json_object_get(v, "origins");
	if (!json_is_array(origins) || json_array_size(origins) == 0 ||
	    json_array_size(origins) > 1000) {
		set_err(key, keylen, "cors.origins", msg, msglen,
		        "must be a non-empty array of origins (\"https://app.example\") or \"*\"");
		return NULL;
	}
	age = json_object_get(v, "max_age_s");
	if (age && (!json_is_integer(age) || json_integer_value(age) < 0 ||
	            json_integer_value(age) > 86400)) {
		set_err(key, keylen, "cors.max_age_s", msg, msglen,
		        "must be an integer between 0 and 86400");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c)
		c->origins = calloc(json_array_size(origins), sizeof(*c->origins));
	if (!c || !c->origins) {
		sg_cors_free(c);
		set_err(key, keylen, "cors", msg, msglen, "out of memory");
		return NULL;
	}
	c->max_age_s = age ? (long)json_integer_value(age) : 600;
	json_array_foreach(origins, i, val) {
		const char *s = json_string_value(val);
		char kk[64];

		snprintf(kk, sizeof(kk), "cors.origins[%zu]", i);
		if (s && strcmp(s, "*") == 0) {
			c->any = 1;
			continue;
		}
		if (!s || !origin_ok(s)) {
			set_err(key, keylen, kk, msg, msglen,
			        "must be \"*\" or an origin: http:// or https://, a host and an "
			        "optional :port, nothing after it (no path, no trailing slash)");
			sg_cors_free(c);
			return NULL;
		}
		c->origins[c->norigins] = strdup(s);
		if (!c->origins[c->norigins]) {
			sg_cors_free(c);
			set_err(key, keylen, "cors", msg, msglen, "out of memory");
			return NULL;
		}
		/* browsers send the scheme and host in lower case */
		for (char *p = c->origins[c->norigins]; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		c->norigins++;
	}
	return c;
}

void sg_cors_free(struct sg_cors *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->norigins; i++)
		free(c->origins[i]);
	free(c->origins);
	free(c);
}

int sg_cors_allowed(const struct sg_cors *c, const char *origin)
{
	if (!c || !origin || !*origin)
		return 0;
	if (c->any)
		return 1;
	for (size_t i = 0; i < c->norigins; i++)
		if (strcasecmp(c->origins[i], origin) == 0)
			return 1;
	return 0;
}

/* The Allow-Origin value: "*" for any origin, else the origin itself (then Vary: Origin). */
static void allow_origin(const struct sg_cors *c, const char *origin, struct evkeyvalq *out)
{
	evhttp_add_header(out, "Access-Control-Allow-Origin", c->any ? "*" : origin);
}

void sg_cors_answer_headers(const struct sg_cors *c, const char *origin, struct evkeyvalq *out)
{
	if (!c)
		return;
	/* the answer depends on Origin whether or not this one is allowed (caches) */
	evhttp_add_header(out, "Vary", "Origin");
	if (!sg_cors_allowed(c, origin))
		return;
	allow_origin(c, origin, out);
	evhttp_add_header(out, "Access-Control-Expose-Headers", EXPOSE_HEADERS);
}

static int header_allowed(const char *name, size_t n)
{
	if (n > 12 && strncasecmp(name, "x-stainless-", 12) == 0)
		return 1;
	for (size_t i = 0; allowed_headers[i]; i++)
		if (strlen(allowed_headers[i]) == n &&
		    strncasecmp(allowed_headers[i], name, n) == 0)
			return 1;
	return 0;
}

void sg_cors_allow_headers(const char *req, char *out, size_t len)
{
	size_t used = 0;

	if (len)
		out[0] = '\0';
	while (req && *req) {
		const char *comma = strchr(req, ','), *end = comma ? comma : req + strlen(req);
		const char *s = req, *e = end;

		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > s && header_allowed(s, (size_t)(e - s)) &&
		    used + (size_t)(e - s) + 3 < len) {
			char name[128];
			size_t n =
			    (size_t)(e - s) < sizeof(name) - 1 ? (size_t)(e - s) : sizeof(name) - 1;
			int dup = 0;

			for (size_t i = 0; i < n; i++)
				name[i] = (char)tolower((unsigned char)s[i]);
			name[n] = '\0';
			/* once each */
			for (const char *p = out; *p && !dup;
			     p = strchr(p, ',') ? strchr(p, ',') + 2 : "")
				dup = strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0');
			if (!dup)
				used += (size_t)snprintf(out + used, len - used, "%s%s",
				                         used ? ", " : "", name);
		}
		req = comma ? comma + 1 : end;
	}
}

void sg_cors_preflight_headers(const struct sg_cors *c, const char *origin, const char *req_headers,
                               struct evkeyvalq *out)
{
	char allow[2048], age[24];

	allow_origin(c, origin, out);
	evhttp_add_header(out, "Access-Control-Allow-Methods", ALLOW_METHODS);
	sg_cors_allow_headers(req_headers, allow, sizeof(allow));
	if (allow[0])
		evhttp_add_header(out, "Access-Control-Allow-Headers", allow);
	snprintf(age, sizeof(age), "%ld", c->max_age_s);
	evhttp_add_header(out, "Access-Control-Max-Age", age);
	evhttp_add_header(out, "Vary", "Origin");
}
