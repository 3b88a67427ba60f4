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
	double seconds;        /* wall time of the exchange */
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

/* SHA-256 hex of a key, for configurations. */
void h_hash_key(const char *key, char out[65]);

#endif
