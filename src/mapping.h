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

/* What a backend does natively; the core emulates the rest the same way for everyone. */
enum sg_caps {
	SG_CAP_NATIVE_FILTERS = 1u << 0, /* honours the north session filters itself */
	SG_CAP_NATIVE_CURSOR = 1u << 1,  /* pages sessions itself with a cursor */
	SG_CAP_STREAM = 1u << 2,         /* has a live event stream */
	SG_CAP_NATIVE_ORDER = 1u << 3,   /* pages in either order (else: sessions newest
					  * first, events oldest first) */
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
};

/* Every compiled-in module, NULL-terminated (mappings/registry.c). */
extern const struct sg_mapping *const sg_mappings[];
const struct sg_mapping *sg_mapping_find(const char *name);

#endif
