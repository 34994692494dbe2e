#!/bin/sh
# Format every C source with the repository's .clang-format; --check only reports (exit 1).
set -eu
cd "$(dirname "$0")/.."
files=$(git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null || find include src tests tools fuzz bench -name '*.[ch]')
[ -z "$files" ] && exit 0
if [ "${1:-}" = "--check" ]; then
    # shellcheck disable=SC2086
    clang-format --dry-run --Werror $files
    echo "format: clean"
else
    # shellcheck disable=SC2086
    clang-format -i $files
fi
