#!/usr/bin/env python3
"""layer_diff.py - set Inferno's intermediate rows beside llama.cpp's, operation by operation.

  INFERNO_DUMP=DIR_I build/release/tools/dump-logprobs MODEL "$(cat PROMPT_FILE)" 0 f32
  llama-dump MODEL PROMPT_FILE DIR_L       (scripts/parity/llama-dump.cpp, built outside)
  scripts/parity/layer_diff.py DIR_I DIR_L

Both decode the prompt as one chunk. For every tensor both wrote (llama-dump's shapes.txt gives
the row width), in graph order: per row (token), the largest difference relative to the row's
largest llama.cpp value — median and max over the rows, rows above 1e-3, rows equal bit for bit
— and how many values Inferno has smaller / larger in magnitude (a lopsided count is a
systematic difference, not rounding noise); for the router's choices, the rows that differ.
The first line whose rows are not equal is where the two computations part.
"""
import array
import os
import re
import sys

STAGES = ["attn_norm", "kqv_out", "ffn_inp", "ffn_norm", "ffn_moe_logits", "ffn_moe_topk",
          "ffn_moe_out", "ffn_out", "l_out"]


def load(path, code):
    a = array.array(code)
    with open(path, "rb") as f:
        a.frombytes(f.read())
    return a


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    di, dl = sys.argv[1], sys.argv[2]
    shapes = {}
    with open(os.path.join(dl, "shapes.txt")) as f:
        for line in f:
            name, typ, ne0, ne1, ne2, ne3 = line.split()
            shapes[name] = (typ, int(ne0))
    names = []
    for name in shapes:
        m = re.fullmatch(r"(.+)-(\d+)", name)
        if m and m.group(1) in STAGES and os.path.exists(os.path.join(di, name + ".bin")):
            names.append((int(m.group(2)), STAGES.index(m.group(1)), name))
    if not names:
        sys.exit("no tensor written by both")
    print(f"{'tensor':22s} {'rows':>5s} {'median':>9s} {'max':>9s} {'>1e-3':>6s} {'equal':>6s}"
          f" {'|I|<|L|':>8s} {'|I|>|L|':>8s}")
    for _, _, name in sorted(names):
        typ, width = shapes[name]
        code = "i" if typ == "i32" else "f"
        a = load(os.path.join(di, name + ".bin"), code)
        b = load(os.path.join(dl, name + ".bin"), code)
        if len(a) != len(b) or len(b) % width:
            print(f"{name:22s} sizes differ: {len(a)} / {len(b)} values")
            continue
        n = len(b) // width
        if code == "i":
            bad = [r for r in range(n) if a[r * width:(r + 1) * width] != b[r * width:(r + 1) * width]]
            print(f"{name:22s} {n:5d} rows choosing other experts: {len(bad)} {bad[:12]}")
            continue
        rels, smaller, larger = [], 0, 0
        for r in range(n):
            ra, rb = a[r * width:(r + 1) * width], b[r * width:(r + 1) * width]
            top = max(abs(y) for y in rb) or 1.0
            rels.append(max(abs(x - y) for x, y in zip(ra, rb)) / top)
            smaller += sum(1 for x, y in zip(ra, rb) if abs(x) < abs(y))
            larger += sum(1 for x, y in zip(ra, rb) if abs(x) > abs(y))
        s = sorted(rels)
        print(f"{name:22s} {n:5d} {s[n // 2]:9.2e} {s[-1]:9.2e} {sum(1 for x in rels if x > 1e-3):6d}"
              f" {sum(1 for x in rels if x == 0):6d} {smaller:8d} {larger:8d}")


if __name__ == "__main__":
    main()
