/* cursor.h - sealed page cursors.
 *
 * A cursor is "page_" + base64url(payload | tag), where payload is compact JSON chosen by
 * the pager and tag = HMAC-SHA256(secret, "sg-cursor-v1" 0 principal 0 fingerprint 0
 * payload) truncated to 16 bytes. Opening with another principal or another filter
 * fingerprint therefore fails exactly like tampering does. Cursors are not encrypted:
 * the payload holds only what the client has already seen (timestamps, public ids). */
#ifndef SG_CURSOR_H
#define SG_CURSOR_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define SG_CURSOR_MAX 4096 /* longest token accepted, bytes */

/* Returns a new malloc'd token, or NULL when the payload is too large. payload is
 * borrowed. */
char *sg_cursor_seal(const uint8_t *secret, size_t secretlen, const char *principal,
                     const char *fingerprint, const json_t *payload);

/* Returns a new reference to the payload object, or NULL when the token is malformed,
 * tampered with, or sealed for another principal or fingerprint. */
json_t *sg_cursor_open(const uint8_t *secret, size_t secretlen, const char *principal,
                       const char *fingerprint, const char *token);

/* One secret of a rotation (borrowed bytes). */
struct sg_cursor_key {
	const uint8_t *bytes;
	size_t len;
};

/* Like sg_cursor_open, accepting a token sealed with any of keys[0..n-1] (a rotation: the
 * new secret signs, the old ones still open what they sealed). */
json_t *sg_cursor_open_any(const struct sg_cursor_key *keys, size_t n, const char *principal,
                           const char *fingerprint, const char *token);

#endif
