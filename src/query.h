/* query.h - north query strings: parsed, validated, normalised. Pure.
 *
 * Both spellings are accepted for every parameter (claude-dialect.md §1.3): the SDK's
 * `statuses[]=a&statuses[]=b` (brackets possibly percent-encoded) and the plain
 * `statuses=a&statuses=b` (also `statuses=a,b` and qs's `statuses[0]=a`); `created_at[gte]`
 * and `created_at_gte`. Keys and values are percent-decoded; '+' stays a literal '+' so
 * that an unencoded offset such as `+08:00` survives. An empty value (`key=`, which is how
 * the SDK sends null) means the parameter was not given. Unknown parameters are ignored;
 * a scalar parameter given twice is an error. */
#ifndef SG_QUERY_H
#define SG_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum sg_session_status {
	SG_STATUS_RESCHEDULING = 1u << 0,
	SG_STATUS_RUNNING = 1u << 1,
	SG_STATUS_IDLE = 1u << 2,
	SG_STATUS_TERMINATED = 1u << 3,
};

/* created_at bounds: which are set, and their values in µs since the epoch (UTC). */
struct sg_time_range {
	unsigned has_gt : 1, has_gte : 1, has_lt : 1, has_lte : 1;
	int64_t gt, gte, lt, lte;
};

#define SG_LIST_LIMIT_DEFAULT 20
#define SG_LIST_LIMIT_MAX 100
#define SG_EVENTS_LIMIT_DEFAULT 1000
#define SG_EVENTS_LIMIT_MAX 1000
#define SG_QUERY_MAX_TYPES 64

/* GET /v1/sessions. Strings are malloc'd (NULL = not given); free with
 * sg_session_query_clear. */
struct sg_session_query {
	char *agent_id;
	int64_t agent_version; /* -1 = not given */
	char *deployment_id;
	char *memory_store_id;
	struct sg_time_range created;
	int include_archived; /* default 0 */
	int order_asc;        /* default 0: desc, newest first */
	unsigned statuses;    /* bitmask of enum sg_session_status; 0 = any */
	int limit;            /* default SG_LIST_LIMIT_DEFAULT, 1..SG_LIST_LIMIT_MAX */
	char *page;           /* opaque cursor as given */
};

/* GET /v1/sessions/{id}/events. */
struct sg_event_query {
	struct sg_time_range created;    /* compared against processed_at */
	int order_desc;                  /* default 0: asc, oldest first */
	char *types[SG_QUERY_MAX_TYPES]; /* malloc'd, deduplicated; ntypes = 0 means all */
	size_t ntypes;
	int limit; /* default SG_EVENTS_LIMIT_DEFAULT, 1..SG_EVENTS_LIMIT_MAX */
	char *page;
};

/* Parse the raw query string (without '?', may be NULL or empty). On error returns -1 and
 * fills err with a 400 invalid_request_error whose message names the parameter as the
 * client spelled it. */
int sg_session_query_parse(const char *raw, struct sg_session_query *q, struct sg_error *err);
void sg_session_query_clear(struct sg_session_query *q);

int sg_event_query_parse(const char *raw, struct sg_event_query *q, struct sg_error *err);
void sg_event_query_clear(struct sg_event_query *q);

/* A canonical text of the filters (everything but page and limit), stable across
 * spellings and parameter order: what a cursor is bound to. Returns a new malloc'd string. */
char *sg_session_query_fingerprint(const struct sg_session_query *q);
char *sg_event_query_fingerprint(const struct sg_event_query *q);

/* "idle" → SG_STATUS_IDLE, 0 when unknown; and back. */
unsigned sg_status_from_string(const char *s);
const char *sg_status_to_string(unsigned status_bit);

/* 1 when `type` is a north event type of the SDK's union (BetaManagedAgentsSessionEventType). */
int sg_event_type_known(const char *type);

/* 1 when t (µs) satisfies every bound in r. */
int sg_time_range_match(const struct sg_time_range *r, int64_t t);

#endif
