/* after.c - see after.h. */
#include "after.h"

#include <stdio.h>
#include <string.h>

#include "berror.h"
#include "config.h"
#include "jsonx.h"
#include "mapping.h"

void sg_after_fail(struct sg_call *call, const char *what, struct sg_error *err)
{
	static const char tail[] = "; do not send the write again";
	size_t fixed = strlen(what) + 2 + sizeof(tail), room;
	int keep = err->status >= 400 && err->status != 404;
	char why[SG_ERRMSG_MAX];

	/* the backend's words are cut between characters, so that the message stays UTF-8 */
	room = fixed < SG_ERRMSG_MAX ? SG_ERRMSG_MAX - fixed : 0;
	snprintf(why, sizeof(why), "%s", err->message);
	sg_error_set(err, keep ? err->status : 502, keep ? err->type : "api_error", "%s: %.*s%s",
	             what, sg_utf8_cut(why, room), why, tail);
	err->should_retry = 0;
	sg_call_fail_with(call, err);
}

json_t *sg_after_json(struct sg_call *call, const char *what, const struct sg_fetch_res *res)
{
	const struct sg_backend *be = sg_call_backend(call);
	struct sg_error err = {0};
	json_t *body = NULL;

	if (res->fail == SG_FETCH_TIMEOUT)
		sg_err_timeout(&err, "backend '%s' did not answer in time", be->name);
	else if (res->fail != SG_FETCH_OK)
		sg_err_bad_gateway(&err, "backend '%s' failed: %s", be->name, res->errmsg);
	else if (res->status < 200 || res->status > 299)
		sg_berror(be->mapping, res->status, res->body, res->len, be->name, &err);
	else if (!(body = json_loadb(res->body, res->len, 0, NULL)))
		sg_err_bad_gateway(&err, "backend '%s' answered something that is not JSON",
		                   be->name);
	if (body)
		return body;
	sg_after_fail(call, what, &err);
	return NULL;
}
