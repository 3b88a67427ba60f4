// Retrieve of an AgentScope session whose message log has 1,000 messages (issue 14), against
// the same backend reads made straight to the backend in the same run. Not part of the tests.
//
//   direct  what a fresh retrieve asks the backend, made by this client on one keep-alive
//           connection: the agent's listing, GET /agent/, and every page of /messages
//           (200 a page, newest first, back with before=), one after the other
//   fresh   GET /v1/sessions/{id} with Cache-Control: no-cache: the gateway reads the same
//           and sums the usage over the whole log
//   memo    GET /v1/sessions/{id}: the usage comes from the memo a read of the same log left
//
// Each side runs ROUNDS rounds of N sequential requests, alternating which goes first; each
// prints the median over rounds of the mean ms per request. Output: one JSON line.
//
// Usage: node bench/usage.mjs GATEWAY_URL API_KEY BACKEND_URL USER_ID SESSION_PUBID [N] [ROUNDS]
import { decodePubId } from '../tests/conformance/src/pubid.mjs';

const [gw, key, be, user, pub, nArg = '40', roundsArg = '5'] = process.argv.slice(2);
if (!pub) {
	console.error('usage: node bench/usage.mjs GW KEY BACKEND USER PUBID [N] [ROUNDS]');
	process.exit(2);
}
const { scope: agent, native: sid } = decodePubId('sesn_', pub);
const N = Number(nArg);
const ROUNDS = Number(roundsArg);

async function get(url, headers) {
	const r = await fetch(url, { headers });
	const text = await r.text();
	if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status}: ${text.slice(0, 200)}`);
	return JSON.parse(text);
}

let messages = 0;
async function direct() {
	const h = { 'X-User-ID': user };
	await Promise.all([get(`${be}/sessions/?agent_id=${agent}`, h), get(`${be}/agent/`, h)]);
	let before = null;
	let n = 0;
	for (;;) {
		const q = `agent_id=${agent}&limit=200${before ? `&before=${before}` : ''}`;
		const page = await get(`${be}/sessions/${sid}/messages?${q}`, h);
		n += page.messages.length;
		if (!page.has_more || page.messages.length === 0) break;
		before = page.messages[0].id;
	}
	messages = n;
}
const fresh = () => get(`${gw}/v1/sessions/${pub}`, { 'x-api-key': key, 'Cache-Control': 'no-cache' });
const memo = () => get(`${gw}/v1/sessions/${pub}`, { 'x-api-key': key });

async function timeIt(fn) {
	const t0 = performance.now();
	for (let i = 0; i < N; i++) await fn();
	return (performance.now() - t0) / N;
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const sides = { direct, fresh, memo };
const res = { direct: [], fresh: [], memo: [] };
const s = await fresh();
if (s.metadata['agentscope.usage'] !== 'messages') throw new Error(`usage not summed: ${JSON.stringify(s.metadata)}`);
for (const f of Object.values(sides)) await f(); // warm connections
for (let r = 0; r < ROUNDS; r++) {
	const order = r % 2 ? ['memo', 'fresh', 'direct'] : ['direct', 'fresh', 'memo'];
	for (const k of order) res[k].push(await timeIt(sides[k]));
}
const out = {};
for (const k of Object.keys(res)) out[`${k}_ms`] = Number(median(res[k]).toFixed(3));
out.fresh_ratio = Number((median(res.fresh) / median(res.direct)).toFixed(2));
out.memo_ratio = Number((median(res.memo) / median(res.direct)).toFixed(2));
out.messages = messages;
out.usage = s.usage;
console.log(JSON.stringify(out));
