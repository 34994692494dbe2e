#!/usr/bin/env python3
"""embed_parity.py - Inferno's embeddings of synthetic encoder models (bert, nomic-bert) against
llama.cpp's, recorded in tests/data/embed_parity.json by scripts/parity/embed_parity.py.

The models are made again here by tools/gen-synthetic with the recorded arguments (a fixed seed:
the same bytes), Q8_0 ones by `inferno quantize` (byte-identical to llama-quantize); all texts
of a model are embedded by one `inferno embed -f` run (so in batched passes, several sequences
per pass), and each vector must have a cosine similarity with llama.cpp's (both of its attention
paths) of at least the recorded bound (0.9999 for F32/F16, 0.999 for Q8_0). Token ids must equal
llama.cpp's, for these texts and for llama.cpp's own tokenizer test texts (the .inp file of the
SPM vocabulary the WordPiece one is derived from). Skips (77) without ../shared's vocabulary.

usage: embed_parity.py INFERNO GEN_SYNTHETIC SHARED_DIR DATA_JSON
"""
import json
import math
import os
import subprocess
import sys
import tempfile

from checks import check, summary


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed ({out.returncode}): {out.stderr[-600:]}")
    return out.stdout


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na > 0 and nb > 0 and len(a) == len(b) else 0.0


def main():
    inferno, gen, shared, data_path = sys.argv[1:5]
    with open(data_path, encoding="utf-8") as f:
        data = json.load(f)
    vocab = os.path.join(shared, data["vocab"])
    if not os.path.exists(vocab):
        print(f"skip: {vocab} is absent")
        return 77
    texts = data["texts"]
    with open(os.path.join(shared, data["vocab_cases_file"]), encoding="utf-8") as f:
        cases = f.read().split("\n__ggml_vocab_test__\n")[:-1]
    check(len(cases) == len(data["vocab_cases"]), "the vocabulary test texts are the recorded ones")
    with tempfile.TemporaryDirectory() as tmp:
        tf = os.path.join(tmp, "texts.txt")
        with open(tf, "w", encoding="utf-8") as f:
            f.write("\n".join(texts) + "\n")
        for m in data["models"]:
            name = m["name"]
            path = os.path.join(tmp, name + ".gguf")
            src = path if not m["quantize"] else os.path.join(tmp, name + "-src.gguf")
            run([gen, "--vocab", vocab, "--out", src] + m["gen"])
            if m["quantize"]:
                run([inferno, "quantize", src, path, "--type", m["quantize"]])
            cmd = [inferno, "embed", "-m", path, "-f", tf, "--json", "-t", "2"]
            if m["pooling"]:
                cmd += ["--pooling", m["pooling"]]
            ours = json.loads(run(cmd))["data"]
            check(len(ours) == len(texts), f"{name}: {len(ours)} embeddings for {len(texts)} texts")
            for i, r in enumerate(m["results"]):
                vec = ours[i]["embedding"]
                c_off, c_on = cosine(vec, r["fa_off"]), cosine(vec, r["fa_on"])
                check(c_off >= m["min_cos"] and c_on >= m["min_cos"],
                      f"{name} text {i}: cosine {c_off:.8f} (llama.cpp fa off), {c_on:.8f} "
                      f"(fa on) >= {m['min_cos']}")
                check(ours[i]["n_tokens"] == len(r["tokens"]),
                      f"{name} text {i}: {ours[i]['n_tokens']} tokens, llama.cpp "
                      f"{len(r['tokens'])}")
                if m is data["models"][0] or m["gen"] != data["models"][0]["gen"]:
                    ids = [int(x) for x in run([inferno, "tokenize", "-m", path, "--text",
                                                texts[i], "--ids"]).split()]
                    check(ids == r["tokens"], f"{name} text {i}: token ids equal llama.cpp's")
            if m is data["models"][0]:
                # the WordPiece tokenizer on llama.cpp's test texts (empty, whitespace, Unicode,
                # code...): ids equal llama.cpp's
                for k, (text, want) in enumerate(zip(cases, data["vocab_cases"])):
                    ids = [int(x) for x in run([inferno, "tokenize", "-m", path, "--text", text,
                                                "--ids"]).split()]
                    check(ids == want, f"vocabulary test text {k} {text[:40]!r}: {ids[:10]} vs "
                          f"llama.cpp {want[:10]}")
            # one text alone gives the vector it gets in a batch with the others
            alone = json.loads(run(cmd[:4] + ["-p", texts[2]] + cmd[6:]))["embedding"]
            check(cosine(alone, ours[2]["embedding"]) >= 0.999999,
                  f"{name}: text 2 alone and batched agree")
    return summary()


if __name__ == "__main__":
    sys.exit(main())
