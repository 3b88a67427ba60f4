/* translate.c - the cost of translating one AgentScope listing (the hot path of a list request
 * when no cache is configured), next to the cost of parsing the same bytes with jansson,
 * measured in the same run: the ratio says how much the translation adds to the parse every
 * list request pays anyway. Each is the best of many short rounds.
 *
 * Usage: bench/translate LISTING.json AGENTS.json [SECONDS]
 * (bench/translate.sh fetches both bodies from the fake backend and runs it). SECONDS 0
 * translates the listing once and measures nothing, for instruction counts that do not depend
 * on the machine's load:
 *   valgrind --tool=callgrind --toggle-collect=sg_as_listing_to_cma bench/translate L A 0
 * Not a test: nothing here is asserted. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentscope_translate.h"
#include "timeutil.h"
#include "tz.h"

/* CPU time of this process: a round the scheduler interrupted is not charged for the wait. */
static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Reads a whole file into a new buffer; *len its size. NULL on failure. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

/* One round of the measured work: parse the listing body (listing NULL) or translate the
 * parsed listing and free the result, as a list request does. */
static void once(const char *body, size_t len, const json_t *listing, const json_t *index,
                 const struct sg_as_ctx *ctx)
{
	struct sg_error err = {0};
	json_t *j;

	if (!listing) {
		j = json_loadb(body, len, 0, NULL);
	} else {
		j = json_array();
		if (j && sg_as_listing_to_cma(listing, index, ctx, j, &err)) {
			fprintf(stderr, "translation failed: %s\n", err.message);
			exit(1);
		}
	}
	if (!j)
		exit(1);
	json_decref(j);
}

/* Seconds per listing: the best of rounds of about 50 ms within the budget, since these
 * machines are shared and the least disturbed round is the most telling. */
static double best(const char *body, size_t len, const json_t *listing, const json_t *index,
                   const struct sg_as_ctx *ctx, double budget)
{
	double start = now_s(), min = 1e9;

	while (now_s() - start < budget) {
		double t0 = now_s(), t;
		long n = 0;

		do {
			once(body, len, listing, index, ctx);
			n++;
			t = now_s() - t0;
		} while (t < 0.05);
		if (t / (double)n < min)
			min = t / (double)n;
	}
	return min;
}

int main(int argc, char **argv)
{
	struct sg_as_ctx ctx = {.backend = "as"};
	struct sg_error err = {0};
	json_t *listing, *agents, *index;
	struct sg_tz *tz;
	double budget = argc > 3 ? atof(argv[3]) : 3.0, parse, translate;
	size_t len, n;
	char *body, why[128];

	if (argc < 3) {
		fprintf(stderr, "usage: %s LISTING.json AGENTS.json [SECONDS]\n", argv[0]);
		return 2;
	}
	body = slurp(argv[1], &len);
	listing = body ? json_loadb(body, len, 0, NULL) : NULL;
	agents = json_load_file(argv[2], 0, NULL);
	tz = sg_tz_load("UTC", why, sizeof(why));
	ctx.tz = tz;
	if (!listing || !agents || !tz) {
		fprintf(stderr, "cannot read %s or %s\n", argv[1], argv[2]);
		return 1;
	}
	sg_time_parse_rfc3339("2026-09-01T00:00:00Z", &ctx.now_us);
	index = sg_as_agents_index(agents, &ctx, &err);
	if (!index) {
		fprintf(stderr, "agents: %s\n", err.message);
		return 1;
	}
	n = json_array_size(json_object_get(listing, "sessions"));
	if (budget <= 0) {
		once(body, len, listing, index, &ctx);
		goto out;
	}
	/* split the budget between the two */
	parse = best(body, len, NULL, NULL, NULL, budget / 2);
	translate = best(body, len, listing, index, &ctx, budget / 2);
	printf("listing: %zu sessions, %zu bytes\n", n, len);
	printf("parse      %9.1f us/listing\n", parse * 1e6);
	printf("translate  %9.1f us/listing  %6.2f us/session\n", translate * 1e6,
	       translate * 1e6 / (double)(n ? n : 1));
	printf("translate / parse = %.3f\n", translate / parse);
out:
	json_decref(index);
	json_decref(agents);
	json_decref(listing);
	sg_tz_free(tz);
	free(body);
	return 0;
}
