/* idcodec.c - see idcodec.h.
 *
 * Every id has exactly one spelling: a field is packed exactly when it is non-empty,
 * even-length lowercase hex, and the decoder refuses the other form, so the same
 * (backend, scope, native) always yields the same id and no two ids name the same thing. */
#include "idcodec.h"

#include "codec.h"
#include "crypto.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_VERSION 1
#define KIND_RAW 0
#define KIND_HEX 1
#define CHECK_LEN 4
#define FIELD_COUNT 3
/* Largest body before base32: version, three maximal raw fields, check. */
#define BODY_MAX (1 + FIELD_COUNT * (2 + (SG_ID_FIELD_MAX - 1)) + CHECK_LEN)

/* Whether s (len bytes) can be stored as half as many bytes and restored identically. */
static int is_packable(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len % 2)
		return 0;
	for (i = 0; i < len; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

/* Appends one field to body at *pos; body has room for BODY_MAX bytes. */
static int put_field(uint8_t *body, size_t *pos, const char *s)
{
	size_t len = strnlen(s, SG_ID_FIELD_MAX);
	long n;

	if (len >= SG_ID_FIELD_MAX)
		return -1;
	if (is_packable(s, len)) {
		body[*pos] = KIND_HEX;
		n = sg_hex_decode(s, len, body + *pos + 2, len / 2);
		if (n < 0)
			return -1;
		body[*pos + 1] = (uint8_t)n;
		*pos += 2 + (size_t)n;
		return 0;
	}
	body[*pos] = KIND_RAW;
	body[*pos + 1] = (uint8_t)len;
	memcpy(body + *pos + 2, s, len);
	*pos += 2 + len;
	return 0;
}

/* Reads one field from body[*pos..end) into dst (SG_ID_FIELD_MAX bytes), refusing any
 * encoding put_field would not have produced. */
static int get_field(const uint8_t *body, size_t end, size_t *pos, char *dst)
{
	size_t kind, len;

	if (end - *pos < 2)
		return -1;
	kind = body[*pos];
	len = body[*pos + 1];
	*pos += 2;
	if (end - *pos < len)
		return -1;
	if (kind == KIND_HEX) {
		if (len == 0 || 2 * len >= SG_ID_FIELD_MAX)
			return -1;
		if (sg_hex_encode(body + *pos, len, dst, SG_ID_FIELD_MAX) < 0)
			return -1;
	} else if (kind == KIND_RAW) {
		if (len >= SG_ID_FIELD_MAX || memchr(body + *pos, '\0', len))
			return -1;
		if (is_packable((const char *)body + *pos, len))
			return -1;
		memcpy(dst, body + *pos, len);
		dst[len] = '\0';
	} else {
		return -1;
	}
	*pos += len;
	return 0;
}

/* Ids longer than SG_ID_MAX are refused even when out is larger, so that every id this
 * function mints is one sg_id_decode accepts. Backend and native must be non-empty. */
int sg_id_encode(const char *prefix, const char *backend, const char *scope, const char *native,
                 char *out, size_t outlen)
{
	uint8_t body[BODY_MAX];
	uint8_t digest[SG_SHA256_LEN];
	size_t pos = 0, plen, limit;
	long blen;

	if (!out || outlen == 0)
		return -1;
	out[0] = '\0';
	if (!prefix || !backend || !scope || !native || !backend[0] || !native[0])
		return -1;
	body[pos++] = ID_VERSION;
	if (put_field(body, &pos, backend) < 0 || put_field(body, &pos, scope) < 0 ||
	    put_field(body, &pos, native) < 0)
		return -1;
	sg_sha256(body, pos, digest);
	memcpy(body + pos, digest, CHECK_LEN);
	pos += CHECK_LEN;

	limit = outlen < SG_ID_MAX ? outlen : SG_ID_MAX;
	plen = strnlen(prefix, limit);
	if (plen >= limit)
		return -1;
	blen = sg_b32_encode(body, pos, out + plen, limit - plen);
	if (blen < 0)
		return -1;
	memcpy(out, prefix, plen);
	return (int)(plen + (size_t)blen);
}

int sg_id_decode(const char *prefix, const char *id, struct sg_pubid *out)
{
	uint8_t body[BODY_MAX];
	uint8_t digest[SG_SHA256_LEN];
	size_t plen, idlen, end, pos = 1;
	long n;

	if (!out)
		return -1;
	memset(out, 0, sizeof(*out));
	if (!prefix || !id)
		return -1;
	idlen = strnlen(id, SG_ID_MAX);
	plen = strnlen(prefix, SG_ID_MAX);
	if (idlen >= SG_ID_MAX || plen > idlen || memcmp(id, prefix, plen) != 0)
		goto fail;
	n = sg_b32_decode(id + plen, idlen - plen, body, sizeof(body));
	if (n < 1 + FIELD_COUNT * 2 + CHECK_LEN || body[0] != ID_VERSION)
		goto fail;
	end = (size_t)n - CHECK_LEN;
	sg_sha256(body, end, digest);
	if (!sg_ct_equal(digest, body + end, CHECK_LEN))
		goto fail;
	if (get_field(body, end, &pos, out->backend) < 0 ||
	    get_field(body, end, &pos, out->scope) < 0 ||
	    get_field(body, end, &pos, out->native) < 0 || pos != end)
		goto fail;
	if (!out->backend[0] || !out->native[0])
		goto fail;
	return 0;
fail:
	memset(out, 0, sizeof(*out));
	return -1;
}

void sg_event_id(const void *seed, size_t len, char out[SG_EVENT_ID_LEN + 1])
{
	uint8_t md[SG_SHA256_LEN];

	sg_sha256(seed, len, md);
	memcpy(out, "sevt_", 5);
	/* 12 bytes are 24 hex characters and their NUL: it always fits. */
	sg_hex_encode(md, SG_EVENT_ID_HEX / 2, out + 5, SG_EVENT_ID_LEN + 1 - 5);
}

/* Makes room for n more bytes. */
static int seed_reserve(struct sg_id_seed *s, size_t n)
{
	size_t cap = s->cap ? s->cap : 256;
	char *np;

	if (n > SIZE_MAX / 2 - s->len)
		return -1;
	if (s->len + n <= s->cap)
		return 0;
	while (cap < s->len + n)
		cap *= 2;
	np = realloc(s->p, cap);
	if (!np)
		return -1;
	s->p = np;
	s->cap = cap;
	return 0;
}

int sg_id_seed_add(struct sg_id_seed *s, const void *p, size_t n)
{
	char head[24];
	int k = snprintf(head, sizeof(head), "%zu:", n);

	if (k < 0 || seed_reserve(s, (size_t)k + n) < 0)
		return -1;
	memcpy(s->p + s->len, head, (size_t)k);
	if (n)
		memcpy(s->p + s->len + (size_t)k, p, n);
	s->len += (size_t)k + n;
	return 0;
}

int sg_id_seed_str(struct sg_id_seed *s, const char *str)
{
	return sg_id_seed_add(s, str ? str : "", str ? strlen(str) : 0);
}

int sg_id_seed_uint(struct sg_id_seed *s, uint64_t v)
{
	char num[24];
	int k = snprintf(num, sizeof(num), "%" PRIu64, v);

	return sg_id_seed_add(s, num, (size_t)k);
}

void sg_id_seed_free(struct sg_id_seed *s)
{
	free(s->p);
	s->p = NULL;
	s->len = s->cap = 0;
}
