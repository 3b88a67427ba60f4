/* fixture.h - golden fixtures for the translation tests.
 *
 * A fixture group is a directory tests/fixtures/<group>/ under $SG_SRCDIR (default "."),
 * holding one subdirectory per case with JSON files (e.g. input.json, expected.json).
 * With SG_UPDATE_GOLDEN=1 in the environment, sg_fixture_expect writes what it got into the
 * expected file instead of comparing (for regenerating; review the diff before committing). */
#ifndef SG_FIXTURE_H
#define SG_FIXTURE_H

#include <check.h>
#include <jansson.h>
#include <stddef.h>

struct sg_error;

#define SG_FIXTURE_NAME_MAX 128

/* Fills names with the case directories of `group`, sorted; returns how many (≤ max). */
size_t sg_fixture_list(const char *group, char names[][SG_FIXTURE_NAME_MAX], size_t max);

/* 1 when <group>/<name>/<file> exists. */
int sg_fixture_exists(const char *group, const char *name, const char *file);

/* Loads <group>/<name>/<file>. Returns a new reference, or NULL (with a message on stderr). */
json_t *sg_fixture_load(const char *group, const char *name, const char *file);

/* Compares got (borrowed) with <group>/<name>/<file>. On mismatch prints both, pretty and
 * with sorted keys, plus the first differing JSON path, and returns 0. Returns 1 when equal
 * (or when it rewrote the file under SG_UPDATE_GOLDEN=1). */
int sg_fixture_expect(const json_t *got, const char *group, const char *name, const char *file);

/* ---- running a suite ------------------------------------------------------------------ */

/* Runs s (the runner takes it over) with CK_NORMAL output. Returns the exit status for main:
 * EXIT_SUCCESS when no test failed. */
int sg_fixture_run(Suite *s);

/* ---- allocation-failure injection ----------------------------------------------------- */

/* jansson's allocator hooks are process-wide and take no context, so the injection state is
 * too; Check runs one test at a time, and only the allocation-failure tests arm it.
 * sg_fixture_alloc_begin saves jansson's allocator and installs one that fails the n-th
 * allocation from now (counting from 0) once, counting the allocations not yet freed; every
 * block carries a small header, so one freed by plain free() after sg_fixture_alloc_end
 * (or never allocated here) is an invalid free under valgrind instead of passing quietly. */
void sg_fixture_alloc_begin(long n);

/* 1 when the armed allocation has failed since sg_fixture_alloc_begin. */
int sg_fixture_alloc_fired(void);

/* Restores the allocator saved by sg_fixture_alloc_begin. Returns how many allocations made
 * since then are still live (0 = nothing leaked). */
long sg_fixture_alloc_end(void);

/* ---- north-shape checkers ------------------------------------------------------------- */

/* Asserts (Check) a 502 api_error whose message starts "backend 'NAME': " and contains
 * needle. */
void sg_check_502(const struct sg_error *err, const char *backend, const char *needle);

/* The keys every north Session carries (SDK 1.10.0), NULL-terminated. */
extern const char *const sg_check_session_required[];
/* Every key a north Session may carry: the required ones plus deployment_id. */
extern const char *const sg_check_session_keys[];
/* The keys of a Session's agent; all required, no others allowed. */
extern const char *const sg_check_agent_keys[];

/* 1 when every key of obj (borrowed; NULL counts as empty) is in keys and every key of req
 * is in obj. keys NULL allows any key, req NULL requires none (both NULL-terminated). Each
 * offender is named on stderr after label. */
int sg_check_keys(const json_t *obj, const char *const *keys, const char *const *req,
                  const char *label);

/* One north event type and the keys it may carry beyond id, type and processed_at; a key
 * spelled "!name" is required. */
struct sg_check_event_type {
	const char *type;
	const char *keys[4];
};

/* What a translator's events must look like for sg_check_event_keys. */
struct sg_check_event_rules {
	const struct sg_check_event_type *types;
	size_t ntypes;
	/* 1: a type missing from types is a bad envelope; 0: it may carry only the envelope. */
	int known_types_only;
	/* The translator's own id and processed_at spelling (ev borrowed); NULL = any. */
	int (*envelope_ok)(const json_t *ev);
};

/* Envelope and key discipline of every event in events (borrowed): a string type and an
 * envelope rules->envelope_ok accepts, only id, type, processed_at and the type's own keys,
 * the required ones present, and stop_details present and null on session.status_idle.
 * Looks at the top level only. Returns 0 when all hold, else -1 (offenders on stderr). */
int sg_check_event_keys(const json_t *events, const struct sg_check_event_rules *rules,
                        const char *label);

/* Index of the event with this id in events (borrowed), or -1 (also for a NULL id). */
long sg_check_find_event(const json_t *events, const char *id);

/* Every reference in events (borrowed) points at an earlier event of the right type: a
 * tool_result's tool_use_id at one of result_of, a stop_reason's event_ids at one of
 * action_of (both NULL-terminated), model_request_start_id at a span.model_request_start.
 * Returns 0 when all resolve, else -1 (offenders on stderr). */
int sg_check_links(const json_t *events, const char *const *result_of, const char *const *action_of,
                   const char *label);

/* 0 when no two events in events (borrowed) share an id, else -1. */
int sg_check_unique_ids(const json_t *events);

#endif
