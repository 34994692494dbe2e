#!/usr/bin/env python3
"""Compare `inferno quantize` with llama.cpp's `llama-quantize` on the same inputs.

Usage: quantize_parity.py LLAMA_QUANTIZE INFERNO MODEL.gguf... [--types T,T,...] [--out DIR]

For every model and type both tools quantize the model; the script then compares, tensor by
tensor: the assigned type (must be identical), the tensor bytes, and the metadata. Where bytes
differ it reports how many tensors and the largest byte difference count; whole-file identity is
reported too (Inferno writes llama-quantize's tensor order and metadata changes). Nothing from
llama.cpp is part of the repository: pass the path of a llama-quantize you built.
"""
import hashlib
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))
from gguf_crosscheck import GGML_TYPES, read_tensors  # noqa: E402

TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "F16", "BF16", "Q2_K", "Q3_K_S", "Q3_K_M",
         "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K"]


def tensors(path):
    g, ts, data = read_tensors(path)
    return g, {name: (ttype, b) for name, (ttype, _, b) in ts.items()}, data


def main():
    args = sys.argv[1:]
    types, outdir = TYPES, "/tmp/quant-parity"
    if "--types" in args:
        i = args.index("--types")
        types = args[i + 1].split(",")
        del args[i:i + 2]
    if "--out" in args:
        i = args.index("--out")
        outdir = args[i + 1]
        del args[i:i + 2]
    if len(args) < 3:
        print(__doc__)
        return 2
    llama, inferno, models = args[0], args[1], args[2:]
    os.makedirs(outdir, exist_ok=True)
    failures = 0
    print("%-22s %-7s %7s %6s %9s %6s %8s %8s" % ("model", "type", "tensors", "types", "same-bytes",
                                                  "file", "llama s", "ours s"))
    for model in models:
        base = os.path.basename(model).replace(".gguf", "")
        for t in types:
            ref = os.path.join(outdir, "%s.%s.llama.gguf" % (base, t))
            mine = os.path.join(outdir, "%s.%s.inferno.gguf" % (base, t))
            t0 = time.time()
            p = subprocess.run([llama, model, ref, t], capture_output=True, text=True)
            t_ref = time.time() - t0
            if p.returncode != 0:
                print("llama-quantize failed for %s %s:\n%s" % (model, t, p.stderr[-2000:]))
                failures += 1
                continue
            t0 = time.time()
            p = subprocess.run([inferno, "quantize", model, mine, "--type", t, "--force", "-q"],
                               capture_output=True, text=True)
            t_mine = time.time() - t0
            if p.returncode != 0:
                print("inferno quantize failed for %s %s:\n%s" % (model, t, p.stderr[-2000:]))
                failures += 1
                continue
            _, a, da = tensors(ref)
            _, b, db = tensors(mine)
            same_types = set(a) == set(b) and all(a[n][0] == b[n][0] for n in a)
            same_bytes = sum(1 for n in a if n in b and a[n] == b[n])
            same_file = hashlib.sha256(da).digest() == hashlib.sha256(db).digest()
            print("%-22s %-7s %7d %6s %4d/%-4d %6s %8.2f %8.2f" % (
                base[:22], t, len(a), "yes" if same_types else "NO", same_bytes, len(a),
                "same" if same_file else "diff", t_ref, t_mine))
            if not same_types:
                failures += 1
                for n in sorted(a):
                    if n not in b or a[n][0] != b[n][0]:
                        print("    %s: llama %s, inferno %s" % (
                            n, GGML_TYPES[a[n][0]][0],
                            GGML_TYPES[b[n][0]][0] if n in b else "missing"))
            elif same_bytes != len(a):
                failures += 1
                for n in sorted(a):
                    if a[n] != b[n]:
                        diff = sum(1 for x, y in zip(a[n][1], b[n][1]) if x != y)
                        print("    %s (%s): %d of %d bytes differ" % (
                            n, GGML_TYPES[a[n][0]][0], diff, len(a[n][1])))
            for path in (ref, mine):
                os.unlink(path)
    print("FAILURES: %d" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
