/* crypto.h - the few primitives the gateway needs, over OpenSSL's libcrypto. */
#ifndef SG_CRYPTO_H
#define SG_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define SG_SHA256_LEN 32

void sg_sha256(const void *data, size_t n, uint8_t out[SG_SHA256_LEN]);
/* HMAC-SHA256 of data under key. Returns 0, or -1 when libcrypto fails or keylen does not
 * fit its int; out is then zeroed, so a caller that ignored the result would still not
 * use stack garbage as a MAC (and the compiler makes ignoring it an error). */
__attribute__((warn_unused_result)) int sg_hmac_sha256(const uint8_t *key, size_t keylen,
                                                       const void *data, size_t n,
                                                       uint8_t out[SG_SHA256_LEN]);
/* Constant-time comparison of two equal-length buffers; 1 when equal. */
int sg_ct_equal(const void *a, const void *b, size_t n);
/* Overwrites a secret with zeros before its memory is freed or goes out of scope. A plain
 * memset there is a dead store the compiler may drop; this one (OPENSSL_cleanse) it may not. */
void sg_wipe(void *p, size_t n);
/* Fills buf from the kernel CSPRNG; 0 on success. */
int sg_random(void *buf, size_t n);

#endif
