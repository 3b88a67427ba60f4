/* fuzz_jsonscan.c - libFuzzer harness: the array scanner (src/jsonscan.h). The input is a
 * listing's text, walked with sg_jscan_begin/next (key "sessions"): every element lies inside
 * the text, and when jansson reads the text as an object whose "sessions" is an array (no
 * escapes, no duplicate keys, shallow enough), the scanner finds exactly that array's
 * elements; an object without the key is SG_JSCAN_NO_ARRAY. */
#include "fuzz_common.h"
#include "jsonscan.h"

#define KEY "sessions"
#define MAX_EL 4096

struct els {
	const char *el[MAX_EL];
	size_t len[MAX_EL];
	size_t n;
};

/* Nesting depth of the text, counting brackets outside strings (no escapes in it). */
static size_t depth_of(const uint8_t *data, size_t size)
{
	size_t d = 0, max = 0, i;
	int in_str = 0;

	for (i = 0; i < size; i++) {
		if (data[i] == '"')
			in_str = !in_str;
		else if (!in_str && (data[i] == '[' || data[i] == '{') && ++d > max)
			max = d;
		else if (!in_str && (data[i] == ']' || data[i] == '}') && d)
			d--;
	}
	return max;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct els a;
	struct sg_jscanner js;
	const char *text = (const char *)data, *el;
	size_t ellen, i;
	int rc;
	json_t *root, *arr;

	a.n = 0;
	rc = sg_jscan_begin(&js, text, size, KEY);
	if (rc == SG_JSCAN_OK) {
		while (a.n < MAX_EL && (rc = sg_jscan_next(&js, &el, &ellen)) == 1) {
			FZ_CHECK(el >= text && ellen > 0 && el + ellen <= text + size);
			FZ_CHECK(js.index == a.n + 1);
			a.el[a.n] = el;
			a.len[a.n] = ellen;
			a.n++;
		}
		if (a.n == MAX_EL)
			return 0; /* stopped early: nothing more to compare */
		FZ_CHECK(rc == 0 || rc == SG_JSCAN_SYNTAX);
	}

	/* against jansson, where the two must agree */
	if (memchr(data, '\\', size) || depth_of(data, size) >= SG_JSCAN_MAX_DEPTH)
		return 0;
	root = json_loadb(text, size, JSON_REJECT_DUPLICATES, NULL);
	if (!root)
		return 0;
	arr = json_object_get(root, KEY);
	if (json_is_array(arr) && json_array_size(arr) < MAX_EL) {
		FZ_CHECK(rc == 0);
		FZ_CHECK(a.n == json_array_size(arr));
		for (i = 0; i < a.n; i++) {
			json_t *v = json_loadb(a.el[i], a.len[i], JSON_DECODE_ANY, NULL);

			FZ_CHECK(v != NULL && json_equal(v, json_array_get(arr, i)));
			json_decref(v);
		}
	} else if (json_is_object(root) && !arr) {
		FZ_CHECK(rc == SG_JSCAN_NO_ARRAY);
	}
	json_decref(root);
	return 0;
}
