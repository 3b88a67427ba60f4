// One sequential walk over every page of GET /v1/sessions, following next_page, on one
// keep-alive connection (what a client listing everything does). Prints one JSON line:
// {pages, items, unique, ms}. Used by bench/read.sh; not part of the test suite.
//
// Usage: node bench/walk.mjs BASE_URL API_KEY [LIMIT]      (LIMIT defaults to 100)
const [base, key, limit = '100'] = process.argv.slice(2);
if (!base || !key) {
	console.error('usage: node bench/walk.mjs BASE_URL API_KEY [LIMIT]');
	process.exit(2);
}
const seen = new Set();
let page = null;
let pages = 0;
let items = 0;
const t0 = performance.now();
for (;;) {
	const u = new URL('/v1/sessions', base);
	u.searchParams.set('limit', limit);
	if (page) u.searchParams.set('page', page);
	const r = await fetch(u, { headers: { 'x-api-key': key } });
	const text = await r.text();
	if (r.status !== 200) {
		console.error(`walk: page ${pages + 1}: HTTP ${r.status}: ${text.slice(0, 300)}`);
		process.exit(1);
	}
	const j = JSON.parse(text);
	pages++;
	for (const s of j.data) {
		seen.add(s.id);
		items++;
	}
	page = j.next_page;
	if (!page) break;
}
const ms = performance.now() - t0;
console.log(JSON.stringify({ pages, items, unique: seen.size, ms: Math.round(ms) }));
