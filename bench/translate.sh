#!/usr/bin/env bash
# Cost of the AgentScope listing translation against jansson's parse of the same bytes, for
# both wire shapes (v2.0.1 carries state.context, HEAD clears it), in one run each.
#
# Usage: bench/translate.sh [SESSIONS] [SECONDS]      (defaults 200 sessions, 3 s per shape)
# Needs a configured build/ (make -C build bench/translate is run here). Not part of the
# test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
secs=${2:-3}
make -s -C build tests/fake_agentscope bench/translate >/dev/null

tmp=$(mktemp -d)
pid=
cleanup() { [ -z "$pid" ] || kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

for shape in head v2.0.1; do
	rm -f "$tmp/port"
	build/tests/fake_agentscope --port 0 --port-file "$tmp/port" --generate "$n:1" \
		--shape "$shape" --quiet >/dev/null &
	pid=$!
	for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
	port=$(cat "$tmp/port")
	curl -s -H 'X-User-ID: alice' "http://127.0.0.1:$port/agent/" >"$tmp/agents.json"
	agent=$(sed -E 's/.*"id": ?"([0-9a-f]{32})".*/\1/' "$tmp/agents.json" | head -c 32)
	curl -s -H 'X-User-ID: alice' "http://127.0.0.1:$port/sessions/?agent_id=$agent" \
		>"$tmp/listing.json"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
	echo "== shape $shape"
	build/bench/translate "$tmp/listing.json" "$tmp/agents.json" "$secs"
done
