/* registry.c - the compiled-in mapping modules. Adding a dialect = one file + one line. */
#include <string.h>

#include "mapping.h"

extern const struct sg_mapping sg_mapping_agentscope;
extern const struct sg_mapping sg_mapping_sandbase;
extern const struct sg_mapping sg_mapping_claude;

const struct sg_mapping *const sg_mappings[] = {
    &sg_mapping_agentscope,
    &sg_mapping_sandbase,
    &sg_mapping_claude,
    NULL,
};

const struct sg_mapping *sg_mapping_find(const char *name)
{
	for (size_t i = 0; sg_mappings[i]; i++)
		if (strcmp(sg_mappings[i]->name, name) == 0)
			return sg_mappings[i];
	return NULL;
}
