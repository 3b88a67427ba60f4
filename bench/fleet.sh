#!/usr/bin/env bash
# A walk over a fleet (issue 16): two gateway instances sharing one redis-server, behind nginx
# balancing round robin (so a walk's pages alternate instances), in front of an
# AgentScope-shaped backend that nginx serves from static files (the fake AgentScope
# service's own answers, saved by bench/readdata.mjs, as in bench/read.sh).
#
#   walk   one client following next_page (limit 100) through the balancer over N = 1,000 and
#          N = 10,000 sessions (bench/walk.mjs): ratio 10k ÷ 1k of the time and of the bytes
#          the backend sent (the static server's access log, $body_bytes_sent), measured in
#          the same run; each run walks 10k once and 1k three times (their median); the
#          result is the median over --runs. The balancer's log says which instance served
#          each page: "alternated" is the share of pages served by the other instance than
#          the page before (1.00: every page).
#
# Both instances run the shipped defaults (one worker per core, cache_ms 1000) plus "redis".
# Servers are pinned to core 0, the walk client to core 1.
#
# Usage: bench/fleet.sh [--walk "N1 N2"] [--runs R] [--no-redis] [--no-record]
#   defaults: --walk "1000 10000" --runs 1; --no-record does not append to docs/performance.md;
#   --no-redis runs the instances without "redis" (each keeps its snapshots to itself), the
#   contrast: try it with small sizes (--walk "200 2000"), every page then reads the listing
# About 2 minutes with the defaults on a 2-core machine. Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd="bench/fleet.sh${*:+ $*}"
walk="1000 10000"
runs=1
record=1
use_redis=1
while [ $# -gt 0 ]; do
	case "$1" in
	--walk) walk=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--no-record) record=0; shift ;;
	--no-redis) use_redis=0; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "fleet.sh: unknown argument '$1' (--help)" >&2; exit 2 ;;
	esac
done
read -r -a ns <<<"$walk"
[ ${#ns[@]} -eq 2 ] || { echo "fleet.sh: --walk takes two sizes" >&2; exit 2; }

./scripts/setup.sh >/dev/null
make -s -C build tests/fake_agentscope >/dev/null
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ "$(nproc)" -ge 2 ]; then
	srv=(taskset -c 0)
	cli=(taskset -c 1)
else
	srv=()
	cli=()
fi

tmp=$(mktemp -d)
chmod 755 "$tmp" # nginx workers may run as another user
pids=()
cleanup() {
	[ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	[ -n "${SG_BENCH_KEEP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT
wait_file() { for _ in $(seq 400); do [ -s "$1" ] && return 0; sleep 0.05; done; echo "fleet.sh: $1 never appeared" >&2; exit 1; }
jq_() { node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8")); const v=eval(process.argv[1]); console.log(typeof v==="object"?JSON.stringify(v):v)' "$1"; }
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ---- the backend's answers, as static files ---------------------------------------------------
for n in "${ns[@]}"; do
	d=$tmp/data/w$n
	mkdir -p "$d"
	rm -f "$tmp/fake.port"
	TZ=UTC build/tests/fake_agentscope --port 0 --port-file "$tmp/fake.port" --generate "$n:1" \
		--run-ms 1 --quiet >/dev/null &
	fpid=$!
	wait_file "$tmp/fake.port"
	node bench/readdata.mjs "http://127.0.0.1:$(cat "$tmp/fake.port")" "$d" >"$tmp/w$n.info"
	kill "$fpid"
	wait "$fpid" 2>/dev/null || true
	chmod -R a+rX "$d"
done
for n in "${ns[@]}"; do jq_ 'Object.entries(j.uris).map(([u,f])=>`"${u}" ${f};`).join("\n")' <"$tmp/w$n.info"; done |
	sort -u >"$tmp/map.conf"

# ---- redis, two instances, nginx (static backends and the balancer) ---------------------------
rport=$(free_port)
"${srv[@]}" redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no >"$tmp/redis.log" 2>&1 &
pids+=("$!")
declare -A sport
for n in "${ns[@]}"; do sport[$n]=$(free_port); done
gports=("$(free_port)" "$(free_port)")
lb=$(free_port)
backends=""
keys=""
for n in "${ns[@]}"; do
	h=$(printf %s "bench-w$n" | build/sessiongate hash-key)
	backends+="${backends:+,}{\"name\":\"w$n\",\"mapping\":\"agentscope\",\"url\":\"http://127.0.0.1:${sport[$n]}\"}"
	keys+="${keys:+,}{\"name\":\"w$n\",\"sha256\":\"$h\",\"backends\":{\"w$n\":{\"user_id\":\"alice\"}}}"
done
redis_conf=
[ "$use_redis" = 0 ] || redis_conf="\"redis\":{\"address\":\"127.0.0.1:$rport\"},"
for i in 0 1; do
	cat >"$tmp/gw$i.json" <<JSON
{"listen":"127.0.0.1:${gports[$i]}","cursor_secret":"bench-secret-bench-secret-bench-secret!",
 $redis_conf
 "backends":[$backends],
 "keys":[$keys]}
JSON
	"${srv[@]}" build/sessiongate --config "$tmp/gw$i.json" 2>"$tmp/gw$i.log" &
	gpid[$i]=$!
	pids+=("${gpid[$i]}")
done
statics=""
for n in "${ns[@]}"; do
	statics+="
  server { listen 127.0.0.1:${sport[$n]}; root $tmp/data/w$n; access_log $tmp/static.log be;
           location / { try_files /\$sg_file =404; } }"
done
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err warn;
events { worker_connections 1024; }
http {
  types { } default_type application/json;
  sendfile on; tcp_nodelay on;
  client_body_temp_path $tmp/nginx-body; proxy_temp_path $tmp/nginx-proxy;
  log_format be '\$server_port \$status \$body_bytes_sent "\$request_uri"';
  log_format lb '\$upstream_addr \$status "\$request_uri"';
  map_hash_bucket_size 256;
  map \$request_uri \$sg_file { default no-such-file; include $tmp/map.conf; }
$statics
  upstream gateways { server 127.0.0.1:${gports[0]}; server 127.0.0.1:${gports[1]}; keepalive 16; }
  server { listen 127.0.0.1:$lb; access_log $tmp/lb.log lb;
           location / { proxy_pass http://gateways; proxy_http_version 1.1;
                        proxy_set_header Connection ""; proxy_max_temp_file_size 0; } }
}
CONF
"${srv[@]}" "$NGINX" -c "$tmp/nginx.conf" -p "$tmp" -e "$tmp/nginx.err" &
pids+=("$!")
wait_file "$tmp/nginx.pid"
for i in 0 1; do
	for _ in $(seq 200); do curl -sf "http://127.0.0.1:${gports[$i]}/healthz" >/dev/null && break; sleep 0.05; done
done
sleep 0.5 # every worker's redis connection up

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
lines() { [ -f "$tmp/static.log" ] && wc -l <"$tmp/static.log" || echo 0; }
lblines() { [ -f "$tmp/lb.log" ] && wc -l <"$tmp/lb.log" || echo 0; }
: >"$tmp/walk.res"
walk_once() { # RUN N
	local l0 b0 g0 out g b alt
	sleep 1.2 # what the previous walk left in the freshness windows expires: a walk starts cold
	l0=$(lines)
	b0=$(lblines)
	g0=$(($(ticks "${gpid[0]}") + $(ticks "${gpid[1]}")))
	out=$("${cli[@]}" node bench/walk.mjs "http://127.0.0.1:$lb" "bench-w$2" 100)
	g=$(($(ticks "${gpid[0]}") + $(ticks "${gpid[1]}") - g0))
	b=$(tail -n +$((l0 + 1)) "$tmp/static.log" | awk '{ s += $3 } $4 ~ /^"\/sessions\// { c++ } END { printf "%.0f %d\n", s, c }')
	sleep 0.1
	alt=$(tail -n +$((b0 + 1)) "$tmp/lb.log" | awk '$3 ~ /^"\/v1\/sessions/ { if (n > 0 && $1 != last) a++; last = $1; n++ } END { printf "%.2f", (n > 1 ? a / (n - 1) : 0) }')
	echo "$1 w$2 $(jq_ '[j.pages,j.items,j.unique,j.ms].join(" ")' <<<"$out") $b $g $alt" >>"$tmp/walk.res"
	if [ "$use_redis" = 1 ]; then # the largest snapshot in Redis now: what a walk of N costs it
		redis-cli -p "$rport" --scan --pattern "sg:snap:w$2:*" | while read -r k; do redis-cli -p "$rport" STRLEN "$k"; done |
			sort -n | tail -1 | awk -v n="$2" '{ printf "w%s %d\n", n, $1 }' >>"$tmp/snap.size"
	fi
}
small=${ns[0]}
large=${ns[1]}
for r in $(seq "$runs"); do
	walk_once "$r" "$small"
	walk_once "$r" "$large"
	walk_once "$r" "$small"
	walk_once "$r" "$small"
done
[ ! -s "$tmp/snap.size" ] || echo "== largest snapshot in Redis after each walk (bytes): $(sort -u "$tmp/snap.size" | sort -k2 -n | awk '{ m[$1] = $2 } END { for (d in m) printf "%s %s  ", d, m[d] }')"
echo "== walk (limit 100) through the balancer: run dataset pages items unique ms backend_bytes backend_listing_reads gateway_ticks alternated"
sed 's/^/  /' "$tmp/walk.res"
awk '{ n = substr($2, 2) } $4 != n || $5 != n { bad = 1 }
	END { if (bad) print "  WARNING: a walk skipped or repeated sessions" }' "$tmp/walk.res"
wcol() { awk -v d="w$1" -v r="${3:-}" '$2 == d && (r == "" || $1 == r) { print '"$2"' }' "$tmp/walk.res"; }
per_run() {
	local r
	for r in $(seq "$runs"); do
		awk -v x="$(wcol "$small" "\$$1" "$r" | median)" -v y="$(wcol "$large" "\$$1" "$r" | median)" \
			'BEGIN { print (x > 0 ? y / x : 0) }'
	done | median
}
f2() { awk -v x="$1" 'BEGIN { printf (x >= 10 ? "%.0f" : x >= 1 ? "%.1f" : "%.2f"), x }'; }
tr_=$(per_run 6)
br_=$(per_run 7)
t1=$(wcol "$small" '$6 / 1000' | median)
t2=$(wcol "$large" '$6 / 1000' | median)
b1=$(wcol "$small" '$7' | median)
b2=$(wcol "$large" '$7' | median)
c1=$(wcol "$small" '$8' | median)
c2=$(wcol "$large" '$8' | median)
alt=$(awk '{ print $10 }' "$tmp/walk.res" | median)
table=$(
	echo "| workload | two instances$([ "$use_redis" = 1 ] && echo " + Redis" || echo ", no Redis,") behind nginx (round robin) | goal |"
	echo "|---|---|---|"
	echo "| walk every page (limit 100), N = $large ÷ N = $small, pages alternating instances (share served by the other instance than the page before: $alt) | $(f2 "$tr_")× time, $(f2 "$br_")× backend bytes ($(f2 "$t2") s vs $(f2 "$t1") s; $(awk -v b="$b2" 'BEGIN { printf "%.0f", b / 1e6 }') MB vs $(awk -v b="$b1" 'BEGIN { printf "%.1f", b / 1e6 }') MB; listing reads $c2 vs $c1) | ≤ 12× both |"
)
echo
echo "$table"
if [ "$record" = 1 ]; then
	{
		echo
		echo "### $(date -u '+%Y-%m-%d %H:%M UTC') — \`$cmd\`"
		echo
		echo "sessiongate $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(uname -m) $(nproc) cores, $(nginx -v 2>&1 | sed 's/.*: //'), $(redis-server --version | awk '{ print $1, $3 }')."
		echo
		echo "$table"
	} >>docs/performance.md
	echo "(appended to docs/performance.md)"
fi
