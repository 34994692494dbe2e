#!/usr/bin/env python3
"""inferno tui, driven as a person would drive it: in a detached tmux session (Debian's tmux),
keys with send-keys, the screen read back with capture-pane. Checks what is on the screen: the
model list, a chat reply streamed with tok/s in the status line (the reply itself equal to the
server's temperature-0 answer for the same conversation), the dashboard of a running server,
the layout at 80x24 after a resize, NO_COLOR, and the terminal restored after q, SIGTERM and a
crash.

usage: tui_tmux.py INFERNO GEN_SYNTHETIC SHARED_DIR
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

BIN, GEN, SHARED = sys.argv[1], sys.argv[2], sys.argv[3]
STORIES = os.path.join(SHARED, "testdata", "models", "stories260K.gguf")
failures = []
passed = 0


def check(cond, what, screen=None):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(what)
        print(f"FAIL: {what}")
        if screen is not None:
            print("---- screen ----\n" + screen + "\n----------------")


if not shutil.which("tmux"):
    print("SKIP: tmux is not installed")
    sys.exit(77)
if not os.path.exists(STORIES):
    print(f"SKIP: {STORIES} is absent")
    sys.exit(77)

tmp = tempfile.mkdtemp(prefix="inferno-tui-")
sock = os.path.join(tmp, "tmux.sock")
models = os.path.join(tmp, "models")
os.makedirs(models)
model = os.path.join(models, "tiny-chat.gguf")
subprocess.run([GEN, "--arch", "llama", "--vocab", STORIES, "--out", model, "--shape", "tiny",
                "--ctx", "512"], check=True, capture_output=True)
slow = os.path.join(tmp, "slow.gguf")
subprocess.run([GEN, "--arch", "llama", "--vocab", STORIES, "--out", slow, "--shape", "tiny",
                "--ctx", "2048", "--n-embd", "512", "--n-layer", "8", "--n-ff", "1536",
                "--n-head", "8", "--n-head-kv", "8"], check=True, capture_output=True)
env_base = dict(os.environ, INFERNO_MODELS_DIR=models, HOME=tmp, XDG_CACHE_HOME=tmp,
                XDG_CONFIG_HOME=tmp, LANG="C.UTF-8", LC_ALL="C.UTF-8", TERM="xterm-256color")


def tmux(*args, check_rc=True):
    r = subprocess.run(["tmux", "-S", sock, *args], capture_output=True, text=True)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"tmux {' '.join(args)}: {r.stderr}")
    return r.stdout


def screen(escapes=False):
    return tmux("capture-pane", "-p", "-t", "t", *(["-e"] if escapes else []))


def wait_for(pred, timeout=20.0, stable=True):
    """Wait until the screen satisfies pred; with stable, also until two captures 0.15 s apart
    are the same (tmux may be read between two writes of one frame)."""
    end = time.time() + timeout
    s = screen()
    while time.time() < end:
        s = screen()
        if pred(s):
            if not stable:
                return True, s
            time.sleep(0.15)
            s2 = screen()
            if s2 == s:
                return True, s
            continue
        time.sleep(0.1)
    return False, s


def start(cmd_args, w=100, h=30, env=None, after="echo TUI-EXITED rc=$?; stty -a; sleep 600"):
    tmux("kill-server", check_rc=False)
    e = dict(env_base, **(env or {}))
    cmd = " ".join([q(BIN), "tui", *map(q, cmd_args)]) + "; " + after
    for attempt in range(20):  # the old tmux server may still be going away
        r = subprocess.run(["tmux", "-S", sock, "-f", "/dev/null", "new-session", "-d", "-s", "t",
                            "-x", str(w), "-y", str(h), "sh", "-c", cmd], env=e,
                           capture_output=True, text=True)
        if r.returncode == 0:
            break
        time.sleep(0.25)
    else:
        raise RuntimeError(f"tmux new-session: {r.stderr}")
    tmux("set-option", "-t", "t", "escape-time", "10")


def q(s):
    return "'" + s.replace("'", "'\\''") + "'"


def pane_pid():
    return int(tmux("display-message", "-p", "-t", "t", "#{pane_pid}").strip())


def history():
    return tmux("capture-pane", "-p", "-t", "t", "-S", "-200")


def alt_screen():
    return tmux("display-message", "-p", "-t", "t", "#{alternate_on}").strip()


def tui_pids():
    out = subprocess.run(["pgrep", "-f", f"{BIN} tui"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def restored(what):
    # stty -a's local-modes line (icanon or -icanon) comes after "min =": wait for it, not for an
    # earlier line (under load the capture once came between the two)
    def done(s):
        return "TUI-EXITED" in s and "min =" in s and "icanon" in s
    end, s = time.time() + 15, history()
    while time.time() < end and not done(s):
        time.sleep(0.1)
        s = history()
    ok = done(s)
    check(ok, f"{what}: the shell runs again after the TUI", s)
    check(alt_screen() == "0", f"{what}: the alternate screen is left")
    # stty -a after the TUI: canonical mode and echo are back
    check(re.search(r"(?<![-\w])icanon", s) is not None and re.search(r"(?<![-\w])echo(?![\w])", s)
          is not None, f"{what}: the terminal is back in canonical mode with echo", s)
    return s


server = None
try:
    # ---- the Models screen ------------------------------------------------------------------
    stats = os.path.join(tmp, "stats.json")
    start(["-c", "512", "--temp", "0", "-n", "24", "--stats", stats])
    ok, s = wait_for(lambda s: "tiny-chat" in s and "llama" in s)
    check(ok, "the model list shows the model with its architecture", s)
    check("F32" in s or "F16" in s or "Q8_0" in s, "the model list shows the quantization", s)
    check(s.splitlines()[0].lstrip().startswith("inferno") and "Models" in s.splitlines()[0],
          "the tab bar is on the first line", s)
    check("tensor types" in s and "layers" in s, "the details pane shows metadata and types", s)

    # ---- help ----
    tmux("send-keys", "-t", "t", "?")
    ok, s = wait_for(lambda s: "Keys (any key closes)" in s)
    check(ok, "? shows the keys", s)
    tmux("send-keys", "-t", "t", "x")
    ok, s = wait_for(lambda s: "Keys (any key closes)" not in s)
    check(ok, "any key closes the help", s)

    # ---- Chat: open the model, send a message, a reply streams ----
    tmux("send-keys", "-t", "t", "Enter")
    ok, s = wait_for(lambda s: "Type a message" in s)
    check(ok, "Enter opens the model in Chat", s)
    tmux("send-keys", "-t", "t", "-l", "Once upon a time")
    tmux("send-keys", "-t", "t", "Enter")
    ok, s = wait_for(lambda s: re.search(r"tok/s \| [1-9]\d* tokens \| (done|max tokens)", s)
                     is not None and "generating" not in s)
    check(ok, "the status line shows tok/s once the reply is done", s)
    m = re.search(r"ctx (\d+)/(\d+) \| ([\d.]+) tok/s \| (\d+) tokens", s)
    check(m is not None and float(m.group(3)) > 0 and int(m.group(4)) > 0,
          "tok/s and the token count are positive", s)
    check("user" in s and "assistant" in s and "Once upon a time" in s,
          "the conversation shows both turns", s)

    # ---- save the conversation (Ctrl-S) and compare the reply with the server's ----
    saved = os.path.join(tmp, "conv.json")
    tmux("send-keys", "-t", "t", "C-s")
    ok, s = wait_for(lambda s: "save the conversation to" in s)
    check(ok, "Ctrl-S asks for a file name", s)
    tmux("send-keys", "-t", "t", "C-u")  # the prompt has no Ctrl-U: erase by backspaces
    for _ in range(20):
        tmux("send-keys", "-t", "t", "BSpace")
    tmux("send-keys", "-t", "t", "-l", saved)
    tmux("send-keys", "-t", "t", "Enter")
    ok, s = wait_for(lambda s: "saved 2 messages" in s)
    check(ok, "the conversation is saved", s)
    conv = json.load(open(saved)) if os.path.exists(saved) else []
    check(len(conv) == 2 and conv[0] == {"role": "user", "content": "Once upon a time"}
          and conv[1]["role"] == "assistant", "the saved file is `chat`'s message array", str(conv))

    # a real server on the same model: its greedy answer to the same conversation
    server = subprocess.Popen([BIN, "serve", "-m", model, "--host", "127.0.0.1", "--port", "0",
                               "-c", "512", "--parallel", "3", "--cache", "--audit",
                               "--set", f"cache.dir={tmp}/cache", "--set", f"audit.dir={tmp}/audit"],
                              env=env_base,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = None
    end = time.time() + 60
    while time.time() < end and url is None:
        line = server.stdout.readline()
        mm = re.search(r"listening on (http://[^\s]+)", line)
        if mm:
            url = mm.group(1)
    check(url is not None, "the server starts")
    if url and len(conv) == 2:
        req = urllib.request.Request(url + "/v1/chat/completions", method="POST",
                                     headers={"Content-Type": "application/json"},
                                     data=json.dumps({"model": "tiny-chat", "messages": conv[:1],
                                                      "temperature": 0, "max_tokens": 24}).encode())
        body = json.load(urllib.request.urlopen(req, timeout=60))
        ref = body["choices"][0]["message"]["content"]
        check(conv[1]["content"] == ref,
              f"the TUI's reply equals the server's temperature-0 reply ({conv[1]['content']!r} "
              f"vs {ref!r})")
        lines = [ln for ln in ref.split("\n") if ln.strip()]
        check(lines and lines[0].strip()[:20] in s.replace("\n", " "),
              "the reply's text is on the screen", s)

    # ---- multi-line input with Alt-Enter, wide characters ----
    tmux("send-keys", "-t", "t", "-l", "first line")
    tmux("send-keys", "-t", "t", "M-Enter")
    tmux("send-keys", "-t", "t", "-l", "\u4e2d\u6587 \U0001F600 end")
    ok, s = wait_for(lambda s: "first line" in s and "\u4e2d\u6587" in s)
    check(ok, "Alt-Enter starts a new line in the input; CJK and emoji are shown", s)
    rows = s.splitlines()
    row = next((r for r in rows if "\u4e2d\u6587" in r), "")
    # the pane's text: a wide character takes two cells, so "中文 😀 end" keeps its spacing
    check(row.strip() == "\u4e2d\u6587 \U0001F600 end", "the wide characters' line is intact", s)
    tmux("send-keys", "-t", "t", "C-u")
    ok, s = wait_for(lambda s: "first line" not in s.split("message (Enter")[-1])
    check(ok, "Ctrl-U clears the input", s)

    # ---- Esc stops a long reply ----
    tmux("send-keys", "-t", "t", "C-p")
    ok, s = wait_for(lambda s: "Settings (Ctrl-P)" in s)
    check(ok, "Ctrl-P opens the settings panel", s)
    for _ in range(5):
        tmux("send-keys", "-t", "t", "Down")
    tmux("send-keys", "-t", "t", "Enter")
    ok, s = wait_for(lambda s: "max tokens:" in s)
    check(ok, "Enter edits max tokens", s)
    for _ in range(5):
        tmux("send-keys", "-t", "t", "BSpace")
    tmux("send-keys", "-t", "t", "-l", "0")
    tmux("send-keys", "-t", "t", "Enter", "Escape")
    ok, s = wait_for(lambda s: "Settings (Ctrl-P)" not in s)
    check(ok, "Esc closes the settings", s)
    # ---- the dashboard of the running server ----
    if url:
        tmux("send-keys", "-t", "t", "Escape", "3", "u")
        ok, s = wait_for(lambda s: "server URL:" in s)
        check(ok, "u asks for the server URL", s)
        for _ in range(30):
            tmux("send-keys", "-t", "t", "BSpace")
        tmux("send-keys", "-t", "t", "-l", url)
        tmux("send-keys", "-t", "t", "Enter")
        ok, s = wait_for(lambda s: re.search(r"0/3 busy", s) is not None and " ok" in s)
        check(ok, "the dashboard shows the server's 3 idle slots and status ok", s)
        check("tiny-chat" in s, "the dashboard shows the loaded model", s)
        # traffic shows up in the request counters within a few polls
        for _ in range(3):
            urllib.request.urlopen(url + "/v1/models", timeout=10).read()
        ok, s = wait_for(lambda s: re.search(r"2xx ([1-9]\d*)", s) is not None, 10)
        check(ok, "requests by status are counted", s)
        ok, s = wait_for(lambda s: re.search(r"hit rate [\d.]+%", s) is not None and
                         re.search(r"audit\s+on\s+records [1-9]", s) is not None, 10)
        check(ok, "the dashboard shows the cache's hit rate and the audit log's record count", s)
        # a batch through the Batch API: the Jobs screen shows it, finished, with its counts
        lines = "".join(json.dumps({"custom_id": f"r{i}", "method": "POST",
                                    "url": "/v1/chat/completions",
                                    "body": {"model": "tiny-chat", "max_tokens": 4,
                                             "messages": [{"role": "user", "content": f"hi {i}"}]}})
                        + "\n" for i in range(3))
        bnd = "----tui-test-boundary"
        body = (f"--{bnd}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
                f"--{bnd}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.jsonl\"\r\n"
                f"Content-Type: application/jsonl\r\n\r\n{lines}\r\n--{bnd}--\r\n").encode()
        req = urllib.request.Request(url + "/v1/files", data=body, method="POST", headers={
            "Content-Type": f"multipart/form-data; boundary={bnd}"})
        fid = json.load(urllib.request.urlopen(req, timeout=30))["id"]
        req = urllib.request.Request(url + "/v1/batches", method="POST",
                                     headers={"Content-Type": "application/json"},
                                     data=json.dumps({"input_file_id": fid,
                                                      "endpoint": "/v1/chat/completions",
                                                      "completion_window": "24h"}).encode())
        bid = json.load(urllib.request.urlopen(req, timeout=30))["id"]
        tmux("send-keys", "-t", "t", "4")
        ok, s = wait_for(lambda s: bid[:30] in s and "completed" in s and
                         re.search(r"\[#{20}\]\s+3/3", s) is not None, 60)
        check(ok, "the Jobs screen shows the server's batch, completed, 3/3, with a full bar", s)

    # ---- the local queue: a job added with `inferno queue add`, cancelled from the Jobs screen
    r = subprocess.run([BIN, "queue", "add", "--request", json.dumps(
        {"custom_id": "q1", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}]}}),
        "--not-before", "+3600"], env=env_base, capture_output=True, text=True)
    check(r.returncode == 0, f"inferno queue add: {r.stderr}")
    jid = r.stdout.strip().split()[-1] if r.returncode == 0 else "?"
    tmux("send-keys", "-t", "t", "4")
    row = re.compile(r"^\s*" + re.escape(jid) + r"\s+request\s+(\w+)", re.M)
    ok, s = wait_for(lambda s: (m := row.search(s)) is not None and m.group(1) == "queued", 20)
    check(ok, f"the queue section lists job {jid}, queued", s)
    if ok:
        # the selection runs through the batches, then the queue's rows, in screen order
        top, bottom = s.split("queue (queue.url", 1)
        n_batches = len(re.findall(r"^ batch_\S+", top, re.M))
        rows = re.findall(r"^\s*(\d+)\s+(?:batch|request)\s", bottom, re.M)
        target = n_batches + rows.index(jid)
        for _ in range(n_batches + len(rows)):
            tmux("send-keys", "-t", "t", "Up")
        for _ in range(target):
            tmux("send-keys", "-t", "t", "Down")
        tmux("send-keys", "-t", "t", "c")
        ok, s = wait_for(lambda s: "(y/N)" in s, 10)
        check(f"cancel job {jid}" in s, "c asks to cancel the selected job", s)
        tmux("send-keys", "-t", "t", "y")
        ok, s = wait_for(lambda s: (m := row.search(s)) is not None and m.group(1) == "cancelled",
                         15)
        check(ok, "the job is cancelled in the queue", s)
        r = subprocess.run([BIN, "queue", "show", jid, "--json"], env=env_base,
                           capture_output=True, text=True)
        check('"cancelled"' in r.stdout, f"inferno queue show agrees: {r.stdout[:200]}")

    # ---- resize to 80x24 keeps the layout ----
    tmux("send-keys", "-t", "t", "1")
    tmux("resize-window", "-t", "t", "-x", "80", "-y", "24")
    ok, s = wait_for(lambda s: len(s.splitlines()) <= 24 and "NAME" in s and "tiny-chat" in s
                     and "q:quit" in s.splitlines()[0])
    rows = s.splitlines()
    check(ok, "after a resize to 80x24 the model list is drawn again", s)
    check(all(len(r) <= 80 for r in rows), "no line is wider than 80 columns", s)
    check(rows and "Models" in rows[0] and "q:quit" in rows[0], "the tab bar fits in 80 columns", s)
    # ---- q restores the terminal ----
    tmux("send-keys", "-t", "t", "q")
    restored("q")
    st = json.load(open(stats)) if os.path.exists(stats) else {}
    # (the frame rate is measured by bench/tui-overhead.py, not asserted here)
    check(st.get("gen_frames", 0) > 1 and st.get("tokens", 0) > 0,
          f"--stats: frames were drawn while the reply was generated ({st})")

    # ---- Esc stops a reply (a model slow enough to be caught generating) ----
    start(["-m", slow, "-c", "2048", "--temp", "0", "-n", "0"])
    ok, s = wait_for(lambda s: "Type a message" in s, 60)
    check(ok, "-m opens the model in Chat at start", s)
    tmux("send-keys", "-t", "t", "-l", "tell me a long story")
    tmux("send-keys", "-t", "t", "Enter")
    ok, s = wait_for(lambda s: "generating (Esc stops)" in s, 30, stable=False)
    check(ok, "the status line says a reply is being generated", s)
    if ok:
        tmux("send-keys", "-t", "t", "Escape")
        ok, s = wait_for(lambda s: "generating" not in s and "| stopped" in s, 30)
        check(ok, "Esc stops the reply", s)
    tmux("send-keys", "-t", "t", "C-c")
    restored("Ctrl-C after a stopped reply")

    # ---- SIGTERM, and a crash, restore the terminal too ----
    for sig, what in ((signal.SIGTERM, "SIGTERM"), (signal.SIGSEGV, "a crash (SIGSEGV)")):
        before = set(tui_pids())
        start(["-c", "512"])
        ok, s = wait_for(lambda s: "tiny-chat" in s)
        pids = [p for p in tui_pids() if p not in before]
        check(ok and len(pids) >= 1, f"{what}: the TUI is up", s)
        for p in pids:
            os.kill(p, sig)
        restored(what)

    # ---- NO_COLOR: attributes only, no colour escapes ----
    start(["-c", "512"], env={"NO_COLOR": "1"})
    ok, s = wait_for(lambda s: "tiny-chat" in s)
    es = screen(escapes=True)
    check(ok and re.search(r"\x1b\[[0-9;]*(3[0-7]|4[0-7]|38;5;\d+|48;5;\d+)m", es) is None,
          "NO_COLOR: no colour in the output", es)
    start(["-c", "512"])
    ok, s = wait_for(lambda s: "tiny-chat" in s)
    es = screen(escapes=True)
    check(re.search(r"\x1b\[[0-9;]*(3[0-7]|4[0-7]|38;5;\d+|48;5;\d+)m", es) is not None,
          "without NO_COLOR the screen has colour (the check above can fail)", es)
    tmux("send-keys", "-t", "t", "C-c")
    restored("Ctrl-C")

    # ---- a terminal too small says so ----
    start(["-c", "512"], w=30, h=8)
    ok, s = wait_for(lambda s: "terminal too small" in s)
    check(ok, "a 30x8 terminal is told it is too small", s)
    tmux("send-keys", "-t", "t", "q")
    restored("q at 30x8")
finally:
    tmux("kill-server", check_rc=False)
    if server:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
    shutil.rmtree(tmp, ignore_errors=True)

print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
