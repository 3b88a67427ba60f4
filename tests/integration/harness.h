/* harness.h - processes and HTTP for the integration tests: the real gateway binary and
 * the fake backends on loopback ports. Blocking calls are fine here: this is the client. */
#ifndef SG_HARNESS_H
#define SG_HARNESS_H

#include <jansson.h>
#include <sys/types.h>

struct h_proc {
	pid_t pid;
	int port;
	char log[512];
};

struct h_res {
	long status;
	char *body;           /* malloc'd, NUL-terminated */
	json_t *json;         /* parsed body or NULL */
	char request_id[128]; /* request-id header */
	char content_type[128];
	char should_retry[16]; /* x-should-retry header, "" when absent */
	char allow[64];        /* Allow header, "" when absent */
	char replayed[8];      /* Idempotent-Replayed header, "" when absent */
	char retry_after[16];  /* retry-after header, "" when absent */
	double seconds;        /* wall time of the exchange */
	char headers[4096];    /* every header line of the answer, as received (cut when longer) */
};

/* Path of a built program: $SG_BUILDDIR/<rel> (default "./<rel>"). */
const char *h_build_path(const char *rel, char *buf, size_t len);
/* Path of a source file: $SG_SRCDIR/<rel>. */
const char *h_src_path(const char *rel, char *buf, size_t len);

/* A loopback TCP port that was free a moment ago. */
int h_free_port(void);

/* Starts the fake AgentScope backend with extra arguments (NULL-terminated); waits until
 * it listens. Returns 0. */
int h_fake_start(struct h_proc *p, const char *const *args);
/* Same for another fake program (path relative to the build directory). */
int h_fake_start_bin(struct h_proc *p, const char *rel, const char *const *args);
/* Requests a fake backend on port has recorded since the last call whose method is method and
 * whose URI starts with uri_prefix; clears the record. */
int h_fake_take(int port, const char *method, const char *uri_prefix);
/* Starts redis-server on loopback port (0: a free one), no persistence; waits until it
 * accepts connections. Returns 0. */
int h_redis_start(struct h_proc *p, int port);
/* Writes `config` (borrowed) to a temporary file and starts the gateway; waits for
 * /healthz. */
int h_gateway_start(struct h_proc *p, const json_t *config);
/* SIGTERM, then waits up to timeout_ms; returns the exit status, or -1 after SIGKILL. */
int h_stop(struct h_proc *p, int timeout_ms);

/* GET http://127.0.0.1:port<path> with extra "Name: value" headers (NULL-terminated, may be
 * NULL). Returns 0 when an HTTP answer arrived. */
int h_get(int port, const char *path, const char *const *headers, struct h_res *res);
/* Same with another method. */
int h_request(const char *method, int port, const char *path, const char *const *headers,
              struct h_res *res);
/* Same with a body (NUL-terminated, sent as is; NULL: none). */
int h_send(const char *method, int port, const char *path, const char *const *headers,
           const char *body, struct h_res *res);
void h_res_free(struct h_res *res);
/* The value of the answer's header name (case-insensitive; the first if repeated) into out,
 * or NULL when absent. Works on h_res.headers and on h_sse.head alike. */
const char *h_header(const char *headers, const char *name, char *out, size_t len);

/* A north event stream read as a client reads it: a plain socket, the chunked body decoded,
 * SSE messages split. */
struct h_sse {
	int fd;
	long status; /* the answer's status */
	char *head;  /* the answer's head (malloc'd) */
	char *buf;   /* decoded body bytes not yet split into messages */
	size_t len, cap;
	char *raw; /* undecoded bytes */
	size_t rlen, rcap;
	long chunk_left; /* bytes left in the current chunk; -1: expecting a size line */
	int eof;         /* the body ended (terminating chunk) */
	int closed;      /* the connection closed */
	int heartbeats;  /* comment messages seen */
};

struct h_sse_ev {
	char event[128];
	char id[256];
	char *data;   /* malloc'd, NULL when none */
	json_t *json; /* parsed data, or NULL */
};

/* Opens GET path with headers and reads the answer's head (timeout_ms). Returns 0 when a
 * head arrived (s->status says which; a non-200's body is in s->buf after h_sse_rest). */
int h_sse_open(struct h_sse *s, int port, const char *path, const char *const *headers,
               int timeout_ms);
/* The same with the socket's receive buffer set to rcvbuf bytes first (a slow reader). */
int h_sse_open_rcvbuf(struct h_sse *s, int port, const char *path, const char *const *headers,
                      int timeout_ms, int rcvbuf);
/* The next message with an event or data (comments are counted in s->heartbeats): 1 and
 * *ev filled, 0 on timeout, -1 when the stream ended or the connection closed. */
int h_sse_next(struct h_sse *s, int timeout_ms, struct h_sse_ev *ev);
/* Reads what is left of a whole (non-stream) answer's body into s->buf (NUL-terminated). */
void h_sse_rest(struct h_sse *s, int timeout_ms);
void h_sse_ev_free(struct h_sse_ev *ev);
void h_sse_close(struct h_sse *s);

/* SHA-256 hex of a key, for configurations. */
void h_hash_key(const char *key, char out[65]);

#endif
