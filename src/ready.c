/* ready.c - see ready.h. */
#include "ready.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "request.h"
#include "timeutil.h"
#include "upstream.h"

/* A probe answer's body is not read: a little is enough to see an HTTP answer. */
#define PROBE_MAX_BYTES (64 << 10)

/* No credentials go with a probe; it says what it is, so a backend's logs (and the test
 * fakes' request records) can tell it from the requests made for clients. */
static const char *const probe_headers[] = {"User-Agent: " SG_PROBE_USER_AGENT, NULL};

struct slot {
	struct sg_probe *p;
	struct sg_backend_state *st; /* lives as long as the round's generation */
	struct sg_fetch *f;
	char *url;
};

struct sg_probe {
	struct sg_req_host *host;
	struct event *timer;
	const struct sg_config *cfg; /* the round's generation (a reference); NULL between */
	struct slot *slots;
	size_t n, pending;
	int stopped;
	int again; /* kicked during a round: the next one starts as soon as it ends */
};

static void round_end(struct sg_probe *p)
{
	for (size_t i = 0; i < p->n; i++) {
		if (p->slots[i].f)
			sg_fetch_cancel(p->slots[i].f);
		free(p->slots[i].url);
	}
	free(p->slots);
	p->slots = NULL;
	p->n = p->pending = 0;
	sg_config_unref(p->cfg);
	p->cfg = NULL;
}

static void schedule(struct sg_probe *p, long ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (!p->stopped)
		evtimer_add(p->timer, &tv);
}

static void on_answer(const struct sg_fetch_res *res, void *arg)
{
	struct slot *s = arg;
	struct sg_probe *p = s->p;
	/* an answer too large to keep is still an answer */
	int up = res->fail == SG_FETCH_OK || res->fail == SG_FETCH_TOO_LARGE;

	s->f = NULL;
	atomic_store(&s->st->reachable, up);
	atomic_store(&s->st->probed_ms, (long long)sg_mono_ms());
	if (--p->pending > 0)
		return;
	round_end(p);
	schedule(p, p->again ? 0 : p->host->cfg->probe_interval_ms);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sg_probe *p = arg;
	const struct sg_config *cfg = p->host->cfg;

	(void)fd;
	(void)what;
	if (p->cfg || p->stopped)
		return; /* a round is under way */
	p->again = 0;
	p->slots = calloc(cfg->nbackends ? cfg->nbackends : 1, sizeof(*p->slots));
	if (!p->slots) {
		schedule(p, cfg->probe_interval_ms);
		return;
	}
	p->cfg = sg_config_ref(cfg);
	p->n = cfg->nbackends;
	for (size_t i = 0; i < cfg->nbackends; i++) {
		const struct sg_backend *be = &cfg->backends[i];
		struct slot *s = &p->slots[i];
		struct sg_fetch_req req = {0};

		s->p = p;
		s->st = be->state;
		if (asprintf(&s->url, "%s/", be->url) < 0)
			s->url = NULL;
		req.method = "GET";
		req.url = s->url;
		req.headers = probe_headers;
		req.timeout_ms = cfg->probe_timeout_ms;
		req.connect_timeout_ms = cfg->probe_timeout_ms;
		req.max_bytes = PROBE_MAX_BYTES;
		/* on the streams' upstream, which has no per-host connection cap: a probe never
		 * takes a pooled connection from a client's request */
		s->f = s->url
		           ? sg_fetch_start(p->host->stream_up ? p->host->stream_up : p->host->up,
		                            &req, on_answer, s)
		           : NULL;
		if (s->f)
			p->pending++;
		else
			atomic_store(&s->st->reachable, 0);
	}
	if (p->pending == 0) {
		round_end(p);
		schedule(p, cfg->probe_interval_ms);
	}
}

struct sg_probe *sg_probe_new(struct sg_req_host *host)
{
	struct sg_probe *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->host = host;
	p->timer = evtimer_new(host->base, on_timer, p);
	if (!p->timer) {
		free(p);
		return NULL;
	}
	schedule(p, 0);
	return p;
}

void sg_probe_kick(struct sg_probe *p)
{
	if (!p)
		return;
	if (p->cfg)
		p->again = 1; /* it probes the previous generation's backends */
	else
		schedule(p, 0);
}

void sg_probe_stop(struct sg_probe *p)
{
	if (!p)
		return;
	p->stopped = 1;
	evtimer_del(p->timer);
	round_end(p);
}

void sg_probe_free(struct sg_probe *p)
{
	if (!p)
		return;
	sg_probe_stop(p);
	event_free(p->timer);
	free(p);
}

/* Why a backend is not ready, or NULL. */
static const char *backend_verdict(const struct sg_backend *be, int64_t now_ms)
{
	long long until = atomic_load(&((struct sg_backend *)be)->breaker.open_until_ms);

	switch (atomic_load(&be->state->reachable)) {
	case -1:
		return "not probed yet";
	case 0:
		return "unreachable";
	}
	if (until != 0 && now_ms < until)
		return "breaker open";
	return NULL;
}

void sg_api_readyz(struct sg_req *r)
{
	const struct sg_config *cfg = sg_req_config(r);
	const struct sg_ready *ready = sg_req_host(r)->ready;
	int draining = ready && atomic_load(&((struct sg_ready *)ready)->draining);
	int64_t now = sg_mono_ms();
	json_t *bad = json_array(), *body;

	for (size_t i = 0; bad && i < cfg->nbackends; i++) {
		const char *why = backend_verdict(&cfg->backends[i], now);

		if (why && json_array_append_new(bad, json_pack("{s:s, s:s}", "name",
		                                                cfg->backends[i].name, "reason",
		                                                why)) != 0) {
			json_decref(bad);
			bad = NULL;
		}
	}
	if (!bad) {
		sg_req_reply(r, 500, NULL);
		return;
	}
	if (!draining && json_array_size(bad) == 0) {
		json_decref(bad);
		sg_req_reply(r, 200, json_pack("{s:s}", "status", "ready"));
		return;
	}
	body = json_pack("{s:s, s:b, s:o}", "status", "not_ready", "draining", draining, "backends",
	                 bad);
	sg_req_reply(r, 503, body);
}
