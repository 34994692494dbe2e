#!/usr/bin/env python3
"""pull_test.py - `inferno pull`, the model registry and Ollama's /api/pull against a local hub.

tests/hub_server.py plays the Hugging Face Hub and the Ollama registry on 127.0.0.1 (API routes,
302/307 redirects to a "CDN" on another port, Range, ETags, 401/404/500, dropped connections,
wrong digests, a throttled transfer); the client under test is the real binary. Every digest
is checked with Python's hashlib against the bytes the hub served, never against what inferno
reports. Nothing contacts a real hub.

Covered: choosing the GGUF by quantization (default Q4_K_M, the only one, ambiguous and
missing ones listed), explicit files, shards, revisions, pagination of the listing; resuming
after a dropped connection (a Range request from the bytes kept) and after kill -9 at random
moments; retries on 500; refusing a wrong digest (nothing kept); a gated repository (401 without
the token; the token sent to the hub only, never to the CDN, never printed); offline (exit 1,
nothing written); the registry (models list columns, names in run/models info, tag, rm); the
Ollama manifest (model, template, params blobs); /api/pull streaming NDJSON and /api/tags.

usage: pull_test.py INFERNO_BIN [SHARED_TESTDATA_DIR]
"""
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, summary  # noqa: E402
import hub_server as hs  # noqa: E402

TOKEN = "hf_SeCrEt_tOkEn_4242"
BIN = None


def sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run(env, *args, timeout=120):
    return subprocess.run([BIN, *args], env=env, capture_output=True, text=True, timeout=timeout)


def leftovers(root):
    """Files ending in .partial under root."""
    out = []
    for d, _, files in os.walk(root):
        out += [os.path.join(d, f) for f in files if f.endswith(".partial")]
    return out


def make_env(tmp, hub, name):
    d = os.path.join(tmp, name)
    env = dict(os.environ, INFERNO_MODELS_DIR=os.path.join(d, "models"),
               INFERNO_CACHE_MODELS_DB=os.path.join(d, "models.db"),
               INFERNO_HUB_ENDPOINT=hub.endpoint, INFERNO_HUB_OLLAMA_ENDPOINT=hub.endpoint,
               INFERNO_HUB_BACKOFF="0.02", INFERNO_LOG_LEVEL="warn", HOME=d)
    for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "HF_HOME", "HF_TOKEN_PATH",
              "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    return env, os.path.join(d, "models")


def listing(env):
    p = run(env, "models", "list", "--json")
    return {m["name"]: m for m in json.loads(p.stdout)} if p.returncode == 0 else {}


def main():
    global BIN
    BIN = sys.argv[1]
    shared = sys.argv[2] if len(sys.argv) > 2 else None
    stories = os.path.join(shared, "models", "stories260K.gguf") if shared else None
    if stories and not os.path.exists(stories):
        stories = None

    hub = hs.Hub(token=TOKEN)
    q4 = hs.gguf(file_type=15, n_floats=300_000)           # 1.2 MB
    q8 = hs.gguf(file_type=7, n_floats=2000)
    f16 = hs.gguf(file_type=1, n_floats=3000)
    q8_v2 = hs.gguf(file_type=7, n_floats=2100)
    hub.add_hf("acme", "tiny-GGUF", {
        "tiny-Q4_K_M.gguf": q4, "tiny-Q8_0.gguf": q8, "README.md": b"# tiny\n",
        "mmproj-tiny-f16.gguf": f16, "config.json": b"{}"})
    hub.add_hf("acme", "tiny-GGUF", {"tiny-Q8_0.gguf": q8_v2}, rev="v2")
    q8_pr = hs.gguf(file_type=7, n_floats=2200)
    hub.add_hf("acme", "tiny-GGUF", {"tiny-Q8_0.gguf": q8_pr}, rev="refs/pr/1")
    hub.add_hf("acme", "multi", {"m-Q8_0.gguf": q8, "m-F16.gguf": f16, "sub/m-BF16.gguf": f16},
               page_size=2)
    shards = [hs.gguf(file_type=15, n_floats=1000)] + [bytes([k]) * 70_000 for k in (2, 3)]
    hub.add_hf("acme", "big", {"Q4_K_M/big-Q4_K_M-%05d-of-00003.gguf" % (i + 1): s
                               for i, s in enumerate(shards)})
    hub.add_hf("acme", "gated", {"g-Q4_K_M.gguf": q8}, gated=True)
    hub.add_hf("acme", "broken", {"b-Q4_K_M.gguf": q8})
    slow = hs.gguf(file_type=15, n_floats=1_000_000)       # 4 MB, for kills
    hub.add_hf("acme", "slow", {"slow-Q4_K_M.gguf": slow})
    tmpl = b"{{ .System }}{{ .Prompt }}"
    params = b'{"stop": ["<|eot|>"], "temperature": 0.6}'
    hub.add_ollama("library", "tiny", "1b", [
        ("application/vnd.ollama.image.model", q8),
        ("application/vnd.ollama.image.template", tmpl),
        ("application/vnd.ollama.image.license", b"MIT"),
        ("application/vnd.ollama.image.params", params)])
    if stories:
        with open(stories, "rb") as f:
            hub.add_hf("karpathy", "stories-GGUF", {"stories260K-F32.gguf": f.read()})

    tmp = tempfile.mkdtemp(prefix="inferno-pull-")
    try:
        env, mdir = make_env(tmp, hub, "a")
        tiny_dir = os.path.join(mdir, "hf.co", "acme", "tiny-GGUF")

        # ---- choosing -----------------------------------------------------------------------
        p = run(env, "pull", "hf.co/acme/tiny-GGUF")
        target = os.path.join(tiny_dir, "tiny-Q4_K_M.gguf")
        check(p.returncode == 0 and os.path.exists(target) and sha_file(target) == hs.sha256(q4),
              f"default quantization is Q4_K_M ({p.returncode}, {p.stderr[-400:]!r})")
        check(p.stdout.startswith("acme/tiny-GGUF:Q4_K_M\t"), f"pull prints the name: {p.stdout!r}")
        check(not os.path.exists(os.path.join(tiny_dir, "tiny-Q8_0.gguf")) and
              not os.path.exists(os.path.join(tiny_dir, "mmproj-tiny-f16.gguf")),
              "only the chosen file is fetched")
        p = run(env, "pull", "hf.co/acme/tiny-GGUF:q8_0", "--json")
        lines = [json.loads(x) for x in p.stdout.splitlines()]
        last = lines[-1] if lines else {}
        q8_path = os.path.join(tiny_dir, "tiny-Q8_0.gguf")
        check(p.returncode == 0 and last.get("status") == "success" and
              last.get("name") == "acme/tiny-GGUF:Q8_0" and
              last.get("digest") == "sha256:" + hs.sha256(q8) and sha_file(q8_path) == hs.sha256(q8),
              f"pull :q8_0 --json: {p.stdout[-500:]!r} {p.stderr[-300:]!r}")
        check(any(x.get("status", "").startswith("pulling ") and x.get("total") == len(q8)
                  for x in lines) and all("status" in x for x in lines),
              "--json: progress lines with status, total, completed")
        p = run(env, "pull", "hf.co/acme/multi")
        check(p.returncode == 1 and "Q8_0" in p.stderr and "F16" in p.stderr and
              "BF16" in p.stderr and ":QUANT" in p.stderr,
              f"ambiguous: the choices are listed (listing paginated): {p.stderr!r}")
        p = run(env, "pull", "hf.co/acme/tiny-GGUF:Q5_K_M")
        check(p.returncode == 1 and "Q5_K_M" in p.stderr and "Q4_K_M" in p.stderr and
              "Q8_0" in p.stderr, f"missing quantization: {p.stderr!r}")
        p = run(env, "pull", "acme/multi:BF16")
        check(p.returncode == 0 and sha_file(os.path.join(mdir, "hf.co/acme/multi/sub/m-BF16.gguf"))
              == hs.sha256(f16), f"a file in a sub-directory, from page 2: {p.stderr!r}")
        n_before = len(hub.requests("cdn"))
        p = run(env, "pull", "hf.co/acme/tiny-GGUF/tiny-Q8_0.gguf")
        check(p.returncode == 0 and len(hub.requests("cdn")) == n_before and
              "up to date" in p.stderr, f"a complete file is verified, not fetched: {p.stderr!r}")
        p = run(env, "pull", "hf.co/acme/tiny-GGUF@v2:Q8_0")
        check(p.returncode == 0 and sha_file(q8_path) == hs.sha256(q8_v2),
              f"a revision replaces the file: {p.stderr!r}")
        p = run(env, "pull", "hf.co/acme/tiny-GGUF:Q8_0", "--revision", "refs/pr/1")
        check(p.returncode == 0 and sha_file(q8_path) == hs.sha256(q8_pr),
              f"--revision refs/pr/1 (escaped as one segment): {p.stderr[-300:]!r}")
        p = run(env, "pull", "hf.co/acme/tiny-GGUF:Q8_0", "--revision", "../x")
        check(p.returncode == 1 and "invalid revision" in p.stderr, f"--revision ../x: {p.stderr!r}")
        p = run(env, "pull", "hf.co/acme/tiny-GGUF@v2:Q8_0")
        p = run(env, "pull", "hf.co/acme/big")
        big = [os.path.join(mdir, "hf.co/acme/big/Q4_K_M/big-Q4_K_M-%05d-of-00003.gguf" % (i + 1))
               for i in range(3)]
        check(p.returncode == 0 and all(os.path.exists(b) and sha_file(b) == hs.sha256(s)
                                        for b, s in zip(big, shards)),
              f"sharded: every shard, verified: {p.stderr[-300:]!r}")

        # ---- the registry -------------------------------------------------------------------
        lst = listing(env)
        m = lst.get("acme/tiny-GGUF:Q8_0", {})
        check(m.get("digest") == "sha256:" + hs.sha256(q8_v2) and m.get("architecture") == "llama"
              and m.get("source") == "hf.co/acme/tiny-GGUF@v2/tiny-Q8_0.gguf" and
              m.get("size_bytes") == len(q8_v2) and m.get("file_type") == "MOSTLY_Q8_0",
              f"models list: name, digest, source, size: {m}")
        b = lst.get("acme/big:Q4_K_M", {})
        check(b.get("n_shards") == 3 and b.get("size_bytes") == sum(len(s) for s in shards),
              f"models list: a sharded model is one row: {b}")
        check("hf.co/acme/tiny-GGUF/tiny-Q8_0" not in lst, "a registered file is listed by its name")
        p = run(env, "models", "list")
        check(p.returncode == 0 and "acme/tiny-GGUF:Q8_0" in p.stdout and "SOURCE" in p.stdout and
              hs.sha256(q8_v2)[:12] in p.stdout, f"models list (text): {p.stdout[:400]!r}")
        for name in ("acme/tiny-GGUF:Q8_0", "acme/tiny-gguf:q8_0", "hf.co/acme/tiny-GGUF:Q8_0",
                     "acme/big"):
            p = run(env, "models", "info", name, "--json")
            check(p.returncode == 0 and json.loads(p.stdout).get("architecture") == "llama",
                  f"models info {name}: {p.stderr!r}")
        p = run(env, "models", "info", "acme/tiny-GGUF")
        check(p.returncode == 1 and "names 2" in p.stderr, f"OWNER/REPO with two: {p.stderr!r}")
        p = run(env, "models", "tag", "acme/tiny-GGUF:Q8_0", "mytiny")
        check(p.returncode == 0 and listing(env).get("mytiny:latest") is None and
              "mytiny" in listing(env), f"models tag: {p.stderr!r}")
        p = run(env, "models", "info", "mytiny:latest", "--json")
        check(p.returncode == 0, f"NAME:latest finds NAME: {p.stderr!r}")
        p = run(env, "models", "tag", "acme/tiny-GGUF:Q8_0", "bad name!")
        check(p.returncode == 2, "models tag: an invalid name is refused")
        p = run(env, "models", "rm", "acme/tiny-GGUF:Q8_0")
        check(p.returncode == 0 and os.path.exists(q8_path),
              f"models rm: a file another name uses stays: {p.stderr!r}")
        p = run(env, "models", "rm", "mytiny")
        check(p.returncode == 0 and not os.path.exists(q8_path), f"models rm: the last name deletes "
              f"the file: {p.stderr!r}")
        p = run(env, "models", "rm", "acme/big:Q4_K_M")
        check(p.returncode == 0 and not any(os.path.exists(x) for x in big) and
              not os.path.exists(os.path.join(mdir, "hf.co/acme/big")),
              f"models rm: every shard and the empty directories: {p.stderr!r}")
        p = run(env, "models", "rm", "nothing:here")
        check(p.returncode == 1, "models rm: an unknown name fails")

        # ---- faults -------------------------------------------------------------------------
        hub.drop[hs.sha256(q4)] = [400_000]
        os.unlink(target)
        p = run(env, "pull", "hf.co/acme/tiny-GGUF:Q4_K_M")
        ranges = [r[3].get("Range") for r in hub.requests("cdn", hs.sha256(q4))]
        check(p.returncode == 0 and sha_file(target) == hs.sha256(q4) and "bytes=400000-" in ranges
              and not leftovers(mdir),
              f"dropped mid-body: resumed with Range from the bytes kept ({ranges[-3:]}, "
              f"{p.stderr[-300:]!r})")
        hub.drop[hs.sha256(q4)] = [500_000]
        hub.bad_range = 1
        os.unlink(target)
        p = run(env, "pull", "hf.co/acme/tiny-GGUF:Q4_K_M")
        check(p.returncode == 0 and sha_file(target) == hs.sha256(q4) and "other bytes" in p.stderr,
              f"a 206 for other bytes than asked for: started over: {p.stderr[-300:]!r}")
        hub.reset_faults()
        hub.stall[hs.sha256(q4)] = [(300_000, 8)]
        os.unlink(target)
        t0 = time.monotonic()
        p = run(env, "pull", "hf.co/acme/tiny-GGUF:Q4_K_M", "--set", "hub.stall_seconds=1")
        ranges = [r[3].get("Range") for r in hub.requests("cdn", hs.sha256(q4))]
        check(p.returncode == 0 and sha_file(target) == hs.sha256(q4) and "bytes=300000-" in ranges
              and time.monotonic() - t0 < 7 and "retrying" in p.stderr,
              f"a stalled transfer times out and resumes ({ranges[-2:]}, {p.stderr[-300:]!r})")
        hub.status["/acme/broken/resolve"] = [500, 502]
        p = run(env, "pull", "hf.co/acme/broken")
        check(p.returncode == 0 and "retrying" in p.stderr, f"500, 502, then OK: {p.stderr[-300:]!r}")
        run(env, "models", "rm", "acme/broken:Q4_K_M")
        hub.status["/acme/broken/resolve"] = [503] * 20
        p = run(env, "pull", "hf.co/acme/broken", "--set", "hub.retries=2")
        check(p.returncode == 1 and "HTTP 503" in p.stderr and
              not os.path.exists(os.path.join(mdir, "hf.co/acme/broken/b-Q4_K_M.gguf")) and
              not leftovers(mdir), f"503 after the retries: exit 1, nothing left: {p.stderr[-300:]!r}")
        hub.reset_faults()
        hub.no_range = True
        hub.drop[hs.sha256(q8)] = [1000]
        p = run(env, "pull", "ollama.com/library/tiny:1b")
        check(p.returncode == 0 and sha_file(os.path.join(mdir, "ollama.com/library/tiny/1b.gguf"))
              == hs.sha256(q8), f"a server that ignores Range: started over: {p.stderr[-300:]!r}")
        hub.reset_faults()
        hub.wrong_listing.add("b-Q4_K_M.gguf")
        p = run(env, "pull", "hf.co/acme/broken")
        check(p.returncode == 1 and "checksum mismatch" in p.stderr and
              not os.path.exists(os.path.join(mdir, "hf.co/acme/broken/b-Q4_K_M.gguf")) and
              not leftovers(mdir), f"wrong digest: refused, nothing kept: {p.stderr[-300:]!r}")
        hub.reset_faults()
        hub.wrong[hs.sha256(q8)] = hs.gguf(file_type=7, n_floats=2000, extra=b"x")
        os.unlink(os.path.join(mdir, "ollama.com/library/tiny/1b.gguf"))
        p = run(env, "pull", "tiny:1b")
        check(p.returncode == 1 and "checksum mismatch" in p.stderr and not leftovers(mdir) and
              not os.path.exists(os.path.join(mdir, "ollama.com/library/tiny/1b.gguf")),
              f"a blob whose bytes differ from its digest: refused: {p.stderr[-300:]!r}")
        hub.reset_faults()
        p = run(env, "pull", "hf.co/acme/tiny-GGUF@nope:Q8_0")
        check(p.returncode == 1 and "not found" in p.stderr, f"unknown revision: {p.stderr!r}")
        p = run(env, "pull", "hf.co/acme/tiny-GGUF/nope.gguf")
        check(p.returncode == 1 and "no file 'nope.gguf'" in p.stderr, f"unknown file: {p.stderr!r}")
        p = run(env, "pull", "ollama.com/library/nope:1b")
        check(p.returncode == 1 and "not found" in p.stderr, f"unknown Ollama model: {p.stderr!r}")
        for bad in ("hf.co/acme/../x", "hf.co/acme/tiny-GGUF/../../etc/passwd.gguf",
                    "hf.co/acme", "ollama.com/a/b/c", "hf.co/acme/x:Q4 K"):
            p = run(env, "pull", bad)
            check(p.returncode == 2 and not p.stdout, f"invalid reference {bad!r}: {p.stderr!r}")

        # ---- gated: the token ---------------------------------------------------------------
        env_dbg = dict(env, INFERNO_LOG_LEVEL="debug")
        p = run(env_dbg, "pull", "hf.co/acme/gated")
        check(p.returncode == 1 and "HF_TOKEN" in p.stderr and "401" in p.stderr,
              f"gated without a token: {p.stderr[-300:]!r}")
        n0 = len(hub.log)
        p = run(dict(env_dbg, HF_TOKEN=TOKEN), "pull", "hf.co/acme/gated")
        reqs = hub.log[n0:]
        api_auth = [r[3].get("Authorization") for r in reqs if r[0] == "api"]
        cdn_auth = [r[3].get("Authorization") for r in reqs if r[0] == "cdn"]
        check(p.returncode == 0 and api_auth and all(a == "Bearer " + TOKEN for a in api_auth) and
              cdn_auth == [None], f"the token goes to the hub only ({api_auth}, {cdn_auth})")
        check(TOKEN not in p.stdout + p.stderr, "the token is never printed (debug log)")
        audit = os.path.join(tmp, "audit")
        run(env, "models", "rm", "acme/gated:Q4_K_M")
        env_audit = dict(env, INFERNO_AUDIT_ENABLED="true", INFERNO_AUDIT_DIR=audit,
                         INFERNO_AUDIT_FSYNC="never")
        p1 = run(env_audit, "pull", "hf.co/acme/gated", "--token", TOKEN)
        run(env, "models", "rm", "acme/gated:Q4_K_M")
        p2 = run(env_audit, "pull", "hf.co/acme/gated", "--token=" + TOKEN)
        logs = "".join(open(os.path.join(audit, f)).read() for f in os.listdir(audit)
                       if f.endswith(".jsonl")) if os.path.isdir(audit) else ""
        check(p1.returncode == 0 and p2.returncode == 0 and TOKEN not in logs and
              logs.count("[redacted]") == 2 and '"pull' in logs,
              f"--token works and the audit log records the pull without it: {logs[-300:]!r}")
        os.makedirs(os.path.join(tmp, "a", "hfhome"), exist_ok=True)
        with open(os.path.join(tmp, "a", "hfhome", "token"), "w") as f:
            f.write(TOKEN + "\n")
        run(env, "models", "rm", "acme/gated:Q4_K_M")
        p = run(dict(env, HF_HOME=os.path.join(tmp, "a", "hfhome")), "pull", "acme/gated")
        check(p.returncode == 0, f"the token from $HF_HOME/token: {p.stderr[-200:]!r}")

        # ---- HF_ENDPOINT and offline ----------------------------------------------------------
        env2, mdir2 = make_env(tmp, hub, "b")
        env2.pop("INFERNO_HUB_ENDPOINT")
        env2["HF_ENDPOINT"] = hub.endpoint
        p = run(env2, "pull", "hf.co/acme/tiny-GGUF:Q8_0", "-q")
        check(p.returncode == 0 and not p.stderr, f"HF_ENDPOINT (mirror), -q: {p.stderr!r}")
        # a proxy from the environment (libcurl's conventions): the hub's host does not
        # resolve, so only the proxy (the local hub, which takes absolute URLs) can answer
        env4, mdir4 = make_env(tmp, hub, "d")
        n0 = len(hub.log)
        p = run(dict(env4, INFERNO_HUB_ENDPOINT="http://hub.invalid", http_proxy=hub.endpoint,
                     no_proxy="127.0.0.1"), "pull", "acme/tiny-GGUF:Q8_0")
        proxied = [e[2] for e in hub.log[n0:] if e[2].startswith("http://hub.invalid/")]
        check(p.returncode == 0 and proxied, f"http_proxy is used: {proxied[:2]} {p.stderr[-200:]!r}")
        env3, mdir3 = make_env(tmp, hub, "c")
        t0 = time.monotonic()
        p = run(dict(env3, INFERNO_HUB_ENDPOINT="http://127.0.0.1:9"), "pull", "acme/tiny-GGUF")
        check(p.returncode == 1 and "cannot reach 127.0.0.1:9" in p.stderr and
              (not os.path.exists(mdir3) or not os.listdir(mdir3)),
              f"offline (refused): exit 1, clear message, nothing written: {p.stderr!r}")
        p = run(dict(env3, INFERNO_HUB_ENDPOINT="http://hub.invalid"), "pull", "acme/tiny-GGUF")
        check(p.returncode == 1 and "cannot reach hub.invalid" in p.stderr and
              time.monotonic() - t0 < 30, f"offline (no DNS): {p.stderr!r}")

        # ---- Ollama ---------------------------------------------------------------------------
        p = run(env, "pull", "ollama.com/library/tiny:1b", "--json")
        odir = os.path.join(mdir, "ollama.com/library/tiny")
        check(p.returncode == 0 and json.loads(p.stdout.splitlines()[-1]).get("name") == "tiny:1b"
              and open(os.path.join(odir, "1b.template"), "rb").read() == tmpl and
              open(os.path.join(odir, "1b.params.json"), "rb").read() == params and
              not os.path.exists(os.path.join(odir, "1b.license")),
              f"Ollama: the model, template and params blobs: {p.stderr[-300:]!r}")
        check(listing(env).get("tiny:1b", {}).get("digest") == "sha256:" + hs.sha256(q8),
              "Ollama: registered with the blob's digest")

        # ---- kill -9 at random moments ---------------------------------------------------------
        rnd = random.Random(int(os.environ.get("PULL_TEST_SEED", "23")))
        hub.rate = 1_000_000
        kill_target = os.path.join(mdir, "hf.co/acme/slow/slow-Q4_K_M.gguf")
        kills = 0
        partial = kill_target + ".partial"
        for attempt in range(15):
            proc = subprocess.Popen([BIN, "pull", "hf.co/acme/slow"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if attempt % 2:
                # every other time, once bytes flow (a slow start must not make every kill
                # land before the transfer)
                t_end = time.monotonic() + 10
                size0 = os.path.getsize(partial) if os.path.exists(partial) else 0
                while time.monotonic() < t_end and proc.poll() is None and \
                        (os.path.getsize(partial) if os.path.exists(partial) else 0) <= size0:
                    time.sleep(0.01)
            try:
                proc.wait(timeout=rnd.uniform(0.05, 0.6))
                break
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                # the pull may finish (verify, then rename) just as the wait times out, and the
                # kill land after it: a target is then allowed, but only the verified one
                check(not os.path.exists(kill_target) or sha_file(kill_target) == hs.sha256(slow),
                      "killed: the target is not there before it is verified")
        hub.rate = 0
        p = run(env, "pull", "hf.co/acme/slow")
        ranged = [r for r in hub.requests("cdn", hs.sha256(slow)) if r[3].get("Range")]
        check(p.returncode == 0 and sha_file(kill_target) == hs.sha256(slow) and not leftovers(mdir)
              and kills >= 3 and ranged, f"{kills} kills, then complete and verified "
              f"({len(ranged)} ranged requests)")

        # ---- the progress bar on a terminal; --json on failure ---------------------------------
        import pty
        master, slave = pty.openpty()
        hub.rate = 2_000_000
        run(env, "models", "rm", "acme/slow:Q4_K_M")
        proc = subprocess.Popen([BIN, "pull", "hf.co/acme/slow"], env=env, stdout=subprocess.PIPE,
                                stderr=slave)
        os.close(slave)
        chunks = []
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:
                break
            if not b:
                break
            chunks.append(b)
        proc.wait()
        os.close(master)
        hub.rate = 0
        tty = b"".join(chunks).decode(errors="replace")
        check(proc.returncode == 0 and "\r" in tty and "ETA" in tty and "MiB/s" in tty and "%" in tty,
              f"a terminal gets a progress bar (bytes, rate, ETA): {tty[-300:]!r}")
        p = run(env, "pull", "hf.co/acme/tiny-GGUF:Q3_K_S", "--json")
        last = json.loads(p.stdout.splitlines()[-1]) if p.stdout else {}
        check(p.returncode == 1 and last.get("status") == "error" and "Q3_K_S" in last.get("error", ""),
              f"--json: a failure ends with an error object: {p.stdout[-300:]!r}")

        # ---- run -m NAME and the server's /api/pull --------------------------------------------
        if stories:
            p = run(env, "pull", "hf.co/karpathy/stories-GGUF")
            ref = run(env, "run", "-m", stories, "-p", "Once upon", "-n", "8", "--temp", "0")
            got = run(env, "run", "-m", "karpathy/stories-GGUF:F32", "-p", "Once upon", "-n", "8",
                      "--temp", "0")
            check(p.returncode == 0 and got.returncode == 0 and got.stdout == ref.stdout,
                  f"run -m NAME generates as the original file: {got.stdout!r} vs {ref.stdout!r}")
            ref = run(env, "tokenize", "-m", stories, "--text", "Once upon a time", "--ids")
            got = run(env, "tokenize", "-m", "hf.co/karpathy/stories-GGUF:F32", "--text",
                      "Once upon a time", "--ids")
            check(got.returncode == 0 and got.stdout == ref.stdout and ref.stdout.strip(),
                  f"tokenize -m NAME: {got.stdout!r} {got.stderr!r}")
            serve_checks(env, stories, hub, mdir)
    finally:
        hub.close()
        subprocess.run(["rm", "-rf", tmp])
    return summary()


def post(url, body, timeout=60):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def serve_checks(env, stories, hub, mdir):
    proc = subprocess.Popen([BIN, "serve", "-m", "karpathy/stories-GGUF:F32", "--port", "0",
                             "--ctx", "256", "--parallel", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        check(line.startswith("listening on http://"), f"serve -m NAME starts: {line!r}")
        if not line.startswith("listening"):
            return
        base = line.split()[-1]
        with urllib.request.urlopen(base + "/api/tags", timeout=30) as r:
            tags = [m["name"] for m in json.loads(r.read())["models"]]
        check("karpathy/stories-GGUF:F32" in tags and "tiny:1b" in tags,
              f"/api/tags shows registered names: {tags}")
        hub.add_hf("acme", "fresh", {"fresh-Q4_K_M.gguf": open(stories, "rb").read()})
        st, text = post(base + "/api/pull", {"model": "hf.co/acme/fresh:Q4_K_M"})
        lines = [json.loads(x) for x in text.splitlines() if x]
        check(st == 200 and lines and lines[-1] == {"status": "success", "model": "acme/fresh:Q4_K_M",
                                                     "digest": "sha256:" + sha_file(stories)}
              and any(x.get("completed") == x.get("total") and x.get("total") for x in lines),
              f"/api/pull streams progress and success: {text[-400:]!r}")
        with urllib.request.urlopen(base + "/api/tags", timeout=30) as r:
            models = {m["name"]: m for m in json.loads(r.read())["models"]}
        check(models.get("acme/fresh:Q4_K_M", {}).get("digest") == sha_file(stories),
              f"a pulled model is served at once, with the hub's digest: {list(models)}")
        st, text = post(base + "/api/generate", {"model": "hf.co/acme/fresh:Q4_K_M",
                                                 "prompt": "Once upon", "stream": False,
                                                 "options": {"temperature": 0, "num_predict": 4}})
        check(st == 200 and json.loads(text).get("done") is True,
              f"/api/generate with the pulled model (hf.co/ name): {st} {text[:200]!r}")
        req = urllib.request.Request(base + "/api/delete", method="DELETE",
                                     data=json.dumps({"model": "acme/fresh:Q4_K_M"}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            st = r.status
        fresh = os.path.join(mdir, "hf.co/acme/fresh/fresh-Q4_K_M.gguf")
        check(st == 200 and not os.path.exists(fresh) and "acme/fresh:Q4_K_M" not in listing(env),
              "/api/delete removes a pulled model's file and its name")
        st, text = post(base + "/api/pull", {"model": "hf.co/acme/nope", "stream": False})
        check(st in (401, 404) and "error" in json.loads(text), f"/api/pull failure: {st} {text!r}")
        st, text = post(base + "/api/pull", {"model": "bad name"})
        check(st == 400, f"/api/pull: an invalid name is 400: {st} {text!r}")
        # the server stopping during a streamed pull: it does not wait for the download, and
        # the .partial is resumed by the next pull
        slow = hs.gguf(file_type=15, n_floats=1_500_000)
        hub.add_hf("acme", "late", {"late-Q4_K_M.gguf": slow})
        hub.rate = 500_000
        req = urllib.request.Request(base + "/api/pull", data=b'{"model": "acme/late"}',
                                     headers={"Content-Type": "application/json"})
        resp = urllib.request.urlopen(req, timeout=30)
        first = resp.readline()
        partial = os.path.join(mdir, "hf.co/acme/late/late-Q4_K_M.gguf.partial")
        t_end = time.monotonic() + 10
        while time.monotonic() < t_end and not (os.path.exists(partial) and
                                                os.path.getsize(partial) > 0):
            time.sleep(0.05)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        took = time.monotonic() - t0
        resp.close()
        hub.rate = 0
        check(first.startswith(b"{") and rc == 0 and took < 10 and os.path.exists(partial),
              f"SIGTERM during /api/pull: exit {rc} in {took:.1f} s, the .partial kept")
        n0 = len(hub.log)
        p = run(env, "pull", "acme/late")
        ranged = [e for e in hub.log[n0:] if e[0] == "cdn" and e[3].get("Range")]
        check(p.returncode == 0 and ranged and sha_file(partial[:-8]) == hs.sha256(slow),
              f"the next pull resumes it: {p.stderr[-200:]!r}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
