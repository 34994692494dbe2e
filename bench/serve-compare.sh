#!/bin/sh
# serve-compare.sh - inferno serve and llama-server under the same load, alternating:
#   bench/serve-compare.sh INFERNO LLAMA_SERVER MODEL.gguf [ROUNDS] [THREADS] [extra serve-bench args]
# Each round starts one server, runs bench/serve-bench.mjs (8 clients), stops it, then the other.
# Same total context (4096), 8 slots, same thread count. Prints one JSON line per run.
set -eu
INF=$1 LLS=$2 MODEL=$3 ROUNDS=${4:-2} T=${5:-2}
shift 3; [ $# -gt 0 ] && shift; [ $# -gt 0 ] && shift
HERE=$(cd "$(dirname "$0")" && pwd)
PORT_I=18181 PORT_L=18182
wait_up() { for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0; sleep 0.5; done; return 1; }
r=1
while [ "$r" -le "$ROUNDS" ]; do
    "$INF" serve -m "$MODEL" --port $PORT_I --parallel 8 --ctx 4096 -t "$T" >/dev/null 2>/tmp/serve-compare-inferno.log &
    pid=$!; wait_up $PORT_I
    node "$HERE/serve-bench.mjs" --base http://127.0.0.1:$PORT_I/v1 --clients 8 --label "inferno r$r" --json "$@"
    kill $pid; wait $pid || true
    "$LLS" -m "$MODEL" --port $PORT_L -np 8 -c 4096 -t "$T" -tb "$T" >/dev/null 2>/tmp/serve-compare-llama.log &
    pid=$!; wait_up $PORT_L
    node "$HERE/serve-bench.mjs" --base http://127.0.0.1:$PORT_L/v1 --clients 8 --label "llama-server r$r" --json "$@"
    kill $pid; wait $pid || true
    r=$((r + 1))
done
