/* snapshot.c - what sharing a walk snapshot through Redis costs a worker's loop (shared.h):
 * making the stored form of N sessions (done in one go when a walk's first page makes the
 * snapshot), rebuilding it in one go, and the longest of the SG_SHARED_SNAP_SLICE slices the
 * gateway really rebuilds it in. Sessions are synthetic north Session objects of about 1.2 KB
 * (an AgentScope session's size once translated). Each figure is the best of ROUNDS.
 *
 * Usage: bench/snapshot [N] [ROUNDS]      (defaults 10000, 5; make -C build bench/snapshot)
 * Not a test: nothing here is asserted. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "held.h"
#include "shared.h"

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static struct sg_held *listing(int n)
{
	json_t *a = json_array();
	struct sg_error e = {0};
	struct sg_held *h;
	char pad[901];

	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for (int i = 0; i < n; i++) {
		char id[40], ts[40];

		snprintf(id, sizeof(id), "sesn_%032d", i);
		snprintf(ts, sizeof(ts), "2026-01-%02dT%02d:%02d:%02d.%06dZ", 1 + i / 86400 % 28,
		         i / 3600 % 24, i / 60 % 60, i % 60, i * 7 % 1000000);
		json_array_append_new(
		    a, json_pack("{s:s, s:s, s:s, s:s, s:n, s:{s:s, s:i, s:s}, s:[], s:{s:s}, s:s}",
		                 "type", "session", "id", id, "created_at", ts, "status", "idle",
		                 "archived_at", "agent", "id", "agent_0123456789abcdef", "version", 1,
		                 "name", "Research assistant", "resources", "metadata", "note", pad,
		                 "title", "a session"));
	}
	h = sg_held_new(a, SG_HELD_SESSIONS, &e);
	json_decref(a);
	if (!h || sg_held_seal(h)) {
		fprintf(stderr, "snapshot: could not build the listing\n");
		exit(1);
	}
	return h;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10000, rounds = argc > 2 ? atoi(argv[2]) : 5;
	struct sg_held *h = listing(n);
	double enc = 1e9, dec = 1e9, slice = 0, longest, t;
	size_t len = 0;
	int slices = 0;

	for (int r = 0; r < rounds; r++) {
		char *buf;
		struct sg_snap_dec *d;
		int rc;

		t = now_s();
		buf = sg_snap_encode(&h, 1, SG_SHARED_SNAP_MAX, &len);
		t = now_s() - t;
		enc = t < enc ? t : enc;
		if (!buf)
			return 1;
		t = now_s();
		d = sg_snap_dec_new(buf, len);
		rc = sg_snap_dec_step(d, SG_SHARED_SNAP_MAX);
		t = now_s() - t;
		dec = t < dec ? t : dec;
		if (rc != 0)
			return 1;
		sg_snap_dec_free(d);
		d = sg_snap_dec_new(buf, len);
		slices = 0;
		longest = 0;
		do {
			t = now_s();
			rc = sg_snap_dec_step(d, SG_SHARED_SNAP_SLICE);
			t = now_s() - t;
			longest = t > longest ? t : longest;
			slices++;
		} while (rc == 1);
		slice = r == 0 || longest < slice ? longest : slice;
		sg_snap_dec_free(d);
		free(buf);
	}
	printf("sessions %d  stored form %.1f MiB  encode %.2f ms  rebuild in one go %.2f ms  "
	       "rebuild in %d slices of %zu KiB: longest %.2f ms\n",
	       n, (double)len / (1 << 20), enc * 1e3, dec * 1e3, slices,
	       SG_SHARED_SNAP_SLICE >> 10, slice * 1e3);
	sg_held_release(h);
	return 0;
}
