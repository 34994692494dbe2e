// embeddings_encoder.test.mjs - /v1/embeddings on an encoder (BERT) model through the official
// `openai` client: a synthetic bert model (tools/gen-synthetic, seed 7, WordPiece vocabulary
// derived from ../shared's llama SPM vocabulary) whose vectors must equal llama.cpp's, recorded
// by scripts/parity/embed_parity.py in tests/data/embed_parity.json (llama-server's own
// /v1/embeddings: an independent reference), alone, several per request, and from concurrent
// requests batched together. Completions on an embedding model are refused. Then /v1/rerank on
// a synthetic reranker against llama-server's recorded scores.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { startServer, postJSON, SHARED } from './harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DATA = JSON.parse(fs.readFileSync(path.join(HERE, '../data/embed_parity.json'), 'utf8'));
const REF = DATA.models.find((m) => m.name === 'bert-tiny-f32');
const TEXTS = DATA.texts;
const VOCAB = path.join(SHARED, DATA.vocab);
const GEN = process.env.INFERNO_GEN;
const skip = !GEN || !fs.existsSync(GEN) || !fs.existsSync(VOCAB);

let srv;
let client;
let dir;

function cosine(a, b) {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return a.length === b.length && na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

function assertRef(vec, i, what) {
  const c = cosine(vec, REF.results[i].fa_off);
  assert.ok(c >= 0.9999, `${what}: cosine with llama.cpp ${c}`);
  const norm = Math.sqrt(vec.reduce((s, x) => s + x * x, 0));
  assert.ok(Math.abs(norm - 1) < 1e-4, `${what}: L2 norm ${norm}`);
}

describe('embeddings on a bert model', { skip: skip && 'gen-synthetic or the SPM vocabulary is absent' }, () => {
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferno-embed-test-'));
    const model = path.join(dir, 'bert-tiny.gguf');
    execFileSync(GEN, ['--vocab', VOCAB, '--out', model, ...REF.gen], { stdio: 'pipe' });
    srv = await startServer({ model, args: ['--parallel', '4'] });
    client = new OpenAI({ baseURL: srv.base, apiKey: 'unused', maxRetries: 0, timeout: 120000 });
  });
  after(async () => {
    if (srv) assert.equal(await srv.stop('SIGTERM'), 0, 'SIGTERM -> exit 0');
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('one input: llama.cpp\'s vector, its token count', async () => {
    const r = await client.embeddings.create({ model: 'bert-tiny', input: TEXTS[0], encoding_format: 'float' });
    assert.equal(r.object, 'list');
    assert.equal(r.data.length, 1);
    assert.equal(r.data[0].embedding.length, 64);
    assertRef(r.data[0].embedding, 0, 'text 0');
    assert.equal(r.usage.prompt_tokens, REF.results[0].tokens.length);
  });

  test('Ollama /api/embed and /api/embeddings on the encoder: llama.cpp\'s vectors', async () => {
    const ollama = new Ollama({ host: srv.url });
    const r = await ollama.embed({ model: 'bert-tiny', input: [TEXTS[0], TEXTS[1]] });
    assert.equal(r.embeddings.length, 2);
    r.embeddings.forEach((v, i) => assertRef(v, i, `/api/embed input ${i}`));
    const legacy = await ollama.embeddings({ model: 'bert-tiny', prompt: TEXTS[0] });
    const c = cosine(legacy.embedding, REF.results[0].fa_off);
    assert.ok(c >= 0.9999, `/api/embeddings: cosine with llama.cpp ${c}`);
  });

  test('several inputs in one request (one pass): each is llama.cpp\'s', async () => {
    const r = await client.embeddings.create({ model: 'bert-tiny', input: TEXTS, encoding_format: 'float' });
    assert.equal(r.data.length, TEXTS.length);
    r.data.forEach((d, i) => { assert.equal(d.index, i); assertRef(d.embedding, i, `text ${i}`); });
    const total = REF.results.reduce((s, x) => s + x.tokens.length, 0);
    assert.equal(r.usage.prompt_tokens, total);
  });

  test('concurrent requests are batched and each gets its own vector', async () => {
    const order = [3, 1, 0, 2, 2, 0, 1, 3, 0, 1, 2, 3];
    const rs = await Promise.all(order.map((i) => client.embeddings.create({ model: 'bert-tiny', input: TEXTS[i], encoding_format: 'float' })));
    rs.forEach((r, k) => assertRef(r.data[0].embedding, order[k], `request ${k} (text ${order[k]})`));
  });

  test('token ids as input, and base64 (the client\'s default) decode to the same vector', async () => {
    const ids = await postJSON(`${srv.base}/embeddings`, { input: REF.results[2].tokens, encoding_format: 'float' });
    assert.equal(ids.status, 200, ids.text);
    assertRef(ids.json.data[0].embedding, 2, 'token ids');
    const b = await client.embeddings.create({ model: 'bert-tiny', input: TEXTS[2] });
    assertRef(Array.from(b.data[0].embedding), 2, 'base64');
  });

  test('token ids equal llama.cpp\'s', async () => {
    for (let i = 0; i < TEXTS.length; i++) {
      const r = await postJSON(`${srv.url}/tokenize`, { content: TEXTS[i], add_special: true });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.tokens, REF.results[i].tokens, `text ${i}`);
    }
  });

  test('an input longer than the model\'s 512 positions is refused with 400', async () => {
    const r = await postJSON(`${srv.base}/embeddings`, { input: 'word '.repeat(600) });
    assert.equal(r.status, 400, r.text);
    assert.equal(typeof r.json.error.message, 'string');
  });

  test('rerank on a model that is not a reranker is refused with 400', async () => {
    const r = await postJSON(`${srv.base}/rerank`, { query: 'q', documents: ['a'] });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error.message, /not a reranker/);
  });

  test('completions and chat on an embedding model are refused with 400', async () => {
    const c = await postJSON(`${srv.base}/completions`, { prompt: 'hello', max_tokens: 4 });
    assert.equal(c.status, 400, c.text);
    assert.match(c.json.error.message, /embedding model/);
    const ch = await postJSON(`${srv.base}/chat/completions`, { messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
    assert.equal(ch.status, 400, ch.text);
  });
});

// A reranker: bert with pooling_type rank and a classification head (gen-synthetic --pooling
// rank); /v1/rerank's scores against llama-server's, recorded by scripts/parity/embed_parity.py.
const RR = DATA.rerank;

describe('rerank on a bert reranker', { skip: skip && 'gen-synthetic or the SPM vocabulary is absent' }, () => {
  let rsrv;
  let rdir;
  before(async () => {
    rdir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferno-rerank-test-'));
    const model = path.join(rdir, 'reranker.gguf');
    execFileSync(GEN, ['--vocab', VOCAB, '--out', model, ...RR.gen], { stdio: 'pipe' });
    rsrv = await startServer({ model, args: ['--parallel', '2'] });
  });
  after(async () => {
    if (rsrv) assert.equal(await rsrv.stop('SIGTERM'), 0, 'SIGTERM -> exit 0');
    if (rdir) fs.rmSync(rdir, { recursive: true, force: true });
  });

  test('scores and order are llama.cpp\'s', async () => {
    const r = await postJSON(`${rsrv.base}/rerank`, { query: RR.query, documents: RR.documents });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.object, 'list');
    assert.equal(r.json.results.length, RR.documents.length);
    assert.equal(r.json.usage.prompt_tokens, RR.prompt_tokens);
    for (const x of r.json.results) {
      assert.ok(Math.abs(x.relevance_score - RR.scores_fa_off[x.index]) < 1e-4,
        `document ${x.index}: ${x.relevance_score} vs llama.cpp ${RR.scores_fa_off[x.index]}`);
      assert.ok(Math.abs(x.relevance_score - RR.scores_fa_on[x.index]) < 1e-3);
    }
    const want = RR.scores_fa_off.map((s, i) => [s, i]).sort((a, b) => b[0] - a[0]).map((p) => p[1]);
    assert.deepEqual(r.json.results.map((x) => x.index), want, 'best first, as llama.cpp ranks them');
  });

  test('top_n, return_documents, /rerank and texts (llama-server\'s aliases)', async () => {
    const r = await postJSON(`${rsrv.url}/rerank`, { query: RR.query, texts: RR.documents, top_n: 2, return_documents: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.results.length, 2);
    for (const x of r.json.results) assert.equal(x.document, RR.documents[x.index]);
  });

  test('bad requests and the wrong endpoint are refused with 400', async () => {
    for (const body of [{ documents: ['a'] }, { query: 'q', documents: [] }, { query: 'q', documents: ['a', 1] },
      { query: 'q', documents: ['a'], top_n: 0 }, { query: 'q', documents: ['a'], bogus: 1 }]) {
      const r = await postJSON(`${rsrv.base}/rerank`, body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    }
    const e = await postJSON(`${rsrv.base}/embeddings`, { input: 'x' });
    assert.equal(e.status, 400, e.text);
    assert.match(e.json.error.message, /reranker/);
  });
});
