/* query.c - see query.h.
 *
 * One walk over the raw query string serves both endpoints: each '&'-separated parameter
 * has its key percent-decoded and classified (scalar, created_at bound, array); only the
 * values of recognised parameters are decoded and validated. A malformed key is always an
 * error (we cannot tell whether it was meant to be one of ours); the value of an unknown
 * parameter is never looked at. */
#include "query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec.h"
#include "timeutil.h"

#define QUERY_RAW_MAX 16384  /* bytes of raw query string accepted */
#define QUERY_PARAMS_MAX 256 /* '&'-separated parameters accepted */
#define SHOW_MAX 48          /* bytes of client text echoed in an error message */
#define INDEX_DIGITS_MAX 6   /* `statuses[123456]` at most */

enum bound { B_GT, B_GTE, B_LT, B_LTE, B_COUNT };

static const char *const bound_names[B_COUNT] = {"gt", "gte", "lt", "lte"};

/* In the order of enum sg_session_status bits. */
static const char *const status_names[] = {"rescheduling", "running", "idle", "terminated"};
#define NSTATUS (sizeof(status_names) / sizeof(status_names[0]))

/* BetaManagedAgentsSessionEventType, @anthropic-ai/sdk 1.10.0
 * (resources/beta/sessions/events.d.ts), in the SDK's order. Fingerprints list the
 * selected types in this order, so append new types at the end. */
static const char *const event_types[] = {
    "user.message",
    "user.interrupt",
    "user.tool_confirmation",
    "user.custom_tool_result",
    "agent.custom_tool_use",
    "agent.message",
    "agent.thinking",
    "agent.mcp_tool_use",
    "agent.mcp_tool_result",
    "agent.tool_use",
    "agent.tool_result",
    "agent.thread_message_received",
    "agent.thread_message_sent",
    "agent.thread_context_compacted",
    "session.error",
    "session.status_rescheduled",
    "session.status_running",
    "session.status_idle",
    "session.status_terminated",
    "session.thread_created",
    "span.outcome_evaluation_start",
    "span.outcome_evaluation_end",
    "span.model_request_start",
    "span.model_request_end",
    "span.outcome_evaluation_ongoing",
    "user.define_outcome",
    "session.thread_status_running",
    "session.thread_status_idle",
    "session.thread_status_terminated",
    "user.tool_result",
    "session.thread_status_rescheduled",
    "session.updated",
    "system.message",
    "session.usage",
    "workflow_run.created",
    "workflow_run.status_running",
    "workflow_run.status_idle",
    "workflow_run.status_ended",
    "workflow_run.error",
    "workflow_run.phase_started",
    "workflow_run.phase_ended",
};
#define NEVENT_TYPES (sizeof(event_types) / sizeof(event_types[0]))

enum param_id {
	P_NONE,
	P_AGENT_ID,
	P_AGENT_VERSION,
	P_DEPLOYMENT_ID,
	P_MEMORY_STORE_ID,
	P_INCLUDE_ARCHIVED,
	P_ORDER,
	P_LIMIT,
	P_PAGE,
	P_STATUSES,
	P_TYPES,
	P_BOUND,
};

#define FOR_SESSIONS 1u
#define FOR_EVENTS 2u

/* Parameters with one fixed spelling; arrays and bounds are matched separately. */
static const struct {
	const char *name;
	enum param_id id;
	unsigned where;
} scalars[] = {
    {"agent_id", P_AGENT_ID, FOR_SESSIONS},
    {"agent_version", P_AGENT_VERSION, FOR_SESSIONS},
    {"deployment_id", P_DEPLOYMENT_ID, FOR_SESSIONS},
    {"memory_store_id", P_MEMORY_STORE_ID, FOR_SESSIONS},
    {"include_archived", P_INCLUDE_ARCHIVED, FOR_SESSIONS},
    {"order", P_ORDER, FOR_SESSIONS | FOR_EVENTS},
    {"limit", P_LIMIT, FOR_SESSIONS | FOR_EVENTS},
    {"page", P_PAGE, FOR_SESSIONS | FOR_EVENTS},
};
#define NSCALARS (sizeof(scalars) / sizeof(scalars[0]))

/* Everything one parse needs besides the query itself; lives on the caller's stack. */
struct parse_ctx {
	unsigned where;              /* FOR_SESSIONS or FOR_EVENTS */
	struct sg_session_query *sq; /* set when where == FOR_SESSIONS */
	struct sg_event_query *eq;   /* set when where == FOR_EVENTS */
	struct sg_time_range *range;
	unsigned seen;        /* bit (1 << enum param_id) per scalar already given */
	unsigned bound_seen;  /* bit per enum bound already given */
	unsigned bound_brack; /* bit per enum bound: first given as created_at[…] */
};

/* Percent-decodes n bytes of s into out (room for n + 1 bytes), NUL-terminated; '+' stays
 * '+'. Returns 0, -1 on a malformed escape, or -2 when the text decodes to a NUL byte
 * (which a C string could not carry faithfully). */
static int pct_decode(const char *s, size_t n, char *out, size_t *outlen)
{
	size_t i, o = 0;
	int nul = 0;

	for (i = 0; i < n; i++) {
		if (s[i] != '%') {
			out[o++] = s[i];
			continue;
		}
		if (n - i < 3 || sg_hex_digit(s[i + 1]) < 0 || sg_hex_digit(s[i + 2]) < 0)
			return -1;
		out[o] = (char)(sg_hex_digit(s[i + 1]) * 16 + sg_hex_digit(s[i + 2]));
		if (out[o] == '\0')
			nul = 1;
		o++;
		i += 2;
	}
	out[o] = '\0';
	*outlen = o;
	return nul ? -2 : 0;
}

/* Client text quoted in an error message: printable ASCII only (messages end up in JSON,
 * which wants UTF-8) and at most SHOW_MAX bytes, so a hostile value cannot bloat or break
 * the error envelope. out needs SHOW_MAX + 4 bytes. */
static const char *show(const char *s, size_t n, char *out)
{
	size_t i, m = n > SHOW_MAX ? SHOW_MAX : n;

	for (i = 0; i < m; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (m < n) {
		memcpy(out + m, "...", 3);
		m += 3;
	}
	out[m] = '\0';
	return out;
}

static int key_is(const char *key, size_t n, const char *name)
{
	return strlen(name) == n && memcmp(key, name, n) == 0;
}

/* `name`, `name[]` (qs brackets) or `name[<digits>]` (qs indices). */
static int key_is_array(const char *key, size_t n, const char *name)
{
	size_t len = strlen(name), i;

	if (n < len || memcmp(key, name, len) != 0)
		return 0;
	if (n == len)
		return 1;
	if (key[len] != '[' || key[n - 1] != ']' || n - len - 2 > INDEX_DIGITS_MAX)
		return 0;
	for (i = len + 1; i < n - 1; i++)
		if (key[i] < '0' || key[i] > '9')
			return 0;
	return 1;
}

/* `created_at[gte]` or `created_at_gte` (and the other three bounds). */
static int key_is_bound(const char *key, size_t n, enum bound *b, int *bracket)
{
	static const char prefix[] = "created_at";
	const size_t plen = sizeof(prefix) - 1;
	int i;

	if (n <= plen + 1 || memcmp(key, prefix, plen) != 0)
		return 0;
	key += plen;
	n -= plen;
	for (i = 0; i < B_COUNT; i++) {
		size_t blen = strlen(bound_names[i]);

		if (n == blen + 2 && key[0] == '[' && key[n - 1] == ']' &&
		    memcmp(key + 1, bound_names[i], blen) == 0) {
			*b = (enum bound)i;
			*bracket = 1;
			return 1;
		}
		if (n == blen + 1 && key[0] == '_' && memcmp(key + 1, bound_names[i], blen) == 0) {
			*b = (enum bound)i;
			*bracket = 0;
			return 1;
		}
	}
	return 0;
}

static enum param_id classify(const struct parse_ctx *c, const char *key, size_t n, enum bound *b,
                              int *bracket)
{
	size_t i;

	for (i = 0; i < NSCALARS; i++)
		if ((scalars[i].where & c->where) && key_is(key, n, scalars[i].name))
			return scalars[i].id;
	if (key_is_bound(key, n, b, bracket))
		return P_BOUND;
	if (c->where == FOR_SESSIONS && key_is_array(key, n, "statuses"))
		return P_STATUSES;
	if (c->where == FOR_EVENTS && key_is_array(key, n, "types"))
		return P_TYPES;
	return P_NONE;
}

/* Plain decimal digits only: no sign, no blanks, no exponent, no overflow. */
static int parse_uint(const char *s, int64_t *out)
{
	int64_t v = 0;
	size_t i;

	if (s[0] == '\0')
		return -1;
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (INT64_MAX - (s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int parse_bool(const char *s, int *out)
{
	if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0) {
		*out = 1;
		return 0;
	}
	if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0) {
		*out = 0;
		return 0;
	}
	return -1;
}

/* A created_at bound; the same bound in two spellings is as much a duplicate as the same
 * spelling twice, and the message says which spellings collided. */
static int set_bound(struct parse_ctx *c, enum bound b, int bracket, const char *key,
                     const char *val, struct sg_error *err)
{
	struct sg_time_range *r = c->range;
	unsigned bit = 1u << b;
	int64_t us;

	if (c->bound_seen & bit) {
		if (!(c->bound_brack & bit) == !bracket)
			return sg_err_invalid(err, "%s: given more than once", key);
		return sg_err_invalid(err, "%s: given more than once (also as created_at%s%s%s)",
		                      key, bracket ? "_" : "[", bound_names[b], bracket ? "" : "]");
	}
	if (sg_time_parse_rfc3339(val, &us) != 0)
		return sg_err_invalid(err, "%s: not an RFC 3339 timestamp", key);
	c->bound_seen |= bit;
	if (bracket)
		c->bound_brack |= bit;
	switch (b) {
	case B_GT:
		r->has_gt = 1;
		r->gt = us;
		break;
	case B_GTE:
		r->has_gte = 1;
		r->gte = us;
		break;
	case B_LT:
		r->has_lt = 1;
		r->lt = us;
		break;
	default:
		r->has_lte = 1;
		r->lte = us;
		break;
	}
	return 0;
}

/* Steps through a comma list from *p: the next element (possibly empty) in *item, *n.
 * Returns 0 at the end. */
static int next_item(const char **p, const char **item, size_t *n)
{
	const char *comma;

	if (!**p)
		return 0;
	comma = strchr(*p, ',');
	*item = *p;
	*n = comma ? (size_t)(comma - *p) : strlen(*p);
	*p += comma ? *n + 1 : *n;
	return 1;
}

/* Index of the name equal to [s, s + n) in names (count of them), or count. */
static size_t find_name(const char *const *names, size_t count, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < count; i++)
		if (key_is(s, n, names[i]))
			break;
	return i;
}

/* One `statuses` value, possibly a comma list; empty elements are skipped. */
static int add_statuses(struct sg_session_query *q, const char *key, const char *val,
                        struct sg_error *err)
{
	char shown[SHOW_MAX + 4];
	const char *p = val, *it;
	size_t n, i;

	while (next_item(&p, &it, &n)) {
		if (!n)
			continue;
		i = find_name(status_names, NSTATUS, it, n);
		if (i == NSTATUS)
			return sg_err_invalid(err,
			                      "%s: unknown status '%s' (expected one of "
			                      "rescheduling, running, idle, terminated)",
			                      key, show(it, n, shown));
		q->statuses |= 1u << i;
	}
	return 0;
}

/* One `types` value, possibly a comma list; kept in order of first appearance, once. */
static int add_types(struct sg_event_query *q, const char *key, const char *val,
                     struct sg_error *err)
{
	char shown[SHOW_MAX + 4];
	const char *p = val, *it;
	size_t n, i, j;

	while (next_item(&p, &it, &n)) {
		if (!n)
			continue;
		i = find_name(event_types, NEVENT_TYPES, it, n);
		if (i == NEVENT_TYPES)
			return sg_err_invalid(err, "%s: unknown event type '%s'", key,
			                      show(it, n, shown));
		for (j = 0; j < q->ntypes; j++)
			if (strcmp(q->types[j], event_types[i]) == 0)
				break;
		if (j < q->ntypes)
			continue;
		if (q->ntypes == SG_QUERY_MAX_TYPES)
			return sg_err_invalid(err, "%s: more than %d event types", key,
			                      SG_QUERY_MAX_TYPES);
		q->types[q->ntypes] = strdup(event_types[i]);
		if (!q->types[q->ntypes])
			return sg_err_internal(err, "out of memory");
		q->ntypes++;
	}
	return 0;
}

/* A scalar parameter given for the first time. Takes *val when it keeps the string. */
static int set_scalar(struct parse_ctx *c, enum param_id id, const char *key, char **val,
                      struct sg_error *err)
{
	int64_t n;
	int max = c->sq ? SG_LIST_LIMIT_MAX : SG_EVENTS_LIMIT_MAX;
	char **slot = NULL;

	switch (id) {
	case P_AGENT_ID:
		slot = &c->sq->agent_id;
		break;
	case P_DEPLOYMENT_ID:
		slot = &c->sq->deployment_id;
		break;
	case P_MEMORY_STORE_ID:
		slot = &c->sq->memory_store_id;
		break;
	case P_PAGE:
		slot = c->sq ? &c->sq->page : &c->eq->page;
		break;
	case P_AGENT_VERSION:
		if (parse_uint(*val, &n) != 0)
			return sg_err_invalid(err, "%s: must be a non-negative integer", key);
		c->sq->agent_version = n;
		return 0;
	case P_INCLUDE_ARCHIVED:
		if (parse_bool(*val, &c->sq->include_archived) != 0)
			return sg_err_invalid(err, "%s: must be true or false", key);
		return 0;
	case P_ORDER:
		if (strcmp(*val, "asc") != 0 && strcmp(*val, "desc") != 0)
			return sg_err_invalid(err, "%s: must be asc or desc", key);
		if (c->sq)
			c->sq->order_asc = strcmp(*val, "asc") == 0;
		else
			c->eq->order_desc = strcmp(*val, "desc") == 0;
		return 0;
	case P_LIMIT:
		if (parse_uint(*val, &n) != 0 || n < 1 || n > max)
			return sg_err_invalid(err, "%s: must be an integer between 1 and %d", key,
			                      max);
		if (c->sq)
			c->sq->limit = (int)n;
		else
			c->eq->limit = (int)n;
		return 0;
	default:
		return 0;
	}
	*slot = *val;
	*val = NULL;
	return 0;
}

/* One decoded key with its still-encoded value. */
static int handle_param(struct parse_ctx *c, const char *key, size_t keylen, const char *raw,
                        size_t rawlen, struct sg_error *err)
{
	enum bound b = B_GT;
	int bracket = 0, rc = -1;
	enum param_id id = classify(c, key, keylen, &b, &bracket);
	char *val = NULL;
	size_t vallen;

	if (id == P_NONE || rawlen == 0)
		return 0;
	val = malloc(rawlen + 1);
	if (!val)
		return sg_err_internal(err, "out of memory");
	switch (pct_decode(raw, rawlen, val, &vallen)) {
	case 0:
		break;
	case -2:
		sg_err_invalid(err, "%s: contains a NUL character", key);
		goto fail;
	default:
		sg_err_invalid(err, "%s: invalid percent-encoding", key);
		goto fail;
	}
	switch (id) {
	case P_BOUND:
		rc = set_bound(c, b, bracket, key, val, err);
		break;
	case P_STATUSES:
		rc = add_statuses(c->sq, key, val, err);
		break;
	case P_TYPES:
		rc = add_types(c->eq, key, val, err);
		break;
	default:
		if (c->seen & (1u << id)) {
			rc = sg_err_invalid(err, "%s: given more than once", key);
			break;
		}
		c->seen |= 1u << id;
		rc = set_scalar(c, id, key, &val, err);
		break;
	}
fail:
	free(val);
	return rc;
}

/* Splits the raw query at '&' and '=', enforcing the size bounds, and hands every
 * parameter with a non-empty key to handle_param. */
static int walk_query(struct parse_ctx *c, const char *raw, struct sg_error *err)
{
	char shown[SHOW_MAX + 4];
	char *key = NULL;
	size_t len, nparams = 0;
	const char *p, *end;
	int rc = -1;

	if (!raw)
		return 0;
	len = strnlen(raw, QUERY_RAW_MAX + 1);
	if (len > QUERY_RAW_MAX)
		return sg_err_invalid(err, "query: longer than %d bytes", QUERY_RAW_MAX);
	key = malloc(len + 1);
	if (!key)
		return sg_err_internal(err, "out of memory");
	end = raw + len;
	for (p = raw; p < end;) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *seg_end = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(seg_end - p));
		const char *key_end = eq ? eq : seg_end;
		const char *val = eq ? eq + 1 : seg_end;
		size_t keylen;

		if (seg_end > p && ++nparams > QUERY_PARAMS_MAX) {
			sg_err_invalid(err, "query: more than %d parameters", QUERY_PARAMS_MAX);
			goto fail;
		}
		if (pct_decode(p, (size_t)(key_end - p), key, &keylen) == -1) {
			sg_err_invalid(err, "%s: invalid percent-encoding in the parameter name",
			               show(p, (size_t)(key_end - p), shown));
			goto fail;
		}
		/* A key that decodes to a NUL byte matches nothing: an unknown parameter. */
		if (keylen > 0 &&
		    handle_param(c, key, keylen, val, (size_t)(seg_end - val), err) != 0)
			goto fail;
		p = amp ? amp + 1 : end;
	}
	rc = 0;
fail:
	free(key);
	return rc;
}

static void session_query_init(struct sg_session_query *q)
{
	memset(q, 0, sizeof(*q));
	q->agent_version = -1;
	q->limit = SG_LIST_LIMIT_DEFAULT;
}

static void event_query_init(struct sg_event_query *q)
{
	memset(q, 0, sizeof(*q));
	q->limit = SG_EVENTS_LIMIT_DEFAULT;
}

int sg_session_query_parse(const char *raw, struct sg_session_query *q, struct sg_error *err)
{
	struct parse_ctx c = {.where = FOR_SESSIONS, .sq = q, .range = &q->created};

	session_query_init(q);
	if (walk_query(&c, raw, err) != 0) {
		sg_session_query_clear(q);
		return -1;
	}
	return 0;
}

void sg_session_query_clear(struct sg_session_query *q)
{
	free(q->agent_id);
	free(q->deployment_id);
	free(q->memory_store_id);
	free(q->page);
	session_query_init(q);
}

int sg_event_query_parse(const char *raw, struct sg_event_query *q, struct sg_error *err)
{
	struct parse_ctx c = {.where = FOR_EVENTS, .eq = q, .range = &q->created};

	event_query_init(q);
	if (walk_query(&c, raw, err) != 0) {
		sg_event_query_clear(q);
		return -1;
	}
	return 0;
}

void sg_event_query_clear(struct sg_event_query *q)
{
	size_t i;

	for (i = 0; i < q->ntypes; i++)
		free(q->types[i]);
	free(q->page);
	event_query_init(q);
}

/* Free text is length-prefixed ("5:agent"), absence is "-", so the fingerprint decodes
 * back to exactly one filter and two different filters never share a fingerprint. */
static void fp_text(FILE *f, const char *name, const char *s)
{
	if (s)
		fprintf(f, "|%s=%zu:%s", name, strlen(s), s);
	else
		fprintf(f, "|%s=-", name);
}

/* Bounds as µs since the epoch, so equal instants written differently
 * ("…T08:00:00+08:00", "…T00:00:00Z") give equal fingerprints. */
static void fp_range(FILE *f, const struct sg_time_range *r)
{
	const unsigned has[B_COUNT] = {r->has_gt, r->has_gte, r->has_lt, r->has_lte};
	const int64_t v[B_COUNT] = {r->gt, r->gte, r->lt, r->lte};
	int i;

	for (i = 0; i < B_COUNT; i++) {
		if (has[i])
			fprintf(f, "|%s=%lld", bound_names[i], (long long)v[i]);
		else
			fprintf(f, "|%s=-", bound_names[i]);
	}
}

/* Closes the memstream and returns its text (which fclose publishes in *buf), or NULL when
 * any write failed. */
static char *fp_finish(FILE *f, char **buf)
{
	int bad = ferror(f);

	if (fclose(f) != 0 || bad) {
		free(*buf);
		return NULL;
	}
	return *buf;
}

char *sg_session_query_fingerprint(const struct sg_session_query *q)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fputs("v1", f);
	fp_text(f, "agent", q->agent_id);
	if (q->agent_version >= 0)
		fprintf(f, "|ver=%lld", (long long)q->agent_version);
	else
		fputs("|ver=-", f);
	fp_text(f, "dep", q->deployment_id);
	fp_text(f, "mem", q->memory_store_id);
	fp_range(f, &q->created);
	fprintf(f, "|arch=%d|order=%s|st=%u", q->include_archived ? 1 : 0,
	        q->order_asc ? "asc" : "desc", q->statuses);
	return fp_finish(f, &buf);
}

char *sg_event_query_fingerprint(const struct sg_event_query *q)
{
	char *buf = NULL;
	size_t len = 0, i, j;
	const char *sep = "";
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fputs("v1|ev", f);
	fp_range(f, &q->created);
	fprintf(f, "|order=%s|types=", q->order_desc ? "desc" : "asc");
	if (q->ntypes == 0)
		fputs("-", f);
	/* In table order, so the order the client listed them in does not matter. */
	for (i = 0; i < NEVENT_TYPES; i++) {
		for (j = 0; j < q->ntypes; j++)
			if (strcmp(q->types[j], event_types[i]) == 0)
				break;
		if (j < q->ntypes) {
			fprintf(f, "%s%s", sep, event_types[i]);
			sep = ",";
		}
	}
	return fp_finish(f, &buf);
}

unsigned sg_status_from_string(const char *s)
{
	size_t i;

	for (i = 0; s && i < NSTATUS; i++)
		if (strcmp(s, status_names[i]) == 0)
			return 1u << i;
	return 0;
}

const char *sg_status_to_string(unsigned status_bit)
{
	size_t i;

	for (i = 0; i < NSTATUS; i++)
		if (status_bit == 1u << i)
			return status_names[i];
	return NULL;
}

int sg_event_type_known(const char *type)
{
	size_t i;

	for (i = 0; type && i < NEVENT_TYPES; i++)
		if (strcmp(type, event_types[i]) == 0)
			return 1;
	return 0;
}

int sg_time_range_match(const struct sg_time_range *r, int64_t t)
{
	if (r->has_gt && !(t > r->gt))
		return 0;
	if (r->has_gte && !(t >= r->gte))
		return 0;
	if (r->has_lt && !(t < r->lt))
		return 0;
	if (r->has_lte && !(t <= r->lte))
		return 0;
	return 1;
}
