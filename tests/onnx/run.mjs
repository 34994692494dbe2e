// run.mjs - CTest entry point for the ONNX tests that need Node:
//   node run.mjs --bin INFERNO --shared DIR FILE.test.mjs...
// Exits 77 (skip) when ../shared's ONNX data or node_modules (npm ci --prefix tests/onnx, with
// ONNXRUNTIME_NODE_INSTALL=skip) is absent; otherwise runs the files with node's test runner.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const env = { ...process.env };
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--bin') env.INFERNO_BIN = args[++i];
  else if (args[i] === '--shared') env.INFERNO_SHARED = args[++i];
  else files.push(path.resolve(HERE, args[i]));
}
const data = path.join(env.INFERNO_SHARED || '', 'testdata/onnx-node');
if (!env.INFERNO_SHARED || !fs.existsSync(data)) {
  console.log(`SKIP: ${data} not found`);
  process.exit(77);
}
if (!fs.existsSync(path.join(HERE, 'node_modules/onnxruntime-node/package.json'))) {
  console.log('SKIP: tests/onnx/node_modules lacks onnxruntime-node '
    + '(run: ONNXRUNTIME_NODE_INSTALL=skip npm ci --prefix tests/onnx)');
  process.exit(77);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
  env, stdio: 'inherit', cwd: HERE,
});
process.exit(r.status ?? 1);
