#!/usr/bin/env python3
"""pull-bench.py - `inferno pull` against `curl` for the same file from a local hub, and resume
after kills at random moments.

A file of --mb MiB (random bytes; a GGUF header is not needed to download) is served by
tests/hub_server.py (sendfile from disk, HTTP/1.1 on 127.0.0.1). Each round downloads it with
`curl -s -o FILE URL` (the CDN URL: no listing, no redirect) and with `inferno pull
hf.co/bench/model-GGUF/FILE.gguf` (listing, redirect, SHA-256 while receiving, fsync, rename),
alternating, into the same directory; page cache dropped between runs is not attempted (both
read the source from the cache after the first round). Prints the median MB/s of each and
their ratio (the target: pull >= 80 % of curl), the best of each, and the CPU seconds (user +
sys) each client process used (less sensitive than wall time to a busy machine).

--kills N: then N times, a pull of a throttled transfer (--rate bytes/s) killed with SIGKILL
after a random delay, and resumed until it completes; each final file's SHA-256 is checked
against the source, and the report says how many resumptions it took.

--link B: the hub sends at most B bytes/s in the curl/pull rounds (a network link's speed).

usage: pull-bench.py INFERNO_BIN [--mb 512] [--rounds 3] [--link 0] [--kills 20]
                     [--rate 20000000]
"""
import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import hub_server as hs  # noqa: E402


def sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("--mb", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kills", type=int, default=0)
    ap.add_argument("--rate", type=int, default=20_000_000)
    ap.add_argument("--link", type=int, default=0,
                    help="bytes/s the hub sends at in the curl/pull rounds (0: as fast as it can)")
    ap.add_argument("--dir", default=None, help="where to write (default: a temporary directory)")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="pull-bench-", dir=a.dir)
    try:
        src = os.path.join(tmp, "model-Q4_K_M.gguf")
        with open(src, "wb") as f:
            for _ in range(a.mb):
                f.write(os.urandom(1 << 20))
        hub = hs.Hub()
        blob = hs.Blob(path=src)
        hub.add_hf("bench", "model-GGUF", {"model-Q4_K_M.gguf": blob})
        url = "%s/blob/%s" % (hub.cdn_endpoint, blob.sha)
        env = dict(os.environ, INFERNO_HUB_ENDPOINT=hub.endpoint, INFERNO_LOG_LEVEL="warn",
                   INFERNO_MODELS_DIR=os.path.join(tmp, "models"),
                   INFERNO_CACHE_MODELS_DB=os.path.join(tmp, "models.db"))
        size = os.path.getsize(src)
        hub.rate = a.link
        curl_r, pull_r, curl_cpu, pull_cpu = [], [], [], []

        def cpu():
            u = resource.getrusage(resource.RUSAGE_CHILDREN)
            return u.ru_utime + u.ru_stime

        for r in range(a.rounds):
            out = os.path.join(tmp, "curl.out")
            c0 = cpu()
            t0 = time.monotonic()
            subprocess.run(["curl", "-s", "-o", out, url], check=True)
            curl_r.append(size / (time.monotonic() - t0) / 1e6)
            curl_cpu.append(cpu() - c0)
            os.unlink(out)
            shutil.rmtree(os.path.join(tmp, "models"), ignore_errors=True)
            c0 = cpu()
            t0 = time.monotonic()
            p = subprocess.run([a.bin, "pull", "hf.co/bench/model-GGUF/model-Q4_K_M.gguf", "-q"],
                               env=env, capture_output=True, text=True)
            dt = time.monotonic() - t0
            pull_cpu.append(cpu() - c0)
            if p.returncode != 0:
                print("pull failed:", p.stderr, file=sys.stderr)
                return 1
            pull_r.append(size / dt / 1e6)
            print("round %d: curl %.0f MB/s, inferno pull %.0f MB/s" % (r + 1, curl_r[-1], pull_r[-1]),
                  flush=True)
        c, p_ = statistics.median(curl_r), statistics.median(pull_r)
        result = {"mib": a.mb, "link_bytes_s": a.link, "curl_mb_s": round(c), "pull_mb_s": round(p_),
                  "ratio": round(p_ / c, 3), "best_curl_mb_s": round(max(curl_r)),
                  "best_pull_mb_s": round(max(pull_r)),
                  "curl_cpu_s": round(statistics.median(curl_cpu), 3),
                  "pull_cpu_s": round(statistics.median(pull_cpu), 3)}
        if a.kills:
            shutil.rmtree(os.path.join(tmp, "models"), ignore_errors=True)
            hub.rate = a.rate
            rnd = random.Random(23)
            target = os.path.join(tmp, "models", "hf.co", "bench", "model-GGUF", "model-Q4_K_M.gguf")
            resumes, ok = [], 0
            for k in range(a.kills):
                shutil.rmtree(os.path.join(tmp, "models"), ignore_errors=True)
                n = 0
                while True:
                    proc = subprocess.Popen([a.bin, "pull", "hf.co/bench/model-GGUF", "-q"], env=env,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    try:
                        rc = proc.wait(timeout=rnd.uniform(0.02, 2.0 * size / a.rate / 4))
                        break
                    except subprocess.TimeoutExpired:
                        proc.send_signal(signal.SIGKILL)
                        proc.wait()
                        n += 1
                ok += rc == 0 and sha_file(target) == blob.sha
                resumes.append(n)
            result.update({"kill_runs": a.kills, "verified": ok, "kills_per_run": resumes})
        hub.close()
        print(json.dumps(result))
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
