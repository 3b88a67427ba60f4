/* fuzz_query.c - libFuzzer harness: the north query-string parsers (src/query.h). The input is
 * the raw query string; both parsers run on it, and the fingerprints of what they accept. */
#include "fuzz_common.h"
#include "error.h"
#include "query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *raw = fz_str(data, size);
	struct sg_session_query sq;
	struct sg_event_query eq;
	struct sg_error err = {0};
	char *fp;

	if (!raw)
		return 0;
	memset(&sq, 0, sizeof(sq));
	if (sg_session_query_parse(raw, &sq, &err) == 0) {
		FZ_CHECK(sq.limit >= 1 && sq.limit <= SG_LIST_LIMIT_MAX);
		fp = sg_session_query_fingerprint(&sq);
		FZ_CHECK(fp != NULL);
		free(fp);
	} else {
		FZ_CHECK(err.status == 400);
	}
	sg_session_query_clear(&sq);

	memset(&eq, 0, sizeof(eq));
	memset(&err, 0, sizeof(err));
	if (sg_event_query_parse(raw, &eq, &err) == 0) {
		FZ_CHECK(eq.limit >= 1 && eq.limit <= SG_EVENTS_LIMIT_MAX);
		FZ_CHECK(eq.ntypes <= SG_QUERY_MAX_TYPES);
		fp = sg_event_query_fingerprint(&eq);
		FZ_CHECK(fp != NULL);
		free(fp);
	} else {
		FZ_CHECK(err.status == 400);
	}
	sg_event_query_clear(&eq);
	free(raw);
	return 0;
}
