/* fake_common.h - the plumbing fake_agentscope and fake_sandbase share: the one-loop HTTP server
 * with its /__fake control routes, request recording and misbehaviour modes, replies, query
 * parsing, the command-line options both take, data-file loading and a seeded PRNG.
 *
 * A fake describes itself in a static struct fk_fake (its name, JSON number format, hooks),
 * embeds struct fk_server in its own server state and hands it to fk_server_run(). What speaks
 * a backend's dialect (routes, error bodies, datasets) stays in the fake.
 *
 * Live streams (text/event-stream) are plumbing too: a route answers with fk_reply_stream(),
 * the server opens the stream when the reply goes out (after the mode's delay), the fake's
 * stream_open hook writes what a new subscriber is replayed, and the fake then writes frames
 * to every open stream of a channel (a session) with fk_stream_send(). Heartbeats, clients
 * that leave, and POST /__fake/stream-drop (every open stream is cut without its terminating
 * chunk, as a dropped connection would be) are handled here; GET /__fake/mode counts the
 * streams (streams_open, streams_total). */
#ifndef FAKE_COMMON_H
#define FAKE_COMMON_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>

#define FK_COUNT(a) (sizeof(a) / sizeof((a)[0]))
/* The struct of type `type` whose member `m` is at p (the fakes embed struct fk_server). */
#define FK_CONTAINER_OF(p, type, m) ((type *)(void *)((char *)(p)-offsetof(type, m)))

#define FK_MAX_AGENTS 1000
#define FK_MAX_DELAY_MS 600000
#define FK_DEFAULT_DELAY_MS 3000
#define FK_MAX_DATA_FILE (64L * 1024 * 1024)

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                                */
/* ------------------------------------------------------------------------------------------ */

/* Borrowed string member, or NULL when absent or not a string. */
const char *fk_get_str(const json_t *obj, const char *key);

/* Strict unsigned parse of a whole string; 0 on success. */
int fk_parse_ulong(const char *s, unsigned long long max, unsigned long long *out);

/* A JSON string of s; bytes that are not UTF-8 (ids come from URLs and headers) become '?'.
 * Returns a new reference. */
json_t *fk_json_text(const char *s);

/* Appends the JSON text of j (borrowed), dumped with jansson's flags, to buf. */
int fk_buf_add_json(struct evbuffer *buf, const json_t *j, size_t flags);

const char *fk_method_name(enum evhttp_cmd_type cmd);

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's civil algorithm). */
int64_t fk_days_from_civil(int64_t y, unsigned m, unsigned d);

/* Reads exactly n decimal digits at *p into *out and advances *p; -1 on a non-digit. */
int fk_digits(const char **p, int n, int *out);

/* Reads a dataset file of at most FK_MAX_DATA_FILE bytes. Returns a new reference, or NULL
 * with err filled. */
json_t *fk_load_file(const char *path, char *err, size_t errlen);

/* Microseconds since the epoch, from the wall clock. */
int64_t fk_now_us(void);

/* The request body as sent (borrowed, not NUL-terminated; NULL when empty) and its length. */
const char *fk_body(struct evhttp_request *req, size_t *len);

/* ------------------------------------------------------------------------------------------ */
/* Shared texts: a listing item serialised once and referenced by every reply that sends it     */
/* ------------------------------------------------------------------------------------------ */

/* A refcounted byte string. A store replaces an item's text when the item changes; replies
 * still holding the old text keep it alive until libevent has written them. */
struct fk_text;

/* Takes s (malloc'd, len bytes); NULL (and s freed) when out of memory. One reference. */
struct fk_text *fk_text_new(char *s, size_t len);

/* Serialises j (borrowed) with jansson's flags; NULL when that fails. One reference. */
struct fk_text *fk_text_json(const json_t *j, size_t flags);

void fk_text_unref(struct fk_text *t);

const char *fk_text_data(const struct fk_text *t);
size_t fk_text_len(const struct fk_text *t);

/* Appends t to buf without copying; the buffer holds a reference until it is drained. */
int fk_buf_add_text(struct evbuffer *buf, struct fk_text *t);

/* ------------------------------------------------------------------------------------------ */
/* Deterministic PRNG (splitmix64): the same seed always yields the same dataset                */
/* ------------------------------------------------------------------------------------------ */

struct fk_rng {
	uint64_t s;
};

uint64_t fk_rng_next(struct fk_rng *r);

/* Uniform-ish in [0, n); 0 when n is 0. */
uint32_t fk_rng_below(struct fk_rng *r, uint32_t n);

/* ------------------------------------------------------------------------------------------ */
/* The simulated agent: what a run does is chosen by markers in the user's text                 */
/* ------------------------------------------------------------------------------------------ */

enum fk_plan {
	FK_PLAN_TEXT,     /* (no marker) one model call, one text answer */
	FK_PLAN_TOOL,     /* [tool:auto] a built-in tool runs, then the answer */
	FK_PLAN_ASK,      /* [tool:ask] a tool call waits for the user's permission */
	FK_PLAN_EXTERNAL, /* [tool:external] (or [tool:custom]) a tool call waits for its result */
	FK_PLAN_ERROR,    /* [reply:error] the model call fails */
	FK_PLAN_LONG,     /* [run:long] the run goes on until it is interrupted */
	FK_PLAN_TERMINATE /* [session:terminate] the run fails for good and the session is
	                   * terminated (Claude-native); elsewhere as [reply:error] */
};

/* The plan a user text asks for (the first marker found wins; NULL is plain text). */
enum fk_plan fk_plan_of(const char *text);

/* ------------------------------------------------------------------------------------------ */
/* Query strings                                                                                */
/* ------------------------------------------------------------------------------------------ */

/* What a decoded key or value holding an encoded NUL (%00) reads as. The two fakes have always
 * differed here, and their tests may rely on it. */
enum fk_nul {
	FK_NUL_CUT,  /* the text up to the NUL */
	FK_NUL_BLANK /* "" */
};

/* Calls fn(key, value, arg) for every parameter of query, both percent-decoded with '+' as
 * space (a bare "key" has the value ""); stops early when fn returns non-zero. */
void fk_query_each(const char *query, enum fk_nul nul,
                   int (*fn)(const char *key, const char *value, void *arg), void *arg);

/* The last value of key (decoded, malloc'd), or NULL when absent. */
char *fk_query_get(const char *query, const char *key, enum fk_nul nul);

/* Every value of a repeated key, in order. New reference (an empty array when absent). */
json_t *fk_query_all(const char *query, const char *key, enum fk_nul nul);

/* ------------------------------------------------------------------------------------------ */
/* Replies                                                                                      */
/* ------------------------------------------------------------------------------------------ */

struct fk_stream;

struct fk_reply {
	int code;
	const char *reason;
	const char *ctype; /* NULL: no Content-Type */
	struct evbuffer *body;
	char *location;           /* malloc'd; fake_agentscope's 307 only */
	const char *allow;        /* 405 only */
	const char *retry_after;  /* mode busy only */
	struct fk_stream *stream; /* a stream to open instead of a body (fk_reply_stream) */
};

/* Frees the body, the Location and a stream not yet opened, and zeroes r. */
void fk_reply_clear(struct fk_reply *r);

/* Starts a reply with an empty body; -1 when out of memory. */
int fk_reply_init(struct fk_reply *r, int code, const char *reason, const char *ctype);

/* A JSON reply dumped with jansson's flags; j is stolen (NULL gives an empty body). */
void fk_reply_json(struct fk_reply *r, int code, const char *reason, json_t *j, size_t flags);

/* {"detail": msg}, the body of the control routes' errors (no numbers: no format to pick). */
void fk_reply_detail(struct fk_reply *r, int code, const char *reason, const char *msg);

/* ------------------------------------------------------------------------------------------ */
/* Options both fakes take                                                                      */
/* ------------------------------------------------------------------------------------------ */

enum fk_mode {
	FK_MODE_OK,
	FK_MODE_SLOW,
	FK_MODE_GARBAGE,
	FK_MODE_WRONG_SHAPE,
	FK_MODE_HTTP500,
	FK_MODE_CLOSE,
	/* The next two touch writes only (any method but GET and HEAD) and only once the fake
	 * has performed them (a 2xx): reads keep working, so a test can see what happened. */
	FK_MODE_WRITE_UNKNOWN, /* the answer becomes the fake's write_fail reply */
	FK_MODE_WRITE_DROP,    /* the connection is closed without an answer */
	FK_MODE_BUSY           /* 503 with Retry-After: 7, as a loaded server answers */
};

struct fk_opts {
	unsigned port;
	const char *port_file;
	const char *data;
	const char *generate;
	uint64_t seed;
	enum fk_mode mode;
	unsigned delay_ms;
	bool quiet;
};

/* Parses argv with getopt_long over longopts. The .val letters p f d g s m D q h are the common
 * options (--port, --port-file, --data, --generate, --seed, --mode, --delay-ms, --quiet,
 * --help); any other letter goes to own(c, optarg, ctx), which returns 0 when it took the
 * option, -1 when its value is bad and 1 when c is not an option of the fake. --help prints
 * usage(stdout) and exits 0. Returns 0, or -1 after printing why and usage(stderr). */
int fk_parse_args(const char *name, int argc, char **argv, const struct option *longopts,
                  struct fk_opts *o, int (*own)(int c, const char *arg, void *ctx), void *ctx,
                  void (*usage)(FILE *fp));

/* Splits a --generate spec "N[:AGENTS[:REST]]" after copying it into buf (a spec that does not
 * fit is refused): N <= max_n, AGENTS (3 when absent) 1..FK_MAX_AGENTS, *rest what follows a
 * second colon (in buf) or NULL. 0 on success. */
int fk_parse_generate(const char *spec, char *buf, size_t size, unsigned long long max_n,
                      unsigned *n, unsigned *agents, char **rest);

/* ------------------------------------------------------------------------------------------ */
/* The server                                                                                   */
/* ------------------------------------------------------------------------------------------ */

struct fk_server;
struct fk_pending;

/* What a fake's streams look like. */
struct fk_stream_kind {
	const char *ctype;          /* Content-Type */
	const char *const *headers; /* more headers: name, value, ..., NULL (may be NULL) */
	const char *heartbeat;      /* what a heartbeat writes */
	/* true: a heartbeat every interval; false: one after every interval without a frame
	 * (AgentScope waits for its next event with the heartbeat as the timeout). */
	bool periodic;
};

/* A header every recorded request lists, as {"member": [values...]}. */
struct fk_header {
	const char *member;
	const char *name;
};

/* What makes a fake a fake. */
struct fk_fake {
	const char *name;                 /* the program: prefixes its log and error lines */
	size_t dump_flags;                /* jansson flags of the JSON bodies the server writes */
	enum fk_nul query_nul;            /* how the control routes read their query */
	const struct fk_header *recorded; /* after method and uri, in this order */
	size_t nrecorded;
	const char *mode_usage; /* the detail of a 400 from POST /__fake/mode */
	/* Answers one non-control request (already recorded) into r. raw_path is as sent, path
	 * percent-decoded ("" when it held an encoded NUL). */
	void (*serve)(struct fk_server *srv, struct evhttp_request *req, const char *raw_path,
	              const char *path, const char *query, struct fk_reply *r);
	/* The reply of mode http500, in the fake's error shape. */
	void (*fail)(struct fk_server *srv, struct fk_reply *r);
	/* Optional: the reply of mode write-unknown to a write the fake has just performed (the
	 * backend's "outcome unknown" answer); fail when NULL. */
	void (*write_fail)(struct fk_server *srv, struct fk_reply *r);
	/* Optional: adds the fake's own members to the object of GET /__fake/mode; 0 or -1. */
	int (*mode_info)(struct fk_server *srv, json_t *info);
	/* Optional: applies the fake's own POST /__fake/mode parameters, called once mode and
	 * delay_ms are known to be good. Returns -1, changing nothing, when one is bad. */
	int (*mode_set)(struct fk_server *srv, const char *query);
	/* Needed by a fake that answers fk_reply_stream(): a stream on channel key (arg as given
	 * to fk_reply_stream) is opening; appends what it replays to out. */
	void (*stream_open)(struct fk_server *srv, const char *key, void *arg,
	                    struct evbuffer *out);
};

/* Zero-initialise; fk_server_run() fills it in. */
struct fk_server {
	const struct fk_fake *fake;
	struct event_base *base;
	struct evhttp *http;
	struct event *sigterm, *sigint;
	enum fk_mode mode;
	unsigned delay_ms;
	bool quiet;
	unsigned port; /* bound */
	/* [{method, uri, <fake->recorded members>..., body?, json?}]: body is the request body as
	 * text when there is one, json the same parsed when it is JSON. */
	json_t *recorded;
	struct fk_pending *pending;
	struct fk_stream *streams; /* the open ones */
	unsigned long streams_open, streams_total;
};

/* Listens on 127.0.0.1:o->port, writes o->port_file, prints "<name> listening on …" and
 * serves until SIGTERM or SIGINT. Returns the exit status: 0, or 1 after printing why not.
 * fk_server_free() is needed either way. */
int fk_server_run(struct fk_server *srv, const struct fk_fake *fake, const struct fk_opts *o);

/* Makes r a 200 stream on channel key (copied). When r is sent (after the mode's delay) the
 * headers go out, the fake's stream_open hook writes the replay and the stream stays open,
 * receiving fk_stream_send(key) frames and a heartbeat every heartbeat_ms (0: none). arg is
 * malloc'd or NULL and taken (freed with the stream). A mode that replaces the answer (http500,
 * close, ...) replaces the stream too. Returns 0, or -1 (arg freed, r cleared) when out of
 * memory. */
int fk_reply_stream(struct fk_server *srv, struct fk_reply *r, const struct fk_stream_kind *kind,
                    unsigned heartbeat_ms, const char *key, void *arg);

/* Writes len bytes to every open stream on channel key. */
void fk_stream_send(struct fk_server *srv, const char *key, const char *data, size_t len);

/* Writes len bytes (0: nothing) to every open stream on key, then ends each one cleanly (the
 * terminating chunk; the connection may serve further requests). */
void fk_stream_finish(struct fk_server *srv, const char *key, const char *data, size_t len);

/* Drops held replies and frees the server, then shuts libevent down: call it before freeing
 * anything that reply buffers may reference. Safe on a zeroed server. */
void fk_server_free(struct fk_server *srv);

#endif
