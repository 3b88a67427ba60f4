/* fuzz_as_stream.c - libFuzzer harness: AgentScope's live stream translator
 * (mappings/agentscope_stream.h). The input is a JSON array of stream frames, fed in order to
 * one stream (an object is fed as a single frame). */
#include "fuzz_common.h"
#include "agentscope_stream.h"
#include "error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_as_events_ctx ctx = {
	    .backend = "as1",
	    .session_key = "agent1/sess1",
	    .tz = fz_utc(),
	    .agent_name = "Friday",
	};
	json_t *frames = fz_json(data, size), *out;
	struct sg_as_stream *s;
	size_t i;

	if (!frames)
		return 0;
	s = sg_as_stream_new(&ctx, 0);
	FZ_CHECK(s != NULL);
	out = json_array();
	if (json_is_array(frames)) {
		for (i = 0; i < json_array_size(frames); i++) {
			struct sg_error err = {0};

			/* after a refusal the stream may be fed on: keep going, as a caller might
			 */
			if (sg_as_stream_feed(s, json_array_get(frames, i), out, &err) < 0)
				FZ_CHECK(err.status == 502 || err.status == 500);
		}
	} else {
		struct sg_error err = {0};

		(void)sg_as_stream_feed(s, frames, out, &err);
	}
	sg_as_stream_free(s);
	json_decref(out);
	json_decref(frames);
	return 0;
}
