/* routes.c - see routes.h. The table is the API's one list of endpoints: adding one is a
 * line here and a handler in api_*.c. */
#include "routes.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "ready.h"
#include "stream.h"

const struct sg_route_def sg_routes[] = {
    {"GET", "/healthz", sg_api_health, SG_RT_PUBLIC},
    {"GET", "/readyz", sg_api_readyz, SG_RT_PUBLIC},
    {"GET", "/v1/sessions", sg_api_list_sessions, 0},
    {"GET", "/v1/sessions/{id}", sg_api_get_session, 0},
    {"POST", "/v1/sessions", sg_api_create_session, SG_RT_WRITE},
    {"POST", "/v1/sessions/{id}", sg_api_update_session, SG_RT_WRITE},
    {"DELETE", "/v1/sessions/{id}", sg_api_delete_session, SG_RT_WRITE},
    {"POST", "/v1/sessions/{id}/archive", sg_api_archive_session, SG_RT_WRITE},
    {"GET", "/v1/sessions/{id}/events", sg_api_list_events, 0},
    {"POST", "/v1/sessions/{id}/events", sg_api_send_events, SG_RT_WRITE},
    {"GET", "/v1/sessions/{id}/events/stream", sg_api_stream_events, SG_RT_LONG},
    {"GET", "/v1/agents", sg_api_list_agents, 0},
    {"GET", "/v1/agents/{id}", sg_api_get_agent, 0},
    {NULL, NULL, NULL, 0},
};

/* Next segment of a path at *p (after its '/'): sets *seg and *len, advances *p. Returns 0
 * at the end of the path. */
static int next_segment(const char **p, const char *end, const char **seg, size_t *len)
{
	const char *s, *slash;

	if (*p >= end || **p != '/')
		return 0;
	s = *p + 1;
	slash = memchr(s, '/', (size_t)(end - s));
	*seg = s;
	*len = slash ? (size_t)(slash - s) : (size_t)(end - s);
	*p = s + *len;
	return 1;
}

/* Whether path [path, end) has the pattern's shape; the {id} segment goes to
 * *raw and *rawlen. */
static int shape_matches(const char *pattern, const char *path, const char *end, const char **raw,
                         size_t *rawlen)
{
	const char *pp = pattern, *pend = pattern + strlen(pattern), *ps, *s;
	size_t plen, slen;

	for (;;) {
		int more_p = next_segment(&pp, pend, &ps, &plen);
		int more_s = next_segment(&path, end, &s, &slen);

		if (!more_p || !more_s)
			return !more_p && !more_s;
		if (plen == 4 && memcmp(ps, "{id}", 4) == 0) {
			if (slen == 0 || slen > 3 * SG_ROUTE_PARAM_MAX)
				return 0;
			*raw = s;
			*rawlen = slen;
		} else if (plen != slen || memcmp(ps, s, slen) != 0) {
			return 0;
		}
	}
}

/* The decoded {id}, or NULL when it is not usable (then the path matches nothing). */
static char *decode_param(const char *raw, size_t len)
{
	char buf[3 * SG_ROUTE_PARAM_MAX + 1];
	size_t dl = 0;
	char *out;

	memcpy(buf, raw, len);
	buf[len] = '\0';
	out = evhttp_uridecode(buf, 0, &dl);
	if (out && (dl == 0 || dl > SG_ROUTE_PARAM_MAX || strlen(out) != dl)) {
		free(out);
		out = NULL;
	}
	return out;
}

/* Adds method to the comma-separated list in allow, once. */
static void allow_add(char *allow, size_t len, const char *method)
{
	size_t n = strlen(method), used = strlen(allow);

	for (const char *p = allow; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 2 : NULL)
		if (strncmp(p, method, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return;
	snprintf(allow + used, len - used, "%s%s", used ? ", " : "", method);
}

int sg_routes_match_in(const struct sg_route_def *table, const char *method, const char *path,
                       struct sg_route_match *m)
{
	size_t n = strlen(path);
	const char *end;
	int known = 0;

	memset(m, 0, sizeof(*m));
	if (n > 1 && path[n - 1] == '/')
		n--; /* one trailing slash is tolerated */
	end = path + n;
	for (const struct sg_route_def *rt = table; rt->method; rt++) {
		const char *raw = NULL;
		size_t rawlen = 0;
		char *param = NULL;

		if (!shape_matches(rt->pattern, path, end, &raw, &rawlen))
			continue;
		/* An {id} that does not decode to a usable id matches nothing. */
		if (raw && !(param = decode_param(raw, rawlen)))
			continue;
		known = 1;
		allow_add(m->allow, sizeof(m->allow), rt->method);
		if (strcmp(rt->method, "GET") == 0)
			allow_add(m->allow, sizeof(m->allow), "HEAD");
		if (!m->route &&
		    (strcmp(rt->method, method) == 0 ||
		     (strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0))) {
			m->route = rt;
			m->param = param;
		} else {
			free(param);
		}
	}
	if (m->route)
		return 0;
	m->status = known ? 405 : 404;
	return -1;
}

int sg_routes_match(const char *method, const char *path, struct sg_route_match *m)
{
	return sg_routes_match_in(sg_routes, method, path, m);
}
