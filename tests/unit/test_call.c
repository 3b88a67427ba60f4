/* test_call.c - the call toolkit (call.h) against a loopback backend on the same event loop,
 * through a test mapping module: writes are sent once with their body, a write whose answer
 * is lost says its outcome is unknown (x-should-retry false) while a refused one keeps its
 * retry advice, single-object endings, and stream calls that hand each piece to the core's
 * sink as it arrives, including a sink that frees the call in the middle. */
#include <arpa/inet.h>
#include <check.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "call.h"
#include "config.h"
#include "fixture.h"
#include "mapping.h"
#include "upstream.h"

static struct event_base *base;
static struct evhttp *backend_http;
static struct sg_upstream *up;
static int backend_port, dead_port;
static struct sg_backend be;
static struct sg_backend_state be_state;
static struct sg_call *call;
static int done_runs;
static json_t *seen; /* what the backend received: [{method, uri, body}] */

/* ---- the backend ---- */

struct chunker {
	struct evhttp_request *req;
	struct event *ev;
	int n;
};

static void on_chunk_timer(evutil_socket_t fd, short what, void *arg)
{
	struct chunker *c = arg;
	struct evbuffer *b = evbuffer_new();
	struct timeval tv = {0, 50000};

	(void)fd;
	(void)what;
	evbuffer_add_printf(b, "piece%d\n", c->n);
	evhttp_send_reply_chunk(c->req, b);
	evbuffer_free(b);
	if (++c->n < 3) {
		evtimer_add(c->ev, &tv);
		return;
	}
	evhttp_send_reply_end(c->req);
	event_free(c->ev);
	free(c);
}

static void backend(struct evhttp_request *req, void *arg)
{
	const char *uri = evhttp_request_get_uri(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	struct evbuffer *out = evbuffer_new();
	size_t n = evbuffer_get_length(in);
	const char *method = evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "GET";

	(void)arg;
	const char *cl =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Length");

	json_array_append_new(seen, json_pack("{s:s, s:s, s:s#, s:s}", "method", method, "uri", uri,
	                                      "body", n ? (char *)evbuffer_pullup(in, -1) : "", n,
	                                      "length", cl ? cl : "none"));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "application/json");
	if (strcmp(uri, "/ok") == 0) {
		evbuffer_add_printf(out, "{\"id\":\"x\",\"n\":1}");
		evhttp_send_reply(req, 200, "OK", out);
	} else if (strncmp(uri, "/status/", 8) == 0) {
		int code = atoi(uri + 8);

		evbuffer_add_printf(out, "{\"error\":{\"type\":\"x\",\"message\":\"status %d\"}}",
		                    code);
		evhttp_send_reply(req, code, "X", out);
	} else if (strcmp(uri, "/garbage") == 0) {
		evbuffer_add_printf(out, "<html>");
		evhttp_send_reply(req, 200, "OK", out);
	} else if (strcmp(uri, "/drop") == 0) {
		/* read the request, then hang up without a word */
		evhttp_connection_free(evhttp_request_get_connection(req));
	} else if (strcmp(uri, "/silent") == 0) {
		/* never answers; the fetch times out */
	} else if (strcmp(uri, "/stream") == 0) {
		struct chunker *c = calloc(1, sizeof(*c));
		struct timeval tv = {0, 50000};

		c->req = req;
		c->ev = evtimer_new(base, on_chunk_timer, c);
		evhttp_send_reply_start(req, 200, "OK");
		evtimer_add(c->ev, &tv);
	} else {
		evhttp_send_reply(req, 404, "Not Found", out);
	}
	evbuffer_free(out);
}

/* ---- the module ---- */

static const char *target; /* the path the module's write or stream asks for */
static int attempts;       /* of the last fetch */
static json_t *emitted;
static int free_at; /* the sink frees the call at this event (0 = never) */

static void on_answer(struct sg_call *c, const struct sg_fetch_res *res, void *arg)
{
	json_t *body;

	(void)arg;
	attempts = res->attempts;
	body = sg_call_json(c, res);
	if (body)
		sg_call_object(c, body);
}

static void m_create(struct sg_call *c)
{
	const char *const h[] = {"Content-Type: application/json", NULL};

	sg_call_request(c, "POST", target, h, "{\"title\":\"t\"}", 13, on_answer, NULL);
}

static void m_archive(struct sg_call *c)
{
	sg_call_request(c, "POST", target, NULL, NULL, 0, on_answer, NULL);
}

static void m_get(struct sg_call *c)
{
	sg_call_get(c, target, NULL, on_answer, NULL);
}

static void on_piece(struct sg_call *c, long status, const char *data, size_t len, void *arg)
{
	json_t *ev;

	(void)arg;
	if (!data)
		return; /* the status line */
	ck_assert_int_eq(status, 200);
	ev = json_pack("{s:s, s:s#}", "type", "piece", "text", data, len);
	if (sg_call_emit(c, ev) != 0) {
		json_decref(ev);
		return; /* the call is gone */
	}
	json_decref(ev);
}

static void on_stream_end(struct sg_call *c, const struct sg_fetch_res *res, void *arg)
{
	(void)arg;
	if (res->fail == SG_FETCH_OK && res->status == 200)
		sg_call_object(c, NULL);
	else
		sg_call_json(c, res);
}

static void m_stream(struct sg_call *c)
{
	sg_call_stream(c, target, NULL, on_piece, on_stream_end, NULL);
}

static const struct sg_mapping test_mapping = {
    .name = "test",
    .get_session = m_get,
    .create_session = m_create,
    .archive_session = m_archive,
    .stream_events = m_stream,
};

static int sink(struct sg_call *c, const json_t *event, void *arg)
{
	(void)arg;
	json_array_append(emitted, (json_t *)event);
	if (free_at && (int)json_array_size(emitted) == free_at) {
		sg_call_free(c);
		call = NULL;
		return -1;
	}
	return 0;
}

static void on_done(struct sg_call *c, void *arg)
{
	(void)c;
	(void)arg;
	done_runs++;
	event_base_loopbreak(base);
}

static int bound_port(struct evhttp_bound_socket *bs)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
	return ntohs(sa.sin_port);
}

static void setup(void)
{
	static char url[64];
	struct evhttp_bound_socket *bs;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);

	base = event_base_new();
	backend_http = evhttp_new(base);
	evhttp_set_gencb(backend_http, backend, NULL);
	bs = evhttp_bind_socket_with_handle(backend_http, "127.0.0.1", 0);
	ck_assert_ptr_nonnull(bs);
	backend_port = bound_port(bs);
	/* a port nobody listens on: bound, never listened to, closed */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	dead_port = ntohs(sa.sin_port);
	close(fd);
	up = sg_upstream_new(base, 8);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", backend_port);
	memset(&be, 0, sizeof(be));
	memset(&be_state, 0, sizeof(be_state));
	be.state = &be_state;
	be.name = "tb";
	be.mapping = &test_mapping;
	be.url = url;
	be.timeout_ms = 500;
	be.stream_idle_timeout_ms = 2000;
	be.connect_timeout_ms = 1000;
	be.retries = 2;
	be.max_response_bytes = 1 << 20;
	seen = json_array();
	emitted = json_array();
	done_runs = 0;
	free_at = 0;
	attempts = 0;
}

static void teardown(void)
{
	sg_call_free(call);
	call = NULL;
	sg_upstream_free(up);
	evhttp_free(backend_http);
	event_base_free(base);
	json_decref(seen);
	json_decref(emitted);
}

/* Runs one call of kind on `path` to its end (or 10 s). */
static void run_call(enum sg_call_kind kind, const char *path)
{
	struct sg_call_env env = {
	    .upstream = up, .base = base, .request_id = "req_t", .principal = "p"};
	struct timeval limit = {10, 0};

	target = path;
	call = sg_call_new(kind, &env, &be, NULL, on_done, NULL);
	ck_assert_ptr_nonnull(call);
	sg_call_set_sink(call, sink, NULL);
	sg_call_start(call);
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
}

static const struct sg_error *expect_error(int status, int retry, int unknown)
{
	const struct sg_error *e = sg_call_error(call);

	ck_assert_ptr_nonnull(e);
	ck_assert_msg(e->status == status, "status %d: %s", e->status, e->message);
	sg_error_default_retry((struct sg_error *)e);
	ck_assert_msg(e->should_retry == retry, "should_retry %d: %s", e->should_retry, e->message);
	ck_assert_msg(!!strstr(e->message, "outcome of this write is unknown") == unknown, "%s",
	              e->message);
	ck_assert_msg(strstr(e->message, "backend 'tb'"), "%s", e->message);
	return e;
}

START_TEST(write_sends_its_body_once_and_ends_with_an_object)
{
	json_t *obj;

	run_call(SG_CALL_CREATE_SESSION, "/ok");
	ck_assert_int_eq(done_runs, 1);
	ck_assert_ptr_null(sg_call_error(call));
	obj = sg_call_result_object(call);
	ck_assert_str_eq(json_string_value(json_object_get(obj, "id")), "x");
	ck_assert_ptr_null(sg_call_result(call));
	ck_assert_uint_eq(json_array_size(seen), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(seen, 0), "method")),
	                 "POST");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(seen, 0), "body")),
	                 "{\"title\":\"t\"}");
}
END_TEST

/* A write without a body still says how long it is: some servers refuse a POST without. */
START_TEST(bodiless_write_says_content_length_0)
{
	run_call(SG_CALL_ARCHIVE_SESSION, "/ok");
	ck_assert_ptr_null(sg_call_error(call));
	ck_assert_uint_eq(json_array_size(seen), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(seen, 0), "length")),
	                 "0");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(seen, 0), "body")), "");
}
END_TEST

/* The backend read the write and hung up: it may have acted. */
START_TEST(write_with_lost_answer_has_unknown_outcome)
{
	run_call(SG_CALL_CREATE_SESSION, "/drop");
	expect_error(502, 0, 1);
	ck_assert_int_eq(attempts, 1);
	ck_assert_uint_eq(json_array_size(seen), 1);
}
END_TEST

START_TEST(write_that_timed_out_has_unknown_outcome)
{
	run_call(SG_CALL_CREATE_SESSION, "/silent");
	expect_error(504, 0, 1);
	ck_assert_uint_eq(json_array_size(seen), 1);
}
END_TEST

START_TEST(write_with_garbled_answer_has_unknown_outcome)
{
	run_call(SG_CALL_CREATE_SESSION, "/garbage");
	expect_error(502, 0, 1);
}
END_TEST

START_TEST(write_answered_500_has_unknown_outcome_but_503_was_refused)
{
	run_call(SG_CALL_CREATE_SESSION, "/status/500");
	expect_error(502, 0, 1);
	sg_call_free(call);
	call = NULL;
	run_call(SG_CALL_CREATE_SESSION, "/status/503");
	expect_error(502, 1, 0);
	ck_assert_uint_eq(json_array_size(seen), 2); /* each sent once */
}
END_TEST

/* Nobody listens: the write never left, so it is neither retried here nor unknown. */
START_TEST(write_that_could_not_connect_is_not_retried_nor_unknown)
{
	static char url[64];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", dead_port);
	be.url = url;
	run_call(SG_CALL_CREATE_SESSION, "/ok");
	expect_error(502, 1, 0);
	ck_assert_int_eq(attempts, 1);
}
END_TEST

/* The same failures on a read keep the read's advice: a GET may be asked again. */
START_TEST(read_failures_say_nothing_of_outcomes)
{
	static char url[64];

	run_call(SG_CALL_GET_SESSION, "/status/500");
	expect_error(502, 1, 0);
	sg_call_free(call);
	call = NULL;
	run_call(SG_CALL_GET_SESSION, "/drop");
	expect_error(502, 1, 0);
	sg_call_free(call);
	call = NULL;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", dead_port);
	be.url = url;
	run_call(SG_CALL_GET_SESSION, "/ok");
	expect_error(502, 1, 0);
	ck_assert_int_eq(attempts, 3); /* GETs are retried when they could not connect */
}
END_TEST

START_TEST(stream_emits_each_piece_as_it_arrives)
{
	run_call(SG_CALL_STREAM_EVENTS, "/stream");
	ck_assert_int_eq(done_runs, 1);
	ck_assert_ptr_null(sg_call_error(call));
	ck_assert_ptr_null(sg_call_result_object(call));
	ck_assert_uint_eq(json_array_size(emitted), 3);
	for (size_t i = 0; i < 3; i++) {
		char want[16];

		snprintf(want, sizeof(want), "piece%zu\n", i);
		ck_assert_str_eq(
		    json_string_value(json_object_get(json_array_get(emitted, i), "text")), want);
	}
}
END_TEST

/* The consumer leaves in the middle: its sink frees the call inside sg_call_emit. Nothing
 * more is emitted, done never runs, and nothing leaks (ASan). */
START_TEST(stream_sink_may_free_the_call)
{
	struct timeval settle = {0, 400000};

	free_at = 1;
	run_call(SG_CALL_STREAM_EVENTS, "/stream");
	ck_assert_ptr_null(call);
	ck_assert_uint_eq(json_array_size(emitted), 1);
	event_base_loopexit(base, &settle); /* the backend would have sent two more */
	event_base_dispatch(base);
	ck_assert_uint_eq(json_array_size(emitted), 1);
	ck_assert_int_eq(done_runs, 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("call");
	TCase *t = tcase_create("call");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 30);
	tcase_add_test(t, write_sends_its_body_once_and_ends_with_an_object);
	tcase_add_test(t, bodiless_write_says_content_length_0);
	tcase_add_test(t, write_with_lost_answer_has_unknown_outcome);
	tcase_add_test(t, write_that_timed_out_has_unknown_outcome);
	tcase_add_test(t, write_with_garbled_answer_has_unknown_outcome);
	tcase_add_test(t, write_answered_500_has_unknown_outcome_but_503_was_refused);
	tcase_add_test(t, write_that_could_not_connect_is_not_retried_nor_unknown);
	tcase_add_test(t, read_failures_say_nothing_of_outcomes);
	tcase_add_test(t, stream_emits_each_piece_as_it_arrives);
	tcase_add_test(t, stream_sink_may_free_the_call);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return sg_fixture_run(suite());
}
