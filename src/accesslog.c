/* accesslog.c - see accesslog.h. */
#include "accesslog.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int token_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("._:/+=@-", c) != NULL;
}

char *sg_access_clean(const char *in, size_t cap, int token, char *out, size_t outlen)
{
	size_t n = 0;

	for (; in && *in && n < cap && n + 1 < outlen; in++) {
		unsigned char c = (unsigned char)*in;

		if (token)
			out[n++] = token_char(c) ? (char)c : '_';
		else
			out[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (outlen)
		out[n] = '\0';
	return out;
}

/* Appends ,"name":value with value a JSON string (or null). */
static void field_str(char *buf, size_t len, size_t *pos, const char *name, const char *v)
{
	size_t n = strlen(name);

	if (*pos + n + 4 >= len)
		return;
	buf[(*pos)++] = ',';
	buf[(*pos)++] = '"';
	memcpy(buf + *pos, name, n);
	*pos += n;
	buf[(*pos)++] = '"';
	buf[(*pos)++] = ':';
	buf[*pos] = '\0';
	sg_log_json_str(buf, len, pos, v);
}

/* Appends printf'd text as is (numbers, literals). */
__attribute__((format(printf, 4, 5))) static void raw(char *buf, size_t len, size_t *pos,
                                                      const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
	va_end(ap);
	if (n > 0)
		*pos = (size_t)n < len - *pos ? *pos + (size_t)n : len - 1;
}

/* The JSON line into buf (len bytes, ≥ SG_ACCESS_LINE_MAX: nothing is cut then). */
static void format_json(const struct sg_access *a, char *buf, size_t len)
{
	char xff[SG_ACCESS_XFF_MAX + 1], front[SG_ACCESS_FRONT_ID_MAX + 1], when[32];
	char key[SG_ACCESS_KEY_MAX + 1];
	size_t pos = 0;

	sg_log_time(a->start_us, when, sizeof(when));
	raw(buf, len, &pos, "{\"time\":\"%s\",\"level\":\"info\",\"type\":\"access\"", when);
	field_str(buf, len, &pos, "request_id", a->id);
	field_str(buf, len, &pos, "method", a->method);
	field_str(buf, len, &pos, "route", a->route);
	raw(buf, len, &pos, ",\"status\":%d", a->status);
	field_str(buf, len, &pos, "key",
	          a->key ? sg_access_clean(a->key, SG_ACCESS_KEY_MAX, 0, key, sizeof(key)) : NULL);
	field_str(buf, len, &pos, "backend", a->backend);
	field_str(buf, len, &pos, "client", a->client);
	field_str(buf, len, &pos, "x_forwarded_for",
	          a->xff ? sg_access_clean(a->xff, SG_ACCESS_XFF_MAX, 0, xff, sizeof(xff)) : NULL);
	field_str(buf, len, &pos, "front_request_id",
	          a->front_id ? sg_access_clean(a->front_id, SG_ACCESS_FRONT_ID_MAX, 1, front,
	                                        sizeof(front))
	                      : NULL);
	raw(buf, len, &pos,
	    ",\"bytes_in\":%zu,\"bytes_out\":%zu,\"upstream_ms\":%.3f,\"total_ms\":%.3f",
	    a->bytes_in, a->bytes_out, (double)a->upstream_us / 1000.0,
	    (double)a->total_us / 1000.0);
	field_str(buf, len, &pos, "error_type", a->error_type);
	raw(buf, len, &pos, ",\"stream\":%s}", a->stream ? "true" : "false");
}

char *sg_access_json(const struct sg_access *a)
{
	char *buf = malloc(SG_ACCESS_LINE_MAX);

	if (buf)
		format_json(a, buf, SG_ACCESS_LINE_MAX);
	return buf;
}

void sg_access_write(const struct sg_access *a, int json)
{
	char xff[SG_ACCESS_XFF_MAX + 1], front[SG_ACCESS_FRONT_ID_MAX + 1];

	if (!sg_log_enabled(SG_LOG_INFO))
		return;
	if (json) {
		char line[SG_ACCESS_LINE_MAX];

		format_json(a, line, sizeof(line));
		sg_log_line(line);
		return;
	}
	/* the text line: the historical head, then key=value fields */
	if (a->xff) {
		sg_access_clean(a->xff, SG_ACCESS_XFF_MAX, 0, xff, sizeof(xff));
		for (char *p = xff; *p; p++)
			if (*p == '"' || *p == '\\')
				*p = '?';
	}
	if (a->front_id)
		sg_access_clean(a->front_id, SG_ACCESS_FRONT_ID_MAX, 1, front, sizeof(front));
	sg_info("%s %s %s %d %" PRId64 "ms key=%s route=\"%s\" backend=%s in=%zu out=%zu "
	        "upstream=%" PRId64 "ms client=%s%s%s%s%s%s%s%s%s%s",
	        a->id, a->method, a->path ? a->path : "-", a->status, a->total_us / 1000,
	        a->key ? a->key : "-", a->route, a->backend ? a->backend : "-", a->bytes_in,
	        a->bytes_out, a->upstream_us / 1000, a->client ? a->client : "-",
	        a->xff ? " xff=\"" : "", a->xff ? xff : "", a->xff ? "\"" : "",
	        a->front_id ? " front_id=" : "", a->front_id ? front : "",
	        a->error_type ? " error=" : "", a->error_type ? a->error_type : "",
	        a->note ? " " : "", a->note ? a->note : "");
}
