/* berror.h - a backend's error answer → the north error it deserves, in one place for every
 * backend.
 *
 * Two steps. A reader turns the non-2xx body into a struct sg_backend_said (mapping.h): the
 * core's reader below knows the common shapes, and a module whose dialect says more (a type
 * with a special meaning, proof that the body is the backend's own) supplies its own
 * read_error, usually this one plus a few lines. Then one status table turns (status, said,
 * backend) into the north status, error type, x-should-retry and message; no module has a
 * table of its own. The rules, row by row, are in docs/compatibility.md ("Backend error
 * answers"); test_berror checks each row.
 *
 * Pure: no I/O, no clock, no state. */
#ifndef SG_BERROR_H
#define SG_BERROR_H

#include <stddef.h>

#include "error.h"
#include "mapping.h"

/* The core's reader of an error body (len bytes, need not be NUL-terminated; may be NULL).
 * Clears *out, then fills what the body says, in these shapes:
 *   {"type":"error","error":{type,message}}, {"error":{type,message}}, {"error":"…"},
 *   FastAPI's {"detail":"…"}, {"detail":[{msg}]}, {"detail":{message}},
 *   {"code", "message"} and a top-level message (a top-level type other than "error");
 *   anything else is quoted raw as the message (non-ASCII and control bytes replaced).
 * `own` is set when the body is JSON in one of those shapes; the status is not read. */
void sg_berror_read(long status, const char *body, size_t len, struct sg_backend_said *out);

/* The one status table: the north error for a non-2xx answer of `backend` (its name, for the
 * message; NULL reads as "?") with status `status`, which its reader understood as `said`.
 * Sets every field of *err (err may be NULL). */
void sg_berror_north(long status, const struct sg_backend_said *said, const char *backend,
                     struct sg_error *err);

/* Both steps: reads the body with the mapping's read_error (the core's reader when it has none
 * or m is NULL), then applies the table. */
void sg_berror(const struct sg_mapping *m, long status, const char *body, size_t len,
               const char *backend, struct sg_error *err);

#endif
