/* jsonscan.c - see jsonscan.h. */
#include "jsonscan.h"

#include <jansson.h>
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

/* Whether text[0..len) is one JSON value as jansson reads it (UTF-8, escapes, numbers): the
 * parts outside the array are checked as strictly as a whole parse would check them, so that
 * a scan accepts exactly the texts jansson accepts (duplicate keys aside). They are small
 * (a key, a total); the elements are checked by whoever parses them. */
static int valid(const char *text, size_t len)
{
	json_t *v = json_loadb(text, len, JSON_DECODE_ANY, NULL);

	json_decref(v);
	return v != NULL;
}

/* Past a member's key and colon at s->p, checked. */
static int skip_key(struct scan *s, const char **k)
{
	const char *start = s->p;

	if (s->p >= s->end || *s->p != '"')
		return -1;
	*k = s->p + 1;
	if (skip_string(s) || !valid(start, (size_t)(s->p - start)))
		return -1;
	ws(s);
	if (s->p >= s->end || *s->p != ':')
		return -1;
	s->p++;
	ws(s);
	return 0;
}

/* Past a member's value at s->p, checked. */
static int skip_checked(struct scan *s)
{
	const char *start = s->p;

	return skip_value(s) || !valid(start, (size_t)(s->p - start)) ? -1 : 0;
}

/* Past the rest of the object after its member value at s->p: ", member…" then "}" and
 * nothing but whitespace. */
static int finish_object(struct scan *s)
{
	for (;;) {
		ws(s);
		if (s->p < s->end && *s->p == '}') {
			s->p++;
			ws(s);
			return s->p == s->end ? 0 : -1;
		}
		if (s->p >= s->end || *s->p != ',')
			return -1;
		const char *k;

		s->p++;
		ws(s);
		if (skip_key(s, &k) || skip_checked(s))
			return -1;
	}
}

int sg_jscan_begin(struct sg_jscanner *js, const char *text, size_t len, const char *key)
{
	struct scan s = {text, text + len};
	size_t klen = strlen(key);

	memset(js, 0, sizeof(*js));
	js->text = text;
	js->len = len;
	ws(&s);
	if (s.p >= s.end)
		return SG_JSCAN_SYNTAX;
	if (*s.p != '{')
		/* some other JSON value, or not JSON at all */
		return valid(text, len) ? SG_JSCAN_NOT_OBJECT : SG_JSCAN_SYNTAX;
	s.p++;
	ws(&s);
	if (s.p < s.end && *s.p == '}') {
		s.p++;
		ws(&s);
		return s.p == s.end ? SG_JSCAN_NO_ARRAY : SG_JSCAN_SYNTAX;
	}
	for (;;) {
		const char *k;

		ws(&s);
		if (skip_key(&s, &k))
			return SG_JSCAN_SYNTAX;
		if ((size_t)(s.p - k) >= klen + 1 && memcmp(k, key, klen) == 0 && k[klen] == '"' &&
		    s.p < s.end && *s.p == '[') {
			js->pos = (size_t)(s.p + 1 - text);
			js->inside = 1;
			return SG_JSCAN_OK;
		}
		if (skip_checked(&s))
			return SG_JSCAN_SYNTAX;
		ws(&s);
		if (s.p < s.end && *s.p == ',') {
			s.p++;
			continue;
		}
		if (s.p < s.end && *s.p == '}') {
			s.p++;
			ws(&s);
			return s.p == s.end ? SG_JSCAN_NO_ARRAY : SG_JSCAN_SYNTAX;
		}
		return SG_JSCAN_SYNTAX;
	}
}

int sg_jscan_next(struct sg_jscanner *js, const char **el, size_t *ellen)
{
	struct scan s = {js->text + js->pos, js->text + js->len};

	if (!js->inside)
		return 0;
	ws(&s);
	if (s.p < s.end && *s.p == ']') {
		s.p++;
		js->inside = 0;
		return finish_object(&s) ? SG_JSCAN_SYNTAX : 0;
	}
	if (js->index > 0) {
		if (s.p >= s.end || *s.p != ',')
			return SG_JSCAN_SYNTAX;
		s.p++;
		ws(&s);
	}
	*el = s.p;
	if (skip_value(&s))
		return SG_JSCAN_SYNTAX;
	*ellen = (size_t)(s.p - *el);
	js->pos = (size_t)(s.p - js->text);
	js->index++;
	return 1;
}
