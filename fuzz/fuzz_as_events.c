/* fuzz_as_events.c - libFuzzer harness: AgentScope message logs → north events
 * (sg_as_messages_to_events, mappings/agentscope_events.h). The input is a /messages log; the
 * translation must be deterministic, and the tool-use index must fail exactly when it does. */
#include "fuzz_common.h"
#include "agentscope_events.h"
#include "error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_as_events_ctx ctx = {
	    .backend = "as1",
	    .session_key = "agent1/sess1",
	    .tz = fz_utc(),
	    .agent_name = "Friday",
	    .model = "qwen-max",
	    .hint_mode = size && (data[0] & 1) ? SG_AS_HINT_USER_MESSAGE : SG_AS_HINT_DROP,
	    .session_running = size > 1 && (data[1] & 1),
	};
	struct sg_error err = {0};
	json_t *log = fz_json(data, size), *ev, *again, *index;
	size_t tail;

	if (!log)
		return 0;
	ev = sg_as_messages_to_events(log, &ctx, &err);
	if (ev) {
		again = sg_as_messages_to_events(log, &ctx, &err);
		FZ_CHECK(again && json_equal(ev, again));
		json_decref(again);
	}
	index = sg_as_tool_use_index(log, &ctx, &tail, &err);
	FZ_CHECK(!index == !ev);
	json_decref(index);
	json_decref(ev);
	json_decref(log);
	return 0;
}
