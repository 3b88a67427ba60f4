/* fake_common.c - the plumbing fake_agentscope and fake_sandbase share (see fake_common.h).
 *
 * One thread, one libevent loop; nothing blocks it (delays are event timers). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <jansson.h>

#include "fake_common.h"

#define FK_MAX_HEADERS (16 * 1024)
#define FK_MAX_BODY (1024 * 1024)
#define FK_CONN_TIMEOUT_S 120
#define FK_MAX_RECORDED 65536
#define FK_LOG_URI_MAX 300

static const char *const fk_mode_names[] = {"ok",      "slow",  "garbage",       "wrong-shape",
                                            "http500", "close", "write-unknown", "write-drop",
                                            "busy"};

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                                */
/* ------------------------------------------------------------------------------------------ */

static int fk_dump_to_evbuffer(const char *data, size_t size, void *arg)
{
	return evbuffer_add(arg, data, size);
}

int fk_buf_add_json(struct evbuffer *buf, const json_t *j, size_t flags)
{
	return json_dump_callback(j, fk_dump_to_evbuffer, buf, flags);
}

const char *fk_get_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

int fk_parse_ulong(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end = NULL;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

json_t *fk_json_text(const char *s)
{
	json_t *j = json_string(s);
	char *copy;

	if (j != NULL || s == NULL)
		return j;
	copy = strdup(s);
	if (copy == NULL)
		return NULL;
	for (char *p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

const char *fk_method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_TRACE:
		return "TRACE";
	case EVHTTP_REQ_CONNECT:
		return "CONNECT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	}
	return "OTHER";
}

int64_t fk_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, mp, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	mp = m > 2 ? m - 3 : m + 9;
	doy = (153 * mp + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

int fk_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

json_t *fk_load_file(const char *path, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "rb");
	struct stat sb;
	json_error_t jerr;
	json_t *root;

	if (fp == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > FK_MAX_DATA_FILE) {
		snprintf(err, errlen, "%s: not a regular file of at most %ld bytes", path,
		         FK_MAX_DATA_FILE);
		fclose(fp);
		return NULL;
	}
	root = json_loadf(fp, 0, &jerr);
	fclose(fp);
	if (root == NULL)
		snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
	return root;
}

int64_t fk_now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

const char *fk_body(struct evhttp_request *req, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);

	*len = in != NULL ? evbuffer_get_length(in) : 0;
	/* Makes the body contiguous without draining it: the fake reads it again. */
	return *len > 0 ? (const char *)evbuffer_pullup(in, -1) : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Shared texts                                                                                 */
/* ------------------------------------------------------------------------------------------ */

struct fk_text {
	unsigned refs;
	size_t len;
	char *s;
};

struct fk_text *fk_text_new(char *s, size_t len)
{
	struct fk_text *t = s != NULL ? malloc(sizeof(*t)) : NULL;

	if (t == NULL) {
		free(s);
		return NULL;
	}
	*t = (struct fk_text){.refs = 1, .len = len, .s = s};
	return t;
}

struct fk_text *fk_text_json(const json_t *j, size_t flags)
{
	char *s = json_dumps(j, flags);

	return s != NULL ? fk_text_new(s, strlen(s)) : NULL;
}

void fk_text_unref(struct fk_text *t)
{
	if (t == NULL || --t->refs > 0)
		return;
	free(t->s);
	free(t);
}

const char *fk_text_data(const struct fk_text *t)
{
	return t->s;
}

size_t fk_text_len(const struct fk_text *t)
{
	return t->len;
}

static void fk_text_release(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	fk_text_unref(arg);
}

int fk_buf_add_text(struct evbuffer *buf, struct fk_text *t)
{
	t->refs++;
	if (evbuffer_add_reference(buf, t->s, t->len, fk_text_release, t) == 0)
		return 0;
	t->refs--;
	return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* PRNG                                                                                         */
/* ------------------------------------------------------------------------------------------ */

uint64_t fk_rng_next(struct fk_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint32_t fk_rng_below(struct fk_rng *r, uint32_t n)
{
	return n == 0 ? 0 : (uint32_t)(fk_rng_next(r) % n);
}

/* ------------------------------------------------------------------------------------------ */
/* The simulated agent                                                                          */
/* ------------------------------------------------------------------------------------------ */

enum fk_plan fk_plan_of(const char *text)
{
	static const struct {
		const char *marker;
		enum fk_plan plan;
	} markers[] = {
	    {"[tool:auto]", FK_PLAN_TOOL},
	    {"[tool:ask]", FK_PLAN_ASK},
	    {"[tool:external]", FK_PLAN_EXTERNAL},
	    {"[tool:custom]", FK_PLAN_EXTERNAL},
	    {"[reply:error]", FK_PLAN_ERROR},
	    {"[run:long]", FK_PLAN_LONG},
	    {"[session:terminate]", FK_PLAN_TERMINATE},
	};
	const char *best = NULL;
	enum fk_plan plan = FK_PLAN_TEXT;

	for (size_t i = 0; text != NULL && i < FK_COUNT(markers); i++) {
		const char *at = strstr(text, markers[i].marker);

		if (at != NULL && (best == NULL || at < best)) {
			best = at;
			plan = markers[i].plan;
		}
	}
	return plan;
}

/* ------------------------------------------------------------------------------------------ */
/* Query strings                                                                                */
/* ------------------------------------------------------------------------------------------ */

/* Percent-decodes s[0..len) with '+' as space. Returns malloc'd text or NULL. */
static char *fk_decode(const char *s, size_t len, enum fk_nul nul)
{
	char *raw = strndup(s, len), *out;
	size_t n = 0;

	if (raw == NULL)
		return NULL;
	out = evhttp_uridecode(raw, 1, &n);
	free(raw);
	if (out != NULL && nul == FK_NUL_BLANK && strlen(out) != n)
		out[0] = '\0';
	return out;
}

void fk_query_each(const char *query, enum fk_nul nul,
                   int (*fn)(const char *key, const char *value, void *arg), void *arg)
{
	for (const char *p = query; p != NULL && *p != '\0';) {
		size_t seg = strcspn(p, "&");
		const char *eq = memchr(p, '=', seg);
		size_t klen = eq != NULL ? (size_t)(eq - p) : seg;
		char *k = seg > 0 ? fk_decode(p, klen, nul) : NULL;
		char *v = k == NULL    ? NULL
		          : eq != NULL ? fk_decode(eq + 1, seg - klen - 1, nul)
		                       : strdup("");
		int stop = k != NULL && v != NULL ? fn(k, v, arg) : 0;

		free(k);
		free(v);
		if (stop)
			return;
		p += seg;
		if (*p == '&')
			p++;
	}
}

struct fk_qget {
	const char *key;
	char *found;
	json_t *all;
};

static int fk_qget_cb(const char *k, const char *v, void *arg)
{
	struct fk_qget *q = arg;

	if (strcmp(k, q->key) != 0)
		return 0;
	if (q->all != NULL) {
		json_array_append_new(q->all, fk_json_text(v));
		return 0;
	}
	free(q->found);
	q->found = strdup(v);
	return 0;
}

char *fk_query_get(const char *query, const char *key, enum fk_nul nul)
{
	struct fk_qget q = {.key = key};

	fk_query_each(query, nul, fk_qget_cb, &q);
	return q.found;
}

json_t *fk_query_all(const char *query, const char *key, enum fk_nul nul)
{
	struct fk_qget q = {.key = key, .all = json_array()};

	if (q.all != NULL)
		fk_query_each(query, nul, fk_qget_cb, &q);
	return q.all;
}

/* ------------------------------------------------------------------------------------------ */
/* Replies                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static void fk_stream_free(struct fk_stream *st);

void fk_reply_clear(struct fk_reply *r)
{
	if (r->body != NULL)
		evbuffer_free(r->body);
	free(r->location);
	fk_stream_free(r->stream);
	memset(r, 0, sizeof(*r));
}

int fk_reply_init(struct fk_reply *r, int code, const char *reason, const char *ctype)
{
	fk_reply_clear(r);
	r->code = code;
	r->reason = reason;
	r->ctype = ctype;
	r->body = evbuffer_new();
	return r->body != NULL ? 0 : -1;
}

void fk_reply_json(struct fk_reply *r, int code, const char *reason, json_t *j, size_t flags)
{
	if (fk_reply_init(r, code, reason, "application/json") == 0 && j != NULL)
		fk_buf_add_json(r->body, j, flags);
	json_decref(j);
}

void fk_reply_detail(struct fk_reply *r, int code, const char *reason, const char *msg)
{
	fk_reply_json(r, code, reason, json_pack("{s:s}", "detail", msg), JSON_COMPACT);
}

static void fk_stream_start(struct evhttp_request *req, struct fk_reply *r);

static void fk_reply_send(struct evhttp_request *req, struct fk_reply *r)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	if (r->stream != NULL) {
		fk_stream_start(req, r);
		return;
	}
	if (r->ctype != NULL)
		evhttp_add_header(h, "Content-Type", r->ctype);
	if (r->location != NULL)
		evhttp_add_header(h, "Location", r->location);
	if (r->allow != NULL)
		evhttp_add_header(h, "Allow", r->allow);
	if (r->retry_after != NULL)
		evhttp_add_header(h, "Retry-After", r->retry_after);
	evhttp_send_reply(req, r->code, r->reason, r->body);
	fk_reply_clear(r);
}

/* ------------------------------------------------------------------------------------------ */
/* Options                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static int fk_mode_from_name(const char *name, enum fk_mode *out)
{
	for (size_t i = 0; i < FK_COUNT(fk_mode_names); i++) {
		if (strcmp(name, fk_mode_names[i]) == 0) {
			*out = (enum fk_mode)i;
			return 0;
		}
	}
	return -1;
}

/* The long name of option letter c. */
static const char *fk_opt_name(const struct option *longopts, int c)
{
	for (; longopts->name != NULL; longopts++)
		if (longopts->val == c)
			return longopts->name;
	return "?";
}

/* One common option; 0 when taken, -1 on a bad value, 1 when c is not a common option. */
static int fk_parse_opt(int c, const char *arg, struct fk_opts *o)
{
	unsigned long long v;

	switch (c) {
	case 'p':
		if (fk_parse_ulong(arg, 65535, &v))
			return -1;
		o->port = (unsigned)v;
		return 0;
	case 'f':
		o->port_file = arg;
		return 0;
	case 'd':
		o->data = arg;
		return 0;
	case 'g':
		o->generate = arg;
		return 0;
	case 's':
		if (fk_parse_ulong(arg, UINT64_MAX, &v))
			return -1;
		o->seed = v;
		return 0;
	case 'm':
		return fk_mode_from_name(arg, &o->mode);
	case 'D':
		if (fk_parse_ulong(arg, FK_MAX_DELAY_MS, &v))
			return -1;
		o->delay_ms = (unsigned)v;
		return 0;
	case 'q':
		o->quiet = true;
		return 0;
	}
	return 1;
}

int fk_parse_args(const char *name, int argc, char **argv, const struct option *longopts,
                  struct fk_opts *o, int (*own)(int c, const char *arg, void *ctx), void *ctx,
                  void (*usage)(FILE *fp))
{
	int c, rc;

	*o = (struct fk_opts){.seed = 1, .delay_ms = FK_DEFAULT_DELAY_MS};
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		rc = fk_parse_opt(c, optarg, o);
		if (rc > 0)
			rc = own(c, optarg, ctx);
		if (rc > 0) {
			fprintf(stderr, "%s: unknown or incomplete option '%s'\n", name,
			        argv[optind - 1]);
			goto usage;
		}
		if (rc < 0) {
			fprintf(stderr, "%s: bad value '%s' for --%s\n", name, optarg,
			        fk_opt_name(longopts, c));
			goto usage;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", name, argv[optind]);
		goto usage;
	}
	return 0;
usage:
	usage(stderr);
	return -1;
}

int fk_parse_generate(const char *spec, char *buf, size_t size, unsigned long long max_n,
                      unsigned *n, unsigned *agents, char **rest)
{
	char *colon, *tail = NULL;
	unsigned long long v;

	if (strlen(spec) >= size)
		return -1;
	snprintf(buf, size, "%s", spec);
	*agents = 3;
	*rest = NULL;
	colon = strchr(buf, ':');
	if (colon != NULL) {
		*colon = '\0';
		tail = colon + 1;
	}
	if (fk_parse_ulong(buf, max_n, &v))
		return -1;
	*n = (unsigned)v;
	if (tail == NULL)
		return 0;
	colon = strchr(tail, ':');
	if (colon != NULL) {
		*colon = '\0';
		*rest = colon + 1;
	}
	if (fk_parse_ulong(tail, FK_MAX_AGENTS, &v) || v == 0)
		return -1;
	*agents = (unsigned)v;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Delayed replies                                                                              */
/* ------------------------------------------------------------------------------------------ */

/* A reply held back by a timer (slow mode), or a connection to drop (close mode). */
struct fk_pending {
	struct fk_server *srv;
	struct event *timer;
	struct evhttp_request *req;
	struct fk_reply reply;
	bool drop_conn;
	struct fk_pending *prev, *next;
};

/* Answers req, or drops its connection without a word. */
static void fk_finish(struct evhttp_request *req, struct fk_reply *r, bool drop)
{
	struct evhttp_connection *conn;

	if (!drop) {
		fk_reply_send(req, r);
		return;
	}
	fk_reply_clear(r);
	conn = evhttp_request_get_connection(req);
	if (conn != NULL)
		evhttp_connection_free(conn); /* frees req with it */
	else
		evhttp_request_free(req); /* the client left first: libevent handed req to us */
}

static void fk_pending_unlink(struct fk_server *srv, struct fk_pending *p)
{
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		srv->pending = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
}

static void fk_pending_fire(evutil_socket_t fd, short what, void *arg)
{
	struct fk_pending *p = arg;

	(void)fd;
	(void)what;
	fk_pending_unlink(p->srv, p);
	fk_finish(p->req, &p->reply, p->drop_conn);
	event_free(p->timer);
	free(p);
}

/* Finishes req after ms milliseconds on a timer (never sleeping on the loop). Takes r. */
static void fk_defer(struct fk_server *srv, struct evhttp_request *req, struct fk_reply *r,
                     bool drop, unsigned ms)
{
	struct fk_pending *p = calloc(1, sizeof(*p));
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	if (p != NULL)
		p->timer = evtimer_new(srv->base, fk_pending_fire, p);
	if (p == NULL || p->timer == NULL || evtimer_add(p->timer, &tv) != 0) {
		if (p != NULL && p->timer != NULL)
			event_free(p->timer);
		free(p);
		fk_finish(req, r, drop);
		return;
	}
	p->srv = srv;
	p->req = req;
	p->reply = *r;
	memset(r, 0, sizeof(*r));
	p->drop_conn = drop;
	p->next = srv->pending;
	if (srv->pending != NULL)
		srv->pending->prev = p;
	srv->pending = p;
}

/* ------------------------------------------------------------------------------------------ */
/* Live streams                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/* One stream: prepared by fk_reply_stream(), open (req set, in srv->streams) once its headers
 * went out, freed when its client leaves, when it is dropped or ended, or with the server. */
struct fk_stream {
	struct fk_server *srv;
	const struct fk_stream_kind *kind;
	unsigned heartbeat_ms;
	char *key;
	void *arg;
	struct evhttp_request *req;
	struct event *beat;
	struct fk_stream *prev, *next;
};

static void fk_stream_free(struct fk_stream *st)
{
	if (st == NULL)
		return;
	if (st->beat != NULL)
		event_free(st->beat);
	free(st->key);
	free(st->arg);
	free(st);
}

/* Takes an open stream out of the server's list (and its count). */
static void fk_stream_unlink(struct fk_stream *st)
{
	struct fk_server *srv = st->srv;

	if (st->prev != NULL)
		st->prev->next = st->next;
	else
		srv->streams = st->next;
	if (st->next != NULL)
		st->next->prev = st->prev;
	st->prev = st->next = NULL;
	srv->streams_open--;
}

int fk_reply_stream(struct fk_server *srv, struct fk_reply *r, const struct fk_stream_kind *kind,
                    unsigned heartbeat_ms, const char *key, void *arg)
{
	struct fk_stream *st = calloc(1, sizeof(*st));

	fk_reply_clear(r);
	if (st == NULL || (st->key = strdup(key)) == NULL) {
		free(st);
		free(arg);
		return -1;
	}
	st->srv = srv;
	st->kind = kind;
	st->heartbeat_ms = heartbeat_ms;
	st->arg = arg;
	r->code = 200;
	r->reason = "OK";
	r->ctype = kind->ctype;
	r->stream = st;
	return 0;
}

/* Re-arms the heartbeat: one interval from now. */
static void fk_stream_arm(struct fk_stream *st)
{
	struct timeval tv = {.tv_sec = st->heartbeat_ms / 1000,
	                     .tv_usec = (st->heartbeat_ms % 1000) * 1000};

	if (st->beat != NULL)
		event_add(st->beat, &tv);
}

/* Writes one piece to an open stream as a chunk of its own. */
static void fk_stream_write(struct fk_stream *st, const char *data, size_t len)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL || evbuffer_add(b, data, len) != 0) {
		if (b != NULL)
			evbuffer_free(b);
		return;
	}
	evhttp_send_reply_chunk(st->req, b);
	evbuffer_free(b);
}

static void fk_stream_beat(evutil_socket_t fd, short what, void *arg)
{
	struct fk_stream *st = arg;

	(void)fd;
	(void)what;
	fk_stream_write(st, st->kind->heartbeat, strlen(st->kind->heartbeat));
}

/* The connection of an open stream went away (the client left, or a write failed): evhttp
 * has detached the request from it, so the request is ours to free. */
static void fk_stream_closed(struct evhttp_connection *evcon, void *arg)
{
	struct fk_stream *st = arg;
	struct evhttp_request *req = st->req;

	(void)evcon;
	fk_stream_unlink(st);
	fk_stream_free(st);
	if (evhttp_request_get_connection(req) == NULL)
		evhttp_request_free(req);
}

/* Sends a stream reply's headers and replay, and keeps the stream open. */
static void fk_stream_start(struct evhttp_request *req, struct fk_reply *r)
{
	struct fk_stream *st = r->stream;
	struct fk_server *srv = st->srv;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *replay = evbuffer_new();

	r->stream = NULL;
	fk_reply_clear(r);
	if (evcon == NULL) { /* the client left while the reply was held back */
		if (replay != NULL)
			evbuffer_free(replay);
		fk_stream_free(st);
		evhttp_request_free(req);
		return;
	}
	if (st->heartbeat_ms > 0)
		st->beat = event_new(srv->base, -1, EV_PERSIST, fk_stream_beat, st);
	if (replay == NULL || (st->heartbeat_ms > 0 && st->beat == NULL)) {
		if (replay != NULL)
			evbuffer_free(replay);
		fk_stream_free(st);
		evhttp_send_error(req, 500, "Internal Server Error");
		return;
	}
	evhttp_add_header(h, "Content-Type", st->kind->ctype);
	for (size_t i = 0; st->kind->headers != NULL && st->kind->headers[i] != NULL; i += 2)
		evhttp_add_header(h, st->kind->headers[i], st->kind->headers[i + 1]);
	evhttp_send_reply_start(req, 200, "OK");
	if (srv->fake->stream_open != NULL)
		srv->fake->stream_open(srv, st->key, st->arg, replay);
	if (evbuffer_get_length(replay) > 0)
		evhttp_send_reply_chunk(req, replay);
	evbuffer_free(replay);
	st->req = req;
	/* evhttp reads while it writes, to see a client leave; the connection's idle timeout
	 * would end a quiet stream, so only writes keep one. */
	bufferevent_set_timeouts(evhttp_connection_get_bufferevent(evcon), NULL,
	                         &(struct timeval){.tv_sec = FK_CONN_TIMEOUT_S});
	evhttp_connection_set_closecb(evcon, fk_stream_closed, st);
	st->next = srv->streams;
	if (srv->streams != NULL)
		srv->streams->prev = st;
	srv->streams = st;
	srv->streams_open++;
	srv->streams_total++;
	fk_stream_arm(st);
}

void fk_stream_send(struct fk_server *srv, const char *key, const char *data, size_t len)
{
	for (struct fk_stream *st = srv->streams; st != NULL; st = st->next) {
		if (strcmp(st->key, key) != 0)
			continue;
		fk_stream_write(st, data, len);
		if (!st->kind->periodic)
			fk_stream_arm(st);
	}
}

void fk_stream_finish(struct fk_server *srv, const char *key, const char *data, size_t len)
{
	struct fk_stream *st = srv->streams, *next;

	for (; st != NULL; st = next) {
		struct evhttp_connection *evcon = evhttp_request_get_connection(st->req);
		struct timeval tv = {.tv_sec = FK_CONN_TIMEOUT_S};

		next = st->next;
		if (strcmp(st->key, key) != 0)
			continue;
		if (len > 0)
			fk_stream_write(st, data, len);
		bufferevent_set_timeouts(evhttp_connection_get_bufferevent(evcon), &tv, &tv);
		evhttp_connection_set_closecb(evcon, NULL, NULL);
		evhttp_send_reply_end(st->req);
		fk_stream_unlink(st);
		fk_stream_free(st);
	}
}

/* POST /__fake/stream-drop: every open stream's connection is closed on the spot, without the
 * terminating chunk. Returns how many. */
static unsigned long fk_streams_drop(struct fk_server *srv)
{
	unsigned long n = 0;

	while (srv->streams != NULL) {
		struct fk_stream *st = srv->streams;
		struct evhttp_connection *evcon = evhttp_request_get_connection(st->req);

		fk_stream_unlink(st);
		fk_stream_free(st);
		evhttp_connection_set_closecb(evcon, NULL, NULL);
		evhttp_connection_free(evcon); /* frees the request with it */
		n++;
	}
	return n;
}

/* Server shutdown: the streams go, evhttp frees their connections and requests. */
static void fk_streams_forget(struct fk_server *srv)
{
	while (srv->streams != NULL) {
		struct fk_stream *st = srv->streams;

		evhttp_connection_set_closecb(evhttp_request_get_connection(st->req), NULL, NULL);
		fk_stream_unlink(st);
		fk_stream_free(st);
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Test control: /__fake/… (never recorded, never affected by the mode)                         */
/* ------------------------------------------------------------------------------------------ */

static void fk_control_mode(struct fk_server *srv, struct evhttp_request *req, const char *query,
                            struct fk_reply *r)
{
	const struct fk_fake *fk = srv->fake;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	if (cmd == EVHTTP_REQ_GET) {
		json_t *info =
		    json_pack("{s:s, s:i, s:I, s:I}", "mode", fk_mode_names[srv->mode], "delay_ms",
		              (int)srv->delay_ms, "streams_open", (json_int_t)srv->streams_open,
		              "streams_total", (json_int_t)srv->streams_total);

		if (info != NULL && fk->mode_info != NULL && fk->mode_info(srv, info)) {
			json_decref(info);
			info = NULL;
		}
		fk_reply_json(r, 200, "OK", info, fk->dump_flags);
	} else if (cmd == EVHTTP_REQ_POST) {
		char *m = fk_query_get(query, "mode", fk->query_nul);
		char *d = fk_query_get(query, "delay_ms", fk->query_nul);
		unsigned long long ms = srv->delay_ms;
		enum fk_mode mode = srv->mode;

		/* The fake's own parameters come last: it applies them when they are good. */
		if ((m != NULL && fk_mode_from_name(m, &mode)) ||
		    (d != NULL && fk_parse_ulong(d, FK_MAX_DELAY_MS, &ms)) ||
		    (fk->mode_set != NULL && fk->mode_set(srv, query))) {
			fk_reply_detail(r, 400, "Bad Request", fk->mode_usage);
		} else {
			srv->mode = mode;
			srv->delay_ms = (unsigned)ms;
			fk_reply_json(r, 200, "OK", json_object(), fk->dump_flags);
		}
		free(m);
		free(d);
	} else {
		fk_reply_detail(r, 405, "Method Not Allowed", "Method Not Allowed");
		r->allow = "GET, POST";
	}
}

static void fk_control(struct fk_server *srv, struct evhttp_request *req, const char *path,
                       const char *query, struct fk_reply *r)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	if (strcmp(path, "/__fake/requests") == 0) {
		if (cmd == EVHTTP_REQ_GET) {
			fk_reply_json(r, 200, "OK", json_incref(srv->recorded),
			              srv->fake->dump_flags);
		} else if (cmd == EVHTTP_REQ_DELETE) {
			json_array_clear(srv->recorded);
			fk_reply_json(r, 200, "OK", json_object(), srv->fake->dump_flags);
		} else {
			fk_reply_detail(r, 405, "Method Not Allowed", "Method Not Allowed");
			r->allow = "GET, DELETE";
		}
	} else if (strcmp(path, "/__fake/mode") == 0) {
		fk_control_mode(srv, req, query, r);
	} else if (strcmp(path, "/__fake/stream-drop") == 0) {
		if (cmd == EVHTTP_REQ_POST) {
			fk_reply_json(
			    r, 200, "OK",
			    json_pack("{s:I}", "dropped", (json_int_t)fk_streams_drop(srv)),
			    srv->fake->dump_flags);
		} else {
			fk_reply_detail(r, 405, "Method Not Allowed", "Method Not Allowed");
			r->allow = "POST";
		}
	} else {
		fk_reply_detail(r, 404, "Not Found", "Not Found");
	}
}

/* Every value of header name, as a JSON array. New reference. */
static json_t *fk_header_values(struct evkeyvalq *h, const char *name)
{
	json_t *a = json_array();

	for (struct evkeyval *kv = h->tqh_first; a != NULL && kv != NULL; kv = kv->next.tqe_next)
		if (strcasecmp(kv->key, name) == 0)
			json_array_append_new(a, fk_json_text(kv->value));
	return a;
}

/* Adds the request's body to a record: "body" as text, "json" when it parses, so a test can
 * check exactly what a write sent (and that it was sent once). */
static void fk_record_body(json_t *e, struct evhttp_request *req)
{
	size_t len;
	const char *b = fk_body(req, &len);
	char *text;
	json_t *j;

	if (b == NULL)
		return;
	text = strndup(b, len);
	if (text == NULL)
		return;
	json_object_set_new(e, "body", fk_json_text(text));
	j = strlen(text) == len ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
	if (j != NULL)
		json_object_set_new(e, "json", j);
	free(text);
}

/* Whether req is the gateway's readiness probe (src/ready.h: its User-Agent). */
static bool fk_is_probe(struct evhttp_request *req)
{
	const char *ua = evhttp_find_header(evhttp_request_get_input_headers(req), "User-Agent");

	return ua != NULL && strcmp(ua, "sessiongate-readiness-probe") == 0;
}

/* Records a non-control request for GET /__fake/requests (oldest dropped past the cap), with
 * the headers the fake asks for, so tests can check what arrived. */
static void fk_record(struct fk_server *srv, struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	json_t *e =
	    json_pack("{s:s, s:o}", "method", fk_method_name(evhttp_request_get_command(req)),
	              "uri", fk_json_text(evhttp_request_get_uri(req)));

	for (size_t i = 0; e != NULL && i < srv->fake->nrecorded; i++) {
		const struct fk_header *rh = &srv->fake->recorded[i];

		/* json_object_set_new() takes the value even when it fails. */
		if (json_object_set_new(e, rh->member, fk_header_values(h, rh->name))) {
			json_decref(e);
			e = NULL;
		}
	}
	if (e == NULL)
		return;
	fk_record_body(e, req);
	if (json_array_size(srv->recorded) >= FK_MAX_RECORDED)
		json_array_remove(srv->recorded, 0);
	json_array_append_new(srv->recorded, e);
}

static void fk_log(struct fk_server *srv, struct evhttp_request *req, const char *what, int code)
{
	if (srv->quiet)
		return;
	fprintf(stderr, "%s: %s %.*s -> %s%d\n", srv->fake->name,
	        fk_method_name(evhttp_request_get_command(req)), FK_LOG_URI_MAX,
	        evhttp_request_get_uri(req), what, code);
}

/* Is this a write the fake performed (a 2xx to anything but GET or HEAD)? */
static bool fk_took_effect(struct evhttp_request *req, const struct fk_reply *r)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	return cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD && r->code >= 200 && r->code < 300;
}

static void fk_on_request(struct evhttp_request *req, void *arg)
{
	struct fk_server *srv = arg;
	const struct fk_fake *fk = srv->fake;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *raw_path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	struct fk_reply r = {0};
	size_t plen = 0;
	char *path;

	if (raw_path == NULL || *raw_path == '\0')
		raw_path = "/";
	path = evhttp_uridecode(raw_path, 0, &plen);
	if (path == NULL) {
		evhttp_send_error(req, 500, "Internal Server Error");
		return;
	}
	if (strlen(path) != plen)
		path[0] = '\0'; /* an encoded NUL: match nothing */
	if (strncmp(path, "/__fake", 7) == 0 && (path[7] == '/' || path[7] == '\0')) {
		fk_control(srv, req, path, query, &r);
		fk_log(srv, req, "", r.code);
		fk_reply_send(req, &r);
		free(path);
		return;
	}
	/* the gateway's readiness probes are not requests made for a client: a test that
	 * counts or inspects what reached the backend does not see them */
	if (!fk_is_probe(req))
		fk_record(srv, req);
	fk->serve(srv, req, raw_path, path, query, &r);
	free(path);
	switch (srv->mode) {
	case FK_MODE_OK:
		break;
	case FK_MODE_SLOW:
		fk_log(srv, req, "delayed ", r.code);
		fk_defer(srv, req, &r, false, srv->delay_ms);
		return;
	case FK_MODE_GARBAGE:
		if (fk_reply_init(&r, 200, "OK", "text/html") == 0)
			evbuffer_add_printf(r.body, "<html>upstream oops</html>");
		break;
	case FK_MODE_WRONG_SHAPE:
		fk_reply_json(&r, 200, "OK", json_pack("{s:i}", "items", 42), fk->dump_flags);
		break;
	case FK_MODE_HTTP500:
		fk->fail(srv, &r);
		break;
	case FK_MODE_BUSY:
		fk_reply_clear(&r);
		if (fk_reply_init(&r, 503, "Service Unavailable", "application/json") == 0)
			evbuffer_add_printf(r.body, "{\"detail\": \"busy\"}");
		r.retry_after = "7";
		break;
	case FK_MODE_CLOSE:
		fk_log(srv, req, "closed instead of ", r.code);
		/* Not from inside libevent's own callback: the connection is freed on a timer. */
		fk_defer(srv, req, &r, true, 0);
		return;
	case FK_MODE_WRITE_UNKNOWN:
		if (!fk_took_effect(req, &r))
			break;
		if (fk->write_fail != NULL)
			fk->write_fail(srv, &r);
		else
			fk->fail(srv, &r);
		break;
	case FK_MODE_WRITE_DROP:
		if (!fk_took_effect(req, &r))
			break;
		fk_log(srv, req, "closed instead of ", r.code);
		fk_defer(srv, req, &r, true, 0);
		return;
	}
	fk_log(srv, req, "", r.code);
	fk_reply_send(req, &r);
}

/* ------------------------------------------------------------------------------------------ */
/* Running                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* Writes "PORT\n" to path atomically, so a poller never reads half a number. */
static int fk_write_port_file(const char *path, unsigned port)
{
	char tmp[PATH_MAX];
	FILE *fp;
	int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());

	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -1;
	fp = fopen(tmp, "w");
	if (fp == NULL)
		return -1;
	if (fprintf(fp, "%u\n", port) < 0 || fclose(fp) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static void fk_on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

/* Binds 127.0.0.1:port and returns the bound port, or 0 on failure. */
static unsigned fk_listen(struct evhttp *http, unsigned port)
{
	struct evhttp_bound_socket *bs =
	    evhttp_bind_socket_with_handle(http, "127.0.0.1", (ev_uint16_t)port);
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int one = 1;

	if (bs == NULL)
		return 0;
	/* Inherited by accepted sockets: no delayed-ACK stall on multi-segment answers. */
	setsockopt(evhttp_bound_socket_get_fd(bs), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &len) != 0)
		return 0;
	return ntohs(sin.sin_port);
}

int fk_server_run(struct fk_server *srv, const struct fk_fake *fake, const struct fk_opts *o)
{
	srv->fake = fake;
	srv->mode = o->mode;
	srv->delay_ms = o->delay_ms;
	srv->quiet = o->quiet;
	srv->recorded = json_array();
	srv->base = event_base_new();
	srv->http = srv->base != NULL ? evhttp_new(srv->base) : NULL;
	if (srv->recorded == NULL || srv->http == NULL) {
		fprintf(stderr, "%s: cannot set up the event loop\n", fake->name);
		return 1;
	}
	evhttp_set_max_headers_size(srv->http, FK_MAX_HEADERS);
	evhttp_set_max_body_size(srv->http, FK_MAX_BODY);
	evhttp_set_timeout(srv->http, FK_CONN_TIMEOUT_S);
	/* A reply without a Content-Type (fake_agentscope's 307) goes out without one. */
	evhttp_set_default_content_type(srv->http, NULL);
	/* Let every usual method reach the router, so a wrong one gets the fake's JSON 405/501. */
	evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                          EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                          EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(srv->http, fk_on_request, srv);
	srv->port = fk_listen(srv->http, o->port);
	if (srv->port == 0) {
		fprintf(stderr, "%s: cannot listen on 127.0.0.1:%u: %s\n", fake->name, o->port,
		        strerror(errno));
		return 1;
	}
	if (o->port_file != NULL && fk_write_port_file(o->port_file, srv->port)) {
		fprintf(stderr, "%s: cannot write %s: %s\n", fake->name, o->port_file,
		        strerror(errno));
		return 1;
	}
	srv->sigterm = evsignal_new(srv->base, SIGTERM, fk_on_signal, srv->base);
	srv->sigint = evsignal_new(srv->base, SIGINT, fk_on_signal, srv->base);
	if (srv->sigterm == NULL || srv->sigint == NULL || event_add(srv->sigterm, NULL) ||
	    event_add(srv->sigint, NULL))
		return 1;
	printf("%s listening on 127.0.0.1:%u\n", fake->name, srv->port);
	fflush(stdout);
	if (event_base_dispatch(srv->base) == 0 || event_base_got_break(srv->base))
		return 0;
	return 1;
}

void fk_server_free(struct fk_server *srv)
{
	/* Held replies first: their requests belong to connections the server is about to free. */
	while (srv->pending != NULL) {
		struct fk_pending *p = srv->pending;

		fk_pending_unlink(srv, p);
		if (evhttp_request_get_connection(p->req) == NULL)
			evhttp_request_free(p->req);
		fk_reply_clear(&p->reply);
		event_free(p->timer);
		free(p);
	}
	fk_streams_forget(srv);
	if (srv->sigterm != NULL)
		event_free(srv->sigterm);
	if (srv->sigint != NULL)
		event_free(srv->sigint);
	if (srv->http != NULL)
		evhttp_free(srv->http);
	if (srv->base != NULL)
		event_base_free(srv->base);
	json_decref(srv->recorded);
	memset(srv, 0, sizeof(*srv));
	libevent_global_shutdown();
}
