/* codec.h - byte/text encodings used by ids and cursors. Pure, no allocation. */
#ifndef SG_CODEC_H
#define SG_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* Unpadded base64url (RFC 4648 §5). Returns chars written (excluding NUL) or -1 if out is
 * too small. out needs 4*ceil(n/3)+1 bytes. */
long sg_b64url_encode(const uint8_t *in, size_t n, char *out, size_t outlen);
/* Decodes unpadded base64url; rejects any other character, padding, and non-canonical
 * trailing bits. Returns bytes written or -1. */
long sg_b64url_decode(const char *in, size_t n, uint8_t *out, size_t outlen);

/* Lowercase unpadded base32 (RFC 4648 alphabet a-z2-7). Same conventions as above. */
long sg_b32_encode(const uint8_t *in, size_t n, char *out, size_t outlen);
long sg_b32_decode(const char *in, size_t n, uint8_t *out, size_t outlen);

/* Lowercase hex. sg_hex_decode accepts upper and lower case; returns bytes or -1. */
long sg_hex_encode(const uint8_t *in, size_t n, char *out, size_t outlen);
long sg_hex_decode(const char *in, size_t n, uint8_t *out, size_t outlen);

/* The value of one hex digit (either case), or -1. */
int sg_hex_digit(int c);

#endif
