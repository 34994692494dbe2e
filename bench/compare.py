#!/usr/bin/env python3
"""Inferno beside llama.cpp on the same model files, same threads, in the same run.

Runs `inferno bench` and llama-bench alternately (A B A B ..., one repetition per call) for each
model, thread count and test, and prints a Markdown table of the medians and their ratio.
Optionally (--rss) also measures peak resident memory and load-to-first-token wall time of a
one-token generation with `inferno run` and llama.cpp's llama-completion (/usr/bin/time -v).

Tests: ppN (prompt of N tokens), tgN@D (N generated tokens with D tokens already in the
context: llama-bench's -n N -d D).

usage: bench/compare.py --llama-bin DIR --inferno PATH [--threads 1,2] [--reps 5]
                        [--tests pp128,pp512,tg32@128,tg128@1024|none] [--rss --ctx 2048] MODEL...
Nothing of llama.cpp is in this repository: DIR is a llama.cpp build made outside it
(see ../shared/docs/PEER.md and docs/parity.md).
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys


def parse_test(t):
    m = re.fullmatch(r"pp(\d+)", t)
    if m:
        return {"p": int(m.group(1)), "n": 0, "d": 0}
    m = re.fullmatch(r"tg(\d+)(?:@(\d+))?", t)
    if m:
        return {"p": 0, "n": int(m.group(1)), "d": int(m.group(2) or 0)}
    sys.exit(f"bad test '{t}' (ppN or tgN[@DEPTH])")


def bench_args(spec, threads):
    return ["-p", str(spec["p"]), "-n", str(spec["n"]), "-d", str(spec["d"]), "-t", str(threads),
            "-r", "1"]


def run_json(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}\n")
        return None
    try:
        rows = json.loads(r.stdout)
    except json.JSONDecodeError:
        sys.stderr.write(f"no JSON from: {' '.join(cmd)}\n")
        return None
    vals = [row["avg_ts"] for row in rows if row.get("n_prompt", 0) or row.get("n_gen", 0)]
    return vals[-1] if vals else None


def time_v(cmd):
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", r.stderr)
    if r.returncode != 0 or not rss or not wall:
        sys.stderr.write(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}\n")
        return None, None
    secs = 0.0
    for part in wall.group(1).split(":"):
        secs = secs * 60 + float(part)
    return int(rss.group(1)) / 1024.0, secs


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=2):
    return "n/a" if x is None else f"{x:.{nd}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llama-bin", required=True, help="llama.cpp build/bin directory")
    ap.add_argument("--inferno", required=True)
    ap.add_argument("--threads", default="2")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--tests", default="pp128,pp512,tg32@128,tg128@1024")
    ap.add_argument("--rss", action="store_true", help="also peak RSS and load-to-first-token")
    ap.add_argument("--ctx", type=int, default=2048, help="context size for --rss runs")
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()
    llama_bench = os.path.join(a.llama_bin, "llama-bench")
    llama_completion = os.path.join(a.llama_bin, "llama-completion")
    threads = [int(t) for t in a.threads.split(",")]
    tests = [] if a.tests == "none" else [(t, parse_test(t)) for t in a.tests.split(",")]

    print(f"Machine: {platform.node()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
          f"{a.reps} alternating repetitions each, medians.\n")
    print("| model | threads | test | Inferno t/s | llama.cpp t/s | ratio |")
    print("|---|---:|---|---:|---:|---:|")
    for m in a.models:
        for th in threads:
            for name, spec in tests:
                ours, theirs = [], []
                for _ in range(a.reps):
                    ours.append(run_json([a.inferno, "bench", "-m", m, "--json"] +
                                         bench_args(spec, th)))
                    theirs.append(run_json([llama_bench, "-m", m, "-o", "json"] +
                                           bench_args(spec, th)))
                o, t = med(ours), med(theirs)
                ratio = f"{o / t:.2f}x" if o and t else "n/a"
                print(f"| {os.path.basename(m)} | {th} | {name} | {fmt(o)} | {fmt(t)} | {ratio} |",
                      flush=True)
    if not a.rss:
        return
    print(f"\nPeak RSS and load-to-first-token (one generated token after a short prompt, "
          f"context {a.ctx}), medians of {a.reps}:\n")
    print("| model | threads | Inferno RSS MiB | llama.cpp RSS MiB | Inferno s | llama.cpp s |")
    print("|---|---:|---:|---:|---:|---:|")
    prompt = "Once upon a time"
    for m in a.models:
        for th in threads:
            o_rss, o_s, t_rss, t_s = [], [], [], []
            for _ in range(a.reps):
                r, s = time_v([a.inferno, "run", "-m", m, "-p", prompt, "-n", "1", "--ctx",
                               str(a.ctx), "-t", str(th), "--temp", "0"])
                o_rss.append(r)
                o_s.append(s)
                r, s = time_v([llama_completion, "-m", m, "-p", prompt, "-n", "1", "-c",
                               str(a.ctx), "-t", str(th), "--temp", "0", "-no-cnv",
                               "--no-warmup", "--simple-io"])
                t_rss.append(r)
                t_s.append(s)
            print(f"| {os.path.basename(m)} | {th} | {fmt(med(o_rss), 0)} | {fmt(med(t_rss), 0)} "
                  f"| {fmt(med(o_s), 3)} | {fmt(med(t_s), 3)} |", flush=True)


if __name__ == "__main__":
    main()
