#!/usr/bin/env python3
"""arch_parity.py - every architecture against llama.cpp's recorded outputs.

tests/data/parity/<name>.ref holds what llama.cpp (scripts/parity/llama-ref.cpp, -fa off, f32 KV
cache) printed for a synthetic model: the gen-synthetic arguments that make the model (random
weights from a fixed seed, so the same file here as where the reference was recorded), then per
prompt the prompt ids and, per generated position, llama.cpp's greedy id and its top-5
log-probabilities. scripts/parity/record-refs.sh writes these files.

Quantized entries ("# quant: TYPE") were quantized by llama-quantize; here `inferno quantize`
makes the same file (it writes llama-quantize's bytes). Their log-probabilities move with the
rounding of the quantized activations (and in mixtures of experts a flipped expert choice moves
them a lot: llama.cpp's own two attention paths differ by up to 2.6 nats there), so for them the
mean top-5 difference is bounded (QUANT_MEAN) and, where llama.cpp's top two are more than
QUANT_GAP apart, at least QUANT_AGREE of the argmaxes must be llama.cpp's.

Here the model is made again, Inferno is teacher-forced on llama.cpp's continuation
(tools/dump-logprobs with a forced-ids file), and per position:
  * the prompt ids must be llama.cpp's;
  * the log-probabilities of llama.cpp's top-5 tokens must agree within TOL;
  * Inferno's argmax must be llama.cpp's id wherever llama.cpp's top two are more than GAP
    apart (below that, both are near-ties that rounding may flip).

usage: arch_parity.py GEN_SYNTHETIC DUMP_LOGPROBS INFERNO VOCAB_GGUF REF_DIR [NAME...]
"""
import os
import subprocess
import sys
import tempfile

TOL = {"f32": 5e-3, "f16": 5e-2}
GAP = 0.02
QUANT_MEAN, QUANT_GAP, QUANT_AGREE = 0.1, 0.3, 0.9


def parse_ref(path):
    gen_args, prompts, cur, quant = None, [], None, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("# quant:"):
                quant = line[len("# quant:"):].strip()
            elif line.startswith("# gen:"):
                gen_args = line[len("# gen:"):].split()
            elif line.startswith("# text:"):
                cur = {"text": line[len("# text: "):], "prompt": None, "rows": []}
                prompts.append(cur)
            elif line.startswith("prompt:"):
                cur["prompt"] = line
            elif line and not line.startswith("#"):
                parts = line.split()
                top = [(int(p.split(":")[0]), float(p.split(":")[1])) for p in parts[1:]]
                cur["rows"].append((int(parts[0]), top))
    if gen_args is None or not prompts:
        raise SystemExit(f"{path}: no '# gen:' line or no prompts")
    return gen_args, prompts, quant


def main():
    gen, dump, inferno, vocab, ref_dir = sys.argv[1:6]
    names = sys.argv[6:] or sorted(n[:-4] for n in os.listdir(ref_dir) if n.endswith(".ref"))
    if not os.path.exists(vocab):
        print(f"SKIP: {vocab} is absent (../shared test data)")
        return 77
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            gen_args, prompts, quant = parse_ref(os.path.join(ref_dir, name + ".ref"))
            model = os.path.join(tmp, name + ".gguf")
            subprocess.run([gen, *gen_args, "--vocab", vocab, "--out", model], check=True,
                           capture_output=True)
            if quant:
                subprocess.run([inferno, "quantize", model, model + ".q", "--type", quant],
                               check=True, capture_output=True)
                os.replace(model + ".q", model)
            wtype = gen_args[gen_args.index("--type") + 1] if "--type" in gen_args else "f32"
            tol = None if quant else TOL[wtype]
            # sliding-window models twice: with the full cache, and with a context large enough
            # for the sliding-window layers' own cache, filled in chunks of 4 so that slots are
            # given back and reused while the window moves
            runs = [("", {})]
            if name.startswith(("gemma", "gpt-oss")):
                runs.append((" (sliding-window cache)",
                             {"INFERNO_DUMP_CTX": "4096", "INFERNO_DUMP_BATCH": "4"}))
            for label, env in runs:
                failures += check(name + label, dump, model, prompts, tol, env)
    return 1 if failures else 0


def check(name, dump, model, prompts, tol, env):
    """Teacher-force Inferno on llama.cpp's ids; print the comparison, return 1 on failure.
    tol None: a quantized model (mean bound, wider argmax gap)."""
    worst, n_rows, n_checked, bad, total, count, n_agree = 0.0, 0, 0, [], 0.0, 0, 0
    gap_min = QUANT_GAP if tol is None else GAP
    for p in prompts:
        forced = os.path.join(os.path.dirname(model), "force.txt")
        with open(forced, "w") as f:
            f.write(" ".join(str(r[0]) for r in p["rows"]))
        out = subprocess.run([dump, model, p["text"], str(len(p["rows"])), "f32", forced],
                             capture_output=True, text=True, timeout=600,
                             env={**os.environ, **env})
        if out.returncode != 0:
            bad.append(f"dump-logprobs failed: {out.stderr[-300:]}")
            continue
        lines = out.stdout.strip().splitlines()
        if lines[0] != p["prompt"]:
            bad.append(f"prompt ids differ for {p['text']!r}: {lines[0]} vs {p['prompt']}")
            continue
        for i, ((ref_id, ref_top), line) in enumerate(zip(p["rows"], lines[1:])):
            parts = line.split()
            ours = {int(q.split(":")[0]): float(q.split(":")[1]) for q in parts[1:]}
            our_best = int(parts[1].split(":")[0])
            n_rows += 1
            for tok, lp in ref_top:
                if tok in ours:
                    d = abs(ours[tok] - lp)
                    worst = max(worst, d)
                    total += d
                    count += 1
                    if tol is not None and d > tol:
                        bad.append(f"{p['text']!r} position {i}: token {tok} log-prob "
                                   f"{ours[tok]:.6f}, llama.cpp {lp:.6f}")
            gap = ref_top[0][1] - ref_top[1][1]
            if gap > gap_min:
                n_checked += 1
                n_agree += our_best == ref_id
                if our_best != ref_id and tol is not None:
                    bad.append(f"{p['text']!r} position {i}: argmax {our_best}, "
                               f"llama.cpp {ref_id} (its top-2 gap {gap:.4f})")
        if len(lines) - 1 != len(p["rows"]):
            bad.append(f"{p['text']!r}: {len(lines) - 1} rows for {len(p['rows'])}")
    mean = total / max(count, 1)
    if tol is None and mean > QUANT_MEAN:
        bad.append(f"mean top-5 log-prob |diff| {mean:.3e} > {QUANT_MEAN}")
    if tol is None and n_agree < QUANT_AGREE * n_checked:
        bad.append(f"argmax equal at {n_agree} of {n_checked} positions, below {QUANT_AGREE}")
    status = "ok" if not bad else "FAIL"
    bound = f"tolerance {tol}" if tol is not None else f"mean {mean:.2e}, bound {QUANT_MEAN}"
    print(f"{name}: {status}: {n_rows} positions, top-5 log-prob max |diff| {worst:.2e} "
          f"({bound}), argmax equal at {n_agree}/{n_checked} positions with a top-2 gap > "
          f"{gap_min}")
    for b in bad[:10]:
        print(f"  {b}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
