#!/bin/sh
# Perplexity of Inferno beside llama-perplexity on the same files: llama.cpp's plain attention
# path with an f32 KV cache (the reference), Inferno with an f32 KV cache, and, for scale,
# llama.cpp's default path (flash attention, f16 KV cache).
# Besides the relative difference of the final estimates it prints the paired per-chunk
# difference of the mean log-likelihood and its standard error (from the running estimates
# both tools print), so a difference can be told from the noise of the text's chunks.
# usage: scripts/parity/ppl.sh LLAMA_BIN_DIR INFERNO TEXT CTX MODEL...
set -u
bin=$1 inferno=$2 text=$3 ctx=$4
shift 4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| model | llama.cpp PPL (plain, f32 KV) | Inferno PPL (f32 KV) | difference | paired diff ± SE | llama.cpp fa+f16 KV | its difference | its paired diff ± SE |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for m in "$@"; do
    "$bin/llama-perplexity" -m "$m" -f "$text" -c "$ctx" -b "$ctx" -fa off -ctk f32 -ctv f32 -t 2 >"$tmp/l" 2>&1
    "$bin/llama-perplexity" -m "$m" -f "$text" -c "$ctx" -b "$ctx" -fa on -t 2 >"$tmp/f" 2>&1
    "$inferno" perplexity -m "$m" -f "$text" -c "$ctx" -b "$ctx" --kv-type f32 -t 2 >"$tmp/i" 2>/dev/null
    python3 - "$m" "$tmp/l" "$tmp/i" "$tmp/f" <<'PY'
import math, os, re, sys
m, fl, fi, ff = sys.argv[1:]
def final(f):
    r = re.search(r"Final estimate: PPL = ([0-9.]+)", open(f, errors="replace").read())
    return float(r.group(1)) if r else None
def chunks(f):
    v = [float(x) for x in re.findall(r"\[\d+\]([0-9.]+)", open(f, errors="replace").read())]
    out, prev = [], 0.0
    for k, p in enumerate(v, 1):
        tot = k * math.log(p)
        out.append(tot - prev)
        prev = tot
    return out
def rel(a, b):
    return f"{abs(a - b) / b * 100:.4f} %" if a and b else "n/a"
def paired(fa, fb):
    a, b = chunks(fa), chunks(fb)
    d = [y - x for x, y in zip(a, b)]
    if len(d) < 2 or len(a) != len(b):
        return "n/a"
    n = len(d)
    mean = sum(d) / n
    se = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1) / n)
    return f"{(math.exp(mean) - 1) * 100:+.4f} % ± {se * 100:.4f} % ({n} chunks)"
l, i, f = final(fl), final(fi), final(ff)
print(f"| {os.path.basename(m)} | {l or 'failed'} | {i or 'failed'} | {rel(i, l)} | {paired(fl, fi)} "
      f"| {f or 'failed'} | {rel(f, l)} | {paired(fl, ff)} |")
PY
done
