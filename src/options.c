/* options.c - see options.h. */
#include "options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

const char *sg_options_unknown(const json_t *obj, const char *const *allowed)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)obj, k, v) {
		size_t i;

		(void)v;
		if (k[0] == '_')
			continue; /* "_comment" and friends annotate the examples */
		for (i = 0; allowed[i] && strcmp(allowed[i], k); i++)
			;
		if (!allowed[i])
			return k;
	}
	return NULL;
}

int sg_options_check(const json_t *options, const char *const *allowed, struct sg_error *err)
{
	const char *k = sg_options_unknown(options, allowed);

	return k ? sg_err_invalid(err, "%s: unknown option", k) : 0;
}

int sg_option_int(const json_t *options, const char *name, long lo, long hi, long *out,
                  struct sg_error *err)
{
	const json_t *v = json_object_get(options, name);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return sg_err_invalid(err, "%s: must be an integer between %ld and %ld", name, lo,
		                      hi);
	*out = (long)json_integer_value(v);
	return 0;
}

const char *sg_option_secret(const json_t *options, const char *name, size_t maxlen,
                             struct sg_error *err)
{
	const char *s = json_string_value(json_object_get(options, name)), *val = s;

	if (s && s[0] == '$') {
		val = getenv(s + 1);
		if (!val || !*val) {
			sg_err_invalid(err, "%s: environment variable %s is not set", name, s + 1);
			return NULL;
		}
	}
	if (!val || !*val) {
		sg_err_invalid(err,
		               "%s: required (a string, or \"$NAME\" to read the environment "
		               "variable NAME)",
		               name);
		return NULL;
	}
	if (strlen(val) > maxlen || strpbrk(val, "\r\n")) {
		sg_err_invalid(err,
		               "%s: not usable in a header (at most %zu bytes, no line breaks)",
		               name, maxlen);
		return NULL;
	}
	return val;
}

/* Reads a credential file into out; -1 with err (naming `file_name` and the path). */
static int read_secret_file(const char *file_name, const char *path, char *out, size_t outlen,
                            struct sg_error *err)
{
	FILE *f = fopen(path, "rb");
	size_t n;
	int extra;

	if (!f)
		return sg_err_invalid(err, "%s: cannot read %s: %s", file_name, path,
		                      strerror(errno));
	n = fread(out, 1, outlen - 1, f);
	extra = n == outlen - 1 && fgetc(f) != EOF;
	if (ferror(f)) {
		fclose(f);
		sg_wipe(out, outlen);
		return sg_err_invalid(err, "%s: cannot read %s", file_name, path);
	}
	fclose(f);
	if (n > 0 && out[n - 1] == '\n')
		n--;
	if (n > 0 && out[n - 1] == '\r')
		n--;
	out[n] = '\0';
	if (extra || memchr(out, '\n', n) || memchr(out, '\r', n) || memchr(out, '\0', n)) {
		sg_wipe(out, outlen);
		return sg_err_invalid(err,
		                      "%s: %s is not usable in a header (at most %zu bytes, one "
		                      "line)",
		                      file_name, path, outlen - 1);
	}
	if (n == 0)
		return sg_err_invalid(err, "%s: %s is empty", file_name, path);
	return 0;
}

int sg_option_secret_or_file(const json_t *options, const char *name, const char *file_name,
                             char *out, size_t outlen, struct sg_error *err)
{
	const json_t *file = json_object_get(options, file_name);
	const char *val;

	if (file && json_object_get(options, name))
		return sg_err_invalid(err, "%s, %s: give only one of them", name, file_name);
	if (file) {
		if (!json_is_string(file) || json_string_length(file) == 0)
			return sg_err_invalid(err, "%s: must be a non-empty string (a path)",
			                      file_name);
		return read_secret_file(file_name, json_string_value(file), out, outlen, err);
	}
	val = sg_option_secret(options, name, outlen - 1, err);
	if (!val) {
		if (!json_object_get(options, name))
			sg_err_invalid(
			    err,
			    "%s: required (a string, or \"$NAME\" to read the environment "
			    "variable NAME), or %s (a file holding it)",
			    name, file_name);
		return -1;
	}
	snprintf(out, outlen, "%s", val);
	return 0;
}

int sg_identity_none(const json_t *identity, struct sg_error *err)
{
	if (json_object_size(identity) != 0)
		return sg_err_invalid(err, "this backend takes no identity from the key: use {}");
	return 0;
}
