/* jsonx.h - the small jansson readers, text clippers and error wordings that the translation
 * modules (the mappings/ translators and agentscope_events.c) and the core's normaliser and error
 * table share, so that each rule ("an id is a non-empty string without NUL", "a quoted value
 * never splits a UTF-8 character", "a wrong shape is a 502 naming the backend") is written
 * once.
 *
 * Pure: no I/O, no clock, no state. Ownership is stated at every function that takes or
 * returns a json_t *; "borrowed" values are only read. */
#ifndef SG_JSONX_H
#define SG_JSONX_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* ---- reading ---- */

/* The C string of obj[key] (borrowed from obj, which is borrowed), or NULL when obj is not an
 * object, the key is absent or its value is not a string. */
const char *sg_jstr(const json_t *obj, const char *key);

/* 1 when a and b are both non-NULL and equal. */
int sg_streq(const char *a, const char *b);

/* 1 when the JSON string s (borrowed) holds a NUL byte, which C code would silently cut short;
 * 0 for anything else, non-strings included. */
int sg_jhas_nul(const json_t *s);

/* 1 when v (borrowed, may be NULL) is a non-empty JSON string without NUL bytes: what any id,
 * name or cursor must be. */
int sg_jis_id(const json_t *v);

/* 1 when v (borrowed, may be NULL) is there and not JSON null. */
int sg_jpresent(const json_t *v);

/* ---- building ---- */

/* An exact copy of the JSON string s (borrowed; embedded NULs included): a new reference, or
 * NULL when out of memory. */
json_t *sg_jstr_copy(const json_t *s);

/* The RFC 3339 UTC form of us (sg_time_format) as a JSON string. Returns -1 (*out NULL) when us
 * is outside the years 0001..9999; 0 otherwise, with *out a new reference, or NULL when out of
 * memory. */
int sg_jtime(int64_t us, json_t **out);

/* The object that JSON text (len bytes, not NUL-terminated) holds: a new reference. Text that
 * is not JSON or holds anything but an object gives a new {} (a tool input a model streamed
 * badly is read as no input). NULL only when out of memory. */
json_t *sg_jparse_object(const char *text, size_t len);

/* ---- quoting ---- */

/* Length of the longest prefix of s (NUL-terminated), at most max bytes, that does not split a
 * UTF-8 sequence: `"%.*s", sg_utf8_cut(s, 64), s` quotes a value without making a message
 * invalid UTF-8. */
int sg_utf8_cut(const char *s, size_t max);

/* Copies at most max bytes of s (n bytes, may be NULL) into out as text that is safe inside an
 * error message: control characters become spaces; with utf8 set, s must be valid UTF-8 (it
 * came from jansson) and is cut only between characters; without it, every non-ASCII byte
 * becomes '?' (raw bodies can hold anything). out needs max + 1 bytes. Returns out. */
const char *sg_clip(const char *s, size_t n, size_t max, int utf8, char *out);

/* ---- errors ---- */

/* A backend answered something its mapping cannot read: a 502 api_error "backend 'NAME':
 * <where><what>", so an operator can tell which upstream answered garbage. `where` locates the
 * item ("sessions[3]: ", "session 'sess_1': "), or is "" or NULL. Always returns -1. */
int sg_err_backend(struct sg_error *err, const char *backend, const char *where, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
int sg_err_vbackend(struct sg_error *err, const char *backend, const char *where, const char *fmt,
                    va_list ap);

/* Out of memory while translating an answer of backend: a 500. Always returns -1. */
int sg_err_oom(struct sg_error *err, const char *backend);

#endif
