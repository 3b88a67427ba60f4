// Conformance scenarios for the live event stream (GET /v1/sessions/{id}/events/stream),
// through the official SDK's own `for await` over client.beta.sessions.events.stream() and its
// SessionToolRunner, against fresh fakes of their own (run.mjs `stream`). Same rules as
// scenarios.mjs: each scenario is {name, timeoutMs, run(ctx)} and throws to fail; every event a
// stream yields is validated against the SDK's event union (ctx.rec.checkEvent), every other
// north response as usual.
//
// Ground truth: what events.list gives afterwards (streamed ids must be listed ids), the fakes'
// own counters of open upstream streams (GET /__fake/mode: streams_open, streams_total).

import { sleep } from './harness.mjs';
import { fail } from './scenarios.mjs';

async function collect(iter) {
  const out = [];
  for await (const x of iter) out.push(x);
  return out;
}

const textOf = (ev) => (Array.isArray(ev?.content) ? ev.content.filter((b) => b.type === 'text').map((b) => b.text).join('') : '');
const show = (evs) => evs.map((e) => e.type + (e.stop_reason ? `(${e.stop_reason.type})` : '')).join(', ') || 'nothing';

// The fake's open and total upstream streams.
async function fakeStreams(fake) {
  const r = await fetch(`${fake.url}/__fake/mode`);
  if (!r.ok) fail(`fake ${fake.proc.name}: GET /__fake/mode answered ${r.status}`);
  const j = await r.json();
  return { open: j.streams_open, total: j.streams_total };
}

async function waitOpen(fake, want, what, ms = 3000) {
  let s;
  for (let t = 0; t < ms; t += 50) {
    s = await fakeStreams(fake);
    if (s.open === want) return s;
    await sleep(50);
  }
  fail(`${what}: the backend holds ${s.open} open stream(s), want ${want}`);
}

// Reads `stream` (an SDK Stream) until `until(ev)` (included) or timeoutMs; validates every
// event. Returns the events. Breaking out of the for-await aborts the request, as a client does.
async function readUntil(ctx, stream, until, what, timeoutMs = 10000) {
  const out = [];
  const timer = setTimeout(() => stream.controller.abort(), timeoutMs);
  try {
    for await (const ev of stream) {
      ctx.rec.checkEvent(ev, `${what}: streamed event ${out.length}`);
      out.push(ev);
      if (until(ev)) break;
    }
  } catch (e) {
    if (!stream.controller.signal.aborted) throw e;
  } finally {
    clearTimeout(timer);
  }
  if (!out.length || !until(out[out.length - 1])) fail(`${what}: the stream did not get there within ${timeoutMs} ms; it gave ${show(out)}`);
  return out;
}

const idleEnd = (ev) => ev.type === 'session.status_idle' && ev.stop_reason?.type === 'end_turn';

function noDuplicates(evs, what) {
  const seen = new Set();
  for (const e of evs) {
    if (!e.id) fail(`${what}: a streamed ${e.type} has no id`);
    if (seen.has(e.id)) fail(`${what}: ${e.type} ${e.id} streamed twice`);
    seen.add(e.id);
  }
}

// Every streamed event is in events.list under the same id, with the same type and payload
// (processed_at aside: the stream dates an event when the backend reported it, the history
// when it stored it).
function sameAsListed(streamed, listed, what, { exempt = [] } = {}) {
  const byId = new Map(listed.map((e) => [e.id, e]));
  for (const e of streamed) {
    if (exempt.includes(e.type)) continue;
    const l = byId.get(e.id);
    if (!l) fail(`${what}: streamed ${e.type} ${e.id} is not in events.list (${show(listed)})`);
    const strip = ({ processed_at, ...rest }) => rest;
    if (JSON.stringify(strip(l)) !== JSON.stringify(strip(e))) {
      fail(`${what}: streamed ${e.id} differs from the listed event: ${JSON.stringify(e).slice(0, 300)} vs ${JSON.stringify(l).slice(0, 300)}`);
    }
  }
}

// env: {gw, as, sb, cl, askill, keys: {as, sb, cl, askill}, agents: {as, sb, cl}}
export function streamScenarios(env) {
  const S = [];
  const add = (name, run, timeoutMs = 60000) => S.push({ name: `stream/${name}`, run, timeoutMs });
  const backends = [
    { label: 'agentscope', fake: env.as, key: env.keys.as, agent: () => env.agents.as },
    { label: 'sandbase', fake: env.sb, key: env.keys.sb, agent: () => env.agents.sb },
    { label: 'claude', fake: env.cl, key: env.keys.cl, agent: () => env.agents.cl },
  ];

  for (const b of backends) {
    add(`${b.label}/for await sees the run a message starts, with the ids and payloads events.list gives; breaking out closes the upstream stream`, async (ctx) => {
      const client = ctx.client(b.key);
      const s = await client.beta.sessions.create({ agent: b.agent(), environment_id: 'env_conformance_stream', title: 'stream' });
      const before = await fakeStreams(b.fake);
      const stream = await client.beta.sessions.events.stream(s.id);
      await waitOpen(b.fake, before.open + 1, 'after connecting');
      const text = `what is in the notes? [tool:auto] ${b.label}`;
      await client.beta.sessions.events.send(s.id, { events: [{ type: 'user.message', content: [{ type: 'text', text }] }] });
      const evs = await readUntil(ctx, stream, idleEnd, 'the run');
      for (const t of ['session.status_running', 'agent.message', 'session.status_idle']) {
        if (!evs.some((e) => e.type === t)) fail(`no ${t} on the stream: ${show(evs)}`);
      }
      noDuplicates(evs, 'the run');
      if (!evs.some((e) => e.type === 'user.message' && textOf(e) === text)) {
        fail(`the user.message is not echoed on the ${b.label} stream: ${show(evs)}`);
      }
      await waitOpen(b.fake, before.open, 'after the client broke out');
      const listed = await collect(client.beta.sessions.events.list(s.id));
      sameAsListed(evs, listed, 'streamed vs listed');
      ctx.note(`${evs.length} events streamed: ${show(evs)}`);
    });

    add(`${b.label}/nothing from before the connect is streamed`, async (ctx) => {
      const client = ctx.client(b.key);
      const s = await client.beta.sessions.create({ agent: b.agent(), environment_id: 'env_conformance_stream', title: 'stream-late' });
      await client.beta.sessions.events.send(s.id, { events: [{ type: 'user.message', content: [{ type: 'text', text: 'first' }] }] });
      let old = [];
      for (let i = 0; i < 100; i++) {
        old = await collect(client.beta.sessions.events.list(s.id));
        if (old.length && idleEnd(old[old.length - 1])) break;
        await sleep(50);
      }
      if (!old.length || !idleEnd(old[old.length - 1])) fail(`the first run did not end: ${show(old)}`);
      const stream = await client.beta.sessions.events.stream(s.id);
      await client.beta.sessions.events.send(s.id, { events: [{ type: 'user.message', content: [{ type: 'text', text: 'second' }] }] });
      const evs = await readUntil(ctx, stream, idleEnd, 'the second run');
      const oldIds = new Set(old.map((e) => e.id));
      const replayed = evs.filter((e) => oldIds.has(e.id));
      if (replayed.length) fail(`events from before the connect were streamed: ${show(replayed)}`);
      if (evs.some((e) => e.type === 'user.message' && textOf(e) === 'first')) fail('the first message was streamed');
    });
  }

  add('agentscope/the SDK\'s events.toolRunner completes a custom-tool round trip', async (ctx) => {
    const client = ctx.client(env.keys.as);
    const s = await client.beta.sessions.create({ agent: env.agents.as, environment_id: 'env_conformance_stream', title: 'tool runner' });
    const ran = [];
    const tool = {
      name: 'CreateTicket',
      description: 'opens a ticket',
      input_schema: { type: 'object', properties: { title: { type: 'string' }, priority: { type: 'string' } } },
      parse: (x) => x,
      run: async (input) => {
        ran.push(input);
        return 'TICKET-42 opened';
      },
    };
    const runner = client.beta.sessions.events.toolRunner(s.id, { tools: [tool], maxIdleMs: 800 });
    const calls = [];
    const done = (async () => {
      for await (const call of runner) calls.push(call);
    })();
    await sleep(300);
    await client.beta.sessions.events.send(s.id, { events: [{ type: 'user.message', content: [{ type: 'text', text: 'open a follow-up ticket [tool:external]' }] }] });
    await Promise.race([done, sleep(20000).then(() => fail(`the runner did not finish; calls: ${calls.length}`))]);
    if (calls.length !== 1) fail(`the runner dispatched ${calls.length} calls, want 1`);
    const c = calls[0];
    if (c.name !== 'CreateTicket' || !c.posted || c.isError) fail(`call: ${JSON.stringify({ name: c.name, posted: c.posted, isError: c.isError })}`);
    if (c.event.type !== 'agent.custom_tool_use') fail(`the call came as ${c.event.type}, want agent.custom_tool_use`);
    if (ran.length !== 1 || ran[0].title !== 'Follow up') fail(`the tool ran with ${JSON.stringify(ran)}`);
    const listed = await collect(client.beta.sessions.events.list(s.id));
    const last = listed[listed.length - 1];
    if (!idleEnd(last)) fail(`the session did not end its turn: ${show(listed)}`);
    const result = listed.find((e) => e.type === 'agent.tool_result' && e.tool_use_id === c.toolUseId);
    if (!result || !textOf(result).includes('TICKET-42')) fail(`no tool result with the tool's output for ${c.toolUseId}: ${show(listed)}`);
  });

  add('agentscope/the backend killed mid-stream: the SDK gets an APIError from event: error, and the stream ends', async (ctx) => {
    const client = ctx.client(env.keys.askill);
    const s = await client.beta.sessions.create({ agent: env.agents.askill, environment_id: 'env_conformance_stream', title: 'kill' });
    const stream = await client.beta.sessions.events.stream(s.id);
    await waitOpen(env.askill, 1, 'after connecting');
    const t0 = Date.now();
    env.askill.proc.child.kill('SIGKILL');
    let err = null;
    try {
      for await (const ev of stream) ctx.rec.checkEvent(ev, 'streamed');
    } catch (e) {
      err = e;
    }
    if (!err) fail('the stream ended without an error');
    if (err.constructor.name !== 'APIError' && !(err instanceof Error && err.status === undefined && err.error)) fail(`threw ${err.constructor.name}: ${err.message}`);
    if (err.error?.error?.type !== 'api_error' && err.error?.type !== 'api_error') fail(`error body ${JSON.stringify(err.error)}`);
    ctx.note(`event: error after ${Date.now() - t0} ms: ${err.message.slice(0, 160)}`);
  });

  return S;
}
