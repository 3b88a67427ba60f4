/* fuzz_jsonscan.c - libFuzzer harness: the array scanner (src/jsonscan.h). The input is a
 * listing's text; sg_json_scan_array (key "sessions") and the resumable sg_jscan_begin/next
 * must see the same elements and end the same way. When jansson reads the text as an object
 * whose "sessions" is an array (no escapes, no duplicate keys, shallow enough), the scanner
 * must find exactly that array's elements. */
#include "fuzz_common.h"
#include "jsonscan.h"

#define KEY "sessions"
#define MAX_EL 4096

struct els {
	const char *el[MAX_EL];
	size_t len[MAX_EL];
	size_t n;
};

static int collect(void *arg, const char *el, size_t ellen, size_t index)
{
	struct els *e = arg;

	FZ_CHECK(index == e->n);
	if (e->n == MAX_EL)
		return 1; /* stops the scan; the resumable walk stops there too */
	e->el[e->n] = el;
	e->len[e->n] = ellen;
	e->n++;
	return 0;
}

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
	static struct els a, b;
	struct sg_jscanner js;
	const char *text = (const char *)data, *el;
	size_t ellen, i;
	int rc1, rc2;
	json_t *root, *arr;

	a.n = b.n = 0;
	rc1 = sg_json_scan_array(text, size, KEY, collect, &a);
	rc2 = sg_jscan_begin(&js, text, size, KEY);
	if (rc2 == SG_JSCAN_OK) {
		while (b.n < MAX_EL && (rc2 = sg_jscan_next(&js, &el, &ellen)) == 1) {
			FZ_CHECK(el >= text && ellen > 0 && el + ellen <= text + size);
			b.el[b.n] = el;
			b.len[b.n] = ellen;
			b.n++;
		}
		if (b.n == MAX_EL)
			rc2 = 1;
		else if (rc2 == 0)
			rc2 = SG_JSCAN_OK;
	}
	FZ_CHECK(rc1 == rc2);
	FZ_CHECK(a.n == b.n);
	for (i = 0; i < a.n; i++)
		FZ_CHECK(a.el[i] == b.el[i] && a.len[i] == b.len[i]);

	/* against jansson, where the two must agree */
	if (memchr(data, '\\', size) || depth_of(data, size) >= SG_JSCAN_MAX_DEPTH)
		return 0;
	root = json_loadb(text, size, JSON_REJECT_DUPLICATES, NULL);
	if (!root)
		return 0;
	arr = json_object_get(root, KEY);
	if (json_is_array(arr) && json_array_size(arr) < MAX_EL) {
		FZ_CHECK(rc1 == SG_JSCAN_OK);
		FZ_CHECK(a.n == json_array_size(arr));
		for (i = 0; i < a.n; i++) {
			json_t *v = json_loadb(a.el[i], a.len[i], JSON_DECODE_ANY, NULL);

			FZ_CHECK(v != NULL && json_equal(v, json_array_get(arr, i)));
			json_decref(v);
		}
	} else if (json_is_object(root) && !arr) {
		FZ_CHECK(rc1 == SG_JSCAN_NO_ARRAY);
	}
	json_decref(root);
	return 0;
}
