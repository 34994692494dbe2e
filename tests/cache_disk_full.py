#!/usr/bin/env python3
"""The response cache on a disk that fills up (issue #19: "a full disk disables writes with a
warning"): `inferno serve --cache` with cache.dir on a small tmpfs mounted in a private mount
namespace (unshare -m; root only, skipped with the reason elsewhere). Distinct requests fill
it; then the server must have said so once, keep answering every request correctly (the same
text as a server without a cache), keep answering the entries it stored as hits, stop storing
(misses stay misses), exit cleanly, and leave a store that `inferno cache verify` accepts.

usage: cache_disk_full.py INFERNO GEN_SYNTHETIC SHARED_DIR
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

BIN, GEN, SHARED = sys.argv[1], sys.argv[2], sys.argv[3]
STORIES = os.path.join(SHARED, "testdata", "models", "stories260K.gguf")


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(77)


if "--inner" not in sys.argv:
    if not os.path.exists(STORIES):
        skip(f"{STORIES} is absent")
    if os.geteuid() != 0:
        skip("mounting a small tmpfs needs root (unshare -m)")
    if not shutil.which("unshare") or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
        skip("this machine does not allow a private mount namespace (unshare -m)")
    os.execvp("unshare", ["unshare", "-m", "--propagation", "private", sys.executable,
                          os.path.abspath(__file__), *sys.argv[1:], "--inner"])

failures, passed = [], 0


def check(cond, what):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(what)
        print("FAIL:", what)


tmp = tempfile.mkdtemp(prefix="inferno-cache-full-")
cdir = os.path.join(tmp, "cache")
os.makedirs(cdir)
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=384k", "tmpfs", cdir], check=True)
model = os.path.join(tmp, "tiny.gguf")
subprocess.run([GEN, "--arch", "llama", "--vocab", STORIES, "--out", model, "--shape", "tiny",
                "--ctx", "4096"], check=True, capture_output=True)
env = dict(os.environ, HOME=tmp, XDG_CACHE_HOME=os.path.join(tmp, "xdg"),
           XDG_STATE_HOME=os.path.join(tmp, "xdg"), XDG_DATA_HOME=os.path.join(tmp, "xdg"))


def start(cache):
    args = [BIN, "serve", "-m", model, "--host", "127.0.0.1", "--port", "0", "-c", "4096",
            "--parallel", "2"]
    if cache:
        args += ["--cache", "--set", f"cache.dir={cdir}", "--set", "cache.max_bytes=1073741824",
                 "--set", "cache.memory_bytes=0"]
    log = open(os.path.join(tmp, f"serve-{int(cache)}.log"), "w+")
    p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    end = time.time() + 60
    while time.time() < end:
        m = re.search(r"listening on (http://\S+)", p.stdout.readline())
        if m:
            return p, m.group(1), log
    raise RuntimeError("server did not start")


def chat(url, i):
    body = {"model": "tiny", "temperature": 0, "max_tokens": 120, "ignore_eos": True,
            "messages": [{"role": "user", "content": f"Request number {i}: tell me a story."}]}
    req = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, r.headers.get("X-Inferno-Cache"), json.load(r)


srv, url, log = start(True)
ref, rurl, _ = start(False)
try:
    states, full_at = [], None
    for i in range(400):
        st, hdr, body = chat(url, i)
        check(st == 200, f"request {i}: status {st}")
        states.append(hdr)
        log.seek(0)
        if full_at is None and "response cache writes are off" in log.read():
            full_at = i
        if full_at is not None and i >= full_at + 5:
            break
    check(full_at is not None, f"the server says the disk is full (after {len(states)} requests)")
    n = len(states)
    log.seek(0)
    text = log.read()
    check(text.count("response cache writes are off") == 1, "writes are turned off once:\n" + "\n".join(l for l in text.splitlines() if "full" in l))
    # answers stay right: the same text as a server without a cache, before and after
    for i in (0, 1, max(0, (full_at or 0) - 1), n - 2, n - 1):
        a, b = chat(url, i)[2], chat(rurl, i)[2]
        check(a["choices"][0]["message"]["content"] == b["choices"][0]["message"]["content"],
              f"request {i}: the cached server's answer equals the uncached one's")
    # stored entries still answer as hits; new requests are not stored any more
    st, hdr, _ = chat(url, 0)
    check(hdr == "hit", f"an entry stored before the disk filled is a hit ({hdr})")
    st, hdr, _ = chat(url, 10_000)
    st, hdr2, _ = chat(url, 10_000)
    check(hdr == "miss" and hdr2 == "miss", f"after that, a new request stays a miss ({hdr}, {hdr2})")
    m = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    check(re.search(r"^inferno_cache_hits_total \d+", m, re.M) is not None, "metrics still answer")
finally:
    srv.terminate()
    rc = srv.wait(30)
    ref.terminate()
    ref.wait(30)
check(rc == 0, f"the server exits cleanly ({rc})")
v = subprocess.run([BIN, "cache", "verify", "--set", f"cache.dir={cdir}"], env=env,
                   capture_output=True, text=True)
check(v.returncode == 0, f"cache verify accepts the store: {v.stdout}{v.stderr}")
s = subprocess.run([BIN, "cache", "stats", "--json", "--set", f"cache.dir={cdir}"], env=env,
                   capture_output=True, text=True)
try:
    entries = json.loads(s.stdout).get("entries", 0)
except ValueError:
    entries = -1
check(entries > 0, f"the store holds the entries written before the disk filled ({entries})")
subprocess.run(["umount", cdir])
shutil.rmtree(tmp, ignore_errors=True)
print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
