/* sse.h - an incremental reader of Server-Sent Events (the WHATWG event-stream format).
 *
 * Fed the pieces of an upstream body as they arrive (any split, even inside a line or a
 * CRLF), it hands over one message per blank line: the `event`, `data` (several data lines
 * joined with "\n") and `id` fields, and each comment line (":…") as a message of its own so
 * a caller can see heartbeats. A leading UTF-8 BOM is skipped; lines end with \n, \r\n or
 * \r; one space after the colon is dropped; unknown fields (retry:, …) are ignored, and so is
 * an id holding a NUL byte (as the WHATWG parser does). A blank line dispatches the message
 * only when it had an event, data or id field; a message the body ends before its blank line
 * is never dispatched. Each piece is scanned once and only an unfinished line is copied, so a
 * long line arriving byte by byte costs linear time. Pure: no I/O, no clock, no globals. */
#ifndef SG_SSE_H
#define SG_SSE_H

#include <stddef.h>

struct sg_sse_msg {
	int comment;       /* 1: a comment line; its text in data (after the ":", spaces kept) */
	const char *event; /* NULL when the message had no event field */
	size_t event_len;
	const char *data; /* NULL when the message had no data field */
	size_t data_len;
	const char *id; /* NULL when the message had no id field */
	size_t id_len;
};

/* Returns 0 to go on, or nonzero to stop: sg_sse_feed() then returns that value at once
 * without touching the reader again, so the callback may have freed it (e.g. the consumer,
 * which owns the reader, is gone). The strings are valid during the callback only; each is
 * NUL-terminated (data may also hold NULs: use the lengths). */
typedef int (*sg_sse_cb)(const struct sg_sse_msg *m, void *arg);

struct sg_sse;

/* A reader whose messages (all fields together) and lines may not exceed max_bytes. NULL when
 * out of memory. */
struct sg_sse *sg_sse_new(size_t max_bytes);
/* Feeds len bytes. Returns 0; the callback's nonzero value when it stopped the reader;
 * SG_SSE_TOO_LARGE when a line or message exceeded max_bytes; SG_SSE_NOMEM. After a
 * nonzero return the reader must only be freed. */
#define SG_SSE_TOO_LARGE (-1000)
#define SG_SSE_NOMEM (-1001)
int sg_sse_feed(struct sg_sse *p, const char *data, size_t len, sg_sse_cb cb, void *arg);
void sg_sse_free(struct sg_sse *p);

#endif
