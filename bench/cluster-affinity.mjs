#!/usr/bin/env node
// cluster-affinity.mjs - least connections or affinity by X-Session-Id for live traffic behind
// nginx (docs/deploy.md): two replicas and nginx on tests/cluster/nginx.conf.in, multi-turn
// conversations (each turn re-sends the history) through each front in alternation, measuring
// time to first token, wall time and how many prompt tokens the replicas found in their KV
// cache (inferno_cached_prompt_tokens_total).
//
// usage: node bench/cluster-affinity.mjs --bin build/release/inferno --gen build/release/tools/gen-synthetic
//        [--shared ../shared] [--sessions 8] [--turns 4] [--reps 3] [--model FILE.gguf]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, arr) => (v.startsWith('--') ? [...a, [v.slice(2), arr[i + 1]]] : a), []));
process.env.INFERNO_BIN = path.resolve(args.bin ?? 'build/release/inferno');
process.env.INFERNO_SHARED = path.resolve(args.shared ?? '../shared');
const { startServer, STORIES } = await import('../tests/server/harness.mjs');
const { startNginx } = await import('../tests/server/cluster_harness.mjs');
const S = Number(args.sessions ?? 8), T = Number(args.turns ?? 4), REPS = Number(args.reps ?? 3);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferno-affinity-'));
let model = args.model;
if (!model) {
  model = path.join(dir, 'syn-slow.gguf');
  execFileSync(path.resolve(args.gen ?? 'build/release/tools/gen-synthetic'), ['--arch', 'llama', '--vocab', STORIES, '--out', model,
    '--shape', 'tiny', '--ctx', '8192', '--n-embd', '512', '--n-layer', '8', '--n-ff', '1536', '--n-head', '8', '--n-head-kv', '8'], { stdio: 'pipe' });
}
const id = path.basename(model, '.gguf');
const R = [];
for (let i = 0; i < 2; i++) R.push(await startServer({ model, args: ['--parallel', '4', '--ctx', '16384'] }));
const ngx = await startNginx(dir, R.map((r) => Number(new URL(r.url).port)));

async function metric(name) {
  let n = 0;
  for (const r of R) {
    for (const line of (await (await fetch(`${r.url}/metrics`)).text()).split('\n'))
      if (line.startsWith(name + '{') || line.startsWith(name + ' ')) n += Number(line.split(' ').pop());
  }
  return n;
}

const words = 'the a little cat dog bird ran jumped over under happy sad big small tree house river sun moon'.split(' ');
const filler = (seed, n) => Array.from({ length: n }, (_, i) => words[(seed * 7 + i * 13) % words.length]).join(' ');

async function turn(front, session, messages) {
  const t0 = performance.now();
  const res = await fetch(`${front}/v1/chat/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Session-Id': session },
    body: JSON.stringify({ model: id, messages, max_tokens: 16, temperature: 0, stream: true }),
  });
  const dec = new TextDecoder();
  let ttft = null, buf = '', text = '';
  for await (const chunk of res.body) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i); buf = buf.slice(i + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const c = JSON.parse(ev.slice(6)).choices?.[0]?.delta?.content;
      if (c) { if (ttft === null) ttft = performance.now() - t0; text += c; }
    }
  }
  return { ttft: ttft ?? performance.now() - t0, text };
}

async function run(front, tag) {
  const c0 = await metric('inferno_cached_prompt_tokens_total'), p0 = await metric('inferno_prompt_tokens_total');
  const convs = Array.from({ length: S }, (_, s) => [{ role: 'system', content: `${tag} session ${s}: ${filler(s, 120)}` }]);
  const ttfts = [];
  const t0 = performance.now();
  for (let t = 0; t < T; t++) {
    const out = await Promise.all(convs.map((m, s) => {
      m.push({ role: 'user', content: `turn ${t}: ${filler(s + t, 40)}` });
      return turn(front, `${tag}-${s}`, m);
    }));
    out.forEach((o, s) => { convs[s].push({ role: 'assistant', content: o.text }); if (t > 0) ttfts.push(o.ttft); });
  }
  const wall = performance.now() - t0;
  const cached = (await metric('inferno_cached_prompt_tokens_total')) - c0, computed = (await metric('inferno_prompt_tokens_total')) - p0;
  ttfts.sort((a, b) => a - b);
  return { wall, ttft50: ttfts[Math.floor(ttfts.length / 2)], ttft90: ttfts[Math.floor(ttfts.length * 0.9)], reuse: cached / (cached + computed) };
}

const res = { least_conn: [], affinity: [] };
for (let r = 0; r < REPS; r++) {
  for (const [mode, front] of r % 2 ? [['affinity', ngx.urlAff], ['least_conn', ngx.url]] : [['least_conn', ngx.url], ['affinity', ngx.urlAff]])
    res[mode].push(await run(front, `${mode}-${r}`));
}
const med = (a, k) => a.map((x) => x[k]).sort((x, y) => x - y)[Math.floor(a.length / 2)];
const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1];
console.log(`CPU ${cpu}, ${os.cpus().length} CPUs; 2 replicas (4 slots each) of ${id}; ${S} sessions x ${T} turns, ${REPS} alternating reps, medians`);
console.log('| front | wall s | TTFT p50 ms (turns 2+) | TTFT p90 ms | prompt tokens from the KV cache |');
console.log('|---|---:|---:|---:|---:|');
for (const [mode, a] of Object.entries(res))
  console.log(`| ${mode} | ${(med(a, 'wall') / 1000).toFixed(2)} | ${med(a, 'ttft50').toFixed(0)} | ${med(a, 'ttft90').toFixed(0)} | ${(100 * med(a, 'reuse')).toFixed(1)} % |`);
ngx.proc.kill('SIGQUIT');
for (const r of R) await r.stop();
fs.rmSync(dir, { recursive: true, force: true });
