#!/usr/bin/env bash
# fuzz/run.sh - builds the libFuzzer harnesses fuzz/fuzz_*.c against an instrumented libsg.a
# and runs each for a bounded time (make fuzz and make fuzz-short call it; see fuzz/README.md).
#
#   fuzz/run.sh SECONDS [HARNESS…]
#
# From the environment (the Makefile sets them): FUZZ_SRCDIR (the source tree), FUZZ_DIR (the
# instrumented build tree holding libsg.a and config.h; everything this writes goes under it),
# FUZZ_CC, FUZZ_CFLAGS, FUZZ_CPPFLAGS, FUZZ_LIBS. Each harness first runs its regression inputs
# (fuzz/regressions/<harness>/*) once each, then fuzzes a fresh copy of its seeds (fuzz/seeds/
# <harness>/ and the test fixtures listed below) for SECONDS. The source tree is not written.
# Exits 1 when a harness fails to build, a regression input fails, or fuzzing finds a crash
# (its input is left in $FUZZ_DIR/crashes/<harness>/).
set -uo pipefail

secs=${1:?usage: run.sh SECONDS [HARNESS…]}
shift
src=${FUZZ_SRCDIR:?}
dir=${FUZZ_DIR:?}
cc=${FUZZ_CC:-clang}
fx=$src/tests/fixtures

# Seeds from the fixtures, per harness (globs under the source tree).
seeds_of() {
	case $1 in
	fuzz_config) echo "$src/etc/sessiongate.example.json $src/etc/sessiongate.json" ;;
	fuzz_as_sessions)
		echo "$fx/agentscope/sessions/*/listing.json $fx/agentscope/sessions/*/agents.json" \
			"$fx/agentscope/agents/*/agents.json"
		;;
	fuzz_as_events)
		echo "$fx/agentscope/events/*/messages.json $fx/agentscope/resume/*/messages.json" \
			"$fx/agentscope/stream/*/messages*.json"
		;;
	fuzz_as_stream) echo "$fx/agentscope/stream/*/frames.json" ;;
	fuzz_sb)
		echo "$fx/sandbase/events/*/page*.json $fx/sandbase/sessions/*/session.json" \
			"$fx/sandbase/sessions/*/list.json $fx/sandbase/sessions/*/agents.json"
		;;
	fuzz_claude) echo "$fx/claude/*/*/input.json" ;;
	fuzz_jsonscan) echo "$fx/agentscope/sessions/*/listing.json" ;;
	*) echo "" ;;
	esac
}

if [ $# -gt 0 ]; then
	harnesses=("$@")
else
	harnesses=()
	for f in "$src"/fuzz/fuzz_*.c; do
		harnesses+=("$(basename "$f" .c)")
	done
fi

mkdir -p "$dir/fuzz" "$dir/logs"
# Build, two at a time per core.
export cc src dir
export FUZZ_CFLAGS FUZZ_CPPFLAGS FUZZ_LIBS
printf '%s\n' "${harnesses[@]}" | xargs -P "$(($(nproc) * 2))" -I{} sh -c '
	$cc $FUZZ_CFLAGS -fsanitize=fuzzer,address,undefined $FUZZ_CPPFLAGS \
		-o "$dir/fuzz/{}" "$src/fuzz/{}.c" "$dir/libsg.a" $FUZZ_LIBS \
		>"$dir/logs/{}.build.log" 2>&1 || { cat "$dir/logs/{}.build.log"; echo "fuzz: {} does not build"; exit 255; }'
[ $? = 0 ] || exit 1

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
results=()
for h in "${harnesses[@]}"; do
	bin=$dir/fuzz/$h
	log=$dir/logs/$h.log
	corpus=$dir/corpus/$h
	crashes=$dir/crashes/$h
	rm -rf "$corpus" "$crashes"
	mkdir -p "$corpus" "$crashes"
	: >"$log"

	# Regressions: each input once, as a plain run.
	reg=$src/fuzz/regressions/$h
	nreg=0
	if [ -d "$reg" ]; then
		mapfile -t regs < <(find "$reg" -type f ! -name '*.md' | sort)
		nreg=${#regs[@]}
		if [ "$nreg" -gt 0 ] && ! "$bin" "${regs[@]}" >>"$log" 2>&1; then
			results+=("$h: regression input failed (log: $log)")
			grep -E 'ERROR|runtime error|property failed|Running:' "$log" | tail -n 8
			status=1
			continue
		fi
	fi

	# The seed corpus, copied (names made unique from their paths).
	for f in $(seeds_of "$h") "$src/fuzz/seeds/$h"/*; do
		[ -f "$f" ] || continue
		rel=${f#"$src"/}
		cp "$f" "$corpus/${rel//\//_}"
	done
	nseed=$(find "$corpus" -type f | wc -l)

	"$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=20 -rss_limit_mb=2048 \
		-artifact_prefix="$crashes/" "$corpus" >>"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	found=$(find "$crashes" -type f | head -n 1)
	if [ $rc != 0 ] || [ -n "$found" ]; then
		status=1
		grep -E 'ERROR|runtime error|property failed|SUMMARY' "$log" | head -n 8
		results+=("$h: CRASHED after ${execs:-?} executions (seeds $nseed, regressions $nreg); input: ${found:-see $log}; copy it into fuzz/regressions/$h/ once fixed")
	else
		results+=("$h: ${execs:-?} executions in ${secs}s, no crash (seeds $nseed, regressions $nreg)")
	fi
done

echo "fuzz results (${secs}s each; logs in $dir/logs):"
printf '  %s\n' "${results[@]}"
exit $status
