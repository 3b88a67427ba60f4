/* wbody.c - see wbody.h.
 *
 * The param types as const tables and one checker. Deeply nested configuration the gateway
 * never reads itself (agent tools, MCP servers, models, skills, rubrics, resource checkouts)
 * is checked for its JSON kind only: the backend that takes it validates the rest, and the
 * backends that cannot take it refuse it whole. */
#include "wbody.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define W_PATH_MAX 160

enum vkind {
	V_STR,  /* a string; with `values`, one of them */
	V_INT,  /* an integer ≥ min */
	V_NUM,  /* any number */
	V_BOOL, /* true or false */
	V_OBJ,  /* an object with exactly the keys of `fields` */
	V_ANY,  /* an object whose keys are not checked */
	V_ARR,  /* an array of `item`, at most `max` */
	V_META, /* metadata: string → string (or null, with V_NULLVAL), bounded */
	V_UNION /* an object discriminated by `type`, one of `variants` */
};

#define V_REQ 1u      /* required key */
#define V_NULL 2u     /* the value may be null */
#define V_NONEMPTY 4u /* a string or an array that may not be empty */
#define V_NULLVAL 8u  /* V_META: a value may be null (a deletion in an update) */

struct vshape;

struct vfield {
	const char *key;
	const struct vshape *shape;
	unsigned flags;
};

struct vvariant {
	const char *name;
	const struct vfield *fields; /* besides `type` */
};

struct vshape {
	enum vkind kind;
	const struct vfield *fields;
	const struct vshape *item;
	const char *const *values;
	const struct vvariant *variants;
	size_t max;
	unsigned item_flags;
};

/* clang-format off */
#define END {NULL, NULL, 0}
#define FIELDS(...) ((const struct vfield[]){__VA_ARGS__, END})
#define VARIANTS(...) ((const struct vvariant[]){__VA_ARGS__, {NULL, NULL}})
#define ENUM(...) {.kind = V_STR, .values = (const char *const[]){__VA_ARGS__, NULL}}
/* clang-format on */

static const struct vshape S_STR = {.kind = V_STR};
static const struct vshape S_NUM = {.kind = V_NUM};
static const struct vshape S_VERSION = {.kind = V_INT};
static const struct vshape S_BOOL = {.kind = V_BOOL};
static const struct vshape S_ANY = {.kind = V_ANY};
static const struct vshape A_ANY = {.kind = V_ARR, .item = &S_ANY, .max = 1000};
static const struct vshape A_STR = {
    .kind = V_ARR, .item = &S_STR, .max = 1000, .item_flags = V_NONEMPTY};
static const struct vshape S_META = {.kind = V_META};
static const struct vshape S_META_PATCH = {.kind = V_META, .item_flags = V_NULLVAL};
static const struct vshape E_CONFIRM = ENUM("allow", "deny");
static const struct vshape E_PLAIN = ENUM("text/plain");
static const struct vshape E_USD = ENUM("USD");

/* ---- content blocks ---- */

static const struct vfield F_TEXT[] = {{"text", &S_STR, V_REQ}, END};
static const struct vfield F_BASE64[] = {
    {"data", &S_STR, V_REQ | V_NONEMPTY}, {"media_type", &S_STR, V_REQ | V_NONEMPTY}, END};
static const struct vfield F_URL[] = {{"url", &S_STR, V_REQ | V_NONEMPTY}, END};
static const struct vfield F_FILE[] = {{"file_id", &S_STR, V_REQ | V_NONEMPTY}, END};
static const struct vfield F_PLAIN[] = {
    {"data", &S_STR, V_REQ}, {"media_type", &E_PLAIN, V_REQ}, END};
static const struct vshape U_IMAGE_SOURCE = {
    .kind = V_UNION, .variants = VARIANTS({"base64", F_BASE64}, {"url", F_URL}, {"file", F_FILE})};
static const struct vshape U_DOCUMENT_SOURCE = {
    .kind = V_UNION,
    .variants =
        VARIANTS({"base64", F_BASE64}, {"text", F_PLAIN}, {"url", F_URL}, {"file", F_FILE})};
static const struct vfield F_IMAGE[] = {{"source", &U_IMAGE_SOURCE, V_REQ}, END};
static const struct vfield F_DOCUMENT[] = {{"source", &U_DOCUMENT_SOURCE, V_REQ},
                                           {"context", &S_STR, V_NULL},
                                           {"title", &S_STR, V_NULL},
                                           END};
static const struct vshape U_TEXT_ONLY = {.kind = V_UNION, .variants = VARIANTS({"text", F_TEXT})};
static const struct vshape A_TEXT_ONLY = {.kind = V_ARR, .item = &U_TEXT_ONLY, .max = 100};
static const struct vshape O_CITATIONS = {.kind = V_OBJ,
                                          .fields = FIELDS({"enabled", &S_BOOL, V_REQ})};
static const struct vfield F_SEARCH_RESULT[] = {{"citations", &O_CITATIONS, V_REQ},
                                                {"content", &A_TEXT_ONLY, V_REQ},
                                                {"source", &S_STR, V_REQ},
                                                {"title", &S_STR, V_REQ},
                                                END};
static const struct vshape U_USER_BLOCK = {
    .kind = V_UNION,
    .variants = VARIANTS({"text", F_TEXT}, {"image", F_IMAGE}, {"document", F_DOCUMENT},
                         {"redacted", NULL})};
static const struct vshape U_RESULT_BLOCK = {
    .kind = V_UNION,
    .variants = VARIANTS({"text", F_TEXT}, {"image", F_IMAGE}, {"document", F_DOCUMENT},
                         {"search_result", F_SEARCH_RESULT})};
static const struct vshape A_USER_CONTENT = {.kind = V_ARR, .item = &U_USER_BLOCK, .max = 100};
static const struct vshape A_RESULT_CONTENT = {.kind = V_ARR, .item = &U_RESULT_BLOCK, .max = 100};

/* ---- events ---- */

static const struct vfield F_USER_MESSAGE[] = {{"content", &A_USER_CONTENT, V_REQ | V_NONEMPTY},
                                               END};
static const struct vfield F_INTERRUPT[] = {{"session_thread_id", &S_STR, V_NULL}, END};
static const struct vfield F_CONFIRM[] = {{"result", &E_CONFIRM, V_REQ},
                                          {"tool_use_id", &S_STR, V_REQ | V_NONEMPTY},
                                          {"deny_message", &S_STR, V_NULL},
                                          END};
static const struct vfield F_CUSTOM_RESULT[] = {{"custom_tool_use_id", &S_STR, V_REQ | V_NONEMPTY},
                                                {"content", &A_RESULT_CONTENT, 0},
                                                {"is_error", &S_BOOL, V_NULL},
                                                END};
static const struct vfield F_TOOL_RESULT[] = {{"tool_use_id", &S_STR, V_REQ | V_NONEMPTY},
                                              {"content", &A_RESULT_CONTENT, 0},
                                              {"is_error", &S_BOOL, V_NULL},
                                              END};
static const struct vshape U_RUBRIC = {
    .kind = V_UNION,
    .variants = VARIANTS({"text", FIELDS({"content", &S_STR, V_REQ})}, {"file", F_FILE})};
static const struct vfield F_OUTCOME[] = {{"description", &S_STR, V_REQ},
                                          {"rubric", &U_RUBRIC, V_REQ},
                                          {"max_iterations", &S_NUM, V_NULL},
                                          END};
static const struct vfield F_SYSTEM[] = {{"content", &A_TEXT_ONLY, V_REQ | V_NONEMPTY}, END};
static const struct vshape U_EVENT = {
    .kind = V_UNION,
    .variants =
        VARIANTS({"user.message", F_USER_MESSAGE}, {"user.interrupt", F_INTERRUPT},
                 {"user.tool_confirmation", F_CONFIRM},
                 {"user.custom_tool_result", F_CUSTOM_RESULT}, {"user.define_outcome", F_OUTCOME},
                 {"user.tool_result", F_TOOL_RESULT}, {"system.message", F_SYSTEM})};
static const struct vshape A_EVENTS = {.kind = V_ARR, .item = &U_EVENT, .max = SG_WBODY_MAX_EVENTS};
static const struct vshape U_INITIAL_EVENT = {
    .kind = V_UNION,
    .variants = VARIANTS({"user.message", F_USER_MESSAGE}, {"user.define_outcome", F_OUTCOME})};
static const struct vshape A_INITIAL_EVENTS = {
    .kind = V_ARR, .item = &U_INITIAL_EVENT, .max = SG_WBODY_MAX_EVENTS};

/* ---- sessions ---- */

static const struct vfield F_AGENT_REF[] = {
    {"id", &S_STR, V_REQ | V_NONEMPTY}, {"version", &S_VERSION, 0}, END};
static const struct vfield F_AGENT_OVERRIDES[] = {{"id", &S_STR, V_REQ | V_NONEMPTY},
                                                  {"version", &S_VERSION, 0},
                                                  {"mcp_servers", &A_ANY, 0},
                                                  {"model", &S_ANY, 0},
                                                  {"skills", &A_ANY, 0},
                                                  {"system", &S_STR, V_NULL},
                                                  {"tools", &A_ANY, 0},
                                                  END};
static const struct vshape U_AGENT = {
    .kind = V_UNION,
    .variants = VARIANTS({"agent", F_AGENT_REF}, {"agent_with_overrides", F_AGENT_OVERRIDES})};
static const struct vshape O_MONEY = {
    .kind = V_OBJ,
    .fields = FIELDS({"amount", &S_STR, V_REQ | V_NONEMPTY}, {"currency", &E_USD, V_REQ})};
static const struct vshape U_BUDGET = {
    .kind = V_UNION, .variants = VARIANTS({"limit", FIELDS({"max_list_cost", &O_MONEY, V_REQ})})};
static const struct vshape U_RESOURCE = {
    .kind = V_UNION,
    .variants = VARIANTS(
        {"github_repository",
         FIELDS({"url", &S_STR, V_REQ | V_NONEMPTY}, {"authorization_token", &S_STR, 0},
                {"checkout", &S_ANY, V_NULL}, {"mount_path", &S_STR, V_NULL})},
        {"file", FIELDS({"file_id", &S_STR, V_REQ | V_NONEMPTY}, {"mount_path", &S_STR, V_NULL})},
        {"memory_store", FIELDS({"memory_store_id", &S_STR, V_REQ | V_NONEMPTY},
                                {"access", &S_STR, V_NULL}, {"instructions", &S_STR, V_NULL})})};
static const struct vshape A_RESOURCES = {.kind = V_ARR, .item = &U_RESOURCE, .max = 100};

/* `agent` is a string or an object: handled before the table (see check_agent). */
static const struct vfield F_CREATE[] = {{"agent", NULL, V_REQ},
                                         {"environment_id", &S_STR, V_REQ | V_NONEMPTY},
                                         {"title", &S_STR, V_NULL},
                                         {"metadata", &S_META, 0},
                                         {"initial_events", &A_INITIAL_EVENTS, 0},
                                         {"resources", &A_RESOURCES, 0},
                                         {"vault_ids", &A_STR, 0},
                                         {"budget", &U_BUDGET, 0},
                                         END};
static const struct vshape O_AGENT_UPDATE = {
    .kind = V_OBJ, .fields = FIELDS({"mcp_servers", &A_ANY, 0}, {"tools", &A_ANY, 0})};
static const struct vfield F_UPDATE[] = {{"agent", &O_AGENT_UPDATE, 0},
                                         {"budget", &U_BUDGET, V_NULL},
                                         {"metadata", &S_META_PATCH, V_NULL},
                                         {"title", &S_STR, V_NULL},
                                         {"vault_ids", &A_STR, 0},
                                         END};
static const struct vfield F_SEND[] = {{"events", &A_EVENTS, V_REQ | V_NONEMPTY}, END};

/* ---- the checker ---- */

struct vctx {
	char path[W_PATH_MAX];
	size_t len;
	struct sg_error *err;
};

/* Sets the 400 for the value at the current path. Returns -1. */
__attribute__((format(printf, 2, 3))) static int bad(struct vctx *c, const char *fmt, ...)
{
	char what[SG_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return sg_err_invalid(c->err, "%s%s%s", c->path, c->len ? ": " : "", what);
}

static size_t push_key(struct vctx *c, const char *key)
{
	size_t mark = c->len;
	int n =
	    snprintf(c->path + c->len, sizeof(c->path) - c->len, "%s%s", c->len ? "." : "", key);

	if (n > 0)
		c->len =
		    c->len + (size_t)n < sizeof(c->path) ? c->len + (size_t)n : sizeof(c->path) - 1;
	return mark;
}

static size_t push_index(struct vctx *c, size_t i)
{
	size_t mark = c->len;
	int n = snprintf(c->path + c->len, sizeof(c->path) - c->len, "[%zu]", i);

	if (n > 0)
		c->len =
		    c->len + (size_t)n < sizeof(c->path) ? c->len + (size_t)n : sizeof(c->path) - 1;
	return mark;
}

static void pop(struct vctx *c, size_t mark)
{
	c->len = mark;
	c->path[mark] = '\0';
}

static int check(const struct vshape *sh, const json_t *v, unsigned flags, struct vctx *c);

static int check_fields(const struct vfield *fields, const json_t *obj, const char *skip,
                        struct vctx *c)
{
	const char *key;
	const json_t *v;

	json_object_foreach((json_t *)obj, key, v) {
		const struct vfield *f;

		if (skip && !strcmp(key, skip))
			continue;
		for (f = fields; f && f->key && strcmp(f->key, key); f++)
			;
		if (!f || !f->key) {
			size_t mark = push_key(c, key);
			int rc = bad(c, "unknown field");

			pop(c, mark);
			return rc;
		}
	}
	for (const struct vfield *f = fields; f && f->key; f++) {
		size_t mark = push_key(c, f->key);
		int rc = 0;

		v = json_object_get(obj, f->key);
		if (!v) {
			if (f->flags & V_REQ)
				rc = bad(c, "required");
		} else if (f->shape) {
			rc = check(f->shape, v, f->flags, c);
		}
		pop(c, mark);
		if (rc)
			return rc;
	}
	return 0;
}

static int check_union(const struct vshape *sh, const json_t *v, struct vctx *c)
{
	const char *type = json_string_value(json_object_get(v, "type"));
	const struct vvariant *var;
	size_t mark;
	int rc;

	for (var = sh->variants; type && var->name && strcmp(var->name, type); var++)
		;
	if (type && var->name)
		return check_fields(var->fields, v, "type", c);
	mark = push_key(c, "type");
	rc = json_object_get(v, "type")
	         ? bad(c, "unknown type '%.64s'", type ? type : "(not a string)")
	         : bad(c, "required");
	pop(c, mark);
	return rc;
}

static int check_meta(const struct vshape *sh, const json_t *v, struct vctx *c)
{
	const char *key;
	const json_t *val;

	if (json_object_size(v) > SG_WBODY_MAX_METADATA)
		return bad(c, "at most %d pairs", SG_WBODY_MAX_METADATA);
	json_object_foreach((json_t *)v, key, val) {
		size_t mark = push_key(c, key);
		int rc = 0;

		if (!*key || strlen(key) > SG_WBODY_MAX_KEY)
			rc = bad(c, "keys must be 1 to %d bytes", SG_WBODY_MAX_KEY);
		else if (json_is_null(val) && (sh->item_flags & V_NULLVAL))
			rc = 0;
		else if (!json_is_string(val))
			rc = bad(c, "must be a string%s",
			         (sh->item_flags & V_NULLVAL) ? " or null" : "");
		else if (json_string_length(val) > SG_WBODY_MAX_VALUE)
			rc = bad(c, "at most %d bytes", SG_WBODY_MAX_VALUE);
		pop(c, mark);
		if (rc)
			return rc;
	}
	return 0;
}

static int check(const struct vshape *sh, const json_t *v, unsigned flags, struct vctx *c)
{
	if (json_is_null(v))
		return (flags & V_NULL) ? 0 : bad(c, "must not be null");
	switch (sh->kind) {
	case V_STR:
		if (!json_is_string(v))
			return bad(c, "must be a string");
		if ((flags & V_NONEMPTY) && json_string_length(v) == 0)
			return bad(c, "must not be empty");
		if (sh->values) {
			for (const char *const *e = sh->values; *e; e++)
				if (!strcmp(*e, json_string_value(v)))
					return 0;
			return bad(c, "'%.64s' is not one of the allowed values",
			           json_string_value(v));
		}
		return 0;
	case V_INT:
		if (!json_is_integer(v) || json_integer_value(v) < 1)
			return bad(c, "must be a positive integer");
		return 0;
	case V_NUM:
		return json_is_number(v) ? 0 : bad(c, "must be a number");
	case V_BOOL:
		return json_is_boolean(v) ? 0 : bad(c, "must be true or false");
	case V_OBJ:
		if (!json_is_object(v))
			return bad(c, "must be an object");
		return check_fields(sh->fields, v, NULL, c);
	case V_ANY:
		return json_is_object(v) ? 0 : bad(c, "must be an object");
	case V_META:
		if (!json_is_object(v))
			return bad(c, "must be an object of strings");
		return check_meta(sh, v, c);
	case V_UNION:
		if (!json_is_object(v))
			return bad(c, "must be an object");
		return check_union(sh, v, c);
	case V_ARR: {
		const json_t *it;
		size_t i;

		if (!json_is_array(v))
			return bad(c, "must be an array");
		if ((flags & V_NONEMPTY) && json_array_size(v) == 0)
			return bad(c, "must not be empty");
		if (json_array_size(v) > sh->max)
			return bad(c, "at most %zu items", sh->max);
		json_array_foreach(v, i, it) {
			size_t mark = push_index(c, i);
			int rc = check(sh->item, it, sh->item_flags, c);

			pop(c, mark);
			if (rc)
				return rc;
		}
		return 0;
	}
	}
	return bad(c, "cannot be checked");
}

/* `agent` of a create: an agent id, or an agent reference object. */
static int check_agent(const json_t *agent, struct vctx *c)
{
	size_t mark = push_key(c, "agent");
	int rc;

	if (json_is_string(agent))
		rc = json_string_length(agent) ? 0 : bad(c, "must not be empty");
	else if (json_is_object(agent))
		rc = check_union(&U_AGENT, agent, c);
	else
		rc = bad(c, "must be an agent id or an object with type 'agent'");
	pop(c, mark);
	return rc;
}

json_t *sg_wbody_parse(enum sg_wbody_kind kind, const char *body, size_t len, struct sg_error *err)
{
	static const struct vfield *const tables[] = {F_CREATE, F_UPDATE, F_SEND};
	struct vctx c = {.err = err};
	json_error_t jerr;
	json_t *root;

	if (len == 0 && kind == SG_WBODY_UPDATE)
		return json_object();
	if (len == 0) {
		sg_err_invalid(err, "the request needs a JSON body");
		return NULL;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		sg_err_invalid(err, "the body is not valid JSON: %s (at byte %d)", jerr.text,
		               jerr.position);
		return NULL;
	}
	if (!json_is_object(root)) {
		sg_err_invalid(err, "the body must be a JSON object");
		goto fail;
	}
	if (check_fields(tables[kind], root, NULL, &c))
		goto fail;
	if (kind == SG_WBODY_CREATE && check_agent(json_object_get(root, "agent"), &c))
		goto fail;
	return root;
fail:
	json_decref(root);
	return NULL;
}
