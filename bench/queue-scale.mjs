#!/usr/bin/env node
// queue-scale.mjs - one batch on a PostgreSQL queue run by one worker, then by two (issue #21's
// target: two >= 1.7x faster). A throwaway PostgreSQL cluster (tests/server/cluster_harness.mjs),
// an `inferno serve` with its worker off as the API front, and `inferno queue worker` processes
// each pinned to one core with taskset (--threads 1), standing for machines. The batch's owner
// runs it and idle workers help (src/jobs/share.c), so two workers share one batch. Rounds
// alternate 1, 2, 1, 2... so that other load on the machine weighs on both alike; prints each
// round and the ratio of the medians.
//
// usage: node bench/queue-scale.mjs --bin build/release/inferno --gen build/release/tools/gen-synthetic
//        [--shared ../shared] [--requests 64] [--tokens 16] [--reps 3] [--cores 0,1] [--parallel 2]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, arr) => (v.startsWith('--') ? [...a, [v.slice(2), arr[i + 1]]] : a), []));
process.env.INFERNO_BIN = path.resolve(args.bin ?? 'build/release/inferno');
process.env.INFERNO_SHARED = path.resolve(args.shared ?? '../shared');
const { startServer, STORIES, sleep } = await import('../tests/server/harness.mjs');
const { startPostgres } = await import('../tests/server/cluster_harness.mjs');
const N = Number(args.requests ?? 64), TOK = Number(args.tokens ?? 16), REPS = Number(args.reps ?? 3);
const CORES = (args.cores ?? '0,1').split(',');
const PAR = String(args.parallel ?? 2);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferno-queue-scale-'));
const model = path.join(dir, 'syn-scale.gguf');
execFileSync(path.resolve(args.gen ?? 'build/release/tools/gen-synthetic'), ['--arch', 'llama', '--vocab', STORIES, '--out', model,
  '--shape', 'tiny', '--ctx', '4096', '--n-embd', '512', '--n-layer', '8', '--n-ff', '1536', '--n-head', '8', '--n-head-kv', '8'], { stdio: 'pipe' });
const pg = await startPostgres(dir);
const env = { ...process.env, INFERNO_QUEUE_URL: pg.url, INFERNO_FILES_DIR: path.join(dir, 'files') };
const api = await startServer({ model, args: ['--set', 'queue.worker=false'], env });

const line = (r, i) => JSON.stringify({ custom_id: `s${r}-${i}`, method: 'POST', url: '/v1/chat/completions',
  body: { model: 'syn-scale', messages: [{ role: 'user', content: `round ${r} item ${i}: a story` }], max_tokens: TOK, temperature: 0 } });

async function round(r, nWorkers) {
  const fd = new FormData();
  fd.append('purpose', 'batch');
  fd.append('file', new Blob([Array.from({ length: N }, (_, i) => line(r, i)).join('\n') + '\n']), 'b.jsonl');
  const f = await (await fetch(`${api.base}/files`, { method: 'POST', body: fd })).json();
  const t0 = Date.now();
  const ws = CORES.slice(0, nWorkers).map((c) => spawn('taskset', ['-c', c, process.env.INFERNO_BIN, 'queue', 'worker', '-m', model,
    '--parallel', PAR, '--threads', '1'], { env, stdio: ['ignore', 'ignore', 'pipe'] }));
  const logs = ws.map(() => '');
  ws.forEach((w, i) => w.stderr.on('data', (d) => { logs[i] += d; }));
  const b0 = await (await fetch(`${api.base}/batches`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h' }) })).json();
  let b;
  for (;;) {
    b = await (await fetch(`${api.base}/batches/${b0.id}`)).json();
    if (['completed', 'failed', 'cancelled', 'expired'].includes(b.status)) break;
    await sleep(50);
  }
  const s = (Date.now() - t0) / 1000;
  // CPU seconds each worker used (utime + stime from /proc): shows whether the cores were ours
  const tck = 100;
  const cpu = ws.map((w) => { try { const f = fs.readFileSync(`/proc/${w.pid}/stat`, 'utf8'); const v = f.slice(f.lastIndexOf(')') + 2).split(' '); return (Number(v[11]) + Number(v[12])) / tck; } catch { return NaN; } });
  for (const w of ws) w.kill('SIGTERM');
  await Promise.all(ws.map((w) => new Promise((res) => (w.exitCode !== null ? res() : w.once('exit', res)))));
  if (b.status !== 'completed' || b.request_counts.completed !== N) throw new Error(JSON.stringify(b));
  console.log(`round ${r}: ${nWorkers} worker(s): ${N} requests in ${s.toFixed(2)} s; CPU s per worker ${cpu.map((c) => c.toFixed(1)).join(' + ')}`);
  if (args.verbose) logs.forEach((l, i) => console.log(`--- worker ${i}\n${l.slice(-3000)}`));
  return { s, cpuMax: Math.max(...cpu), cpuSum: cpu.reduce((a, b) => a + b, 0) };
}

const one = [], two = [];
try {
  for (let r = 0; r < REPS; r++) {
    one.push(await round(2 * r, 1));
    two.push(await round(2 * r + 1, 2));
  }
} finally {
  await api.stop();
  pg.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
const med = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const w1 = med(one.map((x) => x.s)), w2 = med(two.map((x) => x.s));
console.log(`median wall time: one worker ${w1.toFixed(2)} s, two workers ${w2.toFixed(2)} s: ` +
  `${(w1 / w2).toFixed(2)}x (cores ${CORES.join(',')}, --parallel ${PAR}, ${os.cpus()[0].model})`);
// On a machine whose cores are shared with other work the wall time measures the share we got;
// with each worker alone on its core, a CPU-bound batch takes as long as its busiest worker's
// CPU time: that ratio is printed too, labelled as what it is.
const c1 = med(one.map((x) => x.cpuMax)), c2 = med(two.map((x) => x.cpuMax));
console.log(`median CPU time of the busiest worker: one ${c1.toFixed(2)} s, two ${c2.toFixed(2)} s: ${(c1 / c2).toFixed(2)}x ` +
  `(total CPU: one ${med(one.map((x) => x.cpuSum)).toFixed(2)} s, two ${med(two.map((x) => x.cpuSum)).toFixed(2)} s)`);
