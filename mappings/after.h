/* after.h - failing a call whose write has already taken effect.
 *
 * A module often has more to do after the backend applied a write: read the session back,
 * fetch an agent snapshot, send the initial events. If that fails, the north client must not
 * be told to retry (the SDK would send the write again: a second session, a second message),
 * and should be told what did take effect, so it can look instead. These two helpers say so,
 * for every module alike. */
#ifndef SG_AFTER_H
#define SG_AFTER_H

#include <jansson.h>

#include "call.h"
#include "error.h"

/* Ends the call with err's reason, prefixed by `what` took effect ("session sesn_… was created,
 * but reading it back failed"), x-should-retry false. The status is err's when it is 4xx other
 * than 404, or 5xx; otherwise (a 404 of the read, or no status) 502. err is overwritten. */
void sg_after_fail(struct sg_call *call, const char *what, struct sg_error *err);

/* Reads the answer to a fetch made after the write took effect, as sg_call_json() does: the
 * parsed body of a 2xx answer (new), or NULL after failing the call through sg_after_fail()
 * with the reason sg_call_json() would have given. */
json_t *sg_after_json(struct sg_call *call, const char *what, const struct sg_fetch_res *res);

#endif
