// bench.mjs - onnxruntime-node's time on a model, as `inferno onnx bench` measures ours: one
// warm-up run, then REPS timed runs on random inputs of the declared shapes (symbolic dims 1).
// Usage: node bench.mjs MODEL.onnx THREADS REPS  -> one JSON line {median_ms, min_ms, ...}
import ort from 'onnxruntime-node';

const [model, threadsArg, repsArg] = process.argv.slice(2);
const threads = Number(threadsArg || 1), reps = Number(repsArg || 10);
const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
  executionMode: 'sequential',
});
const feeds = {};
for (const name of session.inputNames) {
  const meta = session.inputMetadata.find((m) => m.name === name);
  const dims = (meta && meta.shape ? meta.shape : [1]).map((d) => (typeof d === 'number' && d > 0 ? d : 1));
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.random();
  feeds[name] = new ort.Tensor('float32', data, dims);
}
await session.run(feeds);
const times = [];
for (let r = 0; r < reps; r++) {
  const t0 = process.hrtime.bigint();
  await session.run(feeds);
  times.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
times.sort((a, b) => a - b);
const median = reps % 2 ? times[(reps - 1) / 2] : (times[reps / 2 - 1] + times[reps / 2]) / 2;
console.log(JSON.stringify({ runtime: 'onnxruntime-node ' + ort.env.versions.common, threads, reps,
  median_ms: median, min_ms: times[0] }));
