#!/usr/bin/env bash
# Throughput of sessiongate against references measured in the same run, as ratios (these
# machines are shared and noisy: absolute numbers mean little, ratios a lot more).
#
#   backend   the fake AgentScope listing itself, fetched directly (the bytes the gateway
#             must fetch and translate for every list request)
#   nginx     nginx relaying those same bytes untranslated (proxy_pass), DESIGN.md's
#             reference for "a gateway that only forwards"
#   gateway   GET /v1/sessions?limit=20 through sessiongate (fetch + parse + translate +
#             page + render)
#
# Usage: bench/run.sh [SECONDS] [SESSIONS]      (defaults 10 s, 200 sessions on one agent)
# Installs wrk and nginx-light if missing. Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
n=${2:-200}
./scripts/setup.sh >/dev/null
for p in wrk nginx-light; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || {
		SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
		$SUDO apt-get install -y -qq "$p" >/dev/null
	}
done

tmp=$(mktemp -d)
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
pids=()
trap cleanup EXIT

build/tests/fake_agentscope --port 0 --port-file "$tmp/fake.port" --generate "$n:1" --quiet >/dev/null &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/fake.port" ] && break; sleep 0.05; done
fport=$(cat "$tmp/fake.port")
agent=$(curl -s -H 'X-User-ID: alice' "http://127.0.0.1:$fport/agent/" |
	sed -E 's/.*"id": ?"([0-9a-f]{32})".*/\1/' | head -c 32)

key=bench-key
hash=$(printf %s "$key" | build/sessiongate hash-key)
chash=$(printf %s "$key-cached" | build/sessiongate hash-key)
gport=18380
nport=18381
cat >"$tmp/gw.json" <<JSON
{"listen":"127.0.0.1:$gport","workers":1,"cursor_secret":"bench-secret-bench-secret-bench-secret!",
 "log":{"level":"warn","access":false},
 "backends":[{"name":"as","mapping":"agentscope","url":"http://127.0.0.1:$fport"},
   {"name":"asc","mapping":"agentscope","url":"http://127.0.0.1:$fport","options":{"cache_ms":1000}}],
 "keys":[{"name":"bench","sha256":"$hash","backends":{"as":{"user_id":"alice"}}},
   {"name":"cached","sha256":"$chash","backends":{"asc":{"user_id":"alice"}}}]}
JSON
build/sessiongate --config "$tmp/gw.json" &
pids+=($!)
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  upstream be { server 127.0.0.1:$fport; keepalive 16; }
  server {
    listen 127.0.0.1:$nport;
    location / { proxy_pass http://be; proxy_http_version 1.1;
                 proxy_set_header Connection ""; proxy_set_header X-User-ID alice; }
  }
}
CONF
nginx -c "$tmp/nginx.conf" -p "$tmp" &
pids+=($!)
sleep 0.5

rps() { # url [header]
	wrk -t1 -c8 -d"${secs}s" ${2:+-H "$2"} "$1" | awk '/Requests\/sec/ {print $2}'
}
path="/sessions/?agent_id=$agent"
bytes=$(curl -s -H 'X-User-ID: alice' "http://127.0.0.1:$fport$path" | wc -c)
backend=$(rps "http://127.0.0.1:$fport$path" "X-User-ID: alice")
relay=$(rps "http://127.0.0.1:$nport$path")
gateway=$(rps "http://127.0.0.1:$gport/v1/sessions?limit=20" "x-api-key: $key")
gw_agent=$(rps "http://127.0.0.1:$gport/v1/sessions?limit=20&agent_id=$agent" "x-api-key: $key")
gw_cached=$(rps "http://127.0.0.1:$gport/v1/sessions?limit=20" "x-api-key: $key-cached")

echo "listing: $n sessions, $bytes bytes per backend answer; wrk 1 thread, 8 connections, ${secs}s each; gateway 1 worker"
printf '%-42s %10s req/s\n' "backend direct (reference)" "$backend" "nginx relaying the same bytes" "$relay" \
	"gateway /v1/sessions?limit=20" "$gateway" "gateway ...&agent_id= (one upstream call)" "$gw_agent" \
	"gateway, cache_ms=1000" "$gw_cached"
awk -v g="$gateway" -v a="$gw_agent" -v c="$gw_cached" -v b="$backend" -v r="$relay" 'BEGIN {
	printf "ratio to backend / to nginx:  gateway %.3f / %.3f   agent_id %.3f / %.3f   cached %.3f / %.3f\n",
		g/b, g/r, a/b, a/r, c/b, c/r }'
