#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: the Check unit and
# integration tests (make check), the style check (make format-check, skipped with
# SG_SKIP_FORMAT=1), the distribution check (make distcheck, skipped with
# SG_SKIP_DISTCHECK=1), the same Check suite under ASan+UBSan (make check-asan, skipped with
# SG_SKIP_ASAN=1), a short pass of every libFuzzer harness (make fuzz-short, skipped with
# SG_SKIP_FUZZ=1), and the official-SDK conformance suite. The last line is the total,
# "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

status=0
make -C build -j"$(nproc)" check || status=1
for log in build/tests/test_*.log; do
	echo "== ${log#build/}"
	grep -E '^[0-9]+%: Checks:' "$log" || tail -n 5 "$log"
done

# Style: one unit, failed by any file that deviates from .clang-format. The log starts with
# clang-format's version (two versions may format the same file differently).
format=skipped
if [ "${SG_SKIP_FORMAT:-0}" != 1 ]; then
	if make -C build -s format-check >build/format.log 2>&1; then
		format=passed
	else
		format=failed
		status=1
	fi
	head -n 40 build/format.log
	echo "format (make format-check): $format (log: build/format.log)"
fi

distcheck=skipped
if [ "${SG_SKIP_DISTCHECK:-0}" != 1 ]; then
	if make -C build -j"$(nproc)" distcheck >build/distcheck.log 2>&1; then
		distcheck=passed
	else
		distcheck=failed
		tail -n 30 build/distcheck.log
		status=1
	fi
	echo "distcheck: $distcheck (log: build/distcheck.log)"
fi

asan=skipped
if [ "${SG_SKIP_ASAN:-0}" != 1 ]; then
	if make -C build check-asan >build/asan.log 2>&1; then
		asan=passed
	else
		asan=failed
		grep -E '^(FAIL|ERROR):|runtime error|AddressSanitizer|LeakSanitizer' build/asan.log | head -n 20
		status=1
	fi
	echo "sanitizers (make check-asan): $asan (log: build/asan.log)"
fi

# A few seconds of each fuzz harness (fuzz/README.md), its regression inputs first; a crash
# fails the run and leaves the input under build/fuzzbuild/crashes/.
fuzz=skipped
if [ "${SG_SKIP_FUZZ:-0}" != 1 ]; then
	if make -C build fuzz-short >build/fuzz.log 2>&1; then
		fuzz=passed
	else
		fuzz=failed
		grep -E 'CRASHED|regression input failed|does not build|ERROR|runtime error' \
			build/fuzz.log | head -n 20
		status=1
	fi
	echo "fuzz (make fuzz-short): $fuzz (log: build/fuzz.log)"
fi

conf_log=build/conformance.log
(
	cd tests/conformance &&
	npm ci --no-audit --no-fund --loglevel=error &&
	SG_BUILDDIR="$PWD/../../build" npm test --silent
) 2>&1 | tee "$conf_log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

# Totals: Check's per-program summaries plus the conformance suite's own line. A program
# that died before printing its summary counts as one failure.
passed=0
failed=0
for log in build/tests/test_*.log; do
	line=$(grep -E '^[0-9]+%: Checks:' "$log" | tail -n 1)
	if [ -z "$line" ]; then
		failed=$((failed + 1))
		continue
	fi
	n=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
	f=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line")
	e=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
	passed=$((passed + n - f - e))
	failed=$((failed + f + e))
done
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$conf_log" | tail -n 1)
if [ -n "$line" ]; then
	passed=$((passed + $(cut -d' ' -f1 <<<"$line")))
	failed=$((failed + $(cut -d' ' -f3 <<<"$line")))
else
	failed=$((failed + 1))
fi
for unit in "$format" "$distcheck" "$asan" "$fuzz"; do
	case $unit in
	passed) passed=$((passed + 1)) ;;
	failed) failed=$((failed + 1)) ;;
	esac
done
[ "$failed" = 0 ] || status=1
echo "${passed} passed, ${failed} failed"
exit $status
