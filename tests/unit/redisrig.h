/* redisrig.h - a real redis-server on loopback for the unit tests that talk to one
 * (test_redis, test_shared): started on a free port with no persistence and its output
 * discarded, waited for (at most 5 s: the test aborts when it does not come), stopped. */
#ifndef SG_REDISRIG_H
#define SG_REDISRIG_H

#include <sys/types.h>

/* A loopback TCP port that was free a moment ago. */
int sg_rr_free_port(void);
/* Starts redis-server on port and waits until it accepts connections. Returns its pid. */
pid_t sg_rr_start(int port);
/* Stops *pid (continuing it first, should it be stopped) and waits for it; sets it to -1.
 * Nothing when *pid ≤ 0. */
void sg_rr_stop(pid_t *pid);

#endif
