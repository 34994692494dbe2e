#!/bin/sh
# Perplexity of Inferno beside llama-perplexity on the same files: llama.cpp's plain attention
# path with an f32 KV cache (the reference), Inferno with an f32 KV cache, and, for scale,
# llama.cpp's default path (flash attention, f16 KV cache).
# Besides the relative difference of the final estimates it prints the paired per-chunk
# difference of the mean log-likelihood and its standard error (from the running estimates
# both tools print), so a difference can be told from the noise of the text's chunks.
#
# CTX may be a comma-separated list (64,128,256): each context is one row, and a "pooled" row
# combines them (the mean of the rows' paired differences weighted by the tokens each scores,
# with the standard error of that mean). On random-weight models a last-bit difference
# anywhere (a flipped expert, an 8-bit level on the other side of its rounding boundary) moves
# a whole chunk, so one context's figure is noisier than its standard error says; the rows of
# several contexts show how much, and the pooled row is the figure to judge.
# usage: scripts/parity/ppl.sh LLAMA_BIN_DIR INFERNO TEXT CTX[,CTX...] MODEL...
set -u
bin=$1 inferno=$2 text=$3 ctxs=$4
shift 4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| model | ctx | llama.cpp PPL (plain, f32 KV) | Inferno PPL (f32 KV) | difference | paired diff ± SE | llama.cpp fa+f16 KV | its difference | its paired diff ± SE |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for m in "$@"; do
    for c in $(echo "$ctxs" | tr ',' ' '); do
        "$bin/llama-perplexity" -m "$m" -f "$text" -c "$c" -b "$c" -fa off -ctk f32 -ctv f32 -t 2 >"$tmp/l.$c" 2>&1 || echo "exit status $?" >>"$tmp/l.$c"
        "$bin/llama-perplexity" -m "$m" -f "$text" -c "$c" -b "$c" -fa on -t 2 >"$tmp/f.$c" 2>&1 || echo "exit status $?" >>"$tmp/f.$c"
        "$inferno" perplexity -m "$m" -f "$text" -c "$c" -b "$c" --kv-type f32 -t 2 >"$tmp/i.$c" 2>/dev/null || echo "exit status $?" >>"$tmp/i.$c"
    done
    python3 - "$m" "$tmp" "$ctxs" <<'PY'
import math, os, re, sys
m, tmp, ctxs = sys.argv[1], sys.argv[2], [int(c) for c in sys.argv[3].split(",")]
def final(f):
    text = open(f, errors="replace").read()
    r = re.search(r"Final estimate: PPL = ([0-9.]+)", text)
    if not r:
        sys.stderr.write(f"{f}: no final estimate; it ends: {text[-300:]!r}\n")
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
    """mean and standard error of the per-chunk differences (log), and the chunk count"""
    a, b = chunks(fa), chunks(fb)
    d = [y - x for x, y in zip(a, b)]
    if len(d) < 2 or len(a) != len(b):
        return None
    n = len(d)
    mean = sum(d) / n
    return mean, math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1) / n), n
def show(p):
    if p is None:
        return "n/a"
    mean, se, n = p
    return f"{(math.exp(mean) - 1) * 100:+.4f} % ± {se * 100:.4f} % ({n} chunks)"
def pool(ps):
    """rows weighted by the tokens they score (chunks x ctx/2)"""
    if any(p is None for p, _ in ps):
        return None
    w = [p[2] * c / 2 for p, c in ps]
    mean = sum(wi * p[0] for wi, (p, _) in zip(w, ps)) / sum(w)
    se = math.sqrt(sum((wi * p[1]) ** 2 for wi, (p, _) in zip(w, ps))) / sum(w)
    return mean, se, sum(p[2] for p, _ in ps)
name = os.path.basename(m)
pi, pf = [], []
for c in ctxs:
    fl, fi, ff = (f"{tmp}/{k}.{c}" for k in "lif")
    l, i, f = final(fl), final(fi), final(ff)
    pi.append((paired(fl, fi), c))
    pf.append((paired(fl, ff), c))
    print(f"| {name} | {c} | {l or 'failed'} | {i or 'failed'} | {rel(i, l)} | {show(pi[-1][0])} "
          f"| {f or 'failed'} | {rel(f, l)} | {show(pf[-1][0])} |")
if len(ctxs) > 1:
    print(f"| {name} | pooled | | | | **{show(pool(pi))}** | | | {show(pool(pf))} |")
PY
done
