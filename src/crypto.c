/* crypto.c - see crypto.h. */
#include "crypto.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

void sg_sha256(const void *data, size_t n, uint8_t out[SG_SHA256_LEN])
{
	SHA256(data, n, out);
}

int sg_hmac_sha256(const uint8_t *key, size_t keylen, const void *data, size_t n,
                   uint8_t out[SG_SHA256_LEN])
{
	unsigned int len = 0;

	if (keylen > INT_MAX)
		goto fail;
	if (!HMAC(EVP_sha256(), key, (int)keylen, data, n, out, &len) || len != SG_SHA256_LEN)
		goto fail;
	return 0;
fail:
	memset(out, 0, SG_SHA256_LEN);
	return -1;
}

int sg_ct_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

void sg_wipe(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

int sg_random(void *buf, size_t n)
{
	return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}
