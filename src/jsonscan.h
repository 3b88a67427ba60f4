/* jsonscan.h - the elements of one array inside a JSON object's text, one at a time.
 *
 * A backend listing of 10,000 sessions is 40 MB of JSON; parsed whole, jansson's tree of it
 * costs ten times that in small allocations, and the allocator, not the parse, dominates the
 * time. Scanning the text for the extent of each element of the array that matters, and
 * parsing (and translating, and dropping) one element at a time, keeps the peak at one
 * element's tree. The scanner checks the structure it walks (brackets, strings, separators)
 * and parses what lies outside the array (keys, other members) as strictly as jansson would;
 * each element is checked by the parser it is handed to. A text with two members of the key
 * is read by its first (jansson keeps the last). Pure. */
#ifndef SG_JSONSCAN_H
#define SG_JSONSCAN_H

#include <stddef.h>

enum sg_jscan {
	SG_JSCAN_OK = 0,
	SG_JSCAN_SYNTAX = -1,     /* not well-formed JSON (as far as the scanner looks) */
	SG_JSCAN_NOT_OBJECT = -2, /* the text is JSON but not an object */
	SG_JSCAN_NO_ARRAY = -3,   /* the object has no member `key` that is an array */
};

/* Deeper than this is a syntax error. */
#define SG_JSCAN_MAX_DEPTH 1024

/* The elements of the array under the top-level member `key` (spelled without escapes) of the
 * object in text[0..len), one at a time, so a long array can be worked through in slices (the
 * event loop runs between them). begin finds the array (an enum sg_jscan); each next gives
 * the following element (1), or 0 once the array and the object around it have ended, or
 * SG_JSCAN_SYNTAX. The text must stay as it is meanwhile. */
struct sg_jscanner {
	const char *text;
	size_t len, pos, index;
	int inside;
};
int sg_jscan_begin(struct sg_jscanner *js, const char *text, size_t len, const char *key);
int sg_jscan_next(struct sg_jscanner *js, const char **el, size_t *ellen);

#endif
