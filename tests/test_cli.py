#!/usr/bin/env python3
"""test_cli.py - the inferno executable end to end: help, version, errors and exit codes,
not-yet-built commands, and the configuration cascade as users see it.

Usage: test_cli.py PATH_TO_INFERNO. Each run uses a fresh HOME/XDG/cwd in a temp directory."""
import json
import os
import subprocess
import sys
import tempfile
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, summary  # noqa: E402


def main():
    exe = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="inferno-cli-")
    home = os.path.join(tmp, "home")
    xdg = os.path.join(tmp, "xdg")
    work = os.path.join(tmp, "work")
    for d in (home, xdg, work):
        os.makedirs(d)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("INFERNO_")}
    cache = os.path.join(tmp, "cache")
    base_env.update(HOME=home, XDG_CONFIG_HOME=xdg, XDG_CACHE_HOME=cache, NO_COLOR="1",
                    INFERNO_KERNELS="fixed")

    def run(*args, env=None, stdin=None):
        e = dict(base_env)
        e.update(env or {})
        p = subprocess.run([exe, *args], cwd=work, env=e, capture_output=True, text=True,
                           input=stdin, timeout=60)
        if p.returncode < 0:
            check(False, f"{args}: killed by signal {-p.returncode}")
        return p

    # help and version
    p = run("--help")
    check(p.returncode == 0 and "Commands:" in p.stdout, "--help lists commands")
    for c in ["run", "chat", "serve", "models", "bench", "validate", "convert", "quantize",
              "tokenize", "perplexity", "embed", "cache", "audit", "batch", "queue", "config", "tui"]:
        check(f"\n  {c} " in p.stdout, f"--help lists {c}")
    p = run("--version")
    check(p.returncode == 0, "--version exits 0")
    for field in ["inferno 0.", "commit:", "build type:", "compiler:", "cpu features:",
                  "cpu model:", "kernels:      f32 ", " q4_K ", "chosen by:    fixed table"]:
        check(field in p.stdout, f"--version shows {field!r}: {p.stdout!r}")
    # the measured choice: written under XDG_CACHE_HOME, read back by the next run
    p = run("--version", env={"INFERNO_KERNELS": "auto"})
    check(p.returncode == 0 and ("chosen by:    measured now, cached in " + cache in p.stdout or
                                 "nothing to choose" in p.stdout), f"--version measures: {p.stdout!r}")
    p2 = run("--version", env={"INFERNO_KERNELS": "auto"})
    check("measured earlier, read from " + cache in p2.stdout or "nothing to choose" in p2.stdout,
          f"--version reads the cache: {p2.stdout!r}")
    kl = [ln for ln in p.stdout.splitlines() if ln.startswith("kernels:")]
    check(kl and kl == [ln for ln in p2.stdout.splitlines() if ln.startswith("kernels:")],
          "the cached choice is the measured one")
    p = run("--version", env={"INFERNO_CPU": "avx2"})
    check("one level for every type (INFERNO_CPU=avx2)" in p.stdout, f"INFERNO_CPU: {p.stdout!r}")
    p = run("help", "config")
    check(p.returncode == 0 and "Usage: inferno config" in p.stdout and "--origin" in p.stdout,
          "help config")
    p = run("config", "--help")
    check(p.returncode == 0 and "Usage: inferno config" in p.stdout, "config --help")
    p = run()
    check(p.returncode == 2, "no command: exit 2")

    # unknown command / option: exit 2 naming the offender and a suggestion
    p = run("confg", "show")
    check(p.returncode == 2 and "'confg'" in p.stderr and "'config'" in p.stderr,
          f"unknown command suggestion: {p.stderr!r}")
    p = run("xyzzyq")
    check(p.returncode == 2 and "'xyzzyq'" in p.stderr, "unknown command far from all")
    p = run("config", "show", "--orgin")
    check(p.returncode == 2 and "'--orgin'" in p.stderr and "'--origin'" in p.stderr,
          f"unknown option suggestion: {p.stderr!r}")
    p = run("--bogus", "config", "show")
    check(p.returncode == 2 and "'--bogus'" in p.stderr, "unknown global option")
    p = run("config", "frob")
    check(p.returncode == 2 and "'frob'" in p.stderr, "unknown subcommand")
    p = run("config", "show", "--log-level")
    check(p.returncode == 2 and "needs a value" in p.stderr, "option missing its value")

    # commands not built yet: exit 3 and a plain message, nothing else on stdout
    for c in ["batch", "queue", "tui"]:
        p = run(c, "-m", "x")
        check(p.returncode == 3 and "not available yet" in p.stderr and p.stdout == "",
              f"{c}: not available yet (rc {p.returncode}, {p.stderr!r})")
    # cache and audit (issue #19): unknown subcommands are usage errors; empty stores are fine
    for c in ["cache", "audit"]:
        p = run(c, "bogus")
        check(p.returncode == 2 and "'bogus'" in p.stderr, f"{c} bogus: exit 2 ({p.stderr!r})")
    state = {"INFERNO_AUDIT_DIR": os.path.join(tmp, "audit"),
             "INFERNO_CACHE_DIR": os.path.join(tmp, "responses")}
    p = run("cache", "stats", "--json", env=state)
    check(p.returncode == 0 and json.loads(p.stdout)["entries"] == 0, f"cache stats: {p.stdout!r}")
    p = run("audit", "verify", env=state)
    check(p.returncode == 0 and p.stdout.startswith("intact: 0 records"), f"audit verify: {p.stdout!r}")
    p = run("cache", "clear", env=dict(state, INFERNO_AUDIT_ENABLED="true"))
    check(p.returncode == 0 and "removed 0 entries" in p.stdout, f"cache clear: {p.stdout!r}")
    p = run("audit", "query", "--json", env=state)
    rec = json.loads(p.stdout.splitlines()[0]) if p.returncode == 0 and p.stdout else {}
    check(rec.get("command") == "cache clear" and rec.get("exit") == 0,
          f"cache clear is recorded in the audit log ({p.stdout!r})")
    p = run("audit", "query", "--since", "soon", env=state)
    check(p.returncode == 2 and "'soon'" in p.stderr, "audit query: a bad time is a usage error")
    # serve with a model that does not exist: exit 1, the reason, nothing on stdout
    p = run("serve", "-m", "x")
    check(p.returncode == 1 and "'x'" in p.stderr and p.stdout == "",
          f"serve: missing model (rc {p.returncode}, {p.stderr!r})")
    # convert takes a Hugging Face directory (tests/convert_test.py); a missing one is named
    p = run("convert", "no-such-dir", "-o", "out.gguf")
    check(p.returncode == 1 and "no-such-dir" in p.stderr and p.stdout == "",
          f"convert: a missing directory is named (rc {p.returncode}, {p.stderr!r})")

    # config show --origin over the cascade
    os.makedirs(os.path.join(xdg, "inferno"))
    with open(os.path.join(xdg, "inferno", "config.toml"), "w") as f:
        f.write("[server]\nport = 1001\nparallel = 3\n")
    with open(os.path.join(home, ".inferno.toml"), "w") as f:
        f.write("[server]\nport = 1002\n[backend]\nthreads = 2\n")
    with open(os.path.join(work, ".inferno.toml"), "w") as f:
        f.write("# local\n[server]\nport = 1003\nhost = \"0.0.0.0\"\n")
    p = run("config", "show", "--origin", "--json",
            env={"INFERNO_LOG_FORMAT": "json", "INFERNO_BACKEND_BATCH_SIZE": "64"})
    check(p.returncode == 0, f"config show --json: {p.stderr!r}")
    cfg = json.loads(p.stdout)
    check(cfg["server.port"] == {"value": 1003, "origin": "./.inferno.toml:3"},
          f"local file wins: {cfg['server.port']}")
    check(cfg["server.parallel"]["origin"] == os.path.join(xdg, "inferno", "config.toml") + ":3",
          "xdg origin")
    check(cfg["backend.threads"]["origin"] == os.path.join(home, ".inferno.toml") + ":4",
          "home origin")
    check(cfg["log.format"] == {"value": "json", "origin": "env INFERNO_LOG_FORMAT"},
          "env origin")
    check(cfg["backend.batch_size"] == {"value": 64, "origin": "env INFERNO_BACKEND_BATCH_SIZE"},
          "env value")
    check(cfg["server.api_keys"] == {"value": [], "origin": "default"}, "default origin")

    p = run("config", "show", "--origin", env={"INFERNO_LOG_FORMAT": "json"})
    check(p.returncode == 0, "config show --origin")
    shown = tomllib.loads(p.stdout)  # the plain form is valid TOML
    check(shown["server"]["port"] == 1003, "show is TOML with the effective values")
    for line in p.stdout.splitlines():
        if "=" in line:
            check("  # " in line, f"every key has an origin: {line!r}")
    check("log.format" not in p.stdout and "format = \"json\"  # env INFERNO_LOG_FORMAT" in
          p.stdout, "log format origin in TOML form")

    # flags beat the environment; --set reaches any key
    p = run("config", "get", "server.port", "--set", "server.port=1006",
            env={"INFERNO_SERVER_PORT": "1005"})
    check(p.stdout == "1006\n", f"flag over env: {p.stdout!r}")
    p = run("config", "get", "server.port", env={"INFERNO_SERVER_PORT": "1005"})
    check(p.stdout == "1005\n", "env over files")
    p = run("--models-dir", "/m/flag", "config", "get", "models_dir",
            env={"INFERNO_MODELS_DIR": "/m/env"})
    check(p.stdout == "/m/flag\n", f"--models-dir flag: {p.stdout!r}")
    p = run("config", "get", "server.prot")
    check(p.returncode == 2 and "'server.port'" in p.stderr, "config get unknown key suggests")
    p = run("config", "get", "server.api_keys", env={"INFERNO_SERVER_API_KEYS": "a,b"})
    check(p.stdout == "a\nb\n", "list from env")

    # --config / INFERNO_CONFIG
    extra = os.path.join(tmp, "extra.toml")
    with open(extra, "w") as f:
        f.write("server.port = 1004\n")
    p = run("config", "get", "server.port", "--config", extra)
    check(p.stdout == "1004\n", "--config above the other files")
    p = run("config", "get", "server.port", env={"INFERNO_CONFIG": extra})
    check(p.stdout == "1004\n", "INFERNO_CONFIG")
    p = run("config", "show", "--config", os.path.join(tmp, "missing.toml"))
    check(p.returncode == 1 and "missing.toml" in p.stderr, "--config missing file is an error")

    # unknown keys warn with file:line (json log lines); wrong types are errors with file:line
    with open(os.path.join(work, ".inferno.toml"), "w") as f:
        f.write("[server]\nport = 1003\nprot = 5\n")
    p = run("config", "get", "server.port", env={"INFERNO_LOG_FORMAT": "json"})
    check(p.returncode == 0 and p.stdout == "1003\n", "unknown key is only a warning")
    lines = [json.loads(l) for l in p.stderr.splitlines() if l.strip()]
    check(any(l["level"] == "warn" and "./.inferno.toml:3" in l["msg"] and
              "server.prot" in l["msg"] and "server.port" in l["msg"] for l in lines),
          f"unknown key warning with file:line: {p.stderr!r}")
    with open(os.path.join(work, ".inferno.toml"), "w") as f:
        f.write("[server]\n\nport = \"8080\"\n")
    p = run("config", "show")
    check(p.returncode == 1 and "./.inferno.toml:3" in p.stderr and "server.port" in p.stderr,
          f"wrong type is an error with file:line: {p.stderr!r}")
    # #14 item 19: a known section given a value, or an array of tables, is a type error
    for text in ["server = 5\n", "[[server]]\nport = 5\n", "\nbackend = \"x\"\n"]:
        with open(os.path.join(work, ".inferno.toml"), "w") as f:
            f.write(text)
        p = run("config", "get", "server.port")
        line = "2" if text.startswith("\n") else "1"
        check(p.returncode == 1 and f"./.inferno.toml:{line}" in p.stderr
              and "must be a table" in p.stderr and "unknown key" not in p.stderr,
              f"section as a value {text!r} is a type error: {p.stderr!r}")
    os.remove(os.path.join(work, ".inferno.toml"))
    # the schema's limits are the engine's: 64 slots, 512 threads
    for key, bad, good in [("server.parallel", "65", "64"), ("backend.threads", "513", "512")]:
        p = run("config", "get", key, "--set", f"{key}={bad}")
        check(p.returncode != 0 and key in p.stderr, f"{key}={bad} refused: {p.stderr!r}")
        p = run("config", "get", key, "--set", f"{key}={good}")
        check(p.returncode == 0 and p.stdout == f"{good}\n", f"{key}={good} accepted: {p.stderr!r}")
    with open(os.path.join(work, ".inferno.toml"), "w") as f:
        f.write("[server\n")
    p = run("config", "show")
    check(p.returncode == 1 and "line 1" in p.stderr, f"syntax error: {p.stderr!r}")
    os.remove(os.path.join(work, ".inferno.toml"))

    # config path
    p = run("config", "path", "--json")
    paths = json.loads(p.stdout)
    check([x["path"] for x in paths] == [os.path.join(xdg, "inferno", "config.toml"),
                                        os.path.join(home, ".inferno.toml"), "./.inferno.toml"],
          f"config path order: {paths}")
    check([x["exists"] for x in paths] == [True, True, False], "config path existence")

    # config init: commented defaults, never overwrites, and uncommented it loads cleanly
    target = os.path.join(tmp, "init", "config.toml")
    p = run("config", "init", "--path", target)
    check(p.returncode == 0 and os.path.exists(target), "config init writes")
    text = open(target).read()
    check(tomllib.loads(text) == {"server": {}, "backend": {}, "cache": {}, "audit": {},
                                  "queue": {}, "hub": {}, "log": {}}, "init file: every key commented")
    p = run("config", "init", "--path", target)
    check(p.returncode == 1 and "already exists" in p.stderr, "config init never overwrites")
    check(open(target).read() == text, "config init left the file as it was")
    uncommented = "\n".join(l[2:] if l.startswith("# ") and " = " in l and "(" not in l else l
                            for l in text.splitlines())
    with open(target, "w") as f:
        f.write(uncommented)
    p = run("config", "show", "--json", "--config", target)
    check(p.returncode == 0 and p.stderr == "", f"uncommented init file loads: {p.stderr!r}")
    os.remove(os.path.join(xdg, "inferno", "config.toml"))
    os.remove(os.path.join(home, ".inferno.toml"))
    defaults = json.loads(run("config", "show", "--json").stdout)
    check(all(v["origin"] == "default" for v in
              json.loads(run("config", "show", "--json", "--origin").stdout).values()),
          "no files, no env: every origin is default")
    check(json.loads(p.stdout) == defaults, "uncommented init file equals the defaults")

    # generation commands on the stories260K test model (when ../shared is present)
    stories = os.path.join(os.environ.get("INFERNO_SHARED", os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")),
        "testdata", "models", "stories260K.gguf")
    if os.path.exists(stories):
        ref_b = [473, 473, 473, 473, 473, 473, 473, 483, 339, 260, 403, 305, 299, 302, 310, 1,
                 407, 465, 465, 465, 465, 465, 465, 465, 465, 465, 465, 465, 465, 465, 465, 465]
        p = run("run", "-m", stories, "-p", "Once upon a time", "-n", "32", "--temp", "0",
                "--kv-type", "f32", "--json", "--ignore-eos")
        check(p.returncode == 0, f"run --json: {p.stderr[-300:]!r}")
        out = json.loads(p.stdout) if p.returncode == 0 else {}
        check(out.get("prompt_ids") == [1, 403, 407, 261, 378], "run: llama.cpp's prompt ids")
        check(out.get("generated_ids") == ref_b, "run: llama.cpp's greedy ids (run [B])")
        check(out.get("finish_reason") == "length", "run: finish reason length")
        check("prompt_tokens_per_s" in out.get("timings", {}), "run: timings")
        # batch-invariant kernels (#16 item 3) give llama.cpp's greedy ids too
        p = run("run", "-m", stories, "-p", "Once upon a time", "-n", "32", "--temp", "0",
                "--kv-type", "f32", "--json", "--ignore-eos", "--deterministic", "on")
        out = json.loads(p.stdout) if p.returncode == 0 else {}
        check(out.get("generated_ids") == ref_b, "run --deterministic on: llama.cpp's greedy ids")
        p = run("run", "-m", stories, "-p", "Hi", "-n", "1", "--deterministic", "maybe")
        check(p.returncode == 2 and "auto, on, off" in p.stderr,
              f"--deterministic takes auto, on or off: {p.stderr[-200:]!r}")
        # reading a whole file is bounded: /dev/zero is refused, not read until memory runs out
        for args in (["perplexity", "-m", stories, "-f", "/dev/zero"],
                     ["tokenize", "-m", stories, "-f", "/dev/zero"],
                     ["run", "-m", stories, "-f", "/dev/zero", "-n", "1"]):
            p = run(*args)
            check(p.returncode == 1 and ("larger than" in p.stderr or "longer than" in p.stderr),
                  f"{args[0]} -f /dev/zero stops with an error: {p.stderr[-200:]!r}")
        # #14 item 19: a context beyond the trained length (128 for stories260K) is warned of
        p = run("run", "-m", stories, "-p", "Hi", "-n", "1", "--ctx", "256")
        check(p.returncode == 0 and "beyond the model's trained length of 128" in p.stderr,
              f"context beyond the trained length warns: {p.stderr!r}")
        p = run("run", "-m", stories, "-p", "Hi", "-n", "1", "--ctx", "128")
        check(p.returncode == 0 and "trained length" not in p.stderr,
              f"no warning within the trained length: {p.stderr!r}")
        # #14 item 18: the counts agree with the id lists, for an empty prompt (BOS alone) too
        for prompt in ["", "Once upon a time"]:
            for n in ["1", "5"]:
                p = run("run", "-m", stories, "-p", prompt, "-n", n, "--temp", "0", "--json",
                        "--ignore-eos")
                out = json.loads(p.stdout) if p.returncode == 0 else {}
                tm = out.get("timings", {})
                check(p.returncode == 0 and tm.get("prompt_tokens") == len(out["prompt_ids"])
                      and tm.get("gen_tokens") == len(out["generated_ids"])
                      and len(out["generated_ids"]) == int(n),
                      f"run -p {prompt!r} -n {n} --json: counts agree with ids: {p.stdout!r}")
        p = run("run", "-m", stories, "-p", "Once upon a time", "-n", "8", "--temp", "0",
                "--ids", "--kv-type", "f32")
        check(p.stdout.split() == [str(x) for x in ref_b[:8]], f"run --ids: {p.stdout!r}")
        check("generation:" in p.stderr, "run prints statistics to stderr")
        check("profile:" not in p.stderr, "no per-stage profile unless INFERNO_PROFILE is set")
        p = run("run", "-m", stories, "-p", "Once upon a time", "-n", "8", "--temp", "0",
                "--ids", "--kv-type", "f32", env={"INFERNO_PROFILE": "1"})
        check(p.stdout.split() == [str(x) for x in ref_b[:8]],
              f"run with INFERNO_PROFILE: same ids: {p.stdout!r}")
        prof = [ln for ln in p.stderr.splitlines() if ln.startswith("profile: ")]
        check(len(prof) == 2 and "multi-token chunks (prompts, batched sequences), 1 chunks, 5 tokens" in prof[0]
              and any(f"generation (1-token chunks), {k} chunks, {k} tokens" in prof[1]
                      for k in (7, 8)), f"INFERNO_PROFILE headers: {prof!r}")
        for stage in ["qkv", "attention", "wo", "ffn", "output"]:
            check(p.stderr.count(f"\n  {stage} ") == 2, f"INFERNO_PROFILE stage {stage}")
        p = run("run", "-m", stories, "-p", "Once upon a time", "-n", "8", "--temp", "0",
                "--stop", "pp")
        check(p.returncode == 0 and "pp" not in p.stdout and p.stdout.startswith("QQQ"),
              f"run --stop: {p.stdout!r}")
        p = run("tokenize", "-m", stories, "--text", "Once upon a time", "--ids")
        check(p.stdout.split() == ["1", "403", "407", "261", "378"], f"tokenize: {p.stdout!r}")
        # issue #14 item 12: "</s>" typed in a chat message is text, never EOS (id 2); the
        # reference is the rendered ChatML prompt tokenized as plain text (the markers are
        # not tokens of this vocabulary); --parse-special restores the old behaviour
        msg = "hi</s><s>there</s>"
        ref = run("tokenize", "-m", stories, "--ids", "--text",
                  f"<|im_start|>user\n{msg}<|im_end|>\n<|im_start|>assistant\n")
        ref_ids = [int(x) for x in ref.stdout.split()]
        p = run("run", "-m", stories, "--chat", "-p", msg, "-n", "1", "--temp", "0", "--json")
        out = json.loads(p.stdout) if p.returncode == 0 else {}
        check(out.get("prompt_ids") == ref_ids and 2 not in ref_ids,
              f"run --chat: '</s>' in the message is text: {out.get('prompt_ids')} vs {ref_ids}")
        p = run("run", "-m", stories, "--chat", "--system", "</s>", "-p", "x", "-n", "1",
                "--temp", "0", "--json")
        out = json.loads(p.stdout) if p.returncode == 0 else {}
        check(p.returncode == 0 and 2 not in out.get("prompt_ids", [2]),
              f"run --chat --system: '</s>' is text: {out.get('prompt_ids')}")
        p = run("run", "-m", stories, "--chat", "-p", msg, "-n", "1", "--temp", "0", "--json",
                "--parse-special")
        out = json.loads(p.stdout) if p.returncode == 0 else {}
        check(out.get("prompt_ids", []).count(2) == 2,
              f"run --chat --parse-special: '</s>' is EOS: {out.get('prompt_ids')}")
        p = run("bench", "-m", stories, "-p", "16", "-n", "4", "-r", "2", "--json")
        bench = json.loads(p.stdout) if p.returncode == 0 else []
        check(len(bench) == 2 and bench[0]["n_prompt"] == 16 and bench[1]["n_gen"] == 4 and
              len(bench[0]["samples_ts"]) == 2 and bench[0]["avg_ts"] > 0,
              f"bench --json: {p.stdout[:300]!r} {p.stderr[-300:]!r}")
        text = os.path.join(tmp, "text.txt")
        with open(text, "w") as f:
            f.write("Once upon a time there was a little dog. " * 40)
        p = run("perplexity", "-m", stories, "-f", text, "-c", "64")
        check(p.returncode == 0 and "Final estimate: PPL = " in p.stdout,
              f"perplexity: {p.stdout[-200:]!r} {p.stderr[-300:]!r}")
        # embed (a decoder here: the normed hidden states, mean-pooled; encoders against
        # llama.cpp in embed_parity.py)
        p = run("embed", "-m", stories, "-p", "Once upon a time", "--json")
        e = json.loads(p.stdout) if p.returncode == 0 else {}
        vec = e.get("embedding", [])
        check(len(vec) == 64 and abs(sum(x * x for x in vec) - 1) < 1e-4 and
              e.get("n_tokens") == 5, f"embed --json: {p.stdout[:200]!r} {p.stderr[-300:]!r}")
        p = run("embed", "-m", stories, "-p", "Once upon a time", "-p", "The dog", "--json",
                "--normalize", "none", "--pooling", "none")
        e = json.loads(p.stdout) if p.returncode == 0 else {}
        d = e.get("data", [])
        check(len(d) == 2 and len(d[0]["embedding"]) == 5 and len(d[0]["embedding"][0]) == 64
              and len(d[1]["embedding"]) == d[1]["n_tokens"],
              f"embed --pooling none, two inputs: {p.stdout[:200]!r} {p.stderr[-300:]!r}")
        lines = os.path.join(tmp, "lines.txt")
        with open(lines, "w") as f:
            f.write("Once upon a time\n\nThe dog\r\n")
        p = run("embed", "-m", stories, "-f", lines)
        rows = p.stdout.splitlines()
        check(p.returncode == 0 and len(rows) == 2 and len(rows[0].split()) == 64,
              f"embed -f: one line per non-empty input line: {p.stdout[:200]!r}")
        p = run("embed", "-m", stories, "-p", "x", "--pooling", "max")
        check(p.returncode == 2 and "--pooling" in p.stderr, f"embed --pooling max: {p.stderr!r}")
        p = run("embed", "-m", stories)
        check(p.returncode == 2 and "nothing to embed" in p.stderr, f"embed without input: {p.stderr!r}")
        # models list (with its cache), models info, validate
        mdir = os.path.join(tmp, "models")
        os.makedirs(os.path.join(mdir, "sub"))
        import shutil
        shutil.copy(stories, os.path.join(mdir, "a.gguf"))
        os.symlink(stories, os.path.join(mdir, "sub", "b.gguf"))
        os.symlink(mdir, os.path.join(mdir, "sub", "loop"))
        with open(os.path.join(mdir, "notes.txt"), "w") as f:
            f.write("not a model")
        db = os.path.join(tmp, "models.db")
        for attempt in range(2):
            p = run("--models-dir", mdir, "--set", f"cache.models_db={db}", "models", "list",
                    "--json")
            lst = json.loads(p.stdout) if p.returncode == 0 else []
            check([m["name"] for m in lst] == ["a", "sub/b"] and lst[0]["architecture"] == "llama"
                  and lst[0]["quantization"] == "F32" and lst[0]["context_length"] == 128,
                  f"models list (run {attempt}): {p.stdout[:300]!r} {p.stderr[-300:]!r}")
        p = run("--models-dir", mdir, "models", "info", "a", "--json", "--tensors")
        info = json.loads(p.stdout) if p.returncode == 0 else {}
        check(info.get("architecture") == "llama" and info.get("n_tensors") == 48 and
              info["tokenizer"]["vocab_size"] == 512 and
              info["hyperparameters"]["block_count"] == 5 and len(info["tensors"]) == 48,
              f"models info: {p.stdout[:300]!r}")
        p = run("validate", stories, "--deep", "--checksum", "sha256", "--expect",
                "3af229dbcf5a99236bfaf8eaa827e64a393f046f54c4a3c1498d7714e12bdd29")
        check(p.returncode == 0 and "valid:" in p.stdout, f"validate: {p.stdout!r}")
        p = run("validate", stories, "--expect", "00" * 32)
        check(p.returncode == 1 and "mismatch" in p.stdout, "validate: checksum mismatch")
        trunc = os.path.join(tmp, "trunc.gguf")
        with open(stories, "rb") as f, open(trunc, "wb") as g:
            g.write(f.read(5000))
        p = run("validate", trunc)
        check(p.returncode == 1 and p.stdout.startswith("invalid:"), f"validate trunc: {p.stdout!r}")
        p = run("validate", stories, "--checksum", "md5")
        check(p.returncode == 2, "validate: unknown checksum is a usage error")
        qwen = os.path.join(os.path.dirname(os.path.dirname(stories)), "tokenizers",
                            "ggml-vocab-qwen2.gguf")
        msgs = os.path.join(tmp, "msgs.json")
        with open(msgs, "w") as f:
            json.dump([{"role": "user", "content": "hi"}], f)
        p = run("template", "render", "--model", qwen, "--messages", msgs,
                "--add-generation-prompt")
        check(p.returncode == 0 and p.stdout == "<|im_start|>system\nYou are a helpful assistant"
              "<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
              f"template render --model: {p.stdout!r} {p.stderr!r}")
        p = run("template", "render", "--model", stories, "--messages", msgs)
        check(p.returncode == 0 and p.stdout == "<|im_start|>user\nhi<|im_end|>\n" and
              "ChatML" in p.stderr, f"template render --model without a template: {p.stderr!r}")
        p = run("run", "-m", os.path.join(tmp, "missing.gguf"), "-p", "x")
        check(p.returncode == 1 and "missing.gguf" in p.stderr, "run: missing model")
    else:
        print(f"note: {stories} absent; generation checks not run")

    subprocess.run(["rm", "-rf", tmp])
    return summary()


if __name__ == "__main__":
    sys.exit(main())
