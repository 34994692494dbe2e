#!/bin/sh
# Run every libFuzzer target for SECONDS each (default 60) with clang, ASan and UBSan.
# New corpus entries go to build/fuzz/corpus/<name> (the committed corpus is read, not written);
# crashes go to fuzz/artifacts/. Usage: scripts/fuzz.sh [seconds] [target...]
set -eu
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
build=build/fuzz
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DINFERNO_FUZZ=ON >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
targets=${*:-$(for f in fuzz/fuzz_*.c; do basename "$f" .c | sed 's/^fuzz_//'; done)}
mkdir -p fuzz/artifacts
for t in $targets; do
    work="$build/corpus/$t"
    mkdir -p "$work"
    echo "== fuzz_$t for ${secs}s"
    bin="$build/fuzz/fuzz_$t"
    if [ ! -x "$bin" ]; then
        echo "fuzz: no target '$bin'" >&2
        exit 2
    fi
    "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="fuzz/artifacts/${t}-" "$work" "fuzz/corpus/$t" 2>&1 |
        grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ *DONE)|ERROR|SUMMARY|Test unit written|INFO: (Loaded|seed)' || true
done
if ls fuzz/artifacts/* >/dev/null 2>&1; then
    echo "fuzz: crashes found in fuzz/artifacts/" >&2
    exit 1
fi
echo "fuzz: no findings"
