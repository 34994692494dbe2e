// invariance.test.mjs - issue #16 item 3 at the HTTP level: a temperature-0 /v1/completions
// request gives byte-identical text alone, among 24 concurrent requests of other lengths, and
// again once a slot's cache holds its prompt (backend.deterministic = auto, the default, makes
// the passes that carry temperature-0 requests batch-invariant; docs/performance.md).
//
// The model: tools/gen-synthetic (tiny llama shape, stories260K's vocabulary) quantized to Q4_0
// by `inferno quantize`, whose batched kernels (16-row panels from 8 tokens on) sum in another
// order than the matrix-vector one: without batch invariance a greedy request's text changes
// with the number of requests beside it.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, syntheticModel, postJSON, BIN } from './harness.mjs';

let model;
before(() => {
  const f32 = syntheticModel({ ctx: 4096 });
  if (!f32) return;
  model = path.join(path.dirname(f32), 'syn-tiny-q4_0.gguf');
  execFileSync(BIN, ['quantize', f32, model, '--type', 'Q4_0'], { stdio: 'pipe' });
  assert.ok(fs.existsSync(model));
});
const id = () => path.basename(model, '.gguf');

const words = ['the', 'little', 'cat', 'ran', 'to', 'big', 'tree', 'and', 'saw', 'a', 'bird', 'sing', 'on', 'warm', 'day'];
// a prompt of about n words, different for each seed
function prompt(seed, n) {
  let s = '';
  for (let i = 0; i < n; i++) s += (i ? ' ' : '') + words[(seed * 7 + i * (seed % 5 + 3)) % words.length];
  return s;
}

async function complete(srv, text, maxTokens = 40) {
  const r = await postJSON(`${srv.base}/completions`, { model: id(), prompt: text, temperature: 0, max_tokens: maxTokens });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return { text: r.json.choices[0].text, usage: r.json.usage };
}

describe('temperature 0 is batch-invariant (--parallel 24)', () => {
  let srv;
  before(async () => {
    if (!model) return;
    srv = await startServer({ model, args: ['--parallel', '24', '--ctx', '12288'] });
  });
  after(async () => { if (srv) assert.equal(await srv.stop(), 0); });

  test('the same requests alone and among 24 concurrent ones give byte-identical text', async (t) => {
    if (!model) return t.skip('tools/gen-synthetic not given (--gen)');
    const probes = [1, 2, 3, 4].map((k) => prompt(k, 10 + 17 * k));
    const alone = [];
    for (const p of probes) alone.push(await complete(srv, p));
    // 24 at once: the probes and 20 others of other lengths and output lengths
    const bodies = [];
    for (let i = 0; i < 24; i++) bodies.push(i < 4 ? { p: probes[i], n: 40 } : { p: prompt(100 + i, 5 + (i * 13) % 90), n: 8 + (i * 7) % 50 });
    const many = await Promise.all(bodies.map((b) => complete(srv, b.p, b.n)));
    for (let i = 0; i < 4; i++) {
      assert.ok(alone[i].text.length > 0);
      assert.equal(many[i].text, alone[i].text, `probe ${i}: text among 24 concurrent requests differs from alone`);
    }
  });

  test('the same request twice, the second from the slot cache, gives byte-identical text', async (t) => {
    if (!model) return t.skip('tools/gen-synthetic not given (--gen)');
    const seeds = Array.from({ length: 8 }, (_, i) => 9 + i);
    const extended = [];
    for (const k of seeds) {
      const p = prompt(k, 40 + 15 * (k % 6));
      const first = await complete(srv, p, 64);
      const second = await complete(srv, p, 64);
      const cached = second.usage.prompt_tokens_details?.cached_tokens;
      assert.ok(cached > 0 && cached >= second.usage.prompt_tokens - 1, `the prompt came from the cache (cached_tokens ${cached} of ${second.usage.prompt_tokens})`);
      assert.equal(second.text, first.text, `prompt ${k}: the second text (prompt from the cache) differs`);
      // the cached prompt with a new suffix of a few tokens (decoded alone, the prefix not)
      const q = `${p} and then ${words[k % words.length]} bird sang`;
      const third = await complete(srv, q, 64);
      assert.ok(third.usage.prompt_tokens_details?.cached_tokens > 0, 'the shared prefix came from the cache');
      extended.push({ q, text: third.text });
    }
    // the same extended prompts on a fresh server, each decoded whole in one pass
    const fresh = await startServer({ model, args: ['--parallel', '8', '--ctx', '4096'] });
    try {
      for (const e of extended) assert.equal((await complete(fresh, e.q, 64)).text, e.text, 'prefix from the cache + suffix = the whole prompt decoded at once');
    } finally {
      assert.equal(await fresh.stop(), 0);
    }
  });
});
