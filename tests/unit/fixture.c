/* fixture.c - golden fixtures for the translation tests; see fixture.h. */
#include "fixture.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"

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
		json_object_foreach((json_t *)a, key, v) {
			keys[n++] = key;
		}
		json_object_foreach((json_t *)b, key, v) {
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

int sg_fixture_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- allocation-failure injection ------------------------------------------------------ */

static struct {
	long countdown; /* allocations left before one fails; < 0 = never */
	long live;      /* allocations not yet freed */
	int fired;
	json_malloc_t old_malloc;
	json_free_t old_free;
} inject;

/* Two size_t of header keep the block as aligned as malloc's own. */
#define INJECT_HEADER 2

static void *inject_malloc(size_t n)
{
	size_t *p;

	if (inject.countdown == 0) {
		inject.fired = 1;
		inject.countdown = -1;
		return NULL;
	}
	if (inject.countdown > 0)
		inject.countdown--;
	p = malloc(n + sizeof(size_t) * INJECT_HEADER);
	if (!p)
		return NULL;
	inject.live++;
	return p + INJECT_HEADER;
}

static void inject_free(void *ptr)
{
	size_t *p = ptr;

	if (!p)
		return;
	inject.live--;
	free(p - INJECT_HEADER);
}

void sg_fixture_alloc_begin(long n)
{
	json_get_alloc_funcs(&inject.old_malloc, &inject.old_free);
	inject.countdown = n;
	inject.live = 0;
	inject.fired = 0;
	json_set_alloc_funcs(inject_malloc, inject_free);
}

int sg_fixture_alloc_fired(void)
{
	return inject.fired;
}

long sg_fixture_alloc_end(void)
{
	json_set_alloc_funcs(inject.old_malloc, inject.old_free);
	return inject.live;
}

/* ---- north-shape checkers -------------------------------------------------------------- */

void sg_check_502(const struct sg_error *err, const char *backend, const char *needle)
{
	char prefix[96];

	snprintf(prefix, sizeof(prefix), "backend '%s': ", backend);
	ck_assert_int_eq(err->status, 502);
	ck_assert_str_eq(err->type, "api_error");
	ck_assert_msg(!strncmp(err->message, prefix, strlen(prefix)), "message: %s", err->message);
	ck_assert_msg(strstr(err->message, needle), "message '%s' lacks '%s'", err->message,
	              needle);
}

const char *const sg_check_session_required[] = {
    "id",         "type",           "agent",    "archived_at",         "budget",    "created_at",
    "updated_at", "environment_id", "metadata", "outcome_evaluations", "resources", "stats",
    "status",     "title",          "usage",    "vault_ids",           NULL};

const char *const sg_check_session_keys[] = {"id",
                                             "type",
                                             "agent",
                                             "archived_at",
                                             "budget",
                                             "created_at",
                                             "updated_at",
                                             "environment_id",
                                             "metadata",
                                             "outcome_evaluations",
                                             "resources",
                                             "stats",
                                             "status",
                                             "title",
                                             "usage",
                                             "vault_ids",
                                             "deployment_id",
                                             NULL};

const char *const sg_check_agent_keys[] = {"id",          "type",    "name",  "description",
                                           "system",      "version", "model", "execution_identity",
                                           "mcp_servers", "skills",  "tools", "multiagent",
                                           NULL};

int sg_check_keys(const json_t *obj, const char *const *keys, const char *const *req,
                  const char *label)
{
	const char *key;
	const json_t *v;
	size_t k;
	int ok = 1;

	json_object_foreach((json_t *)obj, key, v) {
		for (k = 0; keys && keys[k] && strcmp(keys[k], key); k++)
			;
		if (keys && !keys[k]) {
			fprintf(stderr, "%s: unexpected key %s\n", label, key);
			ok = 0;
		}
	}
	for (k = 0; req && req[k]; k++) {
		if (!json_object_get(obj, req[k])) {
			fprintf(stderr, "%s: missing key %s\n", label, req[k]);
			ok = 0;
		}
	}
	return ok;
}

static const struct sg_check_event_type *event_type(const struct sg_check_event_rules *rules,
                                                    const char *type)
{
	size_t t;

	for (t = 0; type && t < rules->ntypes; t++)
		if (!strcmp(rules->types[t].type, type))
			return &rules->types[t];
	return NULL;
}

int sg_check_event_keys(const json_t *events, const struct sg_check_event_rules *rules,
                        const char *label)
{
	const json_t *ev;
	size_t i, k;
	int bad = 0;

	for (i = 0; (ev = json_array_get(events, i)); i++) {
		const char *type = json_string_value(json_object_get(ev, "type"));
		const struct sg_check_event_type *t = event_type(rules, type);
		const char *key;
		const json_t *v;

		if (!type || (!t && rules->known_types_only) ||
		    (rules->envelope_ok && !rules->envelope_ok(ev))) {
			fprintf(stderr, "%s: [%zu] bad envelope\n", label, i);
			bad = 1;
			continue;
		}
		json_object_foreach((json_t *)ev, key, v) {
			int known = !strcmp(key, "id") || !strcmp(key, "type") ||
			            !strcmp(key, "processed_at");

			/* A leading '!' only marks the key required. */
			for (k = 0; !known && t && k < 4 && t->keys[k]; k++)
				known = !strcmp(t->keys[k] + (t->keys[k][0] == '!'), key);
			if (!known) {
				fprintf(stderr, "%s: [%zu] %s has key %s\n", label, i, type, key);
				bad = 1;
			}
		}
		for (k = 0; t && k < 4 && t->keys[k]; k++) {
			if (t->keys[k][0] == '!' && !json_object_get(ev, t->keys[k] + 1)) {
				fprintf(stderr, "%s: [%zu] %s lacks %s\n", label, i, type,
				        t->keys[k] + 1);
				bad = 1;
			}
		}
		if (!strcmp(type, "session.status_idle") &&
		    !json_is_null(json_object_get(ev, "stop_details"))) {
			fprintf(stderr, "%s: [%zu] stop_details is not null\n", label, i);
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

long sg_check_find_event(const json_t *events, const char *id)
{
	const json_t *ev;
	size_t i;

	for (i = 0; id && (ev = json_array_get(events, i)); i++)
		if (!strcmp(json_string_value(json_object_get(ev, "id")), id))
			return (long)i;
	return -1;
}

/* 1 when the event with this id stands before `before` and has one of types. */
static int earlier_of(const json_t *events, const char *id, size_t before, const char *const *types)
{
	long at = sg_check_find_event(events, id);
	const char *t;
	size_t k;

	if (at < 0 || (size_t)at >= before)
		return 0;
	t = json_string_value(json_object_get(json_array_get(events, (size_t)at), "type"));
	for (k = 0; types[k]; k++)
		if (!strcmp(types[k], t))
			return 1;
	return 0;
}

int sg_check_links(const json_t *events, const char *const *result_of, const char *const *action_of,
                   const char *label)
{
	static const char *const start[] = {"span.model_request_start", NULL};
	const json_t *ev, *id;
	size_t i, k;
	int bad = 0;

	for (i = 0; (ev = json_array_get(events, i)); i++) {
		const char *type = json_string_value(json_object_get(ev, "type"));
		const json_t *stop = json_object_get(ev, "stop_reason");

		if (!strcmp(type, "agent.tool_result") &&
		    !earlier_of(events, json_string_value(json_object_get(ev, "tool_use_id")), i,
		                result_of)) {
			fprintf(stderr, "%s: [%zu] tool_use_id does not resolve\n", label, i);
			bad = 1;
		}
		if (!strcmp(type, "span.model_request_end") &&
		    !earlier_of(events,
		                json_string_value(json_object_get(ev, "model_request_start_id")), i,
		                start)) {
			fprintf(stderr, "%s: [%zu] model_request_start_id unresolved\n", label, i);
			bad = 1;
		}
		for (k = 0; (id = json_array_get(json_object_get(stop, "event_ids"), k)); k++) {
			if (!earlier_of(events, json_string_value(id), i, action_of)) {
				fprintf(stderr, "%s: [%zu] event_ids[%zu] unresolved\n", label, i,
				        k);
				bad = 1;
			}
		}
	}
	return bad ? -1 : 0;
}

int sg_check_unique_ids(const json_t *events)
{
	json_t *seen = json_object();
	const json_t *ev;
	size_t i;
	int dup = 0;

	for (i = 0; (ev = json_array_get(events, i)); i++) {
		const char *id = json_string_value(json_object_get(ev, "id"));

		if (json_object_get(seen, id))
			dup = 1;
		json_object_set_new(seen, id, json_true());
	}
	json_decref(seen);
	return dup ? -1 : 0;
}
