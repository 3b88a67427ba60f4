/* jsonscan.c - see jsonscan.h. */
#include "jsonscan.h"

#include <string.h>

struct scan {
	const char *p, *end;
};

static void ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* Past a string whose opening quote is at s->p. */
static int skip_string(struct scan *s)
{
	s->p++;
	while (s->p < s->end) {
		unsigned char c = (unsigned char)*s->p++;

		if (c == '"')
			return 0;
		if (c == '\\') {
			if (s->p >= s->end)
				return -1;
			s->p++;
		} else if (c < 0x20) {
			return -1;
		}
	}
	return -1;
}

/* Past one value starting at s->p (after whitespace). */
static int skip_value(struct scan *s)
{
	int depth = 0;

	if (s->p >= s->end)
		return -1;
	if (*s->p == '"')
		return skip_string(s);
	if (*s->p != '{' && *s->p != '[') {
		/* a number, true, false or null: its characters, checked by whoever parses it */
		const char *start = s->p;

		while (s->p < s->end && strchr("+-.0123456789eEtrufalsn", *s->p) && *s->p)
			s->p++;
		return s->p > start ? 0 : -1;
	}
	while (s->p < s->end) {
		char c = *s->p;

		if (c == '"') {
			if (skip_string(s))
				return -1;
			continue;
		}
		s->p++;
		if (c == '{' || c == '[') {
			if (++depth > SG_JSCAN_MAX_DEPTH)
				return -1;
		} else if (c == '}' || c == ']') {
			if (--depth == 0)
				return 0;
		}
	}
	return -1;
}

int sg_json_scan_array(const char *text, size_t len, const char *key,
                       int (*fn)(void *arg, const char *el, size_t ellen, size_t index), void *arg)
{
	struct scan s = {text, text + len};
	size_t klen = strlen(key);
	int found = 0;

	ws(&s);
	if (s.p >= s.end)
		return SG_JSCAN_SYNTAX;
	if (*s.p != '{') {
		/* some other JSON value, or not JSON at all */
		if (skip_value(&s))
			return SG_JSCAN_SYNTAX;
		ws(&s);
		return s.p == s.end ? SG_JSCAN_NOT_OBJECT : SG_JSCAN_SYNTAX;
	}
	s.p++;
	ws(&s);
	if (s.p < s.end && *s.p == '}') {
		s.p++;
		goto after;
	}
	for (;;) {
		const char *k;
		int match;

		ws(&s);
		if (s.p >= s.end || *s.p != '"')
			return SG_JSCAN_SYNTAX;
		k = s.p + 1;
		if (skip_string(&s))
			return SG_JSCAN_SYNTAX;
		match = (size_t)(s.p - 1 - k) == klen && memcmp(k, key, klen) == 0;
		ws(&s);
		if (s.p >= s.end || *s.p != ':')
			return SG_JSCAN_SYNTAX;
		s.p++;
		ws(&s);
		if (match && !found && s.p < s.end && *s.p == '[') {
			size_t i = 0;

			found = 1;
			s.p++;
			ws(&s);
			if (s.p < s.end && *s.p == ']') {
				s.p++;
			} else {
				for (;;) {
					const char *el;
					int rc;

					ws(&s);
					el = s.p;
					if (skip_value(&s))
						return SG_JSCAN_SYNTAX;
					rc = fn(arg, el, (size_t)(s.p - el), i++);
					if (rc)
						return rc;
					ws(&s);
					if (s.p < s.end && *s.p == ',') {
						s.p++;
						continue;
					}
					if (s.p < s.end && *s.p == ']') {
						s.p++;
						break;
					}
					return SG_JSCAN_SYNTAX;
				}
			}
		} else if (skip_value(&s)) {
			return SG_JSCAN_SYNTAX;
		}
		ws(&s);
		if (s.p < s.end && *s.p == ',') {
			s.p++;
			continue;
		}
		if (s.p < s.end && *s.p == '}') {
			s.p++;
			break;
		}
		return SG_JSCAN_SYNTAX;
	}
after:
	ws(&s);
	if (s.p != s.end)
		return SG_JSCAN_SYNTAX;
	return found ? SG_JSCAN_OK : SG_JSCAN_NO_ARRAY;
}
