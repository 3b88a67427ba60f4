/* idcodec.h - public ids that carry their own route.
 *
 * A public id encodes (backend name, scope, native id) reversibly and statelessly, so a
 * retrieve needs no table: for AgentScope the scope is the agent id (every backend call
 * needs it) and the native id the backend's session id. Layout, before base32:
 *
 *   version(1) | field × 3 | check(4)
 *   field = kind(1: 0 raw, 1 packed lowercase hex) | len(1) | bytes
 *
 * check = first 4 bytes of SHA-256 over everything before it: it catches garbled and
 * truncated ids without a secret, so ids survive a rotation of the cursor secret.
 * The backend enforces who may see what (identity comes from the key), not the id. */
#ifndef SG_IDCODEC_H
#define SG_IDCODEC_H

#include <stddef.h>

#define SG_ID_FIELD_MAX 200 /* bytes per decoded field, NUL included */
#define SG_ID_MAX 640       /* bytes of an encoded id, NUL included */

struct sg_pubid {
	char backend[SG_ID_FIELD_MAX];
	char scope[SG_ID_FIELD_MAX];  /* may be empty */
	char native[SG_ID_FIELD_MAX];
};

/* Writes prefix ("sesn_") + base32 body into out. Returns length, or -1 when a field is
 * too long (≥ SG_ID_FIELD_MAX) or out is too small. */
int sg_id_encode(const char *prefix, const char *backend, const char *scope, const char *native,
		 char *out, size_t outlen);

/* Decodes an id minted by sg_id_encode with the same prefix. Returns 0, or -1 for anything
 * else (wrong prefix, bad base32, bad check, bad layout, trailing bytes). */
int sg_id_decode(const char *prefix, const char *id, struct sg_pubid *out);

#endif
