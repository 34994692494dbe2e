#!/usr/bin/env python3
"""What `inferno tui` costs generation: the same chat reply with and without the interface.

Runs, alternately, `inferno tui --headless PROMPT` (the Chat screen's engine thread driven
without curses, polled at the same 33 ms frame) and the interface itself in a detached tmux
session (Debian's tmux), where a message is sent with send-keys and the reply's tok/s and the
frame rate while generating are read from --stats. Same model, prompt, threads and greedy
sampling, so both generate the same tokens. Prints the medians and the ratio.

usage: bench/tui-overhead.py --inferno PATH -m MODEL [--threads N] [--tokens N] [--reps R]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time


def headless(a, prompt):
    r = subprocess.run([a.inferno, "tui", "--headless", prompt, "-m", a.model, "--temp", "0",
                        "-n", str(a.tokens), "-t", str(a.threads), "-c", str(a.ctx)],
                       capture_output=True, text=True, check=True)
    m = re.search(r"tokens (\d+), tok/s ([\d.]+)", r.stderr)
    return int(m.group(1)), float(m.group(2))


def with_ui(a, prompt, tmp):
    sock = os.path.join(tmp, "tmux.sock")
    stats = os.path.join(tmp, "stats.json")
    if os.path.exists(stats):
        os.unlink(stats)
    cmd = (f"'{a.inferno}' tui -m '{a.model}' --temp 0 -n {a.tokens} -t {a.threads} "
           f"-c {a.ctx} --stats '{stats}'")
    subprocess.run(["tmux", "-S", sock, "-f", "/dev/null", "new-session", "-d", "-s", "b", "-x",
                    "120", "-y", "40", "sh", "-c", cmd], check=True)

    def screen():
        return subprocess.run(["tmux", "-S", sock, "capture-pane", "-p", "-t", "b"],
                              capture_output=True, text=True).stdout

    end = time.time() + 120
    while "Type a message" not in screen() and time.time() < end:
        time.sleep(0.1)
    subprocess.run(["tmux", "-S", sock, "send-keys", "-t", "b", "-l", prompt], check=True)
    subprocess.run(["tmux", "-S", sock, "send-keys", "-t", "b", "Enter"], check=True)
    time.sleep(0.5)
    while time.time() < end:
        s = screen()
        if "generating" not in s and re.search(r"\| (done|max tokens|context full)", s):
            break
        time.sleep(0.2)
    subprocess.run(["tmux", "-S", sock, "send-keys", "-t", "b", "C-c"], check=True)
    while not os.path.exists(stats) and time.time() < end + 10:
        time.sleep(0.1)
    time.sleep(0.2)
    subprocess.run(["tmux", "-S", sock, "kill-server"], capture_output=True)
    st = json.load(open(stats))
    return st["tokens"], st["tokens_per_second"], st["gen_fps"], st["worst_frame_gap_ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--inferno", required=True)
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--prompt", default="Once upon a time there was a little girl who")
    a = ap.parse_args()
    if not shutil.which("tmux"):
        raise SystemExit("tmux is needed (apt-get install tmux)")
    tmp = tempfile.mkdtemp(prefix="tui-bench-")
    h, u, fps, gap = [], [], [], []
    try:
        for _ in range(a.reps):
            n1, t1 = headless(a, a.prompt)
            n2, t2, f2, g2 = with_ui(a, a.prompt, tmp)
            if n1 != n2:
                print(f"warning: {n1} tokens without the interface, {n2} with it")
            h.append(t1), u.append(t2), fps.append(f2), gap.append(g2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mh, mu = statistics.median(h), statistics.median(u)
    print(f"CPU {cpu}, {os.cpu_count()} CPUs, {a.threads} threads, {a.tokens} tokens, "
          f"{a.reps} alternating runs, model {os.path.basename(a.model)}")
    print("| | tok/s (median) | runs |")
    print("|---|---:|---|")
    print(f"| headless | {mh:.2f} | {', '.join(f'{x:.1f}' for x in h)} |")
    print(f"| tui | {mu:.2f} | {', '.join(f'{x:.1f}' for x in u)} |")
    print(f"cost of the interface: {100.0 * (1.0 - mu / mh):+.2f} % of generation speed; "
          f"frames while generating: median {statistics.median(fps):.1f} fps, worst gap "
          f"{max(gap):.0f} ms")


if __name__ == "__main__":
    main()
