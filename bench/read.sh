#!/usr/bin/env bash
# The read path of sessiongate against references measured in the same run (issue 12): the
# shipped configuration (every default: one worker per core, cache_ms 1000, access log on) in
# front of an AgentScope-shaped backend that nginx serves from static files, so the backend
# answers at static-file speed. The files are the fake AgentScope service's own answers
# (build/tests/fake_agentscope --generate), saved by bench/readdata.mjs.
#
#   poll      GET /v1/sessions?limit=20, the same page for every request, 32 connections;
#             reference: nginx relaying the raw listing (a proxy_pass server in front of the
#             static one, so both sides make one hop)
#   distinct  the same with a new created_at[gte] on every request (wrk Lua); same reference
#   events    GET /v1/sessions/{id}/events?limit=100 on a session whose log has 50 messages;
#             reference: nginx relaying the raw message log
#   half      p99 latency at half of the gateway's own poll rate (from the poll scenario),
#             paced with a wrk Lua delay() (see below) minus the backend's own p99 (the raw
#             listing from the static server) at the same rate
#   walk      one client following next_page (limit 100) over N = 1,000 and N = 10,000
#             sessions (bench/walk.mjs): ratio 10k ÷ 1k of the time and of the bytes the
#             backend sent (nginx access log, $body_bytes_sent); each run walks 10k once and
#             1k three times (their median), the result is the median over --walk-runs
#   calls     backend requests per north list / events page (nginx access log): one client
#             at a time, and under the 32-connection poll and events loads
#
# Every throughput scenario runs CYCLES cycles of SECS seconds per side, alternating which side
# goes first; the result is the median of the per-cycle ratios gateway ÷ reference. CPU per
# request is the utime+stime delta of /proc/<pid>/stat divided by the requests wrk completed:
# the gateway process (all workers) and the nginx worker (which serves both the relay and the
# static files). Servers are pinned to core 0, wrk and the walk client to core 1.
#
# Pacing for "half": wrk has no fixed-rate mode (wrk2 is not in Debian). Each of the 32
# connections waits a random delay, uniform in [0, 2 × 32/rate], after each answer (wrk's
# delay() hook), which spreads requests over time at about the target rate; the first request
# of each connection (wrk sends it at once, all 32 together) is a cheap one (/healthz on the
# gateway, a 204 on nginx) so that no burst lands in the measured latencies. wrk measures each
# latency from the request's write to its answer.
#
# Usage: bench/read.sh [--secs S] [--cycles C] [--walk "N1 N2"] [--walk-runs R]
#                      [--shape v2.0.1|head] [--cache-ms MS] [--no-record]
#   defaults: --secs 3 --cycles 5 --walk "1000 10000" --walk-runs 1 --shape v2.0.1
#   --walk ""      skips the walks; --cache-ms sets AgentScope's cache_ms (default: unset, i.e. 1000)
#   --no-record    does not append the table to docs/performance.md
# About 6 to 7 minutes with the defaults on a 2-core machine (the 10k walk is half of it today).
# Installs wrk and nginx-light if missing. Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd="bench/read.sh${*:+ $*}"
secs=3
cycles=5
walk="1000 10000"
walk_runs=1
shape=v2.0.1
cache_ms=
record=1
while [ $# -gt 0 ]; do
	case "$1" in
	--secs) secs=$2; shift 2 ;;
	--cycles) cycles=$2; shift 2 ;;
	--walk) walk=$2; shift 2 ;;
	--walk-runs) walk_runs=$2; shift 2 ;;
	--shape) shape=$2; shift 2 ;;
	--cache-ms) cache_ms=$2; shift 2 ;;
	--no-record) record=0; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "read.sh: unknown argument '$1' (--help)" >&2; exit 2 ;;
	esac
done
read -r -a walk_ns <<<"$walk"
if [ ${#walk_ns[@]} -ne 0 ] && [ ${#walk_ns[@]} -ne 2 ]; then
	echo "read.sh: --walk takes two sizes (\"1000 10000\") or \"\"" >&2
	exit 2
fi

./scripts/setup.sh >/dev/null
missing=()
for p in wrk nginx-light; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		{ $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

ncpu=$(nproc)
if [ "$ncpu" -ge 2 ]; then
	srv=(taskset -c 0)
	cli=(taskset -c 1)
else
	echo "read.sh: one core only: servers and load share it (ratios still mean something)" >&2
	srv=()
	cli=()
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

tmp=$(mktemp -d)
chmod 755 "$tmp" # nginx workers may run as another user
pids=()
cleanup() {
	[ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

wait_file() { for _ in $(seq 400); do [ -s "$1" ] && return 0; sleep 0.05; done; echo "read.sh: $1 never appeared" >&2; exit 1; }
jq_() { node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8")); const v=eval(process.argv[1]); console.log(typeof v==="object"?JSON.stringify(v):v)' "$1"; }

# ---- the backend's answers, as static files -------------------------------------------------
# gen NAME SESSIONS [MESSAGES]: one fake AgentScope, its answers saved in $tmp/data/NAME
gen() {
	local dir=$tmp/data/$1 fpid
	mkdir -p "$dir"
	rm -f "$tmp/fake.port"
	TZ=UTC build/tests/fake_agentscope --port 0 --port-file "$tmp/fake.port" --generate "$2:1" \
		--shape "$shape" --run-ms 1 --quiet >/dev/null &
	fpid=$!
	pids+=("$fpid")
	wait_file "$tmp/fake.port"
	node bench/readdata.mjs "http://127.0.0.1:$(cat "$tmp/fake.port")" "$dir" ${3:-} >"$tmp/$1.info"
	kill "$fpid"
	wait "$fpid" 2>/dev/null || true
	chmod -R a+rX "$dir"
}
datasets=(poll events)
gen poll 20
gen events 20 50
for n in "${walk_ns[@]}"; do
	gen "w$n" "$n"
	datasets+=("w$n")
done
for d in "${datasets[@]}"; do jq_ 'Object.entries(j.uris).map(([u,f])=>`"${u}" ${f};`).join("\n")' <"$tmp/$d.info"; done |
	sort -u >"$tmp/map.conf"
agent=$(jq_ j.agent <"$tmp/poll.info")
listing_uri="/sessions/?agent_id=$agent"
ev_sid=$(jq_ j.session <"$tmp/events.info")
ev_title=$(jq_ j.title <"$tmp/events.info")
log_uri="/sessions/$ev_sid/messages?agent_id=$agent&limit=200"
poll_bytes=$(wc -c <"$tmp/data/poll/sessions-$agent.json")
log_bytes=$(wc -c <"$tmp/data/events/messages-$ev_sid.json")

# ---- nginx: one static server per dataset, two relays, one worker on core 0 -----------------
busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_base() { # the first of 18460, 18560, … whose next 16 ports nobody listens on
	local b p
	for b in $(seq 18460 100 19960); do
		for p in $(seq "$b" $((b + 15))); do busy "$p" && continue 2; done
		echo "$b"
		return
	done
	echo "read.sh: no free ports" >&2
	exit 1
}
base=$(free_base)
if [ "$base" != 18460 ]; then
	echo "read.sh: ports 18460+ are taken (another bench/read.sh?): using $base+; a concurrent run disturbs both" >&2
fi
gport=$base
relay_poll=$((base + 1))
relay_log=$((base + 2))
declare -A sport
i=3
for d in "${datasets[@]}"; do sport[$d]=$((base + i)); i=$((i + 1)); done
statics=""
for d in "${datasets[@]}"; do
	statics+="
  server { listen 127.0.0.1:${sport[$d]}; root $tmp/data/$d; access_log $tmp/static.log be;
           location = /cheap { return 204; }
           location / { try_files /\$sg_file =404; } }"
done
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
  types { } default_type application/json;
  sendfile on; tcp_nodelay on; # tcp_nopush stalls the relay ~40 ms now and then
  keepalive_requests 1000000; keepalive_timeout 300s;
  open_file_cache max=64; open_file_cache_valid 3600s;
  client_body_temp_path $tmp/nginx-body; proxy_temp_path $tmp/nginx-proxy;
  log_format be '\$server_port \$status \$body_bytes_sent "\$request_uri"';
  map_hash_bucket_size 256;
  map \$request_uri \$sg_file { default no-such-file; include $tmp/map.conf; }
$statics
  upstream static_poll { server 127.0.0.1:${sport[poll]}; keepalive 64; }
  upstream static_events { server 127.0.0.1:${sport[events]}; keepalive 64; }
  proxy_http_version 1.1; proxy_set_header Connection "";
  proxy_buffer_size 64k; proxy_buffers 64 16k; proxy_busy_buffers_size 128k;
  proxy_max_temp_file_size 0;
  server { listen 127.0.0.1:$relay_poll; access_log off;
           location = /cheap { return 204; }
           location / { proxy_pass http://static_poll; } }
  server { listen 127.0.0.1:$relay_log; access_log off;
           location / { proxy_pass http://static_events; } }
}
CONF
"${srv[@]}" "$NGINX" -c "$tmp/nginx.conf" -p "$tmp" -e "$tmp/nginx.err" &
npid=$!
pids+=("$npid")
wait_file "$tmp/nginx.pid"
sleep 0.2
nworker=$(ps -o pid= --ppid "$npid" | head -1 | tr -d ' ')
[ -n "$nworker" ] || { echo "read.sh: nginx did not start:" >&2; cat "$tmp/nginx.err" >&2; exit 1; }

# ---- the gateway: the shipped defaults, one key per dataset -----------------------------------
opts=""
[ -z "$cache_ms" ] || opts=",\"options\":{\"cache_ms\":$cache_ms}"
backends=""
keys=""
for d in "${datasets[@]}"; do
	h=$(printf %s "bench-$d" | build/sessiongate hash-key)
	backends+="${backends:+,}{\"name\":\"$d\",\"mapping\":\"agentscope\",\"url\":\"http://127.0.0.1:${sport[$d]}\"$opts}"
	keys+="${keys:+,}{\"name\":\"$d\",\"sha256\":\"$h\",\"backends\":{\"$d\":{\"user_id\":\"alice\"}}}"
done
cat >"$tmp/gw.json" <<JSON
{"listen":"127.0.0.1:$gport","cursor_secret":"bench-secret-bench-secret-bench-secret!",
 "backends":[$backends],
 "keys":[$keys]}
JSON
"${srv[@]}" build/sessiongate --config "$tmp/gw.json" 2>"$tmp/gw.log" &
gpid=$!
pids+=("$gpid")
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$gport/healthz" >/dev/null && break; sleep 0.05; done
workers=$(grep -c '^processor' /proc/cpuinfo) # workers: 0 = sysconf(_SC_NPROCESSORS_ONLN)

gw="http://127.0.0.1:$gport"
rss0=$(awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$gpid/status")
gwget() { curl -s -H "x-api-key: bench-$1" "$gw$2"; }
ts0=2025-01-01T00:00:00Z
n=$(gwget poll "/v1/sessions?limit=20" | jq_ j.data.length)
[ "$n" = 20 ] || { echo "read.sh: poll page has $n sessions" >&2; exit 1; }
n=$(gwget poll "/v1/sessions?limit=20&created_at%5Bgte%5D=$ts0" | jq_ j.data.length)
[ "$n" = 20 ] || { echo "read.sh: distinct page has $n sessions" >&2; exit 1; }
ev_id=$(gwget events "/v1/sessions?limit=20" | jq_ "j.data.find(s=>s.title===\"$ev_title\").id")
events_path="/v1/sessions/$ev_id/events?limit=100"
n=$(gwget events "$events_path" | jq_ j.data.length)
[ "$n" = 100 ] || { echo "read.sh: events page has $n events" >&2; exit 1; }
for u in "http://127.0.0.1:$relay_poll$listing_uri" "http://127.0.0.1:$relay_log$log_uri"; do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$u")" = 200 ] || { echo "read.sh: relay $u fails" >&2; exit 1; }
done

rev=$(git log -1 --format=%h -- src mappings configure.ac Makefile.am)$(git diff --quiet HEAD -- src mappings || echo '+dirty')
echo "sessiongate $rev (last commit of src/ and mappings/), $workers workers (default: one per core), all defaults${cache_ms:+ but cache_ms=$cache_ms}"
echo "backend: nginx static files, AgentScope shape $shape; listing of 20 sessions $poll_bytes bytes; log of 50 messages $log_bytes bytes"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before: $load0 (other work on the machine shows here; the ratios absorb some of it)"
echo "servers on core 0, load on core 1; wrk 1 thread, 32 connections; $cycles cycles of ${secs}s per side"

# ---- measuring --------------------------------------------------------------------------------
tck=$(getconf CLK_TCK)
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
lines() { wc -l <"$tmp/static.log"; }
cat >"$tmp/done.lua" <<'LUA'
function done(s, lat, req)
  local e = s.errors
  io.write(string.format("RESULT %d %d %d %d %d\n", s.requests, s.duration,
    lat:percentile(50), lat:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))
end
LUA
cat "$tmp/done.lua" - >"$tmp/distinct.lua" <<'LUA'
local n = 0
local t0 = os.time{year=2025, month=1, day=1, hour=0}
function request()
  n = n + 1
  return wrk.format(nil, "/v1/sessions?limit=20&created_at%5Bgte%5D=" ..
    os.date("!%Y-%m-%dT%H:%M:%SZ", t0 + n))
end
LUA

# wrk_run SIDE URL HEADER LUA [SECS]: runs wrk on core 1 and prints one line
# "SIDE requests rps p50_us p99_us errors gateway_us_per_req nginx_us_per_req backend_calls"
wrk_run() {
	local side=$1 url=$2 hdr=$3 lua=$4 d=${5:-$secs} g0 n0 l0 out
	g0=$(ticks "$gpid")
	n0=$(ticks "$nworker")
	l0=$(lines)
	out=$("${cli[@]}" wrk -t1 -c32 -d"${d}s" --timeout 30s ${hdr:+-H "$hdr"} -s "$lua" "$url" | grep '^RESULT')
	read -r _ req dur p50 p99 err <<<"$out"
	awk -v s="$side" -v r="$req" -v d="$dur" -v p50="$p50" -v p99="$p99" -v e="$err" \
		-v g=$(($(ticks "$gpid") - g0)) -v n=$(($(ticks "$nworker") - n0)) -v c=$(($(lines) - l0)) -v t="$tck" \
		'BEGIN { printf "%s %d %.1f %d %d %d %.1f %.1f %d\n", s, r, r / (d / 1e6), p50, p99, e,
			r ? g * 1e6 / t / r : 0, r ? n * 1e6 / t / r : 0, c }'
}
# cycles NAME REF_URL GW_URL LUA [REF_LUA] [SECS]: a 1 s warm-up per side, then CYCLES
# cycles of both sides, alternating which goes first; lines in $tmp/NAME.res
cycles() {
	local name=$1 ref=$2 gwu=$3 lua=$4 rlua=${5:-$4} d=${6:-$secs} key="x-api-key: bench-${1%%-*}" c
	: >"$tmp/$name.res"
	wrk_run warm "$ref" "" "$rlua" 1 >/dev/null
	wrk_run warm "$gwu" "$key" "$lua" 1 >/dev/null
	for c in $(seq "$cycles"); do
		if [ $((c % 2)) = 1 ]; then
			wrk_run "ref$c" "$ref" "" "$rlua" "$d" >>"$tmp/$name.res"
			wrk_run "gw$c" "$gwu" "$key" "$lua" "$d" >>"$tmp/$name.res"
		else
			wrk_run "gw$c" "$gwu" "$key" "$lua" "$d" >>"$tmp/$name.res"
			wrk_run "ref$c" "$ref" "" "$rlua" "$d" >>"$tmp/$name.res"
		fi
	done
	sed 's/^/  /' "$tmp/$name.res"
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (!NR) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# col NAME SIDE FIELD: the field (2 requests, 3 rps, 4 p50, 5 p99, 6 errors, 7 gw µs, 8 nginx µs,
# 9 backend calls) of every cycle of one side
col() { awk -v s="$2" -v f="$3" 'substr($1, 1, length(s)) == s && $1 != "warm" { print $f }' "$tmp/$1.res"; }
# ratios NAME FIELD: per-cycle gateway ÷ reference of a field
ratios() { paste <(awk '/^gw/ { sub(/^gw/, "", $1); print $1, $'"$2"' }' "$tmp/$1.res" | sort -n) \
	<(awk '/^ref/ { sub(/^ref/, "", $1); print $1, $'"$2"' }' "$tmp/$1.res" | sort -n) |
	awk '{ print ($4 > 0 ? $2 / $4 : 0) }'; }
med() { col "$@" | median; }

echo "[$SECONDS s] == poll: GET /v1/sessions?limit=20  vs  nginx relaying GET $listing_uri"
echo "   (side requests req/s p50_us p99_us errors gateway_cpu_us/req nginx_cpu_us/req backend_calls)"
cycles poll "http://127.0.0.1:$relay_poll$listing_uri" "$gw/v1/sessions?limit=20" "$tmp/done.lua"
echo "[$SECONDS s] == distinct: a new created_at[gte] each request  vs  the same relay"
cycles poll-distinct "http://127.0.0.1:$relay_poll$listing_uri" "$gw/v1/sessions" "$tmp/distinct.lua" "$tmp/done.lua"
echo "[$SECONDS s] == events: GET $events_path  vs  nginx relaying GET $log_uri"
cycles events "http://127.0.0.1:$relay_log$log_uri" "$gw$events_path" "$tmp/done.lua"

# half load: paced at half the gateway's median poll rate
max=$(med poll gw 3)
rate=$(awk -v m="$max" 'BEGIN { printf "%.0f", m / 2 }')
mean_ms=$(awk -v r="$rate" 'BEGIN { printf "%.3f", 32 * 1000 / r }')
pace() { # pace CHEAP_PATH: a Lua script whose first 32 requests are cheap, then paced
	cat "$tmp/done.lua"
	cat <<LUA
local sent = 0
math.randomseed(os.time())
function request()
  sent = sent + 1
  if sent <= 32 then return wrk.format("GET", "$1") end
  return wrk.format()
end
function delay() return math.floor(math.random() * 2 * $mean_ms + 0.5) end
LUA
}
pace /healthz >"$tmp/pace-gw.lua"
pace /cheap >"$tmp/pace-be.lua"
echo "[$SECONDS s] == half load: $rate req/s (half of $max), gateway poll  vs  the backend's own listing (static nginx), $((2 * secs))s per side"
cycles poll-half "http://127.0.0.1:${sport[poll]}$listing_uri" "$gw/v1/sessions?limit=20" "$tmp/pace-gw.lua" "$tmp/pace-be.lua" $((2 * secs))

# backend calls per north request, one client at a time
seq_calls() { # KEY PATH: backend requests per north request over 20 sequential requests
	local l0 i
	l0=$(lines)
	for i in $(seq 20); do curl -s -o /dev/null -H "x-api-key: bench-$1" "$gw$2"; done
	awk -v c=$(($(lines) - l0)) 'BEGIN { printf "%.2f", c / 20 }'
}
calls_list=$(seq_calls poll "/v1/sessions?limit=20")
calls_events=$(seq_calls events "$events_path")
load_calls() { paste <(col "$1" gw 9) <(col "$1" gw 2) | awk '{ print $2 ? $1 / $2 : 0 }' | median; }
echo "[$SECONDS s] == backend calls, one client: $calls_list per list, $calls_events per events page"

# walks
walk_time=nan walk_bytes=nan walk_t1=nan walk_t2=nan walk_b1=nan walk_b2=nan walk_s_page1=nan walk_s_page2=nan walk_cpu1=nan walk_cpu2=nan
if [ ${#walk_ns[@]} -eq 2 ]; then
	small="w${walk_ns[0]}"
	large="w${walk_ns[1]}"
	: >"$tmp/walk.res"
	walk_once() { # RUN DATASET: one walk, one line in $tmp/walk.res
		local l0 g0 out g b
		# let what the previous walk left in the freshness window expire: a walk starts cold
		sleep "$(awk -v m="${cache_ms:-1000}" 'BEGIN { print m / 1000 + 0.2 }')"
		l0=$(lines)
		g0=$(ticks "$gpid")
		out=$("${cli[@]}" node bench/walk.mjs "$gw" "bench-$2" 100)
		g=$(($(ticks "$gpid") - g0))
		b=$(tail -n +$((l0 + 1)) "$tmp/static.log" | awk -v p="${sport[$2]}" '$1 == p { s += $3; c++ } END { printf "%.0f %d\n", s, c }')
		echo "$1 $2 $(jq_ '[j.pages,j.items,j.unique,j.ms].join(" ")' <<<"$out") $b $g" >>"$tmp/walk.res"
	}
	# the small walk is short and noisy: three of it (their median) for each large one
	for r in $(seq "$walk_runs"); do
		walk_once "$r" "$small"
		walk_once "$r" "$large"
		walk_once "$r" "$small"
		walk_once "$r" "$small"
	done
	echo "[$SECONDS s] == walk (limit 100): run dataset pages items unique ms backend_bytes backend_calls gateway_ticks"
	sed 's/^/  /' "$tmp/walk.res"
	awk '{ n = substr($2, 2) } $4 != n || $5 != n { bad = 1 }
		END { if (bad) print "  WARNING: a walk skipped or repeated sessions" }' "$tmp/walk.res"
	# wcol DATASET EXPR [RUN]: an awk expression over the walks of one dataset (of one run)
	wcol() { awk -v d="$1" -v r="${3:-}" -v t="$tck" '$2 == d && (r == "" || $1 == r) { print '"$2"' }' "$tmp/walk.res"; }
	per_run() { # FIELD: per run, large ÷ median of the small ones; then the median over runs
		local r
		for r in $(seq "$walk_runs"); do
			awk -v x="$(wcol "$small" "\$$1" "$r" | median)" -v y="$(wcol "$large" "\$$1" "$r" | median)" \
				'BEGIN { print (x > 0 ? y / x : 0) }'
		done | median
	}
	walk_time=$(per_run 6)
	walk_bytes=$(per_run 7)
	walk_t1=$(wcol "$small" '$6 / 1000' | median)
	walk_t2=$(wcol "$large" '$6 / 1000' | median)
	walk_b1=$(wcol "$small" '$7' | median)
	walk_b2=$(wcol "$large" '$7' | median)
	walk_s_page1=$(wcol "$small" '$6 / $3' | median)
	walk_s_page2=$(wcol "$large" '$6 / $3' | median)
	walk_cpu1=$(wcol "$small" '$9 * 1000 / t / $3' | median)
	walk_cpu2=$(wcol "$large" '$9 * 1000 / t / $3' | median)
fi

# every request the gateway sent upstream must have hit a file, but for the readiness probe
# (GET / of each backend every readiness.probe_interval_ms: any answer, a 404 here, is fine)
notok() { awk '$2 != 200 && $4 != "\"/cheap\"" && $4 != "\"/\""' "$tmp/static.log"; }
bad=$(notok | wc -l)
total=$(lines)
echo "[$SECONDS s] == backend requests by URI (static nginx access log: port status count bytes uri)"
awk '$4 != "\"/cheap\"" { c[$1 " " $2 " " $4]++; b[$1 " " $2 " " $4] += $3 }
	END { for (k in c) { split(k, f, " "); printf "  %s %s %d %.0f %s\n", f[1], f[2], c[k], b[k], f[3] } }' "$tmp/static.log" | sort
if [ "$bad" != 0 ]; then
	echo "WARNING: $bad of $total backend requests were not answered 200 by the static server:" >&2
	notok | sort | uniq -c | sort -rn | head -5 >&2
fi

# ---- the table ---------------------------------------------------------------------------------
f2() { awk -v x="$1" 'BEGIN { printf (x == "nan" ? "–" : x >= 10 ? "%.0f" : x >= 1 ? "%.1f" : "%.2f"), x }'; }
int() { awk -v x="$1" 'BEGIN { printf "%.0f", x }'; }
ms() { f2 "$(awk -v x="$1" 'BEGIN { print x == "nan" ? x : x / 1000 }')"; }
ratio_cell() { # NAME REFNAME: "0.05× nginx relay (G vs R req/s)"
	printf '%.2f× %s (%s vs %s req/s)' "$(ratios "$1" 3 | median)" "$2" "$(int "$(med "$1" gw 3)")" "$(int "$(med "$1" ref 3)")"
}
cpu_cell() { # NAME: "G (+N backend) / R"
	printf '%s (+%s backend) / %s' "$(f2 "$(med "$1" gw 7)")" "$(f2 "$(med "$1" gw 8)")" "$(f2 "$(med "$1" ref 8)")"
}
errs=$(cat "$tmp"/poll*.res "$tmp"/events.res | awk '{ s += $6 } END { print s + 0 }')
added=$(paste <(awk '/^gw/ { sub(/^gw/, "", $1); print $1, $5 }' "$tmp/poll-half.res" | sort -n) \
	<(awk '/^ref/ { sub(/^ref/, "", $1); print $1, $5 }' "$tmp/poll-half.res" | sort -n) | awk '{ print $2 - $4 }' | median)
table=$(
	echo "| workload | sessiongate, ${cache_ms:+cache_ms: $cache_ms, otherwise }default config (median of $cycles cycles) | CPU µs per request: gateway (+ static backend) / reference | goal (default config) |"
	echo "|---|---|---|---|"
	echo "| poll: same 20-session page, 32 clients | $(ratio_cell poll 'nginx relay') | $(cpu_cell poll) | ≥ 1.0× nginx relaying the raw listing |"
	echo "| distinct: a new \`created_at[gte]\` each request | $(ratio_cell poll-distinct 'nginx relay') | $(cpu_cell poll-distinct) | ≥ 0.7× |"
	echo "| events: a 100-event page from a 50-message log | $(ratio_cell events 'nginx relaying the raw log') | $(cpu_cell events) | ≥ 0.5× nginx relaying the raw log |"
	echo "| added p99 over the backend at half of the gateway's own max rate | $(ms "$added") ms (p99 $(ms "$(med poll-half gw 5)") ms vs backend $(ms "$(med poll-half ref 5)") ms at $(int "$(med poll-half gw 3)") / $(int "$(med poll-half ref 3)") req/s, target $rate) | $(cpu_cell poll-half) | ≤ 1 ms |"
	if [ ${#walk_ns[@]} -eq 2 ]; then
		echo "| walk every page (limit 100), N = ${walk_ns[1]} ÷ N = ${walk_ns[0]} | $(f2 "$walk_time")× time, $(f2 "$walk_bytes")× backend bytes ($(f2 "$walk_t2") s vs $(f2 "$walk_t1") s; $(awk -v b="$walk_b2" 'BEGIN { printf "%.0f", b / 1e6 }') MB vs $(awk -v b="$walk_b1" 'BEGIN { printf "%.1f", b / 1e6 }') MB) | gateway $(f2 "$walk_cpu2") vs $(f2 "$walk_cpu1") ms CPU per page ($(f2 "$walk_s_page2") vs $(f2 "$walk_s_page1") ms wall) | ≤ 12× both |"
	else
		echo "| walk every page (limit 100) | not run (--walk \"\") | – | ≤ 12× both |"
	fi
	echo "| backend calls per list / per events page | $calls_list / $calls_events one client at a time; $(f2 "$(load_calls poll)") / $(f2 "$(load_calls events)") under the 32-connection loads | – | 1 / ≤ 2 |"
)
hwm=$(awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$gpid/status")
notes="Gateway RSS $rss0 MiB at start, peak $hwm MiB (VmHWM, the walks included). Listing $poll_bytes bytes (20 sessions, shape $shape), log $log_bytes bytes (50 messages); $workers gateway workers; $cycles cycles × ${secs} s per side; wrk errors (non-2xx, socket) over all cycles: $errs; backend requests not answered 200: $bad of $total; load average $load0 before, $(cut -d' ' -f1-3 /proc/loadavg) after."
echo
echo "$table"
echo
echo "$notes"

if [ "$record" = 1 ]; then
	doc=docs/performance.md
	[ -f "$doc" ] || printf '# Performance\n\n## Runs\n' >"$doc"
	{
		echo
		echo "### $(date -u '+%Y-%m-%d %H:%M UTC') — \`$cmd\`"
		echo
		echo "sessiongate $rev, $(uname -m) $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(nginx -v 2>&1 | sed 's/.*: //'), wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')."
		echo
		echo "$table"
		echo
		echo "$notes"
	} >>"$doc"
	echo "(appended to $doc)"
fi
echo "[$SECONDS s] done"
