// Saves a fake AgentScope service's own answers as static files, so that nginx can serve
// them at static-file speed for bench/read.sh. Not part of the test suite.
//
// Usage: node bench/readdata.mjs FAKE_URL OUTDIR [MESSAGES]
//
// Writes OUTDIR/agent.json (GET /agent/), OUTDIR/sessions-<agent>.json (GET
// /sessions/?agent_id=<agent>) for every agent of user alice, and, with MESSAGES, first
// grows one idle session's durable log to exactly MESSAGES messages by chatting with the
// fake (POST /chat/ with a [tool:auto] prompt: each run leaves the user's message and one
// assistant message with thinking, text, a tool call and its result), then saves its log
// as OUTDIR/messages-<session>.json (GET /sessions/<id>/messages?agent_id=…&limit=200,
// the request the gateway makes). The listing is saved after the chat, so it matches.
//
// Prints one JSON line: {agent, uris: {uri: file}, bytes: {file: n}, session, title,
// messages}. The uris are the exact request URIs the gateway sends (nginx maps
// $request_uri to these files).
import { writeFileSync } from 'node:fs';

const [fake, out, want] = process.argv.slice(2);
const nmsg = want ? Number(want) : 0;
const H = { 'X-User-ID': 'alice' };
const uris = {};
const bytes = {};

async function get(path) {
	const r = await fetch(fake + path, { headers: H });
	const text = await r.text();
	if (r.status !== 200) throw new Error(`GET ${path}: HTTP ${r.status}: ${text.slice(0, 200)}`);
	return text;
}
function save(uri, file, text) {
	writeFileSync(`${out}/${file}`, text);
	uris[uri] = file;
	bytes[file] = Buffer.byteLength(text);
}
const msgPath = (sid, aid) => `/sessions/${sid}/messages?agent_id=${aid}&limit=200`;
const countMsgs = async (sid, aid) => JSON.parse(await get(msgPath(sid, aid))).messages.length;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const agentsText = await get('/agent/');
const agents = JSON.parse(agentsText).agents.map((a) => a.id);
let chosen = null;

if (nmsg > 0) {
	const aid = agents[0];
	const listing = JSON.parse(await get(`/sessions/?agent_id=${aid}`)).sessions;
	// an idle session whose log has an even length (each run adds two messages)
	for (const it of listing) {
		if (it.is_running) continue;
		const n = await countMsgs(it.session.id, aid);
		if (n % 2 === 0 && n <= nmsg) {
			chosen = { sid: it.session.id, aid, title: it.session.config?.name, n };
			break;
		}
	}
	if (!chosen) throw new Error('no idle session with an even message count');
	for (let round = 0; chosen.n < nmsg; round++) {
		const body = {
			agent_id: aid,
			session_id: chosen.sid,
			input: {
				role: 'user',
				name: 'user',
				content: [{ type: 'text', text: `[tool:auto] Question ${round + 1}: look it up and answer.` }],
			},
		};
		const r = await fetch(fake + '/chat/', {
			method: 'POST',
			headers: { ...H, 'content-type': 'application/json' },
			body: JSON.stringify(body),
		});
		await r.text();
		if (r.status === 409) {
			await sleep(20);
			continue;
		}
		if (r.status !== 200) throw new Error(`POST /chat/: HTTP ${r.status}`);
		for (let i = 0; i < 500; i++) {
			await sleep(5);
			const n = await countMsgs(chosen.sid, aid);
			if (n >= chosen.n + 2) {
				chosen.n = n;
				break;
			}
		}
	}
	if (chosen.n !== nmsg) throw new Error(`the log has ${chosen.n} messages, not ${nmsg}`);
	// wait until the run has let go of the session, so the saved listing shows it idle
	for (let i = 0; i < 200; i++) {
		const it = JSON.parse(await get(`/sessions/?agent_id=${aid}`)).sessions.find(
			(x) => x.session.id === chosen.sid,
		);
		if (!it.is_running) break;
		await sleep(10);
	}
}

save('/agent/', 'agent.json', agentsText);
for (const aid of agents) {
	const uri = `/sessions/?agent_id=${aid}`;
	save(uri, `sessions-${aid}.json`, await get(uri));
}
if (chosen) save(msgPath(chosen.sid, chosen.aid), `messages-${chosen.sid}.json`, await get(msgPath(chosen.sid, chosen.aid)));
console.log(
	JSON.stringify({
		agent: agents[0],
		uris,
		bytes,
		session: chosen?.sid,
		title: chosen?.title,
		messages: chosen?.n,
	}),
);
