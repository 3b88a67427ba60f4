/* jsonx.c - see jsonx.h. */
#include "jsonx.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "timeutil.h"

const char *sg_jstr(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

int sg_streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

int sg_jhas_nul(const json_t *s)
{
	return json_is_string(s) && strlen(json_string_value(s)) != json_string_length(s);
}

int sg_jis_id(const json_t *v)
{
	return json_is_string(v) && json_string_length(v) > 0 && !sg_jhas_nul(v);
}

int sg_jpresent(const json_t *v)
{
	return v && !json_is_null(v);
}

json_t *sg_jstr_copy(const json_t *s)
{
	/* jansson keeps only valid UTF-8 in its strings: nothing to check again */
	return json_stringn_nocheck(json_string_value(s), json_string_length(s));
}

int sg_jtime(int64_t us, json_t **out)
{
	char buf[SG_TIME_BUFSZ];

	*out = NULL;
	if (sg_time_format(us, buf, sizeof(buf)) < 0)
		return -1;
	*out = json_string_nocheck(buf); /* ASCII */
	return 0;
}

json_t *sg_jparse_object(const char *text, size_t len)
{
	json_error_t jerr;
	json_t *v;

	memset(&jerr, 0, sizeof(jerr));
	v = json_loadb(text, len, 0, &jerr);
	/* A parse error always says why; jansson leaves the text empty when it could not even
	 * allocate its lexer. */
	if (!v && (json_error_code(&jerr) == json_error_out_of_memory || !jerr.text[0]))
		return NULL;
	if (json_is_object(v))
		return v;
	json_decref(v);
	return json_object();
}

int sg_utf8_cut(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return (int)n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return (int)n;
}

const char *sg_clip(const char *s, size_t n, size_t max, int utf8, char *out)
{
	size_t i = 0, o = 0;

	while (s && i < n && o < max) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

		if (c >= 0x80 && utf8) {
			if (i + len > n || o + len > max)
				break;
			memcpy(out + o, s + i, len);
			o += len;
			i += len;
		} else {
			out[o++] = c < 0x20 || c == 0x7f ? ' ' : c >= 0x80 ? '?' : (char)c;
			i++;
		}
	}
	out[o] = '\0';
	return out;
}

int sg_err_vbackend(struct sg_error *err, const char *backend, const char *where, const char *fmt,
                    va_list ap)
{
	char msg[SG_ERRMSG_MAX];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	return sg_err_bad_gateway(err, "backend '%s': %s%s", backend ? backend : "?",
	                          where ? where : "", msg);
}

int sg_err_backend(struct sg_error *err, const char *backend, const char *where, const char *fmt,
                   ...)
{
	va_list ap;

	va_start(ap, fmt);
	sg_err_vbackend(err, backend, where, fmt, ap);
	va_end(ap);
	return -1;
}

int sg_err_oom(struct sg_error *err, const char *backend)
{
	return sg_err_internal(err, "out of memory translating an answer of backend '%s'",
	                       backend ? backend : "?");
}
