/* harness.c - see harness.h. */
#include "harness.h"

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "crypto.h"

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

const char *h_build_path(const char *rel, char *buf, size_t len)
{
	const char *d = getenv("SG_BUILDDIR");

	snprintf(buf, len, "%s/%s", d ? d : ".", rel);
	return buf;
}

const char *h_src_path(const char *rel, char *buf, size_t len)
{
	const char *d = getenv("SG_SRCDIR");

	snprintf(buf, len, "%s/%s", d ? d : ".", rel);
	return buf;
}

int h_free_port(void)
{
	struct sockaddr_in a = {0};
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &l) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static pid_t spawn(const char *const *argv, const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execvp(argv[0], (char *const *)argv); /* a bare name: from PATH */
		_exit(127);
	}
	return pid;
}

int h_fake_start(struct h_proc *p, const char *const *args)
{
	return h_fake_start_bin(p, "tests/fake_agentscope", args);
}

int h_fake_start_bin(struct h_proc *p, const char *rel, const char *const *args)
{
	const char *argv[32];
	char bin[512], portfile[256];
	int n = 0;

	snprintf(portfile, sizeof(portfile), "/tmp/sg-fake-%d-%ld.port", (int)getpid(),
	         (long)random());
	snprintf(p->log, sizeof(p->log), "%s.log", portfile);
	unlink(portfile);
	argv[n++] = h_build_path(rel, bin, sizeof(bin));
	argv[n++] = "--port";
	argv[n++] = "0";
	argv[n++] = "--port-file";
	argv[n++] = portfile;
	argv[n++] = "--quiet";
	for (size_t i = 0; args && args[i] && n < 30; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	p->pid = spawn(argv, p->log);
	p->port = 0;
	for (int i = 0; i < 500 && p->pid > 0; i++) {
		FILE *f = fopen(portfile, "r");

		if (f) {
			int ok = fscanf(f, "%d", &p->port) == 1;

			fclose(f);
			if (ok && p->port > 0) {
				unlink(portfile);
				return 0;
			}
		}
		sleep_ms(10);
	}
	fprintf(stderr, "fake backend did not start; see %s\n", p->log);
	return -1;
}

int h_fake_take(int port, const char *method, const char *uri_prefix)
{
	struct h_res r;
	json_t *e;
	size_t i;
	int n = 0;

	ck_assert_int_eq(h_get(port, "/__fake/requests", NULL, &r), 0);
	json_array_foreach(r.json, i, e) {
		const char *m = json_string_value(json_object_get(e, "method"));
		const char *u = json_string_value(json_object_get(e, "uri"));

		if (m && strcmp(m, method) == 0 && u &&
		    strncmp(u, uri_prefix, strlen(uri_prefix)) == 0)
			n++;
	}
	h_res_free(&r);
	ck_assert_int_eq(h_request("DELETE", port, "/__fake/requests", NULL, &r), 0);
	h_res_free(&r);
	return n;
}

int h_redis_start(struct h_proc *p, int port)
{
	char ps[16];
	const char *argv[] = {"redis-server", "--port", ps,  "--bind", "127.0.0.1", "--save", "",
	                      "--appendonly", "no",     NULL};

	if (port == 0)
		port = h_free_port();
	snprintf(ps, sizeof(ps), "%d", port);
	snprintf(p->log, sizeof(p->log), "/tmp/sg-redis-%d-%ld.log", (int)getpid(), (long)random());
	p->port = port;
	p->pid = spawn(argv, p->log);
	for (int i = 0; i < 500 && p->pid > 0; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET,
		                         .sin_port = htons((uint16_t)port),
		                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

		if (fd >= 0)
			close(fd);
		if (ok)
			return 0;
		sleep_ms(10);
	}
	fprintf(stderr, "redis-server did not start (is it installed?); see %s\n", p->log);
	return -1;
}

int h_gateway_start(struct h_proc *p, const json_t *config)
{
	char bin[512], cfgpath[256];
	const char *argv[4];
	json_t *cfg = json_deep_copy(config);

	p->port = h_free_port();
	json_object_set_new(cfg, "listen", json_sprintf("127.0.0.1:%d", p->port));
	snprintf(cfgpath, sizeof(cfgpath), "/tmp/sg-gw-%d-%ld.json", (int)getpid(), (long)random());
	snprintf(p->log, sizeof(p->log), "%s.log", cfgpath);
	json_dump_file(cfg, cfgpath, JSON_INDENT(1));
	json_decref(cfg);
	argv[0] = h_build_path("sessiongate", bin, sizeof(bin));
	argv[1] = "--config";
	argv[2] = cfgpath;
	argv[3] = NULL;
	p->pid = spawn(argv, p->log);
	for (int i = 0; i < 500 && p->pid > 0; i++) {
		struct h_res r;

		if (h_get(p->port, "/healthz", NULL, &r) == 0 && r.status == 200) {
			h_res_free(&r);
			return 0;
		}
		h_res_free(&r);
		if (waitpid(p->pid, NULL, WNOHANG) == p->pid)
			break;
		sleep_ms(10);
	}
	fprintf(stderr, "gateway did not start; see %s\n", p->log);
	return -1;
}

int h_stop(struct h_proc *p, int timeout_ms)
{
	int st;

	if (p->pid <= 0)
		return -1;
	kill(p->pid, SIGTERM);
	for (int i = 0; i < timeout_ms / 10; i++) {
		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			p->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		sleep_ms(10);
	}
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &st, 0);
	p->pid = 0;
	return -1;
}

struct body {
	char *p;
	size_t n;
};

static size_t on_body(char *d, size_t s, size_t n, void *arg)
{
	struct body *b = arg;
	char *q = realloc(b->p, b->n + s * n + 1);

	if (!q)
		return 0;
	b->p = q;
	memcpy(b->p + b->n, d, s * n);
	b->n += s * n;
	b->p[b->n] = '\0';
	return s * n;
}

static size_t on_header(char *d, size_t s, size_t n, void *arg)
{
	struct h_res *r = arg;
	size_t len = s * n;
	static const struct {
		const char *name;
		size_t off, cap;
	} want[] = {
	    {"request-id:", offsetof(struct h_res, request_id),
	     sizeof(((struct h_res *)0)->request_id)},
	    {"content-type:", offsetof(struct h_res, content_type),
	     sizeof(((struct h_res *)0)->content_type)},
	    {"x-should-retry:", offsetof(struct h_res, should_retry),
	     sizeof(((struct h_res *)0)->should_retry)},
	    {"allow:", offsetof(struct h_res, allow), sizeof(((struct h_res *)0)->allow)},
	    {"idempotent-replayed:", offsetof(struct h_res, replayed),
	     sizeof(((struct h_res *)0)->replayed)},
	    {"retry-after:", offsetof(struct h_res, retry_after),
	     sizeof(((struct h_res *)0)->retry_after)},
	};

	{
		size_t used = strlen(r->headers);

		if (used + len < sizeof(r->headers)) {
			memcpy(r->headers + used, d, len);
			r->headers[used + len] = '\0';
		}
	}
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		size_t k = strlen(want[i].name);

		if (len > k && strncasecmp(d, want[i].name, k) == 0) {
			char *dst = (char *)r + want[i].off;
			const char *v = d + k;
			size_t vl = len - k;

			while (vl && (*v == ' '))
				v++, vl--;
			while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
				vl--;
			if (vl >= want[i].cap)
				vl = want[i].cap - 1;
			memcpy(dst, v, vl);
			dst[vl] = '\0';
		}
	}
	return len;
}

int h_send(const char *method, int port, const char *path, const char *const *headers,
           const char *body, struct h_res *res)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hl = NULL;
	struct body b = {0};
	char url[16384];
	struct timespec t0, t1;
	CURLcode rc;

	memset(res, 0, sizeof(*res));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	for (size_t i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	curl_easy_setopt(c, CURLOPT_URL, url);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L); /* else curl waits for the stated body */
	else
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, res);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = curl_easy_perform(c);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	res->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
	res->body = b.p ? b.p : strdup("");
	res->json = json_loads(res->body, 0, NULL);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return rc == CURLE_OK ? 0 : -1;
}

int h_request(const char *method, int port, const char *path, const char *const *headers,
              struct h_res *res)
{
	return h_send(method, port, path, headers, NULL, res);
}

int h_get(int port, const char *path, const char *const *headers, struct h_res *res)
{
	return h_request("GET", port, path, headers, res);
}

void h_res_free(struct h_res *res)
{
	free(res->body);
	json_decref(res->json);
	res->body = NULL;
	res->json = NULL;
}

const char *h_header(const char *headers, const char *name, char *out, size_t len)
{
	size_t n = strlen(name);

	for (const char *l = headers; l && *l;) {
		const char *eol = strchr(l, '\n');
		size_t ll = eol ? (size_t)(eol - l) : strlen(l);

		if (ll > n && strncasecmp(l, name, n) == 0 && l[n] == ':') {
			const char *v = l + n + 1;
			size_t vl = ll - n - 1;

			while (vl && *v == ' ')
				v++, vl--;
			while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
				vl--;
			if (vl >= len)
				vl = len - 1;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return out;
		}
		l = eol ? eol + 1 : l + ll;
	}
	return NULL;
}

void h_hash_key(const char *key, char out[65])
{
	uint8_t h[SG_SHA256_LEN];

	sg_sha256(key, strlen(key), h);
	sg_hex_encode(h, sizeof(h), out, 65);
}

/* ---- SSE client -------------------------------------------------------------------------- */

static int64_t h_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void h_append(char **b, size_t *len, size_t *cap, const char *p, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t c = (*cap ? *cap : 4096);

		while (c < *len + n + 1)
			c *= 2;
		*b = realloc(*b, c);
		*cap = c;
	}
	memcpy(*b + *len, p, n);
	*len += n;
	(*b)[*len] = 0;
}

/* Reads what the socket has (waiting up to ms). Returns bytes read, 0 on timeout, -1 on
 * EOF/error. */
static long h_fill(struct h_sse *s, int ms)
{
	struct pollfd pfd = {s->fd, POLLIN, 0};
	char tmp[16384];
	ssize_t n;

	if (ms < 0)
		ms = 0;
	if (poll(&pfd, 1, ms) <= 0)
		return 0;
	n = recv(s->fd, tmp, sizeof(tmp), 0);
	if (n <= 0) {
		s->closed = 1;
		return -1;
	}
	h_append(&s->raw, &s->rlen, &s->rcap, tmp, (size_t)n);
	return n;
}

/* Moves decoded chunk data from raw to buf. */
static void h_dechunk(struct h_sse *s)
{
	for (;;) {
		if (s->eof || s->rlen == 0)
			return;
		if (s->chunk_left < 0) {
			char *nl = memchr(s->raw, '\n', s->rlen);
			size_t used;
			long size;

			if (!nl)
				return;
			size = strtol(s->raw, NULL, 16);
			used = (size_t)(nl - s->raw) + 1;
			memmove(s->raw, s->raw + used, s->rlen - used);
			s->rlen -= used;
			if (size == 0) {
				s->eof = 1;
				return;
			}
			s->chunk_left = size;
		} else if (s->chunk_left == 0) {
			/* the CRLF after a chunk's data */
			if (s->rlen < 2)
				return;
			memmove(s->raw, s->raw + 2, s->rlen - 2);
			s->rlen -= 2;
			s->chunk_left = -1;
		} else {
			size_t n =
			    s->rlen < (size_t)s->chunk_left ? s->rlen : (size_t)s->chunk_left;

			h_append(&s->buf, &s->len, &s->cap, s->raw, n);
			memmove(s->raw, s->raw + n, s->rlen - n);
			s->rlen -= n;
			s->chunk_left -= (long)n;
		}
	}
}

int h_sse_open(struct h_sse *s, int port, const char *path, const char *const *headers,
               int timeout_ms)
{
	return h_sse_open_rcvbuf(s, port, path, headers, timeout_ms, 0);
}

int h_sse_open_rcvbuf(struct h_sse *s, int port, const char *path, const char *const *headers,
                      int timeout_ms, int rcvbuf)
{
	struct sockaddr_in a = {0};
	char req[4096];
	size_t n;
	int64_t end = h_now_ms() + timeout_ms;

	memset(s, 0, sizeof(*s));
	s->chunk_left = -1;
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s->fd >= 0 && rcvbuf > 0)
		setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		return -1;
	n = (size_t)snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", path);
	for (size_t i = 0; headers && headers[i]; i++)
		n += (size_t)snprintf(req + n, sizeof(req) - n, "%s\r\n", headers[i]);
	n += (size_t)snprintf(req + n, sizeof(req) - n, "\r\n");
	if (send(s->fd, req, n, MSG_NOSIGNAL) != (ssize_t)n)
		return -1;
	for (;;) {
		char *eoh = s->raw ? strstr(s->raw, "\r\n\r\n") : NULL;

		if (eoh) {
			size_t hl = (size_t)(eoh - s->raw) + 4;
			int chunked;

			s->head = strndup(s->raw, hl);
			s->status = strtol(s->raw + 9, NULL, 10);
			memmove(s->raw, s->raw + hl, s->rlen - hl);
			s->rlen -= hl;
			chunked = strcasestr(s->head, "transfer-encoding: chunked") != NULL;
			if (!chunked) {
				/* a whole answer: its bytes are the body as they are */
				s->chunk_left = 1L << 40;
			}
			h_dechunk(s);
			return 0;
		}
		if (h_now_ms() >= end || h_fill(s, (int)(end - h_now_ms())) < 0)
			return -1;
	}
}

void h_sse_rest(struct h_sse *s, int timeout_ms)
{
	int64_t end = h_now_ms() + timeout_ms;
	const char *cl = s->head ? strcasestr(s->head, "content-length:") : NULL;
	size_t want = cl ? (size_t)strtol(cl + 15, NULL, 10) : (size_t)-1;

	while (!s->eof && !s->closed && s->len < want && h_now_ms() < end) {
		if (h_fill(s, (int)(end - h_now_ms())) > 0)
			h_dechunk(s);
	}
	if (!s->buf)
		h_append(&s->buf, &s->len, &s->cap, "", 0);
}

/* Splits one message off buf, if a whole one is there. Returns 1 (a message with fields),
 * 2 (a comment-only message), 0 (none yet). */
static int h_split(struct h_sse *s, struct h_sse_ev *ev)
{
	char *end = s->buf ? strstr(s->buf, "\n\n") : NULL;
	char *line, *save = NULL, *msg;
	size_t ml;
	int fields = 0;

	if (!end)
		return 0;
	ml = (size_t)(end - s->buf);
	msg = strndup(s->buf, ml);
	memmove(s->buf, end + 2, s->len - ml - 2);
	s->len -= ml + 2;
	s->buf[s->len] = 0;
	memset(ev, 0, sizeof(*ev));
	for (line = strtok_r(msg, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == ':')
			continue;
		if (!strncmp(line, "event: ", 7)) {
			snprintf(ev->event, sizeof(ev->event), "%s", line + 7);
			fields = 1;
		} else if (!strncmp(line, "id: ", 4)) {
			snprintf(ev->id, sizeof(ev->id), "%s", line + 4);
			fields = 1;
		} else if (!strncmp(line, "data: ", 6)) {
			free(ev->data);
			ev->data = strdup(line + 6);
			fields = 1;
		}
	}
	free(msg);
	if (!fields)
		return 2;
	if (ev->data)
		ev->json = json_loads(ev->data, 0, NULL);
	return 1;
}

int h_sse_next(struct h_sse *s, int timeout_ms, struct h_sse_ev *ev)
{
	int64_t end = h_now_ms() + timeout_ms;

	for (;;) {
		int k = h_split(s, ev);

		if (k == 1)
			return 1;
		if (k == 2) {
			s->heartbeats++;
			continue;
		}
		if (s->eof || s->closed)
			return -1;
		if (h_now_ms() >= end)
			return 0;
		if (h_fill(s, (int)(end - h_now_ms())) > 0)
			h_dechunk(s);
	}
}

void h_sse_ev_free(struct h_sse_ev *ev)
{
	free(ev->data);
	json_decref(ev->json);
	memset(ev, 0, sizeof(*ev));
}

void h_sse_close(struct h_sse *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->head);
	free(s->buf);
	free(s->raw);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}
