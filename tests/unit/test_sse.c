/* test_sse.c - the SSE reader (sse.h): every field rule, every line end, the BOM, comments,
 * the size limits, a callback that stops (and frees the reader), allocation failures, linear
 * cost on a long line fed a byte at a time, and, for a sample stream that holds all of these,
 * the same messages whichever way its bytes are split into pieces.
 *
 * This program links with -Wl,--wrap=realloc, so the reader's buffer growth lands in
 * __wrap_realloc, where a countdown can fail the n-th call from now. Check's own allocations
 * go through it too, so no ck_assert runs while a countdown is armed. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixture.h"
#include "sse.h"

void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);

static long realloc_in = -1; /* fail the realloc this many calls from now; -1 = never */
static int realloc_fired;

void *__wrap_realloc(void *p, size_t n)
{
	if (realloc_in >= 0 && realloc_in-- == 0) {
		realloc_fired = 1;
		errno = ENOMEM;
		return NULL;
	}
	return __real_realloc(p, n);
}

/* What a reader reported, as text: one line per message, every byte escaped, so two runs
 * compare with one strcmp. */
struct rec {
	char *text;
	size_t size;
	FILE *f;
	int count;
	int stop_at; /* the callback returns `stop_rc` for message number stop_at (1-based) */
	int stop_rc;
	struct sg_sse *free_on_stop; /* freed inside the callback that stops */
	int unterminated;            /* a field was not NUL-terminated */
};

static void rec_open(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	r->f = open_memstream(&r->text, &r->size);
	ck_assert_ptr_nonnull(r->f);
}

/* Closes the record; the text stays in r->text (the caller frees it). */
static char *rec_close(struct rec *r)
{
	fclose(r->f);
	r->f = NULL;
	return r->text;
}

static void put_bytes(FILE *f, const char *name, const char *s, size_t n)
{
	fprintf(f, "%s=", name);
	if (!s) {
		fputs("-", f);
		return;
	}
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"')
			fputc(c, f);
		else
			fprintf(f, "\\x%02x", c);
	}
	fputc('"', f);
}

static int rec_cb(const struct sg_sse_msg *m, void *arg)
{
	struct rec *r = arg;

	r->count++;
	if ((m->event && m->event[m->event_len]) || (m->data && m->data[m->data_len]) ||
	    (m->id && m->id[m->id_len]))
		r->unterminated = 1;
	if (m->comment) {
		if (m->event || m->id || !m->data)
			r->unterminated = 1; /* a comment has text and nothing else */
		put_bytes(r->f, "comment", m->data, m->data_len);
	} else {
		put_bytes(r->f, "event", m->event, m->event_len);
		put_bytes(r->f, " data", m->data, m->data_len);
		put_bytes(r->f, " id", m->id, m->id_len);
	}
	fputc('\n', r->f);
	if (r->count == r->stop_at) {
		if (r->free_on_stop)
			sg_sse_free(r->free_on_stop);
		return r->stop_rc;
	}
	return 0;
}

/* Feeds pieces (each copied to a buffer of exactly its size, so a read past a piece is
 * caught by the sanitizers) to a new reader; *rc gets the first nonzero feed result (0 if
 * none). Returns the record (free it). */
static char *run_pieces(const char *s, const size_t *cuts, size_t ncuts, size_t len, size_t max,
                        int *rc)
{
	struct sg_sse *p = sg_sse_new(max);
	struct rec r;
	size_t at = 0;

	ck_assert_ptr_nonnull(p);
	rec_open(&r);
	*rc = 0;
	for (size_t k = 0; k <= ncuts && *rc == 0; k++) {
		size_t end = k < ncuts ? cuts[k] : len, n = end - at;
		char *piece = malloc(n ? n : 1);

		memcpy(piece, s + at, n);
		*rc = sg_sse_feed(p, piece, n, rec_cb, &r);
		free(piece);
		at = end;
	}
	ck_assert_msg(!r.unterminated, "a field was not NUL-terminated");
	sg_sse_free(p);
	return rec_close(&r);
}

/* The whole of s (len bytes) in one piece. */
static char *run1(const char *s, size_t len, size_t max, int *rc)
{
	return run_pieces(s, NULL, 0, len, max, rc);
}

/* s a byte at a time. */
static char *run_bytes(const char *s, size_t len, size_t max, int *rc)
{
	size_t *cuts = malloc((len ? len : 1) * sizeof(*cuts));
	char *out;

	for (size_t i = 0; i < len; i++)
		cuts[i] = i;
	out = run_pieces(s, cuts, len, len, max, rc);
	free(cuts);
	return out;
}

/* s (len bytes) gives exactly `want` (and a zero return) in one piece and byte by byte. */
static void expect_n(const char *s, size_t len, const char *want)
{
	int rc;
	char *got = run1(s, len, 1 << 20, &rc);

	ck_assert_int_eq(rc, 0);
	ck_assert_msg(!strcmp(got, want), "one piece:\n%s\nwanted:\n%s", got, want);
	free(got);
	got = run_bytes(s, len, 1 << 20, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_msg(!strcmp(got, want), "byte by byte:\n%s\nwanted:\n%s", got, want);
	free(got);
}

static void expect(const char *s, const char *want)
{
	expect_n(s, strlen(s), want);
}

START_TEST(fields)
{
	expect("event: agent.message\ndata: {\"a\":1}\nid: sevt_1\n\n",
	       "event=\"agent.message\" data=\"{\\x22a\\x22:1}\" id=\"sevt_1\"\n");
	/* any order; fields that are not there are NULL */
	expect("id: 7\ndata: x\n\n", "event=- data=\"x\" id=\"7\"\n");
	expect("data: x\n\n", "event=- data=\"x\" id=-\n");
	/* a message of one field that is not data still counts */
	expect("event: ping\n\n", "event=\"ping\" data=- id=-\n");
	expect("id: 9\n\n", "event=- data=- id=\"9\"\n");
	/* a later event or id replaces the earlier one */
	expect("event: a\nid: 1\nevent: b\nid: 2\ndata: x\n\n",
	       "event=\"b\" data=\"x\" id=\"2\"\n");
	/* the fields are reset after each message */
	expect("event: a\nid: 1\ndata: 1\n\ndata: 2\n\n",
	       "event=\"a\" data=\"1\" id=\"1\"\nevent=- data=\"2\" id=-\n");
	/* empty values */
	expect("event:\ndata:\nid:\n\n", "event=\"\" data=\"\" id=\"\"\n");
	expect("data\n\n", "event=- data=\"\" id=-\n");
	expect("event\nid\n\n", "event=\"\" data=- id=\"\"\n");
	/* data may hold NUL bytes; the length says where it ends */
	expect_n("data: a\0b\n\n", 11, "event=- data=\"a\\x00b\" id=-\n");
	/* an id holding NUL is ignored, the earlier one kept */
	expect_n("data: x\nid: 1\nid: a\0b\n\n", 23, "event=- data=\"x\" id=\"1\"\n");
	expect_n("id: a\0b\n\n", 9, "");
	/* UTF-8 passes as it is */
	expect("data: h\xc3\xa9llo\n\n", "event=- data=\"h\\xc3\\xa9llo\" id=-\n");
}
END_TEST

START_TEST(data_lines_are_joined)
{
	expect("data: a\ndata: b\n\n", "event=- data=\"a\\x0ab\" id=-\n");
	expect("data: a\ndata:\ndata: b\n\n", "event=- data=\"a\\x0a\\x0ab\" id=-\n");
	expect("data:\ndata:\n\n", "event=- data=\"\\x0a\" id=-\n");
	/* other fields between data lines do not break the join */
	expect("data: a\nevent: e\nid: 1\nretry: 5\ndata: b\n\n",
	       "event=\"e\" data=\"a\\x0ab\" id=\"1\"\n");
}
END_TEST

START_TEST(one_space_after_the_colon)
{
	expect("data:x\n\n", "event=- data=\"x\" id=-\n");
	expect("data: x\n\n", "event=- data=\"x\" id=-\n");
	expect("data:  x\n\n", "event=- data=\" x\" id=-\n");
	expect("data: x \n\n", "event=- data=\"x \" id=-\n");
	expect("data:\tx\n\n", "event=- data=\"\\x09x\" id=-\n");
	expect("data: a:b: c\n\n", "event=- data=\"a:b: c\" id=-\n");
	expect("event:  e\nid:  1\ndata\n\n", "event=\" e\" data=\"\" id=\" 1\"\n");
}
END_TEST

START_TEST(line_ends)
{
	const char *want = "event=\"e\" data=\"a\\x0ab\" id=-\n";

	expect("event: e\ndata: a\ndata: b\n\n", want);
	expect("event: e\r\ndata: a\r\ndata: b\r\n\r\n", want);
	expect("event: e\rdata: a\rdata: b\r\r", want);
	expect("event: e\r\ndata: a\rdata: b\n\r\n", want);
	expect("event: e\ndata: a\r\ndata: b\r\n", "");
	/* \n\r is two line ends: the second line is blank */
	expect("data: a\n\rdata: b\r\n\r\n", "event=- data=\"a\" id=-\nevent=- data=\"b\" id=-\n");
	/* \r\r\n: a blank line, then the \n ends nothing more */
	expect("data: a\r\r\ndata: b\n\n", "event=- data=\"a\" id=-\nevent=- data=\"b\" id=-\n");
	/* blank lines without fields dispatch nothing */
	expect("\n\n\r\n\r\r", "");
	expect("\r\n\r\ndata: x\r\n\r\n\r\n", "event=- data=\"x\" id=-\n");
}
END_TEST

START_TEST(crlf_split_between_pieces)
{
	static const char s[] = "data: a\r\ndata: b\r\n\r\n";
	const size_t len = sizeof(s) - 1;
	const char *want = "event=- data=\"a\\x0ab\" id=-\n";
	size_t cuts[3];
	char *got;
	int rc;

	/* split after each \r: the \n first in the next piece belongs to it */
	cuts[0] = 8;
	cuts[1] = 17;
	cuts[2] = 19;
	got = run_pieces(s, cuts, 3, len, 1024, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(got, want);
	free(got);
	/* a lone \r at a piece's end, then empty pieces, then the \n */
	{
		static const char t[] = "data: a\r\ndata: b\n\n";
		size_t c2[] = {8, 8, 8, 9};

		got = run_pieces(t, c2, 4, sizeof(t) - 1, 1024, &rc);
		ck_assert_int_eq(rc, 0);
		ck_assert_str_eq(got, want);
		free(got);
	}
	/* \r at a piece's end and another line next: the \r ended its line on its own */
	{
		static const char t[] = "data: a\rdata: b\r\r";
		size_t c3[] = {8, 16};

		got = run_pieces(t, c3, 2, sizeof(t) - 1, 1024, &rc);
		ck_assert_int_eq(rc, 0);
		ck_assert_str_eq(got, want);
		free(got);
	}
}
END_TEST

START_TEST(bom)
{
	const char *x = "event=- data=\"x\" id=-\n";
	char *got;
	int rc;

	expect("\xEF\xBB\xBF"
	       "data: x\n\n",
	       x);
	expect("\xEF\xBB\xBF\n"
	       "data: x\n\n",
	       x);
	expect("\xEF\xBB\xBF:hb\n", "comment=\"hb\"\n");
	/* only one, only at the very start */
	expect("\xEF\xBB\xBF\xEF\xBB\xBF"
	       "data: x\n\n",
	       "");
	expect("data: y\n\n\xEF\xBB\xBF"
	       "data: x\n\n",
	       "event=- data=\"y\" id=-\n");
	/* bytes that only begin like a BOM are the first line's */
	expect("\xEF\xBB"
	       "data: x\n\n",
	       "");
	expect("\xEF"
	       "data: x\n\n",
	       "");
	expect("\xEF\xBB:c\n", "");
	expect("\xEF\xBB\n"
	       "data: x\n\n",
	       x);
	expect("\xEF\r\n"
	       "data: x\n\n",
	       x);
	/* a BOM inside a value is data */
	expect("data: \xEF\xBB\xBF\n\n", "event=- data=\"\\xef\\xbb\\xbf\" id=-\n");
	/* the BOM split over pieces, with empty pieces between */
	{
		static const char s[] = "\xEF\xBB\xBF"
		                        "data: x\n\n";
		size_t cuts[] = {0, 1, 1, 2, 3, 3};

		got = run_pieces(s, cuts, 6, sizeof(s) - 1, 1024, &rc);
		ck_assert_int_eq(rc, 0);
		ck_assert_str_eq(got, x);
		free(got);
	}
	/* a partial BOM ends the body: nothing */
	got = run1("\xEF\xBB", 2, 1024, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(got, "");
	free(got);
}
END_TEST

START_TEST(comments)
{
	expect(": heartbeat\n", "comment=\" heartbeat\"\n");
	expect(":\n", "comment=\"\"\n");
	expect("::x\r\n", "comment=\":x\"\n");
	/* a comment is reported at once and leaves the message being gathered alone */
	expect("data: a\n: hb\nevent: e\n:\ndata: b\n\n",
	       "comment=\" hb\"\ncomment=\"\"\nevent=\"e\" data=\"a\\x0ab\" id=-\n");
	/* a comment is not a field: the blank line after it dispatches nothing */
	expect(": hb\n\n", "comment=\" hb\"\n");
	expect_n(":a\0b\n", 5, "comment=\"a\\x00b\"\n");
}
END_TEST

START_TEST(unknown_fields)
{
	expect("retry: 1000\n\n", "");
	expect("foo: bar\nfoo\n\n", "");
	/* names are exact and case-sensitive; the space is part of the name */
	expect("Data: x\nDATA: x\ndata : x\n data: x\ndatas: x\nevents: e\nids: 1\n\n", "");
	expect("foo: bar\ndata: x\nretry: 10\n\n", "event=- data=\"x\" id=-\n");
}
END_TEST

START_TEST(unfinished_message_is_not_dispatched)
{
	expect("data: x\n", "");
	expect("data: x", "");
	expect("event: e\nid: 1\ndata: x\r", "");
	expect("data: a\n\ndata: b\n", "event=- data=\"a\" id=-\n");
	expect("", "");
}
END_TEST

START_TEST(empty_feeds)
{
	struct sg_sse *p = sg_sse_new(64);
	struct rec r;
	char *got;

	rec_open(&r);
	ck_assert_int_eq(sg_sse_feed(p, NULL, 0, rec_cb, &r), 0);
	ck_assert_int_eq(sg_sse_feed(p, "data: x\r", 8, rec_cb, &r), 0);
	ck_assert_int_eq(sg_sse_feed(p, NULL, 0, rec_cb, &r), 0);
	ck_assert_int_eq(sg_sse_feed(p, "\n\n", 2, rec_cb, &r), 0);
	ck_assert_int_eq(sg_sse_feed(p, "", 0, rec_cb, &r), 0);
	sg_sse_free(p);
	sg_sse_free(NULL);
	got = rec_close(&r);
	ck_assert_str_eq(got, "event=- data=\"x\" id=-\n");
	free(got);
}
END_TEST

/* s with limit max: result rc and record want, in one piece and byte by byte. */
static void limit_case(const char *s, size_t max, int want_rc, const char *want)
{
	char *got;
	int rc;

	got = run1(s, strlen(s), max, &rc);
	ck_assert_msg(rc == want_rc, "one piece: rc %d, wanted %d: %s", rc, want_rc, s);
	ck_assert_msg(!strcmp(got, want), "one piece:\n%s\nwanted:\n%s", got, want);
	free(got);
	got = run_bytes(s, strlen(s), max, &rc);
	ck_assert_msg(rc == want_rc, "bytes: rc %d, wanted %d: %s", rc, want_rc, s);
	ck_assert_msg(!strcmp(got, want), "bytes:\n%s\nwanted:\n%s", got, want);
	free(got);
}

START_TEST(limits)
{
	const int big = SG_SSE_TOO_LARGE;

	/* a line of exactly max bytes passes; one more fails, even before its end arrives */
	limit_case("data: 0123456789\n\n", 16, 0, "event=- data=\"0123456789\" id=-\n");
	limit_case("data: 01234567890\n\n", 16, big, "");
	limit_case("data: 01234567890", 16, big, "");
	limit_case(": 34567890123456\n", 16, 0, "comment=\" 34567890123456\"\n");
	limit_case(": 345678901234567\n", 16, big, "");
	limit_case("retry: 9012345678\n", 16, big, "");
	/* the line end is not counted */
	limit_case("data: 0123456789\r\n\r\n", 16, 0, "event=- data=\"0123456789\" id=-\n");
	/* a message's fields together (data joined with \n) may not pass max */
	limit_case("data: 0123456789\ndata: 01234\n\n", 16, 0,
	           "event=- data=\"0123456789\\x0a01234\" id=-\n");
	limit_case("data: 0123456789\ndata: 012345\n\n", 16, big, "");
	limit_case("event: 12345\nid: 12345\ndata: 123456\n\n", 16, 0,
	           "event=\"12345\" data=\"123456\" id=\"12345\"\n");
	limit_case("event: 12345\nid: 12345\ndata: 1234567\n\n", 16, big, "");
	limit_case("data: 1234567\nid: 12345\nevent: 12345\n\n", 16, big, "");
	limit_case("data: 1234567\nevent: 12345\nid: 12345\n\n", 16, big, "");
	/* a replaced field counts once */
	limit_case("event: 0123456789\nevent: 0123456789\ndata: 12345\n\n", 17, 0,
	           "event=\"0123456789\" data=\"12345\" id=-\n");
	/* each message starts from zero; messages before a failure were delivered */
	limit_case("data: 0123456789012345\n\ndata: 0123456789012345\n\n", 22, 0,
	           "event=- data=\"0123456789012345\" id=-\n"
	           "event=- data=\"0123456789012345\" id=-\n");
	limit_case("data: 1\n\ndata: 0123456789012345\n\n", 16, big, "event=- data=\"1\" id=-\n");
	/* max 0: only blank lines */
	limit_case("\n\r\n", 0, 0, "");
	limit_case(":\n", 0, big, "");
	/* a partial BOM that was not one counts toward the first line */
	limit_case("\xEF\xBB"
	           "12\n",
	           4, 0, "");
	limit_case("\xEF\xBB"
	           "123\n",
	           4, big, "");
	limit_case("\xEF\xBB\n", 1, big, "");
}
END_TEST

START_TEST(failure_is_sticky)
{
	struct sg_sse *p = sg_sse_new(8);
	struct rec r;
	char *got;

	rec_open(&r);
	ck_assert_int_eq(sg_sse_feed(p, "data: 1\n\n", 9, rec_cb, &r), 0);
	ck_assert_int_eq(sg_sse_feed(p, "data: 123456789\n\n", 17, rec_cb, &r), SG_SSE_TOO_LARGE);
	ck_assert_int_eq(sg_sse_feed(p, "data: 2\n\n", 9, rec_cb, &r), SG_SSE_TOO_LARGE);
	ck_assert_int_eq(sg_sse_feed(p, NULL, 0, rec_cb, &r), SG_SSE_TOO_LARGE);
	sg_sse_free(p);
	got = rec_close(&r);
	ck_assert_str_eq(got, "event=- data=\"1\" id=-\n");
	free(got);
}
END_TEST

START_TEST(callback_stops_at_once)
{
	static const char s[] = "data: 1\n\n: c\ndata: 2\n\ndata: 3\n\n";
	struct sg_sse *p;
	struct rec r;
	char *got;

	for (int at = 1; at <= 4; at++) {
		p = sg_sse_new(64);
		rec_open(&r);
		r.stop_at = at;
		r.stop_rc = 40 + at;
		ck_assert_int_eq(sg_sse_feed(p, s, sizeof(s) - 1, rec_cb, &r), 40 + at);
		ck_assert_int_eq(r.count, at);
		sg_sse_free(p);
		free(rec_close(&r));
	}
	/* negative values are passed on as they are */
	p = sg_sse_new(64);
	rec_open(&r);
	r.stop_at = 1;
	r.stop_rc = -1;
	ck_assert_int_eq(sg_sse_feed(p, s, sizeof(s) - 1, rec_cb, &r), -1);
	sg_sse_free(p);
	got = rec_close(&r);
	ck_assert_str_eq(got, "event=- data=\"1\" id=-\n");
	free(got);
}
END_TEST

/* The callback frees the reader and stops: nothing touches it afterwards (the sanitizers
 * would say so), for a message, a comment, a message whose line was gathered over pieces,
 * and a comment read from the partial-line buffer. */
START_TEST(callback_may_free_the_reader)
{
	static const char *const streams[] = {"data: 1\n\ndata: 2\n\n", ": c\n: d\n",
	                                      "data: 1\r\n\r\n", ":c\r:d\r"};

	for (size_t k = 0; k < sizeof(streams) / sizeof(streams[0]); k++) {
		const char *s = streams[k];
		size_t len = strlen(s);

		for (size_t cut = 0; cut <= len; cut++) {
			struct sg_sse *p = sg_sse_new(64);
			struct rec r;
			int rc;

			rec_open(&r);
			r.stop_at = 1;
			r.stop_rc = 1;
			r.free_on_stop = p;
			rc = sg_sse_feed(p, s, cut, rec_cb, &r);
			if (rc == 0)
				rc = sg_sse_feed(p, s + cut, len - cut, rec_cb, &r);
			ck_assert_int_eq(rc, 1);
			ck_assert_int_eq(r.count, 1);
			free(rec_close(&r));
		}
	}
}
END_TEST

/* Every rule at once: a BOM, each line end, comments in and between messages, multi-line
 * data, ids, events, unknown fields, empty values, a field without a colon, blank lines with
 * nothing to dispatch, a NUL, a long line, and an unfinished message at the end. */
#define LONG_VALUE                                                                                 \
	"a long line ......................................................................."      \
	"..........................................................................end"
static const char sample[] = "\xEF\xBB\xBF: hello\r\n"
                             "retry: 3000\n"
                             "\n"
                             "event: agent.message\r\n"
                             "data: {\"type\":\"agent.message\",\"id\":\"sevt_1\"}\r\n"
                             "id: sevt_1\r\n"
                             "\r\n"
                             ": heartbeat\r"
                             "data:first\r"
                             "data:  second\n"
                             ":\n"
                             "data\r\n"
                             "foo: bar\r\n"
                             "\r"
                             "event: ping\n"
                             "\n"
                             "id\n"
                             "\n"
                             "data: nul\0byte\n"
                             "event:\n"
                             "\n"
                             "data: " LONG_VALUE "\n"
                             "\n"
                             "\r\n"
                             "data: unfinished\r\n";

static const char sample_want[] =
    "comment=\" hello\"\n"
    "event=\"agent.message\" data=\"{\\x22type\\x22:\\x22agent.message\\x22,\\x22id\\x22:"
    "\\x22sevt_1\\x22}\" id=\"sevt_1\"\n"
    "comment=\" heartbeat\"\n"
    "comment=\"\"\n"
    "event=- data=\"first\\x0a second\\x0a\" id=-\n"
    "event=\"ping\" data=- id=-\n"
    "event=- data=- id=\"\"\n"
    "event=\"\" data=\"nul\\x00byte\" id=-\n"
    "event=- data=\"" LONG_VALUE "\" id=-\n";

START_TEST(every_split_gives_the_same_messages)
{
	const size_t len = sizeof(sample) - 1;
	size_t cuts[2];
	char *got;
	int rc;

	got = run1(sample, len, 4096, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_msg(!strcmp(got, sample_want), "one piece:\n%s\nwanted:\n%s", got, sample_want);
	free(got);
	got = run_bytes(sample, len, 4096, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(got, sample_want);
	free(got);
	for (size_t i = 0; i <= len; i++) {
		cuts[0] = i;
		got = run_pieces(sample, cuts, 1, len, 4096, &rc);
		ck_assert_int_eq(rc, 0);
		ck_assert_msg(!strcmp(got, sample_want), "split at %zu:\n%s", i, got);
		free(got);
	}
	for (size_t i = 0; i <= len; i++)
		for (size_t j = i; j <= len; j++) {
			cuts[0] = i;
			cuts[1] = j;
			got = run_pieces(sample, cuts, 2, len, 4096, &rc);
			ck_assert_int_eq(rc, 0);
			ck_assert_msg(!strcmp(got, sample_want), "split at %zu, %zu:\n%s", i, j,
			              got);
			free(got);
		}
}
END_TEST

START_TEST(random_pieces_give_the_same_messages)
{
	const size_t len = sizeof(sample) - 1;
	size_t cuts[64];
	unsigned seed = 12345;

	for (int round = 0; round < 2000; round++) {
		size_t n = 0, at = 0;
		char *got;
		int rc;

		while (n < 64) {
			seed = seed * 1103515245u + 12345u;
			at += (seed >> 16) % 24;
			if (at > len)
				break;
			cuts[n++] = at;
		}
		got = run_pieces(sample, cuts, n, len, 4096, &rc);
		ck_assert_int_eq(rc, 0);
		ck_assert_msg(!strcmp(got, sample_want), "round %d:\n%s", round, got);
		free(got);
	}
}
END_TEST

static int count_cb(const struct sg_sse_msg *m, void *arg)
{
	size_t *n = arg;

	*n += m->data_len;
	return 0;
}

static double seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A 4 MiB line a byte at a time: linear (well under a second; quadratic re-scanning would
 * take hours), and then the same through a CRLF split. */
START_TEST(long_line_byte_by_byte_is_linear)
{
	const size_t n = 4u << 20;
	struct sg_sse *p = sg_sse_new(8u << 20);
	size_t got = 0;
	double t0 = seconds(), dt;
	int rc = 0;
	char c;

	ck_assert_int_eq(sg_sse_feed(p, "data: ", 6, count_cb, &got), 0);
	c = 'x';
	/* no ck_assert per byte: each one is a write to Check's parent process */
	for (size_t i = 0; i < n; i++)
		rc |= sg_sse_feed(p, &c, 1, count_cb, &got);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(sg_sse_feed(p, "\r", 1, count_cb, &got), 0);
	ck_assert_int_eq(sg_sse_feed(p, "\n", 1, count_cb, &got), 0);
	ck_assert_int_eq(sg_sse_feed(p, "\r\n", 2, count_cb, &got), 0);
	dt = seconds() - t0;
	ck_assert_uint_eq(got, n);
	ck_assert_msg(dt < 20.0, "took %.1f s", dt);
	sg_sse_free(p);
}
END_TEST

/* Every buffer growth may fail: the feed then says SG_SSE_NOMEM (and keeps saying it), the
 * messages before it were delivered whole, and nothing leaks (the sanitizers check that). */
START_TEST(out_of_memory)
{
	const size_t len = sizeof(sample) - 1;
	int fired_any = 0;

	for (long k = 0;; k++) {
		struct sg_sse *p = sg_sse_new(4096);
		struct rec r;
		size_t at = 0;
		int rc = 0, again = 0, fired;
		char *got;

		rec_open(&r);
		realloc_fired = 0;
		realloc_in = k;
		/* a few bytes at a time, so partial lines, comments and fields all grow */
		while (at < len && rc == 0) {
			size_t n = len - at < 7 ? len - at : 7;

			rc = sg_sse_feed(p, sample + at, n, rec_cb, &r);
			at += n;
		}
		if (rc)
			again = sg_sse_feed(p, "\n\n", 2, rec_cb, &r);
		realloc_in = -1;
		fired = realloc_fired;
		fflush(r.f);
		sg_sse_free(p);
		got = rec_close(&r);
		if (!fired) {
			ck_assert_int_eq(rc, 0);
			ck_assert_str_eq(got, sample_want);
			free(got);
			break;
		}
		fired_any = 1;
		ck_assert_int_eq(rc, SG_SSE_NOMEM);
		ck_assert_int_eq(again, SG_SSE_NOMEM);
		ck_assert_msg(!strncmp(got, sample_want, strlen(got)), "k=%ld: %s", k, got);
		free(got);
		ck_assert_int_lt(k, 1000);
	}
	ck_assert(fired_any);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("sse");
	TCase *t = tcase_create("sse");
	TCase *slow = tcase_create("splits");

	tcase_add_test(t, fields);
	tcase_add_test(t, data_lines_are_joined);
	tcase_add_test(t, one_space_after_the_colon);
	tcase_add_test(t, line_ends);
	tcase_add_test(t, crlf_split_between_pieces);
	tcase_add_test(t, bom);
	tcase_add_test(t, comments);
	tcase_add_test(t, unknown_fields);
	tcase_add_test(t, unfinished_message_is_not_dispatched);
	tcase_add_test(t, empty_feeds);
	tcase_add_test(t, limits);
	tcase_add_test(t, failure_is_sticky);
	tcase_add_test(t, callback_stops_at_once);
	tcase_add_test(t, callback_may_free_the_reader);
	tcase_add_test(t, out_of_memory);
	suite_add_tcase(s, t);
	tcase_add_test(slow, every_split_gives_the_same_messages);
	tcase_add_test(slow, random_pieces_give_the_same_messages);
	tcase_add_test(slow, long_line_byte_by_byte_is_linear);
	suite_add_tcase(s, slow);
	return s;
}

int main(void)
{
	return sg_fixture_run(suite());
}
