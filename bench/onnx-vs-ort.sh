#!/bin/sh
# onnx-vs-ort.sh - `inferno onnx bench` beside onnxruntime-node (tests/onnx, pinned 1.30.0) on
# the three models of ../shared/testdata/onnx-models, alternating (inferno, ORT, inferno, ORT …)
# ROUNDS times per model and thread count; each run is one warm-up plus REPS timed inferences on
# the same random-input recipe; prints one line per run and the median of the medians.
#   bench/onnx-vs-ort.sh [INFERNO] [ROUNDS] [REPS]
# Needs: npm ci --prefix tests/onnx (ONNXRUNTIME_NODE_INSTALL=skip).
set -eu
cd "$(dirname "$0")/.."
BIN=${1:-build/release/inferno}
ROUNDS=${2:-5}
REPS=${3:-20}
M=../shared/testdata/onnx-models
med() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for t in 1 2; do
    for m in mnist-8 super-resolution-10 light-densenet121; do
        : > /tmp/onnx-bench-inf.$$
        : > /tmp/onnx-bench-ort.$$
        r=0
        while [ $r -lt "$ROUNDS" ]; do
            "$BIN" onnx bench -m $M/$m/model.onnx --threads $t --reps "$REPS" |
                sed -n 's/.*"median_ms": *\([0-9.]*\).*/\1/p' >> /tmp/onnx-bench-inf.$$
            node tests/onnx/bench.mjs $M/$m/model.onnx $t "$REPS" 2>/dev/null |
                sed -n 's/.*"median_ms":\([0-9.]*\).*/\1/p' >> /tmp/onnx-bench-ort.$$
            r=$((r + 1))
        done
        a=$(med < /tmp/onnx-bench-inf.$$)
        b=$(med < /tmp/onnx-bench-ort.$$)
        echo "$m threads=$t inferno_ms=$a ort_ms=$b speedup=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b / a}')"
        echo "  inferno: $(tr '\n' ' ' < /tmp/onnx-bench-inf.$$)"
        echo "  ort:     $(tr '\n' ' ' < /tmp/onnx-bench-ort.$$)"
    done
done
rm -f /tmp/onnx-bench-inf.$$ /tmp/onnx-bench-ort.$$
