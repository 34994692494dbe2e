#!/usr/bin/env node
// cache-audit-bench.mjs - issue #19's figures for `inferno serve`:
//   1. the HTTP latency of a response-cache hit for a 1000-token completion (p50/p99, JSON and
//      SSE), measured from the client over keep-alive connections;
//   2. aggregate generation tok/s at C concurrent clients with the audit log off, with
//      audit.fsync = batch and (optionally) always: the audit log's overhead.
// Each configuration starts its own server on a free port with a fresh cache/audit directory.
//
//   node bench/cache-audit-bench.mjs --bin build/release/inferno --model M.gguf
//        [--hits 300] [--clients 8] [--requests 6] [--max-tokens 64] [--rounds 2] [--always]
//
// The model should have a context of at least 1100 tokens per slot (gen-synthetic --ctx 4096).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((a, x, i, all) => {
  if (x.startsWith('--')) a.push([x.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
  return a;
}, []));
const BIN = args.bin || 'build/release/inferno';
const MODEL = args.model;
if (!MODEL) { console.error('--model is required'); process.exit(2); }
const HITS = Number(args.hits || 300);
const C = Number(args.clients || 8);
const R = Number(args.requests || 6);
const MAXT = Number(args['max-tokens'] || 64);
const ROUNDS = Number(args.rounds || 2);

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function post(port, pathName, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: '127.0.0.1', port, path: pathName, method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString(),
        ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function start(extra) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferno-cab-'));
  const proc = spawn(BIN, ['serve', '-m', MODEL, '--host', '127.0.0.1', '--port', '0', '--parallel', String(C),
    '--ctx', String(Math.max(4096, C * 1200)), '--set', `cache.dir=${dir}/cache`, '--set', `audit.dir=${dir}/audit`,
    '--log-level', 'warn', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => { out += d; const m = out.match(/listening on http:\/\/.+:(\d+)/); if (m) resolve(Number(m[1])); });
    proc.on('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  return { port, pid: proc.pid, dir, async stop() { proc.kill('SIGTERM'); await new Promise((r) => proc.once('exit', r)); fs.rmSync(dir, { recursive: true, force: true }); } };
}

// CPU seconds the server process has used (user + system), from /proc (Linux)
function cpuSeconds(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100; // utime, stime in ticks (USER_HZ 100)
  } catch { return NaN; }
}

const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };

async function hitLatency() {
  // the audit log (fsync never) gives the server's own time per request: latency_ms is taken
  // just before the response is queued
  const srv = await start(['--cache', '--audit', '--set', 'audit.fsync=never']);
  const body = { prompt: 'Once upon a time', max_tokens: 1000, temperature: 0, ignore_eos: true };
  const miss = await post(srv.port, '/v1/completions', body);
  const usage = JSON.parse(miss.text).usage;
  const out = { completion_tokens: usage.completion_tokens, miss_ms: miss.ms, response_bytes: miss.text.length };
  for (const stream of [false, true]) {
    const b = { ...body, stream };
    const t = [];
    for (let i = 0; i < 20; i++) await post(srv.port, '/v1/completions', b); // warm
    for (let i = 0; i < HITS; i++) {
      const r = await post(srv.port, '/v1/completions', b);
      if (r.headers['x-inferno-cache'] !== 'hit') throw new Error(`expected a hit, got ${r.headers['x-inferno-cache']}`);
      t.push(r.ms);
    }
    out[stream ? 'sse' : 'json'] = { p50_ms: pct(t, 0.5), p99_ms: pct(t, 0.99), max_ms: Math.max(...t), bytes: (await post(srv.port, '/v1/completions', b)).text.length };
  }
  const recs = execFileSync(BIN, ['audit', 'query', '--json', '--route', '/v1/completions', '--set', `audit.dir=${srv.dir}/audit`], { encoding: 'utf8' })
    .trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.cache === 'hit');
  for (const stream of [false, true]) {
    const server = recs.filter((r) => !!(r.params && r.params.stream) === stream).map((r) => r.latency_ms);
    out[stream ? 'sse' : 'json'].server_p50_ms = pct(server, 0.5);
    out[stream ? 'sse' : 'json'].server_p99_ms = pct(server, 0.99);
  }
  await srv.stop();
  return out;
}

async function throughput(extra) {
  const srv = await start(extra);
  // warm-up: one request per client
  await Promise.all(Array.from({ length: C }, (_, c) => post(srv.port, '/v1/completions', { prompt: `warm ${c}`, max_tokens: 8, temperature: 0.8 })));
  let tokens = 0;
  const cpu0 = cpuSeconds(srv.pid);
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: C }, async (_, c) => {
    for (let i = 0; i < R; i++) {
      const r = await post(srv.port, '/v1/completions', { prompt: `Client ${c} request ${i}: once upon a time`, max_tokens: MAXT, temperature: 0.8, ignore_eos: true });
      if (r.status !== 200) throw new Error(r.text);
      tokens += JSON.parse(r.text).usage.completion_tokens;
    }
  }));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuSeconds(srv.pid) - cpu0;
  await srv.stop();
  return { tok_s: tokens / s, cpu_ms_per_token: (1000 * cpu) / tokens };
}

const result = { cpu: os.cpus()[0]?.model, clients: C };
result.hit = await hitLatency();
const configs = [['off', []], ['batch', ['--audit', '--set', 'audit.fsync=batch']]];
if (args.always) configs.push(['always', ['--audit', '--set', 'audit.fsync=always']]);
result.tok_s = {};
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, extra] of configs) {
    (result.tok_s[name] ||= []).push(await throughput(extra));
  }
}
const median = (a) => pct(a, 0.5);
for (const [name] of configs) {
  const v = result.tok_s[name];
  result.tok_s[name] = {
    runs: v.map((x) => Math.round(x.tok_s * 10) / 10),
    median: median(v.map((x) => x.tok_s)),
    cpu_ms_per_token: v.map((x) => Math.round(x.cpu_ms_per_token * 1000) / 1000),
    cpu_median: median(v.map((x) => x.cpu_ms_per_token)),
  };
}
result.audit_overhead_pct = {};
for (const [name] of configs.slice(1)) {
  result.audit_overhead_pct[name] = {
    tok_s: 100 * (1 - result.tok_s[name].median / result.tok_s.off.median),
    cpu_per_token: 100 * (result.tok_s[name].cpu_median / result.tok_s.off.cpu_median - 1),
  };
}
console.log(JSON.stringify(result, null, 2));
agent.destroy();
