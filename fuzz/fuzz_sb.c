/* fuzz_sb.c - libFuzzer harness: the SandBase translators (mappings/sandbase_translate.h).
 * The input is JSON. An events page ({"data": [...]}, or a bare array) goes through
 * sg_sb_events_to_cma, with the page's "carry" member (if any) as carry_in, then again with
 * the carry it wrote; the document itself, and each element of its data, also go through
 * sg_sb_session_to_cma and sg_sb_agent_to_cma. */
#include "fuzz_common.h"
#include "error.h"
#include "sandbase_translate.h"

static const struct sg_sb_ctx ctx = {.backend = "sb1", .now_us = 1780000000000000};

static void as_session_and_agent(const json_t *v)
{
	struct sg_error err = {0};
	json_t *agent, *s;
	const char *id;
	int64_t version;

	(void)sg_sb_session_agent_ref(v, &id, &version);
	agent = sg_sb_agent_to_cma(v, &ctx, &err);
	s = sg_sb_session_to_cma(v, NULL, &ctx, &err);
	json_decref(s);
	if (agent) {
		/* the agent as the session's agent, as the module hands it over */
		s = sg_sb_session_to_cma(v, agent, &ctx, &err);
		json_decref(s);
	}
	json_decref(agent);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *root = fz_json(data, size), *events, *got, *carry = NULL, *carry2 = NULL;
	struct sg_error err = {0};
	size_t i;

	if (!root)
		return 0;
	events = json_is_array(root) ? root : json_object_get(root, "data");
	if (json_is_array(events)) {
		got =
		    sg_sb_events_to_cma(events, json_object_get(root, "carry"), &carry, &ctx, &err);
		FZ_CHECK(!got == !carry);
		json_decref(got);
		if (carry) {
			got = sg_sb_events_to_cma(events, carry, &carry2, &ctx, &err);
			json_decref(got);
			json_decref(carry2);
		}
		json_decref(carry);
		got = sg_sb_events_to_cma(events, NULL, NULL, &ctx, &err);
		json_decref(got);
		for (i = 0; i < json_array_size(events) && i < 16; i++)
			as_session_and_agent(json_array_get(events, i));
	}
	as_session_and_agent(root);
	json_decref(root);
	return 0;
}
