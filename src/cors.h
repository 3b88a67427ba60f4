/* cors.h - Cross-Origin Resource Sharing for browser clients (configuration key `cors`).
 *
 * Only origins listed in the configuration get CORS headers; "*" lets any origin in, and is
 * then answered "*" (never with credentials: the gateway authenticates by header, so a browser
 * needs no credentials mode). Without `cors` no answer carries a CORS header and OPTIONS is
 * routed like any other method (405). With it:
 *  - a preflight (OPTIONS with Origin and Access-Control-Request-Method) on a path of the API is
 *    answered before authentication: 204 with Allow-Origin, Allow-Methods, Allow-Headers (the
 *    requested ones that are in the allowed set, SG_CORS_ALLOWED_HEADERS, plus x-stainless-*),
 *    Max-Age and Vary: Origin; from an origin not in the list, 403 permission_error without any
 *    CORS header;
 *  - every other answer (errors and live streams included) to an allowed origin carries
 *    Allow-Origin, Expose-Headers and Vary: Origin. */
#ifndef SG_CORS_H
#define SG_CORS_H

#include <jansson.h>
#include <stddef.h>

struct evkeyvalq;

struct sg_cors {
	char **origins; /* exact origins ("https://app.example"), lower case */
	size_t norigins;
	int any;        /* "*" was listed */
	long max_age_s; /* Access-Control-Max-Age of preflights */
};

#define SG_CORS_ORIGIN_MAX 256

/* Reads the `cors` object v (borrowed). Returns a new struct, or NULL with the JSON path of the
 * offending key in key (keylen bytes: "cors.origins[1]") and the problem in msg. */
struct sg_cors *sg_cors_from_json(const json_t *v, char *key, size_t keylen, char *msg,
                                  size_t msglen);
void sg_cors_free(struct sg_cors *c);

/* 1 when origin (may be NULL) may read answers. */
int sg_cors_allowed(const struct sg_cors *c, const char *origin);

/* Adds the headers of a normal answer to out (Vary always; the rest for an allowed origin).
 * c may be NULL (nothing added). */
void sg_cors_answer_headers(const struct sg_cors *c, const char *origin, struct evkeyvalq *out);

/* A preflight's headers for an allowed origin: Allow-Origin, -Methods, -Headers (from the
 * requested list req_headers, may be NULL), Max-Age, Vary. */
void sg_cors_preflight_headers(const struct sg_cors *c, const char *origin, const char *req_headers,
                               struct evkeyvalq *out);

/* The Access-Control-Allow-Headers value for a requested list (out, len bytes): each requested
 * name that the gateway accepts from a browser, lower-cased, in order, once. */
void sg_cors_allow_headers(const char *req_headers, char *out, size_t len);

#endif
