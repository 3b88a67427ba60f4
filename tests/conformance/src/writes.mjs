// Conformance scenarios for the write path (create, update, archive, delete, send events) and
// the agents endpoints, through the official SDK, against fresh fakes of their own (run.mjs
// `writes`): writes change the fakes' data, so they never share a fake with the read runs,
// whose ground truth must hold still. Same rules as scenarios.mjs: each scenario is {name,
// timeoutMs, run(ctx)}, throws to fail, and every north response it receives is validated by
// ctx.rec against the schemas generated from the SDK's types.
//
// Ground truth is what the fakes recorded (GET /__fake/requests: every request with its
// method, uri, identity headers and body) and their own data read in their own dialect. Every
// scenario asserts exact values: ids, statuses, event types, how many requests the SDK sent and
// how many writes reached the backend.

import * as SDK from '@anthropic-ai/sdk';
import { rfc3339Micros, sleep } from './harness.mjs';
import { decodePubId } from './pubid.mjs';
import { fail, canon, expectAPIError, expectReject, listAll } from './scenarios.mjs';

const BETA = 'managed-agents-2026-04-01';
const UNKNOWN_OUTCOME = /outcome (of this write )?is unknown/;

// ---------------------------------------------------------------- helpers

const isWrite = (q) => q.method !== 'GET' && q.method !== 'HEAD';
const uriPath = (q) => q.uri.split('?')[0];

async function collect(iter) {
  const out = [];
  for await (const x of iter) out.push(x);
  return out;
}

// The writes a fake recorded (every method but GET/HEAD), as "METHOD path" lines for messages.
async function writesOf(fake) {
  return (await fake.requests()).filter(isWrite);
}
const show = (qs) => qs.map((q) => `${q.method} ${uriPath(q)}`).join(', ') || 'none';

// The SDK's attempts at one endpoint since record index `from` (each retry is one record).
const attempts = (rec, from, method, pathRe) => rec.records.slice(from).filter((r) => r.method === method && pathRe.test(r.path));

const EVENTS_PATH = /^\/v1\/sessions\/[^/]+\/events$/;
const CREATE_PATH = /^\/v1\/sessions$/;

// events.list until `until(events)` returns something truthy, at most `tries` times `ms` apart
// (bounded: a run that never ends fails the scenario instead of hanging it).
async function pollEvents(client, id, until, what, { tries = 60, ms = 100 } = {}) {
  let last = [];
  for (let i = 0; i < tries; i++) {
    last = await collect(client.beta.sessions.events.list(id));
    const r = until(last);
    if (r) return { events: last, found: r };
    await sleep(ms);
  }
  fail(`${what}: not seen within ${tries * ms} ms; events.list shows ${last.map((e) => e.type + (e.stop_reason ? `(${e.stop_reason.type})` : '')).join(', ') || 'nothing'}`);
}

// The session's status via retrieve, until it is `want` (bounded like pollEvents).
async function pollStatus(client, id, want, what, { tries = 60, ms = 100 } = {}) {
  let s = null;
  for (let i = 0; i < tries; i++) {
    s = await client.beta.sessions.retrieve(id);
    if (s.status === want) return s;
    await sleep(ms);
  }
  fail(`${what}: status ${s?.status} after ${tries * ms} ms, want ${want}`);
}

const textOf = (ev) => (Array.isArray(ev?.content) ? ev.content.filter((b) => b.type === 'text').map((b) => b.text).join('') : '');

// Index of the user.message carrying `text`, or -1.
const userMessageAt = (events, text) => events.findIndex((e) => e.type === 'user.message' && textOf(e) === text);

// After the user.message with `text`: an agent.message, and the last event a status_idle that
// stopped for `reason`. Returns {at, idle} or null.
function turnEnded(events, text, reason = 'end_turn') {
  const at = userMessageAt(events, text);
  if (at < 0) return null;
  const last = events[events.length - 1];
  if (last?.type !== 'session.status_idle' || last.stop_reason?.type !== reason) return null;
  if (events.indexOf(last) <= at) return null;
  return { at, idle: last };
}

const userMessage = (text) => ({ type: 'user.message', content: [{ type: 'text', text }] });

// ---------------------------------------------------------------- scenarios

// env: {gw, as, sb, cl, proxy, keys: {as, sb, cl, multi, flaky}, backendKeys: {sb, cl}, names:
// {as, sb, cl, flaky}, user, envId, chatModelConfig}
export function writeScenarios(env) {
  const S = [];
  const add = (name, run, timeoutMs = 60000) => S.push({ name: `writes/${name}`, run, timeoutMs });

  const backends = [
    {
      kind: 'agentscope',
      label: 'agentscope',
      name: env.names.as,
      fake: env.as,
      key: env.keys.as,
      canArchive: false,
      isCreate: (q) => q.method === 'POST' && /^\/sessions\/?$/.test(uriPath(q)),
      isEventsWrite: (q) => q.method === 'POST' && (uriPath(q) === '/chat/' || /^\/sessions\/[^/]+\/interrupt$/.test(uriPath(q))),
    },
    {
      kind: 'sandbase',
      label: 'sandbase',
      name: env.names.sb,
      fake: env.sb,
      key: env.keys.sb,
      headers: { 'x-api-key': env.backendKeys.sb },
      canArchive: true,
      isCreate: (q) => q.method === 'POST' && uriPath(q) === '/v1/sessions',
      isEventsWrite: (q) => q.method === 'POST' && /^\/v1\/sessions\/[^/]+\/events$/.test(uriPath(q)),
    },
    {
      kind: 'claude',
      label: 'claude',
      name: env.names.cl,
      fake: env.cl,
      key: env.keys.cl,
      headers: { 'x-api-key': env.backendKeys.cl, 'anthropic-beta': BETA },
      canArchive: true,
      isCreate: (q) => q.method === 'POST' && uriPath(q) === '/v1/sessions',
      isEventsWrite: (q) => q.method === 'POST' && /^\/v1\/sessions\/[^/]+\/events$/.test(uriPath(q)),
    },
  ];
  const [asB, sbB, clB] = backends;

  // The backend's own agents, read from the fake in its dialect: [{id, version, name}].
  const fakeAgents = async (b) => {
    if (b.agents) return b.agents;
    if (b.kind === 'agentscope') {
      const body = await b.fake.get('/agent/', env.user);
      b.agents = body.agents.map((a) => ({ id: a.id, version: 1, name: a.data?.name ?? null }));
    } else if (b.kind === 'claude') {
      // fake_sandbase --dialect claude has no agent routes: its agents are the snapshots its
      // sessions carry (read in its own listing)
      const latest = new Map();
      let page = null;
      for (let i = 0; i < 100; i++) {
        const body = await b.fake.getWith(`/v1/sessions?limit=100&include_archived=true${page ? `&page=${encodeURIComponent(page)}` : ''}`, b.headers);
        for (const s of body.data) {
          const a = s.agent;
          if (a?.id && (!latest.has(a.id) || latest.get(a.id).version < a.version)) latest.set(a.id, { id: a.id, version: a.version, name: a.name ?? null });
        }
        page = body.next_page;
        if (!page) break;
      }
      b.agents = [...latest.values()].sort((x, y) => (x.id < y.id ? -1 : 1));
    } else {
      const out = [];
      let page = null;
      for (let i = 0; i < 100; i++) {
        const body = await b.fake.getWith(`/v1/agents?limit=100${page ? `&page=${encodeURIComponent(page)}` : ''}`, b.headers);
        if (!Array.isArray(body?.data)) fail(`fake ${b.label}: GET /v1/agents: no data array`);
        out.push(...body.data.map((a) => ({ id: a.id, version: a.version, name: a.name })));
        page = body.next_page;
        if (!page) break;
      }
      // one entry per agent, at its latest version
      const latest = new Map();
      for (const a of out) if (!latest.has(a.id) || latest.get(a.id).version < a.version) latest.set(a.id, a);
      b.agents = [...latest.values()];
    }
    if (b.agents.length === 0) fail(`fixture: the ${b.label} fake has no agents`);
    return b.agents;
  };

  // Does the fake hold this session (by its native id), in its own dialect?
  const fakeHas = async (b, nativeId, agentId) => {
    if (b.kind === 'agentscope') {
      const body = await b.fake.get(`/sessions/?agent_id=${encodeURIComponent(agentId)}`, env.user);
      return body.sessions.some((v) => v.session.id === nativeId);
    }
    const r = await fetch(`${b.fake.url}/v1/sessions/${encodeURIComponent(nativeId)}`, { headers: b.headers });
    await r.text();
    return r.status === 200;
  };

  // How many sessions the fake holds for this agent (AgentScope) or in all (SandBase, Claude).
  const fakeCount = async (b, agentId) => {
    if (b.kind === 'agentscope') return (await b.fake.get(`/sessions/?agent_id=${encodeURIComponent(agentId)}`, env.user)).sessions.length;
    let n = 0;
    let page = null;
    for (let i = 0; i < 1000; i++) {
      const body = await b.fake.getWith(`/v1/sessions?limit=100&include_archived=true${page ? `&page=${encodeURIComponent(page)}` : ''}`, b.headers);
      n += body.data.length;
      page = body.next_page;
      if (!page) return n;
    }
    fail(`fake ${b.label}: its listing did not end`);
  };

  const createParams = (agentId, extra = {}) => ({ agent: agentId, environment_id: env.envId, ...extra });

  // A fresh session on b, checked against what the fake recorded. Returns the north Session.
  const createChecked = async (ctx, b, client, extra = {}, opts = undefined) => {
    const agent = (await fakeAgents(b))[0];
    const before = (await writesOf(b.fake)).filter(b.isCreate).length;
    const s = await client.beta.sessions.create(createParams(agent.id, extra), opts);
    const d = decodePubId('sesn_', s.id);
    if (!d || d.backend !== b.name) fail(`created ${s.id}: does not name backend ${b.name} (${JSON.stringify(d)})`);
    if (s.agent.id !== agent.id) fail(`created ${s.id}: agent.id ${s.agent.id}, asked for ${agent.id}`);
    const createReqs = (await writesOf(b.fake)).filter(b.isCreate);
    const creates = createReqs.length - before;
    if (creates !== 1) fail(`create reached the ${b.label} fake ${creates} times, want 1`);
    if (b.kind === 'agentscope') {
      // AgentScope sessions cannot run without a model: the backend's chat_model_config goes along
      const sent = createReqs[createReqs.length - 1].json;
      if (canon(sent?.chat_model_config) !== canon(env.chatModelConfig)) fail(`POST /sessions/ carried chat_model_config ${JSON.stringify(sent?.chat_model_config)}, configured ${JSON.stringify(env.chatModelConfig)}`);
      if (sent?.agent_id !== agent.id) fail(`POST /sessions/ carried agent_id ${sent?.agent_id}`);
    }
    if (!(await fakeHas(b, d.native, agent.id))) fail(`the ${b.label} fake does not hold the created session ${d.native}`);
    return { s, d, agent };
  };

  // ---- the whole life of a session, per backend
  for (const b of backends) {
    const p = b.label;
    add(`${p}/flow: create, user.message, events, interrupt, title${b.kind === 'agentscope' ? '' : ' and metadata'} (read-your-writes), ${b.canArchive ? 'archive' : 'archive refused (400)'}, delete`, async (ctx) => {
      const client = ctx.client(b.key);
      await b.fake.clearRequests();
      const title = `conformance flow ${p}`;
      const { s, d, agent } = await createChecked(ctx, b, client, { title });
      if (s.status !== 'idle') fail(`created session status ${s.status}, want idle`);
      if (s.title !== title) fail(`created session title ${JSON.stringify(s.title)}, want ${JSON.stringify(title)}`);
      if (s.archived_at !== null) fail(`created session archived_at ${s.archived_at}`);
      const got = await client.beta.sessions.retrieve(s.id);
      for (const k of ['id', 'title', 'created_at', 'archived_at', 'environment_id']) {
        if (canon(got[k]) !== canon(s[k])) fail(`retrieve after create: ${k} ${JSON.stringify(got[k])}, create answered ${JSON.stringify(s[k])}`);
      }
      if (got.agent.id !== agent.id) fail(`retrieve after create: agent.id ${got.agent.id}`);

      // a user.message: accepted, echoed, and the run's events appear
      const text = `hello from the conformance suite (${p})`;
      await b.fake.clearRequests();
      const sent = await client.beta.sessions.events.send(s.id, { events: [userMessage(text)] });
      if (!Array.isArray(sent.data) || sent.data.length !== 1) fail(`events.send answered ${JSON.stringify(sent.data)?.slice(0, 200)}, want the one accepted event`);
      if (sent.data[0].type !== 'user.message' || textOf(sent.data[0]) !== text) fail(`events.send echoed ${JSON.stringify(sent.data[0]).slice(0, 200)}`);
      const w1 = await writesOf(b.fake);
      if (w1.filter(b.isEventsWrite).length !== 1) fail(`the user.message reached the ${p} fake as ${show(w1)}, want one events write`);
      const { events, found } = await pollEvents(client, s.id, (evs) => turnEnded(evs, text), 'the run after the user.message');
      const after = events.slice(found.at + 1);
      if (!after.some((e) => e.type === 'agent.message' && textOf(e).length > 0)) fail(`no agent.message with text after the user.message: ${after.map((e) => e.type).join(', ')}`);
      if (events[found.at].id !== sent.data[0].id && b.kind !== 'agentscope') {
        fail(`the user.message listed has id ${events[found.at].id}, events.send answered ${sent.data[0].id}`);
      }

      // interrupt: accepted and passed to the backend
      await b.fake.clearRequests();
      const intr = await client.beta.sessions.events.send(s.id, { events: [{ type: 'user.interrupt' }] });
      if (intr.data?.length !== 1 || intr.data[0].type !== 'user.interrupt') fail(`interrupt answered ${JSON.stringify(intr.data).slice(0, 200)}`);
      const w2 = await writesOf(b.fake);
      if (w2.filter(b.isEventsWrite).length !== 1) fail(`the interrupt reached the ${p} fake as ${show(w2)}, want one write`);
      const idleAfter = await pollStatus(client, s.id, 'idle', 'after the interrupt');

      // title: the next retrieve and list show it, whatever was read (and cached) before
      const listedBefore = (await listAll(client, { limit: 100 })).find((x) => x.id === s.id);
      if (!listedBefore || listedBefore.title !== title) fail(`the listing before the update shows ${JSON.stringify(listedBefore?.title)}`);
      const title2 = `${title}, renamed`;
      await b.fake.clearRequests();
      const upd = await client.beta.sessions.update(s.id, { title: title2 });
      if (upd.id !== s.id || upd.title !== title2) fail(`update answered id ${upd.id} title ${JSON.stringify(upd.title)}`);
      const w3 = await writesOf(b.fake);
      if (w3.length !== 1) fail(`the update reached the ${p} fake as ${show(w3)}, want one write`);
      const r2 = await client.beta.sessions.retrieve(s.id);
      if (r2.title !== title2) fail(`retrieve after the update: title ${JSON.stringify(r2.title)} (read-your-writes)`);
      const listedAfter = (await listAll(client, { limit: 100 })).find((x) => x.id === s.id);
      if (listedAfter?.title !== title2) fail(`list after the update: title ${JSON.stringify(listedAfter?.title)} (read-your-writes)`);
      if (rfc3339Micros(r2.updated_at) < rfc3339Micros(idleAfter.updated_at)) fail(`updated_at went back: ${idleAfter.updated_at} then ${r2.updated_at}`);

      // metadata is a patch: a string upserts, null deletes (AgentScope has none: refused below)
      if (b.kind !== 'agentscope') {
        const m1 = await client.beta.sessions.update(s.id, { metadata: { 'conf.a': '1', 'conf.b': '2' } });
        if (m1.metadata['conf.a'] !== '1' || m1.metadata['conf.b'] !== '2') fail(`metadata after the upsert: ${JSON.stringify(m1.metadata)}`);
        const m2 = await client.beta.sessions.update(s.id, { metadata: { 'conf.a': null } });
        if ('conf.a' in m2.metadata || m2.metadata['conf.b'] !== '2') fail(`metadata after deleting conf.a: ${JSON.stringify(m2.metadata)}`);
        const r = await client.beta.sessions.retrieve(s.id);
        if ('conf.a' in r.metadata || r.metadata['conf.b'] !== '2' || r.title !== title2) fail(`retrieve after the metadata patch: ${JSON.stringify(r.metadata)}, title ${JSON.stringify(r.title)}`);
      }

      // archive
      await b.fake.clearRequests();
      if (b.canArchive) {
        const a = await client.beta.sessions.archive(s.id);
        if (a.id !== s.id) fail(`archive answered id ${a.id}`);
        const at = rfc3339Micros(a.archived_at);
        if (Number.isNaN(at)) fail(`archive answered archived_at ${JSON.stringify(a.archived_at)}`);
        if (at < rfc3339Micros(s.created_at)) fail(`archived_at ${a.archived_at} is before created_at ${s.created_at}`);
        const w4 = await writesOf(b.fake);
        if (w4.length !== 1 || !/\/archive$/.test(uriPath(w4[0]))) fail(`the archive reached the ${p} fake as ${show(w4)}, want one archive`);
        const r3 = await client.beta.sessions.retrieve(s.id);
        if (r3.archived_at !== a.archived_at) fail(`retrieve after archive: archived_at ${r3.archived_at}, archive answered ${a.archived_at}`);
        if ((await listAll(client, { limit: 100 })).some((x) => x.id === s.id)) fail('the archived session is still in the default listing');
        const inc = (await listAll(client, { limit: 100, include_archived: true })).find((x) => x.id === s.id);
        if (!inc) fail('the archived session is missing from the include_archived listing');
        if (inc.archived_at !== a.archived_at) fail(`include_archived listing: archived_at ${inc.archived_at}`);
      } else {
        const err = await expectReject(client.beta.sessions.archive(s.id), SDK.BadRequestError, 400, 'invalid_request_error', 'archive on AgentScope');
        if (!err.apiMessage.includes(`'${b.name}'`) || !/archive/.test(err.apiMessage)) fail(`the 400 does not name the backend and the archive: ${JSON.stringify(err.apiMessage)}`);
        const w4 = await writesOf(b.fake);
        if (w4.length) fail(`a refused archive reached the fake: ${show(w4)}`);
        if ((await client.beta.sessions.retrieve(s.id)).archived_at !== null) fail('the session looks archived after the refusal');
      }

      // delete: the SDK's deleted marker, then 404 everywhere
      await b.fake.clearRequests();
      const del = await client.beta.sessions.delete(s.id);
      if (canon(del) !== canon({ id: s.id, type: 'session_deleted' })) fail(`delete answered ${JSON.stringify(del)}`);
      const w5 = await writesOf(b.fake);
      if (w5.length !== 1 || w5[0].method !== 'DELETE') fail(`the delete reached the ${p} fake as ${show(w5)}, want one DELETE`);
      if (await fakeHas(b, d.native, agent.id)) fail(`the ${p} fake still holds ${d.native} after the delete`);
      await expectReject(client.beta.sessions.retrieve(s.id), SDK.NotFoundError, 404, 'not_found_error', 'retrieve after delete');
      await expectReject(collect(client.beta.sessions.events.list(s.id)), SDK.NotFoundError, 404, 'not_found_error', 'events.list after delete');
      if ((await listAll(client, { limit: 100, include_archived: true })).some((x) => x.id === s.id)) fail('the deleted session is still listed (read-your-writes)');
      ctx.note(`${events.length} events after the first turn`);
    });
  }

  // ---- bodies the SDK's types do not allow: 400 naming the field, nothing reaches the backend
  for (const b of backends) {
    add(`${b.label}/bad bodies: BadRequestError 400 naming the field, not retried; no write reaches the backend`, async (ctx) => {
      const client = ctx.client(b.key, { maxRetries: 2 });
      const agentId = (await fakeAgents(b))[0].id;
      const target = (await listAll(client, { limit: 5 }))[0];
      if (!target) fail(`fixture: the ${b.label} key lists no session`);
      const id = target.id;
      const meta17 = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']));
      const create = (body) => client.beta.sessions.create(body);
      const send = (body) => client.beta.sessions.events.send(id, body);
      const cases = [
        ['create without agent', () => create({ environment_id: env.envId }), /\bagent\b.*required|required.*\bagent\b/],
        ['create without environment_id', () => create({ agent: agentId }), /environment_id/],
        ['create with an unknown key', () => create({ ...createParams(agentId), colour: 'blue' }), /colour/],
        ['create with title a number', () => create({ ...createParams(agentId), title: 42 }), /\btitle\b/],
        ['create with agent a number', () => create({ ...createParams(agentId), agent: 7 }), /\bagent\b/],
        ['create with 17 metadata pairs', () => create({ ...createParams(agentId), metadata: meta17 }), /metadata/],
        ['create with metadata values not strings', () => create({ ...createParams(agentId), metadata: { n: 1 } }), /metadata/],
        ['create with an initial event of a type create does not take', () => create({ ...createParams(agentId), initial_events: [{ type: 'user.interrupt' }] }), /initial_events\[0\]/],
        ['events.send with an unknown event type', () => send({ events: [{ type: 'user.shout', content: [] }] }), /events\[0\]\.type/],
        ['events.send with content a string', () => send({ events: [{ type: 'user.message', content: 'hi' }] }), /events\[0\]\.content/],
        ['events.send with an unknown key in an event', () => send({ events: [{ type: 'user.interrupt', urgent: true }] }), /events\[0\]\.urgent/],
        ['events.send with a text block without text', () => send({ events: [{ type: 'user.message', content: [{ type: 'text' }] }] }), /events\[0\]\.content\[0\]\.text/],
        ['events.send with a tool confirmation result "maybe"', () => send({ events: [{ type: 'user.tool_confirmation', tool_use_id: 'sevt_x', result: 'maybe' }] }), /events\[0\]\.result/],
        ['events.send with 51 events', () => send({ events: Array.from({ length: 51 }, (_, i) => userMessage(`m${i}`)) }), /\bevents\b/],
        ['events.send with no events', () => send({ events: [] }), /\bevents\b/],
        ['events.send without events', () => send({}), /\bevents\b/],
        ['update with title a number', () => client.beta.sessions.update(id, { title: 42 }), /\btitle\b/],
        ['update with 17 metadata pairs', () => client.beta.sessions.update(id, { metadata: meta17 }), /metadata/],
        ['update with an unknown key', () => client.beta.sessions.update(id, { colour: 'blue' }), /colour/],
      ];
      await b.fake.clearRequests();
      const from = ctx.rec.records.length;
      for (const [what, call, field] of cases) {
        const err = await expectReject(call(), SDK.BadRequestError, 400, 'invalid_request_error', what);
        if (!field.test(err.apiMessage)) fail(`${what}: the message does not name the field (${field}): ${JSON.stringify(err.apiMessage)}`);
      }
      const sdkTries = ctx.rec.records.length - from;
      if (sdkTries !== cases.length) fail(`the SDK sent ${sdkTries} requests for ${cases.length} refused bodies (retried a 4xx?)`);
      const w = await writesOf(b.fake);
      if (w.length) fail(`refused bodies reached the ${b.label} fake: ${show(w)}`);
      ctx.note(`${cases.length} bodies refused`);
    });
  }

  // A body over limits.max_write_body_bytes (256 KiB by default): ContentTooLargeError, the
  // bound in the message, not retried, nothing sent; the body's error.type is held to the SDK's
  // ErrorResponse like every error
  add('core/a body over limits.max_write_body_bytes: ContentTooLargeError 413 saying the bound, not retried, nothing sent (each backend)', async (ctx) => {
    const big = 'x'.repeat(300 * 1024);
    for (const b of backends) {
      const client = ctx.client(b.key, { maxRetries: 2 });
      const agentId = (await fakeAgents(b))[0].id;
      const id = (await listAll(client, { limit: 5 }))[0]?.id;
      await b.fake.clearRequests();
      const from = ctx.rec.records.length;
      const e1 = await expectReject(client.beta.sessions.events.send(id, { events: [userMessage(big)] }), SDK.ContentTooLargeError, 413, undefined, `${b.label}: a 300 KiB events.send body`);
      if (!/\d+ bytes/.test(e1.apiMessage)) fail(`${b.label}: the 413 does not say the bound: ${JSON.stringify(e1.apiMessage)}`);
      await expectReject(client.beta.sessions.create(createParams(agentId, { title: big })), SDK.ContentTooLargeError, 413, undefined, `${b.label}: a 300 KiB create body`);
      if (ctx.rec.records.length - from !== 2) fail(`${b.label}: the SDK sent ${ctx.rec.records.length - from} requests for 2 refused bodies`);
      const w = await writesOf(b.fake);
      if (w.length) fail(`${b.label}: an oversized body reached the fake: ${show(w)}`);
    }
  });

  // ---- what the backend refuses: SandBase's 422 unsupported_event_type, events on an
  // archived session (409), both passed on without a retry
  add('sandbase/user.tool_confirmation: 422 unsupported_event_type becomes BadRequestError 400, not retried', async (ctx) => {
    const b = sbB;
    const client = ctx.client(b.key, { maxRetries: 2 });
    const { s } = await createChecked(ctx, b, client, { title: 'conformance 422' });
    await b.fake.clearRequests();
    const from = ctx.rec.records.length;
    const err = await expectReject(
      client.beta.sessions.events.send(s.id, { events: [{ type: 'user.tool_confirmation', tool_use_id: 'sevt_01CONFORMANCE', result: 'allow' }] }),
      SDK.BadRequestError,
      400,
      'invalid_request_error',
      'user.tool_confirmation on SandBase',
    );
    if (!err.apiMessage.includes(`'${b.name}'`) || !/unsupported_event_type/.test(err.apiMessage)) fail(`the message does not name the backend and SandBase's error: ${JSON.stringify(err.apiMessage)}`);
    if (attempts(ctx.rec, from, 'POST', EVENTS_PATH).length !== 1) fail('the SDK retried the 400');
    const w = (await writesOf(b.fake)).filter(b.isEventsWrite);
    if (w.length !== 1) fail(`the refused event reached SandBase ${w.length} times, want 1`);
    const evs = await collect(client.beta.sessions.events.list(s.id));
    if (evs.some((e) => e.type === 'user.tool_confirmation')) fail('the refused event was persisted');
  });

  for (const b of [sbB, clB]) {
    add(`${b.label}/events on an archived session: ConflictError 409, not retried (x-should-retry false)`, async (ctx) => {
      const client = ctx.client(b.key, { maxRetries: 2 });
      const { s } = await createChecked(ctx, b, client, { title: 'conformance archived' });
      const a = await client.beta.sessions.archive(s.id);
      if (a.archived_at === null) fail('archive answered archived_at null');
      await b.fake.clearRequests();
      const from = ctx.rec.records.length;
      const err = await expectReject(
        client.beta.sessions.events.send(s.id, { events: [userMessage('to an archived session')] }),
        SDK.ConflictError,
        409,
        'conflict_error',
        'user.message on an archived session',
      );
      const tries = attempts(ctx.rec, from, 'POST', EVENTS_PATH);
      if (tries.length !== 1) fail(`the SDK sent it ${tries.length} times (maxRetries 2), want 1`);
      const w = (await writesOf(b.fake)).filter(b.isEventsWrite);
      if (w.length !== 1) fail(`the message reached the fake ${w.length} times, want 1`);
      if (!err.apiMessage.includes(`'${b.name}'`)) fail(`the message does not name the backend: ${JSON.stringify(err.apiMessage)}`);
      const evs = await collect(client.beta.sessions.events.list(s.id));
      if (userMessageAt(evs, 'to an archived session') >= 0) fail('the refused message was persisted');
    });
  }

  // ---- a write whose answer is lost: the outcome is unknown, the SDK must not send it again
  // (maxRetries 2 would resend a plain 502), and the backend saw it exactly once
  const unknownCase = (b, label, { mode, op, performed, check }) =>
    add(`${b.label}/unknown outcome: ${label}: x-should-retry false, sent once, not retried`, async (ctx) => {
      const client = ctx.client(b.key, { maxRetries: 2 });
      const agentId = (await fakeAgents(b))[0].id;
      const setup = op === 'send' ? (await createChecked(ctx, b, client, { title: `conformance unknown ${mode}` })).s : null;
      const before = await fakeCount(b, agentId);
      await b.fake.clearRequests();
      await b.fake.setMode(mode);
      let err;
      const from = ctx.rec.records.length;
      const text = `conformance ${mode} ${b.label}`;
      try {
        err = await expectReject(
          op === 'send'
            ? client.beta.sessions.events.send(setup.id, { events: [userMessage(text)] })
            : client.beta.sessions.create(createParams(agentId, { title: text })),
          SDK.InternalServerError,
          502,
          'api_error',
          `${op} in mode ${mode}`,
        );
      } finally {
        await b.fake.setMode('ok');
      }
      const header = err.headers?.get('x-should-retry');
      if (header !== 'false') fail(`x-should-retry ${JSON.stringify(header)}, want "false"`);
      const tries = attempts(ctx.rec, from, 'POST', op === 'send' ? EVENTS_PATH : CREATE_PATH);
      if (tries.length !== 1) fail(`the SDK sent the write ${tries.length} times, want 1`);
      if (!UNKNOWN_OUTCOME.test(err.apiMessage)) fail(`the message does not say the outcome is unknown: ${JSON.stringify(err.apiMessage)}`);
      if (!err.apiMessage.includes(`'${b.name}'`)) fail(`the message does not name the backend: ${JSON.stringify(err.apiMessage)}`);
      const w = (await writesOf(b.fake)).filter(op === 'send' ? b.isEventsWrite : b.isCreate);
      if (w.length !== 1) fail(`the backend saw the write ${w.length} times (${show(w)}), want exactly 1`);
      if (op === 'create') {
        const after = await fakeCount(b, agentId);
        if (after !== before + (performed ? 1 : 0)) fail(`the fake holds ${after - before} new session(s), want ${performed ? 1 : 0}`);
      } else {
        const { events } = await pollEvents(client, setup.id, (evs) => userMessageAt(evs, text) >= 0 || null, 'the message whose answer was lost');
        if (events.filter((e) => e.type === 'user.message' && textOf(e) === text).length !== 1) fail('the message whose answer was lost is not there exactly once');
      }
      if (check) await check(ctx, client, err);
      ctx.note(err.apiMessage.slice(0, 160));
    }, 45000);

  unknownCase(asB, 'create answered by a dropped connection', { mode: 'write-drop', op: 'create', performed: true });
  unknownCase(asB, 'user.message answered by a 500 after the chat started', { mode: 'write-unknown', op: 'send', performed: true });
  unknownCase(sbB, 'create answered by a dropped connection', { mode: 'write-drop', op: 'create', performed: true });
  unknownCase(sbB, "create answered by SandBase's 502 delivery_outcome_unknown", {
    mode: 'write-unknown',
    op: 'create',
    performed: true,
    check: async (ctx, client, err) => {
      const m = /\bsesn_[a-z2-7]+/.exec(err.apiMessage);
      if (!m) fail(`the message does not name the session that may exist: ${JSON.stringify(err.apiMessage)}`);
      const d = decodePubId('sesn_', m[0]);
      if (!d || d.backend !== sbB.name) fail(`the named ${m[0]} does not decode to backend ${sbB.name}`);
      if (!(await fakeHas(sbB, d.native))) fail(`the named session ${d.native} is not in the fake`);
      const got = await client.beta.sessions.retrieve(m[0]);
      if (got.id !== m[0]) fail(`retrieve of the named session answered ${got.id}`);
    },
  });
  // the fakes serve a request before a failure mode replaces its answer: here SandBase created
  // the session and then answered a bare 500, which the gateway cannot tell from a refusal
  unknownCase(sbB, 'create done, then answered by a plain 500', { mode: 'http500', op: 'create', performed: true });
  unknownCase(clB, 'user.message answered by a dropped connection', { mode: 'write-drop', op: 'send', performed: true });

  // ---- Idempotency-Key, passed the way an SDK user does: request options' headers
  const idemKey = (what) => `conformance-${what}-${Date.now()}-${Math.random().toString(36).slice(2, 10)}`;
  for (const b of backends) {
    add(`${b.label}/Idempotency-Key: a repeat gets the first answer (Idempotent-Replayed), one backend create or send; another body is ConflictError 409, not retried`, async (ctx) => {
      const client = ctx.client(b.key, { maxRetries: 2 });
      const agentId = (await fakeAgents(b))[0].id;
      const k = idemKey(b.label);
      const params = createParams(agentId, { title: 'conformance idempotent create' });
      await b.fake.clearRequests();
      const from = ctx.rec.records.length;
      const first = await client.beta.sessions.create(params, { headers: { 'Idempotency-Key': k } }).withResponse();
      const again = await client.beta.sessions.create(params, { headers: { 'Idempotency-Key': k } }).withResponse();
      const recs = attempts(ctx.rec, from, 'POST', CREATE_PATH);
      if (recs.length !== 2) fail(`the SDK sent ${recs.length} creates, want 2`);
      recs.forEach((r, i) => {
        if (r.reqHeaders['idempotency-key'] !== k) fail(`create ${i + 1} went out with Idempotency-Key ${JSON.stringify(r.reqHeaders['idempotency-key'])}`);
      });
      if (first.data.id !== again.data.id) fail(`the repeat created another session: ${first.data.id} then ${again.data.id}`);
      if (first.response.headers.get('idempotent-replayed') !== null) fail('the first answer is marked Idempotent-Replayed');
      if (again.response.headers.get('idempotent-replayed') !== 'true') fail(`the repeat is not marked Idempotent-Replayed: ${JSON.stringify(again.response.headers.get('idempotent-replayed'))}`);
      if (recs[1].text !== recs[0].text) fail('the replayed body differs from the first answer');
      let creates = (await writesOf(b.fake)).filter(b.isCreate).length;
      if (creates !== 1) fail(`the backend saw ${creates} creates for two requests with one key, want 1`);
      // the same key with another body: refused, and the SDK must not retry the 409
      const from2 = ctx.rec.records.length;
      const err = await expectReject(
        client.beta.sessions.create({ ...params, title: 'another body, same key' }, { headers: { 'Idempotency-Key': k } }),
        SDK.ConflictError,
        409,
        'conflict_error',
        'same Idempotency-Key, another body',
      );
      if (!/Idempotency-Key/.test(err.apiMessage)) fail(`the 409 does not say why: ${JSON.stringify(err.apiMessage)}`);
      if (attempts(ctx.rec, from2, 'POST', CREATE_PATH).length !== 1) fail('the SDK retried the 409 (x-should-retry should be false)');
      creates = (await writesOf(b.fake)).filter(b.isCreate).length;
      if (creates !== 1) fail(`the conflicting request reached the backend (${creates} creates)`);
      // the key is per endpoint and per body only: a new key creates anew
      const third = await client.beta.sessions.create(params, { headers: { 'Idempotency-Key': idemKey('other') } });
      if (third.id === first.data.id) fail('a new Idempotency-Key got the old session');
      // events.send under a key: the repeat is the first answer, and the message is there once
      // (a second copy would start a second run)
      const ke = idemKey(`${b.label}-send`);
      const text = `sent once under ${ke}`;
      await b.fake.clearRequests();
      const fromSend = ctx.rec.records.length;
      const s1 = await client.beta.sessions.events.send(first.data.id, { events: [userMessage(text)] }, { headers: { 'Idempotency-Key': ke } });
      const s2 = await client.beta.sessions.events.send(first.data.id, { events: [userMessage(text)] }, { headers: { 'Idempotency-Key': ke } });
      const sendRecs = attempts(ctx.rec, fromSend, 'POST', EVENTS_PATH);
      if (canon(s2) !== canon(s1)) fail('the repeated events.send answered something else');
      if (sendRecs.length !== 2 || sendRecs[1].resHeaders['idempotent-replayed'] !== 'true') fail('the repeated events.send is not marked Idempotent-Replayed');
      const sendWrites = (await writesOf(b.fake)).filter(b.isEventsWrite);
      if (sendWrites.length !== 1) fail(`the backend saw ${sendWrites.length} sends for two requests with one key, want 1`);
      const { events: evs } = await pollEvents(client, first.data.id, (e) => turnEnded(e, text), 'the run of the message sent under a key');
      if (evs.filter((e) => e.type === 'user.message' && textOf(e) === text).length !== 1) fail('the message sent twice under one key is not listed exactly once');
      ctx.note(`replayed ${first.data.id}`);
    });
  }

  // A refused create is kept under its key too (a 404 is deterministic): the repeat replays the
  // same error; the recorder holds every error to body request_id = request-id header, the id
  // the SDK reports as err.requestID
  add('core/Idempotency-Key: a refused create (404, unknown agent) is replayed as the same error, its request_id the request-id header (each backend)', async (ctx) => {
    for (const b of backends) {
      const client = ctx.client(b.key, { maxRetries: 2 });
      const k = idemKey(`${b.label}-404`);
      const ghost = createParams('agent_conformance_no_such_agent', { title: 'no such agent' });
      await b.fake.clearRequests();
      const from = ctx.rec.records.length;
      const e1 = await expectReject(client.beta.sessions.create(ghost, { headers: { 'Idempotency-Key': k } }), SDK.NotFoundError, 404, 'not_found_error', `${b.label}: create with an unknown agent`);
      const e2 = await expectReject(client.beta.sessions.create(ghost, { headers: { 'Idempotency-Key': k } }), SDK.NotFoundError, 404, 'not_found_error', `${b.label}: the repeat`);
      if (e2.apiMessage !== e1.apiMessage) fail(`${b.label}: the repeated 404 says something else: ${JSON.stringify(e2.apiMessage)}`);
      const recs = attempts(ctx.rec, from, 'POST', CREATE_PATH);
      if (recs.length !== 2 || recs[1].resHeaders['idempotent-replayed'] !== 'true') fail(`${b.label}: the repeat is not marked Idempotent-Replayed`);
      const creates = (await writesOf(b.fake)).filter(b.isCreate).length;
      if (creates !== 1) fail(`${b.label}: the backend was asked ${creates} times, want 1 (the repeat is answered from the key)`);
    }
  });

  add('sandbase/Idempotency-Key: the SDK\'s own retry after a 503 reuses the key and creates one session', async (ctx) => {
    const b = sbB;
    const client = ctx.client(env.keys.flaky, { maxRetries: 2 });
    const agentId = (await fakeAgents(b))[0].id;
    const k = idemKey('retry');
    const params = createParams(agentId, { title: 'conformance retried create' });
    const before = await fakeCount(b, agentId);
    await b.fake.clearRequests();
    env.proxy.clear();
    env.proxy.failWrites(1, 503, { type: 'error', error: { type: 'overloaded_error', message: 'try again' } });
    const from = ctx.rec.records.length;
    const s = await client.beta.sessions.create(params, { headers: { 'Idempotency-Key': k } });
    const recs = attempts(ctx.rec, from, 'POST', CREATE_PATH);
    if (recs.length !== 2) fail(`the SDK sent ${recs.length} creates, want 2 (the 503 once, then the retry): statuses ${recs.map((r) => r.status).join(', ')}`);
    if (recs[0].status !== 502 || recs[0].resHeaders['x-should-retry'] !== 'true') {
      fail(`the refused create answered ${recs[0].status} x-should-retry ${recs[0].resHeaders['x-should-retry']}, want 502 true (refused before any work)`);
    }
    if (recs[1].status !== 200 || recs[1].retryCount !== 1) fail(`the retry answered ${recs[1].status} (retry count ${recs[1].retryCount})`);
    if (recs.some((r) => r.reqHeaders['idempotency-key'] !== k)) fail('the SDK\'s retry did not carry the same Idempotency-Key');
    if (recs[1].resHeaders['idempotent-replayed']) fail('the retry of a refused write was answered from the key (nothing had been done)');
    const proxied = env.proxy.seen.filter((q) => q.method === 'POST');
    if (proxied.length !== 2 || proxied[0].forwarded || !proxied[1].forwarded) fail(`the backend side saw ${proxied.length} creates (${proxied.map((q) => (q.forwarded ? 'forwarded' : q.status)).join(', ')})`);
    const creates = (await writesOf(b.fake)).filter(b.isCreate).length;
    if (creates !== 1) fail(`the fake performed ${creates} creates, want 1`);
    if ((await fakeCount(b, agentId)) !== before + 1) fail('not exactly one new session in the fake');
    const d = decodePubId('sesn_', s.id);
    if (d?.backend !== env.names.flaky) fail(`the session ${s.id} does not name backend ${env.names.flaky}`);
    // and a later repeat with the key is the same session, without the backend
    const again = await client.beta.sessions.create(params, { headers: { 'Idempotency-Key': k } });
    if (again.id !== s.id) fail(`a later repeat got ${again.id}, not ${s.id}`);
    if ((await writesOf(b.fake)).filter(b.isCreate).length !== 1) fail('the later repeat reached the backend');
  });

  add('sandbase/Idempotency-Key: a repeat while the first runs is ConflictError 409 x-should-retry true; the SDK\'s retry gets the first answer', async (ctx) => {
    const b = sbB;
    const client = ctx.client(env.keys.flaky, { maxRetries: 2 });
    const agentId = (await fakeAgents(b))[0].id;
    const k = idemKey('concurrent');
    const params = createParams(agentId, { title: 'conformance concurrent create' });
    await b.fake.clearRequests();
    env.proxy.clear();
    env.proxy.delayWrites(1, 700);
    const from = ctx.rec.records.length;
    const firstP = client.beta.sessions.create(params, { headers: { 'Idempotency-Key': k } });
    await sleep(150);
    const second = await client.beta.sessions.create(params, { headers: { 'Idempotency-Key': k } });
    const first = await firstP;
    if (second.id !== first.id) fail(`the concurrent repeat created another session: ${first.id} and ${second.id}`);
    const recs = attempts(ctx.rec, from, 'POST', CREATE_PATH);
    const conflicts = recs.filter((r) => r.status === 409);
    if (conflicts.length === 0) fail(`no 409 while the first create ran (statuses ${recs.map((r) => r.status).join(', ')})`);
    for (const c of conflicts) {
      if (c.resHeaders['x-should-retry'] !== 'true') fail(`the in-flight 409 carries x-should-retry ${c.resHeaders['x-should-retry']}, want "true"`);
      if (c.body?.error?.type !== 'conflict_error') fail(`the in-flight 409 has error.type ${c.body?.error?.type}`);
    }
    const replayed = recs.filter((r) => r.status === 200 && r.resHeaders['idempotent-replayed'] === 'true');
    if (replayed.length !== 1) fail(`${replayed.length} replayed answers, want the second request's last attempt`);
    const creates = (await writesOf(b.fake)).filter(b.isCreate).length;
    if (creates !== 1) fail(`the fake performed ${creates} creates, want 1`);
    ctx.note(`${recs.length} requests: ${recs.map((r) => r.status).join(', ')}`);
  });

  // ---- agents: what a key can create sessions with
  const checkAgentPages = (pages, limit, total, what) => {
    pages.forEach((p, i) => {
      if (p.status !== 200) fail(`${what}: page ${i + 1}: status ${p.status}`);
      const n = p.body?.data?.length ?? -1;
      if (i < pages.length - 1 && n !== limit) fail(`${what}: page ${i + 1} of ${pages.length} holds ${n} agents, not ${limit}`);
      if (i > 0 && p.query.get('page') !== pages[i - 1].body.next_page) fail(`${what}: page ${i + 1} was not requested with the previous next_page`);
    });
    if (pages[pages.length - 1].body?.next_page !== null) fail(`${what}: the last page has a non-null next_page`);
    if (pages.length !== Math.max(1, Math.ceil(total / limit))) fail(`${what}: ${pages.length} pages for ${total} agents at limit ${limit}`);
  };
  const agentPages = (rec, from) => rec.records.slice(from).filter((r) => r.method === 'GET' && r.path === '/v1/agents');

  for (const b of [...backends, { label: 'routing', multi: true }]) {
    const what = b.multi ? 'routing/a key on SandBase + AgentScope: agents.list is both fakes\' agents' : `${b.label}/agents.list (for await, limit 1) equals the fake's agents`;
    add(`${what}; agents.retrieve of each equals its listed item; an unknown agent is NotFoundError`, async (ctx) => {
      const key = b.multi ? env.keys.multi : b.key;
      const client = ctx.client(key);
      const want = b.multi ? [...(await fakeAgents(sbB)), ...(await fakeAgents(asB))] : await fakeAgents(b);
      const from = ctx.rec.records.length;
      const listed = await collect(client.beta.agents.list({ limit: 1 }));
      checkAgentPages(agentPages(ctx.rec, from), 1, want.length, 'limit 1');
      const got = listed.map((a) => a.id).sort();
      const exp = want.map((a) => a.id).sort();
      if (canon(got) !== canon(exp)) fail(`agents.list gives ${got.join(', ')}; the fake(s) hold ${exp.join(', ')}`);
      const whole = await collect(client.beta.agents.list());
      if (canon(whole.map((a) => a.id)) !== canon(listed.map((a) => a.id))) fail('agents.list in one page differs from the walk at limit 1');
      for (let i = 1; i < whole.length; i++) {
        if (rfc3339Micros(whole[i].created_at) > rfc3339Micros(whole[i - 1].created_at)) fail(`agents are not newest first at ${whole[i].id}`);
      }
      for (const a of listed) {
        const w = want.find((x) => x.id === a.id);
        if (a.version !== w.version) fail(`${a.id}: version ${a.version}, the fake says ${w.version}`);
        if (w.name !== null && a.name !== w.name) fail(`${a.id}: name ${JSON.stringify(a.name)}, the fake says ${JSON.stringify(w.name)}`);
        const r = await client.beta.agents.retrieve(a.id);
        if (canon(r) !== canon(a)) fail(`agents.retrieve(${a.id}) differs from the listed item`);
        const rv = await client.beta.agents.retrieve(a.id, { version: a.version });
        if (rv.version !== a.version || rv.id !== a.id) fail(`agents.retrieve(${a.id}, {version: ${a.version}}) answered version ${rv.version}`);
      }
      await expectReject(client.beta.agents.retrieve('agent_conformance_no_such_agent'), SDK.NotFoundError, 404, 'not_found_error', 'retrieve of an unknown agent');
      ctx.note(`${listed.length} agents`);
    });
  }

  add('routing/a key on SandBase + AgentScope creates on the backend that has the agent; an agent of neither is NotFoundError, no write', async (ctx) => {
    const client = ctx.client(env.keys.multi);
    for (const [b, other] of [
      [sbB, asB],
      [asB, sbB],
    ]) {
      const agentId = (await fakeAgents(b))[0].id;
      await Promise.all([b.fake.clearRequests(), other.fake.clearRequests()]);
      const s = await client.beta.sessions.create(createParams(agentId, { title: `conformance routed to ${b.label}` }));
      const d = decodePubId('sesn_', s.id);
      if (d?.backend !== b.name) fail(`an agent of ${b.label} was created on backend ${d?.backend}`);
      const [wb, wo] = [await writesOf(b.fake), await writesOf(other.fake)];
      if (wb.filter(b.isCreate).length !== 1 || wb.length !== 1) fail(`${b.label} saw ${show(wb)}, want one create`);
      if (wo.length) fail(`${other.label} saw writes for an agent it does not have: ${show(wo)}`);
      if (!(await fakeHas(b, d.native, agentId))) fail(`${b.label} does not hold the created session`);
      const r = await client.beta.sessions.retrieve(s.id);
      if (r.agent.id !== agentId) fail(`retrieve of the routed session: agent ${r.agent.id}`);
    }
    await Promise.all([sbB.fake.clearRequests(), asB.fake.clearRequests()]);
    const err = await expectReject(
      client.beta.sessions.create(createParams('agent_conformance_of_nobody')),
      SDK.NotFoundError,
      404,
      'not_found_error',
      'create with an agent neither backend has',
    );
    if (!err.apiMessage.includes('agent_conformance_of_nobody')) fail(`the 404 does not name the agent: ${JSON.stringify(err.apiMessage)}`);
    const w = [...(await writesOf(sbB.fake)), ...(await writesOf(asB.fake))];
    if (w.length) fail(`writes reached a backend: ${show(w)}`);
  });

  // ---- identity: the AgentScope user comes from the key, never from the client
  add('agentscope/identity: every write reaches the fake with X-User-ID from the key, never the client\'s', async (ctx) => {
    const b = asB;
    const client = ctx.client(b.key, { defaultHeaders: { 'X-User-ID': 'bob' } });
    const agentId = (await fakeAgents(b))[0].id;
    await b.fake.clearRequests();
    const s = await client.beta.sessions.create(createParams(agentId, { title: 'conformance identity' }), { headers: { 'X-User-ID': 'bob' } });
    await client.beta.sessions.update(s.id, { title: 'conformance identity, renamed' }, { headers: { 'X-User-ID': 'bob' } });
    const text = 'who am I';
    await client.beta.sessions.events.send(s.id, { events: [userMessage(text)] }, { headers: { 'X-User-ID': 'bob' } });
    await pollEvents(client, s.id, (evs) => turnEnded(evs, text), 'the run');
    const d = decodePubId('sesn_', s.id);
    await client.beta.sessions.delete(s.id, {}, { headers: { 'X-User-ID': 'bob' } });
    const seen = await b.fake.requests();
    const w = seen.filter(isWrite);
    if (w.length < 4) fail(`the fake saw only ${show(w)}; want create, update, chat and delete`);
    for (const q of seen) {
      if (canon(q.x_user_id) !== canon([env.user])) fail(`${q.method} ${uriPath(q)} reached the fake with X-User-ID ${JSON.stringify(q.x_user_id)}`);
    }
    const created = w.find((q) => b.isCreate(q));
    if (!created) fail('no create among the writes');
    // (the fake's own reads below are made after the window above was read)
    if (await fakeHas(b, d.native, agentId)) fail('the session outlived its delete');
    ctx.note(`${seen.length} requests (${w.length} writes), all as ${env.user}`);
  });

  // ---- what the SDK's types allow but AgentScope cannot hold: refused by the module with a 400
  // naming the backend, before any write
  add('agentscope/what AgentScope cannot hold (metadata, resources, vaults, budget, a null title, define_outcome) is BadRequestError 400 naming the backend; no write', async (ctx) => {
    const b = asB;
    const client = ctx.client(b.key, { maxRetries: 2 });
    const agentId = (await fakeAgents(b))[0].id;
    const id = (await listAll(client, { limit: 5 }))[0]?.id;
    if (!id) fail('fixture: no AgentScope session listed');
    const budget = { type: 'limit', max_list_cost: { amount: '5.00', currency: 'USD' } };
    const cases = [
      ['create with metadata', () => client.beta.sessions.create(createParams(agentId, { metadata: { a: '1' } })), /metadata/],
      ['create with resources', () => client.beta.sessions.create(createParams(agentId, { resources: [{ type: 'file', file_id: 'file_x' }] })), /resources/],
      ['create with vault_ids', () => client.beta.sessions.create(createParams(agentId, { vault_ids: ['vlt_x'] })), /vault/],
      ['create with a budget', () => client.beta.sessions.create(createParams(agentId, { budget })), /budget/],
      ['update with metadata', () => client.beta.sessions.update(id, { metadata: { a: '1' } }), /metadata/],
      ['update with title null', () => client.beta.sessions.update(id, { title: null }), /title/],
      ['events.send with user.define_outcome', () => client.beta.sessions.events.send(id, { events: [{ type: 'user.define_outcome', description: 'd', rubric: { type: 'text', content: 'r' } }] }), /define_outcome/],
    ];
    await b.fake.clearRequests();
    const from = ctx.rec.records.length;
    for (const [what, call, word] of cases) {
      const err = await expectReject(call(), SDK.BadRequestError, 400, 'invalid_request_error', what);
      if (!err.apiMessage.includes(`'${b.name}'`) || !word.test(err.apiMessage)) fail(`${what}: the message does not name the backend and what it cannot do: ${JSON.stringify(err.apiMessage)}`);
    }
    if (ctx.rec.records.length - from !== cases.length) fail('the SDK retried a 400');
    const w = await writesOf(b.fake);
    if (w.length) fail(`refused writes reached the fake: ${show(w)}`);
  });

  // ---- AgentScope's run lock and human-in-the-loop parks
  add('agentscope/a user.message while a run is going: ConflictError 409, not retried (x-should-retry false)', async (ctx) => {
    const b = asB;
    const client = ctx.client(b.key, { maxRetries: 2 });
    const { s } = await createChecked(ctx, b, client, { title: 'conformance run lock' });
    const long = 'keep working until interrupted [run:long]';
    await client.beta.sessions.events.send(s.id, { events: [userMessage(long)] });
    await pollStatus(client, s.id, 'running', 'the [run:long] run');
    await b.fake.clearRequests();
    const from = ctx.rec.records.length;
    const err = await expectReject(
      client.beta.sessions.events.send(s.id, { events: [userMessage('a second message while the first runs')] }),
      SDK.ConflictError,
      409,
      'conflict_error',
      'user.message while running',
    );
    const tries = attempts(ctx.rec, from, 'POST', EVENTS_PATH);
    if (tries.length !== 1) fail(`the SDK sent the refused message ${tries.length} times (maxRetries 2), want 1: x-should-retry ${err.headers?.get('x-should-retry')}`);
    const chats = (await writesOf(b.fake)).filter((q) => uriPath(q) === '/chat/');
    if (chats.length > 1) fail(`the refused message reached the fake ${chats.length} times`);
    ctx.note(chats.length ? 'refused by the fake (409 passed on)' : 'refused by the gateway before any write');
    // the first run is untouched: still running, until the interrupt ends it
    if ((await client.beta.sessions.retrieve(s.id)).status !== 'running') fail('the refused message stopped the running run');
    await b.fake.clearRequests();
    await client.beta.sessions.events.send(s.id, { events: [{ type: 'user.interrupt' }] });
    const intr = (await writesOf(b.fake)).filter((q) => /^\/sessions\/[^/]+\/interrupt$/.test(uriPath(q)));
    if (intr.length !== 1) fail(`the interrupt reached the fake as ${show(await writesOf(b.fake))}, want one POST /sessions/{id}/interrupt`);
    await pollStatus(client, s.id, 'idle', 'the interrupted run');
    const next = 'after the interrupt';
    await client.beta.sessions.events.send(s.id, { events: [userMessage(next)] });
    await pollEvents(client, s.id, (evs) => turnEnded(evs, next), 'a new run after the interrupt');
  });

  // A run parked on a tool: status_idle with requires_action naming the waiting event, then the
  // client's answer to that event resumes it to its end.
  const parkAndResume = (label, { marker, useType, answer, resultCheck }) =>
    add(`agentscope/${label}`, async (ctx) => {
      const b = asB;
      const client = ctx.client(b.key);
      const { s } = await createChecked(ctx, b, client, { title: `conformance ${label}` });
      const text = `please use the tool ${marker}`;
      await client.beta.sessions.events.send(s.id, { events: [userMessage(text)] });
      const { events, found } = await pollEvents(client, s.id, (evs) => turnEnded(evs, text, 'requires_action'), 'the parked run');
      const ids = found.idle.stop_reason.event_ids;
      if (!Array.isArray(ids) || ids.length !== 1) fail(`requires_action event_ids ${JSON.stringify(ids)}, want the one waiting tool use`);
      const waiting = events.find((e) => e.id === ids[0]);
      if (!waiting) fail(`requires_action names ${ids[0]}, which events.list does not hold`);
      if (waiting.type !== useType) fail(`requires_action names a ${waiting.type}, want ${useType}`);
      if (events.indexOf(waiting) <= found.at) fail('the waiting tool use comes before the user.message');
      if ((await client.beta.sessions.retrieve(s.id)).status !== 'idle') fail('a parked session is not idle');
      await b.fake.clearRequests();
      const sent = await client.beta.sessions.events.send(s.id, { events: [answer(ids[0])] });
      if (sent.data?.length !== 1 || sent.data[0].type !== answer(ids[0]).type) fail(`events.send answered ${JSON.stringify(sent.data).slice(0, 200)}`);
      const chats = (await writesOf(b.fake)).filter((q) => uriPath(q) === '/chat/');
      if (chats.length !== 1) fail(`the answer reached the fake as ${show(await writesOf(b.fake))}, want one POST /chat/`);
      const resumed = await pollEvents(
        client,
        s.id,
        (evs) => {
          const last = evs[evs.length - 1];
          const w = evs.findIndex((e) => e.id === ids[0]);
          return last?.type === 'session.status_idle' && last.stop_reason?.type === 'end_turn' && evs.indexOf(last) > w ? last : null;
        },
        'the resumed run',
      );
      const tail = resumed.events.slice(resumed.events.findIndex((e) => e.id === ids[0]) + 1);
      resultCheck(resumed.events, tail, ids[0]);
      if (!tail.some((e) => e.type === 'agent.message' && textOf(e).length > 0)) fail(`no agent.message after the resume: ${tail.map((e) => e.type).join(', ')}`);
      ctx.note(`${resumed.events.length} events; after the park: ${tail.map((e) => e.type).join(', ')}`);
    });

  parkAndResume('tool confirmation round trip: requires_action names the tool use, user.tool_confirmation allow resumes it, tool result, end_turn', {
    marker: '[tool:ask]',
    useType: 'agent.tool_use',
    answer: (id) => ({ type: 'user.tool_confirmation', tool_use_id: id, result: 'allow' }),
    // AgentScope's log keeps the outcome, not the confirmation (docs/fidelity-agentscope.md, "Not
    // mapped at all"): the allowed call's result, linked to the waiting tool use
    resultCheck: (all, tail, id) => {
      const res = tail.find((e) => e.type === 'agent.tool_result' && e.tool_use_id === id);
      if (!res) fail(`no agent.tool_result for ${id} after the confirmation: ${tail.map((e) => e.type).join(', ')}`);
      if (res.is_error !== false) fail(`the allowed tool's result has is_error ${res.is_error}: ${JSON.stringify(res.content).slice(0, 200)}`);
      if (all.find((e) => e.id === id)?.type !== 'agent.tool_use') fail(`the confirmed call ${id} no longer reads as agent.tool_use`);
    },
  });

  parkAndResume('external tool round trip: requires_action names the custom tool use, user.custom_tool_result resumes it, the result is listed, end_turn', {
    marker: '[tool:external]',
    useType: 'agent.custom_tool_use',
    answer: (id) => ({ type: 'user.custom_tool_result', custom_tool_use_id: id, content: [{ type: 'text', text: 'the answer is 42' }] }),
    // the log keeps the client's result as the call's tool_result, and the call, finished, reads
    // as agent.tool_use with the same id (docs/fidelity-agentscope.md, agent.custom_tool_use)
    resultCheck: (all, tail, id) => {
      const res = tail.find((e) => e.type === 'agent.tool_result' && e.tool_use_id === id);
      if (!res) fail(`no tool result for ${id} after the user.custom_tool_result: ${tail.map((e) => e.type).join(', ')}`);
      if (textOf(res) !== 'the answer is 42') fail(`the result reads ${JSON.stringify(res.content)}, the client sent "the answer is 42"`);
      if (res.is_error !== false) fail(`the result has is_error ${res.is_error}`);
      if (all.find((e) => e.id === id)?.type !== 'agent.tool_use') fail(`the finished external call ${id} reads as ${all.find((e) => e.id === id)?.type}, documented: agent.tool_use with the same id`);
    },
  });

  return S;
}
