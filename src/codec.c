/* codec.c - see codec.h.
 *
 * All three encodings are the same machine: a bit accumulator that emits one symbol per
 * `width` bits (6 for base64url, 5 for base32, 4 for hex). Only the alphabets differ, so
 * the length rules and the canonical-trailing-bits rule are written once. */
#include "codec.h"

#include <limits.h>

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char b32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char hex_alphabet[] = "0123456789abcdef";

/* Symbol value of c in base64url, or -1. Written as ranges rather than a 256-entry table
 * so that the accepted set is obvious to a reader. */
static int b64url_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Lowercase only: accepting upper case would give one id several spellings. */
static int b32_value(int c)
{
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

int sg_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Encodes n bytes as ceil(8n/width) symbols plus a NUL. The size is checked before the
 * first write, so a short buffer is never touched. */
static long encode(const char *alphabet, unsigned width, const uint8_t *in, size_t n, char *out,
                   size_t outlen)
{
	unsigned mask = (1u << width) - 1;
	unsigned acc = 0, bits = 0;
	size_t need, i, j = 0;

	if (n > (size_t)LONG_MAX / 8 || (n && !in))
		return -1;
	need = (n * 8 + width - 1) / width;
	if (!out || outlen < need + 1)
		return -1;
	for (i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= width) {
			bits -= width;
			out[j++] = alphabet[(acc >> bits) & mask];
		}
		acc &= (1u << bits) - 1;
	}
	if (bits)
		out[j++] = alphabet[(acc << (width - bits)) & mask];
	out[j] = '\0';
	return (long)j;
}

/* Decodes n symbols into floor(n*width/8) bytes. A valid length leaves fewer than `width`
 * bits over (otherwise the last symbol carried no byte at all), and those bits must be
 * zero: the encoder writes zeros there, so anything else is a second spelling of the same
 * bytes and is refused. */
static long decode(int (*value)(int), unsigned width, const char *in, size_t n, uint8_t *out,
                   size_t outlen)
{
	unsigned acc = 0, bits = 0;
	size_t need, i, j = 0;
	int v;

	if (n > (size_t)LONG_MAX / 8 || (n && !in))
		return -1;
	need = n * width / 8;
	if (n * width % 8 >= width)
		return -1;
	if (need && (!out || outlen < need))
		return -1;
	for (i = 0; i < n; i++) {
		v = value((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = (acc << width) | (unsigned)v;
		bits += width;
		if (bits >= 8) {
			bits -= 8;
			out[j++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)
		return -1;
	return (long)j;
}

long sg_b64url_encode(const uint8_t *in, size_t n, char *out, size_t outlen)
{
	return encode(b64url_alphabet, 6, in, n, out, outlen);
}

long sg_b64url_decode(const char *in, size_t n, uint8_t *out, size_t outlen)
{
	return decode(b64url_value, 6, in, n, out, outlen);
}

long sg_b32_encode(const uint8_t *in, size_t n, char *out, size_t outlen)
{
	return encode(b32_alphabet, 5, in, n, out, outlen);
}

long sg_b32_decode(const char *in, size_t n, uint8_t *out, size_t outlen)
{
	return decode(b32_value, 5, in, n, out, outlen);
}

long sg_hex_encode(const uint8_t *in, size_t n, char *out, size_t outlen)
{
	return encode(hex_alphabet, 4, in, n, out, outlen);
}

long sg_hex_decode(const char *in, size_t n, uint8_t *out, size_t outlen)
{
	return decode(sg_hex_digit, 4, in, n, out, outlen);
}
