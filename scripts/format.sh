#!/usr/bin/env bash
# The C sources against the project's .clang-format: every .c and .h under src/, mappings/,
# tests/unit/, tests/integration/ and fuzz/.
#
#   scripts/format.sh           rewrites them in place
#   scripts/format.sh --check   changes nothing; names each file that deviates and exits 1
#
# Works from any directory (make format-check calls it from the build tree). The first line
# of output is clang-format's version, because two versions can format the same file
# differently and a CI log should say which one judged it. CLANG_FORMAT overrides the binary.
set -euo pipefail

check=0
case "${1:-}" in
--check) check=1 ;;
"") ;;
*)
	echo "usage: $0 [--check]" >&2
	exit 2
	;;
esac

cd "$(dirname "$0")/.."
cf=${CLANG_FORMAT:-clang-format}
if ! command -v "$cf" >/dev/null 2>&1; then
	echo "format.sh: $cf not found (Debian: apt-get install clang-format)" >&2
	exit 2
fi
echo "clang-format: $("$cf" --version)"
# A .clang-format that does not parse would make every file "deviate"; say so once instead.
if ! "$cf" --style=file --dump-config >/dev/null; then
	echo "format.sh: .clang-format is not valid for this clang-format" >&2
	exit 2
fi

mapfile -d '' files < <(find src mappings tests/unit tests/integration fuzz -type f \
	\( -name '*.c' -o -name '*.h' \) -print0 | sort -z)
if [ ${#files[@]} -eq 0 ]; then
	echo "format.sh: no C files found under $PWD" >&2
	exit 2
fi

if [ $check = 0 ]; then
	"$cf" --style=file -i "${files[@]}"
	echo "formatted ${#files[@]} files"
	exit 0
fi

# One clang-format run over every file (one per file is ten times slower); it reports each
# deviation as "FILE:LINE:COL: error: code should be clang-formatted".
rc=0
out=$("$cf" --style=file --dry-run -Werror "${files[@]}" 2>&1) || rc=$?
mapfile -t bad < <(sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' \
	<<<"$out" | sort -u)
if [ ${#bad[@]} -gt 0 ]; then
	echo "${#bad[@]} of ${#files[@]} files deviate from .clang-format:"
	printf '  %s\n' "${bad[@]}"
	echo "see where: $cf --dry-run FILE; fix all: scripts/format.sh"
	exit 1
fi
if [ $rc != 0 ]; then
	echo "format.sh: clang-format failed:" >&2
	printf '%s\n' "$out" | head -n 20 >&2
	exit 2
fi
echo "all ${#files[@]} files match .clang-format"
