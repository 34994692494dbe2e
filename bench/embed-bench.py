#!/usr/bin/env python3
"""embed-bench.py - embeddings throughput of an OpenAI-compatible /v1/embeddings server.

Sends REQUESTS requests of BATCH texts each (about TOKENS WordPiece tokens per text, made from a
fixed word list, every text different) one after another and reports texts per second (the
median of the requests after a warm-up one). Start the server yourself, or give --serve CMD...
to have it started (on --port) and stopped:

  bench/embed-bench.py --port 8080 --serve build/release/inferno serve -m M.gguf --port 8080 -t 2
  bench/embed-bench.py --port 8081 --serve llama-server -m M.gguf --embeddings --port 8081 -t 2

usage: embed-bench.py [--port N] [--batch 32] [--tokens 100] [--requests 5] [--serve CMD...]
"""
import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.request

WORDS = ("time year people way day man thing woman life child world school state family "
         "student group country problem hand part place case week company system program "
         "question work government number night point home water room mother area money story "
         "fact month lot right study book eye job word business issue side kind head house "
         "service friend father power hour game line end member law car city community name "
         "president team minute idea kid body information back parent face others level office "
         "door health person art war history party result change morning reason research girl "
         "guy moment air teacher force education").split()


def texts(batch, tokens, seed):
    out = []
    x = seed * 2654435761 % 2**32 or 1
    for i in range(batch):
        words = []
        for _ in range(tokens - 2):  # [CLS] and [SEP]
            x = (x * 1103515245 + 12345) % 2**31
            words.append(WORDS[x % len(WORDS)])
        out.append(" ".join(words))
    return out


def post(port, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/embeddings",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--requests", type=int, default=5)
    ap.add_argument("--serve", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    proc = None
    if a.serve:
        proc = subprocess.Popen(a.serve, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{a.port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
    try:
        times, n_tok = [], 0
        for r in range(a.requests + 1):
            t0 = time.perf_counter()
            out = post(a.port, {"input": texts(a.batch, a.tokens, r + 1)})
            dt = time.perf_counter() - t0
            assert len(out["data"]) == a.batch
            n_tok = out.get("usage", {}).get("prompt_tokens", 0)
            if r > 0:
                times.append(dt)
        med = statistics.median(times)
        print(json.dumps({"texts_per_s": round(a.batch / med, 2), "median_s": round(med, 4),
                          "tokens_per_request": n_tok, "batch": a.batch,
                          "runs": [round(t, 4) for t in times]}))
    finally:
        if proc:
            proc.terminate()
            proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
