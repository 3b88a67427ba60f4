/* fixture.c - golden fixtures for the translation tests; see fixture.h. */
#include "fixture.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FIX_PATH_MAX 4096
#define FIX_JPATH_MAX 512 /* bytes of a reported JSON path like $.agent.model.id */

/* Builds $SG_SRCDIR/tests/fixtures/<group>[/<name>[/<file>]] into buf. Returns 0, or -1
 * (with a message) when the path does not fit. */
static int fixture_path(char *buf, size_t len, const char *group, const char *name,
                        const char *file)
{
	const char *root = getenv("SG_SRCDIR");
	int n;

	if (!root || !*root)
		root = ".";
	n = snprintf(buf, len, "%s/tests/fixtures/%s%s%s%s%s", root, group, name ? "/" : "",
	             name ? name : "", file ? "/" : "", file ? file : "");
	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "fixture: path too long for %s/%s/%s\n", group, name ? name : "",
		        file ? file : "");
		return -1;
	}
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

size_t sg_fixture_list(const char *group, char names[][SG_FIXTURE_NAME_MAX], size_t max)
{
	char dir[FIX_PATH_MAX], sub[FIX_PATH_MAX];
	struct dirent *de;
	struct stat st;
	size_t count = 0;
	DIR *d;

	if (fixture_path(dir, sizeof(dir), group, NULL, NULL))
		return 0;
	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "fixture: cannot open %s (is SG_SRCDIR set?)\n", dir);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		int n;

		if (de->d_name[0] == '.')
			continue;
		n = snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		if (n < 0 || (size_t)n >= sizeof(sub) || stat(sub, &st) || !S_ISDIR(st.st_mode))
			continue;
		if (len >= SG_FIXTURE_NAME_MAX) {
			fprintf(stderr, "fixture: case name too long, skipped: %s\n", de->d_name);
			continue;
		}
		if (count == max) {
			fprintf(stderr, "fixture: more than %zu cases in %s, rest skipped\n", max,
			        dir);
			break;
		}
		memcpy(names[count], de->d_name, len + 1);
		count++;
	}
	closedir(d);
	qsort(names, count, SG_FIXTURE_NAME_MAX, cmp_names);
	return count;
}

int sg_fixture_exists(const char *group, const char *name, const char *file)
{
	char path[FIX_PATH_MAX];
	struct stat st;

	if (fixture_path(path, sizeof(path), group, name, file))
		return 0;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

json_t *sg_fixture_load(const char *group, const char *name, const char *file)
{
	char path[FIX_PATH_MAX];
	json_error_t jerr;
	json_t *v;

	if (fixture_path(path, sizeof(path), group, name, file))
		return NULL;
	/* Duplicate keys in a hand-written fixture are always a mistake. */
	v = json_load_file(path, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!v)
		fprintf(stderr, "fixture: %s:%d:%d: %s\n", path, jerr.line, jerr.column, jerr.text);
	return v;
}

/* Appends ".key" (or "[idx]" when key is NULL) to a bounded JSON-path buffer; a segment
 * that does not fit is left out. */
static void jpath_push(char *buf, size_t len, const char *key, size_t idx)
{
	size_t used = strlen(buf);
	int n;

	if (used + 1 >= len)
		return;
	if (key)
		n = snprintf(buf + used, len - used, ".%s", key);
	else
		n = snprintf(buf + used, len - used, "[%zu]", idx);
	if (n < 0 || (size_t)n >= len - used)
		buf[used] = '\0';
}

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "real";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		return "null";
	}
	return "?";
}

/* Finds the first place where a and b differ, depth first with object keys in sorted order,
 * so a failing golden test points at the field instead of two pages of JSON. Writes the
 * path and a short reason into path/why; returns 1 when a difference was found. */
static int first_diff(const json_t *a, const json_t *b, char *path, size_t plen, char *why,
                      size_t wlen)
{
	size_t mark = strlen(path);

	if (json_typeof(a) != json_typeof(b)) {
		snprintf(why, wlen, "type %s vs expected %s", type_name(a), type_name(b));
		return 1;
	}
	if (json_is_object(a)) {
		size_t i, n = 0, cap = json_object_size(a) + json_object_size(b);
		const char **keys = calloc(cap ? cap : 1, sizeof(*keys));
		const char *key;
		const json_t *v;
		int found = 0;

		if (!keys) {
			snprintf(why, wlen, "out of memory");
			return 1;
		}
		/* The sorted union of both key sets. */
		json_object_foreach((json_t *)a, key, v)
		{
			keys[n++] = key;
		}
		json_object_foreach((json_t *)b, key, v)
		{
			if (!json_object_get(a, key))
				keys[n++] = key;
		}
		qsort(keys, n, sizeof(*keys), cmp_keys);
		for (i = 0; i < n && !found; i++) {
			jpath_push(path, plen, keys[i], 0);
			if (!json_object_get(a, keys[i])) {
				snprintf(why, wlen, "missing (expected present)");
				found = 1;
			} else if (!json_object_get(b, keys[i])) {
				snprintf(why, wlen, "unexpected key");
				found = 1;
			} else {
				found =
				    first_diff(json_object_get(a, keys[i]),
				               json_object_get(b, keys[i]), path, plen, why, wlen);
			}
			if (!found)
				path[mark] = '\0';
		}
		free(keys);
		return found;
	}
	if (json_is_array(a)) {
		size_t i, na = json_array_size(a), nb = json_array_size(b);

		for (i = 0; i < na && i < nb; i++) {
			jpath_push(path, plen, NULL, i);
			if (first_diff(json_array_get(a, i), json_array_get(b, i), path, plen, why,
			               wlen))
				return 1;
			path[mark] = '\0';
		}
		if (na != nb) {
			snprintf(why, wlen, "length %zu vs expected %zu", na, nb);
			return 1;
		}
		return 0;
	}
	if (!json_equal((json_t *)a, (json_t *)b)) {
		char *ga = json_dumps(a, JSON_ENCODE_ANY), *gb = json_dumps(b, JSON_ENCODE_ANY);

		snprintf(why, wlen, "%.200s vs expected %.200s", ga ? ga : "?", gb ? gb : "?");
		free(ga);
		free(gb);
		return 1;
	}
	return 0;
}

/* Writes v as the new golden file: indented, keys in the order the code emits them. */
static int write_golden(const json_t *v, const char *path)
{
	FILE *f;
	int rc;

	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "fixture: cannot write %s\n", path);
		return 0;
	}
	rc = json_dumpf(v, f, JSON_INDENT(2) | JSON_ENCODE_ANY);
	rc |= fputc('\n', f) == EOF;
	rc |= fclose(f);
	if (rc) {
		fprintf(stderr, "fixture: error writing %s\n", path);
		return 0;
	}
	fprintf(stderr, "fixture: rewrote %s\n", path);
	return 1;
}

int sg_fixture_expect(const json_t *got, const char *group, const char *name, const char *file)
{
	char path[FIX_PATH_MAX], jpath[FIX_JPATH_MAX] = "$", why[512] = "";
	const char *update = getenv("SG_UPDATE_GOLDEN");
	json_t *want;
	char *gs, *ws;
	int equal;

	if (fixture_path(path, sizeof(path), group, name, file))
		return 0;
	if (update && !strcmp(update, "1"))
		return write_golden(got, path);
	want = sg_fixture_load(group, name, file);
	if (!want)
		return 0;
	equal = json_equal((json_t *)got, want);
	if (!equal) {
		gs = json_dumps(got, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		ws = json_dumps(want, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		first_diff(got, want, jpath, sizeof(jpath), why, sizeof(why));
		fprintf(stderr,
		        "fixture %s/%s/%s: mismatch at %s: %s\n--- got\n%s\n--- expected\n%s\n",
		        group, name, file, jpath, why, gs ? gs : "?", ws ? ws : "?");
		free(gs);
		free(ws);
	}
	json_decref(want);
	return equal;
}
