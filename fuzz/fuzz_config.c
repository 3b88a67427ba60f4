/* fuzz_config.c - libFuzzer harness: configuration loading (sg_config_from_json, src/config.h)
 * on the input parsed as JSON. Module init() runs too; it may read the environment. */
#include "fuzz_common.h"
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *root = fz_json(data, size);
	struct sg_config *cfg;
	char err[512];

	if (!root)
		return 0;
	err[0] = 0;
	cfg = sg_config_from_json(root, "fuzz.json", err, sizeof(err));
	if (cfg)
		sg_config_free(cfg);
	else
		FZ_CHECK(err[0] != 0);
	json_decref(root);
	return 0;
}
