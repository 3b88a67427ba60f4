/* main.c - command line, configuration, signals, and the server's lifetime.
 *
 *   sessiongate [--config FILE] [--check-config] [--version]
 *   sessiongate hash-key        (reads a key on stdin, prints its SHA-256 hex)
 *
 * Signals are blocked in every thread and taken synchronously by the main thread with
 * sigwait(), so no handler ever runs inside an event loop. */
#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "config.h"
#include "crypto.h"
#include "log.h"
#include "server.h"
#include "timeutil.h"

#define DEFAULT_CONFIG "etc/sessiongate.json"

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: sessiongate [--config FILE] [--check-config] [--version]\n"
	        "       sessiongate hash-key   (reads an API key on stdin, prints its "
	        "SHA-256 for the configuration)\n"
	        "default configuration: %s\n",
	        DEFAULT_CONFIG);
}

/* Prints the SHA-256 of one key read from stdin; a trailing newline is not part of it. */
static int hash_key(void)
{
	char buf[1100];
	size_t n = fread(buf, 1, sizeof(buf), stdin);
	uint8_t h[SG_SHA256_LEN];
	char hex[2 * SG_SHA256_LEN + 1];

	if (n >= 1025) {
		fprintf(stderr, "sessiongate: hash-key: a key is at most 1024 bytes\n");
		return 1;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	if (n == 0) {
		fprintf(stderr, "sessiongate: hash-key: no key on stdin\n");
		return 1;
	}
	sg_sha256(buf, n, h);
	sg_hex_encode(h, sizeof(h), hex, sizeof(hex));
	printf("%s\n", hex);
	return 0;
}

/* SIGHUP: the file is read and checked here, in the main thread (never on a worker's loop),
 * into a new generation that the workers take for the requests that start from then on. A
 * configuration that does not load is refused and the current one kept. *cur is the main
 * thread's reference to the current generation. */
static void reload(struct sg_server *srv, const char *path, struct sg_config **cur)
{
	struct sg_config *next;
	char err[1024], kept[1024];

	next = sg_config_load(path, err, sizeof(err));
	if (!next) {
		/* the message names the key and the problem, never a value */
		sg_error_log("reload refused: %s; still running with the previous configuration",
		             err);
		return;
	}
	sg_config_keep_restart_only(*cur, next, kept, sizeof(kept));
	if (kept[0])
		sg_warn("reload: these need a restart and keep their values: %s", kept);
	sg_config_inherit(next, *cur);
	sg_log_set_level(next->log_level);
	if (sg_server_reload(srv, next))
		sg_warn("reload: a worker has not taken the new configuration yet; it will");
	sg_config_unref(*cur);
	*cur = next;
	sg_info("reloaded configuration (%zu backends, %zu keys), generation %lu", next->nbackends,
	        next->nkeys, next->generation);
}

/* Waits up to ms for one of the signals in set: the signal, or 0 when the time ran out (or
 * the wait was interrupted: the caller looks at its clock again). */
static int wait_signal(const sigset_t *set, long ms)
{
	struct timespec left = {ms / 1000, (ms % 1000) * 1000000L};
	int sig = sigtimedwait(set, NULL, &left);

	return sig > 0 ? sig : 0;
}

/* The first step of a stop: /readyz fails for drain_delay_ms while everything else still
 * serves, so a load balancer stops sending before the listener closes. A second SIGTERM/SIGINT
 * cuts the delay short; a SIGHUP meanwhile is not acted on. */
static void drain_delay(struct sg_server *srv, const sigset_t *set, const struct sg_config *cfg,
                        int sig)
{
	int64_t end = sg_mono_ms() + cfg->drain_delay_ms;

	sg_server_set_draining(srv);
	if (cfg->drain_delay_ms <= 0)
		return;
	sg_info("signal %d: not ready (/readyz 503); still serving for %ld ms (drain_delay_ms)",
	        sig, cfg->drain_delay_ms);
	for (int64_t now = sg_mono_ms(); now < end; now = sg_mono_ms()) {
		int again = wait_signal(set, (long)(end - now));

		if (again == SIGTERM || again == SIGINT) {
			sg_info("signal %d: the rest of the drain delay is skipped", again);
			return;
		}
		if (again == SIGHUP)
			sg_warn("SIGHUP while draining: not reloading");
	}
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	int check_only = 0;
	struct sg_config *cfg;
	struct sg_server *srv;
	char err[1024];
	sigset_t set;
	int sig;

	/* glibc gives the top of a worker's heap back (madvise) once 128 KiB lie free there, and
	 * the next answer faults the same pages in again: under load that churn cost more than
	 * building the answers (perf). Keep up to 64 MiB of free heap per arena instead; the
	 * cache budget, not the allocator, bounds what the process holds. */
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			path = argv[i] + 9;
		} else if (strcmp(argv[i], "--check-config") == 0) {
			check_only = 1;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("sessiongate %s (libevent %s, %s, jansson %s)\n", PACKAGE_VERSION,
			       event_get_version(), curl_version(), JANSSON_VERSION);
			return 0;
		} else if (strcmp(argv[i], "hash-key") == 0 && argc == 2) {
			return hash_key();
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "sessiongate: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "sessiongate: libcurl failed to initialise\n");
		return 1;
	}
	cfg = sg_config_load(path, err, sizeof(err));
	if (!cfg) {
		fprintf(stderr, "sessiongate: configuration error: %s\n", err);
		curl_global_cleanup();
		return 1;
	}
	if (check_only) {
		printf("%s: OK (%zu backend(s), %zu key(s), %d worker(s))\n", path, cfg->nbackends,
		       cfg->nkeys, cfg->workers);
		sg_config_free(cfg);
		curl_global_cleanup();
		return 0;
	}
	sg_log_set_level(cfg->log_level);
	sg_log_set_json(cfg->log_json);
	if (!(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_ASYNCHDNS))
		sg_warn("libcurl has no asynchronous resolver: use IP addresses in backend URLs, "
		        "or name resolution will block a worker");
	if (evthread_use_pthreads() != 0) {
		fprintf(stderr, "sessiongate: libevent has no pthreads support\n");
		return 1;
	}

	/* Block the signals before any thread exists, so every worker inherits the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP); /* blocked and waited for: a reload */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	srv = sg_server_new(cfg, err, sizeof(err));
	if (!srv) {
		fprintf(stderr, "sessiongate: %s\n", err);
		sg_config_free(cfg);
		return 1;
	}
	if (sg_server_start(srv) != 0) {
		fprintf(stderr, "sessiongate: cannot start the workers\n");
		sg_server_stop(srv);
		sg_server_free(srv);
		sg_config_free(cfg);
		return 1;
	}
	sg_info("sessiongate %s listening on %s:%d with %d worker(s)", PACKAGE_VERSION,
	        cfg->listen_host, sg_server_port(srv), cfg->workers);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		reload(srv, path, &cfg);
	}
	drain_delay(srv, &set, cfg, sig);
	sg_info("signal %d: no longer accepting; finishing in-flight requests (grace %ld ms)", sig,
	        cfg->shutdown_grace_ms);
	sg_server_stop(srv);
	sg_server_free(srv);
	sg_config_unref(cfg);
	curl_global_cleanup();
	sg_info("stopped");
	return 0;
}
