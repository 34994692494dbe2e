#!/usr/bin/env python3
"""models_info_crosscheck.py - `inferno models info FILE --json --metadata --tensors` against an
independent struct-based GGUF decoder (tests/gguf_crosscheck.py's): every metadata key with its
value type and value (arrays: length and every element), every tensor's name, shape and type.

usage: models_info_crosscheck.py INFERNO TESTDATA_DIR"""
import glob
import json
import math
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_crosscheck import GGUF, GGML_TYPES, TYPE_NAMES  # noqa: E402


def plain(v, vtype):
    if vtype in (6, 12):
        return v[0]
    if vtype == 9:
        etype, items = v
        return [plain(x, etype) for x in items]
    return v


def same(mine, theirs):
    if isinstance(theirs, float) or isinstance(mine, float):
        if isinstance(theirs, float) and math.isnan(theirs):
            return mine is None or (isinstance(mine, float) and math.isnan(mine))
        return abs(float(mine) - float(theirs)) <= 1e-6 * max(1.0, abs(float(theirs)))
    if isinstance(theirs, list):
        return isinstance(mine, list) and len(mine) == len(theirs) and all(
            same(a, b) for a, b in zip(mine, theirs))
    if isinstance(mine, bool) or isinstance(theirs, bool):
        return bool(mine) == bool(theirs)
    return mine == theirs


def main():
    exe, root = sys.argv[1], sys.argv[2]
    files = sorted(glob.glob(os.path.join(root, "**", "*.gguf"), recursive=True))
    if not files:
        print(f"SKIP: no .gguf under {root}")
        return 77
    failed = 0
    for path in files:
        ref = GGUF(open(path, "rb").read())
        p = subprocess.run([exe, "models", "info", path, "--json", "--metadata", "--tensors"],
                           capture_output=True, timeout=120)
        errors = []
        if p.returncode != 0:
            errors.append(f"exit {p.returncode}: {p.stderr[-300:]!r}")
        else:
            info = json.loads(p.stdout)
            md = info["metadata"]
            if sorted(md) != sorted(k for k, _, _ in ref.kvs):
                errors.append("metadata keys differ")
            for key, vtype, value in ref.kvs:
                mine = md.get(key)
                if mine is None:
                    continue
                if mine["type"] != TYPE_NAMES[vtype]:
                    errors.append(f"{key}: type {mine['type']} != {TYPE_NAMES[vtype]}")
                elif not same(mine["value"], plain(value, vtype)):
                    errors.append(f"{key}: value differs")
            tensors = info.get("tensors", [])
            if len(tensors) != len(ref.tensors):
                errors.append(f"{len(tensors)} tensors != {len(ref.tensors)}")
            for t, (name, ttype, shape, _) in zip(tensors, ref.tensors):
                if t["name"] != name or t["shape"] != shape or t["type"] != GGML_TYPES[ttype][0]:
                    errors.append(f"tensor {name}: {t} != {shape} {GGML_TYPES[ttype][0]}")
        status = "ok" if not errors else "FAILED"
        print(f"{os.path.relpath(path, root)}: {len(ref.kvs)} keys, {len(ref.tensors)} tensors: "
              f"{status}")
        for e in errors[:10]:
            print("   ", e)
        failed += bool(errors)
    print(f"{len(files) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
