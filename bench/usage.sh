#!/usr/bin/env bash
# Retrieve of an AgentScope session with a 1,000-message log (issue 14: usage summed over the
# whole log), with the shipped configuration (every default) in front of the fake AgentScope
# service (build/tests/fake_agentscope --long-turns 500: the first session of the dataset has
# 500 turns, 1,000 messages). Prints bench/usage.mjs's JSON line and the backend requests one
# fresh and one remembered retrieve make (the fake's request log).
#
# Usage: bench/usage.sh [N] [ROUNDS]     (defaults 40 and 5)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-40}
rounds=${2:-5}
[ -x build/sessiongate ] && [ -x build/tests/fake_agentscope ] ||
	{ echo "usage.sh: build first (scripts/setup.sh)" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

TZ=UTC build/tests/fake_agentscope --port 0 --port-file "$tmp/fake.port" --generate 30:2 \
	--long-turns 500 --quiet &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/fake.port" ] && break; sleep 0.05; done
be="http://127.0.0.1:$(cat "$tmp/fake.port")"
gport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
h=$(printf %s bench-usage | build/sessiongate hash-key)
cat >"$tmp/gw.json" <<JSON
{"listen":"127.0.0.1:$gport","cursor_secret":"bench-secret-bench-secret-bench-secret!",
 "backends":[{"name":"as","mapping":"agentscope","url":"$be"}],
 "keys":[{"name":"bench","sha256":"$h","backends":{"as":{"user_id":"alice"}}}]}
JSON
build/sessiongate --config "$tmp/gw.json" 2>"$tmp/gw.log" &
pids+=($!)
gw="http://127.0.0.1:$gport"
for _ in $(seq 200); do curl -sf "$gw/healthz" >/dev/null && break; sleep 0.05; done

# the long session: the oldest of alice's (Session 0001)
pub=$(curl -s -H 'x-api-key: bench-usage' "$gw/v1/sessions?limit=100" | node -e '
let t = ""; process.stdin.on("data", (d) => (t += d)).on("end", () => {
  console.log(JSON.parse(t).data.find((x) => x.title === "Session 0001").id);
});')

calls() { # backend requests of one retrieve
	curl -s -X DELETE "$be/__fake/requests" >/dev/null
	curl -s -o /dev/null -H 'x-api-key: bench-usage' "${@:2}" "$gw/v1/sessions/$pub"
	curl -s "$be/__fake/requests" | node -e '
let t = ""; process.stdin.on("data", (d) => (t += d)).on("end", () => {
  const q = JSON.parse(t); const a = Array.isArray(q) ? q : q.requests;
  console.log(a.length + " (" + a.filter((x) => /messages/.test(x.uri)).length + " of /messages)");
});'
}
echo "backend requests, fresh retrieve:      $(calls x -H 'Cache-Control: no-cache')"
echo "backend requests, remembered retrieve: $(calls x)"
node bench/usage.mjs "$gw" bench-usage "$be" alice "$pub" "$n" "$rounds"
