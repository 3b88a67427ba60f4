#!/usr/bin/env bash
# deb-smoke.sh - builds the Debian package and proves it runs on a fresh bookworm.
#
#   sudo ./scripts/deb-smoke.sh            # build, lintian, debootstrap (cached), install, run
#   SG_DEB_CHECK=1 ./scripts/deb-smoke.sh  # the same, with make check inside the package build
#
# 1. Copies the working tree (tracked and untracked files, nothing git ignores) to
#    build/deb-smoke/src/sessiongate-VERSION and runs dpkg-buildpackage -us -uc there, so the
#    package files land in build/deb-smoke/src, not next to the repository; they are moved
#    to build/deb-smoke/out. make check is skipped (DEB_BUILD_OPTIONS=nocheck) unless
#    SG_DEB_CHECK=1: scripts/test.sh runs it anyway.
# 2. lintian --fail-on error,warning on the .changes.
# 3. A bookworm root from debootstrap (variant minbase, plus systemd for systemd-analyze),
#    made once into build/deb-smoke/bookworm-base from the mirror this machine's own apt
#    sources name, then copied afresh for every run (build/deb-smoke/root).
# 4. apt-get install ./sessiongate_*.deb inside it (dependencies from the same mirror), and
#    checks what the package put in place (the unit enabled, /etc/default/sessiongate made
#    with a secret, mode 0600); systemd-analyze verify on the unit.
# 5. Starts the service from the installed unit's own command line (ExecStart, with the
#    environment of its EnvironmentFile) inside the root, as an unprivileged user with no
#    capabilities and no new privileges, as DynamicUser= would, in a network namespace of its
#    own (so its port 8080 clashes with nothing). Then asks /healthz (200), /readyz (503
#    naming the backend, which is absent), /v1/sessions with a wrong key (401 and a north
#    error envelope), stops it with SIGTERM (exit status 0) and starts it again, sends SIGHUP
#    with a broken file (refused, still serving), adds a key the way sessiongate(8) says and
#    sends SIGHUP, asks /v1/sessions with it (502 naming the backend: there is no AgentScope
#    in the root), and stops it with SIGTERM (exit status 0).
# The last line is PASS or FAIL; the exit status says the same. Needs root, debootstrap,
# dpkg-dev, debhelper, lintian, curl, unshare and the package's build dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
work=$top/build/deb-smoke
base=$work/bookworm-base
root=$work/root
out=$work/out
failures=0

say() { printf 'deb-smoke: %s\n' "$*"; }
ok() { printf 'deb-smoke: ok   %s\n' "$*"; }
bad() {
	printf 'deb-smoke: FAIL %s\n' "$*"
	failures=$((failures + 1))
}
die() {
	bad "$*"
	echo FAIL
	exit 1
}

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, unshare)"
for tool in dpkg-buildpackage dpkg-parsechangelog dh debootstrap lintian curl unshare ip git; do
	command -v "$tool" >/dev/null || die "missing $tool (apt-get install dpkg-dev debhelper debootstrap lintian curl iproute2)"
done

# The host's Debian mirror: the first URI of a deb822 source or a one-line "deb" source
# that serves bookworm.
mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk 'BEGIN { RS = ""; IGNORECASE = 1 }
		     /(^|\n)Types:[^\n]*deb([ \t]|\n|$)/ && /(^|\n)Suites:[^\n]*bookworm([ \t]|\n|$)/ {
			if (match($0, /(^|\n)URIs:[ \t]*[^ \t\n]+/)) {
				u = substr($0, RSTART, RLENGTH); sub(/^\n?URIs:[ \t]*/, "", u); print u; exit
			}
		     }' "$f"
	done
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) {
			if ($(i + 1) == "bookworm") print $i; break } }'
}

# shellcheck disable=SC2317 # run by the trap
cleanup() {
	for m in "$root/proc" "$root/dev/pts" "$root/dev"; do
		mountpoint -q "$m" 2>/dev/null && umount -l "$m"
	done
	return 0
}
trap cleanup EXIT

# ---- 1. build ----
version=$(dpkg-parsechangelog -l debian/changelog -S Version)
src=$work/src/sessiongate-$version
rm -rf "$work/src" "$out"
mkdir -p "$src" "$out"
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
	tar --null -T - -cf - | tar -xf - -C "$src"
opts=${DEB_BUILD_OPTIONS:-}
[ "${SG_DEB_CHECK:-0}" = 1 ] || opts="$opts nocheck"
say "dpkg-buildpackage -us -uc in $src (DEB_BUILD_OPTIONS=${opts# })"
if (cd "$src" && DEB_BUILD_OPTIONS="${opts# }" dpkg-buildpackage -us -uc) >"$work/build.log" 2>&1; then
	mv "$work"/src/sessiongate*_"$version"[._]* "$out"/
	ok "built $(cd "$out" && echo *.deb)"
else
	tail -n 30 "$work/build.log"
	die "dpkg-buildpackage failed (log: $work/build.log)"
fi

# ---- 2. lintian ----
if lintian --fail-on error,warning --display-info "$out"/*.changes >"$work/lintian.log" 2>&1; then
	ok "lintian --fail-on error,warning: no error or warning ($(grep -c '^[IPX]:' "$work/lintian.log" || true) info tag(s))"
else
	cat "$work/lintian.log"
	bad "lintian found errors or warnings"
fi

# ---- 3. a fresh bookworm ----
if [ ! -f "$base/.sessiongate-base" ]; then
	url=$(mirror | head -n 1)
	[ -n "$url" ] || die "no bookworm source in /etc/apt/sources.list{,.d}"
	say "debootstrap bookworm from $url into $base (once)"
	rm -rf "$base.tmp"
	debootstrap --variant=minbase --include=systemd bookworm "$base.tmp" "$url" \
		>"$work/debootstrap.log" 2>&1 || die "debootstrap failed (log: $work/debootstrap.log)"
	touch "$base.tmp/.sessiongate-base"
	rm -rf "$base"
	mv "$base.tmp" "$base"
fi
# A run killed before its trap leaves /proc and /dev mounted in the root: unmount them
# first, and never let rm cross into another file system (the host's /dev).
cleanup
rm -rf --one-file-system "$root"
cp -a "$base" "$root"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 "$@"; }

# ---- 4. install ----
cp "$out"/sessiongate_"$version"_*.deb "$root/tmp/"
deb=$(cd "$root/tmp" && echo sessiongate_"$version"_*.deb)
if in_root sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends /tmp/$deb" \
	>"$work/install.log" 2>&1; then
	ok "apt-get install ./$deb in a fresh bookworm ($(in_root dpkg-query -W -f="\${Version}" sessiongate))"
else
	tail -n 20 "$work/install.log"
	die "the package does not install (log: $work/install.log)"
fi
unit=$root/lib/systemd/system/sessiongate.service
for f in /usr/bin/sessiongate /lib/systemd/system/sessiongate.service \
	/etc/sessiongate/sessiongate.json /etc/sessiongate/sessiongate.example.json \
	/usr/share/man/man8/sessiongate.8.gz /etc/systemd/system/multi-user.target.wants/sessiongate.service; do
	if [ -e "$root$f" ] || [ -L "$root$f" ]; then ok "installed $f"; else bad "not installed: $f"; fi
done
if [ "$(stat -c %a "$root/etc/default/sessiongate" 2>/dev/null)" = 600 ] &&
	grep -Eq '^SESSIONGATE_CURSOR_SECRET=[0-9a-f]{64}$' "$root/etc/default/sessiongate"; then
	ok "/etc/default/sessiongate made with a random cursor secret, mode 0600"
else
	bad "/etc/default/sessiongate is missing, without a secret, or not mode 0600"
fi
if grep -q '^/etc/sessiongate/sessiongate.json$' "$root/var/lib/dpkg/info/sessiongate.conffiles"; then
	ok "/etc/sessiongate/sessiongate.json is a conffile"
else
	bad "sessiongate.json is not a conffile"
fi
if verify=$(in_root systemd-analyze verify --man=no /lib/systemd/system/sessiongate.service 2>&1) &&
	[ -z "$verify" ]; then
	ok "systemd-analyze verify sessiongate.service: clean"
else
	printf '%s\n' "$verify"
	bad "systemd-analyze verify sessiongate.service"
fi

# ---- 5. run it as the unit would ----
execstart=$(sed -n 's/^ExecStart=//p' "$unit")
envfile=$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' "$unit")
if [ -z "$execstart" ] || [ -z "$envfile" ]; then
	die "the unit has no ExecStart or EnvironmentFile"
fi
say "ExecStart=$execstart (environment from $envfile)"
mapfile -t envs < <(grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "$root$envfile" || true)
# DynamicUser picks an unused uid in 61184..65519; no capabilities, no new privileges.
# shellcheck disable=SC2206
cmd=($execstart)
key="sk-smoke-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
# Everything that talks to the service runs in one network namespace of its own, from a
# script that spells out the command line and the environment.
{
	echo 'set -u'
	echo 'ip link set lo up'
	printf 'root=%q\nkey=%q\n' "$root" "$key"
	printf 'envs=('; printf '%q ' "${envs[@]}"; echo ')'
	printf 'cmd=('; printf '%q ' "${cmd[@]}"; echo ')'
	cat <<'EOS'
log=$root/tmp/sessiongate.log
start() {
	chroot "$root" /usr/bin/setpriv --reuid=61184 --regid=61184 --clear-groups \
		--no-new-privs --inh-caps=-all --bounding-set=-all \
		/usr/bin/env -i PATH=/usr/bin:/bin "${envs[@]}" "${cmd[@]}" >>"$log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		curl -s -o /dev/null http://127.0.0.1:8080/healthz && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "RESULT FAIL the service did not come up"
	return 1
}
stop() {
	kill -TERM "$pid"
	wait "$pid"
}
ask() { # name url expected-status [header] ; prints RESULT lines
	local name=$1 url=$2 want=$3 hdr=${4:-x-none: 1} code body
	body=$(curl -s -H "$hdr" -w '\n%{http_code}' "http://127.0.0.1:8080$url")
	code=${body##*$'\n'}
	body=${body%$'\n'*}
	echo "$name -> $code $body"
	case " $want " in
	*" $code "*) echo "RESULT ok   $name: $code" ;;
	*) echo "RESULT FAIL $name: $code, wanted $want" ;;
	esac
	LAST=$body
}
start || exit 0
echo "RESULT ok   started as uid $(stat -c %u /proc/$pid 2>/dev/null) from the unit's ExecStart"
ask "GET /healthz" /healthz 200
ask "GET /readyz" /readyz 503 # its backend is not there
case $LAST in
*'"reason":"unreachable"'*) echo "RESULT ok   /readyz names the unreachable backend" ;;
*) echo "RESULT FAIL /readyz does not name the unreachable backend: $LAST" ;;
esac
ask "GET /v1/sessions, wrong key" /v1/sessions 401 "x-api-key: sk-wrong"
case $LAST in
*'"type":"error"'*'"error":{'*) echo "RESULT ok   a north error envelope" ;;
*) echo "RESULT FAIL not a north error envelope: $LAST" ;;
esac
stop
rc=$?
[ "$rc" = 0 ] && echo "RESULT ok   SIGTERM: exit status 0" || echo "RESULT FAIL SIGTERM: exit status $rc"
start || exit 0
conf=$root/etc/sessiongate/sessiongate.json
# A broken file on SIGHUP (the unit's ExecReload) is refused and the running one kept.
cp "$conf" "$conf.good"
echo '{ "listen": ' >"$conf"
kill -HUP "$pid"
sleep 1
if grep -q 'reload refused' "$log" && curl -sf -o /dev/null http://127.0.0.1:8080/healthz; then
	echo "RESULT ok   SIGHUP with a broken file: refused, still serving"
else
	echo "RESULT FAIL SIGHUP with a broken file"
fi
# Add a key as sessiongate(8) says: its SHA-256 into keys[].sha256, then SIGHUP.
hash=$(printf %s "$key" | chroot "$root" /usr/bin/sessiongate hash-key)
sed "s/\"sha256\": \"0\{64\}\"/\"sha256\": \"$hash\"/" "$conf.good" >"$conf"
kill -HUP "$pid"
for _ in $(seq 50); do
	grep -q 'reloaded configuration' "$log" && break
	sleep 0.1
done
ask "GET /v1/sessions, the key added by SIGHUP" /v1/sessions 502 "x-api-key: $key"
case $LAST in
*'"type":"error"'*agentscope*) echo "RESULT ok   the 502 names the backend" ;;
*) echo "RESULT FAIL the 502 does not name the backend: $LAST" ;;
esac
stop
rc=$?
[ "$rc" = 0 ] && echo "RESULT ok   SIGTERM: exit status 0" || echo "RESULT FAIL SIGTERM: exit status $rc"
grep -q "$key" "$log" && echo "RESULT FAIL the API key is in the log" || echo "RESULT ok   the API key is not in the log"
EOS
} >"$work/run.sh"
unshare --net bash "$work/run.sh" >"$work/run.log" 2>&1 || true
rm -f "$work/run.sh" # it spells out the environment, secret included
cat "$root/tmp/sessiongate.log" >>"$work/run.log" 2>/dev/null || true
while IFS= read -r line; do
	case $line in
	"RESULT ok   "*) ok "${line#RESULT ok   }" ;;
	"RESULT FAIL "*) bad "${line#RESULT FAIL }" ;;
	esac
done < <(grep '^RESULT ' "$work/run.log")
grep -q '^RESULT ok   started' "$work/run.log" || bad "the service never started (log: $work/run.log)"

if [ "$failures" = 0 ]; then
	say "package: $(cd "$out" && echo *.deb); logs under $work"
	echo PASS
	exit 0
fi
say "$failures check(s) failed; logs under $work"
echo FAIL
exit 1
