/* test_manpage.c - keeps man/sessiongate.8 true to the code.
 *
 * The man page is the reference for every configuration key. Two directions must hold:
 *   code -> man: every key the sources accept, read from the NULL-terminated string arrays
 *                they hand to the key checkers (check_keys, sg_options_check,
 *                sg_options_unknown), is a term of the man page;
 *   example -> man: every key of etc/sessiongate*.json, by its path ("limits.max_body_bytes",
 *                "backends[].options.timezone"), is a term of the man page.
 * The man page may document keys the code does not have yet (other branches add them).
 * A term is the first word of the line after a .TP or .TQ, font escapes removed. */
#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

struct strset {
	char **v;
	size_t n, cap;
};

static void set_add(struct strset *s, const char *str, size_t len)
{
	for (size_t i = 0; i < s->n; i++)
		if (strlen(s->v[i]) == len && memcmp(s->v[i], str, len) == 0)
			return;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		ck_assert_ptr_nonnull(s->v);
	}
	s->v[s->n] = strndup(str, len);
	ck_assert_ptr_nonnull(s->v[s->n]);
	s->n++;
}

static int set_has(const struct strset *s, const char *str)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], str) == 0)
			return 1;
	return 0;
}

static void set_free(struct strset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* The whole file, NUL-terminated (new), or NULL. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	do {
		if (cap - len < 4096) {
			cap = cap ? 2 * cap : 65536;
			buf = realloc(buf, cap + 1);
			ck_assert_ptr_nonnull(buf);
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

static char *src_path(const char *rel)
{
	static char buf[4096];
	const char *root = getenv("SG_SRCDIR");

	snprintf(buf, sizeof(buf), "%s/%s", root && *root ? root : "..", rel);
	return buf;
}

static char *read_src(const char *rel)
{
	char *text = slurp(src_path(rel));

	ck_assert_msg(text != NULL, "cannot read %s (is SG_SRCDIR set?)", src_path(rel));
	return text;
}

/* ---- the man page's terms ---- */

/* One roff word with font escapes (\fB \fI \fR \fP) and quotes removed and \- as -. */
static void add_term(struct strset *terms, const char *p)
{
	char word[512];
	size_t n = 0;
	int quoted = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '"') {
		quoted = 1;
		p++;
	}
	while (*p && *p != '\n' && n + 1 < sizeof(word)) {
		if (p[0] == '\\' && p[1] == 'f' && p[2]) {
			p += 3;
			continue;
		}
		if (p[0] == '\\' && p[1] == '-') {
			word[n++] = '-';
			p += 2;
			continue;
		}
		if (*p == '"' || (!quoted && (*p == ' ' || *p == '\t')) || (quoted && *p == ' '))
			break;
		word[n++] = *p++;
	}
	if (n)
		set_add(terms, word, n);
}

/* Terms of a man page: the line after each .TP or .TQ; for a macro line (.B, .BI, .BR, .I,
 * .IR) its first argument. */
static void man_terms(const char *man, struct strset *terms)
{
	const char *p = man;

	while ((p = strstr(p, "\n.T")) != NULL) {
		p++;
		if (strncmp(p, ".TP", 3) && strncmp(p, ".TQ", 3))
			continue;
		p = strchr(p, '\n');
		if (!p)
			break;
		p++;
		if (*p == '.') {
			while (*p && *p != ' ' && *p != '\n')
				p++; /* the macro's name */
		}
		add_term(terms, p);
	}
}

/* ---- keys the code accepts ---- */

struct codekey {
	char key[128];
	char prefix[128]; /* the path the key must be documented under, e.g. "limits." */
	int exact;        /* 0: only the last path component is known */
	char origin[160];
};

struct keylist {
	struct codekey *v;
	size_t n;
};

/* Comments blanked out (same length, so offsets hold); strings and characters kept. */
static void blank_comments(char *t)
{
	for (char *p = t; *p; p++) {
		if (*p == '"' || *p == '\'') {
			char q = *p;

			for (p++; *p && *p != q; p++)
				if (*p == '\\' && p[1])
					p++;
			if (!*p)
				break;
		} else if (p[0] == '/' && p[1] == '*') {
			char *e = strstr(p + 2, "*/");
			char *end = e ? e + 2 : p + strlen(p);

			memset(p, ' ', (size_t)(end - p));
			p = end - 1;
		} else if (p[0] == '/' && p[1] == '/') {
			while (*p && *p != '\n')
				*p++ = ' ';
			if (!*p)
				break;
		}
	}
}

/* Which function (index of its opening brace at depth 0, or -1 at file scope) holds off. */
static long func_of(const char *t, size_t off)
{
	long depth = 0, start = -1;

	for (size_t i = 0; i < off && t[i]; i++) {
		if (t[i] == '"' || t[i] == '\'') {
			char q = t[i];

			for (i++; t[i] && t[i] != q; i++)
				if (t[i] == '\\' && t[i + 1])
					i++;
			if (!t[i])
				break;
		} else if (t[i] == '{') {
			if (depth++ == 0)
				start = (long)i;
		} else if (t[i] == '}') {
			if (--depth == 0)
				start = -1;
		}
	}
	return start;
}

struct array {
	char name[64];
	long func;
	struct strset keys;
};

/* Every `const char *const NAME[] = { "a", "b", NULL }` of t. */
static size_t find_arrays(const char *t, struct array *out, size_t max)
{
	regex_t re;
	regmatch_t m[2];
	size_t n = 0;
	const char *p = t;

	ck_assert_int_eq(
	    regcomp(&re,
	            "const[[:space:]]+char[[:space:]]*\\*[[:space:]]*const[[:space:]]+"
	            "([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\\[[[:space:]]*\\][[:space:]]*="
	            "[[:space:]]*\\{",
	            REG_EXTENDED),
	    0);
	while (n < max && regexec(&re, p, 2, m, 0) == 0) {
		struct array *a = &out[n++];
		const char *q = p + m[0].rm_eo;

		memset(a, 0, sizeof(*a));
		snprintf(a->name, sizeof(a->name), "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
		         p + m[1].rm_so);
		a->func = func_of(t, (size_t)(p + m[0].rm_so - t));
		while (*q && *q != '}') {
			if (*q == '"') {
				const char *e = strchr(q + 1, '"');

				ck_assert_ptr_nonnull(e);
				set_add(&a->keys, q + 1, (size_t)(e - q - 1));
				q = e;
			}
			q++;
		}
		p = q;
	}
	regfree(&re);
	return n;
}

/* The arguments of the call whose '(' is at open: up to 6, trimmed, into args. */
static int call_args(const char *open, char args[][128], int max)
{
	int depth = 0, n = 0;
	const char *start = open + 1;

	for (const char *p = open; *p; p++) {
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			continue;
		}
		if (*p == '(') {
			depth++;
		} else if ((*p == ',' && depth == 1) || (*p == ')' && depth == 1)) {
			const char *s = start, *e = p;

			while (s < e && (*s == ' ' || *s == '\t' || *s == '\n'))
				s++;
			while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n'))
				e--;
			if (n < max)
				snprintf(args[n], 128, "%.*s", (int)(e - s), s);
			n++;
			start = p + 1;
			if (*p == ')')
				return n;
		} else if (*p == ')') {
			depth--;
		}
	}
	return n;
}

/* Keys of one source file: the arrays handed to the key checkers, each key with the path it
 * is documented under when the call says (check_keys' `where` as a literal, or a backend's
 * options for sg_options_check). */
static void scan_source(const char *rel, struct keylist *out)
{
	char *t = read_src(rel);
	struct array arrays[64];
	size_t na;
	regex_t re;
	regmatch_t m[2];
	const char *p;

	blank_comments(t);
	na = find_arrays(t, arrays, 64);
	ck_assert_int_eq(regcomp(&re,
	                         "(check_keys|sg_options_check|sg_options_unknown)[[:space:]]*\\(",
	                         REG_EXTENDED),
	                 0);
	for (p = t; regexec(&re, p, 2, m, 0) == 0; p += m[0].rm_eo) {
		char args[6][128], fn[32];
		const char *open = p + m[0].rm_eo - 1;
		int nargs = call_args(open, args, 6), ai;
		long func = func_of(t, (size_t)(open - t));
		const char *prefix = NULL;
		struct array *a = NULL;

		snprintf(fn, sizeof(fn), "%.*s", (int)(m[1].rm_eo - m[1].rm_so), p + m[1].rm_so);
		if (strcmp(fn, "check_keys") == 0) {
			ai = 3;
			if (nargs == 4 && args[1][0] == '"') {
				static char buf[128];
				size_t len = strlen(args[1]) - 2;

				snprintf(buf, sizeof(buf), "%.*s%s", (int)len, args[1] + 1,
				         len ? "." : "");
				prefix = buf;
			}
		} else {
			ai = 1;
			if (strcmp(fn, "sg_options_check") == 0)
				prefix = "backends[].options.";
		}
		if (nargs <= ai)
			continue; /* the checker's own definition or declaration */
		for (size_t i = 0; i < na && !a; i++)
			if (strcmp(arrays[i].name, args[ai]) == 0 && arrays[i].func == func)
				a = &arrays[i];
		for (size_t i = 0; i < na && !a; i++)
			if (strcmp(arrays[i].name, args[ai]) == 0 && arrays[i].func == -1)
				a = &arrays[i];
		if (!a)
			continue; /* a parameter passed on (inside the checkers themselves) */
		for (size_t k = 0; k < a->keys.n; k++) {
			struct codekey *ck;

			out->v = realloc(out->v, (out->n + 1) * sizeof(*out->v));
			ck_assert_ptr_nonnull(out->v);
			ck = &out->v[out->n++];
			memset(ck, 0, sizeof(*ck));
			snprintf(ck->key, sizeof(ck->key), "%s", a->keys.v[k]);
			snprintf(ck->prefix, sizeof(ck->prefix), "%s", prefix ? prefix : "");
			ck->exact = prefix != NULL;
			snprintf(ck->origin, sizeof(ck->origin), "%s: %s", rel, a->name);
		}
	}
	regfree(&re);
	for (size_t i = 0; i < na; i++)
		set_free(&arrays[i].keys);
	free(t);
}

/* Keys of every C file under src/ and mappings/. */
static void code_keys(struct keylist *out)
{
	static const char *const dirs[] = {"src", "mappings"};

	for (size_t d = 0; d < 2; d++) {
		DIR *dir = opendir(src_path(dirs[d]));
		struct dirent *e;

		ck_assert_msg(dir != NULL, "cannot list %s", src_path(dirs[d]));
		while ((e = readdir(dir)) != NULL) {
			size_t len = strlen(e->d_name);
			char rel[512];

			if (len < 3 || strcmp(e->d_name + len - 2, ".c") != 0)
				continue;
			snprintf(rel, sizeof(rel), "%s/%s", dirs[d], e->d_name);
			scan_source(rel, out);
		}
		closedir(dir);
	}
}

/* Is the code's key documented: the exact path, or a term ending in ".key" (or the key). */
static int documented(const struct strset *terms, const struct codekey *ck)
{
	size_t klen = strlen(ck->key);

	if (ck->exact) {
		char path[256];

		snprintf(path, sizeof(path), "%s%s", ck->prefix, ck->key);
		return set_has(terms, path);
	}
	for (size_t i = 0; i < terms->n; i++) {
		const char *t = terms->v[i];
		size_t tlen = strlen(t);

		if (tlen >= klen && strcmp(t + tlen - klen, ck->key) == 0 &&
		    (tlen == klen || t[tlen - klen - 1] == '.'))
			return 1;
	}
	return 0;
}

/* Keys of the code the man page text lacks, as "path (origin)" lines into missing. */
static void code_missing(const char *man, const struct keylist *keys, struct strset *missing)
{
	struct strset terms = {0};

	man_terms(man, &terms);
	for (size_t i = 0; i < keys->n; i++) {
		char line[512];

		if (documented(&terms, &keys->v[i]))
			continue;
		snprintf(line, sizeof(line), "%s%s%s (%s)", keys->v[i].exact ? "" : "*.",
		         keys->v[i].prefix, keys->v[i].key, keys->v[i].origin);
		set_add(missing, line, strlen(line));
	}
	set_free(&terms);
}

/* ---- keys of the example configurations ---- */

/* Every key path of v below path; a key routes' identity objects are under a backend's name,
 * which is documented as BACKEND. */
static void json_paths(const json_t *v, const char *path, struct strset *out)
{
	char sub[512];

	if (json_is_object(v)) {
		const char *k;
		json_t *child;
		int named = strcmp(path, "keys[].backends") == 0;

		json_object_foreach((json_t *)v, k, child) {
			if (k[0] == '_')
				continue;
			snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "",
			         named ? "BACKEND" : k);
			set_add(out, sub, strlen(sub));
			json_paths(child, sub, out);
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *child;

		snprintf(sub, sizeof(sub), "%s[]", path);
		json_array_foreach(v, i, child)
			json_paths(child, sub, out);
	}
}

static void example_paths(struct strset *out)
{
	DIR *dir = opendir(src_path("etc"));
	struct dirent *e;
	int files = 0;

	ck_assert_ptr_nonnull(dir);
	while ((e = readdir(dir)) != NULL) {
		size_t len = strlen(e->d_name);
		char rel[512];
		json_error_t je;
		json_t *root;

		if (strncmp(e->d_name, "sessiongate", 11) != 0 || len < 5 ||
		    strcmp(e->d_name + len - 5, ".json") != 0)
			continue;
		snprintf(rel, sizeof(rel), "etc/%s", e->d_name);
		root = json_load_file(src_path(rel), JSON_REJECT_DUPLICATES, &je);
		ck_assert_msg(root != NULL, "%s: %s", rel, je.text);
		json_paths(root, "", out);
		json_decref(root);
		files++;
	}
	closedir(dir);
	ck_assert_int_ge(files, 2); /* the example and the demo, at least */
}

static void example_missing(const char *man, const struct strset *paths, struct strset *missing)
{
	struct strset terms = {0};

	man_terms(man, &terms);
	for (size_t i = 0; i < paths->n; i++)
		if (!set_has(&terms, paths->v[i]))
			set_add(missing, paths->v[i], strlen(paths->v[i]));
	set_free(&terms);
}

static void assert_none(const struct strset *missing, const char *what)
{
	char msg[8192] = "";

	for (size_t i = 0; i < missing->n && strlen(msg) < sizeof(msg) - 300; i++) {
		strcat(msg, "\n  ");
		strcat(msg, missing->v[i]);
	}
	ck_assert_msg(missing->n == 0, "%zu %s not in man/sessiongate.8:%s", missing->n, what, msg);
}

/* The man page without the line holding term (and so without that term). */
static char *without_term(const char *man, const char *term)
{
	char needle[256];
	char *out = strdup(man), *at, *eol;

	snprintf(needle, sizeof(needle), "\\fB%s\\fR", term);
	ck_assert_ptr_nonnull(out);
	at = strstr(out, needle);
	ck_assert_msg(at != NULL, "man page has no term %s", term);
	while (at > out && at[-1] != '\n')
		at--;
	eol = strchr(at, '\n');
	memmove(at, eol + 1, strlen(eol + 1) + 1);
	return out;
}

/* ---- tests ---- */

START_TEST(test_code_keys_found)
{
	/* The scanner must keep seeing the code's keys, or the next test would pass vacuously. */
	struct keylist keys = {0};
	static const char *const expect[][2] = {
	    {"", "listen"},
	    {"", "cursor_secret"},
	    {"limits.", "max_header_bytes"},
	    {"streams.", "replay_events"},
	    {"cache.", "walk_snapshot_ms"},
	    {"log.", "access"},
	    {"backends[].options.", "timezone"},
	    {"backends[].options.", "agent_cache_ttl_ms"},
	    {"backends[].options.", "anthropic_version"},
	};
	int seen_type = 0, seen_burst = 0, seen_failures = 0;

	code_keys(&keys);
	ck_assert_int_ge(keys.n, 50);
	for (size_t e = 0; e < sizeof(expect) / sizeof(expect[0]); e++) {
		int found = 0;

		for (size_t i = 0; i < keys.n; i++)
			found |= keys.v[i].exact && strcmp(keys.v[i].prefix, expect[e][0]) == 0 &&
			         strcmp(keys.v[i].key, expect[e][1]) == 0;
		ck_assert_msg(found, "the scanner did not find %s%s", expect[e][0], expect[e][1]);
	}
	for (size_t i = 0; i < keys.n; i++) {
		seen_type |= strcmp(keys.v[i].key, "credential_id") == 0;
		seen_burst |= strcmp(keys.v[i].key, "burst") == 0;
		seen_failures |= strcmp(keys.v[i].key, "failures") == 0;
	}
	ck_assert(seen_type && seen_burst && seen_failures);
	free(keys.v);
}
END_TEST

START_TEST(test_code_keys_documented)
{
	struct keylist keys = {0};
	struct strset missing = {0};
	char *man = read_src("man/sessiongate.8");

	code_keys(&keys);
	code_missing(man, &keys, &missing);
	assert_none(&missing, "configuration key(s) the code accepts are");
	set_free(&missing);
	free(keys.v);
	free(man);
}
END_TEST

START_TEST(test_example_keys_documented)
{
	struct strset paths = {0}, missing = {0};
	char *man = read_src("man/sessiongate.8");

	example_paths(&paths);
	ck_assert_msg(set_has(&paths, "backends[].options.chat_model_config.credential_id") &&
	                  set_has(&paths, "keys[].backends.BACKEND.user_id") &&
	                  set_has(&paths, "limits.max_upstream_bytes"),
	              "the example's paths were not read");
	example_missing(man, &paths, &missing);
	assert_none(&missing, "key(s) of etc/sessiongate*.json are");
	set_free(&missing);
	set_free(&paths);
	free(man);
}
END_TEST

/* The checks fail when a key leaves the man page: both directions, an exact path and a
 * module option. */
START_TEST(test_removed_key_is_caught)
{
	static const char *const removed[] = {"limits.max_header_bytes",
	                                      "backends[].options.timezone", "keys[].sha256"};
	struct keylist keys = {0};
	struct strset paths = {0};
	char *man = read_src("man/sessiongate.8");

	code_keys(&keys);
	example_paths(&paths);
	for (size_t i = 0; i < sizeof(removed) / sizeof(removed[0]); i++) {
		char *cut = without_term(man, removed[i]);
		struct strset a = {0}, b = {0};
		const char *leaf = strrchr(removed[i], '.') + 1;
		int named = 0;

		code_missing(cut, &keys, &a);
		example_missing(cut, &paths, &b);
		for (size_t k = 0; k < a.n; k++)
			named |= strstr(a.v[k], leaf) != NULL;
		ck_assert_msg(named, "code -> man missed the removal of %s", removed[i]);
		ck_assert_msg(set_has(&b, removed[i]), "example -> man missed the removal of %s",
		              removed[i]);
		set_free(&a);
		set_free(&b);
		free(cut);
	}
	set_free(&paths);
	free(keys.v);
	free(man);
}
END_TEST

/* Every option `sessiongate --help` names is an OPTIONS term; the sections are there. */
START_TEST(test_options_and_sections)
{
	static const char *const sections[] = {
	    ".SH NAME",  ".SH SYNOPSIS",  ".SH DESCRIPTION",   ".SH OPTIONS",     ".SH SIGNALS",
	    ".SH FILES", ".SH ENDPOINTS", ".SH CONFIGURATION", ".SH EXIT STATUS", ".SH SEE ALSO"};
	static const char *const words[] = {"SIGHUP",   "SIGTERM", "SIGINT",
	                                    "/healthz", "/readyz", "/metrics"};
	char *man = read_src("man/sessiongate.8");
	const char *bdir = getenv("SG_BUILDDIR");
	char cmd[4096], out[4096], *tok, *save = NULL;
	struct strset terms = {0};
	size_t n;
	int options = 0;
	FILE *p;

	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		ck_assert_msg(strstr(man, sections[i]) != NULL, "no section %s", sections[i]);
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		ck_assert_msg(strstr(man, words[i]) != NULL, "%s is not documented", words[i]);
	snprintf(cmd, sizeof(cmd), "%s/sessiongate --help", bdir && *bdir ? bdir : ".");
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	ck_assert_int_eq(pclose(p), 0);
	man_terms(man, &terms);
	for (tok = strtok_r(out, " \t\n[]()", &save); tok;
	     tok = strtok_r(NULL, " \t\n[]()", &save)) {
		if (strncmp(tok, "--", 2) != 0 && strcmp(tok, "hash-key") != 0)
			continue;
		options++;
		ck_assert_msg(set_has(&terms, tok), "option %s is not an OPTIONS term", tok);
	}
	ck_assert_int_ge(options, 4); /* --config, --check-config, --version, hash-key */
	set_free(&terms);
	free(man);
}
END_TEST

/* groff finds nothing to warn about (lintian runs the same check on the package). */
START_TEST(test_groff_clean)
{
	char cmd[8192], out[4096];
	size_t n;
	FILE *p;

	if (system("command -v groff >/dev/null 2>&1") != 0) {
		fprintf(stderr, "test_groff_clean: groff is not installed; not checked\n");
		return;
	}
	snprintf(cmd, sizeof(cmd), "LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z '%s' 2>&1",
	         src_path("man/sessiongate.8"));
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	ck_assert_int_eq(pclose(p), 0);
	ck_assert_msg(n == 0, "groff warns:\n%s", out);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("manpage");
	TCase *tc = tcase_create("manpage");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_code_keys_found);
	tcase_add_test(tc, test_code_keys_documented);
	tcase_add_test(tc, test_example_keys_documented);
	tcase_add_test(tc, test_removed_key_is_caught);
	tcase_add_test(tc, test_options_and_sections);
	tcase_add_test(tc, test_groff_clean);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
