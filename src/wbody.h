/* wbody.h - the bodies of the north write requests, validated before anything reaches a
 * backend: SessionCreateParams, SessionUpdateParams and EventSendParams of @anthropic-ai/sdk
 * 1.10.0 (resources/beta/sessions/{sessions,events}.d.ts), as const tables in wbody.c.
 *
 * Strict where the SDK is: a key the type does not declare, a missing required key, a value
 * of the wrong JSON type or outside its enum, more items than the API allows: each is a 400
 * invalid_request_error whose message names the field by its path ("events[1].content[0].
 * text: required"). What a type allows but a backend cannot do is the module's to refuse.
 * Pure: no I/O, no state. */
#ifndef SG_WBODY_H
#define SG_WBODY_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

#define SG_WBODY_MAX_EVENTS 50   /* events in one send (and initial_events on create) */
#define SG_WBODY_MAX_METADATA 16 /* metadata pairs */
#define SG_WBODY_MAX_KEY 64      /* bytes of a metadata key */
#define SG_WBODY_MAX_VALUE 512   /* bytes of a metadata value */

enum sg_wbody_kind {
	SG_WBODY_CREATE, /* POST /v1/sessions */
	SG_WBODY_UPDATE, /* POST /v1/sessions/{id} */
	SG_WBODY_EVENTS, /* POST /v1/sessions/{id}/events */
};

/* Parses a request body (len bytes, need not be NUL-terminated) and validates it as `kind`.
 * Returns the parsed body (new reference), or NULL with a 400 in err: not JSON (with the
 * position), not an object, or a field that breaks the type (named by its path). An empty
 * body is `{}` for UPDATE (the SDK sends no body when there is nothing to change) and an
 * error for the others. */
json_t *sg_wbody_parse(enum sg_wbody_kind kind, const char *body, size_t len, struct sg_error *err);

#endif
