/* cursor.c - see cursor.h. */
#include "cursor.h"

#include "codec.h"
#include "crypto.h"

#include <stdlib.h>
#include <string.h>

#define CURSOR_PREFIX "page_"
#define CURSOR_PREFIX_LEN (sizeof(CURSOR_PREFIX) - 1)
#define TAG_DOMAIN "sg-cursor-v1"
#define TAG_DOMAIN_LEN (sizeof(TAG_DOMAIN) - 1)
#define TAG_LEN 16
/* Every blob a token of at most SG_CURSOR_MAX characters can carry fits here. */
#define BLOB_MAX (SG_CURSOR_MAX * 3 / 4)
/* Longest principal or fingerprint bound into a tag, bytes. */
#define CONTEXT_MAX 1024
/* Longest secret, bytes; libcrypto takes the key length as an int. */
#define SECRET_MAX 4096

/* Computes the truncated tag over the domain, principal, fingerprint and payload. Fails on
 * an absent or empty secret (which would make cursors forgeable), on oversized input and
 * when libcrypto fails. */
static int compute_tag(const uint8_t *secret, size_t secretlen, const char *principal,
                       const char *fingerprint, const uint8_t *payload, size_t plen,
                       uint8_t tag[TAG_LEN])
{
	uint8_t mac[SG_SHA256_LEN];
	uint8_t *msg = NULL;
	size_t prlen, fplen, len = 0;
	int rc = -1;

	if (!secret || secretlen == 0 || secretlen > SECRET_MAX || !principal || !fingerprint)
		goto fail;
	prlen = strnlen(principal, CONTEXT_MAX + 1);
	fplen = strnlen(fingerprint, CONTEXT_MAX + 1);
	if (prlen > CONTEXT_MAX || fplen > CONTEXT_MAX || plen > BLOB_MAX)
		goto fail;
	msg = malloc(TAG_DOMAIN_LEN + 1 + prlen + 1 + fplen + 1 + plen);
	if (!msg)
		goto fail;
	memcpy(msg + len, TAG_DOMAIN, TAG_DOMAIN_LEN);
	len += TAG_DOMAIN_LEN;
	msg[len++] = 0;
	memcpy(msg + len, principal, prlen);
	len += prlen;
	msg[len++] = 0;
	memcpy(msg + len, fingerprint, fplen);
	len += fplen;
	msg[len++] = 0;
	memcpy(msg + len, payload, plen);
	len += plen;
	/* A MAC libcrypto could not compute must neither seal nor open anything. */
	if (sg_hmac_sha256(secret, secretlen, msg, len, mac) < 0)
		goto fail;
	memcpy(tag, mac, TAG_LEN);
	rc = 0;
fail:
	free(msg);
	return rc;
}

/* payload is borrowed and must be an object. Keys are sorted so that equal payloads give
 * equal tokens; a token longer than SG_CURSOR_MAX is never minted, since it could not be
 * opened. */
char *sg_cursor_seal(const uint8_t *secret, size_t secretlen, const char *principal,
                     const char *fingerprint, const json_t *payload)
{
	uint8_t blob[BLOB_MAX];
	char *json = NULL, *token = NULL, *body;
	size_t jlen, blen, tlen;

	if (!json_is_object(payload))
		goto fail;
	json = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
	if (!json)
		goto fail;
	jlen = strlen(json);
	if (jlen > BLOB_MAX - TAG_LEN)
		goto fail;
	blen = jlen + TAG_LEN;
	tlen = CURSOR_PREFIX_LEN + (blen * 4 + 2) / 3;
	if (tlen > SG_CURSOR_MAX)
		goto fail;
	memcpy(blob, json, jlen);
	if (compute_tag(secret, secretlen, principal, fingerprint, blob, jlen, blob + jlen) < 0)
		goto fail;
	token = malloc(tlen + 1);
	if (!token)
		goto fail;
	memcpy(token, CURSOR_PREFIX, CURSOR_PREFIX_LEN);
	body = token + CURSOR_PREFIX_LEN;
	if (sg_b64url_encode(blob, blen, body, tlen + 1 - CURSOR_PREFIX_LEN) < 0)
		goto fail;
	free(json);
	return token;
fail:
	free(token);
	free(json);
	return NULL;
}

/* Returns a new reference. The tag is checked before the payload is parsed, so jansson
 * only ever sees bytes this gateway wrote. Every key is tried, so how long the answer takes
 * says nothing about which one matched. */
json_t *sg_cursor_open_any(const struct sg_cursor_key *keys, size_t n, const char *principal,
                           const char *fingerprint, const char *token)
{
	uint8_t blob[BLOB_MAX];
	uint8_t tag[TAG_LEN];
	json_t *obj = NULL;
	size_t tlen, plen;
	long blen;
	int ok = 0;

	if (!token || n == 0)
		goto fail;
	tlen = strnlen(token, SG_CURSOR_MAX + 1);
	if (tlen > SG_CURSOR_MAX || tlen < CURSOR_PREFIX_LEN ||
	    memcmp(token, CURSOR_PREFIX, CURSOR_PREFIX_LEN) != 0)
		goto fail;
	blen = sg_b64url_decode(token + CURSOR_PREFIX_LEN, tlen - CURSOR_PREFIX_LEN, blob,
	                        sizeof(blob));
	if (blen < TAG_LEN + 2)
		goto fail;
	plen = (size_t)blen - TAG_LEN;
	for (size_t i = 0; i < n; i++)
		if (compute_tag(keys[i].bytes, keys[i].len, principal, fingerprint, blob, plen,
		                tag) == 0 &&
		    sg_ct_equal(tag, blob + plen, TAG_LEN))
			ok = 1;
	if (!ok)
		goto fail;
	obj = json_loadb((const char *)blob, plen, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(obj))
		goto fail;
	return obj;
fail:
	json_decref(obj);
	return NULL;
}

json_t *sg_cursor_open(const uint8_t *secret, size_t secretlen, const char *principal,
                       const char *fingerprint, const char *token)
{
	struct sg_cursor_key k = {secret, secretlen};

	return sg_cursor_open_any(&k, 1, principal, fingerprint, token);
}
