#!/usr/bin/env python3
"""template_cli.py - every case of ../shared/testdata/chat-templates through
`inferno template render`: stdout must equal the expected string byte for byte (no newline
added), and expected errors must exit non-zero with a message.

Usage: template_cli.py PATH_TO_INFERNO CHAT_TEMPLATES_DIR"""
import glob
import json
import os
import subprocess
import sys
import tempfile

NOW = "1795694400"  # the reference clock: Thursday 26 Nov 2026 12:00:00 UTC


def main():
    exe, root = sys.argv[1], sys.argv[2]
    if not os.path.isdir(root):
        print(f"SKIP: {root} not found")
        return 77
    passed = failed = 0
    tmp = tempfile.mkdtemp(prefix="inferno-tpl-")
    for cases_path in sorted(glob.glob(os.path.join(root, "*.cases.json"))):
        name = os.path.basename(cases_path)[: -len(".cases.json")]
        tpl = os.path.join(root, name + ".jinja")
        for case in json.load(open(cases_path, encoding="utf-8")):
            msgs = os.path.join(tmp, "m.json")
            with open(msgs, "w", encoding="utf-8") as f:
                json.dump(case["messages"], f, ensure_ascii=False)
            cmd = [exe, "template", "render", "--template", tpl, "--messages", msgs,
                   "--bos", case["bos_token"], "--eos", case["eos_token"], "--now", NOW]
            if case.get("tools") is not None:
                tools = os.path.join(tmp, "t.json")
                with open(tools, "w", encoding="utf-8") as f:
                    json.dump(case["tools"], f, ensure_ascii=False)
                cmd += ["--tools", tools]
            if case["add_generation_prompt"]:
                cmd.append("--add-generation-prompt")
            p = subprocess.run(cmd, capture_output=True, timeout=60)
            if p.returncode < 0:
                ok, why = False, f"killed by signal {-p.returncode}"
            elif case.get("expected_error"):
                ok = p.returncode != 0 and len(p.stderr) > 0
                why = f"expected an error, got rc {p.returncode}"
            else:
                ok = p.returncode == 0 and p.stdout == case["expected"].encode("utf-8")
                why = f"rc {p.returncode}, stderr {p.stderr[:200]!r}"
            if ok:
                passed += 1
            else:
                failed += 1
                print(f"FAIL {name} {case['id']}: {why}", file=sys.stderr)
    subprocess.run(["rm", "-rf", tmp])
    print(f"template render: {passed}/{passed + failed} cases passed")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
