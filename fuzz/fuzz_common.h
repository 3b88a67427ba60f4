/* fuzz_common.h - helpers shared by the libFuzzer harnesses under fuzz/ (one program each,
 * built by make fuzz): the input as JSON or as a C string, and a UTC zone loaded once. */
#ifndef SG_FUZZ_COMMON_H
#define SG_FUZZ_COMMON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as any JSON value (new), or NULL when it does not parse. */
static inline json_t *fz_json(const uint8_t *data, size_t size)
{
	return json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
}

/* The input as a NUL-terminated copy (malloc'd), or NULL when it holds a NUL byte. */
static inline char *fz_str(const uint8_t *data, size_t size)
{
	char *s;

	if (memchr(data, 0, size))
		return NULL;
	s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = 0;
	return s;
}

/* Stops the run with a message: a property the harness checks did not hold. */
#define FZ_CHECK(cond)                                                                             \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__,        \
			        #cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* UTC, loaded on first use and kept for the life of the process. */
static inline const struct sg_tz *fz_utc(void)
{
	static struct sg_tz *tz;
	char err[128];

	if (!tz) {
		tz = sg_tz_load("UTC", err, sizeof(err));
		if (!tz) {
			fprintf(stderr, "fuzz: cannot load UTC: %s\n", err);
			abort();
		}
	}
	return tz;
}

#endif
