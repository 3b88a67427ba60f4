/* redisrig.c - see redisrig.h. */
#include "redisrig.h"

#include <check.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "timeutil.h"

int sg_rr_free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), p;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	p = ntohs(sa.sin_port);
	close(fd);
	return p;
}

pid_t sg_rr_start(int port)
{
	char ps[16];
	int64_t until = sg_mono_ms() + 5000;
	pid_t pid;

	snprintf(ps, sizeof(ps), "%d", port);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execlp("redis-server", "redis-server", "--port", ps, "--bind", "127.0.0.1",
		       "--save", "", "--appendonly", "no", "--loglevel", "warning", (char *)NULL);
		_exit(127);
	}
	while (sg_mono_ms() < until) {
		struct timeval tv = {0, 200000};
		redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
		int ok = c && !c->err;

		if (c)
			redisFree(c);
		if (ok)
			return pid;
		usleep(20000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ck_abort_msg("redis-server did not start on port %d (is it installed?)", port);
	return -1;
}

void sg_rr_stop(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGCONT);
		kill(*pid, SIGTERM);
		waitpid(*pid, NULL, 0);
	}
	*pid = -1;
}
