// harness.mjs - start the real `inferno serve` on a free loopback port, wait until it is ready,
// and stop it at the end. Shared by the *.test.mjs suites.
//
// Environment (set by run.mjs / CTest):
//   INFERNO_BIN        the inferno binary
//   INFERNO_SHARED     the shared data directory (../shared), for testdata/models/stories260K.gguf
//   INFERNO_GEN        tools/gen-synthetic (for the larger synthetic test model)
//   INFERNO_TEST_SLOW  factor for waits (the ASan build sets 4)
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export const SLOW = Number(process.env.INFERNO_TEST_SLOW || 1);
export const BIN = process.env.INFERNO_BIN;
export const SHARED = process.env.INFERNO_SHARED || path.resolve(HERE, '../../../shared');
export const STORIES = path.join(SHARED, 'testdata/models/stories260K.gguf');

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

// Start `inferno serve -m MODEL --port 0 ...args`. Resolves { url, base, proc, log(), stop() }.
export async function startServer({ model = STORIES, args = [], env = {}, readyMs = 60000 } = {}) {
  if (!BIN) throw new Error('INFERNO_BIN is not set');
  // the jobs store (Files and Batch API) of each server in a temp dir of its own, never the
  // user's; a suite that restarts a server on the same store passes INFERNO_QUEUE_URL itself
  const jobsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferno-serve-jobs-'));
  process.on('exit', () => fs.rmSync(jobsDir, { recursive: true, force: true }));
  const jobsEnv = { INFERNO_QUEUE_URL: `sqlite:${jobsDir}/queue.db`, INFERNO_FILES_DIR: `${jobsDir}/files` };
  const proc = spawn(BIN, ['serve', '-m', model, '--host', '127.0.0.1', '--port', '0', ...args], {
    env: { ...process.env, ...jobsEnv, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  let stderr = '';
  let stdout = '';
  proc.stderr.on('data', (d) => { stderr += d; if (stderr.length > 1 << 20) stderr = stderr.slice(-(1 << 19)); });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server not ready after ${readyMs * SLOW} ms\n${stderr}`)), readyMs * SLOW);
    proc.stdout.on('data', (d) => {
      stdout += d;
      const m = stdout.match(/listening on (https?):\/\/(.+):(\d+)\s*$/m);
      if (m) { clearTimeout(timer); resolve(`${m[1]}://${m[2]}:${m[3]}`); }
    });
    proc.on('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`server exited (${code ?? sig}) before ready\n${stderr}`)); });
  });
  const srv = {
    url,
    base: `${url}/v1`,
    proc,
    log: () => stderr,
    exited: null,
    async stop(signal = 'SIGTERM', waitMs = 30000) {
      if (proc.exitCode !== null || proc.signalCode !== null) { live.delete(proc); return proc.exitCode; }
      const done = new Promise((resolve) => proc.once('exit', (code, sig) => resolve(code ?? sig)));
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), waitMs * SLOW);
      const code = await done;
      clearTimeout(t);
      live.delete(proc);
      if (code !== 0) process.stderr.write(`--- inferno serve exited with ${code}; last log lines:\n${stderr.slice(-4000)}\n`);
      return code;
    },
  };
  // /health must answer ok before the tests start (the ready line should already mean that)
  if (url.startsWith('http:')) { // (https: the caller's client needs the test CA)
    const h = await fetch(`${url}/health`);
    if (h.status !== 200) throw new Error(`/health answered ${h.status} after the ready line`);
  }
  return srv;
}

// A synthetic random-weight model (gen-synthetic, tiny shape, stories260K's vocabulary), made once
// per test run in a temp dir; null when gen-synthetic is not available. template: a chat template
// file to give it (tokenizer.chat_template), name: its file stem (the model id).
export function syntheticModel({ ctx = 4096, template = null, name = 'syn-tiny' } = {}) {
  const gen = process.env.INFERNO_GEN;
  if (!gen || !fs.existsSync(gen)) return null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferno-serve-test-'));
  const out = path.join(dir, `${name}.gguf`);
  const extra = template ? ['--chat-template', template] : [];
  execFileSync(gen, ['--arch', 'llama', '--vocab', STORIES, '--out', out, '--shape', 'tiny', '--ctx', String(ctx), ...extra], { stdio: 'pipe' });
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return out;
}

export async function postJSON(url, body, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json };
}

// POST a streaming chat (usage included) to BASE/chat/completions; asserts 200, gives the response.
export async function postChatStream(base, body) {
  const res = await fetch(`${base}/chat/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
  });
  assert.equal(res.status, 200);
  return res;
}

// The SSE events of a response body as they arrive: yields each raw event (the text between
// blank lines).
export async function* sseBlocks(body) {
  const dec = new TextDecoder();
  let buf = '';
  for await (const chunk of body) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 2);
    }
  }
}

// Read a streaming response's raw SSE events: [{ event, data }] in order, and the raw text.
export async function readSSE(res) {
  const raw = await res.text();
  const events = [];
  for (const block of raw.split('\n\n')) {
    if (!block.trim()) continue;
    const ev = { event: 'message', data: '' };
    const datas = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'data') datas.push(value);
      else if (field === 'event') ev.event = value;
    }
    ev.data = datas.join('\n');
    events.push(ev);
  }
  return { raw, events };
}

// Assert the OpenAI error shape: {"error":{"message","type","param","code"}}.
export function isErrorObject(json) {
  return !!(json && typeof json === 'object' && json.error && typeof json.error === 'object' &&
    typeof json.error.message === 'string' && json.error.message.length > 0 &&
    typeof json.error.type === 'string' && 'param' in json.error && 'code' in json.error);
}

// Prometheus text exposition: returns Map "name{labels}" -> value; throws on a malformed line.
export function parseMetrics(text) {
  const out = new Map();
  const types = new Map();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = line.match(/^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/);
      if (!m) throw new Error(`bad metrics comment: ${line}`);
      if (m[1] === 'TYPE') {
        if (!/^(counter|gauge|histogram|summary|untyped)$/.test(m[3])) throw new Error(`bad TYPE: ${line}`);
        types.set(m[2], m[3]);
      }
      continue;
    }
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? ([-+]?(?:[0-9.]+(?:[eE][-+]?[0-9]+)?|Inf|NaN))$/);
    if (!m) throw new Error(`bad metrics line: ${line}`);
    out.set(m[1] + (m[2] || ''), Number(m[3].replace('Inf', 'Infinity')));
  }
  out.types = types;
  return out;
}

// Sum of every sample of a metric (over all label sets).
export function metricSum(map, name) {
  let s = 0;
  for (const [k, v] of map) if (k === name || k.startsWith(name + '{')) s += v;
  return s;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
