// lib.mjs - what the ONNX tests share: a TensorProto reader (dims, data_type, raw_data: what
// the test data uses), .npy files in and out, and the comparison the ONNX runner uses.
import fs from 'node:fs';

export const TYPES = {
  1: { name: 'float32', arr: Float32Array, npy: '<f4' },
  6: { name: 'int32', arr: Int32Array, npy: '<i4' },
  7: { name: 'int64', arr: BigInt64Array, npy: '<i8' },
  9: { name: 'bool', arr: Uint8Array, npy: '|b1' },
  11: { name: 'float64', arr: Float64Array, npy: '<f8' },
};

function varint(b, pos) {
  let v = 0n, shift = 0n;
  for (;;) {
    const c = b[pos.i++];
    v |= BigInt(c & 0x7f) << shift;
    if (!(c & 0x80)) return v;
    shift += 7n;
  }
}

// { dims: number[], type: number, data: TypedArray }
export function readTensorProto(file) {
  const b = fs.readFileSync(file);
  const pos = { i: 0 };
  const dims = [];
  let type = 0, raw = null;
  while (pos.i < b.length) {
    const key = Number(varint(b, pos)), f = key >> 3, w = key & 7;
    if (w === 0) {
      const v = varint(b, pos);
      if (f === 1) dims.push(Number(v));
      else if (f === 2) type = Number(v);
    } else if (w === 2) {
      const len = Number(varint(b, pos));
      if (f === 9) raw = b.subarray(pos.i, pos.i + len);
      pos.i += len;
    } else if (w === 5) pos.i += 4;
    else if (w === 1) pos.i += 8;
    else throw new Error(`wire type ${w}`);
  }
  const T = TYPES[type];
  if (!T || !raw) throw new Error(`${file}: type ${type} without raw_data`);
  const copy = new Uint8Array(raw);
  return { dims, type, data: new T.arr(copy.buffer, 0, copy.length / T.arr.BYTES_PER_ELEMENT) };
}

export function writeNpy(file, t) {
  const shape = t.dims.length === 1 ? `(${t.dims[0]},)` : `(${t.dims.join(', ')})`;
  let h = `{'descr': '${TYPES[t.type].npy}', 'fortran_order': False, 'shape': ${shape}, }`;
  while ((10 + h.length + 1) % 64) h += ' ';
  h += '\n';
  const head = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(head, 0);
  head[6] = 1; head[7] = 0; head.writeUInt16LE(h.length, 8);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(h, 'latin1'),
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)]));
}

export function readNpy(file) {
  const b = fs.readFileSync(file);
  const hl = b.readUInt16LE(8), h = b.subarray(10, 10 + hl).toString('latin1');
  const descr = /'descr': '([^']+)'/.exec(h)[1];
  const shape = /'shape': \(([^)]*)\)/.exec(h)[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const type = Number(Object.keys(TYPES).find((k) => TYPES[k].npy === descr));
  const body = new Uint8Array(b.subarray(10 + hl));
  return { dims: shape, type, data: new TYPES[type].arr(body.buffer, 0, body.length / TYPES[type].arr.BYTES_PER_ELEMENT) };
}

// |a - e| <= atol + rtol |e|, NaN == NaN; returns null or a description of the first mismatch
export function mismatch(actual, expected, rtol = 1e-3, atol = 1e-5) {
  if (actual.length !== expected.length) return `length ${actual.length} != ${expected.length}`;
  for (let i = 0; i < actual.length; i++) {
    const a = Number(actual[i]), e = Number(expected[i]);
    if (Number.isNaN(a) && Number.isNaN(e)) continue;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) return `element ${i}: ${a}, expected ${e}`;
  }
  return null;
}
