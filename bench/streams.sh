#!/usr/bin/env bash
# Live event streams (GET /v1/sessions/{id}/events/stream) under load, with the shipped
# configuration (the defaults of etc/sessiongate.example.json: one worker per core, default
# streams limits), in front of the fake AgentScope service:
#
#   idle      IDLE streams (default 10000) spread over 100 sessions, held open: the gateway's
#             RSS (absolute, and per stream above its idle RSS) and how many upstream streams
#             it holds for them (at most sessions × workers)
#   fan-out   100 watchers of one session: upstream streams opened (goal: one per worker)
#   latency   WATCHERS streams open (default 1000: the others idle on the 100 sessions); a
#             watcher of one more session through the gateway and one client of the same
#             session directly on the backend; RUNS runs (default 200):
#             for each run and watcher, when the north frame arrived minus when the backend
#             frame it comes from arrived on the direct stream (REPLY_START →
#             session.status_running, REPLY_END → session.status_idle). The reference is the
#             direct stream in the same run, so the number is the latency the gateway adds.
#             Then the same with 100 watchers of the measured session (fan-out: each frame is
#             written 100 times, the last copy waits for the 99 before it).
#
# Usage: bench/streams.sh [IDLE] [WATCHERS] [RUNS]
# Not part of the test suite (numbers are never asserted in tests).
set -euo pipefail
cd "$(dirname "$0")/.."
idle=${1:-10000}
watchers=${2:-1000}
runs=${3:-200}
./scripts/setup.sh >/dev/null
make -C build -s bench/streamload >/dev/null
ulimit -n "$(ulimit -Hn)"

tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

TZ=UTC build/tests/fake_agentscope --port 0 --port-file "$tmp/fake.port" --generate 100:1 \
	--run-ms 1 --quiet >/dev/null &
pids+=($!)
for _ in $(seq 200); do [ -s "$tmp/fake.port" ] && break; sleep 0.05; done
fport=$(cat "$tmp/fake.port")

# 16 keys (the shipped streams.max_per_key is 1000 per key), all alice on the one backend
gport=18390
keys=()
keyjson=""
for i in $(seq 0 15); do
	k="bench-stream-key-$i"
	keys+=("$k")
	h=$(printf %s "$k" | build/sessiongate hash-key)
	keyjson+="${keyjson:+,}{\"name\":\"k$i\",\"sha256\":\"$h\",\"backends\":{\"as\":{\"user_id\":\"alice\"}}}"
done
keylist=$(IFS=,; echo "${keys[*]}")
cat >"$tmp/gw.json" <<JSON
{"listen":"127.0.0.1:$gport","cursor_secret":"bench-secret-bench-secret-bench-secret!",
 "backends":[{"name":"as","mapping":"agentscope","url":"http://127.0.0.1:$fport",
   "options":{"chat_model_config":{"type":"anthropic_credential","credential_id":"c","model":"m"}}}],
 "keys":[$keyjson]}
JSON
build/sessiongate --config "$tmp/gw.json" 2>"$tmp/gw.log" &
gpid=$!
pids+=($gpid)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$gport/healthz" >/dev/null && break; sleep 0.05; done

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
fake_streams() { curl -s "http://127.0.0.1:$fport/__fake/mode" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log(j.streams_open+" "+j.streams_total)})'; }
workers=$(nproc)

# the sessions, as the gateway names them
curl -s -H "x-api-key: ${keys[0]}" "http://127.0.0.1:$gport/v1/sessions?limit=100" |
	node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const x of JSON.parse(s).data)console.log(`/v1/sessions/${x.id}/events/stream`)})' >"$tmp/paths"
nsess=$(wc -l <"$tmp/paths")

echo "== idle: $idle streams over $nsess sessions, $workers workers"
rss0=$(rss_kb $gpid)
mkfifo "$tmp/ready"
build/bench/streamload open "$gport" "$keylist" "$tmp/paths" "$idle" 8000 >"$tmp/idle.json" 2>"$tmp/ready" &
lpid=$!
pids+=($lpid)
read -r line <"$tmp/ready"
sleep 2
rss1=$(rss_kb $gpid)
read -r up_open _ < <(fake_streams)
wait $lpid || true
echo "   $line; $(cat "$tmp/idle.json")"
echo "   gateway RSS: idle ${rss0} KiB, with the streams ${rss1} KiB ($(( rss1 / 1024 )) MiB; goal <= 256 MiB);" \
	"$(( (rss1 - rss0) * 1024 / idle )) bytes per stream; upstream streams held: $up_open (<= $nsess x $workers)"
sleep 1

echo "== fan-out: 100 watchers of one session"
head -n 1 "$tmp/paths" >"$tmp/one"
read -r _ t0 < <(fake_streams)
build/bench/streamload open "$gport" "$keylist" "$tmp/one" 100 1000 >"$tmp/fan.json" 2>/dev/null
read -r _ t1 < <(fake_streams)
echo "   $(cat "$tmp/fan.json"); upstream streams opened for them: $(( t1 - t0 )) (goal: <= $workers, one per worker)"
sleep 1

echo "== latency: with $watchers streams open, $runs runs"
sid=$(curl -s -H "x-api-key: ${keys[0]}" -H 'Content-Type: application/json' \
	"http://127.0.0.1:$gport/v1/agents" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).data[0].id))')
sid=$(curl -s -H "x-api-key: ${keys[0]}" -H 'Content-Type: application/json' \
	-d "{\"agent\":\"$sid\",\"environment_id\":\"env_bench\",\"title\":\"latency\"}" \
	"http://127.0.0.1:$gport/v1/sessions" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).id))')
native=$(node --input-type=module -e "import {decodePubId} from './tests/conformance/src/pubid.mjs'; const d=decodePubId('sesn_','$sid'); console.log(d.scope+' '+d.native)")
read -r agent nsid <<<"$native"
# the other streams: open on the other sessions for the whole measurement
rm -f "$tmp/ready"
mkfifo "$tmp/ready"
build/bench/streamload open "$gport" "$keylist" "$tmp/paths" "$(( watchers - 1 ))" 600000 >/dev/null 2>"$tmp/ready" &
bgpid=$!
pids+=($bgpid)
read -r line <"$tmp/ready"
lat() {
	build/bench/streamload latency "$gport" "${keys[1]}" "/v1/sessions/$sid/events/stream" "$1" \
		"$fport" "/sessions/$nsid/stream?agent_id=$agent" alice "$agent" "$nsid" "$runs" \
		2>/dev/null
}
echo "   the other streams: $line"
echo "   one watcher of the measured session: $(lat 1) (goal: p99 <= 1000 us)"
echo "   100 watchers of the measured session (each frame written 100 times): $(lat 100)"
kill $bgpid 2>/dev/null || true
