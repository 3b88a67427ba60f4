/* fuzz_cursor.c - libFuzzer harness: page cursors (src/cursor.h). The input is opened as a
 * token under a fixed secret, principal and fingerprint; when it is also JSON, it is sealed as
 * a payload and must open back to an equal value. */
#include "fuzz_common.h"
#include "cursor.h"

static const uint8_t secret[32] = "fuzz-secret-0123456789abcdefghij";
#define PRINCIPAL "key_fuzz"
#define FINGERPRINT "order=desc;statuses=idle"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *token = fz_str(data, size);
	json_t *payload, *back;
	char *sealed;

	if (token) {
		back = sg_cursor_open(secret, sizeof(secret), PRINCIPAL, FINGERPRINT, token);
		json_decref(back);
		free(token);
	}
	payload = fz_json(data, size);
	if (!payload)
		return 0;
	sealed = sg_cursor_seal(secret, sizeof(secret), PRINCIPAL, FINGERPRINT, payload);
	if (sealed) {
		FZ_CHECK(strlen(sealed) <= SG_CURSOR_MAX);
		back = sg_cursor_open(secret, sizeof(secret), PRINCIPAL, FINGERPRINT, sealed);
		FZ_CHECK(back != NULL);
		FZ_CHECK(json_equal(back, payload));
		json_decref(back);
		/* bound to the principal and the fingerprint */
		back = sg_cursor_open(secret, sizeof(secret), "key_other", FINGERPRINT, sealed);
		FZ_CHECK(back == NULL);
		back = sg_cursor_open(secret, sizeof(secret), PRINCIPAL, "", sealed);
		FZ_CHECK(back == NULL);
		free(sealed);
	}
	json_decref(payload);
	return 0;
}
