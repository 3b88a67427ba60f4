/* auth.c - see auth.h. */
#include "auth.h"

#include <string.h>
#include <strings.h>

#include "crypto.h"

#define SG_KEY_MAX 1024

const char *sg_auth_extract(const char *x_api_key, const char *authorization)
{
	if (x_api_key) {
		while (*x_api_key == ' ' || *x_api_key == '\t')
			x_api_key++;
		return *x_api_key ? x_api_key : NULL;
	}
	if (authorization && strncasecmp(authorization, "bearer", 6) == 0 &&
	    (authorization[6] == ' ' || authorization[6] == '\t')) {
		const char *t = authorization + 7;

		while (*t == ' ' || *t == '\t')
			t++;
		return *t ? t : NULL;
	}
	return NULL;
}

const struct sg_key *sg_auth_lookup(const struct sg_config *cfg, const char *presented)
{
	uint8_t h[SG_SHA256_LEN];
	const struct sg_key *found = NULL;
	size_t n;

	if (!presented)
		return NULL;
	n = strnlen(presented, SG_KEY_MAX + 1);
	/* Trailing whitespace is never part of a key (header values may carry it). */
	while (n > 0 && (presented[n - 1] == ' ' || presented[n - 1] == '\t'))
		n--;
	if (n == 0 || n > SG_KEY_MAX)
		return NULL;
	sg_sha256(presented, n, h);
	for (size_t i = 0; i < cfg->nkeys; i++)
		if (sg_ct_equal(h, cfg->keys[i].sha256, SG_SHA256_LEN))
			found = &cfg->keys[i];
	return found;
}
