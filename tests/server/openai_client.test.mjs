// openai_client.test.mjs - every endpoint and field of issue #7 through the official `openai` npm
// client, and through raw fetch where the client hides things (headers, SSE framing, errors).
// Model: ../shared/testdata/models/stories260K.gguf (real weights, ChatML template).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, postJSON, readSSE, isErrorObject, parseMetrics, metricSum } from './harness.mjs';

const MODEL = 'stories260K';
let srv;
let client;
const PROMPT = 'Once upon a time';
const MSGS = [{ role: 'user', content: 'Tell me a story about a cat.' }];

before(async () => {
  srv = await startServer({ args: ['--parallel', '4', '--ctx', '2048'] });
  client = new OpenAI({ baseURL: srv.base, apiKey: 'unused', maxRetries: 0, timeout: 120000 });
});
after(async () => {
  const code = await srv.stop('SIGTERM');
  assert.equal(code, 0, 'SIGTERM -> exit 0');
});

async function tokenize(content, extra = {}) {
  const r = await postJSON(`${srv.url}/tokenize`, { content, add_special: true, ...extra });
  assert.equal(r.status, 200, r.text);
  return r.json.tokens;
}
async function templated(messages) {
  const r = await postJSON(`${srv.url}/apply-template`, { messages });
  assert.equal(r.status, 200, r.text);
  assert.equal(typeof r.json.prompt, 'string');
  return r.json.prompt;
}
// greedy completion with legacy logprobs: text and token strings
async function greedy(prompt, max_tokens, extra = {}) {
  return client.completions.create({ model: MODEL, prompt, max_tokens, temperature: 0, ...extra });
}

describe('chat completions', () => {
  test('non-streaming: OpenAI shape and exact usage', async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 7, temperature: 0 });
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.object, 'chat.completion');
    assert.equal(typeof r.created, 'number');
    assert.ok(Math.abs(r.created - Date.now() / 1000) < 600);
    assert.equal(r.model, MODEL);
    assert.equal(typeof r.system_fingerprint, 'string');
    assert.equal(r.choices.length, 1);
    const c = r.choices[0];
    assert.equal(c.index, 0);
    assert.equal(c.message.role, 'assistant');
    assert.equal(typeof c.message.content, 'string');
    assert.ok(c.message.content.length > 0);
    assert.equal(c.logprobs, null);
    const ids = await tokenize(await templated(MSGS));
    assert.equal(r.usage.prompt_tokens, ids.length, 'prompt_tokens = /tokenize of /apply-template');
    if (c.finish_reason === 'length') assert.equal(r.usage.completion_tokens, 7);
    else assert.equal(c.finish_reason, 'stop');
    assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 7);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
    assert.equal(typeof r.usage.prompt_tokens_details.cached_tokens, 'number');
  });

  test('content as an array of text parts equals the plain string', async () => {
    const a = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 8, temperature: 0 });
    const parts = [{ role: 'user', content: [{ type: 'text', text: 'Tell me a story about a cat.' }] }];
    const b = await client.chat.completions.create({ model: MODEL, messages: parts, max_tokens: 8, temperature: 0 });
    assert.equal(b.choices[0].message.content, a.choices[0].message.content);
    assert.equal(b.usage.prompt_tokens, a.usage.prompt_tokens);
    // several parts: all of their text reaches the prompt, in order
    const two = [{ role: 'user', content: [{ type: 'text', text: 'Tell me a story' }, { type: 'text', text: 'about a dog.' }] }];
    const p = await templated(two);
    assert.ok(p.indexOf('Tell me a story') >= 0 && p.indexOf('about a dog.') > p.indexOf('Tell me a story'), JSON.stringify(p));
    const c = await client.chat.completions.create({ model: MODEL, messages: two, max_tokens: 2, temperature: 0 });
    assert.equal(c.usage.prompt_tokens, (await tokenize(p)).length);
  });

  test('system + multi-turn messages and the user field are accepted', async () => {
    const msgs = [{ role: 'system', content: 'You tell stories.' }, ...MSGS,
      { role: 'assistant', content: 'Once there was a cat.' }, { role: 'user', content: 'More.' }];
    const r = await client.chat.completions.create({ model: MODEL, messages: msgs, max_tokens: 4, temperature: 0, user: 'u-1' });
    assert.equal(r.usage.prompt_tokens, (await tokenize(await templated(msgs))).length);
  });

  test('streaming through the client: role first, one id, finish_reason null until last, include_usage', async () => {
    const ref = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 12, temperature: 0 });
    const stream = await client.chat.completions.create({
      model: MODEL, messages: MSGS, max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const ch of stream) chunks.push(ch);
    assert.ok(chunks.length >= 3);
    const ids = new Set(chunks.map((c) => c.id));
    assert.equal(ids.size, 1, 'same id on every chunk');
    for (const c of chunks) {
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.model, MODEL);
      assert.equal(typeof c.created, 'number');
    }
    const usageChunk = chunks[chunks.length - 1];
    assert.deepEqual(usageChunk.choices, [], 'usage chunk has empty choices');
    assert.equal(usageChunk.usage.prompt_tokens, ref.usage.prompt_tokens);
    assert.equal(usageChunk.usage.completion_tokens, ref.usage.completion_tokens);
    assert.equal(usageChunk.usage.total_tokens, ref.usage.total_tokens);
    const content = chunks.slice(0, -1);
    assert.equal(content[0].choices[0].delta.role, 'assistant', 'first delta carries the role');
    for (const c of content.slice(0, -1)) {
      assert.equal(c.choices[0].finish_reason, null, 'finish_reason null until the last chunk');
      assert.ok(c.usage === undefined || c.usage === null, 'no usage before the usage chunk');
    }
    const last = content[content.length - 1];
    assert.equal(last.choices[0].finish_reason, ref.choices[0].finish_reason);
    const text = content.map((c) => c.choices[0].delta.content ?? '').join('');
    assert.equal(text, ref.choices[0].message.content, 'streamed text = non-streamed text');
  });

  test('streaming raw SSE framing: content type, data lines, [DONE] last, no usage chunk unless asked', async () => {
    const res = await fetch(`${srv.base}/chat/completions`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: MSGS, max_tokens: 5, temperature: 0, stream: true }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/event-stream/);
    assert.ok(res.headers.get('x-request-id'));
    const { raw, events } = await readSSE(res);
    assert.ok(raw.endsWith('data: [DONE]\n\n'), 'ends with data: [DONE]');
    assert.equal(events[events.length - 1].data, '[DONE]');
    const json = events.slice(0, -1).map((e) => JSON.parse(e.data));
    for (const j of json) assert.ok(j.choices.length === 1, 'no usage-only chunk without include_usage');
    assert.notEqual(json[json.length - 1].choices[0].finish_reason, null);
  });

  test('max_tokens and max_completion_tokens cap the completion', async () => {
    const a = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 3, temperature: 0 });
    assert.equal(a.usage.completion_tokens, 3);
    assert.equal(a.choices[0].finish_reason, 'length');
    const b = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_completion_tokens: 4, temperature: 0 });
    assert.equal(b.usage.completion_tokens, 4);
    assert.equal(b.choices[0].finish_reason, 'length');
    // the 3-token answer is a prefix of the 4-token one (greedy)
    assert.ok(b.choices[0].message.content.startsWith(a.choices[0].message.content));
  });

  test('n > 1: n choices with their indices, usage counts all of them', async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 6, n: 3, temperature: 1, seed: 7, logprobs: true });
    assert.equal(r.choices.length, 3);
    assert.deepEqual(r.choices.map((c) => c.index).sort(), [0, 1, 2]);
    const total = r.choices.reduce((s, c) => s + c.logprobs.content.length, 0);
    assert.equal(r.usage.completion_tokens, total, 'completion_tokens = sum over choices');
    assert.equal(r.usage.prompt_tokens, (await tokenize(await templated(MSGS))).length, 'prompt counted once');
  });

  test('n > 1 streaming: every choice index appears, each gets a finish_reason', async () => {
    const stream = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 5, n: 2, temperature: 0, stream: true });
    const fin = new Map();
    const text = ['', ''];
    for await (const ch of stream) {
      for (const c of ch.choices) {
        text[c.index] += c.delta.content ?? '';
        if (c.finish_reason) fin.set(c.index, c.finish_reason);
      }
    }
    assert.deepEqual([...fin.keys()].sort(), [0, 1]);
    assert.equal(text[0], text[1], 'greedy choices agree');
  });

  test('logprobs + top_logprobs: shape, order, greedy token is the best', async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 });
    const lp = r.choices[0].logprobs.content;
    assert.equal(lp.length, r.usage.completion_tokens);
    for (const t of lp) {
      assert.equal(typeof t.token, 'string');
      assert.ok(t.logprob <= 0 && Number.isFinite(t.logprob));
      assert.ok(Array.isArray(t.bytes));
      assert.deepEqual(Buffer.from(t.bytes).toString('utf8'), t.token);
      assert.equal(t.top_logprobs.length, 3);
      for (let i = 1; i < 3; i++) assert.ok(t.top_logprobs[i - 1].logprob >= t.top_logprobs[i].logprob);
      assert.equal(t.top_logprobs[0].token, t.token, 'greedy pick is the top alternative');
      assert.ok(Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-6);
      assert.ok(t.top_logprobs.reduce((s, x) => s + Math.exp(x.logprob), 0) <= 1 + 1e-4);
    }
    if (r.choices[0].finish_reason === 'length') assert.equal(lp.map((t) => t.token).join(''), r.choices[0].message.content);
  });

  test('logprobs streamed: each chunk carries its tokens', async () => {
    const stream = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 2,
      stream: true, stream_options: { include_usage: true } });
    let n = 0;
    let usage = null;
    for await (const ch of stream) {
      for (const c of ch.choices) n += c.logprobs?.content?.length ?? 0;
      if (ch.usage) usage = ch.usage;
    }
    assert.equal(n, usage.completion_tokens);
    assert.ok(n >= 1);
  });

  test('temperature 0 is deterministic; seed makes sampling reproducible', async () => {
    const g = () => client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 16, temperature: 0 });
    assert.equal((await g()).choices[0].message.content, (await g()).choices[0].message.content);
    const s = (seed) => client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 16, temperature: 1.0, seed })
      .then((r) => r.choices[0].message.content);
    const a = await s(42);
    assert.equal(await s(42), a, 'same seed, same text');
    const others = [await s(1), await s(2), await s(3)];
    assert.ok(others.some((t) => t !== a), 'different seeds give different samples');
  });

  test('sampling extensions and penalties are accepted (top_p, top_k, min_p, repeat_penalty, presence/frequency)', async () => {
    const r = await client.chat.completions.create({
      model: MODEL, messages: MSGS, max_tokens: 4, temperature: 0.7, top_p: 0.9, presence_penalty: 0.5, frequency_penalty: 0.5, seed: 1,
      top_k: 20, min_p: 0.05, repeat_penalty: 1.1,
    });
    assert.ok(r.usage.completion_tokens >= 1);
  });

  test('logit_bias steers the choice', async () => {
    const pieces = (await postJSON(`${srv.url}/tokenize`, { content: 'cat', with_pieces: true })).json.tokens;
    const { id, piece } = pieces[pieces.length - 1];
    const r = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 3, temperature: 0,
      logit_bias: { [id]: 100 }, logprobs: true });
    assert.equal(r.choices[0].logprobs.content.length, 3);
    for (const t of r.choices[0].logprobs.content) assert.equal(t.token, piece, `every token is the biased one (${id} ${JSON.stringify(piece)})`);
    const ban = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 3, temperature: 0, logprobs: true });
    const first = ban.choices[0].logprobs.content[0].token;
    let firstId = null;
    for (const pre of ['', 'a', 'x', ' ']) {
      const ps = (await postJSON(`${srv.url}/tokenize`, { content: pre + first, with_pieces: true })).json.tokens;
      const hit = ps.find((p) => p.piece === first);
      if (hit) { firstId = hit.id; break; }
    }
    assert.ok(firstId !== null, `token id of ${JSON.stringify(first)}`);
    const r2 = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 1, temperature: 0,
      logit_bias: { [firstId]: -100 }, logprobs: true });
    assert.notEqual(r2.choices[0].logprobs.content[0].token, first, 'a -100 bias bans the greedy token');
  });
});

describe('stop strings', () => {
  let T; // greedy text and its token strings
  let toks;
  before(async () => {
    const r = await greedy(PROMPT, 24, { logprobs: 0 });
    T = r.choices[0].text;
    toks = r.choices[0].logprobs.tokens;
    assert.equal(toks.join(''), T);
  });
  function spanning() {
    // a stop string made of the end of one token and the start of the next, not seen earlier
    let off = 0;
    for (let k = 2; k < toks.length - 1; k++) {
      off = toks.slice(0, k + 1).join('').length;
      const a = toks[k], b = toks[k + 1];
      if (a.length >= 2 && b.length >= 2) {
        const s = a.slice(-2) + b.slice(0, 2);
        if (T.indexOf(s) === off - 2) return { s, at: off - 2 };
      }
    }
    return null;
  }
  test('a stop string from the middle of the greedy text is hit, not leaked (non-streaming)', async () => {
    const mid = Math.floor(T.length / 2);
    const word = T.slice(mid, mid + 3);
    assert.ok(T.length >= 8, `greedy text: ${JSON.stringify(T)}`);
    const at = T.indexOf(word);
    const r = await greedy(PROMPT, 24, { stop: word });
    assert.equal(r.choices[0].text, T.slice(0, at));
    assert.equal(r.choices[0].finish_reason, 'stop');
  });
  test('a stop string spanning a token boundary: not leaked, also when streamed', async () => {
    const sp = spanning();
    assert.ok(sp, `no token boundary with 2+2 chars in ${JSON.stringify(toks)}`);
    const r = await greedy(PROMPT, 24, { stop: ['@@never@@', sp.s] });
    assert.equal(r.choices[0].text, T.slice(0, sp.at));
    assert.equal(r.choices[0].finish_reason, 'stop');
    const stream = await greedy(PROMPT, 24, { stop: [sp.s], stream: true });
    let text = '';
    let fin = null;
    for await (const ch of stream) {
      const d = ch.choices[0]?.text ?? '';
      assert.ok(!d.includes(sp.s));
      text += d;
      if (ch.choices[0]?.finish_reason) fin = ch.choices[0].finish_reason;
    }
    assert.equal(text, T.slice(0, sp.at), 'streamed text stops before the stop string');
    assert.equal(fin, 'stop');
    // chat streaming as well: stop taken from the chat's own greedy answer
    const ref = (await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 20, temperature: 0 })).choices[0].message.content;
    const mid = Math.floor(ref.length / 2);
    const stop = ref.slice(mid, mid + 3);
    const cs = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 20, temperature: 0, stop, stream: true });
    let ct = '';
    for await (const ch of cs) ct += ch.choices[0]?.delta?.content ?? '';
    assert.equal(ct, ref.slice(0, ref.indexOf(stop)));
  });
});

describe('completions', () => {
  test('string prompt: shape and exact usage', async () => {
    const r = await greedy(PROMPT, 8);
    assert.match(r.id, /^cmpl-/);
    assert.equal(r.object, 'text_completion');
    assert.equal(r.model, MODEL);
    assert.equal(r.choices[0].index, 0);
    assert.equal(typeof r.choices[0].text, 'string');
    assert.equal(r.usage.prompt_tokens, (await tokenize(PROMPT)).length);
    assert.equal(r.usage.completion_tokens, 8);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 8);
  });
  test('max_tokens defaults to 16', async () => {
    const r = await client.completions.create({ model: MODEL, prompt: PROMPT, temperature: 0 });
    assert.ok(r.usage.completion_tokens <= 16);
    if (r.choices[0].finish_reason === 'length') assert.equal(r.usage.completion_tokens, 16);
  });
  test('array of strings, token array, array of token arrays agree with the string prompt', async () => {
    const a = (await greedy(PROMPT, 8)).choices[0].text;
    const b = (await greedy('Lily went to', 8)).choices[0].text;
    const arr = await greedy([PROMPT, 'Lily went to'], 8);
    assert.equal(arr.choices.length, 2);
    const byIndex = Object.fromEntries(arr.choices.map((c) => [c.index, c.text]));
    assert.equal(byIndex[0], a);
    assert.equal(byIndex[1], b);
    const na = (await tokenize(PROMPT)).length, nb = (await tokenize('Lily went to')).length;
    assert.equal(arr.usage.prompt_tokens, na + nb, 'usage sums the prompts');
    assert.equal(arr.usage.completion_tokens, 16);
    // n = 2 per prompt: choice index = prompt * n + j
    const arr2 = await greedy([PROMPT, 'Lily went to'], 8, { n: 2 });
    assert.equal(arr2.choices.length, 4);
    const by2 = Object.fromEntries(arr2.choices.map((c) => [c.index, c.text]));
    assert.deepEqual([by2[0], by2[1], by2[2], by2[3]], [a, a, b, b]);
    assert.equal(arr2.usage.completion_tokens, 32);
    const ids = await tokenize(PROMPT);
    const t = await greedy(ids, 8);
    assert.equal(t.choices[0].text, a, 'token prompt = string prompt');
    assert.equal(t.usage.prompt_tokens, ids.length);
    const tt = await greedy([ids, await tokenize('Lily went to')], 8);
    assert.deepEqual(tt.choices.sort((x, y) => x.index - y.index).map((c) => c.text), [a, b]);
  });
  test('legacy logprobs shape: tokens, token_logprobs, top_logprobs, text_offset', async () => {
    const r = await greedy(PROMPT, 6, { logprobs: 3 });
    const lp = r.choices[0].logprobs;
    assert.equal(lp.tokens.length, 6);
    assert.equal(lp.token_logprobs.length, 6);
    assert.equal(lp.top_logprobs.length, 6);
    assert.equal(lp.text_offset.length, 6);
    assert.equal(lp.tokens.join(''), r.choices[0].text);
    for (let i = 0; i < 6; i++) {
      assert.ok(lp.token_logprobs[i] <= 0);
      const top = lp.top_logprobs[i];
      assert.ok(Object.keys(top).length >= 1 && Object.keys(top).length <= 3);
      assert.ok(Math.abs(Math.max(...Object.values(top)) - lp.token_logprobs[i]) < 1e-6, 'greedy token is the best');
      if (i) assert.equal(lp.text_offset[i] - lp.text_offset[i - 1], lp.tokens[i - 1].length);
    }
  });
  test('echo + logprobs + max_tokens 0 scores the prompt exactly (first token null)', async () => {
    const text = 'Once upon a time there was a little girl named Lily.';
    const ids = await tokenize(text);
    const r = await client.completions.create({ model: MODEL, prompt: ids, max_tokens: 0, echo: true, logprobs: 1, temperature: 0 });
    const c = r.choices[0];
    const lp = c.logprobs;
    assert.equal(lp.tokens.length, ids.length);
    assert.equal(lp.token_logprobs[0], null, 'first token has null');
    assert.equal(lp.top_logprobs[0], null);
    for (let i = 1; i < ids.length; i++) assert.ok(Number.isFinite(lp.token_logprobs[i]) && lp.token_logprobs[i] <= 0);
    assert.equal(r.usage.completion_tokens, 0);
    assert.equal(r.usage.prompt_tokens, ids.length);
    // string prompt gives the same scores
    const s = await client.completions.create({ model: MODEL, prompt: text, max_tokens: 0, echo: true, logprobs: 0 });
    assert.ok(s.choices[0].text === text, `echo returns the prompt: ${JSON.stringify(s.choices[0].text)}`);
    assert.deepEqual(s.choices[0].logprobs.token_logprobs.length, ids.length);
    // independent reference: the logprob of prompt token i equals the logprob reported when that
    // token is generated (forced with logit_bias; logprobs are of the raw logits) from ids[0..i)
    for (const i of [1, 3, Math.floor(ids.length / 2), ids.length - 1]) {
      const g = await client.completions.create({ model: MODEL, prompt: ids.slice(0, i), max_tokens: 1, temperature: 0, logprobs: 1,
        logit_bias: { [ids[i]]: 100 } });
      const want = g.choices[0].logprobs.token_logprobs[0];
      assert.equal(g.choices[0].logprobs.tokens[0], lp.tokens[i]);
      assert.ok(Math.abs(want - lp.token_logprobs[i]) < 2e-3, `position ${i}: echo ${lp.token_logprobs[i]} vs generated ${want}`);
    }
  });
  test('sampling parameters act: top_k 1 / tiny top_p = greedy; penalties change a repetitive text', async () => {
    const g = await greedy(PROMPT, 24, { logprobs: 0 });
    const T = g.choices[0].text;
    for (const extra of [{ top_k: 1 }, { top_p: 1e-6 }, { min_p: 1.0 }]) {
      const r = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 24, temperature: 1.5, seed: 3, ...extra });
      assert.equal(r.choices[0].text, T, `${JSON.stringify(extra)} at temperature 1.5 = greedy`);
    }
    const toks = g.choices[0].logprobs.tokens;
    assert.ok(new Set(toks).size < toks.length, `precondition: the greedy text repeats tokens: ${JSON.stringify(toks)}`);
    for (const extra of [{ frequency_penalty: 2 }, { presence_penalty: 2 }, { repeat_penalty: 1.8 }]) {
      const r = await greedy(PROMPT, 24, extra);
      assert.notEqual(r.choices[0].text, T, `${JSON.stringify(extra)} changes the greedy text`);
    }
  });
  test('echo with generation: text = prompt + completion', async () => {
    const plain = (await greedy(PROMPT, 5)).choices[0].text;
    const r = await greedy(PROMPT, 5, { echo: true });
    assert.equal(r.choices[0].text, PROMPT + plain);
  });
  test('streaming completions end with [DONE] and usage when asked', async () => {
    const stream = await greedy(PROMPT, 5, { stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const ch of stream) chunks.push(ch);
    const u = chunks[chunks.length - 1];
    assert.deepEqual(u.choices, []);
    assert.equal(u.usage.completion_tokens, 5);
    assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
  });
});

describe('embeddings', () => {
  const b64floats = (s) => { const b = Buffer.from(s, 'base64'); return Array.from(new Float32Array(b.buffer, b.byteOffset, b.length / 4)); };
  test('float and base64 agree; vectors are normalised; usage counts tokens', async () => {
    const f = await postJSON(`${srv.base}/embeddings`, { model: MODEL, input: 'A cat sat.', encoding_format: 'float' });
    assert.equal(f.status, 200, f.text);
    assert.equal(f.json.object, 'list');
    assert.equal(f.json.data[0].object, 'embedding');
    assert.equal(f.json.data[0].index, 0);
    const v = f.json.data[0].embedding;
    assert.ok(v.length >= 8);
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    assert.ok(Math.abs(norm - 1) < 1e-4, `L2 norm ${norm}`);
    const b = await postJSON(`${srv.base}/embeddings`, { model: MODEL, input: 'A cat sat.', encoding_format: 'base64' });
    assert.equal(typeof b.json.data[0].embedding, 'string');
    assert.deepEqual(b64floats(b.json.data[0].embedding), v.map(Math.fround));
    const ids = await tokenize('A cat sat.', { parse_special: false });
    assert.equal(f.json.usage.prompt_tokens, ids.length);
    assert.equal(f.json.usage.total_tokens, ids.length);
    // the official client asks for base64 by default and decodes it
    const c = await client.embeddings.create({ model: MODEL, input: 'A cat sat.' });
    assert.deepEqual(c.data[0].embedding.map(Math.fround), v.map(Math.fround));
  });
  test('array of strings and token arrays', async () => {
    const r = await client.embeddings.create({ model: MODEL, input: ['A cat sat.', 'The sun is hot.', 'A cat sat.'], encoding_format: 'float' });
    assert.equal(r.data.length, 3);
    assert.deepEqual(r.data.map((d) => d.index), [0, 1, 2]);
    assert.deepEqual(r.data[0].embedding, r.data[2].embedding);
    assert.notDeepEqual(r.data[0].embedding, r.data[1].embedding);
    const ids = await tokenize('A cat sat.', { parse_special: false });
    const t = await client.embeddings.create({ model: MODEL, input: [ids], encoding_format: 'float' });
    const d = t.data[0].embedding.map((x, i) => Math.abs(x - r.data[0].embedding[i]));
    assert.ok(Math.max(...d) < 1e-5, 'token input = string input');
  });
});

describe('models, health, metrics, utilities', () => {
  test('GET /v1/models and /v1/models/{id}; unknown id 404', async () => {
    const list = [];
    for await (const m of client.models.list()) list.push(m);
    assert.ok(list.some((m) => m.id === MODEL));
    for (const m of list) { assert.equal(m.object, 'model'); assert.equal(typeof m.created, 'number'); assert.equal(typeof m.owned_by, 'string'); }
    const m = await client.models.retrieve(MODEL);
    assert.equal(m.id, MODEL);
    await assert.rejects(client.models.retrieve('no-such-model'), (e) => e.status === 404 && isErrorObject({ error: e.error }));
    const raw = await fetch(`${srv.base}/models/no-such-model`);
    assert.equal(raw.status, 404);
    assert.ok(isErrorObject(await raw.json()));
    const chat = await postJSON(`${srv.base}/chat/completions`, { model: 'no-such-model', messages: MSGS });
    assert.equal(chat.status, 404);
    assert.ok(isErrorObject(chat.json));
  });
  test('/health: ok with slots and the per-slot context', async () => {
    const r = await fetch(`${srv.url}/health`);
    assert.equal(r.status, 200);
    const h = await r.json();
    assert.equal(h.status, 'ok');
    assert.equal(h.slots_idle + h.slots_busy, 4);
    const m = h.models.find((x) => x.id === MODEL);
    assert.equal(m.slots_total, 4);
    assert.equal(m.slot_context * 4, m.context, 'the per-slot context is stated');
  });
  test('/metrics: Prometheus text that parses; counters increase after requests', async () => {
    const get = async () => {
      const r = await fetch(`${srv.url}/metrics`);
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type'), /^text\/plain/);
      return parseMetrics(await r.text());
    };
    const a = await get();
    for (const n of ['inferno_requests_total', 'inferno_prompt_tokens_total', 'inferno_generated_tokens_total', 'inferno_queue_depth',
      'inferno_slots_busy', 'inferno_kv_cells_used', 'inferno_model_load_seconds']) assert.ok(a.types.has(n), `metric ${n}`);
    for (const n of ['inferno_time_to_first_token_seconds', 'inferno_time_per_output_token_seconds']) {
      assert.equal(a.types.get(n), 'histogram');
      assert.ok([...a.keys()].some((k) => k.startsWith(`${n}_bucket{`) && k.includes('le="+Inf"')), `${n} +Inf bucket`);
    }
    await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 5, temperature: 0 });
    await postJSON(`${srv.base}/chat/completions`, { model: MODEL, messages: [] });
    const b = await get();
    const chat = (m, st) => [...m].filter(([k]) => k.startsWith('inferno_requests_total{') && k.includes('route="/v1/chat/completions"') && k.includes(`status="${st}"`)).reduce((s, [, v]) => s + v, 0);
    assert.ok(chat(b, 200) >= chat(a, 200) + 1, 'chat 200 counter increased');
    assert.ok(chat(b, 400) >= chat(a, 400) + 1, 'chat 400 counter increased');
    assert.ok(metricSum(b, 'inferno_generated_tokens_total') >= metricSum(a, 'inferno_generated_tokens_total') + 5);
    assert.ok(metricSum(b, 'inferno_time_to_first_token_seconds_count') >= metricSum(a, 'inferno_time_to_first_token_seconds_count') + 1);
  });
  test('tokenize / detokenize round trip, with pieces', async () => {
    const text = 'Hello world, the cat sat on the mat.';
    const ids = await tokenize(text, { add_special: false });
    assert.ok(ids.length > 3 && ids.every(Number.isInteger));
    const d = await postJSON(`${srv.url}/detokenize`, { tokens: ids });
    assert.equal(d.status, 200);
    assert.equal(d.json.content.trimStart(), text);
    const p = await postJSON(`${srv.url}/tokenize`, { content: text, with_pieces: true });
    assert.deepEqual(p.json.tokens.map((t) => t.id), ids);
    const withBos = await tokenize(text);
    assert.equal(withBos.length, ids.length + 1, 'add_special adds BOS');
  });
  test('apply-template renders ChatML for this model', async () => {
    const p = await templated(MSGS);
    assert.ok(p.includes('Tell me a story about a cat.'));
    assert.ok(p.endsWith('assistant\n'), JSON.stringify(p));
  });
});

describe('HTTP details', () => {
  test('request id: generated on every response, a valid client id is echoed', async () => {
    const a = await fetch(`${srv.url}/health`);
    assert.ok(a.headers.get('x-request-id'));
    const b = await fetch(`${srv.base}/models`, { headers: { 'X-Request-Id': 'abc-123.x:y' } });
    assert.equal(b.headers.get('x-request-id'), 'abc-123.x:y');
    const c = await fetch(`${srv.base}/models`, { headers: { 'X-Request-Id': 'bad id with spaces' } });
    assert.ok(c.headers.get('x-request-id') && c.headers.get('x-request-id') !== 'bad id with spaces');
    const e = await postJSON(`${srv.base}/chat/completions`, '{');
    assert.ok(e.headers.get('x-request-id'), 'error responses carry it too');
    const r = await client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 1 }).withResponse();
    assert.ok(r.response.headers.get('x-request-id'));
  });
  test('405 with Allow on a wrong method', async () => {
    const r = await fetch(`${srv.base}/chat/completions`);
    assert.equal(r.status, 405);
    assert.match(r.headers.get('allow'), /POST/);
    assert.ok(isErrorObject(await r.json()));
    const d = await fetch(`${srv.base}/models`, { method: 'DELETE' });
    assert.equal(d.status, 405);
    assert.match(d.headers.get('allow'), /GET/);
  });
  test('CORS is off by default', async () => {
    const r = await fetch(`${srv.base}/models`, { headers: { Origin: 'http://evil.example' } });
    assert.equal(r.headers.get('access-control-allow-origin'), null);
    const p = await fetch(`${srv.base}/chat/completions`, { method: 'OPTIONS', headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' } });
    assert.equal(p.headers.get('access-control-allow-origin'), null);
  });
  test('keep-alive: several requests on one connection', async () => {
    const http = await import('node:http');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const u = new URL(srv.url);
    const sockets = new Set();
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve, reject) => {
        const req = http.request({ host: u.hostname, port: u.port, path: '/health', agent }, (res) => {
          sockets.add(res.socket);
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', reject);
        req.end();
      });
    }
    agent.destroy();
    assert.equal(sockets.size, 1, 'one socket reused');
  });
});

describe('auth and rate limit (second instance)', () => {
  let s2;
  before(async () => {
    s2 = await startServer({ args: ['--parallel', '1', '--ctx', '512', '--api-key', 'sk-right', '--set', 'server.rate_limit_rpm=3'] });
  });
  after(async () => { await s2.stop(); });
  test('no key / wrong key -> 401 in OpenAI shape; right key ok; /health open', async () => {
    const none = await fetch(`${s2.base}/models`);
    assert.equal(none.status, 401);
    const j = await none.json();
    assert.ok(isErrorObject(j), JSON.stringify(j));
    const wrong = new OpenAI({ baseURL: s2.base, apiKey: 'sk-wrong', maxRetries: 0 });
    await assert.rejects(wrong.models.list(), (e) => e.status === 401 && e instanceof OpenAI.AuthenticationError);
    const wrongChat = await postJSON(`${s2.base}/chat/completions`, { model: MODEL, messages: MSGS }, { Authorization: 'Bearer sk-righ' });
    assert.equal(wrongChat.status, 401);
    assert.ok(isErrorObject(wrongChat.json));
    const h = await fetch(`${s2.url}/health`);
    assert.equal(h.status, 200, '/health is never protected');
    const m = await fetch(`${s2.url}/metrics`);
    assert.equal(m.status, 401, '/metrics is protected when keys are set');
    const right = new OpenAI({ baseURL: s2.base, apiKey: 'sk-right', maxRetries: 0 });
    const r = await right.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 2 });
    assert.equal(r.choices.length, 1);
  });
  test('rate limit: 429 with Retry-After once the bucket is empty', async () => {
    const statuses = [];
    let retry = null;
    let body = null;
    for (let i = 0; i < 8; i++) {
      const r = await fetch(`${s2.base}/models`, { headers: { Authorization: 'Bearer sk-right' } });
      statuses.push(r.status);
      if (r.status === 429) { retry = r.headers.get('retry-after'); body = await r.json(); } else await r.arrayBuffer();
    }
    assert.ok(statuses.includes(429), `statuses ${statuses}`);
    assert.ok(statuses.slice(0, 1).every((s) => s === 200));
    assert.match(retry ?? '', /^\d+$/);
    assert.ok(Number(retry) >= 1);
    assert.ok(isErrorObject(body));
    const right = new OpenAI({ baseURL: s2.base, apiKey: 'sk-right', maxRetries: 0 });
    await assert.rejects(right.models.list(), (e) => e.status === 429 && e instanceof OpenAI.RateLimitError);
  });
});

describe('keys from INFERNO_API_KEYS and a key file; CORS configured (third instance)', () => {
  let s3;
  let dir;
  before(async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferno-keys-'));
    fs.writeFileSync(path.join(dir, 'keys'), '# keys\nsk-file-1\n\nsk-file-2\n');
    s3 = await startServer({
      args: ['--parallel', '1', '--ctx', '256', '--api-key-file', path.join(dir, 'keys'), '--set', 'server.cors_origins=http://a.example'],
      env: { INFERNO_API_KEYS: 'sk-env-1,sk-env-2' },
    });
  });
  after(async () => {
    await s3.stop();
    (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
  });
  const get = (key, headers = {}) => fetch(`${s3.base}/models`, { headers: { ...(key ? { Authorization: `Bearer ${key}` } : {}), ...headers } });
  test('every configured key works, others do not', async () => {
    for (const k of ['sk-env-1', 'sk-env-2', 'sk-file-1', 'sk-file-2']) assert.equal((await get(k)).status, 200, k);
    for (const k of [null, 'sk-env', 'sk-file-1x', 'sk-file-', '# keys', '']) assert.equal((await get(k)).status, 401, JSON.stringify(k));
    const basic = await fetch(`${s3.base}/models`, { headers: { Authorization: 'Basic c2stZW52LTE6' } });
    assert.equal(basic.status, 401);
  });
  test('CORS: the allowed origin is echoed, preflight answered, other origins get nothing', async () => {
    const ok = await get('sk-env-1', { Origin: 'http://a.example' });
    assert.equal(ok.headers.get('access-control-allow-origin'), 'http://a.example');
    const pre = await fetch(`${s3.base}/chat/completions`, { method: 'OPTIONS', headers: { Origin: 'http://a.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type' } });
    assert.ok(pre.status === 204 || pre.status === 200, `preflight ${pre.status}`);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'http://a.example');
    assert.match(pre.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.match((pre.headers.get('access-control-allow-headers') ?? '').toLowerCase(), /authorization/);
    const other = await get('sk-env-1', { Origin: 'http://b.example' });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
  });
});

describe('TLS (server.tls_cert / server.tls_key)', () => {
  test('HTTPS with a self-signed certificate: trusted clients served, others refused', async (t) => {
    const { execFileSync } = await import('node:child_process');
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const https = await import('node:https');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferno-tls-'));
    try {
      try {
        execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
          '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'pipe' });
      } catch {
        return t.skip('openssl is not available to make a test certificate');
      }
      const s4 = await startServer({ args: ['--parallel', '1', '--ctx', '256', '--set', `server.tls_cert=${path.join(dir, 'cert.pem')}`, '--set', `server.tls_key=${path.join(dir, 'key.pem')}`] });
      try {
        assert.match(s4.url, /^https:\/\//, 'the ready line says https');
        const ca = fs.readFileSync(path.join(dir, 'cert.pem'));
        const agent = new https.Agent({ ca });
        const get = (p) => new Promise((resolve, reject) => {
          https.get(`${s4.url}${p}`, { agent }, (res) => { let b = ''; res.on('data', (d) => { b += d; }); res.on('end', () => resolve({ status: res.statusCode, body: b })); }).on('error', reject);
        });
        const h = await get('/health');
        assert.equal(h.status, 200);
        assert.equal(JSON.parse(h.body).status, 'ok');
        // a client that does not trust the certificate is refused by TLS itself
        await assert.rejects(new Promise((resolve, reject) => https.get(`${s4.url}/health`, { agent: new https.Agent() }, resolve).on('error', reject)));
        // plain HTTP on the TLS port gets no HTTP answer
        const plain = await fetch(s4.url.replace('https:', 'http:') + '/health').then((r) => r.status, () => 'error');
        assert.notEqual(plain, 200);
      } finally {
        await s4.stop();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
