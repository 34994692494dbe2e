// batch.test.mjs - issue #20: OpenAI's Files and Batch API in `inferno serve`, driven by the
// official openai client: a 200-request batch whose every output body equals the live
// endpoint's answer to the same request (temperature 0), cancel mid-way with counts that add
// up, every kind of bad input failing with errors naming the line, list pagination, the files
// endpoints; job events in the audit log.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI, { toFile } from 'openai';
import { startServer, syntheticModel, sleep, SLOW, BIN, STORIES } from './harness.mjs';

const model = syntheticModel({ name: 'syn-batch' });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'inferno-batch-test-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const chatLine = (i, extra = {}) => ({
  custom_id: `req-${i}`,
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: 'syn-batch', messages: [{ role: 'user', content: `Tell me about the number ${i}` }], max_tokens: 8, temperature: 0, ...extra },
});
const jsonl = (lines) => lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n';

async function upload(client, text, name = 'batch.jsonl') {
  return client.files.create({ file: await toFile(Buffer.from(text), name), purpose: 'batch' });
}

async function waitFor(client, id, states, ms = 120000) {
  const end = Date.now() + ms * SLOW;
  for (;;) {
    const b = await client.batches.retrieve(id);
    if (states.includes(b.status)) return b;
    if (Date.now() > end) throw new Error(`batch ${id} still ${b.status}`);
    await sleep(100);
  }
}

// the sanitizer build (SLOW > 1) runs the same checks on smaller batches
const BIG = SLOW > 1 ? 50 : 200;
const lines = (text) => text.split('\n').filter((l) => l.length).map((l) => JSON.parse(l));

describe('Files and Batch API', { skip: !model && 'gen-synthetic not available' }, () => {
  let srv, client;
  const auditDir = path.join(tmp, 'audit');
  before(async () => {
    srv = await startServer({
      model,
      args: ['--parallel', '4', '--audit', '--set', `audit.dir=${auditDir}`],
      env: { INFERNO_QUEUE_URL: `sqlite:${tmp}/queue.db`, INFERNO_FILES_DIR: `${tmp}/files` },
    });
    client = new OpenAI({ baseURL: srv.base, apiKey: 'none', maxRetries: 0 });
  });
  after(async () => { if (srv) assert.equal(await srv.stop(), 0); });

  test(`${BIG} chat requests: one output line per custom_id, bodies equal to the live endpoint`, async () => {
    const reqs = Array.from({ length: BIG }, (_, i) => chatLine(i));
    const f = await upload(client, jsonl(reqs));
    assert.equal(f.purpose, 'batch');
    assert.equal(f.object, 'file');
    const b0 = await client.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { run: 'a' } });
    assert.equal(b0.status, 'validating');
    assert.deepEqual(b0.metadata, { run: 'a' });
    const b = await waitFor(client, b0.id, ['completed', 'failed']);
    assert.equal(b.status, 'completed', JSON.stringify(b.errors));
    assert.deepEqual(b.request_counts, { total: BIG, completed: BIG, failed: 0 });
    assert.ok(b.output_file_id);
    assert.equal(b.error_file_id, null);
    for (const k of ['in_progress_at', 'finalizing_at', 'completed_at']) assert.equal(typeof b[k], 'number', k);
    const out = lines(await (await client.files.content(b.output_file_id)).text());
    assert.equal(out.length, BIG);
    const seen = new Map(out.map((o) => [o.custom_id, o]));
    assert.equal(seen.size, BIG, 'every custom_id once');
    // the live endpoint answers the same requests: every one (every fifth under the sanitizers)
    for (let i = 0; i < BIG; i += SLOW > 1 ? 5 : 1) {
      const o = seen.get(`req-${i}`);
      assert.ok(o, `req-${i}`);
      assert.equal(o.error, null);
      assert.equal(o.response.status_code, 200);
      assert.match(o.response.request_id, /^batch-req-/);
      assert.match(o.id, /^batch_req_/);
      const live = await client.chat.completions.create(reqs[i].body);
      const got = o.response.body;
      assert.equal(got.object, 'chat.completion');
      assert.equal(got.model, live.model);
      assert.deepEqual(got.choices, JSON.parse(JSON.stringify(live.choices)), `req-${i}`);
      assert.deepEqual(got.usage.completion_tokens, live.usage.completion_tokens);
      assert.deepEqual(got.usage.prompt_tokens, live.usage.prompt_tokens);
    }
  });

  test('cancel mid-way: cancelled, and the counts add up to the lines written', async () => {
    const N = SLOW > 1 ? 100 : 300;
    const reqs = Array.from({ length: N }, (_, i) => chatLine(1000 + i, { max_tokens: 48 }));
    const f = await upload(client, jsonl(reqs));
    const b0 = await client.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const end = Date.now() + 60000 * SLOW;
    for (;;) { // until some requests are done
      const b = await client.batches.retrieve(b0.id);
      if (b.status === 'in_progress' && b.request_counts.completed >= 8) break;
      assert.ok(Date.now() < end && b.status !== 'completed', `no progress: ${b.status}`);
      await sleep(20);
    }
    const c = await client.batches.cancel(b0.id);
    assert.ok(['cancelling', 'cancelled'].includes(c.status), c.status);
    const b = await waitFor(client, b0.id, ['cancelled', 'completed']);
    assert.equal(b.status, 'cancelled');
    assert.equal(typeof b.cancelled_at, 'number');
    const { total, completed, failed } = b.request_counts;
    assert.equal(total, N);
    assert.equal(completed + failed, total);
    assert.ok(completed >= 8 && completed < N, `completed ${completed}`);
    const ok = b.output_file_id ? lines(await (await client.files.content(b.output_file_id)).text()) : [];
    const bad = lines(await (await client.files.content(b.error_file_id)).text());
    assert.equal(ok.length, completed);
    assert.equal(bad.length, failed);
    const ids = new Set([...ok, ...bad].map((o) => o.custom_id));
    assert.equal(ids.size, N, 'every request once, run or not');
    for (const o of bad) {
      assert.equal(o.response, null);
      assert.equal(o.error.code, 'batch_cancelled');
    }
    assert.equal((await client.batches.cancel(b0.id)).status, 'cancelled'); // idempotent
  });

  test('live requests preempt batch work: they never wait behind it, and the batch still completes', async () => {
    const N = SLOW > 1 ? 24 : 120;
    const reqs = Array.from({ length: N }, (_, i) => chatLine(5000 + i, { max_tokens: 64 }));
    const f = await upload(client, jsonl(reqs));
    const b0 = await client.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const end = Date.now() + 60000 * SLOW;
    for (;;) { // every slot busy with batch work
      const b = await client.batches.retrieve(b0.id);
      if (b.status === 'in_progress' && b.request_counts.completed >= 4) break;
      assert.ok(Date.now() < end && b.status !== 'completed', b.status);
      await sleep(20);
    }
    const metric = async (name) => {
      const text = await (await fetch(`${srv.url}/metrics`)).text();
      return text.split('\n').filter((l) => l.startsWith(name)).reduce((a, l) => a + Number(l.split(' ').pop()), 0);
    };
    const before = await metric('inferno_tasks_preempted_total');
    const live = await Promise.all([0, 1, 2, 3].map((k) => client.chat.completions.create({ model: 'syn-batch', messages: [{ role: 'user', content: `live ${k}` }], max_tokens: 4, temperature: 0 })));
    for (const r of live) assert.equal(r.choices.length, 1);
    assert.ok((await metric('inferno_tasks_preempted_total')) > before, 'no batch task was preempted');
    assert.notEqual((await client.batches.retrieve(b0.id)).status, 'completed', 'the batch ended before the live requests');
    const b = await waitFor(client, b0.id, ['completed']);
    assert.deepEqual(b.request_counts, { total: N, completed: N, failed: 0 });
    const out = lines(await (await client.files.content(b.output_file_id)).text());
    assert.equal(new Set(out.map((o) => o.custom_id)).size, N);
    assert.equal(out.length, N);
  });

  // each kind of bad input, the line it is on, and words its message must have
  const bad = [
    ['not JSON', [chatLine(1), '{"custom_id": "x", "method": "POST",'], 2, /not valid JSON/],
    ['duplicate custom_id', [chatLine(1), chatLine(2), chatLine(1)], 3, /duplicate custom_id 'req-1' \(first on line 1\)/],
    ['unknown url', [chatLine(1), { ...chatLine(2), url: '/v1/images/generations' }], 2, /unknown url/],
    ['url not the endpoint', [chatLine(1), { custom_id: 'e', method: 'POST', url: '/v1/embeddings', body: { model: 'syn-batch', input: 'x' } }], 2, /not the batch's endpoint/],
    ['model not served', [chatLine(1), chatLine(2), { ...chatLine(3), body: { ...chatLine(3).body, model: 'no-such-model' } }], 3, /not served/],
    ['body invalid (live rules)', [{ ...chatLine(1), body: { ...chatLine(1).body, temperature: 'hot' } }], 1, /temperature/],
    ['body without messages', [{ ...chatLine(1), body: { model: 'syn-batch' } }], 1, /messages/],
    ['stream in a batch', [chatLine(1), { ...chatLine(2), body: { ...chatLine(2).body, stream: true } }], 2, /stream/],
    ['method not POST', [{ ...chatLine(1), method: 'GET' }], 1, /method/],
    ['missing custom_id', [{ method: 'POST', url: '/v1/chat/completions', body: chatLine(1).body }], 1, /custom_id/],
    ['body not an object', [{ ...chatLine(1), body: 'hello' }], 1, /body/],
  ];
  for (const [name, input, line, re] of bad) {
    test(`bad input: ${name} -> failed, naming line ${line}`, async () => {
      const f = await upload(client, jsonl(input));
      const b0 = await client.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      const b = await waitFor(client, b0.id, ['failed', 'completed', 'in_progress']);
      assert.equal(b.status, 'failed');
      assert.equal(typeof b.failed_at, 'number');
      assert.equal(b.errors.object, 'list');
      const hit = b.errors.data.find((e) => e.line === line);
      assert.ok(hit, JSON.stringify(b.errors.data));
      assert.match(hit.message, re);
      assert.equal(b.errors.data.length, 1, JSON.stringify(b.errors.data));
      assert.equal(b.output_file_id, null);
    });
  }

  test('create refuses an unknown file, endpoint or window', async () => {
    await assert.rejects(client.batches.create({ input_file_id: 'file-nope', endpoint: '/v1/chat/completions', completion_window: '24h' }), (e) => e.status === 404);
    const f = await upload(client, jsonl([chatLine(1)]));
    await assert.rejects(client.batches.create({ input_file_id: f.id, endpoint: '/v1/images', completion_window: '24h' }), (e) => e.status === 400);
    await assert.rejects(client.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '1h' }), (e) => e.status === 400);
    // a finished batch cannot be cancelled
    const b0 = await client.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    assert.equal((await waitFor(client, b0.id, ['completed'])).status, 'completed');
    await assert.rejects(client.batches.cancel(b0.id), (e) => e.status === 400);
    await assert.rejects(client.batches.retrieve('batch_nope'), (e) => e.status === 404);
  });

  test('list: newest first, pages with after/limit', async () => {
    const all = [];
    for await (const b of client.batches.list({ limit: 3 })) all.push(b.id);
    assert.ok(all.length >= 14, `${all.length}`);
    assert.equal(new Set(all).size, all.length, 'no batch twice across pages');
    const p1 = await client.batches.list({ limit: 2 });
    assert.equal(p1.data.length, 2);
    assert.deepEqual(p1.data.map((b) => b.id), all.slice(0, 2));
    const p2 = await client.batches.list({ limit: 2, after: p1.data[1].id });
    assert.deepEqual(p2.data.map((b) => b.id), all.slice(2, 4));
  });

  test('files: retrieve, list, content, delete', async () => {
    const text = jsonl([chatLine(7)]);
    const f = await upload(client, text, 'one.jsonl');
    assert.equal(f.bytes, Buffer.byteLength(text));
    assert.equal(f.filename, 'one.jsonl');
    const r = await client.files.retrieve(f.id);
    assert.equal(r.id, f.id);
    assert.equal(await (await client.files.content(f.id)).text(), text);
    const ids = [];
    for await (const x of client.files.list()) ids.push(x.id);
    assert.ok(ids.includes(f.id));
    const d = await client.files.delete(f.id);
    assert.equal(d.deleted, true);
    await assert.rejects(client.files.retrieve(f.id), (e) => e.status === 404);
    await assert.rejects(client.files.create({ file: await toFile(Buffer.from('x'), 'x.jsonl'), purpose: 'fine-tune' }), (e) => e.status === 400);
    // a web page's form upload (no CORS preflight) from an origin CORS does not allow
    const fd = new FormData();
    fd.append('purpose', 'batch');
    fd.append('file', new Blob([text]), 'x.jsonl');
    const evil = await fetch(`${srv.base}/files`, { method: 'POST', body: fd, headers: { Origin: 'http://evil.example' } });
    assert.equal(evil.status, 403);
    // not multipart
    const j = await fetch(`${srv.base}/files`, { method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json' } });
    assert.equal(j.status, 415);
  });

  test('job events are in the audit log', async () => {
    await srv.stop();
    srv = null;
    const out = execFileSync(BIN, ['audit', 'export', '--set', `audit.dir=${auditDir}`], { encoding: 'utf8' });
    const recs = out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const events = recs.filter((r) => r.type === 'job').map((r) => r.event);
    for (const e of ['created', 'started', 'completed', 'cancel_requested']) assert.ok(events.includes(e), `${e} in ${events}`);
    execFileSync(BIN, ['audit', 'verify', '--set', `audit.dir=${auditDir}`], { encoding: 'utf8' });
  });
});
