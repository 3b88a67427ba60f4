/* routes.h - the north API as data: one const table of (method, path pattern) → handler.
 *
 * A pattern is a path of literal segments and at most one {id} segment, which matches one
 * non-empty segment, percent-decoded (at most SG_ROUTE_PARAM_MAX bytes, no NUL). One
 * trailing slash is tolerated. HEAD is answered by every GET route (evhttp sends the headers
 * of the GET answer without its body). */
#ifndef SG_ROUTES_H
#define SG_ROUTES_H

#include <stddef.h>

#include "request.h"

#define SG_ROUTE_PARAM_MAX 1024

enum {
	SG_RT_PUBLIC = 1u << 0, /* no API key needed */
	SG_RT_LONG = 1u << 1,   /* lives long (a stream): no request deadline */
	SG_RT_WRITE = 1u << 2,  /* changes state: runs to its end even when the client leaves
	                         * (its answer may be kept for an Idempotency-Key), and a
	                         * deadline leaves its outcome unknown */
};

struct sg_route_def {
	const char *method; /* "GET", "POST", "DELETE" */
	const char *pattern;
	sg_handler handler;
	unsigned flags;
};

/* The table, terminated by an entry with a NULL method. */
extern const struct sg_route_def sg_routes[];

struct sg_route_match {
	const struct sg_route_def *route;
	char *param;    /* malloc'd decoded {id}, or NULL */
	int status;     /* on failure: 404 (no such path) or 405 (the path takes other methods) */
	char allow[64]; /* on 405: the methods the path takes, "GET, HEAD, POST" */
};

/* Looks up (method, path) in sg_routes. Returns 0 with m->route (and m->param) set, or -1
 * with m->status (and m->allow) set. */
int sg_routes_match(const char *method, const char *path, struct sg_route_match *m);
/* The same against another table (tests). */
int sg_routes_match_in(const struct sg_route_def *table, const char *method, const char *path,
                       struct sg_route_match *m);

#endif
