#!/bin/sh
# Static analysis: clang-tidy (checks in .clang-tidy) over compile_commands.json, and cppcheck.
# Usage: scripts/lint.sh [build-dir]   (default build/release; configured if missing)
set -eu
cd "$(dirname "$0")/.."
build=${1:-build/release}
[ -f "$build/compile_commands.json" ] || cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
files=$(git ls-files --cached --others --exclude-standard 'src/*.c' 'tools/*.c' 2>/dev/null || find src tools -name '*.c')
echo "clang-tidy: $(echo "$files" | wc -w) files"
status=0
# shellcheck disable=SC2086
clang-tidy -p "$build" --quiet --warnings-as-errors='*' $files >"$build/clang-tidy.log" 2>&1 || status=$?
grep -v "warnings generated" "$build/clang-tidy.log" || true
echo "cppcheck:"
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
    --inline-suppr --suppress=missingIncludeSystem -D_GNU_SOURCE -Iinclude -Isrc \
    -I"$build/generated" $files
if [ "$status" -ne 0 ]; then
    echo "lint: clang-tidy found problems" >&2
    exit 1
fi
echo "lint: clean"
