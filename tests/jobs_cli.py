#!/usr/bin/env python3
"""jobs_cli.py - issue #20: `inferno queue` (add/list/show/cancel/retry/purge/worker, schedules)
and `inferno batch run`'s refusal of bad files, on a synthetic model.

Usage: jobs_cli.py INFERNO GEN-SYNTHETIC SHARED_DIR   (exit 77 when the vocabulary is absent)
Next fire times of schedules are checked against Python's zoneinfo (an independent reference).
"""
import datetime
import json
import os
import subprocess
import sys
import tempfile
from zoneinfo import ZoneInfo

BIN, GEN, SHARED = sys.argv[1:4]
VOCAB = os.path.join(SHARED, "testdata/models/stories260K.gguf")
if not os.path.exists(VOCAB):
    print(f"SKIP: {VOCAB} not found")
    sys.exit(77)

failures = 0
passed = 0


def check(cond, what):
    global failures, passed
    if cond:
        passed += 1
    else:
        failures += 1
        print(f"FAIL: {what}", file=sys.stderr)


tmp = tempfile.mkdtemp(prefix="inferno-jobs-cli-")
env = dict(os.environ, INFERNO_QUEUE_URL=f"sqlite:{tmp}/q.db", INFERNO_FILES_DIR=f"{tmp}/files",
           INFERNO_LOG_LEVEL="warn")
model = os.path.join(tmp, "syn-q.gguf")
subprocess.run([GEN, "--arch", "llama", "--vocab", VOCAB, "--out", model, "--shape", "tiny",
                "--ctx", "2048"], check=True, capture_output=True)


def run(*args, ok=True):
    r = subprocess.run([BIN, *args], env=env, capture_output=True, text=True, timeout=300)
    if ok and r.returncode != 0:
        print(f"inferno {' '.join(args)} -> {r.returncode}\n{r.stderr}", file=sys.stderr)
    return r


def line(cid, model_name="syn-q", **body):
    b = {"messages": [{"role": "user", "content": f"hi {cid}"}], "max_tokens": 4, "temperature": 0}
    if model_name:
        b["model"] = model_name
    b.update(body)
    return json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions", "body": b})


# add: one request, many requests (priority), a batch file with -m filling in the model
r = run("queue", "add", "--request", line("one"))
check(r.returncode == 0 and r.stdout.strip().isdigit(), "queue add --request prints an id")
one = int(r.stdout.strip())
reqs = os.path.join(tmp, "reqs.jsonl")
with open(reqs, "w") as f:
    f.write("\n".join(line(f"m{i}") for i in range(3)) + "\n")
r = run("queue", "add", "--requests", reqs, "--priority", "5")
check(r.returncode == 0 and "3 jobs added" in r.stdout, "queue add --requests")
batch = os.path.join(tmp, "batch.jsonl")
with open(batch, "w") as f:
    f.write("\n".join(line(f"b{i}", model_name=None) for i in range(5)) + "\n")
r = run("queue", "add", "--batch", batch, "-m", "syn-q")
check(r.returncode == 0 and r.stdout.startswith("batch_"), "queue add --batch prints a batch id")
later = run("queue", "add", "--request", line("later"), "--not-before", "+3600")
later_id = int(later.stdout.strip())

r = run("queue", "list", "--json")
jobs = [json.loads(x) for x in r.stdout.splitlines()]
check(len(jobs) == 6 and all(j["state"] == "queued" for j in jobs), f"6 queued jobs: {jobs}")
check(sorted(j["priority"] for j in jobs) == [0, 0, 0, 5, 5, 5], "priorities")

# cancel and retry
check(run("queue", "cancel", str(one)).returncode == 0, "cancel")
show = json.loads(run("queue", "show", str(one)).stdout)
check(show["state"] == "cancelled", f"cancelled: {show['state']}")
check(run("queue", "cancel", str(one), ok=False).returncode == 1, "cancel twice fails")
check(run("queue", "retry", str(one)).returncode == 0, "retry")
check(json.loads(run("queue", "show", str(one)).stdout)["state"] == "queued", "queued again")
check(run("queue", "show", "999999", ok=False).returncode == 1, "show of an unknown id fails")

# the worker runs what is due, highest priority first, and leaves the one not due
r = run("queue", "worker", "-m", model, "--once", "--parallel", "2")
check(r.returncode == 0, "queue worker --once")
jobs = {j["id"]: j for j in (json.loads(x) for x in run("queue", "list", "--json").stdout.splitlines())}
check(jobs[later_id]["state"] == "queued", "a job not due stays queued")
done = [j for j in jobs.values() if j["id"] != later_id]
check(all(j["state"] == "done" for j in done), f"all others done: {[j['state'] for j in done]}")
res = jobs[one]["result"]
check(res and res["custom_id"] == "one" and res["response"]["status_code"] == 200 and
      res["response"]["body"]["object"] == "chat.completion", f"a request job's result: {res}")
check(any(j["kind"] == "batch" and j["state"] == "done" for j in done), "the batch job ran")

# purge: finished jobs go, the queued one stays
r = run("queue", "purge")
check(r.returncode == 0 and "5 jobs purged" in r.stdout, f"purge: {r.stdout}")
check(len(run("queue", "list").stdout.splitlines()) == 1, "one job left")

# schedules: next run as Python's zoneinfo computes it
r = run("queue", "schedule", "add", "0 3 * * *", "--batch", batch, "--tz", "Europe/Berlin")
check(r.returncode == 0, "schedule add")
sid = r.stdout.strip()
lst = run("queue", "schedule", "list").stdout.splitlines()
check(len(lst) == 1, "one schedule")
fields = lst[0].split("\t")
now = datetime.datetime.now(ZoneInfo("Europe/Berlin"))
want = now.replace(hour=3, minute=0, second=0, microsecond=0)
if want <= now:
    want = (now + datetime.timedelta(days=1)).replace(hour=3, minute=0, second=0, microsecond=0)
want = want.replace(tzinfo=None).replace(tzinfo=ZoneInfo("Europe/Berlin"))
want_utc = want.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
check(fields[4] == f"next {want_utc}", f"next run {fields[4]} vs {want_utc}")
check(fields[5] == "active", "active")
check(run("queue", "schedule", "pause", sid).returncode == 0, "pause")
check(run("queue", "schedule", "list").stdout.split("\t")[5].startswith("paused"), "paused")
check(run("queue", "schedule", "resume", sid).returncode == 0, "resume")
check(run("queue", "schedule", "list").stdout.split("\t")[5].startswith("active"), "active again")
check(run("queue", "schedule", "rm", sid).returncode == 0, "rm")
check(run("queue", "schedule", "list").stdout == "", "no schedule left")
r = run("queue", "schedule", "add", "61 * * * *", "--batch", batch, ok=False)
check(r.returncode == 1 and "minute" in r.stderr, f"bad expression: {r.stderr}")
r = run("queue", "schedule", "add", "@daily", "--batch", batch, "--tz", "Mars/Base", ok=False)
check(r.returncode == 1 and "time zone" in r.stderr, f"bad zone: {r.stderr}")
r = run("queue", "bogus", ok=False)
check(r.returncode == 2, "unknown subcommand: usage error")

# batch run refuses a bad file before running anything, naming each bad line
bad = os.path.join(tmp, "bad.jsonl")
with open(bad, "w") as f:
    f.write(line("x") + "\n" + "{oops\n" + line("x") + "\n" + line("y", model_name="nope") + "\n")
out = os.path.join(tmp, "bad-out.jsonl")
r = run("batch", "run", bad, "-o", out, "-m", model, ok=False)
check(r.returncode == 1, f"bad file: exit {r.returncode}")
check(f"{bad}:2: not valid JSON" in r.stderr, "line 2 named")
check(f"{bad}:4: the model 'nope' is not served here" in r.stderr, "line 4 named")
check("duplicate custom_id 'x'" in r.stderr, "duplicate named")
check(not os.path.exists(out), "nothing written")

# job events in the audit log (audit.enabled), and the log verifies
aud = ["--set", "audit.enabled=true", "--set", f"audit.dir={tmp}/audit"]
check(run("queue", "add", "--request", line("audited"), *aud).returncode == 0, "add, audited")
check(run("queue", "worker", "-m", model, "--once", *aud).returncode == 0, "worker, audited")
check(run("queue", "list", *aud).returncode == 0, "list, audited")
recs = [json.loads(x) for x in run("audit", "export", *aud).stdout.splitlines()]
events = [r["event"] for r in recs if r.get("type") == "job"]
check(events[:1] == ["created"] and "started" in events and "completed" in events,
      f"job events: {events}")
check(any(r.get("type") == "command" and r.get("command") == "queue worker" for r in recs),
      "the worker command is recorded")
check(not any(r.get("command") == "queue list" for r in recs if r.get("type") == "command"),
      "queue list is not")
check(run("audit", "verify", *aud).returncode == 0, "audit verify")

print(f"{passed} passed, {failures} failed")
subprocess.run(["rm", "-rf", tmp])
sys.exit(1 if failures else 0)
