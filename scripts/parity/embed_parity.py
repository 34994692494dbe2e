#!/usr/bin/env python3
"""embed_parity.py - record llama.cpp's embeddings of synthetic encoder models (bert,
nomic-bert) for tests/embed_parity.py, and report how Inferno compares.

Needs llama.cpp built OUTSIDE the repository (llama-server, llama-quantize; see
docs/parity.md). Each model is made by tools/gen-synthetic (fixed seed: the same bytes on every
machine), quantized by llama-quantize where asked; each text is embedded by llama-embedding
alone by llama-server's /v1/embeddings (one input per request, L2-normalized as OpenAI's API
does) with flash attention off (llama.cpp's exact F32 path) and on (its default on the CPU), and
its token ids are read from /tokenize (add_special). The output file holds llama.cpp's numbers only: it is the independent
reference that the CTest test compares Inferno against.

usage: embed_parity.py --llama-bin DIR --gen GEN_SYNTHETIC --vocab SPM.gguf --out FILE
                       [--inferno BIN] [--threads N]
       embed_parity.py ... --inferno BIN --real     (bge-small / nomic-embed-v1.5 shapes: the
                                                     comparison printed, nothing written)
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

LONG = ("The history of the printing press begins with movable type in East Asia, long before "
        "Gutenberg built his press in Mainz around 1440. His system combined a hand mould for "
        "casting type, an oil-based ink and a wooden screw press adapted from wine making. "
        "Within fifty years presses were running in more than two hundred cities across Europe, "
        "and millions of volumes had been printed: bibles, grammars, calendars, pamphlets and "
        "the first newspapers. Scholars argue about how much the press changed the world, but "
        "few doubt that cheap books spread literacy, standardised languages and let new ideas "
        "about religion, science and politics travel faster than any authority could stop them. "
        "Today the same arguments return with every new medium, from radio and television to "
        "the internet and machine learning models that read and write text at enormous scale, "
        "and each time the question is who controls the presses and who gets to read. Printers "
        "themselves were often merchants first and craftsmen second, always short of paper.")

TEXTS = [
    "Hello world",
    LONG,
    "Ünïcödé façade naïve café — 日本語のテキスト, 中文字符 and émojis 🎉🚀; Ελληνικά, русский "
    "текст, עברית.",
    "Wait... what?! (yes) [no] {maybe} <tag> #hash @user $100 50% a&b *star* ~tilde~ `code` "
    "'quote' \"dq\" ; : , . / \\ | - _ + = ^ !!! ??? ...",
]

# name, gen-synthetic arguments, quantization type (None: as generated), pooling (None: the
# model's), the least cosine similarity the test accepts
MODELS = [
    ("bert-tiny-f32", ["--arch", "bert", "--type", "f32", "--seed", "7"], None, None, 0.9999),
    ("bert-tiny-f16", ["--arch", "bert", "--type", "f16", "--seed", "7"], None, None, 0.9999),
    ("bert-tiny-q8_0", ["--arch", "bert", "--type", "f32", "--seed", "7"], "q8_0", None, 0.999),
    ("bert-tiny-f32-mean", ["--arch", "bert", "--type", "f32", "--seed", "7"], None, "mean",
     0.9999),
    ("bert-tiny-f32-last", ["--arch", "bert", "--type", "f32", "--seed", "7"], None, "last",
     0.9999),
    ("nomic-tiny-f32", ["--arch", "nomic-bert", "--type", "f32", "--seed", "11"], None, None,
     0.9999),
    ("nomic-tiny-f16", ["--arch", "nomic-bert", "--type", "f16", "--seed", "11"], None, None,
     0.9999),
    ("nomic-tiny-q8_0", ["--arch", "nomic-bert", "--type", "f32", "--seed", "11"], "q8_0", None,
     0.999),
]


# --real: the real shapes, for docs/parity.md (not recorded for the test)
REAL = [
    ("bge-small-f32", ["--arch", "bert", "--shape", "bge-small", "--seed", "7"], None, None,
     0.9999),
    ("bge-small-f16", ["--arch", "bert", "--shape", "bge-small", "--type", "f16", "--seed", "7"],
     None, None, 0.9999),
    ("bge-small-q8_0", ["--arch", "bert", "--shape", "bge-small", "--seed", "7"], "q8_0", None,
     0.999),
    ("nomic-v1.5-f16", ["--arch", "nomic-bert", "--shape", "nomic-embed-v1.5", "--type", "f16",
                        "--seed", "11"], None, None, 0.9999),
    ("nomic-v1.5-q8_0", ["--arch", "nomic-bert", "--shape", "nomic-embed-v1.5", "--seed", "11"],
     "q8_0", None, 0.999),
]


# a reranker (pooling_type rank, classification head): llama-server's /v1/rerank scores
RERANK_GEN = ["--arch", "bert", "--pooling", "rank", "--seed", "5"]
RERANK_QUERY = "What do cats eat?"
RERANK_DOCS = ["Cats are carnivores: they eat meat and fish.", "The sun is a star.",
               "Kittens drink milk; adult cats eat meat.", "Paris is the capital of France.",
               "Ünïcödé 日本語 🎉 ... (yes) [no]"]


def run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed ({out.returncode}): {out.stderr[-800:]}")
    return out.stdout


class LlamaServer:
    """llama-server with --embeddings on a free port (llama-embedding's log output is lost
    at exit for some short prompts, so the server is the reliable way to read full floats)."""

    def __init__(self, bin_dir, model, fa, pooling, threads, extra=()):
        import socket
        with socket.socket() as sk:
            sk.bind(("127.0.0.1", 0))
            self.port = sk.getsockname()[1]
        cmd = [os.path.join(bin_dir, "llama-server"), "-m", model, "--embeddings", "--port",
               str(self.port), "-t", str(threads), "-fa", fa, "-c", "4096", "-np", "1"]
        if pooling:
            cmd += ["--pooling", pooling]
        cmd += list(extra)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                if self.post("/health", None, method="GET").get("status") == "ok":
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("llama-server did not start")

    def post(self, path, body, method="POST"):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read())

    def embed(self, text):
        toks = self.post("/tokenize", {"content": text, "add_special": True})["tokens"]
        r = self.post("/v1/embeddings", {"input": text, "encoding_format": "float"})
        return toks, r["data"][0]["embedding"]

    def close(self):
        self.proc.terminate()
        self.proc.wait()


def vocab_cases(path):
    """The texts of a llama.cpp ggml-vocab-*.gguf.inp file (../shared/testdata/tokenizers)."""
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n__ggml_vocab_test__\n")[:-1]


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na > 0 and nb > 0 else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-bin", required=True)
    ap.add_argument("--gen", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--out", help="the reference file to write (tests/data/embed_parity.json)")
    ap.add_argument("--real", action="store_true", help="the real shapes, nothing written")
    ap.add_argument("--inferno")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    vout = subprocess.run([os.path.join(a.llama_bin, "llama-server"), "--version"],
                          capture_output=True, text=True)
    version = [ln for ln in (vout.stdout + vout.stderr).splitlines()
               if ln.startswith("version:")]
    data = {"generator": "scripts/parity/embed_parity.py",
            "llama_cpp": " ".join(version[:1]),
            "vocab": "testdata/tokenizers/" + os.path.basename(a.vocab),
            "texts": TEXTS, "models": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name, gen_args, qtype, pooling, min_cos in REAL if a.real else MODELS:
            path = os.path.join(tmp, name + ".gguf")
            src = path if not qtype else os.path.join(tmp, name + "-src.gguf")
            run([a.gen, "--vocab", a.vocab, "--out", src] + gen_args)
            if qtype:
                run([os.path.join(a.llama_bin, "llama-quantize"), src, path, qtype])
            m = {"name": name, "gen": gen_args, "quantize": qtype, "pooling": pooling,
                 "min_cos": min_cos, "results": []}
            res = {}
            for fa in ("off", "on"):
                srv = LlamaServer(a.llama_bin, path, fa, pooling, a.threads)
                try:
                    res[fa] = [srv.embed(text) for text in TEXTS]
                    if not a.real and "vocab_cases" not in data:
                        # the tokenizer on llama.cpp's own test texts for the SPM vocabulary
                        data["vocab_cases_file"] = data["vocab"] + ".inp"
                        data["vocab_cases"] = [
                            srv.post("/tokenize", {"content": t, "add_special": True})["tokens"]
                            for t in vocab_cases(a.vocab + ".inp")]
                finally:
                    srv.close()
            for (toks, off), (toks_on, on) in zip(res["off"], res["on"]):
                assert toks == toks_on
                m["results"].append({"tokens": toks, "fa_off": off, "fa_on": on})
            if a.inferno:
                tf = os.path.join(tmp, "texts.txt")
                with open(tf, "w", encoding="utf-8") as f:
                    f.write("\n".join(TEXTS) + "\n")
                cmd = [a.inferno, "embed", "-m", path, "-f", tf, "--json", "-t", str(a.threads)]
                if pooling:
                    cmd += ["--pooling", pooling]
                ours = json.loads(run(cmd))["data"]
                for i, r in enumerate(m["results"]):
                    print(f"{name:20s} text {i} ({len(r['tokens'])} tokens): cos(fa off) "
                          f"{cosine(ours[i]['embedding'], r['fa_off']):.8f}  cos(fa on) "
                          f"{cosine(ours[i]['embedding'], r['fa_on']):.8f}  llama fa on vs off "
                          f"{cosine(r['fa_on'], r['fa_off']):.8f}")
            data["models"].append(m)
    if not a.real:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "rerank.gguf")
            run([a.gen, "--vocab", a.vocab, "--out", path] + RERANK_GEN)
            rr = {"gen": RERANK_GEN, "query": RERANK_QUERY, "documents": RERANK_DOCS}
            for fa in ("off", "on"):
                srv = LlamaServer(a.llama_bin, path, fa, None, a.threads, ["--reranking"])
                try:
                    res = srv.post("/v1/rerank", {"query": RERANK_QUERY, "documents": RERANK_DOCS})
                finally:
                    srv.close()
                scores = [0.0] * len(RERANK_DOCS)
                for x in res["results"]:
                    scores[x["index"]] = x["relevance_score"]
                rr["scores_fa_" + fa] = scores
                rr["prompt_tokens"] = res["usage"]["prompt_tokens"]
            data["rerank"] = rr
            print(f"rerank: llama.cpp scores {rr['scores_fa_off']}")
    if a.out and not a.real:
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
            f.write("\n")
        print(f"wrote {a.out}")


if __name__ == "__main__":
    sys.exit(main())
