// bad_input.test.mjs - malformed requests: each gets the right status and an OpenAI error object,
// and after every case the server still answers a known greedy request with the same text.
// Instance: stories260K, server.max_body_bytes 65536, server.timeout_seconds 2.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, postJSON, isErrorObject, sleep, SLOW } from './harness.mjs';

const MODEL = 'stories260K';
const MAX_BODY = 65536;
let srv;
let expected; // the greedy answer recorded at the start
const GOOD = { model: MODEL, messages: [{ role: 'user', content: 'Say something.' }], max_tokens: 8, temperature: 0 };
const msgs = [{ role: 'user', content: 'hi' }];
const chat = (extra) => JSON.stringify({ model: MODEL, messages: msgs, max_tokens: 2, ...extra });
const cmpl = (extra) => JSON.stringify({ model: MODEL, prompt: 'hi', max_tokens: 2, ...extra });
const emb = (extra) => JSON.stringify({ model: MODEL, input: 'hi', ...extra });

before(async () => {
  srv = await startServer({
    args: ['--parallel', '2', '--ctx', '1024', '--set', `server.max_body_bytes=${MAX_BODY}`, '--set', 'server.timeout_seconds=2'],
  });
  const r = await postJSON(`${srv.base}/chat/completions`, GOOD);
  assert.equal(r.status, 200, r.text);
  expected = r.json.choices[0].message.content;
  assert.ok(expected.length > 0);
});
after(async () => {
  assert.equal(await srv.stop('SIGTERM'), 0);
});

async function stillServing() {
  const r = await postJSON(`${srv.base}/chat/completions`, GOOD);
  assert.equal(r.status, 200, `server stopped answering correctly: ${r.status} ${r.text}`);
  assert.equal(r.json.choices[0].message.content, expected, 'the greedy answer changed');
}

// [name, path, body (string | Buffer | undefined), expected status, expected param (undefined = any), options]
const P = '/v1/chat/completions';
const C = '/v1/completions';
const E = '/v1/embeddings';
const cases = [
  ['broken JSON', P, '{"model": "x", "messages": [', 400],
  ['empty body', P, '', 400],
  ['missing body (no Content-Length)', P, undefined, 400],
  ['JSON array instead of object', P, '[1,2,3]', 400],
  ['JSON string instead of object', P, '"hello"', 400],
  ['trailing garbage after JSON', P, chat({}) + 'xyz', 400],
  ['NUL byte in the body', P, Buffer.concat([Buffer.from(chat({})), Buffer.from([0])]), 400],
  ['invalid UTF-8 in a string', P, Buffer.concat([Buffer.from('{"model":"stories260K","messages":[{"role":"user","content":"a'), Buffer.from([0xff, 0xfe]), Buffer.from('"}]}')]), 400],
  ['overlong UTF-8 encoding', P, Buffer.concat([Buffer.from('{"model":"stories260K","messages":[{"role":"user","content":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}]}')]), 400],
  ['lone surrogate escape', P, '{"model":"stories260K","messages":[{"role":"user","content":"\\ud800"}],"max_tokens":2}', 400],
  ['messages missing', P, JSON.stringify({ model: MODEL }), 400, 'messages'],
  ['messages empty', P, chat({ messages: [] }), 400, 'messages'],
  ['messages not an array', P, chat({ messages: 'hi' }), 400, 'messages'],
  ['message not an object', P, chat({ messages: ['hi'] }), 400],
  ['unknown role', P, chat({ messages: [{ role: 'wizard', content: 'hi' }] }), 400, 'messages[0].role'],
  ['role missing', P, chat({ messages: [{ content: 'hi' }] }), 400],
  ['content wrong type', P, chat({ messages: [{ role: 'user', content: 42 }] }), 400],
  ['image part', P, chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x/a.png' } }] }] }), 400, 'messages[0].content'],
  ['tool message without tool_call_id', P, chat({ messages: [{ role: 'tool', content: 'x' }] }), 400, 'messages[0].tool_call_id'],
  ['function role (deprecated)', P, chat({ messages: [{ role: 'function', content: 'x', name: 'f' }] }), 400, 'messages[0].role'],
  ['max_tokens negative', P, chat({ max_tokens: -5 }), 400, 'max_tokens'],
  ['max_tokens zero (chat)', P, chat({ max_tokens: 0 }), 400, 'max_tokens'],
  ['max_tokens absurd (2^31)', P, chat({ max_tokens: 2147483648 }), 400, 'max_tokens'],
  ['max_tokens huge number 1e300', P, chat({ max_tokens: 1e300 }), 400, 'max_tokens'],
  ['max_tokens fractional', P, chat({ max_tokens: 1.5 }), 400, 'max_tokens'],
  ['max_tokens as string', P, chat({ max_tokens: '10' }), 400, 'max_tokens'],
  ['max_completion_tokens negative', P, chat({ max_completion_tokens: -1 }), 400, 'max_completion_tokens'],
  ['temperature string', P, chat({ temperature: 'hot' }), 400, 'temperature'],
  ['temperature negative', P, chat({ temperature: -1 }), 400, 'temperature'],
  ['temperature huge', P, chat({ temperature: 1e308 }), 400, 'temperature'],
  ['top_p > 1', P, chat({ top_p: 2 }), 400, 'top_p'],
  ['n = 0', P, chat({ n: 0 }), 400, 'n'],
  ['n huge', P, chat({ n: 1000000 }), 400, 'n'],
  ['seed not an integer', P, chat({ seed: 'abc' }), 400, 'seed'],
  ['stop wrong type', P, chat({ stop: 42 }), 400, 'stop'],
  ['too many stop strings', P, chat({ stop: Array.from({ length: 40 }, (_, i) => `s${i}`) }), 400, 'stop'],
  ['logit_bias not an object', P, chat({ logit_bias: [1, 2] }), 400, 'logit_bias'],
  ['logit_bias key not a token id', P, chat({ logit_bias: { abc: 1 } }), 400, 'logit_bias'],
  ['logit_bias token id out of vocabulary', P, chat({ logit_bias: { 99999999: 1 } }), 400, 'logit_bias'],
  ['logit_bias value out of range', P, chat({ logit_bias: { 1: 1000 } }), 400, 'logit_bias'],
  ['top_logprobs 99', P, chat({ logprobs: true, top_logprobs: 99 }), 400, 'top_logprobs'],
  ['top_logprobs without logprobs', P, chat({ top_logprobs: 2 }), 400, 'top_logprobs'],
  ['stream not a boolean', P, chat({ stream: 'yes' }), 400, 'stream'],
  ['stream_options without stream', P, chat({ stream_options: { include_usage: true } }), 400, 'stream_options'],
  ['tools: a function name with a space', P, chat({ tools: [{ type: 'function', function: { name: 'f g', parameters: {} } }] }), 400, 'tools'],
  ['tool_choice naming no tool', P, chat({ tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: { type: 'function', function: { name: 'g' } } }), 400, 'tool_choice'],
  ['response_format of an unknown type', P, chat({ response_format: { type: 'xml' } }), 400, 'response_format'],
  ['grammar that does not parse', P, chat({ grammar: 'root ::= (' }), 400, 'grammar'],
  ['functions (unsupported)', P, chat({ functions: [{ name: 'f' }] }), 400, 'functions'],
  ['unknown parameter', P, chat({ frobnicate: true }), 400, 'frobnicate'],
  ['model wrong type', P, chat({ model: 42 }), 400, 'model'],
  ['unknown model', P, chat({ model: 'nope' }), 404],
  ['prompt longer than the slot context', P, chat({ messages: [{ role: 'user', content: 'word '.repeat(3000) }] }), 400, 'messages'],
  ['completions: suffix', C, cmpl({ suffix: 'end' }), 400, 'suffix'],
  ['completions: prompt missing', C, JSON.stringify({ model: MODEL }), 400, 'prompt'],
  ['completions: prompt wrong type', C, cmpl({ prompt: { a: 1 } }), 400, 'prompt'],
  ['completions: empty token array', C, cmpl({ prompt: [] }), 400, 'prompt'],
  ['completions: token id out of vocabulary', C, cmpl({ prompt: [1, 99999999] }), 400, 'prompt'],
  ['completions: negative token id', C, cmpl({ prompt: [1, -3] }), 400, 'prompt'],
  ['completions: logprobs 99', C, cmpl({ logprobs: 99 }), 400, 'logprobs'],
  ['completions: best_of != n', C, cmpl({ best_of: 3 }), 400, 'best_of'],
  ['completions: echo wrong type', C, cmpl({ echo: 'yes' }), 400, 'echo'],
  ['embeddings: input missing', E, JSON.stringify({ model: MODEL }), 400, 'input'],
  ['embeddings: input wrong type', E, emb({ input: 5 }), 400, 'input'],
  ['embeddings: bad encoding_format', E, emb({ encoding_format: 'hex' }), 400, 'encoding_format'],
  ['tokenize: content missing', '/tokenize', '{}', 400, 'content'],
  ['detokenize: tokens wrong type', '/detokenize', '{"tokens":"abc"}', 400, 'tokens'],
  ['detokenize: token out of vocabulary', '/detokenize', '{"tokens":[99999999]}', 400, 'tokens'],
  ['apply-template: messages missing', '/apply-template', '{}', 400, 'messages'],
  ['deeply nested JSON', P, '['.repeat(100000) + ']'.repeat(100000), 413],
  ['oversized body', P, JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x'.repeat(MAX_BODY * 2) }] }), 413],
];

async function send(method, path, body, headers = {}) {
  const h = { ...headers };
  if (body !== undefined && !('Content-Type' in h)) h['Content-Type'] = 'application/json';
  const res = await fetch(srv.url + path, { method, headers: h, body });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* checked below */ }
  return { status: res.status, headers: res.headers, text, json };
}

for (const [name, path, body, status, param] of cases) {
  test(`${name} -> ${status}${param ? ` (${param})` : ''}`, async () => {
    const r = await send('POST', path, body);
    assert.equal(r.status, status, `status: ${r.text.slice(0, 300)}`);
    assert.ok(isErrorObject(r.json), `OpenAI error object: ${r.text.slice(0, 300)}`);
    if (param !== undefined) assert.equal(r.json.error.param, param, `param: ${r.text.slice(0, 300)}`);
    assert.ok(r.headers.get('x-request-id'));
    await stillServing();
  });
}

test('streaming request with a bad parameter gets a plain 400 (not a stream)', async () => {
  const r = await send('POST', P, chat({ stream: true, n: 0 }));
  assert.equal(r.status, 400);
  assert.ok(isErrorObject(r.json));
  await stillServing();
});

test('unknown route -> 404', async () => {
  const r = await send('GET', '/v1/nope');
  assert.equal(r.status, 404);
  assert.ok(isErrorObject(r.json));
  const r2 = await send('POST', '/v2/chat/completions', chat({}));
  assert.equal(r2.status, 404);
  assert.ok(isErrorObject(r2.json));
  await stillServing();
});

test('GET on a POST route -> 405 with Allow', async () => {
  for (const p of [P, C, E, '/tokenize']) {
    const r = await send('GET', p);
    assert.equal(r.status, 405, p);
    assert.match(r.headers.get('allow') ?? '', /POST/);
    assert.ok(isErrorObject(r.json));
  }
  const r = await send('POST', '/health', '{}');
  assert.equal(r.status, 405);
  assert.match(r.headers.get('allow') ?? '', /GET/);
  await stillServing();
});

test('wrong Content-Type with a valid JSON body -> 415 (a cross-site "simple" request is not run)', async () => {
  const r = await send('POST', P, JSON.stringify(GOOD), { 'Content-Type': 'text/plain' });
  assert.equal(r.status, 415, r.text);
  assert.ok(isErrorObject(r.json));
  await stillServing();
});

// raw sockets: a request sent by hand, the response read until the server closes or timeoutMs
function raw(chunks, { timeoutMs = 10000, gapMs = 0 } = {}) {
  const u = new URL(srv.url);
  return new Promise((resolve) => {
    const s = net.connect(Number(u.port), u.hostname);
    let data = '';
    let closed = false;
    const t = setTimeout(() => { s.destroy(); resolve({ data, closed }); }, timeoutMs * SLOW);
    s.on('data', (d) => { data += d; });
    s.on('error', () => {});
    s.on('close', () => { closed = true; clearTimeout(t); resolve({ data, closed }); });
    s.on('connect', async () => {
      for (const c of chunks) {
        if (s.destroyed) return;
        s.write(c);
        if (gapMs) await sleep(gapMs);
      }
    });
  });
}
const host = () => `Host: ${new URL(srv.url).host}\r\n`;

test('Content-Length larger than the limit -> 413 at once', async () => {
  const r = await raw([`POST ${P} HTTP/1.1\r\n${host()}Content-Type: application/json\r\nContent-Length: 999999999999\r\n\r\n{"model":`]);
  assert.match(r.data, /^HTTP\/1\.1 413 /);
  assert.ok(isErrorObject(JSON.parse(r.data.slice(r.data.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n/i, '').split('\r\n')[0] || '{}')) || /"error"/.test(r.data));
  await stillServing();
});

test('invalid Content-Length -> 400 and the connection is closed', async () => {
  const r = await raw([`POST ${P} HTTP/1.1\r\n${host()}Content-Length: abc\r\n\r\n{}`]);
  assert.match(r.data, /^HTTP\/1\.[01] 4\d\d /);
  await stillServing();
});

test('garbage request line is refused', async () => {
  const r = await raw(['\x16\x03\x01\x02\x00 garbage\r\n\r\n']);
  assert.ok(r.closed);
  assert.ok(r.data === '' || /^HTTP\/1\.[01] 4\d\d /.test(r.data), r.data.slice(0, 100));
  await stillServing();
});

test('oversized header -> 431 (or 4xx) without harm', async () => {
  const r = await raw([`GET /health HTTP/1.1\r\n${host()}X-Big: ${'a'.repeat(200000)}\r\n\r\n`]);
  assert.match(r.data, /^HTTP\/1\.[01] (431|413|400) /, r.data.slice(0, 100));
  await stillServing();
});

test('slowloris: trickled headers and a body shorter than Content-Length time out without blocking others', async () => {
  // server.timeout_seconds = 2: connections idle that long are closed
  const slow = [];
  for (let i = 0; i < 10; i++) slow.push(raw([`POST ${P} HTTP/1.1\r\n`, host(), 'X-A: 1\r\n'], { gapMs: 300, timeoutMs: 30000 }));
  for (let i = 0; i < 10; i++) {
    slow.push(raw([`POST ${P} HTTP/1.1\r\n${host()}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":"stories260K"`], { timeoutMs: 30000 }));
  }
  await sleep(200);
  await stillServing(); // others are served while the slow ones hang
  const res = await Promise.all(slow);
  for (const r of res) {
    assert.ok(r.closed, 'the server closed the stalled connection');
    assert.ok(r.data === '' || /^HTTP\/1\.[01] (408|400) /.test(r.data), r.data.slice(0, 80));
  }
  await stillServing();
});

test('a request trickled one byte at a time is answered, and others are served meanwhile', async () => {
  const req = `GET /health HTTP/1.1\r\n${host()}Connection: close\r\n\r\n`;
  const p = raw(req.split(''), { gapMs: 60, timeoutMs: 30000 });
  await sleep(300);
  await stillServing();
  const r = await p;
  assert.match(r.data, /^HTTP\/1\.1 200 /);
  await stillServing();
});

test('flood: 100 connections opened and dropped', async () => {
  const u = new URL(srv.url);
  const socks = [];
  for (let i = 0; i < 100; i++) {
    socks.push(new Promise((resolve) => {
      const s = net.connect(Number(u.port), u.hostname, () => {
        if (i % 3 === 1) s.write(`POST ${P} HTTP/1.1\r\n${host()}Content-Length: 50\r\n\r\n{"mo`);
        if (i % 3 === 2) s.write('GET /heal');
        s.destroy();
        resolve();
      });
      s.on('error', () => resolve());
    }));
  }
  await Promise.all(socks);
  await stillServing();
  const h = await fetch(`${srv.url}/health`);
  assert.equal(h.status, 200);
  assert.equal((await h.json()).slots_busy, 0);
});

test('client gone mid-stream: slot freed, server keeps serving', async () => {
  const ac = new AbortController();
  const res = await fetch(`${srv.base}/chat/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, signal: ac.signal,
    body: JSON.stringify({ ...GOOD, max_tokens: 400, stream: true }),
  });
  const rd = res.body.getReader();
  await rd.read();
  ac.abort();
  let busy = -1;
  for (let i = 0; i < 100 && busy !== 0; i++) {
    await sleep(50);
    busy = (await (await fetch(`${srv.url}/health`)).json()).slots_busy;
  }
  assert.equal(busy, 0);
  await stillServing();
});

test(`the suite has at least 40 malformed-request cases (${cases.length})`, () => {
  assert.ok(cases.length >= 40);
});
