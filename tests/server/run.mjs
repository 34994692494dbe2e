// run.mjs - CTest entry point: node run.mjs --bin INFERNO --shared DIR [--gen GEN-SYNTHETIC]
//           [--slow N] FILE.test.mjs...
// Exits 77 (skip) when ../shared's test model or node_modules (npm ci --prefix tests/server) is
// absent; otherwise runs the files with node's test runner, one file at a time.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

const args = process.argv.slice(2);
const env = { ...process.env };
const files = [];
const nodeArgs = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--bin') env.INFERNO_BIN = args[++i];
  else if (a === '--shared') env.INFERNO_SHARED = args[++i];
  else if (a === '--gen') env.INFERNO_GEN = args[++i];
  else if (a === '--slow') env.INFERNO_TEST_SLOW = args[++i];
  else if (a.startsWith('--test-')) nodeArgs.push(a); // e.g. --test-name-pattern=REGEX
  else files.push(path.resolve(HERE, a));
}
const model = path.join(env.INFERNO_SHARED || '', 'testdata/models/stories260K.gguf');
if (!env.INFERNO_SHARED || !fs.existsSync(model)) {
  console.log(`SKIP: ${model} not found`);
  process.exit(77);
}
const deps = Object.keys(JSON.parse(fs.readFileSync(path.join(HERE, 'package.json'), 'utf8')).dependencies);
const missing = deps.filter((d) => !fs.existsSync(path.join(HERE, `node_modules/${d}/package.json`)));
if (missing.length) {
  console.log(`SKIP: tests/server/node_modules lacks ${missing.join(', ')} (run: npm ci --prefix tests/server)`);
  process.exit(77);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...nodeArgs, ...files], {
  env, stdio: 'inherit', cwd: HERE,
});
process.exit(r.status ?? 1);
