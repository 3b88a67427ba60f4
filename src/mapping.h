/* mapping.h - the interface between the core and one backend dialect.
 *
 * A mapping module is a const table of callbacks (redis's connection types are the model).
 * The core owns everything dialect-independent: it parses and validates the north query,
 * filters, orders and pages, mints cursors and ids, renders errors. A module only decides
 * which upstream calls to make (through the struct sg_call toolkit in src/call.h) and turns
 * their bodies into north JSON with pure functions.
 *
 * Lifecycle: init() once per backend at start-up, on the main thread, before any worker
 * runs; what it stores in be->priv must be immutable afterwards, because every worker
 * thread reads it. destroy() at exit. The request callbacks run on a worker's event loop
 * and must never block: they start fetches and return. */
#ifndef SG_MAPPING_H
#define SG_MAPPING_H

#include <jansson.h>

#include "error.h"
#include "options.h"

struct sg_backend;
struct sg_call;

/* What a backend's error answer said, as its dialect's reader understood the body. The core
 * turns it into the north error (src/berror.h), with one status table for every backend. */
struct sg_backend_said {
	char type[65];       /* the backend's error type (safe text), "" when none */
	char message[301];   /* its own words, clipped to valid UTF-8 without control bytes, "" */
	char session[200];   /* native id of a session the error names, "" when none */
	int own;             /* 1: the body is the backend's own error shape (not a proxy's page) */
	int outcome_unknown; /* 1: the backend says a write may or may not have taken effect */
};

/* What a backend does natively beyond what its callbacks show; the core emulates the rest
 * the same way for everyone. */
enum sg_caps {
	SG_CAP_NATIVE_ORDER = 1u << 0,  /* pages in either order (else: sessions newest first,
	                                 * events oldest first) */
	SG_CAP_STREAM_RESUME = 1u << 1, /* stream_events resumes after an event id given as
	                                 * sg_call_stream_resume() (a client's Last-Event-ID) */
};

struct sg_mapping {
	const char *name; /* the "mapping" value in the configuration */
	unsigned caps;

	/* Validates the module's "options" object (borrowed, may be NULL) and sets be->priv.
	 * Returns 0, or -1 with a message naming the key in err. */
	int (*init)(struct sg_backend *be, const json_t *options, struct sg_error *err);
	void (*destroy)(struct sg_backend *be);

	/* Validates a key's identity object for this backend (borrowed), e.g. AgentScope
	 * needs {"user_id": "…"}. Returns 0, or -1 with the problem in err. */
	int (*check_identity)(const json_t *identity, struct sg_error *err);

	/* Every session the principal may see on this backend that could match the query:
	 * ends in sg_call_items() (array of north Session objects) or sg_call_fail(). */
	void (*list_sessions)(struct sg_call *call);
	/* The session named by sg_call_pubid(): sg_call_items() with a one-element array, or
	 * sg_call_fail() (404 when the backend does not know it). */
	void (*get_session)(struct sg_call *call);
	/* The session's events, oldest first: sg_call_items() or sg_call_fail(). NULL when
	 * the module has none yet (the core answers 404 for the route). */
	void (*list_events)(struct sg_call *call);

	/* Native paging, for backends that page themselves: one backend page, starting at
	 * the backend's cursor sg_call_page_cursor() (NULL = first page), with the module's
	 * carry state at that page's start (sg_call_page_carry(), may be NULL). Ends with
	 * sg_call_page(): the page's north items, the backend's next cursor, the carry at the
	 * page's end. The core walks pages, filters, and seals its own cursor as
	 * (backend cursor, position in that page, carry); modules never page themselves. */
	void (*list_sessions_page)(struct sg_call *call);
	void (*list_events_page)(struct sg_call *call);

	/* Writes. The core has parsed the north body and validated it against the SDK's types
	 * (sg_call_body(): the whole body, borrowed; unknown keys and wrong types never reach a
	 * module), chosen the backend from the key's routes and, for a session's writes, decoded
	 * the public id (sg_call_pubid()). A module maps what its backend can do and refuses the
	 * rest with a 400 invalid_request_error naming the field and the backend ("backend 'as'
	 * (agentscope) cannot store metadata"). It sends each write once (sg_call_request: never
	 * retried; an answer that is lost ends in the core's "outcome unknown" error through
	 * sg_call_json()). Ends:
	 *   create_session, update_session, archive_session: sg_call_object(north Session);
	 *   delete_session: sg_call_object(NULL) once the backend deleted it (the core answers
	 *     {id, type: "session_deleted"});
	 *   send_events: sg_call_object({"data": [the accepted events as north events]}).
	 * NULL slot: the backend cannot do it at all, and the core says so with a 400 naming the
	 * backend. */
	void (*create_session)(struct sg_call *call);
	void (*update_session)(struct sg_call *call);
	void (*archive_session)(struct sg_call *call);
	void (*delete_session)(struct sg_call *call);
	void (*send_events)(struct sg_call *call);

	/* Agents, read-only. list_agents: sg_call_items() with every north Agent the principal
	 * may use on this backend (the core filters, orders and pages); get_agent: the agent
	 * sg_call_pubid()->native names (its version in sg_call_agent_version(), -1 = latest),
	 * sg_call_object(north Agent), or a 404. */
	void (*list_agents)(struct sg_call *call);
	void (*get_agent)(struct sg_call *call);

	/* The live event stream of sg_call_pubid(): hands each north event to the core as it is
	 * translated (sg_call_emit()), and ends with sg_call_object() (NULL) when the backend
	 * closes the stream, or sg_call_fail(). Exempt from the request deadline; cancelled when
	 * the client leaves or the gateway drains. */
	void (*stream_events)(struct sg_call *call);

	/* Reads the body of a non-2xx answer in the backend's dialect (NULL: the core's reader,
	 * which knows the common shapes). Pure; must fill only what the body says. */
	void (*read_error)(long status, const char *body, size_t len, struct sg_backend_said *out);
};

/* Every compiled-in module, NULL-terminated (mappings/registry.c). */
extern const struct sg_mapping *const sg_mappings[];
const struct sg_mapping *sg_mapping_find(const char *name);

#endif
