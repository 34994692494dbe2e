#!/usr/bin/env python3
"""grammar-score.py - correctness and speed of JSON Schema constrained decoding on a collection
of real schemas with valid and invalid instances (MaskBench's layout: one JSON file per schema,
{"schema": ..., "tests": [{"data": ..., "valid": bool}, ...]}).

    bench/grammar-score.py INFERNO VOCAB.gguf DATA_DIR [--limit N] [--whitespace N]
                           [--timeout-ms N] [--failures FILE]

Instances are serialized as MaskBench does (json.dumps(data, indent=None, ensure_ascii=False):
", " and ": " separators) and fed through `inferno grammar bench`. A schema passes when it
compiles, every valid instance is accepted and every invalid one is stopped. Prints the pass
rate (overall and per collection: the file name's prefix before the first '_' or digit run),
the invalid instances accepted (must be 0), compile refusals, and the mask-time percentiles.
The data is not part of the repository; see docs/structured-output.md for where it comes from.
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile


def collection(name):
    m = re.match(r"([A-Za-z]+(?:_[a-z]+)?)", name)
    return m.group(1) if m else name


def pct(v, p):
    if not v:
        return 0
    v = sorted(v)
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inferno")
    ap.add_argument("vocab")
    ap.add_argument("data")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--whitespace", default=None)
    ap.add_argument("--timeout-ms", default="20000")
    ap.add_argument("--failures", default=None, help="write failing cases (JSON lines) here")
    a = ap.parse_args()

    names = sorted(f for f in os.listdir(a.data) if f.endswith(".json"))
    cases, want = [], {}
    for n in names:
        try:
            with open(os.path.join(a.data, n), encoding="utf-8") as f:
                d = json.load(f)
        except (OSError, ValueError) as e:
            print(f"skipped {n}: {e}", file=sys.stderr)
            continue
        tests = d.get("tests") or []
        if not tests:
            continue
        texts = [json.dumps(t["data"], indent=None, ensure_ascii=False) for t in tests]
        cases.append(json.dumps({"id": n, "schema": d["schema"], "texts": texts},
                                ensure_ascii=False))
        want[n] = [bool(t["valid"]) for t in tests]
        if a.limit and len(cases) >= a.limit:
            break
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        f.write("\n".join(cases) + "\n")
        path = f.name
    cmd = [a.inferno, "grammar", "bench", "-m", a.vocab, "--cases", path, "--json",
           "--timeout-ms", a.timeout_ms]
    if a.whitespace is not None:
        cmd += ["--whitespace", a.whitespace]
    p = subprocess.run(cmd, capture_output=True, text=True)
    os.unlink(path)
    if p.returncode not in (0, 1):
        print(p.stderr, file=sys.stderr)
        return 1
    per = collections.defaultdict(lambda: [0, 0])
    passed = compiled = invalid_accepted = valid_rejected = 0
    refusals = collections.Counter()
    masks, ttfm = [], []
    fails = []
    for line in p.stdout.splitlines():
        o = json.loads(line)
        n = o["id"]
        c = collection(n)
        per[c][1] += 1
        if o["error"] is not None:
            msg = o["error"]
            key = re.sub(r"'[^']*'|\"[^\"]*\"|/[^ ]*|[0-9]+", "_", msg)[:90]
            refusals[key] += 1
            fails.append({"id": n, "error": msg})
            continue
        compiled += 1
        ttfm.append(o["ttfm_us"])
        masks += o["mask_us"]
        got = [r["accepted"] for r in o["results"]]
        ok = got == want[n]
        for g, w in zip(got, want[n]):
            invalid_accepted += g and not w
            valid_rejected += w and not g
        if ok:
            passed += 1
            per[c][0] += 1
        else:
            fails.append({"id": n, "accepted": got, "valid": want[n]})
    total = len(cases)
    print(f"schemas with tests: {total}; compiled {compiled} ({100 * compiled / max(total, 1):.1f} %);"
          f" passing {passed} ({100 * passed / max(total, 1):.1f} %)")
    print(f"invalid instances accepted: {invalid_accepted}; valid instances rejected: "
          f"{valid_rejected}")
    print("per collection (passing / schemas):")
    for c in sorted(per):
        ok, n = per[c]
        print(f"  {c:24s} {ok:5d} / {n:5d}  {100 * ok / n:5.1f} %")
    if masks:
        print(f"mask+commit us: n {len(masks)} mean {sum(masks) / len(masks):.1f} p50 "
              f"{pct(masks, .5)} p99 {pct(masks, .99)} p99.9 {pct(masks, .999)} max {max(masks)}")
    if ttfm:
        print(f"compile us: p50 {pct(ttfm, .5)} p99 {pct(ttfm, .99)} max {max(ttfm)}")
    print("most common refusals:")
    for k, v in refusals.most_common(15):
        print(f"  {v:5d}  {k}")
    if a.failures:
        with open(a.failures, "w") as f:
            for x in fails:
                f.write(json.dumps(x) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
