/* auth.h - API keys → principals.
 *
 * Keys are configured as SHA-256 hashes; a presented key is hashed and compared with
 * every configured hash in constant time (all of them, so the time taken says nothing
 * about which one matched). The key itself is never stored or logged. */
#ifndef SG_AUTH_H
#define SG_AUTH_H

#include "config.h"

/* The presented key: x-api-key when present (SandBase's precedence), else the token of
 * "Authorization: Bearer <token>" (scheme case-insensitive). Returns a pointer into one of
 * the arguments (borrowed), or NULL when neither carries a key. */
const char *sg_auth_extract(const char *x_api_key, const char *authorization);

/* The configured key matching `presented`, or NULL. */
const struct sg_key *sg_auth_lookup(const struct sg_config *cfg, const char *presented);

#endif
