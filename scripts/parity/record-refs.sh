#!/bin/sh
# record-refs.sh - write tests/data/parity/<name>.ref: llama.cpp's greedy ids and top-5
# log-probabilities (-fa off, f32 KV cache) on synthetic models of every architecture, which
# tests/arch_parity.py compares Inferno against. Needs llama.cpp built outside the repository and
# llama-ref compiled against it (docs/parity.md).
#
#   scripts/parity/record-refs.sh LLAMA_REF GEN_SYNTHETIC VOCAB_GGUF OUT_DIR [LLAMA_QUANTIZE]
#
# Entries with a quantization type are quantized by llama-quantize (LLAMA_QUANTIZE, default
# beside LLAMA_REF's libraries in /opt/llama/src/build/bin); the test quantizes with
# `inferno quantize`, which writes the same bytes.
set -eu
ref=$1 gen=$2 vocab=$3 out=$4 quantize=${5:-/opt/llama/src/build/bin/llama-quantize}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# name | gen-synthetic arguments | tokens generated (past the sliding windows of gemma2's 64
# and gemma3's 32 cells) | quantization type (none: as generated)
while IFS='|' read -r name args n_gen qtype; do
    [ -n "$name" ] || continue
    # shellcheck disable=SC2086
    "$gen" $args --vocab "$vocab" --out "$tmp/m.gguf" >/dev/null
    if [ -n "$qtype" ]; then
        "$quantize" "$tmp/m.gguf" "$tmp/q.gguf" "$qtype" >/dev/null 2>&1
        mv "$tmp/q.gguf" "$tmp/m.gguf"
    fi
    {
        echo "# llama.cpp (scripts/parity/llama-ref.cpp, -fa off, f32 KV) on gen-synthetic $args${qtype:+ quantized to $qtype}"
        echo "# gen: $args"
        [ -z "$qtype" ] || echo "# quant: $qtype"
        for p in "Once upon a time" "The capital of France is" "def fibonacci(n):"; do
            echo "# text: $p"
            "$ref" "$tmp/m.gguf" "$p" "$n_gen" 0 f32
        done
    } >"$out/$name.ref"
    echo "wrote $out/$name.ref"
done <<'LIST'
gemma2|--arch gemma2 --seed 11|80
gemma3|--arch gemma3 --seed 12|64
phi3|--arch phi3 --seed 13|32
phi3-longrope|--arch phi3 --seed 19 --longrope 256|32
granite|--arch granite --seed 14|32
qwen2moe|--arch qwen2moe --seed 15|32
qwen3moe|--arch qwen3moe --seed 16|32
olmoe|--arch olmoe --seed 17|32
mixtral|--arch llama --n-expert 4 --seed 18|32
gpt-oss|--arch gpt-oss --seed 20|48
gemma2-q4km|--arch gemma2 --seed 31|80|Q4_K_M
gemma3-q8|--arch gemma3 --seed 32|64|Q8_0
phi3-q4km|--arch phi3 --seed 33|32|Q4_K_M
qwen3moe-q4km|--arch qwen3moe --seed 36|32|Q4_K_M
mixtral-q8|--arch llama --n-expert 4 --seed 38|32|Q8_0
gpt-oss-q4km|--arch gpt-oss --seed 40|48|Q4_K_M
gpt-oss-mxfp4|--arch gpt-oss --seed 41|48|MXFP4_MOE
gemma2-f16|--arch gemma2 --seed 21 --type f16|80
qwen3moe-f16|--arch qwen3moe --seed 26 --type f16|32
LIST
