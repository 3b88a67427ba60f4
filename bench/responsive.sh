#!/usr/bin/env bash
# bench/responsive.sh [N] [SECONDS]: is the loop still serving others while a large listing is
# translated? One gateway worker (so both clients share it) in front of the fake AgentScope
# with N sessions on one agent (10000; a 40 MB listing); one client lists with
# Cache-Control: no-cache again and again, another asks /healthz every 5 ms. Prints the
# latencies (issue 13: /healthz p99 ≤ 100 ms while a large listing is translated).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
secs=${2:-10}
[ -x build/sessiongate ] || { echo "responsive.sh: build first (scripts/setup.sh)" >&2; exit 1; }
make -C build -s tests/fake_agentscope >/dev/null
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
wait_file() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }

build/tests/fake_agentscope --port 0 --port-file "$tmp/fake.port" --generate "$n:1" --quiet &
pids+=($!)
wait_file "$tmp/fake.port"
fport=$(cat "$tmp/fake.port")
gport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
h=$(printf %s bench-responsive | build/sessiongate hash-key)
cat >"$tmp/gw.json" <<JSON
{"listen":"127.0.0.1:$gport","workers":1,"cursor_secret":"bench-secret-bench-secret-bench-secret!",
 "backends":[{"name":"as","mapping":"agentscope","url":"http://127.0.0.1:$fport"}],
 "keys":[{"name":"k","sha256":"$h","backends":{"as":{"user_id":"alice"}}}]}
JSON
build/sessiongate --config "$tmp/gw.json" 2>"$tmp/gw.log" &
pids+=($!)
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$gport/healthz" >/dev/null && break; sleep 0.05; done
echo "sessiongate $(git log -1 --format=%h), 1 worker, $n sessions on one agent, ${secs}s"
node bench/responsive.mjs "http://127.0.0.1:$gport" bench-responsive "$secs"
