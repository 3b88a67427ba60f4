/* fuzz_id.c - libFuzzer harness: public ids (src/idcodec.h). The input is decoded as a session
 * id ("sesn_") and with other prefixes; what decodes must encode back to the same id. */
#include "fuzz_common.h"
#include "idcodec.h"

static void one(const char *prefix, const char *id)
{
	struct sg_pubid p;
	char again[SG_ID_MAX];
	int n;

	if (sg_id_decode(prefix, id, &p) != 0)
		return;
	FZ_CHECK(strlen(p.backend) < SG_ID_FIELD_MAX && strlen(p.native) < SG_ID_FIELD_MAX);
	n = sg_id_encode(prefix, p.backend, p.scope, p.native, again, sizeof(again));
	FZ_CHECK(n >= 0);
	FZ_CHECK((size_t)n == strlen(again));
	FZ_CHECK(strcmp(again, id) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *id = fz_str(data, size);
	char seeded[SG_ID_MAX];
	struct sg_pubid p;
	size_t third;

	if (!id)
		return 0;
	one("sesn_", id);
	one("agent_", id);
	one("", id);
	free(id);

	/* the other direction: three fields cut from the input must encode and decode back */
	third = size / 3;
	if (size - 2 * third >= SG_ID_FIELD_MAX || memchr(data, 0, size))
		return 0;
	{
		char f[3][SG_ID_FIELD_MAX];

		memcpy(f[0], data, third);
		f[0][third] = 0;
		memcpy(f[1], data + third, third);
		f[1][third] = 0;
		memcpy(f[2], data + 2 * third, size - 2 * third);
		f[2][size - 2 * third] = 0;
		if (sg_id_encode("sesn_", f[0], f[1], f[2], seeded, sizeof(seeded)) < 0)
			return 0;
		FZ_CHECK(sg_id_decode("sesn_", seeded, &p) == 0);
		FZ_CHECK(strcmp(p.backend, f[0]) == 0 && strcmp(p.scope, f[1]) == 0 &&
		         strcmp(p.native, f[2]) == 0);
		FZ_CHECK(sg_id_decode("agent_", seeded, &p) != 0);
	}
	return 0;
}
