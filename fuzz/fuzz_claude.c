/* fuzz_claude.c - libFuzzer harness: the Claude-native translators
 * (mappings/claude_translate.h). The input is JSON: as a session, an agent, a run of events
 * (a bare array or an object's "data") and a send answer. */
#include "fuzz_common.h"
#include "claude_translate.h"
#include "error.h"

static const struct sg_cl_ctx ctx = {.backend = "cl1"};

static void one(const json_t *v)
{
	struct sg_error err = {0};

	json_decref(sg_cl_session_to_cma(v, &ctx, &err));
	json_decref(sg_cl_agent_to_cma(v, &ctx, &err));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *root = fz_json(data, size), *events;
	struct sg_error err = {0};
	size_t i;

	if (!root)
		return 0;
	one(root);
	events = json_is_array(root) ? root : json_object_get(root, "data");
	if (json_is_array(events)) {
		json_decref(sg_cl_events_to_cma(events, &ctx, &err));
		for (i = 0; i < json_array_size(events) && i < 16; i++)
			one(json_array_get(events, i));
	}
	json_decref(sg_cl_sent_to_cma(root, &ctx, &err));
	json_decref(root);
	return 0;
}
