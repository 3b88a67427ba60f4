#!/usr/bin/env bash
# Installs what is missing on a Debian machine (as root, or through sudo), then builds
# sessiongate into build/. Safe to run again: it only installs what is absent and only
# rebuilds what changed. Set SG_NO_NODE=1 to skip Node.js (not needed by the C suite).
# clang and libclang-rt-14-dev (libFuzzer's runtime) are for make fuzz and make fuzz-short.
# nginx is the load balancer of tests/test_fleet_walk (and the reference of bench/).
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential autoconf automake libtool pkg-config libevent-dev libcurl4-openssl-dev
      libjansson-dev check libssl-dev libhiredis-dev redis-server nginx tzdata curl ca-certificates clang-format
      clang libclang-rt-14-dev)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ "${SG_NO_NODE:-0}" != 1 ]; then
	command -v node >/dev/null 2>&1 || missing+=(nodejs)
	command -v npm >/dev/null 2>&1 || missing+=(npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
	autoreconf -fi >/dev/null
fi
mkdir -p build
if [ ! -f build/Makefile ] || [ configure -nt build/Makefile ]; then
	(cd build && ../configure -q)
fi
make -C build -s -j"$(nproc)" all
make -C build -s -j"$(nproc)" tests/fake_agentscope tests/fake_sandbase
