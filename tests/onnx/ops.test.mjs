// ops.test.mjs - operators against onnxruntime-node 1.30 on random inputs: each listed ONNX
// node-test model runs in both runtimes on the same fresh random float inputs (integer and
// bool inputs, which are shapes, indices and conditions, keep the test's own values), and every
// output must agree within rtol 1e-3 / atol 1e-5.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { readTensorProto, writeNpy, readNpy, mismatch } from './lib.mjs';

const BIN = process.env.INFERNO_BIN;
const NODE = path.join(process.env.INFERNO_SHARED, 'testdata/onnx-node');
const CASES = [
  'test_add_bcast', 'test_sub_bcast', 'test_mul_bcast', 'test_div_bcast', 'test_pow_bcast_array',
  'test_relu', 'test_sigmoid', 'test_tanh', 'test_erf', 'test_sqrt', 'test_gelu_default_2',
  'test_gelu_tanh_2', 'test_softmax_axis_1', 'test_softmax_default_axis',
  'test_layer_normalization_4d_axis1', 'test_layer_normalization_3d_axis2_epsilon',
  'test_matmul_3d', 'test_matmul_bcast', 'test_matmul_4d_1d', 'test_gemm_all_attributes',
  'test_gemm_transposeA', 'test_gemm_default_matrix_bias',
  'test_conv_with_strides_padding', 'test_conv_with_strides_and_asymmetric_padding',
  'test_conv_with_autopad_same', 'test_maxpool_2d_pads', 'test_maxpool_2d_ceil',
  'test_maxpool_3d_default', 'test_averagepool_2d_pads', 'test_averagepool_2d_pads_count_include_pad',
  'test_averagepool_2d_strides', 'test_globalaveragepool', 'test_batchnorm_epsilon',
  'test_flatten_axis2', 'test_reshape_negative_dim', 'test_transpose_all_permutations_4',
  'test_gather_1', 'test_concat_3d_axis_1', 'test_slice', 'test_unsqueeze_axis_1',
  'test_squeeze', 'test_expand_dim_changed', 'test_split_variable_parts_2d_opset18',
  'test_reduce_mean_keepdims_random', 'test_reduce_mean_do_not_keepdims_example', 'test_where_example',
  'test_equal_bcast', 'test_cast_FLOAT_to_DOUBLE', 'test_identity',
].filter((c) => fs.existsSync(path.join(NODE, c, 'model.onnx')));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'inferno-onnx-ops-'));
let seed = 12345;
function rand() { // xorshift: the same inputs on every run
  seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
  return ((seed >>> 0) / 4294967296);
}

test('the cases exist', () => assert.ok(CASES.length >= 40, `${CASES.length} cases`));

for (const name of CASES) {
  test(name, async () => {
    const dir = path.join(NODE, name);
    const model = path.join(dir, 'model.onnx');
    const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
    const feeds = {}, args = [];
    session.inputNames.forEach((input, i) => {
      const t = readTensorProto(path.join(dir, 'test_data_set_0', `input_${i}.pb`));
      if (t.type === 1) {
        const positive = /sqrt|pow|batchnorm/.test(name);
        for (let k = 0; k < t.data.length; k++)
          t.data[k] = positive ? 0.1 + 2 * rand() : 4 * rand() - 2;
      }
      const typeName = { 1: 'float32', 6: 'int32', 7: 'int64', 9: 'bool', 11: 'float64' }[t.type];
      feeds[input] = new ort.Tensor(typeName, t.type === 9 ? Uint8Array.from(t.data) : t.data, t.dims);
      const file = path.join(tmp, `${name}_in${i}.npy`);
      writeNpy(file, t);
      args.push('--input', `${input}=${file}`);
    });
    const want = await session.run(feeds);
    const out = path.join(tmp, name);
    const r = spawnSync(BIN, ['onnx', 'run', '-m', model, ...args, '--output-dir', out,
      '--format', 'npy', '--threads', '1'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    session.outputNames.forEach((output, j) => {
      const got = readNpy(path.join(out, `output_${j}.npy`));
      assert.deepEqual(got.dims, want[output].dims.map(Number), `${output} shape`);
      const bad = mismatch(got.data, want[output].data);
      assert.equal(bad, null, `${output}: ${bad}`);
    });
  });
}
