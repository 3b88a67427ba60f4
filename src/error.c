/* error.c - see error.h. */
#include "error.h"

#include <stdio.h>

int sg_error_vset(struct sg_error *e, int status, const char *type, const char *fmt, va_list ap)
{
	if (!e)
		return -1;
	e->status = status;
	e->type = type;
	e->should_retry = -1;
	e->retry_after_s = 0;
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	return -1;
}

int sg_error_set(struct sg_error *e, int status, const char *type, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sg_error_vset(e, status, type, fmt, ap);
	va_end(ap);
	return -1;
}

void sg_error_default_retry(struct sg_error *e)
{
	if (e->should_retry != -1)
		return;
	/* Only what may well succeed on a second try says so: a gateway or upstream timeout,
	 * an overload. A 502 is retryable only where it was set explicitly (unreachable
	 * backend, dropped connection, backend 5xx): a wrong shape or garbage repeats. */
	e->should_retry = (e->status == 503 || e->status == 504 || e->status == 529) ? 1 : 0;
}
