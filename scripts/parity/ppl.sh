#!/bin/sh
# Perplexity of Inferno beside llama-perplexity on the same files: llama.cpp's plain attention
# path with an f32 KV cache (the reference), Inferno with an f32 KV cache, and, for scale,
# llama.cpp's default path (flash attention, f16 KV cache).
# usage: scripts/parity/ppl.sh LLAMA_BIN_DIR INFERNO TEXT CTX MODEL...
set -u
bin=$1 inferno=$2 text=$3 ctx=$4
shift 4
ppl() {
    sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p'
}
echo "| model | llama.cpp PPL (plain, f32 KV) | Inferno PPL (f32 KV) | difference | llama.cpp fa+f16 KV | its difference |"
echo "|---|---:|---:|---:|---:|---:|"
for m in "$@"; do
    l=$("$bin/llama-perplexity" -m "$m" -f "$text" -c "$ctx" -b "$ctx" -fa off -ctk f32 -ctv f32 -t 2 2>&1 | ppl)
    f=$("$bin/llama-perplexity" -m "$m" -f "$text" -c "$ctx" -b "$ctx" -fa on -t 2 2>&1 | ppl)
    i=$("$inferno" perplexity -m "$m" -f "$text" -c "$ctx" -b "$ctx" --kv-type f32 -t 2 2>/dev/null | ppl)
    python3 - "$m" "$l" "$i" "$f" <<'PY'
import os, sys
m, l, i, f = sys.argv[1:]
def rel(a, b):
    try:
        return f"{abs(float(a) - float(b)) / float(b) * 100:.4f} %"
    except ValueError:
        return "n/a"
print(f"| {os.path.basename(m)} | {l or 'failed'} | {i or 'failed'} | {rel(i, l)} | {f or 'failed'} | {rel(f, l)} |")
PY
done
