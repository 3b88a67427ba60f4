/* sse.c - see sse.h.
 *
 * One pass over each byte: a piece is scanned once for line ends, and only a line that a
 * piece leaves unfinished is copied (appended to the partial line, whose buffer doubles), so
 * a long line that arrives a byte at a time costs O(n), never O(n²). Lines that lie whole
 * inside one piece are read in place. The three field buffers are kept (and reused) across
 * messages, so a steady stream allocates nothing once they have grown to its largest
 * message. */
#include "sse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A growable byte string, always NUL-terminated once it has memory. */
struct buf {
	char *p;
	size_t len, cap;
};

#define BOM_DONE 3 /* the BOM is skipped, or the stream did not start with one */

struct sg_sse {
	size_t max;
	struct buf line; /* the line the previous piece left unfinished */
	struct buf event, data, id;
	int has_event, has_data, has_id;
	int cr;  /* the last line ended with \r, so a \n first in the next piece belongs to it */
	int bom; /* bytes of the UTF-8 BOM matched so far, or BOM_DONE */
	int rc;  /* SG_SSE_TOO_LARGE or SG_SSE_NOMEM once failed: returned by every later feed */
};

static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};

/* Room for len + n bytes and the NUL. Returns 0, or -1 when out of memory. */
static int buf_room(struct buf *b, size_t n)
{
	size_t want = b->len + n + 1, cap = b->cap ? b->cap : 64;
	char *p;

	if (want <= b->cap)
		return 0;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	p = realloc(b->p, cap);
	if (!p)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int buf_add(struct buf *b, const char *s, size_t n)
{
	if (buf_room(b, n))
		return -1;
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int buf_set(struct buf *b, const char *s, size_t n)
{
	b->len = 0;
	return buf_add(b, s, n);
}

/* The text of a field that is there: its buffer, or "" when it never needed memory. */
static const char *text(const struct buf *b)
{
	return b->p ? b->p : "";
}

struct sg_sse *sg_sse_new(size_t max_bytes)
{
	struct sg_sse *p = calloc(1, sizeof(*p));

	if (p)
		p->max = max_bytes;
	return p;
}

void sg_sse_free(struct sg_sse *p)
{
	if (!p)
		return;
	free(p->line.p);
	free(p->event.p);
	free(p->data.p);
	free(p->id.p);
	free(p);
}

/* Records a failure of the reader itself; every later feed returns it. */
static int fail(struct sg_sse *p, int rc)
{
	p->rc = rc;
	return rc;
}

/* A blank line: the message gathered so far, if it had a field. The reader is reset before
 * the callback runs and not touched after it, so a callback may free the reader (with
 * whatever owns it) and stop; the strings stay intact during the callback, since resetting
 * only sets lengths. */
static int dispatch(struct sg_sse *p, sg_sse_cb cb, void *arg)
{
	struct sg_sse_msg m = {0};

	if (!p->has_event && !p->has_data && !p->has_id)
		return 0;
	if (p->has_event) {
		m.event = text(&p->event);
		m.event_len = p->event.len;
	}
	if (p->has_data) {
		m.data = text(&p->data);
		m.data_len = p->data.len;
	}
	if (p->has_id) {
		m.id = text(&p->id);
		m.id_len = p->id.len;
	}
	p->has_event = p->has_data = p->has_id = 0;
	p->event.len = p->data.len = p->id.len = 0;
	return cb(&m, arg);
}

static int is_field(const char *name, size_t n, const char *want)
{
	return n == strlen(want) && memcmp(name, want, n) == 0;
}

/* One complete line (n bytes, no line end; NUL-terminated when in_buf, which says it lies in
 * p->line). Returns 0, the callback's nonzero value (the reader is then not touched again),
 * or a failure of the reader. */
static int line(struct sg_sse *p, const char *s, size_t n, int in_buf, sg_sse_cb cb, void *arg)
{
	const char *colon, *v;
	size_t vn, total = p->event.len + p->data.len + p->id.len;

	if (n == 0)
		return dispatch(p, cb, arg);
	if (s[0] == ':') {
		struct sg_sse_msg m = {.comment = 1};

		/* the text must be NUL-terminated too: a line read in place is copied */
		if (!in_buf) {
			if (buf_set(&p->line, s, n))
				return fail(p, SG_SSE_NOMEM);
			s = p->line.p;
		}
		p->line.len = 0;
		m.data = s + 1;
		m.data_len = n - 1;
		return cb(&m, arg);
	}
	colon = memchr(s, ':', n);
	if (colon) {
		v = colon + 1;
		vn = n - (size_t)(v - s);
		if (vn > 0 && *v == ' ') {
			v++;
			vn--;
		}
		n = (size_t)(colon - s);
	} else {
		v = "";
		vn = 0;
	}
	if (is_field(s, n, "event")) {
		if (total - p->event.len + vn > p->max)
			return fail(p, SG_SSE_TOO_LARGE);
		if (buf_set(&p->event, v, vn))
			return fail(p, SG_SSE_NOMEM);
		p->has_event = 1;
	} else if (is_field(s, n, "data")) {
		if (total + vn + (p->has_data ? 1 : 0) > p->max)
			return fail(p, SG_SSE_TOO_LARGE);
		if ((p->has_data && buf_add(&p->data, "\n", 1)) ||
		    (p->has_data ? buf_add(&p->data, v, vn) : buf_set(&p->data, v, vn)))
			return fail(p, SG_SSE_NOMEM);
		p->has_data = 1;
	} else if (is_field(s, n, "id")) {
		/* as the WHATWG parser does: an id holding NUL is ignored (it could not be a C
		 * string, nor a Last-Event-ID header) */
		if (memchr(v, '\0', vn))
			return 0;
		if (total - p->id.len + vn > p->max)
			return fail(p, SG_SSE_TOO_LARGE);
		if (buf_set(&p->id, v, vn))
			return fail(p, SG_SSE_NOMEM);
		p->has_id = 1;
	}
	/* retry and unknown fields are ignored */
	return 0;
}

/* A line ends at s + n: with the unfinished part an earlier piece left, if any. */
static int end_line(struct sg_sse *p, const char *s, size_t n, sg_sse_cb cb, void *arg)
{
	size_t have = p->line.len;

	if (have > p->max || n > p->max - have)
		return fail(p, SG_SSE_TOO_LARGE);
	if (have == 0)
		return line(p, s, n, 0, cb, arg);
	if (buf_add(&p->line, s, n))
		return fail(p, SG_SSE_NOMEM);
	n = p->line.len;
	p->line.len = 0;
	return line(p, p->line.p, n, 1, cb, arg);
}

int sg_sse_feed(struct sg_sse *p, const char *data, size_t len, sg_sse_cb cb, void *arg)
{
	size_t i = 0, start;
	int rc;

	if (p->rc)
		return p->rc;
	/* A BOM is skipped once, at the very start, even when it arrives split; bytes that only
	 * began like one are the first line's. */
	while (p->bom != BOM_DONE && i < len) {
		if ((unsigned char)data[i] == bom[p->bom]) {
			i++;
			p->bom++;
			continue;
		}
		if (p->bom > 0 && buf_add(&p->line, (const char *)bom, (size_t)p->bom))
			return fail(p, SG_SSE_NOMEM);
		p->bom = BOM_DONE;
	}
	if (p->cr && i < len) {
		p->cr = 0;
		if (data[i] == '\n')
			i++;
	}
	for (start = i; i < len; i++) {
		char c = data[i];

		if (c != '\n' && c != '\r')
			continue;
		rc = end_line(p, data + start, i - start, cb, arg);
		if (rc)
			return rc; /* p may be gone: a callback that stops may have freed it */
		if (c == '\r') {
			if (i + 1 == len)
				p->cr = 1;
			else if (data[i + 1] == '\n')
				i++;
		}
		start = i + 1;
	}
	if (start < len) {
		if (p->line.len > p->max || len - start > p->max - p->line.len)
			return fail(p, SG_SSE_TOO_LARGE);
		if (buf_add(&p->line, data + start, len - start))
			return fail(p, SG_SSE_NOMEM);
	}
	return 0;
}
