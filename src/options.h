/* options.h - helpers for mapping modules' init() and check_identity(): reading and checking
 * a backend's "options" object and a key's identity object, with errors that name the key. */
#ifndef SG_OPTIONS_H
#define SG_OPTIONS_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

/* The first key of obj (borrowed) that is neither in `allowed` (NULL-terminated) nor a
 * comment (a key starting with '_'), or NULL. */
const char *sg_options_unknown(const json_t *obj, const char *const *allowed);
/* Refuses option keys not in `allowed` (NULL-terminated); keys starting with '_' are
 * comments. Returns 0, or -1 naming the key in err. */
int sg_options_check(const json_t *options, const char *const *allowed, struct sg_error *err);
/* An integer option in [lo, hi] into *out, left alone when absent. Returns 0 or -1. */
int sg_option_int(const json_t *options, const char *name, long lo, long hi, long *out,
                  struct sg_error *err);
/* A string option that may be a secret: the value, or for "$NAME" the environment
 * variable's (borrowed; valid while options and the environment are). Returns NULL, with
 * a message naming the option in err, when absent, empty, unset, longer than maxlen or
 * holding a line break (it goes into a header). */
const char *sg_option_secret(const json_t *options, const char *name, size_t maxlen,
                             struct sg_error *err);
/* A backend credential given either inline (`name`, as sg_option_secret) or as a file
 * (`file_name`: a path, read now, one trailing line break trimmed; how an operator rotates
 * it with a reload). Copies it into out (outlen bytes, NUL-terminated). Returns 0, or -1 with
 * a message naming the option, never its value, in err: neither or both given, an unreadable
 * or empty file, longer than outlen - 1 bytes or holding a line break. Reads a file: call it
 * from init(), never on a worker's loop. */
int sg_option_secret_or_file(const json_t *options, const char *name, const char *file_name,
                             char *out, size_t outlen, struct sg_error *err);
/* check_identity() for routes that carry no identity of their own: only {}. */
int sg_identity_none(const json_t *identity, struct sg_error *err);

#endif
