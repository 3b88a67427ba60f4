/* accesslog.h - the access log: one line per north request, as text or as a JSON object.
 *
 * Only what the gateway decided and what identifies a request goes in: never a key, an
 * Authorization or x-api-key value, a cookie, a query string, a body or an error message
 * (messages may quote what a client sent). The two client-controlled values it does carry,
 * X-Forwarded-For and a front proxy's X-Request-Id, are capped and reduced to printable ASCII
 * (X-Request-Id to a token's characters), so a header can neither break the line nor add a
 * field to it. */
#ifndef SG_ACCESSLOG_H
#define SG_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

#define SG_ACCESS_XFF_MAX 256      /* bytes of X-Forwarded-For kept */
#define SG_ACCESS_FRONT_ID_MAX 128 /* bytes of X-Request-Id kept */
#define SG_ACCESS_KEY_MAX 128      /* bytes of a key's name shown (names have no bound) */
/* A JSON line's bound: every value is bounded (names, ids, the two capped headers, each byte
 * escaped to at most 6), so a line never needs more. */
#define SG_ACCESS_LINE_MAX 4096

struct sg_access {
	const char *id;         /* the gateway's request id */
	int64_t start_us;       /* wall clock when the request arrived */
	const char *client;     /* peer address, or NULL */
	const char *xff;        /* X-Forwarded-For as received, or NULL */
	const char *front_id;   /* X-Request-Id as received, or NULL */
	const char *method;     /* "GET", … */
	const char *path;       /* the path without its query (text format only) */
	const char *route;      /* "GET /v1/sessions/{id}", "unmatched", "OPTIONS (preflight)" */
	const char *key;        /* the key's name, or NULL */
	const char *backend;    /* a backend's name, "multi", or NULL */
	int status;             /* 499: the client left first */
	size_t bytes_in;        /* request body */
	size_t bytes_out;       /* answer body (a stream: every byte sent) */
	int64_t upstream_us;    /* summed over the request's upstream fetches */
	int64_t total_us;       /* arrival to the end of the answer */
	const char *error_type; /* the north error type of an error answer, or NULL */
	const char *note;       /* text format only: "client went away", … (never client data) */
	int stream;             /* a live stream (its line comes when it ends) */
};

/* Copies in (may be NULL: "") to out (outlen bytes, NUL-terminated), at most cap bytes of it;
 * token: only A-Z a-z 0-9 and . _ : / + = @ - are kept, anything else becomes '_'; otherwise
 * every byte outside printable ASCII becomes '?'. Returns out. */
char *sg_access_clean(const char *in, size_t cap, int token, char *out, size_t outlen);

/* The JSON line of a (without a newline): a malloc'd string, or NULL when out of memory. */
char *sg_access_json(const struct sg_access *a);
/* Writes a's line to stderr (json: the JSON object; else the text line at level info). */
void sg_access_write(const struct sg_access *a, int json);

#endif
