// Process and HTTP plumbing for the conformance run: starting the fake backend and
// the gateway on loopback ports, stopping them, and recording + validating every
// north response the scenarios receive (through the SDK's `fetch` option or raw).

import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { check } from './validate.mjs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- ports

// A port that was free a moment ago (bind port 0, read it, close). Several at once
// are held open together so they differ from each other.
export async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      await new Promise((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', resolve);
      });
      servers.push(s);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

// ---------------------------------------------------------------- processes

const live = new Set(); // every child still running, so an abort can stop them all

export function stopAllSync() {
  for (const p of live) {
    try {
      p.child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
}

class Proc {
  constructor(name, bin, args, logFile, env = undefined) {
    this.name = name;
    this.logFile = logFile;
    const out = fs.openSync(logFile, 'a');
    this.child = spawn(bin, args, { stdio: ['ignore', out, out], ...(env ? { env: { ...process.env, ...env } } : {}) });
    fs.closeSync(out);
    this.exited = null; // {code, signal} once exited
    this.exitPromise = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exited = { code, signal };
        live.delete(this);
        resolve(this.exited);
      });
      this.child.once('error', (err) => {
        this.exited = { code: null, signal: null, error: err };
        live.delete(this);
        resolve(this.exited);
      });
    });
    live.add(this);
  }

  logTail(lines = 15) {
    try {
      const all = fs.readFileSync(this.logFile, 'utf8').split('\n').filter(Boolean);
      return all.slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  describeExit() {
    const e = this.exited;
    if (!e) return 'running';
    if (e.error) return `could not start: ${e.error.message}`;
    return e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`;
  }

  // SIGTERM, then SIGKILL if it has not exited within graceMs. Resolves with the exit.
  async stop(graceMs = 4000) {
    if (this.exited) return this.exited;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => {
      if (!this.exited) this.child.kill('SIGKILL');
    }, graceMs);
    const r = await this.exitPromise;
    clearTimeout(t);
    return r;
  }
}

async function waitFor(what, proc, fn, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let lastErr = null;
  while (Date.now() < deadline) {
    if (proc.exited) {
      throw new Error(`${proc.name} ${proc.describeExit()} before ${what}; log tail:\n${proc.logTail()}`);
    }
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    await sleep(50);
  }
  throw new Error(
    `${proc.name}: timed out after ${timeoutMs} ms waiting for ${what}` +
      (lastErr ? ` (${lastErr.message})` : '') +
      `; log tail:\n${proc.logTail()}`,
  );
}

// fake_agentscope --port 0 --port-file F --generate SPEC [--seed S] [--shape X] --quiet
// (fake_sandbase too: its --dialect and --api-key go in `extra`)
// env: extra environment variables (TZ: the zone of the fake's naive local timestamps).
export async function startFake(bin, dir, name, { generate, seed, shape, extra = [], env = undefined }) {
  const portFile = path.join(dir, `${name}.port`);
  const args = ['--port', '0', '--port-file', portFile, '--generate', generate, '--quiet'];
  if (seed !== undefined) args.push('--seed', String(seed));
  if (shape) args.push('--shape', shape);
  args.push(...extra);
  const proc = new Proc(name, bin, args, path.join(dir, `${name}.log`), env);
  const port = await waitFor('its port file', proc, () => {
    const t = fs.existsSync(portFile) ? fs.readFileSync(portFile, 'utf8').trim() : '';
    return /^\d+$/.test(t) && Number(t) > 0 ? Number(t) : null;
  }, 10000);
  const url = `http://127.0.0.1:${port}`;
  await waitFor('HTTP', proc, async () => (await fetch(`${url}/__fake/requests`)).ok, 10000);
  return new Fake(proc, url);
}

export class Fake {
  constructor(proc, url) {
    this.proc = proc;
    this.url = url;
  }
  async setMode(mode, delayMs = 0) {
    const r = await fetch(`${this.url}/__fake/mode?mode=${encodeURIComponent(mode)}&delay_ms=${delayMs}`, {
      method: 'POST',
    });
    if (!r.ok) throw new Error(`fake ${this.proc.name}: POST /__fake/mode?mode=${mode} answered ${r.status}`);
  }
  async requests() {
    const r = await fetch(`${this.url}/__fake/requests`);
    if (!r.ok) throw new Error(`fake ${this.proc.name}: GET /__fake/requests answered ${r.status}`);
    return r.json();
  }
  async clearRequests() {
    const r = await fetch(`${this.url}/__fake/requests`, { method: 'DELETE' });
    if (!r.ok) throw new Error(`fake ${this.proc.name}: DELETE /__fake/requests answered ${r.status}`);
  }
  // The backend's own data, in its own dialect, as a given user sees it.
  async get(pathAndQuery, userId) {
    return this.getWith(pathAndQuery, { 'X-User-ID': userId });
  }
  // The same, with the caller's headers (fake_sandbase: its own key, the beta header).
  async getWith(pathAndQuery, headers) {
    const r = await fetch(`${this.url}${pathAndQuery}`, { headers });
    const text = await r.text();
    if (!r.ok) throw new Error(`fake ${this.proc.name}: GET ${pathAndQuery} answered ${r.status}: ${text.slice(0, 200)}`);
    return JSON.parse(text);
  }
  // POST /__fake/mode with the fake's own parameters (fake_agentscope: run_ms).
  async control(params) {
    const q = new URLSearchParams(params).toString();
    const r = await fetch(`${this.url}/__fake/mode?${q}`, { method: 'POST' });
    if (!r.ok) throw new Error(`fake ${this.proc.name}: POST /__fake/mode?${q} answered ${r.status}: ${(await r.text()).slice(0, 200)}`);
  }
  // fake_sandbase only: SandBase event pages of n events (0 = everything at once).
  async setEventsPage(n) {
    const r = await fetch(`${this.url}/__fake/mode?events_page=${n}`, { method: 'POST' });
    if (!r.ok) throw new Error(`fake ${this.proc.name}: POST /__fake/mode?events_page=${n} answered ${r.status}`);
  }
  stop() {
    return this.proc.stop();
  }
}

// ---------------------------------------------------------------- fault proxy

// A loopback HTTP proxy in front of one fake, for failures the fakes have no mode for: the next
// n writes (any method but GET/HEAD) answered with a given status without reaching the fake
// (a backend that refused them before any work, e.g. 503), or held back delayMs before they are
// forwarded. Reads always pass. `seen` lists every request it took, in order.
export async function startFaultProxy(targetUrl) {
  const target = new URL(targetUrl);
  const state = { seen: [], fail: [], delay: [] };
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const write = req.method !== 'GET' && req.method !== 'HEAD';
      const entry = { method: req.method, url: req.url, headers: { ...req.headers }, forwarded: true };
      state.seen.push(entry);
      if (write && state.fail.length) {
        const f = state.fail.shift();
        entry.forwarded = false;
        entry.status = f.status;
        res.writeHead(f.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(f.body));
        return;
      }
      if (write && state.delay.length) await sleep(state.delay.shift());
      const headers = { ...req.headers, host: target.host };
      const up = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
        (ur) => {
          entry.status = ur.statusCode;
          res.writeHead(ur.statusCode, ur.headers);
          ur.pipe(res);
        },
      );
      // the fake dropped the connection: so does the proxy, never an answer of its own
      up.on('error', () => req.socket.destroy());
      up.end(body);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    get seen() {
      return state.seen;
    },
    clear() {
      state.seen.length = 0;
      state.fail.length = 0;
      state.delay.length = 0;
    },
    failWrites(n, status, body) {
      for (let i = 0; i < n; i++) state.fail.push({ status, body });
    },
    delayWrites(n, ms) {
      for (let i = 0; i < n; i++) state.delay.push(ms);
    },
    stop() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

export function sha256hex(s) {
  return crypto.createHash('sha256').update(s).digest('hex');
}

// env: extra environment variables for the gateway (e.g. the "$NAME" backend keys).
export async function startGateway(bin, dir, name, config, env = undefined) {
  const cfgFile = path.join(dir, `${name}.json`);
  fs.writeFileSync(cfgFile, JSON.stringify(config, null, 2));
  const proc = new Proc(name, bin, ['--config', cfgFile], path.join(dir, `${name}.log`), env);
  const url = `http://${config.listen}`;
  await waitFor('GET /healthz', proc, async () => (await fetch(`${url}/healthz`)).status === 200, 15000);
  return { proc, url, stop: () => proc.stop() };
}

// ---------------------------------------------------------------- capture

const RFC3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;

// µs since the epoch of an RFC 3339 timestamp, or NaN.
export function rfc3339Micros(s) {
  const m = typeof s === 'string' ? RFC3339.exec(s) : null;
  if (!m) return NaN;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return NaN;
  const frac = m[2] ? Number((m[2].slice(1) + '000000').slice(0, 6)) : 0;
  return ms * 1000 + frac;
}

// Which schema a north response body must satisfy, from its method, path and status.
export function schemaKindFor(method, pathname, status) {
  if (pathname === '/healthz') return null; // not a north API response
  if (status >= 400) return 'error';
  if (method === 'GET' && pathname === '/v1/sessions') return 'sessionList';
  if (method === 'GET' && /^\/v1\/sessions\/[^/]+$/.test(pathname)) return 'session';
  if (method === 'GET' && /^\/v1\/sessions\/[^/]+\/events$/.test(pathname)) return 'eventList';
  // the write path: create, update and archive answer the Session; delete its deleted marker
  if (method === 'POST' && pathname === '/v1/sessions') return 'session';
  if (method === 'POST' && /^\/v1\/sessions\/[^/]+$/.test(pathname)) return 'session';
  if (method === 'POST' && /^\/v1\/sessions\/[^/]+\/archive$/.test(pathname)) return 'session';
  if (method === 'DELETE' && /^\/v1\/sessions\/[^/]+$/.test(pathname)) return 'deletedSession';
  if (method === 'POST' && /^\/v1\/sessions\/[^/]+\/events$/.test(pathname)) return 'sendEvents';
  // the agents a key can use (read-only)
  if (method === 'GET' && pathname === '/v1/agents') return 'agentList';
  if (method === 'GET' && /^\/v1\/agents\/[^/]+$/.test(pathname)) return 'agent';
  return 'unknown';
}

function headerObject(h) {
  const o = {};
  for (const [k, v] of h.entries()) o[k.toLowerCase()] = v;
  return o;
}

// Extra checks the SDK's types cannot express (they type timestamps as `string`).
function checkTimestamps(session, where) {
  const bad = [];
  for (const k of ['created_at', 'updated_at']) {
    if (Number.isNaN(rfc3339Micros(session?.[k]))) bad.push(`${where}.${k} ${JSON.stringify(session?.[k])} is not RFC 3339`);
  }
  if (session && session.archived_at !== null && session.archived_at !== undefined && Number.isNaN(rfc3339Micros(session.archived_at))) {
    bad.push(`${where}.archived_at is not RFC 3339`);
  }
  return bad;
}

// One Recorder per scenario: every response it sees is recorded and validated; the
// problems fail that scenario.
export class Recorder {
  constructor(validators) {
    this.validators = validators;
    this.records = [];
    this.problems = [];
  }

  // Validates one response record (status, headers, text) as a north response.
  inspect(rec) {
    const where = `${rec.method} ${rec.path}${rec.search} → ${rec.status}`;
    const kind = schemaKindFor(rec.method, rec.path, rec.status);
    rec.kind = kind;
    if (kind === null) return;
    const problems = [];
    let body;
    try {
      body = JSON.parse(rec.text);
    } catch {
      problems.push(`body is not JSON: ${JSON.stringify(rec.text.slice(0, 120))}`);
    }
    rec.body = body;
    const ct = rec.resHeaders['content-type'] || '';
    if (!/^application\/json\b/i.test(ct)) problems.push(`content-type is ${JSON.stringify(ct)}, not application/json`);
    const rid = rec.resHeaders['request-id'];
    if (!rid) problems.push('no request-id header');
    if (body !== undefined) {
      if (kind === 'unknown') {
        problems.push('no schema for this endpoint');
      } else {
        const msg = check(this.validators, kind, body);
        if (msg) problems.push(msg);
      }
      if (kind === 'error' && body && typeof body === 'object' && rid && body.request_id !== rid) {
        problems.push(`body request_id ${JSON.stringify(body.request_id)} differs from the request-id header ${JSON.stringify(rid)}`);
      }
      if (kind === 'error' && body?.error?.type === 'conflict_error' && rec.status !== 409) {
        problems.push(`error.type conflict_error on a ${rec.status} (the SDK's conflict object answers 409s)`);
      }
      if (kind === 'session') problems.push(...checkTimestamps(body, 'session'));
      if (kind === 'sessionList' && Array.isArray(body?.data)) {
        body.data.forEach((s, i) => problems.push(...checkTimestamps(s, `data[${i}]`)));
      }
      if (kind === 'agent') problems.push(...checkTimestamps(body, 'agent'));
      if (kind === 'agentList' && Array.isArray(body?.data)) {
        body.data.forEach((a, i) => problems.push(...checkTimestamps(a, `data[${i}]`)));
      }
      if ((kind === 'eventList' || kind === 'sendEvents') && Array.isArray(body?.data)) {
        body.data.forEach((e, i) => {
          if (e && e.processed_at != null && Number.isNaN(rfc3339Micros(e.processed_at))) {
            problems.push(`data[${i}].processed_at ${JSON.stringify(e.processed_at)} is not RFC 3339`);
          }
        });
      }
    }
    for (const p of problems) this.problems.push(`${where}: ${p}`);
  }

  // Validates one event a stream yielded against the SDK's event union.
  checkEvent(ev, where) {
    const msg = check(this.validators, 'event', ev);
    if (msg) this.problems.push(`${where}: ${msg}`);
    if (ev && ev.processed_at != null && Number.isNaN(rfc3339Micros(ev.processed_at))) {
      this.problems.push(`${where}: processed_at ${JSON.stringify(ev.processed_at)} is not RFC 3339`);
    }
  }

  // A fetch for the SDK's `fetch` client option: reads the whole body, records and
  // validates it, and hands the SDK an identical Response.
  fetch() {
    return async (input, init = {}) => {
      const url = new URL(typeof input === 'string' ? input : input.url ?? String(input));
      const reqHeaders = headerObject(new Headers(init.headers || {}));
      const method = (init.method || 'GET').toUpperCase();
      const started = Date.now();
      const res = await globalThis.fetch(input, init);
      if (res.ok && /^text\/event-stream\b/i.test(res.headers.get('content-type') || '')) {
        // a live stream: recorded without its body, which the SDK reads as it arrives (the
        // scenario checks each yielded event with checkEvent)
        const rec = { via: 'sdk', method, path: url.pathname, search: url.search, query: url.searchParams, reqHeaders, retryCount: Number(reqHeaders['x-stainless-retry-count'] ?? 0), status: res.status, resHeaders: headerObject(res.headers), text: '', stream: true, ms: Date.now() - started };
        this.records.push(rec);
        if (!rec.resHeaders['request-id']) this.problems.push(`${method} ${url.pathname} → ${res.status}: no request-id header`);
        return res;
      }
      const text = await res.text();
      const rec = {
        via: 'sdk',
        method,
        path: url.pathname,
        search: url.search,
        query: url.searchParams,
        reqHeaders,
        retryCount: Number(reqHeaders['x-stainless-retry-count'] ?? 0),
        status: res.status,
        resHeaders: headerObject(res.headers),
        text,
        ms: Date.now() - started,
      };
      this.records.push(rec);
      this.inspect(rec);
      const body = res.status === 204 || res.status === 304 ? null : text;
      return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
    };
  }

  // A raw HTTP request (as curl would send it). Returns the record, with .body parsed.
  async raw(baseURL, pathAndQuery, { method = 'GET', headers = {}, body = undefined, timeoutMs = 15000 } = {}) {
    const url = new URL(baseURL + pathAndQuery);
    const started = Date.now();
    const res = await globalThis.fetch(url, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    const rec = {
      via: 'raw',
      method,
      path: url.pathname,
      search: url.search,
      query: url.searchParams,
      reqHeaders: headers,
      retryCount: 0,
      status: res.status,
      resHeaders: headerObject(res.headers),
      text,
      ms: Date.now() - started,
    };
    this.records.push(rec);
    this.inspect(rec);
    return rec;
  }
}
