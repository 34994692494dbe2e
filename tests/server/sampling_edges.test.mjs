// sampling_edges.test.mjs - #14 item 17 and the seed part of item 19, end to end: tiny
// temperatures are greedy, a logit_bias that bans every token is a 400, seeds are uint64.
// Instance: stories260K (vocabulary of 512 tokens).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, postJSON, isErrorObject } from './harness.mjs';

const MODEL = 'stories260K';
const N_VOCAB = 512;
let srv;
const chat = (extra) => ({ model: MODEL, messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: 12, ...extra });
const post = (body) => postJSON(`${srv.base}/chat/completions`, body);
// raw body text: JSON.stringify cannot write integers beyond 2^53 exactly
const postRaw = (text) => fetch(`${srv.base}/chat/completions`, {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: text,
}).then(async (r) => { const t = await r.text(); let j = null; try { j = JSON.parse(t); } catch { /* */ } return { status: r.status, text: t, json: j }; });
const rawChat = (seedLiteral, extra = '') =>
  `{"model":"${MODEL}","messages":[{"role":"user","content":"Tell me a story."}],"max_tokens":12,"temperature":1.0${extra},"seed":${seedLiteral}}`;

before(async () => { srv = await startServer({ args: ['--parallel', '2', '--ctx', '1024'] }); });
after(async () => { assert.equal(await srv.stop('SIGTERM'), 0); });

test('temperatures down to the smallest float are greedy (never the least likely token)', async () => {
  const greedy = await post(chat({ temperature: 0 }));
  assert.equal(greedy.status, 200, greedy.text);
  const want = greedy.json.choices[0].message.content;
  assert.ok(want.length > 0);
  for (const t of [1e-45, 1e-40, 1e-38, 1e-37, 1e-20, 1e-6]) {
    for (const seed of [1, 2, 3]) {
      const r = await post(chat({ temperature: t, seed }));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.choices[0].message.content, want, `temperature ${t} seed ${seed}`);
    }
  }
});

test('a logit_bias that bans every token is a 400 naming logit_bias; all but one forces that one', async () => {
  const all = {};
  for (let i = 0; i < N_VOCAB; i++) all[i] = -100;
  for (const temperature of [0, 0.8]) {
    const r = await post(chat({ temperature, logit_bias: all }));
    assert.equal(r.status, 400, r.text);
    assert.ok(isErrorObject(r.json), r.text);
    assert.equal(r.json.error.param, 'logit_bias');
    assert.match(r.json.error.message, /every token/);
  }
  // the same ban through the completions endpoint
  const c = await postJSON(`${srv.base}/completions`, { model: MODEL, prompt: 'Once', max_tokens: 4, logit_bias: all });
  assert.equal(c.status, 400, c.text);
  assert.equal(c.json.error.param, 'logit_bias');
  // one token left (id 400, an ordinary piece): every generated token is that one
  const some = { ...all };
  delete some[400];
  const r = await postJSON(`${srv.base}/completions`, { model: MODEL, prompt: 'Once', max_tokens: 4, temperature: 1, logit_bias: some, logprobs: 1 });
  assert.equal(r.status, 200, r.text);
  const toks = r.json.choices[0].logprobs.tokens;
  assert.equal(toks.length, 4);
  assert.equal(new Set(toks).size, 1, JSON.stringify(toks));
});

test('seeds are uint64: 2^63 and 2^64-1 are accepted and reproducible; 2^64 is a 400', async () => {
  for (const lit of ['9223372036854775808', '18446744073709551615']) {
    const a = await postRaw(rawChat(lit));
    const b = await postRaw(rawChat(lit));
    assert.equal(a.status, 200, a.text);
    assert.equal(b.status, 200, b.text);
    assert.equal(a.json.choices[0].message.content, b.json.choices[0].message.content, lit);
  }
  // a different big seed gives a different sample (12 tokens at temperature 1)
  const x = await postRaw(rawChat('9223372036854775808'));
  const y = await postRaw(rawChat('18446744073709551614'));
  assert.notEqual(x.json.choices[0].message.content, y.json.choices[0].message.content);
  // "seed" as a nested key or a string is not touched by the uint64 path
  const nested = await postRaw(`{"model":"${MODEL}","messages":[{"role":"user","content":"\\"seed\\":18446744073709551615"}],"max_tokens":2,"seed":18446744073709551615}`);
  assert.equal(nested.status, 200, nested.text);
  for (const lit of ['18446744073709551616', '99999999999999999999999', '1.5', '-9223372036854775809']) {
    const r = await postRaw(rawChat(lit));
    assert.equal(r.status, 400, `${lit}: ${r.text}`);
    assert.ok(isErrorObject(r.json), r.text);
  }
  // other oversized integers are still parse errors
  const big = await postRaw(`{"model":"${MODEL}","messages":[{"role":"user","content":"x"}],"max_tokens":9223372036854775808}`);
  assert.equal(big.status, 400, big.text);
});
