/* fuzz_sse.c - libFuzzer harness: the incremental SSE reader (src/sse.h). The input is an
 * upstream body, fed whole and then in two pieces split at data[0] % size; both feeds must hand
 * over the same messages and end the same way. */
#include "fuzz_common.h"
#include "sse.h"

#define MAX_BYTES 4096

/* The messages seen, serialised with their lengths. */
struct seen {
	char *p;
	size_t len, cap;
};

static void put(struct seen *s, const void *p, size_t n)
{
	if (s->len + n > s->cap) {
		size_t cap = (s->len + n) * 2 + 64;
		char *q = realloc(s->p, cap);

		FZ_CHECK(q != NULL);
		s->p = q;
		s->cap = cap;
	}
	if (n)
		memcpy(s->p + s->len, p, n);
	s->len += n;
}

static void put_field(struct seen *s, const char *v, size_t n)
{
	char tag = v ? 'y' : 'n';

	put(s, &tag, 1);
	if (v) {
		FZ_CHECK(v[n] == 0);
		put(s, &n, sizeof(n));
		put(s, v, n);
	}
}

static int on_msg(const struct sg_sse_msg *m, void *arg)
{
	struct seen *s = arg;
	char c = m->comment ? 'c' : 'm';

	FZ_CHECK(m->event_len + m->data_len + m->id_len <= 3 * MAX_BYTES);
	put(s, &c, 1);
	put_field(s, m->event, m->event_len);
	put_field(s, m->data, m->data_len);
	put_field(s, m->id, m->id_len);
	return 0;
}

/* Feeds data in pieces cut at the given offsets; returns the first non-zero result, or 0. */
static int feed(const uint8_t *data, size_t size, size_t cut, struct seen *s)
{
	struct sg_sse *p = sg_sse_new(MAX_BYTES);
	int rc;

	FZ_CHECK(p != NULL);
	rc = sg_sse_feed(p, (const char *)data, cut, on_msg, s);
	if (rc == 0)
		rc = sg_sse_feed(p, (const char *)data + cut, size - cut, on_msg, s);
	sg_sse_free(p);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen whole = {0}, split = {0};
	int rc1, rc2;

	rc1 = feed(data, size, size, &whole);
	rc2 = feed(data, size, size ? data[0] % size : 0, &split);
	FZ_CHECK(rc1 == 0 || rc1 == SG_SSE_TOO_LARGE);
	FZ_CHECK(rc1 == rc2);
	/* a refused body may have stopped at different points; what it gave before must agree */
	if (rc1 == 0)
		FZ_CHECK(whole.len == split.len &&
		         (!whole.len || memcmp(whole.p, split.p, whole.len) == 0));
	free(whole.p);
	free(split.p);
	return 0;
}
