/* test_redis.c - the per-worker Redis client (src/redis.c) against a real redis-server on
 * loopback, started and stopped here: commands and replies, a server that is not there, one
 * that stops answering (SIGSTOP: every command past its deadline ends with SG_REDIS_TIMEOUT
 * and the connection is dropped), one that goes away and comes back (reconnection with
 * backoff), cancelled commands, and freeing with commands in flight. No test waits on Redis
 * without a bound: the loop runs to a deadline. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "redis.h"
#include "redisrig.h"
#include "timeutil.h"

static pid_t server = -1;
static int port;

static int free_port(void)
{
	return sg_rr_free_port();
}

static void server_start(void)
{
	server = sg_rr_start(port);
}

static void server_stop(void)
{
	sg_rr_stop(&server);
}

struct rig {
	struct event_base *base;
	struct sg_redis *r;
};

static void rig_open(struct rig *g, long timeout_ms)
{
	struct sg_redis_cfg cfg = {
	    .host = "127.0.0.1", .port = port, .timeout_ms = timeout_ms, .connect_timeout_ms = 500};

	g->base = event_base_new();
	ck_assert_ptr_nonnull(g->base);
	g->r = sg_redis_new(g->base, &cfg);
	ck_assert_ptr_nonnull(g->r);
}

static void rig_close(struct rig *g)
{
	sg_redis_free(g->r);
	event_base_free(g->base);
}

/* Runs the loop until *flag is set or ms pass. Returns *flag. */
static int run_until(struct rig *g, const int *flag, long ms)
{
	int64_t until = sg_mono_ms() + ms;

	while (!*flag && sg_mono_ms() < until) {
		struct timeval tv = {0, 10000};

		event_base_loopexit(g->base, &tv);
		event_base_dispatch(g->base);
	}
	return *flag;
}

static int up_flag(struct rig *g, long ms)
{
	int64_t until = sg_mono_ms() + ms;

	while (!sg_redis_up(g->r) && sg_mono_ms() < until) {
		struct timeval tv = {0, 10000};

		event_base_loopexit(g->base, &tv);
		event_base_dispatch(g->base);
	}
	return sg_redis_up(g->r);
}

struct seen {
	int done;
	int calls;
	enum sg_redis_status status;
	int type;
	char str[64];
	long long integer;
};

static void on_done(enum sg_redis_status status, const struct redisReply *reply, void *arg)
{
	struct seen *s = arg;

	s->calls++;
	s->done = 1;
	s->status = status;
	s->type = reply ? reply->type : -1;
	if (reply && reply->str)
		snprintf(s->str, sizeof(s->str), "%.*s", (int)reply->len, reply->str);
	if (reply)
		s->integer = reply->integer;
}

static struct sg_redis_op *cmd(struct rig *g, struct seen *s, int argc, const char **argv)
{
	size_t lens[8];

	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	memset(s, 0, sizeof(*s));
	return sg_redis_cmd(g->r, argc, argv, lens, on_done, s);
}

START_TEST(commands_and_replies)
{
	struct rig g;
	struct seen s;
	const char *set[] = {"SET", "sg:test:k", "v\0x"};
	size_t lens[] = {3, 9, 3};

	server_stop(); /* one a failed test left */
	port = free_port();
	server_start();
	rig_open(&g, 1000);
	ck_assert(up_flag(&g, 3000));
	memset(&s, 0, sizeof(s));
	ck_assert_ptr_nonnull(sg_redis_cmd(g.r, 3, set, lens, on_done, &s)); /* binary-safe */
	ck_assert(run_until(&g, &s.done, 2000));
	ck_assert_int_eq(s.status, SG_REDIS_OK);
	ck_assert_str_eq(s.str, "OK");
	ck_assert_ptr_nonnull(cmd(&g, &s, 2, (const char *[]){"STRLEN", "sg:test:k"}));
	ck_assert(run_until(&g, &s.done, 2000));
	ck_assert_int_eq(s.type, REDIS_REPLY_INTEGER);
	ck_assert_int_eq(s.integer, 3);
	/* an error reply is a reply */
	ck_assert_ptr_nonnull(cmd(&g, &s, 1, (const char *[]){"NOSUCHCOMMAND"}));
	ck_assert(run_until(&g, &s.done, 2000));
	ck_assert_int_eq(s.status, SG_REDIS_OK);
	ck_assert_int_eq(s.type, REDIS_REPLY_ERROR);
	rig_close(&g);
	server_stop();
}
END_TEST

/* No server: commands are refused at once; when one starts, the client connects by itself. */
START_TEST(down_then_up)
{
	struct rig g;
	struct seen s;
	int64_t t0;

	server_stop(); /* one a failed test left */
	port = free_port();
	rig_open(&g, 1000);
	t0 = sg_mono_ms();
	ck_assert(!up_flag(&g, 300));
	ck_assert_ptr_null(cmd(&g, &s, 1, (const char *[]){"PING"}));
	ck_assert_int_lt(sg_mono_ms() - t0, 1000);
	ck_assert_int_gt(sg_redis_stats(g.r).refused, 0);
	server_start();
	ck_assert(up_flag(&g, 8000)); /* backoff is at most 5 s */
	ck_assert_ptr_nonnull(cmd(&g, &s, 1, (const char *[]){"PING"}));
	ck_assert(run_until(&g, &s.done, 2000));
	ck_assert_str_eq(s.str, "PONG");
	rig_close(&g);
	server_stop();
}
END_TEST

/* A server that stops answering: the command ends with SG_REDIS_TIMEOUT at its deadline, the
 * connection is dropped, and once the server answers again the client is back. */
START_TEST(stopped_server_times_out_and_recovers)
{
	struct rig g;
	struct seen s;
	int64_t t0;

	server_stop(); /* one a failed test left */
	port = free_port();
	server_start();
	rig_open(&g, 200);
	ck_assert(up_flag(&g, 3000));
	kill(server, SIGSTOP);
	t0 = sg_mono_ms();
	ck_assert_ptr_nonnull(cmd(&g, &s, 1, (const char *[]){"PING"}));
	ck_assert(run_until(&g, &s.done, 3000));
	ck_assert_int_eq(s.status, SG_REDIS_TIMEOUT);
	ck_assert_int_eq(s.calls, 1);
	ck_assert_int_lt(sg_mono_ms() - t0, 1500);
	ck_assert(!sg_redis_up(g.r));
	ck_assert_ptr_null(cmd(&g, &s, 1, (const char *[]){"PING"}));
	ck_assert_int_eq(sg_redis_stats(g.r).timeouts, 1);
	kill(server, SIGCONT);
	ck_assert(up_flag(&g, 8000));
	ck_assert_ptr_nonnull(cmd(&g, &s, 1, (const char *[]){"PING"}));
	ck_assert(run_until(&g, &s.done, 2000));
	ck_assert_int_eq(s.status, SG_REDIS_OK);
	ck_assert_int_eq(s.calls, 1);
	rig_close(&g);
	server_stop();
}
END_TEST

/* A command with a deadline of its own (sg_redis_cmd_ms) ends at that deadline, not the
 * client's (5 s here, past the 3 s the test waits). */
START_TEST(a_command_has_its_own_deadline)
{
	struct rig g;
	struct seen s;
	const char *ping[] = {"PING"};
	size_t lens[] = {4};

	server_stop(); /* one a failed test left */
	port = free_port();
	server_start();
	rig_open(&g, 5000);
	ck_assert(up_flag(&g, 3000));
	kill(server, SIGSTOP);
	memset(&s, 0, sizeof(s));
	ck_assert_ptr_nonnull(sg_redis_cmd_ms(g.r, 1, ping, lens, 100, on_done, &s));
	ck_assert(run_until(&g, &s.done, 3000));
	ck_assert_int_eq(s.status, SG_REDIS_TIMEOUT);
	kill(server, SIGCONT);
	rig_close(&g);
	server_stop();
}
END_TEST

/* The server goes away: the loss is seen, commands are refused, and a new server on the same
 * port is picked up again. */
START_TEST(server_restart)
{
	struct rig g;
	struct seen s;
	int flag = 0;

	server_stop(); /* one a failed test left */
	port = free_port();
	server_start();
	rig_open(&g, 1000);
	ck_assert(up_flag(&g, 3000));
	server_stop();
	run_until(&g, &flag, 300);
	ck_assert(!sg_redis_up(g.r));
	ck_assert_int_eq(sg_redis_stats(g.r).losses, 1);
	ck_assert_ptr_null(cmd(&g, &s, 1, (const char *[]){"PING"}));
	server_start();
	ck_assert(up_flag(&g, 8000));
	ck_assert_int_eq(sg_redis_stats(g.r).connects, 2);
	rig_close(&g);
	server_stop();
}
END_TEST

/* A cancelled command's callback never runs; freeing the client with a command in flight runs
 * its callback once, with SG_REDIS_DOWN. */
START_TEST(cancel_and_free)
{
	struct rig g;
	struct seen a, b;
	struct sg_redis_op *op;
	int flag = 0;

	server_stop(); /* one a failed test left */
	port = free_port();
	server_start();
	rig_open(&g, 1000);
	ck_assert(up_flag(&g, 3000));
	op = cmd(&g, &a, 1, (const char *[]){"PING"});
	ck_assert_ptr_nonnull(op);
	sg_redis_cancel(op);
	run_until(&g, &flag, 200);
	ck_assert_int_eq(a.calls, 0);
	kill(server, SIGSTOP);
	ck_assert_ptr_nonnull(cmd(&g, &b, 1, (const char *[]){"PING"}));
	sg_redis_free(g.r);
	g.r = NULL;
	ck_assert_int_eq(b.calls, 1);
	ck_assert_int_eq(b.status, SG_REDIS_DOWN);
	event_base_free(g.base);
	server_stop();
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("redis");
	TCase *tc = tcase_create("client");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, commands_and_replies);
	tcase_add_test(tc, down_then_up);
	tcase_add_test(tc, stopped_server_times_out_and_recovers);
	tcase_add_test(tc, a_command_has_its_own_deadline);
	tcase_add_test(tc, server_restart);
	tcase_add_test(tc, cancel_and_free);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	signal(SIGPIPE, SIG_IGN);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	server_stop();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
