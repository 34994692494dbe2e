#!/usr/bin/env python3
"""Regression tests for hostile GGUF files and model paths (issue #14, items 1-5, 16, 19).

Usage: gguf_hardening.py INFERNO SHARED_TESTDATA_DIR

Each case runs the real CLI on a crafted file and checks that it fails (or succeeds) with a clear
message, never by a signal, a sanitizer report or a hang:
  * a tensor whose byte size wraps around 64 bits is refused by validate, models info, quantize
    and validate --deep (and quantize leaves no temporary file);
  * validate --deep survives a zero first dimension and a row whose size wraps;
  * validate --deep tells "valid but not runnable" (exit 4) apart from valid (0) and invalid (1);
  * a huge block_count is refused before the loader allocates for it;
  * a FIFO given as a model (run, validate, models info, tokenize, serve) or found in models_dir
    is refused at once; `run -f /dev/zero` stops at the prompt-file cap;
  * quantize refuses an output that exists and is not a regular file, --force or not;
  * quantize killed by SIGKILL leaves no OUT.tmp.* file.
Cases that need the shared model skip themselves when it is absent.
"""
import fcntl
import json
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, summary  # noqa: E402

SANITIZER_MARKS = ("AddressSanitizer", "UndefinedBehaviorSanitizer", "runtime error:",
                   "LeakSanitizer", "double free", "Segmentation fault")


# ---- a minimal GGUF writer ----

def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def kv_bytes(key, value):
    """value: int (uint32), float (float32), str, or ('arr', type, [items]) / ('u64', n)."""
    out = gstr(key)
    if isinstance(value, bool):
        return out + struct.pack("<IB", 7, value)
    if isinstance(value, int):
        return out + struct.pack("<II", 4, value)
    if isinstance(value, float):
        return out + struct.pack("<If", 6, value)
    if isinstance(value, str):
        return out + struct.pack("<I", 8) + gstr(value)
    kind = value[0]
    if kind == "u64":
        return out + struct.pack("<IQ", 10, value[1])
    if kind == "arr":
        _, et, items = value
        body = struct.pack("<IIQ", 9, et, len(items))
        for it in items:
            body += gstr(it) if et == 8 else struct.pack({4: "<I", 5: "<i", 6: "<f"}[et], it)
        return out + body
    raise ValueError(kind)


def gguf(kvs, tensors, align=32):
    """tensors: [(name, type, shape, data_bytes or None, offset or None)]."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for k, v in kvs:
        head += kv_bytes(k, v)
    infos = b""
    data = b""
    for name, ttype, shape, payload, offset in tensors:
        payload = payload or b""
        off = len(data) if offset is None else offset
        infos += gstr(name) + struct.pack("<I", len(shape))
        infos += b"".join(struct.pack("<Q", d) for d in shape)
        infos += struct.pack("<IQ", ttype, off)
        if offset is None:
            data += payload
            data += b"\0" * ((-len(data)) % align)
    blob = head + infos
    blob += b"\0" * ((-len(blob)) % align)
    return blob + data


def write(path, blob):
    with open(path, "wb") as f:
        f.write(blob)
    return path


def run(cmd, timeout=60, **kw):
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return "timeout", "", ""


def sane(rc, out, err, what):
    """No signal, no sanitizer report, no hang."""
    ok = rc != "timeout" and isinstance(rc, int) and rc >= 0 and rc < 128
    ok = ok and not any(m in out + err for m in SANITIZER_MARKS)
    check(ok, "%s: rc=%r\n  stdout=%s\n  stderr=%s" % (what, rc, out[-600:], err[-600:]))
    return ok


LLAMA_KV = [("general.architecture", "llama"), ("llama.block_count", 1),
            ("llama.embedding_length", 8), ("llama.attention.head_count", 2),
            ("llama.feed_forward_length", 16), ("llama.context_length", 32)]


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    inferno, shared = sys.argv[1], sys.argv[2]
    stories = os.path.join(shared, "models", "stories260K.gguf")
    have_stories = os.path.isfile(stories)
    work = tempfile.mkdtemp(prefix="inferno-hardening-")
    env = dict(os.environ, INFERNO_MODELS_DIR=work, XDG_CACHE_HOME=work, HOME=work)
    base = [inferno, "--models-dir", work]
    try:
        f32_row = struct.pack("<8f", *[0.5] * 8)

        # 1. a tensor of 2^62 F32 values: 2^64 bytes, which wrapped to 0 and was 'valid'
        wrap = write(os.path.join(work, "wrap.gguf"),
                     gguf(LLAMA_KV, [("token_embd.weight", 0, [8, 4], f32_row * 4, None),
                                     ("blk.0.attn_q.weight", 0, [1 << 62], None, None)]))
        for cmd, name in ((["validate", wrap], "validate"),
                          (["validate", "--deep", wrap], "validate --deep"),
                          (["models", "info", wrap], "models info"),
                          (["models", "info", "--json", wrap], "models info --json")):
            rc, out, err = run(base + cmd, env=env)
            if sane(rc, out, err, "wrap: " + name):
                check(rc == 1 and "overflow" in out + err,
                      "wrap: %s must fail naming the overflow: rc=%r %s %s" % (name, rc, out, err))
        qout = os.path.join(work, "wrap-q.gguf")
        rc, out, err = run(base + ["quantize", wrap, qout, "--type", "Q8_0", "-q"], env=env)
        if sane(rc, out, err, "wrap: quantize"):
            check(rc == 1 and "overflow" in err, "wrap: quantize fails: rc=%r %s" % (rc, err))
        left = [f for f in os.listdir(work) if f.startswith("wrap-q")]
        check(not left, "wrap: quantize left %r" % left)
        # the same wrap through a 2-D shape whose second dimension is 0 (no elements, but a row
        # of 2^64 bytes): the deep check's row buffer was freed twice
        wrap0 = write(os.path.join(work, "wrap0.gguf"),
                      gguf(LLAMA_KV, [("token_embd.weight", 0, [8, 4], f32_row * 4, None),
                                      ("blk.0.attn_q.weight", 0, [1 << 62, 0], None, None)]))
        for cmd in (["validate", wrap0], ["validate", "--deep", wrap0]):
            rc, out, err = run(base + cmd, env=env)
            if sane(rc, out, err, "wrap0: " + " ".join(cmd[:-1])):
                check(rc == 1 and "overflow" in out, "wrap0 %s: rc=%r %s" % (cmd[:-1], rc, out))

        # models info's KV-cache estimate multiplied metadata values without checks (2^82 -> 0)
        kvbig = write(os.path.join(work, "kvbig.gguf"),
                      gguf([("general.architecture", "llama"), ("llama.block_count", ("u64", 1 << 40)),
                            ("llama.attention.head_count", 1 << 20),
                            ("llama.attention.key_length", 1 << 10)],
                           [("token_embd.weight", 0, [8, 4], f32_row * 4, None)]))
        rc, out, err = run(base + ["models", "info", "--json", kvbig], env=env)
        if sane(rc, out, err, "kvbig: models info"):
            try:
                mem = json.loads(out)["memory"]
            except (ValueError, KeyError):
                mem = {}
            check(rc == 0 and mem.get("kv_cache_bytes", 0) >= 2**62 and
                  mem.get("total_bytes", 0) >= mem.get("kv_cache_bytes", 0),
                  "kvbig: the estimate saturates instead of wrapping: %s" % mem)

        # 2. a first dimension of 0 (zero elements): validate --deep divided by it (SIGFPE)
        zero = write(os.path.join(work, "zero.gguf"),
                     gguf(LLAMA_KV, [("token_embd.weight", 0, [8, 4], f32_row * 4, None),
                                     ("blk.0.attn_q.weight", 0, [0, 4], None, None)]))
        rc, out, err = run(base + ["validate", zero], env=env)
        if sane(rc, out, err, "zero: validate"):
            check(rc == 0, "zero: plain validate: a tensor without elements is well-formed: "
                  "rc=%r %s" % (rc, out))
        rc, out, err = run(base + ["validate", "--deep", zero], env=env)
        if sane(rc, out, err, "zero: validate --deep"):
            # the value check passes (no elements, no division); the tensor set is incomplete
            check(rc == 1 and "invalid:" in out and "is missing" in out,
                  "zero: validate --deep: rc=%r %s" % (rc, out))

        # 3. valid but not runnable: no tensors; a tensor type the kernels lack
        notensor = write(os.path.join(work, "notensor.gguf"), gguf(LLAMA_KV, []))
        rc, out, err = run(base + ["validate", notensor], env=env)
        check(rc == 0, "notensor: plain validate is structure only: rc=%r %s" % (rc, out))
        rc, out, err = run(base + ["validate", "--deep", notensor], env=env)
        if sane(rc, out, err, "notensor: validate --deep"):
            check(rc == 4 and "not runnable" in out and "no tensors" in out,
                  "notensor: validate --deep must exit 4 (not runnable): rc=%r %s" % (rc, out))
        iq = write(os.path.join(work, "iq.gguf"),
                   gguf(LLAMA_KV, [("token_embd.weight", 16, [256, 2], b"\0" * 66 * 2, None)]))
        rc, out, err = run(base + ["validate", "--deep", iq], env=env)
        if sane(rc, out, err, "iq: validate --deep"):
            check(rc == 4 and "not runnable" in out and "IQ2_XXS" in out,
                  "iq: validate --deep must exit 4 (not runnable): rc=%r %s" % (rc, out))
        hdr = json.dumps({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
        st = write(os.path.join(work, "one.safetensors"),
                   struct.pack("<Q", len(hdr)) + hdr + b"\0" * 4)
        rc, out, err = run(base + ["validate", "--deep", st], env=env)
        if sane(rc, out, err, "safetensors: validate --deep"):
            check(rc == 4 and "not runnable" in out and "GGUF files only" in out,
                  "safetensors: validate --deep must exit 4 (not runnable): rc=%r %s" % (rc, out))
        rc, out, err = run(base + ["validate", "--help"], env=env)
        check("4" in out and "not runnable" in out, "validate --help documents exit 4: %s" % out)
        if have_stories:
            rc, out, err = run(base + ["validate", "--deep", stories], env=env)
            check(rc == 0 and "valid:" in out, "stories: validate --deep: rc=%r %s" % (rc, out))

        # 4. a huge block_count: refused from the tensor set, before allocating per layer
        if have_stories:
            data = bytearray(open(stories, "rb").read())
            key = gstr("llama.block_count")
            at = data.find(key) + len(key)
            vtype = struct.unpack_from("<I", data, at)[0]
            check(vtype == 4, "stories: llama.block_count is uint32")
            struct.pack_into("<I", data, at + 4, 100000000)
            big = write(os.path.join(work, "blocks.gguf"), bytes(data))
            for cmd in (["validate", "--deep", big], ["run", "-m", big, "-p", "hi", "-n", "1"]):
                t0 = time.time()
                rc, out, err = run(base + cmd, env=env, timeout=60)
                if sane(rc, out, err, "block_count: " + cmd[0]):
                    check(rc in (1, 4) and "block_count" in out + err and "100000000" in out + err,
                          "block_count: %s names the metadata: rc=%r %s %s" % (cmd[0], rc, out,
                                                                               err))
                    check(time.time() - t0 < 20, "block_count: %s is quick" % cmd[0])

        # 5. a FIFO as a model blocked forever in open(); /dev/zero as a prompt file grew forever
        fifo = os.path.join(work, "fifo.gguf")
        os.mkfifo(fifo)
        for cmd in (["validate", fifo], ["models", "info", fifo], ["run", "-m", fifo, "-p", "x"],
                    ["tokenize", "-m", fifo, "--text", "x"], ["serve", "-m", fifo, "--port", "0"]):
            rc, out, err = run(base + cmd, env=env, timeout=15)
            if sane(rc, out, err, "fifo: " + " ".join(cmd[:2])):
                check(rc != 0 and "not a regular file" in out + err,
                      "fifo: %s: rc=%r %s %s" % (cmd[:2], rc, out, err))
        rc, out, err = run(base + ["models", "list"], env=env, timeout=15)
        sane(rc, out, err, "fifo: models list")
        os.unlink(fifo)
        if have_stories:
            rc, out, err = run(base + ["run", "-m", stories, "-f", "/dev/zero", "-n", "1"],
                               env=env, timeout=15)
            if sane(rc, out, err, "run -f /dev/zero"):
                check(rc == 1 and "prompt file" in err and "larger than" in err,
                      "run -f /dev/zero: rc=%r %s" % (rc, err))
            rc, out, err = run(base + ["run", "--help"], env=env)
            check("MiB" in out, "run --help states the prompt-file cap: %s" % out)

        # 16. quantize onto an existing path that is not a regular file
        src = stories if have_stories else write(
            os.path.join(work, "small.gguf"),
            gguf(LLAMA_KV, [("token_embd.weight", 0, [32, 4], b"\0" * 512, None)]))
        targets = []
        ofifo = os.path.join(work, "out-fifo")
        os.mkfifo(ofifo)
        targets.append((ofifo, stat.S_ISFIFO))
        odir = os.path.join(work, "out-dir")
        os.mkdir(odir)
        targets.append((odir, stat.S_ISDIR))
        olink = os.path.join(work, "out-null")
        os.symlink("/dev/null", olink)
        targets.append((olink, stat.S_ISLNK))
        for target, kind in targets:
            for force in ([], ["--force"]):
                rc, out, err = run(base + ["quantize", src, target, "--type", "Q8_0", "-q"] + force,
                                   env=env, timeout=60)
                if sane(rc, out, err, "quantize onto %s" % target):
                    check(rc == 1 and "not a regular file" in err,
                          "quantize %s onto %s: rc=%r %s" % (force, target, rc, err))
                check(kind(os.lstat(target).st_mode), "quantize %s left %s as it was" % (force,
                                                                                        target))
        check(not [f for f in os.listdir(work) if ".tmp" in f],
              "quantize refusals leave no temporary file: %r" % os.listdir(work))

        # quantizing a NaN converted it to an integer (undefined; UBSan's float-cast-overflow,
        # found by fuzz_gguf_commands): refused with a message naming the tensor and the value
        nan_row = struct.pack("<32f", *([0.25] * 5 + [float("nan")] + [0.5] * 26))
        nanf = write(os.path.join(work, "nan.gguf"),
                     gguf([("general.architecture", "llama")],
                          [("blk.0.attn_q.weight", 0, [32, 2], nan_row * 2, None)]))
        rc, out, err = run(base + ["quantize", nanf, os.path.join(work, "nan-q.gguf"), "--type",
                                   "Q8_0", "-q"], env=env)
        if sane(rc, out, err, "quantize nan"):
            check(rc == 1 and "'blk.0.attn_q.weight': row 0 element 5 is nan" in err,
                  "quantize nan: rc=%r %s" % (rc, err))
        check(not [f for f in os.listdir(work) if f.startswith("nan-q")], "quantize nan: no output")
        # a float target carries NaN as it is: nothing to refuse
        rc, out, err = run(base + ["quantize", nanf, os.path.join(work, "nan-f16.gguf"), "--type",
                                   "f16"], env=env)
        if sane(rc, out, err, "quantize nan to f16"):
            check(rc == 0 and os.path.exists(os.path.join(work, "nan-f16.gguf")),
                  "quantize nan to f16 is not refused: rc=%r %s" % (rc, err))

        # 19. quantize killed by SIGKILL leaves no OUT.tmp.* behind
        big = os.path.join(work, "big.gguf")
        n = 2048
        row = struct.pack("<%df" % n, *[((i * 37) % 101) / 101.0 - 0.5 for i in range(n)])
        write(big, gguf([("general.architecture", "llama"), ("llama.block_count", 1)],
                        [("blk.0.attn_q.weight", 0, [n, n * 2], row * (n * 2), None)]))
        out = os.path.join(work, "big-q2.gguf")
        killed = 0
        for delay in (0.05, 0.15, 0.3):
            proc = subprocess.Popen(base + ["quantize", big, out, "--type", "Q2_K",
                                            "--threads", "1", "-q"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
            proc.wait()
            if os.path.exists(out):
                os.unlink(out)
            left = [f for f in os.listdir(work) if f.startswith("big-q2")]
            check(not left, "SIGKILL after %.2fs left %r" % (delay, left))
            for f in left:
                os.unlink(os.path.join(work, f))
        check(killed > 0, "quantize was killed at least once mid-run")
        # leftovers of killed runs (named OUT.tmp.XXXXXX where O_TMPFILE is missing) are removed
        # by the next run; one that a live run holds (flock) is not
        stale = out + ".tmp.Ab12Cd"
        live = out + ".tmp.Zz98Yy"
        write(stale, b"partial")
        write(live, b"partial")
        holder = open(live, "rb")
        fcntl.flock(holder, fcntl.LOCK_EX)
        rc, o, e = run(base + ["quantize", big, out, "--type", "Q8_0", "-q"], env=env,
                       timeout=120)
        check(rc == 0 and os.path.isfile(out), "quantize still writes OUT: rc=%r %s" % (rc, e))
        check(not os.path.exists(stale), "the stale OUT.tmp.* was removed")
        check(os.path.exists(live), "a locked OUT.tmp.* (a live run's) was left alone")
        holder.close()
        os.unlink(live)
        check(not [f for f in os.listdir(work) if ".tmp" in f], "no temporary file after a run")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
