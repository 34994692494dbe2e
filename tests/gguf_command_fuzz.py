#!/usr/bin/env python3
"""Deterministic mutation run of the CLI commands over GGUF files (issue #14 item 6).

Usage: gguf_command_fuzz.py INFERNO [SHARED_TESTDATA_DIR] [--n N] [--seed S] [--keep DIR]
       gguf_command_fuzz.py --write-seeds DIR     (the seed files, for fuzz/corpus/gguf_commands)

Builds small GGUF files (a complete tiny llama model with a vocabulary, a file without
tensors, one with block-typed tensors) and, when SHARED is given, adds stories260K. N seeded
mutations (default 40, or INFERNO_FUZZ_N) change what a hostile file changes: header counts and
the version, tensor dimensions, types and offsets, string and array lengths, metadata values and
types, plus byte flips and truncation. Every mutant goes through `models info`, `models info
--json`, `validate`, `validate --deep`, `tokenize` and `quantize --type Q8_0`. Each run must end
by itself (timeout: a hang), without a signal or a sanitizer report, with an exit status the
command documents, and with a message when it fails. The same seed gives the same mutants, so a
failure names the seed and mutant that reproduce it (--keep DIR keeps the files).
"""
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

SANITIZER_MARKS = ("AddressSanitizer", "UndefinedBehaviorSanitizer", "runtime error:",
                   "LeakSanitizer", "double free", "Segmentation fault", "stack smashing")


class Writer:
    """A GGUF v3 writer that records where each field lies, for targeted mutation."""

    def __init__(self):
        self.buf = bytearray()
        self.fields = []  # (offset, size, kind)

    def put(self, fmt, v, kind=None):
        if kind:
            self.fields.append((len(self.buf), struct.calcsize(fmt), kind))
        self.buf += struct.pack("<" + fmt, v)

    def string(self, s, kind="strlen"):
        b = s.encode()
        self.put("Q", len(b), kind)
        self.buf += b

    def value(self, v):
        if isinstance(v, str):
            self.put("I", 8, "vtype")
            self.string(v)
        elif isinstance(v, float):
            self.put("I", 6, "vtype")
            self.put("f", v, "f32")
        elif isinstance(v, int):
            self.put("I", 4, "vtype")
            self.put("I", v, "u32")
        else:
            et, items = v
            self.put("I", 9, "vtype")
            self.put("I", et, "etype")
            self.put("Q", len(items), "count")
            for it in items:
                if et == 8:
                    self.string(it)
                else:
                    self.put({4: "I", 5: "i", 6: "f"}[et], it, "elem")


def build(kvs, tensors, align=32):
    """tensors: [(name, ggml_type, shape, data)]; returns (bytes, fields)."""
    w = Writer()
    w.buf += b"GGUF"
    w.put("I", 3, "version")
    w.put("Q", len(tensors), "n_tensors")
    w.put("Q", len(kvs), "n_kv")
    for k, v in kvs:
        w.string(k, "keylen")
        w.value(v)
    off = 0
    offsets = []
    for name, ttype, shape, data in tensors:
        w.string(name, "namelen")
        w.put("I", len(shape), "n_dims")
        for d in shape:
            w.put("Q", d, "dim")
        w.put("I", ttype, "ttype")
        w.put("Q", off, "offset")
        offsets.append(off)
        off += len(data)
        off += (-off) % align
    w.buf += b"\0" * ((-len(w.buf)) % align)
    base = len(w.buf)
    for (name, ttype, shape, data), o in zip(tensors, offsets):
        w.buf += b"\0" * (base + o - len(w.buf))
        w.buf += data
    w.buf += b"\0" * ((-len(w.buf)) % align)
    return bytes(w.buf), w.fields


def f32s(n, seed):
    r = random.Random(seed)
    return struct.pack("<%df" % n, *[r.uniform(-0.5, 0.5) for _ in range(n)])


def tiny_llama():
    E, F, V, H = 32, 64, 24, 2
    toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % i for i in range(4)] + \
        ["\u2581", "h", "e", "l", "o", "w", "r", "d", "\u2581h", "he", "ll", "lo", "\u2581w",
         "or", "ld", "hello", "world"]
    toks = toks[:V]
    kvs = [("general.architecture", "llama"), ("general.name", "tiny"),
           ("llama.block_count", 1), ("llama.context_length", 64),
           ("llama.embedding_length", E), ("llama.feed_forward_length", F),
           ("llama.attention.head_count", H), ("llama.attention.head_count_kv", H),
           ("llama.rope.dimension_count", E // H),
           ("llama.attention.layer_norm_rms_epsilon", 1e-5),
           ("tokenizer.ggml.model", "llama"),
           ("tokenizer.ggml.tokens", (8, toks)),
           ("tokenizer.ggml.scores", (6, [float(-i) for i in range(V)])),
           ("tokenizer.ggml.token_type", (5, [2, 3, 3] + [6] * 4 + [1] * (V - 7))),
           ("tokenizer.ggml.bos_token_id", 1), ("tokenizer.ggml.eos_token_id", 2)]
    ones = struct.pack("<%df" % E, *[1.0] * E)
    t = [("token_embd.weight", 0, [E, V], f32s(E * V, 1)),
         ("output_norm.weight", 0, [E], ones),
         ("blk.0.attn_norm.weight", 0, [E], ones),
         ("blk.0.attn_q.weight", 0, [E, E], f32s(E * E, 2)),
         ("blk.0.attn_k.weight", 0, [E, E], f32s(E * E, 3)),
         ("blk.0.attn_v.weight", 0, [E, E], f32s(E * E, 4)),
         ("blk.0.attn_output.weight", 0, [E, E], f32s(E * E, 5)),
         ("blk.0.ffn_norm.weight", 0, [E], ones),
         ("blk.0.ffn_gate.weight", 0, [E, F], f32s(E * F, 6)),
         ("blk.0.ffn_up.weight", 0, [E, F], f32s(E * F, 7)),
         ("blk.0.ffn_down.weight", 0, [F, E], f32s(E * F, 8))]
    return build(kvs, t)


def seeds():
    out = [("tiny-llama", tiny_llama())]
    out.append(("no-tensors", build([("general.architecture", "llama"),
                                     ("llama.block_count", 4)], [])))
    q8 = b"".join(struct.pack("<e", 0.01) + bytes(range(32)) for _ in range(4))
    q4k = (struct.pack("<ee", 0.01, 0.001) + bytes(12) + bytes(range(128))) * 2
    out.append(("block-types", build([("general.architecture", "llama")],
                                     [("blk.0.attn_q.weight", 8, [64, 2], q8),
                                      ("blk.0.ffn_up.weight", 12, [256, 2], q4k),
                                      ("blk.0.x.weight", 30, [8, 2], bytes(32))])))
    return out


INTERESTING = [0, 1, 2, 3, 4, 7, 8, 31, 32, 33, 63, 64, 255, 256, 1000, 65535, 65536,
               2**31 - 1, 2**31, 2**32 - 1, 2**32, 10**8, 2**40, 2**59, 2**60, 2**61, 2**62,
               2**63 - 1, 2**63, 2**64 - 1]


def mutate(data, fields, rng):
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        how = rng.random()
        if how < 0.6 and fields:
            off, size, kind = rng.choice(fields)
            old = int.from_bytes(b[off:off + size], "little")
            if kind == "ttype":
                v = rng.choice([0, 1, 2, 3, 4, 8, 10, 12, 14, 15, 16, 19, 24, 28, 30, 31, 35,
                                39, 41, 42, 43, 99, 2**32 - 1])
            elif kind == "vtype" or kind == "etype":
                v = rng.randrange(0, 14)
            elif kind == "n_dims":
                v = rng.choice([0, 1, 2, 3, 4, 5, 2**32 - 1])
            else:
                v = rng.choice(INTERESTING + [old + 1, old - 1, old * 2, old // 2,
                                              old ^ (1 << rng.randrange(size * 8))])
            v %= 1 << (size * 8)
            b[off:off + size] = v.to_bytes(size, "little")
        elif how < 0.85:
            for _ in range(rng.randrange(1, 9)):
                i = rng.randrange(len(b))
                b[i] = rng.randrange(256)
        elif how < 0.95:
            del b[rng.randrange(1, len(b)):]
        else:
            i = rng.randrange(len(b))
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    return bytes(b)


def commands(path, out):
    return [("models-info", ["models", "info", path], (0, 1)),
            ("models-info-json", ["models", "info", "--json", path], (0, 1)),
            ("validate", ["validate", path], (0, 1)),
            ("validate-deep", ["validate", "--deep", path], (0, 1, 4)),
            ("tokenize", ["tokenize", "-m", path, "--text", "hello world", "--ids"], (0, 1)),
            ("quantize", ["quantize", path, out, "--type", "Q8_0", "--force", "-q",
                          "--threads", "1"], (0, 1))]


def run_one(inferno, work, name, data, timeout):
    path = os.path.join(work, name + ".gguf")
    out = os.path.join(work, name + ".q8.gguf")
    with open(path, "wb") as f:
        f.write(data)
    problems = []
    env = dict(os.environ, HOME=work, XDG_CACHE_HOME=work, XDG_CONFIG_HOME=work)
    for cname, args, allowed in commands(path, out):
        cmd = [inferno, "--models-dir", work, "--log-level", "error"] + args
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            problems.append("%s %s: hang (no exit within %ds)" % (name, cname, timeout))
            continue
        text = (p.stdout + p.stderr).decode(errors="replace")
        if p.returncode < 0 or any(m in text for m in SANITIZER_MARKS):
            problems.append("%s %s: rc=%d\n%s" % (name, cname, p.returncode, text[-2000:]))
        elif p.returncode not in allowed:
            problems.append("%s %s: exit %d, not one of %r\n%s" % (name, cname, p.returncode,
                                                                    allowed, text[-500:]))
        elif p.returncode != 0 and not p.stderr.strip() and b"invalid" not in p.stdout \
                and b"not runnable" not in p.stdout:
            problems.append("%s %s: exit %d without a message" % (name, cname, p.returncode))
    left = [f for f in os.listdir(work) if f.startswith(name + ".q8.gguf.tmp")]
    if left:
        problems.append("%s quantize: left %r" % (name, left))
    for f in (path, out):
        if os.path.exists(f):
            os.unlink(f)
    return problems


def main():
    args = sys.argv[1:]
    if args[:1] == ["--write-seeds"]:
        os.makedirs(args[1], exist_ok=True)
        for name, (data, _) in seeds():
            with open(os.path.join(args[1], name + ".gguf"), "wb") as f:
                f.write(data)
        return 0
    opts = {"--n": os.environ.get("INFERNO_FUZZ_N", "40"), "--seed": "14", "--keep": None}
    pos = []
    while args:
        a = args.pop(0)
        if a in opts:
            opts[a] = args.pop(0)
        else:
            pos.append(a)
    if not pos:
        print(__doc__)
        return 2
    inferno = pos[0]
    n, seed = int(opts["--n"]), int(opts["--seed"])
    timeout = int(os.environ.get("INFERNO_FUZZ_TIMEOUT", "60"))
    base = seeds()
    if len(pos) > 1:
        stories = os.path.join(pos[1], "models", "stories260K.gguf")
        if os.path.isfile(stories):
            with open(stories, "rb") as f:
                base.append(("stories260K", (f.read(), [])))
    work = tempfile.mkdtemp(prefix="inferno-cmdfuzz-")
    jobs = [("seed-" + name, data) for name, (data, _) in base]
    rng = random.Random(seed)
    for i in range(n):
        name, (data, fields) = base[i % len(base)]
        jobs.append(("m%03d-%s" % (i, name), mutate(data, fields, rng)))
    problems = []
    try:
        with ThreadPoolExecutor(max_workers=2) as ex:
            for p in ex.map(lambda j: run_one(inferno, work, j[0], j[1], timeout), jobs):
                problems += p
        if opts["--keep"]:
            os.makedirs(opts["--keep"], exist_ok=True)
            for name, data in jobs:
                with open(os.path.join(opts["--keep"], name + ".gguf"), "wb") as f:
                    f.write(data)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for p in problems:
        print("FAIL: " + p)
    runs = len(jobs) * len(commands("", ""))
    print("%d files (%d mutants, seed %d), %d command runs, %d problems" % (
        len(jobs), n, seed, runs, len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
