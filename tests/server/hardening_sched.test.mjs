// hardening_sched.test.mjs - issue #14, the engine side of availability:
//   8. an embeddings request is processed in chunks between generation steps: a running stream
//      keeps getting tokens (the longest gap between its tokens is printed and bounded);
//   9. a request naming a broken model leaves the loaded model loaded and /health ok; two models
//      used in turn both stay loaded when server.max_loaded_models allows (said in /health);
//  10. a request with more choices than the queue can ever hold is a 400 naming the limit; the
//      queue counts waiting requests, so one request's choices do not push others into 503;
//  11. a model swap while the loaded model is busy is a 503 with Retry-After.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, syntheticModel, postJSON, sseBlocks, STORIES, SLOW, sleep } from './harness.mjs';

// Start a stream of generated text; resolves once its first token arrived, with
// { stamps (arrival time of each chunk with text), done (promise), abort() }.
async function startStream(url, body) {
  const ac = new AbortController();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, signal: ac.signal,
    body: JSON.stringify({ ...body, stream: true }),
  });
  assert.equal(res.status, 200);
  const stamps = [];
  let first;
  const gotFirst = new Promise((resolve) => { first = resolve; });
  const done = (async () => {
    try {
      for await (const ev of sseBlocks(res.body)) {
        if (ev.includes('"text"')) { stamps.push(performance.now()); first(); }
      }
    } catch { /* aborted */ }
    first();
  })();
  await gotFirst;
  return { stamps, done, abort: () => ac.abort() };
}

// n words of varied text (deterministic), for big embedding inputs
function words(n, seed) {
  const w = ['the', 'little', 'girl', 'saw', 'a', 'big', 'tree', 'in', 'garden', 'and', 'her',
    'mom', 'said', 'that', 'sun', 'was', 'hot', 'so', 'they', 'went', 'to', 'park', 'with', 'dog'];
  const out = [];
  let x = seed * 7919 + 17;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push(w[x % w.length]);
  }
  return out.join(' ');
}

describe('item 8: embeddings are interleaved with generation', () => {
  let srv;
  let model;
  before(async () => {
    model = syntheticModel({ ctx: 4096 });
    if (!model) return;
    srv = await startServer({ model, args: ['--parallel', '2', '--ctx', '8192', '--batch', '64', '--threads', '1'] });
  });
  after(async () => { if (srv) assert.equal(await srv.stop(), 0); });

  test('a stream keeps getting tokens while 8 inputs of 700 words are embedded', async (t) => {
    if (!srv) return t.skip('gen-synthetic not available');
    const s = await startStream(srv.url, { prompt: 'Once upon a time', max_tokens: 3500, ignore_eos: true, temperature: 0 });
    // (the sanitizer build, SLOW times slower, embeds a SLOW-th of it)
    const input = Array.from({ length: 8 }, (_, i) => words(Math.round(700 / SLOW), i + 1));
    const t0 = performance.now();
    const r = await postJSON(`${srv.base}/embeddings`, { input, encoding_format: 'float' });
    const t1 = performance.now();
    const during = s.stamps.filter((x) => x >= t0 && x <= t1).length;
    // the longest gap between two tokens that falls (at least partly) inside the request
    let gap = 0;
    for (let i = 1; i < s.stamps.length; i++)
      if (s.stamps[i] >= t0 && s.stamps[i - 1] <= t1) gap = Math.max(gap, s.stamps[i] - s.stamps[i - 1]);
    if (s.stamps.length && s.stamps[s.stamps.length - 1] < t1) gap = Math.max(gap, t1 - Math.max(t0, s.stamps[s.stamps.length - 1]));
    s.abort();
    await s.done;
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.data.length, 8);
    const tokens = r.json.usage.prompt_tokens;
    console.log(`# embeddings of ${tokens} tokens took ${(t1 - t0).toFixed(0)} ms; the stream got ${during} tokens meanwhile; longest gap ${gap.toFixed(1)} ms`);
    assert.ok(tokens > 4000 / SLOW, `${tokens} prompt tokens`);
    // a gap of a quarter of the whole request: one chunk of 64 tokens is ~1/70 of it
    assert.ok(gap < (t1 - t0) / 4 + 50 * SLOW, `longest gap ${gap.toFixed(0)} ms of ${(t1 - t0).toFixed(0)} ms`);
    assert.ok(during >= 10, `${during} tokens during the embeddings request`);
    // the chunked embeddings equal the same inputs embedded alone
    const one = await postJSON(`${srv.base}/embeddings`, { input: input[3], encoding_format: 'float' });
    assert.equal(one.status, 200);
    const d = one.json.data[0].embedding.map((x, i) => Math.abs(x - r.json.data[3].embedding[i]));
    assert.ok(Math.max(...d) < 1e-4, `max difference ${Math.max(...d)}`);
  });
});

function modelsDir(names) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferno-sched-test-'));
  for (const n of names) fs.copyFileSync(STORIES, path.join(dir, `${n}.gguf`));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const health = async (srv) => {
  const h = await fetch(`${srv.url}/health`);
  return { status: h.status, json: await h.json() };
};
const loads = (srv, id) => (srv.log().match(new RegExp(`model '${id}' loaded in`, 'g')) || []).length;
const complete = (srv, model) => postJSON(`${srv.base}/completions`, { model, prompt: 'Once upon a time', max_tokens: 4, temperature: 0 });

describe('item 9: a failed load changes nothing; models used in turn stay loaded', () => {
  let srv;
  let brokenPath;
  before(async () => {
    const dir = modelsDir(['alpha', 'beta', 'broken']);
    srv = await startServer({ model: path.join(dir, 'alpha.gguf'), args: ['--models-dir', dir, '--log-level', 'info'] });
    // listed at start-up, then cut short (a copy that did not finish): its load fails
    brokenPath = path.join(dir, 'broken.gguf');
    fs.truncateSync(brokenPath, fs.statSync(STORIES).size >> 1);
  });
  after(async () => { if (srv) assert.equal(await srv.stop(), 0); });

  test('a request for a broken model leaves the loaded one loaded and /health ok', async () => {
    assert.equal((await complete(srv, 'alpha')).status, 200);
    const r = await complete(srv, 'broken');
    assert.equal(r.status, 500, r.text);
    assert.match(r.json.error.message, /broken/);
    const h = await health(srv);
    assert.equal(h.status, 200, JSON.stringify(h.json));
    assert.equal(h.json.status, 'ok');
    assert.deepEqual(h.json.models.map((m) => m.id), ['alpha']);
    assert.equal((await complete(srv, 'alpha')).status, 200);
    assert.equal(loads(srv, 'alpha'), 1, 'alpha was loaded once');
  });

  test('alternating between two models loads each once (max_loaded_models allows both)', async () => {
    for (let i = 0; i < 3; i++) {
      assert.equal((await complete(srv, 'beta')).status, 200);
      assert.equal((await complete(srv, 'alpha')).status, 200);
    }
    assert.equal(loads(srv, 'alpha'), 1);
    assert.equal(loads(srv, 'beta'), 1);
    const h = await health(srv);
    assert.equal(h.status, 200);
    assert.deepEqual(h.json.models.map((m) => m.id).sort(), ['alpha', 'beta']);
    assert.ok(h.json.max_loaded_models >= 2, JSON.stringify(h.json));
    assert.equal(h.json.loaded_models, 2);
  });

  test('a broken file is not loaded again until it changes; then it is', async () => {
    const failures = () => (srv.log().match(/loading the model 'broken' failed/g) || []).length;
    const before = failures();
    for (let i = 0; i < 3; i++) {
      const r = await complete(srv, 'broken');
      assert.equal(r.status, 500, r.text);
      assert.match(r.json.error.message, /broken/, 'the remembered error names the file');
    }
    assert.equal(failures(), before, 'the unchanged file was not loaded again');
    // repaired (a complete copy): the next request loads it
    fs.copyFileSync(STORIES, brokenPath);
    const ok = await complete(srv, 'broken');
    assert.equal(ok.status, 200, ok.text);
    assert.equal(loads(srv, 'broken'), 1);
  });
});

describe('items 10 and 11: admission and a busy model swap (--parallel 1 --queue-size 2, one model loaded)', () => {
  let srv;
  before(async () => {
    const dir = modelsDir(['alpha', 'beta']);
    srv = await startServer({
      model: path.join(dir, 'alpha.gguf'),
      args: ['--models-dir', dir, '--parallel', '1', '--queue-size', '2', '--set', 'server.max_loaded_models=1'],
    });
  });
  after(async () => { if (srv) assert.equal(await srv.stop(), 0); });

  test('on an idle server with a queue, any number of choices waits as one request', async () => {
    const ok = await postJSON(`${srv.base}/completions`, { prompt: ['a', 'b'], n: 3, max_tokens: 2 });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.choices.length, 6);
    const oke = await postJSON(`${srv.base}/embeddings`, { input: ['a', 'b', 'c', 'd', 'e'] });
    assert.equal(oke.status, 200, oke.text);
    assert.equal(oke.json.data.length, 5);
  });

  test("a request's own choices do not push another client into 503", async () => {
    const s = await startStream(srv.url, { model: 'alpha', prompt: 'Once upon a time', max_tokens: 200000, ignore_eos: true });
    // two choices wait for the slot: one waiting request
    const big = postJSON(`${srv.base}/completions`, { model: 'alpha', prompt: 'Once', n: 2, max_tokens: 2 });
    await sleep(200 * SLOW);
    const other = postJSON(`${srv.base}/completions`, { model: 'alpha', prompt: 'The sun', max_tokens: 2 });
    await sleep(200 * SLOW);
    s.abort();
    await s.done;
    const [b, o] = await Promise.all([big, other]);
    assert.equal(b.status, 200, b.text);
    assert.equal(o.status, 200, o.text);
  });

  test('a model swap while the loaded model is busy: 503 with Retry-After', async () => {
    const s = await startStream(srv.url, { model: 'alpha', prompt: 'Once upon a time', max_tokens: 200000, ignore_eos: true });
    const r = await complete(srv, 'beta');
    s.abort();
    await s.done;
    assert.equal(r.status, 503, r.text);
    assert.ok(Number(r.headers.get('retry-after')) >= 1, `Retry-After: ${r.headers.get('retry-after')}`);
    assert.match(r.json.error.message, /busy/);
    // once alpha is idle the swap works
    let ok;
    for (let i = 0; i < 50; i++) {
      ok = await complete(srv, 'beta');
      if (ok.status !== 503) break;
      await sleep(100);
    }
    assert.equal(ok.status, 200, ok.text);
  });
});

describe('item 10 without a queue (--parallel 2 --queue-size 0): more choices than slots is a 400', () => {
  let srv;
  before(async () => {
    srv = await startServer({ args: ['--parallel', '2', '--queue-size', '0'] });
  });
  after(async () => { if (srv) assert.equal(await srv.stop(), 0); });

  test('more choices than the server can ever hold: 400 naming the limit, on an idle server', async () => {
    for (const [route, body] of [
      ['completions', { prompt: ['a', 'b'], n: 2, max_tokens: 2 }],
      ['completions', { prompt: 'Once', n: 3, max_tokens: 2 }],
      ['embeddings', { input: ['a', 'b', 'c'] }],
    ]) {
      const r = await postJSON(`${srv.base}/${route}`, { model: 'stories260K', ...body });
      assert.equal(r.status, 400, `${route} ${JSON.stringify(body)}: ${r.status} ${r.text}`);
      assert.equal(r.headers.get('retry-after'), null);
      assert.match(r.json.error.message, /at most 2 /, r.json.error.message);
      assert.match(r.json.error.message, /queue_size/);
    }
    // the limit itself is fine
    const ok = await postJSON(`${srv.base}/completions`, { model: 'stories260K', prompt: 'Once', n: 2, max_tokens: 2 });
    assert.equal(ok.status, 200, ok.text);
    const oke = await postJSON(`${srv.base}/embeddings`, { model: 'stories260K', input: ['a', 'b'] });
    assert.equal(oke.status, 200, oke.text);
  });
});
