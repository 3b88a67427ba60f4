/* crypto.c - see crypto.h. */
#include "crypto.h"

#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

/* SHA256() looks the algorithm up in OpenSSL 3's provider store on every call (a fetch
 * under a lock), which profiled at about a quarter of translating a listing: the digest is
 * fetched once per process and each thread keeps one context to reuse. */
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static pthread_key_t ctx_key;
static EVP_MD *sha256_md;

static void ctx_free(void *p)
{
	EVP_MD_CTX_free(p);
}

static void md_init(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (pthread_key_create(&ctx_key, ctx_free) != 0) {
		EVP_MD_free(sha256_md);
		sha256_md = NULL;
	}
}

void sg_sha256(const void *data, size_t n, uint8_t out[SG_SHA256_LEN])
{
	EVP_MD_CTX *ctx;
	unsigned int len = 0;

	pthread_once(&md_once, md_init);
	ctx = sha256_md ? pthread_getspecific(ctx_key) : NULL;
	if (sha256_md && !ctx) {
		ctx = EVP_MD_CTX_new();
		if (ctx && pthread_setspecific(ctx_key, ctx) != 0) {
			EVP_MD_CTX_free(ctx);
			ctx = NULL;
		}
	}
	if (ctx && EVP_DigestInit_ex(ctx, sha256_md, NULL) == 1 &&
	    EVP_DigestUpdate(ctx, data, n) == 1 && EVP_DigestFinal_ex(ctx, out, &len) == 1 &&
	    len == SG_SHA256_LEN)
		return;
	SHA256(data, n, out); /* out of memory above: the slow path still answers */
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
