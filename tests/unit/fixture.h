/* fixture.h - golden fixtures for the translation tests.
 *
 * A fixture group is a directory tests/fixtures/<group>/ under $SG_SRCDIR (default "."),
 * holding one subdirectory per case with JSON files (e.g. input.json, expected.json).
 * With SG_UPDATE_GOLDEN=1 in the environment, sg_fixture_expect writes what it got into the
 * expected file instead of comparing (for regenerating; review the diff before committing). */
#ifndef SG_FIXTURE_H
#define SG_FIXTURE_H

#include <jansson.h>
#include <stddef.h>

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

#endif
