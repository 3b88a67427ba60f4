/* fuzz_as_sessions.c - libFuzzer harness: AgentScope listings (mappings/agentscope_translate.h).
 * The input is a GET /sessions/ body: translated from its tree (sg_as_listing_to_cma) and from
 * its text (sg_as_listing_text_to_cma), which must agree (see comparable()); it is also
 * indexed and translated as a GET /agent/ body. */
#include "fuzz_common.h"
#include "agentscope_translate.h"
#include "error.h"

/* 1 when the text and the tree translations must agree: the text has no \u escape (the
 * scanner matches the key as spelled) and is shallower than the scanner's depth limit, and
 * either jansson reads it without duplicate keys (the scanner takes the first "sessions",
 * jansson the last) or jansson refuses it (then both must refuse it: since cf6d2c7 the scanner
 * parses what lies outside the array as strictly as jansson; README.md). */
static int comparable(const uint8_t *data, size_t size)
{
	size_t i, open = 0;
	json_t *v;

	for (i = 0; i < size; i++) {
		if (data[i] == '[' || data[i] == '{')
			open++;
		else if (data[i] == '\\' && i + 1 < size && data[i + 1] == 'u')
			return 0;
	}
	if (open >= SG_JSCAN_MAX_DEPTH)
		return 0;
	v = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	if (v) {
		json_decref(v);
		return 1;
	}
	v = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	json_decref(v);
	return v == NULL;
}

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
	/* the text path on any bytes; the tree and the text must say the same where comparable */
	rc2 = sg_as_listing_text_to_cma((const char *)data, size, index, &ctx, out2, &e2);
	if (root && comparable(data, size)) {
		rc1 = sg_as_listing_to_cma(root, index, &ctx, out1, &e1);
		FZ_CHECK(rc1 == rc2);
		if (rc1 == 0)
			FZ_CHECK(json_equal(out1, out2));
		else
			FZ_CHECK(e1.status == e2.status);
	}
	json_decref(out1);
	json_decref(out2);
	json_decref(index);
	json_decref(root);
	return 0;
}
