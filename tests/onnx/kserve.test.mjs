// kserve.test.mjs - `inferno serve` with ONNX models over the Open Inference Protocol (KServe
// v2), driven by a real HTTP client (Node's fetch): health, server and model metadata, readiness,
// inference checked against the models' reference outputs (the ONNX test data), concurrent
// requests, and bad requests answered with 4xx and an error message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { readTensorProto, mismatch } from './lib.mjs';

const BIN = process.env.INFERNO_BIN;
const MODELS = path.join(process.env.INFERNO_SHARED, 'testdata/onnx-models');
let proc, base;

before(async () => {
  proc = spawn(BIN, ['serve', '--port', '0', '--threads', '2',
    '-m', path.join(MODELS, 'mnist-8/model.onnx'),
    '-m', `sr=${path.join(MODELS, 'super-resolution-10/model.onnx')}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  base = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    proc.on('exit', (code) => reject(new Error(`serve exited ${code}`)));
    setTimeout(() => reject(new Error('serve did not start')), 30000);
  });
});

after(() => proc && proc.kill('SIGTERM'));

const get = (p) => fetch(base + p);
const post = (p, body) => fetch(base + p, {
  method: 'POST', headers: { 'Content-Type': 'application/json' },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

function mnistRequest(set) {
  const t = readTensorProto(path.join(MODELS, `mnist-8/test_data_set_${set}/input_0.pb`));
  return { id: `req-${set}`, inputs: [{ name: 'Input3', shape: t.dims, datatype: 'FP32', data: Array.from(t.data) }] };
}

test('health, server metadata and readiness', async () => {
  let r = await get('/v2/health/live');
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { live: true });
  r = await get('/v2/health/ready');
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { ready: true });
  r = await get('/v2');
  assert.equal((await r.json()).name, 'inferno');
  r = await get('/v2/models/mnist-8/ready');
  assert.equal(r.status, 200);
  r = await get('/v2/models/sr/versions/1/ready');
  assert.equal(r.status, 200);
});

test('model metadata: inputs and outputs with datatypes and shapes', async () => {
  const r = await get('/v2/models/mnist-8');
  assert.equal(r.status, 200);
  const m = await r.json();
  assert.equal(m.name, 'mnist-8');
  assert.deepEqual(m.inputs, [{ name: 'Input3', datatype: 'FP32', shape: [1, 1, 28, 28] }]);
  assert.deepEqual(m.outputs, [{ name: 'Plus214_Output_0', datatype: 'FP32', shape: [1, 10] }]);
  const sr = await (await get('/v2/models/sr')).json();
  assert.deepEqual(sr.inputs[0].shape, [-1, 1, 224, 224]); // batch_size is symbolic
});

test('inference matches the reference outputs, nested data too', async () => {
  for (const set of [0, 1, 2]) {
    const req = mnistRequest(set);
    if (set === 1) { // nested rows instead of flat data
      const flat = req.inputs[0].data, rows = [];
      for (let i = 0; i < 28; i++) rows.push(flat.slice(28 * i, 28 * i + 28));
      req.inputs[0].data = [[rows]];
    }
    const r = await post('/v2/models/mnist-8/infer', req);
    assert.equal(r.status, 200);
    const body = await r.json();
    assert.equal(body.model_name, 'mnist-8');
    assert.equal(body.id, `req-${set}`);
    assert.equal(body.outputs.length, 1);
    const o = body.outputs[0];
    assert.equal(o.name, 'Plus214_Output_0');
    assert.equal(o.datatype, 'FP32');
    assert.deepEqual(o.shape, [1, 10]);
    const want = readTensorProto(path.join(MODELS, `mnist-8/test_data_set_${set}/output_0.pb`));
    assert.equal(mismatch(o.data, want.data, 1e-3, 1e-4), null);
  }
});

test('concurrent requests all get their own answers', async () => {
  const reqs = [];
  for (let i = 0; i < 12; i++) reqs.push(post('/v2/models/mnist-8/infer', mnistRequest(i % 3)));
  const res = await Promise.all(reqs);
  for (let i = 0; i < res.length; i++) {
    const body = await res[i].json();
    const want = readTensorProto(path.join(MODELS, `mnist-8/test_data_set_${i % 3}/output_0.pb`));
    assert.equal(body.id, `req-${i % 3}`);
    assert.equal(mismatch(body.outputs[0].data, want.data, 1e-3, 1e-4), null);
  }
});

test('a symbolic batch dimension takes the request\'s size', async () => {
  const t = readTensorProto(path.join(MODELS, 'super-resolution-10/test_data_set_0/input_0.pb'));
  const r = await post('/v2/models/sr/infer', { inputs: [{ name: 'input', shape: [1, 1, 224, 224], datatype: 'FP32', data: Array.from(t.data) }] });
  assert.equal(r.status, 200);
  const o = (await r.json()).outputs[0];
  assert.deepEqual(o.shape, [1, 1, 672, 672]);
  const want = readTensorProto(path.join(MODELS, 'super-resolution-10/test_data_set_0/output_0.pb'));
  assert.equal(mismatch(o.data, want.data, 1e-3, 1e-4), null);
});

test('concurrent requests to a model with a symbolic batch dim are batched', async () => {
  const t = readTensorProto(path.join(MODELS, 'super-resolution-10/test_data_set_0/input_0.pb'));
  const want = readTensorProto(path.join(MODELS, 'super-resolution-10/test_data_set_0/output_0.pb'));
  const scaled = Array.from(t.data, (v) => v * 0.5); // a second input: its output must differ
  const reqs = [];
  for (let i = 0; i < 6; i++) {
    reqs.push(post('/v2/models/sr/infer', { id: `sr-${i}`, inputs: [{ name: 'input', shape: [1, 1, 224, 224], datatype: 'FP32', data: i % 2 ? scaled : Array.from(t.data) }] }));
  }
  const bodies = await Promise.all((await Promise.all(reqs)).map((r) => r.json()));
  let maxBatch = 0;
  let scaledOut = null;
  bodies.forEach((b, i) => {
    assert.equal(b.id, `sr-${i}`);
    assert.deepEqual(b.outputs[0].shape, [1, 1, 672, 672]);
    maxBatch = Math.max(maxBatch, b.parameters.batched_requests);
    if (i % 2 === 0) assert.equal(mismatch(b.outputs[0].data, want.data, 1e-3, 1e-4), null);
    else if (scaledOut) assert.equal(mismatch(b.outputs[0].data, scaledOut, 1e-5, 1e-6), null);
    else scaledOut = b.outputs[0].data;
  });
  assert.notEqual(mismatch(scaledOut, want.data, 1e-3, 1e-4), null); // not another request's answer
  assert.ok(maxBatch > 1, `requests were batched (largest batch ${maxBatch})`);
});

test('bad requests are refused with a message', async () => {
  const cases = [
    ['/v2/models/nope/infer', mnistRequest(0), 404, /not served/],
    ['/v2/models/mnist-8/infer', '{"inputs": [', 400, /not a JSON object/],
    ['/v2/models/mnist-8/infer', { inputs: [] }, 400, /missing/],
    ['/v2/models/mnist-8/infer', { inputs: [{ name: 'Input3', shape: [1, 1, 28], datatype: 'FP32', data: [1] }] }, 400, /3 dims/],
    ['/v2/models/mnist-8/infer', { inputs: [{ name: 'Input3', shape: [1, 1, 28, 28], datatype: 'INT64', data: [1] }] }, 400, /INT64/],
    ['/v2/models/mnist-8/infer', { inputs: [{ name: 'Input3', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array(783).fill(1) }] }, 400, /783 data elements/],
    ['/v2/models/mnist-8/infer', { inputs: [{ name: 'Input3', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array(785).fill(1) }] }, 400, /more data elements/],
    ['/v2/models/mnist-8/infer', { inputs: [{ name: 'Input3', shape: [1, 1, 28, 28], datatype: 'FP32', data: [...Array(5).fill(1), 'x', ...Array(778).fill(1)] }] }, 400, /element 5 is not a number/],
    ['/v2/models/mnist-8/infer', { inputs: [{ name: 'Input3', shape: [1, 1, 28, 28], datatype: 'FP32', data: [1, 2] }] }, 400, /could carry/],
    ['/v2/models/mnist-8/infer', { inputs: [{ name: 'X', shape: [1], datatype: 'FP32', data: [1] }] }, 400, /no input 'X'/],
    ['/v2/models/mnist-8/infer', { inputs: [{ name: 'Input3', shape: [1, 1, 1e9, 1e9], datatype: 'FP32', data: [1] }] }, 400, /dim 2|could carry/],
    ['/v2/models/mnist-8/explode', {}, 404, /unknown endpoint/],
  ];
  for (const [p, body, status, re] of cases) {
    const r = await post(p, body);
    assert.equal(r.status, status, `${p} ${JSON.stringify(body).slice(0, 80)}`);
    const j = await r.json();
    assert.match(j.error, re);
  }
  const r = await get('/v1/models');
  assert.equal(r.status, 404); // no GGUF model: only /v2 answers
});

test('/health and /metrics answer on a server of ONNX models only', async () => {
  let r = await get('/health');
  assert.equal(r.status, 200);
  const h = await r.json();
  assert.equal(h.status, 'ok');
  assert.equal(h.loaded_models, 2);
  assert.deepEqual(h.models.map((m) => m.id), ['mnist-8', 'sr']);
  r = await get('/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /text\/plain/);
  const text = await r.text();
  // the requests this test suite made so far are counted, /health's among them
  assert.match(text, /^inferno_requests_total\{route="\/health",status="200"\} 1$/m);
  assert.match(text, /^inferno_requests_total\{route="\/v2\/models\/\{id\}",status="200"\} \d+$/m);
  assert.match(text, /^inferno_requests_in_flight \d+$/m);
});
