// Conformance runner (`npm test`): drives the real sessiongate binary, in front of the
// fake AgentScope backend, with the official @anthropic-ai/sdk, and validates every
// north response against JSON Schemas generated from that SDK's own types.
//
// Binaries come from $SG_BUILDDIR (default: the repository's build/ directory):
//   $SG_BUILDDIR/sessiongate, $SG_BUILDDIR/tests/fake_agentscope
// Output: one "PASS name" / "FAIL name: reason" line per scenario, then exactly one
// "N passed, N failed" line, last. Exit code 1 when anything failed.
// Everything listens on 127.0.0.1 ports chosen at run time; every process started is
// stopped (SIGTERM, then SIGKILL) before exit, also on timeouts and errors.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { generateSchemas, ROOT } from './gen-schemas.mjs';
import { loadValidators } from './validate.mjs';
import { Recorder, freePorts, sha256hex, startFake, startFaultProxy, startGateway, stopAllSync } from './harness.mjs';
import { liveScenarios, offlineScenarios } from './scenarios.mjs';
import { backendScenarios } from './backends.mjs';
import { writeScenarios } from './writes.mjs';
import { streamScenarios } from './stream.mjs';

const SCHEMAS_NAME = 'schemas: generated from the SDK types (Session, event union, list pages, ErrorResponse, Agent, send-events, deleted session)';
const RUN_BUDGET_MS = Number(process.env.SG_CONFORMANCE_BUDGET_MS || 6 * 60 * 1000);
const VERBOSE = !!process.env.SG_CONFORMANCE_VERBOSE;

// The SDK reads these from the environment; the run must not depend on the caller's.
for (const k of Object.keys(process.env)) if (k.startsWith('ANTHROPIC_')) delete process.env[k];

let passed = 0;
let failed = 0;
const started = Date.now();

function oneLine(s) {
  return String(s).replace(/\s*\n\s*/g, ' | ').slice(0, 1500);
}

function report(name, err, notes = []) {
  if (err) {
    failed++;
    console.log(`FAIL ${name}: ${oneLine(err.message ?? err)}`);
  } else {
    passed++;
    console.log(`PASS ${name}${notes.length ? ` (${notes.join('; ')})` : ''}`);
  }
}

function finish(code) {
  stopAllSync();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(code ?? (failed ? 1 : 0));
}

// Never leave children behind, whatever happens.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    failed++;
    console.log(`FAIL conformance run: interrupted by ${sig}`);
    finish(1);
  });
}
process.on('uncaughtException', (e) => {
  failed++;
  console.log(`FAIL conformance run: uncaught ${oneLine(e.stack || e)}`);
  finish(1);
});
process.on('unhandledRejection', (e) => {
  // a scenario's abandoned promise after its timeout: not fatal for the run
  if (VERBOSE) console.error(`(late rejection: ${oneLine(e?.message ?? e)})`);
});
const watchdog = setTimeout(() => {
  failed++;
  console.log(`FAIL conformance run: exceeded its budget of ${RUN_BUDGET_MS} ms`);
  finish(1);
}, RUN_BUDGET_MS);
watchdog.unref();

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

// SG_CONFORMANCE_FILTER=regex runs only the live scenarios whose name matches (a debugging aid;
// the offline checks always run).
const FILTER = process.env.SG_CONFORMANCE_FILTER ? new RegExp(process.env.SG_CONFORMANCE_FILTER) : null;

// Runs one scenario with its own Recorder; validation problems fail it.
async function runScenario(sc, base) {
  if (FILTER && base.env && !FILTER.test(sc.name)) return;
  const rec = new Recorder(base.validators);
  const notes = [];
  const ctx = {
    ...base,
    rec,
    note: (m) => notes.push(m),
    client: (apiKey, opts = {}) =>
      new Anthropic({
        apiKey,
        authToken: null,
        baseURL: base.env?.gw.url ?? 'http://127.0.0.1:9',
        maxRetries: 0,
        timeout: 15000,
        fetch: rec.fetch(),
        ...opts,
      }),
  };
  // The reference listing (every alice session, limit 100) is shared by the scenarios
  // of one run; the responses that produce it are validated in the scenario that asks.
  ctx.reference = async () => {
    if (!base.env) throw new Error('no gateway');
    if (!base.env.ref) {
      const items = [];
      for await (const s of ctx.client(base.env.keys.alice).beta.sessions.list({ limit: 100 })) items.push(s);
      base.env.ref = items;
    }
    return base.env.ref;
  };
  let err = null;
  const t0 = Date.now();
  try {
    await withTimeout(Promise.resolve().then(() => sc.run(ctx)), sc.timeoutMs ?? 60000, sc.name);
  } catch (e) {
    err = e;
  }
  if (rec.problems.length) {
    const more = rec.problems.length > 3 ? ` (+${rec.problems.length - 3} more)` : '';
    const msg = `${rec.problems.length} response(s) failed validation: ${rec.problems.slice(0, 3).join(' || ')}${more}`;
    err = new Error(err ? `${err.message}; and ${msg}` : msg);
  }
  if (VERBOSE) console.error(`  (${sc.name}: ${rec.records.length} responses, ${Date.now() - t0} ms)`);
  report(sc.name, err, notes);
}

function gatewayConfig({ port, backends, keys }) {
  return {
    listen: `127.0.0.1:${port}`,
    workers: 2,
    cursor_secret: 'conformance-cursor-secret-at-least-32-bytes!!',
    shutdown_grace_ms: 2000,
    // a browser page on this origin may call the API (the cors scenario plays one)
    cors: { origins: ['https://app.conformance.test'] },
    backends,
    keys: keys.map(([name, key, routes]) => ({ name, sha256: sha256hex(key), backends: routes })),
  };
}

// The runs inject one fault after another into the same backends to check how each is
// answered; a circuit breaker (test_overload covers it) would answer the later ones itself,
// so it is off here.
const noBreaker = { failures: 0 };

const asBackend = (name, url, timeoutMs) => ({
  name,
  mapping: 'agentscope',
  url,
  timeout_ms: timeoutMs,
  connect_timeout_ms: 1000,
  retries: 0,
  breaker: noBreaker,
  options: { timezone: 'Asia/Shanghai' },
});

// One gateway + fakes, a set of scenarios, then an orderly stop.
async function liveRun({ label, shape, bins, dir, validators, full, aliceSessions, agents }) {
  const procs = [];
  let env;
  try {
    const fake = await startFake(bins.fake, dir, `${label}-fake`, {
      generate: `${aliceSessions}:${agents}`,
      seed: 20260605,
      shape,
      // alice's oldest session has a log of 300 messages: more than one page of /messages
      extra: ['--long-turns', '150'],
    });
    procs.push(fake.proc);
    let junk = null;
    if (full) {
      junk = await startFake(bins.fake, dir, `${label}-junk`, { generate: '12:2', seed: 7, shape });
      procs.push(junk.proc);
    }
    // gateway port, and a port nobody listens on for the unreachable backend
    const [gwPort, deadPort] = await freePorts(2);
    const junkTimeoutMs = 1000;
    const keys = {
      alice: `sk-conf-alice-${label}`,
      bob: `sk-conf-bob-${label}`,
      down: `sk-conf-down-${label}`,
      junk: `sk-conf-junk-${label}`,
    };
    const backends = [asBackend('as', fake.url, 5000)];
    const keyList = [
      ['alice', keys.alice, { as: { user_id: 'alice' } }],
      ['bob', keys.bob, { as: { user_id: 'bob' } }],
    ];
    if (full) {
      backends.push(asBackend('dead', `http://127.0.0.1:${deadPort}`, 2000));
      backends.push(asBackend('junk', junk.url, junkTimeoutMs));
      keyList.push(['down', keys.down, { dead: { user_id: 'alice' } }]);
      keyList.push(['junk', keys.junk, { junk: { user_id: 'alice' } }]);
    }
    const gw = await startGateway(bins.gateway, dir, `${label}-gateway`, gatewayConfig({ port: gwPort, backends, keys: keyList }));
    procs.push(gw.proc);
    env = {
      gw,
      fake,
      junk,
      keys,
      generated: { alice: aliceSessions, bob: 5 },
      tzOffsetMin: 480,
      backendName: 'as',
      deadName: 'dead',
      junkName: 'junk',
      junkTimeoutMs,
    };
  } catch (e) {
    report(`${label}/start fake backend(s) and gateway`, e);
    for (const p of procs.reverse()) await p.stop();
    return;
  }

  for (const sc of liveScenarios(label, env, { full })) {
    await runScenario(sc, { validators, env });
  }

  // Stop: the gateway first (it must exit by itself on SIGTERM, within its grace).
  const gwExit = await env.gw.proc.stop(5000);
  if (full) {
    const ok = gwExit.code === 0 && !gwExit.signal;
    report(`${label}/gateway exits 0 on SIGTERM`, ok ? null : new Error(`${env.gw.proc.describeExit()}; log tail: ${env.gw.proc.logTail(5)}`));
  }
  for (const p of procs.reverse()) await p.stop();
}

const sandbaseBackend = (name, url, timeoutMs, apiKey) => ({
  name,
  mapping: 'sandbase',
  url,
  timeout_ms: timeoutMs,
  connect_timeout_ms: 1000,
  retries: 0,
  breaker: noBreaker,
  options: { api_key: apiKey },
});

// SandBase, Claude-native and AgentScope fakes behind one gateway: the SandBase and Claude
// scenarios, SandBase failures, and keys routed to several backends (src/backends.mjs).
async function backendsRun({ bins, dir, validators }) {
  const label = 'backends';
  const procs = [];
  let env;
  const backendKeys = { sb: 'sk-sb-conformance-backend', cl: 'sk-ant-conformance-backend', junk: 'sk-sb-conformance-junk' };
  const generated = { sb: 160, cl: 120 };
  try {
    const sbArgs = (key) => ['--dialect', 'sandbase', '--api-key', key];
    const [sb, cl, as, sbJunk] = await Promise.all([
      startFake(bins.sandbase, dir, `${label}-sandbase`, { generate: `${generated.sb}:4`, seed: 5, extra: sbArgs(backendKeys.sb) }),
      startFake(bins.sandbase, dir, `${label}-claude`, { generate: `${generated.cl}:3`, seed: 9, extra: ['--dialect', 'claude', '--api-key', backendKeys.cl] }),
      startFake(bins.fake, dir, `${label}-agentscope`, { generate: '30:2', seed: 2, shape: 'head' }),
      startFake(bins.sandbase, dir, `${label}-sandbase-junk`, { generate: '12:2', seed: 7, extra: sbArgs(backendKeys.junk) }),
    ]);
    procs.push(sb.proc, cl.proc, as.proc, sbJunk.proc);
    const [gwPort, deadPort] = await freePorts(2);
    const junkTimeoutMs = 1000;
    const anthropicVersion = '2023-06-01';
    const names = { sb: 'sb', cl: 'cl', as: 'as', sbDown: 'sbdead', sbJunk: 'sbjunk' };
    const keys = {
      sb: 'sk-conf-client-sandbase',
      cl: 'sk-conf-client-claude',
      multi: 'sk-conf-client-multi',
      asOnly: 'sk-conf-client-agentscope',
      sbDown: 'sk-conf-client-sandbase-down',
      sbJunk: 'sk-conf-client-sandbase-junk',
    };
    const backends = [
      // the backends' keys come from the environment ("$NAME"), as an operator would pass them
      sandbaseBackend(names.sb, sb.url, 5000, '$SG_CONF_SANDBASE_KEY'),
      {
        name: names.cl,
        mapping: 'claude',
        url: cl.url,
        timeout_ms: 5000,
        connect_timeout_ms: 1000,
        retries: 0,
        options: { api_key: '$SG_CONF_CLAUDE_KEY', anthropic_version: anthropicVersion },
      },
      asBackend(names.as, as.url, 5000),
      sandbaseBackend(names.sbDown, `http://127.0.0.1:${deadPort}`, 2000, 'sk-sb-nobody-listens'),
      sandbaseBackend(names.sbJunk, sbJunk.url, junkTimeoutMs, backendKeys.junk),
    ];
    const keyList = [
      ['sandbase', keys.sb, { [names.sb]: {} }],
      ['claude', keys.cl, { [names.cl]: {} }],
      ['multi', keys.multi, { [names.sb]: {}, [names.as]: { user_id: 'alice' } }],
      ['agentscope', keys.asOnly, { [names.as]: { user_id: 'alice' } }],
      ['sandbase-down', keys.sbDown, { [names.sbDown]: {} }],
      ['sandbase-junk', keys.sbJunk, { [names.sbJunk]: {} }],
    ];
    const gw = await startGateway(bins.gateway, dir, `${label}-gateway`, gatewayConfig({ port: gwPort, backends, keys: keyList }), {
      SG_CONF_SANDBASE_KEY: backendKeys.sb,
      SG_CONF_CLAUDE_KEY: backendKeys.cl,
    });
    procs.push(gw.proc);
    env = { gw, sb, cl, as, sbJunk, keys, backendKeys, names, anthropicVersion, junkTimeoutMs, generated };
  } catch (e) {
    report(`${label}/start fake backends (SandBase, Claude, AgentScope) and gateway`, e);
    for (const p of procs.reverse()) await p.stop();
    return;
  }

  for (const sc of backendScenarios(env)) {
    await runScenario(sc, { validators, env });
  }

  const gwExit = await env.gw.proc.stop(5000);
  const ok = gwExit.code === 0 && !gwExit.signal;
  report(`${label}/gateway exits 0 on SIGTERM`, ok ? null : new Error(`${env.gw.proc.describeExit()}; log tail: ${env.gw.proc.logTail(5)}`));
  for (const p of procs.reverse()) await p.stop();
}

// The write path on fresh fakes of its own (writes change the data the read runs check against):
// AgentScope (with the chat_model_config writes need), SandBase, Claude-native, and the same
// SandBase fake once more behind a fault proxy (src/harness.mjs) for refusals the fake has no
// mode for. Scenarios in src/writes.mjs.
async function writesRun({ bins, dir, validators }) {
  const label = 'writes';
  const procs = [];
  let env;
  let proxy = null;
  const backendKeys = { sb: 'sk-sb-conformance-writes', cl: 'sk-ant-conformance-writes' };
  try {
    const [as, sb, cl] = await Promise.all([
      // the fake writes new messages in its local time: the zone the gateway is told it runs in
      startFake(bins.fake, dir, `${label}-agentscope`, { generate: '6:2', seed: 11, shape: 'head', extra: ['--run-ms', '200'], env: { TZ: 'Asia/Shanghai' } }),
      startFake(bins.sandbase, dir, `${label}-sandbase`, { generate: '8:2', seed: 12, extra: ['--dialect', 'sandbase', '--api-key', backendKeys.sb] }),
      startFake(bins.sandbase, dir, `${label}-claude`, { generate: '8:2', seed: 13, extra: ['--dialect', 'claude', '--api-key', backendKeys.cl] }),
    ]);
    procs.push(as.proc, sb.proc, cl.proc);
    proxy = await startFaultProxy(sb.url);
    const [gwPort] = await freePorts(1);
    const names = { as: 'as', sb: 'sb', cl: 'cl', flaky: 'sbflaky' };
    const keys = {
      as: 'sk-conf-writes-agentscope',
      sb: 'sk-conf-writes-sandbase',
      cl: 'sk-conf-writes-claude',
      multi: 'sk-conf-writes-multi',
      flaky: 'sk-conf-writes-flaky',
    };
    const chatModelConfig = { type: 'anthropic', credential_id: 'anthropic_credential', model: 'claude-sonnet-4-5', parameters: {} };
    const backends = [
      {
        ...asBackend(names.as, as.url, 5000),
        // a long cache, so that a read after a write that came from it would show the old data
        options: { timezone: 'Asia/Shanghai', chat_model_config: chatModelConfig, cache_ms: 60000 },
      },
      sandbaseBackend(names.sb, sb.url, 5000, backendKeys.sb),
      {
        name: names.cl,
        mapping: 'claude',
        url: cl.url,
        timeout_ms: 5000,
        connect_timeout_ms: 1000,
        retries: 0,
        options: { api_key: backendKeys.cl, anthropic_version: '2023-06-01' },
      },
      sandbaseBackend(names.flaky, proxy.url, 5000, backendKeys.sb),
    ];
    const keyList = [
      ['agentscope', keys.as, { [names.as]: { user_id: 'alice' } }],
      ['sandbase', keys.sb, { [names.sb]: {} }],
      ['claude', keys.cl, { [names.cl]: {} }],
      ['multi', keys.multi, { [names.sb]: {}, [names.as]: { user_id: 'alice' } }],
      ['flaky', keys.flaky, { [names.flaky]: {} }],
    ];
    const gw = await startGateway(bins.gateway, dir, `${label}-gateway`, gatewayConfig({ port: gwPort, backends, keys: keyList }));
    procs.push(gw.proc);
    env = { gw, as, sb, cl, proxy, keys, backendKeys, names, user: 'alice', envId: 'env_conformance_writes', chatModelConfig };
  } catch (e) {
    report(`${label}/start fake backends (AgentScope, SandBase, Claude) and gateway`, e);
    for (const p of procs.reverse()) await p.stop();
    if (proxy) await proxy.stop();
    return;
  }

  for (const sc of writeScenarios(env)) {
    await runScenario(sc, { validators, env });
  }

  const gwExit = await env.gw.proc.stop(5000);
  const ok = gwExit.code === 0 && !gwExit.signal;
  report(`${label}/gateway exits 0 on SIGTERM`, ok ? null : new Error(`${env.gw.proc.describeExit()}; log tail: ${env.gw.proc.logTail(5)}`));
  for (const p of procs.reverse()) await p.stop();
  await proxy.stop();
}

// The live stream on fresh fakes of its own (runs change their data): AgentScope, SandBase,
// Claude-native, and one more AgentScope fake that a scenario kills mid-stream. Scenarios in
// src/stream.mjs.
async function streamRun({ bins, dir, validators }) {
  const label = 'stream';
  const procs = [];
  let env;
  const backendKeys = { sb: 'sk-sb-conformance-stream', cl: 'sk-ant-conformance-stream' };
  try {
    const asOpts = { generate: '4:2', seed: 21, shape: 'head', extra: ['--run-ms', '150', '--stream-heartbeat-ms', '1000'], env: { TZ: 'Asia/Shanghai' } };
    const [as, askill, sb, cl] = await Promise.all([
      startFake(bins.fake, dir, `${label}-agentscope`, asOpts),
      startFake(bins.fake, dir, `${label}-agentscope-killed`, asOpts),
      startFake(bins.sandbase, dir, `${label}-sandbase`, { generate: '4:2', seed: 22, extra: ['--dialect', 'sandbase', '--api-key', backendKeys.sb, '--stream-heartbeat-ms', '1000'] }),
      startFake(bins.sandbase, dir, `${label}-claude`, { generate: '4:2', seed: 23, extra: ['--dialect', 'claude', '--api-key', backendKeys.cl, '--stream-heartbeat-ms', '1000'] }),
    ]);
    procs.push(as.proc, askill.proc, sb.proc, cl.proc);
    const [gwPort] = await freePorts(1);
    const chatModelConfig = { type: 'anthropic', credential_id: 'anthropic_credential', model: 'claude-sonnet-4-5', parameters: {} };
    const asB = (name, url) => ({ ...asBackend(name, url, 5000), options: { timezone: 'Asia/Shanghai', chat_model_config: chatModelConfig } });
    const backends = [
      asB('as', as.url),
      asB('askill', askill.url),
      sandbaseBackend('sb', sb.url, 5000, backendKeys.sb),
      { name: 'cl', mapping: 'claude', url: cl.url, timeout_ms: 5000, connect_timeout_ms: 1000, retries: 0, options: { api_key: backendKeys.cl, anthropic_version: '2023-06-01' } },
    ];
    const keys = { as: 'sk-conf-stream-as', askill: 'sk-conf-stream-askill', sb: 'sk-conf-stream-sb', cl: 'sk-conf-stream-cl' };
    const keyList = [
      ['agentscope', keys.as, { as: { user_id: 'alice' } }],
      ['agentscope-killed', keys.askill, { askill: { user_id: 'alice' } }],
      ['sandbase', keys.sb, { sb: {} }],
      ['claude', keys.cl, { cl: {} }],
    ];
    const config = { ...gatewayConfig({ port: gwPort, backends, keys: keyList }), streams: { heartbeat_ms: 1000, reconnect_ms: 2000 } };
    const gw = await startGateway(bins.gateway, dir, `${label}-gateway`, config);
    procs.push(gw.proc);
    // each key's first agent, as the gateway lists it
    const agents = {};
    for (const [k, key] of Object.entries(keys)) {
      const r = await fetch(`${gw.url}/v1/agents`, { headers: { 'x-api-key': key } });
      const j = await r.json();
      if (!r.ok || !j.data?.length) throw new Error(`GET /v1/agents for ${k}: ${r.status} ${JSON.stringify(j).slice(0, 200)}`);
      agents[k] = j.data[0].id;
    }
    env = { gw, as, askill, sb, cl, keys, agents };
  } catch (e) {
    report(`${label}/start fake backends (AgentScope ×2, SandBase, Claude) and gateway`, e);
    for (const p of procs.reverse()) await p.stop();
    return;
  }

  for (const sc of streamScenarios(env)) {
    await runScenario(sc, { validators, env });
  }

  const gwExit = await env.gw.proc.stop(5000);
  const ok = gwExit.code === 0 && !gwExit.signal;
  report(`${label}/gateway exits 0 on SIGTERM with streams open`, ok ? null : new Error(`${env.gw.proc.describeExit()}; log tail: ${env.gw.proc.logTail(5)}`));
  for (const p of procs.reverse()) await p.stop();
}

async function main() {
  const builddir = path.resolve(process.env.SG_BUILDDIR || path.join(ROOT, '..', '..', 'build'));
  const bins = {
    gateway: path.join(builddir, 'sessiongate'),
    fake: path.join(builddir, 'tests', 'fake_agentscope'),
    sandbase: path.join(builddir, 'tests', 'fake_sandbase'),
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-conformance-'));

  let validators;
  try {
    const notes = [];
    generateSchemas({ log: (m) => notes.push(m.replace(/^schemas: /, '')) });
    validators = loadValidators();
    report(SCHEMAS_NAME, null, notes);
  } catch (e) {
    report(SCHEMAS_NAME, e);
    finish(1);
  }

  for (const sc of offlineScenarios()) await runScenario(sc, { validators, env: null });

  const missing = Object.values(bins).filter((b) => !fs.existsSync(b));
  if (missing.length) {
    report('binaries: present', new Error(`not found: ${missing.join(', ')} (build first, or set SG_BUILDDIR)`));
    finish(1);
  }

  // SG_CONFORMANCE_ONLY=head,v2.0.1,backends,writes,stream (comma list) runs only those live runs.
  const only = process.env.SG_CONFORMANCE_ONLY ? new Set(process.env.SG_CONFORMANCE_ONLY.split(',').map((x) => x.trim())) : null;
  const wanted = (label) => !only || only.has(label);
  if (wanted('head')) await liveRun({ label: 'head', shape: 'head', bins, dir, validators, full: true, aliceSessions: 300, agents: 6 });
  if (wanted('v2.0.1')) await liveRun({ label: 'v2.0.1', shape: 'v2.0.1', bins, dir, validators, full: false, aliceSessions: 90, agents: 4 });
  if (wanted('backends')) await backendsRun({ bins, dir, validators });
  if (wanted('writes')) await writesRun({ bins, dir, validators });
  if (wanted('stream')) await streamRun({ bins, dir, validators });

  if (failed === 0) fs.rmSync(dir, { recursive: true, force: true });
  else console.log(`(logs and configurations kept in ${dir}; run took ${Math.round((Date.now() - started) / 1000)} s)`);
}

main().then(
  () => finish(),
  (e) => {
    failed++;
    console.log(`FAIL conformance run: ${oneLine(e.stack || e)}`);
    finish(1);
  },
);
