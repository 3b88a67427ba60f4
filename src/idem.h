/* idem.h - Idempotency-Key answers, kept for a window and shared by every worker of one
 * process (a later step shares them across instances through Redis).
 *
 * A POST that carries Idempotency-Key is recorded under (principal, key, method, path) with a
 * fingerprint of its body. While it runs, a repeat is told so (PENDING); once answered, a
 * repeat with the same body gets the first answer again (REPLAY) without reaching the
 * backend, and one with another body is refused (MISMATCH). An answer that says nothing was
 * done (the request was refused before any work: x-should-retry true) is not kept, so the
 * client's retry with the same key runs again.
 *
 * Bounded: at most max_keys entries and max_bytes of stored answers. When full, the oldest
 * answered entries go first, even inside their window (logged); pending ones are never
 * evicted, and when only pending ones remain a new key is refused (FULL). Thread-safe. */
#ifndef SG_IDEM_H
#define SG_IDEM_H

#include <stddef.h>
#include <stdint.h>

#define SG_IDEM_KEY_MAX 255 /* bytes of an Idempotency-Key header */

struct sg_idem;

enum sg_idem_state {
	SG_IDEM_NEW,      /* recorded as pending: go ahead, then finish or abandon it */
	SG_IDEM_PENDING,  /* the same key is still being answered */
	SG_IDEM_REPLAY,   /* answered before with the same body: *answer holds it */
	SG_IDEM_MISMATCH, /* answered or running with another body */
	SG_IDEM_FULL,     /* no room, even after evicting every answered entry */
};

/* A kept answer. body is malloc'd (the caller of sg_idem_begin frees it on REPLAY). */
struct sg_idem_answer {
	int status;
	int should_retry; /* -1 none, 0, 1: the x-should-retry header */
	char *body;
	size_t len;
};

struct sg_idem *sg_idem_new(size_t max_keys, size_t max_bytes, long window_ms);
void sg_idem_free(struct sg_idem *s);

/* Looks up key (any bytes, NUL-terminated) with the body's fingerprint fp at now_ms. */
enum sg_idem_state sg_idem_begin(struct sg_idem *s, const char *key, const uint8_t fp[32],
                                 int64_t now_ms, struct sg_idem_answer *answer);
/* Keeps the answer of a key begun with NEW (copied). */
void sg_idem_finish(struct sg_idem *s, const char *key, const struct sg_idem_answer *answer,
                    int64_t now_ms);
/* Forgets a key begun with NEW: nothing was done, a retry may run. */
void sg_idem_abandon(struct sg_idem *s, const char *key);

/* Entries held now (tests, metrics). */
size_t sg_idem_count(struct sg_idem *s);

/* Whether a header value is a usable key: 1 to SG_IDEM_KEY_MAX printable ASCII bytes. */
int sg_idem_key_valid(const char *v);

#endif
