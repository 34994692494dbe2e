#!/usr/bin/env python3
"""Cross-check Inferno's GGUF reader against an independent reader written here with `struct`.

    gguf_crosscheck.py GGUF_DUMP [FILE.gguf | DIR]...

For every .gguf file given (directories are searched recursively), runs `GGUF_DUMP FILE`
(tools/gguf-dump.c, which prints what Inferno's reader parsed as JSON) and compares the header
fields, every metadata key, value type and value (arrays element by element, nested arrays
included) and every tensor's name, type, shape, offset and byte size with what this script
reads itself. Byte sizes come from this script's own copy of ggml's type table.

Besides the given files it writes synthetic files with a small writer of its own (every value
type, nested arrays, empty strings and arrays, GGUF v2 and v3, big-endian, quantized tensors)
and checks those the same way. Exit status 0 when everything matches, 1 on a mismatch, 77 when
no input files were found (shared test data absent).
"""

import json
import math
import os
import struct
import subprocess
import sys
import tempfile

# value types: id -> (name, struct code); strings (8) and arrays (9) are handled apart
SCALARS = {
    0: ("uint8", "B"),
    1: ("int8", "b"),
    2: ("uint16", "H"),
    3: ("int16", "h"),
    4: ("uint32", "I"),
    5: ("int32", "i"),
    6: ("float32", "f"),
    7: ("bool", "B"),
    10: ("uint64", "Q"),
    11: ("int64", "q"),
    12: ("float64", "d"),
}
TYPE_NAMES = {k: v[0] for k, v in SCALARS.items()}
TYPE_NAMES[8] = "string"
TYPE_NAMES[9] = "array"

QK_K = 256
# ggml type id -> (name, values per block, bytes per block)
GGML_TYPES = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 2 + 16),
    3: ("Q4_1", 32, 2 + 2 + 16),
    6: ("Q5_0", 32, 2 + 4 + 16),
    7: ("Q5_1", 32, 2 + 2 + 4 + 16),
    8: ("Q8_0", 32, 2 + 32),
    9: ("Q8_1", 32, 4 + 32),
    10: ("Q2_K", QK_K, QK_K // 16 + QK_K // 4 + 2 + 2),
    11: ("Q3_K", QK_K, QK_K // 8 + QK_K // 4 + 12 + 2),
    12: ("Q4_K", QK_K, 2 + 2 + 12 + QK_K // 2),
    13: ("Q5_K", QK_K, 2 + 2 + 12 + QK_K // 8 + QK_K // 2),
    14: ("Q6_K", QK_K, QK_K // 2 + QK_K // 4 + QK_K // 16 + 2),
    15: ("Q8_K", QK_K, 4 + QK_K + 2 * (QK_K // 16)),
    16: ("IQ2_XXS", QK_K, 2 + 2 * (QK_K // 8)),
    17: ("IQ2_XS", QK_K, 2 + 2 * (QK_K // 8) + QK_K // 32),
    18: ("IQ3_XXS", QK_K, 2 + 3 * QK_K // 8),
    19: ("IQ1_S", QK_K, 2 + QK_K // 8 + 2 * (QK_K // 32)),
    20: ("IQ4_NL", 32, 2 + 16),
    21: ("IQ3_S", QK_K, 2 + QK_K // 4 + QK_K // 32 + QK_K // 8 + 4),
    22: ("IQ2_S", QK_K, 2 + QK_K // 4 + QK_K // 32 + QK_K // 32),
    23: ("IQ4_XS", QK_K, 2 + 2 + QK_K // 64 + QK_K // 2),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", QK_K, QK_K // 8 + QK_K // 16 + QK_K // 32),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", QK_K, 48 + 4 + 2),
    35: ("TQ2_0", QK_K, 64 + 2),
    39: ("MXFP4", 32, 1 + 16),
    40: ("NVFP4", 64, 4 + 32),
    41: ("Q1_0", 128, 2 + 16),
    42: ("Q2_0", 64, 2 + 16),
}


class GGUF:
    """A GGUF file read with struct: header, metadata and tensor infos."""

    def __init__(self, data):
        if data[:4] != b"GGUF":
            raise ValueError("bad magic")
        version = struct.unpack_from("<I", data, 4)[0]
        self.bo = "<"
        if version & 0xFFFF == 0 and version != 0:
            self.bo = ">"
            version = struct.unpack_from(">I", data, 4)[0]
        if version not in (2, 3):
            raise ValueError("version %d" % version)
        self.version = version
        self.data = data
        self.pos = 8
        n_tensors = self.u64()
        n_kv = self.u64()
        self.kvs = []
        for _ in range(n_kv):
            key = self.string()
            vtype = self.u32()
            self.kvs.append((key, vtype, self.value(vtype)))
        self.alignment = 32
        for key, vtype, value in self.kvs:
            if key == "general.alignment":
                self.alignment = value
        self.tensors = []
        for _ in range(n_tensors):
            name = self.string()
            n_dims = self.u32()
            shape = [self.u64() for _ in range(n_dims)]
            ttype = self.u32()
            offset = self.u64()
            self.tensors.append((name, ttype, shape, offset))
        a = self.alignment
        self.data_offset = (self.pos + a - 1) // a * a

    def unpack(self, code, size):
        v = struct.unpack_from(self.bo + code, self.data, self.pos)[0]
        self.pos += size
        return v

    def u32(self):
        return self.unpack("I", 4)

    def u64(self):
        return self.unpack("Q", 8)

    def string(self):
        n = self.u64()
        raw = self.data[self.pos : self.pos + n]
        if len(raw) != n:
            raise ValueError("truncated string")
        self.pos += n
        return raw.decode("utf-8", errors="surrogateescape")

    def value(self, vtype):
        if vtype in SCALARS:
            code = SCALARS[vtype][1]
            raw = self.data[self.pos : self.pos + struct.calcsize(code)]
            v = self.unpack(code, struct.calcsize(code))
            return (v, raw) if vtype in (6, 12) else v
        if vtype == 8:
            return self.string()
        if vtype == 9:
            etype = self.u32()
            n = self.u64()
            return (etype, [self.value(etype) for _ in range(n)])
        raise ValueError("value type %d" % vtype)


def read_tensors(path):
    """Reads the GGUF file at path: (GGUF, {name: (type id, shape, tensor bytes)}, file bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    g = GGUF(data)
    out = {}
    for name, ttype, shape, offset in g.tensors:
        _, blck, tsize = GGML_TYPES[ttype]
        start = g.data_offset + offset
        out[name] = (ttype, shape, data[start:start + math.prod(shape) // blck * tsize])
    return g, out, data


def same_float(mine, theirs, bo, code):
    value, raw = mine
    if isinstance(theirs, float) and math.isnan(theirs):
        return math.isnan(value)
    if not isinstance(theirs, (int, float)) or isinstance(theirs, bool):
        return False
    return struct.pack(bo + code, float(theirs)) == raw


def compare_value(vtype, mine, theirs, bo, where, errors):
    if vtype in (6, 12):
        if not same_float(mine, theirs, bo, SCALARS[vtype][1]):
            errors.append("%s: %r != %r" % (where, mine[0], theirs))
    elif vtype == 7:
        if theirs is not bool(mine):
            errors.append("%s: bool %r != %r" % (where, mine, theirs))
    elif vtype == 9:
        etype, items = mine
        if not isinstance(theirs, dict):
            errors.append("%s: expected an array, got %r" % (where, theirs))
            return
        if theirs.get("type") != TYPE_NAMES.get(etype) or theirs.get("n") != len(items):
            errors.append(
                "%s: array of %d %s != array of %s %s"
                % (where, len(items), TYPE_NAMES.get(etype), theirs.get("n"), theirs.get("type"))
            )
            return
        values = theirs.get("values")
        if values is None or len(values) != len(items):
            errors.append("%s: array values missing" % where)
            return
        for i, (m, t) in enumerate(zip(items, values)):
            compare_value(etype, m, t, bo, "%s[%d]" % (where, i), errors)
            if len(errors) > 20:
                return
    else:
        if type(theirs) is not type(mine) or theirs != mine:
            errors.append("%s: %r != %r" % (where, mine, theirs))


def crosscheck(dump, path):
    with open(path, "rb") as f:
        data = f.read()
    mine = GGUF(data)
    proc = subprocess.run([dump, path], capture_output=True)
    if proc.returncode != 0:
        return ["gguf-dump failed: %s" % proc.stderr.decode(errors="replace").strip()]
    theirs = json.loads(proc.stdout.decode("utf-8", errors="surrogateescape"))
    errors = []
    for field, value in (
        ("version", mine.version),
        ("big_endian", mine.bo == ">"),
        ("alignment", mine.alignment),
        ("data_offset", mine.data_offset),
        ("file_size", len(data)),
    ):
        if theirs.get(field) != value:
            errors.append("%s: %r != %r" % (field, value, theirs.get(field)))
    kvs = theirs.get("metadata", [])
    if len(kvs) != len(mine.kvs):
        errors.append("metadata count: %d != %d" % (len(mine.kvs), len(kvs)))
    for (key, vtype, value), kv in zip(mine.kvs, kvs):
        if kv.get("key") != key:
            errors.append("metadata key %r != %r" % (key, kv.get("key")))
            continue
        if kv.get("type") != TYPE_NAMES.get(vtype):
            errors.append("%s: type %s != %s" % (key, TYPE_NAMES.get(vtype), kv.get("type")))
            continue
        compare_value(vtype, value, kv.get("value"), mine.bo, key, errors)
    tensors = theirs.get("tensors", [])
    if len(tensors) != len(mine.tensors):
        errors.append("tensor count: %d != %d" % (len(mine.tensors), len(tensors)))
    for (name, ttype, shape, offset), t in zip(mine.tensors, tensors):
        tname, blck, tsize = GGML_TYPES[ttype]
        n = 1
        for d in shape:
            n *= d
        expect = {
            "name": name,
            "type": tname,
            "type_id": ttype,
            "shape": shape,
            "offset": offset,
            "n_bytes": n // blck * tsize,
        }
        for k, v in expect.items():
            if t.get(k) != v:
                errors.append("tensor %r: %s %r != %r" % (name, k, v, t.get(k)))
        end = mine.data_offset + offset + n // blck * tsize
        if end > len(data):
            errors.append("tensor %r ends at %d, past the file (%d)" % (name, end, len(data)))
    return errors


# ---- a small independent writer for synthetic files ----


class Writer:
    def __init__(self, version=3, bo="<", alignment=None):
        self.version, self.bo = version, bo
        self.kvs, self.tensors = [], []
        self.alignment = alignment or 32
        if alignment:
            self.kv("general.alignment", 4, alignment)

    def kv(self, key, vtype, value):
        self.kvs.append((key, vtype, value))

    def tensor(self, name, ttype, shape):
        _, blck, tsize = GGML_TYPES[ttype]
        n = 1
        for d in shape:
            n *= d
        nbytes = n // blck * tsize
        payload = bytes((i * 7 + len(name)) & 0xFF for i in range(nbytes))
        self.tensors.append((name, ttype, shape, payload))

    def enc_str(self, s):
        raw = s.encode("utf-8", errors="surrogateescape") if isinstance(s, str) else s
        return struct.pack(self.bo + "Q", len(raw)) + raw

    def enc_value(self, vtype, value):
        if vtype in SCALARS:
            return struct.pack(self.bo + SCALARS[vtype][1], value)
        if vtype == 8:
            return self.enc_str(value)
        etype, items = value
        out = struct.pack(self.bo + "IQ", etype, len(items))
        return out + b"".join(self.enc_value(etype, v) for v in items)

    def build(self):
        out = b"GGUF" + struct.pack(self.bo + "IQQ", self.version, len(self.tensors), len(self.kvs))
        for key, vtype, value in self.kvs:
            out += self.enc_str(key) + struct.pack(self.bo + "I", vtype)
            out += self.enc_value(vtype, value)
        a, offset, blobs = self.alignment, 0, []
        for name, ttype, shape, payload in self.tensors:
            out += self.enc_str(name) + struct.pack(self.bo + "I", len(shape))
            out += b"".join(struct.pack(self.bo + "Q", d) for d in shape)
            out += struct.pack(self.bo + "IQ", ttype, offset)
            padded = (len(payload) + a - 1) // a * a
            blobs.append(payload + b"\0" * (padded - len(payload)))
            offset += padded
        if self.tensors:
            out += b"\0" * ((len(out) + a - 1) // a * a - len(out))
        return out + b"".join(blobs)


def synthetic_files(tmp):
    files = []
    for version, bo, alignment in ((3, "<", None), (2, "<", 64), (3, ">", 16), (2, ">", None)):
        w = Writer(version, bo, alignment)
        w.kv("general.architecture", 8, "llama")
        w.kv("u8", 0, 255)
        w.kv("i8", 1, -128)
        w.kv("u16", 2, 65535)
        w.kv("i16", 3, -32768)
        w.kv("u32", 4, 4294967295)
        w.kv("i32", 5, -2147483648)
        w.kv("f32", 6, -1.5)
        w.kv("f32.nan", 6, float("nan"))
        w.kv("f32.inf", 6, float("-inf"))
        w.kv("bool.true", 7, 1)
        w.kv("bool.false", 7, 0)
        w.kv("u64", 10, 18446744073709551615)
        w.kv("i64", 11, -9223372036854775808)
        w.kv("f64", 12, 2.0 ** -1074)
        w.kv("str.empty", 8, "")
        w.kv("str.utf8", 8, "h\u00e9llo \u2603 \U0001F600 \"q\" \\ \n\t")
        w.kv("str.bytes", 8, b"\xff\xfe\x00\xc3(\xe2\x82")
        w.kv("arr.empty", 9, (4, []))
        w.kv("arr.u8", 9, (0, [0, 1, 2, 255]))
        w.kv("arr.i16", 9, (3, [-1, 2, -3]))
        w.kv("arr.f32", 9, (6, [0.0, -0.0, 1e-45, 3.4028234663852886e38]))
        w.kv("arr.f64", 9, (12, [1.0 / 3.0, -1e308]))
        w.kv("arr.bool", 9, (7, [1, 0, 1]))
        w.kv("arr.u64", 9, (10, [0, 2**64 - 1]))
        w.kv("arr.str", 9, (8, ["a", "", "b\u00e9", "\U0001F600"]))
        w.kv("arr.nested", 9, (9, [(4, [1, 2]), (8, ["x"]), (9, [(9, [(0, [7])])])]))
        w.tensor("t.f32", 0, [4, 3])
        w.tensor("t.q4_0", 2, [64, 2])
        w.tensor("t.q6_k", 14, [256])
        w.tensor("t.iq2_xs", 17, [256, 1, 1, 2])
        w.tensor("t.bf16", 30, [5])
        w.tensor("t.empty", 0, [0, 3])
        path = os.path.join(tmp, "synthetic-v%d-%s.gguf" % (version, "be" if bo == ">" else "le"))
        with open(path, "wb") as f:
            f.write(w.build())
        files.append(path)
    w = Writer(3, "<")
    w.kv("general.name", 8, "no tensors")
    path = os.path.join(tmp, "synthetic-metadata-only.gguf")
    with open(path, "wb") as f:
        f.write(w.build())
    files.append(path)
    return files


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    dump = argv[1]
    files = []
    for arg in argv[2:]:
        if os.path.isdir(arg):
            for root, _, names in os.walk(arg):
                files += [os.path.join(root, n) for n in sorted(names) if n.endswith(".gguf")]
        elif os.path.isfile(arg):
            files.append(arg)
    if not files:
        print("SKIP: no .gguf files found in %s" % " ".join(argv[2:]))
        return 77
    failed = checked = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(files) + synthetic_files(tmp):
            checked += 1
            try:
                errors = crosscheck(dump, path)
            except (ValueError, struct.error, KeyError) as e:
                errors = ["the independent reader failed: %s" % e]
            status = "ok" if not errors else "FAIL"
            print("%s %s" % (status, path))
            for e in errors[:20]:
                print("    " + e)
            failed += bool(errors)
    print("%d files, %d failed" % (checked, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
