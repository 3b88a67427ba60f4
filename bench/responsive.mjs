// bench/responsive.mjs BASE_URL API_KEY SECONDS: while one client reads a large listing
// again and again (Cache-Control: no-cache, so the gateway translates it every time), another
// asks GET /healthz every 5 ms on its own connection; prints the latencies of both as JSON.
// Used by bench/responsive.sh.
const [base, key, secs = '10'] = process.argv.slice(2);
const until = performance.now() + Number(secs) * 1000;
const health = [];
const lists = [];
let listing = true;

async function lister() {
	while (performance.now() < until) {
		const t0 = performance.now();
		const r = await fetch(`${base}/v1/sessions?limit=20`, {
			headers: { 'x-api-key': key, 'cache-control': 'no-cache' },
		});
		const body = await r.text();
		if (r.status !== 200) throw new Error(`list: HTTP ${r.status}: ${body.slice(0, 300)}`);
		lists.push(performance.now() - t0);
	}
	listing = false;
}

async function prober() {
	while (listing) {
		const t0 = performance.now();
		const r = await fetch(`${base}/healthz`);
		await r.text();
		health.push(performance.now() - t0);
		await new Promise((res) => setTimeout(res, 5));
	}
}

function pct(v, p) {
	const s = [...v].sort((a, b) => a - b);
	return s.length ? Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] * 10) / 10 : null;
}

await Promise.all([lister(), prober()]);
console.log(JSON.stringify({
	lists: lists.length, list_p50_ms: pct(lists, 50),
	healthz: health.length, healthz_p50_ms: pct(health, 50), healthz_p99_ms: pct(health, 99),
	healthz_max_ms: pct(health, 100),
}));
