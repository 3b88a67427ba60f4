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
 * The backend enforces who may see what (identity comes from the key), not the id.
 *
 * Event ids the gateway synthesises (an AgentScope message log has none, SandBase has no span
 * events) are minted here too, from a seed the module builds out of where the event comes
 * from, so the same source always gives the same id, on every page and every instance. */
#ifndef SG_IDCODEC_H
#define SG_IDCODEC_H

#include <stddef.h>
#include <stdint.h>

#define SG_ID_FIELD_MAX 200 /* bytes per decoded field, NUL included */
#define SG_ID_MAX 640       /* bytes of an encoded id, NUL included */

struct sg_pubid {
	char backend[SG_ID_FIELD_MAX];
	char scope[SG_ID_FIELD_MAX]; /* may be empty */
	char native[SG_ID_FIELD_MAX];
};

/* Writes prefix ("sesn_") + base32 body into out. Returns length, or -1 when a field is
 * too long (≥ SG_ID_FIELD_MAX) or out is too small. */
int sg_id_encode(const char *prefix, const char *backend, const char *scope, const char *native,
                 char *out, size_t outlen);

/* Decodes an id minted by sg_id_encode with the same prefix. Returns 0, or -1 for anything
 * else (wrong prefix, bad base32, bad check, bad layout, trailing bytes). */
int sg_id_decode(const char *prefix, const char *id, struct sg_pubid *out);

/* "sevt_" + 24 lowercase hex characters. */
#define SG_EVENT_ID_HEX 24
#define SG_EVENT_ID_LEN (5 + SG_EVENT_ID_HEX)

/* A synthetic event id: "sevt_" + the first SG_EVENT_ID_HEX hex characters of SHA-256 over
 * seed (len bytes) into out (SG_EVENT_ID_LEN + 1 bytes, NUL-terminated). The same seed gives
 * the same id; a module that changes how it builds its seeds changes every id it has shown. */
void sg_event_id(const void *seed, size_t len, char out[SG_EVENT_ID_LEN + 1]);

/* A seed built of fields, each written "<length>:<bytes>", so that no two tuples of fields
 * share an encoding whatever bytes they hold. Start from {0}; reuse by setting len to 0; free
 * p with sg_id_seed_free(). */
struct sg_id_seed {
	char *p;
	size_t len, cap;
};

/* Appends one field of n bytes (p may hold anything, NULs included); sg_id_seed_str a C
 * string (NULL reads as ""), sg_id_seed_uint a number in decimal. Return 0, or -1 when out of
 * memory (the seed is then unchanged). */
int sg_id_seed_add(struct sg_id_seed *s, const void *p, size_t n);
int sg_id_seed_str(struct sg_id_seed *s, const char *str);
int sg_id_seed_uint(struct sg_id_seed *s, uint64_t v);
void sg_id_seed_free(struct sg_id_seed *s);

#endif
