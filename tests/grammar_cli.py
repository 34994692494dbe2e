#!/usr/bin/env python3
"""grammar_cli.py - constrained decoding from the command line.

Usage: grammar_cli.py PATH_TO_INFERNO SHARED_TESTDATA_DIR

- `inferno run --grammar-file`: every output of a real model (stories260K, several seeds and
  temperatures) matches the grammar, checked by Python's re module (an independent matcher).
- `inferno grammar bench`: on the Llama 3 vocabulary, a JSON grammar accepts exactly the texts
  Python's json module parses (restricted to the grammar's whitespace rule); a case over the
  time limit is reported and the next case still runs; the line format is as documented.
- `inferno grammar compile`: errors name the line and column; exit 1.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, summary  # noqa: E402

JSON_GBNF = r'''root ::= value
value ::= object | array | string | number | ("true" | "false" | "null")
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}"
array ::= "[" ws ( value ("," ws value)* )? "]"
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}) )* "\""
number ::= "-"? ("0" | [1-9] [0-9]*) ("." [0-9]+)? ([eE] [-+]? [0-9]+)?
ws ::= " "?
'''


def main():
    exe = os.path.abspath(sys.argv[1])
    data = sys.argv[2]
    stories = os.path.join(data, "models", "stories260K.gguf")
    vocab = os.path.join(data, "tokenizers", "ggml-vocab-llama-bpe.gguf")
    if not os.path.exists(stories) or not os.path.exists(vocab):
        print(f"skip: {data} lacks the models or tokenizers")
        return 77
    tmp = tempfile.mkdtemp(prefix="inferno-grammar-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERNO_")}
    env.update(HOME=tmp, XDG_CONFIG_HOME=tmp, XDG_CACHE_HOME=tmp, INFERNO_KERNELS="fixed")

    def run(*args, stdin=None):
        return subprocess.run([exe, *args], env=env, capture_output=True, text=True,
                              input=stdin, timeout=300)

    # generation under a grammar, checked against an equivalent regex
    cases = [
        ('root ::= "The " ("cat" | "dog") " is " [a-z]{2,8} "."',
         r"The (cat|dog) is [a-z]{2,8}\."),
        ('root ::= [0-9]{1,3} ("," [0-9]{1,3}){0,4}', r"[0-9]{1,3}(,[0-9]{1,3}){0,4}"),
        ('root ::= "[" item ("," item)* "]"\nitem ::= "\\"" [a-z ]{0,6} "\\"" | "null"',
         r'\[(?:"[a-z ]{0,6}"|null)(?:,(?:"[a-z ]{0,6}"|null))*\]'),
    ]
    for i, (gbnf, rx) in enumerate(cases):
        gf = os.path.join(tmp, f"g{i}.gbnf")
        with open(gf, "w") as f:
            f.write(gbnf + "\n")
        for seed, temp in [(1, "0"), (2, "0.8"), (3, "1.5"), (4, "1.0")]:
            p = run("run", "-m", stories, "-p", "Once upon a time", "--grammar-file", gf, "-n",
                    "48", "--temp", temp, "-s", str(seed), "--json")
            ok = p.returncode == 0
            out = json.loads(p.stdout) if ok else {}
            text = out.get("text", "")
            check(ok and re.fullmatch(rx, text) is not None,
                  f"grammar {i} seed {seed} temp {temp}: {text!r} {p.stderr[-300:]!r}")
            check(out.get("finish_reason") in ("stop", "length"),
                  f"grammar {i}: finish {out.get('finish_reason')!r}")
            if out.get("finish_reason") == "stop":
                check(re.fullmatch(rx, text) is not None, "a stopped output is complete")

    # bench: acceptance agrees with Python's json module
    texts = ['{"a": 1, "b": [true, null, "x\\n"], "c": {"d": -0.5e3}}', '{"a": }', '[1, 2,]',
             '"\\u00e9t\\u00E9"', '{"k": "unterminated}', '[]', '{"a":1}', '-01', '1.5E+10',
             '{"a": "tab\there"}', '"\xe4\xb8\xad\xe6\x96\x87"']
    want = []
    for t in texts:
        try:
            json.loads(t)
            # the grammar allows one optional space after { [ , : only, and no raw controls
            want.append(re.search(r"[\x00-\x1f]", t) is None and
                        re.search(r"\s{2,}|\s[\]}:,]|^\s|\s$", t) is None)
        except ValueError:
            want.append(False)
    lines = [
        json.dumps({"id": "json", "grammar": JSON_GBNF, "texts": texts}),
        json.dumps({"id": "slow", "grammar": "root ::= (\"a\"?){4000} \"b\"",
                    "texts": ["a" * 3000 + "b"]}),
        json.dumps({"id": "after", "grammar": 'root ::= "x"+', "texts": ["xxx", "xy"]}),
        json.dumps({"id": "bad", "grammar": "root ::= (\"a\"", "texts": ["a"]}),
    ]
    cf = os.path.join(tmp, "cases.jsonl")
    with open(cf, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = run("grammar", "bench", "-m", vocab, "--cases", cf, "--json", "--timeout-ms", "1500")
    check(p.returncode == 0, f"bench exit {p.returncode}: {p.stderr[-500:]!r}")
    out = [json.loads(ln) for ln in p.stdout.splitlines()]
    check([o["id"] for o in out] == ["json", "slow", "after", "bad"], f"ids in order: {out!r}")
    if len(out) == 4:
        j = out[0]
        check(j["error"] is None and isinstance(j["ttfm_us"], int), "json case compiled")
        got = [r["accepted"] for r in j["results"]]
        check(got == want, f"acceptance {got} want {want}")
        check(all(isinstance(r["n_tokens"], int) for r in j["results"]), "n_tokens present")
        check(len(j["mask_us"]) >= sum(r["n_tokens"] for r in j["results"]),
              "a mask time per committed token")
        check(out[1]["error"] is None or "time limit" in out[1]["error"],
              f"slow case: {out[1]['error']!r}")
        check([r["accepted"] for r in out[2]["results"]] == [True, False] and
              out[2]["results"][1]["n_tokens"] >= 0, f"case after the slow one: {out[2]!r}")
        check(out[3]["error"] and "expected ')'" in out[3]["error"], f"bad: {out[3]!r}")
    check("mask+commit us:" in p.stderr, "summary on stderr")

    # compile errors
    bad = os.path.join(tmp, "bad.gbnf")
    with open(bad, "w") as f:
        f.write('root ::= "a"\nx ::= [z-a]\n')
    p = run("grammar", "compile", "--gbnf", bad)
    check(p.returncode == 1 and "line 2, column 7" in p.stderr, f"compile error: {p.stderr!r}")
    p = run("grammar", "compile", "--gbnf", os.path.join(tmp, "g0.gbnf"))
    check(p.returncode == 0 and "root ::=" in p.stdout, "compile prints the grammar")
    p = run("run", "-m", stories, "-p", "x", "--grammar-file", bad)
    check(p.returncode == 1 and "line 2" in p.stderr, f"run with a bad grammar: {p.stderr!r}")

    subprocess.run(["rm", "-rf", tmp])
    return summary()


if __name__ == "__main__":
    sys.exit(main())
