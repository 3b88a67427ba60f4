/* berror.c - see berror.h. The table is written down in docs/compatibility.md ("Backend error
 * answers"); change both together. */
#include "berror.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "idcodec.h"
#include "jsonx.h"

/* The north error types (shared.d.ts ErrorType), as static strings: struct sg_error keeps a
 * pointer, never a copy. The platform docs' request_too_large is not among them: the SDK's
 * ErrorResponse has no such variant, so a 413 is an invalid_request_error (the SDK still picks
 * ContentTooLargeError by the status). */
static const char *const north_types[] = {
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "rate_limit_error",
    "timeout_error",
    "api_error",
    "overloaded_error",
    "memory_precondition_failed_error",
    "memory_path_conflict_error",
    "conflict_error",
    NULL,
};

/* The static spelling of s when it is a north error type, else NULL. */
static const char *north_type(const char *s)
{
	const char *const *t;

	for (t = north_types; *t; t++) {
		if (!strcmp(*t, s))
			return *t;
	}
	return NULL;
}

/* The backend's own words: error.message, a string error, detail (a string, FastAPI's [{msg}]
 * or an object's message or msg), or a top-level message. Borrowed from j, or NULL. */
static const json_t *error_message(const json_t *j)
{
	const json_t *e = json_object_get(j, "error"), *d = json_object_get(j, "detail");
	const json_t *m = json_object_get(e, "message");

	if (json_is_string(m))
		return m;
	if (json_is_string(e))
		return e;
	if (json_is_string(d))
		return d;
	if (json_is_array(d))
		d = json_array_get(d, 0);
	m = json_object_get(d, "msg");
	if (!json_is_string(m))
		m = json_object_get(d, "message");
	if (json_is_string(m))
		return m;
	m = json_object_get(j, "message");
	return json_is_string(m) ? m : NULL;
}

void sg_berror_read(long status, const char *body, size_t len, struct sg_backend_said *out)
{
	const json_t *m, *t;
	json_t *j = NULL;

	(void)status;
	memset(out, 0, sizeof(*out));
	if (!body || !len)
		return;
	/* an error text may well hold \u0000: the quoting below makes any byte safe */
	j = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (!json_is_object(j)) {
		/* a proxy's HTML page, plain text, garbage: quoted, every byte made safe */
		sg_clip(body, len, sizeof(out->message) - 1, 0, out->message);
		json_decref(j);
		return;
	}
	m = error_message(j);
	if (m)
		sg_clip(json_string_value(m), json_string_length(m), sizeof(out->message) - 1, 1,
		        out->message);
	t = json_object_get(json_object_get(j, "error"), "type");
	if (!json_is_string(t) && !sg_streq(sg_jstr(j, "type"), "error"))
		t = json_object_get(j, "type");
	if (json_is_string(t))
		sg_clip(json_string_value(t), json_string_length(t), sizeof(out->type) - 1, 0,
		        out->type);
	out->own = m || json_is_string(t);
	json_decref(j);
}

/* Whether t is `base` spelled with or without the "_error" suffix (SandBase writes both). */
static int type_is(const char *t, const char *base)
{
	size_t n = strlen(base);

	return !strncmp(t, base, n) && (t[n] == '\0' || !strcmp(t + n, "_error"));
}

/* The type a status passed on to the client is rendered with when the backend named none of
 * the SDK's. */
static const char *status_type(int code)
{
	switch (code) {
	case 400:
		return "invalid_request_error";
	case 404:
		return "not_found_error";
	case 409:
		return "conflict_error";
	case 413:
		return "invalid_request_error"; /* the SDK's types have no request_too_large */
	default:
		return "rate_limit_error"; /* 429, the only other one passed on */
	}
}

/* Cuts s back so that it does not end inside a UTF-8 sequence (after a truncating snprintf). */
static void fit_utf8(char *s)
{
	size_t n = strlen(s), i = n, need;

	while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
		i--;
	if (i == 0 || (unsigned char)s[i - 1] < 0xC0)
		return;
	need = (unsigned char)s[i - 1] >= 0xF0 ? 4 : (unsigned char)s[i - 1] >= 0xE0 ? 3 : 2;
	if (n - (i - 1) < need)
		s[i - 1] = '\0';
}

/* Sets *err: "backend 'NAME': <lead> (HTTP <status>[ <type>]<note>)<extra>[: <message>]", the
 * backend's message cut (between characters) to what still fits. */
static void say(struct sg_error *err, int code, const char *type, int retry, const char *be,
                const char *lead, long status, const struct sg_backend_said *said, const char *note,
                const char *extra)
{
	char buf[SG_ERRMSG_MAX], clipped[sizeof(said->message)];
	size_t used, room;
	int n;

	n = snprintf(buf, sizeof(buf), "backend '%s': %s (HTTP %ld%s%s%s)%s", be, lead, status,
	             said->type[0] ? " " : "", said->type, note, extra);
	used = n < 0 ? 0 : (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
	if (said->message[0] && used + 3 < sizeof(buf)) {
		room = sizeof(buf) - used - 3;
		sg_clip(said->message, strlen(said->message),
		        room < sizeof(clipped) - 1 ? room : sizeof(clipped) - 1, 1, clipped);
		snprintf(buf + used, sizeof(buf) - used, ": %s", clipped);
	}
	fit_utf8(buf);
	sg_error_set(err, code, type, "%s", buf);
	err->should_retry = retry;
}

void sg_berror_north(long status, const struct sg_backend_said *said, const char *backend,
                     struct sg_error *err)
{
	const char *be = backend ? backend : "?", *lead = "unexpected answer", *note = "";
	char extra[SG_ID_MAX + 128];
	int code = 502, retry = 0;
	struct sg_error dummy;

	if (!err)
		err = &dummy;
	if (said->outcome_unknown) {
		/* A write may have taken effect: the same request again could do it twice (a second
		 * session), so the client must look first, and is told what to look at. */
		char pub[SG_ID_MAX] = "";

		if (said->session[0] &&
		    sg_id_encode("sesn_", be, "", said->session, pub, sizeof(pub)) < 0)
			pub[0] = '\0';
		if (pub[0])
			snprintf(extra, sizeof(extra),
			         ": session %s may have been created; retrieve it and list its "
			         "events before retrying",
			         pub);
		else
			snprintf(extra, sizeof(extra),
			         ": the request may or may not have taken effect; look before "
			         "retrying");
		say(err, 502, "api_error", 0, be, "the outcome is unknown", status, said, "",
		    extra);
		return;
	}
	switch (status) {
	case 401: /* the gateway's own key or account is at fault: nothing the client can fix */
		lead = "the gateway's credentials for this backend were rejected";
		break;
	case 402:
		lead = "the gateway's account on this backend cannot pay";
		break;
	case 403:
		lead = "the gateway's credentials for this backend lack permission";
		break;
	case 413: /* whoever answered, the request was too large for it */
		code = 413, lead = "request too large";
		break;
	case 429: /* whoever answered, asking again later is the remedy */
		code = 429, lead = "rate limited", retry = 1;
		break;
	case 400:
	case 422: /* unprocessable: SandBase's unsupported_event_type and the like */
		code = 400, lead = "invalid request";
		break;
	case 404:
		code = 404, lead = "not found";
		break;
	case 409: /* archived or busy: the same request again cannot succeed */
		code = 409, lead = "conflict";
		break;
	default:
		if (status >= 500 && status <= 599) /* 529 (overloaded) too */
			retry = 1, lead = "backend error";
		else if (status >= 400 && status <= 499 && type_is(said->type, "invalid_request"))
			code = 400, lead = "invalid request";
		else if (status >= 400 && status <= 499 && type_is(said->type, "not_found"))
			code = 404, lead = "not found";
		break;
	}
	/* Only the backend's own error body proves that the client's request was at fault: an
	 * HTML 404 from a proxy in front of it means a wrong URL, not a missing session. */
	if ((code == 400 || code == 404 || code == 409) && !said->own) {
		code = 502, lead = "unexpected answer", note = ", not the backend's own error body";
	}
	if (code == 502) {
		say(err, 502, "api_error", retry, be, lead, status, said, note, "");
		return;
	}
	/* a status passed on keeps the backend's type when it is one of the SDK's */
	say(err, code,
	    said->own && north_type(said->type) ? north_type(said->type) : status_type(code), retry,
	    be, lead, status, said, note, "");
}

void sg_berror(const struct sg_mapping *m, long status, const char *body, size_t len,
               const char *backend, struct sg_error *err)
{
	struct sg_backend_said said;

	memset(&said, 0, sizeof(said));
	if (m && m->read_error)
		m->read_error(status, body, len, &said);
	else
		sg_berror_read(status, body, len, &said);
	sg_berror_north(status, &said, backend, err);
}
