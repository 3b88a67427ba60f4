/* fuzz_as_sessions.c - libFuzzer harness: AgentScope listings (mappings/agentscope_translate.h).
 * The input is a GET /sessions/ body: translated from its tree (sg_as_listing_to_cma) and from
 * its text (sg_as_listing_text_to_cma), which must agree; it is also indexed and translated as
 * a GET /agent/ body. */
#include "fuzz_common.h"
#include "agentscope_translate.h"
#include "error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_as_ctx ctx = {.backend = "as1", .tz = fz_utc(), .now_us = 1780000000000000};
	struct sg_error e1 = {0}, e2 = {0};
	json_t *root = fz_json(data, size), *index = NULL, *agents;
	json_t *out1 = json_array(), *out2 = json_array();
	int rc1, rc2;

	if (root) {
		index = sg_as_agents_index(root, &ctx, &e1);
		agents = sg_as_agents_to_cma(root, NULL, &ctx, &e1);
		FZ_CHECK(!agents || index); /* every agent translated: the body indexed */
		json_decref(agents);
		memset(&e1, 0, sizeof(e1));
	}
	/* the tree and the text must say the same (the text path on any bytes) */
	rc2 = sg_as_listing_text_to_cma((const char *)data, size, index, &ctx, out2, &e2);
	if (root) {
		rc1 = sg_as_listing_to_cma(root, index, &ctx, out1, &e1);
		FZ_CHECK(rc1 == rc2);
		if (rc1 == 0)
			FZ_CHECK(json_equal(out1, out2));
		else
			FZ_CHECK(e1.status == e2.status);
	} else {
		FZ_CHECK(rc2 != 0);
	}
	json_decref(out1);
	json_decref(out2);
	json_decref(index);
	json_decref(root);
	return 0;
}
