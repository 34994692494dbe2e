#!/usr/bin/env python3
"""Run the toml-test suite against a decoder that speaks toml-test's interface.

usage: toml_suite.py <toml-decode> <toml-test dir>

Every valid/**/*.toml must decode (exit 0) to JSON equal to the .json beside it: integers and
floats compare by value (nan equals nan), date-times as instants to the nanosecond, local dates
and times by their fields. Every invalid/**/*.toml must be rejected with exit status 1 and a
message on stderr; a crash (killed by a signal) or a timeout is a failure. Exits 77 (skip) when
the test directory is absent, 1 when any case failed, 0 otherwise.
"""

import datetime
import json
import math
import os
import re
import subprocess
import sys

TIMEOUT_S = 10

DT_RE = re.compile(
    r"^(?:(\d{4})-(\d{2})-(\d{2}))?"  # date
    r"(?:[Tt ]?(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?)?"  # time
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))?$"  # offset
)


def parse_float(text):
    # float() reads "inf", "-inf", "nan" and "+nan" as toml-test spells them
    return float(text.replace("_", ""))


def parse_datetime(kind, text):
    """Return a comparable tuple for a date/time string of the given toml-test type."""
    m = DT_RE.match(text)
    if not m:
        raise ValueError("malformed %s %r" % (kind, text))
    y, mo, d, h, mi, s, frac, z, sign, oh, om = m.groups()
    ns = int((frac or "")[:9].ljust(9, "0")) if frac else 0
    if kind == "date-local":
        if y is None or h is not None or z or sign:
            raise ValueError("malformed date-local %r" % text)
        return (int(y), int(mo), int(d))
    if kind == "time-local":
        if y is not None or h is None or z or sign:
            raise ValueError("malformed time-local %r" % text)
        return (int(h), int(mi), int(s), ns)
    if y is None or h is None:
        raise ValueError("malformed %s %r" % (kind, text))
    days = datetime.date(int(y), int(mo), int(d)).toordinal()
    secs = days * 86400 + int(h) * 3600 + int(mi) * 60 + int(s)
    if kind == "datetime-local":
        if z or sign:
            raise ValueError("malformed datetime-local %r" % text)
        return (secs, ns)
    if not (z or sign):
        raise ValueError("datetime without an offset %r" % text)
    if sign:
        off = (int(oh) * 60 + int(om)) * 60
        secs -= off if sign == "+" else -off
    return (secs, ns)


def is_tagged(v):
    return (isinstance(v, dict) and set(v.keys()) == {"type", "value"}
            and isinstance(v["type"], str) and isinstance(v["value"], str))


def compare(want, got, path):
    """Return None when equal, else a description of the first difference."""
    if is_tagged(want):
        if not is_tagged(got):
            return "%s: expected a %s value, got %s" % (path, want["type"], json.dumps(got)[:80])
        wt, gt = want["type"], got["type"]
        if wt != gt:
            return "%s: expected type %s, got %s" % (path, wt, gt)
        wv, gv = want["value"], got["value"]
        try:
            if wt == "integer":
                equal = int(wv) == int(gv)
            elif wt == "float":
                a, b = parse_float(wv), parse_float(gv)
                equal = (math.isnan(a) and math.isnan(b)) or a == b
            elif wt in ("datetime", "datetime-local", "date-local", "time-local"):
                equal = parse_datetime(wt, wv) == parse_datetime(wt, gv)
            else:
                equal = wv == gv
        except ValueError as e:
            return "%s: %s" % (path, e)
        if not equal:
            return "%s: expected %s %r, got %r" % (path, wt, wv, gv)
        return None
    if isinstance(want, dict):
        if not isinstance(got, dict) or is_tagged(got):
            return "%s: expected a table, got %s" % (path, json.dumps(got)[:80])
        if set(want) != set(got):
            missing = sorted(set(want) - set(got))
            extra = sorted(set(got) - set(want))
            return "%s: keys differ (missing %r, unexpected %r)" % (path, missing, extra)
        for k in want:
            r = compare(want[k], got[k], "%s.%s" % (path, k))
            if r:
                return r
        return None
    if isinstance(want, list):
        if not isinstance(got, list):
            return "%s: expected an array, got %s" % (path, json.dumps(got)[:80])
        if len(want) != len(got):
            return "%s: expected %d elements, got %d" % (path, len(want), len(got))
        for i, (a, b) in enumerate(zip(want, got)):
            r = compare(a, b, "%s[%d]" % (path, i))
            if r:
                return r
        return None
    return "%s: unexpected value in the expected JSON: %r" % (path, want)


def run_decoder(decoder, data):
    try:
        r = subprocess.run([decoder], input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, b"", b"timed out after %d s" % TIMEOUT_S
    return r.returncode, r.stdout, r.stderr


def check_valid(decoder, toml_path):
    json_path = toml_path[:-len(".toml")] + ".json"
    with open(toml_path, "rb") as f:
        data = f.read()
    try:
        with open(json_path, "rb") as f:
            want = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError) as e:
        return "cannot read the expected JSON: %s" % e
    rc, out, err = run_decoder(decoder, data)
    if rc is None:
        return "timed out"
    if rc < 0:
        return "crashed (signal %d)" % -rc
    if rc != 0:
        return "rejected (exit %d): %s" % (rc, err.decode("utf-8", "replace").strip())
    try:
        got = json.loads(out.decode("utf-8"))
    except ValueError as e:
        return "decoder printed invalid JSON: %s" % e
    return compare(want, got, "$")


def check_invalid(decoder, toml_path):
    with open(toml_path, "rb") as f:
        data = f.read()
    rc, out, err = run_decoder(decoder, data)
    if rc is None:
        return "timed out"
    if rc < 0:
        return "crashed (signal %d)" % -rc
    if rc == 0:
        return "accepted, output %s" % out.decode("utf-8", "replace").strip()[:200]
    if rc != 1:
        return "exit %d instead of 1: %s" % (rc, err.decode("utf-8", "replace").strip())
    if not err.strip():
        return "rejected without a message on stderr"
    return None


def collect(root):
    found = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name.endswith(".toml"):
                found.append(os.path.join(dirpath, name))
    return sorted(found)


def main(argv):
    if len(argv) != 3:
        print("usage: toml_suite.py <toml-decode> <toml-test dir>", file=sys.stderr)
        return 2
    decoder, suite = argv[1], argv[2]
    if not os.path.isdir(suite):
        print("SKIP: toml-test directory %s is absent" % suite)
        return 77
    if not os.access(decoder, os.X_OK):
        print("error: decoder %s is not an executable" % decoder, file=sys.stderr)
        return 2

    results = {}
    for kind, check in (("valid", check_valid), ("invalid", check_invalid)):
        cases = collect(os.path.join(suite, kind))
        passed = 0
        for path in cases:
            reason = check(decoder, path)
            if reason:
                print("FAIL %s: %s" % (os.path.relpath(path, suite), reason))
            else:
                passed += 1
        results[kind] = (passed, len(cases))

    vp, vn = results["valid"]
    ip, inn = results["invalid"]
    print("valid: %d/%d passed, invalid: %d/%d passed" % (vp, vn, ip, inn))
    if vn + inn == 0:
        print("error: no test cases found under %s" % suite)
        return 1
    return 0 if vp == vn and ip == inn else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
