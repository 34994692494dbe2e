#!/usr/bin/env python3
"""parity.py - compare Inferno with llama.cpp on the same GGUF files.

Needs llama.cpp built OUTSIDE the repository (see ../../docs/parity.md) and this directory's
llama-ref.cpp compiled against it. For each model and prompt:
  * greedy ids for N tokens from llama.cpp (-fa off, f32 KV) and from Inferno (f32 KV); at the
    first difference, llama.cpp's gap between its top-two log-probabilities;
  * teacher-forced on llama.cpp's continuation: the absolute differences of the log-probs of
    llama.cpp's top-5 tokens at every position (mean and max);
  * llama.cpp's own noise: the same comparison between its flash-attention/f16 path and its
    plain/f32 path.

usage: parity.py LLAMA_REF DUMP_LOGPROBS N_GEN MODEL...
"""
import subprocess
import sys
import tempfile

PROMPTS = ["Once upon a time", "The capital of France is", "def fibonacci(n):"]


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {out.stderr[-400:]}")
    lines = out.stdout.strip().splitlines()
    rows = []
    for line in lines[1:]:
        parts = line.split()
        top = [(int(p.split(":")[0]), float(p.split(":")[1])) for p in parts[1:]]
        rows.append((int(parts[0]), top))
    return lines[0], rows


def compare(ref_rows, our_rows):
    """First greedy difference and the top-5 log-prob differences (teacher-forced rows)."""
    diffs = []
    for (_, rtop), (_, otop) in zip(ref_rows, our_rows):
        od = dict(otop)
        for tok, lp in rtop:
            if tok in od:
                diffs.append(abs(lp - od[tok]))
    return diffs


def main():
    ref, ours, n_gen = sys.argv[1], sys.argv[2], sys.argv[3]
    print(f"| model | prompt | greedy ids equal | first diff (llama top-2 gap) | "
          f"top-5 logprob |diff| mean / max | llama fa+f16 vs plain: mean / max |")
    print("|---|---|---|---|---|---|")
    worst = 0.0
    for model in sys.argv[4:]:
        for prompt in PROMPTS:
            p_ref, ref_rows = run([ref, model, prompt, n_gen, "0", "f32"])
            p_our, our_rows = run([ours, model, prompt, n_gen, "f32"])
            if p_ref != p_our:
                print(f"| {model} | {prompt} | PROMPT IDS DIFFER: {p_ref} / {p_our} |")
                continue
            ref_ids = [r[0] for r in ref_rows]
            our_ids = [r[0] for r in our_rows]
            first = next((i for i, (a, b) in enumerate(zip(ref_ids, our_ids)) if a != b), None)
            gap = ""
            if first is not None:
                top = ref_rows[first][1]
                gap = f"{first} ({top[0][1] - top[1][1]:.4f})"
            with tempfile.NamedTemporaryFile("w", suffix=".ids", delete=False) as f:
                f.write(" ".join(map(str, ref_ids)))
                forced = f.name
            _, forced_rows = run([ours, model, prompt, n_gen, "f32", forced])
            d = compare(ref_rows, forced_rows)
            _, fa_rows = run([ref, model, prompt, n_gen, "1", "f16", forced])
            dn = compare(ref_rows, fa_rows)
            worst = max(worst, max(d))
            print(f"| {model.split('/')[-1]} | {prompt} | {sum(a == b for a, b in zip(ref_ids, our_ids))}"
                  f"/{len(ref_ids)} | {gap or '-'} | {sum(d) / len(d):.2e} / {max(d):.2e} | "
                  f"{sum(dn) / len(dn):.2e} / {max(dn):.2e} |")
            sys.stdout.flush()
    print(f"\nlargest top-5 log-prob difference: {worst:.3e}")


if __name__ == "__main__":
    main()
