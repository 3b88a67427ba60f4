// The conformance scenarios. Each is {name, timeoutMs, run(ctx)}; run throws to fail.
// Every response a scenario receives goes through ctx.rec (a Recorder), which
// validates it against the schemas generated from the SDK's types; a validation
// problem fails the scenario that received it (run.mjs checks ctx.rec.problems).

import assert from 'node:assert/strict';
import Anthropic, * as SDK from '@anthropic-ai/sdk';
import { check } from './validate.mjs';
import { rfc3339Micros, sleep } from './harness.mjs';
import { decodePubId, encodePubId } from './pubid.mjs';

// ---------------------------------------------------------------- helpers

function fail(msg) {
  throw new Error(msg);
}

const clone = (o) => JSON.parse(JSON.stringify(o));

// JSON with sorted keys, for order-insensitive deep comparison.
function canon(v) {
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canon(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

const micros = (s) => rfc3339Micros(s.created_at);

// Compare two id sequences; explain the first difference.
function sameSequence(got, want, what) {
  if (got.length !== want.length) {
    const gs = new Set(got);
    const ws = new Set(want);
    const missing = want.filter((x) => !gs.has(x)).length;
    const extra = got.filter((x) => !ws.has(x)).length;
    fail(`${what}: got ${got.length} items, want ${want.length} (${missing} missing, ${extra} unexpected)`);
  }
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== want[i]) fail(`${what}: order differs at position ${i}: got ${got[i]}, want ${want[i]}`);
  }
}

function sameSet(got, want, what) {
  const gs = new Set(got);
  if (gs.size !== got.length) fail(`${what}: ${got.length - gs.size} items returned more than once`);
  const ws = new Set(want);
  const missing = want.filter((x) => !gs.has(x));
  const extra = got.filter((x) => !ws.has(x));
  if (missing.length || extra.length) {
    fail(`${what}: ${missing.length} missing (e.g. ${missing[0]}), ${extra.length} unexpected (e.g. ${extra[0]}); got ${got.length}, want ${want.length}`);
  }
}

// created_at monotonic in the given direction, and ties broken the same way
// (by id, in one direction) throughout the listing.
function checkOrder(items, dir, what) {
  let tieSign = 0;
  for (let i = 1; i < items.length; i++) {
    const a = micros(items[i - 1]);
    const b = micros(items[i]);
    if (Number.isNaN(a) || Number.isNaN(b)) fail(`${what}: unreadable created_at at ${i}`);
    if (dir === 'desc' ? b > a : b < a) {
      fail(`${what}: not ${dir === 'desc' ? 'newest' : 'oldest'} first at position ${i}: ${items[i - 1].created_at} then ${items[i].created_at}`);
    }
    if (a === b) {
      const s = items[i - 1].id < items[i].id ? 1 : -1;
      if (tieSign === 0) tieSign = s;
      else if (s !== tieSign) fail(`${what}: sessions with equal created_at are not ordered consistently (at position ${i})`);
    }
  }
}

function expectAPIError(err, Klass, status, type, what) {
  if (!(err instanceof SDK.APIError)) fail(`${what}: expected ${Klass.name}, got ${err?.constructor?.name}: ${err?.message}`);
  if (!(err instanceof Klass)) fail(`${what}: expected ${Klass.name}, got ${err.constructor.name} (status ${err.status}): ${err.message}`);
  if (err.status !== status) fail(`${what}: status ${err.status}, want ${status}`);
  if (type !== undefined && err.type !== type) fail(`${what}: error.type ${JSON.stringify(err.type)}, want ${JSON.stringify(type)}`);
  if (!err.requestID) fail(`${what}: err.requestID is empty (no request-id header)`);
  if (err.error?.request_id !== err.requestID) {
    fail(`${what}: body request_id ${JSON.stringify(err.error?.request_id)} differs from err.requestID ${JSON.stringify(err.requestID)}`);
  }
  if (typeof err.apiMessage !== 'string' || err.apiMessage.length === 0) fail(`${what}: error.message is empty`);
  // the decision table in docs/compatibility.md: client errors are never worth a retry
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
    const h = err.headers?.get('x-should-retry');
    if (h !== 'false') fail(`${what}: x-should-retry ${JSON.stringify(h)}, want "false" on a ${status}`);
  }
}

async function expectReject(promise, Klass, status, type, what) {
  let err = null;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  if (!err) fail(`${what}: succeeded, expected ${Klass.name} (${status})`);
  expectAPIError(err, Klass, status, type, what);
  return err;
}

async function listAll(client, params) {
  const items = [];
  for await (const s of client.beta.sessions.list(params)) items.push(s);
  return items;
}

// The /v1/sessions pages a recorder saw since index `from`.
const listPages = (rec, from) => rec.records.slice(from).filter((r) => r.path === '/v1/sessions');

// AgentScope naive local timestamp → µs since the epoch, in a zone `offsetMin` east of UTC.
function naiveMicros(s, offsetMin) {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?$/.exec(String(s));
  if (!m) return NaN;
  const ms = Date.parse(`${m[1]}Z`);
  const frac = m[2] ? Number((m[2].slice(1) + '000000').slice(0, 6)) : 0;
  return (ms - offsetMin * 60000) * 1000 + frac;
}

// µs → RFC 3339 in a fixed offset, six fractional digits.
function formatWithOffset(us, offsetMin) {
  const local = new Date(Math.floor(us / 1000) + offsetMin * 60000).toISOString().slice(0, 19);
  const frac = String(((us % 1000000) + 1000000) % 1000000).padStart(6, '0');
  const sign = offsetMin >= 0 ? '+' : '-';
  const a = Math.abs(offsetMin);
  return `${local}.${frac}${sign}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

// A created_at value inside the listing near fraction f, preferring one shared by
// several sessions so inclusive/exclusive bounds are exercised on ties.
function boundaryNear(ref, f) {
  const n = ref.length;
  const start = Math.min(n - 1, Math.floor(n * f));
  for (let i = start; i < Math.min(n - 1, start + Math.ceil(n / 8)); i++) {
    if (ref[i].created_at === ref[i + 1].created_at) return ref[i].created_at;
  }
  return ref[start].created_at;
}

// The status the gateway should report for an AgentScope SessionView.
function expectedStatus(view) {
  const st = view.status ?? (view.is_running ? 'running' : 'idle');
  return st === 'running' ? 'running' : 'idle';
}

// ---------------------------------------------------------------- sample objects

// A Session that satisfies BetaManagedAgentsSession, written from the SDK's type.
// The usage the gateway must show for an AgentScope session: the fake's own /messages of it,
// every page (newer builds: the latest page and has_more, back with before=; v2.0.1: offset),
// summed as docs/fidelity-agentscope.md says.
export async function fakeLogUsage(env, pubId) {
  const d = decodePubId('sesn_', pubId);
  if (!d) fail(`${pubId} does not decode`);
  let msgs = [];
  let before = null;
  let offset = 0;
  for (let i = 0; i < 1000; i++) {
    const q = `agent_id=${encodeURIComponent(d.scope)}&limit=200${before ? `&before=${encodeURIComponent(before)}` : offset ? `&offset=${offset}` : ''}`;
    const body = await env.fake.get(`/sessions/${encodeURIComponent(d.native)}/messages?${q}`, 'alice');
    const page = body.messages;
    if (!Array.isArray(page)) fail(`fake: no messages for ${d.native}`);
    if ('has_more' in body) {
      msgs = page.concat(msgs);
      if (!body.has_more || page.length === 0) break;
      before = page[0].id;
    } else {
      msgs = msgs.concat(page);
      if (page.length < 200) break;
      offset += 200;
    }
  }
  const count = (v) => (typeof v === 'number' && v > 0 ? Math.trunc(v) : 0);
  const sum = (k) => msgs.reduce((a, m) => a + count(m?.usage?.[k]), 0);
  return {
    n: msgs.length,
    usage: {
      cache_creation: { ephemeral_5m_input_tokens: sum('cache_creation_input_tokens'), ephemeral_1h_input_tokens: 0 },
      input_tokens: sum('input_tokens'),
      output_tokens: sum('output_tokens'),
      cache_read_input_tokens: sum('cache_input_tokens'),
    },
  };
}

export function sampleSession() {
  return {
    id: 'sesn_011CZkZAtmR3yMPDzynEDxu7',
    type: 'session',
    status: 'idle',
    title: 'Order lookup',
    agent: {
      type: 'agent',
      id: 'agent_011CZkYpogX7uDKUyvBTophP',
      name: 'Support',
      description: null,
      system: null,
      model: { id: 'claude-sonnet-4-6', speed: 'standard' },
      tools: [],
      mcp_servers: [],
      skills: [],
      multiagent: null,
      execution_identity: { type: 'service_account' },
      version: 1,
    },
    archived_at: null,
    budget: null,
    created_at: '2026-06-05T06:03:11.123456Z',
    updated_at: '2026-06-05T06:04:02Z',
    environment_id: 'env_011CZkZ9X2dpNyB7HsEFoRfW',
    metadata: { 'agentscope.source': 'user' },
    outcome_evaluations: [],
    resources: [],
    stats: { active_seconds: 12.5, duration_seconds: 51 },
    usage: {
      input_tokens: 1200,
      output_tokens: 340,
      cache_read_input_tokens: 0,
      cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
    },
    vault_ids: [],
    deployment_id: null,
  };
}

// An Agent that satisfies BetaManagedAgentsAgent (GET /v1/agents/{id}), written from the SDK's type.
export function sampleAgent() {
  return {
    id: 'agent_011CZkYpogX7uDKUyvBTophP',
    type: 'agent',
    name: 'Support',
    description: null,
    system: 'You answer order questions.',
    model: { id: 'claude-sonnet-4-6', speed: 'standard' },
    tools: [],
    mcp_servers: [],
    skills: [],
    multiagent: null,
    execution_identity: { type: 'service_account' },
    metadata: {},
    version: 3,
    archived_at: null,
    created_at: '2026-06-01T09:00:00Z',
    updated_at: '2026-06-04T10:30:00.5Z',
  };
}

const BROKEN_AGENTS = [
  ['version missing', (a) => delete a.version],
  ['type "session_agent"', (a) => (a.type = 'session_agent')],
  ['extra key user_id (AgentScope AgentView style)', (a) => (a.user_id = 'alice')],
  ['extra key data (AgentScope AgentView style)', (a) => (a.data = { system_prompt: 'x' })],
  ['model a bare string (SandBase style)', (a) => (a.model = 'claude-sonnet-4-6')],
  ['metadata missing', (a) => delete a.metadata],
  ['archived_at missing (required, nullable)', (a) => delete a.archived_at],
  ['version a string', (a) => (a.version = '3')],
];

// The answer of POST /v1/sessions/{id}/events (BetaManagedAgentsSendSessionEvents): the
// accepted events, each one of the user/system event types.
export function sampleSendEvents() {
  return {
    data: [
      { type: 'user.message', id: 'sevt_1', content: [{ type: 'text', text: 'hi' }], processed_at: null },
      { type: 'user.tool_confirmation', id: 'sevt_2', result: 'allow', tool_use_id: 'sevt_0', processed_at: '2026-06-05T06:03:12Z' },
      { type: 'user.interrupt', id: 'sevt_3' },
    ],
  };
}

const BROKEN_SEND_EVENTS = [
  ['an agent event (not a user event)', (b) => (b.data[0] = { type: 'agent.message', id: 'sevt_9', processed_at: 'x', content: [] })],
  ['user.message without id', (b) => delete b.data[0].id],
  ['SandBase flat envelope keys', (b) => Object.assign(b.data[0], { tokens_in: 0, tokens_out: 0, model_used: null })],
  ['tool_confirmation result "approve"', (b) => (b.data[1].result = 'approve')],
  ['extra key has_more', (b) => (b.has_more = false)],
  ['data not an array', (b) => (b.data = { 0: b.data[0] })],
];

const BROKEN_SESSIONS = [
  ['usage missing', (s) => delete s.usage],
  ['status "paused"', (s) => (s.status = 'paused')],
  ['usage null (SandBase style)', (s) => (s.usage = null)],
  ['extra key agent_id (SandBase style)', (s) => (s.agent_id = 'agent_x')],
  ['agent.model.id null', (s) => (s.agent.model.id = null)],
  ['agent.execution_identity missing', (s) => delete s.agent.execution_identity],
  ['metadata value not a string', (s) => (s.metadata = { n: 1 })],
  ['title missing (required, nullable)', (s) => delete s.title],
  ['type "sessions"', (s) => (s.type = 'sessions')],
  ['stats.duration_seconds a string', (s) => (s.stats.duration_seconds = '51')],
];

function assertBites(validators, kind, good, mutations, what) {
  const ok = check(validators, kind, good);
  if (ok) fail(`${what}: the valid sample is rejected: ${ok}`);
  for (const [label, mutate] of mutations) {
    const bad = clone(good);
    mutate(bad);
    if (check(validators, kind, bad) === null) fail(`${what}: a broken ${kind} (${label}) was ACCEPTED`);
  }
}

// ---------------------------------------------------------------- offline scenarios

export function offlineScenarios() {
  return [
    {
      name: 'validation bites: broken Session/page/event/error/Agent/send-events/deleted rejected',
      timeoutMs: 20000,
      async run(ctx) {
        const v = ctx.validators;
        const good = sampleSession();
        assertBites(v, 'session', good, BROKEN_SESSIONS, 'session');
        const page = { data: [good], next_page: 'page_abc', prev_page: null };
        assertBites(
          v,
          'sessionList',
          page,
          [
            ['prev_page missing', (p) => delete p.prev_page],
            ['next_page missing (SandBase style)', (p) => delete p.next_page],
            ['item status "paused"', (p) => (p.data[0].status = 'paused')],
            ['item usage missing', (p) => delete p.data[0].usage],
            ['extra key has_more', (p) => (p.has_more = false)],
          ],
          'session list page',
        );
        const ev = {
          type: 'agent.message',
          id: 'sevt_1',
          processed_at: '2026-06-05T06:03:12Z',
          content: [{ type: 'text', text: 'hi' }],
        };
        assertBites(
          v,
          'eventList',
          { data: [ev], next_page: null },
          [
            ['event with SandBase created_at/model_used', (p) => Object.assign(p.data[0], { created_at: 'x', model_used: 'm' })],
            ['unknown event type', (p) => (p.data[0].type = 'agent.reply')],
            [
              'status_idle without stop_reason',
              (p) => (p.data[0] = { type: 'session.status_idle', id: 'sevt_2', processed_at: 'x', stop_details: null }),
            ],
          ],
          'event list page',
        );
        const agent = sampleAgent();
        assertBites(v, 'agent', agent, BROKEN_AGENTS, 'agent');
        assertBites(
          v,
          'agentList',
          { data: [agent], next_page: null },
          [
            ['next_page missing', (p) => delete p.next_page],
            ['extra key prev_page (agents.list is a PageCursor)', (p) => (p.prev_page = null)],
            ['AgentScope {agents, total}', (p) => Object.assign(p, { agents: p.data, total: 1 })],
            ['item version missing', (p) => delete p.data[0].version],
          ],
          'agent list page',
        );
        assertBites(v, 'sendEvents', sampleSendEvents(), BROKEN_SEND_EVENTS, 'send-events answer');
        assertBites(
          v,
          'deletedSession',
          { id: 'sesn_x', type: 'session_deleted' },
          [
            ['type "session"', (d) => (d.type = 'session')],
            ['id missing', (d) => delete d.id],
            ['extra key deleted: true', (d) => (d.deleted = true)],
          ],
          'deleted session',
        );
        const errBody = { type: 'error', error: { type: 'not_found_error', message: 'no such session' }, request_id: 'req_1' };
        assertBites(
          v,
          'error',
          errBody,
          [
            ['SandBase type "not_found"', (e) => (e.error.type = 'not_found')],
            ['request_id missing', (e) => delete e.request_id],
            ['FastAPI {detail}', (e) => (e.error = { detail: 'Not Found' })],
            ['type "request_too_large" (not an error type of the SDK)', (e) => (e.error.type = 'request_too_large')],
          ],
          'error envelope',
        );
        // a 409 carries the SDK's own conflict object (ErrorType 'conflict_error')
        assertBites(
          v,
          'error',
          { type: 'error', error: { type: 'conflict_error', message: 'busy' }, request_id: 'req_2' },
          [
            ['extra key in the conflict object', (e) => (e.error.code = 'session_archived')],
            ['request_id missing', (e) => delete e.request_id],
          ],
          'conflict error envelope',
        );
        // And through the capture path: a recorded response carrying a broken
        // Session becomes a scenario problem.
        const { Recorder } = await import('./harness.mjs');
        const r = new Recorder(v);
        const bad = sampleSession();
        delete bad.usage;
        r.inspect({
          method: 'GET',
          path: '/v1/sessions/sesn_x',
          search: '',
          status: 200,
          resHeaders: { 'content-type': 'application/json', 'request-id': 'req_1' },
          text: JSON.stringify(bad),
        });
        if (!r.problems.some((p) => /usage/.test(p))) fail(`the recorder did not flag a Session without usage: ${JSON.stringify(r.problems)}`);
        // every write endpoint and the agents endpoints have a schema in the recorder, and a
        // broken answer on each is flagged
        const hdrs = { 'content-type': 'application/json', 'request-id': 'req_1' };
        const brokenAgent = sampleAgent();
        brokenAgent.user_id = 'alice';
        const brokenSend = sampleSendEvents();
        brokenSend.data[0].tokens_in = 0;
        for (const [method, path, body, kind, flag] of [
          ['POST', '/v1/sessions', bad, 'session', /usage/],
          ['POST', '/v1/sessions/sesn_x', bad, 'session', /usage/],
          ['POST', '/v1/sessions/sesn_x/archive', bad, 'session', /usage/],
          ['DELETE', '/v1/sessions/sesn_x', { id: 'sesn_x', type: 'session' }, 'deletedSession', /type/],
          ['POST', '/v1/sessions/sesn_x/events', brokenSend, 'sendEvents', /tokens_in/],
          ['GET', '/v1/agents', { data: [brokenAgent], next_page: null }, 'agentList', /user_id/],
          ['GET', '/v1/agents/agent_x', brokenAgent, 'agent', /user_id/],
        ]) {
          const w = new Recorder(v);
          const one = { method, path, search: '', status: 200, resHeaders: hdrs, text: JSON.stringify(body) };
          w.inspect(one);
          if (one.kind !== kind) fail(`the recorder validates ${method} ${path} as ${one.kind}, want ${kind}`);
          if (!w.problems.some((p) => flag.test(p))) fail(`the recorder did not flag a broken ${kind} answer to ${method} ${path}: ${JSON.stringify(w.problems)}`);
        }
      },
    },
  ];
}

// ---------------------------------------------------------------- live scenarios

// env: {gw, fake, junk, keys, generated: {alice, bob}, tzOffsetMin, backendName, deadName, junkName}
// opts.full: the whole set (head run); otherwise the cheap subset (v2.0.1 run).
export function liveScenarios(prefix, env, opts = {}) {
  const S = [];
  const add = (name, run, timeoutMs = 60000) => S.push({ name: `${prefix}/${name}`, run, timeoutMs });
  const full = !!opts.full;

  add('ground-truth: listing = backend data (count, ids, UTC created_at, title, status)', async (ctx) => {
    const agents = (await env.fake.get('/agent/', 'alice')).agents;
    if (!Array.isArray(agents) || agents.length === 0) fail('the fake lists no agents for alice');
    const native = new Map(); // "agent\0session" → SessionView
    for (const a of agents) {
      const body = await env.fake.get(`/sessions/?agent_id=${encodeURIComponent(a.id)}`, 'alice');
      for (const view of body.sessions) native.set(`${a.id}\0${view.session.id}`, view);
    }
    if (native.size !== env.generated.alice) fail(`the fake holds ${native.size} sessions for alice, generated ${env.generated.alice}`);
    const ref = await ctx.reference();
    if (ref.length !== env.generated.alice) fail(`the gateway lists ${ref.length} sessions, the fake generated ${env.generated.alice}`);
    const seen = new Set();
    for (const s of ref) {
      const d = decodePubId('sesn_', s.id);
      if (!d) fail(`public id ${s.id} does not decode with the layout of src/idcodec.h`);
      if (encodePubId('sesn_', d.backend, d.scope, d.native) !== s.id) fail(`public id ${s.id} does not re-encode identically`);
      if (d.backend !== env.backendName) fail(`${s.id} names backend ${d.backend}, want ${env.backendName}`);
      const key = `${d.scope}\0${d.native}`;
      const view = native.get(key);
      if (!view) fail(`${s.id} decodes to agent ${d.scope} session ${d.native}, which the fake does not hold`);
      if (seen.has(key)) fail(`backend session ${d.native} listed twice`);
      seen.add(key);
      const want = naiveMicros(view.session.created_at, env.tzOffsetMin);
      if (micros(s) !== want) fail(`${s.id}: created_at ${s.created_at}, backend ${view.session.created_at} (+${env.tzOffsetMin} min) means ${new Date(want / 1000).toISOString()}`);
      const title = view.session.config?.name ?? null;
      if (s.title !== title) fail(`${s.id}: title ${JSON.stringify(s.title)}, backend name ${JSON.stringify(title)}`);
      if (s.status !== expectedStatus(view)) fail(`${s.id}: status ${s.status}, backend says ${view.status ?? `is_running=${view.is_running}`}`);
    }
    if (!ref.some((s) => s.status === 'running') || !ref.some((s) => s.status === 'idle')) {
      fail('the generated data has no mix of running and idle sessions: status filters would prove nothing');
    }
    const ties = ref.filter((s, i) => i > 0 && ref[i - 1].created_at === s.created_at).length;
    if (ties === 0) fail('the generated data has no tied created_at: tie ordering would prove nothing');
    const running = ref.filter((s) => s.status === 'running').length;
    ctx.note(`${ref.length} sessions over ${agents.length} agents, ${ties} sharing the previous one's created_at, ${running} running`);
  });

  const limits = full ? [1, 7, 20, 100] : [7, 100];
  for (const limit of limits) {
    add(`paginate limit=${limit}: for await yields every session once, newest first`, async (ctx) => {
      const ref = await ctx.reference();
      const client = ctx.client(env.keys.alice);
      const from = ctx.rec.records.length;
      const items = await listAll(client, { limit });
      const pages = listPages(ctx.rec, from);
      checkOrder(items, 'desc', `limit ${limit}`);
      sameSequence(items.map((s) => s.id), ref.map((s) => s.id), `limit ${limit} vs the reference listing`);
      if (items.length !== env.generated.alice) fail(`limit ${limit}: ${items.length} sessions, generated ${env.generated.alice}`);
      const wantPages = Math.max(1, Math.ceil(items.length / limit));
      pages.forEach((p, i) => {
        if (p.status !== 200) fail(`page ${i + 1}: status ${p.status}`);
        const n = p.body?.data?.length ?? -1;
        if (n > limit) fail(`page ${i + 1} holds ${n} sessions, limit ${limit}`);
        if (i < pages.length - 1 && n !== limit) fail(`page ${i + 1} of ${pages.length} holds ${n} sessions, not a full page of ${limit}`);
        if (i > 0 && p.query.get('page') !== pages[i - 1].body.next_page) fail(`page ${i + 1} was not requested with the previous next_page`);
      });
      const last = pages[pages.length - 1];
      if (last.body?.next_page !== null) fail('the last page has a non-null next_page');
      if (pages.length !== wantPages) {
        fail(`${pages.length} requests for ${items.length} sessions at limit ${limit}, want ${wantPages} (a next_page that yields nothing new?)`);
      }
      ctx.note(`${pages.length} pages`);
    }, limit === 1 ? 120000 : 60000);
  }

  if (full) {
    add('prev_page walks back over the same pages', async (ctx) => {
      const client = ctx.client(env.keys.alice);
      const params = { limit: 40, statuses: ['idle', 'running'] };
      const forward = [];
      let page = await client.beta.sessions.list(params);
      forward.push(page);
      if (page.prev_page !== null) fail(`the first page has prev_page ${JSON.stringify(page.prev_page)}`);
      while (page.hasNextPage()) {
        page = await page.getNextPage();
        forward.push(page);
      }
      if (forward.length < 3) fail(`fixture: only ${forward.length} pages`);
      for (let i = forward.length - 1; i > 0; i--) {
        const cur = forward[i];
        if (!cur.prev_page) fail(`page ${i + 1} has no prev_page`);
        const back = await client.beta.sessions.list({ ...params, page: cur.prev_page });
        sameSequence(back.data.map((s) => s.id), forward[i - 1].data.map((s) => s.id), `prev_page of page ${i + 1}`);
      }
    });

    // A page on an allowed origin runs the SDK in browser mode: each request the SDK makes
    // (its method and every header a browser would list in the preflight) must pass the
    // gateway's preflight, and the answer must be readable by the page (allow-origin, the
    // headers the SDK reads exposed).
    add('cors: every request the SDK makes in browser mode passes the preflight', async (ctx) => {
      const origin = 'https://app.conformance.test';
      const client = ctx.client(env.keys.alice, { dangerouslyAllowBrowser: true });
      const from = ctx.rec.records.length;
      const page = await client.beta.sessions.list({ limit: 2 });
      await client.beta.sessions.retrieve(page.data[0].id);
      await client.beta.sessions.events.list(page.data[0].id, { limit: 2 });
      await client.beta.agents.list();
      await expectReject(client.beta.sessions.create({ agent: 'x' }), SDK.BadRequestError, 400, 'invalid_request_error', 'create without environment_id');
      const sdk = ctx.rec.records.slice(from).filter((r) => r.via === 'sdk');
      if (sdk.length < 5) fail(`only ${sdk.length} SDK requests recorded`);
      if (!sdk.every((r) => r.reqHeaders['anthropic-dangerous-direct-browser-access'] === 'true')) fail('the SDK did not run in browser mode');
      // what a browser never lists in Access-Control-Request-Headers (forbidden or set by the
      // browser itself)
      const browserOwn = /^(accept-charset|accept-encoding|connection|content-length|cookie|date|dnt|expect|host|keep-alive|origin|referer|te|trailer|transfer-encoding|upgrade|user-agent|via|proxy-.*|sec-.*|accept)$/;
      let checked = 0;
      const seen = new Set();
      for (const r of sdk) {
        const names = Object.keys(r.reqHeaders).map((h) => h.toLowerCase()).filter((h) => !browserOwn.test(h));
        if (r.method === 'POST' && !names.includes('idempotency-key')) names.push('idempotency-key'); /* pages send one for safe retries */
        names.forEach((h) => seen.add(h));
        const pre = await globalThis.fetch(`${env.gw.url}${r.path}`, {
          method: 'OPTIONS',
          headers: { origin, 'access-control-request-method': r.method, 'access-control-request-headers': names.join(', ') },
        });
        await pre.text();
        const where = `preflight of ${r.method} ${r.path} (${names.join(', ')})`;
        if (pre.status !== 204) fail(`${where}: status ${pre.status}`);
        if (pre.headers.get('access-control-allow-origin') !== origin) fail(`${where}: allow-origin ${pre.headers.get('access-control-allow-origin')}`);
        const methods = (pre.headers.get('access-control-allow-methods') || '').split(',').map((x) => x.trim());
        if (!methods.includes(r.method)) fail(`${where}: allow-methods ${methods}`);
        const allowed = new Set((pre.headers.get('access-control-allow-headers') || '').split(',').map((x) => x.trim().toLowerCase()));
        const missing = names.filter((h) => !allowed.has(h) && !allowed.has('*'));
        if (missing.length) fail(`${where}: not allowed: ${missing.join(', ')}`);
        checked++;
      }
      // the answers themselves, as the page reads them
      const ans = await globalThis.fetch(`${env.gw.url}/v1/sessions?limit=1`, { headers: { origin, 'x-api-key': env.keys.alice } });
      await ans.text();
      if (ans.headers.get('access-control-allow-origin') !== origin) fail(`a list answer has allow-origin ${ans.headers.get('access-control-allow-origin')}`);
      const exposed = (ans.headers.get('access-control-expose-headers') || '').toLowerCase();
      for (const h of ['request-id', 'x-should-retry', 'retry-after']) if (!exposed.includes(h)) fail(`${h} is not exposed to the page (${exposed})`);
      const other = await globalThis.fetch(`${env.gw.url}/v1/sessions`, { method: 'OPTIONS', headers: { origin: 'https://elsewhere.test', 'access-control-request-method': 'GET' } });
      await other.text();
      if (other.headers.get('access-control-allow-origin')) fail('an origin not in cors.origins was allowed');
      if (![...seen].some((h) => h.startsWith('x-stainless-'))) fail(`no x-stainless-* header among ${[...seen]}`);
      ctx.note(`${checked} SDK requests preflighted; headers ${[...seen].sort().join(', ')}`);
    });

    add('default limit is 20', async (ctx) => {
      const r = await ctx.rec.raw(env.gw.url, '/v1/sessions', { headers: { 'x-api-key': env.keys.alice } });
      if (r.status !== 200) fail(`status ${r.status}`);
      if (r.body.data.length !== Math.min(20, env.generated.alice)) fail(`first page holds ${r.body.data.length} sessions`);
    });
  }

  const statusSets = full ? [['running'], ['idle', 'running'], ['idle'], ['terminated']] : [['running']];
  for (const statuses of statusSets) {
    add(`filter statuses=${JSON.stringify(statuses)}`, async (ctx) => {
      const ref = await ctx.reference();
      const want = ref.filter((s) => statuses.includes(s.status)).map((s) => s.id);
      const got = (await listAll(ctx.client(env.keys.alice), { statuses, limit: 7 })).map((s) => s.id);
      sameSequence(got, want, `statuses ${statuses}`);
    });
  }

  add('filter created_at[gte]+[lt] strings', async (ctx) => {
    const ref = await ctx.reference();
    const hi = boundaryNear(ref, 0.25);
    const lo = boundaryNear(ref, 0.7);
    const [h, l] = [rfc3339Micros(hi), rfc3339Micros(lo)];
    const want = ref.filter((s) => micros(s) >= l && micros(s) < h).map((s) => s.id);
    if (want.length === 0) fail('fixture: empty window');
    const got = (await listAll(ctx.client(env.keys.alice), { 'created_at[gte]': lo, 'created_at[lt]': hi, limit: 7 })).map((s) => s.id);
    sameSequence(got, want, `created_at[gte]=${lo}&created_at[lt]=${hi}`);
  });

  if (full) {
    add('filter created_at[gt]+[lte] strings, ties at both bounds', async (ctx) => {
      const ref = await ctx.reference();
      const hi = boundaryNear(ref, 0.3);
      const lo = boundaryNear(ref, 0.6);
      const [h, l] = [rfc3339Micros(hi), rfc3339Micros(lo)];
      const want = ref.filter((s) => micros(s) > l && micros(s) <= h).map((s) => s.id);
      const got = (await listAll(ctx.client(env.keys.alice), { 'created_at[gt]': lo, 'created_at[lte]': hi, limit: 20 })).map((s) => s.id);
      sameSequence(got, want, `created_at[gt]=${lo}&created_at[lte]=${hi}`);
    });

    add('filter created_at as Date objects', async (ctx) => {
      const ref = await ctx.reference();
      const hiD = new Date(Math.floor(rfc3339Micros(boundaryNear(ref, 0.2)) / 1000));
      const loD = new Date(Math.floor(rfc3339Micros(boundaryNear(ref, 0.8)) / 1000));
      const [h, l] = [hiD.getTime() * 1000, loD.getTime() * 1000];
      const want = ref.filter((s) => micros(s) >= l && micros(s) < h).map((s) => s.id);
      const from = ctx.rec.records.length;
      const got = (await listAll(ctx.client(env.keys.alice), { 'created_at[gte]': loD, 'created_at[lt]': hiD, limit: 20 })).map((s) => s.id);
      const sent = ctx.rec.records[from]?.query.get('created_at[gte]');
      if (sent !== loD.toISOString()) fail(`the SDK sent created_at[gte]=${sent}, expected ${loD.toISOString()}`);
      sameSequence(got, want, `created_at Date bounds ${loD.toISOString()}..${hiD.toISOString()}`);
    });

    add('filter created_at with +08:00 offset', async (ctx) => {
      const ref = await ctx.reference();
      const lo = boundaryNear(ref, 0.5);
      const l = rfc3339Micros(lo);
      const off = formatWithOffset(l, 480);
      if (rfc3339Micros(off) !== l) fail(`test bug: ${off} != ${lo}`);
      const want = ref.filter((s) => micros(s) >= l).map((s) => s.id);
      const got = (await listAll(ctx.client(env.keys.alice), { 'created_at[gte]': off, limit: 50 })).map((s) => s.id);
      sameSequence(got, want, `created_at[gte]=${off}`);
    });

    add('order asc', async (ctx) => {
      const ref = await ctx.reference();
      const items = await listAll(ctx.client(env.keys.alice), { order: 'asc', limit: 20 });
      checkOrder(items, 'asc', 'order asc');
      sameSet(items.map((s) => s.id), ref.map((s) => s.id), 'order asc');
    });
  }

  add('filter agent_id', async (ctx) => {
    const ref = await ctx.reference();
    const counts = new Map();
    for (const s of ref) counts.set(s.agent.id, (counts.get(s.agent.id) ?? 0) + 1);
    if (counts.size < 2) fail(`fixture: sessions of only ${counts.size} agent(s)`);
    const agentIds = [...counts.keys()].sort((a, b) => counts.get(a) - counts.get(b));
    for (const agent_id of [agentIds[0], agentIds[agentIds.length - 1]]) {
      const want = ref.filter((s) => s.agent.id === agent_id).map((s) => s.id);
      const got = (await listAll(ctx.client(env.keys.alice), { agent_id, limit: 7 })).map((s) => s.id);
      sameSequence(got, want, `agent_id=${agent_id}`);
    }
  });

  if (full) {
    add('filter agent_version, deployment_id, memory_store_id, include_archived', async (ctx) => {
      const ref = await ctx.reference();
      const client = ctx.client(env.keys.alice);
      const agent_id = ref[0].agent.id;
      const version = ref[0].agent.version;
      const cases = [
        [{ agent_id, agent_version: version }, (s) => s.agent.id === agent_id && s.agent.version === version],
        [{ agent_id, agent_version: version + 1 }, (s) => s.agent.id === agent_id && s.agent.version === version + 1],
        [{ deployment_id: 'dep_conformance_none' }, (s) => s.deployment_id === 'dep_conformance_none'],
        [
          { memory_store_id: 'memstore_conformance_none' },
          (s) => s.resources.some((r) => r.type === 'memory_store' && r.memory_store_id === 'memstore_conformance_none'),
        ],
        [{ include_archived: true }, () => true],
        [{ include_archived: false }, (s) => s.archived_at === null],
      ];
      for (const [params, pred] of cases) {
        const want = ref.filter(pred).map((s) => s.id);
        const got = (await listAll(client, { ...params, limit: 100 })).map((s) => s.id);
        sameSequence(got, want, JSON.stringify(params));
      }
    });

    add('filter combined: agent_id+statuses+created_at[gte]+order asc, limit 3', async (ctx) => {
      const ref = await ctx.reference();
      const agent_id = ref[0].agent.id;
      const lo = boundaryNear(ref, 0.75);
      const l = rfc3339Micros(lo);
      const want = ref.filter((s) => s.agent.id === agent_id && s.status === 'idle' && micros(s) >= l);
      const got = await listAll(ctx.client(env.keys.alice), {
        agent_id,
        statuses: ['idle'],
        'created_at[gte]': lo,
        order: 'asc',
        limit: 3,
      });
      checkOrder(got, 'asc', 'combined');
      sameSet(got.map((s) => s.id), want.map((s) => s.id), 'combined filters');
    });
  }

  // AgentScope's usage is the sum over the session's whole message log, read by a retrieve (the
  // listing carries it once a read of the same log left it in the usage memo). The rest of a
  // retrieved session equals the listed item.
  const withoutUsage = (s) => {
    const c = clone(s);
    delete c.usage;
    if (c.metadata) delete c.metadata['agentscope.usage'];
    // duration (and, while running, active time) are computed from "now"
    if (c.status === 'running' && c.stats) {
      delete c.stats.duration_seconds;
      delete c.stats.active_seconds;
    }
    return canon(c);
  };
  add('retrieve equals the listed item; its usage sums the whole message log', async (ctx) => {
    const ref = await ctx.reference();
    const client = ctx.client(env.keys.alice);
    const running = ref.filter((s) => s.status === 'running').slice(0, 8);
    const sample = [...ref.slice(0, 6), ...ref.slice(-6), ...running, ref[Math.floor(ref.length / 2)]];
    let longest = 0;
    for (const listed of sample) {
      const got = await client.beta.sessions.retrieve(listed.id);
      if (withoutUsage(got) !== withoutUsage(listed)) {
        const keys = Object.keys(listed).filter((k) => k !== 'usage' && canon(got[k]) !== canon(listed[k]));
        fail(`retrieve(${listed.id}) differs from the listed item in: ${keys.join(', ') || 'stats or metadata'}`);
      }
      const truth = await fakeLogUsage(env, listed.id);
      if (got.metadata['agentscope.usage'] !== 'messages') fail(`retrieve(${listed.id}): metadata agentscope.usage is ${got.metadata['agentscope.usage']}, want messages`);
      if (canon(got.usage) !== canon(truth.usage)) fail(`retrieve(${listed.id}): usage ${canon(got.usage)}, the log of ${truth.n} messages sums to ${canon(truth.usage)}`);
      longest = Math.max(longest, truth.n);
    }
    if (longest <= 200) fail(`fixture: the longest sampled log has ${longest} messages, not more than one page`);
    ctx.note(`${sample.length} sessions, logs of up to ${longest} messages`);
  });

  add('usage: a retrieve reads the log once; the list then carries that usage, never a running one', async (ctx) => {
    const ref = await ctx.reference();
    const client = ctx.client(env.keys.alice);
    const idle = ref.filter((s) => s.status !== 'running');
    const long = ref.find((s) => s.title === 'Session 0001');
    const runningOne = ref.find((s) => s.status === 'running');
    if (!long || !runningOne) fail('fixture: no long-log session or no running session');
    const untouched = idle.find((s) => s.id !== long.id && !ref.slice(0, 6).concat(ref.slice(-6)).includes(s));
    const truth = await fakeLogUsage(env, long.id);
    const msgReqs = async () => (await env.fake.requests()).filter((q) => /\/messages/.test(q.uri)).length;
    // a fresh read (Cache-Control: no-cache) reads the log, whatever an earlier read left
    await env.fake.clearRequests();
    const a = (await ctx.rec.raw(env.gw.url, `/v1/sessions/${long.id}`, { headers: { 'x-api-key': env.keys.alice, 'Cache-Control': 'no-cache' } })).body;
    const pages = await msgReqs();
    const wantPages = Math.ceil(truth.n / 200) + (truth.n % 200 === 0 ? 1 : 0);
    if (pages < Math.ceil(truth.n / 200) || pages > wantPages + 1) fail(`a retrieve of a ${truth.n}-message log read ${pages} pages of /messages`);
    if (canon(a.usage) !== canon(truth.usage)) fail(`usage ${canon(a.usage)}, want ${canon(truth.usage)}`);
    await env.fake.clearRequests();
    const b = await client.beta.sessions.retrieve(long.id);
    if ((await msgReqs()) !== 0) fail('a second retrieve of the same (idle, unchanged) session read the log again');
    if (canon(b.usage) !== canon(truth.usage)) fail('the remembered usage differs');
    // the list: fresh (no-cache), so the listing is translated after the retrieve
    const r = await ctx.rec.raw(env.gw.url, '/v1/sessions?limit=100', { headers: { 'x-api-key': env.keys.alice, 'Cache-Control': 'no-cache' } });
    const all = [];
    let page = r.body;
    all.push(...page.data);
    while (page.next_page) {
      const q = await ctx.rec.raw(env.gw.url, `/v1/sessions?limit=100&page=${encodeURIComponent(page.next_page)}`, { headers: { 'x-api-key': env.keys.alice, 'Cache-Control': 'no-cache' } });
      page = q.body;
      all.push(...page.data);
    }
    const listed = all.find((s) => s.id === long.id);
    if (!listed) fail('the long session is not listed');
    if (listed.metadata['agentscope.usage'] !== 'messages' || canon(listed.usage) !== canon(truth.usage)) fail(`listed: usage ${canon(listed.usage)} (${listed.metadata['agentscope.usage']}), want the log's ${canon(truth.usage)} (messages)`);
    // a running session: retrieve sums its log so far; the list does not take a memo for it
    await client.beta.sessions.retrieve(runningOne.id);
    const lr = all.find((s) => s.id === runningOne.id);
    if (lr && lr.metadata['agentscope.usage'] === 'messages') fail('a running session is listed with a remembered usage');
    if (untouched) {
      const lu = all.find((s) => s.id === untouched.id);
      if (lu && lu.metadata['agentscope.usage'] === 'messages') fail(`${untouched.id}, never read, is listed with agentscope.usage messages`);
    }
    ctx.note(`${truth.n} messages in ${pages} pages; listed usage from the memo`);
  });

  if (full) {
    add('retrieve unknown id: NotFoundError 404', async (ctx) => {
      const ref = await ctx.reference();
      const client = ctx.client(env.keys.alice);
      await expectReject(client.beta.sessions.retrieve('sesn_011CZkZAtmR3yMPDzynEDxu7'), SDK.NotFoundError, 404, 'not_found_error', "retrieve('sesn_011CZkZAtmR3yMPDzynEDxu7')");
      const d = decodePubId('sesn_', ref[0].id);
      const ghost = encodePubId('sesn_', d.backend, d.scope, 'f'.repeat(32));
      await expectReject(client.beta.sessions.retrieve(ghost), SDK.NotFoundError, 404, 'not_found_error', 'retrieve of a well-formed id the backend does not hold');
      const otherBackend = encodePubId('sesn_', 'nosuchbackend', d.scope, d.native);
      await expectReject(client.beta.sessions.retrieve(otherBackend), SDK.NotFoundError, 404, 'not_found_error', 'retrieve of an id naming a backend the key may not reach');
    });

    add("isolation: another user's session is 404", async (ctx) => {
      const ref = await ctx.reference();
      const bobs = await listAll(ctx.client(env.keys.bob), { limit: 100 });
      if (bobs.length !== env.generated.bob) fail(`bob lists ${bobs.length} sessions, generated ${env.generated.bob}`);
      const mine = new Set(ref.map((s) => s.id));
      if (bobs.some((s) => mine.has(s.id))) fail("bob's listing contains alice's sessions");
      await expectReject(ctx.client(env.keys.alice).beta.sessions.retrieve(bobs[0].id), SDK.NotFoundError, 404, 'not_found_error', "alice retrieving bob's session");
    });

    add('auth: wrong or missing key: AuthenticationError 401', async (ctx) => {
      const ref = await ctx.reference();
      const bad = ctx.client('sk-ant-not-a-configured-key');
      await expectReject(bad.beta.sessions.list({ limit: 5 }), SDK.AuthenticationError, 401, 'authentication_error', 'list with a wrong key');
      await expectReject(bad.beta.sessions.retrieve(ref[0].id), SDK.AuthenticationError, 401, 'authentication_error', 'retrieve with a wrong key');
      const r = await ctx.rec.raw(env.gw.url, '/v1/sessions?limit=5');
      if (r.status !== 401) fail(`no key: status ${r.status}, want 401`);
      if (r.body?.error?.type !== 'authentication_error') fail(`no key: error.type ${r.body?.error?.type}`);
      const ok = await ctx.rec.raw(env.gw.url, '/v1/sessions?limit=5', { headers: { 'x-api-key': env.keys.alice } });
      if (ok.status !== 200) fail(`x-api-key: status ${ok.status}, want 200`);
    });

    add('bad params and foreign/tampered cursors: BadRequestError 400', async (ctx) => {
      const client = ctx.client(env.keys.alice);
      const bad = [
        [{ limit: 0 }, 'limit 0'],
        [{ limit: 101 }, 'limit 101'],
        [{ statuses: ['paused'] }, 'statuses paused'],
        [{ 'created_at[gte]': 'yesterday' }, 'created_at[gte]=yesterday'],
        [{ order: 'sideways' }, 'order sideways'],
      ];
      for (const [params, what] of bad) {
        await expectReject(client.beta.sessions.list(params), SDK.BadRequestError, 400, 'invalid_request_error', what);
      }
      const r = await ctx.rec.raw(env.gw.url, '/v1/sessions?limit=abc', { headers: { 'x-api-key': env.keys.alice } });
      if (r.status !== 400) fail(`limit=abc: status ${r.status}, want 400`);
      const first = await client.beta.sessions.list({ limit: 5 });
      const cursor = first.next_page;
      if (!cursor) fail('no next_page on the first page');
      const flip = cursor.slice(0, -2) + (cursor.at(-2) === 'A' ? 'B' : 'A') + cursor.at(-1);
      await expectReject(client.beta.sessions.list({ limit: 5, page: flip }), SDK.BadRequestError, 400, 'invalid_request_error', 'tampered cursor');
      await expectReject(ctx.client(env.keys.bob).beta.sessions.list({ limit: 5, page: cursor }), SDK.BadRequestError, 400, 'invalid_request_error', "bob using alice's cursor");
      await expectReject(client.beta.sessions.list({ limit: 5, page: cursor, order: 'asc' }), SDK.BadRequestError, 400, 'invalid_request_error', 'cursor reused with other filters');
      const again = await client.beta.sessions.list({ limit: 5, page: cursor });
      if (again.data.length !== 5) fail(`the untampered cursor yields ${again.data.length} sessions`);
    });

    // ---- backend failures and the SDK's retries (x-should-retry)
    const retryCase = makeRetryCase(add, env.junk, '');

    retryCase('backend down: 502, x-should-retry true, SDK retries maxRetries times', {
      key: env.keys.down, maxRetries: 2, Klass: SDK.InternalServerError, status: 502, type: 'api_error', retry: true, backend: env.deadName,
    });
    retryCase('backend slow: 504 timeout_error, x-should-retry true, retried', {
      key: env.keys.junk, mode: 'slow', delayMs: env.junkTimeoutMs + 1500, maxRetries: 1, Klass: SDK.GatewayTimeoutError, status: 504, type: 'timeout_error', retry: true, backend: env.junkName,
    });
    retryCase('backend garbage: 502, x-should-retry false, not retried', {
      key: env.keys.junk, mode: 'garbage', maxRetries: 2, Klass: SDK.InternalServerError, status: 502, type: 'api_error', retry: false, backend: env.junkName,
    });
    retryCase('backend wrong-shape: 502, x-should-retry false, not retried', {
      key: env.keys.junk, mode: 'wrong-shape', maxRetries: 2, Klass: SDK.InternalServerError, status: 502, type: 'api_error', retry: false, backend: env.junkName,
    });
    retryCase('backend http500: 502, SDK follows x-should-retry', {
      key: env.keys.junk, mode: 'http500', maxRetries: 2, Klass: SDK.InternalServerError, status: 502, type: 'api_error', backend: env.junkName,
    });
    retryCase('backend close: 502, SDK follows x-should-retry', {
      key: env.keys.junk, mode: 'close', maxRetries: 2, Klass: SDK.InternalServerError, status: 502, type: 'api_error', backend: env.junkName,
    });

    add('backend isolation: a slow backend does not delay another', async (ctx) => {
      await env.junk.setMode('slow', env.junkTimeoutMs + 1500);
      try {
        const slow = ctx.client(env.keys.junk, { maxRetries: 0, timeout: 20000 }).beta.sessions.list({ limit: 5 }).then(
          () => 'ok',
          (e) => e,
        );
        await sleep(100);
        const t0 = Date.now();
        const fast = ctx.client(env.keys.alice);
        await Promise.all([fast.beta.sessions.list({ limit: 5 }), fast.beta.sessions.list({ limit: 5 }), fast.beta.sessions.list({ limit: 5 })]);
        const ms = Date.now() - t0;
        if (ms > Math.min(1000, env.junkTimeoutMs - 100)) fail(`alice's requests took ${ms} ms while the other backend was slow`);
        const r = await slow;
        if (!(r instanceof SDK.GatewayTimeoutError)) fail(`the slow request ended with ${r?.constructor?.name ?? r}`);
      } finally {
        await env.junk.setMode('ok');
      }
      const after = await ctx.client(env.keys.junk).beta.sessions.list({ limit: 5 });
      if (!Array.isArray(after.data)) fail('the recovered backend does not list');
    });
  }

  add('raw curl spellings equal the SDK results', async (ctx) => {
    const ref = await ctx.reference();
    const lo = boundaryNear(ref, 0.6);
    const client = ctx.client(env.keys.alice);
    const sdkItems = (await listAll(client, { statuses: ['idle', 'running'], 'created_at[gte]': lo, limit: 7 })).map((s) => s.id);
    if (sdkItems.length === 0) fail('fixture: empty result');
    const rawList = async (qs, headers) => {
      const ids = [];
      let page = null;
      for (let i = 0; i < 1000; i++) {
        const r = await ctx.rec.raw(env.gw.url, `/v1/sessions?${qs}${page ? `&page=${encodeURIComponent(page)}` : ''}`, { headers });
        if (r.status !== 200) fail(`GET /v1/sessions?${qs}: status ${r.status}: ${r.text.slice(0, 200)}`);
        ids.push(...r.body.data.map((s) => s.id));
        page = r.body.next_page;
        if (!page) return ids;
      }
      fail('more than 1000 pages');
    };
    const enc = encodeURIComponent(lo);
    const xkey = { 'x-api-key': env.keys.alice };
    sameSequence(await rawList(`statuses=idle&statuses=running&created_at_gte=${enc}&limit=7`, xkey), sdkItems, 'statuses=…&created_at_gte=…');
    if (full) {
      sameSequence(await rawList(`statuses%5B%5D=idle&statuses%5B%5D=running&created_at%5Bgte%5D=${enc}&limit=7`, { authorization: `Bearer ${env.keys.alice}` }), sdkItems, 'percent-encoded brackets with Bearer');
      sameSequence(await rawList(`statuses=idle,running&created_at_gte=${enc}&limit=7`, xkey), sdkItems, 'statuses=idle,running');
      const off = formatWithOffset(rfc3339Micros(lo), 480);
      sameSequence(await rawList(`statuses=idle&statuses=running&created_at_gte=${off}&limit=7`, xkey), sdkItems, `unencoded offset created_at_gte=${off}`);
      const one = ref[3];
      const r = await ctx.rec.raw(env.gw.url, `/v1/sessions/${one.id}`, { headers: xkey });
      if (r.status !== 200) fail(`GET /v1/sessions/{id}: status ${r.status}`);
      const sdkOne = await client.beta.sessions.retrieve(one.id);
      const strip = (s) => {
        const c = clone(s);
        if (c.status === 'running') delete c.stats;
        return canon(c);
      };
      if (strip(r.body) !== strip(sdkOne)) fail('raw GET /v1/sessions/{id} differs from the SDK retrieve');
    }
  });

  add('events.list: every event once, oldest first, paging stable', async (ctx) => {
    const ref = await ctx.reference();
    const client = ctx.client(env.keys.alice);
    const running = ref.find((s) => s.status === 'running');
    const sample = [ref[0], ref[Math.floor(ref.length / 2)], ref[ref.length - 1], ...(running ? [running] : [])];
    let total = 0;
    for (const s of sample) {
      const all = [];
      for await (const ev of client.beta.sessions.events.list(s.id)) all.push(ev);
      const paged = [];
      for await (const ev of client.beta.sessions.events.list(s.id, { limit: 3 })) paged.push(ev);
      sameSequence(paged.map((e) => e.id), all.map((e) => e.id), `events of ${s.id}, limit 3 vs default`);
      sameSet(all.map((e) => e.id), all.map((e) => e.id), `events of ${s.id}`);
      let prev = -Infinity;
      for (const ev of all) {
        if (ev.processed_at == null) continue;
        const t = rfc3339Micros(ev.processed_at);
        if (Number.isNaN(t)) fail(`event ${ev.id}: processed_at ${JSON.stringify(ev.processed_at)} is not RFC 3339`);
        if (t < prev) fail(`events of ${s.id} are not oldest first at ${ev.id}`);
        prev = t;
      }
      const desc = [];
      for await (const ev of client.beta.sessions.events.list(s.id, { order: 'desc', limit: 50 })) desc.push(ev);
      sameSet(desc.map((e) => e.id), all.map((e) => e.id), `events of ${s.id}, order desc`);
      total += all.length;
    }
    if (total === 0) fail('no session in the sample has any event: the event schema was not exercised');
    // filters on the richest session: types[] and created_at[…] (against processed_at)
    let richest = null;
    let events = [];
    for (const s of sample) {
      const all = [];
      for await (const ev of client.beta.sessions.events.list(s.id, { limit: 1000 })) all.push(ev);
      if (all.length > events.length) [richest, events] = [s, all];
    }
    const types = [...new Set(events.map((e) => e.type))].slice(0, 2);
    const byType = [];
    for await (const ev of client.beta.sessions.events.list(richest.id, { types, limit: 5 })) byType.push(ev);
    sameSequence(byType.map((e) => e.id), events.filter((e) => types.includes(e.type)).map((e) => e.id), `events types=${types}`);
    const timed = events.filter((e) => e.processed_at != null);
    const mid = timed[Math.floor(timed.length / 2)].processed_at;
    const m = rfc3339Micros(mid);
    const since = [];
    for await (const ev of client.beta.sessions.events.list(richest.id, { 'created_at[gte]': mid, limit: 5 })) since.push(ev);
    sameSequence(since.map((e) => e.id), timed.filter((e) => rfc3339Micros(e.processed_at) >= m).map((e) => e.id), `events created_at[gte]=${mid}`);
    const before = [];
    for await (const ev of client.beta.sessions.events.list(richest.id, { 'created_at[lt]': mid, limit: 5 })) before.push(ev);
    sameSequence(before.map((e) => e.id), timed.filter((e) => rfc3339Micros(e.processed_at) < m).map((e) => e.id), `events created_at[lt]=${mid}`);
    await expectReject(client.beta.sessions.events.list(richest.id, { types: ['agent.nonsense'] }), SDK.BadRequestError, 400, 'invalid_request_error', 'events types=agent.nonsense');
    const other = sample.find((s) => s.id !== richest.id);
    const p1 = await client.beta.sessions.events.list(richest.id, { limit: 2 });
    if (p1.next_page && other) {
      await expectReject(client.beta.sessions.events.list(other.id, { limit: 2, page: p1.next_page }), SDK.BadRequestError, 400, 'invalid_request_error', "another session's events cursor");
    }
    const d = decodePubId('sesn_', ref[0].id);
    const ghost = encodePubId('sesn_', d.backend, d.scope, 'f'.repeat(32));
    await expectReject(client.beta.sessions.events.list(ghost), SDK.NotFoundError, 404, 'not_found_error', 'events of an unknown session');
    ctx.note(`${total} events in ${sample.length} sessions`);
  }, 90000);

  if (full) {
    add('unknown routes and methods: north error envelopes', async (ctx) => {
      const h = { 'x-api-key': env.keys.alice };
      const a = await ctx.rec.raw(env.gw.url, '/v1/nothing', { headers: h });
      if (a.status !== 404) fail(`GET /v1/nothing: status ${a.status}, want 404`);
      if (!/no such endpoint/.test(a.body?.error?.message ?? '')) fail(`GET /v1/nothing: message ${a.body?.error?.message}`);
      // known paths asked with a method they do not take: 405 with the methods they do take
      // (never a write here: this run's fake is the read scenarios' ground truth)
      const id = (await ctx.reference())[0].id;
      for (const [method, path, allow] of [
        ['PUT', '/v1/sessions', 'GET, HEAD, POST'],
        ['PATCH', `/v1/sessions/${id}`, 'GET, HEAD, POST, DELETE'],
        ['GET', `/v1/sessions/${id}/archive`, 'POST'],
        ['DELETE', `/v1/sessions/${id}/events`, 'GET, HEAD, POST'],
      ]) {
        const r = await ctx.rec.raw(env.gw.url, path, { method, headers: h });
        const what = `${method} ${path.replace(id, '{id}')}`;
        if (r.status !== 405) fail(`${what}: status ${r.status}, want 405`);
        if (r.body?.error?.type !== 'invalid_request_error') fail(`${what}: error.type ${r.body?.error?.type}`);
        const got = (r.resHeaders.allow ?? '').split(',').map((x) => x.trim()).sort();
        if (canon(got) !== canon(allow.split(', ').sort())) fail(`${what}: Allow ${JSON.stringify(r.resHeaders.allow)}, want ${allow}`);
      }
      // a write route without a body: a 400 naming what is missing, before any backend
      await env.fake.clearRequests();
      const b = await ctx.rec.raw(env.gw.url, '/v1/sessions', { method: 'POST', headers: h });
      if (b.status !== 400 || b.body?.error?.type !== 'invalid_request_error') fail(`POST /v1/sessions without a body: status ${b.status} ${b.body?.error?.type}`);
      const reached = (await env.fake.requests()).filter((q) => q.method !== 'GET');
      if (reached.length) fail(`POST /v1/sessions without a body reached the backend: ${reached.map((q) => `${q.method} ${q.uri}`).join(', ')}`);
    });

    add('identity: client X-User-ID is never forwarded', async (ctx) => {
      const ref = await ctx.reference();
      await env.fake.clearRequests();
      // no-cache: a fresh read, so the listing reaches the backend within the freshness window
      const r = await ctx.rec.raw(env.gw.url, '/v1/sessions?limit=100', { headers: { 'x-api-key': env.keys.alice, 'X-User-ID': 'bob', 'Cache-Control': 'no-cache' } });
      if (r.status !== 200) fail(`status ${r.status}`);
      const mine = new Set(ref.map((s) => s.id));
      if (!r.body.data.every((s) => mine.has(s.id))) fail("the listing contains sessions that are not alice's");
      const seen = await env.fake.requests();
      if (seen.length === 0) fail('the fake recorded no request');
      for (const q of seen) {
        if (JSON.stringify(q.x_user_id) !== '["alice"]') fail(`${q.method} ${q.uri} reached the backend with X-User-ID ${JSON.stringify(q.x_user_id)}`);
      }
    });

    add('validation bites on a live Session', async (ctx) => {
      const ref = await ctx.reference();
      assertBites(ctx.validators, 'session', clone(ref[0]), BROKEN_SESSIONS.slice(0, 4), 'live session');
    });
  }
  return S;
}


/* One scenario per backend failure mode: switches the misbehaving fake `junk` (when a mode
 * is given), lists with the SDK, and checks the error class, x-should-retry, how many times
 * the SDK asked (with X-Stainless-Retry-Count), and that the message names the backend. */
function makeRetryCase(add, junk, prefix) {
  return (label, { key, mode, delayMs = 0, maxRetries, Klass, status, type, retry, backend }) =>
    add(`${prefix}${label}`, async (ctx) => {
      if (mode) await junk.setMode(mode, delayMs);
      try {
        const client = ctx.client(key, { maxRetries, timeout: 20000 });
        const from = ctx.rec.records.length;
        const err = await expectReject(client.beta.sessions.list({ limit: 5 }), Klass, status, type, label);
        const attempts = ctx.rec.records.slice(from);
        const header = err.headers?.get('x-should-retry');
        if (retry !== undefined && header !== String(retry)) fail(`x-should-retry: ${JSON.stringify(header)}, want "${retry}"`);
        if (header !== 'true' && header !== 'false') fail(`x-should-retry: ${JSON.stringify(header)}, want "true" or "false"`);
        const want = header === 'true' ? maxRetries + 1 : 1;
        if (attempts.length !== want) fail(`the SDK sent ${attempts.length} requests, want ${want} (maxRetries ${maxRetries}, x-should-retry ${header})`);
        attempts.forEach((a, i) => {
          if (a.retryCount !== i) fail(`attempt ${i + 1} carried X-Stainless-Retry-Count ${a.retryCount}`);
        });
        if (!err.apiMessage.includes(backend)) fail(`the message does not name the backend '${backend}': ${JSON.stringify(err.apiMessage)}`);
        ctx.note(`x-should-retry ${header}, ${attempts.length} attempt(s)`);
      } finally {
        if (mode) await junk.setMode('ok');
      }
    }, 45000);
}

export { Anthropic };

// Shared with backends.mjs (the SandBase, Claude-native and routing scenarios).
export {
  fail,
  clone,
  canon,
  micros,
  sameSequence,
  sameSet,
  checkOrder,
  expectAPIError,
  expectReject,
  listAll,
  listPages,
  boundaryNear,
  makeRetryCase,
};
