#!/usr/bin/env python3
"""audit_cli.py - `inferno audit verify` against tampered copies of a real log.

A log is made by the CLI itself (state-changing commands are recorded when audit.enabled), plain
and encrypted (INFERNO_AUDIT_KEY). Each copy gets one kind of tampering: a byte edited, a line
deleted, two lines swapped, a line inserted (a copy of another), the tail cut, a wrong key.
verify must exit 1 and name the place: FILE:LINE of the first bad record (or the sealed head's
place for a cut tail). The untouched copy verifies (exit 0); the encrypted one holds no text of
the commands it recorded.

usage: audit_cli.py INFERNO_BIN
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, summary  # noqa: E402

KEY = "5c" * 32
WRONG = "3d" * 32


def run(binary, env, *args):
    return subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=60)


def make_log(binary, tmp, name, key):
    d = os.path.join(tmp, name)
    env = dict(os.environ, INFERNO_AUDIT_DIR=d, INFERNO_AUDIT_ENABLED="true",
               INFERNO_CACHE_DIR=os.path.join(tmp, name + "-cache"), INFERNO_AUDIT_FSYNC="never")
    env.pop("INFERNO_AUDIT_KEY", None)
    if key:
        env["INFERNO_AUDIT_KEY"] = key
    for i in range(10):
        p = run(binary, env, "cache", "prune", "--set", f"cache.ttl={1000 + i}")
        check(p.returncode == 0, f"{name}: cache prune #{i} ({p.stderr})")
    # a command whose arguments carry a marker (recorded in the log)
    p = run(binary, env, "config", "init", "--path", os.path.join(tmp, name + "-SECRETMARK.toml"))
    check(p.returncode == 0, f"{name}: config init ({p.stderr})")
    files = sorted(glob.glob(os.path.join(d, "audit-*.jsonl")))
    check(len(files) == 1, f"{name}: one audit file ({files})")
    return d, env, files[0]


def lines_of(path):
    with open(path, "rb") as f:
        return f.read().split(b"\n")[:-1]


def write_lines(path, lines):
    with open(path, "wb") as f:
        f.write(b"".join(x + b"\n" for x in lines))


def verify(binary, env, d, key=None):
    e = dict(env, INFERNO_AUDIT_DIR=d)
    e.pop("INFERNO_AUDIT_KEY", None)
    if key:
        e["INFERNO_AUDIT_KEY"] = key
    return run(binary, e, "audit", "verify")


def place(out):
    m = re.search(r"(audit-\d{6}-\d{8}\.jsonl|HEAD):(\d+): ", out)
    return (m.group(1), int(m.group(2))) if m else (None, None)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="inferno-audit-cli-")
    try:
        for keyed in (False, True):
            name = "enc" if keyed else "plain"
            key = KEY if keyed else None
            d, env, logfile = make_log(binary, tmp, name, key)
            fname = os.path.basename(logfile)
            with open(logfile, "rb") as f:
                raw = f.read()
            check((b"SECRETMARK" in raw) != keyed,
                  f"{name}: the marker is {'absent' if keyed else 'present'} in the file")
            p = verify(binary, env, d, key)
            check(p.returncode == 0 and p.stdout.startswith("intact: 11 records"),
                  f"{name}: the untouched log verifies ({p.stdout!r} {p.stderr!r})")
            recs = run(binary, dict(env, INFERNO_AUDIT_KEY=key or ""), "audit", "query", "--json")
            rows = [json.loads(x) for x in recs.stdout.splitlines()]
            check(len(rows) == 11 and rows[0]["command"] == "cache prune" and rows[0]["exit"] == 0,
                  f"{name}: query gives the command records ({recs.stdout[:200]!r} {recs.stderr!r})")

            def case(label, edit, want_file, want_line, verify_key=key):
                c = os.path.join(tmp, f"{name}-{label}")
                shutil.copytree(d, c)
                path = os.path.join(c, fname)
                lines = lines_of(path)
                edit(path, lines)
                p = verify(binary, env, c, verify_key)
                f, ln = place(p.stdout)
                check(p.returncode == 1 and f == want_file and ln == want_line,
                      f"{name} {label}: exit 1 naming {want_file}:{want_line} "
                      f"(rc {p.returncode}, {p.stdout.strip()!r})")

            def edit_byte(path, lines):
                b = bytearray(lines[4])
                i = len(b) // 2
                b[i] = ord("A") if b[i] != ord("A") else ord("B")
                lines[4] = bytes(b)
                write_lines(path, lines)

            def delete_line(path, lines):
                del lines[4]
                write_lines(path, lines)

            def swap(path, lines):
                lines[3], lines[4] = lines[4], lines[3]
                write_lines(path, lines)

            def insert(path, lines):
                lines.insert(5, lines[2])
                write_lines(path, lines)

            def truncate(path, lines):
                write_lines(path, lines[:-2])

            case("edit-byte", edit_byte, fname, 5)
            case("delete-line", delete_line, fname, 5)
            case("swap-lines", swap, fname, 4)
            case("insert-line", insert, fname, 6)
            case("truncate-tail", truncate, fname, 11)  # the sealed head's place
            if keyed:
                case("wrong-key", lambda p, l: None, fname, 1, verify_key=WRONG)
                # without any key the chain still verifies (contents unchecked)
                p = verify(binary, env, d, None)
                check(p.returncode == 0 and "not checked" in p.stdout,
                      f"enc: keyless verify checks the chain only ({p.stdout!r})")
        # the writer refuses to continue (and re-seal) a log whose tail was cut
        c = os.path.join(tmp, "plain-truncate-tail")
        e = dict(os.environ, INFERNO_AUDIT_DIR=c, INFERNO_AUDIT_ENABLED="true",
                 INFERNO_CACHE_DIR=os.path.join(tmp, "x-cache"))
        p = run(binary, e, "cache", "prune")
        check("records were removed" in p.stderr, f"a cut log is not re-sealed ({p.stderr!r})")
        p = verify(binary, e, c)
        check(p.returncode == 1, "the cut log still fails verify afterwards")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
