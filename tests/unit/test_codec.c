/* test_codec.c - unit tests of codec.c (base64url, base32, hex), idcodec.c (public ids) and
 * cursor.c (sealed page cursors). */
#include "codec.h"
#include "crypto.h"
#include "cursor.h"
#include "idcodec.h"

#include <check.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CANARY 0xA5

/* A small deterministic generator, so failures reproduce. */
struct rng {
	uint64_t s;
};

static uint8_t rng_byte(struct rng *r)
{
	r->s ^= r->s << 13;
	r->s ^= r->s >> 7;
	r->s ^= r->s << 17;
	return (uint8_t)(r->s >> 24);
}

static void rng_fill(struct rng *r, uint8_t *buf, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		buf[i] = rng_byte(r);
}

/* Expected unpadded lengths, computed independently of the codec. */
static size_t b64_len(size_t n)
{
	static const size_t tail[3] = {0, 2, 3};

	return n / 3 * 4 + tail[n % 3];
}

static size_t b32_len(size_t n)
{
	static const size_t tail[5] = {0, 2, 4, 5, 7};

	return n / 5 * 8 + tail[n % 5];
}

static int all_canary(const void *buf, size_t from, size_t to)
{
	const uint8_t *p = buf;
	size_t i;

	for (i = from; i < to; i++) {
		if (p[i] != CANARY)
			return 0;
	}
	return 1;
}

typedef long (*enc_fn)(const uint8_t *, size_t, char *, size_t);
typedef long (*dec_fn)(const char *, size_t, uint8_t *, size_t);

struct vector {
	const char *raw;
	const char *text;
};

static void check_vectors(const struct vector *v, size_t count, enc_fn enc, dec_fn dec)
{
	char text[64];
	uint8_t raw[64];
	size_t i, rl, tl;

	for (i = 0; i < count; i++) {
		rl = strlen(v[i].raw);
		tl = strlen(v[i].text);
		ck_assert_int_eq(enc((const uint8_t *)v[i].raw, rl, text, tl + 1), (long)tl);
		ck_assert_str_eq(text, v[i].text);
		ck_assert_int_eq(dec(v[i].text, tl, raw, rl), (long)rl);
		ck_assert_mem_eq(raw, v[i].raw, rl);
	}
}

static void check_rejects(const char *const *bad, size_t count, dec_fn dec)
{
	uint8_t out[64];
	size_t i;

	for (i = 0; i < count; i++)
		ck_assert_msg(dec(bad[i], strlen(bad[i]), out, sizeof(out)) == -1,
		              "accepted \"%s\"", bad[i]);
}

/* Every string of `len` symbols that decodes must re-encode to itself, and exactly one
 * string per byte sequence decodes: this pins down the canonical-trailing-bits rule. */
static void check_canonical(const char *alphabet, size_t len, enc_fn enc, dec_fn dec,
                            long expect_valid)
{
	size_t radix = strlen(alphabet), total = 1, k, i, j;
	char in[8], back[16];
	uint8_t out[8];
	long n, valid = 0;

	for (i = 0; i < len; i++)
		total *= radix;
	for (k = 0; k < total; k++) {
		j = k;
		for (i = 0; i < len; i++) {
			in[i] = alphabet[j % radix];
			j /= radix;
		}
		n = dec(in, len, out, sizeof(out));
		if (n < 0)
			continue;
		valid++;
		ck_assert_int_eq(enc(out, (size_t)n, back, sizeof(back)), (long)len);
		ck_assert_mem_eq(back, in, len);
	}
	ck_assert_int_eq(valid, expect_valid);
}

static const char b64_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char b32_alpha[] = "abcdefghijklmnopqrstuvwxyz234567";

/* ---- codec ---------------------------------------------------------------------------- */

START_TEST(test_b64url_vectors)
{
	static const struct vector v[] = {
	    {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
	    {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
	};
	static const uint8_t url[] = {0xfb, 0xff, 0xbf, 0x3e};
	uint8_t raw[8];
	char text[16];

	check_vectors(v, sizeof(v) / sizeof(v[0]), sg_b64url_encode, sg_b64url_decode);
	/* The two characters where base64url differs from base64. */
	ck_assert_int_eq(sg_b64url_encode(url, 4, text, sizeof(text)), 6);
	ck_assert_str_eq(text, "-_-_Pg");
	ck_assert_int_eq(sg_b64url_decode("-_-_Pg", 6, raw, sizeof(raw)), 4);
	ck_assert_mem_eq(raw, url, 4);
}
END_TEST

START_TEST(test_b32_vectors)
{
	static const struct vector v[] = {
	    {"", ""},
	    {"f", "my"},
	    {"fo", "mzxq"},
	    {"foo", "mzxw6"},
	    {"foob", "mzxw6yq"},
	    {"fooba", "mzxw6ytb"},
	    {"foobar", "mzxw6ytboi"},
	};

	check_vectors(v, sizeof(v) / sizeof(v[0]), sg_b32_encode, sg_b32_decode);
}
END_TEST

START_TEST(test_hex_vectors)
{
	static const struct vector v[] = {
	    {"", ""},
	    {"f", "66"},
	    {"fo", "666f"},
	    {"foo", "666f6f"},
	    {"foob", "666f6f62"},
	    {"fooba", "666f6f6261"},
	    {"foobar", "666f6f626172"},
	};
	static const uint8_t all[] = {0x00, 0x19, 0xab, 0xcd, 0xef, 0xff};
	uint8_t raw[8];
	char text[16];

	check_vectors(v, sizeof(v) / sizeof(v[0]), sg_hex_encode, sg_hex_decode);
	ck_assert_int_eq(sg_hex_encode(all, 6, text, sizeof(text)), 12);
	ck_assert_str_eq(text, "0019abcdefff");
	ck_assert_int_eq(sg_hex_decode("0019ABCDEFFF", 12, raw, sizeof(raw)), 6);
	ck_assert_mem_eq(raw, all, 6);
	ck_assert_int_eq(sg_hex_decode("aBcD", 4, raw, sizeof(raw)), 2);
	ck_assert_int_eq(raw[0], 0xab);
	ck_assert_int_eq(raw[1], 0xcd);
}
END_TEST

START_TEST(test_roundtrip_random)
{
	struct rng r = {0x9e3779b97f4a7c15u};
	uint8_t in[300], back[300];
	char text[700];
	size_t n;

	for (n = 0; n <= 300; n++) {
		rng_fill(&r, in, n);

		ck_assert_int_eq(sg_b64url_encode(in, n, text, b64_len(n) + 1), (long)b64_len(n));
		ck_assert_uint_eq(strlen(text), b64_len(n));
		ck_assert_int_eq(sg_b64url_decode(text, b64_len(n), back, n), (long)n);
		ck_assert_mem_eq(back, in, n);

		ck_assert_int_eq(sg_b32_encode(in, n, text, b32_len(n) + 1), (long)b32_len(n));
		ck_assert_uint_eq(strlen(text), b32_len(n));
		ck_assert_int_eq(sg_b32_decode(text, b32_len(n), back, n), (long)n);
		ck_assert_mem_eq(back, in, n);

		ck_assert_int_eq(sg_hex_encode(in, n, text, 2 * n + 1), (long)(2 * n));
		ck_assert_uint_eq(strlen(text), 2 * n);
		ck_assert_int_eq(sg_hex_decode(text, 2 * n, back, n), (long)n);
		ck_assert_mem_eq(back, in, n);
	}
}
END_TEST

START_TEST(test_b64url_rejects)
{
	static const char *const bad[] = {
	    /* characters outside the alphabet, incl. standard base64's + and / */
	    "Zm+v",
	    "Zm/v",
	    "Zm9v Yg",
	    " Zm9v",
	    "Zm9v\n",
	    "Zm.v",
	    "Zm9\xc3\xa9",
	    "Zm*v",
	    /* padding */
	    "Zg==",
	    "Zm8=",
	    "Zg=",
	    "====",
	    "Zm9vYg==",
	    /* lengths that leave a lone symbol */
	    "Z",
	    "Zm9vY",
	    "Zm9vYmFyZ",
	    /* non-canonical trailing bits ("f" is Zg, "fo" is Zm8) */
	    "Zh",
	    "Zv",
	    "Z_",
	    "Zm9",
	    "Zm-",
	    "Zm9vYmF",
	};
	uint8_t out[8];

	check_rejects(bad, sizeof(bad) / sizeof(bad[0]), sg_b64url_decode);
	/* An embedded NUL is a bad character, not a terminator. */
	ck_assert_int_eq(sg_b64url_decode("Zm\0v", 4, out, sizeof(out)), -1);
}
END_TEST

START_TEST(test_b32_rejects)
{
	static const char *const bad[] = {
	    /* upper case, digits 0 1 8 9, other characters */
	    "MY",
	    "mY",
	    "MZXW6",
	    "m0",
	    "m1",
	    "m8",
	    "m9",
	    "mz-q",
	    "mz_q",
	    "my ",
	    "m\xc3\xa9",
	    /* padding */
	    "my======",
	    "my=",
	    "mzxq====",
	    "========",
	    /* lengths 1, 3, 6 mod 8 */
	    "m",
	    "mzx",
	    "mzxw6y",
	    "mzxw6ytbo",
	    "mzxw6ytboiq",
	    /* non-canonical trailing bits ("f" is my, "fo" is mzxq) */
	    "mz",
	    "m7",
	    "mzxr",
	    "mzxw7",
	    "mzxw6yr",
	    "mzxw6ytbop",
	};
	uint8_t out[8];

	check_rejects(bad, sizeof(bad) / sizeof(bad[0]), sg_b32_decode);
	ck_assert_int_eq(sg_b32_decode("my\0\0", 4, out, sizeof(out)), -1);
}
END_TEST

START_TEST(test_hex_rejects)
{
	static const char *const bad[] = {
	    "6", "666", "6g", "g6", "0x66", " 66", "66 ", "6-", "+6", "6\xc3", "==",
	};
	uint8_t out[8];

	check_rejects(bad, sizeof(bad) / sizeof(bad[0]), sg_hex_decode);
	ck_assert_int_eq(sg_hex_decode("6\0", 2, out, sizeof(out)), -1);
}
END_TEST

START_TEST(test_canonical_exhaustive)
{
	check_canonical(b64_alpha, 2, sg_b64url_encode, sg_b64url_decode, 256);
	check_canonical(b64_alpha, 3, sg_b64url_encode, sg_b64url_decode, 65536);
	check_canonical(b32_alpha, 2, sg_b32_encode, sg_b32_decode, 256);
	check_canonical(b32_alpha, 4, sg_b32_encode, sg_b32_decode, 65536);
	check_canonical("0123456789abcdef", 2, sg_hex_encode, sg_hex_decode, 256);
}
END_TEST

START_TEST(test_small_buffers)
{
	struct rng r = {12345};
	uint8_t in[64], back[80];
	char text[2 * 64 + 16];
	size_t n, need[3];
	enc_fn enc[3] = {sg_b64url_encode, sg_b32_encode, sg_hex_encode};
	dec_fn dec[3] = {sg_b64url_decode, sg_b32_decode, sg_hex_decode};
	int k;

	for (n = 0; n <= 64; n++) {
		rng_fill(&r, in, n);
		need[0] = b64_len(n);
		need[1] = b32_len(n);
		need[2] = 2 * n;
		for (k = 0; k < 3; k++) {
			/* no room for the NUL: refused, nothing written */
			memset(text, CANARY, sizeof(text));
			ck_assert_int_eq(enc[k](in, n, text, need[k]), -1);
			ck_assert(all_canary(text, 0, sizeof(text)));
			ck_assert_int_eq(enc[k](in, n, NULL, 0), -1);
			/* exactly enough */
			ck_assert_int_eq(enc[k](in, n, text, need[k] + 1), (long)need[k]);
			ck_assert(all_canary(text, need[k] + 1, sizeof(text)));
			/* decoding into one byte too few: refused, nothing written */
			memset(back, CANARY, sizeof(back));
			if (n > 0) {
				ck_assert_int_eq(dec[k](text, need[k], back, n - 1), -1);
				ck_assert(all_canary(back, 0, sizeof(back)));
				ck_assert_int_eq(dec[k](text, need[k], NULL, 0), -1);
			}
			ck_assert_int_eq(dec[k](text, need[k], back, n), (long)n);
			ck_assert(all_canary(back, n, sizeof(back)));
			ck_assert_mem_eq(back, in, n);
		}
	}
	/* The size documented in codec.h is always enough. */
	ck_assert_int_eq(sg_b64url_encode(in, 64, text, 4 * ((64 + 2) / 3) + 1), 86);
	/* Empty input decodes to nothing even with no buffer. */
	ck_assert_int_eq(sg_b32_decode("", 0, NULL, 0), 0);
}
END_TEST

/* ---- id codec ------------------------------------------------------------------------- */

#define AS_AGENT "0f3c5a7e9b1d4f6a8c2e0b4d6f8a1c3e"
#define AS_SESSION "a1b2c3d4e5f60718293a4b5c6d7e8f90"

static int is_b32_body(const char *s)
{
	for (; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '2' && *s <= '7')))
			return 0;
	}
	return 1;
}

/* Mints an id from a hand-built body, appending the documented check, so that the decoder
 * can be fed layouts the encoder never produces. */
static void mint_raw(const uint8_t *body, size_t n, char *out, size_t outlen)
{
	uint8_t buf[700], digest[SG_SHA256_LEN];

	ck_assert_uint_le(n + 4, sizeof(buf));
	memcpy(buf, body, n);
	sg_sha256(body, n, digest);
	memcpy(buf + n, digest, 4);
	memcpy(out, "sesn_", 5);
	ck_assert_int_ge(sg_b32_encode(buf, n + 4, out + 5, outlen - 5), 0);
}

static void assert_roundtrip(const char *backend, const char *scope, const char *native)
{
	struct sg_pubid id;
	char enc[SG_ID_MAX];
	int n;

	n = sg_id_encode("sesn_", backend, scope, native, enc, sizeof(enc));
	ck_assert_int_gt(n, 5);
	ck_assert_uint_eq(strlen(enc), (size_t)n);
	ck_assert_mem_eq(enc, "sesn_", 5);
	ck_assert_msg(is_b32_body(enc + 5), "body of %s", enc);
	ck_assert_int_eq(sg_id_decode("sesn_", enc, &id), 0);
	ck_assert_str_eq(id.backend, backend);
	ck_assert_str_eq(id.scope, scope);
	ck_assert_str_eq(id.native, native);
}

START_TEST(test_id_roundtrip_packed)
{
	struct sg_pubid id;
	char enc[SG_ID_MAX];

	assert_roundtrip("agentscope", AS_AGENT, AS_SESSION);
	/* 1 + (2+10) + (2+16) + (2+16) + 4 = 53 bytes = 85 base32 characters */
	ck_assert_int_eq(
	    sg_id_encode("sesn_", "agentscope", AS_AGENT, AS_SESSION, enc, sizeof(enc)), 90);
	/* upper-case hex is not packed (it would come back lower case), but still round-trips:
	 * 1 + 12 + (2+32) + 18 + 4 = 69 bytes = 111 characters */
	ck_assert_int_eq(sg_id_encode("sesn_", "agentscope", "0F3C5A7E9B1D4F6A8C2E0B4D6F8A1C3E",
	                              AS_SESSION, enc, sizeof(enc)),
	                 116);
	ck_assert_int_eq(sg_id_decode("sesn_", enc, &id), 0);
	ck_assert_str_eq(id.scope, "0F3C5A7E9B1D4F6A8C2E0B4D6F8A1C3E");
	ck_assert_str_eq(id.native, AS_SESSION);
}
END_TEST

START_TEST(test_id_roundtrip_raw)
{
	static const char *const natives[] = {
	    "sess-42",
	    "a/b/c",
	    "../../etc/passwd",
	    "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac",
	    "abc",
	    "0",
	    "00",
	    "deadbeef",
	    "DEADBEEF",
	    "dEadbeef",
	    "with space",
	    "%2F",
	    "\x01\x7f\xff",
	    "sesn_011CZkZAtmR3yMPDzynEDxu7",
	};
	char big[SG_ID_FIELD_MAX];
	size_t i;

	for (i = 0; i < sizeof(natives) / sizeof(natives[0]); i++) {
		assert_roundtrip("sandbase", "", natives[i]);
		assert_roundtrip("agentscope", AS_AGENT, natives[i]);
		assert_roundtrip("b/\xc3\xa9", natives[i], "x");
	}
	/* the longest field (SG_ID_FIELD_MAX - 1 bytes), raw and packed */
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_roundtrip("sandbase", "", big);
	memset(big, 'a', sizeof(big) - 2);
	big[sizeof(big) - 2] = '\0';
	assert_roundtrip("sandbase", big, "1");
}
END_TEST

START_TEST(test_id_exact_layout)
{
	/* version 1 | raw "sb" | raw "" | packed 0xab 0xcd | check */
	static const uint8_t body[] = {1, 0, 2, 's', 'b', 0, 0, 1, 2, 0xab, 0xcd};
	char want[64], got[64];

	mint_raw(body, sizeof(body), want, sizeof(want));
	ck_assert_int_eq(sg_id_encode("sesn_", "sb", "", "abcd", got, sizeof(got)),
	                 (int)strlen(want));
	ck_assert_str_eq(got, want);
	/* 15 bytes = 24 base32 characters */
	ck_assert_uint_eq(strlen(got), 29);
}
END_TEST

START_TEST(test_id_deterministic)
{
	char a[SG_ID_MAX], b[SG_ID_MAX];

	ck_assert_int_gt(sg_id_encode("sesn_", "agentscope", AS_AGENT, AS_SESSION, a, sizeof(a)),
	                 0);
	ck_assert_int_gt(sg_id_encode("sesn_", "agentscope", AS_AGENT, AS_SESSION, b, sizeof(b)),
	                 0);
	ck_assert_str_eq(a, b);
	/* field boundaries are part of the id */
	ck_assert_int_gt(sg_id_encode("sesn_", "ab", "c", "d", a, sizeof(a)), 0);
	ck_assert_int_gt(sg_id_encode("sesn_", "a", "bc", "d", b, sizeof(b)), 0);
	ck_assert_str_ne(a, b);
	ck_assert_int_gt(sg_id_encode("sesn_", "agentscope", AS_AGENT, AS_SESSION, a, sizeof(a)),
	                 0);
	ck_assert_int_gt(sg_id_encode("sesn_", "agentscope", AS_SESSION, AS_AGENT, b, sizeof(b)),
	                 0);
	ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(test_id_mutations)
{
	static const char extra[] = "ABZ01890=_-+/. \xc3";
	struct sg_pubid id;
	char good[SG_ID_MAX], bad[SG_ID_MAX + 8];
	const char *alphabets[2] = {b32_alpha, extra};
	size_t len, i, k, a;

	len = (size_t)sg_id_encode("sesn_", "agentscope", AS_AGENT, AS_SESSION, good, sizeof(good));
	ck_assert_uint_eq(len, 90);
	/* every single-character change, prefix included */
	for (i = 0; i < len; i++) {
		for (a = 0; a < 2; a++) {
			for (k = 0; alphabets[a][k]; k++) {
				if (alphabets[a][k] == good[i])
					continue;
				memcpy(bad, good, len + 1);
				bad[i] = alphabets[a][k];
				ck_assert_msg(sg_id_decode("sesn_", bad, &id) == -1, "accepted %s",
				              bad);
				ck_assert_str_eq(id.backend, "");
				ck_assert_str_eq(id.native, "");
			}
		}
	}
	/* every truncation */
	for (i = 0; i < len; i++) {
		memcpy(bad, good, i);
		bad[i] = '\0';
		ck_assert_msg(sg_id_decode("sesn_", bad, &id) == -1, "accepted %s", bad);
	}
	/* every extension by one character, and by one to eight 'a's */
	for (k = 0; b32_alpha[k]; k++) {
		memcpy(bad, good, len);
		bad[len] = b32_alpha[k];
		bad[len + 1] = '\0';
		ck_assert_msg(sg_id_decode("sesn_", bad, &id) == -1, "accepted %s", bad);
	}
	memcpy(bad, good, len + 1);
	for (i = 0; i < 8; i++) {
		bad[len + i] = 'a';
		bad[len + i + 1] = '\0';
		ck_assert_msg(sg_id_decode("sesn_", bad, &id) == -1, "accepted %s", bad);
	}
	/* wrong prefix, in either direction */
	ck_assert_int_eq(sg_id_decode("agnt_", good, &id), -1);
	ck_assert_int_eq(sg_id_decode("", good, &id), -1);
	ck_assert_int_eq(sg_id_decode("sesn", good, &id), -1);
	ck_assert_int_eq(sg_id_decode("sesn_a", good, &id), -1);
	ck_assert_int_eq(sg_id_decode("sesn_", good + 5, &id), -1);
	/* sanity: the unmodified id still decodes */
	ck_assert_int_eq(sg_id_decode("sesn_", good, &id), 0);
	ck_assert_str_eq(id.native, AS_SESSION);
}
END_TEST

START_TEST(test_id_foreign_and_garbage)
{
	struct sg_pubid id;
	char big[SG_ID_MAX + 10];

	ck_assert_int_eq(sg_id_decode("sesn_", "sesn_011CZkZAtmR3yMPDzynEDxu7", &id), -1);
	ck_assert_int_eq(sg_id_decode("sesn_", "sesn_011czkzatmr3ympdzynedxu7", &id), -1);
	ck_assert_int_eq(sg_id_decode("sesn_", "", &id), -1);
	ck_assert_int_eq(sg_id_decode("sesn_", "sesn_", &id), -1);
	ck_assert_int_eq(sg_id_decode("sesn_", "sesn_aaaaaaaaaaaaaaaaaaaaaaaa", &id), -1);
	ck_assert_int_eq(sg_id_decode("sesn_", NULL, &id), -1);
	ck_assert_int_eq(sg_id_decode(NULL, "sesn_aa", &id), -1);
	ck_assert_int_eq(sg_id_decode("sesn_", "sesn_aa", NULL), -1);
	/* longer than SG_ID_MAX allows */
	memcpy(big, "sesn_", 5);
	memset(big + 5, 'a', sizeof(big) - 6);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(sg_id_decode("sesn_", big, &id), -1);
}
END_TEST

START_TEST(test_id_bad_layouts)
{
	/* each has a valid check; only the layout is wrong */
	static const struct {
		uint8_t body[16];
		size_t n;
	} cases[] = {
	    {{2, 0, 1, 'b', 0, 0, 0, 1, 'n'}, 9},          /* unknown version */
	    {{1, 0, 1, 'b', 0, 0, 0, 1, 'n', 0}, 10},      /* trailing byte */
	    {{1, 0, 1, 'b', 0, 0, 0, 1}, 8},               /* native's bytes missing */
	    {{1, 0, 1, 'b', 0, 0}, 6},                     /* native missing */
	    {{1, 2, 1, 'b', 0, 0, 0, 1, 'n'}, 9},          /* unknown kind */
	    {{1, 0, 1, 'b', 1, 0, 0, 1, 'n'}, 9},          /* packed, empty */
	    {{1, 0, 2, 'a', 'b', 0, 0, 0, 1, 'n'}, 10},    /* raw but packable */
	    {{1, 0, 3, 'b', 0, 'c', 0, 0, 0, 1, 'n'}, 11}, /* raw with NUL */
	    {{1, 0, 0, 0, 0, 0, 1, 'n'}, 8},               /* empty backend */
	    {{1, 0, 1, 'b', 0, 0, 0, 0}, 8},               /* empty native */
	    {{1, 0, 9, 'b', 0, 0, 0, 1, 'n'}, 9},          /* length past the end */
	};
	static const uint8_t ok[] = {1, 0, 1, 'b', 0, 0, 1, 1, 0x5e};
	struct sg_pubid id;
	char enc[128];
	size_t i;

	mint_raw(ok, sizeof(ok), enc, sizeof(enc));
	ck_assert_int_eq(sg_id_decode("sesn_", enc, &id), 0);
	ck_assert_str_eq(id.backend, "b");
	ck_assert_str_eq(id.scope, "");
	ck_assert_str_eq(id.native, "5e");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mint_raw(cases[i].body, cases[i].n, enc, sizeof(enc));
		ck_assert_msg(sg_id_decode("sesn_", enc, &id) == -1, "case %zu accepted", i);
	}
}
END_TEST

START_TEST(test_id_encode_limits)
{
	char f[SG_ID_FIELD_MAX + 1], out[SG_ID_MAX + 400];
	int n;

	memset(f, 'x', SG_ID_FIELD_MAX);
	f[SG_ID_FIELD_MAX] = '\0';
	/* a field of SG_ID_FIELD_MAX bytes is refused in every position, raw or packable */
	ck_assert_int_eq(sg_id_encode("sesn_", f, "", "n", out, sizeof(out)), -1);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(sg_id_encode("sesn_", "b", f, "n", out, sizeof(out)), -1);
	ck_assert_int_eq(sg_id_encode("sesn_", "b", "", f, out, sizeof(out)), -1);
	memset(f, 'a', SG_ID_FIELD_MAX);
	ck_assert_int_eq(sg_id_encode("sesn_", "b", "", f, out, sizeof(out)), -1);
	/* one byte shorter is accepted */
	f[SG_ID_FIELD_MAX - 1] = '\0';
	ck_assert_int_gt(sg_id_encode("sesn_", "b", "", f, out, sizeof(out)), 0);
	/* three maximal raw fields would exceed SG_ID_MAX: refused even with a big buffer */
	memset(f, 'x', SG_ID_FIELD_MAX - 1);
	ck_assert_int_eq(sg_id_encode("sesn_", f, f, f, out, sizeof(out)), -1);
	/* empty backend or native, NULL arguments */
	ck_assert_int_eq(sg_id_encode("sesn_", "", "s", "n", out, sizeof(out)), -1);
	ck_assert_int_eq(sg_id_encode("sesn_", "b", "s", "", out, sizeof(out)), -1);
	ck_assert_int_eq(sg_id_encode("sesn_", "b", NULL, "n", out, sizeof(out)), -1);
	ck_assert_int_eq(sg_id_encode(NULL, "b", "s", "n", out, sizeof(out)), -1);
	ck_assert_int_eq(sg_id_encode("sesn_", "b", "s", "n", NULL, 0), -1);
	/* output buffer: exact fit works, one byte less is refused without overflow */
	n = sg_id_encode("sesn_", "agentscope", AS_AGENT, AS_SESSION, out, sizeof(out));
	ck_assert_int_eq(n, 90);
	memset(out, CANARY, sizeof(out));
	ck_assert_int_eq(sg_id_encode("sesn_", "agentscope", AS_AGENT, AS_SESSION, out, 90), -1);
	ck_assert_int_eq(out[0], '\0');
	ck_assert(all_canary(out, 1, sizeof(out)));
	ck_assert_int_eq(sg_id_encode("sesn_", "agentscope", AS_AGENT, AS_SESSION, out, 91), 90);
	ck_assert(all_canary(out, 91, sizeof(out)));
	/* a prefix that alone fills the buffer */
	ck_assert_int_eq(sg_id_encode("sesn_", "b", "s", "n", out, 5), -1);
}
END_TEST

/* ---- cursor --------------------------------------------------------------------------- */

static const uint8_t secret[] = "correct horse battery staple";
#define SECRET_LEN (sizeof(secret) - 1)
#define PRINCIPAL "key_team_a"
#define FPRINT "f:statuses=running;order=desc"

/* Builds a token by hand from raw payload bytes exactly as cursor.h specifies. Returns a
 * malloc'd string. */
static char *hand_token(const uint8_t *key, size_t keylen, const char *principal,
                        const char *fingerprint, const char *payload, size_t plen)
{
	uint8_t msg[8192], mac[SG_SHA256_LEN], blob[8192];
	size_t n = 0, pl = strlen(principal), fl = strlen(fingerprint);
	size_t cap = 5 + (plen + 16) * 4 / 3 + 8;
	char *tok;

	ck_assert_uint_le(13 + pl + 1 + fl + 1 + plen, sizeof(msg));
	memcpy(msg, "sg-cursor-v1", 12);
	n = 12;
	msg[n++] = 0;
	memcpy(msg + n, principal, pl);
	n += pl;
	msg[n++] = 0;
	memcpy(msg + n, fingerprint, fl);
	n += fl;
	msg[n++] = 0;
	memcpy(msg + n, payload, plen);
	n += plen;
	ck_assert_int_eq(sg_hmac_sha256(key, keylen, msg, n, mac), 0);
	memcpy(blob, payload, plen);
	memcpy(blob + plen, mac, 16);
	tok = malloc(cap);
	ck_assert_ptr_nonnull(tok);
	memcpy(tok, "page_", 5);
	ck_assert_int_ge(sg_b64url_encode(blob, plen + 16, tok + 5, cap - 5), 0);
	return tok;
}

static json_t *sample_payload(void)
{
	json_t *p = json_pack("{s:{s:s,s:s},s:i,s:f,s:[i,s,n,b],s:s,s:{}}", "after", "created_at",
	                      "2025-01-02T03:04:05.123456Z", "id", "sesn_abc", "limit", 20, "x",
	                      1.25, "arr", -3, "two", 1, "u", "caf\xc3\xa9 \xe2\x9c\x93", "empty");

	ck_assert_ptr_nonnull(p);
	return p;
}

/* A rotation: the new secret seals, every listed one opens; a secret no longer listed does
 * not, and neither does an empty list. */
START_TEST(test_cursor_several_secrets)
{
	static const uint8_t a[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	static const uint8_t b[] = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
	const struct sg_cursor_key ba[] = {{b, 32}, {a, 32}}, only_b[] = {{b, 32}};
	json_t *p = sample_payload(), *q;
	char *under_a = sg_cursor_seal(a, 32, PRINCIPAL, FPRINT, p);
	char *under_b = sg_cursor_seal(b, 32, PRINCIPAL, FPRINT, p);

	ck_assert_ptr_nonnull(under_a);
	ck_assert_ptr_nonnull(under_b);
	q = sg_cursor_open_any(ba, 2, PRINCIPAL, FPRINT, under_a);
	ck_assert_ptr_nonnull(q);
	ck_assert(json_equal(p, q));
	json_decref(q);
	q = sg_cursor_open_any(ba, 2, PRINCIPAL, FPRINT, under_b);
	ck_assert_ptr_nonnull(q);
	json_decref(q);
	ck_assert_ptr_null(sg_cursor_open_any(only_b, 1, PRINCIPAL, FPRINT, under_a));
	ck_assert_ptr_null(sg_cursor_open_any(ba, 0, PRINCIPAL, FPRINT, under_a));
	/* the other bindings still hold under every secret */
	ck_assert_ptr_null(sg_cursor_open_any(ba, 2, "mallory", FPRINT, under_a));
	ck_assert_ptr_null(sg_cursor_open_any(ba, 2, PRINCIPAL, "other", under_a));
	free(under_a);
	free(under_b);
	json_decref(p);
}
END_TEST

START_TEST(test_cursor_roundtrip)
{
	json_t *p = sample_payload(), *q;
	char *tok;

	tok = sg_cursor_seal(secret, SECRET_LEN, PRINCIPAL, FPRINT, p);
	ck_assert_ptr_nonnull(tok);
	ck_assert_mem_eq(tok, "page_", 5);
	q = sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, FPRINT, tok);
	ck_assert_ptr_nonnull(q);
	ck_assert(json_equal(p, q));
	ck_assert_int_eq(json_integer_value(json_object_get(q, "limit")), 20);
	ck_assert_int_eq(q->refcount, 1);
	/* seal borrows the payload */
	ck_assert_int_eq(p->refcount, 1);
	json_decref(q);
	json_decref(p);
	free(tok);
}
END_TEST

START_TEST(test_cursor_exact_and_deterministic)
{
	json_t *a = json_object(), *b = json_object();
	char *ta, *tb, *want;
	const char *compact = "{\"a\":\"x\",\"b\":1}";

	json_object_set_new(a, "b", json_integer(1));
	json_object_set_new(a, "a", json_string("x"));
	json_object_set_new(b, "a", json_string("x"));
	json_object_set_new(b, "b", json_integer(1));
	ta = sg_cursor_seal(secret, SECRET_LEN, PRINCIPAL, FPRINT, a);
	tb = sg_cursor_seal(secret, SECRET_LEN, PRINCIPAL, FPRINT, b);
	want = hand_token(secret, SECRET_LEN, PRINCIPAL, FPRINT, compact, strlen(compact));
	ck_assert_ptr_nonnull(ta);
	ck_assert_ptr_nonnull(tb);
	ck_assert_str_eq(ta, want);
	ck_assert_str_eq(tb, want);
	/* 15 payload bytes + 16 tag bytes = 31 bytes = 42 characters */
	ck_assert_uint_eq(strlen(ta), 47);
	free(want);
	free(ta);
	free(tb);
	json_decref(a);
	json_decref(b);
}
END_TEST

START_TEST(test_cursor_tamper_chars)
{
	static const char extra[] = "=+/. !\xc3";
	json_t *p = sample_payload(), *q;
	const char *alphabets[2] = {b64_alpha, extra};
	char *tok, *bad;
	size_t len, i, k, a;

	tok = sg_cursor_seal(secret, SECRET_LEN, PRINCIPAL, FPRINT, p);
	ck_assert_ptr_nonnull(tok);
	len = strlen(tok);
	bad = malloc(len + 1);
	ck_assert_ptr_nonnull(bad);
	for (i = 0; i < len; i++) {
		for (a = 0; a < 2; a++) {
			for (k = 0; alphabets[a][k]; k++) {
				if (alphabets[a][k] == tok[i])
					continue;
				memcpy(bad, tok, len + 1);
				bad[i] = alphabets[a][k];
				q = sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, FPRINT, bad);
				ck_assert_msg(q == NULL, "accepted change at %zu", i);
			}
		}
	}
	/* truncations */
	for (i = 0; i < len; i++) {
		memcpy(bad, tok, i);
		bad[i] = '\0';
		ck_assert_ptr_null(sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, FPRINT, bad));
	}
	free(bad);
	free(tok);
	json_decref(p);
}
END_TEST

START_TEST(test_cursor_tamper_bytes)
{
	json_t *p = sample_payload();
	uint8_t blob[SG_CURSOR_MAX];
	char *tok, bad[SG_CURSOR_MAX + 1];
	long n;
	size_t i;
	int bit;

	tok = sg_cursor_seal(secret, SECRET_LEN, PRINCIPAL, FPRINT, p);
	ck_assert_ptr_nonnull(tok);
	n = sg_b64url_decode(tok + 5, strlen(tok) - 5, blob, sizeof(blob));
	ck_assert_int_gt(n, 16);
	memcpy(bad, "page_", 5);
	for (i = 0; i < (size_t)n; i++) {
		for (bit = 0; bit < 8; bit++) {
			blob[i] ^= (uint8_t)(1u << bit);
			ck_assert_int_ge(
			    sg_b64url_encode(blob, (size_t)n, bad + 5, sizeof(bad) - 5), 0);
			ck_assert_msg(sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, FPRINT, bad) ==
			                  NULL,
			              "accepted flip of byte %zu bit %d", i, bit);
			blob[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* unflipped, re-encoded: still good */
	ck_assert_int_ge(sg_b64url_encode(blob, (size_t)n, bad + 5, sizeof(bad) - 5), 0);
	ck_assert_str_eq(bad, tok);
	free(tok);
	json_decref(p);
}
END_TEST

START_TEST(test_cursor_wrong_context)
{
	static const uint8_t other[] = "correct horse battery stapleX";
	json_t *p = sample_payload(), *q;
	char *tok;

	tok = sg_cursor_seal(secret, SECRET_LEN, PRINCIPAL, FPRINT, p);
	ck_assert_ptr_nonnull(tok);
	ck_assert_ptr_null(sg_cursor_open(secret, SECRET_LEN, "key_team_b", FPRINT, tok));
	ck_assert_ptr_null(sg_cursor_open(secret, SECRET_LEN, "", FPRINT, tok));
	ck_assert_ptr_null(sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, "f:order=asc", tok));
	ck_assert_ptr_null(sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, "", tok));
	ck_assert_ptr_null(sg_cursor_open(other, sizeof(other) - 1, PRINCIPAL, FPRINT, tok));
	ck_assert_ptr_null(sg_cursor_open(secret, SECRET_LEN - 1, PRINCIPAL, FPRINT, tok));
	ck_assert_ptr_null(sg_cursor_open(secret, 0, PRINCIPAL, FPRINT, tok));
	ck_assert_ptr_null(sg_cursor_open(NULL, SECRET_LEN, PRINCIPAL, FPRINT, tok));
	ck_assert_ptr_null(sg_cursor_open(secret, SECRET_LEN, NULL, FPRINT, tok));
	ck_assert_ptr_null(sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, NULL, tok));
	/* moving a byte between principal and fingerprint changes the tag */
	ck_assert_ptr_null(sg_cursor_open(secret, SECRET_LEN, "key_team_", "a" FPRINT, tok));
	free(tok);
	/* the same boundary, sealed the other way */
	tok = sg_cursor_seal(secret, SECRET_LEN, "ab", "c", p);
	ck_assert_ptr_nonnull(tok);
	ck_assert_ptr_null(sg_cursor_open(secret, SECRET_LEN, "a", "bc", tok));
	q = sg_cursor_open(secret, SECRET_LEN, "ab", "c", tok);
	ck_assert_ptr_nonnull(q);
	ck_assert(json_equal(p, q));
	json_decref(q);
	free(tok);
	json_decref(p);
}
END_TEST

START_TEST(test_cursor_garbage)
{
	static const char *const bad[] = {
	    "",          "page_",     "page",
	    "page_!!!!", "page_AAAA", "page_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	    "page_e30",  "Page_e30",  " page_e30",
	    "sesn_e30",
	};
	json_t *p = sample_payload();
	char *tok;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, FPRINT, bad[i]) == NULL,
		              "accepted \"%s\"", bad[i]);
	ck_assert_ptr_null(sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, FPRINT, NULL));
	/* a valid token without its prefix, or with another */
	tok = sg_cursor_seal(secret, SECRET_LEN, PRINCIPAL, FPRINT, p);
	ck_assert_ptr_nonnull(tok);
	ck_assert_ptr_null(sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, FPRINT, tok + 5));
	memcpy(tok, "PAGE_", 5);
	ck_assert_ptr_null(sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, FPRINT, tok));
	memcpy(tok, "page-", 5);
	ck_assert_ptr_null(sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, FPRINT, tok));
	free(tok);
	json_decref(p);
}
END_TEST

/* Payload {"p":"qqq…"} with a string of `len` bytes; the compact JSON is len + 8 bytes. */
static json_t *padded_payload(size_t len, char **json_out)
{
	char *s = malloc(len + 1);
	json_t *p;

	ck_assert_ptr_nonnull(s);
	memset(s, 'q', len);
	s[len] = '\0';
	p = json_pack("{s:s}", "p", s);
	ck_assert_ptr_nonnull(p);
	free(s);
	*json_out = json_dumps(p, JSON_COMPACT);
	ck_assert_ptr_nonnull(*json_out);
	ck_assert_uint_eq(strlen(*json_out), len + 8);
	return p;
}

START_TEST(test_cursor_size_limit)
{
	json_t *p, *q;
	char *tok, *json;

	/* 3044 + 8 + 16 = 3068 bytes = 4091 characters: exactly SG_CURSOR_MAX with the prefix */
	p = padded_payload(3044, &json);
	tok = sg_cursor_seal(secret, SECRET_LEN, PRINCIPAL, FPRINT, p);
	ck_assert_ptr_nonnull(tok);
	ck_assert_uint_eq(strlen(tok), SG_CURSOR_MAX);
	q = sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, FPRINT, tok);
	ck_assert_ptr_nonnull(q);
	ck_assert(json_equal(p, q));
	json_decref(q);
	free(tok);
	free(json);
	json_decref(p);

	/* one byte more does not fit: seal refuses, and a hand-made token with a valid tag is
	 * refused by open for its length alone */
	p = padded_payload(3045, &json);
	ck_assert_ptr_null(sg_cursor_seal(secret, SECRET_LEN, PRINCIPAL, FPRINT, p));
	tok = hand_token(secret, SECRET_LEN, PRINCIPAL, FPRINT, json, strlen(json));
	ck_assert_uint_eq(strlen(tok), SG_CURSOR_MAX + 1);
	ck_assert_ptr_null(sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, FPRINT, tok));
	free(tok);
	free(json);
	json_decref(p);

	/* far over the limit */
	p = padded_payload(10000, &json);
	ck_assert_ptr_null(sg_cursor_seal(secret, SECRET_LEN, PRINCIPAL, FPRINT, p));
	free(json);
	json_decref(p);
}
END_TEST

START_TEST(test_cursor_valid_tag_bad_payload)
{
	static const char *const payloads[] = {
	    "[1,2]",
	    "\"page\"",
	    "42",
	    "null",
	    "true",
	    "{\"a\":1} x",
	    "{\"a\":1}{}",
	    "{\"a\":1",
	    "{\"a\":1,\"a\":2}",
	    "not json",
	    "{}\n\n[",
	    "\xff\xfe",
	    "{\"a\":\"\\u0000\"}",
	};
	json_t *q;
	char *tok;
	size_t i;

	/* the hand-made construction itself is right: an object opens */
	tok = hand_token(secret, SECRET_LEN, PRINCIPAL, FPRINT, "{\"a\":1}", 7);
	q = sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, FPRINT, tok);
	ck_assert_ptr_nonnull(q);
	ck_assert_int_eq(json_integer_value(json_object_get(q, "a")), 1);
	ck_assert_uint_eq(json_object_size(q), 1);
	json_decref(q);
	free(tok);
	for (i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		tok = hand_token(secret, SECRET_LEN, PRINCIPAL, FPRINT, payloads[i],
		                 strlen(payloads[i]));
		ck_assert_msg(sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, FPRINT, tok) == NULL,
		              "accepted payload %s", payloads[i]);
		free(tok);
	}
	/* a payload shorter than "{}": tag only, and one byte */
	tok = hand_token(secret, SECRET_LEN, PRINCIPAL, FPRINT, "", 0);
	ck_assert_ptr_null(sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, FPRINT, tok));
	free(tok);
	tok = hand_token(secret, SECRET_LEN, PRINCIPAL, FPRINT, "{", 1);
	ck_assert_ptr_null(sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, FPRINT, tok));
	free(tok);
}
END_TEST

START_TEST(test_cursor_seal_refuses)
{
	json_t *arr = json_array(), *obj = json_object(), *back;
	char longctx[1026], *tok;

	ck_assert_ptr_null(sg_cursor_seal(secret, SECRET_LEN, PRINCIPAL, FPRINT, arr));
	ck_assert_ptr_null(sg_cursor_seal(secret, SECRET_LEN, PRINCIPAL, FPRINT, NULL));
	ck_assert_ptr_null(sg_cursor_seal(secret, 0, PRINCIPAL, FPRINT, obj));
	ck_assert_ptr_null(sg_cursor_seal(NULL, SECRET_LEN, PRINCIPAL, FPRINT, obj));
	ck_assert_ptr_null(sg_cursor_seal(secret, SECRET_LEN, NULL, FPRINT, obj));
	ck_assert_ptr_null(sg_cursor_seal(secret, SECRET_LEN, PRINCIPAL, NULL, obj));
	/* principal and fingerprint are bounded at 1024 bytes each */
	memset(longctx, 'p', sizeof(longctx) - 1);
	longctx[sizeof(longctx) - 1] = '\0';
	ck_assert_ptr_null(sg_cursor_seal(secret, SECRET_LEN, longctx, FPRINT, obj));
	ck_assert_ptr_null(sg_cursor_seal(secret, SECRET_LEN, PRINCIPAL, longctx, obj));
	longctx[1024] = '\0';
	tok = sg_cursor_seal(secret, SECRET_LEN, longctx, longctx, obj);
	ck_assert_ptr_nonnull(tok);
	back = sg_cursor_open(secret, SECRET_LEN, longctx, longctx, tok);
	ck_assert_ptr_nonnull(back);
	ck_assert(json_equal(back, obj));
	json_decref(back);
	free(tok);
	json_decref(arr);
	json_decref(obj);
}
END_TEST

/* ---- HMAC, and cursors when libcrypto fails ------------------------------------------ */

/* test_codec links with -Wl,--wrap=HMAC, so libsg's calls to HMAC() land here. With
 * hmac_broken set, libcrypto "fails" the way it reports failure: NULL, md untouched. */
unsigned char *__real_HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                           const unsigned char *data, size_t data_len, unsigned char *md,
                           unsigned int *md_len);
unsigned char *__wrap_HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                           const unsigned char *data, size_t data_len, unsigned char *md,
                           unsigned int *md_len);
static int hmac_broken;

unsigned char *__wrap_HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                           const unsigned char *data, size_t data_len, unsigned char *md,
                           unsigned int *md_len)
{
	if (hmac_broken)
		return NULL;
	return __real_HMAC(evp_md, key, key_len, data, data_len, md, md_len);
}

/* RFC 4231 test case 2, and a key length libcrypto's int cannot carry. */
START_TEST(test_hmac_vectors)
{
	static const char want[] =
	    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
	uint8_t mac[SG_SHA256_LEN];
	char hex[2 * SG_SHA256_LEN + 1];
	const char *data = "what do ya want for nothing?";

	ck_assert_int_eq(sg_hmac_sha256((const uint8_t *)"Jefe", 4, data, strlen(data), mac), 0);
	ck_assert_int_eq(sg_hex_encode(mac, sizeof(mac), hex, sizeof(hex)), 64);
	ck_assert_str_eq(hex, want);
	/* refused before libcrypto reads the key: the length would wrap to a negative int */
	memset(mac, 0xAA, sizeof(mac));
	ck_assert_int_eq(
	    sg_hmac_sha256((const uint8_t *)"Jefe", (size_t)INT_MAX + 1, data, strlen(data), mac),
	    -1);
	for (size_t i = 0; i < sizeof(mac); i++)
		ck_assert_uint_eq(mac[i], 0);
}
END_TEST

/* sg_wipe zeroes exactly the bytes it is given and tolerates nothing to wipe. */
START_TEST(test_wipe)
{
	uint8_t buf[40];

	memset(buf, 0xAA, sizeof(buf));
	sg_wipe(buf + 4, 32);
	for (size_t i = 0; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], i >= 4 && i < 36 ? 0 : 0xAA);
	sg_wipe(NULL, 0);
	sg_wipe(NULL, 8);
	sg_wipe(buf, 0);
	ck_assert_uint_eq(buf[0], 0xAA);
}
END_TEST

/* When libcrypto fails, sg_hmac_sha256 says so and leaves no stale MAC behind, nothing is
 * sealed, and a valid token does not open (it would otherwise be checked against whatever
 * the MAC buffer held). */
START_TEST(test_cursor_hmac_failure)
{
	json_t *p = sample_payload(), *q;
	uint8_t mac[SG_SHA256_LEN];
	char *tok = sg_cursor_seal(secret, SECRET_LEN, PRINCIPAL, FPRINT, p);

	ck_assert_ptr_nonnull(tok);
	hmac_broken = 1;
	memset(mac, 0xAA, sizeof(mac));
	ck_assert_int_eq(sg_hmac_sha256(secret, SECRET_LEN, "x", 1, mac), -1);
	for (size_t i = 0; i < sizeof(mac); i++)
		ck_assert_uint_eq(mac[i], 0);
	ck_assert_ptr_null(sg_cursor_seal(secret, SECRET_LEN, PRINCIPAL, FPRINT, p));
	ck_assert_ptr_null(sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, FPRINT, tok));
	hmac_broken = 0;
	q = sg_cursor_open(secret, SECRET_LEN, PRINCIPAL, FPRINT, tok);
	ck_assert_ptr_nonnull(q);
	ck_assert(json_equal(p, q));
	json_decref(q);
	json_decref(p);
	free(tok);
}
END_TEST

/* Synthetic event ids: "sevt_" + 24 hex of SHA-256 over the seed, and seeds of
 * length-prefixed fields, byte for byte what the modules have always hashed. */
START_TEST(test_event_id)
{
	struct sg_id_seed seed = {0};
	char id[SG_EVENT_ID_LEN + 1], again[SG_EVENT_ID_LEN + 1];
	size_t i;

	sg_event_id("abc", 3, id);
	ck_assert_str_eq(id, "sevt_ba7816bf8f01cfea414140de");
	ck_assert_uint_eq(strlen(id), SG_EVENT_ID_LEN);

	ck_assert_int_eq(sg_id_seed_str(&seed, "sb1"), 0);
	ck_assert_int_eq(sg_id_seed_str(&seed, NULL), 0);
	ck_assert_int_eq(sg_id_seed_add(&seed, "a\0b", 3), 0);
	ck_assert_int_eq(sg_id_seed_uint(&seed, 1234567890123ULL), 0);
	ck_assert_uint_eq(seed.len, 28);
	ck_assert_mem_eq(seed.p, "3:sb10:3:a\0b13:1234567890123", 28);
	/* reused from len 0, and grown past its first allocation */
	seed.len = 0;
	for (i = 0; i < 100; i++)
		ck_assert_int_eq(sg_id_seed_str(&seed, "0123456789"), 0);
	ck_assert_uint_eq(seed.len, 1300);
	sg_event_id(seed.p, seed.len, id);
	sg_event_id(seed.p, seed.len, again);
	ck_assert_str_eq(id, again);
	sg_id_seed_free(&seed);
	ck_assert_ptr_null(seed.p);
	sg_id_seed_free(&seed);
}
END_TEST

static Suite *codec_suite(void)
{
	Suite *s = suite_create("codec");
	TCase *tc;

	tc = tcase_create("codec");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_b64url_vectors);
	tcase_add_test(tc, test_b32_vectors);
	tcase_add_test(tc, test_hex_vectors);
	tcase_add_test(tc, test_roundtrip_random);
	tcase_add_test(tc, test_b64url_rejects);
	tcase_add_test(tc, test_b32_rejects);
	tcase_add_test(tc, test_hex_rejects);
	tcase_add_test(tc, test_canonical_exhaustive);
	tcase_add_test(tc, test_small_buffers);
	suite_add_tcase(s, tc);

	tc = tcase_create("idcodec");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_id_roundtrip_packed);
	tcase_add_test(tc, test_id_roundtrip_raw);
	tcase_add_test(tc, test_id_exact_layout);
	tcase_add_test(tc, test_id_deterministic);
	tcase_add_test(tc, test_id_mutations);
	tcase_add_test(tc, test_id_foreign_and_garbage);
	tcase_add_test(tc, test_id_bad_layouts);
	tcase_add_test(tc, test_id_encode_limits);
	tcase_add_test(tc, test_event_id);
	suite_add_tcase(s, tc);

	tc = tcase_create("cursor");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_cursor_roundtrip);
	tcase_add_test(tc, test_cursor_several_secrets);
	tcase_add_test(tc, test_cursor_exact_and_deterministic);
	tcase_add_test(tc, test_cursor_tamper_chars);
	tcase_add_test(tc, test_cursor_tamper_bytes);
	tcase_add_test(tc, test_cursor_wrong_context);
	tcase_add_test(tc, test_cursor_garbage);
	tcase_add_test(tc, test_cursor_size_limit);
	tcase_add_test(tc, test_cursor_valid_tag_bad_payload);
	tcase_add_test(tc, test_cursor_seal_refuses);
	tcase_add_test(tc, test_hmac_vectors);
	tcase_add_test(tc, test_wipe);
	tcase_add_test(tc, test_cursor_hmac_failure);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(codec_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
